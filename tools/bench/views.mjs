// The view benchmark (make bench-views, i.e. run.sh views): settee's view index on
// issue 12's workload, on one release settee and one pouchdb-server on 127.0.0.1
// (fresh temp data dirs, free ports, stopped by their pids; servers.mjs), one after
// the other, and optionally on a CouchDB given by
// BENCH_VIEWS_COUCHDB=http://user:pass@127.0.0.1:5984 (the same steps, its own db).
//   1. load N ~1 KB docs (tools/bench/lib.mjs makeDoc, `type` set to one of 1000
//      values, 100 docs each) with _bulk_docs of 1000;
//   2. build: PUT a design doc with function(doc){ emit(doc.type, 1) } + _count and
//      time the first query (the whole build): docs/s; the server's RSS (settee's
//      and its query-server processes') is sampled every 100 ms during the build;
//   3. a 10,000-row range (100 types), reduce=false, repeated: rows/s (median);
//      the same range reduced with group=true (100 rows);
//   4. single-key lookups under 32 connections (wrk, 2 threads): ?key="tNNNN"
//      with a random key per request, reduce=false&limit=10, and the reduced form
//      (group=true, one row): req/s and p50/p99 latency;
//   5. the whole view, reduce=false (N rows in one answer): ms, and the server's
//      peak RSS while it is sent (what a streamed answer costs);
//   6. catching up after writes: 10,000 more docs (_bulk_docs of 1000), 3 s of quiet,
//      then how many rows an update=false query is missing and how long the next
//      update=true query takes. On settee twice: with its background indexer (the
//      default) and with [settee] view_background_index = false (set through _config).
//   7. what a validate_doc_update costs _bulk_docs (vdu.mjs on the same server: its
//      docs/s without and with a validator, and the slowdown; issue 12's goal: < 30%);
// Environment (run.sh sets BENCH_TMP and BENCH_SETTEE):
//   BENCH_QUICK=1            10,000 docs and short wrk runs: checks the harness, not speed
//   BENCH_VIEWS_DOCS=N       doc count (default 100000)
//   BENCH_VIEWS_COUCHDB=url  also run against that CouchDB
//   BENCH_VIEWS_TARGETS      comma list of settee,pouchdb (default both)
//   BENCH_VIEWS_OUT          markdown output (default build/bench-views.md)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { closeIdle, makeDoc, median, memOf, ok, parseTarget, request, runWrk, sleep } from './lib.mjs';
import * as servers from './servers.mjs';
import { execFile } from 'node:child_process';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const QUICK = process.env.BENCH_QUICK === '1';
const NDOCS = Number(process.env.BENCH_VIEWS_DOCS || (QUICK ? 10000 : 100000));
const NTYPES = 1000;
const WRK_SECONDS = QUICK ? 3 : 10;
const RANGE_RUNS = QUICK ? 3 : 10;
const log = (msg) => process.stderr.write(msg + '\n');
const typeOf = (i) => 't' + String(i % NTYPES).padStart(4, '0');
const DB = 'bench_views';
const TARGETS = (process.env.BENCH_VIEWS_TARGETS || 'settee,pouchdb').split(',').filter(Boolean);
const EXTRA = QUICK ? 2000 : 10000;

// RSS of a process and of its children (the query servers), in bytes.
function treeRss(pid) {
    let self = 0, kids = 0;
    try { self = memOf(pid).rss; } catch { return { self, kids }; }
    let children = [];
    try {
        for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
            children = children.concat(fs.readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim().split(/\s+/).filter(Boolean));
        }
    } catch { /* no children file: kernel without it */ }
    for (const c of children) { try { kids += memOf(Number(c)).rss; } catch { /* exited */ } }
    return { self, kids };
}

async function load(t) {
    await request(t, 'DELETE', `/${DB}`);
    await ok(t, 'PUT', `/${DB}`);
    const t0 = performance.now();
    for (let i = 0; i < NDOCS; i += 1000) {
        const docs = [];
        for (let k = i; k < Math.min(NDOCS, i + 1000); k++) docs.push({ ...makeDoc(k), type: typeOf(k) });
        await ok(t, 'POST', `/${DB}/_bulk_docs`, { docs });
    }
    return (performance.now() - t0) / 1000;
}

