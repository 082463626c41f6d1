// settee ↔ pouchdb-server (a second implementation of the replication protocol, from npm):
// settee's replicator pulls from and pushes to pouchdb-server, one-shot and continuous, with the
// same content as the settee → settee tests (conflicts with the same winner and _conflicts on
// both ends, a 30-edit history, 5 MB and conflicting-leaf attachments), and a second run that
// transfers only the new docs. Then pouchdb-server drives one push and one pull against settee
// (settee as an endpoint of somebody else's replicator: these pass without settee's replicator).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  T, startSettee, startPouch, call, replicate, fillSource, assertSameDocs, assertAttachment, put, bulk, createDb,
  waitFor, waitDoc, schedJobs, cleanup,
} from './lib.mjs';

let S, P, FROM_P, FROM_S;
const stats = (r) => (r.json && Array.isArray(r.json.history) && r.json.history[0]) || r.json || {};

before(async () => {
  [S, P] = await Promise.all([startSettee('s'), startPouch('p')]);
  FROM_P = await fillSource(P, 'psrc');
  FROM_S = await fillSource(S, 'ssrc');
});
after(cleanup);

test('settee pulls from pouchdb-server (one-shot): every doc, leaf, conflict and attachment', T, async () => {
  const r = await replicate(S, { source: P.dbUrl('psrc'), target: 'from_pouch', create_target: true });
  assert.equal(r.status, 200, `_replicate: ${r.status} ${r.text.slice(0, 500)}`);
  assert.equal(stats(r).docs_written, 31);
  await assertSameDocs(P, 'psrc', S, 'from_pouch');
  await assertAttachment(S, 'from_pouch', 'att', 'big.bin', FROM_P.big);
  await assertAttachment(S, 'from_pouch', 'attconf', 'leaf.bin', FROM_P.leafB, `2-${'1'.repeat(32)}`);
  await assertAttachment(S, 'from_pouch', 'attconf', 'only-b.txt', Buffer.from('b only'), `2-${'1'.repeat(32)}`);
  const hist = await call(S, 'GET', '/from_pouch/hist30?revs=true');
  assert.equal(hist.json._revisions.ids.length, 30);
});

test('settee pushes to pouchdb-server (one-shot): every doc, leaf, conflict and attachment', T, async () => {
  const r = await replicate(S, { source: 'ssrc', target: P.dbUrl('from_settee'), create_target: true });
  assert.equal(r.status, 200, `_replicate: ${r.status} ${r.text.slice(0, 500)}`);
  assert.equal(stats(r).docs_written, 31);
  await assertSameDocs(S, 'ssrc', P, 'from_settee');
  await assertAttachment(P, 'from_settee', 'att', 'big.bin', FROM_S.big);
  await assertAttachment(P, 'from_settee', 'attconf', 'leaf.bin', FROM_S.leafA, `2-${'e'.repeat(32)}`);
  await assertAttachment(P, 'from_settee', 'attconf', 'only-b.txt', Buffer.from('b only'), `2-${'1'.repeat(32)}`);
});

test('a second pull from pouchdb-server transfers only the new docs (checkpoint on both ends)', T, async () => {
  await bulk(P, 'psrc', Array.from({ length: 7 }, (_, i) => ({ _id: `later${i}`, i })));
  const r = await replicate(S, { source: P.dbUrl('psrc'), target: 'from_pouch' });
  assert.equal(r.status, 200, r.text.slice(0, 500));
  // CouchDB 3 counts cumulatively over the checkpoint history: the difference is this session's
  const [h2, h1] = r.json.history;
  assert.ok(h1, `two sessions in the history: ${r.text.slice(0, 500)}`);
  assert.equal(h2.docs_written - h1.docs_written, 7, 'only the 7 new docs');
  assert.equal(h2.missing_checked - h1.missing_checked, 7);
  const localS = await call(S, 'GET', '/from_pouch/_local_docs');
  const ckId = localS.json.rows.map((x) => x.id).find((id) => /^_local\/[0-9a-f]{32}$/.test(id));
  assert.ok(ckId, `a checkpoint on the target: ${localS.text}`);
  const onP = await call(P, 'GET', `/psrc/${ckId}`);
  assert.equal(onP.status, 200, `pouchdb-server keeps the checkpoint ${ckId}: ${onP.text}`);
  assert.equal(onP.json.session_id, r.json.session_id);
  await assertSameDocs(P, 'psrc', S, 'from_pouch');
});

