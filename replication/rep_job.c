/* One run of a replication job: CouchDB's algorithm (couch_replicator_scheduler_job
 * with its changes reader and workers), sequential in one thread.
 *
 *   1. open both ends (creating the target when asked);
 *   2. find where to start: the checkpoints _local/<id> of both ends agree on a
 *      session (the same session_id, or one both histories hold) -> its seq;
 *      otherwise the beginning (or since_seq when given);
 *   3. repeat: a batch of changes -> _revs_diff on the target -> the missing
 *      revisions from the source (attachments the target's possible ancestors
 *      hold are not sent again) -> written on the target with new_edits=false;
 *   4. checkpoint every checkpoint_interval and at the end: the same document
 *      on both ends, recording the seq of the last batch written entirely.
 *
 * Invariant: a checkpoint never names a seq whose revisions were not all written
 * (or refused by the target, which counts them as doc_write_failures, as CouchDB
 * does); a failure in a batch leaves the last checkpoint as it was.
 *
 * A continuous job that has caught up waits in the source's changes call
 * (longpoll, or the commit hook for a local source). */
#include "replication/rep_int.h"
#include "src/common/codec.h"
#include "src/common/err.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HISTORY_MAX 50
#define WAIT_MS 10000
#define QUIET_MS 1000

typedef struct {
    stt_rep_run_t *run;
    const stt_rep_params_t *p;
    stt_rep_ep_t *src, *tgt;
    char logid[48];
    char session[33];
    time_t start_time;
    stt_arena_t la;            /* the logs read at start */
    stt_json_t src_log;        /* NULL type when absent */
    const stt_json_t *history; /* the history the new entries go in front of */
    char *start_seq, *cur;     /* JSON texts */
    uint64_t rows_seen;
    bool dirty;         /* written or advanced since the last checkpoint */
    stt_buf_t last_log; /* the last checkpoint written */
} job_t;

static void fail_from(job_t *j, stt_rep_ep_t *ep)
{
    stt_rep_run_t *r = j->run;
    r->status = ep->status ? ep->status : 500;
    snprintf(r->error, sizeof(r->error), "%s", ep->error[0] ? ep->error : "error");
    snprintf(r->reason, sizeof(r->reason), "%s", ep->reason);
}

static stt_rep_ep_t *make_ep(job_t *j, const stt_rep_spec_t *s)
{
    if (s->url) return stt__rep_ep_http(s, j->p, j->run->stop);
    return stt__rep_ep_local(j->run->store, s, j->p, j->run->user, j->run->stop);
}

/* ------------------------------------------------------------------ checkpoints */

static const char *str(const stt_json_t *v)
{
    return stt_json_is_str(v) ? v->u.s : "";
}

static char *json_text(const stt_json_t *v)
{
    stt_buf_t b = STT_BUF_INIT;
    if (v)
        stt_json_write(&b, v);
    else
        stt_buf_appends(&b, "0");
    stt_buf_appendc(&b, '\0');
    return stt_buf_release(&b, NULL);
}

static uint64_t num(const stt_json_t *v)
{
    int64_t n;
    return v && stt_json_int(v, &n) == 0 && n > 0 ? (uint64_t)n : 0;
}

/* A resumed replication counts on from the stats of the checkpoint it resumes (as
 * CouchDB's does: its history entries are cumulative over the restarts). */
static void resume_stats(job_t *j, const stt_json_t *entry)
{
    stt_rep_stats_t *s = j->run->stats;
    pthread_mutex_lock(j->run->lock);
    s->revisions_checked = num(stt_json_get(entry, "missing_checked"));
    s->missing_revisions_found = num(stt_json_get(entry, "missing_found"));
    s->docs_read = num(stt_json_get(entry, "docs_read"));
    s->docs_written = num(stt_json_get(entry, "docs_written"));
    s->doc_write_failures = num(stt_json_get(entry, "doc_write_failures"));
    s->bulk_get_docs = num(stt_json_get(entry, "bulk_get_docs"));
    s->bulk_get_attempts = num(stt_json_get(entry, "bulk_get_attempts"));
    pthread_mutex_unlock(j->run->lock);
}

