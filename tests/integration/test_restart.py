#!/usr/bin/python3
"""kill -9 during a write load, restart on the same data dir: every
acknowledged write is there with its value, revisions go on from where
they were, and a clean SIGTERM stop afterwards exits 0 (with no leak report
in the sanitizer build).

usage: test_restart.py METCD_BINARY
"""

import json
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def writer(server, wid, acked, stop):
    i = 0
    while not stop.is_set():
        key = "w%d-%d" % (wid, i)
        r = server.ctl("put", key, "v%d" % i, "-w", "json")
        if r.returncode == 0:
            rev = json.loads(r.stdout)["header"]["revision"]
            acked.append((key, "v%d" % i, rev))
        i += 1


def main():
    metcd = os.path.abspath(sys.argv[1])
    s = harness.Server(metcd, extra=["--snapshot-count", "50"])
    failures = 0
    checks = 0
    try:
        s.start()
        acked = []
        stop = threading.Event()
        threads = [threading.Thread(target=writer, args=(s, w, acked, stop)) for w in range(4)]
        for t in threads:
            t.start()
        time.sleep(3)
        s.kill(signal.SIGKILL)
        stop.set()
        for t in threads:
            t.join()
        print("acknowledged before SIGKILL: %d writes" % len(acked))
        if len(acked) < 10:
            print("FAIL too few writes acknowledged to prove anything")
            failures += 1
        s.start()
        missing = 0
        for key, val, _ in acked:
            r = s.ctl("get", key, "--print-value-only")
            if r.stdout.strip() != val:
                missing += 1
                print("FAIL acknowledged %s=%s is %r after restart" % (key, val, r.stdout.strip()))
        checks += 1
        failures += missing > 0
        # nothing applied twice: every key was written once, so each has
        # version 1 and was created at its one modification
        r = s.ctl("get", "w", "--prefix", "-w", "json", check=True)
        kvs = json.loads(r.stdout).get("kvs", [])
        twice = [kv for kv in kvs if kv["version"] != 1 or kv["create_revision"] != kv["mod_revision"]]
        revs = sorted(kv["mod_revision"] for kv in kvs)
        checks += 1
        if twice or len(set(revs)) != len(revs):
            print("FAIL entries applied twice after restart: %s" % twice[:3])
            failures += 1
        max_rev = max((rev for _, _, rev in acked), default=1)
        r = s.ctl("put", "after", "restart", "-w", "json", check=True)
        rev = json.loads(r.stdout)["header"]["revision"]
        checks += 1
        if rev <= max_rev:
            print("FAIL revision went back: %d after %d" % (rev, max_rev))
            failures += 1
        # a second crash right after the restart: still everything
        s.kill(signal.SIGKILL)
        s.start()
        r = s.ctl("get", "after", "--print-value-only")
        checks += 1
        if r.stdout.strip() != "restart":
            print("FAIL the write after the restart is lost")
            failures += 1
        s.kill(signal.SIGTERM)
        checks += 1
        if s.proc.returncode != 0:
            print("FAIL SIGTERM: exit status %s\n%s" % (s.proc.returncode, s.read_log()[-3000:]))
            failures += 1
        checks += 1
        if "LeakSanitizer" in s.read_log() or "AddressSanitizer" in s.read_log():
            print("FAIL sanitizer report:\n%s" % s.read_log()[-5000:])
            failures += 1
    finally:
        s.cleanup()
    print("%d passed, %d failed" % (checks - failures, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
