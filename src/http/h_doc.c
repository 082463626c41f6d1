/* Document endpoints: GET/HEAD/PUT/DELETE/COPY /{db}/{docid}, POST /{db}, and the
 * _local documents. open_revs answers in JSON here; multipart answers live in
 * h_multipart.c. */
#include "src/http/http.h"
#include "access/access.h"
#include "src/http/multipart.h"
#include "src/http/splice.h"
#include "src/http/writer.h"
#include "replication/replication.h"
#include "src/common/codec.h"
#include "src/common/err.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ helpers */

int stt__query_rev(stt_hreq_t *r, stt_rev_t *rev, bool *has)
{
    *has = false;
    const stt_qparam_t *q = stt_q_get(r, "rev");
    const char *s = NULL;
    size_t len = 0;
    if (q) {
        s = q->val;
        len = q->vallen;
    } else {
        const h2o_iovec_t *im = stt_header(r, "if-match");
        if (im) {
            s = im->base;
            len = im->len;
            if (len >= 2 && s[0] == '"' && s[len - 1] == '"') s++, len -= 2;
        }
    }
    if (!s) return 0;
    if (stt_rev_parse(s, len, rev) != 0) {
        stt_reply_error(r, STT_E_BAD_REV, NULL);
        return -1;
    }
    *has = true;
    return 0;
}

static bool rev_eq(const stt_rev_t *a, const stt_rev_t *b)
{
    return a->gen == b->gen && a->idlen == b->idlen && memcmp(a->id, b->id, a->idlen) == 0;
}

int stt_render_opts_from_query(stt_hreq_t *r, stt_render_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->revs = stt_q_flag(r, "revs");
    o->revs_info = stt_q_flag(r, "revs_info");
    o->conflicts = stt_q_flag(r, "conflicts");
    o->deleted_conflicts = stt_q_flag(r, "deleted_conflicts");
    o->local_seq = stt_q_flag(r, "local_seq");
    o->attachments = stt_q_flag(r, "attachments");
    o->att_encoding_info = stt_q_flag(r, "att_encoding_info");
    bool meta = stt_q_flag(r, "meta");
    if (meta) /* CouchDB's meta: revs_info, conflicts, deleted_conflicts (not local_seq) */
        o->revs_info = o->conflicts = o->deleted_conflicts = true;
    const stt_json_t *since;
    if (stt_q_json(r, "atts_since", &since) != 0) return -1;
    if (since && since->type == STT_JSON_ARRAY) {
        stt_rev_t *revs = stt_arena_alloc(&r->arena, (since->len ? since->len : 1) * sizeof(*revs));
        size_t n = 0;
        for (uint32_t i = 0; i < since->len; i++)
            if (since->u.items[i].type == STT_JSON_STRING &&
                stt_rev_parse(since->u.items[i].u.s, since->u.items[i].len, &revs[n]) == 0)
                n++;
        o->atts_since = revs;
        o->natts_since = n;
        /* atts_since asks for the attachments newer than those revs: it implies
         * attachments=true unless the client said false */
        const stt_qparam_t *ap = stt_q_get(r, "attachments");
        if (!ap || strcmp(ap->val, "false") != 0) o->attachments = true;
    }
    stt_db_info_t in;
    stt_db_info(r->db, &in);
    o->revs_limit = in.revs_limit;
    return 0;
}

void stt__reply_written(stt_hreq_t *r, int status, const char *id, size_t idlen, const char *rev, bool location)
{
    stt_buf_t b = STT_BUF_INIT, etag = STT_BUF_INIT, loc = STT_BUF_INIT, path = STT_BUF_INIT;
    stt_buf_appends(&b, "{\"ok\":true,\"id\":");
    stt_json_write_str(&b, id, idlen);
    stt_buf_appends(&b, ",\"rev\":");
    stt_json_write_cstr(&b, rev);
    stt_buf_appendc(&b, '}');
    stt_buf_appendf(&etag, "\"%s\"", rev);
    const char *h[6] = {"etag", etag.base, NULL};
    if (location) {
        stt_buf_appendc(&path, '/');
        stt_url_encode(&path, r->dbname.base, r->dbname.len);
        stt_buf_appendc(&path, '/');
        stt_url_encode(&path, id, idlen);
        if (r->attname.len) {
            stt_buf_appendc(&path, '/');
            stt_url_encode(&path, r->attname.base, r->attname.len);
        }
        stt_reply_location(r, &loc, path.base, path.len);
        h[2] = "location";
        h[3] = loc.base;
        h[4] = NULL;
    }
    stt_reply_json_h(r, status, &b, h);
    stt_buf_free(&etag);
    stt_buf_free(&loc);
    stt_buf_free(&path);
}

