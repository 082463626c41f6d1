// /_utils: where CouchDB serves Fauxton (node.jsonl's utils_* lines). What holds whether
// the UI is installed or not: the redirect of /_utils, the 405 of other methods, a
// missing file's 404 with CouchDB's caching header, and no path leaving the UI folder.
// When the UI is installed (CouchDB packaged, or settee with [settee] utils_dir), /_utils/
// is the Fauxton page; when it is not, CouchDB answers 404 text/plain and settee a 404
// JSON that says how to install it (a deliberate difference, README).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { BASE, ADMIN_AUTH, req, isSettee } from './lib.mjs';

const auth = ADMIN_AUTH ? { Authorization: ADMIN_AUTH } : {};

// a request whose path is sent as written (fetch would resolve the dots)
function rawGet(path) {
  const u = new URL(BASE);
  return new Promise((resolve, reject) => {
    const r = http.request({ host: u.hostname, port: u.port, path, method: 'GET', headers: auth }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString() }));
    });
    r.on('error', reject);
    r.end();
  });
}

test('/_utils redirects to /_utils/ with an absolute Location', async () => {
  const res = await fetch(BASE + '/_utils', { headers: { Accept: 'text/html', ...auth }, redirect: 'manual' });
  assert.equal(res.status, 301);
  assert.equal(res.headers.get('location'), BASE + '/_utils/');
});

test('/_utils takes GET and HEAD only', async () => {
  const r = await req('POST', '/_utils/', { body: {} });
  assert.equal(r.status, 405);
  assert.equal(r.json.error, 'method_not_allowed');
});

test('a missing /_utils file is a 404 that is not cached', async () => {
  const r = await req('GET', '/_utils/nope.js');
  assert.equal(r.status, 404);
  if (r.headers.get('content-type').startsWith('text/plain')) {
    assert.equal(r.text, 'Not found.');
    assert.equal(r.headers.get('cache-control'), 'private, must-revalidate');
  } else {
    assert.ok(await isSettee(), 'only settee answers JSON here (UI not installed)');
    assert.equal(r.json.error, 'not_found');
    assert.match(r.json.reason, /not installed/);
  }
});

test('no /_utils path reaches outside the UI folder', async () => {
  for (const p of ['/_utils/../_all_dbs', '/_utils/%2e%2e/%2e%2e/etc/passwd', '/_utils/..%2f..%2fetc%2fpasswd',
    '/_utils/dashboard.assets/../../../../etc/passwd']) {
    const r = await rawGet(p);
    assert.notEqual(r.status, 200, p);
    assert.doesNotMatch(r.text, /root:|\["_/, p);
  }
});

test('/_utils/ is the Fauxton page, or a 404 saying the UI is not installed', async () => {
  const r = await req('GET', '/_utils/', { headers: { Accept: 'text/html' } });
  if (r.status === 200) {
    assert.match(r.headers.get('content-type'), /^text\/html/);
    assert.match(r.text, /Fauxton/);
    assert.equal(r.headers.get('cache-control'), 'private, must-revalidate');
    assert.ok(r.headers.get('content-security-policy'));
    if (await isSettee()) {
      // revalidation with the ETag costs no body
      const again = await req('GET', '/_utils/', { headers: { 'If-None-Match': r.headers.get('etag') } });
      assert.equal(again.status, 304);
      assert.equal(again.buf.length, 0);
    }
  } else {
    assert.equal(r.status, 404);
  }
});
