/* stderr logging; see log.h. */
#include "src/common/log.h"
#include "src/common/buf.h"
#include "src/common/json.h"
#include <stdarg.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int g_level = STT_LOG_INFO, g_format = STT_LOG_TEXT;
static const char *const names[] = {"debug", "info", "warning", "error", "none"};

void stt_log_setup(int level, int format)
{
    g_level = level;
    g_format = format;
}

int stt_log_enabled(int level)
{
    return level >= g_level && g_level != STT_LOG_NONE;
}

static void stamp(stt_buf_t *b)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char t[40];
    size_t n = strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(t + n, sizeof(t) - n, ".%03dZ", (int)(tv.tv_usec / 1000));
    stt_buf_appends(b, t);
}

static void emit(stt_buf_t *b)
{
    stt_buf_appendc(b, '\n');
    ssize_t rc = write(2, b->base, b->len);
    (void)rc;
    stt_buf_free(b);
}

void stt_log(int level, const char *fmt, ...)
{
    if (!stt_log_enabled(level)) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    stt_buf_t b = STT_BUF_INIT;
    if (g_format == STT_LOG_JSON) {
        stt_buf_appends(&b, "{\"ts\":\"");
        stamp(&b);
        stt_buf_appendf(&b, "\",\"level\":\"%s\",\"msg\":", names[level]);
        stt_json_write_cstr(&b, msg);
        stt_buf_appendc(&b, '}');
    } else {
        stamp(&b);
        stt_buf_appendf(&b, " [%s] %s", names[level], msg);
    }
    emit(&b);
}

void stt_log_access(const char *reqid, const char *method, size_t methodlen, const char *path, size_t pathlen,
                    int status, double ms)
{
    if (!stt_log_enabled(STT_LOG_INFO)) return;
    stt_buf_t b = STT_BUF_INIT;
    if (g_format == STT_LOG_JSON) {
        stt_buf_appends(&b, "{\"ts\":\"");
        stamp(&b);
        stt_buf_appendf(&b, "\",\"level\":\"info\",\"request_id\":\"%s\",\"method\":", reqid);
        stt_json_write_str(&b, method, methodlen);
        stt_buf_appends(&b, ",\"path\":");
        stt_json_write_str(&b, path, pathlen);
        stt_buf_appendf(&b, ",\"status\":%d,\"duration_ms\":%.3f}", status, ms);
    } else {
        stamp(&b);
        stt_buf_appendf(&b, " [info] %s %.*s %.*s %d %.3fms", reqid, (int)methodlen, method, (int)pathlen, path, status,
                        ms);
    }
    emit(&b);
}
