/* The live ini store behind /_node/{node}/_config: the values in memory, and the
 * in-place rewrite of the file when a change is persisted.
 *
 * Memory: one array of (section, key, value) in the order keys were first set;
 * lookups are linear, which is fine for the few hundred keys an ini file holds.
 *
 * Locking: readers take the rwlock shared. A writer first takes the writer mutex
 * (so writers run one at a time and the file sees changes in the same order as the
 * memory), reads the old value without the rwlock (only writers change the array,
 * and they hold the mutex), rewrites the file with no lock readers wait on, and
 * only then takes the rwlock exclusively to change the array. A failed write
 * leaves the array untouched.
 *
 * The file: a persisted change re-reads the file as it is on disk now (someone may
 * have edited it), rewrites only the lines of the key, writes the whole text to a
 * temporary file beside it, fsyncs it and renames it over the old one (then fsyncs
 * the folder), so a crash leaves either the old or the new file. The dialect is
 * config.c's, read by one line scanner used for loading and for rewriting:
 *
 *     [section]              a header; a trailing "; comment" is allowed
 *     key = value ; note     " ;" or "\t;" starts a trailing comment
 *       more of the value    an indented line without '=' continues the value
 *     ; comment / # comment  ignored, as are blank lines (also between continuations)
 *
 * An empty value ("key =") unsets the key, as CouchDB reads it: a key set to ""
 * is kept in memory but is unset again after a reload. What the dialect cannot
 * spell is refused when it would be written (-EINVAL): a value with a line break,
 * a key that is empty, holds '=' or a line break, starts with '[', ';' or '#' or
 * has surrounding blanks, a section holding ']' or a line break or with
 * surrounding blanks. A value holding " ;" is written as given and, as in CouchDB,
 * read back cut there.
 *
 * Not here: what a setting means (config.c for the start-up snapshot, each user for
 * its own keys), hashing admin passwords (the HTTP handler does it before set). */
#include "src/common/ini.h"
#include "src/common/err.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char *section, *key, *value;
} entry_t;

struct stt_ini {
    char *path;
    pthread_rwlock_t lock; /* guards entries for readers */
    pthread_mutex_t wmu;   /* one writer at a time, file and memory */
    entry_t *entries;
    size_t nentries, cap;
    _Atomic uint64_t generation;
};

/* ---------------------------------------------------------------------------------
 * Entries (callers hold the locks the header comment says)
 * --------------------------------------------------------------------------------- */

static entry_t *find(const stt_ini_t *ini, const char *section, const char *key)
{
    for (size_t i = 0; i < ini->nentries; i++)
        if (!strcmp(ini->entries[i].key, key) && !strcmp(ini->entries[i].section, section)) return &ini->entries[i];
    return NULL;
}

/* Sets a value, taking ownership of value; returns the previous value (owned by
 * the caller) or NULL. */
static char *put(stt_ini_t *ini, const char *section, size_t seclen, const char *key, size_t keylen, char *value)
{
    for (size_t i = 0; i < ini->nentries; i++) {
        entry_t *e = &ini->entries[i];
        if (strlen(e->section) == seclen && !memcmp(e->section, section, seclen) && strlen(e->key) == keylen &&
            !memcmp(e->key, key, keylen)) {
            char *old = e->value;
            e->value = value;
            return old;
        }
    }
    if (ini->nentries == ini->cap) {
        ini->cap = ini->cap ? ini->cap * 2 : 32;
        ini->entries = stt_xrealloc(ini->entries, ini->cap * sizeof *ini->entries);
    }
    ini->entries[ini->nentries++] = (entry_t){stt_xstrndup(section, seclen), stt_xstrndup(key, keylen), value};
    return NULL;
}

/* Removes an entry; returns its value (owned by the caller). */
static char *take(stt_ini_t *ini, entry_t *e)
{
    char *old = e->value;
    free(e->section);
    free(e->key);
    memmove(e, e + 1, (size_t)(ini->entries + ini->nentries - (e + 1)) * sizeof *e);
    ini->nentries--;
    return old;
}

