/* Unit tests for mango/feed.c: selector feeds read from a json index give, with the
 * caller's scan past upto, exactly the rows of a full scan of the by-seq index.
 *
 * Each numbered step writes to one database (inserts, updates that enter and leave
 * the selector, deletions, a conflict branch whose winner matches or not), then for
 * every since from 0 to the db's seq compares the two feeds: the full one (every
 * change past since whose winner matches) and the one from the index (the index's
 * rows in (since, upto] that match, then the changes past upto that match).
 * A store in a temp dir, removed at the end. An argument is a cmocka test filter. */
#include "mango/mango.h"
#include "replication/replication.h"
#include "replication/selector.h"
#include "src/common/err.h"
#include "store/store.h"
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void json(stt_arena_t *a, const char *text, stt_json_t *out)
{
    char *s = stt_arena_strndup(a, text, strlen(text));
    for (char *p = s; *p; p++)
        if (*p == '\'') *p = '"';
    if (stt_json_parse(a, s, strlen(s), out, NULL, 0) != 0) fail_msg("bad test JSON %s", text);
}

/* Writes one doc; new_edits false for a replicated branch (text has _revisions). */
static void put(stt_db_t *db, const char *text, bool new_edits)
{
    stt_arena_t a = STT_ARENA_INIT;
    stt_json_t obj;
    json(&a, text, &obj);
    stt_doc_parse_opts_t po = {.new_edits = new_edits};
    stt_doc_write_t w;
    const char *reason = NULL;
    if (stt_doc_parse(&a, &obj, &po, &w, &reason) != 0) fail_msg("parse %s: %s", text, reason);
    stt_doc_result_t res;
    int rc = stt_doc_write(db, &w, 1, new_edits, &res);
    if (rc || res.err) fail_msg("write %s: %d %d", text, rc, res.err);
    stt_arena_free(&a);
}

/* The current rev of id ("" when missing). */
static void rev_of(stt_db_t *db, const char *id, char *out)
{
    stt_reader_t *rd;
    stt_doc_t d;
    out[0] = '\0';
    assert_int_equal(stt_reader_open(db, &rd), 0);
    if (stt_doc_get(rd, id, strlen(id), &d) == 0) {
        const stt_rev_node_t *w = &d.tree.nodes[d.winner];
        stt_buf_t b = STT_BUF_INIT;
        stt_rev_format(&b, w->gen, d.tree.ids.base + w->idoff, w->idlen);
        snprintf(out, 64, "%s", b.base);
        stt_buf_free(&b);
        stt_doc_free(&d);
    }
    stt_reader_close(rd);
}

typedef struct {
    stt_reader_t *rd;
    const stt_selector_t *sel;
    char out[8192];
    size_t len;
} feed_t;

static bool winner_matches(stt_reader_t *rd, const stt_selector_t *sel, const char *id, size_t idlen)
{
    stt_doc_t d;
    if (stt_doc_get(rd, id, idlen, &d) != 0) return false;
    stt_buf_t b = STT_BUF_INIT;
    stt_render_opts_t ro = {0};
    stt_arena_t a = STT_ARENA_INIT;
    stt_json_t doc;
    bool ok = stt_doc_render(rd, &d, d.winner, &ro, &b) == 0 && stt_json_parse(&a, b.base, b.len, &doc, NULL, 0) == 0 &&
              stt_selector_match(sel, &doc);
    stt_arena_free(&a);
    stt_buf_free(&b);
    stt_doc_free(&d);
    return ok;
}

static void emit(feed_t *f, const char *id, size_t idlen, uint64_t seq)
{
    if (winner_matches(f->rd, f->sel, id, idlen))
        f->len += (size_t)snprintf(f->out + f->len, sizeof(f->out) - f->len, "%llu:%.*s ", (unsigned long long)seq,
                                   (int)idlen, id);
}

static int on_change(void *ctx, const stt_doc_summary_t *s)
{
    emit(ctx, s->id, s->idlen, s->seq);
    return 0;
}

/* Rows the index gave and full-feed rows seen, over all comparisons: both must
 * be many, or the comparisons proved nothing. */
static size_t g_index_rows, g_full_rows;

static void compare(stt_db_t *db, const char *sel_text, int step)
{
    stt_arena_t a = STT_ARENA_INIT;
    stt_json_t sel;
    json(&a, sel_text, &sel);
    stt_selector_t *s;
    assert_int_equal(stt_selector_compile(&a, &sel, &s, NULL, 0), 0);
    stt_db_info_t info;
    stt_db_info(db, &info);
    for (uint64_t since = 0; since <= info.update_seq; since++) {
        feed_t full = {.sel = s}, ix = {.sel = s};
        stt_mango_feed_row_t *rows = NULL;
        size_t n = 0;
        uint64_t upto = 0;
        int rc = stt_mango_feed_rows(db, &sel, since, &rows, &n, &upto);
        if (rc) fail_msg("step %d: feed_rows %s: %d", step, sel_text, rc);
        assert_int_equal(stt_reader_open(db, &full.rd), 0);
        ix.rd = full.rd;
        stt_changes_scan(full.rd, since, false, on_change, &full);
        for (size_t i = 0; i < n; i++)
            emit(&ix, rows[i].id, rows[i].idlen, rows[i].seq);
        stt_changes_scan(ix.rd, upto > since ? upto : since, false, on_change, &ix);
        stt_reader_close(full.rd);
        stt_mango_feed_free(rows, n);
        g_index_rows += n;
        for (const char *p = full.out; *p; p++)
            g_full_rows += *p == ' ';
        if (strcmp(full.out, ix.out) != 0)
            fail_msg("step %d, since %llu, %s:\n full  %s\n index %s", step, (unsigned long long)since, sel_text,
                     full.out, ix.out);
    }
    stt_selector_free(s);
    stt_arena_free(&a);
}

