/* The node's metrics: /_node/{node}/_stats[/path...], /_node/{node}/_system,
 * /_node/{node}/_prometheus, the [prometheus] additional_port listener's requests,
 * /_membership, and the per-reply counting that feeds them.
 *
 * Names and shapes are CouchDB 3.4's (couch_stats_httpd, couch_prometheus) for
 * what settee counts (src/common/stats.h); _system keeps CouchDB's key names where
 * one means the same thing (uptime, memory, process_count, context_switches,
 * io_input, io_output) and adds settee's own (threads, fds, leveldb).
 *
 * Access as chttpd_auth_request: _stats, _system and _prometheus need a server
 * admin or the "_metrics" role; _membership a server admin (the route table). */
#include "src/http/http.h"
#include "src/common/err.h"
#include "src/common/sysinfo.h"
#include "src/common/stats.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

/* ------------------------------------------------------------------ counting */

void stt__stats_reply(stt_hreq_t *r, int status)
{
    static const int bit_to_index[] = {
        [0] = 2, /* GET */
        [1] = 3, /* HEAD */
        [2] = 6, /* PUT */
        [3] = 5, /* POST */
        [4] = 1, /* DELETE */
        [5] = 0, /* COPY */
        [6] = 4, /* OPTIONS */
    };
    int method = r->method && r->method < STT_M_OTHER ? bit_to_index[__builtin_ctz((unsigned)r->method)] : -1;
    struct timeval now;
    gettimeofday(&now, NULL);
    const struct timeval *t0 = &r->req->timestamps.request_begin_at;
    double ms = (double)(now.tv_sec - t0->tv_sec) * 1000.0 + (double)(now.tv_usec - t0->tv_usec) / 1000.0;
    stt_stats_http(method, status, ms);
}

/* ------------------------------------------------------------------ numbers */

static void num(stt_buf_t *b, double v)
{
    if (!isfinite(v)) v = 0;
    if (v == floor(v) && fabs(v) < 1e15) {
        stt_buf_appendf(b, "%.0f", v);
        return;
    }
    stt_buf_appendf(b, "%.6g", v);
}

static uint64_t uptime_s(void)
{
    long long t0 = atoll(stt__server->instance_start_time);
    time_t now = time(NULL);
    return now > t0 ? (uint64_t)(now - t0) : 0;
}

/* A snapshot with the gauges filled in. */
static void snapshot(stt_stats_snapshot_t *s)
{
    stt_store_stats_t st;
    stt_stats_snapshot(s);
    stt_store_stats(stt__server->store, &st);
    s->c[STT_ST_OPEN_DATABASES] = st.open_dbs;
    s->c[STT_ST_OPEN_OS_FILES] = stt_sysinfo_fds();
}

/* ------------------------------------------------------------------ _stats */

static const int percentiles[] = {50, 75, 90, 95, 99, 999};

/* bear's statistics, as couch_stats_histogram reports them. */
static void hist_json(stt_buf_t *b, const stt_hist_t *h)
{
    double n = (double)h->n, mean = 0, var = 0, sd = 0, skew = 0, kurt = 0, geo = 0, harm = 0;
    if (h->n) {
        mean = h->sum / n;
        double m2 = h->sum2 / n - mean * mean;
        double m3 = h->sum3 / n - 3 * mean * h->sum2 / n + 2 * mean * mean * mean;
        double m4 =
            h->sum4 / n - 4 * mean * h->sum3 / n + 6 * mean * mean * h->sum2 / n - 3 * mean * mean * mean * mean;
        if (m2 < 0) m2 = 0;
        var = h->n > 1 ? m2 * n / (n - 1) : 0;
        sd = sqrt(var);
        if (m2 > 0) {
            skew = m3 / pow(m2, 1.5);
            kurt = m4 / (m2 * m2) - 3;
        }
        geo = exp(h->sumlog / n);
        harm = h->suminv > 0 ? n / h->suminv : 0;
    }
    stt_buf_appends(b, "{\"n\":");
    stt_buf_append_u64(b, h->n);
    const struct {
        const char *k;
        double v;
    } f[] = {{"min", h->n ? h->min : 0}, {"max", h->n ? h->max : 0}, {"arithmetic_mean", mean},
             {"geometric_mean", geo},    {"harmonic_mean", harm},    {"median", stt_hist_percentile(h, 50)},
             {"variance", var},          {"standard_deviation", sd}, {"skewness", skew},
             {"kurtosis", kurt}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        stt_buf_appendf(b, ",\"%s\":", f[i].k);
        num(b, f[i].v);
    }
    stt_buf_appends(b, ",\"percentile\":[");
    for (size_t i = 0; i < sizeof percentiles / sizeof percentiles[0]; i++) {
        stt_buf_appendf(b, "%s[%d,", i ? "," : "", percentiles[i]);
        num(b, stt_hist_percentile(h, percentiles[i] == 999 ? 99.9 : percentiles[i]));
        stt_buf_appendc(b, ']');
    }
    stt_buf_appends(b, "],\"histogram\":[");
    bool any = false;
    for (int i = 0; i < STT_HIST_NBUCKETS; i++) {
        if (!h->bucket[i]) continue;
        stt_buf_appends(b, any ? ",[" : "[");
        num(b, stt_hist_bucket_upper(i));
        stt_buf_appendc(b, ',');
        stt_buf_append_u64(b, h->bucket[i]);
        stt_buf_appendc(b, ']');
        any = true;
    }
    if (!any) stt_buf_appends(b, "[0,0]");
    stt_buf_appends(b, "]}");
}

