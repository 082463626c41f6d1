/* Protocol-level tests of settee-qs: lines piped to a fresh process, its output
 * compared byte for byte with what CouchDB's query-server protocol prescribes.
 *
 * Each numbered case is a script (the command lines) and the exact output lines,
 * plus the exit status expected when stdin closes (0, or 1 after a fatal
 * error). The binary is build/settee-qs beside this test's folder. Run one case
 * alone with its name: test_settee_qs cases 7 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char qs_path[PATH_MAX + 16];
static int only_case = -1;

typedef struct {
    const char *name;
    const char *in;  /* lines, each ending in \n */
    const char *out; /* expected lines */
    int status;      /* exit status after stdin closes */
} case_t;

#define DDOC                                                                                                           \
    "[\"ddoc\",\"new\",\"_design/a\",{\"_id\":\"_design/a\","                                                          \
    "\"validate_doc_update\":\"function(n, o, u, s) { if (n.no) throw({forbidden: 'no'});"                             \
    " if (!u.name) throw({unauthorized: 'who?'}); if (s.admins.names.indexOf(u.name) < 0 && n.adm)"                    \
    " throw({forbidden: 'admins only'}) }\","                                                                          \
    "\"filters\":{\"q\":\"function(doc, req) { return doc.t == req.query.t }\","                                       \
    "\"this\":\"function(doc) { return this._id === '_design/a' }\"},"                                                 \
    "\"views\":{\"v\":{\"map\":\"function(doc) { if (doc.t == 'x') emit(null) }\"}},"                                  \
    "\"updates\":{\"u\":\"function(doc, req) { return [{_id: req.uuid, body: req.body}, {json: {ok: true}}] }\","      \
    "\"s\":\"function(doc, req) { return [null, 'text'] }\",\"bad\":\"function() { return [null] }\"},"                \
    "\"shows\":{\"s\":\"function() { return 'x' }\"},"                                                                 \
    "\"lib\":{\"a\":\"var b = require('./b'); exports.v = b.v + 1; exports.n = require('./b').n\","                    \
    "\"b\":\"exports.v = 41; exports.n = (this.count = (this.count || 0) + 1)\","                                      \
    "\"up\":\"exports.x = require('../lib/b').v\"}}]\n"

