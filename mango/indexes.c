/* Json index definitions (_index) stored where and as CouchDB stores them: a
 * view in a design doc with "language": "query" ({"map": {"fields": {...},
 * "partial_filter_selector": {...}}, "reduce": "_count", "options": {"def":
 * ...}}), so they replicate and read back like CouchDB's, and the index engine
 * builds them (index/native.c maps such views). Design docs are written
 * synchronously through the store, read-modify-write with a retry on
 * conflict. */
#include "mango/mango_int.h"
#include "replication/replication.h"
#include "src/common/codec.h"
#include "src/common/err.h"
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ design docs */
/* The current winner of a design doc, parsed into a. *found false (and
 * out untouched) when it does not exist or is deleted. 0 or a store error. */
static int ddoc_load(stt_db_t *db, stt_arena_t *a, const char *id, size_t idlen, stt_json_t *out, bool *found)
{
    stt_reader_t *rd;
    int rc = stt_reader_open(db, &rd);
    if (rc) return rc;
    *found = false;
    stt_doc_t d;
    rc = stt_doc_get(rd, id, idlen, &d);
    if (rc == STT_E_NOT_FOUND) {
        stt_reader_close(rd);
        return 0;
    }
    if (rc) {
        stt_reader_close(rd);
        return rc;
    }
    int node;
    if (stt_doc_select(&d, NULL, &node) == 0) {
        stt_buf_t b = STT_BUF_INIT;
        stt_render_opts_t o = {0};
        rc = stt_doc_render(rd, &d, node, &o, &b);
        if (rc == 0) rc = stt_json_parse(a, b.base, b.len, out, NULL, 0);
        if (rc == 0) *found = out->type == STT_JSON_OBJECT;
        stt_buf_free(&b);
    }
    stt_doc_free(&d);
    stt_reader_close(rd);
    return rc;
}

/* Writes doc, a full JSON doc text (with _id, and _rev when it exists). 0,
 * STT_E_CONFLICT, or the parse/store error with *reason. */
static int ddoc_write(stt_db_t *db, stt_arena_t *a, const stt_buf_t *doc, const char **reason)
{
    stt_json_t obj;
    *reason = NULL;
    if (stt_json_parse(a, doc->base, doc->len, &obj, NULL, 0) != 0) return STT_E_INTERNAL;
    stt_doc_parse_opts_t po = {.new_edits = true};
    stt_doc_write_t w;
    int rc = stt_doc_parse(a, &obj, &po, &w, reason);
    if (rc) return rc;
    stt_doc_result_t res;
    rc = stt_doc_write(db, &w, 1, true, &res);
    return rc ? rc : res.err;
}

typedef stt__index_t index_t;
typedef stt__field_t field_t;

static bool is_query_ddoc(const stt_json_t *doc)
{
    const stt_json_t *lang = stt_json_get(doc, "language");
    return stt_json_is_str(lang) && stt__str_is(lang->u.s, lang->len, "query");
}

/* A view that CouchDB reads as a json index: a "map" object with "fields". */
static const stt_json_t *index_map(const stt_json_t *view)
{
    if (view->type != STT_JSON_OBJECT) return NULL;
    const stt_json_t *map = stt_json_get(view, "map");
    if (!map || map->type != STT_JSON_OBJECT) return NULL;
    const stt_json_t *f = stt_json_get(map, "fields");
    return f && (f->type == STT_JSON_OBJECT || f->type == STT_JSON_ARRAY) ? map : NULL;
}

/* mango_idx_view:to_json: fields as a list of {"field": "dir"}, an empty
 * partial_filter_selector left out. */
