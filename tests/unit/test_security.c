/* Unit tests for security/authz.c, users.c and auth.c: the contract of
 * security/security.h (the crypto pieces have their own test_security_crypto.c).
 *
 * - authz: the shape check of _security bodies, CouchDB's is_member / is_admin for
 *   every kind of client, user contexts as JSON;
 * - users: CouchDB 3.4's _users rules (couch_users_db.erl and the validate_doc_update
 *   of couch_js_functions.hrl), replayed from the user_* / users_* lines of
 *   couchdb-golden/auth.jsonl and the edges around them. A clear password costs one
 *   600000-iteration PBKDF2, so only users_password_hashed sends one;
 * - auth: the authentication service on a temporary store and an in-memory ini, with
 *   an admin and _users documents hashed with few iterations: Basic, cookies, proxy,
 *   the lockout, the per-address limit, and a flood of distinct addresses that must
 *   not grow memory.
 *
 * Each test walks a table of numbered cases; a failure names its case. Cases that
 * show a known bug are kept in the tables with `bug = true` and skipped (see the
 * comment on each); flip the flag once the bug is fixed.
 *
 * Run from the repo root. An argument runs only the tests whose name contains it:
 * test_security auth_lockout */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "security/security.h"
#include "security/crypto.h"
#include "src/common/codec.h"
#include <ftw.h>
#include <malloc.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__SANITIZE_ADDRESS__)
/* from sanitizer/allocator_interface.h, which not every compiler installs */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

#define NCASES(t) (sizeof(t) / sizeof((t)[0]))

/* ====================================================================================
 * Helpers: users, JSON */

typedef enum {
    U_ANON,   /* no name, no roles */
    U_ADMIN,  /* server admin: "admin", ["_admin"] */
    U_ALICE,  /* plain user */
    U_BOB,    /* plain user */
    U_CARL,   /* role "readers" */
    U_DBADM,  /* named db admin in SEC_DBADM / SEC_NAMES */
    U_OLGA,   /* role "ops": db admin by role in SEC_DBADM / SEC_NAMES */
    U_NUM5,   /* a JWT whose sub is the number 5 */
    U_QUOTE,  /* a name that needs escaping */
    U_NUMALI, /* a numeric-sub context whose text is "alice": never matches a name */
} who_t;

static const char *const roles_admin[] = {"_admin"};
static const char *const roles_readers[] = {"readers"};
static const char *const roles_ops[] = {"ops"};
static const char *const roles_ab[] = {"a", "b"};

static stt_user_ctx_t user_of(who_t w)
{
    stt_user_ctx_t u = {0};
#define NAMED(n) (u.name = (n), u.namelen = strlen(n), u.handler = "default")
#define ROLES(r) (u.roles = (const char **)(r), u.nroles = sizeof(r) / sizeof((r)[0]))
    switch (w) {
    case U_ANON:
        break;
    case U_ADMIN:
        NAMED("admin");
        ROLES(roles_admin);
        break;
    case U_ALICE:
        NAMED("alice");
        break;
    case U_BOB:
        NAMED("bob");
        break;
    case U_CARL:
        NAMED("carl");
        ROLES(roles_readers);
        break;
    case U_DBADM:
        NAMED("dbadm");
        break;
    case U_OLGA:
        NAMED("olga");
        ROLES(roles_ops);
        break;
    case U_NUM5:
        NAMED("5");
        u.name_is_number = true;
        ROLES(roles_ab);
        break;
    case U_QUOTE:
        NAMED("a\"b\\c");
        break;
    case U_NUMALI:
        NAMED("alice");
        u.name_is_number = true;
        break;
    }
#undef NAMED
#undef ROLES
    return u;
}

/* Parsed JSON from the arena, or NULL for NULL text. */
static const stt_json_t *parse(stt_arena_t *ar, const char *text)
{
    if (!text) return NULL;
    stt_json_t *v = stt_arena_alloc(ar, sizeof(*v));
    char err[128] = "";
    size_t len = strlen(text);
    char *copy = stt_arena_memdup(ar, text, len + 1);
    if (stt_json_parse(ar, copy, len, v, err, sizeof(err)) != 0) fail_msg("bad JSON in test: %s: %s", text, err);
    return v;
}

static bool str_is(const char *a, const char *b)
{
    if (!a || !b) return a == b;
    return strcmp(a, b) == 0;
}

/* ====================================================================================
 * authz.c: _security validation */

typedef struct {
    int n;
    const char *sec;    /* NULL: no body */
    const char *reason; /* NULL: valid */
    bool bug;
} secval_case_t;

static void security_validate_cases(void **state)
{
    static const secval_case_t cases[] = {
        {1, "{\"admins\":{\"names\":[\"a\"],\"roles\":[\"r\"]},\"members\":{\"names\":[],\"roles\":[]}}", NULL},
        {2, "{}", NULL},
        {3, "{\"members\":{}}", NULL},
        {4, "{\"members\":\"x\"}", "members must be a JSON object"},
        {5, "{\"members\":[]}", "members must be a JSON object"},
        {6, "{\"admins\":\"x\"}", "admins must be a JSON object"},
        {7, "{\"members\":{\"names\":\"alice\",\"roles\":[]}}", "names must be a JSON list of strings"},
        {8, "{\"members\":{\"names\":[1],\"roles\":[]}}", "names must be a JSON list of strings"},
        {9, "{\"members\":{\"names\":[\"bob\",null]}}", "names must be a JSON list of strings"},
        {10, "{\"admins\":{\"names\":[],\"roles\":\"x\"}}", "roles must be a JSON list of strings"},
        {11, "{\"admins\":{\"roles\":[{}]}}", "roles must be a JSON list of strings"},
        {12, "[]", "Security Object must be a JSON object"},
        {13, "\"x\"", "Security Object must be a JSON object"},
        {14, NULL, "Security Object must be a JSON object"},
        /* extra members are no error (and the caller stores the body as sent) */
        {15, "{\"members\":{\"names\":[\"a\"],\"x\":1},\"cluster\":{\"q\":8},\"other\":[1,2]}", NULL},
        {16, STT_SECURITY_DEFAULT, NULL},
        /* a legacy "readers" group is what CouchDB reads as members when "members" is
         * absent, and couch_db:validate_security_object checks it too.
         * BUG (security/authz.c stt_security_validate, lines 52-60): only "admins" and
         * "members" are checked, so {"readers":{"names":[1]}} is accepted; CouchDB 3.4.3
         * refuses it. Flip bug to false once fixed. */
        {17, "{\"readers\":{\"names\":[1]}}", "names must be a JSON list of strings"},
        /* with "members" present, "readers" is ignored by CouchDB too */
        {18, "{\"members\":{},\"readers\":{\"names\":[1]}}", NULL},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        const secval_case_t *c = &cases[i];
        if (c->bug) continue;
        stt_arena_t ar = STT_ARENA_INIT;
        const char *reason = NULL;
        int rc = stt_security_validate(parse(&ar, c->sec), &reason);
        if (c->reason) {
            if (rc != -1 || !str_is(reason, c->reason))
                fail_msg("case %d: want -1 \"%s\", got %d \"%s\"", c->n, c->reason, rc, reason ? reason : "");
        } else if (rc != 0) {
            fail_msg("case %d: want valid, got %d \"%s\"", c->n, rc, reason ? reason : "");
        }
        stt_arena_free(&ar);
    }
}

/* ====================================================================================
 * authz.c: is_member / is_db_admin */

#define SEC_NAMES                                                                                                      \
    "{\"admins\":{\"names\":[\"dbadm\"],\"roles\":[\"ops\"]},\"members\":{\"names\":[\"alice\"],\"roles\":["           \
    "\"readers\"]}}"
#define SEC_DBADM "{\"admins\":{\"names\":[\"dbadm\"],\"roles\":[\"ops\"]}}"
#define SEC_OPEN "{}"

typedef struct {
    int n;
    const char *sec; /* NULL: no _security at all */
    who_t who;
    bool member, admin;
} access_case_t;

static void security_access_cases(void **state)
{
    static const access_case_t cases[] = {
        /* names and roles in both groups */
        {1, SEC_NAMES, U_ANON, false, false},
        {2, SEC_NAMES, U_ALICE, true, false},
        {3, SEC_NAMES, U_BOB, false, false},
        {4, SEC_NAMES, U_CARL, true, false},
        {5, SEC_NAMES, U_DBADM, true, true},
        {6, SEC_NAMES, U_OLGA, true, true},
        {7, SEC_NAMES, U_ADMIN, true, true},
        {8, SEC_NAMES, U_NUMALI, false, false}, /* a numeric sub never matches a name */
        {9, SEC_NAMES, U_NUM5, false, false},
        /* public databases: no members at all */
        {10, NULL, U_ANON, true, false},
        {11, NULL, U_ADMIN, true, true},
        {12, "{}", U_ANON, true, false},
        {13, "{}", U_BOB, true, false},
        {14, "{\"members\":{\"names\":[],\"roles\":[]},\"admins\":{\"names\":[],\"roles\":[]}}", U_ANON, true, false},
        {15, "{\"members\":{}}", U_BOB, true, false},
        {16, SEC_DBADM, U_ANON, true, false},
        {17, SEC_DBADM, U_DBADM, true, true},
        {18, SEC_DBADM, U_OLGA, true, true},
        {19, SEC_DBADM, U_ALICE, true, false},
        /* members by role only, by name only */
        {20, "{\"members\":{\"roles\":[\"readers\"]}}", U_CARL, true, false},
        {21, "{\"members\":{\"roles\":[\"readers\"]}}", U_ALICE, false, false},
        {22, "{\"members\":{\"roles\":[\"readers\"]}}", U_ANON, false, false},
        {23, "{\"members\":{\"names\":[\"bob\"]}}", U_BOB, true, false},
        {24, "{\"members\":{\"names\":[\"bob\"]}}", U_ALICE, false, false},
        {25, "{\"members\":{\"names\":[\"bob\"]}}", U_ADMIN, true, true},
        /* the legacy "readers" key stands for members when "members" is absent */
        {26, "{\"readers\":{\"names\":[\"alice\"]}}", U_ALICE, true, false},
        {27, "{\"readers\":{\"names\":[\"alice\"]}}", U_BOB, false, false},
        {28, "{\"readers\":{\"names\":[\"alice\"]}}", U_ANON, false, false},
        {29, "{\"readers\":{\"roles\":[\"readers\"]}}", U_CARL, true, false},
        {30, "{\"members\":{\"names\":[\"bob\"]},\"readers\":{\"names\":[\"alice\"]}}", U_ALICE, false, false},
        {31, "{\"members\":{\"names\":[\"bob\"]},\"readers\":{\"names\":[\"alice\"]}}", U_BOB, true, false},
        /* CouchDB 3's default for a new database: admin-only */
        {32, STT_SECURITY_DEFAULT, U_ANON, false, false},
        {33, STT_SECURITY_DEFAULT, U_ALICE, false, false},
        {34, STT_SECURITY_DEFAULT, U_CARL, false, false},
        {35, STT_SECURITY_DEFAULT, U_DBADM, false, false},
        {36, STT_SECURITY_DEFAULT, U_ADMIN, true, true},
        {37, STT_SECURITY_DEFAULT, U_NUM5, false, false},
        /* a name listed among the roles is no role, and vice versa */
        {38, "{\"members\":{\"roles\":[\"alice\"]}}", U_ALICE, false, false},
        {39, "{\"admins\":{\"names\":[\"ops\"]},\"members\":{\"names\":[\"x\"]}}", U_OLGA, false, false},
        /* non-strings among the names are skipped, not fatal */
        {40, "{\"members\":{\"names\":[1,\"alice\"]}}", U_ALICE, true, false},
        /* a role prefix is no match */
        {41, "{\"members\":{\"roles\":[\"read\"]}}", U_CARL, false, false},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        const access_case_t *c = &cases[i];
        stt_arena_t ar = STT_ARENA_INIT;
        const stt_json_t *sec = parse(&ar, c->sec);
        stt_user_ctx_t u = user_of(c->who);
        bool member = stt_security_is_member(sec, &u), admin = stt_security_is_db_admin(sec, &u);
        if (member != c->member || admin != c->admin)
            fail_msg("case %d: want member=%d admin=%d, got member=%d admin=%d", c->n, c->member, c->admin, member,
                     admin);
        stt_arena_free(&ar);
    }
}

