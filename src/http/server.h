/* The HTTP server: N h2o event-loop threads accepting on one address with
 * SO_REUSEPORT, plus a TLS listener (HTTP/2 over ALPN) when a cert and key are
 * configured. Public face of src/http for src/main.c. */
#ifndef STT_SERVER_H
#define STT_SERVER_H
#include "src/common/config.h"
#include "store/store.h"
#include "security/security.h"
#include "src/common/ini.h"

/* Binds, starts the workers and blocks until SIGTERM or SIGINT; then stops
 * accepting, lets in-flight requests finish within cfg->shutdown_timeout_ms and
 * returns. The store stays open (the caller closes it). Returns 0, or non-zero
 * with a message on stderr when it could not start. ini (the live configuration)
 * and auth are borrowed. */
int stt_server_run(const stt_config_t *cfg, stt_store_t *store, stt_ini_t *ini, stt_auth_t *auth, const char *uuid);

#endif
