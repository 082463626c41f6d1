// Malformed input everywhere: CouchDB's status and error, and the server keeps serving.
// Expected: CouchDB 3.4.3 (golden doc_put_bad_json & co, chttpd error_info, couch_mrview_http).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { req } from './lib.mjs';
import {
  T, enc, withDb, assertError, assertAlive, putDoc, bulk, rawSocket, rawHead,
} from './lib-docs.mjs';

const JSON_H = { 'Content-Type': 'application/json' };

// [method, path-suffix (after /db), needs existing doc?]
const JSON_ENDPOINTS = [
  ['POST', '/_bulk_docs'],
  ['POST', '/_all_docs'],
  ['POST', '/_revs_diff'],
  ['POST', '/_bulk_get'],
  ['POST', '/_purge'],
  ['POST', '/_changes'],
  ['POST', ''],
  ['PUT', '/somedoc'],
  ['PUT', '/_local/somelocal'],
  ['PUT', '/_design/somedesign'],
  ['PUT', '/_security'],
  ['PUT', '/_revs_limit'],
];

const MALFORMED = ['{not json', '{"a":', '{"a":1,}', "{'a':1}", '[1,2', '{"a" 1}', 'nul', '{"a":tru}', '{"a":"unterminated}', '{"a":1}}'];

test('malformed JSON on every JSON endpoint → 400 bad_request; server keeps serving', { timeout: 60000 }, async () => {
  await withDb(async (db, p) => {
    const secBefore = (await req('GET', `${p}/_security`)).json;
    for (const [m, suffix] of JSON_ENDPOINTS) {
      for (const body of MALFORMED) {
        const r = await req(m, `${p}${suffix}`, { body, headers: JSON_H });
        assert.equal(r.status, 400, `${m} ${suffix} with ${JSON.stringify(body)} → ${r.status} ${r.text}`);
        assert.equal(r.json && r.json.error, 'bad_request', `${m} ${suffix} with ${JSON.stringify(body)}: ${r.text}`);
        if (body === '{not json') assert.equal(r.json.reason, 'invalid UTF-8 JSON', `${m} ${suffix}`);
      }
      await assertAlive();
    }
    const info = (await req('GET', p)).json;
    assert.equal(info.doc_count, 0, 'nothing was written');
    assert.deepEqual((await req('GET', `${p}/_local_docs`)).json.rows, []);
    assert.deepEqual((await req('GET', `${p}/_security`)).json, secBefore);
    assert.equal((await req('GET', `${p}/_revs_limit`)).json, 1000);
  });
});

test('invalid UTF-8 in JSON bodies → 400 bad_request on every JSON endpoint', { timeout: 60000 }, async () => {
  await withDb(async (db, p) => {
    const bad = Buffer.concat([Buffer.from('{"docs":[{"_id":"x","a":"'), Buffer.from([0xed, 0xa0, 0x80, 0xff]), Buffer.from('"}],"keys":["'), Buffer.from([0xc3]), Buffer.from('"]}')]);
    for (const [m, suffix] of JSON_ENDPOINTS) {
      const r = await req(m, `${p}${suffix}`, { body: bad, headers: JSON_H });
      assert.equal(r.status, 400, `${m} ${suffix} → ${r.status} ${r.text}`);
      assert.equal(r.json && r.json.error, 'bad_request', `${m} ${suffix}: ${r.text}`);
    }
    await assertAlive();
    assert.equal((await req('GET', p)).json.doc_count, 0);
  });
});

