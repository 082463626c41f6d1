// _bulk_docs, _all_docs (+ keys, ranges, include_docs, conflicts), _design_docs, _local_docs,
// _purge. Expected: CouchDB 3.4.3 (golden http-shapes, chttpd_db, docs.couchdb.org).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { req } from './lib.mjs';
import { T, HEX32, REV, enc, withDb, assertJsonHeaders, assertError, bulk, putDoc } from './lib-docs.mjs';

const R = (n, c) => `${n}-${c.repeat(32)}`;
const q = (v) => enc(JSON.stringify(v));
const isSeq = (s) => typeof s === 'string' || typeof s === 'number';
const byteSort = (a) => [...a].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));

// _bulk_docs ----------------------------------------------------------------------

test('_bulk_docs new_edits=true: created / updated / conflict / new deleted doc / server id (golden)', T, async () => {
  await withDb(async (db, p) => {
    const rev1 = await putDoc(db, 'doc1', { a: 1 });
    const rev2 = await putDoc(db, 'doc1', { _rev: rev1, a: 2 });
    const r = await bulk(db, {
      docs: [
        { _id: 'b1', v: 1 },
        { _id: 'doc1', _rev: rev2, v: 'updated' },
        { _id: 'doc1', _rev: rev1, v: 'stale' },
        { _id: 'b2', _deleted: true },
        { v: 'no id' },
      ],
    });
    assert.equal(r.status, 201, r.text);
    assertJsonHeaders(r, '_bulk_docs');
    assert.equal(r.json.length, 5);
    assert.deepEqual(Object.keys(r.json[0]), ['ok', 'id', 'rev']);
    assert.equal(r.json[0].ok, true);
    assert.equal(r.json[0].id, 'b1');
    assert.match(r.json[0].rev, /^1-[0-9a-f]{32}$/);
    assert.equal(r.json[1].id, 'doc1');
    assert.match(r.json[1].rev, /^3-[0-9a-f]{32}$/);
    assert.deepEqual(r.json[2], { id: 'doc1', error: 'conflict', reason: 'Document update conflict.' });
    assert.equal(r.json[3].ok, true);
    assert.equal(r.json[3].id, 'b2');
    assert.match(r.json[3].rev, /^1-/);
    assert.equal(r.json[4].ok, true);
    assert.match(r.json[4].id, HEX32);
    assert.match(r.json[4].rev, /^1-/);

    assert.deepEqual((await req('GET', `${p}/b1`)).json, { _id: 'b1', _rev: r.json[0].rev, v: 1 });
    assert.deepEqual((await req('GET', `${p}/doc1`)).json, { _id: 'doc1', _rev: r.json[1].rev, v: 'updated' });
    assertError(await req('GET', `${p}/b2`), 404, 'not_found', 'deleted');
    assert.deepEqual((await req('GET', `${p}/${r.json[4].id}`)).json, { _id: r.json[4].id, _rev: r.json[4].rev, v: 'no id' });
  });
});

test('_bulk_docs: the same new id twice in one request → second is a conflict', T, async () => {
  await withDb(async (db, p) => {
    const r = await bulk(db, { docs: [{ _id: 'dup', v: 1 }, { _id: 'dup', v: 2 }] });
    assert.equal(r.status, 201);
    const oks = r.json.filter((x) => x.ok);
    const errs = r.json.filter((x) => x.error);
    assert.equal(oks.length, 1, r.text);
    assert.deepEqual(errs, [{ id: 'dup', error: 'conflict', reason: 'Document update conflict.' }]);
    const g = await req('GET', `${p}/dup`);
    assert.equal(g.json._rev, oks[0].rev);
  });
});

