"""Added latency at concurrency 1, measured in pairs: one request to the base (the upstream itself),
one to the target, alternately, COUNT times, each on its own keep-alive connection.

On a shared machine a burst of other work lands on whichever run is going at the time, so two
separate `wrk -c1` runs can differ by milliseconds at p99 for reasons of their own. Alternating
request by request gives both sides the same bursts; the difference of their percentiles is then
what the target adds, up to sampling error. The client's own cost (Python, raw sockets) is in both.

Prints one JSON object: base_us and target_us ({p50, p90, p99, p999}), added_us (target minus base per
percentile), count (pairs done: COUNT, or fewer when --seconds ran out first), errors (non-200 answers, or bodies without the upstream's content).

usage: paired_probe.py --base-url URL --base-body JSON --url URL --body JSON [--header H]...
                       [--count N] [--seconds S] [--expect TEXT]
"""

import argparse
import json
import socket
import time
import urllib.parse

TIMEOUT_S = 10
PERCENTILES = (("p50", 50), ("p90", 90), ("p99", 99), ("p999", 99.9))


def pct(values: list, p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))] if s else float("nan")


class Client:
    """One keep-alive connection and one fixed request."""

    def __init__(self, url: str, body: str, headers: list) -> None:
        u = urllib.parse.urlsplit(url)
        self.addr = (u.hostname, u.port)
        data = body.encode()
        self.request = (
            f"POST {u.path} HTTP/1.1\r\nhost: {u.netloc}\r\n"
            + "".join(h + "\r\n" for h in headers)
            + f"content-length: {len(data)}\r\n\r\n"
        ).encode() + data
        self.sock = None

    def connect(self) -> None:
        self.sock = socket.create_connection(self.addr, timeout=TIMEOUT_S)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def roundtrip(self) -> tuple:
        """(nanoseconds from send to the last byte of the response, status, body)."""
        if self.sock is None:
            self.connect()
        t0 = time.perf_counter_ns()
        self.sock.sendall(self.request)
        buf = b""
        while b"\r\n\r\n" not in buf:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed")
            buf += data
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip().lower() for k, _, v in (x.partition(":") for x in lines[1:])}
        if "content-length" in headers:
            need = int(headers["content-length"])
            while len(rest) < need:
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionError("closed")
                rest += data
        elif headers.get("transfer-encoding") == "chunked":
            while not rest.endswith(b"\r\n0\r\n\r\n") and rest != b"0\r\n\r\n":
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionError("closed")
                rest += data
        t = time.perf_counter_ns() - t0
        if headers.get("connection") == "close":
            self.sock.close()
            self.sock = None
        return t, status, rest


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--base-body", required=True)
    ap.add_argument("--url", required=True)
    ap.add_argument("--body", required=True)
    ap.add_argument("--header", action="append", default=[])
    ap.add_argument("--count", type=int, default=5000)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--expect", default="")
    ap.add_argument("--seconds", type=float, default=0, help="stop after this long (0: no limit)")
    a = ap.parse_args()

    base = Client(a.base_url, a.base_body, a.header)
    target = Client(a.url, a.body, a.header)
    expect = a.expect.encode()
    times = {"base": [], "target": []}
    errors, first_error, done = 0, None, 0
    deadline = None
    for i in range(a.warmup + a.count):
        if i == a.warmup and a.seconds:
            deadline = time.monotonic() + a.seconds
        if deadline and time.monotonic() > deadline:
            break
        done = i + 1 - a.warmup
        # alternate which goes first, so neither always follows the other's wake-up
        pair = (("base", base), ("target", target)) if i % 2 else (("target", target), ("base", base))
        for name, client in pair:
            try:
                t, status, body = client.roundtrip()
                ok = status == 200 and expect in body
            except (OSError, ValueError) as e:
                client.sock, ok, t, status, body = None, False, 0, 0, repr(e).encode()
            if i < a.warmup:
                continue
            if ok:
                times[name].append(t / 1000)
            else:
                errors += 1
                first_error = first_error or f"{name}: status {status}: {body[:200]!r}"

    out = {"count": max(done, 0), "errors": errors, "first_error": first_error}
    for name in ("base", "target"):
        out[f"{name}_us"] = {k: pct(times[name], p) for k, p in PERCENTILES}
    out["added_us"] = {k: out["target_us"][k] - out["base_us"][k] for k, _ in PERCENTILES}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
