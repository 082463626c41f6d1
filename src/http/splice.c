/* Answers whose attachment bytes are read only while they go out: a text (JSON docs,
 * MIME heads and delimiters) with marks where attachments go, as stored bytes
 * (multipart parts) or as the base64 of their decoded bytes (a JSON "data" member).
 * With a few bytes in all they are read in and the answer goes in one write; with
 * more, the answer streams (stt_stream) and holds one stored piece and one encoded
 * chunk at a time, from the snapshot the text was rendered from (stt_reader_retain),
 * so a doc with large attachments does not cost their size in memory. */
#include "src/http/splice.h"
#include "src/common/codec.h"
#include "src/common/err.h"
#include "src/common/log.h"
#include <stdlib.h>
#include <string.h>

/* Attachments of at most this many bytes in all go out in one write. */
#define STREAM_MIN (64 * 1024)
/* Decoded bytes read per base64 chunk: a multiple of 3, so that chunks join up. */
#define B64_RAW (48 * 1024)

static uint64_t b64_len(uint64_t n)
{
    return (n + 2) / 3 * 4;
}

void stt_splice_add(stt_splice_t *p, size_t at, const stt_att_t *a, bool base64)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 8;
        p->atts = stt_xrealloc(p->atts, p->cap * sizeof(*p->atts));
    }
    stt_splice_att_t *m = &p->atts[p->n++];
    m->at = at;
    m->att = *a;
    m->att.name = NULL; /* the marks outlive the doc the names point into */
    m->att.content_type = NULL;
    m->base64 = base64;
    m->out_len = base64 ? b64_len(a->length) : a->encoded_length;
    p->bytes += m->out_len;
}

void stt_splice_free(stt_splice_t *p)
{
    free(p->atts);
    memset(p, 0, sizeof(*p));
}

/* The whole bytes of mark m appended to out. */
static int read_whole(stt_reader_t *rd, const stt_splice_att_t *m, stt_buf_t *out)
{
    stt_buf_t raw = STT_BUF_INIT;
    int rc = m->base64 ? stt_att_read_decoded(rd, &m->att, &raw) : stt_att_read(rd, m->att.digest, &raw);
    if (rc == STT_E_NOT_FOUND) rc = STT_E_IO; /* a stub whose bytes are gone */
    if (!rc && raw.len != (m->base64 ? m->att.length : m->att.encoded_length)) rc = STT_E_IO;
    if (!rc) {
        if (m->base64)
            stt_base64_encode(out, raw.base ? raw.base : "", raw.len);
        else
            stt_buf_append(out, raw.base ? raw.base : "", raw.len);
    }
    stt_buf_free(&raw);
    return rc;
}

typedef struct {
    stt_reader_t *rd;
    stt_buf_t text;
    stt_splice_t plan;
    size_t pos;  /* of the text, sent so far */
    size_t next; /* the next mark of the plan */
    stt_att_stream_t *as;
    stt_buf_t raw;    /* decoded bytes waiting for base64 (a mark's tail of 1 or 2) */
    bool as_done;     /* the open stream gave its last bytes */
    uint64_t emitted; /* of the current mark */
} send_t;

/* More of the current mark into out; 1 when it is finished, 0 when more follow,
 * or an error. */
static int mark_produce(send_t *x, size_t room, stt_buf_t *out)
{
    const stt_splice_att_t *m = &x->plan.atts[x->next];
    if (!m->base64) {
        int rc = stt_att_stream_next(x->as, room, out);
        return rc;
    }
    if (!x->as_done && x->raw.len < B64_RAW) {
        int rc = stt_att_stream_next(x->as, B64_RAW - x->raw.len, &x->raw);
        if (rc < 0) return rc;
        x->as_done = rc == 1;
    }
    size_t take = x->as_done ? x->raw.len : x->raw.len / 3 * 3;
    size_t before = out->len;
    if (take) stt_base64_encode(out, x->raw.base, take);
    x->emitted += out->len - before;
    if (x->raw.len > take) memmove(x->raw.base, x->raw.base + take, x->raw.len - take);
    x->raw.len -= take;
    if (x->as_done && x->raw.len == 0) return x->emitted == m->out_len ? 1 : STT_E_IO;
    return 0;
}

