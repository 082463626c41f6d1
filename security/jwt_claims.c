/* The claims side of JWT verification, as CouchDB 3.4.3 has it: which checks
 * [jwt_auth] required_claims asks for (chttpd_auth get_configured_claims), what
 * jwtf makes of them (validate_header, validate_payload), settee's strict extras,
 * and where the roles come from (get_roles_claim). The token's structure, keys and
 * signature are jwt.c's.
 *
 * CouchDB's quirks kept on purpose (non-strict mode), because Erlang orders every
 * number before every other term:
 *   - only the checks listed are made: exp is required by default, nbf and iat
 *     are ignored unless listed, so a future nbf passes;
 *   - a non-numeric exp ("tomorrow") is "in the future", a non-numeric listed nbf
 *     is never "in the past";
 *   - a listed iat must be an integer, but is not compared with the clock;
 *   - a bare "iss" requires the iss claim to be JSON true.
 * strict mode adds: exp and nbf are checked whenever present, against the clock
 * with leeway, and exp, nbf and iat must be numbers (400 "Invalid X claim").
 *
 * Clock comparisons: exp passes while exp + leeway > now (CouchDB: exp > now, so
 * an exp equal to now has expired); a listed nbf passes while nbf < now + leeway
 * (CouchDB: nbf < now); strict refuses an nbf only when nbf > now + leeway
 * (RFC 7519: a token is good from its nbf second on). */
#include "security/jwt_int.h"
#include <stdlib.h>

/* ------------------------------------------------------------------ required_claims */

static bool is_lower(char c)
{
    return c >= 'a' && c <= 'z';
}

/* chttpd_auth's regex, run globally:
 *     ([a-z]+) | {([a-z]+) *, *"([^"]+)"}
 * (the "\s" in its Erlang source is a space). Characters that start neither form
 * are skipped, so "exp, {iss, \"x\"}" gives exp and {iss, "x"}. */
static size_t scan_claims(const char *s, stt__jwt_check_t *checks)
{
    size_t n = 0;
    for (size_t i = 0; s[i];) {
        if (is_lower(s[i])) {
            size_t j = i;
            while (is_lower(s[j]))
                j++;
            if (checks) checks[n] = (stt__jwt_check_t){s + i, j - i, NULL, 0};
            n++;
            i = j;
            continue;
        }
        if (s[i] == '{') {
            size_t k = i + 1, name = k;
            while (is_lower(s[k]))
                k++;
            size_t namelen = k - name;
            while (s[k] == ' ')
                k++;
            bool ok = namelen > 0 && s[k] == ',';
            if (ok) {
                k++;
                while (s[k] == ' ')
                    k++;
                ok = s[k] == '"';
            }
            size_t value = ++k;
            while (ok && s[k] && s[k] != '"')
                k++;
            ok = ok && k > value && s[k] == '"' && s[k + 1] == '}';
            if (ok) {
                if (checks) checks[n] = (stt__jwt_check_t){s + name, namelen, s + value, k - value};
                n++;
                i = k + 2;
                continue;
            }
        }
        i++;
    }
    return n;
}

static bool check_named(const stt__jwt_check_t *c, const char *name)
{
    return c->namelen == strlen(name) && memcmp(c->name, name, c->namelen) == 0;
}

static bool same_check(const stt__jwt_check_t *a, const stt__jwt_check_t *b)
{
    if (a->namelen != b->namelen || memcmp(a->name, b->name, a->namelen) != 0) return false;
    if (!a->value || !b->value) return a->value == b->value;
    return a->valuelen == b->valuelen && memcmp(a->value, b->value, a->valuelen) == 0;
}

int stt__jwt_checks_parse(stt_arena_t *arena, const char *required_claims, stt__jwt_check_t **checks, size_t *nchecks)
{
    /* crypto.h: NULL or "" stands for the unset key, whose default is "exp" */
    const char *text = required_claims && required_claims[0] ? required_claims : "exp";
    size_t n = scan_claims(text, NULL);
    if (n == 0) return -1;
    stt__jwt_check_t *c = stt_arena_alloc(arena, (n + 1) * sizeof(*c));
    c[0] = (stt__jwt_check_t){"alg", 3, NULL, 0};
    scan_claims(text, c + 1);
    *checks = c;
    *nchecks = n + 1;
    /* jwtf:validate_checks */
    static const char *const known[] = {"alg", "exp", "iat", "iss", "kid", "nbf", "sig", "typ"};
    for (size_t i = 0; i < n + 1; i++) {
        bool ok = false;
        for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
            ok |= check_named(&c[i], known[k]);
        if (!ok) return -2;
        for (size_t j = 0; j < i; j++)
            if (same_check(&c[i], &c[j])) return -2;
    }
    return 0;
}

