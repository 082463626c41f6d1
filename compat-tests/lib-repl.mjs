// Helpers for the replication-protocol compat tests (70-91): raw HTTP with full control of
// headers (no default Accept-Encoding, no automatic decompression), streaming responses
// (longpoll, continuous, eventsource), MIME multipart parsing/building, bounded waits.
import http from 'node:http';
import https from 'node:https';
import { createHash, randomBytes } from 'node:crypto';
import { COUCH_URL, BASE, req, freshDb, dropDb } from './lib.mjs';

const parsed = new URL(COUCH_URL);
export const AUTH = parsed.username
  ? 'Basic ' + Buffer.from(decodeURIComponent(parsed.username) + ':' + decodeURIComponent(parsed.password)).toString('base64')
  : null;
const transport = parsed.protocol === 'https:' ? https : http;
// Keep-alive off: every request gets its own connection, so a hanging feed never blocks others.
const agent = new transport.Agent({ keepAlive: false });

export { BASE, COUCH_URL, req, freshDb, dropDb };

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function buildRequest(method, path, { headers = {}, body } = {}) {
  const h = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && v !== null) h[k] = v;
  const lower = Object.keys(h).map((k) => k.toLowerCase());
  if (AUTH && !lower.includes('authorization')) h.Authorization = AUTH;
  let payload = null;
  if (body !== undefined && body !== null) {
    if (Buffer.isBuffer(body)) payload = body;
    else if (body instanceof Uint8Array) payload = Buffer.from(body);
    else if (typeof body === 'string') payload = Buffer.from(body, 'utf8');
    else {
      payload = Buffer.from(JSON.stringify(body), 'utf8');
      if (!lower.includes('content-type')) h['Content-Type'] = 'application/json';
    }
    h['Content-Length'] = String(payload.length);
  }
  return {
    options: {
      method,
      host: parsed.hostname,
      port: parsed.port || (parsed.protocol === 'https:' ? 443 : 80),
      path,
      headers: h,
      agent,
    },
    payload,
  };
}

// One request, whole body buffered. Headers are sent exactly as given (plus Authorization,
// Content-Length). Returns {status, headers (lower-case keys), rawHeaders, buf, text, json}.
export function rawReq(method, path, { headers = {}, body, timeout = 30000 } = {}) {
  const { options, payload } = buildRequest(method, path, { headers, body });
  return new Promise((resolve, reject) => {
    const r = transport.request(options, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        const buf = Buffer.concat(chunks);
        const text = buf.toString('utf8');
        let json;
        const ct = res.headers['content-type'] || '';
        if (ct.includes('json') && buf.length) {
          try { json = JSON.parse(text); } catch { json = undefined; }
        }
        resolve({ status: res.statusCode, headers: res.headers, rawHeaders: res.rawHeaders, buf, text, json });
      });
      res.on('error', (e) => { clearTimeout(timer); reject(e); });
    });
    const timer = setTimeout(() => {
      r.destroy(new Error(`${method} ${path}: no complete answer within ${timeout} ms`));
    }, timeout);
    r.on('error', (e) => { clearTimeout(timer); reject(e); });
    if (payload) r.write(payload);
    r.end();
  });
}

