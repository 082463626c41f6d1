/* CouchDB revision trees: pure logic, no I/O.
 *
 * A document's history is a forest: each node is one revision {gen, id}, linked to
 * its parent; a path that shares no revision with the stored tree becomes a separate
 * root (CouchDB's couch_key_tree). Leaves are the current revisions of the doc.
 *
 * Ordering used everywhere ("winner order"): live before deleted, then higher
 * generation, then larger id (plain byte comparison of the id string). The winner
 * is the first leaf in that order.
 *
 * Node order: nodes are kept sorted by (gen, id) ascending, so a parent always comes
 * before its children and the same tree has the same node array (and encoding)
 * however it was built. Mutations may renumber nodes.
 *
 * Memory: a tree owns its arrays (malloc); node indices stay valid until the next
 * call that mutates the tree (merge, add_leaf, stem, decode). Rev ids passed in are
 * copied. Functions that return pointers into the tree (stt_revtree_id) return
 * borrowed data valid until the next mutation or stt_revtree_free. */
#ifndef STT_REVTREE_H
#define STT_REVTREE_H
#include "src/common/buf.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STT_REVS_LIMIT_DEFAULT 1000
#define STT_REV_ID_MAX 255 /* longest rev id (after "N-") accepted */

/* A revision named by the client: "gen-id". Borrowed pointers. */
typedef struct {
    uint64_t gen;
    const char *id;
    size_t idlen;
} stt_rev_t;

enum {
    STT_REV_DELETED = 1,  /* this revision is a deletion (tombstone) */
    STT_REV_HAS_BODY = 2, /* a body is stored for it ("available" in revs_info) */
    STT_REV_WRITTEN = 4,  /* a revision was written for it once, even if its body was
                           * dropped since: CouchDB's value is not "missing" until a
                           * compaction (merge_path's ancestor-only rule reads it) */
    /* Bits 0x20-0x80 are private to revtree.c: marks merge_path leaves for the stem
     * that follows it (see stt_revtree_stem). Never encoded; test flags with &. */
};

typedef struct {
    uint64_t gen;
    int32_t parent; /* index of parent node, -1 for a root */
    uint32_t idoff; /* offset of the id in the tree's id pool */
    uint8_t idlen;
    uint8_t flags; /* STT_REV_* */
} stt_rev_node_t;

typedef struct {
    stt_rev_node_t *nodes;
    uint32_t n, cap;
    stt_buf_t ids; /* id pool, nodes point into it by offset */
} stt_revtree_t;

#define STT_REVTREE_INIT                                                                                               \
    {                                                                                                                  \
        NULL, 0, 0, STT_BUF_INIT                                                                                       \
    }

void stt_revtree_free(stt_revtree_t *t);
void stt_revtree_clear(stt_revtree_t *t);

/* Parses "N-id" (N a decimal integer >= 1, id 0..STT_REV_ID_MAX bytes without
 * '-'-prefix constraints, as CouchDB's couch_doc:parse_rev, which also refuses a
 * 32-character id that is not hex). 0 or STT_E_BAD_REV. */
int stt_rev_parse(const char *s, size_t len, stt_rev_t *out);
/* Appends "N-id" to b. */
void stt_rev_format(stt_buf_t *b, uint64_t gen, const char *id, size_t idlen);

static inline const char *stt_revtree_id(const stt_revtree_t *t, int i)
{
    return t->ids.base + t->nodes[i].idoff;
}
void stt_revtree_format(const stt_revtree_t *t, int i, stt_buf_t *b); /* "N-id" of node i */

/* Index of the node {gen,id}, or -1. */
int stt_revtree_find(const stt_revtree_t *t, uint64_t gen, const char *id, size_t idlen);
bool stt_revtree_is_leaf(const stt_revtree_t *t, int i);
/* Orders nodes a and b by (gen, id): <0, 0, >0 (CouchDB's ascending rev order). */
int stt_revtree_cmp(const stt_revtree_t *t, int a, int b);

/* Replicated write (new_edits=false). ids[0] is the leaf at generation gen, ids[k]
 * its ancestor at gen-k. Merges the path: nodes already present are matched by
 * {gen,id}; if no node of the path is present the path becomes a new root.
 * *added is true when the leaf was not in the tree before (the caller then stores
 * its body and sets STT_REV_HAS_BODY); when the leaf already exists, or the path
 * ends at an existing internal node, no leaf is added and *added is false (the path
 * may still extend a stemmed root further back; an existing rev without a body
 * takes the path's deleted flag, as CouchDB's value_pref).
 * *leaf receives the index of the leaf node (new or existing).
 * A write is merge_path then stt_revtree_stem: when the path joins separate trees,
 * that stem reproduces CouchDB's outcome from marks merge_path leaves.
 * Returns 0, or STT_E_BAD_REV when gen < nids (a path reaching below gen 1). */
