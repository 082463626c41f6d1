/* Reading settings from defaults, a CouchDB-style ini file, SETTEE_* variables and flags.
 *
 * Every setting is one row of the table below: its ini section and key, its variable,
 * its flag, its type and where it lives in stt_config_t. The three readers, --help and
 * stt_config_get all walk that table, so a setting is added in one place and the three
 * spellings cannot drift apart. Values are checked by one function (set_value) whatever
 * source they come from; the sources differ only in how they say where a bad value was.
 *
 * Not here: acting on a setting (see config.h), writing the ini file back, reloading. */
#include "src/common/config.h"
#include "src/common/buf.h"
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---------------------------------------------------------------------------------
 * The settings table
 * --------------------------------------------------------------------------------- */

typedef enum {
    T_STR,        /* free text that must fit the field */
    T_BIND,       /* an IP literal, or "any" / "localhost" */
    T_UUID,       /* 32 hex digits */
    T_INT,        /* int in [min, max] */
    T_U32,        /* uint32_t in [min, max] */
    T_SIZE,       /* uint64_t byte count in [min, max] */
    T_BOOL,       /* int, "true" / "false" as CouchDB */
    T_LOG_FORMAT, /* int, STT_LOG_FORMAT_* */
    T_LOG_LEVEL,  /* int, STT_LOG_LEVEL_* */
} type_t;

typedef struct {
    const char *section, *key; /* ini */
    const char *env;           /* NULL for a fallback row */
    const char *flag;          /* without "--"; NULL for a fallback row */
    const char *arg;           /* the value's name in --help */
    type_t type;
    size_t off, size;
    uint64_t min, max;
    /* An older CouchDB spelling of the same setting: used only when the file does not
     * give the primary row a value (as chttpd_util:get_chttpd_config falls back from
     * [chttpd] to [httpd]). A fallback row directly follows its primary row. */
    bool fallback;
    const char *help;
} setting_t;

#define FIELD(f) .off = offsetof(stt_config_t, f), .size = sizeof(((stt_config_t *)0)->f)

