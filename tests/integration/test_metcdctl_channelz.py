#!/usr/bin/python3
"""metcdctl channelz against one metcd, checked with python grpc's own
channelz client (grpc.channelz.v1 stubs generated from Debian grpc-proto):

  - `channelz servers` lists the client server with its listen socket, and
    its calls counter moves with etcdctl calls;
  - `channelz sockets` lists the connections of two running `etcdctl watch`
    processes with their remote addresses (ip:port, read from /proc), the
    member's client address as local, and counters that agree with
    GetSocket's and move when the watched key is written;
  - --server ID narrows the list; `channelz socket ID` shows one socket;
    `channelz channels` lists the top channels GetTopChannels lists;
  - -w json parses with json.loads and holds the same ids, addresses and
    counters; -w protobuf parses as the channelz messages;
  - errors: an unknown socket or server, -w fields, a missing ID.

usage: test_metcdctl_channelz.py METCD METCDCTL
"""

import base64
import ipaddress
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402

os.environ["no_proxy"] = "*"
os.environ.pop("http_proxy", None)
os.environ.pop("https_proxy", None)

import grpc  # noqa: E402
from grpc_tools import protoc  # noqa: E402

GRPC_PROTO = "/usr/share/grpc-proto"
GEN = tempfile.mkdtemp(prefix="metcd-ctlcz-pb-")
# grpc-proto's grpc/... would shadow the grpcio package once generated:
# copy channelz.proto flat (its package, grpc.channelz.v1, stays).
with open(os.path.join(GRPC_PROTO, "grpc/channelz/v1/channelz.proto")) as src, \
        open(os.path.join(GEN, "channelz.proto"), "w") as dst:
    dst.write(src.read())
INCLUDES = ["-I" + GEN]
for d in (os.path.join(os.path.dirname(protoc.__file__), "_proto"), "/usr/include"):
    if os.path.exists(os.path.join(d, "google/protobuf/any.proto")):
        INCLUDES.append("-I" + d)
        break
if protoc.main(["protoc"] + INCLUDES + ["--python_out=" + GEN, "--grpc_python_out=" + GEN,
                                        "channelz.proto"]) != 0:
    sys.exit("protoc failed")
sys.path.insert(0, GEN)
import channelz_pb2 as cz  # noqa: E402
import channelz_pb2_grpc as cz_grpc  # noqa: E402

METCD, METCDCTL = sys.argv[1:3]
checks = failures = 0


def check(cond, what):
    global checks, failures
    checks += 1
    if cond:
        print("ok", what)
    else:
        failures += 1
        print("FAIL", what)


def ctl(srv, *args):
    return subprocess.run([METCDCTL, "--endpoints", srv.endpoint] + list(args),
                          capture_output=True, timeout=30)


def ctl_ok(srv, *args):
    r = ctl(srv, *args)
    check(r.returncode == 0 and not r.stderr,
          "metcdctl %s exits 0, nothing on stderr %s" % (" ".join(args), r.stderr[:200]))
    return r


def table(text):
    """Rows of a tablewriter table as dicts keyed by the headers."""
    rows = [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in text.splitlines() if line.startswith("|")]
    if not rows:
        return []
    return [dict(zip(rows[0], r)) for r in rows[1:]]


def addr(a):
    if a.WhichOneof("address") != "tcpip_address":
        return "-"
    ip = a.tcpip_address.ip_address
    s = str(ipaddress.ip_address(ip))
    return ("[%s]:%d" if len(ip) == 16 else "%s:%d") % (s, a.tcpip_address.port)


def tcp_ports(pid):
    """The local ports of the established TCP connections of process pid."""
    inodes = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                t = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if t.startswith("socket:["):
                inodes.add(t[8:-1])
    except OSError:
        return set()
    ports = set()
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(f).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            p = line.split()
            if p[9] in inodes and p[3] == "01":  # ESTABLISHED
                ports.add(int(p[1].split(":")[1], 16))
    return ports


