/* Backup and restore of a whole store while it serves.
 *
 * A backup is every key of the LevelDB as of one snapshot, so it is consistent
 * across databases: a write acknowledged before the snapshot is in it (the doc,
 * its by-seq entry, the db counters and the attachment counts were written in one
 * batch), one acknowledged after it is entirely absent. Writers never wait for it;
 * the snapshot only keeps LevelDB from dropping the versions it still needs.
 *
 * File format (version 1), streamed in order, nothing seeked back:
 *   "SETTEEBK" u8 version u8[7] zero           header, 16 bytes
 *   'R' varint klen key varint vlen value      one per key, in key order
 *   'E' be64 nkeys u8[16] xxh3-128             end: the count and the XXH3-128 of
 *                                               every byte up to the 'E' included
 * A restore refuses a file whose count or hash differ, or that ends early. */
#include "store/store_int.h"
#include <leveldb/c.h>
#include "src/common/err.h"
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define BK_MAGIC "SETTEEBK"
#define BK_VERSION 1
#define BK_HEADER 16

struct stt_backup {
    stt_store_t *s;
    const leveldb_snapshot_t *snap;
    leveldb_readoptions_t *ro;
    leveldb_iterator_t *it;
    XXH3_state_t *h;
    uint64_t nkeys, bytes;
    bool started, finished;
};

int stt_backup_open(stt_store_t *s, stt_backup_t **out)
{
    stt_backup_t *b = stt_xcalloc(1, sizeof(*b));
    b->s = s;
    /* held shared for the backup's life, as a reader holds it (space.c reopens
     * LevelDB only when nobody does) */
    stt__ldb_enter(s);
    b->snap = leveldb_create_snapshot(s->ldb);
    b->ro = leveldb_readoptions_create();
    leveldb_readoptions_set_snapshot(b->ro, b->snap);
    /* one pass over everything: keep the block cache for the server's reads */
    leveldb_readoptions_set_fill_cache(b->ro, 0);
    leveldb_readoptions_set_verify_checksums(b->ro, 1);
    b->it = leveldb_create_iterator(s->ldb, b->ro);
    leveldb_iter_seek_to_first(b->it);
    b->h = XXH3_createState();
    XXH3_128bits_reset(b->h);
    *out = b;
    return 0;
}

static void emit(stt_backup_t *b, stt_buf_t *out, const void *p, size_t n)
{
    stt_buf_append(out, p, n);
    XXH3_128bits_update(b->h, p, n);
    b->bytes += n;
}

int stt_backup_next(stt_backup_t *b, stt_buf_t *out, size_t want)
{
    if (b->finished) return 0;
    size_t start = out->len;
    if (!b->started) {
        unsigned char hdr[BK_HEADER] = {0};
        memcpy(hdr, BK_MAGIC, 8);
        hdr[8] = BK_VERSION;
        emit(b, out, hdr, sizeof(hdr));
        b->started = true;
    }
    stt_buf_t rec = STT_BUF_INIT;
    while (leveldb_iter_valid(b->it) && out->len - start < want) {
        size_t klen, vlen;
        const char *k = leveldb_iter_key(b->it, &klen);
        const char *v = leveldb_iter_value(b->it, &vlen);
        stt_buf_reset(&rec);
        stt_buf_appendc(&rec, 'R');
        stt_buf_append_varint(&rec, klen);
        stt_buf_append(&rec, k, klen);
        stt_buf_append_varint(&rec, vlen);
        emit(b, out, rec.base, rec.len);
        emit(b, out, v, vlen);
        b->nkeys++;
        leveldb_iter_next(b->it);
    }
    stt_buf_free(&rec);
    char *lerr = NULL;
    leveldb_iter_get_error(b->it, &lerr);
    if (lerr) {
        leveldb_free(lerr);
        return STT_E_IO;
    }
    if (leveldb_iter_valid(b->it)) return 1;
    unsigned char end[1 + 8 + 16];
    end[0] = 'E';
    emit(b, out, end, 1);
    XXH128_hash_t h = XXH3_128bits_digest(b->h);
    for (int i = 0; i < 8; i++)
        end[1 + i] = (unsigned char)(b->nkeys >> (56 - 8 * i));
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, h);
    memcpy(end + 9, c.digest, 16);
    stt_buf_append(out, end + 1, sizeof(end) - 1);
    b->bytes += sizeof(end) - 1;
    b->finished = true;
    return 0;
}

