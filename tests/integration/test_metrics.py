#!/usr/bin/python3
"""/metrics, /health and /version side by side with the real etcd 3.4:
after the same etcdctl operations, the metric lines etcd's own e2e test and
dashboards read carry the same values on both.

usage: test_metrics.py METCD_BINARY
"""

import os
import re
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SAME = [
    r"^etcd_mvcc_put_total ",
    r"^etcd_mvcc_delete_total ",
    r"^etcd_debugging_mvcc_keys_total ",
    r"^etcd_server_version\{",
    r"^etcd_cluster_version\{",
    r"^etcd_server_has_leader ",
    r"^etcd_server_is_leader ",
    r'^grpc_server_started_total\{grpc_method="Put"',
    r'^grpc_server_handled_total\{grpc_code="OK",grpc_method="Put"',
    r'^grpc_server_handled_total\{grpc_code="OK",grpc_method="DeleteRange"',
    r'^grpc_server_handled_total\{grpc_code="OutOfRange",grpc_method="Range"',
]
PRESENT = [
    r"^etcd_disk_wal_fsync_duration_seconds_bucket\{le=\"0.001\"\} ",
    r"^etcd_disk_backend_commit_duration_seconds_count ",
    r"^etcd_mvcc_db_total_size_in_bytes ",
    r"^etcd_server_leader_changes_seen_total ",
    r"^etcd_server_proposals_committed_total ",
    r"^process_resident_memory_bytes ",
]


def fetch(server, path):
    with urllib.request.urlopen("http://%s%s" % (server.endpoint, path), timeout=10) as r:
        return r.status, r.read().decode()


def lines(text, pattern):
    return sorted(l for l in text.splitlines() if re.search(pattern, l))


def main():
    metcd = os.path.abspath(sys.argv[1])
    ours, ref = harness.Server(metcd), harness.Server(harness.ETCD)
    checks = failures = 0
    try:
        ours.start()
        ref.start()
        texts = []
        for s in (ours, ref):
            s.ctl("put", "a", "1", check=True)
            s.ctl("put", "b", "2", check=True)
            for k in ("a", "x", "y"):
                s.ctl("del", k, check=True)
            s.ctl("get", "b", "--rev", "100")  # OutOfRange
            texts.append(fetch(s, "/metrics")[1])
        for pat in SAME:
            checks += 1
            a, b = lines(texts[0], pat), lines(texts[1], pat)
            if not a or a != b:
                failures += 1
                print("FAIL %s:\n  metcd: %s\n  etcd:  %s" % (pat, a, b))
        for pat in PRESENT:
            checks += 1
            if not lines(texts[0], pat):
                failures += 1
                print("FAIL missing %s" % pat)
        for path in ("/health", "/version"):
            checks += 1
            a, b = fetch(ours, path), fetch(ref, path)
            if a != b:
                failures += 1
                print("FAIL %s: metcd %s, etcd %s" % (path, a, b))
    finally:
        ours.cleanup()
        ref.cleanup()
    print("%d passed, %d failed" % (checks - failures, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
