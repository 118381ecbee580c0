#!/usr/bin/python3
"""Client TLS, end to end, against metcd and the real etcd 3.4 (the outcome
of every step must match):

  - a CA and server/client certificates made now with the openssl command;
  - https listener (--cert-file/--key-file): etcdctl --cacert put/get/watch,
    curl https /health; plaintext etcdctl to the TLS port fails; an http
    listener next to it serves plaintext clients;
  - --client-cert-auth with --trusted-ca-file: etcdctl with --cert/--key
    works, without a certificate it is refused (metcd logs etcd's
    `rejected connection from "IP:port" (error ...)` line);
  - --auto-tls: etcdctl --insecure-skip-tls-verify works, a client that
    verifies against a CA it trusts does not.

usage: test_tls.py METCD_BINARY
"""

import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402

os.environ["no_proxy"] = "*"
os.environ.pop("http_proxy", None)
os.environ.pop("https_proxy", None)

checks = 0
failures = 0


def check(ok, what):
    global checks, failures
    checks += 1
    if not ok:
        failures += 1
    print("%s: %s" % ("ok" if ok else "FAIL", what), flush=True)


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True)


def make_certs(d):
    """ca.crt, server.{crt,key} (localhost, 127.0.0.1), client.{crt,key}."""
    p = lambda n: os.path.join(d, n)  # noqa: E731
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", p("ca.key"),
            "-out", p("ca.crt"), "-days", "2", "-subj", "/CN=metcd test CA")
    with open(p("ext.cnf"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                "extendedKeyUsage=serverAuth,clientAuth\n")
    for name, cn in (("server", "localhost"), ("client", "client")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", p(name + ".key"),
                "-out", p(name + ".csr"), "-subj", "/CN=" + cn)
        openssl("x509", "-req", "-in", p(name + ".csr"), "-CA", p("ca.crt"), "-CAkey",
                p("ca.key"), "-CAcreateserial", "-out", p(name + ".crt"), "-days", "2",
                "-extfile", p("ext.cnf"))
    return p


def make_bad_certs(d, p):
    """Client certificates a server must refuse: expired (signed by the
    right CA, valid in 2020 only), revoked (listed in crl.pem), and one
    from another CA (rogue.crt); plus good2.crt, valid, to show the server
    still serves."""
    db = os.path.join(d, "cadb")
    os.makedirs(os.path.join(db, "new"), exist_ok=True)
    open(os.path.join(db, "index.txt"), "w").close()
    with open(os.path.join(db, "serial"), "w") as f:
        f.write("1000\n")
    with open(p("ca.cnf"), "w") as f:
        f.write("[ca]\ndefault_ca = d\n[d]\ndatabase = %s/index.txt\nnew_certs_dir = %s/new\n"
                "serial = %s/serial\ndefault_md = sha256\npolicy = any\ncopy_extensions = copy\n"
                "default_crl_days = 2\n[any]\ncommonName = supplied\n" % (db, db, db))
    ca = ["-batch", "-config", p("ca.cnf"), "-cert", p("ca.crt"), "-keyfile", p("ca.key"),
          "-extfile", p("ext.cnf")]
    for name in ("expired", "revoked", "good2"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", p(name + ".key"),
                "-out", p(name + ".csr"), "-subj", "/CN=" + name)
    openssl("ca", *ca, "-in", p("expired.csr"), "-out", p("expired.crt"),
            "-startdate", "20200101000000Z", "-enddate", "20200102000000Z")
    for name in ("revoked", "good2"):
        openssl("ca", *ca, "-in", p(name + ".csr"), "-out", p(name + ".crt"), "-days", "2")
    openssl("ca", "-batch", "-config", p("ca.cnf"), "-cert", p("ca.crt"), "-keyfile",
            p("ca.key"), "-revoke", p("revoked.crt"))
    openssl("ca", "-batch", "-config", p("ca.cnf"), "-cert", p("ca.crt"), "-keyfile",
            p("ca.key"), "-gencrl", "-out", p("crl.pem"))
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", p("rogueca.key"),
            "-out", p("rogueca.crt"), "-days", "2", "-subj", "/CN=rogue CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", p("rogue.key"),
            "-out", p("rogue.csr"), "-subj", "/CN=client")
    openssl("x509", "-req", "-in", p("rogue.csr"), "-CA", p("rogueca.crt"), "-CAkey",
            p("rogueca.key"), "-CAcreateserial", "-out", p("rogue.crt"), "-days", "2",
            "-extfile", p("ext.cnf"))


class TLSServer(harness.Server):
    """A member whose client URL is https (and, optionally, a second plain
    http client listener)."""

    def __init__(self, binary, extra, plain_too=False):
        super().__init__(binary, extra=extra)
        self.plain_port = harness.free_port() if plain_too else None
        self.endpoint = "https://127.0.0.1:%d" % self.cport

    def argv(self):
        a = super().argv()
        https = "https://127.0.0.1:%d" % self.cport
        i = a.index("--listen-client-urls")
        a[i + 1] = https + (",http://127.0.0.1:%d" % self.plain_port if self.plain_port else "")
        a[a.index("--advertise-client-urls") + 1] = https
        return a

    def tctl(self, tls_args, *args, endpoint=None):
        cmd = [harness.ETCDCTL, "--endpoints", endpoint or self.endpoint, "--dial-timeout=2s",
               "--command-timeout=4s"] + tls_args + list(args)
        env = dict(os.environ, ETCDCTL_API="3")
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30, env=env)


