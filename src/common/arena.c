/* Bump allocator. Chunks start at 1 KB and double up to 64 KB, so that the many
 * small arenas (one per request: a waiting longpoll client holds one) stay
 * small; a request larger than a quarter chunk gets a block of its own. */
#include "src/common/arena.h"
#include "src/common/buf.h"
#include <stdlib.h>
#include <string.h>

struct stt_arena_chunk {
    stt_arena_chunk_t *next;
    size_t size;
    char data[];
};

#define CHUNK_MIN 1024
#define CHUNK_MAX 65536

void stt_arena_init_block(stt_arena_t *a, void *block, size_t len)
{
    char *cur = (char *)(((uintptr_t)block + 15) & ~(uintptr_t)15);
    size_t skip = (size_t)(cur - (char *)block);
    a->head = NULL; /* the next chunk is CHUNK_MIN, as for an empty arena */
    a->cur = cur;
    a->left = len > skip ? (len - skip) & ~(size_t)15 : 0;
}

void *stt_arena_alloc(stt_arena_t *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n > a->left) {
        size_t next = a->head ? a->head->size * 2 : CHUNK_MIN;
        if (next > CHUNK_MAX) next = CHUNK_MAX;
        if (n > next / 4) {
            /* a big block of its own, linked behind the head so the current
             * chunk stays in use */
            stt_arena_chunk_t *c = stt_xmalloc(sizeof(*c) + n + 16);
            c->size = 0;
            char *base = (char *)(((uintptr_t)c->data + 15) & ~(uintptr_t)15);
            if (a->head) {
                c->next = a->head->next;
                a->head->next = c;
            } else {
                /* no chunk yet: a zero-size head keeps the growth sequence */
                c->next = NULL;
                a->head = c;
                a->cur = NULL;
                a->left = 0;
            }
            return base;
        }
        stt_arena_chunk_t *c = stt_xmalloc(sizeof(*c) + next + 16);
        c->size = next;
        c->next = a->head;
        a->head = c;
        a->cur = (char *)(((uintptr_t)c->data + 15) & ~(uintptr_t)15);
        a->left = next;
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
