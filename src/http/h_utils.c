/* GET /_utils[/path]: the web UI's files (Fauxton), served from the directory
 * cfg->utils_dir as CouchDB's chttpd_misc serves its docroot.
 *
 *     /_utils           301 to /_utils/ (absolute Location, as chttpd:send_redirect)
 *     /_utils/          DIR/index.html
 *     /_utils/a/b.js    DIR/a/b.js
 *
 * Every answer carries CouchDB's "Cache-Control: private, must-revalidate" and its
 * Content-Security-Policy; files carry an ETag and Last-Modified so that a browser's
 * revalidation is a 304 without a body (Fauxton loads 2.6 MB of scripts).
 *
 * The relative path is rebuilt from the raw request path, one percent-decoded
 * segment at a time: a segment that is empty, "." or "..", or that decodes to
 * something holding '/' or NUL, is refused with 404, so no request reaches outside
 * the directory. A missing file is CouchDB's text/plain "Not found."; when the
 * directory itself is missing (the UI is not installed) the answer is a 404 JSON
 * saying so. Not here: listing directories, ranges, compression. */
#include "src/http/http.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* chttpd_misc's default [csp] utils_header_value */
#define UTILS_CSP                                                                                                      \
    "child-src 'self' data: blob:; default-src 'self'; img-src 'self' data:; font-src 'self'; "                        \
    "script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; frame-src https://blog.couchdb.org;"
#define UTILS_CACHE "private, must-revalidate"
#define MAX_FILE (64u << 20) /* no UI file comes near; a bound keeps one read sane */

static const struct {
    const char *ext, *ctype;
} types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"js", "application/javascript"},
    {"mjs", "application/javascript"},
    {"css", "text/css"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"png", "image/png"},
    {"gif", "image/gif"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"svg", "image/svg+xml"},
    {"ico", "image/x-icon"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"ttf", "font/ttf"},
    {"eot", "application/vnd.ms-fontobject"},
};

const char *stt__utils_ctype(const char *path)
{
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    if (dot && (!slash || dot > slash))
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
            if (!strcasecmp(dot + 1, types[i].ext)) return types[i].ctype;
    return "application/octet-stream";
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The path below the UI directory, from the raw path after "/_utils/" (query
 * excluded): segments percent-decoded and joined with '/'. "" stands for the
 * index. Returns -1 for a path that could leave the directory or name nothing. */
int stt__utils_relpath(const char *raw, size_t len, char *out, size_t outlen)
{
    size_t o = 0, seg_start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && raw[i] != '/') continue;
        /* one raw segment: raw[seg_start, i) */
        size_t s = o;
        for (size_t j = seg_start; j < i; j++) {
            int h, l;
            char c = raw[j];
            if (c == '%') {
                if (j + 2 >= i || (h = hexval(raw[j + 1])) < 0 || (l = hexval(raw[j + 2])) < 0) return -1;
                c = (char)(h << 4 | l);
                j += 2;
            }
            if (c == '/' || c == '\0' || c == '\\') return -1;
            if (o + 2 >= outlen) return -1;
            out[o++] = c;
        }
        size_t n = o - s;
        bool last = i == len;
        if (n == 0 && !last) return -1; /* "a//b" */
        if ((n == 1 && out[s] == '.') || (n == 2 && out[s] == '.' && out[s + 1] == '.')) return -1;
        if (!last) out[o++] = '/';
        seg_start = i + 1;
    }
    out[o] = '\0';
    return 0;
}

static void not_found_text(stt_hreq_t *r)
{
    static const char body[] = "Not found.";
    const char *h[] = {"cache-control", UTILS_CACHE, NULL};
    stt_reply_bytes(r, 404, "text/plain", (char *)body, sizeof(body) - 1, false, h);
}

static void not_installed(stt_hreq_t *r, const char *dir)
{
    stt_buf_t reason = STT_BUF_INIT;
    stt_buf_appendf(&reason,
                    "The web UI (Fauxton) is not installed: %s does not exist. Run `make` (it installs web/) or set "
                    "[settee] utils_dir.",
                    dir);
    stt_reply_error_raw(r, 404, "not_found", reason.base);
    stt_buf_free(&reason);
}

