// The authentication benchmark (make bench-auth, i.e. run.sh auth): what settee's
// authentication costs, on one release settee alone on 127.0.0.1 (fresh temp data
// dir, free port, stopped by its pid; servers.mjs). Four parts:
//   a. login cost: POST /_session, N sequential, for a _users user and for an ini
//      admin, both starting from a cold credential cache; and basic auth's first
//      request (cold cache: one PBKDF2) against the next ones (warm).
//   b. GET of one doc, 32 connections (wrk), three modes interleaved run by run:
//      anonymous on a public db (_security {}), basic auth as a member user, and a
//      cookie session as that member, on a members-only db holding the same doc.
//   c. PouchDB 9 pull and push of cfg.docs docs in the same three modes.
//   d. a flood of failed logins (distinct unknown names) from several loopback
//      source addresses on a fresh settee: its RSS before and after, and how many
//      answers were 401 (a password check was made) and 429 (the per-address limit
//      answered without one). Bounded in count and in time.
// Every load goes to 127.0.0.0/8 only.
//
// Environment (run.sh sets BENCH_TMP and BENCH_SETTEE):
//   BENCH_QUICK=1           a small run: checks the harness, not speed
//   BENCH_AUTH_ROUNDS=N     runs of b and rounds of c (default 3, quick 1)
//   BENCH_AUTH_FLOOD_ADDRS  source addresses of d (default 8)
//   BENCH_AUTH_OUT          markdown output (default build/bench-auth.md)
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { closeIdle, cpuOf, makeDoc, makeDocs, median, memOf, ok, parseTarget, request, sleep } from './lib.mjs';
import * as servers from './servers.mjs';
import { replicate } from './workloads.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const QUICK = process.env.BENCH_QUICK === '1';
const cfg = QUICK
    ? { rounds: 1, logins: 20, wrkSeconds: 2, docs: 10000, replicateTimeout: 120, floodCount: 5000, floodSeconds: 30, floodAddrs: 2 }
    : { rounds: 3, logins: 20, wrkSeconds: 10, docs: 100000, replicateTimeout: 600, floodCount: 100000, floodSeconds: 120, floodAddrs: 8 };
if (process.env.BENCH_AUTH_ROUNDS) cfg.rounds = Number(process.env.BENCH_AUTH_ROUNDS);
if (process.env.BENCH_AUTH_FLOOD_ADDRS) cfg.floodAddrs = Number(process.env.BENCH_AUTH_FLOOD_ADDRS);
const log = (msg) => process.stderr.write(msg + '\n');
const started = performance.now();
const load0 = os.loadavg()[0];

// The accounts. The ini admin is hashed by settee at start (its plaintext here is
// written back as a hash); the member lives in _users.
const ADMIN2 = { name: 'iniadmin', password: 'ini-' + Math.random().toString(36).slice(2) };
const MEMBER = { name: 'member', password: 'm-' + Math.random().toString(36).slice(2) };
const FRESH = { name: 'fresh', password: 'f-' + Math.random().toString(36).slice(2) }; // basic auth, cold
const basic = (u) => 'Basic ' + Buffer.from(`${u.name}:${u.password}`).toString('base64');
const anon = (t) => ({ ...parseTarget(t.base), pid: t.pid });
const as = (t, u) => ({ ...parseTarget(`http://${encodeURIComponent(u.name)}:${encodeURIComponent(u.password)}@${t.host}:${t.port}`), pid: t.pid });

const out = { a: {}, b: {}, c: {}, d: {} };
const notes = [];

async function addUser(t, u) {
    await ok(t, 'PUT', `/_users/org.couchdb.user:${encodeURIComponent(u.name)}`,
        { name: u.name, password: u.password, roles: [], type: 'user' });
}
async function makeDb(t, db, members) {
    await ok(t, 'PUT', `/${db}`);
    await ok(t, 'PUT', `/${db}/_security`, members ? { members: { names: members, roles: [] } } : {});
}
async function login(t, u) {
    const r = await request(anon(t), 'POST', '/_session', { name: u.name, password: u.password });
    const m = /AuthSession=[^;]*/.exec([].concat(r.headers?.['set-cookie'] || []).join(';'));
    return { r, cookie: m ? m[0] : null };
}

