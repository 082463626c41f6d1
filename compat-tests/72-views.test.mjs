// Views: query parameters against answers computed here from the data, reduce and rereduce with
// group levels (builtins and a JS reduce over enough rows to need a rereduce), include_docs with
// linked docs, collation across types, incremental updates after writes and deletes, a view whose
// code changes, and map functions that loop forever or throw: the request errors (or the doc is
// skipped) and the server keeps serving.
import test from 'node:test';
import assert from 'node:assert/strict';
import { req, freshDb, dropDb } from './lib.mjs';

const TYPES = ['apple', 'banana', 'cherry'];
const N = 60;

const view = (db, ddoc, v, qs = '') => req('GET', `/${db}/_design/${ddoc}/_view/${v}${qs}`);
// a query string: values as JSON, except the parameters that take plain text
const RAW = ['startkey_docid', 'endkey_docid', 'update', 'stale'];
const q = (o) => '?' + Object.entries(o).map(([k, v]) => `${k}=${encodeURIComponent(RAW.includes(k) ? String(v) : JSON.stringify(v))}`).join('&');

async function setup() {
  const db = await freshDb('views');
  const docs = [];
  for (let i = 0; i < N; i++) {
    docs.push({ _id: `d${String(i).padStart(3, '0')}`, type: TYPES[i % 3], n: i, other: `d${String((i * 7) % N).padStart(3, '0')}` });
  }
  const r = await req('POST', `/${db}/_bulk_docs`, { body: { docs } });
  assert.equal(r.status, 201);
  const ddoc = {
    views: {
      by_n: { map: 'function(doc) { if (doc.n !== undefined) emit(doc.n, null); }' },
      by_type_n: { map: 'function(doc) { if (doc.type) emit([doc.type, doc.n % 2, doc.n], doc.n); }', reduce: '_sum' },
      by_type_count: { map: 'function(doc) { if (doc.type) emit(doc.type, 1); }', reduce: '_count' },
      by_type_stats: { map: 'function(doc) { if (doc.type) emit(doc.type, doc.n); }', reduce: '_stats' },
      js_sum: { map: 'function(doc) { if (doc.type) emit([doc.type, doc.n], doc.n); }', reduce: 'function(keys, values, rereduce) { return sum(values); }' },
      linked: { map: 'function(doc) { if (doc.other) emit(doc.n, {_id: doc.other}); }' },
      dup: { map: 'function(doc) { if (doc.n === 3) { emit("k", 1); emit("k", 2); emit("j", 0); } }' },
    },
  };
  assert.equal((await req('PUT', `/${db}/_design/t`, { body: ddoc })).status, 201);
  return { db, docs };
}

// rows of by_n for a range, computed from the data
function byN(docs, { start = -Infinity, end = Infinity, incl = true, desc = false, skip = 0, limit = Infinity } = {}) {
  let rows = docs.map((d) => ({ id: d._id, key: d.n, value: null }));
  rows = rows.filter((r) => r.key >= start && (incl ? r.key <= end : r.key < end));
  rows.sort((a, b) => a.key - b.key || (a.id < b.id ? -1 : 1));
  if (desc) rows.reverse();
  return rows.slice(skip, skip + limit);
}

