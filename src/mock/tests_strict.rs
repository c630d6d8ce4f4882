//! The provider-strict request checks: each malformed request is a 400 in the provider's error
//! shape naming the field, and the well-formed neighbours pass.

use super::tests::{mock, parse, s};
use super::*;
use simd_json::prelude::*;

/// Asserts a 400 whose message starts with `path` (and, for OpenAI, whose `param` is `path`).
fn refused(ep: Endpoint, body: &str, path: &str) {
    let r = mock().reply(ep, body.as_bytes());
    assert_eq!(
        r.status,
        400,
        "{body}\n{}",
        String::from_utf8_lossy(&r.body)
    );
    let v = parse(&r.body);
    let e = v.get("error").unwrap();
    assert_eq!(s(e, "type"), "invalid_request_error");
    let msg = s(e, "message");
    assert!(msg.starts_with(&format!("{path}: ")), "{msg} (want {path})");
    if matches!(ep, Endpoint::Messages | Endpoint::CountTokens) {
        assert_eq!(s(&v, "type"), "error");
    } else {
        assert_eq!(s(e, "param"), path);
    }
}

fn accepted(ep: Endpoint, body: &str) {
    let r = mock().reply(ep, body.as_bytes());
    assert_eq!(
        r.status,
        200,
        "{body}\n{}",
        String::from_utf8_lossy(&r.body)
    );
}

