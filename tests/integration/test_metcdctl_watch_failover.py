#!/usr/bin/python3
"""metcdctl watch survives the death of its member: three metcd members;
`metcdctl watch --prefix w/` is given all three endpoints with the leader
first, so it attaches to the leader; etcdctl keeps writing w/NNNN keys
through another member; the leader is killed (SIGKILL) mid-stream, a new
one is elected, writes go on. Then the member it is attached to hangs
(SIGSTOP: the connection stays open, nothing answers): metcdctl's
keepalive (--keepalive-time, raised to 10 s as grpc-go does, and
--keepalive-timeout 6 s) must give up on it and resume elsewhere. The
watch must print exactly the write history (every committed write, read
back from the cluster, in revision order): no gap, no duplicate.

usage: test_metcdctl_watch_failover.py METCD_BINARY METCDCTL_BINARY
"""

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_cluster import Cluster, wait_for  # noqa: E402

BEFORE = 20  # writes acknowledged before the first kill
AFTER = 20   # writes acknowledged after each kill


def attached_to(pid, port):
    """Whether process pid has an established TCP connection to port."""
    inodes = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    except OSError:
        return False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            remote, state, inode = cols[2], cols[3], cols[9]
            if state == "01" and inode in inodes and int(remote.split(":")[1], 16) == port:
                return True
    return False


def main():
    metcd, metcdctl = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    checks = failures = 0

    def check(ok, what):
        nonlocal checks, failures
        checks += 1
        failures += not ok
        print("%s %s" % ("ok  " if ok else "FAIL", what))
        return ok

    c = Cluster(metcd)
    watch = None
    try:
        for i in range(3):
            c.start(i)
        for i in range(3):
            c.wait_ready(i)
        victim = wait_for(lambda: c.leader(range(3)))
        if not check(victim is not None, "a leader is elected"):
            return 1
        leader = victim
        follower, writer_at = [i for i in range(3) if i != leader]
        # the watch tries the follower first, then the leader
        order = [follower, leader, writer_at]
        r = c.ctl(writer_at, "get", "nothing", "-w", "json", check=True)
        start = json.loads(r.stdout)["header"]["revision"] + 1
        watch = subprocess.Popen(
            [metcdctl, "--endpoints", ",".join(c.endpoint(i) for i in order),
             "--dial-timeout=1s", "watch", "--prefix", "w/", "--rev", str(start)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out = bytearray()

        def reader():
            for chunk in iter(lambda: watch.stdout.read1(65536), b""):
                out.extend(chunk)
        rt = threading.Thread(target=reader, daemon=True)
        rt.start()

        acked = [0]
        stop = threading.Event()
        target = [writer_at]  # the member the writes go through

        def writer():
            n = 0
            while not stop.is_set():
                r = subprocess.run([harness.ETCDCTL, "--endpoints", c.endpoint(target[0]),
                                    "--dial-timeout=2s", "--command-timeout=3s", "put",
                                    "w/%05d" % n, "v%d" % n], capture_output=True,
                                   env=dict(os.environ, ETCDCTL_API="3"), timeout=30)
                n += 1
                if r.returncode == 0:
                    acked[0] += 1
        wt = threading.Thread(target=writer, daemon=True)
        wt.start()

        def kill_under(victim, what):
            """Kills the member the watch is attached to while the watch
            sleeps (SIGSTOP) across the kill and the writes that follow,
            so its resumed stream must replay them: a watch resuming "from
            now" would leave a gap, one resuming too early a duplicate."""
            check(wait_for(lambda: attached_to(watch.pid, c.cports[victim]), timeout=10)
                  is not None, "the watch is attached to the %s (member %d)" % (what, victim))
            watch.send_signal(signal.SIGSTOP)
            c.kill(victim, signal.SIGKILL)
            base = acked[0]
            check(wait_for(lambda: acked[0] >= base + AFTER // 2, timeout=40) is not None,
                  "%d writes after killing the %s, the watch stopped" % (AFTER // 2, what))
            watch.send_signal(signal.SIGCONT)
            check(wait_for(lambda: acked[0] >= base + AFTER, timeout=40) is not None,
                  "%d writes after killing the %s" % (AFTER, what))

        check(wait_for(lambda: acked[0] >= BEFORE, timeout=30) is not None,
              "%d writes before the first kill" % BEFORE)
        seen_before = out.count(b"PUT\n")
        kill_under(follower, "follower")
        # the follower comes back (quorum for the second kill); the watch
        # has moved to the leader
        c.start(follower)
        c.wait_ready(follower)
        kill_under(leader, "leader")
        # all three up again, then the watch's member hangs
        c.start(leader)
        c.wait_ready(leader)

        def attached():
            return next((i for i in range(3) if attached_to(watch.pid, c.cports[i])), None)
        hung = wait_for(attached, timeout=10)
        if check(hung is not None, "the watch is attached to a member before the hang"):
            if hung == target[0]:
                target[0] = next(i for i in range(3) if i != hung)
            c.procs[hung].send_signal(signal.SIGSTOP)
            try:
                base = acked[0]
                check(wait_for(lambda: acked[0] >= base + AFTER, timeout=40) is not None,
                      "%d writes while member %d hangs" % (AFTER, hung))
                moved = wait_for(lambda: attached() not in (None, hung), timeout=30)
                check(moved is not None,
                      "keepalive: the watch left the hung member %d (now on member %s)"
                      % (hung, attached()))
                base = acked[0]
                check(wait_for(lambda: acked[0] >= base + AFTER // 2, timeout=40) is not None,
                      "%d writes after the watch moved" % (AFTER // 2))
            finally:
                c.procs[hung].send_signal(signal.SIGCONT)
        stop.set()
        wt.join(timeout=40)

        # the history: every committed w/ key, by revision
        r = c.ctl(writer_at, "get", "w/", "--prefix", "-w", "json", check=True)
        kvs = json.loads(r.stdout).get("kvs", [])
        kvs.sort(key=lambda kv: kv["mod_revision"])
        want = b"".join(b"PUT\n" + base64.b64decode(kv["key"]) + b"\n" +
                        base64.b64decode(kv["value"]) + b"\n" for kv in kvs)
        wait_for(lambda: len(out) >= len(want), timeout=15)
        time.sleep(0.3)  # anything extra (a duplicate) arrives too
        check(watch.poll() is None, "the watch is still running")
        watch.send_signal(signal.SIGTERM)
        watch.wait(timeout=20)
        rt.join(timeout=10)
        err = watch.stderr.read().decode(errors="replace")
        got = bytes(out)
        check(seen_before > 0 and len(kvs) >= BEFORE + 3 * AFTER,
              "events before the first kill (%d) and a history of %d writes"
              % (seen_before, len(kvs)))
        if not check(got == want, "the watch printed exactly the write history "
                     "(%d events, no gap, no duplicate)" % len(kvs)):
            gl, wl = got.split(b"\n"), want.split(b"\n")
            for k in range(max(len(gl), len(wl))):
                a = gl[k] if k < len(gl) else None
                b = wl[k] if k < len(wl) else None
                if a != b:
                    print("  first difference at line %d: got %r want %r" % (k, a, b))
                    break
            print("  stderr: %s" % err[-2000:])
    finally:
        if watch and watch.poll() is None:
            watch.kill()
            watch.wait()
        c.cleanup()
    print("%d checks, %d failed" % (checks, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
