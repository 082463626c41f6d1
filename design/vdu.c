/* validate_doc_update: which design docs of a database carry one (a cache), and
 * running them over a batch of writes.
 *
 * The cache maps a database (by stt_db_id, so a re-created name starts afresh) to
 * its validator set, or to "none". Every write asks it, so a database without
 * validators costs one lookup under a mutex. An entry is dropped when a design doc
 * of its database is committed (stt_design_changed). A miss reads the design docs
 * on one snapshot; a generation counter, bumped by every drop, keeps a reader that
 * raced with a design doc write from caching what it read before that write.
 *
 * Running: CouchDB calls every validator for every doc, in design-doc id order,
 * and the first refusal is the doc's answer (couch_db:validate_doc_update_int). */
#include "design/design.h"
#include "replication/replication.h"
#include "src/common/err.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ the cache */

#define NBUCKETS 1024
#define MAX_ENTRIES 16384 /* past this the cache starts over: bounded memory */

typedef struct entry {
    uint64_t dbid;
    stt_vdu_set_t *set; /* NULL: the db has no validators */
    struct entry *next;
} entry_t;

static struct {
    pthread_mutex_t lock;
    entry_t *buckets[NBUCKETS];
    size_t n;
    uint64_t gen;
} C = {.lock = PTHREAD_MUTEX_INITIALIZER};

void stt_vdu_set_release(stt_vdu_set_t *s)
{
    if (!s || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
    for (size_t i = 0; i < s->n; i++) {
        free((char *)s->ddocs[i].id);
        free((char *)s->ddocs[i].rev);
        free((char *)s->ddocs[i].lang);
        free((char *)s->ddocs[i].json.s);
    }
    free(s->ddocs);
    free(s);
}

typedef struct {
    stt_reader_t *rd;
    stt_vdu_set_t *set;
    size_t cap;
} build_t;

static int on_ddoc(void *ctx, const stt_doc_summary_t *s)
{
    build_t *b = ctx;
    stt_doc_t d;
    if (stt_doc_from_summary(s, &d) != 0) return 0;
    stt_buf_t json = STT_BUF_INIT, rev = STT_BUF_INIT;
    stt_render_opts_t o = {0};
    stt_arena_t a = STT_ARENA_INIT;
    stt_json_t body;
    if (stt_doc_render(b->rd, &d, d.winner, &o, &json) == 0 &&
        stt_json_parse(&a, json.base, json.len, &body, NULL, 0) == 0) {
        const stt_json_t *f = stt_json_get(&body, "validate_doc_update");
        /* a validator that is not a string cannot be stored; skip what was */
        if (stt_json_is_str(f)) {
            if (b->set->n == b->cap) {
                b->cap = b->cap ? b->cap * 2 : 4;
                b->set->ddocs = stt_xrealloc(b->set->ddocs, b->cap * sizeof(*b->set->ddocs));
            }
            stt_qs_ddoc_t *q = &b->set->ddocs[b->set->n++];
            const stt_json_t *l = stt_json_get(&body, "language");
            stt_revtree_format(&d.tree, d.winner, &rev);
            q->id = stt_xstrndup(s->id, s->idlen);
            q->rev = stt_xstrndup(rev.base, rev.len);
            q->lang = stt_json_is_str(l) ? stt_xstrndup(l->u.s, l->len) : NULL;
            q->json.s = stt_xstrndup(json.base, json.len);
            q->json.len = json.len;
        }
    }
    stt_arena_free(&a);
    stt_buf_free(&json);
    stt_buf_free(&rev);
    stt_doc_free(&d);
    return 0;
}

static stt_vdu_set_t *build(stt_db_t *db)
{
    stt_vdu_set_t *set = stt_xcalloc(1, sizeof(*set));
    set->refs = 1;
    build_t b = {NULL, set, 0};
    if (stt_reader_open(db, &b.rd) != 0) return set;
    /* '0' follows '/': the range holds exactly the "_design/" ids */
    stt_range_t r = {.start = "_design/", .startlen = 8, .end = "_design0", .endlen = 8};
    stt_docs_scan(b.rd, &r, on_ddoc, &b);
    stt_reader_close(b.rd);
    return set;
}

static size_t bucket_of(uint64_t id)
{
    return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 54) % NBUCKETS;
}

