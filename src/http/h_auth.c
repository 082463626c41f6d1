/* The HTTP side of security: reads what authentication needs from the request,
 * answers its failures, checks routes' access levels, _session, and the write
 * refusals that CouchDB makes before a doc reaches the store (design docs by
 * non-admins, the _users rules). The rules themselves live in security/. */
#include "src/http/http.h"
#include "access/access.h"
#include "replication/replicator.h"
#include "src/http/authpool.h"
#include "src/common/err.h"
#include "src/common/log.h"
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/socket.h>

/* ------------------------------------------------------------------ authentication */

static const h2o_iovec_t *header_ci(stt_hreq_t *r, const char *name);

/* Whether addr is one of [settee] trusted_proxies (comma-separated addresses), the
 * list cached per thread until the configuration changes. */
static bool trusted_proxy(const char *addr)
{
    static __thread uint64_t gen = UINT64_MAX;
    static __thread char list[512];
    uint64_t g = stt_ini_generation(stt__server->ini);
    if (g != gen) {
        char *v = stt_ini_get(stt__server->ini, "settee", "trusted_proxies");
        snprintf(list, sizeof(list), "%s", v ? v : "");
        free(v);
        gen = g;
    }
    size_t n = strlen(addr);
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',' && *e != ' ')
            e++;
        if ((size_t)(e - p) == n && n && memcmp(p, addr, n) == 0) return true;
        p = e;
    }
    return false;
}

/* The client's address, as the auth limits count it: the socket's peer, or behind a
 * trusted front proxy the last address of its X-Forwarded-For (the one it added). */
static void peer_of(stt_hreq_t *r, char *out, size_t len)
{
    struct sockaddr_storage ss;
    out[0] = '\0';
    if (!r->req->conn->callbacks->get_peername) return;
    socklen_t sl = r->req->conn->callbacks->get_peername(r->req->conn, (struct sockaddr *)&ss);
    if (sl == 0) return;
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, out, (socklen_t)len);
    else if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, out, (socklen_t)len);
    const h2o_iovec_t *xff;
    if (!out[0] || !(xff = header_ci(r, "x-forwarded-for")) || !trusted_proxy(out)) return;
    const char *b = xff->base, *e = xff->base + xff->len, *p = e;
    while (p > b && p[-1] != ',')
        p--;
    while (p < e && *p == ' ')
        p++;
    while (e > p && e[-1] == ' ')
        e--;
    char ip[64];
    unsigned char bin[16];
    if (e - p <= 0 || (size_t)(e - p) >= sizeof(ip)) return;
    memcpy(ip, p, (size_t)(e - p));
    ip[e - p] = '\0';
    if (inet_pton(AF_INET, ip, bin) == 1 || inet_pton(AF_INET6, ip, bin) == 1) snprintf(out, len, "%s", ip);
}

/* the AuthSession value among the Cookie headers */
static bool find_cookie(stt_hreq_t *r, const char **val, size_t *len)
{
    const h2o_headers_t *hs = &r->req->headers;
    for (ssize_t i = -1; (i = h2o_find_header(hs, H2O_TOKEN_COOKIE, i)) != -1;) {
        const h2o_iovec_t *v = &hs->entries[i].value;
        const char *p = v->base, *end = p + v->len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == ';'))
                p++;
            const char *e = p;
            while (e < end && *e != ';')
                e++;
            if ((size_t)(e - p) >= 12 && memcmp(p, "AuthSession=", 12) == 0) {
                *val = p + 12;
                *len = (size_t)(e - p - 12);
                return true;
            }
            p = e;
        }
    }
    return false;
}

static const h2o_iovec_t *header_ci(stt_hreq_t *r, const char *name)
{
    size_t n = strlen(name);
    const h2o_headers_t *hs = &r->req->headers;
    for (size_t i = 0; i < hs->size; i++)
        if (hs->entries[i].name->len == n && strncasecmp(hs->entries[i].name->base, name, n) == 0)
            return &hs->entries[i].value;
    return NULL;
}

