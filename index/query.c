/* View queries: one key range (or one per key of keys=) scanned in LevelDB
 * order, rows rendered as CouchDB renders them, reduced per group on the fly.
 *
 * A range becomes two byte bounds over the view's rows, lo (first row in) and
 * hi (first row out), built from the encoded keys and, when given, the docids:
 * "enckey docid 0x00" is the first row of that doc and "enckey docid 0x01" the
 * first past it; "enckey 0xFF" is past every row of that key (no docid starts
 * with 0xFF: ids are UTF-8). Descending scans the same bounds backwards.
 *
 * Reduce has no stored inner reductions: groups are folded over their rows as
 * the scan meets them (builtins natively, JS reducers through the pool in
 * chunks, then rereduced). offset is counted by scanning up to the start.
 *
 * The answer comes in chunks (stt_view_next): between two, the cursor keeps
 * the scan where it stopped, on the snapshot it began with, so a 100,000-row
 * answer never sits in memory whole. */
#include "index/index_int.h"
#include "replication/replication.h"
#include "src/common/err.h"
#include <stdlib.h>
#include <string.h>

#define JS_CHUNK 500

void stt_view_args_default(stt_view_args_t *a)
{
    memset(a, 0, sizeof(*a));
    a->inclusive_end = true;
    a->limit = UINT64_MAX;
    a->reduce = true;
    a->group_level = 0;
}

static int qerr(stt_qs_err_t *err, const char *reason)
{
    err->status = 400;
    err->error = "query_parse_error";
    err->reason = reason;
    return STT_VIEW_E_QUERY;
}

int stt_view_args_check(const stt_ddoc_views_t *dv, int view, stt_view_args_t *a, stt_qs_err_t *err)
{
    bool has_reduce = dv->views[view].reduce != NULL;
    if (!has_reduce) {
        if (a->reduce_set && a->reduce) return qerr(err, "Reduce is invalid for map-only views.");
        if (a->group_set) return qerr(err, "Invalid use of grouping on a map view.");
        a->reduce = false;
    } else if (!a->reduce && a->group_set) {
        return qerr(err, "Invalid use of grouping on a map view.");
    }
    if (has_reduce && a->reduce) {
        if (a->include_docs) return qerr(err, "`include_docs` is invalid for reduce");
        if (a->keys && !a->group) return qerr(err, "Multi-key fetches for reduce views must use `group=true`");
    }
    /* a wrong-direction range is an error before anything runs */
    const stt_json_t *sk = a->key ? a->key : a->start, *ek = a->key ? a->key : a->end;
    if (!a->keys && sk && ek) {
        int c = stt_key_cmp(sk, ek, dv->views[view].raw);
        if ((!a->descending && c > 0) || (a->descending && c < 0))
            return qerr(err, a->descending ? "No rows can match your key range, reverse your start_key and end_key "
                                             "or set descending=false"
                                           : "No rows can match your key range, reverse your start_key and end_key "
                                             "or set descending=true");
    }
    return 0;
}

/* ------------------------------------------------------------------ bounds */

typedef struct {
    stt_buf_t lo, hi;
} range_t;

static void view_prefix(stt_buf_t *b, const stt_ddoc_views_t *dv, int view)
{
    stt__ikey(b, IK_ROW, dv->sig);
    stt_buf_appendc(b, (char)view);
}

/* past: the bound lies after the key's (or the doc's) rows */
static void key_bound(stt_buf_t *b, const stt_ddoc_views_t *dv, int view, const stt_json_t *key, const char *docid,
                      size_t docidlen, bool past)
{
    view_prefix(b, dv, view);
    stt_key_encode(b, key, dv->views[view].raw);
    if (docid) {
        stt_buf_append(b, docid, docidlen);
        stt_buf_appendc(b, past ? 1 : 0);
    } else if (past) {
        stt_buf_appendc(b, (char)0xFF);
    }
}

