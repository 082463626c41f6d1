/* Document writes: one synced LevelDB batch per call.
 *
 * Under the database's write lock, each doc's record is loaded once into a batch
 * entry (so a batch may name the same doc several times), the edit is applied to
 * its rev tree, bodies of revisions that stopped being leaves move to 'O' keys
 * (kept until compaction), the tree is stemmed to revs_limit (dropping the kept
 * bodies of the revisions stemmed away), and at the end every changed doc gets its new
 * record, its new by-seq entry and the removal of its old one, all in the same
 * batch as the database's counters and the attachment reference counts. On a
 * failed write the in-memory counters are restored, so memory never runs ahead of
 * the disk. */
#include "store/store_int.h"
#include "src/common/stats.h"
#include <leveldb/c.h>
#include "src/common/codec.h"
#include "src/common/err.h"
#include <stdlib.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

/* ------------------------------------------------------------------ batch state */

typedef struct {
    uint64_t gen;
    char id[STT_REV_ID_MAX + 1];
    size_t idlen;
    const char *json;
    size_t jsonlen;
    stt_att_t *atts; /* malloc'd; strings borrow from the raw record or the input */
    size_t natts;
} body_t;

typedef struct {
    const char *id;
    size_t idlen;
    char *raw; /* the record as loaded (leveldb-owned), bodies may point into it */
    bool existed;
    uint64_t old_seq;
    int old_state; /* 0 none, 1 live, 2 deleted */
    stt_revtree_t tree;
    body_t *bodies;
    size_t nbodies, capbodies;
    bool dirty;
} entry_t;

typedef struct {
    unsigned char digest[STT_DIGEST_LEN];
    int64_t delta;
    const char *data; /* bytes to store if the attachment is new to the db */
    size_t datalen;
} attref_t;

/* A put or delete of a superseded body's 'O' key, in the order they were decided
 * (a body kept and stemmed away in the same batch is put, then deleted). */
typedef struct {
    stt_buf_t k, v; /* v unused by a delete */
    bool del;
    size_t jsonlen;
    unsigned char (*dg)[STT_DIGEST_LEN]; /* its attachments' digests */
    size_t ndg;
} oldop_t;

typedef struct {
    stt_db_t *db;
    entry_t *entries;
    size_t nentries, capentries; /* capentries: docs named in the group for this db */
    size_t *slots;               /* hash of entries by id: index+1, 0 empty */
    size_t nslots;
    attref_t *refs;
    size_t nrefs, caprefs;
    int64_t active_delta, old_delta;
    oldop_t *ops;
    size_t nops, capops;
    stt_rev_body_t *held; /* kept bodies read as stub bases, alive until the batch is written */
    size_t nheld;
    stt_buf_t *scratch; /* encoded attachment bytes, alive until the batch is written */
    size_t nscratch;
} batch_t;

static stt_buf_t *batch_scratch(batch_t *bt)
{
    bt->scratch = stt_xrealloc(bt->scratch, (bt->nscratch + 1) * sizeof(*bt->scratch));
    bt->scratch[bt->nscratch] = (stt_buf_t)STT_BUF_INIT;
    return &bt->scratch[bt->nscratch++];
}

static uint64_t hash_id(const char *s, size_t n)
{
    return XXH3_64bits(s, n);
}

static void free_body(body_t *b)
{
    free(b->atts);
    b->atts = NULL;
}

static int load_entry(batch_t *bt, entry_t *e)
{
    stt_db_t *db = bt->db;
    stt_buf_t k = STT_BUF_INIT;
    stt__key_doc(&k, db->id, e->id, e->idlen);
    char *lerr = NULL;
    size_t vlen = 0;
    char *v = leveldb_get(db->store->ldb, db->store->ropts, k.base, k.len, &vlen, &lerr);
    stt_buf_free(&k);
    if (lerr) return stt__ldb_error(db->store, lerr, "read", false);
    if (!v) return 0;
    stt_doc_t d;
    if (stt__doc_decode(v, vlen, &d) != 0) {
        leveldb_free(v);
        return STT_E_IO;
    }
    e->raw = v;
    e->existed = true;
    e->old_seq = d.seq;
    e->tree = d.tree; /* take the tree over */
    int w = stt_revtree_winner(&e->tree);
    e->old_state = w < 0 ? 0 : (e->tree.nodes[w].flags & STT_REV_DELETED) ? 2 : 1;
    for (uint32_t i = 0; i < e->tree.n; i++) {
        if (!(e->tree.nodes[i].flags & STT_REV_HAS_BODY)) continue;
        stt_rev_body_t rb;
        if (stt__body_at(&d, (int)i, &rb) != 0) continue;
        if (e->nbodies == e->capbodies) {
            e->capbodies = e->capbodies ? e->capbodies * 2 : 2;
            e->bodies = stt_xrealloc(e->bodies, e->capbodies * sizeof(*e->bodies));
        }
        body_t *b = &e->bodies[e->nbodies++];
        b->gen = e->tree.nodes[i].gen;
        b->idlen = e->tree.nodes[i].idlen;
        memcpy(b->id, stt_revtree_id(&e->tree, (int)i), b->idlen);
        b->json = rb.json;
        b->jsonlen = rb.jsonlen;
        b->atts = rb.atts;
        b->natts = rb.natts;
    }
    return 0;
}

