/* The store's own figures for /_node/_local/_system: open handles and what LevelDB
 * says it holds in memory. Counters of reads and writes are kept in
 * src/common/stats (bumped where the reads and writes happen). */
#include "store/store_int.h"
#include <leveldb/c.h>
#include <stdlib.h>

void stt_store_stats(stt_store_t *s, stt_store_stats_t *out)
{
    pthread_mutex_lock(&s->lock);
    out->open_dbs = s->ndbs;
    pthread_mutex_unlock(&s->lock);
    out->cache_size = s->o.cache_size;
    out->write_buffer = s->o.write_buffer_size;
    out->leveldb_mem = 0;
    stt__ldb_enter(s);
    char *v = leveldb_property_value(s->ldb, "leveldb.approximate-memory-usage");
    stt__ldb_leave(s);
    if (v) {
        out->leveldb_mem = strtoull(v, NULL, 10);
        leveldb_free(v);
    }
}
