// The _replicator database and the scheduler, as CouchDB 3.x runs them: jobs start on creation,
// stop on deletion, restart on edit; _scheduler/docs and _scheduler/jobs show their states
// (initializing, running, pending, crashing, completed, failed, error) with `info` and error
// reasons; _active_tasks lists the running ones. Then the failure cases: settee restarted in the
// middle of a continuous job (it resumes from its checkpoint), a peer killed mid-replication and
// restarted (crashing, then running again, nothing lost, nothing half-written), wrong
// credentials (crashing or failed, with a reason that says so).
//
// settee accepts local database names in _replicator docs (CouchDB 3.4 refuses them with
// 403 local_endpoints_not_supported): a deliberate difference, used here.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  T, startSettee, startPouch, call, fillSource, assertSameDocs, assertAttachment, put, bulk, createDb,
  waitFor, waitDoc, schedDoc, waitSchedState, schedJobs, replicationTasks, shown, cleanup, sleep, docCount, WAIT_MS,
} from './lib.mjs';

let A, B, P, SRC;
const repDoc = (id, body) => call(A, 'PUT', `/_replicator/${encodeURIComponent(id)}`, body);
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

before(async () => {
  [A, B, P] = await Promise.all([startSettee('a'), startSettee('b'), startPouch('p')]);
  SRC = await fillSource(A, 'src');
});
after(cleanup);

async function deleteRepDoc(id) {
  const cur = await call(A, 'GET', `/_replicator/${encodeURIComponent(id)}`);
  assert.equal(cur.status, 200, `GET _replicator/${id}: ${cur.text}`);
  const d = await call(A, 'DELETE', `/_replicator/${encodeURIComponent(id)}?rev=${cur.json._rev}`);
  assert.equal(d.status, 200, d.text);
  await waitFor(`_scheduler/docs/_replicator/${id} gone`, async () => (await schedDoc(A, id)) === null);
}

// the base of a job id (the checkpoint is _local/<base>)
const baseId = (jobId) => String(jobId).split('+')[0];

test('_replicator exists and is admin-only, as in CouchDB', T, async () => {
  const r = await call(A, 'GET', '/_replicator');
  assert.equal(r.status, 200, r.text);
  const s = await call(A, 'GET', '/_replicator/_security');
  assert.deepEqual(s.json, { members: { roles: ['_admin'] }, admins: { roles: ['_admin'] } });
  const empty = await call(A, 'GET', '/_scheduler/docs');
  assert.equal(empty.status, 200, empty.text);
  assert.deepEqual(empty.json, { total_rows: 0, offset: 0, docs: [] });
  const jobs = await call(A, 'GET', '/_scheduler/jobs');
  assert.deepEqual(jobs.json, { total_rows: 0, offset: 0, jobs: [] });
  assert.equal((await call(A, 'GET', '/_scheduler/jobs', undefined, { auth: false })).status, 401);
  assert.equal((await call(A, 'GET', '/_scheduler/jobs/nope')).status, 404);
  const bad = await call(A, 'GET', '/_scheduler/docs/src');
  assert.equal(bad.status, 400);
  assert.deepEqual(bad.json, { error: 'bad_request', reason: 'Invalid path' });
});

