// Document API: PUT/GET/HEAD/DELETE/POST/COPY, revs and conflicts, open_revs, id rules,
// body validation. Expected: CouchDB 3.4.3 (golden http-shapes + revtree README §3, chttpd_db).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { req } from './lib.mjs';
import {
  T, HEX32, REV, enc, withDb, assertJsonHeaders, assertError, CONFLICT, putDoc, bulk, compact,
  eventually, rawHttp,
} from './lib-docs.mjs';

const gen = (rev) => Number(rev.split('-')[0]);
const hash = (rev) => rev.split('-')[1];
const R = (n, c) => `${n}-${c.repeat(32)}`;

// The golden `cdoc`: three leaves written with new_edits=false (2-111 live, 3-222 live winner,
// 2-444 deleted), all rooted at 1-000; 2-333 exists only as an ancestor.
async function loadCdoc(db) {
  const r = await bulk(db, {
    new_edits: false,
    docs: [
      { _id: 'cdoc', _rev: R(2, '1'), _revisions: { start: 2, ids: ['1'.repeat(32), '0'.repeat(32)] }, side: 'one' },
      { _id: 'cdoc', _rev: R(3, '2'), _revisions: { start: 3, ids: ['2'.repeat(32), '3'.repeat(32), '0'.repeat(32)] }, side: 'two' },
      { _id: 'cdoc', _rev: R(2, '4'), _revisions: { start: 2, ids: ['4'.repeat(32), '0'.repeat(32)] }, _deleted: true },
    ],
  });
  assert.equal(r.status, 201, r.text);
  assert.deepEqual(r.json, []);
}

