/**
 * Private Redis and PostgreSQL servers with TLS and passwords, for the tests of the service's
 * connections to them: certificates made with openssl for this run, a redis-server on a free
 * port, a PostgreSQL cluster in a temporary folder (run as the `postgres` user when the tests
 * run as root, since initdb refuses root). Each helper says why when the machine cannot do it.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

export const PG_BIN = [
  '/usr/lib/postgresql/15/bin',
  ...listDirs('/usr/lib/postgresql').map((v) => `/usr/lib/postgresql/${v}/bin`),
].find((d) => existsSync(join(d, 'initdb')));

function listDirs(dir: string): string[] {
  try {
    return readdirSync(dir).sort().reverse();
  } catch {
    return [];
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

const has = (command: string) => spawnSync('sh', ['-c', `command -v ${command}`]).status === 0;

export interface Certificates {
  dir: string;
  ca: string;
  cert: string;
  key: string;
}

/** A CA and a server certificate for 127.0.0.1 and localhost, valid for two days. */
export function makeCertificates(dir: string): Certificates | string {
  if (!has('openssl')) {
    return 'openssl is not installed';
  }
  const at = (f: string) => join(dir, f);
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '2',
    '-subj',
    '/CN=ruleperf test CA'
  );
  run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  writeFileSync(at('san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  run(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.crt',
    '-days',
    '2',
    '-extfile',
    'san.ext'
  );
  return { dir, ca: at('ca.crt'), cert: at('server.crt'), key: at('server.key') };
}

export interface PrivateServer {
  port: number;
  stop(): Promise<void>;
}

async function waitForPort(port: number, child: ChildProcess, output: () => string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`exited with ${child.exitCode}: ${output()}`);
    }
    const open = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (open) {
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`not listening on ${port} after ${timeoutMs} ms: ${output()}`);
}

/** redis-server listening with TLS only (no plain port), requiring `password`. */
export async function startTlsRedis(certs: Certificates, password: string): Promise<PrivateServer | string> {
  if (!has('redis-server')) {
    return 'redis-server is not installed';
  }
  const port = await freePort();
  const child = spawn(
    'redis-server',
    [
      '--port',
      '0',
      '--tls-port',
      String(port),
      '--tls-cert-file',
      certs.cert,
      '--tls-key-file',
      certs.key,
      '--tls-ca-cert-file',
      certs.ca,
      '--tls-auth-clients',
      'no',
      '--requirepass',
      password,
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      certs.dir,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] }
  );
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  try {
    await waitForPort(port, child, () => output);
  } catch (err) {
    child.kill('SIGKILL');
    return `redis-server could not serve TLS here (${(err as Error).message.slice(0, 300)})`;
  }
  return {
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) {
          return resolve();
        }
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/**
 * A PostgreSQL cluster accepting only TLS connections from 127.0.0.1 (`hostssl`, scram
 * passwords): a connection without TLS or with a wrong password is refused by the server.
 */
export async function startTlsPostgres(certs: Certificates, password: string): Promise<PrivateServer | string> {
  if (!PG_BIN) {
    return 'no PostgreSQL server binaries (initdb) under /usr/lib/postgresql';
  }
  const asRoot = userInfo().uid === 0;
  if (asRoot && !has('runuser')) {
    return 'running as root without runuser: initdb cannot run as root';
  }
  let owner: { uid: number; gid: number } | null = null;
  if (asRoot) {
    const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    if (id.status !== 0) {
      return 'running as root and there is no postgres user to run initdb';
    }
    owner = { uid: Number(id.stdout), gid: Number(gid.stdout) };
  }
  const base = mkdtempSync(join(tmpdir(), 'ruleperf-pgtls-'));
  const data = join(base, 'data');
  mkdirSync(data, { mode: 0o700 });
  // The server reads its key and certificate as its own user; the key must not be readable by others.
  const key = join(base, 'server.key');
  const cert = join(base, 'server.crt');
  writeFileSync(key, execFileSync('cat', [certs.key]));
  writeFileSync(cert, execFileSync('cat', [certs.cert]));
  writeFileSync(join(base, 'pw'), `${password}\n`);
  chmodSync(key, 0o600);
  if (owner) {
    for (const p of [base, data, key, cert, join(base, 'pw')]) {
      chownSync(p, owner.uid, owner.gid);
    }
  }
  const as = (bin: string, args: string[]) =>
    owner
      ? spawnSync('runuser', ['-u', 'postgres', '--', join(PG_BIN!, bin), ...args], { encoding: 'utf8' })
      : spawnSync(join(PG_BIN!, bin), args, { encoding: 'utf8' });
  const init = as('initdb', [
    '-D',
    data,
    '-U',
    'postgres',
    '--pwfile',
    join(base, 'pw'),
    '--auth-host',
    'scram-sha-256',
    '--auth-local',
    'peer',
    '-E',
    'UTF8',
    '--no-sync',
  ]);
  if (init.status !== 0) {
    rmSync(base, { recursive: true, force: true });
    return `initdb failed: ${(init.stderr || init.stdout).slice(0, 300)}`;
  }
  const port = await freePort();
  writeFileSync(
    join(data, 'postgresql.conf'),
    [
      `port = ${port}`,
      "listen_addresses = '127.0.0.1'",
      `unix_socket_directories = '${base}'`,
      'ssl = on',
      `ssl_cert_file = '${cert}'`,
      `ssl_key_file = '${key}'`,
      'fsync = off',
      'max_connections = 40',
      '',
    ].join('\n'),
    { flag: 'a' }
  );
  writeFileSync(join(data, 'pg_hba.conf'), 'local all all peer\nhostssl all all 127.0.0.1/32 scram-sha-256\n');
  if (owner) {
    for (const f of ['postgresql.conf', 'pg_hba.conf']) {
      chownSync(join(data, f), owner.uid, owner.gid);
    }
  }
  const start = as('pg_ctl', ['-D', data, '-l', join(base, 'server.log'), '-w', '-t', '30', 'start']);
  if (start.status !== 0) {
    rmSync(base, { recursive: true, force: true });
    return `the PostgreSQL server did not start: ${(start.stderr || start.stdout).slice(0, 300)}`;
  }
  return {
    port,
    async stop() {
      as('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']);
      rmSync(base, { recursive: true, force: true });
    },
  };
}