test('views', async (t) => {
  const { db, docs } = await setup();
  try {
    await t.test('map query parameters', async () => {
      let r = await view(db, 't', 'by_n');
      assert.equal(r.status, 200);
      assert.equal(r.json.total_rows, N);
      assert.equal(r.json.offset, 0);
      assert.deepEqual(r.json.rows, byN(docs));
      const cases = [
        [{ key: 7 }, { start: 7, end: 7 }],
        [{ startkey: 10, endkey: 20 }, { start: 10, end: 20 }],
        [{ startkey: 10, endkey: 20, inclusive_end: false }, { start: 10, end: 20, incl: false }],
        [{ start_key: 10, end_key: 12 }, { start: 10, end: 12 }],
        [{ descending: true, startkey: 20, endkey: 10 }, { start: 10, end: 20, desc: true }],
        [{ descending: true, limit: 5 }, { desc: true, limit: 5 }],
        [{ skip: 3, limit: 4 }, { skip: 3, limit: 4 }],
        [{ skip: 1000 }, { skip: 1000 }],
        [{ limit: 0 }, { limit: 0 }],
      ];
      for (const [params, want] of cases) {
        r = await view(db, 't', 'by_n', q(params));
        assert.equal(r.status, 200, JSON.stringify(params));
        assert.deepEqual(r.json.rows, byN(docs, want), JSON.stringify(params));
      }
      // offset counts the rows before the first one read, plus skip
      r = await view(db, 't', 'by_n', q({ startkey: 10, skip: 2, limit: 1 }));
      assert.equal(r.json.offset, 12);
      assert.deepEqual(r.json.rows.map((x) => x.key), [12]);
      // keys: in the order given, duplicates repeated, missing keys absent
      r = await view(db, 't', 'by_n', q({ keys: [5, 3, 999, 5] }));
      assert.deepEqual(r.json.rows.map((x) => x.key), [5, 3, 5]);
      r = await req('POST', `/${db}/_design/t/_view/by_n`, { body: { keys: [8, 2], limit: 1 } });
      assert.equal(r.status, 200);
      assert.deepEqual(r.json.rows.map((x) => x.key), [8]);
      // startkey_docid / endkey_docid within one key of a reduce view's map rows
      r = await view(db, 't', 'by_type_count', q({ reduce: false, startkey: 'banana', endkey: 'banana', startkey_docid: 'd010', endkey_docid: 'd031' }));
      assert.deepEqual(r.json.rows.map((x) => x.id), ['d010', 'd013', 'd016', 'd019', 'd022', 'd025', 'd028', 'd031']);
      r = await view(db, 't', 'by_type_count', q({ reduce: false, startkey: 'banana', endkey: 'banana', endkey_docid: 'd007', inclusive_end: false }));
      assert.deepEqual(r.json.rows.map((x) => x.id), ['d001', 'd004']);
      // a doc emitting one key twice has two rows (in value order: 75-views-details)
      r = await view(db, 't', 'dup');
      assert.deepEqual(r.json.rows, [{ id: 'd003', key: 'j', value: 0 }, { id: 'd003', key: 'k', value: 1 }, { id: 'd003', key: 'k', value: 2 }]);
      // update_seq
      r = await view(db, 't', 'by_n', q({ update_seq: true, limit: 1 }));
      assert.ok(r.json.update_seq !== undefined);
    });

    await t.test('reduce, group and group_level', async () => {
      const sumBy = (f) => {
        const m = new Map();
        for (const d of docs) { const k = JSON.stringify(f(d)); m.set(k, (m.get(k) || 0) + d.n); }
        return [...m.entries()].map(([k, v]) => ({ key: JSON.parse(k), value: v }));
      };
      let r = await view(db, 't', 'by_type_n');
      assert.deepEqual(r.json.rows, [{ key: null, value: docs.reduce((s, d) => s + d.n, 0) }]);
      r = await view(db, 't', 'by_type_n', '?group_level=1');
      assert.deepEqual(r.json.rows, sumBy((d) => [d.type]));
      r = await view(db, 't', 'by_type_n', '?group_level=2');
      const want2 = sumBy((d) => [d.type, d.n % 2]).sort((a, b) => (a.key[0] < b.key[0] ? -1 : a.key[0] > b.key[0] ? 1 : a.key[1] - b.key[1]));
      assert.deepEqual(r.json.rows, want2);
      r = await view(db, 't', 'by_type_n', '?group_level=1&descending=true');
      assert.deepEqual(r.json.rows, sumBy((d) => [d.type]).reverse());
      r = await view(db, 't', 'by_type_n', q({ group_level: 1, startkey: ['banana'], endkey: ['banana', {}] }));
      assert.deepEqual(r.json.rows, sumBy((d) => [d.type]).filter((x) => x.key[0] === 'banana'));
      r = await view(db, 't', 'by_type_count', '?group=true');
      assert.deepEqual(r.json.rows, TYPES.map((ty) => ({ key: ty, value: N / 3 })));
      r = await view(db, 't', 'by_type_count', '?group=true&skip=1&limit=1');
      assert.deepEqual(r.json.rows, [{ key: 'banana', value: N / 3 }]);
      r = await view(db, 't', 'by_type_stats', '?group=true&key=%22apple%22');
      const ns = docs.filter((d) => d.type === 'apple').map((d) => d.n);
      assert.deepEqual(r.json.rows, [{ key: 'apple', value: { sum: ns.reduce((a, b) => a + b, 0), count: ns.length, min: Math.min(...ns), max: Math.max(...ns), sumsqr: ns.reduce((a, b) => a + b * b, 0) } }]);
      r = await req('POST', `/${db}/_design/t/_view/by_type_count?group=true`, { body: { keys: ['cherry', 'apple', 'nope'] } });
      assert.deepEqual(r.json.rows, [{ key: 'cherry', value: N / 3 }, { key: 'apple', value: N / 3 }]);
      r = await req('POST', `/${db}/_design/t/_view/by_type_count/queries`, { body: { queries: [{ group: true, limit: 1 }, { reduce: false, limit: 2 }] } });
      assert.equal(r.status, 200);
      assert.deepEqual(r.json.results[0].rows, [{ key: 'apple', value: N / 3 }]);
      assert.equal(r.json.results[1].rows.length, 2);
    });

    await t.test('JS reduce and rereduce over many rows', async () => {
      // enough rows that servers reduce in several chunks and rereduce them
      const more = [];
      for (let i = N; i < N + 1500; i++) more.push({ _id: `e${i}`, type: TYPES[i % 3], n: i });
      assert.equal((await req('POST', `/${db}/_bulk_docs`, { body: { docs: more } })).status, 201);
      const all = docs.concat(more);
      let r = await view(db, 't', 'js_sum');
      assert.equal(r.status, 200);
      assert.deepEqual(r.json.rows, [{ key: null, value: all.reduce((s, d) => s + d.n, 0) }]);
      r = await view(db, 't', 'js_sum', '?group_level=1');
      assert.deepEqual(r.json.rows, TYPES.map((ty) => ({ key: [ty], value: all.filter((d) => d.type === ty).reduce((s, d) => s + d.n, 0) })));
      r = await view(db, 't', 'js_sum', q({ startkey: ['banana', 100], endkey: ['banana', 200] }));
      assert.deepEqual(r.json.rows, [{ key: null, value: all.filter((d) => d.type === 'banana' && d.n >= 100 && d.n <= 200).reduce((s, d) => s + d.n, 0) }]);
      // offsets stay exact in a large view (servers count them without scanning every row)
      for (const k of [0, 59, 760, 1400, N + 1499]) {
        r = await view(db, 't', 'by_n', q({ startkey: k, limit: 1 }));
        assert.equal(r.json.offset, k, `offset of startkey=${k}`);
        r = await view(db, 't', 'by_n', q({ startkey: k, limit: 1, descending: true }));
        assert.equal(r.json.offset, N + 1500 - 1 - k, `descending offset of startkey=${k}`);
      }
      const bulk = await req('POST', `/${db}/_bulk_docs`, { body: { docs: (await req('POST', `/${db}/_all_docs`, { body: { keys: more.map((d) => d._id) } })).json.rows.map((x) => ({ _id: x.id, _rev: x.value.rev, _deleted: true })) } });
      assert.equal(bulk.status, 201);
      r = await view(db, 't', 'by_n', q({ startkey: 45, limit: 1 }));
      assert.equal(r.json.offset, 45);
      assert.equal(r.json.total_rows, N);
      r = await view(db, 't', 'by_n', q({ startkey: 45, limit: 1, descending: true }));
      assert.equal(r.json.offset, N - 1 - 45);
    });

    await t.test('include_docs, linked docs, conflicts', async () => {
      let r = await view(db, 't', 'by_n', q({ key: 4, include_docs: true }));
      assert.equal(r.json.rows[0].doc._id, 'd004');
      assert.equal(r.json.rows[0].doc.n, 4);
      assert.match(r.json.rows[0].doc._rev, /^1-/);
      r = await view(db, 't', 'linked', q({ startkey: 1, limit: 3, include_docs: true }));
      for (const row of r.json.rows) {
        assert.equal(row.doc._id, row.value._id);
        assert.equal(row.doc._id, `d${String((row.key * 7) % N).padStart(3, '0')}`);
      }
      r = await view(db, 't', 'by_type_count', '?include_docs=true');
      assert.equal(r.status, 400);
      assert.equal(r.json.error, 'query_parse_error');
      // a conflict on d002: the winner is shown with _conflicts
      await req('POST', `/${db}/_bulk_docs`, { body: { docs: [{ _id: 'd002', _rev: '1-ffffffffffffffffffffffffffffffff', type: 'cherry', n: 2, branch: 'x' }], new_edits: false } });
      r = await view(db, 't', 'by_n', q({ key: 2, include_docs: true, conflicts: true }));
      assert.equal(r.json.rows.length, 1);
      assert.equal(r.json.rows[0].doc.branch, 'x');
      assert.equal(r.json.rows[0].doc._conflicts.length, 1);
    });

    await t.test('collation across types', async () => {
      const keys = [null, false, true, -2, 0, 1.5, 10, '', 'a', 'A', 'aa', 'b', 'B', [], ['a'], ['a', 1], ['b'], {}, { a: 1 }, { b: 0 }];
      const cdb = await freshDb('viewcoll');
      try {
        const shuffled = keys.map((k, i) => ({ _id: `k${String(i).padStart(2, '0')}`, k })).sort(() => 0.5 - Math.random());
        await req('POST', `/${cdb}/_bulk_docs`, { body: { docs: shuffled } });
        await req('PUT', `/${cdb}/_design/c`, { body: { views: { k: { map: 'function(doc) { emit(doc.k, null); }', reduce: '_count' } } } });
        let r = await view(cdb, 'c', 'k', '?reduce=false');
        assert.deepEqual(r.json.rows.map((x) => x.key), keys);
        r = await view(cdb, 'c', 'k', '?reduce=false&descending=true');
        assert.deepEqual(r.json.rows.map((x) => x.key), [...keys].reverse());
        r = await view(cdb, 'c', 'k', q({ reduce: false, startkey: 'a', endkey: 'b', inclusive_end: false }));
        assert.deepEqual(r.json.rows.map((x) => x.key), ['a', 'A', 'aa']);
        r = await view(cdb, 'c', 'k', '?reduce=false&startkey=%22%22&endkey=%5B%5D&inclusive_end=false');
        assert.deepEqual(r.json.rows.map((x) => x.key), ['', 'a', 'A', 'aa', 'b', 'B']);
      } finally {
        await dropDb(cdb);
      }
    });

    await t.test('incremental updates after writes and deletes; update=false', async () => {
      let r = await view(db, 't', 'by_type_count', '?group=true');
      const before = Object.fromEntries(r.json.rows.map((x) => [x.key, x.value]));
      const d0 = (await req('GET', `/${db}/d000`)).json; // apple
      const d1 = (await req('GET', `/${db}/d001`)).json; // banana
      await req('PUT', `/${db}/d000`, { body: { ...d0, type: 'banana' } });
      await req('DELETE', `/${db}/d001?rev=${d1._rev}`);
      await req('PUT', `/${db}/new1`, { body: { type: 'durian', n: 1000 } });
      // stale reads see the index as it was
      r = await view(db, 't', 'by_type_count', '?group=true&update=false');
      assert.deepEqual(Object.fromEntries(r.json.rows.map((x) => [x.key, x.value])), before);
      r = await view(db, 't', 'by_type_count', '?group=true&stale=ok');
      assert.deepEqual(Object.fromEntries(r.json.rows.map((x) => [x.key, x.value])), before);
      r = await view(db, 't', 'by_type_count', '?group=true');
      const after = Object.fromEntries(r.json.rows.map((x) => [x.key, x.value]));
      assert.deepEqual(after, { ...before, apple: before.apple - 1, banana: before.banana, durian: 1 });
      r = await view(db, 't', 'by_type_count', q({ reduce: false, key: 'banana' }));
      assert.ok(r.json.rows.some((x) => x.id === 'd000'));
      assert.ok(!r.json.rows.some((x) => x.id === 'd001'));
      r = await view(db, 't', 'by_n', '?key=1');
      assert.deepEqual(r.json.rows, []);
      // update=lazy answers at once; the index catches up afterwards
      await req('PUT', `/${db}/new2`, { body: { type: 'durian', n: 1001 } });
      r = await view(db, 't', 'by_type_count', q({ group: true, key: 'durian', update: 'lazy' }));
      assert.equal(r.status, 200);
      let seen = 0;
      for (let i = 0; i < 50 && seen !== 2; i++) {
        r = await view(db, 't', 'by_type_count', q({ group: true, key: 'durian', update: 'false' }));
        seen = r.json.rows[0]?.value;
        if (seen !== 2) await new Promise((res) => setTimeout(res, 100));
      }
      assert.equal(seen, 2);
    });

    await t.test('a view whose code changes is rebuilt', async () => {
      const dd = (await req('GET', `/${db}/_design/t`)).json;
      const sig1 = (await req('GET', `/${db}/_design/t/_info`)).json.view_index.signature;
      dd.views.by_n.map = 'function(doc) { if (doc.n !== undefined) emit(-doc.n, doc.type); }';
      assert.equal((await req('PUT', `/${db}/_design/t`, { body: dd })).status, 201);
      const r = await view(db, 't', 'by_n', '?limit=2');
      assert.equal(r.json.rows[0].key, -1001);
      assert.equal(r.json.rows[0].value, 'durian');
      const info = (await req('GET', `/${db}/_design/t/_info`)).json;
      assert.notEqual(info.view_index.signature, sig1);
      assert.equal((await req('POST', `/${db}/_view_cleanup`, { headers: { 'Content-Type': 'application/json' } })).status, 202);
      assert.equal((await view(db, 't', 'by_n', '?limit=1')).status, 200);
    });

    await t.test('errors: missing view, missing ddoc, bad params', async () => {
      assert.equal((await view(db, 't', 'nope')).status, 404);
      assert.equal((await view(db, 'nope', 'by_n')).status, 404);
      let r = await view(db, 't', 'by_n', '?limit=-1');
      assert.equal(r.status, 400);
      assert.equal(r.json.error, 'query_parse_error');
      r = await view(db, 't', 'by_n', '?reduce=true');
      assert.equal(r.status, 400);
      r = await view(db, 't', 'by_n', '?key=notjson');
      assert.equal(r.status, 400);
      r = await view(db, 't', 'by_n', '?startkey=5&endkey=1');
      assert.equal(r.status, 400);
    });

    await t.test('map functions that throw, loop forever or crash their process', async () => {
      await req('PUT', `/${db}/_design/bad`, {
        body: {
          views: {
            throws: { map: 'function(doc) { if (doc.n % 2) throw new Error("odd"); emit(doc.n, null); }' },
          },
        },
      });
      let r = await view(db, 'bad', 'throws', '?limit=3');
      assert.equal(r.status, 200); // docs whose map throws are skipped
      assert.ok(r.json.rows.every((x) => x.key % 2 === 0));
      await req('PUT', `/${db}/_design/loop`, { body: { views: { v: { map: 'function(doc) { while (true) {} }' } } } });
      const started = Date.now();
      r = await view(db, 'loop', 'v');
      assert.ok(r.status >= 500, `a map function that never returns: ${r.status}`);
      assert.ok(Date.now() - started < 60000);
      await req('PUT', `/${db}/_design/crash`, { body: { views: { v: { map: 'function(doc) { function f(x) { return f(x + 1) + 1; } emit(f(0), null); }' } } } });
      r = await view(db, 'crash', 'v');
      assert.ok(r.status === 200 || r.status >= 500, `a map function that overflows its stack: ${r.status}`);
      // the server keeps serving, views included
      assert.equal((await req('GET', '/')).status, 200);
      r = await view(db, 't', 'by_type_count', '?group=true');
      assert.equal(r.status, 200);
      assert.ok(r.json.rows.length >= 3);
    });
  } finally {
    await dropDb(db);
  }
});
