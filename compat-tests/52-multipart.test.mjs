// Multipart and standalone attachments beyond 50 and 71: the exact bytes of an open_revs
// multipart/mixed answer (CouchDB's replicator parses them), a doc that does not exist,
// atts_since covering every attachment, a fetch → push round trip the way CouchDB's
// replicator does it, byte ranges that cannot be served, gzip uploads, odd attachment names,
// _design attachments and bad multipart bodies.
// Expected: CouchDB 3.4.3 (chttpd_db send_docs_multipart / db_attachment_req, couch_doc
// doc_to_multi_part_stream, golden http-shapes open_revs_multipart_*). Attachments here are
// application/octet-stream, which CouchDB stores uncompressed, so bytes compare as sent.
import test from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import {
  req, rawReq, withDb, docPath, putRevs, pathDoc, rid, rev, enc,
  parseMultipart, parseContentType, buildMultipart, md5b64, pseudoRandomBytes,
} from './lib-repl.mjs';

const T = { timeout: 60000 };
const OCTET = 'application/octet-stream';
const MIXED = { Accept: 'multipart/mixed' };

// A stub as CouchDB renders it when the bytes follow in the multipart body (golden key order).
const follows = (data, revpos) => ({ content_type: OCTET, revpos, digest: 'md5-' + md5b64(data), length: data.length, follows: true });
const stub = (data, revpos) => ({ content_type: OCTET, revpos, digest: 'md5-' + md5b64(data), length: data.length, stub: true });
const inline = (data) => ({ content_type: OCTET, data: data.toString('base64') });

function assertBytes(act, exp, what) {
  if (act.equals(exp)) return;
  let i = 0;
  while (i < act.length && i < exp.length && act[i] === exp[i]) i++;
  assert.fail(`${what}: bytes differ at ${i} (got ${act.length}, expected ${exp.length})\n` +
    `  got:      ${JSON.stringify(act.subarray(Math.max(0, i - 40), i + 60).toString('latin1'))}\n` +
    `  expected: ${JSON.stringify(exp.subarray(Math.max(0, i - 40), i + 60).toString('latin1'))}`);
}

// ------------------------------------------------------------------ open_revs multipart/mixed

test('open_revs multipart/mixed is CouchDB\'s layout byte for byte: nested related, plain JSON, error part', T, () => withDb(async (db) => {
  const data = pseudoRandomBytes(700, 9);
  data.write('\r\n--', 100); // CRLFs and dashes inside an attachment stay attachment bytes
  await putRevs(db, [
    pathDoc('d', 1, [rid('a')], { v: 1, _attachments: { 'f.bin': inline(data) } }),
    pathDoc('d', 1, [rid('b')], { v: 2 }),
  ]);
  const missing = rev(9, 'f');
  const q = '?open_revs=' + enc(JSON.stringify([rev(1, 'a'), rev(1, 'b'), missing]));
  const r = await rawReq('GET', docPath(db, 'd') + q, { headers: MIXED });
  assert.equal(r.status, 200, r.text);
  const m = /^multipart\/mixed; boundary="([0-9a-f]{32})"$/.exec(r.headers['content-type']);
  assert.ok(m, `content-type ${r.headers['content-type']}`);
  const outer = m[1];
  const im = /Content-Type: multipart\/related; boundary="([0-9a-f]{32})"\r\n/.exec(r.buf.toString('latin1'));
  assert.ok(im, 'a nested multipart/related part with a 32-hex boundary');
  const inner = im[1];
  const docA = { _id: 'd', _rev: rev(1, 'a'), v: 1, _attachments: { 'f.bin': follows(data, 1) } };
  const docB = { _id: 'd', _rev: rev(1, 'b'), v: 2 };
  const expected = Buffer.concat([
    Buffer.from(`--${outer}\r\nContent-Type: multipart/related; boundary="${inner}"\r\n\r\n`),
    Buffer.from(`--${inner}\r\nContent-Type: application/json\r\n\r\n${JSON.stringify(docA)}\r\n`),
    Buffer.from(`--${inner}\r\nContent-Disposition: attachment; filename="f.bin"\r\nContent-Type: ${OCTET}\r\nContent-Length: ${data.length}\r\n\r\n`),
    data,
    Buffer.from(`\r\n--${inner}--\r\n`),
    Buffer.from(`--${outer}\r\nContent-Type: application/json\r\n\r\n${JSON.stringify(docB)}\r\n`),
    Buffer.from(`--${outer}\r\nContent-Type: application/json; error="true"\r\n\r\n{"missing":"${missing}"}\r\n`),
    Buffer.from(`--${outer}--`),
  ]);
  assertBytes(r.buf, expected, 'open_revs multipart body');
}));

