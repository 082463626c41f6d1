/* Doc JSON <-> store: parse a client's doc into a write, render a stored leaf.
 *
 * Rendering splices the stored body text between the special members, in the
 * order CouchDB's couch_doc:to_json_obj emits them: _id, _rev, body, _deleted,
 * _revisions, _revs_info, _local_seq, _conflicts, _deleted_conflicts,
 * _attachments. */
#include "replication/replication.h"
#include "src/common/codec.h"
#include "src/common/err.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ parsing */

int stt_docid_check(const char *id, size_t len, const char **reason)
{
    if (len == 0) {
        *reason = "Document id must not be empty";
        return STT_E_ILLEGAL_DOCID;
    }
    if (stt_utf8_validate(id, len) != 0) {
        *reason = "Document id must be valid UTF-8";
        return STT_E_ILLEGAL_DOCID;
    }
    if (id[0] == '_') {
        if ((len > 8 && memcmp(id, "_design/", 8) == 0) || (len > 7 && memcmp(id, "_local/", 7) == 0)) return 0;
        *reason = "Only reserved document ids may start with underscore.";
        return STT_E_ILLEGAL_DOCID;
    }
    return 0;
}

static bool is_key(const stt_json_member_t *m, const char *k)
{
    size_t n = strlen(k);
    return m->keylen == n && memcmp(m->key, k, n) == 0;
}

/* The history a doc names, built as couch_doc:transfer_fields builds #doc.revs:
 * members are read in order, "_rev" counts only while nothing has set the history
 * yet (so "_revisions" wins over "_rev" wherever it stands, and a "_rev" after it
 * is not even parsed), "_revisions" always replaces it. Empty: start 0, no ids. */
typedef struct {
    int64_t start;
    const char **ids;
    size_t *idlens;
    size_t n;
} revs_t;

/* CouchDB reads a 32-character rev id as a 128-bit hex number and writes it back
 * in lower case; any other id is kept as given. -1: 32 characters, not hex. */
static int norm_revid(stt_arena_t *a, const char *id, size_t len, const char **out)
{
    *out = id;
    if (len != 32) return 0;
    bool upper = false;
    for (size_t i = 0; i < len; i++) {
        char c = id[i];
        if (c >= 'A' && c <= 'F')
            upper = true;
        else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return -1;
    }
    if (upper) {
        char *low = stt_arena_memdup(a, id, len);
        for (size_t i = 0; i < len; i++)
            if (low[i] >= 'A' && low[i] <= 'F') low[i] = (char)(low[i] - 'A' + 'a');
        *out = low;
    }
    return 0;
}

static int parse_rev_member(stt_arena_t *a, const stt_json_t *v, revs_t *h, const char **reason)
{
    if (h->start != 0 || h->n != 0) return 0; /* _revisions came first: it wins */
    stt_rev_t r;
    if (v->type != STT_JSON_STRING || stt_rev_parse(v->u.s, v->len, &r) != 0 ||
        norm_revid(a, r.id, r.idlen, &r.id) != 0) {
        *reason = "Invalid rev format";
        return STT_E_BAD_REV;
    }
    h->ids = stt_arena_alloc(a, sizeof(*h->ids));
    h->idlens = stt_arena_alloc(a, sizeof(*h->idlens));
    h->start = (int64_t)r.gen;
    h->ids[0] = r.id;
    h->idlens[0] = r.idlen;
    h->n = 1;
    return 0;
}

static int parse_revisions(stt_arena_t *a, const stt_json_t *v, revs_t *h, const char **reason)
{
    if (v->type != STT_JSON_OBJECT) {
        *reason = "Bad special document member: _revisions";
        return STT_E_DOC_VALIDATION;
    }
    const stt_json_t *start = stt_json_get(v, "start"), *ids = stt_json_get(v, "ids");
    int64_t s;
    if (stt_json_int(start, &s) != 0) {
        *reason = "_revisions.start isn't an integer.";
        return STT_E_DOC_VALIDATION;
    }
    if (!ids || ids->type != STT_JSON_ARRAY) {
        *reason = "_revisions.ids isn't a array.";
        return STT_E_DOC_VALIDATION;
    }
    size_t n = ids->len;
    h->ids = stt_arena_alloc(a, (n ? n : 1) * sizeof(*h->ids));
    h->idlens = stt_arena_alloc(a, (n ? n : 1) * sizeof(*h->idlens));
    for (size_t i = 0; i < n; i++) {
        const stt_json_t *id = &ids->u.items[i];
        if (id->type != STT_JSON_STRING) {
            *reason = "RevId isn't a string";
            return STT_E_DOC_VALIDATION;
        }
        if (norm_revid(a, id->u.s, id->len, &h->ids[i]) != 0) {
            *reason = "RevId isn't a valid hexadecimal";
            return STT_E_DOC_VALIDATION;
        }
        if (id->len > STT_REV_ID_MAX) {
            *reason = "Invalid rev format";
            return STT_E_BAD_REV;
        }
        h->idlens[i] = id->len;
    }
    h->start = s;
    h->n = n;
    return 0;
}

