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

const here = path.dirname(fileURLToPath(import.meta.url));
const GOLDEN_DIR = process.env.STT_GOLDEN_DIR || path.resolve(here, '../../shared/couchdb-golden');
const FILE = path.join(GOLDEN_DIR, 'mango.jsonl');
const MISSING = !fs.existsSync(FILE) && process.env.STT_GOLDEN_OPTIONAL === '1';
const LINES = (MISSING ? '' : fs.readFileSync(FILE, 'utf8')).split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
const HOST = new URL(BASE).host;

const ANY = { '<ms>': (v) => typeof v === 'number', '<ref>': (v) => v !== undefined && v !== null };
const bind = new Map(); // placeholder text (e.g. "<bookmark3>", "<h4>") -> our value
const PH = /<(h\d+|bookmark\d+|autoname\d+)>/g;
const fill = (s) => s.replace(/<host>/g, HOST).replace(PH, (all) => {
  if (!bind.has(all)) throw new Error(`request uses ${all}, which no earlier answer bound`);
  return bind.get(all);
});
const fillJson = (v) => {
  if (typeof v === 'string') return fill(v);
  if (Array.isArray(v)) return v.map(fillJson);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fillJson(x)]));
  return v;
};
// Expected values with what is bound so far filled in (unbound placeholders stay).
const fillKnown = (v) => {
  if (typeof v === 'string') return v.replace(/<host>/g, HOST).replace(PH, (all) => bind.get(all) ?? all);
  if (Array.isArray(v)) return v.map(fillKnown);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fillKnown(x)]));
  return v;
};

const KIND = { h: '[0-9a-f]{32}', bookmark: '[A-Za-z0-9_-]+', autoname: '[0-9a-f]{40}' };
function matchStr(exp, act) {
  if (typeof act !== 'string') return false;
  if (!PH.test(exp)) return exp === act;
  PH.lastIndex = 0;
  const names = [];
  const re = '^' + exp.split(/(<(?:h\d+|bookmark\d+|autoname\d+)>)/).map((part) => {
    const m = /^<(h|bookmark|autoname)\d+>$/.exec(part);
    if (!m) return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    if (bind.has(part)) return bind.get(part).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    names.push(part);
    return `(${KIND[m[1]]})`;
  }).join('') + '$';
  const mm = new RegExp(re).exec(act);
  if (!mm) return false;
  names.forEach((n, i) => bind.set(n, mm[i + 1]));
  return true;
}

function cmp(exp, act, where, errs) {
  if (typeof exp === 'function') {
    if (!exp(act)) errs.push(`${where}: unexpected ${JSON.stringify(act)}`);
    return;
  }
  if (typeof exp === 'string' && ANY[exp]) {
    if (!ANY[exp](act)) errs.push(`${where}: expected ${exp}, got ${JSON.stringify(act)}`);
    return;
  }
  if (typeof exp === 'string') {
    if (!matchStr(exp, act)) errs.push(`${where}: expected ${JSON.stringify(exp)}, got ${JSON.stringify(act)}`);
    return;
  }
  if (Array.isArray(exp)) {
    if (!Array.isArray(act)) { errs.push(`${where}: expected an array, got ${JSON.stringify(act)?.slice(0, 300)}`); return; }
    if (exp.length !== act.length) errs.push(`${where}: expected ${exp.length} items, got ${act.length}: ${JSON.stringify(act).slice(0, 400)}`);
    for (let i = 0; i < Math.min(exp.length, act.length); i++) cmp(exp[i], act[i], `${where}[${i}]`, errs);
    return;
  }
  if (exp && typeof exp === 'object') {
    if (!act || typeof act !== 'object' || Array.isArray(act)) { errs.push(`${where}: expected an object, got ${JSON.stringify(act)?.slice(0, 300)}`); return; }
    const ek = Object.keys(exp).sort(), ak = Object.keys(act).sort();
    if (ek.join() !== ak.join()) errs.push(`${where}: keys ${JSON.stringify(ak)}, expected ${JSON.stringify(ek)}`);
    for (const k of ek) if (k in act) cmp(exp[k], act[k], `${where}.${k}`, errs);
    return;
  }
  if (exp !== act) errs.push(`${where}: expected ${JSON.stringify(exp)}, got ${JSON.stringify(act)}`);
}

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