static void set_cookie(stt_hreq_t *r, const char *value)
{
    stt_buf_t b = STT_BUF_INIT;
    stt_auth_cookie_header(stt__server->auth, value, r->req->scheme == &H2O_URL_SCHEME_HTTPS, &b);
    r->set_cookie = stt_arena_memdup(&r->arena, b.base, b.len + 1);
    stt_buf_free(&b);
}

static void reply_auth_error(stt_hreq_t *r, const stt_auth_result_t *res)
{
    if (res->status == 429) {
        char ra[16];
        snprintf(ra, sizeof(ra), "%u", res->retry_after ? res->retry_after : 1);
        stt_buf_t b = STT_BUF_INIT;
        stt_buf_appends(&b, "{\"error\":\"too_many_requests\",\"reason\":");
        stt_json_write_cstr(&b, res->reason);
        stt_buf_appendc(&b, '}');
        const char *h[] = {"retry-after", ra, NULL};
        stt_reply_json_h(r, 429, &b, h);
        return;
    }
    stt_reply_error_raw(r, res->status, res->error, res->reason);
}

static bool is_path(stt_hreq_t *r, const char *seg0)
{
    return r->nseg == 1 && r->seg[0].len == strlen(seg0) && memcmp(r->seg[0].base, seg0, r->seg[0].len) == 0;
}

/* what follows the handlers: 1 go on, 0 replied */
static int auth_tail(stt_hreq_t *r, const stt_auth_result_t *res)
{
    if (res->status) {
        reply_auth_error(r, res);
        return 0;
    }
    r->user = res->user;
    if (res->refresh_cookie) set_cookie(r, res->refresh_cookie);
    if (r->user.name) return 1;
    /* require_valid_user: anonymous clients only log in (and, with the _except_for_up
     * variant, ask /_up) */
    stt_auth_settings_t st;
    stt_auth_settings(stt__server->auth, &st);
    bool rvu = st.require_valid_user, rvu_up = st.require_valid_user_except_for_up;
    if (!rvu && !rvu_up) return 1;
    if (is_path(r, "_session") && r->method == STT_M_POST) return 1;
    if (rvu_up && is_path(r, "_up")) return 1;
    stt_buf_t b = STT_BUF_INIT;
    stt_buf_appends(&b, "{\"error\":\"unauthorized\",\"reason\":\"Authentication required.\"}");
    stt_reply_json(r, 401, &b);
    return 0;
}

static void auth_done(stt_hreq_t *r, stt_auth_job_t *job)
{
    stt_auth_result_t res;
    stt_auth_job_finish(stt__server->auth, &r->arena, job, &res, NULL);
    if (auth_tail(r, &res) == 1) stt__route_authenticated(r);
}

/* the auth pool's queue is full */
static void reply_busy(stt_hreq_t *r)
{
    stt_buf_t b = STT_BUF_INIT;
    stt_buf_appends(&b, "{\"error\":\"too_many_requests\",\"reason\":\"Too many password checks at once.\"}");
    const char *h[] = {"retry-after", "1", NULL};
    stt_reply_json_h(r, 429, &b, h);
}

int stt__authenticate(stt_hreq_t *r)
{
    stt_auth_input_t in = {0};
    const h2o_iovec_t *h = stt_header(r, "authorization");
    if (h) in.authorization = h->base, in.authorization_len = h->len;
    in.has_cookie = find_cookie(r, &in.cookie, &in.cookie_len);
    if ((h = header_ci(r, "x-auth-couchdb-username")) != NULL) in.proxy_name = h->base, in.proxy_name_len = h->len;
    if ((h = header_ci(r, "x-auth-couchdb-roles")) != NULL) in.proxy_roles = h->base, in.proxy_roles_len = h->len;
    if ((h = header_ci(r, "x-auth-couchdb-token")) != NULL) in.proxy_token = h->base, in.proxy_token_len = h->len;
    char peer[64];
    peer_of(r, peer, sizeof(peer));
    in.peer = peer[0] ? peer : NULL;
    stt_auth_result_t res;
    stt_auth_request(stt__server->auth, &r->arena, &in, &res);
    if (res.status == STT_AUTH_PENDING) {
        if (stt_authpool_submit(r, res.job, auth_done) != 0) {
            reply_busy(r);
            return 0;
        }
        return 2;
    }
    return auth_tail(r, &res);
}

