#!/usr/bin/env python3
"""Differential check of the gateway's JSON decoder against etcd 3.4's.

    pbjson_diff.py ORACLE CLI [N] [SEED]

ORACLE is a Go program built on Debian's grpc-gateway 1.6.4 runtime and
etcd 3.4's etcdserverpb (the decoder etcd's gateway uses; see
tests/unit/server/pbjson_oracle.go), CLI is build/tests/unit/server/pbjson_cli.
Both read "Type<TAB>base64(body)" lines and print OK<TAB>json / ERR<TAB>text /
EOF. N random bodies (valid messages, then mutated at the JSON and at the
byte level) go to both; every difference is printed. Exit 1 on any.
"""
import base64, json, os, random, re, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, '..', '..', '..')

def load_protos():
    msgs, enums = {}, {}
    for f, pkg in (('server/etcdserverpb/rpc.proto', 'etcdserverpb'),
                   ('mvcc/mvccpb/kv.proto', 'mvccpb'), ('server/authpb/auth.proto', 'authpb')):
        txt = re.sub(r'//.*', '', open(os.path.join(ROOT, f)).read())
        def walk(body, prefix):
            pos = 0
            while True:
                m = re.search(r'\b(message|enum)\s+(\w+)\s*\{', body[pos:])
                if not m:
                    break
                start = pos + m.end()
                depth, j = 1, start
                while depth:
                    depth += {'{': 1, '}': -1}.get(body[j], 0)
                    j += 1
                inner = body[start:j - 1]
                name = prefix + m.group(2)
                if m.group(1) == 'enum':
                    enums[name] = re.findall(r'(\w+)\s*=\s*(-?\d+)', inner)
                else:
                    walk(inner, name + '.')
                    flat = re.sub(r'(message|enum)\s+\w+\s*\{(?:[^{}]|\{[^{}]*\})*\}', '', inner)
                    groups = {}
                    for gi, g in enumerate(re.findall(r'oneof\s+\w+\s*\{([^{}]*)\}', flat)):
                        for fn in re.findall(r'(\w+)\s*=\s*\d+', g):
                            groups[fn] = gi
                    flat = re.sub(r'oneof\s+\w+\s*\{', '', flat)
                    fields = re.findall(r'(repeated\s+)?([\w.]+)\s+(\w+)\s*=\s*\d+', flat)
                    msgs[name] = [(bool(r), t, n, groups.get(n)) for r, t, n in fields]
                pos = j
        walk(txt, pkg + '.')
    return msgs, enums

MSGS, ENUMS = load_protos()
SCALARS = {'int64', 'uint64', 'int32', 'uint32', 'bool', 'string', 'bytes', 'sint64', 'fixed64'}

def resolve(t, scope):
    if t in SCALARS:
        return t
    parts = scope.split('.')
    for i in range(len(parts), 0, -1):
        cand = '.'.join(parts[:i]) + '.' + t
        if cand in MSGS or cand in ENUMS:
            return cand
    for k in list(MSGS) + list(ENUMS):
        if k.endswith('.' + t):
            return k
    return t

def camel(n):
    out, up = '', False
    for c in n:
        if c == '_':
            up = True
        elif up:
            out += c.upper(); up = False
        else:
            out += c
    return out

def rand_scalar(t, r):
    if t in ('int64', 'sint64'):
        return r.choice([0, 1, -1, 42, 2**63 - 1, -2**63, str(r.randint(-10**6, 10**6)), '7', 1.5, '1e3', 2**63])
    if t in ('uint64', 'fixed64'):
        return r.choice([0, 5, 2**64 - 1, str(2**64 - 1), '-1', -1, 2**64])
    if t in ('int32', 'uint32'):
        return r.choice([0, 3, -3, 2**31, '12'])
    if t == 'bool':
        return r.choice([True, False, 'true', 0, None])
    if t == 'string':
        return r.choice(['', 'a', '<&>', 'é', '\u2028', 'x' * 10, 5])
    if t == 'bytes':
        raw = bytes(r.randint(0, 255) for _ in range(r.randint(0, 7)))
        return r.choice([base64.b64encode(raw).decode(), 'Zm9', 'Zm9v\n', 'Zg==Zg==', '====', [1, 2, 300], 7])
    if t in ENUMS:
        names = ENUMS[t]
        return r.choice([names[r.randrange(len(names))][0], int(names[-1][1]), 99, 'NOPE', '1'])
    return None

def rand_msg(name, r, depth=0):
    out = {}
    used = set()  # Go tries oneof members in map order: give one at most
    for rep, t, fname, group in MSGS.get(name, []):
        if r.random() < 0.5 or (group is not None and group in used):
            continue
        if group is not None:
            used.add(group)
        rt = resolve(t, name)
        key = fname if r.random() < 0.7 else camel(fname)
        def one():
            if rt in MSGS:
                return rand_msg(rt, r, depth + 1) if depth < 3 else {}
            return rand_scalar(rt, r)
        if rep:
            out[key] = [one() for _ in range(r.randint(0, 3))] if r.random() < 0.9 else one()
        else:
            out[key] = one()
    if r.random() < 0.1:
        out['unknown_' + str(r.randint(0, 9))] = r.choice([1, 'x', [1], {'a': 1}])
    return out

def mutate(s, r):
    b = bytearray(s.encode())
    for _ in range(r.randint(1, 3)):
        op = r.randrange(4)
        i = r.randrange(len(b) + 1)
        if op == 0 and b:
            del b[min(i, len(b) - 1)]
        elif op == 1:
            b[i:i] = bytes([r.choice(b'{}[]",:\\ \n0-.eEtfnu\x00\x01\xc3\xff/"')])
        elif op == 2 and b:
            b[min(i, len(b) - 1)] = r.randrange(256)
        else:
            b = b[:i]
    return bytes(b)

def main():
    oracle, cli = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
    r = random.Random(int(sys.argv[4]) if len(sys.argv) > 4 else 1)
    names = sorted(n_ for n_ in MSGS if n_.startswith('etcdserverpb.'))
    lines = []
    for i in range(n):
        name = r.choice(names)
        body = json.dumps(rand_msg(name, r), ensure_ascii=r.random() < 0.5)
        if r.random() < 0.4:
            body = mutate(body, r)
        elif r.random() < 0.2:
            body = (body + r.choice([' trailing', '  ', '\n{}', 'x'])).encode()
        else:
            body = body.encode()
        lines.append('%s\t%s\n' % (name, base64.b64encode(body).decode()))
    data = ''.join(lines).encode()
    a = subprocess.run([oracle], input=data, capture_output=True).stdout.decode(errors='replace').splitlines()
    b = subprocess.run([cli], input=data, capture_output=True).stdout.decode(errors='replace').splitlines()
    bad = 0
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y and not (x.startswith('PANIC') or 'null' in x and x.replace('null', '{}') == y):
            bad += 1
            if bad <= 20:
                name, body = lines[i].split('\t')
                print('DIFF %s %r\n  go: %s\n  c:  %s' % (name, base64.b64decode(body), x, y))
    if len(a) != len(b):
        print('line counts differ: %d vs %d' % (len(a), len(b)))
        bad += 1
    print('pbjson_diff: %d inputs, %d differences' % (n, bad))
    sys.exit(1 if bad else 0)

main()
