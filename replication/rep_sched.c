/* The replication scheduler (couch_replicator_scheduler and _doc_processor):
 * which jobs exist, which run, and what _scheduler and _active_tasks say of them.
 *
 * Job states, as CouchDB names them:
 *
 *     added -> pending --start--> running --done--> completed (one-shot)
 *                 ^                 |  \--error--> crashing --backoff--> pending
 *                 |                 |   \--fatal--> failed
 *                 +----rotation-----+
 *
 * At most [replicator] max_jobs run at once; every [replicator] interval ms, when
 * jobs wait, up to max_churn of the longest-running continuous ones are stopped
 * (they checkpoint) and the waiting ones start. A crashing job waits
 * 2^(errors-1) x 30 s (at most 8 h) before it is pending again.
 *
 * One thread (sched_main) owns the transitions: it reads the _replicator
 * database's changes (a doc created, edited or deleted adds, replaces or removes
 * its job), reaps finished job threads, starts and rotates. Each running job has
 * a thread of its own (job_main). Everything here is guarded by S.lock; a job's
 * counters by its own lock, as they change while the job runs. */
#include "replication/rep_int.h"
#include "replication/replication.h"
#include "src/common/err.h"
#include "src/common/log.h"
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* J_ERROR: the doc's replication could not even be set up (its filter is missing) */
enum { J_PENDING, J_RUNNING, J_CRASHING, J_COMPLETED, J_FAILED, J_ERROR };
static const char *const state_names[] = {"pending", "running", "crashing", "completed", "failed", "error"};

typedef struct ticket_s ticket_t;
struct stt_rep_ticket {
    stt_rep_done_fn done;
    void *ctx;
    struct stt_rep_ticket *next;
};

#define NEVENTS 8
typedef struct job_s {
    stt_rep_params_t p;
    char *doc_id; /* _replicator doc, or NULL for /_replicate */
    /* who runs it: a copy of the requester */
    stt_user_ctx_t user;
    char *uname;
    char **roles;
    int state;
    unsigned serial;
    int error_count;
    char error[600];
    bool fatal;
    time_t added, started, updated;
    uint64_t next_start_ms, run_start_ms;
    struct {
        time_t t;
        const char *type;
    } ev[NEVENTS];
    int nev;
    pthread_t tid;
    bool has_thread, thread_done, rotated, removed;
    /* parked: running without a thread until its local source moves (woken) */
    bool parked, woken;
    uint64_t park_db;
    atomic_int stop;
    pthread_mutex_t lock;
    stt_rep_stats_t stats;
    stt_rep_run_t run;
    struct stt_rep_ticket *tickets;
    struct job_s *next;
} job_t;

/* What _scheduler/docs says of a _replicator doc that has no job (any more). */
typedef struct doc_s {
    char *id;
    job_t *job;
    int state;
    char *info; /* JSON object text */
    char *rep_id, *source, *target;
    int error_count;
    time_t start, updated;
    struct doc_s *next;
} doc_t;

static struct {
    bool started, stopping;
    stt_store_t *store;
    stt_ini_t *ini;
    stt_qs_pool_t *qs;
    char uuid[33];
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t tid;
    job_t *jobs;
    doc_t *docs;
    unsigned serial;
    uint64_t rdb_seq; /* _replicator changes read up to */
    bool rdb_dirty;
    uint64_t last_rotation_ms;
    atomic_int nparked;
    /* local endpoints waiting for a database to move */
    pthread_mutex_t wlock;
    stt_rep_waiter_t *waiters;
} S = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER, .wlock = PTHREAD_MUTEX_INITIALIZER};

static const stt_user_ctx_t admin_ctx = {.roles = (const char *[]){"_admin"}, .nroles = 1};

/* ------------------------------------------------------------------ waits */

void stt__rep_wait(stt_rep_waiter_t *w, uint64_t db_id, uint64_t ms, atomic_int *stop, bool (*ready)(void *ctx),
                   void *ctx)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cond, &ca);
    pthread_condattr_destroy(&ca);
    w->db_id = db_id;
    w->woken = false;
    pthread_mutex_lock(&S.wlock);
    w->next = S.waiters;
    S.waiters = w;
    pthread_mutex_unlock(&S.wlock);
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t)(ms / 1000);
    until.tv_nsec += (long)(ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) until.tv_sec++, until.tv_nsec -= 1000000000;
    /* the registration comes first, so a write between it and ready() still wakes us */
    bool go = ready(ctx);
    pthread_mutex_lock(&S.wlock);
    while (!go && !w->woken && !atomic_load(stop) && !S.stopping)
        if (pthread_cond_timedwait(&w->cond, &S.wlock, &until) != 0) break;
    for (stt_rep_waiter_t **pp = &S.waiters; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    pthread_mutex_unlock(&S.wlock);
    pthread_cond_destroy(&w->cond);
}

void stt__rep_wake(uint64_t db_id)
{
    pthread_mutex_lock(&S.wlock);
    for (stt_rep_waiter_t *w = S.waiters; w; w = w->next)
        if (!db_id || w->db_id == db_id) {
            w->woken = true;
            pthread_cond_signal(&w->cond);
        }
    pthread_mutex_unlock(&S.wlock);
}

void stt_rep_notify(stt_db_t *db, uint64_t seq)
{
    if (!S.started) return;
    uint64_t id = stt_db_id(db);
    stt__rep_wake(id);
    size_t len;
    const char *name = stt_db_name(db, &len);
    bool rdb = len == sizeof(STT_REPLICATOR_DB) - 1 && memcmp(name, STT_REPLICATOR_DB, len) == 0;
    if (!rdb && !atomic_load(&S.nparked)) return;
    pthread_mutex_lock(&S.lock);
    bool wake = rdb;
    for (job_t *j = S.jobs; j; j = j->next)
        if (j->parked && !j->woken && j->park_db == id) j->woken = wake = true;
    if (rdb) S.rdb_dirty = true;
    if (wake) pthread_cond_signal(&S.cond);
    pthread_mutex_unlock(&S.lock);
}