/* CouchDB's compare_replication_logs: the seq both ends agree they reached. */
static void find_start(job_t *j)
{
    stt_json_t tgt_log;
    bool hs = j->src->ops->get_local(j->src, &j->la, j->logid, &j->src_log) == 0 && j->src_log.type == STT_JSON_OBJECT;
    bool ht = j->tgt->ops->get_local(j->tgt, &j->la, j->logid, &tgt_log) == 0 && tgt_log.type == STT_JSON_OBJECT;
    if (!hs) j->src_log.type = STT_JSON_NULL;
    if (!hs || !ht) return;
    const char *ss = str(stt_json_get(&j->src_log, "session_id")), *ts = str(stt_json_get(&tgt_log, "session_id"));
    if (ss[0] && strcmp(ss, ts) == 0) {
        j->start_seq = json_text(stt_json_get(&j->src_log, "source_last_seq"));
        j->history = stt_json_get(&j->src_log, "history");
        if (j->history && j->history->type == STT_JSON_ARRAY && j->history->len)
            resume_stats(j, &j->history->u.items[0]);
        return;
    }
    const stt_json_t *sh = stt_json_get(&j->src_log, "history"), *th = stt_json_get(&tgt_log, "history");
    if (!sh || !th || sh->type != STT_JSON_ARRAY || th->type != STT_JSON_ARRAY) return;
    for (uint32_t i = 0; i < sh->len; i++) {
        const char *sid = str(stt_json_get(&sh->u.items[i], "session_id"));
        for (uint32_t k = 0; sid[0] && k < th->len; k++)
            if (strcmp(sid, str(stt_json_get(&th->u.items[k], "session_id"))) == 0) {
                j->start_seq = json_text(stt_json_get(&sh->u.items[i], "recorded_seq"));
                j->history = sh;
                resume_stats(j, &sh->u.items[i]);
                return;
            }
    }
}

static void stats_json(job_t *j, stt_buf_t *b)
{
    stt_rep_stats_t *s = j->run->stats;
    pthread_mutex_lock(j->run->lock);
    stt_buf_appendf(b,
                    ",\"missing_checked\":%llu,\"missing_found\":%llu,\"docs_read\":%llu,\"docs_written\":%llu,"
                    "\"doc_write_failures\":%llu,\"bulk_get_docs\":%llu,\"bulk_get_attempts\":%llu",
                    (unsigned long long)s->revisions_checked, (unsigned long long)s->missing_revisions_found,
                    (unsigned long long)s->docs_read, (unsigned long long)s->docs_written,
                    (unsigned long long)s->doc_write_failures, (unsigned long long)s->bulk_get_docs,
                    (unsigned long long)s->bulk_get_attempts);
    pthread_mutex_unlock(j->run->lock);
}

/* The checkpoint document's body (without _id): CouchDB's shape. */
static void log_json(job_t *j, stt_buf_t *b)
{
    char st[64], et[64];
    stt__rep_rfc1123(j->start_time, st, sizeof(st));
    stt__rep_rfc1123(time(NULL), et, sizeof(et));
    stt_buf_appendf(b, "{\"session_id\":\"%s\",\"source_last_seq\":%s,\"replication_id_version\":4,\"history\":[",
                    j->session, j->cur);
    stt_buf_appendf(b,
                    "{\"session_id\":\"%s\",\"start_time\":\"%s\",\"end_time\":\"%s\",\"start_last_seq\":%s,"
                    "\"end_last_seq\":%s,\"recorded_seq\":%s",
                    j->session, st, et, j->run->session_start_seq, j->cur, j->cur);
    stats_json(j, b);
    stt_buf_appendc(b, '}');
    for (uint32_t i = 0, n = 1; j->history && j->history->type == STT_JSON_ARRAY && i < j->history->len; i++) {
        if (n >= HISTORY_MAX) break;
        /* an earlier run of this session (a parked job): its entry is the one above */
        if (strcmp(str(stt_json_get(&j->history->u.items[i], "session_id")), j->session) == 0) continue;
        n++;
        stt_buf_appendc(b, ',');
        stt_json_write(b, &j->history->u.items[i]);
    }
    stt_buf_appends(b, "]}");
}

