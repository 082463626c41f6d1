/* Private to store/: key layout, records and the structs behind the handles.
 *
 * One LevelDB holds every database. A key is a prefix byte, then fixed-width
 * big-endian ids so that LevelDB's byte order is the order we scan in:
 *
 * | key                            | value                                          |
 * |--------------------------------|------------------------------------------------|
 * | 'M' name                       | server-wide value (uuid, next db id)           |
 * | 'N' dbname                     | db record: id, created, revs_limit, counters,  |
 * |                                | security object                                |
 * | 'D' dbid(8) docid              | doc record: summary head, rev tree, leaf bodies|
 * | 'S' dbid(8) seq(8)             | doc summary at its latest seq (by-seq index)   |
 * | 'L' dbid(8) localid            | _local doc: rev N, body                        |
 * | 'A' dbid(8) md5(16)            | attachment bytes of up to STT__ATT_CHUNK       |
 * | 'A' dbid(8) md5(16) idx(4)     | piece idx of longer attachment bytes (att.c)   |
 * | 'C' dbid(8) md5(16)            | reference count of that attachment (varint)    |
 * | 'O' dbid(8) len(4) docid gen(8) revid | body of a superseded revision, kept     |
 * |                                | until compaction (u8 version, then a body as   |
 * |                                | in the doc record, without its node)           |
 * | 'X' dbid(8)                    | a deleted database whose keys await the sweep  |
 * | 'I' dbid(8) bytes              | view index data, opaque to the store (index/)  |
 *
 * Departure from DESIGN.md: leaf bodies live inside the doc record instead of
 * separate 'B' keys. Reading a doc is one lookup, a write rewrites the record it
 * rewrites anyway (the tree changes on every write), and a doc with only a few
 * leaves, the common case, costs one key instead of two. A body that stops being
 * a leaf's moves to an 'O' key (its node keeps STT_REV_HAS_BODY), so the record
 * stays small however often a doc is edited; compaction deletes those keys.
 *
 * Doc record ('D' value):
 *   u8 version(1) | u8 flags (1: winner deleted) | varint seq |
 *   varint len, winner rev text | varint len, rev tree (revtree.h encoding) |
 *   varint nbodies | per body: varint node, varint natts,
 *       per att: varint len name | varint len content_type | varint revpos |
 *                varint length | md5(16) | u8 encoding | varint encoded_length,
 *     varint len, body JSON
 * Summary ('S' value): varint len, docid | u8 flags | varint nleaves |
 *   per leaf (winner order): u8 deleted | varint len, rev text
 */
#ifndef STT_STORE_INT_H
#define STT_STORE_INT_H
#include "store/store.h"
/* LevelDB's handle types, declared here so that only the store's .c files include leveldb/c.h */
typedef struct leveldb_t leveldb_t;
typedef struct leveldb_options_t leveldb_options_t;
typedef struct leveldb_cache_t leveldb_cache_t;
typedef struct leveldb_filterpolicy_t leveldb_filterpolicy_t;
typedef struct leveldb_readoptions_t leveldb_readoptions_t;
typedef struct leveldb_writeoptions_t leveldb_writeoptions_t;
typedef struct leveldb_snapshot_t leveldb_snapshot_t;
typedef struct leveldb_writebatch_t leveldb_writebatch_t;
#include <pthread.h>
#include <stdatomic.h>

#define K_META 'M'
#define K_DBNAME 'N'
#define K_DOC 'D'
#define K_SEQ 'S'
#define K_LOCAL 'L'
#define K_ATT 'A'
#define K_ATTREF 'C'
#define K_SWEEP 'X'
#define K_OLD 'O'
#define K_INDEX 'I'

