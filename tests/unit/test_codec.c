/* Unit tests for src/common/codec.c: base64 (RFC 4648 vectors, whitespace, bad
 * characters and padding), hex, md5 (RFC 1321 vectors), gzip with CouchDB's
 * settings (the same bytes, so the same attachment digests), gunzip round trips and
 * refusals (corrupt, truncated, over the cap), and random uuids.
 *
 * Each test walks a table of numbered cases; a failure names its case. Run one test
 * alone by naming it: test_codec base64_decode_cases */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "src/common/codec.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* A literal and its length, so data may hold NUL bytes. */
#define S(lit) lit, sizeof(lit) - 1
#define NCASES(t) (sizeof(t) / sizeof((t)[0]))

static uint64_t rng_state;
static uint32_t rnd(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rng_state >> 33);
}
static void fill_random(unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)rnd();
}

/* ---------------------------------------------------------------------------------
 * base64 and hex
 * --------------------------------------------------------------------------------- */

static void base64_encode_cases(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t len;
        const char *want;
    } cases[] = {
        /* RFC 4648 section 10 */
        /* 1 */ {S(""), ""},
        /* 2 */ {S("f"), "Zg=="},
        /* 3 */ {S("fo"), "Zm8="},
        /* 4 */ {S("foo"), "Zm9v"},
        /* 5 */ {S("foob"), "Zm9vYg=="},
        /* 6 */ {S("fooba"), "Zm9vYmE="},
        /* 7 */ {S("foobar"), "Zm9vYmFy"},
        /* both ends of the alphabet, NULs, high bytes */
        /* 8 */ {S("\xfb\xff"), "+/8="},
        /* 9 */ {S("\xff\xff\xff"), "////"},
        /* 10 */ {S("\0"), "AA=="},
        /* 11 */ {S("\0\0\0"), "AAAA"},
        /* 12 */ {S("\0\1binary?"), "AAFiaW5hcnk/"},
        /* 13 */ {S("hello attachment\n"), "aGVsbG8gYXR0YWNobWVudAo="},
        /* 14 */ {S("\xa8\x4b\xcf\x95\x14\x27\x88\x30\x45\x34\xc2\x47\x76\x71\xaf\x75"), "qEvPlRQniDBFNMJHdnGvdQ=="},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        stt_buf_t out = STT_BUF_INIT;
        stt_buf_appends(&out, "pre"); /* output is appended */
        stt_base64_encode(&out, cases[i].in, cases[i].len);
        size_t wlen = strlen(cases[i].want);
        if (out.len != 3 + wlen || memcmp(out.base, "pre", 3) != 0 || strcmp(out.base + 3, cases[i].want) != 0)
            fail_msg("case %zu: \"%s\", expected \"pre%s\"", i + 1, out.base, cases[i].want);
        stt_buf_free(&out);
    }
    /* from an empty buffer with nothing to encode: still a NUL-terminated string */
    stt_buf_t out = STT_BUF_INIT;
    stt_base64_encode(&out, "", 0);
    assert_non_null(out.base);
    assert_int_equal(out.len, 0);
    assert_string_equal(out.base, "");
    stt_buf_free(&out);
}

