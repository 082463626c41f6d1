/* Reads /proc/self/{status,io,fd} and stats a directory's files. Each call opens
 * its files afresh: these back admin endpoints, never the request path. */
#include "src/common/sysinfo.h"
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* Scans "Key:  value" lines of a /proc file; kb: values are in kB. */
static void scan_file(const char *path, const char *const *keys, uint64_t *const *vals, int n, int kb)
{
    FILE *f = fopen(path, "re");
    if (!f) return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        for (int i = 0; i < n; i++) {
            size_t kl = strlen(keys[i]);
            if (strncmp(line, keys[i], kl) || line[kl] != ':') continue;
            uint64_t v = strtoull(line + kl + 1, NULL, 10);
            *vals[i] += kb ? v * 1024 : v;
        }
    }
    fclose(f);
}

uint64_t stt_sysinfo_fds(void)
{
    uint64_t n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d) return 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n ? n - 1 : 0; /* less the directory stream itself */
}

void stt_sysinfo_read(stt_sysinfo_t *o)
{
    memset(o, 0, sizeof *o);
    const char *const kbkeys[] = {"VmRSS", "VmSize", "VmData"};
    uint64_t *const kbvals[] = {&o->rss, &o->vsize, &o->data};
    scan_file("/proc/self/status", kbkeys, kbvals, 3, 1);
    const char *const keys[] = {"Threads", "voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"};
    uint64_t *const vals[] = {&o->threads, &o->ctx_switches, &o->ctx_switches};
    scan_file("/proc/self/status", keys, vals, 3, 0);
    const char *const iokeys[] = {"rchar", "wchar"};
    uint64_t *const iovals[] = {&o->io_read, &o->io_written};
    scan_file("/proc/self/io", iokeys, iovals, 2, 0);
    o->fds_open = stt_sysinfo_fds();
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) o->fds_limit = rl.rlim_cur == RLIM_INFINITY ? 0 : (uint64_t)rl.rlim_cur;
}

static void dir_size(int dfd, int depth, uint64_t *bytes, uint64_t *files)
{
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return;
    }
    for (struct dirent *e; (e = readdir(d));) {
        struct stat st;
        if (e->d_name[0] == '.' || fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        if (S_ISDIR(st.st_mode) && depth > 0) {
            int sub = openat(dfd, e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (sub >= 0) dir_size(sub, depth - 1, bytes, files);
        } else if (S_ISREG(st.st_mode)) {
            *bytes += (uint64_t)st.st_size;
            (*files)++;
        }
    }
    closedir(d);
}

void stt_sysinfo_dir_size(const char *dir, uint64_t *bytes, uint64_t *files)
{
    *bytes = *files = 0;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) dir_size(dfd, 3, bytes, files);
}
