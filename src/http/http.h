/* Private to src/http: the request context every handler receives, the reply
 * helpers, and the route table types. The only place an error code becomes an
 * HTTP reply. */
#ifndef STT_HTTP_H
#define STT_HTTP_H
#include "src/common/arena.h"
#include "src/common/buf.h"
#include "src/common/config.h"
#include "src/common/ini.h"
#include "src/common/json.h"
#include "store/store.h"
#include "security/security.h"
#include <h2o.h>
#include <stdbool.h>

/* ------------------------------------------------------------------ server */

typedef struct stt_worker stt_worker_t;

typedef struct {
    const stt_config_t *cfg;
    stt_store_t *store;
    stt_ini_t *ini; /* the live configuration (/_node/{node}/_config) */
    stt_auth_t *auth;
    struct stt_qs_pool *qs; /* query servers (design functions); NULL if it could not be made */
    char uuid[33];
    char instance_start_time[24]; /* server start, unix seconds, as CouchDB 3.4 gives per db */
    h2o_globalconf_t h2o;
    size_t nworkers;
    stt_worker_t **workers;
} stt_server_t;

extern stt_server_t *stt__server; /* the one server of the process */

/* ------------------------------------------------------------------ requests */

enum {
    STT_M_GET = 1 << 0,
    STT_M_HEAD = 1 << 1,
    STT_M_PUT = 1 << 2,
    STT_M_POST = 1 << 3,
    STT_M_DELETE = 1 << 4,
    STT_M_COPY = 1 << 5,
    STT_M_OPTIONS = 1 << 6,
    STT_M_OTHER = 1 << 7,
};

typedef struct {
    const char *key;
    size_t keylen;
    const char *val; /* percent-decoded, NUL-terminated */
    size_t vallen;
} stt_qparam_t;

/* db, _design, name, attachment: more segments only extend an attachment name,
 * which the last slot takes whole (each waiting client holds one of these) */
#define STT_MAX_SEGS 8

typedef struct stt_hreq {
    h2o_req_t *req;
    stt_worker_t *w;
    int method;
    /* path segments, percent-decoded (a %2F inside a segment stays a '/') */
    h2o_iovec_t seg[STT_MAX_SEGS];
    size_t nseg;
    stt_qparam_t *q;
    size_t nq;
    stt_arena_t arena; /* request-lifetime memory, freed with the request */
    char reqid[11];
    stt_db_t *db; /* opened for db-level routes; released with the request */
    /* what the route resolved */
    h2o_iovec_t dbname, docid, attname;
    bool responded;
    struct stt_wjob *inflight;     /* a write queued on the writer thread */
    stt_user_ctx_t user;           /* who sent it (anonymous: name NULL) */
    const char *set_cookie;        /* a Set-Cookie line every reply carries (cookie refresh) */
    const stt_json_t *sec;         /* the db's _security, parsed on first use */
    struct stt_authwait *authwait; /* a password check running in the auth pool */
    bool body_decoded;             /* req->entity holds the body inflated by stt_body_decoded */
    struct stt_access *acc;        /* the user's view of an access db (stt__access), NULL: all */
    bool acc_done;
} stt_hreq_t;

/* ------------------------------------------------------------------ replies */

/* A JSON reply; takes the buffer's bytes (b is left empty). Adds content-type,
 * cache-control: must-revalidate and the request id. */
void stt_reply_json(stt_hreq_t *r, int status, stt_buf_t *b);
/* Same with extra headers given as name/value pairs (NULL-terminated list). */
/* The headers of a JSON reply: cache-control, then the given name/value pairs (at most 6
 * pairs), NULL-terminated in hs. */
void stt_reply_json_headers(const char *const *headers, const char *hs[16]);
void stt_reply_json_h(stt_hreq_t *r, int status, stt_buf_t *b, const char *const *headers);
void stt_reply_ok(stt_hreq_t *r, int status); /* {"ok":true} */
/* An error reply from a code; reason NULL takes the table's. */
void stt_reply_error(stt_hreq_t *r, int code, const char *reason);
/* An error with explicit status and error name. */
void stt_reply_error_raw(stt_hreq_t *r, int status, const char *error, const char *reason);
/* A reply with any content type and bytes (the bytes are copied when copy is set,
 * otherwise the malloc'd base is taken over and freed with the request). */
