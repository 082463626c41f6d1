// Background indexing (CouchDB's "ken", docs.couchdb.org config/indexbuilds): after writes to a
// database whose design docs define views, the server brings their indexes up to date by
// itself, so update=false (and stable=true&update=false) answers catch up without any query
// asking for an update. CouchDB starts its background builds some seconds after the writes
// (ken's delay): the answers are polled for up to a minute.
// settee only: [settee] view_background_index = false turns it off (CouchDB has no such switch).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { req, isSettee } from './lib.mjs';
import { enc, withDb, putDoc, bulk, eventually, sleep } from './lib-docs.mjs';

const T = { timeout: 120000 };
const WAIT = 60000;
const CFG = '/_node/_local/_config/settee/view_background_index';
const setCfg = (v) => req('PUT', CFG, { body: JSON.stringify(v), headers: { 'Content-Type': 'application/json' } });

const docs = (from, n) => Array.from({ length: n }, (_, i) => ({ _id: `d${String(from + i).padStart(5, '0')}`, type: `t${(from + i) % 7}`, n: from + i }));

async function staleRows(db, qs = '') {
  const r = await req('GET', `/${enc(db)}/_design/b/_view/by_type?update=false&reduce=false${qs}`);
  assert.equal(r.status, 200, r.text);
  return r.json;
}

async function staleFind(db) {
  const r = await req('POST', `/${enc(db)}/_find`, {
    body: { selector: { n: { $gte: 0 } }, use_index: ['m', 'by_n'], update: false, limit: 100000, fields: ['_id'] },
  });
  assert.equal(r.status, 200, r.text);
  return r.json.docs.length;
}

test('update=false view and _find answers catch up after writes, with no update=true query', T, () => withDb(async (db) => {
  await putDoc(db, '_design/b', { views: { by_type: { map: 'function(doc){ if (doc.type) emit(doc.type, doc.n) }', reduce: '_count' } } });
  let r = await req('POST', `/${enc(db)}/_index`, { body: { index: { fields: ['n'] }, ddoc: 'm', name: 'by_n', type: 'json' } });
  assert.equal(r.status, 200, r.text);
  r = await bulk(db, { docs: docs(0, 300) });
  assert.equal(r.status, 201, r.text);

  const caught = await eventually(async () => (await staleRows(db)).total_rows === 300, WAIT);
  assert.ok(caught, 'the view index caught up on its own');
  const view = await staleRows(db, '&stable=true');
  assert.equal(view.rows.length, 300);
  assert.deepEqual(view.rows[0], { id: 'd00000', key: 't0', value: 0 });
  assert.ok(await eventually(async () => (await staleFind(db)) === 300, WAIT), 'the Mango index caught up on its own');

  // later writes (updates, deletions, new docs) are indexed the same way
  const all = await req('GET', `/${enc(db)}/_all_docs?limit=10&startkey=%22d%22`);
  const changed = all.json.rows.map((row, i) => (i < 5
    ? { _id: row.id, _rev: row.value.rev, type: 'changed', n: 1000 + i }
    : { _id: row.id, _rev: row.value.rev, _deleted: true }));
  r = await bulk(db, { docs: [...changed, ...docs(300, 20)] });
  assert.equal(r.status, 201, r.text);
  const want = 300 - 5 + 20;
  assert.ok(await eventually(async () => {
    const v = await staleRows(db);
    return v.total_rows === want && v.rows.filter((row) => row.key === 'changed').length === 5;
  }, WAIT), 'the view index caught up with updates and deletions');
  const reduced = await req('GET', `/${enc(db)}/_design/b/_view/by_type?update=false&stable=true`);
  assert.deepEqual(reduced.json.rows, [{ key: null, value: want }]);
  assert.ok(await eventually(async () => (await staleFind(db)) === want, WAIT));

  // the index is current: _info says so
  const info = await req('GET', `/${enc(db)}/_design/b/_info`);
  const dbInfo = await req('GET', `/${enc(db)}`);
  assert.equal(info.json.view_index.update_seq, Number.parseInt(dbInfo.json.update_seq, 10));
}));

test('[settee] view_background_index = false leaves indexes to queries', T, async (t) => {
  if (!(await isSettee())) return t.skip('a settee setting');
  const before = await req('GET', CFG);
  const put = await setCfg('false');
  assert.equal(put.status, 200, put.text);
  try {
    await withDb(async (db) => {
      await putDoc(db, '_design/b', { views: { by_type: { map: 'function(doc){ if (doc.type) emit(doc.type, doc.n) }' } } });
      const r = await bulk(db, { docs: docs(0, 50) });
      assert.equal(r.status, 201, r.text);
      await sleep(2500); // five times the default delay
      assert.equal((await staleRows(db)).total_rows, 0, 'nothing indexed in the background');
      // a query still builds it
      const built = await req('GET', `/${enc(db)}/_design/b/_view/by_type`);
      assert.equal(built.json.total_rows, 50);
      // and turned back on, the next write is indexed without a query
      const on = await setCfg('true');
      assert.equal(on.status, 200, on.text);
      await bulk(db, { docs: docs(50, 10) });
      assert.ok(await eventually(async () => (await staleRows(db)).total_rows === 60, WAIT));
    });
  } finally {
    if (before.status === 200) await setCfg(before.json);
    else await req('DELETE', CFG);
  }
});
