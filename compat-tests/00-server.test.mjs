// Server-level API: GET /, HEAD /, /_up, /_uuids, unknown paths, 405s, _all_dbs, _dbs_info.
// Expected values: CouchDB 3.4.3 (couchdb-golden/http-shapes.jsonl, chttpd source, docs.couchdb.org).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { req, dbName } from './lib.mjs';
import { T, HEX32, enc, withDb, assertJsonHeaders, assertError, DB_MISSING } from './lib-docs.mjs';

test('GET / returns the welcome object', T, async () => {
  const r = await req('GET', '/');
  assert.equal(r.status, 200);
  assertJsonHeaders(r, 'GET /');
  assert.equal(r.json.couchdb, 'Welcome');
  assert.equal(typeof r.json.version, 'string');
  assert.match(r.json.version, /^\d+\.\d+/);
  assert.match(r.json.uuid, HEX32);
  assert.equal(typeof r.json.vendor, 'object');
  assert.equal(typeof r.json.vendor.name, 'string');
  assert.ok(r.json.vendor.name.length > 0);
  assert.ok(Array.isArray(r.json.features), 'features must be an array');
  for (const f of r.json.features) assert.equal(typeof f, 'string');
});

test('GET / uuid is stable across calls', T, async () => {
  const a = await req('GET', '/');
  const b = await req('GET', '/');
  assert.match(a.json.uuid, HEX32);
  assert.equal(a.json.uuid, b.json.uuid);
});

test('HEAD / answers 200 without a body', T, async () => {
  const r = await req('HEAD', '/');
  assert.equal(r.status, 200);
  assert.equal(r.buf.length, 0);
  assert.match(r.headers.get('content-type') || '', /^application\/json/);
});

test('X-Couch-Request-ID is sent on every reply', T, async () => {
  for (const [m, p] of [['GET', '/'], ['GET', '/_up'], ['GET', '/_uuids'], ['GET', '/nosuchdb_' + Date.now()], ['DELETE', '/']]) {
    const r = await req(m, p);
    const id = r.headers.get('x-couch-request-id');
    assert.ok(id && id.length > 0, `${m} ${p} (${r.status}) lacks X-Couch-Request-ID`);
  }
  await withDb(async (db, p) => {
    const w = await req('PUT', `${p}/doc`, { body: { a: 1 } });
    assert.equal(w.status, 201);
    assert.ok(w.headers.get('x-couch-request-id'), 'doc PUT lacks X-Couch-Request-ID');
    const e = await req('PUT', `${p}/doc`, { body: { a: 2 } });
    assert.equal(e.status, 409);
    assert.ok(e.headers.get('x-couch-request-id'), '409 lacks X-Couch-Request-ID');
  });
});

test('GET /_up', T, async () => {
  const r = await req('GET', '/_up');
  assert.equal(r.status, 200);
  assertJsonHeaders(r, '/_up');
  assert.equal(r.json.status, 'ok');
});

test('GET /_uuids: default count 1, no-cache', T, async () => {
  const r = await req('GET', '/_uuids');
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') || '', /^application\/json/);
  assert.match(r.headers.get('cache-control') || '', /no-cache/);
  assert.deepEqual(Object.keys(r.json), ['uuids']);
  assert.equal(r.json.uuids.length, 1);
  assert.match(r.json.uuids[0], HEX32);
});

test('GET /_uuids?count=5 gives 5 distinct 32-hex uuids, fresh each call', T, async () => {
  const a = await req('GET', '/_uuids?count=5');
  assert.equal(a.status, 200);
  assert.equal(a.json.uuids.length, 5);
  for (const u of a.json.uuids) assert.match(u, HEX32);
  assert.equal(new Set(a.json.uuids).size, 5);
  const b = await req('GET', '/_uuids?count=5');
  for (const u of b.json.uuids) assert.ok(!a.json.uuids.includes(u), 'uuid repeated across calls');
  const z = await req('GET', '/_uuids?count=0');
  assert.equal(z.status, 200);
  assert.deepEqual(z.json, { uuids: [] });
});

