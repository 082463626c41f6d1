/* The background indexer (CouchDB's "ken"): keeps the view indexes of written
 * databases warm, so that a query finds little left to map and update=false
 * answers catch up soon after writes.
 *
 * A commit queues its database (stt_index_bg_notify, from the store's commit
 * hook: cheap, no I/O). A queued database is due delay ms after the last commit
 * to it, but never later than DEBOUNCE_MAX delays after the first one, so a
 * steady stream of writes is still indexed. A worker takes the database whose
 * turn came first and brings each index of its design docs up to date: JS
 * views and Mango json indexes alike (stt__index_update_ctl, build.c), one at a
 * time, as running updates in _active_tasks.
 *
 * Bounds. workers threads (at most MAX_WORKERS) run at once; a database is
 * worked on by one of them at a time. A turn maps at most TURN_DOCS docs, then
 * hands the database back to the end of the queue, so one large build does not
 * hold back the other databases. An index being updated by a query is not
 * waited for (that would hold a worker for the length of someone else's
 * build): the database is tried again a delay later.
 *
 * Settings, read live: [settee] view_background_index (true) turns it on and
 * off, [settee] view_background_index_delay (ms, 500) is the debounce. [ken]
 * batch_channels (CouchDB: concurrent background builds, 20 there) is the
 * number of worker threads, read at start: 1 by default here.
 *
 * Shutdown. stt_index_bg_stop stops a running update between two batches
 * (what was committed stays: the next update goes on from the index's seq),
 * joins the threads and drops the queue. */
#include "index/index_int.h"
#include "src/common/err.h"
#include "src/common/log.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_WORKERS 4
#define DEBOUNCE_MAX 5
#define TURN_DOCS 10000
#define DEFAULT_DELAY_MS 500

typedef struct {
    stt_db_t *db; /* a reference of the queue's */
    uint64_t first, due;
} entry_t;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t tids[MAX_WORKERS];
    int nworkers;
    bool stopping;
    stt_ini_t *ini;
    uint64_t ini_gen; /* the generation the two settings below were read at */
    bool loaded;
    bool enabled;
    uint64_t delay_ms;
    entry_t *q;
    size_t nq, capq;
    stt_db_t *running[MAX_WORKERS]; /* the db each worker is on, or NULL */
} K = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Under K.lock: the live settings, re-read when the configuration changed. */
static void settings(void)
{
    if (!K.ini) return;
    uint64_t gen = stt_ini_generation(K.ini);
    if (K.loaded && gen == K.ini_gen) return;
    K.loaded = true;
    K.ini_gen = gen;
    K.enabled = stt_ini_get_bool(K.ini, "settee", "view_background_index", true);
    int64_t d = stt_ini_get_int(K.ini, "settee", "view_background_index_delay", DEFAULT_DELAY_MS);
    K.delay_ms = d < 0 ? 0 : d > 3600000 ? 3600000 : (uint64_t)d;
}

/* ------------------------------------------------------------------ one database */

typedef struct {
    stt_arena_t *arena;
    char **ids;
    size_t n, cap;
} ddocs_t;

static int on_ddoc(void *ctx, const stt_doc_summary_t *s)
{
    ddocs_t *d = ctx;
    if (s->idlen < 8 || memcmp(s->id, "_design/", 8) != 0) return 1;
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 8;
        char **ids = stt_arena_alloc(d->arena, d->cap * sizeof(*ids));
        if (d->n) memcpy(ids, d->ids, d->n * sizeof(*ids));
        d->ids = ids;
    }
    d->ids[d->n++] = stt_arena_strndup(d->arena, s->id, s->idlen);
    return 0;
}

static bool turn_over(stt__update_ctl_t *ctl)
{
    uint64_t *budget = ctl->ctx;
    return __atomic_load_n(&K.stopping, __ATOMIC_ACQUIRE) || ctl->ndocs >= *budget;
}

enum { DONE, SPENT, BUSY };

/* Brings db's indexes up to date, within a turn's budget: DONE, or what is
 * left for a later turn: SPENT (the budget), BUSY (an index updated
 * elsewhere). */
static int index_db(stt_db_t *db)
{
    stt_arena_t arena = STT_ARENA_INIT;
    ddocs_t d = {.arena = &arena};
    stt_reader_t *rd;
    int more = DONE;
    if (stt_reader_open(db, &rd) != 0) return DONE;
    stt_range_t range = {.start = "_design/", .startlen = 8, .end = "_design0", .endlen = 8};
    int rc = stt_docs_scan(rd, &range, on_ddoc, &d);
    stt_reader_close(rd);
    uint64_t budget = TURN_DOCS;
    stt_qs_pool_t *pool = stt_index_pool();
    for (size_t i = 0; rc == 0 && i < d.n && !__atomic_load_n(&K.stopping, __ATOMIC_ACQUIRE); i++) {
        stt_ddoc_views_t dv;
        if (stt_ddoc_views_load(db, d.ids[i], &arena, &dv) != 0 || dv.nviews == 0) continue;
        bool native = strcmp(dv.lang, STT_INDEX_NATIVE_LANG) == 0;
        if (!native && (!pool || !stt_qs_has_lang(pool, dv.lang))) continue; /* a query answers its error */
        stt__update_ctl_t ctl = {.stop = turn_over, .ctx = &budget, .nowait = true};
        stt_qs_err_t err = {0};
        int urc = stt__index_update_ctl(db, &dv, &arena, &err, &ctl);
        budget = ctl.ndocs >= budget ? 0 : budget - ctl.ndocs;
        if (urc) {
            /* a map or _stats error fails the index as it does a query, which
             * will answer it: nothing to retry here until the next write */
            size_t nl;
            const char *name = stt_db_name(db, &nl);
            stt_log(STT_LOG_DEBUG, "background index of %.*s/%s: %s (%s)", (int)nl, name, dv.ddoc_id,
                    err.error ? err.error : "error", err.reason ? err.reason : "");
        }
        if (ctl.partial && more != BUSY) more = budget ? BUSY : SPENT;
    }
    stt_arena_free(&arena);
    return __atomic_load_n(&K.stopping, __ATOMIC_ACQUIRE) ? DONE : more;
}

