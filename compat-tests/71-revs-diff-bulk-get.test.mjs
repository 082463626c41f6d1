// Fetch/store half of the replication protocol: _revs_diff, _bulk_get, open_revs (JSON and
// multipart/mixed), PUT ?new_edits=false with multipart/related, _bulk_docs new_edits:false,
// _ensure_full_commit, _local checkpoints. CouchDB 3.4 behaviour throughout.
import test from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync, gunzipSync } from 'node:zlib';
import {
  req, rawReq, withDb, dbPath, docPath, putDoc, putRevs, pathDoc, rid, rev, enc,
  parseMultipart, parseContentType, buildMultipart, md5b64, pseudoRandomBytes,
} from './lib-repl.mjs';

const T = { timeout: 60000 };

async function post(db, what, body, query = '') {
  const r = await req('POST', dbPath(db, what) + query, { body });
  return r;
}
const sortRevs = (a) => [...a].sort();

// cdoc: 1-0 -> 2-1 (live "one"); 1-0 -> 2-3 -> 3-2 (live "two", winner); 1-0 -> 2-4 (deleted)
async function conflictDoc(db, id = 'cdoc') {
  await putRevs(db, [
    pathDoc(id, 2, [rid('1'), rid('0')], { side: 'one' }),
    pathDoc(id, 3, [rid('2'), rid('3'), rid('0')], { side: 'two' }),
    { ...pathDoc(id, 2, [rid('4'), rid('0')]), _deleted: true },
  ]);
}

// ------------------------------------------------------------------ _revs_diff

test('_revs_diff: missing, possible_ancestors, present docs omitted', T, () => withDb(async (db) => {
  await conflictDoc(db);
  await putRevs(db, [pathDoc('lin', 2, [rid('b'), rid('a')], { v: 1 })]);
  const r = await post(db, '_revs_diff', {
    cdoc: [rev(2, '1'), rev(3, '2'), rev(4, '5'), rev(1, '6')],
    lin: [rev(2, 'b'), rev(1, 'a')],
    nosuch: [rev(2, '8'), rev(1, '7')],
  });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') || '', /^application\/json/);
  assert.deepEqual(Object.keys(r.json).sort(), ['cdoc', 'nosuch'], 'a doc whose revs are all present is omitted');
  assert.deepEqual(r.json.cdoc.missing, [rev(1, '6'), rev(4, '5')], 'missing sorted by generation, then id');
  // every leaf with a generation below some missing rev, deleted leaves included
  assert.deepEqual(sortRevs(r.json.cdoc.possible_ancestors), sortRevs([rev(3, '2'), rev(2, '1'), rev(2, '4')]));
  assert.deepEqual(r.json.nosuch, { missing: [rev(2, '8'), rev(1, '7')] }, 'unknown doc: request order, no possible_ancestors');
}));

test('_revs_diff: internal revs are present; no possible_ancestors when none qualify', T, () => withDb(async (db) => {
  await putRevs(db, [pathDoc('d', 3, [rid('c'), rid('b'), rid('a')], {})]);
  const r = await post(db, '_revs_diff', { d: [rev(1, 'a'), rev(2, 'b'), rev(1, 'f')] });
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { d: { missing: [rev(1, 'f')] } });
  const r2 = await post(db, '_revs_diff', { d: [rev(3, 'c'), rev(5, 'e'), rev(4, 'd')] });
  assert.deepEqual(r2.json.d.missing, [rev(4, 'd'), rev(5, 'e')]);
  assert.deepEqual(r2.json.d.possible_ancestors, [rev(3, 'c')]);
  const r3 = await post(db, '_revs_diff', { d: [rev(3, 'c')] });
  assert.deepEqual(r3.json, {});
}));

test('_revs_diff: {} gives {}, a non-object body is a 400', T, () => withDb(async (db) => {
  const r = await post(db, '_revs_diff', {});
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, {});
  const bad = await post(db, '_revs_diff', [1]);
  assert.equal(bad.status, 400);
  assert.deepEqual(bad.json, { error: 'bad_request', reason: 'Request body must be a JSON object' });
}));

// ------------------------------------------------------------------ _bulk_get

