// Node endpoints: /_node/{node}/_stats, _system, _prometheus, /_membership, /_up in maintenance
// mode, /_db_updates in its four feeds; replays the lines of couchdb-golden/node.jsonl whose
// endpoint settee has (README section 9), then checks that the metrics move and that the
// Prometheus text parses.
//
// Where settee deliberately differs (marked below and in docs/operating.md):
//  - _stats/_system/_prometheus list what settee counts, a subset of CouchDB's names (checked:
//    every name settee shows is one CouchDB 3.4.3 shows, with the same type and shape);
//  - _prometheus separates `# HELP` and `# TYPE` with LF where CouchDB 3.4.3 sends a bare CR
//    (which a Prometheus parser reads as part of the help text, losing the TYPE);
//  - _db_updates has no `_dbs` (shard map) events, and events recorded in one batch may come in
//    another order than CouchDB's, so the normal feed is compared as a set.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { req, isSettee, BASE, freshDb, dropDb } from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const GOLDEN_DIR = process.env.STT_GOLDEN_DIR || path.resolve(here, '../../shared/couchdb-golden');
const GOLDEN_FILE = path.join(GOLDEN_DIR, 'node.jsonl');
const GOLDEN_MISSING = !fs.existsSync(GOLDEN_FILE) && process.env.STT_GOLDEN_OPTIONAL === '1';
const G = new Map((GOLDEN_MISSING ? '' : fs.readFileSync(GOLDEN_FILE, 'utf8'))
  .split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l)).map((l) => [l.name, l]));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const anonReq = (method, p) => fetch(BASE + p, { method, headers: { Accept: 'application/json' } })
  .then(async (r) => ({ status: r.status, headers: r.headers, json: await r.json().catch(() => undefined) }));

// The recorded request sent as recorded (admin or anonymous), compared on status and body.
async function replay(name, { compare = true } = {}) {
  const line = G.get(name);
  assert.ok(line, `golden line ${name}`);
  const { method, path: p, auth, body } = line.request;
  const r = auth === 'anonymous' ? await anonReq(method, p) : await req(method, p, { body });
  assert.equal(r.status, line.response.status, `${name}: status`);
  if (compare) assert.deepEqual(r.json, line.response.body, `${name}: body`);
  return r;
}

// The golden's "<number>" placeholders: the same shape with any number.
function sameShape(actual, golden, where) {
  if (golden === '<number>') return assert.equal(typeof actual, 'number', where);
  if (Array.isArray(golden)) {
    assert.ok(Array.isArray(actual), where);
    // histogram: any number of [bin, count] pairs; percentile: the same six
    for (const a of actual) sameShape(a, golden[0], where + '[]');
    return undefined;
  }
  if (golden && typeof golden === 'object') {
    assert.deepEqual(Object.keys(actual).sort(), Object.keys(golden).sort(), where);
    for (const k of Object.keys(golden)) sameShape(actual[k], golden[k], `${where}.${k}`);
    return undefined;
  }
  return assert.equal(actual, golden, where);
}

const stats = async (p = '') => (await req('GET', '/_node/_local/_stats' + p)).json;
const skipGolden = GOLDEN_MISSING ? 'no couchdb-golden' : false;

// ------------------------------------------------------------------ node, membership, _up

test('node, membership and _up as CouchDB', { skip: skipGolden }, async () => {
  const node = (await req('GET', '/_node/_local')).json.name;
  const r = await req('GET', '/_membership');
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { all_nodes: [node], cluster_nodes: [node] });
  assert.equal((await anonReq('GET', '/_membership')).status, 401);
  await replay('up_normal');
  await replay('up_anonymous');
});

test('_up in maintenance mode (live through _config)', { skip: skipGolden }, async () => {
  const set = (v) => req('PUT', '/_node/_local/_config/couchdb/maintenance_mode', { body: JSON.stringify(v) });
  try {
    assert.equal((await set('true')).status, 200);
    await replay('maintenance_up');
    await replay('maintenance_up_anonymous');
    const root = await req('GET', '/');
    assert.equal(root.status, 200, 'GET / still answers');
    assert.equal((await set('nolb')).status, 200);
    await replay('maintenance_nolb_up');
    assert.equal((await set('false')).status, 200);
    await replay('maintenance_false_up');
  } finally {
    await req('DELETE', '/_node/_local/_config/couchdb/maintenance_mode');
  }
  await replay('maintenance_off_up');
});

