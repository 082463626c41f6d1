/* Compaction. settee drops superseded bodies on every write, so the one thing a
 * compaction still does is CouchDB's other job: stem every doc's tree to the
 * database's current revs_limit (lowering _revs_limit leaves stored trees alone
 * until the doc is written again or the db is compacted). Docs are rewritten in
 * batches under the write lock, in id order, resuming after the last id, so
 * writers are held up for one batch at a time. Seqs do not change. */
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

int stt_db_compact(stt_db_t *db, bool begun)
{
    stt_store_t *s = db->store;
    stt_buf_t last = STT_BUF_INIT, k = STT_BUF_INIT, rec = STT_BUF_INIT;
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
        uint32_t limit = db->revs_limit;
        stt__ldb_enter(s);
        leveldb_iterator_t *it = leveldb_create_iterator(s->ldb, s->ropts);
        leveldb_writebatch_t *wb = leveldb_writebatch_create();
        stt__key_db(&k, K_DOC, db->id);
        size_t pfx = k.len;
        if (have_last) stt_buf_append(&k, last.base, last.len);
        leveldb_iter_seek(it, k.base, k.len);
        size_t n = 0, changed = 0;
        done = true;
        stt__key_db(&k, K_DOC, db->id);
        for (; leveldb_iter_valid(it); leveldb_iter_next(it)) {
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
            stt_doc_t d;
            if (stt__doc_decode(v, vlen, &d) != 0) {
                rc = STT_E_IO;
                break;
            }
            d.id = key + pfx;
            d.idlen = klen - pfx;
            uint32_t before = d.tree.n;
            /* stem a copy, so that the old node indices stay readable for the bodies */
            stt_revtree_t nt = STT_REVTREE_INIT;
            stt_buf_t enc = STT_BUF_INIT;
            stt_revtree_encode(&d.tree, &enc);
            stt_revtree_decode(&nt, enc.base, enc.len);
            stt_buf_free(&enc);
            stt_revtree_stem(&nt, limit);
            /* compacted away: the bodies of non-leaf revisions are "missing" now */
            bool flags_changed = false;
            for (uint32_t i = 0; i < nt.n; i++)
                if ((nt.nodes[i].flags & STT_REV_WRITTEN) && !stt_revtree_is_leaf(&nt, (int)i)) {
                    nt.nodes[i].flags &= (uint8_t)~STT_REV_WRITTEN;
                    flags_changed = true;
                }
            if (nt.n != before || flags_changed) {
                stt__doc_reencode(&d, &nt, d.seq, &rec, NULL);
                leveldb_writebatch_put(wb, key, klen, rec.base, rec.len);
                changed++;
            }
            stt_revtree_free(&nt);
            d._raw = NULL; /* borrowed from the iterator */
            stt_doc_free(&d);
        }
        leveldb_iter_destroy(it);
        if (changed && !rc) {
            char *lerr = NULL;
            leveldb_write(s->ldb, s->wsync, wb, &lerr);
            if (lerr) rc = stt__ldb_error(s, lerr, "compaction", true);
        }
        stt__ldb_leave(s);
        leveldb_writebatch_destroy(wb);
        pthread_mutex_unlock(&db->wlock);
    }
    pthread_mutex_lock(&db->wlock);
    db->compacting--;
    pthread_mutex_unlock(&db->wlock);
    stt_buf_free(&last);
    stt_buf_free(&k);
    stt_buf_free(&rec);
    return rc;
}
