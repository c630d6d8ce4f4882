//! Trace ids and the trace event that opens every stream.
//!
//! Ids are UUIDv7 (RFC 9562 §5.7): 48 bits of Unix milliseconds, then random bits from a
//! per-thread xorshift generator seeded from the OS once, so minting one takes no lock and no
//! syscall. The trace event is encoded into the caller's reused buffer without allocating.

use crate::endpoint::Endpoint;
use crate::scan::push_json_string;
use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

thread_local! {
    static RNG: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let mut b = [0u8; 8];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut b);
    }
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    (u64::from_le_bytes(b) ^ t) | 1
}

/// A fast per-thread random `u64` (xorshift64*), for ids and sampling; not for secrets.
pub fn rand_u64() -> u64 {
    RNG.with(xorshift)
}

/// One xorshift64* step on `state` (which must not be 0); shared by every non-secret random
/// source of the crate.
pub fn xorshift(state: &Cell<u64>) -> u64 {
    let mut x = state.get();
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    state.set(x);
    x.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

/// A trace id, kept as its 36-byte hyphenated text.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TraceId([u8; 36]);

impl TraceId {
    /// A fresh UUIDv7.
    pub fn new() -> TraceId {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let r1 = rand_u64();
        let r2 = rand_u64();
        let hi: u64 = (ms << 16) | 0x7000 | (r1 & 0x0fff);
        let lo: u64 = (r2 & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
        let v = uuid::Uuid::from_u64_pair(hi, lo);
        let mut out = [0u8; 36];
        v.hyphenated().encode_lower(&mut out);
        TraceId(out)
    }

    /// The id's text.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The id's 16 bytes (the UUID's, in order): what an OpenTelemetry trace id is made of
    /// when no `traceparent` came in.
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        let mut nibbles = self.0.iter().filter(|&&c| c != b'-').map(|&c| match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => 0,
        });
        for b in out.iter_mut() {
            let hi = nibbles.next().unwrap_or(0);
            let lo = nibbles.next().unwrap_or(0);
            *b = hi << 4 | lo;
        }
        out
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        // The bytes are ASCII hex and hyphens written by `encode_lower`.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl Default for TraceId {
    fn default() -> Self {
        TraceId::new()
    }
}

impl std::fmt::Debug for TraceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the trace is carried in one stream. Each `data:` form is one that strict clients
/// accept as an event of their own protocol (the official SDKs' iteration loops and stream
/// helpers, and clients that validate every event against the protocol's schema).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceForm {
    /// Chat completions: `data: {"type":"trace",...}` that is at the same time a valid, empty
    /// `chat.completion.chunk` (`object`, `id`, `created`, one choice with an empty delta), so
    /// `chunk.choices[0].delta.content` loops see nothing to print. No role in the delta: the
    /// SDKs' helpers would double it.
    Chunk,
    /// Messages: an Anthropic `ping` event carrying the trace, `event: ping` /
    /// `data: {"type":"ping","trace":{...}}`; every Anthropic client skips pings.
    Ping,
    /// `: trace {...}` SSE comment. Always on `/v1/responses`, where any `data:` event before
    /// `response.created` breaks the SDK's `responses.stream()` helper.
    Comment,
    /// Left out.
    Off,
}

impl TraceForm {
    /// The form for an endpoint given the project's mode and the request's opt-out headers.
    pub fn choose(
        endpoint: Endpoint,
        mode: crate::config::TraceMode,
        opted_out: bool,
    ) -> TraceForm {
        use crate::config::TraceMode;
        if opted_out {
            return TraceForm::Off;
        }
        match mode {
            TraceMode::Off => TraceForm::Off,
            TraceMode::Comment => TraceForm::Comment,
            TraceMode::Event => match endpoint {
                Endpoint::Responses => TraceForm::Comment,
                Endpoint::Messages | Endpoint::CountTokens => TraceForm::Ping,
                Endpoint::ChatCompletions | Endpoint::Models => TraceForm::Chunk,
            },
        }
    }
}

