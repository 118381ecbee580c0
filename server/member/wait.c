/* server/member/wait.c - the wait table: proposals parked by request id
 * until their entry is applied, with a deadline (etcd's wait.Wait plus the
 * request timeout of etcdserver/v3_server.go). Bounded: past
 * MAX_PENDING_PROPOSALS new proposals are refused ("too many requests").
 *
 * Every waiter has the same timeout, so registration order is deadline
 * order and a FIFO list serves the sweep. */
#include "server/member/internal.h"

#include "common/mem.h"

#include <time.h>

int64_t member_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t member_request_timeout_ms(const member *m)
{
    /* etcd: 5 s + 2 election timeouts (embed.Config.ReqTimeout) */
    return 5000 + 2 * (uint64_t)m->opt.election_ms;
}

static size_t bucket(uint64_t id)
{
    id ^= id >> 33;
    id *= 0xff51afd7ed558ccdULL;
    id ^= id >> 33;
    return (size_t)(id % WAIT_BUCKETS);
}

waiter *wait_register(member *m, waiter_kind kind, struct rpc_call *call)
{
    if (m->n_waiters >= MAX_PENDING_PROPOSALS)
        return NULL;
    waiter *w = metcd_calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->id = ++m->next_req_id;
    w->kind = kind;
    w->call = call;
    w->deadline_ms = member_now_ms() + (int64_t)member_request_timeout_ms(m);
    size_t b = bucket(w->id);
    w->hnext = m->wait[b];
    m->wait[b] = w;
    w->prev = m->fifo_tail;
    if (m->fifo_tail)
        m->fifo_tail->next = w;
    else
        m->fifo_head = w;
    m->fifo_tail = w;
    m->n_waiters++;
    return w;
}

static void unlink_waiter(member *m, waiter *w)
{
    waiter **pp = &m->wait[bucket(w->id)];
    while (*pp && *pp != w)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = w->hnext;
    if (w->prev)
        w->prev->next = w->next;
    else
        m->fifo_head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        m->fifo_tail = w->prev;
    m->n_waiters--;
}

waiter *wait_take(member *m, uint64_t id)
{
    for (waiter *w = m->wait[bucket(id)]; w; w = w->hnext) {
        if (w->id == id) {
            unlink_waiter(m, w);
            return w;
        }
    }
    return NULL;
}

void wait_forget_call(member *m, struct rpc_call *call)
{
    for (waiter *w = m->fifo_head; w; w = w->next)
        if (w->call == call)
            w->call = NULL;
    for (waiter *w = m->compact_waiters; w; w = w->next)
        if (w->call == call)
            w->call = NULL;
}

void wait_fail(member *m, waiter *w, int err)
{
    if (w->done)
        w->done(m, w->done_arg, err, NULL);
    else if (w->call)
        member_fail_call(w->call, err);
    metcd_free(w);
}

void wait_sweep(member *m, int64_t now_ms)
{
    while (m->fifo_head && m->fifo_head->deadline_ms <= now_ms) {
        waiter *w = m->fifo_head;
        unlink_waiter(m, w);
        wait_fail(m, w, MERR_TIMEOUT);
    }
}

void wait_fail_all(member *m, int err)
{
    while (m->fifo_head) {
        waiter *w = m->fifo_head;
        unlink_waiter(m, w);
        wait_fail(m, w, err);
    }
    while (m->compact_waiters) {
        waiter *w = m->compact_waiters;
        m->compact_waiters = w->next;
        wait_fail(m, w, err);
    }
}
