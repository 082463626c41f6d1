/* Unit tests for security/crypto.c, password.c, cookie.c, proxy.c, jwt.c and
 * jwt_claims.c: the contract of security/crypto.h.
 *
 * Vectors come from outside settee: RFC 4231/2202 (HMAC), RFC 6070 and RFC 7914
 * (PBKDF2), CouchDB-format admin and user hashes computed with Python's
 * hashlib.pbkdf2_hmac (the salt is the hex TEXT, used as bytes), cookies computed
 * with Python's hmac, proxy tokens recorded from CouchDB 3.4.3
 * (couchdb-golden/auth.jsonl), and the JWT keys of couchdb-golden/auth-keys.json.
 * JWTs are signed here with OpenSSL directly (HMAC, EVP_DigestSign), not with the
 * code under test; the ES256 key is generated per run. The JWT cases replay the
 * jwt_* lines of auth.jsonl (status and reason), then the edges around them.
 *
 * Each test walks a table of numbered cases; a failure names its case. Run one test
 * alone by naming it: test_security_crypto jwt_cases */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "security/crypto.h"
#include "security/crypto_int.h"
#include "src/common/codec.h"
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A literal and its length, so data may hold NUL bytes. */
#define S(lit) lit, sizeof(lit) - 1
#define NCASES(t) (sizeof(t) / sizeof((t)[0]))

static char *hex_of(const void *p, size_t n)
{
    stt_buf_t b = STT_BUF_INIT;
    stt_hex_encode(&b, p, n);
    return stt_buf_release(&b, NULL);
}

/* auth-keys.json jwt_keys["rsa:kid1"].private_pem_pkcs8 */
static const char rsa_private_pem[] = "-----BEGIN PRIVATE KEY-----\n"
                                      "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDFIzCJdTEgZu7G\n"
                                      "SiBOdIc+Ylu3+k39iugbZO23B8VWP7+TF8TJ/1YDqfgiJ3E85qYB7ezfr41fqwvz\n"
                                      "iLcBHTNPPB0BXDQmJ8qfJrbjG5AXxYdO3/Do45WBJaVsevxf8JuLEPNdHczyWmdp\n"
                                      "sRduLrl6wDt1TR7mmSe1KZRAGRLVpk3M5HlMJupYCPaRfaz4cCyyFjbWcJ/hb3ZQ\n"
                                      "T8m0cVl4cHTilWn8CB1VUdHTklRM4LTQvZJN6mKEGYT1vmbudthUG5lrjDTRGod8\n"
                                      "qui9DNAmE4W17hxv0MQOE261DDblzoC8xNc5bqG/b/u1h8FMnE+1ogmEuz+9i+In\n"
                                      "Zn62FJ6vAgMBAAECggEAJoHgrcEEBxnEI1yAYgLWFiP9WXsdt9xlyVAWNQ3iCJ5s\n"
                                      "K+3VJUXohc+yJe3Ba018eN0CS5FNkrXlID2Azcln597MpaLeluNn612TFNqh81rE\n"
                                      "uu34b21hGziAzydY296ya2A0wWgcS+zHzXfnpUCgP2+ETb3yPsYE4RjNmhWrvaql\n"
                                      "9rrYGPff2tpf8fv4ADcMLveOy9iZDm+xM686Boi7T2rbGUvBn2FRwdLVMGyC46/S\n"
                                      "SUjfEbTbBJYtsfNE8/Io39JWNll/6E3TnVUbr1Z6HQoeAk5o4xfExlec2qETJTTC\n"
                                      "HTkVMtVGd8s0FmcmO9/o+5xT3h5bIk1qBf9o0JYe/QKBgQDzLC/aoclkAK2fC4eU\n"
                                      "2bUKAmxZiilT4xFfnC51p7/62hfKeCr5cJw8a3n45GKO6Um0o4T2TBqLCwXWRzDl\n"
                                      "4CifoOmU6VDlCUHW+my3KY30d+zTRsHQuV1QY5Y9dteaJoqgRJg8Gamxfx25dBJ6\n"
                                      "rcZx3EnOPVzWuxNT/EqKx+81NQKBgQDPiVeVilHUZcVA5hTuT68tzfmjy++HcitD\n"
                                      "Cni0MW7zVAByGWh90gEZLIslaQSwmPWZovRFNKhNRTLz+yyq208syrA7bbW430yM\n"
                                      "K3qJRua6GAi9UxP0abJlp8gW84QEercRIlSSpZL6ctyqOzvuClR28M5CFszNXV6K\n"
                                      "uHbGpUk00wKBgEGKp1tGQAG0LRexA9oa07De9lUr5/e0O/qJHfyYOiZiogbwXKTe\n"
                                      "tT2TukxbQjVCq5sEd9HqsTzIu8oFZiiPQmPD+zEnsaYJ2LUYyjST/q7lo+9OIu8f\n"
                                      "Bwejz9rBLVtfB/4qft20DQjKOjjCEDkAnXwS49GyuFMoGQ2J8o11VgQBAoGAXUGg\n"
                                      "6qB5/tAwX+ZDl4aU+CcrOzAjlSB3Uiu9a3MfIRYpERxbuNYKCk7aw9e59MT276+q\n"
                                      "xgJQclBbAglm2+uqWz1FDZ9R3h3xHrdW26LRgOPV4YUYXWa1dDp9jdqlAwJFitx7\n"
                                      "Vl4yennssE3nsyJPLBcvB8GJC+sd1YXoUYDqMWMCgYEAhJZwza6lNsV+8ZT7eavS\n"
                                      "GswuayvEFLEW6zzdEEl9ZbFvf62VKJ+FNitvJBsQy5MV/ZdJL1zOznQZKnOtU7uk\n"
                                      "whNsNaQpJHQ8LMFUwmYU9ACF43LEc8p7O/438QDMrx9sjggw0Inh+0x45jGcHsvq\n"
                                      "0hGvUjivyTyxcYMZG0PUui0=\n"
                                      "-----END PRIVATE KEY-----\n";

/* ... .config_value: the public key as [jwt_keys] holds it, newlines written as \\n */
static const char rsa_public_config[] = "-----BEGIN PUBLIC KEY-----\\n"
                                        "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAxSMwiXUxIGbuxkogTnSH\\n"
                                        "PmJbt/pN/YroG2TttwfFVj+/kxfEyf9WA6n4IidxPOamAe3s36+NX6sL84i3AR0z\\n"
                                        "TzwdAVw0JifKnya24xuQF8WHTt/w6OOVgSWlbHr8X/CbixDzXR3M8lpnabEXbi65\\n"
                                        "esA7dU0e5pkntSmUQBkS1aZNzOR5TCbqWAj2kX2s+HAsshY21nCf4W92UE/JtHFZ\\n"
                                        "eHB04pVp/AgdVVHR05JUTOC00L2STepihBmE9b5m7nbYVBuZa4w00RqHfKrovQzQ\\n"
                                        "JhOFte4cb9DEDhNutQw25c6AvMTXOW6hv2/7tYfBTJxPtaIJhLs/vYviJ2Z+thSe\\n"
                                        "rwIDAQAB\\n"
                                        "-----END PUBLIC KEY-----\\n";

/* ... .public_pem, as HS256 key bytes in the algorithm-confusion case */
static const char rsa_public_pem[] = "-----BEGIN PUBLIC KEY-----\n"
                                     "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAxSMwiXUxIGbuxkogTnSH\n"
                                     "PmJbt/pN/YroG2TttwfFVj+/kxfEyf9WA6n4IidxPOamAe3s36+NX6sL84i3AR0z\n"
                                     "TzwdAVw0JifKnya24xuQF8WHTt/w6OOVgSWlbHr8X/CbixDzXR3M8lpnabEXbi65\n"
                                     "esA7dU0e5pkntSmUQBkS1aZNzOR5TCbqWAj2kX2s+HAsshY21nCf4W92UE/JtHFZ\n"
                                     "eHB04pVp/AgdVVHR05JUTOC00L2STepihBmE9b5m7nbYVBuZa4w00RqHfKrovQzQ\n"
                                     "JhOFte4cb9DEDhNutQw25c6AvMTXOW6hv2/7tYfBTJxPtaIJhLs/vYviJ2Z+thSe\n"
                                     "rwIDAQAB\n"
                                     "-----END PUBLIC KEY-----\n";

/* ====================================================================================
 * Primitives */

static void ct_equal_cases(void **state)
{
    (void)state;
    static const struct {
        const char *a;
        size_t alen;
        const char *b;
        size_t blen;
        bool want;
    } cases[] = {
        /* 1 */ {S(""), S(""), true},
        /* 2 */ {S("abc"), S("abc"), true},
        /* 3 */ {S("abc"), S("abd"), false},
        /* 4 */ {S("abc"), S("ab"), false},
        /* 5 */ {S("ab"), S("abc"), false},
        /* 6 */ {S("a\0b"), S("a\0b"), true},
        /* 7 */ {S("a\0b"), S("a\0c"), false},
        /* 8 */ {S("\xff"), S("\x7f"), false},
    };
    for (size_t i = 0; i < NCASES(cases); i++)
        if (stt_ct_equal(cases[i].a, cases[i].alen, cases[i].b, cases[i].blen) != cases[i].want)
            fail_msg("case %zu: expected %d", i + 1, cases[i].want);
}

static void random_bytes(void **state)
{
    (void)state;
    unsigned char a[32] = {0}, b[32] = {0}, zero[32] = {0};
    stt_random_bytes(a, sizeof(a));
    stt_random_bytes(b, sizeof(b));
    assert_memory_not_equal(a, b, sizeof(a));
    assert_memory_not_equal(a, zero, sizeof(a));
    stt_random_bytes(a, 0); /* nothing to do */
}