test('_bulk_docs deletes with _rev + _deleted and updates in one batch', T, async () => {
  await withDb(async (db, p) => {
    const ra = await putDoc(db, 'a', { v: 1 });
    const rb = await putDoc(db, 'b', { v: 1 });
    const r = await bulk(db, { docs: [{ _id: 'a', _rev: ra, _deleted: true }, { _id: 'b', _rev: rb, v: 2 }] });
    assert.equal(r.status, 201);
    assert.equal(r.json[0].ok, true);
    assert.match(r.json[0].rev, /^2-/);
    assertError(await req('GET', `${p}/a`), 404, 'not_found', 'deleted');
    assert.equal((await req('GET', `${p}/b`)).json.v, 2);
    const info = (await req('GET', p)).json;
    assert.equal(info.doc_count, 1);
    assert.equal(info.doc_del_count, 1);
  });
});

test('_bulk_docs new_edits=false: 201 [] and idempotent resend (golden)', T, async () => {
  await withDb(async (db, p) => {
    const body = {
      new_edits: false,
      docs: [
        { _id: 'cdoc', _rev: R(2, '1'), _revisions: { start: 2, ids: ['1'.repeat(32), '0'.repeat(32)] }, side: 'one' },
        { _id: 'cdoc', _rev: R(3, '2'), _revisions: { start: 3, ids: ['2'.repeat(32), '3'.repeat(32), '0'.repeat(32)] }, side: 'two' },
        { _id: 'other', _rev: R(1, 'a'), v: 1 },
      ],
    };
    for (let i = 0; i < 2; i++) {
      const r = await bulk(db, body);
      assert.equal(r.status, 201, `attempt ${i}: ${r.text}`);
      assertJsonHeaders(r, '_bulk_docs new_edits=false');
      assert.deepEqual(r.json, []);
    }
    assert.deepEqual((await req('GET', `${p}/cdoc?conflicts=true`)).json,
      { _id: 'cdoc', _rev: R(3, '2'), side: 'two', _conflicts: [R(2, '1')] });
    assert.deepEqual((await req('GET', `${p}/other`)).json, { _id: 'other', _rev: R(1, 'a'), v: 1 });
    assert.equal((await req('GET', p)).json.doc_count, 2);
    const noRev = await bulk(db, { new_edits: false, docs: [{ _id: 'x1', v: 1 }] });
    assertError(noRev, 400, 'bad_request', 'When `new_edits: false`, the document needs `_rev` or `_revisions` specified');
    assert.equal((await req('GET', `${p}/x1`)).status, 404);
  });
});

test('_bulk_docs: one illegal _id or bad special field fails the whole request, nothing written', T, async () => {
  await withDb(async (db, p) => {
    const r = await bulk(db, { docs: [{ _id: 'okid', v: 1 }, { _id: '_bad', v: 1 }] });
    assertError(r, 400, 'illegal_docid', 'Only reserved document ids may start with underscore.');
    const r2 = await bulk(db, { docs: [{ _id: 'okid2', v: 1 }, { _id: 'x', _foo: 1 }] });
    assertError(r2, 400, 'doc_validation', 'Bad special document member: _foo');
    const r3 = await bulk(db, { docs: [{ _id: 'okid3', v: 1 }, { _id: 7 }] });
    assertError(r3, 400, 'illegal_docid', 'Document id must be a string');
    const r4 = await bulk(db, { new_edits: false, docs: [{ _id: 'okid4', _rev: R(1, 'a') }, { _id: '_bad', _rev: R(1, 'b') }] });
    assertError(r4, 400, 'illegal_docid');
    for (const id of ['okid', 'okid2', 'okid3', 'okid4']) assert.equal((await req('GET', `${p}/${id}`)).status, 404, id);
    assert.equal((await req('GET', p)).json.doc_count, 0);
  });
});

test('_bulk_docs all_or_nothing → 417 not_implemented, nothing written (golden)', T, async () => {
  await withDb(async (db, p) => {
    const r = await bulk(db, { all_or_nothing: true, docs: [{ _id: 'b3', v: 1 }] });
    assert.equal(r.status, 417, r.text);
    assert.ok(Array.isArray(r.json));
    assert.equal(r.json[0].id, 'b3');
    assert.equal(r.json[0].error, 'not_implemented');
    assert.equal(r.json[0].reason, 'all_or_nothing is not supported');
    assert.equal((await req('GET', `${p}/b3`)).status, 404);
  });
});