test('_bulk_get: results in request order, ok docs and error entries', T, () => withDb(async (db) => {
  await conflictDoc(db);
  const r1 = await putDoc(db, 'doc1', { a: 1 });
  const r2 = await putDoc(db, 'doc1', { _rev: r1, a: 2 });
  const rb = await putDoc(db, 'b1', { v: 1 });
  const body = {
    docs: [
      { id: 'b1' },
      { id: 'nosuchdoc' },
      { id: 'doc1', rev: r2 },
      { id: 'doc1', rev: '9-' + rid('e') },
      { id: 'cdoc', rev: rev(2, '4') },
      { id: 'b1', rev: rb },
    ],
  };
  const r = await post(db, '_bulk_get', body);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') || '', /^application\/json/);
  assert.deepEqual(r.json, {
    results: [
      { id: 'b1', docs: [{ ok: { _id: 'b1', _rev: rb, v: 1 } }] },
      { id: 'nosuchdoc', docs: [{ error: { id: 'nosuchdoc', rev: 'undefined', error: 'not_found', reason: 'missing' } }] },
      { id: 'doc1', docs: [{ ok: { _id: 'doc1', _rev: r2, a: 2 } }] },
      { id: 'doc1', docs: [{ error: { id: 'doc1', rev: '9-' + rid('e'), error: 'not_found', reason: 'missing' } }] },
      { id: 'cdoc', docs: [{ ok: { _id: 'cdoc', _rev: rev(2, '4'), _deleted: true } }] },
      { id: 'b1', docs: [{ ok: { _id: 'b1', _rev: rb, v: 1 } }] },
    ],
  });
  const noId = await post(db, '_bulk_get', { docs: [{ rev: '1-abc' }] });
  assert.equal(noId.status, 200);
  assert.deepEqual(noId.json, { results: [{ id: null, docs: [{ error: { id: null, rev: null, error: 'bad_request', reason: 'document id missed' } }] }] });
}));

test('_bulk_get revs=true adds _revisions; latest=true resolves internal revs to leaves', T, () => withDb(async (db) => {
  await conflictDoc(db);
  // PouchDB's request: POST _bulk_get?revs=true&latest=true
  const r = await post(db, '_bulk_get', { docs: [{ id: 'cdoc', rev: rev(3, '2') }, { id: 'cdoc', rev: rev(1, '0') }] }, '?revs=true&latest=true');
  assert.equal(r.status, 200);
  assert.deepEqual(Object.keys(r.json), ['results']);
  assert.equal(r.json.results.length, 2);
  assert.deepEqual(r.json.results[0], {
    id: 'cdoc',
    docs: [{ ok: { _id: 'cdoc', _rev: rev(3, '2'), side: 'two', _revisions: { start: 3, ids: [rid('2'), rid('3'), rid('0')] } } }],
  });
  const leaves = r.json.results[1].docs.map((d) => d.ok._rev).sort();
  assert.deepEqual(leaves, [rev(2, '1'), rev(2, '4'), rev(3, '2')].sort(), 'latest=true returns every leaf below 1-0');
  for (const d of r.json.results[1].docs) assert.ok(d.ok._revisions && d.ok._revisions.ids[0] === d.ok._rev.split('-')[1]);
  // without a rev: every leaf
  const all = await post(db, '_bulk_get', { docs: [{ id: 'cdoc' }] }, '?revs=true');
  assert.deepEqual(all.json.results[0].docs.map((d) => d.ok._rev).sort(), leaves);
  const del = all.json.results[0].docs.find((d) => d.ok._rev === rev(2, '4'));
  assert.deepEqual(del.ok, { _id: 'cdoc', _rev: rev(2, '4'), _deleted: true, _revisions: { start: 2, ids: [rid('4'), rid('0')] } });
}));

