/* The db event recorder behind _db_updates (see global_changes.h).
 *
 * State: a set of pending doc ids ("updated:x"), a flag telling whether
 * _global_changes exists (kept by the db hook, so that with no such database an
 * event costs one atomic load), and one thread that sleeps until something is
 * pending, waits max_write_delay more so that events coalesce, then writes the
 * whole set in one stt_doc_write. */
#include "replication/global_changes.h"
#include "src/common/stats.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#define DEFAULT_DELAY_MS 500

static struct {
    stt_store_t *store;
    stt_ini_t *ini;
    atomic_bool exists; /* _global_changes is there */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    char **set; /* open addressing; NULL slots are free */
    size_t n, cap;
    bool stopping, started;
    pthread_t tid;
} G = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static bool is_self(const char *name, size_t len)
{
    return len == sizeof(STT_GLOBAL_CHANGES_DB) - 1 && !memcmp(name, STT_GLOBAL_CHANGES_DB, len);
}

/* ------------------------------------------------------------------ pending set */

static bool set_put_locked(char *id)
{
    if ((G.n + 1) * 2 > G.cap) {
        size_t ncap = G.cap ? G.cap * 2 : 64;
        char **ns = stt_xcalloc(ncap, sizeof *ns);
        for (size_t i = 0; i < G.cap; i++) {
            if (!G.set[i]) continue;
            size_t j = XXH3_64bits(G.set[i], strlen(G.set[i])) & (ncap - 1);
            while (ns[j])
                j = (j + 1) & (ncap - 1);
            ns[j] = G.set[i];
        }
        free(G.set);
        G.set = ns;
        G.cap = ncap;
    }
    size_t len = strlen(id), j = XXH3_64bits(id, len) & (G.cap - 1);
    while (G.set[j]) {
        if (!strcmp(G.set[j], id)) return false;
        j = (j + 1) & (G.cap - 1);
    }
    G.set[j] = id;
    G.n++;
    return true;
}

static void record(const char *type, const char *name, size_t len)
{
    if (!atomic_load_explicit(&G.exists, memory_order_relaxed) || is_self(name, len)) return;
    size_t tl = strlen(type);
    char *id = stt_xmalloc(tl + 1 + len + 1);
    memcpy(id, type, tl);
    id[tl] = ':';
    memcpy(id + tl + 1, name, len);
    id[tl + 1 + len] = '\0';
    pthread_mutex_lock(&G.lock);
    bool added = G.started && !G.stopping && set_put_locked(id);
    if (added && G.n == 1) pthread_cond_signal(&G.cond);
    pthread_mutex_unlock(&G.lock);
    if (!added) free(id);
}

void stt_global_changes_db_event(void *ctx, const char *name, size_t len, bool created)
{
    if (is_self(name, len)) {
        atomic_store(&G.exists, created);
        return;
    }
    record(created ? "created" : "deleted", name, len);
}

void stt_global_changes_updated(stt_db_t *db)
{
    size_t len;
    const char *name = stt_db_name(db, &len);
    record("updated", name, len);
}

bool stt_global_changes_split(const char *id, size_t idlen, const char **type, size_t *typelen, const char **name,
                              size_t *namelen)
{
    const char *colon = memchr(id, ':', idlen);
    if (!colon) return false;
    *type = id;
    *typelen = (size_t)(colon - id);
    *name = colon + 1;
    *namelen = idlen - *typelen - 1;
    return true;
}

/* ------------------------------------------------------------------ writer */

/* Writes every id of the batch as a new revision of its doc (a first revision, or
 * one on top of the current winner). A conflict with a concurrent writer of the
 * same doc loses that one event, as CouchDB's event_doc_conflict does. */