test('a one-shot _replicator doc between local names: initializing/running → completed, the doc gets its state', T, async () => {
  const put1 = await repDoc('oneshot', { source: 'src', target: 'doc_tgt', create_target: true });
  assert.equal(put1.status, 201, `settee accepts local names in _replicator docs: ${put1.text}`);
  const { doc, seen } = await waitSchedState(A, 'oneshot', (d) => d.state === 'completed', 'completed');
  for (const s of seen) assert.ok(['initializing', 'running', 'pending', 'completed'].includes(s), `state ${s} on the way (${seen})`);
  assert.equal(doc.database, '_replicator');
  assert.equal(doc.doc_id, 'oneshot');
  assert.equal(doc.id, null, 'a completed one-shot has no job id');
  assert.equal(doc.error_count, 0);
  assert.equal(doc.info.docs_written, 31);
  assert.equal(doc.info.doc_write_failures, 0);
  assert.match(doc.start_time, ISO);
  assert.match(doc.last_updated, ISO);
  await assertSameDocs(A, 'src', A, 'doc_tgt');
  await assertAttachment(A, 'doc_tgt', 'att', 'big.bin', SRC.big);
  const after1 = await waitDoc(A, '_replicator', 'oneshot', (d) => d._replication_state === 'completed');
  assert.match(after1._rev, /^2-/, 'the state is written as a new revision');
  assert.equal(after1.owner, 'admin');
  assert.match(after1._replication_state_time, ISO);
  assert.equal(after1._replication_stats.docs_written, 31);
  assert.ok(!(await schedJobs(A)).some((j) => j.doc_id === 'oneshot'), 'completed one-shots are not in _scheduler/jobs');
  const noRev = await repDoc('oneshot', { source: 'src', target: 'doc_tgt' });
  assert.equal(noRev.status, 409);
  await deleteRepDoc('oneshot');
});

test('invalid _replicator docs are refused at PUT', T, async () => {
  const num = await repDoc('bad_num', { source: 42, target: 'x' });
  assert.equal(num.status, 403, num.text);
  assert.equal(num.json.error, 'forbidden');
  const arr = await call(A, 'PUT', '/_replicator/bad_arr', []);
  assert.equal(arr.status, 400);
  assert.deepEqual(arr.json, { error: 'bad_request', reason: 'Document must be a JSON object' });
  const both = await repDoc('bad_both', { source: 'src', target: 'x', selector: { a: 1 }, doc_ids: ['a'] });
  if (both.status === 201) await deleteRepDoc('bad_both'); // no job left behind for the later tests
  assert.equal(both.status, 403, both.text);
  assert.equal(both.json.error, 'forbidden');
});

test('a continuous _replicator doc over HTTP: running in _scheduler/docs, _scheduler/jobs and _active_tasks; edit restarts it; delete stops it', T, async () => {
  await createDb(A, 'c_src');
  await bulk(A, 'c_src', Array.from({ length: 12 }, (_, i) => ({ _id: `c${i}`, i })));
  const body = {
    source: { url: `${A.base}/c_src`, auth: { basic: { username: 'admin', password: 'admin' } } },
    target: { url: `${B.base}/c_tgt`, headers: { Authorization: 'Basic ' + Buffer.from('admin:admin').toString('base64') } },
    create_target: true, continuous: true,
  };
  assert.equal((await repDoc('cont', body)).status, 201);
  const { doc } = await waitSchedState(A, 'cont', (d) => d.state === 'running' && d.info && d.info.docs_written >= 12, 'running and caught up');
  assert.match(doc.id, /^[0-9a-f]{32}\+continuous\+create_target$/);
  assert.equal(doc.source, shown(A, 'c_src'), 'no credentials, a trailing /');
  assert.equal(doc.target, shown(B, 'c_tgt'));
  assert.equal(doc.error_count, 0);
  for (const k of ['revisions_checked', 'missing_revisions_found', 'docs_read', 'docs_written', 'doc_write_failures', 'checkpointed_source_seq', 'source_seq', 'through_seq']) assert.ok(k in doc.info, `info.${k}`);
  const job = (await schedJobs(A)).find((j) => j.doc_id === 'cont');
  assert.ok(job, '_scheduler/jobs lists the doc\'s job');
  assert.equal(job.id, doc.id);
  assert.equal(job.database, '_replicator');
  assert.equal(job.user, null);
  assert.equal(job.source, shown(A, 'c_src'));
  const task = await waitFor('an _active_tasks entry for the doc', async () => (await replicationTasks(A)).find((t) => t.doc_id === 'cont'));
  assert.equal(task.replication_id, doc.id);
  assert.equal(task.continuous, true);
  assert.equal(task.target, shown(B, 'c_tgt'));
  // the stored doc keeps its credentials and gains no state for a running continuous job
  const stored = await call(A, 'GET', '/_replicator/cont');
  assert.deepEqual(stored.json.source, body.source);
  assert.equal(stored.json._replication_state, undefined);

  await put(A, 'c_src', 'live', { v: 1 });
  await waitDoc(B, 'c_tgt', 'live');

  // edit: a new target; the job restarts and fills it
  const edited = await repDoc('cont', { ...body, _rev: stored.json._rev, target: { ...body.target, url: `${B.base}/c_tgt2` } });
  assert.equal(edited.status, 201, edited.text);
  await waitFor('the edited job fills c_tgt2', async () => (await docCount(B, 'c_tgt2')) === 13);
  const d2 = await waitSchedState(A, 'cont', (d) => d.state === 'running' && d.target === shown(B, 'c_tgt2'), 'running on the new target');
  assert.notEqual(d2.doc.id, doc.id, 'another target, another replication id');

  // delete: the job stops
  await deleteRepDoc('cont');
  assert.ok(!(await schedJobs(A)).some((j) => j.doc_id === 'cont'), 'no job after the delete');
  await waitFor('no _active_tasks entry', async () => !(await replicationTasks(A)).some((t) => t.doc_id === 'cont'));
  await put(A, 'c_src', 'after_delete', {});
  await sleep(2000);
  assert.equal((await call(B, 'GET', '/c_tgt2/after_delete')).status, 404, 'a deleted doc\'s job copies nothing more');
});