typedef struct {
    stt_doc_write_t *w;
    bool new_edits, batch;
} write_one_t;

static void write_one_done(stt_wjob_t *j)
{
    stt_hreq_t *r = j->r;
    write_one_t *c = j->ctx;
    stt_doc_write_t *w = c->w;
    stt_doc_result_t *res = &j->job.res[0];
    int rc = j->job.rc ? j->job.rc : res->err;
    if (rc) {
        if (!j->job.rc && res->error)
            stt_reply_error_raw(r, stt_err_info(rc)->status, res->error, res->reason);
        else
            stt_reply_error(r, rc, j->job.rc ? NULL : res->reason);
        return;
    }
    if (!c->new_edits) {
        stt_buf_t rev = STT_BUF_INIT;
        stt_rev_format(&rev, w->gen, w->path[0].id, w->path[0].idlen);
        snprintf(res->rev, sizeof(res->rev), "%s", rev.base);
        stt_buf_free(&rev);
    }
    if (c->batch) {
        stt_buf_t b = STT_BUF_INIT;
        stt_buf_appends(&b, "{\"ok\":true,\"id\":");
        stt_json_write_str(&b, w->id, w->idlen);
        stt_buf_appendc(&b, '}');
        stt_reply_json(r, 202, &b);
        return;
    }
    stt__reply_written(r, w->deleted ? 200 : 201, w->id, w->idlen, res->rev, true);
}

/* Attachment bytes at least this long, read from an HTTP/1 body, are borrowed
 * from it rather than copied (writer.h: borrows_body). h2o keeps an HTTP/1
 * request's body until the request is disposed; HTTP/2 frees it before. */
#define BORROW_MIN (1u << 20)

static bool in_body(stt_hreq_t *r, const char *p, size_t len)
{
    h2o_iovec_t e = r->req->entity;
    return r->req->version < 0x200 && e.base && p >= e.base && len <= e.len && (size_t)(p - e.base) <= e.len - len;
}

/* Copies what a write points at into the request's arena: the writer thread may
 * still read it after h2o has freed the request's own memory (the body buffer).
 * *borrowed is set when long attachment bytes were left in the body instead. */
static stt_doc_write_t *own_write(stt_hreq_t *r, const stt_doc_write_t *w, bool *borrowed)
{
    stt_doc_write_t *c = stt_arena_memdup(&r->arena, w, sizeof(*w));
    c->id = stt_arena_memdup(&r->arena, w->id, w->idlen);
    c->body = stt_arena_memdup(&r->arena, w->body, w->bodylen);
    if (w->has_prev) c->prev.id = stt_arena_memdup(&r->arena, w->prev.id, w->prev.idlen);
    if (w->npath) {
        stt_rev_t *p = stt_arena_memdup(&r->arena, w->path, w->npath * sizeof(*p));
        for (size_t i = 0; i < w->npath; i++)
            p[i].id = stt_arena_memdup(&r->arena, w->path[i].id, w->path[i].idlen);
        c->path = p;
    }
    if (w->natts) {
        stt_att_in_t *a = stt_arena_memdup(&r->arena, w->atts, w->natts * sizeof(*a));
        for (size_t i = 0; i < w->natts; i++) {
            a[i].meta.name = stt_arena_memdup(&r->arena, a[i].meta.name, a[i].meta.namelen);
            if (a[i].meta.content_type)
                a[i].meta.content_type = stt_arena_memdup(&r->arena, a[i].meta.content_type, a[i].meta.ctlen);
            if (a[i].data && a[i].datalen >= BORROW_MIN && in_body(r, a[i].data, a[i].datalen))
                *borrowed = true;
            else if (a[i].data)
                a[i].data = stt_arena_memdup(&r->arena, a[i].data, a[i].datalen);
        }
        c->atts = a;
    }
    return c;
}

void stt__doc_write_one(stt_hreq_t *r, stt_doc_write_t *w, bool new_edits, bool batch)
{
    write_one_t *c = stt_arena_alloc(&r->arena, sizeof(*c));
    bool borrowed = false;
    c->w = own_write(r, w, &borrowed);
    c->new_edits = new_edits;
    c->batch = batch;
    stt_wjob_t *j = stt_writer_job(r, c->w, 1, new_edits, write_one_done, c);
    j->borrows_body = borrowed;
    stt_writer_submit(j);
}

/* A document body: decoded (gzip), no larger than max_document_size, parsed. -1 after
 * replying. */
