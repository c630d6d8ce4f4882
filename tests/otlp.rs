//! OpenTelemetry spans end to end: the gateway binary in front of a capture upstream that
//! reports usage and finish reasons, exporting to a capture server standing in for an OTLP/HTTP
//! collector, over real sockets. Each answered request (plain, streamed, translated, refused)
//! arrives as one span carrying the model, the provider, the upstream's token counts and finish
//! reason, and the caller's `traceparent` when one came; a collector that is down costs
//! dropped spans, counted in `/metrics`. The span encoding, the exporter's batching and its
//! queue are unit-tested beside them (`otlp`).

mod common;

use common::*;
use simd_json::prelude::*;
use simd_json::OwnedValue;
use std::time::{Duration, Instant};

/// What the upstream reports (prompt tokens, completion tokens) for chat answers.
const PROMPT: u64 = 1000;
const COMPLETION: u64 = 200;
/// What it reports for Anthropic answers: input (uncached), output.
const ANT_INPUT: u64 = 70;
const ANT_OUTPUT: u64 = 9;
/// The chat finish reason of a whole answer and of a stream, and the Anthropic stop reason.
const PLAIN_FINISH: &str = "length";
const STREAM_FINISH: &str = "tool_calls";
const ANT_STOP: &str = "max_tokens";

/// The caller's trace context: trace id and parent span id.
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

fn chat_usage() -> String {
    format!(
        r#"{{"prompt_tokens":{PROMPT},"completion_tokens":{COMPLETION},"total_tokens":{}}}"#,
        PROMPT + COMPLETION
    )
}

/// Chat answers (JSON or chunks) reporting [`chat_usage`] and a finish reason; Anthropic
/// streams ending in [`ANT_STOP`].
fn reply(req: &Captured) -> Reply {
    let model = req.model().unwrap_or_default();
    if req.path().ends_with("/messages") {
        return Reply::Sse(vec![
            format!("event: message_start\ndata: {{\"type\":\"message_start\",\"message\":{{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"{model}\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{{\"input_tokens\":{ANT_INPUT},\"output_tokens\":1}}}}}}\n\n"),
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n".into(),
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n".into(),
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n".into(),
            format!("event: message_delta\ndata: {{\"type\":\"message_delta\",\"delta\":{{\"stop_reason\":\"{ANT_STOP}\",\"stop_sequence\":null}},\"usage\":{{\"output_tokens\":{ANT_OUTPUT}}}}}\n\n"),
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n".into(),
        ]);
    }
    if req.wants_stream() {
        let mut evs = chat_chunk_events(&model);
        evs.push(format!(
            "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"{model}\",\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"{STREAM_FINISH}\"}}]}}\n\n"
        ));
        evs.push(format!(
            "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"{model}\",\"choices\":[],\"usage\":{}}}\n\n",
            chat_usage()
        ));
        evs.push("data: [DONE]\n\n".into());
        Reply::Sse(evs)
    } else {
        Reply::Json(
            200,
            format!(
                r#"{{"id":"c","object":"chat.completion","created":1,"model":"{model}","choices":[{{"index":0,"message":{{"role":"assistant","content":"hi"}},"finish_reason":"{PLAIN_FINISH}"}}],"usage":{}}}"#,
                chat_usage()
            ),
        )
    }
}

/// A gateway on `up` (an OpenAI provider and an Anthropic one) exporting spans to `endpoint`.
fn serve(up: &Capture, endpoint: &str) -> Server {
    let cfg = format!(
        r#"[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
workers = 1

[usage]
ledger = ""
access_log = ""

[telemetry]
otlp_endpoint = "{endpoint}"
service_name = "gw-under-test"
flush_ms = 50
timeout_ms = 2000
headers = {{ authorization = "Bearer collector-token" }}

[[providers]]
id = "up"
kind = "openai"
base_url = "{oai}"
api_key_env = "TEST_OPENAI_KEY"

[[providers]]
id = "ant"
kind = "anthropic"
base_url = "{ant}"
api_key_env = "TEST_ANTHROPIC_KEY"

[[models]]
id = "m1"
provider = "up"
upstream_id = "up-model"
input_per_million = 2.0
output_per_million = 8.0

[[models]]
id = "c1"
provider = "ant"
upstream_id = "claude-upstream"

[[projects]]
slug = "p"
tokens = ["{TOKEN}"]
models = ["m1", "c1"]
"#,
        oai = up.openai_base(),
        ant = up.anthropic_base(),
    );
    Server::serve(&cfg, &key_env())
}

/// The spans the collector received once it holds `n`, each export request checked for its
/// path, content type, configured header and resource.
fn wait_spans(collector: &Capture, n: usize) -> Vec<OwnedValue> {
    let deadline = Instant::now() + LOG_WAIT;
    loop {
        let mut spans = Vec::new();
        for r in collector.requests() {
            assert_eq!(r.request_line(), "POST /v1/traces HTTP/1.1");
            assert_eq!(r.header("content-type"), Some("application/json"));
            assert_eq!(r.header("authorization"), Some("Bearer collector-token"));
            let v = r.json();
            let rs = &v["resourceSpans"][0];
            let service = rs["resource"]["attributes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["key"].as_str() == Some("service.name"))
                .map(|a| a["value"]["stringValue"].as_str().map(str::to_string));
            assert_eq!(service, Some(Some("gw-under-test".into())));
            let ss = &rs["scopeSpans"][0];
            assert_eq!(ss["scope"]["name"].as_str(), Some("switchyard"));
            spans.extend(ss["spans"].as_array().unwrap().iter().cloned());
        }
        if spans.len() >= n {
            return spans;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            collector.wait_request(left).is_some(),
            "the collector has {} spans, wanted {n}",
            spans.len()
        );
    }
}

/// The span whose `switchyard.trace_id` is the response's trace id.
fn span_of<'a>(spans: &'a [OwnedValue], r: &Response) -> &'a OwnedValue {
    let id = r.header("x-routerly-trace-id").expect("trace id header");
    spans
        .iter()
        .find(|s| attr_str(s, "switchyard.trace_id") == Some(id))
        .unwrap_or_else(|| panic!("no span for {id} among {spans:?}"))
}

fn attr<'a>(span: &'a OwnedValue, key: &str) -> Option<&'a OwnedValue> {
    span["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["key"].as_str() == Some(key))
        .map(|a| &a["value"])
}