static void make_range(range_t *r, const stt_ddoc_views_t *dv, int view, const stt_json_t *start, const char *sdoc,
                       size_t sdoclen, const stt_json_t *end, const char *edoc, size_t edoclen, bool incl, bool desc)
{
    stt_buf_reset(&r->lo);
    stt_buf_reset(&r->hi);
    if (!start) sdoc = NULL;
    if (!end) edoc = NULL;
    if (!desc) {
        if (start)
            key_bound(&r->lo, dv, view, start, sdoc, sdoclen, false);
        else
            view_prefix(&r->lo, dv, view);
        if (end)
            key_bound(&r->hi, dv, view, end, edoc, edoclen, incl);
        else
            view_prefix(&r->hi, dv, view + 1);
    } else {
        if (start)
            key_bound(&r->hi, dv, view, start, sdoc, sdoclen, true);
        else
            view_prefix(&r->hi, dv, view + 1);
        if (end)
            key_bound(&r->lo, dv, view, end, edoc, edoclen, !incl);
        else
            view_prefix(&r->lo, dv, view);
    }
}

static int bcmp_(const char *a, size_t al, const char *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int c = n ? memcmp(a, b, n) : 0;
    return c ? c : (al < bl ? -1 : al > bl);
}

/* ------------------------------------------------------------------ the scan */

typedef struct {
    stt_db_t *db;
    const stt_ddoc_views_t *dv;
    int view;
    const stt_view_args_t *a;
    stt_arena_t *arena;
    stt_buf_t *out;
    stt_qs_err_t *err;
    stt_ikv_iter_t *it;
    stt_reader_t *rd;
    uint64_t skip, limit;
    size_t nout;
    bool stop;
    uint64_t seq; /* the seq the index describes (row_ok) */
    /* reduce */
    bool reducing;
    int level;          /* -1 exact, 0 all, N */
    stt_buf_t gkey;     /* encoding of the current group's key */
    stt_buf_t gkeyjson; /* its JSON */
    bool ingroup;
    stt__reducer_t *builtin;
    stt_buf_t jskvs; /* JS: pending [[k,id],v] items */
    size_t njskvs;
    stt_buf_t jsred; /* JS: partial reductions, as a JSON array body */
    size_t njsred;
    stt_buf_t tmp;
    const char *overflow; /* reduce_overflow_error of the current group */
    stt_arena_t scratch;  /* query-server replies of one chunk */
    /* where the answer is: its ranges, the one being read (its iterator is in
     * place once positioned), the rows held back in it (descending dups) */
    range_t *ranges;
    size_t nranges, ri;
    bool positioned;
    stt_buf_t held, heldkey;
    size_t nheld;
    size_t want; /* a chunk ends once out holds this many bytes */
    enum { Q_ROWS, Q_END, Q_DONE } phase;
} q_t;

static void row_sep(q_t *q)
{
    stt_buf_appends(q->out, q->nout++ ? ",\r\n" : "\r\n");
}

/* The doc of a row for include_docs: the row's own doc, or the one its value
 * links to with {"_id": ..., "_rev"?: ...}. */
static void put_doc(q_t *q, const stt__row_t *row, const stt_json_t *val)
{
    const char *id = row->id;
    size_t idlen = row->idlen;
    const stt_json_t *rev = NULL;
    if (val && val->type == STT_JSON_OBJECT) {
        const stt_json_t *lid = stt_json_get(val, "_id");
        if (stt_json_is_str(lid)) {
            id = lid->u.s;
            idlen = lid->len;
            rev = stt_json_get(val, "_rev");
        }
    }
    stt_buf_appends(q->out, ",\"doc\":");
    if (!q->rd && stt_reader_open(q->db, &q->rd) != 0) {
        stt_buf_appends(q->out, "null");
        return;
    }
    stt_doc_t d;
    if (stt_doc_get(q->rd, id, idlen, &d) != 0) {
        stt_buf_appends(q->out, "null");
        return;
    }
    if (q->a->row_ok) { /* a filtered query: the winner, when the filter lets it through */
        rev = NULL;
        if (id != row->id && !q->a->row_ok(q->a->row_ctx, q->rd, id, idlen, UINT64_MAX)) {
            stt_doc_free(&d);
            stt_buf_appends(q->out, "null");
            return;
        }
    }
    int node = -1;
    stt_rev_t rv;
    if (stt_json_is_str(rev) && stt_rev_parse(rev->u.s, rev->len, &rv) == 0) {
        if (stt_doc_select(&d, &rv, &node) != 0) node = -1;
    } else if (stt_doc_select(&d, NULL, &node) != 0) {
        node = -1;
    }
    stt_render_opts_t ro = {0};
    ro.conflicts = q->a->conflicts;
    ro.attachments = q->a->attachments;
    size_t mark = q->out->len;
    if (node < 0 || stt_doc_render(q->rd, &d, node, &ro, q->out) != 0) {
        q->out->len = mark;
        stt_buf_appends(q->out, "null");
    }
    stt_doc_free(&d);
}

