/* _local documents: a flat keyspace per db, rev "0-N", no tree, never in _changes.
 * CouchDB does not check the rev a client sends for them: a stale or missing _rev
 * simply restarts the count from what was given. */
#include "store/store_int.h"
#include "src/common/stats.h"
#include <leveldb/c.h>
#include "src/common/err.h"
#include <stdlib.h>
#include <string.h>

static void key_local(stt_buf_t *k, uint64_t dbid, const char *id, size_t idlen)
{
    stt__key_db(k, K_LOCAL, dbid);
    stt_buf_append(k, id, idlen);
}

int stt_local_get(stt_db_t *db, const char *id, size_t idlen, uint64_t *rev, stt_buf_t *body)
{
    stt_buf_t k = STT_BUF_INIT;
    key_local(&k, db->id, id, idlen);
    char *lerr = NULL;
    size_t vlen;
    stt__ldb_enter(db->store);
    char *v = leveldb_get(db->store->ldb, db->store->ropts, k.base, k.len, &vlen, &lerr);
    stt__ldb_leave(db->store);
    stt_buf_free(&k);
    if (lerr) return stt__ldb_error(db->store, lerr, "read", false);
    if (!v) return STT_E_NOT_FOUND;
    const unsigned char *p = (const unsigned char *)v, *end = p + vlen;
    int rc = stt_varint_read(&p, end, rev) ? STT_E_IO : 0;
    if (!rc && body) stt_buf_append(body, p, (size_t)(end - p));
    leveldb_free(v);
    return rc;
}

int stt_local_put(stt_db_t *db, const char *id, size_t idlen, uint64_t prev, const char *body, size_t bodylen,
                  bool deleted, uint64_t *rev)
{
    stt_buf_t k = STT_BUF_INIT, v = STT_BUF_INIT;
    key_local(&k, db->id, id, idlen);
    int rc = stt__write_begin(db->store, false);
    if (rc) {
        stt_buf_free(&k);
        return rc;
    }
    pthread_mutex_lock(&db->wlock);
    if (db->deleted) {
        rc = STT_E_DB_NOT_FOUND;
        goto exit;
    }
    char *lerr = NULL;
    if (deleted) {
        uint64_t cur;
        if ((rc = stt_local_get(db, id, idlen, &cur, NULL)) != 0) goto exit;
        stt__ldb_enter(db->store);
        leveldb_delete(db->store->ldb, db->store->wsync, k.base, k.len, &lerr);
        stt__ldb_leave(db->store);
        *rev = 0;
    } else {
        *rev = prev + 1;
        stt_buf_append_varint(&v, *rev);
        stt_buf_append(&v, body, bodylen);
        stt__ldb_enter(db->store);
        leveldb_put(db->store->ldb, db->store->wsync, k.base, k.len, v.base, v.len, &lerr);
        stt__ldb_leave(db->store);
    }
    if (lerr)
        rc = stt__ldb_error(db->store, lerr, "_local write", true);
    else
        stt_stats_inc(STT_ST_LOCAL_DOCUMENT_WRITES);
exit:
    pthread_mutex_unlock(&db->wlock);
    stt_buf_free(&k);
    stt_buf_free(&v);
    return rc;
}

int stt_local_scan(stt_db_t *db, const stt_range_t *range,
                   int (*fn)(void *ctx, const char *id, size_t idlen, uint64_t rev, const char *body, size_t len),
                   void *ctx)
{
    stt__ldb_enter(db->store);
    leveldb_iterator_t *it = leveldb_create_iterator(db->store->ldb, db->store->ropts);
    stt_buf_t k = STT_BUF_INIT, pfx = STT_BUF_INIT;
    stt__key_db(&pfx, K_LOCAL, db->id);
    int rc = 0;
    if (!range->descending) {
        key_local(&k, db->id, range->start ? range->start : "", range->start ? range->startlen : 0);
        leveldb_iter_seek(it, k.base, k.len);
    } else {
        if (range->start)
            key_local(&k, db->id, range->start, range->startlen);
        else
            stt__key_db(&k, K_LOCAL, db->id + 1);
        leveldb_iter_seek(it, k.base, k.len);
        if (!leveldb_iter_valid(it)) {
            leveldb_iter_seek_to_last(it);
        } else {
            size_t kl;
            const char *kk = leveldb_iter_key(it, &kl);
            if (!(range->start && kl == k.len && memcmp(kk, k.base, kl) == 0)) leveldb_iter_prev(it);
        }
    }
    for (; leveldb_iter_valid(it); range->descending ? leveldb_iter_prev(it) : leveldb_iter_next(it)) {
        size_t klen, vlen;
        const char *key = leveldb_iter_key(it, &klen);
        if (klen < pfx.len || memcmp(key, pfx.base, pfx.len) != 0) break;
        const char *id = key + pfx.len;
        size_t idlen = klen - pfx.len;
        if (range->end) {
            size_t m = idlen < range->endlen ? idlen : range->endlen;
            int cmp = memcmp(id, range->end, m);
            if (cmp == 0) cmp = idlen < range->endlen ? -1 : idlen > range->endlen ? 1 : 0;
            if (range->descending) cmp = -cmp;
            if (cmp > 0 || (cmp == 0 && !range->inclusive_end)) break;
        }
        const char *v = leveldb_iter_value(it, &vlen);
        const unsigned char *p = (const unsigned char *)v, *end = p + vlen;
        uint64_t rev;
        if (stt_varint_read(&p, end, &rev)) {
            rc = STT_E_IO;
            break;
        }
        if (fn(ctx, id, idlen, rev, (const char *)p, (size_t)(end - p))) break;
    }
    leveldb_iter_destroy(it);
    stt__ldb_leave(db->store);
    stt_buf_free(&k);
    stt_buf_free(&pfx);
    return rc;
}
