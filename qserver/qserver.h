/* qserver — JavaScript (and any other language) out of process: a client for
 * CouchDB's query-server line protocol and a pool of query-server processes.
 *
 * What it is. Design functions (map, reduce, validate_doc_update, filters,
 * _update handlers) run in separate processes speaking CouchDB's documented
 * "Query Server Protocol": one JSON command per line on their stdin, one JSON
 * reply per line on their stdout. The default process is settee's own
 * settee-qs (SpiderMonkey 102, next to the settee binary); CouchDB's couchjs or
 * any other query server can be configured per language, as CouchDB's
 * [query_servers] section (or COUCHDB_QUERY_SERVER_<LANG>) does.
 *
 * What it is not. No HTTP and no store: callers pass JSON text in (documents,
 * design documents, request objects, userCtx, secObj) and get parsed JSON or a
 * verdict back. Building the `req` object, choosing which design docs to
 * validate with and rendering errors belong to the layers above.
 *
 * Isolation. A function that loops forever, throws, allocates without bound or
 * crashes its process costs the call a CouchDB-shaped error and nothing else:
 * the process that timed out (os_process_timeout, default 5000 ms), died, sent a
 * ["fatal", ...] reply or answered something that is not the protocol is killed
 * and a fresh one is started for the next call. A call that hit a process which
 * died while idle is retried once on a fresh process.
 *
 * Threads. Every function is thread-safe and blocking (it waits for a
 * process, writes, and waits for the reply): call it from a worker thread,
 * never from an HTTP event loop. A call holds one process for its duration; at
 * most os_process_limit processes exist, and a call that finds all of them busy
 * waits for one up to the timeout.
 *
 * How the HTTP layer calls it (the wiring is not done in this folder):
 *
 *   startup:   stt_qs_config_t qc; stt_qs_config_default(&qc, argv0);
 *              stt_qs_config_from_ini(&qc, ini); stt_qs_config_from_env(&qc);
 *              stt_qs_pool_t *qs; stt_qs_pool_new(&qc, &qs); ... stt_qs_pool_free(qs);
 *   PUT ddoc:  for each view: stt_qs_compile(qs, lang, map_src, ...) and the
 *              reduce if it is not a builtin (_sum, _count...): a
 *              compilation_error is a 400 at write time as in CouchDB, whose
 *              reason reads "Compilation of the map function in the 'v' view
 *              failed: " + err.reason.
 *   index:     stt_qs_map_open(qs, lang, lib, funs, n, ...), then
 *              stt_qs_map_docs() on batches of docs (each doc JSON with _id and
 *              _rev), then stt_qs_map_close(). Out: per doc, per function, the
 *              [[key, value], ...] emitted.
 *   query:     stt_qs_reduce / stt_qs_rereduce for JS reduce functions.
 *   writes:    for each design doc with validate_doc_update, stt_qs_validate();
 *              STT_QS_E_FORBIDDEN -> 403 forbidden, STT_QS_E_UNAUTHORIZED ->
 *              401 unauthorized, anything else err.status/err.error/err.reason.
 *   _changes:  stt_qs_filter (filter=ddoc/name, with the req object) and
 *              stt_qs_filter_view (filter=_view), a batch of docs per call.
 *   _update:   stt_qs_update(): the new doc (null: nothing to save) and the
 *              response object ({"body"|"json"|"base64", "headers", "code"}).
 *
 * Input. Texts must be valid JSON (settee's own parser output is): the pool
 * does not re-check them, and a query server given a line that is not JSON ends
 * with a fatal error, which costs that call a process.
 *
 * Ownership. Input texts are borrowed for the call. Parsed outputs and the
 * strings in stt_qs_err_t live in the caller's arena (valid until it is freed);
 * the arena is only used by the calling thread. */
#ifndef STT_QSERVER_H
#define STT_QSERVER_H
#include "src/common/arena.h"
#include "src/common/ini.h"
#include "src/common/json.h"
#include <stdbool.h>
#include <stddef.h>

/* Error codes of this folder (a range of their own below src/common/err.h's). */
enum {
    STT_QS_E_FIRST = -30899,
    STT_QS_E_ERROR = STT_QS_E_FIRST, /* the function or query server answered ["error", id, reason] */
    STT_QS_E_COMPILE,                /* compilation_error: the function does not compile */
    STT_QS_E_FORBIDDEN,              /* validate_doc_update threw {forbidden: reason} */
    STT_QS_E_UNAUTHORIZED,           /* validate_doc_update threw {unauthorized: reason} */
    STT_QS_E_TIMEOUT,                /* no reply within os_process_timeout; process killed */
    STT_QS_E_PROCESS,                /* the process died, could not start or broke the protocol */
    STT_QS_E_UNKNOWN_LANG,           /* no query server for the design doc's language */
    STT_QS_E_LAST
};

/* What a failed call tells the caller, shaped as CouchDB's reply. All pointers are
 * in the call's arena. status is what CouchDB answers when the error happens at
 * query or write time (compilation errors at design-doc write time are 400: the
 * caller knows which case it is in). */
