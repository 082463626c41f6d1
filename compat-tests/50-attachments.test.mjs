// Attachments: inline base64, stubs, attachments=true, att_encoding_info, standalone PUT/GET/
// HEAD/DELETE, Range, atts_since, multipart/related PUT and GET, big binaries.
// Expected: CouchDB 3.4.3 (golden http-shapes attachment_* / doc_*attachment*, chttpd_db, couch_att).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { req } from './lib.mjs';
import {
  T, enc, withDb, assertJsonHeaders, assertError, CONFLICT, putDoc, md5b64, randomBytes, rawHttp,
  multipartRelated, parseMultipart, boundaryOf, assertAlive, compact,
} from './lib-docs.mjs';

const HELLO = Buffer.from('hello attachment\n');
// CouchDB stores text/* gzip-compressed (level 8) and its digest/etag is the md5 of the
// *compressed* bytes: md5(gzip("hello attachment\n")) = qEvP…, not md5 of the identity bytes.
const HELLO_MD5 = 'qEvPlRQniDBFNMJHdnGvdQ==';
const HELLO_DIGEST = 'md5-' + HELLO_MD5;
const DIGEST_RE = /^md5-[A-Za-z0-9+/]{22}==$/;
const BIN = Buffer.from('AAFiaW5hcnk/', 'base64'); // 9 bytes: 00 01 "binary?"
const BIN_MD5 = '/E03QgJkv4Mx8ORFrdcldg==';
const gen = (rev) => Number(rev.split('-')[0]);

async function putHello(db) {
  const r = await req('PUT', `/${enc(db)}/adoc`, {
    body: { v: 1, _attachments: { 'hello.txt': { content_type: 'text/plain', data: HELLO.toString('base64') } } },
  });
  assert.equal(r.status, 201, r.text);
  return r.json.rev;
}

test('md5 digests match the golden values (text: md5 of gzip level 8)', T, async () => {
  assert.equal(md5b64(zlib.gzipSync(HELLO, { level: 8 })), HELLO_MD5);
  assert.equal(zlib.gzipSync(HELLO, { level: 8 }).length, 37, 'golden encoded_length');
  assert.equal(md5b64(BIN), BIN_MD5);
});

test('inline base64 attachment → stub on read (golden)', T, async () => {
  await withDb(async (db, p) => {
    const rev1 = await putHello(db);
    const g = await req('GET', `${p}/adoc`);
    assert.equal(g.status, 200);
    assert.equal(g.headers.get('etag'), `"${rev1}"`);
    assert.deepEqual(g.json, {
      _id: 'adoc', _rev: rev1, v: 1,
      _attachments: { 'hello.txt': { content_type: 'text/plain', revpos: 1, digest: HELLO_DIGEST, length: 17, stub: true } },
    });
    assert.deepEqual(Object.keys(g.json), ['_id', '_rev', 'v', '_attachments']);
  });
});

test('attachments=true inlines data; att_encoding_info shows gzip for text (golden)', T, async () => {
  await withDb(async (db, p) => {
    const rev1 = await putHello(db);
    const a = await req('GET', `${p}/adoc?attachments=true`);
    assert.equal(a.status, 200);
    assert.deepEqual(a.json, {
      _id: 'adoc', _rev: rev1, v: 1,
      _attachments: { 'hello.txt': { content_type: 'text/plain', revpos: 1, digest: HELLO_DIGEST, data: HELLO.toString('base64') } },
    });
    const e = await req('GET', `${p}/adoc?att_encoding_info=true`);
    const att = e.json._attachments['hello.txt'];
    assert.equal(att.encoding, 'gzip', 'text/plain is stored gzip-compressed');
    assert.deepEqual(att, {
      content_type: 'text/plain', revpos: 1, digest: HELLO_DIGEST, length: 17, stub: true, encoding: 'gzip', encoded_length: 37,
    });
  });
});

