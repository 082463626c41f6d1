/* Unit tests for qserver/: the pool driving real settee-qs processes (built next
 * to this binary's folder: build/settee-qs for build/tests/test_qserver).
 *
 * Each test states a CouchDB behaviour of the query-server layer: map with emit
 * and require, reduce and rereduce with reduce_limit, validate_doc_update
 * verdicts with userCtx and secObj, filters with req.query, _view filters, an
 * _update handler, compile errors, and the failures that must cost one call and
 * nothing more: a loop that never ends, a throw, an allocation without bound, a
 * query server that crashes or answers garbage, and many threads at once.
 * Run one alone by naming it: test_qserver vdu */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "qserver/qserver.h"
#include "src/common/log.h"
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static stt_qs_pool_t *pool;
static char qs_path[PATH_MAX + 16];

#define T(lit) ((stt_qs_text_t){lit, sizeof(lit) - 1})
#define NONE ((stt_qs_text_t){NULL, 0})

/* ---------------------------------------------------------------------------------
 * Setup: the pool under test, with small limits so that failures are quick
 * --------------------------------------------------------------------------------- */

static int setup(void **state)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return -1;
    exe[n] = '\0';
    *strrchr(exe, '/') = '\0'; /* build/tests */
    *strrchr(exe, '/') = '\0'; /* build */
    snprintf(qs_path, sizeof qs_path, "%s/settee-qs", exe);
    if (access(qs_path, X_OK) != 0) {
        fprintf(stderr, "no %s: build it first\n", qs_path);
        return -1;
    }
    stt_log_setup(STT_LOG_NONE, STT_LOG_TEXT);

    stt_qs_config_t c;
    stt_qs_config_default(&c, exe);
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "%s", qs_path);
    stt_qs_config_set_server(&c, "javascript", cmd);
    /* a small memory bound, so that the runaway allocation ends fast */
    snprintf(cmd, sizeof cmd, "%s --memory-limit 96", qs_path);
    stt_qs_config_set_server(&c, "js96", cmd);
    /* query servers that break the protocol: each answers the start-up reset, then */
    stt_qs_config_set_server(&c, "crashes", "sh -c 'read l; echo true; read l; exit 3'");
    stt_qs_config_set_server(&c, "garbage", "sh -c 'read l; echo true; read l; echo hello; sleep 5'");
    stt_qs_config_set_server(&c, "nonstarter", "/nonexistent/query-server");
    c.timeout_ms = 1500;
    c.process_limit = 3;
    c.soft_limit = 3;
    return stt_qs_pool_new(&c, &pool);
}

static int teardown(void **state)
{
    stt_qs_pool_free(pool);
    return 0;
}

static stt_qs_ddoc_t ddoc(const char *lang, const char *rev, const char *json)
{
    return (stt_qs_ddoc_t){"_design/t", rev, lang, {json, strlen(json)}};
}

static char *json_text(const stt_json_t *v)
{
    static char out[4096];
    stt_buf_t b = STT_BUF_INIT;
    stt_json_write(&b, v);
    snprintf(out, sizeof out, "%s", b.base);
    stt_buf_free(&b);
    return out;
}

static size_t killed(void)
{
    stt_qs_stats_t st;
    stt_qs_pool_stats(pool, &st);
    return st.killed;
}

static const char *const design =
    "{\"_id\":\"_design/t\","
    "\"validate_doc_update\":\"function(newDoc, oldDoc, userCtx, secObj) {"
    "  if (newDoc.forbid) throw({forbidden: 'no ' + newDoc._id});"
    "  if (userCtx.name === null) throw({unauthorized: 'log in'});"
    "  if (newDoc.admin_only && secObj.admins.names.indexOf(userCtx.name) < 0) throw({forbidden: 'admins only'});"
    "  if (oldDoc && oldDoc.locked) throw({forbidden: 'locked'});"
    "  if (newDoc.string) throw('plain string');"
    "  if (newDoc.crash) return newDoc.missing.field;"
    "}\","
    "\"filters\":{"
    "  \"by_type\":\"function(doc, req) { return doc.type === req.query.type }\","
    "  \"by_role\":\"function(doc, req) { return req.userCtx.roles.indexOf(doc.role) >= 0 }\","
    "  \"throws\":\"function(doc) { throw 'boom' }\","
    "  \"loops\":\"function(doc) { for (;;) {} }\","
    "  \"hog\":\"function(doc) { var a = []; for (;;) a.push('x'.repeat(1 << 20) + a.length) }\","
    "  \"uses_lib\":\"function(doc) { return require('lib/util').isBig(doc) }\""
    "},"
    "\"views\":{\"big\":{\"map\":\"(doc) => { if (doc.n > 10) emit(doc.n, null) }\"}},"
    "\"updates\":{"
    "  \"stamp\":\"function(doc, req) { if (!doc) return [{_id: req.id, n: 1}, 'created'];"
    "            doc.n += 1; return [doc, {json: {n: doc.n}, code: 201}] }\","
    "  \"nothing\":\"function(doc, req) { return [null, 'nothing to do'] }\""
    "},"
    "\"lib\":{\"util\":\"exports.isBig = function (doc) { return doc.n > require('./limits').big }\","
    "         \"limits\":\"exports.big = 100\"}"
    "}";