/* ====================================================================================
 * authz.c: user contexts */

static void user_ctx_cases(void **state)
{
    static const struct {
        int n;
        who_t who;
        const char *json;
        bool admin;
    } cases[] = {
        {1, U_ANON, "{\"name\":null,\"roles\":[]}", false},
        {2, U_ALICE, "{\"name\":\"alice\",\"roles\":[]}", false},
        {3, U_ADMIN, "{\"name\":\"admin\",\"roles\":[\"_admin\"]}", true},
        {4, U_NUM5, "{\"name\":5,\"roles\":[\"a\",\"b\"]}", false},
        {5, U_CARL, "{\"name\":\"carl\",\"roles\":[\"readers\"]}", false},
        {6, U_QUOTE, "{\"name\":\"a\\\"b\\\\c\",\"roles\":[]}", false},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        stt_user_ctx_t u = user_of(cases[i].who);
        stt_buf_t b = STT_BUF_INIT;
        stt_user_ctx_write(&b, &u);
        if (!str_is(b.base, cases[i].json)) fail_msg("case %d: want %s, got %s", cases[i].n, cases[i].json, b.base);
        if (stt_user_is_admin(&u) != cases[i].admin) fail_msg("case %d: is_admin", cases[i].n);
        stt_buf_free(&b);
    }
    assert_false(stt_user_has_role(NULL, "_admin"));
    stt_user_ctx_t carl = user_of(U_CARL);
    assert_true(stt_user_has_role(&carl, "readers"));
    assert_false(stt_user_has_role(&carl, "reader"));
}

/* ====================================================================================
 * users.c: stt_users_before_write */

#define UID(n) "org.couchdb.user:" n
#define ALICE_OLD "{\"_id\":\"org.couchdb.user:alice\",\"name\":\"alice\",\"roles\":[],\"type\":\"user\"}"
#define MEMNAME_OLD "{\"_id\":\"org.couchdb.user:memname\",\"name\":\"memname\",\"roles\":[],\"type\":\"user\"}"
#define CAROL_OLD "{\"_id\":\"org.couchdb.user:carol\",\"name\":\"carol\",\"roles\":[],\"type\":\"user\"}"

typedef struct {
    int n;
    who_t who;
    const char *sec;
    const char *id;
    const char *doc; /* NULL: a delete */
    const char *old; /* NULL: no current doc */
    int status;
    const char *reason; /* with a refusal */
    const char *body;   /* on success: the body to store; NULL: none */
} bw_case_t;

static void run_before_write(const bw_case_t *c)
{
    stt_arena_t ar = STT_ARENA_INIT;
    stt_user_ctx_t u = user_of(c->who);
    const stt_json_t *sec = parse(&ar, c->sec), *doc = parse(&ar, c->doc), *old = parse(&ar, c->old);
    const char *body = "unset", *error = NULL, *reason = NULL;
    size_t bodylen = 0;
    int rc = stt_users_before_write(&ar, &u, sec, c->id, strlen(c->id), doc, c->doc == NULL, old, &body, &bodylen,
                                    &error, &reason);
    if (rc != c->status) fail_msg("case %d: want %d, got %d (%s)", c->n, c->status, rc, rc ? reason : "");
    if (rc) {
        const char *want_error = rc == 404 ? "not_found" : "forbidden";
        if (!str_is(error, want_error) || !str_is(reason, c->reason))
            fail_msg("case %d: want %s \"%s\", got %s \"%s\"", c->n, want_error, c->reason, error, reason);
    } else if (!str_is(body, c->body) || (body && bodylen != strlen(body))) {
        fail_msg("case %d: want body %s, got %s", c->n, c->body ? c->body : "(none)", body ? body : "(none)");
    }
    stt_arena_free(&ar);
}

