/* Database-level endpoints: create, delete, info, _revs_limit, _security,
 * _compact, _ensure_full_commit. */
#include "src/http/http.h"
#include "src/common/err.h"
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

void stt_h_doc_post(stt_hreq_t *r); /* h_doc.c */

void stt_db_info_json(stt_db_t *db, stt_buf_t *b)
{
    stt_db_info_t in;
    stt_db_info(db, &in);
    size_t nlen;
    const char *name = stt_db_name(db, &nlen);
    stt_buf_appends(b, "{\"instance_start_time\":\"0\",\"db_name\":");
    stt_json_write_str(b, name, nlen);
    stt_buf_appends(b, ",\"purge_seq\":");
    stt_seq_format(b, in.purge_seq);
    stt_buf_appends(b, ",\"update_seq\":");
    stt_seq_format(b, in.update_seq);
    stt_buf_appendf(
        b,
        ",\"sizes\":{\"file\":%llu,\"external\":%llu,\"active\":%llu},\"props\":{%s},\"doc_del_count\":%llu,"
        "\"doc_count\":%llu,\"disk_format_version\":8,\"compact_running\":%s,"
        "\"cluster\":{\"q\":1,\"n\":1,\"w\":1,\"r\":1}}",
        (unsigned long long)in.file_size, (unsigned long long)in.external_size, (unsigned long long)in.active_size,
        (stt_db_flags(db) & STT_DB_ACCESS) ? "\"access\":true" : "", (unsigned long long)in.doc_del_count,
        (unsigned long long)in.doc_count, in.compact_running ? "true" : "false");
}

static void illegal_name(stt_hreq_t *r)
{
    char reason[600];
    snprintf(reason, sizeof(reason),
             "Name: '%.*s'. Only lowercase characters (a-z), digits (0-9), and any of the characters _, $, (, ), +, "
             "-, and / are allowed. Must begin with a letter.",
             (int)(r->dbname.len > 300 ? 300 : r->dbname.len), r->dbname.base);
    stt_reply_error_raw(r, 400, "illegal_database_name", reason);
}

void stt_h_db(stt_hreq_t *r)
{
    stt_store_t *s = stt__server->store;
    int rc;
    switch (r->method) {
    case STT_M_PUT:
        /* ?access=true: per-document access control, fixed for the db's life */
        rc = stt_db_create_flags(s, r->dbname.base, r->dbname.len, stt_q_flag(r, "access") ? STT_DB_ACCESS : 0);
        if (rc == STT_E_ILLEGAL_DB_NAME) {
            illegal_name(r);
        } else if (rc) {
            stt_reply_error(r, rc, NULL);
        } else {
            stt_buf_t loc = STT_BUF_INIT, path = STT_BUF_INIT;
            stt_buf_appendc(&path, '/');
            stt_url_encode(&path, r->dbname.base, r->dbname.len);
            stt_reply_location(r, &loc, path.base, path.len);
            stt_buf_t b = STT_BUF_INIT;
            stt_buf_appends(&b, "{\"ok\":true}");
            const char *h[] = {"location", loc.base, NULL};
            stt_reply_json_h(r, 201, &b, h);
            stt_buf_free(&loc);
            stt_buf_free(&path);
        }
        return;
    case STT_M_DELETE:
        if (stt_q_get(r, "rev")) {
            stt_reply_error_raw(r, 400, "bad_request",
                                "You tried to DELETE a database with a ?=rev parameter. Did you mean to DELETE a "
                                "document instead?");
            return;
        }
        rc = stt_db_delete(s, r->dbname.base, r->dbname.len);
        if (rc)
            stt_reply_error(r, rc, NULL);
        else
            stt_reply_ok(r, 200);
        return;
    default:
        break;
    }
    if (!r->db && (rc = stt_db_open(s, r->dbname.base, r->dbname.len, &r->db)) != 0) {
        if (!stt_db_name_valid(r->dbname.base, r->dbname.len) && r->dbname.len && r->dbname.base[0] != '_')
            illegal_name(r);
        else
            stt_reply_error(r, rc, NULL);
        return;
    }
    if (r->method == STT_M_POST) {
        stt_h_doc_post(r);
        return;
    }
    stt_buf_t b = STT_BUF_INIT;
    stt_db_info_json(r->db, &b);
    stt_reply_json(r, 200, &b);
}

