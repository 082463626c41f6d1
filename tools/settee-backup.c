/* settee-backup: a consistent point-in-time copy of a whole settee store, taken
 * while the server keeps serving writes.
 *
 *   settee-backup URL FILE               from a running server (GET URL/_node/_local/_backup)
 *   settee-backup --data-dir DIR FILE    from a data dir whose server is stopped
 *
 * URL carries a server admin's credentials (http://admin:pw@127.0.0.1:5984). FILE
 * "-" is stdout;
 * otherwise the copy goes to FILE.partial, is synced, and is renamed to FILE only
 * once its end record arrived, so FILE is always a complete backup. settee-restore
 * rebuilds a data dir from it.
 *
 * Exit status: 0 done, 1 the backup failed (nothing left at FILE), 2 bad arguments,
 * 3 the store cannot be opened or the server cannot be reached. */
#include "store/store.h"
#include "src/common/httpc.h"
#include "src/common/progress.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: settee-backup URL FILE\n"
               "       settee-backup --data-dir DIR FILE\n"
               "  Writes a consistent copy of the whole store to FILE (\"-\": stdout), from a\n"
               "  running server at URL (a server admin's credentials in the URL) or from a\n"
               "  stopped server's DIR.\n"
               "  exit status: 0 done, 1 failed, 2 bad arguments, 3 cannot reach the store\n");
}

typedef struct {
    FILE *out;
    const char *path; /* NULL for stdout */
    char tmp[4096];
    uint64_t bytes;
    stt_progress_t pr;
    int werr;
    /* the last 25 bytes seen: the end record must be there */
    unsigned char tail[25];
    size_t ntail;
} sink_t;

static int sink_open(sink_t *k, const char *path)
{
    memset(k, 0, sizeof(*k));
    if (strcmp(path, "-") == 0) {
        k->out = stdout;
        return 0;
    }
    k->path = path;
    snprintf(k->tmp, sizeof(k->tmp), "%s.partial", path);
    k->out = fopen(k->tmp, "wb");
    if (!k->out) {
        fprintf(stderr, "settee-backup: %s: %s\n", k->tmp, strerror(errno));
        return -1;
    }
    return 0;
}

static int sink_write(sink_t *k, const void *p, size_t n)
{
    if (k->werr) return -1;
    if (fwrite(p, 1, n, k->out) != n) {
        k->werr = errno ? errno : EIO;
        return -1;
    }
    k->bytes += n;
    if (n >= sizeof(k->tail)) {
        memcpy(k->tail, (const char *)p + n - sizeof(k->tail), sizeof(k->tail));
        k->ntail = sizeof(k->tail);
    } else {
        size_t keep = k->ntail + n > sizeof(k->tail) ? sizeof(k->tail) - n : k->ntail;
        memmove(k->tail, k->tail + k->ntail - keep, keep);
        memcpy(k->tail + keep, p, n);
        k->ntail = keep + n;
    }
    return 0;
}

