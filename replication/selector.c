/* Mango selectors: compile a selector object once, match it against many docs.
 *
 * Semantics follow CouchDB 3.x mango_selector.erl. CouchDB first normalizes a selector
 * in three passes and then interprets the result; compile does the same three passes
 * in one walk and builds a tree that needs no further interpretation:
 *
 *   norm_ops       every operand is checked; a bare value (or {}) becomes {"$eq": v};
 *                  an object of two or more members becomes an implicit $and.
 *   norm_fields    field names are pushed down through $and/$or/$not/$nor onto the
 *                  conditions, joined with '.' ({"a": {"b": 1}} is {"a.b": 1}).
 *                  $elemMatch, $allMatch and $keyMapMatch start a new, empty path:
 *                  their argument is matched against the element (or key) itself.
 *   norm_negations $not and $nor are pushed down to the conditions (De Morgan;
 *                  $lt <-> $gte, $eq <-> $ne, $in <-> $nin, $exists flips; any other
 *                  condition keeps a $not right above it).
 *
 * The negation push-down is not just an optimisation, it changes results: a condition
 * on a missing field is false whatever the operator, so {"$not": {"a": 1}} does not
 * match a doc without "a" (it becomes {"a": {"$ne": 1}}). The one exception is a
 * field whose condition is exactly {"$exists": false}. As in CouchDB, the push-down
 * only runs on the outer selector: inside $elemMatch/$allMatch/$keyMapMatch a $not is
 * a plain logical not (CouchDB fails at match time on a $nor there; we treat it as a
 * plain logical nor).
 *
 * Comparisons use CouchDB's view collation: null < false < true < numbers < strings
 * < arrays < objects; numbers by value; arrays element-wise, then by length; objects
 * member by member (key, then value), then by size. Strings are compared as UTF-8
 * bytes, which approximates CouchDB's ICU collation (ICU puts "a" < "B" < "b", bytes
 * put "B" < "a"). A field named exactly "_id" is compared with Erlang term order
 * instead (numbers < false < null < true < objects < arrays < strings), as CouchDB's
 * mango_json:cmp_raw does.
 *
 * Known differences from CouchDB, all on the edges: $regex is POSIX ERE, not PCRE
 * (see pcre_to_ere); integers beyond 64 bits compare as doubles and never match
 * $mod; {"$mod": [0, r]} is rejected instead of failing at match time; $text is
 * rejected (there is no text index); an empty part in a dotted field name is a
 * compile error rather than CouchDB's 500 at match time. */
#include "replication/selector.h"
#include "src/common/buf.h"
#include "src/common/err.h"
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ the tree */

typedef enum {
    /* logic, evaluated against the current value */
    N_AND,
    N_OR,
    N_NOT,
    /* descends a path from the current value, then evaluates cond there */
    N_FIELD,
    /* conditions on the value reached */
    N_LT,
    N_LTE,
    N_EQ,
    N_NE,
    N_GTE,
    N_GT,
    N_IN,
    N_NIN,
    N_EXISTS,
    N_TYPE,
    N_MOD,
    N_REGEX,
    N_BEGINS_WITH,
    N_SIZE,
    N_ALL,
    N_ELEM_MATCH,
    N_ALL_MATCH,
    N_KEY_MAP_MATCH,
} kind_t;

typedef struct node node_t;

typedef struct {
    const char *s;
    size_t len;
} str_t;

/* $type classes; "boolean" covers both true and false. */
enum { T_NULL, T_BOOLEAN, T_NUMBER, T_STRING, T_ARRAY, T_OBJECT, T_UNKNOWN };
static const char *const type_names[] = {"null", "boolean", "number", "string", "array", "object"};

struct node {
    kind_t kind;
    union {
        struct {
            node_t **kids;
            uint32_t n;
        } list;      /* N_AND, N_OR */
        node_t *kid; /* N_NOT, N_ELEM_MATCH, N_ALL_MATCH, N_KEY_MAP_MATCH */
        struct {
            str_t *segs; /* none: the current value itself */
            uint32_t nsegs;
            bool raw; /* the path is "_id": Erlang term order */
            node_t *cond;
        } field;
        const stt_json_t *arg; /* comparisons; the array of $in, $nin, $all */
        bool exists;
        int type; /* T_*; T_UNKNOWN never matches, as an unknown name never does in CouchDB */
        struct {
            int64_t d, r;
        } mod;
        struct {
            regex_t re;
            node_t *next; /* the chain stt_selector_free walks */
        } regex;
        str_t prefix;
        int64_t size;
    } u;
};

struct stt_selector {
    node_t *root;    /* NULL for {}: matches every doc */
    node_t *regexes; /* N_REGEX nodes, to regfree */
};

/* ------------------------------------------------------------------ collation */

static int cmp_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c) return c < 0 ? -1 : 1;
    return (alen > blen) - (alen < blen);
}

/* Integers that fit 64 bits compare exactly (doubles lose them past 2^53); anything
 * else compares as a double. */
