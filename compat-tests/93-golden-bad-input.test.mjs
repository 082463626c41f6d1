// Replays couchdb-golden/bad-input-extra.jsonl (CouchDB 3.4.3's answers to malformed and odd
// requests) line by line in file order against two fresh databases, as couchdb-golden/README.md
// sections 4 and 10 say: every request as the server admin, <hN> bound on first sight and sent
// back where a request uses it (CouchDB's rev hashes depend only on content, so a hash seen twice
// must come back the same twice), `generated` bodies built from their `exact` expression, the
// summarised deep-JSON reads compared on the nesting depth. Status, body and the headers the
// golden keeps are compared.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isSettee, dbName } from './lib.mjs';
import { request, HOST } from './lib-auth.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const GOLDEN_DIR = process.env.STT_GOLDEN_DIR || path.resolve(here, '../../shared/couchdb-golden');
const FILE = path.join(GOLDEN_DIR, 'bad-input-extra.jsonl');
const GOLDEN_MISSING = !fs.existsSync(FILE) && process.env.STT_GOLDEN_OPTIONAL === '1';
const DB = dbName('golden_bad');
const LINES = (GOLDEN_MISSING ? '' : fs.readFileSync(FILE, 'utf8'))
  .split('\n').filter((l) => l.trim())
  .map((l) => JSON.parse(l.replaceAll('<host>', HOST).replaceAll('golden_bad', DB)));

// ------------------------------------------------------------------ settee's deliberate differences
// Against settee these lines expect `settee`; against a real CouchDB the recorded answer. Three
// kinds (README, "Where settee differs from CouchDB on purpose"):
// * a 500 for a client's mistake: settee answers 400 with a reason;
// * an interactive write naming a rev (or `_revisions` history) of a document that does not
//   exist: CouchDB creates generation N+1 on top of a missing parent unless the database is
//   empty; settee always answers 409 conflict;
// * revisions at generation 0 or below (`_revisions.start` 0 or negative, more ids than
//   `start`, `_rev: "0-…"`): CouchDB stores them, settee refuses them with 400.
// `absent` names the doc a line creates in CouchDB but not in settee: the `total_rows` (and an
// `offset` past the end) of later `_all_docs` lines are lowered by the number of those.
const nonEmpty = (v) => typeof v === 'string' && v.length > 0;
const badRequest = (reason) => ({ status: 400, body: { error: 'bad_request', reason } });
const CONFLICT = { error: 'conflict', reason: 'Document update conflict.' };
const MISSING = { status: 404, body: { error: 'not_found', reason: 'missing' } };
const conflict409 = { status: 409, body: CONFLICT };
const conflictRow = (id) => ({ status: 201, body: [{ id, ...CONFLICT }] });
const ON_MISSING = 'an interactive write on a rev of a missing doc creates it (201) in a non-empty db';
const GEN0 = 'stores revisions at generation 0 or below';
const SETTEE_DIFFS = [
  ...['string_no', 'zero', 'one', 'string_false', 'null', 'object'].map((k) => ({
    name: `new_edits_${k}_bulk`, couchdb: '500 unknown_error function_clause',
    settee: badRequest('`new_edits` parameter must be a boolean.'),
  })),
  ...['number', 'null', 'object'].map((k) => ({
    name: `attachment_content_type_${k}`, couchdb: '500 unknown_error function_clause',
    settee: badRequest('Attachment content_type must be a string for a.txt'),
  })),
  {
    name: 'revisions_bulk_new_edits_false_ids_empty', couchdb: '500 [{"error":"error","reason":"internal_server_error"}]',
    settee: badRequest('When `new_edits: false`, the document needs `_rev` or `_revisions` specified'),
  },
  { name: 'rev_on_missing_doc_nonempty_db_put', couchdb: ON_MISSING, settee: conflict409 },
  { name: 'rev_on_missing_doc_nonempty_db_read_back', couchdb: ON_MISSING, settee: MISSING },
  { name: 'rev_on_missing_doc_nonempty_db_bulk', couchdb: ON_MISSING, settee: conflictRow('m2') },
  { name: 'rev_on_missing_doc_deleted_rev_nonempty_db', couchdb: ON_MISSING, settee: conflict409 },
  { name: 'dup_keys_bulk_docs_new_edits_twice', couchdb: `${ON_MISSING} (the last new_edits, true, wins in both)`, settee: conflictRow('dup_ne'), absent: 'dup_ne' },
  { name: 'dup_keys_bulk_docs_new_edits_twice_read_back', couchdb: ON_MISSING, settee: MISSING },
  { name: 'interactive_put_rev_on_missing_doc', couchdb: ON_MISSING, settee: conflict409, absent: 'ctl_put_missing' },
  { name: 'interactive_bulk_rev_on_missing_doc', couchdb: ON_MISSING, settee: conflictRow('ctl_bulk_missing'), absent: 'ctl_bulk_missing' },
  { name: 'interactive_bulk_rev_on_missing_doc_read_back', couchdb: ON_MISSING, settee: MISSING },
  { name: 'revisions_interactive_put_new_doc', couchdb: ON_MISSING, settee: conflict409, absent: 'rv_interactive' },
  { name: 'revisions_interactive_put_new_doc_read_back', couchdb: ON_MISSING, settee: MISSING },
  { name: 'revisions_interactive_bulk', couchdb: ON_MISSING, settee: conflictRow('rv_interactive_bulk'), absent: 'rv_interactive_bulk' },
  ...['start_zero', 'start_negative', 'more_ids_than_start'].flatMap((k) => ['bulk', 'put'].flatMap((how) => [
    { name: `revisions_${how}_new_edits_false_${k}`, couchdb: GEN0, settee: badRequest(nonEmpty), absent: `rv_${k}${how === 'put' ? '_put' : ''}` },
    { name: `revisions_${how}_new_edits_false_${k}_read_back`, couchdb: GEN0, settee: MISSING },
  ])),
  { name: 'rev_zero_gen_bulk_new_edits_false', couchdb: GEN0, settee: badRequest('Invalid rev format'), absent: 'odd_zero_gen' },
  { name: 'rev_zero_gen_read_back', couchdb: GEN0, settee: MISSING },
  { name: 'new_edits_query_param_on_bulk', couchdb: `${ON_MISSING} (the query's new_edits is ignored in both)`, settee: conflictRow('ne_query'), absent: 'ne_query' },
  { name: 'new_edits_query_no_on_put', couchdb: `${ON_MISSING} (new_edits=no means true in both)`, settee: conflict409, absent: 'ne_put_no' },
  { name: 'new_edits_query_zero_on_put', couchdb: `${ON_MISSING} (new_edits=0 means true in both)`, settee: conflict409, absent: 'ne_put_zero' },
  {
    name: 'attachment_stub_without_rev', couchdb: 'the reason names the doc and the attachment',
    settee: { status: 412, body: { error: 'missing_stub', reason: nonEmpty } },
  },
];
const DIFF = new Map(SETTEE_DIFFS.map((d) => [d.name, d]));

