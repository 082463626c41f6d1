/* Unit tests for src/common/json.c: parse -> write round trips (numbers and strings
 * byte-exact, members in order with duplicates), rejection of malformed JSON, bad
 * UTF-8 and unpaired surrogate escapes, the two validators on their own, the
 * accessors, and a bounded deterministic fuzz loop over mutated documents.
 *
 * Each test walks a table of numbered cases; a failure names its case. Run one test
 * alone by naming it: test_json roundtrip_cases */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "src/common/json.h"
#include "src/common/err.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A literal and its length, so inputs may hold NUL bytes. */
#define S(lit) lit, sizeof(lit) - 1
#define NCASES(t) (sizeof(t) / sizeof((t)[0]))

/* Parses text and writes it back compactly into out; returns the parse code. */
static int reparse(stt_arena_t *a, const char *text, size_t len, stt_json_t *v, stt_buf_t *out)
{
    int rc = stt_json_parse(a, text, len, v, NULL, 0);
    if (rc == 0) stt_json_write(out, v);
    return rc;
}

/* Prints bytes for a failure message: printable ASCII as is, the rest as \xNN. */
static const char *show(const char *s, size_t len)
{
    static char buf[4][512];
    static int next;
    char *o = buf[next++ & 3];
    size_t n = 0;
    for (size_t i = 0; i < len && n + 5 < sizeof(buf[0]); i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f)
            o[n++] = (char)c;
        else
            n += (size_t)snprintf(o + n, 5, "\\x%02x", c);
    }
    o[n] = '\0';
    return o;
}

/* ---------------------------------------------------------------------------------
 * Round trips
 * --------------------------------------------------------------------------------- */

static void roundtrip_cases(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t inlen;
        const char *want; /* exact bytes of stt_json_write */
    } cases[] = {
        /* 1 */ {S("{}"), "{}"},
        /* 2 */ {S("[]"), "[]"},
        /* 3 */ {S(" { \n } "), "{}"},
        /* 4 */ {S("[ \t ]"), "[]"},
        /* 5 */ {S("null"), "null"},
        /* 6 */ {S("true"), "true"},
        /* 7 */ {S("false"), "false"},
        /* numbers keep their text */
        /* 8 */ {S("0"), "0"},
        /* 9 */ {S("-0"), "-0"},
        /* 10 */ {S("0.1"), "0.1"},
        /* 11 */ {S("1e400"), "1e400"},
        /* 12 */ {S("1E2"), "1E2"},
        /* 13 */ {S("-1.5e-10"), "-1.5e-10"},
        /* 14 */ {S("12345678901234567890"), "12345678901234567890"},
        /* 15 */ {S("123456789012345678901234567890"), "123456789012345678901234567890"},
        /* 16 */ {S("[1e+5,1E-0,0.0,-0.0,2.50,1.000]"), "[1e+5,1E-0,0.0,-0.0,2.50,1.000]"},
        /* 17 */
        {S("[-1,-0.5,1.7976931348623157e308,5e-324,4.9e-325]"), "[-1,-0.5,1.7976931348623157e308,5e-324,4.9e-325]"},
        /* 18 */ {S("  42  "), "42"},
        /* strings: escapes decoded, then written back as CouchDB writes them */
        /* 19 */ {S("\"abc\""), "\"abc\""},
        /* 20 */ {S("\"\""), "\"\""},
        /* 21 */ {S("\"\\n\\t\\\"\\\\\\/\\b\\f\\r\""), "\"\\n\\t\\\"\\\\/\\b\\f\\r\""},
        /* 22 */ {S("\"\\u0000\""), "\"\\u0000\""},
        /* 23 */ {S("\"\\u00e9\""), "\"\xc3\xa9\""},
        /* 24 */ {S("\"\\u00E9\""), "\"\xc3\xa9\""},
        /* 25 */ {S("\"\\ud83d\\ude00\""), "\"\xf0\x9f\x98\x80\""},
        /* 26 */ {S("\"\\uD83D\\uDE00\""), "\"\xf0\x9f\x98\x80\""},
        /* 27 */
        {S("\"\xc3\xa9 \xc3\xbc \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80\""),
         "\"\xc3\xa9 \xc3\xbc \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80\""},
        /* 28 */ {S("\"\\u0001\\u001f\\u007f\""), "\"\\u0001\\u001f\x7f\""},
        /* 29 */ {S("\"\\u000b\""), "\"\\u000b\""},
        /* 30 */ {S("\"\\u0008\\u000c\\u000a\\u000d\\u0009\""), "\"\\b\\f\\n\\r\\t\""},
        /* 31 */ {S("\"\\u0022\\u005c\\u002f\""), "\"\\\"\\\\/\""},
        /* 32 */ {S("\"\\u0041\\u0062\""), "\"Ab\""},
        /* 33 */ {S("\"\\\\u0041\""), "\"\\\\u0041\""}, /* an escaped backslash, then text */
        /* 34 */ {S("\"a\\/b\""), "\"a/b\""},
        /* 35 */ {S("\"\\ud800\\udc00\""), "\"\xf0\x90\x80\x80\""},
        /* 36 */ {S("\"\\udbff\\udfff\""), "\"\xf4\x8f\xbf\xbf\""},
        /* 37 */ {S("\"\\u0080\\u07ff\\u0800\\uffff\""), "\"\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\""},
        /* 38 */ {S("\"\\ufeff\\u2028\\u2029\""), "\"\xef\xbb\xbf\xe2\x80\xa8\xe2\x80\xa9\""},
        /* 39 */ {S("\"a\177b\""), "\"a\177b\""},
        /* 40 */ {S("\"x\" "), "\"x\""},
        /* objects keep member order; of a duplicated key only the last occurrence stays,
         * where it was (CouchDB's dedupe_keys) */
        /* 41 */ {S("{\"b\":1,\"a\":2}"), "{\"b\":1,\"a\":2}"},
        /* 42 */ {S("{\"a\":1,\"a\":2,\"a\":[]}"), "{\"a\":[]}"},
        /* 43 */ {S("{\"a\\nb\":\"c\\u0000d\"}"), "{\"a\\nb\":\"c\\u0000d\"}"},
        /* 44 */ {S("{\"\\u00e9\":1}"), "{\"\xc3\xa9\":1}"},
        /* 45 */ {S("{\"\":\"\"}"), "{\"\":\"\"}"},
        /* 46 */
        {S("[[[]],[{}],{\"a\":{\"b\":{\"c\":[1,[2,[3]]]}}}]"), "[[[]],[{}],{\"a\":{\"b\":{\"c\":[1,[2,[3]]]}}}]"},
        /* 47 */ {S(" \t\r\n{ \"a\" : [ 1 , 2 ] ,\"b\":{ } } \n"), "{\"a\":[1,2],\"b\":{}}"},
        /* 48 */ {S("[null,true,false,0,\"\",[],{}]"), "[null,true,false,0,\"\",[],{}]"},
        /* 49 */
        {S("{\"_id\":\"doc\",\"_rev\":\"1-abc\",\"n\":1.50,\"x\":{\"y\":[true]}}"),
         "{\"_id\":\"doc\",\"_rev\":\"1-abc\",\"n\":1.50,\"x\":{\"y\":[true]}}"},
        /* 50 */ {S("[\"\\\"\",\"\\\\\",\"/\"]"), "[\"\\\"\",\"\\\\\",\"/\"]"},
        /* 51 */ {S("{\"a\":\"first\",\"b\":1,\"a\":\"second\"}"), "{\"b\":1,\"a\":\"second\"}"},
        /* 52 */
        {S("{\"x\":{\"y\":1,\"y\":2},\"x\":{\"z\":1,\"z\":[{\"q\":1,\"q\":0}]}}"), "{\"x\":{\"z\":[{\"q\":0}]}}"},
        /* 53 */ /* keys that differ only past a NUL or in length are different keys */
        {S("{\"k\\u0000a\":1,\"k\\u0000b\":2,\"k\":3,\"k\\u0000a\":4}"), "{\"k\\u0000b\":2,\"k\":3,\"k\\u0000a\":4}"},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        stt_arena_t a = STT_ARENA_INIT;
        stt_buf_t out = STT_BUF_INIT;
        stt_json_t v;
        char err[64] = "";
        int rc = stt_json_parse(&a, cases[i].in, cases[i].inlen, &v, err, sizeof err);
        if (rc != 0) fail_msg("case %zu: %s rejected (%d, %s)", i + 1, show(cases[i].in, cases[i].inlen), rc, err);
        stt_json_write(&out, &v);
        size_t wlen = strlen(cases[i].want);
        if (out.len != wlen || memcmp(out.base, cases[i].want, wlen) != 0)
            fail_msg("case %zu: wrote %s, expected %s", i + 1, show(out.base, out.len), show(cases[i].want, wlen));
        /* what the writer emits parses back to the same bytes */
        stt_buf_t again = STT_BUF_INIT;
        stt_json_t w;
        if (reparse(&a, out.base, out.len, &w, &again) != 0)
            fail_msg("case %zu: output %s does not parse", i + 1, show(out.base, out.len));
        if (again.len != out.len || memcmp(again.base, out.base, out.len) != 0 || !stt_json_equal(&v, &w))
            fail_msg("case %zu: second round trip differs: %s", i + 1, show(again.base, again.len));
        stt_buf_free(&again);
        stt_buf_free(&out);
        stt_arena_free(&a);
    }
}

