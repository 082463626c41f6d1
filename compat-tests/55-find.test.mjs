// Mango queries: POST _find (selectors, fields, limit/skip, bookmarks, conflicts,
// execution_stats, errors), _index create/list/delete, _explain, and pouchdb-find against
// the server. Expected: CouchDB 3.4 answering from its _all_docs index (no json index
// exists unless a test creates one) — results in id order, design docs never returned.
// A sort needs an index that can give it (CouchDB's no_usable_index otherwise).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { req, remote } from './lib.mjs';
import { T, enc, withDb, assertJsonHeaders, assertError, bulk, putDoc, getDoc } from './lib-docs.mjs';


async function find(db, body, status = 200) {
  const r = await req('POST', `/${enc(db)}/_find`, { body });
  assert.equal(r.status, status, `_find ${JSON.stringify(body)}: ${r.status} ${r.text.slice(0, 400)}`);
  return r;
}
const ids = (r) => r.json.docs.map((d) => d._id);

async function load(db, docs) {
  const r = await bulk(db, { docs });
  assert.equal(r.status, 201, r.text);
  for (const row of r.json) assert.ok(row.ok, JSON.stringify(row));
}

const PEOPLE = [
  { _id: 'alice', name: 'Alice', age: 31, tags: ['a', 'b'], addr: { city: 'Oslo', zip: 150 }, kind: 'p' },
  { _id: 'bob', name: 'Bob', age: 25, tags: ['b'], addr: { city: 'Bergen' }, kind: 'p' },
  { _id: 'carol', name: 'Carol', age: 42, tags: [], kind: 'p', nick: null },
  { _id: 'dave', name: 'Dave', age: 25.5, tags: ['c', 'a', 'b'], addr: { city: 'Oslo', zip: 151 }, kind: 'p' },
  { _id: 'erin', name: 'erin', age: '40', kind: 'q', scores: [{ s: 3 }, { s: 9 }] },
  { _id: 'frank', kind: 'q', scores: [{ s: 1 }] },
];

// _find: selectors ---------------------------------------------------------------

test('_find: response shape, id order, design docs never returned', T, async () => {
  await withDb(async (db) => {
    await load(db, [...PEOPLE, { _id: '_design/x', kind: 'p', views: {} }]);
    const r = await find(db, { selector: { kind: 'p' } });
    assertJsonHeaders(r, '_find');
    assert.deepEqual(ids(r), ['alice', 'bob', 'carol', 'dave']);
    assert.equal(typeof r.json.bookmark, 'string');
    assert.match(r.json.warning, /no matching index found, create an index to optimize query time/i);
    assert.equal(r.json.execution_stats, undefined, 'execution_stats only when asked');
    const alice = r.json.docs[0];
    assert.match(alice._rev, /^1-[0-9a-f]{32}$/);
    assert.deepEqual({ ...alice, _rev: undefined }, { ...PEOPLE[0], _rev: undefined });
    // the empty selector matches every doc, design docs still excluded
    assert.deepEqual(ids(await find(db, { selector: {} })), PEOPLE.map((p) => p._id));
  });
});

