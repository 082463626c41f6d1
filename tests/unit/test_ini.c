/* Unit tests for src/common/ini.c: loading the dialect, reads, set and delete with
 * their old values, the in-place rewrite of the file, failed writes, the generation
 * counter, and readers and writers on several threads.
 *
 * Loading and rewriting walk tables of numbered cases; a failure names its case.
 * Every rewrite case also re-opens the file it wrote and checks that it reads back
 * as the store holds it. Files go to a mkdtemp folder that the group teardown
 * removes. Run one test alone by naming it: test_ini rewrite_cases */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "src/common/err.h"
#include "src/common/ini.h"
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/settee-test-ini-XXXXXX";

typedef struct {
    const char *section, *key;
    const char *value; /* NULL: the key must be unset */
} want_t;

#define MAXWANT 8

/* ---------------------------------------------------------------------------------
 * Helpers
 * --------------------------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

/* Removes whatever the tests left (files and the folders some create), so that a
 * failure does not leak the folder. */
static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    struct stat st;
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (!lstat(path, &st) && S_ISDIR(st.st_mode))
            remove_tree(path);
        else
            unlink(path);
    }
    if (d) closedir(d);
    rmdir(dir);
}

static int teardown(void **state)
{
    (void)state;
    remove_tree(tmpdir);
    return 0;
}

static const char *tmp_path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", tmpdir, name);
    return buf;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* The file's text (malloc'd), or NULL when it does not exist. */
static char *read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char *buf = malloc(65536);
    assert_non_null(buf);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void check_wants(int n, stt_ini_t *ini, const want_t *w)
{
    for (int i = 0; i < MAXWANT && w[i].section; i++) {
        char *got = stt_ini_get(ini, w[i].section, w[i].key);
        if (!w[i].value && got) fail_msg("case %d: [%s] %s = \"%s\", want unset", n, w[i].section, w[i].key, got);
        if (w[i].value && (!got || strcmp(got, w[i].value)))
            fail_msg("case %d: [%s] %s = %s%s%s, want \"%s\"", n, w[i].section, w[i].key, got ? "\"" : "",
                     got ? got : "unset", got ? "\"" : "", w[i].value);
        free(got);
    }
}

typedef struct {
    char text[4096];
    size_t len;
} dump_t;

static void dump_one(void *ctx, const char *section, const char *key, const char *value)
{
    dump_t *d = ctx;
    d->len += (size_t)snprintf(d->text + d->len, sizeof d->text - d->len, "[%s] %s=%s\n", section, key, value);
    assert_true(d->len < sizeof d->text);
}

/* Every key of the store, one "[section] key=value" line each, in stt_ini_each order. */
static void dump(stt_ini_t *ini, const char *section, dump_t *d)
{
    d->len = 0;
    d->text[0] = '\0';
    stt_ini_each(ini, section, dump_one, d);
}

/* ---------------------------------------------------------------------------------
 * Loading
 * --------------------------------------------------------------------------------- */

typedef struct {
    int n;
    const char *ini;
    const char *err;  /* NULL: must load; else a substring of the message */
    const char *dump; /* NULL: not checked; else the whole store, as dump() writes it */
    want_t want[MAXWANT];
} load_case_t;

