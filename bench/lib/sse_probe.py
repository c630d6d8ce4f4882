"""Times streamed chat completions event by event: time to first byte and gaps between events.

Sends COUNT streaming requests one after another on one keep-alive connection (a new one if the
server closes it) and timestamps, with a raw socket and time.perf_counter_ns, the first byte of
each response and the read that completed each SSE event. Events that are the gateway's own
(`{"type":"trace"...}` or `: comment` lines) are left out of the gaps, so a gateway and the upstream
are compared on the upstream's events. Prints one JSON object:

  ttfb_us   {p50, p99}  request sent -> first byte of the response head
  ttfe_us   {p50, p99}  request sent -> first upstream event
  total_us  {p50, p99}  request sent -> data: [DONE]
  gap_us    {p50, max}  per response the largest gap between consecutive upstream events;
                        p50 over responses, and the largest of all
  events    upstream events per response (the smallest seen), errors (responses that were not
            200 text/event-stream ending in [DONE])

usage: sse_probe.py --url URL --body JSON [--header 'name: value']... [--count N] [--warmup N]
"""

import argparse
import json
import socket
import time
import urllib.parse

TIMEOUT_S = 10


def pct(values: list, p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


class Conn:
    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT_S)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.buf_t = 0

    def fill(self) -> None:
        data = self.sock.recv(65536)
        t = time.perf_counter_ns()
        if not data:
            raise ConnectionError("closed by server")
        self.buf += data
        self.buf_t = t

    def take_until(self, sep: bytes) -> bytes:
        while sep not in self.buf:
            self.fill()
        i = self.buf.index(sep) + len(sep)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self.fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def one(conn: Conn, request: bytes) -> dict:
    """One request; returns its timings (ns, relative to the send) and its upstream events."""
    t0 = time.perf_counter_ns()
    conn.sock.sendall(request)
    conn.fill()
    first = conn.buf_t - t0
    head = conn.take_until(b"\r\n\r\n").decode("latin-1")
    lines = head.split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip().lower()

    events = []  # (completion time ns, event text)
    pending = b""

    def feed(data: bytes, t: int) -> None:
        nonlocal pending
        pending += data
        while True:
            cut = [i for i in (pending.find(b"\n\n"), pending.find(b"\r\n\r\n")) if i >= 0]
            if not cut:
                return
            i = min(cut)
            sep = 4 if pending[i : i + 4] == b"\r\n\r\n" else 2
            events.append((t - t0, pending[:i].decode("utf-8", "replace")))
            pending = pending[i + sep :]

    if headers.get("transfer-encoding") == "chunked":
        while True:
            size = int(conn.take_until(b"\r\n").split(b";")[0].strip(), 16)
            if size == 0:
                conn.take_until(b"\r\n")  # no trailers are expected: the empty line
                break
            data = conn.take(size)
            feed(data, conn.buf_t)
            conn.take(2)
    elif "content-length" in headers:
        left = int(headers["content-length"])
        while left:
            if not conn.buf:
                conn.fill()
            data, conn.buf = conn.buf[:left], conn.buf[left:]
            feed(data, conn.buf_t)
            left -= len(data)
    else:
        raise ValueError("response has neither content-length nor chunked framing")

    upstream = [
        (t, e)
        for t, e in events
        if e.startswith("data:") and '"type":"trace"' not in e.replace(" ", "")
    ]
    ok = (
        status == 200
        and headers.get("content-type", "").startswith("text/event-stream")
        and bool(upstream)
        and upstream[-1][1].strip() == "data: [DONE]"
    )
    gaps = [b[0] - a[0] for a, b in zip(upstream, upstream[1:])]
    return {
        "ok": ok,
        "status": status,
        "ttfb": first,
        "ttfe": upstream[0][0] if upstream else None,
        "total": upstream[-1][0] if upstream else None,
        "gap": max(gaps) if gaps else 0,
        "events": len(upstream),
        "close": headers.get("connection") == "close",
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--body", required=True)
    ap.add_argument("--header", action="append", default=[])
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    a = ap.parse_args()

    u = urllib.parse.urlsplit(a.url)
    body = a.body.encode()
    head = f"POST {u.path or '/'}{'?' + u.query if u.query else ''} HTTP/1.1\r\nhost: {u.netloc}\r\n"
    head += "".join(h + "\r\n" for h in a.header)
    head += f"content-length: {len(body)}\r\n\r\n"
    request = head.encode() + body

    conn = Conn(u.hostname, u.port)
    results, errors, first_error = [], 0, None
    for i in range(a.warmup + a.count):
        try:
            r = one(conn, request)
        except (OSError, ValueError) as e:
            r = {"ok": False, "status": 0, "close": True, "error": repr(e)}
        if r.get("close"):
            conn.sock.close()
            conn = Conn(u.hostname, u.port)
        if i < a.warmup:
            continue
        if r["ok"]:
            results.append(r)
        else:
            errors += 1
            first_error = first_error or {k: v for k, v in r.items() if k != "ok"}

    us = lambda key: [r[key] / 1000 for r in results]  # noqa: E731
    out = {
        "count": len(results),
        "errors": errors,
        "first_error": first_error,
        "ttfb_us": {"p50": pct(us("ttfb"), 50), "p99": pct(us("ttfb"), 99)},
        "ttfe_us": {"p50": pct(us("ttfe"), 50), "p99": pct(us("ttfe"), 99)},
        "total_us": {"p50": pct(us("total"), 50), "p99": pct(us("total"), 99)},
        "gap_us": {"p50": pct(us("gap"), 50), "max": max(us("gap"), default=float("nan"))},
        "events": min((r["events"] for r in results), default=0),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
