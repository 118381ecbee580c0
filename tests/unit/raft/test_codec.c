/* tests/unit/raft/test_codec.c - the raftpb edge in raft/codec.c. */
#include "tests/unit/raft/check_main.h"

#include "common/mem.h"
#include "raft/raft.h"

#include <string.h>

START_TEST(test_every_message_type_round_trips)
{
    raft_buf *b = raft_buf_new("abc", 3);
    for (int t = 0; t < RAFT_MSG_NTYPES; t++) {
        raft_entry ents[2] = {
            {.term = 5, .index = 10, .type = RAFT_ENTRY_NORMAL, .data = b},
            {.term = 5, .index = 11, .type = RAFT_ENTRY_CONF_CHANGE},
        };
        raft_snapshot snap = {.meta = {.index = 9, .term = 4}, .data = b};
        snap.meta.conf.voters[0] = 1;
        snap.meta.conf.voters[1] = 2;
        snap.meta.conf.n_voters = 2;
        snap.meta.conf.learners[0] = 7;
        snap.meta.conf.n_learners = 1;
        raft_msg m = {.type = (raft_msg_type)t,
                      .to = 2,
                      .from = 1,
                      .term = 5,
                      .log_term = 4,
                      .index = 9,
                      .commit = 8,
                      .reject = t % 2,
                      .transfer = t % 3 == 0,
                      .reject_hint = 3,
                      .context = 0xdeadbeefcafe,
                      .entries = ents,
                      .n_entries = 2,
                      .snapshot = &snap};
        uint8_t *enc;
        size_t n;
        ck_assert_int_eq(raft_msg_encode(&m, &enc, &n), 0);
        raft_msg d;
        ck_assert_int_eq(raft_msg_decode(enc, n, &d), 0);
        metcd_free(enc);
        ck_assert_int_eq(d.type, t);
        ck_assert_uint_eq(d.to, 2);
        ck_assert_uint_eq(d.from, 1);
        ck_assert_uint_eq(d.term, 5);
        ck_assert_uint_eq(d.log_term, 4);
        ck_assert_uint_eq(d.index, 9);
        ck_assert_uint_eq(d.commit, 8);
        ck_assert_int_eq(d.reject, t % 2);
        ck_assert_int_eq(d.transfer, t % 3 == 0);
        ck_assert_uint_eq(d.reject_hint, 3);
        ck_assert_uint_eq(d.context, 0xdeadbeefcafe);
        ck_assert_uint_eq(d.n_entries, 2);
        ck_assert_uint_eq(d.entries[0].index, 10);
        ck_assert_mem_eq(d.entries[0].data->data, "abc", 3);
        ck_assert_int_eq(d.entries[1].type, RAFT_ENTRY_CONF_CHANGE);
        ck_assert_ptr_null(d.entries[1].data);
        ck_assert_ptr_nonnull(d.snapshot);
        ck_assert_uint_eq(d.snapshot->meta.index, 9);
        ck_assert_uint_eq(d.snapshot->meta.term, 4);
        ck_assert_uint_eq(d.snapshot->meta.conf.n_voters, 2);
        ck_assert_uint_eq(d.snapshot->meta.conf.learners[0], 7);
        ck_assert_mem_eq(d.snapshot->data->data, "abc", 3);
        raft_msg_free(&d);
    }
    raft_buf_unref(b);
}
END_TEST

START_TEST(test_malformed_input_is_an_error)
{
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x01};
    raft_msg m;
    ck_assert_int_eq(raft_msg_decode(junk, sizeof(junk), &m), RAFT_EDECODE);
    ck_assert_ptr_null(m.entries);
    /* an unknown message type */
    static const uint8_t bad_type[] = {0x08, 0x63};
    ck_assert_int_eq(raft_msg_decode(bad_type, sizeof(bad_type), &m), RAFT_EDECODE);
    raft_entry e;
    ck_assert_int_eq(raft_entry_decode(junk, sizeof(junk), &e), RAFT_EDECODE);
    raft_conf_change cc;
    ck_assert_int_eq(raft_conf_change_decode(junk, sizeof(junk), &cc), RAFT_EDECODE);
    /* too many voters for RAFT_MAX_NODES */
    raft_snapshot_meta meta = {0};
    uint8_t big[400];
    size_t n = 0;
    big[n++] = 0x0a; /* field 1, conf_state */
    big[n++] = 0;    /* length, patched */
    for (int i = 0; i < RAFT_MAX_NODES + 1; i++) {
        big[n++] = 0x08;
        big[n++] = (uint8_t)(i + 1);
    }
    big[1] = (uint8_t)(n - 2);
    ck_assert_int_eq(raft_snapshot_meta_decode(big, n, &meta), RAFT_EDECODE);
}
END_TEST

