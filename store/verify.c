/* Offline verification of a store: the invariants settee-check and the crash test
 * rely on, checked through the store's own read paths.
 *
 * What is and is not here: two listing primitives that the public read API lacks
 * (every doc id, deleted ones included; the stored attachments with their reference
 * counts), the per-database check (stt_db_verify) and the store-wide one
 * (stt_store_verify). It repairs nothing. The checks read through stt_doc_get,
 * stt_changes_scan, stt_docs_scan and stt_att_read, so what they vouch for is what
 * a reader of the public API sees; only the listings and the key ownership check
 * look at keys directly.
 *
 * Cost: each doc is read three times (from the by-seq pass, the id pass and, when
 * live, the stt_docs_scan pass), each attachment reference once, each stored
 * attachment once more; memory is one counter per distinct attachment digest of
 * the db being checked. Nothing grows with the number of docs. */
#include "store/store_int.h"
#include <leveldb/c.h>
#include "src/common/codec.h"
#include "src/common/err.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ listings */

int stt_doc_ids_scan(stt_reader_t *r, int (*fn)(void *ctx, const char *id, size_t idlen), void *ctx)
{
    leveldb_iterator_t *it = leveldb_create_iterator(r->db->store->ldb, r->ro);
    stt_buf_t pfx = STT_BUF_INIT;
    stt__key_db(&pfx, K_DOC, r->db->id);
    for (leveldb_iter_seek(it, pfx.base, pfx.len); leveldb_iter_valid(it); leveldb_iter_next(it)) {
        size_t klen;
        const char *k = leveldb_iter_key(it, &klen);
        if (klen < pfx.len || memcmp(k, pfx.base, pfx.len) != 0) break;
        if (fn(ctx, k + pfx.len, klen - pfx.len)) break;
    }
    char *lerr = NULL;
    leveldb_iter_get_error(it, &lerr);
    leveldb_iter_destroy(it);
    stt_buf_free(&pfx);
    if (lerr) {
        leveldb_free(lerr);
        return STT_E_IO;
    }
    return 0;
}

/* Reads the value of one key in the reader's snapshot: 1 found, 0 absent, or STT_E_IO. */
static int snap_get(stt_reader_t *r, const stt_buf_t *k, stt_buf_t *out)
{
    char *lerr = NULL;
    size_t vlen;
    char *v = leveldb_get(r->db->store->ldb, r->ro, k->base, k->len, &vlen, &lerr);
    if (lerr) {
        leveldb_free(lerr);
        return STT_E_IO;
    }
    if (!v) return 0;
    if (out) {
        stt_buf_reset(out);
        stt_buf_append(out, v, vlen);
    }
    leveldb_free(v);
    return 1;
}

/* Reference counts ('C') first, each with its bytes ('A') looked up; then bytes
 * that have no count (orphans). */