/* ------------------------------------------------------------------ authorization */

static void deny(stt_hreq_t *r, const char *reason_anon, const char *reason_user)
{
    if (!r->user.name)
        stt_reply_error_raw(r, 401, "unauthorized", reason_anon);
    else
        stt_reply_error_raw(r, 403, "forbidden", reason_user);
}

bool stt_require_server_admin(stt_hreq_t *r)
{
    if (stt_user_is_admin(&r->user)) return true;
    stt_reply_error_raw(r, 401, "unauthorized", "You are not a server admin.");
    return false;
}

const stt_json_t *stt__db_security(stt_hreq_t *r)
{
    if (r->sec || !r->db) return r->sec;
    stt_buf_t b = STT_BUF_INIT;
    stt_db_get_security(r->db, &b);
    char *text = stt_arena_memdup(&r->arena, b.base, b.len + 1);
    stt_json_t *o = stt_arena_alloc(&r->arena, sizeof(*o));
    if (stt_json_parse(&r->arena, text, b.len, o, NULL, 0) != 0) o->type = STT_JSON_NULL;
    stt_buf_free(&b);
    r->sec = o;
    return o;
}

bool stt__require_member(stt_hreq_t *r)
{
    if (stt_security_is_member(stt__db_security(r), &r->user)) return true;
    deny(r, "You are not authorized to access this db.", "You are not allowed to access this db.");
    return false;
}

bool stt__require_db_admin(stt_hreq_t *r)
{
    if (stt_security_is_db_admin(stt__db_security(r), &r->user)) return true;
    deny(r, "You are not a db or server admin.", "You are not a db or server admin.");
    return false;
}

/* ------------------------------------------------------------------ writes */

static bool is_users_db(stt_db_t *db)
{
    size_t len;
    const char *n = stt_db_name(db, &len);
    return len == sizeof(STT_USERS_DB) - 1 && memcmp(n, STT_USERS_DB, len) == 0;
}

static bool is_replicator_db(stt_db_t *db)
{
    size_t len;
    const char *n = stt_db_name(db, &len);
    return len == sizeof(STT_REPLICATOR_DB) - 1 && memcmp(n, STT_REPLICATOR_DB, len) == 0;
}

/* the winner's body of a live doc, parsed, or NULL */
static const stt_json_t *old_body(stt_hreq_t *r, const char *id, size_t idlen)
{
    stt_reader_t *rd;
    if (stt_reader_open(r->db, &rd) != 0) return NULL;
    stt_json_t *o = NULL;
    stt_doc_t d;
    if (stt_doc_get(rd, id, idlen, &d) == 0) {
        stt_rev_body_t b;
        if (!(d.tree.nodes[d.winner].flags & STT_REV_DELETED) && stt_doc_body(&d, d.winner, &b) == 0) {
            char *text = stt_arena_memdup(&r->arena, b.json, b.jsonlen);
            o = stt_arena_alloc(&r->arena, sizeof(*o));
            if (stt_json_parse(&r->arena, text, b.jsonlen, o, NULL, 0) != 0) o = NULL;
            stt_rev_body_free(&b);
        }
        stt_doc_free(&d);
    }
    stt_reader_close(rd);
    return o;
}

stt_access_t *stt__access(stt_hreq_t *r)
{
    if (!r->acc_done && r->db) {
        r->acc_done = true;
        if (stt_access_enabled(r->db))
            r->acc =
                stt_access_open(&r->arena, r->db, &r->user, stt_security_is_db_admin(stt__db_security(r), &r->user));
    }
    return r->acc;
}