static void base64url_encode_cases(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t len;
        const char *want;
    } cases[] = {
        /* RFC 4648 section 10, with the padding dropped */
        /* 1 */ {S(""), ""},
        /* 2 */ {S("f"), "Zg"},
        /* 3 */ {S("fo"), "Zm8"},
        /* 4 */ {S("foo"), "Zm9v"},
        /* 5 */ {S("foob"), "Zm9vYg"},
        /* 6 */ {S("fooba"), "Zm9vYmE"},
        /* 7 */ {S("foobar"), "Zm9vYmFy"},
        /* the two characters that differ from base64 */
        /* 8 */ {S("\xfb\xff"), "-_8"},
        /* 9 */ {S("\xff\xff\xff"), "____"},
        /* 10 */ {S("\0"), "AA"},
        /* 11 */ {S("{\"alg\":\"HS256\",\"typ\":\"JWT\"}"), "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        stt_buf_t out = STT_BUF_INIT;
        stt_buf_appends(&out, "pre"); /* output is appended */
        stt_base64url_encode(&out, cases[i].in, cases[i].len);
        if (out.len != 3 + strlen(cases[i].want) || strcmp(out.base + 3, cases[i].want) != 0)
            fail_msg("case %zu: \"%s\", expected \"pre%s\"", i + 1, out.base, cases[i].want);
        stt_buf_free(&out);
    }
}

static void base64url_decode_cases(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int want_rc;       /* stt_base64url_decode */
        int want_nopad_rc; /* stt__b64url_decode_nopad, as CouchDB's b64url */
        const char *want;
        size_t wantlen;
    } cases[] = {
        /* 1 */ {"", 0, 0, S("")},
        /* 2 */ {"Zg", 0, 0, S("f")},
        /* 3 */ {"Zg==", 0, -1, S("f")},
        /* 4 */ {"Zm8", 0, 0, S("fo")},
        /* 5 */ {"Zm8=", 0, -1, S("fo")},
        /* 6 */ {"Zm9v", 0, 0, S("foo")},
        /* 7 */ {"Zm9vYmFy", 0, 0, S("foobar")},
        /* 8 */ {"-_8", 0, 0, S("\xfb\xff")},
        /* 9 */ {"____", 0, 0, S("\xff\xff\xff")},
        /* 10 */ {"AA", 0, 0, S("\0")},
        /* impossible lengths and bad padding */
        /* 11 */ {"Z", -1, -1, S("")},
        /* 12 */ {"Zm9vY", -1, -1, S("")},
        /* 13 */ {"Zg=", -1, -1, S("")},
        /* 14 */ {"Zg===", -1, -1, S("")},
        /* 15 */ {"Zm8==", -1, -1, S("")},
        /* 16 */ {"=", -1, -1, S("")},
        /* 17 */ {"Zm9v====", -1, -1, S("")},
        /* 18 */ {"Z=g=", -1, -1, S("")},
        /* characters outside the URL-safe alphabet */
        /* 19 */ {"+/8", -1, -1, S("")},
        /* 20 */ {"Zm 9v", -1, -1, S("")},
        /* 21 */ {"Zm9v\n", -1, -1, S("")},
        /* 22 */ {"!!!", -1, -1, S("")},
        /* spare bits are not checked (b64url does not either) */
        /* 23 */ {"Zh", 0, 0, S("f")},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        for (int nopad = 0; nopad <= 1; nopad++) {
            stt_buf_t out = STT_BUF_INIT;
            int rc = nopad ? stt__b64url_decode_nopad(&out, cases[i].in, strlen(cases[i].in))
                           : stt_base64url_decode(&out, cases[i].in, strlen(cases[i].in));
            int want = nopad ? cases[i].want_nopad_rc : cases[i].want_rc;
            if (rc != want) fail_msg("case %zu%s: rc %d, expected %d", i + 1, nopad ? " (nopad)" : "", rc, want);
            if (rc == 0 && (out.len != cases[i].wantlen || memcmp(out.base, cases[i].want, out.len) != 0))
                fail_msg("case %zu%s: wrong bytes (%zu)", i + 1, nopad ? " (nopad)" : "", out.len);
            stt_buf_free(&out);
        }
    }
}

static void base64url_roundtrip(void **state)
{
    (void)state;
    unsigned char data[67];
    for (size_t n = 0; n <= sizeof(data); n++) {
        stt_random_bytes(data, n);
        stt_buf_t enc = STT_BUF_INIT, dec = STT_BUF_INIT;
        stt_base64url_encode(&enc, data, n);
        assert_null(strpbrk(enc.base, "+/="));
        assert_int_equal(stt_base64url_decode(&dec, enc.base, enc.len), 0);
        assert_int_equal(dec.len, n);
        if (n) assert_memory_equal(dec.base, data, n);
        stt_buf_free(&enc);
        stt_buf_free(&dec);
    }
}

static void hmac_cases(void **state)
{
    (void)state;
    static const struct {
        int hash;
        const char *key;
        size_t keylen;
        const char *msg;
        size_t msglen;
        const char *want;
    } cases[] = {
        /* RFC 2202 test 2 */
        /* 1 */ {STT_HASH_SHA1, S("Jefe"), S("what do ya want for nothing?"),
                 "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"},
        /* RFC 4231 test case 2 */
        /* 2 */
        {STT_HASH_SHA256, S("Jefe"), S("what do ya want for nothing?"),
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        /* 3 */
        {STT_HASH_SHA384, S("Jefe"), S("what do ya want for nothing?"),
         "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649"},
        /* 4 */
        {STT_HASH_SHA512, S("Jefe"), S("what do ya want for nothing?"),
         "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a"
         "6b4b636e070a38bce737"},
        /* an empty key and message */
        /* 5 */ {STT_HASH_SHA256, S(""), S(""), "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad"},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        unsigned char mac[64];
        size_t n = stt_hmac(cases[i].hash, cases[i].key, cases[i].keylen, cases[i].msg, cases[i].msglen, mac);
        char *hex = hex_of(mac, n);
        if (strcmp(hex, cases[i].want) != 0) fail_msg("case %zu: %s, expected %s", i + 1, hex, cases[i].want);
        free(hex);
    }
}

static void pbkdf2_cases(void **state)
{
    (void)state;
    static const struct {
        int hash;
        const char *pw;
        size_t pwlen;
        const char *salt;
        size_t saltlen;
        uint32_t iterations;
        size_t outlen;
        const char *want;
    } cases[] = {
        /* RFC 6070, PBKDF2-HMAC-SHA1 (test 4, 16777216 iterations, left out) */
        /* 1 */ {STT_HASH_SHA1, S("password"), S("salt"), 1, 20, "0c60c80f961f0e71f3a9b524af6012062fe037a6"},
        /* 2 */ {STT_HASH_SHA1, S("password"), S("salt"), 2, 20, "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"},
        /* 3 */ {STT_HASH_SHA1, S("password"), S("salt"), 4096, 20, "4b007901b765489abead49d926f721d065a429c1"},
        /* 4 */
        {STT_HASH_SHA1, S("passwordPASSWORDpassword"), S("saltSALTsaltSALTsaltSALTsaltSALTsalt"), 4096, 25,
         "3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038"},
        /* 5 */ {STT_HASH_SHA1, S("pass\0word"), S("sa\0lt"), 4096, 16, "56fa6aa75548099dcc37d7f03425e0c3"},
        /* RFC 7914 section 11, PBKDF2-HMAC-SHA256 */
        /* 6 */
        {STT_HASH_SHA256, S("passwd"), S("salt"), 1, 64,
         "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664b39d77ef317c71b845b1e30"
         "b"
         "d509112041d3a19783"},
        /* CouchDB's form: the salt is 32 hex characters used as text (hashlib) */
        /* 7 */
        {STT_HASH_SHA256, S("admin"), S("0123456789abcdef0123456789abcdef"), 10, 32,
         "628f49f004297acb9a7b91e6b7d1a089547da80a3045a1aeaca7789afc5007ad"},
        /* 8 */
        {STT__HASH_SHA224, S("pw"), S("5a1t"), 3, 28, "a8b13b63398d9133c192f0677fd57fed2b277aec0410ea0ff9d3ad7a"},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        unsigned char out[64];
        stt_pbkdf2(cases[i].hash, cases[i].pw, cases[i].pwlen, cases[i].salt, cases[i].saltlen, cases[i].iterations,
                   out, cases[i].outlen);
        char *hex = hex_of(out, cases[i].outlen);
        if (strcmp(hex, cases[i].want) != 0) fail_msg("case %zu: %s, expected %s", i + 1, hex, cases[i].want);
        free(hex);
    }
}

/* ====================================================================================
 * Password hashes */

/* hashlib.pbkdf2_hmac(..., salt.encode(), n).hex() and hashlib.sha1(pw + salt) */
#define ADMIN_SHA256_10 "628f49f004297acb9a7b91e6b7d1a089547da80a3045a1aeaca7789afc5007ad"
#define ADMIN_SHA1_10 "53b1877c55da561e57aae4cf3571c22aab997003"
#define PW_SHA512_5                                                                                                    \
    "22764c867818e6eeae76b31d034f4ddfcc8f8ce84a2e63c9e85e484a16e5f45351460c974f0d99f0891673b1fe6920840389385baad4c61f" \
    "9f8d1a15aeb3f2a9"
#define PW_SHA224_3 "a8b13b63398d9133c192f0677fd57fed2b277aec0410ea0ff9d3ad7a"
#define ADMIN_HASHED "0c0ceb888c07f6405b09c7fb3cdeed7c3a837dbb" /* sha1("admin" "deadbeefsalt") */
#define SALT "0123456789abcdef0123456789abcdef"

static void pw_check_admin_cases(void **state)
{
    (void)state;
    static const struct {
        const char *stored;
        const char *password;
        int want;
    } cases[] = {
        /* 3.4 */
        /* 1 */ {"-pbkdf2:sha256-" ADMIN_SHA256_10 "," SALT ",10", "admin", 0},
        /* 2 */ {"-pbkdf2:sha256-" ADMIN_SHA256_10 "," SALT ",10", "Admin", -1},
        /* 3 */ {"-pbkdf2:sha256-" ADMIN_SHA256_10 "," SALT ",10", "", -1},
        /* 4 */ {"-pbkdf2:sha256-" ADMIN_SHA256_10 "," SALT ",11", "admin", -1},
        /* 5 */ {"-pbkdf2:sha256-" ADMIN_SHA256_10 ",0123456789ABCDEF0123456789ABCDEF,10", "admin", -1},
        /* the key is compared as lower-case hex text */
        /* 6 */
        {"-pbkdf2:sha256-628F49F004297ACB9A7B91E6B7D1A089547DA80A3045A1AEACA7789AFC5007AD," SALT ",10", "admin", -1},
        /* the other PRFs couch_auth_cache knows */
        /* 7 */ {"-pbkdf2:sha512-" PW_SHA512_5 ",5a1t,5", "pw", 0},
        /* 8 */ {"-pbkdf2:sha224-" PW_SHA224_3 ",5a1t,3", "pw", 0},
        /* 9 */ {"-pbkdf2:sha-" ADMIN_SHA1_10 "," SALT ",10", "admin", 0},
        /* 10 */ {"-pbkdf2:md5-" ADMIN_SHA1_10 "," SALT ",10", "admin", -1},
        /* 2.x */
        /* 11 */ {"-pbkdf2-" ADMIN_SHA1_10 "," SALT ",10", "admin", 0},
        /* 12 */ {"-pbkdf2-" ADMIN_SHA1_10 "," SALT ",10", "admim", -1},
        /* 13 */ {"-pbkdf2-" ADMIN_SHA256_10 "," SALT ",10", "admin", -1},
        /* 1.x */
        /* 14 */ {"-hashed-" ADMIN_HASHED ",deadbeefsalt", "admin", 0},
        /* 15 */ {"-hashed-" ADMIN_HASHED ",deadbeefsalt", "admin ", -1},
        /* 16 */ {"-hashed-" ADMIN_HASHED ",deadbeefsalt,10", "admin", -1},
        /* 17 */ {"-hashed-" ADMIN_HASHED, "admin", -1},
        /* string:tokens: empty fields vanish */
        /* 18 */ {"-pbkdf2:sha256-" ADMIN_SHA256_10 ",," SALT ",,10,", "admin", 0},
        /* 19 */ {"-hashed-,," ADMIN_HASHED ",deadbeefsalt", "admin", 0},
        /* iterations as list_to_integer reads them, within [1, 1e9] */
        /* 20 */ {"-pbkdf2:sha256-" ADMIN_SHA256_10 "," SALT ",+10", "admin", 0},
        /* 21 */ {"-pbkdf2:sha256-" ADMIN_SHA256_10 "," SALT ",0", "admin", -1},
        /* 22 */ {"-pbkdf2:sha256-" ADMIN_SHA256_10 "," SALT ",-10", "admin", -1},
        /* 23 */ {"-pbkdf2:sha256-" ADMIN_SHA256_10 "," SALT ",10x", "admin", -1},
        /* 24 */ {"-pbkdf2:sha256-" ADMIN_SHA256_10 "," SALT ",1000000001", "admin", -1},
        /* 25 */ {"-pbkdf2:sha256-" ADMIN_SHA256_10 "," SALT ",99999999999999999999999", "admin", -1},
        /* malformed */
        /* 26 */ {"-pbkdf2:sha256-" ADMIN_SHA256_10 "," SALT, "admin", -1},
        /* 27 */ {"-pbkdf2:sha256-" ADMIN_SHA256_10 "," SALT ",10,10", "admin", -1},
        /* 28 */ {"-pbkdf2:sha256-", "admin", -1},
        /* 29 */ {"-pbkdf2:", "admin", -1},
        /* a plaintext value (not hashed yet) never matches, not even itself */
        /* 30 */ {"admin", "admin", -1},
        /* 31 */ {"", "", -1},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        int rc = stt_pw_check_admin(cases[i].stored, cases[i].password, strlen(cases[i].password));
        if (rc != cases[i].want) fail_msg("case %zu: %d, expected %d", i + 1, rc, cases[i].want);
    }
}

static void pw_is_hashed_cases(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        bool want;
    } cases[] = {
        /* 1 */ {"-pbkdf2:sha256-" ADMIN_SHA256_10 "," SALT ",10", true},
        /* 2 */ {"-pbkdf2-" ADMIN_SHA1_10 "," SALT ",10", true},
        /* 3 */ {"-hashed-" ADMIN_HASHED ",deadbeefsalt", true},
        /* 4 */ {"-pbkdf2:sha-x", true},
        /* 5 */ {"-pbkdf2:sha224-x", true},
        /* 6 */ {"-pbkdf2:sha384-x", true},
        /* 7 */ {"-pbkdf2:sha512-x", true},
        /* couch_passwords:get_unhashed_admins names each PRF */
        /* 8 */ {"-pbkdf2:md5-x", false},
        /* 9 */ {"admin", false},
        /* 10 */ {"", false},
        /* 11 */ {"-hashed", false},
        /* 12 */ {"-PBKDF2-x", false},
    };
    for (size_t i = 0; i < NCASES(cases); i++)
        if (stt_pw_is_hashed(cases[i].value) != cases[i].want) fail_msg("case %zu: expected %d", i + 1, cases[i].want);
}

