/* Authentication: the handlers of CouchDB's chttpd_auth (cookie, default = basic,
 * jwt, proxy) run in [chttpd] authentication_handlers order, credentials from
 * [admins] and _users, and the abuse limits around password checks.
 *
 * Password checks cost one PBKDF2 (600000 iterations) unless the credential cache
 * knows the pair: it is keyed by SHA-256(pepper, name, password) with a pepper
 * drawn at start, and holds the stored hash the pair was verified against, so it
 * keeps no reusable secret and forgets a pair as soon as the password changes.
 *
 * Limits, all in fixed-size tables (memory does not grow with a flood):
 *  - lockout (CouchDB 3.4's couch_auth_lockout): failures per (address, user,
 *    salt); at [chttpd_auth_lockout] threshold the user is refused from that
 *    address with 403 for max_lifetime, even with the right password;
 *  - settee's per-address limit ([chttpd_auth_ratelimit]): failed password checks
 *    per client address, whatever the names; past max_failures in window seconds
 *    every password check from the address is answered 429 with Retry-After, so
 *    one address can neither probe many accounts nor lock them all out.
 * An unknown user costs the same PBKDF2 as a wrong password, so timing does not
 * tell which names exist. */
#include "security/security.h"
#include "security/crypto.h"
#include "src/common/err.h"
#include "src/common/codec.h"
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum { H_COOKIE = 1, H_DEFAULT, H_JWT, H_PROXY };
#define MAX_HANDLERS 8
#define CACHE_SLOTS 4096
#define USER_SLOTS 512
#define LIMIT_SLOTS 16384
#define PROBE 8
#define PEND_SLOTS 1024

/* Password checks running elsewhere, by (name, password, address): the same guess
 * sent on many connections at once is one guess. Only the first is counted as a
 * failure while it runs; counting every copy would lock out a client that opens
 * 32 connections with the right password before the first check has cached it. */
typedef struct {
    unsigned char key[32];
    uint32_t n;
} pend_ent_t;

typedef struct {
    unsigned char key[32];
    char stored[200]; /* the stored hash the pair was verified against */
    uint64_t at;
} cache_ent_t;

/* A _users doc's credentials as last read, valid while the db's mark is the same:
 * a request with Basic auth or a cookie then costs no doc read and no JSON parse. */
typedef struct {
    uint64_t mark[3];
    bool used, found;
    uint8_t namelen, nroles;
    char name[128];
    char salt[129];
    stt_user_hash_t uh;
    uint16_t roleslen;
    char roles[512]; /* NUL-terminated, one after the other */
} user_ent_t;

typedef struct {
    unsigned char key[32]; /* sha256 of what is counted */
    uint32_t count;
    uint64_t start; /* first failure of the window, unix seconds */
    uint64_t tick;  /* when it was created, in creations: seconds tie under a flood */
} limit_ent_t;

static uint64_t limit_ticks;

typedef struct {
    stt_auth_settings_t pub;
    char secret[512];
    bool has_secret;
    uint64_t timeout;
    int hashes[4];
    size_t nhashes;
    bool persistent_cookies, cookie_secure;
    char cookie_domain[256], same_site[16];
    int lockout_mode; /* 0 off, 1 warn, 2 enforce */
    uint32_t lockout_threshold;
    uint64_t lockout_lifetime;
    bool rl_on;
    uint32_t rl_max;
    uint64_t rl_window;
    bool proxy_use_secret;
    char x_user[64], x_roles[64], x_token[64];
    char jwt_required[512], jwt_roles_path[256], jwt_roles_name[128];
    uint64_t jwt_leeway;
    bool jwt_strict;
} settings_t;

struct stt_auth {
    stt_store_t *store;
    stt_ini_t *ini;
    pthread_mutex_t mu;
    uint64_t gen;
    settings_t s;
    int handlers[MAX_HANDLERS];
    size_t nhandlers;
    unsigned char pepper[32];
    cache_ent_t *cache;
    user_ent_t *users;
    limit_ent_t *lockout, *addr;
    pend_ent_t *pend;
    bool deferred; /* PBKDF2 runs elsewhere: password checks return STT_AUTH_PENDING */
};

/* A password check waiting for its PBKDF2: everything it needs, owned (the
 * request's arena may be gone by the time it runs). */
struct stt_auth_job {
    stt_auth_t *auth;
    bool login; /* POST /_session (else Basic on a request) */
    char *name, *pw, *peer, *stored, *salt;
    size_t namelen, pwlen;
    bool found, admin, has_password, ok;
    bool pending; /* holds a pend_ent_t; counted: the copy that carries the count */
    bool counted;
    unsigned char pend_key[32];
    stt_user_hash_t uh;
    char **roles;
    size_t nroles;
};

/* ------------------------------------------------------------------ settings */

static void get_str(stt_ini_t *ini, const char *sec, const char *key, const char *dflt, char *out, size_t len)
{
    char *v = stt_ini_get(ini, sec, key);
    snprintf(out, len, "%s", v ? v : dflt);
    free(v);
}

/* [chttpd_auth] settings may also sit in CouchDB 1.x's [couch_httpd_auth] */
static char *auth_get(stt_ini_t *ini, const char *key)
{
    char *v = stt_ini_get(ini, "chttpd_auth", key);
    return v ? v : stt_ini_get(ini, "couch_httpd_auth", key);
}

static bool auth_bool(stt_ini_t *ini, const char *key, bool dflt)
{
    char *v = auth_get(ini, key);
    bool r = v ? strcmp(v, "true") == 0 : dflt;
    free(v);
    return r;
}

static int64_t auth_int(stt_ini_t *ini, const char *key, int64_t dflt)
{
    char *v = auth_get(ini, key), *end;
    int64_t r = dflt;
    if (v) {
        long long x = strtoll(v, &end, 10);
        if (*v && !*end) r = x;
    }
    free(v);
    return r;
}

static int hash_by_name(const char *s, size_t len)
{
    if (len == 3 && memcmp(s, "sha", 3) == 0) return STT_HASH_SHA1;
    if (len == 6 && memcmp(s, "sha256", 6) == 0) return STT_HASH_SHA256;
    if (len == 6 && memcmp(s, "sha384", 6) == 0) return STT_HASH_SHA384;
    if (len == 6 && memcmp(s, "sha512", 6) == 0) return STT_HASH_SHA512;
    return -1;
}