test('standalone PUT of binary bytes; GET/HEAD return exact bytes and headers (golden)', T, async () => {
  await withDb(async (db, p) => {
    const rev1 = await putHello(db);
    const r = await req('PUT', `${p}/adoc/data.bin?rev=${rev1}`, { body: BIN, headers: { 'Content-Type': 'application/octet-stream' } });
    assert.equal(r.status, 201, r.text);
    assertJsonHeaders(r, 'attachment PUT');
    assert.equal(r.json.ok, true);
    assert.equal(r.json.id, 'adoc');
    assert.equal(gen(r.json.rev), 2);
    assert.equal(new URL(r.headers.get('location')).pathname, `${p}/adoc/data.bin`);

    const g = await rawHttp('GET', `${p}/adoc/data.bin`);
    assert.equal(g.status, 200);
    assert.ok(g.buf.equals(BIN), 'bytes differ');
    assert.equal(g.headers['content-type'], 'application/octet-stream');
    assert.equal(g.headers['etag'], `"${BIN_MD5}"`);
    assert.equal(g.headers['content-length'], '9');
    assert.equal(g.headers['accept-ranges'], 'bytes');
    assert.equal(g.headers['cache-control'], 'must-revalidate');
    assert.equal(g.headers['content-encoding'], undefined);

    const h = await rawHttp('HEAD', `${p}/adoc/data.bin`);
    assert.equal(h.status, 200);
    assert.equal(h.buf.length, 0);
    assert.equal(h.headers['content-length'], '9');
    assert.equal(h.headers['etag'], `"${BIN_MD5}"`);
    assert.equal(h.headers['content-type'], 'application/octet-stream');

    const nm = await rawHttp('GET', `${p}/adoc/data.bin`, { headers: { 'If-None-Match': `"${BIN_MD5}"` } });
    assert.equal(nm.status, 304);

    const doc = await req('GET', `${p}/adoc?revs=true`);
    assert.deepEqual(doc.json._attachments, {
      'data.bin': { content_type: 'application/octet-stream', revpos: 2, digest: 'md5-' + BIN_MD5, length: 9, stub: true },
      'hello.txt': { content_type: 'text/plain', revpos: 1, digest: HELLO_DIGEST, length: 17, stub: true },
    });
    assert.deepEqual(doc.json._revisions.ids.length, 2);
    assert.equal(doc.json.v, 1, 'body kept');
  });
});

test('text attachment: identity without gzip offer, gzip-encoded when offered (golden)', T, async () => {
  await withDb(async (db, p) => {
    await putHello(db);
    const g = await rawHttp('GET', `${p}/adoc/hello.txt`);
    assert.equal(g.status, 200);
    assert.ok(g.buf.equals(HELLO));
    assert.equal(g.headers['content-type'], 'text/plain');
    assert.equal(g.headers['content-length'], '17');
    assert.equal(g.headers['etag'], `"${HELLO_MD5}"`);
    assert.equal(g.headers['accept-ranges'], 'none');
    assert.equal(g.headers['content-encoding'], undefined);
    const z = await rawHttp('GET', `${p}/adoc/hello.txt`, { headers: { 'Accept-Encoding': 'gzip' } });
    assert.equal(z.status, 200);
    assert.equal(z.headers['content-encoding'], 'gzip');
    assert.equal(Number(z.headers['content-length']), z.buf.length);
    assert.ok(zlib.gunzipSync(z.buf).equals(HELLO));
    const h = await rawHttp('HEAD', `${p}/adoc/hello.txt`);
    assert.equal(h.status, 200);
    assert.equal(h.headers['content-length'], '17');
    assert.equal(h.buf.length, 0);
  });
});

