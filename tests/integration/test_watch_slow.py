#!/usr/bin/python3
"""Slow watch consumers against one metcd member (issue 7, "Back-pressure").

1. A Watch stream whose client never reads (a raw HTTP/2 client on a plain
   socket that opens the stream, creates four watchers on every key and
   stops reading) while 1 MiB values are put, far more bytes than the socket
   buffers and HTTP/2 windows hold. The member's anonymous memory (RssAnon:
   heap, not LMDB's file-backed pages) must stay well under the bytes
   written, a normal watcher (metcd-bench watch, which reads) must get every
   event of its keys with low latency meanwhile, and after the non-reader
   disconnects further writes must not grow the member and it still serves.
2. A client that sends watch creates on one stream and never consumes the
   answers (its HTTP/2 layer reads frames and obeys flow control, but gives
   no window back for received data): the member stops reading that stream
   (HTTP/2 flow control stops the client after one stream window) instead of
   creating watchers and queueing answers without bound.

Checked to fail when the per-stream outbound bound is lifted (RssAnon +477
MiB) and when the Watch service's request back-pressure is off (+453 MiB,
all 26.7 MiB of creates taken).

usage: test_watch_slow.py METCD_BINARY METCD_BENCH_BINARY
"""

import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

MIB = 1 << 20
BIG_PUTS = 120            # of 1 MiB each: 120 MiB written while the client does not read
SLOW_WATCHERS = 4         # on the non-reading stream: unbounded, 4 copies of every byte
MAX_GROWTH = 64 * MIB     # RssAnon growth allowed beyond the same writes with no watcher
FLOOD_CREATES = 2000000   # creates sent by the second non-reader (about 20 MiB of requests)
FLOOD_GROWTH = 48 * MIB


# ---- a raw HTTP/2 gRPC client (RFC 9113, RFC 7541 literals only) ----

def frame(ftype, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream) + payload


def hpack_int(n, prefix_bits, first):
    top = (1 << prefix_bits) - 1
    if n < top:
        return bytes([first | n])
    out = [first | top]
    n -= top
    while n >= 128:
        out.append((n & 127) | 128)
        n >>= 7
    out.append(n)
    return bytes(out)


def hpack_literal(name, value):
    # literal header field without indexing, new name, no Huffman coding
    return b"\x00" + hpack_int(len(name), 7, 0) + name + hpack_int(len(value), 7, 0) + value


def varint(n):
    out = bytearray()
    while n >= 128:
        out.append((n & 127) | 128)
        n >>= 7
    out.append(n)
    return bytes(out)


def pb_bytes(field, data):
    return varint(field << 3 | 2) + varint(len(data)) + data


def watch_create(key, range_end=b""):
    """etcdserverpb.WatchRequest{create_request{key, range_end}}, gRPC framed."""
    create = pb_bytes(1, key) + (pb_bytes(2, range_end) if range_end else b"")
    msg = pb_bytes(1, create)
    return b"\x00" + struct.pack(">I", len(msg)) + msg


class RawWatch:
    """One Watch stream on its own connection; reads only the handshake."""

    def __init__(self, endpoint, window=(1 << 31) - 1):
        host, port = endpoint.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=5)
        settings = struct.pack(">HI", 4, window)  # SETTINGS_INITIAL_WINDOW_SIZE
        out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, settings)
        if window > 65535:
            out += frame(8, 0, 0, struct.pack(">I", window - 65535))  # connection window
        self.sock.sendall(out)
        self._ack_server_settings()
        headers = b"".join([
            hpack_literal(b":method", b"POST"), hpack_literal(b":scheme", b"http"),
            hpack_literal(b":path", b"/etcdserverpb.Watch/Watch"),
            hpack_literal(b":authority", endpoint.encode()),
            hpack_literal(b"content-type", b"application/grpc"), hpack_literal(b"te", b"trailers")])
        self.sock.sendall(frame(1, 4, 1, headers))  # HEADERS, END_HEADERS, stream 1

    def _ack_server_settings(self):
        buf = b""
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError("server closed during the handshake")
            buf += chunk
            while len(buf) >= 9:
                n = int.from_bytes(buf[0:3], "big")
                if len(buf) < 9 + n:
                    break
                ftype, flags = buf[3], buf[4]
                buf = buf[9 + n:]
                if ftype == 4 and not flags & 1:
                    self.sock.sendall(frame(4, 1, 0, b""))  # SETTINGS ACK
                    return

    def send_data(self, data, deadline_s=None):
        """DATA frames on stream 1 (16 KiB each); with a deadline, stops when
        the socket takes nothing more for that long. Returns bytes taken."""
        frames = [frame(0, 0, 1, data[i:i + 16384]) for i in range(0, len(data), 16384)]
        wire = b"".join(frames)
        if deadline_s is None:
            self.sock.sendall(wire)
            return len(data)
        self.sock.setblocking(False)
        sent, last = 0, time.monotonic()
        view = memoryview(wire)
        while sent < len(wire) and time.monotonic() - last < deadline_s:
            try:
                n = self.sock.send(view[sent:sent + MIB])
                sent += n
                last = time.monotonic()
            except BlockingIOError:
                time.sleep(0.01)
        self.sock.setblocking(True)
        return sent * len(data) // len(wire)

    def close(self):
        self.sock.close()