fn attr_str<'a>(span: &'a OwnedValue, key: &str) -> Option<&'a str> {
    attr(span, key)?["stringValue"].as_str()
}

fn attr_int(span: &OwnedValue, key: &str) -> Option<u64> {
    attr(span, key)?["intValue"].as_str()?.parse().ok()
}

fn finish_reasons(span: &OwnedValue) -> Vec<String> {
    attr(span, "gen_ai.response.finish_reasons")
        .and_then(|v| v["arrayValue"]["values"].as_array())
        .map(|vs| {
            vs.iter()
                .filter_map(|v| v["stringValue"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn each_answered_request_arrives_as_a_span_with_its_model_usage_and_finish_reason() {
    let up = Capture::start(reply);
    let collector = Capture::fixed(Reply::Json(200, "{}".into()));
    let gw = serve(&up, &format!("http://{}", collector.addr));
    let traceparent = format!("traceparent: 00-{TRACE}-{PARENT}-01\r\n");
    let plain = roundtrip(
        gw.addr,
        &post(CHAT, TOKEN, &chat_body("m1", false), &traceparent),
    );
    assert_eq!(plain.status, 200, "{}", plain.dump());
    let streamed = roundtrip(gw.addr, &post(CHAT, TOKEN, &chat_body("m1", true), ""));
    assert_eq!(streamed.status, 200, "{}", streamed.dump());
    // A chat client on an Anthropic model: the stream is translated.
    let translated = roundtrip(gw.addr, &post(CHAT, TOKEN, &chat_body("c1", true), ""));
    assert_eq!(translated.status, 200, "{}", translated.dump());
    let refused = roundtrip(
        gw.addr,
        &post(CHAT, "sk-lr-wrong", &chat_body("m1", false), ""),
    );
    assert_eq!(refused.status, 401);
    let spans = wait_spans(&collector, 4);
    assert_eq!(spans.len(), 4, "one span per request: {spans:?}");

    for (r, what) in [(&plain, "plain"), (&streamed, "streamed")] {
        let s = span_of(&spans, r);
        assert_eq!(s["name"].as_str(), Some("chat m1"), "{what}");
        assert_eq!(s["kind"].as_u64(), Some(2), "{what}: a server span");
        assert_eq!(attr_str(s, "gen_ai.operation.name"), Some("chat"));
        assert_eq!(attr_str(s, "gen_ai.provider.name"), Some("openai"));
        assert_eq!(attr_str(s, "gen_ai.request.model"), Some("m1"));
        assert_eq!(attr_str(s, "gen_ai.response.model"), Some("up-model"));
        assert_eq!(
            attr_int(s, "gen_ai.usage.input_tokens"),
            Some(PROMPT),
            "{what}"
        );
        assert_eq!(attr_int(s, "gen_ai.usage.output_tokens"), Some(COMPLETION));
        assert_eq!(attr_str(s, "switchyard.provider"), Some("up"));
        assert_eq!(attr_str(s, "switchyard.project"), Some("p"));
        assert_eq!(attr_int(s, "switchyard.attempts"), Some(1));
        assert_eq!(attr_int(s, "http.response.status_code"), Some(200));
        assert_eq!(attr_str(s, "http.request.method"), Some("POST"));
        assert_eq!(attr_str(s, "url.path"), Some(CHAT));
        let cost = attr(s, "switchyard.cost_usd").and_then(|v| v["doubleValue"].as_f64());
        let want = (PROMPT as f64 * 2.0 + COMPLETION as f64 * 8.0) / 1e6;
        assert!(
            cost.is_some_and(|c| (c - want).abs() < 1e-12),
            "{what}: {cost:?}"
        );
        let start: u64 = s["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
        let end: u64 = s["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
        assert!(start > 0 && start <= end, "{what}: {start} .. {end}");
        assert!(s.get("status").is_none(), "{what}: a 200 leaves it unset");
    }
    let p = span_of(&spans, &plain);
    assert_eq!(finish_reasons(p), [PLAIN_FINISH]);
    assert_eq!(p["traceId"].as_str(), Some(TRACE), "the caller's trace");
    assert_eq!(
        p["parentSpanId"].as_str(),
        Some(PARENT),
        "the caller's span"
    );
    assert_eq!(p["spanId"].as_str().map(str::len), Some(16));
    assert_ne!(p["spanId"].as_str(), Some(PARENT));

    let s = span_of(&spans, &streamed);
    assert_eq!(finish_reasons(s), [STREAM_FINISH]);
    let ours = streamed
        .header("x-routerly-trace-id")
        .unwrap()
        .replace('-', "");
    assert_eq!(
        s["traceId"].as_str(),
        Some(ours.as_str()),
        "our trace id's bytes"
    );
    assert!(s.get("parentSpanId").is_none());

    let t = span_of(&spans, &translated);
    assert_eq!(attr_str(t, "gen_ai.provider.name"), Some("anthropic"));
    assert_eq!(
        attr_str(t, "gen_ai.response.model"),
        Some("claude-upstream")
    );
    assert_eq!(finish_reasons(t), [ANT_STOP], "the upstream's own words");
    assert_eq!(attr_int(t, "gen_ai.usage.input_tokens"), Some(ANT_INPUT));
    assert_eq!(attr_int(t, "gen_ai.usage.output_tokens"), Some(ANT_OUTPUT));

    let x = span_of(&spans, &refused);
    assert_eq!(attr_int(x, "http.response.status_code"), Some(401));
    assert!(
        attr(x, "switchyard.project").is_none() && attr(x, "gen_ai.usage.input_tokens").is_none()
    );
    // Nothing secret: neither the client's token nor the providers' keys.
    for r in collector.requests() {
        let body = String::from_utf8_lossy(&r.body);
        for secret in [TOKEN, "sk-lr-wrong", OPENAI_KEY, ANTHROPIC_KEY] {
            assert!(!body.contains(secret), "{secret} in a span");
        }
    }
    let deadline = Instant::now() + LOG_WAIT;
    while gw.metric("switchyard_otlp_spans_exported_total") < 4 {
        assert!(Instant::now() < deadline, "exported spans never counted");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(gw.metric("switchyard_otlp_spans_exported_total"), 4);
    assert_eq!(gw.metric("switchyard_otlp_spans_dropped_total"), 0);
}

#[test]
fn a_collector_that_is_down_costs_counted_spans_not_answers() {
    let up = Capture::start(reply);
    // A port nothing listens on any more.
    let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", gone.local_addr().unwrap());
    drop(gone);
    let gw = serve(&up, &endpoint);
    for stream in [false, true] {
        let r = roundtrip(gw.addr, &post(CHAT, TOKEN, &chat_body("m1", stream), ""));
        assert_eq!(r.status, 200, "{}", r.dump());
    }
    let deadline = Instant::now() + LOG_WAIT;
    while gw.metric("switchyard_otlp_spans_dropped_total") < 2 {
        assert!(Instant::now() < deadline, "dropped spans never counted");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(gw.metric("switchyard_otlp_spans_exported_total"), 0);
    gw.wait_log("warning that the export failed", |l| {
        l.contains("otlp: exporting to the collector failed")
    });
}
