/* The per-user index of an access database (layout: access_int.h).
 *
 * stt_access_sync reads the by-seq index from the seq the index describes to the
 * db's update_seq and, per changed doc, moves its entries to its new seq: one per
 * principal its leaves name, and a removal entry for each principal that lost it;
 * and keeps the by-id entries of the principals that may read it. A user's
 * _changes (stt_access_changes_scan) is then a merge by seq of the entries of
 * their name and roles, their _all_docs (stt_access_docs_scan) a merge by id: the
 * cost follows the user's docs, not the database's. Syncs of one db are
 * serialized: the background indexer (indexer.c) usually runs them, and a reader
 * finds the index current or waits for the one running. */
#include "access/access_int.h"
#include "src/common/err.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Catch-ups of one db are serialized; those of dbs on different stripes run at
 * once (a large import into one db does not hold up the readers of another). */
#define SYNC_STRIPES 64
static pthread_mutex_t sync_locks[SYNC_STRIPES];
static pthread_once_t sync_once = PTHREAD_ONCE_INIT;

static void sync_locks_init(void)
{
    for (int i = 0; i < SYNC_STRIPES; i++)
        pthread_mutex_init(&sync_locks[i], NULL);
}

static pthread_mutex_t *sync_lock(stt_db_t *db)
{
    pthread_once(&sync_once, sync_locks_init);
    return &sync_locks[stt_db_id(db) % SYNC_STRIPES];
}

/* ------------------------------------------------------------------ keys */

static void key_header(stt_buf_t *k)
{
    stt_buf_reset(k);
    stt_buf_appendc(k, AK);
    stt_buf_appendc(k, AK_HEADER);
}

static void key_seq(stt_buf_t *k, const char *p, size_t plen, uint64_t seq)
{
    stt_buf_reset(k);
    stt_buf_appendc(k, AK);
    stt_buf_appendc(k, AK_SEQ);
    stt_buf_append_varint(k, plen);
    stt_buf_append(k, p, plen);
    stt_buf_append_be64(k, seq);
}

/* 'A' 'i' varint len, principal: the prefix of a principal's docs by id */
static void key_id_prefix(stt_buf_t *k, const char *p, size_t plen)
{
    stt_buf_reset(k);
    stt_buf_appendc(k, AK);
    stt_buf_appendc(k, AK_ID);
    stt_buf_append_varint(k, plen);
    stt_buf_append(k, p, plen);
}

static void key_doc(stt_buf_t *k, const char *id, size_t idlen)
{
    stt_buf_reset(k);
    stt_buf_appendc(k, AK);
    stt_buf_appendc(k, AK_DOC);
    stt_buf_append(k, id, idlen);
}

/* ------------------------------------------------------------------ one doc's principals */

typedef struct {
    const char *p;
    size_t len;
    bool removed;
} prin_t;

typedef struct {
    prin_t *v;
    size_t n, cap;
} prins_t;

static void prins_add(prins_t *ps, const char *p, size_t len, bool removed)
{
    for (size_t i = 0; i < ps->n; i++)
        if (ps->v[i].len == len && memcmp(ps->v[i].p, p, len) == 0) return;
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? ps->cap * 2 : 8;
        ps->v = stt_xrealloc(ps->v, ps->cap * sizeof(*ps->v));
    }
    ps->v[ps->n++] = (prin_t){p, len, removed};
}

static bool prins_has(const prins_t *ps, const char *p, size_t len)
{
    for (size_t i = 0; i < ps->n; i++)
        if (ps->v[i].len == len && memcmp(ps->v[i].p, p, len) == 0) return true;
    return false;
}

/* the 'd' value: be64 seq, varint n, per principal u8 removed, varint len, bytes;
 * the principals point into v. -1 when corrupt. */
static int doc_entry_decode(const char *v, size_t len, uint64_t *seq, prins_t *out)
{
    const unsigned char *p = (const unsigned char *)v, *end = p + len;
    if (len < 8) return -1;
    *seq = stt_be64(p);
    p += 8;
    uint64_t n;
    if (stt_varint_read(&p, end, &n)) return -1;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t l;
        if (p >= end) return -1;
        bool removed = *p++ != 0;
        if (stt_varint_read(&p, end, &l) || (uint64_t)(end - p) < l) return -1;
        prins_add(out, (const char *)p, l, removed);
        p += l;
    }
    return 0;
}

