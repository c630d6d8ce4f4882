//! Golden tests of the request translators, written field by field from the OpenAI chat
//! completions and Responses references and Anthropic's Messages reference.

use simd_json::json;
use simd_json::prelude::*;
use simd_json::OwnedValue;

use super::pivot::Effort;
use super::to_chat::budget_effort;
use super::to_messages::{effort_budget, thinking_budget};
use super::{translate, Refused, Target};
use crate::translate::{Api, Session};

const MODEL: &[u8] = b"\"up-model\"";

fn target(upstream: Api) -> Target<'static> {
    Target {
        upstream,
        model_json: MODEL,
        client_model: "gw-model",
        max_output_tokens: 8192,
    }
}

fn run(client: Api, upstream: Api, body: &str) -> Result<(OwnedValue, Session), Refused> {
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

fn ok(client: Api, upstream: Api, body: &str) -> (OwnedValue, Session) {
    run(client, upstream, body).unwrap_or_else(|r| panic!("refused: {r:?}"))
}

fn c2m(body: &str) -> (OwnedValue, Session) {
    ok(Api::Chat, Api::Messages, body)
}
fn m2c(body: &str) -> (OwnedValue, Session) {
    ok(Api::Messages, Api::Chat, body)
}
fn r2c(body: &str) -> (OwnedValue, Session) {
    ok(Api::Responses, Api::Chat, body)
}
fn r2m(body: &str) -> (OwnedValue, Session) {
    ok(Api::Responses, Api::Messages, body)
}

fn refused(client: Api, upstream: Api, body: &str) -> Refused {
    match run(client, upstream, body) {
        Err(r) => r,
        Ok((v, _)) => panic!("not refused: {}", v.encode()),
    }
}

fn dropped(s: &Session) -> Vec<&'static str> {
    s.dropped.to_vec()
}

// ---- chat -> messages ---------------------------------------------------------------

#[test]
fn chat_to_messages_basic_turns_and_system() {
    let (v, s) = c2m(r#"{"model":"gw","messages":[
            {"role":"system","content":"Be brief."},
            {"role":"developer","content":[{"type":"text","text":"Use metric units."}]},
            {"role":"user","content":"Hi"},
            {"role":"user","content":"Weather in Paris?"},
            {"role":"assistant","content":"Sunny."},
            {"role":"system","content":"Answer in French."},
            {"role":"user","content":[{"type":"text","text":"Merci"}]}]}"#);
    assert_eq!(
        v,
        json!({
            "model": "up-model",
            "max_tokens": 8192,
            "system": [
                {"type": "text", "text": "Be brief."},
                {"type": "text", "text": "Use metric units."},
                {"type": "text", "text": "Answer in French."}
            ],
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "Weather in Paris?"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "Sunny."}]},
                {"role": "user", "content": [{"type": "text", "text": "Merci"}]}
            ]
        })
    );
    assert_eq!(s.client, Api::Chat);
    assert_eq!(s.upstream, Api::Messages);
    assert_eq!(s.model, "gw-model");
    assert!(s.dropped.is_empty());
    assert!(!s.include_usage);
    assert!(s.echo.is_empty());
}

#[test]
fn chat_to_messages_single_system_is_a_string_and_empty_content_is_skipped() {
    let (v, _) = c2m(
        r#"{"messages":[{"role":"system","content":"S"},{"role":"user","content":""},
            {"role":"user","content":"q"},{"role":"assistant","content":""},{"role":"assistant","content":null}]}"#,
    );
    assert_eq!(v["system"], json!("S"));
    assert_eq!(
        v["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "q"}]}])
    );
}

#[test]
fn chat_to_messages_images() {
    let (v, s) = c2m(r#"{"messages":[{"role":"user","content":[
            {"type":"text","text":"What is this?"},
            {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}},
            {"type":"image_url","image_url":{"url":"https://example.com/cat.jpg","detail":"high"}}]}]}"#);
    assert_eq!(
        v["messages"][0]["content"],
        json!([
            {"type": "text", "text": "What is this?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}
        ])
    );
    assert_eq!(dropped(&s), ["image_url.detail"]);
}

