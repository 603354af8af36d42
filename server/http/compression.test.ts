/** Which Accept-Encoding headers get gzip, and that a reused body is compressed once. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { acceptsGzip, forClientLater, forClientNow, gzipped } from './compression';

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

test('a large body is compressed off the event loop once, then answered synchronously like any cached one', async () => {
  const large = Buffer.from(
    JSON.stringify({ values: Array.from({ length: 20_000 }, (_, i) => 1_796_108_520_000 + i * 120_000) })
  );
  assert.ok(large.length > 64 * 1024);
  assert.equal(forClientNow(200, large, true), null, 'not compressed yet: the caller goes through forClientLater');
  assert.deepEqual(forClientNow(200, large, false)?.body, large, 'a client without gzip gets it as it is, at once');
  assert.equal(forClientNow(503, large, true)?.body, large, 'only answers (200) are compressed');
  const [later, again] = await Promise.all([forClientLater(200, large, true), forClientLater(200, large, true)]);
  assert.equal(again.body, later.body, 'two requests waiting for one body share one compression');
  assert.deepEqual(later.headers, ['Vary', 'Accept-Encoding', 'Content-Encoding', 'gzip']);
  assert.deepEqual(gunzipSync(later.body), large);
  assert.equal(forClientNow(200, large, true)?.body, later.body, 'kept beside the body for the next hit');
  const small = Buffer.from(JSON.stringify({ values: Array.from({ length: 300 }, (_, i) => i * 7) }));
  assert.ok(forClientNow(200, small, true), 'a small body is compressed on the spot');
});
