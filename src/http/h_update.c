/* Design-doc functions called by URL: _update handlers, and the answer for the
 * _show, _list and _rewrite functions settee does not run.
 *
 * POST/PUT /{db}/_design/{ddoc}/_update/{name}[/{docid}] as CouchDB's
 * chttpd_show: the handler (run on the offload pool: it blocks on the query
 * server) gets the stored doc (or null) and the req object, and answers [doc,
 * response]. A doc is saved through the writer like any other edit (so
 * validate_doc_update applies) and the reply carries X-Couch-Id and
 * X-Couch-Update-NewRev; the response object's code, headers and body / json /
 * base64 shape the reply.
 *
 * _show, _list and _rewrite are deprecated in CouchDB 3 and not built: 410 gone,
 * the shape CouchDB gives _temp_view, with a reason that names the function kind. */
#include "src/http/http.h"
#include "src/http/multipart.h"
#include "src/http/offload.h"
#include "src/http/writer.h"
#include "design/design.h"
#include "replication/replication.h"
#include "src/common/codec.h"
#include "src/common/err.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct update update_t;
typedef struct {
    update_t *u; /* the call in flight; NULL once it came back */
} link_t;

struct update {
    stt_offload_t off;
    stt_hreq_t *r;
    link_t *link; /* NULL once the request went away */
    /* inputs, copied: the request may go away while the function runs */
    stt_qs_ddoc_t ddoc;
    char *name;
    stt_qs_text_t doc, req;
    /* outputs */
    int rc;
    stt_qs_err_t err;
    stt_json_t doc_out, resp;
    stt_arena_t arena;
};

static void update_free(update_t *u)
{
    stt_arena_free(&u->arena);
    free(u);
}

static void link_dispose(void *p)
{
    link_t *lk = p;
    if (lk->u) lk->u->link = NULL;
}

static stt_qs_text_t copy_text(stt_arena_t *a, const char *s, size_t len)
{
    return (stt_qs_text_t){s ? stt_arena_memdup(a, s, len) : NULL, len};
}

static char *copy_str(stt_arena_t *a, const char *s)
{
    return s ? stt_arena_strndup(a, s, strlen(s)) : NULL;
}

/* ------------------------------------------------------------------ the reply */

/* The response object as CouchDB's send_external_response renders it. status is
 * the default when it names no code. */
static void reply_response(stt_hreq_t *r, const stt_json_t *resp, int status, const char *newid, size_t newidlen,
                           const char *newrev)
{
    const char *hdr[32];
    size_t nh = 0;
    const char *ctype = "text/html; charset=utf-8";
    stt_buf_t body = STT_BUF_INIT;
    if (resp->type == STT_JSON_STRING) {
        stt_buf_append(&body, resp->u.s, resp->len);
    } else if (resp->type == STT_JSON_OBJECT) {
        const stt_json_t *v;
        int64_t code;
        if ((v = stt_json_get(resp, "code")) && stt_json_int(v, &code) == 0 && code >= 100 && code < 600)
            status = (int)code;
        if ((v = stt_json_get(resp, "json"))) {
            stt_json_write(&body, v);
            ctype = "application/json";
        } else if ((v = stt_json_get(resp, "base64")) && stt_json_is_str(v)) {
            stt_base64_decode(&body, v->u.s, v->len);
            ctype = "application/binary";
        } else if ((v = stt_json_get(resp, "body")) && stt_json_is_str(v)) {
            stt_buf_append(&body, v->u.s, v->len);
        }
        const stt_json_t *hs = stt_json_get(resp, "headers");
        for (uint32_t i = 0; hs && hs->type == STT_JSON_OBJECT && i < hs->len && nh + 6 < 32; i++) {
            const stt_json_member_t *m = &hs->u.members[i];
            if (!stt_json_is_str(&m->val)) continue;
            if (strcasecmp(m->key, "content-type") == 0) {
                ctype = m->val.u.s;
                continue;
            }
            hdr[nh++] = m->key;
            hdr[nh++] = m->val.u.s;
        }
    }
    if (newid) {
        hdr[nh++] = "x-couch-id";
        hdr[nh++] = stt_arena_strndup(&r->arena, newid, newidlen);
        hdr[nh++] = "x-couch-update-newrev";
        hdr[nh++] = newrev;
    }
    if (strncmp(ctype, "application/json", 16) == 0) {
        hdr[nh++] = "cache-control";
        hdr[nh++] = "must-revalidate";
    }
    hdr[nh] = NULL;
    stt_reply_bytes(r, status, ctype, body.base ? body.base : "", body.len, false, hdr);
    stt_buf_free(&body);
}

