// PouchDB 9 (Node, memory adapter) replicating with the server: one-shot push/pull, resume
// from checkpoints, deletions, conflicts, long histories and revs_limit, attachments,
// filtered replication, live sync and live changes.
import test from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { PouchDB, remote, memory } from './lib.mjs';
import {
  req, rawReq, withDb, dbPath, docPath, sleep, waitFor, sinceParam, md5b64, pseudoRandomBytes,
} from './lib-repl.mjs';

const require = createRequire(import.meta.url);
const generateReplicationId = require('pouchdb-generate-replication-id');

const T = { timeout: 60000 };
const pad = (i) => String(i).padStart(5, '0');

async function withMem(n, fn) {
  const dbs = Array.from({ length: n }, () => memory());
  try {
    return await fn(...dbs);
  } finally {
    for (const d of dbs) await d.destroy().catch(() => {});
  }
}

async function serverAllDocs(db) {
  const r = await req('GET', dbPath(db, '_all_docs') + '?include_docs=true');
  assert.equal(r.status, 200);
  return r.json;
}
const rowsOf = (res) => res.rows.map((r) => ({ id: r.id, rev: r.value.rev }));

test('push 2,000 docs: every doc and rev arrives', T, () => withDb((db) => withMem(1, async (local) => {
  const docs = Array.from({ length: 2000 }, (_, i) => ({ _id: 'doc' + pad(i), i, text: 'x'.repeat(i % 50), nested: { even: i % 2 === 0 } }));
  await local.bulkDocs(docs);
  // a few docs with longer histories
  for (let i = 0; i < 20; i++) {
    const d = await local.get('doc' + pad(i * 7));
    await local.put({ ...d, updated: true });
  }
  const res = await local.replicate.to(remote(db));
  assert.equal(res.ok, true);
  assert.equal(res.status, 'complete');
  assert.equal(res.docs_written, 2000);
  assert.equal(res.doc_write_failures, 0);
  const mine = await local.allDocs({ include_docs: true });
  const theirs = await serverAllDocs(db);
  assert.equal(theirs.total_rows, 2000);
  assert.deepEqual(rowsOf(theirs), rowsOf(mine));
  assert.deepEqual(theirs.rows.map((r) => r.doc), mine.rows.map((r) => r.doc));
  const info = (await req('GET', dbPath(db))).json;
  assert.equal(info.doc_count, 2000);
  const d7 = await req('GET', docPath(db, 'doc00007') + '?revs=true');
  assert.equal(d7.json._revisions.start, 2);
  assert.equal(d7.json._revisions.ids.length, 2);
})));

test('pull 2,000 docs: every doc and rev arrives', T, () => withDb((db) => withMem(1, async (local) => {
  for (let b = 0; b < 2; b++) {
    const docs = Array.from({ length: 1000 }, (_, k) => ({ _id: 'p' + pad(b * 1000 + k), n: b * 1000 + k, s: 'é✓' + k }));
    const r = await req('POST', dbPath(db, '_bulk_docs'), { body: { docs } });
    assert.equal(r.status, 201);
  }
  const upd = await req('GET', docPath(db, 'p00010'));
  await req('PUT', docPath(db, 'p00010'), { body: { ...upd.json, n: 'changed' } });
  const res = await local.replicate.from(remote(db));
  assert.equal(res.ok, true);
  assert.equal(res.docs_written, 2000);
  assert.equal(res.doc_write_failures, 0);
  const mine = await local.allDocs({ include_docs: true });
  const theirs = await serverAllDocs(db);
  assert.equal(mine.total_rows, 2000);
  assert.deepEqual(rowsOf(mine), rowsOf(theirs));
  assert.deepEqual(mine.rows.map((r) => r.doc), theirs.rows.map((r) => r.doc));
  const p10 = await local.get('p00010', { revs: true });
  assert.equal(p10.n, 'changed');
  assert.equal(p10._revisions.ids.length, 2);
})));

