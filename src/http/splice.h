/* Answers with attachment bytes spliced in as they go out (splice.c). Private to
 * src/http: multipart answers (h_multipart.c) and JSON answers with inline
 * attachment data (h_doc.c, h_repl.c). */
#ifndef STT_SPLICE_H
#define STT_SPLICE_H
#include "src/http/http.h"

/* Where an attachment goes in an answer's text: at offset at, its stored bytes, or
 * with base64 the base64 of its decoded bytes (out_len bytes in the answer). */
typedef struct {
    size_t at;
    stt_att_t att; /* name and content_type cleared: only digest, lengths, encoding */
    bool base64;
    uint64_t out_len;
} stt_splice_att_t;

typedef struct {
    stt_splice_att_t *atts;
    size_t n, cap;
    uint64_t bytes; /* the answer's bytes of all the marks */
} stt_splice_t;

void stt_splice_add(stt_splice_t *p, size_t at, const stt_att_t *a, bool base64);
/* An stt_render_opts_t inline_att hook: the base64 of a's decoded bytes goes at the
 * end of out (ctx: the stt_splice_t). */
void stt_splice_mark(void *ctx, stt_buf_t *out, const stt_att_t *a);
void stt_splice_free(stt_splice_t *p);
/* Replies 200 with text and the marked bytes in their places, reading them from rd
 * (retained while the answer streams); takes text and plan over. A missing or short
 * attachment is a 500 when found before the head went out, else a cut answer. */
void stt_splice_send(stt_hreq_t *r, stt_reader_t *rd, stt_buf_t *text, stt_splice_t *plan, const char *ctype,
                     const char *const *headers);
/* The same for JSON text, as stt_reply_json_h answers. */
void stt_splice_send_json(stt_hreq_t *r, stt_reader_t *rd, stt_buf_t *b, stt_splice_t *plan,
                          const char *const *headers);

#endif
