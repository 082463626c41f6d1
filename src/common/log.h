/* Logging to stderr: a level threshold and two formats (text, JSON lines). The
 * access log is one line per request at INFO. Thread-safe: each line is one
 * write(2). */
#ifndef STT_LOG_H
#define STT_LOG_H
#include <stddef.h>

enum { STT_LOG_DEBUG, STT_LOG_INFO, STT_LOG_WARNING, STT_LOG_ERROR, STT_LOG_NONE };
enum { STT_LOG_TEXT, STT_LOG_JSON };

void stt_log_setup(int level, int format);
int stt_log_enabled(int level);
void stt_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void stt_log_access(const char *reqid, const char *method, size_t methodlen, const char *path, size_t pathlen,
                    int status, double ms);

#endif