static void users_before_write_cases(void **state)
{
    static const bw_case_t cases[] = {
        /* ---- the validate_doc_update reasons, as a server admin (user_*_admin lines) */
        {1, U_ADMIN, SEC_OPEN, UID("carol"),
         "{\"_id\":\"org.couchdb.user:carol\",\"name\":\"carol\",\"roles\":[],\"type\":\"person\"}", NULL, 403,
         "doc.type must be user"},
        {2, U_ADMIN, SEC_OPEN, UID("carol"), "{\"name\":\"carol\",\"roles\":[]}", NULL, 403, "doc.type must be user"},
        {3, U_ADMIN, SEC_OPEN, UID("carol"), "{\"roles\":[],\"type\":\"user\"}", NULL, 403, "doc.name is required"},
        {4, U_ADMIN, SEC_OPEN, UID("carol"), "{\"name\":\"\",\"roles\":[],\"type\":\"user\"}", NULL, 403,
         "doc.name is required"},
        {5, U_ADMIN, SEC_OPEN, UID("carol"), "{\"name\":null,\"roles\":[],\"type\":\"user\"}", NULL, 403,
         "doc.name is required"},
        {6, U_ADMIN, SEC_OPEN, UID("carol"), "{\"name\":\"carol\",\"type\":\"user\"}", NULL, 403,
         "doc.roles must exist"},
        {7, U_ADMIN, SEC_OPEN, UID("carol"), "{\"name\":\"carol\",\"roles\":null,\"type\":\"user\"}", NULL, 403,
         "doc.roles must exist"},
        {8, U_ADMIN, SEC_OPEN, UID("carol"), "{\"name\":\"carol\",\"roles\":\"readers\",\"type\":\"user\"}", NULL, 403,
         "doc.roles must be an array"},
        {9, U_ADMIN, SEC_OPEN, UID("carol"), "{\"name\":\"carol\",\"roles\":{},\"type\":\"user\"}", NULL, 403,
         "doc.roles must be an array"},
        {10, U_ADMIN, SEC_OPEN, UID("carol"), "{\"name\":\"carol\",\"roles\":[1],\"type\":\"user\"}", NULL, 403,
         "doc.roles can only contain strings"},
        {11, U_ADMIN, SEC_OPEN, UID("carol"), "{\"name\":\"dave\",\"roles\":[],\"type\":\"user\"}", NULL, 403,
         "Doc ID must be of the form org.couchdb.user:name"},
        {12, U_ADMIN, SEC_OPEN, "carol", "{\"name\":\"carol\",\"roles\":[],\"type\":\"user\"}", NULL, 403,
         "Doc ID must be of the form org.couchdb.user:name"},
        {13, U_ADMIN, SEC_OPEN, UID("carolx"), "{\"name\":\"carol\",\"roles\":[],\"type\":\"user\"}", NULL, 403,
         "Doc ID must be of the form org.couchdb.user:name"},
        {14, U_ADMIN, SEC_OPEN, UID("bob"), "{\"name\":\"bob\",\"roles\":[],\"type\":\"user\"}",
         "{\"_id\":\"org.couchdb.user:bob\",\"name\":\"bobby\",\"roles\":[],\"type\":\"user\"}", 403,
         "Usernames can not be changed."},
        /* 5 !== "5" in the validation function */
        {15, U_ADMIN, SEC_OPEN, UID("5"), "{\"name\":\"5\",\"roles\":[],\"type\":\"user\"}",
         "{\"_id\":\"org.couchdb.user:5\",\"name\":5,\"roles\":[],\"type\":\"user\"}", 403,
         "Usernames can not be changed."},
        {16, U_ADMIN, SEC_OPEN, UID("carol"),
         "{\"name\":\"carol\",\"roles\":[\"readers\",\"_admin\"],\"type\":\"user\"}", NULL, 403,
         "No system roles (starting with underscore) in users db."},
        {17, U_ADMIN, SEC_OPEN, UID("carol"), "{\"name\":\"carol\",\"roles\":[\"_reader\"],\"type\":\"user\"}", NULL,
         403, "No system roles (starting with underscore) in users db."},
        {18, U_ADMIN, SEC_OPEN, UID("carol"),
         "{\"name\":\"carol\",\"roles\":[\"_metrics\",\"readers\"],\"type\":\"user\"}", NULL, 0, NULL,
         "{\"name\":\"carol\",\"roles\":[\"_metrics\",\"readers\"],\"type\":\"user\"}"},
        {19, U_ADMIN, SEC_OPEN, UID("_carol"), "{\"name\":\"_carol\",\"roles\":[],\"type\":\"user\"}", NULL, 403,
         "Username may not start with underscore."},
        {20, U_ADMIN, SEC_OPEN, UID("a:b"), "{\"name\":\"a:b\",\"roles\":[],\"type\":\"user\"}", NULL, 403,
         "Character `:` is not allowed in usernames."},
        {21, U_ADMIN, SEC_OPEN, UID("carol"), "{\"name\":\"carol\",\"password\":12345,\"roles\":[],\"type\":\"user\"}",
         NULL, 403, "Password value of '12345' is invalid."},
        {22, U_ADMIN, SEC_OPEN, UID("carol"), "{\"name\":\"carol\",\"password\":true,\"roles\":[],\"type\":\"user\"}",
         NULL, 403, "Password value of 'true' is invalid."},
        /* the password error comes from before_doc_update, ahead of validation */
        {23, U_ADMIN, SEC_OPEN, UID("carol"), "{\"name\":\"dave\",\"password\":1,\"type\":\"x\"}", NULL, 403,
         "Password value of '1' is invalid."},
        {24, U_ADMIN, SEC_OPEN, UID("carol"),
         "{\"name\":\"carol\",\"password_sha\":\"abc\",\"roles\":[],\"type\":\"user\"}", NULL, 403,
         "Users with password_sha must have a salt.See /_utils/script/couch.js for example code."},
        {25, U_ADMIN, SEC_OPEN, UID("carol"),
         "{\"name\":\"carol\",\"password_scheme\":\"bcrypt\",\"roles\":[],\"type\":\"user\"}", NULL, 403,
         "Password scheme `bcrypt` not supported."},
        {26, U_ADMIN, SEC_OPEN, UID("carol"),
         "{\"name\":\"carol\",\"password_scheme\":\"pbkdf2\",\"iterations\":\"10\",\"derived_key\":\"ab\",\"roles\":[],"
         "\"type\":\"user\"}",
         NULL, 403, "iterations must be a number."},
        {27, U_ADMIN, SEC_OPEN, UID("carol"),
         "{\"name\":\"carol\",\"password_scheme\":\"pbkdf2\",\"iterations\":10,\"derived_key\":5,\"roles\":[],\"type\":"
         "\"user\"}",
         NULL, 403, "derived_key must be a string."},
        {28, U_ADMIN, SEC_OPEN, UID("carol"),
         "{\"name\":\"carol\",\"password_scheme\":\"simple\",\"password_sha\":\"ab\",\"salt\":\"cd\",\"roles\":[],"
         "\"type\":\"user\"}",
         NULL, 0, NULL,
         "{\"name\":\"carol\",\"password_scheme\":\"simple\",\"password_sha\":\"ab\",\"salt\":\"cd\",\"roles\":[],"
         "\"type\":\"user\"}"},
        /* a server admin may give roles; special members are not stored; a null
         * password is left as it is (couch_users_db: {null, _} -> Doc) */
        {29, U_ADMIN, SEC_OPEN, UID("carol"),
         "{\"_id\":\"org.couchdb.user:carol\",\"_rev\":\"1-abc\",\"name\":\"carol\",\"roles\":[\"readers\"],\"type\":"
         "\"user\",\"fullname\":\"C\"}",
         NULL, 0, NULL, "{\"name\":\"carol\",\"roles\":[\"readers\"],\"type\":\"user\",\"fullname\":\"C\"}"},
        {30, U_ADMIN, SEC_OPEN, UID("carol"), "{\"name\":\"carol\",\"password\":null,\"roles\":[],\"type\":\"user\"}",
         NULL, 0, NULL, "{\"name\":\"carol\",\"password\":null,\"roles\":[],\"type\":\"user\"}"},
        {31, U_ADMIN, STT_SECURITY_DEFAULT, UID("alice"), "{\"name\":\"alice\",\"roles\":[\"x\"],\"type\":\"user\"}",
         ALICE_OLD, 0, NULL, "{\"name\":\"alice\",\"roles\":[\"x\"],\"type\":\"user\"}"},
        /* design docs: the caller's db-admin rule applies, nothing here */
        {32, U_ADMIN, SEC_OPEN, "_design/x", "{\"views\":{}}", NULL, 0, NULL, NULL},
        /* ---- anonymous sign-up (users_open_signup_*) */
        {33, U_ANON, SEC_OPEN, UID("carol"),
         "{\"_id\":\"org.couchdb.user:carol\",\"name\":\"carol\",\"roles\":[\"_admin\"],\"type\":\"user\"}", NULL, 403,
         "Only _admin may set roles"},
        {34, U_ANON, SEC_OPEN, UID("carol"),
         "{\"_id\":\"org.couchdb.user:carol\",\"name\":\"carol\",\"roles\":[\"readers\"],\"type\":\"user\"}", NULL, 403,
         "Only _admin may set roles"},
        {35, U_ANON, SEC_OPEN, UID("carol"),
         "{\"_id\":\"org.couchdb.user:carol\",\"name\":\"carol\",\"roles\":[],\"type\":\"person\"}", NULL, 403,
         "doc.type must be user"},
        {36, U_ANON, SEC_OPEN, UID("carol"),
         "{\"_id\":\"org.couchdb.user:carol\",\"name\":\"dave\",\"roles\":[],\"type\":\"user\"}", NULL, 403,
         "Doc ID must be of the form org.couchdb.user:name"},
        {37, U_ANON, SEC_OPEN, UID("carol"),
         "{\"_id\":\"org.couchdb.user:carol\",\"name\":\"carol\",\"roles\":[],\"type\":\"user\"}", NULL, 0, NULL,
         "{\"name\":\"carol\",\"roles\":[],\"type\":\"user\"}"},
        {38, U_ANON, SEC_OPEN, "foo", "{\"name\":\"foo\",\"roles\":[],\"type\":\"user\"}", NULL, 403,
         "Doc ID must be of the form org.couchdb.user:name"},
        /* anonymous over an existing doc: userCtx.name (null) !== newDoc.name */
        {39, U_ANON, SEC_OPEN, UID("carol"), "{\"name\":\"carol\",\"roles\":[],\"type\":\"user\"}", CAROL_OLD, 403,
         "You may only update your own user document."},
        /* ---- a user on her own doc (users_open_alice_*) */
        {40, U_ALICE, SEC_OPEN, UID("alice"),
         "{\"_id\":\"org.couchdb.user:alice\",\"_rev\":\"1-a\",\"name\":\"alice\",\"roles\":[\"readers\"],\"type\":"
         "\"user\"}",
         ALICE_OLD, 403, "Only _admin may edit roles"},
        {41, U_ALICE, SEC_OPEN, UID("alice"), "{\"name\":\"alice\",\"roles\":[\"_admin\"],\"type\":\"user\"}",
         ALICE_OLD, 403, "Only _admin may edit roles"},
        {42, U_ALICE, SEC_OPEN, UID("alice"), "{\"name\":\"alice\",\"roles\":[],\"type\":\"admin\"}", ALICE_OLD, 403,
         "doc.type must be user"},
        {43, U_ALICE, SEC_OPEN, UID("alice"), "{\"name\":\"mallory\",\"roles\":[],\"type\":\"user\"}", ALICE_OLD, 403,
         "Doc ID must be of the form org.couchdb.user:name"},
        {44, U_ALICE, SEC_OPEN, UID("alice"),
         "{\"name\":\"alice\",\"roles\":[],\"type\":\"user\",\"fullname\":\"Alice Example\"}", ALICE_OLD, 0, NULL,
         "{\"name\":\"alice\",\"roles\":[],\"type\":\"user\",\"fullname\":\"Alice Example\"}"},
        /* roles compared as sorted lists */
        {45, U_ALICE, SEC_OPEN, UID("alice"), "{\"name\":\"alice\",\"roles\":[\"b\",\"a\"],\"type\":\"user\"}",
         "{\"name\":\"alice\",\"roles\":[\"a\",\"b\"],\"type\":\"user\"}", 0, NULL,
         "{\"name\":\"alice\",\"roles\":[\"b\",\"a\"],\"type\":\"user\"}"},
        {46, U_ALICE, SEC_OPEN, UID("alice"), "{\"name\":\"alice\",\"roles\":[\"a\",\"a\"],\"type\":\"user\"}",
         "{\"name\":\"alice\",\"roles\":[\"a\",\"b\"],\"type\":\"user\"}", 403, "Only _admin may edit roles"},
        {47, U_ALICE, SEC_OPEN, UID("alice"), "{\"name\":\"alice\",\"roles\":[],\"type\":\"user\"}",
         "{\"name\":\"alice\",\"type\":\"user\"}", 0, NULL, "{\"name\":\"alice\",\"roles\":[],\"type\":\"user\"}"},
        /* her own doc before it exists: no roles allowed */
        {48, U_ALICE, SEC_OPEN, UID("alice"), "{\"name\":\"alice\",\"roles\":[],\"type\":\"user\"}", NULL, 0, NULL,
         "{\"name\":\"alice\",\"roles\":[],\"type\":\"user\"}"},
        {49, U_ALICE, SEC_OPEN, UID("alice"), "{\"name\":\"alice\",\"roles\":[\"x\"],\"type\":\"user\"}", NULL, 403,
         "Only _admin may set roles"},
        /* CVE-2017-12635: duplicate "roles", the last wins and is the one stored */
        {50, U_ALICE, SEC_OPEN, UID("alice"),
         "{\"_id\":\"org.couchdb.user:alice\",\"_rev\":\"1-a\",\"name\":\"alice\",\"type\":\"user\",\"roles\":[\"_"
         "admin\"],\"roles\":[]}",
         ALICE_OLD, 0, NULL, "{\"name\":\"alice\",\"type\":\"user\",\"roles\":[]}"},
        {51, U_ALICE, SEC_OPEN, UID("alice"),
         "{\"name\":\"alice\",\"type\":\"user\",\"roles\":[],\"roles\":[\"_admin\"]}", ALICE_OLD, 403,
         "Only _admin may edit roles"},
        {52, U_ANON, SEC_OPEN, UID("carol"),
         "{\"name\":\"carol\",\"type\":\"user\",\"roles\":[],\"roles\":[\"_admin\"]}", NULL, 403,
         "Only _admin may set roles"},
        {53, U_ANON, SEC_OPEN, UID("carol"), "{\"name\":\"carol\",\"type\":\"user\",\"roles\":[\"x\"],\"roles\":[]}",
         NULL, 0, NULL, "{\"name\":\"carol\",\"type\":\"user\",\"roles\":[]}"},
        {54, U_ADMIN, SEC_OPEN, UID("carol"), "{\"name\":\"dave\",\"name\":\"carol\",\"type\":\"user\",\"roles\":[]}",
         NULL, 0, NULL, "{\"name\":\"carol\",\"type\":\"user\",\"roles\":[]}"},
        /* ---- a user on someone else's doc: 404 before anything else */
        {55, U_ALICE, SEC_OPEN, UID("memname"),
         "{\"_id\":\"org.couchdb.user:memname\",\"name\":\"memname\",\"password\":\"memnamepw\",\"roles\":[],\"type\":"
         "\"user\",\"fullname\":\"x\"}",
         MEMNAME_OLD, 404, "missing"},
        {56, U_ALICE, SEC_OPEN, UID("zed"),
         "{\"_id\":\"org.couchdb.user:zed\",\"name\":\"zed\",\"password\":\"zedpw\",\"roles\":[],\"type\":\"user\"}",
         NULL, 404, "missing"},
        {57, U_ALICE, SEC_OPEN, "foo", "{\"name\":\"foo\",\"roles\":[],\"type\":\"user\"}", NULL, 404, "missing"},
        {58, U_ALICE, STT_SECURITY_DEFAULT, UID("memname"), "{\"name\":\"memname\",\"roles\":[],\"type\":\"user\"}",
         MEMNAME_OLD, 404, "missing"},
        /* a numeric JWT sub is never the doc's name */
        {59, U_NUM5, SEC_OPEN, UID("5"), "{\"name\":\"5\",\"roles\":[],\"type\":\"user\"}", NULL, 404, "missing"},
        /* ---- database admins (by name, by role) may write others' docs and give roles */
        {60, U_DBADM, SEC_DBADM, UID("carol"), "{\"name\":\"carol\",\"roles\":[\"readers\"],\"type\":\"user\"}", NULL,
         0, NULL, "{\"name\":\"carol\",\"roles\":[\"readers\"],\"type\":\"user\"}"},
        {61, U_OLGA, SEC_DBADM, UID("alice"), "{\"name\":\"alice\",\"roles\":[\"x\"],\"type\":\"user\"}", ALICE_OLD, 0,
         NULL, "{\"name\":\"alice\",\"roles\":[\"x\"],\"type\":\"user\"}"},
        {62, U_DBADM, SEC_DBADM, UID("carol"), "{\"name\":\"carol\",\"roles\":[\"_admin\"],\"type\":\"user\"}", NULL,
         403, "No system roles (starting with underscore) in users db."},
        /* ---- deletes (validation: only _admin or the doc's own user) */
        {63, U_ALICE, SEC_OPEN, UID("alice"), NULL, ALICE_OLD, 0, NULL, NULL},
        {64, U_ADMIN, SEC_OPEN, UID("memname"), NULL, MEMNAME_OLD, 0, NULL, NULL},
        {65, U_ALICE, SEC_OPEN, UID("memname"), NULL, MEMNAME_OLD, 404, "missing"},
        {66, U_ANON, SEC_OPEN, UID("carol"), NULL, CAROL_OLD, 403, "Only admins may delete other user docs."},
        /* a database admin is no _admin for the delete rule of _design/_auth */
        {67, U_DBADM, SEC_DBADM, UID("carol"), NULL, CAROL_OLD, 403, "Only admins may delete other user docs."},
    };
    for (size_t i = 0; i < NCASES(cases); i++)
        run_before_write(&cases[i]);
}