static void write_batch(char **ids, size_t n)
{
    stt_db_t *db;
    stt_reader_t *rd = NULL;
    stt_doc_write_t *w = stt_xcalloc(n, sizeof *w);
    stt_doc_result_t *res = stt_xcalloc(n, sizeof *res);
    stt_doc_t *docs = stt_xcalloc(n, sizeof *docs);
    bool *have = stt_xcalloc(n, sizeof *have);

    if (stt_db_open(G.store, STT_GLOBAL_CHANGES_DB, sizeof(STT_GLOBAL_CHANGES_DB) - 1, &db)) goto exit;
    if (stt_reader_open(db, &rd) == 0) {
        for (size_t i = 0; i < n; i++) {
            w[i].id = ids[i];
            w[i].idlen = strlen(ids[i]);
            w[i].body = "{}";
            w[i].bodylen = 2;
            if (stt_doc_get(rd, ids[i], w[i].idlen, &docs[i]) != 0) continue;
            have[i] = true;
            const stt_revtree_t *t = &docs[i].tree;
            const stt_rev_node_t *win = &t->nodes[docs[i].winner];
            if (win->flags & STT_REV_DELETED) continue; /* a new edit extends a deleted winner by itself */
            w[i].has_prev = true;
            w[i].prev = (stt_rev_t){win->gen, stt_revtree_id(t, docs[i].winner), win->idlen};
        }
        if (stt_doc_write(db, w, n, true, res) == 0) stt_stats_inc(STT_ST_GLOBAL_CHANGES_DB_WRITES);
        stt_reader_close(rd);
    }
    stt_db_release(db);
exit:
    for (size_t i = 0; i < n; i++)
        if (have[i]) stt_doc_free(&docs[i]);
    free(w);
    free(res);
    free(docs);
    free(have);
}

static void *writer_main(void *arg)
{
    pthread_mutex_lock(&G.lock);
    for (;;) {
        while (!G.stopping && G.n == 0)
            pthread_cond_wait(&G.cond, &G.lock);
        if (G.stopping) break;
        /* let events coalesce; a stop ends the wait early */
        int64_t delay = stt_ini_get_int(G.ini, "global_changes", "max_write_delay", DEFAULT_DELAY_MS);
        if (delay > 0) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += delay / 1000;
            until.tv_nsec += (delay % 1000) * 1000000;
            if (until.tv_nsec >= 1000000000) until.tv_sec++, until.tv_nsec -= 1000000000;
            while (!G.stopping && pthread_cond_timedwait(&G.cond, &G.lock, &until) == 0)
                ;
            if (G.stopping) break;
        }
        char **set = G.set;
        size_t cap = G.cap, n = 0;
        G.set = NULL;
        G.cap = G.n = 0;
        pthread_mutex_unlock(&G.lock);

        char **ids = stt_xcalloc(cap ? cap : 1, sizeof *ids);
        for (size_t i = 0; i < cap; i++)
            if (set[i]) ids[n++] = set[i];
        if (n && stt_ini_get_bool(G.ini, "global_changes", "update_db", true)) write_batch(ids, n);
        for (size_t i = 0; i < n; i++)
            free(ids[i]);
        free(ids);
        free(set);
        pthread_mutex_lock(&G.lock);
    }
    pthread_mutex_unlock(&G.lock);
    return NULL;
}

void stt_global_changes_start(stt_store_t *store, stt_ini_t *ini)
{
    stt_db_t *db;
    G.store = store;
    G.ini = ini;
    if (stt_db_open(store, STT_GLOBAL_CHANGES_DB, sizeof(STT_GLOBAL_CHANGES_DB) - 1, &db) == 0) {
        atomic_store(&G.exists, true);
        stt_db_release(db);
    }
    G.stopping = false;
    if (pthread_create(&G.tid, NULL, writer_main, NULL) == 0) G.started = true;
}

void stt_global_changes_stop(void)
{
    if (!G.started) return;
    pthread_mutex_lock(&G.lock);
    G.stopping = true;
    pthread_cond_broadcast(&G.cond);
    pthread_mutex_unlock(&G.lock);
    pthread_join(G.tid, NULL);
    G.started = false;
    for (size_t i = 0; i < G.cap; i++)
        free(G.set[i]);
    free(G.set);
    G.set = NULL;
    G.n = G.cap = 0;
}
