//! Anthropic messages requests to chat completions.

use simd_json::json;
use simd_json::prelude::*;

use super::*;

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
