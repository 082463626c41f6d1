// Node config API: /_node/{node}/_config[/{section}[/{key}]], _config/_reload, node names,
// methods, persistence flags, [admins] hashing, and who may use it.
// Expected values: CouchDB 3.4.3 (couchdb-golden/node.jsonl and auth.jsonl config_* lines,
// chttpd_node.erl, config.erl). Every key a test sets is deleted again, also when it fails; all
// of them live in one section so that a server's ini file gains at most one (empty) header.
// POST _restart is never sent: on CouchDB it restarts the node under the other tests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { req, BASE, ADMIN, basicAuth } from './lib.mjs';
import { T, enc, assertJsonHeaders, assertError, eventually } from './lib-docs.mjs';

const SECTION = 'settee_compat_config';
const CFG = '/_node/_local/_config';
const keyPath = (key, section = SECTION) => `${CFG}/${enc(section)}/${enc(key)}`;
const UNKNOWN = { error: 'not_found', reason: 'unknown_config_value' };

async function put(key, value, headers = {}) {
  return req('PUT', keyPath(key), { body: JSON.stringify(value), headers: { 'Content-Type': 'application/json', ...headers } });
}
// Deletes a key this file may have left behind (404 when it is not set).
async function cleanup(...keys) {
  for (const k of keys) await req('DELETE', keyPath(k));
}
// A request without credentials.
async function anonymous(method, path, body) {
  const res = await fetch(BASE + path, {
    method,
    headers: { Accept: 'application/json', ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body,
  });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, headers: res.headers, text, json };
}

test('GET /_node/_local names the node; the name works in place of _local', T, async () => {
  const r = await req('GET', '/_node/_local');
  assert.equal(r.status, 200);
  assertJsonHeaders(r, '/_node/_local');
  assert.equal(typeof r.json.name, 'string');
  assert.match(r.json.name, /@/);
  try {
    assert.equal((await put('by_name', 'v')).status, 200);
    const byName = await req('GET', `/_node/${enc(r.json.name)}/_config/${SECTION}/by_name`);
    assert.equal(byName.status, 200);
    assert.equal(byName.json, 'v');
  } finally {
    await cleanup('by_name');
  }
});

test('an unknown node is 404 "no such node: NAME"', T, async () => {
  const r = await req('GET', '/_node/nobody@127.0.0.1/_config/couchdb/uuid');
  assertError(r, 404, 'not_found', 'no such node: nobody@127.0.0.1');
  assertJsonHeaders(r, 'unknown node');
  const all = await req('GET', '/_node/nobody@127.0.0.1/_config');
  assertError(all, 404, 'not_found', 'no such node: nobody@127.0.0.1');
});

test('GET _config: every section as an object of string values', T, async () => {
  try {
    assert.equal((await put('k_all', 'in all')).status, 200);
    const r = await req('GET', CFG);
    assert.equal(r.status, 200);
    assertJsonHeaders(r, 'GET _config');
    assert.equal(typeof r.json, 'object');
    for (const [section, kv] of Object.entries(r.json)) {
      assert.equal(typeof kv, 'object', `section ${section}`);
      for (const [k, v] of Object.entries(kv)) assert.equal(typeof v, 'string', `${section}.${k}`);
    }
    assert.equal(r.json[SECTION].k_all, 'in all');
  } finally {
    await cleanup('k_all');
  }
});

test('GET a missing section is {}; a missing key is 404 unknown_config_value', T, async () => {
  const s = await req('GET', `${CFG}/settee_compat_no_such_section`);
  assert.equal(s.status, 200);
  assertJsonHeaders(s, 'missing section');
  assert.deepEqual(s.json, {});
  const k = await req('GET', `${CFG}/couchdb/settee_no_such_key`);
  assertError(k, 404, UNKNOWN.error, UNKNOWN.reason);
  assertJsonHeaders(k, 'missing key');
});

