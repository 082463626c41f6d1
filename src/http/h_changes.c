/* _changes: normal, longpoll, continuous and eventsource feeds.
 *
 * A feed is a stream (reply.c) whose producer scans the by-seq index from the
 * last seq it sent. When it has caught up, a waiting feed pauses and registers on
 * its worker under the db handle. A commit anywhere calls stt_changes_notify on
 * the writer's thread; it marks the db pending on every worker that has waiting
 * feeds and posts one h2o multithread message to each (no polling). The worker
 * then resumes the feeds of that db. Heartbeats and timeouts are h2o timers; a
 * heartbeat is also how a vanished client is noticed (h2o only sees the close
 * when it writes).
 *
 * States of a feed: SCANNING -> (caught up) -> WAITING -> (wake) -> SCANNING ...
 *                   -> ENDING (limit, timeout, longpoll got rows) -> done. */
#include "src/http/http.h"
#include "access/access.h"
#include "src/http/offload.h"
#include "design/design.h"
#include "mango/mango.h"
#include "replication/replication.h"
#include "replication/selector.h"
#include "src/http/multipart.h"
#include "src/common/err.h"
#include <pthread.h>
#include <stdio.h>
#include <xxhash.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { FEED_NORMAL, FEED_LONGPOLL, FEED_CONTINUOUS, FEED_EVENTSOURCE };

typedef struct feed feed_t;
typedef struct timer_slot timer_slot_t;

/* ------------------------------------------------------------------ per worker */

struct timer_slot {
    uint64_t ms;
    h2o_timeout_t t;
};

typedef struct {
    stt_worker_t *w;
    h2o_loop_t *loop;
    h2o_multithread_receiver_t recv;
    atomic_int nwaiting;  /* feeds registered: notifiers skip idle workers */
    pthread_mutex_t lock; /* guards pending */
    stt_db_t **pending;
    size_t npending, cappending;
    int messaged;
    /* waiting feeds, one doubly linked list (feeds of all dbs: a wake walks the
     * list once and resumes those on the committed db) */
    feed_t *head;
    timer_slot_t *timers;
    size_t ntimers;
} feeds_t;

struct feed {
    stt_hreq_t *r;
    stt_stream_t *stream;
    feeds_t *fw;
    int mode;
    uint64_t since, limit, sent, seq_interval, rowi;
    bool descending, all_docs, include_docs, started, ending, waiting, registered, timed_out, hb_due, got_rows;
    stt_render_opts_t ro;
    /* filters */
    int filter; /* 0 none, 1 doc_ids, 2 selector, 3 design */
    h2o_iovec_t *doc_ids;
    size_t ndoc_ids;
    stt_selector_t *selector;
    /* design-doc filters (filter=ddoc/name, filter=_view): run in batches on the
     * offload pool, the feed paused meanwhile (see "JavaScript filters") */
    int js; /* 0 none, JS_FILTER, JS_VIEW */
    stt_qs_ddoc_t js_ddoc;
    const char *js_fn;
    stt_qs_text_t js_req;
    struct js_link *js_link; /* the batch in flight, as the request's pool sees it */
    struct js_batch *js_ready;
    uint64_t heartbeat_ms, timeout_ms;
    h2o_timeout_entry_t hb, to;
    timer_slot_t *hb_slot, *to_slot;
    feed_t *prev, *next;
    uint64_t last_seq;
    /* an access database read by a non-admin: the user's view, and the seq the
     * access index described at the last stt_access_sync */
    stt_access_t *acc;
    uint64_t acc_upto;
    /* filter=_selector helped by a Mango index (see "Selector feeds from an index"):
     * a doc stt_mango_feed_may_match drops cannot match, and its body is not read */
    bool use_idx;
    stt_mango_feed_set_t idx; /* seqs in the request's arena */
};

/* The by-seq index from since, or in an access database the user's entries of
 * the access index (access/index.c). 1 when fn stopped the scan. */
static int scan(feed_t *f, stt_reader_t *rd, uint64_t since, bool descending,
                int (*fn)(void *ctx, const stt_doc_summary_t *s), void *ctx)
{
    if (f->acc) return stt_access_changes_scan(f->acc, rd, since, f->acc_upto, descending, fn, ctx);
    return stt_changes_scan(rd, since, descending, fn, ctx);
}

static h2o_timeout_t *timer_for(feeds_t *fw, uint64_t ms, timer_slot_t **slot)
{
    for (size_t i = 0; i < fw->ntimers; i++)
        if (fw->timers[i].ms == ms) {
            *slot = &fw->timers[i];
            return &fw->timers[i].t;
        }
    if (fw->ntimers == 32) {
        /* bounded: reuse the nearest existing duration */
        size_t best = 0;
        for (size_t i = 1; i < fw->ntimers; i++)
            if ((fw->timers[i].ms > ms ? fw->timers[i].ms - ms : ms - fw->timers[i].ms) <
                (fw->timers[best].ms > ms ? fw->timers[best].ms - ms : ms - fw->timers[best].ms))
                best = i;
        *slot = &fw->timers[best];
        return &fw->timers[best].t;
    }
    timer_slot_t *s = &fw->timers[fw->ntimers++];
    s->ms = ms;
    h2o_timeout_init(fw->loop, &s->t, ms);
    *slot = s;
    return &s->t;
}

static void on_wake(h2o_multithread_receiver_t *recv, h2o_linklist_t *messages);

void stt_changes_worker_init(stt_worker_t *w, h2o_loop_t *loop)
{
    feeds_t *fw = stt_xcalloc(1, sizeof(*fw));
    fw->w = w;
    fw->loop = loop;
    pthread_mutex_init(&fw->lock, NULL);
    fw->timers = stt_xcalloc(32, sizeof(*fw->timers)); /* never moves: h2o links into it */
    h2o_multithread_queue_t *q = h2o_multithread_create_queue(loop);
    h2o_multithread_register_receiver(q, &fw->recv, on_wake);
    stt_worker_set_feeds(w, fw);
}

