#!/usr/bin/python3
"""metcdctl watch against etcdctl 3.4's (golden.py): the same watches,
started in the background, see the same writes and print the same bytes
in -w simple (--hex, --prev-kv), json, fields and protobuf, with --rev,
--prefix, a range, "-- command" (its ETCD_WATCH_* environment),
ETCDCTL_WATCH_KEY, interactive mode (-i) and etcdctl's argument errors.
Beyond etcdctl: a compacted start revision names the oldest revision
still available (same exit status and output, clearer Error line), and on
a terminal each event is one aligned line.

usage: test_metcdctl_watch.py METCD_BINARY METCDCTL_BINARY
"""

import json
import os
import pty
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden  # noqa: E402
import harness  # noqa: E402

EXTRA = []  # (ok, what) of the checks beyond the comparison

SETTLE = 0.6  # seconds for the last event to reach a background watch


def ctl(g, args):
    """Set-up through etcdctl in both runs (metcdctl's other commands
    are tested elsewhere): (rc, stdout, stderr)."""
    r = subprocess.run([harness.ETCDCTL, "--endpoints", g.endpoints(0), "--dial-timeout=2s",
                        "--command-timeout=8s"] + list(args), capture_output=True, text=True,
                       timeout=30, env=dict(os.environ, ETCDCTL_API="3"))
    return r.returncode, r.stdout, r.stderr


def revision(g):
    rc, out, err = ctl(g, ["get", "nothing", "-w", "json"])
    return json.loads(out)["header"]["revision"]


def spawn(g, args, fmt="simple", stdin=False, env=None):
    cmd = [g.binary, "--endpoints", g.endpoints(0), "--dial-timeout=2s",
           "--command-timeout=8s", "-w", fmt, "watch"] + list(args)
    e = dict(os.environ, ETCDCTL_API="3")
    if env:
        e.update(env)
    return subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e,
                            cwd=g.workdir)


def stop(g, p, name):
    """Lets the last events arrive, stops the watch (SIGTERM) and records
    what it printed."""
    time.sleep(SETTLE)
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=20)
    g.record(name, p.returncode, out, err)
    if not out:
        EXTRA.append((False, "%s (%s) printed something" % (name, g.tool)))


def writes(g, ops):
    """The writes, spaced out: two events the server has at the same moment
    travel in one WatchResponse (one header in -w fields, one -- command
    run after both), so back-to-back writes would make the output depend
    on timing."""
    for k, op in enumerate(ops):
        if k:
            time.sleep(0.25)
        rc, out, err = ctl(g, op)
        if rc != 0:
            raise RuntimeError("%s: %s %s" % (op, out, err))


def watch_case(g, name, args, ops, fmt="simple", env=None, from_now=False):
    if not from_now:
        args = ["--rev", str(revision(g) + 1)] + list(args)
    p = spawn(g, args, fmt=fmt, env=env)
    if from_now:
        time.sleep(1.0)  # the watch is created before the writes
    writes(g, ops)
    stop(g, p, "%s -w %s" % (name, fmt))


