/* settee-bench-longpoll: idle longpoll clients and the fan-out of one write.
 *
 *   settee-bench-longpoll [--clients N] [--rounds R] [--pid PID] [--user U --password P]
 *                         [--db NAME] HOST PORT
 *
 * Opens N HTTP/1.1 connections (default 10,000), each sending
 * `GET /DB/_changes?feed=longpoll&since=now&heartbeat=10000`, waits until every one
 * has its response headers, lets the server settle 1 s, and reads the server's RSS
 * (VmRSS of /proc/PID/status when --pid is given): the growth over N is the memory
 * per idle client. Then one PUT of a new doc, and the time from sending it until
 * each client has the answer's "last_seq": the first client, t50, t99 and t100 (the last),
 * and the server's CPU time (utime+stime) over that span; put_at is when the PUT
 * was sent, in CLOCK_MONOTONIC seconds (to line up with `perf record -k mono`).
 * Each round opens its clients again (a longpoll answers once). One epoll loop
 * holds every socket, so the client costs little next to the server; raise
 * `ulimit -n` above N first.
 *
 * Loopback only (127.0.0.0/8). The db is created if missing and left behind.
 * Prints one JSON line per round. Exit status: 0 done, 2 bad arguments, 3 failed. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int fd;
    bool head, done;
    char tail[16]; /* "last_seq" may straddle two reads */
    size_t ntail;
    double at; /* when it had its answer */
} client_t;

static struct sockaddr_in addr;
static char auth_hdr[512];

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void base64(const char *in, size_t len, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)in[i] << 16;
        if (i + 1 < len) v |= (uint32_t)(unsigned char)in[i + 1] << 8;
        if (i + 2 < len) v |= (unsigned char)in[i + 2];
        out[o++] = t[v >> 18 & 63];
        out[o++] = t[v >> 12 & 63];
        out[o++] = i + 1 < len ? t[v >> 6 & 63] : '=';
        out[o++] = i + 2 < len ? t[v & 63] : '=';
    }
    out[o] = '\0';
}

/* The line of /proc/PID/NAME that starts with prefix ("" for the first), into line. */
static bool proc_line(int pid, const char *name, const char *prefix, char *line, size_t len)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
    FILE *f = pid ? fopen(path, "r") : NULL;
    bool found = false;
    while (f && !found && fgets(line, (int)len, f))
        found = strncmp(line, prefix, strlen(prefix)) == 0;
    if (f) fclose(f);
    return found;
}

static long rss_kb(int pid)
{
    char line[256];
    long kb = 0;
    if (proc_line(pid, "status", "VmRSS:", line, sizeof(line))) sscanf(line, "VmRSS: %ld", &kb);
    return kb;
}

/* utime + stime of the server, in ms (sysconf ticks) */
static double cpu_ms(int pid)
{
    char line[1024];
    unsigned long ut = 0, st = 0;
    const char *p = proc_line(pid, "stat", "", line, sizeof(line)) ? strrchr(line, ')') : NULL;
    /* after the command name, which may hold spaces: fields 3.. ; utime and stime are 14 and 15 */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2) return 0;
    return (double)(ut + st) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

/* One blocking request on its own connection; returns the status or -1. */
static int request(const char *method, const char *path, const char *body)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    char req[2048];
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     method, path, auth_hdr, body ? strlen(body) : 0, body ? body : "");
    int status = -1;
    if (write(fd, req, (size_t)n) == n) {
        char buf[512];
        ssize_t k = read(fd, buf, sizeof(buf) - 1);
        if (k > 12) {
            buf[k] = '\0';
            status = atoi(buf + 9);
        }
    }
    close(fd);
    return status;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Scans new bytes for the end of the head and for "last_seq". */
static void on_bytes(client_t *c, const char *p, size_t n, double t)
{
    char win[16 + 4096];
    memcpy(win, c->tail, c->ntail);
    size_t len = c->ntail + n;
    memcpy(win + c->ntail, p, n);
    if (!c->head && memmem(win, len, "\r\n\r\n", 4)) c->head = true;
    if (!c->done && memmem(win, len, "\"last_seq\"", 10)) {
        c->done = true;
        c->at = t;
    }
    c->ntail = len < sizeof(c->tail) ? len : sizeof(c->tail);
    memcpy(c->tail, win + len - c->ntail, c->ntail);
}

/* Reads what is there on every ready socket until pred says stop or the deadline. */
static int pump(int ep, client_t *cl, double deadline, size_t *count, size_t want, bool heads)
{
    struct epoll_event ev[512];
    while (*count < want) {
        double left = deadline - now();
        if (left <= 0) return -1;
        int k = epoll_wait(ep, ev, 512, (int)(left * 1000) + 1);
        double t = now();
        for (int i = 0; i < k; i++) {
            client_t *c = &cl[ev[i].data.u32];
            char buf[4096];
            ssize_t r;
            while ((r = read(c->fd, buf, sizeof(buf))) > 0) {
                bool h = c->head, d = c->done;
                on_bytes(c, buf, (size_t)r, t);
                if (heads ? (!h && c->head) : (!d && c->done)) ++*count;
            }
            if (r == 0) {
                fprintf(stderr, "settee-bench-longpoll: the server closed a client\n");
                return -1;
            }
        }
    }
    return 0;
}

static void close_all(int ep, client_t *cl, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (cl[i].fd >= 0) {
            epoll_ctl(ep, EPOLL_CTL_DEL, cl[i].fd, NULL);
            close(cl[i].fd);
            cl[i].fd = -1;
        }
}

static void usage(void)
{
    fprintf(stderr, "usage: settee-bench-longpoll [--clients N] [--rounds R] [--pid PID] [--user U --password P] "
                    "[--db NAME] HOST PORT\n");
    exit(2);
}

