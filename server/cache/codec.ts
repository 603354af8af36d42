/**
 * Cache values: one version byte, then the JSON of the entry, deflated when that saves
 * space (most answers are numbers and a SQL text, which compress several-fold).
 */
import { deflateRaw, inflateRawSync } from 'node:zlib';
import { promisify } from 'node:util';

const deflateRawAsync = promisify(deflateRaw);

const PLAIN = 1;
const DEFLATED = 2;

/** Deflates on libuv's thread pool: storing a fresh answer must not hold up the hits being served. */
export function encode(value: unknown): Promise<Buffer> {
  return encodeJson(JSON.stringify(value));
}

/** `encode` of a value whose JSON text is already built (the store builds a large answer's a slice at a time). */
export async function encodeJson(text: string): Promise<Buffer> {
  const json = Buffer.from(text);
  if (json.length > 200) {
    const packed = await deflateRawAsync(json, { level: 6 });
    if (packed.length < json.length) {
      return Buffer.concat([Buffer.from([DEFLATED]), packed]);
    }
  }
  return Buffer.concat([Buffer.from([PLAIN]), json]);
}

export function decode<T>(buf: Buffer): T | null {
  if (buf.length < 2) {
    return null;
  }
  try {
    if (buf[0] === PLAIN) {
      return JSON.parse(buf.subarray(1).toString());
    }
    if (buf[0] === DEFLATED) {
      return JSON.parse(inflateRawSync(buf.subarray(1)).toString());
    }
  } catch {
    return null; // a corrupt value is a miss, not an error
  }
  return null;
}
