// Odd but legal input that PouchDB and CouchDB's replicator send: _revisions against
// _rev with new_edits=false, _local docs inside _bulk_docs, the replicator's special
// fields, _all_docs keys with skip/limit/descending, ?latest=true.
// Expected: CouchDB 3.4.3 (couchdb-golden/bad-input-extra.jsonl, couch_doc:transfer_fields,
// couch_db_updater:increment_local_doc_revs, couch_mrview_util's keys check).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { req } from './lib.mjs';
import { T, enc, withDb, assertError, bulk } from './lib-docs.mjs';

const A = 'a'.repeat(32);
const B = 'b'.repeat(32);
const C = 'c'.repeat(32);

// PUT without asserting success: these tests look at the answer
const putDoc = (db, id, body, query = '') => req('PUT', `/${enc(db)}/${enc(id)}${query}`, { body });

async function leaves(p, id) {
  const r = await req('GET', `${p}/${enc(id)}?revs=true&open_revs=all`, { headers: { Accept: 'application/json' } });
  assert.equal(r.status, 200, `${id}: ${r.text}`);
  return r.json.map((x) => x.ok);
}

test('new_edits=false: _revisions wins over _rev (PouchDB short ids), in _bulk_docs and PUT', T, async () => {
  await withDb(async (db, p) => {
    const r = await bulk(db, { new_edits: false, docs: [{ _id: 'pd', v: 1, _rev: '2-a', _revisions: { start: 1, ids: ['a'] } }] });
    assert.equal(r.status, 201, r.text);
    assert.deepEqual(r.json, []);
    assert.deepEqual(await leaves(p, 'pd'), [{ _id: 'pd', _rev: '1-a', v: 1, _revisions: { start: 1, ids: ['a'] } }]);

    const put = await putDoc(db, 'pd_put', { v: 1, _rev: '2-a', _revisions: { start: 1, ids: ['a'] } }, '?new_edits=false');
    assert.equal(put.status, 201, put.text);
    assert.deepEqual(put.json, { ok: true, id: 'pd_put', rev: '1-a' });

    // a _rev contradicting _revisions' generation and id: _revisions wins
    const c = await bulk(db, { new_edits: false, docs: [{ _id: 'cr', v: 1, _rev: `2-${B}`, _revisions: { start: 3, ids: [C, B, A] } }] });
    assert.deepEqual(c.json, []);
    assert.deepEqual(await leaves(p, 'cr'), [{ _id: 'cr', _rev: `3-${C}`, v: 1, _revisions: { start: 3, ids: [C, B, A] } }]);

    // _revisions without _rev; non-hex short ids
    const o = await bulk(db, { new_edits: false, docs: [{ _id: 'only', v: 1, _revisions: { start: 2, ids: ['xyz', 'abc'] } }] });
    assert.deepEqual(o.json, []);
    assert.deepEqual(await leaves(p, 'only'), [{ _id: 'only', _rev: '2-xyz', v: 1, _revisions: { start: 2, ids: ['xyz', 'abc'] } }]);
  });
});

test('new_edits=false: odd _rev values ("1-" stored, upper-case hex lower-cased, "1", "" and "-1-x" refused)', T, async () => {
  await withDb(async (db, p) => {
    const e = await bulk(db, { new_edits: false, docs: [{ _id: 'empty_hash', _rev: '1-', v: 1 }] });
    assert.equal(e.status, 201, e.text);
    assert.deepEqual(e.json, []);
    const g = await req('GET', `${p}/empty_hash?revs_info=true`);
    assert.deepEqual(g.json, { _id: 'empty_hash', _rev: '1-', v: 1, _revs_info: [{ rev: '1-', status: 'available' }] });
    const put = await putDoc(db, 'empty_hash_put', { _rev: '1-', v: 1 }, '?new_edits=false');
    assert.deepEqual(put.json, { ok: true, id: 'empty_hash_put', rev: '1-' });

    const up = await bulk(db, { new_edits: false, docs: [{ _id: 'upper', _rev: `1-${'A'.repeat(32)}`, v: 1 }] });
    assert.deepEqual(up.json, []);
    assert.equal((await req('GET', `${p}/upper`)).json._rev, `1-${A}`);

    for (const rev of ['1', '', `-1-${A}`]) {
      const r = await bulk(db, { new_edits: false, docs: [{ _id: 'odd', _rev: rev, v: 1 }] });
      assertError(r, 400, 'bad_request', 'Invalid rev format');
    }
    assert.equal((await req('GET', `${p}/odd`)).status, 404);
  });
});

