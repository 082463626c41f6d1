// _changes feed as PouchDB and CouchDB's replicator use it: normal, longpoll, continuous,
// eventsource; since/limit/descending/style/include_docs; built-in filters.
// Everything asserted here is CouchDB 3.4 behaviour (see shared/PROTOCOL.md and the golden data).
import test from 'node:test';
import assert from 'node:assert/strict';
import {
  req, streamReq, withDb, dbPath, docPath, putDoc, putRevs, pathDoc, rid, rev,
  sinceParam, sleep, enc,
} from './lib-repl.mjs';

const T = { timeout: 60000 };

async function changes(db, query = '', opts = {}) {
  const r = await req(opts.method || 'GET', dbPath(db, '_changes') + (query ? '?' + query : ''), opts);
  assert.equal(r.status, 200, `_changes?${query}: ${r.status} ${r.text}`);
  assert.match(r.headers.get('content-type') || '', /^application\/json/);
  return r.json;
}
const ids = (res) => res.results.map((row) => row.id);
const isSeq = (s) => (typeof s === 'string' && s.length > 0) || (typeof s === 'number' && Number.isFinite(s));

async function del(db, id, rv) {
  const r = await req('DELETE', docPath(db, id) + '?rev=' + rv);
  assert.equal(r.status, 200, `DELETE ${id}: ${r.status} ${r.text}`);
  return r.json.rev;
}

test('normal feed: shape, seq order, deletions, pending', T, () => withDb(async (db) => {
  const ra = await putDoc(db, 'a', { v: 1 });
  const rb = await putDoc(db, 'b', { v: 1 });
  const rc = await putDoc(db, 'c', { v: 1 });
  const rb2 = await del(db, 'b', rb);
  const res = await changes(db);
  assert.deepEqual(Object.keys(res).sort(), ['last_seq', 'pending', 'results']);
  assert.ok(isSeq(res.last_seq), `last_seq ${JSON.stringify(res.last_seq)}`);
  assert.equal(res.pending, 0);
  assert.deepEqual(ids(res), ['a', 'c', 'b'], 'rows in order of each doc\'s latest change');
  const [a, c, b] = res.results;
  assert.deepEqual(Object.keys(a).sort(), ['changes', 'id', 'seq']);
  assert.deepEqual(a.changes, [{ rev: ra }]);
  assert.deepEqual(c.changes, [{ rev: rc }]);
  assert.deepEqual(Object.keys(b).sort(), ['changes', 'deleted', 'id', 'seq']);
  assert.deepEqual(b.changes, [{ rev: rb2 }]);
  assert.equal(b.deleted, true);
  for (const row of res.results) assert.ok(isSeq(row.seq), `row seq ${JSON.stringify(row.seq)}`);
  assert.equal(new Set(res.results.map((r) => JSON.stringify(r.seq))).size, 3, 'seqs are distinct');
  // last_seq is the end of the feed
  const after = await changes(db, 'since=' + sinceParam(res.last_seq));
  assert.deepEqual(after.results, []);
  assert.equal(after.pending, 0);
  assert.deepEqual(after.last_seq, res.last_seq);
}));

test('since round-trip: every emitted seq is accepted back verbatim (and JSON-quoted)', T, () => withDb(async (db) => {
  for (let i = 0; i < 6; i++) await putDoc(db, 'd' + i, { i });
  const all = await changes(db, 'since=0');
  assert.deepEqual(ids(all), ['d0', 'd1', 'd2', 'd3', 'd4', 'd5']);
  for (let i = 0; i < all.results.length; i++) {
    const seq = all.results[i].seq;
    const want = ids(all).slice(i + 1);
    const r1 = await changes(db, 'since=' + sinceParam(seq));
    assert.deepEqual(ids(r1), want, `since=${JSON.stringify(seq)}`);
    assert.equal(r1.pending, 0);
    // CouchDB's replicator sends since=<JSON-encoded seq> (quotes included for string seqs)
    const r2 = await changes(db, 'since=' + enc(JSON.stringify(seq)));
    assert.deepEqual(ids(r2), want, `since=${JSON.stringify(JSON.stringify(seq))}`);
  }
  // last_seq of a limited read continues where it stopped (PouchDB paging)
  const page1 = await changes(db, 'limit=2');
  assert.deepEqual(ids(page1), ['d0', 'd1']);
  assert.equal(page1.pending, 4);
  const page2 = await changes(db, 'limit=2&since=' + sinceParam(page1.last_seq));
  assert.deepEqual(ids(page2), ['d2', 'd3']);
  assert.equal(page2.pending, 2);
  const page3 = await changes(db, 'limit=2&since=' + sinceParam(page2.last_seq));
  assert.deepEqual(ids(page3), ['d4', 'd5']);
  assert.equal(page3.pending, 0);
  const page4 = await changes(db, 'limit=2&since=' + sinceParam(page3.last_seq));
  assert.deepEqual(page4.results, []);
}));