test('open_revs multipart/mixed for a doc that does not exist: one error="true" part per rev', T, () => withDb(async (db) => {
  const revs = [rev(1, 'a'), rev(2, 'b')];
  const r = await rawReq('GET', docPath(db, 'nosuch') + '?open_revs=' + enc(JSON.stringify(revs)), { headers: MIXED });
  assert.equal(r.status, 200, r.text);
  const ct = parseContentType(r.headers['content-type']);
  assert.equal(ct.type, 'multipart/mixed');
  const parts = parseMultipart(r.buf, ct.params.boundary);
  assert.deepEqual(parts.map((p) => p.headers['content-type']), ['application/json; error="true"', 'application/json; error="true"']);
  assert.deepEqual(parts.map((p) => JSON.parse(p.body.toString())), revs.map((x) => ({ missing: x })));
}));

test('open_revs with atts_since covering every attachment: a plain JSON part with stubs', T, () => withDb(async (db) => {
  const data = pseudoRandomBytes(300, 4);
  await putRevs(db, [pathDoc('e', 1, [rid('a')], { _attachments: { 'f.bin': inline(data) } })]);
  await putRevs(db, [pathDoc('e', 2, [rid('c'), rid('a')], { v: 2, _attachments: { 'f.bin': stub(data, 1) } })]);
  const q = '?revs=true&latest=true&open_revs=' + enc(JSON.stringify([rev(2, 'c')])) + '&atts_since=' + enc(JSON.stringify([rev(1, 'a')]));
  const r = await rawReq('GET', docPath(db, 'e') + q, { headers: MIXED });
  assert.equal(r.status, 200, r.text);
  const parts = parseMultipart(r.buf, parseContentType(r.headers['content-type']).params.boundary);
  assert.equal(parts.length, 1);
  assert.equal(parts[0].headers['content-type'], 'application/json', 'nothing follows: no nested multipart');
  assert.deepEqual(JSON.parse(parts[0].body.toString()), {
    _id: 'e', _rev: rev(2, 'c'), v: 2, _revisions: { start: 2, ids: [rid('c'), rid('a')] }, _attachments: { 'f.bin': stub(data, 1) },
  });
  // the same through GET Accept: multipart/related: plain JSON as well
  const g = await rawReq('GET', docPath(db, 'e') + '?attachments=true&atts_since=' + enc(JSON.stringify([rev(1, 'a')])), { headers: { Accept: 'multipart/related' } });
  assert.equal(g.status, 200);
  assert.match(g.headers['content-type'], /^application\/json/);
  assert.deepEqual(JSON.parse(g.text)._attachments['f.bin'], stub(data, 1));
}));

test('replicator round trip: an open_revs related part PUT with new_edits=false reproduces the revision', T, async () => {
  const big = pseudoRandomBytes(300 * 1024, 21);
  const small = Buffer.from([0, 1, 2, 13, 10, 45, 45, 255]);
  await withDb((src) => withDb(async (tgt) => {
    await putRevs(src, [pathDoc('doc', 2, [rid('b'), rid('a')], { v: 'x', _attachments: { 'big.bin': inline(big), 'small.bin': inline(small) } })]);
    const q = '?revs=true&latest=true&open_revs=' + enc(JSON.stringify([rev(2, 'b')]));
    const r = await rawReq('GET', docPath(src, 'doc') + q, { headers: MIXED });
    assert.equal(r.status, 200, r.text);
    const [part] = parseMultipart(r.buf, parseContentType(r.headers['content-type']).params.boundary);
    const ct = part.headers['content-type'];
    assert.match(ct, /^multipart\/related; boundary=/);
    // what CouchDB's replicator does with it: the same related body into the target
    const put = await rawReq('PUT', docPath(tgt, 'doc') + '?new_edits=false', { headers: { 'Content-Type': ct, Accept: 'application/json' }, body: part.body });
    assert.equal(put.status, 201, put.text);
    assert.deepEqual(put.json, { ok: true, id: 'doc', rev: rev(2, 'b') });
    const a = (await req('GET', docPath(src, 'doc') + '?revs=true')).json;
    const b = (await req('GET', docPath(tgt, 'doc') + '?revs=true')).json;
    assert.deepEqual(b, a);
    for (const [name, bytes] of [['big.bin', big], ['small.bin', small]]) {
      const g = await rawReq('GET', docPath(tgt, 'doc') + '/' + name);
      assert.equal(g.status, 200);
      assert.ok(g.buf.equals(bytes), `${name} byte-exact on the target`);
    }
    // resending it is a no-op
    const again = await rawReq('PUT', docPath(tgt, 'doc') + '?new_edits=false', { headers: { 'Content-Type': ct, Accept: 'application/json' }, body: part.body });
    assert.equal(again.status, 201, again.text);
  }));
});

