// _changes filters with style=all_docs judge each leaf, as CouchDB 3.4's couch_changes:filter
// does: a design doc's filter, filter=_view and filter=_selector are given every leaf of a
// doc (open_revs, deleted leaves too) and the row lists the leaves that passed, in winner
// order; a doc none of whose leaves passed has no row. Without style=all_docs only the winner
// is judged. _doc_ids and _design look at the id and list every leaf (apply_style). With
// include_docs the doc is the winner, passed or not (fabric_rpc:changes_enumerator takes the
// first opened revision). A replication (which asks its source for style=all_docs) with a
// filter or a selector then copies the passing leaves only, from a local source (settee's
// replicator reads it through the store) as from an http:// one (through this _changes).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { req, withDb, dbPath, putRevs, pathDoc, rid, rev, COUCH_URL } from './lib-repl.mjs';
import { freshDb, dropDb, dbName } from './lib.mjs';

const T = { timeout: 60000 };
const BLUE = 'function (doc) { return doc.color === "blue"; }';
const MAP = 'function (doc) { if (doc.color === "blue") emit(doc._id, null); }';

const made = [];
after(async () => { for (const d of made) await dropDb(d); });

async function changes(db, query, body) {
  const r = await req(body ? 'POST' : 'GET', dbPath(db, '_changes') + '?' + query, body ? { body } : {});
  assert.equal(r.status, 200, `_changes?${query}: ${r.status} ${r.text}`);
  return r.json;
}
const rows = (res) => Object.fromEntries(res.results.map((x) => [x.id, x]));
const revsOf = (row) => row.changes.map((c) => c.rev);

// cd:    1-a -> 3-d (winner, red), 1-a -> 2-b (blue), 1-a -> 2-e (deleted, kept a blue body)
// lose:  1-1 -> 2-f (winner, red), 1-1 -> 2-2 (blue)
// none:  1-3 -> 2-9 (red), 1-3 -> 2-8 (green)
// plain: 1-7 (blue), one leaf
async function seed(db) {
  await putRevs(db, [
    pathDoc('cd', 3, [rid('d'), rid('c'), rid('a')], { color: 'red' }),
    pathDoc('cd', 2, [rid('b'), rid('a')], { color: 'blue' }),
    { ...pathDoc('cd', 2, [rid('e'), rid('a')], { color: 'blue' }), _deleted: true },
    pathDoc('lose', 2, [rid('f'), rid('1')], { color: 'red' }),
    pathDoc('lose', 2, [rid('2'), rid('1')], { color: 'blue' }),
    pathDoc('none', 2, [rid('9'), rid('3')], { color: 'red' }),
    pathDoc('none', 2, [rid('8'), rid('3')], { color: 'green' }),
    pathDoc('plain', 1, [rid('7')], { color: 'blue' }),
  ]);
  const r = await req('PUT', dbPath(db, '_design', 'f'), { body: { filters: { blue: BLUE }, views: { blue: { map: MAP } } } });
  assert.equal(r.status, 201, r.text);
}

const FILTERS = [
  ['filter=f/blue', undefined],
  ['filter=_view&view=f/blue', undefined],
  ['filter=_selector', { selector: { color: 'blue' } }],
];

test('style=all_docs: each leaf is judged, the row lists those that passed', T, () => withDb(async (db) => {
  await seed(db);
  // the tree as the unfiltered feed lists it: winner first
  const all = rows(await changes(db, 'style=all_docs'));
  assert.deepEqual(revsOf(all.cd), [rev(3, 'd'), rev(2, 'b'), rev(2, 'e')]);
  assert.deepEqual(revsOf(all.lose), [rev(2, 'f'), rev(2, '2')]);
  for (const [q, body] of FILTERS) {
    const res = await changes(db, `${q}&style=all_docs`, body);
    const by = rows(res);
    assert.deepEqual(Object.keys(by).sort(), ['cd', 'lose', 'plain'], `${q}: the docs with a blue leaf`);
    // the winner (red) is left out; the deleted leaf's body is judged too
    assert.deepEqual(revsOf(by.cd), [rev(2, 'b'), rev(2, 'e')], q);
    assert.equal('deleted' in by.cd, false, `${q}: deleted is the winner's`);
    assert.deepEqual(revsOf(by.lose), [rev(2, '2')], q);
    assert.deepEqual(revsOf(by.plain), [rev(1, '7')], q);
  }
}));

