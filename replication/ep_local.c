/* A local database as a replication endpoint: changes, revs_diff, reads and
 * replicated writes straight through the store, no HTTP. Writes are checked as
 * the HTTP path checks them (design doc checks and validate_doc_update, as the
 * job's user), and a continuous job that has caught up sleeps until the store's
 * commit hook says the database moved (stt_rep_notify).
 *
 * Who may use it: the job's user must be a member of the database (readers and
 * writers are the same in CouchDB); creating a target takes a server admin. */
#include "design/design.h"
#include "mango/mango.h"
#include "replication/rep_int.h"
#include "replication/replication.h"
#include "replication/selector.h"
#include "src/common/codec.h"
#include "src/common/err.h"
#include <stdlib.h>
#include <string.h>

typedef struct {
    stt_rep_ep_t base;
    stt_store_t *store;
    const stt_user_ctx_t *user;
    stt_db_t *db;
    stt_arena_t sel_arena;
    stt_selector_t *selector;
    stt_json_t sel_json; /* the selector as given, for an index that serves it */
    /* filter=ddoc/name: the design doc (in sel_arena), the function, CouchDB's req */
    bool js;
    stt_qs_ddoc_t ddoc;
    const char *fn;
    stt_qs_text_t req;
    stt_json_t doc_ids;
} ep_t;

static bool sec_check(ep_t *e, stt_db_t *db, bool admin)
{
    if (stt_user_is_admin(e->user)) return true;
    stt_buf_t b = STT_BUF_INIT;
    stt_db_get_security(db, &b);
    stt_arena_t a = STT_ARENA_INIT;
    stt_json_t sec;
    bool ok = stt_json_parse(&a, b.base ? b.base : "{}", b.base ? b.len : 2, &sec, NULL, 0) == 0 &&
              (admin ? stt_security_is_db_admin(&sec, e->user) : stt_security_is_member(&sec, e->user));
    stt_arena_free(&a);
    stt_buf_free(&b);
    return ok;
}

static bool is_member(ep_t *e, stt_db_t *db)
{
    return sec_check(e, db, false);
}

static bool is_db_admin(ep_t *e, stt_db_t *db)
{
    return sec_check(e, db, true);
}

static int l_open(stt_rep_ep_t *base, bool create, const char *params)
{
    ep_t *e = (ep_t *)base;
    const char *name = base->spec->db;
    int rc = stt_db_open(e->store, name, strlen(name), &e->db);
    if (rc == STT_E_DB_NOT_FOUND && create) {
        if (!stt_user_is_admin(e->user)) {
            stt__rep_ep_error(base, 401, "unauthorized", "unauthorized to access or create database %s", name);
            return STT_E_UNAUTHORIZED;
        }
        rc = stt_db_create(e->store, name, strlen(name));
        if (rc == 0 || rc == STT_E_FILE_EXISTS) rc = stt_db_open(e->store, name, strlen(name), &e->db);
    }
    if (rc) {
        /* CouchDB names a local db by its URL on this server */
        stt_buf_t u = STT_BUF_INIT;
        if (base->params->self_url) {
            stt_buf_appends(&u, base->params->self_url);
            stt__rep_url_encode(&u, name, strlen(name));
            stt_buf_appendc(&u, '/');
        } else {
            stt_buf_appends(&u, name);
        }
        stt__rep_ep_error(base, 404, "db_not_found", "could not open %.*s", (int)u.len, u.base);
        stt_buf_free(&u);
        return STT_E_DB_NOT_FOUND;
    }
    if ((stt_db_flags(e->db) & STT_DB_ACCESS) && !is_db_admin(e, e->db)) {
        /* the local endpoint reads and writes the whole db: a user of a per-document
         * access db replicates through HTTP, where _access filters every read */
        stt__rep_ep_error(base, 403, "forbidden",
                          "%s has per-document access: replicate it as a user through its http(s):// URL", name);
        return STT_E_FORBIDDEN;
    }
    if (!is_member(e, e->db)) {
        stt__rep_ep_error(base, 401, "unauthorized", "unauthorized to access or create database %s", name);
        return STT_E_UNAUTHORIZED;
    }
    const stt_rep_params_t *p = base->params;
    if (base->spec == &p->source && p->filter_kind == STT_REP_F_SELECTOR) {
        char err[256];
        if (stt_json_parse(&e->sel_arena, p->selector, strlen(p->selector), &e->sel_json, NULL, 0) != 0 ||
            stt_selector_compile(&e->sel_arena, &e->sel_json, &e->selector, err, sizeof(err)) != 0) {
            stt__rep_ep_error(base, 400, "bad_request", "invalid selector");
            return STT_E_BAD_REQUEST;
        }
    }
    if (base->spec == &p->source && p->filter_kind == STT_REP_F_DOC_IDS)
        stt_json_parse(&e->sel_arena, p->doc_ids, strlen(p->doc_ids), &e->doc_ids, NULL, 0);
    return 0;
}

