/* CouchDB's view collation as bytes: an encoding of JSON keys whose memcmp
 * order is the order couch_ejson_compare gives, so that a key range is one
 * LevelDB scan and equal keys (0 and 0.0, "" and "\u0000") encode equal.
 *
 * Layout (default collation):
 *
 * | value   | bytes                                                        |
 * |---------|--------------------------------------------------------------|
 * | null    | 0x02                                                         |
 * | false   | 0x03                                                         |
 * | true    | 0x04                                                         |
 * | number  | 0x05, 8 bytes: the double, sign-flipped so bytes sort as it  |
 * | string  | 0x06, ICU root-collator sort key (no 0x00 inside), 0x00      |
 * | array   | 0x07, each item, 0x00                                        |
 * | object  | 0x08, per member: key as a string, value; then 0x00          |
 *
 * The 0x00 that ends a container is below every type tag, so [a] < [a, b] and
 * {} < {"a": ..}. Strings end with the sort key's own 0x00, below any byte of a
 * longer key. The sort key is ICU's tertiary-strength UCA (lower case before
 * upper, accents after their base letter, ignorable code points such as U+0000
 * ignored), as CouchDB's NIF uses the root collator.
 *
 * "collation": "raw" follows Erlang's term order, which CouchDB uses then:
 * numbers < atoms (false < null < true) < objects (tuples) < arrays (lists) <
 * strings (binaries, by bytes). Raw strings escape 0x00/0x01 as 0x01 0x01/0x01 0x02.
 *
 * Numbers are compared as doubles: integers past 2^53 that differ only in low
 * bits encode equal (CouchDB compares them exactly; such keys are rare). */
#include "index/index.h"
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unicode/ucol.h>
#include <unicode/ustring.h>

enum { T_END = 0x00, T_NULL = 0x02, T_FALSE, T_TRUE, T_NUM, T_STR, T_ARR, T_OBJ };
enum { R_NUM = 0x02, R_FALSE, R_NULL, R_TRUE, R_OBJ, R_ARR, R_STR };

/* One collator per thread: ucol_getSortKey on a shared one is safe, but
 * opening per thread keeps ICU's internal caches uncontended. */
static __thread UCollator *tl_coll;
/* closes a thread's collator when the thread ends (replication jobs come and go) */
static pthread_key_t coll_key;
static pthread_once_t coll_once = PTHREAD_ONCE_INIT;

static void coll_close(void *c)
{
    ucol_close(c);
}

static void coll_key_make(void)
{
    pthread_key_create(&coll_key, coll_close);
}

static UCollator *collator(void)
{
    if (!tl_coll) {
        UErrorCode st = U_ZERO_ERROR;
        tl_coll = ucol_open("", &st);
        if (U_FAILURE(st)) abort();
        pthread_once(&coll_once, coll_key_make);
        pthread_setspecific(coll_key, tl_coll);
    }
    return tl_coll;
}

static void put_number(stt_buf_t *out, const stt_json_t *v)
{
    double d = strtod(v->u.s, NULL);
    if (d == 0) d = 0; /* -0 and 0 are one key */
    if (isnan(d)) d = 0;
    uint64_t bits;
    memcpy(&bits, &d, 8);
    bits = (bits & (1ULL << 63)) ? ~bits : bits | (1ULL << 63);
    stt_buf_append_be64(out, bits);
}

static void put_icu_string(stt_buf_t *out, const char *s, size_t len)
{
    UChar stackbuf[256], *u = stackbuf;
    int32_t ulen = 0;
    UErrorCode st = U_ZERO_ERROR;
    u_strFromUTF8Lenient(u, 256, &ulen, s, (int32_t)len, &st);
    if (st == U_BUFFER_OVERFLOW_ERROR) {
        u = stt_xmalloc(((size_t)ulen + 1) * sizeof(UChar));
        st = U_ZERO_ERROR;
        u_strFromUTF8Lenient(u, ulen + 1, &ulen, s, (int32_t)len, &st);
    }
    if (U_FAILURE(st)) ulen = 0;
    UCollator *c = collator();
    uint8_t kb[512];
    int32_t n = ucol_getSortKey(c, u, ulen, kb, sizeof(kb));
    if (n > (int32_t)sizeof(kb)) {
        stt_buf_reserve(out, (size_t)n);
        n = ucol_getSortKey(c, u, ulen, (uint8_t *)out->base + out->len, n);
        out->len += (size_t)n; /* includes ICU's terminating 0x00 */
        out->base[out->len] = '\0';
    } else {
        stt_buf_append(out, kb, (size_t)n);
    }
    if (u != stackbuf) free(u);
}

static void put_raw_string(stt_buf_t *out, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 1) {
            stt_buf_appendc(out, 1);
            stt_buf_appendc(out, (char)(c + 1));
        } else {
            stt_buf_appendc(out, (char)c);
        }
    }
    stt_buf_appendc(out, 0);
}

static void encode(stt_buf_t *out, const stt_json_t *v, bool raw)
{
    switch (v->type) {
    case STT_JSON_NULL:
        stt_buf_appendc(out, raw ? R_NULL : T_NULL);
        return;
    case STT_JSON_FALSE:
        stt_buf_appendc(out, raw ? R_FALSE : T_FALSE);
        return;
    case STT_JSON_TRUE:
        stt_buf_appendc(out, raw ? R_TRUE : T_TRUE);
        return;
    case STT_JSON_NUMBER:
        stt_buf_appendc(out, raw ? R_NUM : T_NUM);
        put_number(out, v);
        return;
    case STT_JSON_STRING:
        stt_buf_appendc(out, raw ? R_STR : T_STR);
        if (raw)
            put_raw_string(out, v->u.s, v->len);
        else
            put_icu_string(out, v->u.s, v->len);
        return;
    case STT_JSON_ARRAY:
        stt_buf_appendc(out, raw ? R_ARR : T_ARR);
        for (uint32_t i = 0; i < v->len; i++)
            encode(out, &v->u.items[i], raw);
        stt_buf_appendc(out, T_END);
        return;
    case STT_JSON_OBJECT:
        stt_buf_appendc(out, raw ? R_OBJ : T_OBJ);
        for (uint32_t i = 0; i < v->len; i++) {
            const stt_json_member_t *m = &v->u.members[i];
            stt_buf_appendc(out, raw ? R_STR : T_STR);
            if (raw)
                put_raw_string(out, m->key, m->keylen);
            else
                put_icu_string(out, m->key, m->keylen);
            encode(out, &m->val, raw);
        }
        stt_buf_appendc(out, T_END);
        return;
    }
}

void stt_key_encode(stt_buf_t *out, const stt_json_t *key, bool raw)
{
    encode(out, key, raw);
}

int stt_key_cmp(const stt_json_t *a, const stt_json_t *b, bool raw)
{
    stt_buf_t x = STT_BUF_INIT, y = STT_BUF_INIT;
    encode(&x, a, raw);
    encode(&y, b, raw);
    size_t n = x.len < y.len ? x.len : y.len;
    int c = memcmp(x.base, y.base, n);
    if (c == 0) c = x.len < y.len ? -1 : x.len > y.len;
    stt_buf_free(&x);
    stt_buf_free(&y);
    return c;
}