def script(g):
    foo_ops = [["put", "foo", "bar"], ["put", "foo", "b\"z\n2"], ["del", "foo"]]
    for fmt in ("simple", "json", "fields", "protobuf"):
        watch_case(g, "watch foo", ["foo"], foo_ops, fmt=fmt)
        watch_case(g, "watch foo --prev-kv", ["foo", "--prev-kv"], foo_ops, fmt=fmt)
    watch_case(g, "watch foo --hex --prev-kv", ["--hex", "foo", "--prev-kv"], foo_ops)
    watch_case(g, "watch from now", ["foo"], foo_ops, from_now=True)
    watch_case(g, "watch --prefix", ["--prefix", "p/"],
               [["put", "p/a", "1"], ["put", "q", "no"], ["put", "p/b", "2"], ["del", "p/", "--prefix"]])
    watch_case(g, "watch --prefix json", ["--prefix", "p/"],
               [["put", "p/a", "1"], ["del", "p/", "--prefix"]], fmt="json")
    watch_case(g, "watch key range_end", ["a", "c"],
               [["put", "a", "1"], ["put", "b", "2"], ["put", "c", "3"], ["put", "bb", "4"]])
    watch_case(g, "watch ETCDCTL_WATCH_KEY", [], [["put", "ek", "1"], ["put", "ekx", "2"]],
               env={"ETCDCTL_WATCH_KEY": "ek", "ETCDCTL_WATCH_RANGE_END": "ez"})
    # "-- command": run per event with etcdctl's environment
    show = 'echo "$ETCD_WATCH_REVISION $ETCD_WATCH_EVENT_TYPE $ETCD_WATCH_KEY $ETCD_WATCH_VALUE"'
    watch_case(g, "watch -- sh -c", ["x", "--", "sh", "-c", show],
               [["put", "x", "1"], ["put", "x", "a b\"c"], ["del", "x"]])
    watch_case(g, "watch --prefix -- echo", ["--prefix", "x", "--", "echo", "event"],
               [["put", "x1", "1"], ["put", "x2", "2"]])
    # the command fails: etcdctl's message, exit 1
    r = revision(g) + 1
    p = spawn(g, ["--rev", str(r), "y", "--", "false"])
    writes(g, [["put", "y", "1"]])
    out, err = p.communicate(timeout=20)
    g.record("watch -- false", p.returncode, out, err)
    p = spawn(g, ["--rev", str(r + 1), "y", "--", "no-such-command-xyz"])
    writes(g, [["put", "y", "2"]])
    out, err = p.communicate(timeout=20)
    g.record("watch -- no-such-command", p.returncode, out, err)

    # interactive: request lines on stdin, "progress", EOF ends it (exit 3)
    r = revision(g) + 1
    p = spawn(g, ["-i"], stdin=True)
    lines = ["watch i1 --rev %d" % r, "bogus", "", "watch", "watch --prefix",
             'watch "i 2" --prev-kv --rev %d' % r,
             "watch ia ib ic --prefix --rev %d" % r,
             "watch i3 --rev %d -- echo got" % r,
             "watch i4 i5 --prefix --rev %d" % r]
    # "watch --prefix" is a fatal bad-arguments error in etcdctl: keep it last
    lines.remove("watch --prefix")
    p.stdin.write(("\n".join(lines) + "\n").encode())
    p.stdin.flush()
    time.sleep(1.0)
    writes(g, [["put", "i1", "a"], ["put", "i 2", "b"], ["put", "i 2", "c"], ["put", "ia1", "d"],
               ["put", "i3", "e"]])
    time.sleep(SETTLE)
    try:
        p.stdin.write(b"progress\n")
        p.stdin.flush()
        time.sleep(SETTLE)
    except BrokenPipeError:
        pass  # it ended already: the record shows how
    out, err = p.communicate(timeout=20)  # closes stdin: EOF ends it
    g.record("watch -i", p.returncode, out, err)
    EXTRA.append((b"progress notify" in out and b"got" in out and p.returncode == 3,
                  "watch -i (%s) saw events, ran the command, answered progress, ended on EOF"
                  % g.tool))
    # a fatal line ends interactive mode with etcdctl's status
    p = spawn(g, ["-i"], stdin=True)
    out, err = p.communicate(b"watch --prefix\n", timeout=20)
    g.record("watch -i (watch --prefix)", p.returncode, out, err)
    p = spawn(g, ["-i"], stdin=True)
    out, err = p.communicate(b"watch foo --\n", timeout=20)
    g.record("watch -i (watch foo --)", p.returncode, out, err)
    p = spawn(g, ["-i"], stdin=True)
    out, err = p.communicate(b"watch foo --bogus\n", timeout=20)
    g.record("watch -i (unknown flag)", p.returncode, out, err)

    # argument errors
    g.step("watch")
    g.step("watch", "a", "b", "--prefix")
    g.step("watch", "a", "--")
    g.step("watch", "a", "--", env={"ETCDCTL_WATCH_KEY": "k"})
    g.step("watch", "a", env={"ETCDCTL_WATCH_KEY": "k"})
    g.step("watch", "a", "--", "echo", env={"ETCDCTL_WATCH_KEY": "k"})
    g.step("watch", "a", env={"ETCDCTL_WATCH_RANGE_END": "z"})

    # a compacted start revision: same output and status (5); metcdctl's
    # Error line names the oldest revision still there
    writes(g, [["put", "c", str(i)] for i in range(4)])
    top = revision(g)
    writes(g, [["compact", str(top)]])
    for fmt in ("simple", "json"):
        cmd = [g.binary, "--endpoints", g.endpoints(0), "-w", fmt, "watch", "c", "--rev", "2"]
        res = subprocess.run(cmd, capture_output=True, timeout=20,
                             env=dict(os.environ, ETCDCTL_API="3"))
        g.record("watch --rev compacted -w %s (status, output)" % fmt, res.returncode,
                 res.stdout, b"")
        if g.tool == "metcdctl":
            want = ("Error: watch start revision 2 has been compacted; the oldest available "
                    "revision is %d (use --rev %d or later)" % (top, top))
            got = res.stderr.decode(errors="replace").strip()
            EXTRA.append((want in got, "compacted start names the oldest revision (%s): %r"
                          % (fmt, got)))
    if g.tool == "metcdctl":
        tty_check(g)


def tty_check(g):
    """On a terminal: one aligned line per event."""
    r = revision(g) + 1
    master, slave = pty.openpty()
    cmd = [g.binary, "--endpoints", g.endpoints(0), "watch", "--prefix", "t", "--prev-kv",
           "--rev", str(r)]
    p = subprocess.Popen(cmd, stdout=slave, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                         env=dict(os.environ, ETCDCTL_API="3"))
    os.close(slave)
    writes(g, [["put", "t1", "v1"], ["put", "tlonger", "two words"], ["del", "t1"]])
    time.sleep(SETTLE)
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=20)
    data = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    os.close(master)
    text = data.decode(errors="replace").replace("\r\n", "\n")
    lines = [ln for ln in text.split("\n") if ln]
    pat = re.compile(r"^(PUT   |DELETE)  rev (\d+) +  \d\d:\d\d:\d\d\.\d\d\d  (\S+|\"[^\"]*\") *"
                     r"(  = .*|  \(was .*\))?$")
    ok = len(lines) == 3 and all(pat.match(ln) for ln in lines)
    if ok:
        revs = [int(pat.match(ln).group(2)) for ln in lines]
        ok = revs == [r, r + 1, r + 2] and lines[1].endswith('= "two words"') \
            and lines[2].endswith("(was v1)")
        # the key column is aligned from the widest key on
        ok = ok and lines[1].index("  = ") == lines[1].index("tlonger") + len("tlonger")
    EXTRA.append((ok, "a terminal gets one aligned line per event: %r" % lines))


def main():
    metcd, metcdctl = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    rc = golden.compare(metcd, metcdctl, script, members=1)
    bad = 0
    for ok, what in EXTRA:
        print("%s %s" % ("ok  " if ok else "FAIL", what))
        bad += not ok
    if not EXTRA:
        print("FAIL the metcdctl-only checks did not run")
        bad += 1
    print("%d extra checks, %d failed" % (len(EXTRA), bad))
    return 1 if rc or bad else 0


if __name__ == "__main__":
    sys.exit(main())
