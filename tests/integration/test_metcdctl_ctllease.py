"""Golden test: metcdctl's lease, user, role, auth, lock and elect commands
against etcdctl 3.4's, on one metcd member (golden.compare), plus a
make-mirror check when metcdctl has it.

    test_metcdctl_ctllease.py METCD METCDCTL"""

import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden  # noqa: E402
import harness  # noqa: E402

FMTS = ("simple", "json", "fields", "protobuf", "table")

# a lease ID as the simple and fields/json printers show it, the remaining TTL
# (lease IDs print in hex without leading zeros: up to 16 digits)
LEASE_MASK = golden.mask_regex(r"lease [0-9a-f]{1,16}", r'"ID" ?: ?(-?\d+|<LEASE_DEC>)',
                               r'"id":(-?\d+|<LEASE_DEC>)', r"(?m)^([0-9a-f]{1,16}|<LEASE>)$",
                               r"remaining\(\d+s\)", r'"ttl":-?\d+', r'"TTL" : -?\d+')
TTL_MASK = golden.mask_regex(r"remaining\(\d+s\)", r'"ttl":-?\d+', r'"TTL" : -?\d+')


def etcdctl(g, *args):
    """Set-up through etcdctl in both runs (commands metcdctl may lack)."""
    subprocess.run([harness.ETCDCTL, "--endpoints", g.endpoints()] + list(args),
                   capture_output=True, timeout=30, env=dict(os.environ, ETCDCTL_API="3"))