test('_bulk_get as CouchDB\'s replicator sends it (options in query and body)', T, () => withDb(async (db) => {
  const docs = [];
  for (let i = 0; i < 30; i++) docs.push(pathDoc('r' + i, 2, [rid(String(i % 10)), rid('a')], { i }));
  await putRevs(db, docs);
  const body = {
    docs: docs.map((d) => ({ id: d._id, rev: d._rev, atts_since: [] })).reverse(),
    latest: true, revs: true, attachments: false,
  };
  const r = await post(db, '_bulk_get', body, '?latest=true&revs=true&attachments=false');
  assert.equal(r.status, 200);
  assert.deepEqual(Object.keys(r.json), ['results']);
  assert.equal(r.json.results.length, 30);
  r.json.results.forEach((res, k) => {
    const src = docs[29 - k];
    assert.equal(res.id, src._id, 'one result per request entry, in request order');
    assert.equal(res.docs.length, 1);
    assert.deepEqual(res.docs[0].ok, src);
  });
}));

test('_bulk_get attachments: stubs by default, data with attachments=true, atts_since', T, () => withDb(async (db) => {
  const text = 'hello attachment\n';
  const bin = Buffer.from([0, 1, 2, 250, 255, 13, 10, 0]);
  const r1 = await putDoc(db, 'adoc', { v: 1, _attachments: { 'hello.txt': { content_type: 'text/plain', data: Buffer.from(text).toString('base64') } } });
  const ra = await req('PUT', docPath(db, 'adoc') + '/data.bin?rev=' + r1, { body: bin, headers: { 'Content-Type': 'application/octet-stream' } });
  assert.equal(ra.status, 201);
  const r2 = ra.json.rev;
  const stubs = await post(db, '_bulk_get', { docs: [{ id: 'adoc', rev: r2 }] });
  const sdoc = stubs.json.results[0].docs[0].ok;
  assert.deepEqual(sdoc._attachments['data.bin'], {
    content_type: 'application/octet-stream', revpos: 2, digest: 'md5-' + md5b64(bin), length: bin.length, stub: true,
  });
  assert.equal(sdoc._attachments['hello.txt'].stub, true);
  assert.equal(sdoc._attachments['hello.txt'].length, text.length);
  assert.equal(sdoc._attachments['hello.txt'].revpos, 1);
  const full = await post(db, '_bulk_get', { docs: [{ id: 'adoc', rev: r2 }] }, '?attachments=true');
  const fdoc = full.json.results[0].docs[0].ok;
  assert.equal(Buffer.from(fdoc._attachments['data.bin'].data, 'base64').toString('hex'), bin.toString('hex'));
  assert.equal(Buffer.from(fdoc._attachments['hello.txt'].data, 'base64').toString(), text);
  assert.equal('stub' in fdoc._attachments['data.bin'], false);
  const since = await post(db, '_bulk_get', { docs: [{ id: 'adoc', rev: r2, atts_since: [r1] }] }, '?attachments=true&revs=true');
  const adoc = since.json.results[0].docs[0].ok;
  assert.equal(adoc._attachments['hello.txt'].stub, true, 'revpos 1 is not newer than atts_since 1-…');
  assert.equal(Buffer.from(adoc._attachments['data.bin'].data, 'base64').toString('hex'), bin.toString('hex'));
  assert.deepEqual(adoc._revisions, { start: 2, ids: [r2.split('-')[1], r1.split('-')[1]] });
}));

// ------------------------------------------------------------------ open_revs (JSON)