static int checkpoint(job_t *j)
{
    if (!j->dirty) return 0;
    stt_buf_reset(&j->last_log);
    log_json(j, &j->last_log);
    if (!j->p->use_checkpoints) {
        j->dirty = false;
        return 0;
    }
    if (j->src->ops->put_local(j->src, j->logid, j->last_log.base, j->last_log.len) != 0) {
        fail_from(j, j->src);
        return -1;
    }
    if (j->tgt->ops->put_local(j->tgt, j->logid, j->last_log.base, j->last_log.len) != 0) {
        fail_from(j, j->tgt);
        return -1;
    }
    j->dirty = false;
    pthread_mutex_lock(j->run->lock);
    snprintf(j->run->stats->checkpointed, sizeof(j->run->stats->checkpointed), "%s", j->cur);
    pthread_mutex_unlock(j->run->lock);
    return 0;
}

/* ------------------------------------------------------------------ one batch */

static int batch(job_t *j, stt_rep_change_t *rows, size_t n)
{
    stt_rep_run_t *r = j->run;
    stt_arena_t a = STT_ARENA_INIT;
    stt_buf_t req = STT_BUF_INIT;
    uint64_t nrevs = 0, nmissing = 0;
    stt_buf_appendc(&req, '{');
    for (size_t i = 0; i < n; i++) {
        if (i) stt_buf_appendc(&req, ',');
        stt_json_write_cstr(&req, rows[i].id);
        stt_buf_appendc(&req, ':');
        stt_buf_appendc(&req, '[');
        for (size_t k = 0; k < rows[i].nrevs; k++) {
            if (k) stt_buf_appendc(&req, ',');
            stt_json_write_cstr(&req, rows[i].revs[k]);
        }
        stt_buf_appendc(&req, ']');
        nrevs += rows[i].nrevs;
    }
    stt_buf_appendc(&req, '}');
    stt_json_t diff;
    int rc = j->tgt->ops->revs_diff(j->tgt, &a, req.base, req.len, &diff);
    stt_buf_free(&req);
    if (rc) {
        fail_from(j, j->tgt);
        goto exit;
    }
    size_t nf = diff.type == STT_JSON_OBJECT ? diff.len : 0, k = 0;
    stt_rep_fetch_t *f = stt_arena_alloc(&a, (nf ? nf : 1) * sizeof(*f));
    for (size_t i = 0; i < nf; i++) {
        const stt_json_member_t *m = &diff.u.members[i];
        const stt_json_t *miss = stt_json_get(&m->val, "missing"), *anc = stt_json_get(&m->val, "possible_ancestors");
        if (!miss || miss->type != STT_JSON_ARRAY || !miss->len) continue;
        f[k].id = m->key;
        f[k].revs = stt_arena_alloc(&a, miss->len * sizeof(char *));
        f[k].nrevs = 0;
        for (uint32_t x = 0; x < miss->len; x++)
            if (stt_json_is_str(&miss->u.items[x])) f[k].revs[f[k].nrevs++] = miss->u.items[x].u.s;
        f[k].natts_since = 0;
        if (anc && anc->type == STT_JSON_ARRAY && anc->len) {
            f[k].atts_since = stt_arena_alloc(&a, anc->len * sizeof(char *));
            for (uint32_t x = 0; x < anc->len; x++)
                if (stt_json_is_str(&anc->u.items[x])) f[k].atts_since[f[k].natts_since++] = anc->u.items[x].u.s;
        }
        nmissing += f[k].nrevs;
        k++;
    }
    stt_json_t *docs = stt_arena_alloc(&a, (nmissing ? nmissing : 1) * sizeof(*docs));
    size_t ndocs = 0, failed = 0;
    if (k) {
        rc = j->src->ops->fetch(j->src, &a, f, k, docs, &ndocs);
        if (rc) {
            fail_from(j, j->src);
            goto exit;
        }
    }
    if (ndocs) {
        rc = j->tgt->ops->write(j->tgt, &a, docs, ndocs, &failed);
        if (rc) {
            fail_from(j, j->tgt);
            goto exit;
        }
    }
    /* CouchDB's counts: every doc asked for by _bulk_get is an attempt; a doc with
     * attachments is fetched again alone (multipart), so only the others count as
     * bulk_get_docs */
    size_t with_atts = 0;
    const char *counted = NULL; /* both endpoints give a doc's revisions one after another */
    for (size_t x = 0; x < ndocs; x++) {
        const stt_json_t *id = stt_json_get(&docs[x], "_id"), *atts = stt_json_get(&docs[x], "_attachments");
        if (stt_json_is_str(id) && atts && atts->type == STT_JSON_OBJECT && atts->len &&
            (!counted || strcmp(counted, id->u.s) != 0)) {
            with_atts++;
            counted = id->u.s;
        }
    }
    pthread_mutex_lock(r->lock);
    r->stats->revisions_checked += nrevs;
    r->stats->missing_revisions_found += nmissing;
    r->stats->bulk_get_attempts += k;
    r->stats->bulk_get_docs += k - with_atts;
    r->stats->docs_read += ndocs;
    r->stats->docs_written += ndocs - failed;
    r->stats->doc_write_failures += failed;
    pthread_mutex_unlock(r->lock);
exit:
    stt_arena_free(&a);
    return rc;
}

