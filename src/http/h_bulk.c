/* _bulk_docs, _all_docs, _design_docs, _local_docs and _purge.
 *
 * _all_docs streams: each chunk restarts the id scan just after the last key it
 * emitted, on the same snapshot, so a 100k-row answer never sits in memory. */
#include "src/http/http.h"
#include "access/access.h"
#include "src/http/multipart.h"
#include "src/http/writer.h"
#include "replication/replication.h"
#include "src/common/codec.h"
#include "src/common/err.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------------ _bulk_docs */

typedef struct {
    stt_doc_write_t *w, *todo;
    size_t n, ntodo, *todo_idx;
    bool new_edits;
    int *local_err;        /* per doc: a _local doc's outcome, written before the job */
    char (*local_rev)[24]; /* its "0-N" */
} bulk_t;

/* A _local doc's "_rev" as couch_db_updater reads it: "0-N" with N an integer
 * gives N; anything else that parses as a rev is "Invalid rev format" for that doc
 * alone (-1); a _rev that does not parse at all fails the request (-2), as
 * couch_doc:parse_rev throws. */
static int local_prev(const stt_json_t *jr, uint64_t *prev)
{
    *prev = 0;
    if (!jr) return 0;
    if (jr->type != STT_JSON_STRING) return -2;
    const char *s = jr->u.s, *dash = memchr(s, '-', jr->len);
    if (!dash || dash == s) return -2;
    for (const char *p = s; p < dash; p++)
        if (*p < '0' || *p > '9') return -2;
    if (dash - s != 1 || s[0] != '0') return -1;
    const char *n = dash + 1, *end = s + jr->len;
    if (n == end || end - n > 18) return -1;
    uint64_t v = 0;
    for (const char *p = n; p < end; p++) {
        if (*p < '0' || *p > '9') return -1;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *prev = v;
    return 0;
}

/* A _local doc inside _bulk_docs, written here at once (no rev tree, no writer
 * job), by couch_db_updater's rule: a deletion answers "0-0" whether the doc
 * existed or not; a write gets one more than the N of the "0-N" it names. */
static int bulk_local(stt_hreq_t *r, const stt_doc_write_t *w, uint64_t prev, char rev[24])
{
    uint64_t n = 0;
    const char *body = w->body, *reason;
    size_t bodylen = w->bodylen;
    int rc = stt__access(r) ? stt_access_local_write(&r->arena, stt__access(r), w->id + 7, w->idlen - 7, w->deleted,
                                                     &body, &bodylen, &reason)
                            : 0;
    if (rc) return rc;
    rc = stt_local_put(r->db, w->id + 7, w->idlen - 7, prev, body, bodylen, w->deleted, &n);
    if (rc == STT_E_NOT_FOUND && w->deleted) rc = 0, n = 0;
    if (!rc) snprintf(rev, 24, "0-%llu", (unsigned long long)n);
    return rc;
}

static void bulk_done(stt_wjob_t *j)
{
    stt_hreq_t *r = j->r;
    bulk_t *c = j->ctx;
    if (j->job.rc) {
        stt_reply_error(r, j->job.rc, NULL);
        return;
    }
    stt_buf_t b = STT_BUF_INIT;
    stt_buf_appendc(&b, '[');
    bool any = false;
    size_t k = 0;
    for (size_t i = 0; i < c->n; i++) {
        const stt_doc_write_t *w = &c->w[i];
        bool written = k < c->ntodo && c->todo_idx[k] == i;
        int err = written ? j->job.res[k].err : c->local_err[i];
        const char *rev = written ? j->job.res[k].rev : c->local_rev[i];
        const char *why = written ? j->job.res[k].reason : NULL;
        if (written) k++;
        if (!c->new_edits && !err) continue; /* replicated writes report errors only */
        if (any) stt_buf_appendc(&b, ',');
        any = true;
        stt_buf_appends(&b, err ? "{\"id\":" : "{\"ok\":true,\"id\":");
        stt_json_write_str(&b, w->id, w->idlen);
        if (!err) {
            stt_buf_appends(&b, ",\"rev\":");
            stt_json_write_cstr(&b, rev);
            stt_buf_appendc(&b, '}');
            continue;
        }
        const stt_err_info_t *e = stt_err_info(err);
        const char *ename = written && j->job.res[k - 1].error ? j->job.res[k - 1].error : e->error;
        /* replicated writes name the refused revision, as CouchDB's {{Id, Rev}, Error} */
        if (!c->new_edits && w->npath) {
            stt_buf_t rv = STT_BUF_INIT;
            stt_rev_format(&rv, w->gen, w->path[0].id, w->path[0].idlen);
            stt_buf_appends(&b, ",\"rev\":");
            stt_json_write_str(&b, rv.base, rv.len);
            stt_buf_free(&rv);
        }
        stt_buf_appends(&b, ",\"error\":");
        stt_json_write_cstr(&b, ename);
        stt_buf_appends(&b, ",\"reason\":");
        stt_json_write_cstr(&b, why ? why : e->reason);
        stt_buf_appendc(&b, '}');
    }
    stt_buf_appendc(&b, ']');
    stt_reply_json(r, 201, &b);
}

void stt_h_bulk_docs(stt_hreq_t *r)
{
    if (!stt_require_json(r)) return;
    stt_json_t body;
    if (stt_body_json(r, &body, "Request body must be a JSON object") != 0) return;
    const stt_json_t *docs = stt_json_get(&body, "docs");
    if (!docs) {
        stt_reply_error_raw(r, 400, "bad_request", "POST body must include `docs` parameter.");
        return;
    }
    if (docs->type != STT_JSON_ARRAY) {
        stt_reply_error_raw(r, 400, "bad_request", "`docs` parameter must be an array.");
        return;
    }
    bool new_edits = true;
    const stt_json_t *ne = stt_json_get(&body, "new_edits");
    if (ne && ne->type != STT_JSON_FALSE && ne->type != STT_JSON_TRUE) {
        /* CouchDB crashes on it (500 function_clause): a client's mistake is a 400 */
        stt_reply_error_raw(r, 400, "bad_request", "`new_edits` parameter must be a boolean.");
        return;
    }
    if (ne && ne->type == STT_JSON_FALSE) new_edits = false;
    size_t n = docs->len;
    if (stt_json_is_true(stt_json_get(&body, "all_or_nothing"))) {
        stt_buf_t b = STT_BUF_INIT;
        stt_buf_appendc(&b, '[');
        for (size_t i = 0; i < n; i++) {
            const stt_json_t *id = stt_json_get(&docs->u.items[i], "_id");
            if (i) stt_buf_appendc(&b, ',');
            stt_buf_appends(&b, "{\"id\":");
            if (stt_json_is_str(id))
                stt_json_write(&b, id);
            else
                stt_buf_appends(&b, "null");
            stt_buf_appends(&b, ",\"rev\":\"0-\",\"error\":\"not_implemented\",\"reason\":\"all_or_nothing is not "
                                "supported\"}");
        }
        stt_buf_appendc(&b, ']');
        stt_reply_json(r, 417, &b);
        return;
    }
    bulk_t *c = stt_arena_alloc(&r->arena, sizeof(*c));
    c->n = n;
    c->new_edits = new_edits;
    c->w = stt_arena_alloc(&r->arena, (n ? n : 1) * sizeof(*c->w));
    c->todo = stt_arena_alloc(&r->arena, (n ? n : 1) * sizeof(*c->todo));
    c->todo_idx = stt_arena_alloc(&r->arena, (n ? n : 1) * sizeof(size_t));
    c->local_err = stt_arena_alloc(&r->arena, (n ? n : 1) * sizeof(*c->local_err));
    c->local_rev = stt_arena_alloc(&r->arena, (n ? n : 1) * sizeof(*c->local_rev));
    c->ntodo = 0;
    stt_doc_parse_opts_t po = {.new_edits = new_edits}, po_local = {.new_edits = new_edits, .is_local = true};
    uint64_t *local_prevs = stt_arena_alloc(&r->arena, (n ? n : 1) * sizeof(*local_prevs));
    for (size_t i = 0; i < n; i++) {
        stt_doc_write_t *w = &c->w[i];
        const char *reason = NULL;
        const stt_json_t *doc = &docs->u.items[i];
        const stt_json_t *jid = stt_json_get(doc, "_id");
        bool local = stt_json_is_str(jid) && jid->len >= 7 && memcmp(jid->u.s, "_local/", 7) == 0;
        c->local_err[i] = 0;
        c->local_rev[i][0] = '\0';
        int rc = stt_doc_parse(&r->arena, doc, local ? &po_local : &po, w, &reason);
        if (!rc && local) {
            int lp = local_prev(stt_json_get(doc, "_rev"), &local_prevs[i]);
            if (lp == -2) rc = STT_E_BAD_REV, reason = NULL;
            if (lp == -1) c->local_err[i] = STT_E_BAD_REV;
        }
        /* a doc that does not parse fails the whole request, as CouchDB's
         * from_json_obj_validate throws out of the batch */
        if (rc) {
            stt_reply_error(r, rc, reason);
            return;
        }
        if (!w->id) {
            if (!new_edits) {
                stt_reply_error_raw(r, 400, "bad_request", "Document id is missing");
                return;
            }
            char *u = stt_arena_alloc(&r->arena, 33);
            stt_uuid_random(u);
            w->id = u;
            w->idlen = 32;
        }
        if (local) continue; /* written below, once the whole request parsed */
        c->todo[c->ntodo] = *w;
        c->todo_idx[c->ntodo++] = i;
    }
    for (size_t i = 0, k = 0; i < n; i++) {
        if (k < c->ntodo && c->todo_idx[k] == i) {
            k++;
            continue;
        }
        if (!c->local_err[i]) c->local_err[i] = bulk_local(r, &c->w[i], local_prevs[i], c->local_rev[i]);
        /* replicated writes of _local docs report nothing, not even a refused rev
         * (CouchDB drops "1-x" on a _local doc silently) */
        if (!new_edits) c->local_err[i] = 0;
    }
    stt_writer_submit(stt_writer_job(r, c->todo, c->ntodo, new_edits, bulk_done, c));
}

/* ------------------------------------------------------------------ _all_docs */

typedef struct {
    stt_hreq_t *r;
    stt_reader_t *rd;
    stt_range_t range;
    uint64_t limit, skip, emitted, skipped;
    bool include_docs, update_seq, started, done, local, design;
    stt_render_opts_t ro;
    const stt_json_t *keys;
    uint32_t keyi;
    stt_buf_t last; /* last key emitted: the next chunk starts after it */
    bool have_last;
    stt_buf_t *out;
    uint64_t total_rows, offset;
    stt_access_t *acc; /* the user's view of an access db, or NULL */
} alldocs_t;

static void row_doc(alldocs_t *c, const char *id, size_t idlen, stt_buf_t *out)
{
    stt_doc_t d;
    if (stt_doc_get(c->rd, id, idlen, &d) != 0) {
        stt_buf_appends(out, ",\"doc\":null");
        return;
    }
    stt_buf_appends(out, ",\"doc\":");
    if (stt_doc_render(c->rd, &d, d.winner, &c->ro, out) != 0) stt_buf_appends(out, "null");
    stt_doc_free(&d);
}

static int on_row_as(alldocs_t *c, const stt_doc_summary_t *s, const stt_doc_t *d, int node);

/* _all_docs in an access database (stt_access_docs_scan): the user's docs, each
 * as they see it (their winner) */
static int on_access_row(void *ctx, const stt_doc_summary_t *s, const stt_doc_t *d, int node)
{
    return on_row_as(ctx, s, d, node);
}

static int on_row(void *ctx, const stt_doc_summary_t *s)
{
    return on_row_as(ctx, s, NULL, -1);
}

/* a row; include_docs renders node of d when given (an access db's user), else
 * the winner of the summary's doc */
static int on_row_as(alldocs_t *c, const stt_doc_summary_t *s, const stt_doc_t *d, int node)
{
    if (c->have_last && s->idlen == c->last.len && memcmp(s->id, c->last.base, s->idlen) == 0)
        return 0; /* the row the previous chunk ended on */
    if (c->emitted >= c->limit) {
        c->done = true;
        return 1;
    }
    if (c->skipped < c->skip) {
        c->skipped++;
        return 0;
    }
    stt_buf_t *out = c->out;
    if (c->emitted++) stt_buf_appendc(out, ',');
    stt_buf_appends(out, "{\"id\":");
    stt_json_write_str(out, s->id, s->idlen);
    stt_buf_appends(out, ",\"key\":");
    stt_json_write_str(out, s->id, s->idlen);
    stt_buf_appends(out, ",\"value\":{\"rev\":\"");
    stt_buf_append(out, s->leaf_rev[0], s->leaf_revlen[0]);
    stt_buf_appends(out, "\"}");
    if (c->include_docs) {
        stt_doc_t sd;
        if (d) {
            stt_buf_appends(out, ",\"doc\":");
            if (stt_doc_render(c->rd, d, node, &c->ro, out) != 0) stt_buf_appends(out, "null");
        } else if (stt_doc_from_summary(s, &sd) == 0) {
            stt_buf_appends(out, ",\"doc\":");
            if (stt_doc_render(c->rd, &sd, sd.winner, &c->ro, out) != 0) stt_buf_appends(out, "null");
            stt_doc_free(&sd);
        } else {
            row_doc(c, s->id, s->idlen, out);
        }
    }
    stt_buf_appendc(out, '}');
    stt_buf_reset(&c->last);
    stt_buf_append(&c->last, s->id, s->idlen);
    c->have_last = true;
    return out->len >= 64 * 1024 ? 1 : 0;
}

static int on_local_row(void *ctx, const char *id, size_t idlen, uint64_t rev, const char *body, size_t len)
{
    alldocs_t *c = ctx;
    if (c->have_last && idlen == c->last.len && memcmp(id, c->last.base, idlen) == 0) return 0;
    if (c->acc && !stt_access_body_ok(c->acc, body, len)) return 0; /* another user's */
    if (c->emitted >= c->limit) {
        c->done = true;
        return 1;
    }
    if (c->skipped < c->skip) {
        c->skipped++;
        return 0;
    }
    stt_buf_t *out = c->out;
    if (c->emitted++) stt_buf_appendc(out, ',');
    stt_buf_appends(out, "{\"id\":\"_local/");
    stt_buf_t esc = STT_BUF_INIT;
    stt_json_write_str(&esc, id, idlen);
    stt_buf_append(out, esc.base + 1, esc.len - 1); /* drop the opening quote */
    stt_buf_appends(out, ",\"key\":\"_local/");
    stt_buf_append(out, esc.base + 1, esc.len - 1);
    stt_buf_free(&esc);
    stt_buf_appendf(out, ",\"value\":{\"rev\":\"0-%llu\"}", (unsigned long long)rev);
    if (c->include_docs) {
        stt_buf_appends(out, ",\"doc\":{\"_id\":\"_local/");
        stt_buf_t e2 = STT_BUF_INIT;
        stt_json_write_str(&e2, id, idlen);
        stt_buf_append(out, e2.base + 1, e2.len - 1);
        stt_buf_free(&e2);
        stt_buf_appendf(out, ",\"_rev\":\"0-%llu\"", (unsigned long long)rev);
        if (len > 2) {
            stt_buf_appendc(out, ',');
            stt_buf_append(out, body + 1, len - 2);
        }
        stt_buf_appendc(out, '}');
    }
    stt_buf_appendc(out, '}');
    stt_buf_reset(&c->last);
    stt_buf_append(&c->last, id, idlen);
    c->have_last = true;
    return out->len >= 64 * 1024 ? 1 : 0;
}

/* _all_docs keys may name _local docs: CouchDB answers them like any doc */
static void local_key_row(alldocs_t *c, const stt_json_t *k, stt_buf_t *out)
{
    uint64_t rev;
    stt_buf_t body = STT_BUF_INIT;
    if (stt_local_get(c->r->db, k->u.s + 7, k->len - 7, &rev, &body) != 0 ||
        (c->acc && !stt_access_body_ok(c->acc, body.base, body.len))) {
        stt_buf_appends(out, "{\"key\":");
        stt_json_write(out, k);
        stt_buf_appends(out, ",\"error\":\"not_found\"}");
        stt_buf_free(&body);
        return;
    }
    stt_buf_appends(out, "{\"id\":");
    stt_json_write(out, k);
    stt_buf_appends(out, ",\"key\":");
    stt_json_write(out, k);
    stt_buf_appendf(out, ",\"value\":{\"rev\":\"0-%llu\"}", (unsigned long long)rev);
    if (c->include_docs) {
        stt_buf_appends(out, ",\"doc\":{\"_id\":");
        stt_json_write(out, k);
        stt_buf_appendf(out, ",\"_rev\":\"0-%llu\"", (unsigned long long)rev);
        if (body.len > 2) {
            stt_buf_appendc(out, ',');
            stt_buf_append(out, body.base + 1, body.len - 2);
        }
        stt_buf_appendc(out, '}');
    }
    stt_buf_appendc(out, '}');
    stt_buf_free(&body);
}

static void key_row(alldocs_t *c, const stt_json_t *k, stt_buf_t *out)
{
    if (c->keyi) stt_buf_appendc(out, ',');
    if (k->type != STT_JSON_STRING) {
        stt_buf_appends(out, "{\"key\":");
        stt_json_write(out, k);
        stt_buf_appends(out, ",\"error\":\"not_found\"}");
        return;
    }
    if (k->len > 7 && memcmp(k->u.s, "_local/", 7) == 0) {
        local_key_row(c, k, out);
        return;
    }
    stt_doc_t d;
    bool found = stt_doc_get(c->rd, k->u.s, k->len, &d) == 0;
    if (found && c->acc && (d.winner = stt_access_winner(c->acc, &d)) < 0) { /* the user's winner */
        stt_doc_free(&d);
        found = false;
    }
    if (!found) {
        stt_buf_appends(out, "{\"key\":");
        stt_json_write(out, k);
        stt_buf_appends(out, ",\"error\":\"not_found\"}");
        return;
    }
    bool deleted = (d.tree.nodes[d.winner].flags & STT_REV_DELETED) != 0;
    stt_buf_appends(out, "{\"id\":");
    stt_json_write(out, k);
    stt_buf_appends(out, ",\"key\":");
    stt_json_write(out, k);
    stt_buf_appends(out, ",\"value\":{\"rev\":\"");
    stt_revtree_format(&d.tree, d.winner, out);
    stt_buf_appends(out, deleted ? "\",\"deleted\":true}" : "\"}");
    if (c->include_docs) {
        stt_buf_appends(out, ",\"doc\":");
        if (deleted || stt_doc_render(c->rd, &d, d.winner, &c->ro, out) != 0) stt_buf_appends(out, "null");
    }
    stt_buf_appendc(out, '}');
    stt_doc_free(&d);
}

static int alldocs_produce(stt_stream_t *s, stt_buf_t *out)
{
    alldocs_t *c = s->ctx;
    c->out = out;
    if (!c->started) {
        c->started = true;
        stt_buf_appends(out, "{\"total_rows\":");
        if (c->local)
            stt_buf_appends(out, "null,\"offset\":null");
        else {
            stt_buf_append_u64(out, c->total_rows);
            if (c->keys)
                stt_buf_appends(out, ",\"offset\":null");
            else {
                stt_buf_appends(out, ",\"offset\":");
                stt_buf_append_u64(out, c->offset);
            }
        }
        if (c->update_seq) {
            stt_db_info_t in;
            stt_db_info(c->r->db, &in);
            stt_buf_appends(out, ",\"update_seq\":");
            stt_seq_format(out, in.update_seq);
        }
        stt_buf_appends(out, ",\"rows\":[");
        return 1;
    }
    if (c->keys) {
        /* skip, limit and descending apply to the keys list: rows keyi = 0.. of
         * the list, reversed when descending, after skip */
        uint64_t len = c->keys->len, nrows = len > c->skip ? len - c->skip : 0;
        if (nrows > c->limit) nrows = c->limit;
        for (; c->keyi < nrows && out->len < 64 * 1024; c->keyi++) {
            uint64_t at = c->skip + c->keyi;
            key_row(c, &c->keys->u.items[c->range.descending ? len - 1 - at : at], out);
        }
        if (c->keyi < nrows) return 1;
    } else if (!c->done) {
        stt_range_t rg = c->range;
        if (c->have_last) {
            rg.start = c->last.base;
            rg.startlen = c->last.len;
        }
        size_t before = out->len;
        uint64_t em = c->emitted;
        if (c->local)
            stt_local_scan(c->r->db, &rg, on_local_row, c);
        else if (c->acc)
            stt_access_docs_scan(c->acc, c->rd, &rg, on_access_row, c); /* the user's docs only */
        else
            stt_docs_scan(c->rd, &rg, on_row, c);
        if (!c->done && out->len >= 64 * 1024 && (out->len != before || c->emitted != em))
            return 1; /* chunk full: more may follow */
    }
    stt_buf_appends(out, "]}\n");
    return 0;
}

static void alldocs_stop(stt_stream_t *s)
{
    alldocs_t *c = s->ctx;
    stt_reader_close(c->rd);
    c->rd = NULL;
    stt_buf_free(&c->last);
}

static const stt_stream_ops_t alldocs_ops = {alldocs_produce, alldocs_stop};

static int count_before(void *ctx, const stt_doc_summary_t *s)
{
    (*(uint64_t *)ctx)++;
    return 0;
}

static int key_param(stt_hreq_t *r, const char *a, const char *b, const stt_json_t **out)
{
    if (stt_q_json(r, a, out) != 0) return -1;
    if (!*out && b && stt_q_json(r, b, out) != 0) return -1;
    return 0;
}

static bool json_eq(const stt_json_t *a, const stt_json_t *b)
{
    stt_buf_t x = STT_BUF_INIT, y = STT_BUF_INIT;
    stt_json_write(&x, a);
    stt_json_write(&y, b);
    bool eq = x.len == y.len && memcmp(x.base, y.base, x.len) == 0;
    stt_buf_free(&x);
    stt_buf_free(&y);
    return eq;
}

/* couch_mrview_util's check: `keys` goes with no start or end key, except an empty
 * list, or one key that the start and end key both equal (a POST {"keys":[k]} is
 * read as key=k too). */
static bool keys_compatible(const stt_json_t *keys, const stt_json_t *sk, const stt_json_t *ek)
{
    if (keys->len == 0 || (!sk && !ek)) return true;
    return keys->len == 1 && sk && ek && json_eq(sk, &keys->u.items[0]) && json_eq(ek, &keys->u.items[0]);
}

static void all_docs(stt_hreq_t *r, int kind /* 0 all, 1 design, 2 local */)
{
    alldocs_t *c = stt_arena_alloc(&r->arena, sizeof(*c));
    memset(c, 0, sizeof(*c));
    c->r = r;
    c->limit = UINT64_MAX;
    c->range.inclusive_end = true;
    c->local = kind == 2;
    bool conflicts = false;
    const stt_json_t *key = NULL, *sk = NULL, *ek = NULL;
    if (stt_q_uint(r, "limit", &c->limit) || stt_q_uint(r, "skip", &c->skip) ||
        stt_q_bool(r, "descending", &c->range.descending) || stt_q_bool(r, "include_docs", &c->include_docs) ||
        stt_q_bool(r, "inclusive_end", &c->range.inclusive_end) || stt_q_bool(r, "update_seq", &c->update_seq) ||
        stt_q_bool(r, "conflicts", &conflicts) || stt_render_opts_from_query(r, &c->ro) ||
        key_param(r, "key", NULL, &key) || key_param(r, "startkey", "start_key", &sk) ||
        key_param(r, "endkey", "end_key", &ek) || key_param(r, "keys", NULL, &c->keys))
        return;
    c->ro.conflicts = conflicts;
    c->ro.revs = false;
    if (r->method == STT_M_POST) {
        if (!stt_require_json(r)) return;
        stt_json_t *body = stt_arena_alloc(&r->arena, sizeof(*body));
        if (stt_body_json(r, body, "Request body must be a JSON object") != 0) return;
        const stt_json_t *k = stt_json_get(body, "keys");
        if (k) c->keys = k;
        /* CouchDB reads the body's view parameters first, the query string over
         * them; the key ones matter for the `keys` check below */
        const stt_json_t *bk = stt_json_get(body, "key"), *bs = stt_json_get(body, "startkey"),
                         *be = stt_json_get(body, "endkey");
        if (!bs) bs = stt_json_get(body, "start_key");
        if (!be) be = stt_json_get(body, "end_key");
        if (!key && bk) key = bk;
        if (!sk && bs) sk = bs;
        if (!ek && be) ek = be;
    }
    if (c->keys && c->keys->type != STT_JSON_ARRAY) {
        stt_reply_error_raw(r, 400, "bad_request",
                            r->method == STT_M_POST ? "`keys` body member must be an array."
                                                    : "`keys` parameter must be an array.");
        return;
    }
    if (key) {
        sk = ek = key;
        c->range.inclusive_end = true;
    }
    if (c->keys && !keys_compatible(c->keys, sk, ek)) {
        stt_reply_error_raw(r, 400, "query_parse_error",
                            "`keys` is incompatible with `key`, `start_key` and `end_key`");
        return;
    }
    const stt_qparam_t *skd = stt_q_get(r, "startkey_docid");
    if (!sk && skd) c->range.start = skd->val, c->range.startlen = skd->vallen;
    const stt_qparam_t *ekd = stt_q_get(r, "endkey_docid");
    if (!ek && ekd) c->range.end = ekd->val, c->range.endlen = ekd->vallen;
    if (sk && sk->type == STT_JSON_STRING) c->range.start = sk->u.s, c->range.startlen = sk->len;
    if (ek && ek->type == STT_JSON_STRING) c->range.end = ek->u.s, c->range.endlen = ek->len;
    if (kind == 1) {
        /* restrict to the _design/ prefix, intersected with the client's range */
        static const char lo[] = "_design/", hi[] = "_design0";
        if (!c->range.descending) {
            if (!c->range.start || memcmp(c->range.start, lo, c->range.startlen < 8 ? c->range.startlen : 8) < 0)
                c->range.start = lo, c->range.startlen = 8;
            if (!c->range.end) c->range.end = hi, c->range.endlen = 8, c->range.inclusive_end = false;
        } else {
            if (!c->range.start) c->range.start = hi, c->range.startlen = 8;
            if (!c->range.end) c->range.end = lo, c->range.endlen = 8;
        }
    }
    if (kind == 2) {
        /* _local_docs keys carry the "_local/" prefix; the store keys do not */
        if (c->range.start && c->range.startlen >= 7 && memcmp(c->range.start, "_local/", 7) == 0)
            c->range.start += 7, c->range.startlen -= 7;
        if (c->range.end && c->range.endlen >= 7 && memcmp(c->range.end, "_local/", 7) == 0)
            c->range.end += 7, c->range.endlen -= 7;
    }
    uint64_t upto;
    if ((c->acc = stt__access(r)) != NULL && stt_access_sync(r->db, &upto) != 0) {
        stt_reply_error(r, STT_E_IO, NULL);
        return;
    }
    stt_reader_open(r->db, &c->rd);
    if (!c->local) {
        stt_db_info_t in;
        stt_db_info(r->db, &in);
        c->total_rows = in.doc_count;
        if (!c->keys && c->range.start) {
            /* offset: rows before the start key in the scan's direction */
            stt_range_t before = {.descending = c->range.descending,
                                  .start = NULL,
                                  .end = c->range.start,
                                  .endlen = c->range.startlen,
                                  .inclusive_end = false};
            stt_docs_scan(c->rd, &before, count_before, &c->offset);
        }
        c->offset += c->skip;
        if (c->keys == NULL && c->offset > c->total_rows) c->offset = c->total_rows;
    }
    stt_stream_start(r, 200, "application/json", &alldocs_ops, c,
                     (const char *const[]){"cache-control", "must-revalidate", NULL});
}

void stt_h_all_docs(stt_hreq_t *r)
{
    all_docs(r, 0);
}
void stt_h_design_docs(stt_hreq_t *r)
{
    all_docs(r, 1);
}
void stt_h_local_docs(stt_hreq_t *r)
{
    all_docs(r, 2);
}

/* ------------------------------------------------------------------ _purge */

void stt_h_purge(stt_hreq_t *r)
{
    if (!stt_require_json(r)) return;
    stt_json_t body;
    if (stt_body_json(r, &body, "Request body must be a JSON object") != 0) return;
    stt_buf_t b = STT_BUF_INIT;
    stt_buf_appends(&b, "{\"purge_seq\":null,\"purged\":{");
    for (uint32_t i = 0; i < body.len; i++) {
        const stt_json_member_t *m = &body.u.members[i];
        if (m->val.type != STT_JSON_ARRAY) {
            stt_buf_free(&b);
            stt_reply_error_raw(r, 400, "bad_request", "Purge request body must map doc ids to lists of revs");
            return;
        }
        stt_rev_t *revs = stt_arena_alloc(&r->arena, (m->val.len ? m->val.len : 1) * sizeof(*revs));
        bool *purged = stt_arena_alloc(&r->arena, (m->val.len ? m->val.len : 1) * sizeof(bool));
        size_t n = 0;
        for (uint32_t k = 0; k < m->val.len; k++) {
            const stt_json_t *v = &m->val.u.items[k];
            if (v->type != STT_JSON_STRING || stt_rev_parse(v->u.s, v->len, &revs[n]) != 0) {
                stt_buf_free(&b);
                stt_reply_error(r, STT_E_BAD_REV, NULL);
                return;
            }
            n++;
        }
        int rc = stt_doc_purge(r->db, m->key, m->keylen, revs, n, purged);
        if (rc && rc != STT_E_NOT_FOUND) {
            stt_buf_free(&b);
            stt_reply_error(r, rc, NULL);
            return;
        }
        if (i) stt_buf_appendc(&b, ',');
        stt_json_write_str(&b, m->key, m->keylen);
        stt_buf_appends(&b, ":[");
        bool first = true;
        for (size_t k = 0; k < n; k++) {
            if (rc || !purged[k]) continue;
            if (!first) stt_buf_appendc(&b, ',');
            first = false;
            stt_json_write(&b, &m->val.u.items[k]);
        }
        stt_buf_appendc(&b, ']');
    }
    stt_buf_appends(&b, "}}");
    stt_reply_json(r, 201, &b);
}