test('open_revs JSON: all leaves, explicit revs with {missing}, latest=true', T, () => withDb(async (db) => {
  await conflictDoc(db);
  const path = docPath(db, 'cdoc');
  const all = await req('GET', path + '?open_revs=all&revs=true');
  assert.equal(all.status, 200);
  assert.match(all.headers.get('content-type') || '', /^application\/json/);
  assert.deepEqual(all.json, [
    { ok: { _id: 'cdoc', _rev: rev(2, '1'), side: 'one', _revisions: { start: 2, ids: [rid('1'), rid('0')] } } },
    { ok: { _id: 'cdoc', _rev: rev(2, '4'), _deleted: true, _revisions: { start: 2, ids: [rid('4'), rid('0')] } } },
    { ok: { _id: 'cdoc', _rev: rev(3, '2'), side: 'two', _revisions: { start: 3, ids: [rid('2'), rid('3'), rid('0')] } } },
  ]);
  const list = await req('GET', path + '?open_revs=' + enc(JSON.stringify([rev(2, '1'), rev(1, '0'), rev(5, '9')])) + '&revs=true');
  assert.equal(list.status, 200);
  assert.deepEqual(list.json, [
    { ok: { _id: 'cdoc', _rev: rev(2, '1'), side: 'one', _revisions: { start: 2, ids: [rid('1'), rid('0')] } } },
    { missing: rev(1, '0') },
    { missing: rev(5, '9') },
  ]);
  // PouchDB's fallback fetch
  const latest = await req('GET', path + '?revs=true&latest=true&open_revs=' + enc(JSON.stringify([rev(2, '3'), rev(3, '2')])));
  assert.equal(latest.status, 200);
  assert.deepEqual(latest.json, [
    { ok: { _id: 'cdoc', _rev: rev(3, '2'), side: 'two', _revisions: { start: 3, ids: [rid('2'), rid('3'), rid('0')] } } },
  ], 'an internal rev and its leaf give the leaf once');
  const latest0 = await req('GET', path + '?latest=true&open_revs=' + enc(JSON.stringify([rev(1, '0')])));
  assert.deepEqual(latest0.json.map((x) => x.ok._rev), [rev(2, '1'), rev(2, '4'), rev(3, '2')]);
  const bad = await req('GET', path + '?open_revs=notjson');
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error, 'bad_request');
  const missingDoc = await req('GET', docPath(db, 'nosuch') + '?open_revs=' + enc(JSON.stringify([rev(1, 'a')])));
  assert.equal(missingDoc.status, 200);
  assert.deepEqual(missingDoc.json, [{ missing: rev(1, 'a') }]);
}));

// ------------------------------------------------------------------ open_revs (multipart/mixed)

function multipartOf(r) {
  const ct = parseContentType(r.headers['content-type']);
  assert.ok(ct.params.boundary, `boundary in ${r.headers['content-type']}`);
  return { type: ct.type, parts: parseMultipart(r.buf, ct.params.boundary) };
}

test('open_revs multipart/mixed: application/json parts and error="true" parts for missing revs', T, () => withDb(async (db) => {
  await conflictDoc(db);
  const r = await rawReq('GET', docPath(db, 'cdoc') + '?revs=true&open_revs=' + enc(JSON.stringify([rev(3, '2'), rev(9, 'f'), rev(2, '1')])) + '&latest=true',
    { headers: { Accept: 'multipart/mixed' } });
  assert.equal(r.status, 200);
  const { type, parts } = multipartOf(r);
  assert.equal(type, 'multipart/mixed');
  assert.equal(parts.length, 3);
  const docs = [];
  for (const p of parts) {
    const ct = parseContentType(p.headers['content-type']);
    assert.equal(ct.type, 'application/json');
    const j = JSON.parse(p.body.toString('utf8'));
    if (ct.params.error === 'true') assert.deepEqual(j, { missing: rev(9, 'f') });
    else docs.push(j);
  }
  assert.equal(parts.filter((p) => /error="true"/.test(p.headers['content-type'])).length, 1,
    'the missing rev comes as Content-Type: application/json; error="true"');
  assert.deepEqual(docs.map((d) => d._rev).sort(), [rev(2, '1'), rev(3, '2')]);
  const two = docs.find((d) => d._rev === rev(3, '2'));
  assert.deepEqual(two, { _id: 'cdoc', _rev: rev(3, '2'), side: 'two', _revisions: { start: 3, ids: [rid('2'), rid('3'), rid('0')] } });
  const all = await rawReq('GET', docPath(db, 'cdoc') + '?open_revs=all&revs=true', { headers: { Accept: 'multipart/mixed' } });
  const allParts = multipartOf(all).parts;
  assert.equal(allParts.length, 3);
  assert.deepEqual(allParts.map((p) => JSON.parse(p.body.toString())._rev).sort(), [rev(2, '1'), rev(2, '4'), rev(3, '2')]);
}));

