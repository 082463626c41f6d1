/* settee's storage engine: every database in one LevelDB.
 *
 * This header is the store's whole contract; its key layout lives in store_int.h
 * and never leaves the folder. All functions are thread-safe unless noted.
 *
 * Ownership: stt_store_t and stt_db_t handles are owned by the store; a db handle
 * from stt_db_open is reference-counted and must be given back with
 * stt_db_release. Buffers passed in are borrowed for the duration of the call;
 * buffers filled by the store (stt_buf_t) belong to the caller.
 *
 * Durability: every function that writes returns only after its LevelDB batch was
 * written with sync=true. Each call writes one atomic batch: a crash leaves all of
 * it or none. */
#ifndef STT_STORE_H
#define STT_STORE_H
#include "src/common/buf.h"
#include "src/common/json.h"
#include "store/revtree.h"
#include <stdbool.h>
#include <stdint.h>

typedef struct stt_store stt_store_t;
typedef struct stt_db stt_db_t;
typedef struct stt_reader stt_reader_t;

/* ------------------------------------------------------------------ store */

typedef struct {
    uint64_t cache_size;        /* shared LevelDB block cache, bytes */
    uint64_t write_buffer_size; /* LevelDB memtable, bytes */
    uint32_t default_revs_limit;
    uint64_t min_free_bytes; /* below this, writes fail with STT_E_NO_SPACE; 0: 2 x write buffer + 64 MiB */
    bool paranoid;           /* LevelDB paranoid checks (tools) */
    /* Background compaction of a db once superseded revision bodies are at least
     * as large as its live ones (CouchDB smoosh's ratio_dbs priority 2.0) and at
     * least auto_compact_min_size bytes; 0 = never. */
    uint64_t auto_compact_min_size;
} stt_store_opts_t;

void stt_store_opts_default(stt_store_opts_t *o);
/* Opens (creating if needed) the store in dir. Resumes sweeps of databases that
 * were deleted before a crash. When LevelDB cannot open for lack of space (replaying
 * its log writes a table) it waits, logging ENOSPC, until it can. With less free space
 * than min_free_bytes the store opens read-only: writes fail with STT_E_NO_SPACE until
 * space is freed (space.c). Errors: STT_E_IO with a message in err. */
int stt_store_open(const char *dir, const stt_store_opts_t *o, stt_store_t **out, char *err, size_t errlen);
void stt_store_close(stt_store_t *s);

/* Server-wide values kept in the store (the server uuid). get returns STT_E_NOT_FOUND
 * when absent. */
int stt_store_meta_get(stt_store_t *s, const char *key, stt_buf_t *out);
int stt_store_meta_put(stt_store_t *s, const char *key, const void *val, size_t len);

/* Called after every committed document write with the db and its new update_seq,
 * on the writer's thread, with no lock held. Used to wake waiting changes feeds. */
typedef void (*stt_commit_hook_t)(void *ctx, stt_db_t *db, uint64_t update_seq);
void stt_store_set_commit_hook(stt_store_t *s, stt_commit_hook_t fn, void *ctx);

/* Called after a database was created (created true) or deleted, on the caller's
 * thread, with no lock held (the _db_updates feed records these). */
typedef void (*stt_db_event_hook_t)(void *ctx, const char *name, size_t len, bool created);
void stt_store_set_db_hook(stt_store_t *s, stt_db_event_hook_t fn, void *ctx);

/* What the store can tell about itself for /_node/_local/_system (store/stats.c). */
typedef struct {
    uint64_t open_dbs;     /* database handles held open */
    uint64_t leveldb_mem;  /* LevelDB's approximate memory usage (memtables, caches) */
    uint64_t cache_size;   /* the configured block cache, bytes */
    uint64_t write_buffer; /* the configured memtable size, bytes */
} stt_store_stats_t;
void stt_store_stats(stt_store_t *s, stt_store_stats_t *out);

/* Waits until background sweeps of deleted databases and queued automatic
 * compactions have finished (tests, tools). */
void stt_store_wait_sweeps(stt_store_t *s);

/* ------------------------------------------------------------------ backup */