/* The DOM itself: types, lengths and bytes, NULs inside strings and keys. */
static void dom_cases(void **state)
{
    (void)state;
    stt_arena_t a = STT_ARENA_INIT;
    stt_json_t v;

    /* 1: "\u0000" survives inside a string, and len counts it */
    assert_int_equal(stt_json_parse(&a, S("\"a\\u0000b\""), &v, NULL, 0), 0);
    assert_int_equal(v.type, STT_JSON_STRING);
    assert_int_equal(v.len, 3);
    assert_memory_equal(v.u.s, "a\0b", 4); /* and the copy is NUL-terminated */

    /* 2: a key with a NUL, and a number keeps its text */
    assert_int_equal(stt_json_parse(&a, S("{\"k\\u0000\":1e400,\"z\":[]}"), &v, NULL, 0), 0);
    assert_int_equal(v.type, STT_JSON_OBJECT);
    assert_int_equal(v.len, 2);
    assert_int_equal(v.u.members[0].keylen, 2);
    assert_memory_equal(v.u.members[0].key, "k\0", 3);
    assert_int_equal(v.u.members[0].val.type, STT_JSON_NUMBER);
    assert_int_equal(v.u.members[0].val.len, 5);
    assert_string_equal(v.u.members[0].val.u.s, "1e400");
    assert_int_equal(v.u.members[1].val.type, STT_JSON_ARRAY);
    assert_int_equal(v.u.members[1].val.len, 0);

    /* 3: arrays count items; many items grow the scratch vectors past their first size */
    stt_buf_t big = STT_BUF_INIT;
    stt_buf_appendc(&big, '[');
    for (int i = 0; i < 1000; i++)
        stt_buf_appendf(&big, "%s{\"i\":%d}", i ? "," : "", i);
    stt_buf_appendc(&big, ']');
    assert_int_equal(stt_json_parse(&a, big.base, big.len, &v, NULL, 0), 0);
    assert_int_equal(v.type, STT_JSON_ARRAY);
    assert_int_equal(v.len, 1000);
    int64_t n = -1;
    assert_int_equal(stt_json_int(stt_json_get(&v.u.items[999], "i"), &n), 0);
    assert_int_equal(n, 999);
    stt_buf_t out = STT_BUF_INIT;
    stt_json_write(&out, &v);
    assert_int_equal(out.len, big.len);
    assert_memory_equal(out.base, big.base, big.len);
    stt_buf_free(&out);
    stt_buf_free(&big);

    /* 4: the string builder and the writer agree */
    stt_json_t s = stt_json_str(&a, S("q\"\\\x01"));
    assert_int_equal(s.type, STT_JSON_STRING);
    assert_int_equal(s.len, 4);
    stt_json_write(&out, &s);
    assert_string_equal(out.base, "\"q\\\"\\\\\\u0001\"");
    stt_buf_free(&out);
    stt_arena_free(&a);
}

