/* Standalone attachments: GET/HEAD/PUT/DELETE /{db}/{docid}/{attname}, as
 * CouchDB's chttpd_db:db_attachment_req.
 *
 * A PUT or DELETE is an edit of the doc: the new revision keeps the parent's body
 * and its other attachments, sent to the store as stubs that it resolves against
 * the parent, with the new attachment first (CouchDB's order). Without a rev, a
 * PUT writes a doc holding only the attachment; the store then creates it, or
 * answers 409 when a live doc is there.
 *
 * GET serves identity-stored bytes with byte ranges, gzip-stored ones (compressible
 * types, as CouchDB stores them) decoded or as stored to clients that take gzip; the
 * ETag is the quoted base64 of the md5. Bytes past one stored piece are sent as the
 * client reads them (stream_att), so a download holds a piece, not the attachment. */
#include "src/http/http.h"
#include "src/http/multipart.h"
#include "src/http/writer.h"
#include "replication/replication.h"
#include "src/common/codec.h"
#include "src/common/err.h"
#include "src/common/log.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------------ helpers */

static const stt_att_t *find_att(const stt_rev_body_t *b, h2o_iovec_t name)
{
    for (size_t i = 0; i < b->natts; i++)
        if (b->atts[i].namelen == name.len && memcmp(b->atts[i].name, name.base, name.len) == 0) return &b->atts[i];
    return NULL;
}

static void reply_missing_att(stt_hreq_t *r)
{
    stt_reply_error_raw(r, 404, "not_found", "Document is missing attachment");
}

/* CouchDB's validate_attachment_name: 0, or replies 400 and returns -1. */
static int check_name(stt_hreq_t *r)
{
    const char *why = NULL;
    stt_buf_t reason = STT_BUF_INIT;
    if (r->attname.len == 0) {
        why = "Attachment name must not be empty";
    } else if (r->attname.base[0] == '_') {
        stt_buf_appends(&reason, "Attachment name '");
        stt_buf_append(&reason, r->attname.base, strnlen(r->attname.base, r->attname.len));
        stt_buf_appends(&reason, "' starts with prohibited character '_'");
        why = reason.base;
    } else if (stt_utf8_validate(r->attname.base, r->attname.len) != 0) {
        why = "Attachment name is not UTF-8 encoded";
    }
    if (why) stt_reply_error_raw(r, 400, "bad_request", why);
    stt_buf_free(&reason);
    return why ? -1 : 0;
}

/* ------------------------------------------------------------------ GET / HEAD */

/* The one range of a Range header, as CouchDB's parse_ranges reads it: 0 when
 * there is none to honour (absent, malformed, several ranges, or "bytes=0-"),
 * 1 with [*from, *to] clamped to the attachment, -1 when unsatisfiable. */
static int parse_range(const h2o_iovec_t *h, uint64_t total, uint64_t *from, uint64_t *to)
{
    const char *s = h->base, *e = h->base + h->len;
    while (s < e && (*s == ' ' || *s == '\t'))
        s++;
    if (e - s < 6 || strncasecmp(s, "bytes=", 6) != 0) return 0;
    s += 6;
    /* several ranges: the whole attachment, which RFC 7233 allows */
    if (memchr(s, ',', (size_t)(e - s))) return 0;
    int64_t v[2] = {-1, -1};
    for (int k = 0; k < 2; k++) {
        while (s < e && *s == ' ')
            s++;
        int digits = 0;
        int64_t n = 0;
        while (s < e && *s >= '0' && *s <= '9' && digits < 18) {
            n = n * 10 + (*s++ - '0');
            digits++;
        }
        if (s < e && *s >= '0' && *s <= '9') return 0; /* beyond any attachment size: ignore */
        if (digits) v[k] = n;
        while (s < e && *s == ' ')
            s++;
        if (k == 0 && (s == e || *s++ != '-')) return 0;
    }
    if (s != e || (v[0] < 0 && v[1] < 0)) return 0;
    int64_t len = (int64_t)total, f, t;
    if (v[0] < 0) { /* "-n": the last n bytes */
        f = len - v[1] < 0 ? 0 : len - v[1];
        t = len - 1;
    } else if (v[1] < 0) { /* "a-" */
        if (v[0] == 0) return 0;
        f = v[0];
        t = len - 1;
    } else {
        if (v[1] < v[0]) return -1;
        f = v[0];
        t = v[1] >= len ? len - 1 : v[1];
    }
    if (t < f) return -1;
    *from = (uint64_t)f;
    *to = (uint64_t)t;
    return 1;
}

