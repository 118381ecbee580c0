#!/usr/bin/python3
"""Leases, end to end.

Part 1: the same etcdctl 3.4 lease script against metcd and the real etcd
3.4; outputs must match once lease ids and remaining seconds are masked.

Part 2: three metcd members:
  - a key vanishes when its lease expires, and not before, on every member;
  - `etcdctl lease keep-alive` through a follower keeps a lease alive;
  - kill -9 of the leader while 1000 leases are kept alive (gRPC clients on
    every member) loses none of them;
  - the leader stopped (SIGSTOP) past the TTL while clients keep their
    leases alive through the other members: once it is replaced and resumed,
    no lease is revoked;
  - an abandoned lease's remaining TTL survives a leader change (it expires
    near its checkpointed time, not a full TTL after the new election);
  - a restart of every member keeps leases and their keys.

usage: test_lease.py METCD_BINARY
"""

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import harness  # noqa: E402
from test_cluster import Cluster, wait_for  # noqa: E402

os.environ["no_proxy"] = "*"
os.environ.pop("http_proxy", None)
os.environ.pop("https_proxy", None)

import grpc  # noqa: E402
from grpc_tools import protoc  # noqa: E402

GEN = tempfile.mkdtemp(prefix="metcd-lease-pb-")
if protoc.main(["protoc", "-I" + ROOT, "--python_out=" + GEN, "--grpc_python_out=" + GEN,
                "server/etcdserverpb/rpc.proto", "mvcc/mvccpb/kv.proto",
                "server/authpb/auth.proto"]) != 0:
    sys.exit("protoc failed")
sys.path.insert(0, GEN)
from server.etcdserverpb import rpc_pb2 as pb  # noqa: E402
from server.etcdserverpb import rpc_pb2_grpc as pb_grpc  # noqa: E402

checks = failures = 0


def check(ok, what):
    global checks, failures
    checks += 1
    if ok:
        print("ok   " + what)
    else:
        failures += 1
        print("FAIL " + what)


# ---- part 1: etcdctl against both -------------------------------------------------

HEX = re.compile(r"\b[0-9a-f]{16}\b")


def normalize(text):
    # etcd lists a lease's keys in Go map order (random): compare them sorted
    text = re.sub(r"attached keys\(\[([^\]]*)\]\)",
                  lambda m: "attached keys([%s])" % " ".join(sorted(m.group(1).split())), text)
    text = re.sub(r'"keys":\[([^\]]*)\]',
                  lambda m: '"keys":[%s]' % ",".join(sorted(m.group(1).split(","))), text)
    text = HEX.sub("<ID>", text)
    text = re.sub(r"remaining\(\d+s\)", "remaining(Ns)", text)
    text = re.sub(r'"(ID|id|lease)":\s*\d+', r'"\1":"<ID>"', text)
    text = re.sub(r'"(TTL|ttl)":\s*\d+', r'"\1":"<N>"', text)
    text = re.sub(r'"(cluster_id|member_id|revision|raft_term)":\s*\d+', r'"\1":0', text)
    text = re.sub(r'"ts":"[^"]*"', '"ts":""', text)
    text = re.sub(r'"target":"[^"]*"', '"target":""', text)
    return text


