/* Attachment bytes: how they are laid out in LevelDB, read whole or piece by piece,
 * written and dropped.
 *
 * Bytes of up to STT__ATT_CHUNK are one value under 'A' dbid md5. Longer ones are
 * cut into STT__ATT_CHUNK pieces under 'A' dbid md5 idx(4, big-endian), so that a
 * download holds one piece at a time and LevelDB never sees a value of tens of
 * megabytes (which it would copy into its write batch, its memtable and then a
 * table block of that size). Stores written before the pieces existed keep long
 * attachments as one value: readers look for piece 0 first and fall back to it.
 *
 * A long attachment's pieces are written ahead of the doc that references it, in
 * synced batches of a few megabytes (stt__att_stage), so that the batch carrying
 * the doc stays small. Each staged batch is synced because LevelDB does not sync a
 * log file it rotates away from: an unsynced piece could be lost by a power cut
 * while the doc's record, synced in the next log, survives. */
#include "store/store_int.h"
#include <leveldb/c.h>
#include "src/common/codec.h"
#include "src/common/err.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#define STAGE_BATCH (4u << 20) /* bytes of pieces per synced batch when staging */

static void key_piece(stt_buf_t *k, uint64_t dbid, const unsigned char *digest, uint32_t idx)
{
    stt__key_att(k, K_ATT, dbid, digest);
    unsigned char b[4] = {(unsigned char)(idx >> 24), (unsigned char)(idx >> 16), (unsigned char)(idx >> 8),
                          (unsigned char)idx};
    stt_buf_append(k, b, 4);
}

void stt__att_put(leveldb_writebatch_t *wb, uint64_t dbid, const unsigned char *digest, const char *data, size_t len)
{
    stt_buf_t k = STT_BUF_INIT;
    if (len <= STT__ATT_CHUNK) {
        stt__key_att(&k, K_ATT, dbid, digest);
        leveldb_writebatch_put(wb, k.base, k.len, data, len);
    } else {
        for (size_t off = 0, i = 0; off < len; off += STT__ATT_CHUNK, i++) {
            key_piece(&k, dbid, digest, (uint32_t)i);
            size_t n = len - off < STT__ATT_CHUNK ? len - off : STT__ATT_CHUNK;
            leveldb_writebatch_put(wb, k.base, k.len, data + off, n);
        }
    }
    stt_buf_free(&k);
}

int stt__att_stage(stt_store_t *s, uint64_t dbid, const unsigned char *digest, const char *data, size_t len)
{
    stt_buf_t k = STT_BUF_INIT;
    int rc = 0;
    for (size_t off = 0, i = 0; off < len && !rc;) {
        leveldb_writebatch_t *wb = leveldb_writebatch_create();
        for (size_t in = 0; off < len && in < STAGE_BATCH; off += STT__ATT_CHUNK, i++) {
            key_piece(&k, dbid, digest, (uint32_t)i);
            size_t n = len - off < STT__ATT_CHUNK ? len - off : STT__ATT_CHUNK;
            leveldb_writebatch_put(wb, k.base, k.len, data + off, n);
            in += n;
        }
        char *lerr = NULL;
        leveldb_write(s->ldb, s->wsync, wb, &lerr);
        leveldb_writebatch_destroy(wb);
        if (lerr) rc = stt__ldb_error(s, lerr, "write", true);
    }
    stt_buf_free(&k);
    return rc;
}

void stt__att_delete(stt_store_t *s, leveldb_writebatch_t *wb, uint64_t dbid, const unsigned char *digest)
{
    stt_buf_t k = STT_BUF_INIT;
    stt__key_att(&k, K_ATT, dbid, digest);
    size_t plen = k.len;
    /* the whole value and every piece share the prefix; the iterator sees the store's
     * current state, which is what the batch replaces */
    leveldb_iterator_t *it = leveldb_create_iterator(s->ldb, s->ropts);
    for (leveldb_iter_seek(it, k.base, k.len); leveldb_iter_valid(it); leveldb_iter_next(it)) {
        size_t klen;
        const char *key = leveldb_iter_key(it, &klen);
        if (klen < plen || memcmp(key, k.base, plen) != 0) break;
        leveldb_writebatch_delete(wb, key, klen);
    }
    leveldb_iter_destroy(it);
    /* keys the iterator cannot see yet (written earlier in this same batch) */
    leveldb_writebatch_delete(wb, k.base, plen);
    stt_buf_free(&k);
}

/* ------------------------------------------------------------------ reading */

/* One value from the reader's snapshot: 1 found, 0 absent, or STT_E_IO. */
static int snap_value(stt_reader_t *r, const stt_buf_t *k, char **v, size_t *vlen)
{
    char *lerr = NULL;
    *v = leveldb_get(r->db->store->ldb, r->ro, k->base, k->len, vlen, &lerr);
    if (lerr) {
        leveldb_free(lerr);
        return STT_E_IO;
    }
    return *v ? 1 : 0;
}