static bool all_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    return true;
}

static void pw_hash_admin(void **state)
{
    (void)state;
    stt_buf_t a = STT_BUF_INIT, b = STT_BUF_INIT;
    stt_buf_appends(&a, "pre"); /* output is appended */
    stt_pw_hash_admin(S("s3cret:pw"), 3, &a);
    stt_pw_hash_admin(S("s3cret:pw"), 3, &b);
    /* -pbkdf2:sha256-<64 hex>,<32 hex>,3 */
    const char *h = a.base + 3;
    assert_int_equal(a.len - 3, strlen("-pbkdf2:sha256-") + 64 + 1 + 32 + 2);
    assert_memory_equal(h, "-pbkdf2:sha256-", 15);
    assert_true(all_lower_hex(h + 15, 64));
    assert_int_equal(h[79], ',');
    assert_true(all_lower_hex(h + 80, 32));
    assert_string_equal(h + 112, ",3");
    assert_true(stt_pw_is_hashed(h));
    /* a new salt each time */
    assert_memory_not_equal(h + 80, b.base + 80, 32);
    /* the key, recomputed with OpenSSL from the salt text */
    unsigned char dk[32];
    assert_int_equal(PKCS5_PBKDF2_HMAC("s3cret:pw", 9, (const unsigned char *)h + 80, 32, 3, EVP_sha256(), 32, dk), 1);
    char *hex = hex_of(dk, 32);
    assert_memory_equal(hex, h + 15, 64);
    free(hex);
    assert_int_equal(stt_pw_check_admin(h, S("s3cret:pw")), 0);
    assert_int_equal(stt_pw_check_admin(h, S("s3cret:pW")), -1);
    assert_int_equal(stt_pw_check_admin(b.base, S("s3cret:pw")), 0);
    stt_buf_free(&a);
    stt_buf_free(&b);
}

/* The one real CouchDB 3.4 hash: 600000 iterations (hashlib, about half a second). */
static void pw_check_admin_600000(void **state)
{
    (void)state;
    static const char stored[] = "-pbkdf2:sha256-866d37e72eeca6ad42893b9e6d4612c47683f9d6db5d53bfcad5bbad4b8abbd7,"
                                 "4e4b9d5b1b5f4e3c8a2d6f7e9c0b1a2d,600000";
    assert_int_equal(stt_pw_check_admin(stored, S("admin")), 0);
}

static void pw_check_user_cases(void **state)
{
    (void)state;
    static const struct {
        stt_user_hash_t h;
        const char *password;
        int want;
    } cases[] = {
        /* 1 */ {{"pbkdf2", "sha256", 10, ADMIN_SHA256_10, SALT}, "admin", 0},
        /* 2 */ {{"pbkdf2", "sha256", 10, ADMIN_SHA256_10, SALT}, "admiN", -1},
        /* 3 */ {{"pbkdf2", "sha256", 9, ADMIN_SHA256_10, SALT}, "admin", -1},
        /* 4 */ {{"pbkdf2", "sha", 10, ADMIN_SHA1_10, SALT}, "admin", 0},
        /* 5 */ {{"pbkdf2", "sha512", 5, PW_SHA512_5, "5a1t"}, "pw", 0},
        /* 6 */ {{"pbkdf2", "sha224", 3, PW_SHA224_3, "5a1t"}, "pw", 0},
        /* 7 */ {{"pbkdf2", "md5", 10, ADMIN_SHA1_10, SALT}, "admin", -1},
        /* 8 */ {{"pbkdf2", "SHA256", 10, ADMIN_SHA256_10, SALT}, "admin", -1},
        /* a document without pbkdf2_prf: CouchDB's default "sha" */
        /* 9 */ {{"pbkdf2", "", 10, ADMIN_SHA1_10, SALT}, "admin", 0},
        /* "simple": password_sha = sha1(password ++ salt) */
        /* 10 */ {{"simple", "", 0, ADMIN_HASHED, "deadbeefsalt"}, "admin", 0},
        /* 11 */ {{"simple", "", 0, ADMIN_HASHED, "deadbeefsalt"}, "admin2", -1},
        /* a document without password_scheme: CouchDB's default "simple" */
        /* 12 */ {{"", "", 0, ADMIN_HASHED, "deadbeefsalt"}, "admin", 0},
        /* 13 */ {{"bcrypt", "", 10, ADMIN_HASHED, "deadbeefsalt"}, "admin", -1},
        /* 14 */ {{"pbkdf2", "sha256", 10, "", SALT}, "admin", -1},
        /* 15 */ {{"pbkdf2", "sha256", 1000000001, ADMIN_SHA256_10, SALT}, "admin", -1},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        int rc = stt_pw_check_user(&cases[i].h, cases[i].password, strlen(cases[i].password));
        if (rc != cases[i].want) fail_msg("case %zu: %d, expected %d", i + 1, rc, cases[i].want);
    }
}

static void pw_hash_user(void **state)
{
    (void)state;
    stt_user_hash_t h, h2;
    stt_pw_hash_user(S("bobpw"), 4, &h);
    stt_pw_hash_user(S("bobpw"), 4, &h2);
    assert_string_equal(h.scheme, "pbkdf2");
    assert_string_equal(h.prf, "sha256");
    assert_int_equal(h.iterations, 4);
    assert_int_equal(strlen(h.derived_key), 64);
    assert_true(all_lower_hex(h.derived_key, 64));
    assert_int_equal(strlen(h.salt), 32);
    assert_true(all_lower_hex(h.salt, 32));
    assert_string_not_equal(h.salt, h2.salt);
    unsigned char dk[32];
    assert_int_equal(PKCS5_PBKDF2_HMAC("bobpw", 5, (const unsigned char *)h.salt, 32, 4, EVP_sha256(), 32, dk), 1);
    char *hex = hex_of(dk, 32);
    assert_string_equal(hex, h.derived_key);
    free(hex);
    assert_int_equal(stt_pw_check_user(&h, S("bobpw")), 0);
    assert_int_equal(stt_pw_check_user(&h, S("bobpw ")), -1);
    assert_int_equal(stt_pw_check_user(&h2, S("bobpw")), 0);
}