test('open_revs multipart/mixed: a doc with attachments is a nested multipart/related part', T, () => withDb(async (db) => {
  const text = 'hello attachment\n'.repeat(20);
  const bin = pseudoRandomBytes(3000, 7);
  const r1 = await putDoc(db, 'adoc', { v: 1, _attachments: { 'hello.txt': { content_type: 'text/plain', data: Buffer.from(text).toString('base64') } } });
  const ra = await req('PUT', docPath(db, 'adoc') + '/data.bin?rev=' + r1, { body: bin, headers: { 'Content-Type': 'application/octet-stream' } });
  assert.equal(ra.status, 201);
  const r2 = ra.json.rev;
  // exactly what CouchDB's replicator asks for (no attachments=true)
  const q = '?revs=true&open_revs=' + enc(JSON.stringify([r2])) + '&latest=true';
  const r = await rawReq('GET', docPath(db, 'adoc') + q, { headers: { Accept: 'multipart/mixed' } });
  assert.equal(r.status, 200);
  const outer = multipartOf(r);
  assert.equal(outer.type, 'multipart/mixed');
  assert.equal(outer.parts.length, 1);
  const ct = parseContentType(outer.parts[0].headers['content-type']);
  assert.equal(ct.type, 'multipart/related');
  const inner = parseMultipart(outer.parts[0].body, ct.params.boundary);
  assert.equal(inner.length, 3, 'JSON part and one part per attachment');
  assert.equal(parseContentType(inner[0].headers['content-type']).type, 'application/json', 'JSON comes first');
  const doc = JSON.parse(inner[0].body.toString('utf8'));
  assert.equal(doc._rev, r2);
  assert.deepEqual(doc._revisions, { start: 2, ids: [r2.split('-')[1], r1.split('-')[1]] });
  for (const name of ['hello.txt', 'data.bin']) {
    assert.equal(doc._attachments[name].follows, true, `${name} follows`);
    assert.equal('stub' in doc._attachments[name], false);
    assert.equal('data' in doc._attachments[name], false);
  }
  const byName = {};
  for (const p of inner.slice(1)) {
    const m = /filename="([^"]+)"/.exec(p.headers['content-disposition'] || '');
    assert.ok(m, `Content-Disposition: attachment; filename="…" (${p.headers['content-disposition']})`);
    assert.match(p.headers['content-disposition'], /^attachment;/);
    byName[m[1]] = p;
  }
  const pb = byName['data.bin'];
  assert.ok(pb, 'data.bin part');
  assert.equal(pb.body.toString('hex'), bin.toString('hex'), 'binary attachment byte-exact');
  assert.equal(pb.headers['content-type'], 'application/octet-stream');
  assert.equal(Number(pb.headers['content-length']), bin.length);
  assert.equal(doc._attachments['data.bin'].length, bin.length);
  assert.equal(doc._attachments['data.bin'].digest, 'md5-' + md5b64(bin));
  const pt = byName['hello.txt'];
  assert.ok(pt, 'hello.txt part');
  assert.equal(Number(pt.headers['content-length']), pt.body.length);
  const att = doc._attachments['hello.txt'];
  assert.equal(att.length, text.length);
  if (pt.headers['content-encoding'] === 'gzip') {
    assert.equal(att.encoding, 'gzip', 'an encoded part is announced in the JSON');
    assert.equal(att.encoded_length, pt.body.length);
    assert.equal(gunzipSync(pt.body).toString(), text);
  } else {
    assert.equal(att.encoding, undefined);
    assert.equal(pt.body.toString(), text);
  }
  assert.equal(att.digest, 'md5-' + md5b64(pt.body), 'digest is the MD5 of the bytes as stored and sent');
  // atts_since: attachments not newer than the ancestor come as stubs, without a part
  const q2 = q + '&atts_since=' + enc(JSON.stringify([r1]));
  const r3 = await rawReq('GET', docPath(db, 'adoc') + q2, { headers: { Accept: 'multipart/mixed' } });
  const o3 = multipartOf(r3);
  const ct3 = parseContentType(o3.parts[0].headers['content-type']);
  assert.equal(ct3.type, 'multipart/related');
  const in3 = parseMultipart(o3.parts[0].body, ct3.params.boundary);
  assert.equal(in3.length, 2);
  const d3 = JSON.parse(in3[0].body.toString());
  assert.equal(d3._attachments['hello.txt'].stub, true);
  assert.equal(d3._attachments['data.bin'].follows, true);
  assert.match(in3[1].headers['content-disposition'], /filename="data.bin"/);
  assert.equal(in3[1].body.toString('hex'), bin.toString('hex'));
}));

