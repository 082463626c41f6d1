// Shared helpers of the benchmark: the test documents, a keep-alive HTTP client,
// /proc readers for the servers' memory and CPU, the statistics and a wrk runner.
import { spawn } from 'node:child_process';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';

// ---- documents -------------------------------------------------------------

// A small seeded PRNG, so that every run and every target gets the very same
// documents, and their text is not trivially compressible (LevelDB's snappy would
// otherwise shrink repeated filler and flatter write and disk figures).
function prng(seed) {
    let s = seed >>> 0;
    return () => {
        s = (s + 0x6d2b79f5) >>> 0;
        let t = s;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

const WORDS = ('lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor ' +
    'incididunt ut labore et dolore magna aliqua enim ad minim veniam quis nostrud exercitation ' +
    'ullamco laboris nisi aliquip ex ea commodo consequat duis aute irure in reprehenderit ' +
    'voluptate velit esse cillum fugiat nulla pariatur excepteur sint occaecat cupidatat non ' +
    'proident sunt culpa qui officia deserunt mollit anim id est laborum').split(' ');

export const docId = (i) => 'd' + String(i).padStart(7, '0');

// Document i, about 1 KB once serialized (without _rev).
export function makeDoc(i) {
    const rnd = prng(i + 1);
    const doc = {
        _id: docId(i),
        type: 'bench',
        n: i,
        owner: 'user' + Math.floor(rnd() * 1000),
        score: Math.round(rnd() * 1e6) / 100,
        tags: [WORDS[Math.floor(rnd() * WORDS.length)], WORDS[Math.floor(rnd() * WORDS.length)]],
        body: '',
    };
    const base = JSON.stringify(doc).length;
    let body = '';
    while (body.length < 1024 - base) {
        body += WORDS[Math.floor(rnd() * WORDS.length)] + (rnd() < 0.1 ? '. ' : ' ');
    }
    doc.body = body.slice(0, 1024 - base);
    return doc;
}

export const makeDocs = (from, count) => Array.from({ length: count }, (_, k) => makeDoc(from + k));

// ---- HTTP ------------------------------------------------------------------

// One keep-alive agent for the whole run: connection setup would otherwise be a
// large part of every small request and favour whichever server accepts faster.
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

// Parses "http://user:pass@host:port/prefix" once: node's http.request wants the
// credentials as a header, and so does wrk.
export function parseTarget(url) {
    const u = new URL(url);
    const auth = u.username
        ? 'Basic ' + Buffer.from(decodeURIComponent(u.username) + ':' + decodeURIComponent(u.password)).toString('base64')
        : null;
    u.username = '';
    u.password = '';
    return { url: url.replace(/\/$/, ''), base: u.toString().replace(/\/$/, ''), auth,
        host: u.hostname, port: Number(u.port || 80), prefix: u.pathname.replace(/\/$/, '') };
}

// request(target, 'GET', '/db/_changes') -> { status, headers, body (Buffer), ms }.
// timeoutMs bounds a single request so that a stuck server cannot hang the run.
export function request(target, method, path, body, { timeoutMs = 600000, headers = {} } = {}) {
    return new Promise((resolve, reject) => {
        const u = new URL(target.base + path);
        const h = { Accept: 'application/json', ...headers };
        if (target.auth) h.Authorization = target.auth;
        let data = null;
        if (body !== undefined && body !== null) {
            data = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
            h['Content-Type'] = 'application/json';
            h['Content-Length'] = Buffer.byteLength(data);
        }
        const t0 = performance.now();
        const req = http.request(u, { method, headers: h, agent }, (res) => {
            const chunks = [];
            res.on('data', (c) => chunks.push(c));
            res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), ms: performance.now() - t0 }));
            res.on('error', reject);
        });
        req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${path}: no answer in ${timeoutMs / 1000} s`)));
        req.on('error', reject);
        req.end(data);
    });
}

// Like request(), but a non-2xx status is an error that names the request.
export async function ok(target, method, path, body, opts) {
    const r = await request(target, method, path, body, opts);
    if (r.status < 200 || r.status > 299) {
        throw new Error(`${method} ${path} -> ${r.status} ${r.body.toString().slice(0, 300)}`);
    }
    return r;
}

// Closes the client's idle keep-alive connections. Done before stopping servers:
// settee's graceful SIGTERM waits up to 10 s for an idle keep-alive connection.
export const closeIdle = () => agent.destroy();

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Waits for promise, or for ms at most; the timer is cleared either way so that no
// pending timeout keeps the process alive after the run.
export function within(promise, ms) {
    let timer;
    return Promise.race([promise, new Promise((r) => { timer = setTimeout(r, ms); })]).finally(() => clearTimeout(timer));
}

// ---- /proc -----------------------------------------------------------------

// VmRSS and VmHWM in bytes.
export function memOf(pid) {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number((s.match(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm')) || [0, 0])[1]);
    return { rss: kb('VmRSS') * 1024, hwm: kb('VmHWM') * 1024 };
}

// Resets VmHWM to the current RSS (Linux >= 4.0), so each workload gets its own peak.
export function resetPeak(pid) {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

// utime + stime of the process (all its threads) in seconds.
const CLK_TCK = 100; // sysconf(_SC_CLK_TCK) is 100 on every Linux that node runs on
export function cpuOf(pid) {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces; fields are counted after its ')'.
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK; // fields 14 and 15 of stat(5)
}

// Bytes on disk under dir (allocated blocks, as du counts them).
export function diskUsage(dir) {
    let total = 0;
    const walk = (d) => {
        for (const e of fs.readdirSync(d, { withFileTypes: true })) {
            const p = `${d}/${e.name}`;
            if (e.isDirectory()) walk(p);
            else total += fs.lstatSync(p).blocks * 512;
        }
    };
    walk(dir);
    return total;
}

// ---- statistics --------------------------------------------------------------

export function median(xs) {
    const s = [...xs].sort((a, b) => a - b);
    const m = s.length >> 1;
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// Runs wrk (-t2 -c32) with one of this folder's Lua scripts against target t for
// seconds, its settings in env (the scripts read BENCH_WRK_* variables), and reads
// the JSON line the script's done() prints: { rps (non-error requests/s), p50, p99
// (ms), errors (count), raw (wrk's error counts) }.
export function runWrk(t, script, env, seconds) {
    return new Promise((resolve, reject) => {
        const args = ['-t2', '-c32', `-d${seconds}s`, '--timeout', '10s', '-s', script, t.base + '/'];
        const common = path.join(path.dirname(script), 'wrk-common.lua');
        const child = spawn('wrk', args, { env: { ...process.env, BENCH_WRK_COMMON: common, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
        let text = '';
        child.stdout.on('data', (c) => { text += c; });
        child.stderr.on('data', (c) => { text += c; });
        const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 30) * 1000);
        child.on('exit', (code) => {
            clearTimeout(timer);
            const line = text.split('\n').find((l) => l.startsWith('{"requests"'));
            if (code !== 0 || !line) return reject(new Error(`wrk exited ${code}: ${text.slice(-500)}`));
            const r = JSON.parse(line);
            const e = r.errors;
            resolve({ rps: (r.requests - e.status) / r.seconds, p50: r.p50_ms, p99: r.p99_ms,
                errors: e.status + e.connect + e.read + e.write + e.timeout, requests: r.requests, raw: e });
        });
    });
}
