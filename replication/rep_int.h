/* The replicator's insides, shared by its files and never by anyone else:
 * replication parameters, the endpoint interface (a local database or a remote
 * peer, CouchDB's couch_replicator_api_wrap), and one job's state.
 *
 * Documents travel between endpoints as parsed JSON (stt_json_t in a batch
 * arena), revisions and _revisions included and attachments inline, so that the
 * algorithm in rep_job.c never knows which kind of endpoint it talks to. */
#ifndef STT_REP_INT_H
#define STT_REP_INT_H
#include "qserver/qserver.h"
#include "replication/replicator.h"
#include "src/common/arena.h"
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

/* ------------------------------------------------------------------ parameters (rep_params.c) */

typedef struct {
    char *url;      /* remote: scheme://host[:port]/path/ without credentials; NULL when local */
    char *db;       /* local: the database name */
    char *user;     /* basic credentials from the URL or auth.basic, NULL when none */
    char *pass;     /* secret: never logged, never rendered */
    char **headers; /* "Name: value" lines given in "headers" */
    size_t nheaders;
} stt_rep_spec_t;

enum { STT_REP_F_NONE, STT_REP_F_DOC_IDS, STT_REP_F_SELECTOR, STT_REP_F_DDOC };

typedef struct {
    stt_rep_spec_t source, target;
    bool continuous, create_target, cancel, use_checkpoints, winning_revs_only;
    char *create_target_params; /* JSON object text or NULL */
    int filter_kind;            /* STT_REP_F_* */
    char *doc_ids;              /* JSON array text */
    char *selector;             /* JSON object text */
    char *filter;               /* "ddoc/name" */
    char *query_params;         /* JSON object text or NULL */
    char *since_seq;            /* JSON text or NULL */
    uint64_t checkpoint_interval_ms, batch_size, timeout_ms;
    unsigned retries;
    char *cancel_id; /* {"replication_id":..., "cancel":true} */
    char *self_url;  /* this server's URL, for errors naming local dbs (not in the id) */
    char id[96];     /* <md5 hex>[+continuous][+create_target] */
    char base_id[33];
} stt_rep_params_t;

/* Parses a /_replicate body or a _replicator doc. 0, or an HTTP status with
 * CouchDB's error name and reason. Strings are malloc'd: stt__rep_params_free. */
int stt__rep_params_parse(const stt_json_t *body, const char *server_uuid, stt_rep_params_t *p, const char **error,
                          char *reason, size_t reasonlen);
void stt__rep_params_free(stt_rep_params_t *p);
/* What _scheduler shows of an endpoint: its URL without credentials, or the local name. */
const char *stt__rep_spec_display(const stt_rep_spec_t *s);

/* ------------------------------------------------------------------ endpoints (ep_local.c, ep_http.c) */

typedef struct {
    const char *id;
    const char *seq; /* JSON text of the row's seq */
    const char **revs;
    size_t nrevs;
} stt_rep_change_t;

typedef struct {
    const char *id;
    const char **revs; /* missing revs to fetch */
    size_t nrevs;
    const char **atts_since; /* revs the target has: their attachments are not sent */
    size_t natts_since;
} stt_rep_fetch_t;

typedef struct stt_rep_ep stt_rep_ep_t;
typedef struct {
    /* Opens the database (creating it when create). */
    int (*open)(stt_rep_ep_t *ep, bool create, const char *create_params);
    /* Changes after since (JSON text, NULL: from the start), at most limit rows,
     * style all_docs (main_only when winning_revs_only); when none are ready, waits
     * up to wait_ms for one. *last_seq: the seq to resume from. */
    int (*changes)(stt_rep_ep_t *ep, stt_arena_t *a, const char *since, size_t limit, uint64_t wait_ms,
                   stt_rep_change_t **rows, size_t *nrows, const char **last_seq);
    /* {id:[revs]} -> CouchDB's _revs_diff answer object. */
    int (*revs_diff)(stt_rep_ep_t *ep, stt_arena_t *a, const char *req, size_t len, stt_json_t *ans);
    /* The docs of the given revisions with _revisions and inline attachments, into
     * docs (room for the sum of f[i].nrevs); *ndocs: how many. */
    int (*fetch)(stt_rep_ep_t *ep, stt_arena_t *a, const stt_rep_fetch_t *f, size_t n, stt_json_t *docs, size_t *ndocs);
    /* Writes docs as new_edits=false; *failed counts the refused ones. */
    int (*write)(stt_rep_ep_t *ep, stt_arena_t *a, const stt_json_t *docs, size_t n, size_t *failed);
    /* A _local doc ("_local/..."), STT_E_NOT_FOUND when absent. */
    int (*get_local)(stt_rep_ep_t *ep, stt_arena_t *a, const char *id, stt_json_t *out);
    int (*put_local)(stt_rep_ep_t *ep, const char *id, const char *json, size_t len);
    /* A design doc's filter function exists: 0, or an error with reason. */
    int (*check_filter)(stt_rep_ep_t *ep, const char *ddoc, const char *name);
    void (*close)(stt_rep_ep_t *ep);
} stt_rep_ep_ops_t;

