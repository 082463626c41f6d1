/* settee-bench-store: the store's own speed, beside raw LevelDB in the same run.
 *
 *   settee-bench-store [--quick]
 *
 * Measures, on temp dirs it removes at the end:
 *  - synced writes of new 1 KB docs through stt_doc_write, 1, 100 and 1000 docs per
 *    call, against raw LevelDB writing the same number of 1 KB values per synced
 *    batch (one key per doc) with the store's default cache and write buffer sizes;
 *  - point reads: a reader (snapshot) per read, stt_doc_get + stt_doc_body of a
 *    random doc, against leveldb_get of a random key;
 *  - by-seq scans: stt_changes_scan over the whole db, against a raw iteration over
 *    the 1 KB values (the by-seq index holds small summaries, not bodies, so this
 *    ratio says how much cheaper a changes feed is than reading every doc).
 * Each figure is the median of several rounds; a round stops at its doc count or its
 * time cap, whichever comes first, so slow disks bound the time too (full run about
 * a minute at most, --quick a few seconds). It prints figures and never fails on a
 * number; exit status 2 on bad arguments, 1 when a store call fails. The two sides
 * take turns within each write round (fsync latency drifts); STT_BENCH_VERBOSE=1
 * prints every round on stderr.
 *
 * leveldb/c.h is allowed here only: this tool measures LevelDB itself. The store is
 * used through store.h. */
#include "store/store.h"
#include "src/common/err.h"
#include <leveldb/c.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define DOC_BYTES 1024
#define SLICES 10 /* turns per round */

typedef struct {
    int rounds;
    double cap;          /* seconds per round */
    size_t nwrite[3];    /* docs per round, by batch size */
    size_t nread, nscan; /* reads per round; docs scanned at most */
} plan_t;

static const size_t batches[3] = {1, 100, 1000};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rnd_state = 88172645463325252ULL;
static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void fail(const char *what, int rc)
{
    fprintf(stderr, "settee-bench-store: %s failed: %d (%s)\n", what, rc, stt_err_info(rc)->reason);
    exit(1);
}

/* ------------------------------------------------------------------ settee */

typedef struct {
    stt_store_t *s;
    stt_db_t *db;
    size_t ndocs; /* docs written so far: ids d00000000.. */
    char body[DOC_BYTES + 1];
} sbench_t;

#define KEY_MAX 24

static void doc_key(size_t i, char *out)
{
    snprintf(out, KEY_MAX, "d%08zu", i % 100000000); /* 9 bytes */
}

/* Time and docs of one side of a round, summed over its slices. */
typedef struct {
    size_t docs;
    double secs;
} acc_t;

/* Synced writes of new docs, batch docs per call, until n docs or cap seconds. */
static void settee_write_slice(sbench_t *b, size_t batch, size_t n, double cap, acc_t *a)
{
    stt_doc_write_t *w = calloc(batch, sizeof(*w));
    stt_doc_result_t *res = calloc(batch, sizeof(*res));
    char(*ids)[KEY_MAX] = calloc(batch, KEY_MAX);
    size_t done = 0;
    double t0 = now(), t;
    do {
        for (size_t k = 0; k < batch; k++) {
            doc_key(b->ndocs + k, ids[k]);
            w[k] = (stt_doc_write_t){.id = ids[k], .idlen = 9, .body = b->body, .bodylen = DOC_BYTES};
        }
        int rc = stt_doc_write(b->db, w, batch, true, res);
        if (rc) fail("stt_doc_write", rc);
        for (size_t k = 0; k < batch; k++)
            if (res[k].err) fail("a doc of stt_doc_write", res[k].err);
        b->ndocs += batch;
        done += batch;
        t = now() - t0;
    } while (done < n && t < cap);
    free(w);
    free(res);
    free(ids);
    a->docs += done;
    a->secs += t;
}

static double settee_read_round(sbench_t *b, size_t n, double cap)
{
    size_t done = 0;
    double t0 = now(), t;
    char id[KEY_MAX];
    do {
        for (int k = 0; k < 64; k++) {
            doc_key(rnd() % b->ndocs, id);
            stt_reader_t *r;
            stt_reader_open(b->db, &r);
            stt_doc_t d;
            int rc = stt_doc_get(r, id, 9, &d);
            if (rc) fail("stt_doc_get", rc);
            stt_rev_body_t body;
            if ((rc = stt_doc_body(&d, d.winner, &body)) != 0 || body.jsonlen != DOC_BYTES) fail("stt_doc_body", rc);
            stt_rev_body_free(&body);
            stt_doc_free(&d);
            stt_reader_close(r);
        }
        done += 64;
        t = now() - t0;
    } while (done < n && t < cap);
    return done / t;
}

typedef struct {
    size_t n, max;
    double t0, cap;
} scan_t;

static int on_change(void *ctx, const stt_doc_summary_t *s)
{
    scan_t *c = ctx;
    return ++c->n >= c->max || (c->n % 1024 == 0 && now() - c->t0 > c->cap);
}