static int get_entry(batch_t *bt, const char *id, size_t idlen, entry_t **out)
{
    size_t mask = bt->nslots - 1, i = hash_id(id, idlen) & mask;
    while (bt->slots[i]) {
        entry_t *e = &bt->entries[bt->slots[i] - 1];
        if (e->idlen == idlen && memcmp(e->id, id, idlen) == 0) {
            *out = e;
            return 0;
        }
        i = (i + 1) & mask;
    }
    entry_t *e = &bt->entries[bt->nentries];
    memset(e, 0, sizeof(*e));
    e->id = id;
    e->idlen = idlen;
    int rc = load_entry(bt, e);
    if (rc) return rc;
    bt->slots[i] = ++bt->nentries;
    *out = e;
    return 0;
}

static body_t *find_body(entry_t *e, uint64_t gen, const char *id, size_t idlen)
{
    for (size_t i = 0; i < e->nbodies; i++)
        if (e->bodies[i].gen == gen && e->bodies[i].idlen == idlen && memcmp(e->bodies[i].id, id, idlen) == 0)
            return &e->bodies[i];
    return NULL;
}

static attref_t *attref(batch_t *bt, const unsigned char *digest)
{
    for (size_t i = 0; i < bt->nrefs; i++)
        if (memcmp(bt->refs[i].digest, digest, STT_DIGEST_LEN) == 0) return &bt->refs[i];
    if (bt->nrefs == bt->caprefs) {
        bt->caprefs = bt->caprefs ? bt->caprefs * 2 : 8;
        bt->refs = stt_xrealloc(bt->refs, bt->caprefs * sizeof(*bt->refs));
    }
    attref_t *r = &bt->refs[bt->nrefs++];
    memset(r, 0, sizeof(*r));
    memcpy(r->digest, digest, STT_DIGEST_LEN);
    return r;
}

static void add_body(batch_t *bt, entry_t *e, body_t *nb)
{
    if (e->nbodies == e->capbodies) {
        e->capbodies = e->capbodies ? e->capbodies * 2 : 2;
        e->bodies = stt_xrealloc(e->bodies, e->capbodies * sizeof(*e->bodies));
    }
    e->bodies[e->nbodies++] = *nb;
    for (size_t i = 0; i < nb->natts; i++)
        attref(bt, nb->atts[i].digest)->delta++;
    bt->active_delta += (int64_t)nb->jsonlen;
}

static oldop_t *push_op(batch_t *bt)
{
    if (bt->nops == bt->capops) {
        bt->capops = bt->capops ? bt->capops * 2 : 4;
        bt->ops = stt_xrealloc(bt->ops, bt->capops * sizeof(*bt->ops));
    }
    oldop_t *op = &bt->ops[bt->nops++];
    memset(op, 0, sizeof(*op));
    return op;
}

/* A body that stopped being a leaf's: kept under its 'O' key until compaction,
 * with its attachment references; it no longer counts as active. */
static void keep_old_body(batch_t *bt, entry_t *e, body_t *b)
{
    oldop_t *op = push_op(bt);
    stt__key_old(&op->k, bt->db->id, e->id, e->idlen, b->gen, b->id, b->idlen);
    stt__old_body_value(b->atts, b->natts, b->json, b->jsonlen, &op->v);
    op->jsonlen = b->jsonlen;
    op->ndg = b->natts;
    op->dg = b->natts ? stt_xmalloc(b->natts * sizeof(*op->dg)) : NULL;
    for (size_t a = 0; a < b->natts; a++)
        memcpy(op->dg[a], b->atts[a].digest, STT_DIGEST_LEN);
    bt->active_delta -= (int64_t)b->jsonlen;
    bt->old_delta += (int64_t)b->jsonlen;
}

