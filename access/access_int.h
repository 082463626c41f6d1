/* Private to access/: the key layout of the per-user changes index, inside the
 * store's index keyspace of the database (keys relative to the db; the store
 * prefixes 'I' dbid; view indexes use lower-case tags, this index 'A').
 *
 * | key                                    | value                                  |
 * |----------------------------------------|----------------------------------------|
 * | 'A' 'h'                                | be64 seq: every change up to it is in  |
 * |                                        | the entries below                      |
 * | 'A' 's' varint len, principal, be64 seq| u8 removed (0/1), docid                |
 * | 'A' 'i' varint len, principal, docid   | (empty): the live docs of a principal, |
 * |                                        | by id (_all_docs)                      |
 * | 'A' 'd' docid                          | be64 seq, varint n, per principal:     |
 * |                                        | u8 removed, varint len, principal      |
 *
 * A doc has one 's' entry per principal that any of its leaves names (removed 0)
 * or that a leaf named once and none names now (removed 1: the doc leaves that
 * principal's replicas), all at the doc's current seq, and an 'i' entry per
 * principal that may read it while its winner is live; its 'd' entry lists them,
 * so the next update of the doc finds and deletes them. Design docs are not
 * indexed (db-admin only). The header and the entries of a batch of docs are
 * written in one batch, so the header always describes the entries present. The
 * index is brought up to date from the by-seq index (stt_access_sync), as a view
 * is: its writes need no sync, a crash only makes the next sync redo some docs. */
#ifndef STT_ACCESS_INT_H
#define STT_ACCESS_INT_H
#include "access/access.h"
#include "src/common/json.h"

#define AK 'A'
#define AK_HEADER 'h'
#define AK_SEQ 's'
#define AK_DOC 'd'
#define AK_ID 'i'

size_t stt__access_principals(const stt_access_t *acc, const char *const **p, const size_t **plen);
stt_db_t *stt__access_db(const stt_access_t *acc);
bool stt__access_is_design(const char *id, size_t idlen);
/* The _access array of a body, or NULL (arena). */
const stt_json_t *stt__access_list(stt_arena_t *a, const char *json, size_t len);
/* The leaves of d in winner order (malloc'd; *n of them). */
int *stt__access_leaves(const stt_doc_t *d, size_t *n);
/* The row of a doc removed from the user's view: its winner, deleted. */
void stt__access_removed_row(const stt_doc_t *d, stt_access_row_t *row);

#endif
