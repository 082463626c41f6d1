/* JSON parse (yajl callbacks -> arena DOM) and compact writer.
 *
 * The parser keeps a stack of open containers; each collects its children in a
 * growable scratch vector and, when it closes, copies them into the arena as one
 * array. Numbers arrive through yajl's raw-number callback, so their text is kept
 * as written. Validation happens before yajl sees the bytes (see json.h). */
#include "src/common/json.h"
#include "src/common/err.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

/* ---------------------------------------------------------------- validation */

int stt_utf8_validate(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str, *end = s + len;
    while (s < end) {
        /* fast path over ASCII, 8 bytes at a time */
        while (end - s >= 8) {
            uint64_t w;
            memcpy(&w, s, 8);
            if (w & 0x8080808080808080ULL) break;
            s += 8;
        }
        if (s >= end) break;
        unsigned c = *s;
        if (c < 0x80) {
            s++;
            continue;
        }
        size_t n;
        unsigned cp;
        if (c >= 0xC2 && c <= 0xDF)
            n = 1, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF)
            n = 2, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4)
            n = 3, cp = c & 0x07;
        else
            return -1; /* continuation byte, overlong lead (C0/C1) or > F4 */
        if ((size_t)(end - s) < n + 1) return -1;
        for (size_t i = 1; i <= n; i++) {
            if ((s[i] & 0xC0) != 0x80) return -1;
            cp = (cp << 6) | (s[i] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return -1;                               /* overlong or out of range */
        if (cp >= 0xD800 && cp <= 0xDFFF) return -1; /* UTF-16 surrogates are not characters */
        s += n + 1;
    }
    return 0;
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

int stt_json_check_escapes(const char *s, size_t len)
{
    /* Backslashes appear only inside strings in valid JSON, so a linear scan that
     * steps over each escape sees every \u escape exactly once. */
    const char *p = memchr(s, '\\', len), *end = s + len;
    while (p) {
        if (p + 1 >= end) return -1;
        if (p[1] != 'u') {
            p += 2;
        } else {
            unsigned cp;
            if (end - p < 6 || hex4(p + 2, &cp)) return -1;
            p += 6;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return -1; /* low surrogate without a high one */
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned lo;
                if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                    return -1;
                p += 6;
            }
        }
        if (p >= end) break;
        p = memchr(p, '\\', (size_t)(end - p));
    }
    return 0;
}

/* ---------------------------------------------------------------- parser */

typedef struct {
    stt_json_type_t type;
    stt_json_t *items;          /* scratch (malloc) */
    stt_json_member_t *members; /* scratch (malloc) */
    uint32_t n, cap;
    const char *pending_key; /* object: key waiting for its value */
    uint32_t pending_keylen;
} frame_t;

typedef struct {
    stt_arena_t *arena;
    frame_t *stack;
    size_t depth, cap;
    stt_json_t root;
    int have_root;
    int too_deep;
    bool keep_duplicates;
} pctx_t;

static int add_value(pctx_t *c, stt_json_t v)
{
    if (c->depth == 0) {
        c->root = v;
        c->have_root = 1;
        return 1;
    }
    frame_t *f = &c->stack[c->depth - 1];
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 8;
        if (f->type == STT_JSON_ARRAY)
            f->items = stt_xrealloc(f->items, f->cap * sizeof(*f->items));
        else
            f->members = stt_xrealloc(f->members, f->cap * sizeof(*f->members));
    }
    if (f->type == STT_JSON_ARRAY) {
        f->items[f->n++] = v;
    } else {
        stt_json_member_t *m = &f->members[f->n++];
        m->key = f->pending_key;
        m->keylen = f->pending_keylen;
        m->val = v;
    }
    return 1;
}