/* ---------------------------------------------------------------------------------
 * Views
 * --------------------------------------------------------------------------------- */

static void map_emit(void **state)
{
    stt_arena_t a = STT_ARENA_INIT;
    stt_qs_err_t err;
    stt_qs_text_t funs[] = {
        T("function(doc) { emit(doc.type, 1); if (doc.tags) doc.tags.forEach(function (t) { emit([t, doc._id]); }) }"),
        T("function(doc) { emit(require('views/lib/key').of(doc), doc.n) }"),
    };
    stt_qs_mapper_t *m;
    assert_int_equal(stt_qs_map_open(pool, "javascript",
                                     T("{\"key\":\"exports.of = function (d) { return d.n * 2 }\"}"), funs, 2, &a, &err,
                                     &m),
                     0);
    stt_qs_text_t docs[] = {
        T("{\"_id\":\"a\",\"_rev\":\"1-x\",\"type\":\"post\",\"n\":1,\"tags\":[\"x\",\"y\"]}"),
        T("{\"_id\":\"b\",\"_rev\":\"1-y\",\"n\":2}"),
    };
    stt_json_t out[2];
    assert_int_equal(stt_qs_map_docs(m, docs, 2, &a, out, &err), 0);
    assert_string_equal(json_text(&out[0]), "[[[\"post\",1],[[\"x\",\"a\"],null],[[\"y\",\"a\"],null]],[[2,1]]]");
    assert_string_equal(json_text(&out[1]), "[[[null,1]],[[4,2]]]");

    /* a map function that throws skips the doc for that function only (CouchDB logs it) */
    stt_qs_map_close(m);
    stt_qs_text_t funs2[] = {T("function(doc) { emit(doc.a.b, 1) }"), T("function(doc) { emit(doc._id, 1) }")};
    assert_int_equal(stt_qs_map_open(pool, NULL, NONE, funs2, 2, &a, &err, &m), 0);
    assert_int_equal(stt_qs_map_docs(m, docs + 1, 1, &a, out, &err), 0);
    assert_string_equal(json_text(&out[0]), "[[],[[\"b\",1]]]");
    stt_qs_map_close(m);
    stt_arena_free(&a);
}

/* Many docs in one pipelined batch: more bytes than the socket buffers hold both
 * ways, which would deadlock a write-everything-then-read client. */
static void map_batch(void **state)
{
    enum { N = 600 };
    stt_arena_t a = STT_ARENA_INIT;
    stt_qs_err_t err;
    stt_qs_text_t fun = T("function(doc) { emit(doc._id, doc.pad) }");
    stt_qs_mapper_t *m;
    assert_int_equal(stt_qs_map_open(pool, NULL, NONE, &fun, 1, &a, &err, &m), 0);
    static char bodies[N][2100];
    stt_qs_text_t docs[N];
    char pad[2001];
    memset(pad, 'p', 2000);
    pad[2000] = '\0';
    for (int i = 0; i < N; i++) {
        int len = snprintf(bodies[i], sizeof bodies[i], "{\"_id\":\"d%04d\",\"pad\":\"%s\"}", i, pad);
        docs[i] = (stt_qs_text_t){bodies[i], (size_t)len};
    }
    static stt_json_t out[N];
    assert_int_equal(stt_qs_map_docs(m, docs, N, &a, out, &err), 0);
    for (int i = 0; i < N; i++) {
        const stt_json_t *row = &out[i].u.items[0].u.items[0];
        char id[16];
        snprintf(id, sizeof id, "d%04d", i);
        assert_string_equal(row->u.items[0].u.s, id);
        assert_int_equal(row->u.items[1].len, 2000);
    }
    stt_qs_map_close(m);
    stt_arena_free(&a);
}