test('missing attachment / doc → 404; stale rev → 409; no rev on existing doc → 409', T, async () => {
  await withDb(async (db, p) => {
    const rev1 = await putHello(db);
    const m = await req('GET', `${p}/adoc/nope.txt`);
    assertError(m, 404, 'not_found', 'Document is missing attachment');
    assertJsonHeaders(m, 'missing attachment');
    assertError(await req('GET', `${p}/nodoc/a.txt`), 404, 'not_found', 'missing');
    const rev2 = (await req('PUT', `${p}/adoc/x.txt?rev=${rev1}`, { body: 'x', headers: { 'Content-Type': 'text/plain' } })).json.rev;
    assert.equal(gen(rev2), 2);
    const stale = await req('PUT', `${p}/adoc/y.txt?rev=${rev1}`, { body: 'y', headers: { 'Content-Type': 'text/plain' } });
    assert.equal(stale.status, 409);
    assert.deepEqual(stale.json, CONFLICT);
    const norev = await req('PUT', `${p}/adoc/y.txt`, { body: 'y', headers: { 'Content-Type': 'text/plain' } });
    assert.equal(norev.status, 409);
    assert.deepEqual(norev.json, CONFLICT);
    const ifm = await req('PUT', `${p}/adoc/y.txt`, { body: 'y', headers: { 'Content-Type': 'text/plain', 'If-Match': `"${rev2}"` } });
    assert.equal(ifm.status, 201, 'If-Match supplies the rev');
    assert.equal((await req('GET', `${p}/adoc/nope.txt?rev=${rev1}`)).status, 404);
  });
});

test('attachment PUT without rev creates the doc (golden attachment_put_new_doc)', T, async () => {
  await withDb(async (db, p) => {
    const r = await req('PUT', `${p}/attonly/a.txt`, { body: 'new doc via attachment', headers: { 'Content-Type': 'text/plain' } });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.id, 'attonly');
    assert.equal(gen(r.json.rev), 1);
    assert.equal(new URL(r.headers.get('location')).pathname, `${p}/attonly/a.txt`);
    const g = await req('GET', `${p}/attonly`);
    const dg = g.json._attachments && g.json._attachments['a.txt'] && g.json._attachments['a.txt'].digest;
    assert.match(dg || '', DIGEST_RE);
    assert.deepEqual(g.json, {
      _id: 'attonly', _rev: r.json.rev,
      _attachments: { 'a.txt': { content_type: 'text/plain', revpos: 1, digest: dg, length: 22, stub: true } },
    });
    const ga = await rawHttp('GET', `${p}/attonly/a.txt`);
    assert.equal(ga.headers['etag'], `"${dg.slice(4)}"`, 'attachment etag is the digest');
    assert.equal(ga.text, 'new doc via attachment');
    const noType = await req('PUT', `${p}/notype/raw`, { body: Buffer.from([1, 2, 3]) });
    assert.equal(noType.status, 201);
    const nt = await rawHttp('GET', `${p}/notype/raw`);
    assert.equal(nt.headers['content-type'], 'application/octet-stream');
    assert.ok(nt.buf.equals(Buffer.from([1, 2, 3])));
  });
});

