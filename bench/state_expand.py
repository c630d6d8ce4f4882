#!/usr/bin/env python3
"""Added latency of continuing a stored conversation, per store.

Starts a release `switchyard serve` on the built-in mock (and a `redis-server` for the Redis
store), builds a 20-turn conversation (~2 KB of input per turn), then times, one request at a
time on one keep-alive connection, alternating:
  inline:   the whole conversation sent as `input` (what a stateless client sends),
  expanded: `previous_response_id` of turn 20 plus the same last input (the gateway reads the
            stored turns and builds the same upstream request).
Both use `store: false`, so neither pays for a write. The difference of the two is what the
lookup and expansion add. Run: python3 bench/state_expand.py [--requests N]
(`cargo build --release` first; `redis-server` on PATH for the Redis row).
"""

import argparse
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(REPO, "target", "release", "switchyard")
TOKEN = "sk-lr-bench"
TURNS = 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(state: str) -> str:
    return f"""[server]
listen = "127.0.0.1:0"
admin_listen = ""
workers = 1

[[providers]]
id = "mock"
kind = "mock"

[[models]]
id = "m"
provider = "mock"

[[projects]]
slug = "p"
tokens = ["{TOKEN}"]
models = ["m"]

{state}
"""


def start(cfg: str, workdir: str) -> tuple[subprocess.Popen, int]:
    path = os.path.join(workdir, "switchyard.toml")
    with open(path, "w") as f:
        f.write(cfg)
    p = subprocess.Popen([BIN, "serve", "--config", path], cwd=workdir, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    for line in p.stdout:
        m = re.search(r"gateway listening on http://127.0.0.1:(\d+)", line)
        if m:
            return p, int(m.group(1))
    raise SystemExit("the gateway did not start")


def post(conn: http.client.HTTPConnection, body: dict) -> tuple[float, dict]:
    data = json.dumps(body).encode()
    t = time.perf_counter()
    conn.request("POST", "/v1/responses", data, {"authorization": f"Bearer {TOKEN}",
                                                 "content-type": "application/json"})
    r = conn.getresponse()
    out = r.read()
    took = time.perf_counter() - t
    if r.status != 200:
        raise SystemExit(f"{r.status}: {out[:300]!r}")
    return took, json.loads(out)


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1e6


def measure(name: str, state: str, n: int) -> None:
    workdir = tempfile.mkdtemp(prefix="switchyard-state-bench-")
    gw, port = start(config(state), workdir)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        history: list[dict] = []
        prev = None
        filler = "lorem ipsum dolor sit amet " * 75  # ~2 KB per turn
        for i in range(TURNS):
            turn = [{"role": "user", "content": f"turn {i}: {filler}"}]
            body = {"model": "m", "input": turn}
            if prev:
                body["previous_response_id"] = prev
            _, r = post(conn, body)
            prev = r["id"]
            history += turn + r["output"]
        last = [{"role": "user", "content": "and now?"}]
        inline = {"model": "m", "input": history + last, "store": False}
        expanded = {"model": "m", "input": last, "previous_response_id": prev, "store": False}
        for _ in range(200):  # warm-up
            post(conn, inline)
            post(conn, expanded)
        a, b = [], []
        for _ in range(n):
            a.append(post(conn, inline)[0])
            b.append(post(conn, expanded)[0])
        p50a, p99a, p50b, p99b = pct(a, .5), pct(a, .99), pct(b, .5), pct(b, .99)
        print(f"{name:9} inline p50/p99 {p50a:7.0f} / {p99a:7.0f} us   expanded p50/p99 "
              f"{p50b:7.0f} / {p99b:7.0f} us   added p50 {p50b - p50a:+6.0f} us, p99 {p99b - p99a:+6.0f} us")
    finally:
        gw.terminate()
        gw.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000)
    n = ap.parse_args().requests
    if not os.path.exists(BIN):
        raise SystemExit("build first: cargo build --release")
    print(f"{TURNS}-turn conversation (~{TURNS * 2} KB of input), {n} requests per mode, one at a time")
    measure("embedded", "", n)
    if shutil.which("redis-server") is None:
        print("redis     skipped: no redis-server on PATH", file=sys.stderr)
        return
    port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise SystemExit("redis-server did not start")
        measure("redis", f'[state]\nbackend = "redis"\nredis_url = "redis://127.0.0.1:{port}/0"', n)
    finally:
        redis.terminate()
        redis.wait()


if __name__ == "__main__":
    main()
