// The replicator benchmark (issue 11), run by replicate.sh (make bench-replicate), which sets
// up the tools, a private copy of build/settee and the temp dir.
//   1. N 1 KB docs (default 100,000) replicated one-shot with POST /_replicate:
//        settee → settee over HTTP (the source's server drives: a push),
//        local → local (two database names of one settee: no HTTP at all),
//        pouchdb-server → pouchdb-server over HTTP (the peer figure),
//        CouchDB → CouchDB when BENCH_REPL_COUCH names one;
//      each the median of a few runs (a fresh target each run), with the servers' CPU
//      seconds read from /proc over the run.
//   2. J continuous jobs between local databases (default 1,000) on one settee:
//      RSS per idle job (RSS with the jobs running and idle, minus RSS with the same
//      databases and no jobs, divided by J), the servers' CPU while idle, and the
//      time from a write on a source to its arrival on the target while all jobs idle
//      (one write at a time on a random job; arrival seen by a longpoll _changes on the
//      target opened before the write): p50, p99, max.
//
// Environment (the defaults are the figures; a run takes some minutes):
//   BENCH_REPL_DOCS=N       docs of part 1 (default 100000)
//   BENCH_REPL_RUNS=N       runs per pair, the median is reported (default 3)
//   BENCH_REPL_JOBS=N       continuous jobs of part 2 (default 1000; 0 skips part 2)
//   BENCH_REPL_SAMPLES=N    latency samples of part 2 (default 300)
//   BENCH_REPL_POUCH=0      leave pouchdb-server out
//   BENCH_REPL_COUCH=url    a CouchDB (http://admin:pw@host:port) to add CouchDB → CouchDB
//                           (source and target dbs on it); BENCH_REPL_COUCH_PID=pid adds its CPU
//   BENCH_REPL_TIMEOUT_S=N  bound of one replication (default 900)
//   BENCH_QUICK=1           10,000 docs, 1 run, 100 jobs, 50 samples: checks the harness
//   BENCH_OUT               where the markdown goes (default build/bench-replicate.md)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { closeIdle, cpuOf, makeDocs, median, memOf, ok, parseTarget, request, sleep } from './lib.mjs';
import * as servers from './servers.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const QUICK = process.env.BENCH_QUICK === '1';
const env = (k, d) => (process.env[k] !== undefined && process.env[k] !== '' ? Number(process.env[k]) : d);
const cfg = {
    docs: env('BENCH_REPL_DOCS', QUICK ? 10000 : 100000),
    runs: env('BENCH_REPL_RUNS', QUICK ? 1 : 3),
    jobs: env('BENCH_REPL_JOBS', QUICK ? 100 : 1000),
    samples: env('BENCH_REPL_SAMPLES', QUICK ? 50 : 300),
    timeoutMs: env('BENCH_REPL_TIMEOUT_S', 900) * 1000,
    pouch: process.env.BENCH_REPL_POUCH !== '0',
};
const OUT = process.env.BENCH_OUT || path.join(ROOT, 'build/bench-replicate.md');
const log = (msg) => process.stderr.write(msg + '\n');
const notes = [];
const rows = [];
const fmt = (x, d = 1) => (x === undefined || x === null || Number.isNaN(x) ? '—' : x.toFixed(d));

// ---- part 1 ----------------------------------------------------------------------

async function fill(target, db, count) {
    await ok(target, 'PUT', `/${db}`);
    for (let i = 0; i < count; i += 1000) {
        const r = await ok(target, 'POST', `/${db}/_bulk_docs`, { docs: makeDocs(i, Math.min(1000, count - i)) });
        const bad = JSON.parse(r.body).find((x) => x.error);
        if (bad) throw new Error(`filling ${db}: ${JSON.stringify(bad)}`);
    }
}

// the docs written, from CouchDB's history or PouchDB's top level
function written(json) {
    if (Array.isArray(json.history) && json.history[0] && json.history[0].docs_written !== undefined) return json.history[0].docs_written;
    return json.docs_written;
}

// One replication timed: {seconds, cpu (servers' CPU seconds, when their pids are known)}
async function timed(driver, body, pids, check) {
    const cpu0 = pids.map(cpuOf);
    const t0 = performance.now();
    const r = await request(driver, 'POST', '/_replicate', body, { timeoutMs: cfg.timeoutMs });
    const seconds = (performance.now() - t0) / 1000;
    const cpu = pids.length ? pids.map(cpuOf).reduce((s, c, i) => s + c - cpu0[i], 0) : undefined;
    if (r.status !== 200) throw new Error(`_replicate -> ${r.status} ${r.body.toString().slice(0, 300)}`);
    const json = JSON.parse(r.body);
    const n = written(json);
    if (n !== cfg.docs) throw new Error(`_replicate wrote ${n} docs, expected ${cfg.docs}: ${r.body.toString().slice(0, 300)}`);
    if (check) await check();
    return { seconds, cpu };
}