/* ------------------------------------------------------------------ sync */

typedef struct {
    stt_db_t *db;
    stt_reader_t *rd;
    stt_ikv_batch_t *b;
    size_t ndocs;
    uint64_t last;
    int rc;
    stt_buf_t k, v, old;
} sync_t;

static int flush(sync_t *sc)
{
    stt_buf_t k = STT_BUF_INIT, v = STT_BUF_INIT;
    key_header(&k);
    stt_buf_append_be64(&v, sc->last);
    stt_ikv_put(sc->b, k.base, k.len, v.base, v.len);
    stt_buf_free(&k);
    stt_buf_free(&v);
    int rc = stt_ikv_commit(sc->b);
    sc->b = stt_ikv_batch_new(sc->db);
    sc->ndocs = 0;
    return rc;
}

static int on_doc(void *ctx, const stt_doc_summary_t *s)
{
    sync_t *sc = ctx;
    sc->last = s->seq;
    if (stt__access_is_design(s->id, s->idlen)) return 0;
    stt_doc_t d; /* a by-seq summary has no record to decode (stt_docs_scan's only) */
    if (stt_doc_get(sc->rd, s->id, s->idlen, &d) != 0) return 0;
    stt_arena_t a = STT_ARENA_INIT;
    prins_t now = {0}, old = {0};
    /* the principals every leaf names now */
    size_t nl;
    int *leaves = stt__access_leaves(&d, &nl);
    for (size_t i = 0; i < nl; i++) {
        stt_rev_body_t b;
        if (stt_doc_body(&d, leaves[i], &b) != 0) continue;
        const stt_json_t *l = stt__access_list(&a, b.json, b.jsonlen);
        for (uint32_t j = 0; l && j < l->len; j++)
            if (l->u.items[j].type == STT_JSON_STRING) prins_add(&now, l->u.items[j].u.s, l->u.items[j].len, false);
        stt_rev_body_free(&b);
    }
    free(leaves);
    /* the entries the doc had: deleted, and those no leaf names become removals */
    key_doc(&sc->k, s->id, s->idlen);
    uint64_t oldseq = 0;
    int rc = stt_ikv_get(sc->db, sc->k.base, sc->k.len, &sc->old);
    if (rc == 0 && doc_entry_decode(sc->old.base, sc->old.len, &oldseq, &old) == 0) {
        stt_buf_t k = STT_BUF_INIT;
        for (size_t i = 0; i < old.n; i++) {
            key_seq(&k, old.v[i].p, old.v[i].len, oldseq);
            stt_ikv_del(sc->b, k.base, k.len);
            key_id_prefix(&k, old.v[i].p, old.v[i].len);
            stt_buf_append(&k, s->id, s->idlen);
            stt_ikv_del(sc->b, k.base, k.len);
            if (!prins_has(&now, old.v[i].p, old.v[i].len)) prins_add(&now, old.v[i].p, old.v[i].len, true);
        }
        stt_buf_free(&k);
    } else if (rc && rc != STT_E_NOT_FOUND) {
        sc->rc = rc;
    }
    stt_buf_reset(&sc->v);
    stt_buf_append_be64(&sc->v, s->seq);
    stt_buf_append_varint(&sc->v, now.n);
    stt_buf_t k = STT_BUF_INIT, v = STT_BUF_INIT;
    for (size_t i = 0; i < now.n; i++) {
        stt_buf_appendc(&sc->v, now.v[i].removed ? 1 : 0);
        stt_buf_append_varint(&sc->v, now.v[i].len);
        stt_buf_append(&sc->v, now.v[i].p, now.v[i].len);
        key_seq(&k, now.v[i].p, now.v[i].len, s->seq);
        stt_buf_reset(&v);
        stt_buf_appendc(&v, now.v[i].removed ? 1 : 0);
        stt_buf_append(&v, s->id, s->idlen);
        stt_ikv_put(sc->b, k.base, k.len, v.base, v.len);
        /* by id: the live docs (_all_docs lists no deleted doc) of who may read them */
        if (!now.v[i].removed && !(d.tree.nodes[d.winner].flags & STT_REV_DELETED)) {
            key_id_prefix(&k, now.v[i].p, now.v[i].len);
            stt_buf_append(&k, s->id, s->idlen);
            stt_ikv_put(sc->b, k.base, k.len, "", 0);
        }
    }
    key_doc(&sc->k, s->id, s->idlen);
    if (now.n)
        stt_ikv_put(sc->b, sc->k.base, sc->k.len, sc->v.base, sc->v.len);
    else
        stt_ikv_del(sc->b, sc->k.base, sc->k.len);
    stt_buf_free(&k);
    stt_buf_free(&v);
    free(now.v);
    free(old.v);
    stt_arena_free(&a);
    stt_doc_free(&d);
    if (++sc->ndocs >= 512 && (rc = flush(sc)) != 0) sc->rc = rc;
    return sc->rc != 0;
}