static bool all_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    return true;
}

/* A stored body that replaced a clear password: pbkdf2 fields first, in CouchDB's
 * order, then rest (the body's other members as they were); returns the hash. */
static stt_user_hash_t check_hashed(const char *body, const char *rest)
{
    static const char head[] = "{\"password_scheme\":\"pbkdf2\",\"pbkdf2_prf\":\"sha256\",\"salt\":\"";
    static const char mid[] = "\",\"iterations\":600000,\"derived_key\":\"";
    stt_user_hash_t h = {0};
    size_t hl = sizeof(head) - 1, ml = sizeof(mid) - 1;
    if (strncmp(body, head, hl) != 0) fail_msg("hashed body starts wrong: %s", body);
    const char *salt = body + hl;
    if (!all_hex(salt, 32) || strncmp(salt + 32, mid, ml) != 0) fail_msg("bad salt: %s", body);
    const char *dk = salt + 32 + ml;
    if (!all_hex(dk, 64) || strncmp(dk + 64, "\",", 2) != 0) fail_msg("bad derived_key: %s", body);
    if (strcmp(dk + 66, rest) != 0) fail_msg("want the rest %s, got %s", rest, dk + 66);
    if (strstr(body, "\"password\"")) fail_msg("clear password stored: %s", body);
    strcpy(h.scheme, "pbkdf2");
    strcpy(h.prf, "sha256");
    h.iterations = 600000;
    memcpy(h.salt, salt, 32);
    memcpy(h.derived_key, dk, 64);
    return h;
}

/* The only cases that hash (each PBKDF2 costs 600000 iterations). */
static void users_password_hashed(void **state)
{
    stt_arena_t ar = STT_ARENA_INIT;
    const char *body, *error, *reason;
    size_t bodylen;
    /* 1: an admin creates alice (user_alice_create / user_alice_stored_doc_admin); old
     * hash fields sent along are dropped, the new ones come first */
    stt_user_ctx_t admin = user_of(U_ADMIN);
    const stt_json_t *doc =
        parse(&ar, "{\"_id\":\"org.couchdb.user:alice\",\"name\":\"alice\",\"password\":\"alicepw\","
                   "\"salt\":\"old\",\"derived_key\":\"old\",\"password_sha\":\"x\",\"iterations\":"
                   "3,\"preserve_salt\":false,\"roles\":[],\"type\":\"user\"}");
    int rc = stt_users_before_write(&ar, &admin, parse(&ar, SEC_OPEN), UID("alice"), strlen(UID("alice")), doc, false,
                                    NULL, &body, &bodylen, &error, &reason);
    if (rc) fail_msg("case 1: %d %s", rc, reason);
    assert_int_equal(bodylen, strlen(body));
    stt_user_hash_t h = check_hashed(body, "\"name\":\"alice\",\"roles\":[],\"type\":\"user\"}");
    assert_int_equal(stt_pw_check_user(&h, "alicepw", 7), 0);
    /* 2: anonymous sign-up with a password (users_open_signup_anonymous) */
    stt_user_ctx_t anon = user_of(U_ANON);
    doc = parse(&ar, "{\"_id\":\"org.couchdb.user:carol\",\"name\":\"carol\",\"password\":\"carolpw\",\"roles\":[],"
                     "\"type\":\"user\"}");
    rc = stt_users_before_write(&ar, &anon, parse(&ar, SEC_OPEN), UID("carol"), strlen(UID("carol")), doc, false, NULL,
                                &body, &bodylen, &error, &reason);
    if (rc) fail_msg("case 2: %d %s", rc, reason);
    stt_user_hash_t h2 = check_hashed(body, "\"name\":\"carol\",\"roles\":[],\"type\":\"user\"}");
    assert_int_not_equal(strcmp(h.salt, h2.salt), 0); /* a fresh salt each time */
    stt_arena_free(&ar);
}

/* ====================================================================================
 * users.c: reads, public fields, per-user db names */

static void users_after_read_cases(void **state)
{
    static const struct {
        int n;
        who_t who;
        const char *sec;
        const char *id;
        const char *public_fields;
        int want;
    } cases[] = {
        {1, U_ANON, SEC_OPEN, "_design/_auth", NULL, 403}, {2, U_ALICE, SEC_OPEN, "_design/_auth", "name", 403},
        {3, U_ADMIN, SEC_OPEN, "_design/_auth", NULL, 0},  {4, U_DBADM, SEC_DBADM, "_design/_auth", NULL, 0},
        {5, U_OLGA, SEC_DBADM, "_design/_auth", NULL, 0},  {6, U_ALICE, SEC_OPEN, UID("alice"), NULL, 0},
        {7, U_ALICE, SEC_OPEN, UID("alice"), "name", 0},   {8, U_ALICE, SEC_OPEN, UID("memname"), NULL, 404},
        {9, U_ALICE, SEC_OPEN, UID("memname"), "", 404},   {10, U_ALICE, SEC_OPEN, UID("memname"), "name", 1},
        {11, U_ANON, SEC_OPEN, UID("alice"), NULL, 404},   {12, U_ANON, SEC_OPEN, UID("alice"), "name, fullname", 1},
        {13, U_ADMIN, SEC_OPEN, UID("memname"), NULL, 0},  {14, U_DBADM, SEC_DBADM, UID("memname"), NULL, 0},
        {15, U_ALICE, SEC_OPEN, "foo", NULL, 404},         {16, U_NUMALI, SEC_OPEN, UID("alice"), NULL, 404},
        {17, U_ALICE, SEC_OPEN, UID("alicex"), NULL, 404},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        stt_arena_t ar = STT_ARENA_INIT;
        stt_user_ctx_t u = user_of(cases[i].who);
        int rc = stt_users_after_read(&u, parse(&ar, cases[i].sec), cases[i].id, strlen(cases[i].id),
                                      cases[i].public_fields);
        if (rc != cases[i].want) fail_msg("case %d: want %d, got %d", cases[i].n, cases[i].want, rc);
        stt_arena_free(&ar);
    }
}

static void users_public_body_cases(void **state)
{
    static const char body[] = "{\"password_scheme\":\"pbkdf2\",\"salt\":\"ab\",\"name\":\"alice\",\"roles\":[],"
                               "\"type\":\"user\",\"fullname\":\"Alice Example\",\"age\":{\"y\":30}}";
    static const struct {
        int n;
        const char *fields;
        const char *want;
        int count;
    } cases[] = {
        {1, "name", "{\"name\":\"alice\"}", 1},
        {2, "name, fullname", "{\"name\":\"alice\",\"fullname\":\"Alice Example\"}", 2},
        {3, "fullname,name", "{\"name\":\"alice\",\"fullname\":\"Alice Example\"}", 2}, /* the body's order */
        {4, "", "{}", 0},
        {5, "nope", "{}", 0},
        {6, "name ,  age", "{\"name\":\"alice\",\"age\":{\"y\":30}}", 2},
        {7, "nam", "{}", 0},
        {8, "names", "{}", 0},
        {9, "name,,type", "{\"name\":\"alice\",\"type\":\"user\"}", 2},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        stt_arena_t ar = STT_ARENA_INIT;
        stt_buf_t b = STT_BUF_INIT;
        int n = stt_users_public_body(parse(&ar, body), cases[i].fields, &b);
        if (n != cases[i].count || !str_is(b.base, cases[i].want))
            fail_msg("case %d: want %d %s, got %d %s", cases[i].n, cases[i].count, cases[i].want, n, b.base);
        stt_buf_free(&b);
        stt_arena_free(&ar);
    }
}