static const setting_t settings[] = {
    {"chttpd", "bind_address", "SETTEE_BIND", "bind", "ADDR", T_BIND, FIELD(bind),
     .help = "IP address to listen on; \"any\" = 0.0.0.0, \"localhost\" = 127.0.0.1"},
    {"chttpd", "port", "SETTEE_PORT", "port", "N", T_INT, FIELD(port), .min = 1, .max = 65535, .help = "HTTP port"},
    {"couchdb", "database_dir", "SETTEE_DATA_DIR", "data-dir", "DIR", T_STR, FIELD(data_dir),
     .help = "directory holding the databases"},
    {"settee", "threads", "SETTEE_THREADS", "threads", "N", T_INT, FIELD(threads), .min = 0, .max = 1024,
     .help = "worker threads; 0 = one per core"},
    {"couchdb", "uuid", "SETTEE_UUID", "uuid", "HEX", T_UUID, FIELD(uuid),
     .help = "server uuid, 32 hex digits; empty = generate one and keep it"},
    {"couchdb", "max_document_size", "SETTEE_MAX_DOCUMENT_SIZE", "max-document-size", "BYTES", T_SIZE,
     FIELD(max_document_size), .min = 1, .max = UINT64_MAX, .help = "largest document body accepted"},
    {"chttpd", "max_http_request_size", "SETTEE_MAX_HTTP_REQUEST_SIZE", "max-http-request-size", "BYTES", T_SIZE,
     FIELD(max_http_request_size), .min = 1, .max = UINT64_MAX,
     .help = "largest request body accepted (CouchDB's default is 4 GiB; settee's is lower)"},
    {"httpd", "max_http_request_size", .type = T_SIZE, FIELD(max_http_request_size), .min = 1, .max = UINT64_MAX,
     .fallback = true},
    {"settee", "default_revs_limit", "SETTEE_DEFAULT_REVS_LIMIT", "default-revs-limit", "N", T_U32,
     FIELD(revs_limit_default), .min = 1, .max = UINT32_MAX, .help = "_revs_limit of a new database"},
    {"log", "format", "SETTEE_LOG_FORMAT", "log-format", "text|json", T_LOG_FORMAT, FIELD(log_format),
     .help = "log line format"},
    {"log", "level", "SETTEE_LOG_LEVEL", "log-level", "LEVEL", T_LOG_LEVEL, FIELD(log_level),
     .help = "debug, info (includes the access log), warning, error or none"},
    {"settee", "leveldb_cache_size", "SETTEE_CACHE_SIZE", "cache-size", "BYTES", T_SIZE, FIELD(cache_size), .min = 0,
     .max = UINT64_MAX, .help = "leveldb block cache"},
    {"settee", "leveldb_write_buffer_size", "SETTEE_WRITE_BUFFER_SIZE", "write-buffer-size", "BYTES", T_SIZE,
     FIELD(write_buffer_size), .min = 1, .max = UINT64_MAX, .help = "leveldb write buffer (memtable)"},
    {"settee", "http2_cleartext", "SETTEE_HTTP2_CLEARTEXT", "http2-cleartext", "BOOL", T_BOOL, FIELD(http2_cleartext),
     .help = "speak HTTP/2 without TLS on the plain port (h2c upgrade and prior knowledge); off by default"},
    {"settee", "http2_max_request_rate", "SETTEE_HTTP2_MAX_REQUEST_RATE", "http2-max-request-rate", "N", T_U32,
     FIELD(http2_max_request_rate), .min = 0, .max = UINT32_MAX,
     .help = "requests per second one HTTP/2 connection may make (bursts of twice that) before it is closed; "
             "0 = no limit"},
    {"smoosh", "min_size", "SETTEE_AUTO_COMPACT_MIN_SIZE", "auto-compact-min-size", "BYTES", T_SIZE,
     FIELD(auto_compact_min_size), .min = 0, .max = UINT64_MAX,
     .help = "compact a database by itself once its superseded revision bodies reach this size and the size "
             "of its live ones; 0 = only on _compact"},
    {"settee", "min_free_space", "SETTEE_MIN_FREE_SPACE", "min-free-space", "BYTES", T_SIZE, FIELD(min_free_space),
     .min = 0, .max = UINT64_MAX,
     .help = "below this much free disk, writes answer 507 (0: 2 x write buffer + 64 MiB)"},
    {"settee", "shutdown_timeout", "SETTEE_SHUTDOWN_TIMEOUT", "shutdown-timeout", "MS", T_INT,
     FIELD(shutdown_timeout_ms), .min = 0, .max = INT_MAX,
     .help = "milliseconds to let requests finish on SIGTERM/SIGINT"},
    {"settee", "utils_dir", "SETTEE_UTILS_DIR", "utils-dir", "DIR", T_STR, FIELD(utils_dir),
     .help = "directory of the web UI (Fauxton) served at /_utils/"},
    {"ssl", "cert_file", "SETTEE_CERT_FILE", "cert-file", "FILE", T_STR, FIELD(cert_file),
     .help = "PEM certificate; TLS is served when cert and key are both set"},
    {"ssl", "key_file", "SETTEE_KEY_FILE", "key-file", "FILE", T_STR, FIELD(key_file), .help = "PEM private key"},
    {"ssl", "port", "SETTEE_TLS_PORT", "tls-port", "N", T_INT, FIELD(tls_port), .min = 1, .max = 65535,
     .help = "HTTPS port, used when TLS is on"},
    {"chttpd", "enable_cors", "SETTEE_CORS_ENABLED", "cors-enabled", "BOOL", T_BOOL, FIELD(cors_enabled),
     .help = "answer CORS requests"},
    {"httpd", "enable_cors", .type = T_BOOL, FIELD(cors_enabled), .fallback = true},
    {"cors", "origins", "SETTEE_CORS_ORIGINS", "cors-origins", "LIST", T_STR, FIELD(cors_origins),
     .help = "comma-separated origins allowed, or *"},
    {"cors", "credentials", "SETTEE_CORS_CREDENTIALS", "cors-credentials", "BOOL", T_BOOL, FIELD(cors_credentials),
     .help = "send Access-Control-Allow-Credentials"},
    {"cors", "methods", "SETTEE_CORS_METHODS", "cors-methods", "LIST", T_STR, FIELD(cors_methods),
     .help = "methods allowed in preflight"},
    {"cors", "headers", "SETTEE_CORS_HEADERS", "cors-headers", "LIST", T_STR, FIELD(cors_headers),
     .help = "request headers allowed in preflight"},
    {"cors", "max_age", "SETTEE_CORS_MAX_AGE", "cors-max-age", "SECONDS", T_INT, FIELD(cors_max_age), .min = 0,
     .max = INT_MAX, .help = "Access-Control-Max-Age of preflight replies"},
};