/* The bytes under a digest in r's snapshot, whole or piece by piece in order: appended
 * to out (when set) and counted in *len. */
static int att_walk(stt_reader_t *r, const unsigned char *digest, stt_buf_t *out, bool *found, uint64_t *len)
{
    stt_buf_t k = STT_BUF_INIT;
    stt__key_att(&k, K_ATT, r->db->id, digest);
    size_t plen = k.len;
    *found = false;
    *len = 0;
    leveldb_iterator_t *it = leveldb_create_iterator(r->db->store->ldb, r->ro);
    for (leveldb_iter_seek(it, k.base, k.len); leveldb_iter_valid(it); leveldb_iter_next(it)) {
        size_t klen, vlen;
        const char *key = leveldb_iter_key(it, &klen);
        if (klen < plen || memcmp(key, k.base, plen) != 0) break;
        const char *v = leveldb_iter_value(it, &vlen);
        if (out) stt_buf_append(out, v, vlen);
        *found = true;
        *len += vlen;
        if (klen == plen) break; /* one whole value */
    }
    char *lerr = NULL;
    leveldb_iter_get_error(it, &lerr);
    leveldb_iter_destroy(it);
    stt_buf_free(&k);
    if (lerr) {
        leveldb_free(lerr);
        return STT_E_IO;
    }
    return 0;
}

int stt__att_stored_len(stt_reader_t *r, const unsigned char *digest, bool *found, uint64_t *len)
{
    return att_walk(r, digest, NULL, found, len);
}

int stt__att_refcount(stt_db_t *db, const unsigned char *digest, uint64_t *out)
{
    stt_buf_t k = STT_BUF_INIT;
    stt__key_att(&k, K_ATTREF, db->id, digest);
    char *lerr = NULL;
    size_t vlen;
    char *v = leveldb_get(db->store->ldb, db->store->ropts, k.base, k.len, &vlen, &lerr);
    stt_buf_free(&k);
    *out = 0;
    if (lerr) return stt__ldb_error(db->store, lerr, "read", false);
    if (v) {
        const unsigned char *p = (const unsigned char *)v;
        stt_varint_read(&p, p + vlen, out);
        leveldb_free(v);
    }
    return 0;
}

struct stt_att_stream {
    stt_reader_t *r;
    unsigned char digest[STT_DIGEST_LEN];
    uint64_t stored_len; /* encoded_length */
    uint64_t out_len;    /* bytes the stream gives in all: stored or decoded length */
    uint64_t out_pos;    /* of those, given so far (counting the skipped start) */
    uint64_t skip;       /* output bytes to drop before the first one given */
    bool inflate;
    bool whole; /* one value (short, or written before pieces existed) */
    z_stream z;
    char *piece; /* the current piece (LevelDB's malloc) */
    size_t piece_len, piece_pos;
    uint32_t next_idx;
    uint64_t stored_pos; /* stored bytes read so far */
};

static int next_piece(stt_att_stream_t *s)
{
    if (s->piece) leveldb_free(s->piece);
    s->piece = NULL;
    s->piece_len = s->piece_pos = 0;
    if (s->stored_pos >= s->stored_len) return STT_E_IO; /* asked past the end: corrupt */
    stt_buf_t k = STT_BUF_INIT;
    int got;
    if (s->whole) {
        stt__key_att(&k, K_ATT, s->r->db->id, s->digest);
    } else {
        key_piece(&k, s->r->db->id, s->digest, s->next_idx);
    }
    got = snap_value(s->r, &k, &s->piece, &s->piece_len);
    if (got == 0 && !s->whole && s->next_idx == 0) {
        /* written before pieces existed: one value */
        s->whole = true;
        stt__key_att(&k, K_ATT, s->r->db->id, s->digest);
        got = snap_value(s->r, &k, &s->piece, &s->piece_len);
    }
    stt_buf_free(&k);
    if (got != 1) return got < 0 ? got : STT_E_IO;
    s->next_idx++;
    s->stored_pos += s->piece_len;
    if (s->stored_pos > s->stored_len || s->piece_len == 0) return STT_E_IO;
    return 0;
}

int stt_att_stream_open(stt_reader_t *r, const stt_att_t *att, bool decoded, uint64_t from, stt_att_stream_t **out)
{
    stt_att_stream_t *s = stt_xcalloc(1, sizeof(*s));
    s->r = r;
    memcpy(s->digest, att->digest, STT_DIGEST_LEN);
    s->stored_len = att->encoded_length;
    s->inflate = decoded && att->encoding == STT_ATT_GZIP;
    s->out_len = s->inflate ? att->length : att->encoded_length;
    s->whole = att->encoded_length <= STT__ATT_CHUNK;
    if (s->inflate && inflateInit2(&s->z, 15 + 16) != Z_OK) {
        free(s);
        return STT_E_IO;
    }
    if (from > s->out_len) from = s->out_len;
    if (!s->inflate && !s->whole && from) {
        /* a range: start at its piece (a store of one long value is read from 0) */
        s->next_idx = (uint32_t)(from / STT__ATT_CHUNK);
        s->stored_pos = (uint64_t)s->next_idx * STT__ATT_CHUNK;
        s->out_pos = s->stored_pos;
        if (s->next_idx) {
            int rc = next_piece(s);
            if (rc) {
                /* not in pieces: one value, read from its start */
                s->next_idx = 0;
                s->stored_pos = s->out_pos = 0;
                if (s->piece) leveldb_free(s->piece);
                s->piece = NULL;
            }
        }
    }
    s->skip = from - s->out_pos;
    *out = s;
    return 0;
}

