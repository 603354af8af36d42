/** Which Accept-Encoding headers get gzip, and that a reused body is compressed once. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { acceptsGzip, gzipped } from './compression';

test('Accept-Encoding: gzip by name or by *, unless its q is 0', () => {
  for (const header of [
    'gzip',
    'gzip, deflate, br, zstd',
    'br;q=1.0, gzip;q=0.8',
    '*',
    'GZIP',
    'x-gzip',
    'br, *;q=0.1',
  ]) {
    assert.equal(acceptsGzip(header), true, header);
  }
  for (const header of [undefined, '', 'identity', 'br, deflate', 'gzip;q=0', 'gzip;q=0.0, br', '*;q=0', 'gzip;q=x']) {
    assert.equal(acceptsGzip(header), false, String(header));
  }
  assert.equal(acceptsGzip('*, gzip;q=0'), false, 'gzip named with q=0 wins over *');
});

test('a body is gzipped once and the same bytes come back for the same Buffer; small ones are left as they are', () => {
  const body = Buffer.from(
    JSON.stringify({ values: Array.from({ length: 500 }, (_, i) => 1_796_108_520_000 + i * 120_000) })
  );
  const packed = gzipped(body);
  assert.ok(packed && packed.length < body.length / 3, `${packed?.length} of ${body.length}`);
  assert.deepEqual(gunzipSync(packed), body);
  assert.equal(gzipped(body), packed, 'kept beside the body');
  assert.equal(gzipped(Buffer.from('{"results":{}}')), null, 'under 1 KB');
});
