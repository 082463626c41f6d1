/* Unit tests for per-document access (access/) through access.h, on a fresh store in a
 * temp dir with one database created with STT_DB_ACCESS:
 *
 * - the flag: kept across a reopen, absent on a plain database, no view there;
 * - one numbered table of writes through stt_access_before_write (who, admin or not,
 *   body, deletion) with the refusal or the _access stored;
 * - reads: the user's winner and readable revisions of a conflicted doc;
 * - the per-user changes index: rows per user and role, in seq order, paging by since,
 *   descending, a doc unshared (a removal row, stt_access_was_shared) and shared again,
 *   design docs never listed; the index after a reopen;
 * - the by-id index of _all_docs: ranges both ways, a doc under two principals once,
 *   unshared and deleted docs gone.
 *
 * Run from the repo root. An argument runs only the tests whose name contains it. */
#include "access/access.h"
#include "src/common/err.h"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ====================================================================================
 * Fixture */

typedef struct {
    char dir[64];
    stt_store_t *s;
    stt_db_t *db;
    stt_arena_t a;
} fx_t;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void open_all(fx_t *f)
{
    stt_store_opts_t o;
    stt_store_opts_default(&o);
    char err[256];
    if (stt_store_open(f->dir, &o, &f->s, err, sizeof(err)) != 0) fail_msg("stt_store_open: %s", err);
    assert_int_equal(stt_db_open(f->s, "adb", 3, &f->db), 0);
}

