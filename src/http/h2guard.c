/* HTTP/2 request-rate limit per connection: the defence settee can build on h2o
 * 2.2.5's public API against rapid reset (CVE-2023-44487) and other stream floods.
 *
 * A client that opens a stream and resets it at once costs the server a whole
 * request (h2o hands every HEADERS frame to the handler) and costs itself two
 * small frames, so a single connection can make a server do hundreds of
 * thousands of requests a second. No real client needs more than a few thousand
 * requests a second on one connection: each connection gets a token bucket
 * ([settee] http2_max_request_rate per second, bursts of twice that) and a
 * connection that empties it is shut down at the socket (h2o then drops its
 * streams and their work), with one log line, and its address gets no HTTP/2
 * service for a while (below).
 *
 * Per worker, single-threaded: a fixed table keyed by h2o's connection id, an
 * entry reused once its connection has been quiet for 10 s. A full neighbourhood
 * admits (the limit fails open rather than refusing good clients). */
#include "src/http/http.h"
#include "src/common/log.h"
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/socket.h>

#define SLOTS 4096
#define PROBE 8
#define QUIET_MS 10000

typedef struct {
    uint64_t conn_id; /* 0: free */
    double tokens;
    uint64_t last_ms;
    bool shut; /* refused once: its socket is being shut down */
} ent_t;

struct stt_h2guard {
    double rate, burst;
    ent_t e[SLOTS];
};

stt_h2guard_t *stt_h2guard_new(uint64_t rate)
{
    stt_h2guard_t *g = stt_xcalloc(1, sizeof(*g));
    g->rate = (double)rate;
    g->burst = 2.0 * (double)rate;
    return g;
}

void stt_h2guard_free(stt_h2guard_t *g)
{
    free(g);
}

int stt_h2guard_admit(stt_h2guard_t *g, uint64_t conn_id, uint64_t now_ms, bool *first)
{
    if (first) *first = false;
    if (!g || g->rate <= 0) return 1;
    size_t h = (size_t)(conn_id * 0x9E3779B97F4A7C15ULL >> 52) % SLOTS;
    ent_t *slot = NULL;
    for (int i = 0; i < PROBE; i++) {
        ent_t *e = &g->e[(h + (size_t)i) % SLOTS];
        if (e->conn_id == conn_id) {
            slot = e;
            break;
        }
        if (!slot && (e->conn_id == 0 || now_ms - e->last_ms > QUIET_MS)) slot = e;
    }
    if (!slot) return 1;
    if (slot->conn_id != conn_id) {
        slot->conn_id = conn_id;
        slot->tokens = g->burst;
        slot->last_ms = now_ms;
        slot->shut = false;
        if (first) *first = true;
    }
    if (slot->shut) return -1;
    slot->tokens += (double)(now_ms - slot->last_ms) * g->rate / 1000.0;
    if (slot->tokens > g->burst) slot->tokens = g->burst;
    slot->last_ms = now_ms;
    if (slot->tokens < 1.0) {
        slot->shut = true;
        return 0;
    }
    slot->tokens -= 1.0;
    return 1;
}

/* Addresses whose connection was shut for flooding: for PENALTY_MS their new
 * connections are closed as they are accepted (before any TLS handshake), and an
 * HTTP/2 connection already open is shut at its first request, so that
 * reconnecting (each time with a fresh burst) does not renew the flood. Shared by the workers (a client's
 * connections land on any of them); touched only when a connection starts or is
 * shut. Fixed size, the oldest entry replaced. */
#define PENALTY_SLOTS 256
#define PENALTY_MS 30000
static struct {
    unsigned char addr[16];
    uint64_t until_ms;
} penalty[PENALTY_SLOTS];
static pthread_mutex_t penalty_mu = PTHREAD_MUTEX_INITIALIZER;

