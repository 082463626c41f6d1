/* Password hashes as CouchDB writes and checks them: server admins' [admins]
 * values ("-pbkdf2:sha256-...", the 2.x "-pbkdf2-..." and the 1.x "-hashed-...")
 * and the fields of a _users document (couch_passwords.erl, couch_auth_cache.erl,
 * couch_httpd_auth.erl authenticate_int).
 *
 * Two CouchDB habits matter for compatibility. The salt is the 32-character hex
 * TEXT of 16 random bytes, and that text (not the bytes it spells) is what PBKDF2
 * or SHA-1 sees. A derived key is compared as lower-case hex text, so a stored
 * upper-case key never matches. Reading config or documents is the caller's job. */
#include "security/crypto_int.h"
#include "src/common/codec.h"
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>

/* CouchDB's [chttpd_auth] min_iterations / max_iterations defaults */
#define MIN_ITERATIONS 1
#define MAX_ITERATIONS 1000000000u

/* A new salt: 16 random bytes as 32 lower-case hex characters (couch_uuids:random). */
static void new_salt(char salt[33])
{
    unsigned char raw[16];
    stt_random_bytes(raw, sizeof(raw));
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        salt[2 * i] = hex[raw[i] >> 4];
        salt[2 * i + 1] = hex[raw[i] & 15];
    }
    salt[32] = '\0';
}

/* couch_passwords:pbkdf2/4: a key as long as the hash, as lower-case hex. */
static void pbkdf2_hex(int hash, const char *password, size_t len, const char *salt, size_t saltlen,
                       uint32_t iterations, stt_buf_t *out)
{
    unsigned char dk[EVP_MAX_MD_SIZE];
    size_t dklen = (size_t)EVP_MD_get_size(stt__md(hash));
    stt_pbkdf2(hash, password, len, salt, saltlen, iterations, dk, dklen);
    stt_hex_encode(out, dk, dklen);
    OPENSSL_cleanse(dk, sizeof(dk));
}

/* couch_passwords:simple/2: sha1(password ++ salt) as lower-case hex. */
static void simple_hex(const char *password, size_t len, const char *salt, size_t saltlen, stt_buf_t *out)
{
    unsigned char md[20];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) || !EVP_DigestUpdate(ctx, password, len) ||
        !EVP_DigestUpdate(ctx, salt, saltlen) || !EVP_DigestFinal_ex(ctx, md, NULL)) {
        fprintf(stderr, "settee: SHA-1 failed\n");
        abort();
    }
    EVP_MD_CTX_free(ctx);
    stt_hex_encode(out, md, sizeof(md));
}

/* Erlang's list_to_integer on the iterations text (an optional sign, then decimal
 * digits), then CouchDB's verify_iterations bounds. 0, or -1. */
static int parse_iterations(const char *s, size_t len, uint32_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (len > 0 && (s[0] == '+' || s[0] == '-')) neg = s[0] == '-', i = 1;
    if (i == len) return -1;
    uint64_t v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
        if (v > MAX_ITERATIONS) return -1;
    }
    if (neg && v != 0) return -1;
    if (v < MIN_ITERATIONS) return -1;
    *out = (uint32_t)v;
    return 0;
}

/* Computes the hash of password under (scheme, prf, salt, iterations) and compares
 * it with the stored key text. 0 match, -1 otherwise. */
static int check_hash(bool pbkdf2, int prf, uint32_t iterations, const char *salt, size_t saltlen, const char *key,
                      size_t keylen, const char *password, size_t len)
{
    stt_buf_t got = STT_BUF_INIT;
    if (pbkdf2)
        pbkdf2_hex(prf, password, len, salt, saltlen, iterations, &got);
    else
        simple_hex(password, len, salt, saltlen, &got);
    int rc = stt_ct_equal(got.base, got.len, key, keylen) ? 0 : -1;
    OPENSSL_cleanse(got.base, got.len);
    stt_buf_free(&got);
    return rc;
}

/* ------------------------------------------------------------------ server admins */

void stt_pw_hash_admin(const char *password, size_t len, uint32_t iterations, stt_buf_t *out)
{
    char salt[33];
    if (iterations == 0) iterations = STT_PBKDF2_ITERATIONS;
    new_salt(salt);
    stt_buf_appends(out, "-pbkdf2:sha256-");
    pbkdf2_hex(STT_PBKDF2_PRF, password, len, salt, 32, iterations, out);
    stt_buf_appendf(out, ",%s,%u", salt, iterations);
}

