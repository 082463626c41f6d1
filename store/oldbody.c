/* Superseded revision bodies ('O' keys) and the attachment references they hold.
 * A body that stops being a leaf's stays readable (GET ?rev=, revs_info
 * "available", open_revs of an old rev) until a compaction deletes it, as in
 * CouchDB; keeping it apart from the doc record means an edit never rewrites the
 * history it leaves behind. */
#include "store/store_int.h"
#include <leveldb/c.h>
#include "src/common/codec.h"
#include "src/common/err.h"
#include <stdlib.h>
#include <string.h>

#define OLD_VERSION 1

void stt__key_old(stt_buf_t *k, uint64_t dbid, const char *id, size_t idlen, uint64_t gen, const char *rev,
                  size_t revlen)
{
    stt__key_db(k, K_OLD, dbid);
    /* the id's length first, so that one doc's keys are contiguous and no id is
     * a prefix of another's keys */
    stt_buf_append_be32(k, (uint32_t)idlen);
    stt_buf_append(k, id, idlen);
    stt_buf_append_be64(k, gen);
    stt_buf_append(k, rev, revlen);
}

int stt__key_old_parse(const char *k, size_t klen, uint64_t dbid, const char **id, size_t *idlen, uint64_t *gen,
                       const char **rev, size_t *revlen)
{
    if (klen < 1 + 8 + 4 + 8 || k[0] != K_OLD || stt_be64(k + 1) != dbid) return -1;
    size_t n = stt_be32(k + 9);
    if (klen - 13 < n + 8) return -1;
    *id = k + 13;
    *idlen = n;
    *gen = stt_be64(k + 13 + n);
    *rev = k + 21 + n;
    *revlen = klen - 21 - n;
    return 0;
}

void stt__body_encode(const stt_att_t *atts, size_t natts, const char *json, size_t jsonlen, stt_buf_t *v)
{
    stt_buf_append_varint(v, natts);
    for (size_t a = 0; a < natts; a++) {
        const stt_att_t *at = &atts[a];
        stt_buf_append_varint(v, at->namelen);
        stt_buf_append(v, at->name, at->namelen);
        stt_buf_append_varint(v, at->ctlen);
        stt_buf_append(v, at->content_type, at->ctlen);
        stt_buf_append_varint(v, at->revpos);
        stt_buf_append_varint(v, at->length);
        stt_buf_append(v, at->digest, STT_DIGEST_LEN);
        stt_buf_appendc(v, (char)at->encoding);
        stt_buf_append_varint(v, at->encoded_length);
    }
    stt_buf_append_varint(v, jsonlen);
    stt_buf_append(v, json, jsonlen);
}

void stt__old_body_value(const stt_att_t *atts, size_t natts, const char *json, size_t jsonlen, stt_buf_t *out)
{
    stt_buf_reset(out);
    stt_buf_appendc(out, OLD_VERSION);
    stt__body_encode(atts, natts, json, jsonlen, out);
}

int stt__old_body_decode(char *v, size_t len, stt_rev_body_t *out)
{
    memset(out, 0, sizeof(*out));
    const unsigned char *p = (const unsigned char *)v, *end = p + len;
    if (len < 1 || p[0] != OLD_VERSION) goto corrupt;
    p++;
    uint64_t natts;
    if (stt_varint_read(&p, end, &natts) || natts > (uint64_t)(end - p)) goto corrupt;
    out->natts = natts;
    out->atts = natts ? stt_xcalloc(natts, sizeof(stt_att_t)) : NULL;
    for (size_t i = 0; i < natts; i++) {
        stt_att_t *a = &out->atts[i];
        uint64_t x;
        if (stt_varint_read(&p, end, &x) || x > (uint64_t)(end - p)) goto corrupt;
        a->name = (const char *)p, a->namelen = x, p += x;
        if (stt_varint_read(&p, end, &x) || x > (uint64_t)(end - p)) goto corrupt;
        a->content_type = (const char *)p, a->ctlen = x, p += x;
        if (stt_varint_read(&p, end, &x)) goto corrupt;
        a->revpos = x;
        if (stt_varint_read(&p, end, &x)) goto corrupt;
        a->length = x;
        if ((size_t)(end - p) < STT_DIGEST_LEN + 1) goto corrupt;
        memcpy(a->digest, p, STT_DIGEST_LEN);
        p += STT_DIGEST_LEN;
        a->encoding = *p++;
        if (stt_varint_read(&p, end, &x)) goto corrupt;
        a->encoded_length = x;
    }
    uint64_t jl;
    if (stt_varint_read(&p, end, &jl) || jl != (uint64_t)(end - p)) goto corrupt;
    out->json = (const char *)p;
    out->jsonlen = jl;
    out->_own = v;
    return 0;
corrupt:
    free(out->atts);
    memset(out, 0, sizeof(*out));
    leveldb_free(v);
    return STT_E_IO;
}

