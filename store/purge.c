/* _purge: removes leaf revisions as if they had never been written.
 *
 * The tree is rebuilt from the paths of the leaves that remain (revtree has no
 * node removal, and a rebuild keeps every invariant by construction). A doc left
 * without leaves disappears with its by-seq entry. The change takes a new seq so
 * that replicas following _changes see the surviving leaves. */
#include "store/store_int.h"
#include "src/common/stats.h"
#include <leveldb/c.h>
#include "src/common/err.h"
#include <stdlib.h>
#include <string.h>

int stt_doc_purge(stt_db_t *db, const char *id, size_t idlen, const stt_rev_t *revs, size_t nrevs, bool *purged)
{
    stt_store_t *s = db->store;
    stt_buf_t k = STT_BUF_INIT, v = STT_BUF_INIT;
    int rc = 0;
    for (size_t i = 0; i < nrevs; i++)
        purged[i] = false;
    /* purging makes room: it passes the free-space floor */
    if ((rc = stt__write_begin(s, true)) != 0) return rc;
    pthread_mutex_lock(&db->wlock);
    stt__ldb_enter(s);
    if (db->deleted) {
        rc = STT_E_DB_NOT_FOUND;
        goto exit;
    }
    stt__key_doc(&k, db->id, id, idlen);
    char *lerr = NULL;
    size_t vlen;
    char *raw = leveldb_get(s->ldb, s->ropts, k.base, k.len, &vlen, &lerr);
    if (lerr) {
        rc = stt__ldb_error(s, lerr, "read", false);
        goto exit;
    }
    if (!raw) {
        rc = STT_E_NOT_FOUND;
        goto exit;
    }
    stt_doc_t d;
    if (stt__doc_decode(raw, vlen, &d) != 0) {
        leveldb_free(raw);
        rc = STT_E_IO;
        goto exit;
    }
    d.id = id;
    d.idlen = idlen;
    int *leaves = stt_xmalloc(d.tree.n * sizeof(int));
    size_t nleaves = stt_revtree_leaves(&d.tree, leaves);
    bool *drop = stt_xcalloc(d.tree.n, sizeof(bool));
    size_t ndrop = 0;
    for (size_t i = 0; i < nrevs; i++) {
        int node = stt_revtree_find(&d.tree, revs[i].gen, revs[i].id, revs[i].idlen);
        if (node >= 0 && stt_revtree_is_leaf(&d.tree, node) && !drop[node]) {
            drop[node] = true;
            purged[i] = true;
            ndrop++;
        }
    }
    if (ndrop) {
        /* counters change below; a failed write puts them back */
        uint64_t saved[6] = {db->update_seq, db->doc_count,   db->doc_del_count,
                             db->purge_seq,  db->active_size, db->old_size};
        leveldb_writebatch_t *wb = leveldb_writebatch_create();
        int w = stt_revtree_winner(&d.tree);
        int old_state = (d.tree.nodes[w].flags & STT_REV_DELETED) ? 2 : 1;
        stt__key_seq(&v, db->id, d.seq);
        leveldb_writebatch_delete(wb, v.base, v.len);
        stt_revtree_t nt = STT_REVTREE_INIT;
        /* rebuild from the surviving leaves' paths */
        int *path = stt_xmalloc(d.tree.n * sizeof(int));
        stt_rev_t *ids = stt_xmalloc(d.tree.n * sizeof(stt_rev_t));
        for (size_t l = 0; l < nleaves; l++) {
            if (drop[leaves[l]]) continue;
            size_t np = stt_revtree_path(&d.tree, leaves[l], path, d.tree.n);
            for (size_t p = 0; p < np; p++) {
                ids[p].gen = d.tree.nodes[path[p]].gen;
                ids[p].id = stt_revtree_id(&d.tree, path[p]);
                ids[p].idlen = d.tree.nodes[path[p]].idlen;
            }
            int leaf;
            bool added;
            stt_revtree_merge_path(&nt, ids[0].gen, ids, np, (d.tree.nodes[leaves[l]].flags & STT_REV_DELETED) != 0,
                                   &leaf, &added);
            /* a surviving revision keeps its body, kept superseded ones included */
            for (size_t p = 0; p < np; p++) {
                int j = stt_revtree_find(&nt, ids[p].gen, ids[p].id, ids[p].idlen);
                if (j >= 0) nt.nodes[j].flags |= d.tree.nodes[path[p]].flags & STT_REV_HAS_BODY;
            }
        }
        free(path);
        free(ids);
        stt__refdrop_t refs = {0};
        /* kept bodies ('O' keys) of revisions the purge removed go with their
         * references (a surviving revision is on a surviving leaf's path, so it
         * is no leaf unless it was one) */
        for (uint32_t i = 0; i < d.tree.n && !rc; i++) {
            const stt_rev_node_t *nd = &d.tree.nodes[i];
            if (!(nd->flags & STT_REV_HAS_BODY) || stt_revtree_is_leaf(&d.tree, (int)i)) continue;
            const char *rid = stt_revtree_id(&d.tree, (int)i);
            if (stt_revtree_find(&nt, nd->gen, rid, nd->idlen) >= 0) continue;
            stt_rev_body_t b;
            int brc = stt__old_body_get(db, s->ropts, id, idlen, &d.tree, (int)i, &b);
            if (brc == STT_E_NOT_FOUND) continue;
            if (brc) {
                rc = brc;
                break;
            }
            stt__key_old(&v, db->id, id, idlen, nd->gen, rid, nd->idlen);
            leveldb_writebatch_delete(wb, v.base, v.len);
            db->old_size -= b.jsonlen < db->old_size ? b.jsonlen : db->old_size;
            for (size_t a = 0; a < b.natts; a++)
                stt__refdrop_add(&refs, b.atts[a].digest);
            stt_rev_body_free(&b);
        }
        /* a purged leaf's attachments lose a reference each */
        for (size_t l = 0; l < nleaves; l++) {
            if (!drop[leaves[l]]) continue;
            stt_rev_body_t b;
            if (stt__body_at(&d, leaves[l], &b) != 0) continue;
            for (size_t a = 0; a < b.natts; a++)
                stt__refdrop_add(&refs, b.atts[a].digest);
            db->active_size -= b.jsonlen < db->active_size ? b.jsonlen : db->active_size;
            stt_rev_body_free(&b);
        }
        if (!rc) rc = stt__refdrop_apply(&refs, db, wb);
        stt__refdrop_free(&refs);
        if (old_state == 1)
            db->doc_count--;
        else
            db->doc_del_count--;
        if (nt.n == 0) {
            leveldb_writebatch_delete(wb, k.base, k.len);
        } else {
            uint64_t seq = ++db->update_seq;
            int nw = stt_revtree_winner(&nt);
            if (nt.nodes[nw].flags & STT_REV_DELETED)
                db->doc_del_count++;
            else
                db->doc_count++;
            stt_buf_t rec = STT_BUF_INIT, sum = STT_BUF_INIT;
            stt__doc_reencode(&d, &nt, seq, &rec, &sum);
            leveldb_writebatch_put(wb, k.base, k.len, rec.base, rec.len);
            stt__key_seq(&v, db->id, seq);
            leveldb_writebatch_put(wb, v.base, v.len, sum.base, sum.len);
            stt_buf_free(&rec);
            stt_buf_free(&sum);
        }
        db->purge_seq++;
        if (!rc) {
            stt__db_put_record(db, wb);
            leveldb_write(s->ldb, s->wsync, wb, &lerr);
            if (lerr) {
                rc = stt__ldb_error(s, lerr, "purge", true);
            } else {
                stt_stats_inc(STT_ST_DATABASE_PURGES);
            }
        }
        leveldb_writebatch_destroy(wb);
        if (rc) {
            db->update_seq = saved[0], db->doc_count = saved[1], db->doc_del_count = saved[2];
            db->purge_seq = saved[3], db->active_size = saved[4], db->old_size = saved[5];
        }
        stt_revtree_free(&nt);
    }
    free(drop);
    free(leaves);
    stt_doc_free(&d);
exit:
    stt__ldb_leave(s);
    pthread_mutex_unlock(&db->wlock);
    stt_buf_free(&k);
    stt_buf_free(&v);
    return rc;
}