// Samples the RSS of t's server (and its children) every 100 ms until stop().
function rssSampler(t) {
    const peak = { self: 0, kids: 0, total: 0 };
    let sampling = t.pid !== undefined;
    const loop = (async () => {
        while (sampling) {
            const m = treeRss(t.pid);
            if (m.self + m.kids > peak.total) Object.assign(peak, m, { total: m.self + m.kids });
            await sleep(100);
        }
    })();
    return { peak, async stop() { sampling = false; await loop; return peak; } };
}

async function build(t) {
    await ok(t, 'PUT', `/${DB}/_design/b`, { views: { by_type: { map: 'function(doc){ emit(doc.type, 1) }', reduce: '_count' } } });
    const before = t.pid !== undefined ? treeRss(t.pid) : null;
    const sampler = rssSampler(t);
    const r = await ok(t, 'GET', `/${DB}/_design/b/_view/by_type?limit=1&reduce=false`, null, { timeoutMs: 3600000 });
    const peak = await sampler.stop();
    const secs = r.ms / 1000;
    return { secs, docsPerSec: NDOCS / secs, before, peak };
}

// The whole view in one answer, reduce=false: time and the server's peak RSS.
async function wholeMap(t) {
    const before = t.pid !== undefined ? treeRss(t.pid) : null;
    const sampler = rssSampler(t);
    const ms = [];
    let rows = 0;
    for (let i = 0; i < (QUICK ? 2 : 3); i++) {
        const r = await ok(t, 'GET', `/${DB}/_design/b/_view/by_type?reduce=false`, null, { timeoutMs: 600000 });
        rows = JSON.parse(r.body).rows.length;
        ms.push(r.ms);
    }
    const peak = await sampler.stop();
    return { rows, ms: median(ms), before, peak };
}

// EXTRA more docs, 3 s of quiet, then the lag of update=false and the cost of update=true.
let extraFrom = NDOCS;
async function catchUp(t) {
    const t0 = performance.now();
    for (let i = 0; i < EXTRA; i += 1000) {
        const docs = [];
        for (let k = extraFrom + i; k < extraFrom + Math.min(EXTRA, i + 1000); k++) docs.push({ ...makeDoc(k), type: typeOf(k) });
        await ok(t, 'POST', `/${DB}/_bulk_docs`, { docs });
    }
    const loadSecs = (performance.now() - t0) / 1000;
    extraFrom += EXTRA;
    await sleep(3000);
    const stale = JSON.parse((await ok(t, 'GET', `/${DB}/_design/b/_view/by_type?update=false&reduce=false&limit=0`)).body);
    const fresh = await ok(t, 'GET', `/${DB}/_design/b/_view/by_type?reduce=false&limit=0`, null, { timeoutMs: 600000 });
    const total = JSON.parse(fresh.body).total_rows;
    return { loadSecs, missing: total - stale.total_rows, updateMs: fresh.ms };
}

// vdu.mjs against t: docs/s without and with a validator.
function vdu(t) {
    const env = { ...process.env, COUCH_URL: t.url, DOCS: QUICK ? '4000' : '20000', ROUNDS: QUICK ? '1' : '3' };
    return new Promise((resolve, reject) => {
        execFile(process.execPath, [path.join(HERE, 'vdu.mjs')], { env, timeout: 1800000 }, (err, stdout) => {
            if (err) return reject(err);
            const num = (re) => Number((stdout.match(re) || [])[1]);
            resolve({ plain: num(/without a validator:\s+(\d+)/), with: num(/with a validator:\s+(\d+)/), slowdown: num(/slowdown: (-?[\d.]+)%/) });
        });
    });
}

async function setBackground(t, on) {
    await ok(t, 'PUT', '/_node/_local/_config/settee/view_background_index', JSON.stringify(on ? 'true' : 'false'));
}

