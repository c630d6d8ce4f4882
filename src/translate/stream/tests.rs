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
