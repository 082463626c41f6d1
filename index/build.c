/* Bringing a view index up to date: read the by-seq index past the index's
 * seq, map the changed docs through the query-server pool in batches, replace
 * each doc's rows (found through its back-index entry) and move the header's
 * seq, one LevelDB batch per batch of docs (index_int.h has the layout).
 *
 * One update of a signature runs at a time: a second caller waits for it and
 * then finds the index current (or catches up the rest itself). Progress of
 * running updates is what _active_tasks lists. Design docs are mapped only
 * with the design doc's options.include_design, as in CouchDB; deleted docs
 * only lose their rows. */
#include "index/index_int.h"
#include "replication/replication.h"
#include "src/common/err.h"
#include <pthread.h>
#include <sys/random.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define BATCH 200

/* ------------------------------------------------------------------ pool */

static stt_qs_pool_t *g_pool;

void stt_index_set_pool(stt_qs_pool_t *pool)
{
    __atomic_store_n(&g_pool, pool, __ATOMIC_RELEASE);
}

stt_qs_pool_t *stt_index_pool(void)
{
    return __atomic_load_n(&g_pool, __ATOMIC_ACQUIRE);
}

/* ------------------------------------------------------------------ keys and header */

void stt__ikey(stt_buf_t *k, char tag, const unsigned char *sig)
{
    stt_buf_reset(k);
    stt_buf_appendc(k, tag);
    stt_buf_append(k, sig, 16);
}

int stt__index_header_decode(const char *v, size_t len, stt__index_header_t *h)
{
    const unsigned char *p = (const unsigned char *)v, *end = p + len;
    uint64_t n = 0;
    memset(h, 0, sizeof(*h));
    if (len < 8) return STT_E_IO;
    h->seq = stt_be64(p);
    p += 8;
    if (stt_varint_read(&p, end, &n) || n > STT_INDEX_MAX_VIEWS) return STT_E_IO;
    h->nviews = n;
    for (size_t i = 0; i < n; i++)
        if (stt_varint_read(&p, end, &h->nrows[i]) || stt_varint_read(&p, end, &h->bytes[i])) return STT_E_IO;
    if (end - p < 8) return STT_E_IO;
    h->instance = stt_be64(p);
    return 0;
}

int stt__index_header_read(stt_db_t *db, const unsigned char *sig, stt__index_header_t *h)
{
    stt_buf_t k = STT_BUF_INIT, v = STT_BUF_INIT;
    stt__ikey(&k, IK_HEADER, sig);
    int rc = stt_ikv_get(db, k.base, k.len, &v);
    memset(h, 0, sizeof(*h));
    if (rc == 0) rc = stt__index_header_decode(v.base, v.len, h);
    stt_buf_free(&k);
    stt_buf_free(&v);
    return rc;
}

static void header_put(stt_ikv_batch_t *b, const stt_ddoc_views_t *dv, const stt__index_header_t *h)
{
    stt_buf_t k = STT_BUF_INIT, v = STT_BUF_INIT;
    stt__ikey(&k, IK_HEADER, dv->sig);
    stt_buf_append_be64(&v, h->seq);
    stt_buf_append_varint(&v, h->nviews);
    for (size_t i = 0; i < h->nviews; i++) {
        stt_buf_append_varint(&v, h->nrows[i]);
        stt_buf_append_varint(&v, h->bytes[i]);
    }
    stt_buf_append_be64(&v, h->instance);
    stt_buf_appends(&v, dv->ddoc_id);
    stt_ikv_put(b, k.base, k.len, v.base, v.len);
    stt_buf_free(&k);
    stt_buf_free(&v);
}

int stt__row_decode(const char *v, size_t len, stt__row_t *out)
{
    const unsigned char *p = (const unsigned char *)v, *end = p + len;
    uint64_t n;
    if (stt_varint_read(&p, end, &n) || n > (uint64_t)(end - p)) return -1;
    out->id = (const char *)p;
    out->idlen = n;
    p += n;
    if (stt_varint_read(&p, end, &n) || n > (uint64_t)(end - p)) return -1;
    out->key = (const char *)p;
    out->keylen = n;
    p += n;
    out->value = (const char *)p;
    out->valuelen = (size_t)(end - p);
    return 0;
}

/* ------------------------------------------------------------------ running updates */

typedef struct task {
    stt_db_t *db;
    unsigned char sig[16];
    char dbname[256];
    char ddoc[256];
    int users;
    bool running;
    pthread_mutex_t lock; /* held by the one updating */
    uint64_t changes_done, total_changes;
    time_t started_on, updated_on;
    struct task *next;
} task_t;