test('GET /_uuids: count up to max_count (1000) accepted, above → 400', T, async () => {
  const ok = await req('GET', '/_uuids?count=1000');
  assert.equal(ok.status, 200);
  assert.equal(ok.json.uuids.length, 1000);
  assert.equal(new Set(ok.json.uuids).size, 1000);
  const big = await req('GET', '/_uuids?count=1001');
  assertError(big, 400, 'bad_request', 'count parameter too large');
  const huge = await req('GET', '/_uuids?count=100000000');
  assertError(huge, 400, 'bad_request', 'count parameter too large');
});

test('GET /_uuids: negative or non-integer count → 400', T, async () => {
  for (const c of ['-1', 'abc']) {
    const r = await req('GET', '/_uuids?count=' + c);
    assertError(r, 400, 'bad_request', 'count must be a positive integer');
  }
});

test('unknown paths: /_nonexistent and /nosuchdb → 404 Database does not exist', T, async () => {
  for (const p of ['/_nonexistent', '/nosuchdb_' + process.pid + '_' + Date.now()]) {
    const r = await req('GET', p);
    assertError(r, 404, DB_MISSING.error, DB_MISSING.reason);
    assertJsonHeaders(r, p);
  }
  const h = await req('HEAD', '/nosuchdb_' + Date.now());
  assert.equal(h.status, 404);
  assert.equal(h.buf.length, 0);
});

test('405 method_not_allowed carries an Allow header', T, async () => {
  const cases = [
    ['DELETE', '/', 'GET,HEAD'],
    ['POST', '/', 'GET,HEAD'],
    ['POST', '/_all_dbs', 'GET,HEAD'],
    ['POST', '/_uuids', 'GET'],
  ];
  for (const [m, p, allow] of cases) {
    const r = await req(m, p, m === 'POST' ? { body: {} } : {});
    assertError(r, 405, 'method_not_allowed', `Only ${allow} allowed`);
    assert.equal(r.headers.get('allow'), allow, `${m} ${p}`);
    assertJsonHeaders(r, `${m} ${p}`);
  }
});

test('PATCH /db/doc → 405 with allow DELETE,GET,HEAD,POST,PUT,COPY (golden doc_patch_405)', T, async () => {
  await withDb(async (db, p) => {
    await req('PUT', `${p}/doc1`, { body: { a: 1 } });
    const r = await req('PATCH', `${p}/doc1`, { body: { a: 1 } });
    assertError(r, 405, 'method_not_allowed', 'Only DELETE,GET,HEAD,POST,PUT,COPY allowed');
    assert.equal(r.headers.get('allow'), 'DELETE,GET,HEAD,POST,PUT,COPY');
    assertJsonHeaders(r, 'PATCH');
    // other db-level endpoints
    const b = await req('GET', `${p}/_bulk_docs`);
    assertError(b, 405, 'method_not_allowed', 'Only POST allowed');
    assert.equal(b.headers.get('allow'), 'POST');
    const rd = await req('GET', `${p}/_revs_diff`);
    assertError(rd, 405, 'method_not_allowed', 'Only POST allowed');
    const bg = await req('GET', `${p}/_bulk_get`);
    assertError(bg, 405, 'method_not_allowed', 'Only POST allowed');
    const efc = await req('GET', `${p}/_ensure_full_commit`);
    assertError(efc, 405, 'method_not_allowed', 'Only POST allowed');
    const c = await req('GET', `${p}/_compact`);
    assertError(c, 405, 'method_not_allowed', 'Only POST allowed');
    const ad = await req('DELETE', `${p}/_all_docs`);
    assertError(ad, 405, 'method_not_allowed', 'Only GET,HEAD,POST allowed');
    const s = await req('DELETE', `${p}/_security`);
    assertError(s, 405, 'method_not_allowed', 'Only PUT,GET allowed');
    const rl = await req('DELETE', `${p}/_revs_limit`);
    assertError(rl, 405, 'method_not_allowed', 'Only PUT,GET allowed');
    const dbp = await req('PATCH', p, { body: {} });
    assertError(dbp, 405, 'method_not_allowed', 'Only DELETE,GET,HEAD,POST allowed');
    assert.equal(dbp.headers.get('allow'), 'DELETE,GET,HEAD,POST');
  });
});

// _all_dbs / _dbs_info ------------------------------------------------------------