/* ---------------------------------------------------------------------------------
 * The line scanner
 * --------------------------------------------------------------------------------- */

typedef enum { L_SKIP, L_HEADER, L_KEY, L_CONT } kind_t;

typedef struct {
    kind_t kind;
    size_t start, end; /* the line's bytes in the text, its line end included */
    bool crlf;         /* the line ends with "\r\n" */
    /* L_HEADER: the section name; L_KEY: the key; L_CONT: unused */
    const char *name;
    size_t namelen;
    /* L_KEY and L_CONT: the value text, trimmed, trailing comment cut */
    const char *val;
    size_t vallen;
} line_t;

typedef struct {
    const char *text, *file; /* file: for error messages */
    size_t len, pos;
    int lineno;
    bool pending;    /* a key line came last (blank and comment lines aside) */
    const char *sec; /* current section name (not NUL-terminated) */
    size_t seclen;
} scan_t;

static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

static const char *trim(const char *p, size_t *len)
{
    while (*len && is_blank(*p))
        p++, (*len)--;
    while (*len && is_blank(p[*len - 1]))
        (*len)--;
    return p;
}

/* CouchDB ends a value at " ;" or "\t;"; a ';' elsewhere is part of it. */
static size_t value_len(const char *v, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++)
        if (is_blank(v[i]) && v[i + 1] == ';') return i;
    return len;
}

static void seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || !errlen) return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* The next line into *l: 1, 0 at the end, -EINVAL (err written) for a line the
 * dialect does not allow. */
static int scan_next(scan_t *s, line_t *l, char *err, size_t errlen)
{
    if (s->pos >= s->len) return 0;
    const char *p = s->text + s->pos, *nl = memchr(p, '\n', s->len - s->pos);
    size_t len = nl ? (size_t)(nl - p) : s->len - s->pos;

    *l = (line_t){.kind = L_SKIP, .start = s->pos};
    l->end = s->pos + len + (nl ? 1 : 0);
    s->pos = l->end;
    s->lineno++;
    if (len && p[len - 1] == '\r') len--, l->crlf = true;
    /* names and values are C strings from here on: a NUL would cut them short (and a
     * name read back would no longer find its key) */
    if (memchr(p, '\0', len)) {
        seterr(err, errlen, "%s:%d: NUL byte in line", s->file, s->lineno);
        return -EINVAL;
    }
    if (s->lineno == 1 && len >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3)) p += 3, len -= 3;

    size_t tlen = len;
    const char *t = trim(p, &tlen);
    if (!tlen || *t == ';' || *t == '#') return 1;

    const char *eq = memchr(p, '=', len);
    if (is_blank(p[0]) && !eq && s->pending) {
        l->kind = L_CONT;
        l->vallen = value_len(t, tlen);
        l->val = trim(t, &l->vallen);
        return 1;
    }
    s->pending = false;
    if (*t == '[') {
        const char *close = memchr(t, ']', tlen);
        if (!close) {
            seterr(err, errlen, "%s:%d: unterminated section header (missing ']')", s->file, s->lineno);
            return -EINVAL;
        }
        size_t restlen = tlen - (size_t)(close + 1 - t);
        const char *rest = trim(close + 1, &restlen);
        if (restlen && *rest != ';') {
            seterr(err, errlen, "%s:%d: unexpected text after section header: \"%.*s\"", s->file, s->lineno,
                   (int)(restlen > 64 ? 64 : restlen), rest);
            return -EINVAL;
        }
        l->namelen = (size_t)(close - t - 1);
        l->name = trim(t + 1, &l->namelen);
        if (!l->namelen) {
            seterr(err, errlen, "%s:%d: empty section name", s->file, s->lineno);
            return -EINVAL;
        }
        l->kind = L_HEADER;
        s->sec = l->name;
        s->seclen = l->namelen;
        return 1;
    }
    if (!eq) {
        seterr(err, errlen, "%s:%d: expected \"key = value\", \"[section]\" or a ; comment, got \"%.*s\"", s->file,
               s->lineno, (int)(tlen > 64 ? 64 : tlen), t);
        return -EINVAL;
    }
    l->namelen = (size_t)(eq - t);
    l->name = trim(t, &l->namelen);
    if (!l->namelen) {
        seterr(err, errlen, "%s:%d: missing key before '='", s->file, s->lineno);
        return -EINVAL;
    }
    l->vallen = value_len(eq + 1, (size_t)(p + len - (eq + 1)));
    l->val = trim(eq + 1, &l->vallen);
    l->kind = L_KEY;
    s->pending = true;
    return 1;
}