/// One candidate's score, for the trace.
#[derive(Clone, Copy, Debug)]
pub struct Score<'a> {
    /// Model id.
    pub model: &'a str,
    /// Combined score in [0,1].
    pub score: f64,
}

/// What the trace event says about a routing decision.
pub struct TraceInfo<'a> {
    /// The request's trace id.
    pub id: &'a TraceId,
    /// Chosen model id.
    pub model: &'a str,
    /// Its provider id.
    pub provider: &'a str,
    /// Pre-encoded JSON array of the project's policies.
    pub policies_json: &'a [u8],
    /// Per-candidate scores in try order.
    pub scores: &'a [Score<'a>],
    /// Failed attempts before this one: (model, reason).
    pub attempts: &'a [(&'a str, &'a str)],
    /// USD estimate.
    pub cost_estimate: f64,
    /// Request fields and hosted tools a translation dropped (advisory, no equivalent at the
    /// provider); written only when there are some.
    pub dropped: &'a [&'a str],
}

/// Appends the trace JSON object.
pub fn write_trace_json(out: &mut Vec<u8>, t: &TraceInfo<'_>) {
    write_trace_fields(out, t);
    out.push(b'}');
}

/// Appends the trace object without its closing brace, so a form can add its own keys.
fn write_trace_fields(out: &mut Vec<u8>, t: &TraceInfo<'_>) {
    out.extend_from_slice(b"{\"type\":\"trace\",\"traceId\":\"");
    out.extend_from_slice(t.id.as_bytes());
    out.extend_from_slice(b"\",\"model\":");
    push_json_string(out, t.model);
    out.extend_from_slice(b",\"provider\":");
    push_json_string(out, t.provider);
    out.extend_from_slice(b",\"policies\":");
    out.extend_from_slice(t.policies_json);
    out.extend_from_slice(b",\"scores\":[");
    for (i, s) in t.scores.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"model\":");
        push_json_string(out, s.model);
        out.extend_from_slice(b",\"score\":");
        push_f64(out, s.score);
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"attempts\":[");
    for (i, (m, why)) in t.attempts.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"model\":");
        push_json_string(out, m);
        out.extend_from_slice(b",\"error\":");
        push_json_string(out, why);
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"costEstimate\":");
    push_f64(out, t.cost_estimate);
    if !t.dropped.is_empty() {
        out.extend_from_slice(b",\"dropped\":[");
        for (i, d) in t.dropped.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_json_string(out, d);
        }
        out.push(b']');
    }
}

/// Appends the trace in `form` as one SSE event (see [`TraceForm`]).
pub fn write_trace_sse(out: &mut Vec<u8>, form: TraceForm, t: &TraceInfo<'_>) {
    match form {
        TraceForm::Off => {}
        TraceForm::Chunk => {
            out.extend_from_slice(b"data: ");
            write_trace_fields(out, t);
            out.extend_from_slice(b",\"object\":\"chat.completion.chunk\",\"id\":\"chatcmpl-");
            out.extend_from_slice(t.id.as_bytes());
            out.extend_from_slice(b"\",\"created\":");
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            crate::http1::write::push_u64(out, now);
            out.extend_from_slice(
                b",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":null}]}\n\n",
            );
        }
        TraceForm::Ping => {
            out.extend_from_slice(b"event: ping\ndata: {\"type\":\"ping\",\"trace\":");
            write_trace_json(out, t);
            out.extend_from_slice(b"}\n\n");
        }
        TraceForm::Comment => {
            out.extend_from_slice(b": trace ");
            write_trace_json(out, t);
            out.extend_from_slice(b"\n\n");
        }
    }
}

