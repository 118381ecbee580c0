/* tests/unit/server/test_registry.c - server/channelz/registry.c: ids,
 * parents, pagination and the removal rules of channelz (A14: a node asked
 * to go stays while it has children or is referenced from a trace). */
#include "server/channelz/channelz.h"

#include "common/mem.h"

#include <check.h>
#include <netinet/in.h>
#include <string.h>

static struct channelz *cz;

static void setup(void) { ck_assert_int_eq(channelz_new(&cz, 3), 0); }
static void teardown(void) { channelz_free(cz); }

static struct channelz_node *add(enum channelz_kind k, struct channelz_node *parent,
                                 const char *name)
{
    struct channelz_node *n = NULL;
    ck_assert_int_eq(channelz_add(cz, k, parent, name, 1000, &n), 0);
    return n;
}

START_TEST(ids_unique_and_ascending)
{
    struct channelz_node *s = add(CHANNELZ_SERVER, NULL, "s");
    struct channelz_node *c = add(CHANNELZ_CHANNEL, NULL, "c");
    struct channelz_node *sub = add(CHANNELZ_SUBCHANNEL, c, "sub");
    ck_assert_uint_lt(channelz_id(s), channelz_id(c));
    ck_assert_uint_lt(channelz_id(c), channelz_id(sub));
    ck_assert_ptr_eq(channelz_find(cz, CHANNELZ_CHANNEL, channelz_id(c)), c);
    ck_assert_ptr_null(channelz_find(cz, CHANNELZ_SERVER, channelz_id(c))); /* kind checked */
    ck_assert_ptr_eq(channelz_parent(sub), c);
    ck_assert_str_eq(channelz_name(sub), "sub");
}
END_TEST

START_TEST(parents_must_fit)
{
    struct channelz_node *s = add(CHANNELZ_SERVER, NULL, "s");
    struct channelz_node *out;
    ck_assert_int_eq(channelz_add(cz, CHANNELZ_SUBCHANNEL, s, "x", 0, &out), CHANNELZ_ERR_INVAL);
    ck_assert_int_eq(channelz_add(cz, CHANNELZ_CHANNEL, s, "x", 0, &out), CHANNELZ_ERR_INVAL);
    ck_assert_int_eq(channelz_add(cz, CHANNELZ_SOCKET, NULL, "x", 0, &out), CHANNELZ_ERR_INVAL);
    ck_assert_int_eq(channelz_add(cz, CHANNELZ_LISTEN_SOCKET, s, "l", 0, &out), 0);
    ck_assert_ptr_eq(channelz_find(cz, CHANNELZ_SOCKET, channelz_id(out)), out);
    channelz_remove(s);
    /* s stays (it has a child) but takes no new children. */
    ck_assert_int_eq(channelz_add(cz, CHANNELZ_SOCKET, s, "x", 0, &out), CHANNELZ_ERR_INVAL);
}
END_TEST

START_TEST(removal_waits_for_children)
{
    struct channelz_node *c = add(CHANNELZ_CHANNEL, NULL, "c");
    struct channelz_node *sub = add(CHANNELZ_SUBCHANNEL, c, "sub");
    struct channelz_node *sock = add(CHANNELZ_SOCKET, sub, "sock");
    uint64_t cid = channelz_id(c), subid = channelz_id(sub);
    channelz_remove(c);
    ck_assert_ptr_eq(channelz_find(cz, CHANNELZ_CHANNEL, cid), c);
    channelz_remove(sub);
    ck_assert_ptr_eq(channelz_find(cz, CHANNELZ_SUBCHANNEL, subid), sub);
    ck_assert_uint_eq(channelz_count(cz), 3);
    channelz_remove(sock); /* last reference: all three go */
    ck_assert_uint_eq(channelz_count(cz), 0);
    ck_assert_ptr_null(channelz_find(cz, CHANNELZ_CHANNEL, cid));
}
END_TEST

START_TEST(removal_waits_for_trace_references)
{
    struct channelz_node *c = add(CHANNELZ_CHANNEL, NULL, "c");
    struct channelz_node *sub = add(CHANNELZ_SUBCHANNEL, c, "sub");
    ck_assert_int_eq(channelz_trace_parent(sub, CHANNELZ_SEV_INFO, "created", 5), 0);
    size_t n;
    uint64_t logged;
    const struct channelz_event *ev = channelz_events(c, &n, &logged, NULL);
    ck_assert_uint_eq(n, 1);
    ck_assert_ptr_eq(ev[0].ref, sub);
    ck_assert_str_eq(ev[0].description, "created");
    channelz_remove(sub);
    /* Referenced from c's trace: still there. */
    ck_assert_ptr_eq(channelz_find(cz, CHANNELZ_SUBCHANNEL, channelz_id(sub)), sub);
    /* Three more events push the referencing one out (trace bound 3). */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(channelz_trace(c, CHANNELZ_SEV_WARNING, "tick", NULL, 6 + i), 0);
    ev = channelz_events(c, &n, &logged, NULL);
    ck_assert_uint_eq(n, 3);
    ck_assert_uint_eq(logged, 4);
    ck_assert_uint_eq(channelz_count(cz), 1); /* sub is gone */
    channelz_remove(c);
    ck_assert_uint_eq(channelz_count(cz), 0);
}
END_TEST

