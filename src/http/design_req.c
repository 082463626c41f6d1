/* What design functions see of a request: CouchDB's userCtx ({"db","name","roles"})
 * and its req object (chttpd_external:json_req_obj: method, path, query, headers,
 * body, form, cookie, userCtx, secObj...), built on the request's loop from the
 * request, as JSON text for the query server. */
#include "src/http/http.h"
#include "src/common/codec.h"
#include <ctype.h>
#include <string.h>
#include <strings.h>

void stt__user_ctx_json(stt_hreq_t *r, stt_buf_t *out)
{
    stt_buf_t u = STT_BUF_INIT;
    size_t len;
    const char *name = stt_db_name(r->db, &len);
    stt_user_ctx_write(&u, &r->user);
    stt_buf_appends(out, "{\"db\":");
    stt_json_write_str(out, name, len);
    stt_buf_appendc(out, ',');
    stt_buf_append(out, u.base + 1, u.len - 1); /* its members after ours */
    stt_buf_free(&u);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static void write_decoded(stt_buf_t *out, const char *s, size_t len)
{
    stt_buf_t d = STT_BUF_INIT;
    for (size_t i = 0; i < len; i++) {
        int h, l;
        if (s[i] == '%' && i + 2 < len && (h = hexval(s[i + 1])) >= 0 && (l = hexval(s[i + 2])) >= 0) {
            stt_buf_appendc(&d, (char)(h << 4 | l));
            i += 2;
        } else {
            stt_buf_appendc(&d, s[i] == '+' ? ' ' : s[i]);
        }
    }
    stt_json_write_str(out, d.base ? d.base : "", d.len);
    stt_buf_free(&d);
}

/* a=1&b=2 as {"a":"1","b":"2"} (form bodies) */
static void write_form(stt_buf_t *out, const char *s, size_t len)
{
    stt_buf_appendc(out, '{');
    bool first = true;
    for (size_t i = 0; i < len;) {
        size_t j = i;
        while (j < len && s[j] != '&')
            j++;
        if (j > i) {
            const char *eq = memchr(s + i, '=', j - i);
            size_t klen = eq ? (size_t)(eq - (s + i)) : j - i;
            if (!first) stt_buf_appendc(out, ',');
            first = false;
            write_decoded(out, s + i, klen);
            stt_buf_appendc(out, ':');
            if (eq)
                write_decoded(out, eq + 1, (size_t)(s + j - eq - 1));
            else
                stt_buf_appends(out, "\"\"");
        }
        i = j + 1;
    }
    stt_buf_appendc(out, '}');
}

void stt__design_req(stt_hreq_t *r, const char *docid, size_t idlen, stt_buf_t *out)
{
    h2o_req_t *req = r->req;
    stt_db_info_t in;
    size_t nlen;
    const char *dbname = stt_db_name(r->db, &nlen);
    stt_db_info(r->db, &in);
    stt_buf_appends(out, "{\"info\":{\"db_name\":");
    stt_json_write_str(out, dbname, nlen);
    stt_buf_appends(out, ",\"doc_count\":");
    stt_buf_append_u64(out, in.doc_count);
    stt_buf_appends(out, ",\"doc_del_count\":");
    stt_buf_append_u64(out, in.doc_del_count);
    stt_buf_appends(out, ",\"update_seq\":");
    stt_seq_format(out, in.update_seq);
    stt_buf_appends(out, "},\"uuid\":");
    char uuid[33];
    stt_uuid_random(uuid);
    stt_json_write_str(out, uuid, 32);
    stt_buf_appends(out, ",\"id\":");
    if (docid)
        stt_json_write_str(out, docid, idlen);
    else
        stt_buf_appends(out, "null");
    stt_buf_appends(out, ",\"method\":");
    stt_json_write_str(out, req->method.base, req->method.len);
    stt_buf_appends(out, ",\"requested_path\":[");
    for (size_t i = 0; i < r->nseg; i++) {
        if (i) stt_buf_appendc(out, ',');
        stt_json_write_str(out, r->seg[i].base, r->seg[i].len);
    }
    stt_buf_appends(out, "],\"path\":[");
    for (size_t i = 0; i < r->nseg; i++) {
        if (i) stt_buf_appendc(out, ',');
        stt_json_write_str(out, r->seg[i].base, r->seg[i].len);
    }
    stt_buf_appends(out, "],\"raw_path\":");
    stt_json_write_str(out, req->path.base, req->path.len);
    stt_buf_appends(out, ",\"query\":{");
    for (size_t i = 0; i < r->nq; i++) {
        /* the last of a repeated key wins, as a proplist read by key would not:
         * skip keys that come again later */
        bool later = false;
        for (size_t k = i + 1; k < r->nq && !later; k++)
            later = r->q[k].keylen == r->q[i].keylen && memcmp(r->q[k].key, r->q[i].key, r->q[i].keylen) == 0;
        if (later) continue;
        if (out->base[out->len - 1] != '{') stt_buf_appendc(out, ',');
        stt_json_write_str(out, r->q[i].key, r->q[i].keylen);
        stt_buf_appendc(out, ':');
        stt_json_write_str(out, r->q[i].val, r->q[i].vallen);
    }
    stt_buf_appends(out, "},\"headers\":{");
    const h2o_iovec_t *cookie = NULL;
    bool form = false;
    for (size_t i = 0; i < req->headers.size; i++) {
        const h2o_header_t *h = &req->headers.entries[i];
        if (h->name->len == 13 && memcmp(h->name->base, "authorization", 13) == 0) continue;
        if (h->name->len == 6 && memcmp(h->name->base, "cookie", 6) == 0) cookie = &h->value;
        if (h->name->len == 12 && memcmp(h->name->base, "content-type", 12) == 0 && h->value.len >= 33 &&
            strncasecmp(h->value.base, "application/x-www-form-urlencoded", 33) == 0)
            form = true;
        if (out->base[out->len - 1] != '{') stt_buf_appendc(out, ',');
        /* Mochiweb's spelling: each word capitalised */
        char name[256];
        size_t n = h->name->len < sizeof(name) ? h->name->len : sizeof(name) - 1;
        for (size_t k = 0; k < n; k++)
            name[k] = (char)(k == 0 || h->name->base[k - 1] == '-' ? toupper((unsigned char)h->name->base[k])
                                                                   : h->name->base[k]);
        stt_json_write_str(out, name, n);
        stt_buf_appendc(out, ':');
        stt_json_write_str(out, h->value.base, h->value.len);
    }
    stt_buf_appends(out, "},\"body\":");
    if (req->entity.base && req->entity.len)
        stt_json_write_str(out, req->entity.base, req->entity.len);
    else
        stt_buf_appends(out, "\"undefined\"");
    stt_buf_appends(out, ",\"peer\":\"127.0.0.1\",\"form\":");
    if (form && req->entity.base)
        write_form(out, req->entity.base, req->entity.len);
    else
        stt_buf_appends(out, "{}");
    stt_buf_appends(out, ",\"cookie\":{");
    if (cookie) {
        bool first = true;
        for (size_t i = 0; i < cookie->len;) {
            while (i < cookie->len && (cookie->base[i] == ' ' || cookie->base[i] == ';'))
                i++;
            size_t j = i;
            while (j < cookie->len && cookie->base[j] != ';')
                j++;
            const char *eq = memchr(cookie->base + i, '=', j - i);
            if (eq && j > i) {
                if (!first) stt_buf_appendc(out, ',');
                first = false;
                stt_json_write_str(out, cookie->base + i, (size_t)(eq - cookie->base - i));
                stt_buf_appendc(out, ':');
                stt_json_write_str(out, eq + 1, (size_t)(cookie->base + j - eq - 1));
            }
            i = j;
        }
    }
    stt_buf_appends(out, "},\"userCtx\":");
    stt__user_ctx_json(r, out);
    stt_buf_appends(out, ",\"secObj\":");
    const stt_json_t *sec = stt__db_security(r);
    if (sec)
        stt_json_write(out, sec);
    else
        stt_buf_appends(out, "{}");
    stt_buf_appendc(out, '}');
}
