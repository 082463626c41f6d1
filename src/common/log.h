/* Logging to stderr: a level threshold and two formats (text, JSON lines). The
 * access log is one line per request at INFO, naming the authenticated user (never
 * a credential); a request slower than [settee] slow_request_ms also gets a WARNING
 * line. Thread-safe: each line is one write(2).
 *
 * Live settings: once stt_log_follow is given the live ini, a change of [log] level or
 * [settee] slow_request_ms made through /_node/_local/_config applies to the next line
 * (the ini's generation is checked, one atomic load per call). A level given by flag or
 * environment holds until the ini's [log] level itself changes. */
#ifndef STT_LOG_H
#define STT_LOG_H
#include <stddef.h>

enum { STT_LOG_DEBUG, STT_LOG_INFO, STT_LOG_WARNING, STT_LOG_ERROR, STT_LOG_NONE };
enum { STT_LOG_TEXT, STT_LOG_JSON };

#include <stdint.h>
struct stt_ini;

void stt_log_setup(int level, int format);
/* Follows the live ini from now on (borrowed: it must outlive logging). */
void stt_log_follow(struct stt_ini *ini);
/* The slow-request threshold in ms, 0 = off (stt_log_follow reads it from the ini). */
void stt_log_set_slow_ms(uint64_t ms);
/* Whether a finished request needs stt_log_access at all (access log on, or a
 * slow-request threshold set): lets the caller skip timing it. */
int stt_log_wants_requests(void);
int stt_log_enabled(int level);
void stt_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* One request: the access line at INFO, and the slow-request line at WARNING when
 * ms reaches the threshold. user: the authenticated name (NULL or len 0: anonymous,
 * written "-"). */
void stt_log_access(const char *reqid, const char *user, size_t userlen, const char *method, size_t methodlen,
                    const char *path, size_t pathlen, int status, double ms);

#endif