static bool in_section(const scan_t *s, const char *section)
{
    return strlen(section) == s->seclen && !memcmp(s->sec, section, s->seclen);
}

static bool is_key(const line_t *l, const char *key)
{
    return l->kind == L_KEY && strlen(key) == l->namelen && !memcmp(l->name, key, l->namelen);
}

/* ---------------------------------------------------------------------------------
 * Reading and writing files
 * --------------------------------------------------------------------------------- */

/* The whole file into *out (NUL-terminated). A missing file is empty when
 * missing_ok. 0 or -errno. */
static int read_file(const char *path, bool missing_ok, stt_buf_t *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT && missing_ok ? 0 : -errno;
    int rc = 0;
    for (;;) {
        stt_buf_reserve(out, 65536);
        ssize_t n = read(fd, out->base + out->len, out->cap - out->len - 1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            rc = -errno;
            break;
        }
        if (n == 0) break;
        out->len += (size_t)n;
    }
    out->base[out->len] = '\0';
    close(fd);
    return rc;
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Replaces the file at path by text: a temporary file in the same folder, fsync,
 * rename, fsync of the folder. A symlink is followed so that the link stays. The
 * mode of an existing file is kept; a new file gets 0600 (it may hold admin
 * password hashes). 0 or -errno. */
static int replace_file(const char *path, const char *text, size_t len)
{
    char *real = NULL, *tmp = NULL;
    struct stat st;
    int fd = -1, rc = 0;

    if (!lstat(path, &st) && S_ISLNK(st.st_mode)) real = realpath(path, NULL);
    const char *target = real ? real : path;
    bool exists = !stat(target, &st);

    size_t tlen = strlen(target);
    tmp = stt_xmalloc(tlen + 8);
    memcpy(tmp, target, tlen);
    memcpy(tmp + tlen, ".XXXXXX", 8);
    if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
        rc = -errno;
        free(tmp);
        tmp = NULL;
        goto exit;
    }
    if (exists && fchmod(fd, st.st_mode & 07777)) {
        rc = -errno;
        goto exit;
    }
    if ((rc = write_all(fd, text, len))) goto exit;
    if (fsync(fd)) {
        rc = -errno;
        goto exit;
    }
    if (close(fd)) {
        fd = -1;
        rc = -errno;
        goto exit;
    }
    fd = -1;
    if (rename(tmp, target)) {
        rc = -errno;
        goto exit;
    }
    free(tmp);
    tmp = NULL;

    /* The rename itself is durable only once the folder is synced. */
    const char *slash = strrchr(target, '/');
    char *dir = slash ? stt_xstrndup(target, slash == target ? 1 : (size_t)(slash - target)) : stt_xstrndup(".", 1);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        if (fsync(dfd) && errno != EINVAL) rc = -errno;
        close(dfd);
    }
    free(dir);

exit:
    if (fd >= 0) close(fd);
    if (tmp) unlink(tmp);
    free(tmp);
    free(real);
    return rc;
}

static bool has_any(const char *s, const char *chars)
{
    return strpbrk(s, chars) != NULL;
}

static bool has_edge_blank(const char *s)
{
    size_t len = strlen(s);
    return len && (is_blank(s[0]) || is_blank(s[len - 1]));
}

/* Whether section, key and value can be written in the dialect (value NULL: a
 * delete). */
static bool writable(const char *section, const char *key, const char *value)
{
    if (has_any(section, "]\r\n") || has_edge_blank(section)) return false;
    if (!*key || has_any(key, "=\r\n") || has_edge_blank(key) || strchr("[;#", key[0])) return false;
    return !value || !has_any(value, "\r\n");
}

