/**
 * Cache values: one version byte, then the JSON of the entry, deflated when that saves
 * space (most answers are numbers and a SQL text, which compress several-fold).
 */
import { deflateRawSync, inflateRawSync } from 'node:zlib';

const PLAIN = 1;
const DEFLATED = 2;

export function encode(value: unknown): Buffer {
  const json = Buffer.from(JSON.stringify(value));
  if (json.length > 200) {
    const packed = deflateRawSync(json, { level: 6 });
    if (packed.length < json.length) return Buffer.concat([Buffer.from([DEFLATED]), packed]);
  }
  return Buffer.concat([Buffer.from([PLAIN]), json]);
}

export function decode<T>(buf: Buffer): T | null {
  if (buf.length < 2) return null;
  try {
    if (buf[0] === PLAIN) return JSON.parse(buf.subarray(1).toString());
    if (buf[0] === DEFLATED) return JSON.parse(inflateRawSync(buf.subarray(1)).toString());
  } catch {
    return null; // a corrupt value is a miss, not an error
  }
  return null;
}
