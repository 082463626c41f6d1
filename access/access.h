/* Per-document access control: databases created with PUT /db?access=true
 * (CouchDB's proposed `_access`, RFC 010), below the HTTP layer.
 *
 * Every document of such a database carries in its body an "_access" array of
 * user names and roles (its principals). A user who is not an admin of the
 * database sees and writes only the revisions whose own _access names them or one
 * of their roles; db admins (and server admins) see and write everything; design
 * documents are db-admin only. The rules, and how they differ from CouchDB's
 * proposal, are in the README ("Per-document access").
 *
 *  - A view (stt_access_t) is one user's: NULL for whoever sees everything (the
 *    database is not an access database, or the user administers it), so callers
 *    write `if (acc) filter`.
 *  - Reads ask per revision (stt_access_node_ok) or for the user's winner: the
 *    first leaf in winner order the user may read (stt_access_winner).
 *  - Writes pass through stt_access_before_write, which fills an empty _access,
 *    gives a deletion its parent's _access, and refuses what the user may not do.
 *  - _changes for a user is served from an index kept in the database's index
 *    keyspace (index.c): per principal, by seq. stt_access_sync brings it up to
 *    date; stt_access_changes_scan merges the user's principals' entries.
 *
 * Memory: views and rewritten bodies live in the caller's arena. Thread-safe. */
#ifndef STT_ACCESS_H
#define STT_ACCESS_H
#include "security/security.h"
#include "src/common/arena.h"
#include "src/common/buf.h"
#include "store/store.h"
#include <stdbool.h>
#include <stdint.h>

typedef struct stt_access stt_access_t;

/* Whether db was created with ?access=true. */
static inline bool stt_access_enabled(const stt_db_t *db)
{
    return (stt_db_flags(db) & STT_DB_ACCESS) != 0;
}

/* The view of user u on db, in arena a: NULL when u sees everything (db is not
 * an access database, or db_admin says u administers it). u is borrowed for the
 * view's life. */
stt_access_t *stt_access_open(stt_arena_t *a, stt_db_t *db, const stt_user_ctx_t *u, bool db_admin);

/* Whether a body's _access (JSON object text) names one of the view's principals. */
bool stt_access_body_ok(const stt_access_t *acc, const char *json, size_t len);
/* Whether the user may read revision node of d: a stored body whose _access names
 * them (never for a design doc). */
bool stt_access_node_ok(const stt_access_t *acc, const stt_doc_t *d, int node);
/* The user's winner: the first leaf in winner order they may read, or -1. */
int stt_access_winner(const stt_access_t *acc, const stt_doc_t *d);
/* Whether the doc was once shared with the user and no longer is (its index entry
 * for one of their principals is a removal). Such a user is told the doc is
 * deleted (stt_access_render_stub) so that their replica drops it. */
bool stt_access_was_shared(const stt_access_t *acc, const char *id, size_t idlen);
/* {"_id":..,"_rev":<node>,"_deleted":true,"_revisions":{..}}: what a user whose
 * access was removed receives for a revision of d (no body). */
void stt_access_render_stub(const stt_doc_t *d, int node, stt_buf_t *out);

/* stt_doc_select for the user: rev (when given) must be a revision they may
 * read, else the user's winner, which must be live. 0 with *node, or
 * STT_E_NOT_FOUND / STT_E_DELETED. */
int stt_access_select(const stt_access_t *acc, const stt_doc_t *d, const stt_rev_t *rev, int *node);
/* Keeps of nodes[0..n) what the user may receive (open_revs, _bulk_get): the
 * revisions they may read, and when the doc was shared with them, the others
 * as stubs (stub[k] true: render with stt_access_render_stub). Returns the new
 * count; stub holds n entries. */
size_t stt_access_filter_nodes(const stt_access_t *acc, const stt_doc_t *d, int *nodes, bool *stub, size_t n);

/* A copy of a view in arena a, for work that may outlive the request (a view
 * query on a pool thread). */
stt_access_t *stt_access_copy(stt_arena_t *a, const stt_access_t *acc);
/* The map-row filter of view queries (index/index.h row_ok, ctx the view): the
 * row of doc id stands when the doc's winner is the one the index saw (its seq
 * is at most seq) and the user may read it. Rows come from the winner only, so a
 * doc whose winner is another user's gives them no row, even when a conflicting
 * leaf is theirs. */
