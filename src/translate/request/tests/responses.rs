//! Responses requests to chat completions and to messages.

use simd_json::json;
use simd_json::OwnedValue;

use super::*;

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
