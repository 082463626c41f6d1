// Per-document access control (settee's `_access`, CouchDB's proposed RFC 010; CouchDB 3.x
// has not shipped it, so these run against settee only): one database created with
// ?access=true, several users and roles. Reads, writes, denials, every read endpoint
// (doc, attachment, _all_docs, every _changes feed, _bulk_get, open_revs, _revs_diff,
// _find, design docs and views), _access changing both ways, deletions, conflicts; and
// PouchDB 9 clients of two users syncing the same database live.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { PouchDB, COUCH_URL, BASE, req as adminReq, basicAuth, isSettee, memory } from './lib.mjs';
import { streamReq, waitFor, sleep, dbPath, docPath, sinceParam, rev as synthRev } from './lib-repl.mjs';

const T = { timeout: 60000 };
const tag = `${process.pid}_${Date.now().toString(36)}`;
const U = {
  alice: { name: `alice_${tag}`, roles: ['parents'] },
  bob: { name: `bob_${tag}`, roles: ['parents'] },
  carol: { name: `carol_${tag}`, roles: [`nurses_${tag}`] },
  dave: { name: `dave_${tag}`, roles: [] },
  boss: { name: `boss_${tag}`, roles: [] }, // an admin of the database (its _security), not of the server
};
const PW = 'secret';
const NURSES = `nurses_${tag}`;

// A request as one of the users (k a key of U), or as the server admin (k 'admin').
function as(k) {
  const headers = k === 'admin' ? {} : { Authorization: basicAuth(U[k].name, PW) };
  return (method, path, body, extra = {}) => adminReq(method, path, { body, headers: { ...headers, ...extra } });
}
const alice = as('alice'), bob = as('bob'), carol = as('carol'), dave = as('dave'), boss = as('boss'), admin = as('admin');

let ready;
async function setup() {
  if (!ready) {
    ready = (async () => {
      for (const u of Object.values(U)) {
        const r = await adminReq('PUT', `/_users/${encodeURIComponent('org.couchdb.user:' + u.name)}`, {
          body: { name: u.name, password: PW, roles: u.roles, type: 'user' },
        });
        assert.ok(r.status === 201 || r.status === 409, r.text);
      }
    })();
  }
  return ready;
}

// A fresh access database whose members are the users' roles and dave, administered by boss.
let dbn = 0;
async function accessDb(fn, { access = true } = {}) {
  await setup();
  const db = `acc_${tag}_${dbn++}`;
  let r = await adminReq('PUT', `/${db}${access ? '?access=true' : ''}`);
  assert.equal(r.status, 201, r.text);
  r = await adminReq('PUT', dbPath(db, '_security'), {
    body: { admins: { names: [U.boss.name], roles: [] }, members: { names: [U.dave.name], roles: ['parents', NURSES] } },
  });
  assert.equal(r.status, 200, r.text);
  try {
    return await fn(db);
  } finally {
    await adminReq('DELETE', `/${db}`);
  }
}

const put = async (who, db, id, body) => {
  const r = await who('PUT', docPath(db, id), body);
  assert.equal(r.status, 201, `PUT ${id}: ${r.status} ${r.text}`);
  return r.json.rev;
};
const ids = (rows) => rows.map((r) => r.id).sort();
const changes = async (who, db, q = '') => {
  const r = await who('GET', dbPath(db, '_changes') + q);
  assert.equal(r.status, 200, r.text);
  return r.json;
};

// alice: a1 (hers), a2 (hers and bob's); bob: b1; carol: n1 (the nurses' role);
// the admin: x1 without _access (admins only), x2 for the parents role.
async function seed(db) {
  const revs = {};
  revs.a1 = await put(alice, db, 'a1', { v: 'a1' });
  revs.a2 = await put(alice, db, 'a2', { v: 'a2', _access: [U.alice.name, U.bob.name] });
  revs.b1 = await put(bob, db, 'b1', { v: 'b1', _access: [] });
  revs.n1 = await put(carol, db, 'n1', { v: 'n1', _access: [NURSES] });
  revs.x1 = await put(admin, db, 'x1', { v: 'x1' });
  revs.x2 = await put(admin, db, 'x2', { v: 'x2', _access: ['parents'] });
  return revs;
}

test('access: only settee implements _access; skip elsewhere', async (t) => {
  if (!(await isSettee())) t.skip('CouchDB 3.x has no per-document access');
});

test('PUT /db?access=true: the db says so; a plain db is unchanged', T, async (t) => {
  if (!(await isSettee())) return t.skip();
  await accessDb(async (db) => {
    const info = await admin('GET', `/${db}`);
    assert.deepEqual(info.json.props, { access: true });
  });
  await accessDb(async (db) => {
    const info = await admin('GET', `/${db}`);
    assert.deepEqual(info.json.props, {});
    // without access control every member reads every doc, _access or not
    await put(alice, db, 'p1', { _access: [U.alice.name] });
    await put(admin, db, 'p2', {});
    assert.equal((await bob('GET', docPath(db, 'p1'))).status, 200);
    assert.deepEqual((await bob('GET', docPath(db, 'p1'))).json._access, [U.alice.name]);
    assert.deepEqual(ids((await bob('GET', dbPath(db, '_all_docs'))).json.rows), ['p1', 'p2']);
    assert.equal((await changes(dave, db)).results.length, 2);
  }, { access: false });
});

