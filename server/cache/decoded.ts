/**
 * The last values decoded, by key. Values are compared byte for byte, so a repeated hit
 * reuses the decoded answer (and its rendered text) instead of inflating and parsing it
 * again, while a recomputed value under the same key is decoded afresh.
 */
import { decode } from './codec';

export class RecentlyDecoded<T> {
  private readonly values = new Map<string, { raw: Buffer; value: T }>();
  constructor(private readonly capacity: number) {}

  decode(key: string, raw: Buffer): T | null {
    const known = this.values.get(key);
    if (known && known.raw.equals(raw)) {
      this.values.delete(key); // most recently used goes last
      this.values.set(key, known);
      return known.value;
    }
    const value = decode<T>(raw);
    if (value) {
      this.values.set(key, { raw, value });
      if (this.values.size > this.capacity) {
        this.values.delete(this.values.keys().next().value!);
      }
    }
    return value;
  }
}