test('stubs sent back keep attachments; omitting _attachments drops them; unknown stub → 412', T, async () => {
  await withDb(async (db, p) => {
    const rev1 = await putHello(db);
    const rev2 = (await req('PUT', `${p}/adoc/data.bin?rev=${rev1}`, { body: BIN, headers: { 'Content-Type': 'application/octet-stream' } })).json.rev;
    const k = await req('PUT', `${p}/adoc`, { body: { _rev: rev2, v: 2, _attachments: { 'hello.txt': { stub: true }, 'data.bin': { stub: true } } } });
    assert.equal(k.status, 201, k.text);
    assert.equal(gen(k.json.rev), 3);
    const g = await req('GET', `${p}/adoc`);
    assert.equal(g.json.v, 2);
    assert.deepEqual(g.json._attachments['hello.txt'], { content_type: 'text/plain', revpos: 1, digest: HELLO_DIGEST, length: 17, stub: true });
    assert.deepEqual(g.json._attachments['data.bin'], { content_type: 'application/octet-stream', revpos: 2, digest: 'md5-' + BIN_MD5, length: 9, stub: true });
    assert.ok((await rawHttp('GET', `${p}/adoc/data.bin`)).buf.equals(BIN));

    // a full stub as read back works the same way
    const full = await req('PUT', `${p}/adoc`, { body: { ...g.json, v: 3 } });
    assert.equal(full.status, 201, full.text);
    assert.deepEqual(Object.keys((await req('GET', `${p}/adoc`)).json._attachments).sort(), ['data.bin', 'hello.txt']);

    const ms = await req('PUT', `${p}/adoc`, { body: { _rev: full.json.rev, _attachments: { 'ghost.txt': { stub: true } } } });
    assertError(ms, 412, 'missing_stub');

    const drop = await req('PUT', `${p}/adoc`, { body: { _rev: full.json.rev, v: 4 } });
    assert.equal(drop.status, 201);
    const d = await req('GET', `${p}/adoc`);
    assert.equal(d.json._attachments, undefined, 'a PUT without _attachments removes them');
    assertError(await req('GET', `${p}/adoc/hello.txt`), 404, 'not_found', 'Document is missing attachment');
  });
});

test('atts_since: attachments at or before the given revs come as stubs (golden)', T, async () => {
  await withDb(async (db, p) => {
    const rev1 = await putHello(db);
    const rev2 = (await req('PUT', `${p}/adoc/data.bin?rev=${rev1}`, { body: BIN, headers: { 'Content-Type': 'application/octet-stream' } })).json.rev;
    const rev3 = (await req('PUT', `${p}/adoc`, { body: { _rev: rev2, v: 2, _attachments: { 'hello.txt': { stub: true }, 'data.bin': { stub: true } } } })).json.rev;
    const r = await req('GET', `${p}/adoc?attachments=true&atts_since=${enc(JSON.stringify([rev1]))}`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, {
      _id: 'adoc', _rev: rev3, v: 2,
      _attachments: {
        'hello.txt': { content_type: 'text/plain', revpos: 1, digest: HELLO_DIGEST, length: 17, stub: true },
        'data.bin': { content_type: 'application/octet-stream', revpos: 2, digest: 'md5-' + BIN_MD5, data: BIN.toString('base64') },
      },
    });
    const r2 = await req('GET', `${p}/adoc?atts_since=${enc(JSON.stringify([rev2]))}`);
    assert.equal(r2.json._attachments['data.bin'].stub, true);
    assert.equal(r2.json._attachments['hello.txt'].stub, true);
    const r0 = await req('GET', `${p}/adoc?atts_since=${enc(JSON.stringify(['9-' + 'f'.repeat(32)]))}`);
    assert.equal(r0.json._attachments['data.bin'].data, BIN.toString('base64'), 'unknown revs in atts_since are ignored');
  });
});

test('DELETE attachment → 200 new rev; then 404; stale rev 409 (or 404 when it lacks the attachment); missing 404 (golden)', T, async () => {
  await withDb(async (db, p) => {
    const rev1 = await putHello(db);
    const rev2 = (await req('PUT', `${p}/adoc/data.bin?rev=${rev1}`, { body: BIN, headers: { 'Content-Type': 'application/octet-stream' } })).json.rev;
    // a superseded rev is still readable (not compacted): CouchDB opens it, checks that the
    // attachment is there (chttpd_db get_existing_attachment), then the update conflicts
    const stale = await req('DELETE', `${p}/adoc/hello.txt?rev=${rev1}`);
    assertError(stale, 409, 'conflict', 'Document update conflict.');
    assertError(await req('DELETE', `${p}/adoc/data.bin?rev=${rev1}`), 404, 'not_found', 'Document is missing attachment');
    const d = await req('DELETE', `${p}/adoc/data.bin?rev=${rev2}`);
    assert.equal(d.status, 200, d.text);
    assertJsonHeaders(d, 'attachment DELETE');
    assert.equal(d.json.ok, true);
    assert.equal(d.json.id, 'adoc');
    assert.equal(gen(d.json.rev), 3);
    assertError(await req('GET', `${p}/adoc/data.bin`), 404, 'not_found', 'Document is missing attachment');
    const g = await req('GET', `${p}/adoc`);
    assert.deepEqual(Object.keys(g.json._attachments), ['hello.txt']);
    assert.equal(g.json.v, 1);
    const again = await req('DELETE', `${p}/adoc/data.bin?rev=${d.json.rev}`);
    assertError(again, 404, 'not_found', 'Document is missing attachment');
  });
});

