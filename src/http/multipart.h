/* MIME multipart for the replication protocol and attachments:
 *  - parsing: multipart/related request bodies (doc PUT with attachments
 *    "follows":true, as CouchDB's replicator pushes them, parts possibly gzip);
 *  - writing: multipart/mixed open_revs answers (one part per rev, missing revs as
 *    application/json; error="true", docs with attachments as nested
 *    multipart/related) and multipart/related doc GETs.
 * Private to src/http. */
#ifndef STT_MULTIPART_H
#define STT_MULTIPART_H
#include "src/http/http.h"
#include "replication/replication.h"

/* ---------------------------------------------------------------- pure MIME */

typedef struct {
    const char *headers; /* raw header block of the part (without the blank line) */
    size_t hlen;
    const char *body;
    size_t len;
} stt_mime_part_t;

/* Extracts the boundary parameter of a Content-Type value (quoted or not).
 * 0 or -1. */
int stt_mime_boundary(const char *ctype, size_t len, const char **b, size_t *blen);
/* Splits body into at most max parts. 0, or -1 when malformed / truncated
 * (no closing boundary). */
int stt_mime_parse(const char *body, size_t len, const char *boundary, size_t blen, stt_mime_part_t *parts,
                   size_t *nparts, size_t max);
/* Value of a header inside a part's header block (case-insensitive name), or
 * NULL. */
const char *stt_mime_header(const stt_mime_part_t *p, const char *name, size_t *vlen);

/* ---------------------------------------------------------------- handlers */

typedef struct {
    int node;            /* revision to send, or -1 for a missing rev */
    const char *missing; /* rev text when node < 0 */
    size_t missinglen;
} stt_mp_part_t;

/* GET /db/doc?open_revs=...  with Accept: multipart/mixed. d is NULL when the doc
 * does not exist (every part is then a missing one). */
void stt_mp_reply_open_revs(stt_hreq_t *r, stt_reader_t *rd, const stt_doc_t *d, const stt_mp_part_t *parts,
                            size_t n, const stt_render_opts_t *o);
/* GET /db/doc?attachments=true with Accept: multipart/related. */
void stt_mp_reply_doc_related(stt_hreq_t *r, stt_reader_t *rd, const stt_doc_t *d, int node,
                              const stt_render_opts_t *o, const char *etag);
/* PUT /db/doc with Content-Type: multipart/related. */
void stt_mp_put_doc(stt_hreq_t *r, bool new_edits);

/* Shared with h_doc.c and h_att.c */
int stt_render_opts_from_query(stt_hreq_t *r, stt_render_opts_t *o);

#endif