void stt_reply_bytes(stt_hreq_t *r, int status, const char *ctype, char *data, size_t len, bool take,
                     const char *const *headers);
void stt_reply_add_header(stt_hreq_t *r, const char *name, const char *value, size_t len);
/* 405 with CouchDB's "Only ... allowed" reason and the Allow header (routes.c). */
void stt_reply_method_not_allowed(stt_hreq_t *r, const char *allow);
/* The absolute URL of a path (for Location headers). */
void stt_reply_location(stt_hreq_t *r, stt_buf_t *out, const char *path, size_t len);
/* Percent-encodes a doc id or db name for a URL path ('/' becomes %2F). */
void stt_url_encode(stt_buf_t *out, const char *s, size_t len);

/* Streams: a reply produced in chunks. produce() appends the next chunk to out and
 * returns 1 when more follows, 0 when it was the last, -1 to abort. A stream may
 * also pause (return 2 with nothing appended) and resume later by calling
 * stt_stream_resume from the same thread. stop() is called once at the end, when
 * finished or when the client went away. */
typedef struct stt_stream stt_stream_t;
typedef struct {
    int (*produce)(stt_stream_t *s, stt_buf_t *out);
    void (*stop)(stt_stream_t *s);
} stt_stream_ops_t;
struct stt_stream {
    h2o_generator_t gen; /* first: h2o gives it back to us */
    stt_hreq_t *r;
    const stt_stream_ops_t *ops;
    void *ctx;
    stt_buf_t buf;
    stt_buf_t inflight;   /* bytes handed to h2o, kept until the next proceed */
    bool waiting_proceed; /* h2o owns a chunk, do not send */
    bool paused;
    bool done;
    bool stopped;
};
stt_stream_t *stt_stream_start(stt_hreq_t *r, int status, const char *ctype, const stt_stream_ops_t *ops, void *ctx,
                               const char *const *headers);
void stt_stream_resume(stt_stream_t *s);
/* An HTTP/1 request without a body whose reply waits gives back its socket's read
 * buffer, keeping only its own bytes (inbuf.c). Called when a stream pauses; a no-op
 * once done, for HTTP/2 and for requests with a body. */
void stt__req_shrink_input(stt_hreq_t *r);

/* ------------------------------------------------------------------ request helpers */

const stt_qparam_t *stt_q_get(stt_hreq_t *r, const char *key);
/* Boolean query param: *out untouched when absent. 0, or replies 400
 * query_parse_error and returns -1. */
int stt_q_bool(stt_hreq_t *r, const char *key, bool *out);
/* A doc-level flag: true only for the exact value "true"; anything else is
 * ignored, as CouchDB's parse_doc_query does. */
bool stt_q_flag(stt_hreq_t *r, const char *key);
/* Non-negative integer param. 0, or replies 400 and returns -1. */
int stt_q_uint(stt_hreq_t *r, const char *key, uint64_t *out);
/* JSON-valued param (keys, startkey, open_revs...). *out NULL when absent; -1
 * after replying 400. */
int stt_q_json(stt_hreq_t *r, const char *key, const stt_json_t **out);
/* A request header value or NULL. */
const h2o_iovec_t *stt_header(stt_hreq_t *r, const char *name);
/* The request body as a JSON reader sees it: decoded per Content-Encoding as CouchDB's
 * maybe_decompress does ("gzip" inflated, "identity" as is, anything else 415). *out is
 * the raw entity or arena memory (which then replaces req->entity); on failure replies (400 not properly gzipped, 413,
 * 415) and returns -1. Attachment and multipart bodies do not go through this. */
int stt_body_decoded(stt_hreq_t *r, h2o_iovec_t *out);
/* Parses the request body (decoded as above) as JSON. On failure replies (400 / 415 /
 * 413) and returns -1. require_object: a non-object body is 400 with reason. */
