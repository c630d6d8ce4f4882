//! The stream translator: no panic on any upstream bytes, for every pair, and the client's
//! bytes do not depend on how the upstream's are split. The first byte picks the pair and the
//! split point.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::translate::names::ToolNames;
use switchyard::translate::stream::{Ids, Translator};
use switchyard::translate::{Api, Dropped, Session};

const PAIRS: [(Api, Api); 4] = [
    (Api::Messages, Api::Chat),
    (Api::Chat, Api::Messages),
    (Api::Chat, Api::Responses),
    (Api::Messages, Api::Responses),
];

fn run(s: &Session, pieces: &[&[u8]]) -> (Vec<u8>, bool) {
    let ids = Ids {
        trace_id: "0190b2c3-d4e5-7f00-8a1b-2c3d4e5f6a7b",
        created: 1,
    };
    let mut t = Translator::new(s, &ids);
    let mut out = Vec::new();
    for p in pieces {
        t.feed(p, &mut out);
    }
    let whole = t.finish(None, &mut out);
    (out, whole)
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, input)) = data.split_first() else {
        return;
    };
    let (upstream, client) = PAIRS[usize::from(ctl & 3)];
    let mut tools = ToolNames::default();
    tools.add(Some("mcp__fs"), "read_file");
    let s = Session {
        client,
        upstream,
        tools,
        dropped: Dropped::new(),
        include_usage: ctl & 4 != 0,
        model: "m".into(),
        echo: String::new(),
    };
    let at = usize::from(ctl >> 3) * input.len() / 31;
    let whole = run(&s, &[input]);
    assert_eq!(whole, run(&s, &[&input[..at], &input[at..]]));
    // What the client receives is UTF-8.
    assert!(std::str::from_utf8(&whole.0).is_ok());
});
