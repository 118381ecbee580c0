#!/usr/bin/python3
"""Snapshot restore: `etcdctl snapshot save` from a running metcd, then
`metcd-restore` into three data dirs, a new three-member cluster over them:
every key and the revision are back, writes go on; a snapshot whose bytes
changed is refused by its SHA-256.

usage: test_restore.py METCD_BINARY
"""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_cluster import Cluster, wait_for  # noqa: E402


def main():
    metcd = os.path.abspath(sys.argv[1])
    restore = os.path.join(os.path.dirname(metcd), "metcd-restore")
    src = harness.Server(metcd)
    c = Cluster(metcd)
    checks = failures = 0

    def check(ok, what):
        nonlocal checks, failures
        checks += 1
        print(("ok   " if ok else "FAIL ") + what)
        failures += 0 if ok else 1

    try:
        src.start()
        for n in range(50):
            src.ctl("put", "r%02d" % n, "v%d" % n, check=True)
        src.ctl("del", "r00", check=True)
        rev = json.loads(src.ctl("get", "r01", "-w", "json", check=True).stdout)["header"]["revision"]
        snap = os.path.join(src.tmp, "snap.db")
        src.ctl("snapshot", "save", snap, check=True)
        # a changed byte is refused
        bad = snap + ".bad"
        with open(snap, "rb") as f:
            data = bytearray(f.read())
        data[len(data) // 2] ^= 0xff
        with open(bad, "wb") as f:
            f.write(data)
        r = subprocess.run([restore, bad, "--name", "m0", "--data-dir",
                            os.path.join(c.tmp, "bad"), "--initial-cluster", c.initial,
                            "--initial-cluster-token", "t"], capture_output=True, text=True)
        check(r.returncode != 0 and "expected sha256" in r.stderr,
              "a snapshot whose bytes changed is refused (%s)" % r.stderr.strip())
        for i, name in enumerate(c.names):
            r = subprocess.run([restore, snap, "--name", name, "--data-dir",
                                os.path.join(c.tmp, name), "--initial-cluster", c.initial,
                                "--initial-cluster-token", "t",
                                "--initial-advertise-peer-urls",
                                "http://127.0.0.1:%d" % c.pports[i]],
                               capture_output=True, text=True)
            check(r.returncode == 0 and "added member" in r.stdout,
                  "metcd-restore into %s" % name)
        for i in range(3):
            c.start(i)
        for i in range(3):
            c.wait_ready(i)
        wait_for(lambda: c.leader(range(3)), timeout=10)
        for i in range(3):
            r = c.ctl(i, "get", "r", "--prefix", "--keys-only")
            check(len(r.stdout.split()) == 49, "member %d holds every restored key" % i)
        r = c.ctl(None, "put", "after-restore", "x", "-w", "json", check=True)
        check(json.loads(r.stdout)["header"]["revision"] == rev + 1,
              "revisions continue from the snapshot's")
        r = c.ctl(None, "member", "list", "-w", "json", check=True)
        check(len(json.loads(r.stdout)["members"]) == 3, "the new cluster has its three members")
    finally:
        src.cleanup()
        c.cleanup()
    print("%d passed, %d failed" % (checks - failures, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