typedef struct {
    int status;         /* 500, 403 (forbidden), 401 (unauthorized), 400 (unknown_query_language)... */
    const char *error;  /* CouchDB's "error": "compilation_error", "os_process_error", "TypeError"... */
    const char *reason; /* its "reason": a string (the query server's reason as JSON text when it was not) */
} stt_qs_err_t;

/* Borrowed JSON text. */
typedef struct {
    const char *s;
    size_t len;
} stt_qs_text_t;

/* ------------------------------------------------------------------ configuration */

#define STT_QS_MAX_LANGS 8

typedef struct {
    struct {
        char lang[32];      /* lower case, the design doc's "language" */
        char command[1024]; /* run by /bin/sh -c "exec <command>" */
    } servers[STT_QS_MAX_LANGS];
    size_t nservers;
    int timeout_ms;    /* [couchdb] os_process_timeout, 5000 */
    int process_limit; /* [query_server_config] os_process_limit, 16 (CouchDB: 100) */
    int soft_limit;    /* [query_server_config] os_process_soft_limit, 4: idle processes kept beyond it are stopped */
    int idle_limit_s;  /* [query_server_config] os_process_idle_limit, 300 */
    char reduce_limit[8];       /* [query_server_config] reduce_limit: "true", "false" or "log" */
    int reduce_limit_threshold; /* [query_server_config] reduce_limit_threshold, 5000 */
    double reduce_limit_ratio;  /* [query_server_config] reduce_limit_ratio, 2.0 */
    size_t max_reply_bytes;     /* a longer reply line is a protocol error, 64 MiB */
} stt_qs_config_t;

/* Defaults; "javascript" runs settee-qs from the folder of self_exe (the settee
 * binary's path, e.g. argv[0] or "/proc/self/exe"; NULL: /proc/self/exe). */
void stt_qs_config_default(stt_qs_config_t *c, const char *self_exe);
/* Overrides from the ini ([query_servers] lang = command, and the keys above). */
void stt_qs_config_from_ini(stt_qs_config_t *c, stt_ini_t *ini);
/* Overrides from COUCHDB_QUERY_SERVER_<LANG>=command (CouchDB 3's way). Not
 * thread-safe (reads the environment): call at startup. */
void stt_qs_config_from_env(stt_qs_config_t *c);
/* Sets (or adds) the command of one language. 0, or -1 when the table is full or
 * a string is too long. */
int stt_qs_config_set_server(stt_qs_config_t *c, const char *lang, const char *command);

/* ------------------------------------------------------------------ the pool */

typedef struct stt_qs_pool stt_qs_pool_t;

/* The configuration is copied. No process starts before the first call. */
int stt_qs_pool_new(const stt_qs_config_t *c, stt_qs_pool_t **out);
/* Kills the idle processes and frees the pool; no call may be running. */
void stt_qs_pool_free(stt_qs_pool_t *pool);

typedef struct {
    size_t processes; /* alive now, busy or idle */
    size_t idle;
    size_t started; /* since the pool was made */
    size_t killed;  /* stopped because of a timeout, crash, fatal reply or protocol error */
} stt_qs_stats_t;
void stt_qs_pool_stats(stt_qs_pool_t *pool, stt_qs_stats_t *out);

/* Whether a query server is configured for lang (NULL means "javascript"). */
bool stt_qs_has_lang(stt_qs_pool_t *pool, const char *lang);

/* ------------------------------------------------------------------ views */

/* Checks that src compiles as a function in lang (reset + add_fun).
 * 0, or STT_QS_E_COMPILE with err->reason the query server's message. */
int stt_qs_compile(stt_qs_pool_t *pool, const char *lang, stt_qs_text_t src, stt_arena_t *arena, stt_qs_err_t *err);

typedef struct stt_qs_mapper stt_qs_mapper_t;

/* Takes a process for a run of map_doc calls over the functions funs[0..nfuns)
 * (sources, in view order) and lib (the design doc's views.lib object as JSON,
 * or {NULL, 0}). The sources and lib are copied: the mapper can restart its
 * process by itself. On error nothing is held. */
int stt_qs_map_open(stt_qs_pool_t *pool, const char *lang, stt_qs_text_t lib, const stt_qs_text_t *funs, size_t nfuns,
                    stt_arena_t *arena, stt_qs_err_t *err, stt_qs_mapper_t **out);
/* Maps docs[0..ndocs) (each a full doc JSON with _id and _rev). The commands are
 * pipelined (written while replies are read), one reply per doc. out[i] becomes
 * an array of nfuns arrays of [key, value] pairs, in the arena. On an error
 * (map_runtime_error, a timeout...) the whole batch fails, as a view update in
 * CouchDB does; the mapper stays usable (a dead process is replaced). */
int stt_qs_map_docs(stt_qs_mapper_t *m, const stt_qs_text_t *docs, size_t ndocs, stt_arena_t *arena, stt_json_t *out,
                    stt_qs_err_t *err);
/* Returns the process to the pool and frees the mapper. NULL is fine. */
void stt_qs_map_close(stt_qs_mapper_t *m);

