// The Mango benchmark (tools/bench/find.sh, i.e. run.sh find): a json index on
// type + ts answering _find, on one release settee and one pouchdb-server (fresh
// temp dirs, free ports, stopped by their pids; servers.mjs), and optionally on a
// CouchDB given by BENCH_FIND_COUCHDB=http://user:pass@127.0.0.1:5984.
//   1. load N ~1 KB docs (lib.mjs makeDoc) with type t00..t99 (i % 100) and ts = i,
//      _bulk_docs of 1000;
//   2. POST _index {"fields": ["type", "ts"]} and the first _find, timed together
//      (the whole index build): seconds and docs/s;
//   3. _find under 32 connections (wrk, 2 threads), limit 100, a random type per
//      request: by equality {"type": T} (sorted by [type, ts] descending: the newest
//      100 of a type; an index on [type, ts] serves {"type": T} only with ts in the
//      sort or the selector, in CouchDB as here) and by range {"type": T, "ts":
//      {"$gt": X}}: req/s and p50/p99 latency. Every answer is checked once before the run (100
//      docs, no "No matching index" warning).
// Environment (run.sh sets BENCH_TMP and BENCH_SETTEE):
//   BENCH_QUICK=1           10,000 docs and 3 s wrk runs: checks the harness, not speed
//   BENCH_FIND_DOCS=N       doc count (default 100000)
//   BENCH_FIND_TARGETS      comma list of settee,pouchdb (default both)
//   BENCH_FIND_COUCHDB=url  also run against that CouchDB
//   BENCH_FIND_OUT          markdown output (default build/bench-find.md)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { closeIdle, makeDoc, ok, parseTarget, request, runWrk } from './lib.mjs';
import * as servers from './servers.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const QUICK = process.env.BENCH_QUICK === '1';
const NDOCS = Number(process.env.BENCH_FIND_DOCS || (QUICK ? 10000 : 100000));
const NTYPES = 100;
const WRK_SECONDS = QUICK ? 3 : 10;
const TARGETS = (process.env.BENCH_FIND_TARGETS || 'settee,pouchdb').split(',').filter(Boolean);
const log = (msg) => process.stderr.write(msg + '\n');
const typeOf = (i) => 't' + String(i % NTYPES).padStart(2, '0');
const DB = 'bench_find';

async function load(t) {
    await request(t, 'DELETE', `/${DB}`);
    await ok(t, 'PUT', `/${DB}`);
    const t0 = performance.now();
    for (let i = 0; i < NDOCS; i += 1000) {
        const docs = [];
        for (let k = i; k < Math.min(NDOCS, i + 1000); k++) docs.push({ ...makeDoc(k), type: typeOf(k), ts: k });
        await ok(t, 'POST', `/${DB}/_bulk_docs`, { docs });
    }
    return (performance.now() - t0) / 1000;
}

// POST _index and the first _find: pouchdb-find builds on creation, settee and
// CouchDB on the first query.
async function build(t) {
    const t0 = performance.now();
    await ok(t, 'POST', `/${DB}/_index`, { index: { fields: ['type', 'ts'] }, ddoc: 'type-ts', name: 'type-ts' }, { timeoutMs: 3600000 });
    await ok(t, 'POST', `/${DB}/_find`, { selector: { type: 't00', ts: { $gte: 0 } }, limit: 1 }, { timeoutMs: 3600000 });
    const secs = (performance.now() - t0) / 1000;
    return { secs, docsPerSec: NDOCS / secs };
}