/* Length of the common prefix of two dotted paths, in whole components. */
static size_t common_components(const char *a, const char *b, size_t *depth)
{
    size_t i = 0, last = 0, d = 0;
    while (a[i] && a[i] == b[i]) {
        if (a[i] == '.') last = i + 1, d++;
        i++;
    }
    *depth = d;
    return last;
}

/* The nested object of every metric: {"couchdb":{"httpd":{"requests":{...}}}}. */
static void stats_json(stt_buf_t *b, const stt_stats_snapshot_t *s)
{
    size_t n, depth = 0;
    const stt_stat_desc_t *t = stt_stats_table(&n);
    const char *prev = "";
    stt_buf_appendc(b, '{');
    for (size_t i = 0; i < n; i++) {
        size_t keep, open = 0;
        size_t at = common_components(prev, t[i].path, &keep);
        /* close what the previous metric opened beyond the shared prefix */
        for (; depth > keep; depth--)
            stt_buf_appendc(b, '}');
        if (i) stt_buf_appendc(b, ',');
        const char *p = t[i].path + at;
        for (const char *dot; (dot = strchr(p, '.')); p = dot + 1, open++) {
            stt_json_write_str(b, p, (size_t)(dot - p));
            stt_buf_appends(b, ":{");
        }
        depth += open;
        stt_json_write_cstr(b, p);
        stt_buf_appends(b, ":{\"value\":");
        if (!strcmp(t[i].type, "histogram"))
            hist_json(b, &s->h[t[i].index]);
        else
            stt_buf_append_u64(b, s->c[t[i].index]);
        stt_buf_appends(b, ",\"type\":");
        stt_json_write_cstr(b, t[i].type);
        stt_buf_appends(b, ",\"desc\":");
        stt_json_write_cstr(b, t[i].desc);
        stt_buf_appendc(b, '}');
        prev = t[i].path;
    }
    for (; depth > 0; depth--)
        stt_buf_appendc(b, '}');
    stt_buf_appendc(b, '}');
}

/* couch_stats_httpd:extract_path: the value under the path, null when missing. */
static void get_stats(stt_hreq_t *r, const char *const *path, size_t npath)
{
    stt_stats_snapshot_t s;
    stt_buf_t b = STT_BUF_INIT;
    snapshot(&s);
    stats_json(&b, &s);
    if (npath) {
        stt_json_t root;
        const stt_json_t *v = &root;
        if (stt_json_parse(&r->arena, b.base, b.len, &root, NULL, 0) != 0) {
            stt_buf_free(&b);
            stt_reply_error(r, STT_E_INTERNAL, NULL);
            return;
        }
        for (size_t i = 0; v && i < npath; i++)
            v = v->type == STT_JSON_OBJECT ? stt_json_get(v, path[i]) : NULL;
        stt_buf_reset(&b);
        if (v)
            stt_json_write(&b, v);
        else
            stt_buf_appends(&b, "null");
    }
    stt_reply_json(r, 200, &b);
}

/* ------------------------------------------------------------------ _system */

