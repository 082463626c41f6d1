/* Query planning as CouchDB 3.4's mango_cursor / mango_idx: the selector is
 * normalized (mango_selector:normalize: implicit $eq and $and made explicit,
 * nested fields joined with dots), its top-level conditions give per-field
 * ranges ($eq, $gt, $gte, $lt, $lte, $beginsWith; $in, $or and the rest are
 * not ranges and are filtered in memory), and the usable indexes are ranked:
 *
 *   - a json index is usable when every column not in the sort (nor _id, _rev)
 *     is required by the selector (a top-level condition other than
 *     $exists: false, or one in every branch of an $or), and the sort is a
 *     prefix of its columns once leading columns fixed by $eq are skipped;
 *     a partial index only when use_index names it;
 *   - _all_docs is usable without a sort or with a sort on _id alone;
 *   - the indexes use_index names come first; then json indexes beat
 *     _all_docs; among json indexes the longest prefix of columns with
 *     ranges wins, then the fewest ranged fields left out, then ddoc and name.
 *
 * No usable index for a sort is CouchDB's 400 no_usable_index. The chosen
 * plan holds the key range the cursor scans; the selector still filters
 * every doc, so ranges may be loose (inclusive) but never too narrow. */
#include "mango/mango_int.h"
#include "src/common/err.h"
#include <string.h>

#define MAX_MARK "\"<MAX>\""

/* ------------------------------------------------------------------ normalizing */

typedef struct {
    stt_buf_t b;
    size_t n;
} conds_t;

static void cond_sep(conds_t *c)
{
    if (c->n++) stt_buf_appendc(&c->b, ',');
}

static void norm(stt_buf_t *out, const stt_json_t *sel, const char *prefix, size_t plen);

static void collect(conds_t *c, const stt_json_t *sel, const char *prefix, size_t plen)
{
    for (uint32_t i = 0; i < sel->len; i++) {
        const stt_json_member_t *m = &sel->u.members[i];
        const stt_json_t *v = &m->val;
        bool op = m->keylen && m->key[0] == '$';
        if (op && stt__str_is(m->key, m->keylen, "$and") && v->type == STT_JSON_ARRAY) {
            for (uint32_t k = 0; k < v->len; k++)
                if (v->u.items[k].type == STT_JSON_OBJECT) collect(c, &v->u.items[k], prefix, plen);
            continue;
        }
        cond_sep(c);
        if (op && plen == 0 && (stt__str_is(m->key, m->keylen, "$or") || stt__str_is(m->key, m->keylen, "$nor")) &&
            v->type == STT_JSON_ARRAY) {
            stt_buf_appendc(&c->b, '{');
            stt_json_write_str(&c->b, m->key, m->keylen);
            stt_buf_appends(&c->b, ":[");
            for (uint32_t k = 0; k < v->len; k++) {
                if (k) stt_buf_appendc(&c->b, ',');
                if (v->u.items[k].type == STT_JSON_OBJECT)
                    norm(&c->b, &v->u.items[k], NULL, 0);
                else
                    stt_json_write(&c->b, &v->u.items[k]);
            }
            stt_buf_appends(&c->b, "]}");
        } else if (op && plen == 0 && stt__str_is(m->key, m->keylen, "$not") && v->type == STT_JSON_OBJECT) {
            stt_buf_appends(&c->b, "{\"$not\":");
            norm(&c->b, v, NULL, 0);
            stt_buf_appendc(&c->b, '}');
        } else if (op) {
            stt_buf_appendc(&c->b, '{');
            if (plen) {
                stt_json_write_str(&c->b, prefix, plen);
                stt_buf_appends(&c->b, ":{");
            }
            stt_json_write_str(&c->b, m->key, m->keylen);
            stt_buf_appendc(&c->b, ':');
            stt_json_write(&c->b, v);
            stt_buf_appends(&c->b, plen ? "}}" : "}");
        } else {
            stt_buf_t name = STT_BUF_INIT;
            if (plen) {
                stt_buf_append(&name, prefix, plen);
                stt_buf_appendc(&name, '.');
            }
            stt_buf_append(&name, m->key, m->keylen);
            if (v->type == STT_JSON_OBJECT && v->len > 0) {
                c->n--;
                if (c->n) c->b.len--; /* the separator: the nested call adds its own */
                collect(c, v, name.base, name.len);
            } else {
                stt_buf_appendc(&c->b, '{');
                stt_json_write_str(&c->b, name.base, name.len);
                stt_buf_appends(&c->b, ":{\"$eq\":");
                stt_json_write(&c->b, v);
                stt_buf_appends(&c->b, "}}");
            }
            stt_buf_free(&name);
        }
    }
}

