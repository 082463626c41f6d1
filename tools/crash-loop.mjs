// Crash loop over HTTP: several clients write at once (single-doc PUTs, _bulk_docs,
// attachments, _local docs) while settee is killed with SIGKILL at a random moment;
// after each kill settee restarts on the same data and every write it acknowledged must
// be there; at the end (and every 10 cycles) settee-check must find the store clean.
//   node tools/crash-loop.mjs [--cycles N] [--bin build/asan/settee] [--check build/settee-check]
// Last line: "N passed, N failed" (one check per cycle plus each settee-check run).
// What counts as present: a doc's acknowledged rev is its current rev or in its
// _revisions (a later write may have committed without its answer reaching the client);
// an attachment written with an acknowledged rev is in every later rev with its bytes
// (each checked after the cycle that wrote it, then in a random sample of 50 a cycle);
// a _local doc holds a counter at least the acknowledged one.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, openSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const CYCLES = Number(opt('--cycles', 100));
const BIN = opt('--bin', 'build/asan/settee');
const CHECK = opt('--check', 'build/settee-check');
const CLIENTS = 4;
// the sanitizer settings of tools/run-tests.sh when run alone (h2o's own pools suppressed)
process.env.ASAN_OPTIONS ??= 'detect_leaks=1:abort_on_error=0:halt_on_error=1';
process.env.LSAN_OPTIONS ??= `suppressions=${new URL('lsan.supp', import.meta.url).pathname}:print_suppressions=0`;
process.env.UBSAN_OPTIONS ??= 'print_stacktrace=1:halt_on_error=1';
const AUTH = 'Basic ' + Buffer.from('admin:admin').toString('base64');

const dir = mkdtempSync(join(tmpdir(), 'settee-crashloop-'));
writeFileSync(join(dir, 'test.ini'), '[log]\nlevel = warning\n[admins]\nadmin = admin\n');
const port = await new Promise((res) => {
  const s = createServer();
  s.listen(0, '127.0.0.1', () => {
    const p = s.address().port;
    s.close(() => res(p));
  });
});
const base = `http://127.0.0.1:${port}`;
let passed = 0;
let failed = 0;
const ok = (m) => {
  passed++;
  console.log(`ok   ${m}`);
};
const bad = (m) => {
  failed++;
  console.log(`FAIL ${m}`);
};

async function req(method, path, body, headers = {}) {
  const h = { authorization: AUTH, ...headers };
  if (body !== undefined && !(body instanceof Buffer)) {
    h['content-type'] = 'application/json';
    body = JSON.stringify(body);
  }
  const r = await fetch(base + path, { method, headers: h, body, signal: AbortSignal.timeout(10000) });
  const text = await r.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: r.status, json, text };
}

