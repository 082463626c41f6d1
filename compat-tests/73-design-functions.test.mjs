// Design functions as CouchDB 3.4 runs them: validate_doc_update on every write path,
// _changes filters (filter=ddoc/name with req.query / req.userCtx, filter=_view) on every feed
// type and in PouchDB's filtered replication, _update handlers, and functions that loop forever
// or kill their query-server process: the request errors, the server keeps serving.
// Expected: CouchDB 3.4.3 (couchdb-golden views.jsonl vdu_*, changes_filter_*, update_*).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { req, remote, memory } from './lib.mjs';
import { T, enc, withDb, assertError, putDoc, bulk, rawHttp } from './lib-docs.mjs';
import { as, createUser, deleteUser } from './lib-auth.mjs';

const TL = { timeout: 60000 };
const VDU = `function (newDoc, oldDoc, userCtx, secObj) {
  if (newDoc.forbid) throw({forbidden: 'forbid field set'});
  if (newDoc.unauth) throw({unauthorized: 'unauth field set'});
  if (newDoc._deleted && oldDoc && oldDoc.keep) throw({forbidden: 'kept: ' + oldDoc._id});
  if (newDoc.writer && userCtx.roles.indexOf('writer') < 0) throw({forbidden: 'writers only'});
  if (newDoc._attachments && newDoc._attachments['bad.txt']) throw({forbidden: 'no bad.txt'});
}`;

const changes = (db, q, opts = {}) => req(opts.method || 'GET', `/${enc(db)}/_changes?${q}`, opts);
const ids = (r) => r.json.results.map((x) => x.id);

test('validate_doc_update refuses on PUT, POST, DELETE, COPY and attachment writes', T, () => withDb(async (db) => {
  await putDoc(db, '_design/v', { validate_doc_update: VDU });
  assertError(await req('PUT', `/${enc(db)}/a`, { body: { forbid: true } }), 403, 'forbidden', 'forbid field set');
  assertError(await req('PUT', `/${enc(db)}/a`, { body: { unauth: true } }), 401, 'unauthorized', 'unauth field set');
  assertError(await req('POST', `/${enc(db)}`, { body: { _id: 'p', forbid: true } }), 403, 'forbidden', 'forbid field set');
  const rev = await putDoc(db, 'k', { keep: true });
  assertError(await req('DELETE', `/${enc(db)}/k?rev=${rev}`), 403, 'forbidden', 'kept: k');
  // COPY writes a new doc: the copy is validated (its body has forbid)
  const f = await req('PUT', `/${enc(db)}/_design/v2`, { body: { validate_doc_update: 'function(n){ if (n._id === "copied") throw({forbidden: "no copies"}); }' } });
  assert.equal(f.status, 201, f.text);
  assertError(await req('COPY', `/${enc(db)}/k`, { headers: { Destination: 'copied' } }), 403, 'forbidden', 'no copies');
  // standalone attachment PUT: newDoc carries the attachment stubs
  const att = await rawHttp('PUT', `/${enc(db)}/k/bad.txt?rev=${rev}`, { headers: { 'Content-Type': 'text/plain' }, body: 'x' });
  assert.equal(att.status, 403, att.text);
  const ok = await rawHttp('PUT', `/${enc(db)}/k/good.txt?rev=${rev}`, { headers: { 'Content-Type': 'text/plain' }, body: 'x' });
  assert.equal(ok.status, 201, ok.text);
  // _local docs are never validated
  assert.equal((await req('PUT', `/${enc(db)}/_local/l`, { body: { forbid: true } })).status, 201);
  // nothing refused was written
  for (const id of ['a', 'p', 'copied']) assert.equal((await req('GET', `/${enc(db)}/${id}`)).status, 404, id);
}));

test('_bulk_docs: per-doc errors, both new_edits modes; refused replicated revs are not written', T, () => withDb(async (db) => {
  await putDoc(db, '_design/v', { validate_doc_update: VDU });
  const r = await bulk(db, { docs: [{ _id: 'b1' }, { _id: 'b2', forbid: true }, { _id: 'b3', unauth: true }, { _id: 'b4' }] });
  assert.equal(r.status, 201, r.text);
  assert.deepEqual(r.json.map((x) => x.error || 'ok'), ['ok', 'forbidden', 'unauthorized', 'ok']);
  assert.equal(r.json[1].reason, 'forbid field set');
  const rep = await bulk(db, { new_edits: false, docs: [
    { _id: 'n1', _rev: '1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' },
    { _id: 'n2', _rev: '1-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', forbid: true }] });
  assert.equal(rep.status, 201, rep.text);
  assert.deepEqual(rep.json, [{ id: 'n2', rev: '1-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', error: 'forbidden', reason: 'forbid field set' }]);
  assert.equal((await req('GET', `/${enc(db)}/n1`)).status, 200);
  assert.equal((await req('GET', `/${enc(db)}/n2`)).status, 404);
}));