test('_find: selector operators', T, async () => {
  await withDb(async (db) => {
    await load(db, PEOPLE);
    const cases = [
      [{ age: 25 }, ['bob']],
      [{ age: { $eq: 25 } }, ['bob']],
      [{ age: { $gt: 25, $lt: 42 } }, ['alice', 'dave']],
      [{ age: { $gte: 25, $lte: 31 } }, ['alice', 'bob', 'dave']],
      // strings sort after numbers in CouchDB's collation
      [{ age: { $gt: 100 } }, ['erin']],
      [{ age: { $ne: 25 } }, ['alice', 'carol', 'dave', 'erin']],
      [{ name: { $in: ['Bob', 'Carol', 'Zed'] } }, ['bob', 'carol']],
      [{ kind: 'p', name: { $nin: ['Bob', 'Carol'] } }, ['alice', 'dave']],
      [{ nick: { $exists: true } }, ['carol']],
      [{ addr: { $exists: false } }, ['carol', 'erin', 'frank']],
      [{ age: { $type: 'string' } }, ['erin']],
      [{ nick: { $type: 'null' } }, ['carol']],
      [{ name: { $regex: '^[A-C]' } }, ['alice', 'bob', 'carol']],
      [{ 'addr.city': 'Oslo' }, ['alice', 'dave']],
      [{ addr: { city: 'Oslo', zip: { $gt: 150 } } }, ['dave']],
      [{ 'tags.0': 'a' }, ['alice']],
      [{ tags: { $all: ['a', 'b'] } }, ['alice', 'dave']],
      [{ tags: { $size: 0 } }, ['carol']],
      [{ tags: { $elemMatch: { $eq: 'c' } } }, ['dave']],
      [{ scores: { $elemMatch: { s: { $gt: 5 } } } }, ['erin']],
      [{ scores: { $allMatch: { s: { $lt: 5 } } } }, ['frank']],
      [{ age: { $mod: [5, 0] } }, ['bob']],
      [{ $or: [{ name: 'Bob' }, { kind: 'q' }] }, ['bob', 'erin', 'frank']],
      [{ $and: [{ kind: 'p' }, { age: { $lt: 30 } }] }, ['bob', 'dave']],
      [{ kind: 'p', $not: { age: 25 } }, ['alice', 'carol', 'dave']],
      [{ kind: 'p', $nor: [{ age: 25 }, { age: 42 }] }, ['alice', 'dave']],
      [{ _id: { $gt: 'c', $lt: 'e' } }, ['carol', 'dave']],
    ];
    for (const [selector, want] of cases) {
      const r = await find(db, { selector });
      assert.deepEqual(ids(r), want, JSON.stringify(selector));
    }
  });
});

// fields, limit, skip ---------------------------------------------------------------

test('_find: fields projects top-level and dotted fields, missing ones left out', T, async () => {
  await withDb(async (db) => {
    await load(db, PEOPLE);
    const r = await find(db, { selector: { kind: 'p' }, fields: ['_id', 'age', 'addr.city', 'nick'] });
    assert.deepEqual(r.json.docs, [
      { _id: 'alice', age: 31, addr: { city: 'Oslo' } },
      { _id: 'bob', age: 25, addr: { city: 'Bergen' } },
      { _id: 'carol', age: 42, nick: null },
      { _id: 'dave', age: 25.5, addr: { city: 'Oslo' } },
    ]);
    // no automatic _id or _rev
    const r2 = await find(db, { selector: { _id: 'bob' }, fields: ['name'] });
    assert.deepEqual(r2.json.docs, [{ name: 'Bob' }]);
    // [] means all fields
    const r3 = await find(db, { selector: { _id: 'bob' }, fields: [] });
    assert.equal(r3.json.docs[0].name, 'Bob');
    assert.ok(r3.json.docs[0]._rev);
  });
});

test('_find: limit defaults to 25; limit and skip', T, async () => {
  await withDb(async (db) => {
    const docs = [];
    for (let i = 0; i < 30; i++) docs.push({ _id: 'd' + String(i).padStart(2, '0'), i, even: i % 2 === 0 });
    await load(db, docs);
    const all = await find(db, { selector: {} });
    assert.equal(all.json.docs.length, 25, 'default limit');
    assert.deepEqual(ids(all), docs.slice(0, 25).map((d) => d._id));
    const r = await find(db, { selector: { even: true }, skip: 3, limit: 4 });
    assert.deepEqual(ids(r), ['d06', 'd08', 'd10', 'd12']);
    assert.deepEqual((await find(db, { selector: {}, limit: 0 })).json.docs, []);
    assert.deepEqual((await find(db, { selector: {}, skip: 100 })).json.docs, []);
    const big = await find(db, { selector: { i: { $gte: 5 } }, limit: 1000 });
    assert.equal(big.json.docs.length, 25);
  });
});

