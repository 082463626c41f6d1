/* JSON values for request and document bodies.
 *
 * Parsing goes through yajl (streaming) into a small DOM allocated from an arena:
 * numbers keep their raw text (so 0.1, 1e400, -0 and 20-digit integers round-trip
 * byte-exact), object members keep their order (a duplicated key keeps its last
 * occurrence only, as CouchDB does), strings keep their
 * length (so "\u0000" survives). Before yajl sees a byte, the input is checked for
 * strict UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF) and every
 * \uXXXX escape for unpaired surrogates, which yajl would silently mangle.
 *
 * The writer emits compact JSON into a stt_buf_t: strings escaped as CouchDB does
 * (only '"', '\\' and control characters; UTF-8 passes through), numbers verbatim. */
#ifndef STT_JSON_H
#define STT_JSON_H
#include "src/common/arena.h"
#include "src/common/buf.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    STT_JSON_NULL,
    STT_JSON_FALSE,
    STT_JSON_TRUE,
    STT_JSON_NUMBER,
    STT_JSON_STRING,
    STT_JSON_ARRAY,
    STT_JSON_OBJECT
} stt_json_type_t;

typedef struct stt_json stt_json_t;
typedef struct stt_json_member stt_json_member_t;

struct stt_json {
    stt_json_type_t type;
    /* STRING/NUMBER: byte length of s; ARRAY/OBJECT: number of items/members */
    uint32_t len;
    union {
        const char *s; /* NUL-terminated copy; may also hold NULs, len is authoritative */
        stt_json_t *items;
        stt_json_member_t *members;
    } u;
};

struct stt_json_member {
    const char *key; /* NUL-terminated; keylen is authoritative */
    uint32_t keylen;
    stt_json_t val;
};

/* Deepest nesting accepted. CouchDB (jiffy) has no limit and accepts 10,000 levels; the
 * writer, equality and selector matching recurse, so a bound keeps a hostile body from
 * exhausting a worker's stack. Deeper input fails with STT_E_JSON_DEPTH. Must stay a plain
 * number: the error reason spells it out. */
#define STT_JSON_MAX_DEPTH 16384

/* Parses text (len bytes) into *out, all memory from arena. Returns 0, STT_E_JSON_DEPTH
 * (nested deeper than STT_JSON_MAX_DEPTH) or STT_E_BAD_JSON; on failure, if errbuf is
 * non-NULL, a short message is written. Of a key that appears twice in one object only the
 * last occurrence is kept, at its position (CouchDB's dedupe_keys). */
int stt_json_parse(stt_arena_t *arena, const char *text, size_t len, stt_json_t *out, char *errbuf, size_t errlen);
/* stt_json_parse with flags: without STT_JSON_DEDUPE every member is kept, for the readers
 * CouchDB runs over jiffy without dedupe_keys (JWT claims: proplists, the first wins). */
#define STT_JSON_DEDUPE 1
int stt_json_parse_opts(stt_arena_t *arena, const char *text, size_t len, int flags, stt_json_t *out, char *errbuf,
                        size_t errlen);

/* Strict UTF-8 check of raw bytes (what the parser runs first). 0 when valid. */
int stt_utf8_validate(const char *s, size_t len);
/* Checks JSON text for \u escapes that encode an unpaired surrogate. 0 when fine. */
int stt_json_check_escapes(const char *s, size_t len);

/* Lookup: the first member named key, or NULL. */
const stt_json_t *stt_json_get(const stt_json_t *obj, const char *key);
const stt_json_t *stt_json_getn(const stt_json_t *obj, const char *key, size_t keylen);
static inline bool stt_json_is_str(const stt_json_t *v)
{
    return v && v->type == STT_JSON_STRING;
}
static inline bool stt_json_is_true(const stt_json_t *v)
{
    return v && v->type == STT_JSON_TRUE;
}
/* Parses an integer NUMBER into *out. 0, or -1 when not an integer in range. */
int stt_json_int(const stt_json_t *v, int64_t *out);
/* Deep equality with CouchDB's meaning: same types, numbers compared by value when
 * both parse as doubles, object members compared in order. */
bool stt_json_equal(const stt_json_t *a, const stt_json_t *b);

/* Writer. */
void stt_json_write(stt_buf_t *b, const stt_json_t *v);
void stt_json_write_str(stt_buf_t *b, const char *s, size_t len);
static inline void stt_json_write_cstr(stt_buf_t *b, const char *s)
{
    stt_json_write_str(b, s, strlen(s));
}

/* Builders for small values made in code (arena-owned). */
stt_json_t stt_json_str(stt_arena_t *a, const char *s, size_t len);

#endif