async function range(t) {
    const a = typeOf(100), b = typeOf(199);
    const path1 = `/${DB}/_design/b/_view/by_type?reduce=false&startkey=%22${a}%22&endkey=%22${b}%22`;
    const ms = [];
    let rows = 0;
    for (let i = 0; i < RANGE_RUNS; i++) {
        const r = await ok(t, 'GET', path1);
        rows = JSON.parse(r.body).rows.length;
        ms.push(r.ms);
    }
    const grouped = [];
    for (let i = 0; i < RANGE_RUNS; i++) {
        grouped.push((await ok(t, 'GET', `/${DB}/_design/b/_view/by_type?group=true&startkey=%22${a}%22&endkey=%22${b}%22`)).ms);
    }
    const whole = [], wholeGrouped = [];
    for (let i = 0; i < RANGE_RUNS; i++) {
        whole.push((await ok(t, 'GET', `/${DB}/_design/b/_view/by_type`)).ms);
        wholeGrouped.push((await ok(t, 'GET', `/${DB}/_design/b/_view/by_type?group=true`)).ms);
    }
    return { rows, ms: median(ms), rowsPerSec: rows / (median(ms) / 1000), groupedMs: median(grouped), wholeMs: median(whole), wholeGroupedMs: median(wholeGrouped) };
}

const wrk = (t, mode) => runWrk(t, path.join(HERE, 'wrk-view.lua'), {
    BENCH_WRK_DB: DB, BENCH_WRK_NTYPES: String(NTYPES), BENCH_WRK_VIEWMODE: mode,
    BENCH_WRK_AUTH: t.auth || '', BENCH_WRK_PREFIX: t.prefix || '',
}, WRK_SECONDS);

async function runOn(t, name) {
    log(`views: ${name}: loading ${NDOCS} docs`);
    const loadSecs = await load(t);
    log(`views: ${name}: building the view`);
    const b = await build(t);
    log(`views: ${name}: ${b.docsPerSec.toFixed(0)} docs/s; range queries`);
    const rg = await range(t);
    log(`views: ${name}: lookups under 32 connections`);
    const lookup = await wrk(t, 'map');
    const lookupReduced = await wrk(t, 'reduce');
    log(`views: ${name}: the whole view, reduce=false`);
    const whole = await wholeMap(t);
    log(`views: ${name}: catching up after ${EXTRA} writes`);
    const caught = await catchUp(t);
    let caughtOff = null;
    if (name === 'settee') {
        await setBackground(t, false);
        caughtOff = await catchUp(t);
        await setBackground(t, true);
    }
    log(`views: ${name}: validate_doc_update on _bulk_docs (vdu.mjs)`);
    const v = await vdu(t);
    return { name, loadSecs, build: b, range: rg, lookup, lookupReduced, whole, caught, caughtOff, vdu: v };
}

const mb = (b) => (b / 1048576).toFixed(0);
const started = performance.now();
const results = await servers.runEach(TARGETS, runOn, closeIdle);
if (process.env.BENCH_VIEWS_COUCHDB) {
    const c = { ...parseTarget(process.env.BENCH_VIEWS_COUCHDB) };
    results.push(await runOn(c, 'CouchDB'));
    closeIdle();
}

