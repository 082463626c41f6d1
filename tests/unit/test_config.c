/* Unit tests for src/common/config.c: the ini dialect, SETTEE_* variables, flags, and
 * the precedence default < file < environment < flag.
 *
 * Most tests walk a table of numbered cases; a failure names its case. Each case states
 * its input and the settings it expects, read back through stt_config_get, so the
 * expectations are written in the ini's own spelling. Files go to a mkdtemp folder that
 * the group teardown removes. Run one test alone by naming it: test_config ini_cases */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "src/common/config.h"
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

static char tmpdir[] = "/tmp/settee-test-config-XXXXXX";
static char inipath[256];

/* "@INI" anywhere in argv or in an environment value stands for the case's ini file. */
#define INI "@INI"

typedef struct {
    const char *section, *key;
    const char *value; /* NULL: the key must be absent (-ENOENT) */
} want_t;

#define MAXWANT 12

/* ---------------------------------------------------------------------------------
 * Helpers
 * --------------------------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

/* Removes whatever a failed case left behind, so a failure does not leak the folder. */
static int teardown(void **state)
{
    (void)state;
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    char path[512];
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') {
            snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
            unlink(path);
        }
    if (d) closedir(d);
    return rmdir(tmpdir);
}

static const char *write_ini(int n, const char *text)
{
    snprintf(inipath, sizeof inipath, "%s/case-%d.ini", tmpdir, n);
    FILE *f = fopen(inipath, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    return inipath;
}

static void check_wants(int n, const stt_config_t *c, const want_t *w)
{
    char got[4096];
    for (int i = 0; i < MAXWANT && w[i].section; i++) {
        int rc = stt_config_get(c, w[i].section, w[i].key, got, sizeof got);
        if (!w[i].value) {
            if (rc != -ENOENT) fail_msg("case %d: [%s] %s: rc %d, want -ENOENT", n, w[i].section, w[i].key, rc);
        } else if (rc || strcmp(got, w[i].value)) {
            fail_msg("case %d: [%s] %s = \"%s\" (rc %d), want \"%s\"", n, w[i].section, w[i].key, got, rc, w[i].value);
        }
    }
}

static void check_rc(int n, int rc, const char *err, const char *want_err)
{
    if (want_err && (rc != -EINVAL || !strstr(err, want_err)))
        fail_msg("case %d: rc %d, err \"%s\"; want -EINVAL and \"%s\"", n, rc, err, want_err);
    if (!want_err && rc) fail_msg("case %d: rc %d, err \"%s\"; want success", n, rc, err);
}

static void clear_env(void)
{
    char names[64][64];
    int n = 0;
    for (char **e = environ; *e && n < 64; e++) {
        const char *eq = strchr(*e, '=');
        if (!strncmp(*e, "SETTEE_", 7) && eq && (size_t)(eq - *e) < sizeof names[0])
            snprintf(names[n++], sizeof names[0], "%.*s", (int)(eq - *e), *e);
    }
    for (int i = 0; i < n; i++)
        unsetenv(names[i]);
}

/* Sets "NAME=value" entries, replacing a value of INI by the case's ini path. */
static void set_env(const char *const *env)
{
    clear_env();
    for (int i = 0; env[i]; i++) {
        char name[64];
        const char *eq = strchr(env[i], '=');
        assert_non_null(eq);
        snprintf(name, sizeof name, "%.*s", (int)(eq - env[i]), env[i]);
        assert_int_equal(setenv(name, strcmp(eq + 1, INI) ? eq + 1 : inipath, 1), 0);
    }
}

/* Builds argv from a NULL-terminated table, adding argv[0] and replacing a trailing INI
 * ("@INI", "--config=@INI") by the ini path. */
static int make_argv(const char *const *in, char **out, int max)
{
    static char subst[16][320];
    int n = 0;
    out[n++] = "settee";
    for (int i = 0; in[i] && n < max - 1; i++) {
        size_t len = strlen(in[i]);
        if (len >= 4 && !strcmp(in[i] + len - 4, INI)) {
            snprintf(subst[n], sizeof subst[n], "%.*s%s", (int)(len - 4), in[i], inipath);
            out[n] = subst[n];
        } else {
            out[n] = (char *)in[i];
        }
        n++;
    }
    out[n] = NULL;
    return n;
}

/* ---------------------------------------------------------------------------------
 * Defaults and stt_config_get
 * --------------------------------------------------------------------------------- */

static void defaults(void **state)
{
    (void)state;
    static const want_t w[] = {
        {"chttpd", "bind_address", "127.0.0.1"},
        {"chttpd", "port", "5984"},
        {"couchdb", "database_dir", "./data"},
        {"settee", "threads", "0"},
        {"couchdb", "uuid", ""},
        {"couchdb", "max_document_size", "8000000"},
        {"chttpd", "max_http_request_size", "67108864"},
        {"settee", "default_revs_limit", "1000"},
        {"log", "format", "text"},
        {"log", "level", "info"},
        {"settee", "leveldb_cache_size", "8388608"},
        {"settee", "leveldb_write_buffer_size", "16777216"},
    };
    static const want_t w2[] = {
        {"settee", "shutdown_timeout", "10000"},
        {"ssl", "cert_file", ""},
        {"ssl", "key_file", ""},
        {"ssl", "port", "6984"},
        {"chttpd", "enable_cors", "false"},
        {"httpd", "enable_cors", "false"},
        {"cors", "origins", ""},
        {"cors", "credentials", "false"},
        {"cors", "methods", "CONNECT, COPY, DELETE, GET, HEAD, OPTIONS, POST, PUT, TRACE"},
        {"cors", "max_age", "600"},
        {"admins", "admin", NULL},
        {"chttpd", "no_such_key", NULL},
    };
    stt_config_t c;
    stt_config_defaults(&c);
    check_wants(1, &c, w);
    check_wants(2, &c, w2);
    assert_int_equal(c.nadmins, 0);
    assert_string_equal(c.config_file, "");
    assert_int_equal(c.log_level, STT_LOG_LEVEL_INFO);
    assert_int_equal(c.log_format, STT_LOG_FORMAT_TEXT);
    assert_int_equal(stt_config_check(&c, NULL, 0), 0);
}

static void get_edges(void **state)
{
    (void)state;
    stt_config_t c;
    char out[8];
    stt_config_defaults(&c);
    strcpy(c.admins[0].name, "bob");
    strcpy(c.admins[0].password, "a-long-password");
    c.nadmins = 1;

    /* 1: exact fit */
    assert_int_equal(stt_config_get(&c, "chttpd", "port", out, 5), 0);
    assert_string_equal(out, "5984");
    /* 2: one byte short */
    assert_int_equal(stt_config_get(&c, "chttpd", "port", out, 4), -ERANGE);
    assert_string_equal(out, "");
    /* 3: admin password too long for out */
    assert_int_equal(stt_config_get(&c, "admins", "bob", out, sizeof out), -ERANGE);
    /* 4: unknown section */
    assert_int_equal(stt_config_get(&c, "nope", "port", out, sizeof out), -ENOENT);
}

/* ---------------------------------------------------------------------------------
 * The ini file
 * --------------------------------------------------------------------------------- */

typedef struct {
    int n;
    const char *ini;
    const char *err; /* NULL: must load; else a substring of the message */
    want_t want[MAXWANT];
} ini_case_t;

static const ini_case_t ini_table[] = {
    {1, "", NULL, {{"chttpd", "port", "5984"}}},
    {2,
     "[chttpd]\nport = 6000\nbind_address = 0.0.0.0\n[couchdb]\ndatabase_dir = /var/lib/settee\n",
     NULL,
     {{"chttpd", "port", "6000"},
      {"chttpd", "bind_address", "0.0.0.0"},
      {"couchdb", "database_dir", "/var/lib/settee"}}},
    /* whitespace around headers, keys and values; no spaces around '=' */
    {3,
     "  [ chttpd ]  \n\tport=6001\t\n   bind_address   =   ::1   \n",
     NULL,
     {{"chttpd", "port", "6001"}, {"chttpd", "bind_address", "::1"}}},
    /* comments at line start (';' and '#', indented too) and trailing " ;" */
    {4, "; top\n# hash\n[chttpd]\n   ; indented\nport = 6002 ; trailing\n", NULL, {{"chttpd", "port", "6002"}}},
    {5, "[chttpd]\nport = 6003\t;tab comment\n", NULL, {{"chttpd", "port", "6003"}}},
    /* a ';' not preceded by whitespace is part of the value */
    {6, "[admins]\nbob = pa;ss ; the comment\n", NULL, {{"admins", "bob", "pa;ss"}}},
    /* unknown sections and keys are ignored whatever their values */
    {7,
     "[replicator]\nfoo = bar\n[chttpd]\nsocket_options = [{sndbuf, 262144}]\nport = 6004\n"
     "[couchdb]\nsingle_node = true\n[vhosts]\nexample.com = /db\n",
     NULL,
     {{"chttpd", "port", "6004"}}},
    /* the last of duplicate keys wins */
    {8, "[chttpd]\nport = 6005\n[couchdb]\n[chttpd]\nport = 6006\n", NULL, {{"chttpd", "port", "6006"}}},
    /* an empty value restores the default */
    {9,
     "[chttpd]\nport = 7000\nport =\n[log]\nlevel = debug\nlevel = ; comment\n",
     NULL,
     {{"chttpd", "port", "5984"}, {"log", "level", "info"}}},
    /* an indented line without '=' continues the value, across comments and blanks */
    {10,
     "[cors]\norigins = http://a,\n  http://b,\n; note\n\n\thttp://c ; comment\nmax_age = 60\n",
     NULL,
     {{"cors", "origins", "http://a, http://b, http://c"}, {"cors", "max_age", "60"}}},
    /* CRLF line ends and a UTF-8 byte order mark */
    {11, "\xEF\xBB\xBF[chttpd]\r\nport = 6007\r\n", NULL, {{"chttpd", "port", "6007"}}},
    /* a header may carry a trailing comment */
    {12, "[chttpd] ; the front door\nport = 6008\n", NULL, {{"chttpd", "port", "6008"}}},
    /* [httpd] enable_cors is read when [chttpd] has none */
    {13, "[httpd]\nenable_cors = true\n", NULL, {{"chttpd", "enable_cors", "true"}}},
    /* ... and [chttpd] wins whatever the order */
    {14, "[chttpd]\nenable_cors = false\n[httpd]\nenable_cors = true\n", NULL, {{"chttpd", "enable_cors", "false"}}},
    {15, "[httpd]\nenable_cors = true\n[chttpd]\nenable_cors = false\n", NULL, {{"chttpd", "enable_cors", "false"}}},
    /* an empty [chttpd] value is absent, so [httpd] applies */
    {16, "[chttpd]\nenable_cors =\n[httpd]\nenable_cors = true\n", NULL, {{"chttpd", "enable_cors", "true"}}},
    {17, "[httpd]\nmax_http_request_size = 1000\n", NULL, {{"chttpd", "max_http_request_size", "1000"}}},
    /* every value type */
    {18,
     "[log]\nformat = JSON\nlevel = notice\n[couchdb]\nuuid = 0123456789ABCDEF0123456789abcdef\n"
     "max_document_size = 1\n[settee]\nthreads = 1024\nleveldb_cache_size = 0\nleveldb_write_buffer_size = "
     "18446744073709551615\ndefault_revs_limit = 4294967295\n[cors]\ncredentials = TRUE\n",
     NULL,
     {{"log", "format", "json"},
      {"log", "level", "info"},
      {"couchdb", "uuid", "0123456789abcdef0123456789abcdef"},
      {"couchdb", "max_document_size", "1"},
      {"settee", "threads", "1024"},
      {"settee", "leveldb_cache_size", "0"},
      {"settee", "leveldb_write_buffer_size", "18446744073709551615"},
      {"settee", "default_revs_limit", "4294967295"},
      {"cors", "credentials", "true"}}},
    {19,
     "[chttpd]\nbind_address = any\n[log]\nlevel = critical\n",
     NULL,
     {{"chttpd", "bind_address", "0.0.0.0"}, {"log", "level", "error"}}},
    {20,
     "[chttpd]\nbind_address = localhost\n[log]\nlevel = warn\n",
     NULL,
     {{"chttpd", "bind_address", "127.0.0.1"}, {"log", "level", "warning"}}},
    /* admins: kept as written, an empty password removes one */
    {21,
     "[admins]\nalice = -pbkdf2-abc,def,10\nbob = secret\ncarol = x\nbob =\n",
     NULL,
     {{"admins", "alice", "-pbkdf2-abc,def,10"}, {"admins", "bob", NULL}, {"admins", "carol", "x"}}},
    /* a key before any section belongs to section "", which settee does not read */
    {22, "port = 1\n", NULL, {{"chttpd", "port", "5984"}}},
    /* values may contain '=' */
    {23, "[cors]\norigins = http://a?x=1\n", NULL, {{"cors", "origins", "http://a?x=1"}}},
    {24,
     "[ssl]\ncert_file = /etc/c.pem\nkey_file = /etc/k.pem\nport = 443\n[settee]\nshutdown_timeout = 0\n",
     NULL,
     {{"ssl", "cert_file", "/etc/c.pem"},
      {"ssl", "key_file", "/etc/k.pem"},
      {"ssl", "port", "443"},
      {"settee", "shutdown_timeout", "0"}}},
    /* malformed lines */
    {30, "[chttpd]\nport\n", ":2: expected \"key = value\""},
    {31, "[chttpd\nport = 1\n", ":1: unterminated section header"},
    {32, "[]\n", ":1: empty section name"},
    {33, "[chttpd] port = 1\n", ":1: unexpected text after section header"},
    {34, "[chttpd]\n= 5\n", ":2: missing key before '='"},
    {35, "[chttpd]\n  stray\n", ":2: expected \"key = value\""},
    /* line numbers count blank and comment lines */
    {36, "\n; c\n\n[chttpd]\nport = x\n", ":5: [chttpd] port: expected an integer from 1 to 65535, got \"x\""},
    /* a bad continued value is reported at its key's line */
    {37, "[chttpd]\nport = 1\n  2\n", ":2: [chttpd] port: expected an integer"},
    /* bad values */
    {40, "[chttpd]\nport = 0\n", ":2: [chttpd] port: 0 is out of range (1 to 65535)"},
    {41, "[chttpd]\nport = 65536\n", "65536 is out of range"},
    {42, "[chttpd]\nport = -1\n", "expected an integer from 1 to 65535, got \"-1\""},
    {43, "[chttpd]\nport = +80\n", "got \"+80\""},
    {44, "[chttpd]\nport = 80 80\n", "got \"80 80\""},
    {45, "[couchdb]\nmax_document_size = 8M\n", ":2: [couchdb] max_document_size: expected a size in bytes"},
    {46, "[couchdb]\nmax_document_size = 1.5\n", "no K/M/G suffix"},
    {47, "[couchdb]\nmax_document_size = 18446744073709551616\n", "is out of range"},
    {48, "[couchdb]\nmax_document_size = 0\n", "0 is out of range"},
    {49, "[log]\nformat = xml\n", ":2: [log] format: expected text or json, got \"xml\""},
    {50, "[log]\nlevel = loud\n", ":2: [log] level: expected debug, info"},
    {51, "[chttpd]\nenable_cors = yes\n", ":2: [chttpd] enable_cors: expected true or false"},
    {52, "[httpd]\nenable_cors = 1\n", ":2: [httpd] enable_cors: expected true or false"},
    {53, "[couchdb]\nuuid = xyz\n", ":2: [couchdb] uuid: expected 32 hex digits"},
    {54, "[couchdb]\nuuid = 0123456789abcdef0123456789abcdeg\n", "expected 32 hex digits"},
    {55, "[chttpd]\nbind_address = example.com\n", "expected an IPv4 or IPv6 address"},
    {56, "[settee]\nthreads = 1025\n", "[settee] threads: 1025 is out of range (0 to 1024)"},
    {57, "[ssl]\nport = 0\n", "[ssl] port: 0 is out of range"},
    {58, "[settee]\ndefault_revs_limit = 4294967296\n", "is out of range"},
    {59, "[admins]\nbob = ok\n[chttpd]\nport = 1\nport = x\n", ":5:"},
};

static void ini_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof ini_table / sizeof ini_table[0]; i++) {
        const ini_case_t *t = &ini_table[i];
        stt_config_t c, before;
        char err[512] = "";
        const char *path = write_ini(t->n, t->ini);

        stt_config_defaults(&c);
        before = c;
        int rc = stt_config_load_file(&c, path, err, sizeof err);
        check_rc(t->n, rc, err, t->err);
        if (t->err) {
            /* the message starts with the path, and *c is untouched */
            if (strncmp(err, path, strlen(path)))
                fail_msg("case %d: err \"%s\" does not start with the path", t->n, err);
            if (memcmp(&c, &before, sizeof c)) fail_msg("case %d: a failed load changed the config", t->n);
        } else {
            check_wants(t->n, &c, t->want);
            assert_string_equal(c.config_file, path);
        }
        unlink(path);
    }
}

