/* The _find/_explain request as CouchDB's mango_opts validates it (its error
 * names, reasons and order), sort specs as mango_sort reads them, and the
 * small helpers the rest of mango/ shares for CouchDB's error replies.
 *
 * Bookmarks. A bookmark is base64url of a JSON array naming the last doc sent:
 * [id] in _all_docs order, [key, id] in a json index's order (key: the row's
 * key, an array of the index's field values). A request carrying one resumes
 * strictly after that position, as CouchDB resumes after its bookmark's view
 * key; being a position rather than a count, paging visits every match once
 * even while docs before it change. */
#include "mango/mango_int.h"
#include "src/common/codec.h"
#include "src/common/err.h"
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------ errors */

int stt__merr(stt_mango_err_t *err, int status, const char *error, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->reason, sizeof(err->reason), fmt, ap);
    va_end(ap);
    err->status = status;
    err->error = error;
    err->ref = false;
    return STT_MANGO_E;
}

/* CouchDB quotes a bad value as the Erlang term jiffy made of it: ~w writes
 * binaries as bytes (<<97,98>>), ~p as text when printable (<<"ab">>);
 * objects are {[{K,V},...]}, null/true/false atoms. */
static void erl_bin(stt_buf_t *b, const char *s, size_t len, bool pretty)
{
    bool printable = pretty;
    for (size_t i = 0; i < len && printable; i++)
        printable = (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f;
    stt_buf_appends(b, "<<");
    if (printable && len) {
        stt_buf_appendc(b, '"');
        for (size_t i = 0; i < len; i++) {
            if (s[i] == '"' || s[i] == '\\') stt_buf_appendc(b, '\\');
            stt_buf_appendc(b, s[i]);
        }
        stt_buf_appendc(b, '"');
    } else {
        for (size_t i = 0; i < len; i++)
            stt_buf_appendf(b, i ? ",%u" : "%u", (unsigned char)s[i]);
    }
    stt_buf_appends(b, ">>");
}

static void erl_term(stt_buf_t *b, const stt_json_t *v, bool pretty)
{
    switch (v->type) {
    case STT_JSON_STRING:
        erl_bin(b, v->u.s, v->len, pretty);
        return;
    case STT_JSON_ARRAY:
        stt_buf_appendc(b, '[');
        for (uint32_t i = 0; i < v->len; i++) {
            if (i) stt_buf_appendc(b, ',');
            erl_term(b, &v->u.items[i], pretty);
        }
        stt_buf_appendc(b, ']');
        return;
    case STT_JSON_OBJECT:
        stt_buf_appends(b, "{[");
        for (uint32_t i = 0; i < v->len; i++) {
            stt_buf_appends(b, i ? ",{" : "{");
            erl_bin(b, v->u.members[i].key, v->u.members[i].keylen, pretty);
            stt_buf_appendc(b, ',');
            erl_term(b, &v->u.members[i].val, pretty);
            stt_buf_appendc(b, '}');
        }
        stt_buf_appends(b, "]}");
        return;
    default:
        stt_json_write(b, v);
    }
}

static const char *cut(stt_arena_t *a, stt_buf_t *b)
{
    size_t n = b->len > STT_MANGO_MAX_TERM ? STT_MANGO_MAX_TERM : b->len;
    char *s = stt_arena_strndup(a, b->base, n);
    stt_buf_free(b);
    return s;
}

const char *stt__term(stt_arena_t *a, const stt_json_t *v)
{
    stt_buf_t b = STT_BUF_INIT;
    erl_term(&b, v, false);
    return cut(a, &b);
}

const char *stt__term_p(stt_arena_t *a, const stt_json_t *v)
{
    stt_buf_t b = STT_BUF_INIT;
    erl_term(&b, v, true);
    return cut(a, &b);
}

const char *stt__json_term(stt_arena_t *a, const stt_json_t *v)
{
    stt_buf_t b = STT_BUF_INIT;
    stt_json_write(&b, v);
    return cut(a, &b);
}

/* "Bad argument for operator $op: <JSON>" from the selector compiler, told
 * as CouchDB tells it: the argument as an Erlang term, a non-string $regex or
 * $beginsWith as an unknown operator, and $mod by zero as the badarith it
 * crashes with. 0 when it is not such a reason. */
static int bad_arg(stt_mango_err_t *err, const char *reason)
{
    static const char pfx[] = "Bad argument for operator ";
    if (strncmp(reason, pfx, sizeof(pfx) - 1) != 0) return 0;
    const char *op = reason + sizeof(pfx) - 1, *colon = strstr(op, ": ");
    if (!colon) return 0;
    stt_arena_t a = STT_ARENA_INIT;
    stt_json_t v;
    int rc = 0;
    int oplen = (int)(colon - op);
    if (stt_json_parse(&a, colon + 2, strlen(colon + 2), &v, NULL, 0) != 0) goto exit;
    if ((stt__str_is(op, (size_t)oplen, "$regex") || stt__str_is(op, (size_t)oplen, "$beginsWith")) &&
        v.type != STT_JSON_STRING) {
        rc = stt__merr(err, 400, "invalid_operator", "Invalid operator: %.*s", oplen, op);
    } else if (stt__str_is(op, (size_t)oplen, "$mod") && v.type == STT_JSON_ARRAY && v.len == 2 &&
               v.u.items[0].type == STT_JSON_NUMBER && stt__str_is(v.u.items[0].u.s, v.u.items[0].len, "0")) {
        rc = stt__merr(err, 500, "unknown_error", "badarith");
        err->ref = true;
    } else {
        rc = stt__merr(err, 400, "bad_arg", "Bad argument for operator %.*s: %s", oplen, op, stt__term(&a, &v));
    }
exit:
    stt_arena_free(&a);
    return rc;
}

int stt__selector_err(stt_mango_err_t *err, const char *reason)
{
    static const struct {
        const char *prefix, *error;
    } names[] = {
        {"Invalid operator", "invalid_operator"},  {"Bad argument", "bad_arg"},
        {"Unsupported operator", "not_supported"}, {"One or more conditions", "invalid_selector"},
        {"Invalid field name", "bad_field"},
    };
    int rc = bad_arg(err, reason);
    if (rc) return rc;
    const char *error = "bad_request";
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strncmp(reason, names[i].prefix, strlen(names[i].prefix)) == 0) error = names[i].error;
    return stt__merr(err, 400, error, "%s", reason);
}