test('writes: an empty _access becomes [name]; a user must stay in it; bad _access is 400', T, async (t) => {
  if (!(await isSettee())) return t.skip();
  await accessDb(async (db) => {
    await put(alice, db, 'd1', { v: 1 });
    assert.deepEqual((await alice('GET', docPath(db, 'd1'))).json._access, [U.alice.name]);
    await put(alice, db, 'd2', { v: 1, _access: [] });
    assert.deepEqual((await alice('GET', docPath(db, 'd2'))).json._access, [U.alice.name]);
    // POST /db and _bulk_docs take the same path
    let r = await alice('POST', `/${db}`, { _id: 'd3', v: 3 });
    assert.equal(r.status, 201, r.text);
    r = await alice('POST', dbPath(db, '_bulk_docs'), { docs: [{ _id: 'd4' }, { _id: 'd5', _access: [U.bob.name] }] });
    assert.equal(r.status, 201);
    assert.equal(r.json[0].ok, true);
    assert.equal(r.json[1].error, 'forbidden');
    assert.deepEqual((await alice('GET', docPath(db, 'd3'))).json._access, [U.alice.name]);
    // a doc for others only: refused; through a role the user holds: fine
    r = await alice('PUT', docPath(db, 'e1'), { _access: [U.bob.name] });
    assert.equal(r.status, 403);
    assert.equal(r.json.error, 'forbidden');
    await put(alice, db, 'e2', { _access: ['parents'] });
    for (const bad of ['alice', [1], [''], { a: 1 }, [[U.alice.name]]]) {
      r = await alice('PUT', docPath(db, 'e3'), { _access: bad });
      assert.equal(r.status, 400, JSON.stringify(bad));
      assert.equal(r.json.error, 'bad_request');
    }
    // an update without _access keeps the doc's: bob edits the doc alice shares with the parents
    const e2 = (await bob('GET', docPath(db, 'e2'))).json;
    await put(bob, db, 'e2', { _rev: e2._rev, v: 'bob was here' });
    assert.deepEqual((await alice('GET', docPath(db, 'e2'))).json, { ...e2, _rev: (await admin('GET', docPath(db, 'e2'))).json._rev, v: 'bob was here' });
    // the admin writes any _access, or none (then the doc is the admins')
    await put(admin, db, 'e4', { _access: [U.bob.name] });
    await put(boss, db, 'e5', {});
    assert.equal((await admin('GET', docPath(db, 'e5'))).json._access, undefined);
    // anonymous writes nothing here (not a member)
    r = await adminReq('PUT', docPath(db, 'e6'), { body: {}, headers: { Authorization: 'Basic ' } });
    assert.ok(r.status === 401 || r.status === 403);
  });
});

test('reads: a doc not shared with the user is 404 not_found everywhere; roles count', T, async (t) => {
  if (!(await isSettee())) return t.skip();
  await accessDb(async (db) => {
    const revs = await seed(db);
    const sees = {
      alice: ['a1', 'a2', 'x2'], bob: ['a2', 'b1', 'x2'], carol: ['n1'], dave: [], boss: ['a1', 'a2', 'b1', 'n1', 'x1', 'x2'],
      admin: ['a1', 'a2', 'b1', 'n1', 'x1', 'x2'],
    };
    for (const [k, mine] of Object.entries(sees)) {
      const who = as(k);
      for (const id of ['a1', 'a2', 'b1', 'n1', 'x1', 'x2']) {
        const r = await who('GET', docPath(db, id));
        if (mine.includes(id)) {
          assert.equal(r.status, 200, `${k} ${id}`);
          assert.equal(r.json._rev, revs[id]);
        } else {
          assert.equal(r.status, 404, `${k} ${id}: ${r.text}`);
          assert.deepEqual(r.json, { error: 'not_found', reason: 'missing' });
          // a rev named, HEAD, revs_info: the same answer
          assert.equal((await who('GET', docPath(db, id) + '?rev=' + revs[id])).status, 404);
          assert.equal((await who('HEAD', docPath(db, id))).status, 404);
        }
      }
      assert.deepEqual(ids((await who('GET', dbPath(db, '_all_docs'))).json.rows), mine, k);
    }
    // a doc that never existed answers the same as one not shared
    const none = await bob('GET', docPath(db, 'nope'));
    assert.deepEqual(none.json, (await bob('GET', docPath(db, 'a1'))).json);
  });
});

