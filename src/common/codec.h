/* Byte codecs: base64 (attachments inline in JSON), hex, md5 (attachment digests,
 * via OpenSSL) and random ids (uuids). */
#ifndef STT_CODEC_H
#define STT_CODEC_H
#include "src/common/buf.h"
#include <stddef.h>

void stt_base64_encode(stt_buf_t *out, const void *data, size_t len);
/* Appends the decoded bytes; whitespace is skipped. 0, or -1 on bad input. */
int stt_base64_decode(stt_buf_t *out, const char *s, size_t len);
void stt_hex_encode(stt_buf_t *out, const void *data, size_t len);
void stt_md5(const void *data, size_t len, unsigned char digest[16]);
/* gzip with CouchDB's attachment settings (deflate level 8, gzip header with mtime
 * 0): the same bytes, so the same md5 digests, as CouchDB stores. Appends to out. */
void stt_gzip(stt_buf_t *out, const void *data, size_t len);
/* Appends the inflated bytes; -1 on corrupt input or when the output would pass
 * max bytes (a bound against decompression bombs). */
int stt_gunzip(stt_buf_t *out, const void *data, size_t len, size_t max);
/* 32 lowercase hex characters of 128 random bits, NUL-terminated (33 bytes). */
void stt_uuid_random(char out[33]);

#endif