/* jiffy reads a number without '.', 'e' or 'E' as an integer: mango_opts wants
 * those. Integers past 64 bits saturate (a limit that large means "all"). */
bool stt__non_neg_int(const stt_json_t *v, uint64_t *out)
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

bool stt__is_bool(const stt_json_t *v)
{
    return v->type == STT_JSON_TRUE || v->type == STT_JSON_FALSE;
}

bool stt__str_is(const char *s, size_t len, const char *lit)
{
    return len == strlen(lit) && memcmp(s, lit, len) == 0;
}

/* mango_opts:validate's last check: a member it does not know is an error. */
int stt__known_keys(const stt_json_t *obj, const char *const *known, size_t nknown, stt_mango_err_t *err)
{
    for (uint32_t i = 0; i < obj->len; i++) {
        const stt_json_member_t *m = &obj->u.members[i];
        bool ok = false;
        for (size_t k = 0; k < nknown && !ok; k++)
            ok = stt__str_is(m->key, m->keylen, known[k]);
        if (!ok)
            return stt__merr(err, 400, "invalid_key", "Invalid key %.*s for this request.",
                             (int)(m->keylen > STT_MANGO_MAX_TERM ? STT_MANGO_MAX_TERM : m->keylen), m->key);
    }
    return 0;
}

/* ------------------------------------------------------------------ sort specs */

int stt__parse_sort(stt_arena_t *a, const stt_json_t *sort, stt__field_t **out, uint32_t *nout, bool *desc,
                    stt_mango_err_t *err)
{
    if (sort->type != STT_JSON_ARRAY)
        return stt__merr(err, 400, "invalid_sort_json", "Sort must be an array of sort specs, not: %s",
                         stt__term_p(a, sort));
    stt__field_t *f = stt_arena_alloc(a, (sort->len ? sort->len : 1) * sizeof(*f));
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
            if (v->type == STT_JSON_STRING && stt__str_is(v->u.s, v->len, "asc"))
                d = 1;
            else if (v->type == STT_JSON_STRING && stt__str_is(v->u.s, v->len, "desc"))
                d = 2;
            else
                d = 0; /* mango_sort: a bad direction is a bad sort field */
            if (d) name = m->key, namelen = m->keylen;
        }
        if (!name || stt_field_parse(a, name, namelen, &f[i].parts, &f[i].nparts) != 0)
            return stt__merr(err, 400, "invalid_sort_field", "Invalid sort field: %s", stt__term_p(a, s));
        f[i].name = name, f[i].namelen = namelen;
        if (dir && d != dir)
            return stt__merr(err, 400, "unsupported_mixed_sort",
                             "Sorts currently only support a single direction for all fields.");
        dir = d;
    }
    *out = f;
    *nout = sort->len;
    *desc = dir == 2;
    return 0;
}