int stt_att_scan(stt_reader_t *r, int (*fn)(void *ctx, const stt_att_stored_t *a), void *ctx)
{
    stt_buf_t pfx = STT_BUF_INIT, k = STT_BUF_INIT, v = STT_BUF_INIT;
    int rc = 0, stop = 0;
    const char tags[] = {K_ATTREF, K_ATT};
    for (size_t t = 0; t < sizeof(tags) && !rc && !stop; t++) {
        stt__key_db(&pfx, tags[t], r->db->id);
        leveldb_iterator_t *it = leveldb_create_iterator(r->db->store->ldb, r->ro);
        for (leveldb_iter_seek(it, pfx.base, pfx.len); leveldb_iter_valid(it); leveldb_iter_next(it)) {
            size_t klen, vlen;
            const char *key = leveldb_iter_key(it, &klen);
            if (klen < pfx.len || memcmp(key, pfx.base, pfx.len) != 0) break;
            bool piece = tags[t] == K_ATT && klen == pfx.len + STT_DIGEST_LEN + 4;
            if (klen != pfx.len + STT_DIGEST_LEN && !piece) {
                rc = STT_E_IO;
                break;
            }
            /* a digest in pieces is reported once, at its first */
            if (piece && memcmp(key + pfx.len + STT_DIGEST_LEN, "\0\0\0\0", 4) != 0) continue;
            const char *val = leveldb_iter_value(it, &vlen);
            stt_att_stored_t a = {0};
            memcpy(a.digest, key + pfx.len, STT_DIGEST_LEN);
            if (tags[t] == K_ATTREF) {
                const unsigned char *p = (const unsigned char *)val;
                if (stt_varint_read(&p, p + vlen, &a.refs)) {
                    rc = STT_E_IO;
                    break;
                }
                if ((rc = stt__att_stored_len(r, a.digest, &a.has_bytes, &a.len)) != 0) break;
            } else {
                stt__key_att(&k, K_ATTREF, r->db->id, a.digest);
                int got = snap_get(r, &k, NULL);
                if (got < 0) {
                    rc = got;
                    break;
                }
                if (got == 1) continue; /* reported with its count */
                a.has_bytes = true;
                a.len = vlen;
                if (piece && (rc = stt__att_stored_len(r, a.digest, &a.has_bytes, &a.len)) != 0) break;
            }
            if (fn(ctx, &a)) {
                stop = 1;
                break;
            }
        }
        char *lerr = NULL;
        leveldb_iter_get_error(it, &lerr);
        if (lerr) {
            leveldb_free(lerr);
            rc = STT_E_IO;
        }
        leveldb_iter_destroy(it);
    }
    stt_buf_free(&pfx);
    stt_buf_free(&k);
    stt_buf_free(&v);
    return rc;
}

/* ------------------------------------------------------------------ faults */

typedef struct {
    stt_verify_t *v;
    uint64_t base; /* v->nfaults when the caller's call began: err takes fault number base */
    char *err;
    size_t errlen;
    const char *dbname;
    size_t dbnamelen;
} report_t;

static void fault(report_t *rp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fault(report_t *rp, const char *fmt, ...)
{
    char msg[1024];
    int n = rp->dbname ? snprintf(msg, sizeof(msg), "db %.*s: ", (int)rp->dbnamelen, rp->dbname)
                       : snprintf(msg, sizeof(msg), "store: ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
    va_end(ap);
    if (rp->v->nfaults++ == rp->base && rp->errlen) snprintf(rp->err, rp->errlen, "%s", msg);
    if (rp->v->on_fault) rp->v->on_fault(rp->v->ctx, msg);
}

/* Doc ids in messages: printable bytes as they are, others as \xNN, cut when long. */
static const char *show_id(const char *id, size_t idlen, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < idlen && o + 5 < outlen; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c >= 0x20 && c < 0x7f)
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
    }
    out[o] = '\0';
    return out;
}

/* ------------------------------------------------------------------ digest counts */

/* Open addressing: digest -> references counted over the leaves. */
typedef struct {
    unsigned char digest[STT_DIGEST_LEN];
    uint64_t count;
    bool used, seen;
} refslot_t;

typedef struct {
    refslot_t *slots;
    size_t cap, n;
} refmap_t;

static refslot_t *refmap_get(refmap_t *m, const unsigned char *digest, bool add)
{
    if (add && (m->n + 1) * 2 > m->cap) {
        refmap_t g = {stt_xcalloc(m->cap ? m->cap * 2 : 64, sizeof(refslot_t)), m->cap ? m->cap * 2 : 64, 0};
        for (size_t i = 0; i < m->cap; i++)
            if (m->slots[i].used) *refmap_get(&g, m->slots[i].digest, true) = m->slots[i];
        free(m->slots);
        *m = g;
    }
    if (!m->cap) return NULL;
    uint64_t h;
    memcpy(&h, digest, sizeof(h)); /* md5 bytes are uniform enough */
    size_t mask = m->cap - 1, i = (size_t)h & mask;
    while (m->slots[i].used) {
        if (memcmp(m->slots[i].digest, digest, STT_DIGEST_LEN) == 0) return &m->slots[i];
        i = (i + 1) & mask;
    }
    if (!add) return NULL;
    m->slots[i].used = true;
    memcpy(m->slots[i].digest, digest, STT_DIGEST_LEN);
    m->n++;
    return &m->slots[i];
}