bool stt__access_route_ok(stt_hreq_t *r)
{
    if (!stt__access(r)) return true;
    bool design = r->docid.len >= 8 && memcmp(r->docid.base, "_design/", 8) == 0;
    /* a design doc's views answer users with their docs' rows (h_view.c filters them) */
    bool view = design && r->nseg >= 5 && r->seg[3].len == 5 && memcmp(r->seg[3].base, "_view", 5) == 0;
    if (design && !view && !(r->method & (STT_M_PUT | STT_M_DELETE))) {
        stt_reply_error(r, STT_E_NOT_FOUND, NULL);
        return false;
    }
    static const char *const admin_only[] = {"_export", "_temp_view", "_index", "_view_cleanup"};
    for (size_t i = 0; r->nseg > 1 && i < sizeof(admin_only) / sizeof(*admin_only); i++) {
        if (r->seg[1].len == strlen(admin_only[i]) && memcmp(r->seg[1].base, admin_only[i], r->seg[1].len) == 0) {
            stt_reply_error_raw(r, 403, "forbidden", "Only db admins may use this in an access database.");
            return false;
        }
    }
    return true;
}

static void refuse(stt_doc_result_t *res, int status, const char *reason)
{
    res->err = status == 401 ? STT_E_UNAUTHORIZED : status == 404 ? STT_E_NOT_FOUND : STT_E_FORBIDDEN;
    res->reason = reason;
}

/* _replicator docs as CouchDB's validation takes them, "owner" added */
static bool check_replicator_doc(stt_hreq_t *r, stt_doc_write_t *w, stt_doc_result_t *res)
{
    stt_json_t body;
    char *text = stt_arena_memdup(&r->arena, w->body, w->bodylen);
    if (stt_json_parse(&r->arena, text, w->bodylen, &body, NULL, 0) != 0) return false;
    const char *nb = NULL, *reason = NULL;
    size_t nblen = 0;
    if (stt_rep_doc_check(&r->arena, &r->user, &body, &nb, &nblen, &reason) != 0) {
        refuse(res, 403, reason);
        return true;
    }
    if (nb) {
        w->body = nb;
        w->bodylen = nblen;
    }
    return false;
}

size_t stt__authorize_writes(stt_hreq_t *r, stt_doc_write_t *docs, size_t n, stt_doc_result_t *res)
{
    size_t refused = 0;
    bool users = is_users_db(r->db), repdb = !users && is_replicator_db(r->db);
    const stt_json_t *sec = NULL;
    stt_reader_t *rd = NULL;
    for (size_t i = 0; i < n; i++) {
        stt_doc_write_t *w = &docs[i];
        bool design = w->idlen >= 8 && memcmp(w->id, "_design/", 8) == 0;
        if (repdb && !design && !w->deleted) {
            if (check_replicator_doc(r, w, &res[i])) refused++;
            continue;
        }
        if (!design && stt_access_enabled(r->db)) {
            const char *reason = NULL;
            if (!sec) sec = stt__db_security(r);
            if (!rd && stt_reader_open(r->db, &rd) != 0) rd = NULL;
            int rc = rd ? stt_access_before_write(&r->arena, r->db, &r->user, stt_security_is_db_admin(sec, &r->user),
                                                  rd, w, &reason)
                        : STT_E_IO;
            if (rc) {
                res[i].err = rc;
                res[i].reason = reason;
                refused++;
            }
            continue;
        }
        if (!design && !users) continue;
        if (!sec) sec = stt__db_security(r);
        if (design) {
            if (!stt_security_is_db_admin(sec, &r->user)) {
                refuse(&res[i], r->user.name ? 403 : 401, "You are not a db or server admin.");
                refused++;
            }
            continue;
        }
        stt_json_t body;
        char *text = stt_arena_memdup(&r->arena, w->body, w->bodylen);
        if (stt_json_parse(&r->arena, text, w->bodylen, &body, NULL, 0) != 0) body.type = STT_JSON_NULL;
        const char *nb = NULL, *error = NULL, *reason = NULL;
        size_t nblen = 0;
        int st = stt_users_before_write(&r->arena, &r->user, sec, w->id, w->idlen, &body, w->deleted,
                                        old_body(r, w->id, w->idlen), &nb, &nblen, &error, &reason);
        if (st) {
            refuse(&res[i], st, reason);
            refused++;
        } else if (nb) {
            w->body = nb;
            w->bodylen = nblen;
        }
    }
    if (rd) stt_reader_close(rd);
    return refused;
}