static int on_null(void *ctx)
{
    return add_value(ctx, (stt_json_t){.type = STT_JSON_NULL});
}
static int on_bool(void *ctx, int b)
{
    return add_value(ctx, (stt_json_t){.type = b ? STT_JSON_TRUE : STT_JSON_FALSE});
}
static int on_number(void *ctx, const char *s, size_t len)
{
    pctx_t *c = ctx;
    stt_json_t v = {.type = STT_JSON_NUMBER, .len = (uint32_t)len};
    v.u.s = stt_arena_strndup(c->arena, s, len);
    return add_value(c, v);
}
static int on_string(void *ctx, const unsigned char *s, size_t len)
{
    pctx_t *c = ctx;
    stt_json_t v = {.type = STT_JSON_STRING, .len = (uint32_t)len};
    v.u.s = stt_arena_strndup(c->arena, (const char *)s, len);
    return add_value(c, v);
}
static int on_key(void *ctx, const unsigned char *s, size_t len)
{
    pctx_t *c = ctx;
    frame_t *f = &c->stack[c->depth - 1];
    f->pending_key = stt_arena_strndup(c->arena, (const char *)s, len);
    f->pending_keylen = (uint32_t)len;
    return 1;
}
static int open_frame(pctx_t *c, stt_json_type_t type)
{
    if (c->depth >= STT_JSON_MAX_DEPTH) {
        c->too_deep = 1;
        return 0;
    }
    if (c->depth == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->stack = stt_xrealloc(c->stack, c->cap * sizeof(*c->stack));
    }
    c->stack[c->depth++] = (frame_t){.type = type};
    return 1;
}
/* Duplicate keys: CouchDB decodes with jiffy's dedupe_keys, so the last occurrence of a key
 * wins and sits where that last occurrence was ({"a":1,"b":2,"a":3} is {"b":2,"a":3}). Done
 * as each object closes, so every consumer (document bodies, _bulk_docs' "docs" and
 * "new_edits", _rev, _deleted) sees one member per key. */
static int cmp_member_idx(const void *pa, const void *pb, void *arg)
{
    const stt_json_member_t *m = arg;
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
    uint32_t la = m[a].keylen, lb = m[b].keylen;
    int c = memcmp(m[a].key, m[b].key, la < lb ? la : lb);
    if (c == 0 && la != lb) c = la < lb ? -1 : 1;
    if (c == 0) c = a < b ? -1 : 1;
    return c;
}

static bool same_key(const stt_json_member_t *x, const stt_json_member_t *y)
{
    return x->keylen == y->keylen && memcmp(x->key, y->key, x->keylen) == 0;
}

static uint32_t dedupe_members(stt_json_member_t *m, uint32_t n)
{
    if (n < 2) return n;
    bool *drop = stt_xcalloc(n, sizeof(*drop));
    bool any = false;
    if (n <= 16) {
        for (uint32_t i = 0; i < n; i++)
            for (uint32_t j = i + 1; j < n && !drop[i]; j++)
                if (same_key(&m[i], &m[j])) drop[i] = any = true;
    } else {
        /* large objects: sort member positions by key, then by position; in each run of
         * equal keys all but the last position go */
        uint32_t *idx = stt_xmalloc(n * sizeof(*idx));
        for (uint32_t i = 0; i < n; i++)
            idx[i] = i;
        qsort_r(idx, n, sizeof(*idx), cmp_member_idx, m);
        for (uint32_t i = 0; i + 1 < n; i++)
            if (same_key(&m[idx[i]], &m[idx[i + 1]])) drop[idx[i]] = any = true;
        free(idx);
    }
    uint32_t k = n;
    if (any) {
        k = 0;
        for (uint32_t i = 0; i < n; i++)
            if (!drop[i]) m[k++] = m[i];
    }
    free(drop);
    return k;
}

static int close_frame(pctx_t *c)
{
    frame_t f = c->stack[--c->depth];
    if (f.type == STT_JSON_OBJECT && !c->keep_duplicates) f.n = dedupe_members(f.members, f.n);
    stt_json_t v = {.type = f.type, .len = f.n};
    if (f.type == STT_JSON_ARRAY) {
        v.u.items = f.n ? stt_arena_memdup(c->arena, f.items, f.n * sizeof(*f.items)) : NULL;
        free(f.items);
    } else {
        v.u.members = f.n ? stt_arena_memdup(c->arena, f.members, f.n * sizeof(*f.members)) : NULL;
        free(f.members);
    }
    return add_value(c, v);
}
static int on_start_map(void *ctx)
{
    return open_frame(ctx, STT_JSON_OBJECT);
}
static int on_end_map(void *ctx)
{
    return close_frame(ctx);
}
static int on_start_array(void *ctx)
{
    return open_frame(ctx, STT_JSON_ARRAY);
}
static int on_end_array(void *ctx)
{
    return close_frame(ctx);
}

