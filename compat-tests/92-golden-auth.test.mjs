// Replays couchdb-golden/auth.jsonl (CouchDB 3.4.3's recorded security answers) line by line in
// file order, as couchdb-golden/README.md section 4 says: `request.auth` decides the credentials,
// <hN>/<cookieN>/<bookmarkN> are bound on first sight and sent back where a request uses them,
// <jwtN> is re-signed from the line's `jwt` field with auth-keys.json's keys, `poll` lines are
// repeated until they match (bounded), node_restart_* lines are POST /_node/_local/_restart
// followed by the polled /_up line, `unstable` lines are compared on status and body shape.
// Status, body and the headers the golden keeps are compared (set-cookie shape, www-authenticate,
// location, etag, content-type, cache-control, allow); a set-cookie or www-authenticate the
// golden does not have is an error too.
//
// The server is not fresh (the other compat tests ran on it before): before the replay the users
// and databases the file creates are removed as admin, the config keys it sets are deleted
// (with a restart if [chttpd] authentication_handlers was left set), and `_all_dbs` answers are
// compared only on the names the golden lists plus every userdb-* / golden_auth_* name.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { isSettee } from './lib.mjs';
import {
  request, admin, HOST, ADMIN_BASIC, sleep, waitGone, configGet, configSet, configDelete, restartNode,
  deleteUser, deleteDb, b64u,
} from './lib-auth.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const GOLDEN_DIR = process.env.STT_GOLDEN_DIR || path.resolve(here, '../../shared/couchdb-golden');
const GOLDEN_MISSING = !fs.existsSync(path.join(GOLDEN_DIR, 'auth.jsonl')) && process.env.STT_GOLDEN_OPTIONAL === '1';
const LINES = (GOLDEN_MISSING ? '' : fs.readFileSync(path.join(GOLDEN_DIR, 'auth.jsonl'), 'utf8'))
  .split('\n').filter((l) => l.trim())
  .map((l) => JSON.parse(l.replaceAll('<host>', HOST)));
const KEYS = GOLDEN_MISSING ? {} : JSON.parse(fs.readFileSync(path.join(GOLDEN_DIR, 'auth-keys.json'), 'utf8'));

// ------------------------------------------------------------------ settee's deliberate differences
// Where CouchDB 3.4.3 is wrong (a 500 for a client error, a crash on bad input, a security check
// it skips), settee answers differently. Against settee these lines expect `settee`; against a
// real CouchDB (GET / without vendor.name "settee") the recorded answer.
const nonEmpty = (v) => typeof v === 'string' && v.length > 0;
const BAD_SECURITY = { status: 400, body: { error: 'bad_request', reason: nonEmpty } };
const NOT_DB_ADMIN_403 = { status: 403, body: { error: 'forbidden', reason: 'You are not a db or server admin.' } };
const NOT_DB_ADMIN_401 = { status: 401, body: { error: 'unauthorized', reason: 'You are not a db or server admin.' } };
const SETTEE_DIFFS = [
  { name: 'basic_not_base64', couchdb: '500 unknown_error badarg', settee: { status: 400, body: { error: 'bad_request', reason: 'Authorization header has invalid base64 value' } } },
  { name: 'basic_not_base64_on_db', couchdb: '500 unknown_error badarg', settee: { status: 400, body: { error: 'bad_request', reason: 'Authorization header has invalid base64 value' } } },
  { name: 'security_put_invalid_members_not_object', couchdb: '500 no_majority', settee: BAD_SECURITY },
  { name: 'security_put_invalid_names_not_array', couchdb: '500 no_majority', settee: BAD_SECURITY },
  { name: 'security_put_invalid_names_number', couchdb: '500 no_majority', settee: BAD_SECURITY },
  { name: 'security_put_invalid_roles_not_array', couchdb: '500 no_majority', settee: BAD_SECURITY },
  { name: 'security_put_invalid_body_array', couchdb: '500 no_majority', settee: BAD_SECURITY },
  { name: 'matrix_secure_member_name_security_put', couchdb: '500 no_majority', settee: NOT_DB_ADMIN_403 },
  { name: 'matrix_secure_member_role_security_put', couchdb: '500 no_majority', settee: NOT_DB_ADMIN_403 },
  { name: 'matrix_empty_nonmember_security_put', couchdb: '500 no_majority (an authenticated member of an open db)', settee: NOT_DB_ADMIN_403 },
  { name: 'matrix_empty_anonymous_security_put', couchdb: '500 no_majority (anonymous on an open db)', settee: NOT_DB_ADMIN_401 },
  { name: 'jwt_nbf_future', couchdb: '200: a token not valid yet is accepted', settee: { status: 401, body: { error: 'unauthorized', reason: 'nbf not in past' } } },
  { name: 'jwt_exp_string', couchdb: '200: "exp":"tomorrow" is accepted (never expires)', settee: { status: 400, body: { error: 'bad_request', reason: 'Invalid exp claim' } } },
  { name: 'session_post_name_number', couchdb: '500 unknown_error badarg', settee: { status: 400, body: { error: 'bad_request', reason: nonEmpty } } },
];
const DIFF = new Map(SETTEE_DIFFS.map((d) => [d.name, d]));