static void norm(stt_buf_t *out, const stt_json_t *sel, const char *prefix, size_t plen)
{
    conds_t c = {STT_BUF_INIT, 0};
    collect(&c, sel, prefix, plen);
    if (c.n == 0) {
        stt_buf_appends(out, "{}");
    } else if (c.n == 1) {
        stt_buf_append(out, c.b.base, c.b.len);
    } else {
        stt_buf_appends(out, "{\"$and\":[");
        stt_buf_append(out, c.b.base, c.b.len);
        stt_buf_appends(out, "]}");
    }
    stt_buf_free(&c.b);
}

void stt__selector_normalize(stt_buf_t *out, const stt_json_t *sel)
{
    norm(out, sel, NULL, 0);
}

/* ------------------------------------------------------------------ the selector's fields */

/* The top-level conditions of a normalized selector. */
static const stt_json_t *top_conds(const stt_json_t *n, uint32_t *count)
{
    if (n->len == 1 && stt__str_is(n->u.members[0].key, n->u.members[0].keylen, "$and") &&
        n->u.members[0].val.type == STT_JSON_ARRAY) {
        *count = n->u.members[0].val.len;
        return n->u.members[0].val.u.items;
    }
    *count = n->len ? 1 : 0;
    return n;
}

/* {field: {op: value}} with one operator: 1 and its parts, else 0. */
static int field_cond(const stt_json_t *c, const stt_json_member_t **f, const stt_json_member_t **op)
{
    if (c->type != STT_JSON_OBJECT || c->len != 1) return 0;
    *f = &c->u.members[0];
    if (!(*f)->keylen || (*f)->key[0] == '$') return 0;
    const stt_json_t *o = &(*f)->val;
    if (o->type != STT_JSON_OBJECT || o->len != 1) return 0;
    *op = &o->u.members[0];
    return 1;
}

/* mango_selector:has_required_fields for one field. */
static bool requires(const stt_json_t *c, const char *name, size_t len)
{
    if (c->type != STT_JSON_OBJECT || c->len != 1) return false;
    const stt_json_member_t *m = &c->u.members[0];
    if (stt__str_is(m->key, m->keylen, "$and") && m->val.type == STT_JSON_ARRAY) {
        for (uint32_t i = 0; i < m->val.len; i++)
            if (requires(&m->val.u.items[i], name, len)) return true;
        return false;
    }
    if (stt__str_is(m->key, m->keylen, "$or") && m->val.type == STT_JSON_ARRAY) {
        for (uint32_t i = 0; i < m->val.len; i++)
            if (!requires(&m->val.u.items[i], name, len)) return false;
        return m->val.len > 0;
    }
    if (m->keylen != len || memcmp(m->key, name, len) != 0) return false;
    const stt_json_t *o = &m->val;
    if (o->type == STT_JSON_OBJECT && o->len == 1 &&
        stt__str_is(o->u.members[0].key, o->u.members[0].keylen, "$exists") &&
        o->u.members[0].val.type == STT_JSON_FALSE)
        return false;
    return true;
}

typedef struct {
    const char *name;
    size_t len;
    stt__range_t r;
    bool eq;
} franges_t;

typedef struct {
    franges_t *v;
    size_t n;
    const char **other; /* unindexable field names */
    size_t *otherlen;
    size_t nother;
} fields_t;

