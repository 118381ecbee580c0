/* KeyValue codec: the zero-copy decoder agrees with protobuf-c's. */
#include "mvcc/internal.h"
#include "common/mem.h"
#include "mvcc/mvccpb/kv.pb-c.h"
#include "util.h"

START_TEST(test_roundtrip_against_protobuf_c)
{
    uint8_t *buf = NULL;
    size_t cap = 0, len;
    int64_t vals[] = {0, 1, 127, 128, 300, 1LL << 40, INT64_MAX, -1};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        ck_assert_int_eq(kv_encode(&buf, &cap, S("key"), S("value"), vals[i], vals[i] ^ 1,
                                   vals[i] ^ 0x55, vals[i] ^ 7, &len), 0);
        mvcc_kv kv;
        ck_assert_int_eq(kv_decode(buf, len, &kv), 0);
        Mvccpb__KeyValue *pb = mvccpb__key_value__unpack(NULL, len, buf);
        ck_assert_ptr_nonnull(pb);
        ck_assert_int_eq(kv.create_revision, pb->create_revision);
        ck_assert_int_eq(kv.mod_revision, pb->mod_revision);
        ck_assert_int_eq(kv.version, pb->version);
        ck_assert_int_eq(kv.lease, pb->lease);
        ck_assert_uint_eq(kv.key_len, pb->key.len);
        ck_assert_int_eq(memcmp(kv.key, pb->key.data, kv.key_len), 0);
        ck_assert_uint_eq(kv.value_len, pb->value.len);
        ck_assert_int_eq(memcmp(kv.value, pb->value.data, kv.value_len), 0);
        ck_assert_ptr_eq(kv.raw, buf);
        mvccpb__key_value__free_unpacked(pb, NULL);
    }
    metcd_free(buf);
}
END_TEST

START_TEST(test_unknown_fields_skipped_and_garbage_rejected)
{
    /* field 1 "k", unknown field 9 (varint), unknown field 10 (bytes),
     * unknown fixed64 field 11, field 3 = 5 */
    const uint8_t in[] = {0x0a, 1, 'k', 0x48, 0x96, 0x01, 0x52, 2, 'x', 'y',
                          0x59, 1, 2, 3, 4, 5, 6, 7, 8, 0x18, 5};
    mvcc_kv kv;
    ck_assert_int_eq(kv_decode(in, sizeof(in), &kv), 0);
    ck_assert_uint_eq(kv.key_len, 1);
    ck_assert_int_eq(kv.mod_revision, 5);
    const uint8_t trunc[] = {0x0a, 5, 'k'};
    ck_assert_int_eq(kv_decode(trunc, sizeof(trunc), &kv), MVCC_ECORRUPT);
    const uint8_t badwt[] = {0x0f};
    ck_assert_int_eq(kv_decode(badwt, sizeof(badwt), &kv), MVCC_ECORRUPT);
    const uint8_t longvarint[] = {0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    ck_assert_int_eq(kv_decode(longvarint, sizeof(longvarint), &kv), MVCC_ECORRUPT);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mvcc/kv_codec");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_roundtrip_against_protobuf_c);
    tcase_add_test(tc, test_unknown_fields_skipped_and_garbage_rejected);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