const stt__jwt_check_t *stt__jwt_check_find(const stt__jwt_check_t *checks, size_t nchecks, const char *name)
{
    for (size_t i = 0; i < nchecks; i++)
        if (check_named(&checks[i], name)) return &checks[i];
    return NULL;
}

/* ------------------------------------------------------------------ header */

static bool str_is(const stt_json_t *v, const char *s)
{
    return stt_json_is_str(v) && v->len == strlen(s) && memcmp(v->u.s, s, v->len) == 0;
}

int stt__jwt_check_header(const stt_json_t *header, const stt__jwt_check_t *checks, size_t nchecks,
                          stt_jwt_result_t *out)
{
    /* validate_typ. CouchDB crashes (500, a case_clause) on a typ other than "JWT"
     * when typ is not listed; settee lets it pass. */
    const stt__jwt_check_t *typ = stt__jwt_check_find(checks, nchecks, "typ");
    const stt_json_t *t = stt_json_get(header, "typ");
    if (typ && !typ->value) {
        if (!t) return stt__jwt_fail(out, 400, "Missing typ header parameter");
        if (!str_is(t, "JWT")) return stt__jwt_fail(out, 400, "Invalid typ header parameter");
    } else if (typ && !str_is(t, "JWT")) {
        return stt__jwt_fail(out, 500, "JWT is not configured correctly");
    }
    /* validate_alg (always listed) */
    const stt_json_t *alg = stt_json_get(header, "alg");
    if (!alg) return stt__jwt_fail(out, 400, "Missing alg header parameter");
    static const char *const algs[] = {"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "HS256", "HS384", "HS512"};
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
        if (str_is(alg, algs[i])) return 0;
    return stt__jwt_fail(out, 400, "Invalid alg header parameter");
}

/* ------------------------------------------------------------------ payload */

/* A time claim's value when it is a JSON number. long double holds any int64
 * exactly, so integer times compare exactly. */
static bool time_of(const stt_json_t *v, long double *t)
{
    if (!v || v->type != STT_JSON_NUMBER) return false;
    *t = strtold(v->u.s, NULL);
    return true;
}

static bool is_integer(const stt_json_t *v)
{
    return v && v->type == STT_JSON_NUMBER && !memchr(v->u.s, '.', v->len) && !memchr(v->u.s, 'e', v->len) &&
           !memchr(v->u.s, 'E', v->len);
}

/* A listed check in its {name, "value"} form where jwtf expects a bare name:
 * every token then fails with a case_clause in CouchDB. */
static bool misconfigured(const stt__jwt_check_t *c)
{
    return c && c->value;
}

int stt__jwt_check_payload(const stt_json_t *payload, const stt__jwt_check_t *checks, size_t nchecks,
                           const stt_jwt_opts_t *opts, stt_jwt_result_t *out)
{
    long double now = (long double)opts->now, leeway = (long double)opts->leeway, t;

    /* iss: {iss, "x"} must match exactly; a bare iss matches only JSON true */
    const stt__jwt_check_t *iss = stt__jwt_check_find(checks, nchecks, "iss");
    if (iss) {
        const stt_json_t *v = stt_json_get(payload, "iss");
        if (!v) return stt__jwt_fail(out, 400, "Missing iss claim");
        bool ok = iss->value
                      ? stt_json_is_str(v) && v->len == iss->valuelen && memcmp(v->u.s, iss->value, iss->valuelen) == 0
                      : stt_json_is_true(v);
        if (!ok) return stt__jwt_fail(out, 400, "Invalid iss claim");
    }

    /* iat: when listed, an integer; never compared with the clock */
    const stt__jwt_check_t *iatc = stt__jwt_check_find(checks, nchecks, "iat");
    const stt_json_t *iat = stt_json_get(payload, "iat");
    if (misconfigured(iatc)) return stt__jwt_fail(out, 500, "JWT is not configured correctly");
    if (iatc && !iat) return stt__jwt_fail(out, 400, "Missing iat claim");
    if ((iatc && !is_integer(iat)) || (opts->strict && iat && !time_of(iat, &t)))
        return stt__jwt_fail(out, 400, "Invalid iat claim");

    /* nbf */
    const stt__jwt_check_t *nbfc = stt__jwt_check_find(checks, nchecks, "nbf");
    const stt_json_t *nbf = stt_json_get(payload, "nbf");
    if (misconfigured(nbfc)) return stt__jwt_fail(out, 500, "JWT is not configured correctly");
    if (nbfc && !nbf) return stt__jwt_fail(out, 400, "Missing nbf claim");
    if (nbf && opts->strict) {
        if (!time_of(nbf, &t)) return stt__jwt_fail(out, 400, "Invalid nbf claim");
        if (t > now + leeway) return stt__jwt_fail(out, 401, "nbf not in past");
    } else if (nbfc) {
        if (!time_of(nbf, &t) || !(t < now + leeway)) return stt__jwt_fail(out, 401, "nbf not in past");
    }

    /* exp */
    const stt__jwt_check_t *expc = stt__jwt_check_find(checks, nchecks, "exp");
    const stt_json_t *exp = stt_json_get(payload, "exp");
    if (misconfigured(expc)) return stt__jwt_fail(out, 500, "JWT is not configured correctly");
    if (expc && !exp) return stt__jwt_fail(out, 400, "Missing exp claim");
    if (exp && (expc || opts->strict)) {
        if (!time_of(exp, &t)) {
            if (opts->strict) return stt__jwt_fail(out, 400, "Invalid exp claim");
        } else if (!(t + leeway > now)) {
            return stt__jwt_fail(out, 401, "exp not in future");
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ roles */

/* roles_claim_path "a.b\.c" -> keys "a", "b.c": split on dots not preceded by a
 * backslash, then "\." becomes "." in each key. */
static size_t path_keys(stt_arena_t *arena, const char *path, char **keys, size_t *keylens)
{
    size_t n = 0, len = strlen(path), start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && !(path[i] == '.' && (i == 0 || path[i - 1] != '\\'))) continue;
        if (keys) {
            char *k = stt_arena_alloc(arena, i - start + 1);
            size_t kl = 0;
            for (size_t j = start; j < i; j++) {
                if (path[j] == '\\' && j + 1 < i && path[j + 1] == '.') continue; /* "\." -> "." */
                k[kl++] = path[j];
            }
            k[kl] = '\0';
            keys[n] = k;
            keylens[n] = kl;
        }
        n++;
        start = i + 1;
    }
    return n;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* re:split(Roles, "\\s*,\\s*", [trim]): each comma with the whitespace around it
 * separates; trailing empty parts are dropped. */
static void split_roles(stt_arena_t *arena, const char *s, size_t len, stt_jwt_result_t *out)
{
    size_t max = 1;
    for (size_t i = 0; i < len; i++)
        max += s[i] == ',';
    const char **roles = stt_arena_alloc(arena, max * sizeof(*roles));
    size_t n = 0, keep = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != ',') continue;
        size_t end = i, next = i + 1;
        if (i < len) {
            while (end > start && is_space(s[end - 1]))
                end--;
            while (next < len && is_space(s[next]))
                next++;
        }
        roles[n++] = stt_arena_strndup(arena, s + start, end - start);
        if (end > start) keep = n;
        start = next;
        i = next - 1;
    }
    out->roles = roles;
    out->nroles = keep;
}

int stt__jwt_roles(stt_arena_t *arena, const stt_json_t *payload, const stt_jwt_opts_t *opts, stt_jwt_result_t *out)
{
    const stt_json_t *v;
    if (opts->roles_claim_path && opts->roles_claim_path[0]) {
        /* couch_util:get_nested_json_value: a thrown not_found becomes a 404 */
        size_t n = path_keys(arena, opts->roles_claim_path, NULL, NULL);
        char **keys = stt_arena_alloc(arena, n * sizeof(*keys));
        size_t *keylens = stt_arena_alloc(arena, n * sizeof(*keylens));
        path_keys(arena, opts->roles_claim_path, keys, keylens);
        v = payload;
        for (size_t i = 0; i < n; i++) {
            if (v->type != STT_JSON_OBJECT) return stt__jwt_fail(out, 404, "json_mismatch");
            const stt_json_t *next = stt_json_getn(v, keys[i], keylens[i]);
            if (!next) {
                size_t rl = strlen("missing json key: ") + keylens[i];
                char *reason = stt_arena_alloc(arena, rl + 1);
                memcpy(reason, "missing json key: ", 18);
                memcpy(reason + 18, keys[i], keylens[i] + 1);
                return stt__jwt_fail(out, 404, reason);
            }
            v = next;
        }
    } else {
        const char *name =
            opts->roles_claim_name && opts->roles_claim_name[0] ? opts->roles_claim_name : "_couchdb.roles";
        v = stt_json_get(payload, name);
        if (!v) {
            out->roles = NULL;
            out->nroles = 0;
            return 0;
        }
    }
    if (v->type == STT_JSON_STRING) {
        split_roles(arena, v->u.s, v->len, out);
        return 0;
    }
    /* re:split on a number, an object, null or a boolean raises badarg: a 500 */
    if (v->type != STT_JSON_ARRAY) return stt__jwt_fail(out, 500, "badarg");
    const char **roles = stt_arena_alloc(arena, (v->len ? v->len : 1) * sizeof(*roles));
    for (uint32_t i = 0; i < v->len; i++) {
        if (v->u.items[i].type != STT_JSON_STRING) return stt__jwt_fail(out, 400, "Malformed token");
        roles[i] = v->u.items[i].u.s;
    }
    out->roles = roles;
    out->nroles = v->len;
    return 0;
}