static bool is_range_op(const stt_json_member_t *op)
{
    static const char *const ops[] = {"$eq", "$gt", "$gte", "$lt", "$lte"};
    for (size_t i = 0; i < 5; i++)
        if (stt__str_is(op->key, op->keylen, ops[i])) return true;
    return stt__str_is(op->key, op->keylen, "$beginsWith") && op->val.type == STT_JSON_STRING;
}

static franges_t *frange(fields_t *fs, const char *name, size_t len)
{
    for (size_t i = 0; i < fs->n; i++)
        if (fs->v[i].len == len && memcmp(fs->v[i].name, name, len) == 0) return &fs->v[i];
    return NULL;
}

static void add_other(fields_t *fs, const char *name, size_t len)
{
    for (size_t i = 0; i < fs->nother; i++)
        if (fs->otherlen[i] == len && memcmp(fs->other[i], name, len) == 0) return;
    fs->other[fs->nother] = name;
    fs->otherlen[fs->nother++] = len;
}

static size_t count_fields(const stt_json_t *v)
{
    size_t n = 0;
    if (v->type == STT_JSON_OBJECT)
        for (uint32_t i = 0; i < v->len; i++)
            n += 1 + count_fields(&v->u.members[i].val);
    else if (v->type == STT_JSON_ARRAY)
        for (uint32_t i = 0; i < v->len; i++)
            n += count_fields(&v->u.items[i]);
    return n;
}

/* The fields named inside $or, $nor, $not: not ranges. */
static void other_fields(fields_t *fs, const stt_json_t *c)
{
    if (c->type == STT_JSON_ARRAY) {
        for (uint32_t i = 0; i < c->len; i++)
            other_fields(fs, &c->u.items[i]);
        return;
    }
    if (c->type != STT_JSON_OBJECT) return;
    for (uint32_t i = 0; i < c->len; i++) {
        const stt_json_member_t *m = &c->u.members[i];
        if (m->keylen && m->key[0] == '$')
            other_fields(fs, &m->val);
        else if (!frange(fs, m->key, m->keylen))
            add_other(fs, m->key, m->keylen);
    }
}

static void field_ranges(stt_arena_t *a, const stt_json_t *n, fields_t *fs)
{
    uint32_t nc;
    const stt_json_t *c = top_conds(n, &nc);
    size_t cap = count_fields(n) + 1;
    fs->v = stt_arena_alloc(a, cap * sizeof(*fs->v));
    fs->other = stt_arena_alloc(a, cap * sizeof(*fs->other));
    fs->otherlen = stt_arena_alloc(a, cap * sizeof(*fs->otherlen));
    fs->n = fs->nother = 0;
    for (uint32_t i = 0; i < nc; i++) {
        const stt_json_member_t *f, *op;
        if (!field_cond(&c[i], &f, &op) || !is_range_op(op)) continue;
        franges_t *r = frange(fs, f->key, f->keylen);
        if (!r) {
            r = &fs->v[fs->n++];
            memset(r, 0, sizeof(*r));
            r->name = f->key, r->len = f->keylen;
        }
        const stt_json_t *lo = NULL, *hi = NULL;
        bool strict = false;
        if (stt__str_is(op->key, op->keylen, "$eq")) {
            lo = hi = &op->val;
            r->eq = true;
        } else if (stt__str_is(op->key, op->keylen, "$gt") || stt__str_is(op->key, op->keylen, "$gte")) {
            lo = &op->val;
        } else if (stt__str_is(op->key, op->keylen, "$lt") || stt__str_is(op->key, op->keylen, "$lte")) {
            hi = &op->val;
            strict = op->key[3] == '\0';
        } else { /* $beginsWith: [prefix, prefix U+10FFFF] */
            lo = &op->val;
            stt_json_t *h = stt_arena_alloc(a, sizeof(*h));
            char *s = stt_arena_alloc(a, op->val.len + 5);
            memcpy(s, op->val.u.s, op->val.len);
            memcpy(s + op->val.len, "\xf4\x8f\xbf\xbf", 5);
            *h = op->val;
            h->u.s = s;
            h->len = op->val.len + 4;
            hi = h;
        }
        if (lo && (!r->r.lo || stt_json_collate(lo, r->r.lo) > 0)) r->r.lo = lo;
        if (hi && (!r->r.hi || stt_json_collate(hi, r->r.hi) < 0 || (strict && stt_json_collate(hi, r->r.hi) == 0))) {
            r->r.hi = hi;
            r->r.hi_strict = strict;
        }
    }
    for (uint32_t i = 0; i < nc; i++)
        other_fields(fs, &c[i]);
}

