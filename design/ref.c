/* Design-document functions named by a request ("ddoc/filter" in _changes?filter=,
 * "ddoc/view" with filter=_view): how CouchDB splits such a name and the lookup it
 * does before it runs anything (couch_changes:configure_filter, open_ddoc,
 * check_member_exists).
 *
 * The lookup comes first so that a name pointing nowhere is a 404 before anything
 * runs: a client (PouchDB's changes and replication) tells "no such filter" from
 * "filter failed" by that status. The design doc found is handed on, opened for
 * the query server, so the caller does not read it twice. */
#include <string.h>

#include "design/design.h"
#include "replication/replication.h"
#include "src/common/err.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* CouchDB unquotes each part once more after the query string was decoded
 * (mochiweb's unquote: %XX and '+' as a space), so a part may carry an encoded '/'. */
static void unquote(stt_arena_t *a, const char *s, size_t len, const char **out, size_t *outlen)
{
    char *o = stt_arena_alloc(a, len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int h, l;
        if (s[i] == '%' && i + 2 < len && (h = hexval(s[i + 1])) >= 0 && (l = hexval(s[i + 2])) >= 0) {
            o[n++] = (char)(h << 4 | l);
            i += 2;
        } else {
            o[n++] = s[i] == '+' ? ' ' : s[i];
        }
    }
    o[n] = '\0';
    *out = o;
    *outlen = n;
}

int stt_ddoc_ref_parse(stt_arena_t *a, const char *s, size_t len, stt_ddoc_ref_t *out)
{
    /* string:tokens/2: empty parts between separators do not count */
    const char *part[2];
    size_t partlen[2];
    int n = 0;
    for (size_t i = 0; i < len;) {
        if (s[i] == '/') {
            i++;
            continue;
        }
        size_t j = i;
        while (j < len && s[j] != '/')
            j++;
        if (n == 2) return 3;
        part[n] = s + i;
        partlen[n++] = j - i;
        i = j;
    }
    if (n == 2) {
        unquote(a, part[0], partlen[0], &out->ddoc, &out->ddoclen);
        unquote(a, part[1], partlen[1], &out->fn, &out->fnlen);
    }
    return n;
}

/* ------------------------------------------------------------------ lookup */

int stt_design_open(stt_db_t *db, stt_arena_t *a, const char *name, size_t len, stt_qs_ddoc_t *out, stt_json_t *body)
{
    size_t idlen = 8 + len;
    char *id = stt_arena_alloc(a, idlen + 1);
    memcpy(id, "_design/", 8);
    memcpy(id + 8, name, len);
    id[idlen] = '\0';
    stt_reader_t *rd;
    int rc = stt_reader_open(db, &rd);
    if (rc != 0) return rc;
    stt_doc_t d;
    if ((rc = stt_doc_get(rd, id, idlen, &d)) != 0) goto exit;
    if (d.tree.nodes[d.winner].flags & STT_REV_DELETED) {
        rc = STT_E_DELETED;
    } else {
        stt_buf_t b = STT_BUF_INIT, rev = STT_BUF_INIT;
        stt_render_opts_t o = {0};
        if ((rc = stt_doc_render(rd, &d, d.winner, &o, &b)) == 0) {
            stt_revtree_format(&d.tree, d.winner, &rev);
            out->id = id;
            out->rev = stt_arena_strndup(a, rev.base, rev.len);
            out->json.s = stt_arena_memdup(a, b.base, b.len);
            out->json.len = b.len;
            stt_json_t parsed;
            if (stt_json_parse(a, out->json.s, b.len, &parsed, NULL, 0) != 0) {
                rc = STT_E_IO;
            } else {
                const stt_json_t *l = stt_json_get(&parsed, "language");
                out->lang = stt_json_is_str(l) ? l->u.s : NULL;
                if (body) *body = parsed;
            }
        }
        stt_buf_free(&b);
        stt_buf_free(&rev);
    }
    stt_doc_free(&d);
exit:
    stt_reader_close(rd);
    return rc;
}

static const char *missing_key(stt_arena_t *a, const char *key, size_t len)
{
    char *m = stt_arena_alloc(a, 18 + len + 1);
    memcpy(m, "missing json key: ", 18);
    memcpy(m + 18, key, len);
    m[18 + len] = '\0';
    return m;
}

int stt_ddoc_lookup(stt_db_t *db, stt_arena_t *a, const stt_ddoc_ref_t *ref, const char *section, stt_qs_ddoc_t *out,
                    const char **reason)
{
    stt_json_t ddoc;
    stt_qs_ddoc_t q;
    int rc = stt_design_open(db, a, ref->ddoc, ref->ddoclen, &q, &ddoc);
    if (rc == STT_E_NOT_FOUND || rc == STT_E_DELETED) {
        *reason = rc == STT_E_DELETED ? "deleted" : "missing";
        return STT_E_NOT_FOUND;
    }
    if (rc != 0) return rc;
    /* couch_util:get_nested_json_value: an absent key names itself; a present
     * value that is not an object cannot be walked into (null included) */
    const stt_json_t *fns = stt_json_get(&ddoc, section);
    if (!fns) {
        *reason = missing_key(a, section, strlen(section));
        return STT_E_NOT_FOUND;
    }
    if (fns->type != STT_JSON_OBJECT) {
        *reason = "json_mismatch";
        return STT_E_NOT_FOUND;
    }
    if (!stt_json_getn(fns, ref->fn, ref->fnlen)) {
        *reason = missing_key(a, ref->fn, ref->fnlen);
        return STT_E_NOT_FOUND;
    }
    if (out) *out = q;
    return 0;
}
