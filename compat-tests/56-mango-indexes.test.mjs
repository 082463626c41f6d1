// Mango json indexes that answer queries: built incrementally and updated on query, chosen as
// CouchDB 3.4 chooses (planner choices seen through _explain and execution_stats), use_index
// right and wrong, partial indexes, sorted and ranged scans, and bookmarks over several pages
// while documents are written. CouchDB 3.4 gives the same answers (run with COUCH_URL at one).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { req } from './lib.mjs';
import { T, enc, withDb, assertError, bulk } from './lib-docs.mjs';

const NO_INDEX = 'No matching index found, create an index to optimize query time.';

async function find(db, body, status = 200, what = '_find') {
  const r = await req('POST', `/${enc(db)}/${what}`, { body });
  assert.equal(r.status, status, `${what} ${JSON.stringify(body)}: ${r.status} ${r.text.slice(0, 400)}`);
  return r.json;
}
const explain = (db, body, status = 200) => find(db, body, status, '_explain');
const ids = (r) => r.docs.map((d) => d._id);
async function index(db, body) {
  const r = await req('POST', `/${enc(db)}/_index`, { body });
  assert.equal(r.status, 200, r.text);
  return r.json;
}
async function load(db, docs) {
  const r = await bulk(db, { docs });
  assert.equal(r.status, 201, r.text);
  return r.json;
}
const pad = (n) => String(n).padStart(3, '0');
// d000..d099: n = i, type by i % 3, ts descending with i, half of them active
const DOCS = Array.from({ length: 100 }, (_, i) => ({
  _id: 'd' + pad(i), n: i, type: ['a', 'b', 'c'][i % 3], ts: 1000 - i, active: i % 2 === 0, name: 'item' + pad(i),
}));

test('json index: built on the first query, kept up to date on later ones, update=false reads it as it is', T, async () => {
  await withDb(async (db) => {
    await load(db, DOCS.slice(0, 50));
    await index(db, { index: { fields: ['n'] }, ddoc: 'by-n', name: 'n' });
    const q = { selector: { n: { $gte: 45 } }, fields: ['_id'] };
    let r = await find(db, q);
    assert.deepEqual(ids(r), ['d045', 'd046', 'd047', 'd048', 'd049']);
    assert.equal(r.warning, undefined, 'an index served it');
    const [d46] = await load(db, [...DOCS.slice(50, 52), { _id: 'low', n: -1 }]);
    assert.ok(d46.ok);
    r = await find(db, q);
    assert.deepEqual(ids(r), ['d045', 'd046', 'd047', 'd048', 'd049', 'd050', 'd051'], 'new docs are in after an update');
    // an update that leaves the range, a deletion, a doc that loses the field
    const cur = await req('POST', `/${enc(db)}/_all_docs`, { body: { keys: ['d045', 'd046', 'd047'] } });
    const rev = Object.fromEntries(cur.json.rows.map((row) => [row.id, row.value.rev]));
    await load(db, [
      { _id: 'd045', _rev: rev.d045, n: 3 },
      { _id: 'd046', _rev: rev.d046, _deleted: true },
      { _id: 'd047', _rev: rev.d047, other: true },
      { _id: 'later', n: 99 },
    ]);
    // update=false: the rows are stale but the docs read are current, and the selector drops the
    // changed ones (without fields: a covering index would answer from its stale rows)
    assert.deepEqual(ids(await find(db, { selector: q.selector, update: false })), ['d048', 'd049', 'd050', 'd051']);
    assert.deepEqual(ids(await find(db, { selector: q.selector, stale: 'ok' })), ['d048', 'd049', 'd050', 'd051'], 'stale=ok is update=false');
    assert.deepEqual(ids(await find(db, q)), ['d048', 'd049', 'd050', 'd051', 'later']);
    assert.deepEqual(ids(await find(db, { selector: { n: { $lt: 4 } }, fields: ['_id'] })), ['low', 'd000', 'd001', 'd002', 'd003', 'd045']);
  });
});

