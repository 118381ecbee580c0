"""Golden comparison of metcdctl against etcdctl 3.4.

The same script runs twice against a fresh metcd cluster started the same
way, on the same ports: first every command through etcdctl, then through
metcdctl. Member and cluster IDs follow from the peer URLs, so both runs
see the same IDs, revisions and member order; what still varies between
two runs (lease IDs, times, TTLs, temporary paths) is replaced by the
script's masks. Compared per step: stdout (bytes, so -w protobuf too), the
"Error: ..." line of stderr, and the exit status.

    def script(g):
        g.step("put", "foo", "bar")
        g.step("get", "foo", formats=golden.ALL_FORMATS)
        rc, out, err = g.run(["lease", "grant", "60"])    # not compared
        g.learn(out.split()[1], "<LEASE>")                 # masked from now on

    sys.exit(golden.compare(metcd, metcdctl, script, members=3))

g.tool is "etcdctl" or "metcdctl" when a script must know which runs.
Used by test_metcdctl_*.py."""

import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_cluster import Cluster  # noqa: E402

ALL_FORMATS = ("simple", "json", "fields", "protobuf", "table")


class Phase:
    """One run of the script: one tool against one fresh cluster."""

    def __init__(self, tool, binary, cluster):
        self.tool = tool
        self.binary = binary
        self.cluster = cluster
        self.records = []
        self.subst = [(cluster.tmp, "<TMP>")]
        self.workdir = tempfile.mkdtemp(prefix="metcdctl-golden-")

    def learn(self, text, placeholder):
        """Masks text (e.g. this run's lease ID, in its decimal or hex
        form) as placeholder in every later output."""
        if text:
            self.subst.append((text, placeholder))
            self.subst.sort(key=lambda t: -len(t[0]))

    def normalize(self, data):
        for s, p in self.subst + [(self.workdir, "<WORK>")]:
            data = data.replace(s.encode(), p.encode())
        return data

    def endpoints(self, member=0):
        cl = self.cluster
        return cl.endpoint(member) if member is not None else cl.endpoints()

    def run(self, args, stdin=None, member=0, env=None, timeout=30, globals_=True):
        """Runs the tool (not recorded): (rc, stdout str, stderr str)."""
        cmd = [self.binary]
        if globals_:
            cmd += ["--endpoints", self.endpoints(member), "--dial-timeout=2s",
                    "--command-timeout=8s"]
        cmd += list(args)
        e = dict(os.environ, ETCDCTL_API="3")
        if env:
            e.update(env)
        if isinstance(stdin, str):
            stdin = stdin.encode()
        r = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout, env=e,
                           cwd=self.workdir)
        return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")

    def step(self, *args, formats=("simple",), stdin=None, member=0, mask=None, name=None,
             env=None, globals_=True):
        """Runs args once per format and records the normalized result
        under a name; compare() matches the two runs' records."""
        for fmt in formats:
            cmd = (["-w", fmt] if fmt else []) + list(args)
            e = dict(os.environ, ETCDCTL_API="3")
            if env:
                e.update(env)
            full = [self.binary]
            if globals_:
                full += ["--endpoints", self.endpoints(member), "--dial-timeout=2s",
                         "--command-timeout=8s"]
            full += cmd
            if isinstance(stdin, str):
                stdin = stdin.encode()
            r = subprocess.run(full, input=stdin, capture_output=True, timeout=60, env=e,
                               cwd=self.workdir)
            out = self.normalize(r.stdout)
            err = self.normalize(harness.error_line(r.stderr.decode(errors="replace")).encode())
            if mask:
                out, err = mask(out), mask(err)
            self.records.append((name or " ".join(cmd), r.returncode, out, err))

    def record(self, name, rc, out, err, mask=None):
        """Records a result the script obtained itself (e.g. from a
        background process), normalized as step() does; out and err are
        bytes (err: the whole stderr, its Error line is kept)."""
        out = self.normalize(out)
        err = self.normalize(harness.error_line(err.decode(errors="replace")).encode())
        if mask:
            out, err = mask(out), mask(err)
        self.records.append((name, rc, out, err))

    def close(self):
        self.cluster.cleanup()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _start(metcd, members, extra, ports):
    cl = Cluster(metcd, n=members, extra=extra)
    if ports:
        cl.cports, cl.pports = list(ports[0]), list(ports[1])
        cl.initial = ",".join("%s=http://127.0.0.1:%d" % (nm, p)
                              for nm, p in zip(cl.names, cl.pports))
    for i in range(members):
        cl.start(i)
    for i in range(members):
        cl.wait_ready(i)
    return cl


def compare(metcd, metcdctl, script, members=1, extra=None):
    """Runs script with etcdctl, then with metcdctl; prints one ok/FAIL
    line per step and a count. Returns the exit status (0: all equal)."""
    runs = []
    ports = None
    metcdctl = os.path.abspath(metcdctl)  # steps run in a work dir
    for tool, binary in (("etcdctl", harness.ETCDCTL), ("metcdctl", metcdctl)):
        cl = _start(metcd, members, extra, ports)
        ports = (cl.cports, cl.pports)
        ph = Phase(tool, binary, cl)
        try:
            script(ph)
        finally:
            ph.close()
        runs.append(ph.records)
    checks = failures = 0
    a, b = runs
    if len(a) != len(b):
        print("FAIL the two runs recorded %d and %d steps" % (len(a), len(b)))
        failures += 1
    for ra, rb in zip(a, b):
        checks += 1
        if ra[1:] == rb[1:]:
            print("ok   %s" % ra[0])
        else:
            failures += 1
            print("FAIL %s\n  etcdctl:  rc=%d out=%r err=%r\n  metcdctl: rc=%d out=%r err=%r"
                  % (ra[0], ra[1], ra[2], ra[3], rb[1], rb[2], rb[3]))
    print("%d checks, %d failed" % (checks, failures))
    return 1 if failures else 0


def mask_regex(*patterns):
    """A mask replacing every match of the (bytes) patterns with b'*'."""
    rx = [re.compile(p.encode() if isinstance(p, str) else p) for p in patterns]

    def m(data):
        for r in rx:
            data = r.sub(b"*", data)
        return data
    return m
