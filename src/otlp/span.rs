//! One request's span as OTLP/HTTP JSON, and the W3C `traceparent` it may continue.
//!
//! The encoding follows the OTLP specification's JSON mapping of `ExportTraceServiceRequest`
//! (opentelemetry-proto, `trace/v1/trace.proto`, "JSON Protobuf Encoding"): trace and span ids
//! are lowercase hex, not base64; enums are numbers (`kind` 2 = SERVER, `status.code` 2 =
//! ERROR); 64-bit integers (`*TimeUnixNano`, `intValue`) are decimal strings. Attribute names
//! follow the OpenTelemetry semantic conventions for GenAI client spans (`gen_ai.*`) and HTTP
//! server spans (`http.request.method`, `url.path`, `http.response.status_code`,
//! `error.type`); ours are `switchyard.*`. Nothing secret is written: no token, key or body,
//! only the model the client named.
//!
//! A worker encodes one span object into a recycled buffer; the exporter thread joins a batch
//! of them between [`envelope`]'s prefix and [`SUFFIX`]. No allocation once the buffer is warm.

use crate::config::ProviderKind;
use crate::endpoint::Endpoint;
use crate::http1::write::push_u64;
use crate::relay::Usage;
use crate::scan::push_json_string;
use crate::trace::TraceId;
use crate::usage::Finish;
use std::io::Write;
use std::time::Instant;

/// A client's `model` longer than this is left out of the span (and its name): a model id is
/// short, and a span should not carry whatever a client put there.
pub const MAX_MODEL_BYTES: usize = 256;

/// What one answered request's span says, borrowed from the request (as the ledger's entry).
#[derive(Clone, Copy, Debug)]
pub struct Span<'a> {
    /// Our trace id (`switchyard.trace_id`; the OTLP trace id when no `traceparent` came).
    pub trace_id: &'a TraceId,
    /// The request's `traceparent` header, as sent (checked by [`parse_traceparent`]).
    pub parent: Option<&'a [u8]>,
    /// When the gateway started answering: the span's start.
    pub started: Instant,
    /// `http.request.method` (`_OTHER` for a method outside the HTTP registry).
    pub method: &'a str,
    /// `url.path`: the request path without its query.
    pub route: &'a str,
    /// The endpoint the path names, if any: the GenAI operation.
    pub endpoint: Option<Endpoint>,
    /// The status sent to the client.
    pub status: u16,
    /// `switchyard.project`.
    pub project: Option<&'a str>,
    /// `gen_ai.request.model`: the client's `model` value, a JSON string with its quotes, as
    /// sent (escapes kept; the body was validated as JSON).
    pub requested_model: Option<&'a [u8]>,
    /// `gen_ai.response.model`: the upstream id of the model that answered (or was last tried).
    pub model: Option<&'a str>,
    /// `switchyard.provider`: that model's provider id.
    pub provider: Option<&'a str>,
    /// `gen_ai.provider.name` (and the older `gen_ai.system`): the provider's kind.
    pub provider_kind: Option<ProviderKind>,
    /// `switchyard.attempts`.
    pub attempts: u32,
    /// `gen_ai.usage.input_tokens` and `output_tokens`, as the upstream reported them.
    pub usage: Option<Usage>,
    /// `gen_ai.response.finish_reasons`.
    pub finish: Option<Finish>,
    /// `switchyard.cost_usd`.
    pub cost_usd: f64,
}

/// The span's identity: its trace, its own id and its parent's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ids {
    /// 16 bytes, never all zero.
    pub trace: [u8; 16],
    /// 8 bytes, never all zero.
    pub span: [u8; 8],
    /// The caller's span, from its `traceparent`.
    pub parent: Option<[u8; 8]>,
}

/// A W3C Trace Context `traceparent` (version `00`): `00-<32 hex trace id>-<16 hex parent
/// id>-<2 hex flags>`, lowercase hex, neither id all zeros (Trace Context §3.2.2). `None` for
/// anything else: an invalid header is ignored, as the specification says, and the span
/// starts a trace of its own.
pub fn parse_traceparent(v: &[u8]) -> Option<([u8; 16], [u8; 8])> {
    if v.len() != 55 || !v.starts_with(b"00-") || v[35] != b'-' || v[52] != b'-' {
        return None;
    }
    let mut trace = [0u8; 16];
    let mut parent = [0u8; 8];
    unhex(&v[3..35], &mut trace)?;
    unhex(&v[36..52], &mut parent)?;
    unhex(&v[53..55], &mut [0u8; 1])?;
    if trace == [0; 16] || parent == [0; 8] {
        return None;
    }
    Some((trace, parent))
}

