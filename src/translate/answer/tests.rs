//! Golden whole answers (`tests/fixtures/translate/answers/`): `<case>.<upstream>.json` as
//! the provider answers, `<case>.<upstream>.<client>.json` as the client must receive it
//! (checked by hand against the client API's reference), compared as JSON values.
//! `SWITCHYARD_BLESS=1` writes missing expected files (to be reviewed before committing).

use super::*;
use crate::translate::stream::tests::{session, IDS};

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/translate/answers"
);

fn json(b: &[u8]) -> simd_json::OwnedValue {
    let mut b = b.to_vec();
    simd_json::to_owned_value(&mut b)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&b)))
}

fn name(a: Api) -> &'static str {
    match a {
        Api::Chat => "chat",
        Api::Messages => "messages",
        Api::Responses => "responses",
    }
}

#[test]
fn golden_answers() {
    let bless = std::env::var_os("SWITCHYARD_BLESS").is_some();
    let pairs = [
        (Api::Messages, Api::Chat),
        (Api::Chat, Api::Messages),
        (Api::Chat, Api::Responses),
        (Api::Messages, Api::Responses),
    ];
    for case in ["tools", "length"] {
        for (up, client) in pairs {
            let body = std::fs::read(format!("{DIR}/{case}.{}.json", name(up))).unwrap();
            let (mut scratch, mut out) = (Vec::new(), Vec::new());
            let usage = translate(&body, &session(up, client), &IDS, &mut scratch, &mut out)
                .unwrap()
                .usage
                .unwrap();
            if case == "tools" {
                assert_eq!((usage.input, usage.cache_read, usage.output), (51, 40, 20));
            }
            let path = format!("{DIR}/{case}.{}.{}.json", name(up), name(client));
            match std::fs::read(&path) {
                Ok(want) => assert_eq!(
                    json(&out),
                    json(&want),
                    "{path}\n{}",
                    String::from_utf8_lossy(&out)
                ),
                Err(_) if bless => std::fs::write(&path, &out).unwrap(),
                Err(e) => panic!("{path}: {e}"),
            }
        }
    }
}

#[test]
fn malformed_answers_are_refused() {
    let s = session(Api::Chat, Api::Messages);
    let (mut scratch, mut out) = (Vec::new(), Vec::new());
    for body in [
        &b"not json"[..],
        br#"{"choices":[]}"#,
        br#"{"choices":[{"message":{"tool_calls":[{"id":"c","function":{"name":"f","arguments":"[1"}}]}}]}"#,
    ] {
        assert!(translate(body, &s, &IDS, &mut scratch, &mut out).is_err());
        assert!(out.is_empty());
    }
}

#[test]
fn upstream_errors_take_the_clients_shape() {
    let openai = br#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
    let anthropic =
        br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
    let table: [(u16, &[u8], Api, &str); 8] = [
        (
            429,
            openai,
            Api::Messages,
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"Rate limit reached"}}"#,
        ),
        (
            429,
            anthropic,
            Api::Chat,
            r#"{"error":{"message":"Overloaded","type":"rate_limit_error","param":null,"code":null}}"#,
        ),
        (
            400,
            openai,
            Api::Responses,
            r#"{"error":{"message":"Rate limit reached","type":"invalid_request_error","param":null,"code":"rate_limit_exceeded"}}"#,
        ),
        (
            401,
            anthropic,
            Api::Chat,
            r#"{"error":{"message":"Overloaded","type":"authentication_error","param":null,"code":null}}"#,
        ),
        (
            403,
            openai,
            Api::Messages,
            r#"{"type":"error","error":{"type":"permission_error","message":"Rate limit reached"}}"#,
        ),
        (
            404,
            b"<html>nope</html>",
            Api::Messages,
            r#"{"type":"error","error":{"type":"not_found_error","message":"the upstream answered with status 404"}}"#,
        ),
        (
            413,
            anthropic,
            Api::Messages,
            r#"{"type":"error","error":{"type":"request_too_large","message":"Overloaded"}}"#,
        ),
        (
            413,
            anthropic,
            Api::Chat,
            r#"{"error":{"message":"Overloaded","type":"invalid_request_error","param":null,"code":null}}"#,
        ),
    ];
    for (status, body, client, want) in table {
        let (mut scratch, mut out) = (Vec::new(), Vec::new());
        error(status, body, client, &mut scratch, &mut out);
        assert_eq!(json(&out), json(want.as_bytes()), "{status} {client:?}");
    }
    for (status, anthropic, want) in [
        (422, false, "invalid_request_error"),
        (500, false, "api_error"),
        (529, true, "overloaded_error"),
        (503, true, "api_error"),
    ] {
        assert_eq!(status_error_type(status, anthropic), want);
    }
}