static const load_case_t load_table[] = {
    {1, "", NULL, ""},
    {2, "[couchdb]\nsingle_node = true\nuuid = abc\n[chttpd]\nport = 5984\n", NULL,
     "[couchdb] single_node=true\n[couchdb] uuid=abc\n[chttpd] port=5984\n"},
    /* blanks around headers, keys and values; comments (';', '#', indented, trailing) */
    {3, "; top\n# hash\n  [ chttpd ]  ; the front door\n\tport=6001\t\n   ; indented\n   bind_address   =   ::1 ; c\n",
     NULL, "[chttpd] port=6001\n[chttpd] bind_address=::1\n"},
    /* a ';' not after a blank is part of the value, as is '=' */
    {4,
     "[admins]\nbob = pa;ss ; the comment\n[cors]\norigins = http://a?x=1\n",
     NULL,
     NULL,
     {{"admins", "bob", "pa;ss"}, {"cors", "origins", "http://a?x=1"}}},
    /* continuation lines, across blank and comment lines, with their own comments */
    {5, "[cors]\norigins = http://a,\n  http://b,\n; note\n\n\thttp://c ; comment\nmax_age = 60\n", NULL,
     "[cors] origins=http://a, http://b, http://c\n[cors] max_age=60\n"},
    /* a value may start on a continuation line */
    {6, "[s]\nk =\n  v1\n  v2\n", NULL, "[s] k=v1 v2\n"},
    /* the last of duplicates wins, and keeps its first place */
    {7, "[a]\nx = 1\ny = 2\n[b]\nz = 3\n[a]\nx = 4\n", NULL, "[a] x=4\n[a] y=2\n[b] z=3\n"},
    /* an empty value unsets the key */
    {8, "[a]\nx = 1\ny = 2\nx =\ny = ; comment\nz =\n", NULL, "", {{"a", "x", NULL}, {"a", "y", NULL}}},
    /* CRLF line ends and a UTF-8 byte order mark */
    {9, "\xEF\xBB\xBF[chttpd]\r\nport = 6007\r\n", NULL, "[chttpd] port=6007\n"},
    /* keys before any header belong to section "" */
    {10, "top = 1\n[a]\nx = 2\n", NULL, "[] top=1\n[a] x=2\n"},
    /* no newline at the end of the file */
    {11, "[a]\nx = 1", NULL, "[a] x=1\n"},

    /* sections and keys are case-sensitive */
    {12, "[A]\nX = 1\n[a]\nx = 2\n", NULL, NULL, {{"A", "X", "1"}, {"a", "x", "2"}, {"a", "X", NULL}}},
    /* malformed lines, with their line numbers (blank and comment lines count) */
    {20, "[chttpd]\nport\n", ":2: expected \"key = value\""},
    {21, "[chttpd\nport = 1\n", ":1: unterminated section header"},
    {22, "[]\n", ":1: empty section name"},
    {23, "[chttpd] port = 1\n", ":1: unexpected text after section header"},
    {24, "\n; c\n[chttpd]\n= 5\n", ":4: missing key before '='"},
    /* an indented line right after a header has no key to continue */
    {25, "[chttpd]\n  stray\n", ":2: expected \"key = value\""},
};

/* Found by fuzz/fuzz_ini: a NUL inside a section name was kept in memory but cut every
 * later lookup short; a line holding a NUL is refused. */
static void load_nul_byte(void **state)
{
    (void)state;
    char path[300], err[512] = "";
    static const char text[] = "[a]\n[b\0c]\nx = 1\n";
    FILE *f = fopen(tmp_path(path, sizeof path, "nul.ini"), "wb");
    assert_non_null(f);
    fwrite(text, 1, sizeof text - 1, f);
    fclose(f);
    stt_ini_t *ini = NULL;
    assert_int_equal(stt_ini_open(path, &ini, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, ":2: NUL byte in line"));
    assert_null(ini);
}

static void load_cases(void **state)
{
    (void)state;
    char path[300];
    for (size_t i = 0; i < sizeof load_table / sizeof load_table[0]; i++) {
        const load_case_t *t = &load_table[i];
        char name[32], err[512] = "";
        stt_ini_t *ini = NULL;
        snprintf(name, sizeof name, "load-%d.ini", t->n);
        write_text(tmp_path(path, sizeof path, name), t->ini);

        int rc = stt_ini_open(path, &ini, err, sizeof err);
        if (t->err) {
            if (rc != -EINVAL || !strstr(err, t->err))
                fail_msg("case %d: rc %d, err \"%s\"; want -EINVAL and \"%s\"", t->n, rc, err, t->err);
            if (strncmp(err, path, strlen(path)))
                fail_msg("case %d: err \"%s\" does not start with the path", t->n, err);
            assert_null(ini);
        } else {
            if (rc) fail_msg("case %d: rc %d, err \"%s\"", t->n, rc, err);
            if (t->dump) {
                dump_t d;
                dump(ini, NULL, &d);
                if (strcmp(d.text, t->dump)) fail_msg("case %d: store\n%s\nwant\n%s", t->n, d.text, t->dump);
            }
            check_wants(t->n, ini, t->want);
            assert_string_equal(stt_ini_path(ini), path);
            assert_int_equal(stt_ini_generation(ini), 0);
            stt_ini_free(ini);
        }
        unlink(path);
    }
}