int stt_revtree_merge_path(stt_revtree_t *t, uint64_t gen, const stt_rev_t *ids, size_t nids, bool deleted, int *leaf,
                           bool *added);

/* Interactive edit (new_edits=true), the checks only. prev is the client's _rev or
 * NULL. On success *parent is the node the new revision goes under (-1: a new root
 * at gen 1). CouchDB's rules, as recorded in couchdb-golden:
 *  - empty tree: prev must be NULL (else conflict);
 *  - prev NULL and the winner is live: conflict;
 *  - prev NULL and every leaf is deleted: the new rev extends the deleted winner;
 *  - prev given: it must be a leaf; the deleted winner of a deleted doc is a conflict,
 *    a deleted losing leaf under a live winner may be revived.
 * Returns 0 or STT_E_CONFLICT. */
int stt_revtree_check_edit(const stt_revtree_t *t, const stt_rev_t *prev, int *parent);
/* The same for an edit whose new revision is deleted or not: CouchDB refuses a
 * deletion without prev on a deleted doc (409) where a live write recreates it.
 * stt_revtree_check_edit is this with deleted = false. */
int stt_revtree_check_edit_deleted(const stt_revtree_t *t, const stt_rev_t *prev, bool deleted, int *parent);

/* Adds a leaf under parent (-1 for a root at gen 1) with the given id. Returns the
 * new node's index. The caller made sure it is not already present. */
int stt_revtree_add_leaf(stt_revtree_t *t, int parent, const char *id, size_t idlen, uint8_t flags);

/* Keeps at most limit revisions on every leaf's path to its root; nodes further
 * away from every leaf are removed (roots move up, branches may become separate
 * roots). Leaves are never removed. Returns the number of nodes removed (limit 0
 * acts as 1).
 * Right after a merge_path that joined separate trees it does what CouchDB's
 * couch_key_tree:stem then does (repair_tree): the joined trees' own leaves keep
 * only their own tree's history, a leaf the path grew from still counts as a leaf
 * (and is one again if its new child falls off), and a parent link stays only
 * inside some leaf's kept history. It clears merge_path's marks. */
size_t stt_revtree_stem(stt_revtree_t *t, uint32_t limit);

/* Leaves in winner order (winner first). out must hold t->n entries. Returns count. */
size_t stt_revtree_leaves(const stt_revtree_t *t, int *out);
/* The winning leaf, or -1 for an empty tree. */
int stt_revtree_winner(const stt_revtree_t *t);
/* Leaves that descend from node i (i itself when it is a leaf), in ascending
 * (gen, id) order. out must hold t->n entries. Returns count. */
size_t stt_revtree_leaves_under(const stt_revtree_t *t, int i, int *out);
/* Path from node i to its root: out[0]=i, out[1]=parent... at most max entries.
 * Returns count. */
size_t stt_revtree_path(const stt_revtree_t *t, int i, int *out, size_t max);

/* _revs_diff for one doc: for each of the nrevs revs, missing[k] is set true when
 * the rev is not in the tree. Returns the number missing. For possible_ancestors,
 * fills anc (capacity t->n) with every leaf whose gen is lower than the highest
 * gen among the missing revs, and sets *nanc. */
size_t stt_revtree_revs_diff(const stt_revtree_t *t, const stt_rev_t *revs, size_t nrevs, bool *missing, int *anc,
                             size_t *nanc);

/* Compact binary encoding (32-hex ids packed to 16 bytes). decode returns 0 or
 * STT_E_IO on a corrupt record, leaving t cleared. */
void stt_revtree_encode(const stt_revtree_t *t, stt_buf_t *out);
int stt_revtree_decode(stt_revtree_t *t, const void *data, size_t len);

/* Checks structural invariants (strict (gen, id) order, hence parents before
 * children, no duplicate {gen,id} and no cycles; valid indices and ids; gens =
 * parent+1; known flags). 0 or -1 with a message in err. */
int stt_revtree_check(const stt_revtree_t *t, char *err, size_t errlen);

#endif