// ------------------------------------------------------------------ _stats

test('_stats: CouchDB names, types and shapes', { skip: skipGolden }, async () => {
  const golden = G.get('stats_summary').response.body;
  const all = await stats();
  for (const k of Object.keys(all)) assert.ok(golden.top_level_keys.includes(k), `top-level ${k} is CouchDB's`);
  assert.ok(all.couchdb, 'couchdb group');
  for (const k of Object.keys(all.couchdb)) assert.ok(golden.couchdb_keys.includes(k), `couchdb.${k} is CouchDB's`);
  sameShape(all.couchdb.httpd_request_methods, golden['couchdb.httpd_request_methods'], 'httpd_request_methods');
  sameShape(all.couchdb.request_time, golden['couchdb.request_time'], 'request_time');
  sameShape(all.couchdb.open_databases, golden['couchdb.open_databases'], 'open_databases');
  sameShape(all.couchdb.httpd_status_codes['200'], golden['couchdb.httpd_status_codes.200'], 'status 200');
  assert.equal(all.couchdb.request_time.value.percentile.length, 6);
  sameShape((await replay('stats_single_metric', { compare: false })).json, G.get('stats_single_metric').response.body, 'one metric');
  sameShape((await replay('stats_counter_metric', { compare: false })).json, G.get('stats_counter_metric').response.body, 'counter');
  await replay('stats_missing_metric');
  assert.equal((await stats('/couchdb/httpd/requests/value')) > 0, true, 'a path into a metric');
});

test('_stats: counters move with requests, reads and writes', async () => {
  const db = await freshDb('node_stats');
  try {
    const before = await stats('/couchdb');
    for (let i = 0; i < 5; i++) await req('GET', `/${db}/nope`);
    assert.equal((await req('PUT', `/${db}/d`, { body: { a: 1 } })).status, 201);
    assert.equal((await req('GET', `/${db}/d`)).status, 200);
    const after = await stats('/couchdb');
    const v = (s, p) => p.split('.').reduce((o, k) => o[k], s).value;
    assert.ok(v(after, 'httpd.requests') >= v(before, 'httpd.requests') + 7);
    assert.ok(v(after, 'httpd_status_codes.404') >= v(before, 'httpd_status_codes.404') + 5);
    assert.ok(v(after, 'httpd_status_codes.201') >= v(before, 'httpd_status_codes.201') + 1);
    assert.ok(v(after, 'httpd_request_methods.PUT') >= v(before, 'httpd_request_methods.PUT') + 1);
    assert.ok(v(after, 'database_writes') >= v(before, 'database_writes') + 1);
    assert.ok(v(after, 'database_reads') >= v(before, 'database_reads') + 1);
    assert.ok(after.request_time.value.n >= before.request_time.value.n + 7);
    assert.ok(v(after, 'open_databases') >= 1);
  } finally {
    await dropDb(db);
  }
});

test('_stats, _system and _prometheus need an admin or the _metrics role', async () => {
  for (const p of ['_stats', '_system', '_prometheus']) {
    const r = await anonReq('GET', `/_node/_local/${p}`);
    assert.equal(r.status, 401, p);
    assert.deepEqual(r.json, { error: 'unauthorized', reason: 'You are not a server admin or read-only metrics user' });
  }
  if (!GOLDEN_MISSING) await replay('prometheus_anonymous');
  const user = 'metrics_reader_' + process.pid;
  const id = `/_users/org.couchdb.user:${user}`;
  const put = await req('PUT', id, { body: { name: user, password: 'pw', roles: ['_metrics'], type: 'user' } });
  assert.equal(put.status, 201, put.text);
  try {
    const auth = { headers: { Authorization: 'Basic ' + Buffer.from(`${user}:pw`).toString('base64') } };
    assert.equal((await req('GET', '/_node/_local/_stats', auth)).status, 200);
    assert.equal((await req('GET', '/_node/_local/_prometheus', auth)).status, 200);
    assert.equal((await req('GET', '/_node/_local/_config', auth)).status, 401, 'not _config');
  } finally {
    const cur = await req('GET', id);
    await req('DELETE', `${id}?rev=${cur.json._rev}`);
  }
});

// ------------------------------------------------------------------ _system

