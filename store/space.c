/* Disk full: what the store does when the disk cannot take a write, and how it gets back.
 *
 * Two guards, both checked by stt__write_begin before any write:
 *
 *   free space   statvfs of the store directory. Below min_free the store is read-only:
 *                writes answer STT_E_NO_SPACE (507) without reaching LevelDB, so LevelDB
 *                itself rarely meets ENOSPC. The default floor is what LevelDB may need
 *                on top of the data it holds: two memtable flushes (2 x the write buffer)
 *                and the largest compaction it commonly runs, whose outputs exist next to
 *                its inputs until it ends (64 MiB: level 0 into level 1's 10 MiB, or one
 *                2 MiB table with its overlap in the next level). Writes that make room
 *                (deleting a database, sweeping its keys, purge, compaction) still pass.
 *   sticky error LevelDB keeps the first failed write or background compaction as its
 *                "background error" and fails every later write with it, forever. When
 *                a write failed, the store is marked failed; the next write attempt (at
 *                most one a second) reopens LevelDB under the exclusive ldb_lock, which it
 *                takes by trylock only: a reader holding the lock makes it wait for the
 *                next attempt, never the other way round. Reopening needs room for
 *                replaying the log into a table and a new manifest (2 x the write
 *                buffer); it also deletes what a failed compaction left behind, which
 *                LevelDB does not do while its error is set.
 *
 * States:  ok --write fails--> failed --reopen works--> ok
 *          ok --free < min_free--> low --free >= min_free--> ok
 * Reads work in every state: they never wait on either guard. Each change of state is
 * one log line naming the cause (ENOSPC, with the free and needed bytes). */
#include "store/store_int.h"
#include <leveldb/c.h>
#include "src/common/err.h"
#include "src/common/log.h"
#include <errno.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Free bytes for an unprivileged writer, or UINT64_MAX when statvfs fails (no guard
 * then: LevelDB's own error still catches a full disk). */
static uint64_t free_bytes(const stt_store_t *s)
{
    struct statvfs v;
    if (statvfs(s->path, &v) != 0) return UINT64_MAX;
    return (uint64_t)v.f_bavail * (uint64_t)v.f_frsize;
}

static bool is_enospc(const char *lerr)
{
    return lerr && (strstr(lerr, "No space left on device") || strstr(lerr, "Disk quota exceeded"));
}

void stt__space_init(stt_store_t *s)
{
    uint64_t wb = s->o.write_buffer_size ? s->o.write_buffer_size : (16u << 20);
    s->reopen_free = 2 * wb + (1u << 20);
    if (!s->min_free) s->min_free = 2 * wb + (64u << 20);
    uint64_t f = free_bytes(s);
    if (f < s->min_free) {
        atomic_store(&s->low, 1);
        stt_log(STT_LOG_ERROR,
                "store %s: only %llu bytes free, %llu needed (ENOSPC: No space left on device): read-only until "
                "space is freed",
                s->path, (unsigned long long)f, (unsigned long long)s->min_free);
    }
}

int stt__ldb_error(stt_store_t *s, char *lerr, const char *what, bool write)
{
    int rc = is_enospc(lerr) ? STT_E_NO_SPACE : STT_E_IO;
    if (write) {
        int was = 0;
        if (atomic_compare_exchange_strong(&s->failed, &was, rc))
            stt_log(STT_LOG_ERROR, "store %s: %s failed: %s%s; writes answer %s until it is reopened", s->path, what,
                    lerr ? lerr : "unknown error", rc == STT_E_NO_SPACE ? " (ENOSPC)" : "",
                    rc == STT_E_NO_SPACE ? "507 insufficient_storage" : "500");
    } else {
        stt_log(STT_LOG_ERROR, "store %s: %s failed: %s", s->path, what, lerr ? lerr : "unknown error");
    }
    if (lerr) leveldb_free(lerr);
    return rc;
}

/* Closes and opens LevelDB again, which clears its background error. Exclusive ldb_lock
 * by trylock; 0 when the store is writable again. */
static int reopen(stt_store_t *s)
{
    if (pthread_rwlock_trywrlock(&s->ldb_lock) != 0) return -1;
    int rc = -1;
    if (atomic_load(&s->failed) == 0) { /* another thread got there first */
        rc = 0;
        goto exit;
    }
    leveldb_close(s->ldb);
    char *lerr = NULL;
    /* the old handle is gone: keep trying until a handle exists again, so readers
     * never see none (the lock holds them off meanwhile; open fails only for lack
     * of space, which the caller checked) */
    for (int i = 0;; i++) {
        s->ldb = leveldb_open(s->opts, s->path, &lerr);
        if (!lerr) break;
        if (i % 50 == 0) stt_log(STT_LOG_ERROR, "store %s: reopen failed: %s; retrying", s->path, lerr);
        leveldb_free(lerr);
        lerr = NULL;
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&s->failed, 0);
    stt_log(STT_LOG_WARNING, "store %s: reopened after a write failure: writes work again", s->path);
    rc = 0;
exit:
    pthread_rwlock_unlock(&s->ldb_lock);
    return rc;
}

int stt__write_begin(stt_store_t *s, bool freeing)
{
    int failed = atomic_load(&s->failed);
    uint64_t f = 0;
    bool checked = false;
    if (!freeing || failed) {
        f = free_bytes(s);
        checked = true;
        bool low = f < s->min_free;
        if (low != (bool)atomic_exchange(&s->low, low)) {
            if (low)
                stt_log(STT_LOG_ERROR,
                        "store %s: only %llu bytes free, %llu needed (ENOSPC: No space left on device): writes "
                        "answer 507 until space is freed",
                        s->path, (unsigned long long)f, (unsigned long long)s->min_free);
            else
                stt_log(STT_LOG_WARNING, "store %s: %llu bytes free again: writes accepted", s->path,
                        (unsigned long long)f);
        }
    }
    if (failed) {
        /* reopen as soon as it can work, even below the floor: it removes the failed
         * compaction's files, and freeing writes may then go on */
        bool room = checked && f >= s->reopen_free;
        int64_t now = now_ms(), last = atomic_load(&s->last_try);
        if (!room || now - last < 1000 || !atomic_compare_exchange_strong(&s->last_try, &last, now)) return failed;
        if (reopen(s) != 0) return failed;
        /* deletions that stopped half-way resume */
        pthread_mutex_lock(&s->lock);
        s->sweep_pending = 1;
        pthread_cond_broadcast(&s->sweep_cond);
        pthread_mutex_unlock(&s->lock);
    }
    if (!freeing && atomic_load(&s->low)) return STT_E_NO_SPACE;
    return 0;
}
