// What a validate_doc_update costs _bulk_docs (issue 12's goal: under 30% slower than without).
// Against a running server (COUCH_URL with admin credentials): two fresh databases, one with a
// typical validator, get the same batches of ~1 KB docs from CLIENTS concurrent clients; rounds
// alternate between them so both see the same machine. Prints docs/s for each and the slowdown.
//   COUCH_URL=http://admin:admin@127.0.0.1:5984 node tools/bench/vdu.mjs
// Environment: DOCS (per round and db, 20000), BATCH (docs per _bulk_docs, 500), CLIENTS (4),
// ROUNDS (3).
const url = new URL(process.env.COUCH_URL || 'http://admin:admin@127.0.0.1:5984');
const auth = 'Basic ' + Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64');
const base = `${url.protocol}//${url.host}`;
const DOCS = Number(process.env.DOCS || 20000);
const BATCH = Number(process.env.BATCH || 500);
const CLIENTS = Number(process.env.CLIENTS || 4);
const ROUNDS = Number(process.env.ROUNDS || 3);
const VDU = `function (newDoc, oldDoc, userCtx, secObj) {
  if (newDoc._deleted) return;
  if (typeof newDoc.type !== 'string') throw({forbidden: 'type must be a string'});
  if (oldDoc && oldDoc.owner !== newDoc.owner) throw({forbidden: 'owner cannot change'});
}`;

async function call(method, path, body) {
  const r = await fetch(base + path, {
    method, headers: { ...(url.username ? { Authorization: auth } : {}), 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${text.slice(0, 200)}`);
  return JSON.parse(text);
}

const filler = 'x'.repeat(900);
function batch(round, c, k) {
  const docs = [];
  for (let i = 0; i < BATCH; i++) docs.push({ _id: `r${round}c${c}b${k}d${i}`, type: 'item', owner: `u${i % 7}`, n: i, filler });
  return { docs };
}

async function load(db, round) {
  const per = Math.ceil(DOCS / BATCH / CLIENTS);
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CLIENTS }, async (_, c) => {
    for (let k = 0; k < per; k++) {
      const res = await call('POST', `/${db}/_bulk_docs`, batch(round, c, k));
      if (res.some((x) => x.error)) throw new Error(`${db}: ${JSON.stringify(res.find((x) => x.error))}`);
    }
  }));
  return (per * CLIENTS * BATCH) / ((performance.now() - t0) / 1000);
}

const dbs = { plain: `bench_vdu_plain_${process.pid}`, vdu: `bench_vdu_with_${process.pid}` };
for (const db of Object.values(dbs)) await call('PUT', `/${db}`);
await call('PUT', `/${dbs.vdu}/_design/v`, { validate_doc_update: VDU });
const rates = { plain: [], vdu: [] };
try {
  await load(dbs.plain, 'w'); // warm-up: both paths, query-server processes started
  await load(dbs.vdu, 'w');
  for (let r = 0; r < ROUNDS; r++) {
    for (const k of r % 2 ? ['vdu', 'plain'] : ['plain', 'vdu']) rates[k].push(await load(dbs[k], r));
  }
} finally {
  for (const db of Object.values(dbs)) await call('DELETE', `/${db}`).catch(() => {});
}
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const p = median(rates.plain), v = median(rates.vdu);
console.log(`_bulk_docs, ${BATCH} docs of ~1 KB per request, ${CLIENTS} clients, median of ${ROUNDS} rounds of ${DOCS} docs`);
console.log(`  without a validator: ${Math.round(p)} docs/s   (rounds: ${rates.plain.map(Math.round).join(', ')})`);
console.log(`  with a validator:    ${Math.round(v)} docs/s   (rounds: ${rates.vdu.map(Math.round).join(', ')})`);
console.log(`  slowdown: ${((1 - v / p) * 100).toFixed(1)}%`);
