/* A remote database as a replication endpoint: CouchDB's HTTP API spoken with
 * libcurl (couch_replicator_httpc). One easy handle per endpoint keeps its
 * connection alive between requests; a request that fails in transport or with a
 * 5xx is retried retries_per_request times with a doubling pause (250 ms first),
 * after which the job crashes and the scheduler restarts it from its checkpoint.
 *
 * Credentials (from the URL or auth.basic) go as basic auth on every request.
 * When opening, they are first tried against the peer's /_session as CouchDB's
 * replicator does, so that wrong ones fail the job with CouchDB's
 * replication_auth_error instead of 401s deep in a run. TLS verifies the peer's
 * certificate unless [replicator] verify_ssl_certificates = false;
 * ssl_trusted_certificates_file names a CA bundle.
 *
 * Documents are fetched with _bulk_get (attachments inline) and, from peers
 * without it, with GET ?open_revs; written with _bulk_docs new_edits=false. */
#include "replication/rep_int.h"
#include "src/common/err.h"
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    stt_rep_ep_t base;
    CURL *h;
    bool no_bulk_get;
    stt_rep_tls_t tls;
} ep_t;

typedef struct {
    ep_t *e;
    stt_buf_t *out;
    long status;
    size_t max;
} call_t;

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    call_t *c = arg;
    size_t len = size * n;
    if (c->out->len + len > c->max) return 0; /* an answer no replication needs: stop reading */
    stt_buf_append(c->out, p, len);
    return len;
}

static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t x, curl_off_t y)
{
    call_t *c = arg;
    return atomic_load(c->e->base.stop) ? 1 : 0;
}

void stt__rep_url_encode(stt_buf_t *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
            ch == '_' || ch == '.' || ch == '~') {
            stt_buf_appendc(out, (char)ch);
        } else {
            stt_buf_appendc(out, '%');
            stt_buf_appendc(out, hex[ch >> 4]);
            stt_buf_appendc(out, hex[ch & 15]);
        }
    }
}

/* The members of a JSON object text as query parameters: strings as they are,
 * other values as JSON (CouchDB's query_params and create_target_params). */
static void query_params(stt_buf_t *q, const char *obj, char sep)
{
    stt_arena_t a = STT_ARENA_INIT;
    stt_json_t p;
    if (obj && stt_json_parse(&a, obj, strlen(obj), &p, NULL, 0) == 0 && p.type == STT_JSON_OBJECT)
        for (uint32_t i = 0; i < p.len; i++) {
            stt_buf_appendc(q, i ? '&' : sep);
            stt__rep_url_encode(q, p.u.members[i].key, p.u.members[i].keylen);
            stt_buf_appendc(q, '=');
            stt_buf_t v = STT_BUF_INIT;
            if (p.u.members[i].val.type == STT_JSON_STRING)
                stt_buf_append(&v, p.u.members[i].val.u.s, p.u.members[i].val.len);
            else
                stt_json_write(&v, &p.u.members[i].val);
            stt__rep_url_encode(q, v.base, v.len);
            stt_buf_free(&v);
        }
    stt_arena_free(&a);
}

/* One exchange: 0 with *status set (any status), or -1 on a transport failure
 * (ep's error says which). */
static int exchange(ep_t *e, const char *method, const char *url, const char *body, size_t len, stt_buf_t *out,
                    long *status, bool basic)
{
    const stt_rep_spec_t *s = e->base.spec;
    CURL *h = e->h;
    curl_easy_reset(h);
    call_t c = {.e = e, .out = out, .max = (size_t)1 << 31};
    stt_buf_reset(out);
    struct curl_slist *hs = curl_slist_append(NULL, "Accept: application/json");
    if (body) hs = curl_slist_append(hs, "Content-Type: application/json");
    hs = curl_slist_append(hs, "Expect:");
    for (size_t i = 0; i < s->nheaders; i++)
        hs = curl_slist_append(hs, s->headers[i]);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "settee-replicator");
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    if (basic && s->user) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERNAME, s->user);
        curl_easy_setopt(h, CURLOPT_PASSWORD, s->pass);
    }
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &c);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &c);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    uint64_t tmo = e->base.params->timeout_ms;
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)tmo);
    /* a peer that stops sending for the timeout is gone (longpolls ask for heartbeats) */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)(tmo / 1000 ? tmo / 1000 : 1));
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, e->tls.verify_ssl ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, e->tls.verify_ssl ? 2L : 0L);
    if (e->tls.ca_file[0]) curl_easy_setopt(h, CURLOPT_CAINFO, e->tls.ca_file);
    CURLcode cc = curl_easy_perform(h);
    curl_slist_free_all(hs);
    if (cc != CURLE_OK) {
        /* CouchDB's words (Erlang terms) where it has them */
        const char *why = cc == CURLE_COULDNT_CONNECT        ? "{error,{error,{conn_failed,{error,econnrefused}}}}"
                          : cc == CURLE_COULDNT_RESOLVE_HOST ? "{error,{error,{conn_failed,{error,nxdomain}}}}"
                          : cc == CURLE_OPERATION_TIMEDOUT   ? "{error,{error,{conn_failed,{error,timeout}}}}"
                          : cc == CURLE_ABORTED_BY_CALLBACK  ? "{error,stopped}"
                                                             : NULL;
        if (why)
            stt__rep_ep_error(&e->base, 0, "error", "{http_request_failed,\"%s\",\"%s\",%s}", method,
                              stt__rep_spec_display(s), why);
        else
            stt__rep_ep_error(&e->base, 0, "error", "{http_request_failed,\"%s\",\"%s\",{error,\"%s\"}}", method,
                              stt__rep_spec_display(s), curl_easy_strerror(cc));
        return -1;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    return 0;
}