/* A consistent copy of the whole store as of stt_backup_open, streamed while the
 * store keeps serving (store/backup.c has the format). stt_backup_next appends
 * about want bytes to out: 1 more follows, 0 that was the end, or STT_E_IO. */
typedef struct stt_backup stt_backup_t;
int stt_backup_open(stt_store_t *s, stt_backup_t **out);
int stt_backup_next(stt_backup_t *b, stt_buf_t *out, size_t want);
void stt_backup_progress(const stt_backup_t *b, uint64_t *nkeys, uint64_t *bytes);
void stt_backup_close(stt_backup_t *b);
/* LevelDB's estimate of the store's size on disk (compressed): a backup is larger. */
uint64_t stt_store_approx_size(stt_store_t *s);

/* Where a data dir keeps its LevelDB. */
#define STT_STORE_SUBDIR "store"

/* Rebuilds the store of data dir dir (which must not hold one) from a backup read
 * through rd (bytes read, 0 at the end, -1 on error). STT_E_BAD_REQUEST when the
 * backup is damaged (its count or hash differ, it ends early), STT_E_IO when the
 * store cannot be made; err says what. Open it with stt_store_open and check it
 * with stt_store_verify afterwards. */
typedef long (*stt_read_fn)(void *ctx, void *buf, size_t len);
int stt_restore(const char *dir, stt_read_fn rd, void *ctx, uint64_t *nkeys, char *err, size_t errlen);

/* ------------------------------------------------------------------ databases */

#define STT_DB_NAME_MAX 238

/* CouchDB's rule: ^[a-z][a-z0-9_$()+/-]*$, at most 238 bytes. */
bool stt_db_name_valid(const char *name, size_t len);
/* STT_E_ILLEGAL_DB_NAME, STT_E_FILE_EXISTS. */
int stt_db_create(stt_store_t *s, const char *name, size_t len);
/* Options fixed when a database is created (kept in its record). STT_DB_ACCESS:
 * per-document access control (PUT /db?access=true; access/access.h). */
#define STT_DB_ACCESS 1u
int stt_db_create_flags(stt_store_t *s, const char *name, size_t len, uint32_t flags);
uint32_t stt_db_flags(const stt_db_t *db);
/* The name disappears at once; keys are swept in the background. STT_E_DB_NOT_FOUND. */
int stt_db_delete(stt_store_t *s, const char *name, size_t len);
/* STT_E_DB_NOT_FOUND. The handle stays valid after a concurrent delete (writes then
 * fail with STT_E_DB_NOT_FOUND). */
int stt_db_open(stt_store_t *s, const char *name, size_t len, stt_db_t **out);
void stt_db_release(stt_db_t *db);
/* Another reference to a handle the caller holds (given back with stt_db_release). */
void stt_db_retain(stt_db_t *db);
const char *stt_db_name(const stt_db_t *db, size_t *len);
/* A number no other database of the store had before (a deleted and re-created
 * name gets a new one): the key of caches that outlive one handle. */
uint64_t stt_db_id(const stt_db_t *db);
/* Calls fn for every database name in ascending byte order until fn returns non-zero. */
void stt_db_list(stt_store_t *s, int (*fn)(void *ctx, const char *name, size_t len), void *ctx);

typedef struct {
    uint64_t update_seq;
    uint64_t doc_count;
    uint64_t doc_del_count;
    uint64_t purge_seq;
    uint64_t active_size;   /* bytes of live leaf bodies */
    uint64_t old_size;      /* bytes of superseded bodies kept until compaction */
    uint64_t external_size; /* same, uncompressed */
    uint64_t file_size;     /* estimate of on-disk bytes for this db */
    uint64_t created;       /* unix seconds */
    uint32_t revs_limit;
    bool compact_running;
} stt_db_info_t;

void stt_db_info(stt_db_t *db, stt_db_info_t *out);
/* Changes whenever any doc of the db may have (its id, update_seq and purge_seq; a
 * recreated db has a new id): a validity mark for caches of data read from docs,
 * cheaper than stt_db_info. */
