/* The protocol's commands as C calls: each builds its command lines, runs them on
 * a process from the pool and checks the shape of the replies (a reply of the
 * wrong shape means the process is out of step, and it is replaced).
 *
 * Design docs: a process is sent ["ddoc", "new", id, doc] once per (id, rev) it
 * has not seen, and remembers it; the pool prefers a process that already holds
 * the design doc a call needs. */
#include "qserver/qs_int.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ reply checks */

static int bad_shape(stt_arena_t *arena, stt_qs_err_t *err, const char *what)
{
    char reason[160];
    snprintf(reason, sizeof reason, "The query server's reply to %s has the wrong shape.", what);
    return stt__qs_fail(arena, err, STT_QS_E_PROCESS, 500, "os_process_error", reason);
}

static int expect_true(void *ctx, size_t i, const stt_json_t *v, stt_arena_t *arena, stt_qs_err_t *err)
{
    return v->type == STT_JSON_TRUE ? 0 : bad_shape(arena, err, "a setup command");
}

/* [true, [...]]: the array is stored in *(stt_json_t *)ctx. */
static int expect_true_array(void *ctx, size_t i, const stt_json_t *v, stt_arena_t *arena, stt_qs_err_t *err)
{
    if (v->type != STT_JSON_ARRAY || v->len != 2 || v->u.items[0].type != STT_JSON_TRUE ||
        v->u.items[1].type != STT_JSON_ARRAY)
        return bad_shape(arena, err, "a [true, results] command");
    *(stt_json_t *)ctx = v->u.items[1];
    return 0;
}

static int keep_reply(void *ctx, size_t i, const stt_json_t *v, stt_arena_t *arena, stt_qs_err_t *err)
{
    *(stt_json_t *)ctx = *v;
    return 0;
}

/* ------------------------------------------------------------------ building commands */

static void put_text(stt_buf_t *b, stt_qs_text_t t)
{
    if (t.s)
        stt_buf_append(b, t.s, t.len);
    else
        stt_buf_appends(b, "null");
}

static void put_str(stt_buf_t *b, const char *s)
{
    stt_json_write_str(b, s, strlen(s));
}

static void put_funs(stt_buf_t *b, const stt_qs_text_t *funs, size_t nfuns)
{
    stt_buf_appendc(b, '[');
    for (size_t i = 0; i < nfuns; i++) {
        if (i) stt_buf_appendc(b, ',');
        stt_json_write_str(b, funs[i].s, funs[i].len);
    }
    stt_buf_appendc(b, ']');
}

/* ------------------------------------------------------------------ running a call */

/* The cache key of a design doc version in a process: the id as JSON (which has
 * no raw newline), a newline, the rev. A process holds one rev per id: "ddoc new"
 * of another rev replaces the one it had. */
static char *ddoc_key(const stt_qs_ddoc_t *d)
{
    stt_buf_t b = STT_BUF_INIT;
    put_str(&b, d->id);
    stt_buf_appendc(&b, '\n');
    stt_buf_appends(&b, d->rev ? d->rev : "");
    return stt_buf_release(&b, NULL);
}

static void remember_ddoc(stt_qs_proc_t *p, const char *key)
{
    size_t idlen = (size_t)(strchr(key, '\n') - key) + 1;
    for (size_t i = 0; i < p->nddocs; i++)
        if (!strncmp(p->ddocs[i], key, idlen)) {
            free(p->ddocs[i]);
            p->ddocs[i] = stt_xstrndup(key, strlen(key));
            return;
        }
    /* When full, the process is retired at checkin instead of growing further. */
    if (p->nddocs < STT_QS_MAX_DDOCS) p->ddocs[p->nddocs++] = stt_xstrndup(key, strlen(key));
}

static bool proc_holds(const stt_qs_proc_t *p, const char *key)
{
    for (size_t i = 0; i < p->nddocs; i++)
        if (!strcmp(p->ddocs[i], key)) return true;
    return false;
}