#define NSETTINGS (sizeof settings / sizeof settings[0])

static const stt_config_t defaults = {
    .bind = "127.0.0.1",
    .port = 5984,
    .data_dir = "./data",
    .threads = 0,
    .uuid = "",
    .max_document_size = 8000000,
    .max_http_request_size = 64 << 20,
    .revs_limit_default = 1000,
    .log_format = STT_LOG_FORMAT_TEXT,
    .log_level = STT_LOG_LEVEL_INFO,
    .cache_size = 8 << 20,
    .write_buffer_size = 16 << 20,
    .auto_compact_min_size = 1 << 20, /* smoosh's min_size */
    .http2_max_request_rate = 2000,
    .shutdown_timeout_ms = 10000,
    .utils_dir = STT_UTILS_DIR,
    .tls_port = 6984,
    /* chttpd_cors.hrl's ?SUPPORTED_METHODS, ?SUPPORTED_HEADERS and ?CORS_DEFAULT_MAX_AGE */
    .cors_methods = "CONNECT, COPY, DELETE, GET, HEAD, OPTIONS, POST, PUT, TRACE",
    .cors_headers = "accept, accept-language, authorization, content-length, content-range, content-type, "
                    "destination, expires, if-match, last-modified, origin, pragma, x-couch-full-commit, "
                    "x-couch-id, x-couch-persist, x-couchdb-www-authenticate, x-http-method-override, "
                    "x-requested-with, x-couchdb-vhost-path, referer",
    .cors_max_age = 600,
};

/* Canonical names first: formatting picks the first name with the value. The others
 * are CouchDB's syslog-style levels folded onto settee's five, so a CouchDB local.ini
 * with level = notice still loads. */
static const struct {
    const char *name;
    int value;
} log_levels[] = {
    {"debug", STT_LOG_LEVEL_DEBUG},  {"info", STT_LOG_LEVEL_INFO},       {"warning", STT_LOG_LEVEL_WARNING},
    {"error", STT_LOG_LEVEL_ERROR},  {"none", STT_LOG_LEVEL_NONE},       {"notice", STT_LOG_LEVEL_INFO},
    {"warn", STT_LOG_LEVEL_WARNING}, {"err", STT_LOG_LEVEL_ERROR},       {"critical", STT_LOG_LEVEL_ERROR},
    {"alert", STT_LOG_LEVEL_ERROR},  {"emergency", STT_LOG_LEVEL_ERROR},
};
static const char *const log_formats[] = {"text", "json"};

int stt_config_log_level(const char *name)
{
    for (size_t i = 0; i < sizeof log_levels / sizeof log_levels[0]; i++)
        if (!strcasecmp(name, log_levels[i].name)) return log_levels[i].value;
    return -1;
}

static void seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static const setting_t *find_ini(const char *section, const char *key)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (!strcmp(settings[i].section, section) && !strcmp(settings[i].key, key)) return &settings[i];
    return NULL;
}

static const setting_t *find_flag(const char *name, size_t len)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (settings[i].flag && strlen(settings[i].flag) == len && !memcmp(settings[i].flag, name, len))
            return &settings[i];
    return NULL;
}

/* ---------------------------------------------------------------------------------
 * Values: one checker for every source
 * --------------------------------------------------------------------------------- */

/* Plain decimal only: CouchDB takes no K/M/G suffixes, and a config that silently read
 * "8M" as 8 would be worse than one that refuses it. */