void stt__rep_tls(stt_rep_tls_t *out)
{
    out->verify_ssl = S.ini ? stt_ini_get_bool(S.ini, "replicator", "verify_ssl_certificates", true) : true;
    out->ca_file[0] = '\0';
    char *ca = S.ini ? stt_ini_get(S.ini, "replicator", "ssl_trusted_certificates_file") : NULL;
    if (ca) snprintf(out->ca_file, sizeof(out->ca_file), "%s", ca);
    free(ca);
}

stt_qs_pool_t *stt__rep_qs(void)
{
    return S.qs;
}

static int64_t setting(const char *key, int64_t dflt)
{
    int64_t v = S.ini ? stt_ini_get_int(S.ini, "replicator", key, dflt) : dflt;
    return v > 0 ? v : dflt;
}

/* ------------------------------------------------------------------ jobs */

static void event(job_t *j, const char *type)
{
    if (j->nev == NEVENTS) memmove(&j->ev[0], &j->ev[1], (NEVENTS - 1) * sizeof(j->ev[0])), j->nev--;
    j->ev[j->nev].t = time(NULL);
    j->ev[j->nev].type = type;
    j->nev++;
}

static job_t *job_new(stt_rep_params_t *p, const char *doc_id, const stt_user_ctx_t *u)
{
    job_t *j = stt_xcalloc(1, sizeof(*j));
    j->p = *p;
    memset(p, 0, sizeof(*p));
    j->doc_id = doc_id ? stt_xstrndup(doc_id, strlen(doc_id)) : NULL;
    if (u->name) j->uname = stt_xstrndup(u->name, u->namelen);
    j->roles = stt_xcalloc(u->nroles + 1, sizeof(char *));
    for (size_t i = 0; i < u->nroles; i++)
        j->roles[i] = stt_xstrndup(u->roles[i], strlen(u->roles[i]));
    j->user.name = j->uname;
    j->user.namelen = j->uname ? strlen(j->uname) : 0;
    j->user.roles = (const char **)j->roles;
    j->user.nroles = u->nroles;
    j->state = J_PENDING;
    j->serial = ++S.serial;
    j->added = j->updated = time(NULL);
    pthread_mutex_init(&j->lock, NULL);
    atomic_init(&j->stop, 0);
    event(j, "added");
    j->next = S.jobs;
    S.jobs = j;
    return j;
}

static void unpark(job_t *j);

static void job_free(job_t *j)
{
    unpark(j);
    stt__rep_params_free(&j->p);
    free(j->doc_id);
    free(j->uname);
    for (size_t i = 0; j->roles && j->roles[i]; i++)
        free(j->roles[i]);
    free(j->roles);
    stt_buf_free(&j->run.reply);
    pthread_mutex_destroy(&j->lock);
    while (j->tickets) {
        struct stt_rep_ticket *t = j->tickets;
        j->tickets = t->next;
        free(t);
    }
    free(j);
}

static void job_unlink(job_t *j)
{
    for (job_t **pp = &S.jobs; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            return;
        }
}

/* Stops j and forgets it once its thread ended (S.lock held). */
static void job_remove(job_t *j)
{
    j->removed = true;
    atomic_store(&j->stop, 1);
    stt__rep_wake(0);
    if (!j->has_thread) {
        job_unlink(j);
        job_free(j);
    }
}

static void *job_main(void *arg)
{
    job_t *j = arg;
    stt__rep_run(&j->run);
    pthread_mutex_lock(&S.lock);
    j->thread_done = true;
    pthread_cond_signal(&S.cond);
    pthread_mutex_unlock(&S.lock);
    return NULL;
}

static void unpark(job_t *j)
{
    if (!j->parked) return;
    j->parked = j->woken = false;
    atomic_fetch_sub(&S.nparked, 1);
}

/* Starts j's thread: a new run, or (resume) a parked job's next one. */
static void job_start(job_t *j, bool resume)
{
    stt_buf_free(&j->run.reply);
    if (!resume) {
        memset(&j->stats, 0, sizeof(j->stats));
        j->run = (stt_rep_run_t){0};
        j->started = time(NULL);
        j->run_start_ms = stt_now_ms();
        event(j, "started");
    }
    unpark(j);
    stt_rep_run_t *r = &j->run;
    r->p = &j->p, r->store = S.store, r->user = &j->user, r->stop = &j->stop, r->lock = &j->lock;
    r->stats = &j->stats;
    r->status = 0, r->fatal = false, r->error[0] = r->reason[0] = '\0';
    r->park_ok = j->p.continuous && j->p.use_checkpoints && !j->p.source.url;
    atomic_store(&j->stop, 0);
    j->thread_done = j->rotated = false;
    j->state = J_RUNNING;
    j->updated = time(NULL);
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, 1 << 20);
    if (pthread_create(&j->tid, &at, job_main, j) == 0) {
        j->has_thread = true;
    } else {
        j->state = J_CRASHING;
        snprintf(j->error, sizeof(j->error), "no thread for the job");
        j->next_start_ms = stt_now_ms() + 5000;
    }
    pthread_attr_destroy(&at);
}

/* ------------------------------------------------------------------ rendering */

static void str_or_null(stt_buf_t *b, const char *s)
{
    if (s)
        stt_json_write_cstr(b, s);
    else
        stt_buf_appends(b, "null");
}

/* CouchDB shows seqs as strings, the start "0" too */
static const char *seq_text(const char *s)
{
    return s[0] && strcmp(s, "0") != 0 ? s : "\"0\"";
}

