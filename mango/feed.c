/* Selector feeds from an index (mango.h says what and why). The chosen index's
 * rows give the doc ids; each doc's current seq comes from one snapshot opened
 * after the index update, so a doc changed meanwhile (seq past upto) is left to
 * the caller's scan of the by-seq index past upto, and none is given twice. */
#include "mango/mango_int.h"
#include "index/index.h"
#include "replication/replication.h"
#include "src/common/err.h"
#include <stdlib.h>
#include <string.h>

typedef struct {
    stt_reader_t *rd;
    uint64_t since, upto;
    stt_mango_feed_row_t *v;
    size_t n, cap;
} collect_t;

static int on_row(void *ctx, const stt_index_row_t *row)
{
    collect_t *c = ctx;
    stt_doc_t d;
    if (stt_doc_get(c->rd, row->id, row->idlen, &d) != 0) return 0;
    uint64_t seq = d.seq;
    stt_doc_free(&d);
    if (seq <= c->since || seq > c->upto) return 0;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        c->v = stt_xrealloc(c->v, c->cap * sizeof(*c->v));
    }
    c->v[c->n++] = (stt_mango_feed_row_t){stt_xstrndup(row->id, row->idlen), row->idlen, seq};
    return 0;
}

static int by_seq(const void *a, const void *b)
{
    uint64_t x = ((const stt_mango_feed_row_t *)a)->seq, y = ((const stt_mango_feed_row_t *)b)->seq;
    return (x > y) - (x < y);
}

void stt_mango_feed_free(stt_mango_feed_row_t *rows, size_t nrows)
{
    for (size_t i = 0; i < nrows; i++)
        free(rows[i].id);
    free(rows);
}

/* The holding index with the fewest rows as they stand (before the update). */
static int choose(stt_db_t *db, stt_arena_t *a, const stt_json_t *norm, stt_ddoc_views_t *dv, int *view)
{
    stt__index_t *ix;
    size_t nix;
    int rc = stt__indexes_list(db, a, &ix, &nix);
    if (rc) return rc;
    uint64_t best = UINT64_MAX;
    rc = STT_E_NOT_FOUND;
    for (size_t i = 0; i < nix; i++) {
        if (!stt__index_holds(a, norm, &ix[i])) continue;
        stt_ddoc_views_t d;
        if (stt_ddoc_views_load(db, stt_arena_strndup(a, ix[i].ddoc, ix[i].ddoclen), a, &d) != 0) continue;
        int v = stt_ddoc_view_find(&d, ix[i].name, ix[i].namelen);
        stt_index_info_t info;
        if (v < 0 || stt_index_info(db, &d, &info) != 0) continue;
        uint64_t rows = info.exists ? info.nrows : UINT64_MAX - 1; /* not built yet: last resort */
        if (rows < best) {
            best = rows;
            *dv = d;
            *view = v;
            rc = 0;
        }
    }
    return rc;
}

int stt_mango_feed_rows(stt_db_t *db, const stt_json_t *sel, uint64_t since, stt_mango_feed_row_t **rows, size_t *nrows,
                        uint64_t *upto)
{
    stt_arena_t a = STT_ARENA_INIT;
    stt_selector_t *compiled = NULL;
    collect_t c = {0};
    stt_json_t norm;
    stt_ddoc_views_t dv;
    int view = -1;
    int rc = sel && sel->type == STT_JSON_OBJECT && stt_selector_compile(&a, sel, &compiled, NULL, 0) == 0
                 ? 0
                 : STT_E_BAD_REQUEST;
    stt_selector_free(compiled);
    if (rc) goto exit;
    stt_buf_t b = STT_BUF_INIT;
    stt__selector_normalize(&b, sel);
    rc = stt_json_parse(&a, b.base, b.len, &norm, NULL, 0) ? STT_E_INTERNAL : 0;
    stt_buf_free(&b);
    if (rc == 0) rc = choose(db, &a, &norm, &dv, &view);
    stt_qs_err_t qe = {0};
    if (rc == 0) rc = stt_index_update(db, &dv, &a, &qe);
    stt_index_info_t info;
    if (rc == 0) rc = stt_index_info(db, &dv, &info);
    if (rc) goto exit;
    c.since = since;
    c.upto = info.update_seq;
    rc = stt_reader_open(db, &c.rd);
    if (rc == 0) rc = stt_index_rows(db, &dv, view, NULL, 0, NULL, 0, false, on_row, &c);
    if (c.rd) stt_reader_close(c.rd);
    if (rc) {
        stt_mango_feed_free(c.v, c.n);
        goto exit;
    }
    if (c.n) qsort(c.v, c.n, sizeof(*c.v), by_seq);
    *rows = c.v;
    *nrows = c.n;
    *upto = c.upto;
exit:
    stt_arena_free(&a);
    return rc;
}

/* ------------------------------------------------------------------ as a scan uses it */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

int stt_mango_feed_set(stt_db_t *db, const stt_json_t *sel, uint64_t since, stt_mango_feed_set_t *out)
{
    stt_mango_feed_row_t *rows;
    size_t n;
    uint64_t upto;
    int rc = stt_mango_feed_rows(db, sel, since, &rows, &n, &upto);
    if (rc) return rc;
    out->seqs = stt_xmalloc((n ? n : 1) * sizeof(uint64_t));
    for (size_t i = 0; i < n; i++)
        out->seqs[i] = rows[i].seq; /* rows come in seq order */
    out->n = n;
    out->upto = upto;
    stt_mango_feed_free(rows, n);
    return 0;
}

bool stt_mango_feed_may_match(const stt_mango_feed_set_t *set, const stt_doc_summary_t *s)
{
    return s->seq > set->upto || s->deleted || bsearch(&s->seq, set->seqs, set->n, sizeof(uint64_t), cmp_u64);
}

void stt_mango_feed_set_free(stt_mango_feed_set_t *set)
{
    free(set->seqs);
    set->seqs = NULL;
    set->n = 0;
}
