/**
 * Runs the real service as a child process (its own CPU budget and signals, like
 * production) for the start-up tests and the benchmarks.
 */
import { existsSync, readFileSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export const ROOT = join(__dirname, '..');

export interface ServiceProcess {
  url: string;
  child: ChildProcess;
  /** Everything it wrote so far (stdout and stderr, interleaved). */
  output(): string;
  /** Seconds from spawn to the ready banner. */
  readySeconds: number;
  /** The embedded database's loopback URL, when it runs one. */
  databaseUrl: string | null;
  /** Resolves with the exit code once it has exited. */
  exited: Promise<number | null>;
  stop(): Promise<number | null>;
}

export interface ServiceProcessOptions {
  /** Run through `npm start` (npm → sh → node) instead of node directly. */
  viaNpm?: boolean;
  timeoutMs?: number;
}

/** Starts the service and waits for "ruleperf answers at …"; rejects with its output if it exits or times out first. */
export async function startServiceProcess(
  env: Record<string, string>,
  options: ServiceProcessOptions = {}
): Promise<ServiceProcess> {
  const started = performance.now();
  const fullEnv = { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env };
  const child = options.viaNpm
    ? spawn('npm', ['start', '--silent'], { cwd: ROOT, env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'server', 'main.ts')], {
        cwd: ROOT,
        env: fullEnv,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`service did not start within ${options.timeoutMs ?? 180_000} ms:\n${output}`)),
      options.timeoutMs ?? 180_000
    );
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const m = /ruleperf answers at (http:\/\/\S+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`service exited (${code}):\n${output}`));
    });
  });
  const readySeconds = (performance.now() - started) / 1000;
  return {
    url,
    child,
    output: () => output,
    readySeconds,
    // Read when asked: stdout (the log) and stderr ("ready") are two pipes, and the log line
    // naming the URL may arrive after "ready" has been read.
    // The URL with this start's password is in the file the log line names (the log has no password).
    get databaseUrl() {
      const file = /"urlFile":"([^"]+)"/.exec(output)?.[1];
      return file && existsSync(file) ? readFileSync(file, 'utf8').trim() : null;
    },
    exited,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
      }
      return exited;
    },
  };
}
