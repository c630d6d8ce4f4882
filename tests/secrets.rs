//! Credentials cross the gateway one way only (`gateway.md`, "Requests" and "Errors"): the
//! provider key goes upstream in the provider's own header, the client's token never does,
//! and the provider key never comes back to a client or lands in the log, even when the
//! provider echoes it. The provider is a capture upstream that records the exact bytes.

mod common;

use common::*;
use simd_json::prelude::*;

const CHAT: &str = "/v1/chat/completions";
const MESSAGES: &str = "/v1/messages";

/// Markers of the provider keys: the whole keys and their distinctive middle parts.
fn key_markers() -> Vec<&'static str> {
    vec![OPENAI_KEY, ANTHROPIC_KEY, "SECRET123", "SECRET456"]
}

fn assert_no_key(what: &str, bytes: &[u8]) {
    for k in key_markers() {
        assert!(
            !contains(bytes, k.as_bytes()),
            "{what} contains provider key material {k:?}:\n{}",
            String::from_utf8_lossy(bytes)
        );
    }
}

/// Every byte a response put on the wire.
fn wire(r: &Response) -> Vec<u8> {
    let mut v = r.raw_head.clone();
    v.extend_from_slice(&r.raw_body);
    v
}

/// A chat request carrying the client token both ways an SDK might.
fn chat_request(body: &str) -> Vec<u8> {
    post(CHAT, TOKEN, body, &format!("x-api-key: {TOKEN}\r\n"))
}

/// An Anthropic request carrying the client token both ways.
fn messages_request(body: &str) -> Vec<u8> {
    format!(
        "POST {MESSAGES} HTTP/1.1\r\nHost: gw\r\nx-api-key: {TOKEN}\r\nAuthorization: Bearer {TOKEN}\r\nanthropic-version: 2023-06-01\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn gateway_with_debug_log(capture: &Capture) -> Server {
    let mut env = key_env().to_vec();
    env.push(("SWITCHYARD_LOG", "debug"));
    Server::serve(
        &standard_config(&capture.openai_base(), &capture.anthropic_base()),
        &env,
    )
}

#[test]
fn provider_auth_goes_upstream_client_token_does_not_and_model_is_spliced() {
    let capture = Capture::ok();
    let gw = gateway_with_debug_log(&capture);

    // Odd spacing and key order, so "the same bytes" is a real check.
    let chat = r#"{ "messages" : [ {"role":"user","content":"keep \"these\" bytes é"} ],
  "model" : "gpt-test", "temperature":0.25,"stream":false }"#;
    let msgs = r#"{"max_tokens":16,"model":"claude-test","messages":[{"role":"user","content":"hi"}],"system":"be brief"}"#;

    let r = roundtrip(gw.addr, &chat_request(chat));
    assert_eq!(r.status, 200, "{}", r.dump());
    assert_no_key("the chat response", &wire(&r));
    let r = roundtrip(gw.addr, &messages_request(msgs));
    assert_eq!(r.status, 200, "{}", r.dump());
    assert_no_key("the messages response", &wire(&r));
    let r = roundtrip(gw.addr, &chat_request(&chat_body("gpt-test", true)));
    assert_eq!(r.status, 200, "{}", r.dump());
    assert_no_key("the chat stream", &wire(&r));

    let seen = capture.requests();
    assert_eq!(seen.len(), 3);
    let (oa, an, st) = (&seen[0], &seen[1], &seen[2]);

    // (a) the provider's own credentials.
    assert_eq!(oa.path(), "/v1/chat/completions");
    assert_eq!(
        oa.header("authorization"),
        Some(format!("Bearer {OPENAI_KEY}").as_str()),
        "{}",
        oa.head
    );
    assert_eq!(oa.header("x-api-key"), None, "{}", oa.head);
    assert_eq!(an.path(), "/v1/messages");
    assert_eq!(an.header("x-api-key"), Some(ANTHROPIC_KEY), "{}", an.head);
    assert!(
        an.header("anthropic-version")
            .is_some_and(|v| !v.is_empty()),
        "no anthropic-version upstream:\n{}",
        an.head
    );
    assert_eq!(an.header("authorization"), None, "{}", an.head);

    // (b) the client's token never reaches a provider, in any header or the body.
    for req in &seen {
        assert!(
            !contains(&req.raw, TOKEN.as_bytes()),
            "the client token reached the provider:\n{}",
            String::from_utf8_lossy(&req.raw)
        );
    }

    // (d) the model is spliced; every other byte of the body is the client's.
    let want = chat.replace("\"gpt-test\"", "\"gpt-upstream\"");
    assert_eq!(String::from_utf8_lossy(&oa.body), want);
    assert_eq!(
        oa.header("content-length"),
        Some(want.len().to_string().as_str()),
        "{}",
        oa.head
    );
    assert_eq!(
        String::from_utf8_lossy(&an.body),
        msgs,
        "no upstream_id: unchanged"
    );
    assert_eq!(st.model().as_deref(), Some("gpt-upstream"));

    // (c) nor does the log hold a key, even at debug level.
    assert_no_key("the gateway's stderr log", gw.stderr().as_bytes());
}

