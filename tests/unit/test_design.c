/* Unit tests for design/: design-doc checks on write (CouchDB 3.4.3's answers from
 * couchdb-golden views.jsonl ddoc_invalid_*), the name splitting of filter and view
 * names, and the pipelined validator call the write path uses (verdicts per doc, a
 * thrown error attributed). Uses real settee-qs processes (build/settee-qs).
 * Run one alone by naming it: test_design check_table */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "design/design.h"
#include "src/common/log.h"
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static stt_qs_pool_t *pool;

static int setup(void **state)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return -1;
    exe[n] = '\0';
    *strrchr(exe, '/') = '\0'; /* build/tests */
    *strrchr(exe, '/') = '\0'; /* build */
    stt_log_setup(STT_LOG_NONE, STT_LOG_TEXT);
    char qs[PATH_MAX + 16];
    snprintf(qs, sizeof qs, "%s/settee-qs", exe);
    if (access(qs, X_OK) != 0) return -1;
    stt_qs_config_t c;
    stt_qs_config_default(&c, NULL);
    stt_qs_config_set_server(&c, "javascript", qs);
    c.timeout_ms = 2000;
    return stt_qs_pool_new(&c, &pool);
}

static int teardown(void **state)
{
    stt_qs_pool_free(pool);
    return 0;
}

/* ------------------------------------------------------------------ checks */

static const struct {
    const char *ddoc;
    int status; /* 0: accepted */
    const char *error;
    const char *reason; /* prefix */
} CHECKS[] = {
    /* 0 */ {"{\"views\":\"nope\"}", 400, "invalid_design_doc", "`views` field must have object type"},
    /* 1 */ {"{\"views\":[]}", 400, "invalid_design_doc", "`views` field must have object type"},
    /* 2 */
    {"{\"views\":{\"v\":\"function(doc){}\"}}", 400, "invalid_design_doc", "`views.v` field must have object type"},
    /* 3 */
    {"{\"views\":{\"v\":{\"reduce\":\"_count\"}}}", 400, "invalid_design_doc", "View `v` must contain map function"},
    /* 4 */
    {"{\"views\":{\"v\":{\"map\":42}}}", 400, "invalid_design_doc", "`views.v.map` field must have string type"},
    /* 5 */
    {"{\"views\":{\"v\":{\"map\":\"function(doc) { emit(doc._id, \"}}}", 400, "compilation_error",
     "Compilation of the map function in the 'v' view failed: "},
    /* 6 */ {"{\"views\":{\"v\":{\"map\":\"42\"}}}", 400, "compilation_error", "Compilation of the map function"},
    /* 7 */ {"{\"views\":{\"v\":{\"map\":\"\"}}}", 404, "not_found", "missing function"},
    /* 8 */
    {"{\"views\":{\"v\":{\"map\":\"function(doc){emit(1,1)}\",\"reduce\":1}}}", 400, "invalid_design_doc",
     "`views.v.reduce` field must have string type"},
    /* 9 */
    {"{\"views\":{\"v\":{\"map\":\"function(doc){emit(1,1)}\",\"reduce\":\"_median\"}}}", 400, "invalid_design_doc",
     "`_median` is not a supported reduce function."},
    /* 10 */
    {"{\"views\":{\"v\":{\"map\":\"function(doc){emit(1,1)}\",\"reduce\":\"function(k,v) {\"}}}", 400,
     "compilation_error", "Compilation of the reduce function in the 'v' view failed: "},
    /* 11 */ {"{\"language\":42,\"views\":{}}", 400, "invalid_design_doc", "`language` field must have string type"},
    /* 12 */ {"{\"language\":\"python\",\"views\":{\"v\":{\"map\":\"def m(doc): pass\"}}}", 0, NULL, NULL},
    /* 13 */ {"{\"options\":\"x\"}", 400, "invalid_design_doc", "`options` field must have object type"},
    /* 14 */ {"{\"filters\":\"x\"}", 400, "invalid_design_doc", "`filters` field must have object type"},
    /* 15 */ {"{\"filters\":{\"f\":\"function(doc, req) {\"}}", 0, NULL, NULL},
    /* 16 */
    {"{\"validate_doc_update\":42}", 400, "invalid_design_doc", "`validate_doc_update` field must have string type"},
    /* 17 */ {"{\"validate_doc_update\":\"function(newDoc) {\"}", 0, NULL, NULL},
    /* 18 */ {"{\"updates\":[]}", 400, "invalid_design_doc", "`updates` field must have object type"},
    /* 19 */ {"{\"rewrites\":\"x\"}", 0, NULL, NULL},
    /* 20 */
    {"{\"views\":{\"lib\":{\"m\":\"exports.x=1\"},\"v\":{\"map\":\"function(doc){emit(1,1)}\","
     "\"reduce\":\"_sum\"}}}",
     0, NULL, NULL},
    /* 21 */
    {"{\"options\":{\"partitioned\":true}}", 400, "invalid_design_doc",
     "partitioned option cannot be true in a non-partitioned database."},
};

