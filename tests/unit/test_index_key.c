/* Unit tests for index/collate.c, the byte encoding of view keys: memcmp of two
 * encodings must be CouchDB's view collation (the order CouchDB 3.4.3 gave
 * for its own collation test values, couchdb-golden/views.jsonl collation_*),
 * equal keys must encode equal, and "collation": "raw" must follow Erlang's
 * term order.
 *
 * Each test walks a table of numbered cases; a failure names its case. Run one test
 * alone by naming it: test_index_key default_order */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "index/index.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NCASES(t) (sizeof(t) / sizeof((t)[0]))

static stt_json_t parse(stt_arena_t *a, const char *text)
{
    stt_json_t v;
    if (stt_json_parse(a, text, strlen(text), &v, NULL, 0) != 0) fail_msg("bad JSON in table: %s", text);
    return v;
}

/* <0, 0, >0 as memcmp of the two encodings, shorter first on a tie */
static int enc_cmp(const char *x, const char *y, bool raw)
{
    stt_arena_t a = STT_ARENA_INIT;
    stt_json_t jx = parse(&a, x), jy = parse(&a, y);
    stt_buf_t bx = STT_BUF_INIT, by = STT_BUF_INIT;
    stt_key_encode(&bx, &jx, raw);
    stt_key_encode(&by, &jy, raw);
    size_t n = bx.len < by.len ? bx.len : by.len;
    int c = n ? memcmp(bx.base, by.base, n) : 0;
    if (c == 0) c = bx.len < by.len ? -1 : bx.len > by.len;
    stt_buf_free(&bx);
    stt_buf_free(&by);
    stt_arena_free(&a);
    return c < 0 ? -1 : c > 0;
}

/* CouchDB 3.4.3's ascending order of the collation values (views.jsonl
 * collation_all), each strictly after the one before. */
static const char *const default_order_keys[] = {
    "null",
    "false",
    "true",
    "-10",
    "-1.5",
    "-1",
    "0",
    "0.5",
    "1",
    "1.5",
    "2",
    "3",
    "4",
    "1000",
    "1000.5",
    "\"\\u0000\"",
    "\" \"",
    "\"\\u00a0\"",
    "\"_\"",
    "\"!\"",
    "\"~\"",
    "\"\\ud83d\\ude00\"",
    "\"0\"",
    "\"1\"",
    "\"10\"",
    "\"2\"",
    "\"9\"",
    "\"a\"",
    "\"A\"",
    "\"\\u00e4\"",
    "\"a b\"",
    "\"a-b\"",
    "\"aa\"",
    "\"aA\"",
    "\"Aa\"",
    "\"AA\"",
    "\"ab\"",
    "\"ab-\"",
    "\"\\u00e6\"",
    "\"b\"",
    "\"B\"",
    "\"ba\"",
    "\"bb\"",
    "\"c\"",
    "\"\\u00e7\"",
    "\"d\"",
    "\"e\"",
    "\"E\"",
    "\"\\u00e9\"",
    "\"\\u00c9\"",
    "\"\\u00e8\"",
    "\"\\u00ea\"",
    "\"f\"",
    "\"fi\"",
    "\"\\ufb01\"",
    "\"ss\"",
    "\"\\u00df\"",
    "\"z\"",
    "\"Z\"",
    "\"\\u03c9\"",
    "\"\\u03a9\"",
    "\"\\u044f\"",
    "\"\\u4e2d\"",
    "\"\\u65e5\\u672c\"",
    "[]",
    "[null]",
    "[1]",
    "[\"a\"]",
    "[\"A\"]",
    "[\"b\"]",
    "[\"b\",\"c\"]",
    "[\"b\",\"c\",\"a\"]",
    "[\"b\",\"d\"]",
    "[\"b\",\"d\",\"e\"]",
    "[[]]",
    "[{}]",
    "{}",
    "{\"a\":1}",
    "{\"a\":2}",
    "{\"a\":[]}",
    "{\"A\":1}",
    "{\"b\":1}",
    "{\"b\":2}",
    "{\"b\":2,\"a\":1}",
    "{\"b\":2,\"c\":2}",
};

static void default_order(void **state)
{
    (void)state;
    for (size_t i = 1; i < NCASES(default_order_keys); i++) {
        const char *x = default_order_keys[i - 1], *y = default_order_keys[i];
        if (enc_cmp(x, y, false) >= 0) fail_msg("case %zu: %s should sort before %s", i, x, y);
        if (enc_cmp(y, x, false) <= 0) fail_msg("case %zu: %s should sort after %s", i, y, x);
    }
}

/* Keys CouchDB holds equal (one group): same bytes. */
static void default_equal(void **state)
{
    (void)state;
    static const struct {
        const char *x, *y;
    } cases[] = {
        /* 1 */ {"0", "0.0"},
        /* 2 */ {"0", "-0"},
        /* 3 */ {"3", "3.0"},
        /* 4 */ {"1000", "1e3"},
        /* 5 */ {"\"\"", "\"\\u0000\""},
        /* 6 */ {"[0,\"a\"]", "[0.0,\"a\"]"},
        /* 7 */ {"{\"a\":1}", "{\"a\":1.0}"},
    };
    for (size_t i = 0; i < NCASES(cases); i++)
        if (enc_cmp(cases[i].x, cases[i].y, false) != 0) fail_msg("case %zu: %s != %s", i + 1, cases[i].x, cases[i].y);
}

/* A longer key that starts like a shorter one sorts after it, also when the
 * container ends (the end marker is below every type tag). */
