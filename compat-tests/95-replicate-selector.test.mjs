// A replication with a selector between local databases (POST /_replicate with names, which
// CouchDB 3.4 also takes) copies exactly the revisions that match (each leaf of a conflicted
// doc judged on its own: 78-filter-all-docs-leaves), through inserts,
// updates that enter or leave the selector, deletions and conflicts; with a partial Mango
// index covering the selector (settee then reads only the index's docs) the target ends up
// identical to the one a full changes scan fills.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { req, freshDb, dropDb, dbName } from './lib.mjs';

const made = [];
after(async () => { for (const d of made) await dropDb(d); });

async function replicate(source, target) {
  const r = await req('POST', '/_replicate', { body: { source, target, create_target: true, selector: { type: 'b' } } });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

async function contents(db) {
  const r = await req('GET', `/${db}/_all_docs?include_docs=true&conflicts=true`);
  assert.equal(r.status, 200, r.text);
  return r.json.rows.map((x) => ({ id: x.id, rev: x.value.rev, n: x.doc.n, type: x.doc.type, conflicts: x.doc._conflicts }));
}

test('selector replication with and without a covering index gives the same target', async () => {
  const src = await freshDb('selsrc');
  made.push(src);
  const docs = [];
  for (let i = 0; i < 120; i++) docs.push({ _id: `d${String(i).padStart(3, '0')}`, type: i % 4 === 0 ? 'b' : 'a', n: i });
  assert.equal((await req('POST', `/${src}/_bulk_docs`, { body: { docs } })).status, 201);
  const plain = dbName('selplain'), indexed = dbName('selidx');
  made.push(plain, indexed);
  // the same source replicated twice: once before any index exists, once with one
  await replicate(src, plain);
  const ix = await req('POST', `/${src}/_index`, {
    body: { index: { fields: ['type'], partial_filter_selector: { type: 'b' } }, ddoc: 'bidx', name: 'bidx', type: 'json' },
  });
  assert.equal(ix.status, 200, ix.text);
  await replicate(src, indexed);
  const first = await contents(plain);
  assert.equal(first.length, 30);
  assert.ok(first.every((d) => d.type === 'b'));
  assert.deepEqual(await contents(indexed), first);

  // updates entering and leaving the selector, a deletion, a conflict on a matching doc
  const get = async (id) => (await req('GET', `/${src}/${id}`)).json;
  const enter = await get('d001');
  const leave = await get('d004');
  const gone = await get('d008');
  const conf = await get('d012');
  const w = await req('POST', `/${src}/_bulk_docs`, {
    body: { docs: [{ ...enter, type: 'b' }, { ...leave, type: 'a' }, { ...gone, _deleted: true }] },
  });
  assert.equal(w.status, 201, w.text);
  const c = await req('POST', `/${src}/_bulk_docs`, {
    body: { new_edits: false, docs: [{ _id: 'd012', _rev: '2-ffffffffffffffffffffffffffffffff', _revisions: { start: 2, ids: ['ffffffffffffffffffffffffffffffff', conf._rev.slice(2)] }, type: 'b', n: 12 }] },
  });
  assert.equal(c.status, 201, c.text);
  const a = await replicate(src, plain);
  const b = await replicate(src, indexed);
  assert.equal(a.history[0].docs_written, b.history[0].docs_written, 'the same number of revisions sent');
  const after1 = await contents(plain);
  assert.deepEqual(await contents(indexed), after1);
  const ids = after1.map((d) => d.id);
  assert.ok(ids.includes('d001'), 'a doc that entered the selector arrives');
  assert.ok(ids.includes('d004'), 'a doc that left it keeps its last matching revision on the target (CouchDB copies nothing of it)');
  assert.ok(!ids.includes('d008'), 'the deletion arrives');
  assert.equal(after1.find((d) => d.id === 'd012').rev, '2-ffffffffffffffffffffffffffffffff');
});

test('_changes?filter=_selector gives the same rows with and without a covering index', async () => {
  const db = await freshDb('selfeed');
  made.push(db);
  const docs = [];
  for (let i = 0; i < 80; i++) docs.push({ _id: `f${String(i).padStart(3, '0')}`, kind: i % 5 === 0 ? 'x' : 'y', n: i });
  assert.equal((await req('POST', `/${db}/_bulk_docs`, { body: { docs } })).status, 201);
  const feed = async (since = 0, extra = '') => {
    const r = await req('POST', `/${db}/_changes?filter=_selector&style=all_docs&since=${since}${extra}`, { body: { selector: { kind: 'x' } } });
    assert.equal(r.status, 200, r.text);
    return r.json;
  };
  const before = await feed();
  assert.equal(before.results.length, 16);
  const ix = await req('POST', `/${db}/_index`, { body: { index: { fields: ['kind'] }, ddoc: 'kx', name: 'kx', type: 'json' } });
  assert.equal(ix.status, 200, ix.text);
  // the index's design doc is itself a change: it does not match the selector
  const withIdx = await feed();
  assert.deepEqual(withIdx.results, before.results);
  // edits entering and leaving, a deletion that keeps its body, one without
  const get = async (id) => (await req('GET', `/${db}/${id}`)).json;
  const [a, b, c, d] = await Promise.all(['f001', 'f005', 'f010', 'f015'].map(get));
  const w = await req('POST', `/${db}/_bulk_docs`, {
    body: { docs: [{ ...a, kind: 'x' }, { ...b, kind: 'y' }, { ...c, _deleted: true }, { _id: d._id, _rev: d._rev, _deleted: true }] },
  });
  assert.equal(w.status, 201, w.text);
  const all = await feed();
  const ids = all.results.map((row) => row.id);
  assert.ok(ids.includes('f001') && !ids.includes('f005'), 'entering and leaving');
  assert.ok(ids.includes('f010'), 'a deletion that keeps kind x matches');
  assert.ok(!ids.includes('f015'), 'a bare deletion does not');
  // the same answer from every since, and with limits, as a full scan would give
  for (const since of [0, 10, 40, 80]) {
    const got = await feed(since);
    const want = all.results.filter((row) => parseInt(row.seq, 10) > since);
    assert.deepEqual(got.results.map((row) => row.id), want.map((row) => row.id), `since ${since}`);
  }
  const paged = await feed(0, '&limit=3');
  assert.deepEqual(paged.results.map((row) => row.id), all.results.slice(0, 3).map((row) => row.id));
});