/// Upstream answers that echo the provider key, in status and body and headers.
fn echoing_replies() -> Vec<(&'static str, Reply)> {
    let body_401 = format!(
        r#"{{"error":{{"message":"Incorrect API key provided: {OPENAI_KEY}","type":"invalid_request_error","code":"invalid_api_key"}}}}"#
    );
    let body_400 = format!(
        r#"{{"error":{{"message":"bad key {OPENAI_KEY} for model gpt-upstream","type":"invalid_request_error"}}}}"#
    );
    // OpenAI's real 401 redacts the middle; the first eight characters still identify it.
    let redacted = format!(
        r#"{{"error":{{"message":"Incorrect API key provided: {}****{}","type":"invalid_request_error"}}}}"#,
        &OPENAI_KEY[..21],
        &OPENAI_KEY[OPENAI_KEY.len() - 4..]
    );
    let body_500 = format!(r#"{{"error":{{"message":"internal error for key {OPENAI_KEY}"}}}}"#);
    let ant_400 = format!(
        r#"{{"type":"error","error":{{"type":"invalid_request_error","message":"x-api-key {ANTHROPIC_KEY} is invalid"}}}}"#
    );
    let header_echo = {
        let body = chat_completion_json("gpt-upstream");
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-debug-auth: Bearer {OPENAI_KEY}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    vec![
        ("401 echoing the key", Reply::Json(401, body_401)),
        ("400 echoing the key", Reply::Json(400, body_400)),
        ("400 echoing a redacted key", Reply::Json(400, redacted)),
        ("500 echoing the key", Reply::Json(500, body_500)),
        ("anthropic 400 echoing the key", Reply::Json(400, ant_400)),
        (
            "200 echoing the key in a header",
            Reply::Raw(header_echo.into_bytes()),
        ),
    ]
}

#[test]
fn provider_key_never_reaches_the_client_or_the_log() {
    for (name, reply) in echoing_replies() {
        let capture = Capture::fixed(reply);
        let mut gw = gateway_with_debug_log(&capture);
        for req in [
            chat_request(&chat_body("gpt-test", false)),
            chat_request(&chat_body("gpt-test", true)),
            messages_request(&messages_body("claude-test", false)),
        ] {
            let mut c = gw.connect();
            c.send(&req).expect("send");
            match c.read_response() {
                Ok(r) => {
                    assert_no_key(&format!("[{name}] the response"), &wire(&r));
                    assert_uuid_v7(r.header("x-routerly-trace-id").expect("trace id"));
                    if r.status >= 400 {
                        // Still a proper error in the route's shape.
                        let v = r.json();
                        assert!(
                            v.get("error").is_some(),
                            "[{name}] error without an error object: {}",
                            r.dump()
                        );
                    }
                }
                Err(e) => panic!("[{name}] no response: {}", describe(&e)),
            }
        }
        // A 500 fails over to the project's other model (translated), the rest do not.
        let tries = if name.starts_with("500") { 6 } else { 3 };
        assert_eq!(capture.requests().len(), tries, "[{name}]");
        // Stopped first, so every line it would write is in the file.
        gw.stop();
        let log = gw.stderr();
        assert_no_key(&format!("[{name}] the stderr log"), log.as_bytes());
        // The file checked is the child's real stderr: it has the startup warnings.
        assert!(!log.is_empty(), "[{name}] empty stderr log");
    }
}

#[test]
fn upstream_auth_failure_is_a_gateway_error_not_the_clients() {
    // The provider refusing the gateway's key is a config problem: 502, not a relayed 401
    // that would tell the client its own (valid) token is bad.
    let capture = Capture::fixed(Reply::Json(
        401,
        r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}"#
            .into(),
    ));
    let gw = gateway_over(&capture);
    let r = roundtrip(gw.addr, &chat_request(&chat_body("gpt-test", false)));
    assert_error(&r, 502, Shape::OpenAi, "api_error");
    let r = roundtrip(
        gw.addr,
        &messages_request(&messages_body("claude-test", false)),
    );
    assert_error(&r, 502, Shape::Anthropic, "api_error");
}