static int create_userdb(const stt_auth_settings_t *st, const char *name, size_t len)
{
    stt_buf_t db = STT_BUF_INIT, sec = STT_BUF_INIT;
    stt_peruser_dbname(st->peruser_prefix, name, len, &db);
    int rc = stt_db_create(stt__server->store, db.base, db.len);
    if (rc == 0) {
        stt_db_t *h;
        if (stt_db_open(stt__server->store, db.base, db.len, &h) == 0) {
            stt_buf_appends(&sec, "{\"admins\":{\"names\":[");
            stt_json_write_str(&sec, name, len);
            stt_buf_appends(&sec, "],\"roles\":[\"_admin\"]},\"members\":{\"names\":[");
            stt_json_write_str(&sec, name, len);
            stt_buf_appends(&sec, "],\"roles\":[\"_admin\"]}}");
            rc = stt_db_set_security(h, sec.base, sec.len);
            stt_db_release(h);
        }
    }
    stt_buf_free(&db);
    stt_buf_free(&sec);
    return rc;
}

void stt__after_writes(stt_db_t *db, const stt_doc_write_t *docs, size_t n, const stt_doc_result_t *res)
{
    if (!is_users_db(db)) return;
    stt_auth_settings_t st;
    stt_auth_settings(stt__server->auth, &st);
    if (!st.peruser_enable) return;
    size_t plen = sizeof(STT_USER_PREFIX) - 1;
    for (size_t i = 0; i < n; i++) {
        const stt_doc_write_t *w = &docs[i];
        if (res[i].err || w->idlen <= plen || memcmp(w->id, STT_USER_PREFIX, plen) != 0) continue;
        const char *name = w->id + plen;
        size_t len = w->idlen - plen;
        if (!w->deleted) {
            create_userdb(&st, name, len);
        } else if (st.peruser_delete_dbs) {
            stt_buf_t dbn = STT_BUF_INIT;
            stt_peruser_dbname(st.peruser_prefix, name, len, &dbn);
            stt_db_delete(stt__server->store, dbn.base, dbn.len);
            stt_buf_free(&dbn);
        }
    }
}

static int on_user_summary(void *ctx, const stt_doc_summary_t *s)
{
    const stt_auth_settings_t *st = ctx;
    size_t plen = sizeof(STT_USER_PREFIX) - 1;
    if (!s->deleted && s->idlen > plen && memcmp(s->id, STT_USER_PREFIX, plen) == 0)
        create_userdb(st, s->id + plen, s->idlen - plen);
    return 0;
}

/* couch_peruser, when turned on, gives every existing user a database */
static void peruser_sync(void)
{
    stt_auth_settings_t st;
    stt_auth_settings(stt__server->auth, &st);
    stt_db_t *db;
    if (!st.peruser_enable || stt_db_open(stt__server->store, STT_USERS_DB, sizeof(STT_USERS_DB) - 1, &db)) return;
    stt_reader_t *rd;
    if (stt_reader_open(db, &rd) == 0) {
        stt_range_t range = {.start = STT_USER_PREFIX, .startlen = sizeof(STT_USER_PREFIX) - 1, .inclusive_end = true};
        stt_docs_scan(rd, &range, on_user_summary, &st);
        stt_reader_close(rd);
    }
    stt_db_release(db);
}

void stt__peruser_poll(void)
{
    /* called per request: reacts to [couch_peruser] enable turning on */
    static _Atomic int was_on = -1;
    stt_auth_settings_t st;
    stt_auth_settings(stt__server->auth, &st);
    int on = st.peruser_enable ? 1 : 0;
    int prev = atomic_exchange(&was_on, on);
    if (on && prev == 0) peruser_sync();
}

