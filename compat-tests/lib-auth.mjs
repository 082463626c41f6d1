// Helpers for the security tests (85-auth, 92-golden-auth): raw HTTP that adds no credentials
// on its own (anonymous unless told), from a chosen local address; server config through
// /_node/_local/_config; node restarts; users; JWT signing with node:crypto; cookies.
import http from 'node:http';
import https from 'node:https';
import crypto from 'node:crypto';
import { COUCH_URL, ADMIN, ADMIN_AUTH, basicAuth } from './lib.mjs';

const parsed = new URL(COUCH_URL);
const transport = parsed.protocol === 'https:' ? https : http;
const agent = new transport.Agent({ keepAlive: false });
export const HOST = parsed.host; // host:port, what the goldens call <host>
// The server admin: COUCH_URL's credentials, or admin:admin as the goldens' recorder had.
export const ADMIN_BASIC = ADMIN_AUTH || basicAuth('admin', 'admin');
export const ADMIN_NAME = ADMIN ? ADMIN.username : 'admin';
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// One request; headers are sent exactly as given (plus Content-Length). No Authorization is
// added: pass `auth` ('admin', {basic:'name:pw'}, or a header value) or put it in headers.
// `localAddress` picks the client address (127.0.0.2 … are loopback too).
// Returns {status, headers (lower-case), buf, text, json} (json: the body parsed when it parses).
export function request(method, path, { headers = {}, body, auth, localAddress, timeout = 30000 } = {}) {
  const h = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && v !== null) h[k] = v;
  const lower = Object.keys(h).map((k) => k.toLowerCase());
  if (auth === 'admin') h.Authorization = ADMIN_BASIC;
  else if (auth && typeof auth === 'object' && auth.basic) {
    const i = auth.basic.indexOf(':');
    h.Authorization = basicAuth(auth.basic.slice(0, i), auth.basic.slice(i + 1));
  } else if (typeof auth === 'string' && auth !== 'anonymous' && auth !== 'headers') h.Authorization = auth;
  let payload = null;
  if (body !== undefined && body !== null) {
    if (Buffer.isBuffer(body)) payload = body;
    else if (typeof body === 'string') payload = Buffer.from(body, 'utf8');
    else {
      payload = Buffer.from(JSON.stringify(body), 'utf8');
      if (!lower.includes('content-type')) h['Content-Type'] = 'application/json';
    }
    h['Content-Length'] = String(payload.length);
  }
  if (!lower.includes('accept')) h.Accept = 'application/json';
  return new Promise((resolve, reject) => {
    const r = transport.request({
      method, host: parsed.hostname, port: parsed.port || (parsed.protocol === 'https:' ? 443 : 80),
      path, headers: h, agent, ...(localAddress ? { localAddress } : {}),
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        const buf = Buffer.concat(chunks);
        const text = buf.toString('utf8');
        let json;
        if (buf.length) { try { json = JSON.parse(text); } catch { json = undefined; } }
        resolve({ status: res.statusCode, headers: res.headers, buf, text, json });
      });
      res.on('error', (e) => { clearTimeout(timer); reject(e); });
    });
    const timer = setTimeout(() => r.destroy(new Error(`${method} ${path}: no answer within ${timeout} ms`)), timeout);
    r.on('error', (e) => { clearTimeout(timer); reject(e); });
    if (payload) r.write(payload);
    r.end();
  });
}
export const admin = (method, path, opts = {}) => request(method, path, { ...opts, auth: 'admin' });
export const anon = (method, path, opts = {}) => request(method, path, opts);
export const as = (name, password, method, path, opts = {}) => request(method, path, { ...opts, auth: { basic: `${name}:${password}` } });
export const enc = encodeURIComponent;

// ---------------------------------------------------------------- config

const cfgPath = (section, key) => `/_node/_local/_config/${enc(section)}${key === undefined ? '' : '/' + enc(key)}`;
// the value (a string) or undefined when the key is not set
export async function configGet(section, key) {
  const r = await admin('GET', cfgPath(section, key));
  if (r.status === 404) return undefined;
  if (r.status !== 200) throw new Error(`GET config ${section}/${key}: ${r.status} ${r.text}`);
  return r.json;
}
export async function configSet(section, key, value) {
  const r = await admin('PUT', cfgPath(section, key), { body: JSON.stringify(value), headers: { 'Content-Type': 'application/json' } });
  if (r.status !== 200) throw new Error(`PUT config ${section}/${key}: ${r.status} ${r.text}`);
  return r.json;
}
export async function configDelete(section, key) {
  const r = await admin('DELETE', cfgPath(section, key));
  if (r.status !== 200 && r.status !== 404) throw new Error(`DELETE config ${section}/${key}: ${r.status} ${r.text}`);
  return r.status === 200;
}
// Puts a key back as it was: value undefined = not set.
export async function configRestore(section, key, value) {
  if (value === undefined) await configDelete(section, key);
  else await configSet(section, key, value);
}