static pthread_mutex_t g_tasks_lock = PTHREAD_MUTEX_INITIALIZER;
static task_t *g_tasks;

static task_t *task_get(stt_db_t *db, const stt_ddoc_views_t *dv)
{
    pthread_mutex_lock(&g_tasks_lock);
    task_t *t = g_tasks;
    while (t && !(t->db == db && memcmp(t->sig, dv->sig, 16) == 0))
        t = t->next;
    if (!t) {
        t = stt_xcalloc(1, sizeof(*t));
        t->db = db;
        memcpy(t->sig, dv->sig, 16);
        size_t nl;
        const char *name = stt_db_name(db, &nl);
        snprintf(t->dbname, sizeof(t->dbname), "%.*s", (int)nl, name);
        snprintf(t->ddoc, sizeof(t->ddoc), "%s", dv->ddoc_id);
        pthread_mutex_init(&t->lock, NULL);
        t->next = g_tasks;
        g_tasks = t;
    }
    t->users++;
    pthread_mutex_unlock(&g_tasks_lock);
    return t;
}

static void task_put(task_t *t)
{
    pthread_mutex_lock(&g_tasks_lock);
    if (--t->users == 0) {
        for (task_t **p = &g_tasks; *p; p = &(*p)->next)
            if (*p == t) {
                *p = t->next;
                break;
            }
        pthread_mutex_destroy(&t->lock);
        free(t);
    }
    pthread_mutex_unlock(&g_tasks_lock);
}

bool stt_index_updating(const stt_ddoc_views_t *dv)
{
    bool r = false;
    pthread_mutex_lock(&g_tasks_lock);
    for (task_t *t = g_tasks; t; t = t->next)
        if (t->running && memcmp(t->sig, dv->sig, 16) == 0) r = true;
    pthread_mutex_unlock(&g_tasks_lock);
    return r;
}

size_t stt_index_tasks(stt_buf_t *out)
{
    size_t n = 0;
    pthread_mutex_lock(&g_tasks_lock);
    for (task_t *t = g_tasks; t; t = t->next) {
        if (!t->running) continue;
        if (n++) stt_buf_appendc(out, ',');
        uint64_t total = t->total_changes ? t->total_changes : 1;
        stt_buf_appends(out, "{\"node\":\"settee@127.0.0.1\",\"pid\":\"<0.0.0>\",\"changes_done\":");
        stt_buf_append_u64(out, t->changes_done);
        stt_buf_appends(out, ",\"database\":");
        stt_json_write_cstr(out, t->dbname);
        stt_buf_appends(out, ",\"design_document\":");
        stt_json_write_cstr(out, t->ddoc);
        stt_buf_appends(out, ",\"indexer_pid\":\"<0.0.0>\",\"phase\":\"update\",\"progress\":");
        stt_buf_append_u64(out, t->changes_done * 100 / total > 100 ? 100 : t->changes_done * 100 / total);
        stt_buf_appends(out, ",\"started_on\":");
        stt_buf_append_u64(out, (uint64_t)t->started_on);
        stt_buf_appends(out, ",\"total_changes\":");
        stt_buf_append_u64(out, t->total_changes);
        stt_buf_appends(out, ",\"type\":\"indexer\",\"updated_on\":");
        stt_buf_append_u64(out, (uint64_t)t->updated_on);
        stt_buf_appendc(out, '}');
    }
    pthread_mutex_unlock(&g_tasks_lock);
    return n;
}

/* ------------------------------------------------------------------ the update */

typedef struct {
    char *id;
    size_t idlen;
    bool deleted;
} change_t;

typedef struct {
    stt_db_t *db;
    const stt_ddoc_views_t *dv;
    stt_reader_t *rd;
    stt_qs_mapper_t *mapper;
    stt__native_t *native; /* "language": "query": mapped here, no query server */
    stt__index_header_t h;
    change_t batch[BATCH];
    size_t n;
    uint64_t last_seq;
    task_t *task;
    stt__fences_t fences;
    stt_qs_err_t *err;
    stt_arena_t *arena;
    stt__update_ctl_t *ctl; /* the background indexer's controls, or NULL */
    int rc;
} upd_t;

/* Removes the doc's rows (through its back-index entry) from the counts and
 * the batch. */
