/* GET /_node/{node}/_backup: the whole store as one consistent backup file,
 * streamed while the server keeps serving (store/backup.c has the format).
 * settee's own endpoint (CouchDB has none): server admins only, as the copy holds
 * every database, _users included. settee-backup is its client. */
#include "src/http/http.h"
#include "src/common/err.h"
#include "src/common/log.h"
#include <stdio.h>
#include <stdlib.h>

#define CHUNK (256 * 1024)

static int backup_produce(stt_stream_t *s, stt_buf_t *out)
{
    int rc = stt_backup_next(s->ctx, out, CHUNK);
    if (rc < 0) {
        /* the client sees a body without its end record: the restore refuses it */
        stt_log(STT_LOG_LEVEL_ERROR, "backup failed while reading the store (error %d)", rc);
        return -1;
    }
    return rc;
}

static void backup_stop(stt_stream_t *s)
{
    uint64_t nkeys, bytes;
    stt_backup_progress(s->ctx, &nkeys, &bytes);
    stt_log(STT_LOG_LEVEL_INFO, "backup: %llu keys, %llu bytes sent", (unsigned long long)nkeys,
            (unsigned long long)bytes);
    stt_backup_close(s->ctx);
}

static const stt_stream_ops_t backup_ops = {backup_produce, backup_stop};

void stt_h_backup(stt_hreq_t *r)
{
    stt_backup_t *b;
    if (stt_backup_open(stt__server->store, &b) != 0) {
        stt_reply_error(r, STT_E_IO, NULL);
        return;
    }
    /* for the client's progress line: what the store takes on disk */
    char est[24];
    snprintf(est, sizeof(est), "%llu", (unsigned long long)stt_store_approx_size(stt__server->store));
    stt_stream_start(r, 200, "application/octet-stream", &backup_ops, b,
                     (const char *const[]){"cache-control", "no-store", "content-disposition",
                                           "attachment; filename=\"settee.backup\"", "x-settee-store-size", est, NULL});
}