test('PUT new doc → 201 {ok,id,rev} with etag and location; GET and HEAD', T, async () => {
  await withDb(async (db, p) => {
    const r = await req('PUT', `${p}/doc1`, { body: { a: 1 } });
    assert.equal(r.status, 201);
    assertJsonHeaders(r, 'doc PUT');
    assert.equal(r.json.ok, true);
    assert.equal(r.json.id, 'doc1');
    assert.match(r.json.rev, REV);
    assert.equal(gen(r.json.rev), 1);
    assert.deepEqual(Object.keys(r.json), ['ok', 'id', 'rev']);
    assert.equal(r.headers.get('etag'), `"${r.json.rev}"`);
    const loc = r.headers.get('location');
    assert.match(loc || '', /^https?:\/\//);
    assert.equal(new URL(loc).pathname, `${p}/doc1`);

    const g = await req('GET', `${p}/doc1`);
    assert.equal(g.status, 200);
    assertJsonHeaders(g, 'doc GET');
    assert.equal(g.headers.get('etag'), `"${r.json.rev}"`);
    assert.deepEqual(g.json, { _id: 'doc1', _rev: r.json.rev, a: 1 });
    assert.deepEqual(Object.keys(g.json), ['_id', '_rev', 'a'], '_id and _rev come first');

    const h = await req('HEAD', `${p}/doc1`);
    assert.equal(h.status, 200);
    assert.equal(h.buf.length, 0);
    assert.equal(h.headers.get('etag'), `"${r.json.rev}"`);
    const hm = await req('HEAD', `${p}/nosuchdoc`);
    assert.equal(hm.status, 404);
    assert.equal(hm.buf.length, 0);
  });
});

test('If-None-Match with the current etag → 304; stale etag → 200', T, async () => {
  await withDb(async (db, p) => {
    const rev1 = await putDoc(db, 'doc1', { a: 1 });
    const r = await req('GET', `${p}/doc1`, { headers: { 'If-None-Match': `"${rev1}"` } });
    assert.equal(r.status, 304);
    assert.equal(r.buf.length, 0);
    assert.equal(r.headers.get('etag'), `"${rev1}"`);
    const rev2 = await putDoc(db, 'doc1', { _rev: rev1, a: 2 });
    const s = await req('GET', `${p}/doc1`, { headers: { 'If-None-Match': `"${rev1}"` } });
    assert.equal(s.status, 200);
    assert.equal(s.json._rev, rev2);
  });
});

test('update: _rev in body, ?rev=, If-Match; each answers 201 with the next generation', T, async () => {
  await withDb(async (db, p) => {
    const rev1 = await putDoc(db, 'd', { v: 1 });
    const noRev = await req('PUT', `${p}/d`, { body: { v: 2 } });
    assert.equal(noRev.status, 409);
    assertJsonHeaders(noRev, '409');
    assert.deepEqual(noRev.json, CONFLICT);

    const u1 = await req('PUT', `${p}/d`, { body: { _rev: rev1, v: 2 } });
    assert.equal(u1.status, 201);
    assert.equal(gen(u1.json.rev), 2);
    assert.equal(u1.headers.get('etag'), `"${u1.json.rev}"`);
    assert.notEqual(hash(u1.json.rev), hash(rev1));

    const u2 = await req('PUT', `${p}/d?rev=${u1.json.rev}`, { body: { v: 3 } });
    assert.equal(u2.status, 201, u2.text);
    assert.equal(gen(u2.json.rev), 3);

    const u3 = await req('PUT', `${p}/d`, { body: { v: 4 }, headers: { 'If-Match': `"${u2.json.rev}"` } });
    assert.equal(u3.status, 201, u3.text);
    assert.equal(gen(u3.json.rev), 4);

    const g = await req('GET', `${p}/d`);
    assert.deepEqual(g.json, { _id: 'd', _rev: u3.json.rev, v: 4 });

    // stale revs, unknown revs, and a rev for a doc that does not exist: 409
    for (const [path, body] of [
      [`${p}/d`, { _rev: rev1, v: 9 }],
      [`${p}/d?rev=${u1.json.rev}`, { v: 9 }],
      [`${p}/d`, { _rev: R(4, 'a'), v: 9 }],
      [`${p}/d`, { _rev: R(9, 'a'), v: 9 }],
      [`${p}/nosuch`, { _rev: R(1, 'a'), v: 9 }],
    ]) {
      const c = await req('PUT', path, { body });
      assert.equal(c.status, 409, `${path} ${JSON.stringify(body)} → ${c.status} ${c.text}`);
      assert.deepEqual(c.json, CONFLICT);
    }
    const stale = await req('PUT', `${p}/d`, { body: { v: 9 }, headers: { 'If-Match': `"${rev1}"` } });
    assert.equal(stale.status, 409);
    assert.equal((await req('GET', `${p}/d`)).json.v, 4, 'failed updates change nothing');
    assert.equal((await req('GET', `${p}/nosuch`)).status, 404);
  });
});

test('body rev differs from ?rev= or If-Match → 400', T, async () => {
  await withDb(async (db, p) => {
    const rev1 = await putDoc(db, 'd', { v: 1 });
    const rev2 = await putDoc(db, 'd', { _rev: rev1, v: 2 });
    const q = await req('PUT', `${p}/d?rev=${rev1}`, { body: { _rev: rev2, v: 3 } });
    assertError(q, 400, 'bad_request', 'Document rev from request body and query string have different values');
    const h = await req('PUT', `${p}/d`, { body: { _rev: rev2, v: 3 }, headers: { 'If-Match': `"${rev1}"` } });
    assertError(h, 400, 'bad_request', 'Document rev and etag have different values');
    assert.equal((await req('GET', `${p}/d`)).json._rev, rev2);
  });
});

test('revs=true gives _revisions; revs_info lists the path', T, async () => {
  await withDb(async (db, p) => {
    const rev1 = await putDoc(db, 'd', { v: 1 });
    const rev2 = await putDoc(db, 'd', { _rev: rev1, v: 2 });
    const rev3 = await putDoc(db, 'd', { _rev: rev2, v: 3 });
    const r = await req('GET', `${p}/d?revs=true`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('etag'), `"${rev3}"`);
    assert.deepEqual(r.json, {
      _id: 'd', _rev: rev3, v: 3,
      _revisions: { start: 3, ids: [hash(rev3), hash(rev2), hash(rev1)] },
    });
    const ri = await req('GET', `${p}/d?revs_info=true`);
    assert.equal(ri.status, 200);
    assert.equal(ri.json._rev, rev3);
    assert.deepEqual(ri.json._revs_info.map((x) => x.rev), [rev3, rev2, rev1]);
    assert.equal(ri.json._revs_info[0].status, 'available');
    // superseded bodies: "available" and readable until a compaction, "missing" after it
    assert.deepEqual(ri.json._revs_info.map((x) => x.status), ['available', 'available', 'available']);
    const before = await req('GET', `${p}/d?rev=${rev1}&revs=true`);
    assert.deepEqual(before.json, { _id: 'd', _rev: rev1, v: 1, _revisions: { start: 1, ids: [hash(rev1)] } });
    const ors = await req('GET', `${p}/d?open_revs=${enc(JSON.stringify([rev2]))}`, { headers: { accept: 'application/json' } });
    assert.deepEqual(ors.json, [{ ok: { _id: 'd', _rev: rev2, v: 2 } }]);
    await compact(db, async () => {
      const a = await req('GET', `${p}/d?revs_info=true`);
      return a.json._revs_info.slice(1).every((x) => x.status === 'missing');
    });
    const after = await req('GET', `${p}/d?revs_info=true`);
    assert.deepEqual(after.json._revs_info, [
      { rev: rev3, status: 'available' }, { rev: rev2, status: 'missing' }, { rev: rev1, status: 'missing' },
    ]);
    // old rev after compaction: 404 missing; leaf rev still readable
    const old = await req('GET', `${p}/d?rev=${rev1}`);
    assertError(old, 404, 'not_found', 'missing');
    const leaf = await req('GET', `${p}/d?rev=${rev3}`);
    assert.deepEqual(leaf.json, { _id: 'd', _rev: rev3, v: 3 });
  });
});

test('GET ?rev= of a rev that never existed → 404 missing; bad rev format → 400', T, async () => {
  await withDb(async (db, p) => {
    await putDoc(db, 'd', { v: 1 });
    assertError(await req('GET', `${p}/d?rev=${R(9, '0')}`), 404, 'not_found', 'missing');
    for (const bad of ['notarev', 'abc-def', '-', '1x-abc']) {
      const r = await req('GET', `${p}/d?rev=${enc(bad)}`);
      assertError(r, 400, 'bad_request', 'Invalid rev format');
    }
    const b = await req('PUT', `${p}/d`, { body: { _rev: 'notarev', v: 2 } });
    assertError(b, 400, 'bad_request', 'Invalid rev format');
    const d = await req('DELETE', `${p}/d?rev=notarev`);
    assertError(d, 400, 'bad_request', 'Invalid rev format');
  });
});

test('conflicts, deleted_conflicts and meta on a branched doc (golden cdoc)', T, async () => {
  await withDb(async (db, p) => {
    await loadCdoc(db);
    const w = await req('GET', `${p}/cdoc`);
    assert.deepEqual(w.json, { _id: 'cdoc', _rev: R(3, '2'), side: 'two' });
    const c = await req('GET', `${p}/cdoc?conflicts=true&deleted_conflicts=true`);
    assert.equal(c.status, 200);
    assert.deepEqual(c.json, {
      _id: 'cdoc', _rev: R(3, '2'), side: 'two',
      _conflicts: [R(2, '1')], _deleted_conflicts: [R(2, '4')],
    });
    const c1 = await req('GET', `${p}/cdoc?conflicts=true`);
    assert.deepEqual(c1.json, { _id: 'cdoc', _rev: R(3, '2'), side: 'two', _conflicts: [R(2, '1')] });
    const m = await req('GET', `${p}/cdoc?meta=true`);
    assert.equal(m.status, 200);
    assert.deepEqual(m.json, {
      _id: 'cdoc', _rev: R(3, '2'), side: 'two',
      _revs_info: [
        { rev: R(3, '2'), status: 'available' },
        { rev: R(2, '3'), status: 'missing' },
        { rev: R(1, '0'), status: 'missing' },
      ],
      _conflicts: [R(2, '1')],
      _deleted_conflicts: [R(2, '4')],
    });
    // a losing leaf is readable by rev; a deleted losing leaf comes back as a stub
    assert.deepEqual((await req('GET', `${p}/cdoc?rev=${R(2, '1')}`)).json, { _id: 'cdoc', _rev: R(2, '1'), side: 'one' });
    assert.deepEqual((await req('GET', `${p}/cdoc?rev=${R(2, '4')}`)).json, { _id: 'cdoc', _rev: R(2, '4'), _deleted: true });
  });
});

test('open_revs=all / list / latest as JSON (golden)', T, async () => {
  await withDb(async (db, p) => {
    await loadCdoc(db);
    const all = await req('GET', `${p}/cdoc?open_revs=all&revs=true`, { headers: { Accept: 'application/json' } });
    assert.equal(all.status, 200);
    assertJsonHeaders(all, 'open_revs');
    assert.deepEqual(all.json, [
      { ok: { _id: 'cdoc', _rev: R(2, '1'), side: 'one', _revisions: { start: 2, ids: ['1'.repeat(32), '0'.repeat(32)] } } },
      { ok: { _id: 'cdoc', _rev: R(2, '4'), _deleted: true, _revisions: { start: 2, ids: ['4'.repeat(32), '0'.repeat(32)] } } },
      { ok: { _id: 'cdoc', _rev: R(3, '2'), side: 'two', _revisions: { start: 3, ids: ['2'.repeat(32), '3'.repeat(32), '0'.repeat(32)] } } },
    ]);
    const list = await req('GET', `${p}/cdoc?open_revs=${enc(JSON.stringify([R(2, '1'), R(1, '0'), R(5, '9')]))}&revs=true`);
    assert.equal(list.status, 200);
    assert.deepEqual(list.json, [
      { ok: { _id: 'cdoc', _rev: R(2, '1'), side: 'one', _revisions: { start: 2, ids: ['1'.repeat(32), '0'.repeat(32)] } } },
      { missing: R(1, '0') },
      { missing: R(5, '9') },
    ]);
    const latest = await req('GET', `${p}/cdoc?open_revs=${enc(JSON.stringify([R(1, '0')]))}&latest=true`);
    assert.equal(latest.status, 200);
    assert.deepEqual(latest.json, [
      { ok: { _id: 'cdoc', _rev: R(2, '1'), side: 'one' } },
      { ok: { _id: 'cdoc', _rev: R(2, '4'), _deleted: true } },
      { ok: { _id: 'cdoc', _rev: R(3, '2'), side: 'two' } },
    ]);
    const latest2 = await req('GET', `${p}/cdoc?open_revs=${enc(JSON.stringify([R(2, '3'), R(3, '2')]))}&latest=true`);
    assert.deepEqual(latest2.json, [{ ok: { _id: 'cdoc', _rev: R(3, '2'), side: 'two' } }], 'a leaf reached twice is returned once');
    const bad = await req('GET', `${p}/cdoc?open_revs=notjson`);
    assertError(bad, 400, 'bad_request', 'invalid UTF-8 JSON');
    const missingDoc = await req('GET', `${p}/nosuch?open_revs=all`);
    assertError(missingDoc, 404, 'not_found', 'missing');
    const missingDocList = await req('GET', `${p}/nosuch?open_revs=${enc(JSON.stringify([R(1, 'a')]))}`);
    assert.equal(missingDocList.status, 200);
    assert.deepEqual(missingDocList.json, [{ missing: R(1, 'a') }]);
  });
});

test('missing vs deleted doc; DELETE semantics (golden)', T, async () => {
  await withDb(async (db, p) => {
    assertError(await req('GET', `${p}/nosuchdoc`), 404, 'not_found', 'missing');
    const rev1 = await putDoc(db, 'doc1', { a: 1 });
    const rev2 = await putDoc(db, 'doc1', { _rev: rev1, a: 2 });

    const noRev = await req('DELETE', `${p}/doc1`);
    assert.equal(noRev.status, 409);
    assert.deepEqual(noRev.json, CONFLICT);
    const stale = await req('DELETE', `${p}/doc1?rev=${rev1}`);
    assert.equal(stale.status, 409);
    assert.deepEqual(stale.json, CONFLICT);

    const d = await req('DELETE', `${p}/doc1?rev=${rev2}`);
    assert.equal(d.status, 200);
    assertJsonHeaders(d, 'DELETE');
    assert.equal(d.json.ok, true);
    assert.equal(d.json.id, 'doc1');
    assert.equal(gen(d.json.rev), 3);
    assert.equal(d.headers.get('etag'), `"${d.json.rev}"`);
    const rev3 = d.json.rev;

    assertError(await req('GET', `${p}/doc1`), 404, 'not_found', 'deleted');
    assert.equal((await req('HEAD', `${p}/doc1`)).status, 404);
    const gd = await req('GET', `${p}/doc1?rev=${rev3}`);
    assert.equal(gd.status, 200);
    assert.equal(gd.headers.get('etag'), `"${rev3}"`);
    assert.deepEqual(gd.json, { _id: 'doc1', _rev: rev3, _deleted: true });
    const ora = await req('GET', `${p}/doc1?open_revs=all&revs=true`);
    assert.deepEqual(ora.json, [{ ok: { _id: 'doc1', _rev: rev3, _deleted: true, _revisions: { start: 3, ids: [hash(rev3), hash(rev2), hash(rev1)] } } }]);

    // PUT with the deleted winner's rev → 409; DELETE again → 404 deleted
    const onDel = await req('PUT', `${p}/doc1`, { body: { _rev: rev3, a: 3 } });
    assert.equal(onDel.status, 409);
    assertError(await req('DELETE', `${p}/doc1?rev=${rev3}`), 404, 'not_found', 'deleted');
    assertError(await req('DELETE', `${p}/nosuchdoc?rev=${rev1}`), 404, 'not_found', 'missing');

    // recreate without rev extends the deleted branch
    const re = await req('PUT', `${p}/doc1`, { body: { a: 'again' } });
    assert.equal(re.status, 201);
    assert.equal(gen(re.json.rev), 4);
    assert.deepEqual((await req('GET', `${p}/doc1`)).json, { _id: 'doc1', _rev: re.json.rev, a: 'again' });
  });
});

test('DELETE with If-Match; PUT _deleted:true answers 200 and keeps the body', T, async () => {
  await withDb(async (db, p) => {
    const rev1 = await putDoc(db, 'a', { v: 1 });
    const d = await req('DELETE', `${p}/a`, { headers: { 'If-Match': `"${rev1}"` } });
    assert.equal(d.status, 200, d.text);
    assert.equal(gen(d.json.rev), 2);

    const rb = await putDoc(db, 'b', { v: 1 });
    const pd = await req('PUT', `${p}/b`, { body: { _rev: rb, _deleted: true, why: 'gone' } });
    assert.equal(pd.status, 200, 'a write that creates a deleted revision answers 200');
    assert.deepEqual((await req('GET', `${p}/b?rev=${pd.json.rev}`)).json, { _id: 'b', _rev: pd.json.rev, why: 'gone', _deleted: true });

    const nd = await req('PUT', `${p}/never`, { body: { _deleted: true } });
    assert.equal(nd.status, 200, 'create-as-deleted answers 200');
    assert.equal(gen(nd.json.rev), 1);
    assertError(await req('GET', `${p}/never`), 404, 'not_found', 'deleted');
    const live = await putDoc(db, 'live', { v: 1 });
    assert.match(live, /^1-/);
    const ndl = await req('PUT', `${p}/live`, { body: { _deleted: true } });
    assert.equal(ndl.status, 409, '_deleted:true without rev on a live doc is a conflict');
  });
});

test('illegal ids: _foo → 400 illegal_docid; empty and non-string _id', T, async () => {
  await withDb(async (db, p) => {
    const r = await req('PUT', `${p}/_foo`, { body: { a: 1 } });
    assertError(r, 400, 'illegal_docid', 'Only reserved document ids may start with underscore.');
    assertJsonHeaders(r, 'illegal_docid');
    const post = await req('POST', p, { body: { _id: '_bar', a: 1 } });
    assertError(post, 400, 'illegal_docid', 'Only reserved document ids may start with underscore.');
    const empty = await req('POST', p, { body: { _id: '', a: 1 } });
    assertError(empty, 400, 'illegal_docid', 'Document id must not be empty');
    for (const id of [123, null, ['x'], { x: 1 }, true]) {
      const n = await req('POST', p, { body: { _id: id, a: 1 } });
      assertError(n, 400, 'illegal_docid', 'Document id must be a string');
    }
    const all = await req('GET', `${p}/_all_docs`);
    assert.deepEqual(all.json.rows, []);
  });
});

test('unknown special fields → 400 doc_validation; known meta fields are ignored', T, async () => {
  await withDb(async (db, p) => {
    const r = await req('PUT', `${p}/docu`, { body: { _foo: 1 } });
    assertError(r, 400, 'doc_validation', 'Bad special document member: _foo');
    const del = await req('PUT', `${p}/docu`, { body: { _deleted: 'yes' } });
    assertError(del, 400, 'doc_validation', 'Bad special document member: _deleted');
    assert.equal((await req('GET', `${p}/docu`)).status, 404);
    const ok = await req('PUT', `${p}/docm`, {
      body: { v: 1, _conflicts: ['2-abc'], _deleted_conflicts: [], _revs_info: [], _local_seq: 5 },
    });
    assert.equal(ok.status, 201, ok.text);
    assert.deepEqual((await req('GET', `${p}/docm`)).json, { _id: 'docm', _rev: ok.json.rev, v: 1 });
  });
});

test('bad bodies: invalid JSON, non-objects → 400', T, async () => {
  await withDb(async (db, p) => {
    const h = { 'Content-Type': 'application/json' };
    const bj = await req('PUT', `${p}/docbad`, { body: '{not json', headers: h });
    assertError(bj, 400, 'bad_request', 'invalid UTF-8 JSON');
    assertJsonHeaders(bj, 'bad json');
    for (const b of ['[1,2]', '"str"', '42', 'null', 'true']) {
      const r = await req('PUT', `${p}/docbad`, { body: b, headers: h });
      assertError(r, 400, 'bad_request', 'Document must be a JSON object');
    }
    const trailing = await req('PUT', `${p}/docbad`, { body: '{"a":1} x', headers: h });
    assertError(trailing, 400, 'bad_request');
    const empty = await req('PUT', `${p}/docbad`, { body: '', headers: h });
    assert.equal(empty.status, 400, `empty body: ${empty.status} ${empty.text}`);
    assert.equal((await req('GET', `${p}/docbad`)).status, 404);
  });
});

test('invalid UTF-8 and lone surrogates in a body → 400 bad_request', T, async () => {
  await withDb(async (db, p) => {
    const h = { 'Content-Type': 'application/json' };
    const bytes = Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}')]);
    const r = await req('PUT', `${p}/u1`, { body: bytes, headers: h });
    assertError(r, 400, 'bad_request', 'invalid UTF-8 JSON');
    const overlong = Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')]);
    assertError(await req('PUT', `${p}/u2`, { body: overlong, headers: h }), 400, 'bad_request');
    const sur = await req('PUT', `${p}/u3`, { body: '{"a":"\\ud800"}', headers: h });
    assertError(sur, 400, 'bad_request');
    const lowsur = await req('PUT', `${p}/u4`, { body: '{"a":"x\\udc00y"}', headers: h });
    assertError(lowsur, 400, 'bad_request');
    // a proper pair is fine and round-trips
    const pair = await req('PUT', `${p}/u5`, { body: '{"a":"\\ud834\\udd1e"}', headers: h });
    assert.equal(pair.status, 201, pair.text);
    assert.equal((await req('GET', `${p}/u5`)).json.a, '\u{1d11e}');
    for (const id of ['u1', 'u2', 'u3', 'u4']) assert.equal((await req('GET', `${p}/${id}`)).status, 404);
  });
});