// bookmarks -----------------------------------------------------------------------

async function pageAll(db, query, pageSize) {
  const seen = [];
  let bookmark;
  for (let n = 0; n < 100; n++) {
    const r = await find(db, { ...query, limit: pageSize, ...(bookmark ? { bookmark } : {}) });
    assert.equal(typeof r.json.bookmark, 'string');
    seen.push(...ids(r));
    if (r.json.docs.length < pageSize) return seen;
    bookmark = r.json.bookmark;
  }
  throw new Error('paging did not end');
}

test('_find: bookmark paging visits every match exactly once, in order', T, async () => {
  await withDb(async (db) => {
    const docs = [];
    for (let i = 0; i < 23; i++) docs.push({ _id: 'k' + String(i).padStart(2, '0'), i, odd: i % 2 === 1 });
    await load(db, [...docs, { _id: '_design/skipme', odd: true }]);
    const want = docs.filter((d) => !d.odd).map((d) => d._id);
    assert.deepEqual(await pageAll(db, { selector: { odd: false } }, 3), want);
    assert.deepEqual(await pageAll(db, { selector: { odd: false } }, 1), want);
    assert.deepEqual(await pageAll(db, { selector: { odd: false } }, 100), want);
    // descending _id is served by _all_docs too
    const desc = await pageAll(db, { selector: { _id: { $gt: null }, odd: false }, sort: [{ _id: 'desc' }] }, 4);
    assert.deepEqual(desc, [...want].reverse());
  });
});

test('_find: a bookmark continues after its page even when docs before it change', T, async () => {
  await withDb(async (db) => {
    await load(db, ['a', 'b', 'c', 'd', 'e'].map((_id) => ({ _id, t: 1 })));
    const p1 = await find(db, { selector: { t: 1 }, limit: 2 });
    assert.deepEqual(ids(p1), ['a', 'b']);
    await load(db, [{ _id: 'aa', t: 1 }]); // sorts before the bookmark
    const p2 = await find(db, { selector: { t: 1 }, limit: 2, bookmark: p1.json.bookmark });
    assert.deepEqual(ids(p2), ['c', 'd']);
    // skip applies after the bookmark's position
    const p3 = await find(db, { selector: { t: 1 }, limit: 2, skip: 1, bookmark: p1.json.bookmark });
    assert.deepEqual(ids(p3), ['d', 'e']);
  });
});

test('_find: sort through a json index, paged by bookmark (pouchdb-find style)', T, async () => {
  await withDb(async (db) => {
    const docs = [];
    for (let i = 0; i < 17; i++) docs.push({ _id: 's' + String(i).padStart(2, '0'), n: (i * 7) % 5, i });
    docs.push({ _id: 'no-n', i: 99 });
    await load(db, docs);
    const ix = await req('POST', `/${enc(db)}/_index`, { body: { index: { fields: ['n'] }, name: 'by-n' } });
    assert.equal(ix.status, 200, ix.text);
    const want = docs
      .filter((d) => d.n !== undefined && d.n >= 1)
      .sort((a, b) => b.n - a.n || (a._id < b._id ? 1 : a._id > b._id ? -1 : 0))
      .map((d) => d._id);
    const query = { selector: { n: { $gte: 1 } }, sort: [{ n: 'desc' }] };
    const r = await find(db, { ...query, limit: 100 });
    const got = r.json.docs.map((d) => d.n);
    assert.deepEqual(got, [...got].sort((a, b) => b - a), 'descending by n');
    assert.equal(r.json.docs.length, want.length);
    const paged = await pageAll(db, query, 4);
    assert.deepEqual([...paged].sort(), [...want].sort(), 'every match exactly once');
    assert.equal(new Set(paged).size, paged.length);
    assert.deepEqual(paged, ids(r), 'pages follow the one order');
  });
});

