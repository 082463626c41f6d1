/* Per-thread counter blocks and their sum (see stats.h for the design). */
#include "src/common/stats.h"
#include "src/common/buf.h"
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct block {
    struct block *prev, *next;
    stt_stats_snapshot_t v;
} block_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t key;
static block_t *blocks;              /* live threads' blocks, under lock */
static stt_stats_snapshot_t retired; /* exited threads' sums, under lock */
static __thread block_t *mine;

/* ------------------------------------------------------------------ merging */

static inline uint64_t ld(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}
static inline double ldd(const double *p)
{
    uint64_t u = __atomic_load_n((const uint64_t *)(const void *)p, __ATOMIC_RELAXED);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}
/* Only the owning thread writes a block: a plain read-modify-write made of atomic
 * load and store is enough, and keeps the lock prefix off the request path. */
static inline void st(uint64_t *p, uint64_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELAXED);
}
static inline void std_(double *p, double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    __atomic_store_n((uint64_t *)(void *)p, u, __ATOMIC_RELAXED);
}

static void hist_merge(stt_hist_t *into, const stt_hist_t *h)
{
    uint64_t n = ld(&h->n);
    if (!n) return;
    double mn = ldd(&h->min), mx = ldd(&h->max);
    if (!into->n || mn < into->min) into->min = mn;
    if (!into->n || mx > into->max) into->max = mx;
    into->n += n;
    into->sum += ldd(&h->sum);
    into->sum2 += ldd(&h->sum2);
    into->sum3 += ldd(&h->sum3);
    into->sum4 += ldd(&h->sum4);
    into->sumlog += ldd(&h->sumlog);
    into->suminv += ldd(&h->suminv);
    for (int i = 0; i < STT_HIST_NBUCKETS; i++)
        into->bucket[i] += ld(&h->bucket[i]);
}

static void merge(stt_stats_snapshot_t *into, const stt_stats_snapshot_t *v)
{
    for (int i = 0; i < STT_ST_NCOUNTERS; i++)
        into->c[i] += ld(&v->c[i]);
    for (int i = 0; i < STT_NHISTS; i++)
        hist_merge(&into->h[i], &v->h[i]);
}

/* ------------------------------------------------------------------ thread blocks */

static void on_thread_exit(void *p)
{
    block_t *b = p;
    pthread_mutex_lock(&lock);
    merge(&retired, &b->v);
    if (b->prev)
        b->prev->next = b->next;
    else
        blocks = b->next;
    if (b->next) b->next->prev = b->prev;
    pthread_mutex_unlock(&lock);
    free(b);
}

static void make_key(void)
{
    pthread_key_create(&key, on_thread_exit);
}

static block_t *attach(void)
{
    pthread_once(&once, make_key);
    block_t *b = stt_xcalloc(1, sizeof *b);
    pthread_mutex_lock(&lock);
    b->next = blocks;
    if (blocks) blocks->prev = b;
    blocks = b;
    pthread_mutex_unlock(&lock);
    pthread_setspecific(key, b);
    mine = b;
    return b;
}

static inline block_t *self(void)
{
    return mine ? mine : attach();
}

/* ------------------------------------------------------------------ writing */

void stt_stats_add(stt_stat_t which, uint64_t d)
{
    uint64_t *p = &self()->v.c[which];
    st(p, ld(p) + d);
}

#define HIST_BASE 0.01

double stt_hist_bucket_upper(int i)
{
    return HIST_BASE * exp2((double)i / 4.0);
}

static int bucket_of(double v)
{
    if (v <= HIST_BASE) return 0;
    int i = (int)ceil(4.0 * log2(v / HIST_BASE));
    return i >= STT_HIST_NBUCKETS ? STT_HIST_NBUCKETS - 1 : i;
}