test('PUT returns the old value ("" when unset), DELETE the removed one, then 404', T, async () => {
  try {
    const first = await put('k1', 'value1');
    assert.equal(first.status, 200);
    assertJsonHeaders(first, 'PUT new key');
    assert.equal(first.json, '');
    const second = await put('k1', 'value2');
    assert.equal(second.status, 200);
    assert.equal(second.json, 'value1');

    const get = await req('GET', keyPath('k1'));
    assert.equal(get.status, 200);
    assert.equal(get.json, 'value2');
    const section = await req('GET', `${CFG}/${SECTION}`);
    assert.equal(section.status, 200);
    assert.deepEqual(section.json, { k1: 'value2' });

    const del = await req('DELETE', keyPath('k1'));
    assert.equal(del.status, 200);
    assertJsonHeaders(del, 'DELETE key');
    assert.equal(del.json, 'value2');
    assertError(await req('DELETE', keyPath('k1')), 404, UNKNOWN.error, UNKNOWN.reason);
    assertError(await req('GET', keyPath('k1')), 404, UNKNOWN.error, UNKNOWN.reason);
    assert.deepEqual((await req('GET', `${CFG}/${SECTION}`)).json, {});
  } finally {
    await cleanup('k1');
  }
});

test('PUT trims the value; values are kept as strings whatever they spell', T, async () => {
  try {
    assert.equal((await put('padded', '  some value \t')).status, 200);
    assert.equal((await req('GET', keyPath('padded'))).json, 'some value');
    assert.equal((await put('number', '42')).status, 200);
    assert.equal((await req('GET', keyPath('number'))).json, '42');
    assert.equal((await put('utf8', 'caf\u00e9 \u2603')).status, 200);
    assert.equal((await req('GET', keyPath('utf8'))).json, 'caf\u00e9 \u2603');
    // a '/' inside a key travels as %2F
    assert.equal((await put('a/b', 'slash')).status, 200);
    assert.equal((await req('GET', `${CFG}/${SECTION}`)).json['a/b'], 'slash');
  } finally {
    await cleanup('padded', 'number', 'utf8', 'a/b');
  }
});

test('PUT with a body that is not a JSON string is 400 "a JSON string expected"', T, async () => {
  try {
    for (const body of [123, { a: 1 }, ['x'], null, true]) {
      const r = await put('not_string', body);
      assertError(r, 400, 'bad_request', 'a JSON string expected');
      assertJsonHeaders(r, `PUT ${JSON.stringify(body)}`);
    }
    for (const raw of ['not json', '', '"unterminated']) {
      const r = await req('PUT', keyPath('not_string'), { body: raw, headers: { 'Content-Type': 'application/json' } });
      assertError(r, 400, 'bad_request', 'invalid UTF-8 JSON');
    }
    assertError(await req('GET', keyPath('not_string')), 404, UNKNOWN.error, UNKNOWN.reason);
  } finally {
    await cleanup('not_string');
  }
});

test('X-Couch-Persist: false changes memory only; _reload drops it and restores the file', T, async () => {
  try {
    // a key set without persisting is there until the file is re-read
    const p = await put('nopersist', 'temp', { 'X-Couch-Persist': 'false' });
    assert.equal(p.status, 200);
    assert.equal(p.json, '');
    assert.equal((await req('GET', keyPath('nopersist'))).json, 'temp');
    // a persisted key, then changed and deleted in memory only
    assert.equal((await put('persisted', 'on disk')).status, 200);
    assert.equal((await put('persisted', 'in memory', { 'X-Couch-Persist': 'false' })).json, 'on disk');

    const reload = await req('POST', `${CFG}/_reload`, { body: '', headers: { 'Content-Type': 'application/json' } });
    assert.equal(reload.status, 200);
    assertJsonHeaders(reload, '_reload');
    assert.deepEqual(reload.json, { ok: true });
    assertError(await req('GET', keyPath('nopersist')), 404, UNKNOWN.error, UNKNOWN.reason);
    assert.equal((await req('GET', keyPath('persisted'))).json, 'on disk');

    const d = await req('DELETE', keyPath('persisted'), { headers: { 'X-Couch-Persist': 'false' } });
    assert.equal(d.status, 200);
    assert.equal(d.json, 'on disk');
    assertError(await req('GET', keyPath('persisted')), 404, UNKNOWN.error, UNKNOWN.reason);
    assert.equal((await req('POST', `${CFG}/_reload`)).status, 200);
    assert.equal((await req('GET', keyPath('persisted'))).json, 'on disk');
  } finally {
    await cleanup('nopersist', 'persisted');
  }
});

