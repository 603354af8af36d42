/** A private redis-server on a free loopback port, for tests that configure, fill, pause or kill it. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import net from 'node:net';

export const hasRedisServer = spawnSync('redis-server', ['--version']).status === 0;

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface PrivateRedis {
  port: number;
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Starts redis-server (on `port`, or a free one) and waits until it accepts connections. */
export async function startPrivateRedis(extraArgs: string[] = [], port?: number): Promise<PrivateRedis> {
  port ??= await freePort();
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extraArgs],
    { stdio: 'ignore' }
  );
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => {
        c.end();
        resolve(true);
      });
      c.on('error', () => resolve(false));
    });
    if (ok) {
      return {
        port,
        url: `redis://127.0.0.1:${port}`,
        child,
        stop: () =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null) {
              return resolve();
            }
            child.once('exit', () => resolve());
            child.kill('SIGKILL');
          }),
      };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error('redis-server did not start');
}
