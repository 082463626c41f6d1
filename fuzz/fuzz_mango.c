/* Mango requests: input is a _find body. Validate it as mango_opts does, then plan it
 * against a fixed set of json indexes (single field, compound, descending, partial) and
 * render the plan's key range: CouchDB's errors or a plan, never a crash. */
#include "mango/mango_int.h"
#include <stdlib.h>
#include <string.h>

static void add_index(stt_arena_t *a, stt__index_t *ix, const char *ddoc, const char *name, const char *sort,
                      const char *map, bool partial)
{
    stt_json_t s, *m = stt_arena_alloc(a, sizeof(*m));
    stt_mango_err_t err;
    memset(ix, 0, sizeof(*ix));
    ix->ddoc = ddoc, ix->ddoclen = strlen(ddoc);
    ix->name = name, ix->namelen = strlen(name);
    ix->partial = partial;
    if (stt_json_parse(a, sort, strlen(sort), &s, NULL, 0) != 0 ||
        stt__parse_sort(a, &s, &ix->cols, &ix->ncols, &ix->desc, &err) != 0 ||
        stt_json_parse(a, map, strlen(map), m, NULL, 0) != 0)
        abort();
    ix->map = m;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    stt_arena_t a = STT_ARENA_INIT;
    stt_json_t body;
    if (stt_json_parse(&a, (const char *)data, size, &body, NULL, 0) == 0 && body.type == STT_JSON_OBJECT) {
        stt__query_t q;
        stt_mango_err_t err;
        if (stt__query_parse(&a, &body, &q, &err) == 0) {
            stt__index_t ix[4];
            add_index(&a, &ix[0], "_design/a", "age", "[\"age\"]", "{\"fields\":{\"age\":\"asc\"}}", false);
            add_index(&a, &ix[1], "_design/b", "type-ts", "[\"type\",\"ts\"]",
                      "{\"fields\":{\"type\":\"asc\",\"ts\":\"asc\"}}", false);
            add_index(&a, &ix[2], "_design/c", "n-desc", "[{\"n\":\"desc\"}]", "{\"fields\":{\"n\":\"desc\"}}", false);
            add_index(&a, &ix[3], "_design/d", "n-part", "[\"n\"]",
                      "{\"fields\":{\"n\":\"asc\"},\"partial_filter_selector\":{\"a\":{\"$gt\":1}}}", true);
            stt__plan_t p;
            if (stt__plan_on(&a, &q, ix, 4, &p, &err) == 0) {
                stt_buf_t s = STT_BUF_INIT, e = STT_BUF_INIT;
                stt__plan_keys(&p, &s, &e);
                stt_buf_free(&s);
                stt_buf_free(&e);
            }
            stt__plan_free(&p);
            stt__query_free(&q);
        }
    }
    stt_arena_free(&a);
    return 0;
}
