#!/usr/bin/python3
"""Three metcd members on loopback, driven by etcdctl 3.4: writes through
any member are readable (linearizably) from every member; the cluster
survives the loss of its leader (a new one is elected and writes go on);
a killed member restarts and catches up; member add (learner), update,
remove answer as etcd's and membership changes are seen everywhere.

usage: test_cluster.py METCD_BINARY
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import shutil
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


class Cluster:
    def __init__(self, binary, n=3, extra=None):
        self.binary = os.path.abspath(binary)  # members run in their own dirs
        self.tmp = tempfile.mkdtemp(prefix="metcd-cluster-")
        self.names = ["m%d" % i for i in range(n)]
        self.cports = [harness.free_port() for _ in range(n)]
        self.pports = [harness.free_port() for _ in range(n)]
        self.extra = extra or []
        self.procs = [None] * n
        self.logs = [os.path.join(self.tmp, "%s.log" % nm) for nm in self.names]
        self.initial = ",".join("%s=http://127.0.0.1:%d" % (nm, p)
                                for nm, p in zip(self.names, self.pports))

    def endpoint(self, i):
        return "127.0.0.1:%d" % self.cports[i]

    def endpoints(self):
        return ",".join(self.endpoint(i) for i in range(len(self.names)))

    def start(self, i):
        c = "http://127.0.0.1:%d" % self.cports[i]
        p = "http://127.0.0.1:%d" % self.pports[i]
        argv = [self.binary, "--name", self.names[i],
                "--data-dir", os.path.join(self.tmp, self.names[i]),
                "--listen-client-urls", c, "--advertise-client-urls", c,
                "--listen-peer-urls", p, "--initial-advertise-peer-urls", p,
                "--initial-cluster-token", "t", "--initial-cluster", self.initial] + self.extra
        log = open(self.logs[i], "ab")
        self.procs[i] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.tmp)
        log.close()

    def wait_ready(self, i, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.procs[i].poll() is not None:
                raise RuntimeError("member %d exited:\n%s" % (i, self.log(i)))
            if "ready to serve client requests" in self.log(i):
                return
            time.sleep(0.05)
        raise RuntimeError("member %d not ready:\n%s" % (i, self.log(i)))

    def log(self, i):
        with open(self.logs[i], "rb") as f:
            return f.read().decode(errors="replace")

    def kill(self, i, sig=signal.SIGKILL):
        p = self.procs[i]
        if p and p.poll() is None:
            p.send_signal(sig)
            p.wait(timeout=20)

    def ctl(self, i, *args, stdin=None, check=False):
        eps = self.endpoint(i) if i is not None else self.endpoints()
        r = subprocess.run([harness.ETCDCTL, "--endpoints", eps, "--dial-timeout=2s",
                            "--command-timeout=8s"] + list(args), input=stdin,
                           capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, ETCDCTL_API="3"))
        if check and r.returncode != 0:
            raise AssertionError("etcdctl %s on %s: %s %s" % (args, eps, r.stdout, r.stderr))
        return r

    def status(self, i):
        r = self.ctl(i, "endpoint", "status", "-w", "json")
        if r.returncode != 0:
            return None
        return json.loads(r.stdout)[0]["Status"]

    def leader(self, alive):
        for i in alive:
            st = self.status(i)
            if st and st.get("leader") == st["header"]["member_id"]:
                return i
        return None

    def cleanup(self):
        for i in range(len(self.names)):
            self.kill(i)
        shutil.rmtree(self.tmp, ignore_errors=True)


def wait_for(pred, timeout=15, step=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v is not None and v is not False:
            return v
        time.sleep(step)
    return None


def main():
    metcd = os.path.abspath(sys.argv[1])
    c = Cluster(metcd, extra=["--snapshot-count", "100"])
    checks = failures = 0

    def check(ok, what):
        nonlocal checks, failures
        checks += 1
        if not ok:
            failures += 1
            print("FAIL " + what)
        else:
            print("ok   " + what)

    try:
        for i in range(3):
            c.start(i)
        for i in range(3):
            c.wait_ready(i)
        lead = wait_for(lambda: c.leader(range(3)))
        check(lead is not None, "a leader is elected among three members")
        # a write through each member, read linearizably from every member
        for i in range(3):
            c.ctl(i, "put", "k%d" % i, "v%d" % i, check=True)
        for i in range(3):
            r = c.ctl(i, "get", "k", "--prefix", "--print-value-only")
            check(r.stdout.split() == ["v0", "v1", "v2"],
                  "member %d reads every write linearizably (%r)" % (i, r.stdout.split()))
        r = c.ctl(None, "member", "list", "-w", "json", check=True)
        members = json.loads(r.stdout)["members"]
        check(len(members) == 3 and all(m.get("name") for m in members),
              "member list shows three started members")
        # same data everywhere: HashKV agrees
        hashes = set()
        for i in range(3):
            r = c.ctl(i, "endpoint", "hashkv", "-w", "json", check=True)
            hashes.add(json.loads(r.stdout)[0]["HashKV"]["hash"])
        check(len(hashes) == 1, "HashKV is the same on the three members")
        # kill -9 the leader during a write load: a new leader within 3 s
        # (default timings), and no acknowledged write lost
        acked, stop = [], threading.Event()

        def writer(wid):
            n = 0
            while not stop.is_set():
                key = "load%d-%d" % (wid, n)
                r = c.ctl(None, "put", key, "v", )
                if r.returncode == 0:
                    acked.append(key)
                n += 1
        threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        killed_at = time.time()
        c.kill(lead)
        alive = [i for i in range(3) if i != lead]
        new_lead = wait_for(lambda: c.leader(alive), timeout=15, step=0.05)
        elected_in = time.time() - killed_at
        time.sleep(1.5)
        stop.set()
        for t in threads:
            t.join()
        check(new_lead is not None and new_lead != lead,
              "a new leader after kill -9 of the leader (%.2f s)" % elected_in)
        check(elected_in < 3.0, "the new leader came within 3 s (%.2f s)" % elected_in)
        r = c.ctl(alive[0], "get", "load", "--prefix", "--keys-only")
        have = set(r.stdout.split())
        lost = [k for k in acked if k not in have]
        check(len(acked) >= 5 and not lost,
              "no acknowledged write lost across the leader's death (%d acked, %d lost)"
              % (len(acked), len(lost)))
        for n in range(150):  # past --snapshot-count: snapshots are taken
            c.ctl(alive[n % 2], "put", "after%03d" % n, "x", check=True)
        # the dead member comes back and catches up
        c.start(lead)
        c.wait_ready(lead)

        def caught_up():
            r = c.ctl(lead, "get", "after149", "--print-value-only", "--consistency=s")
            return r.stdout.strip() == "x" or None
        check(wait_for(caught_up, timeout=20) is not None, "the restarted member caught up")
        # far behind: 6000 entries while it is down pass the leader's 5000
        # entry catch-up window, so it must be sent a database snapshot
        bench = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(metcd))),
                             "tools", "bench", "metcd-bench")
        if os.path.exists(bench):
            behind = alive[0]
            c.kill(behind)
            others = [i for i in range(3) if i != behind]
            # a lease and its key that the member will know only from the snapshot
            snap_lease = c.ctl(others[0], "lease", "grant", "600", check=True).stdout.split()[1]
            c.ctl(others[0], "put", "--lease", snap_lease, "snapleased", "x", check=True)
            r = subprocess.run([bench, "put", "--endpoints",
                                ",".join(c.endpoint(i) for i in others), "--clients", "16",
                                "--conns", "2", "--total", "6000", "--key-size", "8",
                                "--val-size", "64", "--key-space", "2000", "--no-progress"],
                               capture_output=True, text=True, timeout=120)
            check(r.returncode == 0, "6000 writes while a member is down")
            c.start(behind)
            c.wait_ready(behind)

            def same_hash():
                hs = set()
                for i in range(3):
                    rr = c.ctl(i, "endpoint", "hashkv", "-w", "json")
                    if rr.returncode != 0:
                        return None
                    hs.add(json.loads(rr.stdout)[0]["HashKV"]["hash"])
                return True if len(hs) == 1 else None
            check(wait_for(same_hash, timeout=30) is not None,
                  "the member brought back by a database snapshot agrees (HashKV)")
            check("applied snapshot at index" in c.log(behind),
                  "it was brought back by a snapshot, not by entries")
            r = c.ctl(behind, "lease", "list")
            check(snap_lease in r.stdout, "its lessor was rebuilt from the snapshot (lease list)")
            c.ctl(behind, "lease", "revoke", snap_lease, check=True)
            check(wait_for(lambda: c.ctl(behind, "get", "snapleased", "--consistency=s",
                                         "--print-value-only").stdout.strip() == "", timeout=10)
                  is not None, "revoking that lease deletes its key there too (attachments rebuilt)")
        # watches: a follower's stream equals the leader's, in order; a
        # watch resumed after the follower restarts misses and repeats nothing
        cur = wait_for(lambda: c.leader(range(3)), timeout=10)
        if cur is not None:
            fol = (cur + 1) % 3
            env = dict(os.environ, ETCDCTL_API="3")

            def watcher(i, rev):
                return subprocess.Popen([harness.ETCDCTL, "--endpoints", c.endpoint(i), "watch",
                                         "w/", "--prefix", "-w", "json", "--rev", str(rev)],
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                        text=True, env=env)

            def events(out):
                evs = []
                for line in out.splitlines():
                    line = line.strip()
                    if not line:
                        continue
                    for e in json.loads(line).get("Events", []):
                        evs.append((e["kv"]["key"], e["kv"]["mod_revision"], e.get("type", 0)))
                return evs
            start = json.loads(c.ctl(cur, "put", "w/start", "0", "-w", "json",
                                     check=True).stdout)["header"]["revision"]
            wl, wf = watcher(cur, start), watcher(fol, start)
            for n in range(20):
                c.ctl(None, "put", "w/k%d" % (n % 5), str(n), check=True)
            c.ctl(None, "del", "w/k1", check=True)
            time.sleep(1.5)
            for p in (wl, wf):
                p.terminate()
            el, ef = events(wl.communicate()[0]), events(wf.communicate()[0])
            check(len(el) == 22 and el == ef,
                  "a watch on a follower sees the leader's events in order (%d vs %d)"
                  % (len(ef), len(el)))
            # resume across a restart of the follower
            last = ef[10][1] if len(ef) > 10 else start
            c.kill(fol)
            c.ctl(cur, "put", "w/after-kill", "x", check=True)
            c.start(fol)
            c.wait_ready(fol)
            wr = watcher(fol, last + 1)
            time.sleep(1.5)
            wr.terminate()
            er = events(wr.communicate()[0])
            expect = [e for e in el if e[1] > last]
            check(er[:len(expect)] == expect and len(er) == len(expect) + 1,
                  "a watch resumed after the follower's restart: no gap, no duplicate")
        # move the leadership to another member, as etcdctl move-leader does
        cur = wait_for(lambda: c.leader(range(3)), timeout=10)
        if cur is not None:
            target = (cur + 1) % 3
            tid = "%x" % c.status(target)["header"]["member_id"]
            r = c.ctl(cur, "move-leader", tid)
            check(r.returncode == 0 and "Leadership transferred" in r.stdout,
                  "move-leader to another member (%s)" % (r.stdout.strip() or r.stderr.strip()))
            check(wait_for(lambda: c.leader(range(3)), timeout=5) == target,
                  "the transferee leads")
        # membership: add a learner (never started), update it, remove it
        r = c.ctl(None, "member", "add", "newbie", "--learner",
                  "--peer-urls=http://127.0.0.1:%d" % harness.free_port())
        check(r.returncode == 0 and "Member" in r.stdout and "added to cluster" in r.stdout,
              "member add --learner (%s)" % (r.stdout.strip() or r.stderr.strip()))
        r = c.ctl(None, "member", "list", "-w", "json", check=True)
        ms = json.loads(r.stdout)["members"]
        learner = [m for m in ms if m.get("isLearner")]
        check(len(ms) == 4 and len(learner) == 1, "the learner is listed, unstarted")
        if learner:
            lid = "%x" % learner[0]["ID"]
            r = c.ctl(None, "member", "update", lid,
                      "--peer-urls=http://127.0.0.1:%d" % harness.free_port())
            check(r.returncode == 0, "member update (%s)" % (r.stdout.strip() or r.stderr.strip()))
            r = c.ctl(None, "member", "promote", lid)
            check(r.returncode != 0, "promoting a learner that is not in sync fails")
            r = c.ctl(None, "member", "remove", lid)
            check(r.returncode == 0, "member remove (%s)" % (r.stdout.strip() or r.stderr.strip()))
            r = c.ctl(None, "member", "remove", lid)
            check("member not found" in r.stderr, "removing it again: member not found")
        r = c.ctl(None, "member", "list", "-w", "json", check=True)
        check(len(json.loads(r.stdout)["members"]) == 3, "back to three members")
    finally:
        if failures:
            for i in range(3):
                print("---- log of member %d (tail)" % i)
                print(c.log(i)[-2500:])
        c.cleanup()
    print("%d passed, %d failed" % (checks - failures, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