static int doc_body(stt_hreq_t *r, stt_json_t *out, const char *not_object_reason)
{
    h2o_iovec_t e;
    if (stt__too_large(r, r->req->entity.len) || stt_body_decoded(r, &e) != 0 || stt__too_large(r, e.len)) return -1;
    return stt_body_json(r, out, not_object_reason);
}

bool stt__too_large(stt_hreq_t *r, size_t len)
{
    if (len <= stt__server->cfg->max_document_size) return false;
    stt_buf_t b = STT_BUF_INIT;
    stt_buf_appends(&b, "{\"error\":\"document_too_large\",\"reason\":");
    stt_json_write_str(&b, r->docid.base ? r->docid.base : "", r->docid.len);
    stt_buf_appendc(&b, '}');
    stt_reply_json(r, 413, &b);
    return true;
}

/* ------------------------------------------------------------------ GET */

/* Ascending (gen, id), as open_revs=all lists leaves; leaf lists are short. */
static void sort_ascending(const stt_doc_t *d, int *nodes, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        int v = nodes[i];
        size_t j = i;
        while (j > 0 && stt_revtree_cmp(&d->tree, nodes[j - 1], v) > 0) {
            nodes[j] = nodes[j - 1];
            j--;
        }
        nodes[j] = v;
    }
}

/* open_revs entries: a node, or -1 with the missing rev's text */
typedef struct {
    int node;
    const stt_json_t *missing;
} ent_t;

static int ent_cmp(const stt_revtree_t *t, const ent_t *a, const ent_t *b)
{
    if ((a->node < 0) != (b->node < 0)) return a->node < 0 ? 1 : -1;
    if (a->node >= 0) return stt_revtree_cmp(t, a->node, b->node);
    stt_rev_t x, y;
    stt_rev_parse(a->missing->u.s, a->missing->len, &x);
    stt_rev_parse(b->missing->u.s, b->missing->len, &y);
    if (x.gen != y.gen) return x.gen < y.gen ? -1 : 1;
    size_t m = x.idlen < y.idlen ? x.idlen : y.idlen;
    int c = memcmp(x.id, y.id, m);
    return c ? c : (x.idlen > y.idlen) - (x.idlen < y.idlen);
}

int stt__doc_select(stt_hreq_t *r, const stt_doc_t *d, const stt_rev_t *rev, int *node)
{
    stt_access_t *acc = stt__access(r);
    return acc ? stt_access_select(acc, d, rev, node) : stt_doc_select(d, rev, node);
}

/* open_revs in an access database: the user's revisions stay, the others of a
 * doc shared with them become stubs, the rest are missing (when asked for by
 * rev, as list says; dropped from "all"). Returns the new count. */
static size_t access_ents(stt_hreq_t *r, const stt_doc_t *d, ent_t *ents, bool *stub, size_t n, bool list)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int node = ents[i].node;
        if (node >= 0 && stt_access_filter_nodes(stt__access(r), d, &node, &stub[k], 1) == 0) {
            if (!list) continue;
            stt_json_t *m = stt_arena_alloc(&r->arena, sizeof(*m));
            stt_buf_t rv = STT_BUF_INIT;
            stt_revtree_format(&d->tree, ents[i].node, &rv);
            *m = stt_json_str(&r->arena, rv.base, rv.len);
            stt_buf_free(&rv);
            ents[k++] = (ent_t){-1, m};
            continue;
        }
        ents[k++] = ents[i];
    }
    return k;
}