/// Lowercase hex into `out` (`hex.len() == 2 * out.len()`); `None` on any other byte.
fn unhex(hex: &[u8], out: &mut [u8]) -> Option<()> {
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    for (o, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        *o = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(())
}

fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        crate::digits::push_hex(out, b);
    }
}

impl Span<'_> {
    /// The span's ids: the incoming `traceparent`'s trace and parent when it is valid, else
    /// our trace id's bytes; `span` is the span's own random id.
    pub fn ids(&self, span: u64) -> Ids {
        let span = span.max(1).to_be_bytes();
        match self.parent.and_then(parse_traceparent) {
            Some((trace, parent)) => Ids {
                trace,
                span,
                parent: Some(parent),
            },
            None => Ids {
                trace: self.trace_id.to_bytes(),
                span,
                parent: None,
            },
        }
    }

    /// The GenAI operation (`gen_ai.operation.name`): every generation route is `chat`.
    fn operation(&self) -> Option<&'static str> {
        match self.endpoint? {
            Endpoint::ChatCompletions | Endpoint::Messages | Endpoint::Responses => Some("chat"),
            Endpoint::CountTokens | Endpoint::Models => None,
        }
    }

    /// The client's model's escaped content (between the quotes), when it is short enough.
    fn requested_model(&self) -> Option<&[u8]> {
        let raw = self.requested_model?;
        let inner = raw.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
        (inner.len() <= MAX_MODEL_BYTES && inner.iter().all(|&b| b >= 0x20)).then_some(inner)
    }

    /// Appends the span as one OTLP JSON `Span` object, ended at `end_ns` (Unix nanoseconds).
    pub fn write(&self, ids: &Ids, end_ns: u64, out: &mut Vec<u8>) {
        let took = self.started.elapsed().as_nanos().min(u128::from(end_ns)) as u64;
        out.extend_from_slice(b"{\"traceId\":\"");
        push_hex(out, &ids.trace);
        out.extend_from_slice(b"\",\"spanId\":\"");
        push_hex(out, &ids.span);
        if let Some(p) = &ids.parent {
            out.extend_from_slice(b"\",\"parentSpanId\":\"");
            push_hex(out, p);
        }
        // Span names: `{operation} {model}` for GenAI spans, `{method} {path}` otherwise (the
        // conventions' low-cardinality route; ours has no parameters but a response id).
        out.extend_from_slice(b"\",\"name\":\"");
        let op = self.operation();
        match (op, self.requested_model()) {
            (Some(op), Some(m)) => {
                out.extend_from_slice(op.as_bytes());
                out.push(b' ');
                out.extend_from_slice(m);
            }
            (Some(op), None) => out.extend_from_slice(op.as_bytes()),
            (None, _) => {
                out.extend_from_slice(self.method.as_bytes());
                if self.endpoint.is_some() {
                    out.push(b' ');
                    crate::scan::push_json_escaped(out, self.route);
                }
            }
        }
        out.extend_from_slice(b"\",\"kind\":2,\"startTimeUnixNano\":\"");
        push_u64(out, end_ns - took);
        out.extend_from_slice(b"\",\"endTimeUnixNano\":\"");
        push_u64(out, end_ns);
        out.extend_from_slice(b"\",\"attributes\":[");
        let mut a = Attrs { out, first: true };
        if let Some(op) = op {
            a.str("gen_ai.operation.name", op);
        }
        if let Some(kind) = self.provider_kind {
            let name = match kind {
                ProviderKind::Openai => "openai",
                ProviderKind::Anthropic => "anthropic",
                ProviderKind::Mock => "mock",
            };
            a.str("gen_ai.provider.name", name);
            a.str("gen_ai.system", name);
        }
        if let Some(m) = self.requested_model() {
            a.key("gen_ai.request.model");
            a.out.extend_from_slice(b"{\"stringValue\":\"");
            a.out.extend_from_slice(m);
            a.out.extend_from_slice(b"\"}}");
        }
        if let Some(m) = self.model {
            a.str("gen_ai.response.model", m);
        }
        if let Some(u) = &self.usage {
            a.int("gen_ai.usage.input_tokens", u.input);
            a.int("gen_ai.usage.output_tokens", u.output);
        }
        if let Some(f) = &self.finish {
            a.key("gen_ai.response.finish_reasons");
            a.out
                .extend_from_slice(b"{\"arrayValue\":{\"values\":[{\"stringValue\":");
            push_json_string(a.out, f.as_str());
            a.out.extend_from_slice(b"}]}}}");
        }
        a.str("http.request.method", self.method);
        a.str("url.path", self.route);
        a.int("http.response.status_code", u64::from(self.status));
        if self.status >= 500 {
            a.key("error.type");
            let _ = write!(a.out, "{{\"stringValue\":\"{}\"}}}}", self.status);
        }
        if let Some(p) = self.project {
            a.str("switchyard.project", p);
        }
        if let Some(p) = self.provider {
            a.str("switchyard.provider", p);
        }
        a.int("switchyard.attempts", u64::from(self.attempts));
        if self.usage.is_some() {
            a.key("switchyard.cost_usd");
            let cost = if self.cost_usd.is_finite() {
                self.cost_usd
            } else {
                0.0
            };
            let _ = write!(a.out, "{{\"doubleValue\":{cost}}}}}");
        }
        a.str("switchyard.trace_id", self.trace_id.as_str());
        // Server spans leave 4xx unset (the client's fault); 5xx is an error.
        out.push(b']');
        if self.status >= 500 {
            out.extend_from_slice(b",\"status\":{\"code\":2}");
        }
        out.push(b'}');
    }
}