/* ------------------------------------------------------------------ changes */

static uint64_t parse_seq(const char *s)
{
    if (!s) return 0;
    while (*s == '"' || *s == ' ')
        s++;
    return strtoull(s, NULL, 10);
}

typedef struct {
    ep_t *e;
    stt_reader_t *rd;
    stt_arena_t *a;
    size_t limit, n, cap;
    stt_rep_change_t *rows;
    uint64_t last;
    /* a selector feed helped by a Mango index (stt_mango_feed_set) */
    bool use_idx;
    stt_mango_feed_set_t idx;
} scan_t;

/* The revisions a row lists: every leaf (the replicator's style=all_docs) unless
 * winning_revs_only. */
static size_t row_nrevs(const scan_t *c, const stt_doc_summary_t *s)
{
    return c->e->base.params->winning_revs_only ? 1 : s->nleaves;
}

static bool want(scan_t *c, const stt_doc_summary_t *s)
{
    ep_t *e = c->e;
    if (e->doc_ids.type == STT_JSON_ARRAY) {
        for (uint32_t i = 0; i < e->doc_ids.len; i++)
            if (e->doc_ids.u.items[i].len == s->idlen && memcmp(e->doc_ids.u.items[i].u.s, s->id, s->idlen) == 0)
                return true;
        return false;
    }
    /* a selector, per revision of the row: selector_revs; the index tells of the
     * winner only: a losing leaf's body is read all the same */
    if (e->selector && c->use_idx && row_nrevs(c, s) == 1 && !stt_mango_feed_may_match(&c->idx, s)) return false;
    return true; /* a design doc's filter: decided per batch, by the query server (js_filter) */
}

/* row's revisions (replication/filter_revs.c) cut to those pass says passed;
 * false when none did */
static bool keep_revs(stt_rep_change_t *row, const bool *pass)
{
    size_t k = 0;
    for (size_t i = 0; i < row->nrevs; i++)
        if (pass[i]) row->revs[k++] = row->revs[i];
    row->nrevs = k;
    return k > 0;
}

/* The selector on each revision of row, as _changes?filter=_selector&style=all_docs
 * runs it; false when none matched. */
static bool selector_revs(scan_t *c, stt_rep_change_t *row)
{
    stt_doc_t d;
    if (stt_doc_get(c->rd, row->id, strlen(row->id), &d) != 0) return false;
    bool *pass = stt_arena_alloc(c->a, row->nrevs * sizeof(bool));
    for (size_t i = 0; i < row->nrevs; i++) {
        int node = stt_filter_node(&d, row->revs[i], strlen(row->revs[i]));
        pass[i] = node >= 0 && stt_filter_selector_node(c->rd, &d, node, c->e->selector);
    }
    stt_doc_free(&d);
    return keep_revs(row, pass);
}

static int on_change(void *ctx, const stt_doc_summary_t *s)
{
    scan_t *c = ctx;
    c->last = s->seq;
    if (!want(c, s)) return 0;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        stt_rep_change_t *r = stt_arena_alloc(c->a, cap * sizeof(*r));
        if (c->n) memcpy(r, c->rows, c->n * sizeof(*r));
        c->rows = r, c->cap = cap;
    }
    stt_rep_change_t *row = &c->rows[c->n++];
    row->id = stt_arena_strndup(c->a, s->id, s->idlen);
    stt_buf_t b = STT_BUF_INIT;
    stt_buf_appendf(&b, "\"%llu-s\"", (unsigned long long)s->seq);
    row->seq = stt_arena_strndup(c->a, b.base, b.len);
    stt_buf_free(&b);
    row->nrevs = row_nrevs(c, s);
    row->revs = stt_arena_alloc(c->a, row->nrevs * sizeof(char *));
    for (size_t i = 0; i < row->nrevs; i++)
        row->revs[i] = stt_arena_strndup(c->a, s->leaf_rev[i], s->leaf_revlen[i]);
    if (c->e->selector && !selector_revs(c, row)) c->n--;
    return c->n >= c->limit;
}

