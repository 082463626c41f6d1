// settee → settee through POST /_replicate, as CouchDB 3.x answers it: one-shot over HTTP in
// both directions (the source's server drives = push, the target's server drives = pull) and
// between local database names; every kind of content (docs, deletions, conflicts with the same
// winner and _conflicts on both ends, a 30-edit history, binary attachments of 5 MB and on
// conflicting leaves); doc_ids, selector and filter; checkpoint resume (a second run transfers
// only the new docs, the checkpoint _local/<repid> is the same on both ends); continuous jobs with
// _scheduler/jobs, _active_tasks and cancel.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  T, DRIVER, startSettee, call, replicate, fillSource, assertSameDocs, assertAttachment, put, bulk, createDb,
  changedIds, docState, waitFor, waitDoc, schedJobs, replicationTasks, shown, cleanup, sleep,
} from './lib.mjs';

let A, B, SRC;
// the first history entry (CouchDB's newest), or the top level of a peer that has no history
const stats = (r) => (r.json && Array.isArray(r.json.history) && r.json.history[0]) || r.json || {};

before(async () => {
  [A, B] = await Promise.all([startSettee('a'), startSettee('b')]);
  SRC = await fillSource(A, 'src');
});
after(cleanup);

// the replication's own checkpoint among a db's _local docs
async function checkpointDocs(srv, db) {
  const r = await call(srv, 'GET', `/${db}/_local_docs?include_docs=true`);
  assert.equal(r.status, 200, `_local_docs of ${db}: ${r.text.slice(0, 200)}`);
  return r.json.rows.map((x) => x.doc).filter((d) => /^_local\/[0-9a-f]{32}$/.test(d._id));
}

test('one-shot push over HTTP: the answer has CouchDB\'s shape and counts', T, async () => {
  const r = await replicate(A, { source: A.dbUrl('src'), target: B.dbUrl('push'), create_target: true });
  assert.equal(r.status, 200, `_replicate: ${r.status} ${r.text.slice(0, 500)}`);
  assert.equal(r.json.ok, true);
  assert.match(String(r.json.session_id), /^[0-9a-f]{32}$/, 'session_id: 32 hex');
  assert.equal(r.json.replication_id_version, 4);
  assert.ok(r.json.source_last_seq !== undefined, 'source_last_seq');
  assert.equal(r.json.history.length, 1);
  const h = r.json.history[0];
  for (const k of ['session_id', 'start_time', 'end_time', 'start_last_seq', 'end_last_seq', 'recorded_seq', 'missing_checked',
    'missing_found', 'docs_read', 'docs_written', 'doc_write_failures', 'bulk_get_docs', 'bulk_get_attempts']) assert.ok(k in h, `history[0].${k}`);
  assert.equal(h.session_id, r.json.session_id);
  assert.equal(h.start_last_seq, 0, 'a first run starts at 0');
  assert.match(h.start_time, /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/, 'RFC 1123 start_time');
  // 31 revisions: 20 plain, 3 deleted, 3 leaves of conf, hist30, att, 2 leaves of attconf, _design/f
  assert.equal(h.missing_found, 31);
  assert.equal(h.docs_written, 31);
  assert.equal(h.doc_write_failures, 0);
  assert.deepEqual(r.json.history[0].end_last_seq, r.json.source_last_seq);
});

test('one-shot push: the target holds every doc, leaf, deletion, conflict and attachment', T, async () => {
  const n = await assertSameDocs(A, 'src', B, 'push');
  assert.equal(n, 28, '28 ids: 20 plain, 3 deleted, conf, hist30, att, attconf, _design/f');
  assert.deepEqual(await changedIds(B, 'push'), await changedIds(A, 'src'));
  const conf = await call(B, 'GET', '/push/conf?conflicts=true&deleted_conflicts=true');
  assert.equal(conf.json._rev, `2-${'f'.repeat(32)}`, 'the same winner');
  assert.deepEqual(conf.json._conflicts, [`2-${'0'.repeat(32)}`]);
  assert.equal(conf.json._deleted_conflicts.length, 1);
  const hist = await call(B, 'GET', '/push/hist30?revs=true');
  assert.equal(hist.json._revisions.start, 30);
  assert.equal(hist.json._revisions.ids.length, 30, 'the whole 30-edit history');
  for (const id of SRC.deleted) assert.equal((await call(B, 'GET', `/push/${id}`)).status, 404);
  await assertAttachment(B, 'push', 'att', 'big.bin', SRC.big);
  await assertAttachment(B, 'push', 'att', 'small.bin', SRC.small);
  await assertAttachment(B, 'push', 'attconf', 'leaf.bin', SRC.leafA, `2-${'e'.repeat(32)}`);
  await assertAttachment(B, 'push', 'attconf', 'leaf.bin', SRC.leafB, `2-${'1'.repeat(32)}`);
  assert.equal((await call(B, 'GET', '/push/_local/nothing')).status, 404);
});

