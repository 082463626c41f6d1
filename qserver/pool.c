/* The pool of query-server processes (CouchDB's couch_proc_manager).
 *
 * Invariants, under pool->mu:
 *   - nprocs counts every process alive or being started; it never exceeds
 *     cfg.process_limit. A slot is taken before spawning (outside the lock) and
 *     given back if the spawn fails.
 *   - A process is either on the idle list or owned by exactly one caller.
 *     Idle processes are healthy as far as we know; one found dead at checkout
 *     (it exited after its last reply, as couchjs does after a fatal error) is
 *     reaped and its slot reused.
 *   - At most cfg.soft_limit processes stay idle; one returned beyond that, or
 *     idle longer than cfg.idle_limit_s, is stopped.
 * Killing and reaping happen outside the lock. */
#include "qserver/qs_int.h"
#include "src/common/log.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int stt_qs_pool_new(const stt_qs_config_t *c, stt_qs_pool_t **out)
{
    stt_qs_pool_t *pool = stt_xcalloc(1, sizeof *pool);
    pool->cfg = *c;
    if (pool->cfg.process_limit < 1) pool->cfg.process_limit = 1;
    if (pool->cfg.timeout_ms < 1) pool->cfg.timeout_ms = 5000;
    if (!pool->cfg.max_reply_bytes) pool->cfg.max_reply_bytes = 64u << 20;
    pthread_mutex_init(&pool->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&pool->cv, &ca);
    pthread_condattr_destroy(&ca);

    stt_buf_t b = STT_BUF_INIT;
    const char *rl = pool->cfg.reduce_limit;
    stt_buf_appendf(&b,
                    "[\"reset\",{\"reduce_limit\":%s,\"reduce_limit_threshold\":%d,\"reduce_limit_ratio\":%g,"
                    "\"timeout\":%d}]\n",
                    !strcmp(rl, "log")     ? "\"log\""
                    : !strcmp(rl, "false") ? "false"
                                           : "true",
                    pool->cfg.reduce_limit_threshold, pool->cfg.reduce_limit_ratio, pool->cfg.timeout_ms);
    pool->reset_cmd = stt_buf_release(&b, &pool->reset_len);
    *out = pool;
    return 0;
}

void stt_qs_pool_free(stt_qs_pool_t *pool)
{
    if (!pool) return;
    stt_qs_proc_t *p = pool->idle, *next;
    for (; p; p = next) {
        next = p->next;
        stt__qs_destroy(p);
    }
    pthread_mutex_destroy(&pool->mu);
    pthread_cond_destroy(&pool->cv);
    free(pool->reset_cmd);
    free(pool);
}

void stt_qs_pool_stats(stt_qs_pool_t *pool, stt_qs_stats_t *out)
{
    pthread_mutex_lock(&pool->mu);
    out->processes = pool->nprocs;
    out->idle = pool->nidle;
    out->started = pool->started;
    out->killed = pool->killed;
    pthread_mutex_unlock(&pool->mu);
}

static int find_lang(stt_qs_pool_t *pool, const char *lang)
{
    if (!lang) lang = "javascript";
    for (size_t i = 0; i < pool->cfg.nservers; i++)
        if (!strcmp(pool->cfg.servers[i].lang, lang)) return (int)i;
    return -1;
}

bool stt_qs_has_lang(stt_qs_pool_t *pool, const char *lang)
{
    return find_lang(pool, lang) >= 0;
}

static bool holds(const stt_qs_proc_t *p, const char *ddoc_key)
{
    for (size_t i = 0; ddoc_key && i < p->nddocs; i++)
        if (!strcmp(p->ddocs[i], ddoc_key)) return true;
    return false;
}

/* Under the lock: takes idle processes past the idle limit off the list. */
static stt_qs_proc_t *take_stale(stt_qs_pool_t *pool, double now)
{
    stt_qs_proc_t *stale = NULL, **pp = &pool->idle;
    while (*pp) {
        stt_qs_proc_t *p = *pp;
        if (now - p->idle_since > pool->cfg.idle_limit_s) {
            *pp = p->next;
            p->next = stale;
            stale = p;
            pool->nidle--;
            pool->nprocs--;
        } else {
            pp = &p->next;
        }
    }
    return stale;
}

static void destroy_list(stt_qs_proc_t *p)
{
    while (p) {
        stt_qs_proc_t *next = p->next;
        stt__qs_destroy(p);
        p = next;
    }
}

static void release_slot(stt_qs_pool_t *pool)
{
    pthread_mutex_lock(&pool->mu);
    pool->nprocs--;
    pthread_cond_signal(&pool->cv);
    pthread_mutex_unlock(&pool->mu);
}

