// Browser-style CORS as PouchDB in a browser needs it: every request is credentialed, so the
// server must echo the Origin (never "*") with Access-Control-Allow-Credentials: true.
//
// CouchDB's CORS is off by default. Expected server config (CouchDB ini syntax):
//   [httpd] enable_cors = true
//   [cors]  origins = *
//           credentials = true
// A stock CouchDB additionally needs `headers = accept, authorization, content-type, origin, referer`
// (what PouchDB's add-cors-to-couchdb sets) for the "PouchDB header list" preflight below:
// CouchDB's built-in allowed-header list has no `referer`.
//
// Without CORS (no Access-Control-Allow-Origin on a preflight) these tests are skipped, unless
// COMPAT_CORS=1 makes them mandatory.
import test from 'node:test';
import assert from 'node:assert/strict';
import { rawReq, withDb, dbPath, docPath, putDoc } from './lib-repl.mjs';

const T = { timeout: 60000 };
const ORIGIN = 'http://localhost:8000';
const MUST = process.env.COMPAT_CORS === '1';

const list = (v) => String(v || '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);

function preflight(path, method, requestHeaders) {
  const headers = { Origin: ORIGIN, 'Access-Control-Request-Method': method };
  if (requestHeaders) headers['Access-Control-Request-Headers'] = requestHeaders;
  return rawReq('OPTIONS', path, { headers });
}

// true when CORS is on; otherwise skips the test (or fails with COMPAT_CORS=1)
async function corsEnabled(t, db) {
  const r = await preflight(dbPath(db, '_changes'), 'GET');
  if (r.headers['access-control-allow-origin'] !== undefined) return true;
  if (MUST) assert.fail(`COMPAT_CORS=1 but the preflight answered ${r.status} without Access-Control-Allow-Origin`);
  t.skip('CORS is not enabled on the server (set COMPAT_CORS=1 to require it)');
  return false;
}

function assertEcho(r, what) {
  assert.equal(r.headers['access-control-allow-origin'], ORIGIN, `${what}: Access-Control-Allow-Origin echoes the Origin (never *)`);
  assert.equal(r.headers['access-control-allow-credentials'], 'true', `${what}: Access-Control-Allow-Credentials: true`);
}

test('preflight OPTIONS /db/_changes for a credentialed POST', T, (t) => withDb(async (db) => {
  if (!(await corsEnabled(t, db))) return;
  const r = await preflight(dbPath(db, '_changes'), 'POST', 'content-type,authorization');
  assert.ok(r.status === 200 || r.status === 204, `preflight status ${r.status}`);
  assertEcho(r, 'preflight');
  const methods = list(r.headers['access-control-allow-methods']).map((m) => m.toUpperCase());
  for (const m of ['GET', 'PUT', 'POST', 'HEAD', 'DELETE']) assert.ok(methods.includes(m), `allowed methods ${methods} include ${m}`);
  const allowed = list(r.headers['access-control-allow-headers']);
  for (const h of ['content-type', 'authorization']) assert.ok(allowed.includes(h), `allowed headers ${allowed} include ${h}`);
}));

test('preflight allows the PouchDB header list: accept, authorization, content-type, origin, referer', T, (t) => withDb(async (db) => {
  if (!(await corsEnabled(t, db))) return;
  for (const [path, method] of [[dbPath(db, '_changes'), 'POST'], [dbPath(db, '_bulk_docs'), 'POST'], [docPath(db, 'x'), 'PUT'], [docPath(db, 'x'), 'DELETE'], [dbPath(db, '_local') + '/chk', 'GET']]) {
    const r = await preflight(path, method, 'accept, authorization, content-type, origin, referer');
    assert.ok(r.status === 200 || r.status === 204, `${method} ${path}: preflight status ${r.status}`);
    assertEcho(r, `${method} ${path}`);
    const allowed = list(r.headers['access-control-allow-headers']);
    for (const h of ['accept', 'authorization', 'content-type', 'origin', 'referer']) {
      assert.ok(allowed.includes(h), `${method} ${path}: allowed headers ${allowed} include ${h}`);
    }
    assert.ok(list(r.headers['access-control-allow-methods']).map((m) => m.toUpperCase()).includes(method));
  }
}));

test('credentialed requests with Origin get the echoed origin, on success and on errors', T, (t) => withDb(async (db) => {
  if (!(await corsEnabled(t, db))) return;
  await putDoc(db, 'doc', { v: 1 });
  const h = { Origin: ORIGIN, Accept: 'application/json' };
  const g = await rawReq('GET', dbPath(db, '_changes') + '?since=0', { headers: h });
  assert.equal(g.status, 200);
  assertEcho(g, 'GET _changes');
  assert.equal(JSON.parse(g.text).results.length, 1);
  const d = await rawReq('GET', docPath(db, 'doc'), { headers: h });
  assert.equal(d.status, 200);
  assertEcho(d, 'GET doc');
  // etag must be readable by browser code: CouchDB exposes it
  assert.ok(list(d.headers['access-control-expose-headers']).includes('etag'), `Access-Control-Expose-Headers: ${d.headers['access-control-expose-headers']}`);
  // PouchDB's first replication reads a missing checkpoint: the 404 must carry CORS headers too
  const miss = await rawReq('GET', docPath(db, '_local/nochk'), { headers: h });
  assert.equal(miss.status, 404);
  assertEcho(miss, 'GET missing _local doc (404)');
  const post = await rawReq('POST', dbPath(db, '_bulk_docs'), { headers: { ...h, 'Content-Type': 'application/json' }, body: { docs: [{ _id: 'p1' }] } });
  assert.equal(post.status, 201);
  assertEcho(post, 'POST _bulk_docs');
  const root = await rawReq('GET', '/', { headers: h });
  assert.equal(root.status, 200);
  assertEcho(root, 'GET /');
}));

test('requests without Origin get no CORS headers', T, (t) => withDb(async (db) => {
  if (!(await corsEnabled(t, db))) return;
  const r = await rawReq('GET', dbPath(db), { headers: { Accept: 'application/json' } });
  assert.equal(r.status, 200);
  assert.equal(r.headers['access-control-allow-origin'], undefined);
}));
