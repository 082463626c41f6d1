// Replays the design-document parts of couchdb-golden/views.jsonl (CouchDB 3.4.3's answers, README
// section 6) that do not need views: every write (setup, design docs, d31), design doc validation
// (ddoc_invalid_*, vdu_syntax_*), _changes filters (changes_filter_*), _update handlers (update_*)
// and validate_doc_update (vdu_*), in file order against fresh golden_views / golden_vdu
// databases. View queries, collation, _show, _list and _rewrite lines are left out (views are
// built elsewhere; settee answers _show/_list/_rewrite 410, checked below).
//
// Compared: status, and the body with CouchDB's rev hashes reduced to their generation (a
// compatible server makes other hashes), <seq> matching any seq and `ref` fields dropped.
// settee's deliberate differences, each marked in DIFF: error texts that come from the engine
// (SpiderMonkey's compilation messages, not couchjs's esprima ones; an Error's message where
// couchjs sends "{[]}"; a filter that throws answers its error, not an Erlang stack trace).
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isSettee } from './lib.mjs';
import { request, admin, HOST, deleteUser, deleteDb } from './lib-auth.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const GOLDEN_DIR = process.env.STT_GOLDEN_DIR || path.resolve(here, '../../shared/couchdb-golden');
const FILE = path.join(GOLDEN_DIR, 'views.jsonl');
const MISSING = !fs.existsSync(FILE) && process.env.STT_GOLDEN_OPTIONAL === '1';
const ALL = (MISSING ? '' : fs.readFileSync(FILE, 'utf8')).split('\n').filter((l) => l.trim())
  .map((l) => JSON.parse(l.replaceAll('<host>', HOST)));

const WANTED = /^(setup_(db_create|bulk_docs_30|conflict_branch|vdu_)|ddoc_|write_|filter_ddoc_put|changes_filter_|handlers_ddoc_put|update_|vdu_)/;
const LINES = ALL.filter((l) => WANTED.test(l.name) && !/^ddoc_(info|get)/.test(l.name));

// error names compared, reasons not (see the header)
const DIFF = {
  ddoc_invalid_map_syntax_error: 'reason-prefix',
  ddoc_invalid_reduce_syntax_error: 'reason-prefix',
  vdu_syntax_error_blocks_writes: 'error-only',
  vdu_put_throw_error_object: 'error-only',
  vdu_put_crash: 'error-only',
  vdu_bulk_docs_mixed: 'error-only',
  changes_filter_throws: 'status-only',
  // CouchDB's pending after a _design-filtered feed counts the rows after the last design doc
  // (32); settee's counts what is left after last_seq (0). Not this replay's subject.
  changes_filter_design: 'no-pending',
};

const REV = /^(\d+)-(<h\d+>|[0-9a-f]{32})$/;
function norm(v, mode) {
  if (Array.isArray(v)) return v.map((x) => norm(x, mode));
  if (v && typeof v === 'object') {
    const o = {};
    for (const [k, x] of Object.entries(v)) {
      if (k === 'ref' || (k === 'pending' && mode === 'no-pending')) continue;
      if (k === 'seq' || k === 'last_seq') { o[k] = '<seq>'; continue; }
      if (k === 'reason' && mode === 'error-only') continue;
      if (k === 'reason' && mode === 'reason-prefix') { o[k] = String(x).split(' failed: ')[0]; continue; }
      o[k] = norm(x, mode);
    }
    return o;
  }
  if (typeof v === 'string') {
    const m = REV.exec(v);
    // CouchDB's synthetic replicated revs (1-aaa..., 1-fff...) are kept whole
    if (m && !/^(.)\1+$/.test(m[2])) return `${m[1]}-*`;
  }
  return v;
}

function send(line) {
  const r = line.request;
  const headers = { ...(r.headers || {}) };
  let p = r.path;
  // placeholders in paths: revs bound from earlier answers
  p = p.replace(/(\d+-<h\d+>)/g, (m) => bound.get(m) ?? m);
  const body = r.body === undefined || r.body === null ? undefined : r.body;
  return request(r.method, p, { headers, body, auth: r.auth === 'anonymous' ? undefined : r.auth });
}

const bound = new Map();
function bind(golden, got) {
  if (Array.isArray(golden) && Array.isArray(got)) golden.forEach((g, i) => bind(g, got[i]));
  else if (golden && typeof golden === 'object' && got && typeof got === 'object') {
    for (const k of Object.keys(golden)) bind(golden[k], got[k]);
  } else if (typeof golden === 'string' && /^\d+-<h\d+>$/.test(golden) && typeof got === 'string') {
    if (!bound.has(golden)) bound.set(golden, got);
  }
}

test('views.jsonl design-document lines replay against settee as CouchDB answered', { timeout: 120000, skip: MISSING }, async () => {
  for (const u of ['writer1', 'reader1']) await deleteUser(u).catch(() => {});
  for (const d of ['golden_views', 'golden_vdu']) await deleteDb(d).catch(() => {});
  const settee = await isSettee();
  const failures = [];
  for (const line of LINES) {
    const got = await send(line);
    const want = line.response;
    let gotBody = got.json !== undefined ? got.json : got.text;
    bind(want.body, gotBody);
    const mode = settee ? DIFF[line.name] : undefined;
    if (got.status !== want.status) {
      failures.push(`${line.name}: status ${got.status} != ${want.status}: ${got.text.slice(0, 300)}`);
      continue;
    }
    if (mode === 'status-only') continue;
    try {
      assert.deepEqual(norm(gotBody, mode), norm(want.body, mode));
    } catch {
      failures.push(`${line.name}: body ${JSON.stringify(gotBody).slice(0, 400)} != ${JSON.stringify(want.body).slice(0, 400)}`);
    }
  }
  for (const u of ['writer1', 'reader1']) await deleteUser(u).catch(() => {});
  assert.deepEqual(failures, []);
});

test('_show, _list and _rewrite: settee answers 410 gone (CouchDB 3.4.3 still runs them)', { skip: MISSING }, async () => {
  if (!(await isSettee())) return;
  await admin('PUT', '/golden_design_gone');
  for (const p of ['_show/s/x', '_list/l/v', '_rewrite/anything']) {
    const r = await admin('GET', `/golden_design_gone/_design/h/${p}`);
    assert.equal(r.status, 410, r.text);
    assert.equal(r.json.error, 'gone');
    assert.match(r.json.reason, /not supported by settee/);
  }
  await deleteDb('golden_design_gone');
});