/* reduce: kvs is the JSON array [[[key, docid], value], ...]; rereduce: values is
 * the JSON array of earlier reductions. out becomes the array of one result per
 * function. A reduce_limit overflow is STT_QS_E_ERROR with error
 * "reduce_overflow_error" (CouchDB returns it in place of the value). */
int stt_qs_reduce(stt_qs_pool_t *pool, const char *lang, const stt_qs_text_t *funs, size_t nfuns, stt_qs_text_t kvs,
                  stt_arena_t *arena, stt_json_t *out, stt_qs_err_t *err);
int stt_qs_rereduce(stt_qs_pool_t *pool, const char *lang, const stt_qs_text_t *funs, size_t nfuns,
                    stt_qs_text_t values, stt_arena_t *arena, stt_json_t *out, stt_qs_err_t *err);

/* ------------------------------------------------------------------ design documents */

/* A design document as the query server sees it. (id, rev) names the version
 * each process caches after "ddoc new": pass the winning rev, so that an edited
 * design doc is sent again. */
typedef struct {
    const char *id;     /* "_design/x" */
    const char *rev;    /* "3-abc..." */
    const char *lang;   /* its "language", NULL = "javascript" */
    stt_qs_text_t json; /* the whole design doc, with _id */
} stt_qs_ddoc_t;

/* validate_doc_update(newDoc, oldDoc, userCtx, secObj) of one design doc.
 * new_doc is the doc being written (JSON with _id, _rev, _revisions as CouchDB
 * sends it; _deleted: true for a deletion); old_doc the current winner or {NULL,0}
 * (sent as null). 0 when it passes; STT_QS_E_FORBIDDEN / STT_QS_E_UNAUTHORIZED
 * with err->reason its message; STT_QS_E_ERROR for anything else it threw
 * (error "unknown_error" for a plain string or another {key: message}, CouchDB's
 * mapping), or the process errors. */
int stt_qs_validate(stt_qs_pool_t *pool, const stt_qs_ddoc_t *ddoc, stt_qs_text_t new_doc, stt_qs_text_t old_doc,
                    stt_qs_text_t user_ctx, stt_qs_text_t sec_obj, stt_arena_t *arena, stt_qs_err_t *err);

/* stt_qs_validate over n docs at once, the commands pipelined on one process:
 * new_docs[i] with old_docs[i] ({NULL,0}: null). 0 when every doc got its verdict:
 * rcs[i] 0 (passed), STT_QS_E_FORBIDDEN / STT_QS_E_UNAUTHORIZED / STT_QS_E_ERROR
 * (a thrown value that is neither) with errs[i] filled. Otherwise the batch's error
 * (rcs not all set): STT_QS_E_ERROR when some doc made the function fail (which
 * one is not known: validate those docs one by one), a timeout or process error
 * for the process. */
int stt_qs_validate_many(stt_qs_pool_t *pool, const stt_qs_ddoc_t *ddoc, const stt_qs_text_t *new_docs,
                         const stt_qs_text_t *old_docs, size_t n, stt_qs_text_t user_ctx, stt_qs_text_t sec_obj,
                         stt_arena_t *arena, int *rcs, stt_qs_err_t *errs, stt_qs_err_t *err);

/* filters.<name>(doc, req) over docs[0..ndocs); pass[i] is its truthiness. req is
 * CouchDB's request object ({"query": {...}, "userCtx": {...}, ...}). */
int stt_qs_filter(stt_qs_pool_t *pool, const stt_qs_ddoc_t *ddoc, const char *name, const stt_qs_text_t *docs,
                  size_t ndocs, stt_qs_text_t req, stt_arena_t *arena, bool *pass, stt_qs_err_t *err);
/* views.<name>.map as a filter (filter=_view): pass[i] is whether it emitted. */
int stt_qs_filter_view(stt_qs_pool_t *pool, const stt_qs_ddoc_t *ddoc, const char *name, const stt_qs_text_t *docs,
                       size_t ndocs, stt_arena_t *arena, bool *pass, stt_qs_err_t *err);

/* updates.<name>(doc, req): doc is the stored doc or {NULL,0} (null). On success
 * *doc_out is the doc to save (STT_JSON_NULL: save nothing) and *resp_out the
 * response object. Errors as CouchDB: render_error, method_not_allowed (GET)... */
int stt_qs_update(stt_qs_pool_t *pool, const stt_qs_ddoc_t *ddoc, const char *name, stt_qs_text_t doc,
                  stt_qs_text_t req, stt_arena_t *arena, stt_json_t *doc_out, stt_json_t *resp_out, stt_qs_err_t *err);

/* Any other ddoc command: ["ddoc", id, path, args] with path[0..npath) and args a
 * JSON array; *out is the reply. For query servers that offer more than settee. */
int stt_qs_ddoc_call(stt_qs_pool_t *pool, const stt_qs_ddoc_t *ddoc, const char *const *path, size_t npath,
                     stt_qs_text_t args, stt_arena_t *arena, stt_json_t *out, stt_qs_err_t *err);

#endif
