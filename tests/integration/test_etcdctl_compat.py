#!/usr/bin/python3
"""etcdctl 3.4 against a fresh metcd and a fresh real etcd 3.4, same script:
every step's output must be the same (JSON compared after masking ids,
term, sizes and URLs; errors compared by etcdctl's 'Error:' line and exit
status).

usage: test_etcdctl_compat.py METCD_BINARY
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

harness.MASK_KEYS |= {"peerURLs", "clientURLs", "Endpoint"}

# (etcdctl args, stdin, how to compare)
#   json  - parse stdout as JSON, mask, compare
#   text  - compare stdout (endpoints replaced)
#   error - compare exit status and the 'Error:' line
#   rc    - compare exit status only
TXN_OK = 'value("k1") = "v1"\n\nput t1 ok\nget k1\n\nput t1 fail\n\n'
TXN_FAIL = 'value("k1") = "nope"\n\nput t2 ok\n\nput t2 fail\ndel k2\n\n'
TXN_DUP = '\nput d 1\nput d 2\n\n\n'
TXN_RANGE_CMP = 'create("s/", "s0") > "0"\n\nget s/ --prefix\n\n\n'
TXN_TOO_MANY = '\n' + ''.join('put many%d v\n' % i for i in range(129)) + '\n\n'
TXN_MAX_OK = '\n' + ''.join('put many%d v\n' % i for i in range(128)) + '\n\n'
BIG_VALUE = 'x' * 1600000  # over --max-request-bytes (1.5 MiB), under gRPC's limit

STEPS = [
    (["put", "k1", "v1"], None, "text"),
    (["put", "k2", "v2"], None, "text"),
    (["put", "k3", "v3"], None, "text"),
    (["put", "k1", "v1b", "-w", "json"], None, "json"),
    (["put", "s/a", "1"], None, "text"),
    (["put", "s/b", "2"], None, "text"),
    (["put", "s/c", "3"], None, "text"),
    (["put", "k2", "v2b", "--prev-kv", "-w", "json"], None, "json"),
    (["get", "k1", "-w", "json"], None, "json"),
    (["get", "k", "--prefix", "-w", "json"], None, "json"),
    (["get", "k", "--prefix"], None, "text"),
    (["get", "k2", "--from-key", "-w", "json"], None, "json"),
    (["get", "", "--from-key", "--keys-only"], None, "text"),
    (["get", "s/", "--prefix", "--limit", "2", "-w", "json"], None, "json"),
    (["get", "k1", "--rev", "2", "-w", "json"], None, "json"),
    (["get", "k", "--prefix", "--sort-by", "MODIFY", "--order", "DESCEND", "-w", "json"], None, "json"),
    (["get", "k", "--prefix", "--sort-by", "VALUE", "--order", "ASCEND"], None, "text"),
    (["get", "k", "--prefix", "--sort-by", "VERSION", "--order", "DESCEND"], None, "text"),
    (["get", "k", "--prefix", "--sort-by", "CREATE"], None, "text"),
    (["get", "s/", "--prefix", "--keys-only"], None, "text"),
    (["get", "s/", "--prefix", "--limit", "1", "-w", "json"], None, "json"),
    (["get", "s/", "--prefix", "--print-value-only"], None, "text"),
    (["get", "k1", "--consistency", "s", "-w", "json"], None, "json"),
    (["get", "nothing", "-w", "json"], None, "json"),
    (["get", "k3", "k1"], None, "text"),  # range end before key: empty
    (["del", "k3"], None, "text"),
    (["del", "s/", "--prefix", "--prev-kv", "-w", "json"], None, "json"),
    (["del", "absent"], None, "text"),
    (["txn", "-w", "json"], TXN_OK, "json"),
    (["txn"], TXN_FAIL, "text"),
    (["txn"], TXN_DUP, "error"),
    (["txn", "-w", "json"], TXN_RANGE_CMP, "json"),
    (["get", "t1", "--print-value-only"], None, "text"),
    (["get", "t2", "--print-value-only"], None, "text"),
    (["put", "k1", "x", "--ignore-value"], None, "error"),
    (["put", "nokey", "--ignore-value"], None, "error"),
    (["put", "k1", "v", "--lease", "1234"], None, "error"),
    (["get", ""], None, "error"),
    (["put", "big"], BIG_VALUE, "error"),
    (["txn"], TXN_TOO_MANY, "error"),
    (["txn"], TXN_MAX_OK, "rc"),
    (["compaction", "100"], None, "error"),
    (["compaction", "5"], None, "text"),
    (["get", "k1", "--rev", "3"], None, "error"),
    (["get", "k1", "--rev", "5", "-w", "json"], None, "json"),
    (["compaction", "5"], None, "error"),
    (["compaction", "6", "--physical"], None, "text"),
    (["get", "k1", "--rev", "1000"], None, "error"),
    (["endpoint", "status", "-w", "json"], None, "json"),
    (["endpoint", "health"], None, "rc"),
    (["endpoint", "hashkv", "-w", "json"], None, "json"),
    (["member", "list", "-w", "json"], None, "json"),
    (["alarm", "list"], None, "text"),
    (["alarm", "disarm"], None, "text"),
    (["defrag"], None, "text"),
    (["snapshot", "save", "SNAPFILE"], None, "rc"),
    (["get", "", "--from-key", "-w", "json"], None, "json"),
]


def run(server, args, stdin):
    args = [a.replace("SNAPFILE", os.path.join(server.tmp, "snap.db")) for a in args]
    r = server.ctl(*args, stdin=stdin)
    out = r.stdout.replace(server.endpoint, "ENDPOINT")
    return r.returncode, out, harness.error_line(r.stderr)


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


def main():
    metcd = os.path.abspath(sys.argv[1])
    ours = harness.Server(metcd)
    ref = harness.Server(harness.ETCD)
    failures = 0
    passed = 0
    try:
        ours.start()
        ref.start()
        for args, stdin, how in STEPS:
            a = run(ours, args, stdin)
            b = run(ref, args, stdin)
            problem = compare(how, a, b)
            name = " ".join(args)
            if problem:
                failures += 1
                print("FAIL etcdctl %s: %s" % (name, problem))
            else:
                passed += 1
                print("ok   etcdctl %s" % name)
        # the snapshot file is a database plus its sha256, as etcd sends it
        snap = os.path.join(ours.tmp, "snap.db")
        size = os.path.getsize(snap)
        if size < 4096:
            failures += 1
            print("FAIL snapshot save wrote only %d bytes" % size)
    finally:
        ours.cleanup()
        ref.cleanup()
    print("%d passed, %d failed" % (passed, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