int stt_body_json(stt_hreq_t *r, stt_json_t *out, const char *not_object_reason);
bool stt_accepts(stt_hreq_t *r, const char *ctype);
/* CouchDB's validate_ctype for JSON request bodies: true when the Content-Type is
 * application/json (with or without parameters), else replies 415 and returns
 * false. */
bool stt_require_json(stt_hreq_t *r);

struct stt_render_opts;
/* ------------------------------------------------------------------ handlers */

typedef void (*stt_handler_fn)(stt_hreq_t *r);

/* Server level */
void stt_h_root(stt_hreq_t *r);
void stt_h_up(stt_hreq_t *r);
void stt_h_uuids(stt_hreq_t *r);
void stt_h_all_dbs(stt_hreq_t *r);
void stt_h_dbs_info(stt_hreq_t *r);
void stt_h_session(stt_hreq_t *r);
void stt_h_active_tasks(stt_hreq_t *r);
void stt_h_replicate(stt_hreq_t *r);
void stt_h_scheduler(stt_hreq_t *r);
/* Db level */
void stt_h_db(stt_hreq_t *r);
void stt_h_revs_limit(stt_hreq_t *r);
void stt_h_security(stt_hreq_t *r);
void stt_h_compact(stt_hreq_t *r);
void stt_h_ensure_full_commit(stt_hreq_t *r);
void stt_h_bulk_docs(stt_hreq_t *r);
void stt_h_all_docs(stt_hreq_t *r);
void stt_h_design_docs(stt_hreq_t *r);
void stt_h_local_docs(stt_hreq_t *r);
void stt_h_purge(stt_hreq_t *r);
void stt_h_changes(stt_hreq_t *r);
void stt_h_revs_diff(stt_hreq_t *r);
void stt_h_bulk_get(stt_hreq_t *r);
void stt_h_find(stt_hreq_t *r);    /* h_find.c: POST _find */
void stt_h_explain(stt_hreq_t *r); /* POST _explain */
void stt_h_index(stt_hreq_t *r);   /* _index, _index/{ddoc}/json/{name}, _index/_bulk_delete */
/* Views (h_view*.c): GET/POST _design/{ddoc}/_view/{view}[/queries],
 * _design/{ddoc}/_info, _view_cleanup, _compact/{ddoc}, _temp_view,
 * _active_tasks. */
void stt_h_view(stt_hreq_t *r);
void stt_h_view_info(stt_hreq_t *r);
void stt_h_view_cleanup(stt_hreq_t *r);
void stt_h_view_compact(stt_hreq_t *r);
void stt_h_temp_view(stt_hreq_t *r);
void stt_h_view_active_tasks(stt_hreq_t *r);

/* A unit of view work run off the loops (h_view_pool.c): run() on a pool
 * thread fills status/body (or whatever done() reads); then, on the request's
 * loop and only if the request is still there, done() (or a JSON reply of
 * body) runs. The job owns its arena, its db reference and body. */
typedef struct stt_vjob stt_vjob_t;
struct stt_vjob {
    h2o_multithread_message_t msg;
    stt_hreq_t *r; /* NULL once the request went away */
    void *guard;
    size_t worker;
    void (*run)(stt_vjob_t *j);
    void (*done)(stt_hreq_t *r, stt_vjob_t *j);
    stt_arena_t arena;
    stt_db_t *db;
    void *ctx;
    void (*ctx_free)(stt_vjob_t *j); /* frees ctx when it is still set at the end */
    int status;
    stt_buf_t body;
    stt_vjob_t *next;
};
/* Queues j for r. -1 (j freed) when the queue is full: answer 503. */
int stt_vjob_submit(stt_hreq_t *r, stt_vjob_t *j);
/* Runs j with nobody waiting (update=lazy). */
void stt_vjob_background(stt_vjob_t *j);
void stt_vjob_free(stt_vjob_t *j);
struct stt_qs_pool;
/* The query-server pool of views, made on first use. */
struct stt_qs_pool *stt__views_qs(void);