/* ------------------------------------------------------------------ one database */

typedef struct {
    report_t rp;
    stt_reader_t *r;
    stt_db_info_t info;
    uint64_t nchanges, ndocs, nlive, ndeleted, nlisted, active, old, nkept, last_seq;
    refmap_t refs;
    stt_buf_t a, b; /* scratch */
} dbcheck_t;

/* The leaves of d in winner order must be exactly the summary's. */
static void check_summary(dbcheck_t *c, const stt_doc_t *d, const stt_doc_summary_t *s, const char *idshow)
{
    int *leaves = stt_xmalloc((d->tree.n ? d->tree.n : 1) * sizeof(int));
    size_t n = stt_revtree_leaves(&d->tree, leaves);
    bool wdel = n && (d->tree.nodes[leaves[0]].flags & STT_REV_DELETED);
    if (s->deleted != wdel)
        fault(&c->rp, "doc %s: by-seq entry says deleted=%d, the doc's winner says %d", idshow, s->deleted, wdel);
    if (s->nleaves != n) {
        fault(&c->rp, "doc %s: by-seq entry lists %zu leaves, the doc has %zu", idshow, s->nleaves, n);
    } else {
        for (size_t i = 0; i < n; i++) {
            stt_buf_reset(&c->a);
            stt_revtree_format(&d->tree, leaves[i], &c->a);
            bool del = (d->tree.nodes[leaves[i]].flags & STT_REV_DELETED) != 0;
            if (s->leaf_revlen[i] != c->a.len || memcmp(s->leaf_rev[i], c->a.base, c->a.len) != 0 ||
                s->leaf_deleted[i] != del) {
                fault(&c->rp, "doc %s: by-seq leaf %zu is %.*s%s, the doc's is %s%s", idshow, i, (int)s->leaf_revlen[i],
                      s->leaf_rev[i], s->leaf_deleted[i] ? " (deleted)" : "", c->a.base, del ? " (deleted)" : "");
                break;
            }
        }
    }
    free(leaves);
}

static int on_change(void *ctx, const stt_doc_summary_t *s)
{
    dbcheck_t *c = ctx;
    char idshow[160];
    show_id(s->id, s->idlen, idshow, sizeof(idshow));
    c->nchanges++;
    if (s->seq <= c->last_seq)
        fault(&c->rp, "by-seq index out of order: seq %llu after %llu", (unsigned long long)s->seq,
              (unsigned long long)c->last_seq);
    c->last_seq = s->seq;
    if (s->seq > c->info.update_seq)
        fault(&c->rp, "doc %s: by-seq entry at seq %llu beyond update_seq %llu", idshow, (unsigned long long)s->seq,
              (unsigned long long)c->info.update_seq);
    stt_doc_t d;
    int rc = stt_doc_get(c->r, s->id, s->idlen, &d);
    if (rc == STT_E_NOT_FOUND) {
        fault(&c->rp, "by-seq entry at seq %llu names doc %s, which does not exist", (unsigned long long)s->seq,
              idshow);
        return 0;
    }
    if (rc) {
        fault(&c->rp, "doc %s: cannot be read (error %d)", idshow, rc);
        return 0;
    }
    if (d.seq != s->seq)
        fault(&c->rp, "doc %s: by-seq entry at seq %llu, the doc's seq is %llu", idshow, (unsigned long long)s->seq,
              (unsigned long long)d.seq);
    else
        check_summary(c, &d, s, idshow);
    stt_doc_free(&d);
    return 0;
}

/* Bodies: every leaf has one in its record; a superseded revision may keep one
 * under its 'O' key (until compaction) exactly when its flag says so;
 * attachments read back. */