test('Range GET on an uncompressed attachment → 206 with Content-Range', T, async () => {
  await withDb(async (db, p) => {
    const data = randomBytes(1000, 7);
    const r = await req('PUT', `${p}/rdoc/blob.bin`, { body: data, headers: { 'Content-Type': 'application/octet-stream' } });
    assert.equal(r.status, 201);
    const a = await rawHttp('GET', `${p}/rdoc/blob.bin`, { headers: { Range: 'bytes=2-5' } });
    assert.equal(a.status, 206);
    assert.equal(a.headers['content-range'], 'bytes 2-5/1000');
    assert.equal(a.headers['content-length'], '4');
    assert.ok(a.buf.equals(data.subarray(2, 6)));
    const b = await rawHttp('GET', `${p}/rdoc/blob.bin`, { headers: { Range: 'bytes=990-' } });
    assert.equal(b.status, 206);
    assert.equal(b.headers['content-range'], 'bytes 990-999/1000');
    assert.ok(b.buf.equals(data.subarray(990)));
    const c = await rawHttp('GET', `${p}/rdoc/blob.bin`, { headers: { Range: 'bytes=-10' } });
    assert.equal(c.status, 206);
    assert.equal(c.headers['content-range'], 'bytes 990-999/1000');
    assert.ok(c.buf.equals(data.subarray(990)));
    const d = await rawHttp('GET', `${p}/rdoc/blob.bin`, { headers: { Range: 'bytes=900-5000' } });
    assert.equal(d.status, 206);
    assert.equal(d.headers['content-range'], 'bytes 900-999/1000');
    assert.ok(d.buf.equals(data.subarray(900)));
    const full = await rawHttp('GET', `${p}/rdoc/blob.bin`, { headers: { Range: 'bytes=0-' } });
    assert.equal(full.status, 200, 'bytes=0- is the whole thing: 200');
    assert.ok(full.buf.equals(data));
  });
});

test('multipart/related PUT (JSON first, follows:true parts) stores the attachments', T, async () => {
  await withDb(async (db, p) => {
    const a = randomBytes(3000, 3);
    const b = Buffer.from('some text\n'.repeat(50));
    const mp = multipartRelated(
      {
        _id: 'mp', v: 1,
        _attachments: {
          'a.bin': { follows: true, content_type: 'application/octet-stream', length: a.length },
          'b.txt': { follows: true, content_type: 'text/plain', length: b.length },
        },
      },
      [{ body: a, headers: { 'Content-Type': 'application/octet-stream' } }, { body: b }],
    );
    const r = await req('PUT', `${p}/mp`, { body: mp.body, headers: { 'Content-Type': mp.contentType } });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.id, 'mp');
    assert.equal(gen(r.json.rev), 1);
    const g = await req('GET', `${p}/mp`);
    assert.deepEqual(g.json, {
      _id: 'mp', _rev: r.json.rev, v: 1,
      _attachments: {
        'a.bin': { content_type: 'application/octet-stream', revpos: 1, digest: 'md5-' + md5b64(a), length: a.length, stub: true },
        'b.txt': { content_type: 'text/plain', revpos: 1, digest: g.json._attachments['b.txt'].digest, length: b.length, stub: true },
      },
    });
    assert.match(g.json._attachments['b.txt'].digest, DIGEST_RE);
    assert.ok((await rawHttp('GET', `${p}/mp/a.bin`)).buf.equals(a));
    assert.ok((await rawHttp('GET', `${p}/mp/b.txt`)).buf.equals(b));
  });
});