const md = [`# View index benchmark (make bench-views)`, '',
    `${new Date().toISOString()}, commit ${process.env.BENCH_COMMIT || '?'}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model || '?'}), load ${os.loadavg()[0].toFixed(2)} at the end; ${NDOCS} docs of ~1 KB, ${NTYPES} distinct keys; map \`function(doc){ emit(doc.type, 1) }\` + \`_count\`.`, '',
    '| | ' + results.map((r) => r.name).join(' | ') + ' |', '|---|' + results.map(() => '---:|').join(''),
    '| load (_bulk_docs of 1000), s | ' + results.map((r) => r.loadSecs.toFixed(1)).join(' | ') + ' |',
    '| view build, s | ' + results.map((r) => r.build.secs.toFixed(1)).join(' | ') + ' |',
    '| **build, docs/s** | ' + results.map((r) => r.build.docsPerSec.toFixed(0)).join(' | ') + ' |',
    '| peak RSS during the build, MB (server + query servers) | ' + results.map((r) => r.build.peak.total ? `${mb(r.build.peak.total)} (${mb(r.build.peak.self)} + ${mb(r.build.peak.kids)})` : 'n/a').join(' | ') + ' |',
    '| RSS before the build, MB | ' + results.map((r) => r.build.before ? `${mb(r.build.before.self + r.build.before.kids)}` : 'n/a').join(' | ') + ' |',
    `| ${results[0].range.rows}-row range (reduce=false), ms (median of ${RANGE_RUNS}) | ` + results.map((r) => r.range.ms.toFixed(1)).join(' | ') + ' |',
    '| **range, rows/s** | ' + results.map((r) => r.range.rowsPerSec.toFixed(0)).join(' | ') + ' |',
    '| same range reduced, group=true (100 rows), ms | ' + results.map((r) => r.range.groupedMs.toFixed(1)).join(' | ') + ' |',
    `| whole view reduced (one row), ms | ` + results.map((r) => r.range.wholeMs.toFixed(1)).join(' | ') + ' |',
    `| whole view, group=true (${NTYPES} rows), ms | ` + results.map((r) => r.range.wholeGroupedMs.toFixed(1)).join(' | ') + ' |',
    `| single-key lookup, reduce=false&limit=10, 32 conns: req/s | ` + results.map((r) => r.lookup.rps.toFixed(0)).join(' | ') + ' |',
    '| … p50 / **p99**, ms | ' + results.map((r) => `${r.lookup.p50.toFixed(2)} / ${r.lookup.p99.toFixed(2)}`).join(' | ') + ' |',
    `| single-key lookup reduced (group=true), 32 conns: req/s | ` + results.map((r) => r.lookupReduced.rps.toFixed(0)).join(' | ') + ' |',
    '| … p50 / **p99**, ms | ' + results.map((r) => `${r.lookupReduced.p50.toFixed(2)} / ${r.lookupReduced.p99.toFixed(2)}`).join(' | ') + ' |',
    `| whole view, reduce=false (${results[0].whole.rows} rows), ms | ` + results.map((r) => r.whole.ms.toFixed(0)).join(' | ') + ' |',
    '| … peak RSS while sent, MB (before) | ' + results.map((r) => r.whole.peak.total ? `${mb(r.whole.peak.total)} (${mb(r.whole.before.self + r.whole.before.kids)})` : 'n/a').join(' | ') + ' |',
    `| ${EXTRA} more docs, 3 s later: rows update=false is missing | ` + results.map((r) => String(r.caught.missing)).join(' | ') + ' |',
    '| … then update=true, ms | ' + results.map((r) => r.caught.updateMs.toFixed(0)).join(' | ') + ' |',
    `| the same, background indexer off: rows missing / update=true ms | ` + results.map((r) => r.caughtOff ? `${r.caughtOff.missing} / ${r.caughtOff.updateMs.toFixed(0)}` : 'n/a').join(' | ') + ' |',
    `| … load of the ${EXTRA} docs, s (indexer on / off) | ` + results.map((r) => r.caughtOff ? `${r.caught.loadSecs.toFixed(2)} / ${r.caughtOff.loadSecs.toFixed(2)}` : r.caught.loadSecs.toFixed(2)).join(' | ') + ' |',
    '| _bulk_docs (500 docs, 4 clients) docs/s, without / with a validator | ' + results.map((r) => `${r.vdu.plain} / ${r.vdu.with}`).join(' | ') + ' |',
    '| … **validator slowdown** | ' + results.map((r) => `${r.vdu.slowdown.toFixed(1)}%`).join(' | ') + ' |',
    '', `wrk errors: ${results.map((r) => `${r.name} ${r.lookup.errors + r.lookupReduced.errors}`).join(', ')}. Run time ${((performance.now() - started) / 1000).toFixed(0)} s.`, ''];
const outFile = process.env.BENCH_VIEWS_OUT || path.join(ROOT, 'build/bench-views.md');
fs.mkdirSync(path.dirname(outFile), { recursive: true });
fs.writeFileSync(outFile, md.join('\n'));
process.stdout.write(md.join('\n'));
log(`views: written to ${outFile}`);