static void load_settings(stt_auth_t *a)
{
    stt_ini_t *ini = a->ini;
    settings_t *s = &a->s;
    memset(s, 0, sizeof(*s));
    s->pub.require_valid_user = stt_ini_get_bool(ini, "chttpd", "require_valid_user", false);
    s->pub.require_valid_user_except_for_up =
        stt_ini_get_bool(ini, "chttpd", "require_valid_user_except_for_up", false);
    s->pub.admin_only_all_dbs = stt_ini_get_bool(ini, "chttpd", "admin_only_all_dbs", true);
    s->pub.users_db_security_editable = stt_ini_get_bool(ini, "couchdb", "users_db_security_editable", false);
    s->pub.peruser_enable = stt_ini_get_bool(ini, "couch_peruser", "enable", false);
    s->pub.peruser_delete_dbs = stt_ini_get_bool(ini, "couch_peruser", "delete_dbs", false);
    get_str(ini, "couch_peruser", "database_prefix", "userdb-", s->pub.peruser_prefix, sizeof(s->pub.peruser_prefix));
    char *v = auth_get(ini, "public_fields");
    snprintf(s->pub.public_fields, sizeof(s->pub.public_fields), "%s", v ? v : "");
    free(v);
    v = auth_get(ini, "secret");
    if (v && *v) {
        snprintf(s->secret, sizeof(s->secret), "%s", v);
        s->has_secret = true;
    }
    free(v);
    s->timeout = (uint64_t)auth_int(ini, "timeout", 600);
    v = auth_get(ini, "hash_algorithms");
    const char *h = v ? v : "sha256, sha";
    for (const char *p = h; *p && s->nhashes < 4;) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',' && *e != ' ')
            e++;
        int id = hash_by_name(p, (size_t)(e - p));
        if (id >= 0) s->hashes[s->nhashes++] = id;
        p = e;
    }
    free(v);
    if (!s->nhashes) s->hashes[s->nhashes++] = STT_HASH_SHA256;
    s->persistent_cookies = auth_bool(ini, "allow_persistent_cookies", true);
    s->cookie_secure = auth_bool(ini, "secure", false);
    v = auth_get(ini, "cookie_domain");
    snprintf(s->cookie_domain, sizeof(s->cookie_domain), "%s", v ? v : "");
    free(v);
    v = auth_get(ini, "same_site");
    snprintf(s->same_site, sizeof(s->same_site), "%s", v ? v : "");
    free(v);
    v = stt_ini_get(ini, "chttpd_auth_lockout", "mode");
    s->lockout_mode = !v || strcmp(v, "enforce") == 0 ? 2 : strcmp(v, "warn") == 0 ? 1 : 0;
    free(v);
    s->lockout_threshold = (uint32_t)stt_ini_get_int(ini, "chttpd_auth_lockout", "threshold", 5);
    s->lockout_lifetime = (uint64_t)stt_ini_get_int(ini, "chttpd_auth_lockout", "max_lifetime", 300000) / 1000;
    v = stt_ini_get(ini, "chttpd_auth_ratelimit", "mode");
    s->rl_on = !v || strcmp(v, "off") != 0;
    free(v);
    s->rl_max = (uint32_t)stt_ini_get_int(ini, "chttpd_auth_ratelimit", "max_failures", 30);
    s->rl_window = (uint64_t)stt_ini_get_int(ini, "chttpd_auth_ratelimit", "window", 60);
    s->proxy_use_secret = auth_bool(ini, "proxy_use_secret", false);
    v = auth_get(ini, "x_auth_username");
    snprintf(s->x_user, sizeof(s->x_user), "%s", v ? v : "X-Auth-CouchDB-UserName");
    free(v);
    v = auth_get(ini, "x_auth_roles");
    snprintf(s->x_roles, sizeof(s->x_roles), "%s", v ? v : "X-Auth-CouchDB-Roles");
    free(v);
    v = auth_get(ini, "x_auth_token");
    snprintf(s->x_token, sizeof(s->x_token), "%s", v ? v : "X-Auth-CouchDB-Token");
    free(v);
    get_str(ini, "jwt_auth", "required_claims", "", s->jwt_required, sizeof(s->jwt_required));
    get_str(ini, "jwt_auth", "roles_claim_path", "", s->jwt_roles_path, sizeof(s->jwt_roles_path));
    get_str(ini, "jwt_auth", "roles_claim_name", "", s->jwt_roles_name, sizeof(s->jwt_roles_name));
    s->jwt_leeway = (uint64_t)stt_ini_get_int(ini, "jwt_auth", "leeway", 0);
    s->jwt_strict = stt_ini_get_bool(ini, "jwt_auth", "strict", true);
}

/* a consistent copy of the settings, re-read after any configuration change */
static void settings(stt_auth_t *a, settings_t *out)
{
    pthread_mutex_lock(&a->mu);
    uint64_t g = stt_ini_generation(a->ini);
    if (g != a->gen) {
        load_settings(a);
        a->gen = g;
    }
    *out = a->s;
    pthread_mutex_unlock(&a->mu);
}

void stt_auth_settings(stt_auth_t *a, stt_auth_settings_t *out)
{
    settings_t s;
    settings(a, &s);
    *out = s.pub;
}

void stt_auth_reload_handlers(stt_auth_t *a)
{
    char *v = stt_ini_get(a->ini, "chttpd", "authentication_handlers");
    const char *h = v && *v ? v : "cookie, default";
    pthread_mutex_lock(&a->mu);
    a->nhandlers = 0;
    for (const char *p = h; *p && a->nhandlers < MAX_HANDLERS;) {
        while (*p && (*p == ' ' || *p == ',' || *p == '{' || *p == '}'))
            p++;
        const char *e = p;
        while (*e && *e != ',' && *e != '}' && *e != ' ')
            e++;
        size_t n = (size_t)(e - p);
        int id = 0;
#define IS(lit) (n == strlen(lit) && memcmp(p, lit, n) == 0)
        if (IS("cookie") || IS("cookie_authentication_handler"))
            id = H_COOKIE;
        else if (IS("default") || IS("default_authentication_handler"))
            id = H_DEFAULT;
        else if (IS("jwt") || IS("jwt_authentication_handler"))
            id = H_JWT;
        else if (IS("proxy") || IS("proxy_authentication_handler"))
            id = H_PROXY;
#undef IS
        if (id) a->handlers[a->nhandlers++] = id;
        p = e;
    }
    if (!a->nhandlers) {
        a->handlers[0] = H_COOKIE;
        a->handlers[1] = H_DEFAULT;
        a->nhandlers = 2;
    }
    pthread_mutex_unlock(&a->mu);
    free(v);
}

