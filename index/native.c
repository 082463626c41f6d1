/* The native map of "language": "query" views: CouchDB's mango_native_proc for
 * json indexes. A view's map is {"fields": {"a": "asc", ...},
 * "partial_filter_selector": {...}}; a doc gets one row, key the array of its
 * values of the fields in order and value null, when it holds every field and
 * matches the partial filter; otherwise none. Directions do not change the
 * rows (a query scans them backwards). A definition that cannot be read maps
 * nothing, as CouchDB's indexer skips it. */
#include "index/index_int.h"
#include "replication/selector.h"
#include <stdlib.h>
#include <string.h>

typedef struct {
    stt_field_part_t **parts;
    uint32_t *nparts;
    uint32_t nfields;
    stt_selector_t *pfs; /* NULL: none */
    bool ok;
} nview_t;

struct stt__native {
    stt_arena_t arena;
    nview_t *v;
    size_t n;
};

static void view_open(stt__native_t *n, nview_t *v, const char *map)
{
    stt_json_t def;
    if (stt_json_parse(&n->arena, map, strlen(map), &def, NULL, 0) != 0 || def.type != STT_JSON_OBJECT) return;
    const stt_json_t *f = stt_json_get(&def, "fields");
    if (!f || (f->type != STT_JSON_OBJECT && f->type != STT_JSON_ARRAY)) return;
    v->parts = stt_arena_alloc(&n->arena, (f->len + 1) * sizeof(*v->parts));
    v->nparts = stt_arena_alloc(&n->arena, (f->len + 1) * sizeof(*v->nparts));
    for (uint32_t i = 0; i < f->len; i++) {
        const char *name;
        size_t len;
        if (f->type == STT_JSON_OBJECT) {
            name = f->u.members[i].key, len = f->u.members[i].keylen;
        } else if (f->u.items[i].type == STT_JSON_STRING) {
            name = f->u.items[i].u.s, len = f->u.items[i].len;
        } else if (f->u.items[i].type == STT_JSON_OBJECT && f->u.items[i].len == 1) {
            name = f->u.items[i].u.members[0].key, len = f->u.items[i].u.members[0].keylen;
        } else {
            return;
        }
        if (stt_field_parse(&n->arena, name, len, &v->parts[i], &v->nparts[i]) != 0) return;
    }
    v->nfields = f->len;
    const stt_json_t *pfs = stt_json_get(&def, "partial_filter_selector");
    if (pfs && pfs->type == STT_JSON_OBJECT && pfs->len && stt_selector_compile(&n->arena, pfs, &v->pfs, NULL, 0) != 0)
        return;
    v->ok = true;
}

stt__native_t *stt__native_open(const stt_ddoc_views_t *dv)
{
    stt__native_t *n = stt_xcalloc(1, sizeof(*n));
    n->n = dv->nviews;
    n->v = stt_arena_alloc(&n->arena, (dv->nviews + 1) * sizeof(*n->v));
    memset(n->v, 0, (dv->nviews + 1) * sizeof(*n->v));
    for (size_t i = 0; i < dv->nviews; i++)
        view_open(n, &n->v[i], dv->views[i].map);
    return n;
}

void stt__native_map(stt__native_t *n, const stt_json_t *doc, stt_arena_t *a, stt_json_t *out)
{
    out->type = STT_JSON_ARRAY;
    out->len = (uint32_t)n->n;
    out->u.items = stt_arena_alloc(a, (n->n + 1) * sizeof(stt_json_t));
    for (size_t i = 0; i < n->n; i++) {
        nview_t *v = &n->v[i];
        stt_json_t *em = &out->u.items[i];
        memset(em, 0, sizeof(*em));
        em->type = STT_JSON_ARRAY;
        if (!v->ok || (v->pfs && !stt_selector_match(v->pfs, doc))) continue;
        stt_json_t *key = stt_arena_alloc(a, (v->nfields + 1) * sizeof(stt_json_t));
        uint32_t k = 0;
        for (; k < v->nfields; k++) {
            const stt_json_t *x = stt_field_get(doc, v->parts[k], v->nparts[k]);
            if (!x) break;
            key[k] = *x;
        }
        if (k < v->nfields) continue;
        stt_json_t *kv = stt_arena_alloc(a, 2 * sizeof(stt_json_t));
        memset(kv, 0, 2 * sizeof(stt_json_t));
        kv[0].type = STT_JSON_ARRAY;
        kv[0].len = v->nfields;
        kv[0].u.items = key;
        kv[1].type = STT_JSON_NULL;
        stt_json_t *row = stt_arena_alloc(a, sizeof(stt_json_t));
        memset(row, 0, sizeof(*row));
        row->type = STT_JSON_ARRAY;
        row->len = 2;
        row->u.items = kv;
        em->len = 1;
        em->u.items = row;
    }
}

void stt__native_close(stt__native_t *n)
{
    if (!n) return;
    for (size_t i = 0; i < n->n; i++)
        stt_selector_free(n->v[i].pfs);
    stt_arena_free(&n->arena);
    free(n);
}