/* The file's new text with section/key set to value (value NULL: every line of
 * the key removed) into out. *changed says whether anything differs. 0, or -EINVAL
 * when the file on disk no longer parses (err says where). */
static int rewrite(const char *path, const char *text, size_t len, const char *section, const char *key,
                   const char *value, stt_buf_t *out, bool *changed, char *err, size_t errlen)
{
    scan_t s = {.text = text, .file = path, .len = len, .sec = "", .seclen = 0};
    line_t l;
    size_t copied = 0; /* text before this offset is already in out */
    size_t kstart = 0, kend = 0;
    bool found = false;  /* a line of the key (the last one in kstart/kend) */
    bool in_key = false; /* the key line's continuation lines belong to it */
    bool crlf = false;   /* the file's style, from its first line */
    size_t insert = 0;   /* after the last header/key line of the section */
    bool has_section = !*section;
    int rc;

    if (!*section && len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) insert = 3;
    *changed = false;
    while ((rc = scan_next(&s, &l, err, errlen)) == 1) {
        if (s.lineno == 1) crlf = l.crlf;
        if (l.kind == L_CONT) {
            if (in_key) kend = l.end;
            if (in_section(&s, section)) insert = l.end;
            continue;
        }
        if (l.kind == L_SKIP) continue;
        /* a header or a key line ends the previous key's lines */
        if (in_key && !value) {
            /* delete: drop every occurrence as it ends */
            stt_buf_append(out, text + copied, kstart - copied);
            copied = kend;
            *changed = true;
        }
        in_key = false;
        if (l.kind == L_HEADER && in_section(&s, section)) {
            has_section = true;
            insert = l.end;
        } else if (l.kind == L_KEY && in_section(&s, section)) {
            insert = l.end;
            if (is_key(&l, key)) {
                found = in_key = true;
                kstart = l.start;
                kend = l.end;
            }
        }
    }
    if (rc < 0) return rc;
    if (in_key && !value) {
        stt_buf_append(out, text + copied, kstart - copied);
        copied = kend;
        *changed = true;
    }
    if (!value) {
        stt_buf_append(out, text + copied, len - copied);
        return 0;
    }

    /* a last line that ends in a bare CR was read as ending there (scan_next): what is
     * appended after it completes that CR with "\n" rather than adding a line end after
     * it, which would make the CR part of the value on the next read (found by
     * fuzz/fuzz_ini) */
    const char *eol = crlf ? "\r\n" : "\n";
    *changed = true;
    if (found) {
        /* the last occurrence is the one that counts when the file is read */
        stt_buf_append(out, text, kstart);
        stt_buf_appendf(out, "%s = %s%s", key, value, eol);
        stt_buf_append(out, text + kend, len - kend);
    } else if (has_section) {
        stt_buf_append(out, text, insert);
        if (insert && text[insert - 1] != '\n') stt_buf_appends(out, text[insert - 1] == '\r' ? "\n" : eol);
        stt_buf_appendf(out, "%s = %s%s", key, value, eol);
        /* the next header after the insertion point, when indented, would now follow a
         * key line (comment and blank lines between do not count), where an indented
         * line continues the value: it loses its indent */
        size_t line = insert;
        while (line < len) {
            size_t p = line;
            while (p < len && is_blank(text[p]))
                p++;
            if (p < len && text[p] == '[' && p > line) {
                stt_buf_append(out, text + insert, line - insert);
                insert = p;
                break;
            }
            bool skip = p >= len || text[p] == '\n' || text[p] == '\r' || text[p] == ';' || text[p] == '#';
            if (!skip) break;
            const char *nl = memchr(text + p, '\n', len - p);
            line = nl ? (size_t)(nl - text) + 1 : len;
        }
        stt_buf_append(out, text + insert, len - insert);
    } else {
        stt_buf_append(out, text, len);
        if (len && text[len - 1] != '\n') stt_buf_appends(out, text[len - 1] == '\r' ? "\n" : eol);
        if (len) stt_buf_appends(out, eol);
        stt_buf_appendf(out, "[%s]%s%s = %s%s", section, eol, key, value, eol);
    }
    return 0;
}

