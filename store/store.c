/* The store handle, databases and their background sweep.
 *
 * A database is a name record ('N') plus keys under its numeric id. Deleting one
 * removes the name and adds a sweep marker ('X') in one synced batch, so the name
 * is gone at once and a crash mid-sweep resumes at the next open. The sweeper
 * thread deletes the id's keys in batches (LevelDB has no range delete). */
#include "store/store_int.h"
#include <leveldb/c.h>
#include "src/common/err.h"
#include "src/common/log.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ keys */

void stt__key_db(stt_buf_t *k, char tag, uint64_t dbid)
{
    stt_buf_reset(k);
    stt_buf_appendc(k, tag);
    stt_buf_append_be64(k, dbid);
}

void stt__key_doc(stt_buf_t *k, uint64_t dbid, const char *id, size_t idlen)
{
    stt__key_db(k, K_DOC, dbid);
    stt_buf_append(k, id, idlen);
}

void stt__key_seq(stt_buf_t *k, uint64_t dbid, uint64_t seq)
{
    stt__key_db(k, K_SEQ, dbid);
    stt_buf_append_be64(k, seq);
}

void stt__key_att(stt_buf_t *k, char tag, uint64_t dbid, const unsigned char *digest)
{
    stt__key_db(k, tag, dbid);
    stt_buf_append(k, digest, STT_DIGEST_LEN);
}

/* ------------------------------------------------------------------ store */

void stt_store_opts_default(stt_store_opts_t *o)
{
    o->cache_size = 8u << 20;
    o->write_buffer_size = 16u << 20;
    o->default_revs_limit = STT_REVS_LIMIT_DEFAULT;
    o->min_free_bytes = 0;
    o->paranoid = false;
    o->auto_compact_min_size = 1u << 20; /* smoosh's min_size */
}

static void *sweeper_main(void *arg);
static int load_next_dbid(stt_store_t *s);

int stt_store_open(const char *dir, const stt_store_opts_t *o, stt_store_t **out, char *err, size_t errlen)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create data dir %s: %s", dir, strerror(errno));
        return -errno;
    }
    stt_store_t *s = stt_xcalloc(1, sizeof(*s));
    s->o = *o;
    s->opts = leveldb_options_create();
    leveldb_options_set_create_if_missing(s->opts, 1);
    s->cache = leveldb_cache_create_lru(o->cache_size ? o->cache_size : (8u << 20));
    leveldb_options_set_cache(s->opts, s->cache);
    s->filter = leveldb_filterpolicy_create_bloom(10);
    leveldb_options_set_filter_policy(s->opts, s->filter);
    leveldb_options_set_write_buffer_size(s->opts, o->write_buffer_size ? o->write_buffer_size : (16u << 20));
    leveldb_options_set_max_open_files(s->opts, 256);
    leveldb_options_set_paranoid_checks(s->opts, o->paranoid);
    leveldb_options_set_compression(s->opts, leveldb_snappy_compression);
    char path[4200];
    snprintf(path, sizeof(path), "%s/" STT_STORE_SUBDIR, dir);
    char *lerr = NULL;
    s->path = stt_xstrndup(path, strlen(path));
    s->ldb = leveldb_open(s->opts, path, &lerr);
    /* replaying the log writes a table: with the disk full, wait for room rather than
     * refuse to start (a clean shutdown leaves the log empty, see stt_store_close) */
    for (int i = 0; lerr && strstr(lerr, "No space left on device"); i++) {
        if (i % 30 == 0)
            stt_log(STT_LOG_ERROR, "cannot open store %s: %s (ENOSPC): waiting for free space, retrying every 2 s",
                    path, lerr);
        leveldb_free(lerr);
        lerr = NULL;
        sleep(2);
        s->ldb = leveldb_open(s->opts, path, &lerr);
    }
    if (lerr) {
        snprintf(err, errlen, "cannot open store %s: %s", path, lerr);
        leveldb_free(lerr);
        leveldb_options_destroy(s->opts);
        leveldb_cache_destroy(s->cache);
        leveldb_filterpolicy_destroy(s->filter);
        free(s->path);
        free(s);
        return STT_E_IO;
    }
    pthread_rwlock_init(&s->ldb_lock, NULL);
    s->min_free = o->min_free_bytes;
    stt__space_init(s);
    s->ropts = leveldb_readoptions_create();
    s->wsync = leveldb_writeoptions_create();
    leveldb_writeoptions_set_sync(s->wsync, 1);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->sweep_cond, NULL);
    s->capdbs = 64;
    s->dbs = stt_xcalloc(s->capdbs, sizeof(*s->dbs));
    if (load_next_dbid(s) != 0) {
        snprintf(err, errlen, "corrupt store metadata in %s", path);
        stt_store_close(s);
        return STT_E_IO;
    }
    s->sweep_pending = 1; /* resume sweeps left by a crash */
    if (pthread_create(&s->sweeper, NULL, sweeper_main, s) == 0) s->sweeper_started = 1;
    *out = s;
    return 0;
}

