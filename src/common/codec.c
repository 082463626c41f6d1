/* base64, hex, md5 and random ids. */
#include "src/common/codec.h"
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <zlib.h>

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void stt_base64_encode(stt_buf_t *out, const void *data, size_t len)
{
    const unsigned char *p = data;
    stt_buf_reserve(out, (len + 2) / 3 * 4 + 1);
    char *o = out->base + out->len;
    size_t i = 0;
    for (; i + 2 < len; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        *o++ = b64[v >> 18], *o++ = b64[(v >> 12) & 63], *o++ = b64[(v >> 6) & 63], *o++ = b64[v & 63];
    }
    if (i < len) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < len ? (unsigned)p[i + 1] << 8 : 0);
        *o++ = b64[v >> 18];
        *o++ = b64[(v >> 12) & 63];
        *o++ = i + 1 < len ? b64[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    out->len = (size_t)(o - out->base);
    out->base[out->len] = '\0';
}

/* The value of a base64 character, -1 for none: a function rather than a table
 * filled on first use, which two threads could race on. */
static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') /* url-safe alphabet too */
        return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

int stt_base64_decode(stt_buf_t *out, const char *s, size_t len)
{
    stt_buf_reserve(out, len / 4 * 3 + 4);
    unsigned acc = 0;
    int bits = 0, pad = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
        if (c == '=') {
            pad++;
            continue;
        }
        int v = b64val(c);
        if (pad || v < 0) return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out->base[out->len++] = (char)((acc >> bits) & 0xff);
        }
    }
    /* The text comes in whole quanta of four characters, '=' filling out the last:
     * two data characters leave 4 spare bits and take "==", three leave 2 and take
     * "=". Erlang's base64:decode, which CouchDB runs on attachment data, refuses
     * anything else, missing padding included. */
    if (pad > 2 || bits != 2 * pad) return -1;
    out->base[out->len] = '\0';
    return 0;
}

void stt_hex_encode(stt_buf_t *out, const void *data, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = data;
    stt_buf_reserve(out, len * 2 + 1);
    for (size_t i = 0; i < len; i++) {
        out->base[out->len++] = hex[p[i] >> 4];
        out->base[out->len++] = hex[p[i] & 15];
    }
    out->base[out->len] = '\0';
}

void stt_md5(const void *data, size_t len, unsigned char digest[16])
{
    unsigned int n = 16;
    if (!EVP_Digest(data, len, digest, &n, EVP_md5(), NULL)) {
        fprintf(stderr, "settee: md5 failed\n");
        abort();
    }
}

void stt_uuid_random(char out[33])
{
    unsigned char r[16];
    if (RAND_bytes(r, 16) != 1) {
        fprintf(stderr, "settee: no randomness\n");
        abort();
    }
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[r[i] >> 4];
        out[2 * i + 1] = hex[r[i] & 15];
    }
    out[32] = '\0';
}

void stt_gzip(stt_buf_t *out, const void *data, size_t len)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, 8, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        fprintf(stderr, "settee: deflateInit2 failed\n");
        abort();
    }
    size_t bound = deflateBound(&z, len);
    stt_buf_reserve(out, bound + 1);
    z.next_in = (Bytef *)(uintptr_t)data;
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)out->base + out->len;
    z.avail_out = (uInt)bound;
    int rc = deflate(&z, Z_FINISH);
    if (rc != Z_STREAM_END) {
        fprintf(stderr, "settee: deflate failed\n");
        abort();
    }
    out->len += bound - z.avail_out;
    out->base[out->len] = '\0';
    deflateEnd(&z);
}

int stt_gunzip(stt_buf_t *out, const void *data, size_t len, size_t cap)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, 15 + 16) != Z_OK) return -1;
    const char *next = data;
    size_t left = len, start = out->len;
    int ok = -1;
    for (;;) {
        if (z.avail_in == 0 && left) {
            /* zlib counts in uInt: feed at most 1 GiB at a time */
            uInt chunk = left > (1u << 30) ? (1u << 30) : (uInt)left;
            z.next_in = (Bytef *)next;
            z.avail_in = chunk;
            next += chunk;
            left -= chunk;
        }
        /* room for one byte past cap, so output of exactly cap bytes can still
         * reach its end marker */
        size_t avail = cap - (out->len - start);
        size_t room = avail < 64 * 1024 ? avail + 1 : 64 * 1024;
        stt_buf_reserve(out, room + 1);
        z.next_out = (Bytef *)out->base + out->len;
        z.avail_out = (uInt)room;
        int rc = inflate(&z, Z_NO_FLUSH);
        out->len += room - z.avail_out;
        out->base[out->len] = '\0';
        if (out->len - start > cap) break;
        if (rc == Z_STREAM_END) {
            if (z.avail_in == 0 && left == 0) {
                ok = 0;
                break;
            }
            /* concatenated members decode as one stream (RFC 1952 2.2) */
            if (inflateReset(&z) != Z_OK) break;
            continue;
        }
        /* Z_OK with all input taken and output room left: the stream stops short */
        if (rc != Z_OK || (z.avail_in == 0 && left == 0 && z.avail_out != 0)) break;
    }
    inflateEnd(&z);
    return ok;
}