static int cmp_num(const stt_json_t *a, const stt_json_t *b)
{
    int64_t x, y;
    if (stt_json_int(a, &x) == 0 && stt_json_int(b, &y) == 0) return (x > y) - (x < y);
    double dx = strtod(a->u.s, NULL), dy = strtod(b->u.s, NULL);
    return (dx > dy) - (dx < dy);
}

static int type_rank(stt_json_type_t t, bool raw)
{
    static const int view[] = {[STT_JSON_NULL] = 0,   [STT_JSON_FALSE] = 1, [STT_JSON_TRUE] = 2,  [STT_JSON_NUMBER] = 3,
                               [STT_JSON_STRING] = 4, [STT_JSON_ARRAY] = 5, [STT_JSON_OBJECT] = 6};
    static const int term[] = {[STT_JSON_NUMBER] = 0, [STT_JSON_FALSE] = 1, [STT_JSON_NULL] = 2,  [STT_JSON_TRUE] = 3,
                               [STT_JSON_OBJECT] = 4, [STT_JSON_ARRAY] = 5, [STT_JSON_STRING] = 6};
    return raw ? term[t] : view[t];
}

/* <0, 0, >0 as a sorts before, with or after b. raw: Erlang term order (for _id). */
static int json_cmp(const stt_json_t *a, const stt_json_t *b, bool raw)
{
    int ra = type_rank(a->type, raw), rb = type_rank(b->type, raw);
    if (ra != rb) return ra < rb ? -1 : 1;
    uint32_t n = a->len < b->len ? a->len : b->len;
    switch (a->type) {
    case STT_JSON_NUMBER:
        return cmp_num(a, b);
    case STT_JSON_STRING:
        return cmp_bytes(a->u.s, a->len, b->u.s, b->len);
    case STT_JSON_ARRAY:
        for (uint32_t i = 0; i < n; i++) {
            int c = json_cmp(&a->u.items[i], &b->u.items[i], raw);
            if (c) return c;
        }
        return (a->len > b->len) - (a->len < b->len);
    case STT_JSON_OBJECT:
        for (uint32_t i = 0; i < n; i++) {
            const stt_json_member_t *x = &a->u.members[i], *y = &b->u.members[i];
            int c = cmp_bytes(x->key, x->keylen, y->key, y->keylen);
            if (!c) c = json_cmp(&x->val, &y->val, raw);
            if (c) return c;
        }
        return (a->len > b->len) - (a->len < b->len);
    default:
        return 0;
    }
}

/* jiffy decodes a number without '.', 'e' or 'E' as an Erlang integer. */
static bool is_int_text(const stt_json_t *v)
{
    return !memchr(v->u.s, '.', v->len) && !memchr(v->u.s, 'e', v->len) && !memchr(v->u.s, 'E', v->len);
}

/* Erlang's == (strict false: 1 equals 1.0) or =:= (strict true: it does not).
 * Objects are equal only with the same members in the same order. */
static bool json_same(const stt_json_t *a, const stt_json_t *b, bool strict)
{
    if (a->type != b->type || (a->type != STT_JSON_NUMBER && a->len != b->len)) return false;
    switch (a->type) {
    case STT_JSON_NUMBER:
        if (strict && is_int_text(a) != is_int_text(b)) return false;
        return cmp_num(a, b) == 0;
    case STT_JSON_STRING:
        return memcmp(a->u.s, b->u.s, a->len) == 0;
    case STT_JSON_ARRAY:
        for (uint32_t i = 0; i < a->len; i++)
            if (!json_same(&a->u.items[i], &b->u.items[i], strict)) return false;
        return true;
    case STT_JSON_OBJECT:
        for (uint32_t i = 0; i < a->len; i++) {
            const stt_json_member_t *x = &a->u.members[i], *y = &b->u.members[i];
            if (x->keylen != y->keylen || memcmp(x->key, y->key, x->keylen) || !json_same(&x->val, &y->val, strict))
                return false;
        }
        return true;
    default:
        return true;
    }
}

static int type_class(const stt_json_t *v)
{
    switch (v->type) {
    case STT_JSON_NULL:
        return T_NULL;
    case STT_JSON_FALSE:
    case STT_JSON_TRUE:
        return T_BOOLEAN;
    case STT_JSON_NUMBER:
        return T_NUMBER;
    case STT_JSON_STRING:
        return T_STRING;
    case STT_JSON_ARRAY:
        return T_ARRAY;
    default:
        return T_OBJECT;
    }
}

/* ------------------------------------------------------------------ matching */

static bool eval(const node_t *n, const stt_json_t *v, bool raw);

/* A path part applied to an array is an index, as Erlang's list_to_integer reads it
 * (an optional sign, then digits); anything else is a bad path. */
static bool array_index(const str_t *seg, uint32_t len, uint32_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (seg->len && (seg->s[0] == '+' || seg->s[0] == '-')) neg = seg->s[0] == '-', i = 1;
    if (i == seg->len) return false;
    uint64_t acc = 0;
    for (; i < seg->len; i++) {
        if (seg->s[i] < '0' || seg->s[i] > '9') return false;
        if (acc <= UINT32_MAX) acc = acc * 10 + (uint64_t)(seg->s[i] - '0');
    }
    if (neg && acc != 0) return false;
    if (acc >= len) return false;
    *out = (uint32_t)acc;
    return true;
}