static int parse_uint(const setting_t *s, const char *v, uint64_t *out, char *msg, size_t msglen)
{
    uint64_t n = 0;
    const char *p = v;
    bool overflow = false;

    for (; isdigit((unsigned char)*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (n > (UINT64_MAX - d) / 10)
            overflow = true;
        else
            n = n * 10 + d;
    }
    if (p == v || *p) {
        if (s->type == T_SIZE)
            seterr(msg, msglen, "expected a size in bytes as a plain integer (no K/M/G suffix), got \"%.64s\"", v);
        else
            seterr(msg, msglen, "expected an integer from %" PRIu64 " to %" PRIu64 ", got \"%.64s\"", s->min, s->max,
                   v);
        return -EINVAL;
    }
    if (overflow || n < s->min || n > s->max) {
        seterr(msg, msglen, "%.64s is out of range (%" PRIu64 " to %" PRIu64 ")", v, s->min, s->max);
        return -EINVAL;
    }
    *out = n;
    return 0;
}

static int set_str(char *field, size_t size, const char *v, char *msg, size_t msglen)
{
    size_t len = strlen(v);
    if (len >= size) {
        seterr(msg, msglen, "too long (%zu bytes, at most %zu)", len, size - 1);
        return -EINVAL;
    }
    memcpy(field, v, len + 1);
    return 0;
}

/* Checks v (non-empty) and stores it into the setting's field of *c. */
static int set_value(stt_config_t *c, const setting_t *s, const char *v, char *msg, size_t msglen)
{
    char *field = (char *)c + s->off;
    uint64_t n;
    int rc;

    switch (s->type) {
    case T_STR:
        return set_str(field, s->size, v, msg, msglen);
    case T_BIND: {
        /* An IP literal, checked here rather than when binding, so a typo is reported
         * with its line; "any" is CouchDB's spelling of all interfaces. */
        unsigned char addr[16];
        if (!strcmp(v, "any"))
            v = "0.0.0.0";
        else if (!strcmp(v, "localhost"))
            v = "127.0.0.1";
        else if (inet_pton(AF_INET, v, addr) != 1 && inet_pton(AF_INET6, v, addr) != 1) {
            seterr(msg, msglen, "expected an IPv4 or IPv6 address or \"any\", got \"%.64s\"", v);
            return -EINVAL;
        }
        return set_str(field, s->size, v, msg, msglen);
    }
    case T_UUID: {
        size_t len = strlen(v);
        for (size_t i = 0; i < len; i++)
            if (!isxdigit((unsigned char)v[i])) len = 0;
        if (len != 32) {
            seterr(msg, msglen, "expected 32 hex digits, got \"%.64s\"", v);
            return -EINVAL;
        }
        /* Lowercase, as CouchDB generates them, so the uuid compares equal to itself
         * however it was typed. */
        for (size_t i = 0; i <= len; i++)
            field[i] = (char)tolower((unsigned char)v[i]);
        return 0;
    }
    case T_INT:
    case T_U32:
    case T_SIZE:
        if ((rc = parse_uint(s, v, &n, msg, msglen))) return rc;
        if (s->type == T_INT)
            *(int *)field = (int)n;
        else if (s->type == T_U32)
            *(uint32_t *)field = (uint32_t)n;
        else
            *(uint64_t *)field = n;
        return 0;
    case T_BOOL:
        if (!strcasecmp(v, "true") || !strcasecmp(v, "false")) {
            *(int *)field = !strcasecmp(v, "true");
            return 0;
        }
        seterr(msg, msglen, "expected true or false, got \"%.64s\"", v);
        return -EINVAL;
    case T_LOG_FORMAT:
        for (size_t i = 0; i < sizeof log_formats / sizeof log_formats[0]; i++)
            if (!strcasecmp(v, log_formats[i])) {
                *(int *)field = (int)i;
                return 0;
            }
        seterr(msg, msglen, "expected text or json, got \"%.64s\"", v);
        return -EINVAL;
    case T_LOG_LEVEL:
        for (size_t i = 0; i < sizeof log_levels / sizeof log_levels[0]; i++)
            if (!strcasecmp(v, log_levels[i].name)) {
                *(int *)field = log_levels[i].value;
                return 0;
            }
        seterr(msg, msglen, "expected debug, info, warning, error or none, got \"%.64s\"", v);
        return -EINVAL;
    }
    return -EINVAL;
}

/* An empty value means "the default", as an empty key deletes a CouchDB setting. */
static int set_or_reset(stt_config_t *c, const setting_t *s, const char *v, char *msg, size_t msglen)
{
    if (*v) return set_value(c, s, v, msg, msglen);
    memcpy((char *)c + s->off, (const char *)&defaults + s->off, s->size);
    return 0;
}

static void copy_field(stt_config_t *to, const stt_config_t *from, const setting_t *s)
{
    memcpy((char *)to + s->off, (const char *)from + s->off, s->size);
}

/* Formats the setting as an ini value; -ERANGE if it does not fit. */
static int format_value(const stt_config_t *c, const setting_t *s, char *out, size_t outlen)
{
    const char *field = (const char *)c + s->off;
    const char *str = NULL;
    char num[24];
    int v = 0;

    switch (s->type) {
    case T_STR:
    case T_BIND:
    case T_UUID:
        str = field;
        break;
    case T_INT:
        snprintf(num, sizeof num, "%d", *(const int *)field);
        str = num;
        break;
    case T_U32:
        snprintf(num, sizeof num, "%" PRIu32, *(const uint32_t *)field);
        str = num;
        break;
    case T_SIZE:
        snprintf(num, sizeof num, "%" PRIu64, *(const uint64_t *)field);
        str = num;
        break;
    case T_BOOL:
        str = *(const int *)field ? "true" : "false";
        break;
    case T_LOG_FORMAT:
        v = *(const int *)field;
        str = v >= 0 && v < (int)(sizeof log_formats / sizeof log_formats[0]) ? log_formats[v] : "?";
        break;
    case T_LOG_LEVEL:
        v = *(const int *)field;
        str = "?";
        for (size_t i = 0; i < sizeof log_levels / sizeof log_levels[0]; i++)
            if (log_levels[i].value == v) {
                str = log_levels[i].name;
                break;
            }
        break;
    }
    if (strlen(str) >= outlen) {
        if (outlen) out[0] = '\0';
        return -ERANGE;
    }
    strcpy(out, str);
    return 0;
}

static stt_config_admin_t *find_admin(stt_config_t *c, const char *name)
{
    for (int i = 0; i < c->nadmins; i++)
        if (!strcmp(c->admins[i].name, name)) return &c->admins[i];
    return NULL;
}

/* [admins] name = password; an empty password removes the admin, as in CouchDB. */
static int set_admin(stt_config_t *c, const char *name, const char *password, char *msg, size_t msglen)
{
    stt_config_admin_t *a = find_admin(c, name);

    if (!*password) {
        if (a) {
            memmove(a, a + 1, (size_t)(c->admins + c->nadmins - (a + 1)) * sizeof *a);
            c->nadmins--;
        }
        return 0;
    }
    if (strlen(name) >= sizeof a->name) {
        seterr(msg, msglen, "admin name too long (at most %zu bytes)", sizeof a->name - 1);
        return -EINVAL;
    }
    if (strlen(password) >= sizeof a->password) {
        seterr(msg, msglen, "password too long (at most %zu bytes)", sizeof a->password - 1);
        return -EINVAL;
    }
    if (!a) {
        if (c->nadmins == STT_CONFIG_MAX_ADMINS) {
            seterr(msg, msglen, "too many admins (at most %d)", STT_CONFIG_MAX_ADMINS);
            return -EINVAL;
        }
        a = &c->admins[c->nadmins++];
        strcpy(a->name, name);
    }
    strcpy(a->password, password);
    return 0;
}

void stt_config_defaults(stt_config_t *c)
{
    *c = defaults;
}

/* ---------------------------------------------------------------------------------
 * The ini file
 * --------------------------------------------------------------------------------- */

/* A key's value is applied only when the next line shows it is complete (an indented
 * line may still continue it), so the parser keeps one pending key. */
typedef struct {
    const char *path;
    stt_config_t *c;
    stt_config_t *fb; /* values of fallback rows, copied into c at the end if needed */
    bool given[NSETTINGS];
    stt_buf_t section, key, value;
    int key_line; /* line of the pending key; 0 = none pending */
    char *err;
    size_t errlen;
} ini_t;

static const char *bstr(const stt_buf_t *b)
{
    return b->base ? b->base : "";
}

static void bset(stt_buf_t *b, const char *p, size_t len)
{
    stt_buf_reset(b);
    stt_buf_append(b, p, len);
}

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* Trims [p, p+len) in place; returns the new start, *len updated. */
static const char *trim(const char *p, size_t *len)
{
    while (*len && is_space(*p))
        p++, (*len)--;
    while (*len && is_space(p[*len - 1]))
        (*len)--;
    return p;
}

/* CouchDB ends a value at " ;" or "\t;": a ';' inside a value (a password, a URL)
 * stays part of it. */
static size_t value_len(const char *v)
{
    for (const char *p = v; *p; p++)
        if (is_space(p[0]) && p[1] == ';') return (size_t)(p - v);
    return strlen(v);
}

static int ini_apply_pending(ini_t *st)
{
    char msg[256];
    int rc = 0;
    int line = st->key_line;
    const char *section = bstr(&st->section), *key = bstr(&st->key), *value = bstr(&st->value);

    if (!line) return 0;
    st->key_line = 0;
    if (!strcmp(section, "admins")) {
        rc = set_admin(st->c, key, value, msg, sizeof msg);
    } else {
        const setting_t *s = find_ini(section, key);
        if (!s) return 0;
        /* A fallback's value waits in fb until the whole file is read. An empty
         * primary counts as absent: CouchDB deletes the key and reads the fallback. */
        rc = set_or_reset(s->fallback ? st->fb : st->c, s, value, msg, sizeof msg);
        st->given[s - settings] = s->fallback || *value;
    }
    if (rc) seterr(st->err, st->errlen, "%s:%d: [%s] %s: %s", st->path, line, section, key, msg);
    return rc;
}

static int ini_line(ini_t *st, char *line, int lineno)
{
    size_t len = strlen(line);
    const char *p;
    char *eq;
    int rc;

    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = '\0';
    if (lineno == 1 && !strncmp(line, "\xEF\xBB\xBF", 3)) line += 3, len -= 3;
    p = trim(line, &len);
    if (!len || *p == ';' || *p == '#') return 0;

    eq = strchr(line, '=');
    if (is_space(line[0]) && !eq && st->key_line) {
        size_t vlen = value_len(p);
        p = trim(p, &vlen);
        if (vlen) {
            if (st->value.len) stt_buf_appendc(&st->value, ' ');
            stt_buf_append(&st->value, p, vlen);
        }
        return 0;
    }
    if ((rc = ini_apply_pending(st))) return rc;

    if (*p == '[') {
        const char *close = memchr(p, ']', len);
        size_t namelen, restlen;
        const char *name, *rest;
        if (!close) {
            seterr(st->err, st->errlen, "%s:%d: unterminated section header (missing ']')", st->path, lineno);
            return -EINVAL;
        }
        namelen = (size_t)(close - p - 1);
        name = trim(p + 1, &namelen);
        restlen = len - (size_t)(close + 1 - p);
        rest = trim(close + 1, &restlen);
        if (restlen && *rest != ';') {
            seterr(st->err, st->errlen, "%s:%d: unexpected text after section header: \"%.*s\"", st->path, lineno,
                   (int)(restlen > 64 ? 64 : restlen), rest);
            return -EINVAL;
        }
        if (!namelen) {
            seterr(st->err, st->errlen, "%s:%d: empty section name", st->path, lineno);
            return -EINVAL;
        }
        bset(&st->section, name, namelen);
        return 0;
    }

    if (!eq) {
        seterr(st->err, st->errlen, "%s:%d: expected \"key = value\", \"[section]\" or a ; comment, got \"%.64s\"",
               st->path, lineno, p);
        return -EINVAL;
    }
    size_t keylen = (size_t)(eq - p);
    const char *key = trim(p, &keylen);
    if (!keylen) {
        seterr(st->err, st->errlen, "%s:%d: missing key before '='", st->path, lineno);
        return -EINVAL;
    }
    size_t vlen = value_len(eq + 1);
    const char *value = trim(eq + 1, &vlen);
    bset(&st->key, key, keylen);
    bset(&st->value, value, vlen);
    st->key_line = lineno;
    return 0;
}

int stt_config_load_file(stt_config_t *c, const char *path, char *err, size_t errlen)
{
    ini_t st = {.path = path, .err = err, .errlen = errlen};
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, rc = 0;
    FILE *f;

    if (strlen(path) >= sizeof c->config_file) {
        seterr(err, errlen, "%.64s...: config file path too long", path);
        return -ENAMETOOLONG;
    }
    if (!(f = fopen(path, "r"))) {
        rc = -errno;
        seterr(err, errlen, "%s: %s", path, strerror(-rc));
        return rc;
    }
    st.c = stt_xmalloc(sizeof *st.c);
    st.fb = stt_xmalloc(sizeof *st.fb);
    *st.c = *c;
    *st.fb = *c;

    errno = 0;
    while (getline(&line, &cap, f) != -1)
        if ((rc = ini_line(&st, line, ++lineno))) goto exit;
    if (ferror(f)) {
        rc = errno ? -errno : -EIO;
        seterr(err, errlen, "%s: %s", path, strerror(-rc));
        goto exit;
    }
    if ((rc = ini_apply_pending(&st))) goto exit;

    for (size_t i = 0; i < NSETTINGS; i++)
        if (settings[i].fallback && st.given[i] && !st.given[i - 1]) copy_field(st.c, st.fb, &settings[i]);
    strcpy(st.c->config_file, path);
    *c = *st.c;

exit:
    fclose(f);
    free(line);
    free(st.c);
    free(st.fb);
    stt_buf_free(&st.section);
    stt_buf_free(&st.key);
    stt_buf_free(&st.value);
    return rc;
}

/* ---------------------------------------------------------------------------------
 * Environment and flags
 * --------------------------------------------------------------------------------- */

int stt_config_load_env(stt_config_t *c, char *err, size_t errlen)
{
    stt_config_t *t = stt_xmalloc(sizeof *t);
    char msg[256];
    int rc = 0;

    *t = *c;
    for (size_t i = 0; i < NSETTINGS; i++) {
        const setting_t *s = &settings[i];
        const char *v = s->env ? getenv(s->env) : NULL;
        /* Empty counts as unset: "SETTEE_PORT=${PORT}" with PORT unset should not
         * override the file. */
        if (!v || !*v) continue;
        if ((rc = set_value(t, s, v, msg, sizeof msg))) {
            seterr(err, errlen, "%s: %s", s->env, msg);
            goto exit;
        }
    }
    *c = *t;
exit:
    free(t);
    return rc;
}

static bool is_opt(const char *name, size_t len, const char *opt)
{
    return strlen(opt) == len && !memcmp(name, opt, len);
}

int stt_config_parse_args(stt_config_t *c, int argc, char **argv, int *action, char *err, size_t errlen)
{
    stt_config_t *t = stt_xmalloc(sizeof *t);
    int act = STT_CONFIG_RUN, rc = 0;
    char msg[256];

    *t = *c;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *name, *eq, *v;
        const setting_t *s = NULL;
        size_t len;

        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            act = STT_CONFIG_HELP;
            break;
        }
        if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
            act = STT_CONFIG_VERSION;
            break;
        }
        if (a[0] != '-' || !a[1] || !strcmp(a, "--")) {
            seterr(err, errlen, "unexpected argument \"%s\" (see --help)", a);
            rc = -EINVAL;
            goto exit;
        }
        if (a[1] != '-') {
            seterr(err, errlen, "unknown option \"%s\" (see --help)", a);
            rc = -EINVAL;
            goto exit;
        }
        name = a + 2;
        eq = strchr(name, '=');
        len = eq ? (size_t)(eq - name) : strlen(name);
        if (is_opt(name, len, "help") || is_opt(name, len, "version")) {
            seterr(err, errlen, "option --%.*s takes no value", (int)len, name);
            rc = -EINVAL;
            goto exit;
        }
        if (!is_opt(name, len, "config") && !(s = find_flag(name, len))) {
            seterr(err, errlen, "unknown option \"--%.*s\" (see --help)", (int)len, name);
            rc = -EINVAL;
            goto exit;
        }
        if (eq) {
            v = eq + 1;
        } else if (i + 1 < argc) {
            v = argv[++i];
        } else {
            seterr(err, errlen, "option --%.*s needs a value", (int)len, name);
            rc = -EINVAL;
            goto exit;
        }
        rc = s ? set_or_reset(t, s, v, msg, sizeof msg)
               : set_str(t->config_file, sizeof t->config_file, v, msg, sizeof msg);
        if (rc) {
            seterr(err, errlen, "--%.*s: %s", (int)len, name, msg);
            goto exit;
        }
    }
    if (act == STT_CONFIG_RUN) *c = *t;
    *action = act;