/* Sends the design doc unless p holds it. */
static int ensure_ddoc(stt_qs_pool_t *pool, stt_qs_proc_t *p, const stt_qs_ddoc_t *d, const char *key,
                       stt_arena_t *arena, stt_qs_err_t *err, bool *got_any)
{
    if (proc_holds(p, key)) return 0;
    stt_buf_t b = STT_BUF_INIT;
    stt_buf_appends(&b, "[\"ddoc\",\"new\",");
    put_str(&b, d->id);
    stt_buf_appendc(&b, ',');
    put_text(&b, d->json);
    stt_buf_appends(&b, "]\n");
    int rc = stt__qs_exchange(pool, p, b.base, b.len, 1, expect_true, NULL, arena, err, got_any);
    stt_buf_free(&b);
    if (rc == 0) remember_ddoc(p, key);
    return rc;
}

/* Runs cmd (nreplies replies) on a process of lang, with ddoc loaded first when
 * given. A process that died while idle (nothing came back at all) is replaced
 * and the call made once more. */
static int call(stt_qs_pool_t *pool, const char *lang, const stt_qs_ddoc_t *ddoc, const stt_buf_t *cmd, size_t nreplies,
                stt_qs_reply_fn fn, void *ctx, stt_arena_t *arena, stt_qs_err_t *err)
{
    char *key = ddoc ? ddoc_key(ddoc) : NULL;
    int rc;
    for (int attempt = 0;; attempt++) {
        stt_qs_proc_t *p;
        bool reused, got_any = false;
        rc = stt__qs_checkout(pool, lang, key, &p, &reused, arena, err);
        if (rc) break;
        if (ddoc) rc = ensure_ddoc(pool, p, ddoc, key, arena, err, &got_any);
        if (!rc) rc = stt__qs_exchange(pool, p, cmd->base, cmd->len, nreplies, fn, ctx, arena, err, &got_any);
        bool retry = rc && p->broken && reused && !got_any && attempt == 0 && rc != STT_QS_E_TIMEOUT;
        stt__qs_checkin(pool, p);
        if (!retry) break;
    }
    free(key);
    return rc;
}

/* ------------------------------------------------------------------ views */

int stt_qs_compile(stt_qs_pool_t *pool, const char *lang, stt_qs_text_t src, stt_arena_t *arena, stt_qs_err_t *err)
{
    stt_buf_t b = STT_BUF_INIT;
    stt_buf_append(&b, pool->reset_cmd, pool->reset_len);
    stt_buf_appends(&b, "[\"add_fun\",");
    stt_json_write_str(&b, src.s, src.len);
    stt_buf_appends(&b, "]\n");
    int rc = call(pool, lang, NULL, &b, 2, expect_true, NULL, arena, err);
    stt_buf_free(&b);
    return rc;
}

struct stt_qs_mapper {
    stt_qs_pool_t *pool;
    char *lang;
    stt_buf_t setup; /* reset, add_lib, add_fun...: what a process needs first */
    size_t nsetup;
    size_t nfuns;
    stt_qs_proc_t *p; /* NULL after its process broke: the next batch takes another */
};

static int mapper_ready(stt_qs_mapper_t *m, stt_arena_t *arena, stt_qs_err_t *err)
{
    if (m->p) return 0;
    for (int attempt = 0;; attempt++) {
        bool reused, got_any = false;
        int rc = stt__qs_checkout(m->pool, m->lang, NULL, &m->p, &reused, arena, err);
        if (rc) return rc;
        /* A process started for us was reset at its start already. */
        size_t skip = m->p->fresh ? m->pool->reset_len : 0;
        rc = stt__qs_exchange(m->pool, m->p, m->setup.base + skip, m->setup.len - skip, m->nsetup - (skip ? 1 : 0),
                              expect_true, NULL, arena, err, &got_any);
        if (!rc) return 0;
        bool retry = m->p->broken && reused && !got_any && attempt == 0 && rc != STT_QS_E_TIMEOUT;
        stt__qs_checkin(m->pool, m->p);
        m->p = NULL;
        if (!retry) return rc;
    }
}