/* ------------------------------------------------------------------ the run */

static void set_seq(job_t *j, const char *seq)
{
    free(j->cur);
    j->cur = stt_xstrndup(seq, strlen(seq));
    pthread_mutex_lock(j->run->lock);
    snprintf(j->run->stats->source_seq, sizeof(j->run->stats->source_seq), "%s", seq);
    pthread_mutex_unlock(j->run->lock);
}

static void reply(job_t *j)
{
    stt_buf_t *b = &j->run->reply;
    stt_buf_reset(b);
    if (!j->p->use_checkpoints) { /* CouchDB's whole answer then */
        stt_buf_appends(b, "{\"ok\":true,\"use_checkpoints\":false}");
        return;
    }
    if (!j->rows_seen) {
        /* nothing to do: CouchDB answers with the log as it was, untouched */
        stt_buf_appends(b, "{\"ok\":true,\"no_changes\":true");
        for (uint32_t i = 0; j->src_log.type == STT_JSON_OBJECT && !j->p->since_seq && i < j->src_log.len; i++) {
            const stt_json_member_t *m = &j->src_log.u.members[i];
            if (m->key[0] == '_') continue;
            stt_buf_appendc(b, ',');
            stt_json_write_str(b, m->key, m->keylen);
            stt_buf_appendc(b, ':');
            stt_json_write(b, &m->val);
        }
        stt_buf_appendc(b, '}');
        return;
    }
    if (!j->last_log.len) log_json(j, &j->last_log);
    stt_buf_appends(b, "{\"ok\":true,");
    if (j->p->filter_kind == STT_REP_F_DOC_IDS) {
        char st[64], et[64];
        stt__rep_rfc1123(j->start_time, st, sizeof(st));
        stt__rep_rfc1123(time(NULL), et, sizeof(et));
        stt_rep_stats_t *s = j->run->stats;
        stt_buf_appendf(b,
                        "\"start_time\":\"%s\",\"end_time\":\"%s\",\"docs_read\":%llu,\"docs_written\":%llu,"
                        "\"doc_write_failures\":%llu,",
                        st, et, (unsigned long long)s->docs_read, (unsigned long long)s->docs_written,
                        (unsigned long long)s->doc_write_failures);
    }
    stt_buf_append(b, j->last_log.base + 1, j->last_log.len - 1);
}

