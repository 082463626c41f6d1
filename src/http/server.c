/* h2o setup, worker threads, listeners and graceful shutdown.
 *
 * Each worker owns an h2o evloop, a context and its own listening socket on the
 * shared address (SO_REUSEPORT lets the kernel spread connections). Handlers run
 * to completion on the worker that accepted the connection. Signals are taken by
 * the main thread (sigwait); it asks each worker, through an h2o multithread
 * message, to close its listeners and to shut its connections down gracefully,
 * then waits for them to drain within the configured bound. */
#include "src/http/server.h"
#include "src/http/http.h"
#include "access/access.h"
#include "src/http/writer.h"
#include "src/http/authpool.h"
#include "replication/global_changes.h"
#include "replication/replicator.h"
#include "src/common/err.h"
#include "src/http/offload.h"
#include "qserver/qserver.h"
#include "index/index.h"
#include "src/common/log.h"
#include "src/common/sdnotify.h"
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

stt_server_t *stt__server;

/* Request header fields, names and values together, larger than this are refused before
 * any handler runs (h2o alone would take about 400 KB). A plain number: the reason spells
 * it out. */
#define STT_MAX_HEADER_BYTES 32768
#define STT_STR_(x) #x
#define STT_STR(x) STT_STR_(x)

struct stt_worker {
    size_t index;
    pthread_t tid;
    h2o_evloop_t *loop;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_plain, accept_tls, accept_metrics;
    h2o_socket_t *listeners[3];
    int listen_fds[3]; /* plain, TLS, [prometheus] additional_port (worker 0 only) */
    h2o_multithread_receiver_t ctl;
    atomic_int phase; /* 0 running, 1 draining, 2 stop */
    atomic_int drained;
    size_t inflight; /* requests not yet disposed: the drain waits for these, not for
                      * idle keep-alive connections */
    void *feeds;
    SSL_CTX *ssl;
    /* out of file descriptors: listeners rest a while instead of spinning on a
     * readable socket that accept() cannot take */
    h2o_timeout_t fd_rest;
    h2o_timeout_entry_t fd_resume;
    /* the heap given back after a burst of requests ended (see trim_heap) */
    size_t inflight_peak;
    int trims_due;
    h2o_timeout_t trim_every;
    h2o_timeout_entry_t trim;
    stt_h2guard_t *h2guard;
};

stt_h2guard_t *stt_worker_h2guard(stt_worker_t *w)
{
    return w->h2guard;
}

typedef struct {
    h2o_multithread_message_t super;
    int phase;
} ctl_msg_t;

h2o_loop_t *stt_worker_loop(stt_worker_t *w)
{
    return w->loop;
}
size_t stt_worker_index(stt_worker_t *w)
{
    return w->index;
}
void *stt_worker_feeds(stt_worker_t *w)
{
    return w->feeds;
}
void stt_worker_set_feeds(stt_worker_t *w, void *feeds)
{
    w->feeds = feeds;
}

/* ------------------------------------------------------------------ requests */

static int method_of(h2o_iovec_t m)
{
#define M(s, v)                                                                                                        \
    if (m.len == sizeof(s) - 1 && memcmp(m.base, s, m.len) == 0) return v;
    M("GET", STT_M_GET)
    M("PUT", STT_M_PUT)
    M("POST", STT_M_POST)
    M("HEAD", STT_M_HEAD)
    M("DELETE", STT_M_DELETE)
    M("COPY", STT_M_COPY)
    M("OPTIONS", STT_M_OPTIONS)
#undef M
    return STT_M_OTHER;
}