exit:
    free(t);
    return rc;
}

/* ---------------------------------------------------------------------------------
 * The whole flow, checks, lookups, help
 * --------------------------------------------------------------------------------- */

int stt_config_check(const stt_config_t *c, char *err, size_t errlen)
{
    if (!c->cert_file[0] != !c->key_file[0]) {
        seterr(err, errlen, "[ssl] cert_file and key_file must be set together (%s is missing)",
               c->cert_file[0] ? "key_file" : "cert_file");
        return -EINVAL;
    }
    if (c->cert_file[0] && c->tls_port == c->port) {
        seterr(err, errlen, "[ssl] port and [chttpd] port are both %d", c->port);
        return -EINVAL;
    }
    return 0;
}

int stt_config_init(stt_config_t *c, int argc, char **argv, int *action, char *err, size_t errlen)
{
    stt_config_t *t = stt_xmalloc(sizeof *t);
    char *path = NULL;
    const char *env;
    int act, rc;

    /* A first pass over the flags only to learn --config and whether to run at all;
     * the flags are applied again last so that they win over the file and the
     * environment. */
    stt_config_defaults(t);
    if ((rc = stt_config_parse_args(t, argc, argv, &act, err, errlen))) goto exit;
    if (act != STT_CONFIG_RUN) goto done;
    if (t->config_file[0])
        path = stt_xstrndup(t->config_file, strlen(t->config_file));
    else if ((env = getenv("SETTEE_CONFIG")) && *env)
        path = stt_xstrndup(env, strlen(env));

    stt_config_defaults(t);
    if (path && (rc = stt_config_load_file(t, path, err, errlen))) goto exit;
    if ((rc = stt_config_load_env(t, err, errlen))) goto exit;
    if ((rc = stt_config_parse_args(t, argc, argv, &act, err, errlen))) goto exit;
    if ((rc = stt_config_check(t, err, errlen))) goto exit;
    *c = *t;
done:
    *action = act;
exit:
    free(path);
    free(t);
    return rc;
}