static uint64_t header_seq(stt_db_t *db)
{
    stt_buf_t k = STT_BUF_INIT, v = STT_BUF_INIT;
    key_header(&k);
    uint64_t seq = 0;
    if (stt_ikv_get(db, k.base, k.len, &v) == 0 && v.len == 8) seq = stt_be64(v.base);
    stt_buf_free(&k);
    stt_buf_free(&v);
    return seq;
}

int stt_access_sync(stt_db_t *db, uint64_t *upto)
{
    pthread_mutex_t *lock = sync_lock(db);
    pthread_mutex_lock(lock);
    uint64_t from = header_seq(db);
    stt_db_info_t in;
    stt_db_info(db, &in);
    int rc = 0;
    if (in.update_seq > from) {
        stt_reader_t *rd;
        if ((rc = stt_reader_open(db, &rd)) == 0) {
            sync_t sc = {.db = db, .rd = rd, .b = stt_ikv_batch_new(db), .last = from};
            stt_changes_scan(rd, from, false, on_doc, &sc);
            rc = sc.rc;
            /* the snapshot holds every change up to update_seq (purges leave gaps) */
            if (!rc && sc.last < in.update_seq) sc.last = in.update_seq;
            if (!rc) {
                rc = flush(&sc);
                from = sc.last;
            }
            stt_ikv_batch_free(sc.b);
            stt_buf_free(&sc.k);
            stt_buf_free(&sc.v);
            stt_buf_free(&sc.old);
            stt_reader_close(rd);
        }
    }
    pthread_mutex_unlock(lock);
    if (!rc) *upto = from;
    return rc;
}

/* ------------------------------------------------------------------ a user's changes */

typedef struct {
    stt_ikv_iter_t *it;
    stt_buf_t pfx; /* 'A' 's' varint len principal */
    bool valid;
    uint64_t seq;
    bool removed;
    const char *id;
    size_t idlen;
} cursor_t;

/* reads the entry under the iterator, or marks the cursor done when it left the
 * principal's entries or the seq range */
static void cur_read(cursor_t *c, uint64_t lo, uint64_t hi)
{
    c->valid = false;
    if (!stt_ikv_valid(c->it)) return;
    size_t kl, vl;
    const char *k = stt_ikv_key(c->it, &kl);
    if (kl != c->pfx.len + 8 || memcmp(k, c->pfx.base, c->pfx.len) != 0) return;
    c->seq = stt_be64(k + c->pfx.len);
    if (c->seq <= lo || c->seq > hi) return;
    const char *v = stt_ikv_value(c->it, &vl);
    if (vl < 1) return;
    c->removed = v[0] != 0;
    c->id = v + 1;
    c->idlen = vl - 1;
    c->valid = true;
}