test('_bulk_docs bodies without docs / not an object / docs not an array → 400', T, async () => {
  await withDb(async (db, p) => {
    assertError(await bulk(db, { foo: [] }), 400, 'bad_request', 'POST body must include `docs` parameter.');
    assertError(await bulk(db, [1]), 400, 'bad_request', 'Request body must be a JSON object');
    assertError(await bulk(db, { docs: { a: 1 } }), 400, 'bad_request', '`docs` parameter must be an array.');
    const empty = await bulk(db, { docs: [] });
    assert.equal(empty.status, 201);
    assert.deepEqual(empty.json, []);
    const ct = await req('POST', `${p}/_bulk_docs`, { body: '{"docs":[]}', headers: { 'Content-Type': 'text/plain' } });
    assertError(ct, 415, 'bad_content_type', 'Content-Type must be application/json');
  });
});

// _all_docs -----------------------------------------------------------------------

// Fixture: live a..e, deleted "del", _design/dd, _local/l (never listed).
async function fixture(db) {
  const revs = {};
  for (const id of ['c', 'a', 'e', 'b', 'd', 'del']) revs[id] = await putDoc(db, id, { v: id });
  const d = await req('DELETE', `/${enc(db)}/del?rev=${revs.del}`);
  assert.equal(d.status, 200);
  revs.del = d.json.rev;
  revs['_design/dd'] = (await req('PUT', `/${enc(db)}/_design/dd`, { body: { views: {} } })).json.rev;
  const l = await req('PUT', `/${enc(db)}/_local/l`, { body: { v: 'l' } });
  assert.equal(l.status, 201);
  return revs;
}
const row = (revs, id) => ({ id, key: id, value: { rev: revs[id] } });

test('_all_docs: total_rows, offset, rows sorted by id; deleted and _local excluded', T, async () => {
  await withDb(async (db, p) => {
    const revs = await fixture(db);
    const r = await req('GET', `${p}/_all_docs`);
    assert.equal(r.status, 200);
    assertJsonHeaders(r, '_all_docs');
    assert.deepEqual(r.json, {
      total_rows: 6,
      offset: 0,
      rows: ['_design/dd', 'a', 'b', 'c', 'd', 'e'].map((id) => row(revs, id)),
    });
    assert.deepEqual(Object.keys(r.json), ['total_rows', 'offset', 'rows']);
    const post = await req('POST', `${p}/_all_docs`, { body: {} });
    assert.equal(post.status, 200);
    assert.deepEqual(post.json, r.json);
  });
});

test('_all_docs is in raw (byte) order of ids, not ICU', T, async () => {
  await withDb(async (db, p) => {
    const ids = ['b', 'B', 'a', 'aa', 'A1', '1', 'é', 'z', '~'];
    const r = await bulk(db, { docs: ids.map((_id) => ({ _id })) });
    assert.equal(r.status, 201);
    const all = await req('GET', `${p}/_all_docs`);
    assert.deepEqual(all.json.rows.map((x) => x.id), byteSort(ids));
    const desc = await req('GET', `${p}/_all_docs?descending=true`);
    assert.deepEqual(desc.json.rows.map((x) => x.id), byteSort(ids).reverse());
  });
});

