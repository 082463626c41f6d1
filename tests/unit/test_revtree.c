/* Unit tests for store/revtree.c.
 *
 * - numbered tables: rev parsing, merges, edit checks, stemming, queries, encoding;
 * - the CouchDB golden replay: every scenario of couchdb-golden/revtree.jsonl run at
 *   the rev-tree level and compared with what CouchDB 3.4.3 answered (twice: with
 *   counter-based ids for server-assigned revs, skipping what depends on hash tie
 *   breaks, and with ids that keep CouchDB's order, comparing everything);
 * - a randomized property test: histories split across replicas merge to the same
 *   tree in every order, stemming keeps every leaf, the encoding round-trips and the
 *   invariants hold after every step;
 * - a differential test against a C transcription of couch_key_tree's merge and stem
 *   (with its repair of duplicate revs) on random stemmed writes.
 *
 * Run from the repo root. Environment: STT_GOLDEN_DIR (folder of revtree.jsonl),
 * STT_SEED (property test seed), STT_VERBOSE=1 (list skipped comparisons).
 * An argument runs only the tests whose name contains it. */
#include "store/revtree.h"
#include "src/common/arena.h"
#include "src/common/err.h"
#include "src/common/json.h"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ====================================================================================
 * Helpers: a tiny text form for trees and paths
 *
 * A path is "3-c,b,a": the leaf 3-c, then its ancestors b (gen 2) and a (gen 1);
 * a leading '!' makes the leaf deleted. A tree dumps as its nodes in array order,
 * "gen-id", then "^parentid" when it has a parent, then "*" when deleted. */

static void dump_tree(const stt_revtree_t *t, stt_buf_t *b, bool leaf_flags_only)
{
    stt_buf_reset(b);
    stt_buf_appends(b, "");
    for (uint32_t i = 0; i < t->n; i++) {
        const stt_rev_node_t *nd = &t->nodes[i];
        if (i) stt_buf_appendc(b, ' ');
        stt_revtree_format(t, (int)i, b);
        if (nd->parent >= 0) {
            stt_buf_appendc(b, '^');
            stt_buf_append(b, stt_revtree_id(t, nd->parent), t->nodes[nd->parent].idlen);
        }
        if ((nd->flags & STT_REV_DELETED) && (!leaf_flags_only || stt_revtree_is_leaf(t, (int)i)))
            stt_buf_appendc(b, '*');
    }
}

static void dump_list(const stt_revtree_t *t, const int *idx, size_t n, stt_buf_t *b)
{
    stt_buf_reset(b);
    stt_buf_appends(b, "");
    for (size_t k = 0; k < n; k++) {
        if (k) stt_buf_appendc(b, ' ');
        stt_revtree_format(t, idx[k], b);
    }
}

typedef struct {
    uint64_t gen;
    stt_rev_t ids[64];
    size_t nids;
    bool deleted;
} path_t;

static void parse_path(const char *s, path_t *p)
{
    p->deleted = *s == '!';
    if (p->deleted) s++;
    const char *dash = strchr(s, '-');
    assert_non_null(dash);
    p->gen = strtoull(s, NULL, 10);
    s = dash + 1;
    p->nids = 0;
    while (*s) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        p->ids[p->nids].gen = p->gen - p->nids;
        p->ids[p->nids].id = s;
        p->ids[p->nids].idlen = len;
        p->nids++;
        s += len + (e != NULL);
    }
}

static int find_rev(const stt_revtree_t *t, const char *rev)
{
    stt_rev_t r;
    assert_int_equal(stt_rev_parse(rev, strlen(rev), &r), 0);
    return stt_revtree_find(t, r.gen, r.id, r.idlen);
}

static void assert_check(const stt_revtree_t *t)
{
    char err[128];
    if (stt_revtree_check(t, err, sizeof(err)) != 0) fail_msg("stt_revtree_check: %s", err);
}

/* Encodes, decodes, and requires the same node array and the same bytes again. */
static void assert_roundtrip(const stt_revtree_t *t)
{
    stt_buf_t e1 = STT_BUF_INIT, e2 = STT_BUF_INIT, d1 = STT_BUF_INIT, d2 = STT_BUF_INIT;
    stt_revtree_t u = STT_REVTREE_INIT;
    stt_revtree_encode(t, &e1);
    assert_int_equal(stt_revtree_decode(&u, e1.base, e1.len), 0);
    assert_check(&u);
    stt_revtree_encode(&u, &e2);
    assert_int_equal(e1.len, e2.len);
    assert_memory_equal(e1.base, e2.base, e1.len);
    dump_tree(t, &d1, false);
    dump_tree(&u, &d2, false);
    assert_string_equal(d1.base, d2.base);
    for (uint32_t i = 0; i < t->n; i++) /* merge marks for the next stem are not stored */
        assert_int_equal(t->nodes[i].flags & (STT_REV_DELETED | STT_REV_HAS_BODY), u.nodes[i].flags);
    stt_revtree_free(&u);
    stt_buf_free(&e1);
    stt_buf_free(&e2);
    stt_buf_free(&d1);
    stt_buf_free(&d2);
}

/* Runs one op of the table language: "P path" merge, "D path" merge deleted (same as
 * "P !path"), "S n" stem. Returns *added for merges. */
static bool run_op(stt_revtree_t *t, const char *op)
{
    path_t p;
    int leaf;
    bool added = false;
    if (op[0] == 'S') {
        stt_revtree_stem(t, (uint32_t)atoi(op + 2));
    } else {
        parse_path(op + 2, &p);
        if (op[0] == 'D') p.deleted = true;
        assert_int_equal(stt_revtree_merge_path(t, p.gen, p.ids, p.nids, p.deleted, &leaf, &added), 0);
        assert_true(leaf >= 0 && (uint32_t)leaf < t->n);
        assert_int_equal(t->nodes[leaf].gen, p.gen);
        assert_int_equal(t->nodes[leaf].idlen, p.ids[0].idlen);
        assert_memory_equal(stt_revtree_id(t, leaf), p.ids[0].id, p.ids[0].idlen);
        if (added) {
            assert_true(stt_revtree_is_leaf(t, leaf));
            t->nodes[leaf].flags |= STT_REV_HAS_BODY;
        }
    }
    assert_check(t);
    assert_roundtrip(t);
    return added;
}

/* ====================================================================================
 * Table: stt_rev_parse */

static void test_rev_parse(void **state)
{
    static const char id255[] =
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    static const struct {
        const char *in;
        int rc;
        uint64_t gen;
        const char *id;
    } cases[] = {
        /* 1 */ {"1-abc", 0, 1, "abc"},
        /* 2 */ {"10-x", 0, 10, "x"},
        /* 3 */ {"0-a", STT_E_BAD_REV, 0, NULL},
        /* 4 */ {"-a", STT_E_BAD_REV, 0, NULL},
        /* 5 */ {"1-", 0, 1, ""},
        /* 6 */ {"abc", STT_E_BAD_REV, 0, NULL},
        /* 7 */ {"1a-b", STT_E_BAD_REV, 0, NULL},
        /* 8 */ {"01-a", 0, 1, "a"},
        /* 9 */ {"1-a-b", 0, 1, "a-b"},
        /* 10 */ {"3-0123456789abcdef0123456789abcdef", 0, 3, "0123456789abcdef0123456789abcdef"},
        /* 11 */ {"3-0123456789abcdef0123456789abcdeg", STT_E_BAD_REV, 0, NULL},
        /* 12 */ {"99999999999999999999-a", STT_E_BAD_REV, 0, NULL},
        /* 13 */ {"", STT_E_BAD_REV, 0, NULL},
        /* 14 */ {"+1-a", STT_E_BAD_REV, 0, NULL},
        /* 15 */ {" 1-a", STT_E_BAD_REV, 0, NULL},
        /* 16 */ {"2-0123456789ABCDEF0123456789abcdef", 0, 2, "0123456789ABCDEF0123456789abcdef"},
        /* 17 */ {"999999999999999999-z", 0, 999999999999999999ull, "z"},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        stt_rev_t r;
        int rc = stt_rev_parse(cases[c].in, strlen(cases[c].in), &r);
        if (rc != cases[c].rc) fail_msg("case %zu (%s): rc %d, want %d", c + 1, cases[c].in, rc, cases[c].rc);
        if (rc == 0) {
            assert_int_equal(r.gen, cases[c].gen);
            assert_int_equal(r.idlen, strlen(cases[c].id));
            assert_memory_equal(r.id, cases[c].id, r.idlen);
        }
    }
    /* id length limits */
    char buf[300];
    snprintf(buf, sizeof(buf), "1-%s", id255);
    stt_rev_t r;
    assert_int_equal(strlen(id255), 255);
    assert_int_equal(stt_rev_parse(buf, strlen(buf), &r), 0);
    snprintf(buf, sizeof(buf), "1-%sa", id255);
    assert_int_equal(stt_rev_parse(buf, strlen(buf), &r), STT_E_BAD_REV);
    /* parse stops at len, not at a NUL */
    assert_int_equal(stt_rev_parse("12-abcdef", 4, &r), 0);
    assert_int_equal(r.gen, 12);
    assert_int_equal(r.idlen, 1);
    /* format */
    stt_buf_t b = STT_BUF_INIT;
    stt_rev_format(&b, 42, "abc", 3);
    assert_string_equal(b.base, "42-abc");
    stt_buf_free(&b);
}

/* ====================================================================================
 * Table: merges (and stems), resulting tree and leaf order */

typedef struct {
    const char *ops[8];
    const char *tree;   /* dump_tree after the ops */
    const char *leaves; /* stt_revtree_leaves: winner first */
    const char *added;  /* one '1'/'0' per merge op */
} merge_case_t;