// One answer of each kind, checked: the benchmark measures right answers only.
async function check(t) {
    const EQ_SORT = [{ type: 'desc' }, { ts: 'desc' }];
    for (const sel of [{ type: 't07' }, { type: 't07', ts: { $gt: Math.floor(NDOCS / 2) } }]) {
        const r = await ok(t, 'POST', `/${DB}/_find`, { selector: sel, limit: 100, ...(sel.ts ? {} : { sort: EQ_SORT }) });
        const body = JSON.parse(r.body.toString('utf8'));
        const want = Math.min(100, sel.ts ? Math.floor((NDOCS - Math.floor(NDOCS / 2)) / NTYPES) : NDOCS / NTYPES);
        if (!body || body.docs.length !== want) throw new Error(`${t.name}: ${JSON.stringify(sel)} gave ${body?.docs?.length} docs, want ${want}`);
        if (body.docs.some((d) => d.type !== 't07' || (sel.ts && !(d.ts > sel.ts.$gt)))) throw new Error(`${t.name}: a wrong doc for ${JSON.stringify(sel)}`);
        if (/No matching index/.test(body.warning || '')) throw new Error(`${t.name}: no index used: ${body.warning}`);
    }
}

const wrk = (t, mode) => runWrk(t, path.join(HERE, 'wrk-find.lua'), {
    BENCH_WRK_DB: DB, BENCH_WRK_NTYPES: String(NTYPES), BENCH_WRK_NDOCS: String(NDOCS),
    BENCH_WRK_FINDMODE: mode, BENCH_WRK_AUTH: t.auth || '', BENCH_WRK_PREFIX: t.prefix || '',
}, WRK_SECONDS);

async function runOn(t, name) {
    t.name = name;
    log(`find: ${name}: loading ${NDOCS} docs`);
    const loadSecs = await load(t);
    log(`find: ${name}: building the index`);
    const b = await build(t);
    await check(t);
    log(`find: ${name}: index built in ${b.secs.toFixed(1)} s; _find under 32 connections`);
    const eq = await wrk(t, 'eq');
    const range = await wrk(t, 'range');
    return { name, loadSecs, build: b, eq, range };
}

const started = performance.now();
const results = await servers.runEach(TARGETS, runOn, closeIdle);
if (process.env.BENCH_FIND_COUCHDB) {
    results.push(await runOn({ ...parseTarget(process.env.BENCH_FIND_COUCHDB) }, 'CouchDB'));
    closeIdle();
}

const f0 = (x) => x.toFixed(0), f1 = (x) => x.toFixed(1);
const row = (label, fn) => `| ${label} | ` + results.map(fn).join(' | ') + ' |';
const md = ['# Mango _find benchmark (tools/bench/find.sh)', '',
    `${new Date().toISOString()}, commit ${process.env.BENCH_COMMIT || '?'}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model || '?'}), load ${os.loadavg()[0].toFixed(2)} at the end; ${NDOCS} docs of ~1 KB, ${NTYPES} types, a json index on [type, ts]; wrk -t2 -c32 -d${WRK_SECONDS}s, limit 100.`, '',
    '| | ' + results.map((r) => r.name).join(' | ') + ' |', '|---|' + results.map(() => '---:|').join(''),
    row('load (s)', (r) => f1(r.loadSecs)),
    row('index build (s)', (r) => f1(r.build.secs)),
    row('index build (docs/s)', (r) => f0(r.build.docsPerSec)),
    row('_find type = T, newest first: req/s', (r) => f0(r.eq.rps)),
    row('_find type = T, newest first: p50 / p99 (ms)', (r) => `${f1(r.eq.p50)} / ${f1(r.eq.p99)}`),
    row('_find type = T, ts > X: req/s', (r) => f0(r.range.rps)),
    row('_find type = T, ts > X: p50 / p99 (ms)', (r) => `${f1(r.range.p50)} / ${f1(r.range.p99)}`),
    '', `wrk errors: ${results.map((r) => `${r.name} ${r.eq.errors + r.range.errors}`).join(', ')}. Run time ${((performance.now() - started) / 1000).toFixed(0)} s.`, ''];
const out = process.env.BENCH_FIND_OUT || path.join(ROOT, 'build', 'bench-find.md');
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, md.join('\n'));
process.stdout.write(md.join('\n'));
