// Extra helpers for the server/db/doc/bulk/attachment compat tests (00–60).
// Everything here talks plain HTTP to COUCH_URL; nothing is settee-specific.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import crypto from 'node:crypto';
import { req, freshDb, dropDb, COUCH_URL } from './lib.mjs';

const parsed = new URL(COUCH_URL);
export const HOST = parsed.hostname;
export const PORT = Number(parsed.port || (parsed.protocol === 'https:' ? 443 : 80));
export const AUTH = parsed.username
  ? 'Basic ' + Buffer.from(decodeURIComponent(parsed.username) + ':' + decodeURIComponent(parsed.password)).toString('base64')
  : null;

export const HEX32 = /^[0-9a-f]{32}$/;
export const REV = /^[1-9][0-9]*-[0-9a-f]{32}$/;
export const T = { timeout: 30000 };

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const enc = encodeURIComponent;

// Run fn(db) with a fresh database that is dropped afterwards, whatever happens.
export async function withDb(fn, prefix) {
  const db = await freshDb(prefix);
  try {
    return await fn(db, '/' + enc(db));
  } finally {
    await dropDb(db);
  }
}

// Header assertions CouchDB 3.4.3 shows on every JSON reply (golden http-shapes).
export function assertJsonHeaders(r, what = '') {
  const ct = r.headers.get('content-type') || '';
  assert.match(ct, /^application\/json/, `content-type of ${what}: ${ct}`);
  assert.equal(r.headers.get('cache-control'), 'must-revalidate', `cache-control of ${what}`);
}

// Status + exact {error, reason} (reason omitted → only error is checked).
export function assertError(r, status, error, reason) {
  assert.equal(r.status, status, `status (body: ${r.text.slice(0, 300)})`);
  assert.ok(r.json && typeof r.json === 'object', `JSON error body expected, got: ${r.text.slice(0, 300)}`);
  assert.equal(r.json.error, error, `error (body: ${r.text.slice(0, 300)})`);
  if (reason instanceof RegExp) assert.match(String(r.json.reason), reason);
  else if (reason !== undefined) assert.equal(r.json.reason, reason);
}

export const CONFLICT = { error: 'conflict', reason: 'Document update conflict.' };
export const DB_MISSING = { error: 'not_found', reason: 'Database does not exist.' };

// PUT a JSON doc and return its new rev (asserting success).
export async function putDoc(db, id, body, query = '') {
  const r = await req('PUT', `/${enc(db)}/${enc(id)}${query}`, { body });
  assert.ok(r.status === 201 || r.status === 200 || r.status === 202, `PUT ${id}: ${r.status} ${r.text}`);
  return r.json.rev;
}

export async function getDoc(db, id, query = '') {
  return req('GET', `/${enc(db)}/${enc(id)}${query}`);
}

export async function bulk(db, body) {
  return req('POST', `/${enc(db)}/_bulk_docs`, { body });
}

// Repeat fn until it returns truthy or the time is up; returns the last value.
export async function eventually(fn, ms = 10000, step = 100) {
  const end = Date.now() + ms;
  let v;
  for (;;) {
    v = await fn();
    if (v || Date.now() > end) return v;
    await sleep(step);
  }
}

// POST _compact (202) and wait until GET db says compact_running:false.
// `done` (optional) is polled as well, so a compaction that starts late is still waited for.
export async function compact(db, done) {
  const r = await req('POST', `/${enc(db)}/_compact`, { body: {} });
  assert.equal(r.status, 202, `_compact: ${r.status} ${r.text}`);
  assert.deepEqual(r.json, { ok: true });
  await sleep(50);
  await eventually(async () => {
    const i = await req('GET', `/${enc(db)}`);
    if (i.json.compact_running !== false) return false;
    return done ? await done() : true;
  }, 15000, 100);
}

export function md5b64(buf) {
  return crypto.createHash('md5').update(buf).digest('base64');
}

export function randomBytes(n, seed = 1) {
  // Deterministic pseudo-random bytes (xorshift), incompressible enough.
  const b = Buffer.alloc(n);
  let x = seed * 2654435761 >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

// Raw HTTP through node:http: no automatic decompression, exact bytes either way.
export function rawHttp(method, path, { headers = {}, body, timeout = 20000 } = {}) {
  return new Promise((resolve, reject) => {
    const h = { ...headers };
    if (AUTH && !h.Authorization) h.Authorization = AUTH;
    if (body !== undefined && h['Content-Length'] === undefined) h['Content-Length'] = Buffer.byteLength(body);
    const rq = http.request({ host: HOST, port: PORT, method, path, headers: h, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const buf = Buffer.concat(chunks);
        let json;
        if ((res.headers['content-type'] || '').includes('json') && buf.length) {
          try { json = JSON.parse(buf.toString('utf8')); } catch { json = undefined; }
        }
        resolve({ status: res.statusCode, headers: res.headers, buf, text: buf.toString('utf8'), json });
      });
      res.on('error', reject);
    });
    rq.setTimeout(timeout, () => rq.destroy(new Error(`timeout ${method} ${path}`)));
    rq.on('error', reject);
    if (body !== undefined) rq.write(body);
    rq.end();
  });
}