static void on_dispose(void *p)
{
    stt_hreq_t *r = *(stt_hreq_t **)p;
    r->w->inflight--;
    if (r->inflight) stt_writer_orphan(r);
    if (r->authwait) stt_authpool_orphan(r);
    stt_arena_free(&r->arena);
    if (r->db) stt_db_release(r->db);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decodes into the arena. plus_space: '+' means ' ' (query strings). */
static char *pct_decode(stt_arena_t *a, const char *s, size_t len, bool plus_space, size_t *outlen)
{
    char *o = stt_arena_alloc(a, len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int h, l;
        if (s[i] == '%' && i + 2 < len && (h = hexval(s[i + 1])) >= 0 && (l = hexval(s[i + 2])) >= 0) {
            o[n++] = (char)(h << 4 | l);
            i += 2;
        } else if (plus_space && s[i] == '+') {
            o[n++] = ' ';
        } else {
            o[n++] = s[i];
        }
    }
    o[n] = '\0';
    *outlen = n;
    return o;
}

/* Every '%' of the request target starts an escape of two hex digits; CouchDB (mochiweb's
 * unquote) refuses anything else with 400 invalid_url_encoding. */
bool stt__escapes_valid(const char *s, size_t len)
{
    for (const char *p = memchr(s, '%', len), *end = s + len; p; p = memchr(p, '%', (size_t)(end - p))) {
        if (end - p < 3 || hexval(p[1]) < 0 || hexval(p[2]) < 0) return false;
        p += 3;
        if (p >= end) break;
    }
    return true;
}

/* The request's header fields, name and value, in bytes (what a client can inflate
 * with one huge cookie or many fields). */
static size_t header_bytes(const h2o_req_t *req)
{
    size_t n = 0;
    for (size_t i = 0; i < req->headers.size; i++)
        n += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 4;
    return n;
}

void stt__parse_target(stt_hreq_t *r, const char *p, size_t len, size_t query_at)
{
    size_t plen = query_at != SIZE_MAX ? query_at : len;
    /* path segments, split on raw '/' so that %2F stays inside a segment */
    size_t i = 0;
    while (i < plen && p[i] == '/')
        i++;
    while (i < plen && r->nseg < STT_MAX_SEGS) {
        size_t j = i;
        /* the last slot takes the rest of the path: only an attachment name goes
         * that deep, and the router joins its segments with '/' anyway */
        while (j < plen && (p[j] != '/' || r->nseg == STT_MAX_SEGS - 1))
            j++;
        size_t n;
        char *d = pct_decode(&r->arena, p + i, j - i, false, &n);
        r->seg[r->nseg++] = h2o_iovec_init(d, n);
        i = j + 1;
        if (j == plen) break;
        if (i == plen) { /* trailing slash: an empty last segment, e.g. "/db/" */
            break;
        }
    }
    if (query_at == SIZE_MAX) return;
    const char *q = p + query_at + 1, *qend = p + len;
    size_t cap = 8;
    r->q = stt_arena_alloc(&r->arena, cap * sizeof(*r->q));
    while (q < qend) {
        const char *amp = memchr(q, '&', (size_t)(qend - q));
        if (!amp) amp = qend;
        const char *eq = memchr(q, '=', (size_t)(amp - q));
        if (amp > q) {
            if (r->nq == cap) {
                stt_qparam_t *nq = stt_arena_alloc(&r->arena, cap * 2 * sizeof(*nq));
                memcpy(nq, r->q, cap * sizeof(*nq));
                r->q = nq;
                cap *= 2;
            }
            stt_qparam_t *qp = &r->q[r->nq++];
            const char *kend = eq ? eq : amp;
            qp->key = pct_decode(&r->arena, q, (size_t)(kend - q), true, &qp->keylen);
            if (eq)
                qp->val = pct_decode(&r->arena, eq + 1, (size_t)(amp - eq - 1), true, &qp->vallen);
            else
                qp->val = "", qp->vallen = 0;
        }
        q = amp + 1;
    }
}

static uint64_t rng_next(void)
{
    static __thread uint64_t s;
    if (!s) {
        s = (uint64_t)time(NULL) ^ ((uint64_t)(uintptr_t)&s << 16) ^ (uint64_t)clock();
        s |= 1;
    }
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
}

/* h2o 2.2.5 (lib/common/memory.c): a pool chunk holds 4080 bytes, and requests of a
 * quarter of that or more get a malloc of their own. */
#define POOL_CHUNK_BYTES 4080
#define ARENA_IN_POOL 1008 /* below POOL_CHUNK_BYTES / 4 */
#define POOL_KEEP 1024     /* left for h2o's reply headers */

static size_t pool_room(const h2o_mem_pool_t *pool)
{
    return pool->chunks && pool->chunk_offset < POOL_CHUNK_BYTES ? POOL_CHUNK_BYTES - pool->chunk_offset : 0;
}

static stt_hreq_t *begin_req(h2o_req_t *req)
{
    stt_worker_t *w = (stt_worker_t *)((char *)req->conn->ctx - offsetof(stt_worker_t, ctx));
    /* The request and the first KB of its arena live in h2o's request pool, whose
     * first chunk (4 KB) h2o allocates anyway and fills only in part: a request
     * costs no mallocs of its own until its arena outgrows that, and a client
     * whose feed waits holds nothing beyond h2o's connection (BENCHMARKS.md,
     * "Idle longpoll clients"). The shared entry only runs on_dispose; h2o runs
     * those before it frees the pool's chunks. */
    stt_hreq_t *r = h2o_mem_alloc_pool(&req->pool, sizeof(*r));
    memset(r, 0, sizeof(*r));
    *(stt_hreq_t **)h2o_mem_alloc_shared(&req->pool, sizeof(r), on_dispose) = r;
    r->method = method_of(req->input.method);
    /* Only reads: a write's arena may be handed to the writer thread when its client
     * goes away (stt_writer_orphan), and h2o frees the pool right after dispose. */
    if ((r->method == STT_M_GET || r->method == STT_M_HEAD) && pool_room(&req->pool) >= ARENA_IN_POOL + POOL_KEEP)
        stt_arena_init_block(&r->arena, h2o_mem_alloc_pool(&req->pool, ARENA_IN_POOL), ARENA_IN_POOL);
    r->req = req;
    r->w = w;
    if (++w->inflight > w->inflight_peak) w->inflight_peak = w->inflight;
    uint64_t id = rng_next();
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 10; i++)
        r->reqid[i] = hex[(id >> (4 * i)) & 15];
    r->reqid[10] = '\0';
    if (header_bytes(req) > STT_MAX_HEADER_BYTES) {
        /* CouchDB closes with a bare 400; a JSON 431 says which limit it was */
        stt_reply_error_raw(r, 431, "header_fields_too_large",
                            "The request header fields are larger than " STT_STR(STT_MAX_HEADER_BYTES) " bytes.");
        return 0;
    }
    if (!stt__escapes_valid(req->input.path.base, req->input.path.len)) {
        stt_reply_error(r, STT_E_URL_ENCODING, NULL);
        return 0;
    }
    stt__parse_target(r, req->input.path.base, req->input.path.len, req->input.query_at);
    return r;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    stt_hreq_t *r = begin_req(req);
    if (r && stt__h2_admit(r) && stt__framing_ok(r)) stt_route(r);
    return 0;
}

