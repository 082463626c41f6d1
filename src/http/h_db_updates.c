/* GET /_db_updates: the changes feed of _global_changes (replication/
 * global_changes.h) shown as {"db_name","type","seq"} rows, in CouchDB's four
 * feeds (global_changes_httpd): normal, longpoll, continuous, eventsource.
 *
 * A feed is a stream (reply.c) that scans the by-seq index of _global_changes from
 * the last seq it sent. Caught up, a longpoll/continuous/eventsource feed pauses
 * and joins its worker's waiting list; a commit to _global_changes (the store's
 * commit hook, on the writer's thread) posts one h2o message to every worker with
 * waiting feeds, which resume and scan again. Heartbeat and timeout are h2o timers.
 *
 *   SCANNING --caught up--> WAITING --commit/heartbeat--> SCANNING
 *       \--(normal | limit reached | timeout | longpoll got rows)--> END
 *
 * Parameters as CouchDB: feed, since (a seq or "now"), limit (rows sent),
 * descending, heartbeat (ms, "true" = 60000), timeout (ms); unknown ones are
 * ignored; a non-integer limit/heartbeat/timeout is 400 "invalid_integer". */
#include "src/http/http.h"
#include "replication/global_changes.h"
#include "src/common/err.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

enum { FEED_NORMAL, FEED_LONGPOLL, FEED_CONTINUOUS, FEED_EVENTSOURCE };

#define MAX_WORKERS 256
#define NTIMERS 16
#define DEFAULT_TIMEOUT_MS 60000

typedef struct dbu_feed dbu_feed_t;

/* ------------------------------------------------------------------ per worker */

typedef struct {
    uint64_t ms;
    h2o_timeout_t t;
} timer_slot_t;

typedef struct {
    h2o_loop_t *loop;
    h2o_multithread_receiver_t recv;
    atomic_int nwaiting;
    atomic_int messaged; /* a wake message is on its way */
    dbu_feed_t *head;    /* waiting feeds */
    timer_slot_t timers[NTIMERS];
    size_t ntimers;
} waiters_t;

/* Created by each worker on its first _db_updates request (h2o queues belong to
 * their loop); read by the notifier from the writer's thread. */
static _Atomic(waiters_t *) per_worker[MAX_WORKERS];

struct dbu_feed {
    stt_hreq_t *r;
    stt_stream_t *stream;
    waiters_t *ws;
    int mode;
    uint64_t last_seq, limit, sent, heartbeat_ms, timeout_ms;
    bool limited, descending, started, waiting, registered, timed_out, hb_due;
    h2o_timeout_entry_t hb, to;
    dbu_feed_t *prev, *next;
};

static void on_wake(h2o_multithread_receiver_t *recv, h2o_linklist_t *messages);

static waiters_t *worker_waiters(stt_hreq_t *r)
{
    size_t i = stt_worker_index(r->w) % MAX_WORKERS;
    waiters_t *ws = atomic_load(&per_worker[i]);
    if (ws) return ws;
    ws = stt_xcalloc(1, sizeof *ws);
    ws->loop = stt_worker_loop(r->w);
    h2o_multithread_queue_t *q = h2o_multithread_create_queue(ws->loop);
    h2o_multithread_register_receiver(q, &ws->recv, on_wake);
    atomic_store(&per_worker[i], ws);
    return ws;
}

static h2o_timeout_t *timer_for(waiters_t *ws, uint64_t ms)
{
    size_t best = 0;
    for (size_t i = 0; i < ws->ntimers; i++) {
        if (ws->timers[i].ms == ms) return &ws->timers[i].t;
        uint64_t d = ws->timers[i].ms > ms ? ws->timers[i].ms - ms : ms - ws->timers[i].ms;
        uint64_t db = ws->timers[best].ms > ms ? ws->timers[best].ms - ms : ms - ws->timers[best].ms;
        if (d < db) best = i;
    }
    if (ws->ntimers == NTIMERS) return &ws->timers[best].t; /* bounded: the nearest duration */
    timer_slot_t *s = &ws->timers[ws->ntimers++];
    s->ms = ms;
    h2o_timeout_init(ws->loop, &s->t, ms);
    return &s->t;
}

