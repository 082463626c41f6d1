/* Mango over HTTP: POST _find, POST _explain and the _index endpoints. Each
 * handler parses the request, calls mango/ (planning, execution and index
 * definitions live there) and renders its answer or CouchDB's error.
 *
 * _find runs its first part on the view pool (planning reads the design docs,
 * and bringing the chosen index up to date may take long), then streams the
 * rest from the request's loop in chunks, as _all_docs does. */
#include "src/http/http.h"
#include "access/access.h"
#include "mango/mango.h"
#include "replication/replication.h"
#include "src/common/err.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void reply_err(stt_hreq_t *r, int rc, const stt_mango_err_t *e)
{
    if (rc == STT_MANGO_E && e->ref) {
        stt_buf_t b = STT_BUF_INIT;
        stt_buf_appends(&b, "{\"error\":");
        stt_json_write_cstr(&b, e->error);
        stt_buf_appends(&b, ",\"reason\":");
        stt_json_write_cstr(&b, e->reason);
        stt_buf_appendf(&b, ",\"ref\":%u}", (unsigned)(rand() & 0x7fffffff));
        stt_reply_json(r, e->status, &b);
    } else if (rc == STT_MANGO_E)
        stt_reply_error_raw(r, e->status, e->error, e->reason);
    else
        stt_reply_error(r, rc, e->reason[0] ? e->reason : NULL);
}

/* ------------------------------------------------------------------ _find */

typedef struct {
    stt_mango_find_t *f;
    stt_db_t *db; /* held until the stream stops */
    stt_mango_err_t err;
    int rc;
} find_job_t;

static int find_produce(stt_stream_t *s, stt_buf_t *out)
{
    find_job_t *fj = s->ctx;
    return stt_mango_find_next(fj->f, out);
}

static void find_job_free(find_job_t *fj)
{
    stt_mango_find_free(fj->f);
    if (fj->db) stt_db_release(fj->db);
    free(fj);
}

static void find_stop(stt_stream_t *s)
{
    find_job_free(s->ctx);
}

static const stt_stream_ops_t find_ops = {find_produce, find_stop};

static void find_run(stt_vjob_t *j)
{
    find_job_t *fj = j->ctx;
    fj->rc = stt_mango_find_start(fj->f, j->db, &fj->err);
}

static void find_done(stt_hreq_t *r, stt_vjob_t *j)
{
    find_job_t *fj = j->ctx;
    j->ctx = NULL;
    if (fj->rc) {
        reply_err(r, fj->rc, &fj->err);
        find_job_free(fj);
        return;
    }
    fj->db = j->db; /* the stream reads on after the job is gone */
    j->db = NULL;
    stt_stream_start(r, 200, "application/json", &find_ops, fj,
                     (const char *const[]){"cache-control", "must-revalidate", NULL});
}

/* A job whose request went away still owns its find. */
static void find_ctx_free(stt_vjob_t *j)
{
    find_job_free(j->ctx);
}

static int read_query(stt_hreq_t *r, stt_mango_find_t **f)
{
    if (!stt_require_json(r)) return -1;
    stt_json_t body;
    if (stt_body_json(r, &body, "Request body must be a JSON object") != 0) return -1;
    stt_mango_err_t e;
    int rc = stt_mango_find_new(&body, f, &e);
    if (rc) {
        reply_err(r, rc, &e);
        return -1;
    }
    return 0;
}

static int pick_access(void *ctx, const stt_doc_t *d)
{
    return stt_access_winner(ctx, d);
}

void stt_h_find(stt_hreq_t *r)
{
    stt_mango_find_t *f;
    if (read_query(r, &f) != 0) return;
    /* the access view lives in the request's arena: only the stream (on this loop,
     * while the request lives) reads docs */
    stt_access_t *acc = stt__access(r);
    if (acc) stt_mango_find_pick(f, pick_access, acc);
    size_t nlen;
    const char *dbn = stt_db_name(r->db, &nlen);
    if (nlen == sizeof(STT_USERS_DB) - 1 && memcmp(dbn, STT_USERS_DB, nlen) == 0 &&
        !stt_security_is_db_admin(stt__db_security(r), &r->user)) {
        /* CouchDB's after_doc_read makes every other user's doc not_found */
        stt_buf_t id = STT_BUF_INIT;
        stt_buf_appends(&id, STT_USER_PREFIX);
        if (r->user.name && !r->user.name_is_number)
            stt_buf_append(&id, r->user.name, r->user.namelen);
        else
            stt_buf_appendc(&id, '\0'); /* anonymous: no doc is its own */
        stt_mango_find_only(f, id.base, id.len);
        stt_buf_free(&id);
    }
    stt_vjob_t *j = stt_xcalloc(1, sizeof(*j));
    if (stt_db_open(stt__server->store, r->dbname.base, r->dbname.len, &j->db) != 0) {
        stt_mango_find_free(f);
        stt_vjob_free(j);
        stt_reply_error(r, STT_E_DB_NOT_FOUND, NULL);
        return;
    }
    find_job_t *fj = stt_xcalloc(1, sizeof(*fj));
    fj->f = f;
    j->ctx = fj;
    j->run = find_run;
    j->done = find_done;
    j->ctx_free = find_ctx_free;
    if (stt_vjob_submit(r, j) != 0) stt_reply_error_raw(r, 503, "service_unavailable", "Too many view requests.");
}

