/* Row counts for "offset": fence keys that cut each view's rows into blocks of
 * roughly STT_FENCE_BLOCK rows, each holding the number of rows from it to the
 * next fence. The rows before any key are then the counts of the fences before
 * it plus a scan of at most one block, instead of a scan from the view's first
 * row (which made a keyed lookup on a large view cost a full scan).
 *
 * Invariants: every view has a sentinel fence (its view byte alone) below all
 * its rows; a fence's count is exactly the rows in [fence, next fence) of the
 * same view, written in the same batch as those rows. Blocks grow with inserts
 * and are split after the batch that grew them committed (the split reads
 * committed rows); they may shrink to empty and stay (a fence with count 0 is
 * harmless). Updates of one index are serialised (build.c), so the in-memory
 * list an update loads stays the truth until it writes it back. */
#include "index/index_int.h"
#include "src/common/err.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static int kcmp(const char *a, size_t al, const char *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int c = n ? memcmp(a, b, n) : 0;
    return c ? c : (al < bl ? -1 : al > bl);
}

static void add(stt__fences_t *f, const char *k, size_t len, uint64_t count, bool dirty)
{
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 16;
        f->v = stt_xrealloc(f->v, f->cap * sizeof(*f->v));
    }
    stt__fence_t *x = &f->v[f->n++];
    x->k = stt_xstrndup(k, len);
    x->len = len;
    x->count = (int64_t)count;
    x->dirty = dirty;
}

static int by_key(const void *a, const void *b)
{
    const stt__fence_t *x = a, *y = b;
    return kcmp(x->k, x->len, y->k, y->len);
}

void stt__fences_free(stt__fences_t *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->v[i].k);
    free(f->v);
    memset(f, 0, sizeof(*f));
}

int stt__fences_load(stt_db_t *db, const unsigned char *sig, size_t nviews, stt__fences_t *f)
{
    memset(f, 0, sizeof(*f));
    stt_buf_t k = STT_BUF_INIT;
    stt__ikey(&k, IK_FENCE, sig);
    stt_ikv_iter_t *it = stt_ikv_iter_new(db);
    for (stt_ikv_seek(it, k.base, k.len); stt_ikv_valid(it); stt_ikv_next(it)) {
        size_t kl, vl;
        const char *key = stt_ikv_key(it, &kl);
        if (kl <= 17 || memcmp(key, k.base, 17) != 0) break;
        const unsigned char *v = (const unsigned char *)stt_ikv_value(it, &vl);
        uint64_t c = 0;
        if (stt_varint_read(&v, v + vl, &c)) c = 0;
        add(f, key + 17, kl - 17, c, false);
    }
    stt_ikv_iter_free(it);
    stt_buf_free(&k);
    for (size_t i = 0; i < nviews; i++) {
        char s = (char)i;
        bool found = false;
        for (size_t j = 0; j < f->n && !found; j++)
            found = f->v[j].len == 1 && f->v[j].k[0] == s;
        if (!found) add(f, &s, 1, 0, true);
    }
    qsort(f->v, f->n, sizeof(*f->v), by_key);
    return 0;
}

void stt__fences_count(stt__fences_t *f, const char *row, size_t len, int delta)
{
    /* the last fence <= row: the sentinel of the row's view is always there */
    size_t lo = 0, hi = f->n;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (kcmp(f->v[mid].k, f->v[mid].len, row, len) <= 0)
            lo = mid;
        else
            hi = mid;
    }
    if (f->n && kcmp(f->v[lo].k, f->v[lo].len, row, len) <= 0) {
        f->v[lo].count += delta;
        if (f->v[lo].count < 0) f->v[lo].count = 0;
        f->v[lo].dirty = true;
    }
}

void stt__fences_write(stt__fences_t *f, const unsigned char *sig, stt_ikv_batch_t *b)
{
    stt_buf_t k = STT_BUF_INIT, v = STT_BUF_INIT;
    for (size_t i = 0; i < f->n; i++) {
        if (!f->v[i].dirty) continue;
        stt__ikey(&k, IK_FENCE, sig);
        stt_buf_append(&k, f->v[i].k, f->v[i].len);
        stt_buf_reset(&v);
        stt_buf_append_varint(&v, (uint64_t)f->v[i].count);
        stt_ikv_put(b, k.base, k.len, v.base, v.len);
        f->v[i].dirty = false;
    }
    stt_buf_free(&k);
    stt_buf_free(&v);
}