test('limit=0 reports pending without rows (CouchDB replicator pending count)', T, () => withDb(async (db) => {
  for (let i = 0; i < 5; i++) await putDoc(db, 'p' + i, { i });
  const all = await changes(db);
  const r0 = await changes(db, 'since=0&limit=0');
  assert.deepEqual(r0.results, []);
  assert.equal(r0.pending, 5);
  const r1 = await changes(db, 'limit=0&since=' + sinceParam(all.results[1].seq));
  assert.deepEqual(r1.results, []);
  assert.equal(r1.pending, 3);
}));

test('since=now returns no rows and a last_seq that later reads continue from', T, () => withDb(async (db) => {
  await putDoc(db, 'old1', {});
  await putDoc(db, 'old2', {});
  const now = await changes(db, 'since=now');
  assert.deepEqual(now.results, []);
  assert.equal(now.pending, 0);
  assert.ok(isSeq(now.last_seq));
  await putDoc(db, 'new1', {});
  const next = await changes(db, 'since=' + sinceParam(now.last_seq));
  assert.deepEqual(ids(next), ['new1']);
}));

test('descending lists the latest changes first', T, () => withDb(async (db) => {
  for (const id of ['x1', 'x2', 'x3', 'x4']) await putDoc(db, id, {});
  const d = await changes(db, 'descending=true');
  assert.deepEqual(ids(d), ['x4', 'x3', 'x2', 'x1']);
  const d2 = await changes(db, 'descending=true&limit=2');
  assert.deepEqual(ids(d2), ['x4', 'x3']);
  assert.equal(d2.pending, 2);
}));

test('a doc updated twice appears once, at its latest change', T, () => withDb(async (db) => {
  let rx = await putDoc(db, 'x', { n: 1 });
  await putDoc(db, 'y', { n: 1 });
  rx = await putDoc(db, 'x', { _rev: rx, n: 2 });
  rx = await putDoc(db, 'x', { _rev: rx, n: 3 });
  const res = await changes(db);
  assert.deepEqual(ids(res), ['y', 'x']);
  assert.deepEqual(res.results[1].changes, [{ rev: rx }]);
}));

test('style=all_docs lists every leaf, winner first; deleted only when the winner is deleted', T, () => withDb(async (db) => {
  // conflicted doc: 1-a -> 2-b (live), 1-a -> 2-c -> 3-d (live), 1-a -> 2-e (deleted)
  await putRevs(db, [
    pathDoc('cd', 2, [rid('b'), rid('a')], { side: 'b' }),
    pathDoc('cd', 3, [rid('d'), rid('c'), rid('a')], { side: 'd' }),
    { ...pathDoc('cd', 2, [rid('e'), rid('a')]), _deleted: true },
  ]);
  // all leaves deleted: winner is the deleted leaf with the highest generation
  await putRevs(db, [
    { ...pathDoc('dd', 3, [rid('3'), rid('2'), rid('1')]), _deleted: true },
    { ...pathDoc('dd', 2, [rid('9'), rid('1')]), _deleted: true },
  ]);
  // deleted leaf with a higher generation than the live one: live still wins
  await putRevs(db, [
    pathDoc('ld', 2, [rid('5'), rid('4')], { live: true }),
    { ...pathDoc('ld', 4, [rid('8'), rid('7'), rid('6'), rid('4')]), _deleted: true },
  ]);
  const all = await changes(db, 'style=all_docs');
  const byId = Object.fromEntries(all.results.map((r) => [r.id, r]));
  assert.deepEqual(byId.cd.changes, [{ rev: rev(3, 'd') }, { rev: rev(2, 'b') }, { rev: rev(2, 'e') }]);
  assert.equal('deleted' in byId.cd, false);
  assert.deepEqual(byId.dd.changes, [{ rev: rev(3, '3') }, { rev: rev(2, '9') }]);
  assert.equal(byId.dd.deleted, true);
  assert.deepEqual(byId.ld.changes, [{ rev: rev(2, '5') }, { rev: rev(4, '8') }]);
  assert.equal('deleted' in byId.ld, false);
  const main = await changes(db);
  const m = Object.fromEntries(main.results.map((r) => [r.id, r]));
  assert.deepEqual(m.cd.changes, [{ rev: rev(3, 'd') }]);
  assert.deepEqual(m.dd.changes, [{ rev: rev(3, '3') }]);
  assert.equal(m.dd.deleted, true);
  assert.deepEqual(m.ld.changes, [{ rev: rev(2, '5') }]);
}));