static void peruser_dbname_cases(void **state)
{
    static const struct {
        int n;
        const char *prefix, *name, *want;
    } cases[] = {
        {1, "userdb-", "bob", "userdb-626f62"},
        {2, "userdb-", "Bob", "userdb-426f62"},
        {3, "userdb-", "\xc3\xa9", "userdb-c3a9"},
        {4, "u_", "a.b", "u_612e62"},
        {5, "userdb-", "", "userdb-"},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        stt_buf_t b = STT_BUF_INIT;
        stt_peruser_dbname(cases[i].prefix, cases[i].name, strlen(cases[i].name), &b);
        if (!str_is(b.base, cases[i].want)) fail_msg("case %d: want %s, got %s", cases[i].n, cases[i].want, b.base);
        stt_buf_free(&b);
    }
}

/* ====================================================================================
 * auth.c: fixture. A store with "_users" holding bob (roles ["readers"]) and carol
 * (a ':' in her password), both hashed with 10 iterations, and an in-memory ini with
 * the admin "admin" hashed with 1000. */

#define ADMIN_PW "adminpw"
#define BOB_PW "bobpw"
#define CAROL_PW "pa:ss"

typedef struct {
    char dir[64];
    stt_store_t *s;
    stt_ini_t *ini;
    stt_auth_t *a;
    stt_arena_t ar;
    char bob_salt[64];
    char bob_rev[STT_REV_STR_MAX];
} afx_t;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void put_user(stt_store_t *s, const char *name, const char *pw, const char *roles, uint32_t iters,
                     char *salt_out, char *rev_out)
{
    stt_user_hash_t h;
    stt_pw_hash_user(pw, strlen(pw), iters, &h);
    if (salt_out) strcpy(salt_out, h.salt);
    char id[128], body[1024];
    snprintf(id, sizeof(id), "org.couchdb.user:%s", name);
    snprintf(body, sizeof(body),
             "{\"password_scheme\":\"pbkdf2\",\"pbkdf2_prf\":\"sha256\",\"salt\":\"%s\",\"iterations\":%u,"
             "\"derived_key\":\"%s\",\"name\":\"%s\",\"roles\":%s,\"type\":\"user\"}",
             h.salt, h.iterations, h.derived_key, name, roles);
    stt_db_t *db = NULL;
    assert_int_equal(stt_db_open(s, STT_USERS_DB, strlen(STT_USERS_DB), &db), 0);
    stt_doc_write_t w = {.id = id, .idlen = strlen(id), .body = body, .bodylen = strlen(body)};
    stt_doc_result_t res;
    assert_int_equal(stt_doc_write(db, &w, 1, true, &res), 0);
    assert_int_equal(res.err, 0);
    if (rev_out) snprintf(rev_out, STT_REV_STR_MAX, "%s", res.rev);
    stt_db_release(db);
}

static void set_admin(stt_ini_t *ini, const char *name, const char *pw, uint32_t iters)
{
    stt_buf_t h = STT_BUF_INIT;
    stt_pw_hash_admin(pw, strlen(pw), iters, &h);
    assert_int_equal(stt_ini_set(ini, "admins", name, h.base, false, NULL), 0);
    stt_buf_free(&h);
}

static void set(afx_t *f, const char *section, const char *key, const char *value)
{
    if (value)
        assert_int_equal(stt_ini_set(f->ini, section, key, value, false, NULL), 0);
    else
        stt_ini_delete(f->ini, section, key, false, NULL);
}

static int auth_setup(void **state)
{
    afx_t *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/settee-sec-XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    stt_store_opts_t o;
    stt_store_opts_default(&o);
    char err[512];
    if (stt_store_open(f->dir, &o, &f->s, err, sizeof(err)) != 0) {
        print_error("stt_store_open: %s\n", err);
        return -1;
    }
    if (stt_ini_open(NULL, &f->ini, err, sizeof(err)) != 0) return -1;
    set_admin(f->ini, "admin", ADMIN_PW, 1000);
    if (stt_db_create(f->s, STT_USERS_DB, strlen(STT_USERS_DB)) != 0) return -1;
    put_user(f->s, "bob", BOB_PW, "[\"readers\"]", 10, f->bob_salt, f->bob_rev);
    put_user(f->s, "carol", CAROL_PW, "[]", 10, NULL, NULL);
    if (stt_auth_open(f->s, f->ini, &f->a) != 0) return -1;
    *state = f;
    return 0;
}

static int auth_teardown(void **state)
{
    afx_t *f = *state;
    stt_auth_close(f->a);
    stt_ini_free(f->ini);
    stt_store_close(f->s);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    stt_arena_free(&f->ar);
    free(f);
    return 0;
}

/* "Basic " + base64(userpass), in the fixture's arena */
static const char *basic(afx_t *f, const char *userpass)
{
    stt_buf_t b = STT_BUF_INIT;
    stt_buf_appends(&b, "Basic ");
    stt_base64_encode(&b, userpass, strlen(userpass));
    const char *r = stt_arena_strndup(&f->ar, b.base, b.len);
    stt_buf_free(&b);
    return r;
}

static stt_auth_result_t request(afx_t *f, const char *authorization, const char *peer)
{
    stt_auth_input_t in = {
        .authorization = authorization, .authorization_len = authorization ? strlen(authorization) : 0, .peer = peer};
    stt_auth_result_t r;
    stt_auth_request(f->a, &f->ar, &in, &r);
    return r;
}

static stt_auth_result_t with_cookie(afx_t *f, const char *cookie, const char *peer)
{
    stt_auth_input_t in = {.cookie = cookie, .cookie_len = strlen(cookie), .has_cookie = true, .peer = peer};
    stt_auth_result_t r;
    stt_auth_request(f->a, &f->ar, &in, &r);
    return r;
}

static stt_auth_result_t login(afx_t *f, const char *name, const char *pw, const char *peer, const char **cookie)
{
    stt_auth_result_t r;
    const char *ck;
    stt_auth_login(f->a, &f->ar, name, strlen(name), pw, pw ? strlen(pw) : 0, peer, &r, cookie ? cookie : &ck);
    return r;
}

/* What a result must be: status (with error and reason), or the user. */
typedef struct {
    int status;
    const char *error, *reason;
    const char *name;    /* NULL: anonymous */
    const char *roles;   /* joined with ',' */
    const char *handler; /* NULL: anonymous */
} want_t;

#define OK_AS(nm, rl, h) ((want_t){0, NULL, NULL, nm, rl, h})
#define ANON ((want_t){0, NULL, NULL, NULL, "", NULL})
#define FAIL(st, e, r) ((want_t){st, e, r, NULL, "", NULL})
#define BAD_PW FAIL(401, "unauthorized", "Name or password is incorrect.")
#define LOCKED FAIL(403, "forbidden", "Account is temporarily locked due to multiple authentication failures")
#define LIMITED FAIL(429, "too_many_requests", "Too many failed authentication attempts from this address.")

static void check_result(int n, const stt_auth_result_t *r, want_t w)
{
    if (r->status != w.status) fail_msg("case %d: want status %d, got %d (%s)", n, w.status, r->status, r->reason);
    if (w.status) {
        if (!str_is(r->error, w.error) || !str_is(r->reason, w.reason))
            fail_msg("case %d: want %s \"%s\", got %s \"%s\"", n, w.error, w.reason, r->error, r->reason);
        if (w.status == 429 && (r->retry_after == 0 || r->retry_after > 3600))
            fail_msg("case %d: retry_after %u", n, r->retry_after);
        return;
    }
    char roles[256] = "";
    for (size_t i = 0; i < r->user.nroles; i++)
        snprintf(roles + strlen(roles), sizeof(roles) - strlen(roles), "%s%s", i ? "," : "", r->user.roles[i]);
    if (!str_is(r->user.name, w.name) || (w.name && r->user.namelen != strlen(w.name)) || strcmp(roles, w.roles) != 0 ||
        !str_is(r->user.handler, w.handler))
        fail_msg("case %d: want %s [%s] by %s, got %s [%s] by %s", n, w.name ? w.name : "anonymous", w.roles,
                 w.handler ? w.handler : "-", r->user.name ? r->user.name : "anonymous", roles,
                 r->user.handler ? r->user.handler : "-");
}

/* ====================================================================================
 * auth.c: Basic */

static void auth_basic_cases(void **state)
{
    afx_t *f = *state;
    const struct {
        int n;
        const char *authorization; /* as sent; "b:" + user:pass for Basic */
        want_t want;
    } cases[] = {
        {1, "b:admin:" ADMIN_PW, OK_AS("admin", "_admin", "default")},
        {2, "b:admin:wrong", BAD_PW},
        {3, "b:bob:" BOB_PW, OK_AS("bob", "readers", "default")},
        {4, "b:bob:wrong", BAD_PW},
        {5, "b:carol:" CAROL_PW, OK_AS("carol", "", "default")}, /* split at the first ':' */
        {6, "b:carol:pa", BAD_PW},
        {7, "b:bob:", BAD_PW},
        {8, "Basic !!!not-base64", FAIL(400, "bad_request", "Authorization header has invalid base64 value")},
        {9, "b:nocolon", ANON},
        {10, "b:_:_", ANON},
        {11, "Basic ", ANON},
        {12, "Bearer x", ANON}, /* no jwt handler by default */
        {13, NULL, ANON},
        {14, "basic YWRtaW46YWRtaW5wdw==", ANON}, /* "Basic " is matched as CouchDB does, with its case */
        {15, "Digest abc", ANON},
        /* cached after the first success: the same answer */
        {16, "b:admin:" ADMIN_PW, OK_AS("admin", "_admin", "default")},
        {17, "b:bob:" BOB_PW, OK_AS("bob", "readers", "default")},
        /* an unknown user costs a full PBKDF2 and answers like a wrong password */
        {18, "b:nobody:x", BAD_PW},
        /* an [admins] name shadows a _users doc of the same name */
        {19, "b:admin:x", BAD_PW},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        const char *h = cases[i].authorization;
        if (h && strncmp(h, "b:", 2) == 0) h = basic(f, h + 2);
        stt_auth_result_t r = request(f, h, "127.0.0.1");
        check_result(cases[i].n, &r, cases[i].want);
    }
    /* a changed admin password: the cached pair no longer matches */
    set_admin(f->ini, "admin", "newpw", 1000);
    stt_auth_result_t r = request(f, basic(f, "admin:" ADMIN_PW), "127.0.0.2");
    check_result(20, &r, BAD_PW);
    r = request(f, basic(f, "admin:newpw"), "127.0.0.2");
    check_result(21, &r, OK_AS("admin", "_admin", "default"));
    assert_true(stt_auth_has_admin(f->a));
    stt_ini_delete(f->ini, "admins", "admin", false, NULL);
    assert_false(stt_auth_has_admin(f->a));
    r = request(f, basic(f, "admin:newpw"), "127.0.0.2");
    check_result(22, &r, BAD_PW);
}

