//! `switchyard bench`'s options: parsed from the flag/value pairs the command line collected,
//! checked together (conflicts and missing values are one clear line each, exit 2).

use crate::config::UpstreamUrl;
use std::time::Duration;

/// Which API the requests speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// OpenAI chat completions.
    Chat,
    /// Anthropic messages.
    Messages,
    /// OpenAI responses.
    Responses,
}

impl Api {
    /// The name on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Api::Chat => "chat",
            Api::Messages => "messages",
            Api::Responses => "responses",
        }
    }

    /// The path under the API's `/v1`.
    pub fn path(self) -> &'static str {
        match self {
            Api::Chat => "/chat/completions",
            Api::Messages => "/messages",
            Api::Responses => "/responses",
        }
    }
}

/// How open-loop arrivals are spaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// Exponential gaps: a Poisson process, as independent users arrive.
    Poisson,
    /// Equal gaps.
    Constant,
}

/// How load is offered.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Load {
    /// N requests in flight at all times: each sends its next as soon as its last ended.
    Closed {
        /// Requests in flight.
        concurrency: usize,
    },
    /// Requests arrive at this rate whether or not earlier ones finished; latency is
    /// measured from each one's intended send time.
    Open {
        /// Requests per second.
        rate: f64,
    },
    /// Open-loop steps of rising rate until the SLO breaks.
    Sweep,
}

/// When a run (or a sweep step) ends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stop {
    /// After this long, measured after the warm-up.
    Duration(Duration),
    /// After this many measured requests were sent.
    Requests(u64),
}

/// Everything a bench run needs.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// The endpoint, split.
    pub url: UpstreamUrl,
    /// The request path (the URL's path, completed with the API's).
    pub path: String,
    /// The API spoken.
    pub api: Api,
    /// `model` in every request.
    pub model: String,
    /// Closed, open or sweep.
    pub load: Load,
    /// Arrival spacing of the open loop.
    pub arrival: Arrival,
    /// When to stop.
    pub stop: Stop,
    /// Requests whose intended send time falls in this first stretch are not measured.
    pub warmup: Duration,
    /// Prompt size in tokens.
    pub prompt_tokens: usize,
    /// `max_tokens` (`max_output_tokens` on responses).
    pub max_tokens: u32,
    /// Whether requests stream.
    pub stream: bool,
    /// The bearer token or API key, if any.
    pub token: Option<String>,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Time-to-first-token objective, for goodput and the sweep.
    pub slo_ttft_ms: Option<f64>,
    /// Error-rate objective of the sweep (fraction).
    pub slo_error_rate: f64,
    /// First rate of a sweep.
    pub sweep_start: f64,
    /// Connections the open loop may open at most.
    pub connections: usize,
    /// Deadline of one request, connect to last byte.
    pub timeout: Duration,
    /// Where to write the JSON report.
    pub json: Option<String>,
    /// Where to write the HTML report.
    pub html: Option<String>,
    /// Seed of the Poisson arrivals.
    pub seed: u64,
    /// No live progress line.
    pub quiet: bool,
}

/// Default `--connections`: the open loop's cap on sockets.
pub const DEFAULT_CONNECTIONS: usize = 1024;
/// Default per-request deadline.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

fn num<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("{name}: {v:?} is not a valid number"))
}

fn positive(name: &str, v: &str) -> Result<f64, String> {
    let x: f64 = num(name, v)?;
    if !x.is_finite() || x <= 0.0 {
        return Err(format!("{name}: {v:?} must be a number above 0"));
    }
    Ok(x)
}

/// The request path for `api` under the URL's path: kept when it already names an API path,
/// `PATH/chat/completions` when it ends in `/v1`, else `PATH/v1/chat/completions`.
fn request_path(prefix: &str, api: Api) -> String {
    if prefix.ends_with(api.path()) {
        prefix.to_string()
    } else if prefix.ends_with("/v1") {
        format!("{prefix}{}", api.path())
    } else {
        format!("{prefix}/v1{}", api.path())
    }
}

