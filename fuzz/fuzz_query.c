/* The request target as h2o hands it over: '%' escapes checked, path split into
 * segments, query string into parameters, all percent-decoded; then `since` and the
 * integer and boolean readers on every parameter value. Input: the raw target. */
#include "src/http/http.h"
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    const char *p = (const char *)data;
    uint64_t seq;
    stt_seq_parse(p, size, 42, &seq);
    if (!stt__escapes_valid(p, size)) return 0;
    const char *qm = memchr(p, '?', size);
    stt_hreq_t r;
    memset(&r, 0, sizeof(r));
    stt__parse_target(&r, p, size, qm ? (size_t)(qm - p) : SIZE_MAX);
    if (r.nseg > STT_MAX_SEGS) abort();
    size_t total = 0;
    for (size_t i = 0; i < r.nseg; i++)
        total += r.seg[i].len;
    if (total > size) abort();
    for (size_t i = 0; i < r.nq; i++) {
        const stt_qparam_t *q = &r.q[i];
        if (q->val[q->vallen] != '\0' || q->key[q->keylen] != '\0') abort();
        if (q->keylen + q->vallen > size) abort();
        stt_seq_parse(q->val, q->vallen, 7, &seq);
        /* the last of a repeated key wins */
        char key[64];
        if (q->keylen < sizeof(key) && !memchr(q->key, '\0', q->keylen)) {
            memcpy(key, q->key, q->keylen + 1);
            const stt_qparam_t *got = stt_q_get(&r, key);
            if (!got || got < q) abort();
        }
    }
    stt_arena_free(&r.arena);
    return 0;
}