/* Makes FILE the backup (synced), or removes the partial copy. 0 or -1. */
static int sink_close(sink_t *k, bool ok)
{
    if (ok && (k->ntail < sizeof(k->tail) || k->tail[0] != 'E')) {
        fprintf(stderr, "settee-backup: the backup ended without its end record\n");
        ok = false;
    }
    if (fflush(k->out) != 0 && ok) {
        fprintf(stderr, "settee-backup: writing: %s\n", strerror(errno));
        ok = false;
    }
    if (k->werr && ok) {
        fprintf(stderr, "settee-backup: writing: %s\n", strerror(k->werr));
        ok = false;
    }
    if (!k->path) return ok ? 0 : -1;
    if (ok && fsync(fileno(k->out)) != 0) {
        fprintf(stderr, "settee-backup: fsync: %s\n", strerror(errno));
        ok = false;
    }
    fclose(k->out);
    if (!ok) {
        unlink(k->tmp);
        return -1;
    }
    if (rename(k->tmp, k->path) != 0) {
        fprintf(stderr, "settee-backup: rename to %s: %s\n", k->path, strerror(errno));
        unlink(k->tmp);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ offline */

static int offline(const char *dir, const char *file)
{
    stt_store_opts_t o;
    stt_store_opts_default(&o);
    stt_store_t *s;
    char err[512];
    if (stt_store_open(dir, &o, &s, err, sizeof(err)) != 0) {
        fprintf(stderr, "settee-backup: %s: %s\n", dir, err);
        return 3;
    }
    sink_t k;
    if (sink_open(&k, file) != 0) {
        stt_store_close(s);
        return 1;
    }
    stt_progress_init(&k.pr, "backup", "keys", stt_store_approx_size(s));
    stt_backup_t *b;
    stt_backup_open(s, &b);
    stt_buf_t buf = STT_BUF_INIT;
    int rc;
    uint64_t nkeys = 0, bytes = 0;
    do {
        stt_buf_reset(&buf);
        rc = stt_backup_next(b, &buf, 1 << 20);
        if (rc >= 0 && sink_write(&k, buf.base, buf.len) != 0) rc = -1;
        stt_backup_progress(b, &nkeys, &bytes);
        stt_progress_update(&k.pr, bytes, nkeys);
    } while (rc == 1);
    stt_progress_end(&k.pr, bytes, nkeys);
    stt_buf_free(&buf);
    stt_backup_close(b);
    stt_store_close(s);
    if (rc < 0) fprintf(stderr, "settee-backup: reading the store failed (%d)\n", rc);
    return sink_close(&k, rc == 0) == 0 ? 0 : 1;
}

/* ------------------------------------------------------------------ online */

static int to_sink(void *ctx, const char *p, size_t n)
{
    return sink_write(ctx, p, n);
}

static void on_header(void *ctx, const char *line, size_t len)
{
    sink_t *k = ctx;
    static const char h[] = "x-settee-store-size:";
    if (len > sizeof(h) - 1 && strncasecmp(line, h, sizeof(h) - 1) == 0)
        k->pr.total = strtoull(line + sizeof(h) - 1, NULL, 10);
}

static void on_progress(void *ctx)
{
    sink_t *k = ctx;
    stt_progress_update(&k->pr, k->bytes, 0);
}

static int online(const char *url, const char *file)
{
    char full[4096];
    size_t ul = strlen(url);
    while (ul && url[ul - 1] == '/')
        ul--;
    snprintf(full, sizeof(full), "%.*s/_node/_local/_backup", (int)ul, url);
    sink_t k;
    if (sink_open(&k, file) != 0) return 1;
    stt_progress_init(&k.pr, "backup", "keys", 0);
    stt_httpc_result_t res;
    int rc = stt_httpc_get(full, to_sink, on_header, on_progress, &k, &res);
    stt_progress_end(&k.pr, k.bytes, 0);
    int status = 0;
    if (rc != 0) {
        if (res.status >= 200 && res.status <= 299) {
            fprintf(stderr, "settee-backup: the transfer broke off: %.*s\n", (int)res.err.len, res.err.base);
            status = 1;
        } else if (res.status) {
            fprintf(stderr, "settee-backup: %s answered %ld %.*s\n", full, res.status, (int)res.err.len, res.err.base);
            status = 3;
        } else {
            fprintf(stderr, "settee-backup: %s: %.*s\n", full, (int)res.err.len, res.err.base);
            status = 3;
        }
    }
    stt_httpc_result_free(&res);
    if (sink_close(&k, status == 0) != 0 && status == 0) status = 1;
    return status;
}

int main(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "--data-dir") == 0) return offline(argv[2], argv[3]);
    if (argc == 3 && (strncmp(argv[1], "http://", 7) == 0 || strncmp(argv[1], "https://", 8) == 0))
        return online(argv[1], argv[2]);
    usage(stderr);
    return 2;
}
