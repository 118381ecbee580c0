#!/usr/bin/python3
"""Authentication and role-based access: the same etcdctl 3.4 script against
a fresh metcd and a fresh real etcd 3.4 (both --bcrypt-cost 4), every
step's output compared (text, JSON after masking, or etcdctl's 'Error:'
line and exit status). Then, on metcd alone: the auth state survives a
restart, a watch with --user sees only what it may, and a password
brute-force (bcrypt on the worker thread) never stalls other clients.

usage: test_auth.py METCD_BINARY
"""

import os
import re
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

harness.MASK_KEYS |= {"peerURLs", "clientURLs"}

ROOT = ["--user", "root:rootpw"]
ALICE = ["--user", "alice:apw"]
BOB = ["--user", "bob:bpw"]

TXN_ALLOWED = 'value("a/1") = "x"\n\nput a/2 y\n\nput a/3 z\n\n'
TXN_DENIED_CMP = 'value("secret") = "x"\n\nput a/2 y\n\n\n'
TXN_DENIED_BRANCH = 'value("a/1") = "x"\n\nput a/2 y\n\nput secret z\n\n'

# (etcdctl args, stdin, how): how is text, json, error (exit status + the
# 'Error:' line) or rc (exit status only)
STEPS = [
    # before auth: management without credentials
    (["user", "add", "root:rootpw"], None, "text"),
    (["user", "add", "root:again"], None, "error"),
    (["user", "add", "alice:apw"], None, "text"),
    (["user", "add", "bob:bpw"], None, "text"),
    (["user", "add", "carol:cpw"], None, "text"),
    (["user", "add", ":nopw"], None, "error"),
    (["user", "list"], None, "text"),
    (["user", "get", "alice"], None, "text"),
    (["user", "get", "nobody"], None, "error"),
    (["user", "delete", "carol"], None, "text"),
    (["user", "delete", "carol"], None, "error"),
    (["user", "passwd", "bob", "--interactive=false"], "bpw\n", "text"),
    (["user", "passwd", "nobody", "--interactive=false"], "x\n", "error"),
    (["auth", "enable"], None, "error"),  # no root user... has no root role
    (["role", "add", "root"], None, "text"),
    (["role", "add", "root"], None, "error"),
    (["role", "add", "ra"], None, "text"),
    (["role", "add", "rb"], None, "text"),
    (["role", "add", "tmp"], None, "text"),
    (["role", "list"], None, "text"),
    (["role", "grant-permission", "ra", "readwrite", "a/", "--prefix"], None, "text"),
    (["role", "grant-permission", "ra", "read", "k1"], None, "text"),
    (["role", "grant-permission", "ra", "write", "w1"], None, "text"),
    (["role", "grant-permission", "ra", "read", "m", "n"], None, "text"),
    (["role", "grant-permission", "rb", "readwrite", "z", "--from-key"], None, "text"),
    (["role", "grant-permission", "nobody", "read", "x"], None, "error"),
    (["role", "get", "ra"], None, "text"),
    (["role", "get", "rb", "-w", "json"], None, "json"),
    (["role", "get", "nobody"], None, "error"),
    (["role", "revoke-permission", "ra", "m", "n"], None, "text"),
    (["role", "revoke-permission", "ra", "m", "n"], None, "error"),
    (["role", "delete", "tmp"], None, "text"),
    (["role", "delete", "tmp"], None, "error"),
    (["user", "grant-role", "alice", "ra"], None, "text"),
    (["user", "grant-role", "alice", "nope"], None, "error"),
    (["user", "grant-role", "nobody", "ra"], None, "error"),
    (["user", "grant-role", "bob", "rb"], None, "text"),
    (["user", "grant-role", "bob", "ra"], None, "text"),
    (["user", "revoke-role", "bob", "ra"], None, "text"),
    (["user", "revoke-role", "bob", "ra"], None, "error"),
    (["user", "get", "bob", "--detail"], None, "text"),
    (["auth", "enable"], None, "error"),  # root has no root role yet
    (["user", "grant-role", "root", "root"], None, "text"),
    (["put", "k1", "v1"], None, "text"),
    (["put", "secret", "s"], None, "text"),
    (["auth", "enable"], None, "text"),
    (["auth", "enable"] + ROOT, None, "text"),
    # enabled: no credentials, wrong ones, each boundary
    (["get", "k1"], None, "error"),
    (["put", "k1", "x"], None, "error"),
    (["get", "k1", "--user", "alice:wrong"], None, "error"),
    (["get", "k1", "--user", "nobody:x"], None, "error"),
    (["get", "k1"] + ALICE, None, "text"),
    (["put", "k1", "x"] + ALICE, None, "error"),
    (["put", "w1", "x"] + ALICE, None, "text"),
    (["get", "w1"] + ALICE, None, "error"),
    (["put", "a/1", "x"] + ALICE, None, "text"),
    (["get", "a/", "--prefix"] + ALICE, None, "text"),
    (["get", "a", "--prefix"] + ALICE, None, "error"),
    (["get", "secret"] + ALICE, None, "error"),
    (["del", "a/1", "--prev-kv"] + ALICE, None, "text"),
    (["put", "a/1", "x"] + ALICE, None, "text"),
    (["del", "k1"] + ALICE, None, "error"),
    (["txn"] + ALICE, TXN_ALLOWED, "text"),
    (["txn"] + ALICE, TXN_DENIED_CMP, "error"),
    (["txn"] + ALICE, TXN_DENIED_BRANCH, "error"),
    (["put", "z", "1"] + BOB, None, "text"),
    (["put", "zzz", "1"] + BOB, None, "text"),
    (["put", "y", "1"] + BOB, None, "error"),
    (["get", "z", "--from-key"] + BOB, None, "text"),
    (["get", "y", "--from-key"] + BOB, None, "error"),
    (["get", "secret"] + ROOT, None, "text"),
    # Lock runs on the caller's credentials
    (["lock", "a/l", "echo", "locked"] + ALICE, None, "text"),
    (["lock", "other", "echo", "locked"] + ALICE, None, "error"),
    # management is root's
    (["user", "list"] + ALICE, None, "error"),
    (["role", "list"] + ALICE, None, "error"),
    (["user", "get", "alice"] + ALICE, None, "text"),
    (["user", "get", "bob"] + ALICE, None, "error"),
    (["role", "get", "ra"] + ALICE, None, "text"),
    (["role", "get", "rb"] + ALICE, None, "error"),
    (["user", "add", "eve:x"] + ALICE, None, "error"),
    (["role", "add", "evil"] + ALICE, None, "error"),
    (["auth", "disable"] + ALICE, None, "error"),
    (["user", "delete", "root"] + ROOT, None, "error"),
    (["user", "revoke-role", "root", "root"] + ROOT, None, "error"),
    (["role", "delete", "root"] + ROOT, None, "error"),
    (["user", "list"] + ROOT, None, "text"),
    (["defrag"] + ALICE, None, "error"),
    (["endpoint", "hashkv"] + ALICE, None, "error"),
    (["member", "list", "-w", "json"] + ALICE, None, "json"),
    # role changes take effect at once
    (["role", "revoke-permission", "ra", "a/", "--prefix"] + ROOT, None, "text"),
    (["put", "a/1", "y"] + ALICE, None, "error"),
    (["role", "grant-permission", "ra", "readwrite", "a/", "--prefix"] + ROOT, None, "text"),
    (["put", "a/1", "y"] + ALICE, None, "text"),
    (["user", "passwd", "alice", "--interactive=false"] + ROOT, "apw2\n", "text"),
    (["get", "k1"] + ALICE, None, "error"),
    (["get", "k1", "--user", "alice:apw2"], None, "text"),
    (["auth", "disable"] + ROOT, None, "text"),
    (["get", "secret"], None, "text"),
    (["user", "delete", "root"], None, "text"),
]


