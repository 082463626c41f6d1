// Helpers of the replicator tests: servers of their own (settee sanitizer builds and
// pouchdb-server from this folder's node_modules, each on a free loopback port, stopped or
// killed by the pid this module spawned), admin calls, test data (conflicts, long histories,
// binary attachments), a comparison of two databases leaf by leaf, and polling of
// _scheduler/_active_tasks.
//
// Environment:
//   SETTEE_BIN_DIR       folder of the settee binary (default build/asan)
//   REPL_DRIVER          "pouchdb-server" starts pouchdb-server where a test asks for settee:
//                        a check of the harness itself against a second implementation of
//                        _replicate (it has no _replicator scheduler, so those tests fail)
//   REPL_WAIT_MS         how long a test waits for a state or a doc to arrive (default 60000)
//   REPL_SETTEE_INI      more ini text for every settee (\n for newlines), for diagnosis, e.g.
//                        "[chttpd_auth_lockout]\nmode = off"
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, '../..');
export const BIN = path.resolve(ROOT, process.env.SETTEE_BIN_DIR || 'build/asan');
export const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'settee-repl-test-'));
export const DRIVER = process.env.REPL_DRIVER || 'settee';
export const WAIT_MS = Number(process.env.REPL_WAIT_MS || 60000);
export const T = { timeout: Math.max(240000, WAIT_MS * 4) };
export const ADMIN = { name: 'admin', password: 'admin' };
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// CouchDB's [replicator] settings (settee reads the same section): a short scheduler interval and
// no start-up jitter, so that jobs start and rotate within a test's time. (The backoff of a
// crashed job is not a setting in CouchDB: 30 s × 2^(crashes-1).)
const SETTEE_INI = '[log]\nlevel = warning\n[admins]\nadmin = admin\n' +
  '[replicator]\ninterval = 1000\nstartup_jitter = 0\nretries_per_request = 2\nconnection_timeout = 5000\n' +
  'checkpoint_interval = 1000\n';

const servers = [];
// the sanitizer settings of tools/run-tests.sh, when the caller has none (h2o's recycle pools
// are suppressed there)
const SAN_ENV = {
  ...process.env,
  ASAN_OPTIONS: process.env.ASAN_OPTIONS || 'detect_leaks=1:abort_on_error=0:halt_on_error=1',
  LSAN_OPTIONS: process.env.LSAN_OPTIONS || `suppressions=${path.join(ROOT, 'tools/lsan.supp')}:print_suppressions=0`,
  UBSAN_OPTIONS: process.env.UBSAN_OPTIONS || 'print_stacktrace=1:halt_on_error=1',
};

const freePort = () => new Promise((resolve) => {
  const s = net.createServer();
  s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
});

function logHasSanitizerReport(text) {
  return /ERROR: (Address|Leak)Sanitizer|runtime error:/.test(text);
}

