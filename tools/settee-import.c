/* settee-import: loads a settee-export file (JSON lines, one doc revision each)
 * into a database of settee or CouchDB, in batches through _bulk_docs with
 * new_edits:false, so revisions, conflicts and deleted leaves arrive as they were.
 *
 *   settee-import FILE DB_URL     (FILE "-": stdin; the database is created if missing)
 *
 * Importing the same file twice changes nothing (the revisions are already there).
 * Exit status: 0 done, 1 some docs were refused (each printed) or the file is not
 * JSON lines, 2 bad arguments, 3 the server refused or cannot be reached. */
#include "src/common/buf.h"
#include "src/common/httpc.h"
#include "src/common/json.h"
#include "src/common/progress.h"
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define BATCH_DOCS 500
#define BATCH_BYTES (4u << 20)

typedef struct {
    const char *url; /* .../_bulk_docs */
    stt_buf_t body;
    size_t ndocs;
    uint64_t sent, refused;
} batch_t;

static void batch_reset(batch_t *b)
{
    stt_buf_reset(&b->body);
    stt_buf_appends(&b->body, "{\"new_edits\":false,\"docs\":[");
    b->ndocs = 0;
}

/* 0, 1 when docs were refused (printed), 3 when the request failed */
static int batch_send(batch_t *b)
{
    if (!b->ndocs) return 0;
    stt_buf_appends(&b->body, "]}");
    stt_buf_t reply = STT_BUF_INIT;
    stt_httpc_result_t res;
    int rc = stt_httpc_json("POST", b->url, b->body.base, b->body.len, &reply, &res);
    int status = 0;
    if (rc != 0 || res.status != 201) {
        fprintf(stderr, "settee-import: %s: %ld %.*s%.*s\n", b->url, res.status, (int)res.err.len, res.err.base,
                (int)(reply.len > 500 ? 500 : reply.len), reply.base ? reply.base : "");
        status = 3;
    } else if (reply.len > 2) {
        /* new_edits:false answers only the refused docs */
        stt_json_t j;
        stt_arena_t a = STT_ARENA_INIT;
        if (stt_json_parse(&a, reply.base, reply.len, &j, NULL, 0) == 0 && j.type == STT_JSON_ARRAY) {
            for (uint32_t i = 0; i < j.len; i++) {
                stt_buf_t line = STT_BUF_INIT;
                stt_json_write(&line, &j.u.items[i]);
                fprintf(stderr, "settee-import: refused: %.*s\n", (int)line.len, line.base);
                stt_buf_free(&line);
            }
            b->refused += j.len;
            status = j.len ? 1 : 0;
        }
        stt_arena_free(&a);
    }
    b->sent += b->ndocs;
    stt_httpc_result_free(&res);
    stt_buf_free(&reply);
    batch_reset(b);
    return status;
}

int main(int argc, char **argv)
{
    if (argc != 3 || strncmp(argv[2], "http", 4) != 0) {
        fprintf(argc == 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr,
                "usage: settee-import FILE DB_URL\n"
                "  Loads a settee-export FILE (\"-\": stdin) into the database at DB_URL\n"
                "  (settee or CouchDB; credentials in the URL; created if missing) through\n"
                "  _bulk_docs with new_edits:false.\n"
                "  exit status: 0 done, 1 docs refused or bad input, 2 bad arguments,\n"
                "  3 refused or unreachable\n");
        return argc == 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
    }
    const char *file = argv[1], *url = argv[2];
    FILE *in = strcmp(file, "-") == 0 ? stdin : fopen(file, "rb");
    if (!in) {
        fprintf(stderr, "settee-import: %s: %s\n", file, strerror(errno));
        return 2;
    }
    char dburl[4096], bulk[4200];
    size_t ul = strlen(url);
    while (ul && url[ul - 1] == '/')
        ul--;
    snprintf(dburl, sizeof(dburl), "%.*s", (int)ul, url);
    snprintf(bulk, sizeof(bulk), "%s/_bulk_docs", dburl);
    /* the database: created when missing (412: it exists) */
    stt_buf_t reply = STT_BUF_INIT;
    stt_httpc_result_t res;
    if (stt_httpc_json("PUT", dburl, NULL, 0, &reply, &res) != 0 ||
        (res.status != 201 && res.status != 202 && res.status != 412)) {
        fprintf(stderr, "settee-import: PUT %s: %ld %.*s%.*s\n", dburl, res.status, (int)res.err.len, res.err.base,
                (int)reply.len, reply.base ? reply.base : "");
        return 3;
    }
    stt_buf_free(&reply);
    stt_httpc_result_free(&res);
    struct stat st;
    stt_progress_t pr;
    stt_progress_init(&pr, "import", "revisions",
                      in != stdin && fstat(fileno(in), &st) == 0 ? (uint64_t)st.st_size : 0);
    batch_t b = {.url = bulk};
    batch_reset(&b);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    uint64_t lineno = 0, bytes = 0;
    int status = 0;
    bool stop = false;
    while (!stop && (n = getline(&line, &cap, in)) > 0) {
        lineno++;
        bytes += (uint64_t)n;
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            n--;
        if (!n) continue;
        /* each line must be one JSON object: checked here so that a damaged file
         * is named by its line, not by a 400 for a whole batch */
        stt_arena_t a = STT_ARENA_INIT;
        stt_json_t j;
        bool ok = stt_json_parse(&a, line, (size_t)n, &j, NULL, 0) == 0 && j.type == STT_JSON_OBJECT;
        stt_arena_free(&a);
        if (!ok) {
            fprintf(stderr, "settee-import: %s line %llu is not a JSON object; nothing after line %llu sent\n", file,
                    (unsigned long long)lineno, (unsigned long long)(lineno - 1 - b.ndocs));
            status = 1;
            stop = true;
            break;
        }
        if (b.ndocs) stt_buf_appendc(&b.body, ',');
        stt_buf_append(&b.body, line, (size_t)n);
        b.ndocs++;
        if (b.ndocs >= BATCH_DOCS || b.body.len >= BATCH_BYTES) {
            int s = batch_send(&b);
            if (s > status) status = s;
            if (s == 3) stop = true;
        }
        stt_progress_update(&pr, bytes, b.sent + b.ndocs);
    }
    if (!stop) {
        int s = batch_send(&b);
        if (s > status) status = s;
    }
    stt_progress_end(&pr, bytes, b.sent);
    free(line);
    if (in != stdin) fclose(in);
    stt_buf_free(&b.body);
    if (b.refused)
        fprintf(stderr, "settee-import: %llu of %llu revisions refused\n", (unsigned long long)b.refused,
                (unsigned long long)b.sent);
    return status;
}