/* The history into the write: new_edits=true takes its leaf as the edit's base
 * (couch_db reads #doc.revs the same way), new_edits=false the whole path. */
static int apply_revs(stt_arena_t *a, const revs_t *h, bool new_edits, stt_doc_write_t *out, const char **reason)
{
    if (h->n == 0) {
        if (new_edits) return 0;
        /* CouchDB: 400 on a PUT; inside _bulk_docs an empty _revisions.ids is a 500
         * (couch_db crashes on the empty path); settee answers 400 for both */
        *reason = "When `new_edits: false`, the document needs `_rev` or `_revisions` specified";
        return STT_E_BAD_REQUEST;
    }
    if (h->start < 1 || (new_edits ? 1 : h->n) > (uint64_t)h->start) {
        /* CouchDB stores such paths (revs "0-x", "-1-x"); settee's rev trees start
         * at generation 1 */
        *reason = new_edits ? "Invalid rev format"
                            : "_revisions.start must be at least the number of _revisions.ids: settee stores no "
                              "revision below generation 1";
        return new_edits ? STT_E_BAD_REV : STT_E_BAD_REQUEST;
    }
    out->has_prev = true;
    out->prev.gen = (uint64_t)h->start;
    out->prev.id = h->ids[0];
    out->prev.idlen = h->idlens[0];
    if (new_edits) return 0;
    stt_rev_t *path = stt_arena_alloc(a, h->n * sizeof(*path));
    for (size_t i = 0; i < h->n; i++) {
        path[i].gen = (uint64_t)h->start - i;
        path[i].id = h->ids[i];
        path[i].idlen = h->idlens[i];
    }
    out->gen = (uint64_t)h->start;
    out->path = path;
    out->npath = h->n;
    return 0;
}

/* Special members CouchDB keeps in the body: the replicator's state fields (legal
 * in any database) and _access (kept for per-doc access control). */
static bool is_kept_special(const stt_json_member_t *m)
{
    static const char *const kept[] = {"_replication_id",           "_replication_state", "_replication_state_time",
                                       "_replication_state_reason", "_replication_stats", "_access"};
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
        if (is_key(m, kept[i])) return true;
    return false;
}

/* "<text><attachment name>", arena-owned */
static const char *att_reason(stt_arena_t *a, const char *text, const stt_json_member_t *m)
{
    size_t n = strlen(text) + m->keylen + 1;
    char *msg = stt_arena_alloc(a, n);
    snprintf(msg, n, "%s%.*s", text, (int)m->keylen, m->key);
    return msg;
}