// A server: { kind, name, port, base (no credentials), url (admin credentials), dbUrl(db),
// stop(), kill(), start() (again, same port and data), logText() }.
function makeServer(kind, name, extraIni) {
  const dir = path.join(TMP, name);
  fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
  const logFile = path.join(dir, 'server.log');
  const srv = {
    kind, name, dir, logFile, port: 0, child: null, killed: false, exits: [],
    get base() { return `http://127.0.0.1:${this.port}`; },
    get url() { return `http://admin:admin@127.0.0.1:${this.port}`; },
    get host() { return `127.0.0.1:${this.port}`; },
    dbUrl(db) { return `${this.url}/${encodeURIComponent(db)}`; },
    logText() { return fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : ''; },
    async start() {
      if (!this.port) this.port = await freePort();
      const log = fs.openSync(logFile, 'a');
      if (kind === 'settee') {
        const ini = path.join(dir, 'settee.ini');
        fs.writeFileSync(ini, SETTEE_INI + (extraIni || '') + (process.env.REPL_SETTEE_INI || '').replaceAll('\\n', '\n'));
        this.child = spawn(path.join(BIN, 'settee'), ['--bind', '127.0.0.1', '--port', String(this.port),
          '--data-dir', path.join(dir, 'data'), '--config', ini], { stdio: ['ignore', log, log], env: SAN_ENV });
      } else {
        // pouchdb-server keeps its config (with the admin, hashed on first start) beside the data
        const cfg = path.join(dir, 'config.json');
        if (!fs.existsSync(cfg)) {
          fs.writeFileSync(cfg, JSON.stringify({ admins: { admin: 'admin' }, log: { file: path.join(dir, 'pouchdb.log'), level: 'warning' } }));
        }
        this.child = spawn(process.execPath, [path.join(HERE, 'node_modules/pouchdb-server/bin/pouchdb-server'),
          '-p', String(this.port), '-o', '127.0.0.1', '-d', path.join(dir, 'data') + '/', '-c', cfg, '-n'],
        { stdio: ['ignore', log, log], cwd: dir });
      }
      fs.closeSync(log);
      const child = this.child;
      child.once('exit', (code, sig) => this.exits.push({ code, sig, killed: this.killed }));
      for (let i = 0; i < 300; i++) {
        try {
          const r = await fetch(`${this.base}/`, { headers: authHeader() });
          if (r.ok) { await r.arrayBuffer(); return this; }
        } catch { /* not yet */ }
        if (child.exitCode !== null || child.signalCode !== null) break;
        await sleep(100);
      }
      throw new Error(`${kind} ${name} did not start on port ${this.port}: ${this.logText().slice(-3000)}`);
    },
    async stop() {
      const c = this.child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const done = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      const t = setTimeout(() => c.kill('SIGKILL'), 30000);
      await done;
      clearTimeout(t);
    },
    // SIGKILL: the peer vanishes mid-request (its exit is not checked at clean-up)
    async kill() {
      const c = this.child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      this.killed = true;
      const done = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      await done;
      this.killed = false;
    },
    async restart() { await this.stop(); return this.start(); },
  };
  servers.push(srv);
  return srv;
}

// settee (or, with REPL_DRIVER=pouchdb-server, pouchdb-server in its place)
export function startSettee(name, extraIni = '') {
  return makeServer(DRIVER === 'pouchdb-server' ? 'pouchdb-server' : 'settee', name, extraIni).start();
}
export function startPouch(name) { return makeServer('pouchdb-server', name).start(); }

// Stops every server; settee's logs must hold no sanitizer report and every settee stopped
// by SIGTERM must have exited with 0.
export async function cleanup() {
  for (const s of servers) await s.stop();
  const problems = [];
  for (const s of servers) {
    if (s.kind !== 'settee') continue;
    const log = s.logText();
    if (logHasSanitizerReport(log)) problems.push(`settee ${s.name}: sanitizer report: ${log.slice(log.search(/ERROR: |runtime error:/), 4000)}`);
    for (const e of s.exits) if (!e.killed && e.code !== 0) problems.push(`settee ${s.name} exited with ${e.code} ${e.sig || ''}: ${log.slice(-1500)}`);
  }
  if (!problems.length && !process.env.REPL_KEEP_TMP) fs.rmSync(TMP, { recursive: true, force: true });
  assert.deepEqual(problems, [], problems.join('\n'));
}

// ---------------------------------------------------------------- HTTP

export const authHeader = (name = ADMIN.name, password = ADMIN.password) =>
  ({ authorization: 'Basic ' + Buffer.from(`${name}:${password}`).toString('base64') });

// One request as the admin (opts.auth: false for none, or other headers). body: a JS value
// (sent as JSON) or a Buffer (sent as is, with opts.type). Returns {status, json, text, buf, headers}.
export async function call(srv, method, p, body, opts = {}) {
  const headers = { accept: 'application/json', ...(opts.auth === false ? {} : authHeader()), ...(opts.headers || {}) };
  let payload;
  if (Buffer.isBuffer(body)) { payload = body; headers['content-type'] = opts.type || 'application/octet-stream'; }
  else if (body !== undefined) { payload = JSON.stringify(body); headers['content-type'] = 'application/json'; }
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), opts.timeout || 600000);
  try {
    const r = await fetch(srv.base + p, { method, headers, body: payload, signal: ctl.signal });
    const buf = Buffer.from(await r.arrayBuffer());
    const text = buf.toString('utf8');
    let json;
    try { json = JSON.parse(text); } catch { json = undefined; }
    return { status: r.status, json, text, buf, headers: r.headers };
  } finally { clearTimeout(timer); }
}