static void close_all(fx_t *f)
{
    stt_db_release(f->db);
    stt_store_close(f->s);
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    strcpy(f->dir, "/tmp/settee-access-XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    stt_store_opts_t o;
    stt_store_opts_default(&o);
    char err[256];
    if (stt_store_open(f->dir, &o, &f->s, err, sizeof(err)) != 0) return -1;
    if (stt_db_create_flags(f->s, "adb", 3, STT_DB_ACCESS) != 0 || stt_db_create(f->s, "plain", 5) != 0) return -1;
    stt_store_close(f->s);
    open_all(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    close_all(f);
    stt_arena_free(&f->a);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* users: alice and bob (role "parents"), carol (role "nurses"), dave (none) */
static const char *parents[] = {"parents"}, *nurses[] = {"nurses"};
static const stt_user_ctx_t ALICE = {.name = "alice", .namelen = 5, .roles = parents, .nroles = 1};
static const stt_user_ctx_t BOB = {.name = "bob", .namelen = 3, .roles = parents, .nroles = 1};
static const stt_user_ctx_t CAROL = {.name = "carol", .namelen = 5, .roles = nurses, .nroles = 1};
static const stt_user_ctx_t DAVE = {.name = "dave", .namelen = 4};

/* revs by doc id, as the last write left them */
static char revs[16][2][STT_REV_STR_MAX];
static size_t nrevs;
static const char *rev_of(const char *id)
{
    for (size_t i = 0; i < nrevs; i++)
        if (strcmp(revs[i][0], id) == 0) return revs[i][1];
    return NULL;
}
static void rev_set(const char *id, const char *rev)
{
    for (size_t i = 0; i < nrevs; i++)
        if (strcmp(revs[i][0], id) == 0) {
            strcpy(revs[i][1], rev);
            return;
        }
    strcpy(revs[nrevs][0], id);
    strcpy(revs[nrevs++][1], rev);
}

static void revs_mark_deleted(const char *id)
{
    for (size_t i = 0; i < nrevs; i++)
        if (strcmp(revs[i][0], id) == 0) revs[i][1][0] = '!';
}

/* One interactive write as u (admin: db admin): the access check, then the store.
 * Returns the check's code (0 when written); *stored receives the body stored. */
static int write_as(fx_t *f, const stt_user_ctx_t *u, bool admin, const char *id, const char *body, bool deleted,
                    const char **stored)
{
    stt_doc_write_t w = {.id = id, .idlen = strlen(id), .body = body, .bodylen = strlen(body), .deleted = deleted};
    const char *prev = rev_of(id);
    if (prev && prev[0] == '!') prev = NULL; /* deleted: a new write starts over */
    if (prev) {
        assert_int_equal(stt_rev_parse(prev, strlen(prev), &w.prev), 0);
        w.has_prev = true;
    }
    stt_reader_t *rd;
    assert_int_equal(stt_reader_open(f->db, &rd), 0);
    const char *reason = NULL;
    int rc = stt_access_before_write(&f->a, f->db, u, admin, rd, &w, &reason);
    stt_reader_close(rd);
    if (rc) {
        assert_non_null(reason);
        return rc;
    }
    stt_doc_result_t res = {0};
    assert_int_equal(stt_doc_write(f->db, &w, 1, true, &res), 0);
    assert_int_equal(res.err, 0);
    rev_set(id, res.rev);
    if (deleted) revs_mark_deleted(id);
    if (stored) *stored = stt_arena_strndup(&f->a, w.body, w.bodylen);
    return 0;
}

static void put(fx_t *f, const stt_user_ctx_t *u, bool admin, const char *id, const char *body)
{
    int rc = write_as(f, u, admin, id, body, false, NULL);
    if (rc) fail_msg("write %s: %d", id, rc);
}

/* ====================================================================================
 * The flag */

static void test_flag(void **state)
{
    fx_t *f = *state;
    assert_true(stt_access_enabled(f->db));
    assert_non_null(stt_access_open(&f->a, f->db, &ALICE, false));
    assert_null(stt_access_open(&f->a, f->db, &ALICE, true)); /* db admins see all */
    stt_db_t *plain;
    assert_int_equal(stt_db_open(f->s, "plain", 5, &plain), 0);
    assert_false(stt_access_enabled(plain));
    assert_null(stt_access_open(&f->a, plain, &ALICE, false));
    /* writes to a plain db are left alone, _access or not */
    stt_reader_t *rd;
    assert_int_equal(stt_reader_open(plain, &rd), 0);
    stt_doc_write_t w = {.id = "x", .idlen = 1, .body = "{\"_access\":7}", .bodylen = 13};
    const char *reason = NULL;
    assert_int_equal(stt_access_before_write(&f->a, plain, &ALICE, false, rd, &w, &reason), 0);
    assert_string_equal(w.body, "{\"_access\":7}");
    stt_reader_close(rd);
    stt_db_release(plain);
    close_all(f);
    open_all(f); /* the flag is in the db record */
    assert_true(stt_access_enabled(f->db));
}

/* ====================================================================================
 * Writes */

static void test_writes(void **state)
{
    fx_t *f = *state;
    nrevs = 0;
    static const struct {
        const stt_user_ctx_t *u;
        bool admin;
        const char *id, *body;
        bool deleted;
        int rc;
        const char *stored; /* the body stored (rc 0) */
    } cases[] = {
        /* 0 */ {&ALICE, false, "a1", "{\"v\":1}", false, 0, "{\"_access\":[\"alice\"],\"v\":1}"},
        /* 1 */ {&ALICE, false, "a2", "{\"_access\":[],\"v\":2}", false, 0, "{\"_access\":[\"alice\"],\"v\":2}"},
        /* 2 */ {&ALICE, false, "a3", "{\"_access\":[\"bob\"]}", false, STT_E_FORBIDDEN, NULL},
        /* 3 */ {&ALICE, false, "a3", "{\"_access\":[\"parents\"]}", false, 0, "{\"_access\":[\"parents\"]}"},
        /* 4 */ {&ALICE, false, "a4", "{\"_access\":\"alice\"}", false, STT_E_BAD_REQUEST, NULL},
        /* 5 */ {&ALICE, false, "a4", "{\"_access\":[1]}", false, STT_E_BAD_REQUEST, NULL},
        /* 6 */ {&ALICE, false, "a4", "{\"_access\":[\"\"]}", false, STT_E_BAD_REQUEST, NULL},
        /* 7 */ {&BOB, false, "a1", "{\"v\":\"bob\"}", false, STT_E_FORBIDDEN, NULL},
        /* 8 */
        {&BOB, false, "a3", "{\"v\":\"bob\",\"_access\":[\"bob\",\"alice\"]}", false, 0,
         "{\"v\":\"bob\",\"_access\":[\"bob\",\"alice\"]}"},
        /* 8b: an update without _access keeps the one of the revision it replaces */
        /* 8b */
        {&ALICE, false, "a3", "{\"v\":\"kept\"}", false, 0, "{\"_access\":[\"bob\",\"alice\"],\"v\":\"kept\"}"},
        /* 9 */ {&CAROL, false, "a3", "{}", true, STT_E_FORBIDDEN, NULL},
        /* 10 */ {&BOB, false, "a3", "{}", true, 0, "{\"_access\":[\"bob\",\"alice\"]}"},
        /* 11: deleted: anyone may create it again */
        /* 11 */ {&CAROL, false, "a3", "{\"_access\":[\"nurses\"]}", false, 0, "{\"_access\":[\"nurses\"]}"},
        /* 12 */ {&DAVE, false, "d1", "{}", false, 0, "{\"_access\":[\"dave\"]}"},
        /* 13 */ {&ALICE, true, "x1", "{\"v\":1}", false, 0, "{\"v\":1}"},
        /* 14 */ {&ALICE, true, "a1", "{\"_access\":[\"carol\"]}", false, 0, "{\"_access\":[\"carol\"]}"},
        /* 15 */ {&ALICE, false, "a1", "{\"_access\":[\"alice\"]}", false, STT_E_FORBIDDEN, NULL},
        /* 16: an admin's deletion keeps the doc's _access too */
        /* 16 */ {&ALICE, true, "a1", "{}", true, 0, "{\"_access\":[\"carol\"]}"},
        /* 17: design docs are checked apart (db-admin only) */
        /* 17 */ {&ALICE, false, "_design/x", "{\"views\":{}}", false, 0, "{\"views\":{}}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        const char *stored = NULL;
        int rc = write_as(f, cases[i].u, cases[i].admin, cases[i].id, cases[i].body, cases[i].deleted, &stored);
        if (rc != cases[i].rc) fail_msg("case %zu: rc %d, expected %d", i, rc, cases[i].rc);
        if (!rc && strcmp(stored, cases[i].stored) != 0)
            fail_msg("case %zu: stored %s, expected %s", i, stored, cases[i].stored);
    }
}

/* ====================================================================================
 * Reads */

static void test_conflict_reads(void **state)
{
    fx_t *f = *state;
    /* two branches under one root, each with its own _access */
    stt_rev_t pa[] = {{2, "aaaa", 4}, {1, "1111", 4}}, pb[] = {{2, "bbbb", 4}, {1, "1111", 4}};
    stt_doc_write_t w[] = {
        {.id = "c", .idlen = 1, .body = "{\"_access\":[\"alice\"]}", .bodylen = 21, .gen = 2, .path = pa, .npath = 2},
        {.id = "c", .idlen = 1, .body = "{\"_access\":[\"bob\"]}", .bodylen = 19, .gen = 2, .path = pb, .npath = 2},
    };
    stt_doc_result_t res[2] = {0};
    assert_int_equal(stt_doc_write(f->db, w, 2, false, res), 0);
    stt_reader_t *rd;
    assert_int_equal(stt_reader_open(f->db, &rd), 0);
    stt_doc_t d;
    assert_int_equal(stt_doc_get(rd, "c", 1, &d), 0);
    stt_access_t *a = stt_access_open(&f->a, f->db, &ALICE, false), *b = stt_access_open(&f->a, f->db, &BOB, false),
                 *c = stt_access_open(&f->a, f->db, &CAROL, false);
    int wa = stt_access_winner(a, &d), wb = stt_access_winner(b, &d);
    assert_int_equal(wb, d.winner); /* 2-bbbb wins */
    assert_int_not_equal(wa, d.winner);
    assert_string_equal(stt_revtree_id(&d.tree, wa), "aaaa");
    assert_int_equal(stt_access_winner(c, &d), -1);
    assert_false(stt_access_node_ok(a, &d, wb));
    int node;
    stt_rev_t rb = {2, "bbbb", 4};
    assert_int_equal(stt_access_select(a, &d, &rb, &node), STT_E_NOT_FOUND);
    assert_int_equal(stt_access_select(a, &d, NULL, &node), 0);
    assert_int_equal(node, wa);
    assert_int_equal(stt_access_select(c, &d, NULL, &node), STT_E_NOT_FOUND);
    stt_access_row_t row;
    assert_true(stt_access_summary(a, &d, &row));
    assert_int_equal(row.s.nleaves, 1);
    assert_memory_equal(row.s.leaf_rev[0], "2-aaaa", 6);
    stt_access_row_free(&row);
    assert_false(stt_access_summary(c, &d, &row));
    /* open_revs / _bulk_get: alice keeps her leaf only (the doc is not removed from her) */
    int nodes[2] = {wa, wb};
    bool stub[2];
    assert_int_equal(stt_access_filter_nodes(a, &d, nodes, stub, 2), 1);
    assert_int_equal(nodes[0], wa);
    assert_false(stub[0]);
    stt_doc_free(&d);
    stt_reader_close(rd);
}

/* ====================================================================================
 * The per-user changes index */

typedef struct {
    char out[512];
} rows_t;

static int on_row(void *ctx, const stt_doc_summary_t *s)
{
    rows_t *r = ctx;
    size_t n = strlen(r->out);
    snprintf(r->out + n, sizeof(r->out) - n, "%s%.*s@%llu%s", n ? " " : "", (int)s->idlen, s->id,
             (unsigned long long)s->seq, s->deleted ? "-" : "");
    return 0;
}

/* the rows of u's changes since `since` as "id@seq" ("-": deleted), after a sync */
static const char *feed(fx_t *f, const stt_user_ctx_t *u, uint64_t since, bool descending)
{
    static rows_t r;
    memset(&r, 0, sizeof(r));
    uint64_t upto;
    assert_int_equal(stt_access_sync(f->db, &upto), 0);
    stt_reader_t *rd;
    assert_int_equal(stt_reader_open(f->db, &rd), 0);
    stt_access_t *a = stt_access_open(&f->a, f->db, u, false);
    assert_int_equal(stt_access_changes_scan(a, rd, since, upto, descending, on_row, &r), 0);
    stt_reader_close(rd);
    return r.out;
}

static void test_changes_index(void **state)
{
    fx_t *f = *state;
    nrevs = 0;
    put(f, &ALICE, false, "a1", "{}");                                /* 1 */
    put(f, &ALICE, false, "a2", "{\"_access\":[\"alice\",\"bob\"]}"); /* 2 */
    put(f, &BOB, false, "b1", "{}");                                  /* 3 */
    put(f, &CAROL, false, "n1", "{\"_access\":[\"nurses\"]}");        /* 4 */
    put(f, &ALICE, true, "x1", "{}");                                 /* 5: admins' */
    put(f, &ALICE, true, "x2", "{\"_access\":[\"parents\"]}");        /* 6 */
    put(f, &ALICE, true, "_design/d", "{\"_access\":[\"alice\"]}");   /* 7: never listed */
    assert_string_equal(feed(f, &ALICE, 0, false), "a1@1 a2@2 x2@6");
    assert_string_equal(feed(f, &BOB, 0, false), "a2@2 b1@3 x2@6");
    assert_string_equal(feed(f, &CAROL, 0, false), "n1@4");
    assert_string_equal(feed(f, &DAVE, 0, false), "");
    assert_string_equal(feed(f, &ALICE, 1, false), "a2@2 x2@6");
    assert_string_equal(feed(f, &ALICE, 0, true), "x2@6 a2@2 a1@1");
    assert_string_equal(feed(f, &ALICE, 6, true), "a2@2 a1@1");
    /* alice takes a2 from bob: a removal row for bob, at the new seq */
    put(f, &ALICE, false, "a2", "{\"_access\":[\"alice\"]}"); /* 8 */
    assert_string_equal(feed(f, &BOB, 6, false), "a2@8-");
    assert_string_equal(feed(f, &BOB, 0, false), "b1@3 x2@6 a2@8-");
    assert_string_equal(feed(f, &ALICE, 6, false), "a2@8");
    stt_access_t *b = stt_access_open(&f->a, f->db, &BOB, false), *a = stt_access_open(&f->a, f->db, &ALICE, false);
    assert_true(stt_access_was_shared(b, "a2", 2));
    assert_false(stt_access_was_shared(a, "a2", 2));
    assert_false(stt_access_was_shared(b, "b1", 2));
    /* shared again through a role: a live row again */
    put(f, &ALICE, false, "a2", "{\"_access\":[\"alice\",\"parents\"]}"); /* 9 */
    assert_string_equal(feed(f, &BOB, 8, false), "a2@9");
    assert_false(stt_access_was_shared(b, "a2", 2));
    /* a deletion reaches whoever had the doc */
    assert_int_equal(write_as(f, &BOB, false, "b1", "{}", true, NULL), 0); /* 10 */
    assert_string_equal(feed(f, &BOB, 9, false), "b1@10-");
    assert_string_equal(feed(f, &ALICE, 9, false), "");
    /* the index outlives a reopen and goes on from where it was */
    close_all(f);
    open_all(f);
    put(f, &CAROL, false, "n2", "{\"_access\":[\"nurses\",\"bob\"]}"); /* 11 */
    assert_string_equal(feed(f, &BOB, 0, false), "x2@6 a2@9 b1@10- n2@11");
    uint64_t bytes, entries;
    assert_int_equal(stt_access_index_size(f->db, &bytes, &entries), 0);
    assert_true(bytes > 0);
    assert_int_equal(entries, 9); /* a1: 1, a2: alice parents bob(removed), b1, n1, x2: 1 each, n2: 2 */
}

static int on_id(void *ctx, const stt_doc_summary_t *s, const stt_doc_t *d, int node)
{
    rows_t *r = ctx;
    size_t n = strlen(r->out);
    assert_int_equal(stt_revtree_is_leaf(&d->tree, node), true);
    snprintf(r->out + n, sizeof(r->out) - n, "%s%.*s", n ? " " : "", (int)s->idlen, s->id);
    return 0;
}

/* u's _all_docs over [start, end] as "id id ...", after a sync */
static const char *ids(fx_t *f, const stt_user_ctx_t *u, const char *start, const char *end, bool descending)
{
    static rows_t r;
    memset(&r, 0, sizeof(r));
    uint64_t upto;
    assert_int_equal(stt_access_sync(f->db, &upto), 0);
    stt_reader_t *rd;
    assert_int_equal(stt_reader_open(f->db, &rd), 0);
    stt_range_t rg = {.start = start,
                      .startlen = start ? strlen(start) : 0,
                      .end = end,
                      .endlen = end ? strlen(end) : 0,
                      .inclusive_end = true,
                      .descending = descending};
    assert_int_equal(stt_access_docs_scan(stt_access_open(&f->a, f->db, u, false), rd, &rg, on_id, &r), 0);
    stt_reader_close(rd);
    return r.out;
}

static void test_docs_by_id(void **state)
{
    fx_t *f = *state;
    nrevs = 0;
    put(f, &ALICE, false, "a1", "{}");
    put(f, &ALICE, false, "a2", "{\"_access\":[\"alice\",\"bob\"]}");
    put(f, &BOB, false, "b1", "{}");
    put(f, &ALICE, true, "x2", "{\"_access\":[\"parents\",\"bob\"]}");
    put(f, &ALICE, true, "x3", "{}");
    assert_string_equal(ids(f, &ALICE, NULL, NULL, false), "a1 a2 x2");
    assert_string_equal(ids(f, &BOB, NULL, NULL, false), "a2 b1 x2"); /* x2 once: bob and parents */
    assert_string_equal(ids(f, &BOB, NULL, NULL, true), "x2 b1 a2");
    assert_string_equal(ids(f, &BOB, "a3", "x", false), "b1");
    assert_string_equal(ids(f, &BOB, "x", "a2", true), "b1 a2");
    assert_string_equal(ids(f, &DAVE, NULL, NULL, false), "");
    /* unshared, deleted: gone from the by-id list */
    put(f, &ALICE, false, "a2", "{\"_access\":[\"alice\"]}");
    assert_int_equal(write_as(f, &BOB, false, "b1", "{}", true, NULL), 0);
    assert_string_equal(ids(f, &BOB, NULL, NULL, false), "x2");
    assert_string_equal(ids(f, &ALICE, NULL, NULL, false), "a1 a2 x2");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(int argc, char **argv)
{
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        T(test_flag),
        T(test_writes),
        T(test_conflict_reads),
        T(test_changes_index),
        T(test_docs_by_id),
    };
    /* clang-format on */
    if (argc > 1) {
        char filter[256];
        snprintf(filter, sizeof(filter), "*%s*", argv[1]);
        cmocka_set_test_filter(filter);
    }
    return cmocka_run_group_tests_name("access", tests, NULL, NULL);
}