int stt__fences_split(stt_db_t *db, const unsigned char *sig, stt__fences_t *f)
{
    size_t n0 = f->n;
    stt_ikv_batch_t *b = NULL;
    stt_buf_t k = STT_BUF_INIT;
    for (size_t i = 0; i < n0; i++) {
        if (f->v[i].count <= 2 * STT_FENCE_BLOCK) continue;
        if (!b) b = stt_ikv_batch_new(db);
        /* the block ends at the next fence of the same view, or with the view
         * (copied: adding fences moves the array) */
        char view = f->v[i].k[0];
        stt_buf_t next = STT_BUF_INIT;
        bool has_next = i + 1 < n0 && f->v[i + 1].k[0] == view;
        if (has_next) stt_buf_append(&next, f->v[i + 1].k, f->v[i + 1].len);
        stt__ikey(&k, IK_ROW, sig);
        stt_buf_append(&k, f->v[i].k, f->v[i].len);
        stt_ikv_iter_t *it = stt_ikv_iter_new(db);
        int64_t in_block = 0;
        size_t cur = i; /* the fence whose block is being counted */
        for (stt_ikv_seek(it, k.base, k.len); stt_ikv_valid(it); stt_ikv_next(it)) {
            size_t kl;
            const char *key = stt_ikv_key(it, &kl);
            if (kl < 18 || key[0] != IK_ROW || memcmp(key + 1, sig, 16) != 0 || key[17] != view) break;
            if (has_next && kcmp(key + 17, kl - 17, next.base, next.len) >= 0) break;
            if (in_block == STT_FENCE_BLOCK) {
                f->v[cur].count = in_block;
                f->v[cur].dirty = true;
                add(f, key + 17, kl - 17, 0, true);
                cur = f->n - 1;
                in_block = 0;
            }
            in_block++;
        }
        f->v[cur].count = in_block;
        stt_buf_free(&next);
        f->v[cur].dirty = true;
        stt_ikv_iter_free(it);
    }
    int rc = 0;
    if (b) {
        stt__fences_write(f, sig, b);
        rc = stt_ikv_commit(b);
        qsort(f->v, f->n, sizeof(*f->v), by_key);
    }
    stt_buf_free(&k);
    return rc;
}

/* ------------------------------------------------------------------ the offset cache */

#define CACHE_SLOTS 16

typedef struct {
    unsigned char sig[16];
    uint64_t instance, seq;
    bool used;
    uint64_t last_use;
    stt__fences_t f;
    uint64_t *before; /* rows of the fences of the same view before each one */
} cached_t;

static pthread_mutex_t g_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static cached_t g_cache[CACHE_SLOTS];
static uint64_t g_clock;

static void load_from(stt_ikv_iter_t *it, const unsigned char *sig, cached_t *c)
{
    stt_buf_t k = STT_BUF_INIT;
    stt__ikey(&k, IK_FENCE, sig);
    for (stt_ikv_seek(it, k.base, k.len); stt_ikv_valid(it); stt_ikv_next(it)) {
        size_t kl, vl;
        const char *key = stt_ikv_key(it, &kl);
        if (kl <= 17 || memcmp(key, k.base, 17) != 0) break;
        const unsigned char *v = (const unsigned char *)stt_ikv_value(it, &vl);
        uint64_t n = 0;
        if (stt_varint_read(&v, v + vl, &n)) n = 0;
        add(&c->f, key + 17, kl - 17, n, false);
    }
    stt_buf_free(&k);
    c->before = stt_xcalloc(c->f.n + 1, sizeof(*c->before));
    for (size_t i = 1; i < c->f.n; i++)
        c->before[i] = c->f.v[i].k[0] == c->f.v[i - 1].k[0] ? c->before[i - 1] + (uint64_t)c->f.v[i - 1].count : 0;
}

uint64_t stt__fences_below(stt_ikv_iter_t *it, const unsigned char *sig, const stt__index_header_t *h, int view,
                           const char *bound, size_t blen, stt_buf_t *fkey)
{
    stt_buf_reset(fkey);
    pthread_mutex_lock(&g_cache_lock);
    cached_t *c = NULL, *victim = &g_cache[0];
    for (int i = 0; i < CACHE_SLOTS && !c; i++) {
        cached_t *x = &g_cache[i];
        if (x->used && x->seq == h->seq && x->instance == h->instance && memcmp(x->sig, sig, 16) == 0) c = x;
        if (!x->used || (victim->used && x->last_use < victim->last_use)) victim = x;
    }
    if (!c) {
        /* loading under the lock keeps it simple; it happens once per index state */
        c = victim;
        stt__fences_free(&c->f);
        free(c->before);
        memset(c, 0, sizeof(*c));
        memcpy(c->sig, sig, 16);
        c->instance = h->instance;
        c->seq = h->seq;
        c->used = true;
        load_from(it, sig, c);
    }
    c->last_use = ++g_clock;
    /* the last fence <= bound, of this view */
    uint64_t rows = 0;
    size_t lo = 0, hi = c->f.n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (kcmp(c->f.v[mid].k, c->f.v[mid].len, bound, blen) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo > 0 && c->f.v[lo - 1].k[0] == (char)view) {
        stt_buf_append(fkey, c->f.v[lo - 1].k, c->f.v[lo - 1].len);
        rows = c->before[lo - 1];
    }
    pthread_mutex_unlock(&g_cache_lock);
    return rows;
}
