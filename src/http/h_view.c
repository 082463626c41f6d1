/* GET/POST /{db}/_design/{ddoc}/_view/{view} and POST .../queries: parse the
 * query (string and JSON body, with CouchDB's error texts), run it on the view
 * pool (h_view_pool.c) through index/, reply. Parameters CouchDB accepts and
 * settee has nothing to do for (sorted, stable, r, partition...) are read and
 * ignored, as unknown ones are. */
#include "index/index.h"
#include "access/access.h"
#include "src/common/err.h"
#include "src/common/log.h"
#include "src/http/http.h"
#include <stdlib.h>
#include <string.h>

typedef struct {
    int status;
    const char *error, *reason;
} perr_t;

typedef struct {
    const char *ddoc_id;
    const char *view;
    stt_view_args_t *args;
    size_t nargs;
    bool queries; /* POST .../queries: {"results": [...]} */
} view_req_t;

/* ------------------------------------------------------------------ parameters */

static int fail(perr_t *e, int status, const char *error, const char *reason)
{
    e->status = status;
    e->error = error;
    e->reason = reason;
    return -1;
}

static bool is(const char *k, size_t kl, const char *lit)
{
    return kl == strlen(lit) && memcmp(k, lit, kl) == 0;
}

/* A value given as text (query string) or JSON (body). text may be NULL for
 * body values; jv is NULL for query-string values. */
typedef struct {
    const char *text;
    size_t len;
    const stt_json_t *jv;
} pval_t;

static int p_bool(stt_arena_t *a, const pval_t *v, bool *out, perr_t *e)
{
    if (v->jv && (v->jv->type == STT_JSON_TRUE || v->jv->type == STT_JSON_FALSE)) {
        *out = v->jv->type == STT_JSON_TRUE;
        return 0;
    }
    const char *t = v->text;
    size_t n = v->len;
    stt_buf_t b = STT_BUF_INIT;
    if (v->jv && v->jv->type == STT_JSON_STRING) {
        t = v->jv->u.s;
        n = v->jv->len;
    } else if (v->jv) {
        stt_json_write(&b, v->jv);
        t = b.base;
        n = b.len;
    }
    if (n == 4 && memcmp(t, "true", 4) == 0)
        *out = true;
    else if (n == 5 && memcmp(t, "false", 5) == 0)
        *out = false;
    else {
        stt_buf_t m = STT_BUF_INIT;
        stt_buf_appendf(&m, "Invalid boolean parameter: \"%.*s\"", (int)(n > 200 ? 200 : n), t);
        fail(e, 400, "query_parse_error", stt_arena_strndup(a, m.base, m.len));
        stt_buf_free(&m);
        stt_buf_free(&b);
        return -1;
    }
    stt_buf_free(&b);
    return 0;
}

static int p_uint(stt_arena_t *a, const pval_t *v, uint64_t *out, perr_t *e)
{
    const char *t = v->text;
    size_t n = v->len;
    stt_buf_t b = STT_BUF_INIT;
    if (v->jv && v->jv->type == STT_JSON_STRING) {
        t = v->jv->u.s;
        n = v->jv->len;
    } else if (v->jv) {
        stt_json_write(&b, v->jv);
        t = b.base;
        n = b.len;
    }
    char tmp[32];
    int rc = 0;
    const char *what = "integer";
    if (n == 0 || n >= sizeof(tmp)) {
        rc = -1;
    } else {
        memcpy(tmp, t, n);
        tmp[n] = 0;
        char *end;
        long long x = strtoll(tmp, &end, 10);
        if (*end || end == tmp)
            rc = -1;
        else if (x < 0) {
            rc = -1;
            what = "positive integer";
        } else
            *out = (uint64_t)x;
    }
    if (rc) {
        stt_buf_t m = STT_BUF_INIT;
        stt_buf_appendf(&m, "Invalid value for %s: \"%.*s\"", what, (int)(n > 200 ? 200 : n), t ? t : "");
        fail(e, 400, "query_parse_error", stt_arena_strndup(a, m.base, m.len));
        stt_buf_free(&m);
    }
    stt_buf_free(&b);
    return rc;
}

