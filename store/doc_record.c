/* Encoding of doc records and by-seq summaries (layout: store_int.h). The one
 * writer of that format: writes, purges and compactions all come through here;
 * doc_read.c is its reader. */
#include "store/store_int.h"
#include <stdlib.h>

void stt__doc_encode(const stt_revtree_t *t, uint64_t seq, const char *id, size_t idlen, const stt__rec_body_t *bodies,
                     size_t nbodies, stt_buf_t *v, stt_buf_t *summary)
{
    int leaves_buf[64];
    int *leaves = t->n <= 64 ? leaves_buf : stt_xmalloc(t->n * sizeof(int));
    size_t nleaves = stt_revtree_leaves(t, leaves);
    int w = leaves[0];
    bool deleted = (t->nodes[w].flags & STT_REV_DELETED) != 0;
    stt_buf_reset(v);
    stt_buf_appendc(v, 1);
    stt_buf_appendc(v, deleted ? 1 : 0);
    stt_buf_append_varint(v, seq);
    stt_buf_t rev = STT_BUF_INIT;
    stt_revtree_format(t, w, &rev);
    stt_buf_append_varint(v, rev.len);
    stt_buf_append(v, rev.base, rev.len);
    stt_buf_t tree = STT_BUF_INIT;
    stt_revtree_encode(t, &tree);
    stt_buf_append_varint(v, tree.len);
    stt_buf_append(v, tree.base, tree.len);
    stt_buf_free(&tree);
    stt_buf_append_varint(v, nbodies);
    for (size_t i = 0; i < nbodies; i++) {
        const stt__rec_body_t *b = &bodies[i];
        stt_buf_append_varint(v, (uint64_t)b->node);
        stt__body_encode(b->atts, b->natts, b->json, b->jsonlen, v);
    }
    if (summary) {
        stt_buf_reset(summary);
        stt_buf_append_varint(summary, idlen);
        stt_buf_append(summary, id, idlen);
        stt_buf_appendc(summary, deleted ? 1 : 0);
        stt_buf_append_varint(summary, nleaves);
        for (size_t i = 0; i < nleaves; i++) {
            stt_buf_reset(&rev);
            stt_revtree_format(t, leaves[i], &rev);
            stt_buf_appendc(summary, (t->nodes[leaves[i]].flags & STT_REV_DELETED) ? 1 : 0);
            stt_buf_append_varint(summary, rev.len);
            stt_buf_append(summary, rev.base, rev.len);
        }
    }
    stt_buf_free(&rev);
    if (leaves != leaves_buf) free(leaves);
}

void stt__doc_reencode(const stt_doc_t *d, const stt_revtree_t *nt, uint64_t seq, stt_buf_t *rec, stt_buf_t *summary)
{
    stt__rec_body_t *rb = stt_xcalloc(nt->n ? nt->n : 1, sizeof(*rb));
    stt_rev_body_t *held = stt_xcalloc(nt->n ? nt->n : 1, sizeof(*held));
    size_t nb = 0;
    for (uint32_t i = 0; i < nt->n; i++) {
        if (!stt_revtree_is_leaf(nt, (int)i)) continue;
        int old = stt_revtree_find(&d->tree, nt->nodes[i].gen, stt_revtree_id(nt, (int)i), nt->nodes[i].idlen);
        if (old < 0 || stt__body_at(d, old, &held[nb]) != 0) continue;
        rb[nb] = (stt__rec_body_t){(int)i, held[nb].atts, held[nb].natts, held[nb].json, held[nb].jsonlen};
        nb++;
    }
    stt__doc_encode(nt, seq, d->id, d->idlen, rb, nb, rec, summary);
    for (size_t i = 0; i < nb; i++)
        stt_rev_body_free(&held[i]);
    free(held);
    free(rb);
}