static void info_json(job_t *j, stt_buf_t *b, bool with_seqs)
{
    if (j->state == J_CRASHING || j->state == J_FAILED) {
        stt_buf_appends(b, "{\"error\":");
        stt_json_write_cstr(b, j->error);
        stt_buf_appendc(b, '}');
        return;
    }
    if (j->state != J_RUNNING) {
        stt_buf_appends(b, "null");
        return;
    }
    pthread_mutex_lock(&j->lock);
    stt_rep_stats_t *s = &j->stats;
    stt_buf_appendf(b,
                    "{\"revisions_checked\":%llu,\"missing_revisions_found\":%llu,\"docs_read\":%llu,"
                    "\"docs_written\":%llu,\"changes_pending\":%s,\"doc_write_failures\":%llu,"
                    "\"bulk_get_docs\":%llu,\"bulk_get_attempts\":%llu,\"checkpointed_source_seq\":%s",
                    (unsigned long long)s->revisions_checked, (unsigned long long)s->missing_revisions_found,
                    (unsigned long long)s->docs_read, (unsigned long long)s->docs_written, s->waiting ? "0" : "null",
                    (unsigned long long)s->doc_write_failures, (unsigned long long)s->bulk_get_docs,
                    (unsigned long long)s->bulk_get_attempts, seq_text(s->checkpointed));
    if (with_seqs)
        stt_buf_appendf(b, ",\"source_seq\":%s,\"through_seq\":%s", seq_text(s->source_seq), seq_text(s->source_seq));
    stt_buf_appendc(b, '}');
    pthread_mutex_unlock(&j->lock);
}

static void job_json(job_t *j, stt_buf_t *b)
{
    stt_buf_appends(b, "{\"database\":");
    str_or_null(b, j->doc_id ? STT_REPLICATOR_DB : NULL);
    stt_buf_appends(b, ",\"id\":");
    stt_json_write_cstr(b, j->p.id);
    stt_buf_appendf(b, ",\"pid\":\"<0.%u.0>\",\"source\":", j->serial);
    stt_json_write_cstr(b, stt__rep_spec_display(&j->p.source));
    stt_buf_appends(b, ",\"target\":");
    stt_json_write_cstr(b, stt__rep_spec_display(&j->p.target));
    stt_buf_appends(b, ",\"user\":");
    str_or_null(b, j->doc_id ? NULL : j->uname);
    stt_buf_appends(b, ",\"doc_id\":");
    str_or_null(b, j->doc_id);
    stt_buf_appends(b, ",\"info\":");
    info_json(j, b, true);
    stt_buf_appends(b, ",\"history\":[");
    for (int i = j->nev - 1; i >= 0; i--) {
        stt_buf_appends(b, "{\"timestamp\":\"");
        stt__rep_iso8601(j->ev[i].t, b);
        stt_buf_appendf(b, "\",\"type\":\"%s\"}%s", j->ev[i].type, i ? "," : "");
    }
    stt_buf_appends(b, "],\"node\":\"nonode@nohost\",\"start_time\":\"");
    stt__rep_iso8601(j->added, b);
    stt_buf_appends(b, "\"}");
}

int stt_rep_jobs_json(const char *id, uint64_t limit, uint64_t skip, stt_buf_t *out)
{
    pthread_mutex_lock(&S.lock);
    int rc = id ? STT_E_NOT_FOUND : 0;
    size_t total = 0, shown = 0;
    stt_buf_t rows = STT_BUF_INIT;
    for (job_t *j = S.jobs; j; j = j->next) {
        if (j->removed || j->state == J_COMPLETED || j->state == J_FAILED) continue;
        if (id) {
            if (strcmp(id, j->p.id) == 0) {
                job_json(j, out);
                rc = 0;
                break;
            }
            continue;
        }
        if (total++ < skip || shown >= limit) continue;
        if (shown++) stt_buf_appendc(&rows, ',');
        job_json(j, &rows);
    }
    if (!id)
        stt_buf_appendf(out, "{\"total_rows\":%zu,\"offset\":%llu,\"jobs\":[%.*s]}", total,
                        (unsigned long long)(skip < total ? skip : total), (int)rows.len, rows.base ? rows.base : "");
    stt_buf_free(&rows);
    pthread_mutex_unlock(&S.lock);
    return rc;
}

/* CouchDB's shapes: a doc with a job has them all; a completed one no node and
 * proxies; one that failed or errored no endpoints. */
static void doc_json(doc_t *d, stt_buf_t *b)
{
    job_t *j = d->job;
    int st = j ? j->state : d->state;
    bool done = !j && st == J_COMPLETED, broken = !j && (st == J_FAILED || st == J_ERROR);
    stt_buf_appends(b, "{\"database\":\"" STT_REPLICATOR_DB "\",\"doc_id\":");
    stt_json_write_cstr(b, d->id);
    stt_buf_appends(b, ",\"id\":");
    str_or_null(b, j ? j->p.id : done || st == J_ERROR ? NULL : d->rep_id);
    if (!done) stt_buf_appends(b, ",\"node\":\"nonode@nohost\"");
    if (!broken) {
        stt_buf_appends(b, ",\"source\":");
        str_or_null(b, j ? stt__rep_spec_display(&j->p.source) : d->source);
        stt_buf_appends(b, ",\"target\":");
        str_or_null(b, j ? stt__rep_spec_display(&j->p.target) : d->target);
    }
    stt_buf_appendf(b, ",\"state\":\"%s\",\"info\":", state_names[st]);
    if (j)
        info_json(j, b, true);
    else
        stt_buf_appends(b, d->info ? d->info : "null");
    stt_buf_appendf(b, ",\"error_count\":%d,\"last_updated\":\"", j ? j->error_count : d->error_count);
    stt__rep_iso8601(j ? j->updated : d->updated, b);
    stt_buf_appends(b, "\",\"start_time\":\"");
    stt__rep_iso8601(j ? j->added : d->start, b);
    stt_buf_appends(b, done || broken ? "\"}" : "\",\"source_proxy\":null,\"target_proxy\":null}");
}

