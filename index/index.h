/* index — view indexes: CouchDB's map/reduce views, stored in the store's
 * LevelDB and queried with CouchDB's collation.
 *
 * What it is. A design doc's views share one index (as in CouchDB), named by a
 * signature of everything that decides its rows: the language, the map sources
 * in view order, views.lib and the options. Editing a view's code gives a new
 * signature, hence a new, empty index built from seq 0; the old one stays until
 * _view_cleanup (or the db's deletion) drops it. An index is brought up to date
 * from the by-seq index, in batches mapped through the query-server pool.
 * Queries scan one key range of LevelDB: keys are encoded (collate.c) so that
 * byte order is CouchDB's view collation.
 *
 * What it is not. No HTTP: query parameters arrive parsed (stt_view_args_t), and
 * results come back as rows for the caller to render. Mango json indexes are
 * views of "language": "query" design docs, mapped natively (native.c): their
 * rows are [field values...] -> null for each doc holding every field (and
 * matching the partial_filter_selector); mango/ plans and runs queries on them
 * through stt_index_rows.
 *
 * Threads. Every function is thread-safe and may block (LevelDB, query servers):
 * call it from a worker thread. Updates of one index are serialised; queries
 * read a snapshot and never wait for an update they did not ask for.
 *
 * Errors. 0, a code from src/common/err.h, a qserver code with *err filled, or
 * STT_VIEW_E_* below (with a CouchDB reason in err->reason). */
#ifndef STT_INDEX_H
#define STT_INDEX_H
#include "qserver/qserver.h"
#include "src/common/arena.h"
#include "src/common/buf.h"
#include "src/common/ini.h"
#include "src/common/json.h"
#include "store/store.h"
#include <stdbool.h>
#include <stdint.h>

enum {
    STT_VIEW_E_FIRST = -30799,
    STT_VIEW_E_QUERY = STT_VIEW_E_FIRST, /* 400 query_parse_error, reason in err */
    STT_VIEW_E_MISSING_VIEW,             /* 404 not_found "missing_named_view" */
    STT_VIEW_E_BAD_DDOC,                 /* 404/400: the design doc has no usable views */
    STT_VIEW_E_INVALID_VALUE,            /* 500 invalid_value (_stats over a non-number) */
    STT_VIEW_E_LAST
};

/* ------------------------------------------------------------------ keys (collate.c) */

/* Appends the collation encoding of a JSON key: memcmp order of two encodings is
 * CouchDB's view order (null < false < true < numbers < strings (ICU UCA) <
 * arrays < objects), equal keys encode equal. raw: CouchDB's "collation": "raw"
 * (Erlang term order, strings by bytes). */
void stt_key_encode(stt_buf_t *out, const stt_json_t *key, bool raw);
/* CouchDB's comparison of two keys: <0, 0, >0. */
int stt_key_cmp(const stt_json_t *a, const stt_json_t *b, bool raw);

/* ------------------------------------------------------------------ design docs */

/* The language of design docs whose views are Mango json indexes, mapped
 * natively rather than by a query server. */
#define STT_INDEX_NATIVE_LANG "query"

typedef struct {
    const char *name;
    const char *map;    /* source; a Mango json index: its definition as JSON text */
    const char *reduce; /* NULL, "_sum"... or a JS source */
    bool raw;           /* options.collation == "raw" */
} stt_view_def_t;

/* A parsed design doc's views, in the arena. */
typedef struct {
    const char *ddoc_id;
    const char *lang;
    const char *lib; /* views.lib as JSON, or NULL */
    stt_view_def_t *views;
    size_t nviews;
    /* options.include_design / options.local_seq (JSON true only, as
     * couch_mrview_index reads them): design docs are mapped too / map functions
     * see _local_seq */
    bool include_design, local_seq;
    unsigned char sig[16]; /* the index's name */
    char sighex[33];
} stt_ddoc_views_t;

/* Reads the design doc's views. STT_E_NOT_FOUND when the ddoc is missing or
 * deleted. */
int stt_ddoc_views_load(stt_db_t *db, const char *ddoc_id, stt_arena_t *arena, stt_ddoc_views_t *out);
/* From a parsed ddoc body. */
void stt_ddoc_views_from_json(const char *ddoc_id, const stt_json_t *body, stt_arena_t *arena, stt_ddoc_views_t *out);
/* Index of view name, or -1. */
int stt_ddoc_view_find(const stt_ddoc_views_t *dv, const char *name, size_t len);

/* ------------------------------------------------------------------ building (build.c) */

/* The query-server pool views use (stt_index_set_pool at startup). */
void stt_index_set_pool(stt_qs_pool_t *pool);
stt_qs_pool_t *stt_index_pool(void);

/* Brings the index up to the db's current seq. */
int stt_index_update(stt_db_t *db, const stt_ddoc_views_t *dv, stt_arena_t *arena, stt_qs_err_t *err);

typedef struct {
    uint64_t update_seq; /* seq the index has seen */
    uint64_t nrows;
    uint64_t size; /* bytes of keys and values */
    bool exists;
} stt_index_info_t;
int stt_index_info(stt_db_t *db, const stt_ddoc_views_t *dv, stt_index_info_t *out);
/* Whether an update is running for this signature now. */
bool stt_index_updating(const stt_ddoc_views_t *dv);

/* Drops every index of db whose signature is not in keep[0..nkeep) (16 bytes
 * each). */
int stt_index_cleanup(stt_db_t *db, const unsigned char (*keep)[16], size_t nkeep);