static void open_special(void **state)
{
    (void)state;
    char path[300], err[512] = "";
    stt_ini_t *ini = NULL;

    /* 1: no path: an empty store in memory; persist is ignored */
    assert_int_equal(stt_ini_open(NULL, &ini, err, sizeof err), 0);
    assert_null(stt_ini_path(ini));
    assert_int_equal(stt_ini_set(ini, "a", "b", "c", true, NULL), 0);
    check_wants(1, ini, (want_t[]){{"a", "b", "c"}, {NULL}});
    stt_ini_free(ini);

    /* 2: a missing file: empty, and created on the first persisted change (0600) */
    tmp_path(path, sizeof path, "absent.ini");
    assert_int_equal(stt_ini_open(path, &ini, err, sizeof err), 0);
    assert_string_equal(stt_ini_path(ini), path);
    assert_null(read_text(path));
    assert_int_equal(stt_ini_set(ini, "new", "k", "v", false, NULL), 0);
    assert_null(read_text(path));
    assert_int_equal(stt_ini_set(ini, "new", "k", "v", true, NULL), 0);
    char *text = read_text(path);
    assert_string_equal(text, "[new]\nk = v\n");
    free(text);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    stt_ini_free(ini);
    unlink(path);

    /* 3: a path that is a folder cannot be read */
    ini = NULL;
    tmp_path(path, sizeof path, "a-folder.ini");
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(stt_ini_open(path, &ini, err, sizeof err), -EISDIR);
    assert_null(ini);
    assert_non_null(strstr(err, path));
    rmdir(path);
}

/* ---------------------------------------------------------------------------------
 * Reads
 * --------------------------------------------------------------------------------- */

static void typed_reads(void **state)
{
    (void)state;
    char path[300], err[512];
    stt_ini_t *ini;
    write_text(tmp_path(path, sizeof path, "typed.ini"),
               "[t]\nyes = true\nno = false\nupper = TRUE\nword = yes\nn = 42\nneg = -7\nbig = 9223372036854775807\n"
               "over = 9223372036854775808\nfrac = 1.5\nsp = 12 13\n");
    assert_int_equal(stt_ini_open(path, &ini, err, sizeof err), 0);

    static const struct {
        int n;
        const char *key;
        bool dflt, want;
    } bools[] = {
        {1, "yes", false, true}, {2, "no", true, false},    {3, "upper", false, true},
        {4, "word", true, true}, {5, "word", false, false}, {6, "absent", true, true},
    };
    for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++)
        if (stt_ini_get_bool(ini, "t", bools[i].key, bools[i].dflt) != bools[i].want)
            fail_msg("bool case %d: [t] %s", bools[i].n, bools[i].key);

    static const struct {
        int n;
        const char *key;
        int64_t want;
    } ints[] = {
        {1, "n", 42},    {2, "neg", -7}, {3, "big", INT64_MAX}, {4, "over", -1},
        {5, "frac", -1}, {6, "sp", -1},  {7, "yes", -1},        {8, "absent", -1},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        int64_t got = stt_ini_get_int(ini, "t", ints[i].key, -1);
        if (got != ints[i].want)
            fail_msg("int case %d: [t] %s = %lld, want %lld", ints[i].n, ints[i].key, (long long)got,
                     (long long)ints[i].want);
    }

    /* get_buf appends, and leaves the buffer alone for an unset key */
    stt_buf_t b = STT_BUF_INIT;
    stt_buf_appends(&b, "n=");
    assert_int_equal(stt_ini_get_buf(ini, "t", "n", &b), 0);
    assert_string_equal(b.base, "n=42");
    assert_int_equal(stt_ini_get_buf(ini, "t", "absent", &b), STT_E_NOT_FOUND);
    assert_string_equal(b.base, "n=42");
    stt_buf_free(&b);

    /* get returns a copy the caller owns */
    char *v = stt_ini_get(ini, "t", "n");
    v[0] = 'X';
    free(v);
    check_wants(1, ini, (want_t[]){{"t", "n", "42"}, {"t", "absent", NULL}, {"nope", "n", NULL}, {NULL}});

    stt_ini_free(ini);
    unlink(path);
}