test('_all_docs: keys, include_docs, ranges, POST', T, async (t) => {
  if (!(await isSettee())) return t.skip();
  await accessDb(async (db) => {
    const revs = await seed(db);
    let r = await bob('GET', dbPath(db, '_all_docs') + '?include_docs=true');
    assert.deepEqual(r.json.rows.map((x) => x.doc._id), ['a2', 'b1', 'x2']);
    assert.equal(r.json.rows[0].value.rev, revs.a2);
    r = await bob('POST', dbPath(db, '_all_docs'), { keys: ['a1', 'b1', 'x1', 'zz'] });
    assert.deepEqual(r.json.rows, [
      { key: 'a1', error: 'not_found' },
      { id: 'b1', key: 'b1', value: { rev: revs.b1 } },
      { key: 'x1', error: 'not_found' },
      { key: 'zz', error: 'not_found' },
    ]);
    r = await bob('GET', dbPath(db, '_all_docs') + '?startkey="a"&endkey="b9"&descending=false&limit=1');
    assert.deepEqual(ids(r.json.rows), ['a2']);
    r = await alice('GET', dbPath(db, '_all_docs') + '?descending=true');
    assert.deepEqual(r.json.rows.map((x) => x.id), ['x2', 'a2', 'a1']);
  });
});

test('_changes: normal, include_docs, paging by since and limit, descending, filters', T, async (t) => {
  if (!(await isSettee())) return t.skip();
  await accessDb(async (db) => {
    await seed(db);
    const all = await changes(alice, db, '?include_docs=true');
    assert.deepEqual(all.results.map((r) => r.id), ['a1', 'a2', 'x2']);
    assert.ok(all.results.every((r) => r.doc && r.doc._id === r.id && !r.deleted));
    assert.equal(all.pending, 0);
    // last_seq is a checkpoint: from it, nothing; from each row's seq, the rows after it
    assert.equal((await changes(alice, db, '?since=' + sinceParam(all.last_seq))).results.length, 0);
    const page1 = await changes(alice, db, '?limit=2');
    assert.deepEqual(page1.results.map((r) => r.id), ['a1', 'a2']);
    assert.equal(page1.pending, 1);
    const page2 = await changes(alice, db, '?limit=2&since=' + sinceParam(page1.last_seq));
    assert.deepEqual(page2.results.map((r) => r.id), ['x2']);
    assert.equal(page2.pending, 0);
    const desc = await changes(alice, db, '?descending=true');
    assert.deepEqual(desc.results.map((r) => r.id), ['x2', 'a2', 'a1']);
    // carol: only the nurses' doc; dave nothing at all
    assert.deepEqual((await changes(carol, db)).results.map((r) => r.id), ['n1']);
    assert.deepEqual((await changes(dave, db)).results, []);
    // built-in filters apply within the user's view; design-doc filters are the admins'
    let r = await alice('POST', dbPath(db, '_changes') + '?filter=_doc_ids', { doc_ids: ['a2', 'b1'] });
    assert.deepEqual(r.json.results.map((x) => x.id), ['a2']);
    r = await alice('POST', dbPath(db, '_changes') + '?filter=_selector', { selector: { v: 'x2' } });
    assert.deepEqual(r.json.results.map((x) => x.id), ['x2']);
    r = await alice('GET', dbPath(db, '_changes') + '?filter=_design');
    assert.deepEqual(r.json.results, []);
    r = await alice('GET', dbPath(db, '_changes') + '?filter=app/f');
    assert.equal(r.status, 404);
    // the admin's feed is the whole db
    assert.equal((await changes(boss, db)).results.length, 6);
  });
});

test('_changes longpoll, continuous and eventsource wake on the user\'s docs only', T, async (t) => {
  if (!(await isSettee())) return t.skip();
  await accessDb(async (db) => {
    await seed(db);
    const head = await changes(carol, db);
    const auth = { Authorization: basicAuth(U.carol.name, PW) };
    const q = '?since=' + sinceParam(head.last_seq);
    const lp = streamReq('GET', dbPath(db, '_changes') + q + '&feed=longpoll&timeout=10000', { headers: auth });
    const cont = streamReq('GET', dbPath(db, '_changes') + q + '&feed=continuous&timeout=10000', { headers: auth });
    const es = streamReq('GET', dbPath(db, '_changes') + q + '&feed=eventsource&timeout=10000', { headers: auth });
    await sleep(200);
    await put(alice, db, 'a9', { v: 9 }); // not carol's: no row, the longpoll keeps waiting
    await sleep(300);
    assert.equal(lp.ended, false);
    await put(alice, db, 'n2', { v: 'n2', _access: [U.alice.name, NURSES] });
    await lp.done;
    const got = JSON.parse(lp.text());
    assert.deepEqual(got.results.map((r) => r.id), ['n2']);
    assert.ok(await cont.waitFor((s) => s.includes('"n2"'), 5000));
    assert.ok(!cont.text().includes('"a9"'));
    assert.ok(await es.waitFor((s) => s.includes('"n2"'), 5000));
    assert.ok(!es.text().includes('"a9"'));
    cont.abort();
    es.abort();
    // the continuous feed's rows carry seqs that resume the normal feed
    const row = cont.text().split('\n').filter((l) => l.includes('"n2"')).map((l) => JSON.parse(l))[0];
    assert.deepEqual((await changes(carol, db, '?since=' + sinceParam(row.seq))).results, []);
  });
});

