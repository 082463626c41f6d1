/* Who may read and write what in an access database: the user's principals
 * against each revision's _access, and the checks and rewrites of a write.
 * The index that serves a user's _changes is index.c's. */
#include "access/access.h"
#include "access/access_int.h"
#include "src/common/err.h"
#include "src/common/json.h"
#include "replication/replication.h"
#include <stdlib.h>
#include <string.h>

struct stt_access {
    stt_db_t *db;
    const stt_user_ctx_t *u;
    size_t np;
    const char **p; /* principals: the name (when any), then the roles */
    size_t *plen;
};

stt_access_t *stt_access_open(stt_arena_t *a, stt_db_t *db, const stt_user_ctx_t *u, bool db_admin)
{
    if (db_admin || !stt_access_enabled(db)) return NULL;
    stt_access_t *acc = stt_arena_alloc(a, sizeof(*acc));
    acc->db = db;
    acc->u = u;
    acc->np = 0;
    acc->p = stt_arena_alloc(a, (u->nroles + 1) * sizeof(*acc->p));
    acc->plen = stt_arena_alloc(a, (u->nroles + 1) * sizeof(*acc->plen));
    if (u->name) {
        acc->p[acc->np] = u->name;
        acc->plen[acc->np++] = u->namelen;
    }
    for (size_t i = 0; i < u->nroles; i++) {
        acc->p[acc->np] = u->roles[i];
        acc->plen[acc->np++] = strlen(u->roles[i]);
    }
    return acc;
}

size_t stt__access_principals(const stt_access_t *acc, const char *const **p, const size_t **plen)
{
    *p = acc->p;
    *plen = acc->plen;
    return acc->np;
}

stt_db_t *stt__access_db(const stt_access_t *acc)
{
    return acc->db;
}

bool stt__access_is_design(const char *id, size_t idlen)
{
    return idlen >= 8 && memcmp(id, "_design/", 8) == 0;
}

const stt_json_t *stt__access_list(stt_arena_t *a, const char *json, size_t len)
{
    stt_json_t *body = stt_arena_alloc(a, sizeof(*body));
    char *text = stt_arena_memdup(a, json, len);
    if (stt_json_parse(a, text, len, body, NULL, 0) != 0 || body->type != STT_JSON_OBJECT) return NULL;
    const stt_json_t *l = stt_json_get(body, "_access");
    return l && l->type == STT_JSON_ARRAY ? l : NULL;
}

static bool names(const stt_access_t *acc, const stt_json_t *list)
{
    for (uint32_t i = 0; list && i < list->len; i++) {
        const stt_json_t *v = &list->u.items[i];
        if (v->type != STT_JSON_STRING) continue;
        for (size_t k = 0; k < acc->np; k++)
            if (acc->plen[k] == v->len && memcmp(acc->p[k], v->u.s, v->len) == 0) return true;
    }
    return false;
}

bool stt_access_body_ok(const stt_access_t *acc, const char *json, size_t len)
{
    stt_arena_t a = STT_ARENA_INIT;
    bool ok = names(acc, stt__access_list(&a, json, len));
    stt_arena_free(&a);
    return ok;
}

bool stt_access_node_ok(const stt_access_t *acc, const stt_doc_t *d, int node)
{
    if (node < 0 || stt__access_is_design(d->id, d->idlen)) return false;
    stt_rev_body_t b;
    if (stt_doc_body(d, node, &b) != 0) return false;
    bool ok = stt_access_body_ok(acc, b.json, b.jsonlen);
    stt_rev_body_free(&b);
    return ok;
}

int *stt__access_leaves(const stt_doc_t *d, size_t *n)
{
    int *leaves = stt_xmalloc((d->tree.n ? d->tree.n : 1) * sizeof(int));
    *n = stt_revtree_leaves(&d->tree, leaves);
    return leaves;
}

int stt_access_winner(const stt_access_t *acc, const stt_doc_t *d)
{
    size_t n;
    int *leaves = stt__access_leaves(d, &n);
    int w = -1;
    for (size_t i = 0; i < n && w < 0; i++)
        if (stt_access_node_ok(acc, d, leaves[i])) w = leaves[i];
    free(leaves);
    return w;
}