async function withThreeDbs(fn) {
  const base = dbName('alldbs');
  const names = [base + '_a', base + '_b', base + '_c'];
  try {
    for (const n of names) {
      const r = await req('PUT', '/' + enc(n));
      assert.equal(r.status, 201, `create ${n}: ${r.text}`);
    }
    await fn(base, names);
  } finally {
    for (const n of names) await req('DELETE', '/' + enc(n));
  }
}
const q = (v) => enc(JSON.stringify(v));

test('GET /_all_dbs lists databases sorted by name', T, async () => {
  await withThreeDbs(async (base, names) => {
    const r = await req('GET', '/_all_dbs');
    assert.equal(r.status, 200);
    assertJsonHeaders(r, '_all_dbs');
    assert.ok(Array.isArray(r.json));
    for (const n of names) assert.ok(r.json.includes(n), `${n} missing from _all_dbs`);
    const sorted = [...r.json].sort((x, y) => (Buffer.compare(Buffer.from(x), Buffer.from(y))));
    assert.deepEqual(r.json, sorted, '_all_dbs must be sorted');
  });
});

test('GET /_all_dbs: startkey/endkey/limit/skip/descending and start_key/end_key', T, async () => {
  await withThreeDbs(async (base, [a, b, c]) => {
    const range = `startkey=${q(base)}&endkey=${q(base + '\ufff0')}`;
    let r = await req('GET', `/_all_dbs?${range}`);
    assert.deepEqual(r.json, [a, b, c]);
    r = await req('GET', `/_all_dbs?start_key=${q(base)}&end_key=${q(base + '\ufff0')}`);
    assert.deepEqual(r.json, [a, b, c]);
    r = await req('GET', `/_all_dbs?startkey=${q(base)}&endkey=${q(b)}`);
    assert.deepEqual(r.json, [a, b], 'endkey is inclusive');
    r = await req('GET', `/_all_dbs?${range}&limit=2`);
    assert.deepEqual(r.json, [a, b]);
    r = await req('GET', `/_all_dbs?${range}&skip=1`);
    assert.deepEqual(r.json, [b, c]);
    r = await req('GET', `/_all_dbs?${range}&skip=1&limit=1`);
    assert.deepEqual(r.json, [b]);
    r = await req('GET', `/_all_dbs?descending=true&startkey=${q(base + '\ufff0')}&endkey=${q(base)}`);
    assert.deepEqual(r.json, [c, b, a]);
    r = await req('GET', `/_all_dbs?descending=true&startkey=${q(base + '\ufff0')}&endkey=${q(base)}&limit=2`);
    assert.deepEqual(r.json, [c, b]);
  });
});

test('GET /_dbs_info lists {key, info} for a range', T, async () => {
  await withThreeDbs(async (base, [a, b, c]) => {
    const r = await req('GET', `/_dbs_info?startkey=${q(base)}&endkey=${q(base + '\ufff0')}`);
    assert.equal(r.status, 200);
    assertJsonHeaders(r, '_dbs_info');
    assert.deepEqual(r.json.map((x) => x.key), [a, b, c]);
    for (const row of r.json) {
      assert.equal(row.info.db_name, row.key);
      assert.equal(row.info.doc_count, 0);
      assert.ok('update_seq' in row.info);
    }
    const l = await req('GET', `/_dbs_info?startkey=${q(base)}&endkey=${q(base + '\ufff0')}&limit=1`);
    assert.deepEqual(l.json.map((x) => x.key), [a]);
  });
});

test('POST /_dbs_info {keys} gives info or not_found per key, in order', T, async () => {
  await withThreeDbs(async (base, [a, b]) => {
    const missing = base + '_zz_missing';
    const r = await req('POST', '/_dbs_info', { body: { keys: [b, missing, a] } });
    assert.equal(r.status, 200);
    assert.equal(r.json.length, 3);
    assert.equal(r.json[0].key, b);
    assert.equal(r.json[0].info.db_name, b);
    assert.deepEqual(r.json[1], { key: missing, error: 'not_found' });
    assert.equal(r.json[2].key, a);
    assert.equal(r.json[2].info.db_name, a);
    const bad = await req('POST', '/_dbs_info', { body: { nokeys: [] } });
    assertError(bad, 400, 'bad_request', '`keys` member must exist.');
  });
});
