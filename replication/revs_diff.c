/* _revs_diff: which of the revisions a replicator offers this database lacks, and
 * the revisions it has that may be their ancestors (whose attachments the
 * replicator then need not send again). The HTTP handler and the replicator's
 * local endpoint both answer through here. */
#include "replication/replication.h"
#include "src/common/err.h"
#include <stdlib.h>
#include <string.h>

static int cmp_rev(const void *a, const void *b)
{
    const stt_rev_t *x = a, *y = b;
    if (x->gen != y->gen) return x->gen < y->gen ? -1 : 1;
    size_t m = x->idlen < y->idlen ? x->idlen : y->idlen;
    int c = memcmp(x->id, y->id, m);
    return c ? c : (x->idlen > y->idlen) - (x->idlen < y->idlen);
}

int stt_revs_diff(stt_reader_t *rd, stt_arena_t *arena, const stt_json_t *req, stt_buf_t *out, const char **reason,
                  bool (*visible)(void *ctx, const stt_doc_t *d), void *ctx)
{
    const stt_json_t body = *req;
    *reason = NULL;
    if (body.type != STT_JSON_OBJECT) return STT_E_BAD_REQUEST;
    /* validate everything before answering anything */
    for (uint32_t i = 0; i < body.len; i++) {
        const stt_json_t *v = &body.u.members[i].val;
        if (v->type != STT_JSON_ARRAY) {
            *reason = "Revs must be a list of revision ids";
            return STT_E_BAD_REQUEST;
        }
        for (uint32_t k = 0; k < v->len; k++) {
            stt_rev_t rv;
            if (v->u.items[k].type != STT_JSON_STRING ||
                stt_rev_parse(v->u.items[k].u.s, v->u.items[k].len, &rv) != 0) {
                return STT_E_BAD_REV;
            }
        }
    }
    stt_buf_t b = STT_BUF_INIT;
    stt_buf_appendc(&b, '{');
    bool any = false;
    for (uint32_t i = 0; i < body.len; i++) {
        const stt_json_member_t *m = &body.u.members[i];
        const stt_json_t *v = &m->val;
        if (v->len == 0) continue;
        stt_rev_t *revs = stt_arena_alloc(arena, v->len * sizeof(*revs));
        for (uint32_t k = 0; k < v->len; k++)
            stt_rev_parse(v->u.items[k].u.s, v->u.items[k].len, &revs[k]);
        stt_doc_t d;
        int rc = stt_doc_get(rd, m->key, m->keylen, &d);
        if (rc && rc != STT_E_NOT_FOUND) {
            stt_buf_free(&b);
            return rc;
        }
        if (!rc && visible && !visible(ctx, &d)) {
            stt_doc_free(&d);
            rc = STT_E_NOT_FOUND;
        }
        if (any) stt_buf_appendc(&b, ',');
        if (rc) {
            /* unknown doc: everything is missing, in request order */
            any = true;
            stt_json_write_str(&b, m->key, m->keylen);
            stt_buf_appends(&b, ":{\"missing\":[");
            for (uint32_t k = 0; k < v->len; k++) {
                if (k) stt_buf_appendc(&b, ',');
                stt_json_write(&b, &v->u.items[k]);
            }
            stt_buf_appends(&b, "]}");
            continue;
        }
        bool *missing = stt_xcalloc(v->len, sizeof(bool));
        int *anc = stt_xmalloc((d.tree.n ? d.tree.n : 1) * sizeof(int));
        size_t nanc = 0;
        size_t nmiss = stt_revtree_revs_diff(&d.tree, revs, v->len, missing, anc, &nanc);
        if (nmiss) {
            any = true;
            stt_rev_t *mr = stt_xmalloc(nmiss * sizeof(*mr));
            size_t n = 0;
            for (uint32_t k = 0; k < v->len; k++)
                if (missing[k]) mr[n++] = revs[k];
            qsort(mr, n, sizeof(*mr), cmp_rev);
            size_t u = 0; /* a rev asked for twice is listed once */
            for (size_t k = 0; k < n; k++)
                if (u == 0 || cmp_rev(&mr[u - 1], &mr[k]) != 0) mr[u++] = mr[k];
            n = u;
            stt_json_write_str(&b, m->key, m->keylen);
            stt_buf_appends(&b, ":{\"missing\":[");
            for (size_t k = 0; k < n; k++) {
                if (k) stt_buf_appendc(&b, ',');
                stt_buf_appendc(&b, '"');
                stt_rev_format(&b, mr[k].gen, mr[k].id, mr[k].idlen);
                stt_buf_appendc(&b, '"');
            }
            stt_buf_appendc(&b, ']');
            if (nanc) {
                stt_buf_appends(&b, ",\"possible_ancestors\":[");
                for (size_t k = 0; k < nanc; k++) {
                    if (k) stt_buf_appendc(&b, ',');
                    stt_buf_appendc(&b, '"');
                    stt_revtree_format(&d.tree, anc[k], &b);
                    stt_buf_appendc(&b, '"');
                }
                stt_buf_appendc(&b, ']');
            }
            stt_buf_appendc(&b, '}');
            free(mr);
        } else if (any) {
            b.len--; /* drop the comma written above */
            b.base[b.len] = '\0';
        }
        free(missing);
        free(anc);
        stt_doc_free(&d);
    }
    stt_buf_appendc(&b, '}');
    stt_buf_append(out, b.base, b.len);
    stt_buf_free(&b);
    return 0;
}