/* Writes the change to the file. 0 or -errno. */
static int persist(stt_ini_t *ini, const char *section, const char *key, const char *value)
{
    stt_buf_t text = STT_BUF_INIT, out = STT_BUF_INIT;
    bool changed;
    int rc;

    /* a key the dialect cannot spell cannot be in the file either */
    if (!writable(section, key, value)) return value ? -EINVAL : 0;
    if ((rc = read_file(ini->path, true, &text))) goto exit;
    if ((rc = rewrite(ini->path, text.base ? text.base : "", text.len, section, key, value, &out, &changed, NULL, 0)))
        goto exit;
    if (changed) rc = replace_file(ini->path, out.base ? out.base : "", out.len);
exit:
    stt_buf_free(&text);
    stt_buf_free(&out);
    return rc;
}

/* ---------------------------------------------------------------------------------
 * Opening
 * --------------------------------------------------------------------------------- */

/* Applies the pending key of a load: an empty value unsets it. */
static void load_apply(stt_ini_t *ini, const char *sec, size_t seclen, const line_t *key, stt_buf_t *value)
{
    if (!value->len) {
        char *k = stt_xstrndup(key->name, key->namelen), *s = stt_xstrndup(sec, seclen);
        entry_t *e = find(ini, s, k);
        if (e) free(take(ini, e));
        free(k);
        free(s);
        return;
    }
    free(put(ini, sec, seclen, key->name, key->namelen, stt_xstrndup(value->base, value->len)));
}

static int load(stt_ini_t *ini, const char *text, size_t len, char *err, size_t errlen)
{
    scan_t s = {.text = text, .file = ini->path, .len = len, .sec = "", .seclen = 0};
    line_t l, key = {0};
    stt_buf_t value = STT_BUF_INIT;
    const char *ksec = "";
    size_t kseclen = 0;
    bool pending = false;
    int rc;

    /* a key is applied once the next header or key shows its value is complete */
    while ((rc = scan_next(&s, &l, err, errlen)) == 1) {
        if (l.kind == L_CONT) {
            if (l.vallen) {
                if (value.len) stt_buf_appendc(&value, ' ');
                stt_buf_append(&value, l.val, l.vallen);
            }
            continue;
        }
        if (l.kind == L_SKIP) continue;
        if (pending) load_apply(ini, ksec, kseclen, &key, &value);
        pending = false;
        if (l.kind == L_KEY) {
            key = l;
            ksec = s.sec;
            kseclen = s.seclen;
            stt_buf_reset(&value);
            stt_buf_append(&value, l.val, l.vallen);
            pending = true;
        }
    }
    if (rc == 0 && pending) load_apply(ini, ksec, kseclen, &key, &value);
    stt_buf_free(&value);
    return rc < 0 ? rc : 0;
}

static void free_entries(stt_ini_t *ini)
{
    for (size_t i = 0; i < ini->nentries; i++) {
        free(ini->entries[i].section);
        free(ini->entries[i].key);
        free(ini->entries[i].value);
    }
    free(ini->entries);
}

int stt_ini_open(const char *path, stt_ini_t **out, char *err, size_t errlen)
{
    stt_ini_t *ini = stt_xcalloc(1, sizeof *ini);
    stt_buf_t text = STT_BUF_INIT;
    int rc = 0;

    pthread_rwlock_init(&ini->lock, NULL);
    pthread_mutex_init(&ini->wmu, NULL);
    if (path) {
        ini->path = stt_xstrndup(path, strlen(path));
        if ((rc = read_file(path, true, &text))) {
            seterr(err, errlen, "%s: %s", path, strerror(-rc));
            goto exit;
        }
        if ((rc = load(ini, text.base ? text.base : "", text.len, err, errlen))) goto exit;
    }
    *out = ini;
exit:
    stt_buf_free(&text);
    if (rc) stt_ini_free(ini);
    return rc;
}

void stt_ini_free(stt_ini_t *ini)
{
    if (!ini) return;
    free_entries(ini);
    free(ini->path);
    pthread_rwlock_destroy(&ini->lock);
    pthread_mutex_destroy(&ini->wmu);
    free(ini);
}

