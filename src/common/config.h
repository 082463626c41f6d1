/* Settings of one settee process: where it listens, where the databases live, limits,
 * logging, TLS, CORS and the admin accounts.
 *
 * Four sources, later ones winning setting by setting:
 *
 *     built-in defaults  <  ini file  <  SETTEE_* environment  <  command-line flags
 *
 * The ini file is CouchDB's local.ini dialect, so a CouchDB local.ini can be pointed at
 * settee as it is: keys settee does not know are ignored. docs/configuration.md lists
 * every setting with its ini key, variable, flag and default.
 *
 * This module only reads and checks settings. It does not act on them: resolving
 * threads = 0 to the number of cores, generating and persisting the uuid, opening the
 * TLS files, hashing admin passwords all belong to the code that uses the setting.
 *
 * Not thread-safe (it reads the environment); call it at startup. */
#ifndef STT_CONFIG_H
#define STT_CONFIG_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define STT_CONFIG_MAX_ADMINS 16

/* [log] format */
enum { STT_LOG_FORMAT_TEXT, STT_LOG_FORMAT_JSON };

/* [log] level, ordered by severity: a message is written when its level >= log_level.
 * The access log is written at INFO (CouchDB writes it at notice, which settee folds
 * into info). */
enum { STT_LOG_LEVEL_DEBUG, STT_LOG_LEVEL_INFO, STT_LOG_LEVEL_WARNING, STT_LOG_LEVEL_ERROR, STT_LOG_LEVEL_NONE };

/* What main should do after stt_config_parse_args / stt_config_init. */
enum {
    STT_CONFIG_RUN,     /* serve with the settings */
    STT_CONFIG_HELP,    /* print stt_config_usage() to stdout, exit 0 */
    STT_CONFIG_VERSION, /* print the version, exit 0 */
};

/* One [admins] line, stored as written: a plain password or one of CouchDB's
 * "-pbkdf2-..." / "-hashed-..." forms. Hashing and checking are auth's business. */
typedef struct {
    char name[128];
    char password[256];
} stt_config_admin_t;

/* Where `make install` puts the web UI (Makefile: $(PREFIX)/share/settee/www). */
#ifndef STT_UTILS_DIR
#define STT_UTILS_DIR "/usr/local/share/settee/www"
#endif

typedef struct {
    char bind[64];                   /* [chttpd] bind_address, "127.0.0.1"; an IP literal */
    int port;                        /* [chttpd] port, 5984 */
    char data_dir[4096];             /* [couchdb] database_dir, "./data" */
    int threads;                     /* [settee] threads, 0 = one per core (the caller resolves it) */
    char uuid[33];                   /* [couchdb] uuid, 32 lowercase hex digits; "" = generate and persist */
    uint64_t max_document_size;      /* [couchdb] max_document_size, 8000000 as CouchDB 3 */
    uint64_t max_http_request_size;  /* [chttpd] max_http_request_size, 64 MiB (CouchDB: 4 GiB) */
    uint32_t revs_limit_default;     /* [settee] default_revs_limit, 1000: _revs_limit of a new database */
    int log_format;                  /* [log] format, STT_LOG_FORMAT_* */
    int log_level;                   /* [log] level, STT_LOG_LEVEL_* */
    uint64_t cache_size;             /* [settee] leveldb_cache_size, 8 MiB */
    uint64_t write_buffer_size;      /* [settee] leveldb_write_buffer_size, 16 MiB */
    uint64_t auto_compact_min_size;  /* [smoosh] min_size, 1 MiB (see stt_store_opts_t) */
    int http2_cleartext;             /* [settee] http2_cleartext, false: h2c on the plain port */
    uint32_t http2_max_request_rate; /* [settee] http2_max_request_rate, 2000/s per connection */
    uint64_t min_free_space;         /* [settee] min_free_space, 0: 2 x write_buffer_size + 64 MiB */
    int shutdown_timeout_ms;         /* [settee] shutdown_timeout, 10000 */
    char utils_dir[4096];            /* [settee] utils_dir: the web UI's files, STT_UTILS_DIR */

    /* TLS is on when both files are set (stt_config_check refuses one without the other);
     * CouchDB's [ssl] enable key is not consulted. */
    char cert_file[4096]; /* [ssl] cert_file, "" */
    char key_file[4096];  /* [ssl] key_file, "" */
    int tls_port;         /* [ssl] port, 6984 */

    /* CORS as CouchDB's chttpd_cors. Lists are kept as written (comma-separated); the
     * HTTP layer splits them. The defaults of methods and headers are CouchDB's. */
    int cors_enabled;        /* [chttpd] enable_cors (or [httpd] enable_cors), false */
    char cors_origins[4096]; /* [cors] origins, "" = none; "*" = any */
    int cors_credentials;    /* [cors] credentials, false */
    char cors_methods[512];  /* [cors] methods */
    char cors_headers[1024]; /* [cors] headers */
    int cors_max_age;        /* [cors] max_age, 600 seconds */

    stt_config_admin_t admins[STT_CONFIG_MAX_ADMINS]; /* [admins] name = password */
    int nadmins;

    /* The ini file the settings came from ("" = none): set by stt_config_load_file and
     * by --config. Lets the caller log it, or persist a generated uuid into it. */
    char config_file[4096];
} stt_config_t;

