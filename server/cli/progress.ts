/** A rows progress bar with rows/s and ETA; plain periodic lines when not on a terminal. */
import { SingleBar } from 'cli-progress';

export function rowsProgress(label: string, total: number) {
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
    stop(): { rows: number; seconds: number; rowsPerSecond: number } {
      bar.stop();
      const seconds = (Date.now() - started) / 1000;
      return { rows: done, seconds, rowsPerSecond: seconds > 0 ? done / seconds : 0 };
    },
  };
}
