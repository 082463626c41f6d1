/* Bump allocator: chunks of 16 KB, larger requests get a chunk of their own. */
#include "src/common/arena.h"
#include "src/common/buf.h"
#include <stdlib.h>
#include <string.h>

struct stt_arena_chunk {
    stt_arena_chunk_t *next;
    size_t size;
    char data[];
};

#define CHUNK 16384

void *stt_arena_alloc(stt_arena_t *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n > a->left) {
        size_t sz = n > CHUNK / 4 ? n : CHUNK;
        stt_arena_chunk_t *c = stt_xmalloc(sizeof(*c) + sz + 16);
        c->size = sz;
        char *base = (char *)(((uintptr_t)c->data + 15) & ~(uintptr_t)15);
        if (sz != CHUNK) {
            /* a big block: link it behind the head so the current chunk stays in use */
            if (a->head) {
                c->next = a->head->next;
                a->head->next = c;
            } else {
                c->next = NULL;
                a->head = c;
                a->cur = NULL;
                a->left = 0;
            }
            return base;
        }
        c->next = a->head;
        a->head = c;
        a->cur = base;
        a->left = sz;
    }
    void *p = a->cur;
    a->cur += n;
    a->left -= n;
    return p;
}

char *stt_arena_strndup(stt_arena_t *a, const char *s, size_t n)
{
    char *p = stt_arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void *stt_arena_memdup(stt_arena_t *a, const void *p, size_t n)
{
    void *d = stt_arena_alloc(a, n ? n : 1);
    memcpy(d, p, n);
    return d;
}

void stt_arena_free(stt_arena_t *a)
{
    stt_arena_chunk_t *c = a->head;
    while (c) {
        stt_arena_chunk_t *n = c->next;
        free(c);
        c = n;
    }
    a->head = NULL;
    a->cur = NULL;
    a->left = 0;
}
