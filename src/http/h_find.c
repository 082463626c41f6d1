/* Mango queries without secondary indexes: POST _find, POST _explain and the
 * _index endpoints.
 *
 * settee keeps no Mango indexes. _find answers every query the way CouchDB answers
 * one that no index serves: a scan of _all_docs in id order on one snapshot, each
 * winner rendered, parsed and matched against the compiled selector, design docs
 * skipped (CouchDB's all_docs cursor skips them too), with the warning "No matching
 * index found...". Requests are validated as CouchDB's mango_opts does, with its
 * error names ("missing_required_key", "invalid_key", "invalid_sort_json"...);
 * use_index, r, update, stable, stale and allow_fallback are checked and then have
 * nothing to act on (no index to pick, update or insist on). Results stream in
 * chunks, the scan resuming after the last id examined, as _all_docs does.
 *
 * Sort. CouchDB refuses a sort that no index covers (400 no_usable_index) except a
 * sort on _id alone. settee sorts the matches in memory instead, a deliberate
 * leniency: clients that create an index and then sort by it work although the
 * index is never built. Only docs holding every sort field take part, as only
 * those would be in CouchDB's json index. Values compare by CouchDB's view
 * collation, ties by doc id, all in the one direction CouchDB allows. A sort on _id
 * alone is the scan order itself. Any other sort keeps the best skip+limit matches
 * in a bounded max-heap (sort values and id only: docs are read again from the
 * snapshot to be sent), so a small page of a large database costs little memory;
 * when skip+limit is above MAX_SORT and more matches than that exist, the query is
 * refused with 400 rather than held in memory.
 *
 * Bookmarks. A bookmark is base64url of the JSON array [v1, ..., vn, id]: the sort
 * values and id of the last doc sent (n = 0 in id order). A request carrying one
 * resumes strictly after that position and then applies skip, as CouchDB resumes
 * after its bookmark's view key with skip + 1. Being a position rather than a
 * count, paging visits every match once even while docs before it change.
 *
 * _index stores json index definitions where and as CouchDB does: a view in a
 * design doc with "language": "query" ({"map": {"fields": {...},
 * "partial_filter_selector": {...}}, "reduce": "_count", "options": {"def": ...}}),
 * so they replicate and read back like CouchDB's. settee lists and deletes them
 * but never uses them to answer a query; they exist so that clients which create
 * an index before querying (pouchdb-find, Fauxton) work. Design docs are written
 * synchronously through the store, read-modify-write with a retry on conflict. */
#include "src/http/http.h"
#include "access/access.h"
#include "replication/replication.h"
#include "replication/selector.h"
#include "src/common/codec.h"
#include "src/common/err.h"
#include <errno.h>
#include <openssl/evp.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define CHUNK (64 * 1024)
#define DEFAULT_LIMIT 25
/* Matches an in-memory sort may hold, and the bytes of their sort values. */
#define MAX_SORT 100000
#define MAX_SORT_BYTES (64u << 20)
/* Longest term quoted back in an error reason. */
#define MAX_TERM 200

static const char no_index_warning[] = "No matching index found, create an index to optimize query time.";

/* ------------------------------------------------------------------ errors */

/* A Mango error: CouchDB's status, error name and formatted reason. */
static void mango_error(stt_hreq_t *r, int status, const char *error, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void mango_error(stt_hreq_t *r, int status, const char *error, const char *fmt, ...)
{
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    stt_reply_error_raw(r, status, error, reason);
}

/* CouchDB quotes a bad value as an Erlang term; its JSON is the closest we can
 * say. Cut to MAX_TERM bytes (in r's arena). */
static const char *term(stt_hreq_t *r, const stt_json_t *v)
{
    stt_buf_t b = STT_BUF_INIT;
    stt_json_write(&b, v);
    size_t n = b.len > MAX_TERM ? MAX_TERM : b.len;
    char *s = stt_arena_strndup(&r->arena, b.base, n);
    stt_buf_free(&b);
    return s;
}

/* The selector compiler gives CouchDB's reasons; the error names go with them. */
static void selector_error(stt_hreq_t *r, const char *reason)
{
    static const struct {
        const char *prefix, *error;
    } names[] = {
        {"Invalid operator", "invalid_operator"},  {"Bad argument", "bad_arg"},
        {"Unsupported operator", "not_supported"}, {"One or more conditions", "invalid_selector"},
        {"Invalid field name", "bad_field"},
    };
    const char *error = "bad_request";
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strncmp(reason, names[i].prefix, strlen(names[i].prefix)) == 0) error = names[i].error;
    stt_reply_error_raw(r, 400, error, reason);
}

/* jiffy reads a number without '.', 'e' or 'E' as an integer: mango_opts wants
 * those. Integers past 64 bits saturate (a limit that large means "all"). */
static bool non_neg_int(const stt_json_t *v, uint64_t *out)
{
    if (v->type != STT_JSON_NUMBER || v->len == 0 || v->u.s[0] == '-') return false;
    uint64_t acc = 0;
    for (uint32_t i = 0; i < v->len; i++) {
        char ch = v->u.s[i];
        if (ch < '0' || ch > '9') return false;
        unsigned d = (unsigned)(ch - '0');
        acc = acc > (UINT64_MAX - d) / 10 ? UINT64_MAX : acc * 10 + d;
    }
    *out = acc;
    return true;
}

static bool is_bool(const stt_json_t *v)
{
    return v->type == STT_JSON_TRUE || v->type == STT_JSON_FALSE;
}

static bool str_is(const char *s, size_t len, const char *lit)
{
    return len == strlen(lit) && memcmp(s, lit, len) == 0;
}

/* mango_opts:validate's last check: a member it does not know is an error. 0, or
 * replies 400 invalid_key and returns -1. */
