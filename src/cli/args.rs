//! The command line's grammar: each command's flags declared once (`COMMANDS`), parsed
//! strictly (any other flag is refused with one line), and the help text written from the same
//! table.

/// One flag of a command.
struct Opt {
    /// `--name`.
    name: &'static str,
    /// What its value looks like (`FILE`); `None` for a switch.
    value: Option<&'static str>,
    /// Whether the command needs it.
    required: bool,
    /// What it does, for `--help`.
    help: &'static str,
}

/// A command and its flags.
pub(super) struct Cmd {
    /// Its name on the command line.
    pub(super) name: &'static str,
    /// What it does, for `--help`.
    summary: &'static str,
    opts: &'static [Opt],
}

const fn opt(name: &'static str, value: Option<&'static str>, help: &'static str) -> Opt {
    Opt {
        name,
        value,
        required: false,
        help,
    }
}

const SHARE_PORT: Opt = opt(
    "--share-port",
    None,
    "listen even though another process listens on the address, sharing its connections; for a zero-downtime upgrade: start the new process with it, wait for its \"listening on\" line, then SIGTERM the old one, which drains",
);

/// Every command and its flags: what is parsed and what `--help` prints.
pub(super) const COMMANDS: &[Cmd] = &[
    Cmd {
        name: "serve",
        summary: "runs the gateway",
        opts: &[
            opt(
                "--config",
                Some("FILE"),
                "the config file (default: the embedded config: built-in mock provider, project \"default\", dev token sk-lr-dev, loopback only)",
            ),
            opt(
                "--listen",
                Some("ADDR"),
                "the proxy API address, over [server] listen (embedded config: 127.0.0.1:3000)",
            ),
            opt(
                "--admin-listen",
                Some("ADDR"),
                "the /metrics, /health, /ready address, over [server] admin_listen (default 127.0.0.1:9464; \"\" = off)",
            ),
            opt(
                "--workers",
                Some("N"),
                "worker threads, each pinned to a core with its own io_uring ring, over [server] workers (0 = one per core)",
            ),
            SHARE_PORT,
        ],
    },
    Cmd {
        name: "mock-upstream",
        summary: "serves the built-in mock provider on its own (OpenAI and Anthropic shapes, streaming, timing and injected faults), for load tests",
        opts: &[
            opt("--listen", Some("ADDR"), "the address (default 127.0.0.1:8000)"),
            opt(
                "--admin-listen",
                Some("ADDR"),
                "the /metrics, /health, /ready address (default: off)",
            ),
            opt("--workers", Some("N"), "worker threads (0 = one per core, the default)"),
            opt("--ttft-ms", Some("N"), "time to first token in ms (default 0)"),
            opt(
                "--tokens-per-s",
                Some("N"),
                "streaming pace (default 0: as fast as possible)",
            ),
            opt(
                "--reply-tokens",
                Some("N"),
                "reply length when the request does not bound it (default 16)",
            ),
            opt(
                "--fail-rate",
                Some("F"),
                "probability of an injected failure (500, 429 or, streaming, a cut stream), within 0..1 (default 0)",
            ),
            opt(
                "--ttft-spread-ms",
                Some("MS"),
                "time to first token drawn log-normally around --ttft-ms with this standard deviation (default 0: fixed)",
            ),
            opt(
                "--gap-spread",
                Some("F"),
                "gaps between tokens drawn log-normally around 1/--tokens-per-s with this standard deviation, as a fraction of the gap (default 0: fixed)",
            ),
            opt(
                "--tail-rate",
                Some("F"),
                "probability that a TTFT or gap draw is in the heavy tail, within 0..1 (default 0)",
            ),
            opt("--tail-factor", Some("X"), "what a tail draw is multiplied by (default 10)"),
            opt(
                "--reply-spread",
                Some("N"),
                "reply length drawn log-normally around --reply-tokens with this standard deviation in tokens; the request's max_tokens still bounds it (default 0: fixed)",
            ),
            opt(
                "--stall-rate",
                Some("F"),
                "probability that a stream stalls once, midway, within 0..1 (default 0)",
            ),
            opt("--stall-ms", Some("N"), "how long a stall lasts (default 5000)"),
            opt(
                "--seed",
                Some("N"),
                "seed of the draws, for a reproducible run (default: a fresh one per request)",
            ),
            SHARE_PORT,
        ],
    },
    Cmd {
        name: "bench",
        summary: "drives load at an OpenAI- or Anthropic-speaking endpoint (this gateway, another gateway, a provider, vLLM, the mock) and reports time to first token, inter-token and end-to-end latency percentiles, requests/s, output tokens/s, goodput and errors by kind",
        opts: &[
            Opt {
                name: "--url",
                value: Some("URL"),
                required: true,
                help: "the endpoint: http(s)://host[:port][/prefix]; /v1 and the API's path are added unless the URL ends with them",
            },
            opt("--api", Some("API"), "chat (default), messages or responses"),
            opt("--model", Some("M"), "the model of every request (default gpt-4o-mini)"),
            opt(
                "--concurrency",
                Some("N"),
                "closed loop: N requests in flight, each sent when the last ended (default 1)",
            ),
            opt(
                "--rate",
                Some("R"),
                "open loop: R arrivals per second whatever the answers do, latency from each intended send time; \"sweep\" steps the rate up (doubling from --sweep-start, then bisecting) until p99 TTFT or the error rate breaks the SLO and reports the highest rate that held",
            ),
            opt("--arrival", Some("KIND"), "open-loop gaps: poisson (default) or constant"),
            opt("--duration", Some("S"), "measure for S seconds after the warm-up (default 10; per step in a sweep)"),
            opt("--requests", Some("N"), "measure N requests instead"),
            opt(
                "--warmup",
                Some("S"),
                "seconds of load not measured first (default 1 with --duration, 0 with --requests)",
            ),
            opt(
                "--prompt-tokens",
                Some("N"),
                "a deterministic synthetic prompt of N tokens, counted with the model's tokenizer (default 64)",
            ),
            opt("--max-tokens", Some("N"), "max_tokens of every request (default 128)"),
            opt("--stream", None, "stream the answers (TTFT and inter-token latency from the events)"),
            opt(
                "--token",
                Some("T"),
                "the bearer token (chat, responses) or x-api-key (messages); default OPENAI_API_KEY or ANTHROPIC_API_KEY",
            ),
            opt("--header", Some("'K: V'"), "an extra request header; repeatable"),
            opt(
                "--slo-ttft-ms",
                Some("MS"),
                "the TTFT objective: goodput counts requests within it; needed by --rate sweep",
            ),
            opt("--slo-error-rate", Some("F"), "the sweep's error-rate objective within 0..1 (default 0.01)"),
            opt("--sweep-start", Some("R"), "the sweep's first rate (default 1)"),
            opt("--connections", Some("N"), "open loop: connections opened at most (default 1024)"),
            opt("--timeout", Some("S"), "deadline of one request, connect to last byte (default 120)"),
            opt("--json", Some("FILE"), "write the report as JSON (units in key names: ttft_ms, ...)"),
            opt(
                "--html",
                Some("FILE"),
                "write a self-contained HTML report (charts drawn by inline script, no network)",
            ),
            opt("--seed", Some("N"), "seed of the Poisson arrivals (default 1)"),
            opt("--quiet", None, "no live progress line on stderr"),
        ],
    },
    Cmd {
        name: "check",
        summary: "validates a config: prints every error with its place and exits 2 on any; warns (exit 0) about plain-text tokens and provider keys serve could not read here",
        opts: &[Opt {
            name: "--config",
            value: Some("FILE"),
            required: true,
            help: "the config file",
        }],
    },
    Cmd {
        name: "token",
        summary: "prints a fresh sk-lr- token and the sha256: digest to put in the config",
        opts: &[],
    },
];