void stt_changes_notify(void *ctx, stt_db_t *db, uint64_t seq)
{
    stt_server_t *srv = ctx;
    for (size_t i = 0; i < srv->nworkers; i++) {
        feeds_t *fw = stt_worker_feeds(srv->workers[i]);
        if (!fw || atomic_load(&fw->nwaiting) == 0) continue;
        h2o_multithread_message_t *msg = NULL;
        pthread_mutex_lock(&fw->lock);
        bool have = false;
        for (size_t k = 0; k < fw->npending; k++)
            have |= fw->pending[k] == db;
        if (!have) {
            if (fw->npending == fw->cappending) {
                fw->cappending = fw->cappending ? fw->cappending * 2 : 8;
                fw->pending = stt_xrealloc(fw->pending, fw->cappending * sizeof(*fw->pending));
            }
            fw->pending[fw->npending++] = db;
        }
        if (!fw->messaged) {
            fw->messaged = 1;
            msg = stt_xcalloc(1, sizeof(*msg));
        }
        pthread_mutex_unlock(&fw->lock);
        if (msg) h2o_multithread_send_message(&fw->recv, msg);
    }
}

static void feed_unregister(feed_t *f)
{
    if (!f->registered) return;
    feeds_t *fw = f->fw;
    if (f->prev)
        f->prev->next = f->next;
    else
        fw->head = f->next;
    if (f->next) f->next->prev = f->prev;
    f->prev = f->next = NULL;
    f->registered = false;
    atomic_fetch_sub(&fw->nwaiting, 1);
}

static void feed_register(feed_t *f)
{
    if (f->registered) return;
    feeds_t *fw = f->fw;
    f->next = fw->head;
    f->prev = NULL;
    if (fw->head) fw->head->prev = f;
    fw->head = f;
    f->registered = true;
    atomic_fetch_add(&fw->nwaiting, 1);
}

static void on_wake(h2o_multithread_receiver_t *recv, h2o_linklist_t *messages)
{
    feeds_t *fw = (feeds_t *)((char *)recv - offsetof(feeds_t, recv));
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *m = H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&m->link);
        free(m);
    }
    pthread_mutex_lock(&fw->lock);
    size_t n = fw->npending;
    stt_db_t *dbs[64];
    bool all = n > 64;
    if (!all) memcpy(dbs, fw->pending, n * sizeof(*dbs));
    fw->npending = 0;
    fw->messaged = 0;
    pthread_mutex_unlock(&fw->lock);
    /* resume matching feeds; a resumed feed may unregister itself, so take next first */
    feed_t *f = fw->head;
    while (f) {
        feed_t *next = f->next;
        bool hit = all;
        for (size_t i = 0; !hit && i < n; i++)
            hit = dbs[i] == f->r->db;
        if (hit && f->waiting) {
            f->waiting = false;
            stt_stream_resume(f->stream);
        }
        f = next;
    }
}

void stt_changes_shutdown(stt_worker_t *w)
{
    feeds_t *fw = stt_worker_feeds(w);
    feed_t *f = fw ? fw->head : NULL;
    while (f) {
        feed_t *next = f->next; /* resuming may unregister f */
        f->timed_out = true;
        if (f->waiting) {
            f->waiting = false;
            stt_stream_resume(f->stream);
        }
        f = next;
    }
}

/* ------------------------------------------------------------------ rows */

static int cmp_iovec(const void *a, const void *b)
{
    const h2o_iovec_t *x = a, *y = b;
    size_t m = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->base, y->base, m);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

static bool want_id(feed_t *f, const char *id, size_t idlen)
{
    if (f->filter == 1) {
        h2o_iovec_t key = h2o_iovec_init(id, idlen);
        return bsearch(&key, f->doc_ids, f->ndoc_ids, sizeof(*f->doc_ids), cmp_iovec) != NULL;
    }
    if (f->filter == 3) return idlen > 8 && memcmp(id, "_design/", 8) == 0;
    return true;
}

typedef struct {
    feed_t *f;
    stt_reader_t *rd;
    stt_buf_t *out;
    size_t rows;
    bool full;
} scan_t;

/* The revisions a row lists: every leaf with style=all_docs, else the winner. */
static size_t row_nrevs(const feed_t *f, const stt_doc_summary_t *s)
{
    return f->all_docs ? s->nleaves : (s->nleaves ? 1 : 0);
}

/* filter=_selector on each revision the row lists (replication/filter_revs.c):
 * whether one matched; keep[i] (row_nrevs entries) says which. */
static bool selector_keep(feed_t *f, stt_reader_t *rd, const stt_doc_summary_t *s, bool *keep)
{
    size_t n = row_nrevs(f, s);
    /* live, covered by the index and not in it: its winner cannot match (no body
     * read); the index holds winners, so another leaf is read all the same */
    if (n == 1 && f->use_idx && !stt_mango_feed_may_match(&f->idx, s)) return false;
    stt_doc_t d;
    if (stt_doc_get(rd, s->id, s->idlen, &d) != 0) return false;
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        int node = stt_filter_node(&d, s->leaf_rev[i], s->leaf_revlen[i]);
        /* a user's view: only a revision they may read (not a removed doc's winner) */
        keep[i] = node >= 0 && (!f->acc || stt_access_node_ok(f->acc, &d, node)) &&
                  stt_filter_selector_node(rd, &d, node, f->selector);
        any |= keep[i];
    }
    stt_doc_free(&d);
    return any;
}

