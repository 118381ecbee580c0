#!/usr/bin/python3
"""metcdctl completion bash|zsh and --help on every command, no server:

  - the bash script passes `bash -n`; sourced in bash, its completion
    function fills COMPREPLY with commands, subcommands, a command's own
    flags and the global ones, and -w/--write-out values (after "-w ",
    "--write-out=" and bash's "--write-out = " word split);
  - the zsh script passes `zsh -n` when zsh is installed, else has the
    #compdef line, the _metcdctl function and its compdef registration;
  - every command of the table (the root's subcommands as the completion
    script lists them, recursively) answers `metcdctl <cmd> [sub] --help`
    with exit 0 and the NAME/USAGE help, and the root's help lists each.

usage: test_metcdctl_completion.py METCDCTL
"""

import shutil
import subprocess
import sys
import tempfile

METCDCTL = sys.argv[-1]
checks = failures = 0


def check(cond, what):
    global checks, failures
    checks += 1
    if cond:
        print("ok", what)
    else:
        failures += 1
        print("FAIL", what)


def run(*args):
    return subprocess.run([METCDCTL] + list(args), capture_output=True, text=True, timeout=30)


def complete(script, words):
    """COMPREPLY of the bash function for the command line `words` (the
    last one being completed)."""
    arr = " ".join("'%s'" % w.replace("'", "'\\''") for w in words)
    prog = ('source "%s"\nCOMP_WORDS=(%s)\nCOMP_CWORD=%d\nCOMPREPLY=()\n_metcdctl\n'
            'printf "%%s\\n" "${COMPREPLY[@]}"\n' % (script, arr, len(words) - 1))
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", prog], capture_output=True,
                       text=True, timeout=30)
    return [w for w in r.stdout.split("\n") if w]


def subs_of(script, path):
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c",
                        'source "%s"; __metcdctl_subs "$1"' % script, "x", path],
                       capture_output=True, text=True, timeout=30)
    return r.stdout.split()


def main():
    tmp = tempfile.mkdtemp(prefix="metcd-ctlcomp-")
    try:
        r = run("completion", "bash")
        check(r.returncode == 0 and "complete -F _metcdctl metcdctl" in r.stdout,
              "completion bash prints a script registering _metcdctl")
        script = tmp + "/metcdctl.bash"
        with open(script, "w") as f:
            f.write(r.stdout)
        n = subprocess.run(["bash", "-n", script], capture_output=True, text=True)
        check(n.returncode == 0, "the bash script passes bash -n " + n.stderr.strip())

        top = subs_of(script, "")
        check({"channelz", "completion", "id"} <= set(top),
              "the script knows the root's commands (%s)" % " ".join(top))
        cases = [
            (["metcdctl", ""], top),
            (["metcdctl", "chan"], ["channelz"]),
            (["metcdctl", "channelz", ""], ["channels", "servers", "socket", "sockets"]),
            (["metcdctl", "channelz", "sock"], ["socket", "sockets"]),
            (["metcdctl", "completion", ""], ["bash", "zsh"]),
            (["metcdctl", "--endpoints", "x:1", "channelz", "sockets", "--se"], ["--server"]),
            (["metcdctl", "-w", "json", "id", "next", "--c"],
             ["--count", "--command-timeout", "--cacert", "--cert"]),
            (["metcdctl", "channelz", "socket", "--su"], ["--summary"]),
            (["metcdctl", "--wri"], ["--write-out"]),
            (["metcdctl", "-w", ""], ["simple", "json", "fields", "table", "protobuf"]),
            (["metcdctl", "channelz", "servers", "--write-out", "j"], ["json"]),
            (["metcdctl", "channelz", "servers", "--write-out=p"], ["--write-out=protobuf"]),
            (["metcdctl", "--write-out", "=", "t"], ["table"]),
            (["metcdctl", "--write-out", "=", "json", "id", "cr"], ["create-tag"]),
            (["metcdctl", "--endpoints", "id", ""], top),  # "id" is --endpoints' value
            (["metcdctl", "id", "next", "--count", ""], []),
            (["metcdctl", "bogus", ""], top),
        ]
        for words, want in cases:
            got = complete(script, words)
            check(sorted(got) == sorted(want), "complete %r -> %s" % (" ".join(words), got))
        flags = complete(script, ["metcdctl", "channelz", "sockets", "-"])
        check({"--server", "--endpoints", "--write-out", "-w", "--help"} <= set(flags) and
              "--count" not in flags,
              "a command's flags and the globals, not another command's")

        r = run("completion", "zsh")
        check(r.returncode == 0, "completion zsh exits 0")
        zscript = tmp + "/_metcdctl"
        with open(zscript, "w") as f:
            f.write(r.stdout)
        zsh = shutil.which("zsh")
        if zsh:
            n = subprocess.run([zsh, "-n", zscript], capture_output=True, text=True)
            check(n.returncode == 0, "the zsh script passes zsh -n " + n.stderr.strip())
        else:
            print("(zsh not installed: checking the script's structure)")
        z = r.stdout
        check(z.startswith("#compdef metcdctl\n") and "\n_metcdctl()\n{\n" in z and
              "compdef _metcdctl metcdctl" in z and "compadd" in z and
              "__metcdctl_subs()" in z and '"channelz") echo "channels servers socket sockets"'
              in z and "simple json fields table protobuf" in z,
              "the zsh script: #compdef, _metcdctl, compdef, the tables")
        check(z.count("{") == z.count("}") and z.count(" case ") == z.count("esac"),
              "the zsh script's braces and case/esac balance")
        r = run("completion", "fish")
        check(r.returncode == 0 and "bash" in r.stdout and "zsh" in r.stdout,
              "completion with an unknown shell shows the help listing bash and zsh")

        # --help on every command of the table
        root = run("--help")
        check(root.returncode == 0 and root.stdout.startswith("NAME:"), "metcdctl --help")
        paths = []

        def walk(path):
            for s in subs_of(script, path):
                p = (path + " " + s).strip()
                paths.append(p)
                walk(p)
        walk("")
        check(len(paths) > len(top), "the command table has %d commands" % len(paths))
        bad = []
        for p in paths:
            for h in ("--help", "-h"):
                r = run(*(p.split() + [h]))
                name = r.stdout.split("\n")[1].strip() if r.stdout.count("\n") > 1 else ""
                if (r.returncode != 0 or not r.stdout.startswith("NAME:\n") or
                        "\nUSAGE:\n\tmetcdctl " + p.split()[0] not in r.stdout or
                        not name.startswith(p + " - ") or r.stderr):
                    bad.append((p, h, r.returncode, r.stdout[:80], r.stderr[:80]))
            leaf = not subs_of(script, p)
            if leaf and " " in p and ("\t%s\t" % p) not in root.stdout:
                bad.append((p, "listed in the root help", root.stdout[:0]))
        check(not bad, "every command (%d) answers --help and -h with NAME/USAGE, exit 0 %s"
              % (len(paths), bad[:3]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d checks, %d failed" % (checks, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