int stt_config_get(const stt_config_t *c, const char *section, const char *key, char *out, size_t outlen)
{
    if (!strcmp(section, "admins")) {
        for (int i = 0; i < c->nadmins; i++) {
            if (strcmp(c->admins[i].name, key)) continue;
            if (strlen(c->admins[i].password) >= outlen) {
                if (outlen) out[0] = '\0';
                return -ERANGE;
            }
            strcpy(out, c->admins[i].password);
            return 0;
        }
        return -ENOENT;
    }
    const setting_t *s = find_ini(section, key);
    return s ? format_value(c, s, out, outlen) : -ENOENT;
}

void stt_config_usage(FILE *f)
{
    char def[sizeof defaults.cors_headers];

    fputs("Usage: settee [OPTION]...\n"
          "A CouchDB-compatible database server.\n"
          "\n"
          "  -h, --help           print this help and exit\n"
          "  -V, --version        print the version and exit\n"
          "      --config FILE    read settings from FILE, a CouchDB local.ini-style file\n"
          "                       (env SETTEE_CONFIG)\n"
          "\n"
          "Settings. Each is a flag (--name VALUE or --name=VALUE), an environment variable\n"
          "and an ini key; later sources win: default < ini file < environment < flag.\n"
          "An empty flag or ini value restores the default; an empty variable is ignored.\n"
          "Sizes are plain byte counts.\n",
          f);
    for (size_t i = 0; i < NSETTINGS; i++) {
        const setting_t *s = &settings[i];
        if (s->fallback) continue;
        format_value(&defaults, s, def, sizeof def);
        fprintf(f, "\n  --%s %s\n      %s\n      env %s, ini [%s] %s", s->flag, s->arg, s->help, s->env, s->section,
                s->key);
        if (i + 1 < NSETTINGS && settings[i + 1].fallback)
            fprintf(f, " (or [%s] %s)", settings[i + 1].section, settings[i + 1].key);
        fprintf(f, ", default %s\n", def[0] ? def : "(none)");
    }
    fprintf(f,
            "\nAdmins (ini only, at most %d):\n"
            "  [admins]\n"
            "  name = password\n",
            STT_CONFIG_MAX_ADMINS);
}
