/* The background indexer of access databases: every commit to one queues it
 * (stt_access_notify, from the store's commit hook), and one thread brings its
 * access index up to date (stt_access_sync). A user's read still syncs first,
 * but then finds the index current or nearly so instead of paying for every
 * write since the last read, on its event loop. The queue holds each db once,
 * with a reference; stt_access_stop drains nothing: what is left is synced by
 * the next read. */
#include "access/access.h"
#include "src/common/log.h"
#include <pthread.h>
#include <stdlib.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static pthread_t tid;
static bool started, stopping;
static stt_db_t **q;
static size_t nq, capq;

static void *run(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lock);
    for (;;) {
        while (!nq && !stopping)
            pthread_cond_wait(&cond, &lock);
        if (stopping) break;
        stt_db_t *db = q[0];
        for (size_t i = 1; i < nq; i++)
            q[i - 1] = q[i];
        nq--;
        pthread_mutex_unlock(&lock);
        uint64_t upto;
        if (stt_access_sync(db, &upto) != 0) {
            size_t len;
            const char *name = stt_db_name(db, &len);
            stt_log(STT_LOG_WARNING, "access index of %.*s: sync failed (the next read retries)", (int)len, name);
        }
        stt_db_release(db);
        pthread_mutex_lock(&lock);
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

void stt_access_notify(stt_db_t *db)
{
    if (!stt_access_enabled(db)) return;
    pthread_mutex_lock(&lock);
    bool queued = stopping;
    for (size_t i = 0; i < nq && !queued; i++)
        queued = q[i] == db;
    if (!queued) {
        if (!started) {
            started = pthread_create(&tid, NULL, run, NULL) == 0;
            if (!started) {
                pthread_mutex_unlock(&lock);
                return; /* reads sync on their own */
            }
        }
        if (nq == capq) {
            capq = capq ? capq * 2 : 16;
            q = stt_xrealloc(q, capq * sizeof(*q));
        }
        stt_db_retain(db);
        q[nq++] = db;
        pthread_cond_signal(&cond);
    }
    pthread_mutex_unlock(&lock);
}

void stt_access_stop(void)
{
    pthread_mutex_lock(&lock);
    stopping = true;
    pthread_cond_signal(&cond);
    bool join = started;
    pthread_mutex_unlock(&lock);
    if (join) pthread_join(tid, NULL);
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < nq; i++)
        stt_db_release(q[i]);
    free(q);
    q = NULL;
    nq = capq = 0;
    started = false;
    stopping = false;
    pthread_mutex_unlock(&lock);
}
