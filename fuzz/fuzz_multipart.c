/* MIME multipart (multipart/related doc PUTs from the replicator, multipart/mixed
 * open_revs answers read back by clients): input is a Content-Type line, a newline, then
 * the body. Every part must lie inside the body, and header and parameter lookups stay
 * inside their part. */
#include "src/http/multipart.h"
#include <stdlib.h>
#include <string.h>

static void inside(const char *s, size_t n, const char *lo, const char *hi)
{
    if (n && (s < lo || s + n > hi)) abort();
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    const char *p = (const char *)data, *nl = memchr(p, '\n', size);
    if (!nl) return 0;
    const char *b;
    size_t blen;
    if (stt_mime_boundary(p, (size_t)(nl - p), &b, &blen) != 0) return 0;
    inside(b, blen, p, nl);
    const char *body = nl + 1;
    size_t len = size - (size_t)(body - p), n = 0;
    stt_mime_part_t parts[16];
    if (stt_mime_parse(body, len, b, blen, parts, &n, 16) != 0) return 0;
    for (size_t i = 0; i < n && i < 16; i++) {
        inside(parts[i].headers, parts[i].hlen, body, body + len);
        inside(parts[i].body, parts[i].len, body, body + len);
        static const char *names[] = {"content-type", "content-disposition", "content-encoding", "content-length"};
        for (size_t k = 0; k < 4; k++) {
            size_t vl;
            const char *v = stt_mime_header(&parts[i], names[k], &vl);
            if (!v) continue;
            inside(v, vl, parts[i].headers, parts[i].headers + parts[i].hlen);
            const char *pv;
            size_t pvl;
            if (stt_mime_param(v, vl, "filename", &pv, &pvl) == 0) inside(pv, pvl, v, v + vl);
            const char *nb;
            size_t nbl;
            if (stt_mime_boundary(v, vl, &nb, &nbl) == 0) {
                /* a nested multipart/related inside a multipart/mixed part */
                size_t nn = 0;
                stt_mime_part_t sub[4];
                stt_mime_parse(parts[i].body, parts[i].len, nb, nbl, sub, &nn, 4);
            }
        }
        stt_buf_t out = STT_BUF_INIT;
        stt_mime_put_value(&out, parts[i].body, parts[i].len < 256 ? parts[i].len : 256, i & 1);
        for (size_t k = 0; k < out.len; k++)
            if (out.base[k] == '\r' || out.base[k] == '\n' || out.base[k] == '\0') abort();
        stt_buf_free(&out);
    }
    return 0;
}
