/* JWT bearer tokens, verified as CouchDB 3.4.3's jwt_authentication_handler,
 * jwtf and jwtf_keystore do. This file holds the token's structure, the keys and
 * the signature; which claims are checked and where roles come from is
 * jwt_claims.c's.
 *
 * The order of the steps decides which error a bad token gets, so it follows
 * CouchDB's exactly:
 *   1. required_claims parsed            500 when it matches nothing
 *   2. three '.'-separated parts         400 "Malformed token"
 *   3. the checks themselves             500 for an unknown or repeated check
 *   4. header: base64url, JSON, object   400 "Malformed token" / "Not an object"
 *   5. typ (when listed), alg            400 "Missing/Invalid alg header parameter"
 *   6. payload: base64url, JSON, object  400 "Malformed token" / "Not an object"
 *   7. iss, iat, nbf, exp                400 "Missing/Invalid X claim", 401 "... not in ..."
 *   8. the key "TYPE:KID" for the alg    400 "Unknown kid", "Not a valid key", ...
 *   9. the signature                     400 "Bad HMAC" / "Bad signature"
 *  10. roles                             400 "Malformed token", 404, 500
 *  11. sub                               401 "Token missing sub claim."
 * So an expired token with a bad signature says "exp not in future", and the key is
 * chosen by the alg's family: an HS256 token never meets an RSA key (no algorithm
 * confusion), and an RS256 token without kid looks for "rsa:_default".
 *
 * Base64url here is the b64url NIF's: no '=' padding. A signature that does not
 * decode is a "Bad HMAC" as in CouchDB, and a "Bad signature" for RSA/EC (where
 * CouchDB crashes with a 500). ES signatures are JOSE's r||s, split in half. */
#include "security/jwt_int.h"
#include "src/common/codec.h"
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>

enum { KTY_HMAC, KTY_RSA, KTY_EC };
static const char *const kty_names[] = {"hmac", "rsa", "ec"};

/* ------------------------------------------------------------------ keys */

/* The configured value for "TYPE:KID", or NULL. */
static const char *find_key(const stt_jwt_opts_t *opts, int kty, const char *kid, size_t kidlen)
{
    size_t tl = strlen(kty_names[kty]);
    for (size_t i = 0; i < opts->nkeys; i++) {
        const char *name = opts->keys[i].name;
        if (name && strlen(name) == tl + 1 + kidlen && memcmp(name, kty_names[kty], tl) == 0 && name[tl] == ':' &&
            memcmp(name + tl + 1, kid, kidlen) == 0)
            return opts->keys[i].value;
    }
    return NULL;
}

/* jwtf_keystore:pem_decode: "\n" written as two characters becomes a newline; the
 * text must hold exactly one PEM block, a public key of the wanted type. Returns
 * the key, or NULL with *reason set. */
static EVP_PKEY *public_key(const char *value, int kty, const char **reason)
{
    stt_buf_t pem = STT_BUF_INIT;
    for (const char *p = value; *p; p++) {
        if (p[0] == '\\' && p[1] == 'n')
            stt_buf_appendc(&pem, '\n'), p++;
        else
            stt_buf_appendc(&pem, *p);
    }
    EVP_PKEY *pkey = NULL;
    char *name = NULL, *header = NULL;
    unsigned char *der = NULL;
    long derlen = 0;
    int nblocks = 0;
    BIO *bio = BIO_new_mem_buf(pem.base ? pem.base : "", (int)pem.len);
    if (!bio) abort();
    for (;;) {
        char *n = NULL, *h = NULL;
        unsigned char *d = NULL;
        long dl = 0;
        if (!PEM_read_bio(bio, &n, &h, &d, &dl)) break;
        if (nblocks++ == 0) {
            name = n, header = h, der = d, derlen = dl;
        } else {
            OPENSSL_free(n), OPENSSL_free(h), OPENSSL_free(d);
        }
    }
    *reason = "Not a valid key";
    if (nblocks != 1) goto exit;
    const unsigned char *p = der;
    if (strcmp(name, "PUBLIC KEY") == 0)
        pkey = d2i_PUBKEY(NULL, &p, derlen);
    else if (strcmp(name, "RSA PUBLIC KEY") == 0)
        pkey = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, derlen);
    else
        *reason = kty == KTY_RSA ? "not an RSA public key" : "not an EC public key";
    if (pkey && !EVP_PKEY_is_a(pkey, kty == KTY_RSA ? "RSA" : "EC")) {
        *reason = kty == KTY_RSA ? "not an RSA public key" : "not an EC public key";
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
exit:
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(der);
    BIO_free(bio);
    stt_buf_free(&pem);
    ERR_clear_error(); /* PEM_read_bio ends every scan with an error */
    return pkey;
}

