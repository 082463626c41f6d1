/* settee-bench-feed: what a selector feed costs read from a partial index
 * (stt_mango_feed_rows) against the full by-seq scan _changes?filter=_selector
 * does today, on the same database.
 *
 *   settee-bench-feed [--quick]
 *
 * On a temp dir it removes at the end: 100,000 docs of ~1 KB (--quick: 10,000),
 * 1% of them {"type": "task", "project": "p1"}, the rest other types; a json
 * index on project with partial_filter_selector {"type": "task"}. Then, from
 * since 0, the median of 5 runs of each:
 *  - full: stt_changes_scan over every change, each winner rendered, parsed and
 *    matched against {"type": "task", "project": "p1"} (what the feed does);
 *  - index: stt_mango_feed_rows, each of its docs' winner matched the same way;
 * both must give the same docs. Also the index's first build. Prints figures,
 * never fails on a number; exit 1 when a call fails or the answers differ. */
#include "mango/mango.h"
#include "replication/replication.h"
#include "replication/selector.h"
#include "store/store.h"
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct {
    stt_reader_t *rd;
    const stt_selector_t *sel;
    size_t matched;
    uint64_t idsum; /* a checksum of the ids matched, to compare the two answers */
} scan_t;

static void examine(scan_t *s, const char *id, size_t idlen)
{
    stt_doc_t d;
    if (stt_doc_get(s->rd, id, idlen, &d) != 0) return;
    stt_buf_t b = STT_BUF_INIT;
    stt_render_opts_t ro = {0};
    stt_arena_t a = STT_ARENA_INIT;
    stt_json_t doc;
    if (stt_doc_render(s->rd, &d, d.winner, &ro, &b) == 0 && stt_json_parse(&a, b.base, b.len, &doc, NULL, 0) == 0 &&
        stt_selector_match(s->sel, &doc)) {
        s->matched++;
        for (size_t i = 0; i < idlen; i++)
            s->idsum = s->idsum * 31 + (unsigned char)id[i];
    }
    stt_arena_free(&a);
    stt_buf_free(&b);
    stt_doc_free(&d);
}

static int on_change(void *ctx, const stt_doc_summary_t *s)
{
    examine(ctx, s->id, s->idlen);
    return 0;
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "settee-bench-feed: %s: %d\n", what, rc);
    return 1;
}

int main(int argc, char **argv)
{
    bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    if (argc > 1 && !quick) {
        fprintf(stderr, "usage: settee-bench-feed [--quick]\n");
        return 2;
    }
    size_t ndocs = quick ? 10000 : 100000;
    char dir[] = "/tmp/settee-bench-feed.XXXXXX";
    if (!mkdtemp(dir)) return fail("mkdtemp", -1);
    stt_store_opts_t o;
    stt_store_opts_default(&o);
    stt_store_t *store = NULL;
    stt_db_t *db = NULL;
    char err[256];
    int rc = stt_store_open(dir, &o, &store, err, sizeof(err));
    if (rc == 0) rc = stt_db_create(store, "feed", 4);
    if (rc == 0) rc = stt_db_open(store, "feed", 4, &db);
    if (rc) return fail("store", rc);

    /* the docs, 1000 per synced batch */
    char filler[901];
    memset(filler, 'x', 900);
    filler[900] = '\0';
    double t0 = now();
    for (size_t i = 0; i < ndocs && rc == 0; i += 1000) {
        stt_arena_t a = STT_ARENA_INIT;
        stt_doc_write_t w[1000];
        size_t n = 0;
        for (size_t k = i; k < i + 1000 && k < ndocs; k++) {
            char text[1200];
            bool task = k % 100 == 7;
            snprintf(text, sizeof(text),
                     "{\"_id\":\"d%07zu\",\"type\":\"%s\",\"project\":\"p%zu\",\"n\":%zu,\"pad\":\"%s\"}", k,
                     task ? "task" : "note", task ? (size_t)1 : k % 7, k, filler);
            stt_json_t obj;
            const char *reason;
            stt_doc_parse_opts_t po = {.new_edits = true};
            if (stt_json_parse(&a, text, strlen(text), &obj, NULL, 0) != 0 ||
                stt_doc_parse(&a, &obj, &po, &w[n++], &reason) != 0)
                rc = -1;
        }
        stt_doc_result_t res[1000];
        if (rc == 0) rc = stt_doc_write(db, w, n, true, res);
        stt_arena_free(&a);
    }
    if (rc) return fail("writes", rc);
    double load = now() - t0;

    stt_arena_t a = STT_ARENA_INIT;
    stt_json_t ixbody, sel;
    static const char ixtext[] =
        "{\"index\":{\"fields\":[\"project\"],\"partial_filter_selector\":{\"type\":\"task\"}},\"ddoc\":\"t\"}";
    static const char seltext[] = "{\"type\":\"task\",\"project\":\"p1\"}";
    stt_json_parse(&a, ixtext, strlen(ixtext), &ixbody, NULL, 0);
    stt_json_parse(&a, seltext, strlen(seltext), &sel, NULL, 0);
    stt_buf_t out = STT_BUF_INIT;
    stt_mango_err_t merr;
    rc = stt_mango_index_create(db, &ixbody, &out, &merr);
    stt_buf_free(&out);
    if (rc) return fail("index", rc);
    stt_selector_t *s = NULL;
    if (stt_selector_compile(&a, &sel, &s, NULL, 0) != 0) return fail("selector", -1);

    double full[5], ix[5], build = 0;
    scan_t fs = {0}, is = {0};
    for (int r = 0; r < 5; r++) {
        fs = (scan_t){.sel = s};
        if ((rc = stt_reader_open(db, &fs.rd)) != 0) return fail("reader", rc);
        t0 = now();
        rc = stt_changes_scan(fs.rd, 0, false, on_change, &fs);
        full[r] = now() - t0;
        stt_reader_close(fs.rd);
        if (rc) return fail("changes scan", rc);

        is = (scan_t){.sel = s};
        stt_mango_feed_row_t *rows = NULL;
        size_t n = 0;
        uint64_t upto = 0;
        t0 = now();
        rc = stt_mango_feed_rows(db, &sel, 0, &rows, &n, &upto);
        if (rc == 0) rc = stt_reader_open(db, &is.rd);
        for (size_t i = 0; rc == 0 && i < n; i++)
            examine(&is, rows[i].id, rows[i].idlen);
        ix[r] = now() - t0;
        if (is.rd) stt_reader_close(is.rd);
        stt_mango_feed_free(rows, n);
        if (rc) return fail("feed rows", rc);
        if (r == 0) build = ix[0];
    }
    if (fs.matched != is.matched || fs.idsum != is.idsum) {
        fprintf(stderr, "settee-bench-feed: the answers differ: %zu vs %zu docs\n", fs.matched, is.matched);
        return 1;
    }
    qsort(full, 5, sizeof(double), cmp_double);
    qsort(ix + 1, 4, sizeof(double), cmp_double);
    printf("%zu docs (loaded in %.1f s), %zu match {\"type\":\"task\",\"project\":\"p1\"}\n", ndocs, load, fs.matched);
    printf("full by-seq scan + match:        %8.1f ms (median of 5)\n", full[2] * 1e3);
    printf("partial index feed + match:      %8.1f ms (median of runs 2-5; %.0fx less)\n", (ix[2] + ix[3]) / 2 * 1e3,
           full[2] / ((ix[2] + ix[3]) / 2));
    printf("first run, building the index:   %8.1f ms\n", build * 1e3);
    stt_selector_free(s);
    stt_arena_free(&a);
    stt_db_release(db);
    stt_store_close(store);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