/* The [prometheus] additional_port listener's requests (no authentication). */
static h2o_globalconf_t metrics_conf;

static int on_metrics_req(h2o_handler_t *self, h2o_req_t *req)
{
    stt_hreq_t *r = begin_req(req);
    if (r && stt__framing_ok(r)) stt__prometheus_port_req(r);
    return 0;
}

/* Commits wake _changes feeds, then feed _db_updates: its recorder, and its
 * waiting feeds when the commit was to _global_changes. */
static void on_commit(void *ctx, stt_db_t *db, uint64_t seq)
{
    stt_changes_notify(ctx, db, seq);
    stt_access_notify(db);
    stt_index_bg_notify(db);
    stt_global_changes_updated(db);
    stt_db_updates_notify(db);
    stt_rep_notify(db, seq);
}

/* ------------------------------------------------------------------ listeners */

static void on_accept(h2o_socket_t *listener, const char *err);

static void on_fd_resume(h2o_timeout_entry_t *e)
{
    stt_worker_t *w = (stt_worker_t *)((char *)e - offsetof(stt_worker_t, fd_resume));
    if (atomic_load(&w->phase) != 0) return;
    for (int i = 0; i < 3; i++)
        if (w->listeners[i]) h2o_socket_read_start(w->listeners[i], on_accept);
}

/* The fd table is full: served connections go on, new ones wait in the kernel's
 * backlog until descriptors are free again (checked every 100 ms). */
