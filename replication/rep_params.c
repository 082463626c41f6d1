/* Replication parameters: a /_replicate body or a _replicator document read into
 * stt_rep_params_t, with CouchDB's refusals (couch_replicator_parse), and the
 * replication id.
 *
 * The id is what makes a restarted replication resume: it must be the same for
 * the same source, target and options, and differ when any of them differs. It
 * is the md5 of the server uuid, both endpoints (URL without credentials, or the
 * local name) and the filter, as CouchDB's version 4 ids are (CouchDB hashes an
 * Erlang term; the id only has to be stable, not equal to CouchDB's). */
#include "replication/rep_int.h"
#include "src/common/codec.h"
#include "src/common/err.h"
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_json(const stt_json_t *v)
{
    stt_buf_t b = STT_BUF_INIT;
    stt_json_write(&b, v);
    stt_buf_appendc(&b, '\0');
    return stt_buf_release(&b, NULL);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static char *pct_decode(const char *s, size_t len)
{
    char *o = stt_xmalloc(len + 1);
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%' && i + 2 < len && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            o[k++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            o[k++] = s[i];
        }
    }
    o[k] = '\0';
    return o;
}

/* scheme://[user[:pass]@]host[:port][/path]: the URL without its credentials, a
 * trailing '/' added. -1 when it cannot be a URL. */
static int parse_url(const char *s, size_t len, stt_rep_spec_t *out)
{
    const char *p = strstr(s, "://");
    if (!p) return -1;
    const char *auth = p + 3, *end = s + len;
    const char *slash = memchr(auth, '/', (size_t)(end - auth));
    const char *hostend = slash ? slash : end;
    const char *at = NULL;
    for (const char *q = auth; q < hostend; q++)
        if (*q == '@') at = q;
    const char *host = at ? at + 1 : auth;
    if (host == hostend) return -1;
    if (*host == '[' && !memchr(host, ']', (size_t)(hostend - host))) return -1;
    for (const char *q = host; q < hostend; q++)
        if (*q == ' ' || *q == '\\') return -1;
    if (at) {
        const char *colon = memchr(auth, ':', (size_t)(at - auth));
        out->user = pct_decode(auth, (size_t)((colon ? colon : at) - auth));
        out->pass = colon ? pct_decode(colon + 1, (size_t)(at - colon - 1)) : stt_xstrndup("", 0);
    }
    stt_buf_t u = STT_BUF_INIT;
    stt_buf_append(&u, s, (size_t)(auth - s));
    stt_buf_append(&u, host, (size_t)(end - host));
    if (u.base[u.len - 1] != '/') stt_buf_appendc(&u, '/');
    stt_buf_appendc(&u, '\0');
    out->url = stt_buf_release(&u, NULL);
    return 0;
}

static bool is_http(const char *s, size_t len)
{
    return (len >= 7 && strncasecmp(s, "http://", 7) == 0) || (len >= 8 && strncasecmp(s, "https://", 8) == 0);
}

static int spec_parse(const stt_json_t *v, stt_rep_spec_t *out, const char **error, char *reason, size_t rlen)
{
    const stt_json_t *url = v;
    if (v->type == STT_JSON_OBJECT) url = stt_json_get(v, "url");
    if (url && url->type == STT_JSON_NUMBER) { /* CouchDB takes it for a db name */
        out->db = stt_xstrndup(url->u.s, url->len);
        return 0;
    }
    if (!stt_json_is_str(url)) {
        *error = "bad_request";
        snprintf(reason, rlen, "Invalid endpoint: `url` must be a string");
        return 400;
    }
    if (is_http(url->u.s, url->len)) {
        if (parse_url(url->u.s, url->len, out) != 0) {
            *error = "invalid_replication";
            snprintf(reason, rlen, "endpoint has an invalid url");
            return 400;
        }
    } else {
        /* another scheme too: CouchDB takes it for a local name, which no db has */
        out->db = stt_xstrndup(url->u.s, url->len);
    }
    if (v->type != STT_JSON_OBJECT) return 0;
    const stt_json_t *h = stt_json_get(v, "headers");
    if (h && h->type == STT_JSON_OBJECT) {
        out->headers = stt_xcalloc(h->len ? h->len : 1, sizeof(char *));
        for (uint32_t i = 0; i < h->len; i++) {
            const stt_json_member_t *m = &h->u.members[i];
            if (!stt_json_is_str(&m->val) || memchr(m->key, '\n', m->keylen) || memchr(m->val.u.s, '\n', m->val.len) ||
                memchr(m->key, '\r', m->keylen) || memchr(m->val.u.s, '\r', m->val.len))
                continue;
            stt_buf_t b = STT_BUF_INIT;
            stt_buf_appendf(&b, "%.*s: %.*s", (int)m->keylen, m->key, (int)m->val.len, m->val.u.s);
            stt_buf_appendc(&b, '\0');
            out->headers[out->nheaders++] = stt_buf_release(&b, NULL);
        }
    }
    const stt_json_t *basic = stt_json_get(stt_json_get(v, "auth"), "basic");
    if (basic && basic->type == STT_JSON_OBJECT) {
        const stt_json_t *u = stt_json_get(basic, "username"), *pw = stt_json_get(basic, "password");
        if (stt_json_is_str(u) && stt_json_is_str(pw)) {
            free(out->user);
            free(out->pass);
            out->user = stt_xstrndup(u->u.s, u->len);
            out->pass = stt_xstrndup(pw->u.s, pw->len);
        }
    }
    return 0;
}

