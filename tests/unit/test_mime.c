/* Unit tests for src/http/mime.c: boundary and parameter extraction, splitting
 * multipart bodies (CouchDB's own layouts, hand-made ones, binary bodies that
 * hold CRLFs and boundary look-alikes, truncated and malformed ones), header
 * lookup inside a part, safe header values and gunzip.
 *
 * Each test walks a table of numbered cases; a failure names its case. The .c is
 * included to reach its statics. Run one test alone by naming it:
 * test_mime parse_cases */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "src/http/mime.c"
#include "src/common/codec.h"
#include <stdio.h>
#include <stdlib.h>
#include <zlib.h>

#define LEN(s) (sizeof(s) - 1)

/* ---------------------------------------------------------------------------------
 * Boundary and parameters
 * --------------------------------------------------------------------------------- */

static void boundary_cases(void **state)
{
    (void)state;
    static char long200[256], long201[256];
    memcpy(long200, "multipart/related; boundary=", 28);
    memset(long200 + 28, 'x', 200);
    long200[228] = '\0';
    memcpy(long201, long200, 228);
    long201[228] = 'x';
    long201[229] = '\0';
    static const struct {
        const char *ctype;
        const char *want; /* NULL: -1 */
    } cases[] = {
        /* 1 */ {"multipart/related; boundary=\"abc\"", "abc"},
        /* 2 */ {"multipart/related; boundary=abc", "abc"},
        /* 3 */ {"multipart/related;boundary=abc;charset=utf-8", "abc"},
        /* 4 */ {"multipart/mixed; charset=\"a;boundary=x\"; boundary=real", "real"},
        /* 5 */ {"Multipart/Related; BOUNDARY=\"Q\"", "Q"},
        /* 6 */ {"multipart/related; xboundary=no", NULL},
        /* 7 */ {"multipart/related", NULL},
        /* 8 */ {"multipart/related; boundary=", NULL},
        /* 9 */ {"multipart/related; boundary=\"\"", NULL},
        /* 10 */ {"multipart/related; boundary=\"unterminated", NULL},
        /* 11 */ {"multipart/related; boundary = \"spaced\" ", "spaced"},
        /* 12 */ {"multipart/related; boundary=\"a\\\"b\"", NULL},
        /* 13 */ {"multipart/related; boundary=\"a b\"", "a b"},
        /* 14 */ {"multipart/related; type=application/json; boundary=9f8e; start=x", "9f8e"},
        /* 15 */ {long200, long200 + 28},
        /* 16 */ {long201, NULL},
        /* 17 */ {"", NULL},
        /* 18 */ {"boundary=abc", NULL}, /* the media type comes first: no parameter here */
        /* 19 */ {"multipart/related; ; boundary=z", "z"},
        /* 20 */ {"multipart/related; novalue; boundary=\"z;z\"", "z;z"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *b = NULL;
        size_t blen = 0;
        int rc = stt_mime_boundary(cases[i].ctype, strlen(cases[i].ctype), &b, &blen);
        if (!cases[i].want) {
            if (rc != -1) fail_msg("case %zu: boundary \"%.*s\" found, expected none", i + 1, (int)blen, b);
            continue;
        }
        if (rc != 0) fail_msg("case %zu: no boundary, expected \"%s\"", i + 1, cases[i].want);
        if (blen != strlen(cases[i].want) || memcmp(b, cases[i].want, blen) != 0)
            fail_msg("case %zu: boundary \"%.*s\", expected \"%s\"", i + 1, (int)blen, b, cases[i].want);
    }
}

static void param_cases(void **state)
{
    (void)state;
    static const struct {
        const char *hval, *name;
        const char *want; /* NULL: -1 */
    } cases[] = {
        /* 1 */ {"attachment; filename=\"a b.txt\"", "filename", "a b.txt"},
        /* 2 */ {"attachment; filename=plain.bin", "filename", "plain.bin"},
        /* 3 */ {"attachment;filename=\"x\\\"y\"", "filename", "x\\\"y"}, /* escapes kept as written */
        /* 4 */ {"attachment; FileName=\"sub/dir/f.bin\"", "filename", "sub/dir/f.bin"},
        /* 5 */ {"attachment", "filename", NULL},
        /* 6 */ {"attachment; name=\"f\"", "filename", NULL},
        /* 7 */ {"attachment; filename*=UTF-8''x", "filename", NULL},
        /* 8 */ {"application/json; error=\"true\"", "error", "true"},
        /* 9 */ {"attachment; filename=\"\xc3\xa9t\xc3\xa9.txt\"", "filename", "\xc3\xa9t\xc3\xa9.txt"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *v = NULL;
        size_t vlen = 0;
        int rc = stt_mime_param(cases[i].hval, strlen(cases[i].hval), cases[i].name, &v, &vlen);
        if (!cases[i].want) {
            if (rc != -1) fail_msg("case %zu: \"%.*s\" found, expected none", i + 1, (int)vlen, v);
            continue;
        }
        if (rc != 0 || vlen != strlen(cases[i].want) || memcmp(v, cases[i].want, vlen) != 0)
            fail_msg("case %zu: rc %d \"%.*s\", expected \"%s\"", i + 1, rc, rc ? 0 : (int)vlen, v ? v : "",
                     cases[i].want);
    }
}

/* ---------------------------------------------------------------------------------
 * Parsing
 * --------------------------------------------------------------------------------- */

typedef struct {
    const char *headers; /* expected header block */
    const char *body;    /* expected body bytes */
    size_t len;          /* body length (binary bodies hold NULs) */
} want_part_t;

#define MAXPARTS 4
/* clang-format off */
#define P(h, b) {h, b, LEN(b)}
/* clang-format on */

/* CouchDB 3.4.3's doc_get_multipart_related answer (golden), attachment bytes
 * binary with a NUL and a CRLF inside. */
static const char couch_related[] = "--8a4f\r\n"
                                    "Content-Type: application/json\r\n"
                                    "\r\n"
                                    "{\"_id\":\"adoc\",\"_attachments\":{\"data.bin\":{\"follows\":true}}}\r\n"
                                    "--8a4f\r\n"
                                    "Content-Disposition: attachment; filename=\"data.bin\"\r\n"
                                    "Content-Type: application/octet-stream\r\n"
                                    "Content-Length: 9\r\n"
                                    "\r\n"
                                    "\0\1bi\r\nry?\r\n"
                                    "--8a4f--";

/* An open_revs answer: a missing rev, a plain doc, a nested related part. */
static const char couch_mixed[] = "--out\r\n"
                                  "Content-Type: application/json; error=\"true\"\r\n"
                                  "\r\n"
                                  "{\"missing\":\"9-f\"}\r\n"
                                  "--out\r\n"
                                  "Content-Type: application/json\r\n"
                                  "\r\n"
                                  "{\"_id\":\"d\"}\r\n"
                                  "--out\r\n"
                                  "Content-Type: multipart/related; boundary=\"in\"\r\n"
                                  "\r\n"
                                  "--in\r\n"
                                  "Content-Type: application/json\r\n"
                                  "\r\n"
                                  "{}\r\n"
                                  "--in\r\n"
                                  "Content-Disposition: attachment; filename=\"a\"\r\n"
                                  "\r\n"
                                  "AB\r\n"
                                  "--in--\r\n"
                                  "--out--";

static void parse_cases(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        size_t len;
        const char *boundary;
        int rc;
        size_t nparts;
        want_part_t parts[MAXPARTS];
    } cases[] = {
        /* 1: CouchDB's related layout, binary body with CRLF and NUL */
        {couch_related,
         LEN(couch_related),
         "8a4f",
         0,
         2,
         {P("Content-Type: application/json\r\n",
            "{\"_id\":\"adoc\",\"_attachments\":{\"data.bin\":{\"follows\":true}}}"),
          P("Content-Disposition: attachment; filename=\"data.bin\"\r\nContent-Type: "
            "application/octet-stream\r\nContent-Length: 9\r\n",
            "\0\1bi\r\nry?")}},
        /* 2: open_revs mixed; the nested part stays whole */
        {couch_mixed,
         LEN(couch_mixed),
         "out",
         0,
         3,
         {P("Content-Type: application/json; error=\"true\"\r\n", "{\"missing\":\"9-f\"}"),
          P("Content-Type: application/json\r\n", "{\"_id\":\"d\"}"),
          P("Content-Type: multipart/related; boundary=\"in\"\r\n",
            "--in\r\nContent-Type: application/json\r\n\r\n{}\r\n--in\r\nContent-Disposition: attachment; "
            "filename=\"a\"\r\n\r\nAB\r\n--in--")}},
        /* 3: preamble and epilogue are ignored */
        {"preamble\r\n--b\r\nX: 1\r\n\r\nbody\r\n--b--\r\nepilogue", 0, "b", 0, 1, {P("X: 1\r\n", "body")}},
        /* 4: parts without headers (a blank line right after the boundary) */
        {"--b\r\n\r\none\r\n--b\r\n\r\ntwo\r\n--b--", 0, "b", 0, 2, {P("", "one"), P("", "two")}},
        /* 5: bare LF after the boundary and in headers */
        {"--b\nA: x\nB: y\n\nbody\r\n--b--", 0, "b", 0, 1, {P("A: x\nB: y\n", "body")}},
        /* 6: transport padding after the boundary */
        {"--b \t\r\nA: x\r\n\r\nz\r\n--b--", 0, "b", 0, 1, {P("A: x\r\n", "z")}},
        /* 7: a boundary look-alike inside a body is not a delimiter */
        {"--b\r\n\r\nx\r\n--bX\r\n--b-y\r\n--b--", 0, "b", 0, 1, {P("", "x\r\n--bX\r\n--b-y")}},
        /* 8: "--b" not after CRLF is body */
        {"--b\r\n\r\nx--b\r\n\r\n--b--", 0, "b", 0, 1, {P("", "x--b\r\n")}},
        /* 9: CRLF CRLF inside a body is body */
        {"--b\r\nH: v\r\n\r\n\r\n\r\nx\r\n\r\n--b--", 0, "b", 0, 1, {P("H: v\r\n", "\r\n\r\nx\r\n")}},
        /* 10: no part at all */
        {"--b--", 0, "b", 0, 0, {{0}}},
        /* 11: empty part (no headers, no body) */
        {"--b\r\n\r\n--b--", 0, "b", 0, 1, {P("", "")}},
        /* 12: headers only, no blank line: an empty body */
        {"--b\r\nX: y\r\n--b--", 0, "b", 0, 1, {P("X: y", "")}},
        /* 13: empty body between the blank line and the delimiter */
        {"--b\r\nX: y\r\n\r\n\r\n--b--", 0, "b", 0, 1, {P("X: y\r\n", "")}},
        /* 14: truncated: no closing delimiter */
        {"--b\r\n\r\nabc", 0, "b", -1, 0, {{0}}},
        /* 15: truncated inside the closing delimiter */
        {"--b\r\n\r\nabc\r\n--b", 0, "b", -1, 0, {{0}}},
        /* 16: truncated after a full part */
        {"--b\r\n\r\nabc\r\n--b\r\n\r\nde", 0, "b", -1, 0, {{0}}},
        /* 17: closing delimiter not after CRLF */
        {"--b\r\n\r\nabc--b--", 0, "b", -1, 0, {{0}}},
        /* 18: no delimiter at all */
        {"just some bytes", 0, "b", -1, 0, {{0}}},
        /* 19: empty body */
        {"", 0, "b", -1, 0, {{0}}},
        /* 20: the boundary of another body */
        {"--abcd\r\n\r\nx\r\n--abcd--", 0, "abc", -1, 0, {{0}}},
        /* 21: a longer look-alike of the boundary is not a delimiter */
        {"--abc\r\n\r\nx\r\n--abcd\r\n--abc--", 0, "abc", 0, 1, {P("", "x\r\n--abcd")}},
        /* 22: an opening look-alike ("--bX") is preamble: only the closing delimiter is left */
        {"--bX\r\n\r\nx\r\n--b--", 0, "b", 0, 0, {{0}}},
        /* 23: the first delimiter after a preamble that looks like one */
        {"--bb\r\n--b\r\n\r\nx\r\n--b--", 0, "b", 0, 1, {P("", "x")}},
        /* 24: a body ending in CR is kept byte-exact */
        {"--b\r\n\r\nx\r\r\n--b--", 0, "b", 0, 1, {P("", "x\r")}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].body);
        stt_mime_part_t parts[MAXPARTS];
        size_t n = 99;
        int rc = stt_mime_parse(cases[i].body, len, cases[i].boundary, strlen(cases[i].boundary), parts, &n, MAXPARTS);
        if (rc != cases[i].rc) fail_msg("case %zu: rc %d, expected %d", i + 1, rc, cases[i].rc);
        if (rc) continue;
        if (n != cases[i].nparts) fail_msg("case %zu: %zu parts, expected %zu", i + 1, n, cases[i].nparts);
        for (size_t k = 0; k < n; k++) {
            const want_part_t *w = &cases[i].parts[k];
            if (parts[k].hlen != strlen(w->headers) || memcmp(parts[k].headers, w->headers, parts[k].hlen) != 0)
                fail_msg("case %zu part %zu: headers \"%.*s\", expected \"%s\"", i + 1, k + 1, (int)parts[k].hlen,
                         parts[k].headers, w->headers);
            if (parts[k].len != w->len || memcmp(parts[k].body, w->body, w->len) != 0)
                fail_msg("case %zu part %zu: body of %zu bytes \"%.*s\", expected %zu", i + 1, k + 1, parts[k].len,
                         (int)parts[k].len, parts[k].body, w->len);
        }
    }
}

