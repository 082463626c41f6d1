/* Mango selectors: input is a selector, a newline, then a document. Compile (CouchDB's
 * errors or a selector) and match. */
#include "replication/selector.h"
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    const char *p = (const char *)data, *nl = memchr(p, '\n', size);
    if (!nl) return 0;
    stt_arena_t a = STT_ARENA_INIT;
    stt_json_t sel, doc;
    char err[256];
    if (stt_json_parse(&a, p, (size_t)(nl - p), &sel, NULL, 0) == 0 &&
        stt_json_parse(&a, nl + 1, size - (size_t)(nl + 1 - p), &doc, NULL, 0) == 0) {
        stt_selector_t *s = NULL;
        if (stt_selector_compile(&a, &sel, &s, err, sizeof(err)) == 0) {
            bool m = stt_selector_match(s, &doc);
            (void)m;
            stt_selector_free(s);
        }
        stt_json_collate(&sel, &doc);
    }
    stt_arena_free(&a);
    return 0;
}
