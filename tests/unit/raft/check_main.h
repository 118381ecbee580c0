/* tests/unit/raft/check_main.h - one Check runner per test file. */
#ifndef METCD_TESTS_RAFT_CHECK_MAIN_H
#define METCD_TESTS_RAFT_CHECK_MAIN_H

#include <check.h>
#include <stdlib.h>

#define RAFT_TEST_MAIN(name, ...)                                                                  \
    int main(void)                                                                                 \
    {                                                                                              \
        Suite *s = suite_create(name);                                                             \
        TCase *tc = tcase_create("core");                                                          \
        tcase_set_timeout(tc, 60);                                                                 \
        const TTest *tests[] = {__VA_ARGS__};                                                      \
        for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)                              \
            _tcase_add_test(tc, tests[i], 0, 0, 0, 1);                                             \
        suite_add_tcase(s, tc);                                                                    \
        SRunner *sr = srunner_create(s);                                                           \
        srunner_run_all(sr, CK_NORMAL);                                                            \
        int failed = srunner_ntests_failed(sr);                                                    \
        srunner_free(sr);                                                                          \
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;                                               \
    }

#endif
