/* settee-bench-qs: what the query-server pool costs, through qserver.h only.
 *
 *   settee-bench-qs [--docs N] [--batch N] [--command "settee-qs ..."]
 *
 * Figures printed (median of 3 rounds, each over N 1 KB docs):
 *  - map: docs/s of function(doc){ emit(doc.type, 1) } through stt_qs_map_docs,
 *    at the given batch size (pipelined) and at batch 1 (one round trip per call);
 *  - validate: stt_qs_validate calls/s of a small validate_doc_update;
 *  - filter: docs/s through stt_qs_filter, 100 docs per call;
 *  - start: ms to start a fresh process and get its first reply.
 * The default command is settee-qs beside this binary. It never fails on a
 * number; exit 1 when a call fails, 2 on bad arguments. */
#include "qserver/qserver.h"
#include "src/common/log.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TEXT(lit) ((stt_qs_text_t){lit, sizeof(lit) - 1})

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median3(double v[3])
{
    qsort(v, 3, sizeof v[0], cmp);
    return v[1];
}

static void die(const char *what, const stt_qs_err_t *err)
{
    fprintf(stderr, "settee-bench-qs: %s: %s: %s\n", what, err->error, err->reason);
    exit(1);
}

int main(int argc, char **argv)
{
    size_t ndocs = 20000, batch = 500;
    const char *command = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--docs") && i + 1 < argc)
            ndocs = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            batch = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--command") && i + 1 < argc)
            command = argv[++i];
        else {
            fprintf(stderr, "usage: settee-bench-qs [--docs N] [--batch N] [--command CMD]\n");
            return 2;
        }
    }
    if (!ndocs || !batch) return 2;
    stt_log_setup(STT_LOG_WARNING, STT_LOG_TEXT);
    stt_qs_config_t c;
    stt_qs_config_default(&c, NULL);
    if (command) stt_qs_config_set_server(&c, "javascript", command);
    stt_qs_pool_t *pool;
    stt_qs_pool_new(&c, &pool);

    /* 1 KB docs of a few types */
    stt_qs_text_t *docs = calloc(ndocs, sizeof *docs);
    char pad[901];
    memset(pad, 'x', 900);
    pad[900] = '\0';
    for (size_t i = 0; i < ndocs; i++) {
        char *s = malloc(1100);
        int len = snprintf(s, 1100, "{\"_id\":\"doc%08zu\",\"_rev\":\"1-%032zx\",\"type\":\"t%zu\",\"pad\":\"%s\"}", i,
                           i, i % 7, pad);
        docs[i] = (stt_qs_text_t){s, (size_t)len};
    }

    stt_qs_err_t err;
    stt_qs_text_t fun = TEXT("function(doc){ emit(doc.type, 1) }");
    size_t sizes[2] = {batch, 1};
    for (int s = 0; s < 2; s++) {
        double rate[3];
        for (int round = 0; round < 3; round++) {
            stt_arena_t a = STT_ARENA_INIT;
            stt_qs_mapper_t *m;
            if (stt_qs_map_open(pool, NULL, (stt_qs_text_t){0}, &fun, 1, &a, &err, &m)) die("map_open", &err);
            stt_json_t *out = malloc(sizes[s] * sizeof *out);
            size_t n = s ? ndocs / 4 : ndocs; /* batch 1 is slower: fewer docs */
            double t0 = now();
            for (size_t i = 0; i < n; i += sizes[s]) {
                size_t k = n - i < sizes[s] ? n - i : sizes[s];
                if (stt_qs_map_docs(m, docs + i, k, &a, out, &err)) die("map_docs", &err);
                if (s == 0 && i % (sizes[s] * 20) == 0) { /* keep the arena small */
                    stt_arena_free(&a);
                }
            }
            rate[round] = (double)n / (now() - t0);
            stt_qs_map_close(m);
            free(out);
            stt_arena_free(&a);
        }
        printf("map emit(doc.type, 1), batch %-5zu %10.0f docs/s\n", sizes[s], median3(rate));
    }

    const char *ddoc_json = "{\"_id\":\"_design/b\",\"validate_doc_update\":\"function(n, o, u) { if (!n.type) "
                            "throw({forbidden: 'type'}) }\",\"filters\":{\"t\":\"function(doc, req) { return doc.type "
                            "== req.query.type }\"}}";
    stt_qs_ddoc_t dd = {"_design/b", "1-a", NULL, {ddoc_json, strlen(ddoc_json)}};
    stt_qs_text_t uctx = TEXT("{\"name\":\"u\",\"roles\":[]}"), sec = TEXT("{}");
    double rate[3];
    for (int round = 0; round < 3; round++) {
        size_t n = ndocs / 4;
        double t0 = now();
        for (size_t i = 0; i < n; i++) {
            stt_arena_t a = STT_ARENA_INIT;
            if (stt_qs_validate(pool, &dd, docs[i], (stt_qs_text_t){0}, uctx, sec, &a, &err)) die("validate", &err);
            stt_arena_free(&a);
        }
        rate[round] = (double)n / (now() - t0);
    }
    printf("validate_doc_update, one per call   %10.0f calls/s\n", median3(rate));

    bool *pass = malloc(100 * sizeof *pass);
    stt_qs_text_t req = TEXT("{\"query\":{\"type\":\"t3\"}}");
    for (int round = 0; round < 3; round++) {
        double t0 = now();
        for (size_t i = 0; i + 100 <= ndocs; i += 100) {
            stt_arena_t a = STT_ARENA_INIT;
            if (stt_qs_filter(pool, &dd, "t", docs + i, 100, req, &a, pass, &err)) die("filter", &err);
            stt_arena_free(&a);
        }
        rate[round] = (double)(ndocs / 100 * 100) / (now() - t0);
    }
    printf("filter, 100 docs per call           %10.0f docs/s\n", median3(rate));

    /* start-up: a pool of its own, so every call starts a process */
    stt_qs_config_t c1 = c;
    c1.soft_limit = 0;
    stt_qs_pool_t *cold;
    stt_qs_pool_new(&c1, &cold);
    for (int round = 0; round < 3; round++) {
        stt_arena_t a = STT_ARENA_INIT;
        double t0 = now();
        if (stt_qs_compile(cold, NULL, fun, &a, &err)) die("compile", &err);
        rate[round] = (now() - t0) * 1000;
        stt_arena_free(&a);
    }
    printf("start a process + first call        %10.1f ms\n", median3(rate));
    stt_qs_pool_free(cold);

    free(pass);
    for (size_t i = 0; i < ndocs; i++)
        free((void *)docs[i].s);
    free(docs);
    stt_qs_pool_free(pool);
    return 0;
}
