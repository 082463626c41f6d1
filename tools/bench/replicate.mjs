// One PouchDB replication, run in its own node process so that every measurement
// starts from a cold client heap and the client's CPU and memory are its own.
//   node replicate.mjs pull URL COUNT   remote db -> fresh memory db
//   node replicate.mjs push URL COUNT   memory db of COUNT docs -> remote (empty) db
//   node replicate.mjs mem  -   COUNT   memory db -> memory db: the client-only ceiling
// With BENCH_REPL_SESSION='{"name":..,"password":..}' in the environment it first logs
// in with POST /_session (untimed) through PouchDB's own fetch, whose cookie jar then
// sends the AuthSession cookie with every request of the replication (the URL then
// carries no credentials): the cookie-session mode of auth.mjs.
// Protocol with bench.mjs: after the untimed setup (filling the source) it prints
// {"ready":true} and waits for one line on stdin, so the parent can sample the
// server's CPU right before the timed part; then it prints the result as JSON.
import PouchDB from 'pouchdb-core';
import httpAdapter from 'pouchdb-adapter-http';
import memoryAdapter from 'pouchdb-adapter-memory';
import replication from 'pouchdb-replication';
import readline from 'node:readline';
import { makeDocs } from './lib.mjs';

PouchDB.plugin(httpAdapter).plugin(memoryAdapter).plugin(replication);

const [mode, url, countArg] = process.argv.slice(2);
const count = Number(countArg);
const mem = (name) => new PouchDB(`${name}-${process.pid}`, { adapter: 'memory' });

async function fill(db) {
    for (let i = 0; i < count; i += 1000) {
        const res = await db.bulkDocs(makeDocs(i, Math.min(1000, count - i)));
        const bad = res.find((r) => r.error);
        if (bad) throw new Error(`filling the source: ${JSON.stringify(bad)}`);
    }
}

if (process.env.BENCH_REPL_SESSION && mode !== 'mem') {
    const u = new URL(url);
    const r = await PouchDB.fetch(`${u.origin}/_session`, {
        method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: process.env.BENCH_REPL_SESSION,
    });
    const text = await r.text();
    if (r.status !== 200 || !/AuthSession=/.test(r.headers.get('set-cookie') || '')) {
        throw new Error(`POST /_session -> ${r.status} ${text.slice(0, 200)}`);
    }
}

let source, target;
if (mode === 'pull') {
    source = new PouchDB(url);
    target = mem('pull');
} else if (mode === 'push') {
    source = mem('push');
    target = new PouchDB(url);
    await fill(source);
} else if (mode === 'mem') {
    source = mem('src');
    target = mem('dst');
    await fill(source);
} else {
    throw new Error(`unknown mode ${mode}`);
}

console.log(JSON.stringify({ ready: true }));
const rl = readline.createInterface({ input: process.stdin });
await new Promise((r) => rl.once('line', r));
rl.close();

const cpu0 = process.cpuUsage();
const t0 = performance.now();
// PouchDB's defaults (batch_size 100, batches_limit 10), as an application would run it.
const res = await PouchDB.replicate(source, target);
const seconds = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
if (res.docs_written !== count) {
    throw new Error(`${mode}: wrote ${res.docs_written} docs, expected ${count} (${JSON.stringify(res.errors).slice(0, 300)})`);
}
console.log(JSON.stringify({
    docs: res.docs_written, seconds,
    clientCpu: (cpu.user + cpu.system) / 1e6,
    clientPeakRss: process.resourceUsage().maxRSS * 1024,
}));
process.exit(0);