test('without style=all_docs only the winner is judged', T, () => withDb(async (db) => {
  await seed(db);
  for (const [q, body] of FILTERS) {
    const by = rows(await changes(db, q, body));
    assert.deepEqual(Object.keys(by), ['plain'], q);
    assert.deepEqual(revsOf(by.plain), [rev(1, '7')], q);
  }
}));

test('include_docs: the row\'s doc is the winner even when only a losing leaf passed', T, () => withDb(async (db) => {
  await seed(db);
  for (const [q, body] of FILTERS) {
    const by = rows(await changes(db, `${q}&style=all_docs&include_docs=true`, body));
    assert.deepEqual(revsOf(by.lose), [rev(2, '2')], q);
    assert.deepEqual(by.lose.doc, { _id: 'lose', _rev: rev(2, 'f'), color: 'red' }, q);
  }
}));

test('continuous and longpoll feeds filter per leaf the same way', T, () => withDb(async (db) => {
  await seed(db);
  for (const feed of ['continuous', 'longpoll']) {
    const r = await req('GET', dbPath(db, '_changes') + `?feed=${feed}&style=all_docs&filter=f/blue&timeout=100`);
    assert.equal(r.status, 200, r.text);
    const lines = feed === 'continuous'
      ? r.text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l)).filter((x) => x.id)
      : r.json.results;
    const by = Object.fromEntries(lines.map((x) => [x.id, x]));
    assert.deepEqual(revsOf(by.cd), [rev(2, 'b'), rev(2, 'e')], feed);
    assert.deepEqual(revsOf(by.lose), [rev(2, '2')], feed);
    assert.equal(by.none, undefined, feed);
  }
}));

test('_doc_ids and _design look at the id: every leaf is listed', T, () => withDb(async (db) => {
  await seed(db);
  const ids = rows(await changes(db, 'filter=_doc_ids&style=all_docs', { doc_ids: ['cd', 'lose'] }));
  assert.deepEqual(revsOf(ids.cd), [rev(3, 'd'), rev(2, 'b'), rev(2, 'e')]);
  assert.deepEqual(revsOf(ids.lose), [rev(2, 'f'), rev(2, '2')]);
  const dd = await changes(db, 'filter=_design&style=all_docs');
  assert.deepEqual(dd.results.map((x) => x.id), ['_design/f']);
}));

// What a replication of db with the given filter options leaves on a new target: each doc's
// leaves (open_revs=all).
async function replicateLeaves(source, opts) {
  const target = dbName('leaftgt');
  made.push(target);
  const r = await req('POST', '/_replicate', { body: { source, target, create_target: true, ...opts } });
  assert.equal(r.status, 200, r.text);
  const all = await req('GET', `/${target}/_all_docs`);
  const out = {};
  for (const row of all.json.rows) {
    if (row.id.startsWith('_design/')) continue;
    const leaves = await req('GET', `/${target}/${row.id}?open_revs=all`, { headers: { Accept: 'application/json' } });
    out[row.id] = leaves.json.map((x) => (x.ok ? x.ok._rev : x.missing)).sort();
  }
  return out;
}

test('a replication with a filter or a selector copies the passing leaves only', T, async () => {
  const src = await freshDb('leafsrc');
  made.push(src);
  await seed(src);
  const url = new URL(COUCH_URL);
  url.pathname = `/${src}`;
  const want = { cd: [rev(2, 'b'), rev(2, 'e')], lose: [rev(2, '2')], plain: [rev(1, '7')] };
  for (const source of [src, url.toString()]) {
    assert.deepEqual(await replicateLeaves(source, { filter: 'f/blue' }), want, `filter from ${source}`);
    assert.deepEqual(await replicateLeaves(source, { selector: { color: 'blue' } }), want, `selector from ${source}`);
  }
});
