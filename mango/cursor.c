/* Running a planned query: the rows of the chosen json index in its key range
 * (brought up to date first unless update: false), or _all_docs in id order;
 * each doc read from one snapshot, matched against the whole selector,
 * skipped, projected to fields and sent, in chunks (a chunk ends when about
 * CHUNK bytes are out; the scan resumes strictly after the last row or id it
 * examined). Results come in index order, which is the sort order: the
 * planner only picks an index that can give it.
 *
 * execution_stats counts as CouchDB does: keys are the index rows (or ids)
 * examined, docs the docs read. Warnings are CouchDB's: use_index's, "No
 * matching index found..." when _all_docs serves the query, and the
 * index-scan warning when more than 10 docs were examined per result. */
#include "mango/mango_int.h"
#include "index/index.h"
#include "replication/replication.h"
#include "src/common/err.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHUNK (64 * 1024)
#define SCAN_WARNING_RATIO 10

static const char no_index_warning[] = "No matching index found, create an index to optimize query time.";
static const char scan_warning[] = "The number of documents examined is high in proportion to the number of results "
                                   "returned. Consider adding a more specific index to improve this.";

struct stt_mango_find {
    stt_arena_t arena;
    stt__query_t q;
    stt__plan_t p;
    bool planned;
    stt_db_t *db;
    stt_reader_t *rd;
    stt_ddoc_views_t dv;
    int view;
    stt_render_opts_t ro;
    struct timespec t0;
    uint64_t keys, docs, returned, skipped;
    /* where the scan resumes: an id (_all_docs) or the bounds of the rows */
    stt_buf_t last;
    bool have_last;
    stt_buf_t lo, hi;
    bool done, started, chunk_full;
    bool nothing; /* $or: [] or $and: [] at the top: no docs, no bookmark */
    stt_buf_t *out;
    stt_buf_t doc;      /* rendered winner, reused */
    stt_buf_t bookmark; /* JSON position of the last doc sent */
    /* _users read by a non-admin: only the caller's own user doc is visible */
    stt_buf_t only_id;
    bool only;
    stt_mango_pick_fn pick; /* per-document access: the revision the caller may read */
    void *pick_ctx;
};

/* ------------------------------------------------------------------ lifetime */

int stt_mango_find_new(const stt_json_t *body, stt_mango_find_t **out, stt_mango_err_t *err)
{
    stt_mango_find_t *f = stt_xcalloc(1, sizeof(*f));
    clock_gettime(CLOCK_MONOTONIC, &f->t0);
    /* the query keeps pointers into the body: it gets its own copy */
    stt_buf_t text = STT_BUF_INIT;
    stt_json_write(&text, body);
    stt_json_t *copy = stt_arena_alloc(&f->arena, sizeof(*copy));
    int rc = stt_json_parse(&f->arena, text.base, text.len, copy, NULL, 0);
    stt_buf_free(&text);
    if (rc == 0) rc = stt__query_parse(&f->arena, copy, &f->q, err);
    if (rc) {
        stt_arena_free(&f->arena);
        free(f);
        return rc;
    }
    f->ro.conflicts = f->q.conflicts;
    const stt_json_t *sel = f->q.selector_json;
    for (uint32_t i = 0; i < sel->len; i++) {
        const stt_json_member_t *m = &sel->u.members[i];
        if ((stt__str_is(m->key, m->keylen, "$or") || stt__str_is(m->key, m->keylen, "$and")) &&
            m->val.type == STT_JSON_ARRAY && m->val.len == 0)
            f->done = f->nothing = true;
    }
    *out = f;
    return 0;
}

void stt_mango_find_pick(stt_mango_find_t *f, stt_mango_pick_fn pick, void *ctx)
{
    f->pick = pick;
    f->pick_ctx = ctx;
}