void stt_store_close(stt_store_t *s)
{
    if (!s) return;
    if (s->sweeper_started) {
        pthread_mutex_lock(&s->lock);
        s->stopping = 1;
        pthread_cond_broadcast(&s->sweep_cond);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->sweeper, NULL);
    }
    for (size_t i = 0; i < s->ncq; i++)
        s->cq[i]->refs--;
    free(s->cq);
    for (size_t i = 0; i < s->capdbs; i++) {
        stt_db_t *db = s->dbs[i];
        if (db) {
            /* handles still referenced by callers leak deliberately: closing is the
             * last thing a process does */
            if (db->refs <= 1) {
                pthread_mutex_destroy(&db->wlock);
                free(db->name);
                free(db->security);
                free(db);
            }
        }
    }
    free(s->dbs);
    /* flush the memtable (a compaction of a range past every key does only that), so
     * that the next open has no log to replay and starts even on a nearly full disk */
    leveldb_compact_range(s->ldb, "\xff\xff\xff\xff", 4, "\xff\xff\xff\xff", 4);
    leveldb_close(s->ldb);
    pthread_rwlock_destroy(&s->ldb_lock);
    free(s->path);
    leveldb_readoptions_destroy(s->ropts);
    leveldb_writeoptions_destroy(s->wsync);
    leveldb_options_destroy(s->opts);
    leveldb_cache_destroy(s->cache);
    leveldb_filterpolicy_destroy(s->filter);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->sweep_cond);
    free(s);
}

void stt_store_set_commit_hook(stt_store_t *s, stt_commit_hook_t fn, void *ctx)
{
    s->hook = fn;
    s->hook_ctx = ctx;
}

void stt_store_set_db_hook(stt_store_t *s, stt_db_event_hook_t fn, void *ctx)
{
    s->db_hook = fn;
    s->db_hook_ctx = ctx;
}

int stt_store_meta_get(stt_store_t *s, const char *key, stt_buf_t *out)
{
    stt_buf_t k = STT_BUF_INIT;
    stt_buf_appendc(&k, K_META);
    stt_buf_appends(&k, key);
    char *lerr = NULL;
    size_t vlen;
    stt__ldb_enter(s);
    char *v = leveldb_get(s->ldb, s->ropts, k.base, k.len, &vlen, &lerr);
    stt__ldb_leave(s);
    stt_buf_free(&k);
    if (lerr) return stt__ldb_error(s, lerr, "read", false);
    if (!v) return STT_E_NOT_FOUND;
    stt_buf_reset(out);
    stt_buf_append(out, v, vlen);
    leveldb_free(v);
    return 0;
}

int stt_store_meta_put(stt_store_t *s, const char *key, const void *val, size_t len)
{
    stt_buf_t k = STT_BUF_INIT;
    stt_buf_appendc(&k, K_META);
    stt_buf_appends(&k, key);
    char *lerr = NULL;
    int rc = stt__write_begin(s, false);
    if (rc) {
        stt_buf_free(&k);
        return rc;
    }
    stt__ldb_enter(s);
    leveldb_put(s->ldb, s->wsync, k.base, k.len, val, len, &lerr);
    stt__ldb_leave(s);
    stt_buf_free(&k);
    if (lerr) return stt__ldb_error(s, lerr, "write", true);
    return 0;
}

