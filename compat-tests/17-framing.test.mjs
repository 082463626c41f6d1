// Request smuggling shapes (RFC 9112 §6.1, §6.3): a request whose body length two parsers
// could read differently is refused with 400 and the connection is closed after the reply, so
// a request hidden in its body is never executed. Also: HTTP/2 without TLS is off unless
// [settee] http2_cleartext is set. settee-only hardening: CouchDB's answers to these shapes
// are not recorded in the goldens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { BASE, ADMIN_AUTH, isSettee } from './lib.mjs';

const T = { timeout: 30000 };
const { hostname, port } = new URL(BASE);

// raw bytes in, everything the server sent until it closed (or 2 s of silence)
function exchange(raw) {
  return new Promise((resolve) => {
    const s = net.connect(Number(port), hostname);
    let out = Buffer.alloc(0);
    let closed = false;
    const done = () => { s.destroy(); resolve({ text: out.toString('latin1'), closed }); };
    const idle = () => { clearTimeout(s.t); s.t = setTimeout(done, 2000); };
    s.on('connect', () => { s.write(raw); idle(); });
    s.on('data', (d) => { out = Buffer.concat([out, d]); idle(); });
    s.on('end', () => { closed = true; clearTimeout(s.t); done(); });
    s.on('error', () => { clearTimeout(s.t); done(); });
  });
}

const hidden = `GET /_all_dbs HTTP/1.1\r\nHost: x\r\nAuthorization: ${ADMIN_AUTH}\r\n\r\n`;
const SHAPES = {
  'Content-Length with Transfer-Encoding': 'Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  'two different Content-Length values': 'Content-Length: 5\r\nContent-Length: 7\r\n\r\nabcdefg',
  'two equal Content-Length values': 'Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}',
  'Transfer-Encoding: identity, chunked': 'Transfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n',
  'Transfer-Encoding repeated': 'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
};

for (const [name, tail] of Object.entries(SHAPES)) {
  test(`${name}: 400, the connection closed, the request in the body never runs`, T, async (t) => {
    if (!(await isSettee())) { t.skip('settee-only hardening'); return; }
    const r = await exchange(`POST /_session HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${tail}${hidden}`);
    assert.match(r.text, /^HTTP\/1\.1 400 /, r.text.slice(0, 200));
    assert.ok(r.closed, 'the connection is closed after the 400');
    assert.doesNotMatch(r.text, /_replicator|_users/, 'the hidden request ran');
    const body = r.text.slice(r.text.indexOf('\r\n\r\n') + 4);
    if (!/Transfer-Encoding: identity/.test(tail)) assert.equal(JSON.parse(body).error, 'bad_request');
  });
}

test('a well-framed pipelined request still runs (the check refuses only ambiguity)', T, async () => {
  const r = await exchange(`GET /_up HTTP/1.1\r\nHost: x\r\n\r\n${hidden}`);
  assert.match(r.text, /^HTTP\/1\.1 200 /);
  assert.match(r.text, /_users/);
});

test('HTTP/2 prior knowledge on the plain port is refused unless [settee] http2_cleartext', T, async (t) => {
  if (!(await isSettee())) { t.skip('settee setting'); return; }
  const preface = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';
  const r = await exchange(preface + '\x00\x00\x00\x04\x00\x00\x00\x00\x00');
  // an HTTP/2 server answers with a SETTINGS frame (type 4 at byte 3), not HTTP/1 text
  assert.ok(r.text.length === 0 || /^HTTP\/1\.1 /.test(r.text), `an HTTP/2 answer: ${JSON.stringify(r.text.slice(0, 40))}`);
});
