/* The writer thread (writer.c): group commit for document writes, off the event
 * loops. Private to src/http. */
#ifndef STT_WRITER_H
#define STT_WRITER_H
#include "design/design.h"
#include "src/http/http.h"
#include "src/http/offload.h"

typedef struct stt_wjob stt_wjob_t;
struct stt_wjob {
    stt_write_job_t job; /* res is malloc'd by stt_writer_job, freed after done() */
    stt_hreq_t *r;       /* NULL once the request went away */
    size_t worker;
    void (*done)(stt_wjob_t *j); /* on the request's loop, with job.rc and job.res set */
    void *ctx;
    h2o_multithread_message_t msg;
    stt_wjob_t *next;
    stt_arena_t orphan_arena; /* taken from a request disposed while in flight */
    stt_db_t *orphan_db;
    /* docs refused before the store (stt__authorize_writes): the request's own
     * list and outcomes; job.docs then holds only the accepted ones */
    stt_doc_write_t *all_docs;
    size_t nall;
    stt_doc_result_t *all_res;
    /* validation on an offload thread before the writer (design docs, validators):
     * what it reads and writes lives in varena, freed with the job */
    stt_offload_t off;
    stt_arena_t varena;
    stt_vdu_set_t *vdus;
    stt_vdu_ctx_t vctx;
    /* Attachment bytes borrowed from the request's HTTP/1 body instead of copied
     * (long ones, see own_write in h_doc.c). h2o frees that body right after the
     * request is disposed, so the writer pins it while it commits: a request disposed
     * meanwhile waits for the pin (stt_writer_orphan), and a job whose request was
     * disposed before its commit is dropped. Guarded by the writer's lock. */
    bool borrows_body, pinned, body_gone;
};

void stt_writer_init(size_t nworkers);
void stt_writer_worker_init(size_t index, h2o_loop_t *loop);
void stt_writer_start(void);
/* Commits what is queued, then stops the thread. */
void stt_writer_stop(void);
/* A job for r's db; docs must live in r's arena (they outlive r if it goes away). */
stt_wjob_t *stt_writer_job(stt_hreq_t *r, const stt_doc_write_t *docs, size_t n, bool new_edits,
                           void (*done)(stt_wjob_t *j), void *ctx);
void stt_writer_submit(stt_wjob_t *j);
/* Called when r is disposed while r->inflight is set. */
void stt_writer_orphan(stt_hreq_t *r);

#endif