/* rows[from..n) through the design doc's filter function, as _changes?filter=
 * runs it (each revision of a row, CouchDB's req): a row keeps the revisions that
 * passed, and leaves when none did. */
static int js_filter(scan_t *c, size_t from)
{
    ep_t *e = c->e;
    stt_qs_pool_t *qs = stt__rep_qs();
    size_t n = 0;
    for (size_t i = from; i < c->n; i++)
        n += c->rows[i].nrevs;
    stt_qs_text_t *docs = stt_arena_alloc(c->a, n * sizeof(*docs));
    bool *pass = stt_arena_alloc(c->a, n * sizeof(bool));
    stt_buf_t b = STT_BUF_INIT;
    size_t k = 0;
    for (size_t i = from; i < c->n; i++) {
        const stt_rep_change_t *row = &c->rows[i];
        stt_doc_t d;
        bool got = stt_doc_get(c->rd, row->id, strlen(row->id), &d) == 0;
        for (size_t r = 0; r < row->nrevs; r++) {
            stt_buf_reset(&b);
            int node = got ? stt_filter_node(&d, row->revs[r], strlen(row->revs[r])) : -1;
            if (node >= 0) stt_filter_doc(c->rd, &d, node, &b);
            if (!b.len) stt_buf_appends(&b, "null");
            docs[k++] = (stt_qs_text_t){stt_arena_memdup(c->a, b.base, b.len), b.len};
        }
        if (got) stt_doc_free(&d);
    }
    stt_buf_free(&b);
    stt_qs_err_t err = {0};
    int rc = qs ? stt_qs_filter(qs, &e->ddoc, e->fn, docs, n, e->req, c->a, pass, &err) : -1;
    if (rc) {
        stt__rep_ep_error(&e->base, err.status ? err.status : 500, err.error ? err.error : "os_process_error",
                          "filter %s failed: %s", e->fn, err.reason ? err.reason : "no query server");
        return STT_E_INTERNAL;
    }
    size_t kept = from;
    k = 0;
    for (size_t i = from; i < c->n; i++) {
        size_t nrevs = c->rows[i].nrevs;
        if (keep_revs(&c->rows[i], pass + k)) c->rows[kept++] = c->rows[i];
        k += nrevs;
    }
    c->n = kept;
    return 0;
}

typedef struct {
    stt_db_t *db;
    uint64_t since;
} moved_t;

static bool moved(void *ctx)
{
    moved_t *m = ctx;
    uint64_t mark[3];
    stt_db_mark(m->db, mark);
    return mark[1] > m->since;
}

static int l_changes(stt_rep_ep_t *base, stt_arena_t *a, const char *since, size_t limit, uint64_t wait_ms,
                     stt_rep_change_t **rows, size_t *nrows, const char **last_seq)
{
    ep_t *e = (ep_t *)base;
    scan_t c = {.e = e, .a = a, .limit = limit ? limit : 500, .last = parse_seq(since)};
    for (;;) {
        uint64_t from = c.last;
        c.use_idx = e->selector && stt_mango_feed_set(e->db, &e->sel_json, from, &c.idx) == 0;
        /* opened after the index was brought up to date: its snapshot covers idx.upto */
        if (stt_reader_open(e->db, &c.rd) != 0) {
            if (c.use_idx) stt_mango_feed_set_free(&c.idx);
            stt__rep_ep_error(base, 500, "db_not_found", "could not read %s", base->spec->db);
            return STT_E_DB_NOT_FOUND;
        }
        size_t before = c.n;
        int rc = stt_changes_scan(c.rd, from, false, on_change, &c);
        bool full = c.n >= c.limit;
        if (rc == 0 && e->js && c.n > before) rc = js_filter(&c, before);
        stt_reader_close(c.rd);
        if (c.use_idx) stt_mango_feed_set_free(&c.idx);
        if (rc == 0 && e->js && full && c.n < c.limit) continue; /* the filter dropped rows of a full batch */
        if (rc) {
            stt__rep_ep_error(base, 500, "error", "changes of %s could not be read", base->spec->db);
            return rc;
        }
        if (c.n || !wait_ms || atomic_load(base->stop)) break;
        stt_rep_waiter_t w;
        moved_t m = {e->db, c.last};
        stt__rep_wait(&w, stt_db_id(e->db), wait_ms, base->stop, moved, &m);
        if (!moved(&m)) break;
        wait_ms = wait_ms > 100 ? wait_ms - 100 : 1; /* another round, for filtered feeds */
    }
    *rows = c.rows;
    *nrows = c.n;
    stt_buf_t b = STT_BUF_INIT;
    stt_buf_appendf(&b, "\"%llu-s\"", (unsigned long long)c.last);
    *last_seq = stt_arena_strndup(a, b.base, b.len);
    stt_buf_free(&b);
    return 0;
}