/* ====================================================================================
 * AuthSession cookies */

#define SECRET "golden-proxy-and-cookie-secret-0001"
#define USALT "a1b2c3d4e5f60718293a4b5c6d7e8f90"
#define T0 0x6650A3F1u
/* Python: base64url(b"alice:6650A3F1:" + hmac(SECRET + USALT, b"alice:6650A3F1", sha256/sha1)) */
#define COOKIE_256 "YWxpY2U6NjY1MEEzRjE6FIJoFPkGRSm0cyLpJDNgBf-BQCGJp6Pw1jFhJsROMTQ"
#define COOKIE_1 "YWxpY2U6NjY1MEEzRjE6hDTEDqu8ouUIDo-H60m17GLjssA"
/* auth.jsonl session_cookie_forged_user: alice:7FFFFFFF:abab... */
#define COOKIE_FORGED                                                                                                  \
    "YWxpY2U6N0ZGRkZGRkY6YWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJh" \
    "Yg"

static void cookie_make_cases(void **state)
{
    (void)state;
    static const struct {
        int hash;
        const char *name;
        uint64_t now;
        const char *want;     /* the whole value, or NULL */
        const char *wantdata; /* the decoded NAME:HEXTIME: prefix */
    } cases[] = {
        /* 1 */ {STT_HASH_SHA256, "alice", T0, COOKIE_256, "alice:6650A3F1:"},
        /* 2 */ {STT_HASH_SHA1, "alice", T0, COOKIE_1, "alice:6650A3F1:"},
        /* integer_to_list(T, 16): upper case, no leading zeros */
        /* 3 */ {STT_HASH_SHA256, "bob", 0, NULL, "bob:0:"},
        /* 4 */ {STT_HASH_SHA256, "bob", 0xabc, NULL, "bob:ABC:"},
        /* 5 */ {STT_HASH_SHA256, "bob", 0x0123456789ABCDEFull, NULL, "bob:123456789ABCDEF:"},
        /* 6 */ {STT_HASH_SHA512, "", 16, NULL, ":10:"},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        stt_buf_t out = STT_BUF_INIT, raw = STT_BUF_INIT;
        stt_cookie_make(cases[i].hash, S(SECRET), S(USALT), cases[i].name, strlen(cases[i].name), cases[i].now, &out);
        if (cases[i].want && strcmp(out.base, cases[i].want) != 0)
            fail_msg("case %zu: %s, expected %s", i + 1, out.base, cases[i].want);
        assert_null(strpbrk(out.base, "+/="));
        assert_int_equal(stt__b64url_decode_nopad(&raw, out.base, out.len), 0);
        size_t dl = strlen(cases[i].wantdata);
        if (raw.len != dl + (size_t)EVP_MD_get_size(stt__md(cases[i].hash)) || memcmp(raw.base, cases[i].wantdata, dl))
            fail_msg("case %zu: decoded %.*s", i + 1, (int)raw.len, raw.base);
        stt_buf_free(&out);
        stt_buf_free(&raw);
    }
}

static char *b64url_of(const char *s, size_t n)
{
    stt_buf_t b = STT_BUF_INIT;
    stt_base64url_encode(&b, s, n);
    return stt_buf_release(&b, NULL);
}

static void cookie_parse_cases(void **state)
{
    (void)state;
    static const struct {
        const char *value; /* a cookie value as sent ... */
        const char *plain; /* ... or, if value is NULL, the decoded text to encode */
        int want;
        const char *name;
        uint64_t timestamp;
        const char *mac;
        size_t maclen;
    } cases[] = {
        /* 1 */ {COOKIE_256, NULL, 0, "alice", T0, NULL, 32},
        /* 2 */ {COOKIE_1, NULL, 0, "alice", T0, NULL, 20},
        /* 3 */
        {COOKIE_FORGED, NULL, 0, "alice", 0x7FFFFFFF,
         "ababababababababababababababababababababababababababababababababababab", 70},
        /* the MAC is everything after the second ':' (re:split, parts 3) */
        /* 4 */ {NULL, "a:B:c:d", 0, "a", 0xB, S("c:d")},
        /* 5 */ {NULL, "::x", -2, "", 0, S("x")},
        /* 6 */ {NULL, "bob:1F:", 0, "bob", 0x1F, S("")},
        /* list_to_integer(T, 16): either case and a sign */
        /* 7 */ {NULL, "bob:6650a3f1:m", 0, "bob", T0, S("m")},
        /* 8 */ {NULL, "bob:+1a:m", 0, "bob", 0x1A, S("m")},
        /* 9 */ {NULL, "bob:-0:m", 0, "bob", 0, S("m")},
        /* not hex: the cookie is ignored (-2) */
        /* 10 */ {NULL, "bob:-1A:m", -2, "bob", 0, S("m")},
        /* 11 */ {NULL, "bob:zz:m", -2, "bob", 0, S("m")},
        /* 12 */ {NULL, "bob:0x1F:m", -2, "bob", 0, S("m")},
        /* 13 */ {NULL, "bob: 1F:m", -2, "bob", 0, S("m")},
        /* 14 */ {NULL, "bob:+:m", -2, "bob", 0, S("m")},
        /* 15 */ {NULL, "bob:10000000000000000:m", -2, "bob", 0, S("m")},
        /* 16 */ {NULL, "bob:FFFFFFFFFFFFFFFF:m", 0, "bob", UINT64_MAX, S("m")},
        /* fewer than three parts: 400 Malformed AuthSession cookie */
        /* 17 */ {NULL, "alice:6650A3F1", -1, NULL, 0, NULL, 0},
        /* 18 */ {NULL, "alice", -1, NULL, 0, NULL, 0},
        /* 19 */ {NULL, "", -1, NULL, 0, NULL, 0},
        /* not base64url */
        /* 20 */ {"garbage", NULL, -1, NULL, 0, NULL, 0}, /* auth.jsonl session_cookie_garbage */
        /* 21 */ {"!!!!", NULL, -1, NULL, 0, NULL, 0},
        /* 22 */ {"YWxpY2U6MTox", NULL, 0, "alice", 1, S("1")},
        /* 23 */ {"YWxpY2U6MTox=", NULL, -1, NULL, 0, NULL, 0},
        /* 24 */ {"YWxpY2U6MToxMg==", NULL, -1, NULL, 0, NULL, 0}, /* padded */
        /* 25 */ {"YWxpY2U6MTox+", NULL, -1, NULL, 0, NULL, 0},
        /* 26 */ {"abcde", NULL, -1, NULL, 0, NULL, 0},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        char *value = cases[i].value ? strdup(cases[i].value) : b64url_of(cases[i].plain, strlen(cases[i].plain));
        stt_cookie_t c;
        int rc = stt_cookie_parse(value, strlen(value), &c);
        if (rc != cases[i].want) fail_msg("case %zu: %d, expected %d", i + 1, rc, cases[i].want);
        if (cases[i].name && (c.namelen != strlen(cases[i].name) || memcmp(c.name, cases[i].name, c.namelen) != 0))
            fail_msg("case %zu: name %.*s", i + 1, (int)c.namelen, c.name);
        if (rc == 0 && c.timestamp != cases[i].timestamp)
            fail_msg("case %zu: timestamp %llx", i + 1, (unsigned long long)c.timestamp);
        if (cases[i].name && c.maclen != cases[i].maclen) fail_msg("case %zu: maclen %zu", i + 1, c.maclen);
        if (cases[i].mac && memcmp(c.mac, cases[i].mac, c.maclen) != 0) fail_msg("case %zu: mac", i + 1);
        stt_cookie_free(&c);
        free(value);
    }
}

/* A cookie whose MAC covers the given NAME:TIME text exactly, time spelled as is. */
static char *cookie_for(int hash, const char *data, const char *secret, const char *usalt)
{
    stt_buf_t key = STT_BUF_INIT, raw = STT_BUF_INIT;
    stt_buf_appends(&key, secret);
    stt_buf_appends(&key, usalt);
    unsigned char mac[64];
    unsigned int maclen = 0;
    HMAC(stt__md(hash), key.base, (int)key.len, (const unsigned char *)data, strlen(data), mac, &maclen);
    stt_buf_appends(&raw, data);
    stt_buf_appendc(&raw, ':');
    stt_buf_append(&raw, mac, maclen);
    char *v = b64url_of(raw.base, raw.len);
    stt_buf_free(&key);
    stt_buf_free(&raw);
    return v;
}