// POST /_node/_local/_restart, then wait until the node has gone away (or 1.5 s passed: a
// server may restart faster than we can see) and /_up answers 200 again.
export async function restartNode({ timeout = 30000 } = {}) {
  const r = await admin('POST', '/_node/_local/_restart', { headers: { 'Content-Type': 'application/json' } });
  if (r.status !== 200) throw new Error(`POST /_node/_local/_restart: ${r.status} ${r.text}`);
  await waitRestarted({ timeout });
  return r;
}
export async function waitGone(ms = 1500) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try { await anon('GET', '/_up', { timeout: 2000 }); } catch { return true; }
    await sleep(50);
  }
  return false;
}
export async function waitUp(timeout = 30000) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try { last = await anon('GET', '/_up', { timeout: 2000 }); if (last.status === 200) return last; } catch (e) { last = e; }
    if (Date.now() > end) throw new Error(`/_up not 200 within ${timeout} ms after a restart: ${last?.status ?? last}`);
    await sleep(100);
  }
}
async function waitRestarted({ timeout }) {
  await waitGone();
  await waitUp(timeout);
}

// CouchDB's handler list value for [chttpd] authentication_handlers
export const HANDLERS = {
  jwt: '{chttpd_auth, jwt_authentication_handler}',
  proxy: '{chttpd_auth, proxy_authentication_handler}',
  cookie: '{chttpd_auth, cookie_authentication_handler}',
  default: '{chttpd_auth, default_authentication_handler}',
};
export const handlersValue = (...names) => names.map((n) => HANDLERS[n]).join(', ');

// ---------------------------------------------------------------- users and databases

export const userId = (name) => `org.couchdb.user:${name}`;
export const userDocPath = (name) => `/_users/${enc(userId(name))}`;
export async function createUser(name, password, roles = []) {
  const r = await admin('PUT', userDocPath(name), { body: { _id: userId(name), name, password, roles, type: 'user' } });
  if (r.status !== 201) throw new Error(`create user ${name}: ${r.status} ${r.text}`);
  return r.json.rev;
}
export async function deleteUser(name) {
  const g = await admin('GET', userDocPath(name));
  if (g.status !== 200) return false;
  const d = await admin('DELETE', `${userDocPath(name)}?rev=${enc(g.json._rev)}`);
  return d.status === 200;
}
export async function createDb(name, security) {
  const r = await admin('PUT', '/' + enc(name));
  if (r.status !== 201) throw new Error(`create db ${name}: ${r.status} ${r.text}`);
  if (security) {
    const s = await admin('PUT', `/${enc(name)}/_security`, { body: security });
    if (s.status !== 200) throw new Error(`_security of ${name}: ${s.status} ${s.text}`);
  }
}
export async function deleteDb(name) {
  const r = await admin('DELETE', '/' + enc(name));
  return r.status === 200;
}
// userdb-<hex of the UTF-8 name>, couch_peruser's database name
export const userDbName = (name) => 'userdb-' + Buffer.from(name, 'utf8').toString('hex');

// ---------------------------------------------------------------- JWT

export const b64u = (x) => Buffer.from(typeof x === 'string' || Buffer.isBuffer(x) ? x : JSON.stringify(x)).toString('base64url');
// header.payload.signature; sign(input) returns the signature bytes (or '' for none)
export function jwt(header, payload, sign) {
  const input = `${b64u(header)}.${b64u(payload)}`;
  const sig = sign ? sign(input) : '';
  return `${input}.${sig === '' ? '' : b64u(sig)}`;
}
export const hs256 = (key) => (input) => crypto.createHmac('sha256', key).update(input).digest();
export const rs256 = (privateKey) => (input) => crypto.sign('sha256', Buffer.from(input), privateKey);
// JWS ES256 signatures are r||s (64 bytes), not DER
export const es256 = (privateKey) => (input) => crypto.sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
// a PEM as a [jwt_keys] config value: newlines written as \n
export const pemConfigValue = (pem) => pem.trim().replace(/\n/g, '\\n') + '\\n';
export const nowSecs = () => Math.floor(Date.now() / 1000);

// ---------------------------------------------------------------- cookies

export const setCookies = (res) => {
  const v = res.headers['set-cookie'];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
};
// the AuthSession value of a response's Set-Cookie ('' when cleared), or undefined without one
export function authSession(res) {
  for (const c of setCookies(res)) {
    const m = /^AuthSession=([^;]*)/.exec(c);
    if (m) return m[1];
  }
  return undefined;
}
export const cookieHeader = (value) => ({ Cookie: `AuthSession=${value}` });
