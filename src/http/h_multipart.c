/* Multipart on the wire: the answers CouchDB's replicator asks for with
 * Accept: multipart/mixed (open_revs) and clients with Accept: multipart/related
 * (a doc with its attachments), and the multipart/related doc PUT the replicator
 * pushes attachments with. The MIME bytes themselves are mime.c's.
 *
 * Layout written, byte for byte as CouchDB's couch_doc:doc_to_multi_part_stream
 * and chttpd_db:send_docs_multipart (the golden file records it):
 *
 *   multipart/mixed; boundary="O"
 *   --O
 *   Content-Type: application/json                    a rev with nothing to follow
 *
 *   {doc}
 *   --O
 *   Content-Type: application/json; error="true"      a missing rev
 *
 *   {"missing":"rev"}
 *   --O
 *   Content-Type: multipart/related; boundary="I"     a rev with attachments
 *
 *   --I
 *   Content-Type: application/json
 *
 *   {doc, attachments "follows":true}
 *   --I
 *   Content-Disposition: attachment; filename="name"
 *   Content-Type: type
 *   Content-Length: N
 *
 *   <N bytes>
 *   --I--
 *   --O--
 *
 * (every line break above is CRLF; no CRLF after the closing delimiters). The
 * answer's text (heads, docs, delimiters) is built in memory with a mark where each
 * attachment's bytes go; splice.c reads the bytes only while the answer goes out.
 *
 * Attachment parts carry the bytes as stored: gzip-stored ones (compressible
 * types) say Content-Encoding: gzip, as CouchDB's do; gzip parts of a PUT are
 * gunzipped before they are stored. */
#include "src/http/multipart.h"
#include "src/http/splice.h"
#include "src/common/codec.h"
#include "src/common/err.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------------ writing */

/* "multipart/<sub>; boundary=\"b\"" in request memory: h2o keeps the pointer of
 * a content-type until the reply is sent. */
static const char *multipart_ctype(stt_hreq_t *r, const char *sub, const char *boundary)
{
    size_t len = strlen("multipart/; boundary=\"\"") + strlen(sub) + strlen(boundary);
    char *s = stt_arena_alloc(&r->arena, len + 1);
    snprintf(s, len + 1, "multipart/%s; boundary=\"%s\"", sub, boundary);
    return s;
}

/* Appends the attachment parts of a related body, each followed by the next
 * delimiter "\r\n--b", then the closing "--"; the bytes are marked in p at their
 * offsets in out. The JSON part and its delimiter are already in out. */
static void append_att_parts(stt_splice_t *p, const char *boundary, const stt_att_t *atts, size_t n, stt_buf_t *out)
{
    for (size_t i = 0; i < n; i++) {
        const stt_att_t *a = &atts[i];
        stt_buf_appends(out, "\r\nContent-Disposition: attachment; filename=\"");
        stt_mime_put_value(out, a->name, a->namelen, true);
        stt_buf_appends(out, "\"\r\nContent-Type: ");
        stt_mime_put_value(out, a->content_type, a->ctlen, false);
        /* the stored bytes go as they are: gzip ones say so (CouchDB's layout) */
        stt_buf_appends(out, "\r\nContent-Length: ");
        stt_buf_append_u64(out, a->encoded_length);
        if (a->encoding == STT_ATT_GZIP) stt_buf_appends(out, "\r\nContent-Encoding: gzip");
        stt_buf_appends(out, "\r\n\r\n");
        stt_splice_add(p, out->len, a, false);
        stt_buf_appends(out, "\r\n--");
        stt_buf_appends(out, boundary);
    }
    stt_buf_appends(out, "--");
}

/* One revision as a related body: its JSON with attachments rendered
 * "follows":true (those atts_since does not cover), then their parts. *natts
 * says how many followed; with none, out holds the bare JSON. */
static int append_rev(stt_splice_t *p, stt_reader_t *rd, const stt_doc_t *d, int node, const stt_render_opts_t *o,
                      const char *boundary, stt_buf_t *out, size_t *natts)
{
    stt_render_opts_t fo = *o;
    fo.follows = true;
    fo.attachments = false;
    stt_att_t *atts = NULL;
    size_t n = 0;
    int rc = stt_doc_follow_atts(d, node, &fo, &atts, &n);
    if (rc) return rc;
    if (n) {
        stt_buf_appends(out, "--");
        stt_buf_appends(out, boundary);
        stt_buf_appends(out, "\r\nContent-Type: application/json\r\n\r\n");
    }
    if ((rc = stt_doc_render(rd, d, node, &fo, out)) == 0 && n) {
        stt_buf_appends(out, "\r\n--");
        stt_buf_appends(out, boundary);
        append_att_parts(p, boundary, atts, n, out);
    }
    free(atts);
    *natts = n;
    return rc;
}

