#!/usr/bin/python3
"""Golden test of metcdctl's cluster and maintenance commands against
etcdctl 3.4 on a three-member metcd cluster: member list/add/update/
promote/remove, endpoint status/health/hashkv (--cluster too), alarm
list/disarm, defrag, move-leader, version, snapshot save, in every output
format each supports, and their argument errors.

usage: test_metcdctl_ctlmaint.py METCD METCDCTL
"""

import json
import os
import re
import subprocess
import time
import urllib.request
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden  # noqa: E402
import harness  # noqa: E402
from test_cluster import wait_for  # noqa: E402
from test_join import start_joiner  # noqa: E402

ALL = golden.ALL_FORMATS
# peer URLs of members that are added but never started (same in both runs)
P1, P2, P3 = harness.free_port(), harness.free_port(), harness.free_port()
# a learner that is started, caught up and promoted
L_CPORT, L_PPORT = harness.free_port(), harness.free_port()
DEAD = "127.0.0.1:%d" % harness.free_port()  # an endpoint nobody serves

# what varies between two runs: health's timing, member IDs of added
# members (drawn from the clock) before they are learned
TOOK = golden.mask_regex(r"(?i)took( = |\":\"|\" : )[0-9.]+(µs|ms|ns|s)")
# the took column's width varies with it
TOOK_TABLE = golden.mask_regex(r"[0-9.]+(µs|ms|ns|s)", r"-+", r" +")
# the database's size varies a few pages between two runs, and which
# member won the first election (the leader's ID, "is leader")
DBSIZE = golden.mask_regex(r"\"dbSize(InUse)?\":\d+", r"\"DBSize\" : \d+", r"\d+(\.\d)? [kMG]?B",
                           r"\"leader\":\d+", r"\"Leader\" : \d+",
                           r"\s*\b(true|false)\b(, | \|\s+)(?=(true|false))")
# etcdctl logs its progress (zap JSON lines with times) on stderr
NOLOG = lambda data: b"" if data.startswith(b'{"level"') else data  # noqa: E731
HEALTHY_LINE = golden.mask_regex(r"\S+ is healthy: successfully committed proposal: took = \S+")
ADD_IDS = golden.mask_regex(r"Member +[0-9a-f]+ added", r"\"ID\":\d+")


def member_id(g, name_or_url):
    rc, out, _ = g.run(["-w", "json", "member", "list"])
    for m in json.loads(out)["members"]:
        if m.get("name") == name_or_url or name_or_url in m.get("peerURLs", []):
            return m["ID"]
    raise RuntimeError("no member %s in %s" % (name_or_url, out))


def etcdctl(g, *args):
    """Set-up through etcdctl in both runs (commands metcdctl may lack)."""
    r = subprocess.run([harness.ETCDCTL, "--endpoints", g.endpoints(), *args],
                       capture_output=True, env=dict(os.environ, ETCDCTL_API="3"), timeout=30)
    if r.returncode != 0:
        raise RuntimeError("etcdctl %s: %s" % (args, r.stderr))


EXTRA = []  # (ok, text) of checks outside the golden comparison


def check(ok, text):
    EXTRA.append((bool(ok), text))


