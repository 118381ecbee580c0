#!/usr/bin/python3
"""The HTTP/JSON gateway, golden: one curl script against metcd and against
the real etcd 3.4 (each a fresh single member), step by step; every answer
(HTTP status, Content-Type, JSON body) must be the same once the values
that legitimately differ between two clusters are masked (ids, terms,
sizes, raft indexes, hashes, URLs, remaining TTLs). Covers put, range with
every option, delete, txn, compaction, lease grant/revoke/timetolive/
leases/keepalive (and the kv/lease aliases), watch (the first results of
several streams while writes happen), lock/unlock, election campaign/
leader/proclaim/observe/resign (and etcd's e2e refusals of a missing
leader key), member list, status, alarm, hash,
defragment, /v3beta, and the refusals: bad JSON, wrong types, unknown
paths and methods, oversize bodies; after them the data must be
unchanged. Then, on a three-member metcd, every member's gateway answers:
keep-alives through followers (forwarded to the leader) get their
results before the stream ends, a watch on one member sees a put made
through another.

usage: test_gateway.py METCD_BINARY
"""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_cluster import Cluster  # noqa: E402

CURL = "/usr/bin/curl"
MASK = {"cluster_id", "member_id", "raft_term", "raftTerm", "leader", "dbSize", "dbSizeInUse",
        "hash", "raftIndex", "raftAppliedIndex", "peerURLs", "clientURLs", "memberID"}


def b64(s):
    import base64
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def mask(obj, extra=()):
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k in MASK or k in extra:
                out[k] = "*"
            elif k == "ID" and ("peerURLs" in obj or "name" in obj):
                out[k] = "*"  # a member's id
            else:
                out[k] = mask(v, extra)
        return out
    if isinstance(obj, list):
        return [mask(v, extra) for v in obj]
    return obj


def curl(s, path, body, timeout=10, method="POST", headers=()):
    """One request; returns (status, content type, body text)."""
    cmd = [CURL, "-s", "-S", "-X", method, "-m", str(timeout), "-o", "-",
           "-w", "\n%{http_code} %{content_type}", "http://%s%s" % (s.endpoint, path)]
    for h in headers:
        cmd += ["-H", h]
    if body is not None:
        cmd += ["--data-binary", "@-"]
    r = subprocess.run(cmd, input=(body or "").encode(), capture_output=True,
                       timeout=timeout + 10)
    text = r.stdout.decode(errors="replace")
    text, _, tail = text.rpartition("\n")
    code, _, ctype = tail.partition(" ")
    return int(code or 0), ctype, text


def parse(text):
    try:
        return json.loads(text)
    except ValueError:
        return "not JSON: " + text


class Golden:
    def __init__(self, ours, ref):
        self.servers = (ours, ref)
        self.checks = self.failures = 0
        self.member_ids = [None, None]

    def report(self, name, ok, a, b):
        self.checks += 1
        if ok:
            print("ok   %s" % name)
        else:
            self.failures += 1
            print("FAIL %s\n  metcd: %s\n  etcd:  %s" % (name, a, b))

    def step(self, path, body, name=None, extra=(), normalize=None, subst=False, **kw):
        """Runs one request on both; compares status, type and masked JSON."""
        res = []
        for i, s in enumerate(self.servers):
            b = body
            if subst and b is not None:
                b = b.replace("$MEMBER", str(self.member_ids[i]))
            code, ctype, text = curl(s, path, b, **kw)
            val = parse(text) if ctype.startswith("application/json") else text
            if normalize:
                val = normalize(val)
            res.append((code, ctype, mask(val, extra)))
        self.report(name or "%s %s" % (path, (body or "")[:60]), res[0] == res[1], res[0], res[1])
        return res

    def stream(self, path, body, during, settle=1.0, extra=(), name=None):
        """A streamed call on both while `during` runs (steps on both); the
        results received are compared line by line."""
        procs = []
        for s in self.servers:
            procs.append(subprocess.Popen(
                [CURL, "-s", "-N", "-m", "30", "-X", "POST", "--data-binary", body,
                 "http://%s%s" % (s.endpoint, path)], stdout=subprocess.PIPE))
        time.sleep(settle)
        if during:
            during()
        time.sleep(settle)
        outs = []
        for p in procs:
            p.terminate()
            out, _ = p.communicate(timeout=10)
            outs.append([mask(parse(l), extra) for l in out.decode().splitlines() if l.strip()])
        self.report(name or "stream %s %s (%d results)" % (path, body[:50], len(outs[1])),
                    outs[0] == outs[1] and len(outs[1]) > 0, outs[0], outs[1])


