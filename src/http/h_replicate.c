/* POST /_replicate, GET /_scheduler/jobs and /_scheduler/docs: parse, hand to the
 * replicator (replication/replicator.h), render. A one-shot replication answers
 * when it ends: its job thread posts the answer back to this request's loop; if
 * the client left meanwhile the job goes on and the answer is dropped. */
#include "src/http/http.h"
#include "src/http/offload.h"
#include "replication/replicator.h"
#include "src/common/err.h"
#include <stdlib.h>
#include <string.h>

typedef struct wait_s wait_t;
typedef struct {
    wait_t *w;
} link_t;

struct wait_s {
    stt_offload_t off;
    stt_hreq_t *r; /* NULL once the request went away */
    link_t *link;  /* the request pool's pointer back to us, while r lives */
    stt_rep_reply_t reply;
};

static void render(stt_hreq_t *r, stt_rep_reply_t *rep)
{
    if (rep->body.len) {
        stt_reply_json(r, rep->status, &rep->body);
    } else {
        stt_reply_error_raw(r, rep->status ? rep->status : 500, rep->error[0] ? rep->error : "error", rep->reason);
    }
    stt_rep_reply_free(rep);
}

static void on_answer(stt_offload_t *o)
{
    wait_t *w = H2O_STRUCT_FROM_MEMBER(wait_t, off, o);
    if (w->r) {
        w->link->w = NULL;
        render(w->r, &w->reply);
    }
    stt_rep_reply_free(&w->reply);
    free(w);
}

/* on the job's thread */
static void on_done(void *ctx, stt_rep_reply_t *reply)
{
    wait_t *w = ctx;
    w->reply = *reply;
    stt_offload_post(&w->off);
}

static void link_dispose(void *p)
{
    link_t *lk = p;
    if (lk->w) lk->w->r = NULL;
}

void stt_h_replicate(stt_hreq_t *r)
{
    if (r->method != STT_M_POST) {
        if (r->method & (STT_M_GET | STT_M_HEAD))
            stt_reply_error_raw(r, 400, "bad_request", "Missing request body");
        else
            stt_reply_method_not_allowed(r, "POST");
        return;
    }
    if (!r->user.name && !stt_user_is_admin(&r->user)) {
        stt_reply_error_raw(r, 401, "unauthorized", "You are not an authenticated user");
        return;
    }
    stt_json_t body;
    if (!stt_require_json(r) || stt_body_json(r, &body, NULL) != 0) return;
    wait_t *w = stt_xcalloc(1, sizeof(*w));
    w->off.done = on_answer;
    w->off.worker = stt_worker_index(r->w);
    stt_rep_ticket_t *t = NULL;
    stt_rep_reply_t now;
    stt_buf_t self = STT_BUF_INIT;
    stt_reply_location(r, &self, "/", 1);
    stt_buf_appendc(&self, '\0');
    int rc = stt_rep_request(&body, &r->user, self.base, on_done, w, &t, &now);
    stt_buf_free(&self);
    if (rc == 1) {
        free(w);
        render(r, &now);
        return;
    }
    w->r = r;
    link_t *lk = h2o_mem_alloc_shared(&r->req->pool, sizeof(*lk), link_dispose);
    lk->w = w;
    w->link = lk;
}

static int parse_paging(stt_hreq_t *r, uint64_t *limit, uint64_t *skip)
{
    *limit = UINT64_MAX;
    *skip = 0;
    return stt_q_uint(r, "limit", limit) || stt_q_uint(r, "skip", skip) ? -1 : 0;
}

static char *seg_str(stt_hreq_t *r, size_t i)
{
    return stt_arena_strndup(&r->arena, r->seg[i].base, r->seg[i].len);
}

void stt_h_scheduler(stt_hreq_t *r)
{
    uint64_t limit, skip;
    if (parse_paging(r, &limit, &skip) != 0) return;
    stt_buf_t b = STT_BUF_INIT;
    int rc;
    bool is_jobs = r->nseg >= 2 && r->seg[1].len == 4 && memcmp(r->seg[1].base, "jobs", 4) == 0;
    bool is_docs = r->nseg >= 2 && r->seg[1].len == 4 && memcmp(r->seg[1].base, "docs", 4) == 0;
    if (is_jobs && r->nseg <= 3) {
        rc = stt_rep_jobs_json(r->nseg == 3 ? seg_str(r, 2) : NULL, limit, skip, &b);
    } else if (is_docs && r->nseg <= 4) {
        if (r->nseg >= 3 && !(r->seg[2].len == 11 && memcmp(r->seg[2].base, STT_REPLICATOR_DB, 11) == 0)) {
            stt_reply_error_raw(r, 400, "bad_request", "Invalid path");
            return;
        }
        rc = stt_rep_docs_json(r->nseg == 4 ? seg_str(r, 3) : NULL, limit, skip, &b);
    } else {
        stt_reply_error_raw(r, 404, "not_found", "missing");
        return;
    }
    if (rc) {
        stt_buf_free(&b);
        stt_reply_error(r, rc, NULL);
        return;
    }
    stt_reply_json(r, 200, &b);
}
