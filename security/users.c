/* The _users database's rules, as CouchDB 3.4's couch_users_db (before_doc_update,
 * after_doc_read) and the validate_doc_update of its _design/_auth, done natively:
 * settee runs no JavaScript for them.
 *
 * Duplicate keys: CouchDB keeps the last occurrence of a key, so {"roles":["_admin"],
 * "roles":[]} is a user without roles (CVE-2017-12635). Every lookup here takes the
 * last occurrence and the stored body keeps only that one, so what is checked is
 * what is stored. */
#include "security/security.h"
#include "security/crypto.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char stt_users_auth_ddoc[] =
    "{\"language\":\"javascript\",\"validate_doc_update\":\"function(newDoc, oldDoc, userCtx, secObj) { /* "
    "settee enforces the _users rules natively: type user, name matching the id, roles an array of strings, no "
    "role changes and no system roles by non-admins, names not starting with an underscore. This function is "
    "informational. */ }\"}";

static const stt_json_t *get_last(const stt_json_t *obj, const char *key)
{
    if (!obj || obj->type != STT_JSON_OBJECT) return NULL;
    size_t klen = strlen(key);
    const stt_json_t *v = NULL;
    for (uint32_t i = 0; i < obj->len; i++)
        if (obj->u.members[i].keylen == klen && memcmp(obj->u.members[i].key, key, klen) == 0)
            v = &obj->u.members[i].val;
    return v;
}

static bool later_dup(const stt_json_t *obj, uint32_t i)
{
    const stt_json_member_t *m = &obj->u.members[i];
    for (uint32_t k = i + 1; k < obj->len; k++)
        if (obj->u.members[k].keylen == m->keylen && memcmp(obj->u.members[k].key, m->key, m->keylen) == 0) return true;
    return false;
}

static bool is_password_field(const char *k, size_t len)
{
    static const char *const f[] = {"derived_key",  "iterations",    "password",   "password_scheme",
                                    "password_sha", "preserve_salt", "pbkdf2_prf", "salt"};
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        if (strlen(f[i]) == len && memcmp(f[i], k, len) == 0) return true;
    return false;
}

/* JS truthiness, for the validation's `!newDoc.name` style checks */
static bool truthy(const stt_json_t *v)
{
    if (!v) return false;
    switch (v->type) {
    case STT_JSON_NULL:
    case STT_JSON_FALSE:
        return false;
    case STT_JSON_STRING:
        return v->len > 0;
    case STT_JSON_NUMBER:
        return !(v->len == 1 && v->u.s[0] == '0') && strcmp(v->u.s, "-0") != 0 && strcmp(v->u.s, "0.0") != 0;
    default:
        return true;
    }
}

static bool str_eq(const stt_json_t *v, const char *s, size_t len)
{
    return v && v->type == STT_JSON_STRING && v->len == len && memcmp(v->u.s, s, len) == 0;
}

static bool json_same(const stt_json_t *a, const stt_json_t *b)
{
    if (!a || !b) return a == b;
    return stt_json_equal(a, b);
}

/* name of an org.couchdb.user: id, NULL otherwise */
static const char *doc_name(const char *id, size_t idlen, size_t *len)
{
    size_t plen = sizeof(STT_USER_PREFIX) - 1;
    if (idlen < plen || memcmp(id, STT_USER_PREFIX, plen) != 0) return NULL;
    *len = idlen - plen;
    return id + plen;
}

