/* CouchDB revision trees: merge, edit checks, stemming, winner and leaf queries, and a
 * compact binary record. Pure logic, no I/O; the store decodes a doc's tree, changes it
 * and encodes it again on every write.
 *
 * Representation and invariants (checked by stt_revtree_check and by decode):
 *  - t->nodes is a forest kept sorted by (gen, id) ascending, ids compared as plain
 *    bytes. Because a parent's gen is its child's gen - 1, parents always come before
 *    their children, so one backward pass sees every child before its parent and one
 *    forward pass every parent before its children. The order is canonical: the same
 *    tree, however it was built, has the same node array and the same encoding.
 *  - gen(child) == gen(parent) + 1; roots have parent -1 and any gen >= 1 (a stemmed
 *    history starts above 1).
 *  - {gen, id} is unique, which the strict order above enforces.
 *  - ids live in t->ids, each followed by a NUL so stt_revtree_id can be printed.
 *    Stemming rebuilds the pool; other mutations only append to it.
 *
 * Merging follows couch_key_tree for histories that agree with each other (every rev
 * has one parent, whichever path names it): the result is the union of the nodes and
 * parent links of every path merged so far, so the order of merges does not matter,
 * and a path that shares no rev with the tree becomes a separate root. When a path
 * contradicts the tree (an existing rev with a different parent), the tree's history
 * is kept and the path's older part is ignored; couch_key_tree would instead store
 * the rev twice.
 *
 * Joining trees. A path can touch several trees of a stemmed forest (a fragment
 * 8-10 and a tree 1-3, then a path 3-9). couch_key_tree merges the path into one tree
 * only, the touched tree with the oldest root, copying the revs it shares with the
 * others; the stem that follows every write finds the duplicates and rebuilds the
 * forest from every leaf's path cut to revs_limit (repair_tree). Without stemming
 * that is the union again, but with it the leaves of the other trees keep only their
 * own tree's history, a leaf the path grew from still counts as a leaf, and a parent
 * link survives only inside some leaf's cut path. To give the same answers, merge_path
 * marks the revs this depends on (MARK_* below, private flag bits that are never
 * encoded) and the next stem does the repair; a stem without marks is stem_tree. */
#include "store/revtree.h"
#include "src/common/err.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A rev gen needs room for +1 on every edit; CouchDB clients never come near this. */
#define GEN_MAX 999999999999999999ull
#define KNOWN_FLAGS (STT_REV_DELETED | STT_REV_HAS_BODY | STT_REV_WRITTEN)

/* Left by merge_path for the next stem when a path joined trees; stem clears them. */
enum {
    MARK_JOIN_ROOT = 0x20,   /* was the root of a joined tree that is not the oldest one */
    MARK_PATH_LEAF = 0x40,   /* the path's leaf: its history is the whole merged path */
    MARK_FORMER_LEAF = 0x80, /* a leaf of such a tree that the path grew from */
    MARKS = MARK_JOIN_ROOT | MARK_PATH_LEAF | MARK_FORMER_LEAF,
};

/* ------------------------------------------------------------------------------------
 * Scratch memory: per-call temporaries sized by the tree. Small trees (the common
 * case: one to a few revisions) use the stack, so reading a winner costs no malloc. */

typedef struct {
    union {
        uint64_t align;
        unsigned char b[1024];
    } small;
    void *heap;
} scratch_t;

static void *scratch_get(scratch_t *s, size_t n)
{
    s->heap = NULL;
    if (n <= sizeof(s->small.b)) {
        memset(s->small.b, 0, n);
        return s->small.b;
    }
    s->heap = stt_xcalloc(n, 1);
    return s->heap;
}

static void scratch_free(scratch_t *s)
{
    free(s->heap);
}

/* Marks every node that has a child. */
static unsigned char *mark_parents(const stt_revtree_t *t, scratch_t *s)
{
    unsigned char *has_child = scratch_get(s, t->n);
    for (uint32_t i = 0; i < t->n; i++)
        if (t->nodes[i].parent >= 0) has_child[t->nodes[i].parent] = 1;
    return has_child;
}

/* ------------------------------------------------------------------------------------
 * Revs as text */

