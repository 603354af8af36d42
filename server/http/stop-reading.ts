/**
 * Reads nothing more from a connection about to close (answered busy, or refused before its
 * body): what its last read brought is still parsed and each request in it dispatched, but not
 * the reads after it (libuv reads up to 32 of 64 KB a turn from a connection that keeps sending).
 * Node's http server offers no way to stop reading a connection, so this stops its handle.
 */
import type { Socket } from 'node:net';

export function stopReading(socket: Socket): void {
  (socket as Socket & { _handle?: { readStop?: () => void } })._handle?.readStop?.();
}