/* Up to max more output bytes appended to out, before skipping. */
static int produce(stt_att_stream_t *s, size_t max, stt_buf_t *out)
{
    size_t start = out->len;
    while (out->len - start < max && s->out_pos + (out->len - start) < s->out_len) {
        /* zlib may still owe output for input it has taken: fetch only when the
         * stored bytes go on */
        bool more_stored = s->stored_pos < s->stored_len;
        if (s->piece_pos == s->piece_len && (!s->inflate || more_stored)) {
            int rc = next_piece(s);
            if (rc) return rc;
        }
        size_t want = max - (out->len - start);
        if (!s->inflate) {
            size_t n = s->piece_len - s->piece_pos;
            if (n > want) n = want;
            stt_buf_append(out, s->piece + s->piece_pos, n);
            s->piece_pos += n;
            continue;
        }
        stt_buf_reserve(out, want + 1);
        s->z.next_in = (Bytef *)(s->piece ? s->piece + s->piece_pos : "");
        s->z.avail_in = (uInt)(s->piece_len - s->piece_pos);
        s->z.next_out = (Bytef *)out->base + out->len;
        s->z.avail_out = (uInt)want;
        int zrc = inflate(&s->z, Z_NO_FLUSH);
        size_t made = want - s->z.avail_out, took = (s->piece_len - s->piece_pos) - s->z.avail_in;
        s->piece_pos += took;
        out->len += made;
        out->base[out->len] = '\0';
        if (zrc == Z_STREAM_END) break;
        if (zrc != Z_OK && zrc != Z_BUF_ERROR) return STT_E_IO;
        if (!made && !took) return STT_E_IO; /* no progress: truncated or corrupt */
    }
    size_t n = out->len - start;
    s->out_pos += n;
    if (s->out_pos > s->out_len) return STT_E_IO;
    return 0;
}

int stt_att_stream_next(stt_att_stream_t *s, size_t max, stt_buf_t *out)
{
    while (s->skip) {
        stt_buf_t junk = STT_BUF_INIT;
        size_t n = s->skip < 64 * 1024 ? (size_t)s->skip : 64 * 1024;
        int rc = produce(s, n, &junk);
        size_t got = junk.len;
        stt_buf_free(&junk);
        if (rc) return rc;
        if (got == 0) return STT_E_IO;
        s->skip -= got;
    }
    if (s->out_pos >= s->out_len) return 1;
    size_t before = out->len;
    int rc = produce(s, max, out);
    if (rc) return rc;
    if (out->len == before && s->out_pos < s->out_len) return STT_E_IO; /* ended short */
    return s->out_pos >= s->out_len ? 1 : 0;
}

void stt_att_stream_close(stt_att_stream_t *s)
{
    if (!s) return;
    if (s->inflate) inflateEnd(&s->z);
    if (s->piece) leveldb_free(s->piece);
    free(s);
}

/* ------------------------------------------------------------------ whole reads */

int stt_att_read(stt_reader_t *r, const unsigned char *digest, stt_buf_t *out)
{
    bool found;
    uint64_t len;
    size_t start = out->len;
    int rc = att_walk(r, digest, out, &found, &len);
    if (rc) {
        out->len = start;
        return rc;
    }
    return found ? 0 : STT_E_NOT_FOUND;
}

int stt_att_read_decoded(stt_reader_t *r, const stt_att_t *att, stt_buf_t *out)
{
    if (att->encoding != STT_ATT_GZIP) return stt_att_read(r, att->digest, out);
    stt_buf_t enc = STT_BUF_INIT;
    int rc = stt_att_read(r, att->digest, &enc);
    if (rc == 0 && stt_gunzip(out, enc.base ? enc.base : "", enc.len, att->length) != 0) rc = STT_E_IO;
    stt_buf_free(&enc);
    return rc;
}

bool stt_att_compressible(const char *ct, size_t len)
{
    size_t n = 0;
    while (n < len && ct[n] != ';' && ct[n] != ' ')
        n++;
    if (n > 5 && strncasecmp(ct, "text/", 5) == 0) return true;
    static const char *const types[] = {"application/javascript", "application/json", "application/xml"};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strlen(types[i]) == n && strncasecmp(ct, types[i], n) == 0) return true;
    return false;
}