static int drop_rows(upd_t *u, stt_ikv_batch_t *b, stt_buf_t *k, const char *id, size_t idlen)
{
    stt_buf_t v = STT_BUF_INIT, rk = STT_BUF_INIT;
    stt__ikey(k, IK_BACK, u->dv->sig);
    stt_buf_append(k, id, idlen);
    int rc = stt_ikv_get(u->db, k->base, k->len, &v);
    if (rc == STT_E_NOT_FOUND) return 0;
    if (rc) return rc;
    stt_ikv_del(b, k->base, k->len);
    const unsigned char *p = (const unsigned char *)v.base, *end = p + v.len;
    uint64_t n, len, vlen;
    if (stt_varint_read(&p, end, &n)) goto bad;
    for (uint64_t i = 0; i < n; i++) {
        if (stt_varint_read(&p, end, &len) || len < 1 || len > (uint64_t)(end - p)) goto bad;
        stt__ikey(&rk, IK_ROW, u->dv->sig);
        stt_buf_append(&rk, p, len);
        stt__fences_count(&u->fences, (const char *)p, len, -1);
        unsigned view = p[0];
        p += len;
        if (stt_varint_read(&p, end, &vlen)) goto bad;
        stt_ikv_del(b, rk.base, rk.len);
        if (view < u->h.nviews) {
            if (u->h.nrows[view]) u->h.nrows[view]--;
            u->h.bytes[view] -= u->h.bytes[view] >= len + vlen ? len + vlen : u->h.bytes[view];
        }
    }
    stt_buf_free(&v);
    stt_buf_free(&rk);
    return 0;
bad:
    stt_buf_free(&v);
    stt_buf_free(&rk);
    return STT_E_IO;
}

/* ------------------------------------------------------------------ a doc's rows */

/* The order of one doc's emits among themselves. CouchDB sorts a doc's [key,
 * value] pairs of a view in Erlang term order before storing them (lists:sort
 * in couch_mrview_updater:insert_results), so a doc's rows of one key come back
 * ordered by value, not in emit order. Each emit's rank in that order becomes
 * the position that keeps the doc's rows of one key apart. The raw collation
 * encoding of the pair is Erlang's term order; ties keep emit order. */
typedef struct {
    const char *base;
    size_t off, len;
    uint32_t j;
} emit_sort_t;

static int emit_sort_cmp(const void *pa, const void *pb, void *ctx)
{
    const emit_sort_t *a = pa, *b = pb;
    const char *base = ctx;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(base + a->off, base + b->off, n);
    if (c == 0) c = a->len < b->len ? -1 : a->len > b->len;
    if (c == 0) c = a->j < b->j ? -1 : a->j > b->j;
    return c;
}

/* rank[j] for each emit j of em (em->len entries, malloc'd; NULL for 0 or 1). */
static uint32_t *emit_ranks(const stt_json_t *em)
{
    if (em->len < 2) return NULL;
    stt_buf_t enc = STT_BUF_INIT;
    emit_sort_t *e = stt_xmalloc(em->len * sizeof(*e));
    for (uint32_t j = 0; j < em->len; j++) {
        e[j].off = enc.len;
        stt_key_encode(&enc, &em->u.items[j], true);
        e[j].len = enc.len - e[j].off;
        e[j].j = j;
    }
    qsort_r(e, em->len, sizeof(*e), emit_sort_cmp, enc.base);
    uint32_t *rank = stt_xmalloc(em->len * sizeof(*rank));
    for (uint32_t r = 0; r < em->len; r++)
        rank[e[r].j] = r;
    free(e);
    stt_buf_free(&enc);
    return rank;
}

/* Writes one doc's emitted rows: out is [[ [k,v]... ] per view]. A _stats view
 * given a non-number fails the whole index, as CouchDB's reduce-on-write does. */
