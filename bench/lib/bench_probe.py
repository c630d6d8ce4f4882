"""Turns a `switchyard bench --json` report of sequential streams into the stream-probe record
load.sh's report reads (the keys the former Python probe wrote, in microseconds):

  ttfb_us, ttfe_us  {p50, p99}  intended send -> first content event (the driver times content
                                events; for these fixtures the head arrives with the first one)
  total_us          {p50, p99}  intended send -> end of the stream
  gap_us            {p50, max}  gaps between consecutive content events, over all of them
  events            content events per stream (gaps per stream + 1)
  errors, first_error

usage: bench_probe.py REPORT.json
"""

import json
import sys

r = json.load(open(sys.argv[1]))["result"]
us = lambda ms: ms * 1000.0
ttft, itl, e2e = r["ttft_ms"], r["itl_ms"], r["e2e_ms"]
ok = r["ok"]
print(json.dumps({
    "ttfb_us": {"p50": us(ttft["p50"]), "p99": us(ttft["p99"])},
    "ttfe_us": {"p50": us(ttft["p50"]), "p99": us(ttft["p99"])},
    "total_us": {"p50": us(e2e["p50"]), "p99": us(e2e["p99"])},
    "gap_us": {"p50": us(itl["p50"]), "max": us(itl["max"])},
    "events": round(itl["count"] / ok) + 1 if ok else 0,
    "count": ok,
    "errors": r["errors"],
    "first_error": ", ".join(f"{k} {n}" for k, n in r["errors_by_kind"].items()) or None,
}))
