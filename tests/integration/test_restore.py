#!/usr/bin/python3
"""Snapshot restore: `etcdctl snapshot save` from a running metcd, then
`metcd-restore` into three data dirs, a new three-member cluster over them:
every key and the revision are back, writes go on; a snapshot whose bytes
changed is refused by its SHA-256.

The file is etcd's format (bbolt), both ways: etcdctl's own `snapshot
status` reads metcd's snapshot (bbolt's integrity check included) and agrees
with metcdctl's; the real etcd 3.4 restored from metcd's snapshot serves its
keys and lease, and metcd restored from the real etcd's snapshot serves
etcd's.

usage: test_restore.py METCD_BINARY
"""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

ETCD = "/usr/bin/etcd"


def status(tool, path):
    r = subprocess.run([tool, "-w", "json", "snapshot", "status", path], capture_output=True,
                       text=True, env=dict(os.environ, ETCDCTL_API="3"))
    return json.loads(r.stdout) if r.returncode == 0 else {"error": r.stderr.strip()}


def restore_into(server, snap, restore_argv):
    """Restores snap into server's data dir for its name and peer URL."""
    purl = "http://127.0.0.1:%d" % server.pport
    return subprocess.run(restore_argv + [snap, "--name", server.name, "--data-dir",
                                          server.data_dir, "--initial-cluster",
                                          "%s=%s" % (server.name, purl),
                                          "--initial-advertise-peer-urls", purl],
                          capture_output=True, text=True, env=dict(os.environ, ETCDCTL_API="3"))


def cross_checks(metcd, metcdctl, restore, snap, rev, check):
    """metcd's snapshot read and restored by etcd's tools and etcd itself,
    and etcd's snapshot restored by metcd."""
    ours = status(metcdctl, snap)
    theirs = status(harness.ETCDCTL, snap)
    check("error" not in theirs and theirs.get("revision") == rev,
          "etcdctl snapshot status reads metcd's snapshot: %s" % theirs)
    check(ours == theirs, "metcdctl snapshot status agrees with etcdctl's (%s)" % ours)
    etcd = harness.Server(ETCD, name="e0")
    other = harness.Server(metcd, name="m0")
    try:
        r = restore_into(etcd, snap, [harness.ETCDCTL, "snapshot", "restore"])
        check(r.returncode == 0, "etcdctl snapshot restore of metcd's snapshot (%s)"
              % r.stderr.strip()[-200:])
        etcd.start()
        r = etcd.ctl("get", "r", "--prefix", "--keys-only")
        check(len(r.stdout.split()) == 49, "the real etcd restored from it holds every key")
        r = etcd.ctl("get", "r01", "-w", "json")
        check(json.loads(r.stdout)["header"]["revision"] == rev,
              "and the revision (%s)" % r.stdout.strip()[:120])
        # now etcd's own snapshot, with a lease and a compaction, into metcd
        lease = etcd.ctl("lease", "grant", "300", check=True).stdout.split()[1]
        etcd.ctl("put", "leased", "x", "--lease", lease, check=True)
        etcd.ctl("compaction", "3", check=True)
        esnap = os.path.join(etcd.tmp, "etcd.db")
        etcd.ctl("snapshot", "save", esnap, check=True)
        erev = json.loads(etcd.ctl("get", "leased", "-w", "json").stdout)["header"]["revision"]
        check(status(metcdctl, esnap) == status(harness.ETCDCTL, esnap),
              "metcdctl snapshot status of etcd's snapshot agrees with etcdctl's")
        r = restore_into(other, esnap, [restore])
        check(r.returncode == 0, "metcd-restore of the real etcd's snapshot (%s)"
              % r.stderr.strip()[-200:])
        other.start()
        r = other.ctl("get", "", "--prefix", "--keys-only")
        check(len(r.stdout.split()) == 50, "metcd restored from etcd's snapshot holds its keys")
        r = other.ctl("get", "leased", "-w", "json")
        kv = json.loads(r.stdout)
        check(kv["header"]["revision"] == erev and kv["kvs"][0]["lease"] == int(lease, 16),
              "with its revision and the key's lease")
        r = other.ctl("lease", "timetolive", lease)
        check(r.returncode == 0 and "remaining" in r.stdout and "granted with TTL(300s)" in r.stdout,
              "the lease itself came back (%s)" % r.stdout.strip())
        r = other.ctl("get", "r01", "--rev", "2")
        check("required revision has been compacted" in r.stderr,
              "and the compaction (%s)" % r.stderr.strip()[-100:])
    finally:
        etcd.cleanup()
        other.cleanup()
from test_cluster import Cluster, wait_for  # noqa: E402


def main():
    metcd = os.path.abspath(sys.argv[1])
    restore = os.path.join(os.path.dirname(metcd), "metcd-restore")
    metcdctl = os.path.join(os.path.dirname(metcd), "..", "..", "tools", "metcdctl", "metcdctl")
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
        # a live data dir's database is not a snapshot: said so, nothing made
        mdb = os.path.join(src.data_dir, "member", "db", "data.mdb")
        r = subprocess.run([restore, mdb, "--skip-hash-check", "--name", "m0", "--data-dir",
                            os.path.join(c.tmp, "mdb"), "--initial-cluster", c.initial],
                           capture_output=True, text=True)
        check(r.returncode == 1 and "LMDB database" in r.stderr
              and not os.path.exists(os.path.join(c.tmp, "mdb")),
              "a data dir's LMDB file is refused as a snapshot (%s)" % r.stderr.strip())
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
        c.cleanup()
        cross_checks(metcd, metcdctl, restore, snap, rev, check)
    finally:
        src.cleanup()
        c.cleanup()
    print("%d passed, %d failed" % (checks - failures, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