/* A kept body whose revision left the tree (stemmed): its key and references go. */
static int drop_old_body(batch_t *bt, entry_t *e, uint64_t gen, const char *id, size_t idlen)
{
    oldop_t *op = push_op(bt);
    op->del = true;
    stt__key_old(&op->k, bt->db->id, e->id, e->idlen, gen, id, idlen);
    for (size_t i = bt->nops - 1; i-- > 0;) {
        oldop_t *o = &bt->ops[i];
        if (o->k.len != op->k.len || memcmp(o->k.base, op->k.base, o->k.len) != 0) continue;
        if (o->del) return 0; /* already dropped */
        for (size_t a = 0; a < o->ndg; a++)
            attref(bt, o->dg[a])->delta--;
        bt->old_delta -= (int64_t)o->jsonlen;
        return 0;
    }
    char *lerr = NULL;
    size_t vlen;
    char *v = leveldb_get(bt->db->store->ldb, bt->db->store->ropts, op->k.base, op->k.len, &vlen, &lerr);
    if (lerr) {
        leveldb_free(lerr);
        return STT_E_IO;
    }
    if (!v) return 0;
    stt_rev_body_t b;
    if (stt__old_body_decode(v, vlen, &b) != 0) return STT_E_IO;
    for (size_t a = 0; a < b.natts; a++)
        attref(bt, b.atts[a].digest)->delta--;
    bt->old_delta -= (int64_t)b.jsonlen;
    stt_rev_body_free(&b);
    return 0;
}

/* A kept superseded body as a base for stubs (the replicator sends stubs against
 * the nearest ancestor it knows the server has: CouchDB still has it until a
 * compaction). Read from this batch's ops if it decided on the key, else the db. */
static const body_t *kept_base(batch_t *bt, entry_t *e, uint64_t gen, const char *id, size_t idlen, body_t *tmp)
{
    int node = stt_revtree_find(&e->tree, gen, id, idlen);
    if (node < 0 || !(e->tree.nodes[node].flags & STT_REV_HAS_BODY)) return NULL;
    stt_buf_t k = STT_BUF_INIT;
    stt__key_old(&k, bt->db->id, e->id, e->idlen, gen, id, idlen);
    char *v = NULL;
    size_t vlen = 0;
    bool decided = false;
    for (size_t i = bt->nops; i-- > 0 && !decided;) {
        const oldop_t *o = &bt->ops[i];
        if (o->k.len != k.len || memcmp(o->k.base, k.base, k.len) != 0) continue;
        decided = true;
        if (!o->del) {
            v = stt_xmalloc(o->v.len); /* leveldb_free is free() */
            memcpy(v, o->v.base, o->v.len);
            vlen = o->v.len;
        }
    }
    if (!decided) {
        char *lerr = NULL;
        v = leveldb_get(bt->db->store->ldb, bt->db->store->ropts, k.base, k.len, &vlen, &lerr);
        if (lerr) leveldb_free(lerr);
    }
    stt_buf_free(&k);
    stt_rev_body_t b;
    if (!v || stt__old_body_decode(v, vlen, &b) != 0) return NULL;
    bt->held = stt_xrealloc(bt->held, (bt->nheld + 1) * sizeof(*bt->held));
    bt->held[bt->nheld++] = b;
    memset(tmp, 0, sizeof(*tmp));
    tmp->atts = b.atts;
    tmp->natts = b.natts;
    return tmp;
}

/* Moves the bodies of revisions that are no longer leaves to their 'O' keys (the
 * node keeps STT_REV_HAS_BODY: readable until compaction, as in CouchDB), and
 * drops those of revisions no longer in the tree. */
static void drop_stale_bodies(batch_t *bt, entry_t *e)
{
    size_t j = 0;
    for (size_t i = 0; i < e->nbodies; i++) {
        body_t *b = &e->bodies[i];
        int node = stt_revtree_find(&e->tree, b->gen, b->id, b->idlen);
        if (node >= 0 && stt_revtree_is_leaf(&e->tree, node)) {
            e->bodies[j++] = *b;
            continue;
        }
        if (node >= 0) {
            keep_old_body(bt, e, b);
        } else {
            for (size_t a = 0; a < b->natts; a++)
                attref(bt, b->atts[a].digest)->delta--;
            bt->active_delta -= (int64_t)b->jsonlen;
        }
        free_body(b);
    }
    e->nbodies = j;
}