test('resumed replication transfers only new docs and leaves checkpoints on the server', T, () => withDb((db) => withMem(2, async (local, puller) => {
  const rdb = remote(db);
  await local.bulkDocs(Array.from({ length: 100 }, (_, i) => ({ _id: 'r' + pad(i), i })));
  const first = await local.replicate.to(rdb);
  assert.equal(first.docs_written, 100);
  const repId = await generateReplicationId(local, rdb, {});
  const chk = await req('GET', docPath(db, repId));
  assert.equal(chk.status, 200, `push checkpoint ${repId} on the server: ${chk.text}`);
  assert.ok(chk.json.last_seq !== undefined && Array.isArray(chk.json.history));
  assert.match(chk.json._rev, /^0-\d+$/);
  await local.bulkDocs(Array.from({ length: 10 }, (_, i) => ({ _id: 'n' + pad(i), i })));
  for (let i = 0; i < 5; i++) {
    const d = await local.get('r' + pad(i));
    await local.put({ ...d, again: true });
  }
  const second = await local.replicate.to(rdb);
  assert.equal(second.docs_read, 15, 'second push reads only the new changes');
  assert.equal(second.docs_written, 15);
  assert.equal((await req('GET', dbPath(db))).json.doc_count, 110);

  // pull side: the checkpoint holds the server's seq, accepted back as since
  const p1 = await puller.replicate.from(rdb);
  assert.equal(p1.docs_written, 110);
  const pullId = await generateReplicationId(rdb, puller, {});
  const pchk = await req('GET', docPath(db, pullId));
  assert.equal(pchk.status, 200, 'pull checkpoint on the server');
  const after = await req('GET', dbPath(db, '_changes') + '?since=' + sinceParam(pchk.json.last_seq));
  assert.equal(after.status, 200);
  assert.deepEqual(after.json.results, [], 'checkpointed seq is the end of the feed');
  await req('PUT', docPath(db, 'late'), { body: { late: true } });
  const p2 = await puller.replicate.from(rdb);
  assert.equal(p2.docs_read, 1);
  assert.equal(p2.docs_written, 1);
  assert.equal((await puller.get('late')).late, true);
})));

test('deletions propagate both ways', T, () => withDb((db) => withMem(2, async (a, b) => {
  const rdb = remote(db);
  await a.bulkDocs(Array.from({ length: 20 }, (_, i) => ({ _id: 'x' + pad(i), i })));
  await a.replicate.to(rdb);
  await b.replicate.from(rdb);
  for (let i = 0; i < 5; i++) {
    const d = await a.get('x' + pad(i));
    await a.remove(d);
  }
  const res = await a.replicate.to(rdb);
  assert.equal(res.docs_written, 5);
  const info = (await req('GET', dbPath(db))).json;
  assert.equal(info.doc_count, 15);
  assert.equal(info.doc_del_count, 5);
  const gone = await req('GET', docPath(db, 'x00000'));
  assert.equal(gone.status, 404);
  assert.deepEqual(gone.json, { error: 'not_found', reason: 'deleted' });
  await b.replicate.from(rdb);
  assert.equal((await b.allDocs()).rows.length, 15);
  await assert.rejects(b.get('x00003'), (e) => e.status === 404);
  // and back: delete on b, push, a pulls
  const d = await b.get('x00010');
  await b.remove(d);
  await b.replicate.to(rdb);
  await a.replicate.from(rdb);
  await assert.rejects(a.get('x00010'), (e) => e.status === 404);
})));