static int known_keys(stt_hreq_t *r, const stt_json_t *obj, const char *const *known, size_t nknown)
{
    for (uint32_t i = 0; i < obj->len; i++) {
        const stt_json_member_t *m = &obj->u.members[i];
        bool ok = false;
        for (size_t k = 0; k < nknown && !ok; k++)
            ok = str_is(m->key, m->keylen, known[k]);
        if (!ok) {
            mango_error(r, 400, "invalid_key", "Invalid key %.*s for this request.",
                        (int)(m->keylen > MAX_TERM ? MAX_TERM : m->keylen), m->key);
            return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ sort specs */

typedef struct {
    const char *name;
    size_t namelen;
    stt_field_part_t *parts;
    uint32_t nparts;
} field_t;

/* A sort array as mango_sort:new reads it: "field" or {"field": "asc"|"desc"},
 * one direction for all. Fills fields (arena) and *desc; replies and returns -1 on
 * a bad spec. Shared by _find and index definitions. */
static int parse_sort(stt_hreq_t *r, const stt_json_t *sort, field_t **out, uint32_t *nout, bool *desc)
{
    if (sort->type != STT_JSON_ARRAY) {
        mango_error(r, 400, "invalid_sort_json", "Sort must be an array of sort specs, not: %s", term(r, sort));
        return -1;
    }
    field_t *f = stt_arena_alloc(&r->arena, (sort->len ? sort->len : 1) * sizeof(*f));
    int dir = 0; /* 0 none yet, 1 asc, 2 desc */
    for (uint32_t i = 0; i < sort->len; i++) {
        const stt_json_t *s = &sort->u.items[i];
        const char *name = NULL;
        size_t namelen = 0;
        int d = 1;
        if (s->type == STT_JSON_STRING) {
            name = s->u.s, namelen = s->len;
        } else if (s->type == STT_JSON_OBJECT && s->len == 1) {
            const stt_json_member_t *m = &s->u.members[0];
            const stt_json_t *v = &m->val;
            if (v->type == STT_JSON_STRING && str_is(v->u.s, v->len, "asc"))
                d = 1;
            else if (v->type == STT_JSON_STRING && str_is(v->u.s, v->len, "desc"))
                d = 2;
            else {
                mango_error(r, 400, "invalid_sort_dir", "Invalid sort direction: %s", term(r, v));
                return -1;
            }
            name = m->key, namelen = m->keylen;
        }
        if (!name || stt_field_parse(&r->arena, name, namelen, &f[i].parts, &f[i].nparts) != 0) {
            mango_error(r, 400, "invalid_sort_field", "Invalid sort field: %s", term(r, s));
            return -1;
        }
        f[i].name = name, f[i].namelen = namelen;
        if (dir && d != dir) {
            stt_reply_error_raw(r, 400, "unsupported_mixed_sort",
                                "Sorts currently only support a single direction for all fields.");
            return -1;
        }
        dir = d;
    }
    *out = f;
    *nout = sort->len;
    *desc = dir == 2;
    return 0;
}

/* ------------------------------------------------------------------ bookmarks */

static void bookmark_encode(stt_buf_t *out, const char *json, size_t len)
{
    stt_buf_t b = STT_BUF_INIT;
    stt_base64_encode(&b, json, len);
    for (size_t i = 0; i < b.len; i++) {
        char ch = b.base[i];
        if (ch == '=') break;
        stt_buf_appendc(out, ch == '+' ? '-' : ch == '/' ? '_' : ch);
    }
    stt_buf_free(&b);
}

/* base64url (padded or not) of a JSON array, parsed into r's arena. 0 or -1. */
static int bookmark_decode(stt_hreq_t *r, const char *s, size_t len, stt_json_t *out)
{
    if (len % 4 == 1) return -1;
    stt_buf_t t = STT_BUF_INIT, raw = STT_BUF_INIT;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == '=' && i + 2 >= len) break; /* padding, re-added below */
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
              ch == '_')) {
            stt_buf_free(&t);
            return -1;
        }
        stt_buf_appendc(&t, ch == '-' ? '+' : ch == '_' ? '/' : ch);
    }
    while (t.len % 4)
        stt_buf_appendc(&t, '=');
    int rc = t.len ? stt_base64_decode(&raw, t.base, t.len) : -1;
    if (rc == 0)
        rc = stt_json_parse(&r->arena, raw.base, raw.len, out, NULL, 0) == 0 && out->type == STT_JSON_ARRAY ? 0 : -1;
    stt_buf_free(&t);
    stt_buf_free(&raw);
    return rc;
}

/* ------------------------------------------------------------------ the query */

typedef struct {
    const stt_json_t *selector_json;
    stt_selector_t *sel;
    uint64_t limit, skip;
    field_t *sort;
    uint32_t nsort;
    bool desc;
    bool by_id; /* no sort, or _id alone: the scan order */
    field_t *fields;
    uint32_t nfields;
    const stt_json_t *fields_json, *sort_json;
    stt_buf_t use_index; /* normalized, as JSON (for _explain) */
    bool conflicts, execution_stats, update, stable, allow_fallback;
    uint64_t r;
    const stt_json_t *stale;
    const stt_json_t *bookmark_str; /* as given (NULL: none) */
    stt_json_t bookmark;            /* decoded */
    bool have_bookmark;
} query_t;

static void query_free(query_t *q)
{
    stt_selector_free(q->sel);
    q->sel = NULL;
    stt_buf_free(&q->use_index);
}

/* use_index as mango_opts:validate_use_index normalizes it. */
static bool use_index_ok(const stt_json_t *v, stt_buf_t *out)
{
    stt_buf_reset(out);
    if (v->type == STT_JSON_NULL || (v->type == STT_JSON_ARRAY && v->len == 0)) {
        stt_buf_appends(out, "[]");
        return true;
    }
    if (v->type == STT_JSON_STRING) {
        const char *s = v->u.s, *slash = memchr(s, '/', v->len);
        stt_buf_appendc(out, '[');
        if (!slash) {
            stt_json_write(out, v);
        } else if (slash - s == 7 && memcmp(s, "_design", 7) == 0) {
            stt_json_write_str(out, slash + 1, v->len - 8);
        } else {
            stt_json_write_str(out, s, (size_t)(slash - s));
            stt_buf_appendc(out, ',');
            stt_json_write_str(out, slash + 1, v->len - (size_t)(slash - s) - 1);
        }
        stt_buf_appendc(out, ']');
        return true;
    }
    if (v->type == STT_JSON_ARRAY && v->len <= 2 && stt_json_is_str(&v->u.items[0]) &&
        (v->len == 1 || stt_json_is_str(&v->u.items[1]))) {
        stt_json_write(out, v);
        return true;
    }
    return false;
}

/* Validates a _find/_explain body in mango_opts:validate_find's order. 0, or
 * replies 400 and returns -1 (with nothing left to free). */