void stt_h_revs_limit(stt_hreq_t *r)
{
    stt_buf_t b = STT_BUF_INIT;
    if (r->method != STT_M_PUT) {
        stt_db_info_t in;
        stt_db_info(r->db, &in);
        stt_buf_append_u64(&b, in.revs_limit);
        stt_reply_json(r, 200, &b);
        return;
    }
    stt_json_t v;
    int64_t n;
    if (stt_body_json(r, &v, NULL) != 0) return;
    if (stt_json_int(&v, &n) != 0 || n <= 0 || n > UINT32_MAX) {
        /* CouchDB 3.4 answers a non-integer with this 500 (couchdb-golden
         * revs_limit_put_invalid); clients test for it, so settee does the same */
        stt_buf_t e = STT_BUF_INIT;
        stt_buf_appendf(&e, "{\"error\":\"unknown_error\",\"reason\":\"function_clause\",\"ref\":%u}",
                        (unsigned)(((uintptr_t)r ^ (uintptr_t)r->req) % 1000000000u));
        stt_reply_json(r, 500, &e);
        return;
    }
    int rc = stt_db_set_revs_limit(r->db, (uint32_t)n);
    if (rc)
        stt_reply_error(r, rc, NULL);
    else
        stt_reply_ok(r, 200);
}

void stt_h_security(stt_hreq_t *r)
{
    stt_buf_t b = STT_BUF_INIT;
    if (r->method != STT_M_PUT) {
        stt_db_get_security(r->db, &b);
        stt_reply_json(r, 200, &b);
        return;
    }
    size_t nlen;
    const char *name = stt_db_name(r->db, &nlen);
    stt_auth_settings_t st;
    stt_auth_settings(stt__server->auth, &st);
    if (nlen == sizeof(STT_USERS_DB) - 1 && memcmp(name, STT_USERS_DB, nlen) == 0 && !st.users_db_security_editable) {
        stt_reply_error_raw(r, 403, "forbidden", "You can't edit the security object of the user database.");
        return;
    }
    stt_json_t v;
    if (stt_body_json(r, &v, NULL) != 0) return;
    /* CouchDB answers these with 500 no_majority; they are the client's mistake */
    const char *reason;
    if (stt_security_validate(&v, &reason) != 0) {
        stt_reply_error_raw(r, 400, "bad_request", reason);
        return;
    }
    stt_json_write(&b, &v);
    int rc = stt_db_set_security(r->db, b.base, b.len);
    stt_buf_free(&b);
    if (rc)
        stt_reply_error(r, rc, NULL);
    else
        stt_reply_ok(r, 200);
}

/* A compaction deletes superseded revision bodies and stems trees to the current
 * revs_limit. It runs on a thread of its own, as CouchDB's does, and db info
 * shows compact_running meanwhile. */
static void *compact_main(void *arg)
{
    stt_db_t *db = arg;
    stt_db_compact(db, true);
    stt_db_release(db);
    return NULL;
}

void stt_h_compact(stt_hreq_t *r)
{
    if (!stt_require_json(r)) return;
    stt_db_t *db;
    pthread_t t;
    pthread_attr_t attr;
    if (stt_db_open(stt__server->store, r->dbname.base, r->dbname.len, &db) == 0) {
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        stt_db_compact_begin(db);
        if (pthread_create(&t, &attr, compact_main, db) != 0) {
            stt_db_compact(db, true);
            stt_db_release(db);
        }
        pthread_attr_destroy(&attr);
    }
    stt_reply_ok(r, 202);
}

void stt_h_ensure_full_commit(stt_hreq_t *r)
{
    /* every acknowledged write is already synced */
    stt_buf_t b = STT_BUF_INIT;
    stt_buf_appends(&b, "{\"ok\":true,\"instance_start_time\":\"0\"}");
    stt_reply_json(r, 201, &b);
}