/* ------------------------------------------------------------------ signatures */

static const struct {
    const char *alg;
    int kty;
    int hash;
} algs[] = {
    {"HS256", KTY_HMAC, STT_HASH_SHA256}, {"HS384", KTY_HMAC, STT_HASH_SHA384}, {"HS512", KTY_HMAC, STT_HASH_SHA512},
    {"RS256", KTY_RSA, STT_HASH_SHA256},  {"RS384", KTY_RSA, STT_HASH_SHA384},  {"RS512", KTY_RSA, STT_HASH_SHA512},
    {"ES256", KTY_EC, STT_HASH_SHA256},   {"ES384", KTY_EC, STT_HASH_SHA384},   {"ES512", KTY_EC, STT_HASH_SHA512},
};

/* JOSE r||s to the DER ECDSA-Sig-Value OpenSSL verifies (jwtf:jose_to_der). */
static bool jose_to_der(const unsigned char *sig, size_t siglen, stt_buf_t *der)
{
    if (siglen == 0 || siglen % 2 != 0 || siglen > 264) return false;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, (int)(siglen / 2), NULL), *s = BN_bin2bn(sig + siglen / 2, (int)(siglen / 2), NULL);
    if (!es || !r || !s) abort();
    ECDSA_SIG_set0(es, r, s);
    unsigned char *p = NULL;
    int n = i2d_ECDSA_SIG(es, &p);
    ECDSA_SIG_free(es);
    if (n <= 0) return false;
    stt_buf_append(der, p, (size_t)n);
    OPENSSL_free(p);
    return true;
}

static bool pkey_verify(EVP_PKEY *pkey, int hash, const void *msg, size_t msglen, const unsigned char *sig,
                        size_t siglen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx) abort();
    bool ok = EVP_DigestVerifyInit(ctx, NULL, stt__md(hash), NULL, pkey) == 1 &&
              EVP_DigestVerify(ctx, sig, siglen, msg, msglen) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

/* jwtf:key and jwtf:verify. 0, or -1 with out set. */
static int verify_signature(const stt_json_t *header, const char *token, size_t msglen, const char *sig64,
                            size_t sig64len, const stt__jwt_check_t *checks, size_t nchecks, const stt_jwt_opts_t *opts,
                            stt_jwt_result_t *out)
{
    const stt_json_t *alg = stt_json_get(header, "alg"); /* a valid alg: stt__jwt_check_header */
    size_t a = 0;
    while (strcmp(algs[a].alg, alg->u.s) != 0)
        a++;
    int kty = algs[a].kty;

    const stt_json_t *kid = stt_json_get(header, "kid");
    const stt__jwt_check_t *kidc = stt__jwt_check_find(checks, nchecks, "kid");
    if (kidc && !kidc->value && !kid) return stt__jwt_fail(out, 400, "Missing kid claim");
    /* a kid that is not a string crashes CouchDB's keystore (500); no key has it */
    if (kid && !stt_json_is_str(kid)) return stt__jwt_fail(out, 400, "Unknown kid");
    const char *value = kid ? find_key(opts, kty, kid->u.s, kid->len) : find_key(opts, kty, "_default", 8);
    if (!value) return stt__jwt_fail(out, 400, "Unknown kid");

    int rc = -1;
    stt_buf_t secret = STT_BUF_INIT, sig = STT_BUF_INIT, der = STT_BUF_INIT;
    EVP_PKEY *pkey = NULL;
    const char *reason;
    bool sig_ok = stt__b64url_decode_nopad(&sig, sig64, sig64len) == 0;
    const unsigned char *sigp = (const unsigned char *)sig.base;
    if (kty == KTY_HMAC) {
        if (stt_base64_decode(&secret, value, strlen(value)) != 0) {
            stt__jwt_fail(out, 400, "Not a valid key");
            goto exit;
        }
        unsigned char mac[64];
        size_t maclen = stt_hmac(algs[a].hash, secret.base, secret.len, token, msglen, mac);
        if (!sig_ok || !stt_ct_equal(mac, maclen, sig.base, sig.len)) {
            stt__jwt_fail(out, 400, "Bad HMAC");
            goto exit;
        }
    } else {
        if (!(pkey = public_key(value, kty, &reason))) {
            stt__jwt_fail(out, 400, reason);
            goto exit;
        }
        size_t siglen = sig.len;
        if (sig_ok && kty == KTY_EC) {
            sig_ok = jose_to_der(sigp, siglen, &der);
            sigp = (const unsigned char *)der.base, siglen = der.len;
        }
        if (!sig_ok || !pkey_verify(pkey, algs[a].hash, token, msglen, sigp, siglen)) {
            stt__jwt_fail(out, 400, "Bad signature");
            goto exit;
        }
    }
    rc = 0;
exit:
    EVP_PKEY_free(pkey);
    if (secret.base) OPENSSL_cleanse(secret.base, secret.len);
    stt_buf_free(&secret);
    stt_buf_free(&sig);
    stt_buf_free(&der);
    return rc;
}