/* exchange with retries: transport failures and 5xx answers are retried. */
static int request(ep_t *e, const char *method, const char *path, const char *body, size_t len, stt_buf_t *out,
                   long *status)
{
    stt_buf_t url = STT_BUF_INIT;
    stt_buf_appends(&url, e->base.spec->url);
    stt_buf_appends(&url, path);
    stt_buf_appendc(&url, '\0');
    unsigned pause = 250;
    int rc = -1;
    for (unsigned attempt = 0;; attempt++) {
        rc = exchange(e, method, url.base, body, len, out, status, true);
        if (rc == 0 && *status < 500) break;
        if (rc == 0) stt__rep_ep_error(&e->base, (int)*status, "error", "%s %s answered %ld", method, path, *status);
        if (attempt >= e->base.params->retries || atomic_load(e->base.stop)) {
            rc = -1;
            break;
        }
        for (unsigned slept = 0; slept < pause && !atomic_load(e->base.stop); slept += 50)
            usleep(50 * 1000);
        if (pause < 16000) pause *= 2;
    }
    stt_buf_free(&url);
    return rc;
}

static int parse(stt_arena_t *a, stt_buf_t *b, stt_json_t *out)
{
    char *text = stt_arena_memdup(a, b->base ? b->base : "", b->len);
    return stt_json_parse(a, text, b->len, out, NULL, 0) == 0 ? 0 : STT_E_BAD_JSON;
}

static const char *json_err(stt_arena_t *a, stt_buf_t *b, const char *key)
{
    stt_json_t j;
    if (parse(a, b, &j) != 0) return "";
    const stt_json_t *v = stt_json_get(&j, key);
    return stt_json_is_str(v) ? v->u.s : "";
}

/* ------------------------------------------------------------------ open */

/* CouchDB's replicator checks credentials at the server's /_session first. */
static int check_session(ep_t *e)
{
    const stt_rep_spec_t *s = e->base.spec;
    if (!s->user) return 0;
    stt_buf_t url = STT_BUF_INIT, body = STT_BUF_INIT, out = STT_BUF_INIT;
    /* the server root: the URL less its database segment */
    size_t n = strlen(s->url) - 1;
    while (n > 0 && s->url[n - 1] != '/')
        n--;
    stt_buf_append(&url, s->url, n);
    stt_buf_appends(&url, "_session");
    stt_buf_appendc(&url, '\0');
    stt_buf_appends(&body, "{\"name\":");
    stt_json_write_cstr(&body, s->user);
    stt_buf_appends(&body, ",\"password\":");
    stt_json_write_cstr(&body, s->pass);
    stt_buf_appendc(&body, '}');
    long st = 0;
    int rc = exchange(e, "POST", url.base, body.base, body.len, &out, &st, false);
    memset(body.base, 0, body.len);
    if (rc == 0 && st == 401) {
        url.len--;
        stt__rep_ep_error(&e->base, STT_REP_AUTH_FAILED, "replication_auth_error",
                          "{session_request_unauthorized,\"%.*s\",\"%s\"}", (int)url.len, url.base, s->user);
        rc = STT_E_UNAUTHORIZED;
    } else {
        rc = rc ? STT_E_IO : 0; /* a peer without _session: basic auth alone */
    }
    stt_buf_free(&url);
    stt_buf_free(&body);
    stt_buf_free(&out);
    return rc;
}