static int parse_atts(stt_arena_t *a, const stt_json_t *v, const stt_doc_parse_opts_t *o, stt_doc_write_t *out,
                      const char **reason)
{
    if (v->type != STT_JSON_OBJECT) {
        *reason = "_attachments must be an object";
        return STT_E_BAD_REQUEST;
    }
    stt_att_in_t *atts = stt_arena_alloc(a, (v->len ? v->len : 1) * sizeof(*atts));
    memset(atts, 0, (v->len ? v->len : 1) * sizeof(*atts));
    for (uint32_t i = 0; i < v->len; i++) {
        const stt_json_member_t *m = &v->u.members[i];
        stt_att_in_t *at = &atts[i];
        if (m->keylen == 0 || m->key[0] == '_') {
            char *msg = stt_arena_alloc(a, m->keylen + 64);
            snprintf(msg, m->keylen + 64, "Attachment name '%.*s' starts with prohibited character '_'", (int)m->keylen,
                     m->key);
            *reason = msg;
            return STT_E_BAD_REQUEST;
        }
        if (m->val.type != STT_JSON_OBJECT) {
            *reason = "Bad attachment";
            return STT_E_BAD_REQUEST;
        }
        at->meta.name = m->key;
        at->meta.namelen = m->keylen;
        const stt_json_t *ct = stt_json_get(&m->val, "content_type");
        if (ct && !stt_json_is_str(ct)) {
            /* CouchDB crashes on it (500 function_clause): a client's mistake is a 400 */
            *reason = att_reason(a, "Attachment content_type must be a string for ", m);
            return STT_E_BAD_REQUEST;
        }
        if (ct) {
            at->meta.content_type = ct->u.s;
            at->meta.ctlen = ct->len;
        } else {
            at->meta.content_type = "application/octet-stream";
            at->meta.ctlen = strlen(at->meta.content_type);
        }
        const stt_json_t *digest = stt_json_get(&m->val, "digest");
        if (stt_json_is_str(digest) && stt_att_digest_parse(digest->u.s, digest->len, at->meta.digest) == 0)
            at->has_digest = true;
        int64_t revpos;
        if (stt_json_int(stt_json_get(&m->val, "revpos"), &revpos) == 0 && revpos > 0)
            at->meta.revpos = (uint64_t)revpos;
        const stt_json_t *data = stt_json_get(&m->val, "data");
        if (stt_json_is_true(stt_json_get(&m->val, "stub"))) {
            at->stub = true;
        } else if (stt_json_is_true(stt_json_get(&m->val, "follows"))) {
            const stt_follows_t *f = NULL;
            for (size_t k = 0; k < o->nfollows; k++)
                if (o->follows[k].namelen == m->keylen && memcmp(o->follows[k].name, m->key, m->keylen) == 0)
                    f = &o->follows[k];
            if (!f) {
                *reason = "Attachment data missing for a follows attachment";
                return STT_E_BAD_REQUEST;
            }
            at->data = f->data ? f->data : "";
            at->datalen = f->len;
        } else if (stt_json_is_str(data)) {
            stt_buf_t b = STT_BUF_INIT;
            if (stt_base64_decode(&b, data->u.s, data->len) != 0) {
                stt_buf_free(&b);
                *reason = att_reason(a, "Invalid attachment data for ", m);
                return STT_E_BAD_REQUEST;
            }
            at->data = stt_arena_memdup(a, b.base ? b.base : "", b.len);
            at->datalen = b.len;
            stt_buf_free(&b);
        } else {
            *reason = "Invalid attachment stub: no data and no stub";
            return STT_E_BAD_REQUEST;
        }
    }
    out->atts = atts;
    out->natts = v->len;
    return 0;
}

int stt_doc_parse(stt_arena_t *a, const stt_json_t *obj, const stt_doc_parse_opts_t *o, stt_doc_write_t *out,
                  const char **reason)
{
    memset(out, 0, sizeof(*out));
    if (!obj || obj->type != STT_JSON_OBJECT) {
        *reason = "Document must be a JSON object";
        return STT_E_BAD_REQUEST;
    }
    const stt_json_t *atts = NULL;
    revs_t hist = {0};
    stt_buf_t body = STT_BUF_INIT;
    stt_buf_appendc(&body, '{');
    bool first = true;
    int rc = 0;
    for (uint32_t i = 0; i < obj->len; i++) {
        const stt_json_member_t *m = &obj->u.members[i];
        if (m->keylen == 0 || m->key[0] != '_' || is_kept_special(m)) {
            if (!first) stt_buf_appendc(&body, ',');
            first = false;
            stt_json_write_str(&body, m->key, m->keylen);
            stt_buf_appendc(&body, ':');
            stt_json_write(&body, &m->val);
            continue;
        }
        if (is_key(m, "_id")) {
            if (m->val.type != STT_JSON_STRING) {
                *reason = "Document id must be a string";
                rc = STT_E_ILLEGAL_DOCID;
                goto exit;
            }
            out->id = m->val.u.s;
            out->idlen = m->val.len;
        } else if (is_key(m, "_rev")) {
            /* a _local doc's "0-N" is read by its writer, not as a tree rev */
            if (!o->is_local && (rc = parse_rev_member(a, &m->val, &hist, reason)) != 0) goto exit;
        } else if (is_key(m, "_deleted") && (m->val.type == STT_JSON_TRUE || m->val.type == STT_JSON_FALSE)) {
            out->deleted = m->val.type == STT_JSON_TRUE;
        } else if (is_key(m, "_revisions")) {
            if (!o->is_local && (rc = parse_revisions(a, &m->val, &hist, reason)) != 0) goto exit;
        } else if (is_key(m, "_attachments") && m->val.type == STT_JSON_OBJECT) {
            atts = &m->val;
        } else if (is_key(m, "_revs_info") || is_key(m, "_conflicts") || is_key(m, "_deleted_conflicts") ||
                   is_key(m, "_local_seq")) {
            /* read-only members a client may echo back: CouchDB drops them */
        } else {
            static const char pre[] = "Bad special document member: ";
            char *msg = stt_arena_alloc(a, sizeof(pre) + m->keylen);
            memcpy(msg, pre, sizeof(pre) - 1);
            memcpy(msg + sizeof(pre) - 1, m->key, m->keylen);
            msg[sizeof(pre) - 1 + m->keylen] = '\0';
            *reason = msg;
            rc = STT_E_DOC_VALIDATION;
            goto exit;
        }
    }
    stt_buf_appendc(&body, '}');
    if (!out->id && o->url_id) {
        out->id = o->url_id;
        out->idlen = o->url_idlen;
    }
    if (out->id && (rc = stt_docid_check(out->id, out->idlen, reason)) != 0) goto exit;
    out->body = stt_arena_memdup(a, body.base, body.len);
    out->bodylen = body.len;
    if (o->is_local) goto exit;
    if ((rc = apply_revs(a, &hist, o->new_edits, out, reason)) != 0) goto exit;
    if (atts && (rc = parse_atts(a, atts, o, out, reason)) != 0) goto exit;
exit:
    stt_buf_free(&body);
    return rc;
}

