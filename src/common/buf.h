/* Growable byte buffer used for building replies, keys and encoded records.
 * Small allocations abort on OOM (a server that cannot get a few KB cannot go on);
 * callers bound input-sized growth before they append. */
#ifndef STT_BUF_H
#define STT_BUF_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    char *base;
    size_t len;
    size_t cap;
} stt_buf_t;

#define STT_BUF_INIT                                                                                                   \
    {                                                                                                                  \
        NULL, 0, 0                                                                                                     \
    }

void stt_buf_reserve(stt_buf_t *b, size_t extra);
void stt_buf_free(stt_buf_t *b);
void stt_buf_appendf(stt_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void stt_buf_append_u64(stt_buf_t *b, uint64_t v);
/* Takes the bytes out of the buffer; the caller frees them with free(). */
char *stt_buf_release(stt_buf_t *b, size_t *len);

static inline void stt_buf_append(stt_buf_t *b, const void *p, size_t n)
{
    if (n == 0 && b->base) /* p may be NULL for an empty append */
        return;
    if (b->cap - b->len < n + 1) stt_buf_reserve(b, n + 1);
    if (n) memcpy(b->base + b->len, p, n);
    b->len += n;
    b->base[b->len] = '\0';
}
static inline void stt_buf_appends(stt_buf_t *b, const char *s)
{
    stt_buf_append(b, s, strlen(s));
}
static inline void stt_buf_appendc(stt_buf_t *b, char c)
{
    if (b->cap - b->len < 2) stt_buf_reserve(b, 2);
    b->base[b->len++] = c;
    b->base[b->len] = '\0';
}
static inline void stt_buf_reset(stt_buf_t *b)
{
    b->len = 0;
    if (b->base) b->base[0] = '\0';
}
/* Big-endian fixed-width integers: keys sort the way numbers do. */
static inline void stt_buf_append_be64(stt_buf_t *b, uint64_t v)
{
    unsigned char t[8];
    for (int i = 7; i >= 0; i--, v >>= 8)
        t[i] = (unsigned char)v;
    stt_buf_append(b, t, 8);
}
static inline void stt_buf_append_be32(stt_buf_t *b, uint32_t v)
{
    unsigned char t[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
                          (unsigned char)v};
    stt_buf_append(b, t, 4);
}
static inline uint64_t stt_be64(const void *p)
{
    const unsigned char *s = p;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | s[i];
    return v;
}
static inline uint32_t stt_be32(const void *p)
{
    const unsigned char *s = p;
    return ((uint32_t)s[0] << 24) | ((uint32_t)s[1] << 16) | ((uint32_t)s[2] << 8) | s[3];
}
/* LEB128 varints for compact records. */
void stt_buf_append_varint(stt_buf_t *b, uint64_t v);
/* Reads a varint at *p (not past end); returns 0, or -1 on truncation. */
int stt_varint_read(const unsigned char **p, const unsigned char *end, uint64_t *out);

void *stt_xmalloc(size_t n);
void *stt_xcalloc(size_t n, size_t size);
void *stt_xrealloc(void *p, size_t n);
char *stt_xstrndup(const char *s, size_t n);

#endif