/* ------------------------------------------------------------------ usability */

typedef enum { R_NONE, R_FIELD_MISMATCH, R_PARTIAL } why_t;

typedef struct {
    stt__index_t *ix; /* NULL: _all_docs */
    bool usable, specified;
    why_t why;
    uint32_t prefix, diff;
} cand_t;

static bool is_id_or_rev(const stt__field_t *f)
{
    return stt__str_is(f->name, f->namelen, "_id") || stt__str_is(f->name, f->namelen, "_rev");
}

static bool in_sort(const stt__query_t *q, const stt__field_t *f)
{
    for (uint32_t i = 0; i < q->nsort; i++)
        if (q->sort[i].namelen == f->namelen && memcmp(q->sort[i].name, f->name, f->namelen) == 0) return true;
    return false;
}

static bool can_use_sort(const stt__query_t *q, const stt__index_t *ix, const fields_t *fs)
{
    if (q->nsort == 0) return true;
    for (uint32_t start = 0; start < ix->ncols; start++) {
        bool prefix = q->nsort <= ix->ncols - start;
        for (uint32_t i = 0; prefix && i < q->nsort; i++)
            prefix = q->sort[i].namelen == ix->cols[start + i].namelen &&
                     memcmp(q->sort[i].name, ix->cols[start + i].name, q->sort[i].namelen) == 0;
        if (prefix) return true;
        const franges_t *r = frange((fields_t *)fs, ix->cols[start].name, ix->cols[start].namelen);
        if (!r || !r->eq) return false; /* only a column fixed by $eq may be skipped */
    }
    return false;
}

/* use_index's design doc name without its "_design/" (mango_cursor adds the
 * prefix when it is missing). */
static void use_index_ddoc(const stt__query_t *q, const char **s, int *len)
{
    const stt_json_t *d = &q->use_index.u.items[0];
    bool prefixed = d->len >= 8 && memcmp(d->u.s, "_design/", 8) == 0;
    *s = d->u.s + (prefixed ? 8 : 0);
    *len = (int)d->len - (prefixed ? 8 : 0);
}

static bool use_index_names(const stt__query_t *q, const stt__index_t *ix)
{
    const stt_json_t *u = &q->use_index;
    if (u->len == 0 || !ix) return false;
    const char *d;
    int dlen;
    use_index_ddoc(q, &d, &dlen);
    if (!(ix->ddoclen == (size_t)dlen + 8 && memcmp(ix->ddoc + 8, d, (size_t)dlen) == 0)) return false;
    return u->len == 1 || (ix->namelen == u->u.items[1].len && memcmp(ix->name, u->u.items[1].u.s, ix->namelen) == 0);
}

static void analyse(const stt__query_t *q, const stt_json_t *n, const fields_t *fs, cand_t *c)
{
    c->specified = use_index_names(q, c->ix);
    if (!c->ix) {
        c->usable = q->nsort == 0 || (q->nsort == 1 && stt__str_is(q->sort[0].name, q->sort[0].namelen, "_id"));
        c->why = c->usable ? R_NONE : R_FIELD_MISMATCH;
        return;
    }
    if (c->ix->partial && !c->specified) {
        c->why = R_PARTIAL;
        return;
    }
    bool ok = true;
    for (uint32_t i = 0; ok && i < c->ix->ncols; i++) {
        const stt__field_t *col = &c->ix->cols[i];
        if (in_sort(q, col) || is_id_or_rev(col)) continue;
        ok = requires(n, col->name, col->namelen);
    }
    c->usable = ok && can_use_sort(q, c->ix, fs);
    c->why = c->usable ? R_NONE : R_FIELD_MISMATCH;
    uint32_t p = 0;
    while (p < c->ix->ncols && frange((fields_t *)fs, c->ix->cols[p].name, c->ix->cols[p].namelen))
        p++;
    c->prefix = p;
    c->diff = (uint32_t)fs->n - p;
}