def lease_script(g):
    rc, out, _ = g.run(["lease", "grant", "600"])
    hexid = out.split()[1]
    g.learn(hexid, "<LEASE>")
    g.learn(str(int(hexid, 16)), "<LEASE_DEC>")
    etcdctl(g, "put", "--lease=" + hexid, "lk1", "v")
    etcdctl(g, "put", "--lease=" + hexid, "lk2", "v")
    for f in FMTS:
        g.step("lease", "grant", "300", formats=(f,), mask=LEASE_MASK)
    g.step("lease", "timetolive", hexid, formats=FMTS, mask=TTL_MASK)
    g.step("lease", "timetolive", "--keys", hexid, formats=FMTS, mask=TTL_MASK)
    g.step("lease", "keep-alive", "--once", hexid, formats=FMTS)
    g.step("lease", "list", formats=FMTS, mask=LEASE_MASK)
    for f in FMTS:
        _, out, _ = g.run(["lease", "grant", "100"])
        lid = out.split()[1]
        g.learn(lid, "<LEASE%s>" % f)
        g.learn(str(int(lid, 16)), "<LEASE%s_DEC>" % f)
        g.step("lease", "revoke", lid, formats=(f,))
    # a keep-alive that runs until the lease goes
    _, out, _ = g.run(["lease", "grant", "3"])
    lid = out.split()[1]
    g.learn(lid, "<LEASE_KA>")
    killer = subprocess.Popen(["sh", "-c", "sleep 1.5; %s --endpoints %s lease revoke %s"
                               % (g.binary, g.endpoints(), lid)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # how many keep-alives go out before the revoke (one a second) is timing:
    # the count is not compared, the lines and the ending are
    g.step("lease", "keep-alive", lid,
           mask=lambda b: re.sub(rb"(lease \S+ keepalived with TTL\(3\)\n)+", rb"\1", b))
    killer.wait()
    # errors
    g.step("lease", "timetolive", "1234", formats=FMTS)
    g.step("lease", "keep-alive", "--once", "1234", formats=("simple", "json"))
    g.step("lease", "revoke", "1234")
    g.step("lease", "keep-alive", "1234", formats=("simple", "json"))
    g.step("lease", "grant")
    g.step("lease", "grant", "x")
    g.step("lease", "grant", "0x10")
    g.step("lease", "grant", "99999999999999999999")
    g.step("lease", "grant", "--", "-5", mask=LEASE_MASK)
    g.step("lease", "grant", "1", "2")
    g.step("lease", "revoke", "zz")
    g.step("lease", "revoke", "ffffffffffffffffff")
    g.step("lease", "revoke")
    g.step("lease", "timetolive")
    g.step("lease", "keep-alive")


def auth_script(g):
    for i, f in enumerate(FMTS):
        g.step("user", "add", "u%d:pw" % i, formats=(f,))
        g.step("role", "add", "r%d" % i, formats=(f,))
        g.step("user", "grant-role", "u%d" % i, "r%d" % i, formats=(f,))
        g.step("role", "grant-permission", "r%d" % i, "read", "k%d" % i, formats=(f,))
        g.step("role", "grant-permission", "--prefix", "r%d" % i, "readwrite", "p%d" % i,
               formats=(f,))
        g.step("role", "grant-permission", "--from-key", "r%d" % i, "write", "f%d" % i,
               formats=(f,))
        g.step("role", "grant-permission", "r%d" % i, "write", "a%d" % i, "b%d" % i,
               formats=(f,))
        g.step("role", "get", "r%d" % i, formats=(f,))
        g.step("user", "get", "u%d" % i, formats=(f,))
        g.step("user", "get", "--detail", "u%d" % i, formats=(f,))
        g.step("role", "revoke-permission", "r%d" % i, "k%d" % i, formats=(f,))
        g.step("role", "revoke-permission", "--prefix", "r%d" % i, "p%d" % i, formats=(f,))
        g.step("role", "revoke-permission", "--from-key", "r%d" % i, "f%d" % i, formats=(f,))
        g.step("user", "passwd", "--interactive=false", "u%d" % i, stdin="pw2\n", formats=(f,))
        g.step("user", "revoke-role", "u%d" % i, "r%d" % i, formats=(f,))
    g.step("user", "list", formats=FMTS)
    g.step("role", "list", formats=FMTS)
    g.step("user", "add", "--interactive=false", "si", stdin="secret\n")
    g.step("user", "add", "--new-user-password=np", "nu")
    g.step("user", "add", "--no-password", "cn")
    g.step("user", "delete", "cn", formats=("json",))
    g.step("user", "delete", "nu", formats=("fields",))
    g.step("role", "delete", "r0", formats=("protobuf",))
    g.step("role", "delete", "r1")
    # errors
    g.step("user", "add", "u1:x")
    g.step("user", "add", ":x")
    g.step("user", "add", "ask", stdin="abc\nabd\n")
    g.step("user", "add", "ask", stdin="\n")
    g.step("user", "add", "ask", stdin="abc\n")
    g.step("user", "passwd", "u1", stdin="abc\nabd\n")
    g.step("user", "add")
    g.step("user", "delete", "nobody")
    g.step("user", "get", "nobody")
    g.step("user", "grant-role", "u1", "norole")
    g.step("user", "grant-role", "u1")
    g.step("user", "revoke-role", "u1", "r4")
    g.step("user", "list", "x")
    g.step("role", "add", "r2")
    g.step("role", "get", "norole")
    g.step("role", "grant-permission", "r2", "bogus", "k")
    g.step("role", "grant-permission", "r2", "read")
    g.step("role", "grant-permission", "--prefix", "--from-key", "r2", "read", "k")
    g.step("role", "grant-permission", "--prefix", "r2", "read", "k", "z")
    g.step("role", "grant-permission", "--from-key", "r2", "read", "k", "z")
    g.step("role", "revoke-permission", "r2", "nokey")
    g.step("role", "revoke-permission", "r2")
    g.step("role", "list", "x")
    # auth
    g.step("auth", "enable")
    g.step("user", "add", "root:rootpw")
    g.step("auth", "enable")
    g.step("user", "list")
    g.step("user", "list", "--user", "root:rootpw")
    g.step("user", "list", "--user", "root:bad")
    g.step("user", "get", "root", "--user", "root:rootpw")
    g.step("role", "get", "root", "--user", "root:rootpw")
    g.step("role", "list", "--user", "u2:pw2")
    g.step("auth", "enable", "x")
    g.step("auth", "disable", "--user", "root:rootpw")
    g.step("auth", "disable", "x")
    g.step("user", "list")


# a lock's or election's key is NAME/<its session lease ID in hex>
HOLD_MASK = golden.mask_regex(r'"key":"[^"]*"', r'"lease":\d+', r'"Lease" : \d+',
                              r"/[0-9a-f]{1,16}\b", r"[0-9a-f]{16}")


def start_bg(g, *args):
    cmd = [g.binary, "--endpoints", g.endpoints(), "--dial-timeout=2s"] + list(args)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ, ETCDCTL_API="3"), cwd=g.workdir)


def finish_bg(g, name, proc, sig=None, mask=None):
    """Stops a background command (sig, or waits) and records it like a step."""
    if sig is not None:
        proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    out = g.normalize(out)
    err = g.normalize(harness.error_line(err.decode(errors="replace")).encode())
    if mask:
        out, err = mask(out), mask(err)
    g.records.append((name, proc.returncode, out, err))


