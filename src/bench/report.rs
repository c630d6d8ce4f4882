//! The report of a run: a table for people (stdout), JSON for machines (units in every key
//! name), and a self-contained HTML page whose inline script draws the charts as SVG (no
//! network, nothing fetched): TTFT over time as a heat map of per-second histograms with its
//! p50 and p99, throughput and errors per second, and the TTFT, inter-token and end-to-end
//! distributions.

use super::args::{BenchOptions, Load};
use super::driver::RunResult;
use super::hist::{self, Histogram};
use super::stats::{Stats, SERIES_SUB_BITS};
use std::fmt::Write as _;

/// The quantiles of every table row and JSON object.
const QUANTILES: [(&str, f64); 5] = [
    ("p50", 0.5),
    ("p90", 0.9),
    ("p99", 0.99),
    ("p99_9", 0.999),
    ("p100", 1.0),
];

/// One sweep step's outcome.
pub struct Step {
    /// Its result.
    pub result: RunResult,
    /// Whether it met the SLO.
    pub held: bool,
}

fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            // Escaped so the JSON can sit inside the HTML page's <script> as is.
            '<' | '>' | '&' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A finite number for JSON (NaN and infinities become 0).
fn num(v: f64) -> String {
    if v.is_finite() {
        let r = (v * 1000.0).round() / 1000.0;
        format!("{r}")
    } else {
        "0".into()
    }
}

fn dist_json(out: &mut String, h: &Histogram) {
    let ms = |us: f64| num(us / 1000.0);
    let _ = write!(
        out,
        "{{\"count\":{},\"mean\":{},\"min\":{}",
        h.count(),
        ms(h.mean()),
        ms(h.min() as f64)
    );
    for (name, q) in QUANTILES {
        let name = if name == "p100" { "max" } else { name };
        let v = if q >= 1.0 {
            h.max() as f64
        } else {
            h.quantile(q)
        };
        let _ = write!(out, ",\"{name}\":{}", ms(v));
    }
    out.push('}');
}

/// Rates of a run: (requests/s, output tokens/s, goodput requests/s).
fn rates(r: &RunResult) -> (f64, f64, f64) {
    let secs = r.elapsed.as_secs_f64();
    if secs <= 0.0 {
        return (0.0, 0.0, 0.0);
    }
    let s = &r.stats;
    (
        s.ok as f64 / secs,
        s.output_tokens as f64 / secs,
        s.good as f64 / secs,
    )
}

fn run_json(out: &mut String, o: &BenchOptions, r: &RunResult) {
    let s = &r.stats;
    let (rps, tps, good) = rates(r);
    let _ = write!(
        out,
        "{{\"duration_s\":{},\"requests\":{},\"ok\":{},\"errors\":{},\"error_rate\":{},\"requests_per_s\":{},\"output_tokens\":{},\"output_tokens_per_s\":{},\"usage_reported\":{},\"connections_opened\":{}",
        num(r.elapsed.as_secs_f64()),
        s.ok + s.error_count(),
        s.ok,
        s.error_count(),
        num(s.error_rate()),
        num(rps),
        s.output_tokens,
        num(tps),
        s.usage_reported,
        s.connects
    );
    if let Some(rate) = r.rate {
        let _ = write!(out, ",\"offered_rate_per_s\":{}", num(rate));
    }
    if let Some(slo) = o.slo_ttft_ms {
        let _ = write!(
            out,
            ",\"slo_ttft_ms\":{},\"goodput_requests_per_s\":{}",
            num(slo),
            num(good)
        );
    }
    out.push_str(",\"errors_by_kind\":{");
    for (i, (k, n)) in s.errors.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "\"{}\":{n}", k.name());
    }
    out.push('}');
    for (name, h) in [
        ("ttft_ms", &s.ttft),
        ("itl_ms", &s.itl),
        ("e2e_ms", &s.e2e),
        ("send_lag_ms", &s.send_lag),
    ] {
        let _ = write!(out, ",\"{name}\":");
        dist_json(out, h);
    }
    out.push_str(",\"series\":[");
    for (t, sec) in s.series.iter().enumerate() {
        if t > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"t_s\":{t},\"ok\":{},\"errors\":{},\"output_tokens\":{}}}",
            sec.ok, sec.errors, sec.output_tokens
        );
    }
    out.push(']');
    out.push('}');
}

