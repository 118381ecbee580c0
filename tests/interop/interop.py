#!/usr/bin/python3
"""tests/interop/interop.py MODE SERVER_BIN PROTO_DIR GRPC_PROTO_DIR

Interop checks of server/rpc driven by a client that is not ours: Debian's
python3-grpcio, with stubs generated at test time by python3-grpc-tools from
tests/interop/echo.proto and grpc-proto's health and channelz protos.
MODE is one of echo, health, channelz, http1. Starts echo_server on a free
loopback port and stops it at the end. Exits non-zero on the first failure.
"""
import http.client
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time

MODE, SERVER, PROTO_DIR, GRPC_PROTO_DIR = sys.argv[1:5]
os.environ["no_proxy"] = "*"
os.environ.pop("http_proxy", None)
os.environ.pop("https_proxy", None)

import grpc  # noqa: E402
from grpc_tools import protoc  # noqa: E402

GEN = tempfile.mkdtemp(prefix="metcd-interop-")
# grpc-proto's files live under grpc/..., which would shadow the grpcio
# package once generated: copy them flat (the proto package, hence the
# wire names, stays grpc.health.v1 / grpc.channelz.v1).
FLAT = os.path.join(GEN, "proto")
os.mkdir(FLAT)
for rel in ("grpc/health/v1/health.proto", "grpc/channelz/v1/channelz.proto"):
    with open(os.path.join(GRPC_PROTO_DIR, rel)) as src, \
            open(os.path.join(FLAT, os.path.basename(rel)), "w") as dst:
        dst.write(src.read())
INCLUDES = [f"-I{PROTO_DIR}", f"-I{FLAT}"]
for d in (os.path.join(os.path.dirname(protoc.__file__), "_proto"), "/usr/include"):
    if os.path.exists(os.path.join(d, "google/protobuf/any.proto")):
        INCLUDES.append(f"-I{d}")
        break
rc = protoc.main(["protoc"] + INCLUDES + [f"--python_out={GEN}", f"--grpc_python_out={GEN}",
                 "echo.proto", "health.proto", "channelz.proto"])
if rc != 0:
    sys.exit(f"protoc failed: {rc}")
sys.path.insert(0, GEN)

import echo_pb2 as pb  # noqa: E402
import echo_pb2_grpc as pb_grpc  # noqa: E402
import health_pb2  # noqa: E402
import health_pb2_grpc  # noqa: E402
import channelz_pb2  # noqa: E402
import channelz_pb2_grpc  # noqa: E402

checks = 0


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        raise AssertionError(what)


def expect_error(fn, code, details=None):
    try:
        fn()
    except grpc.RpcError as e:
        check(e.code() == code, f"code {e.code()} != {code} ({e.details()})")
        if details is not None:
            check(e.details() == details, f"details {e.details()!r} != {details!r}")
        return e
    raise AssertionError(f"expected {code}")


def start_server():
    p = subprocess.Popen([SERVER, "127.0.0.1", "--stdin"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if not line.startswith("PORT "):
        p.kill()
        sys.exit(f"server did not start: {line!r}")
    return p, int(line.split()[1])


def channel(port):
    return grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.enable_http_proxy", 0),
                                                                   ("grpc.use_local_subchannel_pool", 1)])