static int produce(stt_stream_t *s, stt_buf_t *out)
{
    send_t *x = s->ctx;
    size_t room = 64 * 1024;
    while (out->len < room) {
        if (x->as) {
            int rc = mark_produce(x, room - out->len, out);
            if (rc < 0) {
                /* the head is out (with its Content-Length): the answer is cut short */
                stt_log(STT_LOG_ERROR, "attachment bytes unreadable while sending (%s)", stt_err_info(rc)->reason);
                return -1;
            }
            if (rc == 0) continue;
            stt_att_stream_close(x->as);
            x->as = NULL;
            x->next++;
            continue;
        }
        size_t to = x->next < x->plan.n ? x->plan.atts[x->next].at : x->text.len;
        stt_buf_append(out, x->text.base + x->pos, to - x->pos);
        x->pos = to;
        if (x->next == x->plan.n) return 0;
        const stt_splice_att_t *m = &x->plan.atts[x->next];
        x->as_done = false;
        x->emitted = 0;
        stt_buf_reset(&x->raw);
        if (stt_att_stream_open(x->rd, &m->att, m->base64, 0, &x->as) != 0) return -1;
        if (m->base64 && m->att.length == 0) { /* nothing to encode */
            stt_att_stream_close(x->as);
            x->as = NULL;
            x->next++;
        }
    }
    return 1;
}

static void stop(stt_stream_t *s)
{
    send_t *x = s->ctx;
    stt_att_stream_close(x->as);
    stt_reader_close(x->rd);
    stt_buf_free(&x->text);
    stt_buf_free(&x->raw);
    stt_splice_free(&x->plan);
    free(x);
}

static const stt_stream_ops_t ops = {produce, stop};

void stt_splice_send(stt_hreq_t *r, stt_reader_t *rd, stt_buf_t *text, stt_splice_t *plan, const char *ctype,
                     const char *const *headers)
{
    if (plan->bytes > STREAM_MIN) {
        send_t *x = stt_xcalloc(1, sizeof(*x));
        x->rd = stt_reader_retain(rd);
        x->text = *text;
        x->plan = *plan;
        memset(plan, 0, sizeof(*plan));
        *text = (stt_buf_t)STT_BUF_INIT;
        r->req->res.content_length = x->text.len + x->plan.bytes;
        stt_stream_start(r, 200, ctype, &ops, x, headers);
        return;
    }
    if (plan->n == 0) { /* nothing to splice: the text is the answer */
        size_t len;
        char *data = stt_buf_release(text, &len);
        stt_splice_free(plan);
        stt_reply_bytes(r, 200, ctype, data, len, true, headers);
        return;
    }
    stt_buf_t out = STT_BUF_INIT;
    size_t pos = 0;
    int rc = 0;
    for (size_t i = 0; i < plan->n && !rc; i++) {
        stt_buf_append(&out, text->base + pos, plan->atts[i].at - pos);
        pos = plan->atts[i].at;
        rc = read_whole(rd, &plan->atts[i], &out);
    }
    stt_buf_append(&out, text->base + pos, text->len - pos);
    stt_buf_free(text);
    stt_splice_free(plan);
    if (rc) {
        stt_buf_free(&out);
        stt_reply_error(r, rc, NULL);
        return;
    }
    size_t len;
    char *data = stt_buf_release(&out, &len);
    stt_reply_bytes(r, 200, ctype, data, len, true, headers);
}

void stt_splice_mark(void *ctx, stt_buf_t *out, const stt_att_t *a)
{
    stt_splice_add(ctx, out->len, a, true);
}

void stt_splice_send_json(stt_hreq_t *r, stt_reader_t *rd, stt_buf_t *b, stt_splice_t *plan, const char *const *headers)
{
    const char *hs[16];
    stt_reply_json_headers(headers, hs);
    stt_buf_appendc(b, '\n'); /* CouchDB ends JSON replies with a newline */
    stt_splice_send(r, rd, b, plan, "application/json", hs);
}