static void cookie_verify_cases(void **state)
{
    (void)state;
    static const int both[] = {STT_HASH_SHA256, STT_HASH_SHA1}, sha256[] = {STT_HASH_SHA256}, sha1[] = {STT_HASH_SHA1};
    static const struct {
        const char *value; /* a value, or NULL to sign data below */
        const char *data;  /* NAME:TIME to sign with sha256 and SECRET + USALT */
        const int *hashes;
        size_t nhashes;
        const char *secret; /* for the check */
        const char *usalt;
        uint64_t now;
        int want;
    } cases[] = {
        /* 1 */ {COOKIE_256, NULL, both, 2, SECRET, USALT, T0, 0},
        /* 2 */ {COOKIE_256, NULL, sha256, 1, SECRET, USALT, T0 + 599, 0},
        /* valid while now < timestamp + timeout (600) */
        /* 3 */ {COOKIE_256, NULL, both, 2, SECRET, USALT, T0 + 600, -2},
        /* 4 */ {COOKIE_256, NULL, both, 2, SECRET, USALT, T0 + 86400, -2},
        /* from a clock ahead of ours */
        /* 5 */ {COOKIE_256, NULL, both, 2, SECRET, USALT, T0 - 3600, 0},
        /* 6 */ {COOKIE_256, NULL, both, 2, "golden-proxy-and-cookie-secret-0002", USALT, T0, -1},
        /* 7 */ {COOKIE_256, NULL, both, 2, SECRET, "a1b2c3d4e5f60718293a4b5c6d7e8f91", T0, -1},
        /* 8 */ {COOKIE_256, NULL, both, 2, SECRET, "", T0, -1},
        /* 9 */ {COOKIE_256, NULL, sha1, 1, SECRET, USALT, T0, -1},
        /* a sha1 cookie is good while sha (sha1) is listed */
        /* 10 */ {COOKIE_1, NULL, both, 2, SECRET, USALT, T0, 0},
        /* 11 */ {COOKIE_1, NULL, sha1, 1, SECRET, USALT, T0, 0},
        /* 12 */ {COOKIE_1, NULL, sha256, 1, SECRET, USALT, T0, -1},
        /* 13 */ {COOKIE_1, NULL, both, 0, SECRET, USALT, T0, -1},
        /* forged (a bad MAC), even when unexpired */
        /* 14 */ {COOKIE_FORGED, NULL, both, 2, SECRET, USALT, 0x7FFFFFFF, -1},
        /* an expired cookie with a bad MAC is a bad MAC */
        /* 15 */ {COOKIE_FORGED, NULL, both, 2, SECRET, USALT, 0xFFFFFFFF, -1},
        /* the MAC covers the time as spelled in the cookie */
        /* 16 */ {NULL, "alice:6650a3f1", sha256, 1, SECRET, USALT, T0, 0},
        /* 17 */ {NULL, "alice:+6650A3F1", sha256, 1, SECRET, USALT, T0, 0},
        /* 18 */ {NULL, "alice:FFFFFFFFFFFFFFFF", sha256, 1, SECRET, USALT, T0, 0},
        /* a name may be anything but ':' */
        /* 19 */ {NULL, "\xc3\xa9t\xc3\xa9 \x01:6650A3F1", sha256, 1, SECRET, USALT, T0, 0},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        char *value =
            cases[i].value ? strdup(cases[i].value) : cookie_for(STT_HASH_SHA256, cases[i].data, SECRET, USALT);
        stt_cookie_t c;
        if (stt_cookie_parse(value, strlen(value), &c) != 0) fail_msg("case %zu: does not parse", i + 1);
        int rc = stt_cookie_verify(&c, cases[i].hashes, cases[i].nhashes, cases[i].secret, strlen(cases[i].secret),
                                   cases[i].usalt, strlen(cases[i].usalt), cases[i].now, 600);
        if (rc != cases[i].want) fail_msg("case %zu: %d, expected %d", i + 1, rc, cases[i].want);
        stt_cookie_free(&c);
        free(value);
    }
    /* the time text signed in upper case, sent in lower case: a bad MAC */
    char *good = cookie_for(STT_HASH_SHA256, "alice:6650A3F1", SECRET, USALT);
    stt_buf_t raw = STT_BUF_INIT;
    assert_int_equal(stt_base64url_decode(&raw, good, strlen(good)), 0);
    memcpy(raw.base + 6, "6650a3f1", 8);
    char *bad = b64url_of(raw.base, raw.len);
    stt_cookie_t c;
    assert_int_equal(stt_cookie_parse(bad, strlen(bad), &c), 0);
    assert_int_equal(stt_cookie_verify(&c, both, 2, S(SECRET), S(USALT), T0, 600), -1);
    stt_cookie_free(&c);
    free(good);
    free(bad);
    stt_buf_free(&raw);
}

static void cookie_roundtrip(void **state)
{
    (void)state;
    static const int hashes[] = {STT_HASH_SHA256, STT_HASH_SHA1};
    static const struct {
        int hash;
        const char *name;
        uint64_t now;
    } cases[] = {
        /* 1 */ {STT_HASH_SHA256, "alice", 1700000000},
        /* 2 */ {STT_HASH_SHA1, "bob", 1},
        /* 3 */ {STT_HASH_SHA256, "", 0},
        /* 4 */ {STT_HASH_SHA256, "na me@x.org", UINT64_MAX - 1000},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        stt_buf_t v = STT_BUF_INIT;
        stt_cookie_t c;
        stt_cookie_make(cases[i].hash, S(SECRET), S(USALT), cases[i].name, strlen(cases[i].name), cases[i].now, &v);
        if (stt_cookie_parse(v.base, v.len, &c) != 0) fail_msg("case %zu: does not parse", i + 1);
        if (c.namelen != strlen(cases[i].name) || memcmp(c.name, cases[i].name, c.namelen) != 0 ||
            c.timestamp != cases[i].now)
            fail_msg("case %zu: name or time", i + 1);
        if (stt_cookie_verify(&c, hashes, 2, S(SECRET), S(USALT), cases[i].now + 10, 600) != 0)
            fail_msg("case %zu: does not verify", i + 1);
        if (cases[i].now < UINT64_MAX - 1000 &&
            stt_cookie_verify(&c, hashes, 2, S(SECRET), S(USALT), cases[i].now + 600, 600) != -2)
            fail_msg("case %zu: does not expire", i + 1);
        if (stt_cookie_verify(&c, hashes, 2, S("other secret"), S(USALT), cases[i].now, 600) != -1)
            fail_msg("case %zu: verifies with another secret", i + 1);
        stt_cookie_free(&c);
        stt_buf_free(&v);
    }
    /* freeing twice, and freeing a failed parse, are fine */
    stt_cookie_t c;
    assert_int_equal(stt_cookie_parse(S("!"), &c), -1);
    stt_cookie_free(&c);
    stt_cookie_free(&c);
}

/* ====================================================================================
 * Proxy tokens */

static void proxy_token_cases(void **state)
{
    (void)state;
    static const int both[] = {STT_HASH_SHA256, STT_HASH_SHA1}, sha256[] = {STT_HASH_SHA256};
    static const struct {
        const int *hashes;
        size_t nhashes;
        const char *name;
        const char *token;
        bool want;
    } cases[] = {
        /* tokens CouchDB 3.4.3 accepted or refused (auth.jsonl proxy_*) */
        /* 1 */ {both, 2, "proxyuser", "8f27b1552f69408284977e6eb7e4f9e571d6c503a38bcdf4153906a2e12ba3b6", true},
        /* 2 */ {both, 2, "proxyuser", "413828783161b12201ffef93ad119ef0994e5f61", true},
        /* 3 */ {both, 2, "proxyuser", "deadbeef", false},
        /* 4 */ {both, 2, "proxyuser", "a9eb3a344e208dfec435c9a19b5f6a1426aeb73990a7a25c24b28cfe311f67e0", false},
        /* 5 */ {both, 2, "proxyuser", "", false},
        /* sha1 only while listed; upper-case hex is not the token */
        /* 6 */ {sha256, 1, "proxyuser", "413828783161b12201ffef93ad119ef0994e5f61", false},
        /* 7 */ {both, 2, "proxyuser", "8F27B1552F69408284977E6EB7E4F9E571D6C503A38BCDF4153906A2E12BA3B6", false},
        /* 8 */ {both, 2, "proxyuse", "8f27b1552f69408284977e6eb7e4f9e571d6c503a38bcdf4153906a2e12ba3b6", false},
        /* 9 */ {both, 0, "proxyuser", "8f27b1552f69408284977e6eb7e4f9e571d6c503a38bcdf4153906a2e12ba3b6", false},
    };
    for (size_t i = 0; i < NCASES(cases); i++)
        if (stt_proxy_token_ok(cases[i].hashes, cases[i].nhashes, S(SECRET), cases[i].name, strlen(cases[i].name),
                               cases[i].token, strlen(cases[i].token)) != cases[i].want)
            fail_msg("case %zu: expected %d", i + 1, cases[i].want);
}

/* ====================================================================================
 * JWT */

#define NOW 1700000000
/* auth-keys.json jwt_keys["hmac:_default"]: key_base64 and key_utf8 */
#define HMAC_KEY_B64 "Z29sZGVuLWp3dC1obWFjLWtleS0wMTIzNDU2Nzg5YWJjZGVm"
#define HMAC_KEY "golden-jwt-hmac-key-0123456789abcdef"
/* auth-keys.json jwt_bad_signature_key */
#define WRONG_KEY "not-the-configured-key"

#define H_HS "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define H_RS "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"kid1\"}"
#define H_ES "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"eckid\"}"
/* $P, $M and $N stand for now + 3600, now - 3600 and now */
#define P_OK "{\"sub\":\"jwtuser\",\"exp\":$P}"
#define P_READERS "{\"sub\":\"jwtuser\",\"exp\":$P,\"_couchdb.roles\":[\"readers\"]}"

enum {
    SIGN_KEY,     /* as the header's alg says: the hmac:_default bytes, the RSA or the EC private key */
    SIGN_WRONG,   /* HS256 with WRONG_KEY, whatever the alg */
    SIGN_EMPTY,   /* nothing after the second dot */
    SIGN_RSA_PEM, /* HS256 whose key is the RSA public key's PEM text */
    SIGN_ES_DER,  /* ES256 left as DER instead of JOSE r||s */
    SIGN_RAW,     /* the token is the header field, as is */
};

static EVP_PKEY *rsa_key, *ec_key;
static char *ec_public_pem;

static EVP_PKEY *private_key(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(k);
    return k;
}

static char *public_pem(EVP_PKEY *k)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PUBKEY(bio, k), 1);
    char *p;
    long n = BIO_get_mem_data(bio, &p);
    char *s = stt_xstrndup(p, (size_t)n);
    BIO_free(bio);
    return s;
}

static int jwt_setup(void **state)
{
    (void)state;
    rsa_key = private_key(rsa_private_pem);
    ec_key = EVP_EC_gen("P-256");
    assert_non_null(ec_key);
    ec_public_pem = public_pem(ec_key);
    return 0;
}

static int jwt_teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(rsa_key);
    EVP_PKEY_free(ec_key);
    free(ec_public_pem);
    return 0;
}

static void digest_sign(EVP_PKEY *k, const EVP_MD *md, const char *msg, size_t len, unsigned char **sig, size_t *siglen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestSignInit(ctx, NULL, md, NULL, k), 1);
    assert_int_equal(EVP_DigestSign(ctx, NULL, siglen, (const unsigned char *)msg, len), 1);
    *sig = malloc(*siglen);
    assert_int_equal(EVP_DigestSign(ctx, *sig, siglen, (const unsigned char *)msg, len), 1);
    EVP_MD_CTX_free(ctx);
}