test('one-shot pull over HTTP (the target\'s server drives)', T, async () => {
  const r = await replicate(B, { source: A.dbUrl('src'), target: 'pull', create_target: true });
  assert.equal(r.status, 200, `_replicate: ${r.status} ${r.text.slice(0, 500)}`);
  assert.equal(stats(r).docs_written, 31);
  await assertSameDocs(A, 'src', B, 'pull');
  await assertAttachment(B, 'pull', 'att', 'big.bin', SRC.big);
});

test('one-shot between local database names', T, async () => {
  const r = await replicate(A, { source: 'src', target: 'local_copy', create_target: true });
  assert.equal(r.status, 200, `_replicate: ${r.status} ${r.text.slice(0, 500)}`);
  assert.equal(stats(r).docs_written, 31);
  await assertSameDocs(A, 'src', A, 'local_copy');
  await assertAttachment(A, 'local_copy', 'att', 'big.bin', SRC.big);
  await assertAttachment(A, 'local_copy', 'attconf', 'leaf.bin', SRC.leafB, `2-${'1'.repeat(32)}`);
});

test('a missing target without create_target is an error, and nothing is created', T, async () => {
  const r = await replicate(A, { source: A.dbUrl('src'), target: B.dbUrl('never_created') });
  assert.ok(r.status >= 400, `expected an error, got ${r.status} ${r.text.slice(0, 300)}`);
  assert.equal(r.json.error, 'db_not_found', r.text);
  assert.equal((await call(B, 'GET', '/never_created')).status, 404);
});

test('checkpoint resume: a second run transfers only the new docs; the checkpoint is the same on both ends', T, async () => {
  await createDb(A, 'ck_src');
  await bulk(A, 'ck_src', Array.from({ length: 40 }, (_, i) => ({ _id: `c${i}`, i })));
  const body = { source: A.dbUrl('ck_src'), target: B.dbUrl('ck_tgt'), create_target: true };
  const r1 = await replicate(A, body);
  assert.equal(r1.status, 200, r1.text);
  assert.equal(stats(r1).docs_written, 40);
  const cs1 = await checkpointDocs(A, 'ck_src');
  const ct1 = await checkpointDocs(B, 'ck_tgt');
  assert.equal(cs1.length, 1, `one checkpoint on the source: ${JSON.stringify(cs1)}`);
  assert.equal(ct1.length, 1, `one checkpoint on the target: ${JSON.stringify(ct1)}`);
  const strip = ({ _rev, ...rest }) => rest;
  assert.deepEqual(strip(ct1[0]), strip(cs1[0]), 'the same checkpoint doc on both ends');
  assert.equal(cs1[0].session_id, r1.json.session_id);
  assert.deepEqual(cs1[0].source_last_seq, r1.json.source_last_seq);
  assert.equal(cs1[0].replication_id_version, 4);

  await bulk(A, 'ck_src', Array.from({ length: 5 }, (_, i) => ({ _id: `new${i}`, i })));
  const r2 = await replicate(A, { source: A.dbUrl('ck_src'), target: B.dbUrl('ck_tgt') });
  assert.equal(r2.status, 200, r2.text);
  assert.deepEqual(stats(r2).start_last_seq, r1.json.source_last_seq, 'resumed from the first run\'s checkpoint');
  assert.equal(r2.json.history.length, 2, 'two sessions in the history, newest first');
  assert.equal(r2.json.history[1].session_id, r1.json.session_id);
  // CouchDB 3 carries a job's counts over from its checkpoint history (couch_replicator_stats:
  // max_stats in the job's init): the new session's counts are the old ones plus the new docs
  const [h2, h1] = r2.json.history;
  assert.equal(h2.docs_written - h1.docs_written, 5, `only the 5 new docs were written: ${JSON.stringify(r2.json.history)}`);
  assert.equal(h2.missing_checked - h1.missing_checked, 5, 'only the 5 new docs were checked');
  assert.equal(h2.docs_written, 45, 'cumulative, as CouchDB 3 counts');
  const [cs2] = await checkpointDocs(A, 'ck_src');
  assert.equal(cs2._id, cs1[0]._id, 'the same replication id for the same source, target and options');
  assert.deepEqual(cs2.source_last_seq, r2.json.source_last_seq);
  await assertSameDocs(A, 'ck_src', B, 'ck_tgt');

  const r3 = await replicate(A, { source: A.dbUrl('ck_src'), target: B.dbUrl('ck_tgt') });
  assert.equal(r3.status, 200, r3.text);
  assert.equal(r3.json.no_changes, true, `a run with nothing new: ${r3.text.slice(0, 300)}`);

  // use_checkpoints:false: CouchDB answers just that, and records no checkpoint
  const r4 = await replicate(A, { source: A.dbUrl('ck_src'), target: B.dbUrl('ck_tgt'), use_checkpoints: false });
  assert.equal(r4.status, 200, r4.text);
  assert.deepEqual(r4.json, { ok: true, use_checkpoints: false });
  const [cs4] = await checkpointDocs(A, 'ck_src');
  assert.equal(cs4.session_id, r2.json.session_id, 'the checkpoint is left as it was');
});

