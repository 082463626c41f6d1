/* Server-level endpoints: /, /_up, /_uuids, /_all_dbs, /_dbs_info, /_session,
 * /_active_tasks. */
#include "src/http/http.h"
#include "src/common/codec.h"
#include "src/common/err.h"
#include <stdlib.h>
#include <string.h>

#define STT_VERSION "3.4.3"
#define UUIDS_MAX 1000

void stt_h_root(stt_hreq_t *r)
{
    stt_buf_t b = STT_BUF_INIT;
    stt_buf_appends(&b, "{\"couchdb\":\"Welcome\",\"version\":\"" STT_VERSION "\",\"git_sha\":\"settee\",\"uuid\":\"");
    stt_buf_appends(&b, stt__server->uuid);
    stt_buf_appends(&b, "\",\"features\":[],\"vendor\":{\"name\":\"settee\",\"version\":\"0.1.0\"}}");
    stt_reply_json(r, 200, &b);
}

/* A load balancer's health check: [couchdb] maintenance_mode "true" or "nolb"
 * takes the node out with a 404, as chttpd_misc:handle_up_req (live: read on
 * each request). */
void stt_h_up(stt_hreq_t *r)
{
    stt_buf_t b = STT_BUF_INIT;
    char *mode = stt_ini_get(stt__server->ini, "couchdb", "maintenance_mode");
    if (mode && (!strcmp(mode, "true") || !strcmp(mode, "nolb"))) {
        stt_buf_appendf(&b, "{\"status\":\"%s\"}", !strcmp(mode, "true") ? "maintenance_mode" : "nolb");
        free(mode);
        stt_reply_json(r, 404, &b);
        return;
    }
    free(mode);
    stt_buf_appends(&b, "{\"status\":\"ok\",\"seeds\":{}}");
    stt_reply_json(r, 200, &b);
}

void stt_h_uuids(stt_hreq_t *r)
{
    uint64_t count = 1;
    const stt_qparam_t *cq = stt_q_get(r, "count");
    if (cq) {
        char *end;
        long long v = strtoll(cq->val, &end, 10);
        if (cq->vallen == 0 || *end || v < 0) {
            stt_reply_error_raw(r, 400, "bad_request", "count must be a positive integer");
            return;
        }
        count = (uint64_t)v;
    }
    if (count > UUIDS_MAX) {
        stt_reply_error_raw(r, 400, "bad_request", "count parameter too large");
        return;
    }
    stt_buf_t b = STT_BUF_INIT;
    stt_buf_appends(&b, "{\"uuids\":[");
    for (uint64_t i = 0; i < count; i++) {
        char u[33];
        stt_uuid_random(u);
        stt_buf_appends(&b, i ? ",\"" : "\"");
        stt_buf_append(&b, u, 32);
        stt_buf_appendc(&b, '"');
    }
    stt_buf_appends(&b, "]}");
    char etag[40];
    stt_uuid_random(etag + 1);
    etag[0] = '"';
    etag[33] = '"';
    etag[34] = '\0';
    const char *h[] = {"etag", etag, NULL};
    /* uuids must never be cached: no-cache replaces must-revalidate */
    size_t len;
    stt_buf_appendc(&b, '\n');
    char *data = stt_buf_release(&b, &len);
    const char *hs[] = {"cache-control", "no-cache", "pragma", "no-cache", h[0], h[1], NULL};
    stt_reply_bytes(r, 200, "application/json", data, len, true, hs);
}

/* ------------------------------------------------------------------ _all_dbs */

typedef struct {
    stt_buf_t *b;
    const stt_json_t *startkey, *endkey;
    uint64_t limit, skip, n, seen;
    bool descending;
    /* descending needs the whole list: collected then emitted backwards */
    h2o_iovec_t *names;
    size_t nnames, cap;
    stt_arena_t *arena;
} alldbs_t;

static int cmp_name(const char *a, size_t al, const stt_json_t *k)
{
    size_t m = al < k->len ? al : k->len;
    int c = memcmp(a, k->u.s, m);
    return c ? c : al < k->len ? -1 : al > k->len ? 1 : 0;
}

static int collect_db(void *ctx, const char *name, size_t len)
{
    alldbs_t *c = ctx;
    if (c->nnames == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        h2o_iovec_t *n = stt_arena_alloc(c->arena, c->cap * sizeof(*n));
        if (c->nnames) memcpy(n, c->names, c->nnames * sizeof(*n));
        c->names = n;
    }
    c->names[c->nnames++] = h2o_iovec_init(stt_arena_strndup(c->arena, name, len), len);
    return 0;
}

static int get_key(stt_hreq_t *r, const char *a, const char *b, const stt_json_t **out)
{
    if (stt_q_json(r, a, out) != 0) return -1;
    if (!*out && stt_q_json(r, b, out) != 0) return -1;
    if (*out && (*out)->type != STT_JSON_STRING) *out = NULL;
    return 0;
}

/* The db names _all_dbs would list, after startkey/endkey/limit/skip/descending.
 * 0, or -1 after replying 400. */