static bool eval_field(const node_t *n, const stt_json_t *v, bool raw)
{
    const node_t *cond = n->u.field.cond;
    for (uint32_t i = 0; i < n->u.field.nsegs; i++) {
        const str_t *seg = &n->u.field.segs[i];
        if (v->type == STT_JSON_OBJECT) {
            v = stt_json_getn(v, seg->s, seg->len);
            if (!v) return cond->kind == N_EXISTS && !cond->u.exists;
        } else if (v->type == STT_JSON_ARRAY) {
            uint32_t k;
            if (!array_index(seg, v->len, &k)) return false;
            v = &v->u.items[k];
        } else {
            return false;
        }
    }
    return eval(cond, v, raw || n->u.field.raw);
}

/* An array value is "in" when one of its elements equals one of the arguments; the
 * array as a whole is never compared (CouchDB's behaviour). */
static bool in_list(const stt_json_t *args, const stt_json_t *v, bool raw)
{
    for (uint32_t i = 0; i < args->len; i++) {
        if (v->type != STT_JSON_ARRAY) {
            if (json_cmp(v, &args->u.items[i], raw) == 0) return true;
            continue;
        }
        for (uint32_t j = 0; j < v->len; j++)
            if (json_cmp(&v->u.items[j], &args->u.items[i], raw) == 0) return true;
    }
    return false;
}

/* $all: every argument is an element of the array (Erlang lists:member, so 1 is not
 * 1.0), or the single argument is an array equal to the value. $all: [] is false. */
static bool all_of(const stt_json_t *args, const stt_json_t *v)
{
    if (args->len == 0) return false;
    if (args->len == 1 && args->u.items[0].type == STT_JSON_ARRAY && json_same(&args->u.items[0], v, false))
        return true;
    if (v->type != STT_JSON_ARRAY) return false;
    for (uint32_t i = 0; i < args->len; i++) {
        bool found = false;
        for (uint32_t j = 0; j < v->len && !found; j++)
            found = json_same(&args->u.items[i], &v->u.items[j], true);
        if (!found) return false;
    }
    return true;
}

static bool eval(const node_t *n, const stt_json_t *v, bool raw)
{
    switch (n->kind) {
    case N_AND:
        for (uint32_t i = 0; i < n->u.list.n; i++)
            if (!eval(n->u.list.kids[i], v, raw)) return false;
        return true;
    case N_OR:
        /* CouchDB 3.4 made {"$or": []} true, like {"$and": []} */
        if (n->u.list.n == 0) return true;
        for (uint32_t i = 0; i < n->u.list.n; i++)
            if (eval(n->u.list.kids[i], v, raw)) return true;
        return false;
    case N_NOT:
        return !eval(n->u.kid, v, raw);
    case N_FIELD:
        return eval_field(n, v, raw);
    case N_LT:
        return json_cmp(v, n->u.arg, raw) < 0;
    case N_LTE:
        return json_cmp(v, n->u.arg, raw) <= 0;
    case N_EQ:
        return json_cmp(v, n->u.arg, raw) == 0;
    case N_NE:
        return json_cmp(v, n->u.arg, raw) != 0;
    case N_GTE:
        return json_cmp(v, n->u.arg, raw) >= 0;
    case N_GT:
        return json_cmp(v, n->u.arg, raw) > 0;
    case N_IN:
        return in_list(n->u.arg, v, raw);
    case N_NIN:
        return !in_list(n->u.arg, v, raw);
    case N_EXISTS:
        /* reached only when the field is there */
        return n->u.exists;
    case N_TYPE:
        return type_class(v) == n->u.type;
    case N_MOD: {
        int64_t x;
        if (stt_json_int(v, &x) != 0) return false;
        /* INT64_MIN % -1 is undefined in C; the remainder of any x by -1 is 0 */
        if (n->u.mod.d == -1) return n->u.mod.r == 0;
        return x % n->u.mod.d == n->u.mod.r;
    }
    case N_REGEX: {
        if (v->type != STT_JSON_STRING) return false;
        /* REG_STARTEND: the string is len bytes and may hold NULs */
        regmatch_t m = {.rm_so = 0, .rm_eo = (regoff_t)v->len};
        return regexec(&n->u.regex.re, v->u.s, 1, &m, REG_STARTEND) == 0;
    }
    case N_BEGINS_WITH:
        return v->type == STT_JSON_STRING && v->len >= n->u.prefix.len &&
               memcmp(v->u.s, n->u.prefix.s, n->u.prefix.len) == 0;
    case N_SIZE:
        return v->type == STT_JSON_ARRAY && (int64_t)v->len == n->u.size;
    case N_ALL:
        return all_of(n->u.arg, v);
    case N_ELEM_MATCH:
        if (v->type != STT_JSON_ARRAY) return false;
        for (uint32_t i = 0; i < v->len; i++)
            if (eval(n->u.kid, &v->u.items[i], raw)) return true;
        return false;
    case N_ALL_MATCH:
        if (v->type != STT_JSON_ARRAY || v->len == 0) return false;
        for (uint32_t i = 0; i < v->len; i++)
            if (!eval(n->u.kid, &v->u.items[i], raw)) return false;
        return true;
    case N_KEY_MAP_MATCH:
        if (v->type != STT_JSON_OBJECT) return false;
        for (uint32_t i = 0; i < v->len; i++) {
            const stt_json_member_t *m = &v->u.members[i];
            stt_json_t key = {.type = STT_JSON_STRING, .len = m->keylen, .u.s = m->key};
            if (eval(n->u.kid, &key, raw)) return true;
        }
        return false;
    }
    return false;
}