/* Every byte through the string writer: only '"', '\\' and controls are escaped. */
static void writer_escapes(void **state)
{
    (void)state;
    static const char *named[32] = {['\b'] = "\\b", ['\f'] = "\\f", ['\n'] = "\\n", ['\r'] = "\\r", ['\t'] = "\\t"};
    for (int c = 0; c < 256; c++) {
        char in = (char)c, want[16];
        if (c < 0x20 && named[c])
            snprintf(want, sizeof want, "\"%s\"", named[c]);
        else if (c < 0x20)
            snprintf(want, sizeof want, "\"\\u%04x\"", c);
        else if (c == '"' || c == '\\')
            snprintf(want, sizeof want, "\"\\%c\"", c);
        else
            snprintf(want, sizeof want, "\"%c\"", c);
        stt_buf_t out = STT_BUF_INIT;
        stt_buf_appends(&out, "pre"); /* the writer appends */
        stt_json_write_str(&out, &in, 1);
        if (out.len != 3 + strlen(want) || memcmp(out.base, "pre", 3) || memcmp(out.base + 3, want, strlen(want)))
            fail_msg("byte 0x%02x: wrote %s, expected %s", c, show(out.base, out.len), want);
        stt_buf_free(&out);
    }
    /* runs between escapes are copied whole */
    stt_buf_t out = STT_BUF_INIT;
    stt_json_write_cstr(&out, "ab\ncd\"ef");
    assert_string_equal(out.base, "\"ab\\ncd\\\"ef\"");
    stt_buf_reset(&out);
    stt_json_write_str(&out, "", 0);
    assert_string_equal(out.base, "\"\"");
    stt_buf_free(&out);
}

/* ---------------------------------------------------------------------------------
 * Rejections
 * --------------------------------------------------------------------------------- */

static void reject_cases(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t len;
    } cases[] = {
        /* 1 */ {S("")},
        /* 2 */ {S("   \n")},
        /* trailing commas, comments, quotes, words JSON does not have */
        /* 3 */ {S("[1,]")},
        /* 4 */ {S("{\"a\":1,}")},
        /* 5 */ {S("[,1]")},
        /* 6 */ {S("{,}")},
        /* 7 */ {S("/* c */ {}")},
        /* 8 */ {S("{} // c")},
        /* 9 */ {S("{'a':1}")},
        /* 10 */ {S("['a']")},
        /* 11 */ {S("NaN")},
        /* 12 */ {S("[Infinity]")},
        /* 13 */ {S("-Infinity")},
        /* 14 */ {S("tru")},
        /* 15 */ {S("True")},
        /* 16 */ {S("nul")},
        /* numbers */
        /* 17 */ {S("01")},
        /* 18 */ {S("[01]")},
        /* 19 */ {S("-01")},
        /* 20 */ {S("+1")},
        /* 21 */ {S(".5")},
        /* 22 */ {S("1.")},
        /* 23 */ {S("1e")},
        /* 24 */ {S("1e+")},
        /* 25 */ {S("-")},
        /* 26 */ {S("--1")},
        /* 27 */ {S("0x10")},
        /* unterminated, unbalanced, trailing garbage, two values */
        /* 28 */ {S("\"abc")},
        /* 29 */ {S("[1")},
        /* 30 */ {S("{\"a\":1")},
        /* 31 */ {S("{\"a\"")},
        /* 32 */ {S("{\"a\":")},
        /* 33 */ {S("\"\\u0000")},
        /* 34 */ {S("{} x")},
        /* 35 */ {S("{} {}")},
        /* 36 */ {S("1 2")},
        /* 37 */ {S("\"a\" \"b\"")},
        /* 38 */ {S("{\"a\":1}}")},
        /* 39 */ {S("[1]]")},
        /* 40 */ {S("[}")},
        /* 41 */ {S("{]")},
        /* 42 */ {S("]")},
        /* 43 */ {S("{\"a\"}")},
        /* 44 */ {S("{\"a\" 1}")},
        /* 45 */ {S("{1:2}")},
        /* 46 */ {S("[1 2]")},
        /* 47 */ {S("{}\0")},
        /* 48 */ {S("\0")},
        /* bare control characters and bad escapes inside strings */
        /* 49 */ {S("\"a\tb\"")},
        /* 50 */ {S("\"a\nb\"")},
        /* 51 */ {S("\"a\0b\"")},
        /* 52 */ {S("\"\x1f\"")},
        /* 53 */ {S("{\"a\rb\":1}")},
        /* 54 */ {S("\"\\x\"")},
        /* 55 */ {S("\"\\u12\"")},
        /* 56 */ {S("\"\\u12G4\"")},
        /* 57 */ {S("\"\\\"")},
        /* 58 */ {S("\"\\U00e9\"")},
        /* invalid UTF-8 */
        /* 59 */ {S("\"\x80\"")},
        /* 60 */ {S("\"\xbf\"")},
        /* 61 */ {S("\"\xc0\xaf\"")},
        /* 62 */ {S("\"\xc1\xbf\"")},
        /* 63 */ {S("\"\xe0\x80\xaf\"")},
        /* 64 */ {S("\"\xf0\x80\x80\xaf\"")},
        /* 65 */ {S("\"\xed\xa0\x80\"")},
        /* 66 */ {S("\"\xed\xbf\xbf\"")},
        /* 67 */ {S("\"\xf4\x90\x80\x80\"")},
        /* 68 */ {S("\"\xf5\x80\x80\x80\"")},
        /* 69 */ {S("\"\xf8\x88\x80\x80\x80\"")},
        /* 70 */ {S("\"\xfe\"")},
        /* 71 */ {S("\"\xff\"")},
        /* 72 */ {S("\"\xc3\"")},
        /* 73 */ {S("\"\xe2\x82\"")},
        /* 74 */ {S("[\"a\",\"\xf0\x9f\x98")},
        /* 75 */ {S("\"abc\xc3")},
        /* 76 */ {S("{\"\xc3\x28\":1}")},
        /* 77 */ {S("\xef\xbb\xbf{}")},
        /* 78 */ {S("{}\xff")},
        /* unpaired surrogate escapes */
        /* 79 */ {S("\"\\ud800\"")},
        /* 80 */ {S("\"\\udc00\"")},
        /* 81 */ {S("\"\\udfff\"")},
        /* 82 */ {S("\"\\ud800x\"")},
        /* 83 */ {S("\"\\ud800\\u0041\"")},
        /* 84 */ {S("\"\\ud800\\ud800\"")},
        /* 85 */ {S("\"\\udc00\\ud800\"")},
        /* 86 */ {S("{\"\\ud800\":1}")},
        /* 87 */ {S("\"\\\\\\ud800\"")},
        /* 88 */ {S("\"\\ud800\\\\udc00\"")},
        /* 89 */ {S("\"\\ud800\\udc0\"")},
        /* 90 */ {S("\"\\ud800")},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        stt_arena_t a = STT_ARENA_INIT;
        stt_json_t v = {.type = STT_JSON_TRUE, .len = 77};
        char err[64] = "";
        int rc = stt_json_parse(&a, cases[i].in, cases[i].len, &v, err, sizeof err);
        if (rc != STT_E_BAD_JSON)
            fail_msg("case %zu: %s gave %d, expected STT_E_BAD_JSON", i + 1, show(cases[i].in, cases[i].len), rc);
        if (v.type != STT_JSON_TRUE || v.len != 77) fail_msg("case %zu: the output was written on failure", i + 1);
        if (err[0] == '\0') fail_msg("case %zu: no error message", i + 1);
        /* and without a place for the message */
        if (stt_json_parse(&a, cases[i].in, cases[i].len, &v, NULL, 0) != STT_E_BAD_JSON)
            fail_msg("case %zu: accepted without errbuf", i + 1);
        stt_arena_free(&a);
    }

    /* an empty body may arrive as a NULL pointer */
    stt_arena_t a = STT_ARENA_INIT;
    stt_json_t v;
    assert_int_equal(stt_json_parse(&a, NULL, 0, &v, NULL, 0), STT_E_BAD_JSON);
    stt_arena_free(&a);
}

