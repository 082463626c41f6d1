/* A small HTTP client for settee's command-line tools (backup, export, import),
 * on libcurl. Credentials come in the URL (http://user:pw@host:port/...) as
 * CouchDB tools take them. Only the tools link it (-lcurl); the server does not. */
#ifndef STT_HTTPC_H
#define STT_HTTPC_H
#include "src/common/buf.h"
#include <stddef.h>

/* Receives the body of a 2xx answer in pieces: 0 to go on, -1 to abort. */
typedef int (*stt_httpc_sink_t)(void *ctx, const char *data, size_t len);
/* Called with each response header line (for "X-..." values). */
typedef void (*stt_httpc_header_t)(void *ctx, const char *line, size_t len);

typedef struct {
    long status;   /* the HTTP status, 0 when there was no answer */
    stt_buf_t err; /* a non-2xx answer's body (its start), or the transport error */
} stt_httpc_result_t;

/* GET url, the body streamed to sink when the status is 2xx. 0 when the exchange
 * completed with a 2xx status, -1 otherwise (res says why). progress, when not
 * NULL, is called a few times a second. */
int stt_httpc_get(const char *url, stt_httpc_sink_t sink, stt_httpc_header_t hdr, void (*progress)(void *ctx),
                  void *ctx, stt_httpc_result_t *res);

/* method url with a JSON body (NULL: none); the whole answer in *reply. 0 when it
 * completed (any status: see res->status), -1 on a transport error. */
int stt_httpc_json(const char *method, const char *url, const char *body, size_t len, stt_buf_t *reply,
                   stt_httpc_result_t *res);

void stt_httpc_result_free(stt_httpc_result_t *res);

#endif