const char *stt_ini_path(const stt_ini_t *ini)
{
    return ini->path;
}

/* ---------------------------------------------------------------------------------
 * Reading
 * --------------------------------------------------------------------------------- */

char *stt_ini_get(stt_ini_t *ini, const char *section, const char *key)
{
    pthread_rwlock_rdlock(&ini->lock);
    const entry_t *e = find(ini, section, key);
    char *v = e ? stt_xstrndup(e->value, strlen(e->value)) : NULL;
    pthread_rwlock_unlock(&ini->lock);
    return v;
}

int stt_ini_get_buf(stt_ini_t *ini, const char *section, const char *key, stt_buf_t *out)
{
    pthread_rwlock_rdlock(&ini->lock);
    const entry_t *e = find(ini, section, key);
    if (e) stt_buf_appends(out, e->value);
    pthread_rwlock_unlock(&ini->lock);
    return e ? 0 : STT_E_NOT_FOUND;
}

bool stt_ini_get_bool(stt_ini_t *ini, const char *section, const char *key, bool dflt)
{
    char *v = stt_ini_get(ini, section, key);
    bool b = dflt;
    if (v && !strcasecmp(v, "true")) b = true;
    if (v && !strcasecmp(v, "false")) b = false;
    free(v);
    return b;
}

int64_t stt_ini_get_int(stt_ini_t *ini, const char *section, const char *key, int64_t dflt)
{
    char *v = stt_ini_get(ini, section, key), *end;
    int64_t n = dflt;
    if (v && *v) {
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (!errno && !*end) n = x;
    }
    free(v);
    return n;
}

void stt_ini_each(stt_ini_t *ini, const char *section,
                  void (*fn)(void *ctx, const char *section, const char *key, const char *value), void *ctx)
{
    pthread_rwlock_rdlock(&ini->lock);
    for (size_t i = 0; i < ini->nentries; i++) {
        const entry_t *e = &ini->entries[i];
        if (!section || !strcmp(e->section, section)) fn(ctx, e->section, e->key, e->value);
    }
    pthread_rwlock_unlock(&ini->lock);
}

uint64_t stt_ini_generation(stt_ini_t *ini)
{
    return atomic_load(&ini->generation);
}

/* ---------------------------------------------------------------------------------
 * Writing
 * --------------------------------------------------------------------------------- */

int stt_ini_set(stt_ini_t *ini, const char *section, const char *key, const char *value, bool persist_it, char **old)
{
    size_t vlen = strlen(value);
    const char *v = trim(value, &vlen);
    char *copy = stt_xstrndup(v, vlen), *prev;
    int rc = 0;

    pthread_mutex_lock(&ini->wmu);
    if (persist_it && ini->path && (rc = persist(ini, section, key, copy))) {
        free(copy);
        goto exit;
    }
    pthread_rwlock_wrlock(&ini->lock);
    prev = put(ini, section, strlen(section), key, strlen(key), copy);
    atomic_fetch_add(&ini->generation, 1);
    pthread_rwlock_unlock(&ini->lock);
    if (old)
        *old = prev;
    else
        free(prev);
exit:
    pthread_mutex_unlock(&ini->wmu);
    return rc;
}

int stt_ini_delete(stt_ini_t *ini, const char *section, const char *key, bool persist_it, char **old)
{
    int rc = 0;

    pthread_mutex_lock(&ini->wmu);
    /* only writers change the entries, and they hold wmu: no read lock needed */
    if (!find(ini, section, key)) {
        rc = STT_E_NOT_FOUND;
        goto exit;
    }
    if (persist_it && ini->path && (rc = persist(ini, section, key, NULL))) goto exit;
    pthread_rwlock_wrlock(&ini->lock);
    char *prev = take(ini, find(ini, section, key));
    atomic_fetch_add(&ini->generation, 1);
    pthread_rwlock_unlock(&ini->lock);
    if (old)
        *old = prev;
    else
        free(prev);
exit:
    pthread_mutex_unlock(&ini->wmu);
    return rc;
}