static bool peer_of(h2o_conn_t *c, unsigned char out[16])
{
    struct sockaddr_storage ss;
    if (!c->callbacks->get_peername) return false;
    socklen_t len = c->callbacks->get_peername(c, (struct sockaddr *)&ss);
    memset(out, 0, 16);
    if (len && ss.ss_family == AF_INET) {
        memcpy(out, &((struct sockaddr_in *)&ss)->sin_addr, 4);
        return true;
    }
    if (len && ss.ss_family == AF_INET6) {
        memcpy(out, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
        return true;
    }
    return false;
}

static bool penalized(const unsigned char addr[16], uint64_t now_ms)
{
    bool r = false;
    pthread_mutex_lock(&penalty_mu);
    for (size_t i = 0; i < PENALTY_SLOTS && !r; i++)
        r = penalty[i].until_ms > now_ms && memcmp(penalty[i].addr, addr, 16) == 0;
    pthread_mutex_unlock(&penalty_mu);
    return r;
}

static void penalize(const unsigned char addr[16], uint64_t now_ms)
{
    pthread_mutex_lock(&penalty_mu);
    size_t victim = 0;
    for (size_t i = 0; i < PENALTY_SLOTS; i++) {
        if (memcmp(penalty[i].addr, addr, 16) == 0) {
            victim = i;
            break;
        }
        if (penalty[i].until_ms < penalty[victim].until_ms) victim = i;
    }
    memcpy(penalty[victim].addr, addr, 16);
    penalty[victim].until_ms = now_ms + PENALTY_MS;
    pthread_mutex_unlock(&penalty_mu);
}

void stt_h2guard_shut(stt_h2guard_t *g, uint64_t conn_id)
{
    if (!g) return;
    size_t h = (size_t)(conn_id * 0x9E3779B97F4A7C15ULL >> 52) % SLOTS;
    for (int i = 0; i < PROBE; i++) {
        ent_t *e = &g->e[(h + (size_t)i) % SLOTS];
        if (e->conn_id == conn_id) e->shut = true;
    }
}

bool stt_h2guard_refuse_socket(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    unsigned char addr[16] = {0};
    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0) return false;
    if (ss.ss_family == AF_INET)
        memcpy(addr, &((struct sockaddr_in *)&ss)->sin_addr, 4);
    else if (ss.ss_family == AF_INET6)
        memcpy(addr, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
    else
        return false;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return penalized(addr, (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000);
}

bool stt__h2_admit(stt_hreq_t *r)
{
    h2o_req_t *req = r->req;
    if (req->version < 0x200) return true;
    uint64_t now_ms = h2o_now(req->conn->ctx->loop);
    bool first;
    stt_h2guard_t *g = stt_worker_h2guard(r->w);
    int verdict = stt_h2guard_admit(g, req->conn->id, now_ms, &first);
    unsigned char addr[16];
    bool have_addr = (first || verdict == 0) && peer_of(req->conn, addr);
    bool again = false;
    if (verdict == 1 && first && have_addr && penalized(addr, now_ms)) {
        stt_h2guard_shut(g, req->conn->id);
        verdict = 0, again = true;
    }
    if (verdict == 1) return true;
    h2o_socket_t *sock = req->conn->callbacks->get_socket ? req->conn->callbacks->get_socket(req->conn) : NULL;
    if (sock && verdict == 0) {
        /* once per connection; the streams h2o already parsed still arrive here,
         * and are refused without a word */
        if (!again) {
            stt_log(STT_LOG_LEVEL_WARNING,
                    "HTTP/2 connection %llu over its request rate: closed, its address refused HTTP/2 for %d s",
                    (unsigned long long)req->conn->id, PENALTY_MS / 1000);
            if (have_addr) penalize(addr, now_ms);
        }
        shutdown(h2o_socket_get_fd(sock), SHUT_RDWR);
    }
    stt_reply_error_raw(r, 429, "too_many_requests", "Too many requests on one HTTP/2 connection.");
    return false;
}
