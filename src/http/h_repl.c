/* _revs_diff and _bulk_get: what replicators ask before and while copying. */
#include "src/http/http.h"
#include "src/http/splice.h"
#include "access/access.h"
#include "src/http/multipart.h"
#include "replication/replication.h"
#include "src/common/err.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool json_body(stt_hreq_t *r, stt_json_t *body)
{
    return stt_require_json(r) && stt_body_json(r, body, "Request body must be a JSON object") == 0;
}

/* A doc the user cannot see, and never could, is unknown to them; one shared with
 * them once is known, so that their replica keeps the removal it was sent. */
static bool access_visible(void *ctx, const stt_doc_t *d)
{
    return stt_access_winner(ctx, d) >= 0 || stt_access_was_shared(ctx, d->id, d->idlen);
}

void stt_h_revs_diff(stt_hreq_t *r)
{
    stt_json_t body;
    if (!json_body(r, &body)) return;
    stt_reader_t *rd;
    stt_reader_open(r->db, &rd);
    stt_buf_t b = STT_BUF_INIT;
    const char *reason = NULL;
    stt_access_t *acc = stt__access(r);
    int rc = stt_revs_diff(rd, &r->arena, &body, &b, &reason, acc ? access_visible : NULL, acc);
    stt_reader_close(rd);
    if (rc) {
        stt_buf_free(&b);
        stt_reply_error(r, rc, reason);
        return;
    }
    stt_reply_json(r, 200, &b);
}

/* ------------------------------------------------------------------ _bulk_get */

/* Root-to-leaf order of the tree, children by id: the order CouchDB's key tree
 * folds in, which _bulk_get without a rev answers in (couchdb-golden
 * bulk_get_revs). Compares the two paths from their roots. */
static int tree_order_cmp(const stt_revtree_t *t, int a, int b, int *pa, int *pb)
{
    size_t na = stt_revtree_path(t, a, pa, t->n), nb = stt_revtree_path(t, b, pb, t->n);
    while (na && nb) {
        int c = stt_revtree_cmp(t, pa[--na], pb[--nb]);
        if (c) return c;
    }
    return (na > nb) - (na < nb);
}

static void sort_tree_order(const stt_revtree_t *t, int *nodes, size_t n)
{
    if (n < 2) return;
    int *pa = stt_xmalloc(t->n * sizeof(int)), *pb = stt_xmalloc(t->n * sizeof(int));
    for (size_t i = 1; i < n; i++) {
        int v = nodes[i];
        size_t j = i;
        while (j > 0 && tree_order_cmp(t, nodes[j - 1], v, pa, pb) > 0) {
            nodes[j] = nodes[j - 1];
            j--;
        }
        nodes[j] = v;
    }
    free(pa);
    free(pb);
}

static void bulk_error(stt_buf_t *b, const stt_json_t *id, const char *rev, size_t revlen, bool rev_null,
                       const char *error, const char *reason)
{
    stt_buf_appends(b, "{\"error\":{\"id\":");
    if (id)
        stt_json_write(b, id);
    else
        stt_buf_appends(b, "null");
    stt_buf_appends(b, ",\"rev\":");
    if (rev_null)
        stt_buf_appends(b, "null");
    else
        stt_json_write_str(b, rev, revlen);
    stt_buf_appends(b, ",\"error\":");
    stt_json_write_cstr(b, error);
    stt_buf_appends(b, ",\"reason\":");
    stt_json_write_cstr(b, reason);
    stt_buf_appends(b, "}}");
}