// ---- a. login cost ---------------------------------------------------------------

async function partA(t) {
    for (const [key, u] of [['user', MEMBER], ['admin', ADMIN2]]) {
        const ms = [];
        for (let i = 0; i < cfg.logins; i++) {
            const r = await request(anon(t), 'POST', '/_session', { name: u.name, password: u.password });
            if (r.status !== 200) throw new Error(`POST /_session as ${u.name} -> ${r.status} ${r.body}`);
            ms.push(r.ms);
        }
        out.a[`session_${key}`] = { first: ms[0], median: median(ms), rest: median(ms.slice(1)) };
        log(`  a. POST /_session as ${key}: first ${ms[0].toFixed(1)} ms, median of ${ms.length} ${median(ms).toFixed(2)} ms, median of the next ${ms.length - 1} ${median(ms.slice(1)).toFixed(2)} ms`);
    }
    const ms = [];
    const tf = as(t, FRESH);
    for (let i = 0; i < cfg.logins; i++) ms.push((await ok(tf, 'GET', '/auth_members/d0000000')).ms);
    const msAnon = [];
    for (let i = 0; i < cfg.logins; i++) msAnon.push((await ok(anon(t), 'GET', '/auth_public/d0000000')).ms);
    out.a.basic = { first: ms[0], rest: median(ms.slice(1)), anon: median(msAnon) };
    log(`  a. basic auth GET: first (cold) ${ms[0].toFixed(1)} ms, next ${ms.length - 1} median ${median(ms.slice(1)).toFixed(2)} ms; anonymous GET median ${median(msAnon).toFixed(2)} ms`);
}

// ---- b. GET req/s -------------------------------------------------------------------