static void get_open_revs(stt_hreq_t *r, stt_reader_t *rd, stt_doc_t *d, bool found, const stt_render_opts_t *o)
{
    const stt_qparam_t *q = stt_q_get(r, "open_revs");
    bool latest = stt_q_flag(r, "latest");
    /* nodes to return: leaves for "all", else per requested rev */
    size_t cap = found ? d->tree.n : 0;
    int *nodes = NULL;
    size_t nnodes = 0;
    const stt_json_t *list = NULL;
    if (strcmp(q->val, "all") == 0 && !found) {
        stt_reply_error(r, STT_E_NOT_FOUND, NULL);
        return;
    }
    if (strcmp(q->val, "all") != 0) {
        if (stt_q_json(r, "open_revs", &list) != 0) return;
        if (list->type != STT_JSON_ARRAY) {
            stt_reply_error_raw(r, 400, "bad_request", "open_revs must be an array or \"all\"");
            return;
        }
        for (uint32_t i = 0; i < list->len; i++) {
            stt_rev_t rv;
            if (list->u.items[i].type != STT_JSON_STRING ||
                stt_rev_parse(list->u.items[i].u.s, list->u.items[i].len, &rv) != 0) {
                stt_reply_error(r, STT_E_BAD_REV, NULL);
                return;
            }
        }
    }
    ent_t *ents = stt_arena_alloc(&r->arena, (cap + (list ? list->len : 0) + 1) * sizeof(ent_t));
    size_t nents = 0;
    if (!list) {
        nodes = stt_xmalloc((cap ? cap : 1) * sizeof(int));
        nnodes = found ? stt_revtree_leaves(&d->tree, nodes) : 0;
        sort_ascending(d, nodes, nnodes);
        for (size_t i = 0; i < nnodes; i++)
            ents[nents++] = (ent_t){nodes[i], NULL};
    } else {
        nodes = stt_xmalloc((cap ? cap : 1) * sizeof(int));
        for (uint32_t i = 0; i < list->len; i++) {
            stt_rev_t rv;
            stt_rev_parse(list->u.items[i].u.s, list->u.items[i].len, &rv);
            int node = found ? stt_revtree_find(&d->tree, rv.gen, rv.id, rv.idlen) : -1;
            if (node >= 0 && latest && !stt_revtree_is_leaf(&d->tree, node)) {
                size_t n = stt_revtree_leaves_under(&d->tree, node, nodes);
                for (size_t k = 0; k < n; k++) {
                    bool dup = false;
                    for (size_t e = 0; e < nents; e++)
                        dup |= ents[e].node == nodes[k];
                    if (!dup) ents[nents++] = (ent_t){nodes[k], NULL};
                }
                continue;
            }
            if (node >= 0 && !(d->tree.nodes[node].flags & STT_REV_HAS_BODY)) node = -1;
            bool dup = false;
            for (size_t e = 0; node >= 0 && e < nents; e++)
                dup |= ents[e].node == node;
            if (!dup) ents[nents++] = (ent_t){node, node < 0 ? &list->u.items[i] : NULL};
        }
    }
    free(nodes);
    if (list) {
        /* CouchDB answers found revs first, ascending (gen, id), then the missing
         * ones, ascending too, each once */
        for (size_t i = 1; i < nents; i++) {
            ent_t v = ents[i];
            size_t j = i;
            while (j > 0 && ent_cmp(found ? &d->tree : NULL, &ents[j - 1], &v) > 0) {
                ents[j] = ents[j - 1];
                j--;
            }
            ents[j] = v;
        }
        size_t k = 0;
        for (size_t i = 0; i < nents; i++) /* drop repeated missing revs */
            if (i == 0 || ents[i].node >= 0 || ents[k - 1].node >= 0 || ent_cmp(NULL, &ents[k - 1], &ents[i]) != 0)
                ents[k++] = ents[i];
        nents = k;
    }
    /* access databases: what the user may not read goes, or becomes a stub */
    bool *stub = stt_arena_alloc(&r->arena, (nents ? nents : 1) * sizeof(bool));
    memset(stub, 0, (nents ? nents : 1) * sizeof(bool));
    if (stt__access(r) && found) nents = access_ents(r, d, ents, stub, nents, list != NULL);
    if (stt_accepts(r, "multipart/mixed")) {
        for (size_t i = 0; i < nents; i++) /* a multipart part has a body: a stub goes as missing */
            if (stub[i]) ents[i] = (ent_t){-1, ents[i].missing};
        stt_mp_part_t *parts = stt_arena_alloc(&r->arena, (nents ? nents : 1) * sizeof(*parts));
        for (size_t i = 0; i < nents; i++) {
            parts[i].node = ents[i].node;
            parts[i].missing = ents[i].missing ? ents[i].missing->u.s : NULL;
            parts[i].missinglen = ents[i].missing ? ents[i].missing->len : 0;
        }
        stt_mp_reply_open_revs(r, rd, found ? d : NULL, parts, nents, o);
        return;
    }
    stt_buf_t b = STT_BUF_INIT;
    stt_splice_t plan = {0};
    stt_render_opts_t so = *o;
    if (so.attachments) {
        so.inline_att = stt_splice_mark;
        so.inline_ctx = &plan;
    }
    stt_buf_appendc(&b, '[');
    for (size_t i = 0; i < nents; i++) {
        if (i) stt_buf_appendc(&b, ',');
        if (ents[i].node < 0) {
            stt_buf_appends(&b, "{\"missing\":");
            stt_json_write(&b, ents[i].missing);
            stt_buf_appendc(&b, '}');
            continue;
        }
        stt_buf_appends(&b, "{\"ok\":");
        if (stub[i]) {
            stt_access_render_stub(d, ents[i].node, &b);
        } else if (stt_doc_render(rd, d, ents[i].node, &so, &b) != 0) {
            stt_buf_free(&b);
            stt_splice_free(&plan);
            stt_reply_error(r, STT_E_IO, NULL);
            return;
        }
        stt_buf_appendc(&b, '}');
    }
    stt_buf_appendc(&b, ']');
    stt_splice_send_json(r, rd, &b, &plan, NULL);
}