static void base64_decode_cases(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *want; /* NULL: rejected */
        size_t wantlen;
    } cases[] = {
        /* RFC 4648 section 10 */
        /* 1 */ {"", S("")},
        /* 2 */ {"Zg==", S("f")},
        /* 3 */ {"Zm8=", S("fo")},
        /* 4 */ {"Zm9v", S("foo")},
        /* 5 */ {"Zm9vYg==", S("foob")},
        /* 6 */ {"Zm9vYmE=", S("fooba")},
        /* 7 */ {"Zm9vYmFy", S("foobar")},
        /* 8 */ {"+/8=", S("\xfb\xff")},
        /* 9 */ {"AAFiaW5hcnk/", S("\0\1binary?")},
        /* whitespace is skipped anywhere, padding included */
        /* 10 */ {"Zm9v\nYmFy", S("foobar")},
        /* 11 */ {" Zm9vYg== ", S("foob")},
        /* 12 */ {"Zm 9v\r\nYg\t==", S("foob")},
        /* 13 */ {"Zm9vYg=\n=\n", S("foob")},
        /* 14 */ {"\r\n\t ", S("")},
        /* 15 */ {"Zm9v\r\nYmFy\r\nZm9v\r\nYmE=\r\n", S("foobarfooba")},
        /* the url-safe alphabet is taken too */
        /* 16 */ {"-_8=", S("\xfb\xff")},
        /* bad characters */
        /* 17 */ {"Zm9v!", NULL, 0},
        /* 18 */ {"Zm9v*YmFy", NULL, 0},
        /* 19 */ {"Zm9v.YmFy", NULL, 0},
        /* 20 */ {"Zm9v\vYmFy", NULL, 0},
        /* 21 */ {"Zm9v\xc3\xa9", NULL, 0},
        /* 22 */ {"Zg==\x01", NULL, 0},
        /* 23 */ {"data:Zg==", NULL, 0},
        /* bad padding: the encoded text comes in whole quanta of four, as Erlang's
         * base64:decode, which CouchDB uses for attachment data, insists */
        /* 24 */ {"Z", NULL, 0},
        /* 25 */ {"Zm9vY", NULL, 0},
        /* 26 */ {"Z===", NULL, 0},
        /* 27 */ {"Zg=", NULL, 0},
        /* 28 */ {"Zg", NULL, 0},
        /* 29 */ {"Zm8", NULL, 0},
        /* 30 */ {"Zm9vYg", NULL, 0},
        /* 31 */ {"Zm8==", NULL, 0},
        /* 32 */ {"Zm9v=", NULL, 0},
        /* 33 */ {"Zm9v==", NULL, 0},
        /* 34 */ {"Zg===", NULL, 0},
        /* 35 */ {"=", NULL, 0},
        /* 36 */ {"==", NULL, 0},
        /* 37 */ {"====", NULL, 0},
        /* 38 */ {"Zg==Zg==", NULL, 0},
        /* 39 */ {"Zg=a", NULL, 0},
        /* 40 */ {"Zm=9", NULL, 0},
        /* 41 */ {"=Zm9v", NULL, 0},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        stt_buf_t out = STT_BUF_INIT;
        stt_buf_appends(&out, "pre"); /* output is appended */
        int rc = stt_base64_decode(&out, cases[i].in, strlen(cases[i].in));
        if (!cases[i].want) {
            if (rc != -1) fail_msg("case %zu: \"%s\" accepted", i + 1, cases[i].in);
        } else {
            if (rc != 0) fail_msg("case %zu: \"%s\" rejected", i + 1, cases[i].in);
            if (out.len != 3 + cases[i].wantlen || memcmp(out.base, "pre", 3) != 0 ||
                memcmp(out.base + 3, cases[i].want, cases[i].wantlen) != 0 || out.base[out.len] != '\0')
                fail_msg("case %zu: \"%s\" decoded to %zu bytes, expected %zu", i + 1, cases[i].in, out.len - 3,
                         cases[i].wantlen);
        }
        stt_buf_free(&out);
    }
}

/* Every length 0..300 of random bytes survives encode then decode, also with the
 * text broken into 76-column lines as MIME writers do. */
static void base64_roundtrip(void **state)
{
    (void)state;
    rng_state = 4648;
    unsigned char data[300];
    for (size_t n = 0; n <= sizeof data; n++) {
        fill_random(data, n);
        stt_buf_t enc = STT_BUF_INIT, wrapped = STT_BUF_INIT, dec = STT_BUF_INIT;
        stt_base64_encode(&enc, data, n);
        if (enc.len != (n + 2) / 3 * 4) fail_msg("length %zu: %zu characters", n, enc.len);
        for (size_t k = 0; k < enc.len; k += 76) {
            stt_buf_append(&wrapped, enc.base + k, enc.len - k < 76 ? enc.len - k : 76);
            stt_buf_appends(&wrapped, "\r\n");
        }
        for (int pass = 0; pass < 2; pass++) {
            const stt_buf_t *in = pass ? &wrapped : &enc;
            stt_buf_reset(&dec);
            if (stt_base64_decode(&dec, in->base ? in->base : "", in->len) != 0)
                fail_msg("length %zu, pass %d: rejected", n, pass);
            if (dec.len != n || memcmp(dec.base, data, n) != 0)
                fail_msg("length %zu, pass %d: decoded to different bytes", n, pass);
        }
        stt_buf_free(&enc);
        stt_buf_free(&wrapped);
        stt_buf_free(&dec);
    }
}