void stt_stats_observe(stt_hist_id_t id, double v)
{
    stt_hist_t *h = &self()->v.h[id];
    uint64_t n = ld(&h->n);
    if (v < 0) v = 0;
    if (!n || v < ldd(&h->min)) std_(&h->min, v);
    if (!n || v > ldd(&h->max)) std_(&h->max, v);
    double v2 = v * v;
    std_(&h->sum, ldd(&h->sum) + v);
    std_(&h->sum2, ldd(&h->sum2) + v2);
    std_(&h->sum3, ldd(&h->sum3) + v2 * v);
    std_(&h->sum4, ldd(&h->sum4) + v2 * v2);
    /* geometric and harmonic means are undefined at 0: CouchDB's bear skips
     * nothing, so a 0 is taken as the bucket floor */
    double pos = v > 0 ? v : HIST_BASE / 2;
    std_(&h->sumlog, ldd(&h->sumlog) + log(pos));
    std_(&h->suminv, ldd(&h->suminv) + 1.0 / pos);
    uint64_t *bk = &h->bucket[bucket_of(v)];
    st(bk, ld(bk) + 1);
    st(&h->n, n + 1);
}

void stt_stats_http(int method, int status, double ms)
{
    stt_stats_inc(STT_ST_HTTPD_REQUESTS);
    if (method >= 0 && method < STT_ST_METHOD_PUT - STT_ST_METHOD_COPY + 1)
        stt_stats_inc((stt_stat_t)(STT_ST_METHOD_COPY + method));
    switch (status) {
#define X(code, text)                                                                                                  \
    case code:                                                                                                         \
        stt_stats_inc(STT_ST_STATUS_##code);                                                                           \
        break;
        STT_STATS_STATUS_CODES(X)
#undef X
    default:
        break;
    }
    stt_stats_observe(STT_HIST_REQUEST_TIME, ms);
}

/* ------------------------------------------------------------------ reading */

void stt_stats_snapshot(stt_stats_snapshot_t *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&lock);
    merge(out, &retired);
    for (block_t *b = blocks; b; b = b->next)
        merge(out, &b->v);
    pthread_mutex_unlock(&lock);
}

double stt_hist_percentile(const stt_hist_t *h, double p)
{
    if (!h->n) return 0;
    double want = p / 100.0 * (double)h->n;
    uint64_t seen = 0;
    for (int i = 0; i < STT_HIST_NBUCKETS; i++) {
        seen += h->bucket[i];
        if (seen && (double)seen >= want) {
            double v = stt_hist_bucket_upper(i);
            return v < h->min ? h->min : v > h->max ? h->max : v;
        }
    }
    return h->max;
}

/* ------------------------------------------------------------------ names */

static const stt_stat_desc_t table[] = {
    {"couchdb.database_purges", "counter", "number of times a database was purged", STT_ST_DATABASE_PURGES},
    {"couchdb.database_reads", "counter", "number of times a document was read from a database", STT_ST_DATABASE_READS},
    {"couchdb.database_writes", "counter", "number of times a database was changed", STT_ST_DATABASE_WRITES},
    {"couchdb.document_writes", "counter", "number of document write operations", STT_ST_DOCUMENT_WRITES},
    {"couchdb.httpd.requests", "counter", "number of HTTP requests", STT_ST_HTTPD_REQUESTS},
#define X(m) {"couchdb.httpd_request_methods." #m, "counter", "number of HTTP " #m " requests", STT_ST_METHOD_##m},
    STT_STATS_METHODS(X)
#undef X
#define X(code, text)                                                                                                  \
    {"couchdb.httpd_status_codes." #code, "counter", "number of HTTP " #code " " text, STT_ST_STATUS_##code},
        STT_STATS_STATUS_CODES(X)
#undef X
            {"couchdb.local_document_writes", "counter", "number of _local document write operations",
             STT_ST_LOCAL_DOCUMENT_WRITES},
    {"couchdb.open_databases", "counter", "number of open databases", STT_ST_OPEN_DATABASES},
    {"couchdb.open_os_files", "counter", "number of file descriptors CouchDB has open", STT_ST_OPEN_OS_FILES},
    {"couchdb.request_time", "histogram", "length of a request inside CouchDB without MochiWeb", STT_HIST_REQUEST_TIME},
    {"fsync.count", "counter", "number of fsync calls", STT_ST_FSYNC_COUNT},
    {"global_changes.db_writes", "counter", "number of db writes performed by global changes",
     STT_ST_GLOBAL_CHANGES_DB_WRITES},
};

const stt_stat_desc_t *stt_stats_table(size_t *n)
{
    *n = sizeof table / sizeof table[0];
    return table;
}