def snapshot_status_checks(g):
    """snapshot status of metcd's snapshot file (a bbolt file and its
    SHA-256, as etcd's): etcdctl's answer in every format, the cluster's
    revision, the same twice."""
    path = os.path.join(g.workdir, "snap.db")
    for fmt in ("simple", "json", "fields", "table"):
        theirs = subprocess.run([harness.ETCDCTL, "-w", fmt, "snapshot", "status", path],
                                capture_output=True, text=True,
                                env=dict(os.environ, ETCDCTL_API="3"))
        rc, out, err = g.run(["-w", fmt, "snapshot", "status", path], globals_=False)
        check(theirs.returncode == 0 and rc == 0 and out == theirs.stdout,
              "snapshot status -w %s as etcdctl's: %r vs %r" % (fmt, out, theirs.stdout))
    rc, out, err = g.run(["-w", "json", "snapshot", "status", path], globals_=False)
    check(rc == 0, "snapshot status -w json: rc=%d %s" % (rc, err.strip()))
    st = json.loads(out) if rc == 0 else {}
    _, o2, _ = g.run(["-w", "json", "endpoint", "status"])
    rev = json.loads(o2)[0]["Status"]["header"]["revision"]
    check(set(st) == {"hash", "revision", "totalKey", "totalSize"},
          "snapshot status -w json has etcdctl's fields: %s" % out.strip())
    check(st.get("revision") == rev, "snapshot status revision %s is the cluster's %s"
          % (st.get("revision"), rev))
    check(st.get("totalSize") == os.path.getsize(path) - 32,
          "snapshot status size is the database's (the file less its SHA-256)")
    rc, out, _ = g.run(["snapshot", "status", path], globals_=False)
    fields = out.strip().split(", ")
    check(rc == 0 and len(fields) == 4 and fields[0] == "%x" % st.get("hash", 0)
          and fields[1] == str(rev) and fields[2] == str(st.get("totalKey")),
          "snapshot status simple: %s" % out.strip())
    rc, out, _ = g.run(["-w", "fields", "snapshot", "status", path], globals_=False)
    check(out == '"Hash" : %d\n"Revision" : %d\n"Keys" : %d\n"Size" : %d\n'
          % (st.get("hash", 0), rev, st.get("totalKey", 0), st.get("totalSize", 0)),
          "snapshot status -w fields: %r" % out)
    rc, out, _ = g.run(["-w", "table", "snapshot", "status", path], globals_=False)
    check(rc == 0 and "| TOTAL KEYS |" in out and fields[3] in out,
          "snapshot status -w table:\n%s" % out)
    rc, out, err = g.run(["-w", "protobuf", "snapshot", "status", path], globals_=False)
    check(rc == 4 and "Error: protobuf not supported as output format" in err,
          "snapshot status -w protobuf refused: rc=%d" % rc)
    rc, out, err = g.run(["snapshot", "status", path + ".none"], globals_=False)
    check(rc == 1 and "no such file or directory" in err, "snapshot status of a missing file")
    # the same twice: hash deterministic
    _, again, _ = g.run(["-w", "json", "snapshot", "status", path], globals_=False)
    check(json.loads(again) == st if again.strip() else False, "snapshot status is stable")


