/* Rev trees on random histories: each 4-byte step of the input is one operation
 * (replicated path merge + stem, interactive edit, stem, winner/leaves, encode/decode),
 * and stt_revtree_check runs after every one. Rev ids come from a small alphabet so that
 * paths meet, branch and join. */
#include "store/revtree.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const ids[] = {
    "a", "b", "c", "d", "e", "f", "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"};

static void check(const stt_revtree_t *t, const char *what)
{
    char err[256];
    if (stt_revtree_check(t, err, sizeof(err)) != 0) {
        fprintf(stderr, "invariant broken after %s: %s\n", what, err);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    stt_revtree_t t = STT_REVTREE_INIT;
    for (size_t i = 0; i + 4 <= size && t.n < 4000; i += 4) {
        unsigned op = data[i] & 7, a = data[i + 1], b = data[i + 2], c = data[i + 3];
        switch (op) {
        case 0:
        case 1: { /* new_edits=false: a path of (b % 12) + 1 revs ending at gen (a % 20) + 1 */
            stt_rev_t path[12];
            size_t n = (size_t)(b % 12) + 1;
            uint64_t gen = (uint64_t)(a % 20) + 1;
            for (size_t k = 0; k < n; k++) {
                const char *id = ids[(c >> (k % 3)) & 7];
                path[k] = (stt_rev_t){gen - k, id, strlen(id)};
            }
            int leaf;
            bool added;
            if (stt_revtree_merge_path(&t, gen, path, n, op == 1, &leaf, &added) == 0) {
                if (leaf < 0 || (uint32_t)leaf >= t.n) abort();
                if (added) t.nodes[leaf].flags |= STT_REV_HAS_BODY | STT_REV_WRITTEN;
                check(&t, "merge_path");
                stt_revtree_stem(&t, (uint32_t)(b % 7) + 1);
                check(&t, "stem after merge");
            }
            break;
        }
        case 2:
        case 3: { /* new_edits=true on the winner or on any node */
            int parent;
            int w = stt_revtree_winner(&t);
            int target = t.n ? (op == 2 ? w : (int)(a % t.n)) : -1;
            stt_rev_t prev;
            const stt_rev_t *pp = NULL;
            if (target >= 0 && !(c & 1)) {
                prev = (stt_rev_t){t.nodes[target].gen, stt_revtree_id(&t, target), t.nodes[target].idlen};
                pp = &prev;
            }
            if (stt_revtree_check_edit_deleted(&t, pp, b & 1, &parent) == 0) {
                char id[8];
                int n = snprintf(id, sizeof(id), "n%u", (unsigned)t.n);
                uint64_t gen = parent < 0 ? 1 : t.nodes[parent].gen + 1;
                if (stt_revtree_find(&t, gen, id, (size_t)n) < 0) {
                    stt_revtree_add_leaf(&t, parent, id, (size_t)n,
                                         STT_REV_HAS_BODY | STT_REV_WRITTEN | ((b & 1) ? STT_REV_DELETED : 0));
                    check(&t, "add_leaf");
                }
            }
            break;
        }
        case 4:
            stt_revtree_stem(&t, (uint32_t)(a % 9));
            check(&t, "stem");
            break;
        case 5: { /* winner first among the leaves, every leaf reachable */
            int *out = malloc((t.n ? t.n : 1) * sizeof(int));
            size_t n = stt_revtree_leaves(&t, out);
            int w = stt_revtree_winner(&t);
            if (t.n && (n == 0 || out[0] != w)) abort();
            for (size_t k = 0; k < n; k++)
                if (!stt_revtree_is_leaf(&t, out[k])) abort();
            free(out);
            break;
        }
        default: { /* the stored form round-trips */
            stt_buf_t e1 = STT_BUF_INIT, e2 = STT_BUF_INIT;
            stt_revtree_encode(&t, &e1);
            stt_revtree_t u = STT_REVTREE_INIT;
            if (stt_revtree_decode(&u, e1.base, e1.len) != 0) abort();
            check(&u, "decode");
            stt_revtree_encode(&u, &e2);
            if (e1.len != e2.len || memcmp(e1.base, e2.base, e1.len) != 0) abort();
            /* and a corrupted copy is refused or decodes to a valid tree */
            if (e1.len) {
                e1.base[a % e1.len] ^= (char)(b | 1);
                if (stt_revtree_decode(&u, e1.base, e1.len) == 0) check(&u, "decode of a corrupted record");
            }
            stt_revtree_free(&u);
            stt_buf_free(&e1);
            stt_buf_free(&e2);
            break;
        }
        }
    }
    stt_revtree_free(&t);
    return 0;
}