test('_access changes both ways: unshared docs leave as deletions, shared docs arrive', T, async (t) => {
  if (!(await isSettee())) return t.skip();
  await accessDb(async (db) => {
    const revs = await seed(db);
    const before = await changes(bob, db);
    // alice takes a2 back from bob
    const r2 = await put(alice, db, 'a2', { _rev: revs.a2, v: 'a2b', _access: [U.alice.name] });
    assert.equal((await bob('GET', docPath(db, 'a2'))).status, 404);
    const after = await changes(bob, db, '?since=' + sinceParam(before.last_seq) + '&include_docs=true');
    assert.equal(after.results.length, 1);
    const row = after.results[0];
    assert.equal(row.id, 'a2');
    assert.equal(row.deleted, true);
    assert.deepEqual(row.changes, [{ rev: r2 }]);
    // the body bob gets is a deletion stub, not alice's doc
    assert.deepEqual(Object.keys(row.doc).sort(), ['_deleted', '_id', '_rev', '_revisions']);
    assert.equal(row.doc.v, undefined);
    // _bulk_get and open_revs answer that rev as deleted, with its history, for bob only
    let r = await bob('POST', dbPath(db, '_bulk_get') + '?revs=true', { docs: [{ id: 'a2', rev: r2 }] });
    const stub = r.json.results[0].docs[0].ok;
    assert.equal(stub._deleted, true);
    assert.equal(stub.v, undefined);
    assert.deepEqual(stub._revisions.ids.length, 2);
    r = await bob('GET', docPath(db, 'a2') + '?open_revs=all');
    assert.equal(r.json[0].ok._deleted, true);
    // dave, who never had it, gets nothing
    r = await dave('POST', dbPath(db, '_bulk_get'), { docs: [{ id: 'a2', rev: r2 }] });
    assert.equal(r.json.results[0].docs[0].error.error, 'not_found');
    // bob cannot write it any more
    r = await bob('PUT', docPath(db, 'a2'), { _rev: r2, v: 'mine' });
    assert.equal(r.status, 403);
    // shared again: it comes back as a live row at a new seq
    const r3 = await put(alice, db, 'a2', { _rev: r2, v: 'a2c', _access: [U.alice.name, 'parents'] });
    const again = await changes(bob, db, '?since=' + sinceParam(after.last_seq) + '&include_docs=true');
    assert.deepEqual(again.results.map((x) => [x.id, x.changes[0].rev, !!x.deleted, x.doc.v]), [['a2', r3, false, 'a2c']]);
    assert.equal((await bob('GET', docPath(db, 'a2'))).json.v, 'a2c');
    // the whole feed lists a2 once, at its latest seq
    assert.deepEqual((await changes(bob, db)).results.map((x) => x.id), ['b1', 'x2', 'a2']);
  });
});

test('deletions: the tombstone keeps _access; who shares the doc sees it deleted', T, async (t) => {
  if (!(await isSettee())) return t.skip();
  await accessDb(async (db) => {
    const revs = await seed(db);
    const before = await changes(alice, db);
    let r = await bob('DELETE', docPath(db, 'a2') + '?rev=' + revs.a2);
    assert.equal(r.status, 200, r.text);
    const del = r.json.rev;
    r = await alice('GET', docPath(db, 'a2'));
    assert.deepEqual(r.json, { error: 'not_found', reason: 'deleted' });
    r = await alice('GET', docPath(db, 'a2') + '?rev=' + del);
    assert.equal(r.json._deleted, true);
    assert.deepEqual(r.json._access, [U.alice.name, U.bob.name]);
    const after = await changes(alice, db, '?since=' + sinceParam(before.last_seq));
    assert.deepEqual(after.results.map((x) => [x.id, x.deleted]), [['a2', true]]);
    // carol never saw a2: its deletion is not hers either
    assert.deepEqual((await changes(carol, db)).results.map((x) => x.id), ['n1']);
    // alice cannot delete bob's doc; the answer does not say it exists
    r = await alice('DELETE', docPath(db, 'b1') + '?rev=' + revs.b1);
    assert.equal(r.status, 403);
    // a deleted doc can be created again, by anyone
    await put(carol, db, 'a2', { v: 'carol now', _access: [NURSES] });
    assert.equal((await alice('GET', docPath(db, 'a2'))).status, 404);
  });
});

