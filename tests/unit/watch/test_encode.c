/* tests/unit/watch/test_encode.c - watch_response_encode writes the bytes
 * protobuf-c packs for the same etcdserverpb.WatchResponse, and
 * watch_response_size bounds them, over random responses. */
#include "watch/watch.h"

#include "server/etcdserverpb/rpc.pb-c.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* 0, small, large or negative, as fields take them. */
static int64_t rnd_int(void)
{
    switch (rnd() % 5) {
    case 0:
        return 0;
    case 1:
        return (int64_t)(rnd() % 200);
    case 2:
        return (int64_t)(rnd() >> 2);
    case 3:
        return -1;
    default:
        return (int64_t)(rnd() % 100000);
    }
}

static void rnd_kv(mvcc_kv *kv, uint8_t *store)
{
    memset(kv, 0, sizeof(*kv));
    kv->key_len = rnd() % 4 ? 1 + rnd() % 40 : rnd() % 300;
    kv->value_len = rnd() % 3 ? rnd() % 200 : rnd() % 5000;
    for (size_t i = 0; i < kv->key_len + kv->value_len; i++)
        store[i] = (uint8_t)rnd();
    kv->key = store;
    kv->value = store + kv->key_len;
    kv->create_revision = rnd_int();
    kv->mod_revision = rnd_int();
    kv->version = rnd_int();
    kv->lease = rnd_int();
}

static void to_pb(const mvcc_kv *kv, Mvccpb__KeyValue *out)
{
    mvccpb__key_value__init(out);
    out->key.data = (uint8_t *)kv->key;
    out->key.len = kv->key_len;
    out->value.data = (uint8_t *)kv->value;
    out->value.len = kv->value_len;
    out->create_revision = kv->create_revision;
    out->mod_revision = kv->mod_revision;
    out->version = kv->version;
    out->lease = kv->lease;
}

START_TEST(encode_matches_protobuf_c)
{
    enum { MAXEV = 6 };
    static uint8_t store[2 * MAXEV][5400];
    static uint8_t raw[MAXEV][6000];
    static uint8_t ours[80000], theirs[80000];
    static const char *reasons[] = {"", "mvcc: watcher range is empty",
                                    "mvcc: duplicate watch ID provided on the WatchStream"};
    for (int round = 0; round < 3000; round++) {
        mvcc_kv kvs[2 * MAXEV];
        watch_event evs[MAXEV];
        Mvccpb__KeyValue pkv[2 * MAXEV];
        Mvccpb__Event pev[MAXEV], *pptr[MAXEV];
        size_t n = rnd() % 3 ? rnd() % 3 : rnd() % (MAXEV + 1);
        for (size_t i = 0; i < n; i++) {
            rnd_kv(&kvs[2 * i], store[2 * i]);
            rnd_kv(&kvs[2 * i + 1], store[2 * i + 1]);
            evs[i].type = rnd() % 3 ? MVCC_EVENT_PUT : MVCC_EVENT_DELETE;
            evs[i].kv = &kvs[2 * i];
            evs[i].prev_kv = rnd() % 2 ? &kvs[2 * i + 1] : NULL;
            mvccpb__event__init(&pev[i]);
            pev[i].type = evs[i].type == MVCC_EVENT_DELETE ? MVCCPB__EVENT__EVENT_TYPE__DELETE
                                                           : MVCCPB__EVENT__EVENT_TYPE__PUT;
            to_pb(&kvs[2 * i], &pkv[2 * i]);
            pev[i].kv = &pkv[2 * i];
            if (evs[i].prev_kv) {
                to_pb(&kvs[2 * i + 1], &pkv[2 * i + 1]);
                pev[i].prev_kv = &pkv[2 * i + 1];
            }
            pptr[i] = &pev[i];
            if (rnd() % 2) { /* the store's own encoding, re-emitted */
                size_t len = mvccpb__key_value__pack(&pkv[2 * i], raw[i]);
                kvs[2 * i].raw = raw[i];
                kvs[2 * i].raw_len = len;
            }
        }
        watch_response r = {
            .revision = rnd_int(),
            .watch_id = rnd_int(),
            .created = rnd() % 4 == 0,
            .canceled = rnd() % 4 == 0,
            .compact_revision = rnd() % 4 ? 0 : rnd_int(),
            .cancel_reason = reasons[rnd() % 3],
            .fragment = rnd() % 5 == 0,
            .events = evs,
            .nevents = n,
        };
        watch_header h = {.cluster_id = rnd() % 3 ? rnd() : 0,
                          .member_id = rnd() % 3 ? rnd() : 0,
                          .raft_term = (uint64_t)rnd_int()};
        Etcdserverpb__ResponseHeader ph = ETCDSERVERPB__RESPONSE_HEADER__INIT;
        ph.cluster_id = h.cluster_id;
        ph.member_id = h.member_id;
        ph.revision = r.revision;
        ph.raft_term = h.raft_term;
        Etcdserverpb__WatchResponse pr = ETCDSERVERPB__WATCH_RESPONSE__INIT;
        pr.header = &ph;
        pr.watch_id = r.watch_id;
        pr.created = r.created;
        pr.canceled = r.canceled;
        pr.compact_revision = r.compact_revision;
        pr.cancel_reason = (char *)r.cancel_reason;
        pr.fragment = r.fragment;
        pr.events = pptr;
        pr.n_events = n;
        size_t want = etcdserverpb__watch_response__pack(&pr, theirs);
        size_t bound = watch_response_size(&r);
        ck_assert_uint_le(bound, sizeof ours);
        size_t got = watch_response_encode(&r, &h, ours);
        ck_assert_msg(got == want, "round %d: %zu bytes, protobuf-c %zu", round, got, want);
        ck_assert_msg(memcmp(ours, theirs, got) == 0, "round %d: bytes differ", round);
        ck_assert_uint_le(got, bound);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("watch_encode");
    TCase *tc = tcase_create("encode");
    tcase_add_test(tc, encode_matches_protobuf_c);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