static void hex_cases(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t len;
        const char *want;
    } cases[] = {
        /* 1 */ {S(""), ""},
        /* 2 */ {S("\0"), "00"},
        /* 3 */ {S("\x01\x23\x45\x67\x89\xab\xcd\xef"), "0123456789abcdef"},
        /* 4 */ {S("\xff\x10"), "ff10"},
        /* 5 */ {S("abc"), "616263"},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        stt_buf_t out = STT_BUF_INIT;
        stt_buf_appends(&out, "pre");
        stt_hex_encode(&out, cases[i].in, cases[i].len);
        if (strncmp(out.base, "pre", 3) != 0 || strcmp(out.base + 3, cases[i].want) != 0 ||
            out.len != 3 + strlen(cases[i].want))
            fail_msg("case %zu: \"%s\", expected \"pre%s\"", i + 1, out.base, cases[i].want);
        stt_buf_free(&out);
    }
}

/* ---------------------------------------------------------------------------------
 * md5
 * --------------------------------------------------------------------------------- */

static void md5_cases(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *want;
    } cases[] = {
        /* RFC 1321 appendix A.5 */
        /* 1 */ {"", "d41d8cd98f00b204e9800998ecf8427e"},
        /* 2 */ {"a", "0cc175b9c0f1b6a831c399e269772661"},
        /* 3 */ {"abc", "900150983cd24fb0d6963f7d28e17f72"},
        /* 4 */ {"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
        /* 5 */ {"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"},
        /* 6 */ {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "d174ab98d277d9f5a5611c2c9f419d9f"},
        /* 7 */
        {"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
         "57edf4a22be3c955ac49da2e2107b67a"},
        /* an attachment body as CouchDB digests it (identity encoding) */
        /* 8 */ {"hello attachment\n", "17b8f931068345055c3e719aab14f158"},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        unsigned char d[16];
        stt_md5(cases[i].in, strlen(cases[i].in), d);
        stt_buf_t hex = STT_BUF_INIT;
        stt_hex_encode(&hex, d, sizeof d);
        if (strcmp(hex.base, cases[i].want) != 0)
            fail_msg("case %zu: md5 %s, expected %s", i + 1, hex.base, cases[i].want);
        stt_buf_free(&hex);
    }
}

/* ---------------------------------------------------------------------------------
 * gzip and gunzip
 * --------------------------------------------------------------------------------- */

/* CouchDB compresses an attachment with zlib (level 8, gzip wrapper, mtime 0) and
 * keeps the md5 of the compressed bytes as its digest: ours must be the same bytes
 * or digests differ between replicas. */
static void gzip_couchdb_bytes(void **state)
{
    (void)state;
    static const unsigned char want[] = {0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xcb, 0x48, 0xcd,
                                         0xc9, 0xc9, 0x57, 0x48, 0x2c, 0x29, 0x49, 0x4c, 0xce, 0xc8, 0x4d, 0xcd, 0x2b,
                                         0xe1, 0x02, 0x00, 0x8e, 0x1d, 0xc9, 0x8a, 0x11, 0x00, 0x00, 0x00};
    stt_buf_t gz = STT_BUF_INIT;
    stt_buf_appends(&gz, "pre"); /* output is appended */
    stt_gzip(&gz, S("hello attachment\n"));
    assert_int_equal(gz.len, 3 + sizeof want);
    assert_memory_equal(gz.base, "pre", 3);
    assert_memory_equal(gz.base + 3, want, sizeof want);

    unsigned char d[16];
    stt_md5(gz.base + 3, gz.len - 3, d);
    stt_buf_t b64 = STT_BUF_INIT;
    stt_base64_encode(&b64, d, sizeof d);
    assert_string_equal(b64.base, "qEvPlRQniDBFNMJHdnGvdQ==");

    /* and it decodes back */
    stt_buf_t plain = STT_BUF_INIT;
    assert_int_equal(stt_gunzip(&plain, gz.base + 3, gz.len - 3, 17), 0);
    assert_int_equal(plain.len, 17);
    assert_memory_equal(plain.base, "hello attachment\n", 17);
    stt_buf_free(&plain);
    stt_buf_free(&b64);
    stt_buf_free(&gz);
}