void stt__index_json(stt_buf_t *b, const index_t *ix)
{
    if (!ix) {
        stt_buf_appends(b, "{\"ddoc\":null,\"name\":\"_all_docs\",\"type\":\"special\",\"def\":{\"fields\":[{\"_id\":"
                           "\"asc\"}]}}");
        return;
    }
    stt_buf_appends(b, "{\"ddoc\":");
    stt_json_write_str(b, ix->ddoc, ix->ddoclen);
    stt_buf_appends(b, ",\"name\":");
    stt_json_write_str(b, ix->name, ix->namelen);
    stt_buf_appends(b, ",\"type\":\"json\",\"partitioned\":false,\"def\":{");
    bool any = false;
    for (uint32_t i = 0; i < ix->map->len; i++) {
        const stt_json_member_t *m = &ix->map->u.members[i];
        if (stt__str_is(m->key, m->keylen, "partial_filter_selector") && m->val.type == STT_JSON_OBJECT &&
            m->val.len == 0)
            continue;
        if (any) stt_buf_appendc(b, ',');
        any = true;
        stt_json_write_str(b, m->key, m->keylen);
        stt_buf_appendc(b, ':');
        if (stt__str_is(m->key, m->keylen, "partial_filter_selector") && m->val.type == STT_JSON_OBJECT) {
            stt__selector_normalize(b, &m->val); /* mango_idx_view shows it normalized */
            continue;
        }
        if (!stt__str_is(m->key, m->keylen, "fields") || m->val.type != STT_JSON_OBJECT) {
            stt_json_write(b, &m->val);
            continue;
        }
        stt_buf_appendc(b, '[');
        for (uint32_t k = 0; k < m->val.len; k++) {
            const stt_json_member_t *f = &m->val.u.members[k];
            stt_buf_appends(b, k ? ",{" : "{");
            stt_json_write_str(b, f->key, f->keylen);
            stt_buf_appendc(b, ':');
            stt_json_write(b, &f->val);
            stt_buf_appendc(b, '}');
        }
        stt_buf_appendc(b, ']');
    }
    stt_buf_appends(b, "}}");
}

/* The columns of a stored definition: "fields" as _index writes it (an object
 * of field: direction) or as a sort list. -1 when unreadable. */
static int index_cols(stt_arena_t *a, index_t *ix)
{
    const stt_json_t *f = stt_json_get(ix->map, "fields");
    const stt_json_t *pfs = stt_json_get(ix->map, "partial_filter_selector");
    ix->partial = pfs && pfs->type == STT_JSON_OBJECT && pfs->len > 0;
    stt_mango_err_t err;
    if (f->type == STT_JSON_ARRAY) return stt__parse_sort(a, f, &ix->cols, &ix->ncols, &ix->desc, &err) ? -1 : 0;
    ix->cols = stt_arena_alloc(a, (f->len + 1) * sizeof(*ix->cols));
    for (uint32_t i = 0; i < f->len; i++) {
        const stt_json_member_t *m = &f->u.members[i];
        stt__field_t *c = &ix->cols[i];
        c->name = m->key, c->namelen = m->keylen;
        if (stt_field_parse(a, m->key, m->keylen, &c->parts, &c->nparts) != 0) return -1;
        ix->desc = m->val.type == STT_JSON_STRING && stt__str_is(m->val.u.s, m->val.len, "desc");
    }
    ix->ncols = f->len;
    return 0;
}

typedef struct {
    stt_arena_t *a;
    stt_reader_t *rd;
    index_t *ix;
    size_t n, cap;
    int rc;
} list_t;

static int on_ddoc(void *ctx, const stt_doc_summary_t *s)
{
    list_t *l = ctx;
    stt_doc_t d;
    if (stt_doc_from_summary(s, &d) != 0 && stt_doc_get(l->rd, s->id, s->idlen, &d) != 0) return 0;
    stt_buf_t b = STT_BUF_INIT;
    stt_render_opts_t o = {0};
    stt_json_t *doc = stt_arena_alloc(l->a, sizeof(*doc));
    if (stt_doc_render(l->rd, &d, d.winner, &o, &b) == 0 && stt_json_parse(l->a, b.base, b.len, doc, NULL, 0) == 0 &&
        doc->type == STT_JSON_OBJECT && is_query_ddoc(doc)) {
        const stt_json_t *views = stt_json_get(doc, "views");
        for (uint32_t i = 0; views && views->type == STT_JSON_OBJECT && i < views->len; i++) {
            const stt_json_member_t *m = &views->u.members[i];
            const stt_json_t *map = index_map(&m->val);
            if (!map) continue;
            if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 16;
                index_t *ix = stt_arena_alloc(l->a, cap * sizeof(*ix));
                if (l->n) memcpy(ix, l->ix, l->n * sizeof(*ix));
                l->ix = ix;
                l->cap = cap;
            }
            char *id = stt_arena_strndup(l->a, s->id, s->idlen);
            index_t *ix = &l->ix[l->n];
            *ix = (index_t){id, s->idlen, m->key, m->keylen, map, NULL, 0, false, false};
            if (index_cols(l->a, ix) == 0) l->n++;
        }
    }
    stt_buf_free(&b);
    stt_doc_free(&d);
    return 0;
}