static void each_order(void **state)
{
    (void)state;
    stt_ini_t *ini;
    dump_t d;
    assert_int_equal(stt_ini_open(NULL, &ini, NULL, 0), 0);
    assert_int_equal(stt_ini_set(ini, "a", "x", "1", false, NULL), 0);
    assert_int_equal(stt_ini_set(ini, "b", "y", "2", false, NULL), 0);
    assert_int_equal(stt_ini_set(ini, "a", "z", "3", false, NULL), 0);
    /* 1: first-set order, across sections */
    dump(ini, NULL, &d);
    assert_string_equal(d.text, "[a] x=1\n[b] y=2\n[a] z=3\n");
    /* 2: one section */
    dump(ini, "a", &d);
    assert_string_equal(d.text, "[a] x=1\n[a] z=3\n");
    /* 3: a changed value keeps its place; a deleted and re-set key goes last */
    assert_int_equal(stt_ini_set(ini, "a", "x", "10", false, NULL), 0);
    assert_int_equal(stt_ini_delete(ini, "b", "y", false, NULL), 0);
    assert_int_equal(stt_ini_set(ini, "b", "y", "20", false, NULL), 0);
    dump(ini, NULL, &d);
    assert_string_equal(d.text, "[a] x=10\n[a] z=3\n[b] y=20\n");
    /* 4: a missing section has nothing */
    dump(ini, "nope", &d);
    assert_string_equal(d.text, "");
    stt_ini_free(ini);
}

/* ---------------------------------------------------------------------------------
 * Set and delete: old values, memory, and the rewritten file
 * --------------------------------------------------------------------------------- */

enum { SET, DEL };

typedef struct {
    int n;
    const char *before; /* the file's text; NULL: no file */
    int op;
    const char *section, *key, *value;
    bool persist;
    int rc;
    const char *old;   /* the old value wanted; NULL: unset */
    const char *after; /* the file's text afterwards; NULL: no file */
} rewrite_case_t;