class FloodClient(RawWatch):
    """A client whose HTTP/2 layer works (it reads frames: SETTINGS, PING,
    WINDOW_UPDATE, and obeys flow control) but whose application never
    consumes the answers: received DATA is dropped without a WINDOW_UPDATE,
    so the member can send it one 64 KiB window and no more."""

    def __init__(self, endpoint):
        self.lock = threading.Condition()
        self.conn_win = self.stream_win = 65535
        self.initial = 65535
        self.reset = None
        super().__init__(endpoint, window=65535)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _ack_server_settings(self):
        pass  # the reader thread does it

    def _read(self):
        buf = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while len(buf) >= 9:
                n = int.from_bytes(buf[0:3], "big")
                if len(buf) < 9 + n:
                    break
                ftype, flags, sid = buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7fffffff
                payload, buf = buf[9:9 + n], buf[9 + n:]
                with self.lock:
                    if ftype == 4 and not flags & 1:  # SETTINGS
                        for i in range(0, len(payload), 6):
                            ident, val = struct.unpack(">HI", payload[i:i + 6])
                            if ident == 4:
                                self.stream_win += val - self.initial
                                self.initial = val
                        self.sock.sendall(frame(4, 1, 0, b""))
                    elif ftype == 8:  # WINDOW_UPDATE
                        inc = int.from_bytes(payload[0:4], "big") & 0x7fffffff
                        if sid == 0:
                            self.conn_win += inc
                        elif sid == 1:
                            self.stream_win += inc
                    elif ftype == 6 and not flags & 1:  # PING
                        self.sock.sendall(frame(6, 1, 0, payload))
                    elif ftype in (3, 7):  # RST_STREAM, GOAWAY
                        self.reset = (ftype, payload)
                    self.lock.notify_all()

    def send_data(self, data, deadline_s=None):
        """Sends within the windows; stops when no window opens for
        deadline_s. Returns bytes sent."""
        sent = 0
        while sent < len(data):
            with self.lock:
                if not self.lock.wait_for(lambda: min(self.conn_win, self.stream_win) > 0,
                                          timeout=deadline_s):
                    break
                n = min(16384, self.conn_win, self.stream_win, len(data) - sent)
                self.conn_win -= n
                self.stream_win -= n
                self.sock.sendall(frame(0, 0, 1, data[sent:sent + n]))
            sent += n
        return sent


# ---- measuring the member ----