static int parse_query(stt_hreq_t *r, const stt_json_t *body, query_t *q)
{
    static const char *const known[] = {
        "selector",      "use_index", "bookmark",  "limit", "skip",   "sort",   "fields",
        "partition",     "r",         "conflicts", "stale", "update", "stable", "execution_stats",
        "allow_fallback"};
    memset(q, 0, sizeof(*q));
    q->limit = DEFAULT_LIMIT;
    q->update = true;
    q->allow_fallback = true;
    q->r = 1;
    const stt_json_t *v;
    char err[256];

    v = stt_json_get(body, "selector");
    if (!v) {
        stt_reply_error_raw(r, 400, "missing_required_key", "Missing required key: selector");
        goto fail;
    }
    if (v->type != STT_JSON_OBJECT) {
        mango_error(r, 400, "invalid_selector_json", "Selector must be a JSON object, not: %s", term(r, v));
        goto fail;
    }
    if (stt_selector_compile(&r->arena, v, &q->sel, err, sizeof(err)) != 0) {
        selector_error(r, err);
        goto fail;
    }
    q->selector_json = v;

    if ((v = stt_json_get(body, "use_index")) != NULL) {
        if (!use_index_ok(v, &q->use_index)) {
            mango_error(r, 400, "invalid_index_name", "Invalid index name: %s", term(r, v));
            goto fail;
        }
    } else {
        stt_buf_appends(&q->use_index, "[]");
    }
    if ((v = stt_json_get(body, "bookmark")) != NULL && v->type != STT_JSON_NULL) {
        if (v->type != STT_JSON_STRING) {
            mango_error(r, 400, "invalid_bookmark", "Invalid bookmark value: %s", term(r, v));
            goto fail;
        }
        /* "" is no bookmark (CouchDB's nil); so is "nil", which is what a query
         * that returned nothing hands back */
        if (v->len && !str_is(v->u.s, v->len, "nil")) {
            q->bookmark_str = v;
            if (bookmark_decode(r, v->u.s, v->len, &q->bookmark) != 0) {
                mango_error(r, 400, "invalid_bookmark", "Invalid bookmark value: %s", term(r, v));
                goto fail;
            }
            q->have_bookmark = true;
        }
    }
    if ((v = stt_json_get(body, "limit")) != NULL && !non_neg_int(v, &q->limit)) {
        mango_error(r, 400, "invalid_non_neg_integer", "%s is not an integer greater than or equal to zero",
                    term(r, v));
        goto fail;
    }
    if ((v = stt_json_get(body, "skip")) != NULL && !non_neg_int(v, &q->skip)) {
        mango_error(r, 400, "invalid_non_neg_integer", "%s is not an integer greater than or equal to zero",
                    term(r, v));
        goto fail;
    }
    if ((v = stt_json_get(body, "sort")) != NULL) {
        if (parse_sort(r, v, &q->sort, &q->nsort, &q->desc) != 0) goto fail;
        q->sort_json = v;
    }
    q->by_id = q->nsort == 0 || (q->nsort == 1 && str_is(q->sort[0].name, q->sort[0].namelen, "_id"));
    if ((v = stt_json_get(body, "fields")) != NULL) {
        if (v->type != STT_JSON_ARRAY) {
            mango_error(r, 400, "invalid_fields", "Fields must be an array of strings, not: %s", term(r, v));
            goto fail;
        }
        q->fields = stt_arena_alloc(&r->arena, (v->len ? v->len : 1) * sizeof(*q->fields));
        for (uint32_t i = 0; i < v->len; i++) {
            const stt_json_t *f = &v->u.items[i];
            if (f->type != STT_JSON_STRING) {
                mango_error(r, 400, "invalid_field", "Invalid JSON for field spec: %s", term(r, f));
                goto fail;
            }
            field_t *fl = &q->fields[i];
            fl->name = f->u.s, fl->namelen = f->len;
            /* a name that cannot be a path ("", "a..b") is never found, as in
             * CouchDB where it is accepted and then matches nothing */
            if (stt_field_parse(&r->arena, f->u.s, f->len, &fl->parts, &fl->nparts) != 0) fl->nparts = 0;
        }
        q->nfields = v->len;
        q->fields_json = v;
    }
    if ((v = stt_json_get(body, "partition")) != NULL) {
        if (v->type != STT_JSON_STRING) {
            mango_error(r, 400, "invalid_string", "Invalid string: %s", term(r, v));
            goto fail;
        }
        if (v->len) {
            stt_reply_error_raw(r, 400, "bad_request", "`partition` parameter is not supported in this db.");
            goto fail;
        }
    }
    if ((v = stt_json_get(body, "r")) != NULL && (!non_neg_int(v, &q->r) || q->r == 0)) {
        mango_error(r, 400, "invalid_pos_integer", "%s is not an integer greater than zero", term(r, v));
        goto fail;
    }
    static const struct {
        const char *key;
        size_t off;
    } bools[] = {
        {"conflicts", offsetof(query_t, conflicts)},
        {"update", offsetof(query_t, update)},
        {"stable", offsetof(query_t, stable)},
        {"execution_stats", offsetof(query_t, execution_stats)},
        {"allow_fallback", offsetof(query_t, allow_fallback)},
    };
    for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
        if ((v = stt_json_get(body, bools[i].key)) == NULL) continue;
        if (!is_bool(v)) {
            mango_error(r, 400, "invalid_boolean", "Invalid boolean value: %s", term(r, v));
            goto fail;
        }
        *(bool *)((char *)q + bools[i].off) = v->type == STT_JSON_TRUE;
    }
    if ((v = stt_json_get(body, "stale")) != NULL) {
        if (!(v->type == STT_JSON_FALSE ||
              (v->type == STT_JSON_STRING && (str_is(v->u.s, v->len, "ok") || str_is(v->u.s, v->len, "false"))))) {
            mango_error(r, 400, "invalid_value", "Invalid value for stale: %s", term(r, v));
            goto fail;
        }
        q->stale = v;
    }
    if (known_keys(r, body, known, sizeof(known) / sizeof(known[0])) != 0) goto fail;
    /* the bookmark must name a position in this query's order */
    if (q->have_bookmark) {
        const stt_json_t *b = &q->bookmark;
        uint32_t want = q->by_id ? 1 : q->nsort + 1;
        if (b->len != want || b->u.items[b->len - 1].type != STT_JSON_STRING) {
            mango_error(r, 400, "invalid_bookmark", "Invalid bookmark value: %s", term(r, q->bookmark_str));
            goto fail;
        }
    }
    return 0;
fail:
    query_free(q);
    return -1;
}

/* ------------------------------------------------------------------ projection */

/* The doc CouchDB's mango_fields:extract builds: for each field found, its value
 * set at its path in a new object (parents created as objects, keys in the order
 * first set; a field already holding a whole value is not entered again). */
typedef struct pnode pnode_t;
struct pnode {
    const char *key;
    size_t keylen;
    const stt_json_t *val; /* the whole value, or NULL for an object built of kids */
    pnode_t *kids, *last, *next;
};

static void write_pnode(stt_buf_t *out, const pnode_t *n)
{
    stt_buf_appendc(out, '{');
    for (const pnode_t *k = n->kids; k; k = k->next) {
        if (k != n->kids) stt_buf_appendc(out, ',');
        stt_json_write_str(out, k->key, k->keylen);
        stt_buf_appendc(out, ':');
        if (k->val)
            stt_json_write(out, k->val);
        else
            write_pnode(out, k);
    }
    stt_buf_appendc(out, '}');
}

static void project(stt_arena_t *a, const query_t *q, const stt_json_t *doc, stt_buf_t *out)
{
    pnode_t root = {0};
    for (uint32_t f = 0; f < q->nfields; f++) {
        const field_t *fl = &q->fields[f];
        const stt_json_t *v = fl->nparts ? stt_field_get(doc, fl->parts, fl->nparts) : NULL;
        if (!v) continue;
        pnode_t *n = &root;
        for (uint32_t i = 0; i < fl->nparts && !n->val; i++) {
            const stt_field_part_t *p = &fl->parts[i];
            pnode_t *k = n->kids;
            while (k && !(k->keylen == p->len && memcmp(k->key, p->s, p->len) == 0))
                k = k->next;
            if (!k) {
                k = stt_arena_alloc(a, sizeof(*k));
                memset(k, 0, sizeof(*k));
                k->key = p->s, k->keylen = p->len;
                if (n->last)
                    n->last->next = k;
                else
                    n->kids = k;
                n->last = k;
            }
            if (i + 1 == fl->nparts) {
                k->val = v; /* replaces what deeper fields set below it */
                k->kids = k->last = NULL;
            }
            n = k;
        }
    }
    write_pnode(out, &root);
}

/* ------------------------------------------------------------------ sorted matches */

/* One match kept for an in-memory sort: its sort values and id, in one block. */
typedef struct {
    size_t bytes;
    const char *id;
    size_t idlen;
    stt_json_t keys[]; /* nsort values, then their copied contents */
} entry_t;

static size_t al8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

static size_t clone_size(const stt_json_t *v)
{
    size_t n = 0;
    switch (v->type) {
    case STT_JSON_NUMBER:
    case STT_JSON_STRING:
        return al8((size_t)v->len + 1);
    case STT_JSON_ARRAY:
        n = al8(v->len * sizeof(stt_json_t));
        for (uint32_t i = 0; i < v->len; i++)
            n += clone_size(&v->u.items[i]);
        return n;
    case STT_JSON_OBJECT:
        n = al8(v->len * sizeof(stt_json_member_t));
        for (uint32_t i = 0; i < v->len; i++)
            n += al8((size_t)v->u.members[i].keylen + 1) + clone_size(&v->u.members[i].val);
        return n;
    default:
        return 0;
    }
}

static char *copy_str(char **p, const char *s, size_t len)
{
    char *d = *p;
    memcpy(d, s, len);
    d[len] = '\0';
    *p += al8(len + 1);
    return d;
}

