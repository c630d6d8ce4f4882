"""The load bench's report: medians over rounds, ratios, targets with PASS/FAIL.

Reads RUN/records.jsonl (one record per run, from parse.py and load.sh) and RUN/meta.json, prints
the table, and writes it to OUT.txt and every figure to OUT.json.

Modes: plain and stream get every row; short and long (stream shapes: short.sse, long.sse) only
the closed-loop ones, in tables of their own.

Added latencies and ratios are taken within a round (gateway minus direct, gateway over nginx, in
the same round), then the median over rounds, so a noisy round moves both sides of a comparison.

usage: report.py RUN_DIR OUT_PREFIX
"""

import datetime
import json
import math
import os
import statistics
import sys

TARGETS = ["direct", "nginx", "switchyard", "nginx-log", "switchyard-log", "translated", "peer"]
GW = "switchyard"


def med(values: list):
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return statistics.median(values) if values else None


class Records:
    def __init__(self, path: str) -> None:
        with open(path) as f:
            self.all = [json.loads(line) for line in f if line.strip()]
        self.rounds = sorted({r["round"] for r in self.all if r.get("round")})

    def get(self, target: str, mode: str, kind: str, rnd: int):
        for r in self.all:
            if (r.get("target"), r.get("mode"), r.get("kind"), r.get("round")) == (target, mode, kind, rnd):
                return r
        return None

    def per_round(self, target: str, mode: str, kind: str, fn) -> list:
        out = []
        for rnd in self.rounds:
            r = self.get(target, mode, kind, rnd)
            out.append(fn(r, rnd) if r is not None else None)
        return out

    def median(self, target: str, mode: str, kind: str, fn):
        return med(self.per_round(target, mode, kind, lambda r, _: fn(r)))

    def diff(self, target: str, base: str, mode: str, kind: str, fn, ratio: bool = False):
        """Median over rounds of fn(target) - fn(base) (or /, with ratio) within each round."""
        vals = []
        for rnd in self.rounds:
            a, b = self.get(target, mode, kind, rnd), self.get(base, mode, kind, rnd)
            if a is None or b is None:
                continue
            x, y = fn(a), fn(b)
            if x is None or y is None:
                continue
            vals.append((x / y if y else None) if ratio else x - y)
        return med(vals)


def cpu_per_req(r):
    return r["cpu_us"] / r["requests"] if r.get("requests") else None


# Above this, direct's own c=1 p99 is scheduler noise ten times the 50 us being judged.
C1_NOISE_US = 500
# Above this share of the servers' core taken by other processes, latency tails are theirs.
NOISE_PCT = 10


def noise_pct(r):
    """Share of the servers' core that processes other than the server and upstream took."""
    if r.get("core_busy_us") is None or not r.get("wall_us"):
        return None
    other = r["core_busy_us"] - r["cpu_us"] - r.get("upstream_cpu_us", 0)
    return max(0.0, 100 * other / r["wall_us"])


def fmt(v, digits: int = 0, unit: str = "") -> str:
    if v is None:
        return "n/a"
    if isinstance(v, str):
        return v
    if digits == 0 and abs(v) >= 1e6 and not unit:
        return f"{v / 1e6:.2f}s"  # microsecond figures this large are an overloaded target's queue
    if digits == 0:
        return f"{v:,.0f}{unit}"
    return f"{v:,.{digits}f}{unit}"


def throughput_ratios(rec: "Records", mode: str, targets: list) -> dict:
    """Closed-loop max req/s of one target over another's, within each round, median over rounds."""
    ratios = {}
    for base in ("nginx", "direct", "peer"):
        if base in targets:
            ratios[f"{GW}/{base}"] = rec.diff(GW, base, mode, "closed", lambda r: r["rps"], ratio=True)
    if "translated" in targets:
        ratios["translated/switchyard"] = rec.diff("translated", GW, mode, "closed", lambda r: r["rps"], ratio=True)
        ratios["translated/nginx"] = rec.diff("translated", "nginx", mode, "closed", lambda r: r["rps"], ratio=True)
    if "switchyard-log" in targets and "nginx-log" in targets:
        # Each with its default per-request logging on.
        ratios["switchyard-log/nginx-log"] = rec.diff("switchyard-log", "nginx-log", mode, "closed",
                                                      lambda r: r["rps"], ratio=True)
    if "peer" in targets:
        ratios["peer/nginx"] = rec.diff("peer", "nginx", mode, "closed", lambda r: r["rps"], ratio=True)
    return ratios