/* ------------------------------------------------------------------ bookmarks */

void stt__bookmark_encode(stt_buf_t *out, const char *json, size_t len)
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

/* base64url (padded or not) of a JSON array [..., id], parsed into a. */
static int bookmark_decode(stt_arena_t *a, const char *s, size_t len, stt_json_t *out)
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
        rc = stt_json_parse(a, raw.base, raw.len, out, NULL, 0) == 0 && out->type == STT_JSON_ARRAY &&
                     (out->len == 1 || out->len == 2) && out->u.items[out->len - 1].type == STT_JSON_STRING
                 ? 0
                 : -1;
    stt_buf_free(&t);
    stt_buf_free(&raw);
    return rc;
}

/* ------------------------------------------------------------------ the query */

void stt__query_free(stt__query_t *q)
{
    stt_selector_free(q->sel);
    q->sel = NULL;
}

/* use_index as mango_opts:validate_use_index normalizes it, into a. */
static bool use_index_ok(stt_arena_t *a, const stt_json_t *v, stt_json_t *out)
{
    stt_buf_t b = STT_BUF_INIT;
    bool ok = true;
    if (v->type == STT_JSON_NULL || (v->type == STT_JSON_ARRAY && v->len == 0)) {
        stt_buf_appends(&b, "[]");
    } else if (v->type == STT_JSON_STRING) {
        const char *s = v->u.s, *slash = memchr(s, '/', v->len);
        stt_buf_appendc(&b, '[');
        if (!slash) {
            stt_json_write(&b, v);
        } else if (slash - s == 7 && memcmp(s, "_design", 7) == 0) {
            stt_json_write_str(&b, slash + 1, v->len - 8);
        } else {
            stt_json_write_str(&b, s, (size_t)(slash - s));
            stt_buf_appendc(&b, ',');
            stt_json_write_str(&b, slash + 1, v->len - (size_t)(slash - s) - 1);
        }
        stt_buf_appendc(&b, ']');
    } else if (v->type == STT_JSON_ARRAY && v->len <= 2 && stt_json_is_str(&v->u.items[0]) &&
               (v->len == 1 || stt_json_is_str(&v->u.items[1]))) {
        stt_json_write(&b, v);
    } else {
        ok = false;
    }
    if (ok) ok = stt_json_parse(a, b.base, b.len, out, NULL, 0) == 0;
    stt_buf_free(&b);
    return ok;
}