test('multipart/related PUT ?new_edits=false with attachments, then a stub-only child rev', T, async () => {
  await withDb(async (db, p) => {
    const a = randomBytes(500, 11);
    const ra = 'a'.repeat(32);
    const mp = multipartRelated(
      {
        _id: 'rep', _rev: `1-${ra}`, _revisions: { start: 1, ids: [ra] }, v: 1,
        _attachments: { 'a.bin': { follows: true, content_type: 'application/octet-stream', length: a.length, revpos: 1, digest: 'md5-' + md5b64(a) } },
      },
      [{ body: a }],
    );
    const r = await req('PUT', `${p}/rep?new_edits=false`, { body: mp.body, headers: { 'Content-Type': mp.contentType } });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.rev, `1-${ra}`);
    const rb = 'b'.repeat(32);
    const child = await req('PUT', `${p}/rep?new_edits=false`, {
      body: {
        _id: 'rep', _rev: `2-${rb}`, _revisions: { start: 2, ids: [rb, ra] }, v: 2,
        _attachments: { 'a.bin': { stub: true, content_type: 'application/octet-stream', length: a.length, revpos: 1, digest: 'md5-' + md5b64(a) } },
      },
    });
    assert.equal(child.status, 201, child.text);
    const g = await req('GET', `${p}/rep`);
    assert.equal(g.json._rev, `2-${rb}`);
    assert.deepEqual(g.json._attachments['a.bin'], { content_type: 'application/octet-stream', revpos: 1, digest: 'md5-' + md5b64(a), length: a.length, stub: true });
    assert.ok((await rawHttp('GET', `${p}/rep/a.bin`)).buf.equals(a));
  });
});

test('GET Accept: multipart/related + attachments=true → JSON part then attachment parts (golden)', T, async () => {
  await withDb(async (db, p) => {
    const rev1 = await putHello(db);
    const rev2 = (await req('PUT', `${p}/adoc/data.bin?rev=${rev1}`, { body: BIN, headers: { 'Content-Type': 'application/octet-stream' } })).json.rev;
    const r = await rawHttp('GET', `${p}/adoc?attachments=true`, { headers: { Accept: 'multipart/related' } });
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'], /^multipart\/related;/);
    assert.equal(r.headers['etag'], `"${rev2}"`);
    const boundary = boundaryOf(r.headers['content-type']);
    assert.ok(boundary, 'boundary in content-type');
    const parts = parseMultipart(r.buf, boundary);
    assert.equal(parts.length, 3);
    assert.match(parts[0].headers['content-type'], /^application\/json/);
    const doc = JSON.parse(parts[0].body.toString('utf8'));
    assert.equal(doc._id, 'adoc');
    assert.equal(doc._rev, rev2);
    assert.equal(doc.v, 1);
    assert.deepEqual(doc._attachments['data.bin'], {
      content_type: 'application/octet-stream', revpos: 2, digest: 'md5-' + BIN_MD5, length: 9, follows: true,
    });
    assert.equal(doc._attachments['hello.txt'].follows, true);
    assert.equal(doc._attachments['hello.txt'].length, 17);
    // attachment parts follow in the order of the JSON _attachments object
    const names = Object.keys(doc._attachments);
    for (let i = 0; i < names.length; i++) {
      const part = parts[i + 1];
      assert.match(part.headers['content-disposition'] || '', new RegExp(`filename="${names[i].replace('.', '\\.')}"`));
      let body = part.body;
      if (part.headers['content-encoding'] === 'gzip') {
        assert.equal(doc._attachments[names[i]].encoding, 'gzip');
        body = zlib.gunzipSync(body);
      }
      assert.ok(body.equals(names[i] === 'data.bin' ? BIN : HELLO), `${names[i]} bytes`);
    }
    // without attachments=true it is plain JSON with stubs
    const plain = await rawHttp('GET', `${p}/adoc`, { headers: { Accept: 'multipart/related' } });
    assert.equal(plain.status, 200);
    assert.equal(JSON.parse(plain.text)._attachments['data.bin'].stub, true);
  });
});