def test_echo(port):
    ch = channel(port)
    stub = pb_grpc.EchoStub(ch)
    # unary echo with metadata
    r = stub.Unary(pb.EchoRequest(message="hello", payload=b"\x00\x01\xff"),
                   metadata=[("token", "secret-token")], timeout=5)
    check(r.message == "hello", "unary message")
    check(r.payload == b"\x00\x01\xff", "unary payload")
    check(r.token == "secret-token", "metadata token visible to the handler")
    # empty message (zero-length gRPC message both ways)
    r = stub.Unary(pb.EchoRequest(), timeout=5)
    check(r == pb.EchoResponse(), "empty request gives empty response")
    # late answer (handler answers from a timer)
    r = stub.Unary(pb.EchoRequest(message="late", delay_ms=50), timeout=5)
    check(r.message == "late", "asynchronous answer")
    # status codes and percent-encoded messages
    expect_error(lambda: stub.Unary(pb.EchoRequest(
        message="etcdserver: requested lease not found", status=5), timeout=5),
        grpc.StatusCode.NOT_FOUND, "etcdserver: requested lease not found")
    expect_error(lambda: stub.Unary(pb.EchoRequest(message="100% ünïcödé\nline", status=11),
                                    timeout=5),
                 grpc.StatusCode.OUT_OF_RANGE, "100% ünïcödé\nline")
    # deadline
    expect_error(lambda: stub.Unary(pb.EchoRequest(message="slow", delay_ms=3000), timeout=0.2),
                 grpc.StatusCode.DEADLINE_EXCEEDED)
    # unknown method / service
    bad = ch.unary_unary("/metcd.test.Echo/Nope", request_serializer=lambda x: x,
                         response_deserializer=lambda x: x)
    expect_error(lambda: bad(b"", timeout=5), grpc.StatusCode.UNIMPLEMENTED,
                 "unknown method Nope for service metcd.test.Echo")
    bad = ch.unary_unary("/foo.Bar/Baz", request_serializer=lambda x: x,
                         response_deserializer=lambda x: x)
    expect_error(lambda: bad(b"", timeout=5), grpc.StatusCode.UNIMPLEMENTED,
                 "unknown service foo.Bar")
    # undecodable request -> INTERNAL
    raw = ch.unary_unary("/metcd.test.Echo/Unary", request_serializer=lambda x: x,
                         response_deserializer=lambda x: x)
    expect_error(lambda: raw(b"\x0a\x05ab", timeout=5), grpc.StatusCode.INTERNAL)
    # oversize request (server limit 1 MiB) -> RESOURCE_EXHAUSTED
    big = pb.EchoRequest(payload=b"x" * (1024 * 1024 + 10))
    expect_error(lambda: stub.Unary(big, timeout=5), grpc.StatusCode.RESOURCE_EXHAUSTED,
                 "grpc: received message larger than max (%d vs. 1048576)" % big.ByteSize())
    # compression refused cleanly
    expect_error(lambda: stub.Unary(pb.EchoRequest(message="z" * 100), timeout=5,
                                    compression=grpc.Compression.Gzip),
                 grpc.StatusCode.UNIMPLEMENTED,
                 'grpc: Decompressor is not installed for grpc-encoding "gzip"')
    # large message split over many DATA frames both ways
    r = stub.Unary(pb.EchoRequest(payload=bytes(range(256)) * 3000), timeout=5)
    check(r.payload == bytes(range(256)) * 3000, "large payload round trip")
    # server streaming with backpressure (more than the stream queue bound)
    got = [m.index for m in stub.ServerStream(pb.EchoRequest(message="s", count=2000,
                                                             payload=b"p" * 1000), timeout=10)]
    check(got == list(range(2000)), "server stream order and count")
    got = list(stub.ServerStream(pb.EchoRequest(count=0), timeout=5))
    check(got == [], "empty server stream")
    # client streaming
    r = stub.ClientStream(iter([pb.EchoRequest(message=m) for m in ("a", "b", "c")]), timeout=5)
    check(r.message == "abc" and r.index == 3, "client stream")
    # bidi: strict ping-pong proves the stream stays open both ways
    q = queue.Queue()

    def reqs():
        for i in range(50):
            yield pb.EchoRequest(message=f"m{i}")
            q.get(timeout=5)

    n = 0
    for resp in stub.Bidi(reqs(), timeout=10):
        check(resp.message == f"m{n}" and resp.index == n, "bidi echo in order")
        n += 1
        q.put(1)
    check(n == 50, "bidi count")
    # bidi error status mid-stream
    expect_error(lambda: list(stub.Bidi(iter([pb.EchoRequest(message="x"),
                                              pb.EchoRequest(message="stop", status=10)]),
                                        timeout=5)),
                 grpc.StatusCode.ABORTED, "stop")
    # cancellation mid-stream, then the connection still serves
    it = stub.ServerStream(pb.EchoRequest(count=100000, payload=b"c" * 100), timeout=10)
    for i, m in enumerate(it):
        if i == 10:
            it.cancel()
            break
    r = stub.Unary(pb.EchoRequest(message="after-cancel"), timeout=5)
    check(r.message == "after-cancel", "serves after a cancelled stream")
    # concurrency: 64 calls in flight
    futs = [stub.Unary.future(pb.EchoRequest(message=str(i), delay_ms=i % 5), timeout=5)
            for i in range(64)]
    check([f.result().message for f in futs] == [str(i) for i in range(64)], "64 in flight")
    ch.close()


