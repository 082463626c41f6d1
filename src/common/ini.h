/* The live configuration: every [section] key = value of the ini file settee was
 * started with, readable and writable while the server runs (CouchDB's config
 * app, behind /_node/{node}/_config).
 *
 * stt_config_t (config.h) stays the typed snapshot taken at start-up for what
 * cannot change at run time (port, data dir, threads). Settings that take effect at
 * once (security, lockout, CORS...) are read from here by their users on each
 * request, through stt_ini_get; stt_ini_generation lets a user cache a parsed form
 * and re-parse only after a change.
 *
 * Persistence: a change made with persist=true is written back to the file at
 * once, in place: the key's line is replaced (or appended to its section, or a new
 * section appended at the end), comments and the other lines are kept, and the new
 * file replaces the old by rename after fsync. A file that cannot be written makes
 * the change fail with -errno and leaves the memory unchanged. With no file
 * (path NULL) persist is ignored.
 *
 * Values are kept as written, trimmed, one per key (the last of duplicates); the
 * dialect is config.h's (';' comments, indented continuation lines).
 *
 * Thread-safe: a rwlock; values returned are copies owned by the caller. */
#ifndef STT_INI_H
#define STT_INI_H
#include "src/common/buf.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct stt_ini stt_ini_t;

/* Loads path (NULL: an empty in-memory store). A missing file is an empty store
 * that will be created on the first persisted change. -errno when the file exists
 * but cannot be read, -EINVAL (err says FILE:LINE) when it cannot be parsed. */
int stt_ini_open(const char *path, stt_ini_t **out, char *err, size_t errlen);
void stt_ini_free(stt_ini_t *ini);
const char *stt_ini_path(const stt_ini_t *ini); /* NULL when in memory only */

/* A malloc'd copy of the value, or NULL when the key is not set. */
char *stt_ini_get(stt_ini_t *ini, const char *section, const char *key);
/* Appends the value to out: 0, or STT_E_NOT_FOUND (out untouched). */
int stt_ini_get_buf(stt_ini_t *ini, const char *section, const char *key, stt_buf_t *out);
/* Typed reads with a default for an unset or unparsable value. Booleans are
 * "true"/"false" as CouchDB writes them. */
bool stt_ini_get_bool(stt_ini_t *ini, const char *section, const char *key, bool dflt);
int64_t stt_ini_get_int(stt_ini_t *ini, const char *section, const char *key, int64_t dflt);

/* Sets a value (persisted when persist). *old, when old is non-NULL, receives the
 * previous value as a malloc'd string, or NULL when it was unset. 0 or -errno. */
int stt_ini_set(stt_ini_t *ini, const char *section, const char *key, const char *value, bool persist, char **old);
/* Removes a key; STT_E_NOT_FOUND when it was not set. *old as for set. */
int stt_ini_delete(stt_ini_t *ini, const char *section, const char *key, bool persist, char **old);

/* Calls fn for each key of a section (all sections when section is NULL), in the
 * order they were first set, under the read lock: fn must not call back into ini. */
void stt_ini_each(stt_ini_t *ini, const char *section,
                  void (*fn)(void *ctx, const char *section, const char *key, const char *value), void *ctx);

/* Bumped by every successful set and delete. */
uint64_t stt_ini_generation(stt_ini_t *ini);

#endif