test('include_docs (+ conflicts) embeds the winning revision', T, () => withDb(async (db) => {
  const r1 = await putDoc(db, 'plain', { a: 1, nested: { b: [1, 2] } });
  const rg = await putDoc(db, 'gone', { a: 1 });
  const rg2 = await del(db, 'gone', rg);
  await putRevs(db, [
    pathDoc('cf', 2, [rid('b'), rid('a')], { side: 'b' }),
    pathDoc('cf', 2, [rid('c'), rid('a')], { side: 'c' }),
    pathDoc('cf', 2, [rid('1'), rid('a')], { side: '1' }),
  ]);
  const res = await changes(db, 'include_docs=true');
  const byId = Object.fromEntries(res.results.map((r) => [r.id, r]));
  assert.deepEqual(byId.plain.doc, { _id: 'plain', _rev: r1, a: 1, nested: { b: [1, 2] } });
  assert.deepEqual(byId.gone.doc, { _id: 'gone', _rev: rg2, _deleted: true });
  assert.equal(byId.gone.deleted, true);
  assert.deepEqual(byId.cf.doc, { _id: 'cf', _rev: rev(2, 'c'), side: 'c' });
  const withC = await changes(db, 'include_docs=true&conflicts=true&style=all_docs');
  const cf = withC.results.find((r) => r.id === 'cf');
  assert.deepEqual(cf.changes, [{ rev: rev(2, 'c') }, { rev: rev(2, 'b') }, { rev: rev(2, '1') }]);
  assert.deepEqual(cf.doc, { _id: 'cf', _rev: rev(2, 'c'), side: 'c', _conflicts: [rev(2, 'b'), rev(2, '1')] });
  const plain = withC.results.find((r) => r.id === 'plain');
  assert.equal('_conflicts' in plain.doc, false, 'no empty _conflicts');
}));

test('filter=_doc_ids by GET (doc_ids=JSON) and by POST body', T, () => withDb(async (db) => {
  for (const id of ['k1', 'k2', 'k3', 'k4']) await putDoc(db, id, {});
  const q = 'filter=_doc_ids&doc_ids=' + enc(JSON.stringify(['k3', 'k1', 'nosuch']));
  const g = await changes(db, q);
  assert.deepEqual(ids(g), ['k1', 'k3'], 'seq order, not request order; unknown ids ignored');
  const p = await changes(db, 'filter=_doc_ids', { method: 'POST', body: { doc_ids: ['k4', 'k2'] } });
  assert.deepEqual(ids(p), ['k2', 'k4']);
  const since = g.results[0].seq;
  const p2 = await changes(db, 'filter=_doc_ids&since=' + sinceParam(since), { method: 'POST', body: { doc_ids: ['k1', 'k3'] } });
  assert.deepEqual(ids(p2), ['k3']);
}));