bool stt_selector_match(const stt_selector_t *s, const stt_json_t *doc)
{
    return !s->root || eval(s->root, doc, false);
}

/* ------------------------------------------------------------------ compiling */

typedef struct {
    stt_arena_t *arena;
    char *err;
    size_t errlen;
    node_t *regexes; /* compiled so far: freed on error, else handed to the selector */
} cc_t;

typedef enum {
    OP_AND,
    OP_OR,
    OP_NOR,
    OP_NOT,
    OP_ELEM_MATCH,
    OP_ALL_MATCH,
    OP_KEY_MAP_MATCH,
    OP_LT,
    OP_LTE,
    OP_EQ,
    OP_NE,
    OP_GTE,
    OP_GT,
    OP_IN,
    OP_NIN,
    OP_EXISTS,
    OP_TYPE,
    OP_MOD,
    OP_REGEX,
    OP_BEGINS_WITH,
    OP_SIZE,
    OP_ALL,
    OP_UNSUPPORTED,
    OP_INVALID,
} op_t;

static const struct {
    const char *name;
    op_t op;
} op_names[] = {
    {"$and", OP_AND},
    {"$or", OP_OR},
    {"$nor", OP_NOR},
    {"$not", OP_NOT},
    {"$elemMatch", OP_ELEM_MATCH},
    {"$allMatch", OP_ALL_MATCH},
    {"$keyMapMatch", OP_KEY_MAP_MATCH},
    {"$lt", OP_LT},
    {"$lte", OP_LTE},
    {"$eq", OP_EQ},
    {"$ne", OP_NE},
    {"$gte", OP_GTE},
    {"$gt", OP_GT},
    {"$in", OP_IN},
    {"$nin", OP_NIN},
    {"$exists", OP_EXISTS},
    {"$type", OP_TYPE},
    {"$mod", OP_MOD},
    {"$regex", OP_REGEX},
    {"$beginsWith", OP_BEGINS_WITH},
    {"$size", OP_SIZE},
    {"$all", OP_ALL},
    /* known to CouchDB but not matchable here */
    {"$text", OP_UNSUPPORTED},
    {"$default", OP_UNSUPPORTED},
    {"$where", OP_UNSUPPORTED},
    {"$geoWithin", OP_UNSUPPORTED},
    {"$geoIntersects", OP_UNSUPPORTED},
    {"$near", OP_UNSUPPORTED},
    {"$nearSphere", OP_UNSUPPORTED},
};

static op_t op_lookup(const char *key, size_t keylen)
{
    for (size_t i = 0; i < sizeof op_names / sizeof op_names[0]; i++)
        if (strlen(op_names[i].name) == keylen && memcmp(op_names[i].name, key, keylen) == 0) return op_names[i].op;
    return OP_INVALID;
}

static int fail(cc_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(cc_t *c, const char *fmt, ...)
{
    if (c->err && c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->errlen, fmt, ap);
        va_end(ap);
    }
    return STT_E_BAD_REQUEST;
}

/* CouchDB prints the operand as an Erlang term; JSON is the closest we can say. */
static int bad_arg(cc_t *c, const char *op, size_t oplen, const stt_json_t *arg)
{
    stt_buf_t b = STT_BUF_INIT;
    stt_json_write(&b, arg);
    int rc = fail(c, "Bad argument for operator %.*s: %s", (int)oplen, op, b.base ? b.base : "");
    stt_buf_free(&b);
    return rc;
}

static node_t *new_node(cc_t *c, kind_t kind)
{
    node_t *n = stt_arena_alloc(c->arena, sizeof *n);
    memset(n, 0, sizeof *n);
    n->kind = kind;
    return n;
}

static node_t *new_list(cc_t *c, kind_t kind, uint32_t n)
{
    node_t *l = new_node(c, kind);
    l->u.list.n = n;
    l->u.list.kids = n ? stt_arena_alloc(c->arena, n * sizeof(node_t *)) : NULL;
    return l;
}

static node_t *new_not(cc_t *c, node_t *kid)
{
    node_t *n = new_node(c, N_NOT);
    n->u.kid = kid;
    return n;
}

