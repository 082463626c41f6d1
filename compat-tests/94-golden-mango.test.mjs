// Replays couchdb-golden/mango.jsonl (CouchDB 3.4.3's recorded _index, _find and _explain answers)
// in file order, as couchdb-golden/README.md sections 4 and 7 say. Placeholders: <hN> revs and
// <bookmarkN> bookmarks and <autonameN> generated index names are bound on first sight and sent back
// where a request uses them; <ms> matches any number, <host> is the server's host:port.
//
// Lists whose order depends on a generated index name (GET _index's "indexes", _explain's
// "index_candidates") are compared after re-sorting the expected list by CouchDB's rule with our
// own name filled in: by design doc then name (candidates: the reverse, _all_docs last).
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { req, BASE } from './lib.mjs';
import { goldenMatcher } from './lib-golden.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const GOLDEN_DIR = process.env.STT_GOLDEN_DIR || path.resolve(here, '../../shared/couchdb-golden');
const FILE = path.join(GOLDEN_DIR, 'mango.jsonl');
const MISSING = !fs.existsSync(FILE) && process.env.STT_GOLDEN_OPTIONAL === '1';
const LINES = (MISSING ? '' : fs.readFileSync(FILE, 'utf8')).split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
const HOST = new URL(BASE).host;

const { fill, fillJson, fillKnown, cmp } = goldenMatcher(
  { h: '[0-9a-f]{32}', bookmark: '[A-Za-z0-9_-]+', autoname: '[0-9a-f]{40}' },
  { '<ms>': (v) => typeof v === 'number', '<ref>': (v) => v !== undefined && v !== null },
  { '<host>': HOST });

const byteCmp = (a, b) => Buffer.compare(Buffer.from(a ?? ''), Buffer.from(b ?? ''));
const ixCmp = (a, b) => (a.ddoc === null) - (b.ddoc === null) ? (a.ddoc === null ? -1 : 1) : byteCmp(a.ddoc, b.ddoc) || byteCmp(a.name, b.name);
function resort(exp) {
  if (!exp || typeof exp !== 'object') return exp;
  if (Array.isArray(exp.indexes)) exp.indexes.sort(ixCmp);
  if (Array.isArray(exp.index_candidates)) {
    exp.index_candidates.sort((x, y) => {
      if (x.index.ddoc === null || y.index.ddoc === null) return (x.index.ddoc === null) - (y.index.ddoc === null);
      return -ixCmp(x.index, y.index);
    });
  }
  return exp;
}

// Allowances, each with its reason.
const ALLOW = {
  // CouchDB's _all_docs cursor reads its rows in batches and counts the whole batch as examined;
  // settee stops at the limit
  find_execution_stats_with_limit: (exp) => {
    exp.execution_stats.total_keys_examined = (v) => Number.isInteger(v);
    exp.execution_stats.total_docs_examined = (v) => Number.isInteger(v);
  },
};

async function send(line) {
  const rq = line.request;
  const headers = { ...(rq.headers || {}) };
  let body;
  if (rq.body !== undefined && rq.body !== null) {
    body = rq.body_encoding === 'text' ? fill(rq.body) : JSON.stringify(fillJson(rq.body));
  }
  if (rq.auth === 'anonymous') headers.Authorization = 'Basic ' + Buffer.from('nobody-anonymous:').toString('base64');
  return req(rq.method, fill(rq.path), { body, headers });
}

const DBS = ['golden_mango', 'golden_mango_empty'];

test('mango.jsonl replay', { skip: MISSING && 'couchdb-golden not present' }, async (t) => {
  for (const db of DBS) await req('DELETE', '/' + db);
  const failures = [];
  let compared = 0;
  for (const line of LINES) {
    const res = await send(line);
    compared++;
    const errs = [];
    if (res.status !== line.response.status) errs.push(`status ${res.status}, expected ${line.response.status}`);
    let exp = structuredClone(line.response.body);
    // bind the generated names first: list orders depend on them
    if (/^index_create_auto_name/.test(line.name) && exp && res.json) cmp(exp.name, res.json.name, 'name', []);
    exp = resort(fillKnown(exp));
    if (ALLOW[line.name]) ALLOW[line.name](exp);
    if (exp !== undefined && exp !== null) cmp(exp, res.json, 'body', errs);
    if (errs.length) failures.push(`${line.name}: ${errs.slice(0, 4).join('; ')}`);
  }
  for (const db of DBS) await req('DELETE', '/' + db);
  t.diagnostic(`${compared} lines compared, ${failures.length} differ`);
  assert.ok(compared > 150, `only ${compared} lines compared`);
  assert.deepEqual(failures, []);
});