test('~5 MB binary attachment round-trips byte-exact (standalone and multipart)', { timeout: 60000 }, async () => {
  await withDb(async (db, p) => {
    const big = randomBytes(5 * 1024 * 1024 + 123, 42);
    const r = await req('PUT', `${p}/big/blob.bin`, { body: big, headers: { 'Content-Type': 'application/octet-stream' } });
    assert.equal(r.status, 201, r.text);
    const g = await rawHttp('GET', `${p}/big/blob.bin`, { timeout: 50000 });
    assert.equal(g.status, 200);
    assert.equal(g.buf.length, big.length);
    assert.ok(g.buf.equals(big), '5 MB attachment corrupted');
    assert.equal(g.headers['etag'], `"${md5b64(big)}"`);
    const stub = (await req('GET', `${p}/big`)).json._attachments['blob.bin'];
    assert.equal(stub.length, big.length);
    assert.equal(stub.digest, 'md5-' + md5b64(big));

    const mp = multipartRelated(
      { v: 1, _attachments: { 'blob.bin': { follows: true, content_type: 'application/octet-stream', length: big.length } } },
      [{ body: big }],
    );
    const m = await req('PUT', `${p}/bigmp`, { body: mp.body, headers: { 'Content-Type': mp.contentType } });
    assert.equal(m.status, 201, m.text);
    const mg = await rawHttp('GET', `${p}/bigmp/blob.bin`, { timeout: 50000 });
    assert.ok(mg.buf.equals(big), '5 MB multipart attachment corrupted');
    const inl = await req('GET', `${p}/bigmp?attachments=true`);
    assert.ok(Buffer.from(inl.json._attachments['blob.bin'].data, 'base64').equals(big));
  });
});

test('multipart PUT with a truncated or missing attachment body → 400, nothing written', T, async () => {
  await withDb(async (db, p) => {
    const short = multipartRelated(
      { v: 1, _attachments: { 'a.bin': { follows: true, content_type: 'application/octet-stream', length: 100 } } },
      [{ body: randomBytes(10, 5) }],
    );
    const r = await req('PUT', `${p}/trunc`, { body: short.body, headers: { 'Content-Type': short.contentType } });
    assert.equal(r.status, 400, `truncated attachment: ${r.status} ${r.text}`);
    assert.equal((await req('GET', `${p}/trunc`)).status, 404);
    await assertAlive();

    const none = multipartRelated(
      { v: 1, _attachments: { 'a.bin': { follows: true, content_type: 'application/octet-stream', length: 10 } } },
      [],
    );
    const r2 = await req('PUT', `${p}/noatt`, { body: none.body, headers: { 'Content-Type': none.contentType } });
    assert.equal(r2.status, 400, `missing attachment part: ${r2.status} ${r2.text}`);
    assert.equal((await req('GET', `${p}/noatt`)).status, 404);
    assert.equal((await req('GET', p)).json.doc_count, 0);
    await assertAlive();
  });
});

