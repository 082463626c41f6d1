/* GET /{db}/_export: every document of a database as JSON lines, one line per
 * leaf revision (conflicts and deleted leaves included) with its _revisions and
 * its attachments inline, from one snapshot. Each line is a doc as CouchDB's
 * _bulk_docs takes it with new_edits:false, so an export loads into settee or
 * CouchDB by posting its lines there (settee-import does, in batches). _local
 * docs (replication checkpoints) are not exported. settee's own endpoint: the
 * db's members may read all of it through the replication endpoints anyway. */
#include "src/http/http.h"
#include "replication/replication.h"
#include "src/common/err.h"
#include "src/common/log.h"
#include <stdlib.h>

#define CHUNK (256 * 1024)

typedef struct {
    stt_reader_t *rd;
    uint64_t seq; /* the last seq exported */
    stt_buf_t *out;
    int rc;
    int *leaves;
    size_t cap;
} export_t;

static int on_doc(void *ctx, const stt_doc_summary_t *s)
{
    export_t *x = ctx;
    stt_doc_t d;
    int rc = stt_doc_get(x->rd, s->id, s->idlen, &d);
    if (rc) {
        x->rc = rc;
        return 1;
    }
    if (x->cap < d.tree.n) {
        x->cap = d.tree.n;
        x->leaves = stt_xrealloc(x->leaves, x->cap * sizeof(int));
    }
    size_t n = stt_revtree_leaves(&d.tree, x->leaves);
    stt_render_opts_t o = {.revs = true, .attachments = true, .revs_limit = UINT32_MAX};
    for (size_t i = 0; i < n && !rc; i++) {
        rc = stt_doc_render(x->rd, &d, x->leaves[i], &o, x->out);
        stt_buf_appendc(x->out, '\n');
    }
    stt_doc_free(&d);
    if (rc) {
        x->rc = rc;
        return 1;
    }
    x->seq = s->seq;
    return x->out->len >= CHUNK;
}

static int export_produce(stt_stream_t *s, stt_buf_t *out)
{
    export_t *x = s->ctx;
    x->out = out;
    size_t before = out->len;
    int rc = stt_changes_scan(x->rd, x->seq, false, on_doc, x);
    if (rc || x->rc) {
        /* the client sees a cut-off body: its last line does not parse */
        stt_log(STT_LOG_LEVEL_ERROR, "export failed while reading the store (error %d)", rc ? rc : x->rc);
        return -1;
    }
    return out->len > before ? 1 : 0;
}

static void export_stop(stt_stream_t *s)
{
    export_t *x = s->ctx;
    stt_reader_close(x->rd);
    free(x->leaves);
    free(x);
}

static const stt_stream_ops_t export_ops = {export_produce, export_stop};

void stt_h_export(stt_hreq_t *r)
{
    export_t *x = stt_xcalloc(1, sizeof(*x));
    if (stt_reader_open(r->db, &x->rd) != 0) {
        free(x);
        stt_reply_error(r, STT_E_IO, NULL);
        return;
    }
    stt_stream_start(r, 200, "application/x-ndjson", &export_ops, x,
                     (const char *const[]){"cache-control", "must-revalidate", NULL});
}