static void rest_listeners(h2o_accept_ctx_t *actx)
{
    stt_worker_t *w = (stt_worker_t *)((char *)actx->ctx - offsetof(stt_worker_t, ctx));
    if (h2o_timeout_is_linked(&w->fd_resume)) return;
    for (int i = 0; i < 3; i++)
        if (w->listeners[i]) h2o_socket_read_stop(w->listeners[i]);
    static _Atomic long last_logged;
    long now = (long)time(NULL);
    if (now - atomic_exchange(&last_logged, now) >= 60)
        stt_log(STT_LOG_LEVEL_WARNING, "out of file descriptors (%s): new connections wait", strerror(errno));
    h2o_timeout_link(w->loop, &w->fd_rest, &w->fd_resume);
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    if (err) return;
    h2o_accept_ctx_t *actx = listener->data;
    for (int i = 0; i < 64; i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (!sock) {
            if (errno == EMFILE || errno == ENFILE) rest_listeners(actx);
            break;
        }
        int fd = h2o_socket_get_fd(sock);
        if (stt_h2guard_refuse_socket(fd)) { /* it flooded us a moment ago */
            h2o_socket_close(sock);
            continue;
        }
        int one = 1;
        /* CouchDB's replicator runs with Nagle on: ACK its request bodies at once
         * instead of making it wait for our delayed ACK (PROTOCOL.md) */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
        h2o_accept(actx, sock);
    }
}

static int open_listener(const char *bind_addr, int port, char *err, size_t errlen)
{
    struct sockaddr_in6 a6;
    struct sockaddr_in a4;
    struct sockaddr *sa;
    socklen_t salen;
    int family;
    memset(&a4, 0, sizeof(a4));
    memset(&a6, 0, sizeof(a6));
    if (inet_pton(AF_INET, bind_addr, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)port);
        sa = (struct sockaddr *)&a4;
        salen = sizeof(a4);
        family = AF_INET;
    } else if (inet_pton(AF_INET6, bind_addr, &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)port);
        sa = (struct sockaddr *)&a6;
        salen = sizeof(a6);
        family = AF_INET6;
    } else {
        snprintf(err, errlen, "invalid bind address '%s'", bind_addr);
        return -1;
    }
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (bind(fd, sa, salen) != 0 || listen(fd, 1024) != 0) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", bind_addr, port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* ------------------------------------------------------------------ workers */

/* glibc keeps freed heap for reuse: after 10,000 waiting clients were answered and
 * left, RSS stayed at 74 MB where malloc_trim brings it back to 16.5 MB
 * (BENCHMARKS.md, "Idle longpoll clients"). Each worker looks every 10 s whether
 * at least TRIM_AFTER of its requests ended since its high-water mark; a steady
 * load never gets there, so never pays for a trim. It trims then and once more
 * at the next look: the answered clients' connections close after their requests. */
#define TRIM_AFTER 1000
#define TRIM_CHECK_MS 10000

static void trim_heap(h2o_timeout_entry_t *e)
{
    stt_worker_t *w = (stt_worker_t *)((char *)e - offsetof(stt_worker_t, trim));
    if (w->inflight_peak - w->inflight >= TRIM_AFTER) {
        w->trims_due = 2;
        w->inflight_peak = w->inflight;
    }
    if (w->trims_due > 0) {
        w->trims_due--;
        malloc_trim(0);
    }
    h2o_timeout_link(w->loop, &w->trim_every, &w->trim);
}

static void close_listeners(stt_worker_t *w)
{
    if (h2o_timeout_is_linked(&w->fd_resume)) h2o_timeout_unlink(&w->fd_resume);
    if (h2o_timeout_is_linked(&w->trim)) h2o_timeout_unlink(&w->trim);
    for (int i = 0; i < 3; i++) {
        if (w->listeners[i]) {
            h2o_socket_read_stop(w->listeners[i]);
            h2o_socket_close(w->listeners[i]);
            w->listeners[i] = NULL;
        }
    }
}

