/* Reading: snapshots, doc records, the by-seq index and id-ordered scans.
 * Record formats are described in store_int.h. */
#include "store/store_int.h"
#include "src/common/stats.h"
#include <leveldb/c.h>
#include "src/common/codec.h"
#include "src/common/err.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------------ readers */

int stt_reader_open(stt_db_t *db, stt_reader_t **out)
{
    stt_reader_t *r = stt_xcalloc(1, sizeof(*r));
    r->refs = 1;
    r->db = db;
    /* held until close: a reopen after a write failure waits for no reader (space.c) */
    stt__ldb_enter(db->store);
    r->snap = leveldb_create_snapshot(db->store->ldb);
    r->ro = leveldb_readoptions_create();
    leveldb_readoptions_set_snapshot(r->ro, r->snap);
    *out = r;
    return 0;
}

stt_reader_t *stt_reader_retain(stt_reader_t *r)
{
    r->refs++;
    return r;
}

void stt_reader_close(stt_reader_t *r)
{
    if (!r || --r->refs > 0) return;
    leveldb_readoptions_destroy(r->ro);
    leveldb_release_snapshot(r->db->store->ldb, r->snap);
    stt__ldb_leave(r->db->store);
    free(r);
}

stt_db_t *stt_reader_db(stt_reader_t *r)
{
    return r->db;
}

/* ------------------------------------------------------------------ decoding */

typedef struct {
    const unsigned char *p, *end;
    int bad;
} cur_t;

static uint64_t rd_varint(cur_t *c)
{
    uint64_t v = 0;
    if (c->bad || stt_varint_read(&c->p, c->end, &v)) c->bad = 1;
    return v;
}

static const char *rd_bytes(cur_t *c, size_t n)
{
    if (c->bad || (size_t)(c->end - c->p) < n) {
        c->bad = 1;
        return NULL;
    }
    const char *s = (const char *)c->p;
    c->p += n;
    return s;
}

/* Head of a doc record: flags, seq, winner rev; leaves the cursor at the tree. */
static void rd_head(cur_t *c, bool *deleted, uint64_t *seq, const char **rev, size_t *revlen)
{
    const char *h = rd_bytes(c, 2);
    if (!h || h[0] != 1) {
        c->bad = 1;
        return;
    }
    *deleted = h[1] & 1;
    *seq = rd_varint(c);
    *revlen = rd_varint(c);
    *rev = rd_bytes(c, *revlen);
}

int stt__doc_decode(const char *v, size_t len, stt_doc_t *d)
{
    cur_t c = {(const unsigned char *)v, (const unsigned char *)v + len, 0};
    bool deleted;
    const char *rev;
    size_t revlen;
    memset(d, 0, sizeof(*d));
    rd_head(&c, &deleted, &d->seq, &rev, &revlen);
    size_t tlen = rd_varint(&c);
    const char *tree = rd_bytes(&c, tlen);
    if (c.bad || stt_revtree_decode(&d->tree, tree, tlen) != 0) return STT_E_IO;
    d->winner = stt_revtree_winner(&d->tree);
    d->_raw = (void *)v;
    d->_rawlen = len;
    return 0;
}

static int rd_atts(cur_t *c, stt_rev_body_t *out)
{
    out->natts = rd_varint(c);
    if (c->bad || out->natts > (size_t)(c->end - c->p)) return STT_E_IO;
    out->atts = out->natts ? stt_xcalloc(out->natts, sizeof(stt_att_t)) : NULL;
    for (size_t i = 0; i < out->natts; i++) {
        stt_att_t *a = &out->atts[i];
        a->namelen = rd_varint(c);
        a->name = rd_bytes(c, a->namelen);
        a->ctlen = rd_varint(c);
        a->content_type = rd_bytes(c, a->ctlen);
        a->revpos = rd_varint(c);
        a->length = rd_varint(c);
        const char *dg = rd_bytes(c, STT_DIGEST_LEN);
        const char *enc = rd_bytes(c, 1);
        a->encoded_length = rd_varint(c);
        if (c->bad) {
            free(out->atts);
            out->atts = NULL;
            return STT_E_IO;
        }
        memcpy(a->digest, dg, STT_DIGEST_LEN);
        a->encoding = (uint8_t)enc[0];
    }
    return 0;
}