typedef struct {
    stt_json_t resp;
    stt_doc_write_t *w;
} saved_t;

static void saved(stt_wjob_t *j)
{
    stt_hreq_t *r = j->r;
    saved_t *c = j->ctx;
    stt_doc_result_t *res = &j->job.res[0];
    int rc = j->job.rc ? j->job.rc : res->err;
    if (rc) {
        if (!j->job.rc && res->error)
            stt_reply_error_raw(r, stt_err_info(rc)->status, res->error, res->reason);
        else
            stt_reply_error(r, rc, j->job.rc ? NULL : res->reason);
        return;
    }
    reply_response(r, &c->resp, 201, c->w->id, c->w->idlen, res->rev);
}

/* On the loop: the handler's verdict. */
static void update_done(stt_offload_t *o)
{
    update_t *u = H2O_STRUCT_FROM_MEMBER(update_t, off, o);
    if (!u->link) {
        update_free(u);
        return;
    }
    u->link->u = NULL;
    stt_hreq_t *r = u->r;
    if (u->rc) {
        stt_reply_error_raw(r, u->err.status ? u->err.status : 500, u->err.error, u->err.reason);
        update_free(u);
        return;
    }
    /* what the reply needs moves to the request, which outlives the write */
    saved_t *c = stt_arena_alloc(&r->arena, sizeof(*c));
    stt_buf_t b = STT_BUF_INIT;
    stt_json_write(&b, &u->resp);
    char *text = stt_arena_memdup(&r->arena, b.base, b.len);
    stt_json_parse(&r->arena, text, b.len, &c->resp, NULL, 0);
    stt_buf_reset(&b);
    bool save = u->doc_out.type == STT_JSON_OBJECT;
    stt_json_t doc;
    if (save) {
        stt_json_write(&b, &u->doc_out);
        text = stt_arena_memdup(&r->arena, b.base, b.len);
        stt_json_parse(&r->arena, text, b.len, &doc, NULL, 0);
    }
    stt_buf_free(&b);
    update_free(u);
    if (!save) {
        reply_response(r, &c->resp, 200, NULL, 0, NULL);
        return;
    }
    const stt_json_t *id = stt_json_get(&doc, "_id");
    if (!id) {
        stt_reply_error_raw(r, 400, "illegal_docid", "Document id must not be empty");
        return;
    }
    stt_doc_parse_opts_t po = {.new_edits = true};
    const char *reason = NULL;
    c->w = stt_arena_alloc(&r->arena, sizeof(*c->w));
    int rc = stt_doc_parse(&r->arena, &doc, &po, c->w, &reason);
    if (rc) {
        stt_reply_error(r, rc, reason);
        return;
    }
    stt_writer_submit(stt_writer_job(r, c->w, 1, true, saved, c));
}

static void update_run(stt_offload_t *o)
{
    update_t *u = H2O_STRUCT_FROM_MEMBER(update_t, off, o);
    if (!stt__server->qs) {
        u->rc = STT_QS_E_PROCESS;
        u->err = (stt_qs_err_t){500, "os_process_error", "no query server"};
        return;
    }
    u->rc =
        stt_qs_update(stt__server->qs, &u->ddoc, u->name, u->doc, u->req, &u->arena, &u->doc_out, &u->resp, &u->err);
}

/* ------------------------------------------------------------------ the handler */

