/**
 * What to do about the database errors a first try meets (server not running, host unknown,
 * database not created, wrong password), for the service's start-up and the command-line
 * tools alike. Read from the URL's host, port, user and database: never its password.
 */
export function connectHint(err: unknown, databaseUrl: string | undefined): string {
  let host: string, port: string, user: string, name: string;
  try {
    const url = new URL(databaseUrl ?? '');
    if (url.protocol === 'socket:') {
      return ''; // a socket form: the error alone
    }
    host = url.hostname || 'localhost';
    port = url.port || '5432';
    user = decodeURIComponent(url.username) || 'postgres';
    name = decodeURIComponent(url.pathname.slice(1)) || '<name>';
  } catch {
    return ''; // not a URL the hints can read: the error alone
  }
  switch ((err as { code?: unknown } | null)?.code) {
    case 'ECONNREFUSED':
      return `No PostgreSQL answers at ${host}:${port}: start it, or fix the host and port in DATABASE_URL.`;
    case 'ENOTFOUND':
      return `No host named ${host} is known: fix the host in DATABASE_URL (an IP address such as 127.0.0.1 needs no name lookup).`;
    case 'EAI_AGAIN':
      return `The name ${host} could not be looked up (the DNS did not answer): check the network, or use an IP address in DATABASE_URL.`;
    case '3D000':
      return `Create it first: createdb -h ${host} -p ${port} -U ${user} ${name} (or CREATE DATABASE "${name}" in psql).`;
    case '28P01':
    case '28000':
      return `Check the user and password in DATABASE_URL (user ${user}).`;
    default:
      // node-pg's words when the server closed the connection before any reply: something
      // else listens there (a proxy, another service), or the server refused this client.
      return err instanceof Error && /^Connection terminated unexpectedly$/.test(err.message)
        ? `${host}:${port} closed the connection without a word: check that PostgreSQL listens there (not a proxy or another service) and accepts this client (its pg_hba.conf and log say why it did not).`
        : '';
  }
}

/** An error's message with its hint on the next line (when there is one). */
export function withConnectHint(err: unknown, databaseUrl: string | undefined): string {
  const hint = connectHint(err, databaseUrl);
  // A host of two addresses (localhost: ::1 and 127.0.0.1) refused on both is an
  // AggregateError with no message of its own: its first error's.
  const message =
    err instanceof AggregateError && !err.message
      ? String((err.errors[0] as Error | undefined)?.message ?? '')
      : err instanceof Error
        ? err.message
        : String(err);
  return hint ? `${message}\n${hint}` : message;
}
