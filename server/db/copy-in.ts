/**
 * COPY … FROM STDIN, found in the statements a client sends to the embedded database. PGlite
 * cannot take a copy from its client: the WASM instance traps ("unreachable") and the service's
 * one database is gone until a restart (psql's `\copy … from stdin`, and `npm run generate`'s
 * default COPY, over the URL in pglite.url). The wire server refuses such a statement instead.
 *
 * It fails closed: any statement naming both COPY and STDIN is refused, in a string or a
 * comment too. Telling those apart takes PostgreSQL's whole lexer (dollar-quote tags of any
 * letters and length, backslashes in strings once standard_conforming_strings is off), and a
 * statement a lexer of its own misread took the database down; a rare false refusal costs
 * nothing like that.
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

/** Whether `sql` may hold a COPY from the client: it names both words, in any case. */
export function copiesFromClient(sql: string): boolean {
  return /\bcopy\b/i.test(sql) && /\bstdin\b/i.test(sql);
}