def put(k, v, **extra):
    d = {"key": b64(k), "value": b64(v)}
    d.update(extra)
    return json.dumps(d)


def rng(k, end=None, **extra):
    d = {"key": b64(k)}
    if end is not None:
        d["range_end"] = b64(end)
    d.update(extra)
    return json.dumps(d)


def script(g):
    # --- put and range with every option ---
    g.step("/v3/kv/put", put("foo", "bar"))
    g.step("/v3/kv/put", put("foo", "bar2", prev_kv=True))
    for i in range(1, 6):
        g.step("/v3/kv/put", put("a/%d" % i, "v%d" % (6 - i)))
    g.step("/v3/kv/put", '{"key":"Zm9v","value":"YmFy","ignore_value":true}', name="put ignore_value")
    g.step("/v3/kv/range", rng("foo"))
    g.step("/v3/kv/range", rng("a/", "a0"))
    g.step("/v3/kv/range", rng("a/", "a0", limit=2, sort_order="DESCEND", sort_target="KEY"))
    for target in ("VERSION", "CREATE", "MOD", "VALUE"):
        for order in ("ASCEND", "DESCEND"):
            g.step("/v3/kv/range", rng("a/", "a0", sort_order=order, sort_target=target))
    g.step("/v3/kv/range", rng("a/", "a0", keys_only=True))
    g.step("/v3/kv/range", rng("a/", "a0", countOnly=True), name="range countOnly (camel)")
    g.step("/v3/kv/range", rng("a/", "a0", serializable=True))
    g.step("/v3/kv/range", rng("foo", revision=2))
    g.step("/v3/kv/range", rng("a/", "a0", min_mod_revision=5, max_mod_revision=6))
    g.step("/v3/kv/range", rng("a/", "a0", min_create_revision="4", max_create_revision="5"))
    g.step("/v3/kv/range", rng("\0", "\0"), name="range everything")
    g.step("/v3/kv/range", rng("foo", revision=1000), name="range future revision")
    g.step("/v3beta/kv/range", rng("foo"), name="v3beta range")
    # --- delete ---
    g.step("/v3/kv/put", put("d/1", "x"))
    g.step("/v3/kv/put", put("d/2", "y"))
    g.step("/v3/kv/deleterange", rng("d/1", prev_kv=True))
    g.step("/v3/kv/deleterange", rng("d/", "d0"))
    g.step("/v3/kv/deleterange", rng("nothing"))
    # --- txn ---
    txn = {"compare": [{"key": b64("foo"), "target": "VALUE", "result": "EQUAL",
                        "value": b64("bar2")}],
           "success": [{"request_put": {"key": b64("t"), "value": b64("1")}},
                       {"request_range": {"key": b64("foo")}},
                       {"request_delete_range": {"key": b64("a/5"), "prev_kv": True}},
                       {"request_txn": {"success": [{"request_range": {"key": b64("t")}}]}}],
           "failure": [{"request_put": {"key": b64("t"), "value": b64("0")}}]}
    g.step("/v3/kv/txn", json.dumps(txn), name="txn success branch")
    g.step("/v3/kv/txn", json.dumps(txn), name="txn failure branch")
    for cmp in ({"target": "VERSION", "result": "GREATER", "version": 1},
                {"target": "CREATE", "result": "EQUAL", "create_revision": 0},
                {"target": "MOD", "result": "LESS", "mod_revision": "100"},
                {"target": "LEASE", "result": "NOT_EQUAL", "lease": 5}):
        cmp["key"] = b64("foo")
        g.step("/v3/kv/txn", json.dumps({"compare": [cmp], "success": [
            {"requestRange": {"key": b64("foo")}}]}), name="txn compare %s" % cmp["target"])
    g.step("/v3/kv/txn", '{"compare":[{"result":0,"target":1,"key":"Zm9v","TargetUnion":null}],'
           '"success":[{"Request":{"RequestPut":{"key":"Zm9v","value":"YmFy"}}}]}',
           name="txn malformed (etcd's e2e)")
    g.step("/v3/kv/txn", json.dumps({"success": [{"request_put": {"key": b64("t")}},
                                                 {"request_put": {"key": b64("t")}}]}),
           name="txn duplicate key")
    # --- watch: history, live events, prev_kv, filters ---
    def writes():
        g.step("/v3/kv/put", put("w/1", "a"))
        g.step("/v3/kv/put", put("w/1", "b"))
        g.step("/v3/kv/deleterange", rng("w/1"))
    g.stream("/v3/watch", json.dumps({"create_request": {"key": b64("foo"), "start_revision": 1}}),
             None, name="watch foo from revision 1")
    g.stream("/v3/watch", json.dumps({"create_request": {"key": b64("w/"), "range_end": b64("w0"),
                                                         "prev_kv": True}}), writes,
             name="watch prefix with prev_kv, live")
    g.stream("/v3beta/watch", json.dumps({"create_request": {"key": b64("w/1"),
                                                             "filters": ["NODELETE"]}}) +
             json.dumps({"create_request": {"key": b64("w/1"), "filters": ["NOPUT"]}}), writes,
             name="watch two requests in one body, filters")
    # --- leases ---
    g.step("/v3/lease/grant", '{"TTL":60,"ID":1000}')
    g.step("/v3/lease/grant", '{"TTL":60,"ID":1000}', name="grant an existing id")
    g.step("/v3/lease/grant", '{"TTL":30}', extra=("ID",), name="grant with a chosen id")
    g.step("/v3/kv/put", put("l/1", "x", lease=1000))
    g.step("/v3/kv/put", put("l/2", "x", lease="1000"))
    g.step("/v3/kv/put", put("l/3", "x", lease=4242), name="put with an unknown lease")
    # etcd lists a lease's keys from a Go map: the order is random, compare sets
    def key_set(v):
        if isinstance(v, dict) and isinstance(v.get("keys"), list):
            v = dict(v, keys=sorted(v["keys"]))
        return v
    g.step("/v3/lease/timetolive", '{"ID":1000,"keys":true}', extra=("TTL",),
           normalize=key_set)
    g.step("/v3/kv/lease/timetolive", '{"ID":"1000"}', extra=("TTL",))
    g.step("/v3/lease/timetolive", '{"ID":4242}', name="timetolive of an unknown lease")
    # the list's order is a Go map's in etcd: compare the sets
    def lease_set(v):
        if isinstance(v, dict) and "leases" in v:
            v = dict(v, leases=sorted(v["leases"], key=lambda l: l["ID"]))
            v["leases"] = [l if l["ID"] == "1000" else {"ID": "*"} for l in v["leases"]]
        return v
    g.step("/v3/lease/leases", "{}", normalize=lease_set)
    g.step("/v3/kv/lease/leases", "{}", normalize=lease_set)
    g.stream("/v3/lease/keepalive", '{"ID":1000}', None, name="keepalive")
    g.stream("/v3/lease/keepalive", '{"ID":1000}{"ID":4242}', None, name="keepalive two, one unknown")
    g.step("/v3/lease/revoke", '{"ID":1000}')
    g.step("/v3/kv/lease/revoke", '{"ID":1000}', name="revoke again (etcd's e2e)")
    g.step("/v3/kv/range", rng("l/", "l0"), name="keys of the revoked lease gone")
    # --- lock and election (their keys carry the lease id: chosen, so equal) ---
    g.step("/v3/lease/grant", '{"TTL":60,"ID":2000}')
    lock = json.dumps({"name": b64("lk"), "lease": 2000})
    g.step("/v3/lock/lock", lock)
    g.step("/v3/lock/unlock", json.dumps({"key": b64("lk/7d0")}))
    g.step("/v3/lock/lock", json.dumps({"name": b64("lk"), "lease": 4242}),
           name="lock with an unknown lease")
    g.step("/v3/election/leader", json.dumps({"name": b64("el")}), name="leader of no election")
    camp = json.dumps({"name": b64("el"), "value": b64("v1"), "lease": 2000})
    g.step("/v3/election/campaign", camp)
    leader = {"name": b64("el"), "key": b64("el/7d0"), "rev": None, "lease": "2000"}
    def observed():
        g.step("/v3/election/proclaim", json.dumps({"leader": dict(leader, rev=camp_rev[0]),
                                                    "value": b64("v2")}))
    res = g.step("/v3/election/leader", json.dumps({"name": b64("el")}))
    camp_rev = [int(res[1][2]["kv"]["create_revision"])] if res[1][0] == 200 else [0]
    g.stream("/v3/election/observe", json.dumps({"name": b64("el")}), observed,
             name="observe, then a proclaim")
    g.step("/v3/election/proclaim", json.dumps({"value": b64("v3")}),
           name="proclaim without a leader (etcd's e2e)")
    g.step("/v3/election/resign", "{}", name="resign without a leader (etcd's e2e)")
    g.step("/v3/election/resign", json.dumps({"leader": dict(leader, rev=camp_rev[0])}))
    g.step("/v3/lease/revoke", '{"ID":2000}')
    # --- compaction ---
    g.step("/v3/kv/compaction", '{"revision":5}')
    g.step("/v3/kv/compaction", '{"revision":5,"physical":true}', name="compact again")
    g.step("/v3/kv/compaction", '{"revision":100000}', name="compact a future revision")
    g.step("/v3/kv/range", rng("foo", revision=3), name="range below the compaction")
    g.stream("/v3/watch", json.dumps({"create_request": {"key": b64("foo"), "start_revision": 2}}),
             None, name="watch below the compaction")
    # --- cluster and maintenance ---
    res = g.step("/v3/cluster/member/list", "{}")
    for i, s in enumerate(g.servers):
        code, _, text = curl(s, "/v3/maintenance/status", "{}")
        g.member_ids[i] = json.loads(text)["header"]["member_id"]
    g.step("/v3/maintenance/status", "{}")
    g.step("/v3/maintenance/hash", "{}", name="hash (Hash answers /v3/maintenance/hash)")
    g.step("/v3/maintenance/defragment", "{}")
    g.step("/v3/maintenance/alarm", '{"action":"GET"}')
    g.step("/v3/maintenance/alarm", '{"action":"ACTIVATE","memberID":"$MEMBER","alarm":"NOSPACE"}',
           subst=True, name="alarm activate NOSPACE")
    g.step("/v3/maintenance/alarm", '{"action":"GET"}', name="alarm list")
    g.step("/v3/kv/put", put("x", "y"), name="put under NOSPACE")
    g.step("/v3/maintenance/alarm", '{"action":"DEACTIVATE","memberID":"$MEMBER","alarm":"NOSPACE"}',
           subst=True, name="alarm deactivate")
    g.step("/v3/maintenance/alarm", "{}", name="alarm GET by default")
    g.step("/v3/kv/put", put("x", "y"), name="put after disarm")
    # --- bodies etcd's decoder takes although they look odd ---
    for body in ('{"key":"Zm9v","value":"YmFy","unknown":1}', 'null', '',
                 '{"key":"Zm9v","value":"YmFy"} trailing', '{"key":[102,111,111],"value":"YQ=="}',
                 '{"key":"Zm9v","value":"YmFy","lease":"0"}', '{"KEY":"Zm9v"}'):
        g.step("/v3/kv/put", body, name="put %r" % body)
    # --- refusals, which must change nothing ---
    before = g.step("/v3/kv/range", rng("\0", "\0"), name="everything before the refusals")
    for body in ('{bad', '{"key":5}', '{"key":"Zm9"}', '{"key":"Zm9v","lease":"abc"}',
                 '{"key":"Zm9v","value":"YmFy","lease":1.5}', '[]', '"x"', '{"key":"Zm9v",}',
                 '{"key":"Zm9v"', '{"key":"Zm9v","value":"YmFy","prev_kv":"yes"}',
                 '{"key":"Zm9v","value":"YmFy","lease":9223372036854775808}'):
        g.step("/v3/kv/put", body, name="put %r" % body)
    g.step("/v3/kv/range", '{"key":"Zm9v","sort_order":"SIDEWAYS"}', name="bad enum name")
    g.step("/v3/kv/range", '{"key":"Zm9v","serializable":"yes"}', name="bool as a string")
    g.step("/v3/kv/txn", '{"compare":{}}', name="txn compare not a list")
    g.step("/v3/watch", '{bad', name="watch with bad JSON")
    g.step("/v3/lease/keepalive", '{"ID":"x"}', name="keepalive with a bad id")
    g.step("/v3/maintenance/snapshot", '{bad', name="snapshot with bad JSON")
    g.step("/v3/kv/nope", "{}", name="unknown path")
    g.step("/v3/", "{}", name="the bare prefix")
    g.step("/v3/kv/put/", "{}", name="trailing slash")
    g.step("/v3/kv/range", None, method="GET", name="GET on a POST path")
    g.step("/v3", "{}", name="/v3 redirects")
    # oversize: below the gRPC limit etcd refuses it; above, the gRPC server does
    g.step("/v3/kv/put", put("big", "x" * 1600000), name="put of 1.6 MB (request too large)")
    g.step("/v3/kv/put", put("big", "x" * 2200000), name="put of 2.2 MB (over the gRPC limit)")
    after = g.step("/v3/kv/range", rng("\0", "\0"), name="everything after the refusals")
    g.report("refusals changed nothing", before[0] == after[0] and before[1] == after[1],
             after[0], after[1])


