"""Runs the README's walkthrough ("## A first session") step by step and
checks every output it shows.

Each `$ command` line of the section's indented blocks is a step; the
lines under it, up to the next step, are its expected output, compared
line by line (`*` matches what varies, nothing else is special; a line
`...` stands for any number of lines). A step commented
`# second terminal` runs in the background; its output is checked after
the next block has run. The walkthrough's own set-up is replaced by the
test's: `tools/cluster ...` lines are skipped (the test starts a
three-member cluster named infra1..3, as tools/cluster does, on free
ports), ETCDCTL_ENDPOINTS gets that cluster's endpoints and PATH the
directory of the metcdctl under test. All steps run in one bash, so
variables carry from step to step as in a terminal.

    test_readme.py METCD METCDCTL [README]"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_cluster import Cluster  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def match(line, pattern):
    """The whole line against pattern, where only '*' is special."""
    rx = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(rx, line) is not None


def match_lines(got, want):
    """Line by line; an expected line "..." stands for any number of lines."""
    if not want:
        return not got
    if want[0] == "...":
        return any(match_lines(got[k:], want[1:]) for k in range(len(got) + 1))
    return bool(got) and match(got[0], want[0]) and match_lines(got[1:], want[1:])


def parse(readme):
    text = open(readme).read()
    m = re.search(r"^## A first session\n(.*?)(?=^## )", text, re.S | re.M)
    if not m:
        raise SystemExit("README has no '## A first session' section")
    steps = []  # dicts: cmd, expect[], background, block
    block = 0
    prev_indented = False
    blanks = 0  # empty lines inside a block: expected blank output lines
    for line in m.group(1).splitlines():
        indented = line.startswith("    ")
        if indented and not prev_indented:
            block += 1
            blanks = 0
        prev_indented = indented or (prev_indented and not line.strip())
        if not indented:
            if prev_indented:
                blanks += 1
            continue
        body = line[4:]
        if blanks and steps and not body.startswith("$ "):
            steps[-1]["expect"].extend([""] * blanks)
        blanks = 0
        if body.startswith("$ "):
            cmd = body[2:]
            bg = False
            c = re.search(r"\s+#\s*(.*)$", cmd)
            if c:
                bg = "second terminal" in c.group(1)
                cmd = cmd[:c.start()]
            steps.append({"cmd": cmd.strip(), "expect": [], "background": bg, "block": block})
        elif steps:
            steps[-1]["expect"].append(body.rstrip())
    return steps


def main():
    metcd, metcdctl = sys.argv[1], os.path.abspath(sys.argv[2])
    readme = sys.argv[3] if len(sys.argv) > 3 else os.path.join(HERE, "..", "..", "README.md")
    steps = parse(readme)
    cl = Cluster(metcd, n=3)
    cl.names = ["infra1", "infra2", "infra3"]
    cl.initial = ",".join("%s=http://127.0.0.1:%d" % (nm, p)
                          for nm, p in zip(cl.names, cl.pports))
    cl.logs = [os.path.join(cl.tmp, "%s.log" % nm) for nm in cl.names]
    work = tempfile.mkdtemp(prefix="metcd-readme-")
    bindir = os.path.join(work, "bin")
    os.mkdir(bindir)
    os.symlink(metcdctl, os.path.join(bindir, "metcdctl"))
    checks = failures = 0
    try:
        for i in range(3):
            cl.start(i)
        for i in range(3):
            cl.wait_ready(i)
        script = ["set +e", "cd %s" % work]
        pending = []  # background steps waiting for their block to end
        for n, st in enumerate(steps):
            if pending and st["block"] > pending[0][1] + 1:
                for k, _ in pending:
                    script.append("sleep 1; kill -TERM $BG%d 2>/dev/null; wait $BG%d 2>/dev/null" % (k, k))
                pending = []
            cmd = st["cmd"]
            if cmd.startswith("tools/cluster"):
                cmd = "true"
            elif cmd.startswith("export PATH="):
                cmd = "export PATH=%s:$PATH" % bindir
            elif cmd.startswith("export ETCDCTL_ENDPOINTS="):
                cmd = "export ETCDCTL_ENDPOINTS=%s" % cl.endpoints()
            script.append("echo '@@STEP %d'" % n)
            if st["background"]:
                script.append("%s > bg%d.out 2>&1 & BG%d=$!; sleep 1" % (cmd, n, n))
                pending.append((n, st["block"]))
            else:
                script.append("%s 2>&1" % cmd)
                if pending:
                    # as a person types: the background command sees one
                    # change at a time
                    script.append("sleep 0.3")
        for k, _ in pending:
            script.append("sleep 1; kill -TERM $BG%d 2>/dev/null; wait $BG%d 2>/dev/null" % (k, k))
        script.append("echo '@@END'")
        r = subprocess.run(["bash", "-c", "\n".join(script)], capture_output=True, text=True,
                           timeout=120, env=dict(os.environ, ETCDCTL_API="3"))
        outs = {}
        cur = None
        for line in r.stdout.splitlines():
            mm = re.match(r"@@(STEP (\d+)|END)$", line)
            if mm:
                cur = int(mm.group(2)) if mm.group(2) else None
                if cur is not None:
                    outs[cur] = []
                continue
            if cur is not None:
                outs[cur].append(line.rstrip())
        for n, st in enumerate(steps):
            got = outs.get(n, [])
            if st["background"]:
                try:
                    got = [ln.rstrip() for ln in open(os.path.join(work, "bg%d.out" % n))]
                except OSError:
                    got = ["(no output file)"]
            want = st["expect"]
            while got and not got[-1]:
                got = got[:-1]  # etcdctl ends a watch response with a blank line
            ok = match_lines(got, want)
            checks += 1
            if ok:
                print("ok   $ %s" % st["cmd"])
            else:
                failures += 1
                print("FAIL $ %s\n  want: %r\n  got:  %r" % (st["cmd"], want, got))
        if r.stderr.strip():
            print("bash stderr: %s" % r.stderr.strip()[:500])
    finally:
        cl.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    print("%d checks, %d failed" % (checks, failures))
    sys.exit(1 if failures or checks == 0 else 0)


if __name__ == "__main__":
    main()
