/* Unit tests for mango/: the pure parts of planning and of CouchDB's replies.
 *
 * - normalize cases: numbered {selector, normalized} rows, the form CouchDB 3.4's
 *   mango_selector:normalize gives and _explain shows (implicit $eq and $and made
 *   explicit, nested fields joined with dots, $and flattened);
 * - term cases: values quoted in error reasons as CouchDB quotes the Erlang terms jiffy
 *   made of them, with ~w (binaries as bytes) and ~p (printable binaries as text);
 * - selector error cases: the compiler's reasons told with CouchDB's error names.
 *
 * JSON in the tables is written with ' for " to stay readable. An argument is a cmocka
 * test filter, a glob: test_mango 'norm*'. */
#include "mango/mango_int.h"
#include "src/common/arena.h"
#include "src/common/json.h"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static stt_json_t parse(stt_arena_t *a, const char *text, size_t ncase)
{
    size_t len = strlen(text);
    char *s = malloc(len + 1);
    for (size_t i = 0; i <= len; i++)
        s[i] = text[i] == '\'' ? '"' : text[i];
    stt_json_t v;
    if (stt_json_parse(a, s, len, &v, NULL, 0) != 0) fail_msg("case %zu: bad test JSON %s", ncase, text);
    free(s);
    return v;
}

static void unquote(char *s)
{
    for (; *s; s++)
        if (*s == '\'') *s = '"';
}

static void normalize_table(void **state)
{
    (void)state;
    static const struct {
        const char *sel, *want;
    } rows[] = {
        /* 1 */ {"{}", "{}"},
        /* 2 */ {"{'a':1}", "{'a':{'$eq':1}}"},
        /* 3 */ {"{'a':1,'b':{'$gt':2}}", "{'$and':[{'a':{'$eq':1}},{'b':{'$gt':2}}]}"},
        /* 4 */ {"{'a':{'$gt':1,'$lt':5}}", "{'$and':[{'a':{'$gt':1}},{'a':{'$lt':5}}]}"},
        /* 5 */ {"{'n':{'x':1,'y':'c'}}", "{'$and':[{'n.x':{'$eq':1}},{'n.y':{'$eq':'c'}}]}"},
        /* 6 */ {"{'$and':[{'a':1},{'$and':[{'b':2}]}]}", "{'$and':[{'a':{'$eq':1}},{'b':{'$eq':2}}]}"},
        /* 7 */ {"{'$or':[{'a':1},{'a':2}]}", "{'$or':[{'a':{'$eq':1}},{'a':{'$eq':2}}]}"},
        /* 8 */ {"{'a':[1,2]}", "{'a':{'$eq':[1,2]}}"},
        /* 9 */ {"{'a':{}}", "{'a':{'$eq':{}}}"},
        /* 10 */ {"{'a':{'$in':[1,2]},'z':null}", "{'$and':[{'a':{'$in':[1,2]}},{'z':{'$eq':null}}]}"},
        /* 11 */ {"{'$not':{'a':1}}", "{'$not':{'a':{'$eq':1}}}"},
        /* 12 */ {"{'a':{'$elemMatch':{'b':1}}}", "{'a':{'$elemMatch':{'b':1}}}"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        stt_arena_t a = STT_ARENA_INIT;
        stt_json_t sel = parse(&a, rows[i].sel, i + 1);
        stt_buf_t out = STT_BUF_INIT;
        stt__selector_normalize(&out, &sel);
        char want[256];
        snprintf(want, sizeof(want), "%s", rows[i].want);
        unquote(want);
        if (strcmp(out.base ? out.base : "", want) != 0)
            fail_msg("normalize case %zu: %s gave %s, want %s", i + 1, rows[i].sel, out.base, want);
        stt_buf_free(&out);
        stt_arena_free(&a);
    }
}

static void term_table(void **state)
{
    (void)state;
    static const struct {
        const char *v, *w, *p;
    } rows[] = {
        /* 1 */ {"'age'", "<<97,103,101>>", "<<'age'>>"},
        /* 2 */ {"''", "<<>>", "<<>>"},
        /* 3 */ {"42", "42", "42"},
        /* 4 */ {"{}", "{[]}", "{[]}"},
        /* 5 */ {"{'age':'up'}", "{[{<<97,103,101>>,<<117,112>>}]}", "{[{<<'age'>>,<<'up'>>}]}"},
        /* 6 */ {"[true,null,1.5]", "[true,null,1.5]", "[true,null,1.5]"},
        /* 7 */ {"'a\\u0001'", "<<97,1>>", "<<97,1>>"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        stt_arena_t a = STT_ARENA_INIT;
        stt_json_t v = parse(&a, rows[i].v, i + 1);
        char w[128], p[128];
        snprintf(w, sizeof(w), "%s", rows[i].w);
        snprintf(p, sizeof(p), "%s", rows[i].p);
        unquote(w);
        unquote(p);
        const char *gw = stt__term(&a, &v), *gp = stt__term_p(&a, &v);
        if (strcmp(gw, w) != 0) fail_msg("term case %zu: ~w gave %s, want %s", i + 1, gw, w);
        if (strcmp(gp, p) != 0) fail_msg("term case %zu: ~p gave %s, want %s", i + 1, gp, p);
        stt_arena_free(&a);
    }
}

static void selector_error_table(void **state)
{
    (void)state;
    static const struct {
        const char *reason;
        int status;
        const char *error, *want;
        bool ref;
    } rows[] = {
        /* 1 */ {"Bad argument for operator $size: \"x\"", 400, "bad_arg", "Bad argument for operator $size: <<120>>"},
        /* 2 */ {"Bad argument for operator $regex: 1", 400, "invalid_operator", "Invalid operator: $regex"},
        /* 3 */ {"Bad argument for operator $beginsWith: 3", 400, "invalid_operator", "Invalid operator: $beginsWith"},
        /* 4 */ {"Bad argument for operator $mod: [0,1]", 500, "unknown_error", "badarith", true},
        /* 5 */ {"Bad argument for operator $or: {}", 400, "bad_arg", "Bad argument for operator $or: {[]}"},
        /* 6 */ {"Invalid operator: $foo", 400, "invalid_operator", "Invalid operator: $foo"},
        /* 7 */ {"Unsupported operator: $where", 400, "not_supported", "Unsupported operator: $where"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        stt_mango_err_t e;
        int rc = stt__selector_err(&e, rows[i].reason);
        if (rc != STT_MANGO_E || e.status != rows[i].status || strcmp(e.error, rows[i].error) != 0 ||
            strcmp(e.reason, rows[i].want) != 0 || e.ref != rows[i].ref)
            fail_msg("selector error case %zu: %d %s %s", i + 1, e.status, e.error, e.reason);
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(normalize_table),
        cmocka_unit_test(term_table),
        cmocka_unit_test(selector_error_table),
    };
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests_name("mango", tests, NULL, NULL);
}