START_TEST(parent_trace_does_not_pin_forever)
{
    /* Subchannel referenced from its channel's trace: removing both, in
     * either order, frees both. */
    for (int order = 0; order < 2; order++) {
        struct channelz_node *c = add(CHANNELZ_CHANNEL, NULL, "c");
        struct channelz_node *sub = add(CHANNELZ_SUBCHANNEL, c, "sub");
        struct channelz_node *sock = add(CHANNELZ_SOCKET, sub, "sock");
        ck_assert_int_eq(channelz_trace_parent(sub, CHANNELZ_SEV_INFO, "created", 1), 0);
        channelz_remove(sock);
        if (order == 0) {
            channelz_remove(sub);
            ck_assert_uint_eq(channelz_count(cz), 2); /* in c's trace, c alive */
            channelz_remove(c);
        } else {
            channelz_remove(c);
            ck_assert_uint_eq(channelz_count(cz), 2); /* c has a live child */
            channelz_remove(sub);
        }
        ck_assert_uint_eq(channelz_count(cz), 0);
    }
}
END_TEST

START_TEST(trace_off_with_zero)
{
    struct channelz *z;
    ck_assert_int_eq(channelz_new(&z, 0), 0);
    struct channelz_node *c;
    ck_assert_int_eq(channelz_add(z, CHANNELZ_CHANNEL, NULL, "c", 0, &c), 0);
    ck_assert_int_eq(channelz_trace(c, CHANNELZ_SEV_INFO, "x", NULL, 1), 0);
    size_t n;
    channelz_events(c, &n, NULL, NULL);
    ck_assert_uint_eq(n, 0);
    channelz_free(z);
}
END_TEST

START_TEST(pagination)
{
    struct channelz_node *s = add(CHANNELZ_SERVER, NULL, "s");
    struct channelz_node *other = add(CHANNELZ_SERVER, NULL, "o");
    struct channelz_node *socks[120];
    for (int i = 0; i < 120; i++) {
        socks[i] = add(CHANNELZ_SOCKET, s, "sock");
        add(CHANNELZ_SOCKET, other, "noise");
    }
    struct channelz_node *out[60];
    int end;
    /* max 0 means 50 */
    size_t n = channelz_list(cz, CHANNELZ_SOCKET, s, 0, 0, out, &end);
    ck_assert_uint_eq(n, 50);
    ck_assert_int_eq(end, 0);
    for (size_t i = 0; i < n; i++)
        ck_assert_ptr_eq(out[i], socks[i]);
    /* start_id is inclusive */
    n = channelz_list(cz, CHANNELZ_SOCKET, s, channelz_id(socks[100]), 30, out, &end);
    ck_assert_uint_eq(n, 20);
    ck_assert_int_eq(end, 1);
    ck_assert_ptr_eq(out[0], socks[100]);
    /* exactly the rest: end set */
    n = channelz_list(cz, CHANNELZ_SOCKET, s, channelz_id(socks[110]), 10, out, &end);
    ck_assert_uint_eq(n, 10);
    ck_assert_int_eq(end, 1);
    /* a page that stops one short: end clear */
    n = channelz_list(cz, CHANNELZ_SOCKET, s, channelz_id(socks[109]), 10, out, &end);
    ck_assert_uint_eq(n, 10);
    ck_assert_int_eq(end, 0);
    /* removed nodes leave the listing */
    channelz_remove(socks[0]);
    n = channelz_list(cz, CHANNELZ_SOCKET, s, 0, 1, out, &end);
    ck_assert_ptr_eq(out[0], socks[1]);
    n = channelz_list(cz, CHANNELZ_SERVER, NULL, 0, 0, out, &end);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(end, 1);
}
END_TEST

START_TEST(addresses_and_metrics)
{
    struct channelz_node *s = add(CHANNELZ_SERVER, NULL, "s");
    struct channelz_node *so = add(CHANNELZ_SOCKET, s, "so");
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(2379)};
    channelz_set_addrs(so, (struct sockaddr *)&in, sizeof in, NULL, 0);
    socklen_t len;
    const struct sockaddr *sa = channelz_local_addr(so, &len);
    ck_assert_uint_eq(len, sizeof in);
    ck_assert_uint_eq(ntohs(((const struct sockaddr_in *)sa)->sin_port), 2379);
    channelz_remote_addr(so, &len);
    ck_assert_uint_eq(len, 0);
    ck_assert_ptr_null(channelz_calls_of(so));
    ck_assert_ptr_nonnull(channelz_socket_of(so));
    ck_assert_ptr_null(channelz_socket_of(s));
    ck_assert_int_eq(channelz_socket_of(so)->local_window, -1);
}
END_TEST

START_TEST(allocation_failures_unwind)
{
    for (long i = 0; i < 6; i++) {
        struct channelz *z = NULL;
        metcd_mem_fail_after(i);
        int rc = channelz_new(&z, 2);
        struct channelz_node *c = NULL, *sub = NULL;
        if (rc == 0)
            rc = channelz_add(z, CHANNELZ_CHANNEL, NULL, "c", 0, &c);
        if (rc == 0)
            rc = channelz_add(z, CHANNELZ_SUBCHANNEL, c, "s", 0, &sub);
        if (rc == 0)
            rc = channelz_trace_parent(sub, CHANNELZ_SEV_INFO, "x", 0);
        metcd_mem_fail_after(-1);
        ck_assert(rc == 0 || rc == CHANNELZ_ERR_NOMEM);
        channelz_free(z);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("server/registry");
    TCase *tc = tcase_create("registry");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, ids_unique_and_ascending);
    tcase_add_test(tc, parents_must_fit);
    tcase_add_test(tc, removal_waits_for_children);
    tcase_add_test(tc, removal_waits_for_trace_references);
    tcase_add_test(tc, parent_trace_does_not_pin_forever);
    tcase_add_test(tc, trace_off_with_zero);
    tcase_add_test(tc, pagination);
    tcase_add_test(tc, addresses_and_metrics);
    tcase_add_test(tc, allocation_failures_unwind);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