static void check_table(void **state)
{
    for (size_t i = 0; i < sizeof(CHECKS) / sizeof(CHECKS[0]); i++) {
        stt_arena_t a = STT_ARENA_INIT;
        stt_json_t d;
        char *text = stt_arena_strndup(&a, CHECKS[i].ddoc, strlen(CHECKS[i].ddoc));
        assert_int_equal(stt_json_parse(&a, text, strlen(text), &d, NULL, 0), 0);
        stt_qs_err_t e = {0};
        int rc = stt_design_check(pool, &d, &a, &e);
        if (!CHECKS[i].status) {
            if (rc != 0) fprintf(stderr, "case %zu: %s %s\n", i, e.error, e.reason);
            assert_int_equal(rc, 0);
        } else {
            if (rc == 0 || e.status != CHECKS[i].status || strcmp(e.error, CHECKS[i].error) != 0 ||
                strncmp(e.reason, CHECKS[i].reason, strlen(CHECKS[i].reason)) != 0)
                fail_msg("case %zu: %d %s %s", i, e.status, e.error ? e.error : "-", e.reason ? e.reason : "-");
        }
        stt_arena_free(&a);
    }
}

/* ------------------------------------------------------------------ names */

static void ref_parse(void **state)
{
    static const struct {
        const char *in;
        int parts;
        const char *ddoc, *fn;
    } C[] = {
        /* 0 */ {"f/by_type", 2, "f", "by_type"},
        /* 1 */ {"f//by_type", 2, "f", "by_type"},
        /* 2 */ {"/f/by_type/", 2, "f", "by_type"},
        /* 3 */ {"justaname", 1, NULL, NULL},
        /* 4 */ {"a/b/c", 3, NULL, NULL},
        /* 5 */ {"", 0, NULL, NULL},
        /* 6 */ {"f/no%2Fpe", 2, "f", "no/pe"},
        /* 7 */ {"my+ddoc/x", 2, "my ddoc", "x"},
    };
    for (size_t i = 0; i < sizeof(C) / sizeof(C[0]); i++) {
        stt_arena_t a = STT_ARENA_INIT;
        stt_ddoc_ref_t r = {0};
        int n = stt_ddoc_ref_parse(&a, C[i].in, strlen(C[i].in), &r);
        if (n != C[i].parts) fail_msg("case %zu: %d parts", i, n);
        if (n == 2) {
            assert_string_equal(r.ddoc, C[i].ddoc);
            assert_string_equal(r.fn, C[i].fn);
        }
        stt_arena_free(&a);
    }
}

/* ------------------------------------------------------------------ pipelined validators */

#define T(lit) ((stt_qs_text_t){lit, sizeof(lit) - 1})

static void validate_many(void **state)
{
    static const char ddoc[] = "{\"_id\":\"_design/v\",\"validate_doc_update\":\"function(n, o, u) { if (n.f) "
                               "throw({forbidden: 'no ' + n._id}); if (n.u) throw({unauthorized: u.name}); if (n.c) "
                               "null.x; }\"}";
    stt_qs_ddoc_t d = {"_design/v", "1-a", NULL, T(ddoc)};
    stt_qs_text_t nd[] = {T("{\"_id\":\"a\"}"), T("{\"_id\":\"b\",\"f\":1}"), T("{\"_id\":\"c\",\"u\":1}")};
    stt_qs_text_t od[] = {{NULL, 0}, {NULL, 0}, T("{\"_id\":\"c\",\"_rev\":\"1-x\"}")};
    int rcs[3];
    stt_qs_err_t errs[3], e;
    stt_arena_t a = STT_ARENA_INIT;
    /* 1: every doc gets its own verdict in one call */
    assert_int_equal(stt_qs_validate_many(pool, &d, nd, od, 3, T("{\"db\":\"x\",\"name\":\"bob\",\"roles\":[]}"),
                                          T("{}"), &a, rcs, errs, &e),
                     0);
    assert_int_equal(rcs[0], 0);
    assert_int_equal(rcs[1], STT_QS_E_FORBIDDEN);
    assert_string_equal(errs[1].reason, "no b");
    assert_int_equal(rcs[2], STT_QS_E_UNAUTHORIZED);
    assert_string_equal(errs[2].reason, "bob");
    /* 2: a doc that makes the function throw fails the batch: the caller validates one by one */
    stt_qs_text_t nd2[] = {T("{\"_id\":\"a\"}"), T("{\"_id\":\"b\",\"c\":1}")};
    assert_int_equal(stt_qs_validate_many(pool, &d, nd2, od, 2, T("{}"), T("{}"), &a, rcs, errs, &e), STT_QS_E_ERROR);
    assert_int_equal(stt_qs_validate(pool, &d, nd2[0], od[0], T("{}"), T("{}"), &a, &e), 0);
    assert_int_equal(stt_qs_validate(pool, &d, nd2[1], od[1], T("{}"), T("{}"), &a, &e), STT_QS_E_ERROR);
    assert_string_equal(e.error, "TypeError");
    stt_arena_free(&a);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(check_table),
        cmocka_unit_test(ref_parse),
        cmocka_unit_test(validate_many),
    };
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, setup, teardown);
}