void stt__system_dbs_init(void)
{
    stt_store_t *s = stt__server->store;
    stt_db_create(s, STT_USERS_DB, sizeof(STT_USERS_DB) - 1);
    stt_db_create(s, "_replicator", 11);
    stt_db_t *db;
    if (stt_db_open(s, STT_USERS_DB, sizeof(STT_USERS_DB) - 1, &db) == 0) {
        stt_reader_t *rd;
        bool have = false;
        if (stt_reader_open(db, &rd) == 0) {
            stt_doc_t d;
            if (stt_doc_get(rd, "_design/_auth", 13, &d) == 0) {
                have = true;
                stt_doc_free(&d);
            }
            stt_reader_close(rd);
        }
        if (!have) {
            stt_doc_write_t w = {.id = "_design/_auth",
                                 .idlen = 13,
                                 .body = stt_users_auth_ddoc,
                                 .bodylen = strlen(stt_users_auth_ddoc)};
            stt_doc_result_t res;
            memset(&res, 0, sizeof(res));
            stt_doc_write(db, &w, 1, true, &res);
        }
        stt_db_release(db);
    }
    peruser_sync();
}

/* ------------------------------------------------------------------ _session */

static void session_info(stt_hreq_t *r)
{
    stt_buf_t b = STT_BUF_INIT;
    stt_buf_appends(&b, "{\"ok\":true,\"userCtx\":");
    stt_user_ctx_write(&b, &r->user);
    stt_buf_appends(&b, ",\"info\":{\"authentication_handlers\":[");
    const char *names[8];
    size_t n = stt_auth_handlers(stt__server->auth, names, 8);
    for (size_t i = 0; i < n; i++) {
        if (i) stt_buf_appendc(&b, ',');
        stt_json_write_cstr(&b, names[i]);
    }
    stt_buf_appendc(&b, ']');
    if (r->user.name) {
        stt_buf_appends(&b, ",\"authenticated\":");
        stt_json_write_cstr(&b, r->user.handler);
    }
    stt_buf_appends(&b, "}}");
    stt_reply_json(r, 200, &b);
}

static int hexv(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* value of a form field (percent-decoded into the arena), NULL when absent */
static const char *form_get(stt_hreq_t *r, const char *body, size_t len, const char *key, size_t *outlen)
{
    size_t kl = strlen(key);
    const char *p = body, *end = body + len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        if (!amp) amp = end;
        if ((size_t)(amp - p) > kl && memcmp(p, key, kl) == 0 && p[kl] == '=') {
            const char *v = p + kl + 1;
            size_t vl = (size_t)(amp - v);
            char *o = stt_arena_alloc(&r->arena, vl + 1);
            size_t n = 0;
            for (size_t i = 0; i < vl; i++) {
                int hi, lo;
                if (v[i] == '+') {
                    o[n++] = ' ';
                } else if (v[i] == '%' && i + 2 < vl && (hi = hexv(v[i + 1])) >= 0 && (lo = hexv(v[i + 2])) >= 0) {
                    o[n++] = (char)(hi << 4 | lo);
                    i += 2;
                } else {
                    o[n++] = v[i];
                }
            }
            o[n] = '\0';
            *outlen = n;
            return o;
        }
        p = amp + 1;
    }
    return NULL;
}

static void login_reply(stt_hreq_t *r, const stt_auth_result_t *res, const char *cookie)
{
    if (res->status) {
        if (res->status == 401) set_cookie(r, NULL);
        reply_auth_error(r, res);
        return;
    }
    r->user = res->user;
    set_cookie(r, cookie);
    stt_buf_t b = STT_BUF_INIT;
    stt_buf_appends(&b, "{\"ok\":true,\"name\":");
    stt_json_write_str(&b, res->user.name, res->user.namelen);
    stt_buf_appends(&b, ",\"roles\":[");
    for (size_t i = 0; i < res->user.nroles; i++) {
        if (i) stt_buf_appendc(&b, ',');
        stt_json_write_cstr(&b, res->user.roles[i]);
    }
    stt_buf_appends(&b, "]}");
    const stt_qparam_t *next = stt_q_get(r, "next");
    if (next) {
        stt_buf_t loc = STT_BUF_INIT;
        stt_reply_location(r, &loc, next->val, next->vallen);
        const char *h[] = {"location", loc.base, NULL};
        stt_reply_json_h(r, 302, &b, h);
        stt_buf_free(&loc);
        return;
    }
    stt_reply_json(r, 200, &b);
}