/* Operands are copied so the selector depends on its arena only. */
static void json_copy(stt_arena_t *a, stt_json_t *dst, const stt_json_t *src)
{
    *dst = *src;
    switch (src->type) {
    case STT_JSON_NUMBER:
    case STT_JSON_STRING:
        dst->u.s = stt_arena_strndup(a, src->u.s, src->len);
        break;
    case STT_JSON_ARRAY:
        dst->u.items = src->len ? stt_arena_alloc(a, src->len * sizeof(stt_json_t)) : NULL;
        for (uint32_t i = 0; i < src->len; i++)
            json_copy(a, &dst->u.items[i], &src->u.items[i]);
        break;
    case STT_JSON_OBJECT:
        dst->u.members = src->len ? stt_arena_alloc(a, src->len * sizeof(stt_json_member_t)) : NULL;
        for (uint32_t i = 0; i < src->len; i++) {
            const stt_json_member_t *m = &src->u.members[i];
            dst->u.members[i].key = stt_arena_strndup(a, m->key, m->keylen);
            dst->u.members[i].keylen = m->keylen;
            json_copy(a, &dst->u.members[i].val, &m->val);
        }
        break;
    default:
        break;
    }
}

static const stt_json_t *copy_arg(cc_t *c, const stt_json_t *v)
{
    stt_json_t *d = stt_arena_alloc(c->arena, sizeof *d);
    json_copy(c->arena, d, v);
    return d;
}

/* CouchDB joins names with '.' first and splits later (mango_util:parse_field), so
 * {"a": {"b.c": 1}} and {"a.b": {"c": 1}} are the same field. */
static str_t join_path(cc_t *c, str_t path, const char *key, size_t keylen)
{
    if (!path.len) return (str_t){key, keylen};
    char *p = stt_arena_alloc(c->arena, path.len + 1 + keylen);
    memcpy(p, path.s, path.len);
    p[path.len] = '.';
    memcpy(p + path.len + 1, key, keylen);
    return (str_t){p, path.len + 1 + keylen};
}

/* Splits at each '.' not preceded by a backslash, then drops every backslash (so
 * "a\.b" names the key "a.b"). An empty part is an error. */
static int split_path(cc_t *c, str_t path, str_t **out, uint32_t *nout)
{
    if (!path.len) {
        *out = NULL;
        *nout = 0;
        return 0;
    }
    uint32_t n = 1;
    for (size_t i = 0; i < path.len; i++)
        if (path.s[i] == '.' && (i == 0 || path.s[i - 1] != '\\')) n++;
    str_t *segs = stt_arena_alloc(c->arena, n * sizeof *segs);
    size_t start = 0;
    uint32_t k = 0;
    for (size_t i = 0; i <= path.len; i++) {
        if (i < path.len && !(path.s[i] == '.' && (i == 0 || path.s[i - 1] != '\\'))) continue;
        if (i == start) return fail(c, "Invalid field name: %.*s", (int)path.len, path.s);
        char *p = stt_arena_alloc(c->arena, i - start + 1);
        size_t len = 0;
        for (size_t j = start; j < i; j++)
            if (path.s[j] != '\\') p[len++] = path.s[j];
        p[len] = '\0';
        segs[k++] = (str_t){p, len};
        start = i + 1;
    }
    *out = segs;
    *nout = n;
    return 0;
}

static int field_node(cc_t *c, str_t path, node_t *cond, node_t **out)
{
    node_t *f = new_node(c, N_FIELD);
    int rc = split_path(c, path, &f->u.field.segs, &f->u.field.nsegs);
    if (rc) return rc;
    f->u.field.raw = path.len == 3 && memcmp(path.s, "_id", 3) == 0;
    f->u.field.cond = cond;
    *out = f;
    return 0;
}

/* Where the bracket expression opening at s[i] ends: its closing ']', or len. A ']'
 * right after '[' or '[^' is a member, and so is everything inside [:class:],
 * [.coll.] and [=equiv=]. */
static size_t bracket_end(const char *s, size_t len, size_t i)
{
    size_t j = i + 1;
    if (j < len && s[j] == '^') j++;
    if (j < len && s[j] == ']') j++;
    while (j < len && s[j] != ']') {
        if (s[j] == '[' && j + 1 < len && (s[j + 1] == ':' || s[j + 1] == '.' || s[j + 1] == '=')) {
            char close = s[j + 1];
            j += 2;
            while (j + 1 < len && !(s[j] == close && s[j + 1] == ']'))
                j++;
            j += 2;
        } else {
            j++;
        }
    }
    return j < len ? j : len;
}

/* PCRE to POSIX ERE for the PCRE spellings common in Mango selectors: a leading
 * "(?i)" and \d, \D outside brackets. glibc's ERE already knows \w \W \s \S \b \B.
 * What stays different: no lookaround, lazy quantifiers or (?flags) elsewhere; '.'
 * matches a newline and one byte, not one character (the C locale); backslashes in
 * brackets are literal. */
static void pcre_to_ere(const char *s, size_t len, stt_buf_t *b, int *flags)
{
    if (len >= 4 && memcmp(s, "(?i)", 4) == 0) {
        *flags |= REG_ICASE;
        s += 4, len -= 4;
    }
    stt_buf_appends(b, "");
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '[') {
            /* copy the bracket expression whole */
            size_t j = bracket_end(s, len, i);
            size_t end = j < len ? j + 1 : len;
            stt_buf_append(b, s + i, end - i);
            i = end - 1;
        } else if (s[i] == '\\' && i + 1 < len && (s[i + 1] == 'd' || s[i + 1] == 'D')) {
            stt_buf_appends(b, s[i + 1] == 'd' ? "[0-9]" : "[^0-9]");
            i++;
        } else if (s[i] == '\\' && i + 1 < len) {
            stt_buf_append(b, s + i, 2);
            i++;
        } else {
            stt_buf_appendc(b, s[i]);
        }
    }
}