test('a _replicator doc pushing to pouchdb-server (continuous)', T, async () => {
  await createDb(A, 'to_p');
  assert.equal((await repDoc('to_pouch', { source: 'to_p', target: P.dbUrl('from_a'), create_target: true, continuous: true })).status, 201);
  await put(A, 'to_p', 'hello', { to: 'pouch' });
  await waitDoc(P, 'from_a', 'hello');
  await waitSchedState(A, 'to_pouch', (d) => d.state === 'running', 'running');
  await deleteRepDoc('to_pouch');
});

test('settee restarted mid continuous job: the job comes back from _replicator and resumes from its checkpoint', T, async () => {
  await createDb(A, 'rs_src');
  await bulk(A, 'rs_src', Array.from({ length: 200 }, (_, i) => ({ _id: `r${String(i).padStart(4, '0')}`, i, pad: 'x'.repeat(500) })));
  assert.equal((await repDoc('restart', { source: 'rs_src', target: 'rs_tgt', create_target: true, continuous: true, checkpoint_interval: 1000 })).status, 201);
  const { doc } = await waitSchedState(A, 'restart', (d) => d.state === 'running' && d.info && d.info.docs_written >= 200, 'running and caught up');
  const ckId = `_local/${baseId(doc.id)}`;
  // wait for a checkpoint that covers everything (checkpoint_interval: 1 s, a per-replication option)
  const ck1 = await waitFor(`a checkpoint ${ckId} that covers every change`, async () => {
    const c = await call(A, 'GET', `/rs_src/${ckId}`);
    if (c.status !== 200) return false;
    const rest = await call(A, 'GET', `/rs_src/_changes?since=${encodeURIComponent(JSON.stringify(c.json.source_last_seq).replace(/^"|"$/g, ''))}`);
    return rest.json && rest.json.results.length === 0 ? c.json : false;
  });
  const sessionsBefore = new Set(ck1.history.map((h) => h.session_id));
  await A.restart();
  // writes after the restart reach the target through the resumed job
  await bulk(A, 'rs_src', Array.from({ length: 10 }, (_, i) => ({ _id: `after${i}`, i })));
  await waitFor('the 10 new docs on the target', async () => (await docCount(A, 'rs_tgt')) === 210);
  const { doc: back } = await waitSchedState(A, 'restart', (d) => d.state === 'running', 'running after the restart');
  assert.equal(back.id, doc.id, 'the same replication id after a restart');
  const ck2 = await waitFor('a checkpoint of the new session that covers every change', async () => {
    const c = await call(A, 'GET', `/rs_src/${ckId}`);
    if (c.status !== 200 || sessionsBefore.has(c.json.session_id)) return false;
    const rest = await call(A, 'GET', `/rs_src/_changes?since=${encodeURIComponent(JSON.stringify(c.json.source_last_seq).replace(/^"|"$/g, ''))}`);
    return rest.json && rest.json.results.length === 0 ? c.json : false;
  });
  const newest = ck2.history[0];
  assert.ok(!sessionsBefore.has(newest.session_id), 'the newest history entry is the new session');
  assert.deepEqual(newest.start_last_seq, ck1.source_last_seq, 'the new session started from the checkpoint, not from 0');
  // CouchDB 3 carries the counts over from the checkpoint history: the difference is this session's
  assert.equal(newest.docs_written - ck1.history[0].docs_written, 10,
    `after the restart only the 10 new docs were written (before: ${JSON.stringify(ck1.history[0])}, after: ${JSON.stringify(newest)})`);
  assert.ok(ck2.history.length >= 2, 'the old sessions stay in the history');
  const onTarget = await call(A, 'GET', `/rs_tgt/${ckId}`);
  assert.equal(onTarget.status, 200, 'the checkpoint is on the target too');
  await assertSameDocs(A, 'rs_src', A, 'rs_tgt');
  await deleteRepDoc('restart');
});