test('planner: the index whose columns the selector requires and ranges most, as CouchDB chooses', T, async () => {
  await withDb(async (db) => {
    await load(db, DOCS);
    await index(db, { index: { fields: ['type'] }, ddoc: 'a-type', name: 'type' });
    await index(db, { index: { fields: ['type', 'ts'] }, ddoc: 'b-type-ts', name: 'type-ts' });
    await index(db, { index: { fields: ['n'] }, ddoc: 'c-n', name: 'n' });
    await index(db, { index: { fields: ['n'], partial_filter_selector: { active: true } }, ddoc: 'd-partial', name: 'n-active' });

    let e = await explain(db, { selector: { type: 'b', ts: { $gt: 950 } } });
    assert.equal(e.index.name, 'type-ts', 'the longer ranged prefix wins');
    assert.deepEqual(e.mrargs.start_key, ['b', 950]);
    assert.deepEqual(e.mrargs.end_key, ['b', '<MAX>']);
    assert.deepEqual(e.selector, { $and: [{ type: { $eq: 'b' } }, { ts: { $gt: 950 } }] });
    const byName = Object.fromEntries(e.index_candidates.map((c) => [c.index.name, c.analysis]));
    assert.deepEqual(byName.type.reasons, [{ name: 'less_overlap' }]);
    assert.equal(byName.type.usable, true);
    assert.deepEqual(byName['n-active'].reasons, [{ name: 'is_partial' }]);
    assert.deepEqual(byName.n.reasons, [{ name: 'field_mismatch' }]);
    assert.deepEqual(byName._all_docs.reasons, [{ name: 'unfavored_type' }]);

    e = await explain(db, { selector: { type: 'b' } });
    assert.equal(e.index.name, 'type', 'same prefix: the one with fewer fields left over... then by ddoc');
    e = await explain(db, { selector: { n: { $gt: 10, $lte: 20 } } });
    assert.equal(e.index.name, 'n', 'a partial index is not chosen unless asked for');
    assert.deepEqual([e.mrargs.start_key, e.mrargs.end_key], [[10], [20, '<MAX>']]);
    e = await explain(db, { selector: { n: { $lt: 5 } } });
    assert.deepEqual([e.mrargs.start_key, e.mrargs.end_key], [[null], [5]]);
    e = await explain(db, { selector: { name: { $regex: '^item0' } } });
    assert.equal(e.index.name, '_all_docs');
    assert.deepEqual(e.selector_hints, [{ type: 'json', indexable_fields: [], unindexable_fields: ['name'] }]);
    e = await explain(db, { selector: { n: { $gt: 90 } }, sort: [{ n: 'desc' }], fields: ['_id', 'n'], limit: 3 });
    assert.equal(e.mrargs.direction, 'rev');
    assert.deepEqual([e.mrargs.start_key, e.mrargs.end_key], [['<MAX>'], [90]]);
    assert.equal(e.covering, true);
    assert.equal(e.mrargs.include_docs, false);
    e = await explain(db, { selector: { _id: { $gte: 'd010', $lt: 'd020' } } });
    assert.equal(e.index.name, '_all_docs');
    assert.deepEqual([e.mrargs.start_key, e.mrargs.end_key], ['d010', 'd020']);

    // answers agree with the plans
    let r = await find(db, { selector: { type: 'b', ts: { $gt: 950 } }, fields: ['_id', 'ts'] });
    assert.deepEqual(r.docs.map((d) => d.ts), DOCS.filter((d) => d.type === 'b' && d.ts > 950).map((d) => d.ts).sort((x, y) => x - y));
    r = await find(db, { selector: { n: { $gt: 90 } }, sort: [{ n: 'desc' }], fields: ['_id', 'n'], limit: 3 });
    assert.deepEqual(r.docs, [{ _id: 'd099', n: 99 }, { _id: 'd098', n: 98 }, { _id: 'd097', n: 97 }]);
    r = await find(db, { selector: { _id: { $gte: 'd010', $lt: 'd020' } }, fields: ['_id'] });
    assert.deepEqual(ids(r), DOCS.slice(10, 20).map((d) => d._id));
    assert.equal(r.warning, NO_INDEX);
    r = await find(db, { selector: { name: { $beginsWith: 'item09' } }, fields: ['_id'] });
    assert.deepEqual(ids(r), DOCS.slice(90).map((d) => d._id));
  });
});

