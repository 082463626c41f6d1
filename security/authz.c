/* User contexts and _security objects: CouchDB's couch_db is_admin / is_member
 * and the shape check of a _security body. Pure functions of their arguments. */
#include "security/security.h"
#include <string.h>

bool stt_user_has_role(const stt_user_ctx_t *u, const char *role)
{
    for (size_t i = 0; u && i < u->nroles; i++)
        if (strcmp(u->roles[i], role) == 0) return true;
    return false;
}

void stt_user_ctx_write(stt_buf_t *out, const stt_user_ctx_t *u)
{
    stt_buf_appends(out, "{\"name\":");
    if (!u->name)
        stt_buf_appends(out, "null");
    else if (u->name_is_number)
        stt_buf_append(out, u->name, u->namelen);
    else
        stt_json_write_str(out, u->name, u->namelen);
    stt_buf_appends(out, ",\"roles\":[");
    for (size_t i = 0; i < u->nroles; i++) {
        if (i) stt_buf_appendc(out, ',');
        stt_json_write_cstr(out, u->roles[i]);
    }
    stt_buf_appends(out, "]}");
}

/* ------------------------------------------------------------------ _security */

static int check_list(const stt_json_t *grp, const char *key, const char **reason)
{
    const stt_json_t *v = stt_json_get(grp, key);
    if (!v) return 0;
    if (v->type != STT_JSON_ARRAY) goto bad;
    for (uint32_t i = 0; i < v->len; i++)
        if (v->u.items[i].type != STT_JSON_STRING) goto bad;
    return 0;
bad:
    *reason =
        strcmp(key, "names") == 0 ? "names must be a JSON list of strings" : "roles must be a JSON list of strings";
    return -1;
}

int stt_security_validate(const stt_json_t *sec, const char **reason)
{
    if (!sec || sec->type != STT_JSON_OBJECT) {
        *reason = "Security Object must be a JSON object";
        return -1;
    }
    /* "readers" is checked as members when there are none, as CouchDB reads it then */
    bool legacy = !stt_json_get(sec, "members");
    static const char *const groups[] = {"admins", "members", "readers"};
    for (int g = 0; g < 3; g++) {
        if (g == 2 && !legacy) break;
        const stt_json_t *grp = stt_json_get(sec, groups[g]);
        if (!grp) continue;
        if (grp->type != STT_JSON_OBJECT) {
            *reason = g == 0 ? "admins must be a JSON object" : "members must be a JSON object";
            return -1;
        }
        if (check_list(grp, "names", reason) || check_list(grp, "roles", reason)) return -1;
    }
    return 0;
}

static const stt_json_t *group_list(const stt_json_t *sec, const char *group, const char *key)
{
    const stt_json_t *g = sec ? stt_json_get(sec, group) : NULL;
    /* "readers" is the pre-1.0 name of members, which CouchDB still honours */
    if (!g && strcmp(group, "members") == 0 && sec) g = stt_json_get(sec, "readers");
    if (!g || g->type != STT_JSON_OBJECT) return NULL;
    const stt_json_t *l = stt_json_get(g, key);
    return l && l->type == STT_JSON_ARRAY ? l : NULL;
}

static bool name_in(const stt_json_t *names, const stt_user_ctx_t *u)
{
    if (!names || !u->name || u->name_is_number) return false;
    for (uint32_t i = 0; i < names->len; i++) {
        const stt_json_t *n = &names->u.items[i];
        if (n->type == STT_JSON_STRING && n->len == u->namelen && memcmp(n->u.s, u->name, u->namelen) == 0) return true;
    }
    return false;
}

static bool role_in(const stt_json_t *roles, const stt_user_ctx_t *u)
{
    for (uint32_t i = 0; roles && i < roles->len; i++) {
        const stt_json_t *r = &roles->u.items[i];
        if (r->type != STT_JSON_STRING) continue;
        for (size_t k = 0; k < u->nroles; k++)
            if (strlen(u->roles[k]) == r->len && memcmp(u->roles[k], r->u.s, r->len) == 0) return true;
    }
    return false;
}

bool stt_security_is_db_admin(const stt_json_t *sec, const stt_user_ctx_t *u)
{
    if (stt_user_is_admin(u)) return true;
    return role_in(group_list(sec, "admins", "roles"), u) || name_in(group_list(sec, "admins", "names"), u);
}

bool stt_security_is_member(const stt_json_t *sec, const stt_user_ctx_t *u)
{
    if (stt_security_is_db_admin(sec, u)) return true;
    const stt_json_t *names = group_list(sec, "members", "names"), *roles = group_list(sec, "members", "roles");
    if ((!names || names->len == 0) && (!roles || roles->len == 0)) return true; /* a public db */
    return role_in(roles, u) || name_in(names, u);
}