int stt_rep_docs_json(const char *docid, uint64_t limit, uint64_t skip, stt_buf_t *out)
{
    pthread_mutex_lock(&S.lock);
    int rc = docid ? STT_E_NOT_FOUND : 0;
    size_t total = 0, shown = 0;
    stt_buf_t rows = STT_BUF_INIT;
    for (doc_t *d = S.docs; d; d = d->next) {
        if (docid) {
            if (strcmp(docid, d->id) == 0) {
                doc_json(d, out);
                rc = 0;
                break;
            }
            continue;
        }
        if (total++ < skip || shown >= limit) continue;
        if (shown++) stt_buf_appendc(&rows, ',');
        doc_json(d, &rows);
    }
    if (!docid)
        stt_buf_appendf(out, "{\"total_rows\":%zu,\"offset\":%llu,\"docs\":[%.*s]}", total,
                        (unsigned long long)(skip < total ? skip : total), (int)rows.len, rows.base ? rows.base : "");
    stt_buf_free(&rows);
    pthread_mutex_unlock(&S.lock);
    return rc;
}

size_t stt_rep_tasks(stt_buf_t *b, bool comma)
{
    size_t n = 0;
    pthread_mutex_lock(&S.lock);
    for (job_t *j = S.jobs; j; j = j->next) {
        if (j->removed || j->state != J_RUNNING) continue;
        if (comma || n) stt_buf_appendc(b, ',');
        n++;
        pthread_mutex_lock(&j->lock);
        stt_rep_stats_t *s = &j->stats;
        stt_buf_appendf(b,
                        "{\"node\":\"nonode@nohost\",\"pid\":\"<0.%u.0>\",\"process_status\":\"%s\","
                        "\"bulk_get_attempts\":%llu,\"bulk_get_docs\":%llu,\"changes_pending\":%s,"
                        "\"checkpoint_interval\":%llu,\"checkpointed_source_seq\":%s,\"continuous\":%s,",
                        j->serial, s->waiting ? "waiting" : "running", (unsigned long long)s->bulk_get_attempts,
                        (unsigned long long)s->bulk_get_docs, s->waiting ? "0" : "null",
                        (unsigned long long)j->p.checkpoint_interval_ms, seq_text(s->checkpointed),
                        j->p.continuous ? "true" : "false");
        stt_buf_appends(b, "\"database\":");
        str_or_null(b, j->doc_id ? STT_REPLICATOR_DB : NULL);
        stt_buf_appends(b, ",\"doc_id\":");
        str_or_null(b, j->doc_id);
        stt_buf_appendf(b,
                        ",\"doc_write_failures\":%llu,\"docs_read\":%llu,\"docs_written\":%llu,"
                        "\"missing_revisions_found\":%llu,\"replication_id\":\"%s\",\"revisions_checked\":%llu,"
                        "\"source\":",
                        (unsigned long long)s->doc_write_failures, (unsigned long long)s->docs_read,
                        (unsigned long long)s->docs_written, (unsigned long long)s->missing_revisions_found, j->p.id,
                        (unsigned long long)s->revisions_checked);
        stt_json_write_cstr(b, stt__rep_spec_display(&j->p.source));
        stt_buf_appendf(b, ",\"source_seq\":%s,\"started_on\":%lld,\"target\":", seq_text(s->source_seq),
                        (long long)j->started);
        stt_json_write_cstr(b, stt__rep_spec_display(&j->p.target));
        stt_buf_appendf(b, ",\"through_seq\":%s,\"type\":\"replication\",\"updated_on\":%lld,\"user\":",
                        seq_text(s->source_seq), (long long)time(NULL));
        str_or_null(b, j->uname);
        stt_buf_appendc(b, '}');
        pthread_mutex_unlock(&j->lock);
    }
    pthread_mutex_unlock(&S.lock);
    return n;
}

/* ------------------------------------------------------------------ _replicator documents */

static doc_t *doc_find(const char *id)
{
    for (doc_t *d = S.docs; d; d = d->next)
        if (strcmp(d->id, id) == 0) return d;
    return NULL;
}

static void doc_drop(const char *id)
{
    for (doc_t **pp = &S.docs; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->id, id) == 0) {
            doc_t *d = *pp;
            *pp = d->next;
            if (d->job) job_remove(d->job);
            free(d->id);
            free(d->info);
            free(d->rep_id);
            free(d->source);
            free(d->target);
            free(d);
            return;
        }
}

static doc_t *doc_add(const char *id)
{
    doc_t *d = stt_xcalloc(1, sizeof(*d)), **pp = &S.docs;
    d->id = stt_xstrndup(id, strlen(id));
    d->start = d->updated = time(NULL);
    while (*pp && strcmp((*pp)->id, id) < 0)
        pp = &(*pp)->next;
    d->next = *pp;
    *pp = d;
    return d;
}

static void set_text(char **dst, const char *s)
{
    free(*dst);
    *dst = s ? stt_xstrndup(s, strlen(s)) : NULL;
}