// A streaming request: returns {response: Promise<{status, headers}>, chunks: [{t, data}],
// text(), waitFor(pred, ms), done: Promise, abort()}. `t` is the arrival time (ms, performance.now()).
export function streamReq(method, path, { headers = {}, body, timeout = 60000 } = {}) {
  const { options, payload } = buildRequest(method, path, { headers, body });
  const chunks = [];
  const waiters = new Set();
  let ended = false;
  let error = null;
  let resolveResponse, rejectResponse, resolveDone;
  const response = new Promise((a, b) => { resolveResponse = a; rejectResponse = b; });
  const done = new Promise((a) => { resolveDone = a; });
  response.catch(() => {});
  const notify = () => { for (const w of [...waiters]) w(); };
  const r = transport.request(options, (res) => {
    resolveResponse({ status: res.statusCode, headers: res.headers, t: performance.now() });
    res.on('data', (c) => { chunks.push({ t: performance.now(), data: c }); notify(); });
    res.on('end', () => { ended = true; clearTimeout(timer); resolveDone({ ended: true }); notify(); });
    res.on('error', (e) => { error = e; ended = true; clearTimeout(timer); resolveDone({ ended: false, error: e }); notify(); });
    res.on('close', () => { if (!ended) { ended = true; clearTimeout(timer); resolveDone({ ended: false }); notify(); } });
  });
  const timer = setTimeout(() => r.destroy(new Error(`${method} ${path}: stream still open after ${timeout} ms`)), timeout);
  r.on('error', (e) => {
    error = e; ended = true; clearTimeout(timer);
    rejectResponse(e); resolveDone({ ended: false, error: e }); notify();
  });
  if (payload) r.write(payload);
  r.end();
  const s = {
    response,
    chunks,
    done,
    get ended() { return ended; },
    get error() { return error; },
    text() { return Buffer.concat(chunks.map((c) => c.data)).toString('utf8'); },
    // Resolves with true as soon as pred(text) holds, false after ms or when the stream ends without it.
    waitFor(pred, ms) {
      return new Promise((resolve) => {
        const check = () => {
          if (pred(s.text())) { cleanup(); resolve(true); return true; }
          if (ended) { cleanup(); resolve(pred(s.text())); return true; }
          return false;
        };
        const t = setTimeout(() => { cleanup(); resolve(pred(s.text())); }, ms);
        const cleanup = () => { clearTimeout(t); waiters.delete(check); };
        if (!check()) waiters.add(check);
      });
    },
    abort() { clearTimeout(timer); if (!ended) r.destroy(); ended = true; notify(); },
  };
  return s;
}

// Poll fn() until it returns a truthy value; throws after `timeout` ms.
export async function waitFor(fn, { timeout = 10000, interval = 25, what = 'condition' } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await sleep(interval);
  }
}

// Create a db, run fn(name), always delete it.
export async function withDb(fn, prefix) {
  const name = await freshDb(prefix);
  try {
    return await fn(name);
  } finally {
    await dropDb(name);
  }
}

export const enc = encodeURIComponent;
export const dbPath = (db, ...rest) => '/' + enc(db) + rest.map((p) => '/' + p).join('');
// Path of a document; ids starting with _design/ or _local/ keep their slash.
export function docPath(db, id) {
  const m = /^(_design|_local)\/(.*)$/.exec(id);
  const idPart = m ? `${m[1]}/${enc(m[2])}` : enc(id);
  return `/${enc(db)}/${idPart}`;
}

// A synthetic 32-hex rev id: rid('a') -> 'aaaa…' (32 chars); rev(3,'a') -> '3-aaaa…'.
export const rid = (c) => {
  if (!/^[0-9a-f]$/.test(c)) throw new Error('rid: use one hex digit');
  return c.repeat(32);
};
export const rev = (gen, c) => `${gen}-${rid(c)}`;
export const gen = (r) => parseInt(String(r).split('-')[0], 10);

// Write revisions the way a replicator does (_bulk_docs new_edits:false); asserts 201.
export async function putRevs(db, docs) {
  const r = await req('POST', dbPath(db, '_bulk_docs'), { body: { docs, new_edits: false } });
  if (r.status !== 201) throw new Error(`_bulk_docs new_edits=false: ${r.status} ${r.text}`);
  return r.json;
}
// A replicated doc body with a full path: path = ['c','b','a'] newest first, gen = length.
export function pathDoc(id, start, ids, body = {}) {
  return { _id: id, _rev: `${start}-${ids[0]}`, _revisions: { start, ids }, ...body };
}

