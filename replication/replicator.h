/* settee as a replication client: CouchDB's replicator (couch_replicator).
 *
 * A replication copies every revision a target lacks from a source, each side
 * being a local database (read and written straight through the store) or a
 * remote one spoken to over HTTP. Jobs come from POST /_replicate (one-shot ones
 * answer when done, continuous ones run until cancelled) and from documents of
 * the _replicator database (started on creation, restarted on edit, stopped on
 * deletion). A scheduler runs at most [replicator] max_jobs of them at a time and
 * rotates the rest every [replicator] interval ms, as CouchDB's does.
 *
 * Progress is recorded in checkpoint documents _local/<replication id> on both
 * ends, CouchDB's shape (session_id, source_last_seq, history), so a job that
 * stops — cancelled, crashed, settee restarted — resumes where it was and a
 * CouchDB peer accepts and keeps them.
 *
 * Threads: every running job has a thread of its own (blocking I/O); the rest of
 * this API is safe to call from any thread. Memory: results appended to the
 * caller's buffers; nothing returned is borrowed. */
#ifndef STT_REPLICATOR_H
#define STT_REPLICATOR_H
#include "src/common/buf.h"
#include "src/common/ini.h"
#include "src/common/json.h"
#include "security/security.h"
#include "store/store.h"

#define STT_REPLICATOR_DB "_replicator"

/* Starts the scheduler over store (the server's uuid names replication ids; ini
 * holds [replicator]; qs, when not NULL, runs the validate_doc_update functions of
 * local targets) and the jobs of the _replicator database, which is created when
 * missing. */
struct stt_qs_pool;
int stt_rep_start(stt_store_t *store, stt_ini_t *ini, const char *server_uuid, struct stt_qs_pool *qs);
/* Stops every job (checkpointing what it has written) and joins the threads. */
void stt_rep_stop(void);

/* To be called from the store's commit hook: wakes continuous jobs that wait on
 * db and the _replicator watcher. */
void stt_rep_notify(stt_db_t *db, uint64_t seq);

/* ------------------------------------------------------------------ POST /_replicate */

/* The outcome of a replication request, for the HTTP layer to render: status,
 * and either the JSON body (body) or CouchDB's error and reason. */
typedef struct {
    int status;
    stt_buf_t body;
    char error[64];
    char reason[512];
} stt_rep_reply_t;

/* Called once with the answer of a one-shot replication, on the job's thread. */
typedef void (*stt_rep_done_fn)(void *ctx, stt_rep_reply_t *reply);

/* Handles a /_replicate body on behalf of user (self_url: this server's URL as the
 * client reached it, for CouchDB's error texts that name local databases as URLs). Returns 1 when the answer is
 * already in *reply (errors, continuous starts, cancels), or 0 when a one-shot job
 * was started: done(ctx, reply) is then called once, from another thread, when it
 * ends. The handle in *ticket lets the caller withdraw interest (stt_rep_forget)
 * before that, after which done is not called. */
typedef struct stt_rep_ticket stt_rep_ticket_t;
int stt_rep_request(const stt_json_t *body, const stt_user_ctx_t *user, const char *self_url, stt_rep_done_fn done,
                    void *ctx, stt_rep_ticket_t **ticket, stt_rep_reply_t *reply);
/* The requester went away: the job goes on (as CouchDB's does) but done will not
 * be called; frees the ticket. Safe to call only before done was called. */
void stt_rep_forget(stt_rep_ticket_t *t);
void stt_rep_reply_free(stt_rep_reply_t *r);

/* ------------------------------------------------------------------ _replicator documents */

/* Checks a _replicator document about to be written by user (CouchDB's
 * _replicator validation) and adds "owner". body: the doc as sent. Returns 0 with
 * *out set to the body to store (arena text without special members) or NULL when
 * unchanged; or 403 with *reason (static or arena). */
int stt_rep_doc_check(stt_arena_t *a, const stt_user_ctx_t *user, const stt_json_t *body, const char **out,
                      size_t *outlen, const char **reason);

/* ------------------------------------------------------------------ _scheduler, _active_tasks */

/* GET /_scheduler/jobs[/id]: 0 with the JSON in out, or STT_E_NOT_FOUND. */
int stt_rep_jobs_json(const char *id, uint64_t limit, uint64_t skip, stt_buf_t *out);
/* GET /_scheduler/docs[/_replicator[/docid]]: 0, or STT_E_NOT_FOUND. */
int stt_rep_docs_json(const char *docid, uint64_t limit, uint64_t skip, stt_buf_t *out);
/* Appends the running replications' _active_tasks entries (comma-separated
 * objects, a leading comma when first_comma). Returns how many. */
size_t stt_rep_tasks(stt_buf_t *out, bool first_comma);

#endif