def script(s):
    """Runs the lease script on server s; returns the list of (step, output)."""
    out = []

    def run(*args, stdin=None):
        r = s.ctl(*args, stdin=stdin)
        tail = harness.error_line(r.stderr) if r.returncode else ""
        out.append((" ".join(args), "%d|%s|%s" % (r.returncode, r.stdout.strip(), tail)))
        return r

    lid = run("lease", "grant", "60").stdout.split()[1]
    run("lease", "grant", "1")  # raised to the minimum TTL
    run("put", "--lease", lid, "k1", "v1")
    run("put", "--lease", lid, "k2", "v2")
    run("txn", stdin="\nput k3 v3 --lease=%s\n\n\n" % lid)
    run("lease", "timetolive", lid)
    run("lease", "timetolive", "--keys", lid)
    run("lease", "timetolive", "--keys", lid, "-w", "json")
    run("lease", "keep-alive", "--once", lid)
    run("put", "--lease", "1234", "x", "y")
    run("put", "k1", "--ignore-lease", "--lease", lid)
    run("lease", "grant", "9000000001")
    run("lease", "revoke", "1234")
    run("lease", "timetolive", "1234")
    run("lease", "keep-alive", "--once", "1234")
    run("put", "k2", "v2b")  # detached from the lease
    run("get", "k", "--prefix", "--keys-only")
    run("lease", "revoke", lid)
    run("get", "k", "--prefix", "--keys-only")
    run("lease", "timetolive", lid)
    run("lease", "revoke", lid)
    r = s.ctl("lease", "list")
    ids = sorted(r.stdout.split("\n")[1:])
    out.append(("lease list", "%d|%s|%d" % (r.returncode, r.stdout.split("\n")[0], len(ids))))
    return out


def part1(metcd):
    ours, ref = harness.Server(metcd), harness.Server(harness.ETCD)
    try:
        ours.start()
        ref.start()
        a, b = script(ours), script(ref)
        for (step, oa), (_, ob) in zip(a, b):
            na, nb = normalize(oa), normalize(ob)
            check(na == nb, "etcdctl %s%s" % (step, "" if na == nb else
                                              "\n  metcd: %r\n  etcd:  %r" % (na, nb)))
        # keep-alive on a lease that goes away: etcdctl reports it and exits
        res = []
        for s in (ours, ref):
            lid = s.ctl("lease", "grant", "6").stdout.split()[1]  # renewed every 2 s
            p = subprocess.Popen([harness.ETCDCTL, "--endpoints", s.endpoint, "lease",
                                  "keep-alive", lid], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True,
                                 env=dict(os.environ, ETCDCTL_API="3"))
            time.sleep(1.0)
            s.ctl("lease", "revoke", lid)
            try:
                so, se = p.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                so, se = p.communicate()
            res.append((p.returncode, normalize(so.strip().splitlines()[-1] if so.strip() else ""),
                        normalize(harness.error_line(se))))
        check(res[0] == res[1], "etcdctl lease keep-alive ends when the lease is revoked: %r vs %r"
              % tuple(res))
    finally:
        ours.cleanup()
        ref.cleanup()


# ---- part 2: three members --------------------------------------------------------

class KeepAlive(threading.Thread):
    """Keeps `ids` alive every `every` seconds over one LeaseKeepAlive stream,
    starting with endpoints[0] and moving to the next when the stream fails."""

    def __init__(self, endpoints, ids, every):
        super().__init__(daemon=True)
        self.endpoints = list(endpoints)
        self.ids = list(ids)
        self.every = every
        self.stop = threading.Event()
        self.lost = set()      # leases answered with TTL 0
        self.answers = 0
        self.failovers = 0

    def run(self):
        i = 0
        while not self.stop.is_set():
            ep = self.endpoints[i % len(self.endpoints)]
            i += 1
            ch = grpc.insecure_channel(ep)
            stub = pb_grpc.LeaseStub(ch)

            def gen():
                while not self.stop.is_set():
                    for lid in self.ids:
                        yield pb.LeaseKeepAliveRequest(ID=lid)
                    self.stop.wait(self.every)

            try:
                for resp in stub.LeaseKeepAlive(gen()):
                    self.answers += 1
                    if resp.TTL <= 0:
                        self.lost.add(resp.ID)
            except grpc.RpcError:
                self.failovers += 1
                self.stop.wait(0.2)
            finally:
                ch.close()

    def finish(self):
        self.stop.set()
        self.join(timeout=10)