function wrk(t, db, auth, cookie) {
    return new Promise((resolve, reject) => {
        const env = {
            ...process.env, BENCH_WRK_MODE: 'get', BENCH_WRK_GETDB: db, BENCH_WRK_PUTDB: db, BENCH_WRK_NDOCS: '1',
            BENCH_WRK_AUTH: auth || '', BENCH_WRK_COOKIE: cookie || '', BENCH_WRK_PREFIX: '',
        };
        const args = ['-t2', '-c32', `-d${cfg.wrkSeconds}s`, '--timeout', '10s', '-s', path.join(HERE, 'wrk.lua'), t.base + '/'];
        const child = spawn('wrk', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
        let text = '';
        child.stdout.on('data', (c) => { text += c; });
        child.stderr.on('data', (c) => { text += c; });
        const timer = setTimeout(() => child.kill('SIGKILL'), (cfg.wrkSeconds + 30) * 1000);
        child.on('exit', (code) => {
            clearTimeout(timer);
            const line = text.split('\n').find((l) => l.startsWith('{"requests"'));
            if (code !== 0 || !line) return reject(new Error(`wrk exited ${code}: ${text.slice(-500)}`));
            const r = JSON.parse(line);
            const e = r.errors;
            if (e.status + e.connect + e.read + e.write + e.timeout) notes.push(`b: wrk ${db}: ${r.requests} requests, errors ${JSON.stringify(e)}`);
            resolve({ rps: (r.requests - e.status) / r.seconds, p50: r.p50_ms, p99: r.p99_ms });
        });
    });
}

async function partB(t) {
    // A fresh cookie for each cookie run: settee (like CouchDB) sends a refreshed
    // cookie with every answer once a tenth of the session timeout has passed, and
    // wrk, unlike a browser, would keep sending the old one and pay that each time.
    const fresh = async () => {
        const { cookie } = await login(t, MEMBER);
        if (!cookie) throw new Error('no AuthSession cookie for the member');
        return cookie;
    };
    const modes = [
        ['anonymous', () => wrk(t, 'auth_public', null, null)],
        ['basic', () => wrk(t, 'auth_members', basic(MEMBER), null)],
        ['cookie', async () => wrk(t, 'auth_members', null, await fresh())],
    ];
    for (let run = 0; run < cfg.rounds; run++) {
        for (let k = 0; k < modes.length; k++) {
            const [name, fn] = modes[(k + run) % modes.length];
            const c0 = cpuOf(t.pid);
            const r = await fn();
            r.cpuPerReq = r.rps ? ((cpuOf(t.pid) - c0) / (r.rps * cfg.wrkSeconds)) * 1e6 : 0; // µs of server CPU per request
            (out.b[name] ||= []).push(r);
            log(`  b. run ${run + 1} ${name.padEnd(9)} ${Math.round(r.rps)} req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  server CPU ${r.cpuPerReq.toFixed(1)} µs/req`);
        }
    }
}

// ---- c. replication -------------------------------------------------------------------

async function partC(t) {
    // Two sources with the same docs: a public one and a members-only one (untimed).
    for (const db of ['repl_public', 'repl_members']) {
        await makeDb(t, db, db === 'repl_members' ? [MEMBER.name] : null);
        for (let i = 0; i < cfg.docs; i += 1000) {
            await ok(t, 'POST', `/${db}/_bulk_docs`, JSON.stringify({ docs: makeDocs(i, Math.min(1000, cfg.docs - i)) }));
        }
    }
    const session = { BENCH_REPL_SESSION: JSON.stringify({ name: MEMBER.name, password: MEMBER.password }) };
    const modes = [
        ['anonymous', anon(t), 'public', {}],
        ['basic', as(t, MEMBER), 'members', {}],
        ['cookie', anon(t), 'members', session],
    ];
    for (let round = 1; round <= cfg.rounds; round++) {
        for (const dir of ['pull', 'push']) {
            for (let k = 0; k < modes.length; k++) {
                const [name, target, kind, env] = modes[(k + round - 1) % modes.length];
                let db = `repl_${kind}`;
                if (dir === 'push') {
                    db = `push_${name}_r${round}`;
                    await makeDb(t, db, kind === 'members' ? [MEMBER.name] : null);
                }
                const r = await replicate(dir, target, cfg, db, env);
                const row = { rate: r.docs / r.seconds, seconds: r.seconds, cpu: r.cpu, clientCpu: r.clientCpu };
                ((out.c[dir] ||= {})[name] ||= []).push(row);
                log(`  c. round ${round} ${dir} ${name.padEnd(9)} ${Math.round(row.rate)} docs/s (${r.seconds.toFixed(2)} s; server CPU ${r.cpu.toFixed(2)} s, client CPU ${r.clientCpu.toFixed(2)} s)`);
            }
        }
    }
}

// ---- d. failed-login flood -------------------------------------------------------------

// Source addresses on the loopback net, none of them 127.0.0.1 (which a–c used):
// 127.0.0.x for the first ones, then 127.0.x.y.
const floodAddr = (i) => (i < 100 ? `127.0.0.${101 + i}` : `127.0.${1 + (i >> 8)}.${i & 255}`);

async function partD() {
    const t = await servers.start('settee');
    try {
        await sleep(1000);
        const before = memOf(t.pid).rss;
        const cpu0 = cpuOf(t.pid);
        const agents = Array.from({ length: cfg.floodAddrs }, (_, i) =>
            new http.Agent({ keepAlive: true, maxSockets: 4, localAddress: floodAddr(i) }));
        const counts = {};
        let sent = 0;
        const deadline = Date.now() + cfg.floodSeconds * 1000;
        const t0 = performance.now();
        const one = (agent, i) => new Promise((resolve) => {
            const body = JSON.stringify({ name: `nobody-${i}-${process.pid}`, password: 'wrong' });
            const req = http.request({ host: '127.0.0.1', port: t.port, path: '/_session', method: 'POST', agent,
                headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), Accept: 'application/json' } },
            (res) => { res.resume(); res.on('end', () => { counts[res.statusCode] = (counts[res.statusCode] || 0) + 1; resolve(); }); });
            req.setTimeout(30000, () => req.destroy(new Error('timeout')));
            req.on('error', (e) => { counts[e.code || e.message] = (counts[e.code || e.message] || 0) + 1; resolve(); });
            req.end(body);
        });
        // 4 sequential senders per address, so an address waiting on a password
        // check does not hold up the others.
        const worker = async (a) => {
            while (sent < cfg.floodCount && Date.now() < deadline) await one(agents[a], sent++);
        };
        const workers = [];
        for (let a = 0; a < cfg.floodAddrs; a++) for (let k = 0; k < 4; k++) workers.push(worker(a));
        await Promise.all(workers);
        const seconds = (performance.now() - t0) / 1000;
        for (const a of agents) a.destroy();
        const cpu = cpuOf(t.pid) - cpu0;
        await sleep(1000);
        const m = memOf(t.pid);
        out.d = { before, after: m.rss, peak: m.hwm, sent, seconds, counts, cpu };
        log(`  d. ${sent} failed logins from ${cfg.floodAddrs} addresses in ${seconds.toFixed(1)} s: ${JSON.stringify(counts)}; RSS ${(before / 1048576).toFixed(1)} -> ${(m.rss / 1048576).toFixed(1)} MB (peak ${(m.hwm / 1048576).toFixed(1)}), server CPU ${cpu.toFixed(1)} s`);
        // Still serving after the flood: a good login from 127.0.0.1.
        const r = await request(t, 'GET', '/_session');
        if (r.status !== 200) notes.push(`d: GET /_session after the flood -> ${r.status}`);
    } finally {
        closeIdle();
        await t.stop();
    }
}

