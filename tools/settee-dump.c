/* settee-dump: prints one database of a settee data dir as JSON lines, through
 * store.h only (as LMDB's mdb_dump is a thin tool over lmdb.h).
 *
 *   settee-dump DATA_DIR DB
 *
 * One line per doc in id order, deleted docs included:
 *   {"id":..,"seq":N,"rev":winner,"deleted":bool,
 *    "leaves":[{"rev":..,"deleted":bool,"body":{..},"attachments":[{"name","content_type",
 *               "revpos","length","digest"}]}],            (winner order)
 *    "tree":[{"rev":..,"parent":rev|null,"deleted":bool}]}   (parents before children)
 * then one line per _local doc: {"local":id,"rev":"0-N","body":{..}}.
 * A body is printed as stored (JSON object text without "_" members); a leaf whose
 * body cannot be read shows "body":null. The server must be stopped.
 *
 * Exit status: 0 done, 1 no such database or a read failed, 2 bad arguments,
 * 3 the store cannot be opened. */
#include "store/store.h"
#include "src/common/err.h"
#include "src/common/json.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: settee-dump DATA_DIR DB\n"
               "  Prints database DB as JSON lines: one per doc (leaves with bodies, rev tree),\n"
               "  then one per _local doc. The server must be stopped.\n"
               "  exit status: 0 done, 1 no such database or a read failed, 2 bad arguments,\n"
               "  3 cannot open the store\n");
}

typedef struct {
    stt_reader_t *r;
    stt_buf_t line, rev;
    int rc;
} dump_t;

static void put_rev(stt_buf_t *b, const stt_revtree_t *t, int node, stt_buf_t *scratch)
{
    stt_buf_reset(scratch);
    stt_revtree_format(t, node, scratch);
    stt_json_write_str(b, scratch->base, scratch->len);
}

static void put_leaf(dump_t *c, const stt_doc_t *d, int node)
{
    stt_buf_t *b = &c->line;
    bool del = (d->tree.nodes[node].flags & STT_REV_DELETED) != 0;
    stt_buf_appends(b, "{\"rev\":");
    put_rev(b, &d->tree, node, &c->rev);
    stt_buf_appendf(b, ",\"deleted\":%s,\"body\":", del ? "true" : "false");
    stt_rev_body_t body;
    if (stt_doc_body(d, node, &body) != 0) {
        stt_buf_appends(b, "null}");
        return;
    }
    stt_buf_append(b, body.json, body.jsonlen);
    if (body.natts) {
        stt_buf_appends(b, ",\"attachments\":[");
        for (size_t i = 0; i < body.natts; i++) {
            const stt_att_t *a = &body.atts[i];
            stt_buf_appends(b, i ? ",{\"name\":" : "{\"name\":");
            stt_json_write_str(b, a->name, a->namelen);
            stt_buf_appends(b, ",\"content_type\":");
            stt_json_write_str(b, a->content_type, a->ctlen);
            stt_buf_appendf(b, ",\"revpos\":%llu,\"length\":%llu,\"digest\":\"", (unsigned long long)a->revpos,
                            (unsigned long long)a->length);
            stt_att_digest_format(a->digest, b);
            stt_buf_appends(b, "\"}");
        }
        stt_buf_appendc(b, ']');
    }
    stt_buf_appendc(b, '}');
    stt_rev_body_free(&body);
}