static void reduce_rereduce(void **state)
{
    stt_arena_t a = STT_ARENA_INIT;
    stt_qs_err_t err;
    stt_json_t out;
    stt_qs_text_t funs[] = {T("function(keys, values, rereduce) { return sum(values) }"),
                            T("function(keys, values, rereduce) { return rereduce ? sum(values) : values.length }")};
    assert_int_equal(stt_qs_reduce(pool, NULL, funs, 2, T("[[[\"a\",\"d1\"],2],[[\"b\",\"d2\"],3],[[\"b\",\"d3\"],4]]"),
                                   &a, &out, &err),
                     0);
    assert_string_equal(json_text(&out), "[9,3]");
    assert_int_equal(stt_qs_rereduce(pool, NULL, funs, 2, T("[9,1,5]"), &a, &out, &err), 0);
    assert_string_equal(json_text(&out), "[15,15]");

    /* reduce_limit: output that does not shrink is CouchDB's reduce_overflow_error */
    stt_qs_text_t grow = T("function(keys, values) { return values.concat(values, values) }");
    stt_buf_t kvs = STT_BUF_INIT;
    stt_buf_appendc(&kvs, '[');
    for (int i = 0; i < 2000; i++)
        stt_buf_appendf(&kvs, "%s[[%d,\"d%d\"],\"value-%d\"]", i ? "," : "", i, i, i);
    stt_buf_appendc(&kvs, ']');
    int rc = stt_qs_reduce(pool, NULL, &grow, 1, (stt_qs_text_t){kvs.base, kvs.len}, &a, &out, &err);
    assert_int_equal(rc, STT_QS_E_ERROR);
    assert_string_equal(err.error, "reduce_overflow_error");
    assert_non_null(strstr(err.reason, "Reduce output must shrink more rapidly"));
    stt_buf_free(&kvs);
    stt_arena_free(&a);
}

static void compile_errors(void **state)
{
    stt_arena_t a = STT_ARENA_INIT;
    stt_qs_err_t err;
    assert_int_equal(stt_qs_compile(pool, NULL, T("function(doc) { emit(doc._id, 1) }"), &a, &err), 0);
    assert_int_equal(stt_qs_compile(pool, NULL, T("(doc) => emit(doc._id, 1);"), &a, &err), 0);
    assert_int_equal(stt_qs_compile(pool, NULL, T("function(doc) { emit(doc._id, "), &a, &err), STT_QS_E_COMPILE);
    assert_string_equal(err.error, "compilation_error");
    assert_non_null(strstr(err.reason, "SyntaxError"));
    assert_non_null(strstr(err.reason, "(function(doc) { emit(doc._id, )"));
    assert_int_equal(stt_qs_compile(pool, NULL, T("42"), &a, &err), STT_QS_E_COMPILE);
    assert_string_equal(err.reason, "Expression does not eval to a function. (42)");

    stt_qs_mapper_t *m = NULL;
    stt_qs_text_t funs[] = {T("function(doc) { emit(1, 1) }"), T("function(doc) {")};
    assert_int_equal(stt_qs_map_open(pool, NULL, NONE, funs, 2, &a, &err, &m), STT_QS_E_COMPILE);
    assert_null(m);
    assert_int_equal(stt_qs_compile(pool, "python", T("def f(): pass"), &a, &err), STT_QS_E_UNKNOWN_LANG);
    assert_string_equal(err.error, "unknown_query_language");
    assert_string_equal(err.reason, "python");
    stt_arena_free(&a);
}

/* ---------------------------------------------------------------------------------
 * Design documents
 * --------------------------------------------------------------------------------- */