test('invalid UTF-8 inside a doc id or key; non-string _id/_rev; bad _revisions', T, async () => {
  await withDb(async (db, p) => {
    const idBytes = Buffer.concat([Buffer.from('{"docs":[{"_id":"a'), Buffer.from([0xff]), Buffer.from('"}]}')]);
    const r = await req('POST', `${p}/_bulk_docs`, { body: idBytes, headers: JSON_H });
    assertError(r, 400, 'bad_request');
    assertError(await req('PUT', `${p}/x`, { body: { _id: 5, a: 1 } }), 400, 'illegal_docid', 'Document id must be a string');
    assertError(await bulk(db, { docs: [{ _id: { a: 1 } }] }), 400, 'illegal_docid', 'Document id must be a string');
    assertError(await req('PUT', `${p}/x`, { body: { _rev: 5, a: 1 } }), 400, 'bad_request', 'Invalid rev format');
    assertError(await req('PUT', `${p}/x`, { body: { _attachments: 'nope' } }), 400, 'doc_validation', 'Bad special document member: _attachments');
    const badStart = await bulk(db, { new_edits: false, docs: [{ _id: 'r', _rev: '1-' + 'a'.repeat(32), _revisions: { start: 'x', ids: ['a'.repeat(32)] } }] });
    assertError(badStart, 400, 'doc_validation', "_revisions.start isn't an integer.");
    const badIds = await bulk(db, { new_edits: false, docs: [{ _id: 'r', _rev: '1-' + 'a'.repeat(32), _revisions: { start: 1, ids: 'a' } }] });
    assertError(badIds, 400, 'doc_validation', "_revisions.ids isn't a array.");
    const badId = await bulk(db, { new_edits: false, docs: [{ _id: 'r', _rev: '1-' + 'a'.repeat(32), _revisions: { start: 1, ids: [5] } }] });
    assertError(badId, 400, 'doc_validation', "RevId isn't a string");
    assert.equal((await req('GET', p)).json.doc_count, 0);
    await assertAlive();
  });
});

test('body _id is overridden by the URL id on PUT', T, async () => {
  await withDb(async (db, p) => {
    const r = await req('PUT', `${p}/urlid`, { body: { _id: 'bodyid', v: 1 } });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.id, 'urlid');
    assert.equal((await req('GET', `${p}/urlid`)).json.v, 1);
    assert.equal((await req('GET', `${p}/bodyid`)).status, 404);
  });
});

test('bodies of the wrong JSON type → 400 with CouchDB reasons', T, async () => {
  await withDb(async (db, p) => {
    assertError(await req('POST', `${p}/_bulk_get`, { body: [1] }), 400, 'bad_request', 'Request body must be a JSON object');
    assertError(await req('POST', `${p}/_bulk_get`, { body: { nodocs: [] } }), 400, 'bad_request', "Missing JSON list of 'docs'.");
    assertError(await req('POST', `${p}/_revs_diff`, { body: [1] }), 400, 'bad_request', 'Request body must be a JSON object');
    assertError(await req('POST', `${p}/_revs_diff`, { body: '"str"', headers: JSON_H }), 400, 'bad_request', 'Request body must be a JSON object');
    assertError(await req('POST', `${p}/_all_docs`, { body: 'null', headers: JSON_H }), 400, 'bad_request', 'Request body must be a JSON object');
    assertError(await req('POST', p, { body: '[]', headers: JSON_H }), 400, 'bad_request', 'Document must be a JSON object');
    assertError(await req('PUT', `${p}/_local/x`, { body: '7', headers: JSON_H }), 400, 'bad_request', 'Document must be a JSON object');
    await assertAlive();
  });
});

test('unknown query parameters are ignored; non-"true" doc flags are ignored', T, async () => {
  await withDb(async (db, p) => {
    const rev = await putDoc(db, 'd', { v: 1 });
    const plain = { _id: 'd', _rev: rev, v: 1 };
    for (const qs of ['foo=bar', 'revs=maybe', 'revs=1', 'conflicts=yes', 'attachments=TRUE', 'x=1&y']) {
      const r = await req('GET', `${p}/d?${qs}`);
      assert.equal(r.status, 200, `${qs}: ${r.text}`);
      assert.deepEqual(r.json, plain, qs);
    }
    const a = await req('GET', `${p}/_all_docs?foo=bar&baz=1`);
    assert.equal(a.status, 200);
    assert.deepEqual(a.json.rows.map((x) => x.id), ['d']);
    const w = await req('PUT', `${p}/e?unknown=1`, { body: { v: 2 } });
    assert.equal(w.status, 201);
  });
});