int stt__query_parse(stt_arena_t *a, const stt_json_t *body, stt__query_t *q, stt_mango_err_t *err)
{
    static const char *const known[] = {
        "selector",      "use_index", "bookmark",  "limit", "skip",   "sort",   "fields",
        "partition",     "r",         "conflicts", "stale", "update", "stable", "execution_stats",
        "allow_fallback"};
    memset(q, 0, sizeof(*q));
    q->limit = STT_MANGO_DEFAULT_LIMIT;
    q->update = true;
    q->allow_fallback = true;
    q->r = 1;
    const stt_json_t *v;
    char serr[256];
    int rc;

    v = stt_json_get(body, "selector");
    if (!v) return stt__merr(err, 400, "missing_required_key", "Missing required key: selector");
    if (v->type != STT_JSON_OBJECT)
        return stt__merr(err, 400, "invalid_selector_json", "Selector must be a JSON object, not: %s", stt__term(a, v));
    if (stt_selector_compile(a, v, &q->sel, serr, sizeof(serr)) != 0) return stt__selector_err(err, serr);
    q->selector_json = v;

    if ((v = stt_json_get(body, "use_index")) != NULL) {
        if (!use_index_ok(a, v, &q->use_index)) {
            rc = stt__merr(err, 400, "invalid_index_name", "Invalid index name: %s", stt__term(a, v));
            goto fail;
        }
    } else {
        q->use_index.type = STT_JSON_ARRAY;
    }
    if ((v = stt_json_get(body, "bookmark")) != NULL && v->type != STT_JSON_NULL) {
        if (v->type != STT_JSON_STRING) {
            /* mango_opts lets it through and then fails on it */
            rc = stt__merr(err, 500, "unknown_error", "Unknown Error: mango_opts :: {invalid_bookmark,%s}",
                           stt__term(a, v));
            err->ref = true;
            goto fail;
        }
        /* "" is no bookmark; "nil", which a query that returned nothing hands
         * back, is refused as CouchDB refuses it */
        if (v->len) {
            q->bookmark_str = v;
            if (bookmark_decode(a, v->u.s, v->len, &q->bookmark) != 0) {
                rc = stt__merr(err, 400, "invalid_bookmark", "Invalid bookmark value: %s", stt__json_term(a, v));
                goto fail;
            }
            q->have_bookmark = true;
        }
    }
    if ((v = stt_json_get(body, "limit")) != NULL && !stt__non_neg_int(v, &q->limit)) {
        rc = stt__merr(err, 400, "invalid_non_neg_integer", "%s is not an integer greater than or equal to zero",
                       stt__term(a, v));
        goto fail;
    }
    if ((v = stt_json_get(body, "skip")) != NULL && !stt__non_neg_int(v, &q->skip)) {
        rc = stt__merr(err, 400, "invalid_non_neg_integer", "%s is not an integer greater than or equal to zero",
                       stt__term(a, v));
        goto fail;
    }
    if ((v = stt_json_get(body, "sort")) != NULL) {
        rc = stt__parse_sort(a, v, &q->sort, &q->nsort, &q->desc, err);
        if (rc) goto fail;
    }
    if ((v = stt_json_get(body, "fields")) != NULL) {
        if (v->type != STT_JSON_ARRAY) {
            rc = stt__merr(err, 400, "invalid_fields", "Fields must be an array of strings, not: %s", stt__term(a, v));
            goto fail;
        }
        q->fields = stt_arena_alloc(a, (v->len ? v->len : 1) * sizeof(*q->fields));
        for (uint32_t i = 0; i < v->len; i++) {
            const stt_json_t *f = &v->u.items[i];
            if (f->type != STT_JSON_STRING) {
                rc = stt__merr(err, 400, "invalid_field", "Invalid JSON for field spec: %s", stt__term(a, f));
                goto fail;
            }
            stt__field_t *fl = &q->fields[i];
            fl->name = f->u.s, fl->namelen = f->len;
            /* a name that cannot be a path ("", "a..b") is never found, as in
             * CouchDB where it is accepted and then matches nothing */
            if (stt_field_parse(a, f->u.s, f->len, &fl->parts, &fl->nparts) != 0) fl->nparts = 0;
        }
        q->nfields = v->len;
        q->fields_json = v;
    }
    if ((v = stt_json_get(body, "partition")) != NULL) {
        if (v->type != STT_JSON_STRING) {
            rc = stt__merr(err, 400, "invalid_string", "Invalid string: %s", stt__term(a, v));
            goto fail;
        }
        if (v->len) {
            rc = stt__merr(err, 400, "bad_request", "`partition` parameter is not supported in this db.");
            goto fail;
        }
    }
    if ((v = stt_json_get(body, "r")) != NULL && (!stt__non_neg_int(v, &q->r) || q->r == 0)) {
        rc = stt__merr(err, 400, "invalid_pos_integer", "%s is not an integer greater than zero", stt__term(a, v));
        goto fail;
    }
    static const struct {
        const char *key;
        size_t off;
    } bools[] = {
        {"conflicts", offsetof(stt__query_t, conflicts)},
        {"update", offsetof(stt__query_t, update)},
        {"stable", offsetof(stt__query_t, stable)},
        {"execution_stats", offsetof(stt__query_t, execution_stats)},
        {"allow_fallback", offsetof(stt__query_t, allow_fallback)},
    };
    for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
        if ((v = stt_json_get(body, bools[i].key)) == NULL) continue;
        if (!stt__is_bool(v)) {
            rc = stt__merr(err, 400, "invalid_boolean", "Invalid boolean value: %s", stt__term(a, v));
            goto fail;
        }
        *(bool *)((char *)q + bools[i].off) = v->type == STT_JSON_TRUE;
    }
    if ((v = stt_json_get(body, "stale")) != NULL) {
        if (!(v->type == STT_JSON_FALSE || (v->type == STT_JSON_STRING && (stt__str_is(v->u.s, v->len, "ok") ||
                                                                           stt__str_is(v->u.s, v->len, "false"))))) {
            rc = stt__merr(err, 400, "invalid_value", "Invalid value for stale: %s", stt__term(a, v));
            goto fail;
        }
        q->stale = v;
        /* mango_opts: stale "ok" is update false and stable true */
        if (v->type == STT_JSON_STRING && stt__str_is(v->u.s, v->len, "ok")) q->update = false, q->stable = true;
    }
    rc = stt__known_keys(body, known, sizeof(known) / sizeof(known[0]), err);
    if (rc) goto fail;
    return 0;
fail:
    stt__query_free(q);
    return rc;
}
