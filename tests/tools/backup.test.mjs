// settee-backup and settee-restore, end to end: a backup taken from a running server under
// a concurrent write load holds every write acknowledged before it started, restores into a
// store that settee-check passes and a server serves with the same docs, conflicts,
// attachments and _local docs; damaged backups and occupied data dirs are refused; the
// offline backup of a stopped server's data dir gives the same store.
//
// Needs the binaries: SETTEE_BIN_DIR (default build/asan) with settee, settee-backup,
// settee-restore and settee-check.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, TMP, T, startServer, call, run, snapshotDb, cleanup } from './lib.mjs';

after(cleanup);

let backupFile, source;
const fixed = {};

test('a backup taken during a write load holds every write acknowledged before it started', T, async () => {
  source = await startServer(path.join(TMP, 'src'), 'src');
  for (const db of ['bk_a', 'bk_b']) assert.equal((await call(source, 'PUT', `/${db}`)).status, 201);
  // a conflict, an attachment, a deleted doc, a _local doc, an edited doc
  await call(source, 'POST', '/bk_a/_bulk_docs', {
    new_edits: false,
    docs: [{ _id: 'c', _rev: '2-b', _revisions: { start: 2, ids: ['b', 'a'] }, side: 'b' },
      { _id: 'c', _rev: '2-c', _revisions: { start: 2, ids: ['c', 'a'] }, side: 'c' }],
  });
  const att = await call(source, 'PUT', '/bk_a/att', { _attachments: { 'f.bin': { content_type: 'application/octet-stream', data: Buffer.from('bytes of f').toString('base64') } } });
  assert.equal(att.status, 201);
  const del = await call(source, 'PUT', '/bk_a/gone', { v: 1 });
  await call(source, 'DELETE', `/bk_a/gone?rev=${del.json.rev}`);
  const e1 = await call(source, 'PUT', '/bk_b/edited', { v: 1 });
  await call(source, 'PUT', '/bk_b/edited', { _rev: e1.json.rev, v: 2 });
  await call(source, 'PUT', '/bk_b/_local/chk', { last: 'x' });
  for (const db of ['bk_a', 'bk_b']) fixed[db] = await snapshotDb(source, db);

  // writers run through the whole backup
  const acked = [];
  let stop = false;
  const writer = async (w) => {
    for (let i = 0; !stop; i++) {
      const id = `w${w}-${i}`;
      const r = await call(source, 'PUT', `/bk_b/${id}`, { w, i, pad: 'x'.repeat(200) });
      if (r.status === 201) acked.push(id);
    }
  };
  const writers = [0, 1, 2, 3].map(writer);
  while (acked.length < 300) await new Promise((r) => setTimeout(r, 20));
  const before = acked.slice();
  backupFile = path.join(TMP, 'store.backup');
  const b = await run('settee-backup', [source.url, backupFile]);
  const during = acked.length - before.length;
  stop = true;
  await Promise.all(writers);
  assert.equal(b.code, 0, `settee-backup: ${b.err}`);
  assert.ok(fs.existsSync(backupFile) && !fs.existsSync(backupFile + '.partial'));

  const dir = path.join(TMP, 'restored');
  const r = await run('settee-restore', [backupFile, dir]);
  assert.equal(r.code, 0, `settee-restore: ${r.err}`);
  const chk = spawnSync(path.join(BIN, 'settee-check'), [dir], { encoding: 'utf8' });
  assert.equal(chk.status, 0, `settee-check: ${chk.stdout}${chk.stderr}`);
  const restored = await startServer(dir, 'restored');
  for (const db of ['bk_a', 'bk_b']) {
    const got = await snapshotDb(restored, db);
    for (const [id, leaves] of Object.entries(fixed[db].docs)) assert.deepEqual(got.docs[id], leaves, `${db}/${id}`);
    assert.deepEqual(got.local, fixed[db].local, `${db} _local docs`);
  }
  const missing = [];
  for (const id of before) {
    const d = await call(restored, 'GET', `/bk_b/${id}`);
    if (d.status !== 200 || d.json.pad.length !== 200) missing.push(id);
  }
  assert.deepEqual(missing, [], `${missing.length} of ${before.length} writes acknowledged before the backup are missing`);
  // the restored server takes writes, and the admin's credentials came along (_users, ini apart)
  assert.equal((await call(restored, 'PUT', '/bk_b/after-restore', {})).status, 201);
  await restored.stop();
  console.log(`# ${before.length} writes acknowledged before the backup, ${during} during it`);
});

test('a damaged or truncated backup is refused and leaves no data dir; an occupied data dir is refused', T, async () => {
  const buf = fs.readFileSync(backupFile);
  const flipped = Buffer.from(buf);
  flipped[Math.floor(flipped.length / 2)] ^= 0x55;
  const cases = { flipped, truncated: buf.subarray(0, buf.length - 100), 'not a backup': Buffer.from('{"not":"a backup"}') };
  for (const [what, bytes] of Object.entries(cases)) {
    const f = path.join(TMP, `bad-${what.replace(/ /g, '_')}`);
    fs.writeFileSync(f, bytes);
    const dir = path.join(TMP, `bad-dir-${what.replace(/ /g, '_')}`);
    const r = await run('settee-restore', [f, dir]);
    assert.equal(r.code, 1, `${what}: exit ${r.code} ${r.err}`);
    assert.ok(!fs.existsSync(dir), `${what}: ${dir} left behind`);
  }
  const r = await run('settee-restore', [backupFile, path.join(TMP, 'restored')]);
  assert.equal(r.code, 3, `occupied: exit ${r.code} ${r.err}`);
  assert.match(r.err, /already holds a store/);
});

test('a backup needs a server admin; the offline backup of a stopped data dir restores the same store', T, async () => {
  const anon = await fetch(`${source.base}/_node/_local/_backup`);
  assert.equal(anon.status, 401);
  const wrong = await run('settee-backup', [source.base.replace('http://', 'http://admin:nope@'), path.join(TMP, 'x.backup')]);
  assert.equal(wrong.code, 3);
  assert.ok(!fs.existsSync(path.join(TMP, 'x.backup')) && !fs.existsSync(path.join(TMP, 'x.backup.partial')));
  const want = { a: await snapshotDb(source, 'bk_a'), b: await snapshotDb(source, 'bk_b') };
  await source.stop();
  const off = path.join(TMP, 'offline.backup');
  const b = await run('settee-backup', ['--data-dir', path.join(TMP, 'src'), off]);
  assert.equal(b.code, 0, b.err);
  const dir = path.join(TMP, 'restored-offline');
  assert.equal((await run('settee-restore', [off, dir])).code, 0);
  const srv = await startServer(dir, 'restored-offline');
  assert.deepEqual(await snapshotDb(srv, 'bk_a'), want.a);
  assert.deepEqual(await snapshotDb(srv, 'bk_b'), want.b);
  await srv.stop();
});