// ---- the run ---------------------------------------------------------------------------

const parts = (process.env.BENCH_AUTH_PARTS || 'abcd').split('');
const t = await servers.start('settee', { ini: `[admins]\n${ADMIN2.name} = ${ADMIN2.password}\n` });
log(`settee pid ${t.pid} on ${t.base}; ${cfg.docs} docs, ${cfg.rounds} round(s)`);
try {
    await addUser(t, MEMBER);
    await addUser(t, FRESH);
    await makeDb(t, 'auth_public', null);
    await makeDb(t, 'auth_members', [MEMBER.name, FRESH.name]);
    for (const db of ['auth_public', 'auth_members']) await ok(t, 'PUT', `/${db}/d0000000`, makeDoc(0));
    // The anonymous and member views must differ as _security says.
    const denied = await request(anon(t), 'GET', '/auth_members/d0000000');
    if (denied.status !== 401) throw new Error(`anonymous GET of the members db -> ${denied.status}, expected 401`);
    for (const p of parts.filter((x) => 'abc'.includes(x))) {
        log(`part ${p}`);
        try { await { a: partA, b: partB, c: partC }[p](t); } catch (e) { notes.push(`${p}: FAILED: ${e.message}`); log(`  ${p}: FAILED: ${e.message}`); }
    }
} finally {
    closeIdle();
    await t.stop();
}
if (parts.includes('d')) {
    log('part d');
    try { await partD(); } catch (e) { notes.push(`d: FAILED: ${e.message}`); log(`  d: FAILED: ${e.message}`); }
}

// ---- report --------------------------------------------------------------------------

const f1 = (x) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const n = (x) => Math.round(x).toLocaleString('en-US');
const MB = (b) => (b / 1048576).toFixed(1);
const pct = (a, b) => `${((a / b) * 100).toFixed(1)}%`;
const md = [];
md.push(`Run: \`${QUICK ? 'BENCH_QUICK=1 ' : ''}make bench-auth\`, ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}, commit ${process.env.BENCH_COMMIT || '?'}, ` +
    `${os.cpus().length} cores, load average ${load0.toFixed(1)} → ${os.loadavg()[0].toFixed(1)}; ${sh()}; ` +
    `${cfg.rounds} run(s) of b and round(s) of c, ${n(cfg.docs)} docs in c. Took ${((performance.now() - started) / 1000).toFixed(0)} s.`, '');