static int map_row(q_t *q, const stt__row_t *row)
{
    if (q->a->row_ok) {
        if (!q->rd && stt_reader_open(q->db, &q->rd) != 0) return STT_E_IO;
        if (!q->a->row_ok(q->a->row_ctx, q->rd, row->id, row->idlen, q->seq)) return 0;
    }
    if (q->skip) {
        q->skip--;
        return 0;
    }
    if (q->limit == 0) {
        q->stop = true;
        return 0;
    }
    q->limit--;
    row_sep(q);
    stt_buf_appends(q->out, "{\"id\":");
    stt_json_write_str(q->out, row->id, row->idlen);
    stt_buf_appends(q->out, ",\"key\":");
    stt_buf_append(q->out, row->key, row->keylen);
    stt_buf_appends(q->out, ",\"value\":");
    stt_buf_append(q->out, row->value, row->valuelen);
    if (q->a->include_docs) {
        stt_arena_t a = STT_ARENA_INIT;
        stt_json_t val;
        bool ok = stt_json_parse(&a, row->value, row->valuelen, &val, NULL, 0) == 0;
        put_doc(q, row, ok ? &val : NULL);
        stt_arena_free(&a);
    }
    stt_buf_appendc(q->out, '}');
    return 0;
}

/* A query-server string that must outlive the chunk's scratch arena. */
static const char *keep_str(q_t *q, const char *s)
{
    return s ? stt_arena_strndup(q->arena, s, strlen(s)) : "";
}

/* JS reduce of the pending kvs into one partial reduction. */
static int js_flush(q_t *q)
{
    if (!q->njskvs) return 0;
    stt_buf_appendc(&q->jskvs, ']');
    const char *src = q->dv->views[q->view].reduce;
    stt_qs_text_t fun = {src, strlen(src)};
    stt_json_t res;
    stt_qs_pool_t *pool = stt_index_pool();
    if (!pool) return STT_QS_E_PROCESS;
    int rc = stt_qs_reduce(pool, q->dv->lang, &fun, 1, (stt_qs_text_t){q->jskvs.base, q->jskvs.len}, &q->scratch, &res,
                           q->err);
    if (rc == STT_QS_E_ERROR && q->err->error && strcmp(q->err->error, "reduce_overflow_error") == 0) {
        /* CouchDB answers the group with an error row, not the request */
        q->overflow = keep_str(q, q->err->reason);
        memset(q->err, 0, sizeof(*q->err));
    } else if (rc) {
        return rc;
    }
    if (q->overflow) {
        stt_buf_reset(&q->jskvs);
        q->njskvs = 0;
        return 0;
    }
    stt_buf_append(&q->jsred, q->njsred++ ? "," : "[", 1);
    if (res.type == STT_JSON_ARRAY && res.len >= 1)
        stt_json_write(&q->jsred, &res.u.items[0]);
    else
        stt_buf_appends(&q->jsred, "null");
    stt_buf_reset(&q->jskvs);
    q->njskvs = 0;
    return 0;
}