test('new_edits=false: malformed _revisions → CouchDB\'s doc_validation errors, in _bulk_docs and PUT', T, async () => {
  await withDb(async (db, p) => {
    const cases = [
      [{ start: 2, ids: 'abc' }, 'doc_validation', '_revisions.ids isn\'t a array.'],
      [{ start: 2, ids: [1, 2] }, 'doc_validation', 'RevId isn\'t a string'],
      [{ start: '2', ids: [B, A] }, 'doc_validation', '_revisions.start isn\'t an integer.'],
      [{ ids: [B, A] }, 'doc_validation', '_revisions.start isn\'t an integer.'],
      ['x', 'doc_validation', 'Bad special document member: _revisions'],
    ];
    let n = 0;
    for (const [revisions, error, reason] of cases) {
      n++;
      const id = `bad${n}`;
      const r = await bulk(db, { new_edits: false, docs: [{ _id: id, v: 1, _rev: `2-${B}`, _revisions: revisions }] });
      assertError(r, 400, error, reason);
      const put = await putDoc(db, `${id}_put`, { v: 1, _rev: `2-${B}`, _revisions: revisions }, '?new_edits=false');
      assertError(put, 400, error, reason);
    }
    // empty ids: a PUT is 400; CouchDB answers _bulk_docs with a 500 (settee: 400)
    const put = await putDoc(db, 'empty_put', { v: 1, _rev: `2-${B}`, _revisions: { start: 2, ids: [] } }, '?new_edits=false');
    assertError(put, 400, 'bad_request', 'When `new_edits: false`, the document needs `_rev` or `_revisions` specified');
    const r = await bulk(db, { new_edits: false, docs: [{ _id: 'empty', v: 1, _rev: `2-${B}`, _revisions: { start: 2, ids: [] } }] });
    assert.ok([400, 500].includes(r.status), `${r.status} ${r.text}`);
    for (const id of ['empty', 'empty_put', 'bad1', 'bad1_put']) assert.equal((await req('GET', `${p}/${id}`)).status, 404, id);
  });
});