def run(server, args, stdin):
    r = server.ctl(*args, stdin=stdin)
    out = r.stdout.replace(server.endpoint, "ENDPOINT")
    err = harness.error_line(r.stderr).replace(server.endpoint, "ENDPOINT")
    # a retry log line instead of 'Error:': its error, without time and target
    m = re.search(r'"error":"([^"]*)"', err)
    return r.returncode, out, m.group(1) if m else err


def compare(how, a, b):
    (rc_a, out_a, err_a), (rc_b, out_b, err_b) = a, b
    if rc_a != rc_b:
        return "exit status %s vs %s (stderr %r vs %r)" % (rc_a, rc_b, err_a, err_b)
    if how == "json":
        ja, jb = harness.masked_json(out_a), harness.masked_json(out_b)
        if ja != jb:
            return "json differs:\n  metcd: %s\n  etcd:  %s" % (ja, jb)
    elif how == "text":
        if out_a != out_b:
            return "output differs:\n  metcd: %r\n  etcd:  %r" % (out_a, out_b)
    elif how == "error":
        if err_a != err_b:
            return "error differs:\n  metcd: %r\n  etcd:  %r" % (err_a, err_b)
    return None


def check(results, name, ok, detail=""):
    results.append(ok)
    print("%s %s%s" % ("ok  " if ok else "FAIL", name, (": " + detail) if detail and not ok else ""))


def watch_output(server, args, actions, wait=1.0):
    """Starts `etcdctl watch args`, runs actions(), returns what it printed."""
    cmd = [harness.ETCDCTL, "--endpoints", server.endpoint] + args
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         env=dict(os.environ, ETCDCTL_API="3"))
    time.sleep(wait)
    actions()
    time.sleep(wait)
    p.terminate()
    out, _ = p.communicate(timeout=10)
    return out