def curl(*args):
    return subprocess.run(["curl", "-s", "-m", "5"] + list(args), capture_output=True,
                          text=True, timeout=20)


def watch_one(s, tls_args):
    """Starts `etcdctl watch wk`, puts wk=wv, returns what the watch printed."""
    cmd = [harness.ETCDCTL, "--endpoints", s.endpoint] + tls_args + ["watch", "wk"]
    env = dict(os.environ, ETCDCTL_API="3")
    w = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                         env=env)
    try:
        time.sleep(1.0)
        s.tctl(tls_args, "put", "wk", "wv")
        time.sleep(1.0)
    finally:
        w.terminate()
    out, _ = w.communicate(timeout=10)
    return out


def scenario_server_tls(binary, p):
    """Server certificate only; an http listener next to the https one."""
    s = TLSServer(binary, ["--cert-file", p("server.crt"), "--key-file", p("server.key")],
                  plain_too=True)
    res = {}
    try:
        s.start()
        ca = ["--cacert", p("ca.crt")]
        res["put"] = s.tctl(ca, "put", "k", "v").stdout.strip()
        res["get"] = s.tctl(ca, "get", "k").stdout.strip()
        res["watch"] = watch_one(s, ca).strip()
        res["plain to tls port"] = s.tctl([], "get", "k",
                                          endpoint="http://127.0.0.1:%d" % s.cport).returncode
        res["unknown CA"] = s.tctl([], "get", "k").returncode
        res["http listener"] = s.tctl([], "get", "k", "--print-value-only",
                                      endpoint="http://127.0.0.1:%d" % s.plain_port).stdout.strip()
        res["curl health"] = curl("--cacert", p("ca.crt"),
                                  "https://127.0.0.1:%d/health" % s.cport).stdout.strip()
        res["curl plain to tls port"] = curl("http://127.0.0.1:%d/health" % s.cport).stdout
    finally:
        s.cleanup()
    return res


def scenario_client_cert_auth(binary, p):
    s = TLSServer(binary, ["--cert-file", p("server.crt"), "--key-file", p("server.key"),
                           "--trusted-ca-file", p("ca.crt"), "--client-cert-auth"])
    res = {}
    log = ""
    try:
        s.start()
        full = ["--cacert", p("ca.crt"), "--cert", p("client.crt"), "--key", p("client.key")]
        res["put with cert"] = s.tctl(full, "put", "k", "v").stdout.strip()
        res["get with cert"] = s.tctl(full, "get", "k").stdout.strip()
        r = s.tctl(["--cacert", p("ca.crt")], "get", "k")
        res["without cert"] = (r.returncode, r.stdout)
        res["curl with cert"] = curl("--cacert", p("ca.crt"), "--cert", p("client.crt"),
                                     "--key", p("client.key"),
                                     "https://127.0.0.1:%d/health" % s.cport).stdout.strip()
        res["curl without cert"] = curl("--cacert", p("ca.crt"),
                                        "https://127.0.0.1:%d/health" % s.cport).stdout
        log = s.read_log()
        if METCDCTL and binary != harness.ETCD:
            # channelz over TLS: the sockets show their real addresses and
            # the session (cipher suite, both certificates)
            r = subprocess.run([METCDCTL, "--endpoints", s.endpoint] + full +
                               ["channelz", "sockets", "-w", "json"],
                               capture_output=True, text=True, timeout=30)
            res["channelz"] = (r.returncode, r.stdout, r.stderr)
    finally:
        s.cleanup()
    return res, log


def scenario_bad_client_certs(binary, p):
    """--client-cert-auth with a CRL: expired, revoked and foreign client
    certificates are refused, TLS to the plaintext listener fails, and
    the server serves a good client after each."""
    s = TLSServer(binary, ["--cert-file", p("server.crt"), "--key-file", p("server.key"),
                           "--trusted-ca-file", p("ca.crt"), "--client-cert-auth",
                           "--client-crl-file", p("crl.pem")], plain_too=True)
    res = {}
    log = ""
    try:
        s.start()
        ca = ["--cacert", p("ca.crt")]
        for name in ("expired", "revoked", "rogue", "good2"):
            r = s.tctl(ca + ["--cert", p(name + ".crt"), "--key", p(name + ".key")],
                       "put", "k-" + name, "v")
            res[name] = (r.returncode, r.stdout.strip())
        r = s.tctl(ca + ["--cert", p("good2.crt"), "--key", p("good2.key")], "get", "k-good2",
                   "--print-value-only")
        res["still serving"] = r.stdout.strip()
        r = s.tctl(ca + ["--cert", p("good2.crt"), "--key", p("good2.key")], "get", "k",
                   endpoint="https://127.0.0.1:%d" % s.plain_port)
        res["tls to the http listener"] = r.returncode
        r = s.tctl([], "get", "k-good2", "--print-value-only",
                   endpoint="http://127.0.0.1:%d" % s.plain_port)
        res["http listener after it"] = r.stdout.strip()
        res["alive"] = s.proc.poll() is None
        log = s.read_log()
    finally:
        s.cleanup()
    return res, log