test('_all_docs keys (POST and GET) with missing and deleted keys (golden)', T, async () => {
  await withDb(async (db, p) => {
    const revs = await fixture(db);
    const post = await req('POST', `${p}/_all_docs`, { body: { keys: ['b', 'nosuchdoc', 'del', 'a', 'b'] } });
    assert.equal(post.status, 200);
    assert.deepEqual(post.json, {
      total_rows: 6,
      offset: null,
      rows: [
        row(revs, 'b'),
        { key: 'nosuchdoc', error: 'not_found' },
        { id: 'del', key: 'del', value: { rev: revs.del, deleted: true } },
        row(revs, 'a'),
        row(revs, 'b'),
      ],
    });
    const get = await req('GET', `${p}/_all_docs?include_docs=true&keys=${q(['b', 'nosuchdoc', 'del'])}`);
    assert.equal(get.status, 200);
    assert.deepEqual(get.json, {
      total_rows: 6,
      offset: null,
      rows: [
        { ...row(revs, 'b'), doc: { _id: 'b', _rev: revs.b, v: 'b' } },
        { key: 'nosuchdoc', error: 'not_found' },
        { id: 'del', key: 'del', value: { rev: revs.del, deleted: true }, doc: null },
      ],
    });
    const none = await req('POST', `${p}/_all_docs`, { body: { keys: [] } });
    assert.deepEqual(none.json.rows, []);
    const local = await req('POST', `${p}/_all_docs`, { body: { keys: ['_design/dd'] } });
    assert.deepEqual(local.json.rows, [row(revs, '_design/dd')]);
  });
});

test('_all_docs key, startkey/endkey (+ aliases), inclusive_end, limit, skip, offset', T, async () => {
  await withDb(async (db, p) => {
    const revs = await fixture(db);
    const ids = (r) => r.json.rows.map((x) => x.id);
    let r = await req('GET', `${p}/_all_docs?key=${q('c')}`);
    assert.deepEqual(r.json, { total_rows: 6, offset: 3, rows: [row(revs, 'c')] });
    r = await req('GET', `${p}/_all_docs?key=${q('nosuch')}`);
    assert.deepEqual(r.json.rows, []);
    r = await req('GET', `${p}/_all_docs?startkey=${q('b')}&endkey=${q('d')}`);
    assert.deepEqual(ids(r), ['b', 'c', 'd']);
    assert.equal(r.json.offset, 2);
    assert.equal(r.json.total_rows, 6);
    r = await req('GET', `${p}/_all_docs?start_key=${q('b')}&end_key=${q('d')}`);
    assert.deepEqual(ids(r), ['b', 'c', 'd']);
    r = await req('GET', `${p}/_all_docs?startkey=${q('b')}&endkey=${q('d')}&inclusive_end=false`);
    assert.deepEqual(ids(r), ['b', 'c']);
    r = await req('GET', `${p}/_all_docs?startkey=${q('bb')}`);
    assert.deepEqual(ids(r), ['c', 'd', 'e']);
    assert.equal(r.json.offset, 3);
    r = await req('GET', `${p}/_all_docs?endkey=${q('b')}`);
    assert.deepEqual(ids(r), ['_design/dd', 'a', 'b']);
    r = await req('GET', `${p}/_all_docs?startkey=${q('a')}&limit=2`);
    assert.deepEqual(ids(r), ['a', 'b']);
    r = await req('GET', `${p}/_all_docs?skip=2&limit=2`);
    assert.deepEqual(ids(r), ['b', 'c']);
    r = await req('GET', `${p}/_all_docs?limit=0`);
    assert.deepEqual(r.json.rows, []);
    assert.equal(r.json.total_rows, 6);
    r = await req('GET', `${p}/_all_docs?skip=100`);
    assert.deepEqual(r.json.rows, []);
    r = await req('GET', `${p}/_all_docs?startkey=${q('_design/')}&endkey=${q('_design0')}`);
    assert.deepEqual(ids(r), ['_design/dd']);
  });
});