static void on_ctl(h2o_multithread_receiver_t *recv, h2o_linklist_t *messages)
{
    stt_worker_t *w = (stt_worker_t *)((char *)recv - offsetof(stt_worker_t, ctl));
    while (!h2o_linklist_is_empty(messages)) {
        ctl_msg_t *m = H2O_STRUCT_FROM_MEMBER(ctl_msg_t, super.link, messages->next);
        h2o_linklist_unlink(&m->super.link);
        if (m->phase == 1) {
            close_listeners(w);
            stt_changes_shutdown(w); /* waiting feeds end now with their last_seq */
            stt_db_updates_shutdown(w);
            h2o_context_request_shutdown(&w->ctx);
        }
        free(m);
    }
}

static pthread_barrier_t srv_ready;

/* h2o 2.2.5 keeps its socket buffer allocator in thread-local storage: a loop's
 * context, queues and sockets must be created on the thread that runs the loop,
 * or two threads end up sharing one allocator. */
static void worker_setup(stt_worker_t *w)
{
    w->loop = h2o_evloop_create();
    h2o_context_init(&w->ctx, w->loop, &stt__server->h2o);
    w->accept_plain.ctx = &w->ctx;
    w->accept_plain.hosts = stt__server->h2o.hosts;
    w->accept_tls = w->accept_plain;
    w->accept_tls.ssl_ctx = w->ssl;
    /* same loop and context, but its own host list: every request on it goes to
     * on_metrics_req, whatever its path */
    w->accept_metrics = w->accept_plain;
    w->accept_metrics.hosts = metrics_conf.hosts;
    h2o_multithread_register_receiver(w->ctx.queue, &w->ctl, on_ctl);
    stt_changes_worker_init(w, w->loop);
    stt_writer_worker_init(w->index, w->loop);
    stt_authpool_worker_init(w->index, w->loop);
    h2o_timeout_init(w->loop, &w->fd_rest, 100);
    w->h2guard = stt_h2guard_new(stt__server->cfg->http2_max_request_rate);
    w->fd_resume.cb = on_fd_resume;
    h2o_timeout_init(w->loop, &w->trim_every, TRIM_CHECK_MS);
    w->trim.cb = trim_heap;
    h2o_timeout_link(w->loop, &w->trim_every, &w->trim);
    stt_offload_worker_init(w->index, w->loop);
    for (int i = 0; i < 3; i++) {
        if (w->listen_fds[i] < 0) continue;
        w->listeners[i] = h2o_evloop_socket_create(w->loop, w->listen_fds[i], H2O_SOCKET_FLAG_DONT_READ);
        w->listeners[i]->data = i == 0 ? &w->accept_plain : i == 1 ? &w->accept_tls : &w->accept_metrics;
        h2o_socket_read_start(w->listeners[i], on_accept);
    }
}

static void *worker_main(void *arg)
{
    stt_worker_t *w = arg;
    worker_setup(w);
    pthread_barrier_wait(&srv_ready);
    while (atomic_load(&w->phase) < 2) {
        h2o_evloop_run(w->loop, 200);
        if (atomic_load(&w->phase) == 1 && w->inflight == 0) atomic_store(&w->drained, 1);
    }
    close_listeners(w);
    stt_h2guard_free(w->h2guard);
    w->h2guard = NULL;
    return NULL;
}

static SSL_CTX *make_ssl_ctx(const stt_config_t *cfg)
{
    SSL_CTX *ssl = SSL_CTX_new(TLS_server_method());
    if (!ssl) return NULL;
    SSL_CTX_set_options(ssl, SSL_OP_NO_SSLv2 | SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1);
    if (SSL_CTX_use_certificate_chain_file(ssl, cfg->cert_file) != 1 ||
        SSL_CTX_use_PrivateKey_file(ssl, cfg->key_file, SSL_FILETYPE_PEM) != 1) {
        fprintf(stderr, "settee: cannot load TLS certificate %s / key %s\n", cfg->cert_file, cfg->key_file);
        ERR_print_errors_fp(stderr);
        SSL_CTX_free(ssl);
        return NULL;
    }
    h2o_ssl_register_alpn_protocols(ssl, h2o_http2_alpn_protocols);
    return ssl;
}

