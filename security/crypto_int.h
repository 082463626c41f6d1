/* Private to security/: what the crypto files share and the public contract
 * (security/crypto.h) does not promise. Nothing outside security/ includes this,
 * except the unit test of these files. */
#ifndef STT_SECURITY_CRYPTO_INT_H
#define STT_SECURITY_CRYPTO_INT_H
#include "security/crypto.h"
#include <openssl/evp.h>

/* SHA-224, which CouchDB accepts as a PBKDF2 PRF ("-pbkdf2:sha224-", pbkdf2_prf
 * "sha224") but crypto.h does not name. Valid wherever a hash id is taken. */
#define STT__HASH_SHA224 100

/* The OpenSSL digest for a hash id; aborts on an id that is none of ours (a
 * programming error, never input). */
const EVP_MD *stt__md(int hash);
/* A CouchDB/Erlang hash name ("sha", "sha224", "sha256", "sha384", "sha512",
 * namelen bytes) to its id; -1 when unknown. */
int stt__hash_by_name(const char *name, size_t namelen);

/* base64url as CouchDB's b64url NIF decodes it (cookies and JWT parts): the
 * URL-safe alphabet and no '=' at all; a length of 4n+1 is impossible. Appends to
 * out; 0, or -1 (out may then hold partial output). */
int stt__b64url_decode_nopad(stt_buf_t *out, const char *s, size_t len);

#endif