static void check_bodies(dbcheck_t *c, const stt_doc_t *d, const char *idshow)
{
    for (uint32_t i = 0; i < d->tree.n; i++) {
        bool leaf = stt_revtree_is_leaf(&d->tree, (int)i);
        bool flag = (d->tree.nodes[i].flags & STT_REV_HAS_BODY) != 0;
        stt_buf_reset(&c->a);
        stt_revtree_format(&d->tree, (int)i, &c->a);
        stt_rev_body_t b;
        int rc = stt_doc_body(d, (int)i, &b);
        if (!leaf) {
            if (!flag) continue;
            if (rc != 0) {
                fault(&c->rp, "doc %s: superseded %s is flagged with a body that cannot be read (error %d)", idshow,
                      c->a.base, rc);
                continue;
            }
            c->nkept++;
            c->old += b.jsonlen;
        } else {
            c->rp.v->nleaves++;
            stt_rev_body_t rb;
            bool in_record = stt__body_at(d, (int)i, &rb) == 0;
            if (in_record) stt_rev_body_free(&rb);
            if (!flag || rc != 0 || !in_record) {
                fault(&c->rp, "doc %s: leaf %s has no body in its record (flag %d, read %d)", idshow, c->a.base, flag,
                      rc);
                if (rc == 0) stt_rev_body_free(&b);
                continue;
            }
            c->active += b.jsonlen;
        }
        for (size_t k = 0; k < b.natts; k++) {
            const stt_att_t *at = &b.atts[k];
            refmap_get(&c->refs, at->digest, true)->count++;
            c->rp.v->natts++;
            stt_buf_reset(&c->b);
            rc = stt_att_read(c->r, at->digest, &c->b);
            if (rc) {
                fault(&c->rp, "doc %s: leaf %s: attachment %.*s cannot be read (error %d)", idshow, c->a.base,
                      (int)at->namelen, at->name, rc);
                continue;
            }
            /* the digest is the md5 of the bytes as stored (gzip-encoded or not) */
            unsigned char md5[STT_DIGEST_LEN];
            stt_md5(c->b.base, c->b.len, md5);
            uint64_t stored = at->encoding == STT_ATT_GZIP ? at->encoded_length : at->length;
            if (memcmp(md5, at->digest, STT_DIGEST_LEN) != 0 || c->b.len != stored)
                fault(&c->rp, "doc %s: leaf %s: attachment %.*s: %zu bytes stored, %llu expected, md5 %s", idshow,
                      c->a.base, (int)at->namelen, at->name, c->b.len, (unsigned long long)stored,
                      memcmp(md5, at->digest, STT_DIGEST_LEN) ? "differs" : "matches");
            if (at->encoding == STT_ATT_GZIP) {
                stt_buf_reset(&c->b);
                rc = stt_att_read_decoded(c->r, at, &c->b);
                if (rc || c->b.len != at->length)
                    fault(&c->rp,
                          "doc %s: leaf %s: attachment %.*s: gzip-encoded bytes decode to %zu bytes (error %d), "
                          "%llu expected",
                          idshow, c->a.base, (int)at->namelen, at->name, rc ? 0 : c->b.len, rc,
                          (unsigned long long)at->length);
            } else if (at->encoding != STT_ATT_IDENTITY) {
                fault(&c->rp, "doc %s: leaf %s: attachment %.*s: unknown encoding %u", idshow, c->a.base,
                      (int)at->namelen, at->name, at->encoding);
            }
        }
        stt_rev_body_free(&b);
    }
}