static void make_index(stt_db_t *db, const char *body)
{
    stt_arena_t a = STT_ARENA_INIT;
    stt_json_t b;
    json(&a, body, &b);
    stt_buf_t out = STT_BUF_INIT;
    stt_mango_err_t err;
    int rc = stt_mango_index_create(db, &b, &out, &err);
    if (rc) fail_msg("index %s: %d %s", body, rc, err.reason);
    stt_buf_free(&out);
    stt_arena_free(&a);
}

static void feed_equals_scan(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_mango_feed.XXXXXX";
    assert_non_null(mkdtemp(dir));
    stt_store_opts_t o;
    stt_store_opts_default(&o);
    stt_store_t *store = NULL;
    char err[256];
    if (stt_store_open(dir, &o, &store, err, sizeof(err)) != 0) fail_msg("store: %s", err);
    assert_int_equal(stt_db_create(store, "f", 1), 0);
    stt_db_t *db = NULL;
    assert_int_equal(stt_db_open(store, "f", 1, &db), 0);

    static const char *const sels[] = {
        "{'type':'task','project':'p1'}",      /* the partial index on type=task holds it */
        "{'type':'task','owner':{'$gt':'b'}}", /* and this one */
        "{'kind':'x','n':{'$gte':2}}",         /* the json index on n holds it */
    };
    /* nothing holds these: STT_E_NOT_FOUND */
    static const char *const unheld[] = {"{'type':'task'}", "{'project':'p1'}", "{'_id':{'$gt':'a'}}"};

    make_index(
        db,
        "{'index':{'fields':['project'],'partial_filter_selector':{'type':'task'}},'ddoc':'t','name':'by-project'}");
    make_index(db,
               "{'index':{'fields':['owner'],'partial_filter_selector':{'type':'task'}},'ddoc':'t','name':'by-owner'}");
    make_index(db, "{'index':{'fields':['n']},'ddoc':'n','name':'by-n'}");
    char rev[64], text[512];
    for (int step = 1; step <= 7; step++) {
        switch (step) {
        case 1: /* inserts */
            put(db, "{'_id':'a','type':'task','project':'p1','owner':'carl','kind':'x','n':1}", true);
            put(db, "{'_id':'b','type':'task','project':'p2','owner':'ann','kind':'x','n':2}", true);
            put(db, "{'_id':'c','type':'note','project':'p1','kind':'x','n':3}", true);
            put(db, "{'_id':'d','type':'task','project':'p1','owner':'dan'}", true);
            break;
        case 2: /* b enters project p1, a leaves it */
            rev_of(db, "b", rev);
            snprintf(text, sizeof(text), "{'_id':'b','_rev':'%s','type':'task','project':'p1','owner':'ann','n':5}",
                     rev);
            put(db, text, true);
            rev_of(db, "a", rev);
            snprintf(text, sizeof(text), "{'_id':'a','_rev':'%s','type':'task','project':'p9','owner':'carl'}", rev);
            put(db, text, true);
            break;
        case 3: /* d deleted, c becomes a task */
            rev_of(db, "d", rev);
            snprintf(text, sizeof(text), "{'_id':'d','_rev':'%s','_deleted':true}", rev);
            put(db, text, true);
            rev_of(db, "c", rev);
            snprintf(text, sizeof(text),
                     "{'_id':'c','_rev':'%s','type':'task','project':'p1','owner':'cy','kind':'x','n':4}", rev);
            put(db, text, true);
            break;
        case 4: /* a conflict whose branch wins (higher rev id at gen 2) and matches */
            put(db, "{'_id':'e','type':'task','project':'p2','owner':'eve'}", true);
            put(db,
                "{'_id':'e','_rev':'2-ffffffffffffffffffffffffffffffff','_revisions':{'start':2,'ids':"
                "['ffffffffffffffffffffffffffffffff','00000000000000000000000000000000']},'type':'task','project':'p1',"
                "'owner':'eve'}",
                false);
            break;
        case 5: /* a losing branch that would match: the winner does not */
            put(db, "{'_id':'f','_rev':'1-ffffffffffffffffffffffffffffffff','type':'note','project':'p1'}", false);
            put(db,
                "{'_id':'f','_rev':'1-00000000000000000000000000000000','type':'task','project':'p1','owner':'zed'}",
                false);
            break;
        case 6: /* one more match everywhere */
            put(db, "{'_id':'g','type':'task','project':'p1','owner':'gus','kind':'x','n':9}", true);
            break;
        case 7: /* undelete d */
            put(db, "{'_id':'d','type':'task','project':'p1','owner':'dora'}", true);
            break;
        }
        for (size_t i = 0; i < sizeof(sels) / sizeof(sels[0]); i++)
            compare(db, sels[i], step);
    }
    if (g_index_rows < 50 || g_full_rows < 50)
        fail_msg("only %zu index rows and %zu full-feed rows compared", g_index_rows, g_full_rows);
    print_message("%zu index rows, %zu full-feed rows compared\n", g_index_rows, g_full_rows);
    for (size_t i = 0; i < sizeof(unheld) / sizeof(unheld[0]); i++) {
        stt_arena_t a = STT_ARENA_INIT;
        stt_json_t sel;
        json(&a, unheld[i], &sel);
        stt_mango_feed_row_t *rows = NULL;
        size_t n = 0;
        uint64_t upto = 0;
        assert_int_equal(stt_mango_feed_rows(db, &sel, 0, &rows, &n, &upto), STT_E_NOT_FOUND);
        stt_arena_free(&a);
    }
    stt_db_release(db);
    stt_store_close(store);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(feed_equals_scan),
    };
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests_name("mango_feed", tests, NULL, NULL);
}