static int bytes_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c ? c : (alen > blen) - (alen < blen);
}

/* <0 when a is the better choice (mango_cursor_view:choose_best_index). */
static int better(const cand_t *a, const cand_t *b)
{
    if (!a->ix || !b->ix) return (a->ix == NULL) - (b->ix == NULL);
    if (a->prefix != b->prefix) return a->prefix > b->prefix ? -1 : 1;
    if (a->diff != b->diff) return a->diff < b->diff ? -1 : 1;
    int c = bytes_cmp(a->ix->ddoc, a->ix->ddoclen, b->ix->ddoc, b->ix->ddoclen);
    return c ? c : bytes_cmp(a->ix->name, a->ix->namelen, b->ix->name, b->ix->namelen);
}

static bool in_index(const stt__index_t *ix, const char *name, size_t len)
{
    if (stt__str_is(name, len, "_id")) return true;
    for (uint32_t k = 0; k < ix->ncols; k++)
        if (ix->cols[k].namelen == len && memcmp(ix->cols[k].name, name, len) == 0) return true;
    return false;
}

/* The index holds every field asked for and every field the selector reads:
 * the docs can be made from its rows without being read. */
static bool covering(const stt__query_t *q, const fields_t *fs, const stt__index_t *ix)
{
    if (!ix || q->nfields == 0) return false;
    for (uint32_t i = 0; i < q->nfields; i++)
        if (!in_index(ix, q->fields[i].name, q->fields[i].namelen)) return false;
    for (size_t i = 0; i < fs->n; i++)
        if (!in_index(ix, fs->v[i].name, fs->v[i].len)) return false;
    for (size_t i = 0; i < fs->nother; i++)
        if (!in_index(ix, fs->other[i], fs->otherlen[i])) return false;
    return true;
}

/* ------------------------------------------------------------------ selector feeds */

static bool is_stub_field(const stt__field_t *f)
{
    return is_id_or_rev(f) || stt__str_is(f->name, f->namelen, "_deleted");
}

bool stt__index_holds(stt_arena_t *a, const stt_json_t *norm, const stt__index_t *ix)
{
    bool real = false; /* a field a deleted doc's stub never has */
    for (uint32_t i = 0; i < ix->ncols; i++) {
        const stt__field_t *col = &ix->cols[i];
        if (is_id_or_rev(col)) continue;
        if (!requires(norm, col->name, col->namelen)) return false;
        real |= !is_stub_field(col);
    }
    if (!real) return false;
    if (!ix->partial) return true;
    const stt_json_t *pfs = stt_json_get(ix->map, "partial_filter_selector");
    stt_buf_t b = STT_BUF_INIT;
    stt__selector_normalize(&b, pfs);
    stt_json_t pn;
    int rc = stt_json_parse(a, b.base, b.len, &pn, NULL, 0);
    stt_buf_free(&b);
    if (rc) return false;
    uint32_t np, ns;
    const stt_json_t *pc = top_conds(&pn, &np), *sc = top_conds(norm, &ns);
    for (uint32_t i = 0; i < np; i++) {
        bool found = false;
        for (uint32_t k = 0; k < ns && !found; k++)
            found = stt_json_equal(&pc[i], &sc[k]);
        if (!found) return false;
    }
    return true;
}

/* ------------------------------------------------------------------ the plan */

void stt__plan_free(stt__plan_t *p)
{
    stt_buf_free(&p->warning);
    stt_buf_free(&p->candidates);
    stt_buf_free(&p->hints);
}

