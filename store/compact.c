/* Compaction: what CouchDB's does, done in place. The bodies of superseded
 * revisions (kept under 'O' keys since they stopped being leaves) are deleted
 * with their attachment references, their nodes lose STT_REV_HAS_BODY ("missing"
 * in revs_info, as after a CouchDB compaction), and every tree is stemmed to the
 * db's current revs_limit (lowering _revs_limit leaves stored trees alone until
 * the doc is written again or the db is compacted).
 *
 * Two passes share the per-doc step. _compact walks every doc record in id order
 * (stemming needs them all). The automatic compaction (stt__maybe_autocompact)
 * walks only the 'O' keys, so its cost follows the superseded bodies, not the
 * size of the db. Both work in batches under the write lock, resuming after the
 * last key, so writers are held up for one batch at a time. Seqs do not change. */
#include "store/store_int.h"
#include "src/common/err.h"
#include <leveldb/c.h>
#include <stdlib.h>
#include <string.h>

#define COMPACT_BATCH 500

void stt_db_compact_begin(stt_db_t *db)
{
    pthread_mutex_lock(&db->wlock);
    db->compacting++;
    pthread_mutex_unlock(&db->wlock);
}

typedef struct {
    stt_db_t *db;
    leveldb_writebatch_t *wb;
    stt__refdrop_t refs;
    uint64_t freed; /* bytes of kept bodies deleted */
} pass_t;

/* Deletes d's kept bodies (a body stored for a node but not in the record) and
 * clears their flag in nt, the tree the record is rewritten with; a kept body of
 * a node that is a leaf of nt stays. 1 when nt changed, 0, or STT_E_IO. */
static int drop_kept(pass_t *p, const stt_doc_t *d, stt_revtree_t *nt)
{
    stt_store_t *s = p->db->store;
    stt_buf_t k = STT_BUF_INIT;
    int changed = 0;
    for (uint32_t i = 0; i < d->tree.n; i++) {
        const stt_rev_node_t *nd = &d->tree.nodes[i];
        if (!(nd->flags & STT_REV_HAS_BODY)) continue;
        stt_rev_body_t b;
        if (stt__body_at(d, (int)i, &b) == 0) {
            stt_rev_body_free(&b);
            continue;
        }
        const char *rid = stt_revtree_id(&d->tree, (int)i);
        int j = stt_revtree_find(nt, nd->gen, rid, nd->idlen);
        if (j >= 0 && stt_revtree_is_leaf(nt, j)) continue;
        stt__key_old(&k, p->db->id, d->id, d->idlen, nd->gen, rid, nd->idlen);
        char *lerr = NULL;
        size_t vlen;
        char *v = leveldb_get(s->ldb, s->ropts, k.base, k.len, &vlen, &lerr);
        if (lerr) {
            changed = stt__ldb_error(s, lerr, "compaction read", false);
            break;
        }
        if (v && stt__old_body_decode(v, vlen, &b) == 0) {
            for (size_t a = 0; a < b.natts; a++)
                stt__refdrop_add(&p->refs, b.atts[a].digest);
            p->freed += b.jsonlen;
            stt_rev_body_free(&b);
        }
        leveldb_writebatch_delete(p->wb, k.base, k.len);
        if (j >= 0) {
            nt->nodes[j].flags &= (uint8_t)~STT_REV_HAS_BODY;
            changed = 1;
        }
    }
    stt_buf_free(&k);
    return changed;
}

/* One doc: kept bodies dropped, tree stemmed (stem) and the record rewritten if
 * anything changed. key/klen: its 'D' key; v/vlen: its record. */
static int compact_doc(pass_t *p, const char *key, size_t klen, const char *v, size_t vlen, size_t pfx, bool stem)
{
    stt_doc_t d;
    if (stt__doc_decode(v, vlen, &d) != 0) return STT_E_IO;
    d.id = key + pfx;
    d.idlen = klen - pfx;
    d._borrowed = true;
    /* a copy to change, so that d's node indices stay valid for its bodies */
    stt_revtree_t nt = STT_REVTREE_INIT;
    stt_buf_t enc = STT_BUF_INIT;
    stt_revtree_encode(&d.tree, &enc);
    stt_revtree_decode(&nt, enc.base, enc.len);
    stt_buf_free(&enc);
    uint32_t before = nt.n;
    if (stem) stt_revtree_stem(&nt, p->db->revs_limit);
    int rc = drop_kept(p, &d, &nt);
    bool flags_changed = rc == 1;
    /* compacted away: a non-leaf revision's value is "missing" now */
    for (uint32_t i = 0; i < nt.n && rc >= 0; i++)
        if ((nt.nodes[i].flags & STT_REV_WRITTEN) && !stt_revtree_is_leaf(&nt, (int)i)) {
            nt.nodes[i].flags &= (uint8_t)~STT_REV_WRITTEN;
            flags_changed = true;
        }
    if (rc >= 0 && (nt.n != before || flags_changed)) {
        stt_buf_t rec = STT_BUF_INIT;
        stt__doc_reencode(&d, &nt, d.seq, &rec, NULL);
        leveldb_writebatch_put(p->wb, key, klen, rec.base, rec.len);
        stt_buf_free(&rec);
    }
    stt_revtree_free(&nt);
    stt_doc_free(&d);
    return rc < 0 ? rc : 0;
}