// Lines compared with an allowance that is not a settee difference, each with its reason.
const ALLOWANCES = {
  users_design_auth_get: 'validate_doc_update source is a marker in the golden: any string',
  rvu_basic_alice_root: 'server identity (version, git_sha, features, vendor) is CouchDB\'s own: only the types are checked',
  rvu_reset_anonymous_root: 'server identity: only the types are checked',
};

// users and databases the file creates (removed before and after the replay)
const USERS = ['alice', 'memname', 'memrole', 'dbadm', 'bob', 'locky', 'carol', 'zed', '_carol'];
// config keys the file sets (deleted before so that PUTs return "" as on a fresh node, and after)
const CONFIG_KEYS = [
  ['couch_peruser', 'enable'], ['couch_peruser', 'delete_dbs'], ['chttpd_auth_lockout', 'mode'],
  ['couchdb', 'users_db_security_editable'], ['chttpd_auth', 'users_db_public'], ['chttpd_auth', 'public_fields'],
  ['chttpd', 'require_valid_user'], ['chttpd', 'require_valid_user_except_for_up'],
  ['jwt_keys', 'hmac:_default'], ['jwt_keys', 'rsa:kid1'], ['jwt_auth', 'required_claims'], ['jwt_auth', 'roles_claim_path'],
  ['chttpd_auth', 'proxy_use_secret'], ['chttpd', 'authentication_handlers'],
];

// ------------------------------------------------------------------ placeholder matching

const FULL = new Set(['<seq>', '<uuid>', '<int>', '<ref>', '<instance_start_time>']);
const EMBED = /<(h\d+|cookie\d+|bookmark\d+|hex32|hex64|cookie-date|etag)>/g;
const PATTERN = {
  h: '[0-9a-f]{32}', cookie: '[^;\\s]+', bookmark: '[^"]+', hex32: '[0-9a-f]{32}', hex64: '[0-9a-f]{64}',
  'cookie-date': '[A-Z][a-z]{2}, \\d{2}-[A-Z][a-z]{2}-\\d{4} \\d{2}:\\d{2}:\\d{2} GMT', etag: '[^"]+',
};
const BOUND = new Set(['h', 'cookie', 'bookmark']);
const reEsc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const kindOf = (name) => (/^(h|cookie|bookmark)\d+$/.test(name) ? name.replace(/\d+$/, '') : name);