static void write_names(stt_buf_t *b, const char **names, const size_t *lens, size_t n, bool reverse)
{
    stt_buf_appendc(b, '[');
    for (size_t i = 0; i < n; i++) {
        size_t k = reverse ? n - 1 - i : i;
        if (i) stt_buf_appendc(b, ',');
        stt_json_write_str(b, names[k], lens[k]);
    }
    stt_buf_appendc(b, ']');
}

static void hints(stt__plan_t *p, const fields_t *fs)
{
    const char *names[fs->n + 1];
    size_t lens[fs->n + 1];
    for (size_t i = 0; i < fs->n; i++)
        names[i] = fs->v[i].name, lens[i] = fs->v[i].len;
    stt_buf_appends(&p->hints, "[{\"type\":\"json\",\"indexable_fields\":");
    write_names(&p->hints, names, lens, fs->n, true);
    stt_buf_appends(&p->hints, ",\"unindexable_fields\":");
    write_names(&p->hints, fs->other, fs->otherlen, fs->nother, true);
    stt_buf_appends(&p->hints, "}]");
}

static const char *reason_vs(const cand_t *c, const cand_t *chosen)
{
    if (!c->ix) return "unfavored_type";
    if (chosen->ix && c->prefix < chosen->prefix) return "less_overlap";
    if (chosen->ix && c->diff > chosen->diff) return "too_many_fields";
    return "alphabetically_comes_after";
}

/* explain's index_candidates: every index but the chosen one, last listed
 * first, ranked as mango_idx's trace ranks them. */
static void candidates(stt__plan_t *p, const stt__query_t *q, const fields_t *fs, cand_t *c, size_t n,
                       const cand_t *chosen, bool by_user)
{
    uint32_t rank[n + 1], nusable = 0;
    /* the usable ones, best first */
    for (size_t i = 0; i < n; i++)
        rank[i] = 0;
    for (;;) {
        size_t best = n;
        for (size_t i = 0; i < n; i++)
            if (&c[i] != chosen && c[i].usable && !rank[i] && (best == n || better(&c[i], &c[best]) < 0)) best = i;
        if (best == n) break;
        rank[best] = by_user ? 1 : ++nusable;
    }
    if (by_user) nusable = 1;
    for (size_t k = n; k-- > 0;) {
        const cand_t *x = &c[k];
        if (x == chosen) continue;
        if (p->candidates.len) stt_buf_appendc(&p->candidates, ',');
        stt_buf_appends(&p->candidates, "{\"index\":");
        stt__index_json(&p->candidates, x->ix);
        const char *why = x->usable             ? (by_user ? "excluded_by_user" : reason_vs(x, chosen))
                          : x->why == R_PARTIAL ? "is_partial"
                                                : "field_mismatch";
        uint32_t r = x->usable ? rank[k] : nusable + (x->why == R_PARTIAL ? 2 : 1);
        stt_buf_appendf(&p->candidates, ",\"analysis\":{\"usable\":%s,\"reasons\":[{\"name\":\"%s\"}],\"ranking\":%u,",
                        x->usable ? "true" : "false", why, r);
        stt_buf_appends(&p->candidates, x->ix
                                            ? (covering(q, fs, x->ix) ? "\"covering\":true}}" : "\"covering\":false}}")
                                            : "\"covering\":null}}");
    }
}

int stt__plan(stt_db_t *db, stt_arena_t *a, const stt__query_t *q, stt__plan_t *p, stt_mango_err_t *err)
{
    memset(p, 0, sizeof(*p));
    stt__index_t *ix = NULL;
    size_t nix = 0;
    int rc = stt__indexes_list(db, a, &ix, &nix);
    return rc ? rc : stt__plan_on(a, q, ix, nix, p, err);
}