/* couch_users_db's after_doc_read: 0 read on, 1 show public fields only, -1 replied */
static int users_read_check(stt_hreq_t *r, stt_auth_settings_t *st)
{
    size_t len;
    const char *name = stt_db_name(r->db, &len);
    if (len != sizeof(STT_USERS_DB) - 1 || memcmp(name, STT_USERS_DB, len) != 0) return 0;
    stt_auth_settings(stt__server->auth, st);
    int v = stt_users_after_read(&r->user, stt__db_security(r), r->docid.base, r->docid.len, st->public_fields);
    if (v == 403) {
        stt_reply_error_raw(r, 403, "forbidden", "Only administrators can view design docs in the users database.");
        return -1;
    }
    if (v == 404) {
        stt_reply_error(r, STT_E_NOT_FOUND, NULL);
        return -1;
    }
    return v;
}

/* the rendered doc cut to _id, _rev and the public fields; false when none */
static bool public_only(stt_hreq_t *r, stt_buf_t *b, const char *fields)
{
    stt_json_t doc;
    char *text = stt_arena_memdup(&r->arena, b->base, b->len + 1);
    if (stt_json_parse(&r->arena, text, b->len, &doc, NULL, 0) != 0) return false;
    stt_buf_t pub = STT_BUF_INIT;
    int n = stt_users_public_body(&doc, fields, &pub);
    stt_buf_reset(b);
    if (n > 0) {
        stt_buf_appends(b, "{\"_id\":");
        stt_json_write(b, stt_json_get(&doc, "_id"));
        stt_buf_appends(b, ",\"_rev\":");
        stt_json_write(b, stt_json_get(&doc, "_rev"));
        stt_buf_appendc(b, ',');
        stt_buf_append(b, pub.base + 1, pub.len - 1);
    }
    stt_buf_free(&pub);
    return n > 0;
}

static void get_doc(stt_hreq_t *r)
{
    stt_render_opts_t o;
    if (stt_render_opts_from_query(r, &o) != 0) return;
    stt_auth_settings_t st;
    int users = users_read_check(r, &st);
    if (users < 0) return;
    if (users && (stt_q_get(r, "open_revs") || o.attachments)) {
        stt_reply_error(r, STT_E_NOT_FOUND, NULL);
        return;
    }
    stt_rev_t rev;
    bool has_rev;
    const stt_qparam_t *rq = stt_q_get(r, "rev");
    if (rq) {
        if (stt_rev_parse(rq->val, rq->vallen, &rev) != 0) {
            stt_reply_error(r, STT_E_BAD_REV, NULL);
            return;
        }
        /* latest=true opens the winner whatever rev was named (chttpd_db passes
         * nil to couch_doc_open); the rev must still parse */
        has_rev = !stt_q_flag(r, "latest");
    } else {
        has_rev = false;
    }
    stt_reader_t *rd;
    stt_reader_open(r->db, &rd);
    stt_doc_t d;
    int rc = stt_doc_get(rd, r->docid.base, r->docid.len, &d);
    if (rc && rc != STT_E_NOT_FOUND) {
        stt_reply_error(r, rc, NULL);
        goto exit_reader;
    }
    if (stt_q_get(r, "open_revs")) {
        get_open_revs(r, rd, &d, rc == 0, &o);
        if (rc == 0) stt_doc_free(&d);
        goto exit_reader;
    }
    if (rc) {
        stt_reply_error(r, STT_E_NOT_FOUND, NULL);
        goto exit_reader;
    }
    int node;
    if ((rc = stt__doc_select(r, &d, has_rev ? &rev : NULL, &node)) != 0) {
        stt_reply_error(r, rc, NULL);
        goto exit_doc;
    }
    stt_buf_t etag = STT_BUF_INIT;
    stt_buf_appendc(&etag, '"');
    stt_revtree_format(&d.tree, node, &etag);
    stt_buf_appendc(&etag, '"');
    const h2o_iovec_t *inm = stt_header(r, "if-none-match");
    if (inm && inm->len == etag.len && memcmp(inm->base, etag.base, etag.len) == 0) {
        const char *h[] = {"etag", etag.base, NULL};
        stt_reply_bytes(r, 304, NULL, NULL, 0, false, h);
        stt_buf_free(&etag);
        goto exit_doc;
    }
    if (o.attachments && stt_accepts(r, "multipart/related")) {
        stt_mp_reply_doc_related(r, rd, &d, node, &o, etag.base);
        stt_buf_free(&etag);
        goto exit_doc;
    }
    stt_buf_t b = STT_BUF_INIT;
    stt_splice_t plan = {0};
    if (o.attachments && !users) { /* public_only rewrites the text: no marks in it */
        o.inline_att = stt_splice_mark;
        o.inline_ctx = &plan;
    }
    if ((rc = stt_doc_render(rd, &d, node, &o, &b)) != 0 || (users && !public_only(r, &b, st.public_fields))) {
        stt_buf_free(&b);
        stt_splice_free(&plan);
        stt_reply_error(r, rc ? rc : STT_E_NOT_FOUND, NULL);
    } else {
        const char *h[] = {"etag", etag.base, NULL};
        stt_splice_send_json(r, rd, &b, &plan, h);
    }
    stt_buf_free(&etag);
exit_doc:
    stt_doc_free(&d);
exit_reader:
    stt_reader_close(rd);
}

