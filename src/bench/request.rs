//! The request every bench request sends: built once before the run (head and body in one
//! buffer, written whole), with a deterministic synthetic prompt of an exact token count.

use super::args::{Api, BenchOptions};
use crate::http1::write::{push_usize, write_header, write_request_line};
use crate::tokens;

/// Common English words, each one token (with its leading space) in `o200k_base` and
/// `cl100k_base`; the prompt cycles through them, so it is the same on every run.
const WORDS: [&str; 32] = [
    "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "and", "then", "runs", "into",
    "a", "small", "green", "field", "where", "many", "birds", "sing", "every", "morning", "before",
    "the", "sun", "rises", "above", "old", "trees", "near", "river", "bank",
];

/// A prompt of exactly `n` tokens in `enc` (an empty one for 0): words are added, then the
/// count is checked with the tokenizer and the length corrected until it matches.
pub fn synthetic_prompt(enc: tokens::Encoding, n: usize) -> String {
    let mut words: Vec<&str> = (0..n).map(|i| WORDS[i % WORDS.len()]).collect();
    let text = |w: &[&str]| w.join(" ");
    // Each word is one token, so this converges in a few steps; the bound only guards a
    // tokenizer that merged words unexpectedly.
    for _ in 0..64 {
        let got = tokens::count(enc, &text(&words));
        if got == n {
            break;
        }
        if got > n {
            words.pop();
        } else {
            words.push(WORDS[words.len() % WORDS.len()]);
        }
    }
    text(&words)
}

/// Appends `s` as a JSON string (the prompt and model are plain, but a model name from the
/// command line may hold anything).
fn push_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// The JSON body for the options' API.
pub fn body(o: &BenchOptions, prompt: &str) -> Vec<u8> {
    let mut b = Vec::with_capacity(prompt.len() + 256);
    b.extend_from_slice(b"{\"model\":");
    push_json_str(&mut b, &o.model);
    match o.api {
        Api::Chat | Api::Messages => {
            b.extend_from_slice(b",\"messages\":[{\"role\":\"user\",\"content\":");
            push_json_str(&mut b, prompt);
            b.extend_from_slice(b"}],\"max_tokens\":");
        }
        Api::Responses => {
            b.extend_from_slice(b",\"input\":");
            push_json_str(&mut b, prompt);
            b.extend_from_slice(b",\"max_output_tokens\":");
        }
    }
    push_usize(&mut b, o.max_tokens as usize);
    if o.stream {
        b.extend_from_slice(b",\"stream\":true");
        if o.api == Api::Chat {
            // Without it chat streams carry no usage, and tokens would only be counted.
            b.extend_from_slice(b",\"stream_options\":{\"include_usage\":true}");
        }
    }
    b.push(b'}');
    b
}

/// The whole request: head (auth in the API's form, the extra headers) and body.
pub fn build(o: &BenchOptions) -> Vec<u8> {
    let enc = tokens::encoding_for(&o.model);
    let prompt = synthetic_prompt(enc, o.prompt_tokens);
    let body = body(o, &prompt);
    let mut r = Vec::with_capacity(body.len() + 512);
    write_request_line(&mut r, b"POST", o.path.as_bytes());
    write_header(&mut r, b"host", o.url.host_header().as_bytes());
    write_header(&mut r, b"content-type", b"application/json");
    if o.stream {
        write_header(&mut r, b"accept", b"text/event-stream");
    }
    if let Some(t) = &o.token {
        match o.api {
            Api::Messages => write_header(&mut r, b"x-api-key", t.as_bytes()),
            _ => write_header(&mut r, b"authorization", format!("Bearer {t}").as_bytes()),
        }
    }
    if o.api == Api::Messages
        && !o
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("anthropic-version"))
    {
        write_header(&mut r, b"anthropic-version", b"2023-06-01");
    }
    for (k, v) in &o.headers {
        write_header(&mut r, k.as_bytes(), v.as_bytes());
    }
    crate::http1::write::write_header_usize(&mut r, b"content-length", body.len());
    r.extend_from_slice(b"\r\n");
    r.extend_from_slice(&body);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_has_the_asked_token_count() {
        for enc in [tokens::Encoding::O200k, tokens::Encoding::Cl100k] {
            for n in [0, 1, 7, 100, 1000] {
                let p = synthetic_prompt(enc, n);
                assert_eq!(tokens::count(enc, &p), n, "{enc:?} {n}");
                assert_eq!(p, synthetic_prompt(enc, n), "deterministic");
            }
        }
    }

    #[test]
    fn bodies_per_api() {
        let pairs = [
            ("--url", "http://h:1".to_string()),
            ("--stream", String::new()),
        ];
        let mut o = BenchOptions::parse(&pairs, &|_| None).unwrap();
        o.max_tokens = 9;
        let b = String::from_utf8(body(&o, "hi \"x\"")).unwrap();
        assert_eq!(
            b,
            r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi \"x\""}],"max_tokens":9,"stream":true,"stream_options":{"include_usage":true}}"#
        );
        o.api = Api::Responses;
        o.stream = false;
        let b = String::from_utf8(body(&o, "hi")).unwrap();
        assert_eq!(
            b,
            r#"{"model":"gpt-4o-mini","input":"hi","max_output_tokens":9}"#
        );
    }
}