/* Longer bytes are sent as the client takes them, a piece at a time, so that a
 * download holds a few pieces and not the attachment (issue 10's bounded memory). */
#define STREAM_MIN (64 * 1024)

typedef struct {
    stt_reader_t *rd; /* the snapshot the bytes are read from, held to the end */
    stt_att_stream_t *as;
    uint64_t left; /* bytes still to send */
} att_send_t;

static int att_produce(stt_stream_t *s, stt_buf_t *out)
{
    att_send_t *x = s->ctx;
    size_t room = 64 * 1024;
    if (room > x->left) room = (size_t)x->left;
    size_t before = out->len;
    int rc = room ? stt_att_stream_next(x->as, room, out) : 1;
    if (rc < 0) {
        /* the head is out: all that is left is to cut the reply short */
        stt_log(STT_LOG_ERROR, "attachment bytes unreadable while sending (%s)", stt_err_info(rc)->reason);
        return -1;
    }
    x->left -= out->len - before;
    return x->left == 0 ? 0 : rc == 1 ? -1 : 1;
}

static void att_stop(stt_stream_t *s)
{
    att_send_t *x = s->ctx;
    stt_att_stream_close(x->as);
    stt_reader_close(x->rd);
    free(x);
}

static const stt_stream_ops_t att_stream_ops = {att_produce, att_stop};

/* Starts the reply of len bytes from byte from of the attachment (or the error). */
static void stream_att(stt_hreq_t *r, stt_reader_t *rd, const stt_att_t *a, bool decoded, uint64_t from, uint64_t len,
                       int status, const char *ct, const char *const *headers)
{
    att_send_t *x = stt_xcalloc(1, sizeof(*x));
    int rc = stt_att_stream_open(rd, a, decoded, from, &x->as);
    if (rc) {
        free(x);
        stt_reply_error(r, rc, NULL);
        return;
    }
    x->rd = stt_reader_retain(rd);
    x->left = len;
    r->req->res.content_length = len;
    stt_stream_start(r, status, ct, &att_stream_ops, x, headers);
}

