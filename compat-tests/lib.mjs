// Shared helpers for the compat tests. COUCH_URL points at the server under test
// (settee started by tools/run-tests.sh, or a real CouchDB: http://admin:pw@127.0.0.1:5984).
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);

export const COUCH_URL = (process.env.COUCH_URL || 'http://127.0.0.1:5984').replace(/\/$/, '');
const parsed = new URL(COUCH_URL);
const AUTH = parsed.username
  ? 'Basic ' + Buffer.from(decodeURIComponent(parsed.username) + ':' + decodeURIComponent(parsed.password)).toString('base64')
  : null;
export const BASE = `${parsed.protocol}//${parsed.host}`;
// The server admin's credentials from COUCH_URL (null without any) and its Authorization value.
export const ADMIN = parsed.username
  ? { username: decodeURIComponent(parsed.username), password: decodeURIComponent(parsed.password) }
  : null;
export const ADMIN_AUTH = AUTH;
export const basicAuth = (name, password) => 'Basic ' + Buffer.from(`${name}:${password}`, 'utf8').toString('base64');

// fetch against the server; path is already percent-encoded. Returns
// {status, headers, text, json} with json parsed when the body is JSON.
export async function req(method, path, { body, headers = {}, raw = false } = {}) {
  const h = { Accept: 'application/json', ...headers };
  if (AUTH && !h.Authorization) h.Authorization = AUTH;
  let payload = body;
  if (body !== undefined && typeof body !== 'string' && !(body instanceof Uint8Array) && !Buffer.isBuffer(body)) {
    payload = JSON.stringify(body);
    if (!h['Content-Type']) h['Content-Type'] = 'application/json';
  }
  const res = await fetch(BASE + path, { method, headers: h, body: payload });
  const buf = Buffer.from(await res.arrayBuffer());
  let json;
  const ct = res.headers.get('content-type') || '';
  if (!raw && ct.includes('json') && buf.length) {
    try { json = JSON.parse(buf.toString('utf8')); } catch { json = undefined; }
  }
  return { status: res.status, headers: res.headers, buf, text: buf.toString('utf8'), json };
}

// Is the server under test settee (GET / names it in vendor.name)? Lines and tests that cover
// settee's deliberate differences from CouchDB ask this; cached.
let setteeP;
export function isSettee() {
  if (!setteeP) setteeP = req('GET', '/').then((r) => r.json?.vendor?.name === 'settee', () => false);
  return setteeP;
}

let counter = 0;
// A fresh database name per test, unique across runs.
export function dbName(prefix = 'ct') {
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${counter++}`;
}
export async function freshDb(prefix) {
  const name = dbName(prefix);
  const r = await req('PUT', '/' + encodeURIComponent(name));
  if (r.status !== 201) throw new Error(`create ${name}: ${r.status} ${r.text}`);
  return name;
}
export async function dropDb(name) {
  await req('DELETE', '/' + encodeURIComponent(name));
}

// PouchDB 9 without native modules: core + http + memory + replication + find.
export const PouchDB = require('pouchdb-core')
  .plugin(require('pouchdb-adapter-http'))
  .plugin(require('pouchdb-adapter-memory'))
  .plugin(require('pouchdb-replication'))
  .plugin(require('pouchdb-find'));

// A PouchDB handle on a remote database of the server under test.
export function remote(name) {
  return new PouchDB(COUCH_URL + '/' + encodeURIComponent(name), { skip_setup: true });
}
let memCounter = 0;
export function memory(prefix = 'mem') {
  return new PouchDB(`${prefix}_${process.pid}_${memCounter++}`, { adapter: 'memory' });
}
