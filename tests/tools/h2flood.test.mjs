// HTTP/2 rapid reset (CVE-2023-44487) against settee with cleartext HTTP/2 on: the flooding
// connection is shut once it passes [settee] http2_max_request_rate, the flood tool has to
// reconnect again and again, and a well-behaved client is served all along. Bounded: 3 s of
// flood on loopback.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { TMP, T, startServer, run, cleanup } from './lib.mjs';

after(cleanup);

test('a rapid-reset flood is cut per connection and other clients are still served', T, async () => {
  const srv = await startServer(path.join(TMP, 'h2'), 'h2', '[settee]\nhttp2_cleartext = true\nhttp2_max_request_rate = 500\n');
  const port = new URL(srv.base).port;
  const flood = run('settee-h2flood', ['--seconds', '3', '--bind', '127.0.0.2', '127.0.0.1', port]);
  let served = 0, failed = 0;
  const end = Date.now() + 2500;
  while (Date.now() < end) {
    try { if ((await fetch(`${srv.base}/_up`)).ok) served++; else failed++; } catch { failed++; }
  }
  const r = await flood;
  assert.equal(r.code, 0, r.err);
  const out = JSON.parse(r.out);
  assert.ok(out.closed_by_server >= 1, `the server closed ${out.closed_by_server} flooding connections: ${r.out}`);
  assert.equal(failed, 0);
  assert.ok(served > 20, `${served} requests served during the flood`);
  const log = fs.readFileSync(path.join(TMP, 'h2.log'), 'utf8');
  assert.match(log, /over its request rate: closed/);
  // the flooding address is refused for a while, others are not
  assert.equal((await fetch(`${srv.base}/_up`)).status, 200);
  console.log(`# flood: ${r.out.trim()}; victim served ${served} requests in 2.5 s`);
});
