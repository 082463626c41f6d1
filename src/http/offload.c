/* A small pool of threads for work that blocks on something other than the disk:
 * validate_doc_update, _changes filters and _update handlers wait for a
 * query-server process and for the function itself, up to os_process_timeout.
 * On a loop that wait would stall every connection of the loop; here it stalls
 * one thread. A function that loops forever holds its thread for the timeout, so
 * there are several, and the queue in front of them is unbounded only in the
 * sense that every entry belongs to a request that is waiting for it (a loop
 * submits at most one unit per request at a time). */
#include "src/http/offload.h"
#include <pthread.h>
#include <stdlib.h>

#define NTHREADS 8

typedef struct {
    h2o_multithread_receiver_t recv;
} slot_t;

static struct {
    pthread_t tids[NTHREADS];
    int nstarted;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    stt_offload_t *head, *tail;
    int stop;
    slot_t *slots;
    size_t nslots;
} P = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void on_done(h2o_multithread_receiver_t *recv, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages)) {
        stt_offload_t *o = H2O_STRUCT_FROM_MEMBER(stt_offload_t, msg.link, messages->next);
        h2o_linklist_unlink(&o->msg.link);
        o->done(o);
    }
}

static void *pool_main(void *arg)
{
    pthread_mutex_lock(&P.lock);
    for (;;) {
        while (!P.head && !P.stop)
            pthread_cond_wait(&P.cond, &P.lock);
        if (!P.head) break;
        stt_offload_t *o = P.head;
        P.head = o->next;
        if (!P.head) P.tail = NULL;
        pthread_mutex_unlock(&P.lock);
        bool post = o->done != NULL; /* run() may free o when it hands it on */
        size_t worker = o->worker;
        o->run(o);
        if (post) h2o_multithread_send_message(&P.slots[worker].recv, &o->msg);
        pthread_mutex_lock(&P.lock);
    }
    pthread_mutex_unlock(&P.lock);
    return NULL;
}

void stt_offload_init(size_t nworkers)
{
    P.nslots = nworkers;
    P.slots = stt_xcalloc(nworkers, sizeof(*P.slots));
}

void stt_offload_worker_init(size_t index, h2o_loop_t *loop)
{
    h2o_multithread_queue_t *q = h2o_multithread_create_queue(loop);
    h2o_multithread_register_receiver(q, &P.slots[index].recv, on_done);
}

void stt_offload_start(void)
{
    for (int i = 0; i < NTHREADS; i++)
        if (pthread_create(&P.tids[P.nstarted], NULL, pool_main, NULL) == 0) P.nstarted++;
}

bool stt_offload_running(void)
{
    return P.nstarted > 0;
}

void stt_offload_stop(void)
{
    pthread_mutex_lock(&P.lock);
    P.stop = 1;
    pthread_cond_broadcast(&P.cond);
    pthread_mutex_unlock(&P.lock);
    for (int i = 0; i < P.nstarted; i++)
        pthread_join(P.tids[i], NULL);
    P.nstarted = 0;
    P.head = P.tail = NULL;
}

void stt_offload_post(stt_offload_t *o)
{
    h2o_multithread_send_message(&P.slots[o->worker].recv, &o->msg);
}

void stt_offload_submit(stt_offload_t *o)
{
    if (!P.nstarted) {
        void (*done)(stt_offload_t *) = o->done;
        o->run(o);
        if (done) done(o);
        return;
    }
    o->next = NULL;
    pthread_mutex_lock(&P.lock);
    if (P.tail)
        P.tail->next = o;
    else
        P.head = o;
    P.tail = o;
    pthread_cond_signal(&P.cond);
    pthread_mutex_unlock(&P.lock);
}