fn header_json(out: &mut String, o: &BenchOptions) {
    out.push_str("\"url\":");
    let scheme = if o.url.tls { "https" } else { "http" };
    json_str(
        out,
        &format!("{scheme}://{}{}", o.url.host_header(), o.path),
    );
    let _ = write!(out, ",\"api\":\"{}\",\"model\":", o.api.name());
    json_str(out, &o.model);
    let _ = write!(
        out,
        ",\"stream\":{},\"prompt_tokens\":{},\"max_tokens\":{}",
        o.stream, o.prompt_tokens, o.max_tokens
    );
    match o.load {
        Load::Closed { concurrency } => {
            let _ = write!(out, ",\"mode\":\"closed\",\"concurrency\":{concurrency}");
        }
        Load::Open { rate } => {
            let _ = write!(out, ",\"mode\":\"open\",\"rate_per_s\":{}", num(rate));
        }
        Load::Sweep => out.push_str(",\"mode\":\"sweep\""),
    }
}

/// The JSON report of a run.
pub fn json(o: &BenchOptions, r: &RunResult) -> String {
    let mut out = String::from("{");
    header_json(&mut out, o);
    out.push_str(",\"result\":");
    run_json(&mut out, o, r);
    out.push_str("}\n");
    out
}

/// The JSON report of a sweep: every step, and the highest rate that held.
pub fn sweep_json(o: &BenchOptions, steps: &[Step], best: Option<f64>) -> String {
    let mut out = String::from("{");
    header_json(&mut out, o);
    let _ = write!(
        out,
        ",\"slo_error_rate\":{},\"max_rate_held_per_s\":{},\"steps\":[",
        num(o.slo_error_rate),
        best.map_or("null".into(), num)
    );
    for (i, s) in steps.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{{\"held\":{},\"result\":", s.held);
        run_json(&mut out, o, &s.result);
        out.push('}');
    }
    out.push_str("]}\n");
    out
}

/// The table printed after a run.
pub fn table(o: &BenchOptions, r: &RunResult) -> String {
    let s = &r.stats;
    let (rps, tps, good) = rates(r);
    let mut out = String::new();
    let mode = match o.load {
        Load::Closed { concurrency } => format!("closed loop, concurrency {concurrency}"),
        _ => format!("open loop, {} req/s offered", num(r.rate.unwrap_or(0.0))),
    };
    let _ = writeln!(
        out,
        "{} {} on {}: {mode}, {:.2} s measured",
        o.api.name(),
        if o.stream { "stream" } else { "whole answers" },
        o.path,
        r.elapsed.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "requests {} ok, {} errors ({:.2}%); {:.1} req/s; {:.1} output tokens/s",
        s.ok,
        s.error_count(),
        s.error_rate() * 100.0,
        rps,
        tps
    );
    if let Some(slo) = o.slo_ttft_ms {
        let _ = writeln!(out, "goodput {good:.1} req/s with ttft <= {slo} ms");
    }
    let _ = writeln!(
        out,
        "{:<12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "", "count", "mean", "p50", "p90", "p99", "p99.9", "max"
    );
    for (name, h) in [
        ("ttft_ms", &s.ttft),
        ("itl_ms", &s.itl),
        ("e2e_ms", &s.e2e),
        ("send_lag_ms", &s.send_lag),
    ] {
        let _ = write!(
            out,
            "{name:<12} {:>9} {:>9.2}",
            h.count(),
            h.mean() / 1000.0
        );
        for (_, q) in QUANTILES {
            let v = if q >= 1.0 {
                h.max() as f64
            } else {
                h.quantile(q)
            };
            let _ = write!(out, " {:>9.2}", v / 1000.0);
        }
        out.push('\n');
    }
    if !s.errors.is_empty() {
        let kinds: Vec<String> = s
            .errors
            .iter()
            .map(|(k, n)| format!("{} {n}", k.name()))
            .collect();
        let _ = writeln!(out, "errors: {}", kinds.join(", "));
    }
    out
}

fn hist_data(out: &mut String, h: &Histogram) {
    out.push('[');
    for (i, (low, w, c)) in h.buckets().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "[{},{},{c}]",
            num(low as f64 / 1000.0),
            num(w as f64 / 1000.0)
        );
    }
    out.push(']');
}

