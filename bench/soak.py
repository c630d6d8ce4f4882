#!/usr/bin/env python3
"""Soak: steady mixed load through the gateway, checking that every answer is the right one.

Starts `switchyard mock-upstream` (with injected faults: 500s, 429s and streams cut mid-way)
and a gateway whose two providers both point at it (so a failed attempt can fail over), then
sends chat completions at a fixed arrival rate (open loop) for a while: plain and streaming,
5% of them abandoned by the client part-way. Every request carries a nonce as the first word
of its prompt, which the mock echoes in its reply, so each answer can be matched to its
request. Reports:

  lost        a request that got no answer at all (no status line before the connection ended
              or the client's deadline passed), abandoned ones excepted
  mixed       an answer carrying another request's nonce, or a 200 without its own
  truncated   a 200 that ended without saying so: a stream with neither `[DONE]` nor an error
              event, a JSON body that does not parse; a chunked body cut at the HTTP level is
              counted apart (`cut_visible`: the client can tell)
  errors      answers in the error shape (502, 504, 429, a stream's error event), by status:
              the faults the mock injects, reported as the contract says

and the gateway's resident memory and open file descriptors at the start, the middle and the
end of the run (a leak shows as growth between the middle and the end). Exits non-zero when any
request was lost, mixed up or silently truncated, or fds grew past the load's own.

  python3 bench/soak.py                      3 minutes at 40 requests/s
  python3 bench/soak.py --quick              20 s at 30 requests/s (what .ci/run runs)
  python3 bench/soak.py --duration 600 --rate 100 --bin target/release/switchyard

The binary defaults to target/release/switchyard, else target/debug/switchyard (build one
first). Only the standard library is used.
"""

import argparse
import http.client
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKEN = "sk-lr-soak"
NONCE = re.compile(r"n[0-9a-f]{16}")
# How long a client waits for a whole answer; far above the mock's pacing.
CLIENT_TIMEOUT = 20.0


def binary(path):
    if path:
        return path
    for kind in ("release", "debug"):
        p = os.path.join(REPO, "target", kind, "switchyard")
        if os.path.exists(p):
            return p
    sys.exit("soak.py: no target/{release,debug}/switchyard; run cargo build first")