test('document over max_document_size (8 MB) → 413 document_too_large; 7 MB is fine', T, async () => {
  await withDb(async (db, p) => {
    const big = await req('PUT', `${p}/big`, { body: { s: 'x'.repeat(9 * 1024 * 1024) } });
    assertError(big, 413, 'document_too_large');
    assert.equal((await req('GET', `${p}/big`)).status, 404);
    const bigPost = await req('POST', p, { body: { _id: 'big2', s: 'y'.repeat(9 * 1024 * 1024) } });
    assertError(bigPost, 413, 'document_too_large');
    const ok = await req('PUT', `${p}/fine`, { body: { s: 'z'.repeat(7 * 1000 * 1000) } });
    assert.equal(ok.status, 201, ok.text.slice(0, 200));
    const g = await req('GET', `${p}/fine`);
    assert.equal(g.json.s.length, 7 * 1000 * 1000);
  });
});

test('doc PUT ignores Content-Type; POST /db requires application/json (415)', T, async () => {
  await withDb(async (db, p) => {
    const r = await req('PUT', `${p}/txt`, { body: '{"a":1}', headers: { 'Content-Type': 'text/plain' } });
    assert.equal(r.status, 201, r.text);
    assert.equal((await req('GET', `${p}/txt`)).json.a, 1);
    const post = await req('POST', p, { body: '{"a":1}', headers: { 'Content-Type': 'text/plain' } });
    assertError(post, 415, 'bad_content_type', 'Content-Type must be application/json');
  });
});