test('offline edits on two clients: same winner and _conflicts everywhere; deleting the loser resolves', T, () => withDb((db) => withMem(2, async (a, b) => {
  const rdb = remote(db);
  await a.put({ _id: 'c', v: 'base' });
  await PouchDB.sync(a, rdb);
  await PouchDB.sync(b, rdb);
  const base = await b.get('c');
  await a.put({ ...(await a.get('c')), v: 'from A' });
  await b.put({ ...base, v: 'from B' });
  await PouchDB.sync(a, rdb);
  await PouchDB.sync(b, rdb);
  await PouchDB.sync(a, rdb);
  const sa = await a.get('c', { conflicts: true });
  const sb = await b.get('c', { conflicts: true });
  const ss = (await req('GET', docPath(db, 'c') + '?conflicts=true')).json;
  assert.equal(sa._rev, sb._rev);
  assert.equal(ss._rev, sa._rev);
  assert.equal(ss.v, sa.v);
  assert.equal(sa._conflicts.length, 1);
  assert.deepEqual(sb._conflicts, sa._conflicts);
  assert.deepEqual(ss._conflicts, sa._conflicts);
  assert.ok(sa._rev.startsWith('2-') && sa._conflicts[0].startsWith('2-'));
  const [wHash, lHash] = [sa._rev, sa._conflicts[0]].map((r) => r.slice(2));
  assert.ok(wHash > lHash, 'equal generations: the larger rev id wins');
  // resolve on A by deleting the losing leaf
  await a.remove('c', sa._conflicts[0]);
  await PouchDB.sync(a, rdb);
  await PouchDB.sync(b, rdb);
  const ra = await a.get('c', { conflicts: true });
  const rb = await b.get('c', { conflicts: true });
  const rs = (await req('GET', docPath(db, 'c') + '?conflicts=true&deleted_conflicts=true')).json;
  for (const d of [ra, rb, rs]) {
    assert.equal(d._rev, sa._rev);
    assert.equal(d._conflicts, undefined, 'no _conflicts after resolution');
  }
  assert.equal(rs._deleted_conflicts.length, 1);
  assert.ok(rs._deleted_conflicts[0].startsWith('3-'));
  const ch = (await req('GET', dbPath(db, '_changes') + '?style=all_docs')).json;
  const row = ch.results.find((r) => r.id === 'c');
  assert.deepEqual(row.changes.map((c) => c.rev), [sa._rev, rs._deleted_conflicts[0]]);
})));

test('a 50-edit history replicates whole; _revs_limit 5 stems it', T, () => withDb((db) => withDb((db5) => withMem(3, async (local, back, back5) => {
  let d = await local.put({ _id: 'long', n: 0 });
  for (let n = 1; n < 50; n++) d = await local.put({ _id: 'long', _rev: d.rev, n });
  const localDoc = await local.get('long', { revs: true });
  assert.equal(localDoc._revisions.ids.length, 50);
  await local.replicate.to(remote(db));
  const s = (await req('GET', docPath(db, 'long') + '?revs=true')).json;
  assert.deepEqual(s._revisions, localDoc._revisions);
  assert.equal(s.n, 49);
  await back.replicate.from(remote(db));
  assert.deepEqual((await back.get('long', { revs: true }))._revisions, localDoc._revisions);

  const lim = await req('PUT', dbPath(db5, '_revs_limit'), { body: '5', headers: { 'Content-Type': 'application/json' } });
  assert.equal(lim.status, 200);
  assert.deepEqual(lim.json, { ok: true });
  assert.equal((await req('GET', dbPath(db5, '_revs_limit'))).json, 5);
  await local.replicate.to(remote(db5));
  const s5 = (await req('GET', docPath(db5, 'long') + '?revs=true&revs_info=true')).json;
  assert.equal(s5._revisions.start, 50);
  assert.deepEqual(s5._revisions.ids, localDoc._revisions.ids.slice(0, 5));
  assert.equal(s5._revs_info.length, 5, 'stemmed to revs_limit when written');
  let rv = s5._rev;
  for (let k = 0; k < 3; k++) {
    const p = await req('PUT', docPath(db5, 'long'), { body: { _rev: rv, n: 50 + k } });
    assert.equal(p.status, 201);
    rv = p.json.rev;
  }
  const s53 = (await req('GET', docPath(db5, 'long') + '?revs=true')).json;
  assert.equal(s53._revisions.start, 53);
  assert.equal(s53._revisions.ids.length, 5);
  await back5.replicate.from(remote(db5));
  const b5 = await back5.get('long', { revs: true });
  assert.equal(b5._rev, rv);
  assert.deepEqual(b5._revisions, s53._revisions);
}))));