/* ------------------------------------------------------------------ revs_diff, reads */

static int l_revs_diff(stt_rep_ep_t *base, stt_arena_t *a, const char *req, size_t len, stt_json_t *ans)
{
    ep_t *e = (ep_t *)base;
    stt_json_t body;
    if (stt_json_parse(a, req, len, &body, NULL, 0) != 0) return STT_E_BAD_JSON;
    stt_reader_t *rd;
    if (stt_reader_open(e->db, &rd) != 0) return STT_E_DB_NOT_FOUND;
    stt_buf_t out = STT_BUF_INIT;
    const char *reason;
    int rc = stt_revs_diff(rd, a, &body, &out, &reason, NULL, NULL);
    stt_reader_close(rd);
    if (rc == 0) rc = stt_json_parse(a, stt_arena_memdup(a, out.base, out.len), out.len, ans, NULL, 0);
    if (rc) stt__rep_ep_error(base, 500, "error", "revs_diff on %s failed", base->spec->db);
    stt_buf_free(&out);
    return rc;
}

static int l_fetch(stt_rep_ep_t *base, stt_arena_t *a, const stt_rep_fetch_t *f, size_t n, stt_json_t *out,
                   size_t *ndocs)
{
    ep_t *e = (ep_t *)base;
    size_t k = 0;
    stt_reader_t *rd;
    if (stt_reader_open(e->db, &rd) != 0) return STT_E_DB_NOT_FOUND;
    stt_buf_t b = STT_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        stt_doc_t d;
        if (stt_doc_get(rd, f[i].id, strlen(f[i].id), &d) != 0) continue;
        stt_rev_t *since = stt_arena_alloc(a, (f[i].natts_since ? f[i].natts_since : 1) * sizeof(*since));
        size_t nsince = 0;
        for (size_t s = 0; s < f[i].natts_since; s++)
            if (stt_rev_parse(f[i].atts_since[s], strlen(f[i].atts_since[s]), &since[nsince]) == 0) nsince++;
        for (size_t r = 0; r < f[i].nrevs; r++) {
            stt_rev_t rev;
            int node;
            if (stt_rev_parse(f[i].revs[r], strlen(f[i].revs[r]), &rev) != 0 || stt_doc_select(&d, &rev, &node) != 0)
                continue; /* gone meanwhile (compacted, purged): the next run finds its successor */
            stt_render_opts_t o = {.revs = true,
                                   .attachments = true,
                                   .atts_since = since,
                                   .natts_since = nsince,
                                   .revs_limit = UINT32_MAX};
            stt_buf_reset(&b);
            if (stt_doc_render(rd, &d, node, &o, &b) != 0) continue;
            if (stt_json_parse(a, stt_arena_memdup(a, b.base, b.len), b.len, &out[k], NULL, 0) == 0) k++;
        }
        stt_doc_free(&d);
    }
    stt_buf_free(&b);
    stt_reader_close(rd);
    *ndocs = k;
    return 0;
}

/* ------------------------------------------------------------------ writes */

static void vdu_ctx(ep_t *e, stt_arena_t *a, stt_vdu_ctx_t *c)
{
    stt_buf_t b = STT_BUF_INIT;
    size_t nlen;
    const char *name = stt_db_name(e->db, &nlen);
    stt_buf_appends(&b, "{\"db\":");
    stt_json_write_str(&b, name, nlen);
    stt_buf_appends(&b, ",\"name\":");
    if (e->user->name)
        stt_json_write_str(&b, e->user->name, e->user->namelen);
    else
        stt_buf_appends(&b, "null");
    stt_buf_appends(&b, ",\"roles\":[");
    for (size_t i = 0; i < e->user->nroles; i++) {
        if (i) stt_buf_appendc(&b, ',');
        stt_json_write_cstr(&b, e->user->roles[i]);
    }
    stt_buf_appends(&b, "]}");
    c->user_ctx.s = stt_arena_memdup(a, b.base, b.len);
    c->user_ctx.len = b.len;
    stt_buf_reset(&b);
    stt_db_get_security(e->db, &b);
    if (!b.len) stt_buf_appends(&b, "{}");
    c->sec_obj.s = stt_arena_memdup(a, b.base, b.len);
    c->sec_obj.len = b.len;
    stt_arena_t sa = STT_ARENA_INIT;
    stt_json_t sec;
    c->is_admin = stt_user_is_admin(e->user) || (stt_json_parse(&sa, c->sec_obj.s, b.len, &sec, NULL, 0) == 0 &&
                                                 stt_security_is_db_admin(&sec, e->user));
    stt_arena_free(&sa);
    stt_buf_free(&b);
}