static int load_next_dbid(stt_store_t *s)
{
    stt_buf_t v = STT_BUF_INIT;
    int rc = stt_store_meta_get(s, "next_dbid", &v);
    if (rc == STT_E_NOT_FOUND) {
        s->next_dbid = 1;
        rc = 0;
    } else if (rc == 0) {
        s->next_dbid = v.len == 8 ? stt_be64(v.base) : 0;
        if (!s->next_dbid) rc = STT_E_IO;
    }
    stt_buf_free(&v);
    return rc;
}

/* ------------------------------------------------------------------ db records */

void stt__db_record(const stt_db_t *db, stt_buf_t *out)
{
    stt_buf_reset(out);
    /* version: 2 added old_size, 3 flags (written only when set, so a database
     * without them reads in an older settee) */
    stt_buf_appendc(out, db->flags ? 3 : 2);
    stt_buf_append_be64(out, db->id);
    stt_buf_append_varint(out, db->created);
    stt_buf_append_varint(out, db->revs_limit);
    stt_buf_append_varint(out, db->update_seq);
    stt_buf_append_varint(out, db->doc_count);
    stt_buf_append_varint(out, db->doc_del_count);
    stt_buf_append_varint(out, db->purge_seq);
    stt_buf_append_varint(out, db->active_size);
    stt_buf_append_varint(out, db->seclen);
    if (db->seclen) stt_buf_append(out, db->security, db->seclen);
    stt_buf_append_varint(out, db->old_size);
    if (db->flags) stt_buf_append_varint(out, db->flags);
}

static int db_record_decode(stt_db_t *db, const char *v, size_t len)
{
    const unsigned char *p = (const unsigned char *)v, *end = p + len;
    if (len < 9 || p[0] < 1 || p[0] > 3) return STT_E_IO;
    int version = p[0];
    db->id = stt_be64(p + 1);
    p += 9;
    uint64_t x[8];
    for (int i = 0; i < 8; i++)
        if (stt_varint_read(&p, end, &x[i])) return STT_E_IO;
    db->created = x[0];
    db->revs_limit = (uint32_t)x[1];
    db->update_seq = x[2];
    db->doc_count = x[3];
    db->doc_del_count = x[4];
    db->purge_seq = x[5];
    db->active_size = x[6];
    if ((uint64_t)(end - p) < x[7]) return STT_E_IO;
    db->seclen = x[7];
    db->security = db->seclen ? stt_xstrndup((const char *)p, db->seclen) : NULL;
    p += db->seclen;
    db->old_size = 0;
    if (version >= 2 && stt_varint_read(&p, end, &db->old_size)) return STT_E_IO;
    uint64_t flags = 0;
    if (version >= 3 && stt_varint_read(&p, end, &flags)) return STT_E_IO;
    db->flags = (uint32_t)flags;
    return 0;
}

void stt__db_put_record(stt_db_t *db, leveldb_writebatch_t *wb)
{
    stt_buf_t k = STT_BUF_INIT, v = STT_BUF_INIT;
    stt_buf_appendc(&k, K_DBNAME);
    stt_buf_append(&k, db->name, db->namelen);
    stt__db_record(db, &v);
    leveldb_writebatch_put(wb, k.base, k.len, v.base, v.len);
    stt_buf_free(&k);
    stt_buf_free(&v);
}

/* ------------------------------------------------------------------ db table */