/* Which check failed shows in the message. */
static void reject_messages(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t len;
        const char *msg;
    } cases[] = {
        /* 1 */ {S("\"\xff\""), "invalid UTF-8"},
        /* 2 */ {S("\"\\ud800\""), "invalid escape (unpaired surrogate)"},
        /* 3 */ {S("[1,]"), "invalid JSON"},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        stt_arena_t a = STT_ARENA_INIT;
        stt_json_t v;
        char err[64];
        assert_int_equal(stt_json_parse(&a, cases[i].in, cases[i].len, &v, err, sizeof err), STT_E_BAD_JSON);
        if (strcmp(err, cases[i].msg) != 0)
            fail_msg("case %zu: message \"%s\", expected \"%s\"", i + 1, err, cases[i].msg);
        /* a short buffer is truncated, never overrun */
        char tiny[4];
        assert_int_equal(stt_json_parse(&a, cases[i].in, cases[i].len, &v, tiny, sizeof tiny), STT_E_BAD_JSON);
        assert_int_equal(strlen(tiny), 3);
        stt_arena_free(&a);
    }
}

/* Nesting up to STT_JSON_MAX_DEPTH parses; one more level is refused, arrays or
 * objects, closed or not, and nothing leaks from the half-built stack. */
static void depth_limit(void **state)
{
    (void)state;
    static const struct {
        const char *open, *core, *close; /* core: the innermost value */
        int depth;
        int closed;
        int ok;
    } cases[] = {
        /* 1 */ {"[", "", "]", STT_JSON_MAX_DEPTH, 1, 1},
        /* 2 */ {"[", "", "]", STT_JSON_MAX_DEPTH + 1, 1, 0},
        /* 3 */ {"{\"a\":", "{}", "}", STT_JSON_MAX_DEPTH - 1, 1, 1},
        /* 4 */ {"{\"a\":", "{}", "}", STT_JSON_MAX_DEPTH, 1, 0},
        /* 5 */ {"[{\"k\":", "0", "}]", STT_JSON_MAX_DEPTH / 2, 1, 1},
        /* 6 */ {"[{\"k\":", "[]", "}]", STT_JSON_MAX_DEPTH / 2, 1, 0},
        /* 7 */ {"[", "", "", 100000, 0, 0},
        /* 8 */ {"[1,", "2", "]", STT_JSON_MAX_DEPTH, 1, 1}, /* siblings in the scratch vectors too */
        /* 9 */ {"[1,", "2", "]", STT_JSON_MAX_DEPTH + 1, 1, 0},
        /* 10 */ {"{\"a\":", "", "", STT_JSON_MAX_DEPTH + 1, 0, 0},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        stt_buf_t in = STT_BUF_INIT;
        for (int d = 0; d < cases[i].depth; d++)
            stt_buf_appends(&in, cases[i].open);
        stt_buf_appends(&in, cases[i].core);
        for (int d = 0; cases[i].closed && d < cases[i].depth; d++)
            stt_buf_appends(&in, cases[i].close);
        stt_arena_t a = STT_ARENA_INIT;
        stt_json_t v;
        char err[64] = "";
        int rc = stt_json_parse(&a, in.base, in.len, &v, err, sizeof err);
        if (cases[i].ok) {
            if (rc != 0) fail_msg("case %zu: depth %d rejected (%s)", i + 1, cases[i].depth, err);
            stt_buf_t out = STT_BUF_INIT;
            stt_json_write(&out, &v);
            if (out.len != in.len || memcmp(out.base, in.base, in.len) != 0)
                fail_msg("case %zu: deep document does not round-trip", i + 1);
            stt_json_t w;
            assert_int_equal(stt_json_parse(&a, out.base, out.len, &w, NULL, 0), 0);
            assert_true(stt_json_equal(&v, &w));
            stt_buf_free(&out);
        } else {
            if (rc != STT_E_JSON_DEPTH)
                fail_msg("case %zu: depth %d gave %d, expected STT_E_JSON_DEPTH", i + 1, cases[i].depth, rc);
            if (cases[i].closed && strcmp(err, "too deeply nested") != 0)
                fail_msg("case %zu: message \"%s\"", i + 1, err);
        }
        stt_arena_free(&a);
        stt_buf_free(&in);
    }
}

/* ---------------------------------------------------------------------------------
 * Validators on their own
 * --------------------------------------------------------------------------------- */

/* Well-formed UTF-8 per the Unicode standard's table 3-7, written independently of
 * stt_utf8_validate so the two can be compared. */
static int ref_utf8_ok(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n;
        unsigned lo = 0x80, hi = 0xBF;
        if (c <= 0x7F) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
        } else if (c == 0xE0) {
            n = 2, lo = 0xA0;
        } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
            n = 2;
        } else if (c == 0xED) {
            n = 2, hi = 0x9F;
        } else if (c == 0xF0) {
            n = 3, lo = 0x90;
        } else if (c >= 0xF1 && c <= 0xF3) {
            n = 3;
        } else if (c == 0xF4) {
            n = 3, hi = 0x8F;
        } else {
            return 0;
        }
        if (len - i < n + 1 || s[i + 1] < lo || s[i + 1] > hi) return 0;
        for (size_t k = 2; k <= n; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF) return 0;
        i += n + 1;
    }
    return 1;
}