test('_all_docs descending (with limit and reversed range)', T, async () => {
  await withDb(async (db, p) => {
    const revs = await fixture(db);
    const ids = (r) => r.json.rows.map((x) => x.id);
    let r = await req('GET', `${p}/_all_docs?descending=true&limit=2`);
    assert.deepEqual(r.json, { total_rows: 6, offset: 0, rows: [row(revs, 'e'), row(revs, 'd')] });
    r = await req('GET', `${p}/_all_docs?descending=true&startkey=${q('d')}&endkey=${q('b')}`);
    assert.deepEqual(ids(r), ['d', 'c', 'b']);
    r = await req('GET', `${p}/_all_docs?descending=true&startkey=${q('d')}&endkey=${q('b')}&inclusive_end=false`);
    assert.deepEqual(ids(r), ['d', 'c']);
    r = await req('GET', `${p}/_all_docs?descending=true&skip=1&limit=2`);
    assert.deepEqual(ids(r), ['d', 'c']);
    r = await req('GET', `${p}/_all_docs?descending=true&startkey=${q('b')}&endkey=${q('d')}`);
    assert.deepEqual(ids(r), [], 'descending with an ascending range is empty');
  });
});

test('_all_docs include_docs, conflicts, update_seq', T, async () => {
  await withDb(async (db, p) => {
    const revs = await fixture(db);
    const r = await req('GET', `${p}/_all_docs?include_docs=true&startkey=${q('a')}&endkey=${q('b')}`);
    assert.deepEqual(r.json.rows, [
      { ...row(revs, 'a'), doc: { _id: 'a', _rev: revs.a, v: 'a' } },
      { ...row(revs, 'b'), doc: { _id: 'b', _rev: revs.b, v: 'b' } },
    ]);
    const nb = await bulk(db, {
      new_edits: false,
      docs: [
        { _id: 'cdoc', _rev: R(2, '1'), _revisions: { start: 2, ids: ['1'.repeat(32), '0'.repeat(32)] }, side: 'one' },
        { _id: 'cdoc', _rev: R(3, '2'), _revisions: { start: 3, ids: ['2'.repeat(32), '3'.repeat(32), '0'.repeat(32)] }, side: 'two' },
        { _id: 'cdoc', _rev: R(2, '4'), _revisions: { start: 2, ids: ['4'.repeat(32), '0'.repeat(32)] }, _deleted: true },
      ],
    });
    assert.equal(nb.status, 201);
    const c = await req('GET', `${p}/_all_docs?include_docs=true&conflicts=true&key=${q('cdoc')}`);
    assert.deepEqual(c.json, {
      total_rows: 7,
      offset: 4,
      rows: [{
        id: 'cdoc', key: 'cdoc', value: { rev: R(3, '2') },
        doc: { _id: 'cdoc', _rev: R(3, '2'), side: 'two', _conflicts: [R(2, '1')] },
      }],
    });
    const nc = await req('GET', `${p}/_all_docs?include_docs=true&key=${q('cdoc')}`);
    assert.deepEqual(nc.json.rows[0].doc, { _id: 'cdoc', _rev: R(3, '2'), side: 'two' }, 'no _conflicts unless asked');
    const us = await req('GET', `${p}/_all_docs?update_seq=true&limit=1`);
    assert.equal(us.status, 200);
    assert.ok(isSeq(us.json.update_seq), `update_seq missing: ${us.text}`);
    assert.equal(us.json.total_rows, 7);
  });
});

test('_all_docs keys parameter errors', T, async () => {
  await withDb(async (db, p) => {
    assertError(await req('GET', `${p}/_all_docs?keys=${q({ a: 1 })}`), 400, 'bad_request', '`keys` parameter must be an array.');
    assertError(await req('POST', `${p}/_all_docs`, { body: { keys: 'a' } }), 400, 'bad_request', '`keys` body member must be an array.');
    assertError(await req('POST', `${p}/_all_docs`, { body: [1] }), 400, 'bad_request', 'Request body must be a JSON object');
  });
});

test('_design_docs lists only design docs', T, async () => {
  await withDb(async (db, p) => {
    const revs = await fixture(db);
    const r2 = await req('PUT', `${p}/_design/aa`, { body: { views: {} } });
    assert.equal(r2.status, 201);
    revs['_design/aa'] = r2.json.rev;
    const r = await req('GET', `${p}/_design_docs`);
    assert.equal(r.status, 200);
    assertJsonHeaders(r, '_design_docs');
    assert.deepEqual(r.json.rows, [row(revs, '_design/aa'), row(revs, '_design/dd')]);
    const inc = await req('GET', `${p}/_design_docs?include_docs=true&descending=true`);
    assert.deepEqual(inc.json.rows.map((x) => x.id), ['_design/dd', '_design/aa']);
    assert.deepEqual(inc.json.rows[0].doc, { _id: '_design/dd', _rev: revs['_design/dd'], views: {} });
  });
});