static int list_dbs(stt_hreq_t *r, h2o_iovec_t **out, size_t *nout)
{
    alldbs_t c = {.arena = &r->arena, .limit = UINT64_MAX};
    if (get_key(r, "startkey", "start_key", &c.startkey) || get_key(r, "endkey", "end_key", &c.endkey) ||
        stt_q_uint(r, "limit", &c.limit) || stt_q_uint(r, "skip", &c.skip) ||
        stt_q_bool(r, "descending", &c.descending))
        return -1;
    stt_db_list(stt__server->store, collect_db, &c);
    h2o_iovec_t *res = stt_arena_alloc(&r->arena, (c.nnames ? c.nnames : 1) * sizeof(*res));
    size_t n = 0;
    uint64_t skipped = 0;
    for (size_t k = 0; k < c.nnames && n < c.limit; k++) {
        h2o_iovec_t nm = c.names[c.descending ? c.nnames - 1 - k : k];
        if (c.startkey) {
            int cmp = cmp_name(nm.base, nm.len, c.startkey);
            if (c.descending ? cmp > 0 : cmp < 0) continue;
        }
        if (c.endkey) {
            int cmp = cmp_name(nm.base, nm.len, c.endkey);
            if (c.descending ? cmp < 0 : cmp > 0) break;
        }
        if (skipped < c.skip) {
            skipped++;
            continue;
        }
        res[n++] = nm;
    }
    *out = res;
    *nout = n;
    return 0;
}

void stt_h_all_dbs(stt_hreq_t *r)
{
    h2o_iovec_t *names;
    size_t n;
    if (list_dbs(r, &names, &n) != 0) return;
    stt_buf_t b = STT_BUF_INIT;
    stt_buf_appendc(&b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i) stt_buf_appendc(&b, ',');
        stt_json_write_str(&b, names[i].base, names[i].len);
    }
    stt_buf_appendc(&b, ']');
    /* CouchDB tags the list so a poller can ask If-None-Match */
    unsigned char md5[16];
    stt_md5(b.base, b.len, md5);
    stt_buf_t etag = STT_BUF_INIT;
    stt_buf_appendc(&etag, '"');
    stt_hex_encode(&etag, md5, sizeof(md5));
    stt_buf_appendc(&etag, '"');
    const h2o_iovec_t *inm = stt_header(r, "if-none-match");
    const char *h[] = {"etag", etag.base, NULL};
    if (inm && inm->len == etag.len && memcmp(inm->base, etag.base, etag.len) == 0) {
        stt_buf_free(&b);
        stt_reply_bytes(r, 304, NULL, NULL, 0, false, h);
    } else {
        stt_reply_json_h(r, 200, &b, h);
    }
    stt_buf_free(&etag);
}

/* ------------------------------------------------------------------ db info */

void stt_db_info_json(stt_db_t *db, stt_buf_t *b); /* h_db.c */

void stt_h_dbs_info(stt_hreq_t *r)
{
    stt_buf_t b = STT_BUF_INIT;
    stt_buf_appendc(&b, '[');
    if (r->method == STT_M_POST) {
        stt_json_t body;
        if (stt_body_json(r, &body, "Request body must be a JSON object") != 0) {
            stt_buf_free(&b);
            return;
        }
        const stt_json_t *keys = stt_json_get(&body, "keys");
        if (!keys || keys->type != STT_JSON_ARRAY) {
            stt_buf_free(&b);
            stt_reply_error_raw(r, 400, "bad_request", "`keys` member must exist.");
            return;
        }
        for (uint32_t i = 0; i < keys->len; i++) {
            const stt_json_t *k = &keys->u.items[i];
            if (i) stt_buf_appendc(&b, ',');
            stt_buf_appends(&b, "{\"key\":");
            stt_json_write(&b, k);
            stt_db_t *db;
            if (k->type == STT_JSON_STRING && stt_db_open(stt__server->store, k->u.s, k->len, &db) == 0) {
                stt_buf_appends(&b, ",\"info\":");
                stt_db_info_json(db, &b);
                stt_db_release(db);
            } else {
                stt_buf_appends(&b, ",\"error\":\"not_found\"");
            }
            stt_buf_appendc(&b, '}');
        }
    } else {
        h2o_iovec_t *names;
        size_t n;
        if (list_dbs(r, &names, &n) != 0) {
            stt_buf_free(&b);
            return;
        }
        for (size_t i = 0; i < n; i++) {
            stt_db_t *db;
            if (stt_db_open(stt__server->store, names[i].base, names[i].len, &db) != 0) continue;
            if (b.len > 1) stt_buf_appendc(&b, ',');
            stt_buf_appends(&b, "{\"key\":");
            stt_json_write_str(&b, names[i].base, names[i].len);
            stt_buf_appends(&b, ",\"info\":");
            stt_db_info_json(db, &b);
            stt_buf_appendc(&b, '}');
            stt_db_release(db);
        }
    }
    stt_buf_appendc(&b, ']');
    stt_reply_json(r, 200, &b);
}

void stt_h_active_tasks(stt_hreq_t *r)
{
    stt_buf_t b = STT_BUF_INIT;
    stt_buf_appends(&b, "[]");
    stt_reply_json(r, 200, &b);
}