/// What `-h`/`--help` and `-V`/`--version` say, for every command.
const COMMON_HELP: &str = "  -h, --help            print this help and exit
  -V, --version         print the version and exit";

/// `switchyard 0.1.0`.
pub(super) fn version() -> String {
    format!("switchyard {}", env!("CARGO_PKG_VERSION"))
}

/// `switchyard serve [--config FILE] ...`, wrapped under the command name.
fn usage_line(c: &Cmd) -> String {
    let lead = format!("switchyard {}", c.name);
    let indent = " ".repeat(lead.len());
    let mut out = lead;
    let mut width = out.len();
    for o in c.opts {
        let mut part = match o.value {
            Some(v) => format!("{} {v}", o.name),
            None => o.name.to_string(),
        };
        if !o.required {
            part = format!("[{part}]");
        }
        if width + 1 + part.len() > HELP_WIDTH {
            out.push('\n');
            out.push_str(&indent);
            width = indent.len();
        }
        out.push(' ');
        out.push_str(&part);
        width += 1 + part.len();
    }
    out
}

/// A command's `--help`: what it does, its usage, every flag.
pub(super) fn command_help(c: &Cmd) -> String {
    let mut out = format!(
        "switchyard {}: {}\n\nusage:\n{}\n\noptions:\n",
        c.name,
        c.summary,
        indent(&usage_line(c), "  ")
    );
    for o in c.opts {
        let left = match o.value {
            Some(v) => format!("{} {v}", o.name),
            None => o.name.to_string(),
        };
        out.push_str(&wrap(&format!("  {left:<20}  {}", o.help), 24));
        out.push('\n');
    }
    out.push_str(COMMON_HELP);
    out.push('\n');
    out
}