test('wrong methods are 405 with the Allow list of each path', T, async () => {
  const cases = [
    ['PUT', CFG, 'GET'],
    ['DELETE', CFG, 'GET'],
    ['PUT', `${CFG}/${SECTION}`, 'GET'],
    ['POST', `${CFG}/${SECTION}`, 'GET'],
    ['POST', keyPath('k'), 'GET,PUT,DELETE'],
    ['GET', `${CFG}/_reload`, 'POST'],
    ['GET', '/_node/_local/_restart', 'POST'],
  ];
  for (const [method, path, allow] of cases) {
    const body = method === 'GET' ? undefined : '"x"';
    const r = await req(method, path, { body, headers: { 'Content-Type': 'application/json' } });
    assertError(r, 405, 'method_not_allowed', `Only ${allow} allowed`);
    assert.equal(r.headers.get('allow'), allow, `${method} ${path}`);
    assertJsonHeaders(r, `${method} ${path}`);
  }
  // a wrong method is a 405 before the node is looked up
  const r = await req('PUT', '/_node/nobody@127.0.0.1/_config', { body: '"x"' });
  assertError(r, 405, 'method_not_allowed', 'Only GET allowed');
});

test('paths deeper than a key are 404 not_found', T, async () => {
  const r = await req('GET', `${CFG}/${SECTION}/k/extra`);
  assertError(r, 404, 'not_found');
});

test('sections that name code to run cannot be changed over HTTP (403)', T, async () => {
  for (const section of ['query_servers', 'native_query_servers', 'os_daemons', 'daemons']) {
    const put = await req('PUT', keyPath('settee_compat', section), {
      body: '"x"', headers: { 'Content-Type': 'application/json' },
    });
    assertError(put, 403, 'forbidden', 'Config section blacklisted for modification over HTTP API.');
    const del = await req('DELETE', keyPath('settee_compat', section));
    assertError(del, 403, 'forbidden', 'Config section blacklisted for modification over HTTP API.');
  }
});

test('the config API needs a server admin', { ...T, skip: !ADMIN && 'COUCH_URL carries no admin credentials' }, async () => {
  try {
    for (const [method, path, body] of [
      ['GET', CFG],
      ['GET', `${CFG}/${SECTION}`],
      ['GET', keyPath('anon')],
      ['PUT', keyPath('anon'), '"x"'],
      ['DELETE', keyPath('anon')],
      ['POST', `${CFG}/_reload`],
    ]) {
      const r = await anonymous(method, path, body);
      assertError(r, 401, 'unauthorized', 'You are not a server admin.');
    }
    assertError(await req('GET', keyPath('anon')), 404, UNKNOWN.error, UNKNOWN.reason);
  } finally {
    await cleanup('anon');
  }
});

test('an admin added through [admins] is stored hashed and can log in', { ...T, skip: !ADMIN && 'no admin credentials' }, async () => {
  const name = 'settee_compat_admin';
  const password = 'compat pw ' + process.pid;
  const path = `${CFG}/admins/${name}`;
  try {
    const p = await req('PUT', path, { body: JSON.stringify(password), headers: { 'Content-Type': 'application/json' } });
    assert.equal(p.status, 200);
    assert.equal(p.json, '');
    // CouchDB hashes right after storing (settee before): the plaintext does not stay
    const hashed = await eventually(async () => {
      const g = await req('GET', path);
      return g.status === 200 && /^-pbkdf2[:-]/.test(g.json) ? g.json : null;
    });
    assert.ok(hashed, 'the password was not hashed');
    assert.match(hashed, /^-pbkdf2:sha256-[0-9a-f]{64},[0-9a-f]{32},600000$/);
    assert.ok(!hashed.includes(password));
    const session = await eventually(async () => {
      const s = await req('GET', '/_session', { headers: { Authorization: basicAuth(name, password) } });
      return s.status === 200 && s.json?.userCtx?.name === name ? s : null;
    });
    assert.ok(session, 'the new admin cannot log in');
    assert.ok(session.json.userCtx.roles.includes('_admin'));
    // a value that is already hashed is stored as given
    const again = await req('PUT', path, { body: JSON.stringify(hashed), headers: { 'Content-Type': 'application/json' } });
    assert.equal(again.status, 200);
    assert.equal(again.json, hashed);
    assert.equal((await req('GET', path)).json, hashed);

    const d = await req('DELETE', path);
    assert.equal(d.status, 200);
    assert.equal(d.json, hashed);
    assertError(await req('GET', path), 404, UNKNOWN.error, UNKNOWN.reason);
  } finally {
    await req('DELETE', path);
  }
});