void stt_db_mark(stt_db_t *db, uint64_t mark[3]);
int stt_db_set_revs_limit(stt_db_t *db, uint32_t limit);
/* CouchDB's compaction: deletes the bodies of superseded revisions (readable
 * until then) and stems every doc's tree to the current revs_limit. Blocks the
 * caller; writers wait at most one
 * batch. Seqs are unchanged. stt_db_info reports compact_running from
 * stt_db_compact_begin (or the start of stt_db_compact when begun is false) to
 * the end, so a caller that runs it on another thread calls begin first. */
void stt_db_compact_begin(stt_db_t *db);
int stt_db_compact(stt_db_t *db, bool begun);
/* Security object as JSON text ("{}" when never set). */
void stt_db_get_security(stt_db_t *db, stt_buf_t *out);
int stt_db_set_security(stt_db_t *db, const char *json, size_t len);

/* ------------------------------------------------------------------ attachments */

#define STT_DIGEST_LEN 16 /* md5 */

/* One attachment of a revision as stored: metadata, bytes under its digest. */
enum { STT_ATT_IDENTITY = 0, STT_ATT_GZIP = 1 };

/* Attachments of compressible types (text types, application/javascript, json, xml:
 * CouchDB's compressible_types) are stored gzip-encoded as CouchDB stores them,
 * and their digest is the md5 of the stored (encoded) bytes, as CouchDB's is. */
typedef struct {
    const char *name;
    size_t namelen;
    const char *content_type;
    size_t ctlen;
    uint64_t revpos;
    uint64_t length; /* decoded length */
    unsigned char digest[STT_DIGEST_LEN];
    uint8_t encoding;        /* STT_ATT_* of the stored bytes */
    uint64_t encoded_length; /* stored length */
} stt_att_t;

/* An attachment in a document write. */
typedef struct {
    stt_att_t meta;   /* name, content_type, revpos (0: set by the store) */
    const char *data; /* bytes, or NULL for a stub */
    size_t datalen;
    bool stub;       /* keep the parent revision's attachment of that name */
    bool has_digest; /* meta.digest was given (stubs may carry it) */
} stt_att_in_t;

/* "md5-<base64>" of a digest. */
void stt_att_digest_format(const unsigned char *digest, stt_buf_t *out);
/* Parses "md5-<base64>"; 0 or -1. */
int stt_att_digest_parse(const char *s, size_t len, unsigned char *digest);

/* ------------------------------------------------------------------ documents */

#define STT_REV_STR_MAX 300

/* One document write. body is the JSON object text of the doc without its special
 * ("_"-prefixed) members, e.g. {"a":1}; "{}" for an empty doc. */
typedef struct {
    const char *id;
    size_t idlen;
    const char *body;
    size_t bodylen;
    bool deleted;
    /* new_edits=true: the rev the edit is based on (has_prev false: none). */
    bool has_prev;
    stt_rev_t prev;
    /* new_edits=false: the revision path, leaf first (from _revisions or _rev). */
    uint64_t gen;
    const stt_rev_t *path;
    size_t npath;
    const stt_att_in_t *atts;
    size_t natts;
} stt_doc_write_t;

typedef struct {
    int err;                   /* 0, STT_E_CONFLICT, STT_E_MISSING_STUB, STT_E_BAD_REQUEST... */
    char rev[STT_REV_STR_MAX]; /* new rev "N-id" on success (new_edits=true) */
    const char *reason;        /* not the store's: the text of a refusal made before the write */
    const char *error;         /* not the store's: the "error" of such a refusal when err's is not it */
} stt_doc_result_t;

/* Writes n docs in one synced batch; per-doc outcome in res[i]. Docs with the same
 * id are applied in order. new_edits=false merges each doc's path (a rev already
 * present is a no-op with err 0). Returns 0 when the batch was committed (some docs
 * may still have failed), or an error for the whole call (STT_E_DB_NOT_FOUND,
 * STT_E_IO). */
int stt_doc_write(stt_db_t *db, const stt_doc_write_t *docs, size_t n, bool new_edits, stt_doc_result_t *res);

/* Group commit: several writes, possibly to several dbs, applied in order (a job
 * sees the jobs before it) and committed in one synced LevelDB batch, so that
 * concurrent requests share one fsync. Each job's rc is 0 or its own error
 * (STT_E_DB_NOT_FOUND); per-doc outcomes are in its res. Returns 0 when the batch
 * was committed, or the error that failed all of them (STT_E_IO). */