/* Unlinks the entries of dbid (all of them when all) onto *drop; under the lock. */
static void unlink_entries(uint64_t dbid, bool all, entry_t **drop)
{
    for (size_t h = all ? 0 : bucket_of(dbid); h < (all ? NBUCKETS : bucket_of(dbid) + 1); h++) {
        entry_t **pp = &C.buckets[h];
        while (*pp) {
            entry_t *e = *pp;
            if (all || e->dbid == dbid) {
                *pp = e->next;
                e->next = *drop;
                *drop = e;
                C.n--;
            } else {
                pp = &e->next;
            }
        }
    }
}

static void free_entries(entry_t *drop)
{
    while (drop) {
        entry_t *e = drop;
        drop = e->next;
        stt_vdu_set_release(e->set);
        free(e);
    }
}

stt_vdu_set_t *stt_design_vdus(stt_db_t *db)
{
    uint64_t id = stt_db_id(db);
    size_t h = bucket_of(id);
    pthread_mutex_lock(&C.lock);
    for (entry_t *e = C.buckets[h]; e; e = e->next)
        if (e->dbid == id) {
            stt_vdu_set_t *s = e->set;
            if (s) __atomic_add_fetch(&s->refs, 1, __ATOMIC_ACQ_REL);
            pthread_mutex_unlock(&C.lock);
            return s;
        }
    uint64_t gen = C.gen;
    pthread_mutex_unlock(&C.lock);

    stt_vdu_set_t *set = build(db);
    if (!set->n) {
        stt_vdu_set_release(set);
        set = NULL;
    }
    entry_t *drop = NULL;
    pthread_mutex_lock(&C.lock);
    if (C.gen == gen) {
        /* start over rather than track use: entries are rebuilt on demand */
        if (C.n >= MAX_ENTRIES) unlink_entries(0, true, &drop);
        unlink_entries(id, false, &drop); /* another thread's build of the same db */
        entry_t *e = stt_xcalloc(1, sizeof(*e));
        e->dbid = id;
        e->set = set;
        if (set) __atomic_add_fetch(&set->refs, 1, __ATOMIC_ACQ_REL);
        e->next = C.buckets[h];
        C.buckets[h] = e;
        C.n++;
    }
    pthread_mutex_unlock(&C.lock);
    free_entries(drop);
    return set;
}

void stt_design_changed(stt_db_t *db)
{
    entry_t *drop = NULL;
    pthread_mutex_lock(&C.lock);
    C.gen++;
    unlink_entries(db ? stt_db_id(db) : 0, db == NULL, &drop);
    pthread_mutex_unlock(&C.lock);
    free_entries(drop);
}

/* ------------------------------------------------------------------ running */

static bool is_ddoc(const stt_doc_write_t *w)
{
    return w->idlen > 8 && memcmp(w->id, "_design/", 8) == 0;
}

bool stt_design_needs_validation(const stt_vdu_set_t *vdus, const stt_doc_write_t *docs, size_t n)
{
    if (vdus && vdus->n) return true;
    for (size_t i = 0; i < n; i++)
        if (is_ddoc(&docs[i]) && !docs[i].deleted) return true;
    return false;
}

/* newDoc as couch_doc:to_json_obj(Doc, [revs]) gives it before the new revision is
 * made: the rev an edit names (none for a creation), the replicated path, the
 * deletion flag, attachment stubs and the body. */
