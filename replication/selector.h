/* Mango selectors: the matcher behind _changes?filter=_selector and _find.
 *
 * A selector is compiled once (operators checked, implicit $and and nested field
 * names flattened, negations pushed down to the conditions as CouchDB's
 * mango_selector:normalize/1 does) and then matched against any number of docs.
 * This is the matcher only: no index selection, no sort, no field projection. */
#ifndef STT_SELECTOR_H
#define STT_SELECTOR_H
#include "src/common/arena.h"
#include "src/common/json.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct stt_selector stt_selector_t;

/* Compiles sel, a selector object (the value of "selector"). The compiled selector
 * and copies of every operand live in arena, so sel may be freed afterwards.
 *
 * Returns 0 and sets *out, or STT_E_BAD_REQUEST with CouchDB's reason in err (when
 * err is non-NULL; truncated to errlen), e.g. "Invalid operator: $foo", "Bad argument
 * for operator $in: 1", "Unsupported operator: $where", "One or more conditions is
 * missing a field name.". *out is written only on success.
 *
 * A selector that uses $regex also holds regcomp() state outside the arena: release
 * it with stt_selector_free before freeing the arena. */
int stt_selector_compile(stt_arena_t *arena, const stt_json_t *sel, stt_selector_t **out, char *err, size_t errlen);

/* True when doc (an object: the full doc, with _id, _rev, _deleted...) matches.
 * Read-only on both arguments; doc is not retained. Safe to call from several
 * threads at once on one selector. */
bool stt_selector_match(const stt_selector_t *s, const stt_json_t *doc);

/* Releases what the selector holds outside its arena (compiled regexes). NULL is a
 * no-op. The selector must not be matched afterwards; its arena memory stays with
 * the arena. */
void stt_selector_free(stt_selector_t *s);

/* ------------------------------------------------------------------ for _find */

/* CouchDB's view collation of two values, the order $lt and $gt compare by (see
 * selector.c for where it differs from ICU): <0, 0, >0 as a sorts before, with or
 * after b. Read-only on both. */
int stt_json_collate(const stt_json_t *a, const stt_json_t *b);

/* One part of a Mango field name. */
typedef struct {
    const char *s;
    size_t len;
} stt_field_part_t;

/* Splits a field name as the selector does: at each '.' not preceded by a
 * backslash, backslashes then dropped ("a.b" is a, b; "a\.b" is the key "a.b").
 * The parts live in arena. 0, or STT_E_BAD_REQUEST for an empty part ("", "a..b"). */
int stt_field_parse(stt_arena_t *arena, const char *name, size_t len, stt_field_part_t **parts, uint32_t *nparts);

/* The value the parts name inside v, reached as the selector reaches it: object
 * members by key, array elements by index ("0"). NULL when absent or when the path
 * crosses a scalar. Borrowed from v. */
const stt_json_t *stt_field_get(const stt_json_t *v, const stt_field_part_t *parts, uint32_t nparts);

#endif