test('_local docs in _bulk_docs: written, stale rev not a conflict, delete answers 0-0', T, async () => {
  await withDb(async (db, p) => {
    const c = await bulk(db, { docs: [{ _id: '_local/bl1', v: 1 }, { _id: 'plain', v: 1 }] });
    assert.equal(c.status, 201, c.text);
    assert.deepEqual(c.json[0], { ok: true, id: '_local/bl1', rev: '0-1' });
    assert.equal(c.json[1].id, 'plain');
    assert.deepEqual((await req('GET', `${p}/_local/bl1`)).json, { _id: '_local/bl1', _rev: '0-1', v: 1 });
    const u = await bulk(db, { docs: [{ _id: '_local/bl1', _rev: '0-1', v: 2 }] });
    assert.deepEqual(u.json, [{ ok: true, id: '_local/bl1', rev: '0-2' }]);
    const stale = await bulk(db, { docs: [{ _id: '_local/bl1', _rev: '0-1', v: 3 }] });
    assert.deepEqual(stale.json, [{ ok: true, id: '_local/bl1', rev: '0-2' }]);
    assert.deepEqual((await req('GET', `${p}/_local/bl1`)).json, { _id: '_local/bl1', _rev: '0-2', v: 3 });
    const d = await bulk(db, { docs: [{ _id: '_local/bl1', _rev: '0-1', _deleted: true }] });
    assert.deepEqual(d.json, [{ ok: true, id: '_local/bl1', rev: '0-0' }]);
    assertError(await req('GET', `${p}/_local/bl1`), 404, 'not_found', 'missing');
    const never = await bulk(db, { docs: [{ _id: '_local/never', _rev: '0-1', _deleted: true }] });
    assert.deepEqual(never.json, [{ ok: true, id: '_local/never', rev: '0-0' }]);

    // new_edits=false: "0-5" is stored as 0-6, a tree rev is dropped silently
    const ne = await bulk(db, { new_edits: false, docs: [{ _id: '_local/bl2', _rev: '0-5', v: 1 }] });
    assert.equal(ne.status, 201);
    assert.deepEqual(ne.json, []);
    assert.deepEqual((await req('GET', `${p}/_local/bl2`)).json, { _id: '_local/bl2', _rev: '0-6', v: 1 });
    const tree = await bulk(db, { new_edits: false, docs: [{ _id: '_local/bl3', _rev: `1-${A}`, v: 1 }] });
    assert.equal(tree.status, 201);
    assert.deepEqual(tree.json, []);
    assert.equal((await req('GET', `${p}/_local/bl3`)).status, 404);

    // _all_docs keys answers _local docs; _local docs are never counted
    const ad = await req('POST', `${p}/_all_docs`, { body: { keys: ['_local/bl2'] } });
    assert.deepEqual(ad.json.rows, [{ id: '_local/bl2', key: '_local/bl2', value: { rev: '0-6' } }]);
    assert.equal((await req('GET', p)).json.doc_count, 1);
  });
});

test('_replication_* fields are legal everywhere; read-only members are dropped; others refused', T, async () => {
  await withDb(async (db, p) => {
    const fields = {
      _replication_id: 'x', _replication_state: 'triggered', _replication_state_time: 'x',
      _replication_state_reason: 'x', _replication_stats: { docs_read: 1 },
    };
    const put = await putDoc(db, 'sf', { v: 1, ...fields });
    assert.equal(put.status, 201, put.text);
    assert.deepEqual((await req('GET', `${p}/sf`)).json, { _id: 'sf', _rev: put.json.rev, v: 1, ...fields });
    const ne = await bulk(db, { new_edits: false, docs: [{ _id: 'sfb', _rev: `1-${A}`, ...fields }] });
    assert.deepEqual(ne.json, []);
    assert.deepEqual((await req('GET', `${p}/sfb`)).json, { _id: 'sfb', _rev: `1-${A}`, ...fields });

    const plain = await putDoc(db, 'sx_plain', { v: 1 });
    const hash = (rev) => rev.split('-')[1];
    for (const f of ['_conflicts', '_deleted_conflicts', '_revs_info', '_local_seq']) {
      const r = await putDoc(db, `sx${f}`, { v: 1, [f]: ['x'] });
      assert.equal(r.status, 201, `${f}: ${r.text}`);
      assert.equal(hash(r.json.rev), hash(plain.json.rev), `${f} is not part of the body`);
      assert.deepEqual((await req('GET', `${p}/sx${f}`)).json, { _id: `sx${f}`, _rev: r.json.rev, v: 1 });
    }
    const acc = await putDoc(db, 'sx_access', { v: 1, _access: ['alice'] });
    assert.equal(acc.status, 201, acc.text);
    assertError(await putDoc(db, 'sx_extra', { v: 1, _id_extra: ['x'] }), 400, 'doc_validation', 'Bad special document member: _id_extra');
  });
});