// Send arbitrary bytes on a fresh TCP connection; collect whatever comes back until the
// server closes or `timeout` ms pass. `halfClose` ends our side after writing.
// Returns {data: Buffer, status: number|null, closed: boolean, error}.
// `pauseMs` waits after the first part (the headers); `stopOnData` stops writing as soon as the
// server has answered (an early 413 followed by a close would otherwise turn into a reset).
export function rawSocket(parts, { timeout = 5000, halfClose = true, pauseMs = 0, stopOnData = false } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: HOST, port: PORT });
    const chunks = [];
    let done = false;
    let error = null;
    const finish = (closed) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      const data = Buffer.concat(chunks);
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(data.toString('latin1'));
      const sep = data.indexOf('\r\n\r\n');
      const body = sep >= 0 ? data.subarray(sep + 4) : Buffer.alloc(0);
      let json;
      try { json = JSON.parse(body.toString('utf8')); } catch { json = undefined; }
      resolve({ data, status: m ? Number(m[1]) : null, closed, error, json });
    };
    const timer = setTimeout(() => finish(false), timeout);
    sock.on('data', (c) => chunks.push(c));
    sock.on('end', () => finish(true));
    sock.on('close', () => finish(true));
    sock.on('error', (e) => { error = e; finish(true); });
    sock.on('connect', async () => {
      const list = Array.isArray(parts) ? parts : [parts];
      for (let i = 0; i < list.length; i++) {
        if (done || (stopOnData && chunks.length)) break;
        const ok = sock.write(list[i]);
        if (!ok) await new Promise((r) => sock.once('drain', r));
        if (i === 0 && pauseMs) await sleep(pauseMs);
      }
      if (halfClose && !done) sock.end();
    });
  });
}

// Header block for rawSocket requests.
export function rawHead(method, path, headers = {}) {
  const h = { Host: `${HOST}:${PORT}`, ...headers };
  if (AUTH && !h.Authorization) h.Authorization = AUTH;
  return `${method} ${path} HTTP/1.1\r\n` + Object.entries(h).map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n';
}

// The server is still healthy: GET / answers 200 with the welcome object.
export async function assertAlive() {
  const r = await req('GET', '/');
  assert.equal(r.status, 200, 'server stopped serving GET /');
  assert.equal(r.json.couchdb, 'Welcome');
}

// Build a multipart/related body: JSON first, then one part per attachment body.
// atts: [{body: Buffer, headers?: {...}}]
export function multipartRelated(doc, atts, boundary = 'b' + crypto.randomBytes(12).toString('hex')) {
  const parts = [];
  parts.push(Buffer.from(`--${boundary}\r\nContent-Type: application/json\r\n\r\n`));
  parts.push(Buffer.from(JSON.stringify(doc)));
  for (const a of atts) {
    const hdr = Object.entries(a.headers || {}).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    parts.push(Buffer.from(`\r\n--${boundary}\r\n${hdr}\r\n`));
    parts.push(a.body);
  }
  parts.push(Buffer.from(`\r\n--${boundary}--`));
  return { body: Buffer.concat(parts), contentType: `multipart/related; boundary="${boundary}"`, boundary };
}

export function boundaryOf(contentType) {
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType || '');
  return m ? (m[1] || m[2]) : null;
}

// Split a MIME multipart body into [{headers: {lowercase: value}, body: Buffer}].
export function parseMultipart(buf, boundary) {
  const delim = Buffer.from('--' + boundary);
  const parts = [];
  let pos = buf.indexOf(delim);
  assert.ok(pos >= 0, 'no opening boundary');
  for (;;) {
    pos += delim.length;
    if (buf.slice(pos, pos + 2).toString() === '--') break; // closing delimiter
    // skip the CRLF after the boundary line
    if (buf[pos] === 13 && buf[pos + 1] === 10) pos += 2;
    else if (buf[pos] === 10) pos += 1;
    const next = buf.indexOf(delim, pos);
    assert.ok(next >= 0, 'unterminated multipart part');
    let end = next;
    if (buf[end - 2] === 13 && buf[end - 1] === 10) end -= 2;
    else if (buf[end - 1] === 10) end -= 1;
    const part = buf.slice(pos, end);
    let sep, sepLen;
    if (part[0] === 13 && part[1] === 10) { sep = 0; sepLen = 2; } // no headers at all
    else {
      sep = part.indexOf('\r\n\r\n'); sepLen = 4;
      if (sep < 0) { sep = part.indexOf('\n\n'); sepLen = 2; }
    }
    let headers = {};
    let body;
    if (sep < 0) {
      body = part;
    } else {
      for (const line of part.slice(0, sep).toString('latin1').split(/\r?\n/)) {
        const i = line.indexOf(':');
        if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      body = part.slice(sep + sepLen);
    }
    parts.push({ headers, body });
    pos = next;
  }
  return parts;
}