test('ids with /, spaces, +, unicode round-trip; location is percent-encoded', T, async () => {
  await withDb(async (db, p) => {
    const r = await req('PUT', `${p}/a%2Fb`, { body: { x: 1 } });
    assert.equal(r.status, 201);
    assert.equal(r.json.id, 'a/b');
    assert.ok(r.headers.get('location').endsWith(`${p}/a%2Fb`), r.headers.get('location'));
    assert.deepEqual((await req('GET', `${p}/a%2Fb`)).json, { _id: 'a/b', _rev: r.json.rev, x: 1 });
    const ids = ['with space', 'a+b', 'ünï cödé ☃ 𝄞', 'semi;colon', 'q?mark', 'hash#tag', 'per%cent', 'a:b'];
    for (const id of ids) {
      const w = await req('PUT', `${p}/${enc(id)}`, { body: { id } });
      assert.equal(w.status, 201, `${id}: ${w.text}`);
      assert.equal(w.json.id, id);
      assert.equal(decodeURIComponent(new URL(w.headers.get('location')).pathname), `/${db}/${id}`);
      const g = await req('GET', `${p}/${enc(id)}`);
      assert.equal(g.status, 200, id);
      assert.equal(g.json._id, id);
      assert.equal(g.json.id, id);
    }
    const all = await req('GET', `${p}/_all_docs`);
    assert.deepEqual(all.json.rows.map((x) => x.id).sort(), ['a/b', ...ids].sort());
  });
});