/* Deep copy into the bump space at *p, sized by clone_size. */
static void clone_into(stt_json_t *dst, const stt_json_t *src, char **p)
{
    *dst = *src;
    switch (src->type) {
    case STT_JSON_NUMBER:
    case STT_JSON_STRING:
        dst->u.s = copy_str(p, src->u.s, src->len);
        break;
    case STT_JSON_ARRAY:
        dst->u.items = (stt_json_t *)*p;
        *p += al8(src->len * sizeof(stt_json_t));
        for (uint32_t i = 0; i < src->len; i++)
            clone_into(&dst->u.items[i], &src->u.items[i], p);
        break;
    case STT_JSON_OBJECT:
        dst->u.members = (stt_json_member_t *)*p;
        *p += al8(src->len * sizeof(stt_json_member_t));
        for (uint32_t i = 0; i < src->len; i++) {
            const stt_json_member_t *m = &src->u.members[i];
            dst->u.members[i].key = copy_str(p, m->key, m->keylen);
            dst->u.members[i].keylen = m->keylen;
            clone_into(&dst->u.members[i].val, &m->val, p);
        }
        break;
    default:
        break;
    }
}

/* ------------------------------------------------------------------ _find */

typedef struct {
    stt_hreq_t *r;
    stt_reader_t *rd;
    query_t q;
    stt_render_opts_t ro;
    struct timespec t0;
    uint64_t examined, returned, skipped;
    /* id order: the scan resumes after the last id examined */
    stt_range_t range;
    stt_buf_t last;
    bool have_last, scan_done, chunk_full;
    /* in-memory sort: a max-heap of the best cap matches, then sorted */
    entry_t **heap;
    size_t nheap, capheap, cap, next, bytes;
    bool bounded;            /* skip + limit > MAX_SORT: a full heap is the limit */
    bool too_many;           /* a match could not be kept */
    const stt_json_t **keyp; /* scratch: the sort values of the doc at hand */
    stt_json_t *keyv;
    /* output */
    bool started;
    stt_buf_t *out;
    stt_buf_t doc;      /* rendered winner, reused */
    stt_buf_t bookmark; /* JSON position of the last doc sent */
    /* _users read by a non-admin: only the caller's own user doc is visible, as
     * CouchDB's after_doc_read makes every other doc not_found */
    stt_buf_t only_id;
    bool only;
    stt_access_t *acc; /* access db read by a non-admin: their view */
} find_t;

/* <0, 0, >0 as (ka, ida) comes before, with or after (kb, idb) in the query's
 * order: sort values by collation, then the id's bytes, all reversed for desc. */
static int order(const find_t *c, const stt_json_t *ka, const char *ida, size_t idalen, const stt_json_t *kb,
                 const char *idb, size_t idblen)
{
    int cmp = 0;
    for (uint32_t i = 0; i < c->q.nsort && !cmp; i++)
        cmp = stt_json_collate(&ka[i], &kb[i]);
    if (!cmp) {
        cmp = memcmp(ida, idb, idalen < idblen ? idalen : idblen);
        if (!cmp) cmp = (idalen > idblen) - (idalen < idblen);
    }
    return c->q.desc ? -cmp : cmp;
}

static int entry_cmp(const find_t *c, const entry_t *a, const entry_t *b)
{
    return order(c, a->keys, a->id, a->idlen, b->keys, b->id, b->idlen);
}

static void heap_down(find_t *c, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < c->nheap && entry_cmp(c, c->heap[l], c->heap[m]) > 0) m = l;
        if (l + 1 < c->nheap && entry_cmp(c, c->heap[l + 1], c->heap[m]) > 0) m = l + 1;
        if (m == i) return;
        entry_t *t = c->heap[i];
        c->heap[i] = c->heap[m];
        c->heap[m] = t;
        i = m;
    }
}

static void heap_up(find_t *c, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (entry_cmp(c, c->heap[i], c->heap[p]) <= 0) return;
        entry_t *t = c->heap[i];
        c->heap[i] = c->heap[p];
        c->heap[p] = t;
        i = p;
    }
}

static entry_t *entry_new(find_t *c, const stt_json_t **keys, const char *id, size_t idlen)
{
    size_t head = al8(sizeof(entry_t) + c->q.nsort * sizeof(stt_json_t)), n = head + al8(idlen + 1);
    for (uint32_t i = 0; i < c->q.nsort; i++)
        n += clone_size(keys[i]);
    entry_t *e = stt_xmalloc(n);
    char *p = (char *)e + head;
    e->bytes = n;
    e->idlen = idlen;
    e->id = copy_str(&p, id, idlen);
    for (uint32_t i = 0; i < c->q.nsort; i++)
        clone_into(&e->keys[i], keys[i], &p);
    return e;
}

/* Offers a match to the heap. Returns -1 when keeping it would hold more than
 * MAX_SORT matches (only when skip + limit is above that) or MAX_SORT_BYTES. */
static int keep(find_t *c, const stt_json_t *doc, const char *id, size_t idlen)
{
    uint32_t n = c->q.nsort;
    for (uint32_t i = 0; i < n; i++) {
        if ((c->keyp[i] = stt_field_get(doc, c->q.sort[i].parts, c->q.sort[i].nparts)) == NULL)
            return 0; /* not in a json index on these fields */
        c->keyv[i] = *c->keyp[i];
    }
    if (c->q.have_bookmark) {
        const stt_json_t *bm = c->q.bookmark.u.items;
        if (order(c, c->keyv, id, idlen, bm, bm[n].u.s, bm[n].len) <= 0)
            return 0; /* at or before where the bookmark's page ended */
    }
    if (c->cap == 0) return 0;
    entry_t *e;
    if (c->nheap == c->cap) {
        if (c->bounded) return -1;
        const entry_t *top = c->heap[0];
        if (order(c, c->keyv, id, idlen, top->keys, top->id, top->idlen) >= 0) return 0;
        e = entry_new(c, c->keyp, id, idlen);
        c->bytes = c->bytes - top->bytes + e->bytes;
        free(c->heap[0]);
        c->heap[0] = e;
        heap_down(c, 0);
    } else {
        if (c->nheap == c->capheap) {
            c->capheap = c->capheap ? c->capheap * 2 : 64;
            if (c->capheap > c->cap) c->capheap = c->cap;
            c->heap = stt_xrealloc(c->heap, c->capheap * sizeof(*c->heap));
        }
        e = entry_new(c, c->keyp, id, idlen);
        c->bytes += e->bytes;
        c->heap[c->nheap++] = e;
        heap_up(c, c->nheap - 1);
    }
    return c->bytes > MAX_SORT_BYTES ? -1 : 0;
}

/* Renders the winner of d into c->doc and parses it into a. NULL when it cannot. */
static const stt_json_t *parse_winner(find_t *c, stt_doc_t *d, stt_arena_t *a, stt_json_t *out)
{
    stt_buf_reset(&c->doc);
    int node = c->acc ? stt_access_winner(c->acc, d) : d->winner; /* access db: the user's */
    if (node < 0 || (d->tree.nodes[node].flags & STT_REV_DELETED) ||
        stt_doc_render(c->rd, d, node, &c->ro, &c->doc) != 0)
        return NULL;
    if (stt_json_parse(a, c->doc.base, c->doc.len, out, NULL, 0) != 0 || out->type != STT_JSON_OBJECT) return NULL;
    return out;
}

/* Appends one result doc and remembers its position for the bookmark. */
static void emit(find_t *c, const stt_json_t *doc, stt_arena_t *a, const stt_json_t *keys, const char *id, size_t idlen)
{
    stt_buf_t *out = c->out;
    if (c->returned++) stt_buf_appendc(out, ',');
    if (c->q.fields_json && c->q.nfields)
        project(a, &c->q, doc, out);
    else
        stt_buf_append(out, c->doc.base, c->doc.len);
    stt_buf_reset(&c->bookmark);
    stt_buf_appendc(&c->bookmark, '[');
    for (uint32_t i = 0; keys && i < c->q.nsort; i++) {
        stt_json_write(&c->bookmark, &keys[i]);
        stt_buf_appendc(&c->bookmark, ',');
    }
    stt_json_write_str(&c->bookmark, id, idlen);
    stt_buf_appendc(&c->bookmark, ']');
}

