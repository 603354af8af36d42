/**
 * The last values decoded, by key. Values are compared byte for byte, so a repeated hit
 * reuses the decoded answer (and its rendered text) instead of inflating and parsing it
 * again, while a recomputed value under the same key is decoded afresh. Kept within a number
 * of entries and of bytes (as `weigh` reckons them, again at every reuse: a hit may have
 * rendered another body since), the least recently used going first.
 */
import { decode } from './codec';

interface Kept<T> {
  raw: Buffer;
  value: T;
  bytes: number;
}

export class RecentlyDecoded<T> {
  private readonly values = new Map<string, Kept<T>>();
  private bytes = 0;

  constructor(
    private readonly capacity: number,
    private readonly maxBytes = Infinity,
    private readonly weigh: (value: T) => number = () => 0
  ) {}

  decode(key: string, raw: Buffer): T | null {
    const known = this.values.get(key);
    if (known && known.raw.equals(raw)) {
      this.remove(key, known); // most recently used goes last
      this.keep(key, known);
      return known.value;
    }
    if (known) {
      this.remove(key, known);
    }
    const value = decode<T>(raw);
    if (value) {
      this.keep(key, { raw, value, bytes: 0 });
    }
    return value;
  }

  /** Bytes the values kept weigh, as last weighed. */
  get heldBytes(): number {
    return this.bytes;
  }

  private keep(key: string, kept: Kept<T>): void {
    kept.bytes = kept.raw.length + this.weigh(kept.value);
    if (kept.bytes > this.maxBytes) {
      return; // over the limit alone: answered, not kept, and nothing else dropped for it
    }
    this.values.set(key, kept);
    this.bytes += kept.bytes;
    while (this.values.size > 0 && (this.values.size > this.capacity || this.bytes > this.maxBytes)) {
      const [oldestKey, oldest] = this.values.entries().next().value!;
      this.remove(oldestKey, oldest);
    }
  }

  private remove(key: string, kept: Kept<T>): void {
    this.values.delete(key);
    this.bytes -= kept.bytes;
  }
}