/* the stored winner of docid as the handler sees it, or {NULL, 0} */
static stt_qs_text_t stored_doc(stt_hreq_t *r, const char *id, size_t idlen)
{
    stt_qs_text_t t = {NULL, 0};
    stt_reader_t *rd;
    if (stt_reader_open(r->db, &rd) != 0) return t;
    stt_doc_t d;
    if (stt_doc_get(rd, id, idlen, &d) == 0) {
        stt_buf_t b = STT_BUF_INIT;
        stt_render_opts_t o = {0};
        if (!(d.tree.nodes[d.winner].flags & STT_REV_DELETED) && stt_doc_render(rd, &d, d.winner, &o, &b) == 0)
            t = copy_text(&r->arena, b.base, b.len);
        stt_buf_free(&b);
        stt_doc_free(&d);
    }
    stt_reader_close(rd);
    return t;
}

static void update(stt_hreq_t *r)
{
    if (r->method == STT_M_GET || r->method == STT_M_HEAD) {
        stt_reply_error_raw(r, 405, "method_not_allowed", "Update functions do not allow GET");
        return;
    }
    if (r->method != STT_M_POST && r->method != STT_M_PUT) {
        stt_reply_method_not_allowed(r, "PUT,POST");
        return;
    }
    if (r->nseg < 5 || !r->seg[4].len) {
        stt_reply_error(r, STT_E_NOT_FOUND, NULL);
        return;
    }
    stt_ddoc_ref_t ref = {r->seg[2].base, r->seg[2].len, stt_arena_strndup(&r->arena, r->seg[4].base, r->seg[4].len),
                          r->seg[4].len};
    stt_qs_ddoc_t ddoc;
    const char *reason;
    int rc = stt_ddoc_lookup(r->db, &r->arena, &ref, "updates", &ddoc, &reason);
    if (rc) {
        stt_reply_error(r, rc, rc == STT_E_NOT_FOUND ? reason : NULL);
        return;
    }
    /* the doc id: every segment after the name (an id may hold '/') */
    stt_buf_t id = STT_BUF_INIT;
    for (size_t i = 5; i < r->nseg; i++) {
        if (i > 5) stt_buf_appendc(&id, '/');
        stt_buf_append(&id, r->seg[i].base, r->seg[i].len);
    }
    update_t *u = stt_xcalloc(1, sizeof(*u));
    u->r = r;
    u->ddoc.id = copy_str(&u->arena, ddoc.id);
    u->ddoc.rev = copy_str(&u->arena, ddoc.rev);
    u->ddoc.lang = copy_str(&u->arena, ddoc.lang);
    u->ddoc.json = copy_text(&u->arena, ddoc.json.s, ddoc.json.len);
    u->name = copy_str(&u->arena, ref.fn);
    if (id.len) {
        stt_qs_text_t d = stored_doc(r, id.base, id.len);
        u->doc = copy_text(&u->arena, d.s, d.len);
    }
    stt_buf_t req = STT_BUF_INIT;
    stt__design_req(r, id.len ? id.base : NULL, id.len, &req);
    u->req = copy_text(&u->arena, req.base, req.len);
    stt_buf_free(&req);
    stt_buf_free(&id);
    u->link = h2o_mem_alloc_shared(&r->req->pool, sizeof(*u->link), link_dispose);
    u->link->u = u;
    u->off.run = update_run;
    u->off.done = update_done;
    u->off.worker = stt_worker_index(r->w);
    stt_offload_submit(&u->off);
}

void stt_h_design_func(stt_hreq_t *r)
{
    h2o_iovec_t kind = r->seg[3];
    if (kind.len == 7 && memcmp(kind.base, "_update", 7) == 0) {
        update(r);
        return;
    }
    char reason[128];
    snprintf(reason, sizeof(reason), "%.*s functions are deprecated in CouchDB 3 and not supported by settee",
             (int)kind.len, kind.base);
    stt_reply_error_raw(r, 410, "gone", reason);
}