test('_design docs: PUT/GET/DELETE via /db/_design/name', T, async () => {
  await withDb(async (db, p) => {
    const r = await req('PUT', `${p}/_design/dd`, { body: { views: {} } });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.id, '_design/dd');
    assert.ok(r.headers.get('location').endsWith(`${p}/_design%2Fdd`), r.headers.get('location'));
    const g = await req('GET', `${p}/_design/dd`);
    assert.equal(g.status, 200);
    assert.equal(g.headers.get('etag'), `"${r.json.rev}"`);
    assert.deepEqual(g.json, { _id: '_design/dd', _rev: r.json.rev, views: {} });
    const u = await req('PUT', `${p}/_design/dd`, { body: { _rev: r.json.rev, views: {}, v: 2 } });
    assert.equal(u.status, 201);
    const d = await req('DELETE', `${p}/_design/dd?rev=${u.json.rev}`);
    assert.equal(d.status, 200);
    assertError(await req('GET', `${p}/_design/dd`), 404, 'not_found', 'deleted');
  });
});

test('POST /db: server-generated 32-hex id, or the given _id', T, async () => {
  await withDb(async (db, p) => {
    const r = await req('POST', p, { body: { posted: true } });
    assert.equal(r.status, 201);
    assertJsonHeaders(r, 'POST db');
    assert.equal(r.json.ok, true);
    assert.match(r.json.id, HEX32);
    assert.match(r.json.rev, /^1-/);
    assert.equal(new URL(r.headers.get('location')).pathname, `${p}/${r.json.id}`);
    assert.deepEqual((await req('GET', `${p}/${r.json.id}`)).json, { _id: r.json.id, _rev: r.json.rev, posted: true });
    const r2 = await req('POST', p, { body: { posted: 2 } });
    assert.notEqual(r2.json.id, r.json.id);
    const named = await req('POST', p, { body: { _id: 'named', v: 1 } });
    assert.equal(named.status, 201);
    assert.equal(named.json.id, 'named');
    const again = await req('POST', p, { body: { _id: 'named', v: 2 } });
    assert.equal(again.status, 409);
    assert.deepEqual(again.json, CONFLICT);
    const upd = await req('POST', p, { body: { _id: 'named', _rev: named.json.rev, v: 2 } });
    assert.equal(upd.status, 201);
    assert.match(upd.json.rev, /^2-/);
  });
});