def main() -> None:
    run, out_prefix = sys.argv[1], sys.argv[2]
    rec = Records(os.path.join(run, "records.jsonl"))
    with open(os.path.join(run, "meta.json")) as f:
        meta = json.load(f)
    targets = [t for t in TARGETS if any(r.get("target") == t for r in rec.all)]
    peer_name = f"peer={meta['peer']} {meta['peer_version']}" if meta["peer"] != "none" else "peer=none"
    figures: dict = {"meta": meta, "targets": targets, "plain": {}, "stream": {}, "short": {}, "long": {},
                      "memory": {}}
    lines: list = []
    problems: list = []

    # every run with errors, or responses smaller than the checked answer (a 200 with an error
    # body would be fast and wrong), is listed: its figures are not to be trusted.
    for r in rec.all:
        if r.get("errors"):
            problems.append(f"{r['target']} {r['mode']} {r['kind']} round {r.get('round')}: "
                            f"{r['errors']} errors of {r.get('requests', r.get('count'))} ({r.get('raw')})")
        exp, got = r.get("expect_bytes"), r.get("bytes_per_req")
        if exp and got and got < 0.95 * exp and r.get("tool") == "wrk" and r.get("requests", 0) > 100:
            problems.append(f"{r['target']} {r['mode']} {r['kind']} round {r.get('round')}: "
                            f"{got:.0f} bytes/response, less than the {exp} byte body checked before load")

    w0, w = 44, 22
    row = lambda label, cells: lines.append(label.ljust(w0) + "".join(c.rjust(w) for c in cells))  # noqa: E731
    finished = os.path.getmtime(os.path.join(run, "meta.json"))
    now = datetime.datetime.fromtimestamp(finished, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    mode_name = "quick" if meta["quick"] else "full"
    lines += [
        f"Switchyard load bench, {now}, {mode_name}: {meta['rounds']} round(s), closed loop "
        f"{meta['duration_s']} s (short/long streams {meta.get('shape_duration_s', meta['duration_s'])} s), "
        f"c=1 {meta['c1_duration_s']} s, fixed rate {meta['rate_duration_s']} s; "
        f"medians over rounds",
        f"switchyard {meta['switchyard']}, {meta['nginx']}, {peer_name}, {meta['wrk']}, "
        f"open loop: {meta['open_loop_version'] or 'none'}",
        f"proxies on CPU {meta['server_cpu']} (1 worker each), upstreams and load on CPU {meta['load_cpu']}; "
        f"{meta['nproc']} x {meta['cpu']}, kernel {meta['kernel']}, load avg at start "
        f"{meta['loadavg_start']}, at end {' '.join(meta['loadavg_end'])}",
        "",
    ]

    for mode, title in (("plain", "PLAIN chat completions"), ("stream", "STREAMED chat completions (SSE)")):
        f = figures[mode]
        lines.append("")
        row(title, targets)
        per_t = {}
        for t in targets:
            per_t[t] = {
                "rps": rec.median(t, mode, "closed", lambda r: r["rps"]),
                "cpu_us_per_req": rec.median(t, mode, "closed", cpu_per_req),
                "cpu_us_per_req_rate50": rec.median(t, mode, "rate50", cpu_per_req),
                "noise_pct": rec.median(t, mode, "closed", noise_pct),
                "c1_p50_us": rec.median(t, mode, "c1", lambda r: r.get("p50_us")),
                "c1_p99_us": rec.median(t, mode, "c1", lambda r: r.get("p99_us")),
                "c1_added_p50_us": rec.diff(t, "direct", mode, "c1", lambda r: r.get("p50_us")),
                "c1_added_p99_us": rec.diff(t, "direct", mode, "c1", lambda r: r.get("p99_us")),
                "paired_added_p50_us": rec.median(t, mode, "paired", lambda r: r["added_us"]["p50"]),
                "paired_added_p90_us": rec.median(t, mode, "paired", lambda r: r["added_us"].get("p90")),
                "paired_added_p99_us": rec.median(t, mode, "paired", lambda r: r["added_us"]["p99"]),
                "paired_added_p999_us": rec.median(t, mode, "paired", lambda r: r["added_us"]["p999"]),
                "paired_p99_us": rec.median(t, mode, "paired", lambda r: r["target_us"]["p99"]),
                "paired_base_p99_us": rec.median(t, mode, "paired", lambda r: r["base_us"]["p99"]),
                "errors": sum(r.get("errors", 0) for r in rec.all if r.get("target") == t and r.get("mode") == mode),
            }
            for kind in ("rate50", "rate80"):
                for p in ("p50_us", "p99_us", "p999_us"):
                    per_t[t][f"{kind}_{p}"] = rec.median(t, mode, kind, lambda r, p=p: r.get(p))
                per_t[t][f"{kind}_noise_pct"] = rec.median(t, mode, kind, noise_pct)
                per_t[t][f"{kind}_rate"] = rec.median(t, mode, kind, lambda r: r.get("rate"))
                per_t[t][f"{kind}_achieved_rps"] = rec.median(t, mode, kind, lambda r: r.get("rps"))
            if mode == "stream":
                for kind, key in (("ttfb", "ttfb_us"), ("ttfb", "ttfe_us"), ("gaps", "gap_us"), ("gaps", "total_us")):
                    for sub in ("p50", "p99", "max"):
                        v = rec.median(t, mode, kind, lambda r, key=key, sub=sub: (r.get(key) or {}).get(sub))
                        if v is not None:
                            per_t[t][f"{kind}_{key[:-3]}_{sub}_us"] = v
                per_t[t]["ttfb_added_p50_us"] = rec.diff(t, "direct", mode, "ttfb", lambda r: r["ttfb_us"]["p50"])
                per_t[t]["ttfb_added_p99_us"] = rec.diff(t, "direct", mode, "ttfb", lambda r: r["ttfb_us"]["p99"])
                per_t[t]["gap_added_p50_us"] = rec.diff(t, "direct", mode, "gaps", lambda r: r["gap_us"]["p50"])
                per_t[t]["gap_added_max_us"] = rec.diff(t, "direct", mode, "gaps", lambda r: r["gap_us"]["max"])
                per_t[t]["events"] = rec.median(t, mode, "gaps", lambda r: r.get("events"))
        f["targets"] = per_t
        cells = lambda key, d=0: [fmt(per_t[t].get(key), d) for t in targets]  # noqa: E731
        row(f"  max req/s (wrk -c{meta['conns']})", cells("rps"))
        row("  CPU us/request, closed loop", cells("cpu_us_per_req", 1))
        row("  CPU us/request, at 50% rate", cells("cpu_us_per_req_rate50", 1))
        row(f"  CPU {meta['server_cpu']} taken by other processes, %", cells("noise_pct"))
        row("  c=1 p50 / p99 us", [f"{fmt(per_t[t]['c1_p50_us'])} / {fmt(per_t[t]['c1_p99_us'])}" for t in targets])
        row("  c=1 added p50 / p99 us (over direct)",
            [f"{fmt(per_t[t]['c1_added_p50_us'])} / {fmt(per_t[t]['c1_added_p99_us'])}" for t in targets])
        row("  c=1 paired with direct: pairs", [fmt(rec.median(t, mode, "paired", lambda r: r["count"]))
                                                 if t != "direct" else "-" for t in targets])
        row("      added p50 / p90 / p99 us",
            [f"{fmt(per_t[t]['paired_added_p50_us'])} / {fmt(per_t[t]['paired_added_p90_us'])} / "
             f"{fmt(per_t[t]['paired_added_p99_us'])}" if t != "direct" else "-" for t in targets])
        row("      its p99 / direct's p99 us", [f"{fmt(per_t[t]['paired_p99_us'])} / {fmt(per_t[t]['paired_base_p99_us'])}"
                                                if t != "direct" else "-" for t in targets])
        for kind, pct in (("rate50", "50%"), ("rate80", "80%")):
            rate = per_t.get("nginx", {}).get(f"{kind}_rate")
            row(f"  {pct} of nginx max ({fmt(rate)}/s): p50 us", cells(f"{kind}_p50_us"))
            row("      p99 / p99.9 us", [f"{fmt(per_t[t][f'{kind}_p99_us'])} / {fmt(per_t[t][f'{kind}_p999_us'])}"
                                           for t in targets])
            row("      achieved req/s", cells(f"{kind}_achieved_rps"))
        if mode == "stream":
            row("  TTFT p50 / p99 us (switchyard bench)", [f"{fmt(per_t[t].get('ttfb_ttfb_p50_us'))} / {fmt(per_t[t].get('ttfb_ttfb_p99_us'))}"
                                        for t in targets])
            row("  added TTFT p50 / p99 us (over direct)",
                [f"{fmt(per_t[t]['ttfb_added_p50_us'])} / {fmt(per_t[t]['ttfb_added_p99_us'])}" for t in targets])
            row(f"  paced ({meta['paced_gap_ms']} ms) inter-token p50 / max us",
                [f"{fmt(per_t[t].get('gaps_gap_p50_us'))} / {fmt(per_t[t].get('gaps_gap_max_us'))}" for t in targets])
            row("  added inter-token p50 / max us", [f"{fmt(per_t[t]['gap_added_p50_us'])} / {fmt(per_t[t]['gap_added_max_us'])}"
                                                 for t in targets])
            row("  paced stream, whole p50 us", cells("gaps_total_p50_us"))
        row("  errors (non-2xx, socket, bad streams)", [str(per_t[t]["errors"]) for t in targets])

        f["throughput_ratios"] = ratios = throughput_ratios(rec, mode, targets)
        lines.append("  throughput ratios: " + ", ".join(f"{k} {fmt(v, 2)}" for k, v in ratios.items()))

    # the other stream shapes: closed-loop rows only, on the targets that ran them (not the peer)
    for mode, name in (("short", "SHORT"), ("long", "LONG")):
        shape_targets = [t for t in targets if any(r.get("target") == t and r.get("mode") == mode for r in rec.all)]
        if not shape_targets:
            continue
        sh = meta.get("shapes", {}).get(mode, {})
        f = figures[mode]
        f["events"], f["bytes"] = sh.get("events"), sh.get("bytes")
        lines.append("")
        chunks = sh["events"] - 1 if sh.get("events") else None  # the last event is [DONE]
        row(f"{name} streams ({fmt(chunks)} chunks+[DONE], {fmt(sh.get('bytes'))} B)", shape_targets)
        per_t = {t: {
            "rps": rec.median(t, mode, "closed", lambda r: r["rps"]),
            "cpu_us_per_req": rec.median(t, mode, "closed", cpu_per_req),
            "noise_pct": rec.median(t, mode, "closed", noise_pct),
            "errors": sum(r.get("errors", 0) for r in rec.all if r.get("target") == t and r.get("mode") == mode),
        } for t in shape_targets}
        f["targets"] = per_t
        row(f"  max req/s (wrk -c{meta['conns']})", [fmt(per_t[t]["rps"]) for t in shape_targets])
        row("  CPU us/request, closed loop", [fmt(per_t[t]["cpu_us_per_req"], 1) for t in shape_targets])
        row(f"  CPU {meta['server_cpu']} taken by other processes, %", [fmt(per_t[t]["noise_pct"]) for t in shape_targets])
        row("  errors (non-2xx, socket, bad streams)", [str(per_t[t]["errors"]) for t in shape_targets])
        f["throughput_ratios"] = ratios = throughput_ratios(rec, mode, shape_targets)
        lines.append("  throughput ratios: " + ", ".join(f"{k} {fmt(v, 2)}" for k, v in ratios.items()))

    # the load driver against the static upstream, one core each
    drv = {"switchyard_bench_rps": rec.median("direct", "plain", "driver_bench", lambda r: r["rps"]),
           "wrk_rps": rec.median("direct", "plain", "driver_wrk", lambda r: r["rps"])}
    bench_rounds = [rec.get("direct", "plain", "driver_bench", r) for r in rec.rounds]
    wrk_rounds = [rec.get("direct", "plain", "driver_wrk", r) for r in rec.rounds]
    ratios = [b["rps"] / w["rps"] for b, w in zip(bench_rounds, wrk_rounds) if b and w and w["rps"]]
    drv["bench_over_wrk"] = med(ratios) if ratios else None
    figures["driver"] = drv
    lines += ["", "LOAD DRIVER (closed loop, one core, against the static upstream)"]
    lines.append(f"  switchyard bench {fmt(drv['switchyard_bench_rps'])} req/s, wrk {fmt(drv['wrk_rps'])} req/s, "
                 f"ratio {fmt(drv['bench_over_wrk'], 2)}")

    # memory
    m = figures["memory"]
    m["switchyard_rss_idle_kib"] = meta["rss_idle_kib"]
    m["switchyard_rss_idle_after_load_kib"] = meta["rss_idle_after_load_kib"]
    m["switchyard_rss_load_kib"] = max(
        (r.get("rss_max_kib") or 0 for r in rec.all if r.get("target") == GW and r.get("kind") == "closed"), default=None)
    idle = {r["target"]: r for r in rec.all if r.get("kind") == "idle_conns"}
    m["idle_conns"] = idle
    lines += ["", "MEMORY"]
    lines.append(f"  switchyard RSS: idle {fmt(m['switchyard_rss_idle_kib'])} KiB, under load (max) "
                 f"{fmt(m['switchyard_rss_load_kib'])} KiB, idle after load {fmt(m['switchyard_rss_idle_after_load_kib'])} KiB")
    gw_targets = [t for t in targets if t not in ("direct", "translated", "nginx-log", "switchyard-log")]
    row(f"  {meta['idle_conns']} idle keep-alive connections", gw_targets)
    row("    RSS before / with them, KiB", [f"{fmt(idle.get(t, {}).get('rss_before_kib'))} / "
                                            f"{fmt(idle.get(t, {}).get('rss_open_kib'))}" for t in gw_targets])
    row("    KiB per connection", [fmt(idle.get(t, {}).get("kib_per_conn"), 2) for t in gw_targets])
    row("    opened / failed / alive after", [f"{idle.get(t, {}).get('opened', 'n/a')}/{idle.get(t, {}).get('failed', 'n/a')}"
                                              f"/{idle.get(t, {}).get('alive', 'n/a')}" for t in gw_targets])

    # targets
    checks = []

    def target(name: str, value, ok, shown: str, noisy: bool = False) -> None:
        measured = "n/a" if ok is None else ("PASS" if ok else "FAIL")
        verdict = "NOISY" if noisy and ok is not None else measured
        if verdict == "NOISY":
            shown = f"as measured {measured}: {shown}"
        checks.append({"target": name, "value": value, "verdict": verdict, "measured": measured})
        lines.append(f"  {verdict:5} {name.ljust(52)} {shown}")

    lines += ["", "TARGETS (switchyard)"]
    P, S = figures["plain"]["targets"], figures["stream"]["targets"]
    for mode, fig in (("plain", figures["plain"]), ("stream", figures["stream"])):
        v = fig["throughput_ratios"].get(f"{GW}/nginx")
        target(f"throughput {mode}: switchyard/nginx >= 1.2", v, None if v is None else v >= 1.2, f"{fmt(v, 2)}")
    for mode in ("short", "long"):
        fig = figures[mode]
        v = fig.get("throughput_ratios", {}).get(f"{GW}/nginx")
        w = fig.get("throughput_ratios", {}).get("switchyard-log/nginx-log")
        target(f"switchyard/nginx >= 1.2 on {mode} streams", v, None if v is None else v >= 1.2,
               f"{fmt(v, 2)} (switchyard-log/nginx-log {fmt(w, 2)})")
    for mode, fig in (("plain", P), ("stream", S)):
        # When direct's own p99 at c=1 is far above the quantity measured, the machine's scheduling
        # tail (another process on the servers' core) decides the p99s, not the gateway.
        v, w, base = fig[GW]["paired_added_p99_us"], fig[GW]["c1_added_p99_us"], fig[GW]["paired_base_p99_us"]
        noisy = base is not None and base > C1_NOISE_US
        target(f"added p99 at c=1, {mode} < 50 us (paired probe)", v, None if v is None else v < 50,
               f"{fmt(v)} us (wrk -c1 runs: {fmt(w)} us; direct's p99 {fmt(base)} us; added p50 "
               f"{fmt(fig[GW]['paired_added_p50_us'])}, p90 {fmt(fig[GW]['paired_added_p90_us'])} us)", noisy)
    for kind, pct in (("rate50", "50%"), ("rate80", "80%")):
        for mode, fig in (("plain", P), ("stream", S)):
            g, n = fig[GW][f"{kind}_p99_us"], fig.get("nginx", {}).get(f"{kind}_p99_us")
            ok = None if g is None or n is None else g <= n
            worst = max((x for x in (fig[GW][f"{kind}_noise_pct"], fig.get("nginx", {}).get(f"{kind}_noise_pct"))
                         if x is not None), default=0)
            target(f"p99 at {pct} rate, {mode}: switchyard <= nginx", [g, n], ok,
                   f"{fmt(g)} vs {fmt(n)} us (p50 {fmt(fig[GW][f'{kind}_p50_us'])} vs "
                   f"{fmt(fig.get('nginx', {}).get(f'{kind}_p50_us'))}; CPU {meta['server_cpu']} "
                   f"{fmt(worst)}% taken by others)", worst > NOISE_PCT)
    for mode, fig in (("plain", P), ("stream", S)):
        g, n = fig[GW]["cpu_us_per_req"], fig.get("nginx", {}).get("cpu_us_per_req")
        ok = None if g is None or n is None else g <= n
        target(f"CPU/request, {mode}: switchyard <= nginx", [g, n], ok, f"{fmt(g, 1)} vs {fmt(n, 1)} us")
    v = m["switchyard_rss_idle_kib"]
    target("idle RSS < 20 MiB", v, None if v is None else v < 20 * 1024, f"{fmt(v / 1024 if v else None, 1)} MiB")
    v = idle.get(GW, {}).get("kib_per_conn")
    target(f"RSS per idle connection < 2 KiB ({meta['idle_conns']} conns)", v,
           None if v is None else v < 2, f"{fmt(v, 2)} KiB")
    figures["targets_checked"] = checks

    if problems:
        lines += ["", "PROBLEMS (figures from these runs are suspect)"] + [f"  {p}" for p in problems]
    figures["problems"] = problems
    fails = sum(c["verdict"] == "FAIL" for c in checks)
    passes = sum(c["verdict"] == "PASS" for c in checks)
    noisy = sum(c["verdict"] == "NOISY" for c in checks)
    lines += ["", f"{passes} targets passed, {fails} failed, {noisy} not judged (NOISY: the machine's "
              f"noise exceeds what the target measures); raw outputs in {meta['run_dir']}"]

    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    with open(out_prefix + ".txt", "w") as f:
        f.write(text)
    with open(out_prefix + ".json", "w") as f:
        json.dump(figures, f, indent=1, default=str)


if __name__ == "__main__":
    main()