static void ini_missing_file(void **state)
{
    (void)state;
    stt_config_t c;
    char err[512], path[300];
    snprintf(path, sizeof path, "%s/absent.ini", tmpdir);
    stt_config_defaults(&c);
    assert_int_equal(stt_config_load_file(&c, path, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "No such file"));
}

/* Limits that need long generated input. */
static void ini_limits(void **state)
{
    (void)state;
    stt_config_t c;
    char err[512];
    char *text = malloc(10000);
    assert_non_null(text);

    /* 1: a database_dir of 4095 bytes fits, 4096 does not */
    for (int len = 4095; len <= 4096; len++) {
        int n = sprintf(text, "[couchdb]\ndatabase_dir = /");
        memset(text + n, 'd', (size_t)len - 1);
        strcpy(text + n + len - 1, "\n");
        stt_config_defaults(&c);
        int rc = stt_config_load_file(&c, write_ini(1, text), err, sizeof err);
        if (len == 4095) {
            assert_int_equal(rc, 0);
            assert_int_equal(strlen(c.data_dir), 4095);
        } else {
            assert_int_equal(rc, -EINVAL);
            assert_non_null(strstr(err, ":2: [couchdb] database_dir: too long (4096 bytes, at most 4095)"));
        }
    }

    /* 2: 16 admins fit, the 17th does not; replacing one does not count */
    strcpy(text, "[admins]\n");
    for (int i = 0; i < STT_CONFIG_MAX_ADMINS; i++)
        sprintf(text + strlen(text), "admin%d = pw%d\n", i, i);
    strcat(text, "admin0 = again\n");
    stt_config_defaults(&c);
    assert_int_equal(stt_config_load_file(&c, write_ini(2, text), err, sizeof err), 0);
    assert_int_equal(c.nadmins, STT_CONFIG_MAX_ADMINS);
    assert_string_equal(c.admins[0].password, "again");
    strcat(text, "one_too_many = x\n");
    assert_int_equal(stt_config_load_file(&c, write_ini(2, text), err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, ":19: [admins] one_too_many: too many admins (at most 16)"));

    /* 3: an admin name of 128 bytes is too long */
    memset(text, 0, 10000);
    strcpy(text, "[admins]\n");
    memset(text + strlen(text), 'n', 128);
    strcat(text, " = pw\n");
    assert_int_equal(stt_config_load_file(&c, write_ini(3, text), err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "admin name too long"));

    /* 4: a line longer than any buffer is read whole */
    strcpy(text, "[chttpd]\n; ");
    memset(text + strlen(text), 'x', 9000);
    strcpy(text + 9000, "\nport = 6100\n");
    stt_config_defaults(&c);
    assert_int_equal(stt_config_load_file(&c, write_ini(4, text), err, sizeof err), 0);
    assert_int_equal(c.port, 6100);

    unlink(inipath);
    free(text);
}