size_t stt_auth_handlers(stt_auth_t *a, const char **names, size_t max)
{
    static const char *const nm[] = {"", "cookie", "default", "jwt", "proxy"};
    pthread_mutex_lock(&a->mu);
    size_t n = 0;
    for (size_t i = 0; i < a->nhandlers && n < max; i++)
        names[n++] = nm[a->handlers[i]];
    pthread_mutex_unlock(&a->mu);
    return n;
}

int stt_auth_open(stt_store_t *store, stt_ini_t *ini, stt_auth_t **out)
{
    stt_auth_t *a = stt_xcalloc(1, sizeof(*a));
    a->store = store;
    a->ini = ini;
    pthread_mutex_init(&a->mu, NULL);
    a->gen = stt_ini_generation(ini);
    load_settings(a);
    stt_random_bytes(a->pepper, sizeof(a->pepper));
    a->cache = stt_xcalloc(CACHE_SLOTS, sizeof(*a->cache));
    a->users = stt_xcalloc(USER_SLOTS, sizeof(*a->users));
    a->lockout = stt_xcalloc(LIMIT_SLOTS, sizeof(*a->lockout));
    a->addr = stt_xcalloc(LIMIT_SLOTS, sizeof(*a->addr));
    a->pend = stt_xcalloc(PEND_SLOTS, sizeof(*a->pend));
    stt_auth_reload_handlers(a);
    *out = a;
    return 0;
}

void stt_auth_close(stt_auth_t *a)
{
    if (!a) return;
    pthread_mutex_destroy(&a->mu);
    free(a->cache);
    free(a->users);
    free(a->lockout);
    free(a->addr);
    free(a->pend);
    free(a);
}

static uint64_t now_s(void)
{
    return (uint64_t)time(NULL);
}

/* ------------------------------------------------------------------ bounded tables */

static void key_of(stt_auth_t *a, unsigned char out[32], const char *p1, size_t l1, const char *p2, size_t l2,
                   const char *p3, size_t l3)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned char z = 0;
    EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    EVP_DigestUpdate(c, a->pepper, sizeof(a->pepper));
    EVP_DigestUpdate(c, p1, l1);
    EVP_DigestUpdate(c, &z, 1);
    if (p2) EVP_DigestUpdate(c, p2, l2);
    EVP_DigestUpdate(c, &z, 1);
    if (p3) EVP_DigestUpdate(c, p3, l3);
    EVP_DigestFinal_ex(c, out, NULL);
    EVP_MD_CTX_free(c);
}

/* The slot for key among PROBE neighbours: its own, else an empty or expired one,
 * else the oldest (which is then reused: the table never grows). */
static limit_ent_t *limit_slot(limit_ent_t *t, const unsigned char key[32], uint64_t now, uint64_t life, bool create)
{
    size_t h = ((size_t)key[0] | (size_t)key[1] << 8 | (size_t)key[2] << 16) % LIMIT_SLOTS;
    limit_ent_t *victim = NULL;
    for (int i = 0; i < PROBE; i++) {
        limit_ent_t *e = &t[(h + (size_t)i) % LIMIT_SLOTS];
        if (e->count && memcmp(e->key, key, 32) == 0) {
            if (e->start + life <= now) {
                e->count = 0;
                if (!create) return NULL;
                e->start = now;
                e->tick = __atomic_add_fetch(&limit_ticks, 1, __ATOMIC_RELAXED);
                return e;
            }
            return e;
        }
        bool free_e = !e->count || e->start + life <= now;
        bool victim_free = victim && (!victim->count || victim->start + life <= now);
        if (!victim || (free_e && !victim_free) || (!victim_free && !free_e && e->tick < victim->tick)) victim = e;
    }
    if (!create) return NULL;
    memcpy(victim->key, key, 32);
    victim->count = 0;
    victim->start = now;
    victim->tick = __atomic_add_fetch(&limit_ticks, 1, __ATOMIC_RELAXED);
    return victim;
}

/* seconds until the address may try again, 0 when it may now */
static unsigned addr_blocked(stt_auth_t *a, const settings_t *s, const char *peer)
{
    if (!s->rl_on || !peer) return 0;
    unsigned char k[32];
    key_of(a, k, "addr", 4, peer, strlen(peer), NULL, 0);
    uint64_t now = now_s();
    pthread_mutex_lock(&a->mu);
    limit_ent_t *e = limit_slot(a->addr, k, now, s->rl_window, false);
    unsigned r = e && e->count >= s->rl_max ? (unsigned)(e->start + s->rl_window - now) : 0;
    pthread_mutex_unlock(&a->mu);
    return r ? r : (e && e->count >= s->rl_max ? 1 : 0);
}

static void addr_add(stt_auth_t *a, const settings_t *s, const char *peer, int delta);
static void addr_fail(stt_auth_t *a, const settings_t *s, const char *peer)
{
    addr_add(a, s, peer, 1);
}

static void addr_add(stt_auth_t *a, const settings_t *s, const char *peer, int delta)
{
    if (!s->rl_on || !peer) return;
    unsigned char k[32];
    key_of(a, k, "addr", 4, peer, strlen(peer), NULL, 0);
    pthread_mutex_lock(&a->mu);
    limit_ent_t *e = limit_slot(a->addr, k, now_s(), s->rl_window, true);
    if (delta > 0 || e->count >= (uint32_t)-delta) e->count = (uint32_t)((int64_t)e->count + delta);
    pthread_mutex_unlock(&a->mu);
}

static bool locked_out(stt_auth_t *a, const settings_t *s, const char *peer, const char *name, size_t namelen,
                       const char *salt)
{
    if (s->lockout_mode != 2 || !peer) return false;
    unsigned char k[32];
    key_of(a, k, peer, strlen(peer), name, namelen, salt, strlen(salt));
    pthread_mutex_lock(&a->mu);
    limit_ent_t *e = limit_slot(a->lockout, k, now_s(), s->lockout_lifetime, false);
    bool r = e && e->count >= s->lockout_threshold;
    pthread_mutex_unlock(&a->mu);
    return r;
}

static void lockout_add(stt_auth_t *a, const settings_t *s, const char *peer, const char *name, size_t namelen,
                        const char *salt, int delta);