test('batch=ok → 202 {ok,id}; the write lands', T, async () => {
  await withDb(async (db, p) => {
    const r = await req('PUT', `${p}/bdoc?batch=ok`, { body: { v: 1 } });
    assert.equal(r.status, 202);
    assert.deepEqual(r.json, { ok: true, id: 'bdoc' });
    const pr = await req('POST', `${p}?batch=ok`, { body: { _id: 'bpost', v: 2 } });
    assert.equal(pr.status, 202);
    assert.deepEqual(pr.json, { ok: true, id: 'bpost' });
    const got = await eventually(async () => (await req('GET', `${p}/bdoc`)).status === 200 && (await req('GET', `${p}/bpost`)).status === 200, 10000);
    assert.ok(got, 'batch writes never became visible');
    assert.equal((await req('GET', `${p}/bdoc`)).json.v, 1);
  });
});

test('COPY with Destination', T, async () => {
  await withDb(async (db, p) => {
    const rs = await putDoc(db, 'src', { v: 1, nested: { k: [1, 2] } });
    const c = await req('COPY', `${p}/src`, { headers: { Destination: 'dst' } });
    assert.equal(c.status, 201, c.text);
    assert.equal(c.json.id, 'dst');
    assert.match(c.json.rev, /^1-/);
    assert.equal(c.headers.get('etag'), `"${c.json.rev}"`);
    assert.equal(new URL(c.headers.get('location')).pathname, `${p}/dst`);
    assert.deepEqual((await req('GET', `${p}/dst`)).json, { _id: 'dst', _rev: c.json.rev, v: 1, nested: { k: [1, 2] } });
    assert.equal((await req('GET', `${p}/src`)).json._rev, rs, 'source unchanged');
    const again = await req('COPY', `${p}/src`, { headers: { Destination: 'dst' } });
    assert.equal(again.status, 409);
    assert.deepEqual(again.json, CONFLICT);
    const over = await req('COPY', `${p}/src`, { headers: { Destination: `dst?rev=${c.json.rev}` } });
    assert.equal(over.status, 201, over.text);
    assert.match(over.json.rev, /^2-/);
    const missing = await req('COPY', `${p}/nosuch`, { headers: { Destination: 'x' } });
    assertError(missing, 404, 'not_found', 'missing');
  });
});

