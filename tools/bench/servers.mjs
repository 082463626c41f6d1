// Starts and stops the local servers under test: settee (the release binary that
// run.sh copied aside) and pouchdb-server from tools/bench/node_modules. Each start
// gets a fresh data directory and a free loopback port; each stop goes to the pid
// this module spawned, never to a process found by name.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseTarget, request, sleep } from './lib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const TMP = process.env.BENCH_TMP;
const SETTEE = process.env.BENCH_SETTEE;
// run.sh sets this when leveldown cannot load here: pouchdb-server then keeps its
// databases in memory (-m), and the table says so.
export const POUCH_IN_MEMORY = process.env.BENCH_POUCH_MEMORY === '1';

let serial = 0;

// settee has authentication (CouchDB 3's model): new databases are admin-only, so
// each settee gets a server admin from the environment, and every client of the
// benchmark sends it as basic auth (in the target's url and Authorization header).
// One PBKDF2 per server (the first request) and settee's credential cache makes
// the rest cheap. pouchdb-server keeps its admin party and gets no credentials.
export const SETTEE_ADMIN = { name: 'benchadmin', password: crypto.randomBytes(12).toString('hex') };

// Servers still running. Should the driver die (an exception, Ctrl-C), they are
// killed by pid on the way out instead of outliving the run and its temp dir.
const live = new Set();
process.on('exit', () => { for (const c of live) c.kill('SIGKILL'); });
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => process.exit(130));

// A port nobody listens on now. settee binds with SO_REUSEPORT, so it would happily
// share a port with another settee on this machine: the port must really be free.
function freePort() {
    return new Promise((resolve, reject) => {
        const s = net.createServer();
        s.on('error', reject);
        s.listen(0, '127.0.0.1', () => {
            const { port } = s.address();
            s.close(() => resolve(port));
        });
    });
}

function launch(kind, port, dir, opts) {
    const log = fs.openSync(path.join(dir, 'server.log'), 'w');
    const stdio = ['ignore', log, log];
    if (kind === 'settee') {
        // The access log costs a write per request: warning level keeps it quiet, as a
        // production deployment under load would.
        fs.writeFileSync(path.join(dir, 'settee.ini'), '[log]\nlevel = warning\n' + (opts.ini || ''));
        fs.mkdirSync(path.join(dir, 'data'));
        const env = { ...process.env, SETTEE_ADMIN_USER: SETTEE_ADMIN.name, SETTEE_ADMIN_PASSWORD: SETTEE_ADMIN.password };
        return spawn(SETTEE, ['--bind', '127.0.0.1', '--port', String(port),
            '--data-dir', path.join(dir, 'data'), '--config', path.join(dir, 'settee.ini')], { stdio, env });
    }
    // pouchdb-server logs every request to a file at level info: warning, the same
    // quiet as settee's. Its config.json and log go beside the data, not into it.
    fs.mkdirSync(path.join(dir, 'data'));
    fs.writeFileSync(path.join(dir, 'config.json'),
        JSON.stringify({ log: { file: path.join(dir, 'pouchdb.log'), level: 'warning' } }));
    const args = [path.join(HERE, 'node_modules/pouchdb-server/bin/pouchdb-server'),
        '-p', String(port), '-o', '127.0.0.1', '-d', path.join(dir, 'data') + '/',
        '-c', path.join(dir, 'config.json'), '-n'];
    if (POUCH_IN_MEMORY) args.push('-m');
    return spawn(process.execPath, args, { stdio, cwd: dir });
}

// Starts one server and waits until it answers GET / (for settee, as its admin: that
// first request pays the one PBKDF2 and fills the credential cache). Returns a target:
// { name, url (with any credentials), base, auth, pid, dataDir, stop() }.
// opts.ini: more text for settee's ini file (auth.mjs adds a second admin).
export async function start(kind, opts = {}) {
    const dir = path.join(TMP, `${kind}-${++serial}`);
    fs.mkdirSync(dir);
    const port = await freePort();
    const child = launch(kind, port, dir, opts);
    live.add(child);
    let exited = null;
    const exitP = new Promise((r) => child.on('exit', (code, sig) => { exited = { code, sig }; live.delete(child); r(); }));
    const creds = kind === 'settee'
        ? `${encodeURIComponent(SETTEE_ADMIN.name)}:${encodeURIComponent(SETTEE_ADMIN.password)}@` : '';
    const target = {
        name: kind, ...parseTarget(`http://${creds}127.0.0.1:${port}`), pid: child.pid,
        dataDir: path.join(dir, 'data'), logFile: path.join(dir, 'server.log'),
        get exited() { return exited; },
        async stop() {
            if (exited) return;
            child.kill('SIGTERM');
            const t = setTimeout(() => { if (!exited) child.kill('SIGKILL'); }, 10000);
            await exitP;
            clearTimeout(t);
        },
    };
    for (const t0 = Date.now(); Date.now() - t0 < 30000; await sleep(50)) {
        if (exited) break;
        try {
            const r = await request(target, 'GET', '/', null, { timeoutMs: 2000 });
            if (r.status === 200) return target;
        } catch { /* not listening yet */ }
    }
    await target.stop();
    const tail = fs.readFileSync(target.logFile, 'utf8').slice(-2000);
    throw new Error(`${kind} did not start on port ${port} (${JSON.stringify(exited)}):\n${tail}`);
}

// Runs runOn(server, label) on a fresh local server of each kind ('settee' or 'pouchdb'),
// one after the other, stopping each (and the client's idle sockets) before the next.
export async function runEach(kinds, runOn, closeIdle) {
    const results = [];
    for (const kind of kinds) {
        const t = await start(kind === 'pouchdb' ? 'pouchdb-server' : kind);
        try {
            results.push(await runOn(t, kind === 'pouchdb' ? `pouchdb-server${POUCH_IN_MEMORY ? ' (memory)' : ''}` : kind));
        } finally {
            closeIdle();
            await t.stop();
        }
    }
    return results;
}