/* Ends a batch: references, counters and the changes in one synced write. */
static int finish_batch(pass_t *p)
{
    stt_db_t *db = p->db;
    int rc = stt__refdrop_apply(&p->refs, db, p->wb);
    uint64_t old_size = db->old_size;
    if (!rc) {
        db->old_size -= p->freed < db->old_size ? p->freed : db->old_size;
        stt__db_put_record(db, p->wb);
        char *lerr = NULL;
        leveldb_write(db->store->ldb, db->store->wsync, p->wb, &lerr);
        if (lerr) {
            db->old_size = old_size;
            rc = stt__ldb_error(db->store, lerr, "compaction", true);
        }
    }
    leveldb_writebatch_destroy(p->wb);
    stt__refdrop_free(&p->refs);
    p->wb = NULL;
    p->freed = 0;
    return rc;
}

int stt__compact_old_bodies(stt_db_t *db)
{
    stt_store_t *s = db->store;
    /* resume: the 'O' key prefix (after the db's) of the first doc not done yet */
    stt_buf_t resume = STT_BUF_INIT, cur = STT_BUF_INIT, k = STT_BUF_INIT, dk = STT_BUF_INIT;
    bool done = false;
    int rc = 0;
    while (!done && !rc) {
        /* compaction makes room: it passes the free-space floor */
        if ((rc = stt__write_begin(s, true)) != 0) break;
        pthread_mutex_lock(&db->wlock);
        if (db->deleted) {
            pthread_mutex_unlock(&db->wlock);
            break;
        }
        stt__ldb_enter(s);
        pass_t p = {.db = db, .wb = leveldb_writebatch_create()};
        leveldb_iterator_t *it = leveldb_create_iterator(s->ldb, s->ropts);
        stt__key_db(&k, K_OLD, db->id);
        size_t pfx = k.len;
        stt_buf_append(&k, resume.base, resume.len);
        leveldb_iter_seek(it, k.base, k.len);
        size_t n = 0;
        done = true;
        stt_buf_reset(&cur);
        for (; leveldb_iter_valid(it) && !rc; leveldb_iter_next(it)) {
            size_t klen;
            const char *key = leveldb_iter_key(it, &klen);
            const char *id, *rev;
            size_t idlen, revlen;
            uint64_t gen;
            if (klen < pfx || stt__key_old_parse(key, klen, db->id, &id, &idlen, &gen, &rev, &revlen) != 0) break;
            /* a doc's keys are contiguous and one step does them all */
            size_t doclen = (size_t)(id - key) + idlen - pfx;
            if (cur.len == doclen && memcmp(cur.base, key + pfx, doclen) == 0) continue;
            if (n++ == COMPACT_BATCH) {
                stt_buf_reset(&resume);
                stt_buf_append(&resume, key + pfx, doclen);
                done = false;
                break;
            }
            stt_buf_reset(&cur);
            stt_buf_append(&cur, key + pfx, doclen);
            stt__key_doc(&dk, db->id, id, idlen);
            char *lerr = NULL;
            size_t vlen;
            char *v = leveldb_get(s->ldb, s->ropts, dk.base, dk.len, &vlen, &lerr);
            if (lerr) {
                rc = stt__ldb_error(s, lerr, "compaction read", false);
                break;
            }
            if (!v) {
                /* no record (a purge or a delete takes the keys with it, so this is
                 * debris): the key alone goes */
                leveldb_writebatch_delete(p.wb, key, klen);
                continue;
            }
            rc = compact_doc(&p, dk.base, dk.len, v, vlen, dk.len - idlen, false);
            leveldb_free(v);
        }
        leveldb_iter_destroy(it);
        int frc = finish_batch(&p);
        if (!rc) rc = frc;
        stt__ldb_leave(s);
        pthread_mutex_unlock(&db->wlock);
    }
    stt_buf_free(&resume);
    stt_buf_free(&cur);
    stt_buf_free(&k);
    stt_buf_free(&dk);
    return rc;
}