test('validators follow design doc changes; admins are validated too, design docs by admins are not', T, () => withDb(async (db) => {
  assert.equal((await req('PUT', `/${enc(db)}/x1`, { body: { forbid: true } })).status, 201);
  const rev = await putDoc(db, '_design/v', { validate_doc_update: VDU });
  assertError(await req('PUT', `/${enc(db)}/x2`, { body: { forbid: true } }), 403, 'forbidden', 'forbid field set');
  assert.equal((await req('PUT', `/${enc(db)}/_design/other`, { body: { forbid: true } })).status, 201);
  const del = await req('DELETE', `/${enc(db)}/_design/v?rev=${rev}`);
  assert.equal(del.status, 200, del.text);
  assert.equal((await req('PUT', `/${enc(db)}/x2`, { body: { forbid: true } })).status, 201);
}));

test('userCtx roles: a writer passes, a member without the role is refused', T, async () => {
  const db = `ct_vdu_roles_${process.pid}`;
  await req('DELETE', `/${db}`);
  await createUser('vduwriter', 'pw1', ['writer']);
  await createUser('vdureader', 'pw2', []);
  try {
    assert.equal((await req('PUT', `/${db}`)).status, 201);
    await req('PUT', `/${db}/_security`, { body: {} });
    await putDoc(db, '_design/v', { validate_doc_update: VDU });
    const w = await as('vduwriter', 'pw1', 'PUT', `/${db}/w1`, { body: { writer: true } });
    assert.equal(w.status, 201, w.text);
    const r = await as('vdureader', 'pw2', 'PUT', `/${db}/w2`, { body: { writer: true } });
    assert.equal(r.status, 403, r.text);
    assert.equal(r.json.reason, 'writers only');
  } finally {
    await req('DELETE', `/${db}`);
    await deleteUser('vduwriter');
    await deleteUser('vdureader');
  }
});

test('design docs are checked at write time: bad map is a 400, a bad filter is stored', T, () => withDb(async (db) => {
  assertError(await req('PUT', `/${enc(db)}/_design/b`, { body: { views: [] } }), 400, 'invalid_design_doc', '`views` field must have object type');
  const c = await req('PUT', `/${enc(db)}/_design/b`, { body: { views: { v: { map: 'function(doc) { emit(' } } } });
  assert.equal(c.status, 400, c.text);
  assert.equal(c.json.error, 'compilation_error');
  assert.match(c.json.reason, /^Compilation of the map function in the 'v' view failed: /);
  // also on _bulk_docs, per doc
  const b = await bulk(db, { docs: [{ _id: '_design/c', filters: 'x' }, { _id: 'plain' }] });
  assert.deepEqual(b.json.map((x) => x.error || 'ok'), ['invalid_design_doc', 'ok']);
  assert.equal((await req('PUT', `/${enc(db)}/_design/f`, { body: { filters: { f: 'function(doc, req) {' } } })).status, 201);
}));

const FILTERS = {
  by_type: 'function(doc, req) { return doc.type === req.query.type; }',
  by_user: 'function(doc, req) { return doc.owner === req.userCtx.name; }',
  loop: 'function(doc, req) { while (true) {} }',
  oom: 'function(doc, req) { var a = []; while (true) a.push(new Array(1e6).fill(1)); }',
};

async function seedFilters(db) {
  await bulk(db, { docs: [
    { _id: 'a', type: 'x', owner: 'admin' }, { _id: 'b', type: 'y' }, { _id: 'c', type: 'x' }] });
  await putDoc(db, '_design/f', { filters: FILTERS, views: { y: { map: 'function(doc) { if (doc.type === "y") emit(doc._id, null); }' } } });
}

test('_changes filter=ddoc/name: req.query, req.userCtx, POST, and filter=_view', T, () => withDb(async (db) => {
  await seedFilters(db);
  assert.deepEqual(ids(await changes(db, 'filter=f/by_type&type=x')), ['a', 'c']);
  assert.deepEqual(ids(await changes(db, 'filter=f/by_type&type=x', { method: 'POST', body: {} })), ['a', 'c']);
  assert.deepEqual(ids(await changes(db, 'filter=f/by_user')), ['a']);
  assert.deepEqual(ids(await changes(db, 'filter=_view&view=f/y')), ['b']);
  const lim = await changes(db, 'filter=f/by_type&type=x&limit=1&include_docs=true');
  assert.deepEqual(ids(lim), ['a']);
  assert.equal(lim.json.results[0].doc.type, 'x');
}));