/* ------------------------------------------------------------------ verification */

/* jwtf:decode_b64url_json and props: 0, or -1 with out set. jiffy decodes without
 * dedupe_keys there, so a duplicated claim keeps its first value (proplists). */
static int decode_part(stt_arena_t *arena, const char *s, size_t len, stt_json_t *json, stt_jwt_result_t *out)
{
    stt_buf_t text = STT_BUF_INIT;
    int rc = stt__b64url_decode_nopad(&text, s, len) == 0 && text.base &&
                     stt_json_parse_opts(arena, text.base, text.len, 0, json, NULL, 0) == 0
                 ? 0
                 : stt__jwt_fail(out, 400, "Malformed token");
    stt_buf_free(&text);
    if (rc == 0 && json->type != STT_JSON_OBJECT) rc = stt__jwt_fail(out, 400, "Not an object");
    return rc;
}

void stt_jwt_verify(stt_arena_t *arena, const char *token, size_t len, const stt_jwt_opts_t *opts,
                    stt_jwt_result_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!token) token = "", len = 0;
    stt__jwt_check_t *checks;
    size_t nchecks;
    int crc = stt__jwt_checks_parse(arena, opts->required_claims, &checks, &nchecks);
    if (crc == -1) {
        stt__jwt_fail(out, 500, "JWT is not configured correctly");
        return;
    }

    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', (size_t)(token + len - dot1 - 1)) : NULL;
    if (!dot2 || memchr(dot2 + 1, '.', (size_t)(token + len - dot2 - 1))) {
        stt__jwt_fail(out, 400, "Malformed token");
        return;
    }
    if (crc != 0) {
        stt__jwt_fail(out, 500, "JWT is not configured correctly");
        return;
    }

    stt_json_t header, payload;
    if (decode_part(arena, token, (size_t)(dot1 - token), &header, out) != 0 ||
        stt__jwt_check_header(&header, checks, nchecks, out) != 0 ||
        decode_part(arena, dot1 + 1, (size_t)(dot2 - dot1 - 1), &payload, out) != 0 ||
        stt__jwt_check_payload(&payload, checks, nchecks, opts, out) != 0 ||
        verify_signature(&header, token, (size_t)(dot2 - token), dot2 + 1, (size_t)(token + len - dot2 - 1), checks,
                         nchecks, opts, out) != 0 ||
        stt__jwt_roles(arena, &payload, opts, out) != 0)
        goto fail;

    const stt_json_t *sub = stt_json_get(&payload, "sub");
    if (!sub) {
        stt__jwt_fail(out, 401, "Token missing sub claim.");
        goto fail;
    }
    out->sub = sub; /* a member of the payload: arena memory */
    return;
fail:
    out->roles = NULL;
    out->nroles = 0;
}
