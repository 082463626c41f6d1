// The benchmark driver (run by run.sh, which sets up the tools and the temp dir).
// Runs every workload of issue 6 against each target, alternating targets and
// their order round by round (the machine is shared and noisy: figures drift, the
// ratios measured side by side hold), then prints one table of medians and writes
// it as markdown.
//
// Environment:
//   BENCH_QUICK=1      a small run, under a minute (1 round, 1k docs, 1 s of wrk per
//                      mode, 200 dbs, 100 longpoll clients): checks the harness, not speed
//   BENCH_ROUNDS=N     override the number of rounds
//   BENCH_TARGETS      "name=url name=url": benchmark these servers instead of
//                      starting settee and pouchdb-server; figures read from /proc
//                      (RSS, CPU, disk) are then left out
//   BENCH_OUT          where the markdown goes (default: BENCHMARKS.md at the repo
//                      root for a full run, build/bench-quick.md for a quick one, so
//                      a quick run never replaces the published figures)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { closeIdle, diskUsage, makeDocs, median, memOf, ok, parseTarget, resetPeak, sleep } from './lib.mjs';
import * as servers from './servers.mjs';
import * as w from './workloads.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const QUICK = process.env.BENCH_QUICK === '1';

const cfg = QUICK
    ? { rounds: 1, docs: 1000, wrkSeconds: 1, dbs: 200, longpoll: 100, replicateTimeout: 60, dbsTimeout: 30, longpollOpenTimeout: 20, longpollTimeout: 10 }
    : { rounds: 3, docs: 100000, wrkSeconds: 20, dbs: 10000, longpoll: 10000, replicateTimeout: 600, dbsTimeout: 600, longpollOpenTimeout: 120, longpollTimeout: 60 };
if (process.env.BENCH_ROUNDS) cfg.rounds = Number(process.env.BENCH_ROUNDS);
// Workload 1's request bodies, built once for every target and round.
cfg.bulkBodies = [];
for (let i = 0; i < cfg.docs; i += 1000) cfg.bulkBodies.push(JSON.stringify({ docs: makeDocs(i, Math.min(1000, cfg.docs - i)) }));
cfg.smallDocs = makeDocs(0, 10);

// Remote targets are used as they are; local ones are started fresh per phase.
const remote = (process.env.BENCH_TARGETS || '').trim().split(/\s+/).filter(Boolean).map((spec) => {
    const eq = spec.indexOf('=');
    if (eq < 1) throw new Error(`BENCH_TARGETS entry "${spec}" is not name=url`);
    return { name: spec.slice(0, eq), ...parseTarget(spec.slice(eq + 1)) };
});
const LOCAL = remote.length === 0;
const POUCH = servers.POUCH_IN_MEMORY ? 'pouchdb-server (in-memory)' : 'pouchdb-server';
const names = LOCAL ? ['settee', POUCH] : remote.map((t) => t.name);
// Database names are unique to this run so a shared remote server is never confused.
const run = 'bench_' + Date.now().toString(36);

// results[metric][target] = values, one per round; notes = failures and warnings.
const results = {};
const notes = [];
const record = (metric, target, value) => {
    ((results[metric] ||= {})[target] ||= []).push(value);
};
const load0 = os.loadavg()[0];
const started = performance.now();
const log = (msg) => process.stderr.write(msg + '\n');

async function startAll() {
    if (!LOCAL) return remote;
    const ts = await Promise.all([servers.start('settee'), servers.start('pouchdb-server')]);
    ts[1].name = POUCH;
    return ts;
}
const stopAll = (ts) => { closeIdle(); return LOCAL ? Promise.all(ts.map((t) => t.stop())) : null; };
// A remote server keeps what we wrote unless we delete it (untimed, between phases);
// local servers go away with their temp dir.
async function dropRemote(dbs) {
    if (LOCAL) return;
    for (const t of remote) for (const db of dbs) await ok(t, 'DELETE', `/${db}`).catch(() => {});
}

