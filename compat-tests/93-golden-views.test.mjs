// Replays the view lines of couchdb-golden/views.jsonl (CouchDB 3.4.3's recorded answers) in file
// order, as couchdb-golden/README.md section 4 says: <hN> revs are bound on first sight and sent
// back where a request uses them; <seq>, <ref>, <int>, <signature> match any value of their kind;
// the `unstable` line is compared on status and body keys only.
//
// What is compared: the views part of the file (queries with every parameter, their errors,
// reducers, collation, _info, _view_cleanup, _compact/{ddoc}, _temp_view). Lines of other parts
// (design-doc validation, validate_doc_update, _changes filters, _update/_show/_list/_rewrite)
// are not sent, except the design-doc PUTs that later view lines query (sent, not compared), so
// each part can be switched on here once it is built.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { req } from './lib.mjs';
import { goldenMatcher } from './lib-golden.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const GOLDEN_DIR = process.env.STT_GOLDEN_DIR || path.resolve(here, '../../shared/couchdb-golden');
const FILE = path.join(GOLDEN_DIR, 'views.jsonl');
const MISSING = !fs.existsSync(FILE) && process.env.STT_GOLDEN_OPTIONAL === '1';
const LINES = (MISSING ? '' : fs.readFileSync(FILE, 'utf8')).split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));

// not sent at all: parts of the file built elsewhere (and their setup)
const SKIP = /^(vdu_(?!syntax_error)|setup_vdu_|changes_filter_|update_|show_|list_|rewrite_|handlers_ddoc_put|filter_ddoc_put)/;
// sent (their effects matter to later lines) but not compared
const SEND_ONLY = /^(ddoc_invalid_|vdu_syntax_error|ddoc_get$|all_docs_queries_post$|design_docs_list$)/;

const { fill, fillJson, cmp } = goldenMatcher({ h: '[0-9a-f]{32}' }, {
  '<seq>': (v) => (typeof v === 'string' && v.length > 0) || Number.isFinite(v),
  '<ref>': (v) => v !== undefined && v !== null,
  '<int>': (v) => Number.isInteger(v),
  '<signature>': (v) => typeof v === 'string' && /^[0-9a-f]+$/.test(v),
});

// Allowances, each with its reason.
const anyInt = (v) => Number.isInteger(v);
const ALLOW = {
  // updates_pending counts the db's writes since the index's last update: the ddoc_invalid_* PUTs
  // CouchDB refused are stored while design-doc validation is not built, so the count is higher;
  // waiting_commit is CouchDB's commit timer (true while a delayed commit is pending)
  ddoc_info: (exp) => {
    exp.view_index.updates_pending = { minimum: anyInt, preferred: anyInt, total: anyInt };
    exp.view_index.waiting_commit = (v) => typeof v === 'boolean';
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

const DBS = ['golden_views', 'golden_collation'];

test('views.jsonl replay (views part)', { skip: MISSING && 'couchdb-golden not present' }, async (t) => {
  for (const db of DBS) await req('DELETE', '/' + db);
  const failures = [];
  let compared = 0;
  for (const line of LINES) {
    if (SKIP.test(line.name)) continue;
    const res = await send(line);
    if (SEND_ONLY.test(line.name)) {
      cmp(line.response.body, res.json, 'body', []); /* binds the revs later lines send back */
      continue;
    }
    compared++;
    const errs = [];
    if (res.status !== line.response.status) errs.push(`status ${res.status}, expected ${line.response.status}`);
    const exp = structuredClone(line.response.body);
    if (ALLOW[line.name]) ALLOW[line.name](exp);
    if (line.unstable) {
      const ek = Object.keys(exp || {}).sort().join(), ak = Object.keys(res.json || {}).sort().join();
      if (ek !== ak) errs.push(`keys ${ak}, expected ${ek}`);
    } else if (exp !== undefined && exp !== null) {
      cmp(exp, res.json, 'body', errs);
    }
    if (errs.length) failures.push(`${line.name}: ${errs.slice(0, 4).join('; ')}`);
  }
  for (const db of DBS) await req('DELETE', '/' + db);
  t.diagnostic(`${compared} lines compared, ${failures.length} differ`);
  assert.ok(compared > 100, `only ${compared} lines compared`);
  assert.deepEqual(failures, []);
});
