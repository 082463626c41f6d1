/* The view index's housekeeping endpoints: _design/{ddoc}/_info,
 * _view_cleanup (drop the indexes no design doc names any more), _compact/{ddoc}
 * (LevelDB compacts by itself: accepted and done, as CouchDB answers it),
 * _temp_view (gone in CouchDB 3) and _active_tasks (running index builds). */
#include "index/index.h"
#include "src/common/err.h"
#include "replication/replication.h"
#include "src/http/http.h"
#include "replication/replicator.h"
#include <stdlib.h>
#include <string.h>
#include <unicode/ucol.h>

/* ------------------------------------------------------------------ _info */

static void info_run(stt_vjob_t *j)
{
    const char *ddoc_id = j->ctx;
    stt_ddoc_views_t dv;
    int rc = stt_ddoc_views_load(j->db, ddoc_id, &j->arena, &dv);
    if (rc) {
        j->status = rc == STT_E_NOT_FOUND ? 404 : 500;
        stt_buf_appends(&j->body, rc == STT_E_NOT_FOUND ? "{\"error\":\"not_found\",\"reason\":\"missing\"}"
                                                        : "{\"error\":\"unknown_error\",\"reason\":\"io_error\"}");
        return;
    }
    stt_index_info_t ii;
    stt_index_info(j->db, &dv, &ii);
    stt_db_info_t di;
    stt_db_info(j->db, &di);
    uint64_t pending = di.update_seq > ii.update_seq ? di.update_seq - ii.update_seq : 0;
    j->status = 200;
    stt_buf_appends(&j->body, "{\"name\":");
    stt_json_write_cstr(&j->body, ddoc_id + 8);
    stt_buf_appendf(&j->body,
                    ",\"view_index\":{\"updates_pending\":{\"minimum\":%llu,\"preferred\":%llu,\"total\":%llu},"
                    "\"waiting_commit\":false,\"waiting_clients\":0,\"updater_running\":%s,\"update_seq\":%llu,"
                    "\"sizes\":{\"file\":%llu,\"external\":%llu,\"active\":%llu},\"signature\":\"%s\","
                    "\"purge_seq\":0,\"language\":",
                    (unsigned long long)pending, (unsigned long long)pending, (unsigned long long)pending,
                    stt_index_updating(&dv) ? "true" : "false", (unsigned long long)ii.update_seq,
                    (unsigned long long)ii.size, (unsigned long long)ii.size, (unsigned long long)ii.size, dv.sighex);
    stt_json_write_cstr(&j->body, dv.lang);
    UVersionInfo v;
    UErrorCode st = U_ZERO_ERROR;
    UCollator *c = ucol_open("", &st);
    memset(v, 0, sizeof(v));
    if (U_SUCCESS(st)) ucol_getVersion(c, v);
    if (c) ucol_close(c);
    stt_buf_appendf(&j->body, ",\"compact_running\":false,\"collator_versions\":[\"%u.%u\"]}}", v[0], v[1]);
}

static int submit(stt_hreq_t *r, void (*run)(stt_vjob_t *), const char *ctx, size_t len)
{
    stt_vjob_t *j = stt_xcalloc(1, sizeof(*j));
    j->ctx = stt_arena_strndup(&j->arena, ctx, len);
    j->run = run;
    if (stt_db_open(stt__server->store, r->dbname.base, r->dbname.len, &j->db) != 0) {
        stt_vjob_free(j);
        stt_reply_error(r, STT_E_DB_NOT_FOUND, NULL);
        return -1;
    }
    if (stt_vjob_submit(r, j) != 0) {
        stt_reply_error_raw(r, 503, "service_unavailable", "Too many view requests.");
        return -1;
    }
    return 0;
}

void stt_h_view_info(stt_hreq_t *r)
{
    if (!(r->method & (STT_M_GET | STT_M_HEAD))) {
        stt_reply_method_not_allowed(r, "GET");
        return;
    }
    submit(r, info_run, r->docid.base, r->docid.len);
}

/* ------------------------------------------------------------------ _view_cleanup */

typedef struct {
    stt_arena_t *arena;
    stt_db_t *db;
    unsigned char (*sigs)[16];
    size_t n, cap;
} keep_t;

static int on_ddoc(void *ctx, const stt_doc_summary_t *s)
{
    keep_t *k = ctx;
    if (s->idlen < 8 || memcmp(s->id, "_design/", 8) != 0) return 1;
    stt_ddoc_views_t dv;
    char *id = stt_arena_strndup(k->arena, s->id, s->idlen);
    if (stt_ddoc_views_load(k->db, id, k->arena, &dv) != 0) return 0;
    if (k->n == k->cap) {
        k->cap = k->cap ? k->cap * 2 : 8;
        k->sigs = stt_xrealloc(k->sigs, k->cap * 16);
    }
    memcpy(k->sigs[k->n++], dv.sig, 16);
    return 0;
}

static void cleanup_run(stt_vjob_t *j)
{
    keep_t k = {.arena = &j->arena, .db = j->db};
    stt_reader_t *rd;
    int rc = stt_reader_open(j->db, &rd);
    if (rc == 0) {
        stt_range_t range = {.start = "_design/", .startlen = 8, .end = "_design0", .endlen = 8};
        rc = stt_docs_scan(rd, &range, on_ddoc, &k);
        stt_reader_close(rd);
    }
    if (rc == 0) rc = stt_index_cleanup(j->db, (const unsigned char(*)[16])k.sigs, k.n);
    free(k.sigs);
    j->status = rc ? 500 : 202;
    stt_buf_appends(&j->body, rc ? "{\"error\":\"unknown_error\",\"reason\":\"io_error\"}" : "{\"ok\":true}");
}

void stt_h_view_cleanup(stt_hreq_t *r)
{
    submit(r, cleanup_run, "", 0);
}

/* ------------------------------------------------------------------ _compact/{ddoc} */

void stt_h_view_compact(stt_hreq_t *r)
{
    if (!stt_require_json(r)) return;
    stt_reader_t *rd;
    int rc = stt_reader_open(r->db, &rd);
    if (rc) {
        stt_reply_error(r, rc, NULL);
        return;
    }
    char *id = stt_arena_alloc(&r->arena, 8 + r->seg[2].len + 1);
    memcpy(id, "_design/", 8);
    memcpy(id + 8, r->seg[2].base, r->seg[2].len);
    id[8 + r->seg[2].len] = 0;
    stt_doc_t d;
    rc = stt_doc_get(rd, id, 8 + r->seg[2].len, &d);
    int node;
    bool live = rc == 0 && stt_doc_select(&d, NULL, &node) == 0;
    if (rc == 0) stt_doc_free(&d);
    stt_reader_close(rd);
    if (!live) {
        stt_reply_error_raw(r, 404, "not_found", "missing");
        return;
    }
    stt_reply_ok(r, 202);
}

/* ------------------------------------------------------------------ _temp_view, _active_tasks */

void stt_h_temp_view(stt_hreq_t *r)
{
    stt_reply_error_raw(r, 410, "gone", "Temporary views are not supported in CouchDB");
}

void stt_h_view_active_tasks(stt_hreq_t *r)
{
    stt_buf_t b = STT_BUF_INIT;
    stt_buf_appendc(&b, '[');
    stt_index_tasks(&b);
    stt_rep_tasks(&b, b.len > 1);
    stt_buf_appendc(&b, ']');
    stt_reply_json(r, 200, &b);
}