async function pair(name, driver, makeBody, pids, check) {
    const res = [];
    for (let run = 1; run <= cfg.runs; run++) {
        try {
            const x = await timed(driver, makeBody(run), pids, () => check && check(run));
            log(`  ${name} run ${run}: ${x.seconds.toFixed(2)} s, ${x.cpu === undefined ? '?' : x.cpu.toFixed(2)} CPU s`);
            res.push(x);
        } catch (e) {
            notes.push(`${name}: ${e.message.trim().replace(/\s*\n\s*/g, " ")}`);
            log(`  ${name} run ${run}: failed: ${e.message}`);
            break;
        }
    }
    if (!res.length) { rows.push({ name, failed: true }); return; }
    const s = median(res.map((x) => x.seconds));
    const cpu = res[0].cpu === undefined ? undefined : median(res.map((x) => x.cpu));
    rows.push({ name, seconds: s, docsPerSec: cfg.docs / s, cpu, runs: res.length });
}

const docCount = async (target, db) => JSON.parse((await ok(target, 'GET', `/${db}`)).body).doc_count;
const expectCount = (target, dbOf) => async (run) => {
    const n = await docCount(target, dbOf(run));
    if (n !== cfg.docs) throw new Error(`${dbOf(run)} holds ${n} docs, expected ${cfg.docs}`);
};

async function part1() {
    log(`part 1: ${cfg.docs} docs of 1 KB, ${cfg.runs} run(s) per pair`);
    const [a, b] = await Promise.all([servers.start('settee'), servers.start('settee')]);
    await fill(a, 'src', cfg.docs);
    await pair('settee → settee (HTTP, push)', a,
        (run) => ({ source: `${a.url}/src`, target: `${b.url}/http_${run}`, create_target: true }), [a.pid, b.pid],
        expectCount(b, (run) => `http_${run}`));
    await pair('settee local → local', a,
        (run) => ({ source: 'src', target: `local_${run}`, create_target: true }), [a.pid],
        expectCount(a, (run) => `local_${run}`));
    closeIdle();
    await Promise.all([a.stop(), b.stop()]);

    if (cfg.pouch) {
        const pouchName = servers.POUCH_IN_MEMORY ? 'pouchdb-server (in-memory)' : 'pouchdb-server';
        const [p, q] = await Promise.all([servers.start('pouchdb-server'), servers.start('pouchdb-server')]);
        await fill(p, 'src', cfg.docs);
        await pair(`${pouchName} → ${pouchName} (HTTP)`, p,
            (run) => ({ source: `${p.url}/src`, target: `${q.url}/http_${run}` }), [p.pid, q.pid],
            expectCount(q, (run) => `http_${run}`));
        closeIdle();
        await Promise.all([p.stop(), q.stop()]);
    }

    if (process.env.BENCH_REPL_COUCH) {
        const c = { name: 'couchdb', ...parseTarget(process.env.BENCH_REPL_COUCH) };
        const pid = process.env.BENCH_REPL_COUCH_PID ? [Number(process.env.BENCH_REPL_COUCH_PID)] : [];
        const tag = 'benchrepl_' + Date.now().toString(36);
        await fill(c, `${tag}_src`, cfg.docs);
        await pair('CouchDB → CouchDB (HTTP)', c,
            (run) => ({ source: `${c.url}/${tag}_src`, target: `${c.url}/${tag}_t${run}`, create_target: true }), pid,
            expectCount(c, (run) => `${tag}_t${run}`));
        for (let run = 1; run <= cfg.runs; run++) await request(c, 'DELETE', `/${tag}_t${run}`);
        await request(c, 'DELETE', `/${tag}_src`);
    }
}

// ---- part 2 ----------------------------------------------------------------------