/* ====================================================================================
 * auth.c: the lockout (couch_auth_lockout) */

static void auth_lockout(void **state)
{
    afx_t *f = *state;
    const char *good = basic(f, "admin:" ADMIN_PW), *bad = basic(f, "admin:wrong");
    const struct {
        int n;
        const char *section, *key, *value; /* a setting first, when key */
        const char *authorization;
        const char *peer;
        int times;
        want_t want;
    } cases[] = {
        {1, NULL, NULL, NULL, bad, "10.0.0.1", 5, BAD_PW},
        {2, NULL, NULL, NULL, good, "10.0.0.1", 1, LOCKED}, /* the right password too */
        {3, NULL, NULL, NULL, bad, "10.0.0.1", 1, LOCKED},
        {4, NULL, NULL, NULL, good, "10.0.0.2", 1, OK_AS("admin", "_admin", "default")}, /* another address */
        {5, NULL, NULL, NULL, basic(f, "bob:" BOB_PW), "10.0.0.1", 1, OK_AS("bob", "readers", "default")},
        /* four failures are not yet a lockout */
        {6, NULL, NULL, NULL, basic(f, "bob:x"), "10.0.0.3", 4, BAD_PW},
        {7, NULL, NULL, NULL, basic(f, "bob:" BOB_PW), "10.0.0.3", 1, OK_AS("bob", "readers", "default")},
        /* mode = off: no lockout at all, and failures are not counted */
        {8, "chttpd_auth_lockout", "mode", "off", good, "10.0.0.1", 1, OK_AS("admin", "_admin", "default")},
        {9, NULL, NULL, NULL, bad, "10.0.0.4", 6, BAD_PW},
        {10, NULL, NULL, NULL, good, "10.0.0.4", 1, OK_AS("admin", "_admin", "default")},
        /* mode = warn counts but does not refuse */
        {11, "chttpd_auth_lockout", "mode", "warn", bad, "10.0.0.5", 6, BAD_PW},
        {12, NULL, NULL, NULL, good, "10.0.0.5", 1, OK_AS("admin", "_admin", "default")},
        /* back to enforce: 10.0.0.1's failures still count, 10.0.0.4's never did */
        {13, "chttpd_auth_lockout", "mode", "enforce", good, "10.0.0.1", 1, LOCKED},
        {14, NULL, NULL, NULL, good, "10.0.0.4", 1, OK_AS("admin", "_admin", "default")},
        {15, NULL, NULL, NULL, good, "10.0.0.5", 1, LOCKED},
        /* threshold */
        {16, "chttpd_auth_lockout", "threshold", "2", bad, "10.0.0.6", 2, BAD_PW},
        {17, NULL, NULL, NULL, good, "10.0.0.6", 1, LOCKED},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        if (cases[i].key) set(f, cases[i].section, cases[i].key, cases[i].value);
        for (int k = 0; k < cases[i].times; k++) {
            stt_auth_result_t r = request(f, cases[i].authorization, cases[i].peer);
            check_result(cases[i].n, &r, cases[i].want);
        }
    }
    /* POST /_session goes through the same lockout */
    stt_auth_result_t r = login(f, "admin", ADMIN_PW, "10.0.0.1", NULL);
    check_result(18, &r, LOCKED);
    r = login(f, "admin", ADMIN_PW, "10.0.0.7", NULL);
    check_result(19, &r, OK_AS("admin", "_admin", "cookie"));
}

/* ====================================================================================
 * auth.c: the per-address limit ([chttpd_auth_ratelimit]) */

static void auth_ratelimit(void **state)
{
    afx_t *f = *state;
    set(f, "chttpd_auth_ratelimit", "max_failures", "3");
    const struct {
        int n;
        const char *userpass;
        const char *peer;
        want_t want;
    } cases[] = {
        /* three failures on three names from one address */
        {1, "admin:x", "10.1.0.1", BAD_PW},
        {2, "bob:x", "10.1.0.1", BAD_PW},
        {3, "nobody:x", "10.1.0.1", BAD_PW},
        /* the fourth check is refused before any hashing, right password or not */
        {4, "admin:" ADMIN_PW, "10.1.0.1", LIMITED},
        {5, "carol:x", "10.1.0.1", LIMITED},
        /* another address is not concerned */
        {6, "admin:" ADMIN_PW, "10.1.0.2", OK_AS("admin", "_admin", "default")},
        {7, "bob:x", "10.1.0.2", BAD_PW},
        {8, "bob:" BOB_PW, "10.1.0.2", OK_AS("bob", "readers", "default")},
        /* successes do not count: two more failures reach the limit */
        {9, "bob:x", "10.1.0.2", BAD_PW},
        {10, "bob:x", "10.1.0.2", BAD_PW},
        {11, "bob:" BOB_PW, "10.1.0.2", LIMITED},
        /* requests without a password check are not limited */
        {12, NULL, "10.1.0.1", ANON},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        stt_auth_result_t r = request(f, cases[i].userpass ? basic(f, cases[i].userpass) : NULL, cases[i].peer);
        check_result(cases[i].n, &r, cases[i].want);
        if (cases[i].want.status == 429 && r.retry_after > 60)
            fail_msg("case %d: retry_after %u > window", cases[i].n, r.retry_after);
    }
    stt_auth_result_t r = login(f, "admin", ADMIN_PW, "10.1.0.1", NULL);
    check_result(13, &r, LIMITED);
    /* mode = off lifts it */
    set(f, "chttpd_auth_ratelimit", "mode", "off");
    r = request(f, basic(f, "admin:" ADMIN_PW), "10.1.0.1");
    check_result(14, &r, OK_AS("admin", "_admin", "default"));
}

/* ====================================================================================
 * auth.c: cookies (POST /_session, then AuthSession) */

static void auth_cookie(void **state)
{
    afx_t *f = *state;
    set(f, "chttpd_auth", "secret", "test-secret-0123");
    const char *bob_ck = NULL, *admin_ck = NULL, *none = NULL;
    stt_auth_result_t r = login(f, "bob", BOB_PW, "127.0.0.1", &bob_ck);
    check_result(1, &r, OK_AS("bob", "readers", "cookie"));
    assert_non_null(bob_ck);
    r = with_cookie(f, bob_ck, "127.0.0.1");
    check_result(2, &r, OK_AS("bob", "readers", "cookie"));
    assert_null(r.refresh_cookie); /* fresh: no refresh */
    r = login(f, "admin", ADMIN_PW, "127.0.0.1", &admin_ck);
    check_result(3, &r, OK_AS("admin", "_admin", "cookie"));
    r = with_cookie(f, admin_ck, "127.0.0.1");
    check_result(4, &r, OK_AS("admin", "_admin", "cookie"));
    /* refusals at login: no cookie */
    r = login(f, "bob", "wrong", "127.0.0.1", &none);
    check_result(5, &r, BAD_PW);
    assert_null(none);
    r = login(f, "bob", NULL, "127.0.0.1", &none);
    check_result(6, &r, BAD_PW);
    assert_null(none);
    r = login(f, "nobody", "x", "127.0.0.1", &none);
    check_result(7, &r, BAD_PW);
    assert_null(none);
    /* malformed: 400; unverifiable: anonymous */
    r = with_cookie(f, "%%%garbage", "127.0.0.1");
    check_result(8, &r, FAIL(400, "bad_request", "Malformed AuthSession cookie. Please clear your cookies."));
    r = with_cookie(f, "Ym9iOjE", "127.0.0.1"); /* "bob:1": two parts */
    check_result(9, &r, FAIL(400, "bad_request", "Malformed AuthSession cookie. Please clear your cookies."));
    r = with_cookie(f, "Ym9iOnp6Om1hYw", "127.0.0.1"); /* "bob:zz:mac": time not hex */
    check_result(10, &r, ANON);
    r = with_cookie(f, "Ym9iOjE6bWFj", "127.0.0.1"); /* "bob:1:mac": bad MAC */
    check_result(11, &r, ANON);
    r = with_cookie(f, "", "127.0.0.1");
    check_result(12, &r, ANON);
    /* a cookie made by hand with bob's salt: near the end of its life it is refreshed,
     * past it, ignored */
    uint64_t now = (uint64_t)time(NULL);
    stt_buf_t ck = STT_BUF_INIT;
    const char *secret = "test-secret-0123";
    stt_cookie_make(STT_HASH_SHA256, secret, strlen(secret), f->bob_salt, strlen(f->bob_salt), "bob", 3, now - 100,
                    &ck);
    r = with_cookie(f, ck.base, "127.0.0.1");
    check_result(13, &r, OK_AS("bob", "readers", "cookie"));
    assert_non_null(r.refresh_cookie);
    r = with_cookie(f, r.refresh_cookie, "127.0.0.1");
    check_result(14, &r, OK_AS("bob", "readers", "cookie"));
    stt_buf_reset(&ck);
    stt_cookie_make(STT_HASH_SHA256, secret, strlen(secret), f->bob_salt, strlen(f->bob_salt), "bob", 3, now - 601,
                    &ck);
    r = with_cookie(f, ck.base, "127.0.0.1");
    check_result(15, &r, ANON);
    /* sha1 is also in hash_algorithms ("sha256, sha") */
    stt_buf_reset(&ck);
    stt_cookie_make(STT_HASH_SHA1, secret, strlen(secret), f->bob_salt, strlen(f->bob_salt), "bob", 3, now, &ck);
    r = with_cookie(f, ck.base, "127.0.0.1");
    check_result(16, &r, OK_AS("bob", "readers", "cookie"));
    /* ... unless configured away */
    set(f, "chttpd_auth", "hash_algorithms", "sha256");
    r = with_cookie(f, ck.base, "127.0.0.1");
    check_result(17, &r, ANON);
    stt_buf_free(&ck);
    /* a cookie with an anonymous fallback: Basic still runs after an unverifiable cookie */
    stt_auth_input_t in = {.cookie = "Ym9iOjE6bWFj",
                           .cookie_len = 12,
                           .has_cookie = true,
                           .authorization = basic(f, "admin:" ADMIN_PW),
                           .peer = "127.0.0.1"};
    in.authorization_len = strlen(in.authorization);
    stt_auth_request(f->a, &f->ar, &in, &r);
    check_result(18, &r, OK_AS("admin", "_admin", "default"));
    /* a new secret invalidates the cookies made with the old one */
    set(f, "chttpd_auth", "secret", "another-secret");
    r = with_cookie(f, bob_ck, "127.0.0.1");
    check_result(19, &r, ANON);
    /* no secret at all: cookies are ignored, and a login makes (and keeps) one */
    set(f, "chttpd_auth", "secret", NULL);
    r = with_cookie(f, admin_ck, "127.0.0.1");
    check_result(20, &r, ANON);
    r = login(f, "bob", BOB_PW, "127.0.0.1", &bob_ck);
    check_result(21, &r, OK_AS("bob", "readers", "cookie"));
    char *made = stt_ini_get(f->ini, "chttpd_auth", "secret");
    assert_non_null(made);
    assert_int_equal(strlen(made), 32);
    assert_true(all_hex(made, 32));
    free(made);
    r = with_cookie(f, bob_ck, "127.0.0.1");
    check_result(22, &r, OK_AS("bob", "readers", "cookie"));
    /* a user whose doc is gone: the cookie no longer works */
    stt_db_t *db;
    assert_int_equal(stt_db_open(f->s, STT_USERS_DB, strlen(STT_USERS_DB), &db), 0);
    stt_doc_write_t w = {
        .id = UID("bob"), .idlen = strlen(UID("bob")), .body = "{}", .bodylen = 2, .deleted = true, .has_prev = true};
    assert_int_equal(stt_rev_parse(f->bob_rev, strlen(f->bob_rev), &w.prev), 0);
    stt_doc_result_t res;
    assert_int_equal(stt_doc_write(db, &w, 1, true, &res), 0);
    assert_int_equal(res.err, 0);
    stt_db_release(db);
    r = with_cookie(f, bob_ck, "127.0.0.1");
    check_result(23, &r, ANON);
    r = request(f, basic(f, "bob:" BOB_PW), "127.0.0.1");
    check_result(24, &r, BAD_PW);
}

