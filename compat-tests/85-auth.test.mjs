// CouchDB 3.4's security model, as a client sees it: the authorization matrix (anonymous,
// authenticated non-member, member by name, member by role, db admin, server admin × the
// endpoints a replicator and an app use), every authentication handler (basic, cookie with
// refresh and expiry, JWT HS256/RS256/ES256, proxy), _users (pbkdf2, admin-only by default,
// own doc once opened, no role escalation), per-user databases, PouchDB 9 replicating as a
// member (basic in the URL, the `auth` option, a cookie session), lockout, and settee's
// per-address failed-login limit (settee only).
//
// Everything runs on databases and users of its own (unique per run) and puts back every config
// key it touches. PBKDF2 at 600000 iterations makes each new user and first login cost ~0.3 s:
// few users. Deliberately failing logins come from other loopback addresses (127.0.0.2-4), so
// the lockout and the per-address limit never hit the 127.0.0.1 the other tests use.
import test, { before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { PouchDB, BASE, memory, isSettee } from './lib.mjs';
import {
  request, admin, anon, as, enc, sleep, configGet, configSet, configDelete, configRestore, restartNode, handlersValue,
  userDocPath, createUser, deleteUser, createDb, deleteDb, userDbName, jwt, hs256, rs256, es256, pemConfigValue,
  nowSecs, setCookies, authSession, cookieHeader,
} from './lib-auth.mjs';

const T = { timeout: 120000 };
const RUN = (process.pid.toString(36) + Date.now().toString(36)).toLowerCase();
const U = {
  member_name: { name: `m${RUN}`, password: `m${RUN}pw`, roles: [] },
  member_role: { name: `r${RUN}`, password: `r${RUN}pw`, roles: [`readers${RUN}`] },
  db_admin: { name: `a${RUN}`, password: `a${RUN}pw`, roles: [] },
  nonmember: { name: `n${RUN}`, password: `n${RUN}pw`, roles: [] },
  locky: { name: `l${RUN}`, password: `l${RUN}pw`, roles: [] },
  burst: { name: `b${RUN}`, password: `b${RUN}pw`, roles: [] },
};
const ROLE = U.member_role.roles[0];
const SEC = `auth85_sec_${RUN}`; // members: member_name by name, ROLE by role; admins: db_admin
const OPEN = `auth85_open_${RUN}`; // _security {}
const DFLT = `auth85_dflt_${RUN}`; // CouchDB 3's default _security (admin-only)
const SECURITY = { admins: { names: [U.db_admin.name], roles: [] }, members: { names: [U.member_name.name], roles: [ROLE] } };
const ADMIN_ONLY = { members: { roles: ['_admin'] }, admins: { roles: ['_admin'] } };
const createdDbs = new Set([SEC, OPEN, DFLT]);
let SETTEE = false;

const E = {
  anonDb: { error: 'unauthorized', reason: 'You are not authorized to access this db.' },
  nonMember: { error: 'forbidden', reason: 'You are not allowed to access this db.' },
  notDbAdmin: { error: 'forbidden', reason: 'You are not a db or server admin.' },
  notServerAdmin: { error: 'unauthorized', reason: 'You are not a server admin.' },
  badLogin: { error: 'unauthorized', reason: 'Name or password is incorrect.' },
  locked: { error: 'forbidden', reason: 'Account is temporarily locked due to multiple authentication failures' },
};
const ATT = Buffer.from('attachment bytes\n');
const COOKIE_RE = (maxAge) => new RegExp(`^AuthSession=[^;\\s]+; Version=1; Expires=[A-Z][a-z]{2}, \\d{2}-[A-Z][a-z]{2}-\\d{4} \\d{2}:\\d{2}:\\d{2} GMT; Max-Age=${maxAge}; Path=/; HttpOnly$`);
const CLEARED_RE = /^AuthSession=; Version=1; Expires=[^;]+; Max-Age=\d+; Path=\/; HttpOnly$/;
const credsOf = (who) => (who === 'anonymous' ? undefined : who === 'server_admin' ? 'admin' : { basic: `${U[who].name}:${U[who].password}` });

before(async () => {
  SETTEE = await isSettee();
  for (const u of Object.values(U)) await createUser(u.name, u.password, u.roles);
  await createDb(SEC, SECURITY);
  await createDb(OPEN, {});
  await createDb(DFLT);
  for (const db of [SEC, OPEN, DFLT]) {
    const r = await admin('PUT', `/${db}/doc1`, { body: { v: 1, _attachments: { 'a.txt': { content_type: 'text/plain', data: ATT.toString('base64') } } } });
    assert.equal(r.status, 201, `doc1 in ${db}: ${r.text}`);
    const l = await admin('PUT', `/${db}/_local/loc0`, { body: { v: 1 } });
    assert.equal(l.status, 201, `_local/loc0 in ${db}: ${l.text}`);
  }
});

after(async () => {
  for (const u of Object.values(U)) await deleteUser(u.name).catch(() => {});
  for (const db of createdDbs) await deleteDb(db).catch(() => {});
});

// ------------------------------------------------------------------ the matrix

const WHO = ['anonymous', 'nonmember', 'member_name', 'member_role', 'db_admin', 'server_admin'];
const ok = (status) => ({ status });
const deny = (who) => (who === 'anonymous' ? { status: 401, body: E.anonDb } : { status: 403, body: E.nonMember });
const member = (who) => ['member_name', 'member_role', 'db_admin', 'server_admin'].includes(who);
const dbAdmin = (who) => who === 'db_admin' || who === 'server_admin';
// a non-admin member writing _security: CouchDB 3.4.3 answers 500 no_majority, settee 403
const securityPutByMember = () => (SETTEE ? { status: 403, body: E.notDbAdmin } : { status: 500, body: { error: 'error', reason: 'no_majority' } });

// [name, request(who) → {method, path, body?, headers?}, expected(who) → {status, body?}]
const OPS = [
  ['db_info', () => ({ method: 'GET', path: `/${SEC}` }), (w) => (member(w) ? ok(200) : deny(w))],
  ['doc_get', () => ({ method: 'GET', path: `/${SEC}/doc1` }), (w) => (member(w) ? ok(200) : deny(w))],
  ['doc_put', (w) => ({ method: 'PUT', path: `/${SEC}/doc_${w}`, body: { by: w } }), (w) => (member(w) ? ok(201) : deny(w))],
  ['ddoc_put', (w) => ({ method: 'PUT', path: `/${SEC}/_design/dd_${w}`, body: { views: { v: { map: 'function(doc){ emit(doc._id, null); }' } } } }),
    (w) => (dbAdmin(w) ? ok(201) : member(w) ? { status: 403, body: E.notDbAdmin } : deny(w))],
  ['security_get', () => ({ method: 'GET', path: `/${SEC}/_security` }), (w) => (member(w) ? { status: 200, body: SECURITY } : deny(w))],
  ['security_put', () => ({ method: 'PUT', path: `/${SEC}/_security`, body: SECURITY }),
    (w) => (dbAdmin(w) ? { status: 200, body: { ok: true } } : member(w) ? securityPutByMember() : deny(w))],
  ['changes', () => ({ method: 'GET', path: `/${SEC}/_changes` }), (w) => (member(w) ? ok(200) : deny(w))],
  ['all_docs', () => ({ method: 'GET', path: `/${SEC}/_all_docs` }), (w) => (member(w) ? ok(200) : deny(w))],
  ['revs_diff', () => ({ method: 'POST', path: `/${SEC}/_revs_diff`, body: { doc1: ['1-00000000000000000000000000000000'] } }),
    (w) => (member(w) ? { status: 200, body: { doc1: { missing: ['1-00000000000000000000000000000000'] } } } : deny(w))],
  ['bulk_get', () => ({ method: 'POST', path: `/${SEC}/_bulk_get`, body: { docs: [{ id: 'doc1' }] } }), (w) => (member(w) ? ok(200) : deny(w))],
  ['bulk_docs', (w) => ({ method: 'POST', path: `/${SEC}/_bulk_docs`, body: { docs: [{ _id: `bd_${w}` }] } }), (w) => (member(w) ? ok(201) : deny(w))],
  ['local_get', () => ({ method: 'GET', path: `/${SEC}/_local/loc0` }), (w) => (member(w) ? ok(200) : deny(w))],
  ['local_put', (w) => ({ method: 'PUT', path: `/${SEC}/_local/loc_${w}`, body: { by: w } }), (w) => (member(w) ? ok(201) : deny(w))],
  ['att_get', () => ({ method: 'GET', path: `/${SEC}/doc1/a.txt`, headers: { Accept: '*/*' } }), (w) => (member(w) ? ok(200) : deny(w))],
  ['att_put', (w) => ({ method: 'PUT', path: `/${SEC}/att_${w}/b.txt`, body: 'bytes', headers: { 'Content-Type': 'text/plain' } }),
    (w) => (member(w) ? ok(201) : deny(w))],
  ['new_db', (w) => ({ method: 'PUT', path: `/auth85_new_${w}_${RUN}` }), (w) => (w === 'server_admin' ? ok(201) : { status: 401, body: E.notServerAdmin })],
  ['all_dbs', () => ({ method: 'GET', path: '/_all_dbs' }), (w) => (w === 'server_admin' ? ok(200) : { status: 401, body: E.notServerAdmin })],
  ['db_delete', () => ({ method: 'DELETE', path: `/${DFLT}` }), (w) => (w === 'server_admin' ? null : { status: 401, body: E.notServerAdmin })],
];

for (const who of WHO) {
  test(`matrix: ${who} on a db with members (by name and role) and a db admin`, T, async () => {
    const errs = [];
    for (const [op, mk, expect] of OPS) {
      const want = expect(who);
      if (!want) continue; // the server admin does not delete the shared database here
      const rq = mk(who);
      if (op === 'new_db') createdDbs.add(rq.path.slice(1));
      const r = await request(rq.method, rq.path, { body: rq.body, headers: rq.headers, auth: credsOf(who) });
      if (r.status !== want.status) errs.push(`${op}: ${rq.method} ${rq.path} → ${r.status} ${r.text.slice(0, 200)}, expected ${want.status}`);
      else if (want.body) {
        try { assert.deepEqual(r.json, want.body); } catch { errs.push(`${op}: body ${r.text.slice(0, 200)}, expected ${JSON.stringify(want.body)}`); }
      }
      if (op === 'att_get' && r.status === 200 && !r.buf.equals(ATT)) errs.push('att_get: wrong bytes');
    }
    assert.deepEqual(errs, [], `${who}:\n  ${errs.join('\n  ')}`);
  });
}

test('a new database is admin-only (CouchDB 3 default _security); _security {} opens it to everyone', T, async () => {
  const s = await admin('GET', `/${DFLT}/_security`);
  assert.equal(s.status, 200);
  assert.deepEqual(s.json, ADMIN_ONLY);
  const m = U.member_name;
  for (const [who, auth] of [['anonymous', undefined], ['a user', { basic: `${m.name}:${m.password}` }]]) {
    const r = await request('GET', `/${DFLT}/doc1`, { auth });
    assert.deepEqual([r.status, r.json], who === 'anonymous' ? [401, E.anonDb] : [403, E.nonMember], `${who} on ${DFLT}`);
  }
  // _security {}: anyone reads and writes docs, only admins write design docs
  assert.equal((await anon('GET', `/${OPEN}/doc1`)).status, 200);
  assert.equal((await anon('PUT', `/${OPEN}/anon_doc`, { body: { v: 1 } })).status, 201);
  const dd = await anon('PUT', `/${OPEN}/_design/anon`, { body: { views: {} } });
  assert.deepEqual([dd.status, dd.json], [401, { error: 'unauthorized', reason: 'You are not a db or server admin.' }]);
  const ddu = await as(m.name, m.password, 'PUT', `/${OPEN}/_design/user`, { body: { views: {} } });
  assert.deepEqual([ddu.status, ddu.json], [403, E.notDbAdmin]);
  const cmp = await as(m.name, m.password, 'POST', `/${OPEN}/_compact`, { headers: { 'Content-Type': 'application/json' } });
  assert.deepEqual([cmp.status, cmp.json], [401, { error: 'unauthorized', reason: 'You are not a server or db admin.' }], '_compact by a member is 401');
  const anonSec = await anon('PUT', `/${OPEN}/_security`, { body: {} });
  if (SETTEE) assert.deepEqual([anonSec.status, anonSec.json], [401, { error: 'unauthorized', reason: 'You are not a db or server admin.' }]);
  else assert.equal(anonSec.status, 500, 'CouchDB 3.4.3: no_majority');
  assert.deepEqual((await admin('GET', `/${OPEN}/_security`)).json, {}, '_security unchanged');
});

// ------------------------------------------------------------------ basic and cookie

test('basic auth: /_session names the user; wrong password and unknown user are 401', T, async () => {
  const m = U.member_role;
  const r = await as(m.name, m.password, 'GET', '/_session');
  assert.equal(r.status, 200);
  assert.deepEqual(r.json.userCtx, { name: m.name, roles: [ROLE] });
  assert.equal(r.json.info.authenticated, 'default');
  assert.ok(r.json.info.authentication_handlers.includes('default'));
  const a = await admin('GET', '/_session');
  assert.ok(a.json.userCtx.roles.includes('_admin'), 'the server admin has _admin');
  const wrong = await request('GET', '/_session', { auth: { basic: `${m.name}:wrong` }, localAddress: '127.0.0.2' });
  assert.deepEqual([wrong.status, wrong.json], [401, E.badLogin]);
  const unknown = await request('GET', `/${SEC}`, { auth: { basic: `nobody${RUN}:x` }, localAddress: '127.0.0.2' });
  assert.deepEqual([unknown.status, unknown.json], [401, E.badLogin]);
  const a0 = await anon('GET', '/_session');
  assert.deepEqual(a0.json.userCtx, { name: null, roles: [] });
  assert.equal(a0.json.info.authenticated, undefined);
});


test('an edited or deleted user doc takes effect on the very next request (basic and cookie)', T, async () => {
  const name = `e${RUN}`;
  await createUser(name, 'first', ['before']);
  const r1 = await as(name, 'first', 'GET', '/_session');
  assert.deepEqual(r1.json.userCtx, { name, roles: ['before'] });
  const login = await request('POST', '/_session', { body: { name, password: 'first' } });
  assert.equal(login.status, 200);
  const cookie = cookieHeader(authSession(login));
  // roles change: the next request, by either handler, sees the new roles
  const doc = (await admin('GET', userDocPath(name))).json;
  const put = await admin('PUT', userDocPath(name), { body: { ...doc, roles: ['after'] } });
  assert.equal(put.status, 201, put.text);
  assert.deepEqual((await as(name, 'first', 'GET', '/_session')).json.userCtx, { name, roles: ['after'] });
  const viaCookie = await request('GET', '/_session', { headers: cookie });
  assert.deepEqual(viaCookie.json.userCtx, { name, roles: ['after'] });
  // password change: the old one stops working at once, the new one works
  const doc2 = (await admin('GET', userDocPath(name))).json;
  assert.equal((await admin('PUT', userDocPath(name), { body: { ...doc2, password: 'second' } })).status, 201);
  const old = await request('GET', '/_session', { auth: { basic: `${name}:first` }, localAddress: '127.0.0.3' });
  assert.deepEqual([old.status, old.json], [401, E.badLogin]);
  assert.deepEqual((await as(name, 'second', 'GET', '/_session')).json.userCtx, { name, roles: ['after'] });
  // the cookie was signed with the old salt: the new password doc makes it anonymous
  const stale = await request('GET', '/_session', { headers: cookie });
  assert.deepEqual(stale.json.userCtx, { name: null, roles: [] });
  // deleted: 401 with the password that worked a moment ago
  assert.ok(await deleteUser(name));
  const gone = await request('GET', '/_session', { auth: { basic: `${name}:second` }, localAddress: '127.0.0.3' });
  assert.deepEqual([gone.status, gone.json], [401, E.badLogin]);
});
test('cookie auth: POST /_session (JSON and form), GET /_session, the cookie opens the db, logout', T, async () => {
  const m = U.member_name;
  const j = await anon('POST', '/_session', { body: { name: m.name, password: m.password } });
  assert.equal(j.status, 200, j.text);
  assert.deepEqual(j.json, { ok: true, name: m.name, roles: [] });
  assert.equal(setCookies(j).length, 1);
  assert.match(setCookies(j)[0], COOKIE_RE(600));
  const f = await anon('POST', '/_session', { body: `name=${enc(m.name)}&password=${enc(m.password)}`, headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
  assert.equal(f.status, 200, f.text);
  assert.deepEqual(f.json, { ok: true, name: m.name, roles: [] });
  const cookie = authSession(f);
  assert.ok(cookie, 'form login sets AuthSession');
  const g = await anon('GET', '/_session', { headers: cookieHeader(cookie) });
  assert.deepEqual(g.json.userCtx, { name: m.name, roles: [] });
  assert.equal(g.json.info.authenticated, 'cookie');
  assert.equal(setCookies(g).length, 0, 'no refresh right after the login');
  assert.equal((await anon('GET', `/${SEC}/doc1`, { headers: cookieHeader(cookie) })).status, 200);
  assert.equal((await anon('GET', `/${SEC}/doc1`)).status, 401, 'without the cookie: anonymous');
  const bad = await anon('POST', '/_session', { body: { name: m.name, password: 'wrong' }, localAddress: '127.0.0.2' });
  assert.deepEqual([bad.status, bad.json], [401, E.badLogin]);
  assert.match(setCookies(bad)[0] || '', CLEARED_RE, 'a failed login clears the cookie');
  const out = await anon('DELETE', '/_session', { headers: cookieHeader(cookie) });
  assert.deepEqual([out.status, out.json], [200, { ok: true }]);
  assert.match(setCookies(out)[0] || '', CLEARED_RE, 'logout clears the cookie');
});

test('cookie refresh past 10% of its life ([chttpd_auth] timeout), expired cookie is anonymous', T, async () => {
  const m = U.member_name;
  const old = await configGet('chttpd_auth', 'timeout');
  await configSet('chttpd_auth', 'timeout', '5');
  try {
    const t0 = Date.now();
    const login = await anon('POST', '/_session', { body: { name: m.name, password: m.password } });
    assert.equal(login.status, 200);
    assert.match(setCookies(login)[0], COOKIE_RE(5));
    const c1 = authSession(login);
    await sleep(1600); // > 10% of 5 s, on second boundaries
    const g = await anon('GET', '/_session', { headers: cookieHeader(c1) });
    assert.equal(g.json.userCtx.name, m.name);
    assert.equal(setCookies(g).length, 1, 'a new Set-Cookie once more than 10% of the life has passed');
    assert.match(setCookies(g)[0], COOKIE_RE(5));
    const c2 = authSession(g);
    assert.notEqual(c2, c1, 'a fresh cookie');
    const g2 = await anon('GET', '/_session', { headers: cookieHeader(c2) });
    assert.equal(g2.json.userCtx.name, m.name, 'the refreshed cookie works');
    await sleep(Math.max(0, t0 + 5600 - Date.now()));
    const e = await anon('GET', '/_session', { headers: cookieHeader(c1) });
    assert.equal(e.status, 200);
    assert.deepEqual(e.json.userCtx, { name: null, roles: [] }, 'an expired cookie is anonymous');
    assert.equal((await anon('GET', `/${SEC}/doc1`, { headers: cookieHeader(c1) })).status, 401);
  } finally {
    await configRestore('chttpd_auth', 'timeout', old);
  }
});

test('lockout: 5 wrong passwords, then 403 locked even with the right one (per user)', T, async () => {
  const l = U.locky;
  const from = { localAddress: '127.0.0.4' };
  assert.equal((await request('GET', '/_session', { auth: { basic: `${l.name}:${l.password}` }, ...from })).json?.userCtx?.name, l.name);
  for (let i = 1; i <= 5; i++) {
    const r = await request('GET', '/_session', { auth: { basic: `${l.name}:wrong${i}` }, ...from });
    assert.deepEqual([r.status, r.json], [401, E.badLogin], `wrong password ${i}`);
  }
  const right = await request('GET', '/_session', { auth: { basic: `${l.name}:${l.password}` }, ...from });
  assert.deepEqual([right.status, right.json], [403, E.locked]);
  const post = await request('POST', '/_session', { body: { name: l.name, password: l.password }, ...from });
  assert.deepEqual([post.status, post.json], [403, E.locked]);
  const other = await request('GET', '/_session', { auth: { basic: `${U.member_role.name}:${U.member_role.password}` }, ...from });
  assert.equal(other.status, 200, 'another user from the same address is not locked');
});

test('the right password sent on 32 connections at once, before any check has finished, is never locked out', T, async () => {
  // A client that opens many connections at once (a replicator, a browser) must not lock
  // itself out while the first password check is still running.
  const b = U.burst;
  const from = { localAddress: '127.0.0.5' };
  const rs = await Promise.all(Array.from({ length: 32 }, () =>
    request('GET', '/_session', { auth: { basic: `${b.name}:${b.password}` }, ...from })));
  assert.deepEqual(rs.map((r) => [r.status, r.json?.userCtx?.name]), rs.map(() => [200, b.name]));
  const after = await request('GET', '/_session', { auth: { basic: `${b.name}:${b.password}` }, ...from });
  assert.deepEqual([after.status, after.json?.userCtx?.name], [200, b.name]);
});

test('settee only: repeated failed logins from one address answer 429 with Retry-After; other addresses still log in', T, async (t) => {
  if (!SETTEE) { t.skip('settee-only: CouchDB has no per-address failed-login limit'); return; }
  const from = { localAddress: '127.0.0.3' };
  // a low limit for this test: each failed check costs a full PBKDF2
  const oldMax = await configGet('chttpd_auth_ratelimit', 'max_failures');
  await configSet('chttpd_auth_ratelimit', 'max_failures', '5');
  t.after(() => configRestore('chttpd_auth_ratelimit', 'max_failures', oldMax));
  const end = Date.now() + 45000;
  let r;
  let n = 0;
  for (; n < 300 && Date.now() < end; n++) {
    r = await request('POST', '/_session', { body: { name: `nobody${RUN}_${n}`, password: 'x' }, ...from });
    if (r.status === 429) break;
    assert.equal(r.status, 401, `failed login ${n}: ${r.status} ${r.text}`);
  }
  assert.equal(r.status, 429, `no 429 after ${n} failed logins from 127.0.0.3`);
  assert.equal(r.json?.error, 'too_many_requests');
  assert.ok(typeof r.json.reason === 'string' && r.json.reason, 'a reason');
  assert.match(String(r.headers['retry-after']), /^[1-9]\d*$/, 'Retry-After in seconds');
  const again = await request('POST', '/_session', { body: { name: `nobody${RUN}`, password: 'x' }, ...from });
  assert.equal(again.status, 429, 'still limited');
  const m = U.member_name;
  const other = await request('POST', '/_session', { body: { name: m.name, password: m.password }, localAddress: '127.0.0.2' });
  assert.equal(other.status, 200, `127.0.0.2 logs in: ${other.text}`);
  const basic = await request('GET', '/_session', { auth: { basic: `${m.name}:${m.password}` }, localAddress: '127.0.0.2' });
  assert.equal(basic.json?.userCtx?.name, m.name);
  t.diagnostic(`429 after ${n} failed logins`);
});

// ------------------------------------------------------------------ _users

test('_users: the password is stored as pbkdf2 fields, never as "password"', T, async () => {
  const r = await admin('GET', userDocPath(U.member_name.name));
  assert.equal(r.status, 200);
  const d = r.json;
  assert.equal(d.password, undefined, 'no password field');
  assert.equal(d.password_scheme, 'pbkdf2');
  assert.equal(d.pbkdf2_prf, 'sha256');
  assert.equal(d.iterations, 600000);
  assert.match(d.derived_key, /^[0-9a-f]{64}$/);
  assert.match(d.salt, /^[0-9a-f]{32}$/);
  assert.deepEqual([d.name, d.type, d.roles], [U.member_name.name, 'user', []]);
  const sys = await admin('PUT', userDocPath(`s${RUN}`), { body: { _id: `org.couchdb.user:s${RUN}`, name: `s${RUN}`, password: 'x', roles: ['_admin'], type: 'user' } });
  assert.deepEqual([sys.status, sys.json], [403, { error: 'forbidden', reason: 'No system roles (starting with underscore) in users db.' }]);
});

test('_users is admin-only by default: no own-doc read, no anonymous sign-up', T, async () => {
  const m = U.member_name;
  const own = await as(m.name, m.password, 'GET', userDocPath(m.name));
  assert.deepEqual([own.status, own.json], [403, E.nonMember]);
  const signup = await anon('PUT', userDocPath(`z${RUN}`), { body: { _id: `org.couchdb.user:z${RUN}`, name: `z${RUN}`, password: 'x', roles: [], type: 'user' } });
  assert.deepEqual([signup.status, signup.json], [401, E.anonDb]);
  assert.equal((await admin('GET', userDocPath(`z${RUN}`))).status, 404);
});

test('_users opened: a user reads their own doc only; role escalation refused', T, async () => {
  const m = U.nonmember;
  const oldEditable = await configGet('couchdb', 'users_db_security_editable');
  const oldSec = (await admin('GET', '/_users/_security')).json;
  await configSet('couchdb', 'users_db_security_editable', 'true');
  try {
    const open = await admin('PUT', '/_users/_security', { body: { admins: { names: [], roles: [] }, members: { names: [], roles: [] } } });
    assert.equal(open.status, 200, open.text);
    const own = await as(m.name, m.password, 'GET', userDocPath(m.name));
    assert.equal(own.status, 200, own.text);
    assert.equal(own.json.name, m.name);
    assert.match(own.json.derived_key, /^[0-9a-f]{64}$/);
    const other = await as(m.name, m.password, 'GET', userDocPath(U.member_name.name));
    assert.deepEqual([other.status, other.json], [404, { error: 'not_found', reason: 'missing' }]);
    const all = await as(m.name, m.password, 'GET', '/_users/_all_docs');
    assert.deepEqual([all.status, all.json], [401, E.notServerAdmin]);
    const esc = await as(m.name, m.password, 'PUT', userDocPath(m.name), { body: { ...own.json, roles: [ROLE] } });
    assert.deepEqual([esc.status, esc.json], [403, { error: 'forbidden', reason: 'Only _admin may edit roles' }]);
    const escA = await as(m.name, m.password, 'PUT', userDocPath(m.name), { body: { ...own.json, roles: ['_admin'] } });
    assert.deepEqual([escA.status, escA.json], [403, { error: 'forbidden', reason: 'Only _admin may edit roles' }]);
    const after = await admin('GET', userDocPath(m.name));
    assert.deepEqual(after.json.roles, [], 'roles unchanged');
  } finally {
    await admin('PUT', '/_users/_security', { body: oldSec && Object.keys(oldSec).length ? oldSec : ADMIN_ONLY });
    await configRestore('couchdb', 'users_db_security_editable', oldEditable);
  }
  const back = await as(m.name, m.password, 'GET', userDocPath(m.name));
  assert.equal(back.status, 403, '_users admin-only again');
});

// ------------------------------------------------------------------ per-user databases

test('couch_peruser: userdb-<hex(name)> for the user, usable by its owner only', T, async () => {
  const m = U.member_name;
  const udb = userDbName(m.name);
  const before = new Set((await admin('GET', '/_all_dbs')).json);
  const oldEnable = await configGet('couch_peruser', 'enable');
  await configSet('couch_peruser', 'enable', 'true');
  try {
    const end = Date.now() + 20000;
    let sec;
    for (;;) {
      sec = await admin('GET', `/${udb}/_security`);
      if (sec.status === 200 && sec.json?.members?.names) break;
      assert.ok(Date.now() < end, `${udb} with its _security within 20 s (last ${sec.status} ${sec.text})`);
      await sleep(200);
    }
    createdDbs.add(udb);
    assert.deepEqual(sec.json.members.names, [m.name]);
    assert.deepEqual(sec.json.admins.names, [m.name]);
    assert.equal((await as(m.name, m.password, 'GET', `/${udb}`)).status, 200);
    assert.equal((await as(m.name, m.password, 'PUT', `/${udb}/note`, { body: { v: 1 } })).status, 201);
    assert.equal((await as(m.name, m.password, 'PUT', `/${udb}/_design/mine`, { body: { views: {} } })).status, 201, 'the owner is its db admin');
    const o = U.member_role;
    const other = await as(o.name, o.password, 'GET', `/${udb}/note`);
    assert.deepEqual([other.status, other.json], [403, E.nonMember]);
    const a = await anon('GET', `/${udb}`);
    assert.deepEqual([a.status, a.json], [401, E.anonDb]);
    const del = await as(m.name, m.password, 'DELETE', `/${udb}`);
    assert.deepEqual([del.status, del.json], [401, E.notServerAdmin], 'the owner cannot delete it');
  } finally {
    await configRestore('couch_peruser', 'enable', oldEnable);
    await sleep(300);
    for (const db of (await admin('GET', '/_all_dbs')).json) {
      if (db.startsWith('userdb-') && !before.has(db)) { createdDbs.add(db); await deleteDb(db); }
    }
  }
});

// ------------------------------------------------------------------ PouchDB as a member

async function roundTrip(remoteDb, tag) {
  const local = memory(`auth85_${tag}`);
  const docs = Array.from({ length: 20 }, (_, i) => ({ _id: `${tag}_${String(i).padStart(2, '0')}`, i }));
  await local.bulkDocs(docs);
  const push = await local.replicate.to(remoteDb);
  assert.equal(push.ok, true, JSON.stringify(push.errors));
  assert.equal(push.docs_written, 20);
  const srv = await admin('PUT', `/${SEC}/${tag}_from_server`, { body: { v: 1 } });
  assert.equal(srv.status, 201);
  const back = memory(`auth85_${tag}_back`);
  const pull = await back.replicate.from(remoteDb);
  assert.equal(pull.ok, true, JSON.stringify(pull.errors));
  const ids = (await back.allDocs()).rows.map((r) => r.id);
  for (const id of [`${tag}_00`, `${tag}_19`, `${tag}_from_server`, 'doc1']) assert.ok(ids.includes(id), `${id} pulled`);
  await local.destroy();
  await back.destroy();
}

test('PouchDB replicates both ways as a member: basic auth in the URL and in the auth option', T, async () => {
  const m = U.member_name;
  const u = new URL(`${BASE}/${SEC}`);
  u.username = m.name;
  u.password = m.password;
  await roundTrip(new PouchDB(u.href, { skip_setup: true }), 'url');
  const r = U.member_role;
  await roundTrip(new PouchDB(`${BASE}/${SEC}`, { skip_setup: true, auth: { username: r.name, password: r.password } }), 'opt');
  // a non-member is refused
  const n = U.nonmember;
  const local = memory('auth85_nonmember');
  await local.put({ _id: 'x' });
  let err;
  try {
    const res = await local.replicate.to(new PouchDB(`${BASE}/${SEC}`, { skip_setup: true, auth: { username: n.name, password: n.password } }));
    err = res.ok ? null : res;
  } catch (e) { err = e; }
  assert.ok(err, 'a non-member cannot push');
  assert.equal(err.status, 403, `status ${err.status} ${err.message || JSON.stringify(err)}`);
  await local.destroy();
});

test('PouchDB replicates both ways with a cookie session (a fetch override that logs in first)', T, async () => {
  const m = U.member_role;
  let cookie = null;
  let logins = 0;
  let withCookie = 0;
  const login = async () => {
    logins++;
    const r = await fetch(`${BASE}/_session`, { method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json' }, body: JSON.stringify({ name: m.name, password: m.password }) });
    assert.equal(r.status, 200, 'login');
    cookie = /AuthSession=([^;]*)/.exec(r.headers.get('set-cookie') || '')?.[1];
    assert.ok(cookie, 'AuthSession cookie');
  };
  const db = new PouchDB(`${BASE}/${SEC}`, {
    skip_setup: true,
    fetch: async (url, opts) => {
      if (!cookie) await login();
      opts.headers.set('Cookie', `AuthSession=${cookie}`);
      withCookie++;
      return PouchDB.fetch(url, opts);
    },
  });
  await roundTrip(db, 'cookie');
  assert.equal(logins, 1, 'one login for the whole replication');
  assert.ok(withCookie > 5, `requests carried the cookie (${withCookie})`);
  const s = await anon('GET', '/_session', { headers: cookieHeader(cookie) });
  assert.equal(s.json.info.authenticated, 'cookie');
});

// ------------------------------------------------------------------ JWT and proxy (one restart)

test('JWT (HS256, RS256, ES256 from _config [jwt_keys]) and proxy auth, after a restart with their handlers', { timeout: 180000 }, async () => {
  const hmacKey = crypto.randomBytes(32);
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const rsaOther = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const kid = { hmac: `h${RUN}`, rsa: `r${RUN}`, ec: `e${RUN}` };
  const pem = (k) => k.export({ type: 'spki', format: 'pem' });
  const keys = [
    ['jwt_keys', `hmac:${kid.hmac}`, hmacKey.toString('base64')],
    ['jwt_keys', `rsa:${kid.rsa}`, pemConfigValue(pem(rsa.publicKey))],
    ['jwt_keys', `ec:${kid.ec}`, pemConfigValue(pem(ec.publicKey))],
  ];
  const oldHandlers = await configGet('chttpd', 'authentication_handlers');
  const oldSecret = await configGet('chttpd_auth', 'secret');
  const oldUseSecret = await configGet('chttpd_auth', 'proxy_use_secret');
  const oldRequired = await configGet('jwt_auth', 'required_claims');
  const secret = oldSecret || `proxy-secret-${RUN}`;
  let restarted = false;
  try {
    for (const [s, k, v] of keys) await configSet(s, k, v);
    if (!oldSecret) await configSet('chttpd_auth', 'secret', secret);
    await configSet('chttpd_auth', 'proxy_use_secret', 'true');
    await configSet('chttpd', 'authentication_handlers', handlersValue('jwt', 'proxy', 'cookie', 'default'));
    const before = await anon('GET', '/_session');
    assert.deepEqual(before.json.info.authentication_handlers, ['cookie', 'default'], 'handlers change only after a restart');
    restarted = true;
    await restartNode();
    const a = await anon('GET', '/_session');
    assert.deepEqual(a.json.info.authentication_handlers, ['jwt', 'proxy', 'cookie', 'default']);

    const exp = nowSecs() + 600;
    const bearer = (tok) => ({ headers: { Authorization: `Bearer ${tok}` } });
    const session = async (tok) => anon('GET', '/_session', bearer(tok));
    const claims = { sub: `jwt${RUN}`, exp, '_couchdb.roles': [ROLE] };
    const hs = jwt({ alg: 'HS256', typ: 'JWT', kid: kid.hmac }, claims, hs256(hmacKey));
    const rs = jwt({ alg: 'RS256', typ: 'JWT', kid: kid.rsa }, claims, rs256(rsa.privateKey));
    const es = jwt({ alg: 'ES256', typ: 'JWT', kid: kid.ec }, claims, es256(ec.privateKey));
    for (const [alg, tok] of [['HS256', hs], ['RS256', rs], ['ES256', es]]) {
      const s = await session(tok);
      assert.equal(s.status, 200, `${alg}: ${s.text}`);
      assert.deepEqual(s.json.userCtx, { name: `jwt${RUN}`, roles: [ROLE] }, alg);
      assert.equal(s.json.info.authenticated, 'jwt', alg);
      const d = await anon('GET', `/${SEC}/doc1`, bearer(tok));
      assert.equal(d.status, 200, `${alg}: a member by role reads the db: ${d.text}`);
    }
    const noRole = jwt({ alg: 'HS256', typ: 'JWT', kid: kid.hmac }, { sub: `jwt${RUN}`, exp }, hs256(hmacKey));
    assert.deepEqual(await anon('GET', `/${SEC}/doc1`, bearer(noRole)).then((r) => [r.status, r.json]), [403, E.nonMember]);
    const expect = async (what, tok, status, body) => {
      const r = await session(tok);
      assert.deepEqual([r.status, r.json], [status, body], what);
    };
    await expect('expired', jwt({ alg: 'HS256', typ: 'JWT', kid: kid.hmac }, { ...claims, exp: nowSecs() - 60 }, hs256(hmacKey)),
      401, { error: 'unauthorized', reason: 'exp not in future' });
    await expect('HS256 with a wrong key', jwt({ alg: 'HS256', typ: 'JWT', kid: kid.hmac }, claims, hs256(crypto.randomBytes(32))),
      400, { error: 'bad_request', reason: 'Bad HMAC' });
    await expect('RS256 with a wrong key', jwt({ alg: 'RS256', typ: 'JWT', kid: kid.rsa }, claims, rs256(rsaOther.privateKey)),
      400, { error: 'bad_request', reason: 'Bad signature' });
    await expect('alg none', jwt({ alg: 'none', typ: 'JWT' }, claims, null), 400, { error: 'bad_request', reason: 'Invalid alg header parameter' });
    await expect('missing sub', jwt({ alg: 'HS256', typ: 'JWT', kid: kid.hmac }, { exp }, hs256(hmacKey)),
      401, { error: 'unauthorized', reason: 'Token missing sub claim.' });
    await expect('missing exp (required by default)', jwt({ alg: 'HS256', typ: 'JWT', kid: kid.hmac }, { sub: 'x' }, hs256(hmacKey)),
      400, { error: 'bad_request', reason: 'Missing exp claim' });
    await configSet('jwt_auth', 'required_claims', 'exp, {iss, "me"}');
    await expect('required_claims: missing iss', hs, 400, { error: 'bad_request', reason: 'Missing iss claim' });
    const withIss = jwt({ alg: 'HS256', typ: 'JWT', kid: kid.hmac }, { ...claims, iss: 'me' }, hs256(hmacKey));
    assert.equal((await session(withIss)).json?.info?.authenticated, 'jwt', 'required claim present');
    await configRestore('jwt_auth', 'required_claims', oldRequired);

    // proxy: X-Auth-CouchDB-Token = hex HMAC-SHA256(secret, name)
    const pname = `proxy${RUN}`;
    const token = crypto.createHmac('sha256', secret).update(pname).digest('hex');
    const p = await anon('GET', '/_session', { headers: { 'X-Auth-CouchDB-UserName': pname, 'X-Auth-CouchDB-Roles': `${ROLE}, other`, 'X-Auth-CouchDB-Token': token } });
    assert.deepEqual(p.json.userCtx, { name: pname, roles: [ROLE, 'other'] });
    assert.equal(p.json.info.authenticated, 'proxy');
    const pd = await anon('GET', `/${SEC}/doc1`, { headers: { 'X-Auth-CouchDB-UserName': pname, 'X-Auth-CouchDB-Roles': ROLE, 'X-Auth-CouchDB-Token': token } });
    assert.equal(pd.status, 200, 'a proxied member by role reads the db');
    const pb = await anon('GET', '/_session', { headers: { 'X-Auth-CouchDB-UserName': pname, 'X-Auth-CouchDB-Roles': ROLE, 'X-Auth-CouchDB-Token': 'deadbeef' } });
    assert.deepEqual(pb.json.userCtx, { name: null, roles: [] }, 'a bad token is anonymous');
    const pn = await anon('GET', '/_session', { headers: { 'X-Auth-CouchDB-UserName': pname, 'X-Auth-CouchDB-Roles': ROLE } });
    assert.deepEqual(pn.json.userCtx, { name: null, roles: [] }, 'no token with proxy_use_secret: anonymous');
    // basic still works next to them
    assert.equal((await as(U.member_name.name, U.member_name.password, 'GET', '/_session')).json.info.authenticated, 'default');
  } finally {
    await configRestore('jwt_auth', 'required_claims', oldRequired).catch(() => {});
    await configRestore('chttpd', 'authentication_handlers', oldHandlers).catch(() => {});
    await configRestore('chttpd_auth', 'proxy_use_secret', oldUseSecret).catch(() => {});
    if (!oldSecret) await configDelete('chttpd_auth', 'secret').catch(() => {});
    for (const [s, k] of keys) await configDelete(s, k).catch(() => {});
    if (restarted) await restartNode();
  }
  const reset = await anon('GET', '/_session');
  assert.deepEqual(reset.json.info.authentication_handlers, ['cookie', 'default'], 'default handlers after the second restart');
});