/* A doc of _replicator as its latest revision says (S.lock held). */
static void doc_changed(const char *id, const stt_json_t *body)
{
    doc_t *d = doc_find(id);
    if (!body) {
        doc_drop(id);
        return;
    }
    const stt_json_t *state = stt_json_get(body, "_replication_state");
    if (stt_json_is_str(state) && (strcmp(state->u.s, "completed") == 0 || strcmp(state->u.s, "failed") == 0)) {
        /* finished: CouchDB does not run it again until the doc is edited without the state */
        if (d && d->job) return; /* our own write-back of a job that is being reaped */
        if (!d) d = doc_add(id);
        d->state = strcmp(state->u.s, "completed") == 0 ? J_COMPLETED : J_FAILED;
        stt_buf_t b = STT_BUF_INIT;
        const stt_json_t *stats = stt_json_get(body, "_replication_stats");
        if (stats && stats->type == STT_JSON_OBJECT) {
            stt_buf_appendc(&b, '{');
            for (uint32_t i = 0; i < stats->len; i++) {
                if (strcmp(stats->u.members[i].key, "start_time") == 0) continue;
                if (b.len > 1) stt_buf_appendc(&b, ',');
                stt_json_write_str(&b, stats->u.members[i].key, stats->u.members[i].keylen);
                stt_buf_appendc(&b, ':');
                stt_json_write(&b, &stats->u.members[i].val);
            }
            stt_buf_appendc(&b, '}');
        }
        stt_buf_appendc(&b, '\0');
        set_text(&d->info, stats ? b.base : NULL);
        stt_buf_free(&b);
        return;
    }
    stt_rep_params_t p;
    const char *error;
    char reason[512];
    int st = stt__rep_params_parse(body, S.uuid, &p, &error, reason, sizeof(reason));
    if (d && d->job && st == 0 && strcmp(d->job->p.id, p.id) == 0) {
        stt__rep_params_free(&p); /* an edit that changes nothing the job depends on */
        return;
    }
    if (d && d->job) {
        job_remove(d->job);
        d->job = NULL;
    }
    if (!d) d = doc_add(id);
    d->updated = time(NULL);
    if (st) {
        d->state = J_FAILED;
        d->error_count++;
        stt_buf_t b = STT_BUF_INIT;
        stt_buf_appends(&b, "{\"error\":");
        stt_json_write_cstr(&b, reason);
        stt_buf_appends(&b, "}");
        stt_buf_appendc(&b, '\0');
        set_text(&d->info, b.base);
        stt_buf_free(&b);
        return;
    }
    set_text(&d->rep_id, p.id);
    set_text(&d->source, stt__rep_spec_display(&p.source));
    set_text(&d->target, stt__rep_spec_display(&p.target));
    d->job = job_new(&p, id, &admin_ctx);
    const stt_json_t *owner = stt_json_get(body, "owner");
    if (stt_json_is_str(owner)) set_text(&d->job->uname, owner->u.s);
    d->job->user.name = NULL; /* the job runs as a server admin: only admins write _replicator */
}

typedef struct {
    stt_reader_t *rd;
    uint64_t last;
} rscan_t;

static int on_rdoc(void *ctx, const stt_doc_summary_t *s)
{
    rscan_t *c = ctx;
    c->last = s->seq;
    if (s->idlen >= 8 && memcmp(s->id, "_design/", 8) == 0) return 0;
    char *id = stt_xstrndup(s->id, s->idlen);
    stt_arena_t a = STT_ARENA_INIT;
    stt_json_t body;
    bool live = false;
    stt_doc_t d;
    if (!s->deleted && stt_doc_get(c->rd, s->id, s->idlen, &d) == 0) {
        stt_buf_t b = STT_BUF_INIT;
        stt_render_opts_t o = {0};
        if (stt_doc_render(c->rd, &d, d.winner, &o, &b) == 0 &&
            stt_json_parse(&a, stt_arena_memdup(&a, b.base, b.len), b.len, &body, NULL, 0) == 0)
            live = true;
        stt_buf_free(&b);
        stt_doc_free(&d);
    }
    pthread_mutex_lock(&S.lock);
    doc_changed(id, live ? &body : NULL);
    pthread_mutex_unlock(&S.lock);
    stt_arena_free(&a);
    free(id);
    return 0;
}

static void read_replicator_db(void)
{
    stt_db_t *db;
    if (stt_db_open(S.store, STT_REPLICATOR_DB, sizeof(STT_REPLICATOR_DB) - 1, &db) != 0) return;
    rscan_t c = {.last = S.rdb_seq};
    if (stt_reader_open(db, &c.rd) == 0) {
        stt_changes_scan(c.rd, S.rdb_seq, false, on_rdoc, &c);
        stt_reader_close(c.rd);
    }
    S.rdb_seq = c.last;
    stt_db_release(db);
}

/* The outcome of a finished _replicator job, recorded in its doc as CouchDB does. */
static void write_back(const char *doc_id, const char *stats_json)
{
    stt_db_t *db;
    if (stt_db_open(S.store, STT_REPLICATOR_DB, sizeof(STT_REPLICATOR_DB) - 1, &db) != 0) return;
    stt_reader_t *rd;
    stt_doc_t d;
    if (stt_reader_open(db, &rd) != 0) goto exit;
    if (stt_doc_get(rd, doc_id, strlen(doc_id), &d) == 0) {
        stt_rev_body_t body;
        if (!stt_revtree_is_leaf(&d.tree, d.winner) || stt_doc_body(&d, d.winner, &body) != 0) goto done;
        stt_buf_t nb = STT_BUF_INIT;
        stt_buf_append(&nb, body.json, body.jsonlen - 1); /* without its closing brace */
        stt_buf_appends(&nb, body.jsonlen > 2 ? ",\"_replication_state\":\"completed\""
                                              : "\"_replication_state\":\"completed\"");
        stt_buf_appends(&nb, ",\"_replication_state_time\":\"");
        stt__rep_iso8601(time(NULL), &nb);
        stt_buf_appendf(&nb, "\",\"_replication_stats\":%s}", stats_json);
        stt_rev_body_free(&body);
        /* _replication_* members live in the body as they are: stt_doc_parse would
         * refuse them as special members, which only the replicator may write */
        stt_buf_t rev = STT_BUF_INIT;
        stt_revtree_format(&d.tree, d.winner, &rev);
        stt_doc_write_t w = {
            .id = doc_id, .idlen = strlen(doc_id), .body = nb.base, .bodylen = nb.len, .has_prev = true};
        if (stt_rev_parse(rev.base, rev.len, &w.prev) == 0) {
            stt_doc_result_t res = {0};
            stt_doc_write(db, &w, 1, true, &res);
        }
        stt_buf_free(&rev);
        stt_buf_free(&nb);
    done:
        stt_doc_free(&d);
    }
    stt_reader_close(rd);
exit:
    stt_db_release(db);
}