static void lockout_fail(stt_auth_t *a, const settings_t *s, const char *peer, const char *name, size_t namelen,
                         const char *salt)
{
    lockout_add(a, s, peer, name, namelen, salt, 1);
}

static void lockout_add(stt_auth_t *a, const settings_t *s, const char *peer, const char *name, size_t namelen,
                        const char *salt, int delta)
{
    if (s->lockout_mode == 0 || !peer) return;
    unsigned char k[32];
    key_of(a, k, peer, strlen(peer), name, namelen, salt, strlen(salt));
    pthread_mutex_lock(&a->mu);
    limit_ent_t *e = limit_slot(a->lockout, k, now_s(), s->lockout_lifetime, true);
    if (delta > 0 || e->count >= (uint32_t)-delta) e->count = (uint32_t)((int64_t)e->count + delta);
    pthread_mutex_unlock(&a->mu);
}

/* Registers job as running; true when no copy of it was running already (this one
 * is then counted). A full neighbourhood makes the job count on its own. */
static bool pend_enter(stt_auth_t *a, stt_auth_job_t *j)
{
    key_of(a, j->pend_key, j->name, j->namelen, j->pw, j->pwlen, j->peer ? j->peer : "", j->peer ? strlen(j->peer) : 0);
    size_t h = ((size_t)j->pend_key[0] | (size_t)j->pend_key[1] << 8) % PEND_SLOTS;
    pend_ent_t *free_e = NULL;
    bool first = true;
    pthread_mutex_lock(&a->mu);
    for (int i = 0; i < PROBE; i++) {
        pend_ent_t *e = &a->pend[(h + (size_t)i) % PEND_SLOTS];
        if (e->n && memcmp(e->key, j->pend_key, 32) == 0) {
            e->n++;
            j->pending = true;
            first = false;
            break;
        }
        if (!e->n && !free_e) free_e = e;
    }
    if (first && free_e) {
        memcpy(free_e->key, j->pend_key, 32);
        free_e->n = 1;
        j->pending = true;
    }
    pthread_mutex_unlock(&a->mu);
    return first;
}

static void pend_leave(stt_auth_t *a, stt_auth_job_t *j)
{
    if (!j->pending) return;
    size_t h = ((size_t)j->pend_key[0] | (size_t)j->pend_key[1] << 8) % PEND_SLOTS;
    pthread_mutex_lock(&a->mu);
    for (int i = 0; i < PROBE; i++) {
        pend_ent_t *e = &a->pend[(h + (size_t)i) % PEND_SLOTS];
        if (e->n && memcmp(e->key, j->pend_key, 32) == 0) {
            e->n--;
            break;
        }
    }
    pthread_mutex_unlock(&a->mu);
    j->pending = false;
}

/* ------------------------------------------------------------------ credentials */

typedef struct {
    bool found, admin;
    const char *salt;   /* for cookies and lockout keys */
    const char *stored; /* admin hash, or the doc's derived key / password_sha */
    stt_user_hash_t uh;
    const char **roles;
    size_t nroles;
} creds_t;

static const char *arena_str(stt_arena_t *ar, const char *s, size_t n)
{
    char *p = stt_arena_alloc(ar, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static const stt_json_t *last(const stt_json_t *o, const char *k)
{
    const stt_json_t *v = NULL;
    size_t kl = strlen(k);
    for (uint32_t i = 0; o && o->type == STT_JSON_OBJECT && i < o->len; i++)
        if (o->u.members[i].keylen == kl && memcmp(o->u.members[i].key, k, kl) == 0) v = &o->u.members[i].val;
    return v;
}

static size_t user_slot(const char *name, size_t namelen)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < namelen; i++)
        h = (h ^ (unsigned char)name[i]) * 1099511628211ULL;
    return (size_t)(h % USER_SLOTS);
}

static bool user_cached(stt_auth_t *a, stt_arena_t *ar, const uint64_t mark[3], const char *name, size_t namelen,
                        creds_t *c)
{
    if (namelen >= sizeof(((user_ent_t *)0)->name)) return false;
    bool hit = false;
    pthread_mutex_lock(&a->mu);
    const user_ent_t *e = &a->users[user_slot(name, namelen)];
    if (e->used && e->namelen == namelen && memcmp(e->name, name, namelen) == 0 && memcmp(e->mark, mark, 24) == 0) {
        hit = true;
        c->found = e->found;
        if (e->found) {
            c->uh = e->uh;
            c->salt = arena_str(ar, e->salt, strlen(e->salt));
            c->stored = arena_str(ar, e->uh.derived_key, strlen(e->uh.derived_key));
            c->roles = stt_arena_alloc(ar, (e->nroles + 1) * sizeof(*c->roles));
            const char *p = e->roles;
            for (size_t i = 0; i < e->nroles; i++) {
                size_t l = strlen(p);
                c->roles[c->nroles++] = arena_str(ar, p, l);
                p += l + 1;
            }
        }
    }
    pthread_mutex_unlock(&a->mu);
    return hit;
}

/* Only what fits whole is cached; anything larger is read from the doc each time. */
static void user_store(stt_auth_t *a, const uint64_t mark[3], const char *name, size_t namelen, const creds_t *c)
{
    user_ent_t e;
    if (namelen >= sizeof(e.name) || strlen(c->salt) >= sizeof(e.salt)) return;
    memset(&e, 0, sizeof(e));
    size_t off = 0;
    for (size_t i = 0; i < c->nroles; i++) {
        size_t l = strlen(c->roles[i]);
        if (i >= 255 || off + l + 1 > sizeof(e.roles)) return;
        memcpy(e.roles + off, c->roles[i], l + 1);
        off += l + 1;
    }
    memcpy(e.mark, mark, sizeof(e.mark));
    e.used = true;
    e.found = c->found;
    e.namelen = (uint8_t)namelen;
    memcpy(e.name, name, namelen);
    strcpy(e.salt, c->salt);
    e.uh = c->uh;
    e.nroles = (uint8_t)c->nroles;
    e.roleslen = (uint16_t)off;
    pthread_mutex_lock(&a->mu);
    a->users[user_slot(name, namelen)] = e;
    pthread_mutex_unlock(&a->mu);
}

/* 0 when the doc was read or is missing/deleted (an answer worth caching), -1 when
 * the store failed to say */