static void get_system(stt_hreq_t *r)
{
    stt_sysinfo_t si;
    stt_store_stats_t st;
    uint64_t disk, files;
    stt_buf_t b = STT_BUF_INIT;

    stt_sysinfo_read(&si);
    stt_store_stats(stt__server->store, &st);
    stt_sysinfo_dir_size(stt__server->cfg->data_dir, &disk, &files);
    stt_buf_appendf(&b, "{\"uptime\":%llu", (unsigned long long)uptime_s());
    stt_buf_appendf(&b,
                    ",\"memory\":{\"rss\":%llu,\"virtual\":%llu,\"data\":%llu,\"leveldb\":%llu}"
                    ",\"process_count\":%llu,\"threads\":%llu,\"http_workers\":%zu,\"context_switches\":%llu"
                    ",\"io_input\":%llu,\"io_output\":%llu,\"fds\":{\"open\":%llu,\"limit\":%llu}"
                    ",\"open_databases\":%llu"
                    ",\"leveldb\":{\"disk_size\":%llu,\"files\":%llu,\"memory\":%llu,\"block_cache_size\":%llu,"
                    "\"write_buffer_size\":%llu}}",
                    (unsigned long long)si.rss, (unsigned long long)si.vsize, (unsigned long long)si.data,
                    (unsigned long long)st.leveldb_mem, (unsigned long long)si.threads, (unsigned long long)si.threads,
                    stt__server->nworkers, (unsigned long long)si.ctx_switches, (unsigned long long)si.io_read,
                    (unsigned long long)si.io_written, (unsigned long long)si.fds_open,
                    (unsigned long long)si.fds_limit, (unsigned long long)st.open_dbs, (unsigned long long)disk,
                    (unsigned long long)files, (unsigned long long)st.leveldb_mem, (unsigned long long)st.cache_size,
                    (unsigned long long)st.write_buffer);
    stt_reply_json(r, 200, &b);
}

/* ------------------------------------------------------------------ _prometheus */

static void type_def(stt_buf_t *b, const char *name, const char *type, const char *desc)
{
    /* CouchDB 3.4.3 separates HELP from TYPE with a bare CR, which the Prometheus
     * parser reads as part of the help text (the TYPE is lost): settee uses LF */
    stt_buf_appendf(b, "\n# HELP %s %s\n# TYPE %s %s\n", name, desc, name, type);
}

/* couch_prometheus_util:couch_to_prom for the metrics settee has. */
static void prometheus_text(stt_buf_t *b)
{
    stt_stats_snapshot_t s;
    size_t n;
    const stt_stat_desc_t *t = stt_stats_table(&n);
    char name[200];

    snapshot(&s);
    for (size_t i = 0; i < n; i++) {
        const char *path = t[i].path;
        if (!strncmp(path, "couchdb.", 8)) path += 8;
        size_t len = strlen(path);
        if (len + 24 > sizeof name) continue;
        char flat[160];
        for (size_t k = 0; k <= len; k++)
            flat[k] = path[k] == '.' ? '_' : path[k];

        const char *leaf = strrchr(path, '.') ? strrchr(path, '.') + 1 : path;
        if (!strncmp(path, "httpd_request_methods.", 22) || !strncmp(path, "httpd_status_codes.", 19)) {
            bool methods = path[6] == 'r';
            const char *metric = methods ? "couchdb_httpd_request_methods" : "couchdb_httpd_status_codes";
            if (i == 0 || strncmp(t[i - 1].path, t[i].path, strlen(t[i].path) - strlen(leaf)))
                type_def(b, metric, "counter",
                         methods ? "number of HTTP requests by method" : "number of HTTP responses by status code");
            stt_buf_appendf(b, "%s{%s=\"%s\"} %llu\n", metric, methods ? "method" : "code", leaf,
                            (unsigned long long)s.c[t[i].index]);
        } else if (!strcmp(t[i].type, "histogram")) {
            const stt_hist_t *h = &s.h[t[i].index];
            snprintf(name, sizeof name, "couchdb_%s_seconds", flat);
            type_def(b, name, "summary", t[i].desc);
            static const char *const q[] = {"0.5", "0.75", "0.9", "0.95", "0.99", "0.999"};
            for (size_t k = 0; k < 6; k++) {
                stt_buf_appendf(b, "%s{quantile=\"%s\"} ", name, q[k]);
                num(b, stt_hist_percentile(h, percentiles[k] == 999 ? 99.9 : percentiles[k]) / 1000.0);
                stt_buf_appendc(b, '\n');
            }
            stt_buf_appendf(b, "%s_sum ", name);
            num(b, h->sum / 1000.0);
            stt_buf_appendf(b, "\n%s_count %llu\n", name, (unsigned long long)h->n);
        } else if (t[i].index == STT_ST_OPEN_DATABASES || t[i].index == STT_ST_OPEN_OS_FILES) {
            snprintf(name, sizeof name, "couchdb_%s", flat);
            type_def(b, name, "gauge", t[i].desc);
            stt_buf_appendf(b, "%s %llu\n", name, (unsigned long long)s.c[t[i].index]);
        } else {
            bool total = len >= 6 && !strcmp(flat + len - 6, "_total");
            snprintf(name, sizeof name, "couchdb_%s%s", flat, total ? "" : "_total");
            type_def(b, name, "counter", t[i].desc);
            stt_buf_appendf(b, "%s %llu\n", name, (unsigned long long)s.c[t[i].index]);
        }
    }
    type_def(b, "couchdb_uptime_seconds", "counter", "couchdb uptime");
    stt_buf_appendf(b, "couchdb_uptime_seconds %llu\n", (unsigned long long)uptime_s());
}