static void login_done(stt_hreq_t *r, stt_auth_job_t *job)
{
    stt_auth_result_t res;
    const char *cookie;
    stt_auth_job_finish(stt__server->auth, &r->arena, job, &res, &cookie);
    login_reply(r, &res, cookie);
}

static void session_post(stt_hreq_t *r)
{
    const h2o_iovec_t *ct = stt_header(r, "content-type");
    bool form = ct && ct->len >= 33 && strncasecmp(ct->base, "application/x-www-form-urlencoded", 33) == 0;
    bool json = ct && ct->len >= 16 && strncasecmp(ct->base, "application/json", 16) == 0;
    if (!form && !json) {
        stt_reply_error_raw(r, 415, "bad_content_type",
                            "Content-Type must be 'application/x-www-form-urlencoded' or 'application/json'");
        return;
    }
    const char *name = NULL, *pw = NULL;
    size_t namelen = 0, pwlen = 0;
    if (form) {
        name = form_get(r, r->req->entity.base, r->req->entity.len, "name", &namelen);
        pw = form_get(r, r->req->entity.base, r->req->entity.len, "password", &pwlen);
    } else {
        stt_json_t body;
        if (r->req->entity.len == 0 ||
            stt_json_parse(&r->arena, r->req->entity.base, r->req->entity.len, &body, NULL, 0) != 0) {
            stt_reply_error_raw(r, 400, "bad_request", "invalid UTF-8 JSON");
            return;
        }
        const stt_json_t *n = body.type == STT_JSON_OBJECT ? stt_json_get(&body, "name") : NULL;
        const stt_json_t *p = body.type == STT_JSON_OBJECT ? stt_json_get(&body, "password") : NULL;
        if (n && n->type != STT_JSON_STRING && n->type != STT_JSON_NULL) {
            /* CouchDB answers 500 badarg here */
            stt_reply_error_raw(r, 400, "bad_request", "name must be a string");
            return;
        }
        if (stt_json_is_str(n)) name = n->u.s, namelen = n->len;
        if (stt_json_is_str(p)) pw = p->u.s, pwlen = p->len;
    }
    if (!name) {
        stt_reply_error_raw(r, 400, "bad_request", "request body must contain a username");
        return;
    }
    const stt_qparam_t *next = stt_q_get(r, "next");
    if (next && (next->vallen == 0 || next->val[0] != '/')) {
        stt_reply_error_raw(r, 400, "bad_request", "path must begin with a /.");
        return;
    }
    char peer[64];
    peer_of(r, peer, sizeof(peer));
    stt_auth_result_t res;
    const char *cookie;
    stt_auth_login(stt__server->auth, &r->arena, name, namelen, pw, pwlen, peer[0] ? peer : NULL, &res, &cookie);
    if (res.status == STT_AUTH_PENDING) {
        if (stt_authpool_submit(r, res.job, login_done) != 0) reply_busy(r);
        return;
    }
    login_reply(r, &res, cookie);
}

void stt_h_session(stt_hreq_t *r)
{
    if (r->method == STT_M_POST) {
        session_post(r);
        return;
    }
    if (r->method == STT_M_DELETE) {
        set_cookie(r, NULL);
        const stt_qparam_t *next = stt_q_get(r, "next");
        stt_buf_t b = STT_BUF_INIT;
        stt_buf_appends(&b, "{\"ok\":true}");
        if (next && next->vallen && next->val[0] == '/') {
            stt_buf_t loc = STT_BUF_INIT;
            stt_reply_location(r, &loc, next->val, next->vallen);
            const char *h[] = {"location", loc.base, NULL};
            stt_reply_json_h(r, 302, &b, h);
            stt_buf_free(&loc);
            return;
        }
        stt_reply_json(r, 200, &b);
        return;
    }
    session_info(r);
}

void stt_auth_restart(void)
{
    stt_auth_reload_handlers(stt__server->auth);
}