test('doc_ids: only those docs, with all their leaves', T, async () => {
  const ids = ['p001', 'conf', 'att'];
  const r = await replicate(A, { source: A.dbUrl('src'), target: B.dbUrl('ids'), create_target: true, doc_ids: ids });
  assert.equal(r.status, 200, r.text.slice(0, 500));
  assert.equal(r.json.docs_written, 5, 'CouchDB puts the counts at the top level with doc_ids; conf has 3 leaves');
  assert.deepEqual(await changedIds(B, 'ids'), ids.slice().sort());
  await assertSameDocs(A, 'src', B, 'ids', ids);
  const bad = await replicate(A, { source: A.dbUrl('src'), target: B.dbUrl('ids'), doc_ids: 'p001' });
  assert.equal(bad.status, 400);
  assert.deepEqual(bad.json, { error: 'bad_request', reason: 'parameter `doc_ids` must be an array' });
});

test('selector: only matching docs', T, async () => {
  const r = await replicate(A, { source: A.dbUrl('src'), target: B.dbUrl('sel'), create_target: true, selector: { type: 'even' } });
  assert.equal(r.status, 200, r.text.slice(0, 500));
  const even = Array.from({ length: 10 }, (_, i) => `p${String(i * 2).padStart(3, '0')}`);
  assert.deepEqual(await changedIds(B, 'sel'), even);
  assert.equal(stats(r).docs_written, 10);
  await assertSameDocs(A, 'src', B, 'sel', even);
  const both = await replicate(A, { source: A.dbUrl('src'), target: B.dbUrl('sel'), selector: { a: 1 }, filter: 'f/even' });
  assert.equal(both.status, 400);
  assert.deepEqual(both.json, { error: 'bad_request', reason: '`doc_ids`,`filter`,`selector` are mutually exclusive' });
});

test('filter: a design doc filter of the source', T, async () => {
  const r = await replicate(A, { source: A.dbUrl('src'), target: B.dbUrl('filt'), create_target: true, filter: 'f/even' });
  assert.equal(r.status, 200, r.text.slice(0, 500));
  assert.equal((await changedIds(B, 'filt')).length, 10);
  const missing = await replicate(A, { source: A.dbUrl('src'), target: B.dbUrl('filt'), filter: 'f/nope' });
  assert.equal(missing.status, 404, missing.text);
  assert.equal(missing.json.error, 'not_found');
});