// Runs one workload on one target, records its metrics and its peak RSS, and turns
// a failure into a note instead of ending the run.
async function measure(round, label, t, fn) {
    if (t.pid) resetPeak(t.pid);
    const t0 = performance.now();
    try {
        const m = await fn();
        if (m.note) { notes.push(`${t.name}, ${label}, round ${round}: ${m.note.trim()}`); delete m.note; }
        for (const [k, v] of Object.entries(m)) record(k, t.name, v);
        log(`  round ${round}  ${t.name.padEnd(28)} ${label.padEnd(22)} ${((performance.now() - t0) / 1000).toFixed(1)} s  ` +
            Object.entries(m).map(([k, v]) => `${k}=${Math.round(v * 100) / 100}`).join(' '));
        return t.pid ? memOf(t.pid).hwm : null;
    } catch (e) {
        const died = t.exited ? ` (server exited: ${JSON.stringify(t.exited)}; log tail: ${fs.readFileSync(t.logFile, 'utf8').slice(-300)})` : '';
        notes.push(`${t.name}, ${label}, round ${round}: FAILED: ${e.message.trim()}${died}`);
        log(`  round ${round}  ${t.name.padEnd(28)} ${label.padEnd(22)} FAILED: ${e.message.trim()}${died}`);
        return null;
    }
}