int stt_qs_map_open(stt_qs_pool_t *pool, const char *lang, stt_qs_text_t lib, const stt_qs_text_t *funs, size_t nfuns,
                    stt_arena_t *arena, stt_qs_err_t *err, stt_qs_mapper_t **out)
{
    stt_qs_mapper_t *m = stt_xcalloc(1, sizeof *m);
    m->pool = pool;
    m->lang = stt_xstrndup(lang ? lang : "javascript", strlen(lang ? lang : "javascript"));
    m->nfuns = nfuns;
    stt_buf_append(&m->setup, pool->reset_cmd, pool->reset_len);
    m->nsetup = 1;
    if (lib.s && lib.len) {
        stt_buf_appends(&m->setup, "[\"add_lib\",");
        stt_buf_append(&m->setup, lib.s, lib.len);
        stt_buf_appends(&m->setup, "]\n");
        m->nsetup++;
    }
    for (size_t i = 0; i < nfuns; i++) {
        stt_buf_appends(&m->setup, "[\"add_fun\",");
        stt_json_write_str(&m->setup, funs[i].s, funs[i].len);
        stt_buf_appends(&m->setup, "]\n");
        m->nsetup++;
    }
    int rc = mapper_ready(m, arena, err);
    if (rc) {
        stt_qs_map_close(m);
        return rc;
    }
    *out = m;
    return 0;
}

typedef struct {
    stt_json_t *out;
    size_t nfuns;
} map_ctx_t;

static int on_map_reply(void *ctx, size_t i, const stt_json_t *v, stt_arena_t *arena, stt_qs_err_t *err)
{
    map_ctx_t *c = ctx;
    if (v->type != STT_JSON_ARRAY || v->len != c->nfuns) return bad_shape(arena, err, "map_doc");
    for (size_t f = 0; f < v->len; f++)
        if (v->u.items[f].type != STT_JSON_ARRAY) return bad_shape(arena, err, "map_doc");
    c->out[i] = *v;
    return 0;
}

int stt_qs_map_docs(stt_qs_mapper_t *m, const stt_qs_text_t *docs, size_t ndocs, stt_arena_t *arena, stt_json_t *out,
                    stt_qs_err_t *err)
{
    if (ndocs == 0) return 0;
    int rc = mapper_ready(m, arena, err);
    if (rc) return rc;
    stt_buf_t b = STT_BUF_INIT;
    for (size_t i = 0; i < ndocs; i++) {
        stt_buf_appends(&b, "[\"map_doc\",");
        put_text(&b, docs[i]);
        stt_buf_appends(&b, "]\n");
    }
    map_ctx_t c = {out, m->nfuns};
    bool got_any;
    rc = stt__qs_exchange(m->pool, m->p, b.base, b.len, ndocs, on_map_reply, &c, arena, err, &got_any);
    stt_buf_free(&b);
    if (rc && m->p->broken) {
        stt__qs_checkin(m->pool, m->p);
        m->p = NULL;
    }
    return rc;
}

void stt_qs_map_close(stt_qs_mapper_t *m)
{
    if (!m) return;
    stt__qs_checkin(m->pool, m->p);
    stt_buf_free(&m->setup);
    free(m->lang);
    free(m);
}

static int run_reduce(stt_qs_pool_t *pool, const char *lang, const char *cmd, const stt_qs_text_t *funs, size_t nfuns,
                      stt_qs_text_t arg, stt_arena_t *arena, stt_json_t *out, stt_qs_err_t *err)
{
    stt_buf_t b = STT_BUF_INIT;
    stt_buf_appendf(&b, "[\"%s\",", cmd);
    put_funs(&b, funs, nfuns);
    stt_buf_appendc(&b, ',');
    put_text(&b, arg);
    stt_buf_appends(&b, "]\n");
    stt_json_t res;
    int rc = call(pool, lang, NULL, &b, 1, expect_true_array, &res, arena, err);
    stt_buf_free(&b);
    if (!rc && res.len != nfuns) return bad_shape(arena, err, cmd);
    if (!rc) *out = res;
    return rc;
}

int stt_qs_reduce(stt_qs_pool_t *pool, const char *lang, const stt_qs_text_t *funs, size_t nfuns, stt_qs_text_t kvs,
                  stt_arena_t *arena, stt_json_t *out, stt_qs_err_t *err)
{
    return run_reduce(pool, lang, "reduce", funs, nfuns, kvs, arena, out, err);
}

int stt_qs_rereduce(stt_qs_pool_t *pool, const char *lang, const stt_qs_text_t *funs, size_t nfuns,
                    stt_qs_text_t values, stt_arena_t *arena, stt_json_t *out, stt_qs_err_t *err)
{
    return run_reduce(pool, lang, "rereduce", funs, nfuns, values, arena, out, err);
}

/* ------------------------------------------------------------------ design documents */

/* ["ddoc", id, path, args]\n, with args given as its members (a JSON array's
 * inside, without the brackets). */