struct stt_rep_ep {
    const stt_rep_ep_ops_t *ops;
    const stt_rep_spec_t *spec;
    const stt_rep_params_t *params;
    atomic_int *stop; /* the job's: non-zero interrupts waits and transfers */
    /* the last failure: an HTTP-like status (0: transport), CouchDB's error and reason */
    int status;
    char error[64];
    char reason[512];
};

/* Set by ep_http when a peer refused the credentials: the job fails instead of crashing. */
#define STT_REP_AUTH_FAILED 401

stt_rep_ep_t *stt__rep_ep_local(stt_store_t *store, const stt_rep_spec_t *spec, const stt_rep_params_t *p,
                                const stt_user_ctx_t *user, atomic_int *stop);
stt_rep_ep_t *stt__rep_ep_http(const stt_rep_spec_t *spec, const stt_rep_params_t *p, atomic_int *stop);
/* Percent-encodes all but RFC 3986's unreserved characters (ep_http.c). */
void stt__rep_url_encode(stt_buf_t *out, const char *s, size_t len);
void stt__rep_ep_error(stt_rep_ep_t *ep, int status, const char *error, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Local endpoints' waits: woken by stt_rep_notify for their database. */
typedef struct stt_rep_waiter {
    uint64_t db_id;
    pthread_cond_t cond;
    bool woken;
    struct stt_rep_waiter *next;
} stt_rep_waiter_t;
void stt__rep_wait(stt_rep_waiter_t *w, uint64_t db_id, uint64_t ms, atomic_int *stop, bool (*ready)(void *ctx),
                   void *ctx);
/* Wakes whoever waits on db_id (0: everyone, for stopping). */
void stt__rep_wake(uint64_t db_id);

/* Settings read once per job start from [replicator]. */
typedef struct {
    bool verify_ssl;
    char ca_file[512];
} stt_rep_tls_t;
void stt__rep_tls(stt_rep_tls_t *out);
stt_qs_pool_t *stt__rep_qs(void);

/* ------------------------------------------------------------------ one run of a job (rep_job.c) */

typedef struct {
    uint64_t revisions_checked, missing_revisions_found, docs_read, docs_written, doc_write_failures;
    uint64_t bulk_get_docs, bulk_get_attempts;
    char source_seq[128];   /* the last seq read */
    char checkpointed[128]; /* the last seq checkpointed */
    bool waiting;           /* caught up and waiting for changes */
} stt_rep_stats_t;

typedef struct {
    const stt_rep_params_t *p;
    stt_store_t *store;
    const stt_user_ctx_t *user;
    atomic_int *stop;
    pthread_mutex_t *lock; /* guards stats */
    stt_rep_stats_t *stats;
    /* outcome */
    int status; /* 0 ok; else HTTP-like status of the failure */
    char error[64];
    char reason[512];
    bool fatal;      /* a failure no retry mends (bad filter, refused credentials) */
    stt_buf_t reply; /* a one-shot's answer body */
    /* the session, kept across the runs of one job (parking, below): the first run
     * fills it, later ones continue its history entry */
    char session[33];
    time_t session_start;
    char session_start_seq[128];
    /* park_ok: a continuous job on a local source that checkpoints may end its run
     * once caught up and checkpointed (parked: its thread goes; the scheduler runs
     * it again when the source moves past parked_seq) */
    bool park_ok, parked;
    uint64_t parked_seq;
} stt_rep_run_t;

/* Runs the replication until done (one-shot), stopped, or failed. */
void stt__rep_run(stt_rep_run_t *run);

static inline uint64_t stt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* RFC 1123 date of t, as CouchDB's history entries carry. */
void stt__rep_rfc1123(time_t t, char *out, size_t len);
void stt__rep_iso8601(time_t t, stt_buf_t *out);

#endif