static const case_t cases[] = {
    /* 1 */ {"reset", "[\"reset\"]\n[\"reset\",{\"reduce_limit\":true}]\n", "true\ntrue\n", 0},
    /* 2 */
    {"map_doc",
     "[\"reset\",{}]\n"
     "[\"add_fun\",\"function(doc) { emit(doc._id, doc.n); emit([doc.n, 'x'], {v: doc.n}); log('mapped ' + doc._id) "
     "}\"]\n"
     "[\"add_fun\",\"function(doc) { if (doc.n > 1) emit(doc.n) }\"]\n"
     "[\"map_doc\",{\"_id\":\"a\",\"n\":1}]\n[\"map_doc\",{\"_id\":\"b\",\"n\":2}]\n",
     "true\ntrue\ntrue\n"
     "[\"log\",\"mapped a\"]\n[[[\"a\",1],[[1,\"x\"],{\"v\":1}]],[]]\n"
     "[\"log\",\"mapped b\"]\n[[[\"b\",2],[[2,\"x\"],{\"v\":2}]],[[2,null]]]\n",
     0},
    /* 3: ES2015+ as SpiderMonkey 102 (CouchDB 3.4's engine) has it */
    {"es2015",
     "[\"reset\",{}]\n"
     "[\"add_fun\",\"(doc) => { const {a, ...rest} = doc.o; let m = new Map([[a, 1]]);"
     " for (const [k, v] of m) emit(`${k}-${v}`, Object.keys(rest)); emit([...doc.l].reverse(), doc.o?.a ?? 0) };\"]\n"
     "[\"map_doc\",{\"_id\":\"a\",\"o\":{\"a\":\"k\",\"b\":1,\"c\":2},\"l\":[1,2]}]\n",
     "true\ntrue\n[[[\"k-1\",[\"b\",\"c\"]],[[2,1],\"k\"]]]\n", 0},
    /* 4 */
    {"reduce",
     "[\"reset\",{}]\n"
     "[\"reduce\",[\"function(k, v) { return sum(v) }\",\"function(k, v) { return k.map(x => x[1]) }\"],"
     "[[[1,\"d1\"],10],[[2,\"d2\"],20]]]\n"
     "[\"rereduce\",[\"function(k, v, re) { return re ? sum(v) : -1 }\"],[1,2,3]]\n",
     "true\n[true,[30,[\"d1\",\"d2\"]]]\n[true,[6]]\n", 0},
    /* 5 */
    {"compile_errors",
     "[\"reset\",{}]\n[\"add_fun\",\"42\"]\n[\"add_fun\",\"function(doc) { emit(doc._id, \"]\n"
     "[\"add_fun\",\"function(doc) {}; \"]\n",
     "true\n[\"error\",\"compilation_error\",\"Expression does not eval to a function. (42)\"]\n"
     "[\"error\",\"compilation_error\",\"(new SyntaxError(\\\"missing } after function body\\\", \\\"map\\\", 2)) "
     "(function(doc) { emit(doc._id, )\"]\n"
     "true\n",
     0},
    /* 6: a map function that throws skips the doc; 'fatal_error' ends the request */
    {"map_errors",
     "[\"reset\",{}]\n[\"add_fun\",\"function(doc) { emit(doc.a.b, 1) }\"]\n[\"map_doc\",{\"_id\":\"x\"}]\n"
     "[\"reset\",{}]\n[\"add_fun\",\"function(doc) { throw 'fatal_error' }\"]\n[\"map_doc\",{\"_id\":\"x\"}]\n",
     "true\ntrue\n"
     "[\"log\",\"function raised exception (new TypeError(\\\"doc.a is undefined\\\", \\\"map\\\", 1)) with doc._id "
     "x\"]\n"
     "[[]]\ntrue\ntrue\n[\"error\",\"map_runtime_error\",\"function raised 'fatal_error'\"]\n",
     0},
    /* 7: one map function cannot change what the next sees, nor the helpers */
    {"map_isolation",
     "[\"reset\",{}]\n"
     "[\"add_fun\",\"function(doc) { doc.n = 99; try { emit = null } catch (e) {} emit(doc.n, 1) }\"]\n"
     "[\"add_fun\",\"function(doc) { emit(doc.n, typeof emit) }\"]\n[\"map_doc\",{\"_id\":\"x\",\"n\":1}]\n",
     "true\ntrue\ntrue\n[[[1,1]],[[1,\"function\"]]]\n", 0},
    /* 8 */
    {"validate_doc_update",
     DDOC "[\"ddoc\",\"_design/a\",[\"validate_doc_update\"],[{\"_id\":\"d\"},null,{\"name\":\"bob\"},"
          "{\"admins\":{\"names\":[]}}]]\n"
          "[\"ddoc\",\"_design/a\",[\"validate_doc_update\"],[{\"_id\":\"d\",\"no\":1},null,{\"name\":\"bob\"},{}]]\n"
          "[\"ddoc\",\"_design/a\",[\"validate_doc_update\"],[{\"_id\":\"d\"},null,{\"name\":null},{}]]\n"
          "[\"ddoc\",\"_design/a\",[\"validate_doc_update\"],[{\"_id\":\"d\",\"adm\":1},null,{\"name\":\"bob\"},"
          "{\"admins\":{\"names\":[\"eve\"]}}]]\n",
     "true\n1\n{\"forbidden\":\"no\"}\n{\"unauthorized\":\"who?\"}\n{\"forbidden\":\"admins only\"}\n", 0},
    /* 9 */
    {"filters",
     DDOC "[\"ddoc\",\"_design/a\",[\"filters\",\"q\"],[[{\"t\":\"x\"},{\"t\":\"y\"}],{\"query\":{\"t\":\"y\"}}]]\n"
          "[\"ddoc\",\"_design/a\",[\"filters\",\"this\"],[[{}],{}]]\n"
          "[\"ddoc\",\"_design/a\",[\"views\",\"v\",\"map\"],[[{\"t\":\"x\"},{\"t\":\"y\"}]]]\n"
          "[\"ddoc\",\"_design/a\",[\"filters\",\"none\"],[[{}],{}]]\n",
     "true\n[true,[false,true]]\n[true,[true]]\n[true,[true,false]]\n"
     "[\"error\",\"not_found\",\"missing filters function none on design doc _design/a\"]\n",
     0},
    /* 10 */
    {"updates",
     DDOC "[\"ddoc\",\"_design/a\",[\"updates\",\"u\"],[null,{\"uuid\":\"u1\",\"method\":\"POST\",\"body\":\"hi\"}]]\n"
          "[\"ddoc\",\"_design/a\",[\"updates\",\"s\"],[{\"_id\":\"x\"},{\"method\":\"PUT\"}]]\n"
          "[\"ddoc\",\"_design/a\",[\"updates\",\"s\"],[null,{\"method\":\"GET\"}]]\n"
          "[\"ddoc\",\"_design/a\",[\"updates\",\"bad\"],[null,{\"method\":\"POST\"}]]\n"
          "[\"ddoc\",\"_design/a\",[\"shows\",\"s\"],[null,{}]]\n",
     "true\n[\"up\",{\"_id\":\"u1\",\"body\":\"hi\"},{\"json\":{\"ok\":true}}]\n[\"up\",null,{\"body\":\"text\"}]\n"
     "[\"error\",\"method_not_allowed\",\"Update functions do not allow GET\"]\n"
     "[\"error\",\"render_error\",\"undefined response from update function\"]\n"
     "[\"error\",\"not_supported\",\"show functions are deprecated in CouchDB 3 and not supported by settee\"]\n",
     0},
    /* 11: CommonJS modules: relative paths, each module run once, bad paths */
    {"require",
     DDOC
     "[\"ddoc\",\"new\",\"_design/r\",{\"_id\":\"_design/r\",\"lib\":{\"a\":\"exports.v = require('./b').v + 1\","
     "\"b\":\"exports.v = 41\",\"c\":\"exports.x = require('../lib/b').v\"},"
     "\"filters\":{\"a\":\"function(doc) { return require('lib/a').v === 42 && require('lib/c').x === 41 }\","
     "\"bad\":\"function(doc) { return require('lib/nope') }\",\"rel\":\"function(doc) { return require('./x') }\"}}]\n"
     "[\"ddoc\",\"_design/r\",[\"filters\",\"a\"],[[{}],{}]]\n"
     "[\"ddoc\",\"_design/r\",[\"filters\",\"bad\"],[[{}],{}]]\n"
     "[\"ddoc\",\"_design/r\",[\"filters\",\"rel\"],[[{}],{}]]\n",
     "true\ntrue\n[true,[true]]\n"
     "[\"error\",\"invalid_require_path\",\"Object has no property \\\"nope\\\". "
     "{\\\"a\\\":\\\"exports.v = require('./b').v + 1\\\",\\\"b\\\":\\\"exports.v = 41\\\","
     "\\\"c\\\":\\\"exports.x = require('../lib/b').v\\\"}\"]\n"
     "[\"error\",\"invalid_require_path\",\"Object has no parent {\\\"_id\\\":\\\"_design/r\\\",\\\"lib\\\":"
     "{\\\"a\\\":\\\"exports.v = require('./b').v + 1\\\",\\\"b\\\":\\\"exports.v = 41\\\","
     "\\\"c\\\":\\\"exports.x = require('../lib/b').v\\\"},\\\"filters\\\":{\\\"a\\\":\\\"function(doc) { return "
     "require('lib/a').v === 42 && require('lib/c').x === 41 }\\\",\\\"bad\\\":\\\"function(doc) { return "
     "require('lib/nope') }\\\",\\\"rel\\\":\\\"function(doc) { return require('./x') }\\\"}}\"]\n",
     0},
    /* 12: map functions reach views.lib through add_lib */
    {"add_lib",
     "[\"reset\",{}]\n[\"add_lib\",{\"k\":\"exports.key = function (d) { return d._id.toUpperCase() }\"}]\n"
     "[\"add_fun\",\"function(doc) { emit(require('views/lib/k').key(doc), 1) }\"]\n[\"map_doc\",{\"_id\":\"ab\"}]\n",
     "true\ntrue\ntrue\n[[[\"AB\",1]]]\n", 0},
    /* 13: thrown values that are not errors */
    {"throws",
     DDOC "[\"ddoc\",\"new\",\"_design/t\",{\"filters\":{\"s\":\"function() { throw 'boom' }\","
          "\"e\":\"function() { throw {error: 'my_error', reason: 'mine'} }\","
          "\"x\":\"function() { null.f() }\"}}]\n"
          "[\"ddoc\",\"_design/t\",[\"filters\",\"s\"],[[{}],{}]]\n"
          "[\"ddoc\",\"_design/t\",[\"filters\",\"e\"],[[{}],{}]]\n"
          "[\"ddoc\",\"_design/t\",[\"filters\",\"x\"],[[{}],{}]]\n",
     "true\ntrue\n[\"error\",\"unnamed_error\",\"(new String(\\\"boom\\\"))\"]\n[\"error\",\"my_error\",\"mine\"]\n"
     "[\"error\",\"TypeError\",\"null has no properties\"]\n",
     0},
    /* 14: protocol errors are fatal: reply, then exit */
    {"unknown_command", "[\"reset\",{}]\n[\"frobnicate\",1]\n[\"reset\",{}]\n",
     "true\n[\"fatal\",\"unknown_command\",\"unknown command \\\"frobnicate\\\"\"]\n", 1},
    {"uncached_ddoc", "[\"ddoc\",\"_design/zz\",[\"filters\",\"q\"],[[],{}]]\n",
     "[\"fatal\",\"query_protocol_error\",\"uncached design doc: _design/zz\"]\n", 1},
    {"not_json", "[\"reset\",{}]\n{nope\n", "true\n[\"fatal\",\"query_protocol_error\",\"command is not JSON\"]\n", 1},
    /* 17: reduce_limit as CouchDB configures it through reset */
    {"reduce_limit",
     "[\"reset\",{\"reduce_limit\":true,\"reduce_limit_threshold\":10,\"reduce_limit_ratio\":2}]\n"
     "[\"reduce\",[\"function(k, v) { return v.concat(v) "
     "}\"],[[[1,\"a\"],\"aaaaaaaaaa\"],[[2,\"b\"],\"bbbbbbbbbb\"]]]\n",
     "true\n[\"error\",\"reduce_overflow_error\",\"Reduce output must shrink more rapidly: input size: 63 output size: "
     "55 context: \"]\n",
     0},
};