static int add_rows(upd_t *u, stt_ikv_batch_t *b, const char *id, size_t idlen, const stt_json_t *out)
{
    stt_buf_t rk = STT_BUF_INIT, rv = STT_BUF_INIT, back = STT_BUF_INIT, k = STT_BUF_INIT;
    uint64_t nrows = 0;
    uint32_t *rank = NULL;
    for (uint32_t vi = 0; vi < out->len && vi < u->dv->nviews; vi++) {
        const stt_json_t *em = &out->u.items[vi];
        if (em->type != STT_JSON_ARRAY) continue;
        bool raw = u->dv->views[vi].raw;
        free(rank);
        rank = emit_ranks(em);
        for (uint32_t j = 0; j < em->len; j++) {
            const stt_json_t *kv = &em->u.items[j];
            if (kv->type != STT_JSON_ARRAY || kv->len != 2) continue;
            const char *red = u->dv->views[vi].reduce;
            if (red && strcmp(red, "_stats") == 0 && kv->u.items[1].type != STT_JSON_NUMBER) {
                u->err->status = 500;
                u->err->error = "invalid_value";
                u->err->reason = stt__stats_reason(&kv->u.items[1], u->arena);
                stt_buf_free(&rk);
                stt_buf_free(&rv);
                stt_buf_free(&back);
                stt_buf_free(&k);
                free(rank);
                return STT_VIEW_E_INVALID_VALUE;
            }
            stt__ikey(&rk, IK_ROW, u->dv->sig);
            stt_buf_appendc(&rk, (char)vi);
            stt_key_encode(&rk, &kv->u.items[0], raw);
            stt_buf_append(&rk, id, idlen);
            stt_buf_appendc(&rk, 0);
            /* the emit's rank keeps a doc's rows of one key distinct, in CouchDB's order */
            stt_buf_append_be32(&rk, rank ? rank[j] : j);
            stt_buf_reset(&rv);
            stt_buf_append_varint(&rv, idlen);
            stt_buf_append(&rv, id, idlen);
            stt_buf_reset(&k);
            stt_json_write(&k, &kv->u.items[0]);
            stt_buf_append_varint(&rv, k.len);
            stt_buf_append(&rv, k.base, k.len);
            stt_json_write(&rv, &kv->u.items[1]);
            stt_ikv_put(b, rk.base, rk.len, rv.base, rv.len);
            size_t sl = rk.len - 17;
            stt__fences_count(&u->fences, rk.base + 17, sl, +1);
            stt_buf_append_varint(&back, sl);
            stt_buf_append(&back, rk.base + 17, sl);
            stt_buf_append_varint(&back, rv.len);
            nrows++;
            u->h.nrows[vi]++;
            u->h.bytes[vi] += sl + rv.len;
        }
    }
    if (nrows) {
        stt_buf_t bv = STT_BUF_INIT;
        stt_buf_append_varint(&bv, nrows);
        stt_buf_append(&bv, back.base, back.len);
        stt__ikey(&k, IK_BACK, u->dv->sig);
        stt_buf_append(&k, id, idlen);
        stt_ikv_put(b, k.base, k.len, bv.base, bv.len);
        stt_buf_free(&bv);
    }
    stt_buf_free(&rk);
    stt_buf_free(&rv);
    stt_buf_free(&back);
    stt_buf_free(&k);
    free(rank);
    return 0;
}