static void vdu(void **state)
{
    stt_arena_t a = STT_ARENA_INIT;
    stt_qs_err_t err;
    stt_qs_ddoc_t d = ddoc(NULL, "1-a", design);
    stt_qs_text_t bob = T("{\"db\":\"db\",\"name\":\"bob\",\"roles\":[]}");
    stt_qs_text_t anon = T("{\"db\":\"db\",\"name\":null,\"roles\":[]}");
    stt_qs_text_t sec = T("{\"admins\":{\"names\":[\"alice\"],\"roles\":[]},\"members\":{\"names\":[],\"roles\":[]}}");

    assert_int_equal(stt_qs_validate(pool, &d, T("{\"_id\":\"ok\"}"), NONE, bob, sec, &a, &err), 0);
    assert_int_equal(stt_qs_validate(pool, &d, T("{\"_id\":\"x\",\"forbid\":true}"), NONE, bob, sec, &a, &err),
                     STT_QS_E_FORBIDDEN);
    assert_int_equal(err.status, 403);
    assert_string_equal(err.error, "forbidden");
    assert_string_equal(err.reason, "no x");
    assert_int_equal(stt_qs_validate(pool, &d, T("{\"_id\":\"x\"}"), NONE, anon, sec, &a, &err), STT_QS_E_UNAUTHORIZED);
    assert_int_equal(err.status, 401);
    assert_string_equal(err.reason, "log in");
    /* secObj and userCtx reach the function */
    assert_int_equal(stt_qs_validate(pool, &d, T("{\"_id\":\"x\",\"admin_only\":1}"), NONE, bob, sec, &a, &err),
                     STT_QS_E_FORBIDDEN);
    assert_string_equal(err.reason, "admins only");
    assert_int_equal(stt_qs_validate(pool, &d, T("{\"_id\":\"x\",\"admin_only\":1}"), NONE,
                                     T("{\"name\":\"alice\",\"roles\":[]}"), sec, &a, &err),
                     0);
    /* oldDoc */
    assert_int_equal(
        stt_qs_validate(pool, &d, T("{\"_id\":\"x\"}"), T("{\"_id\":\"x\",\"locked\":true}"), bob, sec, &a, &err),
        STT_QS_E_FORBIDDEN);
    assert_string_equal(err.reason, "locked");
    /* a thrown string is CouchDB's unknown_error; a TypeError is an error of its own name */
    assert_int_equal(stt_qs_validate(pool, &d, T("{\"_id\":\"x\",\"string\":1}"), NONE, bob, sec, &a, &err),
                     STT_QS_E_ERROR);
    assert_string_equal(err.error, "unknown_error");
    assert_string_equal(err.reason, "plain string");
    assert_int_equal(stt_qs_validate(pool, &d, T("{\"_id\":\"x\",\"crash\":1}"), NONE, bob, sec, &a, &err),
                     STT_QS_E_ERROR);
    assert_string_equal(err.error, "TypeError");

    /* a new rev of the design doc is sent again: its new function applies */
    stt_qs_ddoc_t d2 = ddoc(NULL, "2-b",
                            "{\"_id\":\"_design/t\",\"validate_doc_update\":"
                            "\"function(n) { throw({forbidden: 'v2'}) }\"}");
    assert_int_equal(stt_qs_validate(pool, &d2, T("{\"_id\":\"ok\"}"), NONE, bob, sec, &a, &err), STT_QS_E_FORBIDDEN);
    assert_string_equal(err.reason, "v2");
    stt_arena_free(&a);
}

static void filters(void **state)
{
    stt_arena_t a = STT_ARENA_INIT;
    stt_qs_err_t err;
    stt_qs_ddoc_t d = ddoc(NULL, "1-a", design);
    stt_qs_text_t docs[] = {T("{\"_id\":\"1\",\"type\":\"a\",\"n\":5,\"role\":\"r1\"}"),
                            T("{\"_id\":\"2\",\"type\":\"b\",\"n\":50,\"role\":\"r2\"}"),
                            T("{\"_id\":\"3\",\"type\":\"a\",\"n\":500}")};
    bool pass[3];
    assert_int_equal(stt_qs_filter(pool, &d, "by_type", docs, 3,
                                   T("{\"query\":{\"type\":\"a\"},\"userCtx\":{\"name\":null,\"roles\":[]}}"), &a, pass,
                                   &err),
                     0);
    assert_true(pass[0] && !pass[1] && pass[2]);
    assert_int_equal(stt_qs_filter(pool, &d, "by_role", docs, 3,
                                   T("{\"query\":{},\"userCtx\":{\"name\":\"u\",\"roles\":[\"r2\"]}}"), &a, pass, &err),
                     0);
    assert_true(!pass[0] && pass[1] && !pass[2]);
    assert_int_equal(stt_qs_filter(pool, &d, "uses_lib", docs, 3, T("{}"), &a, pass, &err), 0);
    assert_true(!pass[0] && !pass[1] && pass[2]);
    assert_int_equal(stt_qs_filter_view(pool, &d, "big", docs, 3, &a, pass, &err), 0);
    assert_true(!pass[0] && pass[1] && pass[2]);
    assert_int_equal(stt_qs_filter(pool, &d, "missing", docs, 3, T("{}"), &a, pass, &err), STT_QS_E_ERROR);
    assert_string_equal(err.error, "not_found");
    assert_string_equal(err.reason, "missing filters function missing on design doc _design/t");
    stt_arena_free(&a);
}