struct stt_store {
    /* Everything that touches ldb holds ldb_lock shared (a reader for its whole life);
     * only the reopen after a sticky LevelDB error (space.c) takes it exclusively, and
     * only by trylock, so it never blocks a request. */
    pthread_rwlock_t ldb_lock;
    leveldb_t *ldb;
    leveldb_options_t *opts;
    leveldb_cache_t *cache;
    leveldb_filterpolicy_t *filter;
    leveldb_readoptions_t *ropts;
    leveldb_writeoptions_t *wsync;
    stt_store_opts_t o;
    pthread_mutex_t lock; /* guards the db table, next_dbid */
    stt_db_t **dbs;       /* open handles, hash by name (open addressing) */
    size_t ndbs, capdbs;
    uint64_t next_dbid;
    stt_commit_hook_t hook;
    void *hook_ctx;
    stt_db_event_hook_t db_hook;
    void *db_hook_ctx;
    /* disk full (space.c) */
    char *path;               /* the LevelDB directory, for statvfs and reopen */
    uint64_t min_free;        /* below this many free bytes only freeing writes go on */
    uint64_t reopen_free;     /* free bytes a reopen of LevelDB needs */
    _Atomic int failed;       /* 0, or the STT_E_NO_SPACE/STT_E_IO a LevelDB write left sticky */
    _Atomic int low;          /* free space was below min_free at the last check */
    _Atomic int64_t last_try; /* monotonic ms of the last reopen attempt */
    /* sweeper */
    pthread_t sweeper;
    pthread_cond_t sweep_cond;
    int sweep_pending, sweeping, stopping, sweeper_started;
    /* dbs waiting for the background compactor (the sweeper's thread), each
     * holding a reference; guarded by lock */
    stt_db_t **cq;
    size_t ncq, capcq;
};

struct stt_db {
    stt_store_t *store;
    char *name;
    size_t namelen;
    uint64_t id;
    int refs;              /* guarded by store->lock */
    int deleted;           /* set under store->lock and wlock */
    pthread_mutex_t wlock; /* serialises writers; guards the fields below */
    uint64_t created;
    uint32_t revs_limit;
    uint64_t update_seq, doc_count, doc_del_count, purge_seq, active_size, old_size;
    char *security;
    size_t seclen;
    uint32_t flags;      /* STT_DB_* given at creation, never changed */
    int compacting;      /* compactions running, guarded by wlock */
    bool compact_queued; /* waits for the background compactor, guarded by store->lock */
};

struct stt_reader {
    int refs; /* stt_reader_retain: closed at the last stt_reader_close */
    stt_db_t *db;
    const leveldb_snapshot_t *snap;
    leveldb_readoptions_t *ro;
};

/* ------------------------------------------------------------------ disk full (space.c) */

/* Shared hold on ldb around any use outside a reader. */
static inline void stt__ldb_enter(stt_store_t *s)
{
    pthread_rwlock_rdlock(&s->ldb_lock);
}
static inline void stt__ldb_leave(stt_store_t *s)
{
    pthread_rwlock_unlock(&s->ldb_lock);
}
/* Before a write: 0 when it may go on; STT_E_NO_SPACE (or STT_E_IO) when the store is
 * read-only for now. A LevelDB error left sticky is cleared here by reopening LevelDB once
 * space is free again (at most one attempt a second). freeing: a write that makes room
 * (deleting a database, the sweep after it) passes the free-space floor. Call without
 * holding ldb_lock. */
int stt__write_begin(stt_store_t *s, bool freeing);
/* Classifies a LevelDB error string (freed here): STT_E_NO_SPACE for ENOSPC, else STT_E_IO.
 * A failed write (write=true) marks the store failed until stt__write_begin recovers it;
 * the log names the cause once per episode. what: the operation, for the log. */
int stt__ldb_error(stt_store_t *s, char *lerr, const char *what, bool write);
/* Initial state at open: the free-space floor, and a log line when below it. */
void stt__space_init(stt_store_t *s);

/* keys */
/* Attachment bytes (att.c): longer ones are stored in pieces of this size. */
#define STT__ATT_CHUNK (64u * 1024)
/* Bytes longer than this are staged (stt__att_stage) rather than put in the doc's batch. */
#define STT__ATT_STAGE_MIN (1u << 20)
void stt__att_put(leveldb_writebatch_t *wb, uint64_t dbid, const unsigned char *digest, const char *data, size_t len);
/* Writes the pieces of long bytes ahead of the batch that will reference them, in
 * synced batches of their own (0 or STT_E_IO/STT_E_NO_SPACE). */