static void spec_free(stt_rep_spec_t *s)
{
    free(s->url);
    free(s->db);
    free(s->user);
    if (s->pass) {
        memset(s->pass, 0, strlen(s->pass));
        free(s->pass);
    }
    for (size_t i = 0; i < s->nheaders; i++)
        free(s->headers[i]);
    free(s->headers);
    memset(s, 0, sizeof(*s));
}

const char *stt__rep_spec_display(const stt_rep_spec_t *s)
{
    return s->url ? s->url : s->db ? s->db : "";
}

static bool get_bool(const stt_json_t *body, const char *key)
{
    return stt_json_is_true(stt_json_get(body, key));
}

static uint64_t get_uint(const stt_json_t *body, const char *key, uint64_t dflt)
{
    int64_t v;
    const stt_json_t *j = stt_json_get(body, key);
    if (j && j->type == STT_JSON_STRING) return (uint64_t)strtoull(j->u.s, NULL, 10) ?: dflt;
    return j && stt_json_int(j, &v) == 0 && v > 0 ? (uint64_t)v : dflt;
}

static void make_id(stt_rep_params_t *p, const char *uuid)
{
    stt_buf_t b = STT_BUF_INIT;
    stt_buf_appendf(&b, "4\n%s\n%s%s\n%s%s\n", uuid, p->source.url ? "" : "local:", stt__rep_spec_display(&p->source),
                    p->target.url ? "" : "local:", stt__rep_spec_display(&p->target));
    switch (p->filter_kind) {
    case STT_REP_F_DOC_IDS:
        stt_buf_appendf(&b, "doc_ids:%s", p->doc_ids);
        break;
    case STT_REP_F_SELECTOR:
        stt_buf_appendf(&b, "selector:%s", p->selector);
        break;
    case STT_REP_F_DDOC:
        stt_buf_appendf(&b, "filter:%s:%s", p->filter, p->query_params ? p->query_params : "{}");
        break;
    }
    if (p->winning_revs_only) stt_buf_appends(&b, "\nwinning_revs_only");
    unsigned char d[16];
    stt_md5(b.base, b.len, d);
    stt_buf_reset(&b);
    stt_hex_encode(&b, d, 16);
    memcpy(p->base_id, b.base, 32);
    p->base_id[32] = '\0';
    snprintf(p->id, sizeof(p->id), "%s%s%s", p->base_id, p->continuous ? "+continuous" : "",
             p->create_target ? "+create_target" : "");
    stt_buf_free(&b);
}