int stt__body_at(const stt_doc_t *d, int node, stt_rev_body_t *out)
{
    cur_t c = {(const unsigned char *)d->_raw, (const unsigned char *)d->_raw + d->_rawlen, 0};
    bool deleted;
    uint64_t seq;
    const char *rev;
    size_t revlen;
    rd_head(&c, &deleted, &seq, &rev, &revlen);
    size_t tlen = rd_varint(&c);
    rd_bytes(&c, tlen);
    size_t nbodies = rd_varint(&c);
    for (size_t i = 0; i < nbodies && !c.bad; i++) {
        uint64_t n = rd_varint(&c);
        stt_rev_body_t b = {0};
        if (rd_atts(&c, &b) != 0) return STT_E_IO;
        b.jsonlen = rd_varint(&c);
        b.json = rd_bytes(&c, b.jsonlen);
        if (c.bad) {
            free(b.atts);
            return STT_E_IO;
        }
        if ((int)n == node) {
            *out = b;
            return 0;
        }
        free(b.atts);
    }
    return c.bad ? STT_E_IO : STT_E_NOT_FOUND;
}

int stt_doc_body(const stt_doc_t *d, int node, stt_rev_body_t *out)
{
    int rc = stt__body_at(d, node, out);
    if (rc != STT_E_NOT_FOUND || !d->_reader || node < 0 || (uint32_t)node >= d->tree.n ||
        !(d->tree.nodes[node].flags & STT_REV_HAS_BODY))
        return rc;
    rc = stt__old_body_get(d->_reader->db, d->_reader->ro, d->id, d->idlen, &d->tree, node, out);
    if (rc) return rc;
    /* the doc keeps the bytes, so that the body's strings live as long as a leaf
     * body's do: until stt_doc_free */
    stt_doc_t *m = (stt_doc_t *)d;
    m->_old = stt_xrealloc(m->_old, (m->_nold + 1) * sizeof(*m->_old));
    m->_old[m->_nold++] = out->_own;
    out->_own = NULL;
    return 0;
}

void stt_rev_body_free(stt_rev_body_t *b)
{
    free(b->atts);
    b->atts = NULL;
    if (b->_own) leveldb_free(b->_own);
    b->_own = NULL;
}

/* ------------------------------------------------------------------ point reads */

int stt_doc_get(stt_reader_t *r, const char *id, size_t idlen, stt_doc_t *out)
{
    stt_buf_t k = STT_BUF_INIT;
    stt__key_doc(&k, r->db->id, id, idlen);
    char *lerr = NULL;
    size_t vlen;
    char *v = leveldb_get(r->db->store->ldb, r->ro, k.base, k.len, &vlen, &lerr);
    stt_buf_free(&k);
    if (lerr) {
        leveldb_free(lerr);
        return STT_E_IO;
    }
    if (!v) return STT_E_NOT_FOUND;
    stt_stats_inc(STT_ST_DATABASE_READS);
    int rc = stt__doc_decode(v, vlen, out);
    if (rc) {
        leveldb_free(v);
        return rc;
    }
    out->id = id;
    out->idlen = idlen;
    out->_reader = r;
    return 0;
}

void stt_doc_free(stt_doc_t *d)
{
    for (size_t i = 0; i < d->_nold; i++)
        leveldb_free(d->_old[i]);
    free(d->_old);
    d->_old = NULL;
    d->_nold = 0;
    stt_revtree_free(&d->tree);
    if (d->_raw && !d->_borrowed) leveldb_free(d->_raw);
    d->_raw = NULL;
}