/* ------------------------------------------------------------------ queue and workers */

/* Under K.lock: db's entry, or NULL. */
static entry_t *find(stt_db_t *db)
{
    for (size_t i = 0; i < K.nq; i++)
        if (K.q[i].db == db) return &K.q[i];
    return NULL;
}

/* Under K.lock: queues db (taking a reference) or pushes its turn back. */
static void enqueue(stt_db_t *db, uint64_t due, uint64_t now)
{
    entry_t *e = find(db);
    if (e) {
        uint64_t latest = e->first + DEBOUNCE_MAX * K.delay_ms;
        e->due = due < latest ? due : latest;
        return;
    }
    if (K.nq == K.capq) {
        K.capq = K.capq ? K.capq * 2 : 16;
        K.q = stt_xrealloc(K.q, K.capq * sizeof(*K.q));
    }
    stt_db_retain(db);
    K.q[K.nq++] = (entry_t){db, now, due};
    pthread_cond_signal(&K.cond);
}

static bool is_running(stt_db_t *db)
{
    for (int i = 0; i < K.nworkers; i++)
        if (K.running[i] == db) return true;
    return false;
}

static void *worker(void *arg)
{
    int w = (int)(intptr_t)arg;
    pthread_mutex_lock(&K.lock);
    while (!K.stopping) {
        uint64_t now = now_ms(), next = UINT64_MAX;
        size_t pick = SIZE_MAX;
        for (size_t i = 0; i < K.nq; i++) {
            if (is_running(K.q[i].db)) continue;
            if (K.q[i].due <= now && (pick == SIZE_MAX || K.q[i].due < K.q[pick].due)) pick = i;
            if (K.q[i].due < next) next = K.q[i].due;
        }
        if (pick == SIZE_MAX) {
            if (next == UINT64_MAX) {
                pthread_cond_wait(&K.cond, &K.lock);
            } else {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                uint64_t wait = next > now ? next - now : 10; /* due, but its db is busy */
                ts.tv_sec += (time_t)(wait / 1000);
                ts.tv_nsec += (long)(wait % 1000) * 1000000;
                if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
                pthread_cond_timedwait(&K.cond, &K.lock, &ts);
            }
            continue;
        }
        stt_db_t *db = K.q[pick].db;
        K.q[pick] = K.q[--K.nq];
        K.running[w] = db;
        settings();
        bool enabled = K.enabled;
        pthread_mutex_unlock(&K.lock);
        int more = enabled ? index_db(db) : DONE;
        pthread_mutex_lock(&K.lock);
        K.running[w] = NULL;
        if (more != DONE && !K.stopping && !find(db)) {
            /* a spent turn goes to the back of the due ones, a busy index is
             * tried again after a delay; enqueue takes its own reference */
            now = now_ms();
            enqueue(db, more == BUSY ? now + K.delay_ms : now, now);
        }
        pthread_cond_broadcast(&K.cond); /* a db this worker held may be due for another */
        pthread_mutex_unlock(&K.lock);
        stt_db_release(db);
        pthread_mutex_lock(&K.lock);
    }
    pthread_mutex_unlock(&K.lock);
    return NULL;
}

/* ------------------------------------------------------------------ public */

void stt_index_bg_start(stt_ini_t *ini)
{
    pthread_mutex_lock(&K.lock);
    K.ini = ini;
    K.loaded = false;
    K.stopping = false;
    settings();
    int64_t n = ini ? stt_ini_get_int(ini, "ken", "batch_channels", 1) : 1;
    n = n < 1 ? 1 : n > MAX_WORKERS ? MAX_WORKERS : n;
    K.nworkers = 0;
    for (int i = 0; i < n; i++)
        if (pthread_create(&K.tids[K.nworkers], NULL, worker, (void *)(intptr_t)K.nworkers) == 0) K.nworkers++;
    pthread_mutex_unlock(&K.lock);
}

void stt_index_bg_notify(stt_db_t *db)
{
    pthread_mutex_lock(&K.lock);
    if (K.nworkers && !K.stopping) {
        settings();
        if (K.enabled) {
            uint64_t now = now_ms();
            enqueue(db, now + K.delay_ms, now);
        }
    }
    pthread_mutex_unlock(&K.lock);
}

void stt_index_bg_stop(void)
{
    pthread_mutex_lock(&K.lock);
    __atomic_store_n(&K.stopping, true, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&K.cond);
    int n = K.nworkers;
    pthread_mutex_unlock(&K.lock);
    for (int i = 0; i < n; i++)
        pthread_join(K.tids[i], NULL);
    pthread_mutex_lock(&K.lock);
    for (size_t i = 0; i < K.nq; i++)
        stt_db_release(K.q[i].db);
    free(K.q);
    K.q = NULL;
    K.nq = K.capq = 0;
    K.nworkers = 0;
    K.ini = NULL;
    pthread_mutex_unlock(&K.lock);
}