test('filter=_selector (POST body, Mango operators)', T, () => withDb(async (db) => {
  const docs = [
    { _id: 's1', type: 'a', n: 1, sub: { x: 1 } },
    { _id: 's2', type: 'b', n: 2, opt: null },
    { _id: 's3', type: 'a', n: 3, sub: { x: 2 }, opt: 'yes' },
    { _id: 's4', type: 'c', n: 4 },
    { _id: 's5', type: 'b', n: 5, sub: { x: 1, y: { z: true } } },
  ];
  for (const d of docs) await putDoc(db, d._id, d);
  const cases = [
    [{ type: 'a' }, ['s1', 's3']],
    [{ type: { $eq: 'b' } }, ['s2', 's5']],
    [{ n: { $gt: 3 } }, ['s4', 's5']],
    [{ type: { $in: ['a', 'c'] } }, ['s1', 's3', 's4']],
    [{ opt: { $exists: true } }, ['s2', 's3']],
    [{ opt: { $exists: false } }, ['s1', 's4', 's5']],
    [{ $and: [{ type: 'a' }, { n: { $gt: 1 } }] }, ['s3']],
    [{ $or: [{ type: 'c' }, { n: { $gt: 4 } }] }, ['s4', 's5']],
    [{ 'sub.x': 1 }, ['s1', 's5']],
    [{ sub: { x: { $gt: 1 } } }, ['s3']],
    [{ 'sub.y.z': true }, ['s5']],
  ];
  for (const [selector, want] of cases) {
    const r = await changes(db, 'filter=_selector', { method: 'POST', body: { selector } });
    assert.deepEqual(ids(r), want, JSON.stringify(selector));
  }
  const s = await changes(db, 'filter=_selector&include_docs=true', { method: 'POST', body: { selector: { type: 'c' } } });
  assert.equal(s.results[0].doc.n, 4);
  const bad = await req('POST', dbPath(db, '_changes') + '?filter=_selector', { body: {} });
  assert.equal(bad.status, 400, 'a _selector filter without a selector is a bad request');
  assert.equal(bad.json?.error, 'bad_request');
}));

test('filter=_design lists design docs only', T, () => withDb(async (db) => {
  await putDoc(db, 'plain1', {});
  await putDoc(db, '_design/one', { views: {} });
  await putDoc(db, 'plain2', {});
  await putDoc(db, '_design/two', { language: 'javascript' });
  const r = await changes(db, 'filter=_design');
  assert.deepEqual(ids(r), ['_design/one', '_design/two']);
}));

test('seq_interval: rows may carry seq null, emitted seqs stay usable', T, () => withDb(async (db) => {
  for (let i = 0; i < 9; i++) await putDoc(db, 'q' + i, {});
  const r = await changes(db, 'seq_interval=3');
  assert.equal(r.results.length, 9);
  const nulls = r.results.filter((row) => row.seq === null).length;
  assert.ok(nulls >= 5, `most rows have seq null with seq_interval=3 (got ${nulls} nulls)`);
  assert.ok(isSeq(r.last_seq));
  r.results.forEach((row, i) => { if (row.seq !== null) assert.ok(isSeq(row.seq), `row ${i}`); });
  const withSeq = r.results.map((row, i) => [row, i]).filter(([row]) => row.seq !== null);
  assert.ok(withSeq.length >= 1);
  for (const [row, i] of withSeq) {
    const after = await changes(db, 'since=' + sinceParam(row.seq));
    assert.deepEqual(ids(after), ids(r).slice(i + 1));
  }
}));

test('malformed since is a 400 bad_request', T, () => withDb(async (db) => {
  const r = await req('GET', dbPath(db, '_changes') + '?since=garbage');
  assert.equal(r.status, 400);
  assert.deepEqual(r.json, { error: 'bad_request', reason: "Malformed sequence supplied in 'since' parameter." });
}));

test('_local docs never appear in _changes', T, () => withDb(async (db) => {
  await putDoc(db, 'real', {});
  const r = await req('PUT', docPath(db, '_local/chk'), { body: { last_seq: 1 } });
  assert.equal(r.status, 201);
  const res = await changes(db, 'style=all_docs&include_docs=true');
  assert.deepEqual(ids(res), ['real']);
  // a _local write does not wake a waiting longpoll with a _local row
  const s = streamReq('GET', dbPath(db, '_changes') + '?feed=longpoll&since=now&timeout=1500', { headers: { Accept: 'application/json' } });
  await sleep(300);
  await req('PUT', docPath(db, '_local/chk2'), { body: { x: 1 } });
  const d = await Promise.race([s.done, sleep(8000).then(() => ({ late: true }))]);
  s.abort();
  assert.ok(!d.late, 'longpoll with timeout=1500 still open after 8 s');
  const body = JSON.parse(s.text());
  assert.deepEqual(body.results, []);
}));