/* ------------------------------------------------------------------ the scheduler thread */

typedef struct {
    struct stt_rep_ticket *tickets;
    stt_rep_reply_t reply;
    char *doc_id;
    char *stats;
} finished_t;

static void reply_error(stt_rep_reply_t *r, int status, const char *error, const char *reason)
{
    r->status = status;
    snprintf(r->error, sizeof(r->error), "%s", error);
    snprintf(r->reason, sizeof(r->reason), "%s", reason);
}

/* A caught-up job on a local source gives its thread back; stt_rep_notify wakes it
 * when its source moves, and a write that came before the park wakes it at once. */
static void park(job_t *j)
{
    stt_db_t *db;
    const char *name = j->p.source.db;
    if (stt_db_open(S.store, name, strlen(name), &db) != 0) {
        j->state = J_PENDING; /* gone: the next run says so */
        return;
    }
    uint64_t mark[3];
    stt_db_mark(db, mark);
    j->park_db = stt_db_id(db);
    stt_db_release(db);
    j->parked = true;
    atomic_fetch_add(&S.nparked, 1);
    j->woken = mark[1] > j->run.parked_seq;
}

/* A job thread ended (S.lock held). Fills *f with what must happen outside the lock. */
static void reap(job_t *j, finished_t *f)
{
    pthread_join(j->tid, NULL);
    j->has_thread = false;
    j->updated = time(NULL);
    if (j->removed) {
        job_unlink(j);
        job_free(j);
        return;
    }
    stt_rep_run_t *r = &j->run;
    if (r->parked && !j->rotated && !atomic_load(&j->stop)) {
        park(j);
        return;
    }
    if (j->rotated || (atomic_load(&j->stop) && r->status)) {
        j->state = J_PENDING;
        event(j, "stopped");
        return;
    }
    doc_t *d = j->doc_id ? doc_find(j->doc_id) : NULL;
    if (r->status == 0 && !j->p.continuous) {
        event(j, "completed");
        f->tickets = j->tickets;
        j->tickets = NULL;
        f->reply.status = 200;
        f->reply.body = r->reply;
        r->reply = (stt_buf_t)STT_BUF_INIT;
        if (d) {
            stt_buf_t b = STT_BUF_INIT;
            j->state = J_RUNNING; /* rendered with the run's counters */
            info_json(j, &b, false);
            stt_buf_appendc(&b, '\0');
            d->state = J_COMPLETED;
            set_text(&d->info, b.base);
            /* the doc's _replication_stats also say when it started, as CouchDB's */
            b.len -= 2;
            stt_buf_appends(&b, ",\"start_time\":\"");
            stt__rep_iso8601(j->added, &b);
            stt_buf_appends(&b, "\"}");
            stt_buf_appendc(&b, '\0');
            d->updated = time(NULL);
            d->job = NULL;
            f->doc_id = stt_xstrndup(j->doc_id, strlen(j->doc_id));
            f->stats = stt_buf_release(&b, NULL);
        }
        job_unlink(j);
        job_free(j);
        return;
    }
    if (r->status == 0) { /* a continuous job that returned: only when stopped */
        j->state = J_PENDING;
        return;
    }
    j->error_count++;
    snprintf(j->error, sizeof(j->error), "%s: %s", r->error, r->reason);
    if (strcmp(r->error, "replication_auth_error") == 0)
        snprintf(j->error, sizeof(j->error), "{replication_auth_error,%s}", r->reason);
    if (j->tickets) {
        /* the requester of a one-shot replication waits for this answer */
        f->tickets = j->tickets;
        j->tickets = NULL;
        reply_error(&f->reply, r->status >= 400 && r->status != STT_REP_AUTH_FAILED ? r->status : 500, r->error,
                    r->reason);
        if (r->status == 404 && strcmp(r->error, "db_not_found") == 0) f->reply.status = 500;
        if (r->status == 401 && strcmp(r->error, "unauthorized") == 0) f->reply.status = 401;
        job_unlink(j);
        job_free(j);
        return;
    }
    event(j, "crashed");
    if (r->fatal) {
        j->state = J_FAILED;
        if (d) {
            d->job = NULL;
            d->state = J_ERROR;
            d->error_count = j->error_count;
            stt_buf_t b = STT_BUF_INIT;
            stt_buf_appends(&b, "{\"error\":");
            stt_json_write_cstr(&b, r->reason);
            stt_buf_appendc(&b, '}');
            stt_buf_appendc(&b, '\0');
            set_text(&d->info, b.base);
            set_text(&d->rep_id, NULL);
            stt_buf_free(&b);
            job_unlink(j);
            job_free(j);
        }
        return;
    }
    j->state = J_CRASHING;
    /* CouchDB's: 30 s, doubling, at most 8 h; slow enough that a job with a wrong
     * password never trips the peer's lockout */
    uint64_t backoff = 30000ull << (j->error_count > 10 ? 10 : j->error_count - 1);
    if (backoff > 8ull * 3600 * 1000) backoff = 8ull * 3600 * 1000;
    j->next_start_ms = stt_now_ms() + backoff;
    stt_log(STT_LOG_WARNING, "replication %s crashed (%d): %s", j->p.id, j->error_count, j->error);
}