def test_health(port):
    ch = channel(port)
    stub = health_pb2_grpc.HealthStub(ch)
    S = health_pb2.HealthCheckResponse
    r = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    check(r.status == S.SERVING, "server as a whole SERVING")
    r = stub.Check(health_pb2.HealthCheckRequest(service="metcd.test.Echo"), timeout=5)
    check(r.status == S.SERVING, "service SERVING")
    r = stub.Check(health_pb2.HealthCheckRequest(service="notserving"), timeout=5)
    check(r.status == S.NOT_SERVING, "NOT_SERVING")
    check(r.ListFields() == [("status", S.NOT_SERVING)] or
          [f.name for f, _ in r.ListFields()] == ["status"], "only status set")
    expect_error(lambda: stub.Check(health_pb2.HealthCheckRequest(service="nope"), timeout=5),
                 grpc.StatusCode.NOT_FOUND, "unknown service")
    expect_error(lambda: next(stub.Watch(health_pb2.HealthCheckRequest(), timeout=5)),
                 grpc.StatusCode.UNIMPLEMENTED,
                 "unknown method Watch for service grpc.health.v1.Health")
    ch.close()


def ts_recent(ts):
    now = time.time()
    return ts.seconds > 0 and abs(now - (ts.seconds + ts.nanos / 1e9)) < 60


