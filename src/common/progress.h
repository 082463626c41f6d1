/* Progress lines of long-running tools (backup, restore, export, import): bytes and
 * items done, rate and ETA, redrawn at most a few times a second on stderr when it
 * is a terminal, silent otherwise, so that scripts see only errors. */
#ifndef STT_PROGRESS_H
#define STT_PROGRESS_H
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    bool on;
    const char *what, *unit; /* "backup", "keys" */
    uint64_t total;          /* expected bytes, 0 when unknown (no ETA) */
    double start, last;
} stt_progress_t;

void stt_progress_init(stt_progress_t *p, const char *what, const char *unit, uint64_t total);
void stt_progress_update(stt_progress_t *p, uint64_t bytes, uint64_t items);
/* the final line (on a terminal) */
void stt_progress_end(stt_progress_t *p, uint64_t bytes, uint64_t items);

#endif