static void write_seq(feed_t *f, uint64_t seq, stt_buf_t *out)
{
    f->rowi++;
    stt_buf_appends(out, "{\"seq\":");
    /* CouchDB computes a seq every seq_interval rows: rows 2, 5, 8... for 3 */
    if (f->seq_interval > 1 && ((f->rowi + 1) % f->seq_interval) != 0)
        stt_buf_appends(out, "null");
    else
        stt_seq_format(out, seq);
}

/* the row after its seq, to its changes: ,"id":...,"changes":[ */
static void write_row_id(const stt_doc_summary_t *s, stt_buf_t *out)
{
    stt_buf_appends(out, ",\"id\":");
    stt_json_write_str(out, s->id, s->idlen);
    stt_buf_appends(out, ",\"changes\":[");
}

/* one of a row's changes: {"rev":...}, after a comma but for the first */
static void write_change(const char *rev, size_t revlen, bool *first, stt_buf_t *out)
{
    stt_buf_appends(out, *first ? "{\"rev\":\"" : ",{\"rev\":\"");
    *first = false;
    stt_buf_append(out, rev, revlen);
    stt_buf_appends(out, "\"}");
}

/* the changes of a row: the revisions row_nrevs lists, those keep says passed the
 * filter (NULL: all) */
static void write_row_revs(const feed_t *f, const stt_doc_summary_t *s, const bool *keep, stt_buf_t *out)
{
    bool first = true;
    for (size_t i = 0; i < row_nrevs(f, s); i++)
        if (!keep || keep[i]) write_change(s->leaf_rev[i], s->leaf_revlen[i], &first, out);
}

/* the rest of a row after its changes: ],"deleted"...,"doc"...} */
static void write_row_end(feed_t *f, stt_reader_t *rd, const stt_doc_summary_t *s, stt_buf_t *out)
{
    stt_buf_appendc(out, ']');
    if (s->deleted) stt_buf_appends(out, ",\"deleted\":true");
    if (f->include_docs) {
        stt_doc_t d;
        stt_buf_appends(out, ",\"doc\":");
        if (stt_doc_get(rd, s->id, s->idlen, &d) == 0) {
            int node = f->acc ? stt_access_winner(f->acc, &d) : d.winner;
            if (node < 0) /* removed from the user's view: a deletion for their replica */
                stt_access_render_stub(&d, d.winner, out);
            else if (stt_doc_render(rd, &d, node, &f->ro, out) != 0)
                stt_buf_appends(out, "null");
            stt_doc_free(&d);
        } else {
            stt_buf_appends(out, "null");
        }
    }
    stt_buf_appendc(out, '}');
}

/* A row in the feed's framing: open, the rest (write_row_id, _revs, _end), close. */
static void row_open(feed_t *f, uint64_t seq, stt_buf_t *out)
{
    if (f->mode == FEED_NORMAL || f->mode == FEED_LONGPOLL) {
        if (f->sent) stt_buf_appends(out, ",\n");
    } else if (f->mode == FEED_EVENTSOURCE) {
        stt_buf_appends(out, "data: ");
    }
    write_seq(f, seq, out);
}

static void row_close(feed_t *f, uint64_t seq, stt_buf_t *out)
{
    if (f->mode == FEED_CONTINUOUS) {
        stt_buf_appendc(out, '\n');
    } else if (f->mode == FEED_EVENTSOURCE) {
        stt_buf_appends(out, "\nid: ");
        stt_seq_format(out, seq);
        stt_buf_appends(out, "\n\n");
    }
    f->sent++;
}

static int on_change(void *ctx, const stt_doc_summary_t *s)
{
    scan_t *sc = ctx;
    feed_t *f = sc->f;
    if (f->sent >= f->limit) return 1;
    f->last_seq = s->seq;
    if (!want_id(f, s->id, s->idlen)) return 0;
    bool keep1, *keep = NULL; /* filter=_selector: the revisions that matched */
    if (f->filter == 2) {
        keep = row_nrevs(f, s) > 1 ? stt_xmalloc(row_nrevs(f, s)) : &keep1;
        if (!selector_keep(f, sc->rd, s, keep)) {
            if (keep != &keep1) free(keep);
            return 0;
        }
    }
    stt_buf_t *out = sc->out;
    row_open(f, s->seq, out);
    write_row_id(s, out);
    write_row_revs(f, s, keep, out);
    write_row_end(f, sc->rd, s, out);
    row_close(f, s->seq, out);
    if (keep != &keep1) free(keep);
    sc->rows++;
    if (out->len >= 64 * 1024) {
        sc->full = true;
        return 1;
    }
    return 0;
}

typedef struct {
    uint64_t n, max;
} count_t;

static int count_rest(void *ctx, const stt_doc_summary_t *s)
{
    count_t *c = ctx;
    return ++c->n >= c->max;
}

/* Changes after last_seq not sent: exact up to a bound, then the seq distance,
 * which is an upper bound (a doc updated twice holds one entry). The bound keeps
 * a paging client (PouchDB pulls 100 rows a page) from paying a long count per
 * page. */
#define PENDING_EXACT 500
static uint64_t pending_after(feed_t *f, stt_reader_t *rd)
{
    count_t c = {0, PENDING_EXACT};
    if (f->filter == 1 && !f->descending) {
        /* CouchDB answers _doc_ids by looking the ids up; its pending is every
         * change since `since` less the rows sent (couchdb-golden) */
        scan(f, rd, f->since, false, count_rest, &c);
        return c.n > f->sent ? c.n - f->sent : 0;
    }
    if (f->descending) {
        if (f->sent == 0) return 0;
        scan(f, rd, f->last_seq, true, count_rest, &c);
        return c.n;
    }
    scan(f, rd, f->last_seq, false, count_rest, &c);
    if (c.n < c.max || f->acc) return c.n; /* a user's view: no count of other users' changes */
    stt_db_info_t in;
    stt_db_info(f->r->db, &in);
    return in.update_seq > f->last_seq ? in.update_seq - f->last_seq : c.n;
}