static void schedule(void)
{
    uint64_t now = stt_now_ms();
    int64_t max_jobs = setting("max_jobs", 500), churn = setting("max_churn", 20);
    uint64_t interval = (uint64_t)setting("interval", 60000);
    int64_t running = 0;
    bool waiting = false;
    for (job_t *j = S.jobs; j; j = j->next) {
        if (j->removed) continue;
        if (j->parked && j->woken) job_start(j, true);
        if (j->state == J_RUNNING) running++;
        if (j->state == J_CRASHING && now >= j->next_start_ms) j->state = J_PENDING;
        if (j->state == J_PENDING) waiting = true;
    }
    /* the oldest first: jobs are listed newest first */
    while (running < max_jobs && waiting) {
        job_t *pick = NULL;
        for (job_t *j = S.jobs; j; j = j->next)
            if (!j->removed && j->state == J_PENDING && !j->has_thread) pick = j;
        if (!pick) break;
        job_start(pick, false);
        running++;
    }
    if (!waiting || running < max_jobs || now - S.last_rotation_ms < interval) return;
    S.last_rotation_ms = now;
    for (int64_t n = 0; n < churn; n++) {
        job_t *oldest = NULL;
        for (job_t *j = S.jobs; j; j = j->next)
            if (!j->removed && j->state == J_RUNNING && j->p.continuous && !j->rotated &&
                (!oldest || j->run_start_ms < oldest->run_start_ms))
                oldest = j;
        if (!oldest) break;
        oldest->rotated = true;
        if (oldest->parked) { /* no thread to stop */
            unpark(oldest);
            oldest->state = J_PENDING;
            event(oldest, "stopped");
            continue;
        }
        atomic_store(&oldest->stop, 1);
    }
    stt__rep_wake(0);
}

static void finish(finished_t *f)
{
    for (struct stt_rep_ticket *t = f->tickets, *next; t; t = next) {
        next = t->next;
        stt_rep_reply_t copy = {.status = f->reply.status};
        memcpy(copy.error, f->reply.error, sizeof(copy.error));
        memcpy(copy.reason, f->reply.reason, sizeof(copy.reason));
        stt_buf_append(&copy.body, f->reply.body.base, f->reply.body.len);
        t->done(t->ctx, &copy);
        free(t);
    }
    if (f->doc_id) write_back(f->doc_id, f->stats);
    stt_buf_free(&f->reply.body);
    free(f->doc_id);
    free(f->stats);
}

static void *sched_main(void *arg)
{
    pthread_mutex_lock(&S.lock);
    S.rdb_dirty = true;
    while (!S.stopping) {
        if (S.rdb_dirty) {
            S.rdb_dirty = false;
            pthread_mutex_unlock(&S.lock);
            read_replicator_db();
            pthread_mutex_lock(&S.lock);
        }
        for (bool again = true; again;) {
            again = false;
            for (job_t *j = S.jobs; j; j = j->next)
                if (j->has_thread && j->thread_done) {
                    finished_t f = {0};
                    reap(j, &f);
                    pthread_mutex_unlock(&S.lock);
                    finish(&f);
                    pthread_mutex_lock(&S.lock);
                    again = true;
                    break;
                }
        }
        schedule();
        if (S.rdb_dirty) continue;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        pthread_cond_timedwait(&S.cond, &S.lock, &until);
    }
    pthread_mutex_unlock(&S.lock);
    return NULL;
}

/* ------------------------------------------------------------------ public */

int stt_rep_start(stt_store_t *store, stt_ini_t *ini, const char *uuid, struct stt_qs_pool *qs)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    S.store = store;
    S.ini = ini;
    S.qs = qs;
    snprintf(S.uuid, sizeof(S.uuid), "%s", uuid);
    int rc = stt_db_create(store, STT_REPLICATOR_DB, sizeof(STT_REPLICATOR_DB) - 1);
    if (rc && rc != STT_E_FILE_EXISTS) stt_log(STT_LOG_WARNING, "the _replicator database could not be created");
    S.stopping = false;
    S.started = true;
    if (pthread_create(&S.tid, NULL, sched_main, NULL) != 0) {
        S.started = false;
        return STT_E_INTERNAL;
    }
    return 0;
}

void stt_rep_stop(void)
{
    if (!S.started) return;
    pthread_mutex_lock(&S.lock);
    S.stopping = true;
    for (job_t *j = S.jobs; j; j = j->next)
        atomic_store(&j->stop, 1);
    pthread_cond_signal(&S.cond);
    pthread_mutex_unlock(&S.lock);
    stt__rep_wake(0);
    pthread_join(S.tid, NULL);
    pthread_mutex_lock(&S.lock);
    while (S.jobs) {
        job_t *j = S.jobs;
        S.jobs = j->next;
        if (j->has_thread) {
            pthread_mutex_unlock(&S.lock);
            pthread_join(j->tid, NULL);
            pthread_mutex_lock(&S.lock);
        }
        finished_t f = {.tickets = j->tickets};
        j->tickets = NULL;
        reply_error(&f.reply, 500, "error", "the server is stopping");
        pthread_mutex_unlock(&S.lock);
        finish(&f);
        pthread_mutex_lock(&S.lock);
        job_free(j);
    }
    while (S.docs) {
        S.docs->job = NULL;
        doc_drop(S.docs->id);
    }
    S.started = false;
    pthread_mutex_unlock(&S.lock);
    curl_global_cleanup();
}

static job_t *find_job(const char *id, bool transient)
{
    for (job_t *j = S.jobs; j; j = j->next)
        if (!j->removed && (!transient || !j->doc_id) && strcmp(j->p.id, id) == 0) return j;
    return NULL;
}