static int l_write(stt_rep_ep_t *base, stt_arena_t *a, const stt_json_t *docs, size_t n, size_t *failed)
{
    ep_t *e = (ep_t *)base;
    stt_doc_write_t *w = stt_arena_alloc(a, (n ? n : 1) * sizeof(*w));
    stt_doc_result_t *res = stt_xcalloc(n ? n : 1, sizeof(*res));
    size_t k = 0, bad = 0;
    bool design = false;
    stt_doc_parse_opts_t po = {.new_edits = false};
    for (size_t i = 0; i < n; i++) {
        const char *reason;
        if (stt_doc_parse(a, &docs[i], &po, &w[k], &reason) != 0) {
            bad++;
            continue;
        }
        if (w[k].idlen > 8 && memcmp(w[k].id, "_design/", 8) == 0) design = true;
        k++;
    }
    stt_qs_pool_t *qs = stt__rep_qs();
    stt_vdu_set_t *vdus = qs ? stt_design_vdus(e->db) : NULL;
    if (qs && stt_design_needs_validation(vdus, w, k)) {
        stt_vdu_ctx_t c;
        vdu_ctx(e, a, &c);
        if (stt_design_validate_writes(qs, e->db, vdus, &c, w, k, false, a, res)) {
            size_t kept = 0;
            for (size_t i = 0; i < k; i++)
                if (!res[i].err)
                    w[kept++] = w[i];
                else
                    bad++;
            k = kept;
            memset(res, 0, k * sizeof(*res));
        }
    }
    stt_vdu_set_release(vdus);
    int rc = k ? stt_doc_write(e->db, w, k, false, res) : 0;
    if (rc == 0)
        for (size_t i = 0; i < k; i++)
            if (res[i].err) bad++;
    free(res);
    if (design && rc == 0) stt_design_changed(e->db);
    if (rc) {
        stt__rep_ep_error(base, rc == STT_E_NO_SPACE ? 507 : 500, "error", "writing to %s failed", base->spec->db);
        return rc;
    }
    *failed = bad;
    return 0;
}

/* ------------------------------------------------------------------ checkpoints */

static int l_get_local(stt_rep_ep_t *base, stt_arena_t *a, const char *id, stt_json_t *out)
{
    ep_t *e = (ep_t *)base;
    uint64_t rev;
    stt_buf_t b = STT_BUF_INIT;
    int rc = stt_local_get(e->db, id + 7, strlen(id) - 7, &rev, &b);
    if (rc == 0) rc = stt_json_parse(a, stt_arena_memdup(a, b.base, b.len), b.len, out, NULL, 0);
    stt_buf_free(&b);
    return rc;
}

static int l_put_local(stt_rep_ep_t *base, const char *id, const char *json, size_t len)
{
    ep_t *e = (ep_t *)base;
    uint64_t rev;
    int rc = stt_local_put(e->db, id + 7, strlen(id) - 7, 0, json, len, false, &rev);
    if (rc) stt__rep_ep_error(base, 500, "error", "checkpoint on %s could not be written", base->spec->db);
    return rc;
}

