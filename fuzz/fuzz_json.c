/* JSON + UTF-8: the parser must refuse or accept without a sanitizer report, and what it
 * accepts must write back as JSON that parses to the same writing (the writer's output is
 * a fixed point: documents are stored as written). */
#include "src/common/json.h"
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    stt_utf8_validate((const char *)data, size);
    stt_arena_t a = STT_ARENA_INIT;
    stt_json_t v;
    int flags = size && (data[0] & 1) ? STT_JSON_DEDUPE : 0;
    if (stt_json_parse_opts(&a, (const char *)data, size, flags, &v, NULL, 0) == 0) {
        stt_buf_t w1 = STT_BUF_INIT, w2 = STT_BUF_INIT;
        stt_json_write(&w1, &v);
        stt_json_t v2;
        if (stt_json_parse_opts(&a, w1.base, w1.len, flags, &v2, NULL, 0) != 0) abort();
        stt_json_write(&w2, &v2);
        if (w1.len != w2.len || memcmp(w1.base, w2.base, w1.len) != 0) abort();
        stt_buf_free(&w1);
        stt_buf_free(&w2);
    }
    stt_arena_free(&a);
    return 0;
}
