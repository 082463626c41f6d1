/* Standalone attachment endpoints: not built yet. */
#include "src/http/http.h"

void stt_h_attachment(stt_hreq_t *r)
{
    stt_reply_error_raw(r, 501, "not_implemented", "standalone attachments are not supported yet");
}