static void get_att(stt_hreq_t *r)
{
    stt_rev_t rev;
    const stt_qparam_t *rq = stt_q_get(r, "rev");
    if (rq && stt_rev_parse(rq->val, rq->vallen, &rev) != 0) {
        stt_reply_error(r, STT_E_BAD_REV, NULL);
        return;
    }
    stt_reader_t *rd;
    stt_reader_open(r->db, &rd);
    stt_doc_t d;
    int rc = stt_doc_get(rd, r->docid.base, r->docid.len, &d);
    if (rc) {
        stt_reply_error(r, rc, NULL);
        goto exit_reader;
    }
    int node;
    if ((rc = stt__doc_select(r, &d, rq ? &rev : NULL, &node)) != 0) {
        stt_reply_error(r, rc, NULL);
        goto exit_doc;
    }
    stt_rev_body_t b;
    if ((rc = stt_doc_body(&d, node, &b)) != 0) {
        stt_reply_error(r, rc, NULL);
        goto exit_doc;
    }
    const stt_att_t *a = find_att(&b, r->attname);
    if (!a) {
        reply_missing_att(r);
        goto exit_body;
    }
    stt_buf_t etag = STT_BUF_INIT, ctype = STT_BUF_INIT;
    stt_buf_appendc(&etag, '"');
    stt_base64_encode(&etag, a->digest, STT_DIGEST_LEN);
    stt_buf_appendc(&etag, '"');
    const h2o_iovec_t *inm = stt_header(r, "if-none-match");
    if (inm && inm->len == etag.len && memcmp(inm->base, etag.base, etag.len) == 0) {
        const char *h[] = {"etag", etag.base, "cache-control", "must-revalidate", NULL};
        stt_reply_bytes(r, 304, NULL, NULL, 0, false, h);
        goto exit_etag;
    }
    /* a gzip-stored attachment goes out as stored to clients that take gzip
     * (CouchDB does the same) and has no byte ranges (accept-ranges: none) */
    bool gz = a->encoding == STT_ATT_GZIP;
    const h2o_iovec_t *ae = stt_header(r, "accept-encoding");
    bool send_gz = gz && ae && memmem(ae->base, ae->len, "gzip", 4) != NULL;
    uint64_t from = 0, to = 0;
    const h2o_iovec_t *range = gz ? NULL : stt_header(r, "range");
    int partial = range ? parse_range(range, a->length, &from, &to) : 0;
    char crange[80];
    if (partial < 0) {
        snprintf(crange, sizeof(crange), "bytes */%llu", (unsigned long long)a->length);
        const char *h[] = {"content-range", crange, NULL};
        stt_buf_t e = STT_BUF_INIT;
        stt_buf_appends(&e, "{\"error\":\"requested_range_not_satisfiable\",\"reason\":\"Requested range not "
                            "satisfiable\"}");
        stt_reply_json_h(r, 416, &e, h);
        goto exit_etag;
    }
    /* h2o keeps the content-type pointer until the reply is out: request memory */
    stt_mime_put_value(&ctype, a->content_type, a->ctlen, false);
    const char *ct = stt_arena_strndup(&r->arena, ctype.base ? ctype.base : "", ctype.len);
    const char *h[] = {
        "etag", etag.base, "cache-control", "must-revalidate", "accept-ranges", gz ? "none" : "bytes", NULL,
        NULL,   NULL};
    if (send_gz) {
        h[6] = "content-encoding";
        h[7] = "gzip";
    }
    if (partial) {
        snprintf(crange, sizeof(crange), "bytes %llu-%llu/%llu", (unsigned long long)from, (unsigned long long)to,
                 (unsigned long long)a->length);
        h[6] = "content-range";
        h[7] = crange;
    }
    if (r->method == STT_M_HEAD) {
        /* only the length goes out: no need to read the bytes (a NULL base is
         * "taken" and freed as such) */
        stt_reply_bytes(r, partial ? 206 : 200, ct, NULL,
                        partial   ? to - from + 1
                        : send_gz ? a->encoded_length
                                  : a->length,
                        true, h);
        goto exit_etag;
    }
    uint64_t total = send_gz ? a->encoded_length : a->length;
    if ((partial ? to - from + 1 : total) > STREAM_MIN) {
        stream_att(r, rd, a, !send_gz, partial ? from : 0, partial ? to - from + 1 : total, partial ? 206 : 200, ct, h);
        goto exit_etag;
    }
    stt_buf_t data = STT_BUF_INIT;
    rc = send_gz ? stt_att_read(rd, a->digest, &data) : stt_att_read_decoded(rd, a, &data);
    if (rc != 0 || data.len != (send_gz ? a->encoded_length : a->length)) {
        stt_buf_free(&data);
        stt_reply_error(r, rc && rc != STT_E_NOT_FOUND ? rc : STT_E_IO, NULL);
        goto exit_etag;
    }
    size_t len;
    char *bytes = stt_buf_release(&data, &len);
    if (partial) {
        len = to - from + 1;
        memmove(bytes, bytes + from, len);
    }
    stt_reply_bytes(r, partial ? 206 : 200, ct, bytes, len, true, h);
exit_etag:
    stt_buf_free(&etag);
    stt_buf_free(&ctype);
exit_body:
    stt_rev_body_free(&b);
exit_doc:
    stt_doc_free(&d);
exit_reader:
    stt_reader_close(rd);
}

