/* _explain: the plan of a query shown as CouchDB 3.4 shows it (index,
 * normalized selector, opts, index_candidates with their analysis,
 * selector_hints, the mrargs of the key range, covering). */
#include "mango/mango_int.h"

static void write_or(stt_buf_t *b, const stt_json_t *v, const char *absent)
{
    if (v)
        stt_json_write(b, v);
    else
        stt_buf_appends(b, absent);
}

int stt__explain(stt_db_t *db, stt_arena_t *a, const stt__query_t *q, stt__plan_t *plan, stt_buf_t *b,
                 stt_mango_err_t *err)
{
    int rc = stt__plan(db, a, q, plan, err);
    if (rc) return rc;
    const stt__plan_t *p = plan;
    size_t dblen;
    const char *dbn = stt_db_name(db, &dblen);
    stt_buf_appends(b, "{\"dbname\":");
    stt_json_write_str(b, dbn, dblen);
    stt_buf_appends(b, ",\"index\":");
    stt__index_json(b, p->ix);
    stt_buf_appends(b, ",\"partitioned\":false,\"selector\":");
    stt_json_write(b, &p->norm);
    stt_buf_appends(b, ",\"opts\":{\"use_index\":");
    stt_json_write(b, &q->use_index);
    stt_buf_appends(b, ",\"bookmark\":");
    write_or(b, q->bookmark_str, "\"nil\"");
    stt_buf_appendf(b, ",\"limit\":%llu,\"skip\":%llu,\"sort\":{", (unsigned long long)q->limit,
                    (unsigned long long)q->skip);
    for (uint32_t i = 0; i < q->nsort; i++) {
        if (i) stt_buf_appendc(b, ',');
        stt_json_write_str(b, q->sort[i].name, q->sort[i].namelen);
        stt_buf_appends(b, q->desc ? ":\"desc\"" : ":\"asc\"");
    }
    stt_buf_appends(b, "},\"fields\":");
    write_or(b, q->fields_json, "[]");
    stt_buf_appendf(b, ",\"partition\":\"\",\"r\":%llu,\"conflicts\":%s,\"stale\":", (unsigned long long)q->r,
                    q->conflicts ? "true" : "false");
    write_or(b, q->stale, "false");
    stt_buf_appendf(b,
                    ",\"update\":%s,\"stable\":%s,\"execution_stats\":%s,\"allow_fallback\":%s},\"limit\":%llu,"
                    "\"skip\":%llu,\"fields\":",
                    q->update ? "true" : "false", q->stable ? "true" : "false", q->execution_stats ? "true" : "false",
                    q->allow_fallback ? "true" : "false", (unsigned long long)q->limit, (unsigned long long)q->skip);
    write_or(b, q->fields_json, "[]");
    stt_buf_appends(b, ",\"index_candidates\":[");
    stt_buf_append(b, p->candidates.base, p->candidates.len);
    stt_buf_appends(b, "],\"selector_hints\":");
    stt_buf_append(b, p->hints.base, p->hints.len);
    stt_buf_t start = STT_BUF_INIT, end = STT_BUF_INIT;
    stt__plan_keys(p, &start, &end);
    stt_buf_appendf(b,
                    ",\"mrargs\":{\"include_docs\":%s,\"view_type\":\"map\",\"reduce\":false,\"partition\":null,"
                    "\"start_key\":",
                    p->covering ? "false" : "true");
    stt_buf_append(b, p->desc ? end.base : start.base, p->desc ? end.len : start.len);
    stt_buf_appends(b, ",\"end_key\":");
    stt_buf_append(b, p->desc ? start.base : end.base, p->desc ? start.len : end.len);
    stt_buf_appendf(b, ",\"direction\":\"%s\",\"stable\":%s,\"update\":%s,\"conflicts\":%s},\"covering\":%s}",
                    p->desc ? "rev" : "fwd", q->stable ? "true" : "false", q->update ? "true" : "false",
                    q->conflicts ? "true" : "\"undefined\"", p->covering ? "true" : "false");
    stt_buf_free(&start);
    stt_buf_free(&end);
    return 0;
}
