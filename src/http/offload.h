/* Blocking work off the event loops (offload.c): design functions that wait for a
 * query-server process. Private to src/http. */
#ifndef STT_OFFLOAD_H
#define STT_OFFLOAD_H
#include "src/http/http.h"

/* A unit of work, embedded first-or-anywhere in its owner's struct (find the owner
 * with H2O_STRUCT_FROM_MEMBER). run() runs on a pool thread and must not touch the
 * request (it may go away meanwhile); done() then runs on the loop of `worker`,
 * always: it finds out there whether its request is still alive and frees the
 * owner. */
typedef struct stt_offload stt_offload_t;
struct stt_offload {
    void (*run)(stt_offload_t *o);
    void (*done)(stt_offload_t *o); /* NULL: run() hands the owner on by itself */
    size_t worker;
    h2o_multithread_message_t msg;
    stt_offload_t *next;
};

void stt_offload_init(size_t nworkers);
void stt_offload_worker_init(size_t index, h2o_loop_t *loop);
void stt_offload_start(void);
/* Joins the threads; work still queued is dropped (its loops are gone). */
void stt_offload_stop(void);
/* Queues o. Without threads (tools, tests) run and done are called inline. */
void stt_offload_submit(stt_offload_t *o);
/* Runs o->done on the loop of o->worker, from any thread (work that ran on a
 * thread of its own, such as a replication). */
void stt_offload_post(stt_offload_t *o);
/* Whether threads run (false: stt_offload_submit runs inline). */
bool stt_offload_running(void);

#endif