static void update_handler(void **state)
{
    stt_arena_t a = STT_ARENA_INIT;
    stt_qs_err_t err;
    stt_qs_ddoc_t d = ddoc(NULL, "1-a", design);
    stt_json_t doc, resp;
    assert_int_equal(
        stt_qs_update(pool, &d, "stamp", NONE, T("{\"id\":\"new\",\"method\":\"POST\"}"), &a, &doc, &resp, &err), 0);
    assert_string_equal(json_text(&doc), "{\"_id\":\"new\",\"n\":1}");
    assert_string_equal(json_text(&resp), "{\"body\":\"created\"}");
    assert_int_equal(stt_qs_update(pool, &d, "stamp", T("{\"_id\":\"old\",\"_rev\":\"1-x\",\"n\":41}"),
                                   T("{\"id\":\"old\",\"method\":\"PUT\"}"), &a, &doc, &resp, &err),
                     0);
    assert_string_equal(json_text(&doc), "{\"_id\":\"old\",\"_rev\":\"1-x\",\"n\":42}");
    assert_string_equal(json_text(&resp), "{\"json\":{\"n\":42},\"code\":201}");
    assert_int_equal(stt_qs_update(pool, &d, "nothing", NONE, T("{\"method\":\"POST\"}"), &a, &doc, &resp, &err), 0);
    assert_int_equal(doc.type, STT_JSON_NULL);
    assert_int_equal(stt_qs_update(pool, &d, "stamp", NONE, T("{\"method\":\"GET\"}"), &a, &doc, &resp, &err),
                     STT_QS_E_ERROR);
    assert_string_equal(err.error, "method_not_allowed");
    stt_arena_free(&a);
}

/* ---------------------------------------------------------------------------------
 * Failures that cost one call
 * --------------------------------------------------------------------------------- */

/* After each failure the same kind of call works again. */
static void works(const char *lang)
{
    stt_arena_t a = STT_ARENA_INIT;
    stt_qs_err_t err;
    stt_qs_ddoc_t d = ddoc(lang, "1-a", design);
    stt_qs_text_t doc = T("{\"_id\":\"1\",\"type\":\"a\"}");
    bool pass = false;
    assert_int_equal(stt_qs_filter(pool, &d, "by_type", &doc, 1, T("{\"query\":{\"type\":\"a\"}}"), &a, &pass, &err),
                     0);
    assert_true(pass);
    stt_arena_free(&a);
}

static void runaway_loop(void **state)
{
    stt_arena_t a = STT_ARENA_INIT;
    stt_qs_err_t err;
    stt_qs_ddoc_t d = ddoc(NULL, "1-a", design);
    stt_qs_text_t doc = T("{\"_id\":\"1\"}");
    bool pass;
    size_t before = killed();
    assert_int_equal(stt_qs_filter(pool, &d, "loops", &doc, 1, T("{}"), &a, &pass, &err), STT_QS_E_TIMEOUT);
    assert_string_equal(err.error, "os_process_error");
    assert_string_equal(err.reason, "OS process timed out.");
    assert_int_equal(killed(), before + 1);
    works(NULL);
    stt_arena_free(&a);
}

static void throws(void **state)
{
    stt_arena_t a = STT_ARENA_INIT;
    stt_qs_err_t err;
    stt_qs_ddoc_t d = ddoc(NULL, "1-a", design);
    stt_qs_text_t doc = T("{\"_id\":\"1\"}");
    bool pass;
    size_t before = killed();
    assert_int_equal(stt_qs_filter(pool, &d, "throws", &doc, 1, T("{}"), &a, &pass, &err), STT_QS_E_ERROR);
    assert_string_equal(err.error, "unnamed_error");
    assert_string_equal(err.reason, "(new String(\"boom\"))");
    assert_int_equal(killed(), before); /* an error reply keeps the process */
    works(NULL);
    stt_arena_free(&a);
}