static void redirect(stt_hreq_t *r)
{
    stt_buf_t loc = STT_BUF_INIT;
    stt_reply_location(r, &loc, "/_utils/", 8);
    const char *h[] = {"location", loc.base, "cache-control", UTILS_CACHE, NULL};
    stt_reply_bytes(r, 301, NULL, NULL, 0, false, h);
    stt_buf_free(&loc);
}

/* Reads an open regular file whole; -1 when it cannot. */
static int read_all(int fd, size_t size, char **out)
{
    char *data = malloc(size ? size : 1);
    if (!data) return -1;
    size_t got = 0;
    while (got < size) {
        ssize_t n = pread(fd, data + got, size - got, (off_t)got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            free(data);
            return -1;
        }
        got += (size_t)n;
    }
    *out = data;
    return 0;
}

/* ETag from size and modification time: the files change only on reinstall. */
static bool etag_matches(stt_hreq_t *r, const char *etag)
{
    const h2o_iovec_t *inm = stt_header(r, "if-none-match");
    if (!inm) return false;
    size_t el = strlen(etag);
    for (size_t i = 0; i + el <= inm->len; i++)
        if (memcmp(inm->base + i, etag, el) == 0) return true;
    return inm->len == 1 && inm->base[0] == '*';
}

static void serve(stt_hreq_t *r, const char *dir, const char *rel)
{
    struct stat dst;
    if (stat(dir, &dst) != 0 || !S_ISDIR(dst.st_mode)) {
        not_installed(r, dir);
        return;
    }
    size_t plen = strlen(dir) + 1 + strlen(rel) + sizeof("/index.html");
    char *path = stt_arena_alloc(&r->arena, plen);
    snprintf(path, plen, "%s/%s", dir, rel);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        fd = -1;
        /* a directory's index only under its slash form, as mochiweb */
        size_t rl = strlen(rel);
        if (rl == 0 || rel[rl - 1] == '/') {
            snprintf(path, plen, "%s/%sindex.html", dir, rel);
            fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
                close(fd);
                fd = -1;
            }
        }
    } else if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > MAX_FILE)) {
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        not_found_text(r);
        return;
    }
    char etag[64], lastmod[40];
    snprintf(etag, sizeof(etag), "\"%llx-%llx\"", (unsigned long long)st.st_size, (unsigned long long)st.st_mtime);
    struct tm tm;
    gmtime_r(&st.st_mtime, &tm);
    strftime(lastmod, sizeof(lastmod), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    const char *h[] = {"cache-control", UTILS_CACHE, "content-security-policy",
                       UTILS_CSP,       "etag",      etag,
                       "last-modified", lastmod,     NULL};
    const char *ctype = stt__utils_ctype(path);
    if (etag_matches(r, etag)) {
        close(fd);
        stt_reply_bytes(r, 304, NULL, NULL, 0, false, h);
        return;
    }
    /* HEAD reads too: the reply helper gives it a GET's content-length */
    char *data = NULL;
    size_t size = (size_t)st.st_size;
    int rc = read_all(fd, size, &data);
    close(fd);
    if (rc != 0) {
        stt_reply_error_raw(r, 500, "file_error", "The file could not be read.");
        return;
    }
    stt_reply_bytes(r, 200, ctype, data, size, true, h);
}

void stt_h_utils(stt_hreq_t *r)
{
    const char *dir = stt__server->cfg->utils_dir;
    h2o_req_t *req = r->req;
    size_t plen = req->input.query_at != SIZE_MAX ? req->input.query_at : req->input.path.len;
    const char *p = req->input.path.base;
    /* r->seg[0] is "_utils"; find where it ends in the raw path */
    size_t i = 0;
    while (i < plen && p[i] == '/')
        i++;
    if (plen - i < 6 || memcmp(p + i, "_utils", 6) != 0) { /* a percent-encoded "_utils" */
        not_found_text(r);
        return;
    }
    i += 6;
    if (i >= plen) {
        redirect(r);
        return;
    }
    char rel[1024];
    if (stt__utils_relpath(p + i + 1, plen - i - 1, rel, sizeof(rel)) != 0) {
        not_found_text(r);
        return;
    }
    serve(r, dir, rel);
}