/* ------------------------------------------------------------------ PUT / DELETE */

/* Fills w with the edit of an attachment request: the doc id from the URL, and
 * with rev the parent's body and other attachments as stubs after add (when
 * set). Without rev, a bare doc holding add. What w points at lives in the
 * request's arena, as the writer thread wants it (add's bytes excepted). 0, or
 * replies and returns -1: 409 when rev names no stored revision of the doc, 404
 * when a DELETE names an attachment the parent lacks. */
static int build_edit(stt_hreq_t *r, const stt_rev_t *rev, const stt_att_in_t *add, stt_doc_write_t *w)
{
    memset(w, 0, sizeof(*w));
    w->id = stt_arena_memdup(&r->arena, r->docid.base, r->docid.len);
    w->idlen = r->docid.len;
    w->body = "{}";
    w->bodylen = 2;
    if (!rev) {
        w->atts = add;
        w->natts = add ? 1 : 0;
        return 0;
    }
    w->prev = *rev;
    w->prev.id = stt_arena_memdup(&r->arena, rev->id, rev->idlen);
    w->has_prev = true;
    stt_reader_t *rd;
    stt_reader_open(r->db, &rd);
    stt_doc_t d;
    int rc = stt_doc_get(rd, r->docid.base, r->docid.len, &d);
    if (rc) {
        stt_reader_close(rd);
        stt_reply_error(r, rc == STT_E_NOT_FOUND ? STT_E_CONFLICT : rc, NULL);
        return -1;
    }
    /* settee keeps bodies of leaves only: an older rev is a stale edit */
    int node = stt_revtree_find(&d.tree, rev->gen, rev->id, rev->idlen);
    stt_rev_body_t b;
    if (node < 0 || (rc = stt_doc_body(&d, node, &b)) != 0) {
        stt_doc_free(&d);
        stt_reader_close(rd);
        stt_reply_error(r, STT_E_CONFLICT, NULL);
        return -1;
    }
    if (!add && !find_att(&b, r->attname)) {
        rc = -1;
        reply_missing_att(r);
        goto exit;
    }
    w->body = stt_arena_memdup(&r->arena, b.json, b.jsonlen);
    w->bodylen = b.jsonlen;
    stt_att_in_t *atts = stt_arena_alloc(&r->arena, (b.natts + 1) * sizeof(*atts));
    size_t n = 0;
    if (add) atts[n++] = *add;
    for (size_t i = 0; i < b.natts; i++) {
        const stt_att_t *a = &b.atts[i];
        if (a->namelen == r->attname.len && memcmp(a->name, r->attname.base, a->namelen) == 0) continue;
        memset(&atts[n], 0, sizeof(atts[n]));
        atts[n].meta.name = stt_arena_memdup(&r->arena, a->name, a->namelen);
        atts[n].meta.namelen = a->namelen;
        atts[n].stub = true;
        n++;
    }
    w->atts = atts;
    w->natts = n;
exit:
    stt_rev_body_free(&b);
    stt_doc_free(&d);
    stt_reader_close(rd);
    return rc ? -1 : 0;
}