// ------------------------------------------------------------------ placeholder matching

const FULL = new Set(['<seq>', '<uuid>', '<int>', '<ref>', '<instance_start_time>']);
const EMBED = /<(h\d+|etag)>/g;
const PATTERN = { h: '[0-9a-f]{32}', etag: '[^"]+' };
const reEsc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

class Ctx {
  constructor() { this.bind = new Map(); }
  str(exp, act) {
    if (typeof act !== 'string') return false;
    if (!new RegExp(EMBED.source).test(exp)) return exp === act;
    const groups = [];
    let re = '^';
    let last = 0;
    for (const m of exp.matchAll(EMBED)) {
      re += reEsc(exp.slice(last, m.index));
      last = m.index + m[0].length;
      const name = m[1];
      const kind = name.replace(/\d+$/, '');
      if (kind === 'h' && this.bind.has(name)) re += reEsc(this.bind.get(name));
      else if (kind === 'h' && groups.includes(name)) re += `\\${groups.indexOf(name) + 1}`;
      else { groups.push(name); re += `(${PATTERN[kind]})`; }
    }
    re += reEsc(exp.slice(last)) + '$';
    const mm = new RegExp(re).exec(act);
    if (!mm) return false;
    groups.forEach((name, i) => { if (name.startsWith('h')) this.bind.set(name, mm[i + 1]); });
    return true;
  }
  full(exp, act, where, errs) {
    const bad = (why) => errs.push(`${where}: ${why}, got ${JSON.stringify(act)}`);
    if (exp === '<seq>') { if (!((typeof act === 'string' && act) || (typeof act === 'number' && Number.isFinite(act)))) bad('a seq'); }
    else if (exp === '<uuid>') { if (typeof act !== 'string' || !/^[0-9a-f]{32}$/.test(act)) bad('a 32-hex uuid'); }
    else if (exp === '<int>') { if (!Number.isInteger(act)) bad('an integer'); }
    else if (exp === '<ref>') { if (act === null || act === undefined) bad('a ref'); }
    else if (exp === '<instance_start_time>') { if (typeof act !== 'string') bad('an instance_start_time string'); }
  }
  json(exp, act, where, errs) {
    if (typeof exp === 'function') { if (!exp(act)) errs.push(`${where}: unexpected ${JSON.stringify(act)}`); return; }
    if (typeof exp === 'string') {
      if (FULL.has(exp)) return this.full(exp, act, where, errs);
      const deep = /^<nested (arrays|objects), depth (\d+)>$/.exec(exp);
      if (deep) {
        const d = depthOf(act, deep[1] === 'arrays');
        if (d !== Number(deep[2])) errs.push(`${where}: nesting depth ${d}, expected ${deep[2]}`);
        return;
      }
      if (!this.str(exp, act)) errs.push(`${where}: expected ${JSON.stringify(exp)}, got ${JSON.stringify(act)}`);
      return;
    }
    if (Array.isArray(exp)) {
      if (!Array.isArray(act)) { errs.push(`${where}: expected an array, got ${JSON.stringify(act)?.slice(0, 300)}`); return; }
      if (act.length !== exp.length) errs.push(`${where}: expected ${exp.length} items, got ${act.length}: ${JSON.stringify(act).slice(0, 600)}`);
      for (let i = 0; i < Math.min(exp.length, act.length); i++) this.json(exp[i], act[i], `${where}[${i}]`, errs);
      return;
    }
    if (exp && typeof exp === 'object') {
      if (!act || typeof act !== 'object' || Array.isArray(act)) { errs.push(`${where}: expected an object, got ${JSON.stringify(act)?.slice(0, 300)}`); return; }
      const ek = Object.keys(exp).sort(), ak = Object.keys(act).sort();
      if (ek.join() !== ak.join()) errs.push(`${where}: keys ${JSON.stringify(ak)}, expected ${JSON.stringify(ek)}`);
      for (const k of ek) if (k in act) this.json(exp[k], act[k], `${where}.${k}`, errs);
      return;
    }
    if (exp !== act) errs.push(`${where}: expected ${JSON.stringify(exp)}, got ${JSON.stringify(act)}`);
  }
  fill(s) {
    return s.replace(/<(h\d+)>/g, (all, name) => {
      if (!this.bind.has(name)) throw new Error(`request uses ${all}, which no earlier answer bound`);
      return this.bind.get(name);
    });
  }
  fillJson(v) {
    if (typeof v === 'string') return this.fill(v);
    if (Array.isArray(v)) return v.map((x) => this.fillJson(x));
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, this.fillJson(x)]));
    return v;
  }
}