test('_system: CouchDB keys where they mean the same', { skip: skipGolden }, async () => {
  const golden = G.get('system_summary').response.body;
  const r = await req('GET', '/_node/_local/_system');
  assert.equal(r.status, 200);
  const shared = Object.keys(r.json).filter((k) => k in golden);
  assert.ok(shared.includes('uptime') && shared.includes('memory') && shared.includes('process_count'));
  for (const k of shared) {
    const want = typeof golden[k] === 'string' ? golden[k] : golden[k].type;
    assert.equal(typeof r.json[k], want, k);
  }
  if (await isSettee()) {
    assert.ok(r.json.memory.rss > 0 && r.json.threads > 0 && r.json.fds.open > 0);
    assert.equal(typeof r.json.leveldb.disk_size, 'number');
  }
});

// ------------------------------------------------------------------ _prometheus

// The text exposition format: families from # TYPE, samples `name{labels} value`.
function parsePrometheus(text) {
  const types = new Map();
  const samples = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let m;
    if ((m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|summary|histogram|untyped)$/.exec(line))) {
      assert.ok(!types.has(m[1]), `one TYPE for ${m[1]}`);
      types.set(m[1], m[2]);
    } else if (line.startsWith('# HELP ')) {
      assert.ok(!line.includes('\r'), 'no CR inside HELP');
    } else {
      m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$/.exec(line);
      assert.ok(m, `sample line: ${JSON.stringify(line)}`);
      const labels = {};
      for (const kv of (m[3] || '').split(',').filter(Boolean)) {
        const lm = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"$/.exec(kv);
        assert.ok(lm, `label ${kv}`);
        labels[lm[1]] = lm[2];
      }
      const family = types.has(m[1]) ? m[1] : m[1].replace(/_(sum|count)$/, '');
      assert.ok(types.has(family), `a TYPE for ${m[1]}`);
      samples.push({ name: m[1], labels, value: Number(m[4]) });
    }
  }
  return { types, samples };
}
const sample = (p, name, labels = {}) => p.samples.find((s) => s.name === name &&
  Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

test('_prometheus parses, uses CouchDB 3.4 names, and its counters move', async (t) => {
  const scrape = async () => {
    const r = await req('GET', '/_node/_local/_prometheus', { raw: true });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'text/plain; version=2.0');
    return r.text;
  };
  const text = await scrape();
  if (!(await isSettee())) t.diagnostic('CouchDB separates HELP and TYPE with a bare CR: not parsed here');
  else {
    const a = parsePrometheus(text);
    if (!GOLDEN_MISSING) {
      const golden = new Map(G.get('prometheus').response.body.type_lines.map((l) => l.split(' ')));
      for (const [name, kind] of a.types) assert.equal(kind, golden.get(name), `${name} is CouchDB's, as a ${golden.get(name)}`);
    }
    const db = await freshDb('node_prom');
    try {
      for (let i = 0; i < 3; i++) await req('GET', `/${db}/missing`);
      await req('PUT', `/${db}/x`, { body: {} });
    } finally {
      await dropDb(db);
    }
    const b = parsePrometheus(await scrape());
    assert.ok(sample(b, 'couchdb_httpd_requests_total') >= sample(a, 'couchdb_httpd_requests_total') + 5);
    assert.ok(sample(b, 'couchdb_httpd_status_codes', { code: '404' }) >= sample(a, 'couchdb_httpd_status_codes', { code: '404' }) + 3);
    assert.ok(sample(b, 'couchdb_httpd_request_methods', { method: 'PUT' }) >= sample(a, 'couchdb_httpd_request_methods', { method: 'PUT' }) + 2);
    assert.ok(sample(b, 'couchdb_request_time_seconds_count') > sample(a, 'couchdb_request_time_seconds_count'));
    assert.ok(sample(b, 'couchdb_database_writes_total') > sample(a, 'couchdb_database_writes_total'));
    assert.ok(sample(b, 'couchdb_request_time_seconds', { quantile: '0.99' }) >= 0);
    assert.ok(sample(b, 'couchdb_uptime_seconds') >= 0);
  }
});

