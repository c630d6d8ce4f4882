//! Golden streams (`tests/fixtures/translate/streams/`): `<case>.<upstream>.sse` is what a
//! provider sends, written from its API reference; `<case>.<upstream>.<client>.sse` is what
//! the client must receive, checked by hand against the client API's reference. Outputs are
//! compared event by event, data as JSON values; each input is also fed split at every byte
//! boundary and one byte at a time, and must give the same bytes.
//! `SWITCHYARD_BLESS=1` writes missing expected files (to be reviewed before committing).

use super::*;
use crate::translate::names::ToolNames;
use crate::translate::sse::Framer;
use crate::translate::{Dropped, Usage};

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/translate/streams"
);
const TRACE: &str = "0190b2c3-d4e5-7f00-8a1b-2c3d4e5f6a7b";
const CASES: [&str; 8] = [
    "text",
    "tools",
    "parallel",
    "noargs",
    "thinking",
    "cache",
    "error",
    "truncated",
];
const PAIRS: [(Api, Api); 4] = [
    (Api::Messages, Api::Chat),
    (Api::Chat, Api::Messages),
    (Api::Chat, Api::Responses),
    (Api::Messages, Api::Responses),
];

fn api_name(a: Api) -> &'static str {
    match a {
        Api::Chat => "chat",
        Api::Messages => "messages",
        Api::Responses => "responses",
    }
}

pub(crate) fn session(upstream: Api, client: Api) -> Session {
    let mut tools = ToolNames::default();
    tools.add(Some("mcp__fs"), "read_file");
    Session {
        client,
        upstream,
        tools,
        dropped: Dropped::new(),
        include_usage: true,
        model: "switchyard-model".into(),
        echo: if client == Api::Responses {
            "\"instructions\":null,\"store\":true".into()
        } else {
            String::new()
        },
    }
}

pub(crate) const IDS: Ids<'static> = Ids {
    trace_id: TRACE,
    created: 1_700_000_000,
};

/// Feeds `input` in the given pieces and finishes.
fn run(s: &Session, pieces: &[&[u8]]) -> (Vec<u8>, bool, Option<Usage>) {
    let mut t = Translator::new(s, &IDS);
    let mut out = Vec::new();
    for p in pieces {
        t.feed(p, &mut out);
    }
    let whole = t.finish(None, &mut out);
    (out, whole, t.usage())
}

fn events(sse: &[u8]) -> Vec<(String, String)> {
    let mut f = Framer::new();
    let mut v = Vec::new();
    let mut cb = |e: &[u8], d: &[u8]| {
        v.push((
            String::from_utf8(e.to_vec()).unwrap(),
            String::from_utf8(d.to_vec()).unwrap(),
        ));
        true
    };
    f.feed(sse, &mut cb).unwrap();
    f.finish(&mut cb);
    v
}

fn json(s: &str) -> simd_json::OwnedValue {
    let mut b = s.as_bytes().to_vec();
    simd_json::to_owned_value(&mut b).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

fn same_events(got: &[u8], want: &[u8], what: &str) {
    let (g, w) = (events(got), events(want));
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        assert_eq!(a.0, b.0, "{what}: event {i} name");
        if b.1 == "[DONE]" || a.1 == "[DONE]" {
            assert_eq!(a.1, b.1, "{what}: event {i}");
        } else {
            assert_eq!(
                json(&a.1),
                json(&b.1),
                "{what}: event {i} data\n got: {}\nwant: {}",
                a.1,
                b.1
            );
        }
    }
    assert_eq!(g.len(), w.len(), "{what}: event count");
}

#[test]
fn golden_streams_at_every_split() {
    let bless = std::env::var_os("SWITCHYARD_BLESS").is_some();
    for case in CASES {
        for (upstream, client) in PAIRS {
            let s = session(upstream, client);
            let input_path = format!("{DIR}/{case}.{}.sse", api_name(upstream));
            let input = std::fs::read(&input_path).unwrap();
            let want_path = format!(
                "{DIR}/{case}.{}.{}.sse",
                api_name(upstream),
                api_name(client)
            );
            let what = format!("{case}: {upstream:?} -> {client:?}");
            let (out, whole, usage) = run(&s, &[&input]);
            assert_eq!(
                whole,
                !matches!(case, "error" | "truncated"),
                "{what}: whole"
            );
            if !matches!(case, "error" | "truncated") {
                assert!(usage.is_some(), "{what}: usage");
            }
            match std::fs::read(&want_path) {
                Ok(want) => same_events(&out, &want, &what),
                Err(_) if bless => std::fs::write(&want_path, &out).unwrap(),
                Err(e) => panic!("{want_path}: {e}"),
            }
            for i in 0..=input.len() {
                let (split, w, _) = run(&s, &[&input[..i], &input[i..]]);
                assert!(split == out && w == whole, "{what}: split at {i}");
            }
            let bytes: Vec<&[u8]> = input.chunks(1).collect();
            assert_eq!(run(&s, &bytes).0, out, "{what}: one byte at a time");
        }
    }
}