test('attachments round-trip byte-exact: 5 MB binary, text, and on conflicting revisions', { timeout: 120000 }, () => withDb((db) => withMem(4, async (local, back, a2, c) => {
  const rdb = remote(db);
  const big = pseudoRandomBytes(5 * 1024 * 1024, 99);
  const text = Buffer.from('attachment text ✓\n'.repeat(100));
  await local.put({
    _id: 'att', kind: 'big',
    _attachments: {
      'big.bin': { content_type: 'application/octet-stream', data: big },
      'note.txt': { content_type: 'text/plain', data: text },
    },
  });
  const res = await local.replicate.to(rdb);
  assert.equal(res.docs_written, 1);
  const stub = (await req('GET', docPath(db, 'att'))).json._attachments;
  assert.equal(stub['big.bin'].length, big.length);
  assert.equal(stub['big.bin'].digest, 'md5-' + md5b64(big));
  assert.equal(stub['note.txt'].length, text.length);
  const g = await rawReq('GET', docPath(db, 'att') + '/big.bin');
  assert.equal(g.status, 200);
  assert.ok(g.buf.equals(big), 'server returns the 5 MB attachment byte-exact');
  const gt = await rawReq('GET', docPath(db, 'att') + '/note.txt');
  assert.ok(gt.buf.equals(text));
  await back.replicate.from(rdb);
  const bb = await back.getAttachment('att', 'big.bin');
  assert.ok(Buffer.from(bb).equals(big), 'pulled 5 MB attachment byte-exact');
  assert.ok(Buffer.from(await back.getAttachment('att', 'note.txt')).equals(text));

  // conflicting revisions carrying different attachments
  const base = await back.put({ _id: 'ca', v: 0, _attachments: { 'f.bin': { content_type: 'application/octet-stream', data: Buffer.from([1, 2, 3]) } } });
  await back.replicate.to(rdb);
  await a2.replicate.from(rdb);
  const x = pseudoRandomBytes(100000, 5);
  const y = pseudoRandomBytes(120000, 6);
  const rx = await back.put({ _id: 'ca', _rev: base.rev, v: 'x', _attachments: { 'f.bin': { content_type: 'application/octet-stream', data: x } } });
  const ry = await a2.put({ _id: 'ca', _rev: base.rev, v: 'y', _attachments: { 'f.bin': { content_type: 'application/octet-stream', data: y } } });
  await back.replicate.to(rdb);
  await a2.replicate.to(rdb);
  for (const [r, bytes] of [[rx.rev, x], [ry.rev, y]]) {
    const got = await rawReq('GET', docPath(db, 'ca') + '/f.bin?rev=' + r);
    assert.equal(got.status, 200);
    assert.ok(got.buf.equals(bytes), `attachment of ${r} byte-exact on the server`);
  }
  const conf = (await req('GET', docPath(db, 'ca') + '?conflicts=true')).json;
  assert.equal(conf._conflicts.length, 1);
  await c.replicate.from(rdb);
  for (const [r, bytes] of [[rx.rev, x], [ry.rev, y]]) {
    const d = await c.get('ca', { rev: r, attachments: true, binary: true });
    assert.ok(Buffer.from(d._attachments['f.bin'].data).equals(bytes), `pulled attachment of ${r} byte-exact`);
  }
})));

test('filtered pull replication: doc_ids and selector', T, () => withDb((db) => withMem(2, async (byIds, bySel) => {
  const docs = Array.from({ length: 30 }, (_, i) => ({ _id: 'f' + pad(i), type: ['x', 'y', 'z'][i % 3], i }));
  assert.equal((await req('POST', dbPath(db, '_bulk_docs'), { body: { docs } })).status, 201);
  const ids = ['f00004', 'f00017', 'f00029'];
  const r1 = await byIds.replicate.from(remote(db), { doc_ids: ids });
  assert.equal(r1.docs_written, 3);
  assert.deepEqual((await byIds.allDocs()).rows.map((r) => r.id), ids);
  const r2 = await bySel.replicate.from(remote(db), { selector: { type: 'y', i: { $gt: 10 } } });
  const want = docs.filter((d) => d.type === 'y' && d.i > 10).map((d) => d._id);
  assert.equal(r2.docs_written, want.length);
  assert.deepEqual((await bySel.allDocs()).rows.map((r) => r.id), want);
  // later changes still go through the filter
  await req('PUT', docPath(db, 'f00004'), { body: { ...(await req('GET', docPath(db, 'f00004'))).json, touched: true } });
  await req('PUT', docPath(db, 'g'), { body: { type: 'y', i: 99 } });
  const r3 = await byIds.replicate.from(remote(db), { doc_ids: ids });
  assert.equal(r3.docs_written, 1);
  assert.equal((await byIds.get('f00004')).touched, true);
  const r4 = await bySel.replicate.from(remote(db), { selector: { type: 'y', i: { $gt: 10 } } });
  assert.equal(r4.docs_written, 1);
  assert.equal((await bySel.get('g')).i, 99);
})));