/* The Set-Cookie line; "<date>" stands for the Expires date, which must be now +
 * Max-Age within a few seconds. */
static void auth_cookie_header_cases(void **state)
{
    afx_t *f = *state;
    static const struct {
        int n;
        const char *key, *value; /* a [chttpd_auth] setting for this case */
        const char *cookie;
        bool secure;
        const char *want;
        int max_age;
        bool bug;
    } cases[] = {
        {1, NULL, NULL, "abc", false, "AuthSession=abc; Version=1; Expires=<date>; Max-Age=600; Path=/; HttpOnly", 600},
        {2, NULL, NULL, "abc", true,
         "AuthSession=abc; Version=1; Expires=<date>; Max-Age=600; Path=/; Secure; HttpOnly", 600},
        /* the clearing cookie, as CouchDB 3.4.3 sends it (session_delete_with_cookie) */
        {3, NULL, NULL, NULL, false, "AuthSession=; Version=1; Expires=<date>; Max-Age=600; Path=/; HttpOnly", 600},
        {4, NULL, NULL, "", false, "AuthSession=; Version=1; Expires=<date>; Max-Age=600; Path=/; HttpOnly", 600},
        {5, "timeout", "60", "abc", false, "AuthSession=abc; Version=1; Expires=<date>; Max-Age=60; Path=/; HttpOnly",
         60},
        {6, "allow_persistent_cookies", "false", "abc", false, "AuthSession=abc; Version=1; Path=/; HttpOnly", 0},
        {7, "secure", "true", "abc", false,
         "AuthSession=abc; Version=1; Expires=<date>; Max-Age=600; Path=/; Secure; HttpOnly", 600},
        {8, "cookie_domain", "example.com", "abc", false,
         "AuthSession=abc; Version=1; Expires=<date>; Max-Age=600; Domain=example.com; Path=/; HttpOnly", 600},
        {9, "same_site", "strict", "abc", false,
         "AuthSession=abc; Version=1; Expires=<date>; Max-Age=600; Path=/; HttpOnly; SameSite=Strict", 600},
        {10, "same_site", "none", "abc", false,
         "AuthSession=abc; Version=1; Expires=<date>; Max-Age=600; Path=/; HttpOnly; SameSite=None", 600},
        {11, "same_site", "lax", "abc", false,
         "AuthSession=abc; Version=1; Expires=<date>; Max-Age=600; Path=/; HttpOnly; SameSite=Lax", 600},
        /* CouchDB lower-cases same_site (couch_httpd_auth:same_site/0) and mochiweb writes
         * "Lax". BUG (security/auth.c stt_auth_cookie_header, lines 952-953): only the first
         * letter is upper-cased, so "LAX" gives "SameSite=LAX". Flip bug to false once fixed. */
        {12, "same_site", "LAX", "abc", false,
         "AuthSession=abc; Version=1; Expires=<date>; Max-Age=600; Path=/; HttpOnly; SameSite=Lax", 600},
        /* CouchDB logs an invalid same_site and sends no SameSite attribute.
         * BUG (security/auth.c stt_auth_cookie_header, lines 952-956): any value is
         * written, "bogus" gives "SameSite=Bogus". Flip bug to false once fixed. */
        {13, "same_site", "bogus", "abc", false,
         "AuthSession=abc; Version=1; Expires=<date>; Max-Age=600; Path=/; HttpOnly", 600},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        if (cases[i].bug) continue;
        if (cases[i].key) set(f, "chttpd_auth", cases[i].key, cases[i].value);
        stt_buf_t b = STT_BUF_INIT;
        time_t before = time(NULL);
        stt_auth_cookie_header(f->a, cases[i].cookie, cases[i].secure, &b);
        /* put the date in the place of "<date>" */
        char want[512];
        snprintf(want, sizeof(want), "%s", cases[i].want);
        char *ph = strstr(want, "<date>");
        if (ph) {
            const char *at = strstr(b.base, "Expires=");
            if (!at) fail_msg("case %d: no Expires in %s", cases[i].n, b.base);
            at += 8;
            struct tm tm = {0};
            const char *end = strptime(at, "%a, %d-%b-%Y %H:%M:%S GMT", &tm);
            if (!end || end - at != 29) fail_msg("case %d: bad date in %s", cases[i].n, b.base);
            time_t t = timegm(&tm);
            if (t < before + cases[i].max_age || t > time(NULL) + cases[i].max_age + 1)
                fail_msg("case %d: Expires %ld is not now + %d", cases[i].n, (long)t, cases[i].max_age);
            char tail[512];
            snprintf(tail, sizeof(tail), "%s", ph + 6);
            snprintf(ph, sizeof(want) - (size_t)(ph - want), "%.29s%s", at, tail);
        }
        if (!str_is(b.base, want)) fail_msg("case %d:\n want %s\n got  %s", cases[i].n, want, b.base);
        stt_buf_free(&b);
        if (cases[i].key) set(f, "chttpd_auth", cases[i].key, NULL);
    }
}

/* ====================================================================================
 * auth.c: handlers ([chttpd] authentication_handlers, proxy) and settings */

static void proxy_token(const char *secret, const char *name, char out[65])
{
    unsigned char mac[32];
    unsigned int len = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)name, strlen(name), mac, &len);
    for (unsigned i = 0; i < len; i++)
        snprintf(out + 2 * i, 3, "%02x", mac[i]);
}

static void auth_handlers_proxy(void **state)
{
    afx_t *f = *state;
    const char *names[8];
    size_t n = stt_auth_handlers(f->a, names, 8);
    assert_int_equal(n, 2);
    assert_string_equal(names[0], "cookie");
    assert_string_equal(names[1], "default");
    stt_auth_input_t in = {.proxy_name = "carl", .proxy_name_len = 4, .proxy_roles = "a", .proxy_roles_len = 1};
    stt_auth_result_t r;
    stt_auth_request(f->a, &f->ar, &in, &r);
    check_result(1, &r, ANON); /* proxy is not among the defaults */
    /* a changed setting waits for a restart */
    set(f, "chttpd", "authentication_handlers",
        "{chttpd_auth, proxy_authentication_handler}, {chttpd_auth, default_authentication_handler}");
    n = stt_auth_handlers(f->a, names, 8);
    assert_int_equal(n, 2);
    assert_string_equal(names[0], "cookie");
    stt_auth_request(f->a, &f->ar, &in, &r);
    check_result(2, &r, ANON);
    stt_auth_reload_handlers(f->a);
    n = stt_auth_handlers(f->a, names, 8);
    assert_int_equal(n, 2);
    assert_string_equal(names[0], "proxy");
    assert_string_equal(names[1], "default");
    assert_int_equal(stt_auth_handlers(f->a, names, 1), 1);

    const char *admin_basic = basic(f, "admin:" ADMIN_PW);
    const struct {
        int n;
        const char *name, *roles, *token; /* the X-Auth-CouchDB-* headers */
        const char *authorization;
        want_t want;
    } cases[] = {
        {3, "carl", "a, b ,c", NULL, NULL, OK_AS("carl", "a,b,c", "proxy")},
        {4, " carl ", "", NULL, NULL, OK_AS("carl", "", "proxy")},
        {5, "carl", NULL, NULL, NULL, OK_AS("carl", "", "proxy")},
        {6, "carl", "a,,b,", NULL, NULL, OK_AS("carl", "a,b", "proxy")},
        {7, "carl", "_admin", NULL, NULL, OK_AS("carl", "_admin", "proxy")}, /* the proxy is trusted */
        {8, NULL, NULL, NULL, admin_basic, OK_AS("admin", "_admin", "default")},
        {9, "carl", "a", NULL, admin_basic, OK_AS("carl", "a", "proxy")}, /* first handler wins */
        {10, NULL, NULL, NULL, NULL, ANON},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        stt_auth_input_t pi = {.proxy_name = cases[i].name,
                               .proxy_name_len = cases[i].name ? strlen(cases[i].name) : 0,
                               .proxy_roles = cases[i].roles,
                               .proxy_roles_len = cases[i].roles ? strlen(cases[i].roles) : 0,
                               .proxy_token = cases[i].token,
                               .proxy_token_len = cases[i].token ? strlen(cases[i].token) : 0,
                               .authorization = cases[i].authorization,
                               .authorization_len = cases[i].authorization ? strlen(cases[i].authorization) : 0,
                               .peer = "127.0.0.1"};
        stt_auth_request(f->a, &f->ar, &pi, &r);
        check_result(cases[i].n, &r, cases[i].want);
    }
    /* proxy_use_secret: the token is the hex HMAC of the name */
    set(f, "chttpd_auth", "proxy_use_secret", "true");
    set(f, "chttpd_auth", "secret", "proxy-secret");
    char tok[65];
    proxy_token("proxy-secret", "carl", tok);
    const struct {
        int n;
        const char *token;
        want_t want;
    } tcases[] = {
        {11, tok, OK_AS("carl", "a", "proxy")},
        {12, "00", ANON},
        {13, NULL, ANON},
    };
    for (size_t i = 0; i < NCASES(tcases); i++) {
        stt_auth_input_t pi = {.proxy_name = "carl",
                               .proxy_name_len = 4,
                               .proxy_roles = "a",
                               .proxy_roles_len = 1,
                               .proxy_token = tcases[i].token,
                               .proxy_token_len = tcases[i].token ? strlen(tcases[i].token) : 0};
        stt_auth_request(f->a, &f->ar, &pi, &r);
        check_result(tcases[i].n, &r, tcases[i].want);
    }
    /* short names, and nothing usable: the defaults */
    set(f, "chttpd", "authentication_handlers", "default, jwt");
    stt_auth_reload_handlers(f->a);
    n = stt_auth_handlers(f->a, names, 8);
    assert_int_equal(n, 2);
    assert_string_equal(names[0], "default");
    assert_string_equal(names[1], "jwt");
    set(f, "chttpd", "authentication_handlers", "{chttpd_auth, nothing}");
    stt_auth_reload_handlers(f->a);
    n = stt_auth_handlers(f->a, names, 8);
    assert_int_equal(n, 2);
    assert_string_equal(names[0], "cookie");
    assert_string_equal(names[1], "default");
}

