// Long attachments (issue 10's bounded memory): a 200 MB attachment round trip with the
// server's memory sampled while it goes, and an acknowledged long upload (written in pieces
// ahead of its doc) surviving kill -9, with settee-check clean afterwards.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, ROOT, TMP, T, cleanup, startServer, call } from './lib.mjs';

after(cleanup);
const AUTH = { authorization: 'Basic ' + Buffer.from('admin:admin').toString('base64') };
const md5 = (b) => crypto.createHash('md5').update(b).digest('hex');

// anonymous resident memory of a process, in KB (heap and buffers; not the file pages
// LevelDB's table files or h2o's temp file for a large body map in)
const anonKb = (pid) => Number(/RssAnon:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);

// runs fn while sampling the server's anonymous memory every 5 ms; the peak above the start
async function peakDuring(pid, fn) {
  const rest = anonKb(pid);
  let peak = rest;
  const timer = setInterval(() => { try { peak = Math.max(peak, anonKb(pid)); } catch { /* exited */ } }, 5);
  try { await fn(); } finally { clearInterval(timer); }
  peak = Math.max(peak, anonKb(pid));
  return (peak - rest) / 1024;
}

const OPT = path.join(ROOT, 'build');
const haveOpt = fs.existsSync(path.join(OPT, 'settee'));

test('a 200 MB attachment round trip: bytes intact, server memory bounded', { ...T, skip: haveOpt ? false : 'no optimized build (make all)' }, async () => {
  const MB = 200;
  const srv = await startServer(path.join(TMP, 'big'), 'big', `[chttpd]\nmax_http_request_size = ${(MB + 8) << 20}\n`, { binDir: OPT });
  const pid = srv.child.pid;
  assert.equal((await call(srv, 'PUT', '/db')).status, 201);
  const body = crypto.randomBytes(MB << 20);
  let put;
  const putMb = await peakDuring(pid, async () => {
    put = await fetch(`${srv.base}/db/doc/big.bin`, {
      method: 'PUT', headers: { ...AUTH, 'content-type': 'application/octet-stream' }, body,
    });
  });
  assert.equal(put.status, 201, await put.text());
  let got;
  const getMb = await peakDuring(pid, async () => {
    const r = await fetch(`${srv.base}/db/doc/big.bin`, { headers: AUTH });
    assert.equal(r.status, 200);
    got = Buffer.from(await r.arrayBuffer());
  });
  assert.equal(got.length, body.length);
  assert.equal(md5(got), md5(body), 'the bytes came back different');
  // before pieces and streaming: the upload peaked at 3x the body in heap, the download at 2x
  assert.ok(putMb < MB / 2, `upload: ${putMb.toFixed(1)} MB of heap above rest for a ${MB} MB body`);
  assert.ok(getMb < 32, `download: ${getMb.toFixed(1)} MB of heap above rest for a ${MB} MB attachment`);
  console.log(`# 200 MB round trip: heap peak above rest ${putMb.toFixed(1)} MB (PUT), ${getMb.toFixed(1)} MB (GET)`);
  await srv.stop();
});

test('an acknowledged long upload survives kill -9; settee-check is clean', T, async () => {
  const dir = path.join(TMP, 'k9');
  let srv = await startServer(dir, 'k9a');
  assert.equal((await call(srv, 'PUT', '/db')).status, 201);
  const body = crypto.randomBytes(9 * 1024 * 1024 + 777); // several staged batches
  const text = Buffer.from(crypto.randomBytes(300000).toString('hex')); // gzip-stored: ~5 pieces encoded
  let r = await fetch(`${srv.base}/db/doc/a.bin`, { method: 'PUT', headers: { ...AUTH, 'content-type': 'application/octet-stream' }, body });
  assert.equal(r.status, 201);
  const rev = (await r.json()).rev;
  r = await fetch(`${srv.base}/db/doc/t.txt?rev=${rev}`, { method: 'PUT', headers: { ...AUTH, 'content-type': 'text/plain' }, body: text });
  assert.equal(r.status, 201);
  await srv.kill9();
  srv = await startServer(dir, 'k9b');
  r = await fetch(`${srv.base}/db/doc/a.bin`, { headers: AUTH });
  assert.equal(r.status, 200);
  assert.equal(md5(Buffer.from(await r.arrayBuffer())), md5(body));
  r = await fetch(`${srv.base}/db/doc/t.txt`, { headers: AUTH });
  assert.ok(Buffer.from(await r.arrayBuffer()).equals(text));
  // replace it, so the old bytes' pieces are dropped with their last reference
  const d = await call(srv, 'GET', '/db/doc');
  r = await fetch(`${srv.base}/db/doc/a.bin?rev=${d.json._rev}`, { method: 'PUT', headers: { ...AUTH, 'content-type': 'application/octet-stream' }, body: body.subarray(0, 3 << 20) });
  assert.equal(r.status, 201);
  await srv.stop();
  const chk = spawnSync(path.join(BIN, 'settee-check'), [dir], { encoding: 'utf8' });
  assert.equal(chk.status, 0, `settee-check: ${chk.stdout}${chk.stderr}`);
  assert.doesNotMatch(chk.stdout + chk.stderr, /orphan/i);
});

// Clients that send a whole upload and go away before the answer, while the writer reads
// their body where h2o buffered it. (h2o 2.2.5 does not read an HTTP/1 connection while its
// request is handled, so it disposes the request only once the answer fails to go out; the
// writer's pin, writer.h, covers a dispose before that.) The server must neither crash nor
// read freed memory: this suite runs the sanitizer build and cleanup() fails on any report.
test('clients gone while their writes commit: no crash, no sanitizer report', T, async () => {
  const net = await import('node:net');
  const srv = await startServer(path.join(TMP, 'gone'), 'gone');
  assert.equal((await call(srv, 'PUT', '/db')).status, 201);
  const { port } = new URL(srv.base);
  const auth = 'Basic ' + Buffer.from('admin:admin').toString('base64');
  const big = crypto.randomBytes(6 << 20);
  const small = Buffer.from(JSON.stringify({ v: 'x'.repeat(200) }));
  const sendAndLeave = (p, ctype, body, waitMs) => new Promise((resolve) => {
    const s = net.connect(Number(port), '127.0.0.1', () => {
      s.write(`PUT ${p} HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nContent-Type: ${ctype}\r\n` +
        `Content-Length: ${body.length}\r\n\r\n`);
      s.write(body, () => setTimeout(() => { s.destroy(); resolve(); }, waitMs));
    });
    s.on('error', resolve);
  });
  for (let i = 0; i < 6; i++) await sendAndLeave(`/db/big${i}/a.bin`, 'application/octet-stream', big, i);
  for (let i = 0; i < 40; i++) await sendAndLeave(`/db/small${i}`, 'application/json', small, i % 3);
  await new Promise((r) => setTimeout(r, 500));
  const r = await call(srv, 'GET', '/db');
  assert.equal(r.status, 200);
  // whatever was committed is whole
  const all = await call(srv, 'GET', '/db/_all_docs');
  for (const row of all.json.rows.filter((x) => x.id.startsWith('big'))) {
    const g = await fetch(`${srv.base}/db/${row.id}/a.bin`, { headers: AUTH });
    assert.equal(md5(Buffer.from(await g.arrayBuffer())), md5(big), row.id);
  }
  await srv.stop();
});
