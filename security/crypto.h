/* The cryptographic pieces of CouchDB's security model, as pure functions: password
 * hashes (server admins' "-pbkdf2:..." strings and _users documents' pbkdf2
 * fields), AuthSession cookies, proxy-auth tokens and JWT verification.
 *
 * Nothing here keeps state, reads configuration or touches the store: callers pass
 * the secret, the keys and the clock. Every comparison of a secret-derived value is
 * constant-time (stt_ct_equal). All functions are thread-safe.
 *
 * Ownership: out buffers (stt_buf_t) are appended to and belong to the caller;
 * inputs are borrowed for the call. */
#ifndef STT_SECURITY_CRYPTO_H
#define STT_SECURITY_CRYPTO_H
#include "src/common/arena.h"
#include "src/common/buf.h"
#include "src/common/json.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------ primitives */

/* Constant-time equality of two byte strings (the lengths are not secret). */
bool stt_ct_equal(const void *a, size_t alen, const void *b, size_t blen);
/* len cryptographically random bytes (OpenSSL RAND_bytes); aborts if the RNG fails. */
void stt_random_bytes(void *out, size_t len);
/* base64url without padding (RFC 4648 section 5), as JWTs and CouchDB cookies use. */
void stt_base64url_encode(stt_buf_t *out, const void *data, size_t len);
/* Accepts input with or without '=' padding; 0, or -1 on a character outside the
 * alphabet or an impossible length. */
int stt_base64url_decode(stt_buf_t *out, const char *s, size_t len);

enum { STT_HASH_SHA1, STT_HASH_SHA256, STT_HASH_SHA384, STT_HASH_SHA512 };
/* HMAC into out (at most 64 bytes); returns the MAC length. */
size_t stt_hmac(int hash, const void *key, size_t keylen, const void *msg, size_t msglen, unsigned char out[64]);
/* PBKDF2-HMAC into out (outlen bytes). */
void stt_pbkdf2(int hash, const char *password, size_t pwlen, const char *salt, size_t saltlen, uint32_t iterations,
                unsigned char *out, size_t outlen);

/* ------------------------------------------------------------------ password hashes */

/* CouchDB 3.4's defaults for new hashes. */
#define STT_PBKDF2_ITERATIONS 600000
#define STT_PBKDF2_PRF STT_HASH_SHA256

/* A server admin's password as CouchDB 3.4 writes it into [admins]:
 *     -pbkdf2:sha256-<64 hex derived key>,<32 hex salt>,<iterations>
 * The salt is 16 random bytes written as 32 hex characters, and (as in CouchDB) the
 * hex text itself, not the bytes it spells, is the PBKDF2 salt. */
void stt_pw_hash_admin(const char *password, size_t len, uint32_t iterations, stt_buf_t *out);
/* Whether an [admins] value is already hashed ("-pbkdf2-", "-pbkdf2:", "-hashed-"). */
bool stt_pw_is_hashed(const char *value);
/* Checks a password against an [admins] value in any form CouchDB has written:
 *     -pbkdf2:sha256-<hex>,<salt>,<iterations>   (3.4; also :sha512 etc.)
 *     -pbkdf2-<40 hex sha1 key>,<salt>,<iterations>  (2.x, 3.0-3.3)
 *     -hashed-<40 hex sha1(password + salt)>,<salt>   (1.x "simple")
 * A plaintext value (not hashed yet) never matches. 0 match, -1 no match or
 * malformed. Constant-time in the password. */
int stt_pw_check_admin(const char *stored, const char *password, size_t len);

/* The fields a _users document stores instead of "password". */
typedef struct {
    char scheme[16];       /* "pbkdf2" or "simple" */
    char prf[16];          /* "sha256", "sha", "sha512"...; "" for simple */
    uint32_t iterations;   /* pbkdf2 only */
    char derived_key[129]; /* hex; for "simple": password_sha */
    char salt[129];        /* as stored (hex text) */
} stt_user_hash_t;

/* New pbkdf2-sha256 fields for a password (random salt, STT_PBKDF2_ITERATIONS
 * unless iterations is non-zero). */
void stt_pw_hash_user(const char *password, size_t len, uint32_t iterations, stt_user_hash_t *out);
/* Checks a password against a user doc's fields; 0 match, -1 otherwise (also for an
 * unknown scheme or prf). Constant-time in the password. */
int stt_pw_check_user(const stt_user_hash_t *h, const char *password, size_t len);

/* ------------------------------------------------------------------ AuthSession cookie */

/* CouchDB's cookie value (not the Set-Cookie line): base64url of
 *     NAME ":" HEXTIME ":" HMAC(hash, key = secret + user_salt, msg = NAME ":" HEXTIME)
 * where HEXTIME is the Unix time in upper-case hex as Erlang's integer_to_list(T, 16)
 * writes it, and the MAC is the raw bytes. hash is the first of [chttpd_auth]
 * hash_algorithms (sha256 by default). */