fn chunk(delta: &str, finish: &str) -> String {
    format!(
        "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}]}}\n\n"
    )
}

#[test]
fn a_reset_upstream_ends_with_the_clients_error_event() {
    for (client, want) in [
        (Api::Chat, &b"data: {\"error\":{\"message\":\"upstream timed out\""[..]),
        (Api::Messages, b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"upstream timed out\"}}\n\n"),
        (Api::Responses, b"event: response.failed\n"),
    ] {
        let s = session(Api::Chat, client);
        let mut t = Translator::new(&s, &IDS);
        let mut out = Vec::new();
        assert_eq!(t.feed(chunk(r#"{"content":"Hi"}"#, "null").as_bytes(), &mut out), Progress::Open);
        let at = out.len();
        assert!(!t.finish(Some("upstream timed out"), &mut out));
        assert!(out[at..].starts_with(want), "{}", String::from_utf8_lossy(&out[at..]));
        assert!(!String::from_utf8_lossy(&out).contains("[DONE]"));
    }
}

#[test]
fn usage_is_replaced_not_added_and_passed_on_only_when_asked() {
    let input = std::fs::read(format!("{DIR}/cache.messages.sse")).unwrap();
    let mut s = session(Api::Messages, Api::Chat);
    let (out, whole, usage) = run(&s, &[&input]);
    assert!(whole);
    let u = usage.unwrap();
    assert_eq!((u.input, u.cache_read, u.output), (51, 40, 2));
    assert!(String::from_utf8_lossy(&out).contains("\"usage\""));
    s.include_usage = false;
    let (out, _, usage) = run(&s, &[&input]);
    assert!(!String::from_utf8_lossy(&out).contains("\"usage\""));
    assert_eq!(usage, Some(u), "still measured for the ledger");
}

#[test]
fn a_tool_call_opens_once_its_name_is_known() {
    let input = [
        chunk(r#"{"role":"assistant","content":null}"#, "null"),
        chunk(r#"{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"arguments":""}}]}"#, "null"),
        chunk(r#"{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":"}}]}"#, "null"),
        chunk(r#"{"tool_calls":[{"index":0,"function":{"name":"f","arguments":"1}"}}]}"#, "null"),
        chunk("{}", "\"tool_calls\""),
        "data: [DONE]\n\n".into(),
    ]
    .concat();
    let (out, whole, _) = run(&session(Api::Chat, Api::Messages), &[input.as_bytes()]);
    assert!(whole);
    let ev = events(&out);
    let names: Vec<&str> = ev.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    // The arguments held while the name was unknown come in one delta once it is opened.
    assert!(
        ev[1].1.contains(r#""id":"call_1","name":"f""#),
        "{}",
        ev[1].1
    );
    assert!(
        ev[2].1.contains(r#""partial_json":"{\"a\":1}""#),
        "{}",
        ev[2].1
    );
}

#[test]
fn bytes_that_are_not_the_protocol_fail_the_stream() {
    for bad in [
        &b"data: {\"choices\":[{\"delta\":\n\n"[..],
        b"data: \xff\xfe\n\n",
        b"data: [1,2]\n\n",
    ] {
        let s = session(Api::Chat, Api::Messages);
        let mut t = Translator::new(&s, &IDS);
        let mut out = Vec::new();
        assert_eq!(t.feed(bad, &mut out), Progress::Failed);
        assert!(String::from_utf8_lossy(&out).contains("event: error"));
        assert_eq!(t.feed(b"data: [DONE]\n\n", &mut out), Progress::Failed);
        assert!(!t.finish(None, &mut out));
    }
}

/// Mutated fixtures (a byte replaced by JSON and SSE punctuation at sampled offsets): no
/// panic, and whatever the client receives is still well-formed: every event's data is JSON.
#[test]
fn mutated_upstreams_still_give_well_formed_client_streams() {
    for case in CASES {
        for (upstream, client) in PAIRS {
            let s = session(upstream, client);
            let input = std::fs::read(format!("{DIR}/{case}.{}.sse", api_name(upstream))).unwrap();
            for at in (0..input.len()).step_by(13) {
                for b in [b'"', b'\\', b'}', b'\n', b'0'] {
                    let mut m = input.clone();
                    m[at] = b;
                    let (out, _, _) = run(&s, &[&m]);
                    for (_, data) in events(&out) {
                        if data != "[DONE]" {
                            json(&data);
                        }
                    }
                }
            }
        }
    }
}
