"""Memory per idle keep-alive connection: opens COUNT connections to a server, sends one request
on each (so each is a used keep-alive connection, with whatever buffers the server keeps for it),
leaves them all open and idle, and reads the server tree's RSS before and after.

Prints one JSON object: rss_before_kib, rss_open_kib, rss_closed_kib (after all are closed again),
kib_per_conn = (open - before) / opened, opened, failed (connections that could not be opened or
answered 200), alive (of a sample of the idle ones, how many still answer a request afterwards).

usage: idle_conns.py --url URL --body JSON [--header 'name: value']... --pid PID [--count 10000]
"""

import argparse
import json
import os
import resource
import socket
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from procstat import rss_kib  # noqa: E402

TIMEOUT_S = 10


def read_response(sock: socket.socket) -> int:
    """Reads one Content-Length or chunked response; returns its status."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("closed")
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    if "content-length" in headers:
        need = int(headers["content-length"])
        while len(rest) < need:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("closed")
            rest += data
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while not rest.endswith(b"0\r\n\r\n"):
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("closed")
            rest += data
    return status


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--body", required=True)
    ap.add_argument("--header", action="append", default=[])
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--count", type=int, default=10000)
    a = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.count + 1024
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, min(hard, want)), max(hard, want)))

    u = urllib.parse.urlsplit(a.url)
    body = a.body.encode()
    request = (
        f"POST {u.path} HTTP/1.1\r\nhost: {u.netloc}\r\n"
        + "".join(h + "\r\n" for h in a.header)
        + f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body

    time.sleep(0.5)
    before = rss_kib(a.pid)
    socks, failed, first_error = [], 0, None
    for _ in range(a.count):
        try:
            s = socket.create_connection((u.hostname, u.port), timeout=TIMEOUT_S)
            s.sendall(request)
            status = read_response(s)
            if status != 200:
                raise ValueError(f"status {status}")
            socks.append(s)
        except (OSError, ValueError) as e:
            failed += 1
            first_error = first_error or repr(e)
            if failed > a.count // 10:
                break
    time.sleep(1.0)
    opened = rss_kib(a.pid)

    alive = 0
    sample = socks[:: max(1, len(socks) // 50)]
    for s in sample:
        try:
            s.sendall(request)
            alive += read_response(s) == 200
        except (OSError, ValueError):
            pass
    for s in socks:
        s.close()
    time.sleep(1.0)
    closed = rss_kib(a.pid)
    print(
        json.dumps(
            {
                "rss_before_kib": before,
                "rss_open_kib": opened,
                "rss_closed_kib": closed,
                "opened": len(socks),
                "failed": failed,
                "first_error": first_error,
                "alive": f"{alive}/{len(sample)}",
                "kib_per_conn": (opened - before) / len(socks) if socks else None,
            }
        )
    )


if __name__ == "__main__":
    main()
