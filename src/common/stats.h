/* Server statistics under CouchDB's names (couch_stats): counters and one kind of
 * histogram, cheap enough to bump on every request.
 *
 * Each thread that counts gets its own block of counters, written only by that
 * thread with relaxed atomic loads and stores (no lock, no shared cache line, no
 * locked instruction); a reader sums every block under a mutex that writers never
 * take. A thread that exits folds its block into a "retired" total first, so
 * short-lived threads (compactions) cost nothing after they end.
 *
 * Counters count since the process started. Histograms are cumulative too
 * (CouchDB's cover a sliding window of [stats] interval seconds): log-scale buckets
 * from 0.01 to ~170000 units, 4 per octave, plus the sums that the moments need.
 *
 * Gauges (open databases, open files) are not kept here: whoever renders a snapshot
 * fills them in (STT_ST_OPEN_DATABASES...), so the table below still names them. */
#ifndef STT_STATS_H
#define STT_STATS_H
#include <stddef.h>
#include <stdint.h>

#define STT_STATS_STATUS_CODES(X)                                                                                      \
    X(200, "OK responses")                                                                                             \
    X(201, "Created responses")                                                                                        \
    X(202, "Accepted responses")                                                                                       \
    X(204, "No Content responses")                                                                                     \
    X(206, "Partial Content")                                                                                          \
    X(301, "Moved Permanently responses")                                                                              \
    X(302, "Found responses")                                                                                          \
    X(304, "Not Modified responses")                                                                                   \
    X(400, "Bad Request responses")                                                                                    \
    X(401, "Unauthorized responses")                                                                                   \
    X(403, "Forbidden responses")                                                                                      \
    X(404, "Not Found responses")                                                                                      \
    X(405, "Method Not Allowed responses")                                                                             \
    X(406, "Not Acceptable responses")                                                                                 \
    X(409, "Conflict responses")                                                                                       \
    X(412, "Precondition Failed responses")                                                                            \
    X(413, "Request Entity Too Long responses")                                                                        \
    X(414, "Request URI Too Long responses")                                                                           \
    X(415, "Unsupported Media Type responses")                                                                         \
    X(416, "Requested Range Not Satisfiable responses")                                                                \
    X(417, "Expectation Failed responses")                                                                             \
    X(500, "Internal Server Error responses")                                                                          \
    X(501, "Not Implemented responses")                                                                                \
    X(503, "Service unavailable responses")                                                                            \
    X(507, "Insufficient Storage responses")

#define STT_STATS_METHODS(X) X(COPY) X(DELETE) X(GET) X(HEAD) X(OPTIONS) X(POST) X(PUT)

typedef enum {
    STT_ST_HTTPD_REQUESTS,
#define X(m) STT_ST_METHOD_##m,
    STT_STATS_METHODS(X)
#undef X
#define X(code, text) STT_ST_STATUS_##code,
        STT_STATS_STATUS_CODES(X)
#undef X
            STT_ST_DATABASE_READS,
    STT_ST_DATABASE_WRITES,
    STT_ST_DOCUMENT_WRITES,
    STT_ST_LOCAL_DOCUMENT_WRITES,
    STT_ST_DATABASE_PURGES,
    STT_ST_FSYNC_COUNT,
    STT_ST_GLOBAL_CHANGES_DB_WRITES,
    /* gauges, filled in by the reader */
    STT_ST_OPEN_DATABASES,
    STT_ST_OPEN_OS_FILES,
    STT_ST_NCOUNTERS
} stt_stat_t;

typedef enum { STT_HIST_REQUEST_TIME, STT_NHISTS } stt_hist_id_t;

#define STT_HIST_NBUCKETS 100

/* Adds d to a counter of the calling thread. */
void stt_stats_add(stt_stat_t which, uint64_t d);
static inline void stt_stats_inc(stt_stat_t which)
{
    stt_stats_add(which, 1);
}
/* Counts one HTTP reply: the method (an index of STT_STATS_METHODS, or -1 for
 * another), the status (unlisted codes are not counted, as CouchDB) and the time
 * the request took in milliseconds. */
void stt_stats_http(int method, int status, double ms);
/* Records one value in a histogram. */
void stt_stats_observe(stt_hist_id_t h, double v);

/* ------------------------------------------------------------------ reading */

typedef struct {
    uint64_t n;
    double min, max, sum, sum2, sum3, sum4, sumlog, suminv;
    uint64_t bucket[STT_HIST_NBUCKETS];
} stt_hist_t;

typedef struct {
    uint64_t c[STT_ST_NCOUNTERS];
    stt_hist_t h[STT_NHISTS];
} stt_stats_snapshot_t;

/* Sums every thread's block (and the retired total) into out. */
void stt_stats_snapshot(stt_stats_snapshot_t *out);

/* The upper bound of bucket i. */
double stt_hist_bucket_upper(int i);
/* The p-th percentile (0..100) estimated from the buckets, clamped to [min, max];
 * 0 when empty. */
double stt_hist_percentile(const stt_hist_t *h, double p);

/* One metric as CouchDB names it: path is dotted ("couchdb.httpd.requests"), type
 * "counter", "gauge" or "histogram" (CouchDB calls open_databases a counter and so
 * does this table); index is a stt_stat_t or, for histograms, a stt_hist_id_t.
 * Metrics sharing a path prefix are adjacent. */
typedef struct {
    const char *path;
    const char *type;
    const char *desc;
    int index;
} stt_stat_desc_t;

const stt_stat_desc_t *stt_stats_table(size_t *n);

#endif