void stt_access_render_stub(const stt_doc_t *d, int node, stt_buf_t *out)
{
    stt_buf_appends(out, "{\"_id\":");
    stt_json_write_str(out, d->id, d->idlen);
    stt_buf_appends(out, ",\"_rev\":\"");
    stt_revtree_format(&d->tree, node, out);
    stt_buf_appends(out, "\",\"_deleted\":true,\"_revisions\":");
    stt_render_revisions(&d->tree, node, 1000, out);
    stt_buf_appendc(out, '}');
}

/* ------------------------------------------------------------------ rows */

void stt_access_row_free(stt_access_row_t *row)
{
    stt_buf_free(&row->revs);
    free(row->rev);
    free(row->revlen);
    free(row->deleted);
    memset(row, 0, sizeof(*row));
}

/* row->s listing the given nodes of d */
static void row_fill(const stt_doc_t *d, const int *nodes, size_t n, stt_access_row_t *row)
{
    memset(row, 0, sizeof(*row));
    size_t *off = stt_xmalloc((n ? n : 1) * sizeof(size_t));
    row->rev = stt_xmalloc((n ? n : 1) * sizeof(*row->rev));
    row->revlen = stt_xmalloc((n ? n : 1) * sizeof(*row->revlen));
    row->deleted = stt_xmalloc((n ? n : 1) * sizeof(*row->deleted));
    for (size_t i = 0; i < n; i++) {
        off[i] = row->revs.len;
        stt_revtree_format(&d->tree, nodes[i], &row->revs);
        row->revlen[i] = row->revs.len - off[i];
        row->deleted[i] = (d->tree.nodes[nodes[i]].flags & STT_REV_DELETED) != 0;
    }
    for (size_t i = 0; i < n; i++)
        row->rev[i] = row->revs.base + off[i];
    free(off);
    row->s.id = d->id;
    row->s.idlen = d->idlen;
    row->s.seq = d->seq;
    row->s.deleted = n && row->deleted[0];
    row->s.nleaves = n;
    row->s.leaf_rev = row->rev;
    row->s.leaf_revlen = row->revlen;
    row->s.leaf_deleted = row->deleted;
}

bool stt_access_summary(const stt_access_t *acc, const stt_doc_t *d, stt_access_row_t *row)
{
    size_t n, k = 0;
    int *leaves = stt__access_leaves(d, &n);
    for (size_t i = 0; i < n; i++)
        if (stt_access_node_ok(acc, d, leaves[i])) leaves[k++] = leaves[i];
    if (k) {
        row_fill(d, leaves, k, row);
        row->node = leaves[0];
    }
    free(leaves);
    return k > 0;
}

void stt__access_removed_row(const stt_doc_t *d, stt_access_row_t *row)
{
    row_fill(d, &d->winner, 1, row);
    row->s.deleted = true;
    row->deleted[0] = true;
    row->removed = true;
    row->node = -1;
}

/* ------------------------------------------------------------------ writes */

/* body with its _access replaced by list (NULL: [name]) */
static void rewrite(stt_arena_t *a, const stt_json_t *body, const stt_json_t *list, const stt_user_ctx_t *u,
                    stt_doc_write_t *w)
{
    stt_buf_t b = STT_BUF_INIT;
    stt_buf_appends(&b, "{\"_access\":");
    if (list) {
        stt_json_write(&b, list);
    } else {
        stt_buf_appendc(&b, '[');
        stt_json_write_str(&b, u->name, u->namelen);
        stt_buf_appendc(&b, ']');
    }
    for (uint32_t i = 0; body && i < body->len; i++) {
        const stt_json_member_t *m = &body->u.members[i];
        if (m->keylen == 7 && memcmp(m->key, "_access", 7) == 0) continue;
        stt_buf_appendc(&b, ',');
        stt_json_write_str(&b, m->key, m->keylen);
        stt_buf_appendc(&b, ':');
        stt_json_write(&b, &m->val);
    }
    stt_buf_appendc(&b, '}');
    w->body = stt_arena_memdup(a, b.base, b.len);
    w->bodylen = b.len;
    stt_buf_free(&b);
}