int stt_doc_from_summary(const stt_doc_summary_t *s, stt_doc_t *out)
{
    if (!s->_raw) return STT_E_NOT_FOUND;
    int rc = stt__doc_decode(s->_raw, s->_rawlen, out);
    if (rc) return rc;
    out->_borrowed = true;
    out->id = s->id;
    out->idlen = s->idlen;
    return 0;
}

/* ------------------------------------------------------------------ summaries */

typedef struct {
    const char *revs[1];
    size_t revlens[1];
    bool dels[1];
    /* growable for many leaves */
    const char **rv;
    size_t *rl;
    bool *dl;
    size_t cap;
} sumscratch_t;

static int summary_decode(const char *v, size_t len, stt_doc_summary_t *s, sumscratch_t *sc)
{
    cur_t c = {(const unsigned char *)v, (const unsigned char *)v + len, 0};
    s->idlen = rd_varint(&c);
    s->id = rd_bytes(&c, s->idlen);
    const char *f = rd_bytes(&c, 1);
    if (c.bad) return STT_E_IO;
    s->deleted = f[0] & 1;
    s->nleaves = rd_varint(&c);
    if (c.bad || s->nleaves == 0 || s->nleaves > len) return STT_E_IO;
    if (s->nleaves > sc->cap) {
        sc->cap = s->nleaves;
        sc->rv = stt_xrealloc(sc->rv, sc->cap * sizeof(*sc->rv));
        sc->rl = stt_xrealloc(sc->rl, sc->cap * sizeof(*sc->rl));
        sc->dl = stt_xrealloc(sc->dl, sc->cap * sizeof(*sc->dl));
    }
    for (size_t i = 0; i < s->nleaves; i++) {
        const char *d = rd_bytes(&c, 1);
        sc->rl[i] = rd_varint(&c);
        sc->rv[i] = rd_bytes(&c, sc->rl[i]);
        if (c.bad) return STT_E_IO;
        sc->dl[i] = d[0] & 1;
    }
    s->leaf_rev = sc->rv;
    s->leaf_revlen = sc->rl;
    s->leaf_deleted = sc->dl;
    return 0;
}

int stt_changes_scan(stt_reader_t *r, uint64_t since, bool descending, int (*fn)(void *ctx, const stt_doc_summary_t *s),
                     void *ctx)
{
    leveldb_iterator_t *it = leveldb_create_iterator(r->db->store->ldb, r->ro);
    stt_buf_t k = STT_BUF_INIT;
    sumscratch_t sc = {0};
    int rc = 0;
    if (!descending) {
        stt__key_seq(&k, r->db->id, since + 1);
        leveldb_iter_seek(it, k.base, k.len);
    } else {
        if (since == 0)
            stt__key_db(&k, K_SEQ, r->db->id + 1);
        else
            stt__key_seq(&k, r->db->id, since);
        leveldb_iter_seek(it, k.base, k.len);
        if (leveldb_iter_valid(it))
            leveldb_iter_prev(it);
        else
            leveldb_iter_seek_to_last(it);
    }
    for (; leveldb_iter_valid(it); descending ? leveldb_iter_prev(it) : leveldb_iter_next(it)) {
        size_t klen, vlen;
        const char *key = leveldb_iter_key(it, &klen);
        if (klen != 17 || key[0] != K_SEQ || stt_be64(key + 1) != r->db->id) break;
        const char *v = leveldb_iter_value(it, &vlen);
        stt_doc_summary_t s;
        if ((rc = summary_decode(v, vlen, &s, &sc)) != 0) break;
        s.seq = stt_be64(key + 9);
        if (fn(ctx, &s)) break;
    }
    leveldb_iter_destroy(it);
    stt_buf_free(&k);
    free(sc.rv);
    free(sc.rl);
    free(sc.dl);
    return rc;
}

