//! Real agents' requests (the hand-written Claude Code and Codex fixtures) to the other protocol.

use simd_json::json;
use simd_json::prelude::*;
use simd_json::OwnedValue;

use super::*;

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