/* ------------------------------------------------------------------ _explain */

void stt_h_explain(stt_hreq_t *r)
{
    stt_mango_find_t *f;
    if (read_query(r, &f) != 0) return;
    stt_buf_t b = STT_BUF_INIT;
    stt_mango_err_t e;
    int rc = stt_mango_explain(f, r->db, &b, &e);
    stt_mango_find_free(f);
    if (rc) {
        stt_buf_free(&b);
        reply_err(r, rc, &e);
        return;
    }
    stt_reply_json(r, 200, &b);
}

/* ------------------------------------------------------------------ _index */

/* limit and skip as mango_httpd parses them (its error is a 500). */
static int index_param(stt_hreq_t *r, const char *key, int64_t min, int64_t *out)
{
    const stt_qparam_t *p = stt_q_get(r, key);
    if (!p) return 0;
    char *end;
    errno = 0;
    long long v = strtoll(p->val, &end, 10);
    if (p->vallen == 0 || *end || errno || v < min) {
        stt_reply_error_raw(r, 500, "invalid_list_index_params", "Index parameter ranges: limit > 1, skip > 0");
        return -1;
    }
    *out = v;
    return 0;
}

static void index_list(stt_hreq_t *r)
{
    int64_t limit = -1, skip = -1;
    if (index_param(r, "limit", 1, &limit) || index_param(r, "skip", 0, &skip)) return;
    stt_buf_t b = STT_BUF_INIT;
    stt_mango_err_t e;
    int rc = stt_mango_index_list(r->db, skip, limit, &b, &e);
    if (rc) {
        stt_buf_free(&b);
        reply_err(r, rc, &e);
        return;
    }
    stt_reply_json(r, 200, &b);
}

/* POST _index and POST _index/_bulk_delete: a JSON body, one call. */
static void index_post(stt_hreq_t *r, int (*fn)(stt_db_t *, const stt_json_t *, stt_buf_t *, stt_mango_err_t *))
{
    if (!stt_require_json(r)) return;
    stt_json_t body;
    if (stt_body_json(r, &body, "Request body must be a JSON object") != 0) return;
    stt_buf_t b = STT_BUF_INIT;
    stt_mango_err_t e;
    int rc = fn(r->db, &body, &b, &e);
    if (rc) {
        stt_buf_free(&b);
        reply_err(r, rc, &e);
        return;
    }
    stt_reply_json(r, 200, &b);
}

static void index_delete(stt_hreq_t *r, h2o_iovec_t ddoc, h2o_iovec_t type, h2o_iovec_t name)
{
    stt_mango_err_t e;
    int rc = stt_mango_index_delete(r->db, ddoc.base, ddoc.len, type.base, type.len, name.base, name.len, &e);
    if (rc)
        reply_err(r, rc, &e);
    else
        stt_reply_ok(r, 200);
}

void stt_h_index(stt_hreq_t *r)
{
    size_t n = r->nseg;
    while (n > 2 && r->seg[n - 1].len == 0)
        n--; /* a trailing slash */
    if (n == 2) {
        if (r->method & (STT_M_GET | STT_M_HEAD))
            index_list(r);
        else if (r->method == STT_M_POST)
            index_post(r, stt_mango_index_create);
        else
            stt_reply_method_not_allowed(r, "GET,POST");
        return;
    }
    if (n == 3 && r->seg[2].len == 12 && memcmp(r->seg[2].base, "_bulk_delete", 12) == 0) {
        if (r->method == STT_M_POST)
            index_post(r, stt_mango_index_bulk_delete);
        else
            stt_reply_method_not_allowed(r, "POST");
        return;
    }
    /* {ddoc}/json/{name}, where ddoc may also come as two parts _design/{x} */
    bool split = n == 6 && r->seg[2].len == 7 && memcmp(r->seg[2].base, "_design", 7) == 0;
    if (n == 5 || split) {
        if (r->method != STT_M_DELETE) {
            stt_reply_method_not_allowed(r, "DELETE");
            return;
        }
        h2o_iovec_t ddoc = split ? r->seg[3] : r->seg[2];
        index_delete(r, ddoc, r->seg[n - 2], r->seg[n - 1]);
        return;
    }
    stt_reply_error(r, STT_E_NOT_FOUND, NULL);
}