void stt_mango_find_only(stt_mango_find_t *f, const char *id, size_t idlen)
{
    f->only = true;
    stt_buf_reset(&f->only_id);
    stt_buf_append(&f->only_id, id, idlen);
}

void stt_mango_find_free(stt_mango_find_t *f)
{
    if (!f) return;
    if (f->rd) stt_reader_close(f->rd);
    stt_buf_free(&f->last);
    stt_buf_free(&f->lo);
    stt_buf_free(&f->hi);
    stt_buf_free(&f->doc);
    stt_buf_free(&f->bookmark);
    stt_buf_free(&f->only_id);
    stt__plan_free(&f->p);
    stt__query_free(&f->q);
    stt_arena_free(&f->arena);
    free(f);
}

/* ------------------------------------------------------------------ key bounds */

/* The encoded key range of the plan over the index's rows: lo the first row
 * in, hi the first row out (index/collate.c: an array is 0x07, its items, 0x00;
 * 0xFF after a prefix passes every key that starts with it). */
static void row_bounds(stt_mango_find_t *f)
{
    const stt__plan_t *p = &f->p;
    stt_buf_appendc(&f->lo, 0x07);
    for (uint32_t i = 0; i < p->nranges; i++) {
        const stt__range_t *r = &p->ranges[i];
        stt_json_t null = {.type = STT_JSON_NULL};
        stt_key_encode(&f->lo, r->lo ? r->lo : &null, false);
    }
    stt_buf_appendc(&f->hi, 0x07);
    bool strict = false;
    for (uint32_t i = 0; i < p->nranges && !strict; i++) {
        const stt__range_t *r = &p->ranges[i];
        if (!r->hi) break;
        stt_key_encode(&f->hi, r->hi, false);
        strict = r->hi_strict;
    }
    if (!strict) stt_buf_appendc(&f->hi, (char)0xFF);
}

/* Resumes strictly after the bookmark's [key, id]. */
static int bookmark_bounds(stt_mango_find_t *f, stt_mango_err_t *err)
{
    const stt_json_t *b = &f->q.bookmark;
    bool ok = f->p.ix ? b->len == 2 && b->u.items[0].type == STT_JSON_ARRAY : b->len == 1;
    if (!ok)
        return stt__merr(err, 400, "invalid_bookmark", "Invalid bookmark value: %s",
                         stt__json_term(&f->arena, f->q.bookmark_str));
    const stt_json_t *id = &b->u.items[b->len - 1];
    if (!f->p.ix) {
        stt_buf_append(&f->last, id->u.s, id->len);
        f->have_last = true;
        return 0;
    }
    stt_buf_t *k = f->p.desc ? &f->hi : &f->lo;
    stt_buf_reset(k);
    stt_key_encode(k, &b->u.items[0], false);
    stt_buf_append(k, id->u.s, id->len);
    stt_buf_appendc(k, f->p.desc ? 0 : 1);
    return 0;
}

/* ------------------------------------------------------------------ start */

int stt_mango_find_start(stt_mango_find_t *f, stt_db_t *db, stt_mango_err_t *err)
{
    err->reason[0] = '\0';
    f->db = db;
    int rc = stt__plan(db, &f->arena, &f->q, &f->p, err);
    if (rc) return rc;
    f->planned = true;
    if (f->p.ix) {
        char *id = stt_arena_strndup(&f->arena, f->p.ix->ddoc, f->p.ix->ddoclen);
        rc = stt_ddoc_views_load(db, id, &f->arena, &f->dv);
        if (rc) return rc;
        f->view = stt_ddoc_view_find(&f->dv, f->p.ix->name, f->p.ix->namelen);
        if (f->view < 0) return STT_E_NOT_FOUND;
        if (f->q.update) {
            stt_qs_err_t qe = {0};
            rc = stt_index_update(db, &f->dv, &f->arena, &qe);
            if (rc) {
                if (qe.error)
                    return stt__merr(err, qe.status ? qe.status : 500, qe.error, "%s", qe.reason ? qe.reason : "");
                return rc;
            }
        }
        row_bounds(f);
    }
    if (f->q.have_bookmark && (rc = bookmark_bounds(f, err)) != 0) return rc;
    return stt_reader_open(db, &f->rd);
}