test('sort: only what an index can give; equality columns before the sort field may be skipped', T, async () => {
  await withDb(async (db) => {
    await load(db, DOCS);
    assertError(await req('POST', `/${enc(db)}/_find`, { body: { selector: { type: 'a' }, sort: ['ts'] } }), 400, 'no_usable_index',
      'No index exists for this sort, try indexing by the sort fields.');
    await index(db, { index: { fields: ['type', 'ts'] }, ddoc: 'tt', name: 'type-ts' });
    const want = DOCS.filter((d) => d.type === 'a').sort((x, y) => x.ts - y.ts).map((d) => d._id);
    let r = await find(db, { selector: { type: 'a' }, sort: ['ts'], fields: ['_id'], limit: 100 });
    assert.deepEqual(ids(r), want);
    r = await find(db, { selector: { type: 'a' }, sort: [{ type: 'desc' }, { ts: 'desc' }], fields: ['_id'], limit: 100 });
    assert.deepEqual(ids(r), [...want].reverse());
    // a range on the first column does not fix it: the sort on ts alone is refused
    assertError(await req('POST', `/${enc(db)}/_find`, { body: { selector: { type: { $gt: 'a' } }, sort: ['ts'] } }), 400, 'no_usable_index');
    // _id order needs no index
    r = await find(db, { selector: { type: 'c' }, sort: [{ _id: 'desc' }], fields: ['_id'], limit: 2 });
    assert.deepEqual(ids(r), ['d098', 'd095']);
  });
});

test('use_index: honoured when usable, a warning (or 400 without fallback) when not', T, async () => {
  await withDb(async (db) => {
    await load(db, DOCS);
    await index(db, { index: { fields: ['n'] }, ddoc: 'n1', name: 'n' });
    await index(db, { index: { fields: ['n'] }, ddoc: 'n2', name: 'n' });
    await index(db, { index: { fields: ['n'], partial_filter_selector: { active: true } }, ddoc: 'np', name: 'n-active' });
    const sel = { n: { $gte: 10, $lt: 20 } };
    let e = await explain(db, { selector: sel });
    assert.equal(e.index.ddoc, '_design/n1');
    e = await explain(db, { selector: sel, use_index: 'n2' });
    assert.equal(e.index.ddoc, '_design/n2');
    assert.deepEqual(e.opts.use_index, ['n2']);
    assert.deepEqual(e.index_candidates.find((c) => c.index.ddoc === '_design/n1').analysis.reasons, [{ name: 'excluded_by_user' }]);
    let r = await find(db, { selector: sel, use_index: ['_design/n2', 'n'], fields: ['_id'] });
    assert.equal(r.warning, undefined);
    assert.equal(r.docs.length, 10);
    // a partial index named by use_index serves the query with only its own docs, as in CouchDB
    r = await find(db, { selector: sel, use_index: 'np', fields: ['_id'] });
    assert.deepEqual(ids(r), ['d010', 'd012', 'd014', 'd016', 'd018']);
    const ddoc = await req('GET', `/${enc(db)}/_design/np`);
    assert.deepEqual(ddoc.json.views['n-active'].map, { fields: { n: 'asc' }, partial_filter_selector: { active: { $eq: true } } },
      'the partial filter is stored normalized');
    assert.deepEqual(ddoc.json.views['n-active'].options, { def: { fields: ['n'], partial_filter_selector: { active: true } } });
    r = await find(db, { selector: { type: 'a' }, use_index: 'n1', fields: ['_id'], limit: 1 });
    assert.equal(r.warning, `_design/n1 was not used because it does not contain a valid index for this query.\n${NO_INDEX}`);
    r = await find(db, { selector: sel, use_index: ['n1', 'nope'], fields: ['_id'], limit: 1 });
    assert.equal(r.warning, '_design/n1, nope was not used because it is not a valid index for this query.');
    assertError(await req('POST', `/${enc(db)}/_find`, { body: { selector: { type: 'a' }, use_index: 'n1', allow_fallback: false } }), 400, 'no_usable_index');
  });
});