/// `switchyard --help`: every command's usage with every flag, and what each does.
pub(super) fn top_help() -> String {
    let mut out = format!(
        "{}: a thread-per-core io_uring LLM gateway\n\nusage:\n",
        version()
    );
    for c in COMMANDS {
        out.push_str(&indent(&usage_line(c), "  "));
        out.push('\n');
    }
    out.push_str("  switchyard [COMMAND] --help | --version\n\ncommands:\n");
    for c in COMMANDS {
        out.push_str(&wrap(&format!("  {:<15} {}", c.name, c.summary), 18));
        out.push('\n');
    }
    out.push_str(
        "\nswitchyard COMMAND --help describes each flag.\n\
         Exit codes: 0 ok, 2 bad config or arguments, 1 runtime failure.\n",
    );
    out
}

/// Help text lines are wrapped at this width.
const HELP_WIDTH: usize = 96;

/// Wraps one line at word boundaries; continuation lines are indented by `hang`.
fn wrap(line: &str, hang: usize) -> String {
    let mut out = String::new();
    let mut width = 0;
    for (i, word) in line.split(' ').enumerate() {
        if i > 0 && width + 1 + word.len() > HELP_WIDTH && width > hang {
            out.push('\n');
            out.push_str(&" ".repeat(hang));
            width = hang;
        } else if i > 0 {
            out.push(' ');
            width += 1;
        }
        out.push_str(word);
        width += word.chars().count();
    }
    out
}

fn indent(text: &str, by: &str) -> String {
    let lines: Vec<String> = text.lines().map(|l| format!("{by}{l}")).collect();
    lines.join("\n")
}