// the nesting depth of a value made of single-element arrays (or single-member objects)
function depthOf(v, arrays) {
  let d = 0;
  while (arrays ? Array.isArray(v) : v && typeof v === 'object' && !Array.isArray(v)) {
    d++;
    v = arrays ? v[0] : Object.values(v)[0];
  }
  return d;
}

// A `generated` body's `exact` field is an expression of quoted strings, each optionally
// repeated (`'['*1000`), joined by ` + `: built here without evaluating anything.
function generated(exact) {
  const term = /\s*'((?:[^'\\]|\\.)*)'(?:\*(\d+))?\s*(\+|$)/y;
  let out = '';
  let m;
  while (term.lastIndex < exact.length && (m = term.exec(exact))) out += m[1].repeat(m[2] ? Number(m[2]) : 1);
  if (term.lastIndex !== exact.length) throw new Error(`cannot read generated body ${exact.slice(0, 80)}`);
  return out;
}

// ------------------------------------------------------------------ one line

const ctx = new Ctx();
let SETTEE = false;

async function send(line) {
  const rq = line.request;
  const p = ctx.fill(rq.path);
  const headers = {};
  for (const [k, v] of Object.entries(rq.headers || {})) headers[k] = ctx.fill(v);
  let body;
  if (rq.body !== undefined) {
    if (rq.body_encoding === 'text') body = ctx.fill(rq.body);
    else if (rq.body_encoding === 'base64') body = Buffer.from(rq.body, 'base64');
    else if (rq.body_encoding === 'generated') body = generated(rq.body.exact);
    else body = JSON.stringify(ctx.fillJson(rq.body));
  }
  return { p, act: await request(rq.method, p, { headers, body, auth: 'admin' }) };
}