// [prometheus] additional_port: a second settee started here with the port on; needs the binary.
test('[prometheus] additional_port serves _prometheus without auth, and only that', async (t) => {
  const bin = process.env.SETTEE_BIN || path.resolve(here, '../build/asan/settee');
  if (!(await isSettee()) || !fs.existsSync(bin)) return t.skip('needs a settee binary (SETTEE_BIN)');
  const free = () => new Promise((res) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => res(port)); });
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'settee-prom-'));
  const [port, mport] = [await free(), await free()];
  fs.writeFileSync(path.join(dir, 'settee.ini'),
    `[admins]\nadmin = admin\n[log]\nlevel = warning\n[prometheus]\nadditional_port = true\nport = ${mport}\n`);
  const child = spawn(bin, ['--bind', '127.0.0.1', '--port', String(port), '--data-dir', path.join(dir, 'db'),
    '--config', path.join(dir, 'settee.ini')], {
    stdio: ['ignore', 'ignore', 'pipe'],
    // h2o's own pools are reported as leaks at exit (tools/lsan.supp)
    env: { ...process.env, LSAN_OPTIONS: process.env.LSAN_OPTIONS || `suppressions=${path.resolve(here, '../tools/lsan.supp')}:print_suppressions=0` },
  });
  let log = '';
  child.stderr.on('data', (d) => { log += d; });
  try {
    let up = false;
    for (let i = 0; i < 100 && !up; i++) {
      up = await fetch(`http://127.0.0.1:${mport}/_node/_local/_prometheus`).then((r) => r.ok, () => false);
      if (!up) await sleep(100);
    }
    assert.ok(up, 'the metrics port answers: ' + log);
    const r = await fetch(`http://127.0.0.1:${mport}/_node/_local/_prometheus`);
    assert.equal(r.headers.get('content-type'), 'text/plain; version=2.0');
    const p = parsePrometheus(await r.text());
    assert.ok(sample(p, 'couchdb_httpd_requests_total') >= 0);
    assert.equal((await fetch(`http://127.0.0.1:${mport}/_node/nobody@x/_prometheus`)).status, 404);
    assert.equal((await fetch(`http://127.0.0.1:${mport}/_all_dbs`)).status, 404, 'nothing else');
    assert.equal((await fetch(`http://127.0.0.1:${mport}/_node/_local/_config`)).status, 404);
    assert.equal((await fetch(`http://127.0.0.1:${port}/_node/_local/_prometheus`)).status, 401, 'the main port still needs auth');
  } finally {
    child.kill('SIGTERM');
    await new Promise((res) => child.on('exit', res));
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.ok(!/ERROR: (Address|Leak)Sanitizer|runtime error/.test(log), log);
});

// ------------------------------------------------------------------ _db_updates

const GC = '/_global_changes';
const dbuNames = (results, names) => results.filter((r) => names.includes(r.db_name));
async function pollUpdates(names, want) {
  let r;
  for (let i = 0; i < 100; i++) {
    r = await req('GET', '/_db_updates');
    const got = dbuNames(r.json.results, names).map((x) => `${x.type}:${x.db_name}`);
    if (want.every((w) => got.includes(w))) return r;
    await sleep(100);
  }
  assert.fail(`events ${want} never came: ${JSON.stringify(r.json)}`);
}