/* ------------------------------------------------------------------ projection */

/* The doc CouchDB's mango_fields:extract builds: for each field found, its value
 * set at its path in a new object (parents created as objects, keys in the order
 * first set; a field already holding a whole value is not entered again). */
typedef struct pnode pnode_t;
struct pnode {
    const char *key;
    size_t keylen;
    const stt_json_t *val; /* the whole value, or NULL for an object built of kids */
    pnode_t *kids, *last, *next;
};

static void write_pnode(stt_buf_t *out, const pnode_t *n)
{
    stt_buf_appendc(out, '{');
    for (const pnode_t *k = n->kids; k; k = k->next) {
        if (k != n->kids) stt_buf_appendc(out, ',');
        stt_json_write_str(out, k->key, k->keylen);
        stt_buf_appendc(out, ':');
        if (k->val)
            stt_json_write(out, k->val);
        else
            write_pnode(out, k);
    }
    stt_buf_appendc(out, '}');
}

/* Sets v at the path parts below n. */
static void pnode_set(stt_arena_t *a, pnode_t *n, const stt_field_part_t *parts, uint32_t nparts, const stt_json_t *v)
{
    for (uint32_t i = 0; i < nparts && !n->val; i++) {
        const stt_field_part_t *p = &parts[i];
        pnode_t *k = n->kids;
        while (k && !(k->keylen == p->len && memcmp(k->key, p->s, p->len) == 0))
            k = k->next;
        if (!k) {
            k = stt_arena_alloc(a, sizeof(*k));
            memset(k, 0, sizeof(*k));
            k->key = p->s, k->keylen = p->len;
            if (n->last)
                n->last->next = k;
            else
                n->kids = k;
            n->last = k;
        }
        if (i + 1 == nparts) {
            k->val = v; /* replaces what deeper fields set below it */
            k->kids = k->last = NULL;
        }
        n = k;
    }
}

static void project(stt_arena_t *a, const stt__query_t *q, const stt_json_t *doc, stt_buf_t *out)
{
    pnode_t root = {0};
    for (uint32_t f = 0; f < q->nfields; f++) {
        const stt__field_t *fl = &q->fields[f];
        const stt_json_t *v = fl->nparts ? stt_field_get(doc, fl->parts, fl->nparts) : NULL;
        if (v) pnode_set(a, &root, fl->parts, fl->nparts, v);
    }
    write_pnode(out, &root);
}

/* A covering index's doc, as CouchDB builds it from the row: _id and the
 * index's fields from the key. Its JSON goes to f->doc. */
static int doc_from_key(stt_mango_find_t *f, stt_arena_t *a, const char *id, size_t idlen, const char *key,
                        size_t keylen, stt_json_t *doc)
{
    stt_json_t k;
    if (stt_json_parse(a, key, keylen, &k, NULL, 0) != 0 || k.type != STT_JSON_ARRAY || k.len != f->p.ix->ncols)
        return -1;
    pnode_t root = {0};
    static const stt_field_part_t idpart = {"_id", 3};
    stt_json_t idv = stt_json_str(a, id, idlen);
    pnode_set(a, &root, &idpart, 1, &idv);
    for (uint32_t i = 0; i < k.len; i++)
        pnode_set(a, &root, f->p.ix->cols[i].parts, f->p.ix->cols[i].nparts, &k.u.items[i]);
    stt_buf_reset(&f->doc);
    write_pnode(&f->doc, &root);
    return stt_json_parse(a, f->doc.base, f->doc.len, doc, NULL, 0);
}

/* ------------------------------------------------------------------ examining docs */