int main(int argc, char **argv)
{
    size_t n = 10000;
    int rounds = 1, pid = 0;
    const char *user = NULL, *pass = NULL, *db = "bench_longpoll", *host = NULL, *port = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool more = i + 1 < argc;
        if (strcmp(a, "--clients") == 0 && more)
            n = strtoul(argv[++i], NULL, 10);
        else if (strcmp(a, "--rounds") == 0 && more)
            rounds = atoi(argv[++i]);
        else if (strcmp(a, "--pid") == 0 && more)
            pid = atoi(argv[++i]);
        else if (strcmp(a, "--user") == 0 && more)
            user = argv[++i];
        else if (strcmp(a, "--password") == 0 && more)
            pass = argv[++i];
        else if (strcmp(a, "--db") == 0 && more)
            db = argv[++i];
        else if (a[0] == '-')
            usage();
        else if (!host)
            host = a;
        else if (!port)
            port = a;
        else
            usage();
    }
    if (!host || !port || n == 0 || n > 1000000 || rounds < 1) usage();
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)atoi(port));
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1 || (ntohl(addr.sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "settee-bench-longpoll: loopback addresses only (127.0.0.0/8)\n");
        return 2;
    }
    if (user && pass) {
        char cred[256], b64[360];
        snprintf(cred, sizeof(cred), "%s:%s", user, pass);
        base64(cred, strlen(cred), b64);
        snprintf(auth_hdr, sizeof(auth_hdr), "Authorization: Basic %s\r\n", b64);
    }
    char path[512];
    snprintf(path, sizeof(path), "/%s", db);
    int st = request("PUT", path, NULL);
    if (st != 201 && st != 412) {
        fprintf(stderr, "settee-bench-longpoll: PUT %s answered %d\n", path, st);
        return 3;
    }
    char req[1024];
    int reqlen = snprintf(
        req, sizeof(req),
        "GET /%s/_changes?feed=longpoll&since=now&heartbeat=10000 HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n", db, auth_hdr);
    client_t *cl = calloc(n, sizeof(*cl));
    double *lat = calloc(n, sizeof(*lat));
    int ep = epoll_create1(0);
    if (!cl || !lat || ep < 0) return 3;
    for (size_t i = 0; i < n; i++)
        cl[i].fd = -1;
    for (int round = 1; round <= rounds; round++) {
        long rss0 = rss_kb(pid);
        double t0 = now();
        size_t heads = 0;
        /* in batches, so the listen backlog never overflows (a dropped SYN is
         * retried after 1 s and would be charged to the server) */
        for (size_t i = 0; i < n; i += 250) {
            size_t end = i + 250 < n ? i + 250 : n;
            for (size_t k = i; k < end; k++) {
                client_t *c = &cl[k];
                memset(c, 0, sizeof(*c));
                c->fd = socket(AF_INET, SOCK_STREAM, 0);
                if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
                    write(c->fd, req, (size_t)reqlen) != reqlen) {
                    fprintf(stderr, "settee-bench-longpoll: client %zu: %s\n", k, strerror(errno));
                    return 3;
                }
                fcntl(c->fd, F_SETFL, O_NONBLOCK);
                struct epoll_event e = {.events = EPOLLIN, .data.u32 = (uint32_t)k};
                epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e);
            }
            if (pump(ep, cl, now() + 60, &heads, end, true) != 0) {
                fprintf(stderr, "settee-bench-longpoll: %zu of %zu clients had their headers after 60 s\n", heads, end);
                return 3;
            }
        }
        double open_s = now() - t0;
        struct timespec settle = {1, 0};
        nanosleep(&settle, NULL);
        long rss1 = rss_kb(pid);
        char doc[64], body[64];
        snprintf(doc, sizeof(doc), "/%s/wake-%d-%ld", db, round, (long)time(NULL));
        snprintf(body, sizeof(body), "{\"round\":%d}", round);
        size_t answered = 0;
        double cpu0 = cpu_ms(pid);
        double w0 = now();
        st = request("PUT", doc, body);
        double put_ms = (now() - w0) * 1000;
        if (st != 201 && st != 202) {
            fprintf(stderr, "settee-bench-longpoll: PUT %s answered %d\n", doc, st);
            return 3;
        }
        if (pump(ep, cl, now() + 60, &answered, n, false) != 0) {
            fprintf(stderr, "settee-bench-longpoll: %zu of %zu clients answered within 60 s\n", answered, n);
            return 3;
        }
        double cpu = cpu_ms(pid) - cpu0;
        for (size_t i = 0; i < n; i++)
            lat[i] = (cl[i].at - w0) * 1000;
        qsort(lat, n, sizeof(*lat), cmp_double);
        printf("{\"round\":%d,\"clients\":%zu,\"open_s\":%.2f,\"rss_before_kb\":%ld,\"rss_idle_kb\":%ld,"
               "\"bytes_per_client\":%.0f,\"put_ms\":%.1f,\"first_ms\":%.1f,\"t50_ms\":%.1f,\"t99_ms\":%.1f,"
               "\"t100_ms\":%.1f,\"server_cpu_ms\":%.0f,\"put_at\":%.3f}\n",
               round, n, open_s, rss0, rss1, pid ? (double)(rss1 - rss0) * 1024 / (double)n : 0.0, put_ms, lat[0],
               lat[n / 2], lat[n * 99 / 100], lat[n - 1], cpu, w0);
        fflush(stdout);
        close_all(ep, cl, n);
        nanosleep(&settle, NULL); /* the server sees the closes */
    }
    free(cl);
    free(lat);
    close(ep);
    return 0;
}