def snapshot_restore_checks(g):
    """snapshot restore of the saved file (metcd-restore's work, etcdctl's
    flags): nothing on stdout, a data dir a new member starts from with the
    saved keys."""
    snap = os.path.join(g.workdir, "snap.db")
    ddir = os.path.join(g.workdir, "restored")
    cport, pport = harness.free_port(), harness.free_port()
    purl, curl = "http://127.0.0.1:%d" % pport, "http://127.0.0.1:%d" % cport
    rc, out, err = g.run(["snapshot", "restore", snap, "--name", "r0", "--data-dir", ddir,
                          "--initial-cluster", "r0=" + purl, "--initial-cluster-token", "rt",
                          "--initial-advertise-peer-urls", purl], globals_=False)
    check(rc == 0 and out == "", "snapshot restore: rc=%d out=%r err=%r" % (rc, out, err[-300:]))
    rc, out, err = g.run(["snapshot", "restore", snap, "--wal-dir", "w", "--data-dir", "x"],
                         globals_=False)
    check(rc == 128 and "--wal-dir" in err, "snapshot restore --wal-dir refused")
    rc, out, err = g.run(["defrag", "--data-dir", ddir], globals_=False)
    check(rc == 0 and out == "" and err == "", "defrag --data-dir of a stopped member: rc=%d %r"
          % (rc, err[-200:]))
    rc, out, err = g.run(["defrag", "--data-dir", ddir + ".none"], globals_=False)
    check(rc == 1 and "Failed to defragment etcd data[%s.none] (open " % ddir in err
          and not os.path.exists(ddir + ".none"), "defrag --data-dir of no data dir")
    log = open(os.path.join(g.workdir, "r0.log"), "wb")
    proc = subprocess.Popen([g.cluster.binary, "--name", "r0", "--data-dir", ddir,
                             "--listen-client-urls", curl, "--advertise-client-urls", curl,
                             "--listen-peer-urls", purl, "--initial-advertise-peer-urls", purl,
                             "--initial-cluster-token", "rt", "--initial-cluster", "r0=" + purl],
                            stdout=log, stderr=subprocess.STDOUT)
    log.close()
    try:
        def get():
            r = subprocess.run([harness.ETCDCTL, "--endpoints", curl, "get", "k",
                                "--print-value-only"], capture_output=True, text=True,
                               timeout=10)
            return r.stdout if r.returncode == 0 else None
        got = wait_for(get, timeout=15, step=0.2)
        check(got == "v\n", "a member started on the restored data dir serves k=v: %r" % got)
        # while it runs, defrag --data-dir waits for it (killed after 1 s here)
        p = subprocess.Popen([g.binary, "defrag", "--data-dir", ddir], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        time.sleep(1)
        running = p.poll() is None
        p.kill()
        _, err = p.communicate()
        check(running and b"waiting for etcd to close and release its lock" in err,
              "defrag --data-dir of a running member waits: %r" % err[-200:])
    finally:
        proc.kill()
        proc.wait()


def check_perf_run(g):
    """One `check perf` (60 seconds at 150 puts/s): etcdctl's progress line
    and verdict lines, the keys gone afterwards, compaction and defrag."""
    rc, out, err = g.run(["check", "perf", "--auto-compact", "--auto-defrag"],
                         member=None, timeout=100)
    lines = out.split("\n")
    check(re.match(r"^(\r \d+ / 60 +\d+\.\d\d%( \d\dm\d\ds)?)+\r 60 / 60  100\.00% 1m[01]s$",
                   lines[0]), "check perf progress line: %r" % lines[0][-120:])
    eps = g.endpoints(None).split(",")
    want = [r"Compacting with revision \d+", r"Compacted with revision \d+"]
    for ep in eps:
        want += [r'Defragmenting "%s"' % re.escape(ep), r'Defragmented "%s"' % re.escape(ep)]
    want += [r"(PASS: Throughput is|FAIL: Throughput too low:) \d+ writes/s",
             r"(PASS: Slowest request took|Slowest request took too long:) \d+\.\d{6}s",
             r"(PASS: Stddev is|Stddev too high:) \d+\.\d{6}s", "(PASS|FAIL)", ""]
    body = lines[1:]
    check(len(body) == len(want) and all(re.fullmatch(w, b) for w, b in zip(want, body)),
          "check perf lines:\n%s" % "\n".join(body))
    check((rc == 0) == (body[-2:-1] == ["PASS"]), "check perf exit status %d" % rc)
    r = subprocess.run([harness.ETCDCTL, "--endpoints", g.endpoints(), "get", "--prefix",
                        "/etcdctl-check-perf/", "--keys-only"],
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 0 and r.stdout == "", "check perf deletes its keys: %d %r"
          % (r.returncode, r.stdout[:200]))


def promote_started_learner(g):
    """member add --learner, the learner started and caught up, member
    promote, member list, member remove."""
    purl = "http://127.0.0.1:%d" % L_PPORT
    g.step("member", "add", "l4", "--learner", "--peer-urls=" + purl, mask=ADD_IDS)
    lid = member_id(g, purl)
    g.learn("%x" % lid, "<L4>")
    # (with the padding of %16x: an ID may have fewer digits)
    g.learn("%16x" % lid, "<L4>")
    g.learn(str(lid), "<L4DEC>")
    cl = g.cluster
    initial = cl.initial + ",l4=" + purl
    proc = start_joiner(cl, "l4", L_CPORT, L_PPORT, initial)
    try:
        lep = "127.0.0.1:%d" % L_CPORT

        def in_sync():
            r = subprocess.run([harness.ETCDCTL, "--endpoints", lep + "," + cl.endpoint(0),
                                "-w", "json", "endpoint", "status"], capture_output=True,
                               text=True, timeout=30)
            if r.returncode != 0:
                return None
            st = [s["Status"] for s in json.loads(r.stdout)]
            return st[0].get("raftAppliedIndex", 0) >= st[1].get("raftIndex", 0) or None
        if wait_for(in_sync, timeout=20, step=0.2) is None:
            raise RuntimeError("the learner did not catch up")
        time.sleep(0.5)
        g.step("member", "promote", "%x" % lid)
        g.step("member", "list", formats=("simple", "json", "fields", "table"))
        g.step("member", "remove", "%x" % lid)
    finally:
        proc.kill()
        proc.wait()


def script(g):
    g.step("version")
    g.step("member", "list", formats=ALL)

    # argument errors
    g.step("member", "remove")
    g.step("member", "remove", "zz")
    g.step("member", "remove", "a", "b")
    g.step("member", "update", "12ab")
    g.step("member", "update", "x1", "--peer-urls=http://127.0.0.1:1")
    g.step("member", "promote")
    g.step("member", "promote", "xyz")
    g.step("member", "add")
    g.step("member", "add", "n1", "http://127.0.0.1:1", "Http://x")
    g.step("member", "add", "n1")
    g.step("member", "remove", "1234")
    g.step("member", "promote", "1234")

    # a learner added, listed, updated, refused promotion (not in sync), removed
    url1 = "http://127.0.0.1:%d" % P1
    g.step("member", "add", "--learner", "newm", "--peer-urls=" + url1, mask=ADD_IDS)
    new = member_id(g, url1)
    g.learn("%x" % new, "<NEW>")
    # (with the padding of %16x: an ID may have fewer digits)
    g.learn("%16x" % new, "<NEW>")
    g.learn(str(new), "<NEWDEC>")
    # (not -w protobuf from here: the added member's ID varies)
    g.step("member", "list", formats=("simple", "json", "fields", "table"))
    for i, fmt in enumerate(("simple", "json")):
        url = "http://127.0.0.1:%d" % (P2 + i)
        g.step("member", "update", "%x" % new, "--peer-urls=" + url, formats=(fmt,))
    g.step("member", "update", "%x" % new, "--peer-urls=http://127.0.0.1:%d" % P2,
           formats=("fields", "table"))
    g.step("member", "promote", "%x" % new, formats=("simple", "json"))
    for i, fmt in enumerate(("fields", "table")):
        # etcdctl adds the member, then refuses the format
        url = "http://127.0.0.1:%d" % (P3 + 1 + i)
        g.step("member", "add", "x%d" % i, "--peer-urls=" + url, formats=(fmt,), mask=ADD_IDS)
        g.run(["member", "remove", "%x" % member_id(g, url)])
    g.step("member", "list", formats=("simple", "table"))
    g.step("member", "remove", "%x" % new)

    url3 = "http://127.0.0.1:%d" % P3
    g.step("-w", "json", "member", "add", "--learner", "second", "--peer-urls=" + url3,
           formats=(None,), mask=ADD_IDS)
    second = member_id(g, url3)
    g.learn("%x" % second, "<SECOND>")
    # (with the padding of %16x: an ID may have fewer digits)
    g.learn("%16x" % second, "<SECOND>")
    g.learn(str(second), "<SECONDDEC>")
    g.step("member", "remove", "%x" % second, formats=("json",))
    g.step("member", "list", formats=("simple",))
    promote_started_learner(g)

    # endpoints
    g.step("endpoint", "status", formats=ALL, mask=DBSIZE)
    g.step("endpoint", "status", member=None, formats=("simple", "json", "table"), mask=DBSIZE)
    g.step("endpoint", "status", "--cluster", formats=ALL, mask=DBSIZE)
    g.step("endpoint", "hashkv", formats=ALL)
    g.step("endpoint", "hashkv", "--cluster", formats=ALL)
    etcdctl(g, "put", "k", "v")
    g.step("endpoint", "hashkv", "--rev", "2", member=None)
    g.step("endpoint", "health", formats=("simple", "json", "fields", "protobuf"), mask=TOOK)
    g.step("endpoint", "health", formats=("table",), mask=TOOK_TABLE)
    g.step("endpoint", "health", member=None, mask=HEALTHY_LINE)
    g.step("endpoint", "health", "--cluster", mask=HEALTHY_LINE)
    # an endpoint that does not answer
    dead = ["--endpoints", g.endpoints() + "," + DEAD, "--dial-timeout=1s",
            "--command-timeout=1s"]
    g.step(*dead, "endpoint", "health", globals_=False, mask=HEALTHY_LINE)
    g.step(*dead, "endpoint", "health", globals_=False, mask=TOOK, formats=("json", "fields"))
    g.step(*dead, "endpoint", "status", globals_=False, mask=DBSIZE, formats=("simple", "json"))
    g.step(*dead, "endpoint", "hashkv", globals_=False, formats=("simple", "json"))
    g.step(*dead, "defrag", globals_=False)

    # alarms, defrag, snapshot
    # (not -w fields: metcd's AlarmResponse has no header, on which
    # etcdctl's fields printer panics)
    g.step("alarm", "list", formats=("simple", "json", "protobuf", "table"))
    g.step("alarm", "disarm", formats=("simple", "json", "protobuf", "table"))
    # a raised alarm (through the JSON gateway, as etcd's)
    rc, out, _ = g.run(["-w", "json", "endpoint", "status"])
    mid = json.loads(out)[0]["Status"]["header"]["member_id"]
    body = json.dumps({"action": "ACTIVATE", "memberID": str(mid), "alarm": "NOSPACE"})
    urllib.request.urlopen("http://%s/v3/maintenance/alarm" % g.endpoints(0),
                           data=body.encode(), timeout=10).read()
    g.step("alarm", "list", formats=("simple", "json", "protobuf", "table"))
    g.step("alarm", "disarm", formats=("json",))
    g.step("alarm", "list", formats=("simple", "json"))
    urllib.request.urlopen("http://%s/v3/maintenance/alarm" % g.endpoints(0),
                           data=body.encode(), timeout=10).read()
    g.step("alarm", "disarm", formats=("simple",))
    urllib.request.urlopen("http://%s/v3/maintenance/alarm" % g.endpoints(0),
                           data=body.encode(), timeout=10).read()
    g.step("alarm", "disarm", formats=("protobuf",))
    g.step("alarm", "list", "x")
    g.step("alarm", "disarm", "x")
    g.step("defrag")
    g.step("defrag", "--cluster")
    g.step("defrag", member=None)
    g.step("snapshot", "save", "snap.db", mask=NOLOG)
    g.step("snapshot", "save")
    g.step("snapshot", "status")
    g.step("snapshot", "status", "a", "b")
    g.step("snapshot", "status", "missing.db")
    g.step("snapshot", "restore")
    os.makedirs(os.path.join(g.workdir, "existing"), exist_ok=True)
    g.step("snapshot", "restore", "snap.db", "--data-dir", "existing")
    g.step("snapshot", "restore", "missing.db", "--data-dir", "fresh")
    if g.tool == "metcdctl":
        snapshot_status_checks(g)
        snapshot_restore_checks(g)
        if os.environ.get("METCD_SANITIZED"):
            # a fixed 60 s of load: run in the optimised build only (the
            # sanitizer build still runs every refusal below)
            print("skip check perf run (sanitizer build)")
        else:
            check_perf_run(g)
    g.step("snapshot", "save", "x.db", member=None)
    g.step("snapshot", "save", "nodir/x.db", mask=NOLOG)
    g.step("--endpoints", DEAD, "--dial-timeout=1s", "--command-timeout=2s", "snapshot", "save",
           "y.db", globals_=False, mask=NOLOG)

    # check perf: the refusals (a run takes 60 seconds)
    g.step("check", "perf", "--load", "bad")
    etcdctl(g, "put", "/pp/x", "v")
    g.step("check", "perf", "--prefix", "/pp/", "--load=xLarge")

    # move-leader: errors, then to a follower (masked: who leads varies)
    g.step("move-leader")
    g.step("move-leader", "xyz")
    g.step("move-leader", "a", "b")
    rc, out, _ = g.run(["-w", "json", "endpoint", "status", "--cluster"])
    st = json.loads(out)
    leader = st[0]["Status"]["leader"]
    follower = [s["Status"]["header"]["member_id"] for s in st
                if s["Status"]["header"]["member_id"] != leader][0]
    ids = golden.mask_regex("%x" % leader, "%x" % follower, str(leader), str(follower))
    g.step("move-leader", "%x" % follower, member=None, mask=ids)
    rc, out, _ = g.run(["-w", "json", "endpoint", "status", "--cluster"])
    leader = json.loads(out)[0]["Status"]["leader"]
    follower = [s["Status"]["header"]["member_id"] for s in json.loads(out)
                if s["Status"]["header"]["member_id"] != leader][0]
    ids = golden.mask_regex("%x" % leader, "%x" % follower, str(leader), str(follower))
    g.step("move-leader", "%x" % follower, member=None, mask=ids, formats=("json",))


def main():
    rc = golden.compare(sys.argv[1], sys.argv[2], script, members=3)
    bad = 0
    for ok, text in EXTRA:
        print("%s %s" % ("ok  " if ok else "FAIL", text))
        bad += not ok
    print("%d further checks, %d failed" % (len(EXTRA), bad))
    sys.exit(1 if rc or bad else 0)


if __name__ == "__main__":
    main()