static int cmp_roles(const void *a, const void *b)
{
    const stt_json_t *x = *(const stt_json_t *const *)a, *y = *(const stt_json_t *const *)b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->u.s, y->u.s, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

static bool same_roles(stt_arena_t *a, const stt_json_t *oldr, const stt_json_t *newr)
{
    uint32_t n = oldr && oldr->type == STT_JSON_ARRAY ? oldr->len : 0;
    if (n != newr->len) return false;
    if (n == 0) return true;
    const stt_json_t **x = stt_arena_alloc(a, n * sizeof(*x)), **y = stt_arena_alloc(a, n * sizeof(*y));
    for (uint32_t i = 0; i < n; i++) {
        x[i] = &oldr->u.items[i];
        y[i] = &newr->u.items[i];
        if (x[i]->type != STT_JSON_STRING) return false;
    }
    qsort(x, n, sizeof(*x), cmp_roles);
    qsort(y, n, sizeof(*y), cmp_roles);
    for (uint32_t i = 0; i < n; i++)
        if (cmp_roles(&x[i], &y[i])) return false;
    return true;
}

#define DENY(r)                                                                                                        \
    do {                                                                                                               \
        *reason = (r);                                                                                                 \
        return 403;                                                                                                    \
    } while (0)

/* The checks of _design/_auth's validate_doc_update on the doc to be stored. */
static int validate(stt_arena_t *a, const stt_user_ctx_t *u, const stt_json_t *sec, const char *id, size_t idlen,
                    const stt_json_t *doc, const stt_json_t *olddoc, const char **reason)
{
    const stt_json_t *type = get_last(doc, "type"), *name = get_last(doc, "name"), *roles = get_last(doc, "roles");
    if (!str_eq(type, "user", 4)) DENY("doc.type must be user");
    if (!truthy(name)) DENY("doc.name is required");
    if (!truthy(roles)) DENY("doc.roles must exist");
    if (roles->type != STT_JSON_ARRAY) DENY("doc.roles must be an array");
    for (uint32_t i = 0; i < roles->len; i++)
        if (roles->u.items[i].type != STT_JSON_STRING) DENY("doc.roles can only contain strings");
    size_t plen = sizeof(STT_USER_PREFIX) - 1;
    bool id_ok = (name->type == STT_JSON_STRING || name->type == STT_JSON_NUMBER) && idlen == plen + name->len &&
                 memcmp(id, STT_USER_PREFIX, plen) == 0 && memcmp(id + plen, name->u.s, name->len) == 0;
    if (!id_ok) DENY("Doc ID must be of the form org.couchdb.user:name");
    if (olddoc && !json_same(get_last(olddoc, "name"), name)) DENY("Usernames can not be changed.");
    if (truthy(get_last(doc, "password_sha")) && !truthy(get_last(doc, "salt")))
        DENY("Users with password_sha must have a salt.See /_utils/script/couch.js for example code.");
    const stt_json_t *scheme = get_last(doc, "password_scheme");
    if (truthy(scheme) && !str_eq(scheme, "simple", 6) && !str_eq(scheme, "pbkdf2", 6)) {
        stt_buf_t b = STT_BUF_INIT;
        stt_buf_appends(&b, "Password scheme `");
        if (scheme->type == STT_JSON_STRING)
            stt_buf_append(&b, scheme->u.s, scheme->len);
        else
            stt_json_write(&b, scheme);
        stt_buf_appends(&b, "` not supported.");
        *reason = stt_arena_memdup(a, b.base, b.len + 1);
        stt_buf_free(&b);
        return 403;
    }
    if (str_eq(scheme, "pbkdf2", 6)) {
        const stt_json_t *it = get_last(doc, "iterations"), *dk = get_last(doc, "derived_key");
        if (!it || it->type != STT_JSON_NUMBER) DENY("iterations must be a number.");
        if (!dk || dk->type != STT_JSON_STRING) DENY("derived_key must be a string.");
    }
    if (!stt_security_is_db_admin(sec, u)) {
        if (olddoc) {
            bool self = u->name && !u->name_is_number && name->type == STT_JSON_STRING && name->len == u->namelen &&
                        memcmp(name->u.s, u->name, u->namelen) == 0;
            if (!self) DENY("You may only update your own user document.");
            if (!same_roles(a, get_last(olddoc, "roles"), roles)) DENY("Only _admin may edit roles");
        } else if (roles->len > 0) {
            DENY("Only _admin may set roles");
        }
    }
    for (uint32_t i = 0; i < roles->len; i++) {
        const stt_json_t *r = &roles->u.items[i];
        if (r->len && r->u.s[0] == '_' && !str_eq(r, "_metrics", 8))
            DENY("No system roles (starting with underscore) in users db.");
    }
    if (name->type == STT_JSON_STRING) {
        if (name->len && name->u.s[0] == '_') DENY("Username may not start with underscore.");
        if (memchr(name->u.s, ':', name->len)) DENY("Character `:` is not allowed in usernames.");
    }
    return 0;
}

int stt_users_before_write(stt_arena_t *arena, const stt_user_ctx_t *u, const stt_json_t *sec, const char *id,
                           size_t idlen, const stt_json_t *newdoc, bool deleted, const stt_json_t *olddoc,
                           const char **body, size_t *bodylen, const char **error, const char **reason)
{
    *body = NULL;
    *error = "forbidden";
    bool is_design = idlen >= 8 && memcmp(id, "_design/", 8) == 0;
    if (is_design) return 0; /* design docs: the db-admin rule applies, checked by the caller */
    size_t dnlen = 0;
    const char *dn = doc_name(id, idlen, &dnlen);
    if (!stt_security_is_db_admin(sec, u)) {
        bool self = u->name && !u->name_is_number && dn && dnlen == u->namelen && memcmp(dn, u->name, dnlen) == 0;
        if (u->name && !self) {
            *error = "not_found";
            *reason = "missing";
            return 404;
        }
    }
    if (deleted) {
        const stt_json_t *oname = get_last(olddoc, "name");
        bool own = u->name && !u->name_is_number && oname && oname->type == STT_JSON_STRING &&
                   oname->len == u->namelen && memcmp(oname->u.s, u->name, u->namelen) == 0;
        if (!stt_user_is_admin(u) && !own) DENY("Only admins may delete other user docs.");
        return 0;
    }
    /* save_doc: hash a clear password, then rebuild the body without duplicates */
    stt_buf_t b = STT_BUF_INIT;
    const stt_json_t *pw = get_last(newdoc, "password");
    bool hashing = pw && pw->type != STT_JSON_NULL;
    stt_buf_appendc(&b, '{');
    bool first = true;
    if (hashing) {
        if (pw->type != STT_JSON_STRING) {
            stt_buf_appends(&b, "Password value of '");
            stt_json_write(&b, pw);
            stt_buf_appends(&b, "' is invalid.");
            /* the value is what was sent; strings never get here */
            size_t off = 1;
            *reason = stt_arena_memdup(arena, b.base + off, b.len - off + 1);
            stt_buf_free(&b);
            return 403;
        }
        stt_user_hash_t h;
        stt_pw_hash_user(pw->u.s, pw->len, 0, &h);
        stt_buf_appendf(&b,
                        "\"password_scheme\":\"pbkdf2\",\"pbkdf2_prf\":\"sha256\",\"salt\":\"%s\","
                        "\"iterations\":%u,\"derived_key\":\"%s\"",
                        h.salt, h.iterations, h.derived_key);
        first = false;
    }
    for (uint32_t i = 0; i < newdoc->len; i++) {
        const stt_json_member_t *m = &newdoc->u.members[i];
        if (m->keylen && m->key[0] == '_') continue;
        if (later_dup(newdoc, i)) continue;
        if (hashing && is_password_field(m->key, m->keylen)) continue;
        if (!first) stt_buf_appendc(&b, ',');
        first = false;
        stt_json_write_str(&b, m->key, m->keylen);
        stt_buf_appendc(&b, ':');
        stt_json_write(&b, &m->val);
    }
    stt_buf_appendc(&b, '}');
    stt_json_t stored;
    char *text = stt_arena_memdup(arena, b.base, b.len + 1);
    size_t len = b.len;
    stt_buf_free(&b);
    if (stt_json_parse(arena, text, len, &stored, NULL, 0) != 0) {
        *reason = "invalid user document";
        return 403;
    }
    int rc = validate(arena, u, sec, id, idlen, &stored, olddoc, reason);
    if (rc) return rc;
    *body = text;
    *bodylen = len;
    return 0;
}

int stt_users_after_read(const stt_user_ctx_t *u, const stt_json_t *sec, const char *id, size_t idlen,
                         const char *public_fields)
{
    bool admin = stt_security_is_db_admin(sec, u);
    if (idlen >= 8 && memcmp(id, "_design/", 8) == 0) return admin ? 0 : 403;
    if (admin) return 0;
    size_t dnlen = 0;
    const char *dn = doc_name(id, idlen, &dnlen);
    if (u->name && !u->name_is_number && dn && dnlen == u->namelen && memcmp(dn, u->name, dnlen) == 0) return 0;
    return public_fields && public_fields[0] ? 1 : 404;
}

void stt_peruser_dbname(const char *prefix, const char *name, size_t len, stt_buf_t *out)
{
    static const char hex[] = "0123456789abcdef";
    stt_buf_appends(out, prefix);
    for (size_t i = 0; i < len; i++) {
        stt_buf_appendc(out, hex[(unsigned char)name[i] >> 4]);
        stt_buf_appendc(out, hex[(unsigned char)name[i] & 15]);
    }
}

int stt_users_public_body(const stt_json_t *body, const char *public_fields, stt_buf_t *out)
{
    int n = 0;
    stt_buf_appendc(out, '{');
    for (uint32_t i = 0; body && body->type == STT_JSON_OBJECT && i < body->len; i++) {
        const stt_json_member_t *m = &body->u.members[i];
        bool listed = false;
        for (const char *p = public_fields; *p && !listed;) {
            while (*p == ' ' || *p == ',' || *p == '\t')
                p++;
            const char *e = p;
            while (*e && *e != ',')
                e++;
            const char *t = e;
            while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
                t--;
            if ((size_t)(t - p) == m->keylen && m->keylen && memcmp(p, m->key, m->keylen) == 0) listed = true;
            p = e;
        }
        if (!listed) continue;
        if (n++) stt_buf_appendc(out, ',');
        stt_json_write_str(out, m->key, m->keylen);
        stt_buf_appendc(out, ':');
        stt_json_write(out, &m->val);
    }
    stt_buf_appendc(out, '}');
    return n;
}