class Ctx {
  constructor() { this.bind = new Map(); }
  str(exp, act) {
    if (typeof act !== 'string') return false;
    if (!new RegExp(EMBED.source).test(exp)) return exp === act;
    const groups = [];
    let re = '^';
    let last = 0;
    for (const m of exp.matchAll(EMBED)) {
      re += reEsc(exp.slice(last, m.index));
      last = m.index + m[0].length;
      const name = m[1];
      const kind = kindOf(name);
      if (BOUND.has(kind) && this.bind.has(name)) re += reEsc(this.bind.get(name));
      else if (BOUND.has(kind) && groups.includes(name)) re += `\\${groups.indexOf(name) + 1}`;
      else { groups.push(name); re += `(${PATTERN[kind]})`; }
    }
    re += reEsc(exp.slice(last)) + '$';
    const mm = new RegExp(re).exec(act);
    if (!mm) return false;
    groups.forEach((name, i) => { if (BOUND.has(kindOf(name))) this.bind.set(name, mm[i + 1]); });
    return true;
  }
  full(exp, act, where, errs) {
    const bad = (why) => errs.push(`${where}: ${why}, got ${JSON.stringify(act)}`);
    if (exp === '<seq>') { if (!((typeof act === 'string' && act) || (typeof act === 'number' && Number.isFinite(act)))) bad('a seq'); }
    else if (exp === '<uuid>') { if (typeof act !== 'string' || !/^[0-9a-f]{32}$/.test(act)) bad('a 32-hex uuid'); }
    else if (exp === '<int>') { if (!Number.isInteger(act)) bad('an integer'); }
    else if (exp === '<ref>') { if (act === null || act === undefined) bad('a ref'); }
    else if (exp === '<instance_start_time>') { if (typeof act !== 'string') bad('an instance_start_time string'); }
  }
  json(exp, act, where, errs) {
    if (typeof exp === 'function') { if (!exp(act)) errs.push(`${where}: unexpected ${JSON.stringify(act)}`); return; }
    if (typeof exp === 'string') {
      if (FULL.has(exp)) return this.full(exp, act, where, errs);
      if (!this.str(exp, act)) errs.push(`${where}: expected ${JSON.stringify(exp)}, got ${JSON.stringify(act)}`);
      return;
    }
    if (Array.isArray(exp)) {
      if (!Array.isArray(act)) { errs.push(`${where}: expected an array, got ${JSON.stringify(act)}`); return; }
      if (act.length !== exp.length) errs.push(`${where}: expected ${exp.length} items, got ${act.length}: ${JSON.stringify(act).slice(0, 600)}`);
      for (let i = 0; i < Math.min(exp.length, act.length); i++) this.json(exp[i], act[i], `${where}[${i}]`, errs);
      return;
    }
    if (exp && typeof exp === 'object') {
      if (!act || typeof act !== 'object' || Array.isArray(act)) { errs.push(`${where}: expected an object, got ${JSON.stringify(act)}`); return; }
      const ek = Object.keys(exp).sort(), ak = Object.keys(act).sort();
      if (ek.join() !== ak.join()) errs.push(`${where}: keys ${JSON.stringify(ak)}, expected ${JSON.stringify(ek)}`);
      for (const k of ek) if (k in act) this.json(exp[k], act[k], `${where}.${k}`, errs);
      return;
    }
    if (exp !== act) errs.push(`${where}: expected ${JSON.stringify(exp)}, got ${JSON.stringify(act)}`);
  }
  fill(s) {
    return s.replace(/<(h\d+|cookie\d+|bookmark\d+)>/g, (all, name) => {
      if (!this.bind.has(name)) throw new Error(`request uses ${all}, which no earlier answer bound`);
      return this.bind.get(name);
    });
  }
  fillJson(v) {
    if (typeof v === 'string') return this.fill(v);
    if (Array.isArray(v)) return v.map((x) => this.fillJson(x));
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, this.fillJson(x)]));
    return v;
  }
}

// ------------------------------------------------------------------ JWT (README 4.3)

function nowClaims(v, now) {
  if (typeof v === 'string') {
    const m = /^<now([+-])(\d+)>$/.exec(v);
    return m ? now + (m[1] === '+' ? 1 : -1) * Number(m[2]) : v;
  }
  if (Array.isArray(v)) return v.map((x) => nowClaims(x, now));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, nowClaims(x, now)]));
  return v;
}
function buildJwt(j) {
  const input = `${b64u(j.header)}.${b64u(nowClaims(j.payload, Math.floor(Date.now() / 1000)))}`;
  const hmacKey = Buffer.from(KEYS.jwt_keys['hmac:_default'].key_base64, 'base64');
  const rsa = KEYS.jwt_keys['rsa:kid1'];
  let sig;
  switch (j.signature) {
    case 'valid':
      if (j.signed_with === 'hmac:_default') sig = crypto.createHmac('sha256', hmacKey).update(input).digest();
      else if (j.signed_with === 'rsa:kid1') sig = crypto.sign('sha256', Buffer.from(input), rsa.private_pem_pkcs8);
      else throw new Error(`jwt: unknown signed_with ${j.signed_with}`);
      break;
    case 'wrong_key': sig = crypto.createHmac('sha256', KEYS.jwt_bad_signature_key.key_utf8).update(input).digest(); break;
    case 'empty': sig = Buffer.alloc(0); break;
    case 'hmac_with_rsa_public_pem': sig = crypto.createHmac('sha256', rsa.public_pem).update(input).digest(); break;
    default: throw new Error(`jwt: unknown signature kind ${j.signature}`);
  }
  return `${input}.${b64u(sig)}`;
}

// ------------------------------------------------------------------ one line

const ctx = new Ctx();
let SETTEE = false;
const isAllDbs = (line) => line.request.path.split('?')[0] === '/_all_dbs';