static int group_end(q_t *q)
{
    if (!q->ingroup) return 0;
    q->ingroup = false;
    stt_buf_reset(&q->tmp);
    if (q->builtin) {
        stt__reducer_result(q->builtin, &q->tmp);
        stt__reducer_reset(q->builtin);
    } else {
        int rc = js_flush(q);
        if (rc) return rc;
        if (q->overflow) {
            stt_buf_reset(&q->jsred);
            q->njsred = 0;
        } else if (q->njsred == 1) {
            stt_buf_append(&q->tmp, q->jsred.base + 1, q->jsred.len - 1);
        } else {
            stt_buf_appendc(&q->jsred, ']');
            const char *src = q->dv->views[q->view].reduce;
            stt_qs_text_t fun = {src, strlen(src)};
            stt_json_t res;
            rc = stt_qs_rereduce(stt_index_pool(), q->dv->lang, &fun, 1, (stt_qs_text_t){q->jsred.base, q->jsred.len},
                                 &q->scratch, &res, q->err);
            if (rc == STT_QS_E_ERROR && q->err->error && strcmp(q->err->error, "reduce_overflow_error") == 0) {
                q->overflow = keep_str(q, q->err->reason);
                memset(q->err, 0, sizeof(*q->err));
            } else if (rc) {
                return rc;
            } else if (res.type == STT_JSON_ARRAY && res.len >= 1)
                stt_json_write(&q->tmp, &res.u.items[0]);
            else
                stt_buf_appends(&q->tmp, "null");
        }
        stt_buf_reset(&q->jsred);
        q->njsred = 0;
    }
    if (q->skip) {
        q->skip--;
        return 0;
    }
    if (q->limit == 0) {
        q->stop = true;
        return 0;
    }
    q->limit--;
    row_sep(q);
    if (q->overflow) {
        stt_buf_appends(q->out, "{\"error\":\"reduce_overflow_error\",\"reason\":");
        stt_json_write_cstr(q->out, q->overflow);
        stt_buf_appendc(q->out, '}');
        q->overflow = NULL;
        return 0;
    }
    stt_buf_appends(q->out, "{\"key\":");
    if (q->level == 0)
        stt_buf_appends(q->out, "null");
    else
        stt_buf_append(q->out, q->gkeyjson.base, q->gkeyjson.len);
    stt_buf_appends(q->out, ",\"value\":");
    stt_buf_append(q->out, q->tmp.base, q->tmp.len);
    stt_buf_appendc(q->out, '}');
    return 0;
}

/* Folds one row into its group. JSON is parsed only where it matters: the key
 * for group_level over an array key, the value for _sum and _stats; _count,
 * _approx_count_distinct and exact grouping work on the encoded key. */
static int reduce_row(q_t *q, const char *enc, size_t enclen, const stt__row_t *row)
{
    stt_arena_t a = STT_ARENA_INIT;
    int rc = 0;
    /* the group this row belongs to: its encoding (ge) and, when new, its JSON */
    stt_buf_t ge = STT_BUF_INIT, gj = STT_BUF_INIT;
    const char *gp = NULL;
    size_t gl = 0;
    bool truncate = q->level > 0 && row->keylen && row->key[0] == '[';
    if (truncate) {
        stt_json_t key;
        if (stt_json_parse(&a, row->key, row->keylen, &key, NULL, 0)) goto exit;
        if (key.len > (uint32_t)q->level) key.len = (uint32_t)q->level;
        stt_key_encode(&ge, &key, q->dv->views[q->view].raw);
        stt_json_write(&gj, &key);
        gp = ge.base;
        gl = ge.len;
    } else if (q->level != 0) {
        gp = enc;
        gl = enclen;
    }
    if (q->ingroup && bcmp_(gp, gl, q->gkey.base, q->gkey.len) != 0) rc = group_end(q);
    if (rc == 0 && !q->stop && !q->ingroup) {
        q->ingroup = true;
        stt_buf_reset(&q->gkey);
        stt_buf_append(&q->gkey, gp, gl);
        stt_buf_reset(&q->gkeyjson);
        if (truncate)
            stt_buf_append(&q->gkeyjson, gj.base, gj.len);
        else
            stt_buf_append(&q->gkeyjson, row->key, row->keylen);
    }
    if (rc || q->stop) goto exit;
    if (q->builtin) {
        const char *reason = NULL;
        stt_json_t val = {.type = STT_JSON_NULL};
        const char *name = q->dv->views[q->view].reduce;
        if ((strcmp(name, "_sum") == 0 || strcmp(name, "_stats") == 0) &&
            stt_json_parse(&a, row->value, row->valuelen, &val, NULL, 0))
            goto exit;
        rc = stt__reducer_add(q->builtin, NULL, enc, enclen, &val, q->arena, &reason);
        if (rc) {
            q->err->status = 500;
            q->err->error = "invalid_value";
            q->err->reason = reason;
        }
    } else {
        stt_buf_appends(&q->jskvs, q->njskvs++ ? ",[[" : "[[[");
        stt_buf_append(&q->jskvs, row->key, row->keylen);
        stt_buf_appendc(&q->jskvs, ',');
        stt_json_write_str(&q->jskvs, row->id, row->idlen);
        stt_buf_appends(&q->jskvs, "],");
        stt_buf_append(&q->jskvs, row->value, row->valuelen);
        stt_buf_appendc(&q->jskvs, ']');
        if (q->njskvs >= JS_CHUNK) rc = js_flush(q);
    }
exit:
    stt_buf_free(&ge);
    stt_buf_free(&gj);
    stt_arena_free(&a);
    return rc;
}