static bool is_design(const char *id, size_t idlen)
{
    return idlen >= 8 && memcmp(id, "_design/", 8) == 0;
}

/* Examines one doc of the scan: the selector, then either the result or the heap. */
static int on_doc(void *ctx, const stt_doc_summary_t *s)
{
    find_t *c = ctx;
    if (c->have_last && s->idlen == c->last.len && memcmp(s->id, c->last.base, s->idlen) == 0)
        return 0; /* where the previous chunk (or the bookmark) ended */
    if (c->q.by_id && c->returned >= c->q.limit) {
        c->scan_done = true;
        return 1;
    }
    stt_buf_reset(&c->last);
    stt_buf_append(&c->last, s->id, s->idlen);
    c->have_last = true;
    if (is_design(s->id, s->idlen)) return 0;
    if (c->only && (s->idlen != c->only_id.len || memcmp(s->id, c->only_id.base, s->idlen) != 0)) return 0;
    c->examined++;
    stt_doc_t d;
    int rc = stt_doc_from_summary(s, &d);
    if (rc) rc = stt_doc_get(c->rd, s->id, s->idlen, &d);
    if (rc) return 0;
    stt_arena_t a = STT_ARENA_INIT;
    stt_json_t doc;
    int stop = 0;
    if (parse_winner(c, &d, &a, &doc) && stt_selector_match(c->q.sel, &doc)) {
        if (!c->q.by_id) {
            if (keep(c, &doc, s->id, s->idlen) != 0) {
                c->too_many = true;
                stop = 1;
            }
        } else if (c->skipped < c->q.skip) {
            c->skipped++;
        } else {
            emit(c, &doc, &a, NULL, s->id, s->idlen);
            if (c->out->len >= CHUNK) {
                c->chunk_full = true;
                stop = 1;
            }
        }
    }
    stt_arena_free(&a);
    stt_doc_free(&d);
    return stop;
}

/* Sends the sorted match at index i (the snapshot still holds it). */
static void emit_entry(find_t *c, const entry_t *e)
{
    stt_doc_t d;
    if (stt_doc_get(c->rd, e->id, e->idlen, &d) != 0) return;
    stt_arena_t a = STT_ARENA_INIT;
    stt_json_t doc;
    if (parse_winner(c, &d, &a, &doc)) emit(c, &doc, &a, e->keys, e->id, e->idlen);
    stt_arena_free(&a);
    stt_doc_free(&d);
}

static double elapsed_ms(const find_t *c)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - c->t0.tv_sec) * 1e3 + (double)(t.tv_nsec - c->t0.tv_nsec) / 1e6;
}

static void find_tail(find_t *c, stt_buf_t *out)
{
    stt_buf_appends(out, "],\"bookmark\":");
    if (c->returned) {
        stt_buf_appendc(out, '"');
        bookmark_encode(out, c->bookmark.base, c->bookmark.len);
        stt_buf_appendc(out, '"');
    } else if (c->q.bookmark_str) {
        /* nothing new: the position stays where it was, as in CouchDB */
        stt_json_write(out, c->q.bookmark_str);
    } else {
        stt_buf_appends(out, "\"nil\"");
    }
    stt_buf_appends(out, ",\"warning\":");
    stt_json_write_cstr(out, no_index_warning);
    if (c->q.execution_stats) {
        stt_buf_appendf(out,
                        ",\"execution_stats\":{\"total_keys_examined\":0,\"total_docs_examined\":%llu,"
                        "\"total_quorum_docs_examined\":0,\"results_returned\":%llu,\"execution_time_ms\":%.3f}",
                        (unsigned long long)c->examined, (unsigned long long)c->returned, elapsed_ms(c));
    }
    stt_buf_appends(out, "}\n");
}

static int find_produce(stt_stream_t *s, stt_buf_t *out)
{
    find_t *c = s->ctx;
    c->out = out;
    if (!c->started) {
        c->started = true;
        stt_buf_appends(out, "{\"docs\":[");
    }
    if (!c->q.by_id) {
        while (c->next < c->nheap && out->len < CHUNK)
            emit_entry(c, c->heap[c->next++]);
        if (c->next < c->nheap) return 1;
    } else if (!c->scan_done) {
        stt_range_t rg = c->range;
        if (c->have_last) rg.start = c->last.base, rg.startlen = c->last.len;
        c->chunk_full = false;
        int rc = stt_docs_scan(c->rd, &rg, on_doc, c);
        if (rc == 0 && c->chunk_full && !c->scan_done) return 1;
        c->scan_done = true;
    }
    find_tail(c, out);
    return 0;
}

static void find_free(find_t *c)
{
    for (size_t i = 0; i < c->nheap; i++)
        free(c->heap[i]);
    free(c->heap);
    c->heap = NULL;
    c->nheap = 0;
    if (c->rd) stt_reader_close(c->rd);
    c->rd = NULL;
    stt_buf_free(&c->last);
    stt_buf_free(&c->doc);
    stt_buf_free(&c->bookmark);
    stt_buf_free(&c->only_id);
    query_free(&c->q);
}

static void find_stop(stt_stream_t *s)
{
    find_free(s->ctx);
}

static const stt_stream_ops_t find_ops = {find_produce, find_stop};

static int heap_sort_cmp(const void *a, const void *b, void *ctx)
{
    return entry_cmp(ctx, *(entry_t *const *)a, *(entry_t *const *)b);
}

/* Reads and validates a _find/_explain request body. 0, or -1 after replying. */
static int read_query(stt_hreq_t *r, query_t *q)
{
    if (!stt_require_json(r)) return -1;
    stt_json_t *body = stt_arena_alloc(&r->arena, sizeof(*body));
    if (stt_body_json(r, body, "Request body must be a JSON object") != 0) return -1;
    return parse_query(r, body, q);
}