int stt_doc_select(const stt_doc_t *d, const stt_rev_t *rev, int *node)
{
    int n = d->winner;
    if (rev) {
        n = stt_revtree_find(&d->tree, rev->gen, rev->id, rev->idlen);
        if (n < 0 || !(d->tree.nodes[n].flags & STT_REV_HAS_BODY)) return STT_E_NOT_FOUND;
    } else if (d->tree.nodes[n].flags & STT_REV_DELETED) {
        return STT_E_DELETED;
    }
    *node = n;
    return 0;
}

/* ------------------------------------------------------------------ rendering */

void stt_render_revisions(const stt_revtree_t *t, int node, uint32_t limit, stt_buf_t *out)
{
    if (limit == 0) limit = 1;
    int pathbuf[64];
    size_t cap = t->n < limit ? t->n : limit;
    int *path = cap <= 64 ? pathbuf : stt_xmalloc(cap * sizeof(int));
    size_t n = stt_revtree_path(t, node, path, cap);
    stt_buf_appends(out, "{\"start\":");
    stt_buf_append_u64(out, t->nodes[node].gen);
    stt_buf_appends(out, ",\"ids\":[");
    for (size_t i = 0; i < n; i++) {
        if (i) stt_buf_appendc(out, ',');
        stt_json_write_str(out, stt_revtree_id(t, path[i]), t->nodes[path[i]].idlen);
    }
    stt_buf_appends(out, "]}");
    if (path != pathbuf) free(path);
}

static void write_rev(stt_buf_t *out, const stt_revtree_t *t, int i)
{
    stt_buf_appendc(out, '"');
    stt_revtree_format(t, i, out);
    stt_buf_appendc(out, '"');
}

/* Highest generation among atts_since revs known to this doc: attachments at or
 * below it are already at the client. */
static uint64_t atts_since_pos(const stt_doc_t *d, const stt_render_opts_t *o)
{
    uint64_t pos = 0;
    for (size_t i = 0; i < o->natts_since; i++) {
        const stt_rev_t *r = &o->atts_since[i];
        if (stt_revtree_find(&d->tree, r->gen, r->id, r->idlen) >= 0 && r->gen > pos) pos = r->gen;
    }
    return pos;
}

static bool att_inline(const stt_att_t *a, uint64_t since_pos, const stt_render_opts_t *o)
{
    return (o->attachments || o->follows) && a->revpos > since_pos;
}

int stt_doc_follow_atts(const stt_doc_t *d, int node, const stt_render_opts_t *o, stt_att_t **atts, size_t *n)
{
    stt_rev_body_t b;
    int rc = stt_doc_body(d, node, &b);
    if (rc) return rc;
    uint64_t since = atts_since_pos(d, o);
    *atts = b.natts ? stt_xcalloc(b.natts, sizeof(stt_att_t)) : NULL;
    *n = 0;
    for (size_t i = 0; i < b.natts; i++)
        if (att_inline(&b.atts[i], since, o)) (*atts)[(*n)++] = b.atts[i];
    stt_rev_body_free(&b);
    return 0;
}

