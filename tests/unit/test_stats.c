/* Unit tests for src/common/stats.c: counts from many threads add up exactly
 * (threads that exit included), the HTTP reply counting by method and status,
 * histogram moments and percentiles on known data, the metric table's shape
 * (CouchDB paths, grouped prefixes). Also prints what one counted reply costs
 * (a figure, never a failure).
 *
 * Run one test alone by naming it: test_stats threads_sum */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "src/common/stats.h"
#include <math.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define NCASES(t) (sizeof(t) / sizeof((t)[0]))

/* Everything is process-wide: tests compare a before and an after. */
static stt_stats_snapshot_t before, after;

#define NTHREADS 8
#define PER_THREAD 100000

static void *bump_main(void *arg)
{
    for (int i = 0; i < PER_THREAD; i++)
        stt_stats_inc(STT_ST_DATABASE_READS);
    stt_stats_add(STT_ST_DATABASE_WRITES, 3);
    return NULL;
}

/* Eight threads that exit before the read: their blocks are retired, not lost. */
static void threads_sum(void **state)
{
    pthread_t t[NTHREADS];
    stt_stats_snapshot(&before);
    for (int i = 0; i < NTHREADS; i++)
        pthread_create(&t[i], NULL, bump_main, NULL);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    stt_stats_snapshot(&after);
    assert_int_equal(after.c[STT_ST_DATABASE_READS] - before.c[STT_ST_DATABASE_READS], (uint64_t)NTHREADS * PER_THREAD);
    assert_int_equal(after.c[STT_ST_DATABASE_WRITES] - before.c[STT_ST_DATABASE_WRITES], NTHREADS * 3);
}