/* Attachment bytes without a reference count: the pieces of an upload staged ahead of
 * a doc that never committed (stt__att_stage, then a crash or a failed batch). Under
 * the db's write lock, where staging happens, so no upload's pieces are taken for
 * garbage while they wait for their doc. */
static int sweep_unreferenced(stt_db_t *db)
{
    stt_store_t *s = db->store;
    int rc = stt__write_begin(s, true);
    if (rc) return rc;
    pthread_mutex_lock(&db->wlock);
    stt__ldb_enter(s);
    leveldb_writebatch_t *wb = leveldb_writebatch_create();
    leveldb_iterator_t *it = leveldb_create_iterator(s->ldb, s->ropts);
    stt_buf_t pfx = STT_BUF_INIT;
    unsigned char last[STT_DIGEST_LEN];
    bool have_last = false;
    size_t n = 0;
    stt__key_db(&pfx, K_ATT, db->id);
    for (leveldb_iter_seek(it, pfx.base, pfx.len); leveldb_iter_valid(it); leveldb_iter_next(it)) {
        size_t klen;
        const char *key = leveldb_iter_key(it, &klen);
        if (klen < pfx.len + STT_DIGEST_LEN || memcmp(key, pfx.base, pfx.len) != 0) break;
        const unsigned char *digest = (const unsigned char *)key + pfx.len;
        if (have_last && memcmp(last, digest, STT_DIGEST_LEN) == 0) continue; /* the next piece */
        memcpy(last, digest, STT_DIGEST_LEN);
        have_last = true;
        uint64_t refs;
        if ((rc = stt__att_refcount(db, digest, &refs)) != 0) break;
        if (refs) continue;
        stt__att_delete(s, wb, db->id, digest);
        n++;
    }
    leveldb_iter_destroy(it);
    if (!rc && n) {
        char *lerr = NULL;
        leveldb_write(s->ldb, s->wsync, wb, &lerr);
        if (lerr) rc = stt__ldb_error(s, lerr, "write", true);
    }
    leveldb_writebatch_destroy(wb);
    stt__ldb_leave(s);
    pthread_mutex_unlock(&db->wlock);
    stt_buf_free(&pfx);
    return rc;
}

int stt_db_compact(stt_db_t *db, bool begun)
{
    stt_store_t *s = db->store;
    stt_buf_t last = STT_BUF_INIT, k = STT_BUF_INIT;
    bool have_last = false, done = false;
    int rc = 0;
    if (!begun) stt_db_compact_begin(db);
    while (!done && !rc) {
        /* compaction makes room: it passes the free-space floor */
        if ((rc = stt__write_begin(s, true)) != 0) break;
        pthread_mutex_lock(&db->wlock);
        if (db->deleted) {
            pthread_mutex_unlock(&db->wlock);
            break;
        }
        stt__ldb_enter(s);
        pass_t p = {.db = db, .wb = leveldb_writebatch_create()};
        leveldb_iterator_t *it = leveldb_create_iterator(s->ldb, s->ropts);
        stt__key_db(&k, K_DOC, db->id);
        size_t pfx = k.len;
        if (have_last) stt_buf_append(&k, last.base, last.len);
        leveldb_iter_seek(it, k.base, k.len);
        size_t n = 0;
        done = true;
        stt__key_db(&k, K_DOC, db->id);
        for (; leveldb_iter_valid(it) && !rc; leveldb_iter_next(it)) {
            size_t klen, vlen;
            const char *key = leveldb_iter_key(it, &klen);
            if (klen < pfx || memcmp(key, k.base, pfx) != 0) break;
            if (have_last && klen - pfx == last.len && memcmp(key + pfx, last.base, last.len) == 0) continue;
            if (n++ == COMPACT_BATCH) {
                done = false;
                break;
            }
            stt_buf_reset(&last);
            stt_buf_append(&last, key + pfx, klen - pfx);
            have_last = true;
            const char *v = leveldb_iter_value(it, &vlen);
            rc = compact_doc(&p, key, klen, v, vlen, pfx, true);
        }
        leveldb_iter_destroy(it);
        int frc = finish_batch(&p);
        if (!rc) rc = frc;
        stt__ldb_leave(s);
        pthread_mutex_unlock(&db->wlock);
    }
    if (!rc) rc = sweep_unreferenced(db);
    pthread_mutex_lock(&db->wlock);
    db->compacting--;
    pthread_mutex_unlock(&db->wlock);
    stt_buf_free(&last);
    stt_buf_free(&k);
    return rc;
}