static const yajl_callbacks callbacks = {
    on_null, on_bool, NULL, NULL, on_number, on_string, on_start_map, on_key, on_end_map, on_start_array, on_end_array,
};

static void seterr(char *errbuf, size_t errlen, const char *msg)
{
    if (errbuf && errlen) snprintf(errbuf, errlen, "%s", msg);
}

int stt_json_parse(stt_arena_t *arena, const char *text, size_t len, stt_json_t *out, char *errbuf, size_t errlen)
{
    return stt_json_parse_opts(arena, text, len, STT_JSON_DEDUPE, out, errbuf, errlen);
}

int stt_json_parse_opts(stt_arena_t *arena, const char *text, size_t len, int flags, stt_json_t *out, char *errbuf,
                        size_t errlen)
{
    /* checked first: an empty body may come as a NULL pointer, which memchr and
     * pointer arithmetic below must not see */
    if (len == 0) {
        seterr(errbuf, errlen, "invalid JSON");
        return STT_E_BAD_JSON;
    }
    if (stt_utf8_validate(text, len)) {
        seterr(errbuf, errlen, "invalid UTF-8");
        return STT_E_BAD_JSON;
    }
    if (stt_json_check_escapes(text, len)) {
        seterr(errbuf, errlen, "invalid escape (unpaired surrogate)");
        return STT_E_BAD_JSON;
    }
    pctx_t c = {.arena = arena, .keep_duplicates = !(flags & STT_JSON_DEDUPE)};
    yajl_handle h = yajl_alloc(&callbacks, NULL, &c);
    if (!h) return STT_E_INTERNAL;
    int rc = 0;
    yajl_status st = yajl_parse(h, (const unsigned char *)text, len);
    if (st == yajl_status_ok) st = yajl_complete_parse(h);
    if (st != yajl_status_ok || !c.have_root) {
        rc = STT_E_BAD_JSON;
        if (c.too_deep) {
            rc = STT_E_JSON_DEPTH;
            seterr(errbuf, errlen, "too deeply nested");
        } else
            seterr(errbuf, errlen, "invalid JSON");
        for (size_t i = 0; i < c.depth; i++) {
            free(c.stack[i].items);
            free(c.stack[i].members);
        }
    } else {
        *out = c.root;
    }
    free(c.stack);
    yajl_free(h);
    return rc;
}

/* ---------------------------------------------------------------- access */

const stt_json_t *stt_json_getn(const stt_json_t *obj, const char *key, size_t keylen)
{
    if (!obj || obj->type != STT_JSON_OBJECT) return NULL;
    for (uint32_t i = 0; i < obj->len; i++) {
        const stt_json_member_t *m = &obj->u.members[i];
        if (m->keylen == keylen && memcmp(m->key, key, keylen) == 0) return &m->val;
    }
    return NULL;
}

const stt_json_t *stt_json_get(const stt_json_t *obj, const char *key)
{
    return stt_json_getn(obj, key, strlen(key));
}

int stt_json_int(const stt_json_t *v, int64_t *out)
{
    if (!v || v->type != STT_JSON_NUMBER || v->len == 0 || v->len > 20) return -1;
    const char *s = v->u.s;
    int neg = 0;
    size_t i = 0;
    if (s[0] == '-') neg = 1, i = 1;
    if (i >= v->len) return -1;
    uint64_t acc = 0;
    for (; i < v->len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (acc > (UINT64_MAX - d) / 10) return -1;
        acc = acc * 10 + d;
    }
    if (!neg && acc > INT64_MAX) return -1;
    if (neg && acc > (uint64_t)INT64_MAX + 1) return -1;
    *out = neg ? (int64_t)(0 - acc) : (int64_t)acc;
    return 0;
}

