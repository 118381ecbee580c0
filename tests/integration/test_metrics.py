#!/usr/bin/python3
"""/metrics, /health and /version side by side with the real etcd 3.4:
after the same etcdctl operations, the metric lines etcd's own e2e test and
dashboards read carry the same values on both. Then metcd alone: the whole
scrape parses with the Prometheus client library's parser (types, samples,
histogram buckets), --listen-metrics-urls serves /metrics and /health only,
--metrics extensive adds grpc_server_handling_seconds, /health answers GET
only and ?serializable=true, and /debug/channelz gives JSON and HTML.

usage: test_metrics.py METCD_BINARY
"""

import json
import os
import re
import sys
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

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


def fetch(server, path, endpoint=None, method="GET", headers=None):
    req = urllib.request.Request("http://%s%s" % (endpoint or server.endpoint, path),
                                 method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def metcd_alone(metcd):
    """Checks of metcd's own observability; returns (checks, failures)."""
    mport = harness.free_port()
    s = harness.Server(metcd, extra=["--listen-metrics-urls", "http://127.0.0.1:%d" % mport,
                                     "--metrics", "extensive"])
    checks = failures = 0

    def check(ok, what):
        nonlocal checks, failures
        checks += 1
        if not ok:
            failures += 1
        print(("ok   " if ok else "FAIL ") + what)

    try:
        s.start()
        s.ctl("put", "a", "1", check=True)
        s.ctl("get", "a", check=True)
        mep = "127.0.0.1:%d" % mport
        st, text = fetch(s, "/metrics", endpoint=mep)
        check(st == 200 and "etcd_mvcc_put_total 1" in text,
              "--listen-metrics-urls serves /metrics")
        try:
            fams = {f.name: f for f in text_string_to_metric_families(text)}
            parsed = True
        except Exception as e:  # the parser's own complaint is the message
            fams, parsed = {}, False
            print("  parse error: %s" % e)
        check(parsed and len(fams) > 30, "the scrape parses with prometheus_client (%d families)"
              % len(fams))
        want = {"etcd_disk_wal_fsync_duration_seconds": "histogram",
                "etcd_server_has_leader": "gauge",
                "etcd_mvcc_put": "counter",  # the parser drops _total from counter names
                "grpc_server_handled": "counter",
                "grpc_server_handling_seconds": "histogram",
                "etcd_debugging_mvcc_watcher_total": "gauge",
                "etcd_server_health_success": "counter",
                "process_cpu_seconds": "counter",
                "process_start_time_seconds": "gauge",
                "etcd_network_client_grpc_received_bytes": "counter"}
        for name, typ in want.items():
            f = fams.get(name)
            check(f is not None and f.type == typ, "%s is a %s" % (name, typ))
        h = fams.get("grpc_server_handling_seconds")
        put_count = [x.value for x in h.samples if x.name.endswith("_count")
                     and x.labels.get("grpc_method") == "Put"] if h else []
        check(put_count == [1.0], "--metrics extensive: one Put in grpc_server_handling_seconds")
        rx = [x.value for x in fams["etcd_network_client_grpc_received_bytes"].samples] \
            if "etcd_network_client_grpc_received_bytes" in fams else []
        check(rx and rx[0] > 0, "client gRPC bytes are counted (%s received)" % rx)
        check(fetch(s, "/health", endpoint=mep) == (200, '{"health":"true"}'),
              "--listen-metrics-urls serves /health")
        check(fetch(s, "/version", endpoint=mep)[0] == 404,
              "--listen-metrics-urls serves nothing else (/version: 404)")
        check(fetch(s, "/health?serializable=true") == (200, '{"health":"true"}'),
              "/health?serializable=true")
        check(fetch(s, "/health", method="POST") == (405, "Method Not Allowed\n"),
              "/health refuses POST as etcd (405)")
        st, body = fetch(s, "/debug/channelz", headers={"Accept": "application/json"})
        try:
            cz = json.loads(body)
            srv = cz["servers"][0]
            ok = st == 200 and srv["calls"]["started"] >= 2 and srv["listen_sockets"]
        except (ValueError, KeyError, IndexError):
            ok = False
        check(ok, "/debug/channelz JSON: the client server with its calls and sockets")
        st, body = fetch(s, "/debug/channelz")
        check(st == 200 and body.startswith("<!DOCTYPE html>") and "listen_socket" in body,
              "/debug/channelz HTML for a person")
    finally:
        s.cleanup()
    return checks, failures


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
    c, f = metcd_alone(metcd)
    checks += c
    failures += f
    print("%d passed, %d failed" % (checks - failures, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
