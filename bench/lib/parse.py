"""Turns one load-generator run into one JSON record (a line of records.jsonl).

  parse.py wrk FILE KEY=VALUE...    wrk's text output (with --latency)
  parse.py oha FILE KEY=VALUE...    oha's --output-format json output
  parse.py wrk2 FILE KEY=VALUE...   wrk2's text output (with --latency: its corrected percentiles)

KEY=VALUE pairs (round, mode, target, kind, cpu_us, rss_kib...) are copied into the record; numbers
become numbers. Every record carries `requests`, `rps`, latency percentiles in microseconds
(`p50_us`, `p99_us`, `p999_us` where the tool gives them), `errors` (non-2xx plus socket
errors) and `bytes_per_req`. Exits non-zero when the output cannot be read: a run that printed
nothing useful is an error, never a zero.
"""

import json
import re
import sys

UNITS_US = {"us": 1, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}
UNITS_B = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def _time_us(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if not m:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(m.group(1)) * UNITS_US[m.group(2)]


def parse_wrk(text: str) -> dict:
    rec = {}
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+), ([\d.]+)(\w+) read", text)
    if not m:
        raise ValueError("no 'N requests in T' line")
    rec["requests"] = int(m.group(1))
    rec["seconds"] = _time_us(m.group(2) + m.group(3)) / 1e6
    read = float(m.group(4)) * UNITS_B[m.group(5)]
    rec["bytes_per_req"] = read / rec["requests"] if rec["requests"] else 0
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    rec["rps"] = float(m.group(1)) if m else rec["requests"] / rec["seconds"]
    # wrk prints "Latency Distribution"; wrk2 prints "Latency Distribution (HdrHistogram - ...)"
    # with percentiles such as " 99.900%".
    for pct, key in (("50", "p50_us"), ("99", "p99_us"), ("99.9", "p999_us")):
        m = re.search(r"^\s+%s(?:\.0+)?%%\s+([\d.]+\w+)\s*$" % re.escape(pct), text, re.M)
        if m:
            rec[key] = _time_us(m.group(1))
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        errors += sum(int(g) for g in m.groups())
        rec["socket_errors"] = m.group(0)
    rec["errors"] = errors
    return rec


def parse_oha(text: str) -> dict:
    j = json.loads(text)
    s = j["summary"]
    codes = j.get("statusCodeDistribution", {}) or {}
    ok = sum(n for code, n in codes.items() if str(code).startswith("2"))
    total = sum(codes.values())
    failed = sum((j.get("errorDistribution") or {}).values())
    lat = j.get("latencyPercentiles") or {}
    rec = {
        "requests": total,
        "rps": s.get("requestsPerSec") or 0.0,
        "seconds": s.get("total"),
        "bytes_per_req": s.get("sizePerRequest") or 0,
        "errors": (total - ok) + failed,
        "success_rate": s.get("successRate"),
    }
    if failed:
        rec["error_kinds"] = j.get("errorDistribution")
    for key, name in (("p50_us", "p50"), ("p99_us", "p99"), ("p999_us", "p99.9")):
        if lat.get(name) is not None:
            rec[key] = lat[name] * 1e6
    return rec


def main() -> None:
    tool, path, *pairs = sys.argv[1:]
    with open(path) as f:
        text = f.read()
    try:
        rec = parse_oha(text) if tool == "oha" else parse_wrk(text)
    except (ValueError, KeyError, json.JSONDecodeError) as e:
        sys.exit(f"parse.py: cannot read {tool} output {path}: {e}\n{text[-2000:]}")
    for pair in pairs:
        k, v = pair.split("=", 1)
        try:
            rec[k] = int(v)
        except ValueError:
            try:
                rec[k] = float(v)
            except ValueError:
                rec[k] = v
    rec["tool"] = tool
    rec["raw"] = path
    print(json.dumps(rec))


if __name__ == "__main__":
    main()