impl BenchOptions {
    /// Parses `(flag, value)` pairs (a switch has an empty value); `env` reads the
    /// environment (the token's fallback).
    pub fn parse(
        pairs: &[(&str, String)],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<BenchOptions, String> {
        let mut url = None;
        let mut api = Api::Chat;
        let mut model = "gpt-4o-mini".to_string();
        let mut concurrency = None;
        let mut rate = None;
        let mut sweep = false;
        let mut arrival = Arrival::Poisson;
        let mut duration = None;
        let mut requests = None;
        let mut warmup = None;
        let mut prompt_tokens = 64;
        let mut max_tokens = 128;
        let mut stream = false;
        let mut token = None;
        let mut headers = Vec::new();
        let mut slo_ttft_ms = None;
        let mut slo_error_rate = 0.01;
        let mut sweep_start = 1.0;
        let mut connections = DEFAULT_CONNECTIONS;
        let mut timeout = DEFAULT_TIMEOUT;
        let mut json = None;
        let mut html = None;
        let mut seed = 1;
        let mut quiet = false;
        for (name, v) in pairs {
            let name = *name;
            match name {
                "--url" => url = Some(UpstreamUrl::parse(v).map_err(|e| format!("--url: {e}"))?),
                "--api" => {
                    api = match v.as_str() {
                        "chat" => Api::Chat,
                        "messages" => Api::Messages,
                        "responses" => Api::Responses,
                        _ => {
                            return Err(format!(
                                "--api: {v:?} is not one of chat, messages, responses"
                            ))
                        }
                    }
                }
                "--model" => model = v.clone(),
                "--concurrency" => {
                    let n: usize = num(name, v)?;
                    if n == 0 {
                        return Err("--concurrency: must be at least 1".into());
                    }
                    concurrency = Some(n);
                }
                "--rate" if v == "sweep" => sweep = true,
                "--rate" => rate = Some(positive(name, v)?),
                "--arrival" => {
                    arrival = match v.as_str() {
                        "poisson" => Arrival::Poisson,
                        "constant" => Arrival::Constant,
                        _ => return Err(format!("--arrival: {v:?} is not poisson or constant")),
                    }
                }
                "--duration" => duration = Some(Duration::from_secs_f64(positive(name, v)?)),
                "--requests" => {
                    let n: u64 = num(name, v)?;
                    if n == 0 {
                        return Err("--requests: must be at least 1".into());
                    }
                    requests = Some(n);
                }
                "--warmup" => {
                    let s: f64 = num(name, v)?;
                    if !s.is_finite() || s < 0.0 {
                        return Err(format!("--warmup: {v:?} must be 0 or more seconds"));
                    }
                    warmup = Some(Duration::from_secs_f64(s));
                }
                "--prompt-tokens" => prompt_tokens = num(name, v)?,
                "--max-tokens" => {
                    max_tokens = num(name, v)?;
                    if max_tokens == 0 {
                        return Err("--max-tokens: must be at least 1".into());
                    }
                }
                "--stream" => stream = true,
                "--token" => token = Some(v.clone()),
                "--header" => {
                    let Some((k, val)) = v.split_once(':') else {
                        return Err(format!("--header: {v:?} is not 'name: value'"));
                    };
                    let k = k.trim();
                    let val = val.trim();
                    if k.is_empty()
                        || !k
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
                        || val.bytes().any(|b| b == b'\r' || b == b'\n')
                    {
                        return Err(format!("--header: {v:?} is not 'name: value'"));
                    }
                    headers.push((k.to_string(), val.to_string()));
                }
                "--slo-ttft-ms" => slo_ttft_ms = Some(positive(name, v)?),
                "--slo-error-rate" => {
                    let r: f64 = num(name, v)?;
                    if !(0.0..=1.0).contains(&r) {
                        return Err("--slo-error-rate: must be within 0..1".into());
                    }
                    slo_error_rate = r;
                }
                "--sweep-start" => sweep_start = positive(name, v)?,
                "--connections" => {
                    connections = num(name, v)?;
                    if connections == 0 {
                        return Err("--connections: must be at least 1".into());
                    }
                }
                "--timeout" => timeout = Duration::from_secs_f64(positive(name, v)?),
                "--json" => json = Some(v.clone()),
                "--html" => html = Some(v.clone()),
                "--seed" => seed = num(name, v)?,
                "--quiet" => quiet = true,
                other => return Err(format!("unknown option {other:?}")),
            }
        }
        let url = url.ok_or("--url URL is required")?;
        let load = match (concurrency, rate, sweep) {
            (Some(_), Some(_), _) | (Some(_), _, true) => {
                return Err("--concurrency and --rate exclude each other".into())
            }
            (_, _, true) => Load::Sweep,
            (_, Some(rate), _) => Load::Open { rate },
            (Some(c), None, false) => Load::Closed { concurrency: c },
            (None, None, false) => Load::Closed { concurrency: 1 },
        };
        let stop = match (duration, requests) {
            (Some(_), Some(_)) => return Err("--duration and --requests exclude each other".into()),
            (None, Some(_)) if load == Load::Sweep => {
                return Err("--rate sweep runs each step for --duration, not --requests".into())
            }
            (Some(d), None) => Stop::Duration(d),
            (None, Some(n)) => Stop::Requests(n),
            (None, None) => Stop::Duration(Duration::from_secs(10)),
        };
        if load == Load::Sweep && slo_ttft_ms.is_none() {
            return Err("--rate sweep needs --slo-ttft-ms".into());
        }
        // A timed run warms up for a second unless told; a counted one measures from the start.
        let warmup = warmup.unwrap_or(match stop {
            Stop::Duration(_) => Duration::from_secs(1),
            Stop::Requests(_) => Duration::ZERO,
        });
        let token = token.or_else(|| match api {
            Api::Messages => env("ANTHROPIC_API_KEY").or_else(|| env("OPENAI_API_KEY")),
            _ => env("OPENAI_API_KEY").or_else(|| env("ANTHROPIC_API_KEY")),
        });
        let path = request_path(&url.prefix, api);
        Ok(BenchOptions {
            url,
            path,
            api,
            model,
            load,
            arrival,
            stop,
            warmup,
            prompt_tokens,
            max_tokens,
            stream,
            token,
            headers,
            slo_ttft_ms,
            slo_error_rate,
            sweep_start,
            connections,
            timeout,
            json,
            html,
            seed,
            quiet,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[(&str, &str)]) -> Result<BenchOptions, String> {
        let pairs: Vec<(&str, String)> = args.iter().map(|(k, v)| (*k, v.to_string())).collect();
        BenchOptions::parse(&pairs, &|k| {
            (k == "OPENAI_API_KEY").then(|| "sk-env".into())
        })
    }

    #[test]
    fn paths_follow_the_url() {
        for (url, api, want) in [
            ("http://h:1", "chat", "/v1/chat/completions"),
            ("http://h:1/v1", "messages", "/v1/messages"),
            ("http://h:1/openai/v1/", "responses", "/openai/v1/responses"),
            (
                "http://h:1/x/chat/completions",
                "chat",
                "/x/chat/completions",
            ),
            ("http://h:1/proxy", "chat", "/proxy/v1/chat/completions"),
        ] {
            let o = parse(&[("--url", url), ("--api", api)]).unwrap();
            assert_eq!(o.path, want, "{url} {api}");
        }
    }

    #[test]
    fn defaults_and_env_token() {
        let o = parse(&[("--url", "http://h:1")]).unwrap();
        assert_eq!(o.load, Load::Closed { concurrency: 1 });
        assert_eq!(o.stop, Stop::Duration(Duration::from_secs(10)));
        assert_eq!(o.warmup, Duration::from_secs(1));
        assert_eq!(o.token.as_deref(), Some("sk-env"));
        let o = parse(&[
            ("--url", "http://h:1"),
            ("--requests", "5"),
            ("--token", "t"),
        ])
        .unwrap();
        assert_eq!(o.warmup, Duration::ZERO);
        assert_eq!(o.token.as_deref(), Some("t"));
    }

    #[test]
    fn refusals_are_one_line() {
        for (args, want) in [
            (&[("--rate", "1")][..], "--url URL is required"),
            (&[("--url", "ftp://x")][..], "--url:"),
            (&[("--url", "http://h"), ("--rate", "0")][..], "above 0"),
            (
                &[
                    ("--url", "http://h"),
                    ("--rate", "2"),
                    ("--concurrency", "2"),
                ][..],
                "exclude",
            ),
            (
                &[("--url", "http://h"), ("--rate", "sweep")][..],
                "--slo-ttft-ms",
            ),
            (
                &[("--url", "http://h"), ("--header", "nocolon")][..],
                "--header",
            ),
            (&[("--url", "http://h"), ("--api", "grpc")][..], "--api"),
        ] {
            let e = parse(args).unwrap_err();
            assert!(e.contains(want), "{args:?}: {e}");
            assert!(!e.contains('\n'));
        }
    }
}