static void write_end(feed_t *f, stt_reader_t *rd, stt_buf_t *out)
{
    switch (f->mode) {
    case FEED_NORMAL:
    case FEED_LONGPOLL:
        stt_buf_appends(out, f->sent ? "\n],\n\"last_seq\":" : "],\n\"last_seq\":");
        stt_seq_format(out, f->last_seq);
        stt_buf_appends(out, ",\"pending\":");
        stt_buf_append_u64(out, rd ? pending_after(f, rd) : 0);
        stt_buf_appends(out, "}\n");
        break;
    case FEED_CONTINUOUS:
        stt_buf_appends(out, "{\"last_seq\":");
        stt_seq_format(out, f->last_seq);
        stt_buf_appends(out, ",\"pending\":");
        stt_buf_append_u64(out, rd ? pending_after(f, rd) : 0);
        stt_buf_appends(out, "}\n");
        break;
    case FEED_EVENTSOURCE:
        break;
    }
}

/* ------------------------------------------------------------------ JavaScript filters */

/* filter=ddoc/name and filter=_view run in the query server, which blocks: the
 * producer scans a batch of changes (rows rendered, docs as the filter sees them),
 * hands it to the offload pool and pauses the stream; when the verdicts come back
 * on the loop it emits the rows that passed and scans on. The first batch runs
 * before the response starts, so that a filter that throws is a 500 as in CouchDB;
 * a later failure ends the stream (the status is gone by then). A request that
 * goes away while a batch runs leaves the batch to free itself (js_link). */

enum { JS_FILTER = 1, JS_VIEW = 2 };
#define JS_BATCH 100

typedef struct js_batch js_batch_t;
typedef struct js_link {
    js_batch_t *b; /* the batch in flight; NULL when none */
} js_link_t;

struct js_batch {
    stt_offload_t off;
    feed_t *f;
    js_link_t *link; /* NULL once the request went away */
    int kind;
    stt_qs_ddoc_t ddoc; /* copies, in arena: the request may go away */
    const char *fn;
    stt_qs_text_t req;
    size_t n; /* changes */
    uint64_t seq[JS_BATCH];
    stt_qs_text_t head[JS_BATCH], end[JS_BATCH]; /* write_row_id, write_row_end of each */
    size_t first[JS_BATCH], nrevs[JS_BATCH];     /* its revisions in docs, revs and pass */
    /* the revisions judged (replication/filter_revs.c: each leaf with style=all_docs),
     * malloc'd: a doc may have many leaves */
    size_t nd, capd;
    stt_qs_text_t *docs, *revs;
    bool *pass;
    int rc;
    stt_qs_err_t err;
    stt_arena_t arena;
};

static void js_free(js_batch_t *b)
{
    if (!b) return;
    stt_arena_free(&b->arena);
    free(b->docs);
    free(b->revs);
    free(b->pass);
    free(b);
}

static void js_link_dispose(void *p)
{
    js_link_t *lk = p;
    if (lk->b) lk->b->link = NULL;
}

static stt_qs_text_t arena_text(stt_arena_t *a, const char *s, size_t len)
{
    return (stt_qs_text_t){stt_arena_memdup(a, s, len), len};
}

typedef struct {
    feed_t *f;
    js_batch_t *b;
    stt_reader_t *rd;
} js_collect_t;

/* one revision of the change being collected, as the filter is given it */
static void js_add_rev(js_batch_t *b, const stt_buf_t *doc, const char *rev, size_t revlen)
{
    if (b->nd == b->capd) {
        b->capd = b->capd ? b->capd * 2 : JS_BATCH;
        b->docs = stt_xrealloc(b->docs, b->capd * sizeof(*b->docs));
        b->revs = stt_xrealloc(b->revs, b->capd * sizeof(*b->revs));
        b->pass = stt_xrealloc(b->pass, b->capd * sizeof(*b->pass));
    }
    b->docs[b->nd] = arena_text(&b->arena, doc->base, doc->len);
    b->revs[b->nd++] = arena_text(&b->arena, rev, revlen);
}

static int on_js_change(void *ctx, const stt_doc_summary_t *s)
{
    js_collect_t *c = ctx;
    js_batch_t *b = c->b;
    stt_buf_t t = STT_BUF_INIT;
    write_row_id(s, &t);
    b->head[b->n] = arena_text(&b->arena, t.base, t.len);
    stt_buf_reset(&t);
    write_row_end(c->f, c->rd, s, &t);
    b->end[b->n] = arena_text(&b->arena, t.base, t.len);
    b->first[b->n] = b->nd;
    b->nrevs[b->n] = row_nrevs(c->f, s);
    /* each revision the row lists as the filter sees it; a doc that cannot be read
     * as CouchDB's stub {_id, _rev, _deleted} */
    stt_doc_t d;
    bool got = stt_doc_get(c->rd, s->id, s->idlen, &d) == 0;
    for (size_t i = 0; i < b->nrevs[b->n]; i++) {
        stt_buf_reset(&t);
        int node = got ? stt_filter_node(&d, s->leaf_rev[i], s->leaf_revlen[i]) : -1;
        if (node >= 0) {
            stt_filter_doc(c->rd, &d, node, &t);
        } else {
            stt_buf_appends(&t, "{\"_id\":");
            stt_json_write_str(&t, s->id, s->idlen);
            stt_buf_appends(&t, ",\"_rev\":");
            stt_json_write_str(&t, s->leaf_rev[i], s->leaf_revlen[i]);
            if (s->leaf_deleted[i]) stt_buf_appends(&t, ",\"_deleted\":true");
            stt_buf_appendc(&t, '}');
        }
        js_add_rev(b, &t, s->leaf_rev[i], s->leaf_revlen[i]);
    }
    if (got) stt_doc_free(&d);
    stt_buf_free(&t);
    b->seq[b->n++] = s->seq;
    return b->n >= JS_BATCH || b->nd >= JS_BATCH;
}