#[test]
fn chat_to_messages_pdf_file_part_becomes_a_document() {
    let (v, _) = c2m(
        r#"{"messages":[{"role":"user","content":[{"type":"file","file":{"filename":"a.pdf","file_data":"data:application/pdf;base64,JVBERi0="}}]}]}"#,
    );
    assert_eq!(
        v["messages"][0]["content"][0],
        json!({"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}, "title": "a.pdf"})
    );
}

#[test]
fn chat_to_messages_tools_and_choice() {
    let (v, s) = c2m(r#"{"messages":[{"role":"user","content":"hi"}],
            "tools":[{"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]},"strict":true}},
                     {"type":"function","function":{"name":"now"}},
                     {"type":"custom","custom":{"name":"grammar"}}],
            "tool_choice":{"type":"function","function":{"name":"get_weather"}},
            "parallel_tool_calls":false}"#);
    assert_eq!(
        v["tools"],
        json!([
            {"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}, "strict": true},
            {"name": "now", "input_schema": {"type": "object", "properties": {}}}
        ])
    );
    assert_eq!(
        v["tool_choice"],
        json!({"type": "tool", "name": "get_weather", "disable_parallel_tool_use": true})
    );
    assert_eq!(dropped(&s), ["tools[custom]"]);
}

#[test]
fn chat_to_messages_tool_choice_words() {
    let tools = r#""tools":[{"type":"function","function":{"name":"f"}}]"#;
    let cases = [
        (r#""auto""#, json!({"type": "auto"})),
        (r#""none""#, json!({"type": "none"})),
        (r#""required""#, json!({"type": "any"})),
    ];
    for (choice, want) in cases {
        let (v, _) = c2m(&format!(
            r#"{{"messages":[{{"role":"user","content":"x"}}],{tools},"tool_choice":{choice}}}"#
        ));
        assert_eq!(v["tool_choice"], want, "{choice}");
    }
    let (v, _) = c2m(&format!(
        r#"{{"messages":[{{"role":"user","content":"x"}}],{tools},"parallel_tool_calls":false}}"#
    ));
    assert_eq!(
        v["tool_choice"],
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );
    let (v, _) = c2m(&format!(
        r#"{{"messages":[{{"role":"user","content":"x"}}],{tools}}}"#
    ));
    assert!(v.get("tool_choice").is_none());
}

#[test]
fn chat_to_messages_parallel_tool_calls_and_results() {
    let (v, _) = c2m(r#"{"messages":[
            {"role":"user","content":"Weather in Paris and Rome?"},
            {"role":"assistant","content":null,"tool_calls":[
                {"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
                {"id":"call_2","type":"function","function":{"name":"get_weather","arguments":""}},
                {"id":"call_3","type":"function","function":{"name":"get_weather","arguments":"{\"city\":"}}]},
            {"role":"tool","tool_call_id":"call_1","content":"18C"},
            {"role":"tool","tool_call_id":"call_2","content":[{"type":"text","text":"21C"}]},
            {"role":"tool","tool_call_id":"call_3","content":""},
            {"role":"user","content":"Thanks"}]}"#);
    assert_eq!(
        v["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Rome?"}]},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {}},
                {"type": "tool_use", "id": "call_3", "name": "get_weather", "input": {}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": "21C"},
                {"type": "tool_result", "tool_use_id": "call_3"},
                {"type": "text", "text": "Thanks"}
            ]}
        ])
    );
}

#[test]
fn chat_to_messages_long_tool_names_are_mapped_in_tools_and_history() {
    let long = format!("mcp__server__{}", "x".repeat(70));
    let (v, s) = c2m(&format!(
        r#"{{"messages":[{{"role":"user","content":"go"}},
            {{"role":"assistant","tool_calls":[{{"id":"c","type":"function","function":{{"name":"{long}","arguments":"{{}}"}}}}]}},
            {{"role":"tool","tool_call_id":"c","content":"ok"}}],
            "tools":[{{"type":"function","function":{{"name":"{long}"}}}}]}}"#
    ));
    let up = v["tools"][0]["name"].as_str().unwrap().to_owned();
    assert!(up.len() <= 64);
    assert_eq!(v["messages"][1]["content"][0]["name"], json!(up.as_str()));
    assert_eq!(s.tools.to_client(&up), (None, long.as_str()));
}

#[test]
fn chat_to_messages_sampling_stop_and_bounds() {
    let (v, s) = c2m(
        r#"{"messages":[{"role":"user","content":"x"}],"temperature":0.5,"stop":"END","max_tokens":100,
            "max_completion_tokens":200,"stream":true,"stream_options":{"include_usage":true},"user":"u-1",
            "seed":7,"frequency_penalty":0.5,"presence_penalty":0,"logit_bias":{},"n":1,"logprobs":false}"#,
    );
    assert_eq!(v["max_tokens"], json!(200));
    assert_eq!(v["temperature"], json!(0.5));
    assert_eq!(v["stop_sequences"], json!(["END"]));
    assert_eq!(v["stream"], json!(true));
    assert_eq!(v["metadata"], json!({"user_id": "u-1"}));
    assert!(v.get("stream_options").is_none() && v.get("seed").is_none());
    assert!(s.include_usage);
    assert_eq!(dropped(&s), ["seed", "frequency_penalty"]);
    let (v, s) = c2m(
        r#"{"messages":[{"role":"user","content":"x"}],"stop":["a","b"],"stream":true,"top_p":0.9}"#,
    );
    assert_eq!(v["stop_sequences"], json!(["a", "b"]));
    assert_eq!(v["top_p"], json!(0.9));
    assert!(!s.include_usage);
}