static const merge_case_t merge_cases[] = {
    /* 1: one path */
    {{"P 3-c,b,a"}, "1-a 2-b^a 3-c^b", "3-c", "1"},
    /* 2: extend a leaf with a short history */
    {{"P 2-b,a", "P 3-c,b"}, "1-a 2-b^a 3-c^b", "3-c", "11"},
    /* 3: branch, tie on gen broken by id */
    {{"P 3-c,b,a", "P 3-x,b,a"}, "1-a 2-b^a 3-c^b 3-x^b", "3-x 3-c", "11"},
    /* 4: no shared rev: a second root */
    {{"P 2-b,a", "P 2-y,x"}, "1-a 1-x 2-b^a 2-y^x", "2-y 2-b", "11"},
    /* 5: stemmed history, then the full one: the root moves back */
    {{"P 5-e,d,c", "P 5-e,d,c,b,a"}, "1-a 2-b^a 3-c^b 4-d^c 5-e^d", "5-e", "10"},
    /* 6: full, then stemmed: nothing changes */
    {{"P 5-e,d,c,b,a", "P 5-e,d"}, "1-a 2-b^a 3-c^b 4-d^c 5-e^d", "5-e", "10"},
    /* 7: disjoint fragments of one lineage stay apart */
    {{"P 3-c,b,a", "P 10-j,i,h"}, "1-a 2-b^a 3-c^b 8-h 9-i^h 10-j^i", "10-j 3-c", "11"},
    /* 8: a path reaching gen 7 joins the lower fragment only (stemmed_gap_then_join) */
    {{"P 3-c,b,a", "P 10-j,i,h", "P 7-g,f,e,d,c"},
     "1-a 2-b^a 3-c^b 4-d^c 5-e^d 6-f^e 7-g^f 8-h 9-i^h 10-j^i",
     "10-j 7-g",
     "111"},
    /* 9: a path bridging both fragments joins them */
    {{"P 3-c,b,a", "P 10-j,i,h", "P 8-h,g,f,e,d,c"},
     "1-a 2-b^a 3-c^b 4-d^c 5-e^d 6-f^e 7-g^f 8-h^g 9-i^h 10-j^i",
     "10-j",
     "110"},
    /* 10: a new leaf whose history bridges a fragment to an older tree */
    {{"P 2-b,a", "P 5-e,d", "P 6-f,e,d,c,b"}, "1-a 2-b^a 3-c^b 4-d^c 5-e^d 6-f^e", "6-f", "111"},
    /* 11: ancestor-only path: nothing changes */
    {{"P 4-d,c,b,a", "P 2-b,a"}, "1-a 2-b^a 3-c^b 4-d^c", "4-d", "10"},
    /* 12: ancestor-only path sent deleted: no new leaf; the rev, known only as an
     * ancestor, takes the path's _deleted (couch_key_tree's value_pref) */
    {{"P 4-d,c,b,a", "D 2-b,a"}, "1-a 2-b^a* 3-c^b 4-d^c", "4-d", "10"},
    /* 13: not once the rev has a body of its own */
    {{"P 2-b,a", "P 4-d,c,b", "D 2-b,a"}, "1-a 2-b^a 3-c^b 4-d^c", "4-d", "110"},
    /* 14: the same leaf again with another _deleted: the first write stays */
    {{"P 2-b,a", "D 2-b,a"}, "1-a 2-b^a", "2-b", "10"},
    /* 15: a deleted leaf extended by a live child */
    {{"D 2-b,a", "P 3-c,b,a"}, "1-a 2-b^a* 3-c^b", "3-c", "11"},
    /* 16: live beats deleted whatever the gen */
    {{"P 2-b,a", "D 4-x,w,v"}, "1-a 2-b^a 2-v 3-w^v 4-x^w*", "2-b 4-x", "11"},
    /* 17: ids compare as bytes */
    {{"P 2-fff,a", "P 2-000,a"}, "1-a 2-000^a 2-fff^a", "2-fff 2-000", "11"},
    /* 18: a longer id after its prefix */
    {{"P 1-a", "P 1-ab"}, "1-a 1-ab", "1-ab 1-a", "11"},
    /* 19: a path contradicting the tree's history keeps the tree's */
    {{"P 3-c,b,a", "P 3-c,x"}, "1-a 2-b^a 3-c^b", "3-c", "10"},
    /* 20: the same at a stemmed root */
    {{"P 3-c,b", "P 3-c,x,a"}, "2-b 3-c^b", "3-c", "10"},
    /* 21: the new leaf of a contradicting path joins at its parent only */
    {{"P 3-c,b,a", "P 4-d,c,x"}, "1-a 2-b^a 3-c^b 4-d^c", "4-d", "11"},
    /* 22: one older rev moves a root back (the one-node reorder) */
    {{"P 3-c,b", "P 3-c,b,a"}, "1-a 2-b^a 3-c^b", "3-c", "10"},
    /* 23: stem a linear path */
    {{"P 5-e,d,c,b,a", "S 2"}, "4-d 5-e^d", "5-e", "1"},
    /* 24: stem with a branch: the branch point stays while a short branch needs it */
    {{"P 5-e,d,c,b,a", "P 3-x,b,a", "S 2"}, "2-b 3-x^b 4-d 5-e^d", "5-e 3-x", "11"},
    /* 25: stem to 1 leaves leaves only, each its own root */
    {{"P 5-e,d,c,b,a", "P 3-x,b,a", "S 1"}, "3-x 5-e", "5-e 3-x", "11"},
    /* 26: a branch from a stemmed-away rev becomes a separate tree */
    {{"P 5-e,d,c,b,a", "S 2", "P 3-x,b,a", "S 2"}, "2-b 3-x^b 4-d 5-e^d", "5-e 3-x", "11"},
    /* 27: limit 0 acts as 1 */
    {{"P 3-c,b,a", "S 0"}, "3-c", "3-c", "1"},
    /* 28: stemming keeps a shared ancestor that both branches reach */
    {{"P 4-d,c,b,a", "P 4-y,x,b,a", "S 3"}, "2-b 3-c^b 3-x^b 4-d^c 4-y^x", "4-y 4-d", "11"},
    /* 29: deleted leaves order among themselves by gen then id */
    {{"D 2-b,a", "D 3-q,p,a", "D 3-r,p,a"}, "1-a 2-b^a* 2-p^a 3-q^p* 3-r^p*", "3-r 3-q 2-b", "111"},
    /* 30: live leaves first, then deleted ones */
    {{"P 2-b,a", "D 3-q,p,a", "P 2-c,a"}, "1-a 2-b^a 2-c^a 2-p^a 3-q^p*", "2-c 2-b 3-q", "111"},
    /* 31: a new root below an existing tree sorts in front of it */
    {{"P 9-i,h", "P 1-a"}, "1-a 8-h 9-i^h", "9-i 1-a", "11"},
    /* 32: a path joining two trees grows from a leaf of the younger one; that leaf
     * keeps counting as a leaf when stemming (couch_key_tree's repair_tree) */
    {{"P 2-b,a", "P 5-e,d", "P 6-f,e,d,c,b", "S 1"}, "5-e 6-f", "6-f 5-e", "111"},
    /* 33: the same at limit 2: that leaf's history stops at its tree's old root */
    {{"P 2-b,a", "P 5-e,d", "P 6-f,e,d,c,b", "S 2"}, "4-d 5-e^d 6-f^e", "6-f", "111"},
    /* 34: after a join, the younger tree's leaves keep only that tree's history */
    {{"P 2-b,a", "P 5-e,d", "P 7-z,y,x,d,c,b", "S 4"}, "4-d 5-e^d 5-x^d 6-y^x 7-z^y", "7-z 5-e", "111"},
    /* 35: the same without a join is a plain stem */
    {{"P 5-e,d", "P 7-z,y,x,d,c,b", "S 4"}, "2-b 3-c^b 4-d^c 5-e^d 5-x^d 6-y^x 7-z^y", "7-z 5-e", "11"},
    /* 36: after a join, a parent link stays only inside some leaf's cut history: u1
     * loses its parent q, which only s's history reaches */
    {{"P 3-u2,u1,q", "P 2-s,q", "P 2-b,a", "P 5-e,d", "P 6-f,e,d,c,b", "S 2"},
     "1-q 2-s^q 2-u1 3-u2^u1 4-d 5-e^d 6-f^e",
     "6-f 3-u2 2-s",
     "11111"},
    /* 37: the same stem without a join keeps the link */
    {{"P 3-u2,u1,q", "P 2-s,q", "S 2"}, "1-q 2-s^q 2-u1^q 3-u2^u1", "3-u2 2-s", "11"},
    /* 38: raw (non-hex) ids mixed with hex ids */
    {{"P 2-0123456789abcdef0123456789abcdef,x y", "P 3-~z,0123456789abcdef0123456789abcdef"},
     "1-x y 2-0123456789abcdef0123456789abcdef^x y 3-~z^0123456789abcdef0123456789abcdef",
     "3-~z",
     "11"},
};

static void test_merge_table(void **state)
{
    stt_buf_t b = STT_BUF_INIT;
    for (size_t c = 0; c < sizeof(merge_cases) / sizeof(merge_cases[0]); c++) {
        const merge_case_t *mc = &merge_cases[c];
        stt_revtree_t t = STT_REVTREE_INIT;
        char added[16] = "";
        size_t na = 0;
        for (size_t k = 0; k < 8 && mc->ops[k]; k++) {
            bool a = run_op(&t, mc->ops[k]);
            if (mc->ops[k][0] != 'S') added[na++] = a ? '1' : '0';
        }
        added[na] = '\0';
        dump_tree(&t, &b, false);
        if (strcmp(b.base, mc->tree) != 0) fail_msg("case %zu: tree\n  got  %s\n  want %s", c + 1, b.base, mc->tree);
        int leaves[64];
        size_t nl = stt_revtree_leaves(&t, leaves);
        dump_list(&t, leaves, nl, &b);
        if (strcmp(b.base, mc->leaves) != 0)
            fail_msg("case %zu: leaves\n  got  %s\n  want %s", c + 1, b.base, mc->leaves);
        assert_int_equal(stt_revtree_winner(&t), leaves[0]);
        if (strcmp(added, mc->added) != 0) fail_msg("case %zu: added %s, want %s", c + 1, added, mc->added);
        stt_revtree_free(&t);
    }
    stt_buf_free(&b);
}

static void test_merge_bad(void **state)
{
    stt_revtree_t t = STT_REVTREE_INIT;
    stt_rev_t ids[3] = {{3, "c", 1}, {2, "b", 1}, {1, "a", 1}};
    int leaf = 7;
    bool added = true;
    /* 1: a path reaching below gen 1 */
    assert_int_equal(stt_revtree_merge_path(&t, 2, ids, 3, false, &leaf, &added), STT_E_BAD_REV);
    /* 2: an empty path */
    assert_int_equal(stt_revtree_merge_path(&t, 2, ids, 0, false, &leaf, &added), STT_E_BAD_REV);
    /* 3: an id longer than STT_REV_ID_MAX */
    static char longid[STT_REV_ID_MAX + 1];
    memset(longid, 'x', sizeof(longid));
    stt_rev_t toolong[1] = {{1, longid, sizeof(longid)}};
    assert_int_equal(stt_revtree_merge_path(&t, 1, toolong, 1, false, &leaf, &added), STT_E_BAD_REV);
    assert_int_equal(t.n, 0);
    assert_int_equal(leaf, 7);
    /* add_leaf refuses an id it cannot store */
    assert_int_equal(stt_revtree_add_leaf(&t, -1, longid, sizeof(longid), 0), -1);
    /* 4: an empty id is a rev ("1-" in CouchDB's new_edits=false) */
    stt_rev_t empty[1] = {{1, "", 0}};
    assert_int_equal(stt_revtree_merge_path(&t, 1, empty, 1, false, &leaf, &added), 0);
    assert_true(added);
    assert_int_equal(t.nodes[leaf].idlen, 0);
    stt_revtree_free(&t);
}

/* ====================================================================================
 * Table: interactive edit checks */

typedef struct {
    const char *ops[4];
    const char *prev; /* NULL: no _rev */
    bool deleted;
    int rc;
    const char *parent; /* NULL: a new root */
} edit_case_t;

static const edit_case_t edit_cases[] = {
    /* 1 */ {{NULL}, NULL, false, 0, NULL},
    /* 2 */ {{NULL}, "1-a", false, STT_E_CONFLICT, NULL},
    /* 3 */ {{NULL}, NULL, true, 0, NULL}, /* create as deleted */
    /* 4 */ {{"P 2-b,a"}, NULL, false, STT_E_CONFLICT, NULL},
    /* 5 */ {{"P 2-b,a"}, "2-b", false, 0, "2-b"},
    /* 6 */ {{"P 2-b,a"}, "1-a", false, STT_E_CONFLICT, NULL}, /* internal rev */
    /* 7 */ {{"P 2-b,a"}, "3-zz", false, STT_E_CONFLICT, NULL},
    /* 8 */ {{"P 2-b,a"}, NULL, true, STT_E_CONFLICT, NULL},
    /* 9 */ {{"P 2-b,a"}, "2-b", true, 0, "2-b"},
    /* 10 */ {{"D 2-b,a"}, NULL, false, 0, "2-b"}, /* recreate extends the tombstone */
    /* 11 */ {{"D 2-b,a"}, NULL, true, STT_E_CONFLICT, NULL},
    /* 12 */ {{"D 2-b,a"}, "2-b", false, STT_E_CONFLICT, NULL},  /* the deleted winner */
    /* 13 */ {{"P 3-c,b,a", "D 2-x,a"}, "2-x", false, 0, "2-x"}, /* revive a loser */
    /* 14 */ {{"P 3-c,b,a", "D 2-x,a"}, "3-c", true, 0, "3-c"},
    /* 15 */ {{"D 3-c,b,a", "D 2-x,a"}, NULL, false, 0, "3-c"},
    /* 16 */ {{"D 3-c,b,a", "D 2-x,a"}, "2-x", false, STT_E_CONFLICT, NULL},
    /* 17 */ {{"D 2-b,a", "D 2-c,a"}, NULL, false, 0, "2-c"},
    /* 18 */ {{"P 3-c,b,a", "P 3-d,b,a"}, "3-c", false, 0, "3-c"},       /* a live loser */
    /* 19 */ {{"P 3-c,b,a", "S 1"}, "2-b", false, STT_E_CONFLICT, NULL}, /* stemmed away */
};

static void test_check_edit_table(void **state)
{
    for (size_t c = 0; c < sizeof(edit_cases) / sizeof(edit_cases[0]); c++) {
        const edit_case_t *ec = &edit_cases[c];
        stt_revtree_t t = STT_REVTREE_INIT;
        for (size_t k = 0; k < 4 && ec->ops[k]; k++)
            run_op(&t, ec->ops[k]);
        stt_rev_t prev;
        if (ec->prev) assert_int_equal(stt_rev_parse(ec->prev, strlen(ec->prev), &prev), 0);
        int parent = -42;
        int rc = stt_revtree_check_edit_deleted(&t, ec->prev ? &prev : NULL, ec->deleted, &parent);
        if (rc != ec->rc) fail_msg("case %zu: rc %d, want %d", c + 1, rc, ec->rc);
        if (!ec->deleted) {
            int parent2 = -42;
            assert_int_equal(stt_revtree_check_edit(&t, ec->prev ? &prev : NULL, &parent2), rc);
            assert_int_equal(parent2, parent);
        }
        if (rc == 0) {
            int want = ec->parent ? find_rev(&t, ec->parent) : -1;
            if (parent != want) fail_msg("case %zu: parent %d, want %d", c + 1, parent, want);
            /* and the edit goes in */
            uint64_t gen = ec->parent ? strtoull(ec->parent, NULL, 10) + 1 : 1;
            uint8_t fl = ec->deleted ? STT_REV_DELETED : 0;
            int i = stt_revtree_add_leaf(&t, parent, "new", 3, fl | STT_REV_HAS_BODY);
            assert_check(&t);
            assert_int_equal(t.nodes[i].gen, gen);
            assert_int_equal(t.nodes[i].flags, fl | STT_REV_HAS_BODY);
            assert_memory_equal(stt_revtree_id(&t, i), "new", 3);
            assert_true(stt_revtree_is_leaf(&t, i));
            if (ec->parent) assert_false(stt_revtree_is_leaf(&t, find_rev(&t, ec->parent)));
        } else {
            assert_int_equal(parent, -42);
        }
        stt_revtree_free(&t);
    }
}

/* ====================================================================================
 * Table: queries (leaves_under, path, revs_diff) */

