#!/usr/bin/python3
"""Joining a running cluster, as etcd's `member add` + `--initial-cluster-state
existing`: the new member learns its ids from the running members, catches
up and serves; a learner started the same way catches up and is promoted;
a member that was never added is refused at start.

usage: test_join.py METCD_BINARY
"""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_cluster import Cluster, wait_for  # noqa: E402


def start_joiner(c, name, cport, pport, initial, extra=()):
    cu, pu = "http://127.0.0.1:%d" % cport, "http://127.0.0.1:%d" % pport
    log = open(os.path.join(c.tmp, name + ".log"), "ab")
    p = subprocess.Popen([c.binary, "--name", name, "--data-dir", os.path.join(c.tmp, name),
                          "--listen-client-urls", cu, "--advertise-client-urls", cu,
                          "--listen-peer-urls", pu, "--initial-advertise-peer-urls", pu,
                          "--initial-cluster-token", "t", "--initial-cluster", initial,
                          "--initial-cluster-state", "existing"] + list(extra),
                         stdout=log, stderr=subprocess.STDOUT, cwd=c.tmp)
    log.close()
    return p


def read_log(c, name):
    with open(os.path.join(c.tmp, name + ".log"), "rb") as f:
        return f.read().decode(errors="replace")


def main():
    metcd = os.path.abspath(sys.argv[1])
    c = Cluster(metcd)
    checks = failures = 0
    procs = []

    def check(ok, what):
        nonlocal checks, failures
        checks += 1
        print(("ok   " if ok else "FAIL ") + what)
        failures += 0 if ok else 1

    try:
        for i in range(3):
            c.start(i)
        for i in range(3):
            c.wait_ready(i)
        wait_for(lambda: c.leader(range(3)), timeout=10)
        for n in range(30):
            c.ctl(None, "put", "old%02d" % n, "v", check=True)
        # a voter
        cport, pport = harness.free_port(), harness.free_port()
        r = c.ctl(None, "member", "add", "m3", "--peer-urls=http://127.0.0.1:%d" % pport)
        check(r.returncode == 0, "member add m3")
        initial = c.initial + ",m3=http://127.0.0.1:%d" % pport
        p = start_joiner(c, "m3", cport, pport, initial)
        procs.append(p)
        ready = wait_for(lambda: "ready to serve client requests" in read_log(c, "m3") or None,
                         timeout=20)
        check(ready is not None, "the joined member serves (%s)" % read_log(c, "m3")[-300:].replace("\n", " | ") if not ready else "the joined member serves")
        ep = "127.0.0.1:%d" % cport
        env = dict(os.environ, ETCDCTL_API="3")
        r = subprocess.run([harness.ETCDCTL, "--endpoints", ep, "get", "old", "--prefix",
                            "--keys-only"], capture_output=True, text=True, env=env)
        got = len(r.stdout.split()) if r.returncode == 0 else r.stderr[-200:]
        check(got == 30, "it caught up with the data written before it joined (%s)" % got)
        r = subprocess.run([harness.ETCDCTL, "--endpoints", ep, "put", "via-m3", "1"],
                           capture_output=True, text=True, env=env)
        check(r.returncode == 0, "a write through the joined member")
        r = c.ctl(None, "member", "list", "-w", "json", check=True)
        ms = json.loads(r.stdout)["members"]
        check(len(ms) == 4 and all(m.get("name") for m in ms), "four started members")
        # a learner: started, caught up, promoted
        lport, lpport = harness.free_port(), harness.free_port()
        r = c.ctl(None, "member", "add", "l4", "--learner",
                  "--peer-urls=http://127.0.0.1:%d" % lpport)
        check(r.returncode == 0, "member add l4 --learner")
        lid = None
        for m in json.loads(c.ctl(None, "member", "list", "-w", "json", check=True).stdout)["members"]:
            if m.get("isLearner"):
                lid = "%x" % m["ID"]
        pl = start_joiner(c, "l4", lport, lpport, initial + ",l4=http://127.0.0.1:%d" % lpport)
        procs.append(pl)
        wait_for(lambda: "ready to serve client requests" in read_log(c, "l4") or None, timeout=20)

        def promoted():
            r = c.ctl(None, "member", "promote", lid)
            return True if r.returncode == 0 else None
        check(lid is not None and wait_for(promoted, timeout=15, step=0.5) is not None,
              "the started learner is promoted once in sync")
        # never added: refused
        xp = start_joiner(c, "x9", harness.free_port(), harness.free_port(),
                          initial + ",x9=http://127.0.0.1:1")
        procs.append(xp)
        try:
            xp.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        check(xp.poll() not in (None, 0) and "has not been added" in read_log(c, "x9"),
              "a member that was never added is refused")
        # a started member whose data dir was wiped is refused, as etcd does
        import shutil
        c.kill(0)
        shutil.rmtree(os.path.join(c.tmp, c.names[0]))
        c.start(0)
        try:
            c.procs[0].wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        check(c.procs[0].poll() not in (None, 0) and "has already been bootstrapped" in c.log(0),
              "a member restarted with a wiped data dir is refused")
    finally:
        if failures:
            for nm in ("m3", "l4"):
                try:
                    print("---- %s" % nm, read_log(c, nm)[-2000:])
                except OSError:
                    pass
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        c.cleanup()
    print("%d passed, %d failed" % (checks - failures, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