static void feed_register(dbu_feed_t *f)
{
    if (f->registered) return;
    f->next = f->ws->head;
    f->prev = NULL;
    if (f->next) f->next->prev = f;
    f->ws->head = f;
    f->registered = true;
    atomic_fetch_add(&f->ws->nwaiting, 1);
}

static void feed_unregister(dbu_feed_t *f)
{
    if (!f->registered) return;
    if (f->prev)
        f->prev->next = f->next;
    else
        f->ws->head = f->next;
    if (f->next) f->next->prev = f->prev;
    f->prev = f->next = NULL;
    f->registered = false;
    atomic_fetch_sub(&f->ws->nwaiting, 1);
}

static void resume(dbu_feed_t *f)
{
    if (!f->waiting) return;
    f->waiting = false;
    stt_stream_resume(f->stream);
}

void stt_db_updates_notify(stt_db_t *db)
{
    size_t len;
    const char *name = stt_db_name(db, &len);
    if (len != sizeof(STT_GLOBAL_CHANGES_DB) - 1 || memcmp(name, STT_GLOBAL_CHANGES_DB, len)) return;
    for (size_t i = 0; i < MAX_WORKERS; i++) {
        waiters_t *ws = atomic_load(&per_worker[i]);
        if (!ws || atomic_load(&ws->nwaiting) == 0 || atomic_exchange(&ws->messaged, 1)) continue;
        h2o_multithread_send_message(&ws->recv, stt_xcalloc(1, sizeof(h2o_multithread_message_t)));
    }
}

static void on_wake(h2o_multithread_receiver_t *recv, h2o_linklist_t *messages)
{
    waiters_t *ws = (waiters_t *)((char *)recv - offsetof(waiters_t, recv));
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *m = H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&m->link);
        free(m);
    }
    atomic_store(&ws->messaged, 0);
    for (dbu_feed_t *f = ws->head, *next; f; f = next) {
        next = f->next; /* a resumed feed may unregister itself */
        resume(f);
    }
}

void stt_db_updates_shutdown(stt_worker_t *w)
{
    waiters_t *ws = atomic_load(&per_worker[stt_worker_index(w) % MAX_WORKERS]);
    for (dbu_feed_t *f = ws ? ws->head : NULL, *next; f; f = next) {
        next = f->next;
        f->timed_out = true;
        resume(f);
    }
}

/* ------------------------------------------------------------------ rows */

typedef struct {
    dbu_feed_t *f;
    stt_buf_t *out;
    bool full;
} scan_t;

static void write_row(stt_buf_t *out, const char *type, size_t tl, const char *name, size_t nl, uint64_t seq)
{
    stt_buf_appends(out, "{\"db_name\":");
    stt_json_write_str(out, name, nl);
    stt_buf_appends(out, ",\"type\":");
    stt_json_write_str(out, type, tl);
    stt_buf_appends(out, ",\"seq\":");
    stt_seq_format(out, seq);
    stt_buf_appendc(out, '}');
}

static int on_change(void *ctx, const stt_doc_summary_t *s)
{
    scan_t *sc = ctx;
    dbu_feed_t *f = sc->f;
    const char *type, *name;
    size_t tl, nl;
    if (f->limited && f->sent >= f->limit) return 1;
    f->last_seq = s->seq;
    if (!stt_global_changes_split(s->id, s->idlen, &type, &tl, &name, &nl)) return 0;
    stt_buf_t *out = sc->out;
    switch (f->mode) {
    case FEED_NORMAL:
    case FEED_LONGPOLL:
        if (f->sent) stt_buf_appends(out, ",\r\n");
        write_row(out, type, tl, name, nl, s->seq);
        break;
    case FEED_CONTINUOUS:
        write_row(out, type, tl, name, nl, s->seq);
        stt_buf_appendc(out, '\n');
        break;
    case FEED_EVENTSOURCE:
        stt_buf_appends(out, "data: ");
        write_row(out, type, tl, name, nl, s->seq);
        stt_buf_appends(out, "\nid: ");
        stt_seq_format(out, s->seq);
        stt_buf_appends(out, "\n\n");
        break;
    }
    f->sent++;
    if (out->len >= 64 * 1024) {
        sc->full = true;
        return 1;
    }
    return 0;
}

