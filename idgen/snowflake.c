/* idgen/snowflake.c - the snowflake layout and the seed's Generator: the
 * arithmetic of one worker id, with time passed in.
 *
 * An ID is (ms since the epoch) << 22 | worker << 12 | sequence. Within one
 * millisecond the sequence counts 0..4095, so the IDs of one call are
 * consecutive integers. The generator never uses a timestamp above
 * limit_ts (the bound its worker stored) nor at or below one it already
 * used up, and sorts a clock that went back into the seed's three drift
 * buckets. */
#include "idgen/idgen.h"

#define TS_SHIFT (IDGEN_WORKER_BITS + IDGEN_SEQ_BITS)
#define MAX_TS_DELTA ((1LL << IDGEN_TS_BITS) - 1)

int idgen_compose(int64_t time_ms, int64_t epoch_ms, uint32_t worker, uint32_t sequence,
                  uint64_t *id)
{
    if (worker >= IDGEN_MAX_WORKERS || sequence > IDGEN_MAX_SEQ)
        return IDGEN_EINVAL;
    if (time_ms < epoch_ms || time_ms - epoch_ms > MAX_TS_DELTA)
        return IDGEN_EEPOCH;
    *id = ((uint64_t)(time_ms - epoch_ms) << TS_SHIFT) | ((uint64_t)worker << IDGEN_SEQ_BITS) |
          sequence;
    return 0;
}

int idgen_decode(uint64_t id, int64_t epoch_ms, idgen_decoded *out)
{
    if (id >> 63)
        return IDGEN_EINVAL;
    out->time_ms = (int64_t)(id >> TS_SHIFT) + epoch_ms;
    out->worker = (uint32_t)((id >> IDGEN_SEQ_BITS) & (IDGEN_MAX_WORKERS - 1));
    out->sequence = (uint32_t)(id & IDGEN_MAX_SEQ);
    return 0;
}

void idgen_gen_init(idgen_gen *g, int64_t epoch_ms, uint32_t worker_id, int64_t block_ms,
                    int64_t error_ms)
{
    g->epoch_ms = epoch_ms;
    g->worker_id = worker_id;
    g->last_ts = 0;
    g->seq = IDGEN_MAX_SEQ;
    g->limit_ts = INT64_MIN;
    g->max_drift_block_ms = block_ms;
    g->max_drift_error_ms = error_ms;
}

int64_t idgen_gen_last_ts(const idgen_gen *g)
{
    return g->last_ts;
}

void idgen_gen_set_last_ts(idgen_gen *g, int64_t ts)
{
    if (ts > g->last_ts) {
        g->last_ts = ts;
        g->seq = IDGEN_MAX_SEQ; /* used up: the next ID comes after it */
    }
}

int idgen_gen_next(idgen_gen *g, int64_t now_ms, uint64_t count, idgen_range *out, int64_t *wait_ms)
{
    *wait_ms = 0;
    if (count == 0)
        return IDGEN_EINVAL;
    if (now_ms < g->epoch_ms || now_ms - g->epoch_ms > MAX_TS_DELTA)
        return IDGEN_EEPOCH;
    if (now_ms < g->last_ts) {
        int64_t drift = g->last_ts - now_ms;
        if (g->max_drift_block_ms >= 0 && drift <= g->max_drift_block_ms) {
            *wait_ms = drift;
            return IDGEN_EWAIT;
        }
        return drift <= g->max_drift_error_ms ? IDGEN_EDRIFT : IDGEN_EDRIFT_LEAVE;
    }
    if (now_ms > g->limit_ts)
        return IDGEN_ENOT_READY;
    uint32_t first = 0;
    if (now_ms == g->last_ts) {
        if (g->seq >= IDGEN_MAX_SEQ) {
            *wait_ms = 1;
            return IDGEN_EWAIT;
        }
        first = g->seq + 1;
    }
    uint64_t room = (uint64_t)IDGEN_MAX_SEQ - first + 1;
    uint64_t n = count < room ? count : room;
    int rc = idgen_compose(now_ms, g->epoch_ms, g->worker_id, first, &out->start);
    if (rc)
        return rc;
    out->count = n;
    g->last_ts = now_ms;
    g->seq = first + (uint32_t)n - 1;
    return 0;
}
