/* mango — CouchDB's Mango queries below the HTTP layer: the _find/_explain
 * request (mango_opts), json index definitions (_index: design docs with
 * "language": "query", as CouchDB stores them), query planning (mango_idx
 * selection of CouchDB 3.4) and execution over the index engine (index/) or
 * _all_docs. Selector matching is replication/selector.c's.
 *
 * What it is not. No HTTP: bodies arrive parsed, answers leave as JSON text,
 * errors as CouchDB's status, error name and reason (stt_mango_err_t).
 *
 * Threads. A stt_mango_find_t has one user at a time. stt_mango_find_start
 * may block (it brings the chosen index up to date): call it off the event
 * loops. The others read one LevelDB snapshot and return after a chunk.
 *
 * Errors. 0, STT_MANGO_E with err filled, or a code of src/common/err.h
 * (err->reason then holds a reason when there is one, else ""). */
#ifndef STT_MANGO_H
#define STT_MANGO_H
#include "src/common/arena.h"
#include "src/common/buf.h"
#include "src/common/json.h"
#include "store/store.h"
#include <stdbool.h>
#include <stdint.h>

enum { STT_MANGO_E = -30699 };

typedef struct {
    int status;        /* HTTP status */
    const char *error; /* CouchDB's error name (static) */
    char reason[512];
    bool ref; /* CouchDB adds a log "ref" (an error inside its processing) */
} stt_mango_err_t;

/* ------------------------------------------------------------------ _find and _explain */

typedef struct stt_mango_find stt_mango_find_t;

/* Validates a _find/_explain body as mango_opts does (its error names and
 * order). The query copies what it keeps: body may be freed afterwards. */
int stt_mango_find_new(const stt_json_t *body, stt_mango_find_t **out, stt_mango_err_t *err);
/* Only the doc id may be returned (a non-admin reading _users sees its own). */
void stt_mango_find_only(stt_mango_find_t *f, const char *id, size_t idlen);
/* Per-document access: pick(ctx, d) names the revision of d the caller may read
 * (its node) or -1 to leave the doc out; without it the winner is read. Called
 * from stt_mango_find_next only. Covering indexes are not used then (every match
 * is read to be checked). */
typedef int (*stt_mango_pick_fn)(void *ctx, const stt_doc_t *d);
void stt_mango_find_pick(stt_mango_find_t *f, stt_mango_pick_fn pick, void *ctx);
/* Plans the query on db and, when an index serves it, brings the index up to
 * date (update: true) — blocking. db is borrowed until stt_mango_find_free. */
int stt_mango_find_start(stt_mango_find_t *f, stt_db_t *db, stt_mango_err_t *err);
/* Appends the next part of {"docs":[...],"bookmark":...} to out (about 64 KB
 * at a time). 1 while more is to come, 0 after the last part. */
int stt_mango_find_next(stt_mango_find_t *f, stt_buf_t *out);
void stt_mango_find_free(stt_mango_find_t *f);

/* CouchDB's _explain body for the query on db (planning only: no update). */
int stt_mango_explain(stt_mango_find_t *f, stt_db_t *db, stt_buf_t *out, stt_mango_err_t *err);

/* ------------------------------------------------------------------ _index */

/* GET _index: {"total_rows":..,"indexes":[...]}, _all_docs first, then by
 * design doc and name; skip/limit < 0 when not given. */
int stt_mango_index_list(stt_db_t *db, int64_t skip, int64_t limit, stt_buf_t *out, stt_mango_err_t *err);
/* POST _index body: {"result":"created"|"exists","id":..,"name":..}. */
int stt_mango_index_create(stt_db_t *db, const stt_json_t *body, stt_buf_t *out, stt_mango_err_t *err);
/* DELETE _index/{ddoc}/{type}/{name} (ddoc with or without "_design/").
 * STT_E_NOT_FOUND when there is no such json index. */
int stt_mango_index_delete(stt_db_t *db, const char *ddoc, size_t ddoclen, const char *type, size_t typelen,
                           const char *name, size_t namelen, stt_mango_err_t *err);
/* POST _index/_bulk_delete body: {"success":[...],"fail":[...]}. */
int stt_mango_index_bulk_delete(stt_db_t *db, const stt_json_t *body, stt_buf_t *out, stt_mango_err_t *err);

/* ------------------------------------------------------------------ selector feeds (feed.c) */

/* One doc of a selector feed: its id and the seq of its last update. */
typedef struct {
    char *id;
    size_t idlen;
    uint64_t seq;
} stt_mango_feed_row_t;

/* Selector feeds from an index (beyond CouchDB): the docs a _changes feed with
 * filter=_selector (or a replication with a selector) from since would consider,
 * read from a json index instead of the whole by-seq index. The index used is
 * the one with the fewest rows among those holding every doc sel can match (sel
 * requires each of its fields and, for a partial index, has each top-level
 * condition of its partial_filter_selector among its own); it is brought up to
 * date first, to *upto (a db seq). *rows are the docs it holds whose last update
 * is in (since, upto], in seq order (malloc'd: stt_mango_feed_free). The caller
 * still matches each doc's winner against sel, as the full feed does, and scans
 * the by-seq index past *upto for what changed since. No index holds a deleted
 * doc, yet a deletion that kept its body can match: the caller tests the deleted
 * docs of (since, upto] too (replication/ep_local.c walks the by-seq summaries,
 * reading bodies only for index rows and deletions); the rows then are exactly a
 * full scan's. STT_E_NOT_FOUND when no index holds sel's docs (scan as before);
 * STT_E_BAD_REQUEST for a selector that does not compile. Blocking. */
int stt_mango_feed_rows(stt_db_t *db, const stt_json_t *sel, uint64_t since, stt_mango_feed_row_t **rows, size_t *nrows,
                        uint64_t *upto);
void stt_mango_feed_free(stt_mango_feed_row_t *rows, size_t nrows);

/* The same as a scan uses it (_changes?filter=_selector, replication with a
 * selector): the seqs of the index's docs, sorted (malloc'd), and upto. A scan of
 * the by-seq index then reads the body only of the docs stt_mango_feed_may_match
 * keeps: live docs up to upto that the index holds, every deletion (no index holds
 * one, yet a deletion that kept its body may match), everything past upto. Same
 * returns as stt_mango_feed_rows. */
typedef struct {
    uint64_t *seqs;
    size_t n;
    uint64_t upto;
} stt_mango_feed_set_t;
int stt_mango_feed_set(stt_db_t *db, const stt_json_t *sel, uint64_t since, stt_mango_feed_set_t *out);
bool stt_mango_feed_may_match(const stt_mango_feed_set_t *set, const stt_doc_summary_t *s);
void stt_mango_feed_set_free(stt_mango_feed_set_t *set);

#endif