test('_find: a sort no index can give is refused, then served once indexes exist', T, async () => {
  await withDb(async (db) => {
    await load(db, PEOPLE);
    assertError(await find(db, { selector: { kind: 'p' }, sort: ['age'] }, 400), 400, 'no_usable_index',
      'No index exists for this sort, try indexing by the sort fields.');
    const mk = async (index) => assert.equal((await req('POST', `/${enc(db)}/_index`, { body: { index } })).status, 200);
    await mk({ fields: ['age'] });
    await mk({ fields: [{ 'addr.city': 'desc' }, { 'addr.zip': 'desc' }] });
    const r = await find(db, { selector: { kind: 'p' }, sort: ['age'], fields: ['_id', 'age'] });
    assert.deepEqual(ids(r), ['bob', 'dave', 'alice', 'carol']);
    const r2 = await find(db, { selector: {}, sort: [{ 'addr.city': 'desc' }, { 'addr.zip': 'desc' }] });
    assert.deepEqual(ids(r2), ['dave', 'alice'], 'docs without every sort field take no part');
    // numbers before strings in collation; ties broken by id
    const r3 = await find(db, { selector: { age: { $exists: true } }, sort: [{ age: 'desc' }], limit: 2 });
    assert.deepEqual(ids(r3), ['erin', 'carol']);
    const r4 = await find(db, { selector: { age: { $exists: true } }, sort: [{ age: 'desc' }], limit: 2, skip: 1, bookmark: r3.json.bookmark });
    assert.deepEqual(ids(r4), ['dave', 'bob']);
    assert.deepEqual(await pageAll(db, { selector: {}, sort: ['age'] }, 2), ['bob', 'dave', 'alice', 'carol', 'erin']);
  });
});

// conflicts, execution_stats ------------------------------------------------------

test('_find: conflicts=true adds _conflicts and lets the selector see it', T, async () => {
  await withDb(async (db) => {
    const r = await bulk(db, {
      new_edits: false,
      docs: [
        { _id: 'k', _rev: '1-' + 'a'.repeat(32), v: 1 },
        { _id: 'k', _rev: '1-' + 'b'.repeat(32), v: 2 },
        { _id: 'plain', _rev: '1-' + 'c'.repeat(32), v: 3 },
      ],
    });
    assert.equal(r.status, 201, r.text);
    const f = await find(db, { selector: { _conflicts: { $exists: true } }, conflicts: true });
    assert.deepEqual(ids(f), ['k']);
    assert.equal(f.json.docs[0]._rev, '1-' + 'b'.repeat(32));
    assert.deepEqual(f.json.docs[0]._conflicts, ['1-' + 'a'.repeat(32)]);
    const plain = await find(db, { selector: {} });
    assert.deepEqual(ids(plain), ['k', 'plain']);
    for (const d of plain.json.docs) assert.equal(d._conflicts, undefined);
    assert.deepEqual((await find(db, { selector: { _conflicts: { $exists: true } } })).json.docs, []);
  });
});

test('_find: execution_stats', T, async () => {
  await withDb(async (db) => {
    await load(db, PEOPLE);
    const r = await find(db, { selector: { kind: 'q' }, execution_stats: true });
    const s = r.json.execution_stats;
    assert.ok(s, r.text);
    for (const k of ['total_keys_examined', 'total_docs_examined', 'total_quorum_docs_examined', 'results_returned', 'execution_time_ms'])
      assert.equal(typeof s[k], 'number', k);
    assert.equal(s.total_docs_examined, PEOPLE.length);
    assert.equal(s.total_quorum_docs_examined, 0);
    assert.equal(s.results_returned, 2);
    assert.ok(s.execution_time_ms >= 0);
  });
});

// errors ------------------------------------------------------------------------

