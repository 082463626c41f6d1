/* The one route table: server, db and doc levels, as CouchDB's
 * chttpd_httpd_handlers. Routing works on raw path segments (split before
 * percent-decoding) so a doc id holding "%2F" stays one id. */
#include "src/http/http.h"
#include "src/common/err.h"
#include <string.h>

#define ALL_DOC (STT_M_GET | STT_M_HEAD | STT_M_PUT | STT_M_POST | STT_M_DELETE | STT_M_COPY)
#define GETS (STT_M_GET | STT_M_HEAD)

enum { NEED_DB = 1 };

typedef struct {
    const char *name; /* first segment (server level) or second (db level) */
    unsigned methods;
    unsigned flags;
    stt_handler_fn fn;
    const char *allow; /* CouchDB's own Allow list for a 405, when it is not the mask's */
} route_t;

static const route_t server_routes[] = {
    {"_all_dbs", GETS, 0, stt_h_all_dbs},
    {"_dbs_info", GETS | STT_M_POST, 0, stt_h_dbs_info},
    {"_uuids", GETS, 0, stt_h_uuids, "GET"},
    {"_up", GETS, 0, stt_h_up},
    {"_session", GETS | STT_M_POST | STT_M_DELETE, 0, stt_h_session},
    {"_active_tasks", GETS, 0, stt_h_active_tasks},
    {NULL, 0, 0, NULL},
};

static const route_t db_routes[] = {
    {"_all_docs", GETS | STT_M_POST, NEED_DB, stt_h_all_docs},
    {"_design_docs", GETS | STT_M_POST, NEED_DB, stt_h_design_docs},
    {"_local_docs", GETS | STT_M_POST, NEED_DB, stt_h_local_docs},
    {"_bulk_docs", STT_M_POST, NEED_DB, stt_h_bulk_docs},
    {"_bulk_get", STT_M_POST, NEED_DB, stt_h_bulk_get},
    {"_changes", GETS | STT_M_POST, NEED_DB, stt_h_changes},
    {"_revs_diff", STT_M_POST, NEED_DB, stt_h_revs_diff},
    {"_revs_limit", GETS | STT_M_PUT, NEED_DB, stt_h_revs_limit, "PUT,GET"},
    {"_security", GETS | STT_M_PUT, NEED_DB, stt_h_security, "PUT,GET"},
    {"_compact", STT_M_POST, NEED_DB, stt_h_compact},
    {"_view_cleanup", STT_M_POST, NEED_DB, stt_h_compact},
    {"_ensure_full_commit", STT_M_POST, NEED_DB, stt_h_ensure_full_commit},
    {"_purge", STT_M_POST, NEED_DB, stt_h_purge},
    {"_find", STT_M_POST, NEED_DB, stt_h_find},
    {"_explain", STT_M_POST, NEED_DB, stt_h_explain},
    /* GET, POST on _index itself; DELETE _index/{ddoc}/json/{name}; POST
     * _index/_bulk_delete: the handler checks each path's own methods */
    {"_index", GETS | STT_M_POST | STT_M_DELETE, NEED_DB, stt_h_index},
    {NULL, 0, 0, NULL},
};

static void method_not_allowed(stt_hreq_t *r, unsigned methods, const char *given)
{
    static const struct {
        unsigned m;
        const char *name;
    } order[] = {{STT_M_DELETE, "DELETE"}, {STT_M_GET, "GET"}, {STT_M_HEAD, "HEAD"},
                 {STT_M_POST, "POST"},     {STT_M_PUT, "PUT"}, {STT_M_COPY, "COPY"}};
    char allow[64] = "";
    if (given) snprintf(allow, sizeof(allow), "%s", given);
    for (size_t i = 0; !given && i < sizeof(order) / sizeof(order[0]); i++) {
        if (!(methods & order[i].m)) continue;
        if (allow[0]) strcat(allow, ",");
        strcat(allow, order[i].name);
    }
    char reason[96];
    snprintf(reason, sizeof(reason), "Only %s allowed", allow);
    stt_buf_t b = STT_BUF_INIT;
    stt_buf_appends(&b, "{\"error\":\"method_not_allowed\",\"reason\":");
    stt_json_write_cstr(&b, reason);
    stt_buf_appendc(&b, '}');
    const char *h[] = {"allow", allow, NULL};
    stt_reply_json_h(r, 405, &b, h);
}

void stt_reply_method_not_allowed(stt_hreq_t *r, const char *allow)
{
    method_not_allowed(r, 0, allow);
}

static const route_t *find(const route_t *table, h2o_iovec_t name)
{
    for (const route_t *rt = table; rt->name; rt++)
        if (strlen(rt->name) == name.len && memcmp(rt->name, name.base, name.len) == 0) return rt;
    return NULL;
}

static bool open_db(stt_hreq_t *r)
{
    int rc = stt_db_open(stt__server->store, r->dbname.base, r->dbname.len, &r->db);
    if (rc) {
        stt_reply_error(r, rc, NULL);
        return false;
    }
    return true;
}

