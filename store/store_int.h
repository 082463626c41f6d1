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
 * | 'A' dbid(8) md5(16)            | attachment bytes                               |
 * | 'C' dbid(8) md5(16)            | reference count of that attachment (varint)    |
 * | 'X' dbid(8)                    | a deleted database whose keys await the sweep  |
 * | 'I' dbid(8) bytes              | view index data, opaque to the store (index/)  |
 *
 * Departure from DESIGN.md: leaf bodies live inside the doc record instead of
 * separate 'B' keys. Reading a doc is one lookup, a write rewrites the record it
 * rewrites anyway (the tree changes on every write), and a doc with only a few
 * leaves, the common case, costs one key instead of two.
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

#define K_META 'M'
#define K_DBNAME 'N'
#define K_DOC 'D'
#define K_SEQ 'S'
#define K_LOCAL 'L'
#define K_ATT 'A'
#define K_ATTREF 'C'
#define K_SWEEP 'X'
#define K_INDEX 'I'

struct stt_store {
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
    /* sweeper */
    pthread_t sweeper;
    pthread_cond_t sweep_cond;
    int sweep_pending, sweeping, stopping, sweeper_started;
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
    uint64_t update_seq, doc_count, doc_del_count, purge_seq, active_size;
    char *security;
    size_t seclen;
    int compacting; /* compactions running, guarded by wlock */
};

struct stt_reader {
    stt_db_t *db;
    const leveldb_snapshot_t *snap;
    leveldb_readoptions_t *ro;
};

/* keys */
void stt__key_db(stt_buf_t *k, char tag, uint64_t dbid);
void stt__key_doc(stt_buf_t *k, uint64_t dbid, const char *id, size_t idlen);
void stt__key_seq(stt_buf_t *k, uint64_t dbid, uint64_t seq);
void stt__key_att(stt_buf_t *k, char tag, uint64_t dbid, const unsigned char *digest);

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

int stt__err_io(char *err);

#endif
