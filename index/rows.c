/* Raw row scans for callers that plan their own ranges (Mango): rows of one
 * view between two byte bounds, without rendering, offsets or reduce. */
#include "index/index_int.h"
#include "src/common/err.h"
#include <string.h>

static void bound(stt_buf_t *b, const stt_ddoc_views_t *dv, int view, const char *k, size_t klen, bool end)
{
    stt__ikey(b, IK_ROW, dv->sig);
    if (k) {
        stt_buf_appendc(b, (char)view);
        stt_buf_append(b, k, klen);
    } else {
        stt_buf_appendc(b, (char)(end ? view + 1 : view));
    }
}

static int in_range(const char *k, size_t kl, const stt_buf_t *lo, const stt_buf_t *hi)
{
    size_t n = kl < lo->len ? kl : lo->len;
    int c = memcmp(k, lo->base, n);
    if (c < 0 || (c == 0 && kl < lo->len)) return -1;
    n = kl < hi->len ? kl : hi->len;
    c = memcmp(k, hi->base, n);
    if (c > 0 || (c == 0 && kl >= hi->len)) return 1;
    return 0;
}

int stt_index_rows(stt_db_t *db, const stt_ddoc_views_t *dv, int view, const char *lo, size_t lolen, const char *hi,
                   size_t hilen, bool descending, int (*cb)(void *ctx, const stt_index_row_t *row), void *ctx)
{
    stt_buf_t l = STT_BUF_INIT, h = STT_BUF_INIT;
    bound(&l, dv, view, lo, lolen, false);
    bound(&h, dv, view, hi, hilen, true);
    stt_ikv_iter_t *it = stt_ikv_iter_new(db);
    int rc = 0;
    if (descending) {
        stt_ikv_seek_le(it, h.base, h.len);
        /* seek_le lands on hi itself when a row has exactly that key: it is out */
        if (stt_ikv_valid(it)) {
            size_t kl;
            const char *k = stt_ikv_key(it, &kl);
            if (kl == h.len && memcmp(k, h.base, kl) == 0) stt_ikv_prev(it);
        }
    } else {
        stt_ikv_seek(it, l.base, l.len);
    }
    for (; stt_ikv_valid(it); descending ? stt_ikv_prev(it) : stt_ikv_next(it)) {
        size_t kl, vl;
        const char *k = stt_ikv_key(it, &kl);
        int where = in_range(k, kl, &l, &h);
        if (where != 0) break;
        const char *v = stt_ikv_value(it, &vl);
        stt__row_t row;
        if (stt__row_decode(v, vl, &row) != 0) {
            rc = STT_E_IO;
            break;
        }
        stt_index_row_t r = {k + 18, kl - 18, row.key, row.keylen, row.id, row.idlen};
        if (cb(ctx, &r)) break;
    }
    stt_ikv_iter_free(it);
    stt_buf_free(&l);
    stt_buf_free(&h);
    return rc;
}
