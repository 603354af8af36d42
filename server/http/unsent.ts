/**
 * Answers written but not yet taken by their clients, across connections. A client that sends
 * queries and never reads the answers leaves their bytes in this process (the socket's buffer,
 * outside the JavaScript heap and its limit): 8 connections each asking for a large answer and
 * reading nothing held 830 MB for as long as they stayed open. An answer counts from when it is
 * ended until it is handed to the kernel ('finish') or its connection closes. One not handed
 * over within the send timeout has its connection destroyed, which frees it; while the answers
 * waiting exceed the limit, API requests are answered 503 busy at once, before any work.
 */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export interface SendLimits {
  /** Bytes of ended answers not yet handed to the kernel, across connections, past which API requests are refused. */
  maxUnsentBytes: number;
  /** How long an ended answer may wait for its client to read it before its connection is closed. */
  timeoutMs: number;
}

export class UnsentAnswers {
  private bytes = 0;
  /** Per connection, the releases of its answers still counted: one 'close' listener per connection, not one per answer. */
  private readonly waiting = new WeakMap<Socket, Set<() => void>>();

  constructor(private readonly limits: SendLimits) {}

  /** Bytes of answers waiting for their clients now. */
  get held(): number {
    return this.bytes;
  }

  /** Whether new API requests are refused now (the answers waiting are over the limit). */
  get full(): boolean {
    return this.bytes > this.limits.maxUnsentBytes;
  }

  /**
   * Counts `res`'s answer from its end() until it is handed to the kernel ('finish') or its
   * connection is gone: the bytes written (compressed, where the compression middleware writes
   * them) and ended with. Counted from the response, not the socket's buffer: a pipelined answer
   * queued behind another waits in the response itself, and a connection can queue hundreds.
   */
  watch(res: ServerResponse): void {
    const { write, end } = res;
    let written = 0;
    res.write = ((...args: Parameters<typeof write>) => {
      written += bytesOf(args[0]);
      return write.apply(res, args);
    }) as typeof write;
    res.end = ((...args: Parameters<typeof end>) => {
      res.end = end;
      this.hold(res, written + bytesOf(args[0]));
      return end.apply(res, args);
    }) as typeof end;
  }

  private waitingOn(socket: Socket): Set<() => void> {
    let set = this.waiting.get(socket);
    if (!set) {
      const releases = (set = new Set());
      this.waiting.set(socket, releases);
      socket.once('close', () => [...releases].forEach((release) => release()));
    }
    return set;
  }

  private hold(res: ServerResponse, bytes: number): void {
    // A client gone before its answer was ready (Grafana cancels queries when the range changes):
    // nothing is sent, and neither 'finish' nor 'close' would come to give the bytes back.
    if (bytes === 0 || res.destroyed || res.req.socket.destroyed) {
      return;
    }
    this.bytes += bytes;
    // The request's socket: a pipelined response queued behind another has none of its own yet.
    const socket = res.req.socket;
    const timer = setTimeout(() => socket.destroy(), this.limits.timeoutMs);
    timer.unref();
    let released = false;
    const waiting = this.waitingOn(socket);
    const release = () => {
      if (!released) {
        released = true;
        clearTimeout(timer);
        waiting.delete(release);
        this.bytes -= bytes;
      }
    };
    res.once('finish', release);
    res.once('close', release);
    // A pipelined response queued behind another sees neither when its connection goes.
    waiting.add(release);
  }
}

/** The bytes of a chunk passed to write() or end() (which may be a callback instead). */
function bytesOf(chunk: unknown): number {
  return typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk instanceof Uint8Array ? chunk.length : 0;
}