export async function putDoc(db, id, body) {
  const r = await req('PUT', docPath(db, id), { body });
  if (r.status !== 201 && r.status !== 200) throw new Error(`PUT ${id}: ${r.status} ${r.text}`);
  return r.json.rev;
}
export async function getJson(path) {
  const r = await req('GET', path);
  if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${r.text}`);
  return r.json;
}

// `since` query value for a seq as the server emitted it (string or number), verbatim.
export const sinceParam = (seq) => (typeof seq === 'string' ? enc(seq) : String(seq));

// ---------------------------------------------------------------- multipart
// Boundary from a Content-Type value (quoted or not), or null.
export function boundaryOf(contentType) {
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType || '');
  return m ? (m[1] || m[2]) : null;
}

function indexOf(buf, needle, from) {
  return buf.indexOf(needle, from);
}

// Parse a MIME multipart body. Returns [{headers: {lower-name: value}, body: Buffer}].
// Strict about framing: the body must start with --boundary (after an optional preamble
// line break) and close with --boundary--.
export function parseMultipart(buf, boundary) {
  const delim = Buffer.from('--' + boundary);
  const parts = [];
  let pos = indexOf(buf, delim, 0);
  if (pos < 0) throw new Error('multipart: opening boundary not found');
  let closed = false;
  for (;;) {
    pos += delim.length;
    if (buf.slice(pos, pos + 2).toString() === '--') { closed = true; break; }
    // skip transport padding and CRLF after the boundary line
    while (buf[pos] === 0x20 || buf[pos] === 0x09) pos++;
    if (buf[pos] === 0x0d && buf[pos + 1] === 0x0a) pos += 2;
    else if (buf[pos] === 0x0a) pos += 1;
    else throw new Error('multipart: no line break after boundary');
    const next = indexOf(buf, Buffer.concat([Buffer.from('\r\n'), delim]), pos);
    if (next < 0) throw new Error('multipart: part not terminated by a boundary');
    const part = buf.slice(pos, next);
    let hdrEnd = indexOf(part, Buffer.from('\r\n\r\n'), 0);
    let headerText, body;
    if (part.slice(0, 2).toString() === '\r\n') { headerText = ''; body = part.slice(2); }
    else if (hdrEnd < 0) throw new Error('multipart: part without header terminator');
    else { headerText = part.slice(0, hdrEnd).toString('latin1'); body = part.slice(hdrEnd + 4); }
    const headers = {};
    for (const line of headerText.split('\r\n')) {
      if (!line) continue;
      const i = line.indexOf(':');
      if (i < 0) throw new Error('multipart: bad header line ' + JSON.stringify(line));
      headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    parts.push({ headers, body });
    pos = next + 2;
  }
  if (!closed) throw new Error('multipart: no closing boundary');
  return parts;
}

// Build a multipart body: parts = [{headers: {...}, body: Buffer|string|object}].
// Framing follows CouchDB's couch_httpd_multipart (no trailing CRLF after the closing delimiter).
export function buildMultipart(boundary, parts) {
  const out = [];
  for (const p of parts) {
    out.push(Buffer.from(`--${boundary}\r\n`));
    for (const [k, v] of Object.entries(p.headers || {})) out.push(Buffer.from(`${k}: ${v}\r\n`));
    out.push(Buffer.from('\r\n'));
    const b = Buffer.isBuffer(p.body) ? p.body : typeof p.body === 'string' ? Buffer.from(p.body) : Buffer.from(JSON.stringify(p.body));
    out.push(b);
    out.push(Buffer.from('\r\n'));
  }
  out.push(Buffer.from(`--${boundary}--`));
  return Buffer.concat(out);
}

// Parse a Content-Type value into {type (lower-case), params {lower-name: value}}.
export function parseContentType(v) {
  const [type, ...rest] = String(v || '').split(';');
  const params = {};
  for (const p of rest) {
    const i = p.indexOf('=');
    if (i < 0) continue;
    let val = p.slice(i + 1).trim();
    if (val.startsWith('"') && val.endsWith('"')) val = val.slice(1, -1);
    params[p.slice(0, i).trim().toLowerCase()] = val;
  }
  return { type: type.trim().toLowerCase(), params };
}

export function md5b64(buf) {
  return createHash('md5').update(buf).digest('base64');
}
export { randomBytes };

// Deterministic pseudo-random bytes (xorshift), for big attachments that compress badly.
export function pseudoRandomBytes(n, seed = 12345) {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

// Run async tasks with bounded concurrency; returns results in input order.
export async function pool(items, limit, fn) {
  const results = new Array(items.length);
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