static void unbounded_allocation(void **state)
{
    stt_arena_t a = STT_ARENA_INIT;
    stt_qs_err_t err;
    stt_qs_ddoc_t d = ddoc("js96", "1-a", design);
    stt_qs_text_t doc = T("{\"_id\":\"1\"}");
    bool pass;
    size_t before = killed();
    assert_int_equal(stt_qs_filter(pool, &d, "hog", &doc, 1, T("{}"), &a, &pass, &err), STT_QS_E_PROCESS);
    assert_string_equal(err.error, "os_process_error");
    assert_non_null(strstr(err.reason, "out of memory"));
    assert_int_equal(killed(), before + 1);
    works("js96");
    stt_arena_free(&a);
}

static void crash_and_garbage(void **state)
{
    stt_arena_t a = STT_ARENA_INIT;
    stt_qs_err_t err;
    size_t before = killed();
    assert_int_equal(stt_qs_compile(pool, "crashes", T("f"), &a, &err), STT_QS_E_PROCESS);
    assert_string_equal(err.error, "os_process_error");
    assert_string_equal(err.reason, "{exit_status,3}");
    assert_int_equal(killed(), before + 1);
    assert_int_equal(stt_qs_compile(pool, "garbage", T("f"), &a, &err), STT_QS_E_PROCESS);
    assert_string_equal(err.error, "os_process_error");
    assert_int_equal(killed(), before + 2);
    assert_int_equal(stt_qs_compile(pool, "nonstarter", T("f"), &a, &err), STT_QS_E_PROCESS);
    assert_string_equal(err.reason, "{exit_status,127}");
    /* the JavaScript processes were not disturbed */
    works(NULL);
    stt_qs_stats_t st;
    stt_qs_pool_stats(pool, &st);
    assert_true(st.processes <= 3);
    stt_arena_free(&a);
}

/* A process that exits while idle (settee-qs does after a fatal error) is noticed
 * at checkout or, failing that, the call is retried once on a fresh process. */
static void idle_exit(void **state)
{
    stt_arena_t a = STT_ARENA_INIT;
    stt_qs_err_t err;
    stt_qs_ddoc_t d = ddoc(NULL, "1-q", "{\"_id\":\"_design/t\",\"filters\":{\"quit\":\"function(){ return true }\"}}");
    /* an unknown command is fatal for settee-qs: it replies and exits */
    const char *path[] = {"nonsense"};
    stt_json_t out;
    assert_int_equal(stt_qs_ddoc_call(pool, &d, path, 1, T("[]"), &a, &out, &err), STT_QS_E_PROCESS);
    assert_string_equal(err.error, "unknown_command");
    works(NULL);
    stt_arena_free(&a);
}

/* ---------------------------------------------------------------------------------
 * Threads: more callers than processes
 * --------------------------------------------------------------------------------- */

static void *caller(void *arg)
{
    stt_qs_ddoc_t d = ddoc(NULL, "1-a", design);
    long fails = 0;
    for (int i = 0; i < 25; i++) {
        stt_arena_t a = STT_ARENA_INIT;
        stt_qs_err_t err;
        char body[64];
        int len = snprintf(body, sizeof body, "{\"_id\":\"%d\",\"type\":\"%s\"}", i, i % 2 ? "a" : "b");
        stt_qs_text_t doc = {body, (size_t)len};
        bool pass = false;
        if (stt_qs_filter(pool, &d, "by_type", &doc, 1, T("{\"query\":{\"type\":\"a\"}}"), &a, &pass, &err) ||
            pass != (i % 2 == 1))
            fails++;
        stt_arena_free(&a);
    }
    return (void *)fails;
}

static void threads(void **state)
{
    pthread_t t[6];
    for (int i = 0; i < 6; i++)
        assert_int_equal(pthread_create(&t[i], NULL, caller, NULL), 0);
    for (int i = 0; i < 6; i++) {
        void *fails;
        pthread_join(t[i], &fails);
        assert_int_equal((long)fails, 0);
    }
    stt_qs_stats_t st;
    stt_qs_pool_stats(pool, &st);
    assert_true(st.processes <= 3);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(map_emit),
        cmocka_unit_test(map_batch),
        cmocka_unit_test(reduce_rereduce),
        cmocka_unit_test(compile_errors),
        cmocka_unit_test(vdu),
        cmocka_unit_test(filters),
        cmocka_unit_test(update_handler),
        cmocka_unit_test(runaway_loop),
        cmocka_unit_test(throws),
        cmocka_unit_test(unbounded_allocation),
        cmocka_unit_test(crash_and_garbage),
        cmocka_unit_test(idle_exit),
        cmocka_unit_test(threads),
    };
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, setup, teardown);
}
