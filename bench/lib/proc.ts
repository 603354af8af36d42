/** What the bench reads of a local process from /proc (Linux): CPU time and resident memory. */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** utime + stime, in clock ticks, from /proc/<pid>/stat (fields 14 and 15; the command name may hold spaces and parentheses). */
export function procStatTicks(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): utime is field 14, stime field 15.
  const ticks = Number(fields[11]) + Number(fields[12]);
  if (!Number.isFinite(ticks)) {
    throw new Error(`cannot read /proc stat: ${stat.slice(0, 200)}`);
  }
  return ticks;
}

let clockTicks: number | undefined;

/** CPU seconds a process has used so far; NaN where it is not on this machine or /proc is not there. */
export function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) {
    return NaN;
  }
  try {
    clockTicks ??= Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
    return procStatTicks(readFileSync(`/proc/${pid}/stat`, 'utf8')) / clockTicks;
  } catch {
    return NaN;
  }
}

/** Resident memory of a process in MB; NaN where it cannot be read. */
export function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}
