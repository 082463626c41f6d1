/* What a design doc must be to be stored: couch_mrview's validate_ddoc_fields
 * (field types, checked path by path in CouchDB's order, the first failure is the
 * answer), the map function every view needs, the builtin reduce names, and each
 * view's map and JS reduce compiled by the query server of the doc's language.
 * Runs on every write of a live design doc, replicated ones included, as CouchDB's
 * validate_doc_update does for "_design/" ids. */
#include "design/design.h"
#include "src/common/err.h"
#include <stdio.h>
#include <string.h>

enum { T_STRING = 1, T_OBJECT = 2, T_ARRAY = 4, T_BOOLEAN = 8 };

static bool is_type(const stt_json_t *v, int types)
{
    return ((types & T_STRING) && v->type == STT_JSON_STRING) || ((types & T_OBJECT) && v->type == STT_JSON_OBJECT) ||
           ((types & T_ARRAY) && v->type == STT_JSON_ARRAY) ||
           ((types & T_BOOLEAN) && (v->type == STT_JSON_TRUE || v->type == STT_JSON_FALSE));
}

static const char *type_name(int types)
{
    switch (types) {
    case T_STRING:
        return "string";
    case T_OBJECT:
        return "object";
    case T_BOOLEAN:
        return "boolean";
    case T_STRING | T_ARRAY:
        return "string or array";
    case T_STRING | T_OBJECT:
        return "string or object";
    default:
        return "object or string";
    }
}

static int fail(stt_arena_t *a, stt_qs_err_t *err, int status, const char *error, const char *reason)
{
    err->status = status;
    err->error = error;
    err->reason = stt_arena_strndup(a, reason, strlen(reason));
    return -1;
}

static int bad_type(stt_arena_t *a, stt_qs_err_t *err, const char *path, int types)
{
    char m[600];
    snprintf(m, sizeof(m), "`%s` field must have %s type", path, type_name(types));
    return fail(a, err, 400, "invalid_design_doc", m);
}

/* top.<key> of the given types (absent is fine) */
static int field(stt_arena_t *a, stt_qs_err_t *err, const stt_json_t *obj, const char *key, int types)
{
    const stt_json_t *v = stt_json_get(obj, key);
    return v && !is_type(v, types) ? bad_type(a, err, key, types) : 0;
}

/* every member of top.<key> (an object of functions) of the given types */
static int members(stt_arena_t *a, stt_qs_err_t *err, const stt_json_t *obj, const char *key, int types)
{
    const stt_json_t *v = stt_json_get(obj, key);
    if (!v) return 0;
    if (v->type != STT_JSON_OBJECT) return bad_type(a, err, key, T_OBJECT);
    for (uint32_t i = 0; i < v->len; i++)
        if (!is_type(&v->u.members[i].val, types)) {
            char p[400];
            snprintf(p, sizeof(p), "%s.%.*s", key, (int)v->u.members[i].keylen, v->u.members[i].key);
            return bad_type(a, err, p, types);
        }
    return 0;
}

/* couch_mrview's list of paths, in its order */
static int check_fields(stt_arena_t *a, stt_qs_err_t *err, const stt_json_t *d)
{
    if (members(a, err, d, "filters", T_OBJECT | T_STRING) || field(a, err, d, "language", T_STRING) ||
        members(a, err, d, "lists", T_OBJECT | T_STRING) || field(a, err, d, "options", T_OBJECT))
        return -1;
    const stt_json_t *o = stt_json_get(d, "options");
    static const char *const bools[] = {"include_design", "local_seq", "partitioned"};
    for (size_t i = 0; o && i < 3; i++) {
        const stt_json_t *v = stt_json_get(o, bools[i]);
        char p[64];
        snprintf(p, sizeof(p), "options.%s", bools[i]);
        if (v && !is_type(v, T_BOOLEAN)) return bad_type(a, err, p, T_BOOLEAN);
    }
    if (field(a, err, d, "rewrites", T_STRING | T_ARRAY) || members(a, err, d, "shows", T_OBJECT | T_STRING) ||
        members(a, err, d, "updates", T_OBJECT | T_STRING) || field(a, err, d, "validate_doc_update", T_STRING) ||
        field(a, err, d, "views", T_OBJECT))
        return -1;
    const stt_json_t *views = stt_json_get(d, "views");
    if (!views) return 0;
    const stt_json_t *lib = stt_json_get(views, "lib");
    if (lib && lib->type != STT_JSON_OBJECT) return bad_type(a, err, "views.lib", T_OBJECT);
    bool query = stt_json_is_str(stt_json_get(d, "language")) && strcmp(stt_json_get(d, "language")->u.s, "query") == 0;
    /* views.*: each view an object with a string map, view by view; then the
     * reduces, as the two paths run one after the other */
    for (int pass = 1; pass < 3; pass++)
        for (uint32_t i = 0; i < views->len; i++) {
            const stt_json_member_t *m = &views->u.members[i];
            char p[400];
            snprintf(p, sizeof(p), "views.%.*s", (int)m->keylen, m->key);
            if (m->val.type != STT_JSON_OBJECT) return bad_type(a, err, p, T_OBJECT);
            if (m->keylen == 3 && memcmp(m->key, "lib", 3) == 0) continue;
            const char *k = pass == 1 ? "map" : "reduce";
            int t = pass == 1 && query ? T_OBJECT : T_STRING;
            const stt_json_t *f = stt_json_get(&m->val, k);
            snprintf(p, sizeof(p), "views.%.*s.%s", (int)m->keylen, m->key, k);
            if (f && !is_type(f, t)) return bad_type(a, err, p, t);
        }
    for (uint32_t i = 0; i < views->len; i++) {
        const stt_json_member_t *m = &views->u.members[i];
        if (m->keylen == 3 && memcmp(m->key, "lib", 3) == 0) continue;
        if (!stt_json_get(&m->val, "map")) {
            char r[400];
            snprintf(r, sizeof(r), "View `%.*s` must contain map function", (int)m->keylen, m->key);
            return fail(a, err, 400, "invalid_design_doc", r);
        }
    }
    return 0;
}