let server = null;
const log = openSync(join(dir, 'server.log'), 'a');
async function start() {
  server = spawn(BIN, ['--bind', '127.0.0.1', '--port', String(port), '--data-dir', join(dir, 'db'), '--config', join(dir, 'test.ini')], {
    stdio: ['ignore', log, log],
  });
  for (let i = 0; i < 200; i++) {
    try {
      const r = await fetch(base + '/_up');
      if (r.ok) return;
    } catch {}
    if (server.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('settee did not start: see ' + join(dir, 'server.log'));
}
function exited(p) {
  return new Promise((res) => (p.exitCode !== null || p.signalCode !== null ? res() : p.once('exit', res)));
}

// What the clients were told, per client; checked after each kill.
const acked = { docs: new Map(), atts: [], locals: new Map() };
let seq = 0;
let attsChecked = 0;

async function client(c, stop) {
  let n = 0;
  const mine = []; // [id, rev] of docs this client edits
  while (!stop.done) {
    n++;
    const kind = n % 4;
    try {
      if (kind === 0 || mine.length === 0) {
        const id = `c${c}-d${seq++}`;
        const r = await req('PUT', `/crash/${id}`, { v: n, pad: 'x'.repeat(n % 500) });
        if (r.status === 201) {
          acked.docs.set(id, r.json.rev);
          mine.push([id, r.json.rev]);
        }
      } else if (kind === 1) {
        const docs = [];
        for (let k = 0; k < 5; k++) docs.push({ _id: `c${c}-b${seq++}`, v: n });
        const d = mine[n % mine.length];
        docs.push({ _id: d[0], _rev: d[1], v: n });
        const r = await req('POST', '/crash/_bulk_docs', { docs });
        if (r.status === 201) {
          for (const row of r.json) {
            if (!row.ok) continue;
            acked.docs.set(row.id, row.rev);
            const m = mine.find((x) => x[0] === row.id);
            if (m) m[1] = row.rev;
            else mine.push([row.id, row.rev]);
          }
        }
      } else if (kind === 2) {
        const d = mine[n % mine.length];
        const name = `a${seq++}.bin`;
        const bytes = Buffer.from(`attachment ${name} of ${d[0]} `.repeat(1 + (n % 40)));
        const r = await req('PUT', `/crash/${d[0]}/${name}?rev=${d[1]}`, bytes, { 'content-type': 'application/octet-stream' });
        if (r.status === 201) {
          d[1] = r.json.rev;
          acked.docs.set(d[0], r.json.rev);
          acked.atts.push({ id: d[0], name, rev: r.json.rev, len: bytes.length, head: bytes.subarray(0, 24).toString() });
        }
      } else {
        const id = `ck${c}`;
        const cur = await req('GET', `/crash/_local/${id}`);
        const count = cur.status === 200 ? cur.json.count + 1 : 1;
        const body = { count };
        if (cur.status === 200) body._rev = cur.json._rev;
        const r = await req('PUT', `/crash/_local/${id}`, body);
        if (r.status === 201) acked.locals.set(id, count);
      }
    } catch {
      // the kill: connection refused or reset; nothing was acknowledged
      if (stop.done) return;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

async function verify(cycle) {
  const faults = [];
  const ids = [...acked.docs.keys()];
  for (let i = 0; i < ids.length; i += 200) {
    const keys = ids.slice(i, i + 200);
    const r = await req('POST', '/crash/_bulk_get?revs=true', { docs: keys.map((id) => ({ id })) });
    for (const res of r.json.results) {
      const doc = res.docs[0].ok;
      const want = acked.docs.get(res.id);
      if (!doc) {
        faults.push(`${res.id}: missing (acknowledged ${want})`);
        continue;
      }
      const [gen, hash] = want.split('-');
      const revs = doc._revisions;
      const idx = revs.start - Number(gen);
      if (doc._rev !== want && !(idx >= 0 && revs.ids[idx] === hash)) faults.push(`${res.id}: ${doc._rev} does not hold acknowledged ${want}`);
    }
  }
  // attachments acknowledged since the last check, and a sample of the older ones (all of
  // them every cycle would make the loop quadratic)
  const older = acked.atts.slice(0, attsChecked);
  const sample = acked.atts.slice(attsChecked);
  for (let k = 0; k < 50 && older.length; k++) sample.push(older[Math.floor(Math.random() * older.length)]);
  attsChecked = acked.atts.length;
  for (const a of sample) {
    const r = await fetch(`${base}/crash/${a.id}/${a.name}`, { headers: { authorization: AUTH } });
    const b = Buffer.from(await r.arrayBuffer());
    if (r.status !== 200 || b.length !== a.len || b.subarray(0, 24).toString() !== a.head) faults.push(`${a.id}/${a.name}: ${r.status}, ${b.length} bytes (acknowledged ${a.len})`);
  }
  for (const [id, count] of acked.locals) {
    const r = await req('GET', `/crash/_local/${id}`);
    if (r.status !== 200 || r.json.count < count) faults.push(`_local/${id}: ${r.status} ${r.text.slice(0, 80)} (acknowledged count ${count})`);
  }
  if (faults.length) bad(`cycle ${cycle}: ${faults.length} acknowledged writes lost: ${faults.slice(0, 5).join('; ')}`);
  else ok(`cycle ${cycle}: ${acked.docs.size} docs, ${acked.atts.length} attachments, ${acked.locals.size} _local docs acknowledged and present`);
}

function check(cycle) {
  const r = spawnSync(CHECK, ['-q', join(dir, 'db')], { encoding: 'utf8' });
  if (r.status === 0) ok(`settee-check clean after cycle ${cycle}`);
  else bad(`settee-check after cycle ${cycle}: exit ${r.status}: ${(r.stdout + r.stderr).slice(0, 400)}`);
}

try {
  await start();
  await req('PUT', '/crash');
  for (let cycle = 1; cycle <= CYCLES; cycle++) {
    const stop = { done: false };
    const clients = [];
    for (let c = 0; c < CLIENTS; c++) clients.push(client(c, stop));
    await new Promise((r) => setTimeout(r, 150 + Math.floor(Math.random() * 600)));
    server.kill('SIGKILL');
    await exited(server);
    stop.done = true;
    await Promise.all(clients);
    if (cycle % 10 === 0 || cycle === CYCLES) check(cycle);
    await start();
    await verify(cycle);
  }
  server.kill('SIGTERM');
  await exited(server);
  if (server.exitCode !== 0) bad(`settee exited with ${server.exitCode ?? server.signalCode} on SIGTERM`);
  check('the last stop');
} catch (e) {
  bad(String(e));
  if (server && server.exitCode === null) server.kill('SIGKILL');
}
const logText = spawnSync('grep', ['-cE', 'ERROR: (Address|Leak)Sanitizer|runtime error:', join(dir, 'server.log')], { encoding: 'utf8' }).stdout.trim();
if (logText !== '0' && logText !== '') bad(`sanitizer reports in ${join(dir, 'server.log')}`);
if (failed === 0) rmSync(dir, { recursive: true, force: true });
else console.log(`data and log kept in ${dir}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
