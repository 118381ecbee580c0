/* tests/unit/server/test_channelz_svc.c - server/rpc/channelz_svc.c: the
 * seven Get methods over a registry, pagination and NOT_FOUND texts,
 * queried with our own client (which registers a channel tree too). */
#include "harness.h"

#include "common/mem.h"
#include "grpc/channelz/v1/channelz.pb-c.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

static struct fixture f;
static struct rpc_client *cl;

static void setup(void)
{
    fixture_setup(&f, NULL);
    char ep[64];
    snprintf(ep, sizeof ep, "127.0.0.1:%u", f.port);
    const char *eps[] = {ep};
    struct rpc_client_config cfg = {.endpoints = eps, .n_endpoints = 1, .channelz = f.cz,
                                    .target = "me"};
    ck_assert_int_eq(rpc_client_new(&cl, f.base, &cfg), 0);
}

static void teardown(void)
{
    rpc_client_free(cl);
    fixture_teardown(&f);
}

static ProtobufCMessage *get(const char *method, const ProtobufCMessage *req,
                             const ProtobufCMessageDescriptor *d, enum rpc_code *code, char **msg)
{
    char path[128];
    snprintf(path, sizeof path, "/grpc.channelz.v1.Channelz/%s", method);
    ProtobufCMessage *resp;
    ck_assert_int_eq(rpc_client_unary_sync(cl, path, req, d, NULL, 0, 1000, &resp, code, msg), 0);
    return resp;
}

#define FREE(m) protobuf_c_message_free_unpacked((ProtobufCMessage *)(m), &metcd_pb_allocator)

START_TEST(top_channels_and_tree)
{
    enum rpc_code code;
    char *msg;
    Grpc__Channelz__V1__GetTopChannelsRequest req = GRPC__CHANNELZ__V1__GET_TOP_CHANNELS_REQUEST__INIT;
    Grpc__Channelz__V1__GetTopChannelsResponse *r = (void *)get(
        "GetTopChannels", &req.base, &grpc__channelz__v1__get_top_channels_response__descriptor,
        &code, &msg);
    ck_assert_int_eq(code, RPC_CODE_OK);
    metcd_free(msg);
    ck_assert_uint_eq(r->n_channel, 1);
    ck_assert(r->end);
    Grpc__Channelz__V1__Channel *ch = r->channel[0];
    ck_assert_str_eq(ch->ref->name, "me");
    ck_assert_str_eq(ch->data->target, "me");
    ck_assert_int_eq(ch->data->state->state, GRPC__CHANNELZ__V1__CHANNEL_CONNECTIVITY_STATE__STATE__READY);
    ck_assert_int_eq(ch->data->calls_started, 1); /* this very call */
    ck_assert_uint_eq(ch->n_subchannel_ref, 1);
    ck_assert_uint_eq(ch->data->trace->n_events, 2);
    ck_assert_int_eq(ch->data->trace->events[1]->child_ref_case,
                     GRPC__CHANNELZ__V1__CHANNEL_TRACE_EVENT__CHILD_REF_SUBCHANNEL_REF);
    int64_t sub_id = ch->subchannel_ref[0]->subchannel_id;
    int64_t ch_id = ch->ref->channel_id;
    FREE(r);
    Grpc__Channelz__V1__GetSubchannelRequest sreq = GRPC__CHANNELZ__V1__GET_SUBCHANNEL_REQUEST__INIT;
    sreq.subchannel_id = sub_id;
    Grpc__Channelz__V1__GetSubchannelResponse *sr = (void *)get(
        "GetSubchannel", &sreq.base, &grpc__channelz__v1__get_subchannel_response__descriptor,
        &code, &msg);
    metcd_free(msg);
    ck_assert_int_eq(code, RPC_CODE_OK);
    ck_assert_uint_eq(sr->subchannel->n_socket_ref, 1);
    int64_t sock_id = sr->subchannel->socket_ref[0]->socket_id;
    FREE(sr);
    Grpc__Channelz__V1__GetSocketRequest kreq = GRPC__CHANNELZ__V1__GET_SOCKET_REQUEST__INIT;
    kreq.socket_id = sock_id;
    Grpc__Channelz__V1__GetSocketResponse *kr = (void *)get(
        "GetSocket", &kreq.base, &grpc__channelz__v1__get_socket_response__descriptor, &code,
        &msg);
    metcd_free(msg);
    ck_assert_int_eq(code, RPC_CODE_OK);
    ck_assert_int_eq(kr->socket->remote->tcpip_address->port, f.port);
    ck_assert_int_ge(kr->socket->data->streams_started, 3);
    FREE(kr);
    Grpc__Channelz__V1__GetChannelRequest creq = GRPC__CHANNELZ__V1__GET_CHANNEL_REQUEST__INIT;
    creq.channel_id = ch_id;
    Grpc__Channelz__V1__GetChannelResponse *cr = (void *)get(
        "GetChannel", &creq.base, &grpc__channelz__v1__get_channel_response__descriptor, &code,
        &msg);
    metcd_free(msg);
    ck_assert_int_eq(cr->channel->data->calls_succeeded, 3);
    FREE(cr);
    creq.channel_id = 424242;
    cr = (void *)get("GetChannel", &creq.base,
                     &grpc__channelz__v1__get_channel_response__descriptor, &code, &msg);
    ck_assert_int_eq(code, RPC_CODE_NOT_FOUND);
    ck_assert_str_eq(msg, "requested channel 424242 not found");
    ck_assert_ptr_null(cr);
    metcd_free(msg);
}
END_TEST