static int bytes_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c ? c : (alen > blen) - (alen < blen);
}

/* CouchDB lists indexes sorted by design doc, then name. */
static int index_cmp(const void *pa, const void *pb)
{
    const index_t *a = pa, *b = pb;
    int c = bytes_cmp(a->ddoc, a->ddoclen, b->ddoc, b->ddoclen);
    return c ? c : bytes_cmp(a->name, a->namelen, b->name, b->namelen);
}

int stt__indexes_list(stt_db_t *db, stt_arena_t *a, index_t **out, size_t *n)
{
    list_t l = {.a = a};
    int rc = stt_reader_open(db, &l.rd);
    if (rc) return rc;
    static const char lo[] = "_design/", hi[] = "_design0";
    stt_range_t rg = {.start = lo, .startlen = 8, .end = hi, .endlen = 8, .inclusive_end = false};
    rc = stt_docs_scan(l.rd, &rg, on_ddoc, &l);
    stt_reader_close(l.rd);
    if (rc) return rc;
    if (l.n) qsort(l.ix, l.n, sizeof(*l.ix), index_cmp);
    *out = l.ix;
    *n = l.n;
    return 0;
}

/* ------------------------------------------------------------------ GET _index */

int stt_mango_index_list(stt_db_t *db, int64_t skip, int64_t limit, stt_buf_t *out, stt_mango_err_t *err)
{
    stt_arena_t a = STT_ARENA_INIT;
    index_t *ix = NULL;
    size_t n = 0;
    int rc = stt__indexes_list(db, &a, &ix, &n);
    if (rc) {
        err->reason[0] = '\0';
        stt_arena_free(&a);
        return rc;
    }
    int64_t total = (int64_t)n + 1;
    if (limit < 0) limit = total;
    if (skip < 0) skip = 0;
    if (skip > total) skip = total;
    stt_buf_appendf(out, "{\"total_rows\":%lld,\"indexes\":[", (long long)total);
    /* _all_docs first: CouchDB's sort puts its null ddoc before any name */
    for (int64_t i = skip, k = 0; i < total && k < limit; i++, k++) {
        if (k) stt_buf_appendc(out, ',');
        stt__index_json(out, i == 0 ? NULL : &ix[i - 1]);
    }
    stt_buf_appends(out, "]}");
    stt_arena_free(&a);
    return 0;
}

/* ------------------------------------------------------------------ POST _index */

static void hex_sha1(stt_buf_t *out, const void *data, size_t len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_sha1(), NULL);
    stt_hex_encode(out, md, mdlen);
}

static const stt_json_t *string_opt(stt_arena_t *a, const stt_json_t *body, const char *key, bool *bad,
                                    stt_mango_err_t *err)
{
    const stt_json_t *v = stt_json_get(body, key);
    if (v && v->type != STT_JSON_STRING) {
        stt__merr(err, 400, "invalid_string", "Invalid string: %s", stt__term(a, v));
        *bad = true;
    }
    return v;
}

