/* Password hashing off the event loops. A password check that misses the
 * credential cache costs a 600000-iteration PBKDF2 (a quarter of a second or more):
 * run on a loop it would stall every other connection of that loop. Such checks
 * are queued to a small pool of threads; the answer comes back to the request's
 * loop through an h2o multithread message, where the request goes on.
 *
 * The queue is bounded: past STT_AUTHPOOL_MAX waiting checks a new one is refused
 * (the caller answers 429), so a flood of logins costs bounded memory and cannot
 * queue work without end. A request whose client goes away while its check runs
 * is detached (stt_authpool_orphan); the check finishes and is dropped. */
#include "src/http/authpool.h"
#include <pthread.h>
#include <stdlib.h>

#define NTHREADS 2

typedef struct {
    h2o_multithread_receiver_t recv;
} slot_t;

static struct {
    pthread_t tids[NTHREADS];
    int nstarted;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    stt_authwait_t *head, *tail;
    size_t queued;
    int stop;
    slot_t *slots;
    size_t nslots;
} P = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void on_done(h2o_multithread_receiver_t *recv, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages)) {
        stt_authwait_t *w = H2O_STRUCT_FROM_MEMBER(stt_authwait_t, msg.link, messages->next);
        h2o_linklist_unlink(&w->msg.link);
        if (w->r) {
            w->r->authwait = NULL;
            w->done(w->r, w->job);
        }
        stt_auth_job_free(w->job);
        free(w);
    }
}

static void *pool_main(void *arg)
{
    pthread_mutex_lock(&P.lock);
    for (;;) {
        while (!P.head && !P.stop)
            pthread_cond_wait(&P.cond, &P.lock);
        if (!P.head) break;
        stt_authwait_t *w = P.head;
        P.head = w->next;
        if (!P.head) P.tail = NULL;
        P.queued--;
        pthread_mutex_unlock(&P.lock);
        stt_auth_job_run(w->job);
        h2o_multithread_send_message(&P.slots[w->worker].recv, &w->msg);
        pthread_mutex_lock(&P.lock);
    }
    pthread_mutex_unlock(&P.lock);
    return NULL;
}

void stt_authpool_init(size_t nworkers)
{
    P.nslots = nworkers;
    P.slots = stt_xcalloc(nworkers, sizeof(*P.slots));
}

void stt_authpool_worker_init(size_t index, h2o_loop_t *loop)
{
    h2o_multithread_queue_t *q = h2o_multithread_create_queue(loop);
    h2o_multithread_register_receiver(q, &P.slots[index].recv, on_done);
}

void stt_authpool_start(void)
{
    for (int i = 0; i < NTHREADS; i++)
        if (pthread_create(&P.tids[P.nstarted], NULL, pool_main, NULL) == 0) P.nstarted++;
}

void stt_authpool_stop(void)
{
    pthread_mutex_lock(&P.lock);
    P.stop = 1;
    pthread_cond_broadcast(&P.cond);
    pthread_mutex_unlock(&P.lock);
    for (int i = 0; i < P.nstarted; i++)
        pthread_join(P.tids[i], NULL);
    P.nstarted = 0;
    /* what was still queued had no loop left to answer */
    while (P.head) {
        stt_authwait_t *w = P.head;
        P.head = w->next;
        stt_auth_job_free(w->job);
        free(w);
    }
    P.tail = NULL;
    P.queued = 0;
}

int stt_authpool_submit(stt_hreq_t *r, stt_auth_job_t *job, void (*done)(stt_hreq_t *r, stt_auth_job_t *job))
{
    if (!P.nstarted) { /* no pool (tools, tests): hash inline */
        stt_auth_job_run(job);
        done(r, job);
        stt_auth_job_free(job);
        return 0;
    }
    pthread_mutex_lock(&P.lock);
    if (P.queued >= STT_AUTHPOOL_MAX) {
        pthread_mutex_unlock(&P.lock);
        stt_auth_job_free(job);
        return -1;
    }
    stt_authwait_t *w = stt_xcalloc(1, sizeof(*w));
    w->job = job;
    w->r = r;
    w->done = done;
    w->worker = stt_worker_index(r->w);
    r->authwait = w;
    if (P.tail)
        P.tail->next = w;
    else
        P.head = w;
    P.tail = w;
    P.queued++;
    pthread_cond_signal(&P.cond);
    pthread_mutex_unlock(&P.lock);
    return 0;
}

void stt_authpool_orphan(stt_hreq_t *r)
{
    r->authwait->r = NULL;
    r->authwait = NULL;
}
