/* AuthSession cookie values, made and checked as CouchDB 3.4's couch_httpd_auth
 * does (cookie_auth_cookie, cookie_authentication_handler):
 *
 *     value   = base64url_nopad(NAME ":" HEXTIME ":" MAC)
 *     HEXTIME = integer_to_list(UnixTime, 16)        upper-case hex, no leading zeros
 *     MAC     = HMAC(hash, secret ++ user_salt, NAME ":" HEXTIME)   raw bytes
 *
 * The MAC covers the time exactly as the cookie spells it, so verification uses
 * the decoded text, never a re-formatted timestamp. Looking the user up (for the
 * salt) and building the Set-Cookie line are the caller's job. */
#include "security/crypto_int.h"
#include <openssl/crypto.h>
#include <stdlib.h>

void stt_cookie_make(int hash, const char *secret, size_t secretlen, const char *user_salt, size_t saltlen,
                     const char *name, size_t namelen, uint64_t now, stt_buf_t *out)
{
    stt_buf_t data = STT_BUF_INIT, key = STT_BUF_INIT;
    stt_buf_append(&data, name, namelen);
    stt_buf_appendf(&data, ":%llX", (unsigned long long)now);
    stt_buf_append(&key, secret, secretlen);
    stt_buf_append(&key, user_salt, saltlen);
    unsigned char mac[64];
    size_t maclen = stt_hmac(hash, key.base, key.len, data.base, data.len, mac);
    stt_buf_appendc(&data, ':');
    stt_buf_append(&data, mac, maclen);
    stt_base64url_encode(out, data.base, data.len);
    stt_buf_free(&data);
    stt_buf_free(&key);
}

/* erlang:list_to_integer(TimeStr, 16): an optional sign, then at least one hex
 * digit of either case. A negative time (always expired) and one past 64 bits are
 * refused too: CouchDB would ignore the first, and only a forged MAC could carry
 * the second. 0, or -1. */
static int parse_hex_time(const char *s, size_t len, uint64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (len > 0 && (s[0] == '+' || s[0] == '-')) neg = s[0] == '-', i = 1;
    if (i == len) return -1;
    uint64_t v = 0;
    for (; i < len; i++) {
        char c = s[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (unsigned)(c - 'A' + 10);
        else
            return -1;
        if (v >> 60) return -1;
        v = v << 4 | d;
    }
    if (neg && v != 0) return -1;
    *out = v;
    return 0;
}

int stt_cookie_parse(const char *value, size_t len, stt_cookie_t *out)
{
    memset(out, 0, sizeof(*out));
    if (stt__b64url_decode_nopad(&out->raw, value, len) != 0) return -1;
    if (!out->raw.base) stt_buf_append(&out->raw, "", 0); /* an empty value decodes to nothing */
    const char *s = out->raw.base, *end = s + out->raw.len;
    /* re:split(AuthSession, ":", [{parts, 3}]) must give three parts */
    const char *c1 = memchr(s, ':', out->raw.len);
    if (!c1) return -1;
    const char *c2 = memchr(c1 + 1, ':', (size_t)(end - c1 - 1));
    if (!c2) return -1;
    out->name = s;
    out->namelen = (size_t)(c1 - s);
    out->mac = (const unsigned char *)c2 + 1;
    out->maclen = (size_t)(end - c2 - 1);
    if (parse_hex_time(c1 + 1, (size_t)(c2 - c1 - 1), &out->timestamp) != 0) return -2;
    return 0;
}

void stt_cookie_free(stt_cookie_t *c)
{
    stt_buf_free(&c->raw);
    memset(c, 0, sizeof(*c));
}

int stt_cookie_verify(const stt_cookie_t *c, const int *hashes, size_t nhashes, const char *secret, size_t secretlen,
                      const char *user_salt, size_t saltlen, uint64_t now, uint64_t timeout)
{
    if (!c->mac) return -1; /* not a parsed cookie */
    /* the signed text is NAME ":" HEXTIME as sent: everything before the last ':' */
    size_t datalen = (size_t)((const char *)c->mac - c->raw.base) - 1;
    stt_buf_t key = STT_BUF_INIT;
    stt_buf_append(&key, secret, secretlen);
    stt_buf_append(&key, user_salt, saltlen);
    bool ok = false;
    for (size_t i = 0; i < nhashes; i++) { /* lists:any, but no early exit */
        unsigned char mac[64];
        size_t maclen = stt_hmac(hashes[i], key.base, key.len, c->raw.base, datalen, mac);
        ok |= stt_ct_equal(mac, maclen, c->mac, c->maclen);
    }
    OPENSSL_cleanse(key.base, key.len);
    stt_buf_free(&key);
    if (!ok) return -1;
    /* valid while now < timestamp + timeout, without overflowing */
    if (now >= c->timestamp && now - c->timestamp >= timeout) return -2;
    return 0;
}