static int create(stt_db_t *db, stt_arena_t *a, const stt_json_t *body, stt_buf_t *out, stt_mango_err_t *err)
{
    static const char *const known[] = {"index", "type", "name", "ddoc", "w", "partitioned"};
    static const char *const def_known[] = {"fields", "partial_filter_selector"};
    const stt_json_t *def = stt_json_get(body, "index");
    if (!def) return stt__merr(err, 400, "missing_required_key", "Missing required key: index");
    bool bad = false;
    int rc;
    const stt_json_t *type = string_opt(a, body, "type", &bad, err);
    const stt_json_t *name = bad ? NULL : string_opt(a, body, "name", &bad, err);
    const stt_json_t *ddoc = bad ? NULL : string_opt(a, body, "ddoc", &bad, err);
    if (bad) return STT_MANGO_E;
    const stt_json_t *v;
    uint64_t w;
    if ((v = stt_json_get(body, "w")) != NULL && (!stt__non_neg_int(v, &w) || w == 0))
        return stt__merr(err, 400, "invalid_pos_integer", "%s is not an integer greater than zero", stt__term(a, v));
    if ((v = stt_json_get(body, "partitioned")) != NULL) {
        if (!stt__is_bool(v))
            return stt__merr(err, 400, "invalid_boolean", "Invalid boolean value: %s", stt__term(a, v));
        if (v->type == STT_JSON_TRUE)
            return stt__merr(err, 400, "invalid_partitioned_option",
                             "Requested partitioned option does not match existing value on design document");
    }
    if ((rc = stt__known_keys(body, known, sizeof(known) / sizeof(known[0]), err)) != 0) return rc;
    if (type && !stt__str_is(type->u.s, type->len, "json")) {
        if (stt__str_is(type->u.s, type->len, "text") || stt__str_is(type->u.s, type->len, "nouveau"))
            return stt__merr(err, 503, "required index service unavailable", "%s", type->u.s);
        return stt__merr(err, 400, "invalid_index", "Invalid type for index: %.*s", (int)type->len, type->u.s);
    }
    if (def->type != STT_JSON_OBJECT)
        return stt__merr(err, 400, "invalid_index", "JSON indexes must be an object, not: %s", stt__term(a, def));
    const stt_json_t *fields = stt_json_get(def, "fields");
    if (!fields) return stt__merr(err, 400, "missing_required_key", "Missing required key: fields");
    field_t *sort;
    uint32_t nsort;
    bool desc;
    if ((rc = stt__parse_sort(a, fields, &sort, &nsort, &desc, err)) != 0) return rc;
    const stt_json_t *pfs = stt_json_get(def, "partial_filter_selector");
    if (pfs) {
        char serr[256];
        stt_selector_t *sel;
        if (pfs->type != STT_JSON_OBJECT)
            return stt__merr(err, 400, "invalid_selector_json", "Selector must be a JSON object, not: %s",
                             stt__term(a, pfs));
        if (stt_selector_compile(a, pfs, &sel, serr, sizeof(serr)) != 0) return stt__selector_err(err, serr);
        stt_selector_free(sel);
    }
    if ((rc = stt__known_keys(def, def_known, sizeof(def_known) / sizeof(def_known[0]), err)) != 0) return rc;

    /* the view, as mango_idx_view:make_view writes it */
    stt_buf_t view = STT_BUF_INIT, gen = STT_BUF_INIT, id = STT_BUF_INIT, ixname = STT_BUF_INIT;
    stt_buf_t doc = STT_BUF_INIT, cur = STT_BUF_INIT;
    stt_buf_appends(&view, "{\"map\":{\"fields\":{");
    for (uint32_t i = 0; i < nsort; i++) {
        if (i) stt_buf_appendc(&view, ',');
        stt_json_write_str(&view, sort[i].name, sort[i].namelen);
        stt_buf_appends(&view, desc ? ":\"desc\"" : ":\"asc\"");
    }
    stt_buf_appends(&view, "},\"partial_filter_selector\":");
    if (pfs)
        stt__selector_normalize(&view, pfs); /* stored normalized, as mango_idx_view does */
    else
        stt_buf_appends(&view, "{}");
    stt_buf_appends(&view, "},\"reduce\":\"_count\",\"options\":{\"def\":");
    stt_json_write(&view, def);
    stt_buf_appends(&view, "}}");

    /* generated names: a digest of what defines the index, so that the same
     * request names the same design doc and view again (CouchDB hashes its
     * Erlang terms: the names differ, their form does not) */
    if (!name || !ddoc) {
        stt_buf_t h = STT_BUF_INIT;
        stt_buf_append(&h, view.base, view.len);
        stt_buf_appends(&h, "\njson\n");
        if (name) stt_json_write(&h, name);
        stt_buf_appendc(&h, '\n');
        if (ddoc) stt_json_write(&h, ddoc);
        hex_sha1(&gen, h.base, h.len);
        stt_buf_free(&h);
    }
    if (name)
        stt_buf_append(&ixname, name->u.s, name->len);
    else
        stt_buf_append(&ixname, gen.base, gen.len);
    if (!ddoc || ddoc->len < 8 || memcmp(ddoc->u.s, "_design/", 8) != 0) stt_buf_appends(&id, "_design/");
    if (ddoc)
        stt_buf_append(&id, ddoc->u.s, ddoc->len);
    else
        stt_buf_append(&id, gen.base, gen.len);

    const char *result = NULL;
    const char *reason = NULL;
    /* a concurrent writer of the same design doc: read it again and retry */
    for (int attempt = 0; attempt < 5 && !result; attempt++) {
        stt_json_t old;
        bool found;
        rc = ddoc_load(db, a, id.base, id.len, &old, &found);
        if (rc) break;
        stt_buf_reset(&doc);
        stt_buf_appends(&doc, "{");
        bool any = false;
        if (!found) {
            stt_buf_appends(&doc, "\"_id\":");
            stt_json_write_str(&doc, id.base, id.len);
            stt_buf_appends(&doc, ",\"language\":\"query\",\"views\":{");
            stt_json_write_str(&doc, ixname.base, ixname.len);
            stt_buf_appendc(&doc, ':');
            stt_buf_append(&doc, view.base, view.len);
            stt_buf_appends(&doc, "}}");
        } else {
            const stt_json_t *lang = stt_json_get(&old, "language");
            if (!is_query_ddoc(&old)) {
                rc = stt__merr(err, 400, "invalid_ddoc_lang", "Existing design doc has an invalid language: %s",
                               lang ? stt__term(a, lang) : "false");
                goto exit;
            }
            const stt_json_t *views = stt_json_get(&old, "views");
            if (views && views->type != STT_JSON_OBJECT) views = NULL;
            const stt_json_t *same = views ? stt_json_getn(views, ixname.base, ixname.len) : NULL;
            if (same) {
                stt_buf_reset(&cur);
                stt_json_write(&cur, same);
                if (cur.len == view.len && memcmp(cur.base, view.base, view.len) == 0) {
                    result = "exists";
                    break;
                }
            }
            /* lists:keystore: the view replaces its namesake in place or goes last,
             * and "views" keeps its place among the doc's members */
            bool wrote_views = false;
            for (uint32_t i = 0; i < old.len; i++) {
                const stt_json_member_t *m = &old.u.members[i];
                if (any) stt_buf_appendc(&doc, ',');
                any = true;
                stt_json_write_str(&doc, m->key, m->keylen);
                stt_buf_appendc(&doc, ':');
                if (!stt__str_is(m->key, m->keylen, "views") || wrote_views) {
                    stt_json_write(&doc, &m->val);
                    continue;
                }
                wrote_views = true;
                stt_buf_appendc(&doc, '{');
                bool vany = false, placed = false;
                for (uint32_t k = 0; views && k < views->len; k++) {
                    const stt_json_member_t *vm = &views->u.members[k];
                    if (vany) stt_buf_appendc(&doc, ',');
                    vany = true;
                    stt_json_write_str(&doc, vm->key, vm->keylen);
                    stt_buf_appendc(&doc, ':');
                    if (!placed && vm->keylen == ixname.len && memcmp(vm->key, ixname.base, ixname.len) == 0) {
                        stt_buf_append(&doc, view.base, view.len);
                        placed = true;
                    } else {
                        stt_json_write(&doc, &vm->val);
                    }
                }
                if (!placed) {
                    if (vany) stt_buf_appendc(&doc, ',');
                    stt_json_write_str(&doc, ixname.base, ixname.len);
                    stt_buf_appendc(&doc, ':');
                    stt_buf_append(&doc, view.base, view.len);
                }
                stt_buf_appendc(&doc, '}');
            }
            if (!wrote_views) {
                stt_buf_appends(&doc, any ? ",\"views\":{" : "\"views\":{");
                stt_json_write_str(&doc, ixname.base, ixname.len);
                stt_buf_appendc(&doc, ':');
                stt_buf_append(&doc, view.base, view.len);
                stt_buf_appendc(&doc, '}');
            }
            stt_buf_appendc(&doc, '}');
        }
        rc = ddoc_write(db, a, &doc, &reason);
        if (rc == 0)
            result = "created";
        else if (rc != STT_E_CONFLICT)
            break;
    }
    if (!result) {
        if (rc == STT_E_CONFLICT)
            rc = stt__merr(err, 500, "error_saving_ddoc", "Encountered a conflict while saving the design document.");
        else
            snprintf(err->reason, sizeof(err->reason), "%s", reason ? reason : "");
        goto exit;
    }
    rc = 0;
    stt_buf_appends(out, "{\"result\":\"");
    stt_buf_appends(out, result);
    stt_buf_appends(out, "\",\"id\":");
    stt_json_write_str(out, id.base, id.len);
    stt_buf_appends(out, ",\"name\":");
    stt_json_write_str(out, ixname.base, ixname.len);
    stt_buf_appendc(out, '}');
exit:
    stt_buf_free(&view);
    stt_buf_free(&gen);
    stt_buf_free(&id);
    stt_buf_free(&ixname);
    stt_buf_free(&doc);
    stt_buf_free(&cur);
    return rc;
}