static int on_doc(void *ctx, const char *id, size_t idlen)
{
    dump_t *c = ctx;
    stt_doc_t d;
    int rc = stt_doc_get(c->r, id, idlen, &d);
    if (rc) {
        c->rc = rc;
        return 1;
    }
    stt_buf_t *b = &c->line;
    stt_buf_reset(b);
    stt_buf_appends(b, "{\"id\":");
    stt_json_write_str(b, id, idlen);
    stt_buf_appendf(b, ",\"seq\":%llu,\"rev\":", (unsigned long long)d.seq);
    if (d.winner >= 0)
        put_rev(b, &d.tree, d.winner, &c->rev);
    else
        stt_buf_appends(b, "null");
    bool del = d.winner >= 0 && (d.tree.nodes[d.winner].flags & STT_REV_DELETED);
    stt_buf_appendf(b, ",\"deleted\":%s,\"leaves\":[", del ? "true" : "false");
    int *leaves = malloc((d.tree.n ? d.tree.n : 1) * sizeof(int));
    if (!leaves) {
        stt_doc_free(&d);
        c->rc = -ENOMEM;
        return 1;
    }
    size_t n = stt_revtree_leaves(&d.tree, leaves);
    for (size_t i = 0; i < n; i++) {
        if (i) stt_buf_appendc(b, ',');
        put_leaf(c, &d, leaves[i]);
    }
    free(leaves);
    stt_buf_appends(b, "],\"tree\":[");
    for (uint32_t i = 0; i < d.tree.n; i++) {
        const stt_rev_node_t *nd = &d.tree.nodes[i];
        stt_buf_appends(b, i ? ",{\"rev\":" : "{\"rev\":");
        put_rev(b, &d.tree, (int)i, &c->rev);
        stt_buf_appends(b, ",\"parent\":");
        if (nd->parent >= 0)
            put_rev(b, &d.tree, nd->parent, &c->rev);
        else
            stt_buf_appends(b, "null");
        stt_buf_appendf(b, ",\"deleted\":%s}", (nd->flags & STT_REV_DELETED) ? "true" : "false");
    }
    stt_buf_appends(b, "]}\n");
    fwrite(b->base, 1, b->len, stdout);
    stt_doc_free(&d);
    return 0;
}

static int on_local(void *ctx, const char *id, size_t idlen, uint64_t rev, const char *body, size_t len)
{
    dump_t *c = ctx;
    stt_buf_t *b = &c->line;
    stt_buf_reset(b);
    stt_buf_appends(b, "{\"local\":");
    stt_json_write_str(b, id, idlen);
    stt_buf_appendf(b, ",\"rev\":\"0-%llu\",\"body\":", (unsigned long long)rev);
    stt_buf_append(b, body, len);
    stt_buf_appends(b, "}\n");
    fwrite(b->base, 1, b->len, stdout);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc != 3 || argv[1][0] == '-' || argv[2][0] == '-') {
        usage(stderr);
        return 2;
    }
    const char *dir = argv[1], *name = argv[2];
    char current[4200];
    snprintf(current, sizeof(current), "%s/store/CURRENT", dir);
    struct stat st;
    if (stat(current, &st) != 0) {
        fprintf(stderr, "settee-dump: %s is not a settee data dir (%s: %s)\n", dir, current, strerror(errno));
        return 2;
    }
    stt_store_opts_t o;
    stt_store_opts_default(&o);
    stt_store_t *s;
    char err[1024];
    if (stt_store_open(dir, &o, &s, err, sizeof(err)) != 0) {
        fprintf(stderr, "settee-dump: %s\n", err);
        return 3;
    }
    int status = 0;
    stt_db_t *db;
    int rc = stt_db_open(s, name, strlen(name), &db);
    if (rc) {
        fprintf(stderr, "settee-dump: database %s: %s\n", name, stt_err_info(rc)->reason);
        stt_store_close(s);
        return 1;
    }
    dump_t c = {.line = STT_BUF_INIT, .rev = STT_BUF_INIT};
    stt_reader_open(db, &c.r);
    rc = stt_doc_ids_scan(c.r, on_doc, &c);
    if (!rc) rc = c.rc;
    if (!rc) {
        stt_range_t all = {0};
        rc = stt_local_scan(db, &all, on_local, &c);
    }
    if (rc) {
        fprintf(stderr, "settee-dump: database %s: read failed: %s\n", name, stt_err_info(rc)->reason);
        status = 1;
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "settee-dump: writing the dump: %s\n", strerror(errno));
        status = 1;
    }
    stt_reader_close(c.r);
    stt_buf_free(&c.line);
    stt_buf_free(&c.rev);
    stt_db_release(db);
    stt_store_close(s);
    return status;
}