/* Stems the tree to revs_limit; kept bodies of the revisions it removes go too. */
static int stem_entry(batch_t *bt, entry_t *e)
{
    typedef struct {
        uint64_t gen;
        char id[STT_REV_ID_MAX + 1];
        size_t idlen;
    } kept_t;
    kept_t *kept = NULL;
    size_t nkept = 0;
    for (uint32_t i = 0; i < e->tree.n; i++) {
        const stt_rev_node_t *nd = &e->tree.nodes[i];
        if (!(nd->flags & STT_REV_HAS_BODY) || find_body(e, nd->gen, stt_revtree_id(&e->tree, (int)i), nd->idlen))
            continue;
        kept = stt_xrealloc(kept, (nkept + 1) * sizeof(*kept));
        kept[nkept].gen = nd->gen;
        kept[nkept].idlen = nd->idlen;
        memcpy(kept[nkept].id, stt_revtree_id(&e->tree, (int)i), nd->idlen);
        nkept++;
    }
    stt_revtree_stem(&e->tree, bt->db->revs_limit);
    int rc = 0;
    for (size_t i = 0; i < nkept && !rc; i++)
        if (stt_revtree_find(&e->tree, kept[i].gen, kept[i].id, kept[i].idlen) < 0)
            rc = drop_old_body(bt, e, kept[i].gen, kept[i].id, kept[i].idlen);
    free(kept);
    return rc;
}

/* Builds the attachment list of a new revision: inline data gets its digest and
 * revpos; stubs take the metadata of the same-named attachment of base (the parent
 * or nearest stored ancestor). */
static int resolve_atts(batch_t *bt, const stt_doc_write_t *w, const body_t *base, uint64_t gen, body_t *nb)
{
    nb->natts = w->natts;
    nb->atts = w->natts ? stt_xcalloc(w->natts, sizeof(stt_att_t)) : NULL;
    for (size_t i = 0; i < w->natts; i++) {
        const stt_att_in_t *in = &w->atts[i];
        stt_att_t *a = &nb->atts[i];
        *a = in->meta;
        if (in->stub) {
            const stt_att_t *found = NULL;
            for (size_t k = 0; base && k < base->natts; k++)
                if (base->atts[k].namelen == in->meta.namelen &&
                    memcmp(base->atts[k].name, in->meta.name, in->meta.namelen) == 0)
                    found = &base->atts[k];
            if (!found) {
                free(nb->atts);
                nb->atts = NULL;
                return STT_E_MISSING_STUB;
            }
            a->content_type = found->content_type;
            a->ctlen = found->ctlen;
            a->revpos = found->revpos;
            a->length = found->length;
            a->encoding = found->encoding;
            a->encoded_length = found->encoded_length;
            memcpy(a->digest, found->digest, STT_DIGEST_LEN);
        } else {
            const char *data = in->data;
            size_t len = in->datalen;
            a->length = in->datalen;
            a->encoding = STT_ATT_IDENTITY;
            if (stt_att_compressible(a->content_type, a->ctlen)) {
                /* stored as CouchDB stores it; the batch owns the encoded bytes */
                stt_buf_t *gz = batch_scratch(bt);
                stt_gzip(gz, in->data, in->datalen);
                data = gz->base;
                len = gz->len;
                a->encoding = STT_ATT_GZIP;
            }
            a->encoded_length = len;
            stt_md5(data, len, a->digest);
            if (!a->revpos || w->npath == 0) a->revpos = gen;
            attref_t *r = attref(bt, a->digest);
            r->data = data;
            r->datalen = len;
        }
    }
    return 0;
}

/* Rev id: XXH3-128 over (parent rev, deleted flag, body, attachment digests), so the
 * same edit made on two nodes gives the same rev. */
static void make_rev_id(const stt_revtree_t *t, int parent, bool deleted, const char *body, size_t bodylen,
                        const body_t *nb, char out[33])
{
    XXH3_state_t st;
    XXH3_128bits_reset(&st);
    if (parent >= 0) {
        stt_buf_t p = STT_BUF_INIT;
        stt_revtree_format(t, parent, &p);
        XXH3_128bits_update(&st, p.base, p.len);
        stt_buf_free(&p);
    }
    unsigned char d = deleted ? 1 : 0;
    XXH3_128bits_update(&st, &d, 1);
    XXH3_128bits_update(&st, body, bodylen);
    for (size_t i = 0; i < nb->natts; i++) {
        XXH3_128bits_update(&st, nb->atts[i].name, nb->atts[i].namelen);
        XXH3_128bits_update(&st, nb->atts[i].digest, STT_DIGEST_LEN);
    }
    XXH128_hash_t h = XXH3_128bits_digest(&st);
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, h);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[c.digest[i] >> 4];
        out[2 * i + 1] = hex[c.digest[i] & 15];
    }
    out[32] = '\0';
}

/* ------------------------------------------------------------------ one edit */

