/* What /_db_updates reads: CouchDB's global_changes app. Every database that is
 * created, updated or deleted is recorded as a document "<type>:<db name>" (type
 * "created", "updated" or "deleted", body {}) of the _global_changes database,
 * rewritten at each new event; _db_updates is that database's changes feed with
 * each id split back into db_name and type.
 *
 * As in CouchDB, nothing is recorded while _global_changes does not exist (an
 * admin creates it: PUT /_global_changes), its own changes are never recorded,
 * events are coalesced in memory (an update of db x, however many writes, is one
 * pending "updated:x") and written in one batch at most every [global_changes]
 * max_write_delay milliseconds (default 500) by a thread of this module;
 * [global_changes] update_db = false turns recording off. Pending events of a
 * process that stops are lost (CouchDB's are too).
 *
 * The hooks below are what the store's commit and db hooks call; they only take a
 * mutex and copy a name into a set, so writers and request threads never wait for
 * the batch. */
#ifndef STT_GLOBAL_CHANGES_H
#define STT_GLOBAL_CHANGES_H
#include "src/common/ini.h"
#include "store/store.h"

#define STT_GLOBAL_CHANGES_DB "_global_changes"

/* Starts the writer thread. store and ini are borrowed until stop. */
void stt_global_changes_start(stt_store_t *store, stt_ini_t *ini);
/* Stops it; what is still pending is dropped. */
void stt_global_changes_stop(void);

/* A database was created or deleted (an stt_db_event_hook_t; ctx unused). */
void stt_global_changes_db_event(void *ctx, const char *name, size_t len, bool created);
/* A commit to db: records "updated" (nothing for _global_changes itself). */
void stt_global_changes_updated(stt_db_t *db);

/* Splits a _global_changes doc id "type:name": false when it has no ':'. */
bool stt_global_changes_split(const char *id, size_t idlen, const char **type, size_t *typelen, const char **name,
                              size_t *namelen);

#endif