static int h_open(stt_rep_ep_t *base, bool create, const char *params)
{
    ep_t *e = (ep_t *)base;
    const char *url = base->spec->url;
    int rc = check_session(e);
    if (rc) return rc;
    stt_buf_t out = STT_BUF_INIT;
    long st = 0;
    if (request(e, "GET", "", NULL, 0, &out, &st) != 0) {
        rc = STT_E_IO;
        goto exit;
    }
    if (st == 404 && create) {
        stt_buf_t q = STT_BUF_INIT;
        query_params(&q, params, '?');
        stt_buf_appendc(&q, '\0');
        rc = request(e, "PUT", q.base, NULL, 0, &out, &st);
        stt_buf_free(&q);
        if (rc == 0 && (st == 201 || st == 202 || st == 412)) rc = request(e, "GET", "", NULL, 0, &out, &st);
        if (rc) {
            rc = STT_E_IO;
            goto exit;
        }
    }
    if (st == 401 || st == 403) {
        stt__rep_ep_error(base, (int)st, "unauthorized", "unauthorized to access or create database %s", url);
        rc = STT_E_UNAUTHORIZED;
    } else if (st != 200) {
        stt__rep_ep_error(base, 404, "db_not_found", "could not open %s", url);
        rc = STT_E_DB_NOT_FOUND;
    }
exit:
    stt_buf_free(&out);
    return rc;
}

/* ------------------------------------------------------------------ changes */

static void since_param(stt_buf_t *q, const char *since)
{
    stt_buf_appends(q, "&since=");
    size_t n = strlen(since);
    if (n >= 2 && since[0] == '"' && since[n - 1] == '"')
        stt__rep_url_encode(q, since + 1, n - 2);
    else
        stt__rep_url_encode(q, since, n);
}

static int h_changes(stt_rep_ep_t *base, stt_arena_t *a, const char *since, size_t limit, uint64_t wait_ms,
                     stt_rep_change_t **rows, size_t *nrows, const char **last_seq)
{
    ep_t *e = (ep_t *)base;
    const stt_rep_params_t *p = base->params;
    stt_buf_t q = STT_BUF_INIT, body = STT_BUF_INIT, out = STT_BUF_INIT;
    stt_buf_appendf(&q, "_changes?feed=%s&style=%s&limit=%zu", wait_ms ? "longpoll" : "normal",
                    p->winning_revs_only ? "main_only" : "all_docs", limit);
    if (wait_ms) stt_buf_appendf(&q, "&timeout=%llu&heartbeat=10000", (unsigned long long)wait_ms);
    if (since) since_param(&q, since);
    const char *method = "GET";
    if (p->filter_kind == STT_REP_F_DOC_IDS) {
        stt_buf_appends(&q, "&filter=_doc_ids");
        stt_buf_appendf(&body, "{\"doc_ids\":%s}", p->doc_ids);
        method = "POST";
    } else if (p->filter_kind == STT_REP_F_SELECTOR) {
        stt_buf_appends(&q, "&filter=_selector");
        stt_buf_appendf(&body, "{\"selector\":%s}", p->selector);
        method = "POST";
    } else if (p->filter_kind == STT_REP_F_DDOC) {
        stt_buf_appends(&q, "&filter=");
        stt__rep_url_encode(&q, p->filter, strlen(p->filter));
        query_params(&q, p->query_params, '&');
    }
    stt_buf_appendc(&q, '\0');
    long st = 0;
    int rc = request(e, method, q.base, body.len ? body.base : NULL, body.len, &out, &st);
    stt_json_t ans;
    if (rc == 0 && st != 200) {
        stt__rep_ep_error(base, (int)st, "error", "changes feed of %s answered %ld: %s", base->spec->url, st,
                          json_err(a, &out, "reason"));
        rc = -1;
    } else if (rc == 0 && (parse(a, &out, &ans) != 0 || ans.type != STT_JSON_OBJECT)) {
        stt__rep_ep_error(base, 500, "error", "changes feed of %s is not JSON", base->spec->url);
        rc = -1;
    }
    if (rc) goto exit;
    const stt_json_t *res = stt_json_get(&ans, "results"), *last = stt_json_get(&ans, "last_seq");
    size_t n = res && res->type == STT_JSON_ARRAY ? res->len : 0, k = 0;
    stt_rep_change_t *r = stt_arena_alloc(a, (n ? n : 1) * sizeof(*r));
    stt_buf_t sb = STT_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        const stt_json_t *row = &res->u.items[i], *id = stt_json_get(row, "id"), *ch = stt_json_get(row, "changes"),
                         *seq = stt_json_get(row, "seq");
        if (!stt_json_is_str(id) || !ch || ch->type != STT_JSON_ARRAY) continue;
        r[k].id = id->u.s;
        stt_buf_reset(&sb);
        if (seq) stt_json_write(&sb, seq);
        r[k].seq = stt_arena_strndup(a, sb.base ? sb.base : "null", sb.len ? sb.len : 4);
        r[k].revs = stt_arena_alloc(a, (ch->len ? ch->len : 1) * sizeof(char *));
        r[k].nrevs = 0;
        for (uint32_t c = 0; c < ch->len; c++) {
            const stt_json_t *rev = stt_json_get(&ch->u.items[c], "rev");
            if (stt_json_is_str(rev)) r[k].revs[r[k].nrevs++] = rev->u.s;
        }
        k++;
    }
    stt_buf_reset(&sb);
    if (last && last->type != STT_JSON_NULL)
        stt_json_write(&sb, last);
    else if (k)
        stt_buf_appends(&sb, r[k - 1].seq);
    else if (since)
        stt_buf_appends(&sb, since);
    else
        stt_buf_appends(&sb, "0");
    *last_seq = stt_arena_strndup(a, sb.base, sb.len);
    stt_buf_free(&sb);
    *rows = r;
    *nrows = k;