int stt_doc_render(stt_reader_t *rd, const stt_doc_t *d, int node, const stt_render_opts_t *o, stt_buf_t *out)
{
    stt_rev_body_t b;
    int rc = stt_doc_body(d, node, &b);
    if (rc) return rc;
    const stt_revtree_t *t = &d->tree;
    stt_buf_appends(out, "{\"_id\":");
    stt_json_write_str(out, d->id, d->idlen);
    stt_buf_appends(out, ",\"_rev\":");
    write_rev(out, t, node);
    if (b.jsonlen > 2) {
        stt_buf_appendc(out, ',');
        stt_buf_append(out, b.json + 1, b.jsonlen - 2);
    }
    if (t->nodes[node].flags & STT_REV_DELETED) stt_buf_appends(out, ",\"_deleted\":true");
    if (o->revs) {
        stt_buf_appends(out, ",\"_revisions\":");
        stt_render_revisions(t, node, o->revs_limit, out);
    }
    if (o->revs_info) {
        int *path = stt_xmalloc(t->n * sizeof(int));
        size_t n = stt_revtree_path(t, node, path, t->n);
        stt_buf_appends(out, ",\"_revs_info\":[");
        for (size_t i = 0; i < n; i++) {
            uint8_t f = t->nodes[path[i]].flags;
            stt_buf_appends(out, i ? ",{\"rev\":" : "{\"rev\":");
            write_rev(out, t, path[i]);
            stt_buf_appends(out, (f & STT_REV_DELETED)    ? ",\"status\":\"deleted\"}"
                                 : (f & STT_REV_HAS_BODY) ? ",\"status\":\"available\"}"
                                                          : ",\"status\":\"missing\"}");
        }
        stt_buf_appendc(out, ']');
        free(path);
    }
    if (o->local_seq) {
        stt_buf_appends(out, ",\"_local_seq\":");
        stt_buf_append_u64(out, d->seq);
    }
    if (o->conflicts || o->deleted_conflicts) {
        int *leaves = stt_xmalloc(t->n * sizeof(int));
        size_t n = stt_revtree_leaves(t, leaves);
        for (int pass = 0; pass < 2; pass++) {
            if ((pass == 0 && !o->conflicts) || (pass == 1 && !o->deleted_conflicts)) continue;
            bool any = false;
            for (size_t i = 0; i < n; i++) {
                if (leaves[i] == node) continue;
                bool del = (t->nodes[leaves[i]].flags & STT_REV_DELETED) != 0;
                if (del != (pass == 1)) continue;
                stt_buf_appends(out, any ? "," : pass == 0 ? ",\"_conflicts\":[" : ",\"_deleted_conflicts\":[");
                any = true;
                write_rev(out, t, leaves[i]);
            }
            if (any) stt_buf_appendc(out, ']');
        }
        free(leaves);
    }
    if (b.natts) {
        uint64_t since = atts_since_pos(d, o);
        stt_buf_appends(out, ",\"_attachments\":{");
        stt_buf_t data = STT_BUF_INIT;
        for (size_t i = 0; i < b.natts; i++) {
            const stt_att_t *a = &b.atts[i];
            if (i) stt_buf_appendc(out, ',');
            stt_json_write_str(out, a->name, a->namelen);
            stt_buf_appends(out, ":{\"content_type\":");
            stt_json_write_str(out, a->content_type, a->ctlen);
            stt_buf_appends(out, ",\"revpos\":");
            stt_buf_append_u64(out, a->revpos);
            stt_buf_appends(out, ",\"digest\":\"");
            stt_att_digest_format(a->digest, out);
            stt_buf_appendc(out, '"');
            bool inl = att_inline(a, since, o);
            /* multipart parts carry the stored (gzip) bytes, so their JSON always
             * says how they are encoded; elsewhere only with att_encoding_info */
            bool enc_info = a->encoding == STT_ATT_GZIP && (o->att_encoding_info || o->follows);
            if (inl && o->follows) {
                stt_buf_appends(out, ",\"length\":");
                stt_buf_append_u64(out, a->length);
                stt_buf_appends(out, ",\"follows\":true");
            } else if (inl && o->inline_att) {
                stt_buf_appends(out, ",\"data\":\"");
                o->inline_att(o->inline_ctx, out, a);
                stt_buf_appendc(out, '"');
            } else if (inl && rd) {
                stt_buf_reset(&data);
                if (stt_att_read_decoded(rd, a, &data) != 0) {
                    rc = STT_E_IO;
                    break;
                }
                stt_buf_appends(out, ",\"data\":\"");
                stt_base64_encode(out, data.base ? data.base : "", data.len);
                stt_buf_appendc(out, '"');
            } else {
                stt_buf_appends(out, ",\"length\":");
                stt_buf_append_u64(out, a->length);
                stt_buf_appends(out, ",\"stub\":true");
            }
            if (enc_info) {
                stt_buf_appends(out, ",\"encoding\":\"gzip\",\"encoded_length\":");
                stt_buf_append_u64(out, a->encoded_length);
            }
            stt_buf_appendc(out, '}');
        }
        stt_buf_free(&data);
        stt_buf_appendc(out, '}');
    }
    stt_buf_appendc(out, '}');
    stt_rev_body_free(&b);
    return rc;
}
