//! `scan_top_level` against simd-json: they must accept the same bodies and agree on every
//! tracked member, up to the disagreements `scan::fuzzing` allows and documents.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(msg) = switchyard::scan::fuzzing::differential_check(data) {
        panic!("scan_top_level disagrees with simd-json: {msg}");
    }
});
