/* The one route table: server, db and doc levels, as CouchDB's
 * chttpd_httpd_handlers. Routing works on raw path segments (split before
 * percent-decoding) so a doc id holding "%2F" stays one id. */
#include "src/http/http.h"
#include "src/common/err.h"
#include <string.h>

#define ALL_DOC (STT_M_GET | STT_M_HEAD | STT_M_PUT | STT_M_POST | STT_M_DELETE | STT_M_COPY)
#define GETS (STT_M_GET | STT_M_HEAD)

enum {
    NEED_DB = 1,
    SUBPATH = 2, /* takes segments after its name */
    /* access, as CouchDB's chttpd_auth_request (the default is a db member, or
     * anyone at server level) */
    A_ADMIN = 4,     /* server admin, checked before the db is opened */
    A_ALL_DBS = 8,   /* server admin while [chttpd] admin_only_all_dbs */
    A_DBADMIN = 16,  /* member, then db admin with 401 "You are not a server or db admin." */
    A_PUT_ADMIN = 32 /* member; writes (not GET/HEAD) need a db admin */
};

typedef struct {
    const char *name; /* first segment (server level) or second (db level) */
    unsigned methods;
    unsigned flags;
    stt_handler_fn fn;
    const char *allow; /* CouchDB's own Allow list for a 405, when it is not the mask's */
} route_t;