bool stt_access_view_row_ok(void *ctx, stt_reader_t *rd, const char *id, size_t idlen, uint64_t seq);

/* A summary as the user sees the doc (for _all_docs, _changes): filled by
 * stt_access_summary, valid until stt_access_row_free. */
typedef struct {
    stt_doc_summary_t s;
    bool removed; /* the doc was shared with the user and is no longer */
    int node;     /* the user's winner, -1 when removed */
    stt_buf_t revs;
    const char **rev;
    size_t *revlen;
    bool *deleted;
} stt_access_row_t;
void stt_access_row_free(stt_access_row_t *row);
/* The user's summary of doc d (seq as given): the leaves they may read, in winner
 * order. false (row untouched) when they may read none. */
bool stt_access_summary(const stt_access_t *acc, const stt_doc_t *d, stt_access_row_t *row);

/* ------------------------------------------------------------------ writes */

/* A write to an access database, before the store sees it: for user u (db_admin:
 * they administer the db), with rd a reader of the db. Checks _access (an array
 * of non-empty strings). A non-admin may write only a doc that is new, deleted,
 * or has a leaf they may read, and only on a revision they may read (the rev
 * named); the revision written must name them. Without _access (or with []) a
 * deletion, and a non-admin's update of a live doc, keep the _access of the
 * revision they replace; a non-admin's new doc gets [their name]. May replace
 * w->body (arena). Returns 0, or STT_E_FORBIDDEN / STT_E_BAD_REQUEST with
 * *reason set. No-op (0) for a database without access control and for design
 * docs (db-admin only, checked apart). */
int stt_access_before_write(stt_arena_t *a, stt_db_t *db, const stt_user_ctx_t *u, bool db_admin, stt_reader_t *rd,
                            stt_doc_write_t *w, const char **reason);

/* _local docs (replication checkpoints) follow the rules of docs, on their one
 * body: a user reads one whose _access names them (stt_access_body_ok), and
 * writes (or deletes) local doc name only when it is new or theirs; a body
 * without _access gets the stored one's, else [their name]. May replace *body
 * (arena). 0, STT_E_FORBIDDEN or STT_E_BAD_REQUEST with *reason. */
int stt_access_local_write(stt_arena_t *a, const stt_access_t *acc, const char *name, size_t namelen, bool deleted,
                           const char **body, size_t *bodylen, const char **reason);

/* ------------------------------------------------------------------ the per-user changes index */

/* Brings db's access index up to the db's current update_seq (docs written since
 * it was last brought up). *upto receives the seq it now describes: every change
 * up to it is indexed. 0 or STT_E_IO. */
int stt_access_sync(stt_db_t *db, uint64_t *upto);

/* The user's _changes: calls fn with the user's summary (stt_access_summary; a
 * removed doc as one deleted leaf, its winner) for each doc whose index entry for
 * one of their principals has a seq in (since, upto], ascending, or descending
 * from below `since` (since 0: from upto). Docs are read through rd, whose
 * snapshot must hold every change up to upto. Returns 1 when fn stopped the scan,
 * 0 when it ran to the end, or STT_E_IO. */
int stt_access_changes_scan(const stt_access_t *acc, stt_reader_t *rd, uint64_t since, uint64_t upto, bool descending,
                            int (*fn)(void *ctx, const stt_doc_summary_t *s), void *ctx);

/* The background indexer (indexer.c): a commit to db queues it, and a thread of
 * the access module syncs its index, so reads find it current. No-op for a db
 * without access control. Thread-safe; called from the store's commit hook. */
void stt_access_notify(stt_db_t *db);
/* Stops the indexer's thread (shutdown, before the store closes). A later
 * notify starts it again. */
void stt_access_stop(void);

/* The user's _all_docs: calls fn, in id order (range as stt_docs_scan's), for each
 * live doc they may read whose by-id index entry is in range, with their summary
 * (their winner only counts when live), the doc and their winner's node. Read the
 * index current first (stt_access_sync). 1 when fn stopped the scan, else 0. */
int stt_access_docs_scan(const stt_access_t *acc, stt_reader_t *rd, const stt_range_t *range,
                         int (*fn)(void *ctx, const stt_doc_summary_t *s, const stt_doc_t *d, int node), void *ctx);

/* Memory the index takes for a database (bytes of keys and values under its
 * prefix) and how many principal entries it holds (tools, benchmarks). */
int stt_access_index_size(stt_db_t *db, uint64_t *bytes, uint64_t *entries);

#endif