static bool is_design(const char *id, size_t idlen)
{
    return idlen >= 8 && memcmp(id, "_design/", 8) == 0;
}

/* Reads, matches and maybe sends one doc. key: the index row's key JSON
 * (NULL in _all_docs). 1 when the chunk or the limit is full. */
static int examine(stt_mango_find_t *f, const stt_doc_summary_t *s, const char *id, size_t idlen, const char *key,
                   size_t keylen)
{
    if (f->returned >= f->q.limit) {
        f->done = true;
        return 1;
    }
    if (is_design(id, idlen)) return 0;
    if (f->only && (idlen != f->only_id.len || memcmp(id, f->only_id.base, idlen) != 0)) return 0;
    stt_arena_t a = STT_ARENA_INIT;
    stt_json_t doc;
    int stop = 0, node, rc;
    bool have = false, read = false;
    stt_doc_t d;
    if (key && f->p.covering && !f->pick) {
        have = doc_from_key(f, &a, id, idlen, key, keylen, &doc) == 0;
    } else {
        f->docs++;
        rc = s ? stt_doc_from_summary(s, &d) : -1;
        if (rc) rc = stt_doc_get(f->rd, id, idlen, &d);
        read = rc == 0;
        stt_buf_reset(&f->doc);
        if (read) node = f->pick ? f->pick(f->pick_ctx, &d) : stt_doc_select(&d, NULL, &node) == 0 ? node : -1;
        have = read && node >= 0 && stt_doc_render(f->rd, &d, node, &f->ro, &f->doc) == 0 &&
               stt_json_parse(&a, f->doc.base, f->doc.len, &doc, NULL, 0) == 0;
    }
    if (have && doc.type == STT_JSON_OBJECT && stt_selector_match(f->q.sel, &doc)) {
        /* a skipped match moves the position too, as in CouchDB */
        stt_buf_reset(&f->bookmark);
        stt_buf_appendc(&f->bookmark, '[');
        if (key) {
            stt_buf_append(&f->bookmark, key, keylen);
            stt_buf_appendc(&f->bookmark, ',');
        }
        stt_json_write_str(&f->bookmark, id, idlen);
        stt_buf_appendc(&f->bookmark, ']');
        if (f->skipped < f->q.skip) {
            f->skipped++;
        } else {
            stt_buf_t *out = f->out;
            if (f->returned++) stt_buf_appendc(out, ',');
            if (f->q.nfields)
                project(&a, &f->q, &doc, out);
            else
                stt_buf_append(out, f->doc.base, f->doc.len);
            if (out->len >= CHUNK) {
                f->chunk_full = true;
                stop = 1;
            }
        }
    }
    stt_arena_free(&a);
    if (read) stt_doc_free(&d);
    return stop;
}

static int on_doc(void *ctx, const stt_doc_summary_t *s)
{
    stt_mango_find_t *f = ctx;
    if (f->have_last && s->idlen == f->last.len && memcmp(s->id, f->last.base, s->idlen) == 0)
        return 0; /* where the previous chunk (or the bookmark) ended */
    if (f->returned >= f->q.limit) {
        f->done = true;
        return 1;
    }
    stt_buf_reset(&f->last);
    stt_buf_append(&f->last, s->id, s->idlen);
    f->have_last = true;
    if (!is_design(s->id, s->idlen)) f->keys++;
    return examine(f, s, s->id, s->idlen, NULL, 0);
}

static int on_row(void *ctx, const stt_index_row_t *row)
{
    stt_mango_find_t *f = ctx;
    if (f->returned >= f->q.limit) {
        f->done = true;
        return 1;
    }
    f->keys++;
    /* the next chunk starts strictly after this row */
    stt_buf_t *b = f->p.desc ? &f->hi : &f->lo;
    stt_buf_reset(b);
    stt_buf_append(b, row->rk, row->rklen);
    if (!f->p.desc) stt_buf_appendc(b, 0);
    return examine(f, NULL, row->id, row->idlen, row->key, row->keylen);
}