/* Messages are cut to errlen and always terminated; err may be NULL. */
static void err_buffer(void **state)
{
    (void)state;
    stt_config_t c;
    char err[8];
    const char *path = write_ini(1, "[chttpd]\nport = x\n");
    char *argv[] = {"settee", "--bogus", NULL};
    int action = -1;

    stt_config_defaults(&c);
    memset(err, 'z', sizeof err);
    assert_int_equal(stt_config_load_file(&c, path, err, sizeof err), -EINVAL);
    assert_int_equal(strlen(err), sizeof err - 1);
    assert_int_equal(stt_config_load_file(&c, path, NULL, 0), -EINVAL);
    assert_int_equal(stt_config_parse_args(&c, 2, argv, &action, NULL, 0), -EINVAL);
    assert_int_equal(action, -1);
    unlink(path);
}

/* ---------------------------------------------------------------------------------
 * Environment
 * --------------------------------------------------------------------------------- */

typedef struct {
    int n;
    const char *env[12];
    const char *err;
    want_t want[MAXWANT];
} env_case_t;

static const env_case_t env_table[] = {
    {1, {NULL}, NULL, {{"chttpd", "port", "5984"}}},
    {2, {"SETTEE_PORT=6000", "SETTEE_BIND=::1"}, NULL, {{"chttpd", "port", "6000"}, {"chttpd", "bind_address", "::1"}}},
    {3,
     {"SETTEE_DATA_DIR=/srv/d", "SETTEE_THREADS=8", "SETTEE_UUID=ffffffffffffffffffffffffffffffff",
      "SETTEE_MAX_DOCUMENT_SIZE=100", "SETTEE_MAX_HTTP_REQUEST_SIZE=200", "SETTEE_LOG_FORMAT=json",
      "SETTEE_LOG_LEVEL=none", "SETTEE_DEFAULT_REVS_LIMIT=5"},
     NULL,
     {{"couchdb", "database_dir", "/srv/d"},
      {"settee", "threads", "8"},
      {"couchdb", "uuid", "ffffffffffffffffffffffffffffffff"},
      {"couchdb", "max_document_size", "100"},
      {"chttpd", "max_http_request_size", "200"},
      {"log", "format", "json"},
      {"log", "level", "none"},
      {"settee", "default_revs_limit", "5"}}},
    {4,
     {"SETTEE_CACHE_SIZE=1", "SETTEE_WRITE_BUFFER_SIZE=2", "SETTEE_SHUTDOWN_TIMEOUT=3", "SETTEE_CERT_FILE=/c",
      "SETTEE_KEY_FILE=/k", "SETTEE_TLS_PORT=7", "SETTEE_CORS_ENABLED=true", "SETTEE_CORS_ORIGINS=*",
      "SETTEE_CORS_CREDENTIALS=true", "SETTEE_CORS_METHODS=GET", "SETTEE_CORS_HEADERS=accept", "SETTEE_CORS_MAX_AGE=9"},
     NULL,
     {{"settee", "leveldb_cache_size", "1"},
      {"settee", "leveldb_write_buffer_size", "2"},
      {"settee", "shutdown_timeout", "3"},
      {"ssl", "cert_file", "/c"},
      {"ssl", "key_file", "/k"},
      {"ssl", "port", "7"},
      {"chttpd", "enable_cors", "true"},
      {"cors", "origins", "*"},
      {"cors", "credentials", "true"},
      {"cors", "methods", "GET"},
      {"cors", "headers", "accept"},
      {"cors", "max_age", "9"}}},
    /* empty counts as unset */
    {5, {"SETTEE_PORT=", "SETTEE_LOG_LEVEL="}, NULL, {{"chttpd", "port", "5984"}, {"log", "level", "info"}}},
    /* load_env does not read SETTEE_CONFIG, and ignores unknown SETTEE_* */
    {6, {"SETTEE_CONFIG=/nonexistent/x.ini", "SETTEE_NO_SUCH=1"}, NULL, {{"chttpd", "port", "5984"}}},
    {10, {"SETTEE_PORT=abc"}, "SETTEE_PORT: expected an integer from 1 to 65535, got \"abc\""},
    {11, {"SETTEE_LOG_FORMAT=xml"}, "SETTEE_LOG_FORMAT: expected text or json"},
    {12, {"SETTEE_MAX_DOCUMENT_SIZE=1e6"}, "SETTEE_MAX_DOCUMENT_SIZE: expected a size in bytes"},
    {13, {"SETTEE_BIND=0.0.0.0.0"}, "SETTEE_BIND: expected an IPv4 or IPv6 address"},
    {14, {"SETTEE_PORT=6000", "SETTEE_THREADS=-2"}, "SETTEE_THREADS:"},
    {15, {"SETTEE_CORS_ENABLED=on"}, "SETTEE_CORS_ENABLED: expected true or false"},
};