static int read_user_doc(stt_db_t *db, stt_arena_t *ar, const char *name, size_t namelen, creds_t *c)
{
    stt_reader_t *rd;
    if (stt_reader_open(db, &rd) != 0) return -1;
    int rc = 0;
    stt_buf_t id = STT_BUF_INIT;
    stt_buf_appends(&id, STT_USER_PREFIX);
    stt_buf_append(&id, name, namelen);
    stt_doc_t d;
    int got = stt_doc_get(rd, id.base, id.len, &d);
    if (got != 0) {
        if (got != STT_E_NOT_FOUND) rc = -1;
        goto exit_reader;
    }
    stt_rev_body_t body;
    if (d.tree.nodes[d.winner].flags & STT_REV_DELETED) goto exit_doc;
    if (stt_doc_body(&d, d.winner, &body) != 0) {
        rc = -1;
        goto exit_doc;
    }
    char *text = stt_arena_memdup(ar, body.json, body.jsonlen);
    stt_json_t o;
    if (stt_json_parse(ar, text, body.jsonlen, &o, NULL, 0) == 0 && o.type == STT_JSON_OBJECT) {
        const stt_json_t *scheme = last(&o, "password_scheme"), *salt = last(&o, "salt"), *dk = last(&o, "derived_key"),
                         *sha = last(&o, "password_sha"), *it = last(&o, "iterations"), *prf = last(&o, "pbkdf2_prf"),
                         *roles = last(&o, "roles");
        c->found = true;
        if (stt_json_is_str(salt)) c->salt = salt->u.s;
        snprintf(c->uh.scheme, sizeof(c->uh.scheme), "%s", stt_json_is_str(scheme) ? scheme->u.s : "simple");
        snprintf(c->uh.prf, sizeof(c->uh.prf), "%s", stt_json_is_str(prf) ? prf->u.s : "");
        int64_t iters = 0;
        if (it && stt_json_int(it, &iters) == 0 && iters > 0 && iters < 1000000000) c->uh.iterations = (uint32_t)iters;
        const stt_json_t *key = strcmp(c->uh.scheme, "pbkdf2") == 0 ? dk : sha;
        snprintf(c->uh.derived_key, sizeof(c->uh.derived_key), "%s", stt_json_is_str(key) ? key->u.s : "");
        snprintf(c->uh.salt, sizeof(c->uh.salt), "%s", c->salt);
        c->stored = arena_str(ar, c->uh.derived_key, strlen(c->uh.derived_key));
        if (roles && roles->type == STT_JSON_ARRAY) {
            c->roles = stt_arena_alloc(ar, (roles->len + 1) * sizeof(*c->roles));
            for (uint32_t i = 0; i < roles->len; i++)
                if (roles->u.items[i].type == STT_JSON_STRING) c->roles[c->nroles++] = roles->u.items[i].u.s;
        }
    }
    stt_rev_body_free(&body);
exit_doc:
    stt_doc_free(&d);
exit_reader:
    stt_buf_free(&id);
    stt_reader_close(rd);
    return rc;
}

static void get_creds(stt_auth_t *a, stt_arena_t *ar, const char *name, size_t namelen, creds_t *c)
{
    memset(c, 0, sizeof(*c));
    c->salt = "";
    char *nm = stt_xstrndup(name, namelen);
    char *adm = strlen(nm) == namelen ? stt_ini_get(a->ini, "admins", nm) : NULL;
    free(nm);
    if (adm) {
        c->found = c->admin = true;
        c->stored = arena_str(ar, adm, strlen(adm));
        /* the salt is the hash's second comma-separated field */
        const char *comma = strchr(adm, ',');
        if (comma) {
            const char *e = strchr(comma + 1, ',');
            c->salt = arena_str(ar, comma + 1, e ? (size_t)(e - comma - 1) : strlen(comma + 1));
        }
        const char **r = stt_arena_alloc(ar, sizeof(*r));
        r[0] = "_admin";
        c->roles = r;
        c->nroles = 1;
        free(adm);
        return;
    }
    stt_db_t *db;
    if (stt_db_open(a->store, STT_USERS_DB, sizeof(STT_USERS_DB) - 1, &db) != 0) return;
    /* the mark is read before the doc: a write landing in between leaves a newer
     * mark than the cached entry's, never an older one */
    uint64_t mark[3];
    stt_db_mark(db, mark);
    if (!user_cached(a, ar, mark, name, namelen, c)) {
        if (read_user_doc(db, ar, name, namelen, c) == 0) user_store(a, mark, name, namelen, c);
    }
    stt_db_release(db);
}

static bool cache_hit(stt_auth_t *a, const char *stored, const char *name, size_t namelen, const char *pw, size_t pwlen)
{
    if (!stored || !stored[0]) return false;
    unsigned char k[32];
    key_of(a, k, name, namelen, pw, pwlen, "pw", 2);
    size_t slot = ((size_t)k[0] | (size_t)k[1] << 8) % CACHE_SLOTS;
    pthread_mutex_lock(&a->mu);
    cache_ent_t *e = &a->cache[slot];
    bool hit = memcmp(e->key, k, 32) == 0 && stt_ct_equal(e->stored, strlen(e->stored), stored, strlen(stored));
    pthread_mutex_unlock(&a->mu);
    return hit;
}

static void cache_put(stt_auth_t *a, const char *stored, const char *name, size_t namelen, const char *pw, size_t pwlen)
{
    unsigned char k[32];
    key_of(a, k, name, namelen, pw, pwlen, "pw", 2);
    size_t slot = ((size_t)k[0] | (size_t)k[1] << 8) % CACHE_SLOTS;
    pthread_mutex_lock(&a->mu);
    cache_ent_t *e = &a->cache[slot];
    if (strlen(stored) < sizeof(e->stored)) {
        memcpy(e->key, k, 32);
        snprintf(e->stored, sizeof(e->stored), "%s", stored);
        e->at = now_s();
    }
    pthread_mutex_unlock(&a->mu);
}

/* The PBKDF2 itself. A name that does not exist is checked against a dummy hash of
 * the same cost, so timing does not tell which names exist. */
static bool hash_check(bool found, bool admin, const char *stored, const stt_user_hash_t *uh, const char *pw,
                       size_t pwlen)
{
    if (!found) {
        stt_user_hash_t dummy;
        memset(&dummy, 0, sizeof(dummy));
        strcpy(dummy.scheme, "pbkdf2");
        strcpy(dummy.prf, "sha256");
        dummy.iterations = STT_PBKDF2_ITERATIONS;
        memset(dummy.derived_key, '0', 64);
        memcpy(dummy.salt, "00000000000000000000000000000000", 33);
        (void)stt_pw_check_user(&dummy, pw, pwlen);
        return false;
    }
    if (!stored || !stored[0]) return false;
    return admin ? stt_pw_check_admin(stored, pw, pwlen) == 0 : stt_pw_check_user(uh, pw, pwlen) == 0;
}