/* The next changes after f->last_seq, or NULL when there are none. */
static js_batch_t *js_collect(feed_t *f, stt_reader_t *rd)
{
    js_batch_t *b = stt_xcalloc(1, sizeof(*b));
    js_collect_t c = {f, b, rd};
    stt_changes_scan(rd, f->last_seq, f->descending, on_js_change, &c);
    if (!b->n) {
        js_free(b);
        return NULL;
    }
    b->f = f;
    b->kind = f->js;
    b->ddoc.id = stt_arena_strndup(&b->arena, f->js_ddoc.id, strlen(f->js_ddoc.id));
    b->ddoc.rev = stt_arena_strndup(&b->arena, f->js_ddoc.rev, strlen(f->js_ddoc.rev));
    b->ddoc.lang = f->js_ddoc.lang ? stt_arena_strndup(&b->arena, f->js_ddoc.lang, strlen(f->js_ddoc.lang)) : NULL;
    b->ddoc.json = arena_text(&b->arena, f->js_ddoc.json.s, f->js_ddoc.json.len);
    b->fn = stt_arena_strndup(&b->arena, f->js_fn, strlen(f->js_fn));
    if (f->js_req.s) b->req = arena_text(&b->arena, f->js_req.s, f->js_req.len);
    return b;
}

static void js_run(stt_offload_t *o)
{
    js_batch_t *b = H2O_STRUCT_FROM_MEMBER(js_batch_t, off, o);
    stt_qs_pool_t *qs = stt__server->qs;
    if (!qs) {
        b->rc = STT_QS_E_PROCESS;
        b->err = (stt_qs_err_t){500, "os_process_error", "no query server"};
    } else if (b->kind == JS_VIEW) {
        /* every doc goes through the map, design docs too (couch_changes:filter
         * calls filter_view on each change), though the view's index holds none */
        b->rc = stt_qs_filter_view(qs, &b->ddoc, b->fn, b->docs, b->nd, &b->arena, b->pass, &b->err);
    } else {
        b->rc = stt_qs_filter(qs, &b->ddoc, b->fn, b->docs, b->nd, b->req, &b->arena, b->pass, &b->err);
    }
}

static const stt_stream_ops_t feed_ops;
static void feed_start(feed_t *f);

static void js_done(stt_offload_t *o)
{
    js_batch_t *b = H2O_STRUCT_FROM_MEMBER(js_batch_t, off, o);
    if (!b->link) { /* the request went away */
        js_free(b);
        return;
    }
    b->link->b = NULL;
    feed_t *f = b->f;
    if (!f->stream) {
        /* the first batch: its verdict decides the status */
        if (b->rc) {
            stt_reply_error_raw(f->r, b->err.status ? b->err.status : 500, b->err.error, b->err.reason);
            js_free(b);
            return;
        }
        f->js_ready = b;
        feed_start(f);
        return;
    }
    if (f->stream->done) {
        js_free(b);
        return;
    }
    f->js_ready = b;
    stt_stream_resume(f->stream);
}

static void js_submit(feed_t *f, js_batch_t *b)
{
    b->link = f->js_link;
    f->js_link->b = b;
    b->off.run = js_run;
    b->off.done = js_done;
    b->off.worker = stt_worker_index(f->r->w);
    stt_offload_submit(&b->off);
}

/* The producer's step for a JS-filtered feed: 1 rows were emitted (scan on), 2 a
 * batch is in flight (paused), 0 caught up, -1 a batch failed (end the stream). */
static int js_step(feed_t *f, stt_reader_t *rd, stt_buf_t *out)
{
    if (f->js_link->b) return 2;
    js_batch_t *b = f->js_ready;
    if (b) {
        f->js_ready = NULL;
        if (b->rc) {
            js_free(b);
            return -1;
        }
        for (size_t i = 0; i < b->n && f->sent < f->limit; i++) {
            f->last_seq = b->seq[i];
            /* the row lists the revisions that passed; none passed: no row */
            bool any = false;
            for (size_t k = b->first[i]; k < b->first[i] + b->nrevs[i]; k++)
                any |= b->pass[k];
            if (!any) continue;
            row_open(f, b->seq[i], out);
            stt_buf_append(out, b->head[i].s, b->head[i].len);
            bool first = true;
            for (size_t k = b->first[i]; k < b->first[i] + b->nrevs[i]; k++)
                if (b->pass[k]) write_change(b->revs[k].s, b->revs[k].len, &first, out);
            stt_buf_append(out, b->end[i].s, b->end[i].len);
            row_close(f, b->seq[i], out);
        }
        js_free(b);
        return 1;
    }
    if (f->sent >= f->limit || f->timed_out || !(b = js_collect(f, rd))) return 0;
    js_submit(f, b);
    return 2;
}

/* ------------------------------------------------------------------ timers */

static void on_heartbeat(h2o_timeout_entry_t *e)
{
    feed_t *f = (feed_t *)((char *)e - offsetof(feed_t, hb));
    f->hb_due = true;
    if (f->waiting) {
        f->waiting = false;
        stt_stream_resume(f->stream);
    }
}

static void on_timeout(h2o_timeout_entry_t *e)
{
    feed_t *f = (feed_t *)((char *)e - offsetof(feed_t, to));
    f->timed_out = true;
    if (f->waiting) {
        f->waiting = false;
        stt_stream_resume(f->stream);
    }
}

static void arm_heartbeat(feed_t *f)
{
    if (!f->heartbeat_ms) return;
    if (h2o_timeout_is_linked(&f->hb)) h2o_timeout_unlink(&f->hb);
    h2o_timeout_link(f->fw->loop, timer_for(f->fw, f->heartbeat_ms, &f->hb_slot), &f->hb);
}

