/* settee: configuration, the store, the server uuid, and the HTTP server. */
#include "src/common/codec.h"
#include "src/common/config.h"
#include "src/common/log.h"
#include "src/http/server.h"
#include "store/store.h"
#include <stdio.h>
#include <string.h>

#define SETTEE_VERSION "0.1.0"

/* The uuid goes into replication ids: generated once, then kept in the store. */
static int server_uuid(stt_store_t *s, const stt_config_t *cfg, char out[33])
{
    if (cfg->uuid[0]) {
        snprintf(out, 33, "%s", cfg->uuid);
        return 0;
    }
    stt_buf_t v = STT_BUF_INIT;
    int rc = stt_store_meta_get(s, "uuid", &v);
    if (rc == 0 && v.len == 32) {
        memcpy(out, v.base, 32);
        out[32] = '\0';
    } else {
        stt_uuid_random(out);
        rc = stt_store_meta_put(s, "uuid", out, 32);
    }
    stt_buf_free(&v);
    return rc;
}

int main(int argc, char **argv)
{
    static stt_config_t cfg;
    char err[1024];
    int action;
    if (stt_config_init(&cfg, argc, argv, &action, err, sizeof(err)) != 0) {
        fprintf(stderr, "settee: %s\n(try --help)\n", err);
        return 2;
    }
    if (action == STT_CONFIG_HELP) {
        stt_config_usage(stdout);
        return 0;
    }
    if (action == STT_CONFIG_VERSION) {
        printf("settee %s (CouchDB 3.4 API)\n", SETTEE_VERSION);
        return 0;
    }
    stt_log_setup(cfg.log_level, cfg.log_format == STT_LOG_FORMAT_JSON ? STT_LOG_JSON : STT_LOG_TEXT);
    stt_store_opts_t so;
    stt_store_opts_default(&so);
    so.cache_size = cfg.cache_size;
    so.write_buffer_size = cfg.write_buffer_size;
    so.default_revs_limit = cfg.revs_limit_default;
    stt_store_t *store;
    if (stt_store_open(cfg.data_dir, &so, &store, err, sizeof(err)) != 0) {
        fprintf(stderr, "settee: %s\n", err);
        return 1;
    }
    char uuid[33];
    if (server_uuid(store, &cfg, uuid) != 0) {
        fprintf(stderr, "settee: cannot persist the server uuid\n");
        stt_store_close(store);
        return 1;
    }
    int rc = stt_server_run(&cfg, store, uuid);
    stt_store_close(store);
    return rc;
}