int stt_rev_parse(const char *s, size_t len, stt_rev_t *out)
{
    const char *dash = memchr(s, '-', len);
    if (!dash || dash == s) return STT_E_BAD_REV;
    uint64_t gen = 0;
    for (const char *p = s; p < dash; p++) {
        if (*p < '0' || *p > '9') return STT_E_BAD_REV;
        gen = gen * 10 + (uint64_t)(*p - '0');
        if (gen > GEN_MAX) return STT_E_BAD_REV;
    }
    size_t idlen = len - (size_t)(dash + 1 - s);
    /* an empty id ("1-") is a rev for couch_doc:parse_rev too */
    if (gen < 1 || idlen > STT_REV_ID_MAX) return STT_E_BAD_REV;
    const char *id = dash + 1;
    /* couch_doc:parse_rev reads a 32-character id as a 128-bit hex number, so a
     * 32-character id that is not hex is a bad rev there too. */
    if (idlen == 32)
        for (size_t i = 0; i < 32; i++) {
            char c = id[i];
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return STT_E_BAD_REV;
        }
    out->gen = gen;
    out->id = id;
    out->idlen = idlen;
    return 0;
}

void stt_rev_format(stt_buf_t *b, uint64_t gen, const char *id, size_t idlen)
{
    stt_buf_append_u64(b, gen);
    stt_buf_appendc(b, '-');
    stt_buf_append(b, id, idlen);
}

void stt_revtree_format(const stt_revtree_t *t, int i, stt_buf_t *b)
{
    stt_rev_format(b, t->nodes[i].gen, stt_revtree_id(t, i), t->nodes[i].idlen);
}

/* ------------------------------------------------------------------------------------
 * Node order and lookup */

static int id_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c) return c;
    return alen < blen ? -1 : alen > blen;
}

/* Node i against {gen, id}: <0, 0, >0. */
static int node_cmp_key(const stt_revtree_t *t, uint32_t i, uint64_t gen, const char *id, size_t idlen)
{
    const stt_rev_node_t *a = &t->nodes[i];
    if (a->gen != gen) return a->gen < gen ? -1 : 1;
    return id_cmp(stt_revtree_id(t, (int)i), a->idlen, id, idlen);
}

static int node_cmp(const stt_revtree_t *t, uint32_t i, uint32_t j)
{
    return node_cmp_key(t, i, t->nodes[j].gen, stt_revtree_id(t, (int)j), t->nodes[j].idlen);
}