int stt_mango_index_create(stt_db_t *db, const stt_json_t *body, stt_buf_t *out, stt_mango_err_t *err)
{
    stt_arena_t a = STT_ARENA_INIT;
    err->reason[0] = '\0';
    int rc = create(db, &a, body, out, err);
    stt_arena_free(&a);
    return rc;
}

/* ------------------------------------------------------------------ deleting */

/* Removes the json index name (every json index when name is NULL) from the
 * design doc id; the design doc goes when nothing but its language is left, as
 * mango_idx:delete does. 0, STT_E_NOT_FOUND, STT_E_CONFLICT or another error. */
static int index_remove(stt_db_t *db, stt_arena_t *a, const char *id, size_t idlen, const char *name, size_t namelen,
                        const char **reason)
{
    stt_json_t old;
    bool found;
    *reason = NULL;
    int rc = ddoc_load(db, a, id, idlen, &old, &found);
    if (rc) return rc;
    if (!found || !is_query_ddoc(&old)) return STT_E_NOT_FOUND;
    const stt_json_t *views = stt_json_get(&old, "views");
    if (!views || views->type != STT_JSON_OBJECT) return STT_E_NOT_FOUND;
    uint32_t removed = 0;
    for (uint32_t k = 0; k < views->len; k++) {
        const stt_json_member_t *vm = &views->u.members[k];
        if (index_map(&vm->val) && (!name || (vm->keylen == namelen && memcmp(vm->key, name, namelen) == 0))) removed++;
    }
    if (!removed) return STT_E_NOT_FOUND;
    bool left = views->len > removed; /* views remain */
    bool other = false;               /* members besides _-specials, language and views */
    for (uint32_t i = 0; i < old.len; i++) {
        const stt_json_member_t *m = &old.u.members[i];
        if (!(m->keylen && m->key[0] == '_') && !stt__str_is(m->key, m->keylen, "language") &&
            !stt__str_is(m->key, m->keylen, "views"))
            other = true;
    }
    stt_buf_t doc = STT_BUF_INIT;
    stt_buf_appendc(&doc, '{');
    if (!left && !other) {
        const stt_json_t *rev = stt_json_get(&old, "_rev");
        stt_buf_appends(&doc, "\"_id\":");
        stt_json_write_str(&doc, id, idlen);
        stt_buf_appends(&doc, ",\"_rev\":");
        stt_json_write(&doc, rev);
        stt_buf_appends(&doc, ",\"_deleted\":true}");
    } else {
        bool any = false;
        for (uint32_t i = 0; i < old.len; i++) {
            const stt_json_member_t *m = &old.u.members[i];
            if (stt__str_is(m->key, m->keylen, "views") && !left) continue;
            if (any) stt_buf_appendc(&doc, ',');
            any = true;
            stt_json_write_str(&doc, m->key, m->keylen);
            stt_buf_appendc(&doc, ':');
            if (!stt__str_is(m->key, m->keylen, "views")) {
                stt_json_write(&doc, &m->val);
                continue;
            }
            stt_buf_appendc(&doc, '{');
            bool vany = false;
            for (uint32_t k = 0; k < views->len; k++) {
                const stt_json_member_t *vm = &views->u.members[k];
                if (index_map(&vm->val) && (!name || (vm->keylen == namelen && memcmp(vm->key, name, namelen) == 0)))
                    continue;
                if (vany) stt_buf_appendc(&doc, ',');
                vany = true;
                stt_json_write_str(&doc, vm->key, vm->keylen);
                stt_buf_appendc(&doc, ':');
                stt_json_write(&doc, &vm->val);
            }
            stt_buf_appendc(&doc, '}');
        }
        stt_buf_appendc(&doc, '}');
    }
    rc = ddoc_write(db, a, &doc, reason);
    stt_buf_free(&doc);
    return rc;
}