test('_all_docs keys: incompatible with key/startkey/endkey; skip, limit and descending apply to the list', T, async () => {
  await withDb(async (db, p) => {
    const revs = {};
    for (const k of ['k1', 'k2', 'k3', 'k4']) revs[k] = (await putDoc(db, k, { v: k })).json.rev;
    const row = (k) => ({ id: k, key: k, value: { rev: revs[k] } });
    const INCOMPAT = '`keys` is incompatible with `key`, `start_key` and `end_key`';
    assertError(await req('POST', `${p}/_all_docs?startkey=%22k2%22`, { body: { keys: ['k1', 'k3', 'k4'] } }), 400, 'query_parse_error', INCOMPAT);
    assertError(await req('POST', `${p}/_all_docs?endkey=%22k2%22`, { body: { keys: ['k1', 'k3'] } }), 400, 'query_parse_error', INCOMPAT);
    assertError(await req('POST', `${p}/_all_docs`, { body: { keys: ['k1', 'k3'], startkey: 'k2' } }), 400, 'query_parse_error', INCOMPAT);
    assertError(await req('GET', `${p}/_all_docs?keys=${enc('["k1","k3"]')}&key=%22k3%22`), 400, 'query_parse_error', INCOMPAT);

    const q = async (qs, keys) => {
      const r = await req('POST', `${p}/_all_docs${qs}`, { body: { keys } });
      assert.equal(r.status, 200, `${qs}: ${r.text}`);
      assert.equal(r.json.offset, null);
      assert.equal(r.json.total_rows, 4);
      return r.json.rows;
    };
    assert.deepEqual(await q('?skip=1', ['k1', 'k3', 'k4']), [row('k3'), row('k4')]);
    assert.deepEqual(await q('?limit=2', ['k4', 'k1', 'k3']), [row('k4'), row('k1')]);
    assert.deepEqual(await q('?limit=0', ['k1', 'k3']), []);
    assert.deepEqual(await q('?skip=5&limit=1', ['k1', 'k3']), []);
    assert.deepEqual(await q('?descending=true', ['k1', 'k3', 'nope']), [{ key: 'nope', error: 'not_found' }, row('k3'), row('k1')]);
    assert.deepEqual(await q('?descending=true&skip=1&limit=1', ['k1', 'k3', 'nope']), [row('k3')]);
    assert.deepEqual(await q('', ['k1', 'k1', 'nope']), [row('k1'), row('k1'), { key: 'nope', error: 'not_found' }]);
    assert.deepEqual(await q('', []), []);
    const g = await req('GET', `${p}/_all_docs?keys=${enc('["k2","k1"]')}&limit=1`);
    assert.deepEqual(g.json.rows, [row('k2')]);
  });
});

test('GET ?rev=<non-leaf or unknown>&latest=true → the winner; open_revs with latest → every leaf below', T, async () => {
  await withDb(async (db, p) => {
    const r1 = (await putDoc(db, 'latest', { v: 1 })).json.rev;
    const r2 = (await putDoc(db, 'latest', { _rev: r1, v: 2 })).json.rev;
    const h1 = r1.split('-')[1];
    const br = await bulk(db, { new_edits: false, docs: [{ _id: 'latest', _rev: `2-${'0'.repeat(32)}`, _revisions: { start: 2, ids: ['0'.repeat(32), h1] }, v: 'branch' }] });
    assert.deepEqual(br.json, []);
    const win = { _id: 'latest', _rev: r2, v: 2 };
    assert.deepEqual((await req('GET', `${p}/latest?rev=${r1}&latest=true`)).json, win);
    assert.deepEqual((await req('GET', `${p}/latest?rev=${r2}&latest=true`)).json, win);
    const unknown = await req('GET', `${p}/latest?rev=1-${'9'.repeat(32)}&latest=true`);
    assert.equal(unknown.status, 200);
    assert.deepEqual(unknown.json, win);
    assert.deepEqual((await req('GET', `${p}/latest?latest=true`)).json, win);
    const or = await req('GET', `${p}/latest?open_revs=${enc(JSON.stringify([r1]))}&latest=true`, { headers: { Accept: 'application/json' } });
    assert.deepEqual(or.json, [{ ok: { _id: 'latest', _rev: `2-${'0'.repeat(32)}`, v: 'branch' } }, { ok: win }]);
  });
});