// ------------------------------------------------------------------ longpoll

test('longpoll returns at once when changes exist', T, () => withDb(async (db) => {
  await putDoc(db, 'e1', {});
  const t0 = performance.now();
  const s = streamReq('GET', dbPath(db, '_changes') + '?feed=longpoll&since=0&heartbeat=10000&timeout=10000', { headers: { Accept: 'application/json' } });
  const d = await s.done;
  const elapsed = performance.now() - t0;
  assert.ok(d.ended, 'response completed');
  assert.ok(elapsed < 2000, `answered in ${elapsed.toFixed(0)} ms`);
  const body = JSON.parse(s.text());
  assert.deepEqual(body.results.map((r) => r.id), ['e1']);
  assert.ok(isSeq(body.last_seq));
}));

test('longpoll blocks until another request writes, then answers within 1 s', T, () => withDb(async (db) => {
  await putDoc(db, 'before', {});
  const { last_seq } = await changes(db);
  // PouchDB live replication: feed=longpoll&heartbeat=10000&since=<checkpoint>
  const s = streamReq('GET', dbPath(db, '_changes') + `?style=all_docs&feed=longpoll&heartbeat=10000&since=${sinceParam(last_seq)}&limit=100`, { headers: { Accept: 'application/json' } });
  await s.response;
  await sleep(700);
  assert.equal(s.ended, false, 'longpoll must wait for a change');
  const w = await req('PUT', docPath(db, 'during'), { body: { x: 1 } });
  assert.equal(w.status, 201);
  const tWrite = performance.now();
  const d = await Promise.race([s.done, sleep(5000).then(() => ({ late: true }))]);
  const lag = performance.now() - tWrite;
  s.abort();
  assert.ok(!d.late, 'longpoll did not answer within 5 s of the write');
  assert.ok(lag <= 1000, `longpoll answered ${lag.toFixed(0)} ms after the write`);
  const body = JSON.parse(s.text());
  assert.deepEqual(body.results.map((r) => r.id), ['during']);
  assert.deepEqual(body.results[0].changes, [{ rev: w.json.rev }]);
  const next = await changes(db, 'since=' + sinceParam(body.last_seq));
  assert.deepEqual(next.results, []);
}));

test('longpoll heartbeat newlines keep the body valid JSON', T, () => withDb(async (db) => {
  const s = streamReq('GET', dbPath(db, '_changes') + '?feed=longpoll&since=now&heartbeat=100', { headers: { Accept: 'application/json' } });
  const got = await s.waitFor((txt) => txt.length > 0, 3000);
  assert.ok(got, 'heartbeat bytes arrive while waiting');
  await sleep(400);
  assert.equal(s.ended, false);
  const early = s.text();
  assert.match(early, /^\s*(\{"results":\[)?\s*$/, 'only whitespace (heartbeats) before the first change');
  assert.ok(early.includes('\n'), 'heartbeats are newlines');
  await putDoc(db, 'hb', {});
  const d = await Promise.race([s.done, sleep(5000).then(() => ({ late: true }))]);
  s.abort();
  assert.ok(!d.late, 'longpoll answered after the write');
  const body = JSON.parse(s.text());
  assert.deepEqual(body.results.map((r) => r.id), ['hb']);
}));

test('longpoll timeout ends with empty results and last_seq', T, () => withDb(async (db) => {
  await putDoc(db, 'a', {});
  const t0 = performance.now();
  const s = streamReq('GET', dbPath(db, '_changes') + '?feed=longpoll&since=now&timeout=400', { headers: { Accept: 'application/json' } });
  const d = await Promise.race([s.done, sleep(8000).then(() => ({ late: true }))]);
  const elapsed = performance.now() - t0;
  s.abort();
  assert.ok(!d.late, 'longpoll with timeout=400 still open after 8 s');
  assert.ok(elapsed >= 350, `ended after ${elapsed.toFixed(0)} ms, before its timeout`);
  const body = JSON.parse(s.text());
  assert.deepEqual(body.results, []);
  assert.ok(isSeq(body.last_seq));
  assert.equal(body.pending, 0);
  const after = await changes(db, 'since=' + sinceParam(body.last_seq));
  assert.deepEqual(after.results, [], 'timeout last_seq is the current end of the feed');
}));

test('POST longpoll with filter=_doc_ids ignores other docs and answers for a listed one', T, () => withDb(async (db) => {
  const s = streamReq('POST', dbPath(db, '_changes') + '?filter=_doc_ids&feed=longpoll&since=now&heartbeat=10000',
    { headers: { Accept: 'application/json', 'Content-Type': 'application/json' }, body: { doc_ids: ['wanted'] } });
  await s.response;
  await sleep(200);
  await putDoc(db, 'other', {});
  await sleep(500);
  assert.equal(s.ended, false, 'a change to an unlisted doc must not end the longpoll');
  await putDoc(db, 'wanted', {});
  const tWrite = performance.now();
  const d = await Promise.race([s.done, sleep(5000).then(() => ({ late: true }))]);
  const lag = performance.now() - tWrite;
  s.abort();
  assert.ok(!d.late);
  assert.ok(lag <= 1000, `answered ${lag.toFixed(0)} ms after the write`);
  assert.deepEqual(JSON.parse(s.text()).results.map((r) => r.id), ['wanted']);
}));

// ------------------------------------------------------------------ continuous

function jsonLines(text) {
  return text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l));
}