static void ddoc_cmd(stt_buf_t *b, const stt_qs_ddoc_t *d, const char *const *path, size_t npath)
{
    stt_buf_appends(b, "[\"ddoc\",");
    put_str(b, d->id);
    stt_buf_appends(b, ",[");
    for (size_t i = 0; i < npath; i++) {
        if (i) stt_buf_appendc(b, ',');
        put_str(b, path[i]);
    }
    stt_buf_appends(b, "],[");
}

int stt_qs_ddoc_call(stt_qs_pool_t *pool, const stt_qs_ddoc_t *ddoc, const char *const *path, size_t npath,
                     stt_qs_text_t args, stt_arena_t *arena, stt_json_t *out, stt_qs_err_t *err)
{
    stt_buf_t b = STT_BUF_INIT;
    ddoc_cmd(&b, ddoc, path, npath);
    b.len--; /* args is a whole array */
    put_text(&b, args.s ? args : (stt_qs_text_t){"[]", 2});
    stt_buf_appends(&b, "]\n");
    int rc = call(pool, ddoc->lang, ddoc, &b, 1, keep_reply, out, arena, err);
    stt_buf_free(&b);
    return rc;
}

/* CouchDB's reading of a validate_doc_update reply: 1 (or true) passes,
 * {forbidden: m} and {unauthorized: m} are those errors, anything else is an
 * unknown_error with the message. */
static int vdu_verdict(const stt_json_t *v, stt_arena_t *arena, stt_qs_err_t *err)
{
    if (v->type == STT_JSON_TRUE) return 0;
    if (v->type == STT_JSON_NUMBER && v->len == 1 && v->u.s[0] == '1') return 0;
    stt_json_t msg = *v;
    const char *key = NULL;
    if (v->type == STT_JSON_OBJECT && v->len == 1) {
        key = v->u.members[0].key;
        msg = v->u.members[0].val;
    }
    stt_buf_t b = STT_BUF_INIT;
    if (msg.type == STT_JSON_STRING)
        stt_buf_append(&b, msg.u.s, msg.len);
    else
        stt_json_write(&b, &msg);
    int rc;
    if (key && !strcmp(key, "forbidden"))
        rc = stt__qs_fail(arena, err, STT_QS_E_FORBIDDEN, 403, "forbidden", b.base);
    else if (key && !strcmp(key, "unauthorized"))
        rc = stt__qs_fail(arena, err, STT_QS_E_UNAUTHORIZED, 401, "unauthorized", b.base);
    else
        rc = stt__qs_fail(arena, err, STT_QS_E_ERROR, 500, "unknown_error", b.base);
    stt_buf_free(&b);
    return rc;
}

int stt_qs_validate(stt_qs_pool_t *pool, const stt_qs_ddoc_t *ddoc, stt_qs_text_t new_doc, stt_qs_text_t old_doc,
                    stt_qs_text_t user_ctx, stt_qs_text_t sec_obj, stt_arena_t *arena, stt_qs_err_t *err)
{
    static const char *const path[] = {"validate_doc_update"};
    stt_buf_t b = STT_BUF_INIT;
    ddoc_cmd(&b, ddoc, path, 1);
    put_text(&b, new_doc);
    stt_buf_appendc(&b, ',');
    put_text(&b, old_doc);
    stt_buf_appendc(&b, ',');
    put_text(&b, user_ctx);
    stt_buf_appendc(&b, ',');
    put_text(&b, sec_obj);
    stt_buf_appends(&b, "]]\n");
    stt_json_t reply;
    int rc = call(pool, ddoc->lang, ddoc, &b, 1, keep_reply, &reply, arena, err);
    stt_buf_free(&b);
    return rc ? rc : vdu_verdict(&reply, arena, err);
}

typedef struct {
    int *rcs;
    stt_qs_err_t *errs;
} vdu_batch_t;

static int vdu_each(void *ctx, size_t i, const stt_json_t *v, stt_arena_t *arena, stt_qs_err_t *err)
{
    vdu_batch_t *b = ctx;
    b->rcs[i] = vdu_verdict(v, arena, &b->errs[i]);
    return 0;
}

