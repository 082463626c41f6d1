/* Request framing that RFC 9112 says to reject (§6.1, §6.3): a request whose body
 * length two parsers could read differently is how a request gets smuggled past a
 * proxy inside another one's body. h2o 2.2.5 picks one reading and goes on (TE
 * wins over CL, the first of two CLs wins); settee answers 400 and closes the
 * connection after the reply, so nothing after the ambiguous body is ever read
 * as a request.
 *
 * What only h2o's parser sees (a bare LF in chunk framing) cannot be checked
 * here: the README's security notes name it, with the front-proxy mitigation. */
#include "src/http/http.h"
#include <string.h>
#include <strings.h>

static void refuse(stt_hreq_t *r, const char *reason)
{
    r->req->http1_is_persistent = 0;
    stt_reply_error_raw(r, 400, "bad_request", reason);
}

/* The request head as the client sent it. h2o keeps Content-Length and
 * Transfer-Encoding out of req->headers (it reads one of them and drops the
 * rest), but the head is still at the start of the connection's input buffer
 * while the request is handled: h2o consumes it only once the reply is done. */
static bool raw_head(stt_hreq_t *r, const char **head, size_t *len)
{
    h2o_conn_t *c = r->req->conn;
    if (r->req->version >= 0x200 || !c->callbacks->get_socket) return false;
    h2o_socket_t *sock = c->callbacks->get_socket(c);
    if (!sock || !sock->input || !sock->input->bytes) return false;
    const char *b = sock->input->bytes;
    size_t n = sock->input->size;
    for (size_t i = 0; i + 1 < n; i++)
        if (b[i] == '\n' && (b[i + 1] == '\n' || (b[i + 1] == '\r' && i + 2 < n && b[i + 2] == '\n'))) {
            *head = b;
            *len = i + 1;
            return true;
        }
    return false;
}

static bool name_is(const char *line, size_t len, const char *name)
{
    size_t n = strlen(name);
    if (len <= n || strncasecmp(line, name, n) != 0) return false;
    /* "name:" (optional spaces before the colon are refused by h2o's parser) */
    return line[n] == ':';
}

bool stt__framing_ok(stt_hreq_t *r)
{
    const char *head;
    size_t len;
    if (!raw_head(r, &head, &len)) return true;
    size_t ncl = 0, nte = 0;
    const char *te = NULL;
    size_t telen = 0;
    const char *p = memchr(head, '\n', len); /* past the request line */
    while (p && (size_t)(p - head) + 1 < len) {
        const char *line = p + 1;
        const char *nl = memchr(line, '\n', len - (size_t)(line - head));
        size_t ll = (size_t)((nl ? nl : head + len) - line);
        if (ll && line[ll - 1] == '\r') ll--;
        if (name_is(line, ll, "content-length")) {
            ncl++;
        } else if (name_is(line, ll, "transfer-encoding")) {
            nte++;
            te = line + 18;
            telen = ll - 18;
            while (telen && (*te == ' ' || *te == '\t'))
                te++, telen--;
            while (telen && (te[telen - 1] == ' ' || te[telen - 1] == '\t'))
                telen--;
        }
        p = nl;
    }
    if (ncl > 1) {
        refuse(r, "More than one Content-Length header.");
        return false;
    }
    if (nte && ncl) {
        refuse(r, "Content-Length and Transfer-Encoding together.");
        return false;
    }
    if (nte > 1 || (te && !(telen == 7 && strncasecmp(te, "chunked", 7) == 0))) {
        refuse(r, "Transfer-Encoding other than a single \"chunked\".");
        return false;
    }
    return true;
}