test('continuous feed: one JSON row per line, live rows, final {"last_seq"} line at timeout', T, () => withDb(async (db) => {
  await putDoc(db, 'c1', {});
  await putDoc(db, 'c2', {});
  // CouchDB's replicator: feed=continuous&style=all_docs&since=0&timeout=N, no heartbeat
  const t0 = performance.now();
  const s = streamReq('GET', dbPath(db, '_changes') + '?feed=continuous&style=all_docs&since=0&timeout=1000', { headers: { Accept: 'application/json' } });
  const r = await s.response;
  assert.equal(r.status, 200);
  assert.ok(await s.waitFor((t) => t.includes('"c2"'), 3000), 'existing rows are streamed at once');
  await putDoc(db, 'c3', {});
  const tWrite = performance.now();
  assert.ok(await s.waitFor((t) => t.includes('"c3"'), 3000), 'live row arrives');
  const lag = performance.now() - tWrite;
  assert.ok(lag <= 1000, `live row arrived ${lag.toFixed(0)} ms after the write`);
  const d = await Promise.race([s.done, sleep(10000).then(() => ({ late: true }))]);
  s.abort();
  assert.ok(!d.late, 'continuous feed with timeout=1000 must end by itself');
  assert.ok(performance.now() - t0 >= 900);
  const text = s.text();
  assert.ok(text.endsWith('\n'), 'lines end with a newline');
  const lines = jsonLines(text);
  const rows = lines.slice(0, -1);
  assert.deepEqual(rows.map((l) => l.id), ['c1', 'c2', 'c3']);
  for (const row of rows) {
    assert.ok(isSeq(row.seq));
    assert.ok(Array.isArray(row.changes) && row.changes.length === 1 && typeof row.changes[0].rev === 'string');
  }
  const last = lines[lines.length - 1];
  assert.deepEqual(Object.keys(last).sort(), ['last_seq', 'pending']);
  assert.ok(isSeq(last.last_seq));
  assert.equal(last.pending, 0);
  const after = await changes(db, 'since=' + sinceParam(last.last_seq));
  assert.deepEqual(after.results, [], 'the replicator reconnects from last_seq');
}));

