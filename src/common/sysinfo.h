/* What the operating system says about this process and a directory, for
 * /_node/_local/_system and _prometheus (Linux /proc; zeros where unavailable). */
#ifndef STT_SYSINFO_H
#define STT_SYSINFO_H
#include <stdint.h>

typedef struct {
    uint64_t rss, vsize, data;    /* bytes (VmRSS, VmSize, VmData) */
    uint64_t threads;             /* Threads */
    uint64_t ctx_switches;        /* voluntary + nonvoluntary */
    uint64_t io_read, io_written; /* rchar, wchar: bytes through read/write calls, sockets included */
    uint64_t fds_open, fds_limit; /* entries of /proc/self/fd; soft RLIMIT_NOFILE */
} stt_sysinfo_t;

void stt_sysinfo_read(stt_sysinfo_t *out);
/* Number of open file descriptors alone (cheaper than the whole read). */
uint64_t stt_sysinfo_fds(void);
/* Sum of the sizes of the regular files under dir (three levels of subfolders
 * deep, symlinks not followed), and how many there are. */
void stt_sysinfo_dir_size(const char *dir, uint64_t *bytes, uint64_t *files);

#endif