static int apply_interactive(batch_t *bt, entry_t *e, const stt_doc_write_t *w, stt_doc_result_t *res)
{
    int parent;
    int rc = stt_revtree_check_edit_deleted(&e->tree, w->has_prev ? &w->prev : NULL, w->deleted, &parent);
    if (rc) return rc;
    const body_t *base = NULL;
    uint64_t gen = 1;
    if (parent >= 0) {
        gen = e->tree.nodes[parent].gen + 1;
        base = find_body(e, e->tree.nodes[parent].gen, stt_revtree_id(&e->tree, parent), e->tree.nodes[parent].idlen);
    }
    body_t nb = {.gen = gen, .json = w->body, .jsonlen = w->bodylen};
    if ((rc = resolve_atts(bt, w, base, gen, &nb)) != 0) return rc;
    char id[33];
    make_rev_id(&e->tree, parent, w->deleted, w->body, w->bodylen, &nb, id);
    if (stt_revtree_find(&e->tree, gen, id, 32) >= 0) {
        free_body(&nb);
        return STT_E_CONFLICT;
    }
    memcpy(nb.id, id, 33);
    nb.idlen = 32;
    stt_revtree_add_leaf(&e->tree, parent, id, 32,
                         (uint8_t)(STT_REV_HAS_BODY | STT_REV_WRITTEN | (w->deleted ? STT_REV_DELETED : 0)));
    add_body(bt, e, &nb);
    drop_stale_bodies(bt, e);
    if ((rc = stem_entry(bt, e)) != 0) return rc;
    drop_stale_bodies(bt, e);
    e->dirty = true;
    stt_buf_t r = {res->rev, 0, sizeof(res->rev)};
    stt_rev_format(&r, gen, id, 32);
    return 0;
}

static bool existed_before(const stt_buf_t *enc, uint64_t gen, const char *id, size_t idlen)
{
    stt_revtree_t t = STT_REVTREE_INIT;
    bool found = stt_revtree_decode(&t, enc->base, enc->len) == 0 && stt_revtree_find(&t, gen, id, idlen) >= 0;
    stt_revtree_free(&t);
    return found;
}

static int apply_replicated(batch_t *bt, entry_t *e, const stt_doc_write_t *w)
{
    if (w->npath == 0 || w->gen < w->npath) return STT_E_BAD_REV;
    /* the tree may change without growing (an ancestor-only path updates a
     * node's deleted flag): compare its encodings */
    stt_buf_t before = STT_BUF_INIT;
    stt_revtree_encode(&e->tree, &before);
    body_t nb = {.gen = w->gen, .json = w->body, .jsonlen = w->bodylen};
    int known = stt_revtree_find(&e->tree, w->gen, w->path[0].id, w->path[0].idlen);
    /* CouchDB's value_pref: a rev the tree knows only as an ancestor (no value)
     * takes the value of a path that ends at it; a leaf in that state (a repair
     * stem can make one) gets this body */
    bool valueless = known >= 0 && !(e->tree.nodes[known].flags & (STT_REV_HAS_BODY | STT_REV_WRITTEN));
    bool store_body = known < 0 || valueless;
    /* A known leaf whose path now joins its (stemmed) fragment to an older tree:
     * CouchDB merges the path into that tree, so the leaf's value becomes this
     * write's (couchdb-golden random_018). Its root before, to compare after. */
    uint64_t root_gen = 0;
    stt_buf_t root_id = STT_BUF_INIT;
    if (known >= 0 && !store_body && stt_revtree_is_leaf(&e->tree, known) && w->npath > 1) {
        int *p = stt_xmalloc(e->tree.n * sizeof(int));
        size_t np = stt_revtree_path(&e->tree, known, p, e->tree.n);
        root_gen = e->tree.nodes[p[np - 1]].gen;
        stt_buf_append(&root_id, stt_revtree_id(&e->tree, p[np - 1]), e->tree.nodes[p[np - 1]].idlen);
        free(p);
        if (root_gen > w->gen - (w->npath - 1)) {
            /* the path reaches below the fragment: resolve stubs as for a new leaf */
            store_body = true;
        } else {
            root_gen = 0;
        }
    }
    if (store_body) {
        /* stubs resolve against the nearest ancestor whose body we still hold */
        const body_t *base = NULL;
        body_t tmp;
        for (size_t k = 1; k < w->npath && !base; k++) {
            base = find_body(e, w->gen - k, w->path[k].id, w->path[k].idlen);
            if (!base) base = kept_base(bt, e, w->gen - k, w->path[k].id, w->path[k].idlen, &tmp);
        }
        int rc = resolve_atts(bt, w, base, w->gen, &nb);
        if (rc) {
            stt_buf_free(&before);
            return rc;
        }
    }
    int leaf;
    bool added;
    int rc = stt_revtree_merge_path(&e->tree, w->gen, w->path, w->npath, w->deleted, &leaf, &added);
    if (rc) {
        free_body(&nb);
        stt_buf_free(&before);
        return rc;
    }
    if (!added && valueless) e->tree.nodes[leaf].flags |= STT_REV_WRITTEN;
    if (root_gen && !added) {
        /* keep the new body only when the leaf's root moved onto a rev that was
         * already in another tree (a join), not when its history merely grew back */
        int *p = stt_xmalloc(e->tree.n * sizeof(int));
        size_t np = stt_revtree_path(&e->tree, leaf, p, e->tree.n);
        int root = p[np - 1];
        bool joined =
            !(e->tree.nodes[root].gen == root_gen && e->tree.nodes[root].idlen == root_id.len &&
              memcmp(stt_revtree_id(&e->tree, root), root_id.base, root_id.len) == 0) &&
            existed_before(&before, e->tree.nodes[root].gen, stt_revtree_id(&e->tree, root), e->tree.nodes[root].idlen);
        free(p);
        body_t *old = joined ? find_body(e, w->gen, w->path[0].id, w->path[0].idlen) : NULL;
        if (old) {
            for (size_t a = 0; a < old->natts; a++)
                attref(bt, old->atts[a].digest)->delta--;
            bt->active_delta -= (int64_t)old->jsonlen;
            free_body(old);
            *old = e->bodies[--e->nbodies];
        } else {
            store_body = false;
        }
    }
    stt_buf_free(&root_id);
    /* a rev that was only an ancestor keeps the value too (kept as a superseded
     * body when it is no leaf: "available" until compaction, as in CouchDB) */
    if (added || store_body) {
        e->tree.nodes[leaf].flags |= STT_REV_HAS_BODY | STT_REV_WRITTEN;
        memcpy(nb.id, w->path[0].id, w->path[0].idlen);
        nb.idlen = w->path[0].idlen;
        add_body(bt, e, &nb);
    } else {
        free_body(&nb);
    }
    if ((rc = stem_entry(bt, e)) != 0) {
        stt_buf_free(&before);
        return rc;
    }
    stt_buf_t after = STT_BUF_INIT;
    stt_revtree_encode(&e->tree, &after);
    if (added || store_body || after.len != before.len || memcmp(after.base, before.base, before.len) != 0) {
        drop_stale_bodies(bt, e);
        e->dirty = true;
    }
    stt_buf_free(&before);
    stt_buf_free(&after);
    return 0;
}

