//! Chat completions requests to Anthropic messages.

use simd_json::json;
use simd_json::prelude::*;

use super::*;
use crate::translate::request::pivot::Effort;
use crate::translate::request::to_chat::budget_effort;
use crate::translate::request::to_messages::{effort_budget, thinking_budget};

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