static void utf8_cases(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t len;
        int ok;
    } cases[] = {
        /* 1 */ {S(""), 1},
        /* 2 */ {S("abc"), 1},
        /* 3 */ {S("a\0b"), 1},
        /* 4 */ {S("\x7f"), 1},
        /* 5 */ {S("\xc2\x80"), 1},
        /* 6 */ {S("\xdf\xbf"), 1},
        /* 7 */ {S("\xe0\xa0\x80"), 1},
        /* 8 */ {S("\xed\x9f\xbf"), 1}, /* U+D7FF, just below the surrogates */
        /* 9 */ {S("\xee\x80\x80"), 1}, /* U+E000, just above */
        /* 10 */ {S("\xef\xbf\xbf"), 1},
        /* 11 */ {S("\xf0\x90\x80\x80"), 1},
        /* 12 */ {S("\xf0\x9f\x98\x80"), 1},
        /* 13 */ {S("\xf3\xbf\xbf\xbf"), 1},
        /* 14 */ {S("\xf4\x8f\xbf\xbf"), 1}, /* U+10FFFF */
        /* 15 */ {S("0123456789abcdef\xf0\x9f\x98\x80"), 1},
        /* 16 */ {S("01234567\xc3\xa9\x30\x31\x32\x33\x34\x35\x36\x37\xe6\x97\xa5"), 1},
        /* 17 */ {S("\x80"), 0},
        /* 18 */ {S("\xbf"), 0},
        /* 19 */ {S("\xc0\xaf"), 0},
        /* 20 */ {S("\xc1\xbf"), 0},
        /* 21 */ {S("\xe0\x80\xaf"), 0},
        /* 22 */ {S("\xe0\x9f\xbf"), 0},
        /* 23 */ {S("\xf0\x80\x80\xaf"), 0},
        /* 24 */ {S("\xf0\x8f\xbf\xbf"), 0},
        /* 25 */ {S("\xed\xa0\x80"), 0},
        /* 26 */ {S("\xed\xbf\xbf"), 0},
        /* 27 */ {S("\xed\xa0\xbd\xed\xb8\x80"), 0}, /* CESU-8 pair */
        /* 28 */ {S("\xf4\x90\x80\x80"), 0},
        /* 29 */ {S("\xf5\x80\x80\x80"), 0},
        /* 30 */ {S("\xf7\xbf\xbf\xbf"), 0},
        /* 31 */ {S("\xf8\x88\x80\x80\x80"), 0},
        /* 32 */ {S("\xfc\x84\x80\x80\x80\x80"), 0},
        /* 33 */ {S("\xfe"), 0},
        /* 34 */ {S("\xff"), 0},
        /* 35 */ {S("\xc3"), 0},
        /* 36 */ {S("\xe2\x82"), 0},
        /* 37 */ {S("\xf0\x9f\x98"), 0},
        /* 38 */ {S("\xc3\x28"), 0},
        /* 39 */ {S("\xe2\x28\xa1"), 0},
        /* 40 */ {S("\xf0\x9f\x28\x80"), 0},
        /* 41 */ {S("\xc3\xa9\xa9"), 0},
        /* 42 */ {S("01234567\x80"), 0},        /* right after the 8-byte fast path */
        /* 43 */ {S("0123456789abcde\xc3"), 0}, /* truncated at the very end */
        /* 44 */ {S("abcdefg\xe2\x82\xac\x80"), 0},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        int rc = stt_utf8_validate(cases[i].s, cases[i].len);
        if ((rc == 0) != cases[i].ok)
            fail_msg("case %zu: %s gave %d, expected %s", i + 1, show(cases[i].s, cases[i].len), rc,
                     cases[i].ok ? "valid" : "invalid");
        if (ref_utf8_ok((const unsigned char *)cases[i].s, cases[i].len) != cases[i].ok)
            fail_msg("case %zu: the reference disagrees with the table", i + 1);
    }

    /* every code point U+0000..U+10FFFF encodes to something valid; every surrogate
     * encodes to something invalid */
    for (unsigned cp = 0; cp <= 0x10FFFF; cp++) {
        unsigned char e[4];
        size_t n;
        if (cp < 0x80)
            e[0] = (unsigned char)cp, n = 1;
        else if (cp < 0x800)
            e[0] = (unsigned char)(0xC0 | cp >> 6), e[1] = (unsigned char)(0x80 | (cp & 63)), n = 2;
        else if (cp < 0x10000)
            e[0] = (unsigned char)(0xE0 | cp >> 12), e[1] = (unsigned char)(0x80 | ((cp >> 6) & 63)),
            e[2] = (unsigned char)(0x80 | (cp & 63)), n = 3;
        else
            e[0] = (unsigned char)(0xF0 | cp >> 18), e[1] = (unsigned char)(0x80 | ((cp >> 12) & 63)),
            e[2] = (unsigned char)(0x80 | ((cp >> 6) & 63)), e[3] = (unsigned char)(0x80 | (cp & 63)), n = 4;
        int want = !(cp >= 0xD800 && cp <= 0xDFFF);
        if ((stt_utf8_validate((const char *)e, n) == 0) != want)
            fail_msg("U+%04X: validate disagrees (expected %s)", cp, want ? "valid" : "invalid");
    }

    /* every 1- and 2-byte string, and random longer ones, against the reference */
    for (unsigned x = 0; x < 0x10000; x++) {
        unsigned char t[2] = {(unsigned char)(x >> 8), (unsigned char)x};
        for (size_t n = 1; n <= 2; n++) {
            const unsigned char *p = n == 1 ? t + 1 : t;
            if ((stt_utf8_validate((const char *)p, n) == 0) != ref_utf8_ok(p, n))
                fail_msg("%s: validate disagrees with the reference", show((const char *)p, n));
        }
    }
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    static const unsigned char pick[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf,
                                         0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff};
    for (int it = 0; it < 20000; it++) {
        unsigned char t[24];
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        size_t n = (size_t)(seed >> 59) + 1; /* 1..32, clamped below */
        if (n > sizeof t) n = sizeof t;
        for (size_t k = 0; k < n; k++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            t[k] = pick[(seed >> 33) % sizeof pick];
        }
        if ((stt_utf8_validate((const char *)t, n) == 0) != ref_utf8_ok(t, n))
            fail_msg("iteration %d: %s: validate disagrees with the reference", it, show((const char *)t, n));
    }
}

