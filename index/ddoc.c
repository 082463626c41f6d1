/* A design doc's views as the index sees them, and the signature that names
 * their index. The signature covers what decides the rows (language, views.lib,
 * each view's map, reduce and collation, in order): any edit to those gives a
 * new index; editing anything else in the design doc keeps it. Validation of
 * the design doc (what may be stored) belongs to design/, not here: a view
 * without a string map is simply not a view, except in a "language": "query"
 * design doc, whose views are Mango json indexes with an object map. */
#include "index/index.h"
#include "replication/replication.h"
#include "src/common/err.h"
#include <stdio.h>
#include <string.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

static char *dup_str(stt_arena_t *a, const stt_json_t *v)
{
    return stt_arena_strndup(a, v->u.s, v->len);
}

void stt_ddoc_views_from_json(const char *ddoc_id, const stt_json_t *body, stt_arena_t *arena, stt_ddoc_views_t *out)
{
    memset(out, 0, sizeof(*out));
    out->ddoc_id = ddoc_id;
    const stt_json_t *lang = stt_json_get(body, "language");
    out->lang = stt_json_is_str(lang) ? dup_str(arena, lang) : "javascript";
    bool native_lang = strcmp(out->lang, STT_INDEX_NATIVE_LANG) == 0;
    const stt_json_t *views = stt_json_get(body, "views");
    bool raw_all = false;
    const stt_json_t *opts = stt_json_get(body, "options");
    if (opts && opts->type == STT_JSON_OBJECT) {
        const stt_json_t *c = stt_json_get(opts, "collation");
        raw_all = stt_json_is_str(c) && strcmp(c->u.s, "raw") == 0;
    }
    if (views && views->type == STT_JSON_OBJECT) {
        out->views = stt_arena_alloc(arena, (views->len + 1) * sizeof(*out->views));
        for (uint32_t i = 0; i < views->len; i++) {
            const stt_json_member_t *m = &views->u.members[i];
            if (m->keylen == 3 && memcmp(m->key, "lib", 3) == 0) {
                stt_buf_t b = STT_BUF_INIT;
                stt_json_write(&b, &m->val);
                out->lib = stt_arena_strndup(arena, b.base, b.len);
                stt_buf_free(&b);
                continue;
            }
            if (m->val.type != STT_JSON_OBJECT) continue;
            const stt_json_t *map = stt_json_get(&m->val, "map"), *red = stt_json_get(&m->val, "reduce");
            /* a Mango json index: its map is the definition object, kept as JSON
             * text so that the signature covers it (native.c maps it) */
            bool native = native_lang && map && map->type == STT_JSON_OBJECT;
            if (!stt_json_is_str(map) && !native) continue;
            stt_view_def_t *v = &out->views[out->nviews++];
            v->name = stt_arena_strndup(arena, m->key, m->keylen);
            if (native) {
                stt_buf_t b = STT_BUF_INIT;
                stt_json_write(&b, map);
                v->map = stt_arena_strndup(arena, b.base, b.len);
                stt_buf_free(&b);
            } else {
                v->map = dup_str(arena, map);
            }
            v->reduce = stt_json_is_str(red) ? dup_str(arena, red) : NULL;
            v->raw = raw_all;
            const stt_json_t *vo = stt_json_get(&m->val, "options");
            if (vo && vo->type == STT_JSON_OBJECT) {
                const stt_json_t *c = stt_json_get(vo, "collation");
                if (stt_json_is_str(c)) v->raw = strcmp(c->u.s, "raw") == 0;
            }
        }
    }
    XXH3_state_t st;
    XXH3_128bits_reset(&st);
    XXH3_128bits_update(&st, out->lang, strlen(out->lang) + 1);
    if (out->lib) XXH3_128bits_update(&st, out->lib, strlen(out->lib));
    XXH3_128bits_update(&st, "", 1);
    for (size_t i = 0; i < out->nviews; i++) {
        const stt_view_def_t *v = &out->views[i];
        XXH3_128bits_update(&st, v->map, strlen(v->map) + 1);
        const char *r = v->reduce ? v->reduce : "";
        XXH3_128bits_update(&st, r, strlen(r) + 1);
        XXH3_128bits_update(&st, v->raw ? "r" : "u", 1);
    }
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits_digest(&st));
    memcpy(out->sig, c.digest, 16);
    for (int i = 0; i < 16; i++)
        snprintf(out->sighex + 2 * i, 3, "%02x", out->sig[i]);
}

int stt_ddoc_views_load(stt_db_t *db, const char *ddoc_id, stt_arena_t *arena, stt_ddoc_views_t *out)
{
    stt_reader_t *rd = NULL;
    int rc = stt_reader_open(db, &rd);
    if (rc) return rc;
    stt_doc_t d;
    rc = stt_doc_get(rd, ddoc_id, strlen(ddoc_id), &d);
    if (rc) goto exit;
    int node;
    rc = stt_doc_select(&d, NULL, &node);
    stt_rev_body_t b = {0};
    if (rc == 0) rc = stt_doc_body(&d, node, &b);
    if (rc == 0) {
        stt_json_t body;
        rc = stt_json_parse(arena, b.json, b.jsonlen, &body, NULL, 0);
        if (rc == 0) stt_ddoc_views_from_json(stt_arena_strndup(arena, ddoc_id, strlen(ddoc_id)), &body, arena, out);
        stt_rev_body_free(&b);
    }
    if (rc == STT_E_DELETED) rc = STT_E_NOT_FOUND;
    stt_doc_free(&d);
exit:
    stt_reader_close(rd);
    return rc;
}

int stt_ddoc_view_find(const stt_ddoc_views_t *dv, const char *name, size_t len)
{
    for (size_t i = 0; i < dv->nviews; i++)
        if (strlen(dv->views[i].name) == len && memcmp(dv->views[i].name, name, len) == 0) return (int)i;
    return -1;
}
