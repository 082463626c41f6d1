/* Crash test for the store: acknowledged writes survive a SIGKILL.
 *
 * A child process writes batches in a loop through stt_doc_write (new docs, updates,
 * deletions, recreations, attachments new, shared and kept by stub), puts a _local
 * doc now and then, and deletes and recreates a scratch database so that kills land
 * in sweeps too. Only after a call returned 0 does it append what was acknowledged to
 * an ack file. The parent kills it with SIGKILL after a random delay, KILLS times,
 * and after each kill opens the store and checks:
 *  - each doc has one leaf (the child edits winners only) and it is the rev the
 *    parent knows of (the last acknowledged one, or the leaf seen at the previous
 *    check), or a child of it: the one batch in flight at the kill may have
 *    committed without its acknowledgement;
 *  - when the leaf is the last acknowledged rev: its deleted flag, body and
 *    attachment (md5 of its decoded bytes) are the acknowledged ones;
 *  - every acknowledged rev is in the tree unless stemming took it (revs_limit
 *    generations below the leaf);
 *  - the _local doc's rev is the known one or the next;
 *  - stt_store_verify, the check settee-check runs, finds no fault.
 * A SIGKILL loses what the process holds, not what the kernel holds: this checks
 * that each call is atomic and that acknowledgements follow commits, not that a
 * power cut keeps synced data (which rests on sync=true; see settee-bench-store for
 * what the syncs cost).
 *
 * The child is this binary run again (fork, then exec with --child): a plain fork
 * of a process that has used LevelDB inherits the state of LevelDB's background
 * compaction thread but not the thread, and could stall once a memtable fills.
 *
 * Bounds: KILLS rounds, each waiting at most MAX_DELAY_MS before its kill, on a
 * store of NDOCS docs, so the test takes a few seconds whatever happens. Delays and
 * the child's choices come from STT_SEED (a fixed default): the kill points still
 * vary with timing, the bounds do not. */
#include "store/store.h"
#include "src/common/codec.h"
#include "src/common/err.h"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KILLS 25
#define MAX_DELAY_MS 200
#define NDOCS 40
#define MAX_BATCH 6
#define DBNAME "crash"
#define LOCAL_ID "checkpoint"

static uint64_t rnd_state;