static double settee_scan_round(sbench_t *b, size_t max, double cap)
{
    scan_t c = {0, max, now(), cap};
    stt_reader_t *r;
    stt_reader_open(b->db, &r);
    int rc = stt_changes_scan(r, 0, false, on_change, &c);
    stt_reader_close(r);
    if (rc) fail("stt_changes_scan", rc);
    return c.n / (now() - c.t0);
}

/* ------------------------------------------------------------------ raw LevelDB */

typedef struct {
    leveldb_t *ldb;
    leveldb_options_t *opts;
    leveldb_cache_t *cache;
    leveldb_filterpolicy_t *filter;
    leveldb_writeoptions_t *wsync;
    leveldb_readoptions_t *ro;
    size_t ndocs;
    char value[DOC_BYTES];
} rbench_t;

static void raw_open(rbench_t *b, const char *path)
{
    stt_store_opts_t o;
    stt_store_opts_default(&o);
    b->opts = leveldb_options_create();
    leveldb_options_set_create_if_missing(b->opts, 1);
    b->cache = leveldb_cache_create_lru(o.cache_size);
    leveldb_options_set_cache(b->opts, b->cache);
    b->filter = leveldb_filterpolicy_create_bloom(10);
    leveldb_options_set_filter_policy(b->opts, b->filter);
    leveldb_options_set_write_buffer_size(b->opts, o.write_buffer_size);
    leveldb_options_set_compression(b->opts, leveldb_snappy_compression);
    char *err = NULL;
    b->ldb = leveldb_open(b->opts, path, &err);
    if (err) {
        fprintf(stderr, "settee-bench-store: leveldb_open %s: %s\n", path, err);
        exit(1);
    }
    b->wsync = leveldb_writeoptions_create();
    leveldb_writeoptions_set_sync(b->wsync, 1);
    b->ro = leveldb_readoptions_create();
}

static void raw_close(rbench_t *b)
{
    leveldb_close(b->ldb);
    leveldb_writeoptions_destroy(b->wsync);
    leveldb_readoptions_destroy(b->ro);
    leveldb_options_destroy(b->opts);
    leveldb_cache_destroy(b->cache);
    leveldb_filterpolicy_destroy(b->filter);
}

static void raw_write_slice(rbench_t *b, size_t batch, size_t n, double cap, acc_t *a)
{
    size_t done = 0;
    double t0 = now(), t;
    char key[KEY_MAX];
    do {
        leveldb_writebatch_t *wb = leveldb_writebatch_create();
        for (size_t k = 0; k < batch; k++) {
            doc_key(b->ndocs + k, key);
            leveldb_writebatch_put(wb, key, 9, b->value, DOC_BYTES);
        }
        char *err = NULL;
        leveldb_write(b->ldb, b->wsync, wb, &err);
        leveldb_writebatch_destroy(wb);
        if (err) {
            fprintf(stderr, "settee-bench-store: leveldb_write: %s\n", err);
            exit(1);
        }
        b->ndocs += batch;
        done += batch;
        t = now() - t0;
    } while (done < n && t < cap);
    a->docs += done;
    a->secs += t;
}

static double raw_read_round(rbench_t *b, size_t n, double cap)
{
    size_t done = 0;
    double t0 = now(), t;
    char key[KEY_MAX];
    do {
        for (int k = 0; k < 64; k++) {
            doc_key(rnd() % b->ndocs, key);
            char *err = NULL;
            size_t vlen;
            char *v = leveldb_get(b->ldb, b->ro, key, 9, &vlen, &err);
            if (err || !v || vlen != DOC_BYTES) {
                fprintf(stderr, "settee-bench-store: leveldb_get %s failed\n", key);
                exit(1);
            }
            leveldb_free(v);
        }
        done += 64;
        t = now() - t0;
    } while (done < n && t < cap);
    return done / t;
}

static double raw_scan_round(rbench_t *b, size_t max, double cap)
{
    size_t n = 0;
    double t0 = now();
    leveldb_iterator_t *it = leveldb_create_iterator(b->ldb, b->ro);
    for (leveldb_iter_seek_to_first(it); leveldb_iter_valid(it) && n < max; leveldb_iter_next(it)) {
        size_t klen, vlen;
        leveldb_iter_key(it, &klen);
        leveldb_iter_value(it, &vlen);
        if (++n % 1024 == 0 && now() - t0 > cap) break;
    }
    leveldb_iter_destroy(it);
    return n / (now() - t0);
}

/* ------------------------------------------------------------------ main */

/* Medians of each side, and the median of the rounds' own ratios (each round's two
 * sides ran side by side). */
static void row(const char *what, double *vs, double *vr, int n)
{
    double q[16];
    for (int i = 0; i < n; i++)
        q[i] = vs[i] / vr[i];
    double mq = median(q, n), ms = median(vs, n), mr = median(vr, n);
    printf("%-28s %14.0f %18.0f %11.2f\n", what, ms, mr, mq);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: settee-bench-store [--quick]\n"
               "  Store-level benchmark beside raw LevelDB (synced writes of 1 KB docs at batch\n"
               "  sizes 1, 100 and 1000, point reads, by-seq scans), on temp dirs in $TMPDIR.\n"
               "  --quick  fewer and shorter rounds (a few seconds)\n");
}