// like call, but a refused connection (a server down) is {status: 0}
export async function tryCall(srv, method, p, body, opts) {
  try { return await call(srv, method, p, body, opts); } catch (e) { return { status: 0, text: String(e), json: undefined }; }
}

export async function createDb(srv, db) {
  const r = await call(srv, 'PUT', `/${encodeURIComponent(db)}`);
  assert.ok(r.status === 201 || r.status === 202, `PUT /${db} on ${srv.name}: ${r.status} ${r.text}`);
}

export async function bulk(srv, db, docs, newEdits = true) {
  const r = await call(srv, 'POST', `/${encodeURIComponent(db)}/_bulk_docs`, newEdits ? { docs } : { docs, new_edits: false });
  assert.ok(r.status === 201 || r.status === 200, `_bulk_docs on ${srv.name}/${db}: ${r.status} ${r.text.slice(0, 500)}`);
  if (newEdits) for (const x of r.json) assert.ok(x.ok, `_bulk_docs: ${JSON.stringify(x)}`);
  return r.json;
}

export async function put(srv, db, id, doc) {
  const r = await call(srv, 'PUT', `/${encodeURIComponent(db)}/${encodeURIComponent(id)}`, doc);
  assert.ok(r.status === 201 || r.status === 202, `PUT ${db}/${id} on ${srv.name}: ${r.status} ${r.text.slice(0, 300)}`);
  return r.json.rev;
}

// POST /_replicate on `driver` (a long one-shot may take minutes)
export function replicate(driver, body) {
  return call(driver, 'POST', '/_replicate', body, { timeout: 900000 });
}

// ---------------------------------------------------------------- test data

export const rand = (n, seed) => {
  // deterministic bytes (a seeded sha256 stream), incompressible like real binaries
  const out = Buffer.alloc(n);
  let off = 0;
  for (let i = 0; off < n; i++) {
    const h = crypto.createHash('sha256').update(`${seed}:${i}`).digest();
    off += h.copy(out, off);
  }
  return out;
};
export const md5 = (buf) => 'md5-' + crypto.createHash('md5').update(buf).digest('base64');
const hex32 = (s) => crypto.createHash('md5').update(s).digest('hex');

