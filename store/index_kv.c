/* The index keyspace ('I' dbid ...): raw put/get/scan for index/, which owns
 * the layout of what lives under it. The store only adds the db prefix, keeps
 * iterators inside it, and sweeps it with the db (store.c). */
#include "src/common/err.h"
#include "store/store_int.h"
#include <leveldb/c.h>
#include <stdlib.h>
#include <string.h>

struct stt_ikv_batch {
    stt_db_t *db;
    leveldb_writebatch_t *wb;
    stt_buf_t k;
    size_t n;
};

struct stt_ikv_iter {
    stt_db_t *db;
    leveldb_iterator_t *it;
    const leveldb_snapshot_t *snap;
    leveldb_readoptions_t *ro;
    char pfx[9];
    stt_buf_t k;
};

static void full_key(stt_buf_t *out, stt_db_t *db, const void *k, size_t klen)
{
    stt__key_db(out, K_INDEX, db->id);
    stt_buf_append(out, k, klen);
}

stt_ikv_batch_t *stt_ikv_batch_new(stt_db_t *db)
{
    stt_ikv_batch_t *b = stt_xcalloc(1, sizeof(*b));
    b->db = db;
    b->wb = leveldb_writebatch_create();
    return b;
}

void stt_ikv_put(stt_ikv_batch_t *b, const void *k, size_t klen, const void *v, size_t vlen)
{
    full_key(&b->k, b->db, k, klen);
    leveldb_writebatch_put(b->wb, b->k.base, b->k.len, v, vlen);
    b->n++;
}

void stt_ikv_del(stt_ikv_batch_t *b, const void *k, size_t klen)
{
    full_key(&b->k, b->db, k, klen);
    leveldb_writebatch_delete(b->wb, b->k.base, b->k.len);
    b->n++;
}

size_t stt_ikv_batch_size(const stt_ikv_batch_t *b)
{
    return b->n;
}

void stt_ikv_batch_free(stt_ikv_batch_t *b)
{
    if (!b) return;
    leveldb_writebatch_destroy(b->wb);
    stt_buf_free(&b->k);
    free(b);
}

int stt_ikv_commit(stt_ikv_batch_t *b)
{
    stt_store_t *s = b->db->store;
    char *lerr = NULL;
    int rc = stt__write_begin(s, false);
    if (rc) {
        stt_ikv_batch_free(b);
        return rc;
    }
    /* under the writers' lock: a db deleted (and maybe swept) meanwhile must not
     * get index keys back, which no sweep would ever remove */
    pthread_mutex_lock(&b->db->wlock);
    if (b->db->deleted) {
        rc = STT_E_DB_NOT_FOUND;
    } else {
        leveldb_writeoptions_t *wo = leveldb_writeoptions_create();
        stt__ldb_enter(s);
        leveldb_write(s->ldb, wo, b->wb, &lerr);
        stt__ldb_leave(s);
        leveldb_writeoptions_destroy(wo);
    }
    pthread_mutex_unlock(&b->db->wlock);
    stt_ikv_batch_free(b);
    return lerr ? stt__ldb_error(s, lerr, "index write", true) : rc;
}

int stt_ikv_get(stt_db_t *db, const void *k, size_t klen, stt_buf_t *out)
{
    stt_buf_t key = STT_BUF_INIT;
    full_key(&key, db, k, klen);
    char *lerr = NULL;
    size_t vlen;
    stt__ldb_enter(db->store);
    char *v = leveldb_get(db->store->ldb, db->store->ropts, key.base, key.len, &vlen, &lerr);
    stt__ldb_leave(db->store);
    stt_buf_free(&key);
    if (lerr) return stt__ldb_error(db->store, lerr, "index read", false);
    if (!v) return STT_E_NOT_FOUND;
    stt_buf_reset(out);
    stt_buf_append(out, v, vlen);
    leveldb_free(v);
    return 0;
}

