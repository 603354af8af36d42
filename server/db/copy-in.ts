/**
 * COPY … FROM STDIN, found in the statements a client sends to the embedded database. PGlite
 * cannot take a copy from its client: the WASM instance traps ("unreachable") and the service's
 * one database is gone until a restart (psql's `\copy … from stdin`, and `npm run generate`'s
 * default COPY, over the URL in pglite.url). The wire server refuses such a statement instead.
 */

/** The SQL of a simple Query ('Q') or Parse ('P') message, else null. */
export function statementText(message: Buffer): string | null {
  if (message[0] === 0x51 /* Q */) {
    return message.toString('utf8', 5, message.length - 1);
  }
  if (message[0] === 0x50 /* P */) {
    const nameEnd = message.indexOf(0, 5);
    const textEnd = nameEnd < 0 ? -1 : message.indexOf(0, nameEnd + 1);
    return textEnd < 0 ? null : message.toString('utf8', nameEnd + 1, textEnd);
  }
  return null;
}

/**
 * The text with comments, string literals, quoted identifiers and dollar-quoted bodies replaced
 * by a space: what is left are keywords, names and punctuation. One pass.
 */
export function withoutQuoted(sql: string): string {
  const kept: string[] = [];
  let from = 0; // start of the run of plain text being kept
  let i = 0;
  const skip = (to: number) => {
    kept.push(sql.slice(from, i), ' ');
    i = from = to;
  };
  const word = (at: number) => at >= 0 && /[\w$]/.test(sql[at]);
  while (i < sql.length) {
    const c = sql[i];
    const next = sql[i + 1];
    if (c === '-' && next === '-') {
      const end = sql.indexOf('\n', i);
      skip(end < 0 ? sql.length : end);
    } else if (c === '/' && next === '*') {
      // Block comments nest in PostgreSQL.
      let depth = 1;
      let j = i + 2;
      while (j < sql.length && depth > 0) {
        if (sql[j] === '/' && sql[j + 1] === '*') {
          depth++;
          j += 2;
        } else if (sql[j] === '*' && sql[j + 1] === '/') {
          depth--;
          j += 2;
        } else {
          j++;
        }
      }
      skip(j);
    } else if (c === "'" || c === '"') {
      // E'…' strings escape with a backslash; every quoted text doubles its quote.
      const backslashes = c === "'" && (sql[i - 1] === 'e' || sql[i - 1] === 'E') && !word(i - 2);
      let j = i + 1;
      while (j < sql.length) {
        if (backslashes && sql[j] === '\\') {
          j += 2;
        } else if (sql[j] === c && sql[j + 1] === c) {
          j += 2;
        } else if (sql[j] === c) {
          j++;
          break;
        } else {
          j++;
        }
      }
      skip(j);
    } else if (c === '$' && !word(i - 1)) {
      const tag = /^\$(?:[A-Za-z_]\w*)?\$/.exec(sql.slice(i, i + 64));
      if (tag) {
        const end = sql.indexOf(tag[0], i + tag[0].length);
        skip(end < 0 ? sql.length : end + tag[0].length);
      } else {
        i++;
      }
    } else {
      i++;
    }
  }
  kept.push(sql.slice(from));
  return kept.join('');
}

/** Whether any statement in `sql` is a COPY from the client (`COPY … FROM STDIN`). */
export function copiesFromClient(sql: string): boolean {
  // Most statements never name both: not scanned.
  if (!/copy/i.test(sql) || !/stdin/i.test(sql)) {
    return false;
  }
  return withoutQuoted(sql)
    .split(';')
    .some((statement) => /^\s*copy\b[\s\S]*\bfrom\s+stdin\b/i.test(statement));
}