function once(emitter, event, ms, what) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no '${event}' (${what}) within ${ms} ms`)), ms);
    emitter.once(event, (v) => { clearTimeout(t); resolve(v); });
  });
}

test('live sync sees another client\'s write within a second, both directions', T, () => withDb((db) => withMem(1, async (local) => {
  const rdb = remote(db);
  await req('PUT', docPath(db, 'seed'), { body: { v: 1 } });
  const sync = PouchDB.sync(local, rdb, { live: true, retry: true });
  const errors = [];
  sync.on('error', (e) => errors.push(e));
  const pulled = new Map();
  sync.on('change', (info) => {
    if (info.direction === 'pull') for (const d of info.change.docs) pulled.set(d._id, performance.now());
  });
  try {
    await waitFor(async () => (await local.get('seed').catch(() => null)) !== null, { timeout: 10000, what: 'initial pull of seed' });
    await sleep(500); // let the live feeds settle into their longpolls
    const w = await req('PUT', docPath(db, 'from-server'), { body: { v: 2 } });
    assert.equal(w.status, 201);
    const tWrite = performance.now();
    await waitFor(() => pulled.has('from-server'), { timeout: 5000, interval: 5, what: 'live pull' });
    const lag = pulled.get('from-server') - tWrite;
    assert.ok(lag <= 1000, `server write reached the client after ${lag.toFixed(0)} ms`);
    assert.equal((await local.get('from-server')).v, 2);

    const t1 = performance.now();
    await local.put({ _id: 'from-client', v: 3 });
    await waitFor(async () => (await req('GET', docPath(db, 'from-client'))).status === 200, { timeout: 5000, interval: 10, what: 'live push' });
    const lag2 = performance.now() - t1;
    assert.ok(lag2 <= 1000, `client write reached the server after ${lag2.toFixed(0)} ms`);
    assert.deepEqual(errors, []);
  } finally {
    const done = once(sync, 'complete', 10000, 'sync cancel').catch(() => {});
    sync.cancel();
    await done;
  }
})));

test('live changes feed on the remote (since: now) delivers a change', T, () => withDb(async (db) => {
  const rdb = remote(db);
  const seen = [];
  const feed = rdb.changes({ live: true, since: 'now', include_docs: true });
  feed.on('change', (c) => seen.push({ c, t: performance.now() }));
  const errs = [];
  feed.on('error', (e) => errs.push(e));
  try {
    await sleep(700); // the first longpoll is waiting on the server by now
    await req('PUT', docPath(db, 'live1'), { body: { hello: 'world' } });
    const t0 = performance.now();
    await waitFor(() => seen.length > 0, { timeout: 5000, interval: 5, what: 'live change' });
    assert.equal(seen[0].c.id, 'live1');
    assert.equal(seen[0].c.doc.hello, 'world');
    assert.ok(seen[0].t - t0 <= 1000, `change delivered after ${(seen[0].t - t0).toFixed(0)} ms`);
    await req('PUT', docPath(db, 'live2'), { body: {} });
    await waitFor(() => seen.length > 1, { timeout: 5000, interval: 5, what: 'second live change' });
    assert.deepEqual(seen.map((s) => s.c.id), ['live1', 'live2']);
    assert.deepEqual(errs, []);
  } finally {
    const done = once(feed, 'complete', 10000, 'changes cancel').catch(() => {});
    feed.cancel();
    await done;
  }
}));