fn heat_data(out: &mut String, s: &Stats) {
    out.push('[');
    let mut first = true;
    for (t, sec) in s.series.iter().enumerate() {
        for (i, &c) in sec.ttft.iter().enumerate() {
            if c == 0 {
                continue;
            }
            if !first {
                out.push(',');
            }
            first = false;
            let (low, w) = hist::bucket_range(i, SERIES_SUB_BITS);
            let _ = write!(
                out,
                "[{t},{},{},{c}]",
                num(low as f64 / 1000.0),
                num((low + w) as f64 / 1000.0)
            );
        }
    }
    out.push(']');
}

/// The self-contained HTML report of a run (or of a sweep's last step that held).
pub fn html(o: &BenchOptions, r: &RunResult, summary_json: &str) -> String {
    let mut data = String::from("{\"summary\":");
    data.push_str(summary_json.trim_end());
    for (name, h) in [
        ("ttft", &r.stats.ttft),
        ("itl", &r.stats.itl),
        ("e2e", &r.stats.e2e),
    ] {
        let _ = write!(data, ",\"{name}\":");
        hist_data(&mut data, h);
    }
    data.push_str(",\"heat\":");
    heat_data(&mut data, &r.stats);
    data.push('}');
    let mut title = String::new();
    json_str(
        &mut title,
        &format!("switchyard bench: {} {}", o.api.name(), o.model),
    );
    let table = table(o, r)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    HTML_TEMPLATE
        .replace("@TABLE@", &table)
        .replace("@DATA@", &data)
        .replace("@TITLE@", title.trim_matches('"'))
}

