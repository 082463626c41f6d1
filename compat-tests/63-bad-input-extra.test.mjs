// Malformed and odd requests, one test per case, as CouchDB 3.4.3 answers them (recorded in
// couchdb-golden/bad-input-extra.jsonl): `_revisions` shapes, gzip request bodies, bad percent
// escapes, `new_edits` that is not a boolean, attachment `content_type` that is not a string,
// duplicate JSON keys, deep JSON, huge headers. Where CouchDB answers 500 for a client's mistake
// (or has no limit), settee answers 400/431 with CouchDB-style JSON: those checks ask isSettee()
// and accept CouchDB's own answer otherwise. After all of it the server still answers.
import test from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync, deflateSync } from 'node:zlib';
import { req, freshDb, dropDb, isSettee } from './lib.mjs';
import { request } from './lib-auth.mjs';

const enc = encodeURIComponent;
const H32 = (c) => c.repeat(32);
const JSON_CT = { 'Content-Type': 'application/json' };
// raw bytes to the server as admin (req() would re-encode a string body)
const raw = (method, path, body, headers = {}) => request(method, path, { headers: { ...JSON_CT, ...headers }, body, auth: 'admin' });
const errorIs = (r, status, error, reason) => {
  assert.equal(r.status, status, r.text);
  assert.equal(r.json?.error, error, r.text);
  if (reason instanceof RegExp) assert.match(r.json?.reason, reason);
  else if (reason !== undefined) assert.equal(r.json?.reason, reason);
};

let db;
test.before(async () => { db = await freshDb('badx'); });
test.after(async () => { await dropDb(db); });

// ------------------------------------------------------------------ _revisions shapes

test('_revisions shapes on PUT ?new_edits=false and in _bulk_docs', async (t) => {
  const rev2 = `2-${H32('b')}`;
  const cases = [
    ['ids not an array', { start: 2, ids: 'abc' }, 400, 'doc_validation', '_revisions.ids isn\'t a array.'],
    ['ids that are numbers', { start: 2, ids: [1, 2] }, 400, 'doc_validation', 'RevId isn\'t a string'],
    ['start a string', { start: '2', ids: [H32('b'), H32('a')] }, 400, 'doc_validation', '_revisions.start isn\'t an integer.'],
    ['start missing', { ids: [H32('b'), H32('a')] }, 400, 'doc_validation', '_revisions.start isn\'t an integer.'],
    ['not an object', 'x', 400, 'doc_validation', 'Bad special document member: _revisions'],
  ];
  for (const [what, revisions, status, error, reason] of cases) {
    await t.test(what, async () => {
      const id = `rv_${what.replace(/\W+/g, '_')}`;
      const body = { v: 1, _rev: rev2, _revisions: revisions };
      errorIs(await req('PUT', `/${db}/${id}?new_edits=false`, { body }), status, error, reason);
      errorIs(await req('POST', `/${db}/_bulk_docs`, { body: { new_edits: false, docs: [{ _id: id, ...body }] } }), status, error, reason);
      assert.equal((await req('GET', `/${db}/${id}`)).status, 404, 'nothing stored');
    });
  }
  await t.test('empty ids on PUT: the doc names no revision', async () => {
    errorIs(await req('PUT', `/${db}/rv_empty?new_edits=false`, { body: { v: 1, _rev: rev2, _revisions: { start: 2, ids: [] } } }),
      400, 'bad_request', 'When `new_edits: false`, the document needs `_rev` or `_revisions` specified');
  });
  await t.test('empty ids in _bulk_docs: settee 400, CouchDB 500', async () => {
    const r = await req('POST', `/${db}/_bulk_docs`, { body: { new_edits: false, docs: [{ _id: 'rv_empty_b', v: 1, _rev: rev2, _revisions: { start: 2, ids: [] } }] } });
    if (await isSettee()) errorIs(r, 400, 'bad_request', 'When `new_edits: false`, the document needs `_rev` or `_revisions` specified');
    else assert.equal(r.status, 500, r.text);
    assert.equal((await req('GET', `/${db}/rv_empty_b`)).status, 404);
  });
  await t.test('_revisions contradicting _rev: _revisions wins', async () => {
    const r = await req('PUT', `/${db}/rv_contra?new_edits=false`, { body: { v: 1, _rev: rev2, _revisions: { start: 3, ids: [H32('c'), H32('b')] } } });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.rev, `3-${H32('c')}`);
    const g = await req('GET', `/${db}/rv_contra?revs=true`);
    assert.deepEqual(g.json._revisions, { start: 3, ids: [H32('c'), H32('b')] });
  });
});

// ------------------------------------------------------------------ gzip request bodies

