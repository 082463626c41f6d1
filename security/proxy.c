/* Proxy authentication tokens (couch_httpd_auth proxy_auth_user with
 * proxy_use_secret = true): X-Auth-CouchDB-Token must be the lower-case hex HMAC of
 * the user name keyed with [chttpd_auth] secret, under any of hash_algorithms.
 * Reading the headers and the roles is the caller's job. */
#include "security/crypto_int.h"
#include "src/common/codec.h"
#include <stdlib.h>

bool stt_proxy_token_ok(const int *hashes, size_t nhashes, const char *secret, size_t secretlen, const char *name,
                        size_t namelen, const char *token, size_t tokenlen)
{
    bool ok = false;
    for (size_t i = 0; i < nhashes; i++) { /* lists:any, but no early exit */
        unsigned char mac[64];
        size_t maclen = stt_hmac(hashes[i], secret, secretlen, name, namelen, mac);
        stt_buf_t hex = STT_BUF_INIT;
        stt_hex_encode(&hex, mac, maclen);
        ok |= stt_ct_equal(hex.base, hex.len, token, tokenlen);
        stt_buf_free(&hex);
    }
    return ok;
}
