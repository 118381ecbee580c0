/* tests/unit/backend/test_crc32c.c - CRC-32C against published vectors
 * (RFC 3720 appendix B.4, and the "123456789" check value of the
 * Castagnoli polynomial), on both the hardware and the software path. */
#include "backend/crc32c.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

static void check_vectors(crc_fn f)
{
    unsigned char buf[32];

    ck_assert_uint_eq(f(0, "123456789", 9), 0xE3069283u);
    ck_assert_uint_eq(f(0, NULL, 0), 0u);
    ck_assert_uint_eq(f(0, "a", 1), 0xC1D04330u);

    memset(buf, 0, sizeof buf); /* RFC 3720 B.4: 32 bytes of zeros */
    ck_assert_uint_eq(f(0, buf, sizeof buf), 0x8A9136AAu);
    memset(buf, 0xff, sizeof buf); /* 32 bytes of ones */
    ck_assert_uint_eq(f(0, buf, sizeof buf), 0x62A8AB43u);
    for (int i = 0; i < 32; i++) /* incrementing */
        buf[i] = (unsigned char)i;
    ck_assert_uint_eq(f(0, buf, sizeof buf), 0x46DD794Eu);
    for (int i = 0; i < 32; i++) /* decrementing */
        buf[i] = (unsigned char)(31 - i);
    ck_assert_uint_eq(f(0, buf, sizeof buf), 0x113FDB5Cu);

    /* An iSCSI SCSI Read (10) command PDU, RFC 3720 B.4. */
    static const unsigned char pdu[48] = {
        0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
        0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    ck_assert_uint_eq(f(0, pdu, sizeof pdu), 0xD9963A56u);
}

START_TEST(test_software_vectors)
{
    check_vectors(backend_crc32c_sw);
}
END_TEST

START_TEST(test_hardware_vectors)
{
    if (!backend_crc32c_hw_available())
        return; /* nothing to test on this CPU; the dispatcher uses software */
    check_vectors(backend_crc32c_hw);
}
END_TEST

START_TEST(test_dispatch_vectors)
{
    check_vectors(backend_crc32c);
}
END_TEST

/* Every length and alignment up to 100 bytes, and chaining at every split,
 * gives the same value on both paths. */
START_TEST(test_paths_agree_and_chain)
{
    unsigned char buf[256];
    unsigned seed = 12345;
    for (size_t i = 0; i < sizeof buf; i++) {
        seed = seed * 1103515245u + 12345u;
        buf[i] = (unsigned char)(seed >> 16);
    }
    for (size_t align = 0; align < 8; align++) {
        for (size_t len = 0; len <= 100; len++) {
            const unsigned char *p = buf + align;
            uint32_t sw = backend_crc32c_sw(0, p, len);
            uint32_t d = backend_crc32c(0, p, len);
            ck_assert_uint_eq(sw, d);
            if (backend_crc32c_hw_available())
                ck_assert_uint_eq(backend_crc32c_hw(0, p, len), sw);
            for (size_t split = 0; split <= len; split += 7) {
                uint32_t c = backend_crc32c_sw(0, p, split);
                ck_assert_uint_eq(backend_crc32c_sw(c, p + split, len - split), sw);
                c = backend_crc32c(0, p, split);
                ck_assert_uint_eq(backend_crc32c(c, p + split, len - split), sw);
            }
        }
    }
}
END_TEST

/* A buffer large enough to run the 8-byte loops for a long time. */
START_TEST(test_large_buffer)
{
    size_t n = 1 << 20;
    unsigned char *buf = malloc(n);
    ck_assert_ptr_nonnull(buf);
    for (size_t i = 0; i < n; i++)
        buf[i] = (unsigned char)(i * 31 + (i >> 8));
    uint32_t sw = backend_crc32c_sw(0, buf, n);
    ck_assert_uint_eq(backend_crc32c(0, buf, n), sw);
    /* flipping one bit changes the value */
    buf[n / 2] ^= 0x10;
    ck_assert_uint_ne(backend_crc32c(0, buf, n), sw);
    free(buf);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("backend/crc32c");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_software_vectors);
    tcase_add_test(tc, test_hardware_vectors);
    tcase_add_test(tc, test_dispatch_vectors);
    tcase_add_test(tc, test_paths_agree_and_chain);
    tcase_add_test(tc, test_large_buffer);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