int stt__att_stage(stt_store_t *s, uint64_t dbid, const unsigned char *digest, const char *data, size_t len);
/* Adds the deletion of a digest's bytes, whole or in pieces, to wb. */
void stt__att_delete(stt_store_t *s, leveldb_writebatch_t *wb, uint64_t dbid, const unsigned char *digest);
/* The reference count kept for a digest (0 when none), read from the live store. */
int stt__att_refcount(stt_db_t *db, const unsigned char *digest, uint64_t *out);
/* Whether bytes are stored under a digest in r's snapshot, and their stored length. */
int stt__att_stored_len(stt_reader_t *r, const unsigned char *digest, bool *found, uint64_t *len);
void stt__key_db(stt_buf_t *k, char tag, uint64_t dbid);
void stt__key_doc(stt_buf_t *k, uint64_t dbid, const char *id, size_t idlen);
void stt__key_seq(stt_buf_t *k, uint64_t dbid, uint64_t seq);
void stt__key_att(stt_buf_t *k, char tag, uint64_t dbid, const unsigned char *digest);
void stt__key_old(stt_buf_t *k, uint64_t dbid, const char *id, size_t idlen, uint64_t gen, const char *rev,
                  size_t revlen);
/* Splits an 'O' key; -1 when it is not one of dbid's. */
int stt__key_old_parse(const char *k, size_t klen, uint64_t dbid, const char **id, size_t *idlen, uint64_t *gen,
                       const char **rev, size_t *revlen);

/* db record */
void stt__db_record(const stt_db_t *db, stt_buf_t *out);
void stt__db_put_record(stt_db_t *db, leveldb_writebatch_t *wb);

/* doc records */
typedef struct {
    uint64_t gen;
    char *id; /* owned */
    size_t idlen;
    char *json; /* owned */
    size_t jsonlen;
    stt_att_t *atts; /* owned, names/types owned in strs */
    size_t natts;
    char *strs;
} stt__body_t;

int stt__doc_decode(const char *v, size_t len, stt_doc_t *d);

/* A leaf body to encode into a doc record, at tree node `node`. */
typedef struct {
    int node;
    const stt_att_t *atts;
    size_t natts;
    const char *json;
    size_t jsonlen;
} stt__rec_body_t;
/* Encodes a doc record (into rec) and, when summary is non-NULL, its by-seq
 * summary; the record layout is the table at the top of this file. */
void stt__doc_encode(const stt_revtree_t *t, uint64_t seq, const char *id, size_t idlen, const stt__rec_body_t *bodies,
                     size_t nbodies, stt_buf_t *rec, stt_buf_t *summary);
/* Re-encodes a decoded doc with a new tree nt (stemmed, purged): the bodies of
 * the nodes that are still leaves of nt carry over. */
void stt__doc_reencode(const stt_doc_t *d, const stt_revtree_t *nt, uint64_t seq, stt_buf_t *rec, stt_buf_t *summary);
int stt__body_at(const stt_doc_t *d, int node, stt_rev_body_t *out);
/* One body as the record stores it (natts, atts, json), the value of an 'O' key. */
void stt__body_encode(const stt_att_t *atts, size_t natts, const char *json, size_t jsonlen, stt_buf_t *out);
/* The value of an 'O' key. */
void stt__old_body_value(const stt_att_t *atts, size_t natts, const char *json, size_t jsonlen, stt_buf_t *out);
/* Decodes an 'O' value; out takes v over (freed by stt_rev_body_free). */
int stt__old_body_decode(char *v, size_t len, stt_rev_body_t *out);
/* Reads node's superseded body from its 'O' key. STT_E_NOT_FOUND, STT_E_IO. */
/* How many 'O' keys the reader's db has (settee-check). */
int stt__old_keys_count(stt_reader_t *r, uint64_t *n);
int stt__old_body_get(stt_db_t *db, const leveldb_readoptions_t *ro, const char *id, size_t idlen,
                      const stt_revtree_t *t, int node, stt_rev_body_t *out);

/* Attachment references dropped in a batch, summed per digest, then applied
 * with one read and one write per digest. */
typedef struct {
    unsigned char (*digest)[STT_DIGEST_LEN];
    uint64_t *count;
    size_t n;
} stt__refdrop_t;
void stt__refdrop_add(stt__refdrop_t *r, const unsigned char *digest);
int stt__refdrop_apply(stt__refdrop_t *r, stt_db_t *db, leveldb_writebatch_t *wb);
void stt__refdrop_free(stt__refdrop_t *r);

/* Queues db for the background compactor when its superseded bodies passed the
 * store's threshold. Caller holds no lock. */
void stt__maybe_autocompact(stt_db_t *db);
/* The superseded-bodies pass of a compaction (compact.c), on its own. */
int stt__compact_old_bodies(stt_db_t *db);

int stt__err_io(char *err);

#endif