async function send(line) {
  const rq = line.request;
  const p = ctx.fill(rq.path);
  const headers = {};
  const jwtTok = line.jwt ? buildJwt(line.jwt) : null;
  for (const [k, v] of Object.entries(rq.headers || {})) {
    let val = v;
    if (jwtTok && line.jwt.token && val.includes(line.jwt.token)) val = val.replace(line.jwt.token, jwtTok);
    headers[k] = ctx.fill(val);
  }
  let body;
  if (rq.body !== undefined) {
    if (rq.body_encoding === 'text') body = ctx.fill(rq.body);
    else if (rq.body_encoding === 'base64') body = Buffer.from(rq.body, 'base64');
    else body = JSON.stringify(ctx.fillJson(rq.body));
  }
  let auth = rq.auth;
  if (auth === 'admin') auth = ADMIN_BASIC;
  return { p, act: await request(rq.method, p, { headers, body, auth }) };
}

// errors of act against the line's expectation (bindings happen as a side effect on success
// paths; a polled line is compared on a scratch context until it matches)
function compare(line, act, c) {
  const errs = [];
  const exp = line.response;
  const diff = SETTEE ? DIFF.get(line.name) : undefined;
  if (diff) {
    const want = diff.settee;
    if (act.status !== want.status) errs.push(`status ${act.status}, expected ${want.status} (settee differs from CouchDB's ${diff.couchdb}); body ${act.text.slice(0, 300)}`);
    if ((act.headers['content-type'] || '') !== 'application/json') errs.push(`content-type ${act.headers['content-type']}`);
    c.json(want.body, act.json, 'body', errs);
    return errs;
  }
  if (act.status !== exp.status) errs.push(`status ${act.status}, expected ${exp.status} (body ${act.text.slice(0, 300)})`);
  // headers the golden keeps
  for (const [name, ev] of Object.entries(exp.headers || {})) {
    const av = act.headers[name];
    if (name === 'set-cookie') {
      const list = av === undefined ? [] : Array.isArray(av) ? av : [av];
      if (list.length !== ev.length) errs.push(`set-cookie: ${JSON.stringify(list)}, expected ${JSON.stringify(ev)}`);
      else ev.forEach((e, i) => { if (!c.str(e, list[i])) errs.push(`set-cookie[${i}]: expected ${JSON.stringify(e)}, got ${JSON.stringify(list[i])}`); });
    } else if (!c.str(ev, av)) errs.push(`header ${name}: expected ${JSON.stringify(ev)}, got ${JSON.stringify(av)}`);
  }
  for (const name of ['set-cookie', 'www-authenticate']) {
    if (!(name in (exp.headers || {})) && act.headers[name] !== undefined) errs.push(`unexpected ${name}: ${JSON.stringify(act.headers[name])}`);
  }
  if (exp.body_omitted || line.request.method === 'HEAD') return errs;
  let body = act.json;
  if (exp.body_encoding === undefined && exp.body !== undefined && body === undefined) {
    errs.push(`body is not JSON: ${act.text.slice(0, 300)}`);
    return errs;
  }
  if (exp.body_encoding !== undefined) {
    if (act.text !== exp.body) errs.push(`body ${JSON.stringify(act.text.slice(0, 200))}, expected ${JSON.stringify(String(exp.body).slice(0, 200))}`);
    return errs;
  }
  let want = exp.body;
  if (line.unstable) {
    // timing dependent: status and the shape of the body only
    const shape = (v) => (Array.isArray(v) ? 'array' : v && typeof v === 'object' ? Object.keys(v).sort().join() : typeof v);
    if (shape(want) !== shape(body)) errs.push(`body shape ${shape(body)}, expected ${shape(want)} (unstable: ${line.unstable})`);
    return errs;
  }
  if (isAllDbs(line) && Array.isArray(want) && Array.isArray(body)) {
    const named = new Set(want);
    // other test files leave users (and so per-user dbs) behind: only the golden's own names count
    body = body.filter((n) => named.has(n) || /^golden_auth_/.test(n));
  }
  if (body && want && typeof body === 'object' && typeof want === 'object' && 'db_name' in want && 'compact_running' in want) {
    // whether a compaction is still running when the info is read is timing; and _users
    // holds the users of other test files on a server that is not fresh
    body = { ...body, compact_running: want.compact_running };
    if (want.db_name === '_users') body = { ...body, doc_count: want.doc_count, doc_del_count: want.doc_del_count };
  }
  if (line.name === 'users_design_auth_get' && body && typeof body.validate_doc_update === 'string') {
    body = { ...body, validate_doc_update: want.validate_doc_update };
  }
  if (ALLOWANCES[line.name] && /_root$/.test(line.name) && body && typeof body === 'object') {
    const { version, git_sha, features, vendor, ...rest } = body;
    if (typeof version !== 'string') errs.push('version must be a string');
    if (!Array.isArray(features)) errs.push('features must be a list');
    if (!vendor || typeof vendor.name !== 'string') errs.push('vendor.name must be a string');
    body = { ...rest, version: want.version, git_sha: want.git_sha, features: want.features, vendor: want.vendor };
  }
  c.json(want, body, 'body', errs);
  return errs;
}