static char *dupn(const char *s, size_t n)
{
    return stt_xstrndup(s ? s : "", s ? n : 0);
}

static stt_auth_job_t *make_job(const creds_t *c, const char *name, size_t namelen, const char *pw, size_t pwlen,
                                const char *peer)
{
    stt_auth_job_t *j = stt_xcalloc(1, sizeof(*j));
    j->name = dupn(name, namelen);
    j->namelen = namelen;
    j->pw = dupn(pw, pwlen);
    j->pwlen = pwlen;
    j->peer = peer ? stt_xstrndup(peer, strlen(peer)) : NULL;
    j->found = c->found;
    j->admin = c->admin;
    j->stored = c->stored ? stt_xstrndup(c->stored, strlen(c->stored)) : NULL;
    j->salt = stt_xstrndup(c->salt, strlen(c->salt));
    j->uh = c->uh;
    j->roles = stt_xcalloc(c->nroles + 1, sizeof(char *));
    for (size_t i = 0; i < c->nroles; i++)
        j->roles[i] = stt_xstrndup(c->roles[i], strlen(c->roles[i]));
    j->nroles = c->nroles;
    return j;
}

void stt_auth_job_free(stt_auth_job_t *j)
{
    if (!j) return;
    if (j->pending) pend_leave(j->auth, j); /* never finished: its request went away */
    if (j->pw) memset(j->pw, 0, j->pwlen);
    free(j->name);
    free(j->pw);
    free(j->peer);
    free(j->stored);
    free(j->salt);
    for (size_t i = 0; i < j->nroles; i++)
        free(j->roles[i]);
    free(j->roles);
    free(j);
}

void stt_auth_job_run(stt_auth_job_t *j)
{
    /* a copy of a check that finished while this one waited in the queue (a
     * client opening many connections at once) costs no second PBKDF2 */
    if (j->found && j->auth && cache_hit(j->auth, j->stored, j->name, j->namelen, j->pw, j->pwlen)) {
        j->ok = true;
        return;
    }
    j->ok = hash_check(j->found, j->admin, j->stored, &j->uh, j->pw, j->pwlen);
}

void stt_auth_set_deferred(stt_auth_t *a, bool deferred)
{
    a->deferred = deferred;
}

static void fail(stt_auth_result_t *out, int status, const char *error, const char *reason)
{
    out->status = status;
    out->error = error;
    out->reason = reason;
}

#define LOCKED_MSG "Account is temporarily locked due to multiple authentication failures"
#define BAD_PW "Name or password is incorrect."

/* How a finished check was counted: now (it ran inline), already (a deferred check
 * counted as a failure while it ran) or never (a copy of a guess already counted). */
enum { COUNT_NOW, COUNT_DONE, COUNT_NONE };

/* What follows the hash: the cache on success, the lockout and address counts on
 * failure. 0 ok, -1 out set to the failure. */
static int after_check(stt_auth_t *a, const settings_t *s, bool ok, bool found, const char *stored, const char *salt,
                       const char *name, size_t namelen, const char *pw, size_t pwlen, const char *peer, int counted,
                       stt_auth_result_t *out)
{
    if (ok) {
        cache_put(a, stored, name, namelen, pw, pwlen);
        if (counted == COUNT_DONE) {
            if (found) lockout_add(a, s, peer, name, namelen, salt, -1);
            addr_add(a, s, peer, -1);
        }
        return 0;
    }
    if (counted == COUNT_NOW) {
        if (found) lockout_fail(a, s, peer, name, namelen, salt);
        addr_fail(a, s, peer);
    }
    fail(out, 401, "unauthorized", BAD_PW);
    return -1;
}

/* A password check with every limit: 0 and *c filled, -1 with out set to the
 * failure, or 1 with *job set when the hash must run elsewhere (deferred). */
static int verify_password(stt_auth_t *a, stt_arena_t *ar, const settings_t *s, const char *name, size_t namelen,
                           const char *pw, size_t pwlen, const char *peer, creds_t *c, stt_auth_result_t *out,
                           stt_auth_job_t **job)
{
    unsigned wait = addr_blocked(a, s, peer);
    if (wait) {
        fail(out, 429, "too_many_requests", "Too many failed authentication attempts from this address.");
        out->retry_after = wait;
        return -1;
    }
    get_creds(a, ar, name, namelen, c);
    if (c->found && locked_out(a, s, peer, name, namelen, c->salt)) {
        fail(out, 403, "forbidden", LOCKED_MSG);
        return -1;
    }
    if (c->found && cache_hit(a, c->stored, name, namelen, pw, pwlen)) return 0;
    if (a->deferred) {
        /* counted as a failure until it proves right, so checks running at once
         * cannot pass the limits together */
        *job = make_job(c, name, namelen, pw, pwlen, peer);
        (*job)->auth = a;
        if (pend_enter(a, *job)) {
            (*job)->counted = true;
            if (c->found) lockout_fail(a, s, peer, name, namelen, c->salt);
            addr_fail(a, s, peer);
        }
        out->status = STT_AUTH_PENDING;
        out->job = *job;
        return 1;
    }
    bool ok = hash_check(c->found, c->admin, c->stored, &c->uh, pw, pwlen);
    return after_check(a, s, ok, c->found, c->stored, c->salt, name, namelen, pw, pwlen, peer, COUNT_NOW, out);
}

/* ------------------------------------------------------------------ handlers */

static void set_user(stt_auth_result_t *out, stt_arena_t *ar, const char *name, size_t namelen, const creds_t *c,
                     const char *handler)
{
    out->user.name = arena_str(ar, name, namelen);
    out->user.namelen = namelen;
    out->user.roles = c->roles;
    out->user.nroles = c->nroles;
    out->user.handler = handler;
}