/* ------------------------------------------------------------------ producer */

static int feed_produce(stt_stream_t *s, stt_buf_t *out)
{
    feed_t *f = s->ctx;
    if (!f->started) {
        f->started = true;
        if (f->mode == FEED_NORMAL || f->mode == FEED_LONGPOLL) stt_buf_appends(out, "{\"results\":[\n");
        if (f->timeout_ms) h2o_timeout_link(f->fw->loop, timer_for(f->fw, f->timeout_ms, &f->to_slot), &f->to);
        arm_heartbeat(f);
    }
    if (f->hb_due) {
        f->hb_due = false;
        stt_buf_appends(out, f->mode == FEED_EVENTSOURCE ? "event: heartbeat\ndata: \n\n" : "\n");
        arm_heartbeat(f);
    }
    /* the access index first: the snapshot below then holds every change it has */
    if (f->acc && stt_access_sync(f->r->db, &f->acc_upto) != 0) return -1;
    /* update_seq before the snapshot: every commit up to it is in the snapshot */
    uint64_t before[3];
    stt_db_mark(f->r->db, before);
    stt_reader_t *rd;
    stt_reader_open(f->r->db, &rd);
    scan_t sc = {f, rd, out, 0, false};
    int rc = 1;
    if (f->js) {
        rc = js_step(f, rd, out);
        if (rc != 0) {
            stt_reader_close(rd);
            return rc;
        }
    } else if (f->sent < f->limit && !f->timed_out) {
        uint64_t from = f->last_seq;
        int stopped = scan(f, rd, from, f->descending, on_change, &sc);
        /* the user's view was read to the end: it has nothing more up to acc_upto */
        if (f->acc && stopped == 0 && !f->descending && f->acc_upto > f->last_seq) f->last_seq = f->acc_upto;
    }
    if (sc.full) {
        rc = 1; /* more to scan */
    } else if (f->mode == FEED_NORMAL || f->sent >= f->limit || f->timed_out || f->descending ||
               (f->mode == FEED_LONGPOLL && f->sent > 0)) {
        write_end(f, rd, out);
        rc = 0;
    } else {
        /* caught up: wait for a commit, a heartbeat or the timeout */
        f->waiting = true;
        feed_register(f);
        rc = 2;
        /* A commit after the snapshot whose notify ran before the registration
         * found no waiting feed on this worker and posted no wake. Reading
         * update_seq under the db's write lock after registering orders this
         * against every later commit: either its notify sees the registration or
         * its seq is seen here, and then the feed scans again instead of waiting. */
        uint64_t after[3];
        stt_db_mark(f->r->db, after);
        if (after[1] != before[1]) {
            f->waiting = false;
            rc = 1;
        }
    }
    stt_reader_close(rd);
    return rc;
}

static void feed_stop(stt_stream_t *s)
{
    feed_t *f = s->ctx;
    feed_unregister(f);
    if (h2o_timeout_is_linked(&f->hb)) h2o_timeout_unlink(&f->hb);
    if (h2o_timeout_is_linked(&f->to)) h2o_timeout_unlink(&f->to);
    f->waiting = false;
    stt_selector_free(f->selector);
    f->selector = NULL;
    js_free(f->js_ready);
    f->js_ready = NULL;
}

static const stt_stream_ops_t feed_ops = {feed_produce, feed_stop};

/* Starts the response; the ETag of a normal feed names what the answer depends on:
 * the db's state and the query. */
static void feed_start(feed_t *f)
{
    stt_hreq_t *r = f->r;
    const char *ctype = f->mode == FEED_EVENTSOURCE ? "text/event-stream" : "application/json";
    if (f->mode == FEED_NORMAL) {
        stt_db_info_t in;
        stt_db_info(r->db, &in);
        char etag[40];
        uint64_t h = XXH3_64bits(r->req->input.path.base, r->req->input.path.len) ^
                     (in.update_seq * 0x9E3779B97F4A7C15ULL) ^ (uint64_t)(uintptr_t)r->db;
        if (f->acc && r->user.name) h ^= XXH3_64bits(r->user.name, r->user.namelen) + 1; /* a user's own view */
        snprintf(etag, sizeof(etag), "\"%016llx\"", (unsigned long long)h);
        f->stream = stt_stream_start(r, 200, ctype, &feed_ops, f,
                                     (const char *const[]){"cache-control", "must-revalidate", "etag", etag, NULL});
        return;
    }
    f->stream =
        stt_stream_start(r, 200, ctype, &feed_ops, f, (const char *const[]){"cache-control", "must-revalidate", NULL});
}

/* ------------------------------------------------------------------ request */

static int parse_ms(stt_hreq_t *r, const char *key, uint64_t *out, uint64_t dflt_true)
{
    const stt_qparam_t *p = stt_q_get(r, key);
    if (!p) return 0;
    if (strcmp(p->val, "true") == 0) {
        *out = dflt_true;
        return 0;
    }
    return stt_q_uint(r, key, out);
}

static int set_doc_ids(stt_hreq_t *r, feed_t *f, const stt_json_t *ids)
{
    if (!ids || ids->type != STT_JSON_ARRAY) {
        stt_reply_error_raw(r, 400, "bad_request", "`doc_ids` filter parameter is not a list of doc ids.");
        return -1;
    }
    f->doc_ids = stt_arena_alloc(&r->arena, (ids->len ? ids->len : 1) * sizeof(h2o_iovec_t));
    for (uint32_t i = 0; i < ids->len; i++) {
        if (ids->u.items[i].type != STT_JSON_STRING) {
            stt_reply_error_raw(r, 400, "bad_request", "`doc_ids` filter parameter is not a list of doc ids.");
            return -1;
        }
        f->doc_ids[f->ndoc_ids++] = h2o_iovec_init(ids->u.items[i].u.s, ids->u.items[i].len);
    }
    qsort(f->doc_ids, f->ndoc_ids, sizeof(*f->doc_ids), cmp_iovec); /* looked up per row */
    return 0;
}