/// Writes `{"key":..,"value":..}` attribute objects, comma-separated.
struct Attrs<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl Attrs<'_> {
    /// Opens an attribute up to its value (which the caller writes, then closes with `}`).
    fn key(&mut self, key: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.extend_from_slice(b"{\"key\":\"");
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\",\"value\":");
    }

    fn str(&mut self, key: &str, v: &str) {
        self.key(key);
        self.out.extend_from_slice(b"{\"stringValue\":");
        push_json_string(self.out, v);
        self.out.extend_from_slice(b"}}");
    }

    fn int(&mut self, key: &str, v: u64) {
        self.key(key);
        self.out.extend_from_slice(b"{\"intValue\":\"");
        push_u64(self.out, v);
        self.out.extend_from_slice(b"\"}}");
    }
}

/// The export body's opening, up to the first span: the resource (`service.name`,
/// `service.version`) and the instrumentation scope.
pub fn envelope(service_name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(
        b"{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":",
    );
    push_json_string(&mut out, service_name);
    out.extend_from_slice(b"}},{\"key\":\"service.version\",\"value\":{\"stringValue\":");
    push_json_string(&mut out, env!("CARGO_PKG_VERSION"));
    out.extend_from_slice(b"}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"switchyard\",\"version\":");
    push_json_string(&mut out, env!("CARGO_PKG_VERSION"));
    out.extend_from_slice(b"},\"spans\":[");
    out
}

/// The export body's closing, after the last span.
pub const SUFFIX: &[u8] = b"]}]}]}";

#[cfg(test)]
mod tests {
    use super::*;
    use simd_json::prelude::*;

