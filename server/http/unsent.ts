/**
 * Answers written but not yet taken by their clients, across connections. A client that sends
 * queries and never reads the answers leaves their bytes in this process (the socket's buffer,
 * outside the JavaScript heap and its limit): 8 connections each asking for a large answer and
 * reading nothing held 830 MB for as long as they stayed open. The connections that carried a
 * request are looked at a few times a second (nothing is done per answer: the cached path stays
 * as cheap as it was): their buffered bytes are summed, a connection whose buffer has not moved
 * for the send timeout is destroyed (which frees it), and when the sum is over the limit the
 * connections holding the most are destroyed until the rest fit. Refusing every API request
 * instead (503 until the send timeout freed them) let four connections that pipelined requests for
 * a 5 MB answer and read nothing shut everyone out for as long as they kept coming back. An answer
 * queued behind another on a pipelining connection waits in its response, not yet in the socket:
 * it counts from its end() until its turn comes (watchQueued; rare, and bounded in number by
 * pipelining.ts); while those alone keep the sum over the limit, API requests are answered 503 busy.
 */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { PIPELINED_MAX } from './pipelining';

export interface SendLimits {
  /** Bytes of answers not yet taken by their clients, across connections, past which connections holding them are closed. */
  maxUnsentBytes: number;
  /** How long a connection's buffer may hold answers without a write completing before the connection is closed (a client reading one large answer slower than that too). */
  timeoutMs: number;
  /** Told when connections holding the most were closed to bring the sum under the limit. */
  onShed?: (closed: number, bytes: number) => void;
}

/** How often the connections are looked at. */
const SWEEP_MS = 250;
/** Sooner when a request finds the answers waiting over the limit, but not more often than this. */
const EARLY_SWEEP_MS = 10;

interface Watched {
  /** socket.bytesWritten when its buffer was last seen to move (or empty). */
  written: number;
  /** When that was. */
  at: number;
}

export class UnsentAnswers {
  private readonly sockets = new Map<Socket, Watched>();
  /** Bytes in the connections' buffers at the last look. */
  private bytes = 0;
  /** Bytes of ended answers still queued behind another answer on their connection. */
  private queued = 0;
  /** The same by connection: the bytes, and how to give each answer's back (when it goes out, or is dropped). */
  private readonly queuedOn = new Map<Socket, { bytes: number; releases: Set<() => void> }>();
  private timer: NodeJS.Timeout | null = null;
  private sweptAt = 0;

  constructor(private readonly limits: SendLimits) {}

  /** Bytes of answers waiting for their clients at the last look. */
  get held(): number {
    return this.bytes + this.queued;
  }

  /**
   * Whether new API requests are refused now: the answers waiting are over the limit even after
   * a look at the connections (at most one every EARLY_SWEEP_MS), which closes the ones holding
   * the most. Answers queued on a connection count from their end(), before the next timed look:
   * refused until it, requests met 200 ms of 503s whenever a few clients piled up answers.
   */
  full(now = Date.now()): boolean {
    if (this.held > this.limits.maxUnsentBytes && now - this.sweptAt >= EARLY_SWEEP_MS) {
      this.sweep(now);
    }
    return this.held > this.limits.maxUnsentBytes;
  }

  /** Counts the answer of `res`, queued behind another on its connection, from its end() until its turn (or its connection's end). */
  watchQueued(res: ServerResponse): void {
    const end = res.end;
    res.end = ((...args: Parameters<typeof end>) => {
      res.end = end;
      const chunk = args[0];
      const bytes =
        typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk instanceof Uint8Array ? chunk.length : 0;
      if (bytes > 0 && !res.destroyed && !res.req.socket.destroyed) {
        const socket = res.req.socket;
        let on = this.queuedOn.get(socket);
        if (!on) {
          on = { bytes: 0, releases: new Set() };
          this.queuedOn.set(socket, on);
        }
        const queue = on;
        this.queued += bytes;
        queue.bytes += bytes;
        let released = false;
        const release = () => {
          if (!released) {
            released = true;
            this.queued -= bytes;
            queue.bytes -= bytes;
            queue.releases.delete(release);
            if (queue.releases.size === 0) {
              this.queuedOn.delete(socket);
            }
            socket.off('close', release);
          }
        };
        queue.releases.add(release);
        // From its turn on, its bytes are in the socket's buffer, which the sweep counts.
        res.once('socket', release);
        res.once('close', release);
        socket.once('close', release);
      }
      return end.apply(res, args);
    }) as typeof end;
  }

  /** Looks after the connection `socket` from now until it closes. */
  watch(socket: Socket): void {
    if (this.sockets.has(socket)) {
      return;
    }
    this.sockets.set(socket, { written: socket.bytesWritten, at: Date.now() });
    socket.once('close', () => this.sockets.delete(socket));
    // Its own listener, and one per answer queued on it (at most PIPELINED_MAX): not a leak.
    socket.setMaxListeners(PIPELINED_MAX + 10);
    if (!this.timer) {
      this.timer = setInterval(() => this.sweep(), SWEEP_MS);
      this.timer.unref();
    }
  }

  /**
   * Destroys connections holding answers (in their buffers and queued behind them) until the
   * rest fit under the limit: the one whose buffer has not moved for longest first, then the
   * one holding most. Size alone closed a client reading a 30 MB answer (one write, whose
   * buffer counts whole until it completes) while clients that read nothing kept theirs.
   * Returns the bytes their buffers held; what was queued on them is given back at once.
   */
  private shed(total: number, now: number): number {
    const holders: Array<{ socket: Socket; stalled: number; buffered: number; holding: number }> = [];
    for (const [socket, w] of this.sockets) {
      const buffered = socket.writableLength;
      const holding = buffered + (this.queuedOn.get(socket)?.bytes ?? 0);
      if (holding > 0 && !socket.destroyed) {
        holders.push({ socket, stalled: now - w.at, buffered, holding });
      }
    }
    holders.sort((a, b) => b.stalled - a.stalled || b.holding - a.holding);
    let freed = 0;
    let buffered = 0;
    let closed = 0;
    for (const h of holders) {
      if (total - freed <= this.limits.maxUnsentBytes) {
        break;
      }
      freed += h.holding;
      buffered += h.buffered;
      closed++;
      this.close(h.socket);
    }
    this.limits.onShed?.(closed, freed);
    return buffered;
  }

  /** Destroys a connection, and forgets at once the answers queued on it (its 'close' forgets the rest). */
  private close(socket: Socket): void {
    [...(this.queuedOn.get(socket)?.releases ?? [])].forEach((release) => release());
    socket.destroy();
  }

  /** Sums what the connections hold and closes the ones whose client has not read for the send timeout. */
  sweep(now = Date.now()): void {
    this.sweptAt = now;
    let total = 0;
    for (const [socket, w] of this.sockets) {
      if (socket.destroyed) {
        continue; // closed already: forgotten at its 'close'
      }
      const pending = socket.writableLength;
      if (pending === 0 || socket.bytesWritten !== w.written) {
        w.written = socket.bytesWritten;
        w.at = now;
      } else if (now - w.at >= this.limits.timeoutMs) {
        this.close(socket);
        continue;
      }
      total += pending;
    }
    if (total + this.queued > this.limits.maxUnsentBytes) {
      total -= this.shed(total + this.queued, now);
    }
    this.bytes = total;
    if (this.sockets.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }
}