test('_find: request errors', T, async () => {
  await withDb(async (db) => {
    await load(db, PEOPLE);
    const post = (body, headers) => req('POST', `/${enc(db)}/_find`, { body, headers });
    assertError(await post({}), 400, 'missing_required_key', 'Missing required key: selector');
    assertError(await post({ selector: [] }), 400, 'invalid_selector_json');
    assertError(await post({ selector: 'x' }), 400, 'invalid_selector_json');
    assertError(await post({ selector: { a: { $bogus: 1 } } }), 400, 'invalid_operator', 'Invalid operator: $bogus');
    assertError(await post({ selector: { a: { $in: 1 } } }), 400, 'bad_arg');
    assertError(await post({ selector: {}, limit: 'x' }), 400, 'invalid_non_neg_integer');
    assertError(await post({ selector: {}, limit: -1 }), 400, 'invalid_non_neg_integer');
    assertError(await post({ selector: {}, limit: 1.5 }), 400, 'invalid_non_neg_integer');
    assertError(await post({ selector: {}, skip: -2 }), 400, 'invalid_non_neg_integer');
    assertError(await post({ selector: {}, bogus: 1 }), 400, 'invalid_key', 'Invalid key bogus for this request.');
    assertError(await post({ selector: {}, fields: 'name' }), 400, 'invalid_fields');
    assertError(await post({ selector: {}, fields: [1] }), 400, 'invalid_field');
    assertError(await post({ selector: {}, sort: 'name' }), 400, 'invalid_sort_json');
    assertError(await post({ selector: {}, sort: [{ a: 'asc' }, { b: 'desc' }] }), 400, 'unsupported_mixed_sort',
      'Sorts currently only support a single direction for all fields.');
    assertError(await post({ selector: {}, conflicts: 'yes' }), 400, 'invalid_boolean');
    assertError(await post({ selector: {}, bookmark: 'not a bookmark!' }), 400, 'invalid_bookmark');
    assertError(await post('{"selector":{}}', { 'Content-Type': 'text/plain' }), 415, 'bad_content_type');
    assertError(await post('{"selector":', { 'Content-Type': 'application/json' }), 400, 'bad_request');
    assertError(await req('GET', `/${enc(db)}/_find`), 405, 'method_not_allowed');
    assertError(await req('POST', `/${enc(db)}_nope/_find`, { body: { selector: {} } }), 404, 'not_found');
  });
});

// _index ----------------------------------------------------------------------

const SPECIAL = { ddoc: null, name: '_all_docs', type: 'special', def: { fields: [{ _id: 'asc' }] } };

