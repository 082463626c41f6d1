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

#endif