exit:
    stt_buf_free(&q);
    stt_buf_free(&body);
    stt_buf_free(&out);
    return rc ? STT_E_IO : 0;
}

/* ------------------------------------------------------------------ revs_diff, reads, writes */

static int post_json(ep_t *e, stt_arena_t *a, const char *path, const char *body, size_t len, stt_json_t *ans,
                     long want)
{
    stt_buf_t out = STT_BUF_INIT;
    long st = 0;
    int rc = request(e, "POST", path, body, len, &out, &st);
    if (rc == 0 && st != want && !(want == 201 && st == 200)) {
        stt__rep_ep_error(&e->base, (int)st, json_err(a, &out, "error")[0] ? json_err(a, &out, "error") : "error",
                          "%s of %s answered %ld: %s", path, e->base.spec->url, st, json_err(a, &out, "reason"));
        rc = -1;
    } else if (rc == 0 && parse(a, &out, ans) != 0) {
        stt__rep_ep_error(&e->base, 500, "error", "%s of %s is not JSON", path, e->base.spec->url);
        rc = -1;
    }
    stt_buf_free(&out);
    return rc ? STT_E_IO : 0;
}

static int h_revs_diff(stt_rep_ep_t *base, stt_arena_t *a, const char *req, size_t len, stt_json_t *ans)
{
    return post_json((ep_t *)base, a, "_revs_diff", req, len, ans, 200);
}

static void add_ok_docs(const stt_json_t *list, stt_json_t *out, size_t *k, size_t cap)
{
    for (uint32_t j = 0; list && list->type == STT_JSON_ARRAY && j < list->len && *k < cap; j++) {
        const stt_json_t *ok = stt_json_get(&list->u.items[j], "ok");
        if (ok && ok->type == STT_JSON_OBJECT) out[(*k)++] = *ok;
    }
}

static void write_revs(stt_buf_t *b, const char *const *revs, size_t n)
{
    stt_buf_appendc(b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i) stt_buf_appendc(b, ',');
        stt_json_write_cstr(b, revs[i]);
    }
    stt_buf_appendc(b, ']');
}