static int on_doc(void *ctx, const char *id, size_t idlen)
{
    dbcheck_t *c = ctx;
    char idshow[160], msg[256];
    show_id(id, idlen, idshow, sizeof(idshow));
    c->ndocs++;
    c->rp.v->ndocs++;
    stt_doc_t d;
    int rc = stt_doc_get(c->r, id, idlen, &d);
    if (rc) {
        fault(&c->rp, "doc %s: cannot be read (error %d)", idshow, rc);
        return 0;
    }
    if (stt_revtree_check(&d.tree, msg, sizeof(msg)) != 0) {
        fault(&c->rp, "doc %s: rev tree: %s", idshow, msg);
    } else if (d.tree.n == 0 || d.winner < 0) {
        fault(&c->rp, "doc %s: empty rev tree", idshow);
    } else {
        if (d.tree.nodes[d.winner].flags & STT_REV_DELETED)
            c->ndeleted++;
        else
            c->nlive++;
        if (d.seq == 0 || d.seq > c->info.update_seq)
            fault(&c->rp, "doc %s: seq %llu outside 1..update_seq %llu", idshow, (unsigned long long)d.seq,
                  (unsigned long long)c->info.update_seq);
        check_bodies(c, &d, idshow);
    }
    stt_doc_free(&d);
    return 0;
}

/* stt_docs_scan must list the live docs, each with its winner. */
static int on_listed(void *ctx, const stt_doc_summary_t *s)
{
    dbcheck_t *c = ctx;
    char idshow[160];
    show_id(s->id, s->idlen, idshow, sizeof(idshow));
    c->nlisted++;
    stt_doc_t d;
    int rc = stt_doc_get(c->r, s->id, s->idlen, &d);
    if (rc) {
        fault(&c->rp, "doc %s: listed by id but cannot be read (error %d)", idshow, rc);
        return 0;
    }
    stt_buf_reset(&c->a);
    if (d.winner >= 0) stt_revtree_format(&d.tree, d.winner, &c->a);
    bool del = d.winner < 0 || (d.tree.nodes[d.winner].flags & STT_REV_DELETED);
    if (del || s->deleted || s->nleaves != 1 || s->leaf_revlen[0] != c->a.len ||
        memcmp(s->leaf_rev[0], c->a.base, c->a.len) != 0 || s->seq != d.seq)
        fault(&c->rp, "doc %s: listed by id as %.*s at seq %llu, the doc's winner is %s%s at seq %llu", idshow,
              (int)s->leaf_revlen[0], s->leaf_rev[0], (unsigned long long)s->seq, c->a.base, del ? " (deleted)" : "",
              (unsigned long long)d.seq);
    stt_doc_free(&d);
    return 0;
}

static int on_att(void *ctx, const stt_att_stored_t *a)
{
    dbcheck_t *c = ctx;
    stt_buf_reset(&c->a);
    stt_att_digest_format(a->digest, &c->a);
    refslot_t *sl = refmap_get(&c->refs, a->digest, false);
    uint64_t counted = sl ? sl->count : 0;
    if (sl) sl->seen = true;
    if (!a->has_bytes)
        fault(&c->rp, "attachment %s: reference count %llu but no bytes", c->a.base, (unsigned long long)a->refs);
    else if (a->refs == 0 && counted == 0)
        c->rp.v->nunreferenced++;
    else if (a->refs == 0)
        fault(&c->rp, "attachment %s: %llu bytes kept without a reference count (leaves reference it %llu times)",
              c->a.base, (unsigned long long)a->len, (unsigned long long)counted);
    else if (a->refs != counted)
        fault(&c->rp, "attachment %s: reference count %llu, leaves reference it %llu times", c->a.base,
              (unsigned long long)a->refs, (unsigned long long)counted);
    return 0;
}

static int on_local(void *ctx, const char *id, size_t idlen, uint64_t rev, const char *body, size_t len)
{
    dbcheck_t *c = ctx;
    char idshow[160];
    c->rp.v->nlocal++;
    if (rev == 0) fault(&c->rp, "local doc %s: rev 0-0", show_id(id, idlen, idshow, sizeof(idshow)));
    return 0;
}