static int l_check_filter(stt_rep_ep_t *base, const char *ddoc, const char *name)
{
    ep_t *e = (ep_t *)base;
    stt_buf_t id = STT_BUF_INIT, body = STT_BUF_INIT;
    stt_buf_appendf(&id, "_design/%s", ddoc);
    stt_reader_t *rd;
    stt_doc_t d;
    bool found = false, has = false;
    if (stt_reader_open(e->db, &rd) == 0) {
        if (stt_doc_get(rd, id.base, id.len, &d) == 0) {
            stt_render_opts_t o = {0};
            stt_arena_t a = STT_ARENA_INIT;
            stt_json_t doc;
            found = stt_doc_select(&d, NULL, &(int){0}) == 0 && stt_doc_render(rd, &d, d.winner, &o, &body) == 0 &&
                    stt_json_parse(&a, body.base, body.len, &doc, NULL, 0) == 0;
            has = found && stt_json_get(stt_json_get(&doc, "filters"), name) != NULL;
            stt_arena_free(&a);
            stt_doc_free(&d);
        }
        stt_reader_close(rd);
    }
    stt_buf_free(&id);
    stt_buf_free(&body);
    if (!found)
        stt__rep_ep_error(base, 404, "not_found",
                          "Couldn't open document `_design/%s` from source database `%s`: {error,<<\"not_found\">>}",
                          ddoc, base->spec->db);
    else if (!has)
        stt__rep_ep_error(base, 404, "not_found",
                          "Couldn't parse filter code from document %s on `%s`  Error: {not_found,<<\"missing json "
                          "key: %s\">>}",
                          ddoc, base->spec->db, name);
    if (!found || !has) return STT_E_NOT_FOUND;
    if (stt_design_open(e->db, &e->sel_arena, ddoc, strlen(ddoc), &e->ddoc, NULL) != 0) {
        stt__rep_ep_error(base, 404, "not_found", "Couldn't open document `_design/%s`", ddoc);
        return STT_E_NOT_FOUND;
    }
    /* CouchDB's request object for a replication's filter: the query_params as its
     * query, the replicator as the user */
    size_t nlen;
    const char *dbn = stt_db_name(e->db, &nlen);
    stt_buf_t r = STT_BUF_INIT;
    char uuid[33];
    stt_uuid_random(uuid);
    stt_buf_appends(&r, "{\"info\":{\"db_name\":");
    stt_json_write_str(&r, dbn, nlen);
    stt_buf_appendf(&r, "},\"uuid\":\"%s\",\"id\":null,\"method\":\"GET\",\"requested_path\":[", uuid);
    stt_json_write_str(&r, dbn, nlen);
    stt_buf_appends(&r, ",\"_changes\"],\"path\":[");
    stt_json_write_str(&r, dbn, nlen);
    stt_buf_appends(&r, ",\"_changes\"],\"raw_path\":\"/");
    stt_buf_append(&r, dbn, nlen);
    stt_buf_appends(&r, "/_changes\",\"query\":");
    stt_buf_appends(&r, base->params->query_params ? base->params->query_params : "{}");
    stt_buf_appends(&r, ",\"headers\":{},\"body\":\"undefined\",\"peer\":\"127.0.0.1\",\"form\":{},\"cookie\":{},"
                        "\"userCtx\":{\"db\":");
    stt_json_write_str(&r, dbn, nlen);
    stt_buf_appends(&r, ",\"name\":null,\"roles\":[\"_admin\"]},\"secObj\":");
    stt_buf_t sec = STT_BUF_INIT;
    stt_db_get_security(e->db, &sec);
    if (sec.len)
        stt_buf_append(&r, sec.base, sec.len);
    else
        stt_buf_appends(&r, "{}");
    stt_buf_free(&sec);
    stt_buf_appendc(&r, '}');
    e->req = (stt_qs_text_t){stt_arena_memdup(&e->sel_arena, r.base, r.len), r.len};
    stt_buf_free(&r);
    e->fn = stt_arena_strndup(&e->sel_arena, name, strlen(name));
    e->js = true;
    return 0;
}

static void l_close(stt_rep_ep_t *base)
{
    ep_t *e = (ep_t *)base;
    if (e->db) stt_db_release(e->db);
    stt_selector_free(e->selector);
    stt_arena_free(&e->sel_arena);
    free(e);
}

static const stt_rep_ep_ops_t ops = {l_open,      l_changes,   l_revs_diff,    l_fetch, l_write,
                                     l_get_local, l_put_local, l_check_filter, l_close};

stt_rep_ep_t *stt__rep_ep_local(stt_store_t *store, const stt_rep_spec_t *spec, const stt_rep_params_t *p,
                                const stt_user_ctx_t *user, atomic_int *stop)
{
    ep_t *e = stt_xcalloc(1, sizeof(*e));
    e->base.ops = &ops;
    e->base.spec = spec;
    e->base.params = p;
    e->base.stop = stop;
    e->store = store;
    e->user = user;
    e->doc_ids.type = STT_JSON_NULL;
    return &e->base;
}
