/* settee-restore: rebuilds a settee data dir from a settee-backup file, then checks
 * it as settee-check does.
 *
 *   settee-restore FILE DATA_DIR     (FILE "-": stdin)
 *
 * DATA_DIR must not hold a store (a restore never overwrites data). The backup's
 * record count and hash are checked before anything is made durable; a backup that
 * fails them, or a store that fails the check, leaves no data dir behind.
 *
 * Exit status: 0 restored and verified, 1 the backup is damaged or the check
 * failed, 2 bad arguments, 3 DATA_DIR holds a store or cannot be written. */
#include "store/store.h"
#include "src/common/err.h"
#include "src/common/progress.h"
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: settee-restore FILE DATA_DIR\n"
               "  Rebuilds the store of a settee-backup FILE (\"-\": stdin) in DATA_DIR, which\n"
               "  must not hold one, and checks it. Start settee on DATA_DIR afterwards.\n"
               "  exit status: 0 restored and verified, 1 damaged backup or failed check,\n"
               "  2 bad arguments, 3 DATA_DIR holds a store or cannot be written\n");
}

typedef struct {
    FILE *in;
    uint64_t bytes;
    stt_progress_t pr;
} src_t;

static long rd(void *ctx, void *buf, size_t len)
{
    src_t *s = ctx;
    size_t n = fread(buf, 1, len, s->in);
    if (n == 0 && ferror(s->in)) return -1;
    s->bytes += n;
    stt_progress_update(&s->pr, s->bytes, 0);
    return (long)n;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

int main(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc != 3) {
        usage(stderr);
        return 2;
    }
    const char *file = argv[1], *dir = argv[2];
    src_t s = {0};
    s.in = strcmp(file, "-") == 0 ? stdin : fopen(file, "rb");
    if (!s.in) {
        fprintf(stderr, "settee-restore: %s: %s\n", file, strerror(errno));
        return 2;
    }
    struct stat st;
    uint64_t total = s.in != stdin && fstat(fileno(s.in), &st) == 0 ? (uint64_t)st.st_size : 0;
    stt_progress_init(&s.pr, "restore", "bytes", total);
    bool made = false;
    if (mkdir(dir, 0755) == 0)
        made = true;
    else if (errno != EEXIST) {
        fprintf(stderr, "settee-restore: %s: %s\n", dir, strerror(errno));
        return 3;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, STT_STORE_SUBDIR);
    if (access(path, F_OK) == 0) {
        fprintf(stderr, "settee-restore: %s already holds a store; restore into an empty directory\n", dir);
        return 3;
    }
    uint64_t nkeys = 0;
    char err[512] = "";
    int rc = stt_restore(dir, rd, &s, &nkeys, err, sizeof(err));
    stt_progress_end(&s.pr, s.bytes, nkeys);
    if (s.in != stdin) fclose(s.in);
    int status = 0;
    if (rc) {
        fprintf(stderr, "settee-restore: %s: %s\n", file, err);
        status = rc == STT_E_BAD_REQUEST ? 1 : 3;
    } else {
        stt_store_opts_t o;
        stt_store_opts_default(&o);
        stt_store_t *store;
        if (stt_store_open(dir, &o, &store, err, sizeof(err)) != 0) {
            fprintf(stderr, "settee-restore: the restored store does not open: %s\n", err);
            status = 1;
        } else {
            stt_verify_t v = {0};
            if (stt_store_verify(store, &v, err, sizeof(err)) != 0) {
                fprintf(stderr, "settee-restore: the restored store fails its check (%llu faults): %s\n",
                        (unsigned long long)v.nfaults, err);
                status = 1;
            } else {
                fprintf(stderr, "settee-restore: %llu keys, %llu databases, %llu docs; check passed\n",
                        (unsigned long long)nkeys, (unsigned long long)v.ndbs, (unsigned long long)v.ndocs);
            }
            stt_store_close(store);
        }
    }
    if (status) {
        nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        if (made) rmdir(dir);
    }
    return status;
}