test('_index: create, exists, list, design doc shape, delete', T, async () => {
  await withDb(async (db) => {
    const p = `/${enc(db)}/_index`;
    const empty = await req('GET', p);
    assert.equal(empty.status, 200, empty.text);
    assertJsonHeaders(empty, 'GET _index');
    assert.deepEqual(empty.json, { total_rows: 1, indexes: [SPECIAL] });

    const c1 = await req('POST', p, { body: { index: { fields: ['foo'] }, name: 'foo-index', type: 'json' } });
    assert.equal(c1.status, 200, c1.text);
    assert.equal(c1.json.result, 'created');
    assert.equal(c1.json.name, 'foo-index');
    assert.match(c1.json.id, /^_design\/[0-9a-f]{40}$/);
    const again = await req('POST', p, { body: { index: { fields: ['foo'] }, name: 'foo-index', type: 'json' } });
    assert.deepEqual(again.json, { result: 'exists', id: c1.json.id, name: 'foo-index' });

    // two indexes in one named design doc; "_design/" is optional
    const c2 = await req('POST', p, { body: { index: { fields: [{ a: 'desc' }, { 'b.c': 'desc' }] }, ddoc: 'grp', name: 'ab' } });
    assert.deepEqual(c2.json, { result: 'created', id: '_design/grp', name: 'ab' });
    const c3 = await req('POST', p, { body: { index: { fields: ['z'] }, ddoc: '_design/grp' } });
    assert.equal(c3.json.result, 'created');
    assert.equal(c3.json.id, '_design/grp');
    assert.match(c3.json.name, /^[0-9a-f]{40}$/);

    const list = await req('GET', p);
    assert.equal(list.json.total_rows, 4);
    assert.deepEqual(list.json.indexes[0], SPECIAL);
    const byName = Object.fromEntries(list.json.indexes.map((i) => [i.name, i]));
    assert.deepEqual(byName['foo-index'], { ddoc: c1.json.id, name: 'foo-index', type: 'json', partitioned: false, def: { fields: [{ foo: 'asc' }] } });
    assert.deepEqual(byName.ab, { ddoc: '_design/grp', name: 'ab', type: 'json', partitioned: false, def: { fields: [{ a: 'desc' }, { 'b.c': 'desc' }] } });
    const order = list.json.indexes.slice(1).map((i) => [i.ddoc, i.name]);
    assert.deepEqual(order, [...order].sort((x, y) => (x[0] + '\0' + x[1] < y[0] + '\0' + y[1] ? -1 : 1)), 'sorted by ddoc, then name');

    // the index is a view of a "query" design doc, as CouchDB stores it
    const dd = await getDoc(db, c1.json.id);
    assert.equal(dd.status, 200);
    assert.equal(dd.json.language, 'query');
    const view = dd.json.views['foo-index'];
    assert.deepEqual(view.map.fields, { foo: 'asc' });
    assert.equal(view.reduce, '_count');
    assert.deepEqual(view.options.def, { fields: ['foo'] });

    // delete one of two: the design doc stays; the last: it goes
    const gone = await req('DELETE', `${p}/_design/grp/json/ab`);
    assert.equal(gone.status, 200, gone.text);
    assert.deepEqual(gone.json, { ok: true });
    assertError(await req('DELETE', `${p}/_design/grp/json/ab`), 404, 'not_found');
    assert.equal((await getDoc(db, '_design/grp')).status, 200);
    const del2 = await req('DELETE', `${p}/grp/json/${c3.json.name}`);
    assert.equal(del2.status, 200, del2.text);
    assert.equal((await getDoc(db, '_design/grp')).status, 404);
    const del3 = await req('DELETE', `${p}/${enc(c1.json.id)}/json/foo-index`);
    assert.equal(del3.status, 200, del3.text);
    assert.deepEqual((await req('GET', p)).json, { total_rows: 1, indexes: [SPECIAL] });
    assertError(await req('DELETE', `${p}/nothere/json/x`), 404, 'not_found');
    // a design doc deleted with its last index can be created again
    const again2 = await req('POST', p, { body: { index: { fields: ['z'] }, ddoc: 'grp', name: 'z' } });
    assert.deepEqual(again2.json, { result: 'created', id: '_design/grp', name: 'z' });
    const dd2 = await getDoc(db, '_design/grp');
    assert.equal(dd2.status, 200);
    assert.deepEqual(Object.keys(dd2.json.views), ['z']);
  });
});

test('_index: request errors', T, async () => {
  await withDb(async (db) => {
    const p = `/${enc(db)}/_index`;
    const post = (body) => req('POST', p, { body });
    assertError(await post({}), 400, 'missing_required_key', 'Missing required key: index');
    assertError(await post({ index: { fields: ['a'] }, bogus: 1 }), 400, 'invalid_key');
    assertError(await post({ index: { fields: ['a'] }, name: 5 }), 400, 'invalid_string');
    assertError(await post({ index: { fields: ['a'] }, type: 'bogus' }), 400, 'invalid_index');
    assertError(await post({ index: {} }), 400, 'missing_required_key', 'Missing required key: fields');
    assertError(await post({ index: { fields: 'a' } }), 400, 'invalid_sort_json');
    assertError(await post({ index: { fields: [{ a: 'asc' }, { b: 'desc' }] } }), 400, 'unsupported_mixed_sort');
    assertError(await req('POST', p, { body: '{"index":{"fields":["a"]}}', headers: { 'Content-Type': 'text/plain' } }), 415, 'bad_content_type');
    // a design doc of another language is not taken over
    await putDoc(db, '_design/js', { views: {} });
    assertError(await post({ index: { fields: ['a'] }, ddoc: 'js' }), 400, 'invalid_ddoc_lang');
    assertError(await req('PUT', p, { body: {} }), 405, 'method_not_allowed');
  });
});