test('_db_updates: replay of node.jsonl (normal, limit, descending, longpoll, errors)', { skip: skipGolden }, async () => {
  const had = (await req('GET', GC)).status === 200;
  if (had) await req('DELETE', GC);
  const dbs = ['golden_node_dbu', 'golden_node_dbu2'];
  for (const d of dbs) await req('DELETE', '/' + d);
  try {
    await replay('db_updates_initial');
    await replay('db_updates_anonymous');
    await replay('global_changes_create');
    await replay('dbu_create');
    await replay('dbu_update', { compare: false });
    await replay('dbu_create_2');
    await replay('dbu_delete_2');
    const golden = G.get('db_updates_normal').response.body.results.filter((x) => x.db_name !== '_dbs');
    const want = golden.map((x) => `${x.type}:${x.db_name}`);
    const normal = await pollUpdates(dbs, want);
    assert.ok(normal.headers.get('etag'), 'normal feed has an ETag');
    const events = dbuNames(normal.json.results, dbs);
    assert.deepEqual(events.map((x) => `${x.type}:${x.db_name}`).sort(), [...want].sort(), 'the same events (as a set)');
    for (const e of normal.json.results) {
      assert.deepEqual(Object.keys(e), ['db_name', 'type', 'seq']);
      assert.equal(typeof e.seq, 'string');
    }
    assert.equal(normal.json.last_seq, normal.json.results.at(-1).seq);
    // limit and descending follow the normal feed's own order
    const lim = await req('GET', '/_db_updates?limit=1');
    assert.deepEqual(lim.json.results, normal.json.results.slice(0, 1));
    assert.equal(lim.json.last_seq, lim.json.results[0].seq);
    const desc = await req('GET', '/_db_updates?descending=true&limit=2');
    assert.deepEqual(desc.json.results, normal.json.results.slice(-2).reverse());
    // longpoll since=now, answered by a write (concurrent_with)
    const lp = req('GET', G.get('db_updates_longpoll_since_now').request.path);
    await sleep(300);
    await replay('dbu_longpoll_trigger_update', { compare: false });
    const lpr = await lp;
    assert.equal(lpr.status, 200);
    assert.deepEqual(lpr.json.results.map((x) => [x.db_name, x.type]), [['golden_node_dbu', 'updated']]);
    assert.equal(lpr.json.last_seq, lpr.json.results[0].seq);
    const t0 = Date.now();
    const to = await replay('db_updates_longpoll_timeout', { compare: false });
    assert.deepEqual(to.json.results, []);
    assert.equal(typeof to.json.last_seq, 'string');
    assert.ok(Date.now() - t0 >= 900, 'waited for the timeout');
    await replay('db_updates_bad_feed');
    await replay('db_updates_bad_since');
    const bad = await req('GET', '/_db_updates?limit=abc');
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.json, { error: 'bad_request', reason: 'invalid_integer' });
  } finally {
    for (const d of dbs) await req('DELETE', '/' + d);
    if (!had) await req('DELETE', GC);
  }
});

test('_db_updates: created/updated/deleted in the continuous and eventsource feeds', async () => {
  const had = (await req('GET', GC)).status === 200;
  if (!had) assert.equal((await req('PUT', GC)).status, 201);
  const db = await freshDb('node_dbu');
  try {
    assert.equal((await req('PUT', `/${db}/a`, { body: {} })).status, 201);
    await dropDb(db);
    await pollUpdates([db], [`created:${db}`, `updated:${db}`, `deleted:${db}`]);

    const cont = await req('GET', '/_db_updates?feed=continuous&timeout=300', { raw: true });
    assert.equal(cont.status, 200);
    const lines = cont.text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const last = lines.pop();
    assert.deepEqual(Object.keys(last), ['last_seq']);
    assert.deepEqual(dbuNames(lines, [db]).map((x) => x.type).sort(), ['created', 'deleted', 'updated']);

    const es = await req('GET', '/_db_updates?feed=eventsource&timeout=300', { raw: true });
    assert.equal(es.status, 200);
    assert.match(es.headers.get('content-type'), /^text\/event-stream/);
    const events = es.text.split('\n\n').filter(Boolean).map((block) => {
      const data = /^data: (.*)$/m.exec(block);
      const id = /^id: (.*)$/m.exec(block);
      assert.ok(data && id, block);
      const row = JSON.parse(data[1]);
      assert.equal(JSON.parse(id[1]), row.seq, 'id is the seq');
      return row;
    });
    assert.deepEqual(dbuNames(events, [db]).map((x) => x.type).sort(), ['created', 'deleted', 'updated']);

    // a waiting continuous feed gets a new db's event, then ends at limit
    const since = (await req('GET', '/_db_updates?descending=true&limit=1')).json.last_seq;
    const live = req('GET', `/_db_updates?feed=continuous&since=${encodeURIComponent(since)}&limit=1&timeout=20000`, { raw: true });
    await sleep(200);
    const db2 = await freshDb('node_dbu_live');
    const lr = await live;
    await dropDb(db2);
    const rows = lr.text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    assert.deepEqual(rows[0], { db_name: db2, type: 'created', seq: rows[0].seq });
    assert.deepEqual(Object.keys(rows[1]), ['last_seq']);

    // an eventsource feed with a heartbeat sends one while idle
    const hb = await req('GET', '/_db_updates?feed=eventsource&since=now&heartbeat=200&timeout=700', { raw: true });
    assert.match(hb.text, /event: heartbeat\ndata: \n\n/);
  } finally {
    if (!had) await req('DELETE', GC);
  }
});
