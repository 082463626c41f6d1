/* The route table on raw paths: input is one method byte, one byte of who-is-asking
 * (server admin or not, member or not), then the raw request target. The target goes
 * through the server's own escape check and splitting (stt__parse_target) and then the
 * real routes.c; what routes.c would call (handlers, replies, authorization, the store)
 * is replaced below by stubs that record the outcome. Each request must end in exactly
 * one outcome; a doc, _local or attachment handler must see its names set, inside the
 * request's memory.
 *
 * Linked with -Wl,--allow-multiple-definition (see the Makefile): these stubs come first
 * and win over the library's definitions of the same names. */
#include "src/http/http.h"
#include "src/common/err.h"
#include "security/security.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int outcomes;
static const char *handler;
static bool is_admin, is_member;
static stt_hreq_t *cur;

static void outcome(const char *what)
{
    outcomes++;
    handler = what;
}

#define HANDLER(name)                                                                                                  \
    void stt_h_##name(stt_hreq_t *r)                                                                                   \
    {                                                                                                                  \
        outcome(#name);                                                                                                \
    }
HANDLER(root)
HANDLER(up)
HANDLER(uuids)
HANDLER(all_dbs)
HANDLER(dbs_info)
HANDLER(session)
HANDLER(active_tasks)
HANDLER(db)
HANDLER(revs_limit)
HANDLER(security)
HANDLER(compact)
HANDLER(ensure_full_commit)
HANDLER(bulk_docs)
HANDLER(all_docs)
HANDLER(design_docs)
HANDLER(local_docs)
HANDLER(purge)
HANDLER(changes)
HANDLER(revs_diff)
HANDLER(bulk_get)
HANDLER(find)
HANDLER(explain)
HANDLER(index)
HANDLER(doc)
HANDLER(local)
HANDLER(attachment)
HANDLER(node)
HANDLER(export)
HANDLER(db_updates)
HANDLER(design_func)
HANDLER(membership)
HANDLER(temp_view)
HANDLER(view)
HANDLER(view_active_tasks)
HANDLER(view_cleanup)
HANDLER(view_compact)
HANDLER(replicate)
HANDLER(scheduler)
HANDLER(view_info)

void stt_reply_error(stt_hreq_t *r, int code, const char *reason)
{
    outcome("error");
}
void stt_reply_error_raw(stt_hreq_t *r, int status, const char *error, const char *reason)
{
    outcome("error");
}
void stt_reply_json_h(stt_hreq_t *r, int status, stt_buf_t *b, const char *const *headers)
{
    stt_buf_free(b);
    outcome("json");
}
void stt_reply_bytes(stt_hreq_t *r, int status, const char *ctype, char *data, size_t len, bool take,
                     const char *const *headers)
{
    outcome("bytes");
}
int stt__authenticate(stt_hreq_t *r)
{
    return 1;
}
void stt__peruser_poll(void) {}
const h2o_iovec_t *stt_header(stt_hreq_t *r, const char *name)
{
    return NULL;
}
bool stt_require_server_admin(stt_hreq_t *r)
{
    if (!is_admin) outcome("unauthorized");
    return is_admin;
}
bool stt__require_member(stt_hreq_t *r)
{
    if (!is_member) outcome("unauthorized");
    return is_member;
}
bool stt__require_db_admin(stt_hreq_t *r)
{
    if (!is_admin) outcome("unauthorized");
    return is_admin;
}
const stt_json_t *stt__db_security(stt_hreq_t *r)
{
    return NULL;
}
bool stt_security_is_db_admin(const stt_json_t *sec, const stt_user_ctx_t *u)
{
    return is_admin;
}
void stt_auth_settings(stt_auth_t *a, stt_auth_settings_t *out)
{
    memset(out, 0, sizeof(*out));
}
int stt_db_open(stt_store_t *s, const char *name, size_t len, stt_db_t **out)
{
    /* a name that would not open as a database answers as the store does */
    if (!len || memchr(name, '\0', len)) return STT_E_DB_NOT_FOUND;
    *out = NULL;
    return 0;
}

static void in_request(h2o_iovec_t v, const char *what)
{
    if (!v.base) {
        fprintf(stderr, "%s handler without a %s\n", handler, what);
        abort();
    }
    if (v.base[v.len] != '\0' && v.len) {
        /* segments are NUL-terminated arena copies; a name built from them must be too */
        fprintf(stderr, "%s: %s not NUL-terminated\n", handler, what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    static stt_config_t cfg;
    static stt_server_t srv;
    if (size < 2) return 0;
    srv.cfg = &cfg;
    stt__server = &srv;
    static const int methods[] = {STT_M_GET,    STT_M_HEAD, STT_M_PUT,     STT_M_POST,
                                  STT_M_DELETE, STT_M_COPY, STT_M_OPTIONS, STT_M_OTHER};
    const char *p = (const char *)data + 2;
    size_t len = size - 2;
    if (!stt__escapes_valid(p, len)) return 0;
    stt_hreq_t r;
    memset(&r, 0, sizeof(r));
    cur = &r;
    r.method = methods[data[0] & 7];
    is_admin = data[1] & 1;
    is_member = data[1] & 2;
    cfg.cors_enabled = data[1] & 4;
    const char *qm = memchr(p, '?', len);
    stt__parse_target(&r, p, len, qm ? (size_t)(qm - p) : SIZE_MAX);
    /* /_utils reads the raw target from h2o's request, which this harness has none
     * of (its path handling has a unit test of its own: tests/unit/test_utils.c) */
    if (r.nseg > 0 && r.seg[0].len == 6 && memcmp(r.seg[0].base, "_utils", 6) == 0) {
        stt_arena_free(&r.arena);
        return 0;
    }
    outcomes = 0;
    handler = NULL;
    stt_route(&r);
    if (outcomes != 1) {
        fprintf(stderr, "%d outcomes for one request (last: %s)\n", outcomes, handler ? handler : "none");
        abort();
    }
    if (!strcmp(handler, "doc") || !strcmp(handler, "local") || !strcmp(handler, "attachment")) {
        in_request(r.dbname, "db name");
        in_request(r.docid, "doc id");
        if (!strcmp(handler, "attachment")) in_request(r.attname, "attachment name");
    }
    stt_arena_free(&r.arena);
    return 0;
}