static const rewrite_case_t rewrite_table[] = {
    /* replacing a value keeps every other line, comments included */
    {1, "; head\n[a]\n; about x\nx = 1 ; old note\ny = 2\n\n[b]\nx = 3\n", SET, "a", "x", "10", true, 0, "1",
     "; head\n[a]\n; about x\nx = 10\ny = 2\n\n[b]\nx = 3\n"},
    /* a new key goes after the last key of its section, before blank and comment lines */
    {2, "[a]\nx = 1\n\n; next\n[b]\nz = 3\n", SET, "a", "y", "2", true, 0, NULL,
     "[a]\nx = 1\ny = 2\n\n; next\n[b]\nz = 3\n"},
    /* ... of the section's last block when it appears twice */
    {3, "[a]\nx = 1\n[b]\nz = 3\n[a]\nw = 4\n[c]\n", SET, "a", "y", "2", true, 0, NULL,
     "[a]\nx = 1\n[b]\nz = 3\n[a]\nw = 4\ny = 2\n[c]\n"},
    /* ... right after the header of an empty section */
    {4, "[a]\n\n[b]\n", SET, "a", "y", "2", true, 0, NULL, "[a]\ny = 2\n\n[b]\n"},
    /* a new section goes at the end, after a blank line */
    {5, "[a]\nx = 1\n", SET, "new", "k", "v", true, 0, NULL, "[a]\nx = 1\n\n[new]\nk = v\n"},
    {6, "[a]\nx = 1", SET, "new", "k", "v", true, 0, NULL, "[a]\nx = 1\n\n[new]\nk = v\n"},
    {7, "", SET, "new", "k", "v", true, 0, NULL, "[new]\nk = v\n"},
    {8, NULL, SET, "new", "k", "v", true, 0, NULL, "[new]\nk = v\n"},
    /* a key added to a last line without a newline */
    {9, "[a]\nx = 1", SET, "a", "y", "2", true, 0, NULL, "[a]\nx = 1\ny = 2\n"},
    /* ... and one that ends in a bare CR (read as a line end): the CR gets its "\n", so
     * that x does not read back as "1\r" (found by fuzz/fuzz_ini) */
    {40, "[a]\nx = 1\r", SET, "a", "y", "2", true, 0, NULL, "[a]\nx = 1\r\ny = 2\n"},
    {41, "x = 1\r", SET, "b", "y", "2", true, 0, NULL, "x = 1\r\n\r\n[b]\r\ny = 2\r\n"},
    /* a continued value is replaced whole, up to its last continuation line */
    {10, "[cors]\norigins = http://a,\n  http://b\n; after\nmax_age = 1\n", SET, "cors", "origins", "*", true, 0,
     "http://a, http://b", "[cors]\norigins = *\n; after\nmax_age = 1\n"},
    /* of duplicates the last is replaced: it is the one a reload reads */
    {11, "[a]\nx = 1\n[a]\nx = 2\n", SET, "a", "x", "3", true, 0, "2", "[a]\nx = 1\n[a]\nx = 3\n"},
    /* CRLF files stay CRLF */
    {12, "[a]\r\nx = 1\r\n", SET, "a", "x", "2", true, 0, "1", "[a]\r\nx = 2\r\n"},
    {13, "[a]\r\nx = 1\r\n", SET, "a", "y", "2", true, 0, NULL, "[a]\r\nx = 1\r\ny = 2\r\n"},
    /* the value is trimmed */
    {14, "[a]\n", SET, "a", "x", "  v w \t", true, 0, NULL, "[a]\nx = v w\n"},
    /* not persisted: the memory changes, the file does not */
    {15, "[a]\nx = 1\n", SET, "a", "x", "2", false, 0, "1", "[a]\nx = 1\n"},
    /* section "" is the top of the file */
    {16, "top = 1\n[a]\nx = 1\n", SET, "", "top2", "2", true, 0, NULL, "top = 1\ntop2 = 2\n[a]\nx = 1\n"},
    {17, "[a]\nx = 1\n", SET, "", "top", "1", true, 0, NULL, "top = 1\n[a]\nx = 1\n"},
    /* delete removes the line, and the continuation lines of the value */
    {20, "[a]\n; keep\nx = 1\ny = 2\n", DEL, "a", "x", NULL, true, 0, "1", "[a]\n; keep\ny = 2\n"},
    {21, "[cors]\norigins = http://a,\n  http://b\n; after\nmax_age = 1\n", DEL, "cors", "origins", NULL, true, 0,
     "http://a, http://b", "[cors]\n; after\nmax_age = 1\n"},
    /* ... every occurrence, so that an older one does not come back */
    {22, "[a]\nx = 1\n[b]\nx = 5\n[a]\nx = 2\n", DEL, "a", "x", NULL, true, 0, "2", "[a]\n[b]\nx = 5\n[a]\n"},
    {23, "[a]\nx = 1", DEL, "a", "x", NULL, true, 0, "1", "[a]\n"},
    /* not set: STT_E_NOT_FOUND, the file untouched */
    {24, "[a]\nx = 1\n", DEL, "a", "y", NULL, true, STT_E_NOT_FOUND, NULL, "[a]\nx = 1\n"},
    {25, "[a]\nx = 1\n", DEL, "b", "x", NULL, true, STT_E_NOT_FOUND, NULL, "[a]\nx = 1\n"},
    /* not persisted */
    {26, "[a]\nx = 1\n", DEL, "a", "x", NULL, false, 0, "1", "[a]\nx = 1\n"},
    /* what the dialect cannot spell is refused, and nothing changes */
    {30, "[a]\nx = 1\n", SET, "a", "x", "two\nlines", true, -EINVAL, NULL, "[a]\nx = 1\n"},
    {31, "[a]\n", SET, "a", "k=v", "1", true, -EINVAL, NULL, "[a]\n"},
    {32, "[a]\n", SET, "a]", "k", "1", true, -EINVAL, NULL, "[a]\n"},
    {33, "[a]\n", SET, "a", ";k", "1", true, -EINVAL, NULL, "[a]\n"},
    {34, "[a]\n", SET, "a", "", "1", true, -EINVAL, NULL, "[a]\n"},
    /* ... but can be held in memory */
    {35, "[a]\n", SET, "a", "k=v", "1", false, 0, NULL, "[a]\n"},
    /* a file that no longer parses is not rewritten */
    {36, "[a]\nx = 1\n", SET, "a", "x", "2", true, -EINVAL, NULL, "[a]\nx = 1\n"},
    /* an indented header right after a section's header (found by fuzz_ini): a key put
     * between them would make it a continuation of the key, so it loses its indent */
    {37, "[a]\n [b]\nz = 3\n", SET, "a", "k", "1", true, 0, NULL, "[a]\nk = 1\n[b]\nz = 3\n"},
    /* ... also with comment and blank lines between */
    {38, "[a]\n; c\n\n\t[b]\nz = 3\n", SET, "a", "k", "1", true, 0, NULL, "[a]\nk = 1\n; c\n\n[b]\nz = 3\n"},
};

