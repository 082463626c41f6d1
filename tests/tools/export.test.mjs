// settee-export and settee-import (and GET /{db}/_export): a database with conflicts,
// deleted leaves, attachments and a design doc goes out as JSON lines and comes back into
// another server with the same revisions, histories and attachment bytes; importing twice
// changes nothing; a damaged line and a refused export are reported with their exit status.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { TMP, T, startServer, call, run, snapshotDb, cleanup } from './lib.mjs';

after(cleanup);

let src, dst;

test('export then import gives the same leaves, histories, deleted conflicts and attachments', T, async () => {
  src = await startServer(path.join(TMP, 'src'), 'src');
  dst = await startServer(path.join(TMP, 'dst'), 'dst');
  assert.equal((await call(src, 'PUT', '/ex')).status, 201);
  await call(src, 'POST', '/ex/_bulk_docs', {
    new_edits: false,
    docs: [{ _id: 'c', _rev: '3-b', _revisions: { start: 3, ids: ['b', 'x', 'a'] }, side: 'b' },
      { _id: 'c', _rev: '2-c', _revisions: { start: 2, ids: ['c', 'a'] }, side: 'c' },
      { _id: 'c', _rev: '2-d', _deleted: true, _revisions: { start: 2, ids: ['d', 'a'] } }],
  });
  const bin = Buffer.from([0, 1, 2, 250, 251, 252]);
  assert.equal((await call(src, 'PUT', '/ex/att', { _attachments: {
    'b.bin': { content_type: 'application/octet-stream', data: bin.toString('base64') },
    't.txt': { content_type: 'text/plain', data: Buffer.from('some text '.repeat(50)).toString('base64') },
  } })).status, 201);
  const g = await call(src, 'PUT', '/ex/gone', { v: 1 });
  await call(src, 'DELETE', `/ex/gone?rev=${g.json.rev}`);
  assert.equal((await call(src, 'PUT', '/ex/_design/d', { language: 'javascript', views: {} })).status, 201);
  for (let i = 0; i < 1200; i++) await call(src, 'PUT', `/ex/n${String(i).padStart(4, '0')}`, { i });
  const file = path.join(TMP, 'ex.jsonl');
  const e = await run('settee-export', [src.url + '/ex', file]);
  assert.equal(e.code, 0, e.err);
  const lines = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  // one line per leaf: c has three, gone its tombstone
  assert.equal(lines.length, 3 + 1 + 1 + 1 + 1200);
  assert.deepEqual(lines.filter((l) => l._id === 'c').map((l) => l._rev).sort(), ['2-c', '2-d', '3-b']);
  const imp = await run('settee-import', [file, dst.url + '/copy']);
  assert.equal(imp.code, 0, imp.err);
  const want = await snapshotDb(src, 'ex');
  const got = await snapshotDb(dst, 'copy');
  assert.deepEqual(got, { ...want, local: [] });
  const gone = await call(dst, 'GET', '/copy/gone?open_revs=all');
  assert.equal(gone.json[0].ok._deleted, true);
  // importing again: already there, nothing changes
  const seq = (await call(dst, 'GET', '/copy')).json.update_seq;
  assert.equal((await run('settee-import', [file, dst.url + '/copy'])).code, 0);
  assert.equal((await call(dst, 'GET', '/copy')).json.update_seq, seq);
});

test('a damaged line stops the import with status 1; an export without access is status 3 and leaves no file', T, async () => {
  const bad = path.join(TMP, 'bad.jsonl');
  fs.writeFileSync(bad, '{"_id":"a","_rev":"1-a","_revisions":{"start":1,"ids":["a"]}}\n{"_id": broken\n');
  const r = await run('settee-import', [bad, dst.url + '/bad']);
  assert.equal(r.code, 1);
  assert.match(r.err, /line 2 is not a JSON object/);
  const out = path.join(TMP, 'anon.jsonl');
  const anon = await run('settee-export', [src.base + '/ex', out]);
  assert.equal(anon.code, 3, anon.err);
  assert.ok(!fs.existsSync(out) && !fs.existsSync(out + '.partial'));
  const e = await fetch(`${src.base}/ex/_export`);
  assert.equal(e.status, 401);
});