/* One stored row (k, v) to the map or reduce side. */
static int one_row(q_t *q, const char *k, size_t kl, const char *v, size_t vl)
{
    stt__row_t row;
    if (stt__row_decode(v, vl, &row) != 0 || kl < 18 + row.idlen + 5) return 0;
    int rc = q->reducing ? reduce_row(q, k + 18, kl - 18 - row.idlen - 5, &row) : map_row(q, &row);
    if (rc == 0 && !q->reducing && q->limit == 0 && !q->skip) q->stop = true;
    return rc;
}

/* A descending scan meets one doc's rows of one key (they differ only in the
 * 4-byte position that ends the row key) last position first. CouchDB keeps such
 * rows in one btree entry and expands it in ascending order whatever the
 * direction (couch_mrview_util:expand_dups), so they are held here and given in
 * ascending position order. held: [klen][k][vlen][v] entries. */
typedef struct {
    stt_buf_t held;
    size_t n;
} dups_t;

static int dups_flush(q_t *q, dups_t *d)
{
    typedef struct {
        const char *k, *v;
        size_t kl, vl;
    } ent_t;
    ent_t *e = stt_xmalloc((d->n ? d->n : 1) * sizeof(*e));
    const unsigned char *p = (const unsigned char *)d->held.base, *end = p + d->held.len;
    size_t n = 0;
    uint64_t kl, vl;
    while (n < d->n && stt_varint_read(&p, end, &kl) == 0 && kl <= (uint64_t)(end - p)) {
        e[n].k = (const char *)p;
        e[n].kl = kl;
        p += kl;
        if (stt_varint_read(&p, end, &vl) || vl > (uint64_t)(end - p)) break;
        e[n].v = (const char *)p;
        e[n++].vl = vl;
        p += vl;
    }
    int rc = 0;
    for (size_t i = n; i-- > 0 && rc == 0 && !q->stop;)
        rc = one_row(q, e[i].k, e[i].kl, e[i].v, e[i].vl);
    free(e);
    stt_buf_reset(&d->held);
    d->n = 0;
    return rc;
}

/* Rows in [lo, hi) in the query's direction, from where the last chunk
 * stopped: 1 when this chunk is full (the iterator stays on the first row not
 * read yet), 0 at the range's end, or an error. */
static int scan(q_t *q, const range_t *r)
{
    bool desc = q->a->descending;
    if (!q->positioned) {
        q->positioned = true;
        if (bcmp_(r->lo.base, r->lo.len, r->hi.base, r->hi.len) >= 0) return 0;
        if (!desc) {
            stt_ikv_seek(q->it, r->lo.base, r->lo.len);
        } else {
            stt_ikv_seek_le(q->it, r->hi.base, r->hi.len);
            size_t kl;
            if (stt_ikv_valid(q->it)) {
                const char *k = stt_ikv_key(q->it, &kl);
                if (bcmp_(k, kl, r->hi.base, r->hi.len) >= 0) stt_ikv_prev(q->it);
            }
        }
    } else if (bcmp_(r->lo.base, r->lo.len, r->hi.base, r->hi.len) >= 0) {
        return 0;
    }
    dups_t d = {q->held, q->nheld};
    int rc = 0;
    for (; rc == 0 && !q->stop && stt_ikv_valid(q->it); desc ? stt_ikv_prev(q->it) : stt_ikv_next(q->it)) {
        if (q->out->len >= q->want) {
            rc = 1;
            break;
        }
        size_t kl, vl;
        const char *k = stt_ikv_key(q->it, &kl);
        if (!desc && bcmp_(k, kl, r->hi.base, r->hi.len) >= 0) break;
        if (desc && bcmp_(k, kl, r->lo.base, r->lo.len) < 0) break;
        const char *v = stt_ikv_value(q->it, &vl);
        if (!desc || kl < 4) {
            rc = one_row(q, k, kl, v, vl);
            continue;
        }
        if (d.n && bcmp_(k, kl - 4, q->heldkey.base, q->heldkey.len) != 0) rc = dups_flush(q, &d);
        if (rc || q->stop) break;
        if (!d.n) {
            stt_buf_reset(&q->heldkey);
            stt_buf_append(&q->heldkey, k, kl - 4);
        }
        stt_buf_append_varint(&d.held, kl);
        stt_buf_append(&d.held, k, kl);
        stt_buf_append_varint(&d.held, vl);
        stt_buf_append(&d.held, v, vl);
        d.n++;
    }
    if (rc == 0 && d.n) rc = dups_flush(q, &d);
    q->held = d.held;
    q->nheld = d.n;
    return rc;
}