/// Appends a finite float as JSON (12 significant digits at most; non-finite as 0).
pub fn push_f64(out: &mut Vec<u8>, v: f64) {
    use std::io::Write;
    if !v.is_finite() {
        out.push(b'0');
        return;
    }
    if v == v.trunc() && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{}", v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_are_uuid_v7() {
        let a = TraceId::new();
        let u = uuid::Uuid::parse_str(a.as_str()).unwrap();
        assert_eq!(u.get_version_num(), 7);
        assert_eq!(u.get_variant(), uuid::Variant::RFC4122);
        assert_ne!(a, TraceId::new());
    }

    #[test]
    fn trace_event_is_valid_json_with_every_field() {
        let id = TraceId::new();
        let scores = [
            Score {
                model: "a",
                score: 1.0,
            },
            Score {
                model: "b\"",
                score: 0.25,
            },
        ];
        let info = TraceInfo {
            id: &id,
            model: "a",
            provider: "p",
            policies_json: b"[\"health\"]",
            scores: &scores,
            attempts: &[("z", "timeout")],
            cost_estimate: 0.000025,
            dropped: &[],
        };
        use simd_json::prelude::*;
        let check = |v: &simd_json::OwnedValue| {
            assert_eq!(v["type"].as_str(), Some("trace"));
            assert_eq!(v["traceId"].as_str(), Some(id.as_str()));
            assert_eq!(v["scores"][1]["model"].as_str(), Some("b\""));
            assert_eq!(v["attempts"][0]["error"].as_str(), Some("timeout"));
            assert!((v["costEstimate"].as_f64().unwrap() - 0.000025).abs() < 1e-12);
        };

        // Chat completions: the trace is also an empty chat.completion.chunk.
        let mut out = Vec::new();
        write_trace_sse(&mut out, TraceForm::Chunk, &info);
        assert!(out.starts_with(b"data: {\"type\":\"trace\""));
        assert!(out.ends_with(b"}\n\n"));
        let mut json = out[6..out.len() - 2].to_vec();
        let v = simd_json::to_owned_value(&mut json).unwrap();
        check(&v);
        assert_eq!(v["object"].as_str(), Some("chat.completion.chunk"));
        assert_eq!(
            v["id"].as_str().unwrap(),
            format!("chatcmpl-{}", id.as_str())
        );
        assert!(v["created"].as_u64().unwrap() > 1_700_000_000);
        let choice = &v["choices"][0];
        assert_eq!(choice["index"].as_u64(), Some(0));
        assert!(choice["finish_reason"].is_null());
        assert_eq!(
            choice["delta"].as_object().map(|d| d.len()),
            Some(0),
            "no role, no content"
        );

        // Messages: a ping event carrying it.
        out.clear();
        write_trace_sse(&mut out, TraceForm::Ping, &info);
        assert!(out.starts_with(b"event: ping\ndata: {\"type\":\"ping\",\"trace\":{"));
        let start = out.iter().position(|&b| b == b'{').unwrap();
        let mut json = out[start..out.len() - 2].to_vec();
        let v = simd_json::to_owned_value(&mut json).unwrap();
        assert_eq!(v["type"].as_str(), Some("ping"));
        check(&v["trace"]);

        // Responses: a comment.
        out.clear();
        write_trace_sse(&mut out, TraceForm::Comment, &info);
        assert!(out.starts_with(b": trace {"));
        let mut json = out[8..out.len() - 2].to_vec();
        check(&simd_json::to_owned_value(&mut json).unwrap());
    }

    #[test]
    fn each_endpoint_gets_its_form() {
        use crate::config::TraceMode;
        let f = |e, m, o| TraceForm::choose(e, m, o);
        assert_eq!(
            f(Endpoint::ChatCompletions, TraceMode::Event, false),
            TraceForm::Chunk
        );
        assert_eq!(
            f(Endpoint::Messages, TraceMode::Event, false),
            TraceForm::Ping
        );
        assert_eq!(
            f(Endpoint::Responses, TraceMode::Event, false),
            TraceForm::Comment
        );
        assert_eq!(
            f(Endpoint::Messages, TraceMode::Comment, false),
            TraceForm::Comment
        );
        assert_eq!(
            f(Endpoint::ChatCompletions, TraceMode::Off, false),
            TraceForm::Off
        );
        assert_eq!(
            f(Endpoint::ChatCompletions, TraceMode::Event, true),
            TraceForm::Off
        );
    }
}
