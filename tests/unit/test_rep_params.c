/* Unit tests for replication/rep_params.c: endpoints read from /_replicate bodies
 * (credentials leave the URL, a trailing '/' is added, local names stay names),
 * CouchDB's refusals, and replication ids that are stable for the same request
 * and differ when the source, target, filter or mode differ. Numbered table cases. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "replication/rep_int.h"
#include <stdio.h>
#include <string.h>

#define UUID "0123456789abcdef0123456789abcdef"

static int parse(const char *text, stt_rep_params_t *p, const char **error, char *reason)
{
    stt_arena_t a = STT_ARENA_INIT;
    stt_json_t body;
    int st = stt_json_parse(&a, text, strlen(text), &body, NULL, 0);
    if (st == 0) st = stt__rep_params_parse(&body, UUID, p, error, reason, 256);
    stt_arena_free(&a);
    return st;
}

static void endpoint_cases(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        const char *src_url, *src_db, *user, *pass;
    } cases[] = {
        {"{\"source\":\"http://u:p@h:5984/db\",\"target\":\"t\"}", "http://h:5984/db/", NULL, "u", "p"}, /* 1 */
        {"{\"source\":\"https://h/a/db/\",\"target\":\"t\"}", "https://h/a/db/", NULL, NULL, NULL},      /* 2 */
        {"{\"source\":\"dbname\",\"target\":\"t\"}", NULL, "dbname", NULL, NULL},                        /* 3 */
        {"{\"source\":{\"url\":\"http://h/db\",\"auth\":{\"basic\":{\"username\":\"a\",\"password\":\"b\"}}},"
         "\"target\":\"t\"}",
         "http://h/db/", NULL, "a", "b"}, /* 4 auth.basic */
        {"{\"source\":\"http://u%40x:p%3Aq@h/db\",\"target\":\"t\"}", "http://h/db/", NULL, "u@x", "p:q"}, /* 5 */
        {"{\"source\":\"ftp://h/db\",\"target\":\"t\"}", NULL, "ftp://h/db", NULL, NULL}, /* 6 CouchDB: a local name */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        stt_rep_params_t p;
        const char *error;
        char reason[256];
        if (parse(cases[i].body, &p, &error, reason) != 0) fail_msg("case %zu: refused: %s", i + 1, reason);
        const stt_rep_spec_t *s = &p.source;
        if ((cases[i].src_url ? !s->url || strcmp(s->url, cases[i].src_url) : s->url != NULL) ||
            (cases[i].src_db ? !s->db || strcmp(s->db, cases[i].src_db) : s->db != NULL) ||
            (cases[i].user ? !s->user || strcmp(s->user, cases[i].user) : s->user != NULL) ||
            (cases[i].pass ? !s->pass || strcmp(s->pass, cases[i].pass) : s->pass != NULL))
            fail_msg("case %zu: url %s db %s user %s", i + 1, s->url ? s->url : "-", s->db ? s->db : "-",
                     s->user ? s->user : "-");
        /* what _scheduler shows carries no password */
        if (strstr(stt__rep_spec_display(s), "p@") || strstr(stt__rep_spec_display(s), ":b@"))
            fail_msg("case %zu: credentials in %s", i + 1, stt__rep_spec_display(s));
        stt__rep_params_free(&p);
    }
}

static void refusal_cases(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        int status;
        const char *error, *reason;
    } cases[] = {
        {"{\"target\":\"t\"}", 500, "error", "Missing replicator database"},
        {"{\"source\":\"s\",\"target\":\"t\",\"doc_ids\":\"a\"}", 400, "bad_request",
         "parameter `doc_ids` must be an array"},
        {"{\"source\":\"s\",\"target\":\"t\",\"selector\":{},\"filter\":\"a/b\"}", 400, "bad_request",
         "`doc_ids`,`filter`,`selector` are mutually exclusive"},
        {"{\"source\":\"http://[::1\",\"target\":\"t\"}", 400, "invalid_replication", "endpoint has an invalid url"},
        {"{\"source\":\"s\",\"target\":\"t\",\"filter\":\"nofilter\"}", 400, "bad_request", NULL},
        {"[]", 400, "bad_request", "Document must be a JSON object"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        stt_rep_params_t p;
        const char *error = "";
        char reason[256] = "";
        int st = parse(cases[i].body, &p, &error, reason);
        if (st != cases[i].status || strcmp(error, cases[i].error) != 0 ||
            (cases[i].reason && strcmp(reason, cases[i].reason) != 0))
            fail_msg("case %zu: %d %s %s", i + 1, st, error, reason);
    }
}

static void id_cases(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "{\"source\":\"http://u:p@h/a\",\"target\":\"b\"}",
        "{\"source\":\"http://h/a\",\"target\":\"b\"}", /* the same without credentials: same id (see below) */
        "{\"source\":\"http://h/a\",\"target\":\"c\"}",
        "{\"source\":\"http://h/a\",\"target\":\"b\",\"doc_ids\":[\"x\"]}",
        "{\"source\":\"http://h/a\",\"target\":\"b\",\"selector\":{\"x\":1}}",
        "{\"source\":\"http://h/a\",\"target\":\"b\",\"filter\":\"d/f\"}",
        "{\"source\":\"a\",\"target\":\"b\"}", /* a local name is not the URL */
    };
    char ids[7][96];
    for (size_t i = 0; i < 7; i++) {
        stt_rep_params_t p, q;
        const char *error;
        char reason[256];
        if (parse(bodies[i], &p, &error, reason) || parse(bodies[i], &q, &error, reason))
            fail_msg("case %zu: %s", i + 1, reason);
        if (strcmp(p.id, q.id) != 0 || strlen(p.base_id) != 32) fail_msg("case %zu: unstable %s", i + 1, p.id);
        snprintf(ids[i], sizeof(ids[i]), "%s", p.id);
        stt__rep_params_free(&p);
        stt__rep_params_free(&q);
    }
    if (strcmp(ids[0], ids[1]) != 0) fail_msg("credentials changed the id");
    for (size_t i = 1; i < 7; i++)
        for (size_t k = i + 1; k < 7; k++)
            if (strcmp(ids[i], ids[k]) == 0) fail_msg("cases %zu and %zu share id %s", i + 1, k + 1, ids[i]);
    stt_rep_params_t p;
    const char *error;
    char reason[256];
    parse("{\"source\":\"a\",\"target\":\"b\",\"continuous\":true,\"create_target\":true}", &p, &error, reason);
    char want[96];
    snprintf(want, sizeof(want), "%s+continuous+create_target", p.base_id);
    if (strcmp(p.id, want) != 0) fail_msg("suffixes: %s", p.id);
    stt__rep_params_free(&p);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(endpoint_cases),
        cmocka_unit_test(refusal_cases),
        cmocka_unit_test(id_cases),
    };
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests_name("rep_params", tests, NULL, NULL);
}