test('filters on longpoll, continuous and eventsource feeds', T, () => withDb(async (db) => {
  await seedFilters(db);
  const lp = changes(db, 'filter=f/by_type&type=x&feed=longpoll&since=now');
  await new Promise((r) => setTimeout(r, 200));
  await putDoc(db, 'y2', { type: 'y' });
  await putDoc(db, 'x2', { type: 'x' });
  assert.deepEqual(ids(await lp), ['x2']);
  const cont = await changes(db, 'filter=f/by_type&type=x&feed=continuous&timeout=300');
  const rows = cont.text.trim().split('\n').map((l) => JSON.parse(l)).filter((x) => x.id);
  assert.deepEqual(rows.map((x) => x.id), ['a', 'c', 'x2']);
  const es = await changes(db, 'filter=_view&view=f/y&feed=eventsource&timeout=300');
  const data = es.text.split('\n').filter((l) => l.startsWith('data: {')).map((l) => JSON.parse(l.slice(6)).id);
  assert.deepEqual(data, ['b', 'y2']);
}));

test('PouchDB filtered replication: a filter function with query_params, and a view', TL, () => withDb(async (db) => {
  await seedFilters(db);
  const m1 = memory();
  const m2 = memory();
  try {
    await m1.replicate.from(remote(db), { filter: 'f/by_type', query_params: { type: 'x' } });
    assert.deepEqual((await m1.allDocs()).rows.map((r) => r.id), ['a', 'c']);
    await m2.replicate.from(remote(db), { filter: '_view', view: 'f/y' });
    assert.deepEqual((await m2.allDocs()).rows.map((r) => r.id), ['b']);
  } finally {
    await m1.destroy();
    await m2.destroy();
  }
}));

test('a runaway filter, one that kills its process and a runaway validator error; the server goes on', TL, () => withDb(async (db) => {
  await seedFilters(db);
  const t0 = Date.now();
  const loop = changes(db, 'filter=f/loop');
  // meanwhile the server answers everything else
  await new Promise((r) => setTimeout(r, 300));
  const quick = await req('GET', `/${enc(db)}/a`);
  assert.equal(quick.status, 200);
  assert.ok(Date.now() - t0 < 2000, 'a plain GET waited for the runaway filter');
  const l = await loop;
  assert.equal(l.status, 500, l.text);
  assert.equal(l.json.error, 'os_process_error');
  const oom = await changes(db, 'filter=f/oom');
  assert.equal(oom.status, 500, oom.text);
  // the pool made fresh processes: filters work again
  assert.deepEqual(ids(await changes(db, 'filter=f/by_type&type=y')), ['b']);
  await putDoc(db, '_design/v', { validate_doc_update: 'function(n) { if (n.spin) while (true) {} }' });
  const spin = await req('PUT', `/${enc(db)}/s`, { body: { spin: true } });
  assert.equal(spin.status, 500, spin.text);
  assert.equal((await req('PUT', `/${enc(db)}/s`, { body: {} })).status, 201);
}));

test('_update handlers: create, edit, echo the request, errors', T, () => withDb(async (db) => {
  await putDoc(db, '_design/h', { updates: {
    bump: 'function(doc, req) { if (!doc) return [{_id: req.id, n: 1}, "created"]; doc.n++; return [doc, {json: {n: doc.n, q: req.query}}]; }',
    forbid: 'function(doc, req) { return [{_id: "z", forbid: true}, "x"]; }',
  }, validate_doc_update: VDU });
  const c = await req('PUT', `/${enc(db)}/_design/h/_update/bump/u1`);
  assert.equal(c.status, 201, c.text);
  assert.equal(c.text, 'created');
  assert.equal(c.headers.get('x-couch-id'), 'u1');
  assert.match(c.headers.get('x-couch-update-newrev'), /^1-/);
  const e = await req('POST', `/${enc(db)}/_design/h/_update/bump/u1?a=b`);
  assert.equal(e.status, 201, e.text);
  assert.deepEqual(e.json, { n: 2, q: { a: 'b' } });
  // a saved doc is validated
  assertError(await req('POST', `/${enc(db)}/_design/h/_update/forbid`), 403, 'forbidden', 'forbid field set');
  assertError(await req('POST', `/${enc(db)}/_design/h/_update/nope`), 404, 'not_found', 'missing json key: nope');
  assertError(await req('GET', `/${enc(db)}/_design/h/_update/bump/u1`), 405, 'method_not_allowed', 'Update functions do not allow GET');
}));
