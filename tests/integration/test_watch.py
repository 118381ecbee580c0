#!/usr/bin/python3
"""etcdctl 3.4 watch against metcd and the real etcd 3.4, same operations:
the watch outputs must be identical (live events, history from a past
revision, prefix with prev-kv, -w json after masking ids), and a watch
below the compaction point fails as etcd's does.

usage: test_watch.py METCD_BINARY
"""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

harness.MASK_KEYS |= {"peerURLs", "clientURLs", "Endpoint"}

WATCHES = [
    ["watch", "a"],
    ["watch", "a", "--rev", "1"],
    ["watch", "p/", "--prefix", "--prev-kv"],
    ["watch", "p/", "--prefix", "-w", "json"],
    ["watch", "", "--from-key", "--rev", "2"],
    # exec on each event: etcdctl runs the command with ETCD_WATCH_* set
    ["watch", "a", "--", "sh", "-c", "echo exec $ETCD_WATCH_EVENT_TYPE $ETCD_WATCH_KEY $ETCD_WATCH_VALUE $ETCD_WATCH_REVISION"],
]
INTERACTIVE = "watch a\nwatch p/ --prefix\n"


def ops(s):
    s.ctl("put", "a", "1", check=True)
    s.ctl("put", "p/x", "1", check=True)
    s.ctl("put", "a", "2", check=True)
    s.ctl("put", "p/y", "2", check=True)
    s.ctl("del", "p/", "--prefix", check=True)
    s.ctl("txn", stdin='\nput a 3\nput p/z 3\n\n\n', check=True)


def run(s):
    procs = []
    env = dict(os.environ, ETCDCTL_API="3")
    for w in WATCHES:
        procs.append(subprocess.Popen([harness.ETCDCTL, "--endpoints", s.endpoint] + w,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, env=env))
    procs.append(subprocess.Popen([harness.ETCDCTL, "--endpoints", s.endpoint, "watch", "-i"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env))
    procs[-1].stdin.write(INTERACTIVE)
    procs[-1].stdin.flush()
    time.sleep(1.0)
    ops(s)
    time.sleep(1.0)
    outs = []
    for p in procs:
        p.terminate()
        out, _ = p.communicate(timeout=10)
        outs.append(out)
    return outs


def per_watcher(out):
    """Interactive watch: two watchers share one stream, and the order of
    their responses for one revision is not defined (etcd walks a Go map of
    watcher batches). Each watcher's own events keep their order: compare
    those (the 'a' watcher's and the 'p/' watcher's), event by event."""
    lines = out.split("\n")
    events, i = [], 0
    while i + 2 < len(lines):
        events.append(tuple(lines[i:i + 3]))
        i += 3
    return ([e for e in events if e[1] == "a"], [e for e in events if e[1].startswith("p/")],
            len(events))


def normalize(out, as_json, interactive=False):
    if interactive:
        return per_watcher(out)
    if not as_json:
        return out
    return [harness.masked_json(line) for line in out.splitlines() if line.strip()]


def main():
    metcd = os.path.abspath(sys.argv[1])
    ours, ref = harness.Server(metcd), harness.Server(harness.ETCD)
    checks = failures = 0
    try:
        ours.start()
        ref.start()
        a, b = run(ours), run(ref)
        for w, oa, ob in zip(WATCHES + [["watch", "-i"]], a, b):
            checks += 1
            as_json = "json" in w
            inter = "-i" in w
            if normalize(oa, as_json, inter) != normalize(ob, as_json, inter):
                failures += 1
                print("FAIL etcdctl %s:\n  metcd: %r\n  etcd:  %r" % (" ".join(w), oa, ob))
            else:
                print("ok   etcdctl %s (%d lines)" % (" ".join(w), len(oa.splitlines())))
        # below the compaction point
        for s in (ours, ref):
            s.ctl("compaction", "5", check=True)
        res = []
        for s in (ours, ref):
            p = subprocess.run([harness.ETCDCTL, "--endpoints", s.endpoint, "watch", "a",
                                "--rev", "2"], capture_output=True, text=True, timeout=10,
                               env=dict(os.environ, ETCDCTL_API="3"))
            res.append((p.returncode, p.stdout.strip(), p.stderr.strip().splitlines()[-1:]))
        checks += 1
        if res[0] != res[1]:
            failures += 1
            print("FAIL watch below compaction:\n  metcd: %s\n  etcd:  %s" % res)
        else:
            print("ok   watch below the compaction point: %s" % (res[0],))
    finally:
        ours.cleanup()
        ref.cleanup()
    print("%d passed, %d failed" % (checks - failures, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