static void rewrite_cases(void **state)
{
    (void)state;
    char path[300];
    for (size_t i = 0; i < sizeof rewrite_table / sizeof rewrite_table[0]; i++) {
        const rewrite_case_t *t = &rewrite_table[i];
        char name[32], err[512] = "", *old = (char *)"sentinel";
        stt_ini_t *ini;
        snprintf(name, sizeof name, "rewrite-%d.ini", t->n);
        tmp_path(path, sizeof path, name);
        unlink(path);
        if (t->before) write_text(path, t->before);
        if (stt_ini_open(path, &ini, err, sizeof err)) fail_msg("case %d: open: %s", t->n, err);
        /* case 36: the file is broken behind the store's back */
        if (t->n == 36) write_text(path, "[a]\nx = 1\n[broken\n");
        uint64_t gen = stt_ini_generation(ini);
        char *before = stt_ini_get(ini, t->section, t->key);

        int rc = t->op == SET ? stt_ini_set(ini, t->section, t->key, t->value, t->persist, &old)
                              : stt_ini_delete(ini, t->section, t->key, t->persist, &old);
        if (rc != t->rc) fail_msg("case %d: rc %d, want %d", t->n, rc, t->rc);
        if (t->n == 36) write_text(path, "[a]\nx = 1\n");

        if (rc) {
            /* a failure changes nothing, not even *old */
            if (strcmp(old, "sentinel")) fail_msg("case %d: *old written on failure", t->n);
            char *now = stt_ini_get(ini, t->section, t->key);
            if ((now == NULL) != (before == NULL) || (now && strcmp(now, before)))
                fail_msg("case %d: memory changed by a failure", t->n);
            free(now);
            assert_int_equal(stt_ini_generation(ini), gen);
        } else {
            if ((old == NULL) != (t->old == NULL) || (old && strcmp(old, t->old)))
                fail_msg("case %d: old %s, want %s", t->n, old ? old : "NULL", t->old ? t->old : "NULL");
            free(old);
            assert_int_equal(stt_ini_generation(ini), gen + 1);
        }
        free(before);

        char *text = read_text(path);
        if ((text == NULL) != (t->after == NULL) || (text && strcmp(text, t->after)))
            fail_msg("case %d: file\n%s\nwant\n%s", t->n, text ? text : "(none)", t->after ? t->after : "(none)");
        free(text);

        /* a persisted change reads back as the store holds it */
        if (!rc && t->persist) {
            stt_ini_t *again;
            dump_t d1, d2;
            if (stt_ini_open(path, &again, err, sizeof err)) fail_msg("case %d: reopen: %s", t->n, err);
            dump(ini, t->section, &d1);
            dump(again, t->section, &d2);
            if (strcmp(d1.text, d2.text))
                fail_msg("case %d: store\n%s\nbut the file reads\n%s", t->n, d1.text, d2.text);
            stt_ini_free(again);
        }
        stt_ini_free(ini);
        unlink(path);
    }
}

/* old may be NULL; values set to "" stay set (in memory) */
static void set_details(void **state)
{
    (void)state;
    stt_ini_t *ini;
    char *old = NULL;
    assert_int_equal(stt_ini_open(NULL, &ini, NULL, 0), 0);
    /* 1: first set: *old is NULL */
    assert_int_equal(stt_ini_set(ini, "a", "x", "1", true, &old), 0);
    assert_null(old);
    /* 2: old NULL is allowed */
    assert_int_equal(stt_ini_set(ini, "a", "x", "2", true, NULL), 0);
    assert_int_equal(stt_ini_delete(ini, "a", "x", true, NULL), 0);
    /* 3: "" is a value */
    assert_int_equal(stt_ini_set(ini, "a", "x", "", true, NULL), 0);
    check_wants(3, ini, (want_t[]){{"a", "x", ""}, {NULL}});
    assert_int_equal(stt_ini_delete(ini, "a", "x", true, &old), 0);
    assert_string_equal(old, "");
    free(old);
    /* 4: delete of an unset key leaves *old alone */
    old = (char *)"sentinel";
    assert_int_equal(stt_ini_delete(ini, "a", "x", true, &old), STT_E_NOT_FOUND);
    assert_string_equal(old, "sentinel");
    assert_int_equal(stt_ini_generation(ini), 5);
    stt_ini_free(ini);
}

