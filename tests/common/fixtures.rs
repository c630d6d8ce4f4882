//! Golden fixtures under `tests/fixtures/`: upstream bodies written from the providers' own
//! documentation (see `tests/fixtures/compat/README.md`), read as exact bytes so a test can
//! replay them through a capture upstream and compare what the client received.

use super::{Captured, Reply};
use std::path::PathBuf;

/// The fixtures directory of this crate.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The exact bytes of `tests/fixtures/<rel>`, as text.
pub fn fixture(rel: &str) -> String {
    let path = fixtures_dir().join(rel);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()))
}

/// The events of an `.sse` fixture, each with its terminating blank line: concatenated they
/// are the fixture byte for byte. Panics on a fixture that does not end with a blank line.
pub fn fixture_events(rel: &str) -> Vec<String> {
    let text = fixture(rel);
    assert!(
        text.ends_with("\n\n"),
        "fixture {rel} does not end with a blank line"
    );
    let events: Vec<String> = text.split_inclusive("\n\n").map(str::to_string).collect();
    assert_eq!(events.concat(), text, "fixture {rel} split loses bytes");
    events
}

/// A capture responder replaying fixtures: `json` (status 200) for a non-streaming request,
/// the events of `sse` for a streaming one.
pub fn fixture_replay(json: &str, sse: &str) -> impl Fn(&Captured) -> Reply + Send + Sync {
    let (body, events) = (fixture(json), fixture_events(sse));
    move |req: &Captured| {
        if req.wants_stream() {
            Reply::Sse(events.clone())
        } else {
            Reply::Json(200, body.clone())
        }
    }
}

/// How many header fields of the head of `req` have this name (ASCII case-insensitive).
pub fn header_count(req: &Captured, name: &str) -> usize {
    req.head
        .split("\r\n")
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .count()
}