test('gzip request bodies are decoded as CouchDB decodes them', async (t) => {
  await t.test('a gzip PUT and a gzip _bulk_docs are stored', async () => {
    const r = await raw('PUT', `/${db}/gz1`, gzipSync(JSON.stringify({ v: 'gzipped' })), { 'Content-Encoding': 'gzip' });
    assert.equal(r.status, 201, r.text);
    assert.equal((await req('GET', `/${db}/gz1`)).json.v, 'gzipped');
    const b = await raw('POST', `/${db}/_bulk_docs`, gzipSync(JSON.stringify({ docs: [{ _id: 'gz2', n: 2 }, { _id: 'gz3', n: 3 }] })), { 'Content-Encoding': 'gzip' });
    assert.equal(b.status, 201, b.text);
    assert.deepEqual(b.json.map((x) => x.ok), [true, true]);
    assert.equal((await req('GET', `/${db}/gz3`)).json.n, 3);
  });
  await t.test('a gzip POST to the db and a gzip _find', async () => {
    const p = await raw('POST', `/${db}`, gzipSync(JSON.stringify({ _id: 'gz4', v: 4 })), { 'Content-Encoding': 'gzip' });
    assert.equal(p.status, 201, p.text);
    const f = await raw('POST', `/${db}/_find`, gzipSync(JSON.stringify({ selector: { v: 4 } })), { 'Content-Encoding': 'gzip' });
    assert.equal(f.status, 200, f.text);
    assert.deepEqual(f.json.docs.map((d) => d._id), ['gz4']);
  });
  const notGzip = 'Request body is not properly gzipped.';
  await t.test('bytes that are not gzip, a truncated stream, plain JSON under the header: 400', async () => {
    errorIs(await raw('PUT', `/${db}/gzbad1`, Buffer.from('this is not gzip'), { 'Content-Encoding': 'gzip' }), 400, 'bad_request', notGzip);
    const whole = gzipSync(JSON.stringify({ v: 1 }));
    errorIs(await raw('PUT', `/${db}/gzbad2`, whole.subarray(0, whole.length - 4), { 'Content-Encoding': 'gzip' }), 400, 'bad_request', notGzip);
    errorIs(await raw('PUT', `/${db}/gzbad3`, '{"v":1}', { 'Content-Encoding': 'gzip' }), 400, 'bad_request', notGzip);
    errorIs(await raw('POST', `/${db}/_bulk_docs`, '{"docs":[]}', { 'Content-Encoding': 'gzip' }), 400, 'bad_request', notGzip);
    for (const id of ['gzbad1', 'gzbad2', 'gzbad3']) assert.equal((await req('GET', `/${db}/${id}`)).status, 404);
  });
  await t.test('deflate, br and GZIP are not supported encodings (415); identity is', async () => {
    errorIs(await raw('PUT', `/${db}/gz7`, deflateSync('{"v":1}'), { 'Content-Encoding': 'deflate' }), 415, 'bad_content_type', 'deflate is not a supported content encoding.');
    errorIs(await raw('PUT', `/${db}/gz8`, '{"v":1}', { 'Content-Encoding': 'br' }), 415, 'bad_content_type', 'br is not a supported content encoding.');
    errorIs(await raw('PUT', `/${db}/gz9`, gzipSync('{"v":1}'), { 'Content-Encoding': 'GZIP' }), 415, 'bad_content_type', 'GZIP is not a supported content encoding.');
    assert.equal((await raw('PUT', `/${db}/gz10`, '{"v":1}', { 'Content-Encoding': 'identity' })).status, 201);
  });
});

// ------------------------------------------------------------------ bad percent escapes

test('a bad percent escape in the query string or path: 400 invalid_url_encoding', async () => {
  await req('PUT', `/${db}/k1`, { body: { v: 'k1' } });
  for (const p of [`/${db}?%=1`, `/${db}/k1?rev=%`, `/${db}/k1?%zz=1`, `/${db}/%zz`, `/${db}/k1?a=%4`, `/_all_dbs?x=%G0`]) {
    errorIs(await request('GET', p, { auth: 'admin' }), 400, 'bad_request', 'invalid_url_encoding');
  }
  // good escapes still decode
  assert.equal((await req('GET', `/${db}/k%31`)).json?._id, 'k1');
  assert.equal((await req('GET', `/${db}/_all_docs?limit=1&limit=3`)).json.rows.length, 3, 'a repeated parameter: the last wins');
});

// ------------------------------------------------------------------ new_edits