bool stt_json_equal(const stt_json_t *a, const stt_json_t *b)
{
    if (a->type != b->type) return false;
    switch (a->type) {
    case STT_JSON_NULL:
    case STT_JSON_TRUE:
    case STT_JSON_FALSE:
        return true;
    case STT_JSON_NUMBER:
        if (a->len == b->len && memcmp(a->u.s, b->u.s, a->len) == 0) return true;
        return strtod(a->u.s, NULL) == strtod(b->u.s, NULL);
    case STT_JSON_STRING:
        return a->len == b->len && memcmp(a->u.s, b->u.s, a->len) == 0;
    case STT_JSON_ARRAY:
        if (a->len != b->len) return false;
        for (uint32_t i = 0; i < a->len; i++)
            if (!stt_json_equal(&a->u.items[i], &b->u.items[i])) return false;
        return true;
    case STT_JSON_OBJECT:
        if (a->len != b->len) return false;
        for (uint32_t i = 0; i < a->len; i++) {
            const stt_json_member_t *x = &a->u.members[i], *y = &b->u.members[i];
            if (x->keylen != y->keylen || memcmp(x->key, y->key, x->keylen) || !stt_json_equal(&x->val, &y->val))
                return false;
        }
        return true;
    }
    return false;
}

stt_json_t stt_json_str(stt_arena_t *a, const char *s, size_t len)
{
    stt_json_t v = {.type = STT_JSON_STRING, .len = (uint32_t)len};
    v.u.s = stt_arena_strndup(a, s, len);
    return v;
}

/* ---------------------------------------------------------------- writer */

void stt_json_write_str(stt_buf_t *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    stt_buf_reserve(b, len + 3);
    b->base[b->len++] = '"';
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        stt_buf_append(b, s + start, i - start);
        start = i + 1;
        char e[6] = {'\\', 0};
        size_t n = 2;
        switch (c) {
        case '"':
            e[1] = '"';
            break;
        case '\\':
            e[1] = '\\';
            break;
        case '\n':
            e[1] = 'n';
            break;
        case '\r':
            e[1] = 'r';
            break;
        case '\t':
            e[1] = 't';
            break;
        case '\b':
            e[1] = 'b';
            break;
        case '\f':
            e[1] = 'f';
            break;
        default:
            e[1] = 'u', e[2] = '0', e[3] = '0', e[4] = hex[c >> 4], e[5] = hex[c & 15];
            n = 6;
        }
        stt_buf_append(b, e, n);
    }
    stt_buf_append(b, s + start, len - start);
    stt_buf_appendc(b, '"');
}

void stt_json_write(stt_buf_t *b, const stt_json_t *v)
{
    switch (v->type) {
    case STT_JSON_NULL:
        stt_buf_append(b, "null", 4);
        break;
    case STT_JSON_TRUE:
        stt_buf_append(b, "true", 4);
        break;
    case STT_JSON_FALSE:
        stt_buf_append(b, "false", 5);
        break;
    case STT_JSON_NUMBER:
        stt_buf_append(b, v->u.s, v->len);
        break;
    case STT_JSON_STRING:
        stt_json_write_str(b, v->u.s, v->len);
        break;
    case STT_JSON_ARRAY:
        stt_buf_appendc(b, '[');
        for (uint32_t i = 0; i < v->len; i++) {
            if (i) stt_buf_appendc(b, ',');
            stt_json_write(b, &v->u.items[i]);
        }
        stt_buf_appendc(b, ']');
        break;
    case STT_JSON_OBJECT:
        stt_buf_appendc(b, '{');
        for (uint32_t i = 0; i < v->len; i++) {
            if (i) stt_buf_appendc(b, ',');
            stt_json_write_str(b, v->u.members[i].key, v->u.members[i].keylen);
            stt_buf_appendc(b, ':');
            stt_json_write(b, &v->u.members[i].val);
        }
        stt_buf_appendc(b, '}');
        break;
    }
}