int main(int argc, char **argv)
{
    plan_t full = {5, 2.0, {1000, 5000, 20000}, 50000, 1000000};
    plan_t quick = {3, 0.3, {200, 1000, 5000}, 10000, 1000000};
    plan_t p = full;
    if (argc == 2 && strcmp(argv[1], "--quick") == 0) {
        p = quick;
    } else if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        usage(stdout);
        return 0;
    } else if (argc != 1) {
        usage(stderr);
        return 2;
    }
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char sdir[512], rdir[512], rpath[600];
    snprintf(sdir, sizeof(sdir), "%s/settee-bench-store-XXXXXX", tmp);
    snprintf(rdir, sizeof(rdir), "%s/settee-bench-raw-XXXXXX", tmp);
    if (!mkdtemp(sdir) || !mkdtemp(rdir)) {
        perror("settee-bench-store: mkdtemp");
        return 1;
    }
    snprintf(rpath, sizeof(rpath), "%s/ldb", rdir);

    sbench_t sb = {0};
    stt_store_opts_t o;
    stt_store_opts_default(&o);
    char err[512];
    int rc = stt_store_open(sdir, &o, &sb.s, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "settee-bench-store: %s\n", err);
        return 1;
    }
    if ((rc = stt_db_create(sb.s, "bench", 5)) != 0 || (rc = stt_db_open(sb.s, "bench", 5, &sb.db)) != 0)
        fail("db create", rc);
    /* {"v":"xxx..."}: exactly DOC_BYTES of JSON */
    memset(sb.body, 'x', DOC_BYTES);
    memcpy(sb.body, "{\"v\":\"", 6);
    memcpy(sb.body + DOC_BYTES - 2, "\"}", 2);
    sb.body[DOC_BYTES] = '\0';
    rbench_t rb = {0};
    raw_open(&rb, rpath);
    memcpy(rb.value, sb.body, DOC_BYTES);

    printf("settee-bench-store%s: %d-byte docs, median of %d rounds (each at most %.1f s)\n",
           p.rounds == quick.rounds ? " --quick" : "", DOC_BYTES, p.rounds, p.cap);
    printf("  settee: %s (stt_doc_write, new docs)   raw LevelDB: %s (one key per doc)\n", sdir, rpath);
    printf("%-28s %14s %18s %11s\n", "", "settee docs/s", "raw LevelDB docs/s", "settee/raw");
    double t0 = now();
    double vs[16], vr[16];
    bool verbose = getenv("STT_BENCH_VERBOSE") != NULL;
    for (int bi = 0; bi < 3; bi++) {
        /* rounds alternate between the two so that drift of the disk hits both alike */
        /* fsync latency drifts (other processes, the VM): the two sides take turns
         * in SLICES slices per round so that drift hits both alike */
        size_t per = p.nwrite[bi] / SLICES < batches[bi] ? batches[bi] : p.nwrite[bi] / SLICES;
        for (int r = 0; r < p.rounds; r++) {
            acc_t as = {0}, ar = {0};
            for (int sl = 0; sl < SLICES; sl++) {
                settee_write_slice(&sb, batches[bi], per, p.cap / SLICES, &as);
                raw_write_slice(&rb, batches[bi], per, p.cap / SLICES, &ar);
            }
            vs[r] = as.docs / as.secs;
            vr[r] = ar.docs / ar.secs;
            if (verbose) fprintf(stderr, "  batch %zu round %d: settee %.0f raw %.0f\n", batches[bi], r, vs[r], vr[r]);
        }
        char what[64];
        snprintf(what, sizeof(what), "synced write, batch %zu", batches[bi]);
        row(what, vs, vr, p.rounds);
    }
    for (int r = 0; r < p.rounds; r++) {
        vs[r] = settee_read_round(&sb, p.nread, p.cap / 2);
        vr[r] = raw_read_round(&rb, p.nread, p.cap / 2);
    }
    row("point read (get + body)", vs, vr, p.rounds);
    for (int r = 0; r < p.rounds; r++) {
        vs[r] = settee_scan_round(&sb, p.nscan, p.cap / 2);
        vr[r] = raw_scan_round(&rb, p.nscan, p.cap / 2);
    }
    row("by-seq scan / raw iteration", vs, vr, p.rounds);
    stt_db_info_t in;
    stt_db_info(sb.db, &in);
    printf("  docs written: settee %zu, raw %zu; settee db file_size estimate %.1f MB; %.1f s in all\n", sb.ndocs,
           rb.ndocs, in.file_size / 1e6, now() - t0);

    stt_db_release(sb.db);
    stt_store_close(sb.s);
    raw_close(&rb);
    nftw(sdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    nftw(rdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