int stt_ikv_drop(stt_db_t *db, const void *pfx, size_t pfxlen)
{
    stt_buf_t key = STT_BUF_INIT;
    full_key(&key, db, pfx, pfxlen);
    int rc = 0;
    for (;;) {
        /* dropping an index makes room: it passes the free-space floor */
        if ((rc = stt__write_begin(db->store, true)) != 0) break;
        stt__ldb_enter(db->store);
        leveldb_iterator_t *it = leveldb_create_iterator(db->store->ldb, db->store->ropts);
        leveldb_writebatch_t *wb = leveldb_writebatch_create();
        size_t n = 0;
        for (leveldb_iter_seek(it, key.base, key.len); leveldb_iter_valid(it) && n < 10000; leveldb_iter_next(it)) {
            size_t klen;
            const char *k = leveldb_iter_key(it, &klen);
            if (klen < key.len || memcmp(k, key.base, key.len) != 0) break;
            leveldb_writebatch_delete(wb, k, klen);
            n++;
        }
        leveldb_iter_destroy(it);
        char *lerr = NULL;
        if (n) {
            leveldb_writeoptions_t *wo = leveldb_writeoptions_create();
            leveldb_write(db->store->ldb, wo, wb, &lerr);
            leveldb_writeoptions_destroy(wo);
        }
        leveldb_writebatch_destroy(wb);
        stt__ldb_leave(db->store);
        if (lerr) {
            rc = stt__ldb_error(db->store, lerr, "index drop", true);
            break;
        }
        if (n < 10000) break;
    }
    stt_buf_free(&key);
    return rc;
}

stt_ikv_iter_t *stt_ikv_iter_new(stt_db_t *db)
{
    stt_ikv_iter_t *it = stt_xcalloc(1, sizeof(*it));
    it->db = db;
    /* held shared for the iterator's life, as a reader holds it (space.c) */
    stt__ldb_enter(db->store);
    it->snap = leveldb_create_snapshot(db->store->ldb);
    it->ro = leveldb_readoptions_create();
    leveldb_readoptions_set_snapshot(it->ro, it->snap);
    leveldb_readoptions_set_fill_cache(it->ro, 1);
    it->it = leveldb_create_iterator(db->store->ldb, it->ro);
    stt_buf_t p = STT_BUF_INIT;
    stt__key_db(&p, K_INDEX, db->id);
    memcpy(it->pfx, p.base, 9);
    stt_buf_free(&p);
    return it;
}

void stt_ikv_iter_free(stt_ikv_iter_t *it)
{
    if (!it) return;
    leveldb_iter_destroy(it->it);
    leveldb_readoptions_destroy(it->ro);
    leveldb_release_snapshot(it->db->store->ldb, it->snap);
    stt__ldb_leave(it->db->store);
    stt_buf_free(&it->k);
    free(it);
}

void stt_ikv_seek(stt_ikv_iter_t *it, const void *k, size_t klen)
{
    full_key(&it->k, it->db, k, klen);
    leveldb_iter_seek(it->it, it->k.base, it->k.len);
}

void stt_ikv_seek_le(stt_ikv_iter_t *it, const void *k, size_t klen)
{
    full_key(&it->k, it->db, k, klen);
    leveldb_iter_seek(it->it, it->k.base, it->k.len);
    if (!leveldb_iter_valid(it->it)) {
        leveldb_iter_seek_to_last(it->it);
        return;
    }
    size_t kl;
    const char *kk = leveldb_iter_key(it->it, &kl);
    if (kl != it->k.len || memcmp(kk, it->k.base, kl) != 0) leveldb_iter_prev(it->it);
}

bool stt_ikv_valid(stt_ikv_iter_t *it)
{
    if (!leveldb_iter_valid(it->it)) return false;
    size_t kl;
    const char *k = leveldb_iter_key(it->it, &kl);
    return kl >= 9 && memcmp(k, it->pfx, 9) == 0;
}

void stt_ikv_next(stt_ikv_iter_t *it)
{
    leveldb_iter_next(it->it);
}

void stt_ikv_prev(stt_ikv_iter_t *it)
{
    leveldb_iter_prev(it->it);
}

const char *stt_ikv_key(stt_ikv_iter_t *it, size_t *len)
{
    size_t kl;
    const char *k = leveldb_iter_key(it->it, &kl);
    *len = kl - 9;
    return k + 9;
}

const char *stt_ikv_value(stt_ikv_iter_t *it, size_t *len)
{
    return leveldb_iter_value(it->it, len);
}