// A source database with every kind of content the replicator must carry; returns what it wrote:
// { ids (live), deleted, conflicted, history (id of the 30-edit doc), big (5 MB attachment) }.
//   plain docs p000…, with `type` odd/even; deleted docs; a conflict whose winner is fixed
//   (2-fff… beats 2-000…) with a deleted branch too; a doc edited 30 times; a doc with a small
//   binary and a 5 MB binary attachment; a conflicted doc whose two leaves carry different
//   attachments (written with new_edits:false, inline data).
export async function fillSource(srv, db, { plain = 20, bigBytes = 5 * 1024 * 1024 } = {}) {
  await createDb(srv, db);
  const docs = [];
  for (let i = 0; i < plain; i++) docs.push({ _id: `p${String(i).padStart(3, '0')}`, n: i, type: i % 2 ? 'odd' : 'even', text: `plain doc ${i}` });
  await bulk(srv, db, docs);
  const deleted = [];
  for (let i = 0; i < 3; i++) {
    const id = `del${i}`;
    const rev = await put(srv, db, id, { doomed: i });
    const r = await call(srv, 'DELETE', `/${db}/${id}?rev=${rev}`);
    assert.equal(r.status, 200, `DELETE ${id}: ${r.text}`);
    deleted.push(id);
  }
  // conflicts: three leaves, one of them deleted; the live winner is 2-fff…
  const root = hex32('conf-root');
  await bulk(srv, db, [
    { _id: 'conf', _rev: `2-${'f'.repeat(32)}`, _revisions: { start: 2, ids: ['f'.repeat(32), root] }, side: 'winner' },
    { _id: 'conf', _rev: `2-${'0'.repeat(32)}`, _revisions: { start: 2, ids: ['0'.repeat(32), root] }, side: 'loser' },
    { _id: 'conf', _rev: `3-${hex32('dead')}`, _revisions: { start: 3, ids: [hex32('dead'), hex32('mid'), root] }, _deleted: true },
  ], false);
  // 30 edits
  let rev = await put(srv, db, 'hist30', { edit: 1 });
  for (let e = 2; e <= 30; e++) rev = await put(srv, db, 'hist30', { _rev: rev, edit: e });
  // attachments: small binary + 5 MB binary on one doc
  const small = rand(3000, 'small');
  const big = rand(bigBytes, 'big');
  rev = await put(srv, db, 'att', { kind: 'binary attachments' });
  let r = await call(srv, 'PUT', `/${db}/att/small.bin?rev=${rev}`, small);
  assert.equal(r.status, 201, `small attachment: ${r.text}`);
  r = await call(srv, 'PUT', `/${db}/att/big.bin?rev=${r.json.rev}`, big);
  assert.equal(r.status, 201, `5 MB attachment: ${r.text}`);
  // attachments on conflicting revisions
  const a1 = rand(20000, 'leaf-a'), a2 = rand(30000, 'leaf-b');
  const croot = hex32('attconf-root');
  await bulk(srv, db, [
    { _id: 'attconf', _rev: `2-${'e'.repeat(32)}`, _revisions: { start: 2, ids: ['e'.repeat(32), croot] }, side: 'a',
      _attachments: { 'leaf.bin': { content_type: 'application/octet-stream', data: a1.toString('base64') } } },
    { _id: 'attconf', _rev: `2-${'1'.repeat(32)}`, _revisions: { start: 2, ids: ['1'.repeat(32), croot] }, side: 'b',
      _attachments: { 'leaf.bin': { content_type: 'application/x-other', data: a2.toString('base64') }, 'only-b.txt': { content_type: 'text/plain', data: Buffer.from('b only').toString('base64') } } },
  ], false);
  // a design doc travels too (admin credentials)
  await put(srv, db, '_design/f', { filters: { even: 'function(doc, req) { return doc.type === "even"; }' } });
  const ids = [...docs.map((d) => d._id), 'conf', 'hist30', 'att', 'attconf', '_design/f'];
  return { ids, deleted, conflicted: ['conf', 'attconf'], history: 'hist30', small, big, leafA: a1, leafB: a2 };
}

// ---------------------------------------------------------------- comparison

// Every doc id a db has seen (deleted ones too), from _changes.
export async function changedIds(srv, db) {
  const r = await call(srv, 'GET', `/${encodeURIComponent(db)}/_changes?style=all_docs`);
  assert.equal(r.status, 200, `_changes of ${srv.name}/${db}: ${r.text.slice(0, 300)}`);
  return r.json.results.map((x) => x.id).sort();
}

// What a replica must agree on for one doc: the winner with _conflicts/_deleted_conflicts, and
// every leaf with its _revisions and attachment stubs (digest, length, type).
// Across two implementations (settee and pouchdb-server) three things legitimately differ and
// are left out: the reason of a 404 (deleted/missing), _deleted_conflicts (PouchDB has none) and
// the digest of a compressible attachment (CouchDB and settee digest the gzip-stored bytes,
// PouchDB the plain ones); the lengths are compared, and the bytes by assertAttachment.
export async function docState(srv, db, id, cross = false) {
  const p = `/${encodeURIComponent(db)}/${encodeURIComponent(id)}`;
  const w = await call(srv, 'GET', `${p}?conflicts=true&deleted_conflicts=true`);
  const leaves = await call(srv, 'GET', `${p}?open_revs=all&revs=true`);
  assert.equal(leaves.status, 200, `open_revs=all of ${srv.name}/${db}/${id}: ${leaves.status} ${leaves.text.slice(0, 300)}`);
  const clean = (doc) => {
    const out = { ...doc };
    if (out._attachments) {
      out._attachments = Object.fromEntries(Object.entries(out._attachments).sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([n, a]) => [n, { content_type: a.content_type, ...(cross ? {} : { digest: a.digest }), length: a.length, stub: a.stub }]));
    }
    return out;
  };
  const winner = w.status === 200
    ? { status: 200, ...clean(w.json), _conflicts: (w.json._conflicts || []).slice().sort(), _deleted_conflicts: cross ? [] : (w.json._deleted_conflicts || []).slice().sort() }
    : { status: w.status, ...(cross ? {} : { error: w.json && w.json.reason }) };
  return {
    winner,
    leaves: leaves.json.map((x) => (x.ok ? clean(x.ok) : x)).sort((a, b) => (a._rev < b._rev ? -1 : 1)),
  };
}

