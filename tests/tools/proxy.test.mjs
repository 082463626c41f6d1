// settee behind a front proxy: with [settee] trusted_proxies naming the proxy's address, the
// auth limits count the client address the proxy puts last in X-Forwarded-For; from any
// other peer the header is ignored, so a client cannot pick its own address.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { TMP, T, startServer, cleanup } from './lib.mjs';

after(cleanup);

const LIMIT = '[chttpd_auth_ratelimit]\nmax_failures = 3\nwindow = 600\n';

async function login(srv, password, xff) {
  const headers = { 'content-type': 'application/json' };
  if (xff) headers['x-forwarded-for'] = xff;
  const r = await fetch(`${srv.base}/_session`, { method: 'POST', headers, body: JSON.stringify({ name: 'admin', password }) });
  await r.text();
  return r.status;
}

test('behind a trusted proxy each forwarded client address has its own failure count', T, async () => {
  const srv = await startServer(path.join(TMP, 'proxied'), 'proxied', `${LIMIT}[settee]\ntrusted_proxies = 10.9.9.9, 127.0.0.1\n`);
  for (let i = 0; i < 3; i++) assert.equal(await login(srv, 'wrong', '203.0.113.7, 198.51.100.1'), 401, `failure ${i + 1}`);
  assert.equal(await login(srv, 'wrong', '198.51.100.1'), 429, 'the fourth failure of 198.51.100.1 is over the limit');
  assert.equal(await login(srv, 'admin', '198.51.100.2'), 200, 'another client behind the same proxy logs in');
  assert.equal(await login(srv, 'admin', 'not-an-address'), 200, 'a malformed header falls back to the proxy address');
  assert.equal(await login(srv, 'admin', '198.51.100.1'), 429, 'the limited client is still limited');
});

test('from a peer that is not a trusted proxy, X-Forwarded-For is ignored', T, async () => {
  const srv = await startServer(path.join(TMP, 'direct'), 'direct', LIMIT);
  for (let i = 0; i < 3; i++) assert.equal(await login(srv, 'wrong', `198.51.100.${10 + i}`), 401);
  assert.equal(await login(srv, 'admin', '198.51.100.99'), 429, 'the failures all counted against the real peer');
});
