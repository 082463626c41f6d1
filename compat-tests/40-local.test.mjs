// _local documents (replication checkpoints). Expected: CouchDB 3.4.3 golden http-shapes
// (local_*), README §3: 0-N revs, stale/missing _rev is not a conflict, DELETE → 0-0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { req } from './lib.mjs';
import { T, withDb, assertJsonHeaders, assertError } from './lib-docs.mjs';

test('_local PUT/GET/update: revs 0-N, location, etag (golden)', T, async () => {
  await withDb(async (db, p) => {
    const r = await req('PUT', `${p}/_local/chk1`, { body: { history: [1] } });
    assert.equal(r.status, 201);
    assertJsonHeaders(r, '_local PUT');
    assert.deepEqual(r.json, { ok: true, id: '_local/chk1', rev: '0-1' });
    assert.ok((r.headers.get('location') || '').endsWith(`${p}/_local%2Fchk1`), r.headers.get('location'));
    assert.ok(r.headers.get('etag'), 'etag on _local PUT');

    const g = await req('GET', `${p}/_local/chk1`);
    assert.equal(g.status, 200);
    assertJsonHeaders(g, '_local GET');
    assert.ok(g.headers.get('etag'), 'etag on _local GET');
    assert.deepEqual(g.json, { _id: '_local/chk1', _rev: '0-1', history: [1] });

    const u = await req('PUT', `${p}/_local/chk1`, { body: { _rev: '0-1', history: [1, 2] } });
    assert.equal(u.status, 201);
    assert.deepEqual(u.json, { ok: true, id: '_local/chk1', rev: '0-2' });
    assert.deepEqual((await req('GET', `${p}/_local/chk1`)).json, { _id: '_local/chk1', _rev: '0-2', history: [1, 2] });
  });
});

test('_local: a stale or missing _rev is not a conflict (golden)', T, async () => {
  await withDb(async (db, p) => {
    await req('PUT', `${p}/_local/chk1`, { body: { history: [1] } });
    await req('PUT', `${p}/_local/chk1`, { body: { _rev: '0-1', history: [1, 2] } });
    const stale = await req('PUT', `${p}/_local/chk1`, { body: { _rev: '0-1', history: [] } });
    assert.equal(stale.status, 201, stale.text);
    assert.deepEqual(stale.json, { ok: true, id: '_local/chk1', rev: '0-2' });
    assert.deepEqual((await req('GET', `${p}/_local/chk1`)).json, { _id: '_local/chk1', _rev: '0-2', history: [] });
    const noRev = await req('PUT', `${p}/_local/chk1`, { body: { history: [3] } });
    assert.equal(noRev.status, 201, noRev.text);
    assert.deepEqual(noRev.json, { ok: true, id: '_local/chk1', rev: '0-1' });
    const ahead = await req('PUT', `${p}/_local/chk1`, { body: { _rev: '0-7', history: [4] } });
    assert.equal(ahead.status, 201);
    assert.equal(ahead.json.rev, '0-8');
    const fresh = await req('PUT', `${p}/_local/fresh`, { body: { _rev: '0-5', x: 1 } });
    assert.equal(fresh.status, 201, 'a _rev on a _local doc that does not exist yet is fine');
    assert.equal(fresh.json.rev, '0-6');
  });
});

test('_local GET ?revs=true; _revisions sent back is not stored (golden local_get_revs)', T, async () => {
  await withDb(async (db, p) => {
    await req('PUT', `${p}/_local/chk1`, { body: { history: [3] } });
    const g = await req('GET', `${p}/_local/chk1?revs=true`);
    assert.equal(g.status, 200);
    assert.deepEqual(g.json, { _id: '_local/chk1', _rev: '0-1', history: [3], _revisions: { start: 0, ids: ['1'] } });
    // a replicator may PUT back exactly what it read
    const back = await req('PUT', `${p}/_local/chk1`, { body: g.json });
    assert.equal(back.status, 201, back.text);
    assert.deepEqual(back.json, { ok: true, id: '_local/chk1', rev: '0-2' });
    const after = await req('GET', `${p}/_local/chk1`);
    assert.deepEqual(after.json, { _id: '_local/chk1', _rev: '0-2', history: [3] });
  });
});

