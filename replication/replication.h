/* Documents as CouchDB's replicators and clients see them: parsing a JSON doc into
 * a store write, rendering a stored revision back into JSON, and the pieces of the
 * replication protocol that are not HTTP (revs_diff answers, open_revs selection).
 *
 * Memory: parse results live in the caller's arena; render appends to the
 * caller's buffer. */
#ifndef STT_REPLICATION_H
#define STT_REPLICATION_H
#include "src/common/arena.h"
#include "src/common/buf.h"
#include "src/common/json.h"
#include "store/store.h"

/* ------------------------------------------------------------------ parsing */

/* Extra data for attachments marked "follows" (multipart bodies): looked up by name. */
typedef struct {
    const char *name;
    size_t namelen;
    const char *data;
    size_t len;
} stt_follows_t;

typedef struct {
    bool new_edits;
    bool is_local; /* a _local doc: no attachment or revision handling */
    /* id from the URL (PUT /db/id): the body's _id must match when present */
    const char *url_id;
    size_t url_idlen;
    const stt_follows_t *follows;
    size_t nfollows;
} stt_doc_parse_opts_t;

/* Parses obj into *out (pointers into the arena or obj). On failure returns an
 * STT_E* code and sets *reason to CouchDB's text (static or arena). Checks: _id is a
 * string and legal, no unknown special members, _rev/_revisions well formed,
 * attachments well formed (base64 data, stubs, follows). */
int stt_doc_parse(stt_arena_t *a, const stt_json_t *obj, const stt_doc_parse_opts_t *o, stt_doc_write_t *out,
                  const char **reason);

/* CouchDB's doc id rule: non-empty, valid UTF-8, and a leading '_' only for
 * "_design/" and "_local/". 0 or STT_E_ILLEGAL_DOCID / STT_E_BAD_REQUEST. */
int stt_docid_check(const char *id, size_t len, const char **reason);

/* The revision a read names: rev when given (it must have a stored body), else
 * the winner (which must not be deleted). 0 with *node set, or STT_E_NOT_FOUND
 * ("missing") / STT_E_DELETED ("deleted"), as CouchDB answers a doc GET. */
int stt_doc_select(const stt_doc_t *d, const stt_rev_t *rev, int *node);

/* ------------------------------------------------------------------ filters and leaves */

struct stt_selector;

/* What a _changes filter (_selector, a design doc's filter, _view) judges of a doc
 * (filter_revs.c): each revision the row would list, as CouchDB's couch_changes
 * opens them (style=all_docs: every leaf, deleted ones too; else the winner); the row
 * lists the revisions that passed and a doc with none has no row. The node of rev
 * ("N-id") in d, -1 when d has none. */
int stt_filter_node(const stt_doc_t *d, const char *rev, size_t revlen);
/* Node as a filter function is given it: rendered as a GET of that rev renders it,
 * or CouchDB's stub {_id, _rev, _deleted} when its body is not stored. */
void stt_filter_doc(stt_reader_t *rd, const stt_doc_t *d, int node, stt_buf_t *out);
/* Whether node's revision, rendered as a GET gives it, matches sel (a
 * replication/selector.h selector): the test of _changes?filter=_selector and of
 * replications with a selector. */
bool stt_filter_selector_node(stt_reader_t *rd, const stt_doc_t *d, int node, const struct stt_selector *sel);

/* ------------------------------------------------------------------ revs_diff */

/* CouchDB's _revs_diff answer for req ({id:[revs]}), appended to out as an object:
 * for each doc that lacks some, {"missing":[...], "possible_ancestors":[...]}.
 * STT_E_BAD_REQUEST (with *reason) or STT_E_BAD_REV for a malformed request, before
 * anything is appended; a store error otherwise. visible, when set, hides docs
 * (per-document access): a doc it refuses is answered as unknown. */
int stt_revs_diff(stt_reader_t *rd, stt_arena_t *arena, const stt_json_t *req, stt_buf_t *out, const char **reason,
                  bool (*visible)(void *ctx, const stt_doc_t *d), void *ctx);

/* ------------------------------------------------------------------ rendering */

typedef struct {
    bool revs, revs_info, conflicts, deleted_conflicts, local_seq;
    bool attachments;       /* inline "data" instead of stubs */
    bool att_encoding_info; /* settee stores attachments identity-encoded: adds nothing */
    bool follows;           /* multipart: "follows":true instead of data */
    const stt_rev_t *atts_since;
    size_t natts_since;
    uint32_t revs_limit; /* _revisions cut to this many ids */
    /* With attachments: when set, an inline attachment's "data" string is left
     * empty and this is called where its base64 goes (at the end of out), so that
     * the caller splices the bytes in as the answer goes out instead of holding them. */
    void (*inline_att)(void *ctx, stt_buf_t *out, const stt_att_t *a);
    void *inline_ctx;
} stt_render_opts_t;

/* Renders revision `node` of d (it must have a stored body: a leaf). Attachment
 * data comes through rd when o->attachments. Returns 0, STT_E_NOT_FOUND when no
 * body is stored for that node. */
int stt_doc_render(stt_reader_t *rd, const stt_doc_t *d, int node, const stt_render_opts_t *o, stt_buf_t *out);

/* Attachments of node that a multipart writer must send after the JSON (those
 * rendered with follows:true): fills *atts (malloc'd, caller frees) */
int stt_doc_follow_atts(const stt_doc_t *d, int node, const stt_render_opts_t *o, stt_att_t **atts, size_t *n);

/* "_revisions" value for node: {"start":N,"ids":[...]} cut to limit. */
void stt_render_revisions(const stt_revtree_t *t, int node, uint32_t limit, stt_buf_t *out);

#endif