/* gzip then gunzip gives the input back, at sizes around the 64 KiB inflate step,
 * with the cap at exactly the size (fine) and one below (refused). */
static void gzip_roundtrip(void **state)
{
    (void)state;
    static const struct {
        size_t len;
        int kind; /* 0 random bytes, 1 zeros, 2 text-like */
    } cases[] = {
        /* 1 */ {0, 0},
        /* 2 */ {1, 0},
        /* 3 */ {17, 2},
        /* 4 */ {1000, 0},
        /* 5 */ {65535, 0},
        /* 6 */ {65536, 0},
        /* 7 */ {65537, 0},
        /* 8 */ {65536, 1},
        /* 9 */ {200000, 0},
        /* 10 */ {300001, 1},
        /* 11 */ {300001, 2},
    };
    rng_state = 1952;
    for (size_t i = 0; i < NCASES(cases); i++) {
        size_t n = cases[i].len;
        unsigned char *data = malloc(n ? n : 1);
        assert_non_null(data);
        if (cases[i].kind == 0)
            fill_random(data, n);
        else if (cases[i].kind == 1)
            memset(data, 0, n);
        else
            for (size_t k = 0; k < n; k++)
                data[k] = (unsigned char)("the quick brown fox\n"[rnd() % 20]);
        stt_buf_t gz = STT_BUF_INIT, out = STT_BUF_INIT;
        stt_gzip(&gz, data, n);
        if (gz.len < 18 || (unsigned char)gz.base[0] != 0x1f || (unsigned char)gz.base[1] != 0x8b)
            fail_msg("case %zu: not a gzip member", i + 1);
        /* same input, same bytes */
        stt_buf_t again = STT_BUF_INIT;
        stt_gzip(&again, data, n);
        if (again.len != gz.len || memcmp(again.base, gz.base, gz.len) != 0)
            fail_msg("case %zu: gzip is not deterministic", i + 1);
        stt_buf_free(&again);

        stt_buf_appends(&out, "pre");
        if (stt_gunzip(&out, gz.base, gz.len, n) != 0)
            fail_msg("case %zu: gunzip refused its own output at cap %zu", i + 1, n);
        if (out.len != 3 + n || memcmp(out.base, "pre", 3) != 0 || (n && memcmp(out.base + 3, data, n) != 0))
            fail_msg("case %zu: %zu bytes back, expected %zu", i + 1, out.len - 3, n);
        stt_buf_reset(&out);
        if (n && stt_gunzip(&out, gz.base, gz.len, n - 1) != -1)
            fail_msg("case %zu: %zu bytes accepted under a cap of %zu", i + 1, n, n - 1);
        if (out.len > n) fail_msg("case %zu: %zu bytes written past the cap", i + 1, out.len);
        /* zlib agrees that these are the input's bytes */
        if (n) {
            uLongf zlen = (uLongf)n;
            unsigned char *z = malloc(n);
            z_stream zs;
            memset(&zs, 0, sizeof zs);
            assert_int_equal(inflateInit2(&zs, 31), Z_OK);
            zs.next_in = (Bytef *)gz.base, zs.avail_in = (uInt)gz.len;
            zs.next_out = z, zs.avail_out = (uInt)zlen;
            assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
            assert_int_equal(zs.total_out, n);
            assert_memory_equal(z, data, n);
            inflateEnd(&zs);
            free(z);
        }
        stt_buf_free(&out);
        stt_buf_free(&gz);
        free(data);
    }
}