static bool builtin_reduce(const char *s)
{
    static const char *const names[] = {"_sum", "_count", "_stats", "_approx_count_distinct"};
    for (size_t i = 0; i < 4; i++)
        if (strncmp(s, names[i], strlen(names[i])) == 0) return true;
    return false;
}

static int compile(stt_qs_pool_t *qs, const char *lang, const char *kind, const stt_json_member_t *view,
                   const stt_json_t *src, stt_arena_t *a, stt_qs_err_t *err)
{
    stt_qs_text_t t = {src->u.s, src->len};
    stt_qs_err_t e;
    int rc = stt_qs_compile(qs, lang, t, a, &e);
    if (rc == 0) return 0;
    if (rc != STT_QS_E_COMPILE) {
        *err = e;
        return -1;
    }
    size_t n = strlen(e.reason) + view->keylen + 64;
    char *r = stt_arena_alloc(a, n);
    snprintf(r, n, "Compilation of the %s function in the '%.*s' view failed: %s", kind, (int)view->keylen, view->key,
             e.reason);
    err->status = 400;
    err->error = "compilation_error";
    err->reason = r;
    return -1;
}

int stt_design_check(stt_qs_pool_t *qs, const stt_json_t *ddoc, stt_arena_t *a, stt_qs_err_t *err)
{
    if (check_fields(a, err, ddoc) != 0) return -1;
    const stt_json_t *o = stt_json_get(ddoc, "options");
    if (o && stt_json_is_true(stt_json_get(o, "partitioned")))
        return fail(a, err, 400, "invalid_design_doc",
                    "partitioned option cannot be true in a non-partitioned database.");
    const stt_json_t *views = stt_json_get(ddoc, "views");
    const stt_json_t *jl = stt_json_get(ddoc, "language");
    const char *lang = jl ? jl->u.s : "javascript";
    for (uint32_t i = 0; views && i < views->len; i++) {
        const stt_json_member_t *m = &views->u.members[i];
        if (m->keylen == 3 && memcmp(m->key, "lib", 3) == 0) continue;
        const stt_json_t *map = stt_json_get(&m->val, "map");
        if (map->type == STT_JSON_STRING && map->len == 0) return fail(a, err, 404, "not_found", "missing function");
        const stt_json_t *red = stt_json_get(&m->val, "reduce");
        if (red && red->u.s[0] == '_' && !builtin_reduce(red->u.s)) {
            char r[400];
            snprintf(r, sizeof(r), "`%.*s` is not a supported reduce function.", (int)red->len, red->u.s);
            return fail(a, err, 400, "invalid_design_doc", r);
        }
    }
    /* compiled only where a query server exists: CouchDB stores a python view
     * and answers unknown_query_language when it is queried */
    if (!views || !qs || !stt_qs_has_lang(qs, lang) || strcmp(lang, "query") == 0) return 0;
    for (uint32_t i = 0; i < views->len; i++) {
        const stt_json_member_t *m = &views->u.members[i];
        if (m->keylen == 3 && memcmp(m->key, "lib", 3) == 0) continue;
        if (compile(qs, lang, "map", m, stt_json_get(&m->val, "map"), a, err) != 0) return -1;
        const stt_json_t *red = stt_json_get(&m->val, "reduce");
        if (red && red->u.s[0] != '_' && compile(qs, lang, "reduce", m, red, a, err) != 0) return -1;
    }
    return 0;
}