for (let round = 1; round <= cfg.rounds; round++) {
    // Odd rounds run settee first, even rounds pouchdb-server first.
    const order = (ts) => (round % 2 ? ts : [...ts].reverse());
    log(`round ${round} of ${cfg.rounds}`);

    // Phase A: workloads 1-6 on freshly started servers; 7 and 10 from /proc.
    let ts = await startAll();
    if (LOCAL) {
        await sleep(1000);
        for (const t of ts) record('idle_rss', t.name, memOf(t.pid).rss);
    }
    const peaks = new Map(ts.map((t) => [t, 0]));
    const R = `${run}_r${round}`; // db names are per round: a remote server keeps them
    const bulk = `${R}_bulk`;
    const steps = [
        ['1 _bulk_docs', (t) => w.bulkDocs(t, cfg, bulk)],
        ['2 GET', (t) => w.singleDocs(t, cfg, 'get', bulk, `${R}_rw`)],
        ['2 PUT', (t) => ok(t, 'PUT', `/${R}_rw`).then(() => w.singleDocs(t, cfg, 'put', bulk, `${R}_rw`))],
        ['2 80/20 GET/PUT', (t) => w.singleDocs(t, cfg, 'mix', bulk, `${R}_rw`)],
        ['3 pull', (t) => w.pull(t, cfg, bulk)],
        ['4 push', (t) => w.push(t, cfg, `${R}_push`)],
        ['5 _changes', (t) => w.changes(t, cfg, bulk)],
        ['6 _all_docs', (t) => w.allDocs(t, cfg, bulk)],
    ];
    for (const [label, fn] of steps) {
        if (label === '3 pull') {
            // The client-only ceiling, in the same round so it sees the same noise.
            await measure(round, 'ceiling mem->mem', { name: 'client' }, () => w.ceiling(cfg));
        }
        for (const t of order(ts)) {
            const peak = await measure(round, label, t, () => fn(t));
            if (peak !== null) peaks.set(t, Math.max(peaks.get(t), peak));
        }
    }
    for (const t of ts) {
        if (t.pid && peaks.get(t)) record('peak_rss', t.name, peaks.get(t));
        if (t.pid && !t.exited) {
            // VmRSS mixes heap with file pages the server maps (LevelDB mmaps its
            // table files): the split tells which one a high figure comes from.
            const st = fs.readFileSync(`/proc/${t.pid}/status`, 'utf8');
            const kb = (k) => Number((st.match(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm')) || [0, 0])[1]) * 1024;
            record('after_anon', t.name, kb('RssAnon'));
            record('after_file', t.name, kb('RssFile') + kb('RssShmem'));
        }
        // Pull and push as a share of this round's ceiling.
        const c = results.ceiling_rate?.client?.[round - 1];
        for (const k of ['pull', 'push']) {
            const v = results[`${k}_rate`]?.[t.name];
            if (c && v && v.length === round) record(`${k}_pct`, t.name, (100 * v[round - 1]) / c);
        }
    }
    await stopAll(ts);
    await dropRemote([bulk, `${R}_rw`, `${R}_push`]);

    // Phase B: workload 8 on fresh servers, so its RSS is the databases' alone.
    ts = await startAll();
    for (const t of order(ts)) {
        await measure(round, `8 ${cfg.dbs} dbs`, t, async () => {
            const m = await w.manyDbs(t, cfg, `${R}_m`);
            if (t.pid) {
                await sleep(1000);
                m.dbs_rss = memOf(t.pid).rss;
                m.dbs_disk = diskUsage(t.dataDir);
            }
            return m;
        });
    }
    await stopAll(ts);
    await dropRemote(Array.from({ length: cfg.dbs }, (_, i) => `${R}_m${i}`));

    // Phase C: workload 9 on fresh servers.
    ts = await startAll();
    for (const t of order(ts)) {
        await measure(round, `9 ${cfg.longpoll} longpoll`, t, () => w.longpoll(t, cfg, `${R}_lp`));
    }
    await stopAll(ts);
    await dropRemote([`${R}_lp`]);
}

// ---- the table ---------------------------------------------------------------

const n = (x) => x.toLocaleString('en-US');
const MB = (b) => (b / 1048576).toFixed(1);
const fmt = {
    rate: (v) => n(Math.round(v)),
    ms: (v) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)),
    s: (v) => (v >= 100 ? v.toFixed(0) : v.toFixed(2)),
    MB,
    KB: (b) => (b / 1024).toFixed(2),
    pct: (v) => v.toFixed(0) + '%',
};
const D = n(cfg.docs);
// [metric, label, unit, formatter]; "higher/lower is better" is in the unit column.
const ROWS = [
    ['bulk_rate', `1 _bulk_docs, ${D} docs in batches of 1000`, 'docs/s ↑', fmt.rate],
    ['get_rps', '2 GET existing doc, 32 clients', 'req/s ↑', fmt.rate],
    ['get_p50', '2 GET p50', 'ms ↓', fmt.ms],
    ['get_p99', '2 GET p99', 'ms ↓', fmt.ms],
    ['put_rps', '2 PUT new doc, 32 clients', 'req/s ↑', fmt.rate],
    ['put_p50', '2 PUT p50', 'ms ↓', fmt.ms],
    ['put_p99', '2 PUT p99', 'ms ↓', fmt.ms],
    ['mix_rps', '2 80/20 GET/PUT, 32 clients', 'req/s ↑', fmt.rate],
    ['mix_p50', '2 80/20 p50', 'ms ↓', fmt.ms],
    ['mix_p99', '2 80/20 p99', 'ms ↓', fmt.ms],
    ['pull_rate', `3 PouchDB pull, ${D} docs`, 'docs/s ↑', fmt.rate],
    ['pull_seconds', '3 pull time', 's ↓', fmt.s],
    ['pull_pct', '3 pull, share of client-only ceiling', '% ↑', fmt.pct],
    ['pull_cpu', '3 pull, server CPU (user+sys)', 's ↓', fmt.s],
    ['pull_rss', '3 pull, server peak RSS', 'MB ↓', fmt.MB],
    ['push_rate', `4 PouchDB push, ${D} docs`, 'docs/s ↑', fmt.rate],
    ['push_seconds', '4 push time', 's ↓', fmt.s],
    ['push_pct', '4 push, share of client-only ceiling', '% ↑', fmt.pct],
    ['push_cpu', '4 push, server CPU (user+sys)', 's ↓', fmt.s],
    ['push_rss', '4 push, server peak RSS', 'MB ↓', fmt.MB],
    ['changes_rate', `5 _changes?style=all_docs, ${D} rows`, 'rows/s ↑', fmt.rate],
    ['alldocs_rate', `6 _all_docs?include_docs=true, ${D} rows`, 'rows/s ↑', fmt.rate],
    ['idle_rss', '7 idle RSS right after start', 'MB ↓', fmt.MB],
    ['dbs_seconds', `8 ${n(cfg.dbs)} dbs × 10 docs: create + fill`, 's ↓', fmt.s],
    ['dbs_rss', '8 RSS after', 'MB ↓', fmt.MB],
    ['dbs_disk', '8 data dir on disk', 'MB ↓', fmt.MB],
    ['lp_open_seconds', `9 ${n(cfg.longpoll)} longpoll clients: time to open`, 's ↓', fmt.s],
    ['lp_bytes', '9 RSS growth per idle longpoll client', 'KB ↓', fmt.KB],
    ['lp_ms', '9 one change reaches all clients', 'ms ↓', fmt.ms],
    ['peak_rss', '10 peak RSS during 1-6', 'MB ↓', fmt.MB],
    ['after_anon', '10 RSS after 1-6: anonymous (heap, stacks)', 'MB ↓', fmt.MB],
    ['after_file', '10 RSS after 1-6: file-backed (mapped files)', 'MB ↓', fmt.MB],
];

const header = ['workload', 'unit', ...names.map((x) => `${x} median`), ...(names.length > 1 ? ['ratio'] : []),
    ...names.map((x) => `${x} min–max`)];
const table = [];
for (const [key, label, unit, f] of ROWS) {
    if (!results[key] && !LOCAL && /rss|cpu|disk|bytes/.test(key)) continue; // not readable remotely
    const vals = names.map((x) => results[key]?.[x] || []);
    const meds = vals.map((v) => (v.length ? median(v) : null));
    const ratio = meds[0] !== null && meds[1] && meds[1] !== null ? meds[0] / meds[1] : null;
    table.push([label, unit,
        ...meds.map((m) => (m === null ? 'failed' : f(m))),
        ...(names.length > 1 ? [ratio === null ? '—' : ratio >= 10 ? ratio.toFixed(0) + '×' : ratio.toFixed(2) + '×'] : []),
        ...vals.map((v) => (v.length ? `${f(Math.min(...v))}–${f(Math.max(...v))}` : '—'))]);
}
const ceil = results.ceiling_rate?.client || [];
const ceilLine = ceil.length
    ? `Client-only ceiling (PouchDB memory → memory replication of the same ${D} docs, no server): ` +
      `median ${fmt.rate(median(ceil))} docs/s (${fmt.rate(Math.min(...ceil))}–${fmt.rate(Math.max(...ceil))}).`
    : 'Client-only ceiling: failed (see notes).';

// Plain text for the terminal.
const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => r[i].length)));
const line = (r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
console.log('\n' + line(header));
console.log(widths.map((x) => '-'.repeat(x)).join('  '));
for (const r of table) console.log(line(r));
console.log('\n' + ceilLine);
console.log(`Ratio = ${names[0]} ÷ ${names[1] || '—'} (↑: higher is better, so >1 favours ${names[0]}; ↓: lower is better).`);
if (notes.length) console.log('\nNotes:\n' + notes.map((x) => '- ' + x).join('\n'));

// ---- markdown ----------------------------------------------------------------

const sh = (cmd, args) => { try { return execFileSync(cmd, args, { cwd: ROOT, encoding: 'utf8' }).trim(); } catch { return '?'; } };
const version = (p) => { try { return JSON.parse(fs.readFileSync(path.join(HERE, 'node_modules', p, 'package.json'))).version; } catch { return '?'; } };
const cpu = os.cpus()[0]?.model || '?';
const md = [];
md.push('# Benchmarks', '');
md.push(`Generated by \`${QUICK ? 'BENCH_QUICK=1 ' : ''}make bench\` (tools/bench/). Do not edit above the notes marker: the next run replaces it.`, '');
md.push(`- date: ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}`);
md.push(`- commit: ${process.env.BENCH_COMMIT || '?'}`);
md.push(`- machine: ${os.cpus().length} cores (${cpu}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB memory, Linux ${os.release()}; load average ${load0.toFixed(1)} at the start and ${os.loadavg()[0].toFixed(1)} at the end of the run (other jobs share the machine: compare ratios rather than absolute figures)`);
md.push(`- run: ${QUICK ? 'quick' : 'full'}, ${cfg.rounds} round${cfg.rounds > 1 ? 's' : ''}, ${D} docs of 1 KB, wrk ${cfg.wrkSeconds} s per mix, ${n(cfg.dbs)} dbs, ${n(cfg.longpoll)} longpoll clients`);
if (LOCAL) {
    md.push(`- servers: ${sh(process.env.BENCH_SETTEE, ['--version'])} (release build, ini \`[log] level = warning\`, a server admin from SETTEE_ADMIN_USER/SETTEE_ADMIN_PASSWORD: every client sends it as basic auth); ` +
        `pouchdb-server ${version('pouchdb-server')} (admin party, no credentials) on ${servers.POUCH_IN_MEMORY ? 'its in-memory backend (`-m`: leveldown could not load here)' : 'LevelDB (leveldown ' + version('leveldown') + ')'}, log level warning; node ${process.version}`);
} else {
    md.push(`- targets: ${remote.map((t) => `${t.name} = ${t.base}`).join(', ')}`);
}
md.push(`- client: PouchDB ${version('pouchdb-core')} (memory adapter), wrk, node ${process.version}`, '');
md.push('| ' + header.join(' | ') + ' |', '|' + header.map((_, i) => (i < 2 ? '---' : '---:')).join('|') + '|');
for (const r of table) md.push('| ' + r.join(' | ') + ' |');
md.push('', ceilLine, '', `Ratio = ${names[0]} ÷ ${names[1] || '—'}. ↑ higher is better, ↓ lower is better.`, '');
if (notes.length) md.push('Failures and warnings of this run:', '', ...notes.map((x) => '- ' + x.replace(/\n/g, ' ')), '');
md.push('## How measured', '',
    `- Each round starts every server fresh (empty temp data dir, loopback port) three times: for workloads 1–7 and 10, for 8, and for 9. ` +
    'Within a round each workload runs on one server and then the other; odd rounds start with the first server, even rounds with the second. ' +
    'The table gives the median over rounds and the min–max.',
    '- Docs are ~1 KB of JSON text, the same for every server (seeded generator in lib.mjs).',
    '- 1: one client posting `_bulk_docs` of 1000 docs back to back into a new db (bodies serialized beforehand). ' +
    '5 and 6 read that db in one request, timed to the last byte. 2: wrk, 2 threads, 32 connections, ' +
    `${cfg.wrkSeconds} s per mode; GETs pick random docs of that db, PUTs create new docs; req/s counts 2xx answers only.`,
    '- 3 and 4: a fresh node process runs PouchDB (memory adapter, default batch size) replicating from the db of 1 (pull) or into a new empty db ' +
    '(push; the source is filled before the clock starts). Server CPU is utime+stime from /proc/PID/stat over the replication alone; ' +
    'peak RSS is VmHWM, reset through /proc/PID/clear_refs before each workload. The ceiling is the same replication memory → memory in the same client.',
    '- 7: VmRSS 1 s after the server answers its first `GET /`. 10: the highest VmHWM over workloads 1–6, and RSS after workload 6 split into RssAnon and RssFile+RssShmem (/proc/PID/status).',
    '- 8: 8 concurrent clients each create a db and post its 10 docs in one `_bulk_docs`; RSS 1 s after, and the bytes allocated on disk under the data dir.',
    `- 8 and 9 run with the open-files limit raised to the hard limit (\`ulimit -n\`: ${sh('sh', ['-c', 'ulimit -n'])} in this run). ` +
    '9: bare TCP sockets send `GET /db/_changes?feed=longpoll&since=now&heartbeat=10000`; the RSS growth is measured once every client has its response headers; ' +
    'then one PUT, timed until the last client has received its `last_seq`.',
    '- Client and servers share the machine\'s cores; nothing else of the benchmark runs during a measurement.', '');
const out = process.env.BENCH_OUT || (QUICK ? path.join(ROOT, 'build/bench-quick.md') : path.join(ROOT, 'BENCHMARKS.md'));
// Hand-written analysis below the marker survives regeneration.
const MARK = '<!-- bench:notes: everything below this line is kept when make bench rewrites this file -->';
let kept = `${MARK}\n\n## Analysis\n\n(none yet)\n`;
if (fs.existsSync(out)) {
    const old = fs.readFileSync(out, 'utf8');
    if (old.includes(MARK)) kept = old.slice(old.indexOf(MARK));
}
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, md.join('\n') + '\n' + kept);
const shown = path.relative(ROOT, out).startsWith('..') ? out : path.relative(ROOT, out);
console.log(`\nwrote ${shown} (run took ${((performance.now() - started) / 1000).toFixed(0)} s)`);
process.exit(0);
