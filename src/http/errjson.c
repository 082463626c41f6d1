/* h2o answers some requests itself, before any handler runs: a malformed request
 * line or header block, a Transfer-Encoding it does not know, bad chunk framing, a
 * body over max_http_request_size. Its answers are plain text; every other error of
 * settee is CouchDB's JSON. A response filter turns those answers into JSON on the
 * way out: an error that did not come through settee's handlers (which mark every
 * reply with X-Couch-Request-Id) gets CouchDB's shape, with h2o's text as the
 * reason, and a body over the limit gets chttpd's own 413 answer. */
#include "src/http/http.h"
#include "src/common/json.h"
#include <string.h>
#include <strings.h>

typedef struct {
    h2o_ostream_t super;
    bool sent;
} json_ostream_t;

/* CouchDB's "error" for a status h2o answers by itself. */
static const char *error_name(int status)
{
    switch (status) {
    case 400:
        return "bad_request";
    case 404:
        return "not_found";
    case 405:
        return "method_not_allowed";
    case 413:
        return "too_large";
    case 417:
        return "expectation_failed";
    case 431:
        return "header_fields_too_large";
    case 502:
        return "bad_gateway";
    case 503:
        return "service_unavailable";
    default:
        return "unknown_error";
    }
}

static void do_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *inbufs, size_t inbufcnt, h2o_send_state_t state)
{
    json_ostream_t *o = (json_ostream_t *)self;
    bool head = h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("HEAD"));
    if (o->sent || head) {
        /* a HEAD answer has no body (h2o sends none) to rewrite */
        o->sent = true;
        h2o_ostream_send_next(&o->super, req, NULL, 0, state);
        return;
    }
    o->sent = true;
    stt_buf_t b = STT_BUF_INIT;
    stt_buf_appends(&b, "{\"error\":");
    stt_json_write_cstr(&b, error_name(req->res.status));
    stt_buf_appends(&b, ",\"reason\":");
    if (req->res.status == 413) {
        stt_json_write_cstr(&b, "the request entity is too large");
    } else {
        /* h2o's text: what it sends in this one call (h2o_send_inline) */
        stt_buf_t text = STT_BUF_INIT;
        for (size_t i = 0; i < inbufcnt; i++)
            stt_buf_append(&text, inbufs[i].base, inbufs[i].len);
        while (text.len && (text.base[text.len - 1] == '\n' || text.base[text.len - 1] == '\r'))
            text.len--;
        stt_json_write_str(&b, text.base ? text.base : "", text.len);
        stt_buf_free(&text);
    }
    stt_buf_appendc(&b, '}');
    stt_buf_appendc(&b, '\n');
    h2o_iovec_t body = h2o_strdup(&req->pool, b.base, b.len);
    stt_buf_free(&b);
    req->res.content_length = body.len;
    h2o_ostream_send_next(&o->super, req, &body, 1, state);
}

static void on_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    ssize_t ct = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
    bool h2o_text = req->res.status >= 400 && ct != -1 &&
                    h2o_find_header_by_str(&req->res.headers, H2O_STRLIT("x-couch-request-id"), -1) == -1 &&
                    req->res.headers.entries[ct].value.len >= 10 &&
                    strncasecmp(req->res.headers.entries[ct].value.base, "text/plain", 10) == 0;
    if (h2o_text) {
        req->res.headers.entries[ct].value = h2o_iovec_init(H2O_STRLIT("application/json"));
        json_ostream_t *o = (json_ostream_t *)h2o_add_ostream(req, sizeof(*o), slot);
        o->super.do_send = do_send;
        o->sent = false;
        slot = &o->super.next;
    }
    h2o_setup_next_ostream(req, slot);
}

void stt_errjson_register(h2o_pathconf_t *path)
{
    h2o_filter_t *f = h2o_create_filter(path, sizeof(*f));
    f->on_setup_ostream = on_setup_ostream;
}