test('filter between local names (CouchDB 3 runs them: its local names are URLs of the node)', T, async () => {
  const r = await replicate(A, { source: 'src', target: 'filt_local', create_target: true, filter: 'f/even' });
  assert.equal(r.status, 200, r.text.slice(0, 500));
  assert.equal((await changedIds(A, 'filt_local')).length, 10);
});

test('continuous push over HTTP: 202, new docs, deletions and conflicts arrive; _scheduler/jobs and _active_tasks; cancel', T, async () => {
  await createDb(A, 'cont_src');
  await bulk(A, 'cont_src', Array.from({ length: 10 }, (_, i) => ({ _id: `k${i}`, i })));
  const body = { source: A.dbUrl('cont_src'), target: B.dbUrl('cont_tgt'), create_target: true, continuous: true };
  const r = await replicate(A, body);
  assert.equal(r.status, 202, `continuous start: ${r.status} ${r.text}`);
  assert.equal(r.json.ok, true);
  assert.match(r.json._local_id, /^[0-9a-f]{32}\+continuous\+create_target$/);
  const repId = r.json._local_id;
  await waitFor('the 10 docs on the target', async () => (await call(B, 'GET', '/cont_tgt')).json?.doc_count === 10);

  // while it runs
  const jobs = await schedJobs(A);
  const job = jobs.find((j) => j.id === repId);
  assert.ok(job, `_scheduler/jobs lists ${repId}: ${JSON.stringify(jobs).slice(0, 500)}`);
  assert.equal(job.source, shown(A, 'cont_src'), 'the source without credentials, with a trailing /');
  assert.equal(job.target, shown(B, 'cont_tgt'));
  assert.equal(job.database, null);
  assert.equal(job.doc_id, null);
  assert.equal(job.user, 'admin');
  assert.ok(Array.isArray(job.history) && job.history.some((h) => h.type === 'started'), `history: ${JSON.stringify(job.history)}`);
  const byId = await call(A, 'GET', `/_scheduler/jobs/${encodeURIComponent(repId)}`);
  assert.equal(byId.status, 200, byId.text);
  assert.equal(byId.json.id, repId);
  const task = await waitFor('an _active_tasks replication entry that caught up', async () => {
    const t = (await replicationTasks(A)).find((x) => x.replication_id === repId);
    return t && t.docs_written >= 10 && t.changes_pending === 0 ? t : false;
  });
  assert.equal(task.continuous, true);
  assert.equal(task.source, shown(A, 'cont_src'));
  assert.equal(task.target, shown(B, 'cont_tgt'));
  for (const k of ['docs_read', 'docs_written', 'doc_write_failures', 'missing_revisions_found', 'revisions_checked',
    'checkpointed_source_seq', 'source_seq', 'through_seq', 'started_on', 'updated_on', 'checkpoint_interval']) assert.ok(k in task, `_active_tasks entry has ${k}`);

  // live changes
  await put(A, 'cont_src', 'live1', { v: 1 });
  await waitDoc(B, 'cont_tgt', 'live1');
  const k0 = await call(A, 'GET', '/cont_src/k0');
  assert.equal((await call(A, 'DELETE', `/cont_src/k0?rev=${k0.json._rev}`)).status, 200);
  await waitFor('k0 deleted on the target', async () => (await call(B, 'GET', '/cont_tgt/k0')).status === 404);
  const k1 = await call(A, 'GET', '/cont_src/k1');
  // an edit, then a replicated sibling of it: two leaves
  const k1Edit = await put(A, 'cont_src', 'k1', { _rev: k1.json._rev, edited: true });
  assert.match(k1Edit, /^2-/);
  await bulk(A, 'cont_src', [{ _id: 'k1', _rev: `2-${'f'.repeat(32)}`, _revisions: { start: 2, ids: ['f'.repeat(32), k1.json._rev.split('-')[1]] }, branch: true }], false);
  await waitFor('the new conflict on the target', async () => (await call(B, 'GET', '/cont_tgt/k1?conflicts=true')).json?._conflicts?.length === 1);
  await assertSameDocs(A, 'cont_src', B, 'cont_tgt');

  // the same POST again: the same job
  const again = await replicate(A, body);
  assert.equal(again.status, 202, again.text);
  assert.equal(again.json._local_id, repId);
  assert.equal((await schedJobs(A)).filter((j) => j.id === repId).length, 1);

  const cancel = await replicate(A, { ...body, cancel: true });
  assert.equal(cancel.status, 200, cancel.text);
  assert.deepEqual(cancel.json, { ok: true, _local_id: repId });
  await waitFor('the job gone from _scheduler/jobs', async () => !(await schedJobs(A)).some((j) => j.id === repId));
  assert.ok(!(await replicationTasks(A)).some((t) => t.replication_id === repId), 'no _active_tasks entry after cancel');
  await put(A, 'cont_src', 'after_cancel', {});
  await sleep(2000);
  assert.equal((await call(B, 'GET', '/cont_tgt/after_cancel')).status, 404, 'a cancelled job copies nothing more');
  const again404 = await replicate(A, { ...body, cancel: true });
  assert.equal(again404.status, 404);
  assert.deepEqual(again404.json, { error: 'not_found', reason: 'missing' });
});