// ------------------------------------------------------------------ PUT ?new_edits=false multipart

test('PUT ?new_edits=false multipart/related: follows attachments, gzip part, stubs from an ancestor', T, () => withDb(async (db) => {
  const bin = pseudoRandomBytes(70000, 3);
  const text = 'replicated text attachment\n'.repeat(50);
  const gz = gzipSync(Buffer.from(text));
  await putRevs(db, [pathDoc('mp', 1, [rid('a')], { v: 0 })]);
  const boundary = 'b' + rid('9');
  const json = {
    _id: 'mp', _rev: rev(2, 'b'), _revisions: { start: 2, ids: [rid('b'), rid('a')] }, v: 1,
    _attachments: {
      'bin.dat': { content_type: 'application/octet-stream', revpos: 2, digest: 'md5-' + md5b64(bin), length: bin.length, follows: true },
      'text.txt': { content_type: 'text/plain', revpos: 2, digest: 'md5-' + md5b64(gz), length: text.length, follows: true, encoding: 'gzip', encoded_length: gz.length },
    },
  };
  const body = buildMultipart(boundary, [
    { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(json) },
    { headers: { 'Content-Disposition': 'attachment; filename="bin.dat"', 'Content-Type': 'application/octet-stream', 'Content-Length': bin.length }, body: bin },
    { headers: { 'Content-Disposition': 'attachment; filename="text.txt"', 'Content-Type': 'text/plain', 'Content-Length': gz.length, 'Content-Encoding': 'gzip' }, body: gz },
  ]);
  const put = await rawReq('PUT', docPath(db, 'mp') + '?new_edits=false', {
    headers: { 'Content-Type': `multipart/related; boundary="${boundary}"`, Accept: 'application/json' }, body,
  });
  assert.equal(put.status, 201, put.text);
  assert.deepEqual(put.json, { ok: true, id: 'mp', rev: rev(2, 'b') });
  const gb = await rawReq('GET', docPath(db, 'mp') + '/bin.dat');
  assert.equal(gb.status, 200);
  assert.equal(gb.buf.toString('hex'), bin.toString('hex'));
  assert.equal(gb.headers['content-encoding'], undefined);
  const gt = await rawReq('GET', docPath(db, 'mp') + '/text.txt');
  assert.equal(gt.status, 200);
  assert.equal(gt.headers['content-encoding'], undefined, 'no gzip unless the client offers it');
  assert.equal(gt.buf.toString(), text);
  const gtz = await rawReq('GET', docPath(db, 'mp') + '/text.txt', { headers: { 'Accept-Encoding': 'gzip' } });
  assert.equal(gtz.status, 200);
  const plain = gtz.headers['content-encoding'] === 'gzip' ? gunzipSync(gtz.buf) : gtz.buf;
  assert.equal(plain.toString(), text);
  const doc = (await req('GET', docPath(db, 'mp'))).json;
  assert.deepEqual(doc._attachments['bin.dat'], { content_type: 'application/octet-stream', revpos: 2, digest: 'md5-' + md5b64(bin), length: bin.length, stub: true });
  assert.equal(doc._attachments['text.txt'].length, text.length);
  assert.equal(doc._attachments['text.txt'].revpos, 2);

  // 3-c: bin.dat as a stub (resolved against 2-b), text.txt replaced, new.txt added — multipart
  const newTxt = Buffer.from('brand new\n');
  const json3 = {
    _id: 'mp', _rev: rev(3, 'c'), _revisions: { start: 3, ids: [rid('c'), rid('b'), rid('a')] }, v: 2,
    _attachments: {
      'bin.dat': { content_type: 'application/octet-stream', revpos: 2, digest: 'md5-' + md5b64(bin), length: bin.length, stub: true },
      'new.txt': { content_type: 'text/plain', revpos: 3, digest: 'md5-' + md5b64(newTxt), length: newTxt.length, follows: true },
    },
  };
  const body3 = buildMultipart(boundary, [
    { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(json3) },
    { headers: { 'Content-Disposition': 'attachment; filename="new.txt"', 'Content-Type': 'text/plain', 'Content-Length': newTxt.length }, body: newTxt },
  ]);
  const put3 = await rawReq('PUT', docPath(db, 'mp') + '?new_edits=false', {
    headers: { 'Content-Type': `multipart/related; boundary="${boundary}"`, Accept: 'application/json' }, body: body3,
  });
  assert.equal(put3.status, 201, put3.text);
  const g3 = await rawReq('GET', docPath(db, 'mp') + '/bin.dat?rev=' + rev(3, 'c'));
  assert.equal(g3.buf.toString('hex'), bin.toString('hex'), 'stub resolved from the ancestor');
  const n3 = await rawReq('GET', docPath(db, 'mp') + '/new.txt');
  assert.equal(n3.buf.toString(), newTxt.toString());
  const t3 = await rawReq('GET', docPath(db, 'mp') + '/text.txt');
  assert.equal(t3.status, 404, 'an attachment left out of the new revision is gone');
  const d3 = (await req('GET', docPath(db, 'mp'))).json;
  assert.deepEqual(Object.keys(d3._attachments).sort(), ['bin.dat', 'new.txt']);
  assert.equal(d3._attachments['bin.dat'].revpos, 2);

  // 4-d: plain JSON new_edits=false with only stubs
  const put4 = await req('PUT', docPath(db, 'mp') + '?new_edits=false', {
    body: {
      _id: 'mp', _rev: rev(4, 'd'), _revisions: { start: 4, ids: [rid('d'), rid('c')] }, v: 3,
      _attachments: { 'new.txt': { content_type: 'text/plain', revpos: 3, digest: 'md5-' + md5b64(newTxt), length: newTxt.length, stub: true } },
    },
  });
  assert.equal(put4.status, 201, put4.text);
  const n4 = await rawReq('GET', docPath(db, 'mp') + '/new.txt?rev=' + rev(4, 'd'));
  assert.equal(n4.buf.toString(), newTxt.toString());
}));

