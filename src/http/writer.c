/* The writer thread: document writes leave the event loops and are committed in
 * groups.
 *
 * A handler parses its request on its loop, then submits a job and returns. The
 * writer takes every job queued since its last commit, applies them all through
 * stt_doc_write_group (one synced LevelDB batch: one fsync for many requests) and
 * posts each job back to the loop it came from, where its done() builds the reply.
 * Loops never wait for the disk, and concurrent writers to one database share
 * fsyncs instead of queueing on the database's lock.
 *
 * A client may go away while its job is in flight: h2o then disposes the request,
 * and on_dispose hands the request's arena and db reference to the job (see
 * stt_writer_orphan) so the data the writer reads stays alive until the job is
 * back on its loop.
 *
 * Validation comes first. A batch that holds a design doc, or goes to a database
 * with validate_doc_update functions, takes a detour through the offload pool:
 * there the design docs are checked and the validators run (blocking on the query
 * server), refused docs leave the batch with their error, and the rest is queued
 * to the writer from that thread. Other batches go straight to the writer. */
#include "src/http/writer.h"
#include "src/common/err.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_GROUP_JOBS 512

typedef struct {
    h2o_multithread_receiver_t recv;
} worker_slot_t;

static struct {
    pthread_t tid;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_cond_t unpinned; /* a commit that pinned borrowed bodies is over */
    stt_wjob_t *head, *tail;
    int stop, started;
    worker_slot_t *slots;
    size_t nslots;
} W = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER, .unpinned = PTHREAD_COND_INITIALIZER};

/* Puts the refused docs back in their places so done() sees the request's own
 * list, and runs what follows a committed write. */
static void finish(stt_wjob_t *j)
{
    if (j->all_docs) {
        size_t k = 0;
        for (size_t i = 0; i < j->nall; i++)
            if (!j->all_res[i].err) j->all_res[i] = j->job.res[k++];
        free(j->job.res);
        j->job.res = j->all_res;
        j->job.docs = j->all_docs;
        j->job.n = j->nall;
        j->all_docs = NULL;
    }
    if (!j->job.rc && j->r) stt__after_writes(j->job.db, j->job.docs, j->job.n, j->job.res);
}

/* A committed batch that wrote a design doc changes the db's validators. */
static void ddocs_changed(stt_wjob_t *j)
{
    if (j->job.rc) return;
    for (size_t i = 0; i < j->job.n; i++)
        if (!j->job.res[i].err && j->job.docs[i].idlen > 8 && memcmp(j->job.docs[i].id, "_design/", 8) == 0) {
            stt_design_changed(j->job.db);
            return;
        }
}

static void job_free(stt_wjob_t *j)
{
    free(j->job.res);
    stt_vdu_set_release(j->vdus);
    stt_arena_free(&j->varena);
    free(j);
}

static void on_done(h2o_multithread_receiver_t *recv, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages)) {
        stt_wjob_t *j = H2O_STRUCT_FROM_MEMBER(stt_wjob_t, msg.link, messages->next);
        h2o_linklist_unlink(&j->msg.link);
        if (j->r) {
            j->r->inflight = NULL;
            finish(j);
            j->done(j);
        } else {
            if (j->all_docs) free(j->all_res);
            stt_arena_free(&j->orphan_arena);
            if (j->orphan_db) stt_db_release(j->orphan_db);
        }
        job_free(j);
    }
}