test('PUT ?new_edits=false stores the given rev and history (golden)', T, async () => {
  await withDb(async (db, p) => {
    const body = {
      _rev: R(3, 'c'),
      _revisions: { start: 3, ids: ['c'.repeat(32), 'b'.repeat(32), 'a'.repeat(32)] },
      v: 1,
    };
    const r = await req('PUT', `${p}/docne?new_edits=false`, { body });
    assert.equal(r.status, 201);
    assert.deepEqual(r.json, { ok: true, id: 'docne', rev: R(3, 'c') });
    assert.equal(r.headers.get('etag'), `"${R(3, 'c')}"`);
    const g = await req('GET', `${p}/docne?revs=true`);
    assert.deepEqual(g.json, { _id: 'docne', _rev: R(3, 'c'), v: 1, _revisions: body._revisions });
    // idempotent resend
    const again = await req('PUT', `${p}/docne?new_edits=false`, { body: { ...body, v: 2 } });
    assert.equal(again.status, 201);
    assert.equal((await req('GET', `${p}/docne`)).json.v, 1, 're-inserting a leaf keeps the first body');
    const noRev = await req('PUT', `${p}/x?new_edits=false`, { body: { v: 1 } });
    assertError(noRev, 400, 'bad_request', 'When `new_edits: false`, the document needs `_rev` or `_revisions` specified');
  });
});