/* Every function below that takes err writes a one-line message without a trailing
 * newline into err (always NUL-terminated, truncated to errlen; err may be NULL) when it
 * fails, and returns:
 *     0          success
 *     -EINVAL    a bad value, a malformed ini line, an unknown flag; err says where:
 *                "FILE:LINE: [section] key: ...", "SETTEE_PORT: ...", "--port: ..."
 *     -errno     the ini file could not be opened or read (-ENOENT, -EACCES, ...)
 * On failure *c is unchanged: every function works on a copy and commits on success. */

/* The STT_LOG_LEVEL_* of a [log] level name (CouchDB's names too), or -1. */
int stt_config_log_level(const char *name);

/* Fills *c with the built-in defaults. */
void stt_config_defaults(stt_config_t *c);

/* Applies the ini file at path over *c and records path in c->config_file.
 *
 * Dialect (CouchDB's): "[section]" headers; "key = value" lines, the key and value
 * trimmed; lines starting with ';' (or '#') are comments, and " ;" or "\t;" starts a
 * trailing comment in a value; an indented line without '=' continues the previous
 * value (joined with one space); an empty value ("key =") restores the built-in
 * default; a key given twice takes the last value. Unknown sections and keys are
 * ignored, since CouchDB ini files carry many settee does not use. For keys CouchDB
 * reads from two sections ([chttpd] then [httpd]: enable_cors, max_http_request_size)
 * the [chttpd] one wins within a file whatever the order. */
int stt_config_load_file(stt_config_t *c, const char *path, char *err, size_t errlen);

/* Applies the SETTEE_* variables over *c. An unset or empty variable leaves the setting
 * alone. SETTEE_CONFIG is not read here: stt_config_init reads it to find the file. */
int stt_config_load_env(stt_config_t *c, char *err, size_t errlen);

/* Applies command-line flags (argv[0] is skipped) over *c, left to right:
 * "--name VALUE" or "--name=VALUE"; an empty value restores the default. --config FILE
 * only records FILE in c->config_file (stt_config_init loads it). "-h"/"--help" and
 * "-V"/"--version" stop parsing and set *action to STT_CONFIG_HELP / STT_CONFIG_VERSION,
 * leaving *c unchanged; otherwise *action is STT_CONFIG_RUN. Arguments other than
 * flags are errors. *action is written only on success. */
int stt_config_parse_args(stt_config_t *c, int argc, char **argv, int *action, char *err, size_t errlen);

/* Cross-setting checks done once all sources are applied: [ssl] cert_file and key_file
 * set together, and then [ssl] port different from [chttpd] port. */
int stt_config_check(const stt_config_t *c, char *err, size_t errlen);

/* The whole flow main wants: defaults, then the ini file named by the last --config in
 * argv or else by SETTEE_CONFIG (none if neither), then the environment, then the
 * other flags, then stt_config_check. With --help or --version no file is read (so help
 * works whatever the file holds), *c is left unchanged and *action says which.
 * *c and *action are written only on success; main prints err and exits with 2. */
int stt_config_init(stt_config_t *c, int argc, char **argv, int *action, char *err, size_t errlen);

/* Writes the current value of ini key [section] key as the ini would spell it
 * ("5984", "true", "json"; for [admins] the stored password) into out. Aliases such as
 * [httpd] enable_cors work too. Returns 0, -ENOENT for a key settee does not have (or an
 * admin not configured), -ERANGE if outlen is too small (out then holds "").
 * Meant for logging the effective settings and for a future /_node/_local/_config. */
int stt_config_get(const stt_config_t *c, const char *section, const char *key, char *out, size_t outlen);

/* Prints the --help text: flags, environment variables, ini keys and defaults. */
void stt_config_usage(FILE *f);

#endif