/* CouchDB reads a selector from a POST body only; anything there that is not an
 * object (absent included) is "expected a JSON object". */
static int set_selector(stt_hreq_t *r, feed_t *f, const stt_json_t *body)
{
    if (r->method != STT_M_POST) {
        stt_reply_error_raw(r, 400, "bad_request", "Selector must be specified in POST payload");
        return -1;
    }
    const stt_json_t *sel = body ? stt_json_get(body, "selector") : NULL;
    if (!sel || sel->type != STT_JSON_OBJECT) {
        stt_reply_error_raw(r, 400, "bad_request",
                            body ? "Selector error: expected a JSON object"
                                 : "Selector must be specified in POST payload");
        return -1;
    }
    char err[256];
    if (stt_selector_compile(&r->arena, sel, &f->selector, err, sizeof(err)) != 0) {
        stt_reply_error_raw(r, 400, "bad_request", err);
        return -1;
    }
    return 0;
}

/* filter=_view or filter=ddoc/name: the names checked and the design doc and its
 * member looked up as CouchDB's configure_filter does (404 for a name pointing
 * nowhere, before anything runs), then the function set up to run in batches. */
static int set_ddoc_filter(stt_hreq_t *r, feed_t *f, const stt_qparam_t *filter)
{
    stt_ddoc_ref_t ref;
    const char *reason;
    bool is_view = strcmp(filter->val, "_view") == 0;
    int rc;
    if (is_view) {
        const stt_qparam_t *view = stt_q_get(r, "view");
        if (!view || !view->vallen) {
            stt_reply_error_raw(r, 400, "bad_request", "`view` filter parameter is not provided.");
            return -1;
        }
        /* CouchDB's own answer to a name that does not split in two */
        if (stt_ddoc_ref_parse(&r->arena, view->val, view->vallen, &ref) != 2) {
            stt_reply_error_raw(r, 500, "case_clause", view->val);
            return -1;
        }
    } else if (filter->val[0] == '_') {
        stt_reply_error_raw(r, 400, "bad_request", "unknown builtin filter name");
        return -1;
    } else {
        int n = stt_ddoc_ref_parse(&r->arena, filter->val, filter->vallen, &ref);
        if (n == 0) return 0; /* "" or only slashes: the unfiltered feed */
        if (n != 2) {
            stt_reply_error_raw(r, 400, "bad_request", "`filter` must be of the form `designname/filtername`");
            return -1;
        }
    }
    if ((rc = stt_ddoc_lookup(r->db, &r->arena, &ref, is_view ? "views" : "filters", &f->js_ddoc, &reason)) != 0) {
        stt_reply_error(r, rc, rc == STT_E_NOT_FOUND ? reason : NULL);
        return -1;
    }
    f->js = is_view ? JS_VIEW : JS_FILTER;
    f->js_fn = ref.fn;
    if (!is_view) {
        stt_buf_t b = STT_BUF_INIT;
        stt__design_req(r, NULL, 0, &b);
        f->js_req.s = stt_arena_memdup(&r->arena, b.base, b.len);
        f->js_req.len = b.len;
        stt_buf_free(&b);
    }
    return 0;
}

/* ------------------------------------------------------------------ Selector feeds from an index */

/* A _changes?filter=_selector feed asks mango/ (off the loop: bringing an index up
 * to date blocks) which docs the smallest json or partial index covering the
 * selector holds. Up to the seq the index then describes, only those docs and
 * deletions (which no index holds but whose body may match) are read; the rows
 * are exactly those of a full scan (compat-tests/95-replicate-selector compares
 * them through the replicator, 70-changes through HTTP). */
typedef struct sel_link {
    struct sel_prep *p; /* NULL once the prep is done */
} sel_link_t;

typedef struct sel_prep {
    stt_offload_t off;
    feed_t *f;
    sel_link_t *link; /* NULL when the request went away */
    stt_db_t *db;
    stt_arena_t arena;
    stt_json_t sel;
    uint64_t since;
    stt_mango_feed_set_t set;
    int rc;
} sel_prep_t;

static void sel_link_dispose(void *p)
{
    sel_link_t *lk = p;
    if (lk->p) lk->p->link = NULL;
}

static void sel_prep_run(stt_offload_t *o)
{
    sel_prep_t *p = H2O_STRUCT_FROM_MEMBER(sel_prep_t, off, o);
    p->rc = stt_mango_feed_set(p->db, &p->sel, p->since, &p->set);
}

static void sel_prep_done(stt_offload_t *o)
{
    sel_prep_t *p = H2O_STRUCT_FROM_MEMBER(sel_prep_t, off, o);
    if (p->link) {
        p->link->p = NULL;
        feed_t *f = p->f;
        if (p->rc == 0) {
            f->idx = p->set;
            f->idx.seqs = stt_arena_memdup(&f->r->arena, p->set.seqs, (p->set.n ? p->set.n : 1) * sizeof(uint64_t));
            f->use_idx = true;
        }
        feed_start(f);
    }
    if (p->rc == 0) stt_mango_feed_set_free(&p->set);
    stt_db_release(p->db);
    stt_arena_free(&p->arena);
    free(p);
}

/* Starts the prep of a selector feed: 1 when submitted (the feed starts when it
 * is done), 0 when the feed goes on without it. */