test('continuous pull from and push to pouchdb-server: writes on either end arrive', T, async () => {
  await createDb(P, 'cp'); await createDb(S, 'cs');
  const pull = await replicate(S, { source: P.dbUrl('cp'), target: 'cs', continuous: true });
  assert.equal(pull.status, 202, pull.text);
  const push = await replicate(S, { source: 'cs', target: P.dbUrl('cp'), continuous: true });
  assert.equal(push.status, 202, push.text);
  assert.notEqual(pull.json._local_id, push.json._local_id);
  const ids = (await schedJobs(S)).map((j) => j.id);
  assert.ok(ids.includes(pull.json._local_id) && ids.includes(push.json._local_id), `both jobs listed: ${ids}`);

  await put(P, 'cp', 'from-p', { at: 'pouch' });
  await put(S, 'cs', 'from-s', { at: 'settee' });
  await waitDoc(S, 'cs', 'from-p');
  await waitDoc(P, 'cp', 'from-s');
  // a conflict made on both ends converges to the same winner on both
  const base = await put(S, 'cs', 'both', { v: 0 });
  await waitDoc(P, 'cp', 'both');
  await put(S, 'cs', 'both', { _rev: base, v: 'settee' });
  await put(P, 'cp', 'both', { _rev: base, v: 'pouch' });
  await waitFor('the conflict on both ends', async () => {
    const a = await call(S, 'GET', '/cs/both?conflicts=true');
    const b = await call(P, 'GET', '/cp/both?conflicts=true');
    return a.json?._conflicts?.length === 1 && b.json?._conflicts?.length === 1 && a.json._rev === b.json._rev;
  });
  await assertSameDocs(S, 'cs', P, 'cp');
  // deletions
  const cur = await call(P, 'GET', '/cp/from-p');
  assert.equal((await call(P, 'DELETE', `/cp/from-p?rev=${cur.json._rev}`)).status, 200);
  await waitFor('the deletion on settee', async () => (await call(S, 'GET', '/cs/from-p')).status === 404);

  for (const r of [pull, push]) {
    const c = await replicate(S, { replication_id: r.json._local_id, cancel: true });
    assert.equal(c.status, 200, c.text);
  }
});

test('pouchdb-server drives: pull from settee', T, async () => {
  const r = await replicate(P, { source: S.dbUrl('ssrc'), target: 'pouch_pulled' });
  assert.equal(r.status, 200, `pouchdb-server's _replicate: ${r.status} ${r.text.slice(0, 500)}`);
  assert.equal(r.json.docs_written, 31);
  await assertSameDocs(S, 'ssrc', P, 'pouch_pulled');
  await assertAttachment(P, 'pouch_pulled', 'att', 'big.bin', FROM_S.big);
});

test('pouchdb-server drives: push to settee', T, async () => {
  await createDb(S, 'pouch_pushed');
  const r = await replicate(P, { source: 'psrc', target: S.dbUrl('pouch_pushed') });
  assert.equal(r.status, 200, `pouchdb-server's _replicate: ${r.status} ${r.text.slice(0, 500)}`);
  assert.equal(r.json.docs_written, 38);
  await assertSameDocs(P, 'psrc', S, 'pouch_pushed');
  await assertAttachment(S, 'pouch_pushed', 'att', 'big.bin', FROM_P.big);
  await assertAttachment(S, 'pouch_pushed', 'attconf', 'leaf.bin', FROM_P.leafA, `2-${'e'.repeat(32)}`);
});
