/* One query-server process: starting it, talking to it, ending it.
 *
 * The process's stdin and stdout are one end of a socketpair (our end is
 * non-blocking and written with MSG_NOSIGNAL, so a dead process is an EPIPE, not
 * a SIGPIPE). Its stderr is settee's. It runs in a process group of its own
 * (signals for the server's terminal do not reach it) with a clean signal mask.
 *
 * An exchange writes a batch of command lines while it reads the replies, so a
 * batch larger than the socket buffers cannot deadlock (the process blocks on a
 * full stdout, we block on a full stdin), and map_doc over many docs costs one
 * round trip per doc without a wait between them. */
#include "qserver/qs_int.h"
#include "src/common/log.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

double stt__qs_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int stt__qs_fail(stt_arena_t *arena, stt_qs_err_t *err, int code, int status, const char *error, const char *reason)
{
    err->status = status;
    err->error = stt_arena_strndup(arena, error, strlen(error));
    err->reason = stt_arena_strndup(arena, reason, strlen(reason));
    return code;
}

/* The reason as CouchDB shows it: a string as it is, anything else as JSON. */
static const char *reason_text(stt_arena_t *arena, const stt_json_t *v)
{
    if (v->type == STT_JSON_STRING) return v->u.s;
    stt_buf_t b = STT_BUF_INIT;
    stt_json_write(&b, v);
    char *s = stt_arena_strndup(arena, b.base ? b.base : "", b.len);
    stt_buf_free(&b);
    return s;
}

int stt__qs_fail_reply(stt_arena_t *arena, stt_qs_err_t *err, const stt_json_t *reply)
{
    const stt_json_t *id = &reply->u.items[1];
    err->status = 500;
    err->error = id->type == STT_JSON_STRING ? id->u.s : reason_text(arena, id);
    err->reason = reason_text(arena, &reply->u.items[2]);
    return !strcmp(err->error, "compilation_error") ? STT_QS_E_COMPILE : STT_QS_E_ERROR;
}

/* ------------------------------------------------------------------ start and end */

int stt__qs_spawn(stt_qs_pool_t *pool, int lang, stt_qs_proc_t **out, stt_arena_t *arena, stt_qs_err_t *err)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return stt__qs_fail(arena, err, STT_QS_E_PROCESS, 500, "os_process_error", strerror(errno));

    stt_buf_t cmd = STT_BUF_INIT;
    stt_buf_appendf(&cmd, "exec %s", pool->cfg.servers[lang].command);
    char *argv[] = {"/bin/sh", "-c", cmd.base, NULL};

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, sv[1], 0);
    posix_spawn_file_actions_adddup2(&fa, sv[1], 1);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3); /* the server's sockets and files stay ours */
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);   /* the server blocks SIGTERM/SIGINT in its threads */
    posix_spawnattr_setsigdefault(&attr, &all); /* and ignores SIGPIPE */
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    pid_t pid;
    int rc = posix_spawn(&pid, "/bin/sh", &fa, &attr, argv, NULL);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    stt_buf_free(&cmd);
    close(sv[1]);
    if (rc != 0) {
        close(sv[0]);
        return stt__qs_fail(arena, err, STT_QS_E_PROCESS, 500, "os_process_error", strerror(rc));
    }
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);

    stt_qs_proc_t *p = stt_xcalloc(1, sizeof *p);
    p->pid = pid;
    p->fd = sv[0];
    p->lang = lang;
    *out = p;
    return 0;
}

/* Reaps p if it has exited; waits at most wait_ms for that. */
static bool reap(stt_qs_proc_t *p, int wait_ms, int *status)
{
    for (int waited = 0;; waited++) {
        pid_t r = waitpid(p->pid, status, WNOHANG);
        if (r == p->pid || (r < 0 && errno == ECHILD)) {
            p->pid = 0;
            return true;
        }
        if (waited >= wait_ms) return false;
        usleep(1000);
    }
}

void stt__qs_destroy(stt_qs_proc_t *p)
{
    if (!p) return;
    if (p->pid > 0) {
        kill(-p->pid, SIGKILL); /* its group: anything it started goes too */
        kill(p->pid, SIGKILL);
        int st;
        while (waitpid(p->pid, &st, 0) < 0 && errno == EINTR) {
        }
    }
    if (p->fd >= 0) close(p->fd);
    stt_buf_free(&p->in);
    for (size_t i = 0; i < p->nddocs; i++)
        free(p->ddocs[i]);
    free(p);
}

bool stt__qs_exited(stt_qs_proc_t *p)
{
    int st;
    return p->pid <= 0 || reap(p, 0, &st);
}

/* The error for a process that went away: CouchDB's {os_process_error,
 * {exit_status, N}} when it exited, its signal when it was killed. */
static int died(stt_qs_proc_t *p, stt_arena_t *arena, stt_qs_err_t *err)
{
    int st = 0;
    char reason[64];
    p->broken = true;
    if (p->pid > 0 && reap(p, 200, &st)) {
        if (WIFEXITED(st))
            snprintf(reason, sizeof reason, "{exit_status,%d}", WEXITSTATUS(st));
        else
            snprintf(reason, sizeof reason, "{exit_status,%d}", 128 + WTERMSIG(st));
    } else {
        snprintf(reason, sizeof reason, "OS process closed its output");
    }
    stt_log(STT_LOG_ERROR, "query server: process died: %s", reason);
    return stt__qs_fail(arena, err, STT_QS_E_PROCESS, 500, "os_process_error", reason);
}

/* ------------------------------------------------------------------ the exchange */

/* What kind of line: a log message, an error, a fatal error, or a reply. Query
 * servers write compact JSON, but whitespace is allowed. */
enum { LINE_REPLY, LINE_LOG, LINE_ERROR, LINE_FATAL };