function percentile(xs, p) {
    const s = [...xs].sort((x, y) => x - y);
    return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

async function part2() {
    const J = cfg.jobs;
    log(`part 2: ${J} continuous local jobs`);
    // CouchDB's max_jobs (500 by default) would rotate the jobs: here all of them run
    const s = await servers.start('settee', { ini: `[replicator]\nmax_jobs = ${J + 100}\n` });
    for (let i = 0; i < J; i++) {
        await ok(s, 'PUT', `/js_${i}`);
        await ok(s, 'PUT', `/jt_${i}`);
    }
    await sleep(2000);
    const rss0 = memOf(s.pid).rss;
    const t0 = performance.now();
    for (let i = 0; i < J; i++) {
        const r = await request(s, 'POST', '/_replicate', { source: `js_${i}`, target: `jt_${i}`, continuous: true });
        if (r.status !== 202 && r.status !== 200) {
            notes.push(`continuous job ${i}: _replicate -> ${r.status} ${r.body.toString().slice(0, 200).trim()}`);
            await s.stop();
            return;
        }
    }
    const started = (performance.now() - t0) / 1000;
    // all running: _scheduler/jobs lists them, none pending
    const deadline = Date.now() + 300000;
    let jobs;
    for (;;) {
        const r = await request(s, 'GET', `/_scheduler/jobs?limit=${J + 10}`);
        jobs = r.status === 200 ? JSON.parse(r.body) : null;
        if (jobs && jobs.total_rows >= J) break;
        if (Date.now() > deadline) { notes.push(`only ${jobs ? jobs.total_rows : '?'} of ${J} jobs in _scheduler/jobs after 300 s`); break; }
        await sleep(500);
    }
    await sleep(5000);
    closeIdle();
    const rss1 = memOf(s.pid).rss;
    const cpuIdle0 = cpuOf(s.pid);
    await sleep(10000);
    const idleCpu = (cpuOf(s.pid) - cpuIdle0) / 10;

    // write-to-arrival latency, one write at a time
    const lat = [];
    for (let k = 0; k < cfg.samples; k++) {
        const i = Math.floor(Math.random() * J);
        const info = JSON.parse((await ok(s, 'GET', `/jt_${i}`)).body);
        const since = encodeURIComponent(typeof info.update_seq === 'string' ? info.update_seq : String(info.update_seq));
        const feed = request(s, 'GET', `/jt_${i}/_changes?feed=longpoll&since=${since}&timeout=30000`, null, { timeoutMs: 40000 });
        await sleep(5); // the longpoll is registered before the write
        const w0 = performance.now();
        await ok(s, 'PUT', `/js_${i}/lat_${k}`, { k, at: Date.now() });
        const r = await feed;
        const ms = performance.now() - w0;
        const res = JSON.parse(r.body).results || [];
        if (!res.some((x) => x.id === `lat_${k}`)) { notes.push(`latency sample ${k}: lat_${k} did not arrive within 30 s`); lat.push(30000); continue; }
        lat.push(ms);
    }
    const rss2 = memOf(s.pid).rss;
    closeIdle();
    await s.stop();
    return {
        jobs: J, started, rssNoJobs: rss0, rssJobs: rss1, perJob: (rss1 - rss0) / J, rssAfterLatency: rss2, idleCpu,
        p50: percentile(lat, 50), p99: percentile(lat, 99), max: Math.max(...lat), samples: lat.length,
    };
}

// ---- run ---------------------------------------------------------------------------

const t0 = performance.now();
const load0 = os.loadavg()[0];
let jobs;
try {
    await part1();
    if (cfg.jobs > 0) jobs = await part2();
} catch (e) {
    notes.push(`aborted: ${e.stack || e.message}`);
}
const cmd = `make bench-replicate${QUICK ? ' BENCH_QUICK=1' : ''}` +
    ['BENCH_REPL_DOCS', 'BENCH_REPL_RUNS', 'BENCH_REPL_JOBS', 'BENCH_REPL_SAMPLES', 'BENCH_REPL_POUCH']
        .filter((k) => process.env[k]).map((k) => ` ${k}=${process.env[k]}`).join('');
const lines = [];
lines.push(`# Replicator benchmark`, '');
lines.push(`Command: \`${cmd}\` — settee ${process.env.BENCH_COMMIT || '?'}, ${new Date().toISOString()}, ` +
    `${os.cpus().length} CPUs, load ${load0.toFixed(2)} at start, ${((performance.now() - t0) / 1000).toFixed(0)} s in all; node ${process.version}.`, '');
lines.push(`## ${cfg.docs} docs of 1 KB, one-shot \`POST /_replicate\` (median of ${cfg.runs})`, '');
lines.push('| pair | seconds | docs/s | servers\' CPU s |', '|---|---:|---:|---:|');
for (const r of rows) {
    if (r.failed) lines.push(`| ${r.name} | failed | | |`);
    else lines.push(`| ${r.name} | ${fmt(r.seconds, 2)} | ${fmt(r.docsPerSec, 0)} | ${fmt(r.cpu, 2)} |`);
}
lines.push('');
if (jobs) {
    lines.push(`## ${jobs.jobs} continuous jobs between local databases`, '');
    lines.push('| figure | value |', '|---|---:|');
    lines.push(`| RSS with ${jobs.jobs * 2} dbs, no jobs | ${fmt(jobs.rssNoJobs / 1048576)} MB |`);
    lines.push(`| RSS with the jobs running, idle | ${fmt(jobs.rssJobs / 1048576)} MB |`);
    lines.push(`| **RSS per idle job** | **${fmt(jobs.perJob / 1024)} KB** |`);
    lines.push(`| CPU while all idle | ${fmt(jobs.idleCpu * 100, 2)} % of a core |`);
    lines.push(`| starting the jobs (${jobs.jobs} POSTs) | ${fmt(jobs.started, 1)} s |`);
    lines.push(`| write → arrival p50 (${jobs.samples} samples) | ${fmt(jobs.p50, 1)} ms |`);
    lines.push(`| **write → arrival p99** | **${fmt(jobs.p99, 1)} ms** |`);
    lines.push(`| write → arrival max | ${fmt(jobs.max, 1)} ms |`);
    lines.push('');
}
if (notes.length) lines.push('Notes:', '', ...notes.map((n) => `- ${n}`), '');
const md = lines.join('\n');
process.stdout.write(md + '\n');
fs.mkdirSync(path.dirname(OUT), { recursive: true });
fs.writeFileSync(OUT, md + '\n');
log(`written to ${OUT}`);
process.exit(notes.some((n) => n.startsWith('aborted')) ? 1 : 0);
