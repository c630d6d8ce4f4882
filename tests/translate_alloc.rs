//! A running translated stream allocates nothing per event (`cargo test --features
//! count-allocs --test translate_alloc`; without the feature this file is empty).
//!
//! Each pair is warmed with a first stretch of events (buffers reach their size), then fed
//! many more event by event: the allocation count may only move by the few doublings of the
//! Responses encoder's text buffer (whose `.done` events repeat the whole text), never once
//! per event.
#![cfg(feature = "count-allocs")]

use switchyard::alloc_count;
use switchyard::translate::names::ToolNames;
use switchyard::translate::stream::{Ids, Progress, Translator};
use switchyard::translate::{Api, Dropped, Session};

const EVENTS: usize = 2000;

fn chat_event(i: usize) -> String {
    format!("data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"word {i:05} \\\"q\\\"\"}},\"finish_reason\":null}}]}}\n\n")
}

fn messages_event(i: usize) -> String {
    format!("event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"word {i:05} \\\"q\\\"\"}}}}\n\n")
}

const MESSAGES_HEAD: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"c\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n";

#[test]
fn no_allocation_per_event_once_running() {
    let ids = Ids {
        trace_id: "0190b2c3-d4e5-7f00-8a1b-2c3d4e5f6a7b",
        created: 1,
    };
    for (upstream, client) in [
        (Api::Messages, Api::Chat),
        (Api::Chat, Api::Messages),
        (Api::Chat, Api::Responses),
        (Api::Messages, Api::Responses),
    ] {
        let session = Session {
            client,
            upstream,
            tools: ToolNames::default(),
            dropped: Dropped::new(),
            include_usage: true,
            model: "m".into(),
            echo: String::new(),
        };
        let events: Vec<String> = (0..EVENTS)
            .map(|i| match upstream {
                Api::Messages => messages_event(i),
                _ => chat_event(i),
            })
            .collect();
        let mut t = Translator::new(&session, &ids);
        let mut out = Vec::with_capacity(1 << 16);
        if upstream == Api::Messages {
            t.feed(MESSAGES_HEAD.as_bytes(), &mut out);
        }
        for e in &events[..100] {
            out.clear();
            let (a, b) = e.as_bytes().split_at(e.len() / 2);
            t.feed(a, &mut out);
            assert_eq!(t.feed(b, &mut out), Progress::Open);
        }
        // The least of three rounds: the count covers every thread, and the test harness's
        // own thread may allocate meanwhile.
        let allocs = (0..3)
            .map(|_| {
                let before = alloc_count::total();
                for e in &events[100..] {
                    out.clear();
                    // Split mid-event too: the framer's partial line buffer is reused.
                    let (a, b) = e.as_bytes().split_at(e.len() / 2);
                    t.feed(a, &mut out);
                    t.feed(b, &mut out);
                }
                alloc_count::total() - before
            })
            .min()
            .unwrap_or(0);
        let bound = if client == Api::Responses { 8 } else { 0 };
        assert!(
            allocs <= bound,
            "{upstream:?} -> {client:?}: {allocs} allocations over {} events",
            EVENTS - 100
        );
    }
}