fn msgs(messages: &str, extra: &str) -> String {
    format!(r#"{{"model":"c","max_tokens":2048,{extra}"messages":{messages}}}"#)
}

const USE: &str =
    r#"{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"f","input":{}}]}"#;

#[test]
fn anthropic_rules() {
    let user = r#"{"role":"user","content":"hi"}"#;
    let result = |id: &str| {
        format!(
            r#"{{"role":"user","content":[{{"type":"tool_result","tool_use_id":"{id}","content":"ok"}}]}}"#
        )
    };
    let cases: &[(String, &str)] = &[
        (
            msgs(r#"[{"role":"system","content":"x"}]"#, ""),
            "messages.0.role",
        ),
        (
            msgs(&format!(r#"[{user},{{"role":"tool","content":"x"}}]"#), ""),
            "messages.1.role",
        ),
        (
            msgs(r#"[{"role":"user","content":5}]"#, ""),
            "messages.0.content",
        ),
        (
            msgs(r#"[{"role":"user","content":[{"type":"video"}]}]"#, ""),
            "messages.0.content.0.type",
        ),
        (
            msgs(r#"[{"role":"user","content":[{"type":"text"}]}]"#, ""),
            "messages.0.content.0.text",
        ),
        (
            msgs(
                r#"[{"role":"user","content":[{"type":"image","source":{"type":"base64","data":"x"}}]}]"#,
                "",
            ),
            "messages.0.content.0.source",
        ),
        (
            msgs(
                r#"[{"role":"user","content":[{"type":"image_url","image_url":{"url":"http://x"}}]}]"#,
                "",
            ),
            "messages.0.content.0.type",
        ),
        (
            msgs(
                &format!(
                    r#"[{user},{{"role":"assistant","content":[{{"type":"tool_use","id":"t","name":"f","input":"{{}}"}}]}}]"#
                ),
                "",
            ),
            "messages.1.content.0.input",
        ),
        (
            msgs(&format!("[{user},{USE},{}]", result("toolu_2")), ""),
            "messages.2.content.0.tool_use_id",
        ),
        // A tool_result whose tool_use is two turns back.
        (
            msgs(
                &format!(
                    r#"[{user},{USE},{},{{"role":"assistant","content":"x"}},{}]"#,
                    result("toolu_1"),
                    result("toolu_1")
                ),
                "",
            ),
            "messages.4.content.0.tool_use_id",
        ),
        // A tool_use not answered in the next turn.
        (msgs(&format!("[{user},{USE},{user}]"), ""), "messages.2"),
        (
            msgs(&format!("[{}]", result("toolu_1")), ""),
            "messages.0.content.0.tool_use_id",
        ),
        (
            msgs(
                r#"[{"role":"assistant","content":[{"type":"thinking","thinking":"x"}]}]"#,
                "",
            ),
            "messages.0.content.0.signature",
        ),
        (
            msgs(&format!("[{user}]"), r#""system":{"text":"x"},"#),
            "system",
        ),
        (
            msgs(&format!("[{user}]"), r#""system":[{"type":"image"}],"#),
            "system.0",
        ),
        (
            msgs(
                &format!("[{user}]"),
                r#""tools":[{"name":"bad name","input_schema":{}}],"#,
            ),
            "tools.0.name",
        ),
        (
            msgs(
                &format!("[{user}]"),
                &format!(
                    r#""tools":[{{"name":"{}","input_schema":{{}}}}],"#,
                    "x".repeat(65)
                ),
            ),
            "tools.0.name",
        ),
        (
            msgs(&format!("[{user}]"), r#""tools":[{"name":"f"}],"#),
            "tools.0.input_schema",
        ),
        (
            msgs(
                &format!("[{user}]"),
                r#""tools":[{"name":"f","input_schema":"{}"}],"#,
            ),
            "tools.0.input_schema",
        ),
        (
            msgs(
                &format!("[{user}]"),
                r#""thinking":{"type":"enabled","budget_tokens":1000},"#,
            ),
            "thinking.enabled.budget_tokens",
        ),
        (
            msgs(
                &format!("[{user}]"),
                r#""thinking":{"type":"enabled","budget_tokens":2048},"#,
            ),
            "max_tokens",
        ),
        (
            msgs(&format!("[{user}]"), r#""thinking":{"type":"on"},"#),
            "thinking.type",
        ),
        (
            msgs(&format!("[{user}]"), r#""temperature":1.5,"#),
            "temperature",
        ),
        (
            msgs(&format!("[{user}]"), r#""temperature":-0.1,"#),
            "temperature",
        ),
        (
            msgs(
                &format!("[{user}]"),
                r#""tool_choice":{"type":"required"},"#,
            ),
            "tool_choice",
        ),
        (
            msgs(&format!("[{user}]"), r#""tool_choice":"auto","#),
            "tool_choice",
        ),
        (
            msgs(&format!("[{user}]"), r#""tool_choice":{"type":"tool"},"#),
            "tool_choice.tool.name",
        ),
    ];
    for (body, path) in cases {
        refused(Endpoint::Messages, body, path);
    }
    // count_tokens checks the same (except max_tokens).
    refused(
        Endpoint::CountTokens,
        r#"{"model":"c","messages":[{"role":"system","content":"x"}]}"#,
        "messages.0.role",
    );

    let ok: &[String] = &[
        msgs(&format!("[{user},{USE},{}]", result("toolu_1")), ""),
        msgs(
            &format!(
                r#"[{user},{{"role":"assistant","content":[{{"type":"thinking","thinking":"hm","signature":"sig"}},{{"type":"redacted_thinking","data":"xx"}},{{"type":"tool_use","id":"a","name":"f","input":{{}}}},{{"type":"tool_use","id":"b","name":"f","input":{{}}}}]}},{{"role":"user","content":[{{"type":"tool_result","tool_use_id":"b"}},{{"type":"tool_result","tool_use_id":"a","is_error":true,"content":[{{"type":"text","text":"no"}}]}},{{"type":"text","text":"go on"}}]}}]"#
            ),
            r#""thinking":{"type":"enabled","budget_tokens":1024},"#,
        ),
        msgs(
            r#"[{"role":"user","content":[{"type":"image","source":{"type":"url","url":"https://x/y.png"}},{"type":"document","source":{"type":"text","media_type":"text/plain","data":"d"}},{"type":"text","text":"see","cache_control":{"type":"ephemeral"}}]}]"#,
            r#""system":[{"type":"text","text":"s"}],"temperature":1,"tool_choice":{"type":"tool","name":"f"},"tools":[{"name":"f-1_x","input_schema":{"type":"object"}},{"type":"web_search_20250305","name":"web_search"}],"#,
        ),
        // A trailing assistant prefill with tool_use is not checked for answers.
        msgs(&format!("[{user},{USE}]"), ""),
    ];
    for body in ok {
        accepted(Endpoint::Messages, body);
    }
}

fn chat(messages: &str, extra: &str) -> String {
    format!(r#"{{"model":"g",{extra}"messages":{messages}}}"#)
}

const CALLS: &str = r#"{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}},{"id":"call_2","type":"function","function":{"name":"f","arguments":"{}"}}]}"#;

#[test]
fn chat_rules() {
    let user = r#"{"role":"user","content":"hi"}"#;
    let tool = |id: &str| format!(r#"{{"role":"tool","tool_call_id":"{id}","content":"ok"}}"#);
    let cases: &[(String, &str)] = &[
        (
            chat(r#"[{"role":"model","content":"x"}]"#, ""),
            "messages[0].role",
        ),
        (
            chat(r#"[{"role":"function","content":"x","name":"f"}]"#, ""),
            "messages[0].role",
        ),
        (
            chat(&format!("[{user},{}]", tool("call_1")), ""),
            "messages[1].role",
        ),
        (
            chat(
                &format!("[{user},{CALLS},{},{}]", tool("call_1"), tool("call_3")),
                "",
            ),
            "messages[3].role",
        ),
        (
            chat(&format!("[{user},{CALLS},{}]", tool("call_1")), ""),
            "messages",
        ),
        (
            chat(&format!("[{user},{CALLS},{},{user}]", tool("call_1")), ""),
            "messages[3]",
        ),
        (
            chat(
                &format!(
                    "[{user},{CALLS},{},{},{}]",
                    tool("call_1"),
                    tool("call_2"),
                    tool("call_1")
                ),
                "",
            ),
            "messages[4].role",
        ),
        (
            chat(
                r#"[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":{}}}]}]"#,
                "",
            ),
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            chat(
                r#"[{"role":"user","content":[{"type":"image","source":{}}]}]"#,
                "",
            ),
            "messages[0].content[0].type",
        ),
        (
            chat(
                r#"[{"role":"user","content":[{"type":"input_text","text":"x"}]}]"#,
                "",
            ),
            "messages[0].content[0].type",
        ),
        (
            chat(
                r#"[{"role":"system","content":[{"type":"image_url","image_url":{"url":"u"}}]}]"#,
                "",
            ),
            "messages[0].content[0].type",
        ),
        (
            chat(
                &format!("[{user}]"),
                r#""tools":[{"type":"function","function":{"name":"a.b"}}],"#,
            ),
            "tools[0].function.name",
        ),
        (
            chat(
                &format!("[{user}]"),
                r#""tools":[{"type":"function","name":"f"}],"#,
            ),
            "tools[0].function.name",
        ),
        (
            chat(
                &format!("[{user}]"),
                r#""tools":[{"type":"tool","function":{"name":"f"}}],"#,
            ),
            "tools[0].type",
        ),
        (
            chat(
                &format!("[{user}]"),
                r#""max_tokens":5,"max_completion_tokens":5,"#,
            ),
            "max_tokens",
        ),
    ];
    for (body, path) in cases {
        refused(Endpoint::ChatCompletions, body, path);
    }
    let ok: &[String] = &[
        chat(
            &format!("[{user},{CALLS},{},{}]", tool("call_2"), tool("call_1")),
            "",
        ),
        chat(
            &format!(
                "[{user},{CALLS},{},{},{user}]",
                tool("call_1"),
                tool("call_2")
            ),
            "",
        ),
        chat(
            r#"[{"role":"developer","content":[{"type":"text","text":"d"}]},{"role":"user","content":[{"type":"text","text":"t"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AA=="}},{"type":"input_audio","input_audio":{"data":"AA","format":"wav"}},{"type":"file","file":{"file_id":"f"}}]},{"role":"assistant","content":[{"type":"refusal","refusal":"no"}]},{"role":"user","content":"again"}]"#,
            r#""tools":[{"type":"function","function":{"name":"get-weather_2"}}],"max_completion_tokens":5,"#,
        ),
    ];
    for body in ok {
        accepted(Endpoint::ChatCompletions, body);
    }
}

#[test]
fn responses_rules() {
    let resp = |input: &str, extra: &str| format!(r#"{{"model":"g",{extra}"input":{input}}}"#);
    let cases: &[(String, &str)] = &[
        (
            resp(r#"[{"type":"chat","content":"x"}]"#, ""),
            "input[0].type",
        ),
        (resp(r#"[{"content":"x"}]"#, ""), "input[0].type"),
        (
            resp(r#"[{"role":"tool","content":"x"}]"#, ""),
            "input[0].role",
        ),
        (resp(r#"[{"role":"user"}]"#, ""), "input[0].content"),
        (
            resp(
                r#"[{"type":"function_call_output","call_id":"c1","output":"x"}]"#,
                "",
            ),
            "input[0].call_id",
        ),
        (
            resp(r#"[{"type":"function_call_output","output":"x"}]"#, ""),
            "input[0].call_id",
        ),
        (
            resp(
                r#"[{"type":"function_call","call_id":"c1","name":"f","arguments":{}}]"#,
                "",
            ),
            "input[0].arguments",
        ),
        (
            resp(
                r#"[{"type":"function_call","call_id":"c1","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c1"}]"#,
                "",
            ),
            "input[1].output",
        ),
        (
            resp(
                r#""hi""#,
                r#""tools":[{"type":"function","name":"has space"}],"#,
            ),
            "tools[0].name",
        ),
    ];
    for (body, path) in cases {
        refused(Endpoint::Responses, body, path);
    }
    let ok: &[String] = &[
        resp(
            r#"[{"type":"message","role":"developer","content":"d"},{"role":"user","content":[{"type":"input_text","text":"t"}]},{"type":"reasoning","id":"rs_1","summary":[]},{"type":"function_call","call_id":"c1","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c1","output":"x"}]"#,
            r#""tools":[{"type":"function","name":"f"},{"type":"web_search"}],"#,
        ),
        // With previous_response_id the call is in the stored response.
        resp(
            r#"[{"type":"function_call_output","call_id":"c1","output":"x"}]"#,
            r#""previous_response_id":"resp_1","#,
        ),
    ];
    for body in ok {
        accepted(Endpoint::Responses, body);
    }
}
