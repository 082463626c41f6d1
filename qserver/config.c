/* The pool's settings: which command serves which language, and the limits,
 * read as CouchDB names them ([query_servers], [query_server_config],
 * [couchdb] os_process_timeout, COUCHDB_QUERY_SERVER_<LANG>). */
#include "qserver/qserver.h"
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

int stt_qs_config_set_server(stt_qs_config_t *c, const char *lang, const char *command)
{
    char low[sizeof c->servers[0].lang];
    size_t n = strlen(lang);
    if (n == 0 || n >= sizeof low || strlen(command) >= sizeof c->servers[0].command) return -1;
    for (size_t i = 0; i <= n; i++)
        low[i] = (char)tolower((unsigned char)lang[i]);
    size_t i;
    for (i = 0; i < c->nservers; i++)
        if (!strcmp(c->servers[i].lang, low)) break;
    if (i == c->nservers) {
        if (c->nservers == STT_QS_MAX_LANGS) return -1;
        c->nservers++;
    }
    memcpy(c->servers[i].lang, low, n + 1);
    snprintf(c->servers[i].command, sizeof c->servers[i].command, "%s", command);
    return 0;
}

/* settee-qs lives beside the settee binary (build/ and installs alike). */
void stt_qs_config_default(stt_qs_config_t *c, const char *self_exe)
{
    memset(c, 0, sizeof *c);
    c->timeout_ms = 5000;
    c->process_limit = 16;
    c->soft_limit = 4;
    c->idle_limit_s = 300;
    strcpy(c->reduce_limit, "true");
    c->reduce_limit_threshold = 5000;
    c->reduce_limit_ratio = 2.0;
    c->max_reply_bytes = 64u << 20;

    char exe[PATH_MAX];
    ssize_t n = -1;
    if (self_exe && strchr(self_exe, '/')) {
        n = (ssize_t)snprintf(exe, sizeof exe, "%s", self_exe);
        if (n >= (ssize_t)sizeof exe) n = -1;
    } else {
        n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n >= 0) exe[n] = '\0';
    }
    char cmd[PATH_MAX + 16];
    if (n > 0 && strrchr(exe, '/')) {
        *strrchr(exe, '/') = '\0';
        snprintf(cmd, sizeof cmd, "'%s/settee-qs'", exe); /* quoted for sh -c: paths with spaces */
    } else {
        snprintf(cmd, sizeof cmd, "settee-qs");
    }
    stt_qs_config_set_server(c, "javascript", cmd);
}

static void on_server(void *ctx, const char *section, const char *key, const char *value)
{
    if (*value) stt_qs_config_set_server(ctx, key, value);
}

void stt_qs_config_from_ini(stt_qs_config_t *c, stt_ini_t *ini)
{
    stt_ini_each(ini, "query_servers", on_server, c);
    int64_t v = stt_ini_get_int(ini, "couchdb", "os_process_timeout", c->timeout_ms);
    if (v > 0 && v <= INT_MAX) c->timeout_ms = (int)v;
    v = stt_ini_get_int(ini, "query_server_config", "os_process_limit", c->process_limit);
    if (v > 0 && v <= 10000) c->process_limit = (int)v;
    v = stt_ini_get_int(ini, "query_server_config", "os_process_soft_limit", c->soft_limit);
    if (v >= 0 && v <= 10000) c->soft_limit = (int)v;
    v = stt_ini_get_int(ini, "query_server_config", "os_process_idle_limit", c->idle_limit_s);
    if (v > 0 && v <= INT_MAX) c->idle_limit_s = (int)v;
    v = stt_ini_get_int(ini, "query_server_config", "reduce_limit_threshold", c->reduce_limit_threshold);
    if (v >= 0 && v <= INT_MAX) c->reduce_limit_threshold = (int)v;
    char *s = stt_ini_get(ini, "query_server_config", "reduce_limit_ratio");
    if (s) {
        char *end;
        double d = strtod(s, &end);
        if (end != s && !*end && d > 0) c->reduce_limit_ratio = d;
        free(s);
    }
    /* CouchDB: anything but false and log means true. */
    s = stt_ini_get(ini, "query_server_config", "reduce_limit");
    if (s) {
        strcpy(c->reduce_limit, !strcmp(s, "false") ? "false" : !strcmp(s, "log") ? "log" : "true");
        free(s);
    }
}

void stt_qs_config_from_env(stt_qs_config_t *c)
{
    static const char prefix[] = "COUCHDB_QUERY_SERVER_";
    for (char **e = environ; *e; e++) {
        if (strncmp(*e, prefix, sizeof prefix - 1)) continue;
        const char *lang = *e + sizeof prefix - 1, *eq = strchr(lang, '=');
        char name[32];
        if (!eq || eq == lang || (size_t)(eq - lang) >= sizeof name || !eq[1]) continue;
        memcpy(name, lang, (size_t)(eq - lang));
        name[eq - lang] = '\0';
        stt_qs_config_set_server(c, name, eq + 1);
    }
}