test('_local missing → 404 not_found missing; DELETE → 0-0 then 404 (golden)', T, async () => {
  await withDb(async (db, p) => {
    const m = await req('GET', `${p}/_local/nochk`);
    assertError(m, 404, 'not_found', 'missing');
    assertJsonHeaders(m, '_local missing');
    assert.equal((await req('HEAD', `${p}/_local/nochk`)).status, 404);

    await req('PUT', `${p}/_local/chk1`, { body: { a: 1 } });
    await req('PUT', `${p}/_local/chk1`, { body: { _rev: '0-1', a: 2 } });
    const d = await req('DELETE', `${p}/_local/chk1?rev=0-2`);
    assert.equal(d.status, 200);
    assertJsonHeaders(d, '_local DELETE');
    assert.deepEqual(d.json, { ok: true, id: '_local/chk1', rev: '0-0' });
    assertError(await req('GET', `${p}/_local/chk1`), 404, 'not_found', 'missing');

    // a stale rev or no rev deletes as well (never a conflict)
    await req('PUT', `${p}/_local/chk2`, { body: { a: 1 } });
    const d2 = await req('DELETE', `${p}/_local/chk2`);
    assert.equal(d2.status, 200, d2.text);
    assert.deepEqual(d2.json, { ok: true, id: '_local/chk2', rev: '0-0' });
    assertError(await req('GET', `${p}/_local/chk2`), 404, 'not_found', 'missing');
    assertError(await req('DELETE', `${p}/_local/never`), 404, 'not_found', 'missing');

    // after a delete the id starts over at 0-1
    const again = await req('PUT', `${p}/_local/chk1`, { body: { a: 3 } });
    assert.equal(again.status, 201);
    assert.equal(again.json.rev, '0-1');
  });
});

test('_local docs are never in _all_docs, _changes, doc_count or update_seq', T, async () => {
  await withDb(async (db, p) => {
    await req('PUT', `${p}/real`, { body: { v: 1 } });
    const before = (await req('GET', p)).json;
    for (let i = 0; i < 3; i++) {
      const r = await req('PUT', `${p}/_local/l${i}`, { body: { i } });
      assert.equal(r.status, 201);
    }
    const after = (await req('GET', p)).json;
    assert.equal(after.doc_count, 1);
    assert.deepEqual(after.update_seq, before.update_seq, '_local writes do not move update_seq');
    const all = await req('GET', `${p}/_all_docs`);
    assert.deepEqual(all.json.rows.map((x) => x.id), ['real']);
    assert.equal(all.json.total_rows, 1);
    const ch = await req('GET', `${p}/_changes?style=all_docs&include_docs=true`);
    assert.equal(ch.status, 200);
    assert.deepEqual(ch.json.results.map((x) => x.id), ['real']);
    const ld = await req('GET', `${p}/_local_docs`);
    assert.deepEqual(ld.json.rows.map((x) => x.id), ['_local/l0', '_local/l1', '_local/l2']);
  });
});

test('_local: percent-encoded id is the same doc; attachments and bare /_local rejected', T, async () => {
  await withDb(async (db, p) => {
    const r = await req('PUT', `${p}/_local%2Fenc`, { body: { v: 1 } });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.id, '_local/enc');
    assert.deepEqual((await req('GET', `${p}/_local/enc`)).json, { _id: '_local/enc', _rev: '0-1', v: 1 });
    const att = await req('PUT', `${p}/_local/enc/file.txt`, { body: 'hi', headers: { 'Content-Type': 'text/plain' } });
    assertError(att, 400, 'bad_request', '_local documents do not accept attachments.');
    const bare = await req('GET', `${p}/_local`);
    assertError(bare, 400, 'bad_request', 'Invalid _local document id.');
    const bad = await req('PUT', `${p}/_local/x`, { body: { _foo: 1 } });
    assertError(bad, 400, 'doc_validation', 'Bad special document member: _foo');
    const badJson = await req('PUT', `${p}/_local/x`, { body: '{"a":', headers: { 'Content-Type': 'application/json' } });
    assertError(badJson, 400, 'bad_request', 'invalid UTF-8 JSON');
  });
});

test('_local: a large checkpoint body round-trips', T, async () => {
  await withDb(async (db, p) => {
    const history = Array.from({ length: 1000 }, (_, i) => ({
      session_id: `s${i}`, start_time: new Date(0).toUTCString(), recorded_seq: `${i}-g1AAAAx${'y'.repeat(40)}`, docs_written: i,
    }));
    const body = { session_id: 'abc', source_last_seq: '999-xyz', replication_id_version: 3, history };
    const r = await req('PUT', `${p}/_local/${'a'.repeat(32)}`, { body });
    assert.equal(r.status, 201);
    const g = await req('GET', `${p}/_local/${'a'.repeat(32)}`);
    assert.deepEqual(g.json, { _id: `_local/${'a'.repeat(32)}`, _rev: '0-1', ...body });
  });
});