static int sel_prep_submit(feed_t *f, const stt_json_t *sel)
{
    stt_hreq_t *r = f->r;
    if (f->acc || f->descending || !stt_offload_running()) return 0;
    sel_prep_t *p = stt_xcalloc(1, sizeof(*p));
    if (stt_db_open(stt__server->store, r->dbname.base, r->dbname.len, &p->db) != 0) {
        free(p);
        return 0;
    }
    stt_buf_t b = STT_BUF_INIT;
    stt_json_write(&b, sel);
    if (stt_json_parse(&p->arena, stt_arena_memdup(&p->arena, b.base, b.len), b.len, &p->sel, NULL, 0) != 0) {
        stt_buf_free(&b);
        stt_db_release(p->db);
        stt_arena_free(&p->arena);
        free(p);
        return 0;
    }
    stt_buf_free(&b);
    p->f = f;
    p->since = f->since;
    p->link = h2o_mem_alloc_shared(&r->req->pool, sizeof(*p->link), sel_link_dispose);
    p->link->p = p;
    p->off.run = sel_prep_run;
    p->off.done = sel_prep_done;
    p->off.worker = stt_worker_index(r->w);
    stt_offload_submit(&p->off);
    return 1;
}

void stt_h_changes(stt_hreq_t *r)
{
    /* in the h2o pool, whose first chunk has room for it: a waiting client then
     * costs no second chunk of the request's arena (BENCHMARKS.md) */
    feed_t *f = h2o_mem_alloc_pool(&r->req->pool, sizeof(*f));
    memset(f, 0, sizeof(*f));
    f->r = r;
    f->fw = stt_worker_feeds(r->w);
    f->hb.cb = on_heartbeat;
    f->to.cb = on_timeout;
    f->limit = UINT64_MAX;
    f->acc = stt__access(r);
    const stt_qparam_t *feed = stt_q_get(r, "feed");
    if (feed) {
        if (strcmp(feed->val, "longpoll") == 0)
            f->mode = FEED_LONGPOLL;
        else if (strcmp(feed->val, "continuous") == 0)
            f->mode = FEED_CONTINUOUS;
        else if (strcmp(feed->val, "eventsource") == 0)
            f->mode = FEED_EVENTSOURCE;
        else if (strcmp(feed->val, "normal") != 0) {
            stt_reply_error_raw(r, 400, "bad_request",
                                "Supported `feed` types: normal, continuous, live, longpoll, "
                                "eventsource");
            return;
        }
    }
    const stt_qparam_t *style = stt_q_get(r, "style");
    if (style) {
        if (strcmp(style->val, "all_docs") == 0)
            f->all_docs = true;
        else if (strcmp(style->val, "main_only") != 0) {
            stt_reply_error_raw(r, 400, "bad_request", "Supported `style` values: main_only, all_docs");
            return;
        }
    }
    f->descending = stt_q_flag(r, "descending");
    f->include_docs = stt_q_flag(r, "include_docs");
    if (stt_q_uint(r, "limit", &f->limit) || stt_q_uint(r, "seq_interval", &f->seq_interval) ||
        parse_ms(r, "heartbeat", &f->heartbeat_ms, 60000) || parse_ms(r, "timeout", &f->timeout_ms, 60000) ||
        stt_render_opts_from_query(r, &f->ro))
        return;
    f->ro.revs = false;
    f->ro.revs_info = false;
    stt_db_info_t in;
    stt_db_info(r->db, &in);
    const stt_qparam_t *since = stt_q_get(r, "since");
    if (!since) since = stt_q_get(r, "last-event-id");
    if (since && stt_seq_parse(since->val, since->vallen, in.update_seq, &f->last_seq) != 0) {
        stt_reply_error_raw(r, 400, "bad_request", "Malformed sequence supplied in 'since' parameter.");
        return;
    }
    f->since = f->last_seq;
    if (f->descending && !since) f->last_seq = 0;
    if (f->mode != FEED_NORMAL && !f->timeout_ms && !f->heartbeat_ms)
        f->timeout_ms = 60000; /* CouchDB's default changes timeout */
    if (f->mode == FEED_NORMAL) f->heartbeat_ms = f->timeout_ms = 0;
    if (f->heartbeat_ms && f->heartbeat_ms < 100) f->heartbeat_ms = 100;
    /* filters */
    const stt_qparam_t *filter = stt_q_get(r, "filter");
    stt_json_t *body = NULL;
    if (r->method == STT_M_POST && r->req->entity.len) {
        body = stt_arena_alloc(&r->arena, sizeof(*body));
        if (stt_body_json(r, body, "Request body must be a JSON object") != 0) return;
    }
    if (filter) {
        if (strcmp(filter->val, "_doc_ids") == 0) {
            f->filter = 1;
            const stt_json_t *ids = body ? stt_json_get(body, "doc_ids") : NULL;
            if (!ids && stt_q_json(r, "doc_ids", &ids) != 0) return;
            if (set_doc_ids(r, f, ids) != 0) return;
        } else if (strcmp(filter->val, "_selector") == 0) {
            f->filter = 2;
            if (set_selector(r, f, body) != 0) return;
        } else if (strcmp(filter->val, "_design") == 0) {
            f->filter = 3;
        } else if (f->acc) {
            stt_reply_error(r, STT_E_NOT_FOUND, NULL); /* design docs are db-admin only */
            return;
        } else if (set_ddoc_filter(r, f, filter) != 0) {
            return;
        }
    }
    if (f->filter == 2 && sel_prep_submit(f, stt_json_get(body, "selector"))) return;
    if (f->js) {
        /* the first batch before the status (see "JavaScript filters") */
        f->js_link = h2o_mem_alloc_shared(&r->req->pool, sizeof(*f->js_link), js_link_dispose);
        f->js_link->b = NULL;
        stt_reader_t *rd;
        js_batch_t *b = NULL;
        if (stt_reader_open(r->db, &rd) == 0) {
            b = js_collect(f, rd);
            stt_reader_close(rd);
        }
        if (b) {
            js_submit(f, b);
            return;
        }
    }
    feed_start(f);
}