static void escape_cases(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t len;
        int ok;
    } cases[] = {
        /* 1 */ {S(""), 1},
        /* 2 */ {S("\"plain\""), 1},
        /* 3 */ {S("\"\\n\\t\\\"\\/\""), 1},
        /* 4 */ {S("\"\\u0041\""), 1},
        /* 5 */ {S("\"\\ud83d\\ude00\""), 1},
        /* 6 */ {S("\"\\uD83D\\uDE00\""), 1},
        /* 7 */ {S("\"\\udbff\\udfff\""), 1},
        /* 8 */ {S("\"\\ud7ff\\ue000\""), 1},
        /* 9 */ {S("\"\\\\u\""), 1},      /* an escaped backslash, then a plain u */
        /* 10 */ {S("\"\\\\ud800\""), 1}, /* the same: the text "\ud800", no escape */
        /* 11 */ {S("\"\\\\\\\\\""), 1},  /* two escaped backslashes */
        /* 12 */ {S("[\"\\\\\",\"\\u00e9\"]"), 1},
        /* 13 */ {S("\"\\ud800\""), 0},
        /* 14 */ {S("\"\\udbff\""), 0},
        /* 15 */ {S("\"\\udc00\""), 0},
        /* 16 */ {S("\"\\udfff\""), 0},
        /* 17 */ {S("\"\\ud800x\""), 0},
        /* 18 */ {S("\"\\ud800\\u0041\""), 0},
        /* 19 */ {S("\"\\ud800\\ud800\""), 0},
        /* 20 */ {S("\"\\ud800\\n\""), 0},
        /* 21 */ {S("\"\\\\\\ud800\""), 0},      /* an escaped backslash, then a real escape */
        /* 22 */ {S("\"\\ud800\\\\udc00\""), 0}, /* the low half is text, not an escape */
        /* 23 */ {S("\\ud800"), 0},              /* at the very end */
        /* 24 */ {S("\"\\ud800\\udc0"), 0},      /* the low half cut short */
        /* 25 */ {S("\"\\ud800\\u"), 0},
        /* 26 */ {S("\"\\u12"), 0},
        /* 27 */ {S("\"\\uzzzz\""), 0},
        /* 28 */ {S("\"\\"), 0},
        /* 29 */ {S("\\"), 0},
        /* 30 */ {S("\"\\ude00\\ud83d\""), 0}, /* pair in the wrong order */
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        int rc = stt_json_check_escapes(cases[i].s, cases[i].len);
        if ((rc == 0) != cases[i].ok)
            fail_msg("case %zu: %s gave %d, expected %s", i + 1, show(cases[i].s, cases[i].len), rc,
                     cases[i].ok ? "fine" : "rejected");
    }
}

/* ---------------------------------------------------------------------------------
 * Accessors
 * --------------------------------------------------------------------------------- */

static void get_cases(void **state)
{
    (void)state;
    static const char doc[] = "{\"a\":1,\"b\":\"x\",\"a\":2,\"\":3,\"ab\":4,\"k\\u0000z\":5,\"\\u00e9\":6}";
    static const struct {
        const char *key;
        size_t keylen;
        const char *want; /* written value, or NULL when absent */
    } cases[] = {
        /* 1 */ {S("a"), "2"}, /* the last of duplicates: the only one kept */
        /* 2 */ {S("b"), "\"x\""},
        /* 3 */ {S(""), "3"},
        /* 4 */ {S("ab"), "4"},
        /* 5 */ {S("k\0z"), "5"},
        /* 6 */ {S("k"), NULL},
        /* 7 */ {S("\xc3\xa9"), "6"},
        /* 8 */ {S("A"), NULL},
        /* 9 */ {S("abc"), NULL},
        /* 10 */ {S("a\0"), NULL},
    };
    stt_arena_t a = STT_ARENA_INIT;
    stt_json_t v;
    assert_int_equal(stt_json_parse(&a, doc, sizeof doc - 1, &v, NULL, 0), 0);
    for (size_t i = 0; i < NCASES(cases); i++) {
        const stt_json_t *g = stt_json_getn(&v, cases[i].key, cases[i].keylen);
        if (!cases[i].want) {
            if (g) fail_msg("case %zu: found a member, expected none", i + 1);
        } else {
            if (!g) fail_msg("case %zu: member not found", i + 1);
            stt_buf_t out = STT_BUF_INIT;
            stt_json_write(&out, g);
            if (strcmp(out.base, cases[i].want) != 0)
                fail_msg("case %zu: value %s, expected %s", i + 1, out.base, cases[i].want);
            stt_buf_free(&out);
        }
        /* stt_json_get is getn with strlen: the same answer for keys without NULs */
        if (memchr(cases[i].key, '\0', cases[i].keylen) == NULL &&
            stt_json_get(&v, cases[i].key) != stt_json_getn(&v, cases[i].key, cases[i].keylen))
            fail_msg("case %zu: get and getn disagree", i + 1);
    }
    /* not an object: nothing to find */
    stt_json_t arr;
    assert_int_equal(stt_json_parse(&a, S("[\"a\",1]"), &arr, NULL, 0), 0);
    assert_null(stt_json_get(&arr, "a"));
    assert_null(stt_json_get(NULL, "a"));
    assert_null(stt_json_getn(&v.u.members[0].val, "a", 1));
    /* the little predicates */
    assert_true(stt_json_is_str(stt_json_get(&v, "b")));
    assert_false(stt_json_is_str(stt_json_get(&v, "a")));
    assert_false(stt_json_is_str(NULL));
    stt_json_t t;
    assert_int_equal(stt_json_parse(&a, S("true"), &t, NULL, 0), 0);
    assert_true(stt_json_is_true(&t));
    assert_false(stt_json_is_true(stt_json_get(&v, "a")));
    assert_false(stt_json_is_true(NULL));
    stt_arena_free(&a);
}