function compare(line, act) {
  const errs = [];
  const exp = line.response;
  const diff = SETTEE ? DIFF.get(line.name) : undefined;
  if (diff) {
    const want = diff.settee;
    if (act.status !== want.status) errs.push(`status ${act.status}, expected ${want.status} (settee differs from CouchDB's ${diff.couchdb}); body ${act.text.slice(0, 300)}`);
    if ((act.headers['content-type'] || '') !== 'application/json') errs.push(`content-type ${act.headers['content-type']}`);
    ctx.json(want.body, act.json, 'body', errs);
    return errs;
  }
  if (act.status !== exp.status) errs.push(`status ${act.status}, expected ${exp.status} (body ${act.text.slice(0, 300)})`);
  for (const [name, ev] of Object.entries(exp.headers || {})) {
    if (!ctx.str(ev, act.headers[name])) errs.push(`header ${name}: expected ${JSON.stringify(ev)}, got ${JSON.stringify(act.headers[name])}`);
  }
  if (line.request.method === 'HEAD') return errs;
  if (exp.body_encoding !== undefined) {
    if (act.text !== exp.body) errs.push(`body ${JSON.stringify(act.text.slice(0, 200))}, expected ${JSON.stringify(String(exp.body).slice(0, 200))}`);
    return errs;
  }
  if (act.json === undefined) {
    errs.push(`body is not JSON: ${act.text.slice(0, 300)}`);
    return errs;
  }
  let want = exp.body;
  if (SETTEE && absent.size && want && typeof want === 'object' && (Number.isInteger(want.total_rows) || Array.isArray(want.results))) {
    want = { ...want };
    if (Number.isInteger(want.total_rows)) want.total_rows -= absent.size;
    if (Number.isInteger(exp.body.offset) && exp.body.offset === exp.body.total_rows) want.offset = want.total_rows;
    if (Array.isArray(want.results)) want.results = want.results.filter((row) => !absent.has(row.id));
    if (line.name === 'query_repeated_param') {
      // its first rows are docs settee did not create: the count (limit=3, the last
      // repetition, wins) is what this line is about
      if (!Array.isArray(act.json.rows) || act.json.rows.length !== 3) errs.push(`expected 3 rows, got ${JSON.stringify(act.json.rows)}`);
      want = { ...want, rows: act.json.rows };
    }
  }
  ctx.json(want, act.json, 'body', errs);
  return errs;
}

// ids of docs CouchDB created and settee (on purpose) did not, so far in the replay
const absent = new Set();

async function dropDbs() {
  for (const db of [DB, `${DB}_empty`]) await request('DELETE', '/' + db, { auth: 'admin' });
}

test(`golden bad input: ${LINES.length} request/response pairs`, { timeout: 300000, skip: GOLDEN_MISSING }, async (t) => {
  assert.equal(LINES.length, 208, 'bad-input-extra.jsonl has 208 lines');
  for (const d of SETTEE_DIFFS) assert.ok(LINES.some((l) => l.name === d.name), `settee difference ${d.name} names a line`);
  SETTEE = await isSettee();
  t.diagnostic(SETTEE ? `settee: ${SETTEE_DIFFS.length} lines expect settee's answer (see SETTEE_DIFFS)` : 'not settee: every line expects CouchDB\'s recorded answer');
  let failed = 0;
  try {
    for (const line of LINES) {
      const note = DIFF.has(line.name) && SETTEE ? `settee differs: CouchDB answers ${DIFF.get(line.name).couchdb}` : undefined;
      // later lines depend on earlier ones: a failing line is reported and the replay goes on
      await t.test(line.name, { timeout: 60000 }, async (st) => {
        if (note) st.diagnostic(note);
        try {
          const { p, act } = await send(line);
          const errs = compare(line, act);
          if (SETTEE && DIFF.get(line.name)?.absent) absent.add(DIFF.get(line.name).absent);
          if (errs.length) assert.fail(`${line.name}: ${line.request.method} ${p}\n  ` + errs.join('\n  '));
        } catch (e) { failed++; throw e; }
      });
    }
  } finally {
    await dropDbs().catch((e) => t.diagnostic(`clean-up: ${e.message}`));
  }
  t.diagnostic(`${failed} of ${LINES.length} lines differ`);
});