/* Doc level */
void stt_h_doc(stt_hreq_t *r);
void stt_h_local(stt_hreq_t *r);
void stt_h_attachment(stt_hreq_t *r);
/* _design/{ddoc}/_update/... and the unsupported _show, _list, _rewrite (h_update.c) */
void stt_h_design_func(stt_hreq_t *r);

/* /_node/{node}/_config[/{section}[/{key}]] and /_node/{node}/_restart (h_config.c).
 * {node} is "_local" or STT_NODE_NAME. */
void stt_h_node(stt_hreq_t *r);
#define STT_NODE_NAME "settee@127.0.0.1"

/* Metrics (h_stats.c): _stats, _system and _prometheus under /_node/{node}/, given
 * the non-empty path parts; false when the path is none of them. */
bool stt__node_metrics(stt_hreq_t *r, const char *const *parts, size_t n);
/* A request that came in on the [prometheus] additional_port listener. */
void stt__prometheus_port_req(stt_hreq_t *r);
/* Counts a reply in the httpd stats (reply.c's send_head calls it). */
void stt__stats_reply(stt_hreq_t *r, int status);
void stt_h_membership(stt_hreq_t *r);
/* HTTP/2 request-rate limit per connection (h2guard.c): false after answering 429
 * and shutting the connection's socket. One guard per worker. */
typedef struct stt_h2guard stt_h2guard_t;
stt_h2guard_t *stt_h2guard_new(uint64_t rate); /* requests per second; 0 = no limit */
void stt_h2guard_free(stt_h2guard_t *g);
/* 1 admitted, 0 refused (first time: shut the connection), -1 refused again;
 * *first (may be NULL) tells a connection's first request. */
int stt_h2guard_admit(stt_h2guard_t *g, uint64_t conn_id, uint64_t now_ms, bool *first);
void stt_h2guard_shut(stt_h2guard_t *g, uint64_t conn_id); /* refuse its next ones */
/* Whether a just-accepted socket comes from an address penalized for flooding. */
bool stt_h2guard_refuse_socket(int fd);
stt_h2guard_t *stt_worker_h2guard(stt_worker_t *w);
/* Turns h2o's own plain-text error answers on path into CouchDB's JSON (errjson.c). */
void stt_errjson_register(h2o_pathconf_t *path);
bool stt__h2_admit(stt_hreq_t *r);

/* Ambiguous body framing (CL with TE, several CLs, TE other than one "chunked"):
 * false after answering 400 and marking the connection to close (framing.c). */
bool stt__framing_ok(stt_hreq_t *r);

/* GET /{db}/_export (h_export.c): the db as JSON lines for _bulk_docs new_edits:false. */
void stt_h_export(stt_hreq_t *r);

/* GET /_node/{node}/_backup (h_backup.c), routed by h_config.c's stt_h_node. */
void stt_h_backup(stt_hreq_t *r);

/* GET /_utils[/path]: the web UI's files from cfg->utils_dir (h_utils.c); its pure
 * parts, for the unit tests: the content type of a file name, and the relative path
 * of a raw request path below "/_utils/" (-1 for one that would leave the folder). */
void stt_h_utils(stt_hreq_t *r);
const char *stt__utils_ctype(const char *path);
int stt__utils_relpath(const char *raw, size_t len, char *out, size_t outlen);
/* GET /_db_updates (h_db_updates.c); its wakeups from the store's commit hook, and
 * the end of its waiting feeds at shutdown. */
void stt_h_db_updates(stt_hreq_t *r);
void stt_db_updates_notify(stt_db_t *db);
void stt_db_updates_shutdown(stt_worker_t *w);

/* Authorization helpers (auth glue, h_auth.c). Each replies with CouchDB's error and
 * returns false when the request may not go on. */
bool stt_require_server_admin(stt_hreq_t *r); /* 401 "You are not a server admin." */
/* What POST /_node/_local/_restart does in settee: re-reads the settings CouchDB
 * reads only at start-up ([chttpd] authentication_handlers), without exiting. */
void stt_auth_restart(void);