/* Peers without _bulk_get (CouchDB before 2.3, some PouchDB servers): one GET per doc. */
static int fetch_open_revs(ep_t *e, stt_arena_t *a, const stt_rep_fetch_t *f, size_t n, stt_json_t *out, size_t *k,
                           size_t cap)
{
    stt_buf_t q = STT_BUF_INIT, v = STT_BUF_INIT, resp = STT_BUF_INIT;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        stt_buf_reset(&q);
        stt_buf_reset(&v);
        stt__rep_url_encode(&q, f[i].id, strlen(f[i].id));
        stt_buf_appends(&q, "?revs=true&attachments=true&latest=true&open_revs=");
        write_revs(&v, f[i].revs, f[i].nrevs);
        stt__rep_url_encode(&q, v.base, v.len);
        if (f[i].natts_since) {
            stt_buf_reset(&v);
            write_revs(&v, f[i].atts_since, f[i].natts_since);
            stt_buf_appends(&q, "&atts_since=");
            stt__rep_url_encode(&q, v.base, v.len);
        }
        stt_buf_appendc(&q, '\0');
        long st = 0;
        stt_json_t ans;
        if (request(e, "GET", q.base, NULL, 0, &resp, &st) != 0) {
            rc = STT_E_IO;
        } else if (st == 200 && parse(a, &resp, &ans) == 0) {
            add_ok_docs(&ans, out, k, cap);
        } else if (st != 404) {
            stt__rep_ep_error(&e->base, (int)st, "error", "GET of %s from %s answered %ld", f[i].id, e->base.spec->url,
                              st);
            rc = STT_E_IO;
        }
    }
    stt_buf_free(&q);
    stt_buf_free(&v);
    stt_buf_free(&resp);
    return rc;
}

static int h_fetch(stt_rep_ep_t *base, stt_arena_t *a, const stt_rep_fetch_t *f, size_t n, stt_json_t *out,
                   size_t *ndocs)
{
    ep_t *e = (ep_t *)base;
    size_t cap = 0, k = 0;
    for (size_t i = 0; i < n; i++)
        cap += f[i].nrevs;
    if (!e->no_bulk_get) {
        stt_buf_t b = STT_BUF_INIT, resp = STT_BUF_INIT;
        stt_buf_appends(&b, "{\"docs\":[");
        bool first = true;
        for (size_t i = 0; i < n; i++)
            for (size_t r = 0; r < f[i].nrevs; r++) {
                if (!first) stt_buf_appendc(&b, ',');
                first = false;
                stt_buf_appends(&b, "{\"id\":");
                stt_json_write_cstr(&b, f[i].id);
                stt_buf_appends(&b, ",\"rev\":");
                stt_json_write_cstr(&b, f[i].revs[r]);
                if (f[i].natts_since) {
                    stt_buf_appends(&b, ",\"atts_since\":");
                    write_revs(&b, f[i].atts_since, f[i].natts_since);
                }
                stt_buf_appendc(&b, '}');
            }
        stt_buf_appends(&b, "]}");
        long st = 0;
        int rc = request(e, "POST", "_bulk_get?revs=true&attachments=true&latest=true", b.base, b.len, &resp, &st);
        stt_buf_free(&b);
        stt_json_t ans;
        if (rc == 0 && st == 200 && parse(a, &resp, &ans) == 0) {
            const stt_json_t *res = stt_json_get(&ans, "results");
            for (uint32_t i = 0; res && res->type == STT_JSON_ARRAY && i < res->len; i++)
                add_ok_docs(stt_json_get(&res->u.items[i], "docs"), out, &k, cap);
            stt_buf_free(&resp);
            *ndocs = k;
            return 0;
        }
        stt_buf_free(&resp);
        if (rc) return STT_E_IO;
        if (st != 400 && st != 404 && st != 405 && st != 501) {
            stt__rep_ep_error(base, (int)st, "error", "_bulk_get of %s answered %ld", base->spec->url, st);
            return STT_E_IO;
        }
        e->no_bulk_get = true;
    }
    int rc = fetch_open_revs(e, a, f, n, out, &k, cap);
    *ndocs = k;
    return rc;
}

static int h_write(stt_rep_ep_t *base, stt_arena_t *a, const stt_json_t *docs, size_t n, size_t *failed)
{
    stt_buf_t b = STT_BUF_INIT;
    stt_buf_appends(&b, "{\"new_edits\":false,\"docs\":[");
    for (size_t i = 0; i < n; i++) {
        if (i) stt_buf_appendc(&b, ',');
        stt_json_write(&b, &docs[i]);
    }
    stt_buf_appends(&b, "]}");
    stt_json_t ans;
    int rc = post_json((ep_t *)base, a, "_bulk_docs", b.base, b.len, &ans, 201);
    stt_buf_free(&b);
    if (rc) return rc;
    size_t bad = 0;
    for (uint32_t i = 0; ans.type == STT_JSON_ARRAY && i < ans.len; i++)
        if (stt_json_get(&ans.u.items[i], "error")) bad++;
    *failed = bad;
    return 0;
}

/* ------------------------------------------------------------------ checkpoints, filters */

static void local_path(stt_buf_t *q, const char *id)
{
    stt_buf_appends(q, "_local/");
    stt__rep_url_encode(q, id + 7, strlen(id) - 7);
    stt_buf_appendc(q, '\0');
}