static uint64_t hash_name(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

/* Open addressing with backward-shift deletion; caller holds s->lock. */
static size_t table_slot(stt_store_t *s, const char *name, size_t len)
{
    size_t mask = s->capdbs - 1, i = hash_name(name, len) & mask;
    while (s->dbs[i] && !(s->dbs[i]->namelen == len && memcmp(s->dbs[i]->name, name, len) == 0))
        i = (i + 1) & mask;
    return i;
}

static void table_grow(stt_store_t *s)
{
    stt_db_t **old = s->dbs;
    size_t oldcap = s->capdbs;
    s->capdbs *= 2;
    s->dbs = stt_xcalloc(s->capdbs, sizeof(*s->dbs));
    for (size_t i = 0; i < oldcap; i++)
        if (old[i]) s->dbs[table_slot(s, old[i]->name, old[i]->namelen)] = old[i];
    free(old);
}

static void table_remove(stt_store_t *s, size_t i)
{
    size_t mask = s->capdbs - 1;
    s->dbs[i] = NULL;
    s->ndbs--;
    for (size_t j = (i + 1) & mask; s->dbs[j]; j = (j + 1) & mask) {
        stt_db_t *d = s->dbs[j];
        s->dbs[j] = NULL;
        s->dbs[table_slot(s, d->name, d->namelen)] = d;
    }
}

static void db_free(stt_db_t *db)
{
    pthread_mutex_destroy(&db->wlock);
    free(db->name);
    free(db->security);
    free(db);
}

bool stt_db_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > STT_DB_NAME_MAX || name[0] < 'a' || name[0] > 'z') return false;
    for (size_t i = 1; i < len; i++) {
        char c = name[i];
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("_$()+-/", c) != NULL) {
            if (c == '\0') return false;
            continue;
        }
        return false;
    }
    return true;
}

static bool name_valid_or_reserved(const char *name, size_t len)
{
    static const char *const reserved[] = {"_users", "_replicator", "_global_changes"};
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (strlen(reserved[i]) == len && memcmp(reserved[i], name, len) == 0) return true;
    return stt_db_name_valid(name, len);
}

int stt_db_create(stt_store_t *s, const char *name, size_t len)
{
    return stt_db_create_flags(s, name, len, 0);
}

uint32_t stt_db_flags(const stt_db_t *db)
{
    return db->flags;
}

int stt_db_create_flags(stt_store_t *s, const char *name, size_t len, uint32_t flags)
{
    if (!name_valid_or_reserved(name, len)) return STT_E_ILLEGAL_DB_NAME;
    stt_db_t *probe;
    if (stt_db_open(s, name, len, &probe) == 0) {
        stt_db_release(probe);
        return STT_E_FILE_EXISTS;
    }
    int rc = stt__write_begin(s, false);
    if (rc) return rc;
    pthread_mutex_lock(&s->lock);
    stt__ldb_enter(s);
    /* re-check under the lock: two creates may race */
    stt_buf_t k = STT_BUF_INIT, v = STT_BUF_INIT;
    stt_buf_appendc(&k, K_DBNAME);
    stt_buf_append(&k, name, len);
    char *lerr = NULL;
    size_t vlen;
    char *old = leveldb_get(s->ldb, s->ropts, k.base, k.len, &vlen, &lerr);
    if (lerr) {
        rc = stt__ldb_error(s, lerr, "read", false);
        goto exit;
    }
    if (old) {
        leveldb_free(old);
        rc = STT_E_FILE_EXISTS;
        goto exit;
    }
    stt_db_t tmp = {
        .id = s->next_dbid, .created = (uint64_t)time(NULL), .revs_limit = s->o.default_revs_limit, .flags = flags};
    stt__db_record(&tmp, &v);
    leveldb_writebatch_t *wb = leveldb_writebatch_create();
    leveldb_writebatch_put(wb, k.base, k.len, v.base, v.len);
    stt_buf_t mk = STT_BUF_INIT, mv = STT_BUF_INIT;
    stt_buf_appendc(&mk, K_META);
    stt_buf_appends(&mk, "next_dbid");
    stt_buf_append_be64(&mv, s->next_dbid + 1);
    leveldb_writebatch_put(wb, mk.base, mk.len, mv.base, mv.len);
    leveldb_write(s->ldb, s->wsync, wb, &lerr);
    leveldb_writebatch_destroy(wb);
    stt_buf_free(&mk);
    stt_buf_free(&mv);
    if (lerr) {
        rc = stt__ldb_error(s, lerr, "database create", true);
        goto exit;
    }
    s->next_dbid++;
exit:
    stt__ldb_leave(s);
    pthread_mutex_unlock(&s->lock);
    stt_buf_free(&k);
    stt_buf_free(&v);
    if (!rc && s->db_hook) s->db_hook(s->db_hook_ctx, name, len, true);
    return rc;
}