/* "x" and "_design/x" name the same design doc; the id is built in a. */
static void design_id(stt_arena_t *a, const char *s, size_t len, const char **id, size_t *idlen)
{
    if (len >= 8 && memcmp(s, "_design/", 8) == 0) {
        *id = s, *idlen = len;
        return;
    }
    char *p = stt_arena_alloc(a, len + 9);
    memcpy(p, "_design/", 8);
    memcpy(p + 8, s, len);
    p[len + 8] = '\0';
    *id = p, *idlen = len + 8;
}

static int index_remove_retry(stt_db_t *db, stt_arena_t *a, const char *id, size_t idlen, const char *name,
                              size_t namelen, const char **reason)
{
    int rc = STT_E_CONFLICT;
    for (int attempt = 0; attempt < 5 && rc == STT_E_CONFLICT; attempt++)
        rc = index_remove(db, a, id, idlen, name, namelen, reason);
    return rc;
}

int stt_mango_index_delete(stt_db_t *db, const char *ddoc, size_t ddoclen, const char *type, size_t typelen,
                           const char *name, size_t namelen, stt_mango_err_t *err)
{
    err->reason[0] = '\0';
    if (!stt__str_is(type, typelen, "json")) return STT_E_NOT_FOUND;
    stt_arena_t a = STT_ARENA_INIT;
    const char *id, *reason;
    size_t idlen;
    design_id(&a, ddoc, ddoclen, &id, &idlen);
    int rc = index_remove_retry(db, &a, id, idlen, name, namelen, &reason);
    if (rc == STT_E_CONFLICT)
        rc = stt__merr(err, 500, "error_saving_ddoc", "Encountered a conflict while saving the design document.");
    else if (rc && reason)
        snprintf(err->reason, sizeof(err->reason), "%s", reason);
    stt_arena_free(&a);
    return rc;
}