typedef struct {
    stt_db_t *db;
    const stt_doc_write_t *docs;
    size_t n;
    bool new_edits;
    stt_doc_result_t *res;
    int rc;
} stt_write_job_t;
int stt_doc_write_group(stt_write_job_t *jobs, size_t njobs);

/* Removes the given revs of a doc completely (CouchDB's _purge). purged[k] is set
 * for each rev that was a leaf and got removed. */
int stt_doc_purge(stt_db_t *db, const char *id, size_t idlen, const stt_rev_t *revs, size_t nrevs, bool *purged);

/* ------------------------------------------------------------------ reading */

/* A consistent view (LevelDB snapshot) of one database. Not thread-safe; one user. */
int stt_reader_open(stt_db_t *db, stt_reader_t **out);
void stt_reader_close(stt_reader_t *r);
/* One more user of r on the same thread (an answer sent after its handler returned,
 * reading from the same snapshot): each stt_reader_close drops one. */
stt_reader_t *stt_reader_retain(stt_reader_t *r);
stt_db_t *stt_reader_db(stt_reader_t *r);

/* A document as read: its tree and the bodies of its leaves. Pointers borrow from
 * the doc's own storage until stt_doc_free. */
typedef struct {
    const char *id;
    size_t idlen;
    uint64_t seq; /* seq of the doc's last update */
    stt_revtree_t tree;
    int winner; /* node index of the winner */
    /* private */
    void *_raw;
    size_t _rawlen;
    bool _borrowed;        /* _raw is not ours to free */
    stt_reader_t *_reader; /* where superseded bodies are read from (stt_doc_get) */
    void **_old;           /* superseded bodies read so far, freed with the doc */
    size_t _nold;
} stt_doc_t;

/* A revision's content. */
typedef struct {
    const char *json; /* body object text without special members */
    size_t jsonlen;
    stt_att_t *atts; /* malloc'd array owned by the stt_rev_body_t */
    size_t natts;
    void *_own; /* private: the stored value json and atts point into, when read apart */
} stt_rev_body_t;

/* Loads a doc. STT_E_NOT_FOUND when it never existed. */
int stt_doc_get(stt_reader_t *r, const char *id, size_t idlen, stt_doc_t *out);
void stt_doc_free(stt_doc_t *d);
/* The body of node i when stored (STT_REV_HAS_BODY): every leaf's, and a
 * superseded revision's until the db is compacted (read through the reader of
 * stt_doc_get; a doc from a scan has leaf bodies only). STT_E_NOT_FOUND otherwise. */
int stt_doc_body(const stt_doc_t *d, int node, stt_rev_body_t *out);
void stt_rev_body_free(stt_rev_body_t *b);

/* Attachment bytes by digest, as stored (gzip-encoded when att->encoding says so).
 * STT_E_NOT_FOUND. */
int stt_att_read(stt_reader_t *r, const unsigned char *digest, stt_buf_t *out);
/* The decoded bytes of an attachment (inflated when stored gzip-encoded).
 * STT_E_NOT_FOUND, STT_E_IO on corrupt data. */
int stt_att_read_decoded(stt_reader_t *r, const stt_att_t *att, stt_buf_t *out);
/* An attachment's bytes read piece by piece from the reader's snapshot (the reader
 * must outlive the stream), so that sending one holds a piece and not the whole:
 * decoded (inflated when stored gzip-encoded) or as stored, starting at byte from of
 * that form. next appends at most max bytes and returns 0 when more follow, 1 when
 * the last were appended, or STT_E_IO on missing or corrupt bytes. */
typedef struct stt_att_stream stt_att_stream_t;
int stt_att_stream_open(stt_reader_t *r, const stt_att_t *att, bool decoded, uint64_t from, stt_att_stream_t **out);
int stt_att_stream_next(stt_att_stream_t *s, size_t max, stt_buf_t *out);
void stt_att_stream_close(stt_att_stream_t *s);
/* Whether CouchDB stores this content type compressed. */
bool stt_att_compressible(const char *ctype, size_t len);