static uint64_t rnd(void)
{
    uint64_t z = (rnd_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint32_t rnd_below(uint32_t n)
{
    return (uint32_t)(rnd() % n);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void doc_id(int i, char *out)
{
    snprintf(out, 16, "doc%02d", i);
}

static void hex(const unsigned char *d, char out[33])
{
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* ====================================================================================
 * The child: writes and acknowledges until killed */

static int ack_fd = -1;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(msg, sizeof(msg), "E ");
    n += vsnprintf(msg + n, sizeof(msg) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof(msg) - 2) n = (int)sizeof(msg) - 2;
    msg[n++] = '\n';
    if (ack_fd >= 0 && write(ack_fd, msg, (size_t)n) < 0) _exit(4);
    _exit(3);
}

static void ack(const char *line, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(ack_fd, line + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) _exit(4);
        off += (size_t)w;
    }
}

typedef struct {
    bool exists, deleted, has_att;
    char rev[STT_REV_STR_MAX];
} cdoc_t;

/* Attachment bytes: a few shared blobs (stored once, counted by many leaves) and
 * unique ones. */
static void make_blob(stt_buf_t *b, uint64_t seed, unsigned which)
{
    stt_buf_reset(b);
    if (which < 4) seed = 0; /* shared: the same bytes whoever writes them */
    unsigned len = which < 4 ? 100 + which * 1500 : 50 + (unsigned)(seed % 3000);
    for (unsigned i = 0; i < len; i++)
        stt_buf_appendc(b, (char)('a' + (i * 7 + which + seed) % 26));
}

static void child_main(const char *dir, const char *ackpath, uint64_t seed)
{
    ack_fd = open(ackpath, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (ack_fd < 0) _exit(5);
    rnd_state = seed;
    stt_store_opts_t o;
    stt_store_opts_default(&o);
    stt_store_t *s;
    char err[512];
    if (stt_store_open(dir, &o, &s, err, sizeof(err)) != 0) die("open: %s", err);
    int rc = stt_db_create(s, DBNAME, strlen(DBNAME));
    if (rc && rc != STT_E_FILE_EXISTS) die("create: %d", rc);
    stt_db_t *db;
    if ((rc = stt_db_open(s, DBNAME, strlen(DBNAME), &db)) != 0) die("db open: %d", rc);

    /* where the last run stopped, acknowledged or not */
    cdoc_t docs[NDOCS] = {0};
    stt_reader_t *r;
    stt_reader_open(db, &r);
    for (int i = 0; i < NDOCS; i++) {
        char id[16];
        doc_id(i, id);
        stt_doc_t d;
        if (stt_doc_get(r, id, strlen(id), &d) != 0) continue;
        docs[i].exists = true;
        docs[i].deleted = d.tree.nodes[d.winner].flags & STT_REV_DELETED;
        stt_buf_t rv = {docs[i].rev, 0, sizeof(docs[i].rev)};
        stt_revtree_format(&d.tree, d.winner, &rv);
        stt_rev_body_t b;
        if (stt_doc_body(&d, d.winner, &b) == 0) {
            docs[i].has_att = b.natts > 0;
            stt_rev_body_free(&b);
        }
        stt_doc_free(&d);
    }
    stt_reader_close(r);
    uint64_t local_rev = 0;
    stt_local_get(db, LOCAL_ID, strlen(LOCAL_ID), &local_rev, NULL);

    stt_buf_t blobs[MAX_BATCH], line = STT_BUF_INIT;
    char bodies[MAX_BATCH][320];
    for (int i = 0; i < MAX_BATCH; i++)
        blobs[i] = (stt_buf_t)STT_BUF_INIT;
    for (uint64_t iter = 0;; iter++) {
        if (iter % 20 == 7) {
            uint64_t nr;
            char body[64];
            int n = snprintf(body, sizeof(body), "{\"iter\":%llu}", (unsigned long long)iter);
            if ((rc = stt_local_put(db, LOCAL_ID, strlen(LOCAL_ID), local_rev, body, (size_t)n, false, &nr)) != 0)
                die("local put: %d", rc);
            local_rev = nr;
            char l[64];
            n = snprintf(l, sizeof(l), "L %llu\n", (unsigned long long)nr);
            ack(l, (size_t)n);
        }
        if (iter % 40 == 13) {
            /* a database deleted with docs in it: its sweep may be killed too */
            rc = stt_db_delete(s, "scratch", 7);
            if (rc && rc != STT_E_DB_NOT_FOUND) die("scratch delete: %d", rc);
            if ((rc = stt_db_create(s, "scratch", 7)) != 0) die("scratch create: %d", rc);
            stt_db_t *sc;
            if ((rc = stt_db_open(s, "scratch", 7, &sc)) != 0) die("scratch open: %d", rc);
            stt_doc_write_t w[50];
            stt_doc_result_t res[50];
            char ids[50][16];
            stt_att_in_t a = {.meta = {.name = "s", .namelen = 1, .content_type = "text/plain", .ctlen = 10},
                              .data = "scratch",
                              .datalen = 7};
            for (int i = 0; i < 50; i++) {
                snprintf(ids[i], sizeof(ids[i]), "s%02d", i);
                w[i] = (stt_doc_write_t){.id = ids[i], .idlen = 3, .body = "{}", .bodylen = 2};
                if (i % 5 == 0) w[i].atts = &a, w[i].natts = 1;
            }
            if ((rc = stt_doc_write(sc, w, 50, true, res)) != 0) die("scratch write: %d", rc);
            stt_db_release(sc);
        }
        /* one batch of distinct docs */
        int n = 1 + (int)rnd_below(MAX_BATCH), idx[MAX_BATCH];
        stt_doc_write_t w[MAX_BATCH];
        stt_att_in_t atts[MAX_BATCH];
        stt_doc_result_t res[MAX_BATCH];
        for (int k = 0; k < n; k++) {
            int i;
            bool dup;
            do {
                i = (int)rnd_below(NDOCS);
                dup = false;
                for (int j = 0; j < k; j++)
                    dup |= idx[j] == i;
            } while (dup);
            idx[k] = i;
            static char ids[MAX_BATCH][16];
            doc_id(i, ids[k]);
            int blen = snprintf(bodies[k], sizeof(bodies[k]), "{\"seed\":%llu,\"iter\":%llu,\"pad\":\"%.*s\"}",
                                (unsigned long long)seed, (unsigned long long)iter, (int)rnd_below(200),
                                "................................................................................"
                                "................................................................................"
                                "........................................");
            w[k] = (stt_doc_write_t){.id = ids[k], .idlen = strlen(ids[k]), .body = bodies[k], .bodylen = (size_t)blen};
            /* half the docs' attachments are of a type stored gzip-encoded */
            const char *type = i % 2 ? "text/plain" : "application/octet-stream";
            atts[k] =
                (stt_att_in_t){.meta = {.name = "att", .namelen = 3, .content_type = type, .ctlen = strlen(type)}};
            cdoc_t *c = &docs[i];
            uint32_t roll = rnd_below(100);
            bool live = c->exists && !c->deleted;
            if (live) {
                w[k].has_prev = true;
                if (stt_rev_parse(c->rev, strlen(c->rev), &w[k].prev) != 0) die("bad rev %s", c->rev);
            }
            if (live && roll < 15) {
                w[k].deleted = true;
                w[k].body = "{}";
                w[k].bodylen = 2;
            } else if (live && c->has_att && roll < 45) {
                atts[k].stub = true;
                w[k].atts = &atts[k];
                w[k].natts = 1;
            } else if (roll < 70) {
                make_blob(&blobs[k], rnd(), rnd_below(6));
                atts[k].data = blobs[k].base;
                atts[k].datalen = blobs[k].len;
                w[k].atts = &atts[k];
                w[k].natts = 1;
            }
        }
        rc = stt_doc_write(db, w, (size_t)n, true, res);
        if (rc) die("write: %d", rc);
        /* acknowledged: record it, then go on */
        stt_buf_reset(&line);
        for (int k = 0; k < n; k++) {
            if (res[k].err) die("doc %s: err %d", w[k].id, res[k].err);
            cdoc_t *c = &docs[idx[k]];
            c->exists = true;
            c->deleted = w[k].deleted;
            c->has_att = w[k].natts > 0;
            snprintf(c->rev, sizeof(c->rev), "%s", res[k].rev);
            char dg[33] = "-";
            if (w[k].natts && !atts[k].stub) {
                unsigned char md5[16];
                stt_md5(atts[k].data, atts[k].datalen, md5);
                hex(md5, dg);
            } else if (w[k].natts) {
                snprintf(dg, sizeof(dg), "=");
            }
            stt_buf_appendf(&line, "D %s %s %d %s %.*s\n", w[k].id, res[k].rev, w[k].deleted, dg, (int)w[k].bodylen,
                            w[k].body);
        }
        ack(line.base, line.len);
    }
}

/* ====================================================================================
 * The parent: kills, reopens, checks */

typedef struct {
    char known[STT_REV_STR_MAX]; /* last acknowledged rev or leaf seen at a check; "" none */
    bool fresh;                  /* known is the last ack, acked since the previous check */
    bool deleted;
    char digest[33]; /* md5 hex of the decoded attachment, "-" none ("=" in an ack: kept by stub) */
    char body[320];
    char digest_known[33]; /* md5 hex of the attachment the known rev has, "-" none, "" unknown */
    char **acked;          /* every acknowledged rev (they must all stay in the tree) */
    size_t nacked;
} pdoc_t;

typedef struct {
    char dir[64], ackpath[96];
    pdoc_t docs[NDOCS];
    uint64_t local_known;
    size_t ackoff;
    unsigned long nacks, ninflight, nchecked;
    bool passed;
} crash_t;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

/* Reads the complete ack lines the child appended since the last call. */
static void read_acks(crash_t *c)
{
    FILE *fp = fopen(c->ackpath, "r");
    if (!fp) return; /* killed before it opened the file */
    fseek(fp, (long)c->ackoff, SEEK_SET);
    char line[1024];
    while (fgets(line, sizeof(line), fp)) {
        size_t len = strlen(line);
        if (len == 0 || line[len - 1] != '\n') break; /* cut by the kill: never acknowledged in full */
        c->ackoff += len;
        line[len - 1] = '\0';
        if (line[0] == 'E') fail_msg("child: %s", line + 2);
        if (line[0] == 'L') {
            c->local_known = strtoull(line + 2, NULL, 10);
            c->nacks++;
            continue;
        }
        char id[16], rev[STT_REV_STR_MAX], dg[33];
        int del, off = 0;
        if (line[0] != 'D' || sscanf(line, "D %15s %299s %d %32s %n", id, rev, &del, dg, &off) != 4 || off == 0)
            fail_msg("bad ack line: %s", line);
        int i = atoi(id + 3);
        assert_true(i >= 0 && i < NDOCS);
        pdoc_t *p = &c->docs[i];
        snprintf(p->known, sizeof(p->known), "%s", rev);
        p->fresh = true;
        p->deleted = del;
        snprintf(p->body, sizeof(p->body), "%s", line + off);
        if (strcmp(dg, "=") == 0) {
            if (!p->digest_known[0] || strcmp(p->digest_known, "-") == 0)
                fail_msg("ack of %s: a stub on a rev without a known attachment", rev);
            memcpy(p->digest, p->digest_known, sizeof(p->digest));
        } else {
            snprintf(p->digest, sizeof(p->digest), "%s", dg);
        }
        memcpy(p->digest_known, p->digest, sizeof(p->digest_known));
        p->acked = realloc(p->acked, (p->nacked + 1) * sizeof(*p->acked));
        p->acked[p->nacked++] = strdup(rev);
        c->nacks++;
    }
    fclose(fp);
}

static void check_doc(crash_t *c, stt_reader_t *r, int i, uint32_t revs_limit)
{
    pdoc_t *p = &c->docs[i];
    char id[16];
    doc_id(i, id);
    stt_doc_t d;
    int rc = stt_doc_get(r, id, strlen(id), &d);
    if (rc == STT_E_NOT_FOUND) {
        if (p->known[0]) fail_msg("%s: acknowledged %s, the doc is gone", id, p->known);
        return;
    }
    assert_int_equal(rc, 0);
    int leaves[d.tree.n];
    size_t nleaves = stt_revtree_leaves(&d.tree, leaves);
    if (nleaves != 1) fail_msg("%s: %zu leaves, the child only edits winners", id, nleaves);
    int leaf = leaves[0];
    stt_buf_t lr = STT_BUF_INIT;
    stt_revtree_format(&d.tree, leaf, &lr);
    for (size_t k = 0; k < p->nacked; k++) {
        stt_rev_t rv;
        assert_int_equal(stt_rev_parse(p->acked[k], strlen(p->acked[k]), &rv), 0);
        bool stemmed = rv.gen + revs_limit <= d.tree.nodes[leaf].gen; /* legitimately gone */
        if (!stemmed && stt_revtree_find(&d.tree, rv.gen, rv.id, rv.idlen) < 0)
            fail_msg("%s: acknowledged %s is not in the tree (leaf %s)", id, p->acked[k], lr.base);
    }
    stt_rev_body_t b;
    if (stt_doc_body(&d, leaf, &b) != 0) fail_msg("%s: leaf %s has no body", id, lr.base);
    /* md5 of the leaf's attachment as written (decoded), in hex; "-" without one */
    char dg[33] = "-";
    if (b.natts) {
        stt_buf_t bytes = STT_BUF_INIT;
        if ((rc = stt_att_read_decoded(r, &b.atts[0], &bytes)) != 0)
            fail_msg("%s: leaf %s: attachment cannot be read (%d)", id, lr.base, rc);
        unsigned char md5[16];
        stt_md5(bytes.base, bytes.len, md5);
        hex(md5, dg);
        stt_buf_free(&bytes);
    }
    bool deleted = d.tree.nodes[leaf].flags & STT_REV_DELETED;
    if (p->known[0] && strcmp(lr.base, p->known) == 0) {
        if (p->fresh) {
            /* the last acknowledged rev is the leaf: it is all there */
            if (deleted != p->deleted)
                fail_msg("%s: leaf %s deleted=%d, acknowledged %d", id, lr.base, deleted, p->deleted);
            if (b.jsonlen != strlen(p->body) || memcmp(b.json, p->body, b.jsonlen) != 0)
                fail_msg("%s: leaf %s body %.*s, acknowledged %s", id, lr.base, (int)b.jsonlen, b.json, p->body);
            if (strcmp(dg, p->digest) != 0)
                fail_msg("%s: leaf %s attachment %s, acknowledged %s", id, lr.base, dg, p->digest);
        }
    } else {
        /* the batch in flight at the kill committed without its ack: the leaf is a
         * child of what we know, or a new doc when we know nothing */
        int parent = d.tree.nodes[leaf].parent;
        stt_buf_t pr = STT_BUF_INIT;
        if (parent >= 0) stt_revtree_format(&d.tree, parent, &pr);
        bool ok = p->known[0] ? parent >= 0 && strcmp(pr.base, p->known) == 0 : parent < 0;
        if (!ok)
            fail_msg("%s: leaf %s (parent %s), but the last known rev is %s", id, lr.base,
                     parent >= 0 ? pr.base : "none", p->known[0] ? p->known : "none");
        stt_buf_free(&pr);
        c->ninflight++;
        snprintf(p->known, sizeof(p->known), "%s", lr.base);
    }
    snprintf(p->digest_known, sizeof(p->digest_known), "%s", dg);
    p->fresh = false;
    c->nchecked++;
    stt_rev_body_free(&b);
    stt_buf_free(&lr);
    stt_doc_free(&d);
}

static void check_store(crash_t *c)
{
    stt_store_opts_t o;
    stt_store_opts_default(&o);
    o.paranoid = true;
    stt_store_t *s;
    char err[1024];
    if (stt_store_open(c->dir, &o, &s, err, sizeof(err)) != 0) fail_msg("reopen after the kill: %s", err);
    stt_db_t *db;
    int rc = stt_db_open(s, DBNAME, strlen(DBNAME), &db);
    if (rc == 0) {
        stt_db_info_t in;
        stt_db_info(db, &in);
        stt_reader_t *r;
        stt_reader_open(db, &r);
        for (int i = 0; i < NDOCS; i++)
            check_doc(c, r, i, in.revs_limit);
        stt_reader_close(r);
        uint64_t lrev = 0;
        rc = stt_local_get(db, LOCAL_ID, strlen(LOCAL_ID), &lrev, NULL);
        if (rc == STT_E_NOT_FOUND && c->local_known)
            fail_msg("local doc gone, acknowledged 0-%llu", (unsigned long long)c->local_known);
        if (rc == 0 && lrev != c->local_known && lrev != c->local_known + 1)
            fail_msg("local doc at 0-%llu, acknowledged 0-%llu", (unsigned long long)lrev,
                     (unsigned long long)c->local_known);
        c->local_known = lrev;
        stt_db_release(db);
    } else {
        assert_int_equal(rc, STT_E_DB_NOT_FOUND);
        if (c->nacks) fail_msg("database %s gone after %lu acknowledged writes", DBNAME, c->nacks);
    }
    err[0] = '\0';
    rc = stt_store_verify(s, NULL, err, sizeof(err));
    stt_store_close(s);
    if (rc) fail_msg("stt_store_verify after a kill: %s", err);
}

static int setup(void **state)
{
    crash_t *c = calloc(1, sizeof(*c));
    if (!c) return -1;
    snprintf(c->dir, sizeof(c->dir), "/tmp/settee-crash-XXXXXX");
    if (!mkdtemp(c->dir)) {
        free(c);
        return -1;
    }
    snprintf(c->ackpath, sizeof(c->ackpath), "%s/acks", c->dir);
    *state = c;
    return 0;
}

/* A failed run leaves its store for settee-check and settee-dump. */
static int teardown(void **state)
{
    crash_t *c = *state;
    if (c->passed)
        nftw(c->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    else
        print_message("    store left in %s (settee-check %s; acks in %s)\n", c->dir, c->dir, c->ackpath);
    for (int i = 0; i < NDOCS; i++) {
        for (size_t k = 0; k < c->docs[i].nacked; k++)
            free(c->docs[i].acked[k]);
        free(c->docs[i].acked);
    }
    free(c);
    return 0;
}

static void test_crash_kill_loop(void **state)
{
    crash_t *c = *state;
    const char *env = getenv("STT_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 10) : 20240607;
    rnd_state = seed;
    double t0 = now_ms(), max_round = 0;
    for (int round = 0; round < KILLS; round++) {
        double r0 = now_ms();
        /* one round in five kills early: in the open, the recovery or the first writes */
        unsigned delay_ms = round % 5 == 0 ? rnd_below(15) : 20 + rnd_below(MAX_DELAY_MS - 20);
        char seedarg[32];
        snprintf(seedarg, sizeof(seedarg), "%llu", (unsigned long long)(seed * 1000 + (uint64_t)round));
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            execl("/proc/self/exe", "test_crash", "--child", c->dir, c->ackpath, seedarg, (char *)NULL);
            _exit(127);
        }
        usleep(delay_ms * 1000);
        kill(pid, SIGKILL);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        read_acks(c);
        if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
            fail_msg("round %d: the child ended by itself (status 0x%x)", round, status);
        check_store(c);
        double dt = now_ms() - r0;
        if (dt > max_round) max_round = dt;
    }
    assert_true(c->nacks >= KILLS); /* the child got somewhere */
    print_message("    %d kills, %lu acknowledged writes, %lu docs committed without their ack, "
                  "%.0f ms (longest round %.0f ms)\n",
                  KILLS, c->nacks, c->ninflight, now_ms() - t0, max_round);
    c->passed = true;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--child") == 0) {
        child_main(argv[2], argv[3], strtoull(argv[4], NULL, 10));
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_crash_kill_loop, setup, teardown),
    };
    if (argc > 1) {
        char filter[256];
        snprintf(filter, sizeof(filter), "*%s*", argv[1]);
        cmocka_set_test_filter(filter);
    }
    return cmocka_run_group_tests_name("crash", tests, NULL, NULL);
}
