/* The socket read buffer of an HTTP/1 request that waits (a longpoll or continuous
 * _changes feed, a _db_updates feed): given back while it waits.
 *
 * h2o 2.2.5 reads a connection into a buffer of 8 KB (h2o_socket_buffer_prototype)
 * and, for a request without a body, leaves the method, path and header fields
 * pointing into it until the response ends; only then does it drop the request's
 * bytes (h2o_buffer_consume of the request's length) and read the next one. For a
 * feed that waits minutes for a commit, that buffer was most of the memory a
 * waiting client cost (BENCHMARKS.md, "Idle longpoll clients").
 *
 * So once a streamed reply pauses, the bytes the buffer holds (the request, and
 * anything pipelined after it) move to an allocation of their own size, and every
 * field of the request that pointed into the old buffer is moved with them, as h2o
 * itself copies them to the pool when a request has a body. The new buffer has the
 * same prototype and a capacity of its own (h2o frees such buffers with free() and
 * grows them by copying), so h2o's consume at the end of the response and its
 * next read work on it unchanged. h2o does not read the socket of an HTTP/1
 * request while it is being answered, so nothing writes to the buffer meanwhile.
 *
 * Not done for HTTP/2 (the connection's buffer is shared by its streams and
 * consumed frame by frame: it holds nothing while streams wait) nor for requests
 * with a body (settee's parsed JSON may point into the body's bytes). */
#include "src/http/http.h"
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* below this much to give back, moving is not worth a malloc */
#define MIN_SAVING 1024

static bool inside(const void *p, const char *base, size_t len)
{
    return (uintptr_t)p >= (uintptr_t)base && (uintptr_t)p < (uintptr_t)base + len;
}

static void move_iov(h2o_iovec_t *v, const char *from, size_t len, char *to)
{
    if (v->base && inside(v->base, from, len)) v->base = to + (v->base - from);
}

static void move_headers(h2o_headers_t *hs, const char *from, size_t len, char *to)
{
    for (size_t i = 0; i < hs->size; i++) {
        h2o_header_t *h = &hs->entries[i];
        if (!h2o_iovec_is_token(h->name)) move_iov(h->name, from, len, to);
        if (h->orig_name && inside(h->orig_name, from, len)) h->orig_name = to + (h->orig_name - from);
        move_iov(&h->value, from, len, to);
    }
}

void stt__req_shrink_input(stt_hreq_t *r)
{
    h2o_req_t *req = r->req;
    if (req->version >= 0x200 || req->entity.base || !req->conn->callbacks->get_socket) return;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    h2o_buffer_t *old = sock ? sock->input : NULL;
    if (!old || !old->bytes || old->_fd != -1 || old->capacity < old->size + MIN_SAVING) return;
    const char *from = old->bytes;
    size_t len = old->size;
    /* the request must be the one this buffer holds (h2o moved nothing to its pool) */
    if (!inside(req->input.method.base, from, len)) return;
    h2o_buffer_t *nb = h2o_mem_alloc(offsetof(h2o_buffer_t, _buf) + len);
    nb->capacity = len;
    nb->size = len;
    nb->bytes = nb->_buf;
    nb->_prototype = old->_prototype;
    nb->_fd = -1;
    memcpy(nb->_buf, from, len);
    char *to = nb->_buf;
    move_iov(&req->input.authority, from, len, to);
    move_iov(&req->input.method, from, len, to);
    move_iov(&req->input.path, from, len, to);
    move_iov(&req->authority, from, len, to);
    move_iov(&req->method, from, len, to);
    move_iov(&req->path, from, len, to);
    move_iov(&req->path_normalized, from, len, to);
    move_iov(&req->upgrade, from, len, to);
    for (size_t i = 0; i < req->env.size; i++)
        move_iov(&req->env.entries[i], from, len, to);
    move_headers(&req->headers, from, len, to);
    move_headers(&req->res.headers, from, len, to); /* a reply header may echo a request's */
    sock->input = nb;
    h2o_buffer_dispose(&old);
}