/* glibc's regcomp copies a repeated subexpression for each repetition it must spell out
 * (x+ as xx*, x{2,5} as five copies) and a quantifier on a quantifier nests the copies, so
 * "a++++...+" or "((a{100}){100}){100}" take memory exponential in their length: one _find
 * could exhaust the server. This sums the copies over the pattern (atoms count 1, a group
 * the sum of its content, x+ doubles x, x{n,m} multiplies it by max(n,m)) and refuses a
 * pattern past 100,000 copies, a bound over 1,000, nesting deeper than 64 groups, and more than two
 * quantifiers in a row (x*+* costs regcomp time that the copy count does not see; PCRE
 * takes two, lazy or possessive, and refuses a third: "nothing to repeat"). PCRE refuses
 * most of those too; the rest are far beyond any real selector. */
#define REGEX_MAX_COPIES 100000.0
/* x{0,m} is spelled out as m nested optional copies, which regcomp's automaton pays for
 * about quadratically: "(x+){0,7862}" took 1 GB (fuzz_selector). PCRE allows 65535. */
#define REGEX_MAX_BOUND 1000
static bool regex_too_big(const char *s, size_t len)
{
    double sum[65] = {0}, last[65] = {0};
    int d = 0, nq = 0; /* nq: quantifiers in a row */
    for (size_t i = 0; i < len; i++) {
        double item = 0;
        bool is_item = true;
        bool quant = s[i] == '*' || s[i] == '?' || s[i] == '+' || s[i] == '{';
        if (!quant)
            nq = 0;
        else if (++nq > 2 && (s[i] != '{' || (i + 1 < len && s[i + 1] >= '0' && s[i + 1] <= '9')))
            return true;
        if (s[i] == '\\' && i + 1 < len) {
            i++, item = 1;
        } else if (s[i] == '[') {
            i = bracket_end(s, len, i);
            item = 1;
        } else if (s[i] == '(') {
            if (d == 64) return true;
            d++, sum[d] = last[d] = 0;
            is_item = false;
        } else if (s[i] == ')' && d > 0) {
            item = sum[d] > 1 ? sum[d] : 1;
            d--;
        } else if (s[i] == '*' || s[i] == '?') {
            is_item = false;
        } else if (s[i] == '+' || s[i] == '{') {
            double f = 2;
            if (s[i] == '{') {
                size_t j = i + 1;
                double n = 0, m = 0;
                bool comma = false, ok = j < len && s[j] >= '0' && s[j] <= '9';
                for (; ok && j < len && s[j] != '}'; j++) {
                    if (s[j] == ',' && !comma)
                        comma = true;
                    else if (s[j] >= '0' && s[j] <= '9')
                        *(comma ? &m : &n) = *(comma ? &m : &n) * 10 + (s[j] - '0');
                    else
                        ok = false;
                    if (n > REGEX_MAX_BOUND || m > REGEX_MAX_BOUND) return true;
                }
                if (!ok || j >= len) {
                    item = 1; /* not a bound: a literal '{' */
                    goto add;
                }
                i = j;
                f = n > m ? n : m;
                if (f < 1) f = 1;
            }
            sum[d] += last[d] * (f - 1);
            last[d] *= f;
            is_item = false;
        } else {
            item = 1;
        }
    add:
        if (is_item) sum[d] += item, last[d] = item;
        if (sum[d] > REGEX_MAX_COPIES || last[d] > REGEX_MAX_COPIES) return true;
    }
    return false;
}

static int compile_regex(cc_t *c, const char *op, size_t oplen, const stt_json_t *arg, node_t **out)
{
    if (arg->type != STT_JSON_STRING || memchr(arg->u.s, '\0', arg->len)) return bad_arg(c, op, oplen, arg);
    stt_buf_t b = STT_BUF_INIT;
    int flags = REG_EXTENDED | REG_NOSUB;
    pcre_to_ere(arg->u.s, arg->len, &b, &flags);
    if (regex_too_big(b.base, b.len)) {
        stt_buf_free(&b);
        return bad_arg(c, op, oplen, arg);
    }
    node_t *n = new_node(c, N_REGEX);
    int rc = regcomp(&n->u.regex.re, b.base, flags);
    stt_buf_free(&b);
    if (rc != 0) return bad_arg(c, op, oplen, arg);
    n->u.regex.next = c->regexes;
    c->regexes = n;
    *out = n;
    return 0;
}

static void free_regexes(node_t *n)
{
    while (n) {
        node_t *next = n->u.regex.next;
        regfree(&n->u.regex.re);
        n = next;
    }
}

/* The conditions CouchDB negates into another condition ($lt into $gte, $in into
 * $nin, $exists: true into $exists: false...); the others keep a $not above them.
 * Returns whether n was negated in place. */