function sh() { try { return fs.readFileSync('/proc/version', 'utf8').split(' ').slice(0, 3).join(' '); } catch { return '?'; } }
if (out.a.session_user) {
    md.push('a. Login cost (ms, one client, sequential, keep-alive):', '',
        '| request | first (cold cache) | median of the next ' + (cfg.logins - 1) + ' | median of all ' + cfg.logins + ' |', '|---|---:|---:|---:|');
    for (const [k, label] of [['session_user', 'POST /_session, _users user'], ['session_admin', 'POST /_session, ini admin']]) {
        const v = out.a[k];
        md.push(`| ${label} | ${f1(v.first)} | ${f1(v.rest)} | ${f1(v.median)} |`);
    }
    if (out.a.basic) md.push(`| GET doc with basic auth (member never seen before) | ${f1(out.a.basic.first)} | ${f1(out.a.basic.rest)} | — |`,
        `| GET doc anonymously (public db) | — | ${f1(out.a.basic.anon)} | — |`);
    md.push('');
}
const statRow = (label, arr, key, fmt, base) => {
    const v = arr.map((x) => x[key]);
    const m = median(v);
    return `| ${label} | ${fmt(m)} | ${fmt(Math.min(...v))}–${fmt(Math.max(...v))} | ${base ? pct(m, base) : '—'} |`;
};
if (out.b.anonymous) {
    const base = median(out.b.anonymous.map((x) => x.rps));
    md.push(`b. GET of one doc, wrk 2 threads, 32 connections, ${cfg.wrkSeconds} s per run, ${cfg.rounds} run(s) per mode interleaved:`, '',
        '| mode | req/s median | min–max | of anonymous | p50 ms | p99 ms | server CPU µs/req |', '|---|---:|---:|---:|---:|---:|---:|');
    for (const k of ['anonymous', 'basic', 'cookie']) {
        const a = out.b[k];
        if (!a) continue;
        const rps = a.map((x) => x.rps);
        md.push(`| ${k === 'anonymous' ? 'anonymous, public db' : k === 'basic' ? 'basic auth, member' : 'cookie session, member'} | ${n(median(rps))} | ${n(Math.min(...rps))}–${n(Math.max(...rps))} | ${pct(median(rps), base)} | ` +
            `${f1(median(a.map((x) => x.p50)))} | ${f1(median(a.map((x) => x.p99)))} | ${f1(median(a.map((x) => x.cpuPerReq)))} |`);
    }
    md.push('');
}
for (const dir of ['pull', 'push']) {
    const c = out.c[dir];
    if (!c?.anonymous) continue;
    const base = median(c.anonymous.map((x) => x.rate));
    md.push(`c. PouchDB 9 ${dir}, ${n(cfg.docs)} docs (memory adapter, default batches), ${cfg.rounds} round(s), modes interleaved:`, '',
        '| mode | docs/s median | min–max | of anonymous | server CPU s | client CPU s |', '|---|---:|---:|---:|---:|---:|');
    for (const k of ['anonymous', 'basic', 'cookie']) {
        const a = c[k];
        if (!a) continue;
        const r = a.map((x) => x.rate);
        md.push(`| ${k} | ${n(median(r))} | ${n(Math.min(...r))}–${n(Math.max(...r))} | ${pct(median(r), base)} | ${median(a.map((x) => x.cpu)).toFixed(2)} | ${median(a.map((x) => x.clientCpu)).toFixed(2)} |`);
    }
    md.push('');
}
if (out.d.sent) {
    const d = out.d;
    md.push(`d. Failed-login flood on a fresh settee: ${n(d.sent)} POST /_session with distinct unknown names from ${cfg.floodAddrs} source addresses ` +
        `(${floodAddr(0)}…, 4 keep-alive connections each), ${d.seconds.toFixed(1)} s (bounds: ${n(cfg.floodCount)} requests, ${cfg.floodSeconds} s): ` +
        `answers ${Object.entries(d.counts).map(([k, v]) => `${k}: ${n(v)}`).join(', ')}; ` +
        `RSS ${MB(d.before)} MB before, ${MB(d.after)} MB 1 s after (peak ${MB(d.peak)} MB); server CPU ${d.cpu.toFixed(1)} s.`, '');
}
if (notes.length) md.push('Notes of this run:', '', ...notes.map((x) => '- ' + x.replace(/\n/g, ' ')), '');
const text = md.join('\n');
console.log('\n' + text);
const outFile = process.env.BENCH_AUTH_OUT || path.join(ROOT, QUICK ? 'build/bench-auth-quick.md' : 'build/bench-auth.md');
fs.mkdirSync(path.dirname(outFile), { recursive: true });
fs.writeFileSync(outFile, text);
console.log(`wrote ${path.relative(ROOT, outFile)}`);
process.exit(0);
