// Large view answers (hundreds of KB, sent in chunks by a server that streams them) have the
// exact rows CouchDB gives: computed here from the documents, in CouchDB's order — key, then
// doc id, then one doc's rows of one key in value order, in both directions
// (couch_mrview_util:expand_dups) — for map queries with include_docs, skip and limit, grouped
// builtin and JS reductions, keys=, and several queries in one POST .../queries.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { req } from './lib.mjs';
import { enc, withDb, putDoc, bulk } from './lib-docs.mjs';

const T = { timeout: 120000 };
const N = 3000;
const pad = (n) => String(n).padStart(5, '0');
const label = (g) => `group-${pad(g)}-` + 'x'.repeat(60);
const docs = Array.from({ length: N }, (_, n) => ({ _id: `d${pad(n)}`, n, g: Math.floor(n / 3), text: 'y'.repeat(100) }));
const ddoc = {
  views: {
    // two rows per doc of one key: value order, not emit order
    dups: { map: 'function(doc){ if (doc.g !== undefined) { emit(doc.g, doc.n); emit(doc.g, -doc.n); } }' },
    sums: { map: 'function(doc){ if (doc.g !== undefined) emit([doc.g % 1000, doc.n], doc.n); }', reduce: '_sum' },
    jsred: {
      map: `function(doc){ if (doc.g !== undefined) emit(${JSON.stringify('group-')} + ('00000' + doc.g).slice(-5) + '-' + Array(61).join('x'), doc.n); }`,
      reduce: 'function(keys, values, rereduce){ return sum(values); }',
    },
  },
};

function dupRows(desc) {
  const rows = [];
  for (const d of docs) {
    rows.push({ id: d._id, key: d.g, value: d.n ? -d.n : 0 }, { id: d._id, key: d.g, value: d.n });
  }
  // ascending: by key, then id, then value; descending reverses key and id but keeps one doc's
  // rows of one key in ascending value order
  if (!desc) return rows;
  const out = [];
  for (let i = rows.length - 2; i >= 0; i -= 2) out.push(rows[i], rows[i + 1]);
  return out;
}

async function view(db, name, qs = '') {
  const r = await req('GET', `/${enc(db)}/_design/v/_view/${name}${qs}`);
  assert.equal(r.status, 200, r.text.slice(0, 300));
  return r.json;
}

test('large map answers: every row, in CouchDB order, both directions, skip, limit, include_docs', T, () => withDb(async (db) => {
  assert.equal((await bulk(db, { docs })).status, 201);
  await putDoc(db, '_design/v', ddoc);

  let v = await view(db, 'dups');
  assert.equal(v.total_rows, 2 * N);
  assert.equal(v.offset, 0);
  assert.deepEqual(v.rows, dupRows(false));

  v = await view(db, 'dups', '?descending=true');
  assert.deepEqual(v.rows, dupRows(true));

  v = await view(db, 'dups', '?skip=1001&limit=3333');
  assert.equal(v.offset, 1001);
  assert.deepEqual(v.rows, dupRows(false).slice(1001, 1001 + 3333));

  v = await view(db, 'dups', '?descending=true&skip=7&limit=4001');
  assert.deepEqual(v.rows, dupRows(true).slice(7, 7 + 4001));

  v = await view(db, 'dups', '?include_docs=true&startkey=100&endkey=899');
  const want = dupRows(false).filter((row) => row.key >= 100 && row.key <= 899);
  assert.equal(v.rows.length, want.length);
  for (let i = 0; i < want.length; i++) {
    const row = v.rows[i];
    assert.deepEqual({ id: row.id, key: row.key, value: row.value }, want[i]);
    assert.equal(row.doc._id, row.id);
    assert.equal(row.doc.n, Math.abs(row.value));
  }

  const keys = [5, 999, 3, 5, 12345, 0];
  const r = await req('POST', `/${enc(db)}/_design/v/_view/dups`, { body: { keys } });
  assert.deepEqual(r.json.rows, keys.flatMap((k) => dupRows(false).filter((row) => row.key === k)));
}));

test('large reductions: grouped _sum and JS reduce, group_level', T, () => withDb(async (db) => {
  assert.equal((await bulk(db, { docs })).status, 201);
  await putDoc(db, '_design/v', ddoc);

  let v = await view(db, 'jsred', '?group=true');
  const groups = N / 3;
  assert.equal(v.rows.length, groups);
  for (let g = 0; g < groups; g++) assert.deepEqual(v.rows[g], { key: label(g), value: 9 * g + 3 });

  v = await view(db, 'jsred', '?group=true&descending=true&skip=10&limit=600');
  assert.deepEqual(v.rows[0], { key: label(groups - 11), value: 9 * (groups - 11) + 3 });
  assert.equal(v.rows.length, 600);

  v = await view(db, 'sums', '?group=true');
  assert.equal(v.rows.length, N);
  assert.deepEqual(v.rows[0], { key: [0, 0], value: 0 });
  v = await view(db, 'sums', '?group_level=1');
  assert.equal(v.rows.length, 1000);
  assert.deepEqual(v.rows[999], { key: [999], value: 2997 + 2998 + 2999 });
  v = await view(db, 'sums');
  assert.deepEqual(v.rows, [{ key: null, value: (N * (N - 1)) / 2 }]);
}));

test('POST .../queries: several large answers in one reply', T, () => withDb(async (db) => {
  assert.equal((await bulk(db, { docs })).status, 201);
  await putDoc(db, '_design/v', ddoc);
  const r = await req('POST', `/${enc(db)}/_design/v/_view/dups/queries`, {
    body: { queries: [{}, { descending: true, limit: 2500 }, { key: 7 }, { startkey: 10, endkey: 9 , descending: true }] },
  });
  assert.equal(r.status, 200, r.text.slice(0, 300));
  const [a, b, c, d] = r.json.results;
  assert.deepEqual(a.rows, dupRows(false));
  assert.equal(a.total_rows, 2 * N);
  assert.deepEqual(b.rows, dupRows(true).slice(0, 2500));
  assert.deepEqual(c.rows, dupRows(false).filter((row) => row.key === 7));
  assert.deepEqual(d.rows, dupRows(true).filter((row) => row.key === 10 || row.key === 9));
}));