int stt_rep_request(const stt_json_t *body, const stt_user_ctx_t *user, const char *self_url, stt_rep_done_fn done,
                    void *ctx, stt_rep_ticket_t **ticket, stt_rep_reply_t *reply)
{
    memset(reply, 0, sizeof(*reply));
    stt_rep_params_t p;
    const char *error;
    int st = stt__rep_params_parse(body, S.uuid, &p, &error, reply->reason, sizeof(reply->reason));
    if (st) {
        reply->status = st;
        snprintf(reply->error, sizeof(reply->error), "%s", error);
        return 1;
    }
    if (self_url) p.self_url = stt_xstrndup(self_url, strlen(self_url));
    if (!S.started) {
        stt__rep_params_free(&p);
        reply_error(reply, 500, "error", "the replicator is not running");
        return 1;
    }
    pthread_mutex_lock(&S.lock);
    int rc = 1;
    if (p.cancel) {
        const char *id = p.cancel_id ? p.cancel_id : p.id;
        job_t *j = find_job(id, true);
        if (!j && p.cancel_id) { /* an id without its +suffixes */
            for (job_t *k = S.jobs; k && !j; k = k->next)
                if (!k->removed && !k->doc_id && strncmp(k->p.id, id, strlen(id)) == 0) j = k;
        }
        if (!j) {
            reply_error(reply, 404, "not_found", "missing");
        } else {
            reply->status = 200;
            stt_buf_appends(&reply->body, "{\"ok\":true,\"_local_id\":");
            stt_json_write_cstr(&reply->body, j->p.id);
            stt_buf_appendc(&reply->body, '}');
            finished_t f = {.tickets = j->tickets};
            j->tickets = NULL;
            reply_error(&f.reply, 500, "error", "the replication was cancelled");
            job_remove(j);
            pthread_mutex_unlock(&S.lock);
            finish(&f);
            stt__rep_params_free(&p);
            return 1;
        }
    } else if (p.continuous) {
        job_t *j = find_job(p.id, true);
        if (!j) j = job_new(&p, NULL, user);
        reply->status = 202;
        stt_buf_appends(&reply->body, "{\"ok\":true,\"_local_id\":");
        stt_json_write_cstr(&reply->body, j->p.id);
        stt_buf_appendc(&reply->body, '}');
        pthread_cond_signal(&S.cond);
    } else {
        job_t *j = find_job(p.id, true);
        if (!j) j = job_new(&p, NULL, user);
        struct stt_rep_ticket *t = stt_xcalloc(1, sizeof(*t));
        t->done = done;
        t->ctx = ctx;
        t->next = j->tickets;
        j->tickets = t;
        *ticket = t;
        rc = 0;
        pthread_cond_signal(&S.cond);
    }
    pthread_mutex_unlock(&S.lock);
    stt__rep_params_free(&p);
    return rc;
}

void stt_rep_forget(stt_rep_ticket_t *t)
{
    pthread_mutex_lock(&S.lock);
    for (job_t *j = S.jobs; j; j = j->next)
        for (struct stt_rep_ticket **pp = &j->tickets; *pp; pp = &(*pp)->next)
            if (*pp == t) {
                *pp = t->next;
                free(t);
                pthread_mutex_unlock(&S.lock);
                return;
            }
    pthread_mutex_unlock(&S.lock);
}

void stt_rep_reply_free(stt_rep_reply_t *r)
{
    stt_buf_free(&r->body);
}

/* ------------------------------------------------------------------ the document check */

int stt_rep_doc_check(stt_arena_t *a, const stt_user_ctx_t *user, const stt_json_t *body, const char **out,
                      size_t *outlen, const char **reason)
{
    *out = NULL;
    const stt_json_t *src = stt_json_get(body, "source"), *tgt = stt_json_get(body, "target");
    for (int k = 0; k < 2; k++) {
        const stt_json_t *v = k ? tgt : src;
        const stt_json_t *url = v && v->type == STT_JSON_OBJECT ? stt_json_get(v, "url") : v;
        if (v && !stt_json_is_str(url)) {
            *reason = "{error,function_clause}";
            return 403;
        }
        /* a URL of another scheme: CouchDB takes it for a local name and refuses it
         * (settee takes plain local names) */
        if (v && strstr(url->u.s, "://") && strncasecmp(url->u.s, "http://", 7) != 0 &&
            strncasecmp(url->u.s, "https://", 8) != 0) {
            *reason = "local_endpoints_not_supported";
            return 403;
        }
    }
    const stt_json_t *ids = stt_json_get(body, "doc_ids");
    if (ids && ids->type != STT_JSON_ARRAY && ids->type != STT_JSON_NULL) {
        *reason = "parameter `doc_ids` must be an array";
        return 403;
    }
    int nfilters = 0;
    static const char *const filters[] = {"doc_ids", "filter", "selector"};
    for (int k = 0; k < 3; k++) {
        const stt_json_t *v = stt_json_get(body, filters[k]);
        nfilters += v && v->type != STT_JSON_NULL;
    }
    if (nfilters > 1) {
        *reason = "`doc_ids`,`filter`,`selector` are mutually exclusive";
        return 403;
    }
    if (stt_json_get(body, "owner") || !user->name) return 0;
    /* CouchDB records who wrote it */
    stt_buf_t b = STT_BUF_INIT;
    stt_buf_appendc(&b, '{');
    for (uint32_t i = 0; i < body->len; i++) {
        const stt_json_member_t *m = &body->u.members[i];
        if (m->key[0] == '_') continue;
        if (b.len > 1) stt_buf_appendc(&b, ',');
        stt_json_write_str(&b, m->key, m->keylen);
        stt_buf_appendc(&b, ':');
        stt_json_write(&b, &m->val);
    }
    if (b.len > 1) stt_buf_appendc(&b, ',');
    stt_buf_appends(&b, "\"owner\":");
    stt_json_write_str(&b, user->name, user->namelen);
    stt_buf_appendc(&b, '}');
    *out = stt_arena_memdup(a, b.base, b.len);
    *outlen = b.len;
    stt_buf_free(&b);
    return 0;
}