def start(cmd, what, cwd):
    """Starts a switchyard process; returns it and the address its listening line names."""
    proc = subprocess.Popen(
        cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    prefix = f"switchyard {what} listening on http://"
    deadline = time.time() + 30
    for line in proc.stdout:
        if line.startswith(prefix):
            addr = line[len(prefix) :].split(" ")[0].strip()
            # Keep draining stdout so the child never blocks on a full pipe.
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            host, port = addr.rsplit(":", 1)
            return proc, (host, int(port))
        if time.time() > deadline:
            break
    proc.kill()
    sys.exit(f"soak.py: {what} did not start: {' '.join(cmd)}")


def config(upstream):
    base = f"http://{upstream[0]}:{upstream[1]}/v1"
    providers = "".join(
        f"""
[[providers]]
id = "{p}"
kind = "openai"
base_url = "{base}"
api_key_env = "SOAK_KEY"
first_byte_timeout_ms = 5000
"""
        for p in ("a", "b")
    )
    return f"""[server]
listen = "127.0.0.1:0"
admin_listen = ""
workers = 1
{providers}
[[models]]
id = "m-a"
provider = "a"
upstream_id = "mock-a"

[[models]]
id = "m-b"
provider = "b"
upstream_id = "mock-b"

[[projects]]
slug = "soak"
tokens = ["{TOKEN}"]
models = ["m-a", "m-b"]
"""


def sample(pid):
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return {"rss_kib": rss, "fds": fds}


def body(nonce, stream):
    return json.dumps(
        {
            "model": "m-a",
            "messages": [{"role": "user", "content": f"{nonce} please answer"}],
            "stream": stream,
            "max_tokens": 16,
        }
    ).encode()


def request_bytes(payload):
    return (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: soak\r\n"
        + f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n".encode()
        + f"Content-Length: {len(payload)}\r\n\r\n".encode()
        + payload
    )


def abandon(addr, nonce, stream, rng):
    """Sends a request and walks away after reading a few bytes (or none)."""
    s = socket.create_connection(addr, timeout=CLIENT_TIMEOUT)
    try:
        s.sendall(request_bytes(body(nonce, stream)))
        want = rng.choice([0, 1, 64, 400])
        got = 0
        while got < want:
            b = s.recv(want - got)
            if not b:
                break
            got += len(b)
    except OSError:
        pass
    finally:
        s.close()
    return "abandoned"


def others(text, nonce):
    return [n for n in NONCE.findall(text) if n != nonce]


def one(addr, nonce, stream):
    """One request; its outcome: ok, lost, mixed, truncated, cut_visible or error_<status>."""
    conn = http.client.HTTPConnection(addr[0], addr[1], timeout=CLIENT_TIMEOUT)
    try:
        conn.request(
            "POST",
            "/v1/chat/completions",
            body=body(nonce, stream),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        resp = conn.getresponse()
    except (OSError, http.client.HTTPException):
        return "lost"
    try:
        raw = resp.read()
    except http.client.IncompleteRead:
        return "cut_visible"
    except (OSError, http.client.HTTPException):
        return "cut_visible"
    finally:
        conn.close()
    text = raw.decode("utf-8", "replace")
    if others(text, nonce):
        return "mixed"
    if resp.status != 200:
        try:
            err = json.loads(text)["error"]
            assert isinstance(err, dict)
        except (ValueError, KeyError, TypeError, AssertionError):
            return "truncated"
        return f"error_{resp.status}"
    if not stream:
        try:
            content = json.loads(text)["choices"][0]["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError):
            return "truncated"
        return "ok" if nonce in content else "mixed"
    content, done, failed = [], False, False
    for line in text.split("\n"):
        if not line.startswith("data: "):
            continue
        data = line[6:].strip()
        if data == "[DONE]":
            done = True
            continue
        try:
            ev = json.loads(data)
        except ValueError:
            return "truncated"
        if "error" in ev:
            failed = True
            continue
        for ch in ev.get("choices") or []:
            content.append((ch.get("delta") or {}).get("content") or "")
    if failed:
        return "error_stream"
    if not done:
        return "truncated"
    return "ok" if nonce in "".join(content) else "mixed"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="20 s at 30/s (CI)")
    ap.add_argument("--duration", type=float, default=180.0, help="seconds (default 180)")
    ap.add_argument("--rate", type=float, default=40.0, help="requests per second (default 40)")
    ap.add_argument("--stream-share", type=float, default=0.5)
    ap.add_argument("--abort-share", type=float, default=0.05)
    ap.add_argument("--fail-rate", type=float, default=0.03, help="the mock's injected faults")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--bin", default=os.environ.get("SWITCHYARD_BIN"))
    ap.add_argument("--json", help="also write the report here")
    args = ap.parse_args()
    if args.quick:
        args.duration, args.rate = 20.0, 30.0
    exe = binary(args.bin)
    rng = random.Random(args.seed)
    work = tempfile.mkdtemp(prefix="switchyard-soak-")
    mock, up = start(
        [exe, "mock-upstream", "--listen", "127.0.0.1:0", "--workers", "1",
         "--ttft-ms", "20", "--tokens-per-s", "400", "--fail-rate", str(args.fail_rate)],
        "mock provider",
        work,
    )
    path = os.path.join(work, "switchyard.toml")
    with open(path, "w") as f:
        f.write(config(up))
    env = dict(os.environ, SOAK_KEY="sk-soak-upstream")
    gw_proc = subprocess.Popen(
        [exe, "serve", "--config", path], cwd=work, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    gw = None
    for line in gw_proc.stdout:
        if line.startswith("switchyard gateway listening on http://"):
            host, port = line.split("http://", 1)[1].split(" ")[0].strip().rsplit(":", 1)
            gw = (host, int(port))
            threading.Thread(target=gw_proc.stdout.read, daemon=True).start()
            break
    if gw is None:
        mock.kill()
        sys.exit("soak.py: the gateway did not start")

    counts, lock = {}, threading.Lock()
    samples = {"start": sample(gw_proc.pid)}

    def run(i, nonce, stream, abort, seed):
        r = random.Random(seed)
        try:
            outcome = abandon(gw, nonce, stream, r) if abort else one(gw, nonce, stream)
        except Exception as e:  # a bug in this script must not pass as a clean run
            outcome = f"client_bug_{type(e).__name__}"
        key = f"{'stream' if stream else 'plain'}:{outcome}"
        with lock:
            counts[key] = counts.get(key, 0) + 1

    total = int(args.duration * args.rate)
    t0 = time.monotonic()
    mid_at = total // 2
    with ThreadPoolExecutor(max_workers=256) as pool:
        for i in range(total):
            due = t0 + i / args.rate
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)  # the arrival schedule itself, not a synchronisation
            if i == mid_at:
                samples["middle"] = sample(gw_proc.pid)
            nonce = "n" + uuid.uuid4().hex[:16]
            stream = rng.random() < args.stream_share
            abort = rng.random() < args.abort_share
            pool.submit(run, i, nonce, stream, abort, rng.random())
    elapsed = time.monotonic() - t0
    samples["end"] = sample(gw_proc.pid)
    gw_proc.terminate()
    mock.terminate()
    gw_proc.wait(10)
    mock.wait(10)

    def tally(word):
        return sum(v for k, v in counts.items() if k.endswith(":" + word))

    report = {
        "requests": total,
        "seconds": round(elapsed, 1),
        "rate_per_s": args.rate,
        "binary": os.path.relpath(exe, REPO),
        "outcomes": dict(sorted(counts.items())),
        "lost": tally("lost"),
        "mixed": tally("mixed"),
        "truncated_silently": tally("truncated"),
        "cut_visible": tally("cut_visible"),
        "client_bugs": sum(v for k, v in counts.items() if "client_bug" in k),
        "gateway": samples,
    }
    print(json.dumps(report, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    fd_growth = samples["end"]["fds"] - samples["middle"]["fds"]
    bad = report["lost"] + report["mixed"] + report["truncated_silently"] + report["client_bugs"]
    if bad or fd_growth > 64:
        print(f"soak.py: FAILED ({bad} bad answers, fds {fd_growth:+} since the middle)", file=sys.stderr)
        sys.exit(1)
    print("soak.py: ok", file=sys.stderr)


if __name__ == "__main__":
    main()
