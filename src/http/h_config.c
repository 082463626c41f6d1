/* /_node/{node}/...: CouchDB 3.4's node config API over the live ini store
 * (stt__server->ini), and _restart.
 *
 *     GET    /_node/_local                         {"name": node}
 *     GET    /_node/{node}/_config                 every section: {"s":{"k":"v"}}
 *     GET    /_node/{node}/_config/{s}             one section, {} when missing
 *     POST   /_node/{node}/_config/_reload         drops what was not persisted
 *     GET    /_node/{node}/_config/{s}/{k}         the value, a JSON string
 *     PUT    /_node/{node}/_config/{s}/{k}         body a JSON string; replies the old value
 *     DELETE /_node/{node}/_config/{s}/{k}         replies the removed value
 *     POST   /_node/{node}/_restart                stt_auth_restart()
 *
 * As chttpd_node: every path needs a server admin; {node} is "_local" or
 * STT_NODE_NAME, and is checked only once the method fits (a wrong method is a 405
 * whatever the node); "X-Couch-Persist: false" keeps a change in memory; PUT and
 * DELETE refuse the sections CouchDB blacklists; a plaintext [admins] value is
 * hashed before it is stored, so the file never holds it.
 *
 * Not here: _stats, _system, _prometheus (h_stats.c), _versions, _smoosh (404), what
 * a setting means (each user reads the store). */
#include "src/http/http.h"
#include "security/admins.h"
#include "security/crypto.h"
#include "src/common/err.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The path without its empty segments (CouchDB's string:tokens drops them). */
typedef struct {
    const char *part[STT_MAX_SEGS];
    size_t len[STT_MAX_SEGS];
    size_t n;
} path_t;

static void split(stt_hreq_t *r, path_t *p)
{
    p->n = 0;
    for (size_t i = 0; i < r->nseg; i++) {
        if (!r->seg[i].len) continue;
        p->part[p->n] = stt_arena_strndup(&r->arena, r->seg[i].base, r->seg[i].len);
        p->len[p->n++] = r->seg[i].len;
    }
}

static bool is(const path_t *p, size_t i, const char *lit)
{
    return i < p->n && !strcmp(p->part[i], lit);
}

/* chttpd_node's call_node: 404 for a node that is not this one. */
static bool node_ok(stt_hreq_t *r, const char *node)
{
    if (!strcmp(node, "_local") || !strcmp(node, STT_NODE_NAME)) return true;
    stt_buf_t reason = STT_BUF_INIT;
    stt_buf_appendf(&reason, "no such node: %s", node);
    stt_reply_error_raw(r, 404, "not_found", reason.base);
    stt_buf_free(&reason);
    return false;
}

static void reply_string(stt_hreq_t *r, const char *s)
{
    stt_buf_t b = STT_BUF_INIT;
    stt_json_write_cstr(&b, s ? s : "");
    stt_reply_json(r, 200, &b);
}

static void reply_unknown_value(stt_hreq_t *r)
{
    stt_reply_error_raw(r, 404, "not_found", "unknown_config_value");
}

/* A set or delete the store refused: CouchDB answers {bad_request, Reason} when
 * config:set or config:delete fail. */
static void reply_store_error(stt_hreq_t *r, int rc)
{
    stt_buf_t reason = STT_BUF_INIT;
    if (rc == -EINVAL)
        stt_buf_appends(&reason, "the config file cannot hold this section, key or value");
    else
        stt_buf_appendf(&reason, "cannot write the config file: %s", strerror(-rc));
    stt_reply_error_raw(r, 400, "bad_request", reason.base);
    stt_buf_free(&reason);
}

/* couch_util:check_config_blacklist: sections naming code to run. */
static bool writable_section(stt_hreq_t *r, const char *section)
{
    static const char *const blacklist[] = {
        "daemons",
        "external",
        "httpd_design_handlers",
        "httpd_db_handlers",
        "httpd_global_handlers",
        "native_query_servers",
        "os_daemons",
        "query_servers",
        "feature_flags",
    };
    for (size_t i = 0; i < sizeof blacklist / sizeof blacklist[0]; i++)
        if (!strcmp(section, blacklist[i])) {
            stt_reply_error_raw(r, 403, "forbidden", "Config section blacklisted for modification over HTTP API.");
            return false;
        }
    return true;
}

static bool persist_wanted(stt_hreq_t *r)
{
    const h2o_iovec_t *h = stt_header(r, "x-couch-persist");
    return !(h && h->len == 5 && !memcmp(h->base, "false", 5));
}

/* ---------------------------------------------------------------------------------
 * Reading: all sections, one section, one key
 * --------------------------------------------------------------------------------- */

/* A copy of every key, taken under the store's read lock and grouped afterwards. */
typedef struct {
    const char *section, *key, *value;
} kv_t;

typedef struct {
    stt_arena_t *arena;
    kv_t *kv;
    size_t n, cap;
} kvs_t;