/* Corrupt, truncated, foreign and oversized input is refused. */
static void gunzip_refusals(void **state)
{
    (void)state;
    static const char text[] = "hello attachment\nhello attachment\nhello attachment\n";
    stt_buf_t gz = STT_BUF_INIT;
    stt_gzip(&gz, S(text));
    const size_t n = gz.len, tlen = sizeof text - 1;

    /* a bomb: 8 MiB of zeros in a few KB */
    size_t zeros = 8u << 20;
    unsigned char *zbuf = calloc(1, zeros);
    assert_non_null(zbuf);
    stt_buf_t bomb = STT_BUF_INIT;
    stt_gzip(&bomb, zbuf, zeros);
    free(zbuf);
    assert_true(bomb.len < 64 * 1024);

    /* the same text as a zlib (not gzip) stream and as raw deflate */
    unsigned char zl[256];
    uLongf zllen = sizeof zl;
    assert_int_equal(compress2(zl, &zllen, (const Bytef *)text, tlen, 8), Z_OK);

    static const struct {
        int kind;
        size_t cap;
        int rc;
        size_t outlen;
    } cases[] = {
        /* 1 */ {0, 1 << 20, 0, sizeof text - 1},       /* the member as is */
        /* 2 */ {1, 1 << 20, 0, 2 * (sizeof text - 1)}, /* two members, one after the other */
        /* 3 */ {2, 1 << 20, -1, 0},                    /* bad magic */
        /* 4 */ {3, 1 << 20, -1, 0},                    /* not deflate (method 7) */
        /* 5 */ {4, 1 << 20, -1, 0},                    /* a flipped bit in the deflate data */
        /* 6 */ {5, 1 << 20, -1, 0},                    /* bad CRC32 */
        /* 7 */ {6, 1 << 20, -1, 0},                    /* bad ISIZE */
        /* 8 */ {7, 1 << 20, -1, 0},                    /* trailing junk */
        /* 9 */ {8, 1 << 20, -1, 0},                    /* trailing zero bytes */
        /* 10 */ {9, 1 << 20, -1, 0},                   /* a zlib stream */
        /* 11 */ {10, 1 << 20, -1, 0},                  /* plain text */
        /* 12 */ {11, 1 << 20, -1, 0},                  /* nothing */
        /* 13 */ {12, 1 << 20, -1, 0},                  /* the bomb against a 1 MiB cap */
        /* 14 */ {12, 8u << 20, 0, 8u << 20},           /* the bomb within its cap */
        /* 15 */ {0, sizeof text - 2, -1, 0},           /* one byte over the cap */
        /* 16 */ {0, 0, -1, 0},                         /* a zero cap */
        /* 17 */ {1, sizeof text - 1, -1, 0},           /* the cap counts all members */
        /* 18 */ {13, 1 << 20, -1, 0},                  /* a second member cut short */
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        unsigned char in[512];
        const void *p = in;
        size_t len = 0;
        assert_true(2 * n + 16 <= sizeof in);
        switch (cases[i].kind) {
        case 0:
            p = gz.base, len = n;
            break;
        case 1:
            memcpy(in, gz.base, n), memcpy(in + n, gz.base, n), len = 2 * n;
            break;
        case 2:
            memcpy(in, gz.base, n), in[1] = 0x8c, len = n;
            break;
        case 3:
            memcpy(in, gz.base, n), in[2] = 7, len = n;
            break;
        case 4:
            memcpy(in, gz.base, n), in[12] ^= 0x10, len = n;
            break;
        case 5:
            memcpy(in, gz.base, n), in[n - 8] ^= 1, len = n;
            break;
        case 6:
            memcpy(in, gz.base, n), in[n - 4] ^= 1, len = n;
            break;
        case 7:
            memcpy(in, gz.base, n), memcpy(in + n, "junk", 4), len = n + 4;
            break;
        case 8:
            memcpy(in, gz.base, n), memset(in + n, 0, 8), len = n + 8;
            break;
        case 9:
            p = zl, len = zllen;
            break;
        case 10:
            p = text, len = tlen;
            break;
        case 11:
            p = "", len = 0;
            break;
        case 12:
            p = bomb.base, len = bomb.len;
            break;
        case 13:
            memcpy(in, gz.base, n), memcpy(in + n, gz.base, 10), len = n + 10;
            break;
        }
        stt_buf_t out = STT_BUF_INIT;
        stt_buf_appends(&out, "pre"); /* output is appended */
        int rc = stt_gunzip(&out, p, len, cases[i].cap);
        if (rc != cases[i].rc) fail_msg("case %zu: rc %d, expected %d", i + 1, rc, cases[i].rc);
        if (rc == 0 && out.len != 3 + cases[i].outlen)
            fail_msg("case %zu: %zu bytes out, expected %zu", i + 1, out.len - 3, cases[i].outlen);
        if (rc == 0 && cases[i].kind <= 1 && memcmp(out.base + 3, text, tlen) != 0)
            fail_msg("case %zu: wrong bytes", i + 1);
        /* refused or not, memory stays bounded by the cap */
        if (out.len - 3 > cases[i].cap + 1)
            fail_msg("case %zu: %zu bytes written under a cap of %zu", i + 1, out.len - 3, cases[i].cap);
        stt_buf_free(&out);
    }

    /* every strict prefix of a member is refused */
    for (size_t k = 0; k < n; k++) {
        stt_buf_t out = STT_BUF_INIT;
        if (stt_gunzip(&out, gz.base, k, 1 << 20) != -1) fail_msg("prefix of %zu bytes (of %zu) accepted", k, n);
        stt_buf_free(&out);
    }
    /* and a flip of any one bit is caught (by the CRC32 and ISIZE at worst) or
     * changes nothing that is decoded (FTEXT); MTIME, XFL and OS only inform */
    for (size_t k = 0; k < n; k++) {
        if (k >= 4 && k <= 9) continue;
        for (int bit = 0; bit < 8; bit++) {
            unsigned char in[256];
            memcpy(in, gz.base, n);
            in[k] ^= (unsigned char)(1u << bit);
            stt_buf_t out = STT_BUF_INIT;
            int rc = stt_gunzip(&out, in, n, 1 << 20);
            if (rc == 0 && (out.len != tlen || memcmp(out.base, text, tlen) != 0))
                fail_msg("byte %zu bit %d: accepted with different output", k, bit);
            stt_buf_free(&out);
        }
    }
    stt_buf_free(&bomb);
    stt_buf_free(&gz);
}

