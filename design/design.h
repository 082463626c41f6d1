/* design — design documents as CouchDB 3.4 treats them, below HTTP.
 *
 *  - What a design doc must be to be stored (stt_design_check): the field types
 *    couch_mrview checks, and every view's map and JS reduce compiled by the query
 *    server, so a bad function is a 400 at write time. Filters, updates, shows and
 *    validate_doc_update are type-checked only: CouchDB does not compile them at
 *    write time either (a broken validate_doc_update is stored, then fails writes).
 *  - validate_doc_update over a batch of writes (stt_design_validate_writes), with
 *    a per-database cache of the design docs that carry one (stt_design_vdus), so a
 *    database without validators pays one hash lookup per write.
 *  - Design-doc functions that requests name ("ddoc/name" in _changes filters):
 *    CouchDB's way of splitting the name and the lookup it does before running
 *    anything (stt_ddoc_ref_parse, stt_ddoc_lookup), and a design doc opened for
 *    the query server (stt_design_open).
 *
 * What it is not: HTTP (no request, no reply) and not views (index/).
 *
 * Threads. Functions that call the query server (check, validate, and whatever the
 * caller does with stt_design_open's result) block for a process and for the
 * function's run, up to os_process_timeout: call them from a worker thread, never
 * from an event loop. The cache functions are thread-safe and do not block on the
 * query server (a miss reads the store). */
#ifndef STT_DESIGN_H
#define STT_DESIGN_H
#include "qserver/qserver.h"
#include "src/common/arena.h"
#include "src/common/json.h"
#include "store/store.h"
#include <stdbool.h>

/* ------------------------------------------------------------------ design doc writes */

/* Checks the design doc body ddoc (an object) as CouchDB's validate_ddoc does.
 * 0, or -1 with err filled (in a): 400 invalid_design_doc / compilation_error,
 * 404 not_found "missing function" for an empty map, or the query server's error
 * when it could not compile at all (a timeout...). A language without a query
 * server is accepted uncompiled, as CouchDB does (it fails at query time). */
int stt_design_check(stt_qs_pool_t *qs, const stt_json_t *ddoc, stt_arena_t *a, stt_qs_err_t *err);

/* ------------------------------------------------------------------ validate_doc_update */

/* The validators of one database: reference-counted, immutable once made. */
typedef struct {
    int refs; /* atomic */
    size_t n;
    stt_qs_ddoc_t *ddocs; /* n design docs with a validate_doc_update, by id */
} stt_vdu_set_t;

/* The validators of db, or NULL when it has none. Cached per database; a miss
 * reads db's design docs. The set returned is the caller's reference. */
stt_vdu_set_t *stt_design_vdus(stt_db_t *db);
void stt_vdu_set_release(stt_vdu_set_t *s);
/* A design doc of db was written (or db went away): the next stt_design_vdus
 * reads them again. Call after the write is committed. */
void stt_design_changed(stt_db_t *db);

/* Who writes: the JSON texts validators receive (borrowed for the call). */
typedef struct {
    stt_qs_text_t user_ctx; /* {"db":..., "name":..., "roles":[...]} */
    stt_qs_text_t sec_obj;  /* the db's _security */
    bool is_admin;          /* a db or server admin: design docs are not validated by VDUs */
} stt_vdu_ctx_t;

/* Runs, for each docs[i] with res[i].err still 0: stt_design_check for a live
 * design doc, and the validators of vdus (NULL: none) for any other doc (and for a
 * design doc written by a non-admin). A refused doc gets res[i].err (STT_E_FORBIDDEN,
 * STT_E_UNAUTHORIZED, STT_E_BAD_REQUEST, STT_E_NOT_FOUND or STT_E_INTERNAL),
 * res[i].error (CouchDB's "error" when the code's is not it) and res[i].reason, in a.
 * oldDoc is read from db: the revision an edit names (new_edits) or the leaf a
 * replicated path extends, else null. Returns how many docs were refused. */
size_t stt_design_validate_writes(stt_qs_pool_t *qs, stt_db_t *db, const stt_vdu_set_t *vdus, const stt_vdu_ctx_t *ctx,
                                  const stt_doc_write_t *docs, size_t n, bool new_edits, stt_arena_t *a,
                                  stt_doc_result_t *res);

/* Whether a batch needs stt_design_validate_writes at all: validators, or a live
 * design doc among the docs. */
bool stt_design_needs_validation(const stt_vdu_set_t *vdus, const stt_doc_write_t *docs, size_t n);

/* ------------------------------------------------------------------ named functions */

/* A design-doc function named "ddoc/function" (parts percent-decoded; pointers
 * into the arena). */
typedef struct {
    const char *ddoc; /* name without "_design/" */
    size_t ddoclen;
    const char *fn;
    size_t fnlen;
} stt_ddoc_ref_t;

/* Splits s as CouchDB splits a filter or view name: on '/', empty parts dropped,
 * each part unquoted once more (%XX, '+' a space). Returns the number of parts
 * (3 for three or more); *out is set only when it is 2. */
int stt_ddoc_ref_parse(stt_arena_t *a, const char *s, size_t len, stt_ddoc_ref_t *out);

/* Opens _design/<name> (its live winner) for the query server: out->json is the
 * whole doc with _id and _rev, all in a. *body (may be NULL) gets it parsed.
 * STT_E_NOT_FOUND / STT_E_DELETED, or the store's error. */
int stt_design_open(stt_db_t *db, stt_arena_t *a, const char *name, size_t len, stt_qs_ddoc_t *out, stt_json_t *body);

/* Whether _design/<ref->ddoc> exists, is not deleted and has ref->fn under its
 * member `section` ("filters", "views"), checked in that order as CouchDB does.
 * 0 with *ddoc opened (may be NULL) when it has; STT_E_NOT_FOUND with *reason set
 * to CouchDB's text ("missing", "deleted", "missing json key: <key>",
 * "json_mismatch"; static or arena) when not; another code when the store fails. */
int stt_ddoc_lookup(stt_db_t *db, stt_arena_t *a, const stt_ddoc_ref_t *ref, const char *section, stt_qs_ddoc_t *ddoc,
                    const char **reason);

#endif
