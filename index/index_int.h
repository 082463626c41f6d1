/* Private to index/: the key layout of a view index inside the store's index
 * keyspace (keys here are relative to the db; the store prefixes 'I' dbid).
 *
 * | key                                         | value                                  |
 * |---------------------------------------------|----------------------------------------|
 * | 'd' sig(16)                                 | header: be64 seq, varint nviews,       |
 * |                                             | per view varint nrows, varint bytes;   |
 * |                                             | be64 instance (random, made with the   |
 * |                                             | index: names it in caches); ddoc id    |
 * | 'r' sig(16) view(1) enckey docid 0x00 n(4)  | row: varint idlen, id, varint keylen,  |
 * |                                             | key JSON, value JSON (the rest)        |
 * | 'f' sig(16) view(1) [row key suffix]        | varint: rows from this fence to the    |
 * |                                             | next one of the view (fence.c)         |
 * | 'b' sig(16) docid                           | back index: varint nrows, per row      |
 * |                                             | varint len, row key (from view byte),  |
 * |                                             | varint row value length                |
 *
 * Invariants: the header, the rows of a batch of docs and their back-index
 * entries are written in one batch, so the header's seq always describes the
 * rows present. A doc's rows are found through its back-index entry only (a
 * row is never looked up by value). enckey is collate.c's encoding; n is the
 * emit's position in the doc's emits to that view, so a doc emitting one key
 * twice keeps two rows, in emit order.
 * The docid 0x00 terminator sorts a doc before any id it is a prefix of, so
 * bounds built as enckey docid 0x00 (first row of that doc) and enckey docid
 * 0x01 (past it) cut exactly at a doc. */
#ifndef STT_INDEX_INT_H
#define STT_INDEX_INT_H
#include "index/index.h"

#define IK_HEADER 'd'
#define IK_ROW 'r'
#define IK_BACK 'b'
#define IK_FENCE 'f'
#define STT_FENCE_BLOCK 128
#define STT_INDEX_MAX_VIEWS 255

typedef struct {
    uint64_t seq;
    uint64_t instance;
    size_t nviews;
    uint64_t nrows[STT_INDEX_MAX_VIEWS];
    uint64_t bytes[STT_INDEX_MAX_VIEWS];
} stt__index_header_t;

void stt__ikey(stt_buf_t *k, char tag, const unsigned char *sig);
/* 0, or STT_E_NOT_FOUND when the index does not exist yet. */
int stt__index_header_read(stt_db_t *db, const unsigned char *sig, stt__index_header_t *h);
int stt__index_header_decode(const char *v, size_t len, stt__index_header_t *h);

/* An update under the background indexer's control (background.c; build.c
 * runs it). stop is asked between two batches (ndocs: docs mapped so far by
 * this update); true ends the update there. nowait: when another update of the
 * index is running, return at once instead of waiting for it. partial is set
 * when the update ended before the db's seq it started for (stopped or busy). */
typedef struct stt__update_ctl {
    bool (*stop)(struct stt__update_ctl *ctl);
    void *ctx;
    bool nowait;
    uint64_t ndocs;
    bool partial;
} stt__update_ctl_t;
int stt__index_update_ctl(stt_db_t *db, const stt_ddoc_views_t *dv, stt_arena_t *arena, stt_qs_err_t *err,
                          stt__update_ctl_t *ctl);

/* Fences (fence.c): keys are view byte + row key suffix (what follows
 * 'r' sig in a row key); the view byte alone is the view's sentinel. */
typedef struct {
    char *k;
    size_t len;
    int64_t count;
    bool dirty;
} stt__fence_t;
typedef struct {
    stt__fence_t *v; /* sorted by key */
    size_t n, cap;
} stt__fences_t;
int stt__fences_load(stt_db_t *db, const unsigned char *sig, size_t nviews, stt__fences_t *f);
void stt__fences_free(stt__fences_t *f);
/* A row (view byte + suffix) was added (+1) or removed (-1). */
void stt__fences_count(stt__fences_t *f, const char *row, size_t len, int delta);
/* Puts the changed counts into b. */
void stt__fences_write(stt__fences_t *f, const unsigned char *sig, stt_ikv_batch_t *b);
/* Splits the blocks grown past twice their size, reading committed rows. */
int stt__fences_split(stt_db_t *db, const unsigned char *sig, stt__fences_t *f);
/* For offsets: the last fence of view at or below bound (a fence-space key
 * without the 'f' sig prefix) as of the snapshot of it, whose header is h: its
 * key into fkey (empty: no fence) and the rows of the fences before it. The
 * fences of one index state are loaded once and kept in a small cache. */
uint64_t stt__fences_below(stt_ikv_iter_t *it, const unsigned char *sig, const stt__index_header_t *h, int view,
                           const char *bound, size_t blen, stt_buf_t *fkey);

/* Decodes a row value. 0 or -1 when malformed. */
typedef struct {
    const char *id;
    size_t idlen;
    const char *key;
    size_t keylen;
    const char *value;
    size_t valuelen;
} stt__row_t;
int stt__row_decode(const char *v, size_t len, stt__row_t *out);

/* Builtin reducers (reduce.c) over parsed values: out is the JSON of the
 * reduction. rereduce: values are earlier reductions. STT_VIEW_E_INVALID_VALUE
 * with reason for _stats over a non-number; _sum over bad input yields the
 * error object CouchDB puts in the row. */
typedef struct stt__reducer stt__reducer_t;
stt__reducer_t *stt__reducer_new(const char *name);
void stt__reducer_free(stt__reducer_t *r);
void stt__reducer_reset(stt__reducer_t *r);
/* key: for _approx_count_distinct (its input is the keys). */
int stt__reducer_add(stt__reducer_t *r, const stt_json_t *key, const char *keytext, size_t keylen,
                     const stt_json_t *value, stt_arena_t *a, const char **reason);
void stt__reducer_result(stt__reducer_t *r, stt_buf_t *out);
/* "non-numeric _stats input: ..." for v. */
const char *stt__stats_reason(const stt_json_t *v, stt_arena_t *a);

/* The native mapper of "language": "query" views (native.c): out is what a
 * query server's map_doc gives, one array of [key, value] per view, in a. */
typedef struct stt__native stt__native_t;
stt__native_t *stt__native_open(const stt_ddoc_views_t *dv);
void stt__native_map(stt__native_t *n, const stt_json_t *doc, stt_arena_t *a, stt_json_t *out);
void stt__native_close(stt__native_t *n);

#endif