static void collect(void *ctx, const char *section, const char *key, const char *value)
{
    kvs_t *c = ctx;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        kv_t *kv = stt_arena_alloc(c->arena, c->cap * sizeof *kv);
        if (c->n) memcpy(kv, c->kv, c->n * sizeof *kv);
        c->kv = kv;
    }
    c->kv[c->n++] =
        (kv_t){stt_arena_strndup(c->arena, section, strlen(section)), stt_arena_strndup(c->arena, key, strlen(key)),
               stt_arena_strndup(c->arena, value, strlen(value))};
}

static void write_members(stt_buf_t *b, const kvs_t *c, const char *section, bool *done)
{
    bool first = true;
    stt_buf_appendc(b, '{');
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->kv[i].section, section)) continue;
        if (done) done[i] = true;
        if (!first) stt_buf_appendc(b, ',');
        first = false;
        stt_json_write_cstr(b, c->kv[i].key);
        stt_buf_appendc(b, ':');
        stt_json_write_cstr(b, c->kv[i].value);
    }
    stt_buf_appendc(b, '}');
}

static void get_config(stt_hreq_t *r, const char *section)
{
    kvs_t c = {.arena = &r->arena};
    stt_buf_t b = STT_BUF_INIT;

    stt_ini_each(stt__server->ini, section, collect, &c);
    if (section) {
        write_members(&b, &c, section, NULL);
    } else {
        /* sections in the order their first key was set */
        bool *done = stt_arena_alloc(&r->arena, c.n + 1);
        memset(done, 0, c.n + 1);
        stt_buf_appendc(&b, '{');
        for (size_t i = 0; i < c.n; i++) {
            if (done[i]) continue;
            if (b.len > 1) stt_buf_appendc(&b, ',');
            stt_json_write_cstr(&b, c.kv[i].section);
            stt_buf_appendc(&b, ':');
            write_members(&b, &c, c.kv[i].section, done);
        }
        stt_buf_appendc(&b, '}');
    }
    stt_reply_json(r, 200, &b);
}

static void get_key(stt_hreq_t *r, const char *section, const char *key)
{
    char *v = stt_ini_get(stt__server->ini, section, key);
    if (!v) {
        reply_unknown_value(r);
        return;
    }
    reply_string(r, v);
    free(v);
}

/* ---------------------------------------------------------------------------------
 * Writing: PUT and DELETE of a key
 * --------------------------------------------------------------------------------- */

/* CouchDB's couch_util:trim: ASCII whitespace at both ends (its Latin-1 extras,
 * 0x85 and 0xA0, would cut UTF-8 sequences and are left alone). */
static const char *trim(const char *s, size_t *len)
{
    while (*len && strchr(" \t\n\v\f\r", *s))
        s++, (*len)--;
    while (*len && strchr(" \t\n\v\f\r", s[*len - 1]))
        (*len)--;
    return s;
}

static void put_key(stt_hreq_t *r, const char *node, const char *section, const char *key)
{
    h2o_iovec_t e = r->req->entity;
    stt_json_t body;
    stt_buf_t hashed = STT_BUF_INIT;
    char *old = NULL;

    if (!writable_section(r, section)) return;
    if (!e.base || !e.len || stt_json_parse(&r->arena, e.base, e.len, &body, NULL, 0)) {
        stt_reply_error(r, STT_E_BAD_JSON, NULL);
        return;
    }
    if (body.type != STT_JSON_STRING) {
        stt_reply_error_raw(r, 400, "bad_request", "a JSON string expected");
        return;
    }
    if (!node_ok(r, node)) return;
    size_t len = body.len;
    const char *v = trim(body.u.s, &len);
    if (memchr(v, '\0', len)) {
        /* the store keeps C strings */
        stt_reply_error_raw(r, 400, "bad_request", "the config file cannot hold this section, key or value");
        return;
    }
    char *value = stt_arena_strndup(&r->arena, v, len);
    /* CouchDB hashes a new admin's password right after storing it; settee does
     * it before, so that the plaintext never reaches memory or the file */
    if (!strcmp(section, "admins") && !stt_pw_is_hashed(value)) {
        stt_pw_hash_admin(value, len, STT_PBKDF2_ITERATIONS, &hashed);
        value = hashed.base;
    }
    int rc = stt_ini_set(stt__server->ini, section, key, value, persist_wanted(r), &old);
    if (rc)
        reply_store_error(r, rc);
    else
        reply_string(r, old);
    free(old);
    stt_buf_free(&hashed);
}

static void delete_key(stt_hreq_t *r, const char *node, const char *section, const char *key)
{
    char *old = NULL;

    if (!writable_section(r, section) || !node_ok(r, node)) return;
    int rc = stt_ini_delete(stt__server->ini, section, key, persist_wanted(r), &old);
    if (rc == STT_E_NOT_FOUND)
        reply_unknown_value(r);
    else if (rc)
        reply_store_error(r, rc);
    else
        reply_string(r, old);
    free(old);
}

/* ---------------------------------------------------------------------------------
 * _reload
 * --------------------------------------------------------------------------------- */

/* Makes the store match the file again: keys set without persisting are dropped
 * or get the file's value back. Without a file there is nothing to re-read. An
 * [admins] value the file holds in plaintext (edited by hand) is hashed and
 * written back, as CouchDB does after a reload. */