static void *writer_main(void *arg)
{
    stt_write_job_t jobs[MAX_GROUP_JOBS];
    stt_wjob_t *taken[MAX_GROUP_JOBS];
    size_t index[MAX_GROUP_JOBS];
    pthread_mutex_lock(&W.lock);
    for (;;) {
        while (!W.head && !W.stop)
            pthread_cond_wait(&W.cond, &W.lock);
        if (!W.head && W.stop) break;
        size_t n = 0;
        while (W.head && n < MAX_GROUP_JOBS) {
            taken[n++] = W.head;
            W.head = W.head->next;
        }
        if (!W.head) W.tail = NULL;
        size_t m = 0, npinned = 0;
        for (size_t i = 0; i < n; i++) {
            stt_wjob_t *j = taken[i];
            if (j->borrows_body && j->body_gone) {
                j->job.rc = STT_E_BAD_REQUEST; /* nobody is left to answer */
                continue;
            }
            if (j->borrows_body) {
                j->pinned = true;
                npinned++;
            }
            jobs[m] = j->job;
            index[m++] = i;
        }
        pthread_mutex_unlock(&W.lock);
        stt_doc_write_group(jobs, m);
        for (size_t k = 0; k < m; k++)
            taken[index[k]]->job.rc = jobs[k].rc;
        if (npinned) {
            pthread_mutex_lock(&W.lock);
            for (size_t i = 0; i < n; i++)
                taken[i]->pinned = false;
            pthread_cond_broadcast(&W.unpinned);
            pthread_mutex_unlock(&W.lock);
        }
        for (size_t i = 0; i < n; i++) {
            ddocs_changed(taken[i]);
            h2o_multithread_send_message(&W.slots[taken[i]->worker].recv, &taken[i]->msg);
        }
        pthread_mutex_lock(&W.lock);
    }
    pthread_mutex_unlock(&W.lock);
    return NULL;
}

void stt_writer_init(size_t nworkers)
{
    W.nslots = nworkers;
    W.slots = stt_xcalloc(nworkers, sizeof(*W.slots));
}

void stt_writer_worker_init(size_t index, h2o_loop_t *loop)
{
    h2o_multithread_queue_t *q = h2o_multithread_create_queue(loop);
    h2o_multithread_register_receiver(q, &W.slots[index].recv, on_done);
}

void stt_writer_start(void)
{
    if (pthread_create(&W.tid, NULL, writer_main, NULL) == 0) W.started = 1;
}

void stt_writer_stop(void)
{
    pthread_mutex_lock(&W.lock);
    W.stop = 1;
    pthread_cond_signal(&W.cond);
    pthread_mutex_unlock(&W.lock);
    if (W.started) pthread_join(W.tid, NULL);
    W.started = 0;
}

stt_wjob_t *stt_writer_job(stt_hreq_t *r, const stt_doc_write_t *docs, size_t n, bool new_edits,
                           void (*done)(stt_wjob_t *j), void *ctx)
{
    stt_wjob_t *j = stt_xcalloc(1, sizeof(*j));
    j->r = r;
    j->done = done;
    j->ctx = ctx;
    j->worker = stt_worker_index(r->w);
    j->job.db = r->db;
    j->job.docs = docs;
    j->job.n = n;
    j->job.new_edits = new_edits;
    j->job.res = stt_xcalloc(n ? n : 1, sizeof(stt_doc_result_t));
    return j;
}

/* Refusals before the store: the accepted docs go on, the others keep their
 * error for finish(). */
static void authorize(stt_wjob_t *j)
{
    stt_doc_write_t *docs = (stt_doc_write_t *)j->job.docs;
    size_t n = j->job.n;
    if (!n || !stt__authorize_writes(j->r, docs, n, j->job.res)) return;
    j->all_docs = docs;
    j->nall = n;
    j->all_res = j->job.res;
    stt_doc_write_t *kept = stt_arena_alloc(&j->r->arena, n * sizeof(*kept));
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!j->all_res[i].err) kept[k++] = docs[i];
    j->job.docs = kept;
    j->job.n = k;
    j->job.res = stt_xcalloc(k ? k : 1, sizeof(stt_doc_result_t));
}

static void enqueue(stt_wjob_t *j)
{
    pthread_mutex_lock(&W.lock);
    if (W.tail)
        W.tail->next = j;
    else
        W.head = j;
    W.tail = j;
    pthread_cond_signal(&W.cond);
    pthread_mutex_unlock(&W.lock);
}

