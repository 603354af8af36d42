/** A rows progress bar with rows/s and ETA; plain periodic lines when not on a terminal. */
import { SingleBar } from 'cli-progress';
import { flushLogs } from '../observability/logger';

export function rowsProgress(label: string, total: number) {
  flushLogs();
  const started = Date.now();
  const bar = new SingleBar({
    format: `${label} [{bar}] {percentage}% | {value}/{total} rows | {speed} rows/s | ETA {eta_formatted}`,
    barsize: 30,
    hideCursor: true,
    noTTYOutput: !process.stderr.isTTY,
    notTTYSchedule: 2000,
    etaBuffer: 50,
    stream: process.stderr,
  });
  bar.start(total, 0, { speed: 0 });
  let done = 0;
  return {
    add(n: number) {
      done += n;
      const seconds = (Date.now() - started) / 1000;
      bar.update(done, { speed: seconds > 0 ? Math.round(done / seconds) : 0 });
    },
    /** `complete`: all rows are in, so the bar ends at 100 % (the total was an estimate: 143,999 of 144,000 stopped at 99 %). */
    stop(complete = false): { rows: number; seconds: number; rowsPerSecond: number } {
      if (complete) {
        bar.setTotal(done);
        bar.update(done);
      }
      bar.stop();
      const seconds = (Date.now() - started) / 1000;
      return { rows: done, seconds, rowsPerSecond: seconds > 0 ? done / seconds : 0 };
    },
  };
}

/** A bar over named steps (e.g. the rollups being built), with elapsed time. */
export function stepsProgress(label: string, total: number, firstStep = '') {
  flushLogs();
  const started = Date.now();
  const bar = new SingleBar({
    format: `${label} [{bar}] {value}/{total} {step} | {duration_formatted}`,
    barsize: 30,
    hideCursor: true,
    noTTYOutput: !process.stderr.isTTY,
    notTTYSchedule: 2000,
    stream: process.stderr,
  });
  bar.start(total, 0, { step: firstStep });
  return {
    step(name: string) {
      bar.update({ step: name });
    },
    done() {
      bar.increment();
    },
    stop(): number {
      bar.update({ step: '' });
      bar.stop();
      return (Date.now() - started) / 1000;
    },
  };
}

/** A steps bar for refreshEachRollup's onStep: the rollup being built, how many are done, elapsed time. */
export function rollupsProgress(label = 'building rollups') {
  let bar: ReturnType<typeof stepsProgress> | null = null;
  return {
    onStep(step: { rollup: string; of: number; done: boolean; building?: string[] }) {
      // Every rollup being built (side by side in the PostgreSQL flavour); none for a moment
      // after one is done and before the next starts, never the one just finished.
      const names = step.building ? step.building.join(' + ') : step.rollup;
      bar ??= stepsProgress(label, step.of, names);
      if (step.done) {
        bar.done();
      }
      bar.step(names);
    },
    /** Stops the bar; the seconds since the first rollup started (0 when none did). */
    stop(): number {
      return bar?.stop() ?? 0;
    },
  };
}

/**
 * A phase with nothing to count (booting the database, migrating): its elapsed seconds
 * tick on a terminal every second; elsewhere one line when it starts and one when it ends.
 */
export function phaseProgress(label: string) {
  flushLogs();
  const started = Date.now();
  const tty = process.stderr.isTTY;
  const line = () => `${label} … ${Math.round((Date.now() - started) / 1000)} s`;
  if (tty) {
    process.stderr.write(line());
  } else {
    process.stderr.write(`${label} …\n`);
  }
  const timer = tty ? setInterval(() => process.stderr.write(`\r${line()}`), 1000) : null;
  timer?.unref();
  return {
    stop(detail = 'done'): number {
      if (timer) {
        clearInterval(timer);
      }
      const seconds = (Date.now() - started) / 1000;
      process.stderr.write(`${tty ? '\r' : ''}${label}: ${detail} in ${seconds.toFixed(1)} s\n`);
      return seconds;
    },
  };
}