/* Indexer tasks for _active_tasks: appends one JSON object per running build
 * ("type":"indexer", CouchDB's fields), comma-separated, and returns how many. */
size_t stt_index_tasks(stt_buf_t *out);

/* ------------------------------------------------------------------ background (background.c) */

/* The background indexer (CouchDB's ken): after commits to a database, worker
 * threads bring the indexes of its design docs up to date, debounced per db.
 * Settings (read live from ini, which must outlive stop): [settee]
 * view_background_index (true), view_background_index_delay (ms, 500); [ken]
 * batch_channels (threads, 1, at most 4; read at start). */
void stt_index_bg_start(stt_ini_t *ini);
/* Queues db (the store's commit hook calls it: cheap, no I/O). No effect when
 * the indexer is off or not started. */
void stt_index_bg_notify(stt_db_t *db);
/* Stops a running update between two batches, joins the threads, drops the
 * queue. Call before the query-server pool and the store go away. */
void stt_index_bg_stop(void);

/* ------------------------------------------------------------------ queries (query.c) */

typedef enum { STT_UPDATE_TRUE, STT_UPDATE_FALSE, STT_UPDATE_LAZY } stt_view_update_t;

typedef struct {
    const stt_json_t *key;         /* key= */
    const stt_json_t *keys;        /* keys=, an array */
    const stt_json_t *start, *end; /* startkey / endkey */
    const char *start_docid, *end_docid;
    size_t start_docidlen, end_docidlen;
    bool inclusive_end;
    bool descending;
    uint64_t limit, skip;
    bool reduce;     /* when the view has one */
    bool reduce_set; /* reduce= given */
    bool group;      /* group=true (or group_level given) */
    bool group_set;
    int group_level; /* -1: exact (group=true) */
    bool include_docs, conflicts, attachments, update_seq;
    stt_view_update_t update;
    void (*fmt_seq)(stt_buf_t *out, uint64_t seq); /* update_seq's rendering (NULL: a number) */
    /* A filter of map rows (per-document access, access/access.h): a row of doc id
     * is sent only when row_ok(row_ctx, rd, id, idlen, seq) holds, seq being the
     * seq the index describes (UINT64_MAX for a doc include_docs links to); skip
     * and limit count the rows sent. rd is the query's reader. A reduce with a
     * filter is the caller's to refuse; total_rows and offset stay the view's. */
    bool (*row_ok)(void *ctx, stt_reader_t *rd, const char *id, size_t idlen, uint64_t seq);
    void *row_ctx;
} stt_view_args_t;

void stt_view_args_default(stt_view_args_t *a);

/* A query's answer, rendered in chunks: {"total_rows":..,"offset":..,"rows":[...]}
 * for a map query, {"rows":[...]} for a reduce (with "update_seq" when asked),
 * byte for byte what CouchDB sends.
 *
 * stt_view_open brings the index up to date as args->update asks, takes a
 * snapshot of it and appends the answer's head to out. dv, args and arena must
 * outlive the cursor (arena receives error strings and what outlives a chunk).
 * stt_view_next appends rows until out holds want bytes (a row may pass it) or
 * the answer ends: 1 when more follows, 0 once the answer's end was appended,
 * or an error with err filled. A cursor is used by one thread at a time, any
 * thread; stt_view_close at any point. Call stt_view_args_check first. */
typedef struct stt_view_cursor stt_view_cursor_t;
int stt_view_open(stt_db_t *db, const stt_ddoc_views_t *dv, int view, const stt_view_args_t *args, stt_arena_t *arena,
                  stt_buf_t *out, stt_view_cursor_t **cur, stt_qs_err_t *err);
int stt_view_next(stt_view_cursor_t *cur, stt_buf_t *out, size_t want, stt_qs_err_t *err);
void stt_view_close(stt_view_cursor_t *cur);
/* Validates args against the view as CouchDB does before running (reduce on a
 * map-only view, include_docs with reduce, a key range in the wrong direction...).
 * 0 or STT_VIEW_E_QUERY. */
int stt_view_args_check(const stt_ddoc_views_t *dv, int view, stt_view_args_t *args, stt_qs_err_t *err);

/* ------------------------------------------------------------------ raw rows (rows.c) */

/* One row of a view as stored: rk is its key inside the view (collation
 * encoding of the key, docid, 0x00, emit position), key the key's JSON text,
 * id the doc id. Borrowed for the duration of the callback. */
typedef struct {
    const char *rk;
    size_t rklen;
    const char *key;
    size_t keylen;
    const char *id;
    size_t idlen;
} stt_index_row_t;

/* Calls cb for the rows of view whose rk lies in [lo, hi) (NULL: the view's
 * first / past its last row), in rk order or its reverse, on one snapshot of
 * the index. cb returns nonzero to stop. Bounds are built with stt_key_encode
 * (a key's encoding is a prefix of its rows' rk). 0 or a store error. */
int stt_index_rows(stt_db_t *db, const stt_ddoc_views_t *dv, int view, const char *lo, size_t lolen, const char *hi,
                   size_t hilen, bool descending, int (*cb)(void *ctx, const stt_index_row_t *row), void *ctx);

/* ------------------------------------------------------------------ reducers (reduce.c) */

/* Whether name is a builtin reducer CouchDB knows. */
bool stt_reduce_is_builtin(const char *name);
/* The builtin a view's reduce source names ("_sum"...: static), or NULL for a
 * function. CouchDB matches by prefix, so "_sum\n anything" is _sum and "_counts"
 * is _count; a source starting with '_' that names none is refused when the
 * design doc is written (design/check.c). */
const char *stt_reduce_builtin_of(const char *src);

#endif