test('bad view-style parameters on _all_docs → 400 query_parse_error', T, async () => {
  await withDb(async (db, p) => {
    await putDoc(db, 'd', { v: 1 });
    for (const qs of ['descending=maybe', 'include_docs=maybe', 'inclusive_end=maybe', 'conflicts=maybe', 'update_seq=maybe']) {
      const r = await req('GET', `${p}/_all_docs?${qs}`);
      assertError(r, 400, 'query_parse_error', /boolean/i);
    }
    for (const qs of ['limit=abc', 'skip=abc', 'limit=1.5']) {
      const r = await req('GET', `${p}/_all_docs?${qs}`);
      assertError(r, 400, 'query_parse_error', /integer/i);
    }
    for (const qs of ['limit=-1', 'skip=-1']) {
      const r = await req('GET', `${p}/_all_docs?${qs}`);
      assertError(r, 400, 'query_parse_error', /positive integer/i);
    }
    for (const qs of ['startkey=notjson', 'endkey=%7B', 'key=nope', 'keys=%5B1']) {
      const r = await req('GET', `${p}/_all_docs?${qs}`);
      assert.equal(r.status, 400, `${qs}: ${r.text}`);
    }
    await assertAlive();
  });
});

test('truncated request bodies do not write anything and do not hurt the server', T, async () => {
  await withDb(async (db, p) => {
    // Content-Length promises more than arrives, then the client hangs up.
    const fixed = await rawSocket([
      rawHead('PUT', `${p}/trunc1`, { 'Content-Type': 'application/json', 'Content-Length': '100' }),
      '{"a":"only twenty',
    ], { timeout: 3000 });
    if (fixed.status !== null) assert.ok(fixed.status >= 400, `truncated body answered ${fixed.status}`);
    await assertAlive();
    // chunked body cut off mid-chunk
    const chunked = await rawSocket([
      rawHead('PUT', `${p}/trunc2`, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' }),
      '20\r\n{"a":"cut off here',
    ], { timeout: 3000 });
    if (chunked.status !== null) assert.ok(chunked.status >= 400, `truncated chunked body answered ${chunked.status}`);
    await assertAlive();
    // _bulk_docs cut off
    await rawSocket([
      rawHead('POST', `${p}/_bulk_docs`, { 'Content-Type': 'application/json', 'Content-Length': '5000' }),
      '{"docs":[{"_id":"trunc3"},{"_id":"trunc4"}',
    ], { timeout: 3000 });
    await assertAlive();
    // a client that stalls without closing: the server must not block others meanwhile
    const stall = rawSocket([
      rawHead('PUT', `${p}/trunc5`, { 'Content-Type': 'application/json', 'Content-Length': '100' }),
      '{"a":',
    ], { timeout: 3000, halfClose: false });
    await assertAlive();
    await stall;
    for (const id of ['trunc1', 'trunc2', 'trunc3', 'trunc4', 'trunc5']) {
      assert.equal((await req('GET', `${p}/${id}`)).status, 404, `${id} must not exist`);
    }
    assert.equal((await req('GET', p)).json.doc_count, 0);
  });
});

test('garbage on the wire gets a 4xx or a closed connection, never a dead server', T, async () => {
  // junk that is not HTTP at all: a 4xx or a hang-up
  for (const c of ['GARBAGE\r\n\r\n', '\r\n\r\n\r\n', Buffer.from([0, 1, 2, 3, 0xff, 0xfe, 13, 10, 13, 10])]) {
    const r = await rawSocket(c, { timeout: 3000 });
    if (r.status !== null) assert.ok(r.status >= 400 && r.status < 500, `${JSON.stringify(String(c).slice(0, 40))} → ${r.status}`);
    await assertAlive();
  }
  // odd but parseable requests: any answer, as long as the server survives
  for (const c of [
    `GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n`,
    `PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n`,
    `GET / HTTP/1.1\r\n${'X-Big: ' + 'a'.repeat(200000)}\r\n\r\n`,
    `GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`,
  ]) {
    await rawSocket(c, { timeout: 3000 });
    await assertAlive();
  }
});

test('pipelined requests on one connection are all answered in order', T, async () => {
  const one = rawHead('GET', '/_up', {});
  const two = rawHead('GET', '/', { Connection: 'close' });
  const r = await rawSocket([one + two], { timeout: 5000, halfClose: false });
  const text = r.data.toString('latin1');
  const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
  assert.deepEqual(statuses, ['200', '200'], text.slice(0, 500));
  const up = text.search(/"status"\s*:\s*"ok"/);
  const welcome = text.search(/"couchdb"\s*:\s*"Welcome"/);
  assert.ok(up >= 0 && welcome >= 0 && up < welcome, 'answers missing or out of order');
});

test('many bad requests in a row, then normal service', T, async () => {
  await withDb(async (db, p) => {
    const bads = [];
    for (let i = 0; i < 60; i++) {
      const m = i % 3;
      if (m === 0) bads.push(req('PUT', `${p}/d${i}`, { body: '{bad', headers: JSON_H }));
      else if (m === 1) bads.push(req('POST', `${p}/_bulk_docs`, { body: '[', headers: JSON_H }));
      else bads.push(req('GET', `${p}/d?rev=nope`));
    }
    const res = await Promise.all(bads);
    for (const r of res) assert.equal(r.status, 400);
    const ok = await req('PUT', `${p}/fine`, { body: { v: 1 } });
    assert.equal(ok.status, 201);
    assert.equal((await req('GET', p)).json.doc_count, 1);
    await assertAlive();
  });
});

test('deeply nested JSON: accepted or refused with 400, never a crash', T, async () => {
  await withDb(async (db, p) => {
    const depth = 5000;
    const body = '{"a":' + '['.repeat(depth) + ']'.repeat(depth) + '}';
    const r = await req('PUT', `${p}/deep`, { body, headers: JSON_H });
    assert.ok(r.status === 201 || r.status === 400, `deep nesting → ${r.status} ${r.text.slice(0, 200)}`);
    await assertAlive();
  });
});

const MAX_REQ = Number(process.env.SETTEE_MAX_HTTP_REQUEST_SIZE || 0);
test('body over max_http_request_size → 413', { timeout: 120000, skip: MAX_REQ ? false : 'set SETTEE_MAX_HTTP_REQUEST_SIZE to run' }, async () => {
  await withDb(async (db, p) => {
    const size = MAX_REQ + 1;
    const head = '{"docs":[{"_id":"huge","pad":"';
    const tail = '"}]}';
    const padLen = size - head.length - tail.length;
    const chunk = Buffer.alloc(1024 * 1024, 0x61);
    const parts = [rawHead('POST', `${p}/_bulk_docs`, { 'Content-Type': 'application/json', 'Content-Length': String(size) }), head];
    for (let left = padLen; left > 0; left -= chunk.length) parts.push(left >= chunk.length ? chunk : chunk.subarray(0, left));
    parts.push(tail);
    const r = await rawSocket(parts, { timeout: 60000, halfClose: false, pauseMs: 300, stopOnData: true });
    assert.equal(r.status, 413, `got ${r.status}: ${r.data.toString('latin1').slice(0, 300)} ${r.error || ''}`);
    assert.deepEqual(r.json, { error: 'too_large', reason: 'the request entity is too large' },
      `413 body: ${r.data.toString('latin1').slice(0, 300)}`);
    await assertAlive();
    assert.equal((await req('GET', `${p}/huge`)).status, 404);
  });
});

test('a NUL character in a doc id: accepted or refused, never a crash', T, async () => {
  await withDb(async (db, p) => {
    const nul = await req('PUT', `${p}/${enc('a\u0000b')}`, { body: { v: 1 } });
    assert.ok(nul.status === 201 || nul.status === 400, `NUL in id → ${nul.status}`);
    if (nul.status === 201) assert.equal((await req('GET', `${p}/${enc('a\u0000b')}`)).json.v, 1);
    await assertAlive();
  });
});
