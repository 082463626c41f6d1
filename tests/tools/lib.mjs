// Helpers of the tool tests: settee servers of their own on free loopback ports (stopped by
// pid, their logs checked for sanitizer reports), admin calls, and the tools themselves.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
export const BIN = path.resolve(ROOT, process.env.SETTEE_BIN_DIR || 'build/asan');
export const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'settee-backup-test-'));
const servers = [];
export const T = { timeout: 180000 };

export async function cleanup() {
  for (const s of servers) await s.stop();
  // the servers are sanitizer builds: their reports go to their logs
  for (const s of servers) {
    const log = fs.readFileSync(path.join(TMP, `${s.name}.log`), 'utf8');
    assert.doesNotMatch(log, /ERROR: (Address|Leak)Sanitizer|runtime error:/, `server ${s.name}: ${log.slice(0, 3000)}`);
    if (!s.killed) assert.equal(s.child.exitCode, 0, `server ${s.name} exited with ${s.child.exitCode}`);
  }
  fs.rmSync(TMP, { recursive: true, force: true });
}

const freePort = () => new Promise((resolve) => {
  const s = net.createServer();
  s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
});

// wrap: a command that execs settee in its own place (e.g. ['prlimit', '--nofile=32:96']),
// so that the child's pid stays the server's; binDir: another build's folder (the memory
// test runs the optimized build: the sanitizers' allocator keeps freed memory in quarantine)
export async function startServer(dataDir, name, extraIni = '', { wrap = [], binDir = BIN } = {}) {
  const port = await freePort();
  const ini = path.join(TMP, `${name}.ini`);
  fs.writeFileSync(ini, '[log]\nlevel = warning\n[admins]\nadmin = admin\n' + extraIni);
  const log = fs.openSync(path.join(TMP, `${name}.log`), 'a');
  const argv = [path.join(binDir, 'settee'), '--bind', '127.0.0.1', '--port', String(port), '--data-dir', dataDir, '--config', ini];
  const cmd = [...wrap, ...argv];
  const child = spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', log, log] });
  const base = `http://127.0.0.1:${port}`;
  const srv = {
    base, url: `http://admin:admin@127.0.0.1:${port}`, child, name,
    async kill9() {
      srv.killed = true;
      const done = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await done;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const done = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await done;
    },
  };
  servers.push(srv);
  for (let i = 0; i < 100; i++) {
    try { if ((await fetch(`${base}/_up`)).ok) return srv; } catch { /* not yet */ }
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`settee ${name} did not start: ${fs.readFileSync(path.join(TMP, `${name}.log`), 'utf8')}`);
}

const AUTH = { authorization: 'Basic ' + Buffer.from('admin:admin').toString('base64') };
export async function call(srv, method, p, body) {
  const r = await fetch(srv.base + p, {
    method, headers: { ...AUTH, 'content-type': 'application/json', accept: 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, json, text };
}

export function run(tool, args) {
  return new Promise((resolve) => {
    const c = spawn(path.join(BIN, tool), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    c.stdout.on('data', (d) => { out += d; });
    c.stderr.on('data', (d) => { err += d; });
    c.on('exit', (code) => resolve({ code, out, err }));
  });
}

// the content a restore must reproduce: all docs with their leaves, and _local docs
export async function snapshotDb(srv, db) {
  const all = await call(srv, 'GET', `/${db}/_all_docs`);
  const docs = {};
  for (const row of all.json.rows) {
    const r = await call(srv, 'GET', `/${db}/${encodeURIComponent(row.id)}?open_revs=all&revs=true&attachments=true`);
    docs[row.id] = r.json.map((x) => x.ok).sort((a, b) => (a._rev < b._rev ? -1 : 1));
  }
  const local = await call(srv, 'GET', `/${db}/_local_docs?include_docs=true`);
  return { docs, local: local.json.rows.map((r) => r.doc) };
}