def main():
    srv = harness.Server(METCD)
    watchers = []
    chan = None
    try:
        srv.start()
        cport = srv.cport
        chan = grpc.insecure_channel(srv.endpoint)
        stub = cz_grpc.ChannelzStub(chan)

        # two long-lived connections: etcdctl watch processes
        for _ in range(2):
            watchers.append(subprocess.Popen(
                [harness.ETCDCTL, "--endpoints", srv.endpoint, "watch", "w"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                env=dict(os.environ, ETCDCTL_API="3")))
        wports = []
        deadline = time.time() + 10
        while time.time() < deadline:
            wports = [tcp_ports(w.pid) for w in watchers]
            if all(wports):
                break
            time.sleep(0.05)
        check(all(wports), "the etcdctl watch processes are connected")
        wports = [min(p) for p in wports]
        remotes = {"127.0.0.1:%d" % p for p in wports}
        for i in range(3):
            srv.ctl("put", "w", "v%d" % i, check=True)
        time.sleep(0.3)

        # --- servers ------------------------------------------------------
        before = stub.GetServers(cz.GetServersRequest(), timeout=5)
        r = ctl(srv, "channelz", "servers")
        after = stub.GetServers(cz.GetServersRequest(), timeout=5)
        check(r.returncode == 0, "channelz servers exits 0")
        rows = table(r.stdout.decode())
        ids = [s.ref.server_id for s in after.server]
        check([int(x["ID"]) for x in rows] == ids,
              "channelz servers lists the servers GetServers lists (%s)" % ids)
        client = [s for s in after.server
                  if any(stub.GetSocket(cz.GetSocketRequest(socket_id=ls.socket_id), timeout=5)
                         .socket.local.tcpip_address.port == cport for ls in s.listen_socket)]
        check(len(client) == 1, "one server listens on the client port")
        sid = client[0].ref.server_id
        row = [x for x in rows if int(x["ID"]) == sid][0]
        b0 = [s for s in before.server if s.ref.server_id == sid][0].data
        a0 = client[0].data
        started = int(row["CALLS STARTED"])
        check(b0.calls_started < started <= a0.calls_started,
              "CALLS STARTED %d between GetServers' before and after (%d, %d)"
              % (started, b0.calls_started, a0.calls_started))
        check(b0.calls_succeeded <= int(row["SUCCEEDED"]) <= a0.calls_succeeded,
              "SUCCEEDED agrees with GetServers")
        check(int(row["FAILED"]) == a0.calls_failed, "FAILED agrees with GetServers")
        check(row["LISTEN SOCKETS"] == ",".join(str(x.socket_id) for x in client[0].listen_socket),
              "LISTEN SOCKETS are the listen socket ids")
        check(row["NAME"] == client[0].ref.name, "NAME is the server's name")
        check(row["LAST CALL"].endswith("Z") and row["LAST CALL"][:4] >= "2020",
              "LAST CALL is a UTC time (%s)" % row["LAST CALL"])
        srv.ctl("put", "w", "more", check=True)
        r2 = table(ctl(srv, "channelz", "servers").stdout.decode())
        row2 = [x for x in r2 if int(x["ID"]) == sid][0]
        check(int(row2["CALLS STARTED"]) >= started + 2,
              "CALLS STARTED moves with an etcdctl put (%s -> %s)"
              % (started, row2["CALLS STARTED"]))
        check(ctl(srv, "-w", "table", "channelz", "servers").stdout.decode().count("\n") ==
              ctl(srv, "channelz", "servers").stdout.decode().count("\n"),
              "-w table prints the table simple prints")

        # --- sockets ------------------------------------------------------
        time.sleep(0.3)
        r = ctl(srv, "channelz", "sockets")
        check(r.returncode == 0, "channelz sockets exits 0")
        rows = table(r.stdout.decode())
        mine = {x["REMOTE"]: x for x in rows if x["REMOTE"] in remotes}
        check(set(mine) == remotes,
              "channelz sockets lists both watch connections by remote address %s" % remotes)
        check(all(x["LOCAL"] == "127.0.0.1:%d" % cport and x["SERVER"] == str(sid)
                  for x in mine.values()),
              "their LOCAL is the client address and SERVER the client server")
        for x in mine.values():
            s = stub.GetSocket(cz.GetSocketRequest(socket_id=int(x["ID"])), timeout=5).socket
            d = s.data
            check(addr(s.remote) == x["REMOTE"] and addr(s.local) == x["LOCAL"],
                  "GetSocket %s has the same addresses" % x["ID"])
            got = [int(x[k]) for k in ("STREAMS STARTED", "STREAMS SUCCEEDED", "STREAMS FAILED",
                                       "MESSAGES SENT", "MESSAGES RECV", "KEEPALIVES")]
            want = [d.streams_started, d.streams_succeeded, d.streams_failed, d.messages_sent,
                    d.messages_received, d.keep_alives_sent]
            check(got == want, "socket %s counters %s agree with GetSocket %s"
                  % (x["ID"], got, want))
            check(x["MESSAGES SENT"] != "0" and x["STREAMS STARTED"] != "0",
                  "watch socket %s has sent messages" % x["ID"])
        ref_ids = set()
        for s in after.server:
            ref_ids |= {ref.socket_id for ref in stub.GetServerSockets(
                cz.GetServerSocketsRequest(server_id=s.ref.server_id), timeout=5).socket_ref}
        check({int(x["ID"]) for x in mine.values()} <= ref_ids,
              "the watch sockets are in GetServerSockets")
        sent0 = {k: int(v["MESSAGES SENT"]) for k, v in mine.items()}
        srv.ctl("put", "w", "moved", check=True)
        time.sleep(0.3)
        rows2 = {x["REMOTE"]: x for x in table(ctl(srv, "channelz", "sockets").stdout.decode())}
        check(all(int(rows2[k]["MESSAGES SENT"]) > sent0[k] for k in remotes),
              "MESSAGES SENT of the watch sockets moves with a put to the watched key")
        check(all(rows2[k]["LAST MESSAGE"].endswith("Z") for k in remotes),
              "LAST MESSAGE is a UTC time")

        # --server
        r = ctl(srv, "channelz", "sockets", "--server", str(sid))
        only = table(r.stdout.decode())
        check(r.returncode == 0 and only and all(x["SERVER"] == str(sid) for x in only) and
              remotes <= {x["REMOTE"] for x in only},
              "--server %d lists that server's sockets only" % sid)
        others = [s.ref.server_id for s in after.server if s.ref.server_id != sid]
        if others:
            o = table(ctl(srv, "channelz", "sockets", "--server", str(others[0])).stdout.decode())
            check(not (remotes & {x["REMOTE"] for x in o}),
                  "--server %d (another server) does not list the watches" % others[0])
        r = ctl(srv, "channelz", "sockets", "--server", "987654")
        check(r.returncode == 1 and
              b"Error: requested server 987654 not found" in r.stderr,
              "--server of an unknown server: NOT_FOUND's text, exit 1")

        # --- socket ID ----------------------------------------------------
        wid = int(mine[sorted(remotes)[0]]["ID"])
        r = ctl(srv, "channelz", "socket", str(wid))
        kv = {x["FIELD"]: x["VALUE"] for x in table(r.stdout.decode())}
        s = stub.GetSocket(cz.GetSocketRequest(socket_id=wid), timeout=5).socket
        check(r.returncode == 0 and kv.get("ID") == str(wid), "channelz socket ID exits 0")
        check(kv.get("REMOTE") == addr(s.remote) and kv.get("LOCAL") == addr(s.local),
              "channelz socket shows the addresses")
        check(kv.get("MESSAGES SENT") == str(s.data.messages_sent) and
              kv.get("MESSAGES RECEIVED") == str(s.data.messages_received) and
              kv.get("STREAMS STARTED") == str(s.data.streams_started),
              "channelz socket's counters agree with GetSocket")
        check(kv.get("LOCAL FLOW CONTROL WINDOW") ==
              str(s.data.local_flow_control_window.value),
              "channelz socket shows the flow control windows")
        check(kv.get("SECURITY") == "none", "a plaintext socket says SECURITY none")
        lsid = client[0].listen_socket[0].socket_id
        kv = {x["FIELD"]: x["VALUE"]
              for x in table(ctl(srv, "channelz", "socket", str(lsid)).stdout.decode())}
        check(kv.get("LOCAL") == "127.0.0.1:%d" % cport and kv.get("REMOTE") == "-",
              "a listen socket: local the client address, no remote")
        r = ctl(srv, "channelz", "socket", "987654")
        check(r.returncode == 1 and r.stderr.decode().strip() ==
              "Error: requested socket 987654 not found", "an unknown socket: exit 1")
        r = ctl(srv, "channelz", "socket")
        check(r.returncode == 128 and b"Error:" in r.stderr, "socket without an ID: exit 128")
        r = ctl(srv, "-w", "fields", "channelz", "servers")
        check(r.returncode == 4 and
              r.stderr.decode().strip() == "Error: fields not supported as output format",
              "-w fields is refused as etcdctl refuses it (exit 4)")

        # --- channels -----------------------------------------------------
        r = ctl(srv, "channelz", "channels")
        tc = stub.GetTopChannels(cz.GetTopChannelsRequest(), timeout=5)
        rows = table(r.stdout.decode())
        check(r.returncode == 0 and [int(x["ID"]) for x in rows] ==
              [c.ref.channel_id for c in tc.channel],
              "channelz channels lists GetTopChannels' channels (%d)" % len(tc.channel))
        names = ["UNKNOWN", "IDLE", "CONNECTING", "READY", "TRANSIENT_FAILURE", "SHUTDOWN"]
        check(all(x["TARGET"] == c.data.target and x["STATE"] == names[c.data.state.state]
                  for x, c in zip(rows, tc.channel)),
              "channels' TARGET and STATE agree with GetTopChannels")

        # --- -w json ------------------------------------------------------
        r = ctl_ok(srv, "-w", "json", "channelz", "servers")
        j = json.loads(r.stdout)
        check([s["ref"]["server_id"] for s in j["server"]] == ids and j.get("end") is True,
              "servers -w json: the servers, end true")
        js = [s for s in j["server"] if s["ref"]["server_id"] == sid][0]
        check([x["socket_id"] for x in js["listen_socket"]] ==
              [x.socket_id for x in client[0].listen_socket] and
              js["data"]["calls_started"] > 0 and
              set(js["data"]["last_call_started_timestamp"]) <= {"seconds", "nanos"},
              "servers -w json: listen sockets, calls, the timestamp as seconds/nanos")
        r = ctl_ok(srv, "-w", "json", "channelz", "sockets")
        j = json.loads(r.stdout)
        byid = {x["ref"]["socket_id"]: x for x in j["socket"]}
        for k in remotes:
            x = byid.get(int(mine[k]["ID"]))
            ok = x is not None
            if ok:
                t = x["remote"]["Address"]["TcpipAddress"]
                ip = base64.b64decode(t["ip_address"])
                ok = ip == bytes([127, 0, 0, 1]) and "127.0.0.1:%d" % t["port"] == k
                g = stub.GetSocket(cz.GetSocketRequest(socket_id=x["ref"]["socket_id"]),
                                   timeout=5).socket.data
                ok = ok and x["data"]["messages_sent"] == g.messages_sent and \
                    x["data"]["streams_started"] == g.streams_started
            check(ok, "sockets -w json: %s with its address (base64 ip, port) and counters" % k)
        r = ctl_ok(srv, "-w", "json", "channelz", "socket", str(wid))
        j = json.loads(r.stdout)
        check(j["socket"]["ref"]["socket_id"] == wid and
              j["socket"]["local"]["Address"]["TcpipAddress"]["port"] == cport,
              "socket -w json: the GetSocketResponse")
        r = ctl_ok(srv, "-w", "json", "channelz", "channels")
        j = json.loads(r.stdout)
        check([c["ref"]["channel_id"] for c in j.get("channel", [])] ==
              [c.ref.channel_id for c in tc.channel], "channels -w json parses")

        # --- -w protobuf --------------------------------------------------
        r = ctl_ok(srv, "-w", "protobuf", "channelz", "servers")
        m = cz.GetServersResponse.FromString(r.stdout)
        check([s.ref.server_id for s in m.server] == ids and m.end,
              "servers -w protobuf is a GetServersResponse")
        r = ctl_ok(srv, "-w", "protobuf", "channelz", "socket", str(wid))
        m = cz.GetSocketResponse.FromString(r.stdout)
        check(m.socket.ref.socket_id == wid and addr(m.socket.remote) in remotes,
              "socket -w protobuf is a GetSocketResponse")
        r = ctl_ok(srv, "-w", "protobuf", "channelz", "sockets")
        buf, socks, ok = r.stdout, [], r.returncode == 0
        while ok and buf:
            if buf[0] != 0x0a:
                ok = False
                break
            n, sh, i = 0, 0, 1
            while True:
                n |= (buf[i] & 0x7f) << sh
                sh += 7
                i += 1
                if not buf[i - 1] & 0x80:
                    break
            socks.append(cz.Socket.FromString(buf[i:i + n]))
            buf = buf[i + n:]
        check(ok and remotes <= {addr(s.remote) for s in socks},
              "sockets -w protobuf: repeated field 1 of Socket messages")
    finally:
        for w in watchers:
            w.kill()
            w.wait()
        if chan:
            chan.close()
        srv.cleanup()
    print("%d checks, %d failed" % (checks, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