static bool negate_exactly(node_t *n)
{
    static const kind_t opposite[] = {[N_LT] = N_GTE, [N_LTE] = N_GT, [N_EQ] = N_NE,  [N_NE] = N_EQ,
                                      [N_GTE] = N_LT, [N_GT] = N_LTE, [N_IN] = N_NIN, [N_NIN] = N_IN};
    if ((n->kind >= N_LT && n->kind <= N_GT) || n->kind == N_IN || n->kind == N_NIN) {
        n->kind = opposite[n->kind];
        return true;
    }
    if (n->kind == N_EXISTS) {
        n->u.exists = !n->u.exists;
        return true;
    }
    return false;
}

static int compile_sel(cc_t *c, const stt_json_t *v, str_t path, bool neg, bool pushdown, node_t **out);

/* One operator or field name with its operand. neg: an odd number of $not/$nor sit
 * above and are still to be applied. pushdown: negations are pushed down (outer
 * selector) rather than kept as logical nots (inside $elemMatch and friends). */
static int compile_member(cc_t *c, const stt_json_member_t *m, str_t path, bool neg, bool pushdown, node_t **out)
{
    const stt_json_t *arg = &m->val;
    if (m->keylen == 0 || m->key[0] != '$')
        return compile_sel(c, arg, join_path(c, path, m->key, m->keylen), neg, pushdown, out);

    static const str_t root = {"", 0};
    static const kind_t cmp_kind[] = {
        [OP_LT] = N_LT, [OP_LTE] = N_LTE, [OP_EQ] = N_EQ, [OP_NE] = N_NE, [OP_GTE] = N_GTE, [OP_GT] = N_GT};
    op_t op = op_lookup(m->key, m->keylen);
    node_t *n = NULL;
    int rc = 0;
    int64_t x, y;
    switch (op) {
    case OP_AND:
    case OP_OR:
    case OP_NOR:
        if (arg->type != STT_JSON_ARRAY) return bad_arg(c, m->key, m->keylen, arg);
        /* De Morgan: under a negation $and becomes $or and back; $nor is the
         * negation of an $or, so it flips what is below it */
        n = new_list(c, (op == OP_OR) != neg ? N_OR : N_AND, arg->len);
        if (op == OP_NOR) n->kind = (pushdown && neg) ? N_OR : N_AND;
        for (uint32_t i = 0; i < arg->len && !rc; i++) {
            if (op != OP_NOR) {
                rc = compile_sel(c, &arg->u.items[i], path, neg, pushdown, &n->u.list.kids[i]);
            } else if (pushdown) {
                rc = compile_sel(c, &arg->u.items[i], path, !neg, pushdown, &n->u.list.kids[i]);
            } else {
                node_t *kid;
                rc = compile_sel(c, &arg->u.items[i], path, false, false, &kid);
                n->u.list.kids[i] = new_not(c, kid);
            }
        }
        if (!rc) *out = n;
        return rc;
    case OP_NOT:
        if (arg->type != STT_JSON_OBJECT) return bad_arg(c, m->key, m->keylen, arg);
        if (pushdown) return compile_sel(c, arg, path, !neg, pushdown, out);
        rc = compile_sel(c, arg, path, false, false, &n);
        if (!rc) *out = new_not(c, n);
        return rc;
    case OP_ELEM_MATCH:
    case OP_ALL_MATCH:
    case OP_KEY_MAP_MATCH:
        if (arg->type != STT_JSON_OBJECT) return bad_arg(c, m->key, m->keylen, arg);
        n = new_node(c, op == OP_ELEM_MATCH ? N_ELEM_MATCH : op == OP_ALL_MATCH ? N_ALL_MATCH : N_KEY_MAP_MATCH);
        rc = compile_sel(c, arg, root, false, false, &n->u.kid);
        break;
    case OP_LT:
    case OP_LTE:
    case OP_EQ:
    case OP_NE:
    case OP_GTE:
    case OP_GT:
        n = new_node(c, cmp_kind[op]);
        break;
    case OP_IN:
    case OP_NIN:
        if (arg->type != STT_JSON_ARRAY) return bad_arg(c, m->key, m->keylen, arg);
        n = new_node(c, op == OP_IN ? N_IN : N_NIN);
        break;
    case OP_EXISTS:
        if (arg->type != STT_JSON_TRUE && arg->type != STT_JSON_FALSE) return bad_arg(c, m->key, m->keylen, arg);
        n = new_node(c, N_EXISTS);
        n->u.exists = arg->type == STT_JSON_TRUE;
        break;
    /* the others keep a $not above them */
    case OP_TYPE:
        if (arg->type != STT_JSON_STRING) return bad_arg(c, m->key, m->keylen, arg);
        n = new_node(c, N_TYPE);
        n->u.type = T_UNKNOWN;
        for (int t = 0; t < T_UNKNOWN; t++)
            if (strlen(type_names[t]) == arg->len && memcmp(type_names[t], arg->u.s, arg->len) == 0) n->u.type = t;
        break;
    case OP_MOD:
        /* CouchDB crashes on a zero divisor at match time; refuse it up front */
        if (arg->type != STT_JSON_ARRAY || arg->len != 2 || stt_json_int(&arg->u.items[0], &x) ||
            stt_json_int(&arg->u.items[1], &y) || x == 0)
            return bad_arg(c, m->key, m->keylen, arg);
        n = new_node(c, N_MOD);
        n->u.mod.d = x, n->u.mod.r = y;
        break;
    case OP_REGEX:
        rc = compile_regex(c, m->key, m->keylen, arg, &n);
        break;
    case OP_BEGINS_WITH:
        if (arg->type != STT_JSON_STRING) return bad_arg(c, m->key, m->keylen, arg);
        n = new_node(c, N_BEGINS_WITH);
        n->u.prefix = (str_t){stt_arena_strndup(c->arena, arg->u.s, arg->len), arg->len};
        break;
    case OP_SIZE:
        if (stt_json_int(arg, &x) || x < 0) return bad_arg(c, m->key, m->keylen, arg);
        n = new_node(c, N_SIZE);
        n->u.size = x;
        break;
    case OP_ALL:
        if (arg->type != STT_JSON_ARRAY) return bad_arg(c, m->key, m->keylen, arg);
        n = new_node(c, N_ALL);
        break;
    case OP_UNSUPPORTED:
        return fail(c, "Unsupported operator: %.*s", (int)m->keylen, m->key);
    case OP_INVALID:
        return fail(c, "Invalid operator: %.*s", (int)m->keylen, m->key);
    }
    if (rc) return rc;
    if ((n->kind >= N_LT && n->kind <= N_GT) || n->kind == N_IN || n->kind == N_NIN || n->kind == N_ALL)
        n->u.arg = copy_arg(c, arg);
    if (neg && !negate_exactly(n)) n = new_not(c, n);
    return field_node(c, path, n, out);
}

