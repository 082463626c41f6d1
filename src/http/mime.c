/* MIME multipart as bytes: the parameters of a structured header value (the
 * boundary of a Content-Type, the filename of a Content-Disposition), splitting a
 * multipart body into parts, header lookup inside a part, and writing header
 * values that cannot break a header block, and the gzip Content-Encoding of a
 * part. Pure: no h2o; apart from the gunzip output buffer, every result points
 * into the caller's bytes. Building multipart replies and reading
 * multipart requests is h_multipart.c's job.
 *
 * What a body must look like (RFC 2046 5.1.1, as CouchDB and its replicator
 * write it):
 *
 *   [preamble CRLF] "--" boundary *LWSP CRLF headers CRLF body
 *   *( CRLF "--" boundary *LWSP CRLF headers CRLF body )
 *   CRLF "--" boundary "--" [epilogue]
 *
 * A delimiter counts only at the start of the body or right after CRLF, and only
 * when "--" or blanks + line end follow the boundary: a binary body that happens
 * to hold "--<boundary>x" is not cut there. The CRLF before a delimiter belongs
 * to the delimiter, never to the body. Header lines may end in bare LF (hand-made
 * bodies). A part without a blank line is all headers and no body, as the RFC
 * reads. A body without an opening or a closing delimiter is malformed: the
 * caller answers 400 rather than guess. */
#define STT_MIME_PURE /* the pure half of multipart.h: no h2o */
#include "src/http/multipart.h"
#include <string.h>
#include <strings.h>
#include <zlib.h>

/* ------------------------------------------------------------------ parameters */

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

int stt_mime_param(const char *hval, size_t len, const char *name, const char **v, size_t *vlen)
{
    size_t namelen = strlen(name);
    size_t i = 0;
    /* the media type (or disposition type) comes first: skip it */
    while (i < len && hval[i] != ';')
        i++;
    while (i < len) {
        i++; /* the ';' */
        while (i < len && is_blank(hval[i]))
            i++;
        size_t k = i;
        while (i < len && hval[i] != '=' && hval[i] != ';' && !is_blank(hval[i]))
            i++;
        size_t klen = i - k;
        while (i < len && is_blank(hval[i]))
            i++;
        if (i >= len || hval[i] != '=') {
            /* a parameter without a value: skip to the next one */
            while (i < len && hval[i] != ';')
                i++;
            continue;
        }
        i++;
        while (i < len && is_blank(hval[i]))
            i++;
        const char *val;
        size_t valen;
        if (i < len && hval[i] == '"') {
            size_t s = ++i;
            while (i < len && hval[i] != '"')
                i += hval[i] == '\\' && i + 1 < len ? 2 : 1;
            if (i >= len) return -1; /* unterminated quoted string */
            val = hval + s;
            valen = i - s;
            i++;
        } else {
            size_t s = i;
            while (i < len && hval[i] != ';' && !is_blank(hval[i]))
                i++;
            val = hval + s;
            valen = i - s;
        }
        if (klen == namelen && strncasecmp(hval + k, name, namelen) == 0) {
            *v = val;
            *vlen = valen;
            return 0;
        }
        while (i < len && hval[i] != ';')
            i++;
    }
    return -1;
}

int stt_mime_boundary(const char *ctype, size_t len, const char **b, size_t *blen)
{
    const char *v;
    size_t vlen;
    if (stt_mime_param(ctype, len, "boundary", &v, &vlen) != 0 || vlen == 0 || vlen > STT_MIME_BOUNDARY_MAX) return -1;
    /* RFC 2046 boundary characters exclude both; a boundary holding them could
     * not be matched against the body as written */
    if (memchr(v, '"', vlen) || memchr(v, '\\', vlen)) return -1;
    *b = v;
    *blen = vlen;
    return 0;
}

/* ------------------------------------------------------------------ parsing */

/* Is there a delimiter whose "--" starts at c? On success *after is the first
 * byte of the next part's headers (or past the closing "--"), *close tells which. */
static bool delimiter_at(const char *s, size_t len, size_t c, const char *b, size_t blen, size_t *after, bool *close)
{
    if (len - c < 2 + blen || s[c] != '-' || s[c + 1] != '-' || memcmp(s + c + 2, b, blen) != 0) return false;
    size_t e = c + 2 + blen;
    if (len - e >= 2 && s[e] == '-' && s[e + 1] == '-') {
        *close = true;
        *after = e + 2;
        return true;
    }
    while (e < len && is_blank(s[e]))
        e++;
    if (len - e >= 2 && s[e] == '\r' && s[e + 1] == '\n')
        e += 2;
    else if (e < len && s[e] == '\n')
        e++;
    else
        return false;
    *close = false;
    *after = e;
    return true;
}