test('the peer killed mid-replication and restarted: crashing with a reason, then running, nothing lost', T, async () => {
  await createDb(B, 'k_src');
  // enough content that the kill lands mid-transfer
  for (let i = 0; i < 3000; i += 500) {
    await bulk(B, 'k_src', Array.from({ length: 500 }, (_, k) => ({ _id: `k${String(i + k).padStart(5, '0')}`, pad: 'y'.repeat(2000) })));
  }
  assert.equal((await repDoc('killed', { source: B.dbUrl('k_src'), target: 'k_tgt', create_target: true, continuous: true, checkpoint_interval: 1000 })).status, 201);
  await waitFor('the first docs on the target', async () => (await docCount(A, 'k_tgt')) > 0, WAIT_MS, 20);
  const midway = await docCount(A, 'k_tgt');
  await B.kill();
  const { doc: crashed, seen } = await waitSchedState(A, 'killed', (d) => d.state === 'crashing', 'crashing after the kill');
  assert.ok(crashed.info && typeof crashed.info.error === 'string' && crashed.info.error.length > 0, `info.error says why: ${JSON.stringify(crashed.info)}`);
  assert.ok(crashed.error_count >= 1, `error_count ${crashed.error_count}`);
  const atKill = await docCount(A, 'k_tgt');
  // the target holds whole docs only: every doc there equals the source's (checked after the restart)
  await B.start();
  await put(B, 'k_src', 'after_restart', { v: 1 });
  const { doc: running } = await waitSchedState(A, 'killed', (d) => d.state === 'running', 'running again after the peer came back', WAIT_MS * 2);
  assert.equal(running.id, crashed.id);
  await waitDoc(A, 'k_tgt', 'after_restart', undefined, WAIT_MS * 2);
  await waitFor('all 3001 docs', async () => (await docCount(A, 'k_tgt')) === 3001);
  await assertSameDocs(B, 'k_src', A, 'k_tgt');
  console.log(`# kill at ${midway}..${atKill} of 3000 docs; states seen ${seen.join(' → ')}`);
  await deleteRepDoc('killed');
});

test('a peer that is down from the start: crashing with a reason', T, async () => {
  assert.equal((await repDoc('down', { source: 'http://admin:admin@127.0.0.1:9/nodb', target: 'down_tgt', create_target: true })).status, 201);
  // (CouchDB retries a crashed job after 30 s, then 60 s...: error_count grows slowly)
  const { doc } = await waitSchedState(A, 'down', (d) => d.state === 'crashing' && d.error_count >= 1, 'crashing');
  assert.match(doc.info.error, /127\.0\.0\.1:9|refused|conn/i, `the reason names the failure: ${doc.info.error}`);
  assert.ok(!doc.info.error.includes('admin:admin'), 'no credentials in the reason');
  await deleteRepDoc('down');
});

