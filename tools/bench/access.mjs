// Per-document access benchmark (driven by access.sh): ACCESS_DOCS docs in one database
// created with ?access=true, each owned by one of ACCESS_DOCS / ACCESS_PER_USER users
// (round robin, so one user's docs are spread over the whole seq range); one user's
// ACCESS_PER_USER docs also copied into a plain database of their own. Prints: the load,
// the access index: first read after the load waited, its size on disk, and the
// user's initial PouchDB pull from each database (wall seconds and settee CPU seconds,
// median of ACCESS_ROUNDS), and the ratio.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(path.join(root, 'compat-tests', 'package.json'));
const PouchDB = require('pouchdb-core').plugin(require('pouchdb-adapter-http'))
  .plugin(require('pouchdb-adapter-memory')).plugin(require('pouchdb-replication'));

const URLS = new URL(process.env.COUCH_URL);
const BASE = `${URLS.protocol}//${URLS.host}`;
const ADMIN = 'Basic ' + Buffer.from('admin:admin').toString('base64');
const NDOCS = +(process.env.ACCESS_DOCS || 100000);
const PER = +(process.env.ACCESS_PER_USER || 100);
const ROUNDS = +(process.env.ACCESS_ROUNDS || 20);
const NUSERS = Math.max(1, Math.floor(NDOCS / PER));
const PID = +process.env.SETTEE_PID;
const USER = 'u0', PW = 'pw';

async function req(method, p, body, auth = ADMIN) {
  const r = await fetch(BASE + p, {
    method, headers: { Authorization: auth, 'Content-Type': 'application/json', Accept: 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (r.status >= 400) throw new Error(`${method} ${p}: ${r.status} ${text.slice(0, 200)}`);
  return JSON.parse(text);
}
// settee's CPU seconds so far: the sum over its threads of /proc/PID/task/TID/schedstat's
// first field (nanoseconds on a CPU; /proc/PID/stat counts 10 ms ticks). A thread that
// ended is not counted: settee's threads live as long as the process.
function cpu() {
  let ns = 0;
  for (const t of fs.readdirSync(`/proc/${PID}/task`)) {
    try { ns += +fs.readFileSync(`/proc/${PID}/task/${t}/schedstat`, 'utf8').split(' ')[0]; } catch { /* gone */ }
  }
  return ns / 1e9;
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const doc = (i) => ({ _id: `d${String(i).padStart(8, '0')}`, _access: [`u${i % NUSERS}`], n: i, text: 'x'.repeat(100) });

async function pull(db) {
  const local = new PouchDB(`bench_${db}_${Date.now()}_${Math.random()}`, { adapter: 'memory' });
  const remote = new PouchDB(`${BASE}/${db}`, { skip_setup: true, auth: { username: USER, password: PW } });
  const c0 = cpu(), t0 = performance.now();
  const res = await local.replicate.from(remote);
  const secs = (performance.now() - t0) / 1000, cpus = cpu() - c0;
  if (res.docs_written !== PER) throw new Error(`${db}: pulled ${res.docs_written} docs, expected ${PER}`);
  await local.destroy();
  return { secs, cpus };
}

await req('PUT', `/_users/org.couchdb.user:${USER}`, { name: USER, password: PW, roles: [], type: 'user' });
await req('PUT', '/shared?access=true');
await req('PUT', '/own');
for (const db of ['shared', 'own']) await req('PUT', `/${db}/_security`, { members: { names: [USER], roles: [] } });
let t0 = performance.now();
const BATCH = 2000;
for (let i = 0; i < NDOCS; i += BATCH) {
  const docs = [];
  for (let k = i; k < Math.min(NDOCS, i + BATCH); k++) docs.push(doc(k));
  await req('POST', '/shared/_bulk_docs', { docs });
}
const loadSecs = (performance.now() - t0) / 1000;
const mine = [];
for (let i = 0; i < NDOCS; i += NUSERS) mine.push(doc(i));
await req('POST', '/own/_bulk_docs', { docs: mine });
console.log(`load: ${NDOCS} docs, ${NUSERS} users of ${PER} docs, in ${loadSecs.toFixed(1)} s`);

// the background indexer runs during the load; the first read waits for what is left
const userAuth = 'Basic ' + Buffer.from(`${USER}:${PW}`).toString('base64');
const c0 = cpu();
t0 = performance.now();
const first = await req('GET', '/shared/_changes?limit=1', undefined, userAuth);
const syncSecs = (performance.now() - t0) / 1000, syncCpu = cpu() - c0;
if (first.results.length !== 1) throw new Error('user sees nothing');
console.log(`access index: first read after the load waited: ${syncSecs.toFixed(2)} s, settee CPU ${syncCpu.toFixed(3)} s`);
// logical bytes per user: per doc one 's' entry (key 'A' 's' len principal seq, value flag id), one
// 'i' entry (key 'A' 'i' len principal id) and the doc's 'd' entry (key 'A' 'd' id, value seq n flag len principal)
const id = doc(0)._id, p = 'u0';
const perDoc = (2 + 1 + p.length + 8) + (1 + id.length) + (2 + 1 + p.length + id.length) + (2 + id.length) + (8 + 1 + 1 + 1 + p.length);
console.log(`access index: ${perDoc} bytes of keys and values per doc of a user, ${perDoc * PER} per user of ${PER} docs (on disk, before LevelDB's compression; nothing of it is held in memory)`);

// a user's _all_docs (id order) from each: the shared one is filtered while it scans
for (const db of ['shared', 'own']) {
  const c1 = cpu(), t1 = performance.now();
  const all = await req('GET', `/${db}/_all_docs`, undefined, userAuth);
  if (all.rows.length !== PER) throw new Error(`${db}: _all_docs gave ${all.rows.length} rows`);
  console.log(`_all_docs of the user in ${db}: ${((performance.now() - t1) / 1000).toFixed(3)} s, settee CPU ${(cpu() - c1).toFixed(3)} s`);
}

const res = { shared: [], own: [] };
for (let r = 0; r < ROUNDS; r++) for (const db of ['shared', 'own']) res[db].push(await pull(db));
const row = (db) => ({ secs: median(res[db].map((x) => x.secs)), cpus: median(res[db].map((x) => x.cpus)) });
const s = row('shared'), o = row('own');
console.log(`initial pull of ${PER} docs by PouchDB 9 (memory adapter), median of ${ROUNDS}`);
console.log(`  shared access db (${NDOCS} docs): ${s.secs.toFixed(3)} s wall, settee CPU ${s.cpus.toFixed(3)} s`);
console.log(`  own db (${PER} docs):            ${o.secs.toFixed(3)} s wall, settee CPU ${o.cpus.toFixed(3)} s`);
console.log(`  ratio shared/own: wall ${(s.secs / o.secs).toFixed(2)}x, CPU ${(s.cpus / o.cpus).toFixed(2)}x`);