static void env_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof env_table / sizeof env_table[0]; i++) {
        const env_case_t *t = &env_table[i];
        stt_config_t c, before;
        char err[512] = "";

        set_env(t->env);
        stt_config_defaults(&c);
        before = c;
        int rc = stt_config_load_env(&c, err, sizeof err);
        check_rc(t->n, rc, err, t->err);
        if (t->err && memcmp(&c, &before, sizeof c)) fail_msg("case %d: a failed load changed the config", t->n);
        if (!t->err) check_wants(t->n, &c, t->want);
    }
    clear_env();
}

/* ---------------------------------------------------------------------------------
 * Flags
 * --------------------------------------------------------------------------------- */

typedef struct {
    int n;
    const char *argv[12]; /* without argv[0] */
    int action;
    const char *err;
    const char *config_file; /* expected c.config_file, NULL = "" */
    want_t want[MAXWANT];
} args_case_t;

static const args_case_t args_table[] = {
    {1, {NULL}, STT_CONFIG_RUN, NULL, NULL, {{"chttpd", "port", "5984"}}},
    {2,
     {"--bind", "0.0.0.0", "--port", "6000", "--data-dir", "/d"},
     STT_CONFIG_RUN,
     NULL,
     NULL,
     {{"chttpd", "bind_address", "0.0.0.0"}, {"chttpd", "port", "6000"}, {"couchdb", "database_dir", "/d"}}},
    {3,
     {"--bind=::1", "--port=6001", "--data-dir=/e=f"},
     STT_CONFIG_RUN,
     NULL,
     NULL,
     {{"chttpd", "bind_address", "::1"}, {"chttpd", "port", "6001"}, {"couchdb", "database_dir", "/e=f"}}},
    {4,
     {"--threads", "4", "--log-format", "json", "--log-level=debug", "--uuid", "00000000000000000000000000000000"},
     STT_CONFIG_RUN,
     NULL,
     NULL,
     {{"settee", "threads", "4"},
      {"log", "format", "json"},
      {"log", "level", "debug"},
      {"couchdb", "uuid", "00000000000000000000000000000000"}}},
    {5, {"--config", "/etc/settee.ini"}, STT_CONFIG_RUN, NULL, "/etc/settee.ini", {{"chttpd", "port", "5984"}}},
    {6, {"--config=/a.ini", "--config=/b.ini"}, STT_CONFIG_RUN, NULL, "/b.ini"},
    /* the last of repeated flags wins; an empty value restores the default */
    {7, {"--port", "6000", "--port=6001"}, STT_CONFIG_RUN, NULL, NULL, {{"chttpd", "port", "6001"}}},
    {8, {"--port", "6000", "--port="}, STT_CONFIG_RUN, NULL, NULL, {{"chttpd", "port", "5984"}}},
    {9,
     {"--cors-enabled", "true", "--cors-origins", "http://a, http://b", "--cors-credentials=false", "--cors-max-age",
      "0"},
     STT_CONFIG_RUN,
     NULL,
     NULL,
     {{"chttpd", "enable_cors", "true"},
      {"cors", "origins", "http://a, http://b"},
      {"cors", "credentials", "false"},
      {"cors", "max_age", "0"}}},
    {10,
     {"--max-document-size", "1000", "--max-http-request-size=2000", "--cache-size", "0", "--write-buffer-size", "1",
      "--shutdown-timeout", "500", "--default-revs-limit", "10"},
     STT_CONFIG_RUN,
     NULL,
     NULL,
     {{"couchdb", "max_document_size", "1000"},
      {"chttpd", "max_http_request_size", "2000"},
      {"settee", "leveldb_cache_size", "0"},
      {"settee", "leveldb_write_buffer_size", "1"},
      {"settee", "shutdown_timeout", "500"},
      {"settee", "default_revs_limit", "10"}}},
    {11,
     {"--cert-file", "/c.pem", "--key-file=/k.pem", "--tls-port", "6985", "--bind", "localhost"},
     STT_CONFIG_RUN,
     NULL,
     NULL,
     {{"ssl", "cert_file", "/c.pem"},
      {"ssl", "key_file", "/k.pem"},
      {"ssl", "port", "6985"},
      {"chttpd", "bind_address", "127.0.0.1"}}},
    /* help and version stop parsing, and leave the config as it was */
    {20, {"--help"}, STT_CONFIG_HELP},
    {21, {"-h"}, STT_CONFIG_HELP},
    {22, {"--version"}, STT_CONFIG_VERSION},
    {23, {"-V"}, STT_CONFIG_VERSION},
    {24, {"--port", "6000", "--help", "--bogus"}, STT_CONFIG_HELP, NULL, NULL, {{"chttpd", "port", "5984"}}},
    {25, {"--version", "--port", "x"}, STT_CONFIG_VERSION},
    /* bad flags */
    {30, {"--bogus", "--help"}, 0, "unknown option \"--bogus\" (see --help)"},
    {31, {"--port"}, 0, "option --port needs a value"},
    {32, {"--port", "abc"}, 0, "--port: expected an integer from 1 to 65535, got \"abc\""},
    {33, {"--port=0"}, 0, "--port: 0 is out of range (1 to 65535)"},
    {34, {"serve"}, 0, "unexpected argument \"serve\""},
    {35, {"-x"}, 0, "unknown option \"-x\""},
    {36, {"--"}, 0, "unexpected argument \"--\""},
    {37, {"-"}, 0, "unexpected argument \"-\""},
    {38, {"--help=1"}, 0, "option --help takes no value"},
    {39, {"--version="}, 0, "option --version takes no value"},
    {40, {"--Port", "1"}, 0, "unknown option \"--Port\""},
    {41, {"--max-document-size", "8M"}, 0, "--max-document-size: expected a size in bytes"},
    {42, {"--log-format", "yaml"}, 0, "--log-format: expected text or json"},
    {43, {"--port", "6000", "--threads", "many"}, 0, "--threads: expected an integer from 0 to 1024"},
    {44, {"--config"}, 0, "option --config needs a value"},
    {45, {"--=x"}, 0, "unknown option \"--\""},
    {46, {"--bind", "1.2.3"}, 0, "--bind: expected an IPv4 or IPv6 address"},
};