test('attachment names: leading _ rejected; names with / allowed', T, async () => {
  await withDb(async (db, p) => {
    const bad = await req('PUT', `${p}/d/_x.txt`, { body: 'x', headers: { 'Content-Type': 'text/plain' } });
    assertError(bad, 400, 'bad_request', "Attachment name '_x.txt' starts with prohibited character '_'");
    const inl = await req('PUT', `${p}/d2`, { body: { _attachments: { _y: { content_type: 'text/plain', data: 'eA==' } } } });
    assertError(inl, 400, 'bad_request', "Attachment name '_y' starts with prohibited character '_'");
    assert.equal((await req('GET', `${p}/d`)).status, 404);
    assert.equal((await req('GET', `${p}/d2`)).status, 404);

    const s = await req('PUT', `${p}/d3/sub/dir/f.bin`, { body: BIN, headers: { 'Content-Type': 'application/octet-stream' } });
    assert.equal(s.status, 201, s.text);
    const g = await req('GET', `${p}/d3`);
    assert.deepEqual(Object.keys(g.json._attachments), ['sub/dir/f.bin']);
    assert.ok((await rawHttp('GET', `${p}/d3/sub/dir/f.bin`)).buf.equals(BIN));
  });
});

test('inline attachment without content_type defaults to application/octet-stream', T, async () => {
  await withDb(async (db, p) => {
    const r = await req('PUT', `${p}/d`, { body: { _attachments: { 'x.dat': { data: BIN.toString('base64') } } } });
    assert.equal(r.status, 201, r.text);
    const g = await req('GET', `${p}/d`);
    assert.deepEqual(g.json._attachments['x.dat'], { content_type: 'application/octet-stream', revpos: 1, digest: 'md5-' + BIN_MD5, length: 9, stub: true });
    const a = await rawHttp('GET', `${p}/d/x.dat`);
    assert.equal(a.headers['content-type'], 'application/octet-stream');
    assert.ok(a.buf.equals(BIN));
  });
});

test('a superseded revision keeps its attachments until compaction: GET ?rev=, and stubs against it in new_edits=false', T, async () => {
  await withDb(async (db, p) => {
    const rev1 = await putHello(db);
    const other = Buffer.from('a different text\n');
    const r2 = await req('PUT', `${p}/adoc/hello.txt?rev=${rev1}`, { body: other, headers: { 'Content-Type': 'text/plain' } });
    assert.equal(r2.status, 201, r2.text);
    const old = await req('GET', `${p}/adoc/hello.txt?rev=${rev1}`);
    assert.equal(old.status, 200, old.text);
    assert.equal(old.text, HELLO.toString());
    assert.equal((await req('GET', `${p}/adoc/hello.txt`)).text, other.toString());
    const full = await req('GET', `${p}/adoc?rev=${rev1}&attachments=true`);
    assert.equal(Buffer.from(full.json._attachments['hello.txt'].data, 'base64').toString(), HELLO.toString());
    // a replicator's branch off rev1 sends a stub for rev1's attachment: resolved, as CouchDB
    // resolves it while rev1 is not compacted
    const h1 = rev1.split('-')[1];
    const branch = await req('POST', `${p}/_bulk_docs`, {
      body: {
        new_edits: false,
        docs: [{
          _id: 'adoc', _rev: '2-' + 'b'.repeat(32), v: 'branch', _revisions: { start: 2, ids: ['b'.repeat(32), h1] },
          _attachments: { 'hello.txt': { stub: true, revpos: 1 } },
        }],
      },
    });
    assert.equal(branch.status, 201, branch.text);
    assert.deepEqual(branch.json, []);
    const b = await req('GET', `${p}/adoc/hello.txt?rev=2-${'b'.repeat(32)}`);
    assert.equal(b.text, HELLO.toString());
    // compaction drops rev1's body; the leaves keep theirs
    await compact(db, async () => (await req('GET', `${p}/adoc?rev=${rev1}`)).status === 404);
    assertError(await req('GET', `${p}/adoc?rev=${rev1}`), 404, 'not_found', 'missing');
    assert.equal((await req('GET', `${p}/adoc/hello.txt?rev=2-${'b'.repeat(32)}`)).text, HELLO.toString());
    assert.equal((await req('GET', `${p}/adoc/hello.txt?rev=${r2.json.rev}`)).text, other.toString());
  });
});