static void prefixes(void **state)
{
    (void)state;
    static const struct {
        const char *lo, *hi;
    } cases[] = {
        /* 1 */ {"[\"a\"]", "[\"a\",null]"},
        /* 2 */ {"[\"a\"]", "[\"a\",[]]"},
        /* 3 */ {"[[\"a\"],\"z\"]", "[[\"a\",1],\"a\"]"},
        /* 4 */ {"{\"a\":1}", "{\"a\":1,\"b\":null}"},
        /* 5 */ {"[1]", "[1,{}]"}, /* the usual "endkey":[1,{}] covers every [1, ...] */
        /* 6 */ {"[1,\"zzz\",[9]]", "[1,{}]"},
        /* 7 */ {"\"a\"", "\"ab\""},
        /* 8 */ {"[\"a\",\"b\"]", "[\"ab\"]"},
    };
    for (size_t i = 0; i < NCASES(cases); i++)
        if (enc_cmp(cases[i].lo, cases[i].hi, false) >= 0)
            fail_msg("case %zu: %s should sort before %s", i + 1, cases[i].lo, cases[i].hi);
}

/* Random doubles: the 8-byte encoding orders them as numbers. */
static void numbers_random(void **state)
{
    (void)state;
    uint64_t s = 88172645463325252ULL;
    for (int i = 0; i < 20000; i++) {
        double d[2];
        char t[2][40];
        for (int k = 0; k < 2; k++) {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            int e = (int)(s % 40) - 20;
            d[k] = ((double)(int64_t)(s >> 11) / (double)(1ULL << 52)) * pow(10, e);
            snprintf(t[k], sizeof(t[k]), "%.17g", d[k]);
            d[k] = strtod(t[k], NULL);
        }
        int want = d[0] < d[1] ? -1 : d[0] > d[1];
        if (enc_cmp(t[0], t[1], false) != want) fail_msg("case %d: %s vs %s", i + 1, t[0], t[1]);
    }
}

/* Sort keys longer than the encoder's stack buffer. */
static void long_strings(void **state)
{
    (void)state;
    char a[4100], b[4100];
    a[0] = b[0] = '"';
    memset(a + 1, 'x', 4000);
    memset(b + 1, 'x', 4000);
    strcpy(a + 4001, "\"");
    strcpy(b + 4001, "y\"");
    assert_int_equal(enc_cmp(a, b, false), -1);
    assert_int_equal(enc_cmp(a, a, false), 0);
}

/* "collation": "raw" as CouchDB 3.4.3 answered it (collation_raw): numbers <
 * false < null < true < objects < arrays < strings by bytes. */
static const char *const raw_order_keys[] = {
    "-10",       "-1.5",      "0",          "1000.5", "false", "null",         "true",   "{}",          "{\"A\":1}",
    "{\"a\":1}", "{\"a\":2}", "{\"a\":[]}", "[]",     "[1]",   "[null]",       "[{}]",   "[[]]",        "[\"A\"]",
    "[\"a\"]",   "\"\"",      "\"A\"",      "\"B\"",  "\"a\"", "\"a\\u0000\"", "\"ab\"", "\"\\u00e4\"",
};

static void raw_order(void **state)
{
    (void)state;
    for (size_t i = 1; i < NCASES(raw_order_keys); i++) {
        const char *x = raw_order_keys[i - 1], *y = raw_order_keys[i];
        if (enc_cmp(x, y, true) >= 0) fail_msg("case %zu: %s should sort before %s (raw)", i, x, y);
    }
}

/* stt_key_cmp agrees with the encodings and is antisymmetric. */
static void cmp_agrees(void **state)
{
    (void)state;
    stt_arena_t a = STT_ARENA_INIT;
    size_t n = NCASES(default_order_keys);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j += 7) {
            stt_json_t x = parse(&a, default_order_keys[i]), y = parse(&a, default_order_keys[j]);
            int c = stt_key_cmp(&x, &y, false), d = stt_key_cmp(&y, &x, false);
            int want = i < j ? -1 : i > j;
            if ((c > 0) - (c < 0) != want || (d > 0) - (d < 0) != -want)
                fail_msg("case %zu/%zu: %s vs %s", i, j, default_order_keys[i], default_order_keys[j]);
        }
    stt_arena_free(&a);
}

/* Builtin reduces are named by prefix, as couch_query_servers matches them. */
static void builtin_reduce_names(void **state)
{
    (void)state;
    static const struct {
        const char *src, *want;
    } cases[] = {
        /* 0 */ {"_sum", "_sum"},
        /* 1 */ {"_sum\n \r\nandothergarbage", "_sum"},
        /* 2 */ {"_count", "_count"},
        /* 3 */ {"_countries", "_count"},
        /* 4 */ {"_stats!", "_stats"},
        /* 5 */ {"_approx_count_distinct", "_approx_count_distinct"},
        /* 6 */ {"_approx_count", NULL},
        /* 7 */ {"_product", NULL},
        /* 8 */ {"_su", NULL},
        /* 9 */ {"function(k, v) { return sum(v); }", NULL},
        /* 10 */ {"", NULL},
        /* 11 */ {" _sum", NULL},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        const char *got = stt_reduce_builtin_of(cases[i].src);
        if (got != cases[i].want && (!got || !cases[i].want || strcmp(got, cases[i].want) != 0))
            fail_msg("case %zu: %s gave %s", i, cases[i].src, got ? got : "NULL");
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(default_order),  cmocka_unit_test(default_equal),        cmocka_unit_test(prefixes),
        cmocka_unit_test(numbers_random), cmocka_unit_test(long_strings),         cmocka_unit_test(raw_order),
        cmocka_unit_test(cmp_agrees),     cmocka_unit_test(builtin_reduce_names),
    };
    if (argc > 1) {
        char filter[256];
        snprintf(filter, sizeof(filter), "*%s*", argv[1]);
        cmocka_set_test_filter(filter);
    }
    return cmocka_run_group_tests_name("index_key", tests, NULL, NULL);
}