int stt_access_changes_scan(const stt_access_t *acc, stt_reader_t *rd, uint64_t since, uint64_t upto, bool descending,
                            int (*fn)(void *ctx, const stt_doc_summary_t *s), void *ctx)
{
    const char *const *p;
    const size_t *plen;
    size_t np = stt__access_principals(acc, &p, &plen);
    stt_db_t *db = stt__access_db(acc);
    /* the range (lo, hi] of seqs to visit */
    uint64_t lo = descending ? 0 : since, hi = descending && since && since <= upto ? since - 1 : upto;
    if (descending && since && since > upto + 1) hi = upto;
    cursor_t *cs = stt_xcalloc(np ? np : 1, sizeof(*cs));
    stt_buf_t k = STT_BUF_INIT;
    for (size_t i = 0; i < np; i++) {
        cs[i].it = stt_ikv_iter_new(db);
        stt_buf_appendc(&cs[i].pfx, AK);
        stt_buf_appendc(&cs[i].pfx, AK_SEQ);
        stt_buf_append_varint(&cs[i].pfx, plen[i]);
        stt_buf_append(&cs[i].pfx, p[i], plen[i]);
        stt_buf_reset(&k);
        stt_buf_append(&k, cs[i].pfx.base, cs[i].pfx.len);
        if (descending) {
            stt_buf_append_be64(&k, hi);
            stt_ikv_seek_le(cs[i].it, k.base, k.len);
        } else {
            stt_buf_append_be64(&k, lo + 1);
            stt_ikv_seek(cs[i].it, k.base, k.len);
        }
        cur_read(&cs[i], lo, hi);
    }
    stt_buf_free(&k);
    int rc = 0;
    for (;;) {
        /* the next seq among the cursors; the entries there are one doc's */
        int best = -1;
        for (size_t i = 0; i < np; i++)
            if (cs[i].valid && (best < 0 || (descending ? cs[i].seq > cs[best].seq : cs[i].seq < cs[best].seq)))
                best = (int)i;
        if (best < 0) break;
        uint64_t seq = cs[best].seq;
        bool live = false;
        stt_buf_t id = STT_BUF_INIT;
        stt_buf_append(&id, cs[best].id, cs[best].idlen);
        for (size_t i = 0; i < np; i++) {
            if (!cs[i].valid || cs[i].seq != seq) continue;
            live |= !cs[i].removed;
            if (descending)
                stt_ikv_prev(cs[i].it);
            else
                stt_ikv_next(cs[i].it);
            cur_read(&cs[i], lo, hi);
        }
        /* the entry stands only while the doc is still at that seq in rd: a later
         * update has its own entry further on */
        stt_doc_t d;
        int stop = 0;
        if (stt_doc_get(rd, id.base, id.len, &d) == 0) {
            if (d.seq == seq) {
                stt_access_row_t row;
                if (!live || !stt_access_summary(acc, &d, &row)) stt__access_removed_row(&d, &row);
                row.s.seq = seq;
                stop = fn(ctx, &row.s);
                stt_access_row_free(&row);
            }
            stt_doc_free(&d);
        }
        stt_buf_free(&id);
        if (stop) {
            rc = 1;
            break;
        }
    }
    for (size_t i = 0; i < np; i++) {
        stt_ikv_iter_free(cs[i].it);
        stt_buf_free(&cs[i].pfx);
    }
    free(cs);
    return rc;
}

/* ------------------------------------------------------------------ a user's docs by id */

typedef struct {
    stt_ikv_iter_t *it;
    stt_buf_t pfx;
    bool valid;
    const char *id;
    size_t idlen;
} idcur_t;

static int bytes_cmp(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al > bl) - (al < bl);
}

/* the id under the cursor, or done when it left the principal or passed the range's end */
static void idcur_read(idcur_t *c, const stt_range_t *r)
{
    c->valid = false;
    if (!stt_ikv_valid(c->it)) return;
    size_t kl;
    const char *k = stt_ikv_key(c->it, &kl);
    if (kl < c->pfx.len || memcmp(k, c->pfx.base, c->pfx.len) != 0) return;
    c->id = k + c->pfx.len;
    c->idlen = kl - c->pfx.len;
    if (r->end) {
        int cmp = bytes_cmp(c->id, c->idlen, r->end, r->endlen);
        if (r->descending ? cmp < 0 || (cmp == 0 && !r->inclusive_end) : cmp > 0 || (cmp == 0 && !r->inclusive_end))
            return;
    }
    c->valid = true;
}