void stt_h_find(stt_hreq_t *r)
{
    find_t *c = stt_arena_alloc(&r->arena, sizeof(*c));
    memset(c, 0, sizeof(*c));
    clock_gettime(CLOCK_MONOTONIC, &c->t0);
    c->r = r;
    c->acc = stt__access(r);
    if (read_query(r, &c->q) != 0) return;
    c->ro.conflicts = c->q.conflicts;
    size_t nlen;
    const char *dbn = stt_db_name(r->db, &nlen);
    if (nlen == sizeof(STT_USERS_DB) - 1 && memcmp(dbn, STT_USERS_DB, nlen) == 0 &&
        !stt_security_is_db_admin(stt__db_security(r), &r->user)) {
        c->only = true;
        stt_buf_appends(&c->only_id, STT_USER_PREFIX);
        if (r->user.name && !r->user.name_is_number)
            stt_buf_append(&c->only_id, r->user.name, r->user.namelen);
        else
            stt_buf_appendc(&c->only_id, '\0'); /* anonymous: no doc is its own */
    }
    int rc = stt_reader_open(r->db, &c->rd);
    if (rc) {
        find_free(c);
        stt_reply_error(r, rc, NULL);
        return;
    }
    c->range.inclusive_end = true;
    c->range.descending = c->q.by_id && c->q.desc;
    if (c->q.by_id && c->q.have_bookmark) {
        const stt_json_t *id = &c->q.bookmark.u.items[0];
        stt_buf_append(&c->last, id->u.s, id->len);
        c->have_last = true;
    }
    if (!c->q.by_id) {
        /* the whole scan happens now, so that a query too large to sort still
         * gets its 400 */
        uint64_t cap = c->q.skip + c->q.limit < c->q.skip ? UINT64_MAX : c->q.skip + c->q.limit;
        c->bounded = cap > MAX_SORT;
        c->cap = c->bounded ? MAX_SORT : (size_t)cap;
        c->keyp = stt_arena_alloc(&r->arena, c->q.nsort * sizeof(*c->keyp));
        c->keyv = stt_arena_alloc(&r->arena, c->q.nsort * sizeof(*c->keyv));
        rc = stt_docs_scan(c->rd, &c->range, on_doc, c);
        if (rc || c->too_many) {
            find_free(c);
            if (rc)
                stt_reply_error(r, rc, NULL);
            else
                mango_error(r, 400, "too_many_results",
                            "settee sorts in memory, without an index: more than %d matching docs (or %u MB of "
                            "sort values) would be held. Narrow the selector or lower skip + limit.",
                            MAX_SORT, MAX_SORT_BYTES >> 20);
            return;
        }
        if (c->nheap) qsort_r(c->heap, c->nheap, sizeof(*c->heap), heap_sort_cmp, c);
        c->next = c->q.skip < c->nheap ? (size_t)c->q.skip : c->nheap;
    }
    stt_stream_start(r, 200, "application/json", &find_ops, c,
                     (const char *const[]){"cache-control", "must-revalidate", NULL});
}

/* ------------------------------------------------------------------ _explain */

static void special_index_json(stt_buf_t *b)
{
    stt_buf_appends(b, "{\"ddoc\":null,\"name\":\"_all_docs\",\"type\":\"special\",\"def\":{\"fields\":[{\"_id\":"
                       "\"asc\"}]}}");
}

static void sort_object(stt_buf_t *b, const query_t *q)
{
    stt_buf_appendc(b, '{');
    for (uint32_t i = 0; i < q->nsort; i++) {
        if (i) stt_buf_appendc(b, ',');
        stt_json_write_str(b, q->sort[i].name, q->sort[i].namelen);
        stt_buf_appends(b, q->desc ? ":\"desc\"" : ":\"asc\"");
    }
    stt_buf_appendc(b, '}');
}

/* CouchDB's explain of a query the _all_docs index serves. The selector is shown
 * as given, not normalized as CouchDB shows it. */
void stt_h_explain(stt_hreq_t *r)
{
    query_t q;
    if (read_query(r, &q) != 0) return;
    const char *fields = q.fields_json && q.nfields ? NULL : "\"all_fields\"";
    stt_buf_t b = STT_BUF_INIT;
    size_t dblen;
    const char *db = stt_db_name(r->db, &dblen);
    stt_buf_appends(&b, "{\"dbname\":");
    stt_json_write_str(&b, db, dblen);
    stt_buf_appends(&b, ",\"index\":");
    special_index_json(&b);
    stt_buf_appends(&b, ",\"partitioned\":false,\"selector\":");
    stt_json_write(&b, q.selector_json);
    stt_buf_appends(&b, ",\"opts\":{\"use_index\":");
    stt_buf_append(&b, q.use_index.base, q.use_index.len);
    stt_buf_appends(&b, ",\"bookmark\":");
    if (q.bookmark_str)
        stt_json_write(&b, q.bookmark_str);
    else
        stt_buf_appends(&b, "\"nil\"");
    stt_buf_appendf(&b, ",\"limit\":%llu,\"skip\":%llu,\"sort\":", (unsigned long long)q.limit,
                    (unsigned long long)q.skip);
    sort_object(&b, &q);
    stt_buf_appends(&b, ",\"fields\":");
    if (fields)
        stt_buf_appends(&b, fields);
    else
        stt_json_write(&b, q.fields_json);
    stt_buf_appendf(&b, ",\"partition\":\"\",\"r\":%llu,\"conflicts\":%s,\"stale\":", (unsigned long long)q.r,
                    q.conflicts ? "true" : "false");
    if (q.stale)
        stt_json_write(&b, q.stale);
    else
        stt_buf_appends(&b, "false");
    stt_buf_appendf(&b,
                    ",\"update\":%s,\"stable\":%s,\"execution_stats\":%s,\"allow_fallback\":%s},\"limit\":%llu,"
                    "\"skip\":%llu,\"fields\":",
                    q.update ? "true" : "false", q.stable ? "true" : "false", q.execution_stats ? "true" : "false",
                    q.allow_fallback ? "true" : "false", (unsigned long long)q.limit, (unsigned long long)q.skip);
    if (fields)
        stt_buf_appends(&b, fields);
    else
        stt_json_write(&b, q.fields_json);
    stt_buf_appendf(&b,
                    ",\"mrargs\":{\"include_docs\":true,\"view_type\":\"map\",\"reduce\":false,\"partition\":null,"
                    "\"start_key\":null,\"end_key\":\"<MAX>\",\"direction\":\"%s\",\"stable\":%s,\"update\":%s,"
                    "\"conflicts\":%s},\"covering\":false,\"index_candidates\":[]}",
                    q.by_id && q.desc ? "rev" : "fwd", q.stable ? "true" : "false", q.update ? "true" : "false",
                    q.conflicts ? "true" : "\"undefined\"");
    query_free(&q);
    stt_reply_json(r, 200, &b);
}

/* ------------------------------------------------------------------ design docs */

/* The current winner of a design doc, parsed into r's arena. *found false (and
 * out untouched) when it does not exist or is deleted. 0 or a store error. */
static int ddoc_load(stt_hreq_t *r, const char *id, size_t idlen, stt_json_t *out, bool *found)
{
    stt_reader_t *rd;
    int rc = stt_reader_open(r->db, &rd);
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
        if (rc == 0) rc = stt_json_parse(&r->arena, b.base, b.len, out, NULL, 0);
        if (rc == 0) *found = out->type == STT_JSON_OBJECT;
        stt_buf_free(&b);
    }
    stt_doc_free(&d);
    stt_reader_close(rd);
    return rc;
}

/* Writes doc, a full JSON doc text (with _id, and _rev when it exists). 0,
 * STT_E_CONFLICT, or the parse/store error with *reason. */
static int ddoc_write(stt_hreq_t *r, const stt_buf_t *doc, const char **reason)
{
    stt_json_t obj;
    *reason = NULL;
    if (stt_json_parse(&r->arena, doc->base, doc->len, &obj, NULL, 0) != 0) return STT_E_INTERNAL;
    stt_doc_parse_opts_t po = {.new_edits = true};
    stt_doc_write_t w;
    int rc = stt_doc_parse(&r->arena, &obj, &po, &w, reason);
    if (rc) return rc;
    stt_doc_result_t res;
    rc = stt_doc_write(r->db, &w, 1, true, &res);
    return rc ? rc : res.err;
}

/* A json index of a design doc: its name and "map" definition. */
typedef struct {
    const char *ddoc;
    size_t ddoclen;
    const char *name;
    size_t namelen;
    const stt_json_t *map;
} index_t;