/// The page: the table as text, one SVG per chart drawn by the inline script from `DATA`.
/// When every chart is drawn the script sets `data-charts-drawn` on `<body>` to their count.
const HTML_TEMPLATE: &str = r##"<!doctype html>
<html><head><meta charset="utf-8"><title>@TITLE@</title>
<style>
body{font:14px system-ui,sans-serif;margin:24px;color:#222}
pre{background:#f6f6f6;padding:12px;overflow:auto}
.chart{margin:16px 0}
.chart h2{font-size:15px;margin:4px 0}
svg text{font:11px system-ui,sans-serif;fill:#444}
</style></head>
<body>
<h1>@TITLE@</h1>
<pre id="table">@TABLE@</pre>
<div class="chart"><h2>Time to first token over time (heat map of requests per second and latency; lines: p50, p99)</h2><svg id="heat" width="900" height="300"></svg></div>
<div class="chart"><h2>Requests and errors per second</h2><svg id="rate" width="900" height="220"></svg></div>
<div class="chart"><h2>Time to first token (ms)</h2><svg id="h-ttft" width="900" height="220"></svg></div>
<div class="chart"><h2>Inter-token latency (ms)</h2><svg id="h-itl" width="900" height="220"></svg></div>
<div class="chart"><h2>End-to-end latency (ms)</h2><svg id="h-e2e" width="900" height="220"></svg></div>
<script>
const DATA = @DATA@;
const NS = "http://www.w3.org/2000/svg";
const M = {l: 60, r: 20, t: 10, b: 30};
function el(svg, name, attrs, text) {
  const e = document.createElementNS(NS, name);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  svg.appendChild(e);
  return e;
}
function frame(svg) {
  const w = +svg.getAttribute("width"), h = +svg.getAttribute("height");
  return {w: w - M.l - M.r, h: h - M.t - M.b};
}
function axes(svg, f, xlabel, ylo, yhi, ylog) {
  el(svg, "line", {x1: M.l, y1: M.t + f.h, x2: M.l + f.w, y2: M.t + f.h, stroke: "#888"});
  el(svg, "line", {x1: M.l, y1: M.t, x2: M.l, y2: M.t + f.h, stroke: "#888"});
  el(svg, "text", {x: M.l + f.w / 2, y: M.t + f.h + 26, "text-anchor": "middle"}, xlabel);
  el(svg, "text", {x: M.l - 4, y: M.t + 10, "text-anchor": "end"}, fmt(yhi));
  el(svg, "text", {x: M.l - 4, y: M.t + f.h, "text-anchor": "end"}, fmt(ylo));
}
function fmt(v) { return v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toFixed(3); }
function logScale(lo, hi, px) {
  const a = Math.log(lo), b = Math.log(hi);
  return v => (Math.log(Math.max(v, lo)) - a) / Math.max(b - a, 1e-9) * px;
}
function quantileOf(cells, q) {
  let total = 0; for (const c of cells) total += c[2];
  let seen = 0; const rank = Math.max(1, Math.ceil(q * total));
  for (const c of cells) { seen += c[2]; if (seen >= rank) return (c[0] + c[1]) / 2; }
  return 0;
}
function drawHeat() {
  const svg = document.getElementById("heat"), f = frame(svg), cells = DATA.heat;
  if (!cells.length) { el(svg, "text", {x: M.l, y: 40}, "no completed requests"); return; }
  const secs = Math.max(...cells.map(c => c[0])) + 1;
  // Padded so a run whose TTFTs share one coarse bucket still shows where they lie.
  const lo = Math.max(Math.min(...cells.map(c => c[1])) / 2, 0.01), hi = Math.max(...cells.map(c => c[2])) * 2;
  const y = logScale(lo, hi, f.h), cw = f.w / secs;
  const maxc = Math.max(...cells.map(c => c[3]));
  for (const c of cells) {
    const y0 = M.t + f.h - y(c[2]), y1 = M.t + f.h - y(Math.max(c[1], lo));
    const a = 0.15 + 0.85 * Math.log(1 + c[3]) / Math.log(1 + maxc);
    el(svg, "rect", {class: "cell", x: M.l + c[0] * cw, y: y0, width: Math.max(cw, 1), height: Math.max(y1 - y0, 1), fill: "rgba(30,90,200," + a.toFixed(3) + ")"});
  }
  for (const [q, color] of [[0.5, "#1a7f37"], [0.99, "#cf222e"]]) {
    let pts = [];
    for (let t = 0; t < secs; t++) {
      const row = cells.filter(c => c[0] === t);
      if (row.length) pts.push((M.l + (t + 0.5) * cw).toFixed(1) + "," + (M.t + f.h - y(quantileOf(row, q))).toFixed(1));
    }
    el(svg, "polyline", {points: pts.join(" "), fill: "none", stroke: color, "stroke-width": 2});
  }
  axes(svg, f, "seconds since the warm-up (TTFT ms, log scale)", lo, hi);
}
function drawRate() {
  const svg = document.getElementById("rate"), f = frame(svg), s = DATA.summary.result ? DATA.summary.result.series : [];
  if (!s.length) { el(svg, "text", {x: M.l, y: 40}, "no completed requests"); return; }
  const hi = Math.max(1, ...s.map(p => p.ok + p.errors)), bw = f.w / s.length;
  s.forEach((p, i) => {
    const hOk = p.ok / hi * f.h, hErr = p.errors / hi * f.h;
    el(svg, "rect", {class: "bar", x: M.l + i * bw, y: M.t + f.h - hOk, width: Math.max(bw - 1, 1), height: hOk, fill: "#1a7f37"});
    el(svg, "rect", {class: "bar", x: M.l + i * bw, y: M.t + f.h - hOk - hErr, width: Math.max(bw - 1, 1), height: hErr, fill: "#cf222e"});
  });
  axes(svg, f, "seconds since the warm-up (green: ok, red: errors)", 0, hi);
}
function drawHist(id, buckets) {
  const svg = document.getElementById(id), f = frame(svg);
  if (!buckets.length) { el(svg, "text", {x: M.l, y: 40}, "no samples"); return; }
  const lo = Math.max(buckets[0][0], 0.001), last = buckets[buckets.length - 1], hi = Math.max(last[0] + last[1], lo * 1.01);
  const x = logScale(lo, hi, f.w), maxc = Math.max(...buckets.map(b => b[2]));
  for (const b of buckets) {
    const x0 = M.l + x(Math.max(b[0], lo)), x1 = M.l + x(b[0] + b[1]), h = b[2] / maxc * f.h;
    el(svg, "rect", {class: "bar", x: x0, y: M.t + f.h - h, width: Math.max(x1 - x0, 1), height: h, fill: "#1e5ac8"});
  }
  axes(svg, f, "ms (log scale), " + fmt(lo) + " to " + fmt(hi), 0, maxc);
}
drawHeat();
drawRate();
drawHist("h-ttft", DATA.ttft);
drawHist("h-itl", DATA.itl);
drawHist("h-e2e", DATA.e2e);
document.body.setAttribute("data-charts-drawn", String(document.querySelectorAll("svg").length));
</script>
</body></html>
"##;