void stt__rep_run(stt_rep_run_t *run)
{
    const stt_rep_params_t *p = run->p;
    job_t j = {.run = run, .p = p, .start_time = run->session_start};
    if (run->session[0]) {
        memcpy(j.session, run->session, sizeof(j.session));
    } else {
        stt_uuid_random(j.session);
        memcpy(run->session, j.session, sizeof(j.session));
        run->session_start = j.start_time = time(NULL);
    }
    run->parked = false;
    snprintf(j.logid, sizeof(j.logid), "_local/%s", p->base_id);
    run->status = 0;
    j.src = make_ep(&j, &p->source);
    j.tgt = make_ep(&j, &p->target);
    if (j.src->ops->open(j.src, false, NULL) != 0) {
        fail_from(&j, j.src);
        goto exit;
    }
    if (p->filter_kind == STT_REP_F_DDOC) {
        const char *slash = strchr(p->filter, '/');
        char ddoc[256];
        snprintf(ddoc, sizeof(ddoc), "%.*s", (int)(slash - p->filter), p->filter);
        if (j.src->ops->check_filter(j.src, ddoc, slash + 1) != 0) {
            fail_from(&j, j.src);
            run->fatal = true;
            goto exit;
        }
    }
    if (j.tgt->ops->open(j.tgt, p->create_target, p->create_target_params) != 0) {
        fail_from(&j, j.tgt);
        goto exit;
    }
    if (p->use_checkpoints) find_start(&j);
    if (p->since_seq) {
        free(j.start_seq);
        j.start_seq = stt_xstrndup(p->since_seq, strlen(p->since_seq));
        j.history = NULL;
    }
    if (!j.start_seq) j.start_seq = stt_xstrndup("0", 1);
    set_seq(&j, j.start_seq);
    if (!run->session_start_seq[0]) snprintf(run->session_start_seq, sizeof(run->session_start_seq), "%s", j.start_seq);
    pthread_mutex_lock(run->lock);
    snprintf(run->stats->checkpointed, sizeof(run->stats->checkpointed), "%s", j.start_seq);
    pthread_mutex_unlock(run->lock);

    uint64_t last_cp = stt_now_ms();
    bool caught_up = false;
    size_t n = 0;
    while (!atomic_load(run->stop)) {
        if (caught_up && !n && !j.dirty && run->park_ok) {
            run->parked = true;
            pthread_mutex_lock(run->lock);
            run->stats->waiting = true;
            pthread_mutex_unlock(run->lock);
            run->parked_seq = strtoull(j.cur[0] == '"' ? j.cur + 1 : j.cur, NULL, 10);
            break;
        }
        stt_arena_t a = STT_ARENA_INIT;
        stt_rep_change_t *rows;
        const char *last;
        pthread_mutex_lock(run->lock);
        run->stats->waiting = caught_up;
        pthread_mutex_unlock(run->lock);
        /* caught up with progress unrecorded: record it after a short quiet spell */
        uint64_t wait = !caught_up ? 0 : j.dirty ? QUIET_MS : WAIT_MS;
        int rc =
            j.src->ops->changes(j.src, &a, strcmp(j.cur, "0") ? j.cur : NULL, p->batch_size, wait, &rows, &n, &last);
        if (rc) {
            fail_from(&j, j.src);
            stt_arena_free(&a);
            break;
        }
        if (n && (rc = batch(&j, rows, n)) != 0) {
            stt_arena_free(&a);
            break;
        }
        j.rows_seen += n;
        if (n || strcmp(last, j.cur)) {
            j.dirty = j.dirty || n;
            set_seq(&j, last);
        }
        stt_arena_free(&a);
        caught_up = n < p->batch_size;
        if (caught_up && !p->continuous) break;
        if (stt_now_ms() - last_cp >= p->checkpoint_interval_ms || (caught_up && !n && j.dirty)) {
            if (checkpoint(&j) != 0) break;
            last_cp = stt_now_ms();
        }
    }
    if (run->status == 0) {
        if (j.rows_seen || p->continuous) checkpoint(&j);
        if (run->status == 0 && !p->continuous) reply(&j);
    }
exit:
    j.src->ops->close(j.src);
    j.tgt->ops->close(j.tgt);
    free(j.start_seq);
    free(j.cur);
    stt_buf_free(&j.last_log);
    stt_arena_free(&j.la);
}