static void args_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof args_table / sizeof args_table[0]; i++) {
        const args_case_t *t = &args_table[i];
        stt_config_t c, before;
        char err[512] = "", *argv[16];
        int argc = make_argv(t->argv, argv, 16), action = -1;

        stt_config_defaults(&c);
        before = c;
        int rc = stt_config_parse_args(&c, argc, argv, &action, err, sizeof err);
        check_rc(t->n, rc, err, t->err);
        if (t->err) {
            if (action != -1) fail_msg("case %d: action written on failure", t->n);
        } else if (action != t->action) {
            fail_msg("case %d: action %d, want %d", t->n, action, t->action);
        }
        if ((t->err || t->action != STT_CONFIG_RUN) && memcmp(&c, &before, sizeof c))
            fail_msg("case %d: config changed", t->n);
        if (!t->err) {
            check_wants(t->n, &c, t->want);
            if (strcmp(c.config_file, t->config_file ? t->config_file : ""))
                fail_msg("case %d: config_file \"%s\"", t->n, c.config_file);
        }
    }
}

/* ---------------------------------------------------------------------------------
 * The whole flow: stt_config_init
 * --------------------------------------------------------------------------------- */

typedef struct {
    int n;
    const char *ini; /* NULL: no file written */
    const char *env[6];
    const char *argv[10];
    int action;
    const char *err;
    want_t want[MAXWANT];
} init_case_t;

