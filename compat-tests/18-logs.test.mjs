// settee's own logs (CouchDB's log lines differ; these tests run only against settee, with a
// binary of their own: SETTEE_BIN, default ../build/asan/settee). What an operator relies on:
//   - [log] level changed through /_node/_local/_config applies to the next request;
//   - access lines name the authenticated user ("-" when anonymous), never a credential;
//   - [settee] slow_request_ms adds a WARNING "slow request" line for slower requests,
//     also live.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { isSettee } from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const PASSWORD = 'pw-that-must-not-be-logged';
const auth = { Authorization: 'Basic ' + Buffer.from(`boss:${PASSWORD}`).toString('base64') };

test('log level live through _config, user names in access lines, slow requests', async (t) => {
  const bin = process.env.SETTEE_BIN || path.resolve(here, '../build/asan/settee');
  if (!(await isSettee()) || !fs.existsSync(bin)) return t.skip('needs a settee binary (SETTEE_BIN)');
  const port = await new Promise((res) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => res(port)); });
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'settee-logs-'));
  fs.writeFileSync(path.join(dir, 'settee.ini'), `[admins]\nboss = ${PASSWORD}\n[log]\nlevel = warning\n`);
  const child = spawn(bin, ['--bind', '127.0.0.1', '--port', String(port), '--data-dir', path.join(dir, 'db'),
    '--config', path.join(dir, 'settee.ini'), '--threads', '2'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, LSAN_OPTIONS: process.env.LSAN_OPTIONS || `suppressions=${path.resolve(here, '../tools/lsan.supp')}:print_suppressions=0` },
  });
  let log = '';
  child.stderr.on('data', (d) => { log += d; });
  const url = (p) => `http://127.0.0.1:${port}${p}`;
  const config = (section, key, value) => fetch(url(`/_node/_local/_config/${section}/${key}`), {
    method: 'PUT', headers: { ...auth, 'Content-Type': 'application/json' }, body: JSON.stringify(value),
  }).then((r) => assert.equal(r.status, 200));
  const since = () => log.length;
  try {
    let up = false;
    for (let i = 0; i < 100 && !up; i++) {
      up = await fetch(url('/_up')).then((r) => r.ok, () => false);
      if (!up) await sleep(100);
    }
    assert.ok(up, 'settee answers: ' + log);

    // warning: no access lines
    let mark = since();
    await fetch(url('/_all_dbs'), { headers: auth });
    await sleep(100);
    assert.doesNotMatch(log.slice(mark), /GET \/_all_dbs/);

    // info, live: access lines with the user's name, "-" for anonymous, never the password
    await config('log', 'level', 'info');
    mark = since();
    await fetch(url('/_all_dbs?x=1'), { headers: auth });
    await fetch(url('/'));
    await fetch(url('/_all_dbs?x=2'), { headers: { Authorization: 'Basic ' + Buffer.from('boss:wrong').toString('base64') } });
    await sleep(100);
    const lines = log.slice(mark);
    assert.match(lines, /\[info\] [0-9a-f]{10} boss GET \/_all_dbs\?x=1 200 /);
    assert.match(lines, /\[info\] [0-9a-f]{10} - GET \/ 200 /);
    assert.match(lines, /\[info\] [0-9a-f]{10} - GET \/_all_dbs\?x=2 401 /, 'a failed login is anonymous');
    assert.ok(!log.includes(PASSWORD), 'the password is never logged');
    assert.ok(!log.includes(Buffer.from(`boss:${PASSWORD}`).toString('base64')), 'nor the Authorization header');

    // back to warning, live
    await config('log', 'level', 'warning');
    mark = since();
    await fetch(url('/_all_dbs?x=3'), { headers: auth });
    await sleep(100);
    assert.doesNotMatch(log.slice(mark), /x=3/);

    // slow requests (time to the reply's head): 5000 docs in one _bulk_docs take longer than
    // 50 ms (a sanitizer build: far longer), a GET /_up does not
    await fetch(url('/slowdb'), { method: 'PUT', headers: auth });
    await config('settee', 'slow_request_ms', '50');
    const docs = Array.from({ length: 5000 }, (_, i) => ({ _id: `d${i}`, n: i, text: 'x'.repeat(100) }));
    const bulk = (q) => fetch(url(`/slowdb/_bulk_docs?${q}`), {
      method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' }, body: JSON.stringify({ docs }),
    });
    mark = since();
    await bulk('slow=1');
    await fetch(url('/_up?quick=1'), { headers: auth });
    await sleep(100);
    const slow = log.slice(mark);
    assert.match(slow, /\[warning\] slow request [0-9a-f]{10} boss POST \/slowdb\/_bulk_docs\?slow=1 201 [0-9.]+ms/);
    assert.doesNotMatch(slow, /quick=1/);
    await config('settee', 'slow_request_ms', '0');
    mark = since();
    docs.forEach((d) => { d._id += 'b'; });
    await bulk('off=1');
    await sleep(100);
    assert.doesNotMatch(log.slice(mark), /off=1/, 'threshold 0 turns it off');
  } finally {
    child.kill('SIGTERM');
    await new Promise((res) => child.on('exit', res));
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.ok(!/ERROR: (Address|Leak)Sanitizer|runtime error/.test(log), log);
});