static void test_queries_table(void **state)
{
    static const struct {
        const char *ops[4];
        const char *rev;
        const char *under; /* leaves_under, ascending */
        const char *path;  /* path to the root */
    } cases[] = {
        /* 1 */ {{"P 4-d,c,b,a", "P 3-x,b,a"}, "2-b", "3-x 4-d", "2-b 1-a"},
        /* 2 */ {{"P 4-d,c,b,a", "P 3-x,b,a"}, "3-c", "4-d", "3-c 2-b 1-a"},
        /* 3 */ {{"P 4-d,c,b,a", "P 3-x,b,a"}, "4-d", "4-d", "4-d 3-c 2-b 1-a"},
        /* 4 */ {{"P 4-d,c,b,a", "P 3-x,b,a"}, "1-a", "3-x 4-d", "1-a"},
        /* 5 */ {{"P 3-c,b,a", "P 9-i,h"}, "8-h", "9-i", "8-h"},
        /* 6 */ {{"P 3-c,b,a", "P 3-y,x"}, "1-a", "3-c", "1-a"},
        /* 7 */ {{"P 4-d,c,b,a", "P 4-y,x,b,a", "P 3-z,b,a"}, "2-b", "3-z 4-d 4-y", "2-b 1-a"},
    };
    stt_buf_t b = STT_BUF_INIT;
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        stt_revtree_t t = STT_REVTREE_INIT;
        for (size_t k = 0; k < 4 && cases[c].ops[k]; k++)
            run_op(&t, cases[c].ops[k]);
        int i = find_rev(&t, cases[c].rev), out[64];
        assert_true(i >= 0);
        size_t n = stt_revtree_leaves_under(&t, i, out);
        dump_list(&t, out, n, &b);
        if (strcmp(b.base, cases[c].under) != 0) fail_msg("case %zu: under %s, want %s", c + 1, b.base, cases[c].under);
        n = stt_revtree_path(&t, i, out, 64);
        dump_list(&t, out, n, &b);
        if (strcmp(b.base, cases[c].path) != 0) fail_msg("case %zu: path %s, want %s", c + 1, b.base, cases[c].path);
        assert_int_equal(stt_revtree_path(&t, i, out, 1), 1);
        assert_int_equal(out[0], i);
        stt_revtree_free(&t);
    }

    static const struct {
        const char *ops[4];
        const char *revs[6];
        const char *missing; /* request order */
        const char *anc;     /* ascending */
    } diff_cases[] = {
        /* 1 */ {{"P 3-c,b,a"}, {"3-c", "2-b"}, "", ""},
        /* 2 */ {{"P 3-c,b,a"}, {"3-c", "4-d"}, "4-d", "3-c"},
        /* 3 */ {{"P 3-c,b,a"}, {"1-z"}, "1-z", ""},
        /* 4: every leaf below the highest missing gen, related or not */
        {{"P 3-c,b,a", "D 2-x,a", "P 5-e,d"}, {"4-q", "1-a"}, "4-q", "2-x 3-c"},
        /* 5 */ {{"P 3-c,b,a", "D 2-x,a", "P 5-e,d"}, {"9-q", "2-q"}, "9-q 2-q", "2-x 3-c 5-e"},
        /* 6: stemmed revs are missing */
        {{"P 3-c,b,a", "S 1"}, {"2-b", "3-c"}, "2-b", ""},
        /* 7: an empty tree */
        {{NULL}, {"1-a", "2-b"}, "1-a 2-b", ""},
    };
    for (size_t c = 0; c < sizeof(diff_cases) / sizeof(diff_cases[0]); c++) {
        stt_revtree_t t = STT_REVTREE_INIT;
        for (size_t k = 0; k < 4 && diff_cases[c].ops[k]; k++)
            run_op(&t, diff_cases[c].ops[k]);
        stt_rev_t revs[6];
        bool missing[6];
        size_t nr = 0;
        for (; nr < 6 && diff_cases[c].revs[nr]; nr++)
            assert_int_equal(stt_rev_parse(diff_cases[c].revs[nr], strlen(diff_cases[c].revs[nr]), &revs[nr]), 0);
        int anc[64];
        size_t nanc = 99;
        size_t nm = stt_revtree_revs_diff(&t, revs, nr, missing, anc, &nanc);
        stt_buf_reset(&b);
        stt_buf_appends(&b, "");
        size_t count = 0;
        for (size_t k = 0; k < nr; k++)
            if (missing[k]) {
                if (count++) stt_buf_appendc(&b, ' ');
                stt_rev_format(&b, revs[k].gen, revs[k].id, revs[k].idlen);
            }
        assert_int_equal(count, nm);
        if (strcmp(b.base, diff_cases[c].missing) != 0)
            fail_msg("diff case %zu: missing %s, want %s", c + 1, b.base, diff_cases[c].missing);
        dump_list(&t, anc, nanc, &b);
        if (strcmp(b.base, diff_cases[c].anc) != 0)
            fail_msg("diff case %zu: anc %s, want %s", c + 1, b.base, diff_cases[c].anc);
        stt_revtree_free(&t);
    }
    stt_buf_free(&b);
}

/* ====================================================================================
 * Encoding: round trips, sizes, corrupt records */

static void test_encoding(void **state)
{
    stt_revtree_t t = STT_REVTREE_INIT, u = STT_REVTREE_INIT;
    stt_buf_t e = STT_BUF_INIT;

    /* 1: the empty tree */
    stt_revtree_encode(&t, &e);
    assert_int_equal(e.len, 2);
    assert_int_equal(stt_revtree_decode(&u, e.base, e.len), 0);
    assert_int_equal(u.n, 0);

    /* 2: one revision with a CouchDB-style id costs 20 bytes */
    run_op(&t, "P 1-0123456789abcdef0123456789abcdef");
    stt_buf_reset(&e);
    stt_revtree_encode(&t, &e);
    assert_int_equal(e.len, 20);

    /* 3: a linear history costs 18 bytes a revision */
    stt_revtree_clear(&t);
    char ids[100][33];
    stt_rev_t path[100];
    for (int k = 0; k < 100; k++) {
        snprintf(ids[k], sizeof(ids[k]), "%032x", 1000 + k);
        path[k] = (stt_rev_t){100 - (uint64_t)k, ids[k], 32};
    }
    int leaf;
    bool added;
    assert_int_equal(stt_revtree_merge_path(&t, 100, path, 100, true, &leaf, &added), 0);
    t.nodes[leaf].flags |= STT_REV_HAS_BODY;
    stt_buf_reset(&e);
    stt_revtree_encode(&t, &e);
    assert_int_equal(e.len, 2 + 100 * 18);
    assert_roundtrip(&t);

    /* 4: decode reuses a tree that already holds data, and flags survive */
    assert_int_equal(stt_revtree_decode(&u, e.base, e.len), 0);
    assert_int_equal(u.n, 100);
    assert_int_equal(u.nodes[99].flags, STT_REV_DELETED | STT_REV_HAS_BODY);
    assert_int_equal(u.nodes[98].flags, 0);

    /* 5: every strict prefix and every trailing byte is refused, leaving u empty */
    for (size_t len = 0; len < e.len; len++) {
        assert_int_equal(stt_revtree_decode(&u, e.base, len), STT_E_IO);
        assert_int_equal(u.n, 0);
    }
    stt_buf_append(&e, "", 1);
    assert_int_equal(stt_revtree_decode(&u, e.base, e.len), STT_E_IO);

    /* 6..: hand-made corrupt records */
    static const struct {
        const char *bytes;
        size_t len;
    } bad[] = {
        /* 6 */ {"\x02\x00", 2},                 /* unknown version */
        /* 7 */ {"\x01\x01", 2},                 /* one node announced, none there */
        /* 8 */ {"\x01\xff\xff\xff\xff\x0f", 6}, /* absurd count */
                                                 /* 9 */
        {"\x01\x01\x20\x00\x01"
         "a",
         6}, /* root at gen 0 */
             /* 10 */
        {"\x01\x01\x00\x01\x01"
         "a",
         6}, /* parent distance past the start */
             /* 11 */
        {"\x01\x02\x20\x01\x01"
         "a"
         "\x00\x00\x01"
         "b",
         10}, /* parent distance 0 */
              /* 12 */
        {"\x01\x01\x20\x01\x80\x02"
         "a",
         7}, /* id longer than STT_REV_ID_MAX */
             /* 13 */
        {"\x01\x01\x60\x01\x01"
         "a",
         6}, /* unknown tag bit */
             /* 14 */
        {"\x01\x01\x28\x01\x01"
         "a",
         6}, /* unknown flag */
             /* 15 */
        {"\x01\x02\x20\x01\x01"
         "b"
         "\x20\x01\x01"
         "a",
         10}, /* out of order */
              /* 16 */
        {"\x01\x02\x20\x01\x01"
         "a"
         "\x20\x01\x01"
         "a",
         10}, /* duplicate */
              /* 17 */
        {"\x01\x01\x20\x01\x05"
         "a",
         6}, /* id longer than the record */
    };
    for (size_t c = 0; c < sizeof(bad) / sizeof(bad[0]); c++) {
        run_op(&u, "P 1-q");
        if (stt_revtree_decode(&u, bad[c].bytes, bad[c].len) != STT_E_IO) fail_msg("corrupt case %zu decoded", c + 6);
        assert_int_equal(u.n, 0);
    }
    /* an empty id is a rev ("1-", as couch_doc:parse_rev reads it) */
    assert_int_equal(stt_revtree_decode(&u, "\x01\x01\x20\x01\x00", 5), 0);
    assert_int_equal(u.n, 1);
    assert_int_equal(u.nodes[0].idlen, 0);
    assert_int_equal(stt_revtree_check(&u, NULL, 0), 0);
    /* 18: the good twin of 15 decodes */
    assert_int_equal(stt_revtree_decode(&u,
                                        "\x01\x02\x20\x01\x01"
                                        "a"
                                        "\x20\x01\x01"
                                        "b",
                                        10),
                     0);
    assert_int_equal(u.n, 2);
    /* 19: a 32-character id that is not lowercase hex is stored raw */
    stt_revtree_clear(&t);
    run_op(&t, "P 2-0123456789ABCDEF0123456789abcdef,zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz");
    stt_buf_reset(&e);
    stt_revtree_encode(&t, &e);
    assert_int_equal(e.len, 2 + 2 * (1 + 1 + 1 + 32));

    stt_revtree_free(&t);
    stt_revtree_free(&u);
    stt_buf_free(&e);
}

/* ====================================================================================
 * Long histories: no quadratic work on 1000+-revision paths */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void test_long_history(void **state)
{
    enum { N = 1500 };
    static char ids[2 * N][33];
    static stt_rev_t path[N];
    for (int k = 0; k < 2 * N; k++)
        snprintf(ids[k], sizeof(ids[k]), "%016x%016x", k * 2654435761u, k);
    for (int k = 0; k < N; k++)
        path[k] = (stt_rev_t){N - (uint64_t)k, ids[k], 32};
    stt_revtree_t t = STT_REVTREE_INIT;
    int leaf;
    bool added;
    double t0 = now_ms();
    assert_int_equal(stt_revtree_merge_path(&t, N, path, N, false, &leaf, &added), 0);
    assert_true(added);
    assert_int_equal(t.n, N);
    /* the same path again, then a stemmed resend */
    assert_int_equal(stt_revtree_merge_path(&t, N, path, N, false, &leaf, &added), 0);
    assert_false(added);
    assert_int_equal(stt_revtree_merge_path(&t, N, path, 10, false, &leaf, &added), 0);
    assert_int_equal(t.n, N);
    /* a disjoint 1500-revision path: a second tree */
    static stt_rev_t other[N];
    for (int k = 0; k < N; k++)
        other[k] = (stt_rev_t){N - (uint64_t)k, ids[N + k], 32};
    assert_int_equal(stt_revtree_merge_path(&t, N, other, N, false, &leaf, &added), 0);
    assert_int_equal(t.n, 2 * N);
    assert_check(&t);
    assert_int_equal(stt_revtree_stem(&t, 1000), 2 * (N - 1000));
    assert_check(&t);
    double t1 = now_ms();
    /* a thousand writes as the store does them: decode, edit, stem, encode */
    stt_buf_t e = STT_BUF_INIT;
    stt_revtree_encode(&t, &e);
    char id[33];
    for (int k = 0; k < 1000; k++) {
        assert_int_equal(stt_revtree_decode(&t, e.base, e.len), 0);
        int w = stt_revtree_winner(&t), parent = w;
        if (k & 1) {
            stt_rev_t prev = {t.nodes[w].gen, stt_revtree_id(&t, w), t.nodes[w].idlen};
            assert_int_equal(stt_revtree_check_edit(&t, &prev, &parent), 0);
            assert_int_equal(parent, w);
        } else {
            parent = t.nodes[w].parent; /* a replicated conflict one level down */
        }
        snprintf(id, sizeof(id), "%032x", 0xabc000 + k);
        int i = stt_revtree_add_leaf(&t, parent, id, 32, STT_REV_HAS_BODY);
        assert_true(i >= 0);
        stt_revtree_stem(&t, 1000);
        stt_buf_reset(&e);
        stt_revtree_encode(&t, &e);
    }
    assert_check(&t);
    double t2 = now_ms();
    print_message("    long history: 3000-rev merges+stem %.1f ms, 1000 decode/edit/stem/encode of a %u-node tree "
                  "%.1f ms\n",
                  t1 - t0, t.n, t2 - t1);
    stt_buf_free(&e);
    stt_revtree_free(&t);
}

/* ====================================================================================
 * Golden replay: couchdb-golden/revtree.jsonl
 *
 * Each scenario's ops run at the rev-tree level as the store runs them: put_path is a
 * merge (the new leaf gets a body) and a stem to the revs_limit in force; put is an
 * edit check and a new leaf, then a stem; compact stems and drops the bodies of
 * non-leaf revisions. Then every read CouchDB answered is computed from the tree.
 *
 * Server-assigned revs (put ops) get our own ids, mapped from CouchDB's result_rev.
 * With counter ids, a tie between such a rev and another leaf of the same generation
 * is decided by hash values that differ between servers: lists whose order hangs on
 * such a tie are compared as sets, and reads that follow the winner are skipped when
 * the winner itself is such a tie (a recreation that continues a tied winner makes
 * the rest of the scenario diverge: it is skipped and listed). With ids that keep
 * CouchDB's order (CouchDB's id with its low 32 bits replaced), everything is
 * compared. */

typedef struct {
    char couch[33];
    char mine[33];
} idmap_t;

typedef struct {
    const char *name;
    bool order_preserving;
    stt_revtree_t t;
    uint32_t limit;
    idmap_t map[64];
    size_t nmap;
    unsigned counter;
    bool diverged;
    int failures;      /* in this scenario */
    int skipped;       /* comparisons skipped in this scenario */
    int nondel_status; /* non-leaf "deleted" revs_info entries read as "missing" */
    stt_arena_t arena; /* per-scenario strings */
} gold_t;

static bool verbose(void)
{
    const char *v = getenv("STT_VERBOSE");
    return v && *v && *v != '0';
}