static void run(stt_hreq_t *r, const route_t *rt)
{
    if (!(r->method & rt->methods)) {
        method_not_allowed(r, rt->methods, rt->allow);
        return;
    }
    if ((rt->flags & NEED_DB) && !open_db(r)) return;
    rt->fn(r);
}

/* Joins segments [from, nseg) with '/' into one name (attachment names may hold
 * slashes). */
static h2o_iovec_t join(stt_hreq_t *r, size_t from, const char *prefix)
{
    size_t plen = prefix ? strlen(prefix) : 0, len = plen;
    for (size_t i = from; i < r->nseg; i++)
        len += r->seg[i].len + 1;
    char *p = stt_arena_alloc(&r->arena, len + 1), *o = p;
    if (plen) {
        memcpy(o, prefix, plen);
        o += plen;
    }
    for (size_t i = from; i < r->nseg; i++) {
        if (i > from) *o++ = '/';
        memcpy(o, r->seg[i].base, r->seg[i].len);
        o += r->seg[i].len;
    }
    *o = '\0';
    return h2o_iovec_init(p, (size_t)(o - p));
}

static bool seg_is(h2o_iovec_t s, const char *lit)
{
    return s.len == strlen(lit) && memcmp(s.base, lit, s.len) == 0;
}

void stt_route(stt_hreq_t *r)
{
    if (r->method == STT_M_OPTIONS && stt__server->cfg->cors_enabled && stt_header(r, "origin")) {
        stt_reply_bytes(r, 200, NULL, NULL, 0, false, NULL);
        return;
    }
    if (r->nseg == 0 || (r->nseg == 1 && r->seg[0].len == 0)) {
        if (!(r->method & GETS)) {
            method_not_allowed(r, GETS, NULL);
            return;
        }
        stt_h_root(r);
        return;
    }
    const route_t *rt;
    if (r->seg[0].len && r->seg[0].base[0] == '_' && (rt = find(server_routes, r->seg[0])) != NULL) {
        if (r->nseg > 1 && r->seg[1].len) {
            stt_reply_error(r, STT_E_NOT_FOUND, NULL);
            return;
        }
        run(r, rt);
        return;
    }
    r->dbname = r->seg[0];
    if (r->nseg == 1 || (r->nseg == 2 && r->seg[1].len == 0)) {
        static const route_t db = {"", GETS | STT_M_PUT | STT_M_DELETE | STT_M_POST, 0, stt_h_db,
                                   "DELETE,GET,HEAD,POST"};
        run(r, &db);
        return;
    }
    h2o_iovec_t s1 = r->seg[1];
    if (seg_is(s1, "_design") || seg_is(s1, "_local")) {
        bool local = seg_is(s1, "_local");
        if (r->nseg < 3 || r->seg[2].len == 0) {
            if (local)
                stt_reply_error_raw(r, 400, "bad_request", "Invalid _local document id.");
            else
                stt_reply_error(r, STT_E_NOT_FOUND, NULL);
            return;
        }
        char *id = stt_arena_alloc(&r->arena, s1.len + 1 + r->seg[2].len + 1);
        memcpy(id, s1.base, s1.len);
        id[s1.len] = '/';
        memcpy(id + s1.len + 1, r->seg[2].base, r->seg[2].len);
        id[s1.len + 1 + r->seg[2].len] = '\0';
        r->docid = h2o_iovec_init(id, s1.len + 1 + r->seg[2].len);
        if (r->nseg > 3) {
            if (local) {
                stt_reply_error_raw(r, 400, "bad_request", "_local documents do not accept attachments.");
                return;
            }
            r->attname = join(r, 3, NULL);
            static const route_t att = {"", GETS | STT_M_PUT | STT_M_DELETE, NEED_DB, stt_h_attachment};
            run(r, &att);
            return;
        }
        static const route_t doc = {"", ALL_DOC, NEED_DB, stt_h_doc};
        static const route_t loc = {"", GETS | STT_M_PUT | STT_M_DELETE | STT_M_COPY, NEED_DB, stt_h_local};
        run(r, local ? &loc : &doc);
        return;
    }
    if (s1.len && s1.base[0] == '_' && (rt = find(db_routes, s1)) != NULL) {
        run(r, rt);
        return;
    }
    r->docid = s1;
    if (s1.len > 7 && memcmp(s1.base, "_local/", 7) == 0 && r->nseg == 2) {
        static const route_t loc = {"", GETS | STT_M_PUT | STT_M_DELETE | STT_M_COPY, NEED_DB, stt_h_local};
        run(r, &loc);
        return;
    }
    if (r->nseg > 2) {
        r->attname = join(r, 2, NULL);
        static const route_t att = {"", GETS | STT_M_PUT | STT_M_DELETE, NEED_DB, stt_h_attachment};
        run(r, &att);
        return;
    }
    static const route_t doc = {"", ALL_DOC, NEED_DB, stt_h_doc};
    run(r, &doc);
}
