/* Multipart handlers: not built yet (see multipart.h); they answer 406 so a
 * client falls back to JSON. */
#include "src/http/multipart.h"
#include "src/common/err.h"

void stt_mp_reply_open_revs(stt_hreq_t *r, stt_reader_t *rd, const stt_doc_t *d, const stt_mp_part_t *parts,
                            size_t n, const stt_render_opts_t *o)
{
    stt_reply_error_raw(r, 406, "not_acceptable", "multipart/mixed is not supported yet");
}

void stt_mp_reply_doc_related(stt_hreq_t *r, stt_reader_t *rd, const stt_doc_t *d, int node,
                              const stt_render_opts_t *o, const char *etag)
{
    stt_reply_error_raw(r, 406, "not_acceptable", "multipart/related is not supported yet");
}

void stt_mp_put_doc(stt_hreq_t *r, bool new_edits)
{
    stt_reply_error(r, STT_E_UNSUPPORTED_MEDIA, "multipart/related is not supported yet");
}