// ------------------------------------------------------------------ multipart PUT input

test('multipart PUT: bad bodies are refused and write nothing', T, () => withDb(async (db) => {
  const boundary = 'bnd' + rid('7');
  const data = Buffer.from('abc');
  const json = { _attachments: { 'a.bin': { content_type: OCTET, length: 3, follows: true } } };
  const cases = [
    ['no boundary parameter', 'multipart/related', buildMultipart(boundary, [{ headers: { 'Content-Type': 'application/json' }, body: json }, { body: data }])],
    ['first part is not JSON', `multipart/related; boundary="${boundary}"`, buildMultipart(boundary, [{ headers: { 'Content-Type': 'application/json' }, body: '{"_attachments":' }, { body: data }])],
    ['first part is not an object', `multipart/related; boundary="${boundary}"`, buildMultipart(boundary, [{ headers: { 'Content-Type': 'application/json' }, body: '[1]' }])],
  ];
  for (const [what, ct, body] of cases) {
    const r = await rawReq('PUT', docPath(db, 'bad'), { headers: { 'Content-Type': ct, Accept: 'application/json' }, body });
    assert.ok(r.status >= 400 && r.status < 600, `${what}: status ${r.status}`);
    if (what !== 'no boundary parameter') assert.equal(r.status, 400, `${what}: ${r.text}`);
    assert.equal((await req('GET', docPath(db, 'bad'))).status, 404, `${what}: nothing written`);
  }
  assert.equal((await req('GET', '/')).status, 200, 'server alive');
}));

// ------------------------------------------------------------------ standalone attachments

test('Range: unsatisfiable → 416; a full explicit range is still 206; HEAD with Range', T, () => withDb(async (db) => {
  const data = pseudoRandomBytes(1000, 5);
  const put = await req('PUT', docPath(db, 'r') + '/b.bin', { body: data, headers: { 'Content-Type': OCTET } });
  assert.equal(put.status, 201, put.text);
  for (const range of ['bytes=1000-2000', 'bytes=5-2', 'bytes=-0']) {
    const g = await rawReq('GET', docPath(db, 'r') + '/b.bin', { headers: { Range: range } });
    assert.equal(g.status, 416, `${range}: ${g.status}`);
    assert.deepEqual(g.json, { error: 'requested_range_not_satisfiable', reason: 'Requested range not satisfiable' }, range);
  }
  const full = await rawReq('GET', docPath(db, 'r') + '/b.bin', { headers: { Range: 'bytes=0-999' } });
  assert.equal(full.status, 206);
  assert.equal(full.headers['content-range'], 'bytes 0-999/1000');
  assert.ok(full.buf.equals(data));
  const big = await rawReq('GET', docPath(db, 'r') + '/b.bin', { headers: { Range: 'bytes=-5000' } });
  assert.equal(big.status, 206);
  assert.equal(big.headers['content-range'], 'bytes 0-999/1000');
  const h = await rawReq('HEAD', docPath(db, 'r') + '/b.bin', { headers: { Range: 'bytes=10-19' } });
  assert.equal(h.status, 206);
  assert.equal(h.headers['content-range'], 'bytes 10-19/1000');
  assert.equal(h.headers['content-length'], '10');
  assert.equal(h.buf.length, 0);
  const bad = await rawReq('GET', docPath(db, 'r') + '/b.bin', { headers: { Range: 'lines=1-2' } });
  assert.equal(bad.status, 200, 'a Range in another unit is ignored');
  assert.ok(bad.buf.equals(data));
}));