/* The next delimiter at or after from that is preceded by CRLF: *crlf is where
 * that CRLF starts (the end of the current part). -1 when there is none. */
static int next_delimiter(const char *s, size_t len, size_t from, const char *b, size_t blen, size_t *crlf,
                          size_t *after, bool *close)
{
    char needle[4 + STT_MIME_BOUNDARY_MAX];
    memcpy(needle, "\r\n--", 4);
    memcpy(needle + 4, b, blen);
    while (from < len) {
        const char *hit = memmem(s + from, len - from, needle, 4 + blen);
        if (!hit) return -1;
        size_t at = (size_t)(hit - s);
        if (delimiter_at(s, len, at + 2, b, blen, after, close)) {
            *crlf = at;
            return 0;
        }
        from = at + 1;
    }
    return -1;
}

/* Splits the bytes of one part into headers and body at its first empty line. */
static void split_part(const char *s, size_t start, size_t end, stt_mime_part_t *p)
{
    size_t i = start;
    for (;;) {
        /* i is at the start of a line */
        if (end - i >= 2 && s[i] == '\r' && s[i + 1] == '\n') {
            p->body = s + i + 2;
            p->len = end - i - 2;
            break;
        }
        if (i < end && s[i] == '\n') {
            p->body = s + i + 1;
            p->len = end - i - 1;
            break;
        }
        const char *nl = i < end ? memchr(s + i, '\n', end - i) : NULL;
        if (!nl) {
            /* headers only: the body is empty */
            p->headers = s + start;
            p->hlen = end - start;
            p->body = s + end;
            p->len = 0;
            return;
        }
        i = (size_t)(nl - s) + 1;
    }
    p->headers = s + start;
    p->hlen = (size_t)(p->body - s) - start;
    /* the header block excludes the blank line */
    if (p->hlen >= 2 && p->headers[p->hlen - 1] == '\n' && p->headers[p->hlen - 2] == '\r')
        p->hlen -= 2;
    else if (p->hlen >= 1 && p->headers[p->hlen - 1] == '\n')
        p->hlen -= 1;
}

int stt_mime_parse(const char *body, size_t len, const char *boundary, size_t blen, stt_mime_part_t *parts,
                   size_t *nparts, size_t max)
{
    if (blen == 0 || blen > STT_MIME_BOUNDARY_MAX || (!body && len)) return -1;
    size_t after, crlf;
    bool close;
    /* the first delimiter may open the body or follow a preamble */
    if (!delimiter_at(body, len, 0, boundary, blen, &after, &close) &&
        next_delimiter(body, len, 0, boundary, blen, &crlf, &after, &close) != 0)
        return -1;
    size_t n = 0;
    while (!close) {
        size_t start = after;
        if (next_delimiter(body, len, start, boundary, blen, &crlf, &after, &close) != 0)
            return -1; /* truncated: the part never ends */
        stt_mime_part_t p;
        split_part(body, start, crlf, &p);
        if (n < max) parts[n] = p;
        n++;
    }
    *nparts = n;
    return 0;
}

/* ------------------------------------------------------------------ headers */

const char *stt_mime_header(const stt_mime_part_t *p, const char *name, size_t *vlen)
{
    size_t namelen = strlen(name);
    const char *s = p->headers, *end = p->headers + p->hlen;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *eol = nl ? nl : end;
        const char *colon = memchr(s, ':', (size_t)(eol - s));
        if (colon && !is_blank(*s)) {
            const char *k = colon;
            while (k > s && is_blank(k[-1]))
                k--;
            if ((size_t)(k - s) == namelen && strncasecmp(s, name, namelen) == 0) {
                const char *v = colon + 1, *e = eol;
                while (v < e && is_blank(*v))
                    v++;
                while (e > v && (is_blank(e[-1]) || e[-1] == '\r'))
                    e--;
                *vlen = (size_t)(e - v);
                return v;
            }
        }
        s = nl ? nl + 1 : end;
    }
    return NULL;
}

void stt_mime_put_value(stt_buf_t *out, const char *s, size_t len, bool quoted)
{
    if (!len) return;
    size_t run = 0; /* bytes that go out as they are, written in one append */
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool drop = c == '\r' || c == '\n' || c == '\0';
        bool esc = quoted && (c == '"' || c == '\\');
        if (!drop && !esc) {
            run++;
            continue;
        }
        if (run) stt_buf_append(out, s + i - run, run);
        run = 0;
        if (esc) {
            stt_buf_appendc(out, '\\');
            stt_buf_appendc(out, c);
        }
    }
    if (run) stt_buf_append(out, s + len - run, run);
}