static int db_verify(stt_db_t *db, stt_verify_t *v, uint64_t base, char *err, size_t errlen)
{
    uint64_t faults_before = v->nfaults;
    dbcheck_t c = {.rp = {v, base, err, errlen, db->name, db->namelen}};
    stt_db_info(db, &c.info);
    stt_reader_open(db, &c.r);
    v->ndbs++;
    /* a scan that stops on a record it cannot read is one fault; the others go on */
    int rc;
    if ((rc = stt_changes_scan(c.r, 0, false, on_change, &c)) != 0)
        fault(&c.rp, "the by-seq scan stopped after seq %llu (error %d)", (unsigned long long)c.last_seq, rc);
    if ((rc = stt_doc_ids_scan(c.r, on_doc, &c)) != 0)
        fault(&c.rp, "the scan of doc ids stopped after %llu docs (error %d)", (unsigned long long)c.ndocs, rc);
    stt_range_t all = {0};
    if ((rc = stt_docs_scan(c.r, &all, on_listed, &c)) != 0)
        fault(&c.rp, "stt_docs_scan stopped after %llu docs (error %d)", (unsigned long long)c.nlisted, rc);
    if ((rc = stt_att_scan(c.r, on_att, &c)) != 0)
        fault(&c.rp, "the scan of stored attachments stopped (error %d)", rc);
    if ((rc = stt_local_scan(db, &all, on_local, &c)) != 0)
        fault(&c.rp, "the scan of local docs stopped (error %d)", rc);
    if (c.nchanges != c.ndocs)
        fault(&c.rp, "by-seq index has %llu entries for %llu docs", (unsigned long long)c.nchanges,
              (unsigned long long)c.ndocs);
    if (c.nlisted != c.nlive)
        fault(&c.rp, "stt_docs_scan lists %llu docs, %llu are live", (unsigned long long)c.nlisted,
              (unsigned long long)c.nlive);
    if (c.info.doc_count != c.nlive || c.info.doc_del_count != c.ndeleted)
        fault(&c.rp, "counters say doc_count %llu doc_del_count %llu, a scan counts %llu and %llu",
              (unsigned long long)c.info.doc_count, (unsigned long long)c.info.doc_del_count,
              (unsigned long long)c.nlive, (unsigned long long)c.ndeleted);
    if (c.info.active_size != c.active)
        fault(&c.rp, "active_size is %llu, leaf bodies add up to %llu", (unsigned long long)c.info.active_size,
              (unsigned long long)c.active);
    if (c.info.old_size != c.old)
        fault(&c.rp, "old_size is %llu, kept superseded bodies add up to %llu", (unsigned long long)c.info.old_size,
              (unsigned long long)c.old);
    uint64_t nold = 0;
    if ((rc = stt__old_keys_count(c.r, &nold)) != 0)
        fault(&c.rp, "the scan of superseded bodies stopped (error %d)", rc);
    else if (nold != c.nkept)
        fault(&c.rp, "%llu superseded bodies stored, %llu revisions are flagged with one", (unsigned long long)nold,
              (unsigned long long)c.nkept);
    for (size_t i = 0; i < c.refs.cap; i++) {
        refslot_t *sl = &c.refs.slots[i];
        if (sl->used && !sl->seen) {
            stt_buf_reset(&c.a);
            stt_att_digest_format(sl->digest, &c.a);
            fault(&c.rp, "attachment %s: referenced %llu times, no reference count kept", c.a.base,
                  (unsigned long long)sl->count);
        }
    }
    stt_reader_close(c.r);
    free(c.refs.slots);
    stt_buf_free(&c.a);
    stt_buf_free(&c.b);
    return v->nfaults > faults_before ? STT_E_INTERNAL : 0;
}

int stt_db_verify(stt_db_t *db, stt_verify_t *v, char *err, size_t errlen)
{
    stt_verify_t local = {0};
    if (!v) v = &local;
    return db_verify(db, v, v->nfaults, err, errlen);
}

/* ------------------------------------------------------------------ the whole store */

typedef struct {
    stt_store_t *s;
    stt_verify_t *v;
    uint64_t base;
    char *err;
    size_t errlen;
    uint64_t *ids; /* live database ids */
    size_t nids, capids;
} storecheck_t;

