/* settee-check: verifies a settee data dir offline, through store.h only.
 *
 *   settee-check [-q] DATA_DIR
 *
 * Opens the store (the server must not be running: LevelDB locks it) with LevelDB's
 * paranoid checks and runs stt_store_verify, which lists what it checks: rev trees,
 * the by-seq index against the docs, counters against a full scan, attachment bytes
 * against their md5 and reference counts, and that every key belongs to a live
 * database. Like the server, opening finishes the sweep of databases deleted before
 * a crash. Each fault is printed on stderr; a summary goes to stdout.
 *
 * Exit status: 0 clean, 1 faults found (unreadable records included), 2 bad
 * arguments, 3 the store cannot be opened. */
#include "store/store.h"
#include "src/common/err.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_PRINTED 1000 /* faults printed; the count goes on */

static void usage(FILE *f)
{
    fprintf(f, "usage: settee-check [-q] DATA_DIR\n"
               "  Verifies every database of a settee data dir (the server must be stopped).\n"
               "  -q  print only faults\n"
               "  exit status: 0 clean, 1 faults found, 2 bad arguments, 3 cannot open the store\n");
}

typedef struct {
    unsigned long printed;
} faults_t;

static void on_fault(void *ctx, const char *msg)
{
    faults_t *f = ctx;
    if (f->printed++ < MAX_PRINTED) fprintf(stderr, "settee-check: %s\n", msg);
}

int main(int argc, char **argv)
{
    bool quiet = false;
    int i = 1;
    if (i < argc && strcmp(argv[i], "-q") == 0) {
        quiet = true;
        i++;
    }
    if (i < argc && (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc - i != 1 || argv[i][0] == '-') {
        usage(stderr);
        return 2;
    }
    const char *dir = argv[i];
    /* stt_store_open creates what is missing; a checker must not */
    char current[4200];
    snprintf(current, sizeof(current), "%s/store/CURRENT", dir);
    struct stat st;
    if (stat(current, &st) != 0) {
        fprintf(stderr, "settee-check: %s is not a settee data dir (%s: %s)\n", dir, current, strerror(errno));
        return 2;
    }

    stt_store_opts_t o;
    stt_store_opts_default(&o);
    o.paranoid = true;
    stt_store_t *s;
    char err[1024];
    if (stt_store_open(dir, &o, &s, err, sizeof(err)) != 0) {
        fprintf(stderr, "settee-check: %s\n", err);
        return 3;
    }
    faults_t f = {0};
    stt_verify_t v = {.on_fault = on_fault, .ctx = &f};
    err[0] = '\0';
    int rc = stt_store_verify(s, &v, err, sizeof(err));
    stt_store_close(s);
    if (f.printed > MAX_PRINTED)
        fprintf(stderr, "settee-check: ... %lu more faults not shown\n", f.printed - MAX_PRINTED);
    if (!quiet || rc)
        printf("%s: %llu databases, %llu docs, %llu leaves, %llu attachment refs, %llu local docs: %llu faults\n",
               rc == 0 ? "ok" : "FAILED", (unsigned long long)v.ndbs, (unsigned long long)v.ndocs,
               (unsigned long long)v.nleaves, (unsigned long long)v.natts, (unsigned long long)v.nlocal,
               (unsigned long long)v.nfaults);
    if (v.nunreferenced && (!quiet || rc))
        printf("note: %llu unreferenced attachment bytes (an upload cut short; the db's next compaction "
               "removes them)\n",
               (unsigned long long)v.nunreferenced);
    return rc ? 1 : 0;
}