int stt_docs_scan(stt_reader_t *r, const stt_range_t *range, int (*fn)(void *ctx, const stt_doc_summary_t *s),
                  void *ctx)
{
    leveldb_iterator_t *it = leveldb_create_iterator(r->db->store->ldb, r->ro);
    stt_buf_t k = STT_BUF_INIT;
    size_t pfx = 9;
    int rc = 0;
    const char *first = range->descending ? range->start : range->start;
    size_t firstlen = range->startlen;
    if (!range->descending) {
        stt__key_doc(&k, r->db->id, first ? first : "", first ? firstlen : 0);
        leveldb_iter_seek(it, k.base, k.len);
    } else {
        if (first) {
            /* position at the last key <= start */
            stt__key_doc(&k, r->db->id, first, firstlen);
            leveldb_iter_seek(it, k.base, k.len);
            if (!leveldb_iter_valid(it)) {
                leveldb_iter_seek_to_last(it);
            } else {
                size_t kl;
                const char *kk = leveldb_iter_key(it, &kl);
                if (!(kl == k.len && memcmp(kk, k.base, kl) == 0)) leveldb_iter_prev(it);
            }
        } else {
            stt__key_db(&k, K_DOC, r->db->id + 1);
            leveldb_iter_seek(it, k.base, k.len);
            if (leveldb_iter_valid(it))
                leveldb_iter_prev(it);
            else
                leveldb_iter_seek_to_last(it);
        }
    }
    stt_buf_t dk = STT_BUF_INIT;
    stt__key_db(&dk, K_DOC, r->db->id);
    for (; leveldb_iter_valid(it); range->descending ? leveldb_iter_prev(it) : leveldb_iter_next(it)) {
        size_t klen, vlen;
        const char *key = leveldb_iter_key(it, &klen);
        if (klen < pfx || memcmp(key, dk.base, pfx) != 0) break;
        const char *id = key + pfx;
        size_t idlen = klen - pfx;
        if (range->end) {
            size_t m = idlen < range->endlen ? idlen : range->endlen;
            int cmp = memcmp(id, range->end, m);
            if (cmp == 0) cmp = idlen < range->endlen ? -1 : idlen > range->endlen ? 1 : 0;
            if (range->descending) cmp = -cmp;
            if (cmp > 0 || (cmp == 0 && !range->inclusive_end)) break;
        }
        const char *v = leveldb_iter_value(it, &vlen);
        cur_t c = {(const unsigned char *)v, (const unsigned char *)v + vlen, 0};
        stt_doc_summary_t s = {.id = id, .idlen = idlen, .nleaves = 1, ._raw = v, ._rawlen = vlen};
        const char *rev;
        size_t revlen;
        rd_head(&c, &s.deleted, &s.seq, &rev, &revlen);
        if (c.bad) {
            rc = STT_E_IO;
            break;
        }
        if (s.deleted) continue;
        bool del = false;
        s.leaf_rev = &rev;
        s.leaf_revlen = &revlen;
        s.leaf_deleted = &del;
        if (fn(ctx, &s)) break;
    }
    stt_buf_free(&dk);
    leveldb_iter_destroy(it);
    stt_buf_free(&k);
    return rc;
}

/* ------------------------------------------------------------------ digests */

void stt_att_digest_format(const unsigned char *digest, stt_buf_t *out)
{
    stt_buf_appends(out, "md5-");
    stt_base64_encode(out, digest, STT_DIGEST_LEN);
}

int stt_att_digest_parse(const char *s, size_t len, unsigned char *digest)
{
    if (len < 4 || memcmp(s, "md5-", 4) != 0) return -1;
    stt_buf_t b = STT_BUF_INIT;
    int rc = stt_base64_decode(&b, s + 4, len - 4);
    if (rc == 0 && b.len == STT_DIGEST_LEN)
        memcpy(digest, b.base, STT_DIGEST_LEN);
    else
        rc = -1;
    stt_buf_free(&b);
    return rc;
}
