#!/usr/bin/python3
"""--auto-compaction-mode periodic --auto-compaction-retention 2s: after the
retention has passed, revisions older than about 2 s are compacted away by
the member itself (etcd 3.4's periodic compactor), while recent ones stay
readable.

usage: test_autocompact.py METCD_BINARY
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def main():
    metcd = os.path.abspath(sys.argv[1])
    s = harness.Server(metcd, extra=["--auto-compaction-mode", "periodic",
                                     "--auto-compaction-retention", "2s"])
    failures = checks = 0
    try:
        s.start()
        first = json.loads(s.ctl("put", "k", "v0", "-w", "json", check=True).stdout)
        first_rev = first["header"]["revision"]
        deadline = time.time() + 15
        compacted = False
        i = 0
        while time.time() < deadline and not compacted:
            i += 1
            s.ctl("put", "k", "v%d" % i, check=True)
            r = s.ctl("get", "k", "--rev", str(first_rev))
            compacted = "required revision has been compacted" in r.stderr
            time.sleep(0.2)
        checks += 1
        if not compacted:
            print("FAIL revision %d still readable 15 s later" % first_rev)
            failures += 1
        checks += 1
        if "Starting auto-compaction at revision" not in s.read_log():
            print("FAIL no auto-compaction log line")
            failures += 1
        # the newest revision is never compacted away
        r = s.ctl("get", "k", "--print-value-only")
        checks += 1
        if r.stdout.strip() != "v%d" % i:
            print("FAIL latest value lost: %r" % r.stdout)
            failures += 1
    finally:
        s.cleanup()
    print("%d passed, %d failed" % (checks - failures, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