test('attachment PUT with Content-Encoding: gzip serves the plain bytes; other encodings → 415', T, () => withDb(async (db) => {
  const plain = pseudoRandomBytes(5000, 8);
  const r = await rawReq('PUT', docPath(db, 'z') + '/p.bin', { headers: { 'Content-Type': OCTET, 'Content-Encoding': 'gzip', Accept: 'application/json' }, body: gzipSync(plain) });
  assert.equal(r.status, 201, r.text);
  const g = await rawReq('GET', docPath(db, 'z') + '/p.bin');
  assert.equal(g.status, 200);
  assert.equal(g.headers['content-encoding'], undefined);
  assert.ok(g.buf.equals(plain), 'plain bytes back');
  const br = await rawReq('PUT', docPath(db, 'z') + '/q.bin?rev=' + r.json.rev, { headers: { 'Content-Type': OCTET, 'Content-Encoding': 'br', Accept: 'application/json' }, body: Buffer.from('x') });
  assert.equal(br.status, 415, br.text);
  assert.equal(br.json.error, 'bad_content_type');
}));

test('attachment names with spaces, UTF-8 and slashes round-trip; multipart names them raw', T, () => withDb(async (db) => {
  const name = 'a b/ü €.bin';
  const data = Buffer.from([1, 2, 3, 4]);
  const url = docPath(db, 'n') + '/' + name.split('/').map(enc).join('/');
  const put = await req('PUT', url, { body: data, headers: { 'Content-Type': OCTET } });
  assert.equal(put.status, 201, put.text);
  const g = await rawReq('GET', url);
  assert.equal(g.status, 200);
  assert.ok(g.buf.equals(data));
  const doc = (await req('GET', docPath(db, 'n'))).json;
  assert.deepEqual(Object.keys(doc._attachments), [name]);
  const mp = await rawReq('GET', docPath(db, 'n') + '?attachments=true', { headers: { Accept: 'multipart/related' } });
  const parts = parseMultipart(mp.buf, parseContentType(mp.headers['content-type']).params.boundary);
  assert.equal(parts.length, 2);
  const disp = Buffer.from(parts[1].headers['content-disposition'], 'latin1').toString('utf8');
  assert.equal(disp, `attachment; filename="${name}"`);
  assert.ok(parts[1].body.equals(data));
}));

test('attachment DELETE without rev: 409 on a live doc, 404 for a missing doc or attachment', T, () => withDb(async (db) => {
  const put = await req('PUT', docPath(db, 'k') + '/a.bin', { body: Buffer.from('x'), headers: { 'Content-Type': OCTET } });
  assert.equal(put.status, 201);
  const norev = await req('DELETE', docPath(db, 'k') + '/a.bin');
  assert.equal(norev.status, 409, norev.text);
  assert.equal((await req('DELETE', docPath(db, 'nosuch') + '/a.bin')).status, 404);
  const gone = await req('DELETE', docPath(db, 'k') + '/zz.bin');
  assert.equal(gone.status, 404);
  assert.deepEqual(gone.json, { error: 'not_found', reason: 'Document is missing attachment' });
  const ok = await req('DELETE', docPath(db, 'k') + '/a.bin', { headers: { 'If-Match': put.json.rev } });
  assert.equal(ok.status, 200, 'If-Match carries the rev');
  assert.equal(ok.json.ok, true);
}));

test('_design doc attachments: PUT, GET and the doc\'s stub', T, () => withDb(async (db) => {
  const data = pseudoRandomBytes(64, 3);
  const put = await req('PUT', `/${enc(db)}/_design/app/static/x.bin`, { body: data, headers: { 'Content-Type': OCTET } });
  assert.equal(put.status, 201, put.text);
  assert.equal(put.json.id, '_design/app');
  const g = await rawReq('GET', `/${enc(db)}/_design/app/static/x.bin`);
  assert.equal(g.status, 200);
  assert.ok(g.buf.equals(data));
  const doc = (await req('GET', `/${enc(db)}/_design/app`)).json;
  assert.deepEqual(doc._attachments, { 'static/x.bin': stub(data, 1) });
}));