test('wrong credentials: crashing or failed with a reason that says unauthorized', T, async () => {
  await createDb(B, 'auth_src');
  const r = await call(A, 'POST', '/_replicate', { source: `http://admin:wrong@${B.host}/auth_src`, target: 'auth_tgt', create_target: true });
  assert.ok(r.status === 401 || r.status === 500, `_replicate with a wrong password: ${r.status} ${r.text}`);
  assert.match(`${r.json.error} ${r.json.reason}`, /auth|unauthori/i, r.text);
  assert.equal((await call(A, 'GET', '/auth_tgt')).status, 404, 'no target created for a replication that could not start');
  assert.equal((await repDoc('badpw', { source: `http://admin:wrong@${B.host}/auth_src`, target: 'auth_tgt2', create_target: true, continuous: true })).status, 201);
  const { doc } = await waitSchedState(A, 'badpw', (d) => ['crashing', 'failed'].includes(d.state), 'crashing or failed');
  assert.match(doc.info.error, /auth|unauthori|401/i, `the reason says so: ${doc.info.error}`);
  assert.ok(!doc.info.error.includes('wrong'), 'the password is not in the reason');
  const stored = await call(A, 'GET', '/_replicator/badpw');
  assert.equal(stored.json.source, `http://admin:wrong@${B.host}/auth_src`, 'the doc keeps its credentials');
  const job = (await schedJobs(A)).find((j) => j.doc_id === 'badpw');
  if (job) assert.ok(!JSON.stringify(job).includes('wrong'), 'no password in _scheduler/jobs');
  // the retries must not lock the peer's real account out (its auth lockout counts failed
  // logins: CouchDB retries a crashed job after 30 s, 60 s, ..., so a wrong doc never trips it)
  await sleep(10000);
  const peer = await call(B, 'GET', '/auth_src');
  assert.equal(peer.status, 200, `the peer's admin still gets in after 10 s of a wrong-password job: ${peer.text}`);
  await deleteRepDoc('badpw');
});

test('_scheduler/docs lists every doc with its state; limit and skip', T, async () => {
  assert.equal((await repDoc('l1', { source: 'src', target: 'l1_tgt', create_target: true })).status, 201);
  assert.equal((await repDoc('l2', { source: 'src', target: 'l2_tgt', create_target: true, continuous: true })).status, 201);
  assert.equal((await repDoc('l3', { source: A.dbUrl('src'), target: 'l3_tgt', filter: 'nope/x' })).status, 201);
  await waitSchedState(A, 'l1', (d) => d.state === 'completed', 'completed');
  await waitSchedState(A, 'l2', (d) => d.state === 'running', 'running');
  const { doc: l3 } = await waitSchedState(A, 'l3', (d) => ['error', 'failed', 'crashing'].includes(d.state), 'error (missing filter)');
  assert.match(l3.info.error, /_design\/nope|not_found/, l3.info.error);
  const all = await call(A, 'GET', '/_scheduler/docs');
  assert.equal(all.status, 200);
  // (docs an earlier failed test left behind are listed too: only l1..l3 are checked)
  assert.equal(all.json.total_rows, all.json.docs.length, JSON.stringify(all.json).slice(0, 500));
  const mine = all.json.docs.filter((d) => /^l\d$/.test(d.doc_id));
  assert.deepEqual(mine.map((d) => d.doc_id), ['l1', 'l2', 'l3'], 'sorted by doc id');
  assert.deepEqual(mine.map((d) => d.state).slice(0, 2), ['completed', 'running']);
  const lim = await call(A, 'GET', '/_scheduler/docs/_replicator?limit=2');
  assert.equal(lim.json.total_rows, all.json.total_rows);
  assert.equal(lim.json.docs.length, 2);
  assert.deepEqual(lim.json.docs, all.json.docs.slice(0, 2).map((d, i) => ({ ...d, last_updated: lim.json.docs[i].last_updated, info: lim.json.docs[i].info, error_count: lim.json.docs[i].error_count })));
  const skip = await call(A, 'GET', '/_scheduler/jobs?skip=5');
  assert.equal(skip.json.jobs.length, 0);
  for (const id of ['l1', 'l2', 'l3']) await deleteRepDoc(id);
  await waitFor('no job of l1..l3 in _scheduler/jobs', async () => !(await schedJobs(A)).some((j) => /^l\d$/.test(j.doc_id)));
});
