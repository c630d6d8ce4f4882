//! Shapes the references do not allow: no panic, JSON out; and the escaper against the scanner's.

use simd_json::json;
use simd_json::prelude::*;
use simd_json::OwnedValue;

use super::*;
use crate::translate::request::translate;

/// Every node of `v`, by path, replaced in turn by each value of another type.
fn each_mutation(v: &OwnedValue, f: &mut dyn FnMut(&OwnedValue)) {
    fn paths(v: &OwnedValue, at: &mut Vec<String>, all: &mut Vec<Vec<String>>) {
        all.push(at.clone());
        if let Some(o) = v.as_object() {
            for (k, c) in o.iter() {
                at.push(k.to_string());
                paths(c, at, all);
                at.pop();
            }
        } else if let Some(a) = v.as_array() {
            for (i, c) in a.iter().enumerate() {
                at.push(format!("#{i}"));
                paths(c, at, all);
                at.pop();
            }
        }
    }
    fn node<'a>(v: &'a mut OwnedValue, path: &[String]) -> &'a mut OwnedValue {
        path.iter().fold(v, |v, k| match k.strip_prefix('#') {
            Some(i) => &mut v.as_array_mut().unwrap()[i.parse::<usize>().unwrap()],
            None => v.as_object_mut().unwrap().get_mut(k.as_str()).unwrap(),
        })
    }
    let mut all = Vec::new();
    paths(v, &mut Vec::new(), &mut all);
    let others = [
        json!(null),
        json!(0),
        json!(2.5),
        json!(""),
        json!([]),
        json!({}),
        json!(true),
        json!([1]),
    ];
    for path in all.iter().skip(1) {
        for other in &others {
            let mut m = v.clone();
            *node(&mut m, path) = other.clone();
            f(&m);
        }
    }
}

#[test]
fn mutated_shapes_never_panic_and_write_json() {
    let pairs = [
        (Api::Chat, Api::Messages),
        (Api::Messages, Api::Chat),
        (Api::Responses, Api::Chat),
        (Api::Responses, Api::Messages),
    ];
    let seeds = [
        fixture("codex_responses.json"),
        r#"{"messages":[{"role":"system","content":[{"type":"text","text":"S"}]},{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]},{"role":"assistant","content":"a","thinking_blocks":[{"type":"thinking","thinking":"t","signature":"s"}],"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},{"role":"tool","tool_call_id":"c1","content":"ok"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":{"type":"function","function":{"name":"f"}},"reasoning_effort":"low","stop":["x"],"response_format":{"type":"json_schema","json_schema":{"schema":{}}}}"#.to_owned(),
        r#"{"max_tokens":100,"system":[{"type":"text","text":"S"}],"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"thinking","thinking":"t","signature":"s"},{"type":"tool_use","id":"t1","name":"f","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"r"},{"type":"image","source":{"type":"url","url":"u"}}],"is_error":true}]}],"thinking":{"type":"adaptive"},"output_config":{"effort":"low","format":{"type":"json_schema","schema":{}}},"tool_choice":{"type":"tool","name":"f"},"tools":[{"name":"f","input_schema":{"type":"object"}}]}"#.to_owned(),
    ];
    let mut scratch = Vec::new();
    let mut out = Vec::new();
    let mut runs = 0;
    for seed in seeds {
        let v: OwnedValue = simd_json::to_owned_value(&mut seed.into_bytes()).unwrap();
        each_mutation(&v, &mut |m| {
            let body = m.encode();
            for (client, upstream) in pairs {
                out.clear();
                if translate(
                    body.as_bytes(),
                    client,
                    &target(upstream),
                    &mut scratch,
                    &mut out,
                )
                .is_ok()
                {
                    let mut copy = out.clone();
                    assert!(
                        simd_json::to_owned_value(&mut copy).is_ok(),
                        "{client:?}->{upstream:?} invalid JSON for {body}: {}",
                        String::from_utf8_lossy(&out)
                    );
                }
                runs += 1;
            }
        });
    }
    assert!(runs > 1000);
}

#[test]
fn word_at_a_time_escape_matches_the_byte_by_byte_rule() {
    let mut samples: Vec<String> = vec![
        String::new(),
        "plain ascii text that is long enough for several words".into(),
        "quote\" back\\slash\nnew\rret\ttab\u{8}\u{c}\u{1}\u{1f} end".into(),
        "é東京🎉\"\u{7f}\u{80}".into(),
    ];
    // Every control and special byte at every offset of a 20-byte window.
    for c in (0u8..0x20).chain([b'"', b'\\', b' ', b'!', b'#', b'[', b']', 0x7f]) {
        for at in 0..20 {
            let mut s = vec![b'a'; 20];
            s[at] = c;
            samples.push(String::from_utf8(s).unwrap());
        }
    }
    // The rule one byte at a time: `\"`, `\\`, the short escapes, `\u00xx` for the other
    // control bytes, everything else as it is.
    let byte_by_byte = |s: &str| {
        let mut out = Vec::new();
        for &c in s.as_bytes() {
            match c {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0x08 => out.extend_from_slice(b"\\b"),
                0x0c => out.extend_from_slice(b"\\f"),
                0x00..=0x1f => out.extend_from_slice(format!("\\u{c:04x}").as_bytes()),
                _ => out.push(c),
            }
        }
        out
    };
    for s in &samples {
        let mut fast = Vec::new();
        crate::translate::request::json::escaped(&mut fast, s);
        assert_eq!(fast, byte_by_byte(s), "{s:?}");
    }
}
