#!/usr/bin/python3
"""The Lock and Election services (v3lockpb, v3electionpb) and etcdctl's
lock and elect commands against metcd and the real etcd 3.4, same script.

gRPC part (python grpcio, stubs generated at test time from our protos): a
transcript of every call's answer (headers without ids and term, keys and
leases named by order of appearance, errors as code and text) must be the
same. It covers lock contention, unlock, a holder's lease revoked, a waiter
that gives up (its key is removed), election campaign / proclaim / leader /
observe / resign, and the error texts and codes.

etcdctl part: two contending `etcdctl lock` clients (the second gets the lock
only once the first exits), and two `etcdctl elect` candidates with
`elect -l` observing; outputs compared the same way.

usage: test_lock_elect.py METCD_BINARY
"""

import base64
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import test_cluster  # noqa: E402

os.environ["no_proxy"] = "*"
os.environ.pop("http_proxy", None)
os.environ.pop("https_proxy", None)

import grpc  # noqa: E402
from grpc_tools import protoc  # noqa: E402
from google.protobuf import json_format  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
GEN = tempfile.mkdtemp(prefix="metcd-lock-")
if protoc.main(["protoc", "-I" + ROOT, "--python_out=" + GEN, "--grpc_python_out=" + GEN,
                "mvcc/mvccpb/kv.proto", "server/authpb/auth.proto",
                "server/etcdserverpb/rpc.proto", "server/v3lockpb/v3lock.proto",
                "server/v3electionpb/v3election.proto"]) != 0:
    sys.exit("protoc failed")
sys.path.insert(0, GEN)

from server.etcdserverpb import rpc_pb2 as R, rpc_pb2_grpc as RG  # noqa: E402
from server.v3electionpb import v3election_pb2 as E, v3election_pb2_grpc as EG  # noqa: E402
from server.v3lockpb import v3lock_pb2 as L, v3lock_pb2_grpc as LG  # noqa: E402

SETTLE = 0.5  # lets a call reach its waiting state, or a clean-up its apply


class Names:
    """Names leases (and the keys made from them) by order of appearance, so
    two servers' transcripts compare although their lease ids differ."""

    def __init__(self):
        self.ids = {}

    def lease(self, v):
        v = int(v)
        if v == 0:
            return 0
        if v not in self.ids:
            self.ids[v] = "L%d" % (len(self.ids) + 1)
        return self.ids[v]

    def key(self, k):
        m = re.match(r"^(.*/)([0-9a-f]+)$", k)
        if m and len(m.group(2)) >= 8:
            return m.group(1) + "<" + self.lease(int(m.group(2), 16)) + ">"
        return k


def norm(names, msg):
    d = json_format.MessageToDict(msg, preserving_proto_field_name=True)

    def walk(x, field=None):
        if isinstance(x, dict):
            out = {}
            for k, v in x.items():
                if k in ("cluster_id", "member_id", "raft_term"):
                    continue
                out[k] = walk(v, k)
            return out
        if isinstance(x, list):
            return [walk(v, field) for v in x]
        if field in ("key", "value", "name"):
            s = base64.b64decode(x).decode(errors="replace")
            return names.key(s) if field == "key" else s
        if field in ("lease", "ID"):
            return names.lease(x)
        return x
    return walk(d)


class Client:
    def __init__(self, endpoint, transcript, names=None):
        self.ch = grpc.insecure_channel(endpoint)
        self.kv = RG.KVStub(self.ch)
        self.lease = RG.LeaseStub(self.ch)
        self.lock = LG.LockStub(self.ch)
        self.elect = EG.ElectionStub(self.ch)
        self.names = names or Names()
        self.t = transcript

    def note(self, label, what):
        self.t.append("%s: %s" % (label, what))

    def error(self, label, e):
        # a deadline's text depends on which side noticed it first
        details = "" if e.code() == grpc.StatusCode.DEADLINE_EXCEEDED else e.details()
        self.note(label, "%s %s" % (e.code().name, details))

    def call(self, label, fn, req, timeout=10):
        try:
            r = fn(req, timeout=timeout)
        except grpc.RpcError as e:
            self.error(label, e)
            return None
        self.note(label, norm(self.names, r))
        return r

    def future(self, fn, req):
        return fn.future(req, timeout=30)

    def result(self, label, fut):
        try:
            r = fut.result(timeout=10)
        except grpc.RpcError as e:
            self.error(label, e)
            return None
        except grpc.FutureTimeoutError:
            self.note(label, "no answer")
            return None
        self.note(label, norm(self.names, r))
        return r

    def keys(self, label, prefix):
        end = prefix[:-1] + bytes([prefix[-1] + 1])
        r = self.kv.Range(R.RangeRequest(key=prefix, range_end=end), timeout=10)
        self.note(label, [(self.names.key(kv.key.decode()), kv.create_revision,
                           self.names.lease(kv.lease)) for kv in r.kvs])

    def grant(self, ttl=60):
        r = self.lease.LeaseGrant(R.LeaseGrantRequest(TTL=ttl), timeout=10)
        self.names.lease(r.ID)
        return r.ID

    def close(self):
        self.ch.close()