test('new_edits=false stub without a stored ancestor is 412 missing_stub', T, () => withDb(async (db) => {
  const stub = { content_type: 'text/plain', revpos: 1, digest: 'md5-' + md5b64(Buffer.from('x')), length: 1, stub: true };
  const r = await req('PUT', docPath(db, 'orphan') + '?new_edits=false', {
    body: { _id: 'orphan', _rev: rev(2, 'e'), _revisions: { start: 2, ids: [rid('e'), rid('d')] }, _attachments: { 'a.txt': stub } },
  });
  assert.equal(r.status, 412, r.text);
  assert.equal(r.json.error, 'missing_stub');
  assert.equal(typeof r.json.reason, 'string');
  assert.equal((await req('GET', docPath(db, 'orphan'))).status, 404, 'nothing written');
  // ancestor exists but has no such attachment
  await putRevs(db, [pathDoc('has', 1, [rid('a')], {})]);
  const r2 = await req('PUT', docPath(db, 'has') + '?new_edits=false', {
    body: { _id: 'has', _rev: rev(2, 'b'), _revisions: { start: 2, ids: [rid('b'), rid('a')] }, _attachments: { 'a.txt': stub } },
  });
  assert.equal(r2.status, 412, r2.text);
  assert.equal(r2.json.error, 'missing_stub');
  // multipart with one follows part and one unresolvable stub
  const boundary = 'c' + rid('8');
  const data = Buffer.from('data');
  const body = buildMultipart(boundary, [
    { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ _id: 'orphan2', _rev: rev(3, 'f'), _revisions: { start: 3, ids: [rid('f'), rid('9')] }, _attachments: { 'f.bin': { content_type: 'application/octet-stream', length: data.length, follows: true }, 'a.txt': stub } }) },
    { headers: { 'Content-Disposition': 'attachment; filename="f.bin"', 'Content-Type': 'application/octet-stream', 'Content-Length': data.length }, body: data },
  ]);
  const r3 = await rawReq('PUT', docPath(db, 'orphan2') + '?new_edits=false', { headers: { 'Content-Type': `multipart/related; boundary="${boundary}"`, Accept: 'application/json' }, body });
  assert.equal(r3.status, 412, r3.text);
  assert.equal(r3.json.error, 'missing_stub');
}));

