/* settee's security model, CouchDB 3.4's: who a request is (authentication) and
 * what it may do (authorization), below the HTTP layer.
 *
 *  - A user context (userCtx) names the client and its roles; "_admin" among the
 *    roles makes it a server admin. Anonymous clients have no name and no roles.
 *  - Credentials come from [admins] in the live configuration (server admins) and
 *    from documents "org.couchdb.user:NAME" in the _users database.
 *  - Each database's _security object ({"admins":{names,roles},"members":{...}})
 *    says who administers it and who may read and write it; no members at all
 *    makes the database public.
 *  - The _users database has its own rules: passwords are hashed before they are
 *    stored, users may only touch their own document, roles are the admins' to give.
 *
 * Settings are read from the live configuration (src/common/ini.h) and re-parsed
 * when it changes, except [chttpd] authentication_handlers, which (as in CouchDB)
 * only a restart (stt_auth_reload_handlers) applies.
 *
 * Memory: user contexts and reasons live in the caller's arena or are static.
 * Thread-safe: stt_auth_t serializes its own caches. */
#ifndef STT_SECURITY_H
#define STT_SECURITY_H
#include "src/common/arena.h"
#include "src/common/buf.h"
#include "src/common/ini.h"
#include "src/common/json.h"
#include "store/store.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------ user contexts */

typedef struct {
    const char *name; /* NULL: anonymous */
    size_t namelen;
    bool name_is_number; /* a JWT sub that is a number: rendered without quotes */
    const char **roles;
    size_t nroles;
    const char *handler; /* "default", "cookie", "jwt", "proxy"; NULL when anonymous */
} stt_user_ctx_t;

bool stt_user_has_role(const stt_user_ctx_t *u, const char *role);
static inline bool stt_user_is_admin(const stt_user_ctx_t *u)
{
    return stt_user_has_role(u, "_admin");
}
/* {"name":...,"roles":[...]} */
void stt_user_ctx_write(stt_buf_t *out, const stt_user_ctx_t *u);

/* ------------------------------------------------------------------ _security */

/* CouchDB 3's _security of a new database: admin-only. */
#define STT_SECURITY_DEFAULT "{\"members\":{\"roles\":[\"_admin\"]},\"admins\":{\"roles\":[\"_admin\"]}}"

/* Checks a _security body: an object whose "admins" and "members" (when present)
 * are objects whose "names" and "roles" (when present) are arrays of strings.
 * Other members are kept. 0, or -1 with *reason set. */
int stt_security_validate(const stt_json_t *sec, const char **reason);
/* CouchDB's is_admin / is_member for a parsed _security object (NULL = {}). */
bool stt_security_is_db_admin(const stt_json_t *sec, const stt_user_ctx_t *u);
bool stt_security_is_member(const stt_json_t *sec, const stt_user_ctx_t *u);

/* ------------------------------------------------------------------ the service */

typedef struct stt_auth stt_auth_t;

/* store and ini are borrowed for the service's life. */
int stt_auth_open(stt_store_t *store, stt_ini_t *ini, stt_auth_t **out);
void stt_auth_close(stt_auth_t *a);
/* Re-reads [chttpd] authentication_handlers (CouchDB reads it at start-up only). */
void stt_auth_reload_handlers(stt_auth_t *a);

/* The handlers in force, for GET /_session's info: "cookie","default"... */
size_t stt_auth_handlers(stt_auth_t *a, const char **names, size_t max);

/* What a request carries that authentication looks at (borrowed, NULL = absent). */
typedef struct {
    const char *authorization;
    size_t authorization_len;
    const char *cookie; /* the value of the AuthSession cookie */
    size_t cookie_len;
    bool has_cookie;
    const char *proxy_name, *proxy_roles, *proxy_token;
    size_t proxy_name_len, proxy_roles_len, proxy_token_len;
    const char *peer; /* client address, "127.0.0.1" */
} stt_auth_input_t;

typedef struct stt_auth_job stt_auth_job_t;

/* status of a check whose PBKDF2 must run off the caller's thread (see
 * stt_auth_set_deferred) */
#define STT_AUTH_PENDING 1

typedef struct {
    int status;           /* 0 ok (possibly anonymous), STT_AUTH_PENDING, else the HTTP status */
    const char *error;    /* "unauthorized", "forbidden", "bad_request", "too_many_requests" */
    const char *reason;   /* static or arena */
    unsigned retry_after; /* seconds, with 429 */
    stt_user_ctx_t user;
    /* a fresh AuthSession cookie value to send (cookie refresh); NULL when none */
    const char *refresh_cookie;
    stt_auth_job_t *job; /* with STT_AUTH_PENDING: the check to run */
} stt_auth_result_t;