static int p_json(stt_arena_t *a, const pval_t *v, const stt_json_t **out, perr_t *e)
{
    if (v->jv) {
        *out = v->jv;
        return 0;
    }
    stt_json_t *j = stt_arena_alloc(a, sizeof(*j));
    if (stt_json_parse(a, v->text, v->len, j, NULL, 0) != 0) return fail(e, 400, "bad_request", "invalid UTF-8 JSON");
    *out = j;
    return 0;
}

static int p_str(stt_arena_t *a, const pval_t *v, const char **s, size_t *len)
{
    if (v->jv && v->jv->type == STT_JSON_STRING) {
        *s = v->jv->u.s;
        *len = v->jv->len;
    } else if (v->jv) {
        stt_buf_t b = STT_BUF_INIT;
        stt_json_write(&b, v->jv);
        *s = stt_arena_strndup(a, b.base, b.len);
        *len = b.len;
        stt_buf_free(&b);
    } else {
        *s = v->text;
        *len = v->len;
    }
    return 0;
}

typedef struct {
    bool group_false; /* group=false given */
    bool level_given;
} pstate_t;

static int param(stt_arena_t *a, stt_view_args_t *va, pstate_t *ps, const char *k, size_t kl, const pval_t *v,
                 perr_t *e)
{
    bool b;
    uint64_t u;
    if (is(k, kl, "key")) return p_json(a, v, &va->key, e);
    if (is(k, kl, "keys")) {
        if (p_json(a, v, &va->keys, e)) return -1;
        if (va->keys->type != STT_JSON_ARRAY) {
            if (v->jv) return fail(e, 400, "bad_request", "`keys` member must be an array.");
            return fail(e, 400, "query_parse_error", "`keys` must be an array of strings.");
        }
        return 0;
    }
    if (is(k, kl, "startkey") || is(k, kl, "start_key")) return p_json(a, v, &va->start, e);
    if (is(k, kl, "endkey") || is(k, kl, "end_key")) return p_json(a, v, &va->end, e);
    if (is(k, kl, "startkey_docid") || is(k, kl, "start_key_doc_id"))
        return p_str(a, v, &va->start_docid, &va->start_docidlen);
    if (is(k, kl, "endkey_docid") || is(k, kl, "end_key_doc_id")) return p_str(a, v, &va->end_docid, &va->end_docidlen);
    struct {
        const char *name;
        bool *dst;
    } bools[] = {{"inclusive_end", &va->inclusive_end},
                 {"descending", &va->descending},
                 {"include_docs", &va->include_docs},
                 {"conflicts", &va->conflicts},
                 {"attachments", &va->attachments},
                 {"update_seq", &va->update_seq},
                 {"sorted", &b},
                 {"stable", &b},
                 {"att_encoding_info", &b}};
    for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++)
        if (is(k, kl, bools[i].name)) return p_bool(a, v, bools[i].dst, e);
    if (is(k, kl, "reduce")) {
        va->reduce_set = true;
        return p_bool(a, v, &va->reduce, e);
    }
    if (is(k, kl, "group")) {
        if (p_bool(a, v, &b, e)) return -1;
        va->group = b;
        ps->group_false = !b;
        if (b) va->group_set = true;
        return 0;
    }
    if (is(k, kl, "group_level")) {
        if (p_uint(a, v, &u, e)) return -1;
        va->group_level = u > 1000000 ? 1000000 : (int)u;
        ps->level_given = true;
        va->group_set = true;
        return 0;
    }
    if (is(k, kl, "limit")) return p_uint(a, v, &va->limit, e);
    if (is(k, kl, "skip")) return p_uint(a, v, &va->skip, e);
    if (is(k, kl, "update") || is(k, kl, "stale")) {
        bool stale = is(k, kl, "stale");
        const char *s;
        size_t n;
        p_str(a, v, &s, &n);
        if (!stale && n == 4 && memcmp(s, "true", 4) == 0)
            va->update = STT_UPDATE_TRUE;
        else if (!stale && n == 5 && memcmp(s, "false", 5) == 0)
            va->update = STT_UPDATE_FALSE;
        else if (!stale && n == 4 && memcmp(s, "lazy", 4) == 0)
            va->update = STT_UPDATE_LAZY;
        else if (stale && n == 2 && memcmp(s, "ok", 2) == 0)
            va->update = STT_UPDATE_FALSE;
        else if (stale && n == 12 && memcmp(s, "update_after", 12) == 0)
            va->update = STT_UPDATE_LAZY;
        else
            return fail(e, 400, "query_parse_error",
                        stale ? "Invalid value for `stale`." : "Invalid value for `update`.");
        return 0;
    }
    return 0; /* unknown parameters are ignored, as CouchDB does */
}

