/* Private to mango/: the parsed query, index definitions and the plan. */
#ifndef STT_MANGO_INT_H
#define STT_MANGO_INT_H
#include "mango/mango.h"
#include "replication/selector.h"
#include <stdarg.h>
#include <stddef.h>

#define STT_MANGO_DEFAULT_LIMIT 25
/* Longest term quoted back in an error reason. */
#define STT_MANGO_MAX_TERM 200

/* ------------------------------------------------------------------ helpers (opts.c) */

/* Fills err and returns STT_MANGO_E. */
int stt__merr(stt_mango_err_t *err, int status, const char *error, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The selector compiler's reason with the error name CouchDB gives it. */
int stt__selector_err(stt_mango_err_t *err, const char *reason);
/* v as CouchDB quotes it in a reason, cut to STT_MANGO_MAX_TERM bytes, in a:
 * the Erlang term as ~w (binaries as bytes), as ~p (printable binaries as
 * text), or plain JSON. */
const char *stt__term(stt_arena_t *a, const stt_json_t *v);
const char *stt__term_p(stt_arena_t *a, const stt_json_t *v);
const char *stt__json_term(stt_arena_t *a, const stt_json_t *v);
bool stt__non_neg_int(const stt_json_t *v, uint64_t *out);
bool stt__is_bool(const stt_json_t *v);
bool stt__str_is(const char *s, size_t len, const char *lit);
int stt__known_keys(const stt_json_t *obj, const char *const *known, size_t nknown, stt_mango_err_t *err);

typedef struct {
    const char *name;
    size_t namelen;
    stt_field_part_t *parts;
    uint32_t nparts;
} stt__field_t;

/* A sort array as mango_sort:new reads it; one direction for all. */
int stt__parse_sort(stt_arena_t *a, const stt_json_t *sort, stt__field_t **out, uint32_t *nout, bool *desc,
                    stt_mango_err_t *err);

/* ------------------------------------------------------------------ the query (opts.c) */

typedef struct {
    const stt_json_t *selector_json;
    stt_selector_t *sel;
    uint64_t limit, skip;
    stt__field_t *sort;
    uint32_t nsort;
    bool desc;
    stt__field_t *fields;
    uint32_t nfields;
    const stt_json_t *fields_json;
    stt_json_t use_index; /* normalized: an array of 0, 1 or 2 strings */
    bool conflicts, execution_stats, update, stable, allow_fallback;
    uint64_t r;
    const stt_json_t *stale;
    const stt_json_t *bookmark_str; /* as given (NULL: none) */
    stt_json_t bookmark;            /* decoded: [key..., id] */
    bool have_bookmark;
} stt__query_t;

int stt__query_parse(stt_arena_t *a, const stt_json_t *body, stt__query_t *q, stt_mango_err_t *err);
void stt__query_free(stt__query_t *q);
void stt__bookmark_encode(stt_buf_t *out, const char *json, size_t len);

/* ------------------------------------------------------------------ json indexes (indexes.c) */

typedef struct {
    const char *ddoc; /* "_design/..." */
    size_t ddoclen;
    const char *name;
    size_t namelen;
    const stt_json_t *map; /* {"fields": {...}, "partial_filter_selector": {...}} */
    stt__field_t *cols;
    uint32_t ncols;
    bool desc;    /* the fields' direction */
    bool partial; /* a non-empty partial_filter_selector */
} stt__index_t;

/* Every json index of db, sorted by design doc then name, in a. */
int stt__indexes_list(stt_db_t *db, stt_arena_t *a, stt__index_t **out, size_t *n);
/* mango_idx:to_json of one index; ix NULL: _all_docs. */
void stt__index_json(stt_buf_t *b, const stt__index_t *ix);

/* ------------------------------------------------------------------ planning (plan.c) */

/* A key range on one index column: lo/hi NULL when open. */
typedef struct {
    const stt_json_t *lo, *hi;
    bool hi_strict; /* $lt: the end key is the value itself, no <MAX> after it */
} stt__range_t;

typedef struct {
    stt__index_t *ix;     /* NULL: _all_docs */
    stt__range_t *ranges; /* json index: one per column of the prefix */
    uint32_t nranges;
    const stt_json_t *id_lo, *id_hi; /* _all_docs: the _id range */
    bool desc;                       /* scan backwards */
    stt_json_t norm;                 /* the normalized selector */
    stt_buf_t warning;               /* use_index's, "\n"-joined later with the others */
    stt_buf_t candidates;            /* explain's index_candidates items */
    stt_buf_t hints;                 /* explain's selector_hints */
    bool covering;
} stt__plan_t;

/* mango_selector:normalize's form of sel, as JSON text. */
void stt__selector_normalize(stt_buf_t *out, const stt_json_t *sel);
int stt__plan(stt_db_t *db, stt_arena_t *a, const stt__query_t *q, stt__plan_t *p, stt_mango_err_t *err);
/* The same over the given json indexes (sorted by ddoc and name), no db. */
int stt__plan_on(stt_arena_t *a, const stt__query_t *q, stt__index_t *ix, size_t nix, stt__plan_t *p,
                 stt_mango_err_t *err);
void stt__plan_free(stt__plan_t *p);
/* Whether every doc the normalized selector norm can match is a row of ix: norm
 * requires each of its fields (one at least that a deleted doc's stub lacks)
 * and, for a partial index, holds each top-level condition of its filter. */
bool stt__index_holds(stt_arena_t *a, const stt_json_t *norm, const stt__index_t *ix);
/* mrargs start_key / end_key of the plan, as _explain shows them. */
void stt__plan_keys(const stt__plan_t *p, stt_buf_t *start, stt_buf_t *end);

/* _explain's body (explain.c), planning into plan. */
int stt__explain(stt_db_t *db, stt_arena_t *a, const stt__query_t *q, stt__plan_t *plan, stt_buf_t *b,
                 stt_mango_err_t *err);

#endif