// A change committed while a new continuous feed is still scanning its first snapshot
// (here a selector scan over many docs) must reach it at once, not at the next commit,
// heartbeat or the timeout. settee once lost that wake when the feed's worker had no
// other waiting feed; each round below has one write land inside the scan, on a fresh
// connection (any worker).
test('continuous feed: a change committed during its first scan is delivered', { timeout: 180000 }, () => withDb(async (db) => {
  const N = 40000;
  for (let i = 0; i < N; i += 5000) {
    const docs = [];
    for (let j = i; j < i + 5000; j++) docs.push({ _id: 'd' + String(j).padStart(6, '0'), v: j });
    const r = await req('POST', dbPath(db, '_bulk_docs'), { body: { docs } });
    assert.equal(r.status, 201, r.text);
  }
  const sel = (id) => JSON.stringify({ selector: { _id: id } });
  const t0 = performance.now();
  const scan = await req('POST', dbPath(db, '_changes') + '?filter=_selector', {
    headers: { 'Content-Type': 'application/json' }, body: sel('none'),
  });
  assert.equal(scan.status, 200, scan.text);
  const delay = Math.max(5, Math.floor((performance.now() - t0) / 3));
  for (let k = 0; k < 12; k++) {
    const id = 'target' + k;
    const s = streamReq('POST', dbPath(db, '_changes') + '?feed=continuous&filter=_selector&since=0&timeout=8000', {
      headers: { 'Content-Type': 'application/json' }, body: sel(id),
    });
    await sleep(delay);
    const w = await req('PUT', docPath(db, id), { body: {} });
    assert.equal(w.status, 201, w.text);
    const tw = performance.now();
    const seen = await s.waitFor((t) => t.includes(`"${id}"`), 4000);
    s.abort();
    assert.ok(seen, `round ${k}: the change to ${id} did not arrive within ${(performance.now() - tw).toFixed(0)} ms`);
  }
}));

test('continuous feed heartbeat sends newlines while idle', T, () => withDb(async (db) => {
  const s = streamReq('GET', dbPath(db, '_changes') + '?feed=continuous&since=now&heartbeat=100', { headers: { Accept: 'application/json' } });
  try {
    const ok = await s.waitFor((t) => (t.match(/\n/g) || []).length >= 3, 3000);
    assert.ok(ok, `expected ≥3 heartbeat newlines within 3 s, got ${JSON.stringify(s.text())}`);
    assert.match(s.text(), /^\n+$/, 'an idle continuous feed sends nothing but newlines');
    await putDoc(db, 'hb1', {});
    assert.ok(await s.waitFor((t) => t.includes('"hb1"'), 2000));
    const rows = jsonLines(s.text());
    assert.deepEqual(rows.map((r) => r.id), ['hb1']);
  } finally {
    s.abort();
  }
}));

// ------------------------------------------------------------------ eventsource

function parseEvents(text) {
  return text.split('\n\n').filter((b) => b.trim() !== '').map((block) => {
    const ev = {};
    for (const line of block.split('\n')) {
      const i = line.indexOf(':');
      if (i <= 0) continue;
      const k = line.slice(0, i);
      const v = line.slice(i + 1).replace(/^ /, '');
      ev[k] = ev[k] === undefined ? v : ev[k] + '\n' + v;
    }
    return ev;
  });
}

test('eventsource feed: data: <row> / id: <seq> events', T, () => withDb(async (db) => {
  await putDoc(db, 'v1', {});
  await putDoc(db, 'v2', {});
  const s = streamReq('GET', dbPath(db, '_changes') + '?feed=eventsource&since=0&timeout=800', { headers: { Accept: 'text/event-stream' } });
  const r = await s.response;
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'] || '', /^text\/event-stream/);
  assert.ok(await s.waitFor((t) => t.includes('"v2"'), 3000));
  await putDoc(db, 'v3', {});
  assert.ok(await s.waitFor((t) => t.includes('"v3"'), 3000), 'live event arrives');
  const d = await Promise.race([s.done, sleep(10000).then(() => ({ late: true }))]);
  s.abort();
  assert.ok(!d.late, 'eventsource feed with timeout=800 must end by itself');
  const events = parseEvents(s.text()).filter((e) => e.data !== undefined && e.event === undefined);
  assert.deepEqual(events.map((e) => JSON.parse(e.data).id), ['v1', 'v2', 'v3']);
  for (const e of events) {
    const row = JSON.parse(e.data);
    assert.ok(isSeq(row.seq));
    assert.equal(e.id, JSON.stringify(row.seq), 'id: is the JSON-encoded seq');
  }
}));

test('eventsource heartbeat events while idle', T, () => withDb(async (db) => {
  const s = streamReq('GET', dbPath(db, '_changes') + '?feed=eventsource&since=now&heartbeat=100', { headers: { Accept: 'text/event-stream' } });
  try {
    assert.ok(await s.waitFor((t) => t.includes('event: heartbeat'), 3000), `got ${JSON.stringify(s.text())}`);
  } finally {
    s.abort();
  }
}));
