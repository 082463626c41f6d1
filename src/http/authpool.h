/* Password checks off the event loops (authpool.c). Private to src/http. */
#ifndef STT_AUTHPOOL_H
#define STT_AUTHPOOL_H
#include "src/http/http.h"

#define STT_AUTHPOOL_MAX 256 /* checks waiting at once */

typedef struct stt_authwait stt_authwait_t;
struct stt_authwait {
    stt_auth_job_t *job;
    stt_hreq_t *r; /* NULL once the request went away */
    size_t worker;
    void (*done)(stt_hreq_t *r, stt_auth_job_t *job); /* on the request's loop */
    h2o_multithread_message_t msg;
    stt_authwait_t *next;
};

void stt_authpool_init(size_t nworkers);
void stt_authpool_worker_init(size_t index, h2o_loop_t *loop);
void stt_authpool_start(void);
void stt_authpool_stop(void);
/* Queues job for r; done runs on r's loop afterwards (not when r went away). The
 * job is the pool's from here on. -1 (job freed) when the queue is full. */
int stt_authpool_submit(stt_hreq_t *r, stt_auth_job_t *job, void (*done)(stt_hreq_t *r, stt_auth_job_t *job));
/* Called when r is disposed while r->authwait is set. */
void stt_authpool_orphan(stt_hreq_t *r);

#endif