def metcd_only(metcd, results):
    s = harness.Server(metcd, extra=["--bcrypt-cost", "4"])
    try:
        s.start()
        for args in (["user", "add", "root:rootpw"], ["user", "grant-role", "root", "root"],
                     ["user", "add", "w:wpw"], ["role", "add", "rw"],
                     ["role", "grant-permission", "rw", "read", "w/", "--prefix"],
                     ["user", "grant-role", "w", "rw"], ["auth", "enable"]):
            s.ctl(*args, check=True)
        # a restart keeps users, roles and the enabled flag
        s.kill()
        s.start()
        r = s.ctl("get", "w/x")
        check(results, "auth stays enabled after a restart",
              r.returncode != 0 and "user name is empty" in r.stderr, r.stderr)
        r = s.ctl("role", "get", "rw", *ROOT)
        check(results, "roles survive a restart", r.returncode == 0 and "w/" in r.stdout,
              r.stdout + r.stderr)

        # watch: a permitted prefix sees events, a forbidden key is refused
        out = watch_output(s, ["watch", "w/", "--prefix", "--user", "w:wpw"],
                           lambda: s.ctl("put", "w/a", "1", *ROOT, check=True))
        check(results, "watch with read permission sees the put", "w/a" in out, out)
        out = watch_output(s, ["watch", "other", "--user", "w:wpw"], lambda: None, wait=0.5)
        check(results, "watch without permission is refused", "permission denied" in out, out)

        # brute force: wrong passwords keep the bcrypt worker busy while
        # other clients are served at once
        s.kill()
        s.extra = ["--bcrypt-cost", "12"]
        s.start()
        stop = time.time() + 3

        def attack():
            while time.time() < stop:
                s.ctl("get", "x", "--user", "root:guess")

        threads = [threading.Thread(target=attack) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        worst = 0.0
        for _ in range(10):
            t0 = time.time()
            with urllib.request.urlopen("http://%s/health" % s.endpoint, timeout=5) as resp:
                resp.read()
            worst = max(worst, time.time() - t0)
            time.sleep(0.1)
        for t in threads:
            t.join()
        check(results, "other clients are served during a password brute force (worst %.3fs)"
              % worst, worst < 0.5)
        r = s.ctl("get", "w/a", *ROOT)
        check(results, "the right password still works after it", r.returncode == 0, r.stderr)
    finally:
        s.cleanup()


def cluster_part(metcd, results):
    """Auth replicated through raft: set up while a member is down, then
    that member, brought back by a database snapshot, enforces it."""
    from test_cluster import Cluster, wait_for
    bench = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(metcd))),
                         "tools", "bench", "metcd-bench")
    if not os.path.exists(bench):
        print("skip cluster part: no metcd-bench")
        return
    c = Cluster(metcd, extra=["--bcrypt-cost", "4", "--snapshot-count", "100"])
    try:
        for i in range(3):
            c.start(i)
        for i in range(3):
            c.wait_ready(i)
        c.kill(2)
        # when it led, the other two elect a new leader first
        check(results, "a leader among the members left",
              wait_for(lambda: c.leader([0, 1]) is not None, timeout=20) is not None)
        for args in (["user", "add", "root:rootpw"], ["user", "grant-role", "root", "root"],
                     ["user", "add", "w:wpw"], ["role", "add", "rw"],
                     ["role", "grant-permission", "rw", "readwrite", "w/", "--prefix"],
                     ["user", "grant-role", "w", "rw"]):
            c.ctl(0, *args, check=True)
        r = subprocess.run([bench, "put", "--endpoints", "%s,%s" % (c.endpoint(0), c.endpoint(1)),
                            "--clients", "16", "--conns", "2", "--total", "6000",
                            "--key-size", "8", "--val-size", "64", "--key-space", "2000",
                            "--no-progress"], capture_output=True, text=True, timeout=120)
        check(results, "6000 writes while a member is down", r.returncode == 0, r.stderr)
        c.ctl(0, "auth", "enable", check=True)
        c.ctl(1, "put", "w/x", "1", *["--user", "w:wpw"], check=True)
        c.start(2)
        c.wait_ready(2)

        def served():
            r = c.ctl(2, "get", "w/x", "--print-value-only", "--consistency=s", "--user", "w:wpw")
            return r.returncode == 0 and r.stdout.strip() == "1" or None
        check(results, "a member brought back by a snapshot authenticates and serves the user",
              wait_for(served, timeout=30) is not None)
        check(results, "it was brought back by a snapshot", "applied snapshot at index" in c.log(2))
        r = c.ctl(2, "get", "other", "--consistency=s", "--user", "w:wpw")
        check(results, "and enforces permissions", "permission denied" in r.stderr, r.stderr)
        r = c.ctl(2, "get", "w/x", "--consistency=s")
        check(results, "and knows auth is enabled", "user name is empty" in r.stderr, r.stderr)
    finally:
        c.cleanup()


def main():
    metcd = os.path.abspath(sys.argv[1])
    ours = harness.Server(metcd, extra=["--bcrypt-cost", "4"])
    ref = harness.Server(harness.ETCD, extra=["--bcrypt-cost", "4"])
    results = []
    try:
        ours.start()
        ref.start()
        for args, stdin, how in STEPS:
            problem = compare(how, run(ours, args, stdin), run(ref, args, stdin))
            check(results, "etcdctl " + " ".join(args), problem is None, problem or "")
    finally:
        ours.cleanup()
        ref.cleanup()
    metcd_only(metcd, results)
    cluster_part(metcd, results)
    failed = results.count(False)
    print("%d passed, %d failed" % (len(results) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