/* Runs settee-qs on in; returns its stdout (malloc'd) and exit status. */
static char *run(const char *in, int *status)
{
    int to[2], from[2];
    if (pipe(to) || pipe(from)) return NULL;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(to[0], 0);
        dup2(from[1], 1);
        close(to[0]);
        close(to[1]);
        close(from[0]);
        close(from[1]);
        execl(qs_path, qs_path, (char *)NULL);
        _exit(127);
    }
    close(to[0]);
    close(from[1]);
    signal(SIGPIPE, SIG_IGN); /* a fatal case exits before reading all of in */
    size_t len = strlen(in), off = 0;
    while (off < len) {
        ssize_t w = write(to[1], in + off, len - off);
        if (w <= 0) break;
        off += (size_t)w;
    }
    close(to[1]);
    size_t cap = 1 << 16, n = 0;
    char *out = malloc(cap);
    ssize_t r;
    while ((r = read(from[0], out + n, cap - n - 1)) > 0) {
        n += (size_t)r;
        if (cap - n < 2) out = realloc(out, cap *= 2);
    }
    out[n] = '\0';
    close(from[0]);
    int st;
    waitpid(pid, &st, 0);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return out;
}

static void run_cases(void **state)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (only_case > 0 && (size_t)only_case != i + 1) continue;
        int status;
        char *out = run(cases[i].in, &status);
        assert_non_null(out);
        if (strcmp(out, cases[i].out) || status != cases[i].status)
            fail_msg("case %zu (%s): exit %d (want %d)\n--- got\n%s--- want\n%s", i + 1, cases[i].name, status,
                     cases[i].status, out, cases[i].out);
        free(out);
    }
}