/* ---------------------------------------------------------------------------------
 * uuids
 * --------------------------------------------------------------------------------- */

static int cmp_uuid(const void *a, const void *b)
{
    return memcmp(a, b, 33);
}

static void uuid_random(void **state)
{
    (void)state;
    enum { N = 2000 };
    char(*ids)[33] = calloc(N, 33);
    assert_non_null(ids);
    for (int i = 0; i < N; i++) {
        memset(ids[i], 'X', 33);
        stt_uuid_random(ids[i]);
        if (ids[i][32] != '\0') fail_msg("uuid %d: not NUL-terminated", i);
        for (int k = 0; k < 32; k++) {
            char c = ids[i][k];
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
                fail_msg("uuid %d: \"%.32s\" has a character outside lowercase hex at %d", i, ids[i], k);
        }
    }
    qsort(ids, N, 33, cmp_uuid);
    for (int i = 1; i < N; i++)
        if (strcmp(ids[i - 1], ids[i]) == 0) fail_msg("uuid \"%s\" came twice", ids[i]);
    /* all sixteen digits turn up in every position across the sample: really random */
    for (int k = 0; k < 32; k++) {
        int seen = 0;
        for (int i = 0; i < N; i++) {
            char c = ids[i][k];
            seen |= 1 << (c <= '9' ? c - '0' : c - 'a' + 10);
        }
        if (seen != 0xffff) fail_msg("position %d: only digits %04x seen", k, seen);
    }
    free(ids);
}

/* ====================================================================================
 * Registry */

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(base64_encode_cases), cmocka_unit_test(base64_decode_cases),
        cmocka_unit_test(base64_roundtrip),    cmocka_unit_test(hex_cases),
        cmocka_unit_test(md5_cases),           cmocka_unit_test(gzip_couchdb_bytes),
        cmocka_unit_test(gzip_roundtrip),      cmocka_unit_test(gunzip_refusals),
        cmocka_unit_test(uuid_random),
    };
    if (argc > 1) {
        char filter[256];
        snprintf(filter, sizeof(filter), "*%s*", argv[1]);
        cmocka_set_test_filter(filter);
    }
    return cmocka_run_group_tests_name("codec", tests, NULL, NULL);
}