static void get_prometheus(stt_hreq_t *r)
{
    stt_buf_t b = STT_BUF_INIT;
    size_t len;
    prometheus_text(&b);
    char *data = stt_buf_release(&b, &len);
    stt_reply_bytes(r, 200, "text/plain; version=2.0", data, len, true, NULL);
}

/* ------------------------------------------------------------------ dispatch */

static bool node_is_us(stt_hreq_t *r, const char *node)
{
    if (!strcmp(node, "_local") || !strcmp(node, STT_NODE_NAME)) return true;
    stt_buf_t reason = STT_BUF_INIT;
    stt_buf_appendf(&reason, "no such node: %s", node);
    stt_reply_error_raw(r, 404, "not_found", reason.base);
    stt_buf_free(&reason);
    return false;
}

bool stt__node_metrics(stt_hreq_t *r, const char *const *parts, size_t n)
{
    if (n < 3) return false;
    const char *what = parts[2];
    if (strcmp(what, "_stats") && strcmp(what, "_system") && strcmp(what, "_prometheus")) return false;
    if (!stt_user_is_admin(&r->user) && !stt_user_has_role(&r->user, "_metrics")) {
        stt_reply_error_raw(r, 401, "unauthorized", "You are not a server admin or read-only metrics user");
        return true;
    }
    if (!(r->method & (STT_M_GET | STT_M_HEAD))) {
        stt_reply_method_not_allowed(r, "GET");
        return true;
    }
    if (!node_is_us(r, parts[1])) return true;
    if (!strcmp(what, "_stats"))
        get_stats(r, parts + 3, n - 3);
    else if (n != 3)
        stt_reply_error(r, STT_E_NOT_FOUND, NULL);
    else if (!strcmp(what, "_system"))
        get_system(r);
    else
        get_prometheus(r);
    return true;
}

/* The [prometheus] additional_port listener: /_node/{node}/_prometheus without
 * authentication, everything else 404 (couch_prometheus_http). */
void stt__prometheus_port_req(stt_hreq_t *r)
{
    size_t k = 0;
    const char *parts[3];
    for (size_t i = 0; i < r->nseg && k < 3; i++)
        if (r->seg[i].len) parts[k++] = stt_arena_strndup(&r->arena, r->seg[i].base, r->seg[i].len);
    size_t nonempty = 0;
    for (size_t i = 0; i < r->nseg; i++)
        nonempty += r->seg[i].len != 0;
    if (nonempty == 3 && !strcmp(parts[0], "_node") && !strcmp(parts[2], "_prometheus")) {
        if (node_is_us(r, parts[1])) get_prometheus(r);
        return;
    }
    stt_reply_error_raw(r, 404, "not_found", "");
}

/* ------------------------------------------------------------------ _membership */

void stt_h_membership(stt_hreq_t *r)
{
    stt_buf_t b = STT_BUF_INIT;
    stt_buf_appends(&b, "{\"all_nodes\":[\"" STT_NODE_NAME "\"],\"cluster_nodes\":[\"" STT_NODE_NAME "\"]}");
    stt_reply_json(r, 200, &b);
}