static int finish(stt_view_args_t *va, pstate_t *ps, perr_t *e)
{
    if (ps->group_false && ps->level_given)
        return fail(e, 400, "query_parse_error", "Can't specify group=false and group_level>0 at the same time");
    if (va->group_set && !va->group && !ps->level_given) va->group_set = false;
    if (ps->level_given && !va->group_level && !va->group) va->group_set = true;
    va->fmt_seq = stt_seq_format;
    return 0;
}

static int args_from_query(stt_hreq_t *r, stt_arena_t *a, stt_view_args_t *va, pstate_t *ps, perr_t *e)
{
    for (size_t i = 0; i < r->nq; i++) {
        pval_t v = {r->q[i].val, r->q[i].vallen, NULL};
        if (param(a, va, ps, r->q[i].key, r->q[i].keylen, &v, e)) return -1;
    }
    return 0;
}

static int args_from_object(stt_arena_t *a, const stt_json_t *o, stt_view_args_t *va, pstate_t *ps, perr_t *e)
{
    for (uint32_t i = 0; i < o->len; i++) {
        const stt_json_member_t *m = &o->u.members[i];
        pval_t v = {NULL, 0, &m->val};
        if (param(a, va, ps, m->key, m->keylen, &v, e)) return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ running

A view answer is made in chunks of CHUNK bytes, each by a job on the view pool
(building the index, JS reduce and include_docs block), and sent as it comes:
 * the first job loads the design doc, checks every query, opens the first
   cursor and makes the first chunk. Until then nothing was sent, so an error
   is a plain error reply; an answer that fits in one chunk is one JSON reply;
 * otherwise the reply streams: each chunk handed to the stream queues the job
   that makes the next one (one ahead), and the stream waits (pauses) while it
   runs. An error in a later chunk aborts the reply, as _all_docs's and
   CouchDB's do once rows went out.
The answer's state (vstate_t) is shared by the stream, on the request's loop,
and one job at a time, on a pool thread: inflight says a job has it. Whichever
of the stream's stop and the running job comes last frees it. */

#define CHUNK (64 * 1024)

typedef struct {
    stt_arena_t arena; /* the request's parameters, the design doc: the answer's lifetime */
    stt_db_t *db;
    view_req_t *vr;
    stt_ddoc_views_t dv;
    int vi;
    size_t qi;              /* the query being answered */
    stt_view_cursor_t *cur; /* its cursor, once open */
    stt_buf_t chunk;        /* made by the last job, not yet given to the stream */
    bool ended;             /* chunk ends the answer */
    bool failed;            /* a later chunk failed: abort the reply */
    bool lazy;              /* update=lazy: update the index once answered */
    bool inflight, streaming, stopped;
    stt_stream_t *stream;
} vstate_t;

static void vstate_free(vstate_t *vs)
{
    stt_view_close(vs->cur);
    if (vs->db) stt_db_release(vs->db);
    stt_buf_free(&vs->chunk);
    stt_arena_free(&vs->arena);
    free(vs);
}

static void put_error(stt_vjob_t *j, int status, const char *error, const char *reason, bool ref)
{
    j->status = status;
    stt_buf_reset(&j->body);
    stt_buf_appends(&j->body, "{\"error\":");
    stt_json_write_cstr(&j->body, error ? error : "unknown_error");
    stt_buf_appends(&j->body, ",\"reason\":");
    stt_json_write_cstr(&j->body, reason ? reason : "");
    /* CouchDB adds a log reference to errors raised inside a request's processing */
    if (ref) stt_buf_appendf(&j->body, ",\"ref\":%u", (unsigned)(rand() & 0x7fffffff));
    stt_buf_appendc(&j->body, '}');
}

static void put_rc(stt_vjob_t *j, int rc, const stt_qs_err_t *qe)
{
    if (rc == STT_E_NOT_FOUND) return put_error(j, 404, "not_found", "missing", false);
    if (qe->error) {
        bool ref = qe->status >= 500 || (qe->reason && strncmp(qe->reason, "No rows can match", 17) == 0);
        return put_error(j, qe->status ? qe->status : 500, qe->error, qe->reason, ref);
    }
    put_error(j, 500, "unknown_error", "view query failed", true);
}

/* Appends the answer's next part to vs->chunk, on a pool thread: the queries
 * one after the other, inside {"results": [...]} for .../queries. */
static int fill(vstate_t *vs, stt_qs_err_t *qe)
{
    view_req_t *vr = vs->vr;
    while (vs->chunk.len < CHUNK && !vs->ended) {
        if (!vs->cur) {
            if (vs->qi == vr->nargs) {
                if (vr->queries) stt_buf_appends(&vs->chunk, "\n]}\n");
                vs->ended = true;
                break;
            }
            if (vr->queries) stt_buf_appends(&vs->chunk, vs->qi ? ",\n" : "{\"results\":[\n");
            stt_view_args_t *a = &vr->args[vs->qi];
            int rc = stt_view_open(vs->db, &vs->dv, vs->vi, a, &vs->arena, &vs->chunk, &vs->cur, qe);
            if (rc) return rc;
            vs->lazy |= a->update == STT_UPDATE_LAZY;
        }
        int rc = stt_view_next(vs->cur, &vs->chunk, CHUNK, qe);
        if (rc < 0) return rc;
        if (rc == 0) {
            stt_view_close(vs->cur);
            vs->cur = NULL;
            vs->qi++;
            /* a query's own text ends with a newline: inside results it must not */
            if (vr->queries && vs->chunk.len && vs->chunk.base[vs->chunk.len - 1] == '\n') vs->chunk.len--;
        }
    }
    return 0;
}

/* update=lazy: the index catches up after the answer went out */
static void lazy_run(stt_vjob_t *j)
{
    stt_ddoc_views_t dv;
    stt_qs_err_t qe = {0};
    if (stt_ddoc_views_load(j->db, j->ctx, &j->arena, &dv) == 0) stt_index_update(j->db, &dv, &j->arena, &qe);
}

static void lazy_start(vstate_t *vs)
{
    if (!vs->lazy) return;
    vs->lazy = false;
    stt_vjob_t *bg = stt_xcalloc(1, sizeof(*bg));
    size_t nl;
    const char *name = stt_db_name(vs->db, &nl);
    if (stt_db_open(stt__server->store, name, nl, &bg->db) == 0) {
        bg->ctx = stt_arena_strndup(&bg->arena, vs->vr->ddoc_id, strlen(vs->vr->ddoc_id));
        bg->run = lazy_run;
        stt_vjob_background(bg);
    } else {
        stt_vjob_free(bg);
    }
}

/* The job ended without done() (its request went away): before the stream
 * started, nobody else holds the state; after, the stream's stop came first. */
static void job_gone(stt_vjob_t *j)
{
    vstate_t *vs = j->ctx;
    vs->inflight = false;
    if (!vs->streaming || vs->stopped) vstate_free(vs);
}

static int next_submit(vstate_t *vs, stt_hreq_t *r);

static int stream_produce(stt_stream_t *s, stt_buf_t *out)
{
    vstate_t *vs = s->ctx;
    vs->stream = s;             /* the first call comes before stt_stream_start returns */
    if (vs->inflight) return 2; /* the next chunk is being made */
    if (vs->failed) return -1;
    if (!vs->chunk.len && !vs->ended && next_submit(vs, s->r) != 0) return -1;
    if (vs->inflight) return 2;
    stt_buf_append(out, vs->chunk.base, vs->chunk.len);
    stt_buf_reset(&vs->chunk);
    if (vs->ended) {
        lazy_start(vs);
        return 0;
    }
    return next_submit(vs, s->r) == 0 ? 1 : -1; /* one chunk ahead */
}

static void stream_stop(stt_stream_t *s)
{
    vstate_t *vs = s->ctx;
    vs->stopped = true;
    vs->stream = NULL;
    if (!vs->inflight) vstate_free(vs);
}

static const stt_stream_ops_t stream_ops = {stream_produce, stream_stop};

static void next_run(stt_vjob_t *j)
{
    vstate_t *vs = j->ctx;
    stt_qs_err_t qe = {0};
    int rc = fill(vs, &qe);
    if (rc) {
        size_t nl;
        const char *name = stt_db_name(vs->db, &nl);
        stt_log(STT_LOG_WARNING, "view %.*s/%s/_view/%s: the answer failed after it began (%s: %s)", (int)nl, name,
                vs->vr->ddoc_id, vs->vr->view, qe.error ? qe.error : "error", qe.reason ? qe.reason : "");
        vs->failed = true;
    }
}

static void next_done(stt_hreq_t *r, stt_vjob_t *j)
{
    vstate_t *vs = j->ctx;
    j->ctx = NULL;
    vs->inflight = false;
    if (vs->stopped)
        vstate_free(vs);
    else if (vs->stream)
        stt_stream_resume(vs->stream);
}

/* Queues the job that makes the next part of vs's answer. On failure (-1, the
 * queue is full) the job is already gone: job_gone cleared inflight, and
 * freed vs if the stream had not begun. */
static int job_submit(vstate_t *vs, stt_hreq_t *r, void (*run)(stt_vjob_t *), void (*done)(stt_hreq_t *, stt_vjob_t *))
{
    stt_vjob_t *j = stt_xcalloc(1, sizeof(*j));
    j->ctx = vs;
    j->ctx_free = job_gone;
    j->run = run;
    j->done = done;
    vs->inflight = true;
    return stt_vjob_submit(r, j);
}

static int next_submit(vstate_t *vs, stt_hreq_t *r)
{
    return job_submit(vs, r, next_run, next_done);
}

static void first_run(stt_vjob_t *j)
{
    vstate_t *vs = j->ctx;
    view_req_t *vr = vs->vr;
    stt_qs_err_t qe = {0};
    int rc = stt_ddoc_views_load(vs->db, vr->ddoc_id, &vs->arena, &vs->dv);
    if (rc) return put_rc(j, rc, &qe);
    vs->vi = stt_ddoc_view_find(&vs->dv, vr->view, strlen(vr->view));
    if (vs->vi < 0) return put_error(j, 404, "not_found", "missing_named_view", false);
    for (size_t i = 0; i < vr->nargs; i++) {
        rc = stt_view_args_check(&vs->dv, vs->vi, &vr->args[i], &qe);
        if (rc) return put_rc(j, rc, &qe);
        /* a reduction folds rows the user may not read */
        if (vr->args[i].row_ok && vs->dv.views[vs->vi].reduce && vr->args[i].reduce)
            return put_error(j, 403, "forbidden", "Only db admins may reduce views in an access database.", false);
    }
    rc = fill(vs, &qe);
    if (rc) return put_rc(j, rc, &qe);
    j->status = 200;
}

static void first_done(stt_hreq_t *r, stt_vjob_t *j)
{
    vstate_t *vs = j->ctx;
    j->ctx = NULL;
    vs->inflight = false;
    if (j->status != 200) {
        stt_reply_json(r, j->status, &j->body);
        vstate_free(vs);
    } else if (vs->ended) {
        stt_reply_json(r, 200, &vs->chunk);
        lazy_start(vs);
        vstate_free(vs);
    } else {
        vs->streaming = true;
        stt_stream_start(r, 200, "application/json", &stream_ops, vs,
                         (const char *const[]){"cache-control", "must-revalidate", NULL});
    }
}

void stt_h_view(stt_hreq_t *r)
{
    bool queries = r->nseg == 6 && r->seg[5].len == 7 && memcmp(r->seg[5].base, "queries", 7) == 0;
    if (r->nseg != 5 && !queries) {
        stt_reply_error(r, STT_E_NOT_FOUND, NULL);
        return;
    }
    if (queries && r->method != STT_M_POST) {
        stt_reply_method_not_allowed(r, "POST");
        return;
    }
    if (!(r->method & (STT_M_GET | STT_M_HEAD | STT_M_POST))) {
        stt_reply_method_not_allowed(r, "GET,POST,HEAD");
        return;
    }
    vstate_t *vs = stt_xcalloc(1, sizeof(*vs));
    stt_arena_t *arena = &vs->arena;
    view_req_t *vr = stt_arena_alloc(arena, sizeof(*vr));
    memset(vr, 0, sizeof(*vr));
    vs->vr = vr;
    vr->ddoc_id = stt_arena_strndup(arena, r->docid.base, r->docid.len);
    vr->view = stt_arena_strndup(arena, r->seg[4].base, r->seg[4].len);
    vr->queries = queries;
    perr_t e = {0};
    stt_view_args_t base;
    stt_view_args_default(&base);
    pstate_t ps = {0};
    if (args_from_query(r, arena, &base, &ps, &e)) goto bad;
    if (r->method == STT_M_POST) {
        if (!stt_require_json(r)) goto out;
        h2o_iovec_t ent = r->req->entity;
        stt_json_t *body = stt_arena_alloc(arena, sizeof(*body));
        if (!ent.base || stt_json_parse(arena, ent.base, ent.len, body, NULL, 0) != 0) {
            fail(&e, 400, "bad_request", "invalid UTF-8 JSON");
            goto bad;
        }
        if (body->type != STT_JSON_OBJECT) {
            fail(&e, 400, "bad_request", "Request body must be a JSON object");
            goto bad;
        }
        if (queries) {
            const stt_json_t *qs = stt_json_get(body, "queries");
            if (!qs) {
                fail(&e, 400, "bad_request", "POST body must include `queries` parameter.");
                goto bad;
            }
            if (qs->type != STT_JSON_ARRAY) {
                fail(&e, 400, "bad_request", "`queries` member must be an array.");
                goto bad;
            }
            vr->nargs = qs->len;
            vr->args = stt_arena_alloc(arena, (qs->len + 1) * sizeof(*vr->args));
            for (uint32_t i = 0; i < qs->len; i++) {
                vr->args[i] = base;
                pstate_t qps = ps;
                if (qs->u.items[i].type != STT_JSON_OBJECT) {
                    fail(&e, 400, "bad_request", "Each query must be a JSON object");
                    goto bad;
                }
                if (args_from_object(arena, &qs->u.items[i], &vr->args[i], &qps, &e) || finish(&vr->args[i], &qps, &e))
                    goto bad;
            }
        } else if (args_from_object(arena, body, &base, &ps, &e)) {
            goto bad;
        }
    }
    if (!queries) {
        if (finish(&base, &ps, &e)) goto bad;
        vr->nargs = 1;
        vr->args = stt_arena_alloc(arena, sizeof(*vr->args));
        vr->args[0] = base;
    }
    if (stt_db_open(stt__server->store, r->dbname.base, r->dbname.len, &vs->db) != 0) {
        stt_reply_error(r, STT_E_DB_NOT_FOUND, NULL);
        goto out;
    }
    stt_access_t *acc = stt__access(r);
    if (acc) { /* a user of an access db: their docs' rows only (the job may outlive r) */
        acc = stt_access_copy(arena, acc);
        for (size_t i = 0; i < vr->nargs; i++) {
            vr->args[i].row_ok = stt_access_view_row_ok;
            vr->args[i].row_ctx = acc;
        }
    }
    if (job_submit(vs, r, first_run, first_done) != 0)
        stt_reply_error_raw(r, 503, "service_unavailable", "Too many view requests.");
    return;
bad:
    stt_reply_error_raw(r, e.status, e.error, e.reason);
out:
    vstate_free(vs);
}
