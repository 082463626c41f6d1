/* Private to security/jwt*.c: what jwt.c (the token, its keys and signature) and
 * jwt_claims.c (the claims CouchDB checks and the roles it reads) share. */
#ifndef STT_SECURITY_JWT_INT_H
#define STT_SECURITY_JWT_INT_H
#include "security/crypto_int.h"

/* One of jwtf's checks: a bare name ("exp": required) or {name, "value"} (iss must
 * equal value). Both point into the required_claims text. */
typedef struct {
    const char *name;
    size_t namelen;
    const char *value; /* NULL for a bare name */
    size_t valuelen;
} stt__jwt_check_t;

/* Parses [jwt_auth] required_claims as chttpd_auth:get_configured_claims does and
 * puts jwtf's own alg check first. Returns 0; -1 when the text matches nothing
 * (CouchDB's 500 "JWT is not configured correctly", raised before the token is
 * looked at); -2 for an unknown or repeated check (jwtf:validate_checks, raised
 * once the token has three parts). *checks is arena memory. */
int stt__jwt_checks_parse(stt_arena_t *arena, const char *required_claims, stt__jwt_check_t **checks, size_t *nchecks);

/* jwtf:validate_header, and jwtf:validate_payload plus settee's strict checks.
 * On failure they fill out->status and out->reason and return -1. */
int stt__jwt_check_header(const stt_json_t *header, const stt__jwt_check_t *checks, size_t nchecks,
                          stt_jwt_result_t *out);
int stt__jwt_check_payload(const stt_json_t *payload, const stt__jwt_check_t *checks, size_t nchecks,
                           const stt_jwt_opts_t *opts, stt_jwt_result_t *out);
/* The first check named name, or NULL. */
const stt__jwt_check_t *stt__jwt_check_find(const stt__jwt_check_t *checks, size_t nchecks, const char *name);

/* chttpd_auth's roles claim (roles_claim_path or roles_claim_name) into out->roles
 * (arena); -1 with out->status/reason set when CouchDB refuses the token. */
int stt__jwt_roles(stt_arena_t *arena, const stt_json_t *payload, const stt_jwt_opts_t *opts, stt_jwt_result_t *out);

static inline int stt__jwt_fail(stt_jwt_result_t *out, int status, const char *reason)
{
    out->status = status;
    out->reason = reason;
    return -1;
}

#endif
