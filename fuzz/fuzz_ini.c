/* The ini dialect (CouchDB's local.ini): parse from a file, read every key, change one
 * with persistence (the in-place rewrite) and read the file back: the changed key must
 * hold its new value and every other key its old one. */
#include "src/common/ini.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[64];

typedef struct {
    stt_ini_t *other;
    int bad;
} cmp_t;

static void count(void *ctx, const char *section, const char *key, const char *value)
{
    (*(size_t *)ctx)++;
}

static void compare(void *ctx, const char *section, const char *key, const char *value)
{
    cmp_t *c = ctx;
    char *v = stt_ini_get(c->other, section, key);
    if (!v || strcmp(v, value) != 0) c->bad = 1;
    free(v);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (!path[0]) snprintf(path, sizeof(path), "/tmp/settee-fuzz-ini.%d", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    fwrite(data, 1, size, f);
    fclose(f);
    stt_ini_t *ini;
    char err[256];
    if (stt_ini_open(path, &ini, err, sizeof(err)) == 0) {
        size_t n = 0;
        stt_ini_each(ini, NULL, count, &n);
        if (stt_ini_set(ini, "fuzz", "key", "a;b = c=d", true, NULL) == 0) {
            stt_ini_t *back;
            if (stt_ini_open(path, &back, err, sizeof(err)) != 0) abort();
            char *v = stt_ini_get(back, "fuzz", "key");
            if (!v || strcmp(v, "a;b = c=d") != 0) abort();
            free(v);
            cmp_t c = {back, 0};
            stt_ini_each(ini, NULL, compare, &c);
            if (c.bad) abort();
            stt_ini_free(back);
        }
        stt_ini_free(ini);
    }
    unlink(path);
    return 0;
}
