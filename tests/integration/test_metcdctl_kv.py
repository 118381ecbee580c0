#!/usr/bin/python3
"""metcdctl's key-value commands against etcdctl 3.4 (golden.compare, one
member): get with every flag, put (lease, prev-kv, ignore-value/lease, the
value from stdin, "--"), del, txn (from stdin and -i, the compare and
request grammar, malformed input), compaction; every output format and
--hex; the argument errors and exit codes.

    test_metcdctl_kv.py METCD METCDCTL"""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden  # noqa: E402
import harness  # noqa: E402

ALL = golden.ALL_FORMATS
# flag errors print the usage, which names the program
USAGE = golden.mask_regex(r"\tm?etcdctl ")


def script(g):
    # put: plain, from stdin, "--", prev-kv, values that need quoting
    g.step("put", "foo", "bar", formats=ALL)
    g.step("put", "foo", "bar2", "--prev-kv", formats=ALL)
    g.step("put", "foo1", "v1")
    g.step("put", "foo2", "v2")
    g.step("put", "zoo", "z\"q\n\x01")
    g.step("put", "stdin-key", stdin="from stdin\n")
    g.step("put", "--", "dash", "-value")
    g.step("put", "dash2", "--", "-value2")
    g.step("put", "many", "a", "b")
    g.step("put", "x\xff", "y")
    g.step("put", "foo", "--hex", "--prev-kv", "bar3")
    # put errors
    g.step("put", name="put no args")
    g.step("put", "onlykey", stdin="", name="put empty stdin")
    g.step("put", "k", "v", "--ignore-value")
    g.step("put", "k", "v", "--lease", "zz")
    g.step("put", "k", "v", "--lease=0x10")
    g.step("put", "k", "v", "--lease", "fffffffffffffffff")
    g.step("put", "k", "v", "--lease", "1234abcd")
    g.step("put", "k", "v", "--bogus", mask=USAGE)
    g.step("put", "nokey", "--ignore-value")
    g.step("put", "nokey", "--ignore-lease", "v")
    # a lease: attach, keep it with ignore-lease, ignore-value
    # (granted through etcdctl in both runs: lease is not this test's)
    out = subprocess.run([harness.ETCDCTL, "--endpoints", g.endpoints(), "lease", "grant",
                          "600"], capture_output=True, text=True, timeout=30).stdout
    lease = out.split()[1]
    g.learn(lease, "<LEASE>")
    g.learn(str(int(lease, 16)), "<LEASE_DEC>")
    g.step("put", "leased", "v", "--lease", lease, formats=("simple", "fields", "json"))
    g.step("put", "leased", "v2", "--ignore-lease")
    g.step("put", "leased", "--ignore-value", "--prev-kv", formats=("simple", "fields"))
    g.step("get", "leased", formats=("fields",))

    # get: every flag and format
    g.step("get", "foo", formats=ALL)
    g.step("get", "foo", "--prefix", formats=ALL)
    g.step("get", "foo", "--hex")
    g.step("get", "foo", "--prefix", "--hex", "-w", "simple")
    g.step("get", "", "--prefix", "--keys-only")
    g.step("get", "", "--from-key", "--limit", "2", formats=("simple", "fields", "json"))
    g.step("get", "foo", "--from-key", "--print-value-only")
    g.step("get", "foo", "foo2", formats=ALL)
    g.step("get", "foo", "--prefix", "--order", "descend")
    g.step("get", "foo", "--prefix", "--order=ASCEND", "--sort-by=value")
    g.step("get", "foo", "--prefix", "--sort-by", "MODIFY", "--order", "DESCEND")
    g.step("get", "foo", "--prefix", "--sort-by", "create", "--limit", "1", formats=("fields",))
    g.step("get", "foo", "--prefix", "--sort-by", "version")
    g.step("get", "foo", "--prefix", "--sort-by", "key", "--order", "descend")
    g.step("get", "foo", "--rev", "2", formats=("simple", "json"))
    g.step("get", "foo", "--consistency", "s")
    g.step("get", "zoo", formats=("simple", "fields", "json", "protobuf"))
    g.step("get", "x\xff", formats=("simple", "fields", "json"))
    g.step("get", "x\xff", "--hex")
    g.step("get", "missing", formats=ALL)
    g.step("get", "foo", "--print-value-only", "--keys-only")
    g.step("get", "foo", "--print-value-only", formats=("json", "fields", "table"))
    # get errors
    g.step("get", name="get no args")
    g.step("get", "a", "--prefix", "--from-key")
    g.step("get", "a", "b", "--prefix")
    g.step("get", "a", "b", "--from-key")
    g.step("get", "a", "--consistency", "x")
    g.step("get", "a", "--order", "sideways")
    g.step("get", "a", "--sort-by", "size")
    g.step("get", "a", "--limit", "x", mask=USAGE)
    g.step("get", "a", "--rev", "1000")
    g.step("get", "a", "--bogus", mask=USAGE)

    # del
    g.step("put", "d1", "1")
    g.step("put", "d2", "2")
    g.step("put", "d3", "3")
    g.step("put", "e1", "1")
    g.step("del", "d1", formats=("simple", "fields", "json", "protobuf"))
    g.step("del", "d", "--prefix", "--prev-kv", formats=("simple",))
    g.step("del", "nothing", formats=ALL)
    g.step("put", "d4", "4")
    g.step("del", "d4", "--prev-kv", "--hex")
    g.step("put", "d5", "5")
    g.step("del", "d5", "--prev-kv", formats=("fields",))
    g.step("put", "d6", "6")
    g.step("del", "d6", "e2", "--prev-kv", formats=("json",))
    g.step("del", "x", "--from-key")
    g.step("del", name="del no args")
    g.step("del", "a", "b", "c")
    g.step("del", "a", "--prefix", "--from-key")
    g.step("del", "a", "b", "--prefix")
    g.step("del", "a", "--bogus", mask=USAGE)

    # txn
    g.step("put", "t", "1")
    txn_ok = ('mod("t") > "0"\nval("t") = "1"\nversion("t") = "1"\nc("t") != "0"\n\n'
              'put t2 2\nget t\nget t --prefix --keys-only\nput "spa ce" "a b\\tc"\n'
              'del zzz\n\nget nothing\n\n')
    g.step("txn", stdin=txn_ok, formats=ALL)
    txn_fail = ('value("t") = "nope"\n\nput a b\n\nget t\nput t --ignore-value --prev-kv\n'
                'del t2 --prev-kv\nput t3 back\n\n')
    g.step("txn", stdin=txn_fail, formats=ALL)
    g.step("txn", "-i", stdin='create("t") < "1000"\n\np quoted \'x y\'\ng quoted\n'
                              'd nothing\n\n\n')
    g.step("txn", "--interactive", stdin="\n\n\n", formats=("simple", "json"))
    g.step("get", "spa ce", "--hex")
    g.step("txn", stdin='val(`t`) = `1`\n\nget t\n\n\n', name="txn backquotes")
    g.step("txn", stdin='m("t")  >  "1"\n\nput x "\\x41\\u00e9\\101"\nget x\n\n\n',
           name="txn escapes")
    g.step("txn", stdin="\nget foo foo2 ignored\n\n\n", name="txn get extra args")
    # txn errors
    g.step("txn", "arg")
    g.step("txn", stdin="", name="txn empty input")
    g.step("txn", stdin="\n", name="txn eof after compares")
    g.step("txn", stdin='\nget t\n', name="txn eof in success")
    g.step("txn", stdin='\n\nget t', name="txn eof mid line")
    g.step("txn", stdin="bogus\n\n\n\n", name="txn no paren")
    g.step("txn", stdin='mod("t") = "x"\n\n\n', name="txn bad number")
    g.step("txn", stdin='mod("t") = 1\n\n\n', name="txn unquoted value")
    g.step("txn", stdin='val("t" = "x"\n\n\n', name="txn missing paren")
    g.step("txn", stdin='value(t) = "bar"\n\n\n', name="txn unquoted key")
    g.step("txn", stdin='size("t") = "1"\n\n\n', name="txn unknown target")
    g.step("txn", stdin='ver ("t") = "1"\n\n\n', name="txn space before paren")
    g.step("txn", stdin='val("t")="1"\n\n\n', name="txn no spaces")
    g.step("txn", stdin='val("t") =\n\n\n', name="txn no value")
    g.step("txn", stdin='\nget\n\n', name="txn one word")
    g.step("txn", stdin='\nget foo --bogus\n\n', name="txn bad flag")
    g.step("txn", stdin='\nget foo -w json\n\n', name="txn global flag")
    g.step("txn", stdin='\nget foo --limit x\n\n', name="txn bad flag value")
    g.step("txn", stdin='\nfrob foo\n\n', name="txn unknown request")
    g.step("txn", stdin='\nput foo\n\n', name="txn put without value")
    g.step("txn", stdin='\nget a --prefix --from-key\n\n', name="txn get flag conflict")
    g.step("txn", stdin='\n\ndel a b c\n\n', name="txn del too many")
    g.step("txn", stdin='\nput k v --lease zz\n\n', name="txn bad lease")
    g.step("txn", stdin='\nput "bad\\q" v\n\n', name="txn bad escape")

    # compaction
    g.step("compaction", name="compaction no args")
    g.step("compaction", "x")
    g.step("compaction", "1", "2")
    g.step("compaction", "100000")
    g.step("compaction", "3", formats=("simple", "json"))
    g.step("compaction", "--physical", "5")
    g.step("compaction", "4")
    g.step("get", "foo", "--rev", "2")
    g.step("compaction", "--bogus", "6", mask=USAGE)


def main():
    if len(sys.argv) != 3:
        print("usage: test_metcdctl_kv.py METCD METCDCTL")
        return 2
    return golden.compare(sys.argv[1], sys.argv[2], script, members=1)


if __name__ == "__main__":
    sys.exit(main())