int stt_access_docs_scan(const stt_access_t *acc, stt_reader_t *rd, const stt_range_t *range,
                         int (*fn)(void *ctx, const stt_doc_summary_t *s, const stt_doc_t *d, int node), void *ctx)
{
    const char *const *p;
    const size_t *plen;
    size_t np = stt__access_principals(acc, &p, &plen);
    idcur_t *cs = stt_xcalloc(np ? np : 1, sizeof(*cs));
    stt_buf_t k = STT_BUF_INIT;
    for (size_t i = 0; i < np; i++) {
        cs[i].it = stt_ikv_iter_new(stt__access_db(acc));
        key_id_prefix(&cs[i].pfx, p[i], plen[i]);
        stt_buf_reset(&k);
        stt_buf_append(&k, cs[i].pfx.base, cs[i].pfx.len);
        if (range->start) stt_buf_append(&k, range->start, range->startlen);
        if (!range->descending) {
            stt_ikv_seek(cs[i].it, k.base, k.len);
        } else {
            if (!range->start) stt_buf_append(&k, "\xff\xff\xff\xff", 4); /* past any UTF-8 id */
            stt_ikv_seek_le(cs[i].it, k.base, k.len);
        }
        idcur_read(&cs[i], range);
    }
    stt_buf_free(&k);
    int rc = 0;
    stt_buf_t id = STT_BUF_INIT;
    for (;;) {
        int best = -1;
        for (size_t i = 0; i < np; i++) {
            if (!cs[i].valid) continue;
            if (best < 0) {
                best = (int)i;
                continue;
            }
            int c = bytes_cmp(cs[i].id, cs[i].idlen, cs[best].id, cs[best].idlen);
            if (range->descending ? c > 0 : c < 0) best = (int)i;
        }
        if (best < 0) break;
        stt_buf_reset(&id);
        stt_buf_append(&id, cs[best].id, cs[best].idlen);
        for (size_t i = 0; i < np; i++) { /* the same doc under other principals: once */
            if (!cs[i].valid || bytes_cmp(cs[i].id, cs[i].idlen, id.base, id.len) != 0) continue;
            if (range->descending)
                stt_ikv_prev(cs[i].it);
            else
                stt_ikv_next(cs[i].it);
            idcur_read(&cs[i], range);
        }
        /* the index names candidates; the doc as rd has it decides */
        stt_doc_t d;
        int stop = 0;
        if (stt_doc_get(rd, id.base, id.len, &d) == 0) {
            stt_access_row_t row;
            if (!(d.tree.nodes[d.winner].flags & STT_REV_DELETED) && stt_access_summary(acc, &d, &row)) {
                if (!row.s.deleted) stop = fn(ctx, &row.s, &d, row.node);
                stt_access_row_free(&row);
            }
            stt_doc_free(&d);
        }
        if (stop) {
            rc = 1;
            break;
        }
    }
    stt_buf_free(&id);
    for (size_t i = 0; i < np; i++) {
        stt_ikv_iter_free(cs[i].it);
        stt_buf_free(&cs[i].pfx);
    }
    free(cs);
    return rc;
}

bool stt_access_was_shared(const stt_access_t *acc, const char *id, size_t idlen)
{
    const char *const *p;
    const size_t *plen;
    size_t np = stt__access_principals(acc, &p, &plen);
    stt_buf_t k = STT_BUF_INIT, v = STT_BUF_INIT;
    key_doc(&k, id, idlen);
    bool removed = false, live = false;
    uint64_t seq;
    prins_t ps = {0};
    if (stt_ikv_get(stt__access_db(acc), k.base, k.len, &v) == 0 && doc_entry_decode(v.base, v.len, &seq, &ps) == 0)
        for (size_t i = 0; i < ps.n; i++)
            for (size_t j = 0; j < np; j++)
                if (ps.v[i].len == plen[j] && memcmp(ps.v[i].p, p[j], plen[j]) == 0) {
                    removed |= ps.v[i].removed;
                    live |= !ps.v[i].removed;
                }
    bool shared = removed && !live; /* had it through some principal, has it through none now */
    free(ps.v);
    stt_buf_free(&k);
    stt_buf_free(&v);
    return shared;
}

int stt_access_index_size(stt_db_t *db, uint64_t *bytes, uint64_t *entries)
{
    stt_ikv_iter_t *it = stt_ikv_iter_new(db);
    char pfx = AK;
    uint64_t b = 0, n = 0;
    for (stt_ikv_seek(it, &pfx, 1); stt_ikv_valid(it); stt_ikv_next(it)) {
        size_t kl, vl;
        const char *k = stt_ikv_key(it, &kl);
        if (kl < 2 || k[0] != AK) break;
        stt_ikv_value(it, &vl);
        b += kl + vl;
        n += k[1] == AK_SEQ;
    }
    stt_ikv_iter_free(it);
    *bytes = b;
    *entries = n;
    return 0;
}