/* ------------------------------------------------------------------ output */

static double elapsed_ms(const stt_mango_find_t *f)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - f->t0.tv_sec) * 1e3 + (double)(t.tv_nsec - f->t0.tv_nsec) / 1e6;
}

static void tail(stt_mango_find_t *f, stt_buf_t *out)
{
    if (f->nothing) {
        stt_buf_appends(out, "]}\n");
        return;
    }
    stt_buf_appends(out, "],\"bookmark\":");
    if (f->bookmark.len) {
        stt_buf_appendc(out, '"');
        stt__bookmark_encode(out, f->bookmark.base, f->bookmark.len);
        stt_buf_appendc(out, '"');
    } else if (f->q.bookmark_str) {
        /* nothing new: the position stays where it was, as in CouchDB */
        stt_json_write(out, f->q.bookmark_str);
    } else {
        stt_buf_appends(out, "\"nil\"");
    }
    if (f->q.execution_stats)
        stt_buf_appendf(out,
                        ",\"execution_stats\":{\"total_keys_examined\":%llu,\"total_docs_examined\":%llu,"
                        "\"total_quorum_docs_examined\":0,\"results_returned\":%llu,\"execution_time_ms\":%.3f}",
                        (unsigned long long)f->keys, (unsigned long long)f->docs, (unsigned long long)f->returned,
                        elapsed_ms(f));
    stt_buf_t w = STT_BUF_INIT;
    if (f->p.warning.len) stt_buf_append(&w, f->p.warning.base, f->p.warning.len);
    if (!f->p.ix) {
        if (w.len) stt_buf_appendc(&w, '\n');
        stt_buf_appends(&w, no_index_warning);
    }
    bool over = f->returned ? f->docs > SCAN_WARNING_RATIO * f->returned : f->docs > SCAN_WARNING_RATIO;
    if (over) {
        if (w.len) stt_buf_appendc(&w, '\n');
        stt_buf_appends(&w, scan_warning);
    }
    if (w.len) {
        stt_buf_appends(out, ",\"warning\":");
        stt_json_write_str(out, w.base, w.len);
    }
    stt_buf_free(&w);
    stt_buf_appends(out, "}\n");
}

int stt_mango_find_next(stt_mango_find_t *f, stt_buf_t *out)
{
    f->out = out;
    if (!f->started) {
        f->started = true;
        stt_buf_appends(out, "{\"docs\":[");
    }
    if (!f->done) {
        f->chunk_full = false;
        int rc;
        if (f->p.ix) {
            rc = stt_index_rows(f->db, &f->dv, f->view, f->lo.base, f->lo.len, f->hi.base, f->hi.len, f->p.desc, on_row,
                                f);
        } else {
            stt_range_t rg = {.inclusive_end = true, .descending = f->p.desc};
            const stt_json_t *lo = f->p.id_lo, *hi = f->p.id_hi;
            if (f->p.desc) {
                const stt_json_t *t = lo;
                lo = hi, hi = t;
            }
            if (lo && lo->type == STT_JSON_STRING) rg.start = lo->u.s, rg.startlen = lo->len;
            if (hi && hi->type == STT_JSON_STRING) rg.end = hi->u.s, rg.endlen = hi->len;
            if (f->have_last) rg.start = f->last.base, rg.startlen = f->last.len;
            rc = stt_docs_scan(f->rd, &rg, on_doc, f);
        }
        if (rc == 0 && f->chunk_full && !f->done) return 1;
        f->done = true;
    }
    tail(f, out);
    return 0;
}

int stt_mango_explain(stt_mango_find_t *f, stt_db_t *db, stt_buf_t *out, stt_mango_err_t *err)
{
    err->reason[0] = '\0';
    return stt__explain(db, &f->arena, &f->q, &f->p, out, err);
}