int stt_access_before_write(stt_arena_t *a, stt_db_t *db, const stt_user_ctx_t *u, bool db_admin, stt_reader_t *rd,
                            stt_doc_write_t *w, const char **reason)
{
    if (!stt_access_enabled(db) || stt__access_is_design(w->id, w->idlen)) return 0;
    stt_json_t *body = stt_arena_alloc(a, sizeof(*body));
    char *text = stt_arena_memdup(a, w->body, w->bodylen);
    if (stt_json_parse(a, text, w->bodylen, body, NULL, 0) != 0 || body->type != STT_JSON_OBJECT) body = NULL;
    const stt_json_t *list = body ? stt_json_get(body, "_access") : NULL;
    if (list) {
        bool ok = list->type == STT_JSON_ARRAY;
        for (uint32_t i = 0; ok && i < list->len; i++)
            ok = list->u.items[i].type == STT_JSON_STRING && list->u.items[i].len > 0;
        if (!ok) {
            *reason = "_access must be an array of user names and roles";
            return STT_E_BAD_REQUEST;
        }
        if (!list->len) list = NULL;
    }
    /* what is there now: the revision the write builds on (its base: the rev named,
     * else the parent in a replicated path, else the winner), its _access, and
     * whether the user may read it and any leaf */
    stt_access_t *acc = stt_access_open(a, db, u, db_admin);
    stt_doc_t d;
    bool exists = stt_doc_get(rd, w->id, w->idlen, &d) == 0;
    bool live = exists && !(d.tree.nodes[d.winner].flags & STT_REV_DELETED);
    const stt_json_t *cur = NULL;
    bool base_ok = true, any_ok = true;
    if (exists) {
        int base = -1;
        if (w->has_prev)
            base = stt_revtree_find(&d.tree, w->prev.gen, w->prev.id, w->prev.idlen);
        else if (w->npath > 1)
            base = stt_revtree_find(&d.tree, w->path[1].gen, w->path[1].id, w->path[1].idlen);
        if (base < 0) base = d.winner;
        stt_rev_body_t b;
        if (stt_doc_body(&d, base, &b) == 0) {
            cur = stt__access_list(a, b.json, b.jsonlen);
            stt_rev_body_free(&b);
        }
        if (acc) {
            base_ok = !w->has_prev || stt_access_node_ok(acc, &d, base);
            any_ok = stt_access_winner(acc, &d) >= 0;
        }
        stt_doc_free(&d);
    }
    if (cur && !cur->len) cur = NULL;
    int rc = 0;
    if (acc && ((live && !any_ok) || (exists && !base_ok))) {
        *reason = "You are not allowed to write this document.";
        rc = STT_E_FORBIDDEN;
    } else if (!list && cur && (w->deleted || (acc && live))) {
        /* a deletion, and a user's update, keep the _access of the revision they replace */
        rewrite(a, body, cur, u, w);
    } else if (!list && acc) {
        if (!u->name) {
            *reason = "Only named users may create documents here.";
            rc = STT_E_FORBIDDEN;
        } else {
            rewrite(a, body, NULL, u, w);
        }
    }
    if (!rc && acc && !names(acc, stt__access_list(a, w->body, w->bodylen))) {
        *reason = "_access must name you or one of your roles.";
        rc = STT_E_FORBIDDEN;
    }
    return rc;
}

/* ------------------------------------------------------------------ reads */

int stt_access_select(const stt_access_t *acc, const stt_doc_t *d, const stt_rev_t *rev, int *node)
{
    int n;
    if (rev) {
        n = stt_revtree_find(&d->tree, rev->gen, rev->id, rev->idlen);
        if (!stt_access_node_ok(acc, d, n)) return STT_E_NOT_FOUND;
    } else {
        if ((n = stt_access_winner(acc, d)) < 0) return STT_E_NOT_FOUND;
        if (d->tree.nodes[n].flags & STT_REV_DELETED) return STT_E_DELETED;
    }
    *node = n;
    return 0;
}