/* Memory bound: a function that allocates without end makes the process answer
 * with a fatal os_process_error and exit, soon and near its limit. */
static void memory_bound(void **state)
{
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "%s", qs_path);
    static const char in[] =
        "[\"ddoc\",\"new\",\"_design/m\",{\"filters\":{\"hog\":\"function() { var a = []; "
        "for (;;) a.push({i: a.length, s: 'y'.repeat(100) + a.length}) }\","
        "\"catcher\":\"function() { try { var a = []; for (;;) a.push('z'.repeat(1000) + a.length) } catch (e) {} "
        "return true }\"}}]\n"
        "[\"ddoc\",\"_design/m\",[\"filters\",\"hog\"],[[{}],{}]]\n";
    int status;
    char *out = run(in, &status);
    assert_string_equal(out,
                        "true\n[\"fatal\",\"os_process_error\",\"JavaScript ran out of memory (limit 256 MB)\"]\n");
    assert_int_equal(status, 1);
    free(out);
    /* catching the error does not keep the function running: the bound is not a JS exception */
    static const char in2[] =
        "[\"ddoc\",\"new\",\"_design/m\",{\"filters\":{\"catcher\":\"function() { try { var a = []; "
        "for (;;) a.push('z'.repeat(1000) + a.length) } catch (e) {} return true }\"}}]\n"
        "[\"ddoc\",\"_design/m\",[\"filters\",\"catcher\"],[[{}],{}]]\n";
    out = run(in2, &status);
    assert_string_equal(out,
                        "true\n[\"fatal\",\"os_process_error\",\"JavaScript ran out of memory (limit 256 MB)\"]\n");
    free(out);
}

int main(int argc, char **argv)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return 1;
    exe[n] = '\0';
    *strrchr(exe, '/') = '\0';
    *strrchr(exe, '/') = '\0';
    snprintf(qs_path, sizeof qs_path, "%s/settee-qs", exe);
    const struct CMUnitTest tests[] = {cmocka_unit_test(run_cases), cmocka_unit_test(memory_bound)};
    if (argc > 2) only_case = atoi(argv[2]);
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
