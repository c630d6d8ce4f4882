//! Request translation on arbitrary bodies: every client API to every provider API must
//! answer a body or a refusal, never panic, and a body written must be valid JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::translate::request::{translate, Target};
use switchyard::translate::Api;

const PAIRS: [(Api, Api); 4] = [
    (Api::Chat, Api::Messages),
    (Api::Messages, Api::Chat),
    (Api::Responses, Api::Chat),
    (Api::Responses, Api::Messages),
];

fuzz_target!(|data: &[u8]| {
    let mut scratch = Vec::new();
    let mut out = Vec::new();
    for (client, upstream) in PAIRS {
        let target = Target {
            upstream,
            model_json: b"\"m\"",
            client_model: "m",
            max_output_tokens: 4096,
        };
        out.clear();
        if translate(data, client, &target, &mut scratch, &mut out).is_ok() {
            let mut copy = out.clone();
            let parsed = simd_json::to_owned_value(&mut copy).map(|_| ());
            if let Err(e) = parsed {
                panic!(
                    "{client:?} -> {upstream:?} wrote invalid JSON ({e}): {}",
                    String::from_utf8_lossy(&out)
                );
            }
        }
    }
});