/* 1 authenticated or failed (out says which), 0 not this handler's business */
static int h_default(stt_auth_t *a, stt_arena_t *ar, const settings_t *s, const stt_auth_input_t *in,
                     stt_auth_result_t *out)
{
    if (!in->authorization || in->authorization_len < 6 || memcmp(in->authorization, "Basic ", 6) != 0) return 0;
    stt_buf_t dec = STT_BUF_INIT;
    if (stt_base64_decode(&dec, in->authorization + 6, in->authorization_len - 6) != 0) {
        stt_buf_free(&dec);
        fail(out, 400, "bad_request", "Authorization header has invalid base64 value");
        return 1;
    }
    const char *colon = dec.base ? memchr(dec.base, ':', dec.len) : NULL;
    if (!colon || (dec.len == 3 && memcmp(dec.base, "_:_", 3) == 0)) {
        stt_buf_free(&dec);
        return 0;
    }
    size_t namelen = (size_t)(colon - dec.base);
    const char *name = arena_str(ar, dec.base, namelen);
    const char *pw = colon + 1;
    size_t pwlen = dec.len - namelen - 1;
    creds_t c;
    stt_auth_job_t *job = NULL;
    if (verify_password(a, ar, s, name, namelen, pw, pwlen, in->peer, &c, out, &job) == 0)
        set_user(out, ar, name, namelen, &c, "default");
    stt_buf_free(&dec);
    return 1;
}

static int h_cookie(stt_auth_t *a, stt_arena_t *ar, const settings_t *s, const stt_auth_input_t *in,
                    stt_auth_result_t *out)
{
    if (!in->has_cookie || in->cookie_len == 0) return 0;
    stt_cookie_t ck;
    int rc = stt_cookie_parse(in->cookie, in->cookie_len, &ck);
    if (rc == -1) {
        stt_cookie_free(&ck);
        fail(out, 400, "bad_request", "Malformed AuthSession cookie. Please clear your cookies.");
        return 1;
    }
    int result = 0;
    if (rc != 0 || !s->has_secret) goto exit;
    creds_t c;
    get_creds(a, ar, ck.name, ck.namelen, &c);
    if (!c.found) goto exit;
    uint64_t now = now_s();
    if (stt_cookie_verify(&ck, s->hashes, s->nhashes, s->secret, strlen(s->secret), c.salt, strlen(c.salt), now,
                          s->timeout) != 0)
        goto exit;
    set_user(out, ar, ck.name, ck.namelen, &c, "cookie");
    uint64_t left = ck.timestamp + s->timeout - now;
    if ((double)left < (double)s->timeout * 0.9) {
        stt_buf_t v = STT_BUF_INIT;
        stt_cookie_make(s->hashes[0], s->secret, strlen(s->secret), c.salt, strlen(c.salt), ck.name, ck.namelen, now,
                        &v);
        out->refresh_cookie = arena_str(ar, v.base, v.len);
        stt_buf_free(&v);
    }
    result = 1;
exit:
    stt_cookie_free(&ck);
    return result;
}

typedef struct {
    stt_arena_t *ar;
    stt_jwt_key_t *keys;
    size_t n, cap;
} keys_t;

static void on_key(void *ctx, const char *section, const char *key, const char *value)
{
    keys_t *k = ctx;
    if (k->n == k->cap) return;
    k->keys[k->n].name = arena_str(k->ar, key, strlen(key));
    k->keys[k->n].value = arena_str(k->ar, value, strlen(value));
    k->n++;
}

static int h_jwt(stt_auth_t *a, stt_arena_t *ar, const settings_t *s, const stt_auth_input_t *in,
                 stt_auth_result_t *out)
{
    if (!in->authorization || in->authorization_len < 7 || memcmp(in->authorization, "Bearer ", 7) != 0) return 0;
    const char *tok = in->authorization + 7;
    size_t len = in->authorization_len - 7;
    if (len == 0) return 0;
    keys_t k = {ar, stt_arena_alloc(ar, 64 * sizeof(stt_jwt_key_t)), 0, 64};
    stt_ini_each(a->ini, "jwt_keys", on_key, &k);
    stt_jwt_opts_t o = {.keys = k.keys,
                        .nkeys = k.n,
                        .required_claims = s->jwt_required,
                        .roles_claim_path = s->jwt_roles_path,
                        .roles_claim_name = s->jwt_roles_name,
                        .now = now_s(),
                        .leeway = s->jwt_leeway,
                        .strict = s->jwt_strict};
    stt_jwt_result_t r;
    stt_jwt_verify(ar, tok, len, &o, &r);
    if (r.status) {
        fail(out, r.status,
             r.status == 401   ? "unauthorized"
             : r.status == 404 ? "not_found"
             : r.status >= 500 ? "unknown_error"
                               : "bad_request",
             r.reason);
        return 1;
    }
    if (r.sub->type == STT_JSON_STRING) {
        out->user.name = r.sub->u.s;
    } else {
        out->user.name = r.sub->u.s;
        out->user.name_is_number = true;
    }
    out->user.namelen = r.sub->len;
    out->user.roles = r.roles;
    out->user.nroles = r.nroles;
    out->user.handler = "jwt";
    return 1;
}

static const char *trim(const char *s, size_t *len)
{
    while (*len && (*s == ' ' || *s == '\t'))
        s++, (*len)--;
    while (*len && (s[*len - 1] == ' ' || s[*len - 1] == '\t'))
        (*len)--;
    return s;
}

static int h_proxy(stt_auth_t *a, stt_arena_t *ar, const settings_t *s, const stt_auth_input_t *in,
                   stt_auth_result_t *out)
{
    if (!in->proxy_name) return 0;
    size_t nlen = in->proxy_name_len;
    const char *name = trim(in->proxy_name, &nlen);
    if (s->proxy_use_secret) {
        if (!s->has_secret || !in->proxy_token) return 0;
        size_t tlen = in->proxy_token_len;
        const char *tok = trim(in->proxy_token, &tlen);
        if (!stt_proxy_token_ok(s->hashes, s->nhashes, s->secret, strlen(s->secret), name, nlen, tok, tlen)) return 0;
    }
    size_t cap = 1;
    for (size_t i = 0; in->proxy_roles && i < in->proxy_roles_len; i++)
        cap += in->proxy_roles[i] == ',';
    const char **roles = stt_arena_alloc(ar, cap * sizeof(*roles));
    size_t n = 0;
    for (size_t i = 0; in->proxy_roles && i <= in->proxy_roles_len;) {
        size_t j = i;
        while (j < in->proxy_roles_len && in->proxy_roles[j] != ',')
            j++;
        size_t l = j - i;
        const char *r = trim(in->proxy_roles + i, &l);
        if (l) roles[n++] = arena_str(ar, r, l);
        i = j + 1;
    }
    out->user.name = arena_str(ar, name, nlen);
    out->user.namelen = nlen;
    out->user.roles = roles;
    out->user.nroles = n;
    out->user.handler = "proxy";
    return 1;
}

