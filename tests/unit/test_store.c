/* Unit tests for the store (the store/ sources) through store.h, each test on a fresh store in
 * its own temp dir (mkdtemp, removed at the end).
 *
 * - databases: name rules, create/delete/list, handles across a delete, the sweep;
 * - one numbered table of edits (interactive and replicated) with the 409 rules and
 *   the counters (doc_count, doc_del_count, update_seq) after every row;
 * - the by-seq index, id-ordered scans, _local docs, attachments and their reference
 *   counts, purge, revs_limit, persistence across a reopen;
 * - the checker itself: every test ends with stt_store_verify on the store it built,
 *   and verify_detects corrupts a store on purpose and expects each fault to be found.
 *   Only that test reaches the internals (store_int.h, leveldb/c.h), as h2o's unit
 *   tests include what they test; the others use the public header.
 *
 * Run from the repo root. An argument runs only the tests whose name contains it. */
#include "store/store.h"
#include "store/store_int.h"
#include "src/common/codec.h"
#include "src/common/err.h"
#include <leveldb/c.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ====================================================================================
 * Fixture: a store in a temp dir with one database "db" */

typedef struct {
    char dir[64];
    stt_store_t *s;
    stt_db_t *db;
} fx_t;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void rm_rf(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static stt_store_t *store_open(const char *dir)
{
    stt_store_opts_t o;
    stt_store_opts_default(&o);
    o.paranoid = true;
    stt_store_t *s = NULL;
    char err[512];
    if (stt_store_open(dir, &o, &s, err, sizeof(err)) != 0) fail_msg("stt_store_open(%s): %s", dir, err);
    return s;
}

static stt_db_t *db_open(stt_store_t *s, const char *name)
{
    stt_db_t *db = NULL;
    int rc = stt_db_open(s, name, strlen(name), &db);
    if (rc) fail_msg("stt_db_open(%s): %d", name, rc);
    return db;
}

static void db_create(stt_store_t *s, const char *name)
{
    int rc = stt_db_create(s, name, strlen(name));
    if (rc) fail_msg("stt_db_create(%s): %d", name, rc);
}

/* Labels name the revs a test got back from interactive edits ("@a1"). */
typedef struct {
    char label[16];
    char rev[STT_REV_STR_MAX];
} label_t;
static label_t labels[64];
static int nlabels;

static void label_set(const char *l, const char *rev)
{
    for (int i = 0; i < nlabels; i++)
        if (strcmp(labels[i].label, l) == 0) {
            snprintf(labels[i].rev, sizeof(labels[i].rev), "%s", rev);
            return;
        }
    assert_true(nlabels < 64);
    snprintf(labels[nlabels].label, sizeof(labels[nlabels].label), "%s", l);
    snprintf(labels[nlabels].rev, sizeof(labels[nlabels].rev), "%s", rev);
    nlabels++;
}

/* "@label" -> its rev; anything else as it is. */
static const char *resolve(const char *r)
{
    if (!r || r[0] != '@') return r;
    for (int i = 0; i < nlabels; i++)
        if (strcmp(labels[i].label, r + 1) == 0) return labels[i].rev;
    fail_msg("no label %s", r);
    return NULL;
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/settee-store-XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    f->s = store_open(f->dir);
    db_create(f->s, "db");
    f->db = db_open(f->s, "db");
    nlabels = 0;
    *state = f;
    return 0;
}

/* Every test ends by checking the store it built. */
static int teardown(void **state)
{
    fx_t *f = *state;
    char err[1024] = "";
    int rc = stt_store_verify(f->s, NULL, err, sizeof(err));
    stt_db_release(f->db);
    stt_store_close(f->s);
    rm_rf(f->dir);
    free(f);
    if (rc) print_error("stt_store_verify after the test: %d %s\n", rc, err);
    return rc ? -1 : 0;
}

static void reopen(fx_t *f)
{
    stt_db_release(f->db);
    stt_store_close(f->s);
    f->s = store_open(f->dir);
    f->db = db_open(f->s, "db");
}

static void assert_verified(stt_store_t *s)
{
    char err[1024] = "";
    int rc = stt_store_verify(s, NULL, err, sizeof(err));
    if (rc) fail_msg("stt_store_verify: %d %s", rc, err);
}

/* ====================================================================================
 * Helpers: writes and reads in a few words */

/* An attachment stored as it is (a type CouchDB does not compress), so that its
 * digest is the md5 of data; att_typed gives the type. */
static stt_att_in_t att_typed(const char *name, const char *type, const char *data)
{
    stt_att_in_t a = {.meta = {.name = name, .namelen = strlen(name), .content_type = type, .ctlen = strlen(type)},
                      .data = data,
                      .datalen = strlen(data)};
    return a;
}

static stt_att_in_t att(const char *name, const char *data)
{
    return att_typed(name, "application/octet-stream", data);
}

static stt_att_in_t stub(const char *name)
{
    stt_att_in_t a = {.meta = {.name = name, .namelen = strlen(name)}, .stub = true};
    return a;
}

/* One interactive edit; returns the doc's result (the call itself must commit or
 * find nothing to commit). The new rev goes to rev_out. */
static int put_atts(stt_db_t *db, const char *id, const char *prev, const char *body, bool deleted,
                    const stt_att_in_t *atts, size_t natts, char *rev_out)
{
    body = body ? body : "{}";
    stt_doc_write_t w = {.id = id,
                         .idlen = strlen(id),
                         .body = body,
                         .bodylen = strlen(body),
                         .deleted = deleted,
                         .atts = atts,
                         .natts = natts};
    prev = resolve(prev);
    if (prev) {
        w.has_prev = true;
        assert_int_equal(stt_rev_parse(prev, strlen(prev), &w.prev), 0);
    }
    stt_doc_result_t res;
    assert_int_equal(stt_doc_write(db, &w, 1, true, &res), 0);
    if (rev_out && res.err == 0) snprintf(rev_out, STT_REV_STR_MAX, "%s", res.rev);
    return res.err;
}

static int put(stt_db_t *db, const char *id, const char *prev, const char *body, bool deleted, char *rev_out)
{
    return put_atts(db, id, prev, body, deleted, NULL, 0, rev_out);
}

/* A replicated write (new_edits=false) of the path "[!]N-leaf,parent,...". */
static int put_path_atts(stt_db_t *db, const char *id, const char *path, const char *body, const stt_att_in_t *atts,
                         size_t natts)
{
    bool deleted = *path == '!';
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", path + deleted);
    char *dash = strchr(buf, '-');
    assert_non_null(dash);
    uint64_t gen = strtoull(buf, NULL, 10);
    stt_rev_t revs[64];
    size_t n = 0;
    for (char *tok = strtok(dash + 1, ","); tok; tok = strtok(NULL, ",")) {
        assert_true(n < 64);
        revs[n] = (stt_rev_t){gen - n, tok, strlen(tok)};
        n++;
    }
    body = body ? body : "{}";
    stt_doc_write_t w = {.id = id,
                         .idlen = strlen(id),
                         .body = body,
                         .bodylen = strlen(body),
                         .deleted = deleted,
                         .gen = gen,
                         .path = revs,
                         .npath = n,
                         .atts = atts,
                         .natts = natts};
    stt_doc_result_t res;
    assert_int_equal(stt_doc_write(db, &w, 1, false, &res), 0);
    return res.err;
}

static int put_path(stt_db_t *db, const char *id, const char *path, const char *body)
{
    return put_path_atts(db, id, path, body, NULL, 0);
}

static stt_db_info_t info(stt_db_t *db)
{
    stt_db_info_t i;
    stt_db_info(db, &i);
    return i;
}

/* Leaves of a doc in winner order, "rev rev*" ('*': deleted); "-" when the doc is
 * not found. */
static const char *leaves_of(stt_db_t *db, const char *id, stt_buf_t *out)
{
    stt_buf_reset(out);
    stt_reader_t *r;
    stt_reader_open(db, &r);
    stt_doc_t d;
    if (stt_doc_get(r, id, strlen(id), &d) != 0) {
        stt_reader_close(r);
        stt_buf_appends(out, "-");
        return out->base;
    }
    int leaves[256];
    assert_true(d.tree.n <= 256);
    size_t n = stt_revtree_leaves(&d.tree, leaves);
    stt_buf_appends(out, "");
    for (size_t i = 0; i < n; i++) {
        if (i) stt_buf_appendc(out, ' ');
        stt_revtree_format(&d.tree, leaves[i], out);
        if (d.tree.nodes[leaves[i]].flags & STT_REV_DELETED) stt_buf_appendc(out, '*');
    }
    stt_doc_free(&d);
    stt_reader_close(r);
    return out->base;
}

/* The stored body of the doc's winner (or "-"). */
static const char *winner_body(stt_db_t *db, const char *id, stt_buf_t *out)
{
    stt_buf_reset(out);
    stt_buf_appends(out, "-");
    stt_reader_t *r;
    stt_reader_open(db, &r);
    stt_doc_t d;
    if (stt_doc_get(r, id, strlen(id), &d) == 0) {
        stt_rev_body_t b;
        if (stt_doc_body(&d, d.winner, &b) == 0) {
            stt_buf_reset(out);
            stt_buf_append(out, b.json, b.jsonlen);
            stt_rev_body_free(&b);
        }
        stt_doc_free(&d);
    }
    stt_reader_close(r);
    return out->base;
}

static int summary_to_buf(void *ctx, const stt_doc_summary_t *s)
{
    stt_buf_t *b = ctx;
    if (b->len) stt_buf_appendc(b, ' ');
    stt_buf_append(b, s->id, s->idlen);
    stt_buf_appendf(b, "@%llu", (unsigned long long)s->seq);
    if (s->deleted) stt_buf_appendc(b, '*');
    return 0;
}

/* Summaries as "id:rev,rev" with the rev text cut after "N-" for interactive revs
 * (32 hex digits), '*' after a deleted leaf. */
static int leaves_to_buf(void *ctx, const stt_doc_summary_t *s)
{
    stt_buf_t *b = ctx;
    if (b->len) stt_buf_appendc(b, ' ');
    stt_buf_append(b, s->id, s->idlen);
    stt_buf_appendc(b, ':');
    for (size_t i = 0; i < s->nleaves; i++) {
        if (i) stt_buf_appendc(b, ',');
        const char *dash = memchr(s->leaf_rev[i], '-', s->leaf_revlen[i]);
        size_t len = s->leaf_revlen[i] - (size_t)(dash + 1 - s->leaf_rev[i]) == 32 ? (size_t)(dash + 1 - s->leaf_rev[i])
                                                                                   : s->leaf_revlen[i];
        stt_buf_append(b, s->leaf_rev[i], len);
        if (s->leaf_deleted[i]) stt_buf_appendc(b, '*');
    }
    return 0;
}

/* The by-seq index as "id@seq id@seq*" ('*': deleted). */
static const char *changes_of(stt_db_t *db, uint64_t since, bool descending, stt_buf_t *out)
{
    stt_buf_reset(out);
    stt_buf_appends(out, "");
    stt_reader_t *r;
    stt_reader_open(db, &r);
    assert_int_equal(stt_changes_scan(r, since, descending, summary_to_buf, out), 0);
    stt_reader_close(r);
    return out->base;
}

static int idonly_to_buf(void *ctx, const stt_doc_summary_t *s)
{
    stt_buf_t *b = ctx;
    if (b->len) stt_buf_appendc(b, ' ');
    stt_buf_append(b, s->id, s->idlen);
    return 0;
}

static const char *docs_of(stt_db_t *db, const stt_range_t *range, stt_buf_t *out)
{
    stt_buf_reset(out);
    stt_buf_appends(out, "");
    stt_reader_t *r;
    stt_reader_open(db, &r);
    assert_int_equal(stt_docs_scan(r, range, idonly_to_buf, out), 0);
    stt_reader_close(r);
    return out->base;
}

typedef struct {
    unsigned char digest[STT_DIGEST_LEN];
    uint64_t refs; /* of that digest, 0 when absent */
    size_t n;      /* digests stored */
} attcount_t;

static int count_att(void *ctx, const stt_att_stored_t *a)
{
    attcount_t *c = ctx;
    c->n++;
    if (memcmp(a->digest, c->digest, STT_DIGEST_LEN) == 0) c->refs = a->refs;
    return 0;
}

/* Reference count kept for the md5 of data; *nstored: how many digests the db keeps. */
static uint64_t att_refs(stt_db_t *db, const char *data, size_t *nstored)
{
    attcount_t c = {0};
    stt_md5(data, strlen(data), c.digest);
    stt_reader_t *r;
    stt_reader_open(db, &r);
    assert_int_equal(stt_att_scan(r, count_att, &c), 0);
    stt_reader_close(r);
    if (nstored) *nstored = c.n;
    return c.refs;
}

/* stt_att_read of the md5 of data: 0 with the same bytes, or the error. */
static int att_read(stt_db_t *db, const char *data)
{
    unsigned char digest[STT_DIGEST_LEN];
    stt_md5(data, strlen(data), digest);
    stt_reader_t *r;
    stt_reader_open(db, &r);
    stt_buf_t b = STT_BUF_INIT;
    int rc = stt_att_read(r, digest, &b);
    if (rc == 0) assert_memory_equal(b.base, data, strlen(data));
    stt_buf_free(&b);
    stt_reader_close(r);
    return rc;
}

/* ====================================================================================
 * Databases */

static int list_to_buf(void *ctx, const char *name, size_t len)
{
    stt_buf_t *b = ctx;
    if (b->len) stt_buf_appendc(b, ' ');
    stt_buf_append(b, name, len);
    return 0;
}

static const char *dbs_of(stt_store_t *s, stt_buf_t *out)
{
    stt_buf_reset(out);
    stt_buf_appends(out, "");
    stt_db_list(s, list_to_buf, out);
    return out->base;
}

static void test_db_names(void **state)
{
    fx_t *f = *state;
    char long238[240], long239[241];
    memset(long238, 'a', 238);
    long238[238] = '\0';
    memset(long239, 'b', 239);
    long239[239] = '\0';
    static const struct {
        const char *name;
        size_t len; /* 0: strlen */
        bool valid; /* stt_db_name_valid */
        int create; /* stt_db_create */
    } cases[] = {
        /* 1 */ {"a", 0, true, 0},
        /* 2 */ {"abc123", 0, true, 0},
        /* 3 */ {"a_$()+-/z", 0, true, 0},
        /* 4 */ {"x/y/z", 0, true, 0},
        /* 5 */ {"A", 0, false, STT_E_ILLEGAL_DB_NAME},
        /* 6 */ {"aBc", 0, false, STT_E_ILLEGAL_DB_NAME},
        /* 7 */ {"1abc", 0, false, STT_E_ILLEGAL_DB_NAME},
        /* 8 */ {"", 0, false, STT_E_ILLEGAL_DB_NAME},
        /* 9 */ {"_foo", 0, false, STT_E_ILLEGAL_DB_NAME},
        /* 10 */ {"_users", 0, false, 0},
        /* 11 */ {"_replicator", 0, false, 0},
        /* 12 */ {"a b", 0, false, STT_E_ILLEGAL_DB_NAME},
        /* 13 */ {"a.b", 0, false, STT_E_ILLEGAL_DB_NAME},
        /* 14 */ {"a\xc3\xa9", 0, false, STT_E_ILLEGAL_DB_NAME},
        /* 15 */ {"ab\0c", 4, false, STT_E_ILLEGAL_DB_NAME},
        /* 16 */ {"a*", 0, false, STT_E_ILLEGAL_DB_NAME},
        /* 17 */ {"a\\b", 0, false, STT_E_ILLEGAL_DB_NAME},
        /* 18 */ {NULL, 238, true, 0},                      /* long238 */
        /* 19 */ {NULL, 239, false, STT_E_ILLEGAL_DB_NAME}, /* long239 */
        /* 20 */ {"db", 0, true, STT_E_FILE_EXISTS},
        /* 21 */ {"_users", 0, false, STT_E_FILE_EXISTS},
        /* 22 */ {"_users_x", 0, false, STT_E_ILLEGAL_DB_NAME},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *name = cases[i].name ? cases[i].name : cases[i].len == 238 ? long238 : long239;
        size_t len = cases[i].len ? cases[i].len : strlen(name);
        bool valid = stt_db_name_valid(name, len);
        int rc = stt_db_create(f->s, name, len);
        if (valid != cases[i].valid || rc != cases[i].create)
            fail_msg("case %zu (%.*s): valid %d (want %d), create %d (want %d)", i + 1, (int)(len > 40 ? 40 : len),
                     name, valid, cases[i].valid, rc, cases[i].create);
    }
    stt_db_t *db = db_open(f->s, "_users");
    assert_int_equal(put(db, "u", NULL, "{}", false, NULL), 0);
    assert_int_equal(info(db).doc_count, 1);
    stt_db_release(db);
    db = db_open(f->s, long238);
    size_t len;
    assert_string_equal(stt_db_name(db, &len), long238);
    assert_int_equal(len, 238);
    stt_db_release(db);
}

static void test_db_lifecycle(void **state)
{
    fx_t *f = *state;
    stt_buf_t b = STT_BUF_INIT;
    db_create(f->s, "zeta");
    db_create(f->s, "alpha");
    db_create(f->s, "m/n");
    db_create(f->s, "_replicator");
    assert_string_equal(dbs_of(f->s, &b), "_replicator alpha db m/n zeta");
    stt_db_t *db, *held = db_open(f->s, "zeta");
    assert_int_equal(stt_db_open(f->s, "nope", 4, &db), STT_E_DB_NOT_FOUND);
    assert_int_equal(stt_db_delete(f->s, "nope", 4), STT_E_DB_NOT_FOUND);
    assert_int_equal(put(held, "doc", NULL, "{\"x\":1}", false, NULL), 0);
    assert_int_equal(stt_db_delete(f->s, "zeta", 4), 0);
    assert_string_equal(dbs_of(f->s, &b), "_replicator alpha db m/n");
    assert_int_equal(stt_db_open(f->s, "zeta", 4, &db), STT_E_DB_NOT_FOUND);
    assert_int_equal(stt_db_delete(f->s, "zeta", 4), STT_E_DB_NOT_FOUND);
    /* a handle held across the delete stays valid; writes fail */
    stt_doc_write_t w = {.id = "d", .idlen = 1, .body = "{}", .bodylen = 2};
    stt_doc_result_t res;
    assert_int_equal(stt_doc_write(held, &w, 1, true, &res), STT_E_DB_NOT_FOUND);
    uint64_t lrev;
    assert_int_equal(stt_local_put(held, "l", 1, 0, "{}", 2, false, &lrev), STT_E_DB_NOT_FOUND);
    bool purged;
    stt_rev_t rv = {1, "x", 1};
    assert_int_equal(stt_doc_purge(held, "doc", 3, &rv, 1, &purged), STT_E_DB_NOT_FOUND);
    assert_int_equal(stt_db_set_revs_limit(held, 5), STT_E_DB_NOT_FOUND);
    assert_int_equal(stt_db_set_security(held, "{}", 2), STT_E_DB_NOT_FOUND);
    stt_db_release(held);
    /* recreated under the same name: empty */
    db_create(f->s, "zeta");
    db = db_open(f->s, "zeta");
    stt_db_info_t i = info(db);
    assert_int_equal(i.doc_count + i.doc_del_count + i.update_seq, 0);
    assert_string_equal(leaves_of(db, "doc", &b), "-");
    stt_db_release(db);
    /* security and revs_limit */
    assert_int_equal(stt_db_set_security(f->db, "{\"admins\":{}}", 13), 0);
    assert_int_equal(stt_db_set_revs_limit(f->db, 7), 0);
    reopen(f);
    stt_buf_reset(&b);
    stt_db_get_security(f->db, &b);
    assert_string_equal(b.base, "{\"admins\":{}}");
    assert_int_equal(info(f->db).revs_limit, 7);
    assert_string_equal(dbs_of(f->s, &b), "_replicator alpha db m/n zeta");
    /* server-wide values */
    assert_int_equal(stt_store_meta_get(f->s, "uuid", &b), STT_E_NOT_FOUND);
    assert_int_equal(stt_store_meta_put(f->s, "uuid", "abc", 3), 0);
    stt_buf_reset(&b);
    assert_int_equal(stt_store_meta_get(f->s, "uuid", &b), 0);
    assert_string_equal(b.base, "abc");
    stt_buf_free(&b);
}

static void fill(stt_db_t *db, const char *prefix, int n, int batch)
{
    stt_doc_write_t *w = calloc((size_t)batch, sizeof(*w));
    stt_doc_result_t *res = calloc((size_t)batch, sizeof(*res));
    char(*ids)[32] = calloc((size_t)batch, 32);
    stt_att_in_t a = att("f.txt", "fill attachment");
    for (int i = 0; i < n; i += batch) {
        int m = n - i < batch ? n - i : batch;
        for (int k = 0; k < m; k++) {
            snprintf(ids[k], 32, "%s%06d", prefix, i + k);
            w[k] = (stt_doc_write_t){.id = ids[k], .idlen = strlen(ids[k]), .body = "{\"v\":1}", .bodylen = 7};
            if ((i + k) % 7 == 0) {
                w[k].atts = &a;
                w[k].natts = 1;
            }
        }
        assert_int_equal(stt_doc_write(db, w, (size_t)m, true, res), 0);
        for (int k = 0; k < m; k++)
            assert_int_equal(res[k].err, 0);
    }
    free(w);
    free(res);
    free(ids);
}

static void test_db_delete_sweep(void **state)
{
    fx_t *f = *state;
    stt_buf_t b = STT_BUF_INIT;
    static const char data[] = "bytes of a swept attachment";
    for (int round = 0; round < 2; round++) {
        db_create(f->s, "gone");
        stt_db_t *db = db_open(f->s, "gone");
        fill(db, "d", 300, 100);
        stt_att_in_t a = att("x", data);
        assert_int_equal(put_atts(db, "withatt", NULL, "{}", false, &a, 1, NULL), 0);
        uint64_t lrev;
        assert_int_equal(stt_local_put(db, "cp", 2, 0, "{\"seq\":1}", 9, false, &lrev), 0);
        assert_int_equal(info(db).doc_count, 301);
        stt_db_release(db);
        assert_int_equal(stt_db_delete(f->s, "gone", 4), 0);
        stt_store_wait_sweeps(f->s);
        assert_string_equal(dbs_of(f->s, &b), "db");
        /* recreate: nothing of the old one shows */
        db_create(f->s, "gone");
        db = db_open(f->s, "gone");
        stt_db_info_t i = info(db);
        assert_int_equal(i.doc_count + i.doc_del_count + i.update_seq + i.purge_seq, 0);
        assert_string_equal(changes_of(db, 0, false, &b), "");
        stt_range_t all = {0};
        assert_string_equal(docs_of(db, &all, &b), "");
        assert_string_equal(leaves_of(db, "withatt", &b), "-");
        assert_int_equal(stt_local_get(db, "cp", 2, &lrev, NULL), STT_E_NOT_FOUND);
        assert_int_equal(att_read(db, data), STT_E_NOT_FOUND);
        stt_db_release(db);
        assert_verified(f->s);
        assert_int_equal(stt_db_delete(f->s, "gone", 4), 0);
        if (round == 0) continue;
        /* a delete whose sweep a close interrupts is finished at the next open */
        db_create(f->s, "big");
        db = db_open(f->s, "big");
        fill(db, "b", 3000, 1000);
        stt_db_release(db);
        assert_int_equal(stt_db_delete(f->s, "big", 3), 0);
        reopen(f);
        stt_store_wait_sweeps(f->s);
        assert_string_equal(dbs_of(f->s, &b), "db");
    }
    stt_buf_free(&b);
}

/* ====================================================================================
 * Edits and counters: one numbered table, rows applied in order to "db" */

typedef struct {
    char kind;                /* 'P' interactive edit, 'R' replicated path (new_edits=false) */
    const char *id;           /* doc id */
    const char *rev;          /* P: prev (NULL: none, "@label" or a literal rev); R: "[!]N-leaf,parent,..." */
    bool deleted;             /* P: the edit is a deletion */
    int err;                  /* expected result of the doc */
    const char *save;         /* P: label for the new rev */
    uint64_t gen;             /* P: expected generation of the new rev (0: unchecked) */
    uint64_t docs, dels, seq; /* doc_count, doc_del_count, update_seq after the row */
    const char *leaves;       /* the doc's leaves after the row (NULL: unchecked) */
} op_t;

#define CONFLICT STT_E_CONFLICT
static const op_t edit_table[] = {
    /* 1 */ {'P', "a", NULL, false, 0, "a1", 1, 1, 0, 1},
    /* 2 */ {'P', "b", NULL, false, 0, "b1", 1, 2, 0, 2},
    /* 3 */ {'P', "a", "@a1", false, 0, "a2", 2, 2, 0, 3},
    /* 4: stale rev (now internal) */ {'P', "a", "@a1", false, CONFLICT, NULL, 0, 2, 0, 3},
    /* 5: no rev on a live doc */ {'P', "a", NULL, false, CONFLICT, NULL, 0, 2, 0, 3},
    /* 6: no rev deletion on a live doc */ {'P', "a", NULL, true, CONFLICT, NULL, 0, 2, 0, 3},
    /* 7 */ {'P', "a", "@a2", true, 0, "a3", 3, 1, 1, 4},
    /* 8: prev = the deleted winner */ {'P', "a", "@a3", false, CONFLICT, NULL, 0, 1, 1, 4},
    /* 9: deleting the deleted winner again */ {'P', "a", "@a3", true, CONFLICT, NULL, 0, 1, 1, 4},
    /* 10: no-rev deletion of a deleted doc (CouchDB: 409) */ {'P', "a", NULL, true, CONFLICT, NULL, 0, 1, 1, 4},
    /* 11: recreate extends the deleted winner */ {'P', "a", NULL, false, 0, "a4", 4, 2, 0, 5},
    /* 12: create as deleted */ {'P', "c", NULL, true, 0, "c1", 1, 2, 1, 6},
    /* 13 */ {'P', "c", NULL, false, 0, "c2", 2, 3, 0, 7},
    /* 14: a rev for a doc that does not exist */ {'P', "x", "1-abc", false, CONFLICT, NULL, 0, 3, 0, 7},
    /* 15: unknown rev, higher gen */ {'P', "b", "9-zzz", false, CONFLICT, NULL, 0, 3, 0, 7},
    /* 16: unknown rev, same gen */ {'P', "b", "1-zzz", false, CONFLICT, NULL, 0, 3, 0, 7},
    /* 17 */ {'R', "d", "2-y,x", false, 0, NULL, 0, 4, 0, 8, "2-y"},
    /* 18: a conflicting branch */ {'R', "d", "2-z,x", false, 0, NULL, 0, 4, 0, 9, "2-z 2-y"},
    /* 19: the same leaf again: no-op */ {'R', "d", "2-z,x", false, 0, NULL, 0, 4, 0, 9, "2-z 2-y"},
    /* 20: the same leaf sent as deleted: as first written */
    {'R', "d", "!2-y,x", false, 0, NULL, 0, 4, 0, 9, "2-z 2-y"},
    /* 21: deleting the losing branch */ {'R', "d", "!3-w,y", false, 0, NULL, 0, 4, 0, 10, "2-z 3-w*"},
    /* 22: deleting the other: doc deleted */ {'R', "d", "!3-v,z", false, 0, NULL, 0, 3, 1, 11, "3-w* 3-v*"},
    /* 23: recreate extends the winner 3-w */ {'P', "d", NULL, false, 0, "d4", 4, 4, 0, 12},
    /* 24: a new doc, deleted */ {'R', "e", "!1-q", false, 0, NULL, 0, 4, 1, 13, "1-q*"},
    /* 25 */ {'R', "e", "!1-q", false, 0, NULL, 0, 4, 1, 13, "1-q*"},
    /* 26: live beats deleted */ {'R', "e", "1-r", false, 0, NULL, 0, 5, 0, 14, "1-r 1-q*"},
    /* 27 */ {'R', "f", "2-b,a", false, 0, NULL, 0, 6, 0, 15, "2-b"},
    /* 28 */ {'R', "f", "2-c,a", false, 0, NULL, 0, 6, 0, 16, "2-c 2-b"},
    /* 29: a losing live leaf can be extended */ {'P', "f", "2-b", false, 0, "f3", 3, 6, 0, 17},
    /* 30: an ancestor-only path to a rev once written: no-op */ {'R', "f", "2-b,a", false, 0, NULL, 0, 6, 0, 17, NULL},
    /* 31: an internal rev cannot */ {'P', "f", "1-a", false, CONFLICT, NULL, 0, 6, 0, 17},
    /* 32: deleting a losing leaf */ {'P', "f", "2-c", true, 0, "f3c", 3, 6, 0, 18},
    /* 33 */ {'R', "g", "2-e,a", false, 0, NULL, 0, 7, 0, 19, "2-e"},
    /* 34 */ {'R', "g", "!2-d,a", false, 0, NULL, 0, 7, 0, 20, "2-e 2-d*"},
    /* 35: reviving a deleted losing leaf */ {'P', "g", "2-d", false, 0, "g3", 3, 7, 0, 21},
    /* 36: a path below gen 1 */ {'R', "h", "1-a,b", false, STT_E_BAD_REV, NULL, 0, 7, 0, 21, "-"},
    /* 37: another branch from the root */ {'R', "d", "2-x2,x", false, 0, NULL, 0, 7, 0, 22},
    /* 38: disjoint fragment: a second root */ {'R', "i", "9-k,j", false, 0, NULL, 0, 8, 0, 23, "9-k"},
    /* 39 */ {'R', "i", "3-m,l", false, 0, NULL, 0, 8, 0, 24, "9-k 3-m"},
    /* 40: deleted flag of an existing leaf is kept */ {'R', "i", "!3-m,l", false, 0, NULL, 0, 8, 0, 24, "9-k 3-m"},
};

static void test_edit_table(void **state)
{
    fx_t *f = *state;
    stt_buf_t b = STT_BUF_INIT;
    char rev[STT_REV_STR_MAX];
    for (size_t i = 0; i < sizeof(edit_table) / sizeof(edit_table[0]); i++) {
        const op_t *op = &edit_table[i];
        char body[32];
        snprintf(body, sizeof(body), "{\"row\":%zu}", i + 1);
        int err = op->kind == 'P' ? put(f->db, op->id, op->rev, body, op->deleted, rev)
                                  : put_path(f->db, op->id, op->rev, body);
        if (err != op->err) fail_msg("row %zu: err %d, want %d", i + 1, err, op->err);
        if (op->kind == 'P' && !err) {
            if (op->gen && strtoull(rev, NULL, 10) != op->gen)
                fail_msg("row %zu: new rev %s, want gen %llu", i + 1, rev, (unsigned long long)op->gen);
            if (op->save) label_set(op->save, rev);
        }
        stt_db_info_t in = info(f->db);
        if (in.doc_count != op->docs || in.doc_del_count != op->dels || in.update_seq != op->seq)
            fail_msg("row %zu: doc_count %llu doc_del_count %llu update_seq %llu, want %llu %llu %llu", i + 1,
                     (unsigned long long)in.doc_count, (unsigned long long)in.doc_del_count,
                     (unsigned long long)in.update_seq, (unsigned long long)op->docs, (unsigned long long)op->dels,
                     (unsigned long long)op->seq);
        if (op->leaves && strcmp(leaves_of(f->db, op->id, &b), op->leaves) != 0)
            fail_msg("row %zu: leaves \"%s\", want \"%s\"", i + 1, b.base, op->leaves);
    }
    /* bodies: a replicated leaf keeps its first body; the interactive winners theirs */
    assert_string_equal(winner_body(f->db, "d", &b), "{\"row\":23}");
    assert_string_equal(winner_body(f->db, "e", &b), "{\"row\":26}");
    assert_string_equal(winner_body(f->db, "a", &b), "{\"row\":11}");
    /* the same state after a reopen */
    reopen(f);
    stt_db_info_t in = info(f->db);
    assert_int_equal(in.doc_count, 8);
    assert_int_equal(in.doc_del_count, 0);
    assert_int_equal(in.update_seq, 24);
    assert_string_equal(leaves_of(f->db, "i", &b), "9-k 3-m");
    stt_buf_free(&b);
}

/* Several docs in one call: results per doc, the same id twice applied in order,
 * one seq per changed doc, the commit hook once per call. */
static uint64_t hook_calls, hook_seq;
static void on_commit(void *ctx, stt_db_t *db, uint64_t seq)
{
    hook_calls++;
    hook_seq = seq;
}

static void test_batch(void **state)
{
    fx_t *f = *state;
    stt_buf_t b = STT_BUF_INIT;
    char r1[STT_REV_STR_MAX];
    assert_int_equal(put(f->db, "old", NULL, "{}", false, r1), 0);
    stt_store_set_commit_hook(f->s, on_commit, NULL);
    hook_calls = 0;
    stt_doc_write_t w[5] = {
        {.id = "n1", .idlen = 2, .body = "{\"a\":1}", .bodylen = 7},
        {.id = "n1", .idlen = 2, .body = "{\"a\":2}", .bodylen = 7}, /* no rev on what is now live */
        {.id = "old", .idlen = 3, .body = "{}", .bodylen = 2},       /* no rev: conflict */
        {.id = "n2", .idlen = 2, .body = "{}", .bodylen = 2, .deleted = true},
        {.id = "old", .idlen = 3, .body = "{\"b\":1}", .bodylen = 7, .has_prev = true},
    };
    assert_int_equal(stt_rev_parse(r1, strlen(r1), &w[4].prev), 0);
    stt_doc_result_t res[5];
    assert_int_equal(stt_doc_write(f->db, w, 5, true, res), 0);
    int want[5] = {0, CONFLICT, CONFLICT, 0, 0};
    for (int i = 0; i < 5; i++)
        if (res[i].err != want[i]) fail_msg("doc %d: err %d, want %d", i, res[i].err, want[i]);
    assert_int_equal(hook_calls, 1);
    assert_int_equal(hook_seq, 4);
    stt_db_info_t in = info(f->db);
    assert_int_equal(in.update_seq, 4);
    assert_int_equal(in.doc_count, 2);
    assert_int_equal(in.doc_del_count, 1);
    /* within a call seqs follow the doc ids, as CouchDB's updater takes them */
    assert_string_equal(changes_of(f->db, 0, false, &b), "n1@2 n2@3* old@4");
    /* an edit of the same doc twice in one call: the second builds on the first */
    stt_doc_write_t w2[2] = {
        {.id = "n1", .idlen = 2, .body = "{\"a\":3}", .bodylen = 7, .has_prev = true},
        {.id = "n1", .idlen = 2, .body = "{\"a\":4}", .bodylen = 7, .has_prev = true},
    };
    assert_int_equal(stt_rev_parse(res[0].rev, strlen(res[0].rev), &w2[0].prev), 0);
    stt_doc_result_t res2[2];
    /* the second names a rev that only exists once the first is applied: it cannot
     * be known in advance, so it conflicts; the first goes through */
    w2[1].prev = w2[0].prev;
    assert_int_equal(stt_doc_write(f->db, w2, 2, true, res2), 0);
    assert_int_equal(res2[0].err, 0);
    assert_int_equal(res2[1].err, CONFLICT);
    assert_int_equal(info(f->db).update_seq, 5);
    assert_string_equal(winner_body(f->db, "n1", &b), "{\"a\":3}");
    /* a call where nothing changes commits nothing and calls no hook */
    hook_calls = 0;
    assert_int_equal(stt_doc_write(f->db, w2, 1, true, res2), 0);
    assert_int_equal(res2[0].err, CONFLICT);
    assert_int_equal(hook_calls, 0);
    assert_int_equal(info(f->db).update_seq, 5);
    assert_int_equal(stt_doc_write(f->db, w2, 0, true, res2), 0);
    stt_store_set_commit_hook(f->s, NULL, NULL);
    stt_buf_free(&b);
}

static void test_revs_limit(void **state)
{
    fx_t *f = *state;
    stt_buf_t b = STT_BUF_INIT;
    assert_int_equal(stt_db_set_revs_limit(f->db, 3), 0);
    char rev[STT_REV_STR_MAX] = "";
    for (int i = 0; i < 10; i++) {
        char body[32];
        snprintf(body, sizeof(body), "{\"i\":%d}", i);
        assert_int_equal(put(f->db, "s", i ? rev : NULL, body, false, rev), 0);
    }
    stt_reader_t *r;
    stt_reader_open(f->db, &r);
    stt_doc_t d;
    assert_int_equal(stt_doc_get(r, "s", 1, &d), 0);
    assert_int_equal(d.tree.n, 3);
    assert_int_equal(d.tree.nodes[d.winner].gen, 10);
    assert_int_equal(d.seq, 10);
    stt_doc_free(&d);
    stt_reader_close(r);
    assert_string_equal(leaves_of(f->db, "s", &b), rev);
    stt_buf_free(&b);
}

/* ====================================================================================
 * The by-seq index and id scans */

static void test_changes(void **state)
{
    fx_t *f = *state;
    stt_buf_t b = STT_BUF_INIT;
    char ra[STT_REV_STR_MAX], rb[STT_REV_STR_MAX];
    /* a neighbour database after ours in the keyspace must never show */
    db_create(f->s, "next");
    stt_db_t *next = db_open(f->s, "next");
    fill(next, "n", 5, 5);
    assert_string_equal(changes_of(f->db, 0, false, &b), "");
    assert_string_equal(changes_of(f->db, 0, true, &b), "");
    assert_int_equal(put(f->db, "a", NULL, "{}", false, ra), 0);      /* 1 */
    assert_int_equal(put(f->db, "b", NULL, "{}", false, rb), 0);      /* 2 */
    assert_int_equal(put(f->db, "c", NULL, "{}", false, NULL), 0);    /* 3 */
    assert_int_equal(put(f->db, "a", ra, "{\"v\":2}", false, ra), 0); /* 4 */
    assert_int_equal(put(f->db, "b", rb, "{}", true, rb), 0);         /* 5 */
    assert_int_equal(put_path(f->db, "d", "1-x", "{}"), 0);           /* 6 */
    assert_int_equal(put_path(f->db, "d", "1-y", "{}"), 0);           /* 7 */
    static const struct {
        uint64_t since;
        bool descending;
        const char *want;
    } cases[] = {
        /* 1 */ {0, false, "c@3 a@4 b@5* d@7"},
        /* 2 */ {3, false, "a@4 b@5* d@7"},
        /* 3 */ {4, false, "b@5* d@7"},
        /* 4 */ {7, false, ""},
        /* 5 */ {100, false, ""},
        /* 6 */ {0, true, "d@7 b@5* a@4 c@3"},
        /* 7 */ {7, true, "b@5* a@4 c@3"},
        /* 8 */ {5, true, "a@4 c@3"},
        /* 9 */ {4, true, "c@3"},
        /* 10 */ {3, true, ""},
        /* 11 */ {1, true, ""},
        /* 12 */ {100, true, "d@7 b@5* a@4 c@3"},
        /* 13 */ {6, true, "b@5* a@4 c@3"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        changes_of(f->db, cases[i].since, cases[i].descending, &b);
        if (strcmp(b.base, cases[i].want) != 0) fail_msg("case %zu: \"%s\", want \"%s\"", i + 1, b.base, cases[i].want);
    }
    /* the neighbour sees only its own */
    assert_string_equal(changes_of(next, 0, true, &b), "n000004@5 n000003@4 n000002@3 n000001@2 n000000@1");
    /* summaries list the leaves in winner order with their deleted flags */
    stt_reader_t *r;
    stt_reader_open(f->db, &r);
    stt_buf_reset(&b);
    assert_int_equal(stt_changes_scan(r, 4, false, leaves_to_buf, &b), 0);
    stt_reader_close(r);
    assert_string_equal(b.base, "b:2-* d:1-y,1-x");
    /* a reader is a snapshot: later writes do not show in it */
    stt_reader_open(f->db, &r);
    assert_int_equal(put(f->db, "e", NULL, "{}", false, NULL), 0);
    stt_buf_reset(&b);
    assert_int_equal(stt_changes_scan(r, 6, false, summary_to_buf, &b), 0);
    assert_string_equal(b.base ? b.base : "", "d@7");
    stt_reader_close(r);
    assert_string_equal(changes_of(f->db, 6, false, &b), "d@7 e@8");
    stt_db_release(next);
    stt_buf_free(&b);
}

static int stop_after_two(void *ctx, const stt_doc_summary_t *s)
{
    int *n = ctx;
    return ++*n == 2;
}

static void test_docs_scan(void **state)
{
    fx_t *f = *state;
    stt_buf_t b = STT_BUF_INIT;
    /* neighbours on both sides in the keyspace: "before" has a lower db id only if
     * created first, so "db" (created by setup) has the lowest; "next" follows */
    db_create(f->s, "next");
    stt_db_t *next = db_open(f->s, "next");
    assert_int_equal(put(next, "0", NULL, "{}", false, NULL), 0);
    assert_int_equal(put(next, "zzz", NULL, "{}", false, NULL), 0);
    char rd[STT_REV_STR_MAX];
    const char *ids[] = {"a", "b", "bb", "c", "d", "e", "e\xff"};
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
        assert_int_equal(put(f->db, ids[i], NULL, "{}", false, !strcmp(ids[i], "d") ? rd : NULL), 0);
    assert_int_equal(put(f->db, "d", rd, "{}", true, NULL), 0); /* deleted: skipped */
    static const struct {
        const char *start, *end;
        bool inclusive_end, descending;
        const char *want;
    } cases[] = {
        /* 1 */ {NULL, NULL, true, false, "a b bb c e e\xff"},
        /* 2 */ {NULL, NULL, true, true, "e\xff e c bb b a"},
        /* 3 */ {"b", NULL, true, false, "b bb c e e\xff"},
        /* 4 */ {"ba", NULL, true, false, "bb c e e\xff"},
        /* 5 */ {NULL, "c", true, false, "a b bb c"},
        /* 6 */ {NULL, "c", false, false, "a b bb"},
        /* 7 */ {"b", "c", true, false, "b bb c"},
        /* 8 */ {"b", "c", false, false, "b bb"},
        /* 9 */ {"c", "a", true, true, "c bb b a"},
        /* 10 */ {"c", "a", false, true, "c bb b"},
        /* 11 */ {"d", NULL, true, true, "c bb b a"},
        /* 12 */ {"z", NULL, true, true, "e\xff e c bb b a"},
        /* 13 */ {"0", NULL, true, true, ""},
        /* 14 */ {"c", "b", true, false, ""},
        /* 15 */ {"d", "d", true, false, ""},
        /* 16 */ {"c", "c", true, false, "c"},
        /* 17 */ {"c", "c", false, false, ""},
        /* 18 */ {"bb", "bb", true, true, "bb"},
        /* 19 */ {"", NULL, true, false, "a b bb c e e\xff"},
        /* 20 */ {NULL, "", true, true, "e\xff e c bb b a"},
        /* 21 */ {"e", "e\xff", false, false, "e"},
        /* 22 */ {"a", "b", true, true, ""},
        /* 23 */ {"bz", "b", true, true, "bb b"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        stt_range_t rg = {cases[i].start,         cases[i].start ? strlen(cases[i].start) : 0,
                          cases[i].end,           cases[i].end ? strlen(cases[i].end) : 0,
                          cases[i].inclusive_end, cases[i].descending};
        docs_of(f->db, &rg, &b);
        if (strcmp(b.base, cases[i].want) != 0) fail_msg("case %zu: \"%s\", want \"%s\"", i + 1, b.base, cases[i].want);
    }
    stt_range_t all = {0}, desc = {.descending = true};
    assert_string_equal(docs_of(next, &all, &b), "0 zzz");
    assert_string_equal(docs_of(next, &desc, &b), "zzz 0");
    /* the callback stops a scan */
    stt_reader_t *r;
    stt_reader_open(f->db, &r);
    int n = 0;
    assert_int_equal(stt_docs_scan(r, &all, stop_after_two, &n), 0);
    assert_int_equal(n, 2);
    n = 0;
    assert_int_equal(stt_changes_scan(r, 0, false, stop_after_two, &n), 0);
    assert_int_equal(n, 2);
    stt_reader_close(r);
    stt_db_release(next);
    stt_buf_free(&b);
}

/* ====================================================================================
 * _local docs */

static int local_to_buf(void *ctx, const char *id, size_t idlen, uint64_t rev, const char *body, size_t len)
{
    stt_buf_t *b = ctx;
    if (b->len) stt_buf_appendc(b, ' ');
    stt_buf_append(b, id, idlen);
    stt_buf_appendf(b, "=0-%llu:", (unsigned long long)rev);
    stt_buf_append(b, body, len);
    return 0;
}

static const char *locals_of(stt_db_t *db, const stt_range_t *rg, stt_buf_t *out)
{
    stt_buf_reset(out);
    stt_buf_appends(out, "");
    assert_int_equal(stt_local_scan(db, rg, local_to_buf, out), 0);
    return out->base;
}

static void test_local_docs(void **state)
{
    fx_t *f = *state;
    stt_buf_t b = STT_BUF_INIT;
    uint64_t rev;
    db_create(f->s, "next");
    stt_db_t *next = db_open(f->s, "next");
    assert_int_equal(stt_local_put(next, "a", 1, 0, "{}", 2, false, &rev), 0);
    assert_int_equal(stt_local_get(f->db, "x", 1, &rev, &b), STT_E_NOT_FOUND);
    assert_int_equal(stt_local_put(f->db, "x", 1, 0, "{\"n\":1}", 7, false, &rev), 0);
    assert_int_equal(rev, 1);
    assert_int_equal(stt_local_put(f->db, "x", 1, 1, "{\"n\":2}", 7, false, &rev), 0);
    assert_int_equal(rev, 2);
    stt_buf_reset(&b);
    assert_int_equal(stt_local_get(f->db, "x", 1, &rev, &b), 0);
    assert_int_equal(rev, 2);
    assert_string_equal(b.base, "{\"n\":2}");
    /* CouchDB does not check the rev of a local doc: a stale one restarts the count */
    assert_int_equal(stt_local_put(f->db, "x", 1, 0, "{\"n\":3}", 7, false, &rev), 0);
    assert_int_equal(rev, 1);
    assert_int_equal(stt_local_put(f->db, "x", 1, 41, "{\"n\":4}", 7, false, &rev), 0);
    assert_int_equal(rev, 42);
    assert_int_equal(stt_local_put(f->db, "y", 1, 0, "{}", 2, false, &rev), 0);
    assert_int_equal(stt_local_put(f->db, "z", 1, 0, "{}", 2, false, &rev), 0);
    /* a normal doc of the same id is another doc */
    assert_int_equal(put(f->db, "x", NULL, "{\"normal\":true}", false, NULL), 0);
    stt_range_t all = {0}, desc = {.descending = true}, yz = {"y", 1, "z", 1, false, false};
    stt_range_t zy = {"z", 1, "y", 1, true, true};
    assert_string_equal(locals_of(f->db, &all, &b), "x=0-42:{\"n\":4} y=0-1:{} z=0-1:{}");
    assert_string_equal(locals_of(f->db, &desc, &b), "z=0-1:{} y=0-1:{} x=0-42:{\"n\":4}");
    assert_string_equal(locals_of(f->db, &yz, &b), "y=0-1:{}");
    assert_string_equal(locals_of(f->db, &zy, &b), "z=0-1:{} y=0-1:{}");
    assert_string_equal(locals_of(next, &desc, &b), "a=0-1:{}");
    /* deletion; deleting what is not there */
    assert_int_equal(stt_local_put(f->db, "y", 1, 1, NULL, 0, true, &rev), 0);
    assert_int_equal(stt_local_get(f->db, "y", 1, &rev, NULL), STT_E_NOT_FOUND);
    assert_int_equal(stt_local_put(f->db, "y", 1, 1, NULL, 0, true, &rev), STT_E_NOT_FOUND);
    assert_string_equal(locals_of(f->db, &all, &b), "x=0-42:{\"n\":4} z=0-1:{}");
    /* never in changes, never counted */
    stt_db_info_t in = info(f->db);
    assert_int_equal(in.update_seq, 1);
    assert_int_equal(in.doc_count, 1);
    assert_string_equal(changes_of(f->db, 0, false, &b), "x@1");
    assert_string_equal(docs_of(f->db, &all, &b), "x");
    stt_db_release(next); /* before the close: handles still held at a close leak */
    reopen(f);
    assert_string_equal(locals_of(f->db, &all, &b), "x=0-42:{\"n\":4} z=0-1:{}");
    stt_buf_free(&b);
}

/* ====================================================================================
 * Attachments */

static void att_meta(stt_db_t *db, const char *id, size_t k, stt_att_t *out, char *name, size_t namelen)
{
    stt_reader_t *r;
    stt_reader_open(db, &r);
    stt_doc_t d;
    assert_int_equal(stt_doc_get(r, id, strlen(id), &d), 0);
    stt_rev_body_t body;
    assert_int_equal(stt_doc_body(&d, d.winner, &body), 0);
    assert_true(k < body.natts);
    *out = body.atts[k];
    snprintf(name, namelen, "%.*s", (int)out->namelen, out->name);
    out->name = name;
    out->content_type = NULL;
    stt_rev_body_free(&body);
    stt_doc_free(&d);
    stt_reader_close(r);
}

static size_t natts_of(stt_db_t *db, const char *id)
{
    stt_reader_t *r;
    stt_reader_open(db, &r);
    stt_doc_t d;
    assert_int_equal(stt_doc_get(r, id, strlen(id), &d), 0);
    stt_rev_body_t body;
    assert_int_equal(stt_doc_body(&d, d.winner, &body), 0);
    size_t n = body.natts;
    stt_rev_body_free(&body);
    stt_doc_free(&d);
    stt_reader_close(r);
    return n;
}

/* Compaction as _compact runs it, then the sweeps it may have queued. */
static void compact(stt_db_t *db)
{
    assert_int_equal(stt_db_compact(db, false), 0);
}

static void test_attachments(void **state)
{
    fx_t *f = *state;
    static const char X[] = "the same bytes in two docs", Y[] = "other bytes", Z[] = "third";
    char r1[STT_REV_STR_MAX], r2[STT_REV_STR_MAX];
    size_t nstored;
    stt_att_in_t ax = att("a.txt", X), bx = att("b.txt", X);
    assert_int_equal(put_atts(f->db, "d1", NULL, "{}", false, &ax, 1, r1), 0);
    assert_int_equal(put_atts(f->db, "d2", NULL, "{}", false, &bx, 1, r2), 0);
    /* stored once, counted twice */
    assert_int_equal(att_refs(f->db, X, &nstored), 2);
    assert_int_equal(nstored, 1);
    assert_int_equal(att_read(f->db, X), 0);
    stt_att_t m;
    char name[64];
    att_meta(f->db, "d1", 0, &m, name, sizeof(name));
    assert_string_equal(name, "a.txt");
    assert_int_equal(m.revpos, 1);
    assert_int_equal(m.length, strlen(X));
    unsigned char md5[STT_DIGEST_LEN];
    stt_md5(X, strlen(X), md5);
    assert_memory_equal(m.digest, md5, STT_DIGEST_LEN);
    /* a stub keeps the parent's attachment and its revpos; the superseded body
     * keeps its reference until compaction */
    stt_att_in_t sa = stub("a.txt"), ay = att("y.txt", Y);
    stt_att_in_t keep[2] = {sa, ay};
    assert_int_equal(put_atts(f->db, "d1", r1, "{\"v\":2}", false, keep, 2, r1), 0);
    assert_int_equal(att_refs(f->db, X, &nstored), 3);
    compact(f->db);
    assert_int_equal(att_refs(f->db, X, &nstored), 2);
    assert_int_equal(att_refs(f->db, Y, NULL), 1);
    assert_int_equal(nstored, 2);
    att_meta(f->db, "d1", 0, &m, name, sizeof(name));
    assert_int_equal(m.revpos, 1);
    att_meta(f->db, "d1", 1, &m, name, sizeof(name));
    assert_string_equal(name, "y.txt");
    assert_int_equal(m.revpos, 2);
    /* a stub for a name the parent does not have */
    stt_att_in_t sn = stub("nope.txt");
    assert_int_equal(put_atts(f->db, "d1", r1, "{}", false, &sn, 1, NULL), STT_E_MISSING_STUB);
    assert_int_equal(info(f->db).update_seq, 3);
    /* dropping X from d1: one reference left once compacted */
    stt_att_in_t sy = stub("y.txt");
    assert_int_equal(put_atts(f->db, "d1", r1, "{\"v\":3}", false, &sy, 1, r1), 0);
    assert_int_equal(att_refs(f->db, X, NULL), 2);
    compact(f->db);
    assert_int_equal(att_refs(f->db, X, NULL), 1);
    assert_int_equal(att_read(f->db, X), 0);
    /* deleting d2 leaves a tombstone without attachments: X goes with the compaction */
    assert_int_equal(put(f->db, "d2", r2, "{}", true, r2), 0);
    assert_int_equal(att_read(f->db, X), 0);
    compact(f->db);
    assert_int_equal(att_refs(f->db, X, &nstored), 0);
    assert_int_equal(nstored, 1);
    assert_int_equal(att_read(f->db, X), STT_E_NOT_FOUND);
    /* recreated with the same bytes: stored again */
    assert_int_equal(put_atts(f->db, "d2", NULL, "{}", false, &bx, 1, r2), 0);
    assert_int_equal(att_read(f->db, X), 0);
    assert_int_equal(att_refs(f->db, X, NULL), 1);
    /* the same bytes under two names of one doc count twice */
    stt_att_in_t twice[2] = {att("p", Z), att("q", Z)};
    char r3[STT_REV_STR_MAX];
    assert_int_equal(put_atts(f->db, "d3", NULL, "{}", false, twice, 2, r3), 0);
    assert_int_equal(att_refs(f->db, Z, NULL), 2);
    assert_int_equal(put(f->db, "d3", r3, "{}", false, r3), 0);
    assert_int_equal(att_refs(f->db, Z, NULL), 2);
    compact(f->db);
    assert_int_equal(att_read(f->db, Z), STT_E_NOT_FOUND);
    /* replicated: a stub resolves against the nearest ancestor whose body is
     * still stored, a superseded one until compaction */
    stt_att_in_t az = att("z", Z), sz = stub("z");
    assert_int_equal(put_path_atts(f->db, "r", "1-a", "{}", &az, 1), 0);
    assert_int_equal(put_path_atts(f->db, "r", "2-b,a", "{}", &sz, 1), 0);
    assert_int_equal(att_refs(f->db, Z, NULL), 2);
    assert_int_equal(natts_of(f->db, "r"), 1);
    assert_int_equal(put_path_atts(f->db, "r", "2-c,a", "{}", &sz, 1), 0);
    assert_int_equal(att_refs(f->db, Z, NULL), 3);
    compact(f->db);
    assert_int_equal(att_refs(f->db, Z, NULL), 2);
    /* 1-a's body went with the compaction: a stub against it is missing */
    assert_int_equal(put_path_atts(f->db, "r", "2-f,a", "{}", &sz, 1), STT_E_MISSING_STUB);
    assert_int_equal(put_path(f->db, "r", "3-d,c", "{}"), 0);
    compact(f->db);
    assert_int_equal(att_refs(f->db, Z, NULL), 1);
    assert_int_equal(put_path(f->db, "r", "!3-e,b", "{}"), 0);
    assert_int_equal(att_read(f->db, Z), 0);
    compact(f->db);
    assert_int_equal(att_read(f->db, Z), STT_E_NOT_FOUND);
    /* every reference gone: nothing stored */
    assert_int_equal(put(f->db, "d1", r1, "{}", true, NULL), 0);
    assert_int_equal(put(f->db, "d2", r2, "{}", true, NULL), 0);
    compact(f->db);
    att_refs(f->db, X, &nstored);
    assert_int_equal(nstored, 0);
    reopen(f);
    att_refs(f->db, X, &nstored);
    assert_int_equal(nstored, 0);
}

/* The body stored for rev of doc id ("-" when there is none, "!" when the doc
 * or the rev is not there). */
static const char *body_of(stt_db_t *db, const char *id, const char *rev, stt_buf_t *out)
{
    stt_buf_reset(out);
    stt_buf_appends(out, "!");
    stt_rev_t rv;
    if (stt_rev_parse(rev, strlen(rev), &rv) != 0) return out->base;
    stt_reader_t *r;
    stt_reader_open(db, &r);
    stt_doc_t d;
    if (stt_doc_get(r, id, strlen(id), &d) == 0) {
        int node = stt_revtree_find(&d.tree, rv.gen, rv.id, rv.idlen);
        stt_rev_body_t b;
        if (node >= 0) {
            stt_buf_reset(out);
            if (stt_doc_body(&d, node, &b) == 0) {
                stt_buf_append(out, b.json, b.jsonlen);
                stt_rev_body_free(&b);
            } else {
                stt_buf_appends(out, "-");
            }
        }
        stt_doc_free(&d);
    }
    stt_reader_close(r);
    return out->base;
}

/* Superseded revisions keep their bodies until compaction, as in CouchDB (GET
 * ?rev=, revs_info "available", open_revs of an old rev); stemming and purge take
 * them with the revisions they remove, and the accounting (old_size) follows. */
static void test_old_bodies(void **state)
{
    fx_t *f = *state;
    stt_buf_t b = STT_BUF_INIT;
    char r1[STT_REV_STR_MAX], r2[STT_REV_STR_MAX], r3[STT_REV_STR_MAX];
    assert_int_equal(put(f->db, "d", NULL, "{\"v\":1}", false, r1), 0);
    assert_int_equal(put(f->db, "d", r1, "{\"v\":22}", false, r2), 0);
    assert_string_equal(body_of(f->db, "d", r1, &b), "{\"v\":1}");
    assert_string_equal(body_of(f->db, "d", r2, &b), "{\"v\":22}");
    stt_db_info_t in = info(f->db);
    assert_int_equal(in.old_size, strlen("{\"v\":1}"));
    assert_int_equal(in.active_size, strlen("{\"v\":22}"));
    /* kept across a restart */
    reopen(f);
    assert_string_equal(body_of(f->db, "d", r1, &b), "{\"v\":1}");
    assert_int_equal(info(f->db).old_size, strlen("{\"v\":1}"));
    /* a deletion keeps the last live body too */
    assert_int_equal(put(f->db, "d", r2, "{}", true, r3), 0);
    assert_string_equal(body_of(f->db, "d", r2, &b), "{\"v\":22}");
    assert_int_equal(info(f->db).old_size, strlen("{\"v\":1}") + strlen("{\"v\":22}"));
    /* compaction drops them: the revisions stay, their bodies are missing */
    compact(f->db);
    assert_string_equal(body_of(f->db, "d", r1, &b), "-");
    assert_string_equal(body_of(f->db, "d", r2, &b), "-");
    assert_string_equal(body_of(f->db, "d", r3, &b), "{}");
    in = info(f->db);
    assert_int_equal(in.old_size, 0);
    assert_int_equal(in.active_size, strlen("{}"));
    /* stemming takes the kept bodies of the revisions it removes */
    assert_int_equal(stt_db_set_revs_limit(f->db, 2), 0);
    char s1[STT_REV_STR_MAX], s2[STT_REV_STR_MAX], s3[STT_REV_STR_MAX];
    assert_int_equal(put(f->db, "s", NULL, "{\"s\":1}", false, s1), 0);
    assert_int_equal(put(f->db, "s", s1, "{\"s\":2}", false, s2), 0);
    assert_int_equal(put(f->db, "s", s2, "{\"s\":3}", false, s3), 0);
    assert_string_equal(body_of(f->db, "s", s1, &b), "!");
    assert_string_equal(body_of(f->db, "s", s2, &b), "{\"s\":2}");
    assert_int_equal(info(f->db).old_size, strlen("{\"s\":2}"));
    /* purge: a superseded body stays while a leaf above it does, and goes with
     * the last one */
    assert_int_equal(put_path(f->db, "p", "1-a", "{\"p\":\"a\"}"), 0);
    assert_int_equal(put_path(f->db, "p", "2-b,a", "{\"p\":\"b\"}"), 0);
    assert_int_equal(put_path(f->db, "p", "2-c,a", "{\"p\":\"c\"}"), 0);
    assert_string_equal(body_of(f->db, "p", "1-a", &b), "{\"p\":\"a\"}");
    uint64_t kept = strlen("{\"s\":2}") + strlen("{\"p\":\"a\"}");
    assert_int_equal(info(f->db).old_size, kept);
    stt_rev_t rv = {2, "c", 1};
    bool purged;
    assert_int_equal(stt_doc_purge(f->db, "p", 1, &rv, 1, &purged), 0);
    assert_true(purged);
    assert_string_equal(body_of(f->db, "p", "1-a", &b), "{\"p\":\"a\"}");
    assert_int_equal(info(f->db).old_size, kept);
    rv = (stt_rev_t){2, "b", 1};
    assert_int_equal(stt_doc_purge(f->db, "p", 1, &rv, 1, &purged), 0);
    assert_true(purged);
    assert_string_equal(leaves_of(f->db, "p", &b), "-");
    assert_int_equal(info(f->db).old_size, strlen("{\"s\":2}"));
    stt_buf_free(&b);
}

/* Automatic compaction: once superseded bodies are at least as large as the live
 * ones (and past the minimum size), the sweeper compacts the db by itself. */
static void test_auto_compact(void **state)
{
    fx_t *f = *state;
    stt_db_release(f->db);
    stt_store_close(f->s);
    stt_store_opts_t o;
    stt_store_opts_default(&o);
    o.paranoid = true;
    o.auto_compact_min_size = 64;
    char err[512];
    assert_int_equal(stt_store_open(f->dir, &o, &f->s, err, sizeof(err)), 0);
    f->db = db_open(f->s, "db");
    stt_buf_t b = STT_BUF_INIT;
    char rev[STT_REV_STR_MAX], first[STT_REV_STR_MAX];
    /* a big live doc keeps the ratio low for a while */
    char big[512];
    memset(big, 'x', sizeof(big));
    snprintf(big, sizeof(big), "{\"big\":\"%0400d\"}", 0);
    assert_int_equal(put(f->db, "big", NULL, big, false, NULL), 0);
    assert_int_equal(put(f->db, "d", NULL, "{\"n\":\"0000000000\"}", false, first), 0);
    strcpy(rev, first);
    for (int i = 1; i <= 10; i++) {
        char body[64];
        snprintf(body, sizeof(body), "{\"n\":\"%010d\"}", i);
        assert_int_equal(put(f->db, "d", rev, body, false, rev), 0);
    }
    stt_store_wait_sweeps(f->s);
    /* 10 kept bodies of 18 bytes: old 180 < active ~420, nothing compacted yet */
    assert_string_equal(body_of(f->db, "d", first, &b), "{\"n\":\"0000000000\"}");
    assert_int_equal(info(f->db).old_size, 180);
    for (int i = 11; i <= 40; i++) {
        char body[64];
        snprintf(body, sizeof(body), "{\"n\":\"%010d\"}", i);
        assert_int_equal(put(f->db, "d", rev, body, false, rev), 0);
    }
    stt_store_wait_sweeps(f->s);
    stt_db_info_t in = info(f->db);
    assert_true(in.old_size < in.active_size);
    assert_string_equal(body_of(f->db, "d", first, &b), "-");
    assert_string_equal(winner_body(f->db, "d", &b), "{\"n\":\"0000000040\"}");
    stt_buf_free(&b);
}

/* Compressible types are stored gzip-encoded, as CouchDB stores them: the digest is
 * the md5 of the encoded bytes, which the same text gives again (shared storage). */
/* Printable pseudo-random bytes (no NUL: the helpers take C strings). */
static char *long_text(size_t n, unsigned seed)
{
    char *t = malloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        t[i] = (char)('a' + (seed >> 16) % 26);
    }
    t[n] = '\0';
    return t;
}

static size_t att_keys(fx_t *f)
{
    stt_buf_t k = STT_BUF_INIT;
    stt__key_db(&k, K_ATT, f->db->id);
    leveldb_iterator_t *it = leveldb_create_iterator(f->s->ldb, f->s->ropts);
    size_t n = 0;
    for (leveldb_iter_seek(it, k.base, k.len); leveldb_iter_valid(it); leveldb_iter_next(it)) {
        size_t klen;
        const char *key = leveldb_iter_key(it, &klen);
        if (klen < k.len || memcmp(key, k.base, k.len) != 0) break;
        n++;
    }
    leveldb_iter_destroy(it);
    stt_buf_free(&k);
    return n;
}

/* Bytes longer than a piece: stored in pieces (staged ahead of the doc past 1 MiB),
 * read whole or streamed from any offset, read back from one value as stores before
 * pieces kept them, swept when an upload's doc never came, and gone with their last
 * reference. */
static void test_attachment_pieces(void **state)
{
    fx_t *f = *state;
    char *big = long_text(3 * 1024 * 1024 + 7, 1), *mid = long_text(200 * 1024 + 3, 2);
    char r1[STT_REV_STR_MAX], r2[STT_REV_STR_MAX];
    stt_att_in_t two[2] = {att("big", big), att("mid", mid)};
    assert_int_equal(put_atts(f->db, "d", NULL, "{}", false, two, 2, r1), 0);
    assert_int_equal(att_read(f->db, big), 0);
    assert_int_equal(att_read(f->db, mid), 0);
    assert_int_equal(att_keys(f), (strlen(big) + STT__ATT_CHUNK - 1) / STT__ATT_CHUNK +
                                      (strlen(mid) + STT__ATT_CHUNK - 1) / STT__ATT_CHUNK);
    /* a stream from inside a piece, in steps that do not divide one */
    stt_att_t m;
    char name[16];
    att_meta(f->db, "d", 0, &m, name, sizeof(name));
    assert_string_equal(name, "big");
    stt_reader_t *r;
    stt_reader_open(f->db, &r);
    stt_att_stream_t *as;
    size_t from = STT__ATT_CHUNK * 5 - 3;
    assert_int_equal(stt_att_stream_open(r, &m, true, from, &as), 0);
    stt_buf_t b = STT_BUF_INIT;
    int rc;
    while ((rc = stt_att_stream_next(as, 7777, &b)) == 0)
        ;
    assert_int_equal(rc, 1);
    assert_int_equal(b.len, strlen(big) - from);
    assert_memory_equal(b.base, big + from, b.len);
    stt_att_stream_close(as);
    stt_reader_close(r);
    /* one value under the bare key, as a store written before pieces holds it */
    unsigned char dm[STT_DIGEST_LEN];
    stt_md5(mid, strlen(mid), dm);
    leveldb_writebatch_t *wb = leveldb_writebatch_create();
    stt__att_delete(f->s, wb, f->db->id, dm);
    stt_buf_t k = STT_BUF_INIT;
    stt__key_att(&k, K_ATT, f->db->id, dm);
    leveldb_writebatch_put(wb, k.base, k.len, mid, strlen(mid));
    char *lerr = NULL;
    leveldb_write(f->s->ldb, f->s->wsync, wb, &lerr);
    assert_null(lerr);
    leveldb_writebatch_destroy(wb);
    stt_buf_free(&k);
    assert_int_equal(att_read(f->db, mid), 0);
    att_meta(f->db, "d", 1, &m, name, sizeof(name));
    stt_reader_open(f->db, &r);
    assert_int_equal(stt_att_stream_open(r, &m, true, 100000, &as), 0);
    stt_buf_reset(&b);
    while ((rc = stt_att_stream_next(as, 65536, &b)) == 0)
        ;
    assert_int_equal(rc, 1);
    assert_int_equal(b.len, strlen(mid) - 100000);
    assert_memory_equal(b.base, mid + 100000, b.len);
    stt_att_stream_close(as);
    stt_reader_close(r);
    /* an upload staged for a doc that never committed: not a fault; compaction sweeps it */
    char *lost = long_text(2 * 1024 * 1024, 3);
    unsigned char dl[STT_DIGEST_LEN];
    stt_md5(lost, strlen(lost), dl);
    assert_int_equal(stt__att_stage(f->s, f->db->id, dl, lost, strlen(lost)), 0);
    stt_verify_t v = {0};
    char err[512] = "";
    assert_int_equal(stt_store_verify(f->s, &v, err, sizeof(err)), 0);
    assert_int_equal(v.nfaults, 0);
    assert_int_equal(v.nunreferenced, 1);
    compact(f->db);
    v = (stt_verify_t){0};
    assert_int_equal(stt_store_verify(f->s, &v, err, sizeof(err)), 0);
    assert_int_equal(v.nunreferenced, 0);
    assert_int_equal(att_read(f->db, big), 0);
    assert_int_equal(att_read(f->db, mid), 0);
    /* the last reference gone (deleted, then compacted): no bytes left, whole or pieces */
    assert_int_equal(put_atts(f->db, "d", r1, "{}", true, NULL, 0, r2), 0);
    compact(f->db);
    assert_int_equal(att_keys(f), 0);
    stt_buf_free(&b);
    free(big);
    free(mid);
    free(lost);
}

static void test_attachments_gzip(void **state)
{
    fx_t *f = *state;
    static const char T[] = "text text text text text text text text text text text text text text text";
    stt_att_in_t at = att_typed("t.txt", "text/plain; charset=utf-8", T);
    char r1[STT_REV_STR_MAX];
    assert_int_equal(put_atts(f->db, "g1", NULL, "{}", false, &at, 1, r1), 0);
    assert_int_equal(put_atts(f->db, "g2", NULL, "{}", false, &at, 1, NULL), 0);
    stt_reader_t *r;
    stt_reader_open(f->db, &r);
    stt_doc_t d;
    assert_int_equal(stt_doc_get(r, "g1", 2, &d), 0);
    stt_rev_body_t b;
    assert_int_equal(stt_doc_body(&d, d.winner, &b), 0);
    assert_int_equal(b.natts, 1);
    stt_att_t a = b.atts[0];
    assert_int_equal(a.encoding, STT_ATT_GZIP);
    assert_int_equal(a.length, strlen(T));
    assert_true(a.encoded_length < a.length);
    stt_buf_t raw = STT_BUF_INIT, dec = STT_BUF_INIT;
    assert_int_equal(stt_att_read(r, a.digest, &raw), 0);
    assert_int_equal(raw.len, a.encoded_length);
    unsigned char md5[STT_DIGEST_LEN];
    stt_md5(raw.base, raw.len, md5);
    assert_memory_equal(md5, a.digest, STT_DIGEST_LEN);
    assert_int_equal(stt_att_read_decoded(r, &a, &dec), 0);
    assert_int_equal(dec.len, strlen(T));
    assert_memory_equal(dec.base, T, dec.len);
    /* one copy for both docs */
    attcount_t c = {0};
    memcpy(c.digest, a.digest, STT_DIGEST_LEN);
    assert_int_equal(stt_att_scan(r, count_att, &c), 0);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.refs, 2);
    stt_buf_free(&raw);
    stt_buf_free(&dec);
    stt_rev_body_free(&b);
    stt_doc_free(&d);
    stt_reader_close(r);
    /* a stub keeps the encoding */
    stt_att_in_t st = stub("t.txt");
    assert_int_equal(put_atts(f->db, "g1", r1, "{\"v\":2}", false, &st, 1, NULL), 0);
    stt_att_t m;
    char name[16];
    att_meta(f->db, "g1", 0, &m, name, sizeof(name));
    assert_int_equal(m.encoding, STT_ATT_GZIP);
    assert_int_equal(m.length, strlen(T));
    assert_true(stt_att_compressible("application/json", 16));
    assert_false(stt_att_compressible("image/png", 9));
}

/* ====================================================================================
 * Purge */

static void test_purge(void **state)
{
    fx_t *f = *state;
    stt_buf_t b = STT_BUF_INIT;
    char r1[STT_REV_STR_MAX], r2[STT_REV_STR_MAX];
    bool purged[3];
    stt_rev_t rv[3];
    /* a doc whose only leaf is purged disappears with its history */
    assert_int_equal(put(f->db, "p1", NULL, "{}", false, r1), 0);
    assert_int_equal(put(f->db, "p1", r1, "{\"v\":2}", false, r2), 0);
    assert_int_equal(put(f->db, "keep", NULL, "{}", false, NULL), 0);
    assert_int_equal(stt_rev_parse(r1, strlen(r1), &rv[0]), 0);
    assert_int_equal(stt_rev_parse(r2, strlen(r2), &rv[1]), 0);
    rv[2] = (stt_rev_t){7, "nope", 4};
    assert_int_equal(stt_doc_purge(f->db, "p1", 2, rv, 3, purged), 0);
    assert_false(purged[0]); /* not a leaf */
    assert_true(purged[1]);
    assert_false(purged[2]);
    assert_string_equal(leaves_of(f->db, "p1", &b), "-");
    stt_db_info_t in = info(f->db);
    assert_int_equal(in.doc_count, 1);
    assert_int_equal(in.purge_seq, 1);
    assert_string_equal(changes_of(f->db, 0, false, &b), "keep@3");
    assert_int_equal(stt_doc_purge(f->db, "p1", 2, rv, 3, purged), STT_E_NOT_FOUND);
    /* purging one leaf of a conflict: the other stays, at a new seq */
    assert_int_equal(put_path(f->db, "p2", "2-b,a", "{\"b\":1}"), 0); /* 4 */
    assert_int_equal(put_path(f->db, "p2", "2-c,a", "{\"c\":1}"), 0); /* 5 */
    rv[0] = (stt_rev_t){2, "c", 1};
    assert_int_equal(stt_doc_purge(f->db, "p2", 2, rv, 1, purged), 0);
    assert_true(purged[0]);
    assert_string_equal(leaves_of(f->db, "p2", &b), "2-b");
    assert_string_equal(winner_body(f->db, "p2", &b), "{\"b\":1}");
    assert_string_equal(changes_of(f->db, 0, false, &b), "keep@3 p2@6");
    assert_int_equal(info(f->db).update_seq, 6);
    /* purging the live leaf of a doc with a deleted one: the doc becomes deleted */
    assert_int_equal(put_path(f->db, "p3", "2-l,a", "{}"), 0);  /* 7 */
    assert_int_equal(put_path(f->db, "p3", "!2-m,a", "{}"), 0); /* 8 */
    in = info(f->db);
    assert_int_equal(in.doc_count, 3);
    assert_int_equal(in.doc_del_count, 0);
    rv[0] = (stt_rev_t){2, "l", 1};
    assert_int_equal(stt_doc_purge(f->db, "p3", 2, rv, 1, purged), 0);
    in = info(f->db);
    assert_int_equal(in.doc_count, 2);
    assert_int_equal(in.doc_del_count, 1);
    assert_string_equal(changes_of(f->db, 6, false, &b), "p3@9*");
    /* nothing purged: nothing changes */
    rv[0] = (stt_rev_t){1, "a", 1};
    assert_int_equal(stt_doc_purge(f->db, "p3", 2, rv, 1, purged), 0);
    assert_false(purged[0]);
    assert_int_equal(info(f->db).update_seq, 9);
    assert_int_equal(info(f->db).purge_seq, 3);
    /* a purged leaf's attachment loses its reference */
    static const char A[] = "purged attachment", B[] = "shared attachment";
    stt_att_in_t aa = att("a", A), ab = att("b", B);
    assert_int_equal(put_atts(f->db, "p4", NULL, "{}", false, &aa, 1, r1), 0);
    assert_int_equal(put_atts(f->db, "p5", NULL, "{}", false, &ab, 1, NULL), 0);
    assert_int_equal(put_path_atts(f->db, "p4", "1-zz", "{}", &ab, 1), 0);
    assert_int_equal(att_refs(f->db, B, NULL), 2);
    assert_int_equal(stt_rev_parse(r1, strlen(r1), &rv[0]), 0);
    rv[1] = (stt_rev_t){1, "zz", 2};
    assert_int_equal(stt_doc_purge(f->db, "p4", 2, rv, 2, purged), 0);
    assert_true(purged[0] && purged[1]);
    assert_int_equal(att_read(f->db, A), STT_E_NOT_FOUND);
    assert_int_equal(att_refs(f->db, B, NULL), 1);
    assert_int_equal(att_read(f->db, B), 0);
    reopen(f);
    assert_string_equal(changes_of(f->db, 0, false, &b), "keep@3 p2@6 p3@9* p5@11");
    stt_buf_free(&b);
}

/* Two leaves of one doc holding the same attachment, purged in one call: both
 * references go, so the bytes go. */
static void test_purge_shared_attachment(void **state)
{
    fx_t *f = *state;
    static const char S[] = "the same bytes on two branches";
    stt_att_in_t as = att("s", S);
    assert_int_equal(put_path_atts(f->db, "p", "1-a", "{}", &as, 1), 0);
    assert_int_equal(put_path_atts(f->db, "p", "1-b", "{}", &as, 1), 0);
    assert_int_equal(att_refs(f->db, S, NULL), 2);
    stt_rev_t rv[2] = {{1, "a", 1}, {1, "b", 1}};
    bool purged[2];
    assert_int_equal(stt_doc_purge(f->db, "p", 1, rv, 2, purged), 0);
    assert_true(purged[0] && purged[1]);
    size_t nstored;
    assert_int_equal(att_refs(f->db, S, &nstored), 0);
    assert_int_equal(nstored, 0);
    assert_int_equal(att_read(f->db, S), STT_E_NOT_FOUND);
}

/* ====================================================================================
 * Persistence */

static int fp_doc(void *ctx, const char *id, size_t idlen);

typedef struct {
    stt_reader_t *r;
    stt_buf_t *out;
} fp_t;

/* Everything readable about a db as text: counters, docs with trees, leaf bodies and
 * attachments, local docs, security. */
static void fingerprint(stt_db_t *db, stt_buf_t *out)
{
    stt_buf_reset(out);
    stt_db_info_t in = info(db);
    stt_buf_appendf(out, "seq %llu docs %llu dels %llu purge %llu active %llu revs_limit %u\n",
                    (unsigned long long)in.update_seq, (unsigned long long)in.doc_count,
                    (unsigned long long)in.doc_del_count, (unsigned long long)in.purge_seq,
                    (unsigned long long)in.active_size, in.revs_limit);
    stt_db_get_security(db, out);
    stt_buf_appendc(out, '\n');
    fp_t c = {NULL, out};
    stt_reader_open(db, &c.r);
    assert_int_equal(stt_doc_ids_scan(c.r, fp_doc, &c), 0);
    stt_reader_close(c.r);
    stt_range_t all = {0};
    assert_int_equal(stt_local_scan(db, &all, local_to_buf, out), 0);
}

static int fp_doc(void *ctx, const char *id, size_t idlen)
{
    fp_t *c = ctx;
    stt_doc_t d;
    assert_int_equal(stt_doc_get(c->r, id, idlen, &d), 0);
    stt_buf_append(c->out, id, idlen);
    stt_buf_appendf(c->out, " seq %llu:", (unsigned long long)d.seq);
    for (uint32_t i = 0; i < d.tree.n; i++) {
        stt_buf_appendc(c->out, ' ');
        stt_revtree_format(&d.tree, (int)i, c->out);
        stt_buf_appendf(c->out, "^%d/%u", d.tree.nodes[i].parent, d.tree.nodes[i].flags);
        stt_rev_body_t body;
        if (stt_doc_body(&d, (int)i, &body) == 0) {
            stt_buf_appendc(c->out, '=');
            stt_buf_append(c->out, body.json, body.jsonlen);
            for (size_t k = 0; k < body.natts; k++) {
                stt_buf_appendf(c->out, "+%.*s/%llu/", (int)body.atts[k].namelen, body.atts[k].name,
                                (unsigned long long)body.atts[k].revpos);
                stt_att_digest_format(body.atts[k].digest, c->out);
            }
            stt_rev_body_free(&body);
        }
    }
    stt_buf_appendc(c->out, '\n');
    stt_doc_free(&d);
    return 0;
}

static void test_reopen(void **state)
{
    fx_t *f = *state;
    stt_buf_t before = STT_BUF_INIT, after = STT_BUF_INIT, b = STT_BUF_INIT;
    char r[STT_REV_STR_MAX];
    stt_att_in_t a = att("a", "persisted bytes"), sa = stub("a");
    assert_int_equal(put_atts(f->db, "a", NULL, "{\"x\":[1,2]}", false, &a, 1, r), 0);
    assert_int_equal(put_atts(f->db, "a", r, "{\"x\":3}", false, &sa, 1, r), 0);
    assert_int_equal(put(f->db, "b", NULL, "{}", false, r), 0);
    assert_int_equal(put(f->db, "b", r, "{}", true, NULL), 0);
    assert_int_equal(put_path(f->db, "c", "3-c,b,a", "{\"c\":1}"), 0);
    assert_int_equal(put_path(f->db, "c", "3-d,b,a", "{\"d\":1}"), 0);
    uint64_t lrev;
    assert_int_equal(stt_local_put(f->db, "cp", 2, 0, "{\"s\":9}", 7, false, &lrev), 0);
    assert_int_equal(stt_db_set_security(f->db, "{\"members\":{}}", 14), 0);
    assert_int_equal(stt_db_set_revs_limit(f->db, 50), 0);
    db_create(f->s, "other");
    fingerprint(f->db, &before);
    reopen(f);
    fingerprint(f->db, &after);
    assert_string_equal(after.base, before.base);
    assert_int_equal(att_read(f->db, "persisted bytes"), 0);
    /* seqs and db ids go on from where they were */
    assert_int_equal(put(f->db, "d", NULL, "{}", false, NULL), 0);
    assert_string_equal(changes_of(f->db, 5, false, &b), "c@6 d@7");
    db_create(f->s, "third");
    stt_db_t *t = db_open(f->s, "third");
    assert_int_equal(put(t, "t", NULL, "{}", false, NULL), 0);
    stt_db_release(t);
    t = db_open(f->s, "other");
    assert_int_equal(info(t).update_seq, 0);
    stt_range_t all = {0};
    assert_string_equal(docs_of(t, &all, &b), "");
    stt_db_release(t);
    stt_buf_free(&before);
    stt_buf_free(&after);
    stt_buf_free(&b);
}

/* ====================================================================================
 * The checker finds what is wrong */

typedef struct {
    int n;
    char first[512];
} faults_t;

static void collect_fault(void *ctx, const char *msg)
{
    faults_t *c = ctx;
    if (c->n++ == 0) snprintf(c->first, sizeof(c->first), "%s", msg);
}

static void raw_put(stt_store_t *s, const stt_buf_t *k, const void *v, size_t vlen)
{
    char *err = NULL;
    leveldb_put(s->ldb, s->wsync, k->base, k->len, v, vlen, &err);
    assert_null(err);
}

static void raw_delete(stt_store_t *s, const stt_buf_t *k)
{
    char *err = NULL;
    leveldb_delete(s->ldb, s->wsync, k->base, k->len, &err);
    assert_null(err);
}

static char *raw_get(stt_store_t *s, const stt_buf_t *k, size_t *vlen)
{
    char *err = NULL;
    char *v = leveldb_get(s->ldb, s->ropts, k->base, k->len, vlen, &err);
    assert_null(err);
    assert_non_null(v);
    return v;
}

/* Expects exactly the faults whose messages contain want. */
static void expect_fault(fx_t *f, size_t row, const char *want)
{
    faults_t c = {0};
    stt_verify_t v = {.on_fault = collect_fault, .ctx = &c};
    char err[1024] = "";
    int rc = stt_store_verify(f->s, &v, err, sizeof(err));
    if (rc != STT_E_INTERNAL || !strstr(err, want) || strcmp(err, c.first) != 0)
        fail_msg("row %zu: verify %d \"%s\" (%d faults), want a fault with \"%s\"", row, rc, err, c.n, want);
}

static void test_verify_detects(void **state)
{
    fx_t *f = *state;
    stt_buf_t k = STT_BUF_INIT, k2 = STT_BUF_INIT;
    char r[STT_REV_STR_MAX];
    static const char DATA[] = "attachment under test";
    stt_att_in_t a = att("a", DATA);
    assert_int_equal(put_atts(f->db, "a", NULL, "{}", false, &a, 1, r), 0); /* seq 1 */
    assert_int_equal(put(f->db, "b", NULL, "{}", false, NULL), 0);          /* seq 2 */
    assert_int_equal(put_path(f->db, "c", "2-y,x", "{}"), 0);               /* seq 3 */
    assert_int_equal(put_path(f->db, "c", "2-z,x", "{}"), 0);               /* seq 4 */
    assert_verified(f->s);
    stt_verify_t v = {0};
    assert_int_equal(stt_store_verify(f->s, &v, NULL, 0), 0);
    assert_int_equal(v.ndbs, 1);
    assert_int_equal(v.ndocs, 3);
    assert_int_equal(v.nleaves, 4);
    assert_int_equal(v.natts, 1);
    uint64_t id = f->db->id;
    unsigned char md5[STT_DIGEST_LEN];
    stt_md5(DATA, strlen(DATA), md5);
    size_t vlen;
    char *saved;

    /* 1: a by-seq entry lost */
    stt__key_seq(&k, id, 2);
    saved = raw_get(f->s, &k, &vlen);
    raw_delete(f->s, &k);
    expect_fault(f, 1, "by-seq index has 2 entries for 3 docs");
    /* 2: ... and put back at a seq that is not the doc's */
    stt__key_seq(&k, id, 3);
    raw_put(f->s, &k, saved, vlen);
    stt__key_seq(&k, id, 2);
    raw_put(f->s, &k, saved, vlen);
    leveldb_free(saved);
    expect_fault(f, 2, "doc b: by-seq entry at seq 3, the doc's seq is 2");
    stt__key_seq(&k, id, 3);
    raw_delete(f->s, &k);
    assert_verified(f->s);
    /* 3: a reference count off by one */
    stt__key_att(&k, K_ATTREF, id, md5);
    raw_put(f->s, &k, "\x02", 1);
    expect_fault(f, 3, "reference count 2, leaves reference it 1 times");
    raw_put(f->s, &k, "\x01", 1);
    /* 4: attachment bytes lost */
    stt__key_att(&k2, K_ATT, id, md5);
    raw_delete(f->s, &k2);
    expect_fault(f, 4, "attachment a cannot be read");
    /* 5: attachment bytes changed */
    raw_put(f->s, &k2, "other", 5);
    expect_fault(f, 5, "md5 differs");
    raw_put(f->s, &k2, DATA, strlen(DATA));
    /* 6: bytes no leaf names and nothing counts (an upload cut short): not a fault,
     * counted apart; bytes a leaf names whose count is lost: a fault */
    unsigned char zero[STT_DIGEST_LEN] = {0};
    stt__key_att(&k, K_ATT, id, zero);
    raw_put(f->s, &k, "x", 1);
    v = (stt_verify_t){0};
    assert_int_equal(stt_store_verify(f->s, &v, NULL, 0), 0);
    assert_int_equal(v.nunreferenced, 1);
    raw_delete(f->s, &k);
    stt__key_att(&k, K_ATTREF, id, md5);
    raw_delete(f->s, &k);
    expect_fault(f, 6, "kept without a reference count (leaves reference it 1 times)");
    raw_put(f->s, &k, "\x01", 1);
    assert_verified(f->s);
    /* 7: counters that do not match the docs */
    f->db->doc_count++;
    expect_fault(f, 7, "counters say doc_count 4 doc_del_count 0, a scan counts 3 and 0");
    f->db->doc_count--;
    f->db->update_seq = 3;
    expect_fault(f, 8, "beyond update_seq 3");
    f->db->update_seq = 4;
    f->db->active_size += 5;
    expect_fault(f, 9, "active_size is");
    f->db->active_size -= 5;
    /* 10: keys of a database that does not exist */
    stt__key_doc(&k, id + 100, "ghost", 5);
    raw_put(f->s, &k, "x", 1);
    expect_fault(f, 10, "neither live nor being swept");
    raw_delete(f->s, &k);
    /* 11: a doc record whose leaves differ from its by-seq entry: the summary of b
     * put under a's seq */
    stt__key_seq(&k, id, 2);
    saved = raw_get(f->s, &k, &vlen);
    stt__key_seq(&k2, id, 1);
    char *sa = raw_get(f->s, &k2, &vlen);
    size_t salen = vlen;
    raw_put(f->s, &k2, saved, vlen);
    leveldb_free(saved);
    expect_fault(f, 11, "doc b: by-seq entry at seq 1, the doc's seq is 2");
    raw_put(f->s, &k2, sa, salen);
    leveldb_free(sa);
    assert_verified(f->s);
    /* 12: a doc record that does not decode */
    stt__key_doc(&k, id, "b", 1);
    saved = raw_get(f->s, &k, &vlen);
    raw_put(f->s, &k, "\x01", 1);
    expect_fault(f, 12, "doc b: cannot be read");
    raw_put(f->s, &k, saved, vlen);
    leveldb_free(saved);
    assert_verified(f->s);
    stt_buf_free(&k);
    stt_buf_free(&k2);
}

/* ====================================================================================
 * Registry */

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(int argc, char **argv)
{
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        T(test_db_names),
        T(test_db_lifecycle),
        T(test_db_delete_sweep),
        T(test_edit_table),
        T(test_batch),
        T(test_revs_limit),
        T(test_changes),
        T(test_docs_scan),
        T(test_local_docs),
        T(test_attachments),
        T(test_old_bodies),
        T(test_auto_compact),
        T(test_attachments_gzip),
        T(test_attachment_pieces),
        T(test_purge),
        T(test_purge_shared_attachment),
        T(test_reopen),
        T(test_verify_detects),
    };
    /* clang-format on */
    if (argc > 1) {
        char filter[256];
        snprintf(filter, sizeof(filter), "*%s*", argv[1]);
        cmocka_set_test_filter(filter);
    }
    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
