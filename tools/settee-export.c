/* settee-export: one database as JSON lines (GET /{db}/_export), one line per leaf
 * revision with its history and attachments, loadable into settee or CouchDB with
 * settee-import (or by posting the lines to _bulk_docs with new_edits:false).
 *
 *   settee-export DB_URL FILE      e.g. http://alice:pw@127.0.0.1:5984/userdb-616c696365 alice.jsonl
 *
 * FILE "-" is stdout; otherwise the export goes to FILE.partial and is renamed to
 * FILE once complete. Exit status: 0 done, 1 the export failed (nothing left at
 * FILE), 2 bad arguments, 3 the server refused or cannot be reached. */
#include "src/common/httpc.h"
#include "src/common/progress.h"
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    FILE *out;
    uint64_t bytes, lines;
    bool last_nl;
    stt_progress_t pr;
} exp_t;

static int sink(void *ctx, const char *p, size_t n)
{
    exp_t *x = ctx;
    if (fwrite(p, 1, n, x->out) != n) return -1;
    x->bytes += n;
    for (size_t i = 0; i < n; i++)
        x->lines += p[i] == '\n';
    if (n) x->last_nl = p[n - 1] == '\n';
    return 0;
}

static void progress(void *ctx)
{
    exp_t *x = ctx;
    stt_progress_update(&x->pr, x->bytes, x->lines);
}

int main(int argc, char **argv)
{
    if (argc != 3 || strncmp(argv[1], "http", 4) != 0) {
        fprintf(argc == 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr,
                "usage: settee-export DB_URL FILE\n"
                "  Writes every document of the database at DB_URL (credentials in the URL) to\n"
                "  FILE (\"-\": stdout) as JSON lines, one per leaf revision with its history\n"
                "  and attachments; settee-import loads them into settee or CouchDB.\n"
                "  exit status: 0 done, 1 failed, 2 bad arguments, 3 refused or unreachable\n");
        return argc == 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
    }
    const char *url = argv[1], *file = argv[2];
    char full[4096], tmp[4096];
    size_t ul = strlen(url);
    while (ul && url[ul - 1] == '/')
        ul--;
    snprintf(full, sizeof(full), "%.*s/_export", (int)ul, url);
    exp_t x = {0};
    bool to_stdout = strcmp(file, "-") == 0;
    snprintf(tmp, sizeof(tmp), "%s.partial", file);
    x.out = to_stdout ? stdout : fopen(tmp, "wb");
    if (!x.out) {
        fprintf(stderr, "settee-export: %s: %s\n", tmp, strerror(errno));
        return 1;
    }
    stt_progress_init(&x.pr, "export", "revisions", 0);
    stt_httpc_result_t res;
    int rc = stt_httpc_get(full, sink, NULL, progress, &x, &res);
    stt_progress_end(&x.pr, x.bytes, x.lines);
    int status = 0;
    if (rc != 0) {
        fprintf(stderr, "settee-export: %s: %ld %.*s\n", full, res.status, (int)res.err.len, res.err.base);
        status = res.status >= 200 && res.status <= 299 ? 1 : 3;
    } else if (x.bytes && !x.last_nl) {
        fprintf(stderr, "settee-export: the export ended in the middle of a line\n");
        status = 1;
    }
    stt_httpc_result_free(&res);
    if (to_stdout) return fflush(stdout) == 0 ? status : 1;
    if (fflush(x.out) != 0 || fsync(fileno(x.out)) != 0) status = status ? status : 1;
    fclose(x.out);
    if (status || rename(tmp, file) != 0) {
        unlink(tmp);
        return status ? status : 1;
    }
    return 0;
}