int stt__old_body_get(stt_db_t *db, const leveldb_readoptions_t *ro, const char *id, size_t idlen,
                      const stt_revtree_t *t, int node, stt_rev_body_t *out)
{
    stt_buf_t k = STT_BUF_INIT;
    stt__key_old(&k, db->id, id, idlen, t->nodes[node].gen, stt_revtree_id(t, node), t->nodes[node].idlen);
    char *lerr = NULL;
    size_t vlen;
    char *v = leveldb_get(db->store->ldb, ro, k.base, k.len, &vlen, &lerr);
    stt_buf_free(&k);
    if (lerr) {
        leveldb_free(lerr);
        return STT_E_IO;
    }
    if (!v) return STT_E_NOT_FOUND;
    return stt__old_body_decode(v, vlen, out);
}

int stt__old_keys_count(stt_reader_t *r, uint64_t *n)
{
    leveldb_iterator_t *it = leveldb_create_iterator(r->db->store->ldb, r->ro);
    stt_buf_t pfx = STT_BUF_INIT;
    stt__key_db(&pfx, K_OLD, r->db->id);
    *n = 0;
    for (leveldb_iter_seek(it, pfx.base, pfx.len); leveldb_iter_valid(it); leveldb_iter_next(it)) {
        size_t klen;
        const char *k = leveldb_iter_key(it, &klen);
        if (klen < pfx.len || memcmp(k, pfx.base, pfx.len) != 0) break;
        (*n)++;
    }
    char *lerr = NULL;
    leveldb_iter_get_error(it, &lerr);
    leveldb_iter_destroy(it);
    stt_buf_free(&pfx);
    if (lerr) {
        leveldb_free(lerr);
        return STT_E_IO;
    }
    return 0;
}

/* ------------------------------------------------------------------ attachment refs */

void stt__refdrop_add(stt__refdrop_t *r, const unsigned char *digest)
{
    for (size_t j = 0; j < r->n; j++)
        if (memcmp(r->digest[j], digest, STT_DIGEST_LEN) == 0) {
            r->count[j]++;
            return;
        }
    r->digest = stt_xrealloc(r->digest, (r->n + 1) * sizeof(*r->digest));
    r->count = stt_xrealloc(r->count, (r->n + 1) * sizeof(*r->count));
    memcpy(r->digest[r->n], digest, STT_DIGEST_LEN);
    r->count[r->n++] = 1;
}

int stt__refdrop_apply(stt__refdrop_t *r, stt_db_t *db, leveldb_writebatch_t *wb)
{
    stt_store_t *s = db->store;
    stt_buf_t rk = STT_BUF_INIT, cv = STT_BUF_INIT;
    int rc = 0;
    for (size_t j = 0; j < r->n && !rc; j++) {
        stt__key_att(&rk, K_ATTREF, db->id, r->digest[j]);
        char *lerr = NULL;
        size_t cl;
        char *v = leveldb_get(s->ldb, s->ropts, rk.base, rk.len, &cl, &lerr);
        if (lerr) {
            leveldb_free(lerr);
            rc = STT_E_IO;
            break;
        }
        uint64_t cnt = 0;
        if (v) {
            const unsigned char *p = (const unsigned char *)v;
            stt_varint_read(&p, p + cl, &cnt);
            leveldb_free(v);
        }
        if (cnt <= r->count[j]) {
            leveldb_writebatch_delete(wb, rk.base, rk.len);
            stt__att_delete(s, wb, db->id, r->digest[j]);
        } else {
            stt_buf_reset(&cv);
            stt_buf_append_varint(&cv, cnt - r->count[j]);
            leveldb_writebatch_put(wb, rk.base, rk.len, cv.base, cv.len);
        }
    }
    stt_buf_free(&rk);
    stt_buf_free(&cv);
    return rc;
}

void stt__refdrop_free(stt__refdrop_t *r)
{
    free(r->digest);
    free(r->count);
    memset(r, 0, sizeof(*r));
}
