/* The revisions a _changes filter judges (_selector, a design doc's filter, _view),
 * for h_changes.c and the replicator's local endpoint. CouchDB's couch_changes opens
 * with open_revs each revision the row would list (every leaf with style=all_docs,
 * deleted ones too, else the winner) and the row lists those that passed; a doc none
 * of whose revisions passed has no row. _doc_ids and _design judge the id only and
 * keep every leaf (apply_style). */
#include "replication/replication.h"
#include "replication/selector.h"

int stt_filter_node(const stt_doc_t *d, const char *rev, size_t revlen)
{
    /* split by hand: a stored rev may be one stt_rev_parse refuses from a client
     * (generation 0, an odd id: replicated writes accept them as CouchDB does) */
    uint64_t gen = 0;
    size_t i = 0;
    for (; i < revlen && rev[i] >= '0' && rev[i] <= '9'; i++)
        gen = gen * 10 + (uint64_t)(rev[i] - '0');
    if (i == 0 || i == revlen || rev[i] != '-') return -1;
    return stt_revtree_find(&d->tree, gen, rev + i + 1, revlen - i - 1);
}

void stt_filter_doc(stt_reader_t *rd, const stt_doc_t *d, int node, stt_buf_t *out)
{
    stt_render_opts_t o = {0};
    size_t at = out->len;
    if (stt_doc_render(rd, d, node, &o, out) == 0) return;
    /* no stored body: CouchDB's stub of a deletion, {_id, _rev, _deleted} */
    out->len = at;
    stt_buf_appends(out, "{\"_id\":");
    stt_json_write_str(out, d->id, d->idlen);
    stt_buf_appends(out, ",\"_rev\":\"");
    stt_revtree_format(&d->tree, node, out);
    stt_buf_appendc(out, '"');
    if (d->tree.nodes[node].flags & STT_REV_DELETED) stt_buf_appends(out, ",\"_deleted\":true");
    stt_buf_appendc(out, '}');
}

bool stt_filter_selector_node(stt_reader_t *rd, const stt_doc_t *d, int node, const struct stt_selector *sel)
{
    stt_buf_t b = STT_BUF_INIT;
    stt_render_opts_t o = {0};
    bool ok = false;
    if (stt_doc_render(rd, d, node, &o, &b) == 0) {
        stt_arena_t a = STT_ARENA_INIT;
        stt_json_t doc;
        if (stt_json_parse(&a, b.base, b.len, &doc, NULL, 0) == 0) ok = stt_selector_match(sel, &doc);
        stt_arena_free(&a);
    }
    stt_buf_free(&b);
    return ok;
}