/* Summary of a doc as kept in the by-seq index and at the head of a doc record:
 * enough for _changes and _all_docs rows without decoding the tree. */
typedef struct {
    const char *id;
    size_t idlen;
    uint64_t seq;
    bool deleted; /* the winner is deleted */
    size_t nleaves;
    /* leaves in winner order: rev text and deleted flag */
    const char *const *leaf_rev;
    const size_t *leaf_revlen;
    const bool *leaf_deleted;
    /* stt_docs_scan only: the doc's record, for stt_doc_from_summary */
    const void *_raw;
    size_t _rawlen;
} stt_doc_summary_t;

/* The full doc behind a stt_docs_scan summary, without another lookup. The doc
 * borrows the scan's memory: valid during the callback only; stt_doc_free it
 * there. STT_E_NOT_FOUND when the summary came from another scan. */
int stt_doc_from_summary(const stt_doc_summary_t *s, stt_doc_t *out);

/* Iterates the by-seq index from seq > since (ascending) or seq < since when
 * descending (since 0 with descending: from the end). fn returns non-zero to stop.
 * The summary is valid during the callback only. */
int stt_changes_scan(stt_reader_t *r, uint64_t since, bool descending, int (*fn)(void *ctx, const stt_doc_summary_t *s),
                     void *ctx);

/* Iterates docs by id in byte order between startkey and endkey (inclusive_end),
 * ascending or descending; NULL bounds are open. Deleted docs are skipped. Only
 * the winner is summarised (nleaves=1 with the winner rev). */
typedef struct {
    const char *start;
    size_t startlen;
    const char *end;
    size_t endlen;
    bool inclusive_end;
    bool descending;
} stt_range_t;
int stt_docs_scan(stt_reader_t *r, const stt_range_t *range, int (*fn)(void *ctx, const stt_doc_summary_t *s),
                  void *ctx);

/* ------------------------------------------------------------------ _local docs */

/* Local docs: no rev tree, rev "0-N", never in changes. get: STT_E_NOT_FOUND. */
int stt_local_get(stt_db_t *db, const char *id, size_t idlen, uint64_t *rev, stt_buf_t *body);
/* Writes (or with deleted, removes) a local doc; *rev receives the new N. prev is
 * the N the client gave (0 when none): CouchDB does not check it. */
int stt_local_put(stt_db_t *db, const char *id, size_t idlen, uint64_t prev, const char *body, size_t bodylen,
                  bool deleted, uint64_t *rev);
int stt_local_scan(stt_db_t *db, const stt_range_t *range,
                   int (*fn)(void *ctx, const char *id, size_t idlen, uint64_t rev, const char *body, size_t len),
                   void *ctx);

/* ------------------------------------------------------------------ index keyspace (index_kv.c) */

/* The keys of index/ (view indexes): a keyspace of the db's own, whose bytes the
 * store does not interpret. Keys passed here are relative to the db (the store
 * adds its prefix); they go with the db when it is deleted (the sweep). Writes
 * are not synced: an index is rebuilt from the by-seq index after a crash, so
 * its header must be written in the same batch as the rows it describes. */
typedef struct stt_ikv_batch stt_ikv_batch_t;
stt_ikv_batch_t *stt_ikv_batch_new(stt_db_t *db);
void stt_ikv_put(stt_ikv_batch_t *b, const void *k, size_t klen, const void *v, size_t vlen);
void stt_ikv_del(stt_ikv_batch_t *b, const void *k, size_t klen);
size_t stt_ikv_batch_size(const stt_ikv_batch_t *b);
/* Writes the batch atomically and frees it (also on error). 0, STT_E_IO, or
 * STT_E_DB_NOT_FOUND when the db was deleted meanwhile (nothing written). */
int stt_ikv_commit(stt_ikv_batch_t *b);
void stt_ikv_batch_free(stt_ikv_batch_t *b);
/* 0 with the value in out, STT_E_NOT_FOUND or STT_E_IO. */
int stt_ikv_get(stt_db_t *db, const void *k, size_t klen, stt_buf_t *out);
/* Deletes every key starting with pfx. 0 or STT_E_IO. */
int stt_ikv_drop(stt_db_t *db, const void *pfx, size_t pfxlen);