int stt_server_run(const stt_config_t *cfg, stt_store_t *store, stt_ini_t *ini, stt_auth_t *auth, const char *uuid)
{
    static stt_server_t srv;
    stt__server = &srv;
    srv.cfg = cfg;
    srv.store = store;
    srv.ini = ini;
    srv.auth = auth;
    snprintf(srv.uuid, sizeof(srv.uuid), "%s", uuid);
    snprintf(srv.instance_start_time, sizeof(srv.instance_start_time), "%lld", (long long)time(NULL));

    signal(SIGPIPE, SIG_IGN);
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* workers inherit the mask */

    h2o_config_init(&srv.h2o);
    srv.h2o.max_request_entity_size = cfg->max_http_request_size;
    /* A request body past this size is buffered by h2o in a temp file it maps
     * (h2o's default: 32 MiB) instead of in growing heap copies: a large attachment
     * upload then costs file pages the kernel can write back and drop. */
    h2o_socket_buffer_mmap_settings.threshold = 4u << 20;
    srv.h2o.server_name = h2o_iovec_init(H2O_STRLIT("settee"));
    /* h2c (upgrade and prior knowledge) only when asked for: HTTP/2 over TLS
     * stays on. h2o 2.2.5 has no defence against rapid reset (README). */
    srv.h2o.http1.upgrade_to_http2 = cfg->http2_cleartext;
    h2o_hostconf_t *host = h2o_config_register_host(&srv.h2o, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(path, sizeof(*handler));
    handler->on_req = on_req;
    /* h2o's own answers come through the path of the request, or the host's
     * fallback path when h2o answers before routing it */
    stt_errjson_register(path);
    stt_errjson_register(&host->fallback_path);

    /* [prometheus] additional_port: a second plain listener, on worker 0 */
    int metrics_port = 0;
    char *metrics_bind = NULL;
    if (stt_ini_get_bool(ini, "prometheus", "additional_port", false)) {
        metrics_port = (int)stt_ini_get_int(ini, "prometheus", "port", 17986);
        metrics_bind = stt_ini_get(ini, "prometheus", "bind_address");
        h2o_config_init(&metrics_conf);
        metrics_conf.server_name = srv.h2o.server_name;
        h2o_hostconf_t *mhost = h2o_config_register_host(&metrics_conf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
        h2o_handler_t *mh = h2o_create_handler(h2o_config_register_path(mhost, "/", 0), sizeof(*mh));
        mh->on_req = on_metrics_req;
    }

    SSL_CTX *ssl = NULL;
    if (cfg->cert_file[0] && cfg->key_file[0] && !(ssl = make_ssl_ctx(cfg))) return 1;

    size_t n = cfg->threads > 0 ? (size_t)cfg->threads : (size_t)sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    srv.nworkers = n;
    srv.workers = stt_xcalloc(n, sizeof(*srv.workers));
    stt_store_set_commit_hook(store, on_commit, &srv);
    stt_store_set_db_hook(store, stt_global_changes_db_event, NULL);
    stt_writer_init(n);
    stt_authpool_init(n);
    stt_offload_init(n);
    /* query servers as CouchDB configures them: ini, then COUCHDB_QUERY_SERVER_* */
    stt_qs_config_t qc;
    stt_qs_config_default(&qc, NULL);
    stt_qs_config_from_ini(&qc, ini);
    stt_qs_config_from_env(&qc);
    if (stt_qs_pool_new(&qc, &srv.qs) != 0) {
        stt_log(STT_LOG_WARNING, "query servers unavailable: design functions will fail");
        srv.qs = NULL;
    }
    stt_index_set_pool(srv.qs); /* views use the same pool */
    stt_index_bg_start(ini);
    char err[256];
    /* listening sockets are opened here so that a bind error stops the start;
     * everything h2o allocates per thread is made on the worker itself */
    for (size_t i = 0; i < n; i++) {
        stt_worker_t *w = stt_xcalloc(1, sizeof(*w));
        srv.workers[i] = w;
        w->index = i;
        w->ssl = ssl;
        w->listen_fds[0] = open_listener(cfg->bind, cfg->port, err, sizeof(err));
        w->listen_fds[1] = w->listen_fds[2] = -1;
        if (w->listen_fds[0] >= 0 && ssl) w->listen_fds[1] = open_listener(cfg->bind, cfg->tls_port, err, sizeof(err));
        if (i == 0 && metrics_port && w->listen_fds[0] >= 0 && (!ssl || w->listen_fds[1] >= 0)) {
            w->listen_fds[2] = open_listener(metrics_bind ? metrics_bind : "127.0.0.1", metrics_port, err, sizeof(err));
            if (w->listen_fds[2] < 0) {
                fprintf(stderr, "settee: [prometheus] additional_port: %s\n", err);
                free(metrics_bind);
                return 1;
            }
        }
        if (w->listen_fds[0] < 0 || (ssl && w->listen_fds[1] < 0)) {
            fprintf(stderr, "settee: %s\n", err);
            return 1;
        }
    }
    stt__system_dbs_init();
    stt_global_changes_start(store, ini);
    stt_writer_start();
    stt_authpool_start();
    stt_offload_start();
    if (stt_rep_start(store, ini, srv.uuid, srv.qs) != 0) stt_log(STT_LOG_WARNING, "the replicator could not start");
    stt_auth_set_deferred(auth, true);
    pthread_barrier_init(&srv_ready, NULL, (unsigned)n + 1);
    for (size_t i = 0; i < n; i++)
        pthread_create(&srv.workers[i]->tid, NULL, worker_main, srv.workers[i]);
    pthread_barrier_wait(&srv_ready);
    stt_log(STT_LOG_INFO, "settee listening on http://%s:%d/ (%zu threads)%s", cfg->bind, cfg->port, n,
            ssl ? " and https" : "");
    if (metrics_port)
        stt_log(STT_LOG_INFO, "prometheus metrics on http://%s:%d/_node/_local/_prometheus",
                metrics_bind ? metrics_bind : "127.0.0.1", metrics_port);
    free(metrics_bind);
    metrics_bind = NULL;
    stt_sd_notify("READY=1"); /* systemd Type=notify: ports are open, requests are served */

    int sig = 0;
    sigwait(&sigs, &sig);
    stt_log(STT_LOG_INFO, "signal %d: shutting down", sig);
    stt_sd_notify("STOPPING=1");
    /* jobs checkpoint and stop while the loops still deliver their answers */
    stt_rep_stop();
    for (size_t i = 0; i < n; i++) {
        atomic_store(&srv.workers[i]->phase, 1);
        ctl_msg_t *m = stt_xcalloc(1, sizeof(*m));
        m->phase = 1;
        h2o_multithread_send_message(&srv.workers[i]->ctl, &m->super);
    }
    /* drain: wait for in-flight requests within the bound, or a second signal */
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        size_t drained = 0;
        for (size_t i = 0; i < n; i++)
            drained += (size_t)atomic_load(&srv.workers[i]->drained);
        if (drained == n) break;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long ms = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (ms >= cfg->shutdown_timeout_ms) break;
        struct timespec ts = {0, 20 * 1000000};
        siginfo_t si;
        if (sigtimedwait(&sigs, &si, &ts) > 0) break;
    }
    for (size_t i = 0; i < n; i++) {
        atomic_store(&srv.workers[i]->phase, 2);
        ctl_msg_t *m = stt_xcalloc(1, sizeof(*m));
        m->phase = 2;
        h2o_multithread_send_message(&srv.workers[i]->ctl, &m->super);
    }
    for (size_t i = 0; i < n; i++)
        pthread_join(srv.workers[i]->tid, NULL);
    stt_auth_set_deferred(auth, false);
    stt_authpool_stop();
    stt_offload_stop(); /* before the writer: validated batches are queued to it */
    stt_writer_stop();
    stt_access_stop();   /* after the writer: its commits queue access dbs */
    stt_index_bg_stop(); /* likewise, and before the query servers go */
    stt_global_changes_stop();
    stt_index_set_pool(NULL);
    stt_qs_pool_free(srv.qs);
    srv.qs = NULL;
    stt_store_set_commit_hook(store, NULL, NULL);
    stt_store_set_db_hook(store, NULL, NULL);
    stt_log(STT_LOG_INFO, "stopped");
    return 0;
}