size_t stt_access_filter_nodes(const stt_access_t *acc, const stt_doc_t *d, int *nodes, bool *stub, size_t n)
{
    size_t k = 0;
    int shared = -1; /* looked up once, when needed */
    for (size_t i = 0; i < n; i++) {
        bool ok = stt_access_node_ok(acc, d, nodes[i]);
        if (!ok && shared < 0) shared = stt_access_was_shared(acc, d->id, d->idlen);
        if (!ok && !shared) continue;
        stub[k] = !ok;
        nodes[k++] = nodes[i];
    }
    return k;
}

stt_access_t *stt_access_copy(stt_arena_t *a, const stt_access_t *acc)
{
    stt_access_t *c = stt_arena_alloc(a, sizeof(*c));
    *c = *acc;
    c->u = NULL; /* the user context stays the request's */
    c->p = stt_arena_alloc(a, (acc->np ? acc->np : 1) * sizeof(*c->p));
    c->plen = stt_arena_alloc(a, (acc->np ? acc->np : 1) * sizeof(*c->plen));
    for (size_t i = 0; i < acc->np; i++) {
        c->p[i] = stt_arena_strndup(a, acc->p[i], acc->plen[i]);
        c->plen[i] = acc->plen[i];
    }
    return c;
}

bool stt_access_view_row_ok(void *ctx, stt_reader_t *rd, const char *id, size_t idlen, uint64_t seq)
{
    const stt_access_t *acc = ctx;
    stt_doc_t d;
    if (stt_doc_get(rd, id, idlen, &d) != 0) return false;
    /* the row was made from the winner as of seq: a doc written since may have a
     * winner the user reads where the row's was not (or the reverse) */
    bool ok =
        d.seq <= seq && !(d.tree.nodes[d.winner].flags & STT_REV_DELETED) && stt_access_node_ok(acc, &d, d.winner);
    stt_doc_free(&d);
    return ok;
}

/* ------------------------------------------------------------------ _local docs */

int stt_access_local_write(stt_arena_t *a, const stt_access_t *acc, const char *name, size_t namelen, bool deleted,
                           const char **body, size_t *bodylen, const char **reason)
{
    stt_buf_t old = STT_BUF_INIT;
    uint64_t rev;
    const stt_json_t *cur = NULL;
    bool exists = stt_local_get(acc->db, name, namelen, &rev, &old) == 0;
    bool mine = exists && stt_access_body_ok(acc, old.base, old.len);
    if (exists) cur = stt__access_list(a, old.base, old.len);
    stt_buf_free(&old);
    if (exists && !mine) {
        *reason = "You are not allowed to write this document.";
        return STT_E_FORBIDDEN;
    }
    if (deleted) return 0;
    stt_json_t *obj = stt_arena_alloc(a, sizeof(*obj));
    char *text = stt_arena_memdup(a, *body, *bodylen);
    if (stt_json_parse(a, text, *bodylen, obj, NULL, 0) != 0 || obj->type != STT_JSON_OBJECT) obj = NULL;
    const stt_json_t *list = obj ? stt_json_get(obj, "_access") : NULL;
    stt_doc_write_t w = {.body = *body, .bodylen = *bodylen};
    if (list && list->type != STT_JSON_ARRAY) {
        *reason = "_access must be an array of user names and roles";
        return STT_E_BAD_REQUEST;
    }
    if (!list || !list->len) {                    /* as a doc: kept from what it replaces, else [name] */
        if (!cur && (!acc->u || !acc->u->name)) { /* a copy (stt_access_copy) has no user */
            *reason = "Only named users may create documents here.";
            return STT_E_FORBIDDEN;
        }
        rewrite(a, obj, cur && cur->len ? cur : NULL, acc->u, &w);
    }
    if (!names(acc, stt__access_list(a, w.body, w.bodylen))) {
        *reason = "_access must name you or one of your roles.";
        return STT_E_FORBIDDEN;
    }
    *body = w.body;
    *bodylen = w.bodylen;
    return 0;
}