static int flush(upd_t *u)
{
    stt_arena_t a = STT_ARENA_INIT;
    stt_qs_text_t *docs = stt_arena_alloc(&a, (u->n + 1) * sizeof(*docs));
    size_t *which = stt_arena_alloc(&a, (u->n + 1) * sizeof(*which));
    size_t ndocs = 0;
    int rc = 0;
    stt_buf_t body = STT_BUF_INIT, k = STT_BUF_INIT;
    /* map functions see a doc's conflicts, as couch_index_updater opens docs
     * with [conflicts, deleted_conflicts] */
    stt_render_opts_t ro = {.conflicts = true, .deleted_conflicts = true, .local_seq = u->dv->local_seq};
    for (size_t i = 0; i < u->n; i++) {
        change_t *c = &u->batch[i];
        if (c->deleted || (!u->dv->include_design && c->idlen >= 8 && memcmp(c->id, "_design/", 8) == 0)) continue;
        stt_doc_t d;
        if (stt_doc_get(u->rd, c->id, c->idlen, &d) != 0) continue;
        stt_buf_reset(&body);
        if (stt_doc_render(u->rd, &d, d.winner, &ro, &body) == 0) {
            docs[ndocs].s = stt_arena_memdup(&a, body.base, body.len + 1);
            docs[ndocs].len = body.len;
            which[ndocs++] = i;
        }
        stt_doc_free(&d);
    }
    stt_json_t *out = NULL;
    if (ndocs && strcmp(u->dv->lang, STT_INDEX_NATIVE_LANG) == 0) {
        if (!u->native) u->native = stt__native_open(u->dv);
        out = stt_arena_alloc(&a, ndocs * sizeof(*out));
        for (size_t i = 0; i < ndocs; i++) {
            stt_json_t doc;
            if (stt_json_parse(&a, docs[i].s, docs[i].len, &doc, NULL, 0) == 0 && doc.type == STT_JSON_OBJECT)
                stt__native_map(u->native, &doc, &a, &out[i]);
            else
                memset(&out[i], 0, sizeof(out[i]));
        }
    } else if (ndocs) {
        if (!u->mapper) {
            stt_qs_pool_t *pool = stt_index_pool();
            if (!pool) {
                rc = STT_QS_E_PROCESS;
                u->err->status = 500;
                u->err->error = "os_process_error";
                u->err->reason = "no query server pool";
                goto exit;
            }
            stt_qs_text_t *funs = stt_arena_alloc(&a, u->dv->nviews * sizeof(*funs));
            for (size_t i = 0; i < u->dv->nviews; i++)
                funs[i] = (stt_qs_text_t){u->dv->views[i].map, strlen(u->dv->views[i].map)};
            stt_qs_text_t lib = {u->dv->lib, u->dv->lib ? strlen(u->dv->lib) : 0};
            rc = stt_qs_map_open(pool, u->dv->lang, lib, funs, u->dv->nviews, u->arena, u->err, &u->mapper);
            if (rc) goto exit;
        }
        out = stt_arena_alloc(&a, ndocs * sizeof(*out));
        /* the replies live in this batch's arena so that a long build holds one
         * batch of them; an error's strings move to the caller's arena */
        rc = stt_qs_map_docs(u->mapper, docs, ndocs, &a, out, u->err);
        if (rc) {
            if (u->err->error) u->err->error = stt_arena_strndup(u->arena, u->err->error, strlen(u->err->error));
            if (u->err->reason) u->err->reason = stt_arena_strndup(u->arena, u->err->reason, strlen(u->err->reason));
            goto exit;
        }
    }
    stt_ikv_batch_t *b = stt_ikv_batch_new(u->db);
    size_t next = 0;
    for (size_t i = 0; i < u->n && rc == 0; i++) {
        change_t *c = &u->batch[i];
        rc = drop_rows(u, b, &k, c->id, c->idlen);
        if (rc == 0 && next < ndocs && which[next] == i) {
            if (out[next].type == STT_JSON_ARRAY) rc = add_rows(u, b, c->id, c->idlen, &out[next]);
            next++;
        }
    }
    u->h.seq = u->last_seq;
    header_put(b, u->dv, &u->h);
    stt__fences_write(&u->fences, u->dv->sig, b);
    if (rc)
        stt_ikv_batch_free(b);
    else
        rc = stt_ikv_commit(b);
    if (rc == 0) rc = stt__fences_split(u->db, u->dv->sig, &u->fences);
exit:
    for (size_t i = 0; i < u->n; i++)
        free(u->batch[i].id);
    if (u->ctl) u->ctl->ndocs += u->n;
    if (u->task) {
        pthread_mutex_lock(&g_tasks_lock);
        u->task->changes_done += u->n;
        u->task->updated_on = time(NULL);
        pthread_mutex_unlock(&g_tasks_lock);
    }
    u->n = 0;
    stt_buf_free(&body);
    stt_buf_free(&k);
    stt_arena_free(&a);
    return rc;
}

static int on_change(void *ctx, const stt_doc_summary_t *s)
{
    upd_t *u = ctx;
    /* between two batches: the background indexer may stop here, what was
     * committed stays and the next update goes on from its seq */
    if (u->n == 0 && u->ctl && u->ctl->stop && u->ctl->stop(u->ctl)) {
        u->ctl->partial = true;
        return 1;
    }
    change_t *c = &u->batch[u->n++];
    c->id = stt_xstrndup(s->id, s->idlen);
    c->idlen = s->idlen;
    c->deleted = s->deleted;
    u->last_seq = s->seq;
    if (u->n == BATCH) {
        u->rc = flush(u);
        if (u->rc) return 1;
    }
    return 0;
}

int stt_index_update(stt_db_t *db, const stt_ddoc_views_t *dv, stt_arena_t *arena, stt_qs_err_t *err)
{
    return stt__index_update_ctl(db, dv, arena, err, NULL);
}