int stt__plan_on(stt_arena_t *a, const stt__query_t *q, stt__index_t *ix, size_t nix, stt__plan_t *p,
                 stt_mango_err_t *err)
{
    memset(p, 0, sizeof(*p));
    stt_buf_t nb = STT_BUF_INIT;
    stt__selector_normalize(&nb, q->selector_json);
    int rc = stt_json_parse(a, nb.base, nb.len, &p->norm, NULL, 0);
    stt_buf_free(&nb);
    if (rc) return STT_E_INTERNAL;
    fields_t fs;
    field_ranges(a, &p->norm, &fs);
    hints(p, &fs);

    /* candidates in listing order: _all_docs, then by ddoc and name */
    size_t n = nix + 1;
    cand_t *c = stt_arena_alloc(a, n * sizeof(*c));
    memset(c, 0, n * sizeof(*c));
    for (size_t i = 1; i < n; i++)
        c[i].ix = &ix[i - 1];
    for (size_t i = 0; i < n; i++)
        analyse(q, &p->norm, &fs, &c[i]);
    const cand_t *chosen = NULL;
    bool by_user = false;
    for (size_t i = 1; i < n; i++)
        if (c[i].usable && c[i].specified && (!chosen || better(&c[i], chosen) < 0)) chosen = &c[i];
    by_user = chosen != NULL;
    if (q->use_index.len && !chosen) {
        if (!q->allow_fallback)
            return stt__merr(err, 400, "no_usable_index",
                             "The index specified with \"use_index\" is not usable for the query.");
        const char *d;
        int dlen;
        use_index_ddoc(q, &d, &dlen);
        if (q->use_index.len == 1)
            stt_buf_appendf(&p->warning,
                            "_design/%.*s was not used because it does not contain a valid index for this query.", dlen,
                            d);
        else
            stt_buf_appendf(&p->warning,
                            "_design/%.*s, %.*s was not used because it is not a valid index for this query.", dlen, d,
                            (int)q->use_index.u.items[1].len, q->use_index.u.items[1].u.s);
    }
    for (size_t i = 1; i < n && !by_user; i++)
        if (c[i].usable && (!chosen || better(&c[i], chosen) < 0)) chosen = &c[i];
    if (!chosen && c[0].usable) chosen = &c[0];
    if (!chosen)
        return stt__merr(err, 400, "no_usable_index",
                         "No index exists for this sort, try indexing by the sort fields.");
    candidates(p, q, &fs, c, n, chosen, by_user);
    p->ix = chosen->ix;
    p->desc = q->desc;
    p->covering = covering(q, &fs, p->ix);
    if (p->ix) {
        p->ranges = stt_arena_alloc(a, (p->ix->ncols + 1) * sizeof(*p->ranges));
        for (uint32_t i = 0; i < chosen->prefix; i++)
            p->ranges[i] = frange(&fs, p->ix->cols[i].name, p->ix->cols[i].namelen)->r;
        p->nranges = chosen->prefix;
    } else {
        const franges_t *r = frange(&fs, "_id", 3);
        if (r) p->id_lo = r->r.lo, p->id_hi = r->r.hi;
    }
    return 0;
}

/* ------------------------------------------------------------------ key ranges */

void stt__plan_keys(const stt__plan_t *p, stt_buf_t *start, stt_buf_t *end)
{
    if (!p->ix) {
        if (p->id_lo)
            stt_json_write(start, p->id_lo);
        else
            stt_buf_appends(start, "null");
        if (p->id_hi)
            stt_json_write(end, p->id_hi);
        else
            stt_buf_appends(end, MAX_MARK);
        return;
    }
    stt_buf_appendc(start, '[');
    stt_buf_appendc(end, '[');
    bool maxed = false, strict = false;
    for (uint32_t i = 0; i < p->nranges; i++) {
        const stt__range_t *r = &p->ranges[i];
        if (i) stt_buf_appendc(start, ',');
        if (r->lo)
            stt_json_write(start, r->lo);
        else
            stt_buf_appends(start, "null");
        if (maxed || strict) continue;
        if (i) stt_buf_appendc(end, ',');
        if (r->hi) {
            stt_json_write(end, r->hi);
            strict = r->hi_strict;
        } else {
            stt_buf_appends(end, MAX_MARK);
            maxed = true;
        }
    }
    if (!maxed && !strict) stt_buf_appends(end, p->nranges ? "," MAX_MARK : MAX_MARK);
    stt_buf_appendc(start, ']');
    stt_buf_appendc(end, ']');
}