static void write_end(dbu_feed_t *f, stt_buf_t *out)
{
    switch (f->mode) {
    case FEED_NORMAL:
    case FEED_LONGPOLL:
        stt_buf_appends(out, "\n],\n\"last_seq\":");
        stt_seq_format(out, f->last_seq);
        stt_buf_appends(out, "}\n");
        break;
    case FEED_CONTINUOUS:
        stt_buf_appends(out, "{\"last_seq\":");
        stt_seq_format(out, f->last_seq);
        stt_buf_appends(out, "}\n");
        break;
    case FEED_EVENTSOURCE:
        break;
    }
}

/* ------------------------------------------------------------------ timers */

static void arm_heartbeat(dbu_feed_t *f)
{
    if (!f->heartbeat_ms) return;
    if (h2o_timeout_is_linked(&f->hb)) h2o_timeout_unlink(&f->hb);
    h2o_timeout_link(f->ws->loop, timer_for(f->ws, f->heartbeat_ms), &f->hb);
}

static void on_heartbeat(h2o_timeout_entry_t *e)
{
    dbu_feed_t *f = (dbu_feed_t *)((char *)e - offsetof(dbu_feed_t, hb));
    f->hb_due = true;
    resume(f);
}

static void on_timeout(h2o_timeout_entry_t *e)
{
    dbu_feed_t *f = (dbu_feed_t *)((char *)e - offsetof(dbu_feed_t, to));
    f->timed_out = true;
    resume(f);
}

/* ------------------------------------------------------------------ producer */

static int produce(stt_stream_t *s, stt_buf_t *out)
{
    dbu_feed_t *f = s->ctx;
    if (!f->started) {
        f->started = true;
        if (f->mode == FEED_NORMAL || f->mode == FEED_LONGPOLL) stt_buf_appends(out, "{\"results\":[\n");
        if (f->timeout_ms) h2o_timeout_link(f->ws->loop, timer_for(f->ws, f->timeout_ms), &f->to);
        arm_heartbeat(f);
    }
    if (f->hb_due) {
        f->hb_due = false;
        stt_buf_appends(out, f->mode == FEED_EVENTSOURCE ? "event: heartbeat\ndata: \n\n" : "\n");
        arm_heartbeat(f);
    }
    stt_reader_t *rd;
    if (stt_reader_open(f->r->db, &rd) != 0) return -1;
    scan_t sc = {f, out, false};
    if (!(f->limited && f->sent >= f->limit) && !f->timed_out)
        stt_changes_scan(rd, f->last_seq, f->descending, on_change, &sc);
    stt_reader_close(rd);
    if (sc.full) return 1;
    if (f->mode == FEED_NORMAL || f->descending || f->timed_out || (f->limited && f->sent >= f->limit) ||
        (f->mode == FEED_LONGPOLL && f->sent > 0)) {
        write_end(f, out);
        return 0;
    }
    f->waiting = true;
    feed_register(f);
    return 2;
}

static void stop(stt_stream_t *s)
{
    dbu_feed_t *f = s->ctx;
    feed_unregister(f);
    if (h2o_timeout_is_linked(&f->hb)) h2o_timeout_unlink(&f->hb);
    if (h2o_timeout_is_linked(&f->to)) h2o_timeout_unlink(&f->to);
    f->waiting = false;
}

static const stt_stream_ops_t feed_ops = {produce, stop};

/* ------------------------------------------------------------------ request */

/* CouchDB's to_non_neg_int. 1 absent, 0 set, -1 after a 400. */
static int non_neg_int(stt_hreq_t *r, const char *key, uint64_t *out)
{
    const stt_qparam_t *p = stt_q_get(r, key);
    if (!p) return 1;
    uint64_t v = 0;
    bool ok = p->vallen > 0 && p->vallen <= 18;
    for (size_t i = 0; ok && i < p->vallen; i++)
        if (p->val[i] < '0' || p->val[i] > '9')
            ok = false;
        else
            v = v * 10 + (uint64_t)(p->val[i] - '0');
    if (!ok) {
        stt_reply_error_raw(r, 400, "bad_request", "invalid_integer");
        return -1;
    }
    *out = v;
    return 0;
}