/* More parts than room: all are counted, the first max stored, and a second call
 * with room for all gives the same parts. */
static void parse_counts_beyond_max(void **state)
{
    (void)state;
    static const char body[] = "--b\r\n\r\n1\r\n--b\r\n\r\n2\r\n--b\r\n\r\n3\r\n--b--";
    stt_mime_part_t one[1], all[3];
    size_t n = 0;
    assert_int_equal(stt_mime_parse(body, LEN(body), "b", 1, one, &n, 1), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(one[0].body, "1", 1);
    assert_int_equal(stt_mime_parse(body, LEN(body), "b", 1, NULL, &n, 0), 0);
    assert_int_equal(n, 3);
    assert_int_equal(stt_mime_parse(body, LEN(body), "b", 1, all, &n, 3), 0);
    for (int k = 0; k < 3; k++)
        assert_true(all[k].len == 1 && all[k].body[0] == '1' + k);
}

/* A nested multipart: the inner body parses with the inner boundary. */
static void parse_nested(void **state)
{
    (void)state;
    stt_mime_part_t outer[4], inner[4];
    size_t n = 0, m = 0, vlen, blen;
    assert_int_equal(stt_mime_parse(couch_mixed, LEN(couch_mixed), "out", 3, outer, &n, 4), 0);
    assert_int_equal(n, 3);
    const char *ct = stt_mime_header(&outer[2], "content-type", &vlen), *b;
    assert_non_null(ct);
    assert_int_equal(stt_mime_boundary(ct, vlen, &b, &blen), 0);
    assert_int_equal(stt_mime_parse(outer[2].body, outer[2].len, b, blen, inner, &m, 4), 0);
    assert_int_equal(m, 2);
    assert_int_equal(inner[0].len, 2);
    assert_memory_equal(inner[1].body, "AB", 2);
}

/* Every prefix of a well-formed body is truncated: -1, never a read past the end
 * (the copies are exact-size heap blocks, so ASan sees any overrun). */
static void parse_every_prefix(void **state)
{
    (void)state;
    for (size_t cut = 0; cut < LEN(couch_related); cut++) {
        char *copy = malloc(cut ? cut : 1);
        memcpy(copy, couch_related, cut);
        stt_mime_part_t parts[4];
        size_t n;
        if (stt_mime_parse(copy, cut, "8a4f", 4, parts, &n, 4) != -1) fail_msg("prefix of %zu bytes parsed", cut);
        free(copy);
    }
}

/* Bad boundaries are refused before the body is looked at. */
static void parse_bad_boundary(void **state)
{
    (void)state;
    char big[STT_MIME_BOUNDARY_MAX + 2];
    memset(big, 'a', sizeof big);
    stt_mime_part_t p[1];
    size_t n;
    assert_int_equal(stt_mime_parse("--\r\n\r\n--", 8, "", 0, p, &n, 1), -1);
    assert_int_equal(stt_mime_parse("x", 1, big, sizeof big, p, &n, 1), -1);
    assert_int_equal(stt_mime_parse(NULL, 0, "b", 1, p, &n, 1), -1);
}

/* ---------------------------------------------------------------------------------
 * Headers
 * --------------------------------------------------------------------------------- */

static void header_cases(void **state)
{
    (void)state;
    static const char block[] = "Content-Type: text/plain\r\n"
                                "content-disposition:attachment; filename=\"a\"  \r\n"
                                "X-Folded: first\r\n"
                                "  continued: no\r\n"
                                "Content-Type-Extra: nope\r\n"
                                "Spaced  : yes\r\n"
                                "Empty:\r\n"
                                "Bare: lf\n"
                                "Last: no newline";
    stt_mime_part_t p = {block, LEN(block), NULL, 0};
    static const struct {
        const char *name, *want; /* want NULL: absent */
    } cases[] = {
        /* 1 */ {"content-type", "text/plain"},
        /* 2 */ {"CONTENT-DISPOSITION", "attachment; filename=\"a\""},
        /* 3 */ {"x-folded", "first"},
        /* 4 */ {"continued", NULL},
        /* 5 */ {"content-type-extra", "nope"},
        /* 6 */ {"spaced", "yes"},
        /* 7 */ {"empty", ""},
        /* 8 */ {"bare", "lf"},
        /* 9 */ {"last", "no newline"},
        /* 10 */ {"content-length", NULL},
        /* 11 */ {"content", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t vlen = 0;
        const char *v = stt_mime_header(&p, cases[i].name, &vlen);
        if (!cases[i].want) {
            if (v) fail_msg("case %zu: found \"%.*s\"", i + 1, (int)vlen, v);
            continue;
        }
        if (!v || vlen != strlen(cases[i].want) || memcmp(v, cases[i].want, vlen) != 0)
            fail_msg("case %zu: \"%.*s\", expected \"%s\"", i + 1, v ? (int)vlen : 0, v ? v : "", cases[i].want);
    }
    stt_mime_part_t none = {"", 0, NULL, 0};
    size_t vlen;
    assert_null(stt_mime_header(&none, "content-type", &vlen));
}

static void put_value_cases(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        bool quoted;
        const char *want;
    } cases[] = {
        /* 1 */ {"text/plain", false, "text/plain"},
        /* 2 */ {"a\r\nX-Injected: 1", false, "aX-Injected: 1"},
        /* 3 */ {"say \"hi\"\\", true, "say \\\"hi\\\"\\\\"},
        /* 4 */ {"say \"hi\"", false, "say \"hi\""},
        /* 5 */ {"", true, ""},
        /* 6 */ {"\r\n", true, ""},
        /* 7 */ {"sub/dir/f.bin", true, "sub/dir/f.bin"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        stt_buf_t b = STT_BUF_INIT;
        stt_mime_put_value(&b, cases[i].in, strlen(cases[i].in), cases[i].quoted);
        if (b.len != strlen(cases[i].want) || (b.len && memcmp(b.base, cases[i].want, b.len) != 0))
            fail_msg("case %zu: \"%.*s\", expected \"%s\"", i + 1, (int)b.len, b.base ? b.base : "", cases[i].want);
        stt_buf_free(&b);
    }
    stt_buf_t b = STT_BUF_INIT;
    stt_mime_put_value(&b, "a\0b", 3, false);
    assert_int_equal(b.len, 2);
    assert_memory_equal(b.base, "ab", 2);
    stt_buf_free(&b);
}

/* ---------------------------------------------------------------------------------
 * gunzip
 * --------------------------------------------------------------------------------- */

static size_t gzip(const void *in, size_t len, unsigned char *out, size_t cap)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit2(&z, 8, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    size_t n = cap - z.avail_out;
    deflateEnd(&z);
    return n;
}

static void gunzip_cases(void **state)
{
    (void)state;
    static const char hello[] = "hello attachment\n";
    unsigned char gz[256], two[512];
    size_t n = gzip(hello, LEN(hello), gz, sizeof gz);
    assert_int_equal(n, 37); /* CouchDB's encoded_length for it (golden) */
    memcpy(two, gz, n);
    memcpy(two + n, gz, n);
    unsigned char zeros_gz[4096];
    static char zeros[1 << 20];
    size_t zn = gzip(zeros, sizeof zeros, zeros_gz, sizeof zeros_gz);
    static const struct {
        int kind; /* how the input is made from the gzip above */
        size_t cap;
        int rc;
        size_t outlen;
    } cases[] = {
        /* 1 */ {0, 1000, 0, LEN(hello)},       /* one member */
        /* 2 */ {0, LEN(hello), 0, LEN(hello)}, /* output of exactly cap bytes */
        /* 3 */ {0, LEN(hello) - 1, -1, 0},     /* one byte over */
        /* 4 */ {1, 1000, 0, 2 * LEN(hello)},   /* two concatenated members */
        /* 5 */ {2, 1000, -1, 0},               /* truncated */
        /* 6 */ {3, 1000, -1, 0},               /* trailing garbage */
        /* 7 */ {4, 1000, -1, 0},               /* not gzip */
        /* 8 */ {5, 1000, -1, 0},               /* empty */
        /* 9 */ {6, 64 * 1024, -1, 0},          /* 1 MiB of zeros against a 64 KiB cap */
        /* 10 */ {6, 1 << 20, 0, 1 << 20},      /* the same within its cap */
        /* 11 */ {7, 1000, -1, 0},              /* corrupt CRC */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned char in[512];
        const void *p = in;
        size_t len = 0;
        switch (cases[i].kind) {
        case 0:
            p = gz, len = n;
            break;
        case 1:
            p = two, len = 2 * n;
            break;
        case 2:
            p = gz, len = n - 5;
            break;
        case 3:
            memcpy(in, gz, n), memcpy(in + n, "junk", 4), len = n + 4;
            break;
        case 4:
            p = "plain text, not gzip", len = 20;
            break;
        case 5:
            p = "", len = 0;
            break;
        case 6:
            p = zeros_gz, len = zn;
            break;
        case 7:
            memcpy(in, gz, n), in[n - 6] ^= 1, len = n;
            break;
        }
        stt_buf_t out = STT_BUF_INIT;
        stt_buf_appends(&out, "pre"); /* output is appended */
        int rc = stt_gunzip(&out, p, len, cases[i].cap);
        if (rc != cases[i].rc) fail_msg("case %zu: rc %d, expected %d", i + 1, rc, cases[i].rc);
        if (rc == 0) {
            if (out.len != 3 + cases[i].outlen || memcmp(out.base, "pre", 3) != 0)
                fail_msg("case %zu: %zu bytes out, expected %zu", i + 1, out.len - 3, cases[i].outlen);
            if (cases[i].kind <= 1 && memcmp(out.base + 3, hello, LEN(hello)) != 0)
                fail_msg("case %zu: wrong bytes", i + 1);
        }
        stt_buf_free(&out);
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(boundary_cases),     cmocka_unit_test(param_cases),
        cmocka_unit_test(parse_cases),        cmocka_unit_test(parse_counts_beyond_max),
        cmocka_unit_test(parse_nested),       cmocka_unit_test(parse_every_prefix),
        cmocka_unit_test(parse_bad_boundary), cmocka_unit_test(header_cases),
        cmocka_unit_test(put_value_cases),    cmocka_unit_test(gunzip_cases),
    };
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests_name("mime", tests, NULL, NULL);
}