/* An iterator over the db's index keys, on a snapshot taken when it is made.
 * Keys and values returned are valid until the next move. */
typedef struct stt_ikv_iter stt_ikv_iter_t;
stt_ikv_iter_t *stt_ikv_iter_new(stt_db_t *db);
void stt_ikv_iter_free(stt_ikv_iter_t *it);
void stt_ikv_seek(stt_ikv_iter_t *it, const void *k, size_t klen);    /* first key >= k */
void stt_ikv_seek_le(stt_ikv_iter_t *it, const void *k, size_t klen); /* last key <= k */
bool stt_ikv_valid(stt_ikv_iter_t *it);
void stt_ikv_next(stt_ikv_iter_t *it);
void stt_ikv_prev(stt_ikv_iter_t *it);
const char *stt_ikv_key(stt_ikv_iter_t *it, size_t *len);
const char *stt_ikv_value(stt_ikv_iter_t *it, size_t *len);

/* ------------------------------------------------------------------ listing and verification (tools) */

/* For offline tools (settee-check, settee-dump) and tests; implemented in store/verify.c. */

/* Calls fn for every doc of the reader's db in id byte order, deleted docs included
 * (stt_docs_scan skips them). The id is valid during the callback only; fn returns
 * non-zero to stop. 0 or STT_E_IO. */
int stt_doc_ids_scan(stt_reader_t *r, int (*fn)(void *ctx, const char *id, size_t idlen), void *ctx);

/* One attachment as the db stores it: the reference count kept for its digest (0 when
 * none is kept) and whether bytes are stored under it (len: their length). */
typedef struct {
    unsigned char digest[STT_DIGEST_LEN];
    uint64_t refs;
    bool has_bytes;
    uint64_t len;
} stt_att_stored_t;

/* Calls fn for every digest that has a reference count or bytes in the db (each once);
 * fn returns non-zero to stop. The struct is valid during the callback only.
 * 0 or STT_E_IO. */
int stt_att_scan(stt_reader_t *r, int (*fn)(void *ctx, const stt_att_stored_t *a), void *ctx);

/* Options and results of a verification. Zero it; on_fault is optional. */
typedef struct {
    /* called with each fault found (a one-line message); verification goes on */
    void (*on_fault)(void *ctx, const char *msg);
    void *ctx;
    /* results, added to */
    uint64_t ndbs, ndocs, nleaves, natts, nlocal, nfaults;
    /* attachment bytes with no reference count that no leaf names: an upload's pieces
     * written ahead of a doc that never committed (a crash, a full disk). Not a fault:
     * nothing reads them, and the db's next compaction removes them. */
    uint64_t nunreferenced;
} stt_verify_t;

/* Checks a database on one snapshot, for a store with no concurrent writers (the
 * counters compared are the handle's):
 *  - every doc's rev tree passes stt_revtree_check; every leaf has its body and no
 *    other node keeps one;
 *  - the by-seq index holds each doc exactly once, at the doc's seq, with the doc's
 *    leaves in winner order and its deleted flag; no seq exceeds update_seq;
 *  - stt_docs_scan lists exactly the live docs with their winners;
 *  - doc_count, doc_del_count and active_size equal what the scan counts;
 *  - every attachment of a leaf reads back with its md5 and stored length (and,
 *    when gzip-encoded, decodes to its length); the reference count kept for a
 *    digest equals the leaves' references; no orphan bytes or counts.
 * Returns 0 when clean, or STT_E_INTERNAL when a fault was found, a record that
 * cannot be read included (the first fault in err, "db NAME: ..."; v->on_fault sees
 * every one). v may be NULL. */
int stt_db_verify(stt_db_t *db, stt_verify_t *v, char *err, size_t errlen);
/* stt_db_verify on every database after pending sweeps have finished, then the
 * store-wide keys: every key belongs to a live database (or one awaiting its sweep)
 * and no two names share a database id ("store: ..."). Same returns. */
int stt_store_verify(stt_store_t *s, stt_verify_t *v, char *err, size_t errlen);

#endif