void stt_h_db_updates(stt_hreq_t *r)
{
    dbu_feed_t *f = stt_arena_alloc(&r->arena, sizeof *f);
    memset(f, 0, sizeof *f);
    f->r = r;
    f->hb.cb = on_heartbeat;
    f->to.cb = on_timeout;

    /* the query first, as parse_global_changes_query runs before the feed check */
    int rc = non_neg_int(r, "limit", &f->limit);
    if (rc < 0) return;
    f->limited = rc == 0;
    const stt_qparam_t *hb = stt_q_get(r, "heartbeat");
    if (hb && !strcmp(hb->val, "true"))
        f->heartbeat_ms = 60000;
    else if (!(hb && !strcmp(hb->val, "false")) && non_neg_int(r, "heartbeat", &f->heartbeat_ms) < 0)
        return;
    rc = non_neg_int(r, "timeout", &f->timeout_ms);
    if (rc < 0) return;
    bool has_timeout = rc == 0;
    f->descending = stt_q_flag(r, "descending");

    const stt_qparam_t *feed = stt_q_get(r, "feed");
    const char *fv = feed ? feed->val : "normal";
    if (!strcmp(fv, "normal"))
        f->mode = FEED_NORMAL;
    else if (!strcmp(fv, "longpoll"))
        f->mode = FEED_LONGPOLL;
    else if (!strcmp(fv, "continuous"))
        f->mode = FEED_CONTINUOUS;
    else if (!strcmp(fv, "eventsource"))
        f->mode = FEED_EVENTSOURCE;
    else {
        stt_reply_error_raw(r, 400, "bad_request", "Supported `feed` types: normal, continuous, longpoll, eventsource");
        return;
    }

    rc = stt_db_open(stt__server->store, STT_GLOBAL_CHANGES_DB, sizeof(STT_GLOBAL_CHANGES_DB) - 1, &r->db);
    if (rc) {
        stt_reply_error(r, rc, NULL);
        return;
    }
    stt_db_info_t in;
    stt_db_info(r->db, &in);
    const stt_qparam_t *since = stt_q_get(r, "since");
    if (since && stt_seq_parse(since->val, since->vallen, in.update_seq, &f->last_seq) != 0) {
        stt_reply_error_raw(r, 400, "bad_request", "Malformed sequence supplied in 'since' parameter.");
        return;
    }
    if (f->descending) f->last_seq = 0; /* from the end */

    if (f->mode == FEED_NORMAL) {
        f->heartbeat_ms = f->timeout_ms = 0;
        /* the answer depends on the db's state and the query only */
        char etag[40];
        uint64_t h = XXH3_64bits(r->req->input.path.base, r->req->input.path.len) ^
                     (in.update_seq * 0x9E3779B97F4A7C15ULL) ^ (uint64_t)(uintptr_t)r->db;
        snprintf(etag, sizeof etag, "\"%016llx\"", (unsigned long long)h);
        f->ws = worker_waiters(r);
        f->stream = stt_stream_start(r, 200, "application/json", &feed_ops, f,
                                     (const char *const[]){"cache-control", "must-revalidate", "etag", etag, NULL});
        return;
    }
    if (!has_timeout) f->timeout_ms = DEFAULT_TIMEOUT_MS;
    if (f->heartbeat_ms) {
        if (f->heartbeat_ms < 100) f->heartbeat_ms = 100;
        /* a heartbeat keeps the feed open: the timeout only applies without one */
        if (!has_timeout) f->timeout_ms = 0;
    }
    if (f->timeout_ms == 0 && !f->heartbeat_ms) f->timeout_ms = 1; /* timeout=0: answer at once */
    f->ws = worker_waiters(r);
    if (f->mode == FEED_EVENTSOURCE)
        f->stream = stt_stream_start(r, 200, "text/event-stream", &feed_ops, f,
                                     (const char *const[]){"cache-control", "no-cache", NULL});
    else
        f->stream = stt_stream_start(r, 200, "application/json", &feed_ops, f,
                                     (const char *const[]){"cache-control", "must-revalidate", NULL});
}