test('conflicts: each revision has its own _access; nobody gets a body they may not read', T, async (t) => {
  if (!(await isSettee())) return t.skip();
  await accessDb(async (db) => {
    const ra = synthRev(2, 'a'), rb = synthRev(2, 'b'), base = synthRev(1, '1');
    const r = await admin('POST', dbPath(db, '_bulk_docs'), {
      new_edits: false,
      docs: [
        { _id: 'c1', _rev: ra, _revisions: { start: 2, ids: ['a'.repeat(32), '1'.repeat(32)] }, side: 'alice', _access: [U.alice.name] },
        { _id: 'c1', _rev: rb, _revisions: { start: 2, ids: ['b'.repeat(32), '1'.repeat(32)] }, side: 'bob', _access: [U.bob.name] },
      ],
    });
    assert.equal(r.status, 201, r.text);
    // the winner (2-bbbb) is bob's; alice sees her own branch as the doc
    assert.equal((await admin('GET', docPath(db, 'c1'))).json._rev, rb);
    let a = await alice('GET', docPath(db, 'c1') + '?conflicts=true');
    assert.equal(a.json._rev, ra);
    assert.equal(a.json.side, 'alice');
    assert.equal((await bob('GET', docPath(db, 'c1'))).json.side, 'bob');
    assert.equal((await alice('GET', docPath(db, 'c1') + '?rev=' + rb)).status, 404);
    // open_revs=all and _bulk_get list only the reader's leaf
    a = await alice('GET', docPath(db, 'c1') + '?open_revs=all');
    assert.deepEqual(a.json.map((x) => x.ok._rev), [ra]);
    a = await alice('GET', docPath(db, 'c1') + `?open_revs=${encodeURIComponent(JSON.stringify([ra, rb]))}`);
    assert.deepEqual(a.json, [{ ok: a.json[0].ok }, { missing: rb }]);
    assert.equal(a.json[0].ok.side, 'alice');
    a = await alice('POST', dbPath(db, '_bulk_get'), { docs: [{ id: 'c1' }, { id: 'c1', rev: rb }] });
    assert.deepEqual(a.json.results[0].docs.map((x) => x.ok._rev), [ra]);
    assert.equal(a.json.results[1].docs[0].error.error, 'not_found');
    // _changes style=all_docs: only her leaf; _all_docs: her rev
    const ch = await changes(alice, db, '?style=all_docs');
    assert.deepEqual(ch.results.map((x) => x.changes), [[{ rev: ra }]]);
    assert.equal((await alice('GET', dbPath(db, '_all_docs'))).json.rows[0].value.rev, ra);
    const ad = (await alice('GET', dbPath(db, '_all_docs') + '?include_docs=true')).json.rows[0];
    assert.deepEqual([ad.value.rev, ad.doc._rev, ad.doc.side], [ra, ra, 'alice']);
    // nobody else sees c1, and the base revision's body is nobody's (none was stored)
    assert.equal((await carol('GET', docPath(db, 'c1'))).status, 404);
    assert.equal((await alice('GET', docPath(db, 'c1') + '?rev=' + base)).status, 404);
    // bob may not edit alice's branch, nor alice his
    assert.equal((await bob('PUT', docPath(db, 'c1'), { _rev: ra, side: 'taken' })).status, 403);
    assert.equal((await alice('PUT', docPath(db, 'c1'), { _rev: rb, side: 'taken' })).status, 403);
    // alice edits her branch: allowed, it stays hers
    const r3 = await put(alice, db, 'c1', { _rev: ra, side: 'alice 3' });
    assert.equal((await alice('GET', docPath(db, 'c1'))).json._rev, r3);
    assert.equal((await bob('GET', docPath(db, 'c1'))).json._rev, rb);
  });
});

test('_revs_diff: a doc the user cannot see is unknown to them', T, async (t) => {
  if (!(await isSettee())) return t.skip();
  await accessDb(async (db) => {
    const revs = await seed(db);
    const body = { a1: [revs.a1], a2: [revs.a2, synthRev(2, 'f')], b1: [revs.b1] };
    const r = await bob('POST', dbPath(db, '_revs_diff'), body);
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.a1, { missing: [revs.a1] });
    assert.deepEqual(r.json.a2.missing, [synthRev(2, 'f')]);
    assert.equal(r.json.b1, undefined);
  });
});