test('execution_stats: keys and docs examined by the index, by a covering index, by _all_docs', T, async () => {
  await withDb(async (db) => {
    await load(db, DOCS);
    await index(db, { index: { fields: ['n'] }, ddoc: 'n', name: 'n' });
    const stats = async (body) => {
      const r = await find(db, { ...body, execution_stats: true });
      const { execution_time_ms, ...rest } = r.execution_stats;
      assert.equal(typeof execution_time_ms, 'number');
      return { ...rest, warning: r.warning };
    };
    assert.deepEqual(await stats({ selector: { n: { $gte: 10, $lte: 19 } } }),
      { total_keys_examined: 10, total_docs_examined: 10, total_quorum_docs_examined: 0, results_returned: 10, warning: undefined });
    assert.deepEqual(await stats({ selector: { n: { $gte: 10, $lte: 19 } }, fields: ['_id', 'n'] }),
      { total_keys_examined: 10, total_docs_examined: 0, total_quorum_docs_examined: 0, results_returned: 10, warning: undefined }, 'covering: no doc read');
    assert.deepEqual(await stats({ selector: { n: { $gte: 10 }, type: 'x' } }),
      { total_keys_examined: 90, total_docs_examined: 90, total_quorum_docs_examined: 0, results_returned: 0,
        warning: 'The number of documents examined is high in proportion to the number of results returned. Consider adding a more specific index to improve this.' });
    assert.deepEqual(await stats({ selector: { type: 'a' }, limit: 200 }),
      { total_keys_examined: 100, total_docs_examined: 100, total_quorum_docs_examined: 0, results_returned: 34, warning: NO_INDEX });
  });
});

test('bookmarks: pages over an index while documents are written between them', T, async () => {
  await withDb(async (db) => {
    await load(db, DOCS);
    await index(db, { index: { fields: ['n'] }, ddoc: 'n', name: 'n' });
    const q = { selector: { n: { $gte: 0 } }, fields: ['_id', 'n'], limit: 7 };
    const seen = [];
    let bookmark;
    for (let page = 0; page < 30; page++) {
      const r = await find(db, bookmark ? { ...q, bookmark } : q);
      seen.push(...r.docs.map((d) => d.n));
      if (r.docs.length < 7) break;
      bookmark = r.bookmark;
      if (page === 1) {
        // before the position: never shown; after it: shown once, in place
        await load(db, [{ _id: 'early', n: 1.5 }, { _id: 'late', n: 50.5 }]);
      }
      if (page === 3) {
        const cur = await req('GET', `/${enc(db)}/d080`);
        await load(db, [{ _id: 'd080', _rev: cur.json._rev, _deleted: true }, { _id: 'd081b', n: 81.5 }]);
      }
    }
    const want = [...DOCS.map((d) => d.n).filter((n) => n !== 80), 50.5, 81.5].sort((x, y) => x - y);
    assert.deepEqual(seen, want);
  });
});

test('a json index is a view: _design/{ddoc}/_view/{name} gives its rows and _count', T, async () => {
  await withDb(async (db) => {
    await load(db, [...DOCS.slice(0, 5), { _id: 'no-ts', type: 'a' }]);
    await index(db, { index: { fields: ['type', 'ts'] }, ddoc: 'tt', name: 'type-ts' });
    let r = await req('GET', `/${enc(db)}/_design/tt/_view/type-ts?reduce=false&limit=2`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { total_rows: 5, offset: 0, rows: [{ id: 'd003', key: ['a', 997], value: null }, { id: 'd000', key: ['a', 1000], value: null }] });
    r = await req('GET', `/${enc(db)}/_design/tt/_view/type-ts`);
    assert.deepEqual(r.json.rows, [{ key: null, value: 5 }]);
  });
});

test('descending index, $lt end, text and nouveau types', T, async () => {
  await withDb(async (db) => {
    await load(db, DOCS);
    await index(db, { index: { fields: [{ ts: 'desc' }] }, ddoc: 'ts', name: 'ts-desc' });
    let r = await find(db, { selector: { ts: { $lt: 905 } }, sort: [{ ts: 'desc' }], fields: ['_id'] });
    assert.deepEqual(ids(r), ['d096', 'd097', 'd098', 'd099']);
    r = await find(db, { selector: { ts: { $lt: 905 } }, sort: [{ ts: 'asc' }], fields: ['_id'] });
    assert.deepEqual(ids(r), ['d099', 'd098', 'd097', 'd096'], 'a desc index serves an ascending sort too');
    for (const type of ['text', 'nouveau']) {
      assertError(await req('POST', `/${enc(db)}/_index`, { body: { index: { fields: ['n'] }, type } }), 503,
        'required index service unavailable', type);
    }
  });
});
