/* MIME multipart for the replication protocol and attachments:
 *  - parsing: multipart/related request bodies (doc PUT with attachments
 *    "follows":true, as CouchDB's replicator pushes them, parts possibly gzip);
 *  - writing: multipart/mixed open_revs answers (one part per rev, missing revs as
 *    application/json; error="true", docs with attachments as nested
 *    multipart/related) and multipart/related doc GETs.
 * Private to src/http.
 *
 * The pure MIME half needs nothing but src/common: mime.c (and its unit test)
 * define STT_MIME_PURE before including this header to read only that half, so
 * they build without h2o. */
#ifndef STT_MULTIPART_H
#define STT_MULTIPART_H
#include "src/common/buf.h"
#include <stdbool.h>
#include <stddef.h>

/* ---------------------------------------------------------------- pure MIME */

typedef struct {
    const char *headers; /* raw header block of the part (without the blank line) */
    size_t hlen;
    const char *body;
    size_t len;
} stt_mime_part_t;

/* Pure functions (mime.c), no h2o: results point into the caller's bytes and
 * stay valid as long as those do. */

/* Longest boundary accepted (RFC 2046 allows 70; some clients go further). */
#define STT_MIME_BOUNDARY_MAX 200

/* Extracts the boundary parameter of a Content-Type value (quoted or not).
 * 0, or -1 when absent, empty, longer than STT_MIME_BOUNDARY_MAX or holding a
 * quote or backslash. */
int stt_mime_boundary(const char *ctype, size_t len, const char **b, size_t *blen);
/* A parameter of a structured header value (`type; name=value; ...`, e.g.
 * Content-Disposition's filename), name case-insensitive. A quoted value comes
 * without its quotes but with any backslash escapes left as written. 0 or -1. */
int stt_mime_param(const char *hval, size_t len, const char *name, const char **v, size_t *vlen);
/* Splits body into parts. *nparts receives the number of parts in the body; only
 * the first max are stored in parts (call again with room for *nparts when it is
 * larger). 0, or -1 when malformed / truncated (no opening or no closing
 * delimiter). A part without the blank line that ends headers is all headers
 * (RFC 2046). Preamble and epilogue are ignored. */
int stt_mime_parse(const char *body, size_t len, const char *boundary, size_t blen, stt_mime_part_t *parts,
                   size_t *nparts, size_t max);
/* Value of a header inside a part's header block (case-insensitive name), or
 * NULL. The value is trimmed and not NUL-terminated. */
const char *stt_mime_header(const stt_mime_part_t *p, const char *name, size_t *vlen);
/* Appends s as a header value that cannot break the header block: CR, LF and
 * NUL are dropped; with quoted, '"' and '\\' are backslash-escaped (the caller
 * writes the surrounding quotes). */
void stt_mime_put_value(stt_buf_t *out, const char *s, size_t len, bool quoted);

#ifndef STT_MIME_PURE
#include "src/http/http.h"
#include "replication/replication.h"

/* ---------------------------------------------------------------- handlers */

typedef struct {
    int node;            /* revision to send, or -1 for a missing rev */
    const char *missing; /* rev text when node < 0 */
    size_t missinglen;
} stt_mp_part_t;

/* GET /db/doc?open_revs=...  with Accept: multipart/mixed. d is NULL when the doc
 * does not exist (every part is then a missing one). */
void stt_mp_reply_open_revs(stt_hreq_t *r, stt_reader_t *rd, const stt_doc_t *d, const stt_mp_part_t *parts, size_t n,
                            const stt_render_opts_t *o);
/* GET /db/doc?attachments=true with Accept: multipart/related. */
void stt_mp_reply_doc_related(stt_hreq_t *r, stt_reader_t *rd, const stt_doc_t *d, int node, const stt_render_opts_t *o,
                              const char *etag);
/* PUT /db/doc with Content-Type: multipart/related. */
void stt_mp_put_doc(stt_hreq_t *r, bool new_edits);

/* ---------------------------------------------------------------- shared with h_doc.c and h_att.c */

int stt_render_opts_from_query(stt_hreq_t *r, stt_render_opts_t *o);
/* Rev from ?rev= or If-Match. 0 (*has set or not), -1 after replying 400. */
int stt__query_rev(stt_hreq_t *r, stt_rev_t *rev, bool *has);
/* 413 document_too_large when len is over max_document_size (and replies). */
bool stt__too_large(stt_hreq_t *r, size_t len);
/* Reply of a successful single-doc write: {"ok":true,"id","rev"}, etag and, with
 * location, the URL of the doc (of the attachment when r->attname is set). */
void stt__reply_written(stt_hreq_t *r, int status, const char *id, size_t idlen, const char *rev, bool location);
/* Writes one doc and replies as a doc PUT does (201, or 200 for a deletion; 202
 * with batch). */
void stt__doc_write_one(stt_hreq_t *r, stt_doc_write_t *w, bool new_edits, bool batch);
/* The rest of a doc PUT once its JSON is parsed (the body, or the first part of a
 * multipart/related body with its follows data): stt_doc_parse, the id from the
 * URL, ?rev / If-Match against _rev, ?batch, then write and reply. body and the
 * follows data must stay valid until it returns. */
void stt__doc_put(stt_hreq_t *r, const stt_json_t *body, const stt_follows_t *follows, size_t nfollows, bool new_edits);

#endif /* STT_MIME_PURE */

#endif
