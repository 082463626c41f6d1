/* Unit tests for src/http/h_utils.c's pure parts: the relative path of a raw
 * request path below /_utils/ (nothing may leave the UI folder) and the content
 * type of a file name. Numbered table cases; a failure names its case. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "src/http/http.h"
#include <stdio.h>
#include <string.h>

static void relpath_cases(void **state)
{
    (void)state;
    static const struct {
        const char *raw;
        const char *want; /* NULL: refused (-1) */
    } cases[] = {
        {"", ""},                     /* 1 the index */
        {"index.html", "index.html"}, /* 2 */
        {"dashboard.assets/js/a.js", "dashboard.assets/js/a.js"},
        {"dashboard.assets/", "dashboard.assets/"}, /* 4 a folder: its index */
        {"a%20b.css", "a b.css"},                   /* 5 decoded */
        {"..", NULL},                               /* 6 */
        {"../etc/passwd", NULL},                    /* 7 */
        {"a/../../x", NULL},                        /* 8 */
        {"%2e%2e/x", NULL},                         /* 9 encoded dots */
        {"%2E%2e", NULL},                           /* 10 */
        {"a%2f..%2fb", NULL},                       /* 11 an encoded slash */
        {"a%2F..", NULL},                           /* 12 */
        {"a%00.js", NULL},                          /* 13 NUL */
        {"a%5c..%5cb", NULL},                       /* 14 backslash */
        {"./index.html", NULL},                     /* 15 */
        {"a//b", NULL},                             /* 16 an empty segment */
        {"a%zz", NULL},                             /* 17 bad escape */
        {"a%2", NULL},                              /* 18 short escape */
        {"...", "..."},                             /* 19 three dots is a name */
        {".hidden", ".hidden"},                     /* 20 */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[256];
        int rc = stt__utils_relpath(cases[i].raw, strlen(cases[i].raw), out, sizeof(out));
        if (!cases[i].want && rc != -1) fail_msg("case %zu: '%s' accepted as '%s'", i + 1, cases[i].raw, out);
        if (cases[i].want && (rc != 0 || strcmp(out, cases[i].want) != 0))
            fail_msg("case %zu: '%s' gave rc %d '%s', expected '%s'", i + 1, cases[i].raw, rc, rc ? "" : out,
                     cases[i].want);
    }
    /* a path longer than the buffer is refused, not truncated */
    char out[8];
    assert_int_equal(stt__utils_relpath("abcdefghij", 10, out, sizeof(out)), -1);
}

static void ctype_cases(void **state)
{
    (void)state;
    static const struct {
        const char *path, *want;
    } cases[] = {
        {"/w/index.html", "text/html; charset=utf-8"},
        {"/w/a.JS", "application/javascript"},
        {"/w/s.css", "text/css"},
        {"/w/f.woff", "font/woff"},
        {"/w/f.eot", "application/vnd.ms-fontobject"},
        {"/w/i.svg", "image/svg+xml"},
        {"/w/i.png", "image/png"},
        {"/w.d/noext", "application/octet-stream"}, /* a dot in a folder name only */
        {"/w/x.unknown", "application/octet-stream"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (strcmp(stt__utils_ctype(cases[i].path), cases[i].want) != 0)
            fail_msg("case %zu: %s is %s", i + 1, cases[i].path, stt__utils_ctype(cases[i].path));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(relpath_cases),
        cmocka_unit_test(ctype_cases),
    };
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests_name("utils", tests, NULL, NULL);
}