static void put_att(stt_hreq_t *r)
{
    const char *reason;
    int rc;
    if (check_name(r) != 0) return;
    if ((rc = stt_docid_check(r->docid.base, r->docid.len, &reason)) != 0) {
        stt_reply_error(r, rc, reason);
        return;
    }
    stt_rev_t rev;
    bool has_rev;
    if (stt__query_rev(r, &rev, &has_rev) != 0) return;
    h2o_iovec_t body = r->req->entity;
    stt_att_in_t add = {.data = body.base ? body.base : "", .datalen = body.len};
    /* a gzip upload is stored as its plain bytes, like every attachment */
    stt_buf_t plain = STT_BUF_INIT;
    const h2o_iovec_t *enc = stt_header(r, "content-encoding");
    if (enc && !(enc->len == 8 && strncasecmp(enc->base, "identity", 8) == 0)) {
        if (!(enc->len == 4 && strncasecmp(enc->base, "gzip", 4) == 0)) {
            stt_reply_error_raw(r, 415, "bad_content_type", "Only gzip and identity content-encodings are supported");
            return;
        }
        if (stt_gunzip(&plain, add.data, add.datalen, stt__server->cfg->max_http_request_size) != 0) {
            stt_buf_free(&plain);
            stt_reply_error_raw(r, 400, "bad_request", "Attachment data is not valid gzip");
            return;
        }
        add.data = plain.base ? plain.base : "";
        add.datalen = plain.len;
    }
    const h2o_iovec_t *ct = stt_header(r, "content-type");
    add.meta.name = r->attname.base;
    add.meta.namelen = r->attname.len;
    add.meta.content_type = ct ? ct->base : "application/octet-stream";
    add.meta.ctlen = ct ? ct->len : strlen("application/octet-stream");
    stt_doc_write_t w;
    if (build_edit(r, has_rev ? &rev : NULL, &add, &w) == 0) stt__doc_write_one(r, &w, true, false);
    stt_buf_free(&plain);
}

static void delete_done(stt_wjob_t *j)
{
    const stt_doc_write_t *w = j->job.docs;
    int rc = j->job.rc ? j->job.rc : j->job.res[0].err;
    if (rc) {
        const stt_doc_result_t *res = &j->job.res[0];
        if (!j->job.rc && res->error)
            stt_reply_error_raw(j->r, stt_err_info(rc)->status, res->error, res->reason);
        else
            stt_reply_error(j->r, rc, j->job.rc ? NULL : res->reason);
        return;
    }
    /* CouchDB answers an attachment DELETE with 200 and no Location */
    stt__reply_written(j->r, 200, w->id, w->idlen, j->job.res[0].rev, false);
}

static void delete_att(stt_hreq_t *r)
{
    if (check_name(r) != 0) return;
    stt_rev_t rev;
    bool has_rev;
    if (stt__query_rev(r, &rev, &has_rev) != 0) return;
    if (!has_rev) {
        /* CouchDB looks before it refuses: 404 for a missing doc or attachment,
         * else the rev-less edit conflicts */
        stt_reader_t *rd;
        stt_reader_open(r->db, &rd);
        stt_doc_t d;
        int rc = stt_doc_get(rd, r->docid.base, r->docid.len, &d);
        if (rc) {
            stt_reader_close(rd);
            stt_reply_error(r, rc, NULL);
            return;
        }
        stt_rev_body_t b = {0};
        if (d.tree.nodes[d.winner].flags & STT_REV_DELETED)
            stt_reply_error(r, STT_E_DELETED, NULL);
        else if ((rc = stt_doc_body(&d, d.winner, &b)) != 0)
            stt_reply_error(r, rc, NULL);
        else if (!find_att(&b, r->attname))
            reply_missing_att(r);
        else
            stt_reply_error(r, STT_E_CONFLICT, NULL);
        stt_rev_body_free(&b);
        stt_doc_free(&d);
        stt_reader_close(rd);
        return;
    }
    stt_doc_write_t *w = stt_arena_alloc(&r->arena, sizeof(*w));
    if (build_edit(r, &rev, NULL, w) == 0) stt_writer_submit(stt_writer_job(r, w, 1, true, delete_done, NULL));
}

void stt_h_attachment(stt_hreq_t *r)
{
    switch (r->method) {
    case STT_M_GET:
    case STT_M_HEAD:
        get_att(r);
        break;
    case STT_M_PUT:
        put_att(r);
        break;
    case STT_M_DELETE:
        delete_att(r);
        break;
    }
}