/* ------------------------------------------------------------------ records */

static void encode_doc(const entry_t *e, uint64_t seq, stt_buf_t *v, stt_buf_t *summary)
{
    stt__rec_body_t sb[8];
    stt__rec_body_t *rb = e->nbodies <= 8 ? sb : stt_xmalloc(e->nbodies * sizeof(*rb));
    for (size_t i = 0; i < e->nbodies; i++) {
        const body_t *b = &e->bodies[i];
        rb[i] = (stt__rec_body_t){stt_revtree_find(&e->tree, b->gen, b->id, b->idlen), b->atts, b->natts, b->json,
                                  b->jsonlen};
    }
    stt__doc_encode(&e->tree, seq, e->id, e->idlen, rb, e->nbodies, v, summary);
    if (rb != sb) free(rb);
}

static int put_attrefs(batch_t *bt, leveldb_writebatch_t *wb)
{
    stt_buf_t k = STT_BUF_INIT, v = STT_BUF_INIT;
    int rc = 0;
    for (size_t i = 0; i < bt->nrefs && !rc; i++) {
        attref_t *r = &bt->refs[i];
        if (r->delta == 0) continue;
        uint64_t old;
        if ((rc = stt__att_refcount(bt->db, r->digest, &old)) != 0) break;
        int64_t now = (int64_t)old + r->delta;
        stt__key_att(&k, K_ATTREF, bt->db->id, r->digest);
        if (now <= 0) {
            leveldb_writebatch_delete(wb, k.base, k.len);
            stt__att_delete(bt->db->store, wb, bt->db->id, r->digest);
            continue;
        }
        stt_buf_reset(&v);
        stt_buf_append_varint(&v, (uint64_t)now);
        leveldb_writebatch_put(wb, k.base, k.len, v.base, v.len);
        if (old == 0) {
            if (!r->data) {
                rc = STT_E_MISSING_STUB; /* cannot happen: new refs come with data */
                break;
            }
            if (r->datalen > STT__ATT_STAGE_MIN)
                rc = stt__att_stage(bt->db->store, bt->db->id, r->digest, r->data, r->datalen);
            else
                stt__att_put(wb, bt->db->id, r->digest, r->data, r->datalen);
        }
    }
    stt_buf_free(&k);
    stt_buf_free(&v);
    return rc;
}

/* ------------------------------------------------------------------ entry points */