uint64_t stt_store_approx_size(stt_store_t *s)
{
    const char *start = "", *limit = "\xff\xff\xff\xff";
    size_t sl = 0, ll = 4;
    uint64_t size = 0;
    stt__ldb_enter(s);
    leveldb_approximate_sizes(s->ldb, 1, &start, &sl, &limit, &ll, &size);
    stt__ldb_leave(s);
    return size;
}

void stt_backup_progress(const stt_backup_t *b, uint64_t *nkeys, uint64_t *bytes)
{
    *nkeys = b->nkeys;
    *bytes = b->bytes;
}

void stt_backup_close(stt_backup_t *b)
{
    if (!b) return;
    leveldb_iter_destroy(b->it);
    leveldb_readoptions_destroy(b->ro);
    leveldb_release_snapshot(b->s->ldb, b->snap);
    stt__ldb_leave(b->s);
    XXH3_freeState(b->h);
    free(b);
}

/* ------------------------------------------------------------------ restore */

typedef struct {
    stt_read_fn rd;
    void *ctx;
    unsigned char buf[1 << 16];
    size_t pos, len;
    bool eof;
    XXH3_state_t *h;
    bool hashing;
} reader_t;

/* n bytes into p (hashed): 0, or -1 at a short read */
static int take(reader_t *r, void *p, size_t n)
{
    unsigned char *o = p;
    while (n) {
        if (r->pos == r->len) {
            if (r->eof) return -1;
            long got = r->rd(r->ctx, r->buf, sizeof(r->buf));
            if (got < 0) return -1;
            if (got == 0) {
                r->eof = true;
                return -1;
            }
            r->pos = 0;
            r->len = (size_t)got;
        }
        size_t k = r->len - r->pos < n ? r->len - r->pos : n;
        memcpy(o, r->buf + r->pos, k);
        if (r->hashing) XXH3_128bits_update(r->h, r->buf + r->pos, k);
        r->pos += k;
        o += k;
        n -= k;
    }
    return 0;
}

static int take_varint(reader_t *r, uint64_t *v)
{
    unsigned char b[10];
    for (size_t i = 0; i < sizeof(b); i++) {
        if (take(r, &b[i], 1)) return -1;
        if (!(b[i] & 0x80)) {
            const unsigned char *p = b;
            return stt_varint_read(&p, b + i + 1, v);
        }
    }
    return -1;
}