static void reload(stt_hreq_t *r)
{
    stt_ini_t *ini = stt__server->ini, *disk;
    const char *path = stt_ini_path(ini);
    kvs_t now = {.arena = &r->arena}, want = {.arena = &r->arena};
    char err[512];

    if (!path) {
        stt_reply_ok(r, 200);
        return;
    }
    if (stt_ini_open(path, &disk, err, sizeof err)) {
        stt_reply_error_raw(r, 400, "bad_request", err);
        return;
    }
    stt_ini_each(ini, NULL, collect, &now);
    stt_ini_each(disk, NULL, collect, &want);
    stt_ini_free(disk);

    for (size_t i = 0; i < now.n; i++) {
        bool keep = false;
        for (size_t j = 0; j < want.n && !keep; j++)
            keep = !strcmp(now.kv[i].section, want.kv[j].section) && !strcmp(now.kv[i].key, want.kv[j].key);
        if (!keep) stt_ini_delete(ini, now.kv[i].section, now.kv[i].key, false, NULL);
    }
    for (size_t j = 0; j < want.n; j++) {
        const kv_t *w = &want.kv[j];
        const char *value = w->value;
        stt_buf_t hashed = STT_BUF_INIT;
        if (!strcmp(w->section, "admins") && !stt_pw_is_hashed(value)) {
            stt_pw_hash_admin(value, strlen(value), STT_PBKDF2_ITERATIONS, &hashed);
            value = hashed.base;
        }
        char *v = stt_ini_get(ini, w->section, w->key);
        /* a hash made here goes back to the file; if that fails it is kept in memory */
        if ((!v || strcmp(v, value)) && (!hashed.base || stt_ini_set(ini, w->section, w->key, value, true, NULL)))
            stt_ini_set(ini, w->section, w->key, value, false, NULL);
        free(v);
        stt_buf_free(&hashed);
    }
    stt_security_memory_settings(ini);
    stt_reply_ok(r, 200);
}

/* ---------------------------------------------------------------------------------
 * Dispatch
 * --------------------------------------------------------------------------------- */

static void config(stt_hreq_t *r, const path_t *p)
{
    const char *node = p->part[1];
    int method = r->method == STT_M_HEAD ? STT_M_GET : r->method; /* as chttpd */

    switch (p->n) {
    case 3: /* _config */
        if (method != STT_M_GET) {
            stt_reply_method_not_allowed(r, "GET");
            return;
        }
        if (node_ok(r, node)) get_config(r, NULL);
        return;
    case 4: /* _config/_reload, _config/{section} */
        if (is(p, 3, "_reload")) {
            if (method != STT_M_POST)
                stt_reply_method_not_allowed(r, "POST");
            else if (node_ok(r, node))
                reload(r);
            return;
        }
        if (method != STT_M_GET) {
            stt_reply_method_not_allowed(r, "GET");
            return;
        }
        if (node_ok(r, node)) get_config(r, p->part[3]);
        return;
    case 5: /* _config/{section}/{key} */
        if (method == STT_M_GET) {
            if (node_ok(r, node)) get_key(r, p->part[3], p->part[4]);
        } else if (method == STT_M_PUT) {
            put_key(r, node, p->part[3], p->part[4]);
        } else if (method == STT_M_DELETE) {
            delete_key(r, node, p->part[3], p->part[4]);
        } else {
            stt_reply_method_not_allowed(r, "GET,PUT,DELETE");
        }
        return;
    default:
        stt_reply_error(r, STT_E_NOT_FOUND, NULL);
    }
}

void stt_h_node(stt_hreq_t *r)
{
    path_t p;

    split(r, &p);
    /* these have their own access rule (admin or the _metrics role) */
    if (stt__node_metrics(r, p.part, p.n)) return;
    if (!stt_require_server_admin(r)) return;
    if (p.n < 2) {
        stt_reply_error_raw(r, 400, "bad_request", "Incomplete path to _node request");
        return;
    }
    if (p.n == 2) {
        if (!node_ok(r, p.part[1])) return;
        stt_buf_t b = STT_BUF_INIT;
        stt_buf_appends(&b, "{\"name\":\"" STT_NODE_NAME "\"}");
        stt_reply_json(r, 200, &b);
        return;
    }
    if (is(&p, 2, "_config")) {
        config(r, &p);
        return;
    }
    if (is(&p, 2, "_backup") && p.n == 3) {
        if (r->method != STT_M_GET)
            stt_reply_method_not_allowed(r, "GET");
        else if (node_ok(r, p.part[1]))
            stt_h_backup(r);
        return;
    }
    if (is(&p, 2, "_restart") && p.n == 3) {
        if (r->method != STT_M_POST)
            stt_reply_method_not_allowed(r, "POST");
        else if (node_ok(r, p.part[1])) {
            stt_auth_restart();
            stt_reply_ok(r, 200);
        }
        return;
    }
    stt_reply_error(r, STT_E_NOT_FOUND, NULL);
}