def lock_script(g):
    sh = "echo key=$ETCD_LOCK_KEY rev=$ETCD_LOCK_REV; echo args: \"$@\""
    g.step("lock", "mylock", "--", "sh", "-c", sh, "x", "a b", "c", mask=HOLD_MASK)
    g.step("lock", "--ttl", "5", "mylock", "--", "sh", "-c", "exit 3")
    g.step("lock", "mylock", "no-such-command-here")
    g.step("lock", "mylock", "--", "sh", "-c", "kill -9 $$")
    for f in ("simple", "json", "fields", "table"):
        p = start_bg(g, "-w", f, "lock", "held")
        time.sleep(1.2)
        # the key is held meanwhile: a second locker waits its turn
        etcdctl(g, "get", "--prefix", "held")
        finish_bg(g, "-w %s lock held (SIGINT)" % f, p, signal.SIGINT, mask=HOLD_MASK)
    p = start_bg(g, "lock", "held2")
    time.sleep(1.2)
    finish_bg(g, "lock held2 (SIGTERM)", p, signal.SIGTERM, mask=HOLD_MASK)
    g.step("lock")
    # elect: an observer, a campaigner, then both stopped
    obs = start_bg(g, "elect", "-l", "el")
    time.sleep(0.6)
    cand = start_bg(g, "elect", "el", "prop1")
    time.sleep(1.0)
    finish_bg(g, "elect el prop1 (SIGTERM)", cand, signal.SIGTERM, mask=HOLD_MASK)
    time.sleep(0.5)
    finish_bg(g, "elect -l el (SIGINT)", obs, signal.SIGINT, mask=HOLD_MASK)
    cand = start_bg(g, "-w", "json", "elect", "el2", "p2")
    time.sleep(1.0)
    finish_bg(g, "-w json elect el2 p2 (SIGINT)", cand, signal.SIGINT, mask=HOLD_MASK)
    g.step("elect", "el")
    g.step("elect", "-l", "el", "p")
    g.step("elect")
    g.step("elect", "a", "b", "c")


def mirror_check(metcd, metcdctl):
    """make-mirror into a second member: the synced keys, then watched
    puts, deletes and a multi-key txn, under --dest-prefix and without a
    prefix. Not golden (etcdctl's mirror prints only every 30 s)."""
    failures = 0
    src, dst = harness.Server(metcd, name="src"), harness.Server(metcd, name="dst")
    src.start()
    dst.start()
    try:
        for i in range(3):
            src.ctl("put", "mm/k%d" % i, "v%d" % i, check=True)
        src.ctl("put", "other", "x", check=True)
        cases = [(["--prefix", "mm/", "--dest-prefix", "copy/"], "copy/"),
                 ([], "")]
        for flags, dpfx in cases:
            p = subprocess.Popen([metcdctl, "--endpoints", src.endpoint, "make-mirror"] + flags +
                                 [dst.endpoint], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            time.sleep(1.0)
            src.ctl("put", "mm/new", "n", check=True)
            src.ctl("del", "mm/k0", check=True)
            src.ctl("txn", stdin="\nput mm/t1 a\nput mm/t2 b\n\n\n", check=True)
            deadline = time.time() + 10
            want = ["%s%s" % (dpfx, k) for k in ("mm/k1", "mm/k2", "mm/new", "mm/t1", "mm/t2")]
            if dpfx:
                want = [w.replace("copy/mm/", "copy/") for w in want]
            else:
                want.append("other")
            while time.time() < deadline:
                keys = dst.ctl("get", "--prefix", dpfx or "", "--keys-only").stdout.split()
                if sorted(keys) == sorted(want):
                    break
                time.sleep(0.2)
            p.terminate()
            _, err = p.communicate(timeout=10)
            ok = sorted(keys) == sorted(want)
            print("%s make-mirror %s: %s" % ("ok  " if ok else "FAIL", " ".join(flags) or
                                             "(all keys)", keys if not ok else "mirrored"))
            failures += not ok
            dst.ctl("del", "--prefix", "", check=True)
            src.ctl("put", "mm/k0", "v0", check=True)
        r = subprocess.run([metcdctl, "--endpoints", src.endpoint, "make-mirror",
                            "--no-dest-prefix", "--dest-prefix", "x", dst.endpoint],
                           capture_output=True, timeout=20)
        ok = r.returncode == 128 and b"cannot be set at the same time" in r.stderr
        print("%s make-mirror --no-dest-prefix with --dest-prefix refused" % ("ok  " if ok
                                                                              else "FAIL"))
        failures += not ok
    finally:
        src.kill()
        dst.kill()
        src.cleanup()
        dst.cleanup()
    print("make-mirror: %d failed" % failures)
    return 1 if failures else 0


def main():
    metcd, metcdctl = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    rc = 0
    for script in (lease_script, auth_script, lock_script):
        rc |= golden.compare(metcd, metcdctl, script, members=1)
    rc |= mirror_check(metcd, metcdctl)
    sys.exit(rc)


if __name__ == "__main__":
    main()