void stt_mp_reply_open_revs(stt_hreq_t *r, stt_reader_t *rd, const stt_doc_t *d, const stt_mp_part_t *parts, size_t n,
                            const stt_render_opts_t *o)
{
    char outer[33], inner[33];
    stt_uuid_random(outer);
    stt_uuid_random(inner);
    stt_buf_t out = STT_BUF_INIT, rev = STT_BUF_INIT;
    stt_splice_t plan = {0};
    stt_buf_appends(&out, "--");
    stt_buf_appends(&out, outer);
    for (size_t i = 0; i < n; i++) {
        /* the part's head depends on whether attachments follow: render first */
        size_t natts = 0, first = plan.n;
        int rc = STT_E_NOT_FOUND;
        stt_buf_reset(&rev);
        if (d && parts[i].node >= 0) rc = append_rev(&plan, rd, d, parts[i].node, o, inner, &rev, &natts);
        if (rc && rc != STT_E_NOT_FOUND) {
            stt_buf_free(&out);
            stt_buf_free(&rev);
            stt_splice_free(&plan);
            stt_reply_error(r, rc, NULL);
            return;
        }
        if (rc) {
            /* no such rev, or one whose body is gone: a missing part */
            stt_buf_appends(&out, "\r\nContent-Type: application/json; error=\"true\"\r\n\r\n{\"missing\":");
            if (d && parts[i].node >= 0) {
                stt_buf_reset(&rev);
                stt_buf_appendc(&rev, '"');
                stt_revtree_format(&d->tree, parts[i].node, &rev);
                stt_buf_appendc(&rev, '"');
                stt_buf_append(&out, rev.base, rev.len);
            } else {
                stt_json_write_str(&out, parts[i].missing ? parts[i].missing : "", parts[i].missinglen);
            }
            stt_buf_appendc(&out, '}');
        } else {
            if (natts) {
                stt_buf_appends(&out, "\r\nContent-Type: multipart/related; boundary=\"");
                stt_buf_appends(&out, inner);
                stt_buf_appends(&out, "\"\r\n\r\n");
            } else {
                stt_buf_appends(&out, "\r\nContent-Type: application/json\r\n\r\n");
            }
            for (size_t k = first; k < plan.n; k++) /* marked in rev, which goes here */
                plan.atts[k].at += out.len;
            stt_buf_append(&out, rev.base, rev.len);
        }
        stt_buf_appends(&out, "\r\n--");
        stt_buf_appends(&out, outer);
    }
    stt_buf_appends(&out, "--");
    stt_buf_free(&rev);
    stt_splice_send(r, rd, &out, &plan, multipart_ctype(r, "mixed", outer), NULL);
}

void stt_mp_reply_doc_related(stt_hreq_t *r, stt_reader_t *rd, const stt_doc_t *d, int node, const stt_render_opts_t *o,
                              const char *etag)
{
    char boundary[33];
    stt_uuid_random(boundary);
    stt_buf_t out = STT_BUF_INIT;
    stt_splice_t plan = {0};
    size_t natts;
    int rc = append_rev(&plan, rd, d, node, o, boundary, &out, &natts);
    if (rc) {
        stt_buf_free(&out);
        stt_splice_free(&plan);
        stt_reply_error(r, rc, NULL);
        return;
    }
    const char *h[] = {"etag", etag, NULL};
    if (!natts) {
        /* nothing follows: CouchDB answers plain JSON */
        stt_reply_json_h(r, 200, &out, h);
        return;
    }
    stt_splice_send(r, rd, &out, &plan, multipart_ctype(r, "related", boundary), h);
}

/* ------------------------------------------------------------------ reading */

/* A "follows" attachment of the JSON part, in _attachments order, and the part
 * holding its bytes. */
typedef struct {
    const stt_json_member_t *m;
    const stt_mime_part_t *part;
} follow_t;

/* Pairs attachment parts with follows attachments. CouchDB's replicator sends the
 * parts in _attachments order and names each in Content-Disposition; a named
 * part goes to its attachment, the others fill the remaining ones in order. */
static void match_parts(follow_t *f, size_t nf, const stt_mime_part_t *parts, size_t nparts)
{
    bool *used = stt_xcalloc(nparts ? nparts : 1, sizeof(bool));
    for (size_t i = 0; i < nparts; i++) {
        size_t dlen, flen;
        const char *disp = stt_mime_header(&parts[i], "content-disposition", &dlen), *fname;
        if (!disp || stt_mime_param(disp, dlen, "filename", &fname, &flen) != 0) continue;
        for (size_t k = 0; k < nf; k++)
            if (!f[k].part && f[k].m->keylen == flen && memcmp(f[k].m->key, fname, flen) == 0) {
                f[k].part = &parts[i];
                used[i] = true;
                break;
            }
    }
    size_t next = 0;
    for (size_t k = 0; k < nf; k++) {
        if (f[k].part) continue;
        while (next < nparts && used[next])
            next++;
        if (next == nparts) break;
        f[k].part = &parts[next];
        used[next++] = true;
    }
    free(used);
}