test('new_edits in _bulk_docs must be a boolean (settee 400, CouchDB 500)', async () => {
  const settee = await isSettee();
  for (const ne of ['no', 0, 1, 'false', null, {}]) {
    const r = await req('POST', `/${db}/_bulk_docs`, { body: { new_edits: ne, docs: [{ _id: 'ne_x', _rev: `1-${H32('a')}`, v: 1 }] } });
    if (settee) errorIs(r, 400, 'bad_request', '`new_edits` parameter must be a boolean.');
    else assert.equal(r.status, 500, `${JSON.stringify(ne)}: ${r.text}`);
  }
  assert.equal((await req('GET', `/${db}/ne_x`)).status, 404);
  // ?new_edits on a PUT: only "false" makes a replicated write
  const rf = await req('PUT', `/${db}/ne_put?new_edits=false`, { body: { _rev: `1-${H32('a')}`, v: 1 } });
  assert.equal(rf.status, 201, rf.text);
  assert.equal(rf.json.rev, `1-${H32('a')}`);
  const rn = await req('PUT', `/${db}/ne_put2?new_edits=no`, { body: { v: 1 } });
  assert.equal(rn.status, 201, 'new_edits=no is an interactive write');
  assert.match(rn.json.rev, /^1-[0-9a-f]{32}$/);
});

// ------------------------------------------------------------------ attachment content_type

test('attachment content_type that is not a string (settee 400, CouchDB 500)', async () => {
  const settee = await isSettee();
  for (const [id, ct] of [['att_number', 42], ['att_null', null], ['att_object', { a: 1 }], ['att_array', ['text/plain']]]) {
    const r = await req('PUT', `/${db}/${id}`, { body: { _attachments: { 'a.txt': { data: 'aGk=', content_type: ct } } } });
    if (settee) errorIs(r, 400, 'bad_request', 'Attachment content_type must be a string for a.txt');
    else assert.equal(r.status, 500, r.text);
    assert.equal((await req('GET', `/${db}/${id}`)).status, 404);
  }
  const e = await req('PUT', `/${db}/att_empty`, { body: { _attachments: { 'a.txt': { data: 'aGk=', content_type: '' } } } });
  assert.equal(e.status, 201, e.text);
  assert.equal((await req('GET', `/${db}/att_empty`)).json._attachments['a.txt'].content_type, '');
  await req('PUT', `/${db}/att_missing`, { body: { _attachments: { 'a.txt': { data: 'aGk=' } } } });
  assert.equal((await req('GET', `/${db}/att_missing`)).json._attachments['a.txt'].content_type, 'application/octet-stream');
  errorIs(await req('PUT', `/${db}/att_b64`, { body: { _attachments: { 'a.txt': { data: '!!!', content_type: 'text/plain' } } } }),
    400, 'bad_request', 'Invalid attachment data for a.txt');
});

// ------------------------------------------------------------------ duplicate keys

test('duplicate JSON keys: one key stored, the last occurrence, on PUT, POST and _bulk_docs', async () => {
  assert.equal((await raw('PUT', `/${db}/dup_put`, '{"a":"first","b":1,"a":"second"}')).status, 201);
  const g = await request('GET', `/${db}/dup_put`, { auth: 'admin' });
  assert.equal(g.text.match(/"a":/g).length, 1, `one "a" in ${g.text}`);
  assert.deepEqual(Object.entries(g.json).filter(([k]) => !k.startsWith('_')), [['b', 1], ['a', 'second']]);

  assert.equal((await raw('POST', `/${db}`, '{"_id":"dup_post","a":"first","a":"second"}')).status, 201);
  assert.equal((await req('GET', `/${db}/dup_post`)).json.a, 'second');

  const two = await raw('POST', `/${db}`, '{"_id":"dup_id_1","v":1,"_id":"dup_id_2"}');
  assert.equal(two.json.id, 'dup_id_2');
  assert.equal((await req('GET', `/${db}/dup_id_1`)).status, 404);

  const b = await raw('POST', `/${db}/_bulk_docs`, '{"docs":[{"_id":"dup_bulk","a":1,"a":2,"nested":{"x":1,"x":2}}]}');
  assert.equal(b.status, 201, b.text);
  const gb = await request('GET', `/${db}/dup_bulk`, { auth: 'admin' });
  assert.equal(gb.text.match(/"x":/g).length, 1, gb.text);
  assert.equal(gb.json.a, 2);
  assert.deepEqual(gb.json.nested, { x: 2 });

  const arrays = await raw('POST', `/${db}/_bulk_docs`, '{"docs":[{"_id":"dup_arr_1"}],"docs":[{"_id":"dup_arr_2"}]}');
  assert.deepEqual(arrays.json.map((x) => x.id), ['dup_arr_2']);

  const rev = (await req('GET', `/${db}/dup_put`)).json._rev;
  const r2 = await raw('PUT', `/${db}/dup_put`, `{"_rev":"1-${H32('0')}","a":"third","_rev":"${rev}"}`);
  assert.equal(r2.status, 201, 'the last _rev is the one used');

  const del = await raw('PUT', `/${db}/dup_del`, '{"_deleted":true,"v":1,"_deleted":false}');
  assert.equal(del.status, 201, 'the last _deleted (false) wins');
  assert.equal((await req('GET', `/${db}/dup_del`)).json.v, 1);
});

