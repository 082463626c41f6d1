/* Server admins at start-up: plaintext [admins] passwords are hashed and written
 * back (CouchDB does the same), admins from the environment (SETTEE_ADMIN_USER /
 * SETTEE_ADMIN_PASSWORD, or CouchDB's image's COUCHDB_USER / COUCHDB_PASSWORD) are
 * added hashed in memory, and a server with no admin at all either gets one made
 * up (loopback only: the first-run path of `make run`) or refuses to start. */
#include "security/admins.h"
#include "security/crypto.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char names[64][128];
    char values[64][512];
    int n;
} list_t;

static void collect(void *ctx, const char *section, const char *key, const char *value)
{
    list_t *l = ctx;
    if (l->n == 64) return;
    snprintf(l->names[l->n], sizeof(l->names[0]), "%s", key);
    snprintf(l->values[l->n], sizeof(l->values[0]), "%s", value);
    l->n++;
}

static bool loopback(const char *bind)
{
    return strncmp(bind, "127.", 4) == 0 || strcmp(bind, "::1") == 0 || strcmp(bind, "localhost") == 0;
}

static void set_hashed(stt_ini_t *ini, const char *name, const char *pw, bool persist, FILE *msg)
{
    stt_buf_t h = STT_BUF_INIT;
    stt_pw_hash_admin(pw, strlen(pw), STT_PBKDF2_ITERATIONS, &h);
    if (stt_ini_set(ini, "admins", name, h.base, persist, NULL) != 0) {
        if (persist && msg)
            fprintf(msg,
                    "settee: cannot write the hashed password of admin '%s' back to %s; it is hashed in "
                    "memory only\n",
                    name, stt_ini_path(ini) ? stt_ini_path(ini) : "(no file)");
        stt_ini_set(ini, "admins", name, h.base, false, NULL);
    }
    stt_buf_free(&h);
}

/* the admin named by the environment, if any */
static bool env_admin(const char **u, const char **p)
{
    *u = getenv("SETTEE_ADMIN_USER"), *p = getenv("SETTEE_ADMIN_PASSWORD");
    if (!(*u && **u && *p && **p)) *u = getenv("COUCHDB_USER"), *p = getenv("COUCHDB_PASSWORD");
    return *u && **u && *p && **p;
}

void stt_security_memory_settings(stt_ini_t *ini)
{
    /* shown by /_config as CouchDB's default.ini shows it */
    char *h = stt_ini_get(ini, "chttpd_auth", "hash_algorithms");
    if (!h) stt_ini_set(ini, "chttpd_auth", "hash_algorithms", "sha256, sha", false, NULL);
    free(h);
    const char *u, *p;
    if (!env_admin(&u, &p)) return;
    char *v = stt_ini_get(ini, "admins", u);
    if (!v) set_hashed(ini, u, p, false, NULL);
    free(v);
}

int stt_admins_setup(stt_ini_t *ini, const char *bind, FILE *msg)
{
    list_t *l = calloc(1, sizeof(*l));
    stt_ini_each(ini, "admins", collect, l);
    for (int i = 0; i < l->n; i++)
        if (!stt_pw_is_hashed(l->values[i])) set_hashed(ini, l->names[i], l->values[i], true, msg);
    int any = l->n;
    free(l);
    const char *u, *p;
    if (env_admin(&u, &p)) {
        set_hashed(ini, u, p, false, msg);
        any++;
    }
    if (any) return 0;
    if (!loopback(bind)) {
        fprintf(msg,
                "settee: refusing to listen on %s with no server admin (anyone could take the server over).\n"
                "Add one under [admins] in the ini file, or set SETTEE_ADMIN_USER and SETTEE_ADMIN_PASSWORD.\n",
                bind);
        return 2;
    }
    unsigned char raw[15];
    stt_random_bytes(raw, sizeof(raw));
    stt_buf_t pw = STT_BUF_INIT;
    stt_base64url_encode(&pw, raw, sizeof(raw));
    set_hashed(ini, "admin", pw.base, true, msg);
    fprintf(msg,
            "settee: no server admin was configured, so one was created:\n"
            "    name: admin\n    password: %s\n"
            "It is shown this once and stored only as a hash in %s.\n",
            pw.base, stt_ini_path(ini) ? stt_ini_path(ini) : "memory");
    stt_buf_free(&pw);
    return 0;
}