test('_local docs (checkpoints) are their writer\'s', T, async (t) => {
  if (!(await isSettee())) return t.skip();
  await accessDb(async (db) => {
    let r = await alice('PUT', docPath(db, '_local/ck'), { last_seq: '5' });
    assert.equal(r.status, 201, r.text);
    r = await alice('GET', docPath(db, '_local/ck'));
    assert.deepEqual([r.json.last_seq, r.json._access], ['5', [U.alice.name]]);
    assert.equal((await bob('GET', docPath(db, '_local/ck'))).status, 404);
    assert.equal((await bob('PUT', docPath(db, '_local/ck'), { last_seq: '9' })).status, 403);
    assert.equal((await bob('DELETE', docPath(db, '_local/ck'))).status, 403);
    // an update without _access keeps it
    r = await alice('PUT', docPath(db, '_local/ck'), { last_seq: '6' });
    assert.equal(r.status, 201);
    assert.deepEqual((await alice('GET', docPath(db, '_local/ck'))).json._access, [U.alice.name]);
    r = await bob('POST', dbPath(db, '_bulk_docs'), { docs: [{ _id: '_local/ck', x: 1 }, { _id: '_local/bk', x: 2 }] });
    assert.deepEqual(r.json.map((x) => x.error || x.ok), ['forbidden', true]);
    const ids = async (who) => (await who('GET', dbPath(db, '_local_docs'))).json.rows.map((x) => x.id);
    assert.deepEqual(await ids(alice), ['_local/ck']);
    assert.deepEqual(await ids(bob), ['_local/bk']);
    assert.deepEqual((await ids(admin)).sort(), ['_local/bk', '_local/ck']);
    r = await bob('POST', dbPath(db, '_all_docs'), { keys: ['_local/ck', '_local/bk'] });
    assert.deepEqual(r.json.rows.map((x) => x.error || x.id), ['not_found', '_local/bk']);
    assert.equal((await admin('GET', docPath(db, '_local/ck'))).json.last_seq, '6');
  });
});

test('_find: only the user\'s docs match', T, async (t) => {
  if (!(await isSettee())) return t.skip();
  await accessDb(async (db) => {
    await seed(db);
    const q = { selector: { v: { $gt: '' } }, fields: ['_id'] };
    let r = await bob('POST', dbPath(db, '_find'), q);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.docs.map((d) => d._id).sort(), ['a2', 'b1', 'x2']);
    r = await carol('POST', dbPath(db, '_find'), { ...q, sort: [{ _id: 'desc' }] });
    assert.deepEqual(r.json.docs.map((d) => d._id), ['n1']);
    r = await boss('POST', dbPath(db, '_find'), q);
    assert.equal(r.json.docs.length, 6);
  });
});

test('design docs are the db admins\'; views give users their docs\' rows; attachments follow their doc', T, async (t) => {
  if (!(await isSettee())) return t.skip();
  await accessDb(async (db) => {
    await seed(db);
    let r = await alice('PUT', docPath(db, '_design/mine'), { views: {} });
    assert.equal(r.status, 403);
    await put(boss, db, '_design/app', {
      views: {
        all: { map: 'function(doc){ emit(doc._id, null); }' },
        count: { map: 'function(doc){ emit(doc.v, 1); }', reduce: '_count' },
        // every doc links to b1: include_docs shows it only to who reads b1
        link: { map: 'function(doc){ emit(doc._id, {_id: "b1"}); }' },
      },
    });
    for (const p of ['_design/app', '_design/app/_info']) {
      r = await alice('GET', dbPath(db, p));
      assert.equal(r.status, 404, p);
    }
    assert.equal((await boss('GET', dbPath(db, '_design/app/_view/all'))).json.rows.length, 6);
    // views: a user gets the rows of their docs only; skip and limit count those
    r = await alice('GET', dbPath(db, '_design/app/_view/all') + '?include_docs=true');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.rows.map((x) => [x.id, x.doc._id]), [['a1', 'a1'], ['a2', 'a2'], ['x2', 'x2']]);
    r = await carol('GET', dbPath(db, '_design/app/_view/all') + '?skip=0&limit=5');
    assert.deepEqual(r.json.rows.map((x) => x.id), ['n1']);
    r = await bob('GET', dbPath(db, '_design/app/_view/all') + '?skip=1&limit=1');
    assert.deepEqual(r.json.rows.map((x) => x.id), ['b1']);
    r = await bob('POST', dbPath(db, '_design/app/_view/all/queries'), { queries: [{ keys: ['a1', 'a2'] }, { descending: true }] });
    assert.deepEqual(r.json.results.map((q) => q.rows.map((x) => x.id)), [['a2'], ['x2', 'b1', 'a2']]);
    // a reduction would fold other users' rows: refused; without it, filtered rows
    r = await alice('GET', dbPath(db, '_design/app/_view/count'));
    assert.equal(r.status, 403);
    assert.equal(r.json.error, 'forbidden');
    r = await alice('GET', dbPath(db, '_design/app/_view/count') + '?reduce=false');
    assert.deepEqual(r.json.rows.map((x) => x.id).sort(), ['a1', 'a2', 'x2']);
    assert.equal((await boss('GET', dbPath(db, '_design/app/_view/count'))).json.rows[0].value, 6);
    // linked docs: b1 is bob's
    r = await alice('GET', dbPath(db, '_design/app/_view/link') + '?include_docs=true&key="a1"');
    assert.deepEqual(r.json.rows.map((x) => [x.id, x.doc]), [['a1', null]]);
    r = await bob('GET', dbPath(db, '_design/app/_view/link') + '?include_docs=true&key="a2"');
    assert.equal(r.json.rows[0].doc._id, 'b1');
    // a doc taken from bob leaves his view rows too
    const a2 = (await alice('GET', docPath(db, 'a2'))).json;
    await put(alice, db, 'a2', { ...a2, _access: [U.alice.name] });
    r = await bob('GET', dbPath(db, '_design/app/_view/all'));
    assert.deepEqual(r.json.rows.map((x) => x.id), ['b1', 'x2']);
    assert.deepEqual((await alice('GET', dbPath(db, '_design_docs'))).json.rows, []);
    assert.ok(!(await changes(alice, db)).results.some((x) => x.id.startsWith('_design/')));
    // what would dump or index the whole db is refused
    for (const p of ['_export', '_index']) assert.equal((await alice('GET', dbPath(db, p))).status, 403, p);
    // attachments: readable by who reads the doc
    const rev = (await alice('GET', docPath(db, 'a1'))).json._rev;
    r = await alice('PUT', docPath(db, 'a1') + '/note.txt?rev=' + rev, 'hello', { 'Content-Type': 'text/plain' });
    assert.equal(r.status, 201, r.text);
    r = await alice('GET', docPath(db, 'a1') + '/note.txt');
    assert.equal(r.text, 'hello');
    r = await bob('GET', docPath(db, 'a1') + '/note.txt');
    assert.equal(r.status, 404);
    assert.equal(r.json.error, 'not_found');
    // bob writing an attachment onto alice's doc: refused
    const withAtt = (await alice('GET', docPath(db, 'a1'))).json._rev;
    r = await bob('PUT', docPath(db, 'a1') + '/x.txt?rev=' + withAtt, 'no', { 'Content-Type': 'text/plain' });
    assert.equal(r.status, 403, r.text);
    assert.deepEqual(Object.keys((await alice('GET', docPath(db, 'a1'))).json._attachments), ['note.txt']);
    // COPY from a doc the user cannot read
    r = await bob('COPY', docPath(db, 'a1'), undefined, { Destination: 'bcopy' });
    assert.equal(r.status, 404);
  });
});

