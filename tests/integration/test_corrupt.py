#!/usr/bin/python3
"""--experimental-initial-corrupt-check on three members: a clean start
passes the check on every member; a member whose stored data was altered
behind its back (one value changed in LMDB with mdb_dump/mdb_load) refuses
to serve on restart with etcd's "found data inconsistency with peers" and
exits non-zero.

usage: test_corrupt.py METCD_BINARY
"""

import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_cluster import Cluster  # noqa: E402


def main():
    metcd = os.path.abspath(sys.argv[1])
    c = Cluster(metcd, extra=["--experimental-initial-corrupt-check"])
    checks = failures = 0

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
        check(all("succeeded on initial corruption checking" in c.log(i) for i in range(3)),
              "every member passes the check on a clean start")
        c.ctl(None, "put", "k", "original-value", check=True)
        time.sleep(1)
        c.kill(2)
        db = os.path.join(c.tmp, c.names[2], "member", "db")
        dump = subprocess.run(["mdb_dump", "-s", "key", db], capture_output=True, text=True,
                              check=True).stdout
        # values are hex lines; flip one hex digit of the value holding "original-value"
        target = "original-value".encode().hex()
        lines = dump.splitlines()
        changed = False
        for n, line in enumerate(lines):
            if target in line:
                lines[n] = line.replace(target, target[:-2] + "66", 1)  # ...valuf
                changed = True
                break
        check(changed, "found the stored value to alter")
        subprocess.run(["mdb_load", "-s", "key", db], input="\n".join(lines) + "\n",
                       text=True, check=True, capture_output=True)
        c.start(2)
        try:
            c.procs[2].wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        log = c.log(2)
        check(re.search(r"[0-9a-f]{16} found data inconsistency with peers", log) is not None,
              "the altered member reports the inconsistency")
        check(c.procs[2].poll() not in (None, 0),
              "and exits with a failure status (%s)" % c.procs[2].poll())
    finally:
        if failures:
            print(c.log(2)[-3000:])
        c.cleanup()
    print("%d passed, %d failed" % (checks - failures, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