def rss_anon(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no RssAnon in /proc/%d/status" % pid)


class Sampler(threading.Thread):
    """Peak RssAnon of pid every 50 ms until stopped."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stopped = pid, rss_anon(pid), threading.Event()

    def run(self):
        while not self.stopped.is_set():
            self.peak = max(self.peak, rss_anon(self.pid))
            time.sleep(0.05)

    def stop(self):
        self.stopped.set()
        self.join()
        self.peak = max(self.peak, rss_anon(self.pid))
        return self.peak


def big_puts(bench, endpoint, n, first_key):
    """n puts of 1 MiB values on 12-byte keys (never the normal watcher's)."""
    r = subprocess.run([bench, "put", "--endpoints", endpoint, "--total", str(n),
                        "--key-size", "12", "--key-space", "0", "--val-size", str(MIB),
                        "--timeout-ms", "30000", "--json", "--no-progress",
                        "--seed", str(first_key)],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise AssertionError("big puts failed: %s %s" % (r.stdout, r.stderr))
    return json.loads(r.stdout)


def main():
    metcd, bench = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    checks = failures = 0

    def check(ok, what):
        nonlocal checks, failures
        checks += 1
        if not ok:
            failures += 1
        print("%s: %s" % ("ok" if ok else "FAIL", what), flush=True)

    s = harness.Server(metcd)
    try:
        s.start()
        pid = s.proc.pid
        s.ctl("put", "warm", "up", check=True)

        # The member keeps the written entries in its in-memory raft log
        # (as etcd does, up to --snapshot-count), so its growth under the
        # same writes with no slow watcher is the yardstick (measured after
        # a first round, which also sizes the heap).
        big_puts(bench, s.endpoint, BIG_PUTS // 2, 1)
        base = rss_anon(pid)
        sampler = Sampler(pid)
        sampler.start()
        big_puts(bench, s.endpoint, BIG_PUTS, 1)
        control = sampler.stop() - base
        print("control: RssAnon grew %.1f MiB for %d MiB written with no watcher" %
              (control / MIB, BIG_PUTS))

        # 1. a watcher on every key whose client never reads
        slow = RawWatch(s.endpoint)
        slow.send_data(watch_create(b"\x00", b"\x00") * SLOW_WATCHERS)
        time.sleep(0.5)
        base = rss_anon(pid)
        sampler = Sampler(pid)
        sampler.start()
        normal = subprocess.Popen(
            [bench, "watch", "--endpoints", s.endpoint, "--watchers", "10", "--keys", "2",
             "--streams", "2", "--conns", "1", "--total", "300", "--rate", "20",
             "--clients", "4", "--val-size", "16", "--settle-ms", "0", "--drain-ms", "5000",
             "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        t0 = time.monotonic()
        res = big_puts(bench, s.endpoint, BIG_PUTS, 1)
        written = BIG_PUTS * MIB
        out, err = normal.communicate(timeout=120)
        peak = sampler.stop()
        grew = peak - base - control
        print("big puts: %d ok in %.1f s; RssAnon %.1f MiB before, peak %.1f MiB" %
              (res["ok"], time.monotonic() - t0, base / MIB, peak / MIB))
        check(res["ok"] == BIG_PUTS, "all %d big puts succeeded" % BIG_PUTS)
        check(grew < MAX_GROWTH,
              "member memory bounded with a non-reading watcher: RssAnon grew %.1f MiB more "
              "than with no watcher for %d MiB written (limit %d MiB)" %
              (grew / MIB, written // MIB, MAX_GROWTH // MIB))
        if normal.returncode != 0:
            check(False, "normal watcher (metcd-bench watch) exited %d: %s %s" %
                  (normal.returncode, out, err))
        else:
            nw = json.loads(out)
            p99 = [p["s"] for p in nw["percentiles"] if p["percent"] == 99][0]
            print("normal watcher: %d of %d events, p50 %.1f ms, p99 %.1f ms, slowest %.1f ms" %
                  (nw["events"], nw["events_expected"],
                   [p["s"] for p in nw["percentiles"] if p["percent"] == 50][0] * 1e3,
                   p99 * 1e3, nw["slowest_s"] * 1e3))
            check(nw["puts_ok"] == 300 and nw["events"] == nw["events_expected"] == 1500,
                  "the normal watcher got every event (%d of %d)" %
                  (nw["events"], nw["events_expected"]))
            check(p99 < 0.5, "the normal watcher's p99 put-to-event latency %.1f ms < 500 ms" %
                  (p99 * 1e3))

        # the non-reader leaves: what it held is not kept, writes go on
        slow.close()
        time.sleep(1)
        after_close = rss_anon(pid)
        sampler = Sampler(pid)
        sampler.start()
        big_puts(bench, s.endpoint, BIG_PUTS, 1)
        later = sampler.stop()
        print("after the non-reader closed: RssAnon %.1f MiB, peak after %d MiB more %.1f MiB" %
              (after_close / MIB, BIG_PUTS, later / MIB))
        check(later - after_close < control + 16 * MIB,
              "after the non-reader closed, the same writes grow the member no more than with "
              "no watcher (%.1f MiB, control %.1f MiB)" % ((later - after_close) / MIB,
                                                           control / MIB))
        r = s.ctl("put", "still", "serving")
        g = s.ctl("get", "still", "--print-value-only")
        check(r.returncode == 0 and g.stdout.strip() == "serving", "the member still serves")

        # 2. creates from a client that never reads
        base = rss_anon(pid)
        sampler = Sampler(pid)
        sampler.start()
        flood = FloodClient(s.endpoint)
        one = watch_create(b"flood")
        taken = flood.send_data(one * FLOOD_CREATES, deadline_s=3)
        time.sleep(0.5)
        peak = sampler.stop()
        print("create flood: the member took %.1f of %.1f MiB; RssAnon %.1f -> peak %.1f MiB" %
              (taken / MIB, len(one) * FLOOD_CREATES / MIB, base / MIB, peak / MIB))
        check(flood.reset is None, "the flood's stream was not reset (%s)" % (flood.reset,))
        check(taken < len(one) * FLOOD_CREATES,
              "the member stopped reading the creates of a client that does not read")
        check(peak - base < FLOOD_GROWTH,
              "member memory bounded under a create flood: RssAnon grew %.1f MiB (limit %d)" %
              ((peak - base) / MIB, FLOOD_GROWTH // MIB))
        flood.close()
        time.sleep(0.5)
        r = s.ctl("put", "still", "serving2")
        g = s.ctl("get", "still", "--print-value-only")
        check(r.returncode == 0 and g.stdout.strip() == "serving2",
              "the member still serves after the flood")
    finally:
        s.cleanup()
    print("%d passed, %d failed" % (checks - failures, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