/* no writer thread (tools, tests): commit inline, on the request's thread */
static void commit_inline(stt_wjob_t *j)
{
    stt_doc_write_group(&j->job, 1);
    ddocs_changed(j);
    j->r->inflight = NULL;
    finish(j);
    j->done(j);
    job_free(j);
}

/* On an offload thread: validation, then the refused docs leave the batch. Reads
 * only the job (j->r may be gone; its arena then belongs to the job). */
static void validate_run(stt_offload_t *o)
{
    stt_wjob_t *j = H2O_STRUCT_FROM_MEMBER(stt_wjob_t, off, o);
    size_t n = j->job.n;
    if (stt_design_validate_writes(stt__server->qs, j->job.db, j->vdus, &j->vctx, j->job.docs, n, j->job.new_edits,
                                   &j->varena, j->job.res)) {
        if (!j->all_docs) {
            j->all_docs = (stt_doc_write_t *)j->job.docs;
            j->nall = n;
            j->all_res = j->job.res;
        } else {
            /* fold the outcomes of the accepted docs back into the full list */
            for (size_t i = 0, k = 0; i < j->nall; i++)
                if (!j->all_res[i].err) j->all_res[i] = j->job.res[k++];
            free(j->job.res);
        }
        stt_doc_write_t *kept = stt_arena_alloc(&j->varena, (j->nall ? j->nall : 1) * sizeof(*kept));
        size_t k = 0;
        for (size_t i = 0; i < j->nall; i++)
            if (!j->all_res[i].err) kept[k++] = j->all_docs[i];
        j->job.docs = kept;
        j->job.n = k;
        j->job.res = stt_xcalloc(k ? k : 1, sizeof(stt_doc_result_t));
    }
    if (W.started)
        enqueue(j);
    else
        commit_inline(j);
}

/* What validators see of the request: userCtx, secObj, and whether an admin writes. */
static void validate_ctx(stt_wjob_t *j)
{
    stt_hreq_t *r = j->r;
    const stt_json_t *sec = stt__db_security(r);
    stt_buf_t b = STT_BUF_INIT;
    stt__user_ctx_json(r, &b);
    j->vctx.user_ctx.s = stt_arena_memdup(&j->varena, b.base, b.len);
    j->vctx.user_ctx.len = b.len;
    stt_buf_reset(&b);
    if (sec)
        stt_json_write(&b, sec);
    else
        stt_buf_appends(&b, "{}");
    j->vctx.sec_obj.s = stt_arena_memdup(&j->varena, b.base, b.len);
    j->vctx.sec_obj.len = b.len;
    j->vctx.is_admin = stt_security_is_db_admin(sec, &r->user);
    stt_buf_free(&b);
}

void stt_writer_submit(stt_wjob_t *j)
{
    authorize(j);
    if (stt__server && stt__server->qs && j->job.n) {
        j->vdus = stt_design_vdus(j->job.db);
        if (stt_design_needs_validation(j->vdus, j->job.docs, j->job.n)) {
            validate_ctx(j);
            j->r->inflight = j;
            j->off.run = validate_run;
            j->off.done = NULL;
            j->off.worker = j->worker;
            stt_offload_submit(&j->off);
            return;
        }
    }
    if (!W.started) {
        commit_inline(j);
        return;
    }
    j->r->inflight = j;
    enqueue(j);
}

void stt_writer_orphan(stt_hreq_t *r)
{
    stt_wjob_t *j = r->inflight;
    if (j->borrows_body) {
        /* blocks this loop for at most the commit under way: rare (a client gone
         * during a long upload's commit), and the body must outlive the commit */
        pthread_mutex_lock(&W.lock);
        while (j->pinned)
            pthread_cond_wait(&W.unpinned, &W.lock);
        j->body_gone = true;
        pthread_mutex_unlock(&W.lock);
    }
    j->r = NULL;
    j->orphan_arena = r->arena;
    j->orphan_db = r->db;
    r->arena = (stt_arena_t)STT_ARENA_INIT;
    r->db = NULL;
    r->inflight = NULL;
}
