/* Growable buffer and the allocation wrappers that abort on OOM. */
#include "src/common/buf.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static void oom(size_t n)
{
    fprintf(stderr, "settee: out of memory allocating %zu bytes\n", n);
    abort();
}

void *stt_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) oom(n);
    return p;
}

void *stt_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) oom(n * size);
    return p;
}

void *stt_xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p) oom(n);
    return p;
}

char *stt_xstrndup(const char *s, size_t n)
{
    char *p = stt_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void stt_buf_reserve(stt_buf_t *b, size_t extra)
{
    if (b->cap - b->len >= extra) return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->len < extra)
        cap *= 2;
    b->base = stt_xrealloc(b->base, cap);
    b->cap = cap;
}

void stt_buf_free(stt_buf_t *b)
{
    free(b->base);
    b->base = NULL;
    b->len = b->cap = 0;
}

char *stt_buf_release(stt_buf_t *b, size_t *len)
{
    if (!b->base) stt_buf_reserve(b, 1), b->base[0] = '\0';
    char *p = b->base;
    if (len) *len = b->len;
    b->base = NULL;
    b->len = b->cap = 0;
    return p;
}

void stt_buf_appendf(stt_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof(tmp)) {
        stt_buf_append(b, tmp, (size_t)n);
        return;
    }
    stt_buf_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(b->base + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void stt_buf_append_u64(stt_buf_t *b, uint64_t v)
{
    char t[24];
    int i = 24;
    do {
        t[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    stt_buf_append(b, t + i, (size_t)(24 - i));
}

void stt_buf_append_varint(stt_buf_t *b, uint64_t v)
{
    unsigned char t[10];
    size_t n = 0;
    while (v >= 0x80) {
        t[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    t[n++] = (unsigned char)v;
    stt_buf_append(b, t, n);
}

int stt_varint_read(const unsigned char **p, const unsigned char *end, uint64_t *out)
{
    uint64_t v = 0;
    int shift = 0;
    const unsigned char *s = *p;
    while (s < end && shift < 64) {
        unsigned char c = *s++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *p = s;
            *out = v;
            return 0;
        }
        shift += 7;
    }
    return -1;
}