static int cmp_entry_id(const void *a, const void *b)
{
    const entry_t *x = *(entry_t *const *)a, *y = *(entry_t *const *)b;
    size_t m = x->idlen < y->idlen ? x->idlen : y->idlen;
    int c = memcmp(x->id, y->id, m);
    return c ? c : (x->idlen > y->idlen) - (x->idlen < y->idlen);
}

/* Writes one db's changed docs, counters and attachment refs into wb. Returns the
 * number of docs changed, or a negative error. Caller holds db->wlock. */
static int stage_db(batch_t *bt, leveldb_writebatch_t *wb)
{
    stt_db_t *db = bt->db;
    stt_buf_t k = STT_BUF_INIT, v = STT_BUF_INIT, sum = STT_BUF_INIT;
    int changed = 0, rc = 0;
    /* CouchDB's updater takes a batch's docs in id order, so their seqs follow
     * the ids, not the request (couchdb-golden changes_normal) */
    entry_t **order = stt_xmalloc((bt->nentries ? bt->nentries : 1) * sizeof(*order));
    size_t norder = 0;
    for (size_t i = 0; i < bt->nentries; i++)
        if (bt->entries[i].dirty) order[norder++] = &bt->entries[i];
    qsort(order, norder, sizeof(*order), cmp_entry_id);
    for (size_t i = 0; i < norder; i++) {
        entry_t *e = order[i];
        uint64_t seq = ++db->update_seq;
        changed++;
        if (e->existed) {
            stt__key_seq(&k, db->id, e->old_seq);
            leveldb_writebatch_delete(wb, k.base, k.len);
        }
        encode_doc(e, seq, &v, &sum);
        stt__key_doc(&k, db->id, e->id, e->idlen);
        leveldb_writebatch_put(wb, k.base, k.len, v.base, v.len);
        stt__key_seq(&k, db->id, seq);
        leveldb_writebatch_put(wb, k.base, k.len, sum.base, sum.len);
        int w = stt_revtree_winner(&e->tree);
        int state = (e->tree.nodes[w].flags & STT_REV_DELETED) ? 2 : 1;
        if (state != e->old_state) {
            if (e->old_state == 1) db->doc_count--;
            if (e->old_state == 2) db->doc_del_count--;
            if (state == 1)
                db->doc_count++;
            else
                db->doc_del_count++;
        }
    }
    free(order);
    for (size_t i = 0; i < bt->nops && changed; i++) {
        const oldop_t *op = &bt->ops[i];
        if (op->del)
            leveldb_writebatch_delete(wb, op->k.base, op->k.len);
        else
            leveldb_writebatch_put(wb, op->k.base, op->k.len, op->v.base, op->v.len);
    }
    if (changed) {
        db->active_size = (uint64_t)((int64_t)db->active_size + bt->active_delta);
        db->old_size = (uint64_t)((int64_t)db->old_size + bt->old_delta);
        if ((rc = put_attrefs(bt, wb)) == 0) stt__db_put_record(db, wb);
    }
    stt_buf_free(&k);
    stt_buf_free(&v);
    stt_buf_free(&sum);
    return rc ? rc : changed;
}

static void batch_free(batch_t *bt)
{
    for (size_t i = 0; i < bt->nentries; i++) {
        entry_t *e = &bt->entries[i];
        for (size_t b = 0; b < e->nbodies; b++)
            free_body(&e->bodies[b]);
        free(e->bodies);
        stt_revtree_free(&e->tree);
        if (e->raw) leveldb_free(e->raw);
    }
    free(bt->entries);
    free(bt->slots);
    free(bt->refs);
    for (size_t i = 0; i < bt->nops; i++) {
        stt_buf_free(&bt->ops[i].k);
        stt_buf_free(&bt->ops[i].v);
        free(bt->ops[i].dg);
    }
    free(bt->ops);
    for (size_t i = 0; i < bt->nheld; i++)
        stt_rev_body_free(&bt->held[i]);
    free(bt->held);
    for (size_t i = 0; i < bt->nscratch; i++)
        stt_buf_free(&bt->scratch[i]);
    free(bt->scratch);
}

typedef struct {
    batch_t bt;
    uint64_t saved[5]; /* update_seq, doc_count, doc_del_count, active_size, old_size */
    int changed;
    bool dead; /* deleted db: its jobs fail */
} group_db_t;

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const group_db_t *)a)->bt.db, y = (uintptr_t)((const group_db_t *)b)->bt.db;
    return (x > y) - (x < y);
}