// _explain --------------------------------------------------------------------

test('_explain: the _all_docs index serves a query without a json index', T, async () => {
  await withDb(async (db) => {
    const r = await req('POST', `/${enc(db)}/_explain`, { body: { selector: { year: { $gt: 2010 } }, fields: ['_id', 'year'], limit: 2, skip: 1 } });
    assert.equal(r.status, 200, r.text);
    assertJsonHeaders(r, '_explain');
    const e = r.json;
    assert.equal(e.dbname, db);
    assert.deepEqual(e.index, SPECIAL);
    assert.deepEqual(e.selector, { year: { $gt: 2010 } });
    assert.equal(e.limit, 2);
    assert.equal(e.skip, 1);
    assert.deepEqual(e.fields, ['_id', 'year']);
    assert.equal(e.opts.limit, 2);
    assert.equal(e.opts.skip, 1);
    assert.equal(e.mrargs.include_docs, true);
    assert.equal(e.mrargs.direction, 'fwd');
    assertError(await req('POST', `/${enc(db)}/_explain`, { body: {} }), 400, 'missing_required_key');
    assertError(await req('GET', `/${enc(db)}/_explain`), 405, 'method_not_allowed');
  });
});

// pouchdb-find ------------------------------------------------------------------

test('pouchdb-find against the server: createIndex, getIndexes, find, deleteIndex', T, async () => {
  await withDb(async (db) => {
    const pdb = remote(db);
    await pdb.bulkDocs([
      { _id: 'm1', title: 'Alien', year: 1979, director: 'scott' },
      { _id: 'm2', title: 'Blade Runner', year: 1982, director: 'scott' },
      { _id: 'm3', title: 'Heat', year: 1995, director: 'mann' },
      { _id: 'm4', title: 'Thief', year: 1981, director: 'mann' },
    ]);
    const created = await pdb.createIndex({ index: { fields: ['year'] }, name: 'year-idx', ddoc: 'movies' });
    assert.equal(created.result, 'created');
    assert.equal((await pdb.createIndex({ index: { fields: ['year'] }, name: 'year-idx', ddoc: 'movies' })).result, 'exists');
    const { indexes } = await pdb.getIndexes();
    assert.deepEqual(indexes.map((i) => i.name), ['_all_docs', 'year-idx']);
    assert.equal(indexes[1].ddoc, '_design/movies');

    const res = await pdb.find({ selector: { year: { $gt: 1980 } }, fields: ['_id', 'title'], sort: ['year'] });
    assert.deepEqual(res.docs, [
      { _id: 'm4', title: 'Thief' },
      { _id: 'm2', title: 'Blade Runner' },
      { _id: 'm3', title: 'Heat' },
    ]);
    const byDir = await pdb.find({ selector: { director: 'mann' }, fields: ['_id'] });
    assert.deepEqual(byDir.docs, [{ _id: 'm3' }, { _id: 'm4' }]);
    await assert.rejects(pdb.find({ selector: { year: { $bogus: 1 } } }), (err) => err.status === 400);

    const del = await pdb.deleteIndex(indexes[1]);
    assert.deepEqual(del, { ok: true });
    assert.deepEqual((await pdb.getIndexes()).indexes.map((i) => i.name), ['_all_docs']);
  });
});
