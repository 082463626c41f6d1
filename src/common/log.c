/* stderr logging; see log.h. */
#include "src/common/log.h"
#include "src/common/buf.h"
#include "src/common/config.h"
#include "src/common/ini.h"
#include "src/common/json.h"
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static atomic_int g_level = STT_LOG_INFO;
static int g_format = STT_LOG_TEXT;
static atomic_uint_fast64_t g_slow_ms;
static const char *const names[] = {"debug", "info", "warning", "error", "none"};

/* the live ini and what was last taken from it */
static stt_ini_t *g_ini;
static atomic_uint_fast64_t g_gen;
static pthread_mutex_t g_follow_lock = PTHREAD_MUTEX_INITIALIZER;
static char *g_ini_level; /* [log] level as last seen, NULL when unset */

void stt_log_setup(int level, int format)
{
    atomic_store(&g_level, level);
    g_format = format;
}

void stt_log_set_slow_ms(uint64_t ms)
{
    atomic_store(&g_slow_ms, ms);
}

static bool same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

/* Takes [log] level (when it changed: a flag's level holds until then) and
 * [settee] slow_request_ms from the ini. Bad values are ignored: the previous one
 * stays, as the ini reader refuses them at start. */
static void refresh(void)
{
    pthread_mutex_lock(&g_follow_lock);
    uint64_t gen = stt_ini_generation(g_ini);
    if (gen != atomic_load(&g_gen)) {
        char *lv = stt_ini_get(g_ini, "log", "level");
        if (!same(lv, g_ini_level)) {
            int level = lv ? stt_config_log_level(lv) : STT_LOG_LEVEL_INFO;
            if (level >= 0) atomic_store(&g_level, level);
            free(g_ini_level);
            g_ini_level = lv;
        } else {
            free(lv);
        }
        char *slow = stt_ini_get(g_ini, "settee", "slow_request_ms");
        char *end = NULL;
        unsigned long long ms = slow ? strtoull(slow, &end, 10) : 0;
        if (!slow || (end != slow && *end == '\0' && slow[0] != '-')) atomic_store(&g_slow_ms, (uint64_t)ms);
        free(slow);
        atomic_store(&g_gen, gen);
    }
    pthread_mutex_unlock(&g_follow_lock);
}

static inline void follow(void)
{
    if (g_ini && stt_ini_generation(g_ini) != atomic_load(&g_gen)) refresh();
}

void stt_log_follow(stt_ini_t *ini)
{
    g_ini = ini;
    atomic_store(&g_gen, stt_ini_generation(ini));
    /* what the ini says now is already applied (or overridden by a flag) */
    g_ini_level = stt_ini_get(ini, "log", "level");
    char *slow = stt_ini_get(ini, "settee", "slow_request_ms");
    if (slow) atomic_store(&g_slow_ms, (uint64_t)strtoull(slow, NULL, 10));
    free(slow);
}

int stt_log_enabled(int level)
{
    follow();
    int l = atomic_load(&g_level);
    return level >= l && l != STT_LOG_NONE;
}

int stt_log_wants_requests(void)
{
    return stt_log_enabled(STT_LOG_INFO) || atomic_load(&g_slow_ms) > 0;
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

/* A user name in a text line: one word, nothing that could fake another line or field. */
static void append_name(stt_buf_t *b, const char *user, size_t len)
{
    if (!user || !len) {
        stt_buf_appendc(b, '-');
        return;
    }
    for (size_t i = 0; i < len && i < 256; i++) {
        unsigned char c = (unsigned char)user[i];
        stt_buf_appendc(b, c <= ' ' || c == 0x7f ? '?' : (char)c);
    }
}

static void request_line(int level, const char *what, const char *reqid, const char *user, size_t userlen,
                         const char *method, size_t methodlen, const char *path, size_t pathlen, int status, double ms)
{
    stt_buf_t b = STT_BUF_INIT;
    if (g_format == STT_LOG_JSON) {
        stt_buf_appends(&b, "{\"ts\":\"");
        stamp(&b);
        stt_buf_appendf(&b, "\",\"level\":\"%s\",", names[level]);
        if (what) stt_buf_appendf(&b, "\"msg\":\"%s\",", what);
        stt_buf_appendf(&b, "\"request_id\":\"%s\",\"user\":", reqid);
        if (user && userlen)
            stt_json_write_str(&b, user, userlen);
        else
            stt_buf_appends(&b, "null");
        stt_buf_appends(&b, ",\"method\":");
        stt_json_write_str(&b, method, methodlen);
        stt_buf_appends(&b, ",\"path\":");
        stt_json_write_str(&b, path, pathlen);
        stt_buf_appendf(&b, ",\"status\":%d,\"duration_ms\":%.3f}", status, ms);
    } else {
        stamp(&b);
        stt_buf_appendf(&b, " [%s] %s%s%s ", names[level], what ? what : "", what ? " " : "", reqid);
        append_name(&b, user, userlen);
        stt_buf_appendf(&b, " %.*s %.*s %d %.3fms", (int)methodlen, method, (int)pathlen, path, status, ms);
    }
    emit(&b);
}

void stt_log_access(const char *reqid, const char *user, size_t userlen, const char *method, size_t methodlen,
                    const char *path, size_t pathlen, int status, double ms)
{
    if (stt_log_enabled(STT_LOG_INFO))
        request_line(STT_LOG_INFO, NULL, reqid, user, userlen, method, methodlen, path, pathlen, status, ms);
    uint64_t slow = atomic_load(&g_slow_ms);
    if (slow && ms >= (double)slow && stt_log_enabled(STT_LOG_WARNING))
        request_line(STT_LOG_WARNING, "slow request", reqid, user, userlen, method, methodlen, path, pathlen, status,
                     ms);
}
