//! `tokens::count` against the reference: tiktoken's algorithm (`tiktoken-rs`) with the same
//! vocabularies must give exactly the same counts, for `o200k_base` and `cl100k_base`.
//!
//! The committed fixtures cover English prose, source code, CJK, emoji (ZWJ sequences, skin
//! tones, flags, keycaps) and a mixed file of the pre-tokenizer's edge cases (contractions in
//! both cases, CamelCase, digit runs, whitespace runs before a word and at the end, CR, CRLF,
//! combining marks, titlecase letters, special-token look-alikes). A ~100 KB text is built here
//! from them deterministically, and many short strings of the edge-case alphabet are drawn.

use switchyard::tokens::{count, Encoding};
use tiktoken_rs::{cl100k_base_singleton, o200k_base_singleton, CoreBPE};

const FIXTURES: [(&str, &str); 5] = [
    ("prose", include_str!("fixtures/tokens/prose.txt")),
    ("code", include_str!("fixtures/tokens/code.txt")),
    ("cjk", include_str!("fixtures/tokens/cjk.txt")),
    ("emoji", include_str!("fixtures/tokens/emoji.txt")),
    ("mixed", include_str!("fixtures/tokens/mixed.txt")),
];

/// Pieces the pre-tokenizers treat differently, for the drawn strings.
const ALPHABET: [&str; 56] = [
    " ",
    "  ",
    "\t",
    "\n",
    "\r\n",
    "\r",
    "a",
    "Z",
    "'",
    "'s",
    "'S",
    "'ll",
    "'LL",
    "’s",
    "1",
    "12",
    "1234",
    "/",
    ".",
    ",",
    "!",
    "(",
    "{",
    "\"",
    "_",
    "-",
    "ǅ",
    "ʰ",
    "é",
    "e\u{301}",
    "\u{301}",
    "東",
    "の",
    "ア",
    "한",
    "😀",
    "👍🏽",
    "👨\u{200d}👩\u{200d}👧",
    "\u{a0}",
    "\u{3000}",
    "\u{200b}",
    "ß",
    "İ",
    "ﬁ",
    "٣",
    "Ⅻ",
    "x",
    "The",
    "HELLO",
    "fn",
    "\u{feff}",
    "\u{85}",
    "\u{2028}",
    "\u{b}",
    "\0",
    "€",
];

fn reference(enc: Encoding) -> &'static CoreBPE {
    match enc {
        Encoding::O200k => o200k_base_singleton(),
        Encoding::Cl100k => cl100k_base_singleton(),
    }
}

#[track_caller]
fn assert_same(enc: Encoding, name: &str, text: &str) {
    let ours = count(enc, text);
    let theirs = reference(enc).encode_ordinary(text).len();
    assert_eq!(
        ours,
        theirs,
        "{} count of {name} ({} bytes)",
        enc.name(),
        text.len()
    );
}

/// A fixed-seed xorshift, so the generated texts are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
    }
}

/// ~100 KB: lines of the fixtures in a shuffled order, joined by drawn separators.
fn hundred_kb() -> String {
    let lines: Vec<&str> = FIXTURES.iter().flat_map(|(_, f)| f.lines()).collect();
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut text = String::with_capacity(110_000);
    while text.len() < 100_000 {
        text.push_str(rng.pick(&lines));
        text.push_str(rng.pick(&["\n", " ", "\n\n", "  ", "\t", "\r\n", ""]));
    }
    text
}

#[test]
fn fixtures_match_tiktoken() {
    for enc in [Encoding::O200k, Encoding::Cl100k] {
        for (name, text) in FIXTURES {
            assert!(count(enc, text) > 0, "{name} is empty");
            assert_same(enc, name, text);
        }
    }
}

#[test]
fn hundred_kb_matches_tiktoken() {
    let text = hundred_kb();
    assert!(text.len() >= 100_000);
    for enc in [Encoding::O200k, Encoding::Cl100k] {
        assert_same(enc, "the 100 KB text", &text);
    }
}

#[test]
fn drawn_edge_cases_match_tiktoken() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut text = String::new();
    for i in 0..20_000 {
        text.clear();
        for _ in 0..1 + rng.next() % 16 {
            text.push_str(rng.pick(&ALPHABET));
        }
        for enc in [Encoding::O200k, Encoding::Cl100k] {
            assert_same(enc, &format!("drawn string {i} {text:?}"), &text);
        }
    }
}

#[test]
fn adversarial_inputs_match_tiktoken() {
    // Kept at 64 KB: the reference is superlinear on these (and overflows its regex stack on
    // 1 MB of spaces); the bench measures 1 MB of each with our counter.
    let n = 64 * 1024;
    let mut rng = Rng(7);
    let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
    let letters: String = (0..n)
        .map(|_| {
            char::from(
                b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"[(rng.next() % 52) as usize],
            )
        })
        .collect();
    let cases = [
        ("one repeated character", "a".repeat(n)),
        ("spaces", " ".repeat(n)),
        (
            "random bytes as lossy UTF-8",
            String::from_utf8_lossy(&bytes).into_owned(),
        ),
        ("random letters", letters),
    ];
    for enc in [Encoding::O200k, Encoding::Cl100k] {
        for (name, text) in &cases {
            assert_same(enc, name, text);
        }
    }
}