test('numbers round-trip exactly (big integers, 0.1, 1.0); key order preserved', T, async () => {
  await withDb(async (db, p) => {
    const text = '{"zeta":1,"alpha":12345678901234567890123,"mid":0.1,"one":1.0,"neg":-42,"arr":[3,2,1],"obj":{"z":1,"a":2}}';
    const r = await req('PUT', `${p}/nums`, { body: text, headers: { 'Content-Type': 'application/json' } });
    assert.equal(r.status, 201);
    const g = await rawHttp('GET', `${p}/nums`, { headers: { Accept: 'application/json' } });
    assert.equal(g.status, 200);
    assert.match(g.text, /"alpha":12345678901234567890123[,}]/, `big integer changed: ${g.text}`);
    assert.match(g.text, /"mid":0\.1[,}]/, g.text);
    assert.match(g.text, /"one":1\.0[,}]/, g.text);
    assert.match(g.text, /"neg":-42[,}]/, g.text);
    assert.deepEqual(Object.keys(g.json), ['_id', '_rev', 'zeta', 'alpha', 'mid', 'one', 'neg', 'arr', 'obj']);
    assert.deepEqual(Object.keys(g.json.obj), ['z', 'a']);
    assert.deepEqual(g.json.arr, [3, 2, 1]);
  });
});

test('strings with escapes and control characters round-trip', T, async () => {
  await withDb(async (db, p) => {
    const v = 'quote" backslash\\ nl\n tab\t nul\u0000 bell\u0007 é ☃ 𝄞 \u2028';
    const r = await req('PUT', `${p}/s`, { body: { v, 'key with "quotes"': true } });
    assert.equal(r.status, 201);
    const g = await req('GET', `${p}/s`);
    assert.equal(g.json.v, v);
    assert.equal(g.json['key with "quotes"'], true);
  });
});
