// View details PouchDB's own suite (mapreduce, test.changes.js, test.replication.js) relies on,
// as CouchDB 3.4.3 does them:
// - map functions see a doc's _conflicts and _deleted_conflicts (couch_index_updater opens docs
//   with [conflicts, deleted_conflicts]);
// - one doc's rows of one key come back ordered by value in Erlang term order (numbers < false <
//   null < true < objects < arrays < strings), not in emit order: couch_mrview_updater sorts a
//   doc's [key, value] pairs with lists:sort before storing them, and a descending query gives
//   them in that same ascending order (couch_mrview_util:expand_dups);
// - a builtin reduce is named by prefix ("_sum\n garbage" is _sum: couch_query_servers matches
//   <<"_sum", _/binary>>);
// - _changes?filter=_view runs the map over every changed doc, design docs included
//   (couch_changes:filter calls filter_view on each), though the view's own rows hold none;
// - the design doc's options.include_design and options.local_seq (booleans) map design docs
//   too and give map functions _local_seq (couch_mrview_index:get(update_options)).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { req } from './lib.mjs';
import { T, enc, withDb, putDoc, bulk } from './lib-docs.mjs';

const view = (db, ddoc, v, qs = '') => req('GET', `/${enc(db)}/_design/${ddoc}/_view/${v}${qs}`);
const h = (c) => c.repeat(32);

test('map functions see _conflicts and _deleted_conflicts; include_docs with conflicts=true', T, () => withDb(async (db) => {
  let r = await bulk(db, {
    new_edits: false,
    docs: [
      { _id: 'c', _rev: `1-${h('a')}`, v: 'a' },
      { _id: 'c', _rev: `1-${h('b')}`, v: 'b' },
      { _id: 'c', _rev: `2-${h('e')}`, _deleted: true, _revisions: { start: 2, ids: [h('e'), h('d')] } },
      { _id: 'plain', _rev: `1-${h('f')}`, v: 'f' },
    ],
  });
  assert.equal(r.status, 201, r.text);
  await putDoc(db, '_design/x', {
    views: {
      conf: { map: 'function(doc) { emit(doc._id, [doc._conflicts || null, doc._deleted_conflicts || null]); }' },
      only: { map: 'function(doc) { if (doc._conflicts) emit(doc._conflicts, null); }' },
    },
  });
  r = await view(db, 'x', 'conf');
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.rows, [
    { id: 'c', key: 'c', value: [[`1-${h('a')}`], [`2-${h('e')}`]] },
    { id: 'plain', key: 'plain', value: [null, null] },
  ]);
  r = await view(db, 'x', 'only', '?include_docs=true&conflicts=true');
  assert.equal(r.json.rows.length, 1);
  assert.equal(r.json.rows[0].doc._rev, `1-${h('b')}`);
  assert.deepEqual(r.json.rows[0].doc._conflicts, [`1-${h('a')}`]);
  r = await view(db, 'x', 'only', '?include_docs=true');
  assert.equal(r.json.rows[0].doc._conflicts, undefined);
}));

test("one doc's rows of one key come in Erlang term order of their values", T, () => withDb(async (db) => {
  await putDoc(db, 'd1', { n: 1 });
  await putDoc(db, 'd2', { n: 2 });
  await putDoc(db, '_design/x', {
    views: {
      dups: {
        map: `function(doc) {
          var vs = ['b', 'a', null, 2, 1, true, false, {}, [], {a: 1}, [1]];
          for (var i = 0; i < vs.length; i++) emit('k', vs[i]);
          emit('j', doc.n);
        }`,
      },
      // PouchDB's test.mapreduce.js "Testing multiple emissions (issue #14)"
      pouch: {
        map: `function(doc) {
          emit('foo'); emit('bar'); emit('foo');
          emit('bar', 'multiple values!'); emit('bar', 'crayon!');
        }`,
      },
    },
  });
  const order = [1, 2, false, null, true, {}, { a: 1 }, [], [1], 'a', 'b'];
  let r = await view(db, 'x', 'dups', '?key="k"');
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.rows.map((x) => [x.id, x.value]), [...order.map((v) => ['d1', v]), ...order.map((v) => ['d2', v])]);
  r = await view(db, 'x', 'dups', '?key="k"&skip=3&limit=4');
  assert.deepEqual(r.json.rows.map((x) => x.value), [null, true, {}, { a: 1 }]);
  // descending reverses keys and doc ids, not a doc's rows of one key (expand_dups)
  r = await view(db, 'x', 'dups', '?key="k"&descending=true');
  assert.deepEqual(r.json.rows.map((x) => [x.id, x.value]), [...order.map((v) => ['d2', v]), ...order.map((v) => ['d1', v])]);
  r = await view(db, 'x', 'dups', '?descending=true&limit=3');
  assert.deepEqual(r.json.rows.map((x) => [x.key, x.id, x.value]), [['k', 'd2', 1], ['k', 'd2', 2], ['k', 'd2', false]]);
  r = await view(db, 'x', 'dups', '?descending=true&skip=21&limit=3');
  assert.deepEqual(r.json.rows.map((x) => [x.key, x.id, x.value]), [['k', 'd1', 'b'], ['j', 'd2', 2], ['j', 'd1', 1]]);
  r = await view(db, 'x', 'pouch', '?keys=["foo","bar"]');
  assert.deepEqual(r.json.rows.map((x) => [x.key, x.id, x.value]), [
    ['foo', 'd1', null], ['foo', 'd1', null], ['foo', 'd2', null], ['foo', 'd2', null],
    ['bar', 'd1', null], ['bar', 'd1', 'crayon!'], ['bar', 'd1', 'multiple values!'],
    ['bar', 'd2', null], ['bar', 'd2', 'crayon!'], ['bar', 'd2', 'multiple values!'],
  ]);
}));

