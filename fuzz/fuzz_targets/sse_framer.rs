//! The SSE framer: no panic on any input, and the events do not depend on how the input is
//! split (the first byte picks the split point).
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::translate::sse::Framer;

fn frame(pieces: &[&[u8]]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut f = Framer::new();
    let mut got = Vec::new();
    let mut cb = |e: &[u8], d: &[u8]| {
        got.push((e.to_vec(), d.to_vec()));
        true
    };
    for p in pieces {
        if f.feed(p, &mut cb).is_err() {
            return got;
        }
    }
    f.finish(&mut cb);
    got
}

fuzz_target!(|data: &[u8]| {
    let Some((&at, input)) = data.split_first() else {
        return;
    };
    let at = usize::from(at) % (input.len() + 1);
    let whole = frame(&[input]);
    assert_eq!(whole, frame(&[&input[..at], &input[at..]]));
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(whole, frame(&bytes));
});
