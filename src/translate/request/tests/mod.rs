//! Golden tests of the request translators, written field by field from the OpenAI chat
//! completions and Responses references and Anthropic's Messages reference.

mod agents;
mod chat_to_messages;
mod messages_to_chat;
mod responses;
mod shapes;

use simd_json::prelude::*;
use simd_json::OwnedValue;

use super::{translate, Refused, Target};
use crate::translate::{Api, Session};

pub(super) const MODEL: &[u8] = b"\"up-model\"";

pub(super) fn target(upstream: Api) -> Target<'static> {
    Target {
        upstream,
        model_json: MODEL,
        client_model: "gw-model",
        max_output_tokens: 8192,
    }
}

pub(super) fn run(
    client: Api,
    upstream: Api,
    body: &str,
) -> Result<(OwnedValue, Session), Refused> {
    let mut scratch = Vec::new();
    let mut out = Vec::new();
    let s = translate(
        body.as_bytes(),
        client,
        &target(upstream),
        &mut scratch,
        &mut out,
    )?;
    let text = String::from_utf8(out.clone()).expect("utf-8");
    let v =
        simd_json::to_owned_value(&mut out).unwrap_or_else(|e| panic!("invalid JSON {e}: {text}"));
    Ok((v, s))
}

pub(super) fn ok(client: Api, upstream: Api, body: &str) -> (OwnedValue, Session) {
    run(client, upstream, body).unwrap_or_else(|r| panic!("refused: {r:?}"))
}

pub(super) fn c2m(body: &str) -> (OwnedValue, Session) {
    ok(Api::Chat, Api::Messages, body)
}
pub(super) fn m2c(body: &str) -> (OwnedValue, Session) {
    ok(Api::Messages, Api::Chat, body)
}
pub(super) fn r2c(body: &str) -> (OwnedValue, Session) {
    ok(Api::Responses, Api::Chat, body)
}
pub(super) fn r2m(body: &str) -> (OwnedValue, Session) {
    ok(Api::Responses, Api::Messages, body)
}

pub(super) fn refused(client: Api, upstream: Api, body: &str) -> Refused {
    match run(client, upstream, body) {
        Err(r) => r,
        Ok((v, _)) => panic!("not refused: {}", v.encode()),
    }
}

pub(super) fn dropped(s: &Session) -> Vec<&'static str> {
    s.dropped.to_vec()
}

pub(super) fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/agents/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}