/* ------------------------------------------------------------------ PUT / DELETE / POST */

void stt__doc_put(stt_hreq_t *r, const stt_json_t *body, const stt_follows_t *follows, size_t nfollows, bool new_edits)
{
    const stt_qparam_t *bq = stt_q_get(r, "batch");
    bool batch = bq && strcmp(bq->val, "ok") == 0;
    stt_doc_parse_opts_t po = {.new_edits = new_edits,
                               .url_id = r->docid.base,
                               .url_idlen = r->docid.len,
                               .follows = follows,
                               .nfollows = nfollows};
    stt_doc_write_t w;
    const char *reason = NULL;
    int rc = stt_doc_parse(&r->arena, body, &po, &w, &reason);
    if (rc) {
        stt_reply_error(r, rc, reason);
        return;
    }
    w.id = r->docid.base; /* the URL names the doc */
    w.idlen = r->docid.len;
    if ((rc = stt_docid_check(w.id, w.idlen, &reason)) != 0) {
        stt_reply_error(r, rc, reason);
        return;
    }
    stt_rev_t qrev;
    bool has_qrev;
    if (stt__query_rev(r, &qrev, &has_qrev) != 0) return;
    if (has_qrev) {
        if (w.has_prev && !rev_eq(&w.prev, &qrev)) {
            stt_reply_error_raw(r, 400, "bad_request",
                                stt_q_get(r, "rev")
                                    ? "Document rev from request body and query string have different values"
                                    : "Document rev and etag have different values");
            return;
        }
        w.prev = qrev;
        w.has_prev = true;
        if (!new_edits && !w.npath) {
            stt_rev_t *p = stt_arena_alloc(&r->arena, sizeof(*p));
            *p = qrev;
            w.gen = qrev.gen;
            w.path = p;
            w.npath = 1;
        }
    }
    if (!new_edits && !w.npath) {
        stt_reply_error_raw(r, 400, "bad_request",
                            "When `new_edits: false`, the document needs `_rev` or `_revisions` specified");
        return;
    }
    stt__doc_write_one(r, &w, new_edits, batch);
}

static void put_doc(stt_hreq_t *r)
{
    /* chttpd_db: only the exact value "false" makes a replicated write, anything
     * else ("no", "0") is an interactive one */
    const stt_qparam_t *ne = stt_q_get(r, "new_edits");
    bool new_edits = !(ne && strcmp(ne->val, "false") == 0);
    const h2o_iovec_t *ct = stt_header(r, "content-type");
    if (ct && ct->len >= 17 && strncasecmp(ct->base, "multipart/related", 17) == 0) {
        stt_mp_put_doc(r, new_edits);
        return;
    }
    stt_json_t body;
    if (doc_body(r, &body, NULL) != 0) return;
    stt__doc_put(r, &body, NULL, 0, new_edits);
}

static void delete_doc(stt_hreq_t *r)
{
    stt_doc_write_t w = {.id = r->docid.base, .idlen = r->docid.len, .body = "{}", .bodylen = 2, .deleted = true};
    const char *reason;
    int rc = stt_docid_check(w.id, w.idlen, &reason);
    if (rc) {
        stt_reply_error(r, rc, reason);
        return;
    }
    if (stt__query_rev(r, &w.prev, &w.has_prev) != 0) return;
    /* CouchDB opens the doc first: a missing or deleted doc is a 404, not a 409 */
    stt_reader_t *rd;
    stt_reader_open(r->db, &rd);
    stt_doc_t d;
    rc = stt_doc_get(rd, w.id, w.idlen, &d);
    if (rc == 0) {
        if (d.tree.nodes[d.winner].flags & STT_REV_DELETED) rc = STT_E_DELETED;
        stt_doc_free(&d);
    }
    stt_reader_close(rd);
    if (rc) {
        stt_reply_error(r, rc, NULL);
        return;
    }
    if (!w.has_prev) {
        stt_reply_error(r, STT_E_CONFLICT, NULL);
        return;
    }
    stt__doc_write_one(r, &w, true, false);
}