class Member:
    def __init__(self, c, i):
        self.endpoint = c.endpoint(i)


def three_members(metcd, g):
    c = Cluster(metcd)
    try:
        for i in range(3):
            c.start(i)
        for i in range(3):
            c.wait_ready(i)
        members = [Member(c, i) for i in range(3)]
        code, _, text = curl(members[0], "/v3/lease/grant", '{"TTL":60,"ID":77}')
        g.report("grant through member 0", code == 200 and '"ID":"77"' in text, text, "")
        for i, m in enumerate(members):
            code, _, text = curl(m, "/v3/lease/keepalive", '{"ID":77}{"ID":78}', timeout=5)
            lines = [json.loads(l)["result"] for l in text.splitlines() if l.strip()]
            ok = (code == 200 and len(lines) == 2 and lines[0].get("TTL") == "60" and
                  lines[0].get("ID") == "77" and "TTL" not in lines[1])
            g.report("keepalive through member %d: both answers, then the end" % i, ok, text, "")
        w = subprocess.Popen([CURL, "-s", "-N", "-m", "20", "-X", "POST", "--data-binary",
                              json.dumps({"create_request": {"key": b64("k")}}),
                              "http://%s/v3/watch" % members[2].endpoint], stdout=subprocess.PIPE)
        time.sleep(1)
        code, _, text = curl(members[1], "/v3/kv/put", put("k", "v"))
        time.sleep(1)
        w.terminate()
        out = w.communicate(timeout=10)[0].decode()
        events = [json.loads(l)["result"].get("events") for l in out.splitlines() if l.strip()]
        g.report("watch on member 2 sees a put through member 1",
                 code == 200 and events[1:] and events[1][0]["kv"]["value"] == b64("v"), out, text)
    finally:
        c.cleanup()


def main():
    metcd = os.path.abspath(sys.argv[1])
    ours, ref = harness.Server(metcd), harness.Server(harness.ETCD)
    g = Golden(ours, ref)
    try:
        ours.start()
        ref.start()
        script(g)
    finally:
        ours.cleanup()
        ref.cleanup()
    three_members(metcd, g)
    print("%d passed, %d failed" % (g.checks - g.failures, g.failures))
    return 1 if g.failures else 0


if __name__ == "__main__":
    sys.exit(main())