static void auth_settings_cases(void **state)
{
    afx_t *f = *state;
    stt_auth_settings_t s;
    stt_auth_settings(f->a, &s);
    assert_false(s.require_valid_user);
    assert_false(s.require_valid_user_except_for_up);
    assert_true(s.admin_only_all_dbs);
    assert_false(s.users_db_security_editable);
    assert_false(s.peruser_enable);
    assert_false(s.peruser_delete_dbs);
    assert_string_equal(s.peruser_prefix, "userdb-");
    assert_string_equal(s.public_fields, "");
    set(f, "chttpd", "require_valid_user", "true");
    set(f, "couch_peruser", "enable", "true");
    set(f, "couch_peruser", "database_prefix", "u_");
    set(f, "couch_httpd_auth", "public_fields", "name, fullname"); /* the 1.x section */
    stt_auth_settings(f->a, &s);
    assert_true(s.require_valid_user);
    assert_true(s.peruser_enable);
    assert_string_equal(s.peruser_prefix, "u_");
    assert_string_equal(s.public_fields, "name, fullname");
    set(f, "chttpd_auth", "public_fields", "name"); /* [chttpd_auth] first */
    stt_auth_settings(f->a, &s);
    assert_string_equal(s.public_fields, "name");
}

/* ====================================================================================
 * auth.c: deferred mode (the server's): a check that misses the credential cache
 * answers STT_AUTH_PENDING with a job; running and finishing it gives the answer an
 * inline check would have given, with the same cache, lockout and limits. */

static stt_auth_result_t finish(afx_t *f, const stt_auth_result_t *pending, int n, const char **cookie)
{
    if (pending->status != STT_AUTH_PENDING || !pending->job)
        fail_msg("case %d: want a pending job, got %d (%s)", n, pending->status, pending->reason);
    stt_auth_job_run(pending->job);
    stt_auth_result_t r;
    stt_auth_job_finish(f->a, &f->ar, pending->job, &r, cookie);
    stt_auth_job_free(pending->job);
    return r;
}

static void auth_deferred(void **state)
{
    afx_t *f = *state;
    stt_auth_set_deferred(f->a, true);
    const char *good = basic(f, "admin:" ADMIN_PW), *bad = basic(f, "bob:wrong");
    stt_auth_result_t p = request(f, good, "10.2.0.1"), r = finish(f, &p, 1, NULL);
    check_result(1, &r, OK_AS("admin", "_admin", "default"));
    r = request(f, good, "10.2.0.1"); /* now cached: answered at once */
    check_result(2, &r, OK_AS("admin", "_admin", "default"));
    assert_null(r.job);
    for (int i = 0; i < 5; i++) {
        p = request(f, bad, "10.2.0.1");
        r = finish(f, &p, 3, NULL);
        check_result(3, &r, BAD_PW);
    }
    r = request(f, basic(f, "bob:" BOB_PW), "10.2.0.1"); /* locked before any job */
    check_result(4, &r, LOCKED);
    p = request(f, basic(f, "bob:" BOB_PW), "10.2.0.2");
    r = finish(f, &p, 5, NULL);
    check_result(5, &r, OK_AS("bob", "readers", "default"));
    p = request(f, basic(f, "nobody:x"), "10.2.0.2");
    r = finish(f, &p, 6, NULL);
    check_result(6, &r, BAD_PW);
    /* logins */
    set(f, "chttpd_auth", "secret", "deferred-secret");
    const char *cookie = NULL;
    stt_auth_login(f->a, &f->ar, "carol", 5, CAROL_PW, strlen(CAROL_PW), "10.2.0.3", &p, &cookie);
    assert_null(cookie);
    r = finish(f, &p, 7, &cookie);
    check_result(7, &r, OK_AS("carol", "", "cookie"));
    assert_non_null(cookie);
    r = with_cookie(f, cookie, "10.2.0.3");
    check_result(8, &r, OK_AS("carol", "", "cookie"));
    stt_auth_login(f->a, &f->ar, "carol", 5, NULL, 0, "10.2.0.3", &p, &cookie);
    r = finish(f, &p, 9, &cookie);
    check_result(9, &r, BAD_PW);
    assert_null(cookie);
    stt_auth_login(f->a, &f->ar, "carol", 5, "nope", 4, "10.2.0.3", &p, &cookie);
    r = finish(f, &p, 10, &cookie);
    check_result(10, &r, BAD_PW);
    assert_null(cookie);
    stt_auth_set_deferred(f->a, false);
    r = request(f, basic(f, "carol:" CAROL_PW), "10.2.0.3"); /* cached by the login */
    check_result(11, &r, OK_AS("carol", "", "default"));
}

/* ====================================================================================
 * auth.c: a flood of distinct addresses keeps memory bounded.
 *
 * An unknown user or a real user's wrong password costs a full PBKDF2 on the first
 * failure of each address (the limit only answers 429 once an address has failed),
 * so there is no cheap path through an unknown name. A server admin hashed with one
 * iteration is: each attempt below costs a few SHA-256s. 100,000 addresses, each
 * failing once, must leave the heap as it was after the first 1,000 (the lockout
 * and per-address tables are allocated whole at open), and the limiter must keep
 * working for recent addresses. */

static size_t heap_in_use(void)
{
#if defined(__SANITIZE_ADDRESS__)
    return __sanitizer_get_current_allocated_bytes();
#else
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks;
#endif
}

static stt_auth_result_t flood_one(afx_t *f, const char *auth, unsigned i)
{
    char peer[32];
    snprintf(peer, sizeof(peer), "10.%u.%u.%u", (i >> 16) & 255, (i >> 8) & 255, i & 255);
    stt_arena_t ar = STT_ARENA_INIT;
    stt_auth_input_t in = {.authorization = auth, .authorization_len = strlen(auth), .peer = peer};
    stt_auth_result_t r;
    stt_auth_request(f->a, &ar, &in, &r);
    r.user.name = NULL; /* arena memory, gone below */
    r.user.roles = NULL;
    stt_arena_free(&ar);
    return r;
}

static void auth_flood_bounded(void **state)
{
    afx_t *f = *state;
    set_admin(f->ini, "cheap", "cheappw", 1);
    set(f, "chttpd_auth_ratelimit", "max_failures", "1");
    set(f, "chttpd_auth_ratelimit", "window", "600");
    const char *bad = basic(f, "cheap:wrong"), *good = basic(f, "cheap:cheappw");
    enum { WARM = 1000, FLOOD = 100000 };
    for (unsigned i = 0; i < WARM; i++) {
        stt_auth_result_t r = flood_one(f, bad, i);
        if (r.status != 401) fail_msg("warm-up %u: %d", i, r.status);
    }
    size_t base = heap_in_use();
    for (unsigned i = WARM; i < WARM + FLOOD; i++) {
        stt_auth_result_t r = flood_one(f, bad, i);
        if (r.status != 401) fail_msg("flood %u: want 401, got %d %s", i, r.status, r.reason);
    }
    size_t after = heap_in_use();
    if (after > base + 64 * 1024) fail_msg("heap grew by %zu bytes over %d addresses", after - base, (int)FLOOD);
    /* the most recent addresses are still limited, a new one is not */
    for (unsigned i = WARM + FLOOD - 100; i < WARM + FLOOD; i++) {
        stt_auth_result_t r = flood_one(f, good, i);
        if (r.status != 429) fail_msg("recent address %u: want 429, got %d", i, r.status);
    }
    stt_auth_result_t r = flood_one(f, good, WARM + FLOOD + 1);
    assert_int_equal(r.status, 0);
}

/* ====================================================================================
 * Registry */

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(security_validate_cases),
        cmocka_unit_test(security_access_cases),
        cmocka_unit_test(user_ctx_cases),
        cmocka_unit_test(users_before_write_cases),
        cmocka_unit_test(users_password_hashed),
        cmocka_unit_test(users_after_read_cases),
        cmocka_unit_test(users_public_body_cases),
        cmocka_unit_test(peruser_dbname_cases),
        cmocka_unit_test_setup_teardown(auth_basic_cases, auth_setup, auth_teardown),
        cmocka_unit_test_setup_teardown(auth_lockout, auth_setup, auth_teardown),
        cmocka_unit_test_setup_teardown(auth_ratelimit, auth_setup, auth_teardown),
        cmocka_unit_test_setup_teardown(auth_cookie, auth_setup, auth_teardown),
        cmocka_unit_test_setup_teardown(auth_cookie_header_cases, auth_setup, auth_teardown),
        cmocka_unit_test_setup_teardown(auth_handlers_proxy, auth_setup, auth_teardown),
        cmocka_unit_test_setup_teardown(auth_settings_cases, auth_setup, auth_teardown),
        cmocka_unit_test_setup_teardown(auth_deferred, auth_setup, auth_teardown),
        cmocka_unit_test_setup_teardown(auth_flood_bounded, auth_setup, auth_teardown),
    };
    if (argc > 1) {
        char filter[256];
        snprintf(filter, sizeof(filter), "*%s*", argv[1]);
        cmocka_set_test_filter(filter);
    }
    return cmocka_run_group_tests_name("security", tests, NULL, NULL);
}