// ---------------------------------------------------------------- PouchDB

function remoteAs(k, db) {
  return new PouchDB(COUCH_URL.replace(/\/\/[^@]*@/, '//') + '/' + encodeURIComponent(db), {
    skip_setup: true, auth: { username: U[k].name, password: PW },
  });
}
const localIds = async (p) => (await p.allDocs()).rows.map((r) => r.id).sort();

test('PouchDB: two users sync one db; each ends with exactly their docs; shares arrive and leave', T, async (t) => {
  if (!(await isSettee())) return t.skip();
  await accessDb(async (db) => {
    await seed(db);
    const la = memory('acc_a'), lb = memory('acc_b');
    const ra = remoteAs('alice', db), rb = remoteAs('bob', db);
    const sa = la.sync(ra, { live: true, retry: true }), sb = lb.sync(rb, { live: true, retry: true });
    const denied = [];
    sa.on('denied', (e) => denied.push(e));
    sb.on('denied', (e) => denied.push(e));
    try {
      await waitFor(async () => (await localIds(la)).join() === 'a1,a2,x2', { what: 'alice pulls hers', timeout: 15000 });
      await waitFor(async () => (await localIds(lb)).join() === 'a2,b1,x2', { what: 'bob pulls his', timeout: 15000 });
      // each writes locally; the docs reach the server with their owner's _access
      await la.put({ _id: 'la1', v: 'from alice pouch' });
      await lb.put({ _id: 'lb1', v: 'from bob pouch', _access: [U.bob.name] });
      await waitFor(async () => (await admin('GET', docPath(db, 'lb1'))).status === 200, { what: 'lb1 pushed' });
      await waitFor(async () => (await admin('GET', docPath(db, 'la1'))).status === 200, { what: 'la1 pushed' });
      assert.deepEqual((await admin('GET', docPath(db, 'la1'))).json._access, [U.alice.name]);
      // a doc shared later arrives at bob; taken back, it leaves him
      const rev = (await alice('GET', docPath(db, 'a1'))).json._rev;
      const shared = await put(alice, db, 'a1', { _rev: rev, v: 'a1 shared', _access: [U.alice.name, U.bob.name] });
      await waitFor(async () => (await localIds(lb)).includes('a1'), { what: 'a1 arrives at bob', timeout: 15000 });
      assert.equal((await lb.get('a1')).v, 'a1 shared');
      await put(alice, db, 'a1', { _rev: shared, v: 'a1 private', _access: [U.alice.name] });
      await waitFor(async () => !(await localIds(lb)).includes('a1'), { what: 'a1 leaves bob', timeout: 15000 });
      await waitFor(async () => (await la.get('a1')).v === 'a1 private', { what: 'alice has her edit' });
      // alice's edit through her pouch reaches bob's when she shares from there
      const d = await la.get('a2');
      await la.put({ ...d, v: 'a2 from pouch' });
      await waitFor(async () => (await lb.get('a2').catch(() => ({}))).v === 'a2 from pouch', { what: 'a2 edit reaches bob', timeout: 15000 });
      await sleep(500);
      assert.deepEqual(await localIds(la), ['a1', 'a2', 'la1', 'x2']);
      assert.deepEqual(await localIds(lb), ['a2', 'b1', 'lb1', 'x2']);
      assert.deepEqual(denied, []);
      // bob's pouch never held a body of alice's private a1
      const hist = await lb.get('a1', { revs: true, open_revs: 'all' }).catch(() => []);
      for (const h of hist) if (h.ok) assert.notEqual(h.ok.v, 'a1 private');
    } finally {
      sa.cancel();
      sb.cancel();
      await la.destroy();
      await lb.destroy();
    }
  });
});