#[test]
fn chat_to_messages_temperature_above_one_is_refused_and_top_p_yields_to_temperature() {
    let r = refused(
        Api::Chat,
        Api::Messages,
        r#"{"messages":[],"temperature":1.5}"#,
    );
    assert_eq!(r.field, "temperature");
    let (v, s) = c2m(r#"{"messages":[],"temperature":0.2,"top_p":0.5}"#);
    assert_eq!(v["temperature"], json!(0.2));
    assert!(v.get("top_p").is_none());
    assert_eq!(dropped(&s), ["top_p"]);
}

#[test]
fn effort_tables() {
    assert_eq!(effort_budget(Effort::None), None);
    assert_eq!(effort_budget(Effort::Minimal), Some(1024));
    assert_eq!(effort_budget(Effort::Low), Some(2048));
    assert_eq!(effort_budget(Effort::Medium), Some(8192));
    assert_eq!(effort_budget(Effort::High), Some(16384));
    assert_eq!(effort_budget(Effort::XHigh), Some(32768));
    assert_eq!(thinking_budget(16384, 32000), Some(16384));
    assert_eq!(thinking_budget(16384, 8192), Some(8191));
    assert_eq!(thinking_budget(500, 8192), Some(1024));
    assert_eq!(thinking_budget(2048, 1024), None);
    assert_eq!(budget_effort(1024), Effort::Low);
    assert_eq!(budget_effort(8192), Effort::Medium);
    assert_eq!(budget_effort(31999), Effort::High);
}

#[test]
fn chat_to_messages_reasoning_effort() {
    let (v, s) = c2m(
        r#"{"messages":[{"role":"user","content":"x"}],"reasoning_effort":"high","max_completion_tokens":32000,"temperature":0.3}"#,
    );
    assert_eq!(
        v["thinking"],
        json!({"type": "enabled", "budget_tokens": 16384})
    );
    assert!(
        v.get("temperature").is_none(),
        "thinking takes no temperature change"
    );
    assert_eq!(dropped(&s), ["temperature"]);
    let (v, _) = c2m(r#"{"messages":[{"role":"user","content":"x"}],"reasoning_effort":"medium"}"#);
    assert_eq!(
        v["thinking"],
        json!({"type": "enabled", "budget_tokens": 8191}),
        "capped below max_tokens 8192"
    );
    let (v, _) = c2m(r#"{"messages":[{"role":"user","content":"x"}],"reasoning_effort":"none"}"#);
    assert!(v.get("thinking").is_none());
    let (v, s) = c2m(
        r#"{"messages":[{"role":"user","content":"x"}],"reasoning_effort":"low","max_tokens":1000}"#,
    );
    assert!(v.get("thinking").is_none());
    assert_eq!(dropped(&s), ["reasoning_effort"]);
    let (v, s) = c2m(
        r#"{"messages":[{"role":"user","content":"x"}],"reasoning_effort":"low","tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"required"}"#,
    );
    assert!(v.get("thinking").is_none());
    assert_eq!(v["tool_choice"], json!({"type": "any"}));
    assert_eq!(dropped(&s), ["reasoning_effort"]);
}

#[test]
fn chat_to_messages_thinking_blocks_replayed_before_text_and_tool_use() {
    let (v, s) = c2m(r#"{"messages":[{"role":"user","content":"x"},
            {"role":"assistant","content":"Let me check.","reasoning_content":"think",
             "thinking_blocks":[{"type":"thinking","thinking":"think","signature":"sig1"},{"type":"redacted_thinking","data":"opaque"}],
             "tool_calls":[{"id":"t1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},
            {"role":"tool","tool_call_id":"t1","content":"r"},
            {"role":"assistant","content":"done","reasoning_content":"unsigned"}],"reasoning_effort":"low"}"#);
    assert_eq!(
        v["messages"][1]["content"],
        json!([
            {"type": "thinking", "thinking": "think", "signature": "sig1"},
            {"type": "redacted_thinking", "data": "opaque"},
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}}
        ])
    );
    assert_eq!(
        v["messages"][3]["content"],
        json!([{"type": "text", "text": "done"}])
    );
    assert_eq!(dropped(&s), ["reasoning_content"]);
}

#[test]
fn chat_to_messages_response_format() {
    let (v, _) = c2m(
        r#"{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"w","schema":{"type":"object","properties":{"t":{"type":"number"}},"additionalProperties":false},"strict":true}}}"#,
    );
    assert_eq!(
        v["output_config"],
        json!({"format": {"type": "json_schema", "schema": {"type": "object", "properties": {"t": {"type": "number"}}, "additionalProperties": false}}})
    );
    let r = refused(
        Api::Chat,
        Api::Messages,
        r#"{"messages":[],"response_format":{"type":"json_object"}}"#,
    );
    assert_eq!(r.field, "response_format");
    let (v, _) = c2m(r#"{"messages":[],"response_format":{"type":"text"}}"#);
    assert!(v.get("output_config").is_none());
}

#[test]
fn chat_to_messages_advisory_fields_dropped_and_named() {
    let (_, s) = c2m(
        r#"{"messages":[{"role":"user","content":[{"type":"text","text":"x","cache_control":{"type":"ephemeral"}}],"name":"bob"}],
            "metadata":{"a":"b"},"store":true,"service_tier":"auto","prompt_cache_key":"k","prompt_cache_retention":"24h",
            "verbosity":"low","web_search_options":{},"safety_identifier":"sid","stream_options":{"include_usage":false,"include_obfuscation":false},"x_vendor":1}"#,
    );
    assert_eq!(
        dropped(&s),
        [
            "cache_control",
            "messages[].name",
            "metadata",
            "store",
            "service_tier",
            "prompt_cache_key",
            "prompt_cache_retention",
            "verbosity",
            "web_search_options",
            "stream_options",
            "unknown fields"
        ]
    );
}

#[test]
fn chat_to_messages_refusals() {
    let cases: &[(&str, &str)] = &[
        (r#"{"messages":[],"n":2}"#, "n"),
        (r#"{"messages":[],"logprobs":true}"#, "logprobs"),
        (r#"{"messages":[],"top_logprobs":3}"#, "top_logprobs"),
        (
            r#"{"messages":[],"audio":{"voice":"alloy","format":"mp3"}}"#,
            "audio",
        ),
        (
            r#"{"messages":[],"modalities":["text","audio"]}"#,
            "modalities",
        ),
        (
            r#"{"messages":[],"prediction":{"type":"content","content":"x"}}"#,
            "prediction",
        ),
        (r#"{"messages":[],"functions":[]}"#, "functions"),
        (
            r#"{"messages":[],"response_format":{"type":"json_object"}}"#,
            "response_format",
        ),
        (
            r#"{"messages":[],"response_format":{"type":"json_schema","json_schema":{"name":"x"}}}"#,
            "response_format.json_schema.schema",
        ),
        (
            r#"{"messages":[],"tool_choice":{"type":"allowed_tools","allowed_tools":{}}}"#,
            "tool_choice",
        ),
        (
            r#"{"messages":[{"role":"function","content":"x"}]}"#,
            "messages[0].role",
        ),
        (
            r#"{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{}}]}]}"#,
            "messages[0].content[0].type",
        ),
        (
            r#"{"messages":[{"role":"user","content":[{"type":"hologram"}]}]}"#,
            "messages[0].content[0].type",
        ),
        (
            r#"{"messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"file-1"}}]}]}"#,
            "messages[0].content[0].file",
        ),
        (
            r#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x"}}]}]}"#,
            "messages[0].content[0].image_url.url",
        ),
        (
            r#"{"messages":[{"role":"assistant","audio":{"id":"a1"}}]}"#,
            "messages[0].audio",
        ),
        (r#"{"messages":"hi"}"#, "messages"),
        (r#"[1]"#, "body"),
    ];
    for (body, field) in cases {
        assert_eq!(
            refused(Api::Chat, Api::Messages, body).field,
            *field,
            "{body}"
        );
    }
}

// ---- messages -> chat ---------------------------------------------------------------

#[test]
fn messages_to_chat_basic() {
    let (v, s) = m2c(
        r#"{"model":"claude","max_tokens":1024,"system":"Be brief.","messages":[
            {"role":"user","content":"Hi"},{"role":"assistant","content":[{"type":"text","text":"Hello"},{"type":"text","text":"there"}]},
            {"role":"user","content":[{"type":"text","text":"Bye"}]}],
            "stop_sequences":["X"],"temperature":0.7,"top_k":40,"stream":true,"metadata":{"user_id":"u"}}"#,
    );
    assert_eq!(
        v,
        json!({
            "model": "up-model",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": "there"}]},
                {"role": "user", "content": "Bye"}
            ],
            "max_completion_tokens": 1024,
            "stream": true,
            "stream_options": {"include_usage": true},
            "stop": ["X"],
            "temperature": 0.7
        })
    );
    assert_eq!(dropped(&s), ["top_k", "metadata"]);
    assert!(s.include_usage);
}

#[test]
fn messages_to_chat_system_blocks_with_cache_control() {
    let (v, s) = m2c(
        r#"{"max_tokens":10,"system":[{"type":"text","text":"A"},{"type":"text","text":"B","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":"x"}]}"#,
    );
    assert_eq!(
        v["messages"][0],
        json!({"role": "system", "content": "A\n\nB"})
    );
    assert_eq!(dropped(&s), ["cache_control"]);
}

#[test]
fn messages_to_chat_images_and_documents() {
    let (v, _) = m2c(r#"{"max_tokens":10,"messages":[{"role":"user","content":[
            {"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":"/9j/4AAQ"}},
            {"type":"image","source":{"type":"url","url":"https://example.com/a.png"}},
            {"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0="}},
            {"type":"text","text":"Describe"}]}]}"#);
    assert_eq!(
        v["messages"][0]["content"],
        json!([
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
            {"type": "file", "file": {"filename": "document.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}},
            {"type": "text", "text": "Describe"}
        ])
    );
}

#[test]
fn messages_to_chat_tools_calls_results() {
    let (v, s) = m2c(r#"{"max_tokens":10,"messages":[
            {"role":"user","content":"Weather?"},
            {"role":"assistant","content":[
                {"type":"thinking","thinking":"hmm","signature":"s"},
                {"type":"text","text":"Checking."},
                {"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}},
                {"type":"tool_use","id":"toolu_2","name":"get_weather","input":{"city":"Rome"}}]},
            {"role":"user","content":[
                {"type":"tool_result","tool_use_id":"toolu_1","content":"18C"},
                {"type":"tool_result","tool_use_id":"toolu_2","content":[{"type":"text","text":"no data"},{"type":"image","source":{"type":"url","url":"https://x/y.png"}}],"is_error":true},
                {"type":"text","text":"And tomorrow?"}]}],
            "tools":[{"name":"get_weather","description":"W","input_schema":{"type":"object","properties":{"city":{"type":"string"}}},"strict":true},
                     {"type":"web_search_20250305","name":"web_search","max_uses":5},
                     {"type":"bash_20250124","name":"bash"}],
            "tool_choice":{"type":"any","disable_parallel_tool_use":true}}"#);
    assert_eq!(
        v["messages"],
        json!([
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "toolu_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
            {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: no data"},
            {"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                {"type": "text", "text": "And tomorrow?"}
            ]}
        ])
    );
    assert_eq!(
        v["tools"],
        json!([{"type": "function", "function": {"name": "get_weather", "description": "W", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": true}}])
    );
    assert_eq!(v["tool_choice"], json!("required"));
    assert_eq!(v["parallel_tool_calls"], json!(false));
    assert_eq!(
        dropped(&s),
        ["tools[web_search]", "tools[bash]", "content[].thinking"]
    );
}

#[test]
fn messages_to_chat_tool_choice_forms() {
    let tools = r#""tools":[{"name":"f","input_schema":{"type":"object"}}]"#;
    for (choice, want) in [
        (r#"{"type":"auto"}"#, json!("auto")),
        (r#"{"type":"none"}"#, json!("none")),
        (
            r#"{"type":"tool","name":"f"}"#,
            json!({"type": "function", "function": {"name": "f"}}),
        ),
    ] {
        let (v, _) = m2c(&format!(
            r#"{{"max_tokens":1,"messages":[],{tools},"tool_choice":{choice}}}"#
        ));
        assert_eq!(v["tool_choice"], want, "{choice}");
        assert!(v.get("parallel_tool_calls").is_none());
    }
}

#[test]
fn messages_to_chat_thinking() {
    let base = r#""max_tokens":64000,"messages":[{"role":"user","content":"x"}]"#;
    let (v, _) = m2c(&format!(
        r#"{{{base},"thinking":{{"type":"enabled","budget_tokens":10000}}}}"#
    ));
    assert_eq!(v["reasoning_effort"], json!("medium"));
    let (v, s) = m2c(&format!(
        r#"{{{base},"thinking":{{"type":"adaptive"}},"output_config":{{"effort":"max"}}}}"#
    ));
    assert_eq!(v["reasoning_effort"], json!("xhigh"));
    assert!(s.dropped.is_empty());
    let (v, _) = m2c(&format!(r#"{{{base},"thinking":{{"type":"adaptive"}}}}"#));
    assert!(
        v.get("reasoning_effort").is_none(),
        "adaptive without effort: the provider's default"
    );
    let (v, s) = m2c(&format!(
        r#"{{{base},"thinking":{{"type":"disabled"}},"output_config":{{"effort":"low"}}}}"#
    ));
    assert!(v.get("reasoning_effort").is_none());
    assert_eq!(dropped(&s), ["output_config.effort"]);
}

#[test]
fn messages_to_chat_output_format() {
    let (v, _) = m2c(
        r#"{"max_tokens":5,"messages":[],"output_config":{"format":{"type":"json_schema","schema":{"type":"object"}}}}"#,
    );
    assert_eq!(
        v["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "output", "schema": {"type": "object"}, "strict": true}})
    );
}

#[test]
fn messages_to_chat_refusals() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{"messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"f"}}]}]}"#,
            "messages[0].content[0].source.type",
        ),
        (
            r#"{"messages":[{"role":"user","content":[{"type":"document","source":{"type":"url","url":"https://x"}}]}]}"#,
            "messages[0].content[0].source.type",
        ),
        (
            r#"{"messages":[{"role":"user","content":[{"type":"hologram"}]}]}"#,
            "messages[0].content[0].type",
        ),
        (
            r#"{"messages":[{"role":"tool","content":"x"}]}"#,
            "messages[0].role",
        ),
        (
            r#"{"messages":[],"mcp_servers":[{"type":"url","url":"https://m"}]}"#,
            "mcp_servers",
        ),
        (r#"{"messages":[],"container":"c1"}"#, "container"),
        (
            r#"{"messages":[],"tool_choice":{"type":"tool"}}"#,
            "tool_choice.name",
        ),
        (
            r#"{"messages":[],"output_config":{"format":{"type":"xml"}}}"#,
            "output_config.format",
        ),
        (
            r#"{"system":[{"type":"image"}],"messages":[]}"#,
            "system[0].type",
        ),
    ];
    for (body, field) in cases {
        assert_eq!(
            refused(Api::Messages, Api::Chat, body).field,
            *field,
            "{body}"
        );
    }
}

#[test]
fn messages_to_chat_server_tool_history_dropped() {
    let (v, s) = m2c(
        r#"{"max_tokens":5,"messages":[{"role":"assistant","content":[{"type":"server_tool_use","id":"s","name":"web_search","input":{}},
            {"type":"web_search_tool_result","tool_use_id":"s","content":[]},{"type":"text","text":"Found."},{"type":"redacted_thinking","data":"d"}]}]}"#,
    );
    assert_eq!(
        v["messages"],
        json!([{"role": "assistant", "content": "Found."}])
    );
    assert_eq!(
        dropped(&s),
        ["content[].server_tool_use", "content[].redacted_thinking"]
    );
}

// ---- responses -> chat / messages --------------------------------------------------

#[test]
fn responses_string_input_and_instructions() {
    let body = r#"{"model":"m","instructions":"Be brief.","input":"Hi","max_output_tokens":300,"temperature":0.4,"stream":true}"#;
    let (v, s) = r2c(body);
    assert_eq!(
        v,
        json!({
            "model": "up-model",
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
            "max_completion_tokens": 300,
            "stream": true,
            "stream_options": {"include_usage": true},
            "temperature": 0.4
        })
    );
    assert!(s.include_usage);
    let echo: OwnedValue =
        simd_json::to_owned_value(&mut format!("{{{}}}", s.echo).into_bytes()).unwrap();
    assert_eq!(
        echo,
        json!({
            "instructions": "Be brief.",
            "max_output_tokens": 300,
            "temperature": 0.4,
            "top_p": 1.0,
            "parallel_tool_calls": true,
            "tool_choice": "auto",
            "tools": [],
            "store": true,
            "metadata": {},
            "reasoning": {"effort": null, "summary": null},
            "text": {"format": {"type": "text"}},
            "truncation": "disabled"
        })
    );
    let (v, _) = r2m(body);
    assert_eq!(
        v,
        json!({
            "model": "up-model",
            "max_tokens": 300,
            "stream": true,
            "system": "Be brief.",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
            "temperature": 0.4
        })
    );
}

#[test]
fn responses_items_to_messages() {
    let (v, s) = r2m(r#"{"input":[
            {"type":"message","role":"developer","content":"Dev rules."},
            {"role":"system","content":[{"type":"input_text","text":"Sys."}]},
            {"role":"user","content":[{"type":"input_text","text":"Look"},{"type":"input_image","image_url":"data:image/webp;base64,UklG","detail":"auto"}]},
            {"type":"reasoning","summary":[{"type":"summary_text","text":"a"},{"type":"summary_text","text":"b"}],"encrypted_content":"sig"},
            {"type":"message","role":"assistant","content":[{"type":"output_text","text":"Calling.","annotations":[]}]},
            {"type":"function_call","call_id":"call_1","name":"f","arguments":"{\"x\":1}"},
            {"type":"function_call_output","call_id":"call_1","output":"done"},
            {"type":"function_call_output","call_id":"call_2","output":[{"type":"input_text","text":"t"},{"type":"input_image","image_url":"https://i/x.png"}]}],
            "tools":[{"type":"function","name":"f","parameters":{"type":"object"},"strict":true}],"max_output_tokens":20000,"reasoning":{"effort":"high"}}"#);
    assert_eq!(
        v["system"],
        json!([{"type": "text", "text": "Dev rules."}, {"type": "text", "text": "Sys."}])
    );
    assert_eq!(
        v["messages"],
        json!([
            {"role": "user", "content": [
                {"type": "text", "text": "Look"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/webp", "data": "UklG"}}
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "a\n\nb", "signature": "sig"},
                {"type": "text", "text": "Calling."},
                {"type": "tool_use", "id": "call_1", "name": "f", "input": {"x": 1}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "done"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": [
                    {"type": "text", "text": "t"},
                    {"type": "image", "source": {"type": "url", "url": "https://i/x.png"}}
                ]}
            ]}
        ])
    );
    assert_eq!(
        v["tools"],
        json!([{"name": "f", "input_schema": {"type": "object"}, "strict": true}])
    );
    assert_eq!(
        v["thinking"],
        json!({"type": "enabled", "budget_tokens": 16384})
    );
    assert!(s.dropped.is_empty(), "{:?}", s.dropped);
}

#[test]
fn responses_openai_reasoning_is_not_replayed_to_anthropic() {
    let (v, s) = r2m(
        r#"{"input":[{"role":"user","content":"q"},{"type":"reasoning","summary":[],"encrypted_content":"gAAAAABfernet"},{"role":"assistant","content":"a"}]}"#,
    );
    assert_eq!(
        v["messages"][1]["content"],
        json!([{"type": "text", "text": "a"}])
    );
    assert_eq!(dropped(&s), ["input[].reasoning"]);
}

#[test]
fn responses_to_chat_carries_chat_fields() {
    let (v, s) = r2c(
        r#"{"input":"x","prompt_cache_key":"k","service_tier":"flex","safety_identifier":"sid","user":"u","text":{"format":{"type":"json_schema","name":"out","schema":{"type":"object"},"strict":true},"verbosity":"low"},
            "reasoning":{"effort":"low","summary":"auto"},"store":false,"include":["reasoning.encrypted_content"],"metadata":{"k":"v"},"truncation":"auto","tool_choice":"none","tools":[{"type":"function","name":"f"}],"parallel_tool_calls":false}"#,
    );
    assert_eq!(v["prompt_cache_key"], json!("k"));
    assert_eq!(v["service_tier"], json!("flex"));
    assert_eq!(v["safety_identifier"], json!("sid"));
    assert_eq!(v["user"], json!("u"));
    assert_eq!(v["verbosity"], json!("low"));
    assert_eq!(v["reasoning_effort"], json!("low"));
    assert_eq!(v["tool_choice"], json!("none"));
    assert_eq!(v["parallel_tool_calls"], json!(false));
    assert_eq!(
        v["tools"],
        json!([{"type": "function", "function": {"name": "f"}}])
    );
    assert_eq!(
        v["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": true}})
    );
    assert_eq!(
        dropped(&s),
        [
            "reasoning.summary",
            "store",
            "include",
            "metadata",
            "truncation"
        ]
    );
    let echo: OwnedValue =
        simd_json::to_owned_value(&mut format!("{{{}}}", s.echo).into_bytes()).unwrap();
    assert_eq!(echo["store"], json!(false));
    assert_eq!(echo["tool_choice"], json!("none"));
    assert_eq!(echo["tools"], json!([{"type": "function", "name": "f"}]));
    assert_eq!(
        echo["reasoning"],
        json!({"effort": "low", "summary": "auto"})
    );
    assert_eq!(echo["parallel_tool_calls"], json!(false));
}

#[test]
fn responses_to_messages_drops_chat_only_fields() {
    let (v, s) = r2m(
        r#"{"input":"x","prompt_cache_key":"k","service_tier":"auto","safety_identifier":"sid","text":{"verbosity":"low"}}"#,
    );
    assert_eq!(v["metadata"], json!({"user_id": "sid"}));
    assert_eq!(
        dropped(&s),
        ["prompt_cache_key", "service_tier", "text.verbosity"]
    );
    let r = refused(
        Api::Responses,
        Api::Messages,
        r#"{"input":"x","text":{"format":{"type":"json_object"}}}"#,
    );
    assert_eq!(r.field, "text.format");
}

#[test]
fn responses_namespace_tools_and_calls() {
    let (v, s) = r2m(
        r#"{"input":[{"type":"function_call","call_id":"c1","namespace":"mcp__gmail","name":"search","arguments":""}],
            "tools":[{"type":"namespace","name":"mcp__gmail","description":"Mail","tools":[{"type":"function","name":"search","parameters":{"type":"object"}},{"type":"custom","name":"free"}]},
                     {"type":"web_search"},{"type":"file_search","vector_store_ids":[]},{"type":"code_interpreter"},{"type":"image_generation"},{"type":"local_shell"},{"type":"web_search_preview"}],
            "tool_choice":{"type":"function","name":"search","namespace":"mcp__gmail"}}"#,
    );
    assert_eq!(
        v["tools"],
        json!([{"name": "mcp__gmail__search", "input_schema": {"type": "object"}}])
    );
    assert_eq!(
        v["messages"][0]["content"][0]["name"],
        json!("mcp__gmail__search")
    );
    assert_eq!(v["messages"][0]["content"][0]["input"], json!({}));
    assert_eq!(
        v["tool_choice"],
        json!({"type": "tool", "name": "mcp__gmail__search"})
    );
    assert_eq!(
        s.tools.to_client("mcp__gmail__search"),
        (Some("mcp__gmail"), "search")
    );
    assert_eq!(
        dropped(&s),
        [
            "tools[custom]",
            "tools[web_search]",
            "tools[file_search]",
            "tools[code_interpreter]",
            "tools[image_generation]",
            "tools[local_shell]",
            "tools[web_search_preview]"
        ]
    );
}

#[test]
fn responses_refusals() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{"input":"x","previous_response_id":"resp_1"}"#,
            "previous_response_id",
        ),
        (r#"{"input":"x","background":true}"#, "background"),
        (r#"{"input":"x","conversation":"conv_1"}"#, "conversation"),
        (r#"{"input":"x","prompt":{"id":"pmpt_1"}}"#, "prompt"),
        (r#"{"input":"x","top_logprobs":2}"#, "top_logprobs"),
        (r#"{"model":"m"}"#, "input"),
        (
            r#"{"input":[{"type":"item_reference","id":"msg_1"}]}"#,
            "input[0].type",
        ),
        (r#"{"input":[{"type":"mystery"}]}"#, "input[0].type"),
        (
            r#"{"input":[{"role":"user","content":[{"type":"input_audio"}]}]}"#,
            "input[0].content[0].type",
        ),
        (
            r#"{"input":[{"role":"user","content":[{"type":"input_image","file_id":"file-1"}]}]}"#,
            "input[0].content[0].image_url",
        ),
        (
            r#"{"input":[{"role":"user","content":[{"type":"input_file","file_id":"file-1"}]}]}"#,
            "input[0].content[0].file_data",
        ),
        (
            r#"{"input":[{"role":"critic","content":"x"}]}"#,
            "input[0].role",
        ),
        (
            r#"{"input":"x","tool_choice":{"type":"allowed_tools","mode":"auto","tools":[]}}"#,
            "tool_choice",
        ),
        (
            r#"{"input":"x","text":{"format":{"type":"json_schema","name":"x"}}}"#,
            "text.format.schema",
        ),
    ];
    for (body, field) in cases {
        for up in [Api::Chat, Api::Messages] {
            assert_eq!(
                refused(Api::Responses, up, body).field,
                *field,
                "{body} -> {up:?}"
            );
        }
    }
    assert_eq!(
        refused(
            Api::Responses,
            Api::Messages,
            r#"{"input":"x","temperature":2}"#
        )
        .field,
        "temperature"
    );
    // Null or false values of refused fields mean nothing was asked.
    r2m(r#"{"input":"x","previous_response_id":null,"background":false,"top_logprobs":0}"#);
}

#[test]
fn unsupported_pairs_are_refused() {
    let r = refused(Api::Chat, Api::Chat, r#"{"messages":[]}"#);
    assert_eq!(r.field, "model");
    let r = refused(Api::Messages, Api::Responses, r#"{"messages":[]}"#);
    assert_eq!(r.field, "model");
    assert_eq!(refused(Api::Chat, Api::Messages, "{").field, "body");
}

// ---- real agents --------------------------------------------------------------------

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/agents/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn claude_code_request_to_chat() {
    let (v, s) = m2c(&fixture("claude_code_messages.json"));
    let msgs = v["messages"].as_array().unwrap();
    // System blocks, then the system turn found inside `messages`, as one system message.
    let system = msgs[0]["content"].as_str().unwrap();
    assert_eq!(msgs[0]["role"], json!("system"));
    assert!(system.starts_with("x-anthropic-billing-header"));
    assert!(system.contains("You are Claude Code"));
    assert!(system.ends_with("consider using the TodoWrite tool.</system-reminder>"));
    assert_eq!(msgs.iter().filter(|m| m["role"] == "system").count(), 1);
    // The first user turn keeps both text blocks.
    assert_eq!(msgs[1]["role"], json!("user"));
    assert_eq!(msgs[1]["content"].as_array().unwrap().len(), 2);
    // Assistant: text and two parallel tool calls; the thinking is gone.
    assert_eq!(msgs[2]["content"], json!("I'll run the scan tests first."));
    let calls = msgs[2]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["id"], json!("toolu_01A9vXk2Lq3fKJ8d7WmN4sTz"));
    assert_eq!(calls[0]["function"]["name"], json!("Bash"));
    let args: OwnedValue = simd_json::to_owned_value(
        &mut calls[0]["function"]["arguments"]
            .as_str()
            .unwrap()
            .as_bytes()
            .to_vec(),
    )
    .unwrap();
    assert_eq!(
        args,
        json!({"command": "cargo test --lib scan:: 2>&1 | tail -20", "description": "Run the scan tests"})
    );
    // Tool results in order, the error flagged in text.
    assert_eq!(msgs[3]["role"], json!("tool"));
    assert_eq!(
        msgs[3]["tool_call_id"],
        json!("toolu_01A9vXk2Lq3fKJ8d7WmN4sTz")
    );
    assert!(msgs[3]["content"]
        .as_str()
        .unwrap()
        .starts_with("Error: test scan::tests::nested_depth"));
    assert_eq!(
        msgs[4]["tool_call_id"],
        json!("toolu_01B7wYj3Mr4gLK9e8XnO5tUa")
    );
    // The long MCP tool name is mapped in the call and in the tools, and maps back.
    let long = "mcp__claude_ai_Atlassian__getJiraIssueRemoteIssueLinksWithExtendedMetadata";
    let up = msgs[5]["tool_calls"][0]["function"]["name"]
        .as_str()
        .unwrap();
    assert!(up.len() <= 64 && up.ends_with("WithExtendedMetadata"));
    assert_eq!(s.tools.to_client(up), (None, long));
    let tools = v["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 24);
    assert_eq!(tools[23]["function"]["name"], json!(up));
    assert_eq!(tools[2]["function"]["name"], json!("Bash"));
    assert_eq!(
        tools[2]["function"]["parameters"]["required"],
        json!(["command"])
    );
    assert_eq!(msgs[6]["role"], json!("tool"));
    assert_eq!(msgs[6]["content"], json!("[]"));
    assert_eq!(msgs.len(), 7);
    // Bounds, stream, reasoning.
    assert_eq!(v["max_completion_tokens"], json!(32000));
    assert_eq!(v["stream"], json!(true));
    assert_eq!(v["stream_options"], json!({"include_usage": true}));
    assert_eq!(v["reasoning_effort"], json!("high"));
    assert_eq!(v["temperature"], json!(1));
    assert_eq!(
        dropped(&s),
        [
            "cache_control",
            "metadata",
            "context_management",
            "content[].thinking"
        ]
    );
}

#[test]
fn codex_request_to_messages() {
    let (v, s) = r2m(&fixture("codex_responses.json"));
    let system = v["system"].as_array().unwrap();
    assert_eq!(system.len(), 2);
    assert!(system[0]["text"]
        .as_str()
        .unwrap()
        .starts_with("You are Codex"));
    assert!(system[1]["text"]
        .as_str()
        .unwrap()
        .starts_with("<permissions instructions>"));
    let msgs = v["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 5);
    // Two user messages merged into one user turn.
    assert_eq!(msgs[0]["role"], json!("user"));
    assert_eq!(msgs[0]["content"].as_array().unwrap().len(), 3);
    // Reasoning replayed as a signed thinking block before the parallel tool calls.
    let a = msgs[1]["content"].as_array().unwrap();
    assert_eq!(a[0]["type"], json!("thinking"));
    assert!(a[0]["thinking"]
        .as_str()
        .unwrap()
        .starts_with("**Running the failing tests**"));
    assert!(a[0]["signature"].as_str().unwrap().starts_with("EqQB"));
    assert_eq!(a[1]["name"], json!("exec_command"));
    assert_eq!(
        a[1]["input"]["cmd"],
        json!("cargo test --lib scan:: 2>&1 | tail -20")
    );
    assert_eq!(
        a[2]["name"],
        json!("mcp__codex_apps__gmail___search_emails")
    );
    assert_eq!(
        a[2]["input"],
        json!({"query": "scan bug", "max_results": 5})
    );
    let r = msgs[2]["content"].as_array().unwrap();
    assert_eq!(r[0]["tool_use_id"], json!("call_8mQz3kX1vT6pL0aN2rB5cD7e"));
    assert_eq!(r[1]["tool_use_id"], json!("call_Y2bT7nK4wE9rQ1sU3vX5zA6c"));
    assert_eq!(
        msgs[3]["content"][0]["text"],
        json!("The depth check in `scan` is off by one; I'll patch it.")
    );
    assert_eq!(
        msgs[4]["content"],
        json!([{"type": "text", "text": "Go ahead."}])
    );
    let tools = v["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "exec_command",
            "write_stdin",
            "update_plan",
            "apply_patch",
            "view_image",
            "mcp__codex_apps__gmail___search_emails",
            "mcp__codex_apps__gmail___read_email"
        ]
    );
    assert_eq!(tools[0]["strict"], json!(false));
    assert_eq!(
        s.tools.to_client("mcp__codex_apps__gmail___read_email"),
        (Some("mcp__codex_apps__gmail"), "_read_email")
    );
    assert_eq!(v["tool_choice"], json!({"type": "auto"}));
    assert_eq!(
        v["thinking"],
        json!({"type": "enabled", "budget_tokens": 8191})
    );
    assert_eq!(v["max_tokens"], json!(8192));
    assert_eq!(v["stream"], json!(true));
    assert_eq!(
        dropped(&s),
        [
            "tools[web_search]",
            "reasoning.summary",
            "store",
            "include",
            "prompt_cache_key",
            "text.verbosity",
            "input[].reasoning"
        ]
    );
    assert!(s.echo.contains("\"store\":false"));
}

#[test]
fn codex_request_to_chat() {
    let (v, s) = r2c(&fixture("codex_responses.json"));
    let msgs = v["messages"].as_array().unwrap();
    assert_eq!(msgs[0]["role"], json!("system"));
    assert!(msgs[0]["content"]
        .as_str()
        .unwrap()
        .contains("</permissions instructions>"));
    assert_eq!(msgs[1]["role"], json!("user"));
    let calls = msgs[2]["tool_calls"].as_array().unwrap();
    assert_eq!(msgs[2]["content"], json!(null));
    assert_eq!(
        calls[1]["function"]["name"],
        json!("mcp__codex_apps__gmail___search_emails")
    );
    assert_eq!(
        calls[1]["function"]["arguments"],
        json!("{\"query\":\"scan bug\",\"max_results\":5}")
    );
    assert_eq!(msgs[3]["role"], json!("tool"));
    assert_eq!(msgs[4]["role"], json!("tool"));
    assert_eq!(msgs[5]["role"], json!("assistant"));
    assert_eq!(msgs[6], json!({"role": "user", "content": "Go ahead."}));
    assert_eq!(v["reasoning_effort"], json!("medium"));
    assert_eq!(
        v["prompt_cache_key"],
        json!("019b3c2e-7a41-7d20-9f3e-2c5b8a1d4e6f")
    );
    assert_eq!(v["verbosity"], json!("medium"));
    assert_eq!(v["tool_choice"], json!("auto"));
    assert_eq!(v["parallel_tool_calls"], json!(true));
    assert_eq!(v["tools"].as_array().unwrap().len(), 7);
    assert_eq!(
        dropped(&s),
        [
            "tools[web_search]",
            "reasoning.summary",
            "store",
            "include",
            "input[].reasoning"
        ]
    );
}