int stt_db_open(stt_store_t *s, const char *name, size_t len, stt_db_t **out)
{
    pthread_mutex_lock(&s->lock);
    size_t i = table_slot(s, name, len);
    if (s->dbs[i]) {
        s->dbs[i]->refs++;
        *out = s->dbs[i];
        pthread_mutex_unlock(&s->lock);
        return 0;
    }
    stt_buf_t k = STT_BUF_INIT;
    stt_buf_appendc(&k, K_DBNAME);
    stt_buf_append(&k, name, len);
    char *lerr = NULL;
    size_t vlen;
    stt__ldb_enter(s);
    char *v = leveldb_get(s->ldb, s->ropts, k.base, k.len, &vlen, &lerr);
    stt__ldb_leave(s);
    stt_buf_free(&k);
    int rc = 0;
    if (lerr) {
        rc = stt__ldb_error(s, lerr, "read", false);
    } else if (!v) {
        rc = STT_E_DB_NOT_FOUND;
    } else {
        stt_db_t *db = stt_xcalloc(1, sizeof(*db));
        if (db_record_decode(db, v, vlen) != 0) {
            free(db);
            rc = STT_E_IO;
        } else {
            db->store = s;
            db->name = stt_xstrndup(name, len);
            db->namelen = len;
            db->refs = 1;
            pthread_mutex_init(&db->wlock, NULL);
            /* keep handles cached: a db's counters live in its handle */
            if ((s->ndbs + 1) * 2 > s->capdbs) table_grow(s);
            s->dbs[table_slot(s, name, len)] = db;
            s->ndbs++;
            db->refs++; /* the table's reference */
            *out = db;
        }
        leveldb_free(v);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

void stt_db_release(stt_db_t *db)
{
    if (!db) return;
    stt_store_t *s = db->store;
    pthread_mutex_lock(&s->lock);
    int last = --db->refs == 0;
    pthread_mutex_unlock(&s->lock);
    if (last) db_free(db);
}

void stt_db_retain(stt_db_t *db)
{
    pthread_mutex_lock(&db->store->lock);
    db->refs++;
    pthread_mutex_unlock(&db->store->lock);
}

const char *stt_db_name(const stt_db_t *db, size_t *len)
{
    if (len) *len = db->namelen;
    return db->name;
}

uint64_t stt_db_id(const stt_db_t *db)
{
    return db->id;
}

int stt_db_delete(stt_store_t *s, const char *name, size_t len)
{
    stt_db_t *db;
    int rc = stt_db_open(s, name, len, &db);
    if (rc) return rc;
    /* deleting a database is how room is made: it passes the free-space floor */
    if ((rc = stt__write_begin(s, true)) != 0) {
        stt_db_release(db);
        return rc;
    }
    pthread_mutex_lock(&db->wlock);
    pthread_mutex_lock(&s->lock);
    if (db->deleted) {
        rc = STT_E_DB_NOT_FOUND;
        goto exit;
    }
    stt_buf_t k = STT_BUF_INIT, x = STT_BUF_INIT;
    stt_buf_appendc(&k, K_DBNAME);
    stt_buf_append(&k, name, len);
    stt__key_db(&x, K_SWEEP, db->id);
    leveldb_writebatch_t *wb = leveldb_writebatch_create();
    leveldb_writebatch_delete(wb, k.base, k.len);
    leveldb_writebatch_put(wb, x.base, x.len, "", 0);
    char *lerr = NULL;
    stt__ldb_enter(s);
    leveldb_write(s->ldb, s->wsync, wb, &lerr);
    stt__ldb_leave(s);
    leveldb_writebatch_destroy(wb);
    stt_buf_free(&k);
    stt_buf_free(&x);
    if (lerr) {
        rc = stt__ldb_error(s, lerr, "database delete", true);
        goto exit;
    }
    db->deleted = 1;
    size_t i = table_slot(s, name, len);
    if (s->dbs[i] == db) {
        table_remove(s, i);
        db->refs--; /* the table's reference; ours keeps it alive below */
    }
    s->sweep_pending = 1;
    pthread_cond_broadcast(&s->sweep_cond);
exit:
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_unlock(&db->wlock);
    stt_db_release(db);
    if (!rc && s->db_hook) s->db_hook(s->db_hook_ctx, name, len, false);
    return rc;
}

void stt_db_list(stt_store_t *s, int (*fn)(void *ctx, const char *name, size_t len), void *ctx)
{
    stt__ldb_enter(s);
    leveldb_iterator_t *it = leveldb_create_iterator(s->ldb, s->ropts);
    char pfx = K_DBNAME;
    for (leveldb_iter_seek(it, &pfx, 1); leveldb_iter_valid(it); leveldb_iter_next(it)) {
        size_t klen;
        const char *k = leveldb_iter_key(it, &klen);
        if (klen < 1 || k[0] != K_DBNAME) break;
        if (fn(ctx, k + 1, klen - 1)) break;
    }
    leveldb_iter_destroy(it);
    stt__ldb_leave(s);
}

void stt_db_mark(stt_db_t *db, uint64_t mark[3])
{
    pthread_mutex_lock(&db->wlock);
    mark[0] = db->id;
    mark[1] = db->update_seq;
    mark[2] = db->purge_seq;
    pthread_mutex_unlock(&db->wlock);
}

void stt_db_info(stt_db_t *db, stt_db_info_t *out)
{
    pthread_mutex_lock(&db->wlock);
    out->update_seq = db->update_seq;
    out->doc_count = db->doc_count;
    out->doc_del_count = db->doc_del_count;
    out->purge_seq = db->purge_seq;
    out->active_size = db->active_size;
    out->old_size = db->old_size;
    out->external_size = db->active_size;
    out->created = db->created;
    out->revs_limit = db->revs_limit;
    out->compact_running = db->compacting > 0;
    pthread_mutex_unlock(&db->wlock);
    /* LevelDB's own estimate of the bytes under this db's keys */
    stt_buf_t a = STT_BUF_INIT, b = STT_BUF_INIT;
    uint64_t total = 0;
    const char tags[] = {K_DOC, K_SEQ, K_LOCAL, K_ATT, K_OLD};
    for (size_t i = 0; i < sizeof(tags); i++) {
        stt__key_db(&a, tags[i], db->id);
        stt__key_db(&b, tags[i], db->id + 1);
        const char *starts[1] = {a.base}, *limits[1] = {b.base};
        size_t slen[1] = {a.len}, llen[1] = {b.len};
        uint64_t sz = 0;
        stt__ldb_enter(db->store);
        leveldb_approximate_sizes(db->store->ldb, 1, starts, slen, limits, llen, &sz);
        stt__ldb_leave(db->store);
        total += sz;
    }
    stt_buf_free(&a);
    stt_buf_free(&b);
    out->file_size = total > out->active_size ? total : out->active_size;
}

/* Caller holds db->wlock. */
static int db_put_record_sync(stt_db_t *db)
{
    int rc = stt__write_begin(db->store, false);
    if (rc) return rc;
    leveldb_writebatch_t *wb = leveldb_writebatch_create();
    stt__db_put_record(db, wb);
    char *lerr = NULL;
    stt__ldb_enter(db->store);
    leveldb_write(db->store->ldb, db->store->wsync, wb, &lerr);
    stt__ldb_leave(db->store);
    leveldb_writebatch_destroy(wb);
    if (lerr) return stt__ldb_error(db->store, lerr, "database update", true);
    return 0;
}

int stt_db_set_revs_limit(stt_db_t *db, uint32_t limit)
{
    pthread_mutex_lock(&db->wlock);
    int rc = STT_E_DB_NOT_FOUND;
    if (!db->deleted) {
        uint32_t old = db->revs_limit;
        db->revs_limit = limit;
        rc = db_put_record_sync(db);
        if (rc) db->revs_limit = old;
    }
    pthread_mutex_unlock(&db->wlock);
    return rc;
}

void stt_db_get_security(stt_db_t *db, stt_buf_t *out)
{
    pthread_mutex_lock(&db->wlock);
    if (db->seclen)
        stt_buf_append(out, db->security, db->seclen);
    else /* CouchDB 3's default: admin-only */
        stt_buf_appends(out, "{\"members\":{\"roles\":[\"_admin\"]},\"admins\":{\"roles\":[\"_admin\"]}}");
    pthread_mutex_unlock(&db->wlock);
}

int stt_db_set_security(stt_db_t *db, const char *json, size_t len)
{
    pthread_mutex_lock(&db->wlock);
    int rc = STT_E_DB_NOT_FOUND;
    if (!db->deleted) {
        char *old = db->security;
        size_t oldlen = db->seclen;
        db->security = stt_xstrndup(json, len);
        db->seclen = len;
        rc = db_put_record_sync(db);
        if (rc) {
            free(db->security);
            db->security = old;
            db->seclen = oldlen;
        } else {
            free(old);
        }
    }
    pthread_mutex_unlock(&db->wlock);
    return rc;
}

/* ------------------------------------------------------------------ sweeper */

/* Deletes up to 'max' keys starting with prefix; returns how many were deleted. */
static size_t sweep_prefix(stt_store_t *s, const char *pfx, size_t pfxlen, size_t max)
{
    if (stt__write_begin(s, true) != 0) return 0; /* resumed after a reopen */
    stt__ldb_enter(s);
    leveldb_iterator_t *it = leveldb_create_iterator(s->ldb, s->ropts);
    leveldb_writebatch_t *wb = leveldb_writebatch_create();
    size_t n = 0;
    for (leveldb_iter_seek(it, pfx, pfxlen); leveldb_iter_valid(it) && n < max; leveldb_iter_next(it)) {
        size_t klen;
        const char *k = leveldb_iter_key(it, &klen);
        if (klen < pfxlen || memcmp(k, pfx, pfxlen) != 0) break;
        leveldb_writebatch_delete(wb, k, klen);
        n++;
    }
    leveldb_iter_destroy(it);
    char *lerr = NULL;
    if (n) {
        leveldb_writeoptions_t *wo = leveldb_writeoptions_create(); /* unsynced: redoable */
        leveldb_write(s->ldb, wo, wb, &lerr);
        leveldb_writeoptions_destroy(wo);
        if (lerr) n = 0;
    }
    stt__ldb_leave(s);
    if (lerr) stt__ldb_error(s, lerr, "sweep of a deleted database", true);
    leveldb_writebatch_destroy(wb);
    return n;
}

static void sweep_all(stt_store_t *s)
{
    for (;;) {
        /* find one pending marker */
        stt__ldb_enter(s);
        leveldb_iterator_t *it = leveldb_create_iterator(s->ldb, s->ropts);
        char pfx = K_SWEEP;
        leveldb_iter_seek(it, &pfx, 1);
        uint64_t dbid = 0;
        if (leveldb_iter_valid(it)) {
            size_t klen;
            const char *k = leveldb_iter_key(it, &klen);
            if (klen == 9 && k[0] == K_SWEEP) dbid = stt_be64(k + 1);
        }
        leveldb_iter_destroy(it);
        stt__ldb_leave(s);
        if (!dbid) return;
        const char tags[] = {K_DOC, K_SEQ, K_LOCAL, K_ATT, K_ATTREF, K_OLD, K_INDEX};
        stt_buf_t k = STT_BUF_INIT;
        for (size_t i = 0; i < sizeof(tags); i++) {
            stt__key_db(&k, tags[i], dbid);
            while (sweep_prefix(s, k.base, k.len, 1000) > 0) {
                if (s->stopping) {
                    stt_buf_free(&k);
                    return;
                }
            }
        }
        stt__key_db(&k, K_SWEEP, dbid);
        char *lerr = NULL;
        if (stt__write_begin(s, true) != 0) {
            stt_buf_free(&k);
            return;
        }
        stt__ldb_enter(s);
        leveldb_delete(s->ldb, s->wsync, k.base, k.len, &lerr);
        /* hand the space back now: without a compaction the deleted keys and their
         * tombstones stay on disk until LevelDB gets round to them */
        stt_buf_t a = STT_BUF_INIT, b = STT_BUF_INIT;
        for (size_t i = 0; !lerr && i < sizeof(tags); i++) {
            stt__key_db(&a, tags[i], dbid);
            stt__key_db(&b, tags[i], dbid + 1);
            leveldb_compact_range(s->ldb, a.base, a.len, b.base, b.len);
        }
        stt_buf_free(&a);
        stt_buf_free(&b);
        stt__ldb_leave(s);
        stt_buf_free(&k);
        if (lerr) {
            stt__ldb_error(s, lerr, "sweep of a deleted database", true);
            return;
        }
    }
}

void stt__maybe_autocompact(stt_db_t *db)
{
    stt_store_t *s = db->store;
    uint64_t min = s->o.auto_compact_min_size;
    if (!min) return;
    pthread_mutex_lock(&db->wlock);
    bool want = db->old_size >= min && db->old_size >= db->active_size && !db->compacting;
    pthread_mutex_unlock(&db->wlock);
    if (!want) return;
    pthread_mutex_lock(&s->lock);
    if (!db->compact_queued && !db->deleted && !s->stopping && s->sweeper_started) {
        if (s->ncq == s->capcq) {
            s->capcq = s->capcq ? s->capcq * 2 : 8;
            s->cq = stt_xrealloc(s->cq, s->capcq * sizeof(*s->cq));
        }
        db->compact_queued = true;
        db->refs++;
        s->cq[s->ncq++] = db;
        pthread_cond_broadcast(&s->sweep_cond);
    }
    pthread_mutex_unlock(&s->lock);
}

/* One queued db compacted, outside the lock. */
static void compact_next(stt_store_t *s)
{
    stt_db_t *db = s->cq[0];
    memmove(s->cq, s->cq + 1, --s->ncq * sizeof(*s->cq));
    s->sweeping = 1;
    pthread_mutex_unlock(&s->lock);
    stt_db_compact_begin(db);
    (void)stt__compact_old_bodies(db); /* a failure leaves the bodies for the next try */
    pthread_mutex_lock(&db->wlock);
    db->compacting--;
    pthread_mutex_unlock(&db->wlock);
    pthread_mutex_lock(&s->lock);
    db->compact_queued = false;
    pthread_mutex_unlock(&s->lock);
    stt_db_release(db);
    pthread_mutex_lock(&s->lock);
    s->sweeping = 0;
}

static void *sweeper_main(void *arg)
{
    stt_store_t *s = arg;
    pthread_mutex_lock(&s->lock);
    while (!s->stopping) {
        if (!s->sweep_pending && s->ncq) {
            compact_next(s);
            pthread_cond_broadcast(&s->sweep_cond);
            continue;
        }
        if (!s->sweep_pending) {
            pthread_cond_wait(&s->sweep_cond, &s->lock);
            continue;
        }
        s->sweep_pending = 0;
        s->sweeping = 1;
        pthread_mutex_unlock(&s->lock);
        sweep_all(s);
        pthread_mutex_lock(&s->lock);
        s->sweeping = 0;
        pthread_cond_broadcast(&s->sweep_cond);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

void stt_store_wait_sweeps(stt_store_t *s)
{
    pthread_mutex_lock(&s->lock);
    while ((s->sweep_pending || s->sweeping || s->ncq) && !s->stopping)
        pthread_cond_wait(&s->sweep_cond, &s->lock);
    pthread_mutex_unlock(&s->lock);
}