void stt_auth_request(stt_auth_t *a, stt_arena_t *ar, const stt_auth_input_t *in, stt_auth_result_t *out)
{
    memset(out, 0, sizeof(*out));
    settings_t s;
    settings(a, &s);
    int hs[MAX_HANDLERS];
    pthread_mutex_lock(&a->mu);
    size_t nh = a->nhandlers;
    memcpy(hs, a->handlers, sizeof(hs));
    pthread_mutex_unlock(&a->mu);
    for (size_t i = 0; i < nh; i++) {
        int done = 0;
        switch (hs[i]) {
        case H_COOKIE:
            done = h_cookie(a, ar, &s, in, out);
            break;
        case H_DEFAULT:
            done = h_default(a, ar, &s, in, out);
            break;
        case H_JWT:
            done = h_jwt(a, ar, &s, in, out);
            break;
        case H_PROXY:
            done = h_proxy(a, ar, &s, in, out);
            break;
        }
        if (done) return;
    }
}

/* ------------------------------------------------------------------ sessions */

static void ensure_secret(stt_auth_t *a, settings_t *s)
{
    if (s->has_secret) return;
    char hex[33];
    unsigned char raw[16];
    stt_random_bytes(raw, sizeof(raw));
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    /* persisted so that cookies survive a restart, as CouchDB's
     * ensure_cookie_auth_secret does */
    if (stt_ini_set(a->ini, "chttpd_auth", "secret", hex, true, NULL) != 0)
        stt_ini_set(a->ini, "chttpd_auth", "secret", hex, false, NULL);
    snprintf(s->secret, sizeof(s->secret), "%s", hex);
    s->has_secret = true;
}

static void login_ok(stt_auth_t *a, stt_arena_t *ar, settings_t *s, const char *name, size_t namelen, const char *salt,
                     stt_auth_result_t *out, const char **cookie)
{
    ensure_secret(a, s);
    stt_buf_t v = STT_BUF_INIT;
    stt_cookie_make(s->hashes[0], s->secret, strlen(s->secret), salt, strlen(salt), name, namelen, now_s(), &v);
    *cookie = arena_str(ar, v.base, v.len);
    stt_buf_free(&v);
}

void stt_auth_login(stt_auth_t *a, stt_arena_t *ar, const char *name, size_t namelen, const char *password,
                    size_t pwlen, const char *peer, stt_auth_result_t *out, const char **cookie)
{
    memset(out, 0, sizeof(*out));
    *cookie = NULL;
    settings_t s;
    settings(a, &s);
    creds_t c;
    stt_auth_job_t *job = NULL;
    int rc =
        verify_password(a, ar, &s, name, namelen, password ? password : "", password ? pwlen : 0, peer, &c, out, &job);
    if (rc == 1) {
        job->login = true;
        job->has_password = password != NULL;
        return;
    }
    if (rc != 0) return;
    if (!password) { /* CouchDB checks a missing password as a wrong one */
        fail(out, 401, "unauthorized", BAD_PW);
        return;
    }
    set_user(out, ar, name, namelen, &c, "cookie");
    login_ok(a, ar, &s, name, namelen, c.salt, out, cookie);
}

void stt_auth_job_finish(stt_auth_t *a, stt_arena_t *ar, stt_auth_job_t *j, stt_auth_result_t *out, const char **cookie)
{
    memset(out, 0, sizeof(*out));
    if (cookie) *cookie = NULL;
    settings_t s;
    settings(a, &s);
    pend_leave(a, j);
    if (after_check(a, &s, j->ok, j->found, j->stored, j->salt, j->name, j->namelen, j->pw, j->pwlen, j->peer,
                    j->counted ? COUNT_DONE : COUNT_NONE, out))
        return;
    if (j->login && !j->has_password) {
        fail(out, 401, "unauthorized", BAD_PW);
        return;
    }
    creds_t c = {.found = true, .admin = j->admin, .salt = j->salt, .nroles = j->nroles};
    const char **roles = stt_arena_alloc(ar, (j->nroles + 1) * sizeof(*roles));
    for (size_t i = 0; i < j->nroles; i++)
        roles[i] = arena_str(ar, j->roles[i], strlen(j->roles[i]));
    c.roles = roles;
    set_user(out, ar, j->name, j->namelen, &c, j->login ? "cookie" : "default");
    if (j->login && cookie) login_ok(a, ar, &s, j->name, j->namelen, j->salt, out, cookie);
}

void stt_auth_cookie_header(stt_auth_t *a, const char *value, bool secure_request, stt_buf_t *out)
{
    settings_t s;
    settings(a, &s);
    stt_buf_appends(out, "AuthSession=");
    if (value) stt_buf_appends(out, value);
    stt_buf_appends(out, "; Version=1");
    if (s.persistent_cookies) {
        time_t t = (time_t)(now_s() + s.timeout);
        struct tm tm;
        gmtime_r(&t, &tm);
        char date[64];
        strftime(date, sizeof(date), "%a, %d-%b-%Y %H:%M:%S GMT", &tm);
        stt_buf_appendf(out, "; Expires=%s; Max-Age=%llu", date, (unsigned long long)s.timeout);
    }
    if (s.cookie_domain[0]) stt_buf_appendf(out, "; Domain=%s", s.cookie_domain);
    stt_buf_appends(out, "; Path=/");
    if (s.cookie_secure || secure_request) stt_buf_appends(out, "; Secure");
    stt_buf_appends(out, "; HttpOnly");
    /* CouchDB takes strict, lax and none in any case and drops anything else */
    static const char *const same[] = {"Strict", "Lax", "None"};
    for (size_t i = 0; i < 3; i++)
        if (strcasecmp(s.same_site, same[i]) == 0) stt_buf_appendf(out, "; SameSite=%s", same[i]);
}

typedef struct {
    bool any;
} anyadm_t;
static void on_admin(void *ctx, const char *section, const char *key, const char *value)
{
    ((anyadm_t *)ctx)->any = true;
}
bool stt_auth_has_admin(stt_auth_t *a)
{
    anyadm_t x = {false};
    stt_ini_each(a->ini, "admins", on_admin, &x);
    return x.any;
}