static int line_kind(const stt_json_t *v)
{
    if (v->type != STT_JSON_ARRAY || v->len < 2 || v->u.items[0].type != STT_JSON_STRING) return LINE_REPLY;
    const char *tag = v->u.items[0].u.s;
    if (!strcmp(tag, "log") && v->len == 2) return LINE_LOG;
    if (!strcmp(tag, "error") && v->len == 3) return LINE_ERROR;
    if (!strcmp(tag, "fatal") && v->len == 3) return LINE_FATAL;
    return LINE_REPLY;
}

static int handle_line(stt_qs_pool_t *pool, stt_qs_proc_t *p, char *line, size_t len, size_t *nreplies_done,
                       stt_qs_reply_fn on_reply, void *ctx, stt_arena_t *arena, stt_qs_err_t *err, int *first_err)
{
    stt_json_t v;
    char msg[128];
    if (stt_json_parse(arena, line, len, &v, msg, sizeof msg) != 0) {
        p->broken = true;
        stt_log(STT_LOG_ERROR, "query server: reply is not JSON (%s): %.200s", msg, line);
        return stt__qs_fail(arena, err, STT_QS_E_PROCESS, 500, "os_process_error",
                            "The query server answered something that is not JSON.");
    }
    switch (line_kind(&v)) {
    case LINE_LOG: {
        const stt_json_t *m = &v.u.items[1];
        stt_log(STT_LOG_INFO, "query server %d log: %.*s", (int)p->pid, m->type == STT_JSON_STRING ? (int)m->len : 0,
                m->type == STT_JSON_STRING ? m->u.s : "");
        return 0;
    }
    case LINE_FATAL:
        p->broken = true;
        stt_log(STT_LOG_ERROR, "query server %d fatal: %.300s", (int)p->pid, line);
        if (!*first_err) {
            stt__qs_fail_reply(arena, err, &v);
            *first_err = STT_QS_E_PROCESS; /* the process is gone whatever it called the error */
        }
        return *first_err;
    case LINE_ERROR:
        (*nreplies_done)++;
        if (!*first_err) *first_err = stt__qs_fail_reply(arena, err, &v);
        return 0;
    default: {
        size_t i = (*nreplies_done)++;
        if (*first_err) return 0; /* the batch failed already: keep in step only */
        int rc = on_reply ? on_reply(ctx, i, &v, arena, err) : 0;
        if (rc) {
            p->broken = true; /* a reply of the wrong shape: the process is out of step */
            *first_err = rc;
            return rc;
        }
        return 0;
    }
    }
}

int stt__qs_exchange(stt_qs_pool_t *pool, stt_qs_proc_t *p, const char *out, size_t outlen, size_t nreplies,
                     stt_qs_reply_fn on_reply, void *ctx, stt_arena_t *arena, stt_qs_err_t *err, bool *got_any)
{
    size_t sent = 0, done = 0, scan = 0;
    int first_err = 0;
    double deadline = stt__qs_now() + pool->cfg.timeout_ms / 1000.0;
    *got_any = false;
    stt_buf_reset(&p->in);

    while (done < nreplies) {
        /* Complete lines first: a batch's replies often arrive together. */
        char *nl;
        while (done < nreplies && p->in.len > scan && (nl = memchr(p->in.base + scan, '\n', p->in.len - scan))) {
            size_t start = 0, len = (size_t)(nl - p->in.base);
            *nl = '\0';
            int rc = handle_line(pool, p, p->in.base + start, len, &done, on_reply, ctx, arena, err, &first_err);
            memmove(p->in.base, nl + 1, p->in.len - len - 1);
            p->in.len -= len + 1;
            scan = 0;
            if (rc && p->broken) return rc;
            deadline = stt__qs_now() + pool->cfg.timeout_ms / 1000.0;
        }
        if (done >= nreplies) break;
        scan = p->in.len;
        if (p->in.len > pool->cfg.max_reply_bytes) {
            p->broken = true;
            return stt__qs_fail(arena, err, STT_QS_E_PROCESS, 500, "os_process_error",
                                "The query server's reply is larger than the limit.");
        }

        double left = deadline - stt__qs_now();
        if (left <= 0) {
            p->broken = true;
            stt_log(STT_LOG_ERROR, "query server %d timed out after %d ms", (int)p->pid, pool->cfg.timeout_ms);
            return stt__qs_fail(arena, err, STT_QS_E_TIMEOUT, 500, "os_process_error", "OS process timed out.");
        }
        struct pollfd pfd = {.fd = p->fd, .events = POLLIN | (sent < outlen ? POLLOUT : 0)};
        int n = poll(&pfd, 1, (int)(left * 1000) + 1);
        if (n < 0 && errno != EINTR) return died(p, arena, err);
        if (n <= 0) continue;
        if (pfd.revents & POLLOUT) {
            ssize_t w = send(p->fd, out + sent, outlen - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0)
                sent += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EINTR)
                return died(p, arena, err);
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            stt_buf_reserve(&p->in, 65536);
            ssize_t r = read(p->fd, p->in.base + p->in.len, p->in.cap - p->in.len - 1);
            if (r == 0) return died(p, arena, err);
            if (r < 0) {
                if (errno == EAGAIN || errno == EINTR) continue;
                return died(p, arena, err);
            }
            *got_any = true;
            p->in.len += (size_t)r;
            p->in.base[p->in.len] = '\0';
        }
    }
    if (sent < outlen) { /* answered before reading all we sent: out of step */
        p->broken = true;
        if (!first_err)
            first_err = stt__qs_fail(arena, err, STT_QS_E_PROCESS, 500, "os_process_error",
                                     "The query server answered before reading its command.");
    }
    if (p->in.len) p->broken = true; /* more than was asked for */
    return first_err;
}