/* Authentication of a request (h_auth.c): fills r->user and returns 1, or replies
 * and returns 0, or returns 2 when a password check went to the auth pool (the
 * request then goes on in stt__route_authenticated). Also applies [chttpd]
 * require_valid_user. */
int stt__authenticate(stt_hreq_t *r);
/* The routing that follows authentication (routes.c). */
void stt__route_authenticated(stt_hreq_t *r);
/* r->db's _security (parsed once per request). */
const stt_json_t *stt__db_security(stt_hreq_t *r);
/* Member of r->db: else 401/403 "You are not ... access this db." */
bool stt__require_member(stt_hreq_t *r);
/* Admin of r->db (CouchDB's check_is_admin): else 401/403 "You are not a db or
 * server admin.". */
bool stt__require_db_admin(stt_hreq_t *r);
/* The user's view of r->db when it is an access database and they do not
 * administer it (access/access.h), else NULL. Computed once per request. */
struct stt_access *stt__access(stt_hreq_t *r);
/* stt_doc_select as r's user sees the doc (stt_access_select in an access db). */
int stt__doc_select(stt_hreq_t *r, const stt_doc_t *d, const stt_rev_t *rev, int *node);
/* Routes of an access database a non-admin may not use (design docs, their _info
 * and functions: 404, their views being filtered instead; _export, _temp_view,
 * _index, _view_cleanup: 403). Replies and returns false. */
bool stt__access_route_ok(stt_hreq_t *r);
/* Refusals of doc writes made before the store sees them (design docs by
 * non-admins, the _users rules): sets res[i].err/.reason for a refused doc and
 * may replace docs[i].body (the _users password hash). Returns how many were
 * refused. */
size_t stt__authorize_writes(stt_hreq_t *r, stt_doc_write_t *docs, size_t n, stt_doc_result_t *res);
/* After a committed write: per-user databases for _users changes. */
void stt__after_writes(stt_db_t *db, const stt_doc_write_t *docs, size_t n, const stt_doc_result_t *res);
/* Creates _users and _replicator when missing, and the per-user databases of
 * existing users when [couch_peruser] is on (start-up). */
void stt__system_dbs_init(void);

/* The request target (server.c; pure, also run by fuzz/fuzz_query.c): every '%' starts two
 * hex digits (else 400 invalid_url_encoding), then path segments and query parameters are
 * split and percent-decoded into r->seg / r->q from r->arena. query_at: offset of the '?',
 * or SIZE_MAX. */
bool stt__escapes_valid(const char *s, size_t len);
void stt__parse_target(stt_hreq_t *r, const char *path, size_t len, size_t query_at);
/* Design functions' view of a request (design_req.c): CouchDB's userCtx
 * {"db","name","roles"} and its req object (docid NULL: "id":null). */
void stt__user_ctx_json(stt_hreq_t *r, stt_buf_t *out);
void stt__design_req(stt_hreq_t *r, const char *docid, size_t idlen, stt_buf_t *out);

/* The route dispatcher (routes.c). */
void stt_route(stt_hreq_t *r);

/* Seqs as CouchDB 3 shows them: strings "N-..."; since accepts those, plain
 * numbers and "now". */
void stt_seq_format(stt_buf_t *b, uint64_t seq);
/* 0, or -1 when malformed. now_seq substitutes "now". */
int stt_seq_parse(const char *s, size_t len, uint64_t now_seq, uint64_t *out);

/* Changes-feed wakeups (h_changes.c): called by the store's commit hook. */
void stt_changes_notify(void *ctx, stt_db_t *db, uint64_t seq);
/* Ends every waiting feed of the worker with its closing line (shutdown). */
void stt_changes_shutdown(stt_worker_t *w);
/* Per worker setup of the feed machinery. */
void stt_changes_worker_init(stt_worker_t *w, h2o_loop_t *loop);

/* Worker accessors (server.c). */
h2o_loop_t *stt_worker_loop(stt_worker_t *w);
size_t stt_worker_index(stt_worker_t *w);
void *stt_worker_feeds(stt_worker_t *w);
void stt_worker_set_feeds(stt_worker_t *w, void *feeds);

#endif
