// Database API: create/info/HEAD/delete, names, _revs_limit, _security, _compact,
// _ensure_full_commit, system db names. Expected: CouchDB 3.4.3 (golden http-shapes + chttpd_db).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { req, dbName, freshDb, dropDb } from './lib.mjs';
import { T, enc, withDb, assertJsonHeaders, assertError, DB_MISSING, putDoc } from './lib-docs.mjs';

const illegalReason = (name) =>
  `Name: '${name}'. Only lowercase characters (a-z), digits (0-9), and any of the characters _, $, (, ), +, -, and / are allowed. Must begin with a letter.`;

const isSeq = (s) => typeof s === 'string' || typeof s === 'number';

test('PUT /db → 201 {ok:true} with location; again → 412 file_exists', T, async () => {
  const name = dbName('dbcreate');
  try {
    const r = await req('PUT', '/' + name);
    assert.equal(r.status, 201);
    assertJsonHeaders(r, 'db create');
    assert.deepEqual(r.json, { ok: true });
    const loc = r.headers.get('location');
    assert.ok(loc, 'location header missing');
    assert.match(loc, /^https?:\/\//, 'location is an absolute URL');
    assert.equal(new URL(loc).pathname, '/' + name);
    const again = await req('PUT', '/' + name);
    assertError(again, 412, 'file_exists', 'The database could not be created, the file already exists.');
    assertJsonHeaders(again, 'db create 412');
  } finally {
    await req('DELETE', '/' + name);
  }
});

test('illegal database names → 400 illegal_database_name, nothing created', T, async () => {
  const u = `${process.pid}x${Date.now().toString(36)}`;
  const names = [`Bad_${u}`, `_bad_${u}`, `1bad_${u}`, `bad ${u}`, `bad.${u}`, `bad@${u}`, `bad_${u}_É`];
  for (const n of names) {
    try {
      const r = await req('PUT', '/' + enc(n));
      assertError(r, 400, 'illegal_database_name', illegalReason(n));
      assertJsonHeaders(r, `PUT ${n}`);
      const g = await req('GET', '/' + enc(n));
      assert.equal(g.status === 200, false, `${n} must not exist after a refused create`);
    } finally {
      // in case a broken server created it anyway
      await req('DELETE', '/' + enc(n));
    }
  }
});

test('names with / (percent-encoded) and _$()+- are legal', T, async () => {
  const base = dbName('dbchars');
  const slash = `${base}/sub`;
  const fancy = `${base}_$()+-/x9`;
  try {
    const r = await req('PUT', '/' + enc(slash));
    assert.equal(r.status, 201, r.text);
    assert.deepEqual(r.json, { ok: true });
    assert.ok((r.headers.get('location') || '').endsWith('/' + base + '%2Fsub'), `location: ${r.headers.get('location')}`);
    const info = await req('GET', '/' + enc(slash));
    assert.equal(info.status, 200);
    assert.equal(info.json.db_name, slash);
    const d = await putDoc(slash, 'x', { v: 1 });
    assert.match(d, /^1-/);
    const doc = await req('GET', '/' + enc(slash) + '/x');
    assert.equal(doc.json.v, 1);
    const all = await req('GET', '/_all_dbs');
    assert.ok(all.json.includes(slash));

    const f = await req('PUT', '/' + enc(fancy));
    assert.equal(f.status, 201, f.text);
    const fi = await req('GET', '/' + enc(fancy));
    assert.equal(fi.json.db_name, fancy);

    const del = await req('DELETE', '/' + enc(slash));
    assert.equal(del.status, 200);
    assert.deepEqual(del.json, { ok: true });
    assert.equal((await req('GET', '/' + enc(slash))).status, 404);
  } finally {
    await req('DELETE', '/' + enc(slash));
    await req('DELETE', '/' + enc(fancy));
  }
});

test('GET /db info has the fields replicators need', T, async () => {
  await withDb(async (db, p) => {
    const r = await req('GET', p);
    assert.equal(r.status, 200);
    assertJsonHeaders(r, 'db info');
    const i = r.json;
    assert.equal(i.db_name, db);
    assert.ok(isSeq(i.update_seq), 'update_seq');
    assert.ok(isSeq(i.purge_seq), 'purge_seq');
    assert.equal(i.doc_count, 0);
    assert.equal(i.doc_del_count, 0);
    assert.equal(typeof i.instance_start_time, 'string');
    assert.equal(i.compact_running, false);
    assert.deepEqual(i.props, {});
    assert.equal(typeof i.sizes, 'object');
    for (const k of ['file', 'external', 'active']) assert.equal(typeof i.sizes[k], 'number', `sizes.${k}`);
  });
});

test('db info counts docs and deleted docs; update_seq moves', T, async () => {
  await withDb(async (db, p) => {
    const before = (await req('GET', p)).json;
    const ra = await putDoc(db, 'a', { v: 1 });
    await putDoc(db, 'b', { v: 1 });
    await putDoc(db, 'c', { v: 1 });
    const mid = (await req('GET', p)).json;
    assert.equal(mid.doc_count, 3);
    assert.equal(mid.doc_del_count, 0);
    assert.notDeepEqual(mid.update_seq, before.update_seq);
    const d = await req('DELETE', `${p}/a?rev=${ra}`);
    assert.equal(d.status, 200);
    assert.equal((await req('PUT', `${p}/_local/x`, { body: { v: 1 } })).status, 201);
    const after = (await req('GET', p)).json;
    assert.equal(after.doc_count, 2, '_local docs are not counted');
    assert.equal(after.doc_del_count, 1);
    assert.notDeepEqual(after.update_seq, mid.update_seq);
    assert.equal(after.instance_start_time, before.instance_start_time);
  });
});

test('HEAD /db → 200 no body; missing → 404', T, async () => {
  await withDb(async (db, p) => {
    const r = await req('HEAD', p);
    assert.equal(r.status, 200);
    assert.equal(r.buf.length, 0);
    assertJsonHeaders(r, 'HEAD db');
  });
  const m = await req('HEAD', '/' + dbName('nodb'));
  assert.equal(m.status, 404);
  assert.equal(m.buf.length, 0);
});

test('missing database: GET/DELETE → 404 not_found "Database does not exist."', T, async () => {
  const name = dbName('nodb');
  const g = await req('GET', '/' + name);
  assertError(g, 404, DB_MISSING.error, DB_MISSING.reason);
  assertJsonHeaders(g, 'missing db');
  const d = await req('DELETE', '/' + name);
  assertError(d, 404, DB_MISSING.error, DB_MISSING.reason);
});

test('missing database: sub-resources → 404 Database does not exist.', T, async () => {
  const p = '/' + dbName('nodb');
  const cases = [
    ['GET', `${p}/_all_docs`],
    ['GET', `${p}/somedoc`],
    ['PUT', `${p}/somedoc`, { a: 1 }],
    ['POST', `${p}/_bulk_docs`, { docs: [{ _id: 'x' }] }],
    ['POST', `${p}/_revs_diff`, { x: ['1-abc'] }],
    ['GET', `${p}/_local/x`],
    ['POST', `${p}/_ensure_full_commit`, {}],
    ['GET', `${p}/_changes`],
  ];
  for (const [m, path, body] of cases) {
    const r = await req(m, path, body === undefined ? {} : { body });
    assertError(r, 404, DB_MISSING.error, DB_MISSING.reason);
  }
  assert.equal((await req('GET', p)).status, 404, 'a write to a missing db must not create it');
});

test('DELETE /db → 200 {ok:true}; db gone afterwards', T, async () => {
  const name = await freshDb('dbdel');
  try {
    await putDoc(name, 'a', { v: 1 });
    const r = await req('DELETE', '/' + name);
    assert.equal(r.status, 200);
    assertJsonHeaders(r, 'db delete');
    assert.deepEqual(r.json, { ok: true });
    assertError(await req('GET', '/' + name), 404, 'not_found', 'Database does not exist.');
    assertError(await req('GET', `/${name}/a`), 404, 'not_found', 'Database does not exist.');
    // re-create gives an empty database
    assert.equal((await req('PUT', '/' + name)).status, 201);
    const i = await req('GET', '/' + name);
    assert.equal(i.json.doc_count, 0);
    assert.equal((await req('GET', `/${name}/a`)).status, 404);
  } finally {
    await dropDb(name);
  }
});

test('DELETE /db?rev=… → 400 and the database stays', T, async () => {
  await withDb(async (db, p) => {
    const r = await req('DELETE', `${p}?rev=1-abc`);
    assertError(r, 400, 'bad_request', 'You tried to DELETE a database with a ?=rev parameter. Did you mean to DELETE a document instead?');
    assert.equal((await req('GET', p)).status, 200);
  });
});

test('_revs_limit: GET 1000, PUT n, GET n; non-integer PUT → 500 unknown_error (golden)', T, async () => {
  await withDb(async (db, p) => {
    const g = await req('GET', `${p}/_revs_limit`);
    assert.equal(g.status, 200);
    assertJsonHeaders(g, '_revs_limit');
    assert.equal(g.text.trim(), '1000');
    const put = await req('PUT', `${p}/_revs_limit`, { body: '5', headers: { 'Content-Type': 'application/json' } });
    assert.equal(put.status, 200);
    assert.deepEqual(put.json, { ok: true });
    assert.equal((await req('GET', `${p}/_revs_limit`)).json, 5);
    const bad = await req('PUT', `${p}/_revs_limit`, { body: '"abc"', headers: { 'Content-Type': 'application/json' } });
    assert.equal(bad.status, 500, bad.text);
    assert.equal(bad.json.error, 'unknown_error');
    assert.equal((await req('GET', `${p}/_revs_limit`)).json, 5, 'a refused PUT leaves the limit alone');
  });
});

test('_security: admin-only default (golden), PUT replaces, GET returns it', T, async () => {
  await withDb(async (db, p) => {
    const g = await req('GET', `${p}/_security`);
    assert.equal(g.status, 200);
    assertJsonHeaders(g, '_security');
    assert.deepEqual(g.json, { members: { roles: ['_admin'] }, admins: { roles: ['_admin'] } });
    const sec = { admins: { names: ['alice'], roles: ['boss'] }, members: { names: ['bob'], roles: [] } };
    const put = await req('PUT', `${p}/_security`, { body: sec });
    assert.equal(put.status, 200);
    assert.deepEqual(put.json, { ok: true });
    const g2 = await req('GET', `${p}/_security`);
    assert.deepEqual(g2.json, sec);
  });
});

test('_compact → 202 {ok:true}; needs Content-Type application/json (415)', T, async () => {
  await withDb(async (db, p) => {
    await putDoc(db, 'a', { v: 1 });
    const r = await req('POST', `${p}/_compact`, { body: {} });
    assert.equal(r.status, 202);
    assertJsonHeaders(r, '_compact');
    assert.deepEqual(r.json, { ok: true });
    const nct = await req('POST', `${p}/_compact`);
    assertError(nct, 415, 'bad_content_type', 'Content-Type must be application/json');
    const txt = await req('POST', `${p}/_compact`, { body: '{}', headers: { 'Content-Type': 'text/plain' } });
    assertError(txt, 415, 'bad_content_type', 'Content-Type must be application/json');
    // the db still works and is eventually not compacting
    for (let i = 0; i < 100; i++) {
      const info = await req('GET', p);
      if (info.json.compact_running === false) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    assert.equal((await req('GET', p)).json.compact_running, false);
    assert.equal((await req('GET', `${p}/a`)).json.v, 1);
  });
});

test('_ensure_full_commit → 201 {ok, instance_start_time} equal to db info, with or without a body', T, async () => {
  await withDb(async (db, p) => {
    const info = (await req('GET', p)).json;
    const a = await req('POST', `${p}/_ensure_full_commit`, { body: {} });
    assert.equal(a.status, 201);
    assertJsonHeaders(a, '_ensure_full_commit');
    assert.deepEqual(a.json, { ok: true, instance_start_time: info.instance_start_time });
    const b = await req('POST', `${p}/_ensure_full_commit`, { body: '', headers: { 'Content-Type': 'application/json' } });
    assert.equal(b.status, 201);
    assert.deepEqual(b.json, { ok: true, instance_start_time: info.instance_start_time });
  });
});

test('system databases _users and _replicator can be created (412 when present)', T, async () => {
  for (const name of ['_users', '_replicator']) {
    const g = await req('GET', '/' + name);
    if (g.status === 200) {
      const r = await req('PUT', '/' + name);
      assertError(r, 412, 'file_exists');
    } else {
      assert.equal(g.status, 404);
      const r = await req('PUT', '/' + name);
      try {
        assert.equal(r.status, 201, r.text);
        assert.deepEqual(r.json, { ok: true });
        const i = await req('GET', '/' + name);
        assert.equal(i.status, 200);
        assert.equal(i.json.db_name, name);
      } finally {
        if (r.status === 201) await req('DELETE', '/' + name);
      }
    }
  }
  // other underscore names stay illegal
  const bad = await req('PUT', '/_settee_not_a_system_db');
  assertError(bad, 400, 'illegal_database_name', illegalReason('_settee_not_a_system_db'));
});
