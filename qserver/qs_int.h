/* Internals of qserver/: one query-server process, the pool that owns them, and
 * the exchange of command lines and replies. Never included outside qserver/. */
#ifndef STT_QS_INT_H
#define STT_QS_INT_H
#include "qserver/qserver.h"
#include "src/common/buf.h"
#include <pthread.h>
#include <sys/types.h>

/* A process keeps every design doc it was sent; past this many it is retired
 * instead of being returned to the pool, which bounds its memory. */
#define STT_QS_MAX_DDOCS 128

typedef struct stt_qs_proc stt_qs_proc_t;
struct stt_qs_proc {
    pid_t pid;
    int fd;                        /* our end of the socketpair that is its stdin and stdout */
    int lang;                      /* index into the pool's config.servers */
    stt_buf_t in;                  /* bytes read past the last reply line */
    char *ddocs[STT_QS_MAX_DDOCS]; /* "id\n rev" of each design doc sent */
    size_t nddocs;
    double idle_since;
    bool broken; /* must not be reused: timed out, died, fatal or garbage */
    bool fresh;  /* spawned for this checkout (the reset of its start is done) */
    stt_qs_proc_t *next;
};

struct stt_qs_pool {
    stt_qs_config_t cfg;
    char *reset_cmd; /* ["reset", {...config...}]\n */
    size_t reset_len;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    stt_qs_proc_t *idle; /* most recently returned first */
    size_t nprocs;       /* alive: idle + checked out + being spawned */
    size_t nidle;
    size_t started, killed;
};

/* How a reply line is handed to the caller of stt__qs_exchange. Returns 0, or an
 * error code after filling err (a wrong shape: the exchange marks the process
 * broken because it no longer speaks the protocol). */
typedef int (*stt_qs_reply_fn)(void *ctx, size_t index, const stt_json_t *reply, stt_arena_t *arena, stt_qs_err_t *err);

/* Writes out (complete command lines) and reads nreplies replies, each within
 * the pool's timeout of the previous one. ["log", ...] lines are logged; an
 * ["error", ...] reply fills err (the first one) and reading goes on, so that the
 * process stays in step; ["fatal", ...], a timeout, EOF or a line that is not
 * JSON end the exchange and mark p broken. *got_any tells whether any byte came
 * back (a call may be retried on a fresh process when none did). */
int stt__qs_exchange(stt_qs_pool_t *pool, stt_qs_proc_t *p, const char *out, size_t outlen, size_t nreplies,
                     stt_qs_reply_fn on_reply, void *ctx, stt_arena_t *arena, stt_qs_err_t *err, bool *got_any);

/* Starts the process of language index lang. 0 or STT_QS_E_PROCESS (err filled). */
int stt__qs_spawn(stt_qs_pool_t *pool, int lang, stt_qs_proc_t **out, stt_arena_t *arena, stt_qs_err_t *err);
/* Kills (if alive), reaps and frees. */
void stt__qs_destroy(stt_qs_proc_t *p);
/* Whether p exited while idle (reaped if so). */
bool stt__qs_exited(stt_qs_proc_t *p);

/* Pool: a process of lang, preferably one that holds ddoc_key ("id\nrev", or
 * NULL). Spawns (and resets) a new one when none is idle and the limit allows,
 * else waits up to the timeout. *reused: it served an earlier call. */
int stt__qs_checkout(stt_qs_pool_t *pool, const char *lang, const char *ddoc_key, stt_qs_proc_t **out, bool *reused,
                     stt_arena_t *arena, stt_qs_err_t *err);
void stt__qs_checkin(stt_qs_pool_t *pool, stt_qs_proc_t *p);

/* Fills err; reason is copied into the arena. Returns code. */
int stt__qs_fail(stt_arena_t *arena, stt_qs_err_t *err, int code, int status, const char *error, const char *reason);
/* err from an ["error"|"fatal", id, reason] reply. */
int stt__qs_fail_reply(stt_arena_t *arena, stt_qs_err_t *err, const stt_json_t *reply);

double stt__qs_now(void);

#endif