static void new_doc_json(const stt_doc_write_t *w, bool new_edits, stt_buf_t *b)
{
    stt_buf_appends(b, "{\"_id\":");
    stt_json_write_str(b, w->id, w->idlen);
    if (new_edits && w->has_prev) {
        stt_buf_appends(b, ",\"_rev\":\"");
        stt_rev_format(b, w->prev.gen, w->prev.id, w->prev.idlen);
        stt_buf_appends(b, "\",\"_revisions\":{\"start\":");
        stt_buf_append_u64(b, w->prev.gen);
        stt_buf_appends(b, ",\"ids\":[");
        stt_json_write_str(b, w->prev.id, w->prev.idlen);
        stt_buf_appends(b, "]}");
    } else if (!new_edits && w->npath) {
        stt_buf_appends(b, ",\"_rev\":\"");
        stt_rev_format(b, w->gen, w->path[0].id, w->path[0].idlen);
        stt_buf_appends(b, "\",\"_revisions\":{\"start\":");
        stt_buf_append_u64(b, w->gen);
        stt_buf_appends(b, ",\"ids\":[");
        for (size_t i = 0; i < w->npath; i++) {
            if (i) stt_buf_appendc(b, ',');
            stt_json_write_str(b, w->path[i].id, w->path[i].idlen);
        }
        stt_buf_appends(b, "]}");
    }
    if (w->deleted) stt_buf_appends(b, ",\"_deleted\":true");
    if (w->natts) {
        stt_buf_appends(b, ",\"_attachments\":{");
        for (size_t i = 0; i < w->natts; i++) {
            const stt_att_in_t *at = &w->atts[i];
            if (i) stt_buf_appendc(b, ',');
            stt_json_write_str(b, at->meta.name, at->meta.namelen);
            stt_buf_appends(b, ":{\"content_type\":");
            if (at->meta.content_type)
                stt_json_write_str(b, at->meta.content_type, at->meta.ctlen);
            else
                stt_buf_appends(b, "\"application/octet-stream\"");
            if (!at->stub) {
                stt_buf_appends(b, ",\"length\":");
                stt_buf_append_u64(b, at->datalen);
            }
            stt_buf_appends(b, ",\"stub\":true}");
        }
        stt_buf_appendc(b, '}');
    }
    /* the body's members after ours */
    const char *p = w->body, *end = w->body + w->bodylen;
    while (p < end && *p != '{')
        p++;
    if (p < end) p++;
    const char *q = p;
    while (q < end && (*q == ' ' || *q == '\n' || *q == '\t' || *q == '\r'))
        q++;
    if (q < end && *q != '}') stt_buf_appendc(b, ',');
    if (p < end)
        stt_buf_append(b, p, (size_t)(end - p));
    else
        stt_buf_appendc(b, '}');
}

/* oldDoc: the revision an edit replaces, or the leaf a replicated path extends */
static int old_doc_json(stt_reader_t *rd, const stt_doc_write_t *w, bool new_edits, stt_buf_t *b)
{
    stt_doc_t d;
    if (stt_doc_get(rd, w->id, w->idlen, &d) != 0) return -1;
    int node = -1;
    if (new_edits) {
        if (w->has_prev)
            node = stt_revtree_find(&d.tree, w->prev.gen, w->prev.id, w->prev.idlen);
        else if (!(d.tree.nodes[d.winner].flags & STT_REV_DELETED))
            node = d.winner;
    } else {
        for (size_t k = 1; node < 0 && k < w->npath && k < w->gen; k++) {
            int i = stt_revtree_find(&d.tree, w->gen - k, w->path[k].id, w->path[k].idlen);
            if (i >= 0 && (d.tree.nodes[i].flags & STT_REV_HAS_BODY)) node = i;
        }
    }
    stt_render_opts_t o = {0};
    int rc = node >= 0 && (d.tree.nodes[node].flags & STT_REV_HAS_BODY) ? stt_doc_render(rd, &d, node, &o, b) : -1;
    stt_doc_free(&d);
    return rc;
}

static void refuse(stt_doc_result_t *res, stt_arena_t *a, const stt_qs_err_t *e, int rc)
{
    if (rc == STT_QS_E_FORBIDDEN) {
        res->err = STT_E_FORBIDDEN;
    } else if (rc == STT_QS_E_UNAUTHORIZED) {
        res->err = STT_E_UNAUTHORIZED;
    } else {
        res->err = e->status == 400 ? STT_E_BAD_REQUEST : e->status == 404 ? STT_E_NOT_FOUND : STT_E_INTERNAL;
        res->error = e->error;
    }
    res->reason = e->reason ? e->reason : "";
}

#define VDU_CHUNK 100 /* docs per pipelined call */