class Observer:
    """One Observe stream read on a thread."""

    def __init__(self, c, name):
        self.c = c
        self.got = []
        self.stream = c.elect.Observe(E.LeaderRequest(name=name))
        self.thread = threading.Thread(target=self.read)
        self.thread.start()

    def read(self):
        try:
            for m in self.stream:
                self.got.append(m)
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.CANCELLED:
                self.got.append("%s %s" % (e.code().name, e.details()))

    def stop(self, label):
        self.stream.cancel()
        self.thread.join(10)
        for m in self.got:
            self.c.note(label, m if isinstance(m, str) else norm(self.c.names, m))


def lock_scenario(c):
    c.call("lock: unknown lease", c.lock.Lock, L.LockRequest(name=b"lk", lease=12345))
    c.call("unlock: empty key", c.lock.Unlock, L.UnlockRequest(key=b""))
    c.call("unlock: absent key", c.lock.Unlock, L.UnlockRequest(key=b"nothing"))
    l1, l2, l3 = c.grant(), c.grant(), c.grant()
    a = c.call("lock A", c.lock.Lock, L.LockRequest(name=b"lk", lease=l1))
    c.call("lock A again (same lease: no-op)", c.lock.Lock, L.LockRequest(name=b"lk", lease=l1))
    b = c.future(c.lock.Lock, L.LockRequest(name=b"lk", lease=l2))
    time.sleep(SETTLE)
    c.note("lock B waits while A holds", not b.done())
    c.call("lock C gives up", c.lock.Lock, L.LockRequest(name=b"lk", lease=l3), timeout=SETTLE)
    time.sleep(SETTLE)
    c.keys("keys after C gave up (its key is removed)", b"lk/")
    c.note("lock B still waits", not b.done())
    if a is not None:
        c.call("unlock A", c.lock.Unlock, L.UnlockRequest(key=a.key))
    c.result("lock B acquires after unlock", b)

    # a holder's lease revoked: the waiter proceeds
    d = c.future(c.lock.Lock, L.LockRequest(name=b"lk", lease=l3))
    time.sleep(SETTLE)
    c.note("lock D waits while B holds", not d.done())
    c.call("revoke B's lease", c.lease.LeaseRevoke, R.LeaseRevokeRequest(ID=l2))
    c.result("lock D acquires after the revoke", d)
    c.keys("lock keys", b"lk/")

    # lease 0: the server grants a session lease (60 s) for the key
    r = c.call("lock with lease 0", c.lock.Lock, L.LockRequest(name=b"auto"))
    if r is not None:
        kv = c.kv.Range(R.RangeRequest(key=r.key), timeout=10).kvs
        if kv:
            ttl = c.lease.LeaseTimeToLive(R.LeaseTimeToLiveRequest(ID=kv[0].lease), timeout=10)
            c.note("its lease's granted TTL", ttl.grantedTTL)