test('PouchDB: a one-shot pull as a user gets only their docs, and resumes from its checkpoint', T, async (t) => {
  if (!(await isSettee())) return t.skip();
  await accessDb(async (db) => {
    await seed(db);
    for (let i = 0; i < 30; i++) await put(admin, db, `m${String(i).padStart(2, '0')}`, { i, _access: [i % 2 ? NURSES : U.dave.name] });
    const lc = memory('acc_c');
    try {
      const res = await lc.replicate.from(remoteAs('carol', db), { batch_size: 4 });
      assert.equal(res.ok, true);
      assert.equal(res.doc_write_failures, 0);
      const mine = await localIds(lc);
      assert.deepEqual(mine, ['m01', 'm03', 'm05', 'm07', 'm09', 'm11', 'm13', 'm15', 'm17', 'm19', 'm21', 'm23', 'm25', 'm27', 'm29', 'n1']);
      await put(carol, db, 'n3', { _access: [NURSES] });
      const again = await lc.replicate.from(remoteAs('carol', db));
      assert.equal(again.docs_read, 1);
      assert.ok((await localIds(lc)).includes('n3'));
    } finally {
      await lc.destroy();
    }
  });
});

// ---------------------------------------------------------------- pouchdb-server

const POUCHDB_SERVER = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'tools', 'bench', 'node_modules',
  'pouchdb-server', 'bin', 'pouchdb-server');

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

test('needs pouchdb-server: its POST /_replicate as a user pulls only that user\'s docs, and the removals', T, async (t) => {
  if (!(await isSettee())) return t.skip();
  if (!fs.existsSync(POUCHDB_SERVER)) return t.skip(`needs pouchdb-server: ${POUCHDB_SERVER} is missing (npm ci in tools/bench)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'access88-pouchdb-server-'));
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ log: { file: path.join(dir, 'pouchdb.log'), level: 'warning' } }));
  const port = await freePort();
  const child = spawn(process.execPath, [POUCHDB_SERVER, '-m', '-n', '-p', String(port), '-o', '127.0.0.1', '-d', dir + '/', '-c', path.join(dir, 'config.json')],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
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
  if (!up) return t.skip(`needs pouchdb-server: it did not answer on ${PS}`);
  await accessDb(async (db) => {
    await seed(db);
    const u = new URL(`${BASE}/${db}`);
    u.username = encodeURIComponent(U.bob.name);
    u.password = PW;
    let r = await ps('POST', '/_replicate', { source: u.href, target: 'bobs', create_target: true });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.ok, true, r.text);
    r = await ps('GET', '/bobs/_all_docs?include_docs=true');
    assert.deepEqual(r.json.rows.map((x) => x.id), ['a2', 'b1', 'x2']);
    // alice takes a2 back; the next pull deletes it at bob's
    const a2 = (await alice('GET', docPath(db, 'a2'))).json;
    await put(alice, db, 'a2', { ...a2, _access: [U.alice.name] });
    r = await ps('POST', '/_replicate', { source: u.href, target: 'bobs' });
    assert.equal(r.json.ok, true, r.text);
    r = await ps('GET', '/bobs/_all_docs');
    assert.deepEqual(r.json.rows.map((x) => x.id), ['b1', 'x2']);
    // and pushing back from there gives settee nothing of alice's
    r = await ps('POST', '/_replicate', { source: 'bobs', target: u.href });
    assert.equal(r.json.ok, true, r.text);
    assert.equal(r.json.doc_write_failures ?? 0, 0, r.text);
    assert.equal((await alice('GET', docPath(db, 'a2'))).json._rev, (await admin('GET', docPath(db, 'a2'))).json._rev);
    assert.equal((await admin('GET', docPath(db, 'a2'))).json._deleted, undefined);
  });
});