int stt_restore(const char *dir, stt_read_fn rd, void *ctx, uint64_t *nkeys, char *err, size_t errlen)
{
    reader_t *r = stt_xcalloc(1, sizeof(*r));
    r->rd = rd;
    r->ctx = ctx;
    r->h = XXH3_createState();
    XXH3_128bits_reset(r->h);
    r->hashing = true;
    leveldb_options_t *o = leveldb_options_create();
    leveldb_options_set_create_if_missing(o, 1);
    leveldb_options_set_error_if_exists(o, 1);
    leveldb_options_set_compression(o, leveldb_snappy_compression);
    leveldb_writeoptions_t *wo = leveldb_writeoptions_create();
    leveldb_writeoptions_t *wsync = leveldb_writeoptions_create();
    leveldb_writeoptions_set_sync(wsync, 1);
    leveldb_writebatch_t *wb = leveldb_writebatch_create();
    stt_buf_t k = STT_BUF_INIT, v = STT_BUF_INIT;
    char *lerr = NULL;
    int rc = STT_E_BAD_REQUEST;
    uint64_t n = 0;
    size_t pending = 0;
    leveldb_t *ldb = NULL;
    unsigned char hdr[BK_HEADER];
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        rc = STT_E_IO;
        goto exit;
    }
    if (take(r, hdr, sizeof(hdr)) || memcmp(hdr, BK_MAGIC, 8) != 0) {
        snprintf(err, errlen, "not a settee backup");
        goto exit;
    }
    if (hdr[8] != BK_VERSION) {
        snprintf(err, errlen, "backup format version %u, this settee reads %u", hdr[8], BK_VERSION);
        goto exit;
    }
    char path[4200];
    snprintf(path, sizeof(path), "%s/" STT_STORE_SUBDIR, dir);
    ldb = leveldb_open(o, path, &lerr);
    if (lerr) {
        snprintf(err, errlen, "%s", lerr);
        leveldb_free(lerr);
        lerr = NULL;
        rc = STT_E_IO;
        goto exit;
    }
    for (;;) {
        unsigned char t;
        if (take(r, &t, 1)) {
            snprintf(err, errlen, "the backup ends early, after %llu keys", (unsigned long long)n);
            goto exit;
        }
        if (t == 'E') break;
        uint64_t kl, vl;
        if (t != 'R' || take_varint(r, &kl) || kl > (1u << 30)) {
            snprintf(err, errlen, "corrupt record after %llu keys", (unsigned long long)n);
            goto exit;
        }
        stt_buf_reset(&k);
        stt_buf_reserve(&k, kl);
        if (take(r, k.base, kl) || take_varint(r, &vl) || vl > (1ull << 32)) {
            snprintf(err, errlen, "corrupt record after %llu keys", (unsigned long long)n);
            goto exit;
        }
        stt_buf_reset(&v);
        stt_buf_reserve(&v, vl);
        if (take(r, v.base, vl)) {
            snprintf(err, errlen, "the backup ends early, after %llu keys", (unsigned long long)n);
            goto exit;
        }
        leveldb_writebatch_put(wb, (const char *)k.base, kl, (const char *)v.base, vl);
        n++;
        pending += kl + vl;
        if (pending >= (4u << 20)) {
            leveldb_write(ldb, wo, wb, &lerr);
            leveldb_writebatch_clear(wb);
            pending = 0;
            if (lerr) {
                snprintf(err, errlen, "%s", lerr);
                rc = STT_E_IO;
                goto exit;
            }
        }
    }
    /* the end record: the hash covers everything up to its 'E' */
    XXH128_hash_t want = XXH3_128bits_digest(r->h);
    r->hashing = false;
    unsigned char end[8 + 16];
    if (take(r, end, sizeof(end))) {
        snprintf(err, errlen, "the backup ends early, in its end record");
        goto exit;
    }
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, want);
    if (stt_be64((const char *)end) != n || memcmp(end + 8, c.digest, 16) != 0) {
        snprintf(err, errlen, "the backup does not check out: %llu keys read, its end record says %llu, hash %s",
                 (unsigned long long)n, (unsigned long long)stt_be64((const char *)end),
                 memcmp(end + 8, c.digest, 16) ? "differs" : "matches");
        goto exit;
    }
    leveldb_write(ldb, wsync, wb, &lerr);
    if (lerr) {
        snprintf(err, errlen, "%s", lerr);
        rc = STT_E_IO;
        goto exit;
    }
    rc = 0;
    *nkeys = n;
exit:
    if (lerr) leveldb_free(lerr);
    if (ldb) leveldb_close(ldb);
    leveldb_writebatch_destroy(wb);
    leveldb_writeoptions_destroy(wo);
    leveldb_writeoptions_destroy(wsync);
    leveldb_options_destroy(o);
    stt_buf_free(&k);
    stt_buf_free(&v);
    XXH3_freeState(r->h);
    free(r);
    return rc;
}
