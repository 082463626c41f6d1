/* Replies, streamed replies, CORS headers and the request-side helpers (query
 * parameters, headers, JSON bodies). Every reply passes through send_head(), which
 * adds the headers CouchDB always sends and writes the access log line. */
#include "src/http/http.h"
#include "src/common/codec.h"
#include "src/common/err.h"
#include "src/common/log.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Object Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 409:
        return "Conflict";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Request Entity Too Large";
    case 415:
        return "Unsupported Media Type";
    case 416:
        return "Requested Range Not Satisfiable";
    case 417:
        return "Expectation Failed";
    case 431:
        return "Request Header Fields Too Large";
    case 507:
        return "Insufficient Storage";
    default:
        return status >= 500 ? "Internal Server Error" : "OK";
    }
}

void stt_reply_add_header(stt_hreq_t *r, const char *name, const char *value, size_t len)
{
    h2o_req_t *req = r->req;
    char *v = h2o_mem_alloc_pool(&req->pool, len + 1);
    memcpy(v, value, len);
    v[len] = '\0';
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 1, NULL, v, len);
}

/* ------------------------------------------------------------------ CORS */

static bool origin_allowed(const stt_config_t *cfg, const h2o_iovec_t *origin)
{
    const char *list = cfg->cors_origins;
    if (strcmp(list, "*") == 0) return true;
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && t[-1] == ' ')
            t--;
        if ((size_t)(t - p) == origin->len && memcmp(p, origin->base, origin->len) == 0) return true;
        p = e;
    }
    return false;
}

/* A credentialed browser request needs its Origin echoed, never '*'. */
static void add_cors(stt_hreq_t *r, bool preflight)
{
    const stt_config_t *cfg = stt__server->cfg;
    if (!cfg->cors_enabled) return;
    const h2o_iovec_t *origin = stt_header(r, "origin");
    if (!origin || !origin_allowed(cfg, origin)) return;
    stt_reply_add_header(r, "access-control-allow-origin", origin->base, origin->len);
    if (cfg->cors_credentials) stt_reply_add_header(r, "access-control-allow-credentials", "true", 4);
    if (preflight) {
        const char *m = cfg->cors_methods[0] ? cfg->cors_methods : "GET, PUT, POST, HEAD, DELETE";
        stt_reply_add_header(r, "access-control-allow-methods", m, strlen(m));
        const char *h = cfg->cors_headers[0] ? cfg->cors_headers
                                             : "accept, authorization, content-type, origin, referer, x-csrf-token";
        stt_reply_add_header(r, "access-control-allow-headers", h, strlen(h));
        char age[24];
        int n = snprintf(age, sizeof(age), "%d", cfg->cors_max_age > 0 ? cfg->cors_max_age : 600);
        stt_reply_add_header(r, "access-control-max-age", age, (size_t)n);
    } else {
        static const char expose[] = "content-type, cache-control, accept-ranges, etag, server, x-couch-request-id, "
                                     "x-couch-update-newrev, x-couchdb-body-time";
        stt_reply_add_header(r, "access-control-expose-headers", expose, sizeof(expose) - 1);
    }
}

/* ------------------------------------------------------------------ heads */

static void send_head(stt_hreq_t *r, int status, const char *ctype, const char *const *headers)
{
    h2o_req_t *req = r->req;
    r->responded = true;
    req->res.status = status;
    req->res.reason = reason_phrase(status);
    if (ctype) h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, ctype, strlen(ctype));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-couch-request-id"), 0, NULL, r->reqid, 10);
    for (size_t i = 0; headers && headers[i]; i += 2)
        stt_reply_add_header(r, headers[i], headers[i + 1], strlen(headers[i + 1]));
    if (r->set_cookie) stt_reply_add_header(r, "set-cookie", r->set_cookie, strlen(r->set_cookie));
    if (status == 401 && stt__server->auth) {
        /* as chttpd: a browser may prompt only when every request needs a login */
        stt_auth_settings_t st;
        stt_auth_settings(stt__server->auth, &st);
        if (st.require_valid_user) stt_reply_add_header(r, "www-authenticate", "Basic realm=\"server\"", 20);
    }
    add_cors(r, r->method == STT_M_OPTIONS);
    stt__stats_reply(r, status);
    if (stt_log_wants_requests()) {
        struct timeval now;
        gettimeofday(&now, NULL);
        double ms = (double)(now.tv_sec - req->timestamps.request_begin_at.tv_sec) * 1000.0 +
                    (double)(now.tv_usec - req->timestamps.request_begin_at.tv_usec) / 1000.0;
        stt_log_access(r->reqid, r->user.name, r->user.name ? r->user.namelen : 0, req->input.method.base,
                       req->input.method.len, req->input.path.base, req->input.path.len, status, ms);
    }
}

