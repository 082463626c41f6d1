/* The primitives under settee's security model: constant-time comparison, random
 * bytes, base64url, HMAC and PBKDF2, all thin wrappers over OpenSSL's one-shot
 * calls. No policy lives here (which hash, how many iterations, what a cookie
 * looks like): password.c, cookie.c, proxy.c and jwt.c decide that. */
#include "security/crypto_int.h"
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>

/* ------------------------------------------------------------------ hashes */

const EVP_MD *stt__md(int hash)
{
    switch (hash) {
    case STT_HASH_SHA1:
        return EVP_sha1();
    case STT_HASH_SHA256:
        return EVP_sha256();
    case STT_HASH_SHA384:
        return EVP_sha384();
    case STT_HASH_SHA512:
        return EVP_sha512();
    case STT__HASH_SHA224:
        return EVP_sha224();
    }
    fprintf(stderr, "settee: unknown hash id %d\n", hash);
    abort();
}

int stt__hash_by_name(const char *name, size_t namelen)
{
    static const struct {
        const char *name;
        int hash;
    } names[] = {
        {"sha", STT_HASH_SHA1},      {"sha224", STT__HASH_SHA224}, {"sha256", STT_HASH_SHA256},
        {"sha384", STT_HASH_SHA384}, {"sha512", STT_HASH_SHA512},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i].name) == namelen && memcmp(names[i].name, name, namelen) == 0) return names[i].hash;
    return -1;
}

/* ------------------------------------------------------------------ comparison and randomness */

bool stt_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    if (alen != blen) return false;
    if (alen == 0) return true;
    return CRYPTO_memcmp(a, b, alen) == 0;
}

void stt_random_bytes(void *out, size_t len)
{
    unsigned char *p = out;
    while (len > 0) { /* RAND_bytes takes an int */
        int n = len > INT_MAX ? INT_MAX : (int)len;
        if (RAND_bytes(p, n) != 1) {
            fprintf(stderr, "settee: the random number generator failed\n");
            abort();
        }
        p += n;
        len -= (size_t)n;
    }
}

/* ------------------------------------------------------------------ base64url */

static const char b64url_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void stt_base64url_encode(stt_buf_t *out, const void *data, size_t len)
{
    const unsigned char *p = data;
    stt_buf_reserve(out, len / 3 * 4 + 4);
    char *o = out->base + out->len;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        *o++ = b64url_alphabet[v >> 18];
        *o++ = b64url_alphabet[(v >> 12) & 63];
        *o++ = b64url_alphabet[(v >> 6) & 63];
        *o++ = b64url_alphabet[v & 63];
    }
    if (len - i == 1) {
        unsigned v = (unsigned)p[i] << 16;
        *o++ = b64url_alphabet[v >> 18];
        *o++ = b64url_alphabet[(v >> 12) & 63];
    } else if (len - i == 2) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;
        *o++ = b64url_alphabet[v >> 18];
        *o++ = b64url_alphabet[(v >> 12) & 63];
        *o++ = b64url_alphabet[(v >> 6) & 63];
    }
    out->len = (size_t)(o - out->base);
    out->base[out->len] = '\0';
}

static int b64url_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

/* Like the b64url NIF: whole quanta of four, then a tail of two or three
 * characters; the spare bits of the tail are not checked. */
int stt__b64url_decode_nopad(stt_buf_t *out, const char *s, size_t len)
{
    if (len % 4 == 1) return -1;
    stt_buf_reserve(out, len / 4 * 3 + 3);
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_val((unsigned char)s[i]);
        if (v < 0) return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out->base[out->len++] = (char)((acc >> bits) & 0xff);
        }
    }
    out->base[out->len] = '\0';
    return 0;
}

int stt_base64url_decode(stt_buf_t *out, const char *s, size_t len)
{
    size_t pad = 0;
    while (pad < len && pad < 3 && s[len - 1 - pad] == '=')
        pad++;
    if (pad > 2 || (pad > 0 && (len % 4 != 0 || (len - pad) % 4 < 2))) return -1;
    return stt__b64url_decode_nopad(out, s, len - pad);
}

/* ------------------------------------------------------------------ HMAC and PBKDF2 */

size_t stt_hmac(int hash, const void *key, size_t keylen, const void *msg, size_t msglen, unsigned char out[64])
{
    unsigned int maclen = 0;
    if (keylen > INT_MAX) {
        fprintf(stderr, "settee: HMAC key of %zu bytes\n", keylen);
        abort();
    }
    /* OpenSSL refuses a NULL key even when it is empty */
    if (!HMAC(stt__md(hash), keylen ? key : "", (int)keylen, msglen ? msg : (const void *)"", msglen, out, &maclen)) {
        fprintf(stderr, "settee: HMAC failed\n");
        abort();
    }
    return maclen;
}

void stt_pbkdf2(int hash, const char *password, size_t pwlen, const char *salt, size_t saltlen, uint32_t iterations,
                unsigned char *out, size_t outlen)
{
    if (pwlen > INT_MAX || saltlen > INT_MAX || outlen > INT_MAX || iterations == 0 || iterations > INT_MAX) {
        fprintf(stderr, "settee: PBKDF2 arguments out of range\n");
        abort();
    }
    if (!PKCS5_PBKDF2_HMAC(pwlen ? password : "", (int)pwlen, (const unsigned char *)(saltlen ? salt : ""),
                           (int)saltlen, (int)iterations, stt__md(hash), (int)outlen, out)) {
        fprintf(stderr, "settee: PBKDF2 failed\n");
        abort();
    }
}