/// The flags of a command line, parsed against its command's table.
#[derive(Default)]
pub(super) struct Flags {
    pub(super) config: Option<String>,
    pub(super) listen: Option<String>,
    pub(super) admin_listen: Option<String>,
    pub(super) workers: Option<usize>,
    pub(super) share_port: bool,
    pub(super) ttft_ms: Option<u64>,
    pub(super) tokens_per_s: Option<f64>,
    pub(super) reply_tokens: Option<u32>,
    pub(super) fail_rate: Option<f64>,
    /// The mock's spreads, tails and stalls.
    pub(super) spread: crate::mock::timing::Spread,
    /// The mock's seed.
    pub(super) seed: Option<u64>,
    /// `bench`'s flags as given, in order (a switch with an empty value); `bench::args`
    /// parses them.
    pub(super) bench: Vec<(&'static str, String)>,
}

/// What a command line asks for.
pub(super) enum Parsed {
    Run(Box<Flags>),
    Help,
    Version,
}

impl Flags {
    pub(super) fn parse(cmd: &Cmd, args: &[String]) -> Result<Parsed, String> {
        let mut f = Flags::default();
        let mut seen = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let (name, inline) = match a.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (a.as_str(), None),
            };
            match name {
                "-h" | "--help" => return Ok(Parsed::Help),
                "-V" | "--version" => return Ok(Parsed::Version),
                _ => {}
            }
            let Some(spec) = cmd.opts.iter().find(|o| o.name == name) else {
                return Err(if name.starts_with('-') {
                    format!("unknown option {name:?}")
                } else {
                    format!("unexpected argument {a:?}")
                });
            };
            seen.push(spec.name);
            if spec.value.is_none() {
                if inline.is_some() {
                    return Err(format!("{name} takes no value"));
                }
                match name {
                    _ if cmd.name == "bench" => f.bench.push((spec.name, String::new())),
                    "--share-port" => f.share_port = true,
                    other => return Err(format!("unknown option {other:?}")),
                }
                continue;
            }
            let value = match inline {
                Some(v) => v,
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("{name} needs a value"))?,
            };
            fn num<T: std::str::FromStr>(name: &str, v: String) -> Result<T, String> {
                v.parse()
                    .map_err(|_| format!("{name}: {v:?} is not a valid number"))
            }
            fn non_negative(name: &str, v: String) -> Result<f64, String> {
                let x: f64 = num(name, v)?;
                if !x.is_finite() || x < 0.0 {
                    return Err(format!("{name}: must be a number of 0 or more"));
                }
                Ok(x)
            }
            fn unit(name: &str, v: String) -> Result<f64, String> {
                let x: f64 = num(name, v)?;
                if !(0.0..=1.0).contains(&x) {
                    return Err(format!("{name}: must be within 0..1"));
                }
                Ok(x)
            }
            match name {
                _ if cmd.name == "bench" => f.bench.push((spec.name, value)),
                "--config" => f.config = Some(value),
                "--listen" => f.listen = Some(value),
                "--admin-listen" => f.admin_listen = Some(value),
                "--workers" => f.workers = Some(num(name, value)?),
                "--ttft-ms" => f.ttft_ms = Some(num(name, value)?),
                "--tokens-per-s" => f.tokens_per_s = Some(num(name, value)?),
                "--reply-tokens" => f.reply_tokens = Some(num(name, value)?),
                "--fail-rate" => {
                    let r: f64 = num(name, value)?;
                    if !(0.0..=1.0).contains(&r) {
                        return Err("--fail-rate: must be within 0..1".into());
                    }
                    f.fail_rate = Some(r);
                }
                "--ttft-spread-ms" => f.spread.ttft_spread_ms = non_negative(name, value)?,
                "--gap-spread" => f.spread.gap_spread = non_negative(name, value)?,
                "--tail-rate" => f.spread.tail_rate = unit(name, value)?,
                "--tail-factor" => f.spread.tail_factor = non_negative(name, value)?,
                "--reply-spread" => f.spread.reply_spread = non_negative(name, value)?,
                "--stall-rate" => f.spread.stall_rate = unit(name, value)?,
                "--stall-ms" => {
                    f.spread.stall = std::time::Duration::from_millis(num(name, value)?)
                }
                "--seed" => f.seed = Some(num(name, value)?),
                other => return Err(format!("unknown option {other:?}")),
            }
        }
        if let Some(o) = cmd
            .opts
            .iter()
            .find(|o| o.required && !seen.contains(&o.name))
        {
            return Err(format!("{} {} is required", o.name, o.value.unwrap_or("")));
        }
        Ok(Parsed::Run(Box::new(f)))
    }
}