START_TEST(test_wal_records_round_trip)
{
    raft_buf *b = raft_buf_new("value", 5);
    raft_entry e = {.term = 7, .index = 42, .type = RAFT_ENTRY_NORMAL, .data = b};
    uint8_t *enc;
    size_t n;
    ck_assert_int_eq(raft_entry_encode(&e, &enc, &n), 0);
    raft_entry d;
    ck_assert_int_eq(raft_entry_decode(enc, n, &d), 0);
    metcd_free(enc);
    ck_assert_uint_eq(d.term, 7);
    ck_assert_uint_eq(d.index, 42);
    ck_assert_mem_eq(d.data->data, "value", 5);
    raft_buf_unref(d.data);
    raft_buf_unref(b);

    raft_hard_state hs = {.term = 3, .vote = 2, .commit = 99}, hd;
    ck_assert_int_eq(raft_hard_state_encode(&hs, &enc, &n), 0);
    ck_assert_int_eq(raft_hard_state_decode(enc, n, &hd), 0);
    metcd_free(enc);
    ck_assert_uint_eq(hd.term, 3);
    ck_assert_uint_eq(hd.vote, 2);
    ck_assert_uint_eq(hd.commit, 99);

    raft_snapshot_meta m = {.index = 100, .term = 6}, md;
    m.conf.voters[0] = 3;
    m.conf.n_voters = 1;
    ck_assert_int_eq(raft_snapshot_meta_encode(&m, &enc, &n), 0);
    ck_assert_int_eq(raft_snapshot_meta_decode(enc, n, &md), 0);
    metcd_free(enc);
    ck_assert_uint_eq(md.index, 100);
    ck_assert_uint_eq(md.term, 6);
    ck_assert_uint_eq(md.conf.n_voters, 1);
    ck_assert_uint_eq(md.conf.voters[0], 3);
}
END_TEST

START_TEST(test_conf_change_round_trips_with_context)
{
    raft_buf *ctx = raft_buf_new("{\"peerURLs\":[]}", 15);
    raft_conf_change cc = {.id = 77, .type = RAFT_CC_ADD_LEARNER, .node_id = 9, .context = ctx}, d;
    uint8_t *enc;
    size_t n;
    ck_assert_int_eq(raft_conf_change_encode(&cc, &enc, &n), 0);
    ck_assert_int_eq(raft_conf_change_decode(enc, n, &d), 0);
    metcd_free(enc);
    ck_assert_uint_eq(d.id, 77);
    ck_assert_int_eq(d.type, RAFT_CC_ADD_LEARNER);
    ck_assert_uint_eq(d.node_id, 9);
    ck_assert_mem_eq(d.context->data, ctx->data, 15);
    raft_buf_unref(d.context);
    raft_buf_unref(ctx);
}
END_TEST

START_TEST(test_decode_unwinds_on_allocation_failure)
{
    raft_buf *b = raft_buf_new("abc", 3);
    raft_entry ents[3] = {{.term = 1, .index = 1, .data = b},
                          {.term = 1, .index = 2, .data = b},
                          {.term = 1, .index = 3, .data = b}};
    raft_snapshot snap = {.meta = {.index = 1}, .data = b};
    raft_msg m = {.type = RAFT_MSG_APP, .entries = ents, .n_entries = 3, .snapshot = &snap};
    uint8_t *enc;
    size_t n;
    ck_assert_int_eq(raft_msg_encode(&m, &enc, &n), 0);
    int failures = 0;
    for (long i = 0; i < 64; i++) {
        metcd_mem_fail_after(i);
        raft_msg d;
        int rc = raft_msg_decode(enc, n, &d);
        metcd_mem_fail_after(-1);
        if (rc == 0) {
            raft_msg_free(&d);
            break;
        }
        ck_assert(rc == RAFT_ENOMEM || rc == RAFT_EDECODE);
        failures++;
    }
    ck_assert_int_gt(failures, 3);
    metcd_free(enc);
    raft_buf_unref(b);
}
END_TEST

START_TEST(test_mutated_wire_bytes_never_crash)
{
    /* Bit flips, truncations and garbage in front of a valid frame: decode
     * either succeeds with a message we can free, or says EDECODE. */
    raft_buf *b = raft_buf_new("payload", 7);
    raft_entry ents[2] = {{.term = 2, .index = 5, .data = b},
                          {.term = 2, .index = 6, .type = RAFT_ENTRY_CONF_CHANGE, .data = b}};
    raft_snapshot snap = {
        .meta = {.index = 4, .term = 1, .conf = {.voters = {1, 2, 3}, .n_voters = 3}}, .data = b};
    raft_msg m = {.type = RAFT_MSG_APP,
                  .to = 2,
                  .from = 1,
                  .term = 2,
                  .index = 4,
                  .entries = ents,
                  .n_entries = 2,
                  .snapshot = &snap};
    uint8_t *enc;
    size_t n;
    ck_assert_int_eq(raft_msg_encode(&m, &enc, &n), 0);
    uint64_t x = 12345;
    size_t ok = 0;
    for (int i = 0; i < 20000; i++) {
        uint8_t buf[512];
        ck_assert_uint_le(n, sizeof(buf));
        memcpy(buf, enc, n);
        size_t len = n;
        for (int k = 0; k < 1 + i % 4; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[x % n] ^= (uint8_t)(1u << ((x >> 8) % 8));
        }
        if (i % 5 == 0)
            len = (size_t)(x % n);
        raft_msg d;
        int rc = raft_msg_decode(buf, len, &d);
        ck_assert(rc == 0 || rc == RAFT_EDECODE);
        if (rc == 0) {
            ok++;
            raft_msg_free(&d);
        } else {
            ck_assert_ptr_null(d.entries);
            ck_assert_ptr_null(d.snapshot);
        }
        raft_conf_change cc;
        if (raft_conf_change_decode(buf, len, &cc) == 0)
            raft_buf_unref(cc.context);
        raft_entry e;
        if (raft_entry_decode(buf, len, &e) == 0)
            raft_buf_unref(e.data);
    }
    ck_assert_uint_gt(ok, 0);
    metcd_free(enc);
    raft_buf_unref(b);
}
END_TEST

RAFT_TEST_MAIN("raft/codec", test_mutated_wire_bytes_never_crash,
               test_every_message_type_round_trips, test_malformed_input_is_an_error,
               test_wal_records_round_trip, test_conf_change_round_trips_with_context,
               test_decode_unwinds_on_allocation_failure)