def scenario_auto_tls(binary, p):
    s = TLSServer(binary, ["--auto-tls"])
    res = {}
    try:
        s.start()
        sk = ["--insecure-transport=false", "--insecure-skip-tls-verify"]
        res["put"] = s.tctl(sk, "put", "k", "v").stdout.strip()
        res["get"] = s.tctl(sk, "get", "k").stdout.strip()
        res["verified against another CA"] = s.tctl(["--cacert", p("ca.crt")], "get",
                                                    "k").returncode
        res["curl -k health"] = curl("-k", "https://127.0.0.1:%d/health" % s.cport).stdout
    finally:
        s.cleanup()
    return res


def compare(name, got, want):
    for k in want:
        check(got.get(k) == want[k], "%s / %s: metcd %r, etcd %r" % (name, k, got.get(k),
                                                                      want[k]))


METCDCTL = None


def main():
    global METCDCTL
    metcd = os.path.abspath(sys.argv[1])
    if len(sys.argv) > 2:
        METCDCTL = os.path.abspath(sys.argv[2])
    with tempfile.TemporaryDirectory(prefix="metcd-tls-") as d:
        p = make_certs(d)

        m = scenario_server_tls(metcd, p)
        check(m["put"] == "OK" and m["get"] == "k\nv", "https put/get with --cacert: %r" % m)
        check("PUT\nwk\nwv" in m["watch"], "https watch: %r" % m["watch"])
        check(m["plain to tls port"] != 0 and m["unknown CA"] != 0,
              "plaintext client and unknown CA refused")
        check(m["http listener"] == "v", "http listener next to https")
        check(m["curl health"] == '{"health":"true"}', "curl https /health")
        e = scenario_server_tls(harness.ETCD, p)
        compare("server TLS", m, e)

        m, log = scenario_client_cert_auth(metcd, p)
        check(m["put with cert"] == "OK" and m["get with cert"] == "k\nv",
              "client-cert-auth with a certificate: %r" % m)
        check(m["without cert"][0] != 0, "client-cert-auth refuses a client without one")
        check('rejected connection from "127.0.0.1:' in log and "ServerName" in log,
              "the refusal is logged in etcd's words")
        if METCDCTL:
            rc, out, err = m.pop("channelz")
            socks = json.loads(out).get("socket", []) if rc == 0 else []
            tls = [x for x in socks if x.get("security", {}).get("Model", {}).get("Tls")]
            check(rc == 0 and socks and len(tls) == len(socks),
                  "channelz over TLS: every socket has its TLS session (%d of %d) %s"
                  % (len(tls), len(socks), err))
            t = tls[0]["security"]["Model"]["Tls"] if tls else {}
            name = t.get("CipherSuite", {}).get("StandardName", "")
            check(name.startswith("TLS_"), "channelz: the cipher suite's RFC name (%r)" % name)
            check(t.get("local_certificate") and t.get("remote_certificate"),
                  "channelz: the server's and the client's certificates")
            ips = [x.get("remote", {}).get("Address", {}).get("TcpipAddress", {}).get("ip_address")
                   for x in tls]
            check(ips and all(ip == "fwAAAQ==" for ip in ips),
                  "channelz: remote addresses are the TLS clients' (127.0.0.1), not the "
                  "socketpair's: %r" % ips)
        e, _ = scenario_client_cert_auth(harness.ETCD, p)
        compare("client-cert-auth", m, e)

        make_bad_certs(d, p)
        m, log = scenario_bad_client_certs(metcd, p)
        check(all(m[n][0] != 0 for n in ("expired", "revoked", "rogue")),
              "expired, revoked and foreign client certificates are refused: %r" % m)
        check(m["good2"] == (0, "OK") and m["still serving"] == "v" and m["alive"],
              "a good certificate is served after the refusals")
        check(m["tls to the http listener"] != 0 and m["http listener after it"] == "v",
              "TLS to the plaintext listener fails; the listener still serves")
        for why in ("certificate has expired", "certificate revoked", "unable to get local issuer"):
            check(why in log, "the refusal is logged with its reason (%s)" % why)
        e, _ = scenario_bad_client_certs(harness.ETCD, p)
        compare("bad client certificates", m, e)

        m = scenario_auto_tls(metcd, p)
        check(m["put"] == "OK" and m["get"] == "k\nv", "auto TLS with skip-verify: %r" % m)
        check(m["verified against another CA"] != 0, "auto TLS certificate is not trusted")
        e = scenario_auto_tls(harness.ETCD, p)
        compare("auto TLS", m, e)
    print("%d passed, %d failed" % (checks - failures, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