static void int_cases(void **state)
{
    (void)state;
    static const struct {
        const char *text; /* JSON text of the value */
        int ok;
        int64_t want;
    } cases[] = {
        /* 1 */ {"0", 1, 0},
        /* 2 */ {"-0", 1, 0},
        /* 3 */ {"42", 1, 42},
        /* 4 */ {"-42", 1, -42},
        /* 5 */ {"9223372036854775807", 1, INT64_MAX},
        /* 6 */ {"-9223372036854775808", 1, INT64_MIN},
        /* 7 */ {"9223372036854775808", 0, 0},
        /* 8 */ {"-9223372036854775809", 0, 0},
        /* 9 */ {"18446744073709551615", 0, 0},
        /* 10 */ {"18446744073709551616", 0, 0},
        /* 11 */ {"99999999999999999999", 0, 0},
        /* 12 */ {"-99999999999999999999", 0, 0},
        /* 13 */ {"123456789012345678901234567890", 0, 0},
        /* 14 */ {"1.0", 0, 0},
        /* 15 */ {"1e2", 0, 0},
        /* 16 */ {"1E2", 0, 0},
        /* 17 */ {"-1.5e-10", 0, 0},
        /* 18 */ {"0.5", 0, 0},
        /* 19 */ {"\"1\"", 0, 0},
        /* 20 */ {"true", 0, 0},
        /* 21 */ {"null", 0, 0},
        /* 22 */ {"[1]", 0, 0},
        /* 23 */ {"1000000000000000000", 1, 1000000000000000000LL},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        stt_arena_t a = STT_ARENA_INIT;
        stt_json_t v;
        if (stt_json_parse(&a, cases[i].text, strlen(cases[i].text), &v, NULL, 0) != 0)
            fail_msg("case %zu: %s does not parse", i + 1, cases[i].text);
        int64_t n = 12345;
        int rc = stt_json_int(&v, &n);
        if (cases[i].ok && (rc != 0 || n != cases[i].want))
            fail_msg("case %zu: %s gave rc %d, %lld", i + 1, cases[i].text, rc, (long long)n);
        if (!cases[i].ok && (rc != -1 || n != 12345))
            fail_msg("case %zu: %s accepted as %lld (or the output was written)", i + 1, cases[i].text, (long long)n);
        stt_arena_free(&a);
    }
    /* values not made by the parser */
    int64_t n;
    assert_int_equal(stt_json_int(NULL, &n), -1);
    stt_json_t empty = {.type = STT_JSON_NUMBER, .len = 0, .u.s = ""};
    assert_int_equal(stt_json_int(&empty, &n), -1);
    stt_json_t minus = {.type = STT_JSON_NUMBER, .len = 1, .u.s = "-"};
    assert_int_equal(stt_json_int(&minus, &n), -1);
}

static void equal_cases(void **state)
{
    (void)state;
    static const struct {
        const char *a;
        size_t alen;
        const char *b;
        size_t blen;
        bool eq;
    } cases[] = {
        /* 1 */ {S("1"), S("1.0"), true},
        /* 2 */ {S("1"), S("1e0"), true},
        /* 3 */ {S("100"), S("1E2"), true},
        /* 4 */ {S("-0"), S("0"), true},
        /* 5 */ {S("0.1"), S("1e-1"), true},
        /* 6 */ {S("1"), S("2"), false},
        /* 7 */ {S("1"), S("\"1\""), false},
        /* 8 */ {S("null"), S("null"), true},
        /* 9 */ {S("true"), S("false"), false},
        /* 10 */ {S("null"), S("false"), false},
        /* 11 */ {S("\"a\""), S("\"a\""), true},
        /* 12 */ {S("\"\xc3\xa9\""), S("\"\\u00e9\""), true},
        /* 13 */ {S("\"a\\u0000b\""), S("\"a\\u0000c\""), false},
        /* 14 */ {S("\"a\""), S("\"a\\u0000\""), false},
        /* 15 */ {S("\"a\""), S("\"A\""), false},
        /* 16 */ {S("{\"a\":1,\"b\":2}"), S("{\"a\":1,\"b\":2}"), true},
        /* 17 */ {S("{\"a\":1,\"b\":2}"), S("{\"b\":2,\"a\":1}"), false},
        /* 18 */ {S("{\"a\":1}"), S("{\"a\":1.0}"), true},
        /* 19 */ {S("{\"a\":1}"), S("{\"b\":1}"), false},
        /* 20 */ {S("{\"a\":1}"), S("{\"a\":2,\"a\":1}"), true}, /* one member once parsed */
        /* 21 */ {S("{\"a\":1}"), S("{\"a\\u0000\":1}"), false},
        /* 22 */ {S("[1,2]"), S("[1,2,3]"), false},
        /* 23 */ {S("[1,2]"), S("[2,1]"), false},
        /* 24 */ {S("[]"), S("{}"), false},
        /* 25 */ {S("[]"), S("[]"), true},
        /* 26 */ {S("{}"), S("{}"), true},
        /* 27 */ {S("[{\"a\":[1,{\"b\":null}]}]"), S("[{\"a\":[1.00,{\"b\":null}]}]"), true},
        /* 28 */ {S("[{\"a\":[1,{\"b\":null}]}]"), S("[{\"a\":[1,{\"b\":false}]}]"), false},
        /* 29 */ {S("\"1\""), S("\"1.0\""), false},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        stt_arena_t a = STT_ARENA_INIT;
        stt_json_t x, y;
        if (stt_json_parse(&a, cases[i].a, cases[i].alen, &x, NULL, 0) ||
            stt_json_parse(&a, cases[i].b, cases[i].blen, &y, NULL, 0))
            fail_msg("case %zu: does not parse", i + 1);
        if (stt_json_equal(&x, &y) != cases[i].eq || stt_json_equal(&y, &x) != cases[i].eq)
            fail_msg("case %zu: %s vs %s, expected %s", i + 1, cases[i].a, cases[i].b,
                     cases[i].eq ? "equal" : "unequal");
        if (!stt_json_equal(&x, &x)) fail_msg("case %zu: not equal to itself", i + 1);
        stt_arena_free(&a);
    }
}

/* ---------------------------------------------------------------------------------
 * Fuzz
 * --------------------------------------------------------------------------------- */

static uint64_t rng_state;
static uint32_t rnd(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rng_state >> 33);
}

/* Mutated valid documents: each one is rejected with STT_E_BAD_JSON, or parses and
 * its output parses back to the same output. Deterministic: a failure names its
 * iteration, and the same seed reproduces it. */
