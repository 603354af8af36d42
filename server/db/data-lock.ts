/**
 * One owner per embedded data folder: a lock file beside it holds the owner's pid (and,
 * on Linux, its start time, so a recycled pid is not mistaken for the owner). A second
 * process finds a live owner and refuses; a lock left by a process that died is stale
 * and taken over.
 */
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';

export class DataFolderLocked extends Error {
  constructor(
    readonly folder: string,
    readonly pid: number
  ) {
    super(
      `the data folder ${folder} is in use by another ruleperf (pid ${pid}); stop that one first, ` +
        `or give this one its own DATA_DIR (or a DATABASE_URL)`
    );
  }
}

interface LockRecord {
  pid: number;
  host: string;
  /** Process start time in clock ticks since boot (Linux), to tell a recycled pid apart. */
  started: string | null;
}

function processStart(pid: number): string | null {
  try {
    // Field 22 of /proc/<pid>/stat; the command name (field 2) may contain spaces, so count from its ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function alive(record: LockRecord): boolean {
  if (record.host !== hostname()) {
    return true;
  } // another machine's process: cannot check, assume it runs
  try {
    process.kill(record.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') {
      return false;
    }
  }
  const started = processStart(record.pid);
  return !(record.started && started && started !== record.started);
}

export interface DataLock {
  path: string;
  /** The pid of a process that died holding the lock, taken over from it; else null. */
  takenOverFrom: number | null;
  release(): void;
}

/** Takes the lock at `path` for this process, or throws DataFolderLocked naming the owner. */
export function lockDataFolder(folder: string, path = `${folder}.lock`): DataLock {
  const record: LockRecord = { pid: process.pid, host: hostname(), started: processStart(process.pid) };
  let takenOverFrom: number | null = null;
  for (let attempt = 0; attempt < 5; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, 'wx');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw err;
      }
      let text = '';
      let existing: LockRecord | null = null;
      try {
        text = readFileSync(path, 'utf8');
        existing = JSON.parse(text);
      } catch {
        // Unreadable or half-written: a writer fills it within microseconds, so look again first.
      }
      // Our own pid is a live owner only if it is this very process (opened twice); after a
      // restart that reused the pid (pid 1 in a container) the start time differs.
      const self = existing?.pid === process.pid && existing.host === record.host;
      if (existing && (self ? existing.started === record.started : alive(existing))) {
        throw new DataFolderLocked(folder, existing.pid);
      }
      if (!existing && attempt === 0) {
        continue;
      }
      try {
        // Remove the stale lock only if it is still the one judged stale.
        if (readFileSync(path, 'utf8') === text) {
          unlinkSync(path);
          takenOverFrom = existing?.pid ?? null;
        }
      } catch {
        /* another process removed it first; try again */
      }
      continue;
    }
    writeSync(fd, JSON.stringify(record));
    closeSync(fd);
    let released = false;
    const release = () => {
      if (released) {
        return;
      }
      released = true;
      process.off('exit', release);
      try {
        // Only our own lock: never remove one another process took over.
        if (JSON.parse(readFileSync(path, 'utf8')).pid === process.pid) {
          unlinkSync(path);
        }
      } catch {
        /* already gone */
      }
    };
    process.on('exit', release);
    return { path, takenOverFrom, release };
  }
  throw new Error(`could not lock ${folder}: ${path} keeps changing`);
}