/* header.payload.signature, the payload's $P/$M/$N replaced by times around now */
static char *make_token(const char *header, const char *payload, int sign)
{
    if (sign == SIGN_RAW) return strdup(header);
    stt_buf_t body = STT_BUF_INIT, tok = STT_BUF_INIT;
    for (const char *p = payload; *p; p++) {
        if (p[0] == '$' && (p[1] == 'P' || p[1] == 'M' || p[1] == 'N')) {
            stt_buf_appendf(&body, "%d", NOW + (p[1] == 'P' ? 3600 : p[1] == 'M' ? -3600 : 0));
            p++;
        } else {
            stt_buf_appendc(&body, *p);
        }
    }
    stt_base64url_encode(&tok, header, strlen(header));
    stt_buf_appendc(&tok, '.');
    stt_base64url_encode(&tok, body.base, body.len);
    const EVP_MD *md = strstr(header, "384") ? EVP_sha384() : strstr(header, "512") ? EVP_sha512() : EVP_sha256();
    unsigned char mac[64], *sig = NULL;
    unsigned int maclen = 0;
    size_t siglen = 0;
    if (sign == SIGN_KEY && strstr(header, "\"HS")) {
        HMAC(md, HMAC_KEY, strlen(HMAC_KEY), (unsigned char *)tok.base, tok.len, mac, &maclen);
    } else if (sign == SIGN_KEY && strstr(header, "\"RS")) {
        digest_sign(rsa_key, md, tok.base, tok.len, &sig, &siglen);
    } else if ((sign == SIGN_KEY && strstr(header, "\"ES")) || sign == SIGN_ES_DER) {
        digest_sign(ec_key, md, tok.base, tok.len, &sig, &siglen);
        if (sign == SIGN_KEY) { /* DER to JOSE r||s, 32 bytes each for P-256 */
            const unsigned char *p = sig;
            ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)siglen);
            assert_non_null(es);
            assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(es), mac, 32), 32);
            assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(es), mac + 32, 32), 32);
            maclen = 64;
            ECDSA_SIG_free(es);
            free(sig);
            sig = NULL;
        }
    } else if (sign == SIGN_WRONG) {
        HMAC(EVP_sha256(), WRONG_KEY, strlen(WRONG_KEY), (unsigned char *)tok.base, tok.len, mac, &maclen);
    } else if (sign == SIGN_RSA_PEM) {
        HMAC(EVP_sha256(), rsa_public_pem, strlen(rsa_public_pem), (unsigned char *)tok.base, tok.len, mac, &maclen);
    }
    stt_buf_appendc(&tok, '.');
    if (sig)
        stt_base64url_encode(&tok, sig, siglen);
    else
        stt_base64url_encode(&tok, mac, maclen);
    free(sig);
    stt_buf_free(&body);
    return stt_buf_release(&tok, NULL);
}

typedef struct {
    const char *header; /* or the whole token with SIGN_RAW */
    const char *payload;
    int sign;
    /* options: */
    const char *required_claims;
    const char *roles_path;
    const char *roles_name;
    bool strict;
    uint64_t leeway;
    /* expected: */
    int status;
    const char *reason; /* NULL when status is 0 */
    const char *sub;    /* JSON text of the sub claim on success */
    const char *roles;  /* joined with '|' on success */
} jwt_case_t;

#define OK(sub, roles) 0, NULL, sub, roles
#define ERR(status, reason) status, reason, NULL, NULL
#define REQ(claims) claims, NULL, NULL, false, 0
#define PATH(path) NULL, path, NULL, false, 0
#define STRICT NULL, NULL, NULL, true, 0
#define DEFAULTS NULL, NULL, NULL, false, 0