/* Rows of the view whose key is below bound (a full row-space key): the rows
 * of the fences before it plus a scan from the last fence at or below it
 * (fence.c). An index without fences scans from the view's start. */
static uint64_t rows_below(q_t *q, const stt__index_header_t *h, const char *bound, size_t blen)
{
    stt_buf_t fence = STT_BUF_INIT, start = STT_BUF_INIT;
    uint64_t sum = stt__fences_below(q->it, q->dv->sig, h, q->view, bound + 17, blen - 17, &fence);
    if (fence.len) {
        stt__ikey(&start, IK_ROW, q->dv->sig);
        stt_buf_append(&start, fence.base, fence.len);
    } else {
        view_prefix(&start, q->dv, q->view);
    }
    for (stt_ikv_seek(q->it, start.base, start.len); stt_ikv_valid(q->it); stt_ikv_next(q->it)) {
        size_t kl;
        const char *k = stt_ikv_key(q->it, &kl);
        if (bcmp_(k, kl, bound, blen) >= 0) break;
        sum++;
    }
    stt_buf_free(&fence);
    stt_buf_free(&start);
    return sum;
}

/* Rows of the view before the first one the query reads, in its direction. */
static uint64_t count_before(q_t *q, const stt__index_header_t *h, const range_t *r, uint64_t total)
{
    if (!q->a->descending) return rows_below(q, h, r->lo.base, r->lo.len);
    uint64_t below = rows_below(q, h, r->hi.base, r->hi.len);
    return below > total ? 0 : total - below;
}

/* The header as of the query's snapshot, so that total_rows and the rows agree. */
static int header_at(q_t *q, stt__index_header_t *h)
{
    stt_buf_t k = STT_BUF_INIT;
    stt__ikey(&k, IK_HEADER, q->dv->sig);
    stt_ikv_seek(q->it, k.base, k.len);
    size_t kl, vl;
    memset(h, 0, sizeof(*h));
    int rc = STT_E_NOT_FOUND;
    if (stt_ikv_valid(q->it)) {
        const char *key = stt_ikv_key(q->it, &kl);
        if (kl == k.len && memcmp(key, k.base, kl) == 0) {
            const char *v = stt_ikv_value(q->it, &vl);
            rc = stt__index_header_decode(v, vl, h);
        }
    }
    stt_buf_free(&k);
    return rc;
}

/* ------------------------------------------------------------------ cursors */

/* A cursor is the scan's state between two chunks: q_t holds where it is (the
 * range, the iterator on its snapshot, a group being folded, held dups). */

struct stt_view_cursor {
    q_t q;
};

