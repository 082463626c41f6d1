/* Bump allocator for data with one lifetime (a parsed request body, a decoded rev
 * tree). Everything is freed at once by stt_arena_free. Not thread-safe. */
#ifndef STT_ARENA_H
#define STT_ARENA_H
#include <stddef.h>

typedef struct stt_arena_chunk stt_arena_chunk_t;
typedef struct {
    stt_arena_chunk_t *head;
    char *cur;
    size_t left;
} stt_arena_t;

#define STT_ARENA_INIT                                                                                                 \
    {                                                                                                                  \
        NULL, NULL, 0                                                                                                  \
    }

/* Makes len bytes at block (memory the caller owns, valid as long as the arena is
 * used) the arena's first allocations; chunks follow when they run out, and
 * stt_arena_free frees those only. a must be empty. */
void stt_arena_init_block(stt_arena_t *a, void *block, size_t len);
/* Aborts on OOM; aligned to 16 bytes. */
void *stt_arena_alloc(stt_arena_t *a, size_t n);
char *stt_arena_strndup(stt_arena_t *a, const char *s, size_t n);
void *stt_arena_memdup(stt_arena_t *a, const void *p, size_t n);
void stt_arena_free(stt_arena_t *a);

#endif