def election_scenario(c):
    c.call("leader of an empty election", c.elect.Leader, E.LeaderRequest(name=b"e"))
    c.call("proclaim without leader", c.elect.Proclaim, E.ProclaimRequest(value=b"x"))
    c.call("resign without leader", c.elect.Resign, E.ResignRequest())
    c.call("proclaim as a stranger", c.elect.Proclaim,
           E.ProclaimRequest(leader=E.LeaderKey(name=b"e", key=b"e/1", rev=5), value=b"x"))
    c.call("resign as a stranger", c.elect.Resign,
           E.ResignRequest(leader=E.LeaderKey(name=b"e", key=b"e/1", rev=5)))
    c.call("proclaim with an empty key", c.elect.Proclaim,
           E.ProclaimRequest(leader=E.LeaderKey(name=b"e", rev=5), value=b"x"))
    c.call("campaign with an unknown lease", c.elect.Campaign,
           E.CampaignRequest(name=b"e", lease=999, value=b"v"))

    # an observer from before the first candidate: sees the first put
    early = Observer(c, b"e")
    l1, l2, l3 = c.grant(), c.grant(), c.grant()
    time.sleep(SETTLE)
    c1 = c.call("campaign 1 wins", c.elect.Campaign,
                E.CampaignRequest(name=b"e", lease=l1, value=b"v1"))
    c.call("leader", c.elect.Leader, E.LeaderRequest(name=b"e"))
    c.call("campaign 1 again, new value (proclaims it)", c.elect.Campaign,
           E.CampaignRequest(name=b"e", lease=l1, value=b"v1b"))
    c.call("campaign 2 gives up", c.elect.Campaign,
           E.CampaignRequest(name=b"e", lease=l2, value=b"v2"), timeout=SETTLE)
    time.sleep(SETTLE)
    c.keys("keys after campaign 2 gave up (it resigned)", b"e/")
    obs = Observer(c, b"e")
    time.sleep(SETTLE)
    leader1 = c1.leader if c1 is not None else E.LeaderKey()
    c.call("proclaim v3", c.elect.Proclaim, E.ProclaimRequest(leader=leader1, value=b"v3"))
    f2 = c.future(c.elect.Campaign, E.CampaignRequest(name=b"e", lease=l2, value=b"v2"))
    time.sleep(SETTLE)
    c.note("campaign 2 waits", not f2.done())
    c.call("resign 1", c.elect.Resign, E.ResignRequest(leader=leader1))
    c2 = c.result("campaign 2 wins", f2)
    c.call("proclaim by the old leader", c.elect.Proclaim,
           E.ProclaimRequest(leader=leader1, value=b"late"))
    c.call("resign by the old leader", c.elect.Resign, E.ResignRequest(leader=leader1))
    c.call("leader", c.elect.Leader, E.LeaderRequest(name=b"e"))
    # the leader's lease revoked: the next candidate wins
    f3 = c.future(c.elect.Campaign, E.CampaignRequest(name=b"e", lease=l3, value=b"v3"))
    time.sleep(SETTLE)
    c.note("campaign 3 waits", not f3.done())
    if c2 is not None:
        c.call("proclaim v2b", c.elect.Proclaim,
               E.ProclaimRequest(leader=c2.leader, value=b"v2b"))
    c.call("revoke leader 2's lease", c.lease.LeaseRevoke, R.LeaseRevokeRequest(ID=l2))
    c.result("campaign 3 wins", f3)
    c.call("leader", c.elect.Leader, E.LeaderRequest(name=b"e"))
    time.sleep(SETTLE)
    obs.stop("observe")
    early.stop("observe from before the first candidate")


def slow_observer(c, endpoint):
    """An observer that does not read while 60 values of 200 kB are
    proclaimed (far past the stream's outbound bound): once it reads, it gets
    every value, in order, once."""
    ch = grpc.insecure_channel(endpoint, options=[("grpc.http2.bdp_probe", 0)])
    try:
        l1 = c.grant()
        won = c.elect.Campaign(E.CampaignRequest(name=b"slow", lease=l1, value=b"0:"),
                               timeout=10)
        obs = EG.ElectionStub(ch).Observe(E.LeaderRequest(name=b"slow"), timeout=60)
        next(obs)
        n, big = 60, b"x" * 200000
        for i in range(1, n + 1):
            c.elect.Proclaim(E.ProclaimRequest(leader=won.leader, value=b"%d:" % i + big),
                             timeout=10)
        time.sleep(SETTLE)
        got = []
        for m in obs:
            got.append(int(m.kv.value.split(b":")[0]))
            if got[-1] >= n or len(got) > n:
                break
        obs.cancel()
        c.note("slow observer got every value once, in order", got == list(range(1, n + 1)))
    except grpc.RpcError as e:
        c.error("slow observer", e)
    finally:
        ch.close()


def grpc_transcript(server):
    t = []
    c = Client(server.endpoint, t)
    try:
        lock_scenario(c)
        election_scenario(c)
        slow_observer(c, server.endpoint)
    finally:
        c.close()
    return t