def grant_many(ep, n, ttl):
    ch = grpc.insecure_channel(ep)
    stub = pb_grpc.LeaseStub(ch)
    ids = [stub.LeaseGrant(pb.LeaseGrantRequest(TTL=ttl), timeout=10).ID for _ in range(n)]
    ch.close()
    return ids


def alive_leases(ep, ids):
    """How many of ids the cluster still has (TimeToLive through ep)."""
    ch = grpc.insecure_channel(ep)
    stub = pb_grpc.LeaseStub(ch)
    n = 0
    for lid in ids:
        r = stub.LeaseTimeToLive(pb.LeaseTimeToLiveRequest(ID=lid), timeout=10)
        if r.TTL > 0:
            n += 1
    ch.close()
    return n


def get(c, i, key):
    r = c.ctl(i, "get", key, "--consistency=s", "--print-value-only")
    return r.stdout.strip() if r.returncode == 0 else None


def count(c, i, prefix):
    r = c.ctl(i, "get", prefix, "--prefix", "--keys-only", "--consistency=s")
    return len([x for x in r.stdout.splitlines() if x.strip()])


def part2(metcd):
    c = Cluster(metcd)
    try:
        for i in range(3):
            c.start(i)
        for i in range(3):
            c.wait_ready(i)
        alive = [0, 1, 2]
        lead = wait_for(lambda: c.leader(alive))
        fol = [i for i in alive if i != lead]

        # expiry, and not before, on every member
        lid = c.ctl(fol[0], "lease", "grant", "3", check=True).stdout.split()[1]
        t0 = time.time()
        c.ctl(fol[0], "put", "--lease", lid, "exp", "v", check=True)
        time.sleep(max(0, t0 + 2.3 - time.time()))
        check(all(get(c, i, "exp") == "v" for i in alive), "a leased key lives until its TTL")
        gone = wait_for(lambda: all(get(c, i, "exp") == "" for i in alive), timeout=6)
        check(gone and time.time() - t0 < 3 + 2.5,
              "it is gone from every member soon after (%.1f s after the grant)"
              % (time.time() - t0))

        # keep-alive through a follower
        lid = c.ctl(fol[1], "lease", "grant", "3", check=True).stdout.split()[1]
        c.ctl(fol[1], "put", "--lease", lid, "ka", "v", check=True)
        p = subprocess.Popen([harness.ETCDCTL, "--endpoints", c.endpoint(fol[1]), "lease",
                              "keep-alive", lid], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True,
                             env=dict(os.environ, ETCDCTL_API="3"))
        time.sleep(8)
        check(get(c, lead, "ka") == "v", "etcdctl lease keep-alive through a follower keeps it 8 s > TTL 3")
        p.terminate()
        out, _ = p.communicate(timeout=10)
        check("keepalived with TTL(3)" in out, "the follower answers the keep-alives (TTL 3)")
        check(wait_for(lambda: get(c, lead, "ka") == "", timeout=8),
              "once the keep-alives stop it expires")

        # kill -9 of the leader while 1000 leases are kept alive
        ids = grant_many(c.endpoint(fol[0]), 1000, 5)
        for j, lid in enumerate(ids[:50]):
            c.ctl(fol[0], "put", "--lease", "%x" % lid, "k9/%d" % j, "v", check=True)
        eps = [c.endpoint(i) for i in alive]
        kas = [KeepAlive(eps[j:] + eps[:j], ids[j::3], 1.0) for j in range(3)]
        for k in kas:
            k.start()
        time.sleep(3)
        c.kill(lead, signal.SIGKILL)
        alive = [i for i in alive if i != lead]
        new_lead = wait_for(lambda: c.leader(alive), timeout=15)
        check(new_lead is not None, "a new leader after kill -9 of the old one")
        time.sleep(10)  # two TTLs past the failover
        n = alive_leases(c.endpoint(alive[0]), ids)
        lost = set().union(*(k.lost for k in kas))
        check(n == 1000 and not lost,
              "kill -9 of the leader while 1000 leases are kept alive: %d alive, %d answered lost"
              % (n, len(lost)))
        check(count(c, alive[0], "k9/") == 50, "their keys are all there")
        c.start(lead)
        c.wait_ready(lead)
        alive = [0, 1, 2]

        # the leader stopped past the TTL; clients keep alive through the others
        lead = wait_for(lambda: c.leader(alive))
        others = [i for i in alive if i != lead]
        for k in kas:
            k.finish()
        kas = [KeepAlive([c.endpoint(i) for i in (others if j == 0 else others[::-1])],
                         ids[j::2], 1.0) for j in range(2)]
        for k in kas:
            k.start()
        time.sleep(2)
        c.procs[lead].send_signal(signal.SIGSTOP)
        stopped_at = time.time()
        new_lead = wait_for(lambda: c.leader(others), timeout=15)
        time.sleep(max(0, stopped_at + 9 - time.time()))  # TTL 5 + election, well past
        c.procs[lead].send_signal(signal.SIGCONT)
        time.sleep(4)
        n = alive_leases(c.endpoint(others[0]), ids)
        lost = set().union(*(k.lost for k in kas))
        check(new_lead is not None and n == 1000 and not lost,
              "a leader stopped 9 s (TTL 5) and replaced revokes nothing kept alive elsewhere: "
              "%d alive, %d answered lost" % (n, len(lost)))
        check(count(c, lead, "k9/") == 50, "the resumed member still has every leased key")
        for k in kas:
            k.finish()

        # an abandoned lease keeps its remaining TTL across a leader change
        lead = wait_for(lambda: c.leader(alive))
        fol = [i for i in alive if i != lead]
        lid = c.ctl(fol[0], "lease", "grant", "10", check=True).stdout.split()[1]
        t0 = time.time()
        c.ctl(fol[0], "put", "--lease", lid, "cp", "v", check=True)
        time.sleep(max(0, t0 + 6.5 - time.time()))  # checkpointed at 5 s left
        c.kill(lead, signal.SIGKILL)
        alive2 = fol
        wait_for(lambda: c.leader(alive2), timeout=15)
        time.sleep(max(0, t0 + 9.5 - time.time()))
        check(get(c, fol[0], "cp") == "v", "not expired before its TTL across the failover")
        gone = wait_for(lambda: get(c, fol[0], "cp") == "", timeout=12)
        took = time.time() - t0
        # without the checkpoint it would live until about 6.5 + 1.5 + 10 + 1 = 19 s
        check(gone and took < 16.5,
              "its checkpointed remaining TTL survives the leader change (gone %.1f s after "
              "the grant, TTL 10)" % took)
        c.start(lead)
        c.wait_ready(lead)

        # restart of every member keeps leases and keys
        lid = c.ctl(0, "lease", "grant", "600", check=True).stdout.split()[1]
        c.ctl(0, "put", "--lease", lid, "r1", "v", check=True)
        for i in alive:
            c.kill(i, signal.SIGTERM)
        for i in alive:
            c.start(i)
        for i in alive:
            c.wait_ready(i)
        wait_for(lambda: c.leader(alive))
        r = c.ctl(1, "lease", "timetolive", "--keys", lid)
        check("attached keys([r1])" in r.stdout and "granted with TTL(600s)" in r.stdout,
              "a restart of every member keeps the lease and its keys: %s" % r.stdout.strip())
        check(get(c, 2, "r1") == "v", "the key is there after the restart")
        r = c.ctl(2, "lease", "revoke", lid)
        check(r.returncode == 0 and wait_for(lambda: all(get(c, i, "r1") == "" for i in alive)),
              "revoked after the restart: its key goes from every member")
    finally:
        c.cleanup()


def main():
    metcd = os.path.abspath(sys.argv[1])
    part1(metcd)
    part2(metcd)
    print("%d passed, %d failed" % (checks - failures, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