// ------------------------------------------------------------------ deep JSON

const nested = (depth) => '['.repeat(depth) + '1' + ']'.repeat(depth);
const depthOf = (v) => { let d = 0; while (Array.isArray(v)) { d++; v = v[0]; } return d; };

test('JSON nested 1,000 and 10,000 deep is stored and read back everywhere', async () => {
  for (const depth of [1000, 10000]) {
    const id = `deep${depth}`;
    const r = await raw('PUT', `/${db}/${id}`, `{"deep":${nested(depth)}}`);
    assert.equal(r.status, 201, r.text.slice(0, 200));
    assert.equal(depthOf((await req('GET', `/${db}/${id}`)).json.deep), depth);
    const b = await raw('POST', `/${db}/_bulk_docs`, `{"docs":[{"_id":"${id}b","deep":${nested(depth)}}]}`);
    assert.equal(b.status, 201, b.text.slice(0, 200));
  }
  // the readers that walk a body: changes with docs, _all_docs with docs, _bulk_get, _find
  const ch = await req('GET', `/${db}/_changes?include_docs=true&filter=_doc_ids&doc_ids=${enc('["deep10000"]')}`);
  assert.equal(depthOf(ch.json.results[0].doc.deep), 10000);
  const ad = await req('POST', `/${db}/_all_docs?include_docs=true`, { body: { keys: ['deep10000'] } });
  assert.equal(depthOf(ad.json.rows[0].doc.deep), 10000);
  const bg = await req('POST', `/${db}/_bulk_get`, { body: { docs: [{ id: 'deep10000b' }] } });
  assert.equal(depthOf(bg.json.results[0].docs[0].ok.deep), 10000);
  const f = await req('POST', `/${db}/_find`, { body: { selector: { deep: { $exists: true }, _id: { $gt: 'deep1' } } } });
  assert.equal(f.status, 200, f.text.slice(0, 200));
  const o = await raw('PUT', `/${db}/deepobj`, `{"deep":${'{"a":'.repeat(1000)}1${'}'.repeat(1000)}}`);
  assert.equal(o.status, 201);
});

test('JSON nested past settee\'s limit is refused with an honest reason (CouchDB has no limit)', async () => {
  const depth = 20000;
  const r = await raw('PUT', `/${db}/deeper`, `{"deep":${nested(depth)}}`);
  if (await isSettee()) {
    errorIs(r, 400, 'bad_request', /nested too deeply/);
    assert.doesNotMatch(r.json.reason, /UTF-8/);
    const b = await raw('POST', `/${db}/_bulk_docs`, `{"docs":[{"_id":"deeperb","deep":${nested(depth)}}]}`);
    errorIs(b, 400, 'bad_request', /nested too deeply/);
    errorIs(await request('GET', `/${db}/_all_docs?keys=${enc(nested(depth))}`, { auth: 'admin' }), 400, 'bad_request', /nested too deeply/);
  } else {
    assert.equal(r.status, 201, r.text);
  }
});

// ------------------------------------------------------------------ huge headers

test('a 64 KB header and 64 KB of cookies are refused (settee: 431 JSON, CouchDB: 400)', async () => {
  const settee = await isSettee();
  const big = 'x'.repeat(64 * 1024);
  const cookies = Array.from({ length: 1024 }, (_, i) => `c${i}=${'y'.repeat(58)}`).join('; ');
  for (const headers of [{ 'X-Big': big }, { Cookie: cookies }]) {
    const r = await request('GET', `/${db}`, { headers, auth: 'admin' });
    if (settee) {
      errorIs(r, 431, 'header_fields_too_large', /larger than \d+ bytes/);
      assert.equal(r.headers['content-type'], 'application/json');
    } else {
      assert.ok(r.status === 400 || r.status === 431, `status ${r.status}`);
    }
  }
  // a usual request still works on a fresh connection, and a large-but-fair header passes
  assert.equal((await request('GET', `/${db}`, { headers: { 'X-Fair': 'z'.repeat(4000) }, auth: 'admin' })).status, 200);
});

test('after all of it the server answers and the data is there', async () => {
  assert.equal((await req('GET', '/')).status, 200);
  const info = await req('GET', `/${db}`);
  assert.equal(info.status, 200);
  assert.ok(info.json.doc_count >= 15, `doc_count ${info.json.doc_count}`);
  assert.equal((await req('GET', `/${db}/gz1`)).json.v, 'gzipped');
});