/* Runs one validator over docs idx[0..n) (texts nt/ot), setting res of refused ones. */
static size_t run_validator(stt_qs_pool_t *qs, const stt_qs_ddoc_t *ddoc, const stt_vdu_ctx_t *ctx, const size_t *idx,
                            size_t n, const stt_qs_text_t *nt, const stt_qs_text_t *ot, stt_arena_t *a,
                            stt_doc_result_t *res)
{
    size_t refused = 0;
    int rcs[VDU_CHUNK];
    stt_qs_err_t errs[VDU_CHUNK];
    stt_qs_text_t cn[VDU_CHUNK], co[VDU_CHUNK];
    size_t ci[VDU_CHUNK];
    for (size_t from = 0; from < n;) {
        size_t m = 0;
        for (; from < n && m < VDU_CHUNK; from++) {
            if (res[idx[from]].err) continue; /* refused by an earlier validator */
            ci[m] = idx[from];
            cn[m] = nt[from];
            co[m++] = ot[from];
        }
        stt_qs_err_t e = {0};
        int rc = stt_qs_validate_many(qs, ddoc, cn, co, m, ctx->user_ctx, ctx->sec_obj, a, rcs, errs, &e);
        for (size_t i = 0; i < m; i++) {
            int r = rc;
            stt_qs_err_t *ei = &e;
            if (rc == 0) {
                r = rcs[i];
                ei = &errs[i];
            } else if (rc == STT_QS_E_ERROR || rc == STT_QS_E_COMPILE) {
                /* some doc made the function throw: find out which, one by one */
                r = stt_qs_validate(qs, ddoc, cn[i], co[i], ctx->user_ctx, ctx->sec_obj, a, &errs[i]);
                ei = &errs[i];
            }
            /* a timeout or a dead process answers for the whole chunk: running its
             * docs again would cost a timeout each */
            if (r) {
                refuse(&res[ci[i]], a, ei, r);
                refused++;
            }
        }
    }
    return refused;
}

size_t stt_design_validate_writes(stt_qs_pool_t *qs, stt_db_t *db, const stt_vdu_set_t *vdus, const stt_vdu_ctx_t *ctx,
                                  const stt_doc_write_t *docs, size_t n, bool new_edits, stt_arena_t *a,
                                  stt_doc_result_t *res)
{
    size_t refused = 0, nv = 0;
    size_t *idx = stt_arena_alloc(a, (n ? n : 1) * sizeof(*idx));
    for (size_t i = 0; i < n; i++) {
        const stt_doc_write_t *w = &docs[i];
        if (res[i].err) continue;
        if (is_ddoc(w)) {
            stt_qs_err_t e = {0};
            if (!w->deleted) {
                stt_json_t body;
                char *text = stt_arena_memdup(a, w->body, w->bodylen);
                if (stt_json_parse(a, text, w->bodylen, &body, NULL, 0) == 0 && body.type == STT_JSON_OBJECT &&
                    stt_design_check(qs, &body, a, &e) != 0) {
                    refuse(&res[i], a, &e, 0);
                    refused++;
                    continue;
                }
            }
            if (ctx->is_admin) continue;
        }
        idx[nv++] = i;
    }
    if (!vdus || !vdus->n || !nv) return refused;
    /* newDoc and oldDoc of each doc, read on one snapshot */
    stt_qs_text_t *nt = stt_arena_alloc(a, nv * sizeof(*nt)), *ot = stt_arena_alloc(a, nv * sizeof(*ot));
    stt_reader_t *rd = NULL;
    if (stt_reader_open(db, &rd) != 0) rd = NULL;
    stt_buf_t b = STT_BUF_INIT;
    for (size_t k = 0; k < nv; k++) {
        const stt_doc_write_t *w = &docs[idx[k]];
        stt_buf_reset(&b);
        new_doc_json(w, new_edits, &b);
        nt[k] = (stt_qs_text_t){stt_arena_memdup(a, b.base, b.len), b.len};
        stt_buf_reset(&b);
        if (rd && old_doc_json(rd, w, new_edits, &b) == 0)
            ot[k] = (stt_qs_text_t){stt_arena_memdup(a, b.base, b.len), b.len};
        else
            ot[k] = (stt_qs_text_t){NULL, 0};
    }
    stt_buf_free(&b);
    if (rd) stt_reader_close(rd);
    /* CouchDB runs every validator on every doc; the first refusal answers */
    for (size_t v = 0; v < vdus->n; v++)
        refused += run_validator(qs, &vdus->ddocs[v], ctx, idx, nv, nt, ot, a, res);
    return refused;
}