/* ---------------------------------------------------------------------------------
 * Files that cannot be written
 * --------------------------------------------------------------------------------- */

static void write_failures(void **state)
{
    (void)state;
    char path[300], err[512];
    stt_ini_t *ini;
    char *old = (char *)"sentinel";

    /* 1: the folder does not exist: -ENOENT, nothing changes */
    tmp_path(path, sizeof path, "no-such-folder/local.ini");
    assert_int_equal(stt_ini_open(path, &ini, err, sizeof err), 0);
    assert_int_equal(stt_ini_set(ini, "a", "x", "1", true, &old), -ENOENT);
    assert_string_equal(old, "sentinel");
    check_wants(1, ini, (want_t[]){{"a", "x", NULL}, {NULL}});
    assert_int_equal(stt_ini_generation(ini), 0);
    /* ... and a change that is not persisted still works */
    assert_int_equal(stt_ini_set(ini, "a", "x", "1", false, NULL), 0);
    check_wants(1, ini, (want_t[]){{"a", "x", "1"}, {NULL}});
    /* ... and so does a persisted delete of it: the file has nothing to remove */
    assert_int_equal(stt_ini_delete(ini, "a", "x", true, &old), 0);
    assert_string_equal(old, "1");
    free(old);
    old = (char *)"sentinel";
    check_wants(1, ini, (want_t[]){{"a", "x", NULL}, {NULL}});
    assert_int_equal(stt_ini_generation(ini), 2);
    stt_ini_free(ini);

    /* 2: the file became a folder after loading: -EISDIR for set and delete */
    tmp_path(path, sizeof path, "became-a-folder.ini");
    write_text(path, "[a]\nx = 1\n");
    assert_int_equal(stt_ini_open(path, &ini, err, sizeof err), 0);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(stt_ini_set(ini, "a", "x", "2", true, &old), -EISDIR);
    assert_int_equal(stt_ini_set(ini, "a", "y", "2", true, &old), -EISDIR);
    assert_int_equal(stt_ini_delete(ini, "a", "x", true, &old), -EISDIR);
    assert_string_equal(old, "sentinel");
    check_wants(2, ini, (want_t[]){{"a", "x", "1"}, {"a", "y", NULL}, {NULL}});
    assert_int_equal(stt_ini_generation(ini), 0);
    assert_int_equal(rmdir(path), 0);
    /* 3: once the path is free again the store writes a whole new file */
    assert_int_equal(stt_ini_set(ini, "a", "y", "2", true, NULL), 0);
    char *text = read_text(path);
    assert_string_equal(text, "[a]\ny = 2\n");
    free(text);
    stt_ini_free(ini);
    unlink(path);

    /* 4: no temporary file is left behind by failures or successes */
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".ini.")) fail_msg("case 4: left behind: %s", e->d_name);
    closedir(d);
}