// ------------------------------------------------------------------ writes, commits, checkpoints

test('_bulk_docs new_edits:false answers 201 [] and is idempotent', T, () => withDb(async (db) => {
  const docs = [
    pathDoc('n1', 3, [rid('c'), rid('b'), rid('a')], { v: 1 }),
    pathDoc('n2', 1, [rid('d')], { v: 2 }),
    { ...pathDoc('n3', 2, [rid('f'), rid('e')]), _deleted: true },
  ];
  for (let i = 0; i < 2; i++) {
    const r = await post(db, '_bulk_docs', { docs, new_edits: false });
    assert.equal(r.status, 201, `attempt ${i + 1}: ${r.text}`);
    assert.deepEqual(r.json, []);
  }
  const info = (await req('GET', dbPath(db))).json;
  assert.equal(info.doc_count, 2);
  assert.equal(info.doc_del_count, 1);
  const n1 = await req('GET', docPath(db, 'n1') + '?revs=true');
  assert.deepEqual(n1.json, { _id: 'n1', _rev: rev(3, 'c'), v: 1, _revisions: { start: 3, ids: [rid('c'), rid('b'), rid('a')] } });
  // resending a leaf with another body changes nothing
  const again = await post(db, '_bulk_docs', { docs: [{ ...docs[0], v: 'changed' }], new_edits: false });
  assert.equal(again.status, 201);
  assert.equal((await req('GET', docPath(db, 'n1'))).json.v, 1);
  const ch = (await req('GET', dbPath(db, '_changes'))).json;
  assert.equal(ch.results.length, 3);
}));

test('_ensure_full_commit answers 201 with the db instance_start_time', T, () => withDb(async (db) => {
  const info = (await req('GET', dbPath(db))).json;
  assert.equal(typeof info.instance_start_time, 'string');
  for (const body of [{}, '']) {
    const r = await req('POST', dbPath(db, '_ensure_full_commit'), { body, headers: { 'Content-Type': 'application/json' } });
    assert.equal(r.status, 201, r.text);
    assert.deepEqual(r.json, { ok: true, instance_start_time: info.instance_start_time });
  }
}));

test('_local checkpoint docs: 0-N revs, _revisions ignored, not in _changes/_all_docs', T, () => withDb(async (db) => {
  const path = docPath(db, '_local/repl-abc');
  const missing = await req('GET', path);
  assert.equal(missing.status, 404);
  assert.equal(missing.json.error, 'not_found');
  const body = { session_id: 's1', history: [{ last_seq: 3, session_id: 's1' }], last_seq: 3, _revisions: { start: 7, ids: ['x', 'y'] } };
  const p1 = await req('PUT', path, { body });
  assert.equal(p1.status, 201, p1.text);
  assert.deepEqual(p1.json, { ok: true, id: '_local/repl-abc', rev: '0-1' });
  const g1 = await req('GET', path);
  assert.equal(g1.status, 200);
  assert.deepEqual(g1.json, { _id: '_local/repl-abc', _rev: '0-1', session_id: 's1', history: [{ last_seq: 3, session_id: 's1' }], last_seq: 3 });
  const p2 = await req('PUT', path, { body: { ...g1.json, last_seq: 9 } });
  assert.equal(p2.status, 201);
  assert.equal(p2.json.rev, '0-2');
  assert.equal((await req('GET', path)).json.last_seq, 9);
  await putDoc(db, 'real', {});
  const ch = (await req('GET', dbPath(db, '_changes'))).json;
  assert.deepEqual(ch.results.map((r) => r.id), ['real']);
  const ad = (await req('GET', dbPath(db, '_all_docs'))).json;
  assert.deepEqual(ad.rows.map((r) => r.id), ['real']);
  assert.equal(ad.total_rows, 1);
  const info = (await req('GET', dbPath(db))).json;
  assert.equal(info.doc_count, 1);
  const d = await req('DELETE', path + '?rev=0-2');
  assert.equal(d.status, 200);
  assert.deepEqual(d.json, { ok: true, id: '_local/repl-abc', rev: '0-0' });
  assert.equal((await req('GET', path)).status, 404);
}));