static void free_slot(void *p)
{
    free(*(void **)p);
}

void stt_reply_bytes(stt_hreq_t *r, int status, const char *ctype, char *data, size_t len, bool take,
                     const char *const *headers)
{
    static h2o_generator_t gen = {NULL, NULL};
    h2o_req_t *req = r->req;
    send_head(r, status, ctype, headers);
    h2o_iovec_t body = h2o_iovec_init(data, len);
    if (take) {
        void **slot = h2o_mem_alloc_shared(&req->pool, sizeof(void *), free_slot);
        *slot = data;
    } else if (len) {
        body.base = h2o_mem_alloc_pool(&req->pool, len);
        memcpy(body.base, data, len);
    }
    req->res.content_length = len;
    if (r->method == STT_M_HEAD || status == 304) body.len = 0;
    h2o_start_response(req, &gen);
    h2o_send(req, &body, 1, H2O_SEND_STATE_FINAL);
}

void stt_reply_json_headers(const char *const *headers, const char *hs[16])
{
    size_t n = 0;
    hs[n++] = "cache-control";
    hs[n++] = "must-revalidate";
    for (size_t i = 0; headers && headers[i] && n < 14; i++)
        hs[n++] = headers[i];
    hs[n] = NULL;
}

void stt_reply_json_h(stt_hreq_t *r, int status, stt_buf_t *b, const char *const *headers)
{
    const char *hs[16];
    stt_reply_json_headers(headers, hs);
    size_t len;
    stt_buf_appendc(b, '\n'); /* CouchDB ends JSON replies with a newline */
    char *data = stt_buf_release(b, &len);
    stt_reply_bytes(r, status, "application/json", data, len, true, hs);
}

void stt_reply_json(stt_hreq_t *r, int status, stt_buf_t *b)
{
    stt_reply_json_h(r, status, b, NULL);
}

void stt_reply_ok(stt_hreq_t *r, int status)
{
    stt_buf_t b = STT_BUF_INIT;
    stt_buf_appends(&b, "{\"ok\":true}");
    stt_reply_json(r, status, &b);
}

void stt_reply_error_raw(stt_hreq_t *r, int status, const char *error, const char *reason)
{
    stt_buf_t b = STT_BUF_INIT;
    stt_buf_appends(&b, "{\"error\":");
    stt_json_write_cstr(&b, error);
    stt_buf_appends(&b, ",\"reason\":");
    stt_json_write_cstr(&b, reason);
    stt_buf_appendc(&b, '}');
    stt_reply_json(r, status, &b);
}

void stt_reply_error(stt_hreq_t *r, int code, const char *reason)
{
    const stt_err_info_t *e = stt_err_info(code);
    if (e->status >= 500)
        stt_log(STT_LOG_ERROR, "%s %.*s: %s (%d)", r->reqid, (int)r->req->input.path.len, r->req->input.path.base,
                e->error, code);
    stt_reply_error_raw(r, e->status, e->error, reason ? reason : e->reason);
}

void stt_url_encode(stt_buf_t *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("-_.~:", c)) {
            stt_buf_appendc(out, (char)c);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            stt_buf_append(out, e, 3);
        }
    }
}

void stt_reply_location(stt_hreq_t *r, stt_buf_t *out, const char *path, size_t len)
{
    h2o_req_t *req = r->req;
    stt_buf_appends(out, req->input.scheme == &H2O_URL_SCHEME_HTTPS ? "https://" : "http://");
    stt_buf_append(out, req->input.authority.base, req->input.authority.len);
    stt_buf_append(out, path, len);
}

/* ------------------------------------------------------------------ streams */

#define STREAM_CHUNK (64 * 1024)

static void stream_pump(stt_stream_t *s);

static void stream_finish(stt_stream_t *s)
{
    if (!s->stopped) {
        s->stopped = true;
        if (s->ops->stop) s->ops->stop(s);
    }
}

static void on_stream_proceed(h2o_generator_t *g, h2o_req_t *req)
{
    stt_stream_t *s = (stt_stream_t *)g;
    s->waiting_proceed = false;
    stt_buf_reset(&s->inflight);
    stream_pump(s);
}

static void on_stream_stop(h2o_generator_t *g, h2o_req_t *req)
{
    stt_stream_t *s = (stt_stream_t *)g;
    s->done = true;
    stream_finish(s);
}

static void stream_dispose(void *p)
{
    stt_stream_t *s = p;
    stream_finish(s);
    stt_buf_free(&s->buf);
    stt_buf_free(&s->inflight);
}