int stt__index_update_ctl(stt_db_t *db, const stt_ddoc_views_t *dv, stt_arena_t *arena, stt_qs_err_t *err,
                          stt__update_ctl_t *ctl)
{
    if (dv->nviews > STT_INDEX_MAX_VIEWS) return STT_E_BAD_REQUEST;
    task_t *t = task_get(db, dv);
    if (ctl && ctl->nowait) {
        if (pthread_mutex_trylock(&t->lock) != 0) {
            ctl->partial = true; /* whoever runs it now finishes it, or the next turn does */
            task_put(t);
            return 0;
        }
    } else {
        pthread_mutex_lock(&t->lock);
    }
    upd_t *u = stt_xcalloc(1, sizeof(*u));
    u->db = db;
    u->dv = dv;
    u->err = err;
    u->arena = arena;
    u->ctl = ctl;
    int rc = stt__index_header_read(db, dv->sig, &u->h);
    if (rc == STT_E_NOT_FOUND) {
        rc = 0;
        if (getrandom(&u->h.instance, sizeof(u->h.instance), 0) != sizeof(u->h.instance))
            u->h.instance = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)u;
    }
    if (rc) goto exit;
    u->h.nviews = dv->nviews;
    stt_db_info_t info;
    stt_db_info(db, &info);
    if (info.update_seq <= u->h.seq) goto exit;
    rc = stt_reader_open(db, &u->rd);
    if (rc) goto exit;
    stt__fences_load(db, dv->sig, dv->nviews, &u->fences);
    pthread_mutex_lock(&g_tasks_lock);
    t->running = true;
    t->changes_done = 0;
    t->total_changes = info.update_seq - u->h.seq;
    t->started_on = t->updated_on = time(NULL);
    pthread_mutex_unlock(&g_tasks_lock);
    u->task = t;
    u->last_seq = u->h.seq;
    rc = stt_changes_scan(u->rd, u->h.seq, false, on_change, u);
    if (rc == 0) rc = u->rc;
    if (rc == 0 && u->n && !(ctl && ctl->partial)) rc = flush(u);
    for (size_t i = 0; i < u->n; i++)
        free(u->batch[i].id);
    pthread_mutex_lock(&g_tasks_lock);
    t->running = false;
    pthread_mutex_unlock(&g_tasks_lock);
exit:
    stt__fences_free(&u->fences);
    stt_qs_map_close(u->mapper);
    stt__native_close(u->native);
    if (u->rd) stt_reader_close(u->rd);
    free(u);
    pthread_mutex_unlock(&t->lock);
    task_put(t);
    return rc;
}

int stt_index_info(stt_db_t *db, const stt_ddoc_views_t *dv, stt_index_info_t *out)
{
    stt__index_header_t h;
    memset(out, 0, sizeof(*out));
    int rc = stt__index_header_read(db, dv->sig, &h);
    if (rc == STT_E_NOT_FOUND) return 0;
    if (rc) return rc;
    out->exists = true;
    out->update_seq = h.seq;
    for (size_t i = 0; i < h.nviews; i++) {
        out->nrows += h.nrows[i];
        out->size += h.bytes[i];
    }
    return 0;
}

int stt_index_cleanup(stt_db_t *db, const unsigned char (*keep)[16], size_t nkeep)
{
    /* collect the signatures first: dropping while iterating would scan rows */
    unsigned char(*sigs)[16] = NULL;
    size_t nsigs = 0, cap = 0;
    stt_ikv_iter_t *it = stt_ikv_iter_new(db);
    char h = IK_HEADER;
    for (stt_ikv_seek(it, &h, 1); stt_ikv_valid(it); stt_ikv_next(it)) {
        size_t kl;
        const char *k = stt_ikv_key(it, &kl);
        if (kl != 17 || k[0] != IK_HEADER) break;
        if (nsigs == cap) {
            cap = cap ? cap * 2 : 8;
            sigs = stt_xrealloc(sigs, cap * 16);
        }
        memcpy(sigs[nsigs++], k + 1, 16);
    }
    stt_ikv_iter_free(it);
    int rc = 0;
    stt_buf_t k = STT_BUF_INIT;
    for (size_t i = 0; i < nsigs && rc == 0; i++) {
        bool kept = false;
        for (size_t j = 0; j < nkeep && !kept; j++)
            kept = memcmp(sigs[i], keep[j], 16) == 0;
        if (kept) continue;
        const char tags[] = {IK_ROW, IK_BACK, IK_FENCE, IK_HEADER};
        for (size_t t = 0; t < sizeof(tags) && rc == 0; t++) {
            stt__ikey(&k, tags[t], sigs[i]);
            rc = stt_ikv_drop(db, k.base, k.len);
        }
    }
    stt_buf_free(&k);
    free(sigs);
    return rc;
}