#define FILE3                                                                                                          \
    "[chttpd]\nport = 6000\nbind_address = 0.0.0.0\n[couchdb]\ndatabase_dir = /file\n[log]\nlevel = debug\n"           \
    "format = json\n"

static const init_case_t init_table[] = {
    /* nothing given: the defaults */
    {1,
     NULL,
     {NULL},
     {NULL},
     STT_CONFIG_RUN,
     NULL,
     {{"chttpd", "port", "5984"}, {"couchdb", "database_dir", "./data"}}},
    /* file only */
    {2,
     FILE3,
     {NULL},
     {"--config", INI},
     STT_CONFIG_RUN,
     NULL,
     {{"chttpd", "port", "6000"}, {"log", "level", "debug"}}},
    /* environment over file, the file's other settings kept */
    {3,
     FILE3,
     {"SETTEE_PORT=6001", "SETTEE_DATA_DIR=/env"},
     {"--config", INI},
     STT_CONFIG_RUN,
     NULL,
     {{"chttpd", "port", "6001"},
      {"couchdb", "database_dir", "/env"},
      {"chttpd", "bind_address", "0.0.0.0"},
      {"log", "level", "debug"}}},
    /* flags over environment over file, whatever the position of --config */
    {4,
     FILE3,
     {"SETTEE_PORT=6001", "SETTEE_DATA_DIR=/env", "SETTEE_LOG_LEVEL=error"},
     {"--port", "6002", "--config", INI, "--log-format=text"},
     STT_CONFIG_RUN,
     NULL,
     {{"chttpd", "port", "6002"},
      {"couchdb", "database_dir", "/env"},
      {"log", "level", "error"},
      {"log", "format", "text"},
      {"chttpd", "bind_address", "0.0.0.0"}}},
    /* the file named by SETTEE_CONFIG */
    {5, FILE3, {"SETTEE_CONFIG=" INI}, {NULL}, STT_CONFIG_RUN, NULL, {{"chttpd", "port", "6000"}}},
    /* --config wins over SETTEE_CONFIG */
    {6,
     FILE3,
     {"SETTEE_CONFIG=/nonexistent/x.ini"},
     {"--config=" INI},
     STT_CONFIG_RUN,
     NULL,
     {{"chttpd", "port", "6000"}}},
    {7,
     FILE3,
     {"SETTEE_CONFIG=/nonexistent/x.ini"},
     {"--config", INI},
     STT_CONFIG_RUN,
     NULL,
     {{"chttpd", "port", "6000"}}},
    /* an empty SETTEE_CONFIG names no file */
    {8, NULL, {"SETTEE_CONFIG="}, {NULL}, STT_CONFIG_RUN, NULL, {{"chttpd", "port", "5984"}}},
    /* an empty environment variable leaves the file's value */
    {9, FILE3, {"SETTEE_PORT="}, {"--config", INI}, STT_CONFIG_RUN, NULL, {{"chttpd", "port", "6000"}}},
    /* an empty flag restores the default over file and environment */
    {10, FILE3, {"SETTEE_PORT=6001"}, {"--config", INI, "--port="}, STT_CONFIG_RUN, NULL, {{"chttpd", "port", "5984"}}},
    /* help and version work with a broken or missing file */
    {11, "[chttpd\n", {"SETTEE_PORT=x"}, {"--config", INI, "--help"}, STT_CONFIG_HELP},
    {12, NULL, {"SETTEE_CONFIG=/nonexistent/x.ini"}, {"--version"}, STT_CONFIG_VERSION},
    /* errors from each source */
    {20, "[chttpd]\n\nport = 99999\n", {NULL}, {"--config", INI}, 0, ".ini:3: [chttpd] port: 99999 is out of range"},
    {21, FILE3, {"SETTEE_THREADS=x"}, {"--config", INI}, 0, "SETTEE_THREADS: expected an integer"},
    {22, FILE3, {NULL}, {"--config", INI, "--threads", "x"}, 0, "--threads: expected an integer"},
    {23, NULL, {NULL}, {"--nope"}, 0, "unknown option \"--nope\""},
    /* cross-setting checks */
    {30, NULL, {"SETTEE_CERT_FILE=/c.pem"}, {NULL}, 0, "cert_file and key_file must be set together (key_file"},
    {31, NULL, {NULL}, {"--key-file", "/k.pem"}, 0, "must be set together (cert_file is missing)"},
    {32,
     "[ssl]\ncert_file = /c\nkey_file = /k\nport = 5984\n",
     {NULL},
     {"--config", INI},
     0,
     "[ssl] port and [chttpd] port are both 5984"},
    {33,
     "[ssl]\ncert_file = /c\nkey_file = /k\n",
     {NULL},
     {"--config", INI},
     STT_CONFIG_RUN,
     NULL,
     {{"ssl", "cert_file", "/c"}, {"ssl", "port", "6984"}}},
    /* a flag can undo the file's TLS */
    {34,
     "[ssl]\ncert_file = /c\nkey_file = /k\n",
     {NULL},
     {"--config", INI, "--cert-file=", "--key-file="},
     STT_CONFIG_RUN,
     NULL,
     {{"ssl", "cert_file", ""}}},
};

