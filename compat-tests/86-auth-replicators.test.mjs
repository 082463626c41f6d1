// Replicators that authenticate as a database member who is not an admin:
//  1. CouchDB 3.4's replicator, replayed request by request as ../shared/PROTOCOL.md describes
//     it: a form-encoded POST /_session, then nothing but the AuthSession cookie for GET /db,
//     _local checkpoints (404, then PUT), _changes (feed=normal, style=all_docs, since),
//     _revs_diff, _bulk_get, open_revs as multipart/mixed for docs with attachments, _bulk_docs
//     new_edits=false, multipart/related PUT new_edits=false, _ensure_full_commit — between two
//     databases of the server, both ways and then incrementally from the checkpoints; revisions,
//     conflicts, deletions and attachments compared afterwards. The same start with a
//     non-member's cookie (403), a garbage cookie (400) and an expired one (401, then the
//     replicator logs in again and carries on).
//  2. pouchdb-server (npm, in memory) pulling from and pushing to the server through its
//     POST /_replicate, with the member's credentials in the URLs. Needs pouchdb-server from
//     tools/bench/node_modules (`npm ci` in tools/bench); skipped with the reason otherwise.
//  3. PouchDB 9 live sync (live, retry) as the member with basic auth: writes on either side
//     arrive within seconds; cancel completes.
// Expected: CouchDB 3.4.3 (chttpd_auth cookie handler, couch_replicator's request sequence,
// golden auth.jsonl session_cookie_* lines). Users and databases are unique per run and removed.
import test, { before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { PouchDB, BASE, memory } from './lib.mjs';
import {
  request, admin, anon, enc, sleep, createUser, deleteUser, createDb, deleteDb, userDocPath, configGet,
  authSession, cookieHeader,
} from './lib-auth.mjs';
import { parseMultipart, parseContentType, md5b64, pseudoRandomBytes } from './lib-repl.mjs';

const T = { timeout: 60000 };
const HERE = path.dirname(fileURLToPath(import.meta.url));
const RUN = (process.pid.toString(36) + Date.now().toString(36)).toLowerCase();
const M = { name: `rm${RUN}`, password: `rm${RUN}pw` }; // member of every db below
const N = { name: `rn${RUN}`, password: `rn${RUN}pw` }; // a user who is a member of none
const SECURITY = { admins: { names: [], roles: [] }, members: { names: [M.name], roles: [] } };
const DB = {
  a: `auth86_a_${RUN}`, // the replay: A → B, B → A, A → B again
  b: `auth86_b_${RUN}`,
  pull: `auth86_pull_${RUN}`, // pouchdb-server pulls from it
  push: `auth86_push_${RUN}`, // pouchdb-server pushes into it
  live: `auth86_live_${RUN}`, // PouchDB live sync
};
const E = {
  anonDb: { error: 'unauthorized', reason: 'You are not authorized to access this db.' },
  nonMember: { error: 'forbidden', reason: 'You are not allowed to access this db.' },
  malformed: { error: 'bad_request', reason: 'Malformed AuthSession cookie. Please clear your cookies.' },
};
const OCTET = 'application/octet-stream';
const R = (gen, c) => `${gen}-${c.repeat(32)}`;
const ATT1 = pseudoRandomBytes(5000, 86); // attachment bytes, with CRLFs and dashes somewhere
ATT1.write('\r\n--', 1000);
const ATT2 = Buffer.from('second attachment\r\n--\r\n');

before(async () => {
  await createUser(M.name, M.password);
  await createUser(N.name, N.password);
  for (const db of Object.values(DB)) await createDb(db, SECURITY);
});

after(async () => {
  for (const u of [M, N]) await deleteUser(u.name).catch(() => {});
  for (const db of Object.values(DB)) await deleteDb(db).catch(() => {});
});

const ok = (r, status, what) => assert.equal(r.status, status, `${what}: ${r.status} ${r.text}`);

// ------------------------------------------------------------------ the replayed replicator

// A form-encoded login, as couch_replicator_auth_session does it: answers the cookie value.
async function formLogin(user) {
  const r = await anon('POST', '/_session', {
    body: `name=${enc(user.name)}&password=${enc(user.password)}`,
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
  });
  ok(r, 200, `form login of ${user.name}`);
  assert.deepEqual(r.json, { ok: true, name: user.name, roles: [] });
  const c = authSession(r);
  assert.ok(c, 'the login sets an AuthSession cookie');
  return c;
}

// A session of CouchDB's replicator: every request carries only the cookie; a 401 makes it log
// in again and resend once (couch_replicator_auth_session). `log` keeps [method, path, status].
class Session {
  constructor(user, cookie = null) {
    this.user = user;
    this.cookie = cookie;
    this.logins = 0;
    this.log = [];
  }
  async login() {
    this.logins++;
    this.cookie = await formLogin(this.user);
  }
  async req(method, p, opts = {}) {
    if (!this.cookie) await this.login();
    const send = () => anon(method, p, { timeout: 15000, ...opts, headers: { ...(opts.headers || {}), ...cookieHeader(this.cookie) } });
    let r = await send();
    this.log.push([method, p, r.status]);
    if (r.status === 401) {
      await this.login();
      r = await send();
      this.log.push([method, p, r.status]);
    }
    return r;
  }
}

const docUrl = (db, id) => `/${enc(db)}/${id.startsWith('_local/') ? '_local/' + enc(id.slice(7)) : enc(id)}`;
const sinceOf = (seq) => (typeof seq === 'string' ? enc(seq) : String(seq));

// One replication source → target as CouchDB 3.4's replicator runs it. Returns counts.
async function replicate(s, source, target, repId) {
  const src = `/${enc(source)}`;
  const tgt = `/${enc(target)}`;
  const stats = { changes: 0, missing: 0, bulkGet: 0, multipart: 0, bulkDocs: 0, put: 0 };
  const infos = {};
  for (const [k, p] of [['src', src], ['tgt', tgt]]) {
    const r = await s.req('GET', p + '/');
    ok(r, 200, `GET ${p}/`);
    assert.ok(r.json.update_seq !== undefined && typeof r.json.instance_start_time === 'string', `${p}: update_seq and instance_start_time`);
    infos[k] = r.json;
  }
  // checkpoints on both sides: 404 not_found on a first run
  const ckpt = {};
  for (const [k, p] of [['src', src], ['tgt', tgt]]) {
    const r = await s.req('GET', `${p}/_local/${repId}`);
    if (r.status === 404) {
      assert.equal(r.json?.error, 'not_found', `GET ${p}/_local/${repId}: ${r.text}`);
      ckpt[k] = null;
    } else {
      ok(r, 200, `GET ${p}/_local/${repId}`);
      ckpt[k] = r.json;
    }
  }
  const since = ckpt.src && ckpt.tgt && ckpt.src.session_id === ckpt.tgt.session_id ? ckpt.src.source_last_seq : 0;
  const ch = await s.req('GET', `${src}/_changes?feed=normal&style=all_docs&since=${sinceOf(since)}&timeout=10000`);
  ok(ch, 200, '_changes');
  assert.ok(Array.isArray(ch.json.results) && ch.json.last_seq !== undefined, `_changes shape: ${ch.text}`);
  const pending = await s.req('GET', `${src}/_changes?since=${sinceOf(ch.json.last_seq)}&limit=0`);
  ok(pending, 200, '_changes pending count');
  stats.changes = ch.json.results.length;
  const revs = {};
  for (const row of ch.json.results) {
    assert.ok(!row.id.startsWith('_local/'), `_local docs are never in _changes (${row.id})`);
    revs[row.id] = row.changes.map((c) => c.rev);
  }
  if (stats.changes) {
    const diff = await s.req('POST', `${tgt}/_revs_diff`, { body: revs });
    ok(diff, 200, '_revs_diff');
    const wanted = []; // {id, rev, atts_since}
    for (const [id, d] of Object.entries(diff.json)) {
      for (const rev of d.missing) {
        wanted.push({ id, rev, ...(d.possible_ancestors?.length ? { atts_since: d.possible_ancestors } : {}) });
      }
    }
    stats.missing = wanted.length;
    if (wanted.length) {
      const bg = await s.req('POST', `${src}/_bulk_get?latest=true&revs=true&attachments=false`, {
        body: { docs: wanted, latest: true, revs: true, attachments: false },
      });
      ok(bg, 200, '_bulk_get');
      assert.deepEqual(Object.keys(bg.json), ['results'], '_bulk_get answers exactly {results}');
      assert.deepEqual(bg.json.results.map((x) => x.id), wanted.map((w) => w.id), 'one result per request, in order');
      const batch = [];
      const withAtts = [];
      bg.json.results.forEach((res, i) => {
        const got = res.docs.find((d) => d.ok)?.ok;
        assert.ok(got, `_bulk_get ${res.id}: ${JSON.stringify(res.docs)}`);
        assert.ok(got._revisions, `_bulk_get ${res.id}: _revisions`);
        if (got._attachments) withAtts.push(wanted[i]);
        else batch.push(got);
      });
      stats.bulkGet = batch.length;
      // docs with attachments: open_revs one by one as multipart/mixed
      for (const w of withAtts) {
        const q = `?revs=true&open_revs=${enc(JSON.stringify([w.rev]))}&latest=true` + (w.atts_since ? `&atts_since=${enc(JSON.stringify(w.atts_since))}` : '');
        const r = await s.req('GET', docUrl(source, w.id) + q, { headers: { Accept: 'multipart/mixed' } });
        ok(r, 200, `open_revs ${w.id}`);
        const ct = parseContentType(r.headers['content-type']);
        assert.equal(ct.type, 'multipart/mixed', `open_revs ${w.id}: ${r.headers['content-type']}`);
        for (const part of parseMultipart(r.buf, ct.params.boundary)) {
          const pct = part.headers['content-type'];
          if (/^multipart\/related/.test(pct)) {
            stats.multipart++;
            const put = await s.req('PUT', docUrl(target, w.id) + '?new_edits=false', { headers: { 'Content-Type': pct }, body: part.body });
            ok(put, 201, `multipart PUT ${w.id}`);
            assert.equal(put.json.rev, w.rev);
            stats.put++;
          } else {
            assert.equal(pct, 'application/json', `open_revs ${w.id}: a doc part, not ${pct}: ${part.body}`);
            batch.push(JSON.parse(part.body.toString('utf8')));
          }
        }
      }
      if (batch.length) {
        const bd = await s.req('POST', `${tgt}/_bulk_docs`, { body: { docs: batch, new_edits: false } });
        ok(bd, 201, '_bulk_docs new_edits=false');
        assert.deepEqual(bd.json, [], '_bulk_docs new_edits=false answers []');
        stats.bulkDocs = batch.length;
      }
    }
  }
  for (const [k, p] of [['src', src], ['tgt', tgt]]) {
    const r = await s.req('POST', `${p}/_ensure_full_commit`, { headers: { 'Content-Type': 'application/json' } });
    ok(r, 201, `${p}/_ensure_full_commit`);
    assert.equal(r.json.ok, true);
    assert.equal(r.json.instance_start_time, infos[k].instance_start_time, `${p}: instance_start_time as in GET /db`);
  }
  const sessionId = crypto.randomBytes(16).toString('hex');
  for (const [k, p] of [['src', src], ['tgt', tgt]]) {
    const entry = {
      session_id: sessionId, start_time: new Date().toUTCString(), end_time: new Date().toUTCString(),
      start_last_seq: since, end_last_seq: ch.json.last_seq, recorded_seq: ch.json.last_seq,
      missing_checked: stats.changes, missing_found: stats.missing, docs_read: stats.missing,
      docs_written: stats.missing, doc_write_failures: 0,
    };
    const body = {
      session_id: sessionId, source_last_seq: ch.json.last_seq, replication_id_version: 4,
      history: [entry, ...(ckpt[k]?.history || [])].slice(0, 50),
      ...(ckpt[k] ? { _rev: ckpt[k]._rev } : {}),
    };
    const r = await s.req('PUT', `${p}/_local/${repId}`, { body });
    ok(r, 201, `PUT ${p}/_local/${repId}`);
    assert.equal(r.json.ok, true);
  }
  return stats;
}

// Every id of a db (from _changes, deleted included) → its leaves with histories, as the admin.
async function snapshot(db) {
  const ch = await admin('GET', `/${enc(db)}/_changes?style=all_docs`);
  ok(ch, 200, `${db} _changes`);
  const out = {};
  for (const row of ch.json.results) {
    const r = await admin('GET', `${docUrl(db, row.id)}?open_revs=all&revs=true`);
    ok(r, 200, `${db}/${row.id} open_revs=all`);
    out[row.id] = r.json.map((x) => x.ok).sort((a, b) => (a._rev < b._rev ? -1 : 1));
  }
  return out;
}
async function assertSameDbs(a, b, what) {
  const [sa, sb] = [await snapshot(a), await snapshot(b)];
  assert.deepEqual(Object.keys(sb).sort(), Object.keys(sa).sort(), `${what}: the same ids`);
  for (const id of Object.keys(sa)) assert.deepEqual(sb[id], sa[id], `${what}: ${id} has the same leaves and histories`);
  return sa;
}
async function getDoc(db, id, q = '') {
  const r = await admin('GET', docUrl(db, id) + q);
  ok(r, 200, `GET ${db}/${id}${q}`);
  return r.json;
}
async function attBytes(db, id, name) {
  const r = await admin('GET', `${docUrl(db, id)}/${enc(name)}`, { headers: { Accept: '*/*' } });
  ok(r, 200, `GET ${db}/${id}/${name}`);
  return r.buf;
}

test('CouchDB replicator request sequence as a member, cookie only: A → B, B → A, then incremental A → B', T, async () => {
  const m = new Session(M);
  // seed A, as the member with its cookie (a member writes docs and _local docs)
  const put = async (id, body) => {
    const r = await m.req('PUT', docUrl(DB.a, id), { body });
    assert.ok(r.status === 201, `seed PUT ${id}: ${r.status} ${r.text}`);
    return r.json.rev;
  };
  for (let i = 1; i <= 5; i++) await put(`d${i}`, { i });
  const d2 = await put('d2b', { v: 1 });
  await put('d2b', { _rev: d2, v: 2 }).then((r2) => put('d2b', { _rev: r2, v: 3 }));
  const gone = await put('gone', { v: 1 });
  const del = await m.req('DELETE', `${docUrl(DB.a, 'gone')}?rev=${enc(gone)}`);
  ok(del, 200, 'DELETE gone');
  const goneDeleted = del.json.rev;
  // a conflicted doc: 1-a → 2-b and 1-a → 2-c, and a deleted conflict 1-a → 2-d (deleted)
  ok(await m.req('POST', `/${enc(DB.a)}/_bulk_docs`, { body: { new_edits: false, docs: [
    { _id: 'conf', _rev: R(2, 'b'), _revisions: { start: 2, ids: ['b'.repeat(32), 'a'.repeat(32)] }, side: 'b' },
    { _id: 'conf', _rev: R(2, 'c'), _revisions: { start: 2, ids: ['c'.repeat(32), 'a'.repeat(32)] }, side: 'c' },
    { _id: 'conf', _rev: R(2, 'd'), _revisions: { start: 2, ids: ['d'.repeat(32), 'a'.repeat(32)] }, _deleted: true },
  ] } }), 201, 'conflicts');
  // a doc with a binary attachment and a second revision that only changes the JSON
  const att1 = await put('att', { v: 1, _attachments: { 'a.bin': { content_type: OCTET, data: ATT1.toString('base64') } } });
  await put('att', { _rev: att1, v: 2, _attachments: { 'a.bin': { stub: true } } });
  ok(await m.req('PUT', `/${enc(DB.a)}/_local/notreplicated`, { body: { v: 1 } }), 201, '_local doc');
  m.logins = 0;
  m.log = [];

  // --- A → B, first run
  const repAB = crypto.randomBytes(16).toString('hex');
  const s1 = await replicate(m, DB.a, DB.b, repAB);
  assert.equal(m.logins, 0, 'the cookie was enough: no 401, no second login');
  assert.ok(s1.multipart >= 1, 'the doc with an attachment went as multipart/related');
  assert.ok(s1.bulkDocs >= 7, `_bulk_docs carried the plain docs (${s1.bulkDocs})`);
  assert.ok(m.log.every(([, , st]) => st !== 401 && st !== 403), `no auth failure: ${JSON.stringify(m.log.filter(([, , st]) => st >= 400))}`);
  await assertSameDbs(DB.a, DB.b, 'A → B');
  const conf = await getDoc(DB.b, 'conf', '?conflicts=true&deleted_conflicts=true');
  assert.equal(conf._rev, R(2, 'c'));
  assert.deepEqual(conf._conflicts, [R(2, 'b')]);
  assert.deepEqual(conf._deleted_conflicts, [R(2, 'd')]);
  assert.equal((await admin('GET', docUrl(DB.b, 'gone'))).status, 404, 'the deletion arrived');
  const goneB = await getDoc(DB.b, 'gone', `?rev=${enc(goneDeleted)}&revs=true`);
  assert.deepEqual([goneB._deleted, goneB._revisions.ids.length], [true, 2], 'the deleted leaf and its history are on B');
  const goneOld = await admin('GET', `${docUrl(DB.b, 'gone')}?rev=${enc(gone)}`);
  assert.deepEqual([goneOld.status, goneOld.json], [404, { error: 'not_found', reason: 'missing' }], 'an ancestor\'s body is not replicated');
  assert.equal((await getDoc(DB.b, 'd2b', '?revs=true'))._revisions.ids.length, 3);
  const attB = await getDoc(DB.b, 'att', '?revs=true');
  assert.equal(attB.v, 2);
  assert.equal(attB._revisions.start, 2);
  assert.deepEqual(attB._attachments['a.bin'], { content_type: OCTET, revpos: 1, digest: 'md5-' + md5b64(ATT1), length: ATT1.length, stub: true });
  assert.ok((await attBytes(DB.b, 'att', 'a.bin')).equals(ATT1), 'attachment bytes arrived');
  assert.equal((await m.req('GET', `/${enc(DB.b)}/_local/notreplicated`)).status, 404, '_local docs are not replicated');

  // --- changes on B (as the member), then B → A
  const upd = async (id, f) => {
    const d = await getDoc(DB.b, id);
    const r = await m.req('PUT', docUrl(DB.b, id), { body: f(d) });
    ok(r, 201, `update ${id} on B`);
    return r.json.rev;
  };
  await upd('d1', (d) => ({ ...d, changed: 'on B' }));
  const d3 = await getDoc(DB.b, 'd3');
  ok(await m.req('DELETE', `${docUrl(DB.b, 'd3')}?rev=${enc(d3._rev)}`), 200, 'delete d3 on B');
  ok(await m.req('POST', `/${enc(DB.b)}/_bulk_docs`, { body: { new_edits: false, docs: [
    { _id: 'conf', _rev: R(3, 'e'), _revisions: { start: 3, ids: ['e'.repeat(32), 'b'.repeat(32), 'a'.repeat(32)] }, side: 'e' },
  ] } }), 201, 'a new branch on B');
  await upd('att', (d) => ({ ...d, v: 3, _attachments: { ...d._attachments, 'b.txt': { content_type: 'text/plain', data: ATT2.toString('base64') } } }));
  ok(await m.req('PUT', docUrl(DB.b, 'newOnB'), { body: { from: 'B' } }), 201, 'new doc on B');
  m.log = [];
  const repBA = crypto.randomBytes(16).toString('hex');
  const s2 = await replicate(m, DB.b, DB.a, repBA);
  assert.equal(m.logins, 0, 'still no second login');
  assert.equal(s2.missing, 5, `five revisions missing on A: ${JSON.stringify(s2)}`);
  assert.equal(s2.multipart, 1, 'the new attachment went as multipart with atts_since (only b.txt follows)');
  await assertSameDbs(DB.a, DB.b, 'B → A');
  const confA = await getDoc(DB.a, 'conf', '?conflicts=true&deleted_conflicts=true');
  assert.equal(confA._rev, R(3, 'e'));
  assert.deepEqual(confA._conflicts, [R(2, 'c')]);
  assert.deepEqual(confA._deleted_conflicts, [R(2, 'd')]);
  assert.equal((await admin('GET', docUrl(DB.a, 'd3'))).status, 404);
  assert.equal((await getDoc(DB.a, 'd1')).changed, 'on B');
  assert.deepEqual(await getDoc(DB.a, 'newOnB').then(({ _id, from }) => ({ _id, from })), { _id: 'newOnB', from: 'B' });
  const attA = await getDoc(DB.a, 'att');
  assert.equal(attA.v, 3);
  assert.deepEqual(Object.keys(attA._attachments).sort(), ['a.bin', 'b.txt']);
  assert.ok((await attBytes(DB.a, 'att', 'a.bin')).equals(ATT1));
  assert.ok((await attBytes(DB.a, 'att', 'b.txt')).equals(ATT2));

  // --- A → B again: both checkpoints found (200), _changes from source_last_seq, nothing missing
  m.log = [];
  const s3 = await replicate(m, DB.a, DB.b, repAB);
  const getLocal = m.log.filter(([meth, p]) => meth === 'GET' && p.includes(`/_local/${repAB}`));
  assert.deepEqual(getLocal.map(([, , st]) => st), [200, 200], 'both checkpoints found');
  assert.ok(s3.changes >= 1 && s3.changes < 12, `an incremental _changes (${s3.changes} rows)`);
  assert.equal(s3.missing, 0, 'B already has everything');
  assert.equal(m.logins, 0);
  await assertSameDbs(DB.a, DB.b, 'A → B again');
});

test('the replicator\'s first request with a non-member\'s cookie → 403; garbage cookie → 400; expired cookie → 401, new login', T, async () => {
  // non-member: the login works, the cookie is valid, the db refuses
  const n = new Session(N);
  await n.login();
  const who = await anon('GET', '/_session', { headers: cookieHeader(n.cookie) });
  assert.deepEqual(who.json.userCtx, { name: N.name, roles: [] });
  assert.equal(who.json.info.authenticated, 'cookie');
  for (const p of [`/${enc(DB.a)}/`, `/${enc(DB.a)}/_local/x`, `/${enc(DB.a)}/_changes?feed=normal&style=all_docs&since=0&timeout=10000`]) {
    const r = await n.req('GET', p);
    assert.deepEqual([r.status, r.json], [403, E.nonMember], `non-member GET ${p}`);
  }
  const rd = await n.req('POST', `/${enc(DB.b)}/_revs_diff`, { body: { x: [R(1, 'a')] } });
  assert.deepEqual([rd.status, rd.json], [403, E.nonMember], 'non-member _revs_diff');
  const bd = await n.req('POST', `/${enc(DB.b)}/_bulk_docs`, { body: { docs: [{ _id: 'x', _rev: R(1, 'a') }], new_edits: false } });
  assert.deepEqual([bd.status, bd.json], [403, E.nonMember], 'non-member _bulk_docs');
  assert.equal(n.logins, 1, 'a 403 is not a reason to log in again');
  assert.equal((await admin('GET', docUrl(DB.b, 'x'))).status, 404, 'nothing written');

  // garbage cookie: 400 bad_request, on a db as on /_session
  for (const p of [`/${enc(DB.a)}/`, '/_session']) {
    const r = await anon('GET', p, { headers: cookieHeader('garbage') });
    assert.deepEqual([r.status, r.json], [400, E.malformed], `garbage cookie GET ${p}`);
  }

  // an expired cookie of the member: forged with the server's secret and the user's salt the
  // way CouchDB makes them (checked first against a cookie the server made), dated before the
  // session timeout. Anonymous → 401 on the db; the replicator logs in again and goes on.
  const m = new Session(M);
  await m.login();
  const real = Buffer.from(m.cookie, 'base64url');
  const [name, hex] = real.toString('latin1').split(':', 2);
  assert.equal(name, M.name);
  assert.match(hex, /^[0-9A-F]+$/, 'the cookie time is upper-case hex');
  const mac = real.subarray(name.length + hex.length + 2);
  const secret = await configGet('chttpd_auth', 'secret');
  assert.ok(secret, '[chttpd_auth] secret is set after a login');
  const salt = (await admin('GET', userDocPath(M.name))).json.salt;
  assert.ok(salt, 'the user doc has a salt');
  const algs = String((await configGet('chttpd_auth', 'hash_algorithms')) || 'sha256, sha')
    .split(',').map((s) => s.trim()).map((a) => (a === 'sha' ? 'sha1' : a));
  const forge = (alg, time) => {
    const t = time.toString(16).toUpperCase();
    const h = crypto.createHmac(alg, secret + salt).update(`${M.name}:${t}`).digest();
    return Buffer.concat([Buffer.from(`${M.name}:${t}:`, 'latin1'), h]).toString('base64url');
  };
  const alg = algs.find((a) => forge(a, parseInt(hex, 16)) === m.cookie);
  assert.ok(alg, `the server's cookie is HMAC(secret + salt, name:time) under one of ${algs}`);
  const timeout = parseInt((await configGet('chttpd_auth', 'timeout')) || '600', 10);
  const expired = forge(alg, Math.floor(Date.now() / 1000) - timeout - 60);
  const fresh = forge(alg, Math.floor(Date.now() / 1000) - 5);
  const f = await anon('GET', `/${enc(DB.a)}/`, { headers: cookieHeader(fresh) });
  assert.equal(f.status, 200, `a cookie made the same way but current is accepted: ${f.text}`);
  const e = await anon('GET', '/_session', { headers: cookieHeader(expired) });
  assert.deepEqual([e.status, e.json?.userCtx], [200, { name: null, roles: [] }], 'an expired cookie is anonymous');
  const replicator = new Session(M, expired);
  const r = await replicator.req('GET', `/${enc(DB.a)}/`);
  assert.deepEqual(replicator.log.map(([, , st]) => st), [401, 200], 'GET /db: 401 with the expired cookie, 200 after a new login');
  assert.equal(replicator.logins, 1);
  assert.equal(r.json.db_name, DB.a);
  const first = await anon('GET', `/${enc(DB.a)}/`, { headers: cookieHeader(expired) });
  assert.deepEqual([first.status, first.json], [401, E.anonDb], 'the expired cookie\'s answer');
  // a well-formed cookie with a wrong MAC, and an empty one, are ignored too (golden
  // session_cookie_forged_user, session_cookie_empty): anonymous, 401 on the db
  const forged = Buffer.concat([Buffer.from(`${M.name}:7FFFFFFF:`), crypto.randomBytes(32)]).toString('base64url');
  for (const [what, c] of [['forged', forged], ['empty', '']]) {
    const r = await anon('GET', `/${enc(DB.a)}/`, { headers: cookieHeader(c) });
    assert.deepEqual([r.status, r.json], [401, E.anonDb], `${what} cookie GET /db`);
  }
  const lc = await replicator.req('GET', `/${enc(DB.a)}/_local/${'0'.repeat(32)}`);
  assert.deepEqual([lc.status, lc.json?.error], [404, 'not_found'], 'and the replication goes on with the new cookie');
});

// ------------------------------------------------------------------ pouchdb-server

const POUCHDB_SERVER = path.join(HERE, '..', 'tools', 'bench', 'node_modules', 'pouchdb-server', 'bin', 'pouchdb-server');

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

test('needs pouchdb-server: its POST /_replicate pulls from and pushes to the server as the member (credentials in the URLs)', T, async (t) => {
  if (!fs.existsSync(POUCHDB_SERVER)) {
    t.skip(`needs pouchdb-server: ${POUCHDB_SERVER} is missing (run npm ci in tools/bench)`);
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'auth86-pouchdb-server-'));
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ log: { file: path.join(dir, 'pouchdb.log'), level: 'warning' } }));
  const port = await freePort();
  const child = spawn(process.execPath, [POUCHDB_SERVER, '-m', '-n', '-p', String(port), '-o', '127.0.0.1', '-d', dir + '/', '-c', path.join(dir, 'config.json')],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c) => { out += c; });
  child.stderr.on('data', (c) => { out += c; });
  let exited = false;
  const exitP = new Promise((r) => child.on('exit', () => { exited = true; r(); }));
  t.after(async () => {
    if (!exited) {
      child.kill('SIGTERM');
      const k = setTimeout(() => { if (!exited) child.kill('SIGKILL'); }, 5000);
      await exitP;
      clearTimeout(k);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const PS = `http://127.0.0.1:${port}`;
  const ps = async (method, p, body) => {
    const r = await fetch(PS + p, {
      method, headers: { Accept: 'application/json', ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined, signal: AbortSignal.timeout(30000),
    });
    const text = await r.text();
    let json;
    try { json = JSON.parse(text); } catch { json = undefined; }
    return { status: r.status, text, json };
  };
  let up = false;
  for (const end = Date.now() + 20000; Date.now() < end && !exited; await sleep(100)) {
    try { if ((await ps('GET', '/')).status === 200) { up = true; break; } } catch { /* not yet */ }
  }
  if (!up) {
    t.skip(`needs pouchdb-server: it did not answer on ${PS} within 20 s${exited ? ' (it exited)' : ''}: ${out.slice(-500)}`);
    return;
  }
  const withCreds = (db) => {
    const u = new URL(`${BASE}/${enc(db)}`);
    u.username = enc(M.name);
    u.password = enc(M.password);
    return u.href;
  };

  // pull: settee (as the member) → pouchdb-server
  const seed = Array.from({ length: 30 }, (_, i) => ({ _id: `p${String(i).padStart(2, '0')}`, i }));
  ok(await admin('POST', `/${enc(DB.pull)}/_bulk_docs`, { body: { docs: seed } }), 201, 'seed pull db');
  ok(await admin('PUT', `/${enc(DB.pull)}/withatt`, { body: { _attachments: { 'a.bin': { content_type: OCTET, data: ATT1.toString('base64') } } } }), 201, 'seed attachment');
  const pull = await ps('POST', '/_replicate', { source: withCreds(DB.pull), target: 'pulled', create_target: true });
  assert.equal(pull.status, 200, `pull: ${pull.text}`);
  assert.equal(pull.json.ok, true, pull.text);
  assert.equal(pull.json.docs_written, 31, pull.text);
  const pulled = await ps('GET', '/pulled/_all_docs');
  assert.equal(pulled.status, 200, pulled.text);
  const theirs = (await admin('GET', `/${enc(DB.pull)}/_all_docs`)).json.rows.map((r) => [r.id, r.value.rev]);
  assert.deepEqual(pulled.json.rows.map((r) => [r.id, r.value.rev]), theirs, 'every doc and rev pulled');
  const pa = await ps('GET', '/pulled/withatt?attachments=true');
  assert.equal(Buffer.from(pa.json._attachments['a.bin'].data, 'base64').equals(ATT1), true, 'attachment pulled');

  // push: pouchdb-server → settee (as the member)
  ok(await ps('PUT', '/topush'), 201, 'pouchdb-server db');
  const docs = Array.from({ length: 25 }, (_, i) => ({ _id: `q${String(i).padStart(2, '0')}`, i, from: 'pouchdb-server' }));
  const bd = await ps('POST', '/topush/_bulk_docs', { docs });
  assert.equal(bd.status, 201, bd.text);
  const first = await ps('GET', '/topush/q00');
  ok(await ps('PUT', '/topush/q00', { ...first.json, edited: true }), 201, 'second rev');
  const push = await ps('POST', '/_replicate', { source: 'topush', target: withCreds(DB.push) });
  assert.equal(push.status, 200, `push: ${push.text}`);
  assert.equal(push.json.ok, true, push.text);
  assert.equal(push.json.docs_written, 25, push.text);
  const mine = (await ps('GET', '/topush/_all_docs')).json.rows.map((r) => [r.id, r.value.rev]);
  const arrived = (await admin('GET', `/${enc(DB.push)}/_all_docs`)).json.rows.map((r) => [r.id, r.value.rev]);
  assert.deepEqual(arrived, mine, 'every doc and rev pushed');
  const q00 = (await admin('GET', `/${enc(DB.push)}/q00?revs=true`)).json;
  assert.equal(q00.edited, true);
  assert.equal(q00._revisions.ids.length, 2);
  // the member's name and password went through: a non-member's are refused
  const u = new URL(`${BASE}/${enc(DB.push)}`);
  u.username = enc(N.name);
  u.password = enc(N.password);
  const denied = await ps('POST', '/_replicate', { source: 'topush', target: u.href });
  assert.notEqual(denied.json?.ok, true, `a non-member cannot push: ${denied.text}`);
});

// ------------------------------------------------------------------ PouchDB 9 live sync

test('PouchDB 9 live sync (live, retry) as the member with basic auth: both ways within seconds, cancel completes', T, async () => {
  const local = memory('auth86_live');
  const remoteDb = new PouchDB(`${BASE}/${enc(DB.live)}`, { skip_setup: true, auth: { username: M.name, password: M.password } });
  ok(await admin('PUT', `/${enc(DB.live)}/before`, { body: { v: 0 } }), 201, 'doc before the sync');
  const errors = [];
  const sync = local.sync(remoteDb, { live: true, retry: true });
  sync.on('error', (e) => errors.push(e));
  sync.on('denied', (e) => errors.push(e));
  const completed = new Promise((resolve) => sync.on('complete', resolve));
  const within = async (what, fn, ms = 5000) => {
    const end = Date.now() + ms;
    for (;;) {
      if (await fn()) return;
      if (Date.now() > end) assert.fail(`${what}: not there within ${ms} ms (errors: ${errors.map((e) => e.message || JSON.stringify(e)).join('; ')})`);
      await sleep(50);
    }
  };
  try {
    await within('the server\'s doc in PouchDB', () => local.get('before').then(() => true, () => false), 10000);
    await local.put({ _id: 'fromLocal', v: 1 });
    await within('a local write on the server', async () => (await admin('GET', `/${enc(DB.live)}/fromLocal`)).status === 200);
    const w = await request('PUT', `/${enc(DB.live)}/fromServer`, { body: { v: 2 }, auth: { basic: `${M.name}:${M.password}` } });
    ok(w, 201, 'member write on the server');
    await within('a server write in PouchDB', () => local.get('fromServer').then((d) => d.v === 2, () => false));
    const d = await local.get('fromLocal');
    await local.put({ ...d, v: 3 });
    await within('a local update on the server', async () => (await admin('GET', `/${enc(DB.live)}/fromLocal`)).json?.v === 3);
    assert.deepEqual(errors, [], 'no sync errors');
  } finally {
    sync.cancel();
    const done = await Promise.race([completed.then(() => true), sleep(5000).then(() => false)]);
    await local.destroy().catch(() => {});
    assert.ok(done, 'cancel() ends the sync with "complete" within 5 s');
  }
});