function scratch() {
  const c = new Ctx();
  c.bind = new Map(ctx.bind);
  return c;
}

async function replay(line) {
  if (line.poll) {
    const interval = Math.max(50, Math.min(line.poll.interval_ms || 250, 500));
    const end = Date.now() + Math.min(line.poll.timeout_ms || 20000, 20000);
    let errs, p, act;
    for (;;) {
      try {
        ({ p, act } = await send(line));
        const c = scratch();
        errs = compare(line, act, c);
        if (!errs.length) { ctx.bind = c.bind; return; }
      } catch (e) { errs = [`request failed: ${e.message}`]; p = line.request.path; }
      if (Date.now() > end) break;
      await sleep(interval);
    }
    assert.fail(`${line.name}: ${line.request.method} ${p} (polled until ${line.poll.until}, gave up)\n  ` + errs.join('\n  '));
  }
  const { p, act } = await send(line);
  const errs = compare(line, act, ctx);
  if (/^node_restart_/.test(line.name) && !/_up$/.test(line.name) && act.status === 200) await waitGone();
  if (errs.length) assert.fail(`${line.name}: ${line.request.method} ${p}\n  ` + errs.join('\n  '));
}

// ------------------------------------------------------------------ clean-up

async function cleanUp() {
  let handlersSet = false;
  for (const [s, k] of CONFIG_KEYS) {
    const had = await configGet(s, k).catch(() => undefined);
    if (had !== undefined) {
      await configDelete(s, k);
      if (s === 'chttpd' && k === 'authentication_handlers') handlersSet = true;
    }
  }
  if (handlersSet) await restartNode();
  for (const u of USERS) await deleteUser(u);
  const all = await admin('GET', '/_all_dbs');
  if (all.status === 200 && Array.isArray(all.json)) {
    for (const db of all.json) if (/^(golden_auth_|userdb-)/.test(db)) await deleteDb(db);
  }
}

test(`golden auth: ${LINES.length} request/response pairs`, { timeout: 600000, skip: GOLDEN_MISSING }, async (t) => {
  assert.equal(LINES.length, 464, 'auth.jsonl has 464 lines');
  for (const d of SETTEE_DIFFS) assert.ok(LINES.some((l) => l.name === d.name), `settee difference ${d.name} names a line`);
  SETTEE = await isSettee();
  t.diagnostic(SETTEE ? `settee: ${SETTEE_DIFFS.length} lines expect settee's answer (see SETTEE_DIFFS)` : 'not settee: every line expects CouchDB\'s recorded answer');
  // a secret from an earlier cookie login would be the old value of config_put_chttpd_auth_secret
  const oldSecret = await configGet('chttpd_auth', 'secret').catch(() => undefined);
  await cleanUp();
  if (oldSecret !== undefined) await configDelete('chttpd_auth', 'secret');
  let failed = 0;
  try {
    for (const line of LINES) {
      const note = DIFF.has(line.name) && SETTEE ? `settee differs: CouchDB answers ${DIFF.get(line.name).couchdb}` : ALLOWANCES[line.name];
      // later lines depend on earlier ones: a failing line is reported and the replay goes on
      await t.test(line.name, { timeout: 120000 }, async (st) => {
        if (note) st.diagnostic(note);
        try { await replay(line); } catch (e) { failed++; throw e; }
      });
    }
  } finally {
    await cleanUp().catch((e) => t.diagnostic(`clean-up: ${e.message}`));
    if (oldSecret !== undefined) await configSet('chttpd_auth', 'secret', oldSecret).catch(() => {});
    else await configDelete('chttpd_auth', 'secret').catch(() => {});
  }
  t.diagnostic(`${failed} of ${LINES.length} lines differ`);
});
