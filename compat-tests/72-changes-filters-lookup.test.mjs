// _changes filters that cannot run: how CouchDB answers a design-doc filter or view it
// cannot find, malformed filter names, and _selector errors. CouchDB looks the design doc
// and its member up before anything else (couch_changes:configure_filter, open_ddoc,
// check_member_exists → couch_util:get_nested_json_value), so a name pointing nowhere is a
// 404 whatever the server can run; PouchDB's changes and replication tell "no such filter"
// from "the filter failed" by that status. Expected: CouchDB 3.4.3 (couchdb-golden
// views.jsonl changes_filter_*, bad-input-extra.jsonl changes_selector_*).
// A filter or view that exists runs (200), on every feed type (73-design-filters).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { req, remote, memory } from './lib.mjs';
import { T, enc, withDb, assertError, putDoc } from './lib-docs.mjs';

const changes = (db, query, opts = {}) => req(opts.method || 'GET', `/${enc(db)}/_changes?${query}`, opts);
const ODD = 'function (doc) { return doc.n % 2 === 1; }';
const MAP = 'function (doc) { emit(doc._id, null); }';

async function seed(db) {
  await putDoc(db, 'd1', { n: 1 });
  await putDoc(db, 'd2', { n: 2 });
  await putDoc(db, '_design/f', { filters: { odd: ODD }, views: { all: { map: MAP } } });
  await putDoc(db, '_design/plain', { language: 'javascript' });
}

test('a design-doc filter that names nothing is 404, checked design doc first, then member', T, () => withDb(async (db) => {
  await seed(db);
  assertError(await changes(db, 'filter=nope/odd'), 404, 'not_found', 'missing');
  assertError(await changes(db, 'filter=plain/odd'), 404, 'not_found', 'missing json key: filters');
  assertError(await changes(db, 'filter=f/nope'), 404, 'not_found', 'missing json key: nope');
  // empty parts between slashes do not count: f//nope is f/nope
  assertError(await changes(db, 'filter=f//nope'), 404, 'not_found', 'missing json key: nope');
  // each part is unquoted once more after the query string: %252F → %2F → '/'
  assertError(await changes(db, 'filter=f/no%252Fpe'), 404, 'not_found', 'missing json key: no/pe');
  // the same for a POST and for every feed: the lookup comes before the feed starts
  assertError(await changes(db, 'filter=nope/odd', { method: 'POST', body: {} }), 404, 'not_found', 'missing');
  assertError(await changes(db, 'filter=f/nope&feed=longpoll&since=now'), 404, 'not_found', 'missing json key: nope');
  assertError(await changes(db, 'filter=f/nope&feed=continuous&since=now'), 404, 'not_found', 'missing json key: nope');
}));

test('a deleted design doc is 404 deleted', T, () => withDb(async (db) => {
  const rev = await putDoc(db, '_design/gone', { filters: { odd: ODD } });
  const del = await req('DELETE', `/${enc(db)}/_design/gone?rev=${rev}`);
  assert.equal(del.status, 200, del.text);
  assertError(await changes(db, 'filter=gone/odd'), 404, 'not_found', 'deleted');
}));

test('filter=_view: the view parameter, then the design doc and its views', T, () => withDb(async (db) => {
  await seed(db);
  assertError(await changes(db, 'filter=_view'), 400, 'bad_request', '`view` filter parameter is not provided.');
  assertError(await changes(db, 'filter=_view&view='), 400, 'bad_request', '`view` filter parameter is not provided.');
  // a view name that does not split in two: CouchDB's own 500 case_clause
  assertError(await changes(db, 'filter=_view&view=justaname'), 500, 'case_clause', 'justaname');
  assertError(await changes(db, 'filter=_view&view=nope/all'), 404, 'not_found', 'missing');
  assertError(await changes(db, 'filter=_view&view=plain/all'), 404, 'not_found', 'missing json key: views');
  assertError(await changes(db, 'filter=_view&view=f/nope'), 404, 'not_found', 'missing json key: nope');
}));

test('filter names: unknown built-ins, wrong shapes, and names that mean no filter', T, () => withDb(async (db) => {
  await seed(db);
  assertError(await changes(db, 'filter=_nope'), 400, 'bad_request', 'unknown builtin filter name');
  const shape = '`filter` must be of the form `designname/filtername`';
  assertError(await changes(db, 'filter=odd'), 400, 'bad_request', shape);
  assertError(await changes(db, 'filter=a/b/c'), 400, 'bad_request', shape);
  // an empty name or slashes only: the unfiltered feed
  for (const q of ['filter=', 'filter=/', 'filter=//']) {
    const r = await changes(db, q);
    assert.equal(r.status, 200, `${q}: ${r.text}`);
    assert.equal(r.json.results.length, 4, q);
  }
}));

test('a filter and a view that exist run: 200 with the docs they pass', T, () => withDb(async (db) => {
  await seed(db);
  for (const q of ['filter=f/odd', 'filter=_view&view=f/all']) {
    const r = await changes(db, q);
    assert.equal(r.status, 200, `${q}: ${r.text}`);
    // the view's map emits for every doc, design docs included (75-views-details)
    assert.deepEqual(r.json.results.map((x) => x.id), q.includes('_view') ? ['d1', 'd2', '_design/f', '_design/plain'] : ['d1']);
  }
}));

test('_selector errors carry CouchDB\'s text', T, () => withDb(async (db) => {
  await seed(db);
  const want = 'Selector error: expected a JSON object';
  for (const body of [{ selector: 'foo' }, { selector: [] }, { selector: null }, {}]) {
    assertError(await changes(db, 'filter=_selector', { method: 'POST', body }), 400, 'bad_request', want);
  }
  assertError(await changes(db, 'filter=_selector'), 400, 'bad_request', 'Selector must be specified in POST payload');
  const ok = await changes(db, 'filter=_selector', { method: 'POST', body: { selector: { n: 2 } } });
  assert.equal(ok.status, 200, ok.text);
  assert.deepEqual(ok.json.results.map((x) => x.id), ['d2']);
}));

test('PouchDB sees the 404 as not_found, for changes and for a filtered replication', T, () => withDb(async (db) => {
  await seed(db);
  const src = remote(db);
  for (const opts of [{ filter: 'f/nope' }, { filter: '_view', view: 'f/nope' }, { filter: 'nope/odd' }]) {
    const err = await src.changes(opts).then(() => null, (e) => e);
    assert.ok(err, `changes ${JSON.stringify(opts)} must fail`);
    assert.equal(err.status, 404, JSON.stringify(err));
    assert.equal(err.name, 'not_found');
  }
  const sel = await memory('sel').replicate.from(src, { selector: 'foo' })
    .then(() => null, (e) => e);
  assert.ok(sel, 'a replication with a bad selector must fail');
  assert.equal(sel.name, 'bad_request');
  assert.match(sel.reason, /expected a JSON object/);
}));