int stt_qs_validate_many(stt_qs_pool_t *pool, const stt_qs_ddoc_t *ddoc, const stt_qs_text_t *new_docs,
                         const stt_qs_text_t *old_docs, size_t n, stt_qs_text_t user_ctx, stt_qs_text_t sec_obj,
                         stt_arena_t *arena, int *rcs, stt_qs_err_t *errs, stt_qs_err_t *err)
{
    static const char *const path[] = {"validate_doc_update"};
    if (!n) return 0;
    stt_buf_t b = STT_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        ddoc_cmd(&b, ddoc, path, 1);
        put_text(&b, new_docs[i]);
        stt_buf_appendc(&b, ',');
        put_text(&b, old_docs[i]);
        stt_buf_appendc(&b, ',');
        put_text(&b, user_ctx);
        stt_buf_appendc(&b, ',');
        put_text(&b, sec_obj);
        stt_buf_appends(&b, "]]\n");
    }
    vdu_batch_t vb = {rcs, errs};
    int rc = call(pool, ddoc->lang, ddoc, &b, n, vdu_each, &vb, arena, err);
    stt_buf_free(&b);
    return rc;
}

static int run_filter(stt_qs_pool_t *pool, const stt_qs_ddoc_t *ddoc, const char *const *path, size_t npath,
                      const stt_qs_text_t *docs, size_t ndocs, const stt_qs_text_t *req, stt_arena_t *arena, bool *pass,
                      stt_qs_err_t *err)
{
    stt_buf_t b = STT_BUF_INIT;
    ddoc_cmd(&b, ddoc, path, npath);
    stt_buf_appendc(&b, '[');
    for (size_t i = 0; i < ndocs; i++) {
        if (i) stt_buf_appendc(&b, ',');
        put_text(&b, docs[i]);
    }
    stt_buf_appendc(&b, ']');
    if (req) {
        stt_buf_appendc(&b, ',');
        put_text(&b, *req);
    }
    stt_buf_appends(&b, "]]\n");
    stt_json_t res;
    int rc = call(pool, ddoc->lang, ddoc, &b, 1, expect_true_array, &res, arena, err);
    stt_buf_free(&b);
    if (rc) return rc;
    if (res.len != ndocs) return bad_shape(arena, err, path[0]);
    for (size_t i = 0; i < ndocs; i++)
        pass[i] = res.u.items[i].type == STT_JSON_TRUE;
    return 0;
}

int stt_qs_filter(stt_qs_pool_t *pool, const stt_qs_ddoc_t *ddoc, const char *name, const stt_qs_text_t *docs,
                  size_t ndocs, stt_qs_text_t req, stt_arena_t *arena, bool *pass, stt_qs_err_t *err)
{
    const char *path[] = {"filters", name};
    return run_filter(pool, ddoc, path, 2, docs, ndocs, &req, arena, pass, err);
}

int stt_qs_filter_view(stt_qs_pool_t *pool, const stt_qs_ddoc_t *ddoc, const char *name, const stt_qs_text_t *docs,
                       size_t ndocs, stt_arena_t *arena, bool *pass, stt_qs_err_t *err)
{
    const char *path[] = {"views", name, "map"};
    return run_filter(pool, ddoc, path, 3, docs, ndocs, NULL, arena, pass, err);
}

int stt_qs_update(stt_qs_pool_t *pool, const stt_qs_ddoc_t *ddoc, const char *name, stt_qs_text_t doc,
                  stt_qs_text_t req, stt_arena_t *arena, stt_json_t *doc_out, stt_json_t *resp_out, stt_qs_err_t *err)
{
    const char *path[] = {"updates", name};
    stt_buf_t b = STT_BUF_INIT;
    ddoc_cmd(&b, ddoc, path, 2);
    put_text(&b, doc);
    stt_buf_appendc(&b, ',');
    put_text(&b, req);
    stt_buf_appends(&b, "]]\n");
    stt_json_t reply;
    int rc = call(pool, ddoc->lang, ddoc, &b, 1, keep_reply, &reply, arena, err);
    stt_buf_free(&b);
    if (rc) return rc;
    if (reply.type != STT_JSON_ARRAY || reply.len != 3 || reply.u.items[0].type != STT_JSON_STRING ||
        strcmp(reply.u.items[0].u.s, "up") || reply.u.items[2].type != STT_JSON_OBJECT)
        return bad_shape(arena, err, "updates");
    *doc_out = reply.u.items[1];
    *resp_out = reply.u.items[2];
    return 0;
}