static bool is_query_ddoc(const stt_json_t *doc)
{
    const stt_json_t *lang = stt_json_get(doc, "language");
    return stt_json_is_str(lang) && str_is(lang->u.s, lang->len, "query");
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
static void index_json(stt_buf_t *b, const index_t *ix)
{
    stt_buf_appends(b, "{\"ddoc\":");
    stt_json_write_str(b, ix->ddoc, ix->ddoclen);
    stt_buf_appends(b, ",\"name\":");
    stt_json_write_str(b, ix->name, ix->namelen);
    stt_buf_appends(b, ",\"type\":\"json\",\"partitioned\":false,\"def\":{");
    bool any = false;
    for (uint32_t i = 0; i < ix->map->len; i++) {
        const stt_json_member_t *m = &ix->map->u.members[i];
        if (str_is(m->key, m->keylen, "partial_filter_selector") && m->val.type == STT_JSON_OBJECT && m->val.len == 0)
            continue;
        if (any) stt_buf_appendc(b, ',');
        any = true;
        stt_json_write_str(b, m->key, m->keylen);
        stt_buf_appendc(b, ':');
        if (!str_is(m->key, m->keylen, "fields") || m->val.type != STT_JSON_OBJECT) {
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

typedef struct {
    stt_hreq_t *r;
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
    stt_json_t *doc = stt_arena_alloc(&l->r->arena, sizeof(*doc));
    if (stt_doc_render(l->rd, &d, d.winner, &o, &b) == 0 &&
        stt_json_parse(&l->r->arena, b.base, b.len, doc, NULL, 0) == 0 && doc->type == STT_JSON_OBJECT &&
        is_query_ddoc(doc)) {
        const stt_json_t *views = stt_json_get(doc, "views");
        for (uint32_t i = 0; views && views->type == STT_JSON_OBJECT && i < views->len; i++) {
            const stt_json_member_t *m = &views->u.members[i];
            const stt_json_t *map = index_map(&m->val);
            if (!map) continue;
            if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 16;
                index_t *ix = stt_arena_alloc(&l->r->arena, cap * sizeof(*ix));
                if (l->n) memcpy(ix, l->ix, l->n * sizeof(*ix));
                l->ix = ix;
                l->cap = cap;
            }
            char *id = stt_arena_strndup(&l->r->arena, s->id, s->idlen);
            l->ix[l->n++] = (index_t){id, s->idlen, m->key, m->keylen, map};
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

/* Every json index of the db (in r's arena), sorted. 0 or a store error. */
static int list_indexes(stt_hreq_t *r, index_t **out, size_t *n)
{
    list_t l = {.r = r};
    int rc = stt_reader_open(r->db, &l.rd);
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

/* limit and skip as mango_httpd parses them (its error is a 500). */
static int index_param(stt_hreq_t *r, const char *key, int64_t min, int64_t *out)
{
    const stt_qparam_t *p = stt_q_get(r, key);
    if (!p) return 0;
    char *end;
    errno = 0;
    long long v = strtoll(p->val, &end, 10);
    if (p->vallen == 0 || *end || errno || v < min) {
        stt_reply_error_raw(r, 500, "invalid_list_index_params", "Index parameter ranges: limit > 1, skip > 0");
        return -1;
    }
    *out = v;
    return 0;
}

static void index_list(stt_hreq_t *r)
{
    index_t *ix = NULL;
    size_t n = 0;
    int rc = list_indexes(r, &ix, &n);
    if (rc) {
        stt_reply_error(r, rc, NULL);
        return;
    }
    int64_t total = (int64_t)n + 1, limit = total, skip = 0;
    if (index_param(r, "limit", 1, &limit) || index_param(r, "skip", 0, &skip)) return;
    if (skip > total) skip = total;
    stt_buf_t b = STT_BUF_INIT;
    stt_buf_appendf(&b, "{\"total_rows\":%lld,\"indexes\":[", (long long)total);
    /* _all_docs first: CouchDB's sort puts its null ddoc before any name */
    for (int64_t i = skip, k = 0; i < total && k < limit; i++, k++) {
        if (k) stt_buf_appendc(&b, ',');
        if (i == 0)
            special_index_json(&b);
        else
            index_json(&b, &ix[i - 1]);
    }
    stt_buf_appends(&b, "]}");
    stt_reply_json(r, 200, &b);
}

/* ------------------------------------------------------------------ POST _index */

static void hex_sha1(stt_buf_t *out, const void *data, size_t len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_sha1(), NULL);
    stt_hex_encode(out, md, mdlen);
}

static const stt_json_t *string_opt(stt_hreq_t *r, const stt_json_t *body, const char *key, bool *bad)
{
    const stt_json_t *v = stt_json_get(body, key);
    if (v && v->type != STT_JSON_STRING) {
        mango_error(r, 400, "invalid_string", "Invalid string: %s", term(r, v));
        *bad = true;
    }
    return v;
}

static void index_create(stt_hreq_t *r)
{
    static const char *const known[] = {"index", "type", "name", "ddoc", "w", "partitioned"};
    static const char *const def_known[] = {"fields", "partial_filter_selector"};
    if (!stt_require_json(r)) return;
    stt_json_t body;
    if (stt_body_json(r, &body, "Request body must be a JSON object") != 0) return;
    const stt_json_t *def = stt_json_get(&body, "index");
    if (!def) {
        stt_reply_error_raw(r, 400, "missing_required_key", "Missing required key: index");
        return;
    }
    bool bad = false;
    const stt_json_t *type = string_opt(r, &body, "type", &bad);
    const stt_json_t *name = bad ? NULL : string_opt(r, &body, "name", &bad);
    const stt_json_t *ddoc = bad ? NULL : string_opt(r, &body, "ddoc", &bad);
    if (bad) return;
    const stt_json_t *v;
    uint64_t w;
    if ((v = stt_json_get(&body, "w")) != NULL && (!non_neg_int(v, &w) || w == 0)) {
        mango_error(r, 400, "invalid_pos_integer", "%s is not an integer greater than zero", term(r, v));
        return;
    }
    if ((v = stt_json_get(&body, "partitioned")) != NULL) {
        if (!is_bool(v)) {
            mango_error(r, 400, "invalid_boolean", "Invalid boolean value: %s", term(r, v));
            return;
        }
        if (v->type == STT_JSON_TRUE) {
            stt_reply_error_raw(r, 400, "invalid_partitioned_option",
                                "Requested partitioned option does not match existing value on design document");
            return;
        }
    }
    if (known_keys(r, &body, known, sizeof(known) / sizeof(known[0])) != 0) return;
    if (type && !str_is(type->u.s, type->len, "json")) {
        if (str_is(type->u.s, type->len, "text") || str_is(type->u.s, type->len, "nouveau"))
            mango_error(r, 503, "required index service unavailable", "%s", type->u.s);
        else
            mango_error(r, 400, "invalid_index", "Invalid type for index: %s", term(r, type));
        return;
    }
    if (def->type != STT_JSON_OBJECT) {
        mango_error(r, 400, "invalid_index", "JSON indexes must be an object, not: %s", term(r, def));
        return;
    }
    const stt_json_t *fields = stt_json_get(def, "fields");
    if (!fields) {
        stt_reply_error_raw(r, 400, "missing_required_key", "Missing required key: fields");
        return;
    }
    field_t *sort;
    uint32_t nsort;
    bool desc;
    if (parse_sort(r, fields, &sort, &nsort, &desc) != 0) return;
    const stt_json_t *pfs = stt_json_get(def, "partial_filter_selector");
    if (pfs) {
        char err[256];
        stt_selector_t *sel;
        if (pfs->type != STT_JSON_OBJECT) {
            mango_error(r, 400, "invalid_selector_json", "Selector must be a JSON object, not: %s", term(r, pfs));
            return;
        }
        if (stt_selector_compile(&r->arena, pfs, &sel, err, sizeof(err)) != 0) {
            selector_error(r, err);
            return;
        }
        stt_selector_free(sel);
    }
    if (known_keys(r, def, def_known, sizeof(def_known) / sizeof(def_known[0])) != 0) return;

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
        stt_json_write(&view, pfs);
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
    int rc = 0;
    const char *reason = NULL;
    /* a concurrent writer of the same design doc: read it again and retry */
    for (int attempt = 0; attempt < 5 && !result; attempt++) {
        stt_json_t old;
        bool found;
        rc = ddoc_load(r, id.base, id.len, &old, &found);
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
                mango_error(r, 400, "invalid_ddoc_lang", "Existing design doc has an invalid language: %s",
                            lang ? term(r, lang) : "false");
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
                if (!str_is(m->key, m->keylen, "views") || wrote_views) {
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
        rc = ddoc_write(r, &doc, &reason);
        if (rc == 0)
            result = "created";
        else if (rc != STT_E_CONFLICT)
            break;
    }
    if (!result) {
        if (rc == STT_E_CONFLICT)
            stt_reply_error_raw(r, 500, "error_saving_ddoc",
                                "Encountered a conflict while saving the design document.");
        else
            stt_reply_error(r, rc, reason);
        goto exit;
    }
    stt_buf_t b = STT_BUF_INIT;
    stt_buf_appends(&b, "{\"result\":\"");
    stt_buf_appends(&b, result);
    stt_buf_appends(&b, "\",\"id\":");
    stt_json_write_str(&b, id.base, id.len);
    stt_buf_appends(&b, ",\"name\":");
    stt_json_write_str(&b, ixname.base, ixname.len);
    stt_buf_appendc(&b, '}');
    stt_reply_json(r, 200, &b);
exit:
    stt_buf_free(&view);
    stt_buf_free(&gen);
    stt_buf_free(&id);
    stt_buf_free(&ixname);
    stt_buf_free(&doc);
    stt_buf_free(&cur);
}

/* ------------------------------------------------------------------ deleting */

/* Removes the json index name (every json index when name is NULL) from the
 * design doc id; the design doc goes when nothing but its language is left, as
 * mango_idx:delete does. 0, STT_E_NOT_FOUND, STT_E_CONFLICT or another error. */
static int index_remove(stt_hreq_t *r, const char *id, size_t idlen, const char *name, size_t namelen,
                        const char **reason)
{
    stt_json_t old;
    bool found;
    *reason = NULL;
    int rc = ddoc_load(r, id, idlen, &old, &found);
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
        if (!(m->keylen && m->key[0] == '_') && !str_is(m->key, m->keylen, "language") &&
            !str_is(m->key, m->keylen, "views"))
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
            if (str_is(m->key, m->keylen, "views") && !left) continue;
            if (any) stt_buf_appendc(&doc, ',');
            any = true;
            stt_json_write_str(&doc, m->key, m->keylen);
            stt_buf_appendc(&doc, ':');
            if (!str_is(m->key, m->keylen, "views")) {
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
    rc = ddoc_write(r, &doc, reason);
    stt_buf_free(&doc);
    return rc;
}

/* "x" and "_design/x" name the same design doc; the id is built in r's arena. */
static void design_id(stt_hreq_t *r, const char *s, size_t len, const char **id, size_t *idlen)
{
    if (len >= 8 && memcmp(s, "_design/", 8) == 0) {
        *id = s, *idlen = len;
        return;
    }
    char *p = stt_arena_alloc(&r->arena, len + 9);
    memcpy(p, "_design/", 8);
    memcpy(p + 8, s, len);
    p[len + 8] = '\0';
    *id = p, *idlen = len + 8;
}

static int index_remove_retry(stt_hreq_t *r, const char *id, size_t idlen, const char *name, size_t namelen,
                              const char **reason)
{
    int rc = STT_E_CONFLICT;
    for (int attempt = 0; attempt < 5 && rc == STT_E_CONFLICT; attempt++)
        rc = index_remove(r, id, idlen, name, namelen, reason);
    return rc;
}

static void index_delete(stt_hreq_t *r, h2o_iovec_t ddoc, h2o_iovec_t type, h2o_iovec_t name)
{
    if (!str_is(type.base, type.len, "json")) {
        stt_reply_error(r, STT_E_NOT_FOUND, NULL);
        return;
    }
    const char *id, *reason;
    size_t idlen;
    design_id(r, ddoc.base, ddoc.len, &id, &idlen);
    int rc = index_remove_retry(r, id, idlen, name.base, name.len, &reason);
    if (rc == 0)
        stt_reply_ok(r, 200);
    else if (rc == STT_E_CONFLICT)
        stt_reply_error_raw(r, 500, "error_saving_ddoc", "Encountered a conflict while saving the design document.");
    else
        stt_reply_error(r, rc, reason);
}

/* POST _index/_bulk_delete {"docids": [...]}: every json index of each design doc. */
static void index_bulk_delete(stt_hreq_t *r)
{
    if (!stt_require_json(r)) return;
    stt_json_t body;
    if (stt_body_json(r, &body, "Request body must be a JSON object") != 0) return;
    const stt_json_t *ids = stt_json_get(&body, "docids");
    if (!ids) {
        stt_reply_error_raw(r, 400, "missing_required_key", "Missing required key: docids");
        return;
    }
    bool ok = ids->type == STT_JSON_ARRAY;
    for (uint32_t i = 0; ok && i < ids->len; i++)
        ok = ids->u.items[i].type == STT_JSON_STRING;
    if (!ok) {
        mango_error(r, 400, "invalid_bulk_docs", "Bulk Delete requires an array of non-null docids. Docids: %s",
                    term(r, ids));
        return;
    }
    stt_buf_t good = STT_BUF_INIT, bad = STT_BUF_INIT;
    for (uint32_t i = 0; i < ids->len; i++) {
        const stt_json_t *v = &ids->u.items[i];
        const char *id, *reason;
        size_t idlen;
        design_id(r, v->u.s, v->len, &id, &idlen);
        int rc = index_remove_retry(r, id, idlen, NULL, 0, &reason);
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
    stt_buf_t out = STT_BUF_INIT;
    stt_buf_appends(&out, "{\"success\":[");
    stt_buf_append(&out, good.base, good.len);
    stt_buf_appends(&out, "],\"fail\":[");
    stt_buf_append(&out, bad.base, bad.len);
    stt_buf_appends(&out, "]}");
    stt_buf_free(&good);
    stt_buf_free(&bad);
    stt_reply_json(r, 200, &out);
}

/* ------------------------------------------------------------------ _index routes */

void stt_h_index(stt_hreq_t *r)
{
    size_t n = r->nseg;
    while (n > 2 && r->seg[n - 1].len == 0)
        n--; /* a trailing slash */
    if (n == 2) {
        if (r->method & (STT_M_GET | STT_M_HEAD))
            index_list(r);
        else if (r->method == STT_M_POST)
            index_create(r);
        else
            stt_reply_method_not_allowed(r, "GET,POST");
        return;
    }
    if (n == 3 && str_is(r->seg[2].base, r->seg[2].len, "_bulk_delete")) {
        if (r->method == STT_M_POST)
            index_bulk_delete(r);
        else
            stt_reply_method_not_allowed(r, "POST");
        return;
    }
    /* {ddoc}/json/{name}, where ddoc may also come as two parts _design/{x} */
    bool split = n == 6 && str_is(r->seg[2].base, r->seg[2].len, "_design");
    if (n == 5 || split) {
        if (r->method != STT_M_DELETE) {
            stt_reply_method_not_allowed(r, "DELETE");
            return;
        }
        h2o_iovec_t ddoc = split ? r->seg[3] : r->seg[2];
        index_delete(r, ddoc, r->seg[n - 2], r->seg[n - 1]);
        return;
    }
    stt_reply_error(r, STT_E_NOT_FOUND, NULL);
}