int stt_view_open(stt_db_t *db, const stt_ddoc_views_t *dv, int view, const stt_view_args_t *a, stt_arena_t *arena,
                  stt_buf_t *out, stt_view_cursor_t **cur, stt_qs_err_t *err)
{
    const stt_view_def_t *vd = &dv->views[view];
    int rc = 0;
    const stt_json_t *sk = a->key ? a->key : a->start, *ek = a->key ? a->key : a->end;
    bool native = strcmp(dv->lang, STT_INDEX_NATIVE_LANG) == 0; /* a Mango json index: no query server */
    if (!native && (!stt_index_pool() || !stt_qs_has_lang(stt_index_pool(), dv->lang))) {
        err->status = 500;
        err->error = "unknown_query_language";
        err->reason = dv->lang;
        return STT_QS_E_UNKNOWN_LANG;
    }
    if (a->update == STT_UPDATE_TRUE) {
        rc = stt_index_update(db, dv, arena, err);
        if (rc) return rc;
    }
    stt_view_cursor_t *c = stt_xcalloc(1, sizeof(*c));
    q_t *q = &c->q;
    *q = (q_t){.db = db, .dv = dv, .view = view, .a = a, .arena = arena, .out = out, .err = err};
    q->it = stt_ikv_iter_new(db);
    stt__index_header_t h;
    rc = header_at(q, &h);
    if (rc == STT_E_NOT_FOUND) rc = 0;
    if (rc) {
        stt_view_close(c);
        return rc;
    }
    q->skip = a->skip;
    q->limit = a->limit;
    q->seq = h.seq;
    q->reducing = vd->reduce && a->reduce;
    q->level = !q->reducing ? 0 : a->group_level > 0 ? a->group_level : a->group ? -1 : 0;
    if (q->reducing && stt_reduce_is_builtin(vd->reduce)) q->builtin = stt__reducer_new(vd->reduce);
    q->nranges = a->keys ? a->keys->len : 1;
    q->ranges = stt_xcalloc(q->nranges ? q->nranges : 1, sizeof(*q->ranges));
    for (size_t i = 0; i < q->nranges; i++) {
        /* with descending, keys= is read from its last key back */
        size_t ki = a->descending ? q->nranges - 1 - i : i;
        if (a->keys)
            make_range(&q->ranges[i], dv, view, &a->keys->u.items[ki], NULL, 0, &a->keys->u.items[ki], NULL, 0, true,
                       a->descending);
        else
            make_range(&q->ranges[i], dv, view, sk, a->start_docid, a->start_docidlen, ek, a->end_docid,
                       a->end_docidlen, a->key ? true : a->inclusive_end, a->descending);
    }
    uint64_t total = view < (int)h.nviews ? h.nrows[view] : 0;
    if (!q->reducing) {
        uint64_t off = q->nranges ? count_before(q, &h, &q->ranges[0], total) : 0;
        off += a->skip;
        if (off > total) off = total;
        stt_buf_appends(out, "{\"total_rows\":");
        stt_buf_append_u64(out, total);
        stt_buf_appends(out, ",\"offset\":");
        stt_buf_append_u64(out, off);
    } else {
        stt_buf_appendc(out, '{');
    }
    if (a->update_seq) {
        if (!q->reducing) stt_buf_appendc(out, ',');
        stt_buf_appends(out, "\"update_seq\":");
        if (a->fmt_seq)
            a->fmt_seq(out, h.seq);
        else
            stt_buf_append_u64(out, h.seq);
    }
    stt_buf_appends(out, !q->reducing || a->update_seq ? ",\"rows\":[" : "\"rows\":[");
    *cur = c;
    return 0;
}

int stt_view_next(stt_view_cursor_t *c, stt_buf_t *out, size_t want, stt_qs_err_t *err)
{
    q_t *q = &c->q;
    q->out = out;
    q->err = err;
    q->want = want;
    stt_arena_free(&q->scratch);
    int rc = 0;
    while (rc == 0 && q->phase == Q_ROWS) {
        if (q->ri == q->nranges || q->stop) {
            q->phase = Q_END;
            break;
        }
        rc = scan(q, &q->ranges[q->ri]);
        if (rc) break;
        /* each key of keys= is its own group */
        if (q->reducing && q->a->keys) rc = group_end(q);
        q->ri++;
        q->positioned = false;
    }
    if (rc == 1) return 1; /* the chunk is full */
    if (rc == 0 && q->phase == Q_END) {
        if (q->reducing && !q->stop) rc = group_end(q);
        if (rc == 0) {
            stt_buf_appends(out, q->nout ? "\r\n]}\n" : "]}\n");
            q->phase = Q_DONE;
        }
    }
    if (rc < 0) {
        /* the strings of a query-server error may live in this chunk's arena */
        if (err->error) err->error = keep_str(q, err->error);
        if (err->reason) err->reason = keep_str(q, err->reason);
    }
    return rc;
}

void stt_view_close(stt_view_cursor_t *c)
{
    if (!c) return;
    q_t *q = &c->q;
    for (size_t i = 0; i < q->nranges; i++) {
        stt_buf_free(&q->ranges[i].lo);
        stt_buf_free(&q->ranges[i].hi);
    }
    free(q->ranges);
    stt_ikv_iter_free(q->it);
    if (q->rd) stt_reader_close(q->rd);
    stt__reducer_free(q->builtin);
    stt_buf_free(&q->gkey);
    stt_buf_free(&q->gkeyjson);
    stt_buf_free(&q->jskvs);
    stt_buf_free(&q->jsred);
    stt_buf_free(&q->tmp);
    stt_buf_free(&q->held);
    stt_buf_free(&q->heldkey);
    stt_arena_free(&q->scratch);
    free(c);
}