static const route_t server_routes[] = {
    {"_all_dbs", GETS, A_ALL_DBS, stt_h_all_dbs},
    {"_dbs_info", GETS | STT_M_POST, A_ALL_DBS, stt_h_dbs_info},
    {"_uuids", GETS, 0, stt_h_uuids, "GET"},
    {"_up", GETS, 0, stt_h_up},
    {"_session", GETS | STT_M_POST | STT_M_DELETE, 0, stt_h_session, "GET,HEAD,POST,DELETE"},
    {"_active_tasks", GETS, A_ADMIN, stt_h_view_active_tasks},
    {"_node", GETS | STT_M_PUT | STT_M_POST | STT_M_DELETE, SUBPATH, stt_h_node},
    {"_membership", GETS, A_ADMIN, stt_h_membership, "GET"},
    {"_db_updates", GETS, A_ADMIN, stt_h_db_updates, "GET"},
    {"_utils", GETS, SUBPATH, stt_h_utils, "GET,HEAD"},
    {"_replicate", GETS | STT_M_POST, 0, stt_h_replicate, "POST"},
    {"_scheduler", GETS, SUBPATH | A_ADMIN, stt_h_scheduler, "GET"},
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
    {"_revs_limit", GETS | STT_M_PUT, NEED_DB | A_PUT_ADMIN, stt_h_revs_limit, "PUT,GET"},
    {"_security", GETS | STT_M_PUT, NEED_DB | A_PUT_ADMIN, stt_h_security, "PUT,GET"},
    {"_compact", STT_M_POST, NEED_DB | A_DBADMIN, stt_h_compact},
    {"_view_cleanup", STT_M_POST, NEED_DB | A_DBADMIN, stt_h_view_cleanup},
    {"_temp_view", STT_M_POST, NEED_DB, stt_h_temp_view},
    {"_ensure_full_commit", STT_M_POST, NEED_DB, stt_h_ensure_full_commit},
    {"_purge", STT_M_POST, NEED_DB | A_ADMIN, stt_h_purge},
    {"_export", GETS, NEED_DB, stt_h_export, "GET,HEAD"},
    {"_find", STT_M_POST, NEED_DB, stt_h_find},
    {"_explain", STT_M_POST, NEED_DB, stt_h_explain},
    /* GET, POST on _index itself; DELETE _index/{ddoc}/json/{name}; POST
     * _index/_bulk_delete: the handler checks each path's own methods */
    {"_index", GETS | STT_M_POST | STT_M_DELETE, NEED_DB | A_PUT_ADMIN, stt_h_index},
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

static bool seg_is(h2o_iovec_t s, const char *lit);

/* _users and _replicator list their docs to server admins only (their docs hold
 * password hashes and replication credentials) */
static bool system_listing(stt_hreq_t *r)
{
    if (!r->dbname.len || r->nseg < 2) return false;
    bool users = seg_is(r->dbname, "_users");
    if (!users && !seg_is(r->dbname, "_replicator")) return false;
    h2o_iovec_t s1 = r->seg[1];
    if (seg_is(s1, "_all_docs") || seg_is(s1, "_changes")) return true;
    /* settee does not filter these per user: _users answers them to admins only */
    return users && (seg_is(s1, "_bulk_get") || seg_is(s1, "_design_docs") || seg_is(s1, "_local_docs"));
}

static bool allowed(stt_hreq_t *r, unsigned flags)
{
    if (flags & A_ALL_DBS) {
        stt_auth_settings_t st;
        stt_auth_settings(stt__server->auth, &st);
        return !st.admin_only_all_dbs || stt_require_server_admin(r);
    }
    if (((flags & A_ADMIN) || system_listing(r)) && !stt_require_server_admin(r)) return false;
    if (!(flags & NEED_DB)) return true;
    if (!open_db(r)) return false;
    if (!stt__require_member(r)) return false;
    if (!stt__access_route_ok(r)) return false;
    if ((flags & A_DBADMIN) && !stt_security_is_db_admin(stt__db_security(r), &r->user)) {
        stt_reply_error_raw(r, 401, "unauthorized", "You are not a server or db admin.");
        return false;
    }
    if ((flags & A_PUT_ADMIN) && !(r->method & GETS) && !stt__require_db_admin(r)) return false;
    return true;
}

static void run(stt_hreq_t *r, const route_t *rt)
{
    if (!(r->method & rt->methods)) {
        method_not_allowed(r, rt->methods, rt->allow);
        return;
    }
    if (!allowed(r, rt->flags)) return;
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

void stt__peruser_poll(void); /* h_auth.c */

void stt_route(stt_hreq_t *r)
{
    if (r->method == STT_M_OPTIONS && stt__server->cfg->cors_enabled && stt_header(r, "origin")) {
        stt_reply_bytes(r, 200, NULL, NULL, 0, false, NULL);
        return;
    }
    if (stt__authenticate(r) == 1) stt__route_authenticated(r);
}

void stt__route_authenticated(stt_hreq_t *r)
{
    stt__peruser_poll();
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
        if (r->nseg > 1 && r->seg[1].len && !(rt->flags & SUBPATH)) {
            stt_reply_error(r, STT_E_NOT_FOUND, NULL);
            return;
        }
        run(r, rt);
        return;
    }
    r->dbname = r->seg[0];
    /* other names under '_' are server-level paths: admins only, as CouchDB */
    if (r->seg[0].len && r->seg[0].base[0] == '_' && !seg_is(r->seg[0], "_users") &&
        !seg_is(r->seg[0], "_replicator") && !stt_require_server_admin(r))
        return;
    if (r->nseg == 1 || (r->nseg == 2 && r->seg[1].len == 0)) {
        static const route_t db = {"", GETS | STT_M_PUT | STT_M_DELETE | STT_M_POST, 0, stt_h_db,
                                   "DELETE,GET,HEAD,POST"};
        if (!(r->method & db.methods)) {
            run(r, &db);
            return;
        }
        if (r->method & (STT_M_PUT | STT_M_DELETE)) {
            if (stt_require_server_admin(r)) stt_h_db(r);
            return;
        }
        /* a db that does not open is h_db's to answer (illegal names) */
        if (stt_db_open(stt__server->store, r->dbname.base, r->dbname.len, &r->db) == 0 && !stt__require_member(r))
            return;
        stt_h_db(r);
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
        if (!local && r->nseg > 3 && seg_is(r->seg[3], "_view") && r->nseg >= 5) {
            static const route_t view = {"", GETS | STT_M_POST, NEED_DB, stt_h_view, "GET,POST,HEAD"};
            static const route_t queries = {"", STT_M_POST, NEED_DB, stt_h_view, "POST"};
            run(r, r->nseg == 6 && seg_is(r->seg[5], "queries") ? &queries : &view);
            return;
        }
        if (!local && r->nseg == 4 && seg_is(r->seg[3], "_info")) {
            static const route_t info = {"", GETS, NEED_DB, stt_h_view_info, "GET"};
            run(r, &info);
            return;
        }
        if (!local && r->nseg > 3 &&
            (seg_is(r->seg[3], "_update") || seg_is(r->seg[3], "_show") || seg_is(r->seg[3], "_list") ||
             seg_is(r->seg[3], "_rewrite"))) {
            static const route_t fn = {"", ALL_DOC, NEED_DB, stt_h_design_func};
            run(r, &fn);
            return;
        }
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
    if (seg_is(s1, "_compact") && r->nseg == 3 && r->seg[2].len) {
        static const route_t vc = {"", STT_M_POST, NEED_DB | A_DBADMIN, stt_h_view_compact};
        run(r, &vc);
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