int stt__rep_params_parse(const stt_json_t *body, const char *uuid, stt_rep_params_t *p, const char **error,
                          char *reason, size_t rlen)
{
    memset(p, 0, sizeof(*p));
    *error = "bad_request";
    if (!body || body->type != STT_JSON_OBJECT) {
        snprintf(reason, rlen, "Document must be a JSON object");
        return 400;
    }
    p->cancel = get_bool(body, "cancel");
    const stt_json_t *rid = stt_json_get(body, "replication_id");
    if (p->cancel && stt_json_is_str(rid)) {
        p->cancel_id = stt_xstrndup(rid->u.s, rid->len);
        return 0;
    }
    const stt_json_t *src = stt_json_get(body, "source"), *tgt = stt_json_get(body, "target");
    if (!src || !tgt || src->type == STT_JSON_NULL || tgt->type == STT_JSON_NULL) {
        /* CouchDB's words for a body without an endpoint */
        *error = "error";
        snprintf(reason, rlen, "Missing replicator database");
        return 500;
    }
    int st;
    if ((st = spec_parse(src, &p->source, error, reason, rlen)) ||
        (st = spec_parse(tgt, &p->target, error, reason, rlen)))
        goto fail;
    p->continuous = get_bool(body, "continuous");
    p->create_target = get_bool(body, "create_target");
    p->winning_revs_only = get_bool(body, "winning_revs_only");
    const stt_json_t *ctp = stt_json_get(body, "create_target_params");
    if (ctp && ctp->type == STT_JSON_OBJECT) p->create_target_params = dup_json(ctp);
    const stt_json_t *uc = stt_json_get(body, "use_checkpoints");
    p->use_checkpoints = !(uc && uc->type == STT_JSON_FALSE);
    p->checkpoint_interval_ms = get_uint(body, "checkpoint_interval", 30000);
    p->batch_size = get_uint(body, "worker_batch_size", 500);
    if (p->batch_size > 10000) p->batch_size = 10000;
    p->timeout_ms = get_uint(body, "connection_timeout", 30000);
    p->retries = (unsigned)get_uint(body, "retries_per_request", 5);
    if (p->retries > 20) p->retries = 20;

    const stt_json_t *ids = stt_json_get(body, "doc_ids"), *sel = stt_json_get(body, "selector"),
                     *flt = stt_json_get(body, "filter");
    if (ids && ids->type == STT_JSON_NULL) ids = NULL;
    if (sel && sel->type == STT_JSON_NULL) sel = NULL;
    if (flt && flt->type == STT_JSON_NULL) flt = NULL;
    if ((ids != NULL) + (sel != NULL) + (flt != NULL) > 1) {
        snprintf(reason, rlen, "`doc_ids`,`filter`,`selector` are mutually exclusive");
        st = 400;
        goto fail;
    }
    if (ids) {
        if (ids->type != STT_JSON_ARRAY) {
            snprintf(reason, rlen, "parameter `doc_ids` must be an array");
            st = 400;
            goto fail;
        }
        for (uint32_t i = 0; i < ids->len; i++)
            if (!stt_json_is_str(&ids->u.items[i])) {
                snprintf(reason, rlen, "parameter `doc_ids` must be an array of strings");
                st = 400;
                goto fail;
            }
        p->filter_kind = STT_REP_F_DOC_IDS;
        p->doc_ids = dup_json(ids);
    } else if (sel) {
        if (sel->type != STT_JSON_OBJECT) {
            snprintf(reason, rlen, "`selector` must be a JSON object");
            st = 400;
            goto fail;
        }
        p->filter_kind = STT_REP_F_SELECTOR;
        p->selector = dup_json(sel);
    } else if (flt) {
        const char *slash = stt_json_is_str(flt) ? memchr(flt->u.s, '/', flt->len) : NULL;
        if (!slash || slash == flt->u.s || slash == flt->u.s + flt->len - 1) {
            snprintf(reason, rlen, "Invalid filter. Must match `ddocname/filtername` or `_ddoc/filtername`");
            st = 400;
            goto fail;
        }
        p->filter_kind = STT_REP_F_DDOC;
        p->filter = stt_xstrndup(flt->u.s, flt->len);
        const stt_json_t *qp = stt_json_get(body, "query_params");
        if (qp && qp->type == STT_JSON_OBJECT) p->query_params = dup_json(qp);
    }
    const stt_json_t *since = stt_json_get(body, "since_seq");
    if (since && since->type != STT_JSON_NULL) p->since_seq = dup_json(since);
    make_id(p, uuid);
    return 0;
fail:
    stt__rep_params_free(p);
    return st;
}

void stt__rep_params_free(stt_rep_params_t *p)
{
    spec_free(&p->source);
    spec_free(&p->target);
    free(p->create_target_params);
    free(p->doc_ids);
    free(p->selector);
    free(p->filter);
    free(p->query_params);
    free(p->since_seq);
    free(p->cancel_id);
    free(p->self_url);
    memset(p, 0, sizeof(*p));
}

void stt__rep_ep_error(stt_rep_ep_t *ep, int status, const char *error, const char *fmt, ...)
{
    ep->status = status;
    snprintf(ep->error, sizeof(ep->error), "%s", error);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ep->reason, sizeof(ep->reason), fmt, ap);
    va_end(ap);
}

void stt__rep_rfc1123(time_t t, char *out, size_t len)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

void stt__rep_iso8601(time_t t, stt_buf_t *out)
{
    struct tm tm;
    char s[32];
    gmtime_r(&t, &tm);
    strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%SZ", &tm);
    stt_buf_appends(out, s);
}