/* The mode of the file is kept, and a symlink stays a symlink. */
static void file_identity(void **state)
{
    (void)state;
    char path[300], link[300], err[512];
    stt_ini_t *ini;
    struct stat st;

    tmp_path(path, sizeof path, "mode.ini");
    write_text(path, "[a]\nx = 1\n");
    assert_int_equal(chmod(path, 0644), 0);
    tmp_path(link, sizeof link, "link.ini");
    assert_int_equal(symlink(path, link), 0);

    assert_int_equal(stt_ini_open(link, &ini, err, sizeof err), 0);
    assert_int_equal(stt_ini_set(ini, "a", "x", "2", true, NULL), 0);
    /* 1: the link still points at the file, which holds the change */
    assert_int_equal(lstat(link, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    char *text = read_text(path);
    assert_string_equal(text, "[a]\nx = 2\n");
    free(text);
    /* 2: the mode is kept */
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    stt_ini_free(ini);
    unlink(link);
    unlink(path);
}

/* ---------------------------------------------------------------------------------
 * Threads
 * --------------------------------------------------------------------------------- */

#define NREADERS 4
#define NWRITERS 4
#define NROUNDS 60

typedef struct {
    stt_ini_t *ini;
    int id;
    _Atomic int *stop;
    long reads;
} thread_arg_t;

static void count_one(void *ctx, const char *section, const char *key, const char *value)
{
    (void)section;
    (void)key;
    /* values are "w<id>-<round>": a torn value would not look like that */
    if (value[0] != 'w' && strcmp(value, "fixed")) abort();
    (*(long *)ctx)++;
}

static void *reader(void *p)
{
    thread_arg_t *a = p;
    while (!atomic_load(a->stop)) {
        char *v = stt_ini_get(a->ini, "fixed", "k");
        if (!v || strcmp(v, "fixed")) abort();
        free(v);
        long n = 0;
        stt_ini_each(a->ini, NULL, count_one, &n);
        if (n < 1) abort();
        (void)stt_ini_generation(a->ini);
        a->reads++;
    }
    return NULL;
}

static void *writer(void *p)
{
    thread_arg_t *a = p;
    char section[16], key[16], value[32];
    snprintf(section, sizeof section, "w%d", a->id);
    for (int i = 0; i < NROUNDS; i++) {
        snprintf(key, sizeof key, "k%d", i % 7);
        snprintf(value, sizeof value, "w%d-%d", a->id, i);
        /* every third round is a delete of what the previous round set */
        if (i % 3 == 2) {
            snprintf(key, sizeof key, "k%d", (i - 1) % 7);
            if (stt_ini_delete(a->ini, section, key, i % 2 == 0, NULL)) abort();
        } else if (stt_ini_set(a->ini, section, key, value, i % 2 == 0, NULL)) {
            abort();
        }
    }
    return NULL;
}

static void threads(void **state)
{
    (void)state;
    char path[300], err[512];
    stt_ini_t *ini;
    pthread_t rt[NREADERS], wt[NWRITERS];
    thread_arg_t ra[NREADERS], wa[NWRITERS];
    _Atomic int stop = 0;

    tmp_path(path, sizeof path, "threads.ini");
    write_text(path, "[fixed]\nk = fixed\n");
    assert_int_equal(stt_ini_open(path, &ini, err, sizeof err), 0);
    for (int i = 0; i < NREADERS; i++) {
        ra[i] = (thread_arg_t){ini, i, &stop, 0};
        assert_int_equal(pthread_create(&rt[i], NULL, reader, &ra[i]), 0);
    }
    for (int i = 0; i < NWRITERS; i++) {
        wa[i] = (thread_arg_t){ini, i, &stop, 0};
        assert_int_equal(pthread_create(&wt[i], NULL, writer, &wa[i]), 0);
    }
    for (int i = 0; i < NWRITERS; i++)
        assert_int_equal(pthread_join(wt[i], NULL), 0);
    atomic_store(&stop, 1);
    for (int i = 0; i < NREADERS; i++) {
        assert_int_equal(pthread_join(rt[i], NULL), 0);
        assert_true(ra[i].reads > 0);
    }

    /* 1: every change counted once */
    assert_int_equal(stt_ini_generation(ini), NWRITERS * NROUNDS);
    /* 2: each writer's section holds what its last rounds left */
    for (int w = 0; w < NWRITERS; w++) {
        char section[16], value[32];
        snprintf(section, sizeof section, "w%d", w);
        /* the last round (59) deletes k(58 % 7) = k2; round 58 set k2 first */
        assert_null(stt_ini_get(ini, section, "k2"));
        /* round 57 set k1 */
        snprintf(value, sizeof value, "w%d-57", w);
        char *v = stt_ini_get(ini, section, "k1");
        assert_non_null(v);
        assert_string_equal(v, value);
        free(v);
    }
    /* 3: the file is whole: it parses, and holds the fixed key */
    stt_ini_t *again;
    assert_int_equal(stt_ini_open(path, &again, err, sizeof err), 0);
    char *v = stt_ini_get(again, "fixed", "k");
    assert_string_equal(v, "fixed");
    free(v);
    stt_ini_free(again);
    stt_ini_free(ini);
    unlink(path);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(load_cases),  cmocka_unit_test(load_nul_byte),  cmocka_unit_test(open_special),
        cmocka_unit_test(typed_reads), cmocka_unit_test(each_order),     cmocka_unit_test(rewrite_cases),
        cmocka_unit_test(set_details), cmocka_unit_test(write_failures), cmocka_unit_test(file_identity),
        cmocka_unit_test(threads),
    };
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, setup, teardown);
}
