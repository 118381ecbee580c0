"""Process-level test harness: start metcd or the real etcd 3.4 on free
loopback ports in a temporary directory, wait for etcd's ready lines, run
etcdctl 3.4 against it, stop it. Used by the integration tests."""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

ETCDCTL = shutil.which("etcdctl") or "/usr/bin/etcdctl"
ETCD = shutil.which("etcd") or "/usr/bin/etcd"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One member (metcd or etcd) with its own data dir and ports."""

    def __init__(self, binary, name="n0", extra=None, data_dir=None):
        self.binary = os.path.abspath(binary)  # the server runs in its own dir
        self.name = name
        self.cport = free_port()
        self.pport = free_port()
        self.tmp = tempfile.mkdtemp(prefix="metcd-it-")
        self.data_dir = data_dir or os.path.join(self.tmp, "data")
        self.extra = extra or []
        self.proc = None
        self.log_path = os.path.join(self.tmp, "server.log")
        self.endpoint = "127.0.0.1:%d" % self.cport

    def argv(self):
        c = "http://127.0.0.1:%d" % self.cport
        p = "http://127.0.0.1:%d" % self.pport
        return [self.binary, "--name", self.name, "--data-dir", self.data_dir,
                "--listen-client-urls", c, "--advertise-client-urls", c,
                "--listen-peer-urls", p, "--initial-advertise-peer-urls", p,
                "--initial-cluster", "%s=%s" % (self.name, p)] + self.extra

    def start(self, timeout=20):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv(), stdout=self.log, stderr=subprocess.STDOUT,
                                     cwd=self.tmp)
        deadline = time.time() + timeout
        seen = 0
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited with %s:\n%s" % (self.proc.returncode,
                                                                    self.read_log()))
            text = self.read_log()
            # etcd's e2e framework waits for two of these lines
            seen = text.count("enabled capabilities for version") + text.count("published")
            if seen >= 2 and "ready to serve client requests" in text:
                return
            time.sleep(0.05)
        raise RuntimeError("server not ready after %ss:\n%s" % (timeout, self.read_log()))

    def read_log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=20)
        if getattr(self, "log", None):
            self.log.close()
            self.log = None

    def cleanup(self):
        self.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def ctl(self, *args, stdin=None, check=False, timeout=30):
        cmd = [ETCDCTL, "--endpoints", self.endpoint, "--dial-timeout=3s",
               "--command-timeout=10s"] + list(args)
        env = dict(os.environ, ETCDCTL_API="3")
        r = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout,
                           env=env)
        if check and r.returncode != 0:
            raise AssertionError("etcdctl %s failed: %s %s" % (args, r.stdout, r.stderr))
        return r


def error_line(stderr):
    """The 'Error: ...' line etcdctl prints (its retry log lines aside)."""
    for line in stderr.splitlines():
        if line.startswith("Error:"):
            return line
    rest = [ln for ln in stderr.strip().splitlines() if not ln.startswith('{"level":')]
    return rest[-1] if rest else ""


MASK_KEYS = {"cluster_id", "member_id", "raft_term", "ID", "leader", "dbSize", "dbSizeInUse",
             "hash", "raftIndex", "raftAppliedIndex", "raftTerm"}


def mask(obj):
    """Replaces values that legitimately differ between two clusters."""
    if isinstance(obj, dict):
        return {k: ("*" if k in MASK_KEYS else mask(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [mask(v) for v in obj]
    return obj


def masked_json(text):
    text = text.strip()
    if not text:
        return None
    try:
        return mask(json.loads(text))
    except ValueError:
        return "not JSON: " + text