static void init_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof init_table / sizeof init_table[0]; i++) {
        const init_case_t *t = &init_table[i];
        stt_config_t c;
        char err[512] = "", *argv[16];
        int action = -1;

        snprintf(inipath, sizeof inipath, "%s/case-%d.ini", tmpdir, t->n);
        if (t->ini) write_ini(t->n, t->ini);
        set_env(t->env);
        int argc = make_argv(t->argv, argv, 16);
        memset(&c, 0xa5, sizeof c);
        int rc = stt_config_init(&c, argc, argv, &action, err, sizeof err);

        check_rc(t->n, rc, err, t->err);
        if (!t->err) {
            if (action != t->action) fail_msg("case %d: action %d, want %d", t->n, action, t->action);
            if (t->action == STT_CONFIG_RUN) {
                check_wants(t->n, &c, t->want);
                if (strcmp(c.config_file, t->ini ? inipath : ""))
                    fail_msg("case %d: config_file \"%s\"", t->n, c.config_file);
            }
        } else if (action != -1) {
            fail_msg("case %d: action written on failure", t->n);
        }
        if (t->ini) unlink(inipath);
    }
    clear_env();
}

static void init_missing_file(void **state)
{
    (void)state;
    stt_config_t c;
    char err[512], path[300], *argv[] = {"settee", "--config", path, NULL};
    int action = -1;

    snprintf(path, sizeof path, "%s/absent.ini", tmpdir);
    clear_env();
    /* 1: named by --config */
    assert_int_equal(stt_config_init(&c, 3, argv, &action, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, path));
    assert_int_equal(action, -1);
    /* 2: named by SETTEE_CONFIG */
    setenv("SETTEE_CONFIG", path, 1);
    assert_int_equal(stt_config_init(&c, 1, argv, &action, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, path));
    clear_env();
}