/* Any selector value: one member is an operator or a field, several are an implicit
 * $and, anything else (a scalar, an array, {}) is an equality condition. */
static int compile_sel(cc_t *c, const stt_json_t *v, str_t path, bool neg, bool pushdown, node_t **out)
{
    if (v->type == STT_JSON_OBJECT && v->len == 1) return compile_member(c, &v->u.members[0], path, neg, pushdown, out);
    if (v->type == STT_JSON_OBJECT && v->len > 1) {
        node_t *n = new_list(c, neg ? N_OR : N_AND, v->len);
        for (uint32_t i = 0; i < v->len; i++) {
            int rc = compile_member(c, &v->u.members[i], path, neg, pushdown, &n->u.list.kids[i]);
            if (rc) return rc;
        }
        *out = n;
        return 0;
    }
    node_t *n = new_node(c, N_EQ);
    n->u.arg = copy_arg(c, v);
    if (neg) negate_exactly(n);
    return field_node(c, path, n, out);
}

int stt_selector_compile(stt_arena_t *arena, const stt_json_t *sel, stt_selector_t **out, char *err, size_t errlen)
{
    cc_t c = {.arena = arena, .err = err, .errlen = errlen};
    if (!sel || sel->type != STT_JSON_OBJECT) return fail(&c, "Selector must be a JSON object");
    node_t *root = NULL;
    if (sel->len > 0) {
        static const str_t top = {"", 0};
        int rc = compile_sel(&c, sel, top, false, true, &root);
        /* a condition left without a field at the top, e.g. {"$gt": 1} */
        if (!rc && root->kind == N_FIELD && root->u.field.nsegs == 0)
            rc = fail(&c, "One or more conditions is missing a field name.");
        if (rc) {
            free_regexes(c.regexes);
            return rc;
        }
    }
    stt_selector_t *s = stt_arena_alloc(arena, sizeof *s);
    s->root = root;
    s->regexes = c.regexes;
    *out = s;
    return 0;
}

void stt_selector_free(stt_selector_t *s)
{
    if (!s) return;
    free_regexes(s->regexes);
    s->regexes = NULL;
}

/* ------------------------------------------------------------------ for _find */

int stt_json_collate(const stt_json_t *a, const stt_json_t *b)
{
    return json_cmp(a, b, false);
}

int stt_field_parse(stt_arena_t *arena, const char *name, size_t len, stt_field_part_t **parts, uint32_t *nparts)
{
    cc_t c = {.arena = arena};
    str_t *segs;
    uint32_t n;
    if (len == 0) return STT_E_BAD_REQUEST;
    int rc = split_path(&c, (str_t){name, len}, &segs, &n);
    if (rc) return rc;
    stt_field_part_t *p = stt_arena_alloc(arena, n * sizeof *p);
    for (uint32_t i = 0; i < n; i++)
        p[i] = (stt_field_part_t){segs[i].s, segs[i].len};
    *parts = p;
    *nparts = n;
    return 0;
}

const stt_json_t *stt_field_get(const stt_json_t *v, const stt_field_part_t *parts, uint32_t nparts)
{
    for (uint32_t i = 0; i < nparts && v; i++) {
        str_t seg = {parts[i].s, parts[i].len};
        uint32_t k;
        if (v->type == STT_JSON_OBJECT)
            v = stt_json_getn(v, seg.s, seg.len);
        else if (v->type == STT_JSON_ARRAY && array_index(&seg, v->len, &k))
            v = &v->u.items[k];
        else
            v = NULL;
    }
    return v;
}
