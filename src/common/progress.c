#include "src/common/progress.h"
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void stt_progress_init(stt_progress_t *p, const char *what, const char *unit, uint64_t total)
{
    p->on = isatty(2) == 1;
    p->what = what;
    p->unit = unit;
    p->total = total;
    p->start = p->last = now();
}

static void draw(stt_progress_t *p, uint64_t bytes, uint64_t items, double t, const char *end)
{
    double secs = t - p->start, mib = (double)bytes / (1 << 20);
    double rate = secs > 0 ? mib / secs : 0;
    fprintf(stderr, "\r%s: %.1f MiB", p->what, mib);
    if (p->total) fprintf(stderr, " of ~%.1f MiB", (double)p->total / (1 << 20));
    fprintf(stderr, ", %llu %s, %.1f MiB/s", (unsigned long long)items, p->unit, rate);
    if (*end) {
        fprintf(stderr, ", %.1f s\033[K%s", secs, end);
    } else if (p->total && rate > 0) {
        double left = (double)p->total / (1 << 20) - mib;
        fprintf(stderr, ", ETA %.0f s\033[K", left > 0 ? left / rate : 0);
    } else {
        fprintf(stderr, "\033[K");
    }
    fflush(stderr);
}

void stt_progress_update(stt_progress_t *p, uint64_t bytes, uint64_t items)
{
    if (!p->on) return;
    double t = now();
    if (t - p->last < 0.25) return;
    p->last = t;
    draw(p, bytes, items, t, "");
}

void stt_progress_end(stt_progress_t *p, uint64_t bytes, uint64_t items)
{
    if (p->on) draw(p, bytes, items, now(), "\n");
}