test('continuous pull between settees, cancelled by replication_id', T, async () => {
  await createDb(A, 'cpull_src');
  const r = await replicate(B, { source: A.dbUrl('cpull_src'), target: 'cpull_tgt', create_target: true, continuous: true });
  assert.equal(r.status, 202, r.text);
  const repId = r.json._local_id;
  await put(A, 'cpull_src', 'one', { n: 1 });
  await waitDoc(B, 'cpull_tgt', 'one');
  const c = await replicate(B, { replication_id: repId, cancel: true });
  assert.equal(c.status, 200, c.text);
  assert.deepEqual(c.json, { ok: true, _local_id: repId });
  await waitFor('the job gone', async () => !(await schedJobs(B)).some((j) => j.id === repId));
});

test('continuous between local names: docs, deletions, 5 MB attachments arrive', T, async () => {
  await createDb(A, 'lc_src');
  const r = await replicate(A, { source: 'lc_src', target: 'lc_tgt', create_target: true, continuous: true });
  assert.equal(r.status, 202, r.text);
  const repId = r.json._local_id;
  const rev = await put(A, 'lc_src', 'doc', { v: 1 });
  const a = await call(A, 'PUT', `/lc_src/doc/big.bin?rev=${rev}`, SRC.big);
  assert.equal(a.status, 201);
  await waitDoc(A, 'lc_tgt', 'doc', (d) => d._attachments && d._attachments['big.bin']);
  await assertAttachment(A, 'lc_tgt', 'doc', 'big.bin', SRC.big);
  const cur = await call(A, 'GET', '/lc_src/doc');
  await call(A, 'DELETE', `/lc_src/doc?rev=${cur.json._rev}`);
  await waitFor('the deletion', async () => (await call(A, 'GET', '/lc_tgt/doc')).status === 404);
  await assertSameDocs(A, 'lc_src', A, 'lc_tgt');
  const c = await replicate(A, { source: 'lc_src', target: 'lc_tgt', create_target: true, continuous: true, cancel: true });
  assert.equal(c.status, 200, c.text);
  assert.equal(c.json._local_id, repId);
});

test('the target\'s own edits survive: replication only adds revisions', T, async () => {
  // a doc edited on both ends becomes a conflict with the same winner on both after two-way replication
  await createDb(A, 'tw'); await createDb(B, 'tw');
  const rev1 = await put(A, 'tw', 'x', { v: 0 });
  assert.equal((await replicate(A, { source: 'tw', target: B.dbUrl('tw') })).status, 200);
  await put(A, 'tw', 'x', { _rev: rev1, v: 'a' });
  await put(B, 'tw', 'x', { _rev: rev1, v: 'b' });
  assert.equal((await replicate(A, { source: 'tw', target: B.dbUrl('tw') })).status, 200);
  assert.equal((await replicate(A, { source: B.dbUrl('tw'), target: 'tw' })).status, 200);
  const a = await docState(A, 'tw', 'x');
  const b = await docState(B, 'tw', 'x');
  assert.deepEqual(b, a, 'the same leaves and the same winner on both ends');
  assert.equal(a.winner._conflicts.length, 1);
  if (DRIVER === 'settee') assert.equal(a.leaves.length, 2);
});