/* The prefixes couch_passwords:get_unhashed_admins treats as hashed, and the PRF
 * each one names (couch_auth_cache:get_admin). */
static const struct {
    const char *prefix;
    int prf; /* -1: the "-hashed-" SHA-1 scheme */
} admin_forms[] = {
    {"-hashed-", -1},
    {"-pbkdf2-", STT_HASH_SHA1},
    {"-pbkdf2:sha-", STT_HASH_SHA1},
    {"-pbkdf2:sha224-", STT__HASH_SHA224},
    {"-pbkdf2:sha256-", STT_HASH_SHA256},
    {"-pbkdf2:sha384-", STT_HASH_SHA384},
    {"-pbkdf2:sha512-", STT_HASH_SHA512},
};
#define NFORMS (sizeof(admin_forms) / sizeof(admin_forms[0]))

bool stt_pw_is_hashed(const char *value)
{
    for (size_t i = 0; i < NFORMS; i++)
        if (strncmp(value, admin_forms[i].prefix, strlen(admin_forms[i].prefix)) == 0) return true;
    return false;
}

int stt_pw_check_admin(const char *stored, const char *password, size_t len)
{
    size_t f = 0;
    while (f < NFORMS && strncmp(stored, admin_forms[f].prefix, strlen(admin_forms[f].prefix)) != 0)
        f++;
    if (f == NFORMS) return -1; /* plaintext, or a form CouchDB does not know */
    /* string:tokens(Rest, ","): fields split on ',' with empty fields dropped */
    const char *tok[3];
    size_t toklen[3], ntok = 0;
    size_t want = admin_forms[f].prf < 0 ? 2 : 3;
    for (const char *p = stored + strlen(admin_forms[f].prefix); *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n > 0) {
            if (ntok == want) return -1;
            tok[ntok] = p;
            toklen[ntok++] = n;
        }
        p += n + (comma != NULL);
    }
    if (ntok != want) return -1;
    if (admin_forms[f].prf < 0) return check_hash(false, 0, 0, tok[1], toklen[1], tok[0], toklen[0], password, len);
    uint32_t iterations;
    if (parse_iterations(tok[2], toklen[2], &iterations) != 0) return -1;
    return check_hash(true, admin_forms[f].prf, iterations, tok[1], toklen[1], tok[0], toklen[0], password, len);
}

/* ------------------------------------------------------------------ _users documents */

void stt_pw_hash_user(const char *password, size_t len, uint32_t iterations, stt_user_hash_t *out)
{
    stt_buf_t key = STT_BUF_INIT;
    memset(out, 0, sizeof(*out));
    if (iterations == 0) iterations = STT_PBKDF2_ITERATIONS;
    strcpy(out->scheme, "pbkdf2");
    strcpy(out->prf, "sha256");
    out->iterations = iterations;
    new_salt(out->salt);
    pbkdf2_hex(STT_PBKDF2_PRF, password, len, out->salt, 32, iterations, &key);
    memcpy(out->derived_key, key.base, key.len + 1); /* 64 hex + NUL */
    stt_buf_free(&key);
}

/* CouchDB's defaults for fields a document may lack (couch_httpd_auth
 * authenticate_int): no password_scheme is "simple", no pbkdf2_prf is "sha", no
 * iterations is 10000. The struct cannot say "absent", so "" and 0 stand for it. */
int stt_pw_check_user(const stt_user_hash_t *h, const char *password, size_t len)
{
    const char *salt = h->salt, *key = h->derived_key;
    size_t saltlen = strnlen(salt, sizeof(h->salt)), keylen = strnlen(key, sizeof(h->derived_key));
    if (h->scheme[0] == '\0' || strcmp(h->scheme, "simple") == 0)
        return check_hash(false, 0, 0, salt, saltlen, key, keylen, password, len);
    if (strcmp(h->scheme, "pbkdf2") != 0) return -1;
    int prf = h->prf[0] ? stt__hash_by_name(h->prf, strnlen(h->prf, sizeof(h->prf))) : STT_HASH_SHA1;
    uint32_t iterations = h->iterations ? h->iterations : 10000;
    if (prf < 0 || iterations > MAX_ITERATIONS) return -1;
    return check_hash(true, prf, iterations, salt, saltlen, key, keylen, password, len);
}