void stt_h_bulk_get(stt_hreq_t *r)
{
    stt_json_t body;
    if (!json_body(r, &body)) return;
    const stt_json_t *docs = stt_json_get(&body, "docs");
    if (!docs || docs->type != STT_JSON_ARRAY) {
        stt_reply_error_raw(r, 400, "bad_request", "Missing JSON list of 'docs'.");
        return;
    }
    stt_render_opts_t o;
    bool latest = false;
    if (stt_render_opts_from_query(r, &o) != 0 || stt_q_bool(r, "latest", &latest) != 0) return;
    stt_reader_t *rd;
    stt_reader_open(r->db, &rd);
    stt_buf_t b = STT_BUF_INIT;
    stt_splice_t plan = {0};
    if (o.attachments) {
        o.inline_att = stt_splice_mark;
        o.inline_ctx = &plan;
    }
    stt_buf_appends(&b, "{\"results\":[");
    int *nodes = NULL;
    size_t capnodes = 0;
    for (uint32_t i = 0; i < docs->len; i++) {
        const stt_json_t *e = &docs->u.items[i];
        const stt_json_t *id = stt_json_get(e, "id"), *rev = stt_json_get(e, "rev");
        if (i) stt_buf_appendc(&b, ',');
        stt_buf_appends(&b, "{\"id\":");
        if (stt_json_is_str(id))
            stt_json_write(&b, id);
        else
            stt_buf_appends(&b, "null");
        stt_buf_appends(&b, ",\"docs\":[");
        if (!stt_json_is_str(id)) {
            bulk_error(&b, NULL, NULL, 0, true, "bad_request", "document id missed");
            stt_buf_appends(&b, "]}");
            continue;
        }
        stt_render_opts_t eo = o;
        const stt_json_t *since = stt_json_get(e, "atts_since");
        if (since && since->type == STT_JSON_ARRAY) {
            stt_rev_t *revs = stt_arena_alloc(&r->arena, (since->len ? since->len : 1) * sizeof(*revs));
            size_t n = 0;
            for (uint32_t k = 0; k < since->len; k++)
                if (since->u.items[k].type == STT_JSON_STRING &&
                    stt_rev_parse(since->u.items[k].u.s, since->u.items[k].len, &revs[n]) == 0)
                    n++;
            eo.atts_since = revs;
            eo.natts_since = n;
        }
        stt_rev_t rv;
        bool has_rev = stt_json_is_str(rev);
        if (has_rev && stt_rev_parse(rev->u.s, rev->len, &rv) != 0) {
            bulk_error(&b, id, rev->u.s, rev->len, false, "bad_request", "Invalid rev format");
            stt_buf_appends(&b, "]}");
            continue;
        }
        stt_doc_t d;
        if (stt_doc_get(rd, id->u.s, id->len, &d) != 0) {
            bulk_error(&b, id, has_rev ? rev->u.s : "undefined", has_rev ? rev->len : 9, false, "not_found", "missing");
            stt_buf_appends(&b, "]}");
            continue;
        }
        if (d.tree.n > capnodes) {
            capnodes = d.tree.n;
            nodes = stt_xrealloc(nodes, capnodes * sizeof(int));
        }
        size_t n = 0;
        if (!has_rev) {
            /* no rev: every leaf, in tree order */
            n = stt_revtree_leaves(&d.tree, nodes);
            sort_tree_order(&d.tree, nodes, n);
        } else {
            int node = stt_revtree_find(&d.tree, rv.gen, rv.id, rv.idlen);
            if (node >= 0 && latest && !stt_revtree_is_leaf(&d.tree, node))
                n = stt_revtree_leaves_under(&d.tree, node, nodes);
            else if (node >= 0 && (d.tree.nodes[node].flags & STT_REV_HAS_BODY))
                nodes[n++] = node;
        }
        bool stub[n ? n : 1];
        memset(stub, 0, sizeof(stub));
        if (stt__access(r)) n = stt_access_filter_nodes(stt__access(r), &d, nodes, stub, n);
        if (n == 0) {
            bulk_error(&b, id, has_rev ? rev->u.s : "undefined", has_rev ? rev->len : 9, false, "not_found", "missing");
        }
        for (size_t k = 0; k < n; k++) {
            if (k) stt_buf_appendc(&b, ',');
            stt_buf_appends(&b, "{\"ok\":");
            if (stub[k])
                stt_access_render_stub(&d, nodes[k], &b);
            else {
                size_t len0 = b.len, n0 = plan.n;
                if (stt_doc_render(rd, &d, nodes[k], &eo, &b) != 0) {
                    /* what the failed render wrote goes, marks included */
                    b.len = len0;
                    for (size_t m = n0; m < plan.n; m++)
                        plan.bytes -= plan.atts[m].out_len;
                    plan.n = n0;
                    stt_buf_appends(&b, "null");
                }
            }
            stt_buf_appendc(&b, '}');
        }
        stt_buf_appends(&b, "]}");
        stt_doc_free(&d);
    }
    free(nodes);
    stt_buf_appends(&b, "]}");
    stt_splice_send_json(r, rd, &b, &plan, NULL);
    stt_reader_close(rd);
}
