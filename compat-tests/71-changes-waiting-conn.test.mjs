// A connection whose longpoll _changes waits stays a working HTTP/1.1 connection: a request
// pipelined behind the waiting one is answered after it, the connection is reused after
// the answer, and the request's own fields (path, query, headers) are still right when
// the answer comes. settee gives back a waiting request's read buffer (src/http/inbuf.c);
// these are the shapes that would show a request moved wrong. Plain CouchDB behaviour.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { BASE, ADMIN_AUTH } from './lib.mjs';
import { withDb, putDoc, dbPath, sleep } from './lib-repl.mjs';

const T = { timeout: 30000 };
const { hostname, port } = new URL(BASE);
const auth = ADMIN_AUTH ? `Authorization: ${ADMIN_AUTH}\r\n` : '';

// A raw connection: write bytes, read what comes until `until` matches the text so far.
function conn() {
  const s = net.connect(Number(port), hostname);
  let text = '';
  let waiter = null;
  const check = () => {
    if (waiter && waiter.re.test(text)) {
      const w = waiter;
      waiter = null;
      clearTimeout(w.t);
      w.resolve(text);
    }
  };
  s.on('data', (d) => { text += d.toString('latin1'); check(); });
  return {
    write: (raw) => s.write(raw),
    until: (re, ms = 10000) => new Promise((resolve, reject) => {
      waiter = { re, resolve, t: setTimeout(() => reject(new Error(`timeout waiting for ${re}; got ${text.slice(-300)}`)), ms) };
      check();
    }),
    close: () => s.destroy(),
  };
}

const longpoll = (db, extra = '') => `GET ${dbPath(db, '_changes')}?feed=longpoll&since=now&heartbeat=5000 HTTP/1.1\r\n` +
  `Host: ${hostname}\r\n${auth}X-Custom-Header: kept-while-waiting\r\n${extra}\r\n`;

test('a request pipelined behind a waiting longpoll is answered after it', T, () => withDb(async (db) => {
  const c = conn();
  try {
    c.write(longpoll(db) + `GET /_up HTTP/1.1\r\nHost: ${hostname}\r\n\r\n`);
    await c.until(/\{"results":\[/);
    await sleep(200); // the feed waits
    await putDoc(db, 'woke', { v: 1 });
    const text = await c.until(/"last_seq"[\s\S]*HTTP\/1\.1 200[\s\S]*"status":"ok"/);
    assert.match(text, /"id":"woke"/);
    assert.ok(text.indexOf('"last_seq"') < text.lastIndexOf('HTTP/1.1 200'), 'answers in request order');
  } finally {
    c.close();
  }
}));

test('the connection is reused after a longpoll answer, for a second longpoll too', T, () => withDb(async (db) => {
  const c = conn();
  try {
    c.write(longpoll(db));
    await c.until(/\{"results":\[/);
    await sleep(200);
    await putDoc(db, 'one', { v: 1 });
    await c.until(/"id":"one"[\s\S]*"last_seq"[\s\S]*\r\n0\r\n\r\n/);
    c.write(longpoll(db));
    await c.until(/\r\n0\r\n\r\nHTTP\/1\.1 200[\s\S]*\{"results":\[/);
    await sleep(200);
    await putDoc(db, 'two', { v: 1 });
    const text = await c.until(/"id":"two"[\s\S]*"last_seq"/);
    assert.equal(text.match(/HTTP\/1\.1 200/g).length, 2);
    c.write(`GET ${dbPath(db)} HTTP/1.1\r\nHost: ${hostname}\r\n${auth}\r\n`);
    const info = await c.until(/"doc_count":2/);
    assert.match(info, /"db_name"/);
  } finally {
    c.close();
  }
}));

test('many clients wait on one db; one write answers each, then a client leaves early', T, () => withDb(async (db) => {
  const cs = Array.from({ length: 20 }, () => conn());
  try {
    for (const c of cs) c.write(longpoll(db));
    await Promise.all(cs.map((c) => c.until(/\{"results":\[/)));
    cs[0].close(); // gone while waiting: the others are not disturbed
    await sleep(200);
    await putDoc(db, 'all', { v: 1 });
    const texts = await Promise.all(cs.slice(1).map((c) => c.until(/"id":"all"[\s\S]*"last_seq"/)));
    assert.equal(texts.length, 19);
  } finally {
    for (const c of cs) c.close();
  }
}));