def cluster_scenario(c0, c1, c2):
    """Three members: each call through another one, so proposals travel to
    the leader and waits, barriers and watches run on followers too."""
    l1, l2 = c0.grant(), c1.grant()
    early = Observer(c2, b"ce")
    a = c0.call("lock A via member 0", c0.lock.Lock, L.LockRequest(name=b"cl", lease=l1))
    b = c1.future(c1.lock.Lock, L.LockRequest(name=b"cl", lease=l2))
    time.sleep(SETTLE)
    c1.note("lock B via member 1 waits", not b.done())
    if a is not None:
        c2.call("unlock A via member 2", c2.lock.Unlock, L.UnlockRequest(key=a.key))
    c1.result("lock B acquires", b)
    won = c1.call("campaign via member 1", c1.elect.Campaign,
                  E.CampaignRequest(name=b"ce", lease=l1, value=b"x"))
    c2.call("leader via member 2", c2.elect.Leader, E.LeaderRequest(name=b"ce"))
    if won is not None:
        c0.call("proclaim via member 0", c0.elect.Proclaim,
                E.ProclaimRequest(leader=won.leader, value=b"y"))
        c2.call("resign via member 2", c2.elect.Resign, E.ResignRequest(leader=won.leader))
    c0.call("leader via member 0", c0.elect.Leader, E.LeaderRequest(name=b"ce"))
    c1.call("revoke B's lease via member 1", c1.lease.LeaseRevoke,
            R.LeaseRevokeRequest(ID=l2))
    c2.keys("lock keys via member 2", b"cl/")
    time.sleep(SETTLE)
    early.stop("observe via member 2")


def cluster_transcript(binary):
    cl = test_cluster.Cluster(binary)
    t = []
    names = Names()
    clients = []
    try:
        for i in range(3):
            cl.start(i)
        for i in range(3):
            cl.wait_ready(i)
        if test_cluster.wait_for(lambda: cl.leader(range(3))) is None:
            return ["no leader"]
        clients = [Client(cl.endpoint(i), t, names) for i in range(3)]
        cluster_scenario(*clients)
    finally:
        for c in clients:
            c.close()
        cl.cleanup()
    return t


# ---- etcdctl ---------------------------------------------------------------------


class Ctl:
    """An etcdctl process whose output lines are collected on a thread."""

    def __init__(self, server, *args):
        env = dict(os.environ, ETCDCTL_API="3")
        self.p = subprocess.Popen([harness.ETCDCTL, "--endpoints", server.endpoint] + list(args),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=env)
        self.lines = []
        self.thread = threading.Thread(target=self.read)
        self.thread.start()

    def read(self):
        for line in self.p.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_lines(self, n, timeout=5):
        deadline = time.time() + timeout
        while len(self.lines) < n and time.time() < deadline:
            time.sleep(0.05)
        return len(self.lines) >= n

    def interrupt(self):
        self.p.send_signal(signal.SIGINT)
        try:
            rc = self.p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = "hung"
        self.thread.join(5)
        err = self.p.stderr.read().strip()
        return rc, err