static const jwt_case_t jwt_cases_table[] = {
    /* --- the jwt_* lines of auth.jsonl, CouchDB 3.4.3's answers */
    /* 1 jwt_hs256_valid_session */
    {H_HS, P_READERS, SIGN_KEY, DEFAULTS, OK("\"jwtuser\"", "readers")},
    /* 2 jwt_hs256_no_roles_db */
    {H_HS, P_OK, SIGN_KEY, DEFAULTS, OK("\"jwtuser\"", "")},
    /* 3 jwt_rs256_valid_session */
    {H_RS, "{\"sub\":\"rsauser\",\"exp\":$P,\"_couchdb.roles\":[\"readers\",\"other\"]}", SIGN_KEY, DEFAULTS,
     OK("\"rsauser\"", "readers|other")},
    /* 4 jwt_hs256_no_exp: exp is required by default */
    {H_HS, "{\"sub\":\"jwtuser\"}", SIGN_KEY, DEFAULTS, ERR(400, "Missing exp claim")},
    /* 5 jwt_hs256_roles_not_list */
    {H_HS, "{\"sub\":\"jwtuser\",\"exp\":$P,\"_couchdb.roles\":\"readers\"}", SIGN_KEY, DEFAULTS,
     OK("\"jwtuser\"", "readers")},
    /* 6 jwt_hs256_admin_role_all_dbs */
    {H_HS, "{\"sub\":\"jwtadmin\",\"exp\":$P,\"_couchdb.roles\":[\"_admin\"]}", SIGN_KEY, DEFAULTS,
     OK("\"jwtadmin\"", "_admin")},
    /* 7 jwt_expired */
    {H_HS, "{\"sub\":\"jwtuser\",\"exp\":$M}", SIGN_KEY, DEFAULTS, ERR(401, "exp not in future")},
    /* 8 jwt_nbf_future: accepted by CouchDB */
    {H_HS, "{\"sub\":\"jwtuser\",\"exp\":$P,\"nbf\":$P}", SIGN_KEY, DEFAULTS, OK("\"jwtuser\"", "")},
    /* 9 jwt_nbf_past */
    {H_HS, "{\"sub\":\"jwtuser\",\"exp\":$P,\"nbf\":$M}", SIGN_KEY, DEFAULTS, OK("\"jwtuser\"", "")},
    /* 10 jwt_iat_future */
    {H_HS, "{\"sub\":\"jwtuser\",\"exp\":$P,\"iat\":$P}", SIGN_KEY, DEFAULTS, OK("\"jwtuser\"", "")},
    /* 11 jwt_alg_none */
    {"{\"alg\":\"none\",\"typ\":\"JWT\"}", P_OK, SIGN_EMPTY, DEFAULTS, ERR(400, "Invalid alg header parameter")},
    /* 12 jwt_alg_missing */
    {"{\"typ\":\"JWT\"}", P_OK, SIGN_WRONG, DEFAULTS, ERR(400, "Missing alg header parameter")},
    /* 13 jwt_alg_unsupported */
    {"{\"alg\":\"HS999\",\"typ\":\"JWT\"}", P_OK, SIGN_WRONG, DEFAULTS, ERR(400, "Invalid alg header parameter")},
    /* 14 jwt_bad_signature */
    {H_HS, P_OK, SIGN_WRONG, DEFAULTS, ERR(400, "Bad HMAC")},
    /* 15 jwt_rs256_bad_signature */
    {H_RS, P_OK, SIGN_WRONG, DEFAULTS, ERR(400, "Bad signature")},
    /* 16 jwt_unknown_kid_rs256 */
    {"{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"nokid\"}", P_OK, SIGN_KEY, DEFAULTS, ERR(400, "Unknown kid")},
    /* 17 jwt_unknown_kid_hs256 */
    {"{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"nokid\"}", P_OK, SIGN_KEY, DEFAULTS, ERR(400, "Unknown kid")},
    /* 18 jwt_hs256_signed_with_rsa_public_key: no algorithm confusion */
    {"{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"kid1\"}", P_OK, SIGN_RSA_PEM, DEFAULTS, ERR(400, "Unknown kid")},
    /* 19 jwt_rs256_without_kid: looks for rsa:_default */
    {"{\"alg\":\"RS256\",\"typ\":\"JWT\"}", P_OK, SIGN_KEY, DEFAULTS, ERR(400, "Unknown kid")},
    /* 20 jwt_missing_sub */
    {H_HS, "{\"exp\":$P,\"_couchdb.roles\":[\"readers\"]}", SIGN_KEY, DEFAULTS, ERR(401, "Token missing sub claim.")},
    /* 21 jwt_sub_not_string: kept as a number */
    {H_HS, "{\"sub\":42,\"exp\":$P}", SIGN_KEY, DEFAULTS, OK("42", "")},
    /* 22 jwt_exp_string: "tomorrow" is after every number in Erlang */
    {H_HS, "{\"sub\":\"jwtuser\",\"exp\":\"tomorrow\"}", SIGN_KEY, DEFAULTS, OK("\"jwtuser\"", "")},
    /* 23 jwt_malformed_two_parts */
    {"abc.def", NULL, SIGN_RAW, DEFAULTS, ERR(400, "Malformed token")},
    /* 24 jwt_malformed_garbage */
    {"!!!", NULL, SIGN_RAW, DEFAULTS, ERR(400, "Malformed token")},
    /* 25 jwt_required_exp_missing */
    {H_HS, "{\"sub\":\"jwtuser\"}", SIGN_KEY, REQ("exp"), ERR(400, "Missing exp claim")},
    /* 26 jwt_required_exp_present */
    {H_HS, P_OK, SIGN_KEY, REQ("exp"), OK("\"jwtuser\"", "")},
    /* 27 jwt_required_iss_wrong */
    {H_HS, "{\"sub\":\"jwtuser\",\"exp\":$P,\"iss\":\"someone-else\"}", SIGN_KEY, REQ("exp, {iss, \"golden-issuer\"}"),
     ERR(400, "Invalid iss claim")},
    /* 28 jwt_required_iss_missing */
    {H_HS, P_OK, SIGN_KEY, REQ("exp, {iss, \"golden-issuer\"}"), ERR(400, "Missing iss claim")},
    /* 29 jwt_required_iss_ok */
    {H_HS, "{\"sub\":\"jwtuser\",\"exp\":$P,\"iss\":\"golden-issuer\"}", SIGN_KEY, REQ("exp, {iss, \"golden-issuer\"}"),
     OK("\"jwtuser\"", "")},
    /* 30 jwt_roles_claim_path_nested */
    {H_HS,
     "{\"sub\":\"jwtuser\",\"exp\":$P,\"my\":{\"nested\":{\"roles\":[\"readers\"]}},\"_couchdb.roles\":[\"ignored\"]}",
     SIGN_KEY, PATH("my.nested.roles"), OK("\"jwtuser\"", "readers")},

    /* --- ES256 (not recorded: CouchDB's ec: keys were not configured) */
    /* 31 */ {H_ES, P_READERS, SIGN_KEY, DEFAULTS, OK("\"jwtuser\"", "readers")},
    /* 32 */ {H_ES, P_OK, SIGN_WRONG, DEFAULTS, ERR(400, "Bad signature")},
    /* 33 a DER signature is not JOSE's r||s */
    {H_ES, P_OK, SIGN_ES_DER, DEFAULTS, ERR(400, "Bad signature")},
    /* 34 */ {H_ES, P_OK, SIGN_EMPTY, DEFAULTS, ERR(400, "Bad signature")},
    /* 35 no ec:_default */
    {"{\"alg\":\"ES256\"}", P_OK, SIGN_KEY, DEFAULTS, ERR(400, "Unknown kid")},
    /* 36 an RS256 header cannot use the EC key's kid */
    {"{\"alg\":\"RS256\",\"kid\":\"eckid\"}", P_OK, SIGN_KEY, DEFAULTS, ERR(400, "Unknown kid")},

    /* --- strict mode: what settee refuses and CouchDB accepts */
    /* 37 */ {H_HS, "{\"sub\":\"jwtuser\",\"exp\":\"tomorrow\"}", SIGN_KEY, STRICT, ERR(400, "Invalid exp claim")},
    /* 38 */ {H_HS, "{\"sub\":\"jwtuser\",\"exp\":$P,\"nbf\":$P}", SIGN_KEY, STRICT, ERR(401, "nbf not in past")},
    /* 39 */ {H_HS, "{\"sub\":\"jwtuser\",\"exp\":$P,\"nbf\":$M}", SIGN_KEY, STRICT, OK("\"jwtuser\"", "")},
    /* 40 an nbf of this very second is good (RFC 7519) */
    {H_HS, "{\"sub\":\"jwtuser\",\"exp\":$P,\"nbf\":$N}", SIGN_KEY, STRICT, OK("\"jwtuser\"", "")},
    /* 41 */
    {H_HS, "{\"sub\":\"jwtuser\",\"exp\":$P,\"nbf\":\"now\"}", SIGN_KEY, STRICT, ERR(400, "Invalid nbf claim")},
    /* 42 */ {H_HS, "{\"sub\":\"jwtuser\",\"exp\":$P,\"iat\":[1]}", SIGN_KEY, STRICT, ERR(400, "Invalid iat claim")},
    /* 43 a future iat is still fine */
    {H_HS, "{\"sub\":\"jwtuser\",\"exp\":$P,\"iat\":$P}", SIGN_KEY, STRICT, OK("\"jwtuser\"", "")},
    /* 44 */ {H_HS, "{\"sub\":\"jwtuser\",\"exp\":$P,\"iat\":1.5e9}", SIGN_KEY, STRICT, OK("\"jwtuser\"", "")},
    /* 45 strict checks exp whenever present, even when not required */
    {H_HS, "{\"sub\":\"jwtuser\",\"exp\":$M,\"iss\":\"i\"}", SIGN_KEY, "{iss, \"i\"}", NULL, NULL, true, 0,
     ERR(401, "exp not in future")},
    /* 46 ... which CouchDB does not */
    {H_HS, "{\"sub\":\"jwtuser\",\"exp\":$M,\"iss\":\"i\"}", SIGN_KEY, REQ("{iss, \"i\"}"), OK("\"jwtuser\"", "")},
    /* 47 */ {H_HS, P_READERS, SIGN_KEY, STRICT, OK("\"jwtuser\"", "readers")},

    /* --- clock edges and leeway */
    /* 48 exp == now has expired (CouchDB: exp > now) */
    {H_HS, "{\"sub\":\"jwtuser\",\"exp\":$N}", SIGN_KEY, DEFAULTS, ERR(401, "exp not in future")},
    /* 49 an hour late, with an hour and a second of leeway */
    {H_HS, "{\"sub\":\"jwtuser\",\"exp\":$M}", SIGN_KEY, NULL, NULL, NULL, false, 3601, OK("\"jwtuser\"", "")},
    /* 50 an hour late, with exactly an hour of leeway */
    {H_HS, "{\"sub\":\"jwtuser\",\"exp\":$M}", SIGN_KEY, NULL, NULL, NULL, false, 3600, ERR(401, "exp not in future")},
    /* 51 a future nbf within strict leeway */
    {H_HS, "{\"sub\":\"jwtuser\",\"exp\":$P,\"nbf\":$P}", SIGN_KEY, NULL, NULL, NULL, true, 3600,
     OK("\"jwtuser\"", "")},
    /* 52 a float exp */
    {H_HS, "{\"sub\":\"jwtuser\",\"exp\":1.7e9}", SIGN_KEY, DEFAULTS, ERR(401, "exp not in future")},
    /* 53 */ {H_HS, "{\"sub\":\"jwtuser\",\"exp\":1.8e9}", SIGN_KEY, DEFAULTS, OK("\"jwtuser\"", "")},
    /* 54 a huge exp and a huge negative one */
    {H_HS, "{\"sub\":\"jwtuser\",\"exp\":123456789012345678901234567890}", SIGN_KEY, DEFAULTS, OK("\"jwtuser\"", "")},
    /* 55 */
    {H_HS, "{\"sub\":\"jwtuser\",\"exp\":-123456789012345678901234567890}", SIGN_KEY, DEFAULTS,
     ERR(401, "exp not in future")},
    /* 56 non-numbers are always "in the future" in CouchDB */
    {H_HS, "{\"sub\":\"jwtuser\",\"exp\":null}", SIGN_KEY, DEFAULTS, OK("\"jwtuser\"", "")},

    /* --- required_claims */
    /* 57 a listed nbf is checked (CouchDB: nbf < now) */
    {H_HS, "{\"sub\":\"jwtuser\",\"exp\":$P,\"nbf\":$P}", SIGN_KEY, REQ("exp, nbf"), ERR(401, "nbf not in past")},
    /* 58 */
    {H_HS, "{\"sub\":\"jwtuser\",\"exp\":$P,\"nbf\":$N}", SIGN_KEY, REQ("exp, nbf"), ERR(401, "nbf not in past")},
    /* 59 */ {H_HS, "{\"sub\":\"jwtuser\",\"exp\":$P,\"nbf\":$M}", SIGN_KEY, REQ("exp, nbf"), OK("\"jwtuser\"", "")},
    /* 60 */ {H_HS, P_OK, SIGN_KEY, REQ("exp nbf"), ERR(400, "Missing nbf claim")},
    /* 61 */
    {H_HS, "{\"sub\":\"jwtuser\",\"exp\":$P,\"nbf\":\"x\"}", SIGN_KEY, REQ("nbf"), ERR(401, "nbf not in past")},
    /* 62 a listed iat must be an integer */
    {H_HS, P_OK, SIGN_KEY, REQ("exp,iat"), ERR(400, "Missing iat claim")},
    /* 63 */
    {H_HS, "{\"sub\":\"jwtuser\",\"exp\":$P,\"iat\":1.5}", SIGN_KEY, REQ("exp,iat"), ERR(400, "Invalid iat claim")},
    /* 64 */ {H_HS, "{\"sub\":\"jwtuser\",\"exp\":$P,\"iat\":$P}", SIGN_KEY, REQ("exp,iat"), OK("\"jwtuser\"", "")},
    /* 65 without exp in the list, a missing exp is fine */
    {H_HS, "{\"sub\":\"jwtuser\",\"iss\":\"i\"}", SIGN_KEY, REQ("{iss, \"i\"}"), OK("\"jwtuser\"", "")},
    /* 66 a bare iss is only met by JSON true */
    {H_HS, "{\"sub\":\"jwtuser\",\"exp\":$P,\"iss\":\"i\"}", SIGN_KEY, REQ("exp, iss"), ERR(400, "Invalid iss claim")},
    /* 67 */ {H_HS, "{\"sub\":\"jwtuser\",\"exp\":$P,\"iss\":true}", SIGN_KEY, REQ("exp, iss"), OK("\"jwtuser\"", "")},
    /* 68 typ listed */
    {H_HS, P_OK, SIGN_KEY, REQ("exp, typ"), OK("\"jwtuser\"", "")},
    /* 69 */ {"{\"alg\":\"HS256\"}", P_OK, SIGN_KEY, REQ("exp, typ"), ERR(400, "Missing typ header parameter")},
    /* 70 */
    {"{\"alg\":\"HS256\",\"typ\":\"jwt\"}", P_OK, SIGN_KEY, REQ("exp, typ"), ERR(400, "Invalid typ header parameter")},
    /* 71 an unlisted odd typ passes (CouchDB: a 500) */
    {"{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}", P_OK, SIGN_KEY, DEFAULTS, OK("\"jwtuser\"", "")},
    /* 72 kid listed */
    {H_HS, P_OK, SIGN_KEY, REQ("exp, kid"), ERR(400, "Missing kid claim")},
    /* 73 */ {"{\"alg\":\"HS256\",\"kid\":\"_default\"}", P_OK, SIGN_KEY, REQ("exp, kid"), OK("\"jwtuser\"", "")},
    /* 74 misconfigured: nothing matches (checked before the token) */
    {"!!!", NULL, SIGN_RAW, REQ("  "), ERR(500, "JWT is not configured correctly")},
    /* 75 an unknown check (once the token has three parts) */
    {"!!!", NULL, SIGN_RAW, REQ("exp, sub"), ERR(400, "Malformed token")},
    /* 76 */ {H_HS, P_OK, SIGN_KEY, REQ("exp, sub"), ERR(500, "JWT is not configured correctly")},
    /* 77 {iss, golden} without quotes is iss and golden */
    {H_HS, P_OK, SIGN_KEY, REQ("{iss, golden}"), ERR(500, "JWT is not configured correctly")},
    /* 78 a repeated check, alg included (jwtf lists it first) */
    {H_HS, P_OK, SIGN_KEY, REQ("exp, exp"), ERR(500, "JWT is not configured correctly")},
    /* 79 */ {H_HS, P_OK, SIGN_KEY, REQ("alg"), ERR(500, "JWT is not configured correctly")},
    /* 80 {exp, "x"}: jwtf has no clause for it */
    {H_HS, P_OK, SIGN_KEY, REQ("{exp, \"x\"}"), ERR(500, "JWT is not configured correctly")},
    /* 81 {iss,"a b"} with no spaces; the value may hold anything but '"' */
    {H_HS, "{\"sub\":\"jwtuser\",\"exp\":$P,\"iss\":\"a b}\"}", SIGN_KEY, REQ("{iss,\"a b}\"},exp"),
     OK("\"jwtuser\"", "")},

    /* --- roles */
    /* 82 re:split(Roles, "\\s*,\\s*", [trim]) */
    {H_HS, "{\"sub\":\"jwtuser\",\"exp\":$P,\"_couchdb.roles\":\" a , b,,c\\t, \"}", SIGN_KEY, DEFAULTS,
     OK("\"jwtuser\"", " a|b||c")},
    /* 83 */
    {H_HS, "{\"sub\":\"jwtuser\",\"exp\":$P,\"_couchdb.roles\":\"\"}", SIGN_KEY, DEFAULTS, OK("\"jwtuser\"", "")},
    /* 84 */
    {H_HS, "{\"sub\":\"jwtuser\",\"exp\":$P,\"_couchdb.roles\":[]}", SIGN_KEY, DEFAULTS, OK("\"jwtuser\"", "")},
    /* 85 a role that is not a string */
    {H_HS, "{\"sub\":\"jwtuser\",\"exp\":$P,\"_couchdb.roles\":[\"a\",1]}", SIGN_KEY, DEFAULTS,
     ERR(400, "Malformed token")},
    /* 86 roles neither a list nor a string: re:split raises badarg */
    {H_HS, "{\"sub\":\"jwtuser\",\"exp\":$P,\"_couchdb.roles\":null}", SIGN_KEY, DEFAULTS, ERR(500, "badarg")},
    /* 87 roles are checked before sub */
    {H_HS, "{\"exp\":$P,\"_couchdb.roles\":[1]}", SIGN_KEY, DEFAULTS, ERR(400, "Malformed token")},
    /* 88 a path that is not there */
    {H_HS, P_READERS, SIGN_KEY, PATH("my.nested.roles"), ERR(404, "missing json key: my")},
    /* 89 */
    {H_HS, "{\"sub\":\"jwtuser\",\"exp\":$P,\"my\":{\"nested\":[\"readers\"]}}", SIGN_KEY, PATH("my.nested.roles"),
     ERR(404, "json_mismatch")},
    /* 90 an escaped dot is part of the key */
    {H_HS, "{\"sub\":\"jwtuser\",\"exp\":$P,\"a.b\":{\"c\":\"x,y\"}}", SIGN_KEY, PATH("a\\.b.c"),
     OK("\"jwtuser\"", "x|y")},
    /* 91 roles_claim_name */
    {H_HS, "{\"sub\":\"jwtuser\",\"exp\":$P,\"roles\":[\"r\"],\"_couchdb.roles\":[\"x\"]}", SIGN_KEY, NULL, NULL,
     "roles", false, 0, OK("\"jwtuser\"", "r")},
    /* 92 duplicate claims: the first wins (proplists) */
    {H_HS, "{\"sub\":\"first\",\"sub\":\"second\",\"exp\":$P}", SIGN_KEY, DEFAULTS, OK("\"first\"", "")},

    /* --- structure */
    /* 93 */ {"a.b.c.d", NULL, SIGN_RAW, DEFAULTS, ERR(400, "Malformed token")},
    /* 94 */ {"..", NULL, SIGN_RAW, DEFAULTS, ERR(400, "Malformed token")},
    /* 95 */ {"", NULL, SIGN_RAW, DEFAULTS, ERR(400, "Malformed token")},
    /* 96 a header that is not JSON: base64url("not json") */
    {"bm90IGpzb24.eyJzdWIiOiJqd3R1c2VyIn0.", NULL, SIGN_RAW, DEFAULTS, ERR(400, "Malformed token")},
    /* 97 a header that is JSON but not an object */
    {"[\"HS256\"]", P_OK, SIGN_KEY, DEFAULTS, ERR(400, "Not an object")},
    /* 98 */ {H_HS, "[1]", SIGN_KEY, DEFAULTS, ERR(400, "Not an object")},
    /* 99 */ {H_HS, "{\"sub\":", SIGN_KEY, DEFAULTS, ERR(400, "Malformed token")},
    /* 100 padded base64url is not b64url */
    {"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJqd3R1c2VyIn0=.x", NULL, SIGN_RAW, DEFAULTS, ERR(400, "Malformed token")},
    /* 101 order: an expired token with a bad signature is expired */
    {H_HS, "{\"sub\":\"jwtuser\",\"exp\":$M}", SIGN_WRONG, DEFAULTS, ERR(401, "exp not in future")},
    /* 102 order: a bad signature before a missing sub */
    {H_HS, "{\"exp\":$P}", SIGN_WRONG, DEFAULTS, ERR(400, "Bad HMAC")},
    /* 103 an empty HMAC */
    {H_HS, P_OK, SIGN_EMPTY, DEFAULTS, ERR(400, "Bad HMAC")},

    /* --- keys */
    /* 104 HS512 with the same key */
    {"{\"alg\":\"HS512\"}", P_OK, SIGN_KEY, DEFAULTS, OK("\"jwtuser\"", "")},
    /* 105 the HMAC key must be base64 */
    {"{\"alg\":\"HS256\",\"kid\":\"notb64\"}", P_OK, SIGN_KEY, DEFAULTS, ERR(400, "Not a valid key")},
    /* 106 the RSA key with real newlines */
    {"{\"alg\":\"RS256\",\"kid\":\"plain\"}", P_READERS, SIGN_KEY, DEFAULTS, OK("\"jwtuser\"", "readers")},
    /* 107 */ {"{\"alg\":\"RS256\",\"kid\":\"notpem\"}", P_OK, SIGN_KEY, DEFAULTS, ERR(400, "Not a valid key")},
    /* 108 */ {"{\"alg\":\"RS256\",\"kid\":\"ecpem\"}", P_OK, SIGN_KEY, DEFAULTS, ERR(400, "not an RSA public key")},
    /* 109 */ {"{\"alg\":\"ES256\",\"kid\":\"rsapem\"}", P_OK, SIGN_KEY, DEFAULTS, ERR(400, "not an EC public key")},
    /* 110 a private key is not a public key */
    {"{\"alg\":\"RS256\",\"kid\":\"private\"}", P_OK, SIGN_KEY, DEFAULTS, ERR(400, "not an RSA public key")},
    /* 111 a kid that is not a string */
    {"{\"alg\":\"HS256\",\"kid\":1}", P_OK, SIGN_KEY, DEFAULTS, ERR(400, "Unknown kid")},
    /* 112 RS384 with the same key */
    {"{\"alg\":\"RS384\",\"kid\":\"kid1\"}", P_OK, SIGN_KEY, DEFAULTS, OK("\"jwtuser\"", "")},
};