static void fuzz_mutations(void **state)
{
    (void)state;
    static const char *const seeds[] = {
        "{\"_id\":\"doc\",\"_rev\":\"1-967a00dff5e02add41819138abb3284d\",\"n\":[1,-0,0.1,1e400,1E2]}",
        "[\"a\\n\\t\\\"\\\\\\/\\b\\f\\r\",\"\\u0000\\u00e9\\ud83d\\ude00\",\"\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80\"]",
        "{\"a\":{\"b\":{\"c\":[[],{},null,true,false]}},\"a\":2,\"\":\"\"}",
        "[123456789012345678901234567890,-1.5e-10,9223372036854775807,-9223372036854775808]",
        "{\"_attachments\":{\"x.txt\":{\"content_type\":\"text/plain\",\"data\":\"aGVsbG8=\"}}}",
        " { \"k\" : [ 1 , 2 , { \"z\" : \"\\\\u0041\" } ] } ",
        "\"\\ud800\\udc00\\udbff\\udfff\\u0001\"",
        "[[[[[[[[[[0]]]]]]]]]]",
    };
    /* bytes that steer mutations into the interesting corners */
    static const char pool[] = "{}[]\":,\\u/0123456789abcdefABCDEF-+.eE ntfl\x80\xbf\xc3\xed\xf0\xf4\xff";
    enum { ITERS = 20000, MAXLEN = 256 };
    rng_state = 20240601;
    int accepted = 0, rejected = 0;
    for (int it = 0; it < ITERS; it++) {
        char doc[MAXLEN + 8];
        const char *seed = seeds[rnd() % NCASES(seeds)];
        size_t len = strlen(seed);
        memcpy(doc, seed, len);
        int nmut = 1 + (int)(rnd() % 3);
        for (int m = 0; m < nmut; m++) {
            size_t at = len ? rnd() % len : 0;
            switch (rnd() % 6) {
            case 0: /* bit flip */
                if (len) doc[at] = (char)(doc[at] ^ (1u << (rnd() % 8)));
                break;
            case 1: /* overwrite with a pool byte */
                if (len) doc[at] = pool[rnd() % (sizeof pool - 1)];
                break;
            case 2: /* insert a byte */
                if (len < MAXLEN) {
                    memmove(doc + at + 1, doc + at, len - at);
                    doc[at] = rnd() % 2 ? pool[rnd() % (sizeof pool - 1)] : (char)rnd();
                    len++;
                }
                break;
            case 3: /* delete a byte */
                if (len) {
                    memmove(doc + at, doc + at + 1, len - at - 1);
                    len--;
                }
                break;
            case 4: /* truncate */
                len = at;
                break;
            case 5: /* duplicate a slice in place */
            {
                size_t n = len - at < 8 ? len - at : 8;
                if (len + n <= MAXLEN) {
                    memmove(doc + at + n, doc + at, len - at);
                    len += n;
                }
                break;
            }
            }
        }
        stt_arena_t a = STT_ARENA_INIT;
        stt_json_t v, w;
        stt_buf_t out1 = STT_BUF_INIT, out2 = STT_BUF_INIT;
        int rc = reparse(&a, doc, len, &v, &out1);
        if (rc == 0) {
            accepted++;
            if (reparse(&a, out1.base, out1.len, &w, &out2) != 0)
                fail_msg("iteration %d: %s parsed, but its output %s does not", it, show(doc, len),
                         show(out1.base, out1.len));
            if (out1.len != out2.len || memcmp(out1.base, out2.base, out1.len) != 0 || !stt_json_equal(&v, &w))
                fail_msg("iteration %d: %s wrote %s, then %s", it, show(doc, len), show(out1.base, out1.len),
                         show(out2.base, out2.len));
            /* what is accepted is valid UTF-8 without unpaired surrogates */
            if (stt_utf8_validate(doc, len) != 0 || stt_json_check_escapes(doc, len) != 0)
                fail_msg("iteration %d: %s accepted past the validators", it, show(doc, len));
        } else {
            rejected++;
            if (rc != STT_E_BAD_JSON) fail_msg("iteration %d: %s gave %d", it, show(doc, len), rc);
        }
        stt_buf_free(&out1);
        stt_buf_free(&out2);
        stt_arena_free(&a);
    }
    print_message("    fuzz: %d of %d mutated documents parsed, %d rejected\n", accepted, ITERS, rejected);
    /* both outcomes happen often, or the loop tests little */
    assert_true(accepted > ITERS / 20);
    assert_true(rejected > ITERS / 20);
}

/* Objects too large for the pairwise duplicate scan go through the sorted one: the
 * same rule (last occurrence kept, at its place), member order otherwise untouched. */
static void dedupe_large(void **state)
{
    (void)state;
    static const struct {
        int nkeys; /* k0 .. k(n-1), each with value its index */
        int every; /* then every this-many-th key again, value -index */
    } cases[] = {
        /* 1 */ {17, 1},
        /* 2 */ {1000, 3},
        /* 3 */ {5000, 4999},
        /* 4 */ {40, 0}, /* no duplicates */
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        stt_buf_t in = STT_BUF_INIT, want = STT_BUF_INIT, out = STT_BUF_INIT;
        stt_buf_appendc(&in, '{');
        stt_buf_appendc(&want, '{');
        char m[48];
        for (int k = 0; k < cases[i].nkeys; k++) {
            bool dup = cases[i].every && k % cases[i].every == 0;
            snprintf(m, sizeof m, "%s\"k%d\":%d", k ? "," : "", k, k);
            stt_buf_appends(&in, m);
            if (!dup) {
                snprintf(m, sizeof m, "%s\"k%d\":%d", want.len > 1 ? "," : "", k, k);
                stt_buf_appends(&want, m);
            }
        }
        for (int k = 0; cases[i].every && k < cases[i].nkeys; k += cases[i].every) {
            snprintf(m, sizeof m, ",\"k%d\":%d", k, -k);
            stt_buf_appends(&in, m);
            snprintf(m, sizeof m, "%s\"k%d\":%d", want.len > 1 ? "," : "", k, -k);
            stt_buf_appends(&want, m);
        }
        stt_buf_appendc(&in, '}');
        stt_buf_appendc(&want, '}');
        stt_arena_t a = STT_ARENA_INIT;
        stt_json_t v;
        assert_int_equal(stt_json_parse(&a, in.base, in.len, &v, NULL, 0), 0);
        stt_json_write(&out, &v);
        if (out.len != want.len || memcmp(out.base, want.base, out.len) != 0)
            fail_msg("case %zu: wrote %.200s..., expected %.200s...", i + 1, out.base, want.base);
        stt_arena_free(&a);
        stt_buf_free(&in);
        stt_buf_free(&want);
        stt_buf_free(&out);
    }
}

/* ====================================================================================
 * Registry */

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(roundtrip_cases), cmocka_unit_test(dom_cases),       cmocka_unit_test(writer_escapes),
        cmocka_unit_test(reject_cases),    cmocka_unit_test(reject_messages), cmocka_unit_test(depth_limit),
        cmocka_unit_test(utf8_cases),      cmocka_unit_test(escape_cases),    cmocka_unit_test(get_cases),
        cmocka_unit_test(int_cases),       cmocka_unit_test(equal_cases),     cmocka_unit_test(fuzz_mutations),
        cmocka_unit_test(dedupe_large),
    };
    if (argc > 1) {
        char filter[256];
        snprintf(filter, sizeof(filter), "*%s*", argv[1]);
        cmocka_set_test_filter(filter);
    }
    return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