static int on_db(void *ctx, const char *name, size_t len)
{
    storecheck_t *c = ctx;
    stt_db_t *db;
    int rc = stt_db_open(c->s, name, len, &db);
    report_t rp = {c->v, c->base, c->err, c->errlen, name, len};
    if (rc) {
        fault(&rp, "cannot be opened (error %d)", rc);
        return 0;
    }
    if (c->nids == c->capids) {
        c->capids = c->capids ? c->capids * 2 : 16;
        c->ids = stt_xrealloc(c->ids, c->capids * sizeof(*c->ids));
    }
    c->ids[c->nids++] = db->id;
    db_verify(db, c->v, c->base, c->err, c->errlen);
    stt_db_release(db);
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Keys under a database id must belong to a live database or one awaiting its
 * sweep. One seek per (tag, id) present, not one step per key. */
static void check_key_owners(storecheck_t *c)
{
    stt_store_t *s = c->s;
    report_t rp = {c->v, c->base, c->err, c->errlen, NULL, 0};
    const char tags[] = {K_DOC, K_SEQ, K_LOCAL, K_ATT, K_ATTREF, K_OLD};
    stt__ldb_enter(s);
    leveldb_iterator_t *it = leveldb_create_iterator(s->ldb, s->ropts);
    stt_buf_t k = STT_BUF_INIT;
    for (size_t t = 0; t < sizeof(tags); t++) {
        uint64_t id = 0;
        for (;;) {
            stt__key_db(&k, tags[t], id);
            leveldb_iter_seek(it, k.base, k.len);
            if (!leveldb_iter_valid(it)) break;
            size_t klen;
            const char *key = leveldb_iter_key(it, &klen);
            if (klen < 1 || key[0] != tags[t]) break;
            if (klen < 9) {
                fault(&rp, "malformed key with tag '%c' (%zu bytes)", tags[t], klen);
                id = 0;
                break;
            }
            id = stt_be64(key + 1);
            bool live = c->nids && bsearch(&id, c->ids, c->nids, sizeof(*c->ids), cmp_u64) != NULL;
            if (!live) {
                stt_buf_t x = STT_BUF_INIT;
                stt__key_db(&x, K_SWEEP, id);
                char *lerr = NULL;
                size_t vlen;
                char *val = leveldb_get(s->ldb, s->ropts, x.base, x.len, &vlen, &lerr);
                stt_buf_free(&x);
                if (lerr) leveldb_free(lerr);
                if (val)
                    leveldb_free(val);
                else
                    fault(&rp, "keys with tag '%c' for database id %llu, which is neither live nor being swept",
                          tags[t], (unsigned long long)id);
            }
            if (id == UINT64_MAX) break;
            id++;
        }
    }
    stt_buf_free(&k);
    leveldb_iter_destroy(it);
    stt__ldb_leave(s);
    for (size_t i = 1; i < c->nids; i++)
        if (c->ids[i] == c->ids[i - 1]) fault(&rp, "two databases share id %llu", (unsigned long long)c->ids[i]);
    if (c->nids && c->ids[c->nids - 1] >= s->next_dbid)
        fault(&rp, "database id %llu is not below next_dbid %llu", (unsigned long long)c->ids[c->nids - 1],
              (unsigned long long)s->next_dbid);
}

int stt_store_verify(stt_store_t *s, stt_verify_t *v, char *err, size_t errlen)
{
    stt_verify_t local = {0};
    if (!v) v = &local;
    uint64_t faults_before = v->nfaults;
    stt_store_wait_sweeps(s);
    storecheck_t c = {.s = s, .v = v, .base = faults_before, .err = err, .errlen = errlen};
    stt_db_list(s, on_db, &c);
    if (c.nids) qsort(c.ids, c.nids, sizeof(*c.ids), cmp_u64);
    check_key_owners(&c);
    free(c.ids);
    return v->nfaults > faults_before ? STT_E_INTERNAL : 0;
}