/* First index in [0, n) whose node is >= {gen, id}. */
static uint32_t lower_bound(const stt_revtree_t *t, uint32_t n, uint64_t gen, const char *id, size_t idlen)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (node_cmp_key(t, mid, gen, id, idlen) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Finds {gen, id} among the first n nodes, which must be sorted. */
static int find_in(const stt_revtree_t *t, uint32_t n, uint64_t gen, const char *id, size_t idlen)
{
    uint32_t i = lower_bound(t, n, gen, id, idlen);
    return i < n && node_cmp_key(t, i, gen, id, idlen) == 0 ? (int)i : -1;
}

int stt_revtree_find(const stt_revtree_t *t, uint64_t gen, const char *id, size_t idlen)
{
    return find_in(t, t->n, gen, id, idlen);
}

/* Whether node i has no child among the first n nodes, which must be sorted. */
static bool is_leaf_in(const stt_revtree_t *t, uint32_t n, int i)
{
    /* Children sort right after i, in the block of gen + 1. */
    uint64_t child_gen = t->nodes[i].gen + 1;
    for (uint32_t j = (uint32_t)i + 1; j < n && t->nodes[j].gen <= child_gen; j++)
        if (t->nodes[j].parent == i) return false;
    return true;
}

bool stt_revtree_is_leaf(const stt_revtree_t *t, int i)
{
    return is_leaf_in(t, t->n, i);
}

/* ------------------------------------------------------------------------------------
 * Building */

void stt_revtree_free(stt_revtree_t *t)
{
    free(t->nodes);
    stt_buf_free(&t->ids);
    t->nodes = NULL;
    t->n = t->cap = 0;
}

void stt_revtree_clear(stt_revtree_t *t)
{
    t->n = 0;
    stt_buf_reset(&t->ids);
}

static void reserve_nodes(stt_revtree_t *t, uint32_t extra)
{
    if (t->cap - t->n >= extra) return;
    uint32_t cap = t->cap ? t->cap : 4;
    while (cap - t->n < extra)
        cap *= 2;
    t->nodes = stt_xrealloc(t->nodes, (size_t)cap * sizeof(*t->nodes));
    t->cap = cap;
}

/* Appends a node (breaking the order until normalize runs). Returns its index. */
static int push_node(stt_revtree_t *t, uint64_t gen, int parent, const char *id, size_t idlen, uint8_t flags)
{
    /* The id may come from this very pool (a caller copying a rev of the tree). */
    uintptr_t base = (uintptr_t)t->ids.base, at = (uintptr_t)id;
    if (t->ids.base && at >= base && at < base + t->ids.len) {
        stt_buf_reserve(&t->ids, idlen + 2);
        id = t->ids.base + (at - base);
    }
    reserve_nodes(t, 1);
    stt_rev_node_t *nd = &t->nodes[t->n];
    nd->gen = gen;
    nd->parent = parent;
    nd->idoff = (uint32_t)t->ids.len;
    nd->idlen = (uint8_t)idlen;
    nd->flags = flags;
    stt_buf_append(&t->ids, id, idlen);
    stt_buf_appendc(&t->ids, '\0');
    return (int)t->n++;
}

static int cmp_index(const void *a, const void *b, void *arg)
{
    const stt_revtree_t *t = arg;
    return node_cmp(t, *(const uint32_t *)a, *(const uint32_t *)b);
}

/* Restores the (gen, id) order after nodes were appended at [n0, n). The nodes before
 * n0 are sorted. *track is an index to follow through the move (may be NULL). */
static void normalize(stt_revtree_t *t, uint32_t n0, int *track)
{
    uint32_t i = n0 ? n0 : 1;
    while (i < t->n && node_cmp(t, i - 1, i) < 0)
        i++;
    if (i >= t->n) return;
    if (t->n == n0 + 1) {
        /* One new node out of place, the usual case (a new leaf on a branch that is
         * not the highest): move it into place and renumber what lies above it. */
        stt_rev_node_t nd = t->nodes[n0];
        uint32_t pos = lower_bound(t, n0, nd.gen, t->ids.base + nd.idoff, nd.idlen);
        memmove(&t->nodes[pos + 1], &t->nodes[pos], (n0 - pos) * sizeof(nd));
        t->nodes[pos] = nd; /* its parent has a lower gen, so it lies below pos */
        for (uint32_t j = pos + 1; j < t->n; j++) {
            int32_t *p = &t->nodes[j].parent;
            if (*p == (int32_t)n0) /* a root the merge moved up under the new node */
                *p = (int32_t)pos;
            else if (*p >= (int32_t)pos)
                (*p)++;
        }
        if (track && *track >= 0) *track = *track == (int)n0 ? (int)pos : *track + (*track >= (int)pos);
        return;
    }
    uint32_t n = t->n;
    uint32_t *order = stt_xmalloc((size_t)n * 2 * sizeof(uint32_t));
    uint32_t *where = order + n;
    for (uint32_t j = 0; j < n; j++)
        order[j] = j;
    qsort_r(order, n, sizeof(uint32_t), cmp_index, t);
    for (uint32_t j = 0; j < n; j++)
        where[order[j]] = j;
    stt_rev_node_t *nodes = stt_xmalloc((size_t)t->cap * sizeof(*nodes));
    for (uint32_t j = 0; j < n; j++) {
        nodes[j] = t->nodes[order[j]];
        if (nodes[j].parent >= 0) nodes[j].parent = (int32_t)where[nodes[j].parent];
    }
    free(t->nodes);
    t->nodes = nodes;
    if (track && *track >= 0) *track = (int)where[*track];
    free(order);
}

static bool id_eq(const stt_revtree_t *t, int i, const stt_rev_t *r)
{
    return t->nodes[i].idlen == r->idlen && memcmp(stt_revtree_id(t, i), r->id, r->idlen) == 0;
}

/* The path reaches further back than the tree that holds f: move that tree's root up
 * along the path, joining any older tree the path leads into (stemmed_then_full, a
 * path bridging two fragments). Only nodes before n0 are looked up: the nodes this
 * merge appended are path positions already placed. grew_from is the node the path's
 * new revs hang from when it was a leaf before, else -1. Marks the joins for stem. */
static void extend_up(stt_revtree_t *t, uint32_t n0, uint64_t gen, const stt_rev_t *ids, size_t nids, int f,
                      int grew_from, int leaf)
{
    int r = f, tree_root = -1;
    bool joined = false;
    for (;;) {
        if (tree_root < 0) { /* entering a tree that existed before this merge */
            while (t->nodes[r].parent >= 0)
                r = t->nodes[r].parent;
            tree_root = r;
        }
        uint64_t k = gen - t->nodes[r].gen; /* path position of the root's gen */
        if (k + 1 >= nids || !id_eq(t, r, &ids[k]))
            break; /* nothing older in the path, or the path disagrees with the tree */
        const stt_rev_t *up = &ids[k + 1];
        int p = find_in(t, n0, gen - k - 1, up->id, up->idlen);
        if (p < 0) {
            p = push_node(t, gen - k - 1, -1, up->id, up->idlen, 0);
            t->nodes[r].parent = p;
            r = p;
            continue;
        }
        /* p's tree is older: the one CouchDB merges into, unless the path goes on */
        bool p_was_leaf = is_leaf_in(t, n0, p);
        t->nodes[r].parent = p;
        t->nodes[tree_root].flags |= MARK_JOIN_ROOT;
        if (grew_from >= 0) t->nodes[grew_from].flags |= MARK_FORMER_LEAF;
        grew_from = p_was_leaf ? p : -1;
        joined = true;
        r = p;
        tree_root = -1;
    }
    if (joined) t->nodes[leaf].flags |= MARK_PATH_LEAF;
}

int stt_revtree_merge_path(stt_revtree_t *t, uint64_t gen, const stt_rev_t *ids, size_t nids, bool deleted, int *leaf,
                           bool *added)
{
    if (nids == 0 || gen < nids || gen > GEN_MAX) return STT_E_BAD_REV;
    for (size_t k = 0; k < nids; k++)
        if (ids[k].idlen > STT_REV_ID_MAX) return STT_E_BAD_REV; /* "1-" is a rev */
    uint32_t n0 = t->n;
    /* The youngest rev of the path that the tree already has. The usual replicated
     * write finds it at k = 1 (a new leaf on a known parent) or k = 0 (a resend). */
    size_t k = 0;
    int f = -1;
    for (; k < nids; k++)
        if ((f = find_in(t, n0, gen - k, ids[k].id, ids[k].idlen)) >= 0) break;
    int grew_from = k > 0 && f >= 0 && is_leaf_in(t, n0, f) ? f : -1;
    int parent = f;
    for (size_t j = k; j-- > 0;)
        parent = push_node(t, gen - j, parent, ids[j].id, ids[j].idlen, j == 0 && deleted ? STT_REV_DELETED : 0);
    int lf = k == 0 ? f : parent;
    /* couch_key_tree's value_pref: a rev known only as an ancestor (no body) takes
     * the value of a path that ends at it. That shows only if it becomes a leaf
     * again, which a repair stem can do (see the top of the file). */
    if (k == 0 && !(t->nodes[f].flags & (STT_REV_HAS_BODY | STT_REV_WRITTEN)))
        t->nodes[f].flags = (uint8_t)((t->nodes[f].flags & ~STT_REV_DELETED) | (deleted ? STT_REV_DELETED : 0));
    if (f >= 0) extend_up(t, n0, gen, ids, nids, f, grew_from, lf);
    normalize(t, n0, &lf);
    *leaf = lf;
    *added = k > 0;
    return 0;
}

int stt_revtree_add_leaf(stt_revtree_t *t, int parent, const char *id, size_t idlen, uint8_t flags)
{
    if (idlen > STT_REV_ID_MAX) return -1;
    uint32_t n0 = t->n;
    int i = push_node(t, parent >= 0 ? t->nodes[parent].gen + 1 : 1, parent, id, idlen, flags & KNOWN_FLAGS);
    normalize(t, n0, &i);
    return i;
}

/* ------------------------------------------------------------------------------------
 * Queries */

int stt_revtree_winner(const stt_revtree_t *t)
{
    if (t->n == 0) return -1;
    /* Walking down from the highest (gen, id), every child is seen before its parent,
     * so the first live leaf met is the winner; without one, the first leaf met. */
    scratch_t s;
    unsigned char *has_child = scratch_get(&s, t->n);
    int first_leaf = -1, w = -1;
    for (uint32_t i = t->n; i-- > 0;) {
        const stt_rev_node_t *nd = &t->nodes[i];
        if (!has_child[i]) {
            if (!(nd->flags & STT_REV_DELETED)) {
                w = (int)i;
                break;
            }
            if (first_leaf < 0) first_leaf = (int)i;
        }
        if (nd->parent >= 0) has_child[nd->parent] = 1;
    }
    scratch_free(&s);
    return w >= 0 ? w : first_leaf;
}

size_t stt_revtree_leaves(const stt_revtree_t *t, int *out)
{
    scratch_t s;
    unsigned char *has_child = mark_parents(t, &s);
    size_t n = 0;
    for (int pass = 0; pass < 2; pass++) {
        uint8_t want = pass ? STT_REV_DELETED : 0;
        for (uint32_t i = t->n; i-- > 0;)
            if (!has_child[i] && (t->nodes[i].flags & STT_REV_DELETED) == want) out[n++] = (int)i;
    }
    scratch_free(&s);
    return n;
}

size_t stt_revtree_leaves_under(const stt_revtree_t *t, int i, int *out)
{
    enum { IN = 1, HAS_CHILD = 2 };
    scratch_t s;
    unsigned char *m = scratch_get(&s, t->n);
    m[i] = IN;
    for (uint32_t j = (uint32_t)i + 1; j < t->n; j++) {
        int32_t p = t->nodes[j].parent;
        if (p >= 0) {
            m[p] |= HAS_CHILD;
            if (m[p] & IN) m[j] |= IN;
        }
    }
    size_t n = 0;
    for (uint32_t j = (uint32_t)i; j < t->n; j++)
        if (m[j] == IN) out[n++] = (int)j;
    scratch_free(&s);
    return n;
}

size_t stt_revtree_path(const stt_revtree_t *t, int i, int *out, size_t max)
{
    size_t n = 0;
    for (; i >= 0 && n < max; i = t->nodes[i].parent)
        out[n++] = i;
    return n;
}

size_t stt_revtree_revs_diff(const stt_revtree_t *t, const stt_rev_t *revs, size_t nrevs, bool *missing, int *anc,
                             size_t *nanc)
{
    size_t nmissing = 0;
    uint64_t top = 0;
    for (size_t k = 0; k < nrevs; k++) {
        missing[k] = stt_revtree_find(t, revs[k].gen, revs[k].id, revs[k].idlen) < 0;
        if (missing[k]) {
            nmissing++;
            if (revs[k].gen > top) top = revs[k].gen;
        }
    }
    size_t na = 0;
    if (nmissing && anc && t->n) {
        /* Every leaf below the highest missing gen, related or not: CouchDB's answer. */
        scratch_t s;
        unsigned char *has_child = mark_parents(t, &s);
        for (uint32_t i = 0; i < t->n && t->nodes[i].gen < top; i++)
            if (!has_child[i]) anc[na++] = (int)i;
        scratch_free(&s);
    }
    if (nanc) *nanc = na;
    return nmissing;
}

/* ------------------------------------------------------------------------------------
 * Interactive edits */

int stt_revtree_check_edit_deleted(const stt_revtree_t *t, const stt_rev_t *prev, bool deleted, int *parent)
{
    if (t->n == 0) {
        if (prev) return STT_E_CONFLICT;
        *parent = -1;
        return 0;
    }
    int w = stt_revtree_winner(t);
    bool doc_deleted = t->nodes[w].flags & STT_REV_DELETED;
    if (!prev) {
        /* Recreating a deleted doc continues its winning tombstone, so the history
         * stays one tree (couch_db_updater); deleting it again is a conflict. */
        if (!doc_deleted || deleted) return STT_E_CONFLICT;
        *parent = w;
        return 0;
    }
    /* On a deleted doc every leaf is deleted and CouchDB only accepts a recreation
     * without _rev; on a live doc any leaf may be extended, a deleted loser too. */
    if (doc_deleted) return STT_E_CONFLICT;
    int i = stt_revtree_find(t, prev->gen, prev->id, prev->idlen);
    if (i < 0 || !stt_revtree_is_leaf(t, i)) return STT_E_CONFLICT;
    *parent = i;
    return 0;
}

int stt_revtree_check_edit(const stt_revtree_t *t, const stt_rev_t *prev, int *parent)
{
    return stt_revtree_check_edit_deleted(t, prev, false, parent);
}

/* ------------------------------------------------------------------------------------
 * Stemming */

size_t stt_revtree_stem(stt_revtree_t *t, uint32_t limit)
{
    if (t->n == 0) return 0;
    if (limit == 0) limit = 1;
    /* Walks of limit revs go down from every leaf toward its root; what no walk
     * reaches goes. reach[i] is the most revs a walk still has when it reaches node
     * i (counting i), so a node stays when reach > 0 - among the limit newest revs of
     * some leaf's path, couch_key_tree:stem - and a walk goes on to its parent when
     * reach >= 2. Children come after parents, so one backward pass carries the
     * walks down. With repair marks (see the top of the file): the path's leaf walks
     * its whole history (full), leaves of joined trees stop at their old root, former
     * leaves walk too, and a parent link stays only where some walk went on. */
    bool repair = false;
    for (uint32_t i = 0; i < t->n && !repair; i++)
        repair = t->nodes[i].flags & MARKS;
    scratch_t s;
    int32_t *reach = scratch_get(&s, (size_t)t->n * 2 * sizeof(int32_t));
    int32_t *full = reach + t->n;
    for (uint32_t i = 0; i < t->n; i++)
        if (t->nodes[i].parent >= 0) reach[t->nodes[i].parent] = -1; /* has a child */
    for (uint32_t i = 0; i < t->n; i++) {
        uint8_t fl = t->nodes[i].flags;
        reach[i] = reach[i] == 0 || (fl & MARK_FORMER_LEAF) ? (int32_t)limit : 0;
        full[i] = (fl & MARK_PATH_LEAF) ? (int32_t)limit : 0;
    }
    size_t removed = 0;
    for (uint32_t i = t->n; i-- > 0;) {
        int32_t p = t->nodes[i].parent;
        if (p >= 0) {
            if (!(t->nodes[i].flags & MARK_JOIN_ROOT) && reach[i] - 1 > reach[p]) reach[p] = reach[i] - 1;
            if (full[i] - 1 > full[p]) full[p] = full[i] - 1;
        }
        removed += reach[i] <= 0 && full[i] <= 0;
    }
    if (removed || repair) {
        /* reach becomes the old-to-new index map; parents are mapped before children. */
        stt_buf_t ids = STT_BUF_INIT;
        if (removed) stt_buf_reserve(&ids, t->ids.len);
        uint32_t n = 0;
        for (uint32_t i = 0; i < t->n; i++) {
            stt_rev_node_t nd = t->nodes[i];
            if (reach[i] <= 0 && full[i] <= 0) {
                reach[i] = -1;
                continue;
            }
            bool link = !repair || full[i] >= 2 || (reach[i] >= 2 && !(nd.flags & MARK_JOIN_ROOT));
            nd.parent = nd.parent >= 0 && link ? reach[nd.parent] : -1;
            nd.flags &= (uint8_t)~MARKS;
            if (removed) {
                const char *id = t->ids.base + nd.idoff;
                nd.idoff = (uint32_t)ids.len;
                stt_buf_append(&ids, id, nd.idlen);
                stt_buf_appendc(&ids, '\0');
            }
            t->nodes[n] = nd;
            reach[i] = (int32_t)n++;
        }
        t->n = n;
        if (removed) {
            stt_buf_free(&t->ids);
            t->ids = ids;
        }
    }
    scratch_free(&s);
    return removed;
}

/* ------------------------------------------------------------------------------------
 * Binary record
 *
 *   byte    version (1)
 *   varint  number of nodes
 *   per node, in (gen, id) order:
 *     byte    tag: bits 0-3 flags, 0x10 id packed as 16 bytes of hex, 0x20 root
 *     varint  root: gen; otherwise distance back to the parent (index - parent)
 *     id      packed: 16 bytes; otherwise varint length and the bytes
 *
 * A 32-lowercase-hex id (every rev CouchDB or settee makes) takes 16 bytes, and a
 * child's gen is implied by its parent, so a one-revision doc is 20 bytes. */

enum { FORMAT_VERSION = 1, TAG_FLAGS = 0x0f, TAG_PACKED = 0x10, TAG_ROOT = 0x20 };

/* Lowercase hex digit values, -1 for anything else: packing is the hot part of
 * encoding a long history. */
#define HEXV(c) ((c) >= '0' && (c) <= '9' ? (c) - '0' : (c) >= 'a' && (c) <= 'f' ? (c) - 'a' + 10 : -1)
#define HEXV4(c) HEXV(c), HEXV((c) + 1), HEXV((c) + 2), HEXV((c) + 3)
#define HEXV16(c) HEXV4(c), HEXV4((c) + 4), HEXV4((c) + 8), HEXV4((c) + 12)
#define HEXV64(c) HEXV16(c), HEXV16((c) + 16), HEXV16((c) + 32), HEXV16((c) + 48)
static const signed char hexv[256] = {HEXV64(0), HEXV64(64), HEXV64(128), HEXV64(192)};

/* Packs a 32-lowercase-hex id into 16 bytes at out; false (out garbage) otherwise. */
static bool pack_hex(const char *id, size_t len, unsigned char *out)
{
    if (len != 32) return false;
    for (int j = 0; j < 16; j++) {
        int hi = hexv[(unsigned char)id[2 * j]], lo = hexv[(unsigned char)id[2 * j + 1]];
        if ((hi | lo) < 0) return false;
        out[j] = (unsigned char)(hi << 4 | lo);
    }
    return true;
}

static unsigned char *put_varint(unsigned char *w, uint64_t v)
{
    while (v >= 0x80) {
        *w++ = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    *w++ = (unsigned char)v;
    return w;
}

void stt_revtree_encode(const stt_revtree_t *t, stt_buf_t *out)
{
    /* worst case: tag, 10-byte varint, then a raw id with its 2-byte length */
    size_t max = 1 + 10;
    for (uint32_t i = 0; i < t->n; i++)
        max += 1 + 10 + 2 + t->nodes[i].idlen;
    stt_buf_reserve(out, max + 1);
    unsigned char *w = (unsigned char *)out->base + out->len;
    *w++ = FORMAT_VERSION;
    w = put_varint(w, t->n);
    for (uint32_t i = 0; i < t->n; i++) {
        const stt_rev_node_t *nd = &t->nodes[i];
        const char *id = stt_revtree_id(t, (int)i);
        unsigned char *tag = w++;
        w = put_varint(w, nd->parent < 0 ? nd->gen : i - (uint32_t)nd->parent);
        bool packed = pack_hex(id, nd->idlen, w);
        if (packed) {
            w += 16;
        } else {
            w = put_varint(w, nd->idlen);
            memcpy(w, id, nd->idlen);
            w += nd->idlen;
        }
        *tag = (unsigned char)((nd->flags & KNOWN_FLAGS) | (packed ? TAG_PACKED : 0) | (nd->parent < 0 ? TAG_ROOT : 0));
    }
    out->len = (size_t)(w - (unsigned char *)out->base);
    out->base[out->len] = '\0';
}

int stt_revtree_decode(stt_revtree_t *t, const void *data, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = data, *end = p + len;
    uint64_t n, v;
    stt_revtree_clear(t);
    if (len < 2 || *p++ != FORMAT_VERSION || stt_varint_read(&p, end, &n) < 0 || n > (uint64_t)(end - p) / 3 ||
        n > INT32_MAX)
        goto corrupt;
    reserve_nodes(t, (uint32_t)n);
    /* room for every id as 32 hex and a NUL, and for one more (the usual next edit) */
    stt_buf_reserve(&t->ids, ((size_t)n + 1) * 33 + 1);
    for (uint32_t i = 0; i < n; i++) {
        if (p >= end) goto corrupt;
        unsigned tag = *p++;
        if ((tag & ~(TAG_FLAGS | TAG_PACKED | TAG_ROOT)) || (tag & TAG_FLAGS & ~KNOWN_FLAGS)) goto corrupt;
        if (stt_varint_read(&p, end, &v) < 0) goto corrupt;
        stt_rev_node_t *nd = &t->nodes[i];
        nd->parent = -1;
        nd->gen = v;
        if (!(tag & TAG_ROOT)) {
            if (v < 1 || v > i) goto corrupt;
            nd->parent = (int32_t)(i - v);
            nd->gen = t->nodes[nd->parent].gen + 1;
        }
        if (nd->gen < 1) /* a root at 0, or a parent gen that wrapped */
            goto corrupt;
        nd->flags = (uint8_t)(tag & TAG_FLAGS);
        nd->idoff = (uint32_t)t->ids.len;
        if (tag & TAG_PACKED) {
            if (end - p < 16) goto corrupt;
            stt_buf_reserve(&t->ids, 33 + 1);
            char *d = t->ids.base + t->ids.len;
            for (int j = 0; j < 16; j++) {
                d[2 * j] = hex[p[j] >> 4];
                d[2 * j + 1] = hex[p[j] & 15];
            }
            d[32] = '\0';
            t->ids.len += 33;
            nd->idlen = 32;
            p += 16;
        } else {
            if (stt_varint_read(&p, end, &v) < 0 || v > STT_REV_ID_MAX || v > (uint64_t)(end - p)) goto corrupt;
            stt_buf_append(&t->ids, p, (size_t)v);
            stt_buf_appendc(&t->ids, '\0');
            nd->idlen = (uint8_t)v;
            p += v;
        }
        t->n = i + 1;
        if (i > 0 && node_cmp(t, i - 1, i) >= 0) goto corrupt;
    }
    if (p != end) goto corrupt;
    return 0;
corrupt:
    stt_revtree_clear(t);
    return STT_E_IO;
}

/* ------------------------------------------------------------------------------------
 * Invariants */

int stt_revtree_check(const stt_revtree_t *t, char *err, size_t errlen)
{
    for (uint32_t i = 0; i < t->n; i++) {
        const stt_rev_node_t *nd = &t->nodes[i];
        const char *why = NULL;
        if ((size_t)nd->idoff + nd->idlen >= t->ids.len)
            why = "id out of the pool";
        else if (nd->flags & ~(KNOWN_FLAGS | MARKS))
            why = "unknown flags";
        else if (nd->gen < 1)
            why = "gen 0";
        else if (nd->parent >= (int32_t)i || nd->parent < -1)
            why = "parent not before child";
        else if (nd->parent >= 0 && t->nodes[nd->parent].gen + 1 != nd->gen)
            why = "gen is not parent gen + 1";
        else if (i > 0 && node_cmp(t, i - 1, i) >= 0)
            why = "nodes not in strict (gen, id) order";
        if (why) {
            if (err && errlen) snprintf(err, errlen, "node %u: %s", i, why);
            return -1;
        }
    }
    return 0;
}

int stt_revtree_cmp(const stt_revtree_t *t, int a, int b)
{
    const stt_rev_node_t *x = &t->nodes[a], *y = &t->nodes[b];
    if (x->gen != y->gen) return x->gen < y->gen ? -1 : 1;
    size_t m = x->idlen < y->idlen ? x->idlen : y->idlen;
    int c = memcmp(stt_revtree_id(t, a), stt_revtree_id(t, b), m);
    return c ? c : (x->idlen > y->idlen) - (x->idlen < y->idlen);
}