static void stream_pump(stt_stream_t *s)
{
    if (s->waiting_proceed || s->done) return;
    s->paused = false;
    int rc = 1;
    while (rc == 1 && s->buf.len < STREAM_CHUNK)
        rc = s->ops->produce(s, &s->buf);
    if (rc == 2) {
        s->paused = true;
        stt__req_shrink_input(s->r); /* it may wait long: nothing more to read meanwhile */
        if (s->buf.len == 0) return;
        rc = 1;
    }
    h2o_send_state_t state = rc == 1   ? H2O_SEND_STATE_IN_PROGRESS
                             : rc == 0 ? H2O_SEND_STATE_FINAL
                                       : H2O_SEND_STATE_ERROR;
    stt_buf_t t = s->inflight;
    s->inflight = s->buf;
    s->buf = t;
    stt_buf_reset(&s->buf);
    h2o_iovec_t iov = h2o_iovec_init(s->inflight.base, s->inflight.len);
    if (s->r->method == STT_M_HEAD) iov.len = 0;
    if (state != H2O_SEND_STATE_IN_PROGRESS) {
        s->done = true;
        stream_finish(s);
    } else {
        s->waiting_proceed = true;
    }
    h2o_send(s->r->req, &iov, 1, state);
}

stt_stream_t *stt_stream_start(stt_hreq_t *r, int status, const char *ctype, const stt_stream_ops_t *ops, void *ctx,
                               const char *const *headers)
{
    stt_stream_t *s = h2o_mem_alloc_shared(&r->req->pool, sizeof(*s), stream_dispose);
    memset(s, 0, sizeof(*s));
    s->gen.proceed = on_stream_proceed;
    s->gen.stop = on_stream_stop;
    s->r = r;
    s->ops = ops;
    s->ctx = ctx;
    send_head(r, status, ctype, headers);
    h2o_start_response(r->req, &s->gen);
    stream_pump(s);
    return s;
}

void stt_stream_resume(stt_stream_t *s)
{
    if (s->paused && !s->done) stream_pump(s);
}

/* ------------------------------------------------------------------ requests */

const stt_qparam_t *stt_q_get(stt_hreq_t *r, const char *key)
{
    /* a repeated parameter: the last one wins, as CouchDB folds the query list */
    size_t kl = strlen(key);
    for (size_t i = r->nq; i-- > 0;)
        if (r->q[i].keylen == kl && memcmp(r->q[i].key, key, kl) == 0) return &r->q[i];
    return NULL;
}

int stt_q_bool(stt_hreq_t *r, const char *key, bool *out)
{
    const stt_qparam_t *p = stt_q_get(r, key);
    if (!p) return 0;
    if (strcmp(p->val, "true") == 0) {
        *out = true;
        return 0;
    }
    if (strcmp(p->val, "false") == 0) {
        *out = false;
        return 0;
    }
    char reason[300];
    snprintf(reason, sizeof(reason), "Invalid boolean parameter: \"%.200s\"", p->val);
    stt_reply_error_raw(r, 400, "query_parse_error", reason);
    return -1;
}

bool stt_q_flag(stt_hreq_t *r, const char *key)
{
    const stt_qparam_t *p = stt_q_get(r, key);
    return p && strcmp(p->val, "true") == 0;
}

int stt_q_uint(stt_hreq_t *r, const char *key, uint64_t *out)
{
    const stt_qparam_t *p = stt_q_get(r, key);
    if (!p) return 0;
    uint64_t v = 0;
    bool ok = p->vallen > 0 && p->vallen <= 19;
    for (size_t i = 0; ok && i < p->vallen; i++) {
        if (p->val[i] < '0' || p->val[i] > '9')
            ok = false;
        else
            v = v * 10 + (uint64_t)(p->val[i] - '0');
    }
    if (!ok) {
        /* CouchDB's parse_pos_int: what is not an integer at all fails in parse_int
         * first ("" printed by Erlang as []); a negative one is not positive */
        bool integer = p->vallen > 0 && p->vallen <= 20;
        for (size_t i = p->val[0] == '-' ? 1 : 0; integer && i < p->vallen; i++)
            integer = p->val[i] >= '0' && p->val[i] <= '9';
        if (p->vallen == 1 && p->val[0] == '-') integer = false;
        char reason[300];
        if (p->vallen == 0)
            snprintf(reason, sizeof(reason), "Invalid value for integer: []");
        else
            snprintf(reason, sizeof(reason), "Invalid value for %s: \"%.200s\"",
                     integer ? "positive integer" : "integer", p->val);
        stt_reply_error_raw(r, 400, "query_parse_error", reason);
        return -1;
    }
    *out = v;
    return 0;
}