/* The bytes of one follows attachment: gunzipped when the part (or, without a
 * Content-Encoding header, the JSON's "encoding") says gzip, and checked against
 * the JSON's "length". NULL reason on success. */
static const char *decode_part(const follow_t *f, size_t cap, stt_buf_t *plain, const char **data, size_t *len)
{
    const stt_mime_part_t *p = f->part;
    size_t elen;
    const char *enc = stt_mime_header(p, "content-encoding", &elen);
    bool gzip;
    if (enc)
        gzip = elen == 4 && strncasecmp(enc, "gzip", 4) == 0;
    else
        gzip = stt_json_is_str(stt_json_get(&f->m->val, "encoding")) &&
               strcmp(stt_json_get(&f->m->val, "encoding")->u.s, "gzip") == 0;
    if (enc && !gzip && !(elen == 8 && strncasecmp(enc, "identity", 8) == 0))
        return "Only gzip and identity content-encodings are supported";
    *data = p->body;
    *len = p->len;
    if (gzip) {
        if (stt_gunzip(plain, p->body, p->len, cap) != 0) return "Attachment data is not valid gzip";
        *data = plain->base ? plain->base : "";
        *len = plain->len;
    }
    int64_t want;
    if (stt_json_int(stt_json_get(&f->m->val, "length"), &want) == 0 && (want < 0 || (uint64_t)want != *len))
        return "Attachment length does not match its data";
    return NULL;
}

void stt_mp_put_doc(stt_hreq_t *r, bool new_edits)
{
    const h2o_iovec_t *ct = stt_header(r, "content-type");
    const char *boundary;
    size_t blen;
    if (!ct || stt_mime_boundary(ct->base, ct->len, &boundary, &blen) != 0) {
        stt_reply_error_raw(r, 400, "bad_request", "multipart/related without a usable boundary");
        return;
    }
    /* parts: a few on the stack; a doc with many attachments gets them counted first */
    stt_mime_part_t few[16], *parts = few;
    size_t nparts;
    h2o_iovec_t e = r->req->entity;
    if (stt_mime_parse(e.base, e.len, boundary, blen, parts, &nparts, 16) != 0 || nparts == 0) {
        stt_reply_error_raw(r, 400, "bad_request", "Malformed or truncated multipart/related body");
        return;
    }
    if (nparts > 16) {
        parts = stt_arena_alloc(&r->arena, nparts * sizeof(*parts));
        stt_mime_parse(e.base, e.len, boundary, blen, parts, &nparts, nparts);
    }
    if (stt__too_large(r, parts[0].len)) return;
    stt_json_t doc;
    if (stt_json_parse(&r->arena, parts[0].body, parts[0].len, &doc, NULL, 0) != 0) {
        stt_reply_error(r, STT_E_BAD_JSON, NULL);
        return;
    }
    if (doc.type != STT_JSON_OBJECT) {
        stt_reply_error_raw(r, 400, "bad_request", "Document must be a JSON object");
        return;
    }
    /* the follows attachments, in the order their bytes come */
    const stt_json_t *atts = stt_json_get(&doc, "_attachments");
    size_t nf = 0;
    follow_t *f = NULL;
    if (atts && atts->type == STT_JSON_OBJECT && atts->len) {
        f = stt_arena_alloc(&r->arena, atts->len * sizeof(*f));
        for (uint32_t i = 0; i < atts->len; i++) {
            /* a stub wins over follows (as stt_doc_parse reads it): no part for it */
            const stt_json_t *a = &atts->u.members[i].val;
            if (a->type == STT_JSON_OBJECT && stt_json_is_true(stt_json_get(a, "follows")) &&
                !stt_json_is_true(stt_json_get(a, "stub")))
                f[nf++] = (follow_t){&atts->u.members[i], NULL};
        }
    }
    match_parts(f, nf, parts + 1, nparts - 1);
    stt_follows_t *follows = stt_arena_alloc(&r->arena, (nf ? nf : 1) * sizeof(*follows));
    stt_buf_t *plain = stt_xcalloc(nf ? nf : 1, sizeof(*plain));
    const char *reason = NULL;
    for (size_t k = 0; k < nf && !reason; k++) {
        if (!f[k].part) {
            reason = "Attachment data missing for a follows attachment";
            break;
        }
        follows[k].name = f[k].m->key;
        follows[k].namelen = f[k].m->keylen;
        reason =
            decode_part(&f[k], stt__server->cfg->max_http_request_size, &plain[k], &follows[k].data, &follows[k].len);
    }
    if (reason)
        stt_reply_error_raw(r, 400, "bad_request", reason);
    else
        stt__doc_put(r, &doc, follows, nf, new_edits);
    for (size_t k = 0; k < nf; k++)
        stt_buf_free(&plain[k]);
    free(plain);
}
