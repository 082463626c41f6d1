/* The builtin reducers, computed natively over the rows of a group as
 * CouchDB's couch_query_servers does: _count, _sum (numbers, arrays of numbers
 * summed element-wise, objects summed per member), _stats and
 * _approx_count_distinct (exact here: a set of key hashes; CouchDB's
 * HyperLogLog gives the same answers at the sizes people group by).
 *
 * Numbers: a sum is an integer when every input was written as one, else a
 * float (Erlang's rule, which decides 3 vs 3.0). */
#include "index/index_int.h"
#include "src/common/err.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

typedef enum { R_COUNT, R_SUM, R_STATS, R_DISTINCT } kind_t;

/* _sum's accumulator: a number, an array of numbers or an object of those */
typedef struct sv {
    enum { SV_NONE, SV_NUM, SV_ARR, SV_OBJ } t;
    double num;
    bool isfloat;
    size_t n, cap;
    struct sv *items;
    char **keys;
} sv_t;

struct stt__reducer {
    kind_t kind;
    uint64_t count;
    sv_t sum;
    bool sum_failed;
    stt_buf_t sum_error; /* JSON of the value _sum could not add */
    double s_sum, s_min, s_max, s_sqr;
    bool s_float, s_min_float, s_max_float;
    uint64_t *set;
    size_t setn, setcap;
};

bool stt_reduce_is_builtin(const char *name)
{
    return strcmp(name, "_count") == 0 || strcmp(name, "_sum") == 0 || strcmp(name, "_stats") == 0 ||
           strcmp(name, "_approx_count_distinct") == 0;
}

const char *stt_reduce_builtin_of(const char *src)
{
    /* in couch_query_servers:builtin_reduce's order */
    static const char *const names[] = {"_sum", "_count", "_stats", "_approx_count_distinct"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strncmp(src, names[i], strlen(names[i])) == 0) return names[i];
    return NULL;
}

stt__reducer_t *stt__reducer_new(const char *name)
{
    stt__reducer_t *r = stt_xcalloc(1, sizeof(*r));
    r->kind = strcmp(name, "_count") == 0   ? R_COUNT
              : strcmp(name, "_sum") == 0   ? R_SUM
              : strcmp(name, "_stats") == 0 ? R_STATS
                                            : R_DISTINCT;
    return r;
}

static void sv_clear(sv_t *v)
{
    for (size_t i = 0; i < v->n; i++) {
        sv_clear(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    memset(v, 0, sizeof(*v));
}

void stt__reducer_reset(stt__reducer_t *r)
{
    kind_t k = r->kind;
    sv_clear(&r->sum);
    stt_buf_free(&r->sum_error);
    free(r->set);
    memset(r, 0, sizeof(*r));
    r->kind = k;
}

void stt__reducer_free(stt__reducer_t *r)
{
    if (!r) return;
    stt__reducer_reset(r);
    free(r);
}

static bool num_is_float(const stt_json_t *v)
{
    return strpbrk(v->u.s, ".eE") != NULL;
}

static sv_t *sv_push(sv_t *a)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 4;
        a->items = stt_xrealloc(a->items, a->cap * sizeof(*a->items));
        if (a->t == SV_OBJ) a->keys = stt_xrealloc(a->keys, a->cap * sizeof(*a->keys));
    }
    sv_t *x = &a->items[a->n++];
    memset(x, 0, sizeof(*x));
    return x;
}

/* Adds v into acc; false when v cannot be summed (CouchDB's builtin_reduce_error). */
static bool sv_add(sv_t *acc, const stt_json_t *v)
{
    switch (v->type) {
    case STT_JSON_NUMBER: {
        double d = strtod(v->u.s, NULL);
        bool f = num_is_float(v);
        if (acc->t == SV_NONE) {
            acc->t = SV_NUM;
            acc->num = d;
            acc->isfloat = f;
            return true;
        }
        if (acc->t == SV_NUM) {
            acc->num += d;
            acc->isfloat |= f;
            return true;
        }
        if (acc->t == SV_ARR) { /* a number adds to an array's first item */
            if (!acc->n) sv_push(acc)->t = SV_NUM;
            acc->items[0].num += d;
            acc->items[0].isfloat |= f;
            return true;
        }
        return false;
    }
    case STT_JSON_ARRAY: {
        for (uint32_t i = 0; i < v->len; i++)
            if (v->u.items[i].type != STT_JSON_NUMBER) return false;
        if (acc->t == SV_OBJ) return false;
        if (acc->t == SV_NUM) { /* number then array: the number joins item 0 */
            double d = acc->num;
            bool f = acc->isfloat;
            memset(acc, 0, sizeof(*acc));
            acc->t = SV_ARR;
            sv_t *x = sv_push(acc);
            x->t = SV_NUM;
            x->num = d;
            x->isfloat = f;
        }
        acc->t = SV_ARR;
        for (uint32_t i = 0; i < v->len; i++) {
            if (i >= acc->n) sv_push(acc)->t = SV_NUM;
            acc->items[i].num += strtod(v->u.items[i].u.s, NULL);
            acc->items[i].isfloat |= num_is_float(&v->u.items[i]);
        }
        return true;
    }
    case STT_JSON_OBJECT:
        if (acc->t != SV_NONE && acc->t != SV_OBJ) return false;
        acc->t = SV_OBJ;
        for (uint32_t i = 0; i < v->len; i++) {
            const stt_json_member_t *m = &v->u.members[i];
            sv_t *slot = NULL;
            for (size_t j = 0; j < acc->n && !slot; j++)
                if (strlen(acc->keys[j]) == m->keylen && memcmp(acc->keys[j], m->key, m->keylen) == 0)
                    slot = &acc->items[j];
            if (!slot) {
                slot = sv_push(acc);
                acc->keys[acc->n - 1] = stt_xstrndup(m->key, m->keylen);
            }
            if (!sv_add(slot, &m->val)) return false;
        }
        return true;
    default:
        return false;
    }
}