test('_local_docs lists _local docs with total_rows null (golden)', T, async () => {
  await withDb(async (db, p) => {
    await fixture(db);
    const m = await req('PUT', `${p}/_local/m`, { body: { v: 'm' } });
    assert.equal(m.status, 201);
    const r = await req('GET', `${p}/_local_docs`);
    assert.equal(r.status, 200);
    assertJsonHeaders(r, '_local_docs');
    assert.deepEqual(r.json, {
      total_rows: null,
      offset: null,
      rows: [
        { id: '_local/l', key: '_local/l', value: { rev: '0-1' } },
        { id: '_local/m', key: '_local/m', value: { rev: '0-1' } },
      ],
    });
    const inc = await req('GET', `${p}/_local_docs?include_docs=true&descending=true&limit=1`);
    assert.deepEqual(inc.json.rows, [{ id: '_local/m', key: '_local/m', value: { rev: '0-1' }, doc: { _id: '_local/m', _rev: '0-1', v: 'm' } }]);
  });
});

// _purge --------------------------------------------------------------------------

test('_purge removes revisions: 201 {purge_seq:null, purged:{id:[revs]}}', T, async () => {
  await withDb(async (db, p) => {
    const ra = await putDoc(db, 'a', { v: 1 });
    await putDoc(db, 'keep', { v: 1 });
    const before = (await req('GET', p)).json;
    const r = await req('POST', `${p}/_purge`, { body: { a: [ra], nosuch: [R(1, 'f')] } });
    assert.equal(r.status, 201, r.text);
    assertJsonHeaders(r, '_purge');
    assert.deepEqual(r.json, { purge_seq: null, purged: { a: [ra], nosuch: [] } });
    assertError(await req('GET', `${p}/a`), 404, 'not_found', 'missing');
    const all = await req('GET', `${p}/_all_docs`);
    assert.deepEqual(all.json.rows.map((x) => x.id), ['keep']);
    const after = (await req('GET', p)).json;
    assert.equal(after.doc_count, 1);
    assert.notDeepEqual(after.purge_seq, before.purge_seq);
    // the id can be reused from scratch
    const again = await req('PUT', `${p}/a`, { body: { v: 2 } });
    assert.equal(again.status, 201);
    assert.match(again.json.rev, /^1-/);
  });
});

test('_purge of the winning leaf lets the other branch win', T, async () => {
  await withDb(async (db, p) => {
    const nb = await bulk(db, {
      new_edits: false,
      docs: [
        { _id: 'cdoc', _rev: R(2, '1'), _revisions: { start: 2, ids: ['1'.repeat(32), '0'.repeat(32)] }, side: 'one' },
        { _id: 'cdoc', _rev: R(3, '2'), _revisions: { start: 3, ids: ['2'.repeat(32), '3'.repeat(32), '0'.repeat(32)] }, side: 'two' },
      ],
    });
    assert.equal(nb.status, 201);
    const r = await req('POST', `${p}/_purge`, { body: { cdoc: [R(3, '2')] } });
    assert.equal(r.status, 201, r.text);
    assert.deepEqual(r.json, { purge_seq: null, purged: { cdoc: [R(3, '2')] } });
    assert.deepEqual((await req('GET', `${p}/cdoc?conflicts=true`)).json, { _id: 'cdoc', _rev: R(2, '1'), side: 'one' });
    const ora = await req('GET', `${p}/cdoc?open_revs=all`);
    assert.deepEqual(ora.json, [{ ok: { _id: 'cdoc', _rev: R(2, '1'), side: 'one' } }]);
  });
});