void stt_h_doc_post(stt_hreq_t *r)
{
    if (!stt_require_json(r)) return;
    stt_json_t body;
    if (doc_body(r, &body, "Document must be a JSON object") != 0) return;
    stt_doc_parse_opts_t po = {.new_edits = true};
    stt_doc_write_t w;
    const char *reason = NULL;
    int rc = stt_doc_parse(&r->arena, &body, &po, &w, &reason);
    if (rc) {
        stt_reply_error(r, rc, reason);
        return;
    }
    if (!w.id) {
        char *u = stt_arena_alloc(&r->arena, 33);
        stt_uuid_random(u);
        w.id = u;
        w.idlen = 32;
    }
    const stt_qparam_t *bq = stt_q_get(r, "batch");
    r->docid = h2o_iovec_init(w.id, w.idlen);
    stt__doc_write_one(r, &w, true, bq && strcmp(bq->val, "ok") == 0);
}

/* COPY /db/src with Destination: dst[?rev=R] */
static void copy_doc(stt_hreq_t *r)
{
    const h2o_iovec_t *dest = stt_header(r, "destination");
    if (!dest || dest->len == 0) {
        stt_reply_error_raw(r, 400, "bad_request", "Destination header is mandatory for COPY.");
        return;
    }
    const char *q = memchr(dest->base, '?', dest->len);
    size_t idlen = q ? (size_t)(q - dest->base) : dest->len;
    stt_doc_write_t w = {0};
    w.id = stt_arena_strndup(&r->arena, dest->base, idlen);
    w.idlen = idlen;
    if (q && dest->len - idlen > 5 && memcmp(q, "?rev=", 5) == 0) {
        const char *rv = q + 5;
        if (stt_rev_parse(rv, dest->len - idlen - 5, &w.prev) != 0) {
            stt_reply_error(r, STT_E_BAD_REV, NULL);
            return;
        }
        w.prev.id = stt_arena_strndup(&r->arena, w.prev.id, w.prev.idlen);
        w.has_prev = true;
    }
    stt_rev_t srcrev;
    bool has_src;
    if (stt__query_rev(r, &srcrev, &has_src) != 0) return;
    stt_reader_t *rd;
    stt_reader_open(r->db, &rd);
    stt_doc_t d;
    int rc = stt_doc_get(rd, r->docid.base, r->docid.len, &d);
    if (rc) {
        stt_reader_close(rd);
        stt_reply_error(r, rc, NULL);
        return;
    }
    int node;
    stt_rev_body_t b = {0};
    if ((rc = stt__doc_select(r, &d, has_src ? &srcrev : NULL, &node)) != 0 || (rc = stt_doc_body(&d, node, &b)) != 0) {
        stt_doc_free(&d);
        stt_reader_close(rd);
        stt_reply_error(r, rc, NULL);
        return;
    }
    w.body = stt_arena_memdup(&r->arena, b.json, b.jsonlen);
    w.bodylen = b.jsonlen;
    stt_att_in_t *atts = stt_arena_alloc(&r->arena, (b.natts ? b.natts : 1) * sizeof(*atts));
    for (size_t i = 0; i < b.natts; i++) {
        stt_buf_t data = STT_BUF_INIT;
        stt_att_read_decoded(rd, &b.atts[i], &data);
        memset(&atts[i], 0, sizeof(atts[i]));
        atts[i].meta = b.atts[i];
        atts[i].meta.name = stt_arena_memdup(&r->arena, b.atts[i].name, b.atts[i].namelen);
        atts[i].meta.content_type = stt_arena_memdup(&r->arena, b.atts[i].content_type, b.atts[i].ctlen);
        atts[i].meta.revpos = 0;
        atts[i].data = stt_arena_memdup(&r->arena, data.base ? data.base : "", data.len);
        atts[i].datalen = data.len;
        stt_buf_free(&data);
    }
    w.atts = atts;
    w.natts = b.natts;
    stt_rev_body_free(&b);
    stt_doc_free(&d);
    stt_reader_close(rd);
    r->docid = h2o_iovec_init(w.id, w.idlen);
    stt__doc_write_one(r, &w, true, false);
}

