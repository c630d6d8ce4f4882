//! Table tests, the differential corpus against simd-json, and a speed sanity check.

use simd_json::prelude::ValueAsScalar;

use super::fuzzing::differential_check;
use super::*;

/// Expected outcome of scanning one body.
enum Want {
    /// Accepted: raw text of the model span (if any) and the stream flag.
    Ok(Option<&'static str>, Result<bool, ScanError>),
    /// Rejected with this error.
    Err(ScanError),
}

fn syn(offset: u32) -> ScanError {
    ScanError::Syntax { offset }
}

fn table() -> Vec<(&'static [u8], Want)> {
    use ScanError::*;
    use Want::Err as E;
    use Want::Ok as A;
    vec![
        (
            br#"{"model":"gpt-4o","stream":true}"#,
            A(Some(r#""gpt-4o""#), Ok(true)),
        ),
        (br#"{}"#, A(None, Ok(false))),
        (
            b" \t\r\n{ \"model\" : \"m\" , \"stream\" : false }\n\r\t ",
            A(Some(r#""m""#), Ok(false)),
        ),
        (br#"{"mo\u0064el":"x"}"#, A(Some(r#""x""#), Ok(false))),
        (
            br#"{"\u006d\u006F\u0064\u0065\u006c":"x"}"#,
            A(Some(r#""x""#), Ok(false)),
        ),
        (br#"{"model\u0000":"x"}"#, A(None, Ok(false))),
        (br#"{"mod\"el":"x"}"#, A(None, Ok(false))),
        (
            br#"{"a":{"model":"x","stream":1},"b":["model"]}"#,
            A(None, Ok(false)),
        ),
        (
            br#"{"a":"\"model\":\"x\", \"stream\": true","model":"y"}"#,
            A(Some(r#""y""#), Ok(false)),
        ),
        (br#"{"model":"a","model":"b"}"#, E(DuplicateKey(Key::Model))),
        (
            br#"{"stream":true,"x":1,"stream":false}"#,
            E(DuplicateKey(Key::Stream)),
        ),
        (
            br#"{"mo\u0064el":"a","model":"b"}"#,
            E(DuplicateKey(Key::Model)),
        ),
        (br#"{"tools":[],"tools":[]}"#, E(DuplicateKey(Key::Tools))),
        (br#"{"x":1,"x":2}"#, A(None, Ok(false))),
        // Grammar errors win over duplicates.
        (br#"{"model":"a","model":"b",}"#, E(syn(25))),
        (br#"{"stream":"yes"}"#, A(None, Err(WrongType(Key::Stream)))),
        (br#"{"stream":null}"#, A(None, Ok(false))),
        (br#"{"stream":1}"#, A(None, Err(WrongType(Key::Stream)))),
        (br#"{"model":null}"#, A(Some("null"), Ok(false))),
        (br#"{"model":["x"]}"#, A(Some(r#"["x"]"#), Ok(false))),
        (br#"{"a":1} x"#, E(TrailingData)),
        (br#"{"a":1}{}"#, E(TrailingData)),
        (br#"{"a":1}}"#, E(TrailingData)),
        (b"{\"a\":1}\x0c", E(TrailingData)),
        (br#"[{"model":"x"}]"#, E(NotAnObject)),
        (br#""model""#, E(NotAnObject)),
        (b"\xef\xbb\xbf{}", E(NotAnObject)),
        (b"", E(Empty)),
        (b" \n\t\r ", E(Empty)),
        (b"{\"a\":\"\xff\"}", E(InvalidUtf8)),
        (b"{\"a\":\"\xed\xa0\x80\"}", E(InvalidUtf8)),
        (b"{\"a\":\"x\x01\"}", E(ControlCharInString { offset: 7 })),
        (b"{\"a\":\"x\ny\"}", E(ControlCharInString { offset: 7 })),
        (b"{\"a\x1f\":1}", E(ControlCharInString { offset: 3 })),
        (b"{\"a\":\"\x7f\"}", A(None, Ok(false))),
        (br#"{"a":"\u0000"}"#, A(None, Ok(false))),
        (
            br#"{"model":"\ud83d\ude00-\u00e9"}"#,
            A(Some(r#""\ud83d\ude00-\u00e9""#), Ok(false)),
        ),
        (br#"{"a":"\ud800"}"#, E(syn(6))),
        (br#"{"a":"\udc00"}"#, E(syn(6))),
        (br#"{"a":"\ud800\u0041"}"#, E(syn(6))),
        (br#"{"a":"\ud800\udbff"}"#, E(syn(6))),
        (br#"{"a":"\u00g0"}"#, E(syn(6))),
        (br#"{"a":"\x"}"#, E(syn(6))),
        (br#"{"a":"\'"}"#, E(syn(6))),
        (br#"{"a":"abc"#, E(syn(9))),
        (br#"{"a":"abc\"#, E(syn(9))),
        (
            br#"{"a":-0,"b":0.0e-0,"c":1E+2,"d":123456789012345678901234567890,"e":1e400}"#,
            A(None, Ok(false)),
        ),
        (br#"{"a":01}"#, E(syn(6))),
        (br#"{"a":-}"#, E(syn(6))),
        (br#"{"a":1.}"#, E(syn(7))),
        (br#"{"a":.5}"#, E(syn(5))),
        (br#"{"a":+1}"#, E(syn(5))),
        (br#"{"a":1e}"#, E(syn(7))),
        (br#"{"a":1e+}"#, E(syn(8))),
        (br#"{"a":NaN}"#, E(syn(5))),
        (br#"{"a":Infinity}"#, E(syn(5))),
        (br#"{"a":0x10}"#, E(syn(6))),
        (br#"{"a":tru}"#, E(syn(5))),
        (br#"{"a":truex}"#, E(syn(9))),
        (br#"{"a":True}"#, E(syn(5))),
        (br#"{"a":nul}"#, E(syn(5))),
        (br#"{"a":[1,]}"#, E(syn(8))),
        (br#"{"a":[,1]}"#, E(syn(6))),
        (br#"{"a":{"b"}}"#, E(syn(9))),
        (br#"{"a":{"b":1,}}"#, E(syn(12))),
        (br#"{"a":[}"#, E(syn(6))),
        (br#"{"a":{]}"#, E(syn(6))),
        (br#"{"a":1,}"#, E(syn(7))),
        (br#"{,}"#, E(syn(1))),
        (br#"{"a" 1}"#, E(syn(5))),
        (br#"{a:1}"#, E(syn(1))),
        (br#"{'a':1}"#, E(syn(1))),
        (br#"{"a":1"#, E(syn(6))),
        (br#"{"#, E(syn(1))),
        (b"{\"a\":\x0b1}", E(syn(5))),
        (b"{\"a\":\xc2\xa01}", E(syn(5))),
        (br#"{"a":[[[]],{"b":[{}]}],"c":""}"#, A(None, Ok(false))),
    ]
}

#[test]
fn table_cases() {
    for (body, want) in table() {
        let got = scan_top_level(body);
        let show = String::from_utf8_lossy(body);
        match (want, got) {
            (Want::Ok(model, stream), Ok(top)) => {
                let raw = top.model.and_then(|s| s.bytes(body));
                assert_eq!(raw, model.map(str::as_bytes), "model span of {show}");
                assert_eq!(top.stream_flag(body), stream, "stream of {show}");
            }
            (Want::Err(e), Err(g)) => assert_eq!(g, e, "error of {show}"),
            (Want::Ok(..), Err(g)) => panic!("{show}: rejected with {g:?}"),
            (Want::Err(e), Ok(t)) => panic!("{show}: accepted {t:?}, want {e:?}"),
        }
        differential_check(body).unwrap_or_else(|e| panic!("{show}: {e}"));
    }
}

#[test]
fn model_str_decodes() {
    type Case = (&'static [u8], Result<Option<&'static str>, ScanError>, bool);
    let cases: &[Case] = &[
        (br#"{"model":"gpt-4o"}"#, Ok(Some("gpt-4o")), true),
        (
            br#"{"model":"\ud83d\ude00\u00e9\n\/"}"#,
            Ok(Some("\u{1F600}\u{e9}\n/")),
            false,
        ),
        (br#"{"model":"a\u0000b"}"#, Ok(Some("a\0b")), false),
        (
            br#"{"model":"\uDBFF\uDFFF"}"#,
            Ok(Some("\u{10FFFF}")),
            false,
        ),
        (
            br#"{"model":"caf\u00e9 \u20ac"}"#,
            Ok(Some("café €")),
            false,
        ),
        ("{\"model\":\"café\"}".as_bytes(), Ok(Some("café")), true),
        (br#"{"x":1}"#, Ok(None), true),
        (
            br#"{"model":null}"#,
            Err(ScanError::WrongType(Key::Model)),
            true,
        ),
        (
            br#"{"model":5}"#,
            Err(ScanError::WrongType(Key::Model)),
            true,
        ),
    ];
    for (body, want, borrowed) in cases {
        let top = scan_top_level(body).expect("valid");
        let got = top.model_str(body);
        assert_eq!(got.as_ref().map(|o| o.as_deref()).map_err(|e| *e), *want);
        if let Ok(Some(s)) = got {
            assert_eq!(matches!(s, Cow::Borrowed(_)), *borrowed);
        }
    }
}

#[test]
fn uint_values() {
    let body = br#"{"max_tokens":1024,"max_completion_tokens":0,"max_output_tokens":-1,"store":18446744073709551615,"input":18446744073709551616,"system":1.0,"tools":"5"}"#;
    let top = scan_top_level(body).expect("valid");
    assert_eq!(top.uint(body, Key::MaxTokens), Some(1024));
    assert_eq!(top.uint(body, Key::MaxCompletionTokens), Some(0));
    assert_eq!(top.uint(body, Key::MaxOutputTokens), None);
    assert_eq!(top.uint(body, Key::Store), Some(u64::MAX));
    assert_eq!(top.uint(body, Key::Input), None);
    assert_eq!(top.uint(body, Key::System), None);
    assert_eq!(top.uint(body, Key::Tools), None);
    assert_eq!(top.uint(body, Key::Messages), None);
    assert_eq!(top.key_count, 7);
}

#[test]
fn every_key_is_found() {
    let mut body = b"{".to_vec();
    for (n, k) in Key::ALL.iter().enumerate() {
        if n > 0 {
            body.push(b',');
        }
        push_json_string(&mut body, k.json_name());
        body.extend_from_slice(format!(":{n}").as_bytes());
    }
    body.extend_from_slice(br#","other":[]}"#);
    let top = scan_top_level(&body).expect("valid");
    assert_eq!(top.key_count as usize, Key::ALL.len() + 1);
    for (n, k) in Key::ALL.iter().enumerate() {
        assert_eq!(Key::from_name(k.json_name().as_bytes()), Some(*k));
        assert_eq!(top.uint(&body, *k), Some(n as u64), "{k:?}");
    }
}

fn nested(depth_inside: usize) -> Vec<u8> {
    let mut b = br#"{"a":"#.to_vec();
    for n in 0..depth_inside {
        b.extend_from_slice(if n % 2 == 0 { b"[" } else { br#"{"k":"# });
    }
    b.push(b'1');
    for n in (0..depth_inside).rev() {
        b.push(if n % 2 == 0 { b']' } else { b'}' });
    }
    b.push(b'}');
    b
}

#[test]
fn depth_limit() {
    let ok = nested(MAX_DEPTH as usize - 1);
    assert!(scan_top_level(&ok).is_ok());
    differential_check(&ok).expect("agree");
    let deep = nested(MAX_DEPTH as usize);
    assert_eq!(scan_top_level(&deep), Err(ScanError::TooDeep));
    differential_check(&deep).expect("allowed");
    // Far deeper than any call stack would survive if the skipper recursed.
    let hostile = vec![b'['; 1 << 20];
    let mut body = br#"{"a":"#.to_vec();
    body.extend_from_slice(&hostile);
    assert_eq!(scan_top_level(&body), Err(ScanError::TooDeep));
}

#[test]
fn splice_replaces_model() {
    let body =
        br#"{"messages":[{"role":"user","content":"model"}], "model" : "gpt-4o" ,"stream":true}"#;
    let top = scan_top_level(body).expect("valid");
    let mut name = Vec::new();
    push_json_string(&mut name, "claude \"x\"\\\n\u{1}é");
    assert_eq!(name, "\"claude \\\"x\\\"\\\\\\n\\u0001é\"".as_bytes());
    let mut out = b"prefix:".to_vec();
    splice(body, top.model.expect("model"), &name, &mut out);
    let spliced = &out[7..];
    let again = scan_top_level(spliced).expect("still valid");
    assert_eq!(
        again.model_str(spliced).expect("string").as_deref(),
        Some("claude \"x\"\\\n\u{1}é")
    );
    assert_eq!(again.stream_flag(spliced), Ok(true));
    assert!(out.starts_with(b"prefix:{\"messages\""));
    // Out-of-range spans are clamped, never a panic.
    let mut out = Vec::new();
    splice(b"abc", ValueSpan { start: 5, end: 9 }, b"X", &mut out);
    assert_eq!(out, b"abcX");
    let mut out = Vec::new();
    splice(b"abc", ValueSpan { start: 2, end: 1 }, b"X", &mut out);
    assert_eq!(out, b"aXbc");
}

#[test]
fn push_json_string_round_trips() {
    let all: String = (0u32..0x100)
        .filter_map(char::from_u32)
        .chain(['\u{2028}', '\u{1F600}'])
        .collect();
    let mut out = Vec::new();
    push_json_string(&mut out, &all);
    let mut copy = out.clone();
    let v = simd_json::to_borrowed_value(&mut copy).expect("valid JSON string");
    assert_eq!(v.as_str(), Some(all.as_str()));
    assert!(out.starts_with(br#""\u0000\u0001"#));
}

#[test]
fn messages_are_usable() {
    let errs = [
        ScanError::Empty,
        ScanError::NotAnObject,
        syn(3),
        ScanError::InvalidUtf8,
        ScanError::ControlCharInString { offset: 1 },
        ScanError::DuplicateKey(Key::Model),
        ScanError::TooDeep,
        ScanError::WrongType(Key::Stream),
        ScanError::TrailingData,
        ScanError::TooLarge,
    ];
    for e in errs {
        assert!(!e.message().is_empty());
        assert!(e.to_string().starts_with(e.message()));
    }
}

/// Valid request bodies the mutator starts from.
const SEEDS: &[&str] = &[
    r#"{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are helpful."},{"role":"user","content":"Say \"hi\" \u00e9\n"}],"stream":true,"max_tokens":256,"temperature":0.7,"stop":null}"#,
    r#"{
  "model": "claude-3-5-sonnet-20241022",
  "max_tokens": 1024,
  "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
  "messages": [{"role": "user", "content": [{"type": "text", "text": "\ud83d\ude00 model: \"x\""}]}],
  "tools": [{"name": "get", "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}],
  "stream": false
}"#,
    r#"{"model":"o3","input":[{"role":"user","content":"hello"}],"instructions":"terse","previous_response_id":"resp_123","store":true,"max_output_tokens":4096,"response_format":{"type":"json_object"},"x":[-0.5e-3,1E10,0,true,false]}"#,
    r#"{"mo\u0064el":"a\/b","max_completion_tokens":12,"n":1,"logit_bias":{"50256":-100}}"#,
];

/// Snippets the mutator inserts: structure, escapes, edge numbers, odd bytes.
const SNIPPETS: &[&[u8]] = &[
    b"\"model\":\"z\",",
    b"\"stream\":true,",
    b",\"stream\":null",
    b"\\u0064",
    b"\\ud800",
    b"\\udc00",
    b"\\ud83d\\ude00",
    b"[",
    b"]",
    b"{",
    b"}",
    b",",
    b":",
    b"\"",
    b"\\",
    b" ",
    b"\t",
    b"\n",
    b"\r",
    b"1e400",
    b"-0",
    b"01",
    b"18446744073709551616",
    b"9223372036854775808",
    b"0.5",
    b"true",
    b"null",
    b"\xc3\xa9",
    b"\xff",
    b"\xe2\x82",
    b"\x00",
    b"\x1f",
    b"\x0c",
    b"\x7f",
    b"\"\"",
    b"{}",
    b"[]",
];

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, body: &mut Vec<u8>) {
    let at = rng.below(body.len() + 1);
    match rng.below(6) {
        0 if !body.is_empty() => {
            let at = at.min(body.len() - 1);
            body[at] = SNIPPETS[rng.below(SNIPPETS.len())][0];
        }
        1 if !body.is_empty() => {
            body.remove(at.min(body.len() - 1));
        }
        2 => body.truncate(at),
        3 => {
            let end = (at + rng.below(40)).min(body.len());
            let piece = body[at..end].to_vec();
            body.splice(at..at, piece);
        }
        4 if !body.is_empty() => {
            let at = at.min(body.len() - 1);
            body[at] ^= 1 << rng.below(8);
        }
        _ => {
            let s = SNIPPETS[rng.below(SNIPPETS.len())];
            body.splice(at..at, s.iter().copied());
        }
    }
}

/// Random valid JSON value, for bodies that mostly parse.
fn gen_value(rng: &mut Rng, out: &mut Vec<u8>, depth: u32) {
    match rng.below(if depth > 4 { 5 } else { 7 }) {
        0 => out.extend_from_slice(SNIPPETS[19 + rng.below(6)]),
        1 => out.extend_from_slice([b"true".as_slice(), b"false", b"null"][rng.below(3)]),
        2 | 3 => {
            let s: String = (0..rng.below(12))
                .map(|_| ['a', '"', '\\', '\n', 'é', '\u{1}', '😀', 'm'][rng.below(8)])
                .collect();
            push_json_string(out, &s);
        }
        4 => out.extend_from_slice(
            [
                br#""\u0041\ud83d\ude00""#.as_slice(),
                br#""\/""#,
                b"-12.5E+3",
            ][rng.below(3)],
        ),
        5 => {
            out.push(b'[');
            for n in 0..rng.below(4) {
                if n > 0 {
                    out.push(b',');
                }
                gen_value(rng, out, depth + 1);
            }
            out.push(b']');
        }
        _ => gen_object(rng, out, depth + 1),
    }
}

fn gen_object(rng: &mut Rng, out: &mut Vec<u8>, depth: u32) {
    const NAMES: &[&str] = &[
        r#""model""#,
        r#""stream""#,
        r#""max_tokens""#,
        r#""mo\u0064el""#,
        r#""messages""#,
        r#""x""#,
        r#""""#,
        r#""stre\u0061m""#,
        r#""store""#,
        r#""y\n""#,
    ];
    out.push(b'{');
    for n in 0..rng.below(5) {
        if n > 0 {
            out.push(b',');
        }
        out.extend_from_slice(NAMES[rng.below(NAMES.len())].as_bytes());
        out.extend_from_slice([b":".as_slice(), b" : ", b":\n"][rng.below(3)]);
        gen_value(rng, out, depth);
    }
    out.push(b'}');
}

/// `SCAN_DIFF_ROUNDS=N` multiplies the corpus (with a different seed per round) for a
/// longer local soak.
#[test]
fn differential_corpus() {
    let rounds: u64 = std::env::var("SCAN_DIFF_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    for round in 0..rounds {
        differential_round(0x9E37_79B9_7F4A_7C15 ^ round.wrapping_mul(0xA24B_AED4_963E_E407));
    }
}

fn differential_round(seed: u64) {
    let mut rng = Rng(seed);
    let (mut accepted, mut total) = (0, 0);
    let mut check = |body: &[u8]| {
        total += 1;
        accepted += usize::from(scan_top_level(body).is_ok());
        if let Err(e) = differential_check(body) {
            panic!("{e}\nbody: {:?}", String::from_utf8_lossy(body));
        }
    };
    for seed in SEEDS {
        check(seed.as_bytes());
        for _ in 0..1500 {
            let mut body = seed.as_bytes().to_vec();
            for _ in 0..1 + rng.below(3) {
                mutate(&mut rng, &mut body);
            }
            check(&body);
        }
    }
    for _ in 0..3000 {
        let mut body = Vec::new();
        gen_object(&mut rng, &mut body, 1);
        check(&body);
        if rng.below(2) == 0 {
            mutate(&mut rng, &mut body);
            check(&body);
        }
    }
    // Both paths must be exercised, not just the rejections.
    assert!(accepted > total / 5, "{accepted} of {total} accepted");
    assert!(accepted < total * 4 / 5, "{accepted} of {total} accepted");
}

/// `cargo test --release --lib scan::tests::speed -- --ignored --nocapture`
#[test]
#[ignore = "timing sanity check; run with --release"]
fn speed() {
    let small = SEEDS[1].as_bytes();
    let mut big = br#"{"model":"gpt-4o","messages":["#.to_vec();
    let text = "Lorem ipsum dolor sit amet, \\\"consectetur\\\" adipiscing elit. ".repeat(160);
    for n in 0..100 {
        if n > 0 {
            big.push(b',');
        }
        big.extend_from_slice(format!(r#"{{"role":"user","content":"{text}"}}"#).as_bytes());
    }
    big.extend_from_slice(br#"],"stream":true}"#);
    let mut chat = br#"{"model":"gpt-4o-mini","messages":["#.to_vec();
    for n in 0..8 {
        if n > 0 {
            chat.push(b',');
        }
        chat.extend_from_slice(
            format!(r#"{{"role":"{}","content":"Turn {n}: please summarise the following paragraph.\nIt has \"quotes\" and a newline, then more words to make it longer than a line."}}"#, if n % 2 == 0 { "user" } else { "assistant" }).as_bytes(),
        );
    }
    chat.extend_from_slice(br#"],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}],"stream":true,"max_tokens":512,"temperature":0.2}"#);
    for (name, body, iters) in [
        ("small", small, 200_000u32),
        ("chat", chat.as_slice(), 200_000),
        ("big", big.as_slice(), 500),
    ] {
        assert!(scan_top_level(body).is_ok());
        let t = std::time::Instant::now();
        for _ in 0..iters {
            std::hint::black_box(scan_top_level(std::hint::black_box(body)).is_ok());
        }
        let per = t.elapsed() / iters;
        let gbps = body.len() as f64 / per.as_secs_f64() / 1e9;
        println!(
            "{name}: {} bytes, {per:?} per scan, {gbps:.2} GB/s",
            body.len()
        );
    }
}

#[test]
fn string_special_finders_agree() {
    use super::lex::{find_string_special, find_string_special_scalar, find_string_special_swar};
    let mut rng = Rng(7);
    for _ in 0..20_000 {
        let len = rng.below(70);
        let body: Vec<u8> = (0..len)
            .map(|_| match rng.below(8) {
                0 => [b'"', b'\\', 0x00, 0x1f, 0x20, 0x7f, 0x80, 0xff][rng.below(8)],
                _ => b'a' + rng.below(26) as u8,
            })
            .collect();
        let from = rng.below(len + 1);
        let want = find_string_special_scalar(&body, from);
        assert_eq!(
            find_string_special(&body, from),
            want,
            "{body:?} from {from}"
        );
        assert_eq!(
            find_string_special_swar(&body, from),
            want,
            "{body:?} from {from}"
        );
    }
}

/// Inputs fuzz/json_scan found (fuzz/regressions/json_scan): exponents past 2^32, which
/// simd-json rejects and RFC 8259 allows; the differential check must allow the difference.
#[test]
fn fuzz_regressions_huge_exponents() {
    for body in [
        &br#"{"":0E44444644446}"#[..],
        br#"{"a":1e-444444444444}"#,
        br#"{"max_;ts":184467440737090,"n":-0.0e-467440737090,"n":-0.0e5}"#,
    ] {
        assert!(
            scan_top_level(body).is_ok(),
            "{}",
            String::from_utf8_lossy(body)
        );
        super::fuzzing::differential_check(body).unwrap();
    }
}