def test_channelz(port):
    # Three connections, each with known calls.
    chans = [channel(port) for _ in range(3)]
    for c in chans:
        pb_grpc.EchoStub(c).Unary(pb.EchoRequest(message="x"), timeout=5)
    main = chans[0]
    stub = pb_grpc.EchoStub(main)
    stub.Unary(pb.EchoRequest(message="y"), timeout=5)
    stub.Unary(pb.EchoRequest(message="z"), timeout=5)
    expect_error(lambda: stub.Unary(pb.EchoRequest(message="no", status=9), timeout=5),
                 grpc.StatusCode.FAILED_PRECONDITION, "no")
    # 6 calls so far: 5 succeeded, 1 failed.
    cz = channelz_pb2_grpc.ChannelzStub(main)
    servers = cz.GetServers(channelz_pb2.GetServersRequest(start_server_id=0), timeout=5)
    check(servers.end, "GetServers end")
    check(len(servers.server) == 1, "one server")
    s = servers.server[0]
    check(s.ref.name == "echo-server", "server ref name")
    check(s.ref.server_id >= 1, "server id")
    check(s.data.calls_started == 7, f"calls_started {s.data.calls_started} (6 + this one)")
    check(s.data.calls_succeeded == 5, f"calls_succeeded {s.data.calls_succeeded}")
    check(s.data.calls_failed == 1, f"calls_failed {s.data.calls_failed}")
    check(ts_recent(s.data.last_call_started_timestamp), "last call started timestamp")
    check(len(s.listen_socket) == 1, "one listen socket")
    # GetServer matches, and counts itself as started
    one = cz.GetServer(channelz_pb2.GetServerRequest(server_id=s.ref.server_id), timeout=5)
    check(one.server.ref == s.ref, "GetServer ref")
    check(one.server.data.calls_started == 8, "GetServer calls_started")
    check(one.server.data.calls_succeeded == 6, "GetServer counts GetServers as succeeded")
    expect_error(lambda: cz.GetServer(channelz_pb2.GetServerRequest(server_id=987654),
                                      timeout=5),
                 grpc.StatusCode.NOT_FOUND, "requested server 987654 not found")
    # pagination over start_server_id beyond the server
    none = cz.GetServers(channelz_pb2.GetServersRequest(start_server_id=s.ref.server_id + 1),
                         timeout=5)
    check(len(none.server) == 0 and none.end, "GetServers past the last id")
    # the listen socket
    ls = cz.GetSocket(channelz_pb2.GetSocketRequest(socket_id=s.listen_socket[0].socket_id),
                      timeout=5).socket
    check(ls.ref.socket_id == s.listen_socket[0].socket_id, "listen socket ref")
    check(ls.local.tcpip_address.ip_address == bytes([127, 0, 0, 1]), "listen ip")
    check(ls.local.tcpip_address.port == port, "listen port")
    # server sockets: three connections, paginated one at a time
    ids = []
    start = 0
    for page in range(10):
        r = cz.GetServerSockets(channelz_pb2.GetServerSocketsRequest(
            server_id=s.ref.server_id, start_socket_id=start, max_results=1), timeout=5)
        check(len(r.socket_ref) == 1, "one socket per page")
        ids.append(r.socket_ref[0].socket_id)
        start = r.socket_ref[0].socket_id + 1
        if r.end:
            break
    check(len(ids) == 3, f"three server sockets, got {ids}")
    check(ids == sorted(ids) and len(set(ids)) == 3, "ascending unique ids")
    all_ = cz.GetServerSockets(channelz_pb2.GetServerSocketsRequest(server_id=s.ref.server_id),
                               timeout=5)
    check([x.socket_id for x in all_.socket_ref] == ids and all_.end, "max_results 0 means 50")
    # find the main connection's socket: the one with the most streams
    socks = [cz.GetSocket(channelz_pb2.GetSocketRequest(socket_id=i), timeout=5).socket
             for i in ids]
    for so in socks:
        check(so.local.tcpip_address.ip_address == bytes([127, 0, 0, 1]), "local ip")
        check(so.local.tcpip_address.port == port, "local port is the server port")
        check(so.remote.tcpip_address.ip_address == bytes([127, 0, 0, 1]), "remote ip")
        check(so.remote.tcpip_address.port > 0, "remote port")
        check(so.data.HasField("local_flow_control_window"), "local window")
        check(so.data.HasField("remote_flow_control_window"), "remote window")
    busiest = max(socks, key=lambda so: so.data.streams_started)
    d = busiest.data
    # main: 4 echo calls, GetServers, GetServer x2, GetSocket (listen), pages, ...
    check(d.streams_started >= 8, f"streams_started {d.streams_started}")
    check(d.messages_received >= 8, f"messages_received {d.messages_received}")
    # Streams end with END_STREAM whatever their status (the failed call
    # included): all succeeded but the GetSocket in flight while it was read.
    check(d.streams_failed == 0, f"streams_failed {d.streams_failed}")
    check(d.streams_succeeded == d.streams_started - 1,
          f"streams_succeeded {d.streams_succeeded} of {d.streams_started}")
    check(ts_recent(d.last_message_received_timestamp), "last message received")
    check(ts_recent(d.last_message_sent_timestamp), "last message sent")
    check(ts_recent(d.last_remote_stream_created_timestamp), "last remote stream")
    others = [so for so in socks if so is not busiest]
    for so in others:
        check(so.data.streams_started == 1, "other connections: one stream each")
        check(so.data.streams_succeeded == 1, "other connections: one success each")
        check(so.data.messages_sent == 1 and so.data.messages_received == 1, "1 msg each way")
    expect_error(lambda: cz.GetSocket(channelz_pb2.GetSocketRequest(socket_id=987654),
                                      timeout=5),
                 grpc.StatusCode.NOT_FOUND, "requested socket 987654 not found")
    # No channels on a server-only process.
    tc = cz.GetTopChannels(channelz_pb2.GetTopChannelsRequest(start_channel_id=0), timeout=5)
    check(len(tc.channel) == 0 and tc.end, "no top channels")
    expect_error(lambda: cz.GetChannel(channelz_pb2.GetChannelRequest(channel_id=1), timeout=5),
                 grpc.StatusCode.NOT_FOUND, "requested channel 1 not found")
    expect_error(lambda: cz.GetSubchannel(channelz_pb2.GetSubchannelRequest(subchannel_id=1),
                                          timeout=5),
                 grpc.StatusCode.NOT_FOUND, "requested subchannel 1 not found")
    # Closing a connection removes its socket.
    for c in chans[1:]:
        c.close()
    deadline = time.time() + 5
    while time.time() < deadline:
        r = cz.GetServerSockets(channelz_pb2.GetServerSocketsRequest(server_id=s.ref.server_id),
                                timeout=5)
        if len(r.socket_ref) == 1:
            break
        time.sleep(0.05)
    check(len(r.socket_ref) == 1, "closed connections leave channelz")
    main.close()