void stt_cookie_make(int hash, const char *secret, size_t secretlen, const char *user_salt, size_t saltlen,
                     const char *name, size_t namelen, uint64_t now, stt_buf_t *out);

/* A cookie value split but not yet verified. */
typedef struct {
    stt_buf_t raw; /* decoded bytes; name and mac point into it */
    const char *name;
    size_t namelen;
    uint64_t timestamp;
    const unsigned char *mac;
    size_t maclen;
} stt_cookie_t;
/* Decodes and splits a cookie value into its three ':'-separated parts (the name is
 * everything before the first ':', the time the next part, the MAC the rest, as
 * CouchDB's re:split with parts=3). Returns 0; -1 when the value is not base64url or
 * has fewer than three parts (CouchDB's 400 "Malformed AuthSession cookie"); -2 when
 * the time part is not hex (CouchDB then ignores the cookie: anonymous). Free with
 * stt_cookie_free whatever it returns. */
int stt_cookie_parse(const char *value, size_t len, stt_cookie_t *out);
void stt_cookie_free(stt_cookie_t *c);
/* Checks the MAC with each of the hashes (CouchDB accepts any algorithm listed in
 * hash_algorithms) and the expiry: valid when now < timestamp + timeout. Returns 0
 * valid, -1 bad MAC, -2 expired. */
int stt_cookie_verify(const stt_cookie_t *c, const int *hashes, size_t nhashes, const char *secret, size_t secretlen,
                      const char *user_salt, size_t saltlen, uint64_t now, uint64_t timeout);

/* ------------------------------------------------------------------ proxy auth */

/* Whether token is the lower-case hex HMAC of name keyed with secret, for any of the
 * hashes (CouchDB 3.4 accepts sha256 and sha1). */
bool stt_proxy_token_ok(const int *hashes, size_t nhashes, const char *secret, size_t secretlen, const char *name,
                        size_t namelen, const char *token, size_t tokenlen);

/* ------------------------------------------------------------------ JWT */

/* One configured key, from a [jwt_keys] line "TYPE:KID = VALUE":
 *   hmac:KID  VALUE is the base64 (standard alphabet) of the secret bytes
 *   rsa:KID   VALUE is a PEM public key, newlines written as "\n" (two characters)
 *   ec:KID    likewise, an EC public key (P-256, P-384, P-521) */
typedef struct {
    const char *name; /* "hmac:_default", "rsa:kid1"... */
    const char *value;
} stt_jwt_key_t;

typedef struct {
    const stt_jwt_key_t *keys;
    size_t nkeys;
    /* [jwt_auth] required_claims as written, e.g. "exp, {iss, \"golden-issuer\"}" ;
     * NULL or "" means CouchDB's default, which requires exp. */
    const char *required_claims;
    /* [jwt_auth] roles_claim_path ("a.b.c", NULL or "" = unset) and roles_claim_name
     * (NULL or "" = "_couchdb.roles", the literal key with a dot) */
    const char *roles_claim_path;
    const char *roles_claim_name;
    uint64_t now;    /* Unix seconds */
    uint64_t leeway; /* seconds of clock skew allowed for exp and nbf */
    /* settee refuses what CouchDB 3.4.3 accepts: a future nbf (after leeway), and an
     * exp, nbf or iat that is present but not a number. false = CouchDB's behaviour. */
    bool strict;
} stt_jwt_opts_t;

typedef struct {
    int status;         /* 0 ok, else 400 or 401 */
    const char *reason; /* CouchDB's reason text on failure, static */
    /* on success, arena memory: */
    const stt_json_t *sub; /* the sub claim as given (a string, or a number, as CouchDB keeps it) */
    const char **roles;    /* roles from the claim (a string claim is one role) */
    size_t nroles;
} stt_jwt_result_t;

/* Verifies a bearer token as CouchDB 3.4's jwtf + chttpd_auth do. The key is looked
 * up as "hmac:KID" / "rsa:KID" / "ec:KID" by the header's alg family and kid
 * (absent kid = "_default"), so a key of one type is never used for another
 * algorithm. Failures, with CouchDB's reasons:
 *   400 "Malformed token"                  not three base64url parts of JSON objects
 *   400 "Missing alg header parameter"     no alg
 *   400 "Invalid alg header parameter"     alg none or not HS/RS/ES 256/384/512
 *   400 "Unknown kid"                      no key of that type and kid
 *   400 "Bad HMAC" / "Bad signature"       signature does not verify
 *   400 "Missing exp claim" / "Missing iss claim" / "Invalid iss claim" ... (required_claims)
 *   401 "exp not in future"                expired (now > exp + leeway)
 *   401 "Token missing sub claim."
 * strict adds: 401 "nbf not in past" for a future nbf, 400 "Invalid exp claim" (or
 * nbf / iat) for a non-numeric time claim. */
void stt_jwt_verify(stt_arena_t *arena, const char *token, size_t len, const stt_jwt_opts_t *opts,
                    stt_jwt_result_t *out);

#endif
