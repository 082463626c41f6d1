// The workloads of issue 6, one function each. Every function takes a target
// ({ base, auth, host, port, pid? }) and the run's settings, does its work against
// that one server, and returns { metric: value }. They throw on any failed request
// with the request named in the message; bench.mjs records that and moves on.
// Server-side figures (RSS, CPU) need target.pid, which only local servers have.
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { cpuOf, memOf, ok, resetPeak, sleep, within } from './lib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const seconds = (t0) => (performance.now() - t0) / 1000;

// 1. _bulk_docs in batches of 1000, one request after the other. The bodies are
// serialized beforehand (cfg.bulkBodies) so the client's JSON work is not timed.
export async function bulkDocs(t, cfg, db) {
    await ok(t, 'PUT', `/${db}`);
    const t0 = performance.now();
    for (const body of cfg.bulkBodies) {
        const r = await ok(t, 'POST', `/${db}/_bulk_docs`, body);
        if (r.body.includes('"error"')) throw new Error(`POST /${db}/_bulk_docs: ${r.body.toString().slice(0, 300)}`);
    }
    return { bulk_rate: cfg.docs / seconds(t0) };
}

// 2. Single-document GET (existing docs of getDb), PUT (new docs) or an 80/20 mix,
// 32 connections for cfg.wrkSeconds, by wrk with wrk.lua.
export function singleDocs(t, cfg, mode, getDb, putDb) {
    return new Promise((resolve, reject) => {
        const env = {
            ...process.env, BENCH_WRK_MODE: mode, BENCH_WRK_GETDB: getDb, BENCH_WRK_PUTDB: putDb,
            BENCH_WRK_NDOCS: String(cfg.docs), BENCH_WRK_AUTH: t.auth || '', BENCH_WRK_PREFIX: t.prefix,
        };
        // Two wrk threads for two cores; the server and wrk share them, as they would
        // share any machine this is run on.
        const args = ['-t2', '-c32', `-d${cfg.wrkSeconds}s`, '--timeout', '10s',
            '-s', path.join(HERE, 'wrk.lua'), t.base + '/'];
        const child = spawn('wrk', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        child.stdout.on('data', (c) => { out += c; });
        child.stderr.on('data', (c) => { out += c; });
        const timer = setTimeout(() => child.kill('SIGKILL'), (cfg.wrkSeconds + 30) * 1000);
        child.on('exit', (code) => {
            clearTimeout(timer);
            const line = out.split('\n').find((l) => l.startsWith('{"requests"'));
            if (code !== 0 || !line) return reject(new Error(`wrk ${mode} exited ${code}: ${out.slice(-500)}`));
            const r = JSON.parse(line);
            const e = r.errors;
            const bad = e.status + e.connect + e.read + e.write + e.timeout;
            // Only answered 2xx requests count toward req/s; errors are reported.
            resolve({
                [`${mode}_rps`]: (r.requests - e.status) / r.seconds,
                [`${mode}_p50`]: r.p50_ms, [`${mode}_p99`]: r.p99_ms,
                ...(bad ? { note: `wrk ${mode}: ${r.requests} requests, errors ${JSON.stringify(e)}` } : {}),
            });
        });
    });
}

// Runs replicate.mjs (see there) and samples the server's CPU and peak RSS around
// the timed part only. env adds to the child's environment (auth.mjs passes
// BENCH_REPL_SESSION for a cookie session).
export function replicate(mode, t, cfg, db, env = {}) {
    return new Promise((resolve, reject) => {
        const url = t ? `${t.url}/${db}` : '-'; // t.url keeps any credentials: PouchDB takes them from there
        const child = spawn(process.execPath, [path.join(HERE, 'replicate.mjs'), mode, url, String(cfg.docs)],
            { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
        let err = '';
        let cpu0 = 0;
        let result = null;
        child.stderr.on('data', (c) => { err += c; });
        const timer = setTimeout(() => { err += `\n(killed after ${cfg.replicateTimeout} s)`; child.kill('SIGKILL'); },
            cfg.replicateTimeout * 1000);
        readline.createInterface({ input: child.stdout }).on('line', (line) => {
            const msg = JSON.parse(line);
            if (msg.ready) {
                if (t && t.pid) { resetPeak(t.pid); cpu0 = cpuOf(t.pid); }
                child.stdin.write('go\n');
            } else {
                result = msg;
                if (t && t.pid) { result.cpu = cpuOf(t.pid) - cpu0; result.rss = memOf(t.pid).hwm; }
            }
        });
        child.on('exit', (code) => {
            clearTimeout(timer);
            if (code !== 0 || !result) return reject(new Error(`replicate ${mode} ${db || ''}: exit ${code}: ${err.slice(-800)}`));
            resolve(result);
        });
    });
}

// 3. PouchDB (memory adapter) pulls the db that workload 1 filled.
export async function pull(t, cfg, db) {
    const r = await replicate('pull', t, cfg, db);
    return { pull_rate: r.docs / r.seconds, pull_seconds: r.seconds, ...(t.pid ? { pull_cpu: r.cpu, pull_rss: r.rss } : {}) };
}

// 4. PouchDB pushes cfg.docs docs from memory to an empty db.
export async function push(t, cfg, db) {
    await ok(t, 'PUT', `/${db}`);
    const r = await replicate('push', t, cfg, db);
    return { push_rate: r.docs / r.seconds, push_seconds: r.seconds, ...(t.pid ? { push_cpu: r.cpu, push_rss: r.rss } : {}) };
}

// The client-only ceiling of 3 and 4: PouchDB memory -> memory, no server at all.
export async function ceiling(cfg) {
    const r = await replicate('mem', null, cfg, null);
    return { ceiling_rate: r.docs / r.seconds };
}

// 5 and 6 read one whole response; the time is to its last byte. The rows are
// counted afterwards (parsing is not timed) to check the answer is complete.
async function readAll(t, cfg, db, path, key, field) {
    const r = await ok(t, 'GET', `/${db}${path}`);
    const rows = JSON.parse(r.body)[field].length;
    if (rows !== cfg.docs) throw new Error(`GET /${db}${path}: ${rows} rows, expected ${cfg.docs}`);
    return { [key]: rows / (r.ms / 1000) };
}
export const changes = (t, cfg, db) => readAll(t, cfg, db, '/_changes?style=all_docs', 'changes_rate', 'results');
export const allDocs = (t, cfg, db) => readAll(t, cfg, db, '/_all_docs?include_docs=true', 'alldocs_rate', 'rows');

// 8. cfg.dbs databases with 10 docs each: create, then one _bulk_docs, by 8
// concurrent clients. Stops at the first failure or at cfg.dbsTimeout.
export async function manyDbs(t, cfg, prefix) {
    const body = JSON.stringify({ docs: cfg.smallDocs });
    const deadline = Date.now() + cfg.dbsTimeout * 1000;
    let next = 0;
    let failure = null;
    const worker = async () => {
        while (!failure && next < cfg.dbs) {
            const i = next++;
            try {
                if (Date.now() > deadline) throw new Error(`not done after ${cfg.dbsTimeout} s`);
                await ok(t, 'PUT', `/${prefix}${i}`);
                const r = await ok(t, 'POST', `/${prefix}${i}/_bulk_docs`, body);
                if (r.body.includes('"error"')) throw new Error(`POST /${prefix}${i}/_bulk_docs: ${r.body.toString().slice(0, 300)}`);
            } catch (e) {
                failure = failure || new Error(`database ${i + 1} of ${cfg.dbs}: ${e.message}`);
            }
        }
    };
    const t0 = performance.now();
    await Promise.all(Array.from({ length: 8 }, worker));
    if (failure) throw failure;
    return { dbs_seconds: seconds(t0) };
}

// 9. cfg.longpoll idle longpoll clients on one db, each a bare socket with a raw
// HTTP/1.1 request (a full HTTP client per connection would cost the client far
// more memory than the server). RSS growth per client is measured once all have
// their response headers; then one doc is written and the time until every
// client has its answer is measured.
export async function longpoll(t, cfg, db) {
    await ok(t, 'PUT', `/${db}`);
    const n = cfg.longpoll;
    const req = `GET ${t.prefix}/${db}/_changes?feed=longpoll&since=now&heartbeat=10000 HTTP/1.1\r\n` +
        `Host: ${t.host}:${t.port}\r\n` + (t.auth ? `Authorization: ${t.auth}\r\n` : '') + '\r\n';
    const rss0 = t.pid ? memOf(t.pid).rss : 0;
    const socks = [];
    let answered = 0;
    let lastAnswer = 0;
    let firstError = null;
    let onAnswer = () => {};
    const open = () => new Promise((resolve) => {
        const s = net.connect({ host: t.host, port: t.port });
        const st = { s, head: false, done: false, tail: '' };
        socks.push(st);
        s.on('connect', () => s.write(req));
        s.on('data', (c) => {
            if (!st.head) { st.head = true; resolve(); }
            // Only a short tail is kept: the answer's "last_seq" may straddle chunks.
            const text = st.tail + c.toString('latin1');
            if (!st.done && text.includes('"last_seq"')) {
                st.done = true;
                answered++;
                lastAnswer = performance.now();
                onAnswer();
            }
            st.tail = text.slice(-16);
        });
        s.on('error', (e) => { firstError = firstError || e; resolve(); });
        s.on('close', () => resolve());
    });
    try {
        // In batches, so the listen backlog never overflows (an overflow costs a
        // 1 s SYN retry and would be charged to the server). A server that is slow to
        // answer is given until cfg.longpollOpenTimeout in all.
        const t0 = performance.now();
        const deadline = Date.now() + cfg.longpollOpenTimeout * 1000;
        for (let i = 0; i < n && Date.now() < deadline; i += 250) {
            const batch = [];
            for (let k = i; k < Math.min(n, i + 250); k++) batch.push(open());
            await within(Promise.all(batch), Math.max(0, deadline - Date.now()));
            if (firstError) throw new Error(`opening longpoll client ${socks.length}: ${firstError.message}`);
        }
        const heads = socks.filter((s) => s.head).length;
        if (heads < n) {
            const grew = t.pid ? `; server RSS grew ${((memOf(t.pid).rss - rss0) / 1048576).toFixed(1)} MB meanwhile` : '';
            throw new Error(`only ${heads} of ${n} longpoll clients had their response headers after ${cfg.longpollOpenTimeout} s${grew}`);
        }
        const openSeconds = seconds(t0);
        await sleep(1000); // let the server finish its per-connection setup
        const rss1 = t.pid ? memOf(t.pid).rss : 0;

        const all = new Promise((resolve) => { onAnswer = () => { if (answered === n) resolve(); }; });
        const t1 = performance.now();
        await ok(t, 'PUT', `/${db}/wake`, { woke: true });
        await within(all, cfg.longpollTimeout * 1000);
        if (answered < n) throw new Error(`${answered} of ${n} longpoll clients answered within ${cfg.longpollTimeout} s`);
        if (firstError) throw new Error(`longpoll socket: ${firstError.message}`);
        return {
            lp_open_seconds: openSeconds,
            ...(t.pid ? { lp_bytes: (rss1 - rss0) / n } : {}),
            lp_ms: lastAnswer - t1,
        };
    } finally {
        for (const st of socks) st.s.destroy();
        await sleep(200);
    }
}