def test_http1(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", "/hello?x=1")
    r = c.getresponse()
    body = r.read()
    check(r.status == 200, "GET /hello 200")
    check(r.getheader("Content-Type") == "application/json", "content type")
    check(body == b'{"method":"GET","path":"/hello","query":"x=1"}', f"body {body!r}")
    # keep-alive: second request on the same connection, with a body
    c.request("POST", "/hello", body=b"abc")
    r = c.getresponse()
    check(r.status == 200 and b'"method":"POST"' in r.read(), "POST on a kept-alive connection")
    c.request("GET", "/nope")
    r = c.getresponse()
    check(r.status == 404 and r.read() == b"404 page not found\n", "404")
    c.close()
    # HTTP/1.1 and gRPC on the same port
    ch = channel(port)
    check(pb_grpc.EchoStub(ch).Unary(pb.EchoRequest(message="mix"), timeout=5).message == "mix",
          "gRPC next to HTTP/1.1 on one port")
    ch.close()


def test_client():
    """Our client (echo_client) against a python3-grpcio server."""
    from concurrent import futures
    import socket

    class Echo(pb_grpc.EchoServicer):
        def Unary(self, req, ctx):
            if req.delay_ms:
                time.sleep(req.delay_ms / 1000)
            if req.status:
                code = [c for c in grpc.StatusCode if c.value[0] == req.status][0]
                ctx.abort(code, req.message)
            md = dict(ctx.invocation_metadata())
            return pb.EchoResponse(message=req.message, payload=req.payload,
                                   token=md.get("token", ""))

        def ServerStream(self, req, ctx):
            for i in range(req.count):
                yield pb.EchoResponse(message=req.message, index=i)

        def Bidi(self, reqs, ctx):
            for i, r in enumerate(reqs):
                yield pb.EchoResponse(message=r.message, index=i)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    pb_grpc.add_EchoServicer_to_server(Echo(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = s.getsockname()[1]
    s.close()
    client_bin = os.path.join(os.path.dirname(SERVER), "echo_client")
    try:
        r = subprocess.run([client_bin, str(port), str(dead)], capture_output=True, text=True,
                           timeout=30)
    finally:
        server.stop(0)
    sys.stdout.write(r.stdout)
    sys.stderr.write(r.stderr)
    check(r.returncode == 0, f"echo_client exit {r.returncode}")


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def test_etcdctl(port):
    """etcdctl 3.4 (grpc-go client) against our server: the transport works
    and our UNIMPLEMENTED reaches it in grpc-go's words."""
    exe = shutil.which("etcdctl")
    if not exe:
        print("interop etcdctl: etcdctl not installed, skipped")
        sys.exit(77)
    env = dict(os.environ, ETCDCTL_API="3")
    r = subprocess.run([exe, f"--endpoints=127.0.0.1:{port}", "--command-timeout=5s",
                        "get", "foo"], capture_output=True, text=True, timeout=30, env=env)
    check(r.returncode != 0, "etcdctl get fails against the echo server")
    check("code = Unimplemented desc = unknown service etcdserverpb.KV" in r.stderr,
          f"etcdctl saw our status: {r.stderr[-300:]!r}")


def test_etcd():
    """Our client against a grpc-go server: a real etcd 3.4 serving
    grpc.health.v1.Health."""
    exe = shutil.which("etcd")
    if not exe:
        print("interop etcd: etcd not installed, skipped")
        sys.exit(77)
    cport, pport = free_port(), free_port()
    data = os.path.join(GEN, "etcd-data")
    proc = subprocess.Popen([exe, "--name", "t", "--data-dir", data,
                             "--listen-client-urls", f"http://127.0.0.1:{cport}",
                             "--advertise-client-urls", f"http://127.0.0.1:{cport}",
                             "--listen-peer-urls", f"http://127.0.0.1:{pport}",
                             "--initial-advertise-peer-urls", f"http://127.0.0.1:{pport}",
                             "--initial-cluster", f"t=http://127.0.0.1:{pport}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 20
        ready = False
        while time.time() < deadline and not ready:
            line = proc.stderr.readline()
            if not line:
                break
            ready = "ready to serve client requests" in line
        check(ready, "etcd started")
        client_bin = os.path.join(os.path.dirname(SERVER), "health_client")
        r = subprocess.run([client_bin, f"127.0.0.1:{cport}"], capture_output=True, text=True,
                           timeout=30)
        sys.stdout.write(r.stdout)
        sys.stderr.write(r.stderr)
        check(r.returncode == 0, f"health_client exit {r.returncode}")
    finally:
        proc.kill()
        proc.wait()


def main():
    if MODE in ("client", "etcd"):
        try:
            {"client": test_client, "etcd": test_etcd}[MODE]()
        finally:
            shutil.rmtree(GEN, ignore_errors=True)
        print(f"interop {MODE}: {checks} checks passed")
        return
    proc, port = start_server()
    try:
        {"echo": test_echo, "health": test_health, "channelz": test_channelz,
         "http1": test_http1, "etcdctl": test_etcdctl}[MODE](port)
    finally:
        proc.stdin.close()
        try:
            rc = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = "timeout"
        shutil.rmtree(GEN, ignore_errors=True)
    check(rc == 0, f"server exit status {rc}")
    print(f"interop {MODE}: {checks} checks passed")


if __name__ == "__main__":
    main()