test('a builtin reduce is named by its prefix', T, () => withDb(async (db) => {
  assert.equal((await bulk(db, { docs: [{ val: 'bar' }, { val: 'bar' }, { val: 'baz' }] })).status, 201);
  await putDoc(db, '_design/x', {
    views: {
      sum: { map: 'function(doc) { emit(doc.val, 1); }', reduce: '_sum\n \r\nandothergarbage' },
      count: { map: 'function(doc) { emit(doc.val, 1); }', reduce: '_count, please' },
      stats: { map: 'function(doc) { emit(doc.val, 2); }', reduce: '_stats!' },
    },
  });
  let r = await view(db, 'x', 'sum', '?group_level=999');
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.rows, [{ key: 'bar', value: 2 }, { key: 'baz', value: 1 }]);
  r = await view(db, 'x', 'count');
  assert.deepEqual(r.json.rows, [{ key: null, value: 3 }]);
  r = await view(db, 'x', 'stats', '?group=true&key="bar"');
  assert.deepEqual(r.json.rows, [{ key: 'bar', value: { sum: 4, count: 2, min: 2, max: 2, sumsqr: 8 } }]);
}));

test('_changes filter=_view passes a design doc its map emits for', T, () => withDb(async (db) => {
  const r = await bulk(db, {
    docs: [
      { _id: '0', integer: 0 },
      { _id: '1', integer: 1 },
      { _id: '2', integer: 2 },
      { _id: '_design/foo', integer: 3, views: { odd: { map: 'function (doc) { if (doc.integer % 2 === 1) { emit(doc._id, null) }; }' } } },
    ],
  });
  assert.equal(r.status, 201, r.text);
  const ch = await req('GET', `/${enc(db)}/_changes?filter=_view&view=foo/odd`);
  assert.equal(ch.status, 200, ch.text);
  assert.deepEqual(ch.json.results.map((x) => x.id).sort(), ['1', '_design/foo']);
  // the view itself indexes no design doc
  const v = await view(db, 'foo', 'odd');
  assert.deepEqual(v.json.rows.map((x) => x.id), ['1']);
}));

test('design doc options include_design and local_seq', T, () => withDb(async (db) => {
  await putDoc(db, 'a', { n: 1 });
  const map = 'function(doc) { emit(doc._id, typeof doc._local_seq); }';
  await putDoc(db, '_design/with', { options: { include_design: true, local_seq: true }, views: { v: { map } } });
  await putDoc(db, '_design/without', { views: { v: { map } } });
  await putDoc(db, '_design/off', { options: { include_design: false, local_seq: false }, views: { v: { map } } });
  let r = await view(db, 'with', 'v');
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.rows.map((x) => [x.id, x.value]), [
    ['_design/off', 'number'], ['_design/with', 'number'], ['_design/without', 'number'], ['a', 'number']]);
  for (const dd of ['without', 'off']) {
    r = await view(db, dd, 'v');
    assert.deepEqual(r.json.rows.map((x) => [x.id, x.value]), [['a', 'undefined']], dd);
  }
}));