int stt_doc_write_group(stt_write_job_t *jobs, size_t njobs)
{
    stt_store_t *st = njobs ? jobs[0].db->store : NULL;
    int rc0 = st ? stt__write_begin(st, false) : 0;
    if (rc0) {
        /* the disk is full (or LevelDB failed and could not be reopened yet) */
        for (size_t j = 0; j < njobs; j++)
            jobs[j].rc = rc0;
        return rc0;
    }
    if (st) stt__ldb_enter(st);
    /* one batch per distinct db, locked in address order (no lock-order cycles) */
    group_db_t *g = stt_xcalloc(njobs ? njobs : 1, sizeof(*g));
    size_t ng = 0;
    for (size_t j = 0; j < njobs; j++) {
        size_t k = 0;
        while (k < ng && g[k].bt.db != jobs[j].db)
            k++;
        if (k == ng) g[ng++].bt.db = jobs[j].db;
        g[k].bt.capentries += jobs[j].n;
    }
    qsort(g, ng, sizeof(*g), cmp_ptr);
    for (size_t k = 0; k < ng; k++) {
        batch_t *bt = &g[k].bt;
        bt->entries = stt_xcalloc(bt->capentries ? bt->capentries : 1, sizeof(*bt->entries));
        bt->nslots = 16;
        while (bt->nslots < bt->capentries * 2)
            bt->nslots *= 2;
        bt->slots = stt_xcalloc(bt->nslots, sizeof(*bt->slots));
        pthread_mutex_lock(&bt->db->wlock);
        stt_db_t *db = bt->db;
        g[k].saved[0] = db->update_seq, g[k].saved[1] = db->doc_count;
        g[k].saved[2] = db->doc_del_count, g[k].saved[3] = db->active_size, g[k].saved[4] = db->old_size;
        g[k].dead = db->deleted;
    }
    int rc = 0;
    for (size_t j = 0; j < njobs; j++) {
        stt_write_job_t *job = &jobs[j];
        group_db_t *gd = bsearch(&(group_db_t){.bt.db = job->db}, g, ng, sizeof(*g), cmp_ptr);
        job->rc = gd->dead ? STT_E_DB_NOT_FOUND : 0;
        for (size_t i = 0; i < job->n && !job->rc; i++) {
            entry_t *e;
            job->res[i].err = 0;
            job->res[i].rev[0] = '\0';
            if ((job->rc = get_entry(&gd->bt, job->docs[i].id, job->docs[i].idlen, &e)) != 0) break;
            job->res[i].err = job->new_edits ? apply_interactive(&gd->bt, e, &job->docs[i], &job->res[i])
                                             : apply_replicated(&gd->bt, e, &job->docs[i]);
        }
    }
    leveldb_writebatch_t *wb = leveldb_writebatch_create();
    size_t total = 0;
    for (size_t k = 0; k < ng && !rc; k++) {
        if (g[k].dead) continue;
        int n = stage_db(&g[k].bt, wb);
        if (n < 0)
            rc = n;
        else
            g[k].changed = n, total += (size_t)n;
    }
    if (!rc && total) {
        char *lerr = NULL;
        leveldb_write(g[0].bt.db->store->ldb, g[0].bt.db->store->wsync, wb, &lerr);
        stt_stats_inc(STT_ST_FSYNC_COUNT); /* one synced batch per group */
        if (lerr) rc = stt__ldb_error(st, lerr, "document write", true);
    }
    leveldb_writebatch_destroy(wb);
    for (size_t k = 0; k < ng; k++) {
        stt_db_t *db = g[k].bt.db;
        if (rc) {
            /* nothing reached the disk: memory must not run ahead of it */
            db->update_seq = g[k].saved[0], db->doc_count = g[k].saved[1];
            db->doc_del_count = g[k].saved[2], db->active_size = g[k].saved[3], db->old_size = g[k].saved[4];
        }
        pthread_mutex_unlock(&db->wlock);
    }
    if (st) stt__ldb_leave(st);
    if (rc)
        for (size_t j = 0; j < njobs; j++)
            if (!jobs[j].rc) jobs[j].rc = rc;
    for (size_t k = 0; k < ng; k++) {
        stt_db_t *db = g[k].bt.db;
        if (!rc && g[k].changed) {
            stt_stats_inc(STT_ST_DATABASE_WRITES);
            stt_stats_add(STT_ST_DOCUMENT_WRITES, (uint64_t)g[k].changed);
            if (db->store->hook) db->store->hook(db->store->hook_ctx, db, db->update_seq);
            stt__maybe_autocompact(db);
        }
        batch_free(&g[k].bt);
    }
    free(g);
    return rc;
}

int stt_doc_write(stt_db_t *db, const stt_doc_write_t *docs, size_t n, bool new_edits, stt_doc_result_t *res)
{
    stt_write_job_t job = {.db = db, .docs = docs, .n = n, .new_edits = new_edits, .res = res};
    int rc = stt_doc_write_group(&job, 1);
    return rc ? rc : job.rc;
}