def etcdctl_transcript(server):
    t = []
    names = Names()

    def keyed(lines):
        return [names.key(x) for x in lines]

    # lock: two contending clients
    first = Ctl(server, "lock", "mylock")
    t.append(("lock 1 holds", first.wait_lines(1), keyed(first.lines)))
    second = Ctl(server, "lock", "mylock")
    time.sleep(1.0)
    t.append(("lock 2 waits", second.lines == []))
    t.append(("lock 1 exits on SIGINT", first.interrupt()))
    t.append(("lock 2 holds", second.wait_lines(1), keyed(second.lines)))
    t.append(("lock 2 exits on SIGINT", second.interrupt()))
    # exec under the lock
    env = dict(os.environ, ETCDCTL_API="3")
    r = subprocess.run([harness.ETCDCTL, "--endpoints", server.endpoint, "lock", "mylock",
                        "--", "sh", "-c", "echo locked $ETCD_LOCK_KEY"], capture_output=True,
                       text=True, timeout=20, env=env)
    t.append(("lock with a command", r.returncode, keyed(r.stdout.splitlines())))
    # a holder killed outright: its session lease (--ttl 2) runs out and the
    # waiter gets the lock
    killed = Ctl(server, "lock", "--ttl", "2", "crashlock")
    t.append(("lock 3 holds", killed.wait_lines(1), keyed(killed.lines)))
    waiter = Ctl(server, "lock", "crashlock")
    time.sleep(1.0)
    t.append(("lock 4 waits", waiter.lines == []))
    killed.p.kill()
    killed.p.wait(timeout=5)
    t.append(("lock 4 holds once lock 3's lease expired", waiter.wait_lines(1, timeout=10),
              keyed(waiter.lines)))
    t.append(("lock 4 exits on SIGINT", waiter.interrupt()))

    # elect: two candidates and an observer
    observer = Ctl(server, "elect", "-l", "myelection")
    time.sleep(0.5)
    c1 = Ctl(server, "elect", "myelection", "p1")
    t.append(("candidate 1 elected", c1.wait_lines(2), keyed(c1.lines)))
    c2 = Ctl(server, "elect", "myelection", "p2")
    time.sleep(1.0)
    t.append(("candidate 2 waits", c2.lines == []))
    t.append(("candidate 1 resigns on SIGINT", c1.interrupt()))
    t.append(("candidate 2 elected", c2.wait_lines(2), keyed(c2.lines)))
    time.sleep(0.5)
    t.append(("candidate 2 resigns on SIGINT", c2.interrupt()))
    time.sleep(0.5)
    t.append(("observer saw", keyed(observer.lines)))
    t.append(("observer exits on SIGINT", observer.interrupt()))
    return t


def shutdown_with_calls_in_flight(server):
    """metcd alone: SIGTERM while locks and campaigns wait, observers follow
    and a lease-0 lock is being granted its session: a clean exit, and under
    the sanitizers no leak or error report."""
    c = Client(server.endpoint, [])
    l1, l2 = c.grant(), c.grant()
    c.lock.Lock(L.LockRequest(name=b"s", lease=l1), timeout=10)
    c.elect.Campaign(E.CampaignRequest(name=b"se", lease=l1, value=b"a"), timeout=10)
    futs = [c.future(c.lock.Lock, L.LockRequest(name=b"s", lease=l2)),
            c.future(c.elect.Campaign, E.CampaignRequest(name=b"se", lease=l2, value=b"b"))]
    observers = [Observer(c, b"se"), Observer(c, b"empty")]
    time.sleep(SETTLE)
    futs += [c.future(c.lock.Lock, L.LockRequest(name=b"s")),
             c.future(c.elect.Leader, E.LeaderRequest(name=b"se"))]
    server.kill(signal.SIGTERM)
    for f in futs:
        try:
            f.result(timeout=10)
        except (grpc.RpcError, grpc.FutureTimeoutError):
            pass
    for o in observers:
        o.stop("observer")
    c.close()
    log = server.read_log()
    problems = []
    if server.proc.returncode != 0:
        problems.append("exit status %s" % server.proc.returncode)
    if "Sanitizer" in log or "runtime error" in log:
        problems.append("sanitizer report")
    return problems, log


def main():
    metcd = os.path.abspath(sys.argv[1])
    ours, ref = harness.Server(metcd), harness.Server(harness.ETCD)
    checks = failures = 0
    try:
        ours.start()
        ref.start()
        runs = [("gRPC", grpc_transcript(ours), grpc_transcript(ref)),
                ("etcdctl", etcdctl_transcript(ours), etcdctl_transcript(ref)),
                ("three members", cluster_transcript(metcd), cluster_transcript(harness.ETCD))]
        for label, a, b in runs:
            for i in range(max(len(a), len(b))):
                checks += 1
                x = a[i] if i < len(a) else None
                y = b[i] if i < len(b) else None
                if x != y:
                    failures += 1
                    print("FAIL %s step %d:\n  metcd: %s\n  etcd:  %s" % (label, i, x, y))
                else:
                    print("ok   %s %s" % (label, x))
        checks += 1
        problems, log = shutdown_with_calls_in_flight(ours)
        if problems:
            failures += 1
            print("FAIL SIGTERM with calls in flight: %s\n%s" % (", ".join(problems), log[-5000:]))
        else:
            print("ok   SIGTERM with locks, campaigns and observers in flight: clean exit")
    finally:
        ours.cleanup()
        ref.cleanup()
    print("%d passed, %d failed" % (checks - failures, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