static void gfail(gold_t *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void gfail(gold_t *g, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (g->failures++ < 5) {
        fprintf(stderr, "  [%s%s] ", g->name, g->order_preserving ? "" : ", counter ids");
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
    }
    va_end(ap);
}

static void gskip(gold_t *g, const char *what)
{
    g->skipped++;
    if (verbose()) fprintf(stderr, "  [%s] skipped (hash tie): %s\n", g->name, what);
}

static const char *map_id(const gold_t *g, const char *id, size_t len)
{
    if (len == 32)
        for (size_t k = 0; k < g->nmap; k++)
            if (memcmp(g->map[k].couch, id, 32) == 0) return g->map[k].mine;
    return NULL;
}

static bool is_mine(const gold_t *g, const char *id, size_t len)
{
    if (len == 32)
        for (size_t k = 0; k < g->nmap; k++)
            if (memcmp(g->map[k].mine, id, 32) == 0) return true;
    return false;
}

/* A rev or id from the golden file, with CouchDB's server-assigned ids replaced by
 * ours. Returns an arena string. */
static const char *tr(gold_t *g, const char *s, size_t len)
{
    const char *dash = memchr(s, '-', len);
    size_t pre = dash ? (size_t)(dash + 1 - s) : 0;
    const char *m = map_id(g, s + pre, len - pre);
    char *out = stt_arena_alloc(&g->arena, len + 1);
    memcpy(out, s, pre);
    memcpy(out + pre, m ? m : s + pre, len - pre);
    out[len] = '\0';
    return out;
}

static const char *trj(gold_t *g, const stt_json_t *v)
{
    if (!stt_json_is_str(v)) return "<not a string>";
    return tr(g, v->u.s, v->len);
}

static const char *rev_of(gold_t *g, int i)
{
    stt_buf_t b = STT_BUF_INIT;
    stt_revtree_format(&g->t, i, &b);
    const char *s = stt_arena_strndup(&g->arena, b.base, b.len);
    stt_buf_free(&b);
    return s;
}

static const char *jfmt(gold_t *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const char *jfmt(gold_t *g, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) abort();
    va_end(ap);
    const char *r = stt_arena_strndup(&g->arena, s, strlen(s));
    free(s);
    return r;
}

/* --- lists of strings, compared in order or as sets --------------------------------- */

typedef struct {
    const char **v;
    size_t n, cap;
} slist_t;

static void sl_add(gold_t *g, slist_t *l, const char *s)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        const char **v = stt_arena_alloc(&g->arena, cap * sizeof(*v));
        if (l->n) memcpy(v, l->v, l->n * sizeof(*v));
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = s;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void sl_compare(gold_t *g, const char *what, slist_t *want, slist_t *got, bool as_set)
{
    if (as_set && want->n) qsort(want->v, want->n, sizeof(char *), cmp_str);
    if (as_set && got->n) qsort(got->v, got->n, sizeof(char *), cmp_str);
    bool same = want->n == got->n;
    for (size_t k = 0; same && k < want->n; k++)
        same = strcmp(want->v[k], got->v[k]) == 0;
    if (same) return;
    stt_buf_t b = STT_BUF_INIT;
    stt_buf_appends(&b, "want [");
    for (size_t k = 0; k < want->n; k++)
        stt_buf_appendf(&b, "%s%s", k ? ", " : "", want->v[k]);
    stt_buf_appends(&b, "] got [");
    for (size_t k = 0; k < got->n; k++)
        stt_buf_appendf(&b, "%s%s", k ? ", " : "", got->v[k]);
    stt_buf_appends(&b, "]");
    gfail(g, "%s%s: %s", what, as_set ? " (as a set)" : "", b.base);
    stt_buf_free(&b);
}

/* True when the order of these revs hangs on a tie between one of our ids and
 * another rev of the same generation. */
static bool order_hangs_on_tie(const gold_t *g, const uint64_t *gens, const char *const *ids, const size_t *lens,
                               size_t n)
{
    if (g->order_preserving) return false;
    for (size_t a = 0; a < n; a++)
        for (size_t b = a + 1; b < n; b++)
            if (gens[a] == gens[b] && (is_mine(g, ids[a], lens[a]) || is_mine(g, ids[b], lens[b]))) return true;
    return false;
}

static bool nodes_hang_on_tie(const gold_t *g, const int *idx, size_t n)
{
    uint64_t gens[n ? n : 1];
    const char *ids[n ? n : 1];
    size_t lens[n ? n : 1];
    for (size_t k = 0; k < n; k++) {
        gens[k] = g->t.nodes[idx[k]].gen;
        ids[k] = stt_revtree_id(&g->t, idx[k]);
        lens[k] = g->t.nodes[idx[k]].idlen;
    }
    return order_hangs_on_tie(g, gens, ids, lens, n);
}

/* The winner is decided by a hash tie: another leaf of its class and generation,
 * one of the two server-assigned. */
static bool winner_hangs_on_tie(const gold_t *g)
{
    if (g->order_preserving || g->t.n == 0) return false;
    int leaves[g->t.n];
    size_t n = stt_revtree_leaves(&g->t, leaves);
    const stt_rev_node_t *w = &g->t.nodes[leaves[0]];
    for (size_t k = 1; k < n; k++) {
        const stt_rev_node_t *o = &g->t.nodes[leaves[k]];
        if (o->gen == w->gen && (o->flags & STT_REV_DELETED) == (w->flags & STT_REV_DELETED) &&
            (is_mine(g, stt_revtree_id(&g->t, leaves[0]), w->idlen) ||
             is_mine(g, stt_revtree_id(&g->t, leaves[k]), o->idlen)))
            return true;
    }
    return false;
}

/* --- documents as compared: "rev[ deleted] revisions=start:id,id" ------------------- */

static const char *revisions_json(gold_t *g, const stt_json_t *r)
{
    int64_t start;
    const stt_json_t *ids = stt_json_get(r, "ids");
    if (!r || r->type != STT_JSON_OBJECT || stt_json_int(stt_json_get(r, "start"), &start) || !ids ||
        ids->type != STT_JSON_ARRAY)
        return "<bad _revisions>";
    stt_buf_t b = STT_BUF_INIT;
    stt_buf_appendf(&b, "%lld:", (long long)start);
    for (uint32_t k = 0; k < ids->len; k++)
        stt_buf_appendf(&b, "%s%s", k ? "," : "", trj(g, &ids->u.items[k]));
    const char *s = stt_arena_strndup(&g->arena, b.base, b.len);
    stt_buf_free(&b);
    return s;
}

/* _revisions of leaf i as settee answers: cut to the revs_limit in force. */
static const char *revisions_mine(gold_t *g, int i)
{
    int path[g->t.n];
    size_t n = stt_revtree_path(&g->t, i, path, g->limit);
    stt_buf_t b = STT_BUF_INIT;
    stt_buf_appendf(&b, "%llu:", (unsigned long long)g->t.nodes[i].gen);
    for (size_t k = 0; k < n; k++) {
        if (k) stt_buf_appendc(&b, ',');
        stt_buf_append(&b, stt_revtree_id(&g->t, path[k]), g->t.nodes[path[k]].idlen);
    }
    const char *s = stt_arena_strndup(&g->arena, b.base, b.len);
    stt_buf_free(&b);
    return s;
}

static const char *doc_json(gold_t *g, const stt_json_t *doc)
{
    return jfmt(g, "%s%s revisions=%s", trj(g, stt_json_get(doc, "_rev")),
                stt_json_is_true(stt_json_get(doc, "_deleted")) ? " deleted" : "",
                revisions_json(g, stt_json_get(doc, "_revisions")));
}

static const char *doc_mine(gold_t *g, int i)
{
    return jfmt(g, "%s%s revisions=%s", rev_of(g, i), (g->t.nodes[i].flags & STT_REV_DELETED) ? " deleted" : "",
                revisions_mine(g, i));
}

static const stt_json_t *jarr(const stt_json_t *v)
{
    return v && v->type == STT_JSON_ARRAY ? v : NULL;
}

static int jstatus(const stt_json_t *read)
{
    int64_t s = 0;
    if (stt_json_int(stt_json_get(read, "status"), &s)) return -1;
    return (int)s;
}

/* --- ops ---------------------------------------------------------------------------- */

static void clear_inner_bodies(stt_revtree_t *t)
{
    for (uint32_t i = 0; i < t->n; i++)
        if (!stt_revtree_is_leaf(t, (int)i)) t->nodes[i].flags &= (uint8_t)~STT_REV_HAS_BODY;
}

static void after_write(gold_t *g)
{
    stt_revtree_stem(&g->t, g->limit);
    char err[128];
    if (stt_revtree_check(&g->t, err, sizeof(err))) gfail(g, "check after a write: %s", err);
}

static void op_put_path(gold_t *g, const stt_json_t *op)
{
    const stt_json_t *doc = stt_json_get(op, "doc");
    const stt_json_t *revs = stt_json_get(doc, "_revisions");
    const stt_json_t *ids = jarr(stt_json_get(revs, "ids"));
    int64_t start;
    if (!ids || stt_json_int(stt_json_get(revs, "start"), &start) || ids->len == 0 || ids->len > 2000) {
        gfail(g, "put_path: bad _revisions");
        return;
    }
    stt_rev_t path[2000];
    for (uint32_t k = 0; k < ids->len; k++) {
        const char *id = trj(g, &ids->u.items[k]);
        path[k] = (stt_rev_t){(uint64_t)start - k, id, strlen(id)};
    }
    int leaf;
    bool added;
    int rc = stt_revtree_merge_path(&g->t, (uint64_t)start, path, ids->len,
                                    stt_json_is_true(stt_json_get(doc, "_deleted")), &leaf, &added);
    if (rc) {
        gfail(g, "put_path: merge_path %d", rc);
        return;
    }
    if (added) g->t.nodes[leaf].flags |= STT_REV_HAS_BODY;
    if (jstatus(op) != 201) gfail(g, "put_path: golden status %d", jstatus(op));
    after_write(g);
}

static void make_id(gold_t *g, const char *couch, char *out)
{
    char id[33];
    g->counter++;
    if (g->order_preserving)
        snprintf(id, sizeof(id), "%.24s%08x", couch, 0x5e770000u + g->counter);
    else
        snprintf(id, sizeof(id), "5e77ee%026x", g->counter);
    memcpy(out, id, 33);
}

static void op_put(gold_t *g, const stt_json_t *op)
{
    const stt_json_t *jrev = stt_json_get(op, "rev");
    bool deleted = stt_json_is_true(stt_json_get(op, "deleted"));
    int status = jstatus(op);
    stt_rev_t prev;
    const char *prevs = NULL;
    if (stt_json_is_str(jrev)) {
        prevs = trj(g, jrev);
        if (stt_rev_parse(prevs, strlen(prevs), &prev)) {
            gfail(g, "put: bad rev %s", prevs);
            return;
        }
    }
    /* Recreating a deleted doc continues its winner: if that winner is a hash tie,
     * our tree and CouchDB's part ways here. */
    if (!prevs && !deleted && g->t.n && (g->t.nodes[stt_revtree_winner(&g->t)].flags & STT_REV_DELETED) &&
        winner_hangs_on_tie(g)) {
        g->diverged = true;
        return;
    }
    int parent = -42;
    int rc = stt_revtree_check_edit_deleted(&g->t, prevs ? &prev : NULL, deleted, &parent);
    if (status == 409) {
        if (rc != STT_E_CONFLICT) gfail(g, "put %s: rc %d, CouchDB answered 409", prevs ? prevs : "(no rev)", rc);
        return;
    }
    if (status != (deleted ? 200 : 201)) gfail(g, "put: golden status %d for deleted=%d", status, deleted);
    if (rc != 0) {
        gfail(g, "put %s: rc %d, CouchDB answered %d", prevs ? prevs : "(no rev)", rc, status);
        return;
    }
    const stt_json_t *res = stt_json_get(op, "result_rev");
    stt_rev_t r;
    if (!stt_json_is_str(res) || stt_rev_parse(res->u.s, res->len, &r) || r.idlen != 32 || g->nmap == 64) {
        gfail(g, "put: bad result_rev");
        return;
    }
    uint64_t gen = parent >= 0 ? g->t.nodes[parent].gen + 1 : 1;
    if (gen != r.gen)
        gfail(g, "put: new rev at gen %llu, CouchDB's at %llu", (unsigned long long)gen, (unsigned long long)r.gen);
    idmap_t *m = &g->map[g->nmap++];
    memcpy(m->couch, r.id, 32);
    m->couch[32] = '\0';
    make_id(g, m->couch, m->mine);
    int i = stt_revtree_add_leaf(&g->t, parent, m->mine, 32, (deleted ? STT_REV_DELETED : 0) | STT_REV_HAS_BODY);
    if (i < 0 || !stt_revtree_is_leaf(&g->t, i)) gfail(g, "put: add_leaf %d", i);
    after_write(g);
}

/* --- reads -------------------------------------------------------------------------- */

static void expect_not_found(gold_t *g, const char *what, const stt_json_t *read, int w)
{
    const char *reason = w < 0 ? "missing" : "deleted";
    const stt_json_t *r = stt_json_get(stt_json_get(read, "body"), "reason");
    if (jstatus(read) != 404 || !stt_json_is_str(r) || strcmp(r->u.s, reason) != 0)
        gfail(g, "%s: want CouchDB's answer %d, settee has a 404 %s", what, jstatus(read), reason);
}

static void read_doc(gold_t *g, const stt_json_t *ex, int w, bool w_tie)
{
    bool found = w >= 0 && !(g->t.nodes[w].flags & STT_REV_DELETED);
    static const char *const keys[] = {"winner", "conflicts", "revs", "revs_info"};
    for (int k = 0; k < 4; k++) {
        const stt_json_t *read = stt_json_get(ex, keys[k]);
        if (!found) {
            expect_not_found(g, keys[k], read, w);
            continue;
        }
        const stt_json_t *body = stt_json_get(read, "body");
        if (jstatus(read) != 200) {
            gfail(g, "%s: CouchDB answered %d, settee has a live winner", keys[k], jstatus(read));
            continue;
        }
        if (w_tie) {
            gskip(g, keys[k]);
            continue;
        }
        const char *want = trj(g, stt_json_get(body, "_rev")), *got = rev_of(g, w);
        if (strcmp(want, got) != 0) gfail(g, "%s: winner %s, settee's %s", keys[k], want, got);
        if (k == 1) {
            int leaves[g->t.n];
            size_t n = stt_revtree_leaves(&g->t, leaves);
            bool tie = nodes_hang_on_tie(g, leaves, n);
            static const char *const fields[] = {"_conflicts", "_deleted_conflicts"};
            for (int del = 0; del < 2; del++) {
                slist_t want_l = {0}, got_l = {0};
                const stt_json_t *a = jarr(stt_json_get(body, fields[del]));
                for (uint32_t j = 0; a && j < a->len; j++)
                    sl_add(g, &want_l, trj(g, &a->u.items[j]));
                if (a && a->len == 0) gfail(g, "%s present and empty", fields[del]);
                for (size_t j = 1; j < n; j++)
                    if (!!(g->t.nodes[leaves[j]].flags & STT_REV_DELETED) == del)
                        sl_add(g, &got_l, rev_of(g, leaves[j]));
                sl_compare(g, fields[del], &want_l, &got_l, tie);
            }
        } else if (k == 2) {
            const char *wr = revisions_json(g, stt_json_get(body, "_revisions")), *gr = revisions_mine(g, w);
            if (strcmp(wr, gr) != 0) gfail(g, "revs: _revisions %s, settee's %s", wr, gr);
        } else if (k == 3) {
            /* settee keeps no body for a non-leaf revision (CouchDB after compaction) */
            slist_t want_l = {0}, got_l = {0};
            const stt_json_t *a = jarr(stt_json_get(body, "_revs_info"));
            for (uint32_t j = 0; a && j < a->len; j++) {
                const stt_json_t *st = stt_json_get(&a->u.items[j], "status");
                const char *status = stt_json_is_str(st) ? st->u.s : "?";
                if (j > 0 && strcmp(status, "missing") != 0) {
                    if (strcmp(status, "deleted") == 0) g->nondel_status++;
                    status = "missing";
                }
                sl_add(g, &want_l, jfmt(g, "%s %s", trj(g, stt_json_get(&a->u.items[j], "rev")), status));
            }
            int path[g->t.n];
            size_t n = stt_revtree_path(&g->t, w, path, g->t.n);
            for (size_t j = 0; j < n; j++) {
                const stt_rev_node_t *nd = &g->t.nodes[path[j]];
                const char *status = "missing";
                if (j == 0) status = (nd->flags & STT_REV_DELETED) ? "deleted" : "available";
                if (j == 0 && !(nd->flags & STT_REV_HAS_BODY)) gfail(g, "revs_info: the winner has no body");
                sl_add(g, &got_l, jfmt(g, "%s %s", rev_of(g, path[j]), status));
            }
            sl_compare(g, "_revs_info", &want_l, &got_l, false);
        }
    }
}

static void read_open_revs_all(gold_t *g, const stt_json_t *ex)
{
    const stt_json_t *read = stt_json_get(ex, "open_revs_all");
    const stt_json_t *a = jarr(stt_json_get(read, "body"));
    if (g->t.n == 0) {
        expect_not_found(g, "open_revs_all", read, -1);
        return;
    }
    if (jstatus(read) != 200 || !a) {
        gfail(g, "open_revs_all: status %d", jstatus(read));
        return;
    }
    slist_t want_l = {0}, got_l = {0};
    for (uint32_t j = 0; j < a->len; j++)
        sl_add(g, &want_l, doc_json(g, stt_json_get(&a->u.items[j], "ok")));
    /* every leaf, ascending (gen, id): array order */
    int leaves[g->t.n ? g->t.n : 1];
    size_t n = 0;
    for (uint32_t i = 0; i < g->t.n; i++)
        if (stt_revtree_is_leaf(&g->t, (int)i)) {
            leaves[n++] = (int)i;
            sl_add(g, &got_l, doc_mine(g, (int)i));
        }
    sl_compare(g, "open_revs_all", &want_l, &got_l, nodes_hang_on_tie(g, leaves, n));
}

typedef struct {
    uint64_t gen;
    const char *id;
    size_t idlen;
} rv_t;

static int cmp_rv(const void *a, const void *b)
{
    const rv_t *x = a, *y = b;
    if (x->gen != y->gen) return x->gen < y->gen ? -1 : 1;
    int c = memcmp(x->id, y->id, x->idlen < y->idlen ? x->idlen : y->idlen);
    return c ? c : (x->idlen > y->idlen) - (x->idlen < y->idlen);
}

static void read_open_revs_latest(gold_t *g, const stt_json_t *ex)
{
    const stt_json_t *probes = jarr(stt_json_get(ex, "open_revs_latest"));
    for (uint32_t p = 0; probes && p < probes->len; p++) {
        const stt_json_t *pr = &probes->u.items[p];
        const stt_json_t *revs = jarr(stt_json_get(pr, "revs")), *body = jarr(stt_json_get(pr, "body"));
        if (!revs || !body || jstatus(pr) != 200) {
            gfail(g, "open_revs_latest %u: status %d", p, jstatus(pr));
            continue;
        }
        slist_t want_l = {0}, got_l = {0};
        for (uint32_t j = 0; j < body->len; j++) {
            const stt_json_t *it = &body->u.items[j], *ok = stt_json_get(it, "ok");
            sl_add(g, &want_l, ok ? doc_json(g, ok) : jfmt(g, "missing %s", trj(g, stt_json_get(it, "missing"))));
        }
        /* Leaves reached from the requested revs (deduplicated, ascending), then the
         * revs the tree does not have (deduplicated, ascending). */
        unsigned char *hit = stt_arena_alloc(&g->arena, g->t.n + 1);
        memset(hit, 0, g->t.n + 1);
        rv_t missing[revs->len ? revs->len : 1];
        size_t nmissing = 0;
        int under[g->t.n ? g->t.n : 1];
        for (uint32_t j = 0; j < revs->len; j++) {
            const char *s = trj(g, &revs->u.items[j]);
            stt_rev_t r;
            if (stt_rev_parse(s, strlen(s), &r)) {
                gfail(g, "open_revs_latest: bad rev %s", s);
                continue;
            }
            int i = stt_revtree_find(&g->t, r.gen, r.id, r.idlen);
            if (i < 0) {
                missing[nmissing++] = (rv_t){r.gen, r.id, r.idlen};
                continue;
            }
            size_t n = stt_revtree_leaves_under(&g->t, i, under);
            for (size_t k = 0; k < n; k++)
                hit[under[k]] = 1;
        }
        int found[g->t.n ? g->t.n : 1];
        size_t nfound = 0;
        for (uint32_t i = 0; i < g->t.n; i++)
            if (hit[i]) {
                found[nfound++] = (int)i;
                sl_add(g, &got_l, doc_mine(g, (int)i));
            }
        qsort(missing, nmissing, sizeof(rv_t), cmp_rv);
        uint64_t gens[nmissing ? nmissing : 1];
        const char *ids[nmissing ? nmissing : 1];
        size_t lens[nmissing ? nmissing : 1], nm = 0;
        for (size_t k = 0; k < nmissing; k++) {
            if (k && cmp_rv(&missing[k - 1], &missing[k]) == 0) continue;
            gens[nm] = missing[k].gen, ids[nm] = missing[k].id, lens[nm++] = missing[k].idlen;
            sl_add(
                g, &got_l,
                jfmt(g, "missing %llu-%.*s", (unsigned long long)missing[k].gen, (int)missing[k].idlen, missing[k].id));
        }
        bool tie = nodes_hang_on_tie(g, found, nfound) || order_hangs_on_tie(g, gens, ids, lens, nm);
        sl_compare(g, jfmt(g, "open_revs_latest %u", p), &want_l, &got_l, tie);
    }
}

static void read_changes(gold_t *g, const stt_json_t *ex)
{
    const stt_json_t *row = stt_json_get(ex, "changes_row");
    if (g->t.n == 0) {
        if (!row || row->type != STT_JSON_NULL) gfail(g, "changes_row: CouchDB has a row, the tree is empty");
        return;
    }
    const stt_json_t *ch = jarr(stt_json_get(row, "changes"));
    if (!ch) {
        gfail(g, "changes_row: CouchDB has no row");
        return;
    }
    slist_t want_l = {0}, got_l = {0};
    for (uint32_t j = 0; j < ch->len; j++)
        sl_add(g, &want_l, trj(g, stt_json_get(&ch->u.items[j], "rev")));
    int leaves[g->t.n];
    size_t n = stt_revtree_leaves(&g->t, leaves);
    for (size_t j = 0; j < n; j++)
        sl_add(g, &got_l, rev_of(g, leaves[j]));
    sl_compare(g, "changes_row", &want_l, &got_l, nodes_hang_on_tie(g, leaves, n));
    bool del = g->t.nodes[leaves[0]].flags & STT_REV_DELETED;
    if (stt_json_is_true(stt_json_get(row, "deleted")) != del) gfail(g, "changes_row: deleted flag, settee's %d", del);
}

static void read_revs_diff(gold_t *g, const stt_json_t *ex)
{
    const stt_json_t *probes = jarr(stt_json_get(ex, "revs_diff"));
    for (uint32_t p = 0; probes && p < probes->len; p++) {
        const stt_json_t *pr = &probes->u.items[p];
        const stt_json_t *req = jarr(stt_json_get(stt_json_get(pr, "request"), "doc"));
        const stt_json_t *resp = stt_json_get(pr, "response");
        if (!req || jstatus(pr) != 200 || !resp || resp->type != STT_JSON_OBJECT) {
            gfail(g, "revs_diff %u: status %d", p, jstatus(pr));
            continue;
        }
        const stt_json_t *doc = stt_json_get(resp, "doc");
        size_t nr = req->len;
        stt_rev_t revs[nr ? nr : 1];
        bool missing[nr ? nr : 1];
        for (size_t j = 0; j < nr; j++) {
            const char *s = trj(g, &req->u.items[j]);
            if (stt_rev_parse(s, strlen(s), &revs[j])) gfail(g, "revs_diff: bad rev %s", s);
        }
        int anc[g->t.n ? g->t.n : 1];
        size_t nanc = 0;
        size_t nm = stt_revtree_revs_diff(&g->t, revs, nr, missing, anc, &nanc);
        if (nm == 0) {
            if (doc || resp->len != 0) gfail(g, "revs_diff %u: CouchDB lists the doc, settee has every rev", p);
            continue;
        }
        if (!doc) {
            gfail(g, "revs_diff %u: CouchDB omits the doc, settee misses %zu revs", p, nm);
            continue;
        }
        slist_t want_l = {0}, got_l = {0}, want_a = {0}, got_a = {0};
        const stt_json_t *a = jarr(stt_json_get(doc, "missing"));
        for (uint32_t j = 0; a && j < a->len; j++)
            sl_add(g, &want_l, trj(g, &a->u.items[j]));
        /* sorted by (gen, id) for a doc that exists, request order otherwise */
        rv_t m[nr ? nr : 1];
        size_t k = 0;
        for (size_t j = 0; j < nr; j++)
            if (missing[j]) m[k++] = (rv_t){revs[j].gen, revs[j].id, revs[j].idlen};
        if (g->t.n) qsort(m, k, sizeof(rv_t), cmp_rv);
        uint64_t gens[k];
        const char *ids[k];
        size_t lens[k];
        for (size_t j = 0; j < k; j++) {
            gens[j] = m[j].gen, ids[j] = m[j].id, lens[j] = m[j].idlen;
            sl_add(g, &got_l, jfmt(g, "%llu-%.*s", (unsigned long long)m[j].gen, (int)m[j].idlen, m[j].id));
        }
        sl_compare(g, jfmt(g, "revs_diff %u missing", p), &want_l, &got_l,
                   g->t.n && order_hangs_on_tie(g, gens, ids, lens, k));
        const stt_json_t *pa = jarr(stt_json_get(doc, "possible_ancestors"));
        for (uint32_t j = 0; pa && j < pa->len; j++)
            sl_add(g, &want_a, trj(g, &pa->u.items[j]));
        if (pa && pa->len == 0) gfail(g, "revs_diff %u: possible_ancestors present and empty", p);
        for (size_t j = 0; j < nanc; j++)
            sl_add(g, &got_a, rev_of(g, anc[j]));
        sl_compare(g, jfmt(g, "revs_diff %u possible_ancestors", p), &want_a, &got_a, true);
    }
}

/* Runs one scenario. Returns 0 pass, 1 fail, 2 skipped (diverged). */
static int run_scenario(gold_t *g, const stt_json_t *sc)
{
    int64_t lim = STT_REVS_LIMIT_DEFAULT;
    const stt_json_t *jl = stt_json_get(sc, "revs_limit");
    if (jl && jl->type == STT_JSON_NUMBER) stt_json_int(jl, &lim);
    g->limit = (uint32_t)lim;
    const stt_json_t *ops = jarr(stt_json_get(sc, "ops"));
    for (uint32_t k = 0; ops && k < ops->len && !g->diverged; k++) {
        const stt_json_t *op = &ops->u.items[k], *name = stt_json_get(op, "op");
        if (!stt_json_is_str(name)) {
            gfail(g, "op %u without a name", k);
        } else if (strcmp(name->u.s, "put_path") == 0) {
            op_put_path(g, op);
        } else if (strcmp(name->u.s, "put") == 0) {
            op_put(g, op);
        } else if (strcmp(name->u.s, "set_revs_limit") == 0) {
            int64_t n;
            if (stt_json_int(stt_json_get(op, "n"), &n) || n < 1)
                gfail(g, "set_revs_limit: bad n");
            else
                g->limit = (uint32_t)n;
        } else if (strcmp(name->u.s, "compact") == 0) {
            stt_revtree_stem(&g->t, g->limit);
            clear_inner_bodies(&g->t);
        } else {
            gfail(g, "unknown op %s", name->u.s);
        }
        /* the record the store would write */
        stt_buf_t e = STT_BUF_INIT;
        stt_revtree_t u = STT_REVTREE_INIT;
        stt_revtree_encode(&g->t, &e);
        if (stt_revtree_decode(&u, e.base, e.len) || u.n != g->t.n) gfail(g, "encode/decode after op %u", k);
        stt_revtree_free(&u);
        stt_buf_free(&e);
    }
    if (g->diverged) return 2;
    const stt_json_t *ex = stt_json_get(sc, "expect");
    int w = stt_revtree_winner(&g->t);
    bool w_tie = winner_hangs_on_tie(g);
    read_doc(g, ex, w, w_tie);
    read_open_revs_all(g, ex);
    read_open_revs_latest(g, ex);
    read_changes(g, ex);
    read_revs_diff(g, ex);
    return g->failures ? 1 : 0;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    stt_buf_t b = STT_BUF_INIT;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        stt_buf_append(&b, chunk, n);
    fclose(f);
    return stt_buf_release(&b, len);
}

static void golden_replay(bool order_preserving)
{
    const char *dir = getenv("STT_GOLDEN_DIR");
    char path[4096];
    snprintf(path, sizeof(path), "%s/revtree.jsonl", dir && *dir ? dir : "../shared/couchdb-golden");
    size_t len;
    char *text = read_file(path, &len);
    if (!text) {
        /* the golden data is the point of this test: missing is a failure unless
         * the caller says it may be absent (a container build has no ../shared) */
        const char *opt = getenv("STT_GOLDEN_OPTIONAL");
        if (!(opt && strcmp(opt, "1") == 0)) fail_msg("cannot read %s (set STT_GOLDEN_DIR)", path);
        print_message("    %s not found, STT_GOLDEN_OPTIONAL=1: skipped\n", path);
        skip();
    }
    int total = 0, passed = 0, failed = 0, diverged = 0, skipped_cmp = 0, skipped_sc = 0, nondel = 0;
    stt_buf_t div = STT_BUF_INIT;
    stt_buf_appends(&div, "");
    for (char *line = text, *end; line < text + len; line = end + 1) {
        end = memchr(line, '\n', (size_t)(text + len - line));
        if (!end) end = text + len;
        if (end == line) continue;
        gold_t g = {0};
        g.order_preserving = order_preserving;
        stt_json_t sc;
        char err[128];
        if (stt_json_parse(&g.arena, line, (size_t)(end - line), &sc, err, sizeof(err))) {
            fail_msg("line %d: %s", total + 1, err);
        }
        const stt_json_t *name = stt_json_get(&sc, "name");
        g.name = stt_json_is_str(name) ? name->u.s : "?";
        total++;
        int r = run_scenario(&g, &sc);
        if (r == 0)
            passed++;
        else if (r == 1)
            failed++;
        else {
            diverged++;
            stt_buf_appendf(&div, " %s", g.name);
        }
        skipped_cmp += g.skipped;
        skipped_sc += g.skipped > 0;
        nondel += g.nondel_status;
        stt_revtree_free(&g.t);
        stt_arena_free(&g.arena);
    }
    free(text);
    print_message("    golden (%s ids): %d scenarios, %d pass, %d fail, %d diverged on a hash tie%s%s; "
                  "%d comparisons skipped in %d scenarios; %d non-leaf \"deleted\" read as \"missing\"\n",
                  order_preserving ? "order-preserving" : "counter", total, passed, failed, diverged,
                  diverged ? ":" : "", div.base, skipped_cmp, skipped_sc, nondel);
    stt_buf_free(&div);
    assert_int_equal(total, 360);
    assert_int_equal(failed, 0);
    if (order_preserving) {
        assert_int_equal(diverged, 0);
        assert_int_equal(skipped_cmp, 0);
    }
}

static void test_golden_counter_ids(void **state)
{
    golden_replay(false);
}

static void test_golden_order_preserving_ids(void **state)
{
    golden_replay(true);
}

/* ====================================================================================
 * Property test: random histories, replicas, merge orders
 *
 * A random history (a forest: docs created independently on several nodes have
 * several gen-1 roots) is cut into paths: every leaf's full history, plus resends of
 * random revs with random truncated histories. The paths are dealt to 2-5 replicas;
 * each replica merges its own in its own order. Replicating every replica into one
 * tree, in every order, must give the union of all paths (the reference), with the
 * same winner; invariants and the encoding are checked after every step. Flags of
 * non-leaf revs are left out of the comparison: whether an ancestor is known to be a
 * deletion depends on whether it arrived as a leaf first, in CouchDB too. */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint32_t rnd_below(uint32_t n)
{
    return (uint32_t)(rnd() % n);
}

enum { H_MAX = 80, P_MAX = 160 };

typedef struct {
    uint64_t gen;
    char id[40];
    size_t idlen;
    int parent;
    bool deleted;
} hnode_t;

typedef struct {
    int node;    /* history node of the path's leaf */
    size_t nids; /* revs in the path */
} hpath_t;

typedef struct {
    hnode_t h[H_MAX];
    int nh;
    hpath_t p[P_MAX];
    int np;
} history_t;

static void random_id(char *out, size_t *len, bool long_only)
{
    uint32_t kind = long_only ? 9 * rnd_below(2) : rnd_below(10);
    if (kind < 7) { /* CouchDB style */
        snprintf(out, 33, "%016llx%016llx", (unsigned long long)rnd(), (unsigned long long)rnd());
        *len = 32;
    } else if (kind < 9) { /* short ids, often colliding across generations */
        static const char alpha[] = "abcdef0123-~";
        *len = 1 + rnd_below(3);
        for (size_t k = 0; k < *len; k++)
            out[k] = alpha[rnd_below(sizeof(alpha) - 1)];
        out[*len] = '\0';
    } else { /* 32 characters, not lowercase hex: stored raw */
        snprintf(out, 33, "%016llX%016llx", (unsigned long long)rnd(), (unsigned long long)rnd());
        *len = 32;
    }
}

static bool h_is_leaf(const history_t *hs, int i)
{
    for (int j = 0; j < hs->nh; j++)
        if (hs->h[j].parent == i) return false;
    return true;
}

/* unique_ids: no id repeats in any generation (couch_key_tree tells revs apart by id
 * alone when it looks for duplicates). */
static void make_history_ex(history_t *hs, bool unique_ids)
{
    hs->nh = 0;
    int size = 2 + (int)rnd_below(H_MAX - 2);
    int roots = 1 + (rnd_below(4) == 0) + (rnd_below(8) == 0);
    while (hs->nh < size) {
        hnode_t *n = &hs->h[hs->nh];
        if (hs->nh < roots) {
            n->parent = -1;
        } else if (rnd_below(10) < 7) { /* mostly extend a leaf */
            int tries = 0;
            do
                n->parent = (int)rnd_below((uint32_t)hs->nh);
            while (!h_is_leaf(hs, n->parent) && ++tries < 20);
        } else {
            n->parent = (int)rnd_below((uint32_t)hs->nh);
        }
        n->gen = n->parent >= 0 ? hs->h[n->parent].gen + 1 : 1;
        n->deleted = rnd_below(7) == 0;
        /* {gen, id} must be unique: short ids may collide */
        bool dup;
        do {
            random_id(n->id, &n->idlen, unique_ids);
            dup = false;
            for (int j = 0; j < hs->nh; j++)
                dup |= (unique_ids || hs->h[j].gen == n->gen) && hs->h[j].idlen == n->idlen &&
                       !memcmp(hs->h[j].id, n->id, n->idlen);
        } while (dup);
        hs->nh++;
    }
    hs->np = 0;
    for (int i = 0; i < hs->nh; i++)
        if (h_is_leaf(hs, i)) hs->p[hs->np++] = (hpath_t){i, hs->h[i].gen}; /* full history */
    int extra = (int)rnd_below(hs->nh / 2 + 2);
    for (int k = 0; k < extra && hs->np < P_MAX; k++) {
        int i = (int)rnd_below((uint32_t)hs->nh);
        hs->p[hs->np++] = (hpath_t){i, 1 + rnd_below((uint32_t)hs->h[i].gen)};
    }
    /* sometimes only a truncated history of a leaf travels */
    for (int k = 0; k < hs->np; k++)
        if (hs->p[k].nids > 1 && rnd_below(6) == 0) hs->p[k].nids = 1 + rnd_below((uint32_t)hs->p[k].nids);
}

static void make_history(history_t *hs)
{
    make_history_ex(hs, false);
}

static void path_of(const history_t *hs, const hpath_t *hp, stt_rev_t *ids)
{
    int i = hp->node;
    for (size_t k = 0; k < hp->nids; k++, i = hs->h[i].parent)
        ids[k] = (stt_rev_t){hs->h[i].gen, hs->h[i].id, hs->h[i].idlen};
}

/* Merges one path as the store does; checks the tree after it. */
static void merge_checked(stt_revtree_t *t, uint64_t gen, const stt_rev_t *ids, size_t nids, bool deleted)
{
    int leaf;
    bool added;
    assert_int_equal(stt_revtree_merge_path(t, gen, ids, nids, deleted, &leaf, &added), 0);
    if (added) t->nodes[leaf].flags |= STT_REV_HAS_BODY;
    assert_check(t);
}

/* The reference: union of the nodes and parent links of a set of paths, dumped in
 * the same form as dump_tree(.., true). */
static void reference_dump(const history_t *hs, const hpath_t *paths, int np, stt_buf_t *b)
{
    bool in[H_MAX] = {0}, linked[H_MAX] = {0};
    for (int k = 0; k < np; k++) {
        int i = paths[k].node;
        for (size_t j = 0; j < paths[k].nids; j++, i = hs->h[i].parent) {
            in[i] = true;
            if (j + 1 < paths[k].nids) linked[i] = true;
        }
    }
    /* every node in (gen, id) order, with its parent when some path links them */
    int order[H_MAX], n = 0;
    for (int i = 0; i < hs->nh; i++)
        if (in[i]) order[n++] = i;
    for (int a = 1; a < n; a++) /* insertion sort by (gen, id) */
        for (int c = a; c > 0; c--) {
            const hnode_t *x = &hs->h[order[c - 1]], *y = &hs->h[order[c]];
            rv_t rx = {x->gen, x->id, x->idlen}, ry = {y->gen, y->id, y->idlen};
            if (cmp_rv(&rx, &ry) <= 0) break;
            int tmp = order[c];
            order[c] = order[c - 1];
            order[c - 1] = tmp;
        }
    stt_buf_reset(b);
    stt_buf_appends(b, "");
    for (int k = 0; k < n; k++) {
        const hnode_t *x = &hs->h[order[k]];
        bool leaf = true;
        for (int j = 0; j < hs->nh; j++)
            if (in[j] && linked[j] && hs->h[j].parent == order[k]) leaf = false;
        if (k) stt_buf_appendc(b, ' ');
        stt_rev_format(b, x->gen, x->id, x->idlen);
        if (linked[order[k]]) {
            stt_buf_appendc(b, '^');
            stt_buf_append(b, hs->h[x->parent].id, hs->h[x->parent].idlen);
        }
        if (leaf && x->deleted) stt_buf_appendc(b, '*');
    }
}

/* Replicates src into dst: every leaf's full path, as a replicator would. */
static void replicate(stt_revtree_t *dst, const stt_revtree_t *src)
{
    int leaves[src->n ? src->n : 1], path[src->n ? src->n : 1];
    size_t nl = stt_revtree_leaves(src, leaves);
    for (size_t k = 0; k < nl; k++) {
        size_t np = stt_revtree_path(src, leaves[k], path, src->n);
        stt_rev_t ids[np];
        for (size_t j = 0; j < np; j++)
            ids[j] = (stt_rev_t){src->nodes[path[j]].gen, stt_revtree_id(src, path[j]), src->nodes[path[j]].idlen};
        merge_checked(dst, ids[0].gen, ids, np, src->nodes[leaves[k]].flags & STT_REV_DELETED);
    }
}

static void shuffle(int *v, int n)
{
    for (int k = n - 1; k > 0; k--) {
        int j = (int)rnd_below((uint32_t)k + 1), tmp = v[k];
        v[k] = v[j];
        v[j] = tmp;
    }
}

static bool next_perm(int *v, int n)
{
    int i = n - 2;
    while (i >= 0 && v[i] >= v[i + 1])
        i--;
    if (i < 0) return false;
    int j = n - 1;
    while (v[j] <= v[i])
        j--;
    int tmp = v[i];
    v[i] = v[j];
    v[j] = tmp;
    for (int a = i + 1, b = n - 1; a < b; a++, b--)
        tmp = v[a], v[a] = v[b], v[b] = tmp;
    return true;
}

/* Stems a copy of t and checks it against a direct reading of the rule: a node stays
 * when it is among the first limit revs of some leaf's path; leaves always stay. */
static void check_stem(const stt_revtree_t *t, uint32_t limit, stt_buf_t *b1, stt_buf_t *b2)
{
    stt_revtree_t s = STT_REVTREE_INIT;
    stt_buf_t e = STT_BUF_INIT;
    stt_revtree_encode(t, &e);
    assert_int_equal(stt_revtree_decode(&s, e.base, e.len), 0);
    /* expected: mark nodes near a leaf, then dump keeping parents only when kept */
    unsigned char keep[t->n ? t->n : 1];
    memset(keep, 0, sizeof(keep));
    int leaves[t->n ? t->n : 1], path[t->n ? t->n : 1];
    size_t nl = stt_revtree_leaves(t, leaves);
    for (size_t k = 0; k < nl; k++) {
        size_t np = stt_revtree_path(t, leaves[k], path, limit ? limit : 1);
        for (size_t j = 0; j < np; j++)
            keep[path[j]] = 1;
    }
    stt_buf_reset(b1);
    stt_buf_appends(b1, "");
    size_t kept = 0;
    for (uint32_t i = 0; i < t->n; i++) {
        if (!keep[i]) continue;
        const stt_rev_node_t *nd = &t->nodes[i];
        if (kept++) stt_buf_appendc(b1, ' ');
        stt_revtree_format(t, (int)i, b1);
        if (nd->parent >= 0 && keep[nd->parent]) {
            stt_buf_appendc(b1, '^');
            stt_buf_append(b1, stt_revtree_id(t, nd->parent), t->nodes[nd->parent].idlen);
        }
        if (nd->flags & STT_REV_DELETED) stt_buf_appendc(b1, '*');
    }
    size_t removed = stt_revtree_stem(&s, limit);
    assert_check(&s);
    assert_int_equal(removed, t->n - kept);
    dump_tree(&s, b2, false);
    assert_string_equal(b2->base, b1->base);
    /* the same leaves in the same order (so the same winner), and stemming again
     * changes nothing */
    int leaves2[s.n ? s.n : 1];
    assert_int_equal(stt_revtree_leaves(&s, leaves2), nl);
    dump_list(t, leaves, nl, b1);
    dump_list(&s, leaves2, nl, b2);
    assert_string_equal(b2->base, b1->base);
    assert_int_equal(stt_revtree_winner(&s), leaves2[0]);
    assert_int_equal(stt_revtree_stem(&s, limit), 0);
    assert_roundtrip(&s);
    stt_revtree_free(&s);
    stt_buf_free(&e);
}

static void test_property_replicas(void **state)
{
    const char *env = getenv("STT_SEED");
    uint64_t seed = env && *env ? strtoull(env, NULL, 0) : 0x5e77ee;
    int iterations = 300;
    print_message("    property: seed %#llx (STT_SEED to change), %d histories\n", (unsigned long long)seed,
                  iterations);
    static history_t hs;
    stt_buf_t want = STT_BUF_INIT, got = STT_BUF_INIT, b1 = STT_BUF_INIT, b2 = STT_BUF_INIT;
    long merges = 0, orders = 0;
    for (int it = 0; it < iterations; it++) {
        rng_state = seed + (uint64_t)it * 0x1000193;
        make_history(&hs);
        reference_dump(&hs, hs.p, hs.np, &want);

        /* deal the paths to the replicas; every path goes somewhere */
        int nrep = 2 + (int)rnd_below(4);
        stt_revtree_t rep[5];
        for (int r = 0; r < nrep; r++)
            rep[r] = (stt_revtree_t)STT_REVTREE_INIT;
        int order[P_MAX];
        for (int k = 0; k < hs.np; k++)
            order[k] = k;
        shuffle(order, hs.np);
        for (int k = 0; k < hs.np; k++) {
            const hpath_t *hp = &hs.p[order[k]];
            stt_rev_t ids[hp->nids];
            path_of(&hs, hp, ids);
            int copies = 1 + (rnd_below(4) == 0);
            for (int c = 0; c < copies; c++) {
                int r = (int)rnd_below((uint32_t)nrep);
                merge_checked(&rep[r], ids[0].gen, ids, hp->nids, hs.h[hp->node].deleted);
                assert_roundtrip(&rep[r]);
                merges++;
            }
        }

        /* every order of replicas (at most 24), or 24 random ones */
        int perm[5] = {0, 1, 2, 3, 4};
        int nperm = 0;
        do {
            if (nrep == 5) shuffle(perm, 5);
            stt_revtree_t all = STT_REVTREE_INIT;
            for (int r = 0; r < nrep; r++) {
                replicate(&all, &rep[perm[r]]);
                assert_roundtrip(&all);
            }
            dump_tree(&all, &got, true);
            if (strcmp(got.base, want.base) != 0)
                fail_msg("history %d (seed %#llx), replica order %d: merged\n  %s\nwant\n  %s", it,
                         (unsigned long long)seed, nperm, got.base, want.base);
            /* every leaf carries its body */
            int leaves[all.n ? all.n : 1];
            size_t nl = stt_revtree_leaves(&all, leaves);
            for (size_t k = 0; k < nl; k++)
                assert_true(all.nodes[leaves[k]].flags & STT_REV_HAS_BODY);
            /* winner: the highest live leaf, else the highest deleted one */
            int w = stt_revtree_winner(&all), best = -1;
            for (size_t k = 0; k < nl; k++) {
                int i = leaves[k];
                if (best < 0) best = i;
                bool di = all.nodes[i].flags & STT_REV_DELETED, db = all.nodes[best].flags & STT_REV_DELETED;
                rv_t ri = {all.nodes[i].gen, stt_revtree_id(&all, i), all.nodes[i].idlen};
                rv_t rb = {all.nodes[best].gen, stt_revtree_id(&all, best), all.nodes[best].idlen};
                if ((db && !di) || (di == db && cmp_rv(&ri, &rb) > 0)) best = i;
            }
            assert_int_equal(w, best);
            if (nperm == 0) {
                /* stemming at a few limits */
                static const uint32_t limits[] = {1, 2, 3, 5, 1000};
                for (size_t l = 0; l < sizeof(limits) / sizeof(limits[0]); l++)
                    check_stem(&all, limits[l], &b1, &b2);
                check_stem(&all, 1 + rnd_below(12), &b1, &b2);
            }
            stt_revtree_free(&all);
            orders++;
            nperm++;
        } while (nrep == 5 ? nperm < 24 : next_perm(perm, nrep));

        /* all paths straight into one tree, in a few random orders */
        for (int rep_order = 0; rep_order < 3; rep_order++) {
            shuffle(order, hs.np);
            stt_revtree_t t = STT_REVTREE_INIT;
            for (int k = 0; k < hs.np; k++) {
                const hpath_t *hp = &hs.p[order[k]];
                stt_rev_t ids[hp->nids];
                path_of(&hs, hp, ids);
                merge_checked(&t, ids[0].gen, ids, hp->nids, hs.h[hp->node].deleted);
            }
            dump_tree(&t, &got, true);
            if (strcmp(got.base, want.base) != 0)
                fail_msg("history %d (seed %#llx), path order %d: merged\n  %s\nwant\n  %s", it,
                         (unsigned long long)seed, rep_order, got.base, want.base);
            stt_revtree_free(&t);
        }
        for (int r = 0; r < nrep; r++)
            stt_revtree_free(&rep[r]);
    }
    print_message("    property: %ld merges, %ld replica orders compared\n", merges, orders);
    stt_buf_free(&want);
    stt_buf_free(&got);
    stt_buf_free(&b1);
    stt_buf_free(&b2);
}

/* Replicas that stem on every write with small limits, and interactive edits on top:
 * nothing to compare with, but the invariants hold after every step, stemming never
 * drops a leaf, and the winner is always a leaf. */
static void test_property_stemming_replicas(void **state)
{
    const char *env = getenv("STT_SEED");
    uint64_t seed = env && *env ? strtoull(env, NULL, 0) : 0x5e77ee;
    static history_t hs;
    size_t repaired_leaves = 0;
    for (int it = 0; it < 300; it++) {
        rng_state = seed ^ ((uint64_t)it * 0x9e3779b97f4a7c15ull);
        make_history(&hs);
        stt_revtree_t t = STT_REVTREE_INIT;
        uint32_t limit = 1 + rnd_below(6);
        for (int k = 0; k < hs.np; k++) {
            const hpath_t *hp = &hs.p[rnd_below((uint32_t)hs.np)];
            stt_rev_t ids[hp->nids];
            path_of(&hs, hp, ids);
            merge_checked(&t, ids[0].gen, ids, hp->nids, hs.h[hp->node].deleted);
            if (rnd_below(3) == 0) { /* an interactive edit */
                int parent, w = stt_revtree_winner(&t);
                stt_rev_t prev = {t.nodes[w].gen, stt_revtree_id(&t, w), t.nodes[w].idlen};
                bool del = rnd_below(4) == 0;
                if (stt_revtree_check_edit_deleted(&t, rnd_below(5) ? &prev : NULL, del, &parent) == 0) {
                    char id[33];
                    snprintf(id, sizeof(id), "%032llx", (unsigned long long)rnd());
                    if (stt_revtree_find(&t, parent >= 0 ? t.nodes[parent].gen + 1 : 1, id, 32) < 0)
                        stt_revtree_add_leaf(&t, parent, id, 32, (del ? STT_REV_DELETED : 0) | STT_REV_HAS_BODY);
                    assert_check(&t);
                }
            }
            int before[t.n], after[t.n];
            size_t nb = stt_revtree_leaves(&t, before);
            char saved[nb][300];
            for (size_t j = 0; j < nb; j++) {
                stt_buf_t b = STT_BUF_INIT;
                stt_revtree_format(&t, before[j], &b);
                snprintf(saved[j], sizeof(saved[j]), "%s%s", b.base,
                         (t.nodes[before[j]].flags & STT_REV_DELETED) ? "*" : "");
                stt_buf_free(&b);
            }
            if (rnd_below(8) == 0) limit = 1 + rnd_below(6);
            stt_revtree_stem(&t, limit);
            assert_check(&t);
            assert_roundtrip(&t);
            /* Every leaf stays a leaf with its flags. A stem after a merge that joined
             * trees may add leaves: a leaf the path grew from keeps its own history
             * and loses the link to its new child when that falls off (CouchDB's
             * repair, golden random_115). */
            size_t na = stt_revtree_leaves(&t, after);
            assert_true(na >= nb);
            repaired_leaves += na - nb;
            for (size_t j = 0; j < nb; j++) {
                stt_rev_t r;
                assert_int_equal(stt_rev_parse(saved[j], strcspn(saved[j], "*"), &r), 0);
                int i = stt_revtree_find(&t, r.gen, r.id, r.idlen);
                assert_true(i >= 0 && stt_revtree_is_leaf(&t, i));
                assert_int_equal(!!(t.nodes[i].flags & STT_REV_DELETED), strchr(saved[j], '*') != NULL);
            }
            int w = stt_revtree_winner(&t);
            assert_true(w >= 0 && stt_revtree_is_leaf(&t, w));
        }
        stt_revtree_free(&t);
    }
    print_message("    stemming replicas: %zu former leaves kept by repair stems\n", repaired_leaves);
}

/* ====================================================================================
 * Differential test against a port of couch_key_tree
 *
 * A literal C transcription of couch_key_tree's merge (merge_tree, merge_at,
 * merge_extend, value_pref) and stem (stem_tree, and repair_tree when a merge left
 * duplicate revs), on immutable nodes from an arena, as the Erlang does it. Random
 * stemmed writes go to both; after every write the two forests must be the same. */

enum { KV_MISSING = -1 }; /* ?REV_MISSING; leaves hold 0 (live) or 1 (deleted) */

typedef struct knode knode_t;
typedef struct {
    knode_t **v;
    int n;
} klist_t;
struct knode {
    const char *key;
    size_t keylen;
    int value;
    klist_t kids; /* sorted by key */
};
typedef struct {
    uint64_t pos;
    knode_t *root;
} ktree_t;
typedef struct {
    ktree_t v[H_MAX * 2];
    int n;
} kforest_t;

static stt_arena_t karena;

static int kkey_cmp(const knode_t *a, const knode_t *b)
{
    int c = memcmp(a->key, b->key, a->keylen < b->keylen ? a->keylen : b->keylen);
    return c ? c : (a->keylen > b->keylen) - (a->keylen < b->keylen);
}

static knode_t *knew(const knode_t *like, int value, klist_t kids)
{
    knode_t *n = stt_arena_alloc(&karena, sizeof(*n));
    *n = (knode_t){like->key, like->keylen, value, kids};
    return n;
}

/* [head | tail] */
static klist_t kcons(knode_t *head, klist_t tail)
{
    klist_t l = {stt_arena_alloc(&karena, (size_t)(tail.n + 1) * sizeof(knode_t *)), tail.n + 1};
    l.v[0] = head;
    if (tail.n) memcpy(l.v + 1, tail.v, (size_t)tail.n * sizeof(knode_t *));
    return l;
}

static klist_t ktail(klist_t l)
{
    return (klist_t){l.v + 1, l.n - 1};
}

static int value_pref(int ours, int theirs)
{
    return ours != KV_MISSING ? ours : theirs;
}

static klist_t merge_extend(klist_t a, klist_t b)
{
    if (a.n == 0 && b.n > 0) return b;
    if (b.n == 0) return a;
    knode_t *a0 = a.v[0], *b0 = b.v[0];
    int c = kkey_cmp(a0, b0);
    if (c == 0) return kcons(knew(a0, value_pref(a0->value, b0->value), merge_extend(a0->kids, b0->kids)), ktail(a));
    if (c > 0) return kcons(b0, a);
    return kcons(a0, merge_extend(ktail(a), b));
}

static bool merge_at(klist_t nodes, int64_t pos, klist_t ins, klist_t *out)
{
    if (ins.n == 0 || nodes.n == 0) return false;
    klist_t merged;
    if (pos > 0) {
        knode_t *i0 = ins.v[0];
        if (i0->kids.n == 0 || !merge_at(nodes, pos - 1, i0->kids, &merged)) return false;
        *out = kcons(knew(i0, i0->value, merged), (klist_t){0});
        return true;
    }
    knode_t *n0 = nodes.v[0];
    if (pos < 0) {
        if (merge_at(n0->kids, pos + 1, ins, &merged)) {
            *out = kcons(knew(n0, n0->value, merged), ktail(nodes));
            return true;
        }
        if (!merge_at(ktail(nodes), pos, ins, &merged)) return false;
        *out = kcons(n0, merged);
        return true;
    }
    knode_t *i0 = ins.v[0];
    int c = kkey_cmp(n0, i0);
    if (c == 0) {
        *out = kcons(knew(n0, value_pref(n0->value, i0->value), merge_extend(n0->kids, i0->kids)), ktail(nodes));
        return true;
    }
    if (c > 0 || !merge_at(ktail(nodes), 0, ins, &merged)) return false;
    *out = kcons(n0, merged);
    return true;
}

static int ktree_cmp(const void *a, const void *b)
{
    const ktree_t *x = a, *y = b;
    if (x->pos != y->pos) return x->pos < y->pos ? -1 : 1;
    return kkey_cmp(x->root, y->root);
}

/* merge/2: into the first tree where merge_at finds the place, else a new tree. */
static void kmerge(kforest_t *f, uint64_t ipos, knode_t *ins)
{
    for (int k = 0; k < f->n; k++) {
        klist_t merged;
        if (merge_at(kcons(f->v[k].root, (klist_t){0}), (int64_t)f->v[k].pos - (int64_t)ipos, kcons(ins, (klist_t){0}),
                     &merged)) {
            assert_int_equal(merged.n, 1);
            f->v[k].root = merged.v[0];
            if (ipos < f->v[k].pos) f->v[k].pos = ipos;
            qsort(f->v, (size_t)f->n, sizeof(ktree_t), ktree_cmp);
            return;
        }
    }
    assert_true(f->n < (int)(sizeof(f->v) / sizeof(f->v[0])));
    f->v[f->n++] = (ktree_t){ipos, ins};
    qsort(f->v, (size_t)f->n, sizeof(ktree_t), ktree_cmp);
}

/* A path as a chain: revs oldest first, the leaf last with value leaf_value. */
static knode_t *kchain(const stt_rev_t *ids, size_t nids, const int *values)
{
    knode_t *n = NULL;
    for (size_t k = 0; k < nids; k++) { /* ids[0] is the leaf */
        knode_t like = {ids[k].id, ids[k].idlen, 0, {0}};
        n = knew(&like, values[k], n ? kcons(n, (klist_t){0}) : (klist_t){0});
    }
    return n;
}

/* stem_tree/4: returns true when the node is kept (*out), false when dropped. */
static bool stem_node(uint64_t depth, knode_t *node, int limit, int *limit_pos, knode_t **out, kforest_t *branches)
{
    if (node->kids.n == 0) {
        *limit_pos = limit - 1;
        *out = node;
        return true;
    }
    int final_pos = -1;
    klist_t kids = {stt_arena_alloc(&karena, (size_t)node->kids.n * sizeof(knode_t *)), 0};
    for (int c = 0; c < node->kids.n; c++) {
        int lp;
        knode_t *kept;
        if (stem_node(depth + 1, node->kids.v[c], limit, &lp, &kept, branches)) kids.v[kids.n++] = kept;
        if (lp > final_pos) final_pos = lp;
    }
    if (final_pos > 0 && kids.n > 0) {
        *out = knew(node, node->value, kids);
        *limit_pos = final_pos - 1;
        return true;
    }
    if (final_pos == 0 && kids.n > 0) {
        for (int c = 0; c < kids.n; c++)
            branches->v[branches->n++] = (ktree_t){depth + 1, kids.v[c]};
        *limit_pos = -1;
        return false;
    }
    assert_true(final_pos < 0 && kids.n == 0);
    *limit_pos = final_pos - 1;
    return false;
}

typedef struct {
    uint64_t start;
    knode_t *nodes[H_MAX * 2]; /* leaf first */
    int n;
} kpath_t;

static void leaf_paths(uint64_t pos, knode_t *node, knode_t **acc, int depth, kpath_t *out, int *nout)
{
    acc[depth] = node;
    if (node->kids.n == 0) {
        kpath_t *p = &out[(*nout)++];
        p->n = depth + 1;
        for (int k = 0; k <= depth; k++)
            p->nodes[k] = acc[depth - k];
        p->start = pos; /* leaf gen for now */
        return;
    }
    for (int c = 0; c < node->kids.n; c++)
        leaf_paths(pos + 1, node->kids.v[c], acc, depth + 1, out, nout);
}

static int kpath_cmp(const void *a, const void *b)
{
    const kpath_t *x = a, *y = b;
    if (x->start != y->start) return x->start < y->start ? -1 : 1;
    for (int k = 0; k < x->n && k < y->n; k++) {
        int c = kkey_cmp(x->nodes[k], y->nodes[k]);
        if (c) return c;
    }
    return (x->n > y->n) - (x->n < y->n);
}

static void kstem(kforest_t *f, int limit)
{
    /* duplicate keys anywhere (by id alone): repair_tree */
    const knode_t *seen[H_MAX * 4];
    int nseen = 0;
    bool dupes = false;
    for (int k = 0; k < f->n; k++) {
        knode_t *stack[H_MAX * 4];
        int sp = 0;
        stack[sp++] = f->v[k].root;
        while (sp) {
            knode_t *n = stack[--sp];
            for (int j = 0; j < nseen; j++)
                dupes |= kkey_cmp(seen[j], n) == 0;
            seen[nseen++] = n;
            for (int c = 0; c < n->kids.n; c++)
                stack[sp++] = n->kids.v[c];
        }
    }
    static kforest_t out;
    out.n = 0;
    if (!dupes) {
        for (int k = 0; k < f->n; k++) {
            int lp;
            knode_t *kept;
            if (stem_node(f->v[k].pos, f->v[k].root, limit, &lp, &kept, &out))
                out.v[out.n++] = (ktree_t){f->v[k].pos, kept};
        }
        qsort(out.v, (size_t)out.n, sizeof(ktree_t), ktree_cmp);
        *f = out;
        return;
    }
    static kpath_t paths[H_MAX * 2];
    int np = 0;
    knode_t *acc[H_MAX * 2];
    for (int k = 0; k < f->n; k++)
        leaf_paths(f->v[k].pos, f->v[k].root, acc, 0, paths, &np);
    for (int k = 0; k < np; k++) {
        if (paths[k].n > limit) paths[k].n = limit;
        paths[k].start = paths[k].start + 1 - (uint64_t)paths[k].n;
    }
    qsort(paths, (size_t)np, sizeof(kpath_t), kpath_cmp);
    f->n = 0;
    for (int k = 0; k < np; k++) {
        knode_t *chain = NULL;
        for (int j = 0; j < paths[k].n; j++) /* leaf first: build from the leaf up */
            chain =
                knew(paths[k].nodes[j], paths[k].nodes[j]->value, chain ? kcons(chain, (klist_t){0}) : (klist_t){0});
        kmerge(f, paths[k].start, chain);
    }
}

typedef struct {
    uint64_t gen;
    const char *id;
    size_t idlen;
    const char *parent;
    size_t parentlen;
    int value; /* leaves only */
} kentry_t;

static void kcollect(uint64_t pos, const knode_t *n, const knode_t *parent, kentry_t *out, int *nout)
{
    out[(*nout)++] = (kentry_t){
        pos, n->key, n->keylen, parent ? parent->key : NULL, parent ? parent->keylen : 0, n->kids.n ? 0 : n->value};
    for (int c = 0; c < n->kids.n; c++)
        kcollect(pos + 1, n->kids.v[c], n, out, nout);
}

static int kentry_cmp(const void *a, const void *b)
{
    const kentry_t *x = a, *y = b;
    rv_t rx = {x->gen, x->id, x->idlen}, ry = {y->gen, y->id, y->idlen};
    return cmp_rv(&rx, &ry);
}

/* The forest in dump_tree(.., true) form. */
static void kdump(const kforest_t *f, stt_buf_t *b)
{
    static kentry_t e[H_MAX * 4];
    int n = 0;
    for (int k = 0; k < f->n; k++)
        kcollect(f->v[k].pos, f->v[k].root, NULL, e, &n);
    qsort(e, (size_t)n, sizeof(kentry_t), kentry_cmp);
    stt_buf_reset(b);
    stt_buf_appends(b, "");
    for (int k = 0; k < n; k++) {
        if (k) stt_buf_appendc(b, ' ');
        stt_rev_format(b, e[k].gen, e[k].id, e[k].idlen);
        if (e[k].parent) {
            stt_buf_appendc(b, '^');
            stt_buf_append(b, e[k].parent, e[k].parentlen);
        }
        if (e[k].value == 1)
            stt_buf_appendc(b, '*');
        else if (e[k].value == KV_MISSING)
            stt_buf_appendc(b, '?');
    }
}

static void test_couch_key_tree_differential(void **state)
{
    const char *env = getenv("STT_SEED");
    uint64_t seed = env && *env ? strtoull(env, NULL, 0) : 0x5e77ee;
    static history_t hs;
    static kforest_t kf;
    stt_buf_t want = STT_BUF_INIT, got = STT_BUF_INIT;
    long writes = 0, repairs = 0;
    for (int it = 0; it < 400; it++) {
        rng_state = seed * 31 + (uint64_t)it;
        make_history_ex(&hs, true);
        stt_revtree_t t = STT_REVTREE_INIT;
        kf.n = 0;
        int limit = 1 + (int)rnd_below(6);
        int steps = hs.np * 2;
        for (int st = 0; st < steps; st++) {
            if (rnd_below(12) == 0) limit = 1 + (int)rnd_below(rnd_below(3) ? 6 : 40); /* set_revs_limit */
            if (rnd_below(12) == 0) {                                                  /* compact */
                stt_revtree_stem(&t, (uint32_t)limit);
                kstem(&kf, limit);
            } else {
                hpath_t hp = hs.p[rnd_below((uint32_t)hs.np)];
                if (hp.nids > 1 && rnd_below(3) == 0) hp.nids = 1 + rnd_below((uint32_t)hp.nids);
                stt_rev_t ids[hp.nids];
                int values[hp.nids];
                path_of(&hs, &hp, ids);
                for (size_t k = 0; k < hp.nids; k++)
                    values[k] = k ? KV_MISSING : hs.h[hp.node].deleted;
                bool deleted = hs.h[hp.node].deleted;
                merge_checked(&t, ids[0].gen, ids, hp.nids, deleted);
                bool marked = false;
                for (uint32_t i = 0; i < t.n; i++)
                    marked |= (t.nodes[i].flags & 0xe0) != 0; /* revtree.c's private marks */
                repairs += marked;
                stt_revtree_stem(&t, (uint32_t)limit);
                kmerge(&kf, ids[0].gen - hp.nids + 1, kchain(ids, hp.nids, values));
                kstem(&kf, limit);
                writes++;
            }
            assert_check(&t);
            dump_tree(&t, &got, true);
            kdump(&kf, &want);
            if (strcmp(got.base, want.base) != 0)
                fail_msg("history %d step %d (seed %#llx, limit %d):\n  settee        %s\n  couch_key_tree %s", it, st,
                         (unsigned long long)seed, limit, got.base, want.base);
        }
        stt_revtree_free(&t);
        stt_arena_free(&karena);
    }
    print_message("    couch_key_tree port: %ld writes compared, %ld of them joined trees (repair)\n", writes, repairs);
    stt_buf_free(&want);
    stt_buf_free(&got);
}

/* Random bytes and mutated records never crash decode; what decodes passes check. */
static void test_decode_fuzz(void **state)
{
    rng_state = 0xf00d;
    static history_t hs;
    stt_buf_t e = STT_BUF_INIT;
    stt_revtree_t t = STT_REVTREE_INIT, u = STT_REVTREE_INIT;
    int decoded = 0;
    for (int it = 0; it < 2000; it++) {
        if (it % 20 == 0) {
            make_history(&hs);
            stt_revtree_clear(&t);
            for (int k = 0; k < hs.np; k++) {
                stt_rev_t ids[hs.p[k].nids];
                path_of(&hs, &hs.p[k], ids);
                merge_checked(&t, ids[0].gen, ids, hs.p[k].nids, hs.h[hs.p[k].node].deleted);
            }
        }
        stt_buf_reset(&e);
        stt_revtree_encode(&t, &e);
        int flips = 1 + (int)rnd_below(4);
        for (int f = 0; f < flips; f++)
            e.base[rnd_below((uint32_t)e.len)] ^= (char)(1 + rnd_below(255));
        int rc = stt_revtree_decode(&u, e.base, e.len);
        if (rc == 0) {
            assert_check(&u);
            decoded++;
        } else {
            assert_int_equal(rc, STT_E_IO);
            assert_int_equal(u.n, 0);
        }
    }
    print_message("    fuzz: %d of 2000 mutated records still decoded (and passed check)\n", decoded);
    stt_revtree_free(&t);
    stt_revtree_free(&u);
    stt_buf_free(&e);
}

/* ====================================================================================
 * Registry */

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rev_parse),
        cmocka_unit_test(test_merge_table),
        cmocka_unit_test(test_merge_bad),
        cmocka_unit_test(test_check_edit_table),
        cmocka_unit_test(test_queries_table),
        cmocka_unit_test(test_encoding),
        cmocka_unit_test(test_long_history),
        cmocka_unit_test(test_golden_counter_ids),
        cmocka_unit_test(test_golden_order_preserving_ids),
        cmocka_unit_test(test_property_replicas),
        cmocka_unit_test(test_property_stemming_replicas),
        cmocka_unit_test(test_couch_key_tree_differential),
        cmocka_unit_test(test_decode_fuzz),
    };
    if (argc > 1) {
        char filter[256];
        snprintf(filter, sizeof(filter), "*%s*", argv[1]);
        cmocka_set_test_filter(filter);
    }
    return cmocka_run_group_tests_name("revtree", tests, NULL, NULL);
}