int stt_q_json(stt_hreq_t *r, const char *key, const stt_json_t **out)
{
    *out = NULL;
    const stt_qparam_t *p = stt_q_get(r, key);
    if (!p) return 0;
    stt_json_t *v = stt_arena_alloc(&r->arena, sizeof(*v));
    int rc = stt_json_parse(&r->arena, p->val, p->vallen, v, NULL, 0);
    if (rc != 0) {
        stt_reply_error(r, rc, NULL);
        return -1;
    }
    *out = v;
    return 0;
}

const h2o_iovec_t *stt_header(stt_hreq_t *r, const char *name)
{
    ssize_t i = h2o_find_header_by_str(&r->req->headers, name, strlen(name), -1);
    return i < 0 ? NULL : &r->req->headers.entries[i].value;
}

bool stt_accepts(stt_hreq_t *r, const char *ctype)
{
    const h2o_iovec_t *a = stt_header(r, "accept");
    if (!a) return false;
    size_t n = strlen(ctype);
    for (size_t i = 0; i + n <= a->len; i++)
        if (strncasecmp(a->base + i, ctype, n) == 0) return true;
    return false;
}

bool stt_require_json(stt_hreq_t *r)
{
    const h2o_iovec_t *ct = stt_header(r, "content-type");
    if (ct && ct->len >= 16 && strncasecmp(ct->base, "application/json", 16) == 0) return true;
    stt_reply_error(r, STT_E_UNSUPPORTED_MEDIA, NULL);
    return false;
}

int stt_body_decoded(stt_hreq_t *r, h2o_iovec_t *out)
{
    h2o_iovec_t e = r->req->entity;
    const h2o_iovec_t *enc = stt_header(r, "content-encoding");
    /* CouchDB's maybe_decompress compares the header exactly: "GZIP" is unsupported */
    if (r->body_decoded || !enc || h2o_memis(enc->base, enc->len, H2O_STRLIT("identity")) || !e.base || e.len == 0) {
        *out = e;
        return 0;
    }
    if (!h2o_memis(enc->base, enc->len, H2O_STRLIT("gzip"))) {
        char reason[160];
        snprintf(reason, sizeof(reason), "%.*s is not a supported content encoding.",
                 (int)(enc->len > 100 ? 100 : enc->len), enc->base);
        stt_reply_error_raw(r, 415, "bad_content_type", reason);
        return -1;
    }
    /* a small body may inflate to anything: the bound is the request size limit */
    size_t cap = stt__server->cfg->max_http_request_size;
    stt_buf_t plain = STT_BUF_INIT;
    if (stt_gunzip(&plain, e.base, e.len, cap) != 0) {
        bool over = plain.len > cap;
        stt_buf_free(&plain);
        if (over)
            stt_reply_error(r, STT_E_TOO_LARGE, NULL);
        else
            stt_reply_error_raw(r, 400, "bad_request", "Request body is not properly gzipped.");
        return -1;
    }
    /* later readers of the same request see the decoded bytes */
    r->req->entity =
        h2o_iovec_init(stt_arena_memdup(&r->arena, plain.base ? plain.base : "", plain.len + 1), plain.len);
    r->body_decoded = true;
    stt_buf_free(&plain);
    *out = r->req->entity;
    return 0;
}

int stt_body_json(stt_hreq_t *r, stt_json_t *out, const char *not_object_reason)
{
    h2o_iovec_t e = r->req->entity;
    if (!e.base || e.len == 0) {
        stt_reply_error_raw(r, 400, "bad_request", not_object_reason ? not_object_reason : "Missing JSON body");
        return -1;
    }
    if (stt_body_decoded(r, &e) != 0) return -1;
    int rc = e.len ? stt_json_parse(&r->arena, e.base, e.len, out, NULL, 0) : STT_E_BAD_JSON;
    if (rc != 0) {
        stt_reply_error(r, rc, NULL);
        return -1;
    }
    if (not_object_reason && out->type != STT_JSON_OBJECT) {
        stt_reply_error_raw(r, 400, "bad_request", not_object_reason);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ seqs */

void stt_seq_format(stt_buf_t *b, uint64_t seq)
{
    stt_buf_appendc(b, '"');
    stt_buf_append_u64(b, seq);
    stt_buf_appends(b, "-s\"");
}

int stt_seq_parse(const char *s, size_t len, uint64_t now_seq, uint64_t *out)
{
    if (len == 3 && memcmp(s, "now", 3) == 0) {
        *out = now_seq;
        return 0;
    }
    /* a JSON string form may arrive with its quotes */
    if (len >= 2 && s[0] == '"' && s[len - 1] == '"') s++, len -= 2;
    size_t i = 0;
    uint64_t v = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9' && i < 19)
        v = v * 10 + (uint64_t)(s[i++] - '0');
    if (i == 0 || (i < len && s[i] != '-')) return -1;
    *out = v;
    return 0;
}