/* ---------------------------------------------------------------------------------
 * Help text
 * --------------------------------------------------------------------------------- */

static void usage_text(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    stt_config_usage(f);
    assert_int_equal(fclose(f), 0);

    static const char *const want[] = {
        "--help",
        "--version",
        "--config FILE",
        "SETTEE_CONFIG",
        "--bind ADDR",
        "SETTEE_BIND",
        "[chttpd] bind_address",
        "default 127.0.0.1",
        "--port N",
        "SETTEE_PORT",
        "default 5984",
        "--data-dir DIR",
        "SETTEE_DATA_DIR",
        "[couchdb] database_dir",
        "--threads N",
        "SETTEE_THREADS",
        "SETTEE_UUID",
        "SETTEE_MAX_DOCUMENT_SIZE",
        "SETTEE_MAX_HTTP_REQUEST_SIZE",
        "(or [httpd] max_http_request_size)",
        "--log-format text|json",
        "SETTEE_LOG_FORMAT",
        "SETTEE_LOG_LEVEL",
        "[chttpd] enable_cors (or [httpd] enable_cors)",
        "default 67108864",
        "[admins]",
        "default < ini file < environment < flag",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(text, want[i])) fail_msg("case %zu: help lacks \"%s\"", i + 1, want[i]);
    free(text);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults),          cmocka_unit_test(get_edges),  cmocka_unit_test(ini_cases),
        cmocka_unit_test(ini_missing_file),  cmocka_unit_test(ini_limits), cmocka_unit_test(err_buffer),
        cmocka_unit_test(env_cases),         cmocka_unit_test(args_cases), cmocka_unit_test(init_cases),
        cmocka_unit_test(init_missing_file), cmocka_unit_test(usage_text),
    };
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests_name("config", tests, setup, teardown);
}