/* Erlang prints floats shortest-round-trip and always with a dot. */
static void put_num(stt_buf_t *out, double d, bool isfloat)
{
    char t[40];
    if (!isfloat && fabs(d) < 9007199254740992.0) {
        snprintf(t, sizeof(t), "%.0f", d);
        stt_buf_appends(out, t);
        return;
    }
    for (int p = 15; p <= 17; p++) {
        snprintf(t, sizeof(t), "%.*g", p, d);
        if (strtod(t, NULL) == d) break;
    }
    stt_buf_appends(out, t);
    if (!strpbrk(t, ".eEn")) stt_buf_appends(out, ".0");
}

static void sv_write(stt_buf_t *out, const sv_t *v)
{
    switch (v->t) {
    case SV_NONE:
        stt_buf_appendc(out, '0');
        return;
    case SV_NUM:
        put_num(out, v->num, v->isfloat);
        return;
    case SV_ARR:
        stt_buf_appendc(out, '[');
        for (size_t i = 0; i < v->n; i++) {
            if (i) stt_buf_appendc(out, ',');
            sv_write(out, &v->items[i]);
        }
        stt_buf_appendc(out, ']');
        return;
    case SV_OBJ:
        stt_buf_appendc(out, '{');
        for (size_t i = 0; i < v->n; i++) {
            if (i) stt_buf_appendc(out, ',');
            stt_json_write_cstr(out, v->keys[i]);
            stt_buf_appendc(out, ':');
            sv_write(out, &v->items[i]);
        }
        stt_buf_appendc(out, '}');
        return;
    }
}

/* CouchDB shows the offending value as an Erlang term: a string as <<bytes>>. */
const char *stt__stats_reason(const stt_json_t *v, stt_arena_t *a)
{
    stt_buf_t b = STT_BUF_INIT;
    stt_buf_appends(&b, "non-numeric _stats input: ");
    if (v->type == STT_JSON_STRING) {
        stt_buf_appends(&b, "<<");
        for (uint32_t i = 0; i < v->len; i++)
            stt_buf_appendf(&b, i ? ",%u" : "%u", (unsigned char)v->u.s[i]);
        stt_buf_appends(&b, ">>");
    } else {
        stt_json_write(&b, v);
    }
    const char *r = stt_arena_strndup(a, b.base, b.len);
    stt_buf_free(&b);
    return r;
}

int stt__reducer_add(stt__reducer_t *r, const stt_json_t *key, const char *keytext, size_t keylen,
                     const stt_json_t *value, stt_arena_t *a, const char **reason)
{
    r->count++;
    switch (r->kind) {
    case R_COUNT:
        return 0;
    case R_SUM:
        if (!r->sum_failed && !sv_add(&r->sum, value)) {
            r->sum_failed = true;
            stt_json_write(&r->sum_error, value);
        }
        return 0;
    case R_STATS: {
        if (value->type != STT_JSON_NUMBER) {
            *reason = stt__stats_reason(value, a);
            return STT_VIEW_E_INVALID_VALUE;
        }
        double d = strtod(value->u.s, NULL);
        bool f = num_is_float(value);
        r->s_float |= f;
        if (r->count == 1 || d < r->s_min) {
            r->s_min = d;
            r->s_min_float = f;
        }
        if (r->count == 1 || d > r->s_max) {
            r->s_max = d;
            r->s_max_float = f;
        }
        r->s_sum += d;
        r->s_sqr += d * d;
        return 0;
    }
    case R_DISTINCT: {
        uint64_t h = XXH3_64bits(keytext, keylen);
        for (size_t i = 0; i < r->setn; i++)
            if (r->set[i] == h) return 0;
        if (r->setn == r->setcap) {
            r->setcap = r->setcap ? r->setcap * 2 : 16;
            r->set = stt_xrealloc(r->set, r->setcap * sizeof(*r->set));
        }
        r->set[r->setn++] = h;
        return 0;
    }
    }
    return 0;
}

void stt__reducer_result(stt__reducer_t *r, stt_buf_t *out)
{
    switch (r->kind) {
    case R_COUNT:
        stt_buf_append_u64(out, r->count);
        return;
    case R_SUM:
        if (r->sum_failed) {
            stt_buf_appends(out, "{\"error\":\"builtin_reduce_error\",\"reason\":\"The _sum function requires that "
                                 "map values be numbers, arrays of numbers, or objects. Objects cannot be mixed "
                                 "with other data structures. Objects can be arbitrarily nested, provided that the "
                                 "values for all fields are themselves numbers, arrays of numbers, or "
                                 "objects.\",\"caused_by\":");
            stt_buf_append(out, r->sum_error.base, r->sum_error.len);
            stt_buf_appendc(out, '}');
            return;
        }
        sv_write(out, &r->sum);
        return;
    case R_STATS:
        stt_buf_appends(out, "{\"sum\":");
        put_num(out, r->s_sum, r->s_float);
        stt_buf_appends(out, ",\"count\":");
        stt_buf_append_u64(out, r->count);
        stt_buf_appends(out, ",\"min\":");
        put_num(out, r->s_min, r->s_min_float);
        stt_buf_appends(out, ",\"max\":");
        put_num(out, r->s_max, r->s_max_float);
        stt_buf_appends(out, ",\"sumsqr\":");
        put_num(out, r->s_sqr, r->s_float);
        stt_buf_appendc(out, '}');
        return;
    case R_DISTINCT:
        stt_buf_append_u64(out, r->setn);
        return;
    }
}