/* Readers while writers run see monotonic sums. */
static void *reader_main(void *arg)
{
    uint64_t last = 0;
    for (int i = 0; i < 2000; i++) {
        stt_stats_snapshot_t s;
        stt_stats_snapshot(&s);
        if (s.c[STT_ST_DOCUMENT_WRITES] < last) return (void *)1;
        last = s.c[STT_ST_DOCUMENT_WRITES];
    }
    return NULL;
}
static void *doc_writer_main(void *arg)
{
    for (int i = 0; i < PER_THREAD; i++)
        stt_stats_inc(STT_ST_DOCUMENT_WRITES);
    return NULL;
}
static void concurrent_reads_monotonic(void **state)
{
    pthread_t w[4], r;
    void *rc;
    pthread_create(&r, NULL, reader_main, NULL);
    for (int i = 0; i < 4; i++)
        pthread_create(&w[i], NULL, doc_writer_main, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(w[i], NULL);
    pthread_join(r, &rc);
    assert_null(rc);
}

static void http_counting(void **state)
{
    static const struct {
        int method, status;
        stt_stat_t method_counter, status_counter; /* STT_ST_NCOUNTERS: none */
    } cases[] = {
        /* 1 */ {2, 200, STT_ST_METHOD_GET, STT_ST_STATUS_200},
        /* 2 */ {6, 201, STT_ST_METHOD_PUT, STT_ST_STATUS_201},
        /* 3 */ {0, 404, STT_ST_METHOD_COPY, STT_ST_STATUS_404},
        /* 4 */ {4, 418, STT_ST_METHOD_OPTIONS, STT_ST_NCOUNTERS}, /* unlisted code: not counted */
        /* 5 */ {-1, 503, STT_ST_NCOUNTERS, STT_ST_STATUS_503},    /* other method */
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        stt_stats_snapshot(&before);
        stt_stats_http(cases[i].method, cases[i].status, 1.5);
        stt_stats_snapshot(&after);
        uint64_t total = 0;
        for (int k = 0; k < STT_ST_NCOUNTERS; k++)
            total += after.c[k] - before.c[k];
        size_t want = 1 + (cases[i].method_counter != STT_ST_NCOUNTERS) + (cases[i].status_counter != STT_ST_NCOUNTERS);
        if (total != want) fail_msg("case %zu: %llu counters moved, want %zu", i + 1, (unsigned long long)total, want);
        assert_int_equal(after.c[STT_ST_HTTPD_REQUESTS] - before.c[STT_ST_HTTPD_REQUESTS], 1);
        if (cases[i].method_counter != STT_ST_NCOUNTERS &&
            after.c[cases[i].method_counter] - before.c[cases[i].method_counter] != 1)
            fail_msg("case %zu: method counter", i + 1);
        if (cases[i].status_counter != STT_ST_NCOUNTERS &&
            after.c[cases[i].status_counter] - before.c[cases[i].status_counter] != 1)
            fail_msg("case %zu: status counter", i + 1);
        assert_int_equal(after.h[STT_HIST_REQUEST_TIME].n - before.h[STT_HIST_REQUEST_TIME].n, 1);
    }
}

/* Moments and percentiles on 1..1000 ms, recorded from a fresh thread so the
 * histogram difference is exactly these values. */
static void *observe_main(void *arg)
{
    for (int v = 1; v <= 1000; v++)
        stt_stats_observe(STT_HIST_REQUEST_TIME, (double)v);
    return NULL;
}
static void histogram_figures(void **state)
{
    pthread_t t;
    stt_stats_snapshot(&before);
    pthread_create(&t, NULL, observe_main, NULL);
    pthread_join(t, NULL);
    stt_stats_snapshot(&after);
    stt_hist_t h = after.h[STT_HIST_REQUEST_TIME];
    const stt_hist_t *b = &before.h[STT_HIST_REQUEST_TIME];
    h.n -= b->n;
    h.sum -= b->sum;
    for (int i = 0; i < STT_HIST_NBUCKETS; i++)
        h.bucket[i] -= b->bucket[i];
    h.min = 1, h.max = 1000; /* the range of this data set alone */
    assert_int_equal(h.n, 1000);
    assert_true(fabs(h.sum / (double)h.n - 500.5) < 1e-6);
    static const struct {
        double p, lo, hi; /* buckets are 4 per octave: within 19% above the exact value */
    } pc[] = {
        /* 1 */ {50, 500, 500 * 1.19},
        /* 2 */ {90, 900, 900 * 1.19},
        /* 3 */ {99, 990, 1000},
        /* 4 */ {100, 1000, 1000},
        /* 5 */ {0.1, 1, 1.19},
    };
    for (size_t i = 0; i < NCASES(pc); i++) {
        double v = stt_hist_percentile(&h, pc[i].p);
        if (v < pc[i].lo || v > pc[i].hi) fail_msg("case %zu: p%g = %g", i + 1, pc[i].p, v);
    }
    stt_hist_t empty = {0};
    assert_true(stt_hist_percentile(&empty, 50) == 0);
}

static bool has_prefix(const char *path, const char *pfx, size_t len)
{
    return !strncmp(path, pfx, len) && path[len] == '.';
}

/* Every path is CouchDB-shaped, and the metrics under any prefix ("couchdb",
 * "couchdb.httpd") are contiguous: the JSON nesting is written in one pass. */
static void table_shape(void **state)
{
    size_t n;
    const stt_stat_desc_t *t = stt_stats_table(&n);
    assert_true(n > 40);
    for (size_t i = 0; i < n; i++) {
        assert_non_null(strchr(t[i].path, '.'));
        assert_true(!strcmp(t[i].type, "counter") || !strcmp(t[i].type, "histogram"));
        for (const char *dot = strchr(t[i].path, '.'); dot; dot = strchr(dot + 1, '.')) {
            size_t len = (size_t)(dot - t[i].path);
            size_t first = i;
            while (first > 0 && has_prefix(t[first - 1].path, t[i].path, len))
                first--;
            for (size_t j = 0; j < first; j++)
                if (has_prefix(t[j].path, t[i].path, len))
                    fail_msg("%s: the group %.*s is split", t[i].path, (int)len, t[i].path);
        }
    }
}

/* What counting one reply costs on this thread (printed, never failed). */
static void cost_per_reply(void **state)
{
    struct timespec a, b;
    const int n = 2000000;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < n; i++)
        stt_stats_http(2, 200, 0.3 + (i & 63));
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / n;
    printf("stt_stats_http: %.1f ns per counted reply\n", ns);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(threads_sum),   cmocka_unit_test(concurrent_reads_monotonic),
        cmocka_unit_test(http_counting), cmocka_unit_test(histogram_figures),
        cmocka_unit_test(table_shape),   cmocka_unit_test(cost_per_reply),
    };
    if (argc > 1) {
        char filter[256];
        snprintf(filter, sizeof(filter), "*%s*", argv[1]);
        cmocka_set_test_filter(filter);
    }
    return cmocka_run_group_tests_name("stats", tests, NULL, NULL);
}