/* Deferred mode (the server's): a password check that misses the credential
 * cache does not hash on the caller's thread; stt_auth_request and stt_auth_login
 * answer STT_AUTH_PENDING with out->job. The caller runs stt_auth_job_run(job) on
 * any thread (it only hashes), then stt_auth_job_finish on a thread of its choice
 * (it updates the cache and limits and fills out, and for a login *cookie), then
 * stt_auth_job_free. Off by default: checks hash inline. */
void stt_auth_set_deferred(stt_auth_t *a, bool deferred);
void stt_auth_job_run(stt_auth_job_t *j);
void stt_auth_job_finish(stt_auth_t *a, stt_arena_t *arena, stt_auth_job_t *j, stt_auth_result_t *out,
                         const char **cookie);
void stt_auth_job_free(stt_auth_job_t *j);

/* Runs the authentication handlers in order, as CouchDB's chttpd does. */
void stt_auth_request(stt_auth_t *a, stt_arena_t *arena, const stt_auth_input_t *in, stt_auth_result_t *out);

/* POST /_session: checks name and password (lockout and the per-address limit
 * apply). On success out->user is the user and *cookie receives the new cookie
 * value (arena). */
void stt_auth_login(stt_auth_t *a, stt_arena_t *arena, const char *name, size_t namelen, const char *password,
                    size_t pwlen, const char *peer, stt_auth_result_t *out, const char **cookie);

/* The Set-Cookie line for a cookie value (NULL or "" = the clearing cookie), with
 * the configured attributes (Max-Age, Expires, Path, HttpOnly, SameSite, Secure,
 * Domain). secure_request: the request came over TLS. */
void stt_auth_cookie_header(stt_auth_t *a, const char *value, bool secure_request, stt_buf_t *out);

/* Settings other parts ask about. */
typedef struct {
    bool require_valid_user;
    bool require_valid_user_except_for_up;
    bool admin_only_all_dbs;
    bool users_db_security_editable;
    bool peruser_enable, peruser_delete_dbs;
    char peruser_prefix[64];
    char public_fields[512]; /* [chttpd_auth] public_fields, as written */
} stt_auth_settings_t;
void stt_auth_settings(stt_auth_t *a, stt_auth_settings_t *out);

/* Whether any server admin is configured. */
bool stt_auth_has_admin(stt_auth_t *a);

/* ------------------------------------------------------------------ _users */

#define STT_USERS_DB "_users"
#define STT_USER_PREFIX "org.couchdb.user:"

/* A write to the _users database, as CouchDB's couch_users_db before_doc_update
 * and the _design/_auth validation: checks who may write this doc, hashes a
 * "password" member into pbkdf2 fields, and validates the result.
 *   newdoc: the body as sent (special members included), NULL for a delete
 *   olddoc: the current winner's body with _id, NULL when none (or deleted)
 * On success *body receives the body to store (arena, without special members)
 * or stays NULL when the body is unchanged. Returns 0, or an HTTP status (403
 * forbidden, 404 not_found "missing", 401) with *error and *reason set. */
int stt_users_before_write(stt_arena_t *arena, const stt_user_ctx_t *u, const stt_json_t *sec, const char *id,
                           size_t idlen, const stt_json_t *newdoc, bool deleted, const stt_json_t *olddoc,
                           const char **body, size_t *bodylen, const char **error, const char **reason);
/* A read from _users (after_doc_read): 0 when u may see the doc as it is; 1 when
 * only the public fields may be shown (*public_fields says which); 403 for a design
 * doc read by a non-admin; 404 when nothing may be shown. */
int stt_users_after_read(const stt_user_ctx_t *u, const stt_json_t *sec, const char *id, size_t idlen,
                         const char *public_fields);

/* The members of body named in public_fields ("name, fullname"), as an object
 * appended to out; returns how many. */
int stt_users_public_body(const stt_json_t *body, const char *public_fields, stt_buf_t *out);

/* The _users design doc settee keeps ({"_id":"_design/_auth",...}): the rules above,
 * described for clients that read it. */
extern const char stt_users_auth_ddoc[];

/* The per-user database name for a user: prefix + lower-case hex of the name. */
void stt_peruser_dbname(const char *prefix, const char *name, size_t len, stt_buf_t *out);

#endif
