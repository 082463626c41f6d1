/* settee: configuration, the store, the server uuid, and the HTTP server. */
#include "src/common/codec.h"
#include "src/common/config.h"
#include "src/common/log.h"
#include "src/http/server.h"
#include "security/admins.h"
#include "security/security.h"
#include "src/common/ini.h"
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>
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

/* Every connection, LevelDB file and query process takes a descriptor: the soft
 * limit (often 1024) goes up to the hard one, as servers do. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
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
    raise_fd_limit();
    /* With no --config, settings (and what /_config and the admin setup write) live
     * in DATA_DIR/local.ini */
    static char local_ini[4200];
    bool default_ini = action == STT_CONFIG_RUN && !cfg.config_file[0];
    if (default_ini) {
        snprintf(local_ini, sizeof(local_ini), "%s/local.ini", cfg.data_dir);
        if (access(local_ini, F_OK) == 0) {
            char **av = calloc((size_t)argc + 3, sizeof(*av));
            av[0] = argv[0];
            av[1] = "--config";
            av[2] = local_ini;
            for (int i = 1; i < argc; i++)
                av[i + 2] = argv[i];
            int rc = stt_config_init(&cfg, argc + 2, av, &action, err, sizeof(err));
            free(av);
            if (rc != 0) {
                fprintf(stderr, "settee: %s\n", err);
                return 2;
            }
        }
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
    so.min_free_bytes = cfg.min_free_space;
    so.default_revs_limit = cfg.revs_limit_default;
    so.auto_compact_min_size = cfg.auto_compact_min_size;
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
    stt_ini_t *ini;
    if (stt_ini_open(cfg.config_file[0] ? cfg.config_file : local_ini, &ini, err, sizeof(err)) != 0) {
        fprintf(stderr, "settee: %s\n", err);
        stt_store_close(store);
        return 2;
    }
    stt_log_follow(ini);
    stt_security_memory_settings(ini);
    int rc = stt_admins_setup(ini, cfg.bind, stderr);
    if (rc) {
        stt_ini_free(ini);
        stt_store_close(store);
        return rc;
    }
    stt_auth_t *auth;
    stt_auth_open(store, ini, &auth);
    rc = stt_server_run(&cfg, store, ini, auth, uuid);
    stt_auth_close(auth);
    stt_ini_free(ini);
    stt_store_close(store);
    return rc;
}