/* A new process, reset with the pool's query_server_config. The slot is taken. */
static int start(stt_qs_pool_t *pool, int lang, stt_qs_proc_t **out, stt_arena_t *arena, stt_qs_err_t *err)
{
    stt_qs_proc_t *p;
    int rc = stt__qs_spawn(pool, lang, &p, arena, err);
    if (rc) return rc;
    bool got_any;
    rc = stt__qs_exchange(pool, p, pool->reset_cmd, pool->reset_len, 1, NULL, NULL, arena, err, &got_any);
    if (rc) {
        stt_log(STT_LOG_ERROR, "query server for %s did not start: %s %s", pool->cfg.servers[lang].lang, err->error,
                err->reason);
        stt__qs_destroy(p);
        return rc;
    }
    p->fresh = true;
    pthread_mutex_lock(&pool->mu);
    pool->started++;
    pthread_mutex_unlock(&pool->mu);
    *out = p;
    return 0;
}

int stt__qs_checkout(stt_qs_pool_t *pool, const char *lang, const char *ddoc_key, stt_qs_proc_t **out, bool *reused,
                     stt_arena_t *arena, stt_qs_err_t *err)
{
    int li = find_lang(pool, lang);
    if (li < 0) return stt__qs_fail(arena, err, STT_QS_E_UNKNOWN_LANG, 500, "unknown_query_language", lang);

    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += pool->cfg.timeout_ms / 1000;
    until.tv_nsec += (long)(pool->cfg.timeout_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }

    pthread_mutex_lock(&pool->mu);
    for (;;) {
        stt_qs_proc_t *stale = take_stale(pool, stt__qs_now());
        if (stale) {
            pthread_mutex_unlock(&pool->mu);
            destroy_list(stale);
            pthread_mutex_lock(&pool->mu);
        }
        /* An idle process of the language, the one holding the design doc first. */
        stt_qs_proc_t **best = NULL, *victim = NULL;
        for (stt_qs_proc_t **pp = &pool->idle; *pp; pp = &(*pp)->next) {
            if ((*pp)->lang != li) {
                if (!victim) victim = *pp;
                continue;
            }
            if (!best || (holds(*pp, ddoc_key) && !holds(*best, ddoc_key))) best = pp;
        }
        if (best) {
            stt_qs_proc_t *p = *best;
            *best = p->next;
            p->next = NULL;
            pool->nidle--;
            pthread_mutex_unlock(&pool->mu);
            if (!stt__qs_exited(p)) {
                p->fresh = false;
                *out = p;
                *reused = true;
                return 0;
            }
            stt_log(STT_LOG_INFO, "query server exited while idle; starting another");
            stt__qs_destroy(p);
            pthread_mutex_lock(&pool->mu);
            pool->nprocs--;
            continue;
        }
        if (pool->nprocs >= (size_t)pool->cfg.process_limit && victim) {
            /* Full of idle processes of other languages: make room. */
            for (stt_qs_proc_t **pp = &pool->idle; *pp; pp = &(*pp)->next)
                if (*pp == victim) {
                    *pp = victim->next;
                    break;
                }
            pool->nidle--;
            pool->nprocs--;
            pthread_mutex_unlock(&pool->mu);
            stt__qs_destroy(victim);
            pthread_mutex_lock(&pool->mu);
            continue;
        }
        if (pool->nprocs < (size_t)pool->cfg.process_limit) {
            pool->nprocs++;
            pthread_mutex_unlock(&pool->mu);
            int rc = start(pool, li, out, arena, err);
            if (rc) release_slot(pool);
            *reused = false;
            return rc;
        }
        if (pthread_cond_timedwait(&pool->cv, &pool->mu, &until) == ETIMEDOUT) {
            pthread_mutex_unlock(&pool->mu);
            return stt__qs_fail(arena, err, STT_QS_E_TIMEOUT, 500, "os_process_error",
                                "No query server process became free in time (os_process_limit).");
        }
    }
}

void stt__qs_checkin(stt_qs_pool_t *pool, stt_qs_proc_t *p)
{
    if (!p) return;
    pthread_mutex_lock(&pool->mu);
    bool keep = !p->broken && p->nddocs < STT_QS_MAX_DDOCS && pool->nidle < (size_t)pool->cfg.soft_limit;
    if (keep) {
        p->idle_since = stt__qs_now();
        p->next = pool->idle;
        pool->idle = p;
        pool->nidle++;
    } else {
        pool->nprocs--;
        if (p->broken) pool->killed++;
    }
    pthread_cond_signal(&pool->cv);
    pthread_mutex_unlock(&pool->mu);
    if (!keep) stt__qs_destroy(p);
}
