#include "src/common/httpc.h"
#include <curl/curl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    stt_httpc_sink_t sink;
    stt_httpc_header_t hdr;
    void (*progress)(void *ctx);
    void *ctx;
    stt_httpc_result_t *res;
    stt_buf_t *reply;
    bool failed; /* the sink asked to stop */
} call_t;

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    call_t *c = arg;
    size_t len = size * n;
    /* every status line (a 100 Continue comes before the real one) */
    if (len > 9 && strncmp(p, "HTTP/", 5) == 0) {
        const char *sp = memchr(p, ' ', len);
        if (sp) c->res->status = strtol(sp + 1, NULL, 10);
    } else if (c->hdr) {
        c->hdr(c->ctx, p, len);
    }
    return len;
}

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    call_t *c = arg;
    size_t len = size * n;
    if (c->reply) {
        stt_buf_append(c->reply, p, len);
        return len;
    }
    if (c->res->status < 200 || c->res->status > 299) {
        if (c->res->err.len < 1024) stt_buf_append(&c->res->err, p, len < 1024 ? len : 1024);
        return len;
    }
    if (c->sink(c->ctx, p, len) != 0) {
        c->failed = true;
        return 0;
    }
    return len;
}

static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t x, curl_off_t y)
{
    call_t *c = arg;
    if (c->progress) c->progress(c->ctx);
    return 0;
}

static CURL *make(const char *url, call_t *c)
{
    static bool inited;
    if (!inited) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        inited = true;
    }
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    return h;
}

static int finish(CURL *h, call_t *c, CURLcode cc)
{
    if (cc != CURLE_OK && !c->failed) {
        stt_buf_reset(&c->res->err);
        stt_buf_appends(&c->res->err, curl_easy_strerror(cc));
    }
    curl_easy_cleanup(h);
    return cc == CURLE_OK ? 0 : -1;
}

int stt_httpc_get(const char *url, stt_httpc_sink_t sink, stt_httpc_header_t hdr, void (*progress)(void *ctx),
                  void *ctx, stt_httpc_result_t *res)
{
    memset(res, 0, sizeof(*res));
    call_t c = {.sink = sink, .hdr = hdr, .progress = progress, .ctx = ctx, .res = res};
    CURL *h = make(url, &c);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &c);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    int rc = finish(h, &c, curl_easy_perform(h));
    return rc == 0 && res->status >= 200 && res->status <= 299 ? 0 : -1;
}

int stt_httpc_json(const char *method, const char *url, const char *body, size_t len, stt_buf_t *reply,
                   stt_httpc_result_t *res)
{
    memset(res, 0, sizeof(*res));
    call_t c = {.res = res, .reply = reply};
    CURL *h = make(url, &c);
    struct curl_slist *hs = curl_slist_append(NULL, "Content-Type: application/json");
    hs = curl_slist_append(hs, "Accept: application/json");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    int rc = finish(h, &c, curl_easy_perform(h));
    curl_slist_free_all(hs);
    return rc;
}

void stt_httpc_result_free(stt_httpc_result_t *res)
{
    stt_buf_free(&res->err);
}