START_TEST(server_sockets_pagination)
{
    enum rpc_code code;
    char *msg;
    Grpc__Channelz__V1__GetServersRequest req = GRPC__CHANNELZ__V1__GET_SERVERS_REQUEST__INIT;
    Grpc__Channelz__V1__GetServersResponse *r = (void *)get(
        "GetServers", &req.base, &grpc__channelz__v1__get_servers_response__descriptor, &code,
        &msg);
    metcd_free(msg);
    ck_assert_uint_eq(r->n_server, 1);
    int64_t sid = r->server[0]->ref->server_id;
    ck_assert_str_eq(r->server[0]->ref->name, "test");
    ck_assert_uint_eq(r->server[0]->n_listen_socket, 1);
    FREE(r);
    /* Two more connections besides the client's. */
    struct raw *a = raw_new(&f), *b = raw_new(&f);
    WAIT_UNTIL(f.base, conns_open(&f) == 3, 2000);
    Grpc__Channelz__V1__GetServerSocketsRequest sreq =
        GRPC__CHANNELZ__V1__GET_SERVER_SOCKETS_REQUEST__INIT;
    sreq.server_id = sid;
    sreq.max_results = 2;
    Grpc__Channelz__V1__GetServerSocketsResponse *sr = (void *)get(
        "GetServerSockets", &sreq.base,
        &grpc__channelz__v1__get_server_sockets_response__descriptor, &code, &msg);
    metcd_free(msg);
    ck_assert_uint_eq(sr->n_socket_ref, 2);
    ck_assert(!sr->end);
    ck_assert_int_lt(sr->socket_ref[0]->socket_id, sr->socket_ref[1]->socket_id);
    sreq.start_socket_id = sr->socket_ref[1]->socket_id + 1;
    FREE(sr);
    sr = (void *)get("GetServerSockets", &sreq.base,
                     &grpc__channelz__v1__get_server_sockets_response__descriptor, &code, &msg);
    metcd_free(msg);
    ck_assert_uint_eq(sr->n_socket_ref, 1);
    ck_assert(sr->end);
    FREE(sr);
    sreq.server_id = 999;
    sr = (void *)get("GetServerSockets", &sreq.base,
                     &grpc__channelz__v1__get_server_sockets_response__descriptor, &code, &msg);
    metcd_free(msg);
    ck_assert_int_eq(code, RPC_CODE_OK);
    ck_assert_uint_eq(sr->n_socket_ref, 0);
    ck_assert(sr->end);
    FREE(sr);
    raw_free(a);
    raw_free(b);
}
END_TEST

START_TEST(not_found_texts)
{
    enum rpc_code code;
    char *msg;
    Grpc__Channelz__V1__GetServerRequest s = GRPC__CHANNELZ__V1__GET_SERVER_REQUEST__INIT;
    s.server_id = 77;
    ck_assert_ptr_null(get("GetServer", &s.base, &grpc__channelz__v1__get_server_response__descriptor,
                           &code, &msg));
    ck_assert_int_eq(code, RPC_CODE_NOT_FOUND);
    ck_assert_str_eq(msg, "requested server 77 not found");
    metcd_free(msg);
    Grpc__Channelz__V1__GetSubchannelRequest sc = GRPC__CHANNELZ__V1__GET_SUBCHANNEL_REQUEST__INIT;
    sc.subchannel_id = 78;
    ck_assert_ptr_null(get("GetSubchannel", &sc.base,
                           &grpc__channelz__v1__get_subchannel_response__descriptor, &code, &msg));
    ck_assert_str_eq(msg, "requested subchannel 78 not found");
    metcd_free(msg);
    Grpc__Channelz__V1__GetSocketRequest so = GRPC__CHANNELZ__V1__GET_SOCKET_REQUEST__INIT;
    so.socket_id = 79;
    ck_assert_ptr_null(get("GetSocket", &so.base,
                           &grpc__channelz__v1__get_socket_response__descriptor, &code, &msg));
    ck_assert_str_eq(msg, "requested socket 79 not found");
    metcd_free(msg);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("server/channelz_svc");
    TCase *tc = tcase_create("channelz_svc");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, top_channels_and_tree);
    tcase_add_test(tc, server_sockets_pagination);
    tcase_add_test(tc, not_found_texts);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