static int h_get_local(stt_rep_ep_t *base, stt_arena_t *a, const char *id, stt_json_t *out)
{
    ep_t *e = (ep_t *)base;
    stt_buf_t q = STT_BUF_INIT, resp = STT_BUF_INIT;
    local_path(&q, id);
    long st = 0;
    int rc = request(e, "GET", q.base, NULL, 0, &resp, &st);
    if (rc == 0 && st == 200)
        rc = parse(a, &resp, out);
    else
        rc = rc ? STT_E_IO : st == 404 ? STT_E_NOT_FOUND : STT_E_IO;
    stt_buf_free(&q);
    stt_buf_free(&resp);
    return rc;
}

static int h_put_local(stt_rep_ep_t *base, const char *id, const char *json, size_t len)
{
    ep_t *e = (ep_t *)base;
    stt_buf_t q = STT_BUF_INIT, resp = STT_BUF_INIT, body = STT_BUF_INIT;
    local_path(&q, id);
    long st = 0;
    int rc = request(e, "PUT", q.base, json, len, &resp, &st);
    if (rc == 0 && st == 409) {
        /* a peer that checks _local revs: name the current one */
        stt_arena_t a = STT_ARENA_INIT;
        stt_json_t cur;
        if (request(e, "GET", q.base, NULL, 0, &resp, &st) == 0 && st == 200 && parse(&a, &resp, &cur) == 0 &&
            stt_json_is_str(stt_json_get(&cur, "_rev"))) {
            stt_buf_appends(&body, "{\"_rev\":");
            stt_json_write(&body, stt_json_get(&cur, "_rev"));
            stt_buf_appendc(&body, ',');
            stt_buf_append(&body, json + 1, len - 1);
            rc = request(e, "PUT", q.base, body.base, body.len, &resp, &st);
        }
        stt_arena_free(&a);
    }
    if (rc == 0 && st != 201 && st != 200) {
        stt__rep_ep_error(base, (int)st, "error", "checkpoint on %s answered %ld", base->spec->url, st);
        rc = -1;
    }
    stt_buf_free(&q);
    stt_buf_free(&resp);
    stt_buf_free(&body);
    return rc ? STT_E_IO : 0;
}

static int h_check_filter(stt_rep_ep_t *base, const char *ddoc, const char *name)
{
    ep_t *e = (ep_t *)base;
    stt_buf_t q = STT_BUF_INIT, resp = STT_BUF_INIT;
    stt_buf_appends(&q, "_design/");
    stt__rep_url_encode(&q, ddoc, strlen(ddoc));
    stt_buf_appendc(&q, '\0');
    long st = 0;
    int rc = request(e, "GET", q.base, NULL, 0, &resp, &st);
    stt_arena_t a = STT_ARENA_INIT;
    stt_json_t doc;
    if (rc) {
        rc = STT_E_IO;
    } else if (st != 200 || parse(&a, &resp, &doc) != 0) {
        stt__rep_ep_error(base, 404, "not_found",
                          "Couldn't open document `_design/%s` from source database `%s`: {error,<<\"not_found\">>}",
                          ddoc, base->spec->url);
        rc = STT_E_NOT_FOUND;
    } else if (!stt_json_get(stt_json_get(&doc, "filters"), name)) {
        stt__rep_ep_error(base, 404, "not_found",
                          "Couldn't parse filter code from document %s on `%s`  Error: {not_found,<<\"missing json "
                          "key: %s\">>}",
                          ddoc, base->spec->url, name);
        rc = STT_E_NOT_FOUND;
    }
    stt_arena_free(&a);
    stt_buf_free(&q);
    stt_buf_free(&resp);
    return rc;
}

static void h_close(stt_rep_ep_t *base)
{
    ep_t *e = (ep_t *)base;
    curl_easy_cleanup(e->h);
    free(e);
}

static const stt_rep_ep_ops_t ops = {h_open,      h_changes,   h_revs_diff,    h_fetch, h_write,
                                     h_get_local, h_put_local, h_check_filter, h_close};

stt_rep_ep_t *stt__rep_ep_http(const stt_rep_spec_t *spec, const stt_rep_params_t *p, atomic_int *stop)
{
    ep_t *e = stt_xcalloc(1, sizeof(*e));
    e->base.ops = &ops;
    e->base.spec = spec;
    e->base.params = p;
    e->base.stop = stop;
    e->h = curl_easy_init();
    stt__rep_tls(&e->tls);
    return &e->base;
}