/* POST _index/_bulk_delete {"docids": [...]}: every json index of each design doc. */
int stt_mango_index_bulk_delete(stt_db_t *db, const stt_json_t *body, stt_buf_t *out, stt_mango_err_t *err)
{
    err->reason[0] = '\0';
    const stt_json_t *ids = stt_json_get(body, "docids");
    if (!ids) return stt__merr(err, 400, "missing_required_key", "Missing required key: docids");
    bool ok = ids->type == STT_JSON_ARRAY;
    for (uint32_t i = 0; ok && i < ids->len; i++)
        ok = ids->u.items[i].type == STT_JSON_STRING;
    stt_arena_t a = STT_ARENA_INIT;
    if (!ok) {
        int rc = stt__merr(err, 400, "invalid_bulk_docs",
                           "Bulk Delete requires an array of non-null docids. Docids: %s", stt__term(&a, ids));
        stt_arena_free(&a);
        return rc;
    }
    /* CouchDB accumulates both lists head first: they come out in reverse */
    stt_buf_t good = STT_BUF_INIT, bad = STT_BUF_INIT;
    for (uint32_t i = ids->len; i-- > 0;) {
        const stt_json_t *v = &ids->u.items[i];
        const char *id, *reason;
        size_t idlen;
        design_id(&a, v->u.s, v->len, &id, &idlen);
        int rc = index_remove_retry(db, &a, id, idlen, NULL, 0, &reason);
        stt_buf_t *b = rc ? &bad : &good;
        stt_buf_appends(b, b->len ? ",{\"id\":" : "{\"id\":");
        stt_json_write_str(b, id, idlen);
        if (rc == 0) {
            stt_buf_appends(b, ",\"ok\":true}");
        } else {
            stt_buf_appends(b, ",\"error\":");
            stt_json_write_cstr(b, stt_err_info(rc)->error);
            stt_buf_appendc(b, '}');
        }
    }
    stt_buf_appends(out, "{\"success\":[");
    stt_buf_append(out, good.base, good.len);
    stt_buf_appends(out, "],\"fail\":[");
    stt_buf_append(out, bad.base, bad.len);
    stt_buf_appends(out, "]}");
    stt_buf_free(&good);
    stt_buf_free(&bad);
    stt_arena_free(&a);
    return 0;
}
