/* View work off the event loops. Building an index maps documents through
 * query-server processes and a query may fold thousands of rows: both block,
 * so a view request is parsed on its loop, run as a job on a small pool of
 * threads, and answered back on its loop through an h2o multithread message
 * (the pattern of authpool.c). A request whose client went away while its job
 * ran is detached through a guard in its h2o pool; the job finishes and its
 * answer is dropped.
 *
 * The query-server pool views use is the server's (server.c sets it at start);
 * a process without one (tools, tests) makes its own here on first use, from the
 * live [query_servers] configuration. */
#include "src/http/http.h"
#include "index/index.h"
#include <pthread.h>
#include <stdlib.h>

#define NTHREADS 3
#define MAX_QUEUED 1024

typedef struct {
    h2o_multithread_queue_t *queue;
    h2o_multithread_receiver_t recv;
} slot_t;

typedef struct {
    stt_vjob_t *job;
} guard_t;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t tids[NTHREADS];
    int nstarted;
    stt_vjob_t *head, *tail;
    size_t queued;
    slot_t *slots;
    size_t nslots;
} P = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

/* ------------------------------------------------------------------ the query-server pool */

static pthread_once_t qs_once = PTHREAD_ONCE_INIT;

static void qs_make(void)
{
    stt_qs_config_t qc;
    stt_qs_config_default(&qc, NULL);
    if (stt__server && stt__server->ini) stt_qs_config_from_ini(&qc, stt__server->ini);
    stt_qs_config_from_env(&qc);
    stt_qs_pool_t *pool = NULL;
    if (stt_qs_pool_new(&qc, &pool) == 0) stt_index_set_pool(pool);
}

stt_qs_pool_t *stt__views_qs(void)
{
    if (!stt_index_pool()) pthread_once(&qs_once, qs_make);
    return stt_index_pool();
}

/* ------------------------------------------------------------------ jobs */

void stt_vjob_free(stt_vjob_t *j)
{
    if (!j) return;
    if (j->ctx && j->ctx_free) j->ctx_free(j);
    if (j->db) stt_db_release(j->db);
    stt_buf_free(&j->body);
    stt_arena_free(&j->arena);
    free(j);
}

static void on_done(h2o_multithread_receiver_t *recv, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages)) {
        stt_vjob_t *j = H2O_STRUCT_FROM_MEMBER(stt_vjob_t, msg.link, messages->next);
        h2o_linklist_unlink(&j->msg.link);
        if (j->r) {
            ((guard_t *)j->guard)->job = NULL;
            stt_hreq_t *r = j->r;
            if (j->done)
                j->done(r, j);
            else
                stt_reply_json(r, j->status, &j->body);
        }
        stt_vjob_free(j);
    }
}

static void *pool_main(void *arg)
{
    pthread_mutex_lock(&P.lock);
    for (;;) {
        while (!P.head)
            pthread_cond_wait(&P.cond, &P.lock);
        stt_vjob_t *j = P.head;
        P.head = j->next;
        if (!P.head) P.tail = NULL;
        P.queued--;
        pthread_mutex_unlock(&P.lock);
        j->run(j);
        if (j->worker == SIZE_MAX)
            stt_vjob_free(j); /* background work: nobody waits */
        else
            h2o_multithread_send_message(&P.slots[j->worker].recv, &j->msg);
        pthread_mutex_lock(&P.lock);
    }
    return NULL;
}

/* The pool threads run for the life of the process: a view build that is
 * under way at shutdown is simply abandoned (its header says where to go on). */
static void start_threads(void)
{
    P.nslots = stt__server ? stt__server->nworkers : 1;
    P.slots = stt_xcalloc(P.nslots, sizeof(*P.slots));
    for (int i = 0; i < NTHREADS; i++) {
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&P.tids[P.nstarted], &at, pool_main, NULL) == 0) P.nstarted++;
        pthread_attr_destroy(&at);
    }
}

static pthread_once_t threads_once = PTHREAD_ONCE_INIT;

static void guard_dispose(void *p)
{
    guard_t *g = p;
    if (g->job) g->job->r = NULL;
}

static void enqueue(stt_vjob_t *j)
{
    if (P.tail)
        P.tail->next = j;
    else
        P.head = j;
    P.tail = j;
    P.queued++;
    pthread_cond_signal(&P.cond);
}

int stt_vjob_submit(stt_hreq_t *r, stt_vjob_t *j)
{
    pthread_once(&threads_once, start_threads);
    stt__views_qs();
    size_t wi = stt_worker_index(r->w);
    if (wi >= P.nslots) {
        stt_vjob_free(j);
        return -1;
    }
    /* queues are made on the loop's own thread (h2o keeps per-thread allocators) */
    if (!P.slots[wi].queue) {
        P.slots[wi].queue = h2o_multithread_create_queue(stt_worker_loop(r->w));
        h2o_multithread_register_receiver(P.slots[wi].queue, &P.slots[wi].recv, on_done);
    }
    pthread_mutex_lock(&P.lock);
    if (P.queued >= MAX_QUEUED) {
        pthread_mutex_unlock(&P.lock);
        stt_vjob_free(j);
        return -1;
    }
    guard_t *g = h2o_mem_alloc_shared(&r->req->pool, sizeof(*g), guard_dispose);
    g->job = j;
    j->guard = g;
    j->r = r;
    j->worker = wi;
    enqueue(j);
    pthread_mutex_unlock(&P.lock);
    return 0;
}

void stt_vjob_background(stt_vjob_t *j)
{
    pthread_once(&threads_once, start_threads);
    j->worker = SIZE_MAX;
    pthread_mutex_lock(&P.lock);
    if (P.queued >= MAX_QUEUED) {
        pthread_mutex_unlock(&P.lock);
        stt_vjob_free(j);
        return;
    }
    enqueue(j);
    pthread_mutex_unlock(&P.lock);
}