static void jwt_cases(void **state)
{
    (void)state;
    const stt_jwt_key_t keys[] = {
        {"hmac:_default", HMAC_KEY_B64}, {"rsa:kid1", rsa_public_config}, {"ec:eckid", ec_public_pem},
        {"hmac:notb64", "!!!"},          {"rsa:plain", rsa_public_pem},   {"rsa:notpem", "hello"},
        {"rsa:ecpem", ec_public_pem},    {"ec:rsapem", rsa_public_pem},   {"rsa:private", rsa_private_pem},
    };
    for (size_t i = 0; i < NCASES(jwt_cases_table); i++) {
        const jwt_case_t *c = &jwt_cases_table[i];
        char *token = make_token(c->header, c->payload, c->sign);
        stt_jwt_opts_t opts = {keys,          NCASES(keys), c->required_claims, c->roles_path,
                               c->roles_name, NOW,          c->leeway,          c->strict};
        stt_arena_t arena = STT_ARENA_INIT;
        stt_jwt_result_t r;
        stt_jwt_verify(&arena, token, strlen(token), &opts, &r);
        if (r.status != c->status || (c->reason ? !r.reason || strcmp(r.reason, c->reason) != 0 : r.reason != NULL))
            fail_msg("case %zu: %d \"%s\", expected %d \"%s\"", i + 1, r.status, r.reason ? r.reason : "(null)",
                     c->status, c->reason ? c->reason : "(null)");
        if (c->status == 0) {
            stt_buf_t sub = STT_BUF_INIT, roles = STT_BUF_INIT;
            assert_non_null(r.sub);
            stt_json_write(&sub, r.sub);
            for (size_t k = 0; k < r.nroles; k++) {
                if (k) stt_buf_appendc(&roles, '|');
                stt_buf_appends(&roles, r.roles[k]);
            }
            stt_buf_appends(&roles, "");
            if (strcmp(sub.base, c->sub) != 0 || strcmp(roles.base, c->roles) != 0)
                fail_msg("case %zu: sub %s roles \"%s\", expected %s \"%s\"", i + 1, sub.base, roles.base, c->sub,
                         c->roles);
            stt_buf_free(&sub);
            stt_buf_free(&roles);
        } else if (r.sub || r.nroles) {
            fail_msg("case %zu: sub or roles set on failure", i + 1);
        }
        stt_arena_free(&arena);
        free(token);
    }
}

/* ====================================================================================
 * Registry */

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ct_equal_cases),
        cmocka_unit_test(random_bytes),
        cmocka_unit_test(base64url_encode_cases),
        cmocka_unit_test(base64url_decode_cases),
        cmocka_unit_test(base64url_roundtrip),
        cmocka_unit_test(hmac_cases),
        cmocka_unit_test(pbkdf2_cases),
        cmocka_unit_test(pw_check_admin_cases),
        cmocka_unit_test(pw_is_hashed_cases),
        cmocka_unit_test(pw_hash_admin),
        cmocka_unit_test(pw_check_admin_600000),
        cmocka_unit_test(pw_check_user_cases),
        cmocka_unit_test(pw_hash_user),
        cmocka_unit_test(cookie_make_cases),
        cmocka_unit_test(cookie_parse_cases),
        cmocka_unit_test(cookie_verify_cases),
        cmocka_unit_test(cookie_roundtrip),
        cmocka_unit_test(proxy_token_cases),
        cmocka_unit_test_setup_teardown(jwt_cases, jwt_setup, jwt_teardown),
    };
    if (argc > 1) {
        char filter[256];
        snprintf(filter, sizeof(filter), "*%s*", argv[1]);
        cmocka_set_test_filter(filter);
    }
    return cmocka_run_group_tests_name("security_crypto", tests, NULL, NULL);
}
