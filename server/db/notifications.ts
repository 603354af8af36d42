/**
 * NOTIFY on the embedded database. PGlite has one session, shared by every connection of its
 * wire server, so no connection can LISTEN for the others' changes. The worker that runs PGlite
 * listens on its session instead: PostgreSQL then puts a NotificationResponse before the
 * ReadyForQuery of whichever statement committed the change, and the worker takes it out of
 * that reply (the client never asked for it) and tells the main thread.
 */

/** The channel the change log and the statements that change raw rows announce on (schemas 6 and 19). */
export const CHANGES_CHANNEL = 'ruleperf_changes';

/** NotificationResponse: 'A', int32 length, int32 process id, channel\0, payload\0. */
const NOTIFICATION = 0x41;
/** CommandComplete: 'C', int32 length, tag\0. */
const COMMAND_COMPLETE = 0x43;
/**
 * Statements that change the shared session's state: settings every connection relies on (also
 * from a DO block), its role, the worker's LISTEN, and temporary objects (first on the search
 * path: a temporary view named as a rollup answered 0 for it).
 */
const SESSION_TAGS = ['SET', 'RESET', 'DISCARD', 'UNLISTEN', 'DO', 'CREATE'].map((tag) => Buffer.from(tag));

/**
 * `reply` without the NotificationResponses on `channel`, and how many there were. The reply is
 * returned as it is (no copy) when it holds none; other channels' notifications are left in.
 * `changesSession`: a statement in it was SET, RESET, DISCARD, UNLISTEN, DO or CREATE, by which a
 * client of the shared session may change it for every other one (`SET extra_float_digits = -15` rounded
 * every number the service read; a pool's DISCARD ALL left no ruleperf table on the search
 * path and undid the worker's LISTEN).
 */
export function takeNotifications(
  reply: Uint8Array,
  channel: string
): { reply: Uint8Array; taken: number; changesSession: boolean } {
  const wanted = Buffer.from(`${channel}\0`);
  const bytes = Buffer.from(reply.buffer, reply.byteOffset, reply.byteLength);
  const startsWith = (at: number, prefix: Buffer) => bytes.subarray(at, at + prefix.length).equals(prefix);
  const kept: Array<[number, number]> = [];
  let keptFrom = 0;
  let taken = 0;
  let changesSession = false;
  let at = 0;
  while (at + 5 <= reply.length) {
    const end = at + 1 + bytes.readInt32BE(at + 1);
    if (end > reply.length || end < at + 5) {
      break; // not whole messages: leave the rest as it is
    }
    if (reply[at] === NOTIFICATION && startsWith(at + 9, wanted)) {
      kept.push([keptFrom, at]);
      keptFrom = end;
      taken++;
    } else if (reply[at] === COMMAND_COMPLETE && SESSION_TAGS.some((tag) => startsWith(at + 5, tag))) {
      changesSession = true;
    }
    at = end;
  }
  if (!taken) {
    return { reply, taken, changesSession };
  }
  kept.push([keptFrom, reply.length]);
  const out = new Uint8Array(kept.reduce((n, [from, to]) => n + to - from, 0));
  let written = 0;
  for (const [from, to] of kept) {
    out.set(reply.subarray(from, to), written);
    written += to - from;
  }
  return { reply: out, taken, changesSession };
}