    #[test]
    fn traceparents() {
        let ok = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let (t, p) = parse_traceparent(ok).unwrap();
        assert_eq!(t[0], 0x4b);
        assert_eq!(t[15], 0x36);
        assert_eq!(p, [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]);
        for bad in [
            &b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"[..],
            b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
            b"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"",
        ] {
            assert_eq!(
                parse_traceparent(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    fn span<'a>(trace_id: &'a TraceId, parent: Option<&'a [u8]>, status: u16) -> Span<'a> {
        Span {
            trace_id,
            parent,
            started: Instant::now(),
            method: "POST",
            route: "/v1/chat/completions",
            endpoint: Some(Endpoint::ChatCompletions),
            status,
            project: Some("p\"q"),
            requested_model: Some(b"\"gpt-\\u0041\""),
            model: Some("up-model"),
            provider: Some("up"),
            provider_kind: Some(ProviderKind::Openai),
            attempts: 1,
            usage: Some(Usage {
                input: 10,
                output: 3,
                cache_read: 4,
            }),
            finish: Finish::new(b"stop"),
            cost_usd: 0.25,
        }
    }

    fn attr<'v>(v: &'v simd_json::OwnedValue, key: &str) -> Option<&'v simd_json::OwnedValue> {
        v["attributes"]
            .as_array()?
            .iter()
            .find(|a| a["key"].as_str() == Some(key))
            .map(|a| &a["value"])
    }

    #[test]
    fn a_span_is_otlp_json_with_the_genai_attributes() {
        let id = TraceId::new();
        let s = span(&id, None, 200);
        let ids = s.ids(0x0102_0304_0506_0708);
        assert_eq!(ids.trace, id.to_bytes());
        let mut body = envelope("gw \"1\"");
        s.write(&ids, 2_000_000_000, &mut body);
        body.push(b',');
        s.write(&ids, 2_000_000_000, &mut body);
        body.extend_from_slice(SUFFIX);
        let v: simd_json::OwnedValue = simd_json::to_owned_value(&mut body.clone()).unwrap();
        let rs = &v["resourceSpans"][0];
        assert_eq!(
            rs["resource"]["attributes"][0]["value"]["stringValue"].as_str(),
            Some("gw \"1\"")
        );
        let ss = &rs["scopeSpans"][0];
        assert_eq!(ss["scope"]["name"].as_str(), Some("switchyard"));
        let sp = &ss["spans"][0];
        assert_eq!(ss["spans"].as_array().map(Vec::len), Some(2));
        assert_eq!(sp["traceId"].as_str(), Some(&*id.as_str().replace('-', "")));
        assert_eq!(sp["spanId"].as_str(), Some("0102030405060708"));
        assert!(sp.get("parentSpanId").is_none());
        assert_eq!(sp["name"].as_str(), Some("chat gpt-A"));
        assert_eq!(sp["kind"].as_u64(), Some(2));
        let start: u64 = sp["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
        assert!(start <= 2_000_000_000 && start > 1_000_000_000);
        assert_eq!(sp["endTimeUnixNano"].as_str(), Some("2000000000"));
        let s_ = |k| attr(sp, k).and_then(|v| v["stringValue"].as_str());
        let i_ = |k| attr(sp, k).and_then(|v| v["intValue"].as_str());
        assert_eq!(s_("gen_ai.operation.name"), Some("chat"));
        assert_eq!(s_("gen_ai.provider.name"), Some("openai"));
        assert_eq!(s_("gen_ai.request.model"), Some("gpt-A"));
        assert_eq!(s_("gen_ai.response.model"), Some("up-model"));
        assert_eq!(i_("gen_ai.usage.input_tokens"), Some("10"));
        assert_eq!(i_("gen_ai.usage.output_tokens"), Some("3"));
        let reasons = attr(sp, "gen_ai.response.finish_reasons").unwrap();
        assert_eq!(
            reasons["arrayValue"]["values"][0]["stringValue"].as_str(),
            Some("stop")
        );
        assert_eq!(s_("http.request.method"), Some("POST"));
        assert_eq!(s_("url.path"), Some("/v1/chat/completions"));
        assert_eq!(i_("http.response.status_code"), Some("200"));
        assert_eq!(s_("switchyard.project"), Some("p\"q"));
        assert_eq!(s_("switchyard.provider"), Some("up"));
        assert_eq!(i_("switchyard.attempts"), Some("1"));
        assert_eq!(
            attr(sp, "switchyard.cost_usd").and_then(|v| v["doubleValue"].as_f64()),
            Some(0.25)
        );
        assert_eq!(s_("switchyard.trace_id"), Some(id.as_str()));
        assert!(sp.get("status").is_none(), "a 200 leaves the status unset");
        assert_eq!(s_("error.type"), None);
    }

    #[test]
    fn a_traceparent_gives_trace_and_parent_and_5xx_is_an_error() {
        let id = TraceId::new();
        let tp = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut s = span(&id, Some(tp), 502);
        s.requested_model = Some(&[b'"'; MAX_MODEL_BYTES + 3]);
        let ids = s.ids(0);
        assert_ne!(ids.span, [0; 8], "a span id is never zero");
        let mut out = Vec::new();
        s.write(&ids, 5_000_000_000, &mut out);
        let v: simd_json::OwnedValue = simd_json::to_owned_value(&mut out).unwrap();
        assert_eq!(
            v["traceId"].as_str(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(v["parentSpanId"].as_str(), Some("00f067aa0ba902b7"));
        assert_eq!(v["status"]["code"].as_u64(), Some(2));
        assert_eq!(
            v["name"].as_str(),
            Some("chat"),
            "an oversized model is left out"
        );
        assert!(attr(&v, "gen_ai.request.model").is_none());
        assert_eq!(
            attr(&v, "error.type").and_then(|v| v["stringValue"].as_str()),
            Some("502")
        );
    }

    #[test]
    fn other_routes_are_named_by_method_and_path() {
        let id = TraceId::new();
        let mut s = span(&id, None, 404);
        s.endpoint = None;
        s.route = "/nope";
        s.requested_model = None;
        let mut out = Vec::new();
        s.write(&s.ids(7), 1, &mut out);
        let v: simd_json::OwnedValue = simd_json::to_owned_value(&mut out).unwrap();
        assert_eq!(v["name"].as_str(), Some("POST"));
        assert!(attr(&v, "gen_ai.operation.name").is_none());
        s.endpoint = Some(Endpoint::Models);
        s.route = "/v1/models";
        let mut out = Vec::new();
        s.write(&s.ids(7), 1, &mut out);
        let v: simd_json::OwnedValue = simd_json::to_owned_value(&mut out).unwrap();
        assert_eq!(v["name"].as_str(), Some("POST /v1/models"));
    }
}