void stt_h_doc(stt_hreq_t *r)
{
    switch (r->method) {
    case STT_M_GET:
    case STT_M_HEAD:
        get_doc(r);
        break;
    case STT_M_PUT:
        put_doc(r);
        break;
    case STT_M_DELETE:
        delete_doc(r);
        break;
    case STT_M_COPY:
        copy_doc(r);
        break;
    case STT_M_POST:
        stt_reply_error_raw(r, 400, "bad_request", "POST to a document requires multipart/form-data");
        break;
    }
}

/* ------------------------------------------------------------------ _local */

static void local_etag(char *out, size_t len, uint64_t rev)
{
    snprintf(out, len, "\"0-%llu\"", (unsigned long long)rev);
}

void stt_h_local(stt_hreq_t *r)
{
    const char *name = r->docid.base + 7; /* after "_local/" */
    size_t namelen = r->docid.len - 7;
    char etag[32], revs[32];
    if (r->method == STT_M_GET || r->method == STT_M_HEAD) {
        uint64_t rev;
        stt_buf_t body = STT_BUF_INIT;
        int rc = stt_local_get(r->db, name, namelen, &rev, &body);
        if (!rc && stt__access(r) && !stt_access_body_ok(stt__access(r), body.base, body.len))
            rc = STT_E_NOT_FOUND; /* another user's */
        if (rc) {
            stt_buf_free(&body);
            stt_reply_error(r, rc, NULL);
            return;
        }
        bool want_revs = stt_q_flag(r, "revs");
        stt_buf_t b = STT_BUF_INIT;
        stt_buf_appends(&b, "{\"_id\":");
        stt_json_write_str(&b, r->docid.base, r->docid.len);
        stt_buf_appendf(&b, ",\"_rev\":\"0-%llu\"", (unsigned long long)rev);
        if (body.len > 2) {
            stt_buf_appendc(&b, ',');
            stt_buf_append(&b, body.base + 1, body.len - 2);
        }
        if (want_revs) {
            snprintf(revs, sizeof(revs), "%llu", (unsigned long long)rev);
            stt_buf_appendf(&b, ",\"_revisions\":{\"start\":0,\"ids\":[\"%s\"]}", revs);
        }
        stt_buf_appendc(&b, '}');
        stt_buf_free(&body);
        local_etag(etag, sizeof(etag), rev);
        const char *h[] = {"etag", etag, NULL};
        stt_reply_json_h(r, 200, &b, h);
        return;
    }
    if (r->method == STT_M_COPY) {
        stt_reply_error_raw(r, 400, "bad_request", "COPY of _local documents is not supported");
        return;
    }
    uint64_t prev = 0, rev = 0;
    const char *body = "{}";
    size_t bodylen = 2;
    bool deleted = r->method == STT_M_DELETE;
    if (!deleted) {
        stt_json_t v;
        if (doc_body(r, &v, "Document must be a JSON object") != 0) return;
        stt_doc_parse_opts_t po = {.is_local = true, .url_id = r->docid.base, .url_idlen = r->docid.len};
        stt_doc_write_t w;
        const char *reason;
        int rc = stt_doc_parse(&r->arena, &v, &po, &w, &reason);
        if (rc) {
            stt_reply_error(r, rc, reason);
            return;
        }
        deleted = w.deleted;
        body = w.body;
        bodylen = w.bodylen;
        const stt_json_t *jr = stt_json_get(&v, "_rev");
        if (stt_json_is_str(jr) && jr->len > 2 && jr->u.s[0] == '0' && jr->u.s[1] == '-')
            prev = strtoull(jr->u.s + 2, NULL, 10);
    }
    const stt_qparam_t *qr = stt_q_get(r, "rev");
    if (qr && qr->vallen > 2 && qr->val[0] == '0' && qr->val[1] == '-') prev = strtoull(qr->val + 2, NULL, 10);
    const char *reason = NULL;
    int rc = stt__access(r)
                 ? stt_access_local_write(&r->arena, stt__access(r), name, namelen, deleted, &body, &bodylen, &reason)
                 : 0;
    if (rc) {
        stt_reply_error(r, rc, reason);
        return;
    }
    rc = stt_local_put(r->db, name, namelen, prev, body, bodylen, deleted, &rev);
    if (rc) {
        stt_reply_error(r, rc, NULL);
        return;
    }
    char revstr[32];
    snprintf(revstr, sizeof(revstr), "0-%llu", (unsigned long long)rev);
    stt__reply_written(r, deleted ? 200 : 201, r->docid.base, r->docid.len, revstr, !deleted);
}