// Asserts that tgt holds the same docs (ids: all of src's, or the given list) as src, leaf by leaf.
export async function assertSameDocs(src, srcDb, tgt, tgtDb, ids) {
  const list = ids || (await changedIds(src, srcDb)).filter((id) => !id.startsWith('_local/'));
  const diffs = [];
  const cross = src.kind !== tgt.kind;
  for (const id of list) {
    const a = await docState(src, srcDb, id, cross);
    const b = await docState(tgt, tgtDb, id, cross);
    try { assert.deepEqual(b, a); } catch { diffs.push(`${id}:\n  source ${JSON.stringify(a).slice(0, 800)}\n  target ${JSON.stringify(b).slice(0, 800)}`); }
  }
  assert.deepEqual(diffs, [], `${tgt.name}/${tgtDb} differs from ${src.name}/${srcDb} in ${diffs.length} docs:\n${diffs.slice(0, 5).join('\n')}`);
  return list.length;
}

// The attachment bytes themselves (digests could be copied without the data)
export async function assertAttachment(srv, db, id, name, bytes, rev) {
  const r = await call(srv, 'GET', `/${encodeURIComponent(db)}/${encodeURIComponent(id)}/${name}${rev ? `?rev=${rev}` : ''}`, undefined, { headers: { accept: '*/*' } });
  assert.equal(r.status, 200, `GET ${srv.name}/${db}/${id}/${name}: ${r.status} ${r.text.slice(0, 200)}`);
  assert.equal(r.buf.length, bytes.length, `${id}/${name} length`);
  assert.ok(r.buf.equals(bytes), `${id}/${name}: bytes differ`);
}

export async function docCount(srv, db) {
  const r = await call(srv, 'GET', `/${encodeURIComponent(db)}`);
  return r.status === 200 ? r.json.doc_count : -1;
}

// ---------------------------------------------------------------- waiting

// Polls fn until it returns a truthy value; fails with what() after ms.
export async function waitFor(what, fn, ms = WAIT_MS, every = 200) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e; }
    if (Date.now() > end) assert.fail(`waited ${ms} ms for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await sleep(every);
  }
}

export async function waitDoc(srv, db, id, pred = (d) => d, ms) {
  return waitFor(`${srv.name}/${db}/${id}`, async () => {
    const r = await tryCall(srv, 'GET', `/${encodeURIComponent(db)}/${encodeURIComponent(id)}`);
    return r.status === 200 && pred(r.json) ? r.json : false;
  }, ms);
}

// GET /_scheduler/docs/_replicator/<id> (null while 404)
export async function schedDoc(srv, docId, db = '_replicator') {
  const r = await tryCall(srv, 'GET', `/_scheduler/docs/${encodeURIComponent(db)}/${encodeURIComponent(docId)}`);
  return r.status === 200 ? r.json : null;
}

// Polls a _replicator doc's scheduler entry until pred holds; returns it with the states seen.
export async function waitSchedState(srv, docId, pred, what, ms) {
  const seen = [];
  const got = await waitFor(`_scheduler/docs/_replicator/${docId} ${what} (states seen: ${seen.join(' → ')})`, async () => {
    const d = await schedDoc(srv, docId);
    if (d && seen[seen.length - 1] !== d.state) seen.push(d.state);
    return d && pred(d) ? d : false;
  }, ms);
  return { doc: got, seen };
}

export async function schedJobs(srv) {
  const r = await call(srv, 'GET', '/_scheduler/jobs');
  assert.equal(r.status, 200, `_scheduler/jobs: ${r.status} ${r.text.slice(0, 300)}`);
  return r.json.jobs;
}

export async function replicationTasks(srv) {
  const r = await call(srv, 'GET', '/_active_tasks');
  assert.equal(r.status, 200, `_active_tasks: ${r.status} ${r.text.slice(0, 300)}`);
  return r.json.filter((t) => t.type === 'replication');
}

// A URL as CouchDB shows it in _scheduler and _active_tasks: no credentials, a trailing slash.
export const shown = (srv, db) => `${srv.base}/${encodeURIComponent(db)}/`;
