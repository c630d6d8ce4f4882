use super::*;

/// Tokens of `text` in `enc`, as u64 for the framing sums.
fn t(enc: Encoding, text: &str) -> u64 {
    count(enc, text) as u64
}

fn counted(enc: Encoding, body: &str) -> u64 {
    let mut scratch = Vec::new();
    count_request(body.as_bytes(), enc, &mut scratch).unwrap()
}

fn estimated(body: &str) -> u64 {
    let mut scratch = Vec::new();
    estimate_anthropic(body.as_bytes(), &mut scratch).unwrap()
}

#[test]
fn encoding_for_models() {
    use Encoding::{Cl100k, O200k};
    let table = [
        ("gpt-4", Cl100k),
        ("gpt-4-0613", Cl100k),
        ("gpt-4-32k", Cl100k),
        ("gpt-4-turbo", Cl100k),
        ("gpt-4-turbo-2024-04-09", Cl100k),
        ("gpt-3.5-turbo", Cl100k),
        ("gpt-3.5-turbo-0125", Cl100k),
        ("gpt-35-turbo", Cl100k),
        ("text-embedding-3-small", Cl100k),
        ("text-embedding-3-large", Cl100k),
        ("text-embedding-ada-002", Cl100k),
        ("davinci-002", Cl100k),
        ("GPT-4-Turbo", Cl100k),
        ("ft:gpt-3.5-turbo-0613:acme::8abc", Cl100k),
        ("openai/gpt-4", Cl100k),
        ("gpt-4o", O200k),
        ("gpt-4o-mini", O200k),
        ("gpt-4o-2024-08-06", O200k),
        ("chatgpt-4o-latest", O200k),
        ("gpt-4.1", O200k),
        ("gpt-4.1-nano", O200k),
        ("gpt-4.5-preview", O200k),
        ("gpt-5", O200k),
        ("gpt-5-mini", O200k),
        ("o1", O200k),
        ("o3-mini", O200k),
        ("o4-mini", O200k),
        ("ft:gpt-4o-mini-2024-07-18:acme::9xyz", O200k),
        ("claude-sonnet-4-5", O200k),
        ("mock-small", O200k),
        ("", O200k),
        ("gpt-4é", O200k),
        ("ft:", O200k),
    ];
    for (model, enc) in table {
        assert_eq!(encoding_for(model), enc, "{model}");
    }
}

#[test]
fn counts_known_strings() {
    // tiktoken's own examples.
    assert_eq!(count(Encoding::Cl100k, "tiktoken is great!"), 6);
    assert_eq!(count(Encoding::O200k, "hello world"), 2);
    assert_eq!(count(Encoding::Cl100k, "hello world"), 2);
    assert_eq!(count(Encoding::O200k, ""), 0);
    // Special tokens are plain text.
    assert!(count(Encoding::O200k, "<|endoftext|>") > 1);
}

#[test]
fn warm_is_idempotent() {
    warm();
    warm();
    assert_eq!(count(Encoding::O200k, "a"), 1);
}

#[test]
fn adversarial_text_does_not_panic() {
    let n = 256 * 1024;
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let bytes: Vec<u8> = (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let lossy = String::from_utf8_lossy(&bytes);
    for enc in [Encoding::O200k, Encoding::Cl100k] {
        assert_eq!(count(enc, &"a".repeat(n)), n / 8);
        assert!(count(enc, &" ".repeat(n)) > 0);
        assert!(count(enc, &lossy) > 0);
        assert!(count(enc, &"\u{301}".repeat(n / 2)) > 0);
    }
}

#[test]
fn chat_framing() {
    for enc in [Encoding::O200k, Encoding::Cl100k] {
        // One user message: 3 + role + text, + 3 for the reply priming.
        let one = r#"{"model":"x","messages":[{"role":"user","content":"Hello!"}]}"#;
        assert_eq!(counted(enc, one), 3 + t(enc, "user") + t(enc, "Hello!") + 3);

        // System string, blocks, a name.
        let body = r#"{"system":[{"type":"text","text":"Be brief."},{"type":"text","text":"No lists."}],
            "messages":[{"role":"user","name":"ann","content":[{"type":"text","text":"Hi"}]},
                        {"role":"assistant","content":"Hello, Ann."}]}"#;
        let want = (3 + t(enc, "system") + t(enc, "Be brief.") + t(enc, "No lists."))
            + (3 + t(enc, "user") + 1 + t(enc, "ann") + t(enc, "Hi"))
            + (3 + t(enc, "assistant") + t(enc, "Hello, Ann."))
            + 3;
        assert_eq!(counted(enc, body), want);

        // A null system and absent tools are free; empty messages leave the priming.
        assert_eq!(counted(enc, r#"{"system":null,"messages":[]}"#), 3);
    }
}

#[test]
fn tool_use_and_results() {
    let enc = Encoding::O200k;
    let body = r#"{"messages":[
        {"role":"user","content":"Weather in Paris?"},
        {"role":"assistant","content":[
            {"type":"thinking","thinking":"Call the tool.","signature":"abc"},
            {"type":"redacted_thinking","data":"ZZZZZZZZZZZZ"},
            {"type":"text","text":"Checking."},
            {"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city": "Paris", "days": 2}}]},
        {"role":"user","content":[
            {"type":"tool_result","tool_use_id":"toolu_1","content":"18C, sunny"},
            {"type":"tool_result","tool_use_id":"toolu_2","content":[{"type":"text","text":"ok"},{"type":"image","source":{}}]}]},
        {"role":"user","content":[
            {"type":"tool_result","tool_use_id":"toolu_3","content":"done"},
            {"type":"text","text":"Thanks"}]}
    ]}"#;
    let want = (3 + t(enc, "user") + t(enc, "Weather in Paris?"))
        + (3 + t(enc, "assistant")
            + t(enc, "Call the tool.")
            + t(enc, "Checking.")
            + t(enc, "get_weather")
            + t(enc, r#"{"city":"Paris","days":2}"#))
        // Only tool results: two tool messages, no user framing.
        + (3 + t(enc, "tool") + t(enc, "18C, sunny"))
        + (3 + t(enc, "tool") + t(enc, "ok") + IMAGE_TOKENS)
        // A result and text: a tool message and a user message.
        + (3 + t(enc, "tool") + t(enc, "done"))
        + (3 + t(enc, "user") + t(enc, "Thanks"))
        + 3;
    assert_eq!(counted(enc, body), want);
}

#[test]
fn images_and_documents() {
    let enc = Encoding::Cl100k;
    let body = r#"{"messages":[{"role":"user","content":[
        {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}},
        {"type":"image","source":{"type":"url","url":"https://example.com/a.png"}},
        {"type":"document","source":{"type":"text","media_type":"text/plain","data":"Plain doc."}},
        {"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0="}},
        {"type":"mystery","text":"ignored"}]}]}"#;
    let want = 3 + t(enc, "user") + 2 * IMAGE_TOKENS + t(enc, "Plain doc.") + 3;
    assert_eq!(counted(enc, body), want);
}

#[test]
fn tools_by_the_cookbook() {
    let body = r#"{"messages":[{"role":"user","content":"hi"}],"tools":[
        {"name":"get_weather","description":"Get the weather.","input_schema":{"type":"object",
            "properties":{
                "city":{"type":"string","description":"City name."},
                "unit":{"type":"string","enum":["c","f"]},
                "days":{"type":["integer","null"]}}}},
        {"name":"ping","input_schema":{"type":"object","properties":{}}}]}"#;
    // An enum property: prop_key (3) and enum_init (-3) cancel out.
    let enum_prop = 0;
    for (enc, func_init) in [(Encoding::O200k, 7), (Encoding::Cl100k, 10)] {
        let messages = 3 + t(enc, "user") + t(enc, "hi") + 3;
        let weather = func_init
            + t(enc, "get_weather:Get the weather")
            + 3
            + (3 + t(enc, "city:string:City name"))
            + (enum_prop + (3 + t(enc, "c")) + (3 + t(enc, "f")) + t(enc, "unit:string:"))
            + (3 + t(enc, r#"days:["integer","null"]:"#));
        let ping = func_init + t(enc, "ping:");
        assert_eq!(
            counted(enc, body),
            messages + weather + ping + 12,
            "{enc:?}"
        );
    }
}

#[test]
fn anthropic_estimate() {
    let o = Encoding::O200k;
    let scaled = |n: u64| (n * CLAUDE_PER_O200K.0).div_ceil(CLAUDE_PER_O200K.1);

    let body = r#"{"model":"claude-sonnet-4-5","system":"Be brief.",
        "messages":[{"role":"user","content":[{"type":"text","text":"Describe this."},{"type":"image","source":{}}]}]}"#;
    let text = t(o, "Be brief.") + t(o, "Describe this.");
    let framing = (3 + t(o, "system")) + (3 + t(o, "user"));
    assert_eq!(
        estimated(body),
        scaled(text) + framing + CLAUDE_IMAGE_TOKENS
    );

    // Tools: their JSON scaled, plus the tool-use system prompt for the tool choice.
    let tools = r#""tools":[{"name":"f","description":"Do it.","input_schema":{"type":"object"},"cache_control":{"type":"ephemeral"}}]"#;
    let text = t(o, "hi") + t(o, "f") + t(o, "Do it.") + t(o, r#"{"type":"object"}"#);
    let framing = 3 + t(o, "user");
    let auto = format!(r#"{{"messages":[{{"role":"user","content":"hi"}}],{tools}}}"#);
    assert_eq!(
        estimated(&auto),
        scaled(text) + framing + CLAUDE_TOOL_PROMPT_AUTO
    );
    let forced = format!(
        r#"{{"messages":[{{"role":"user","content":"hi"}}],{tools},"tool_choice":{{"type":"any"}}}}"#
    );
    assert_eq!(
        estimated(&forced),
        scaled(text) + framing + CLAUDE_TOOL_PROMPT_FORCED
    );

    // The estimate is above the o200k count on English prose.
    let prose = r#"{"messages":[{"role":"user","content":"The quick brown fox jumps over the lazy dog, again and again, until the dog finally wakes up."}]}"#;
    assert!(estimated(prose) > counted(o, prose) - REPLY_PRIMING);
}

#[test]
fn bad_bodies() {
    let table: [(&str, &str); 8] = [
        ("{", "parsing the body"),
        ("[1]", "valid dictionary"),
        (r#"{"model":"x"}"#, "messages: Field required"),
        (
            r#"{"messages":{}}"#,
            "messages: Input should be a valid list",
        ),
        (
            r#"{"messages":[1]}"#,
            "messages.0.Input should be a valid dictionary",
        ),
        (
            r#"{"messages":[{"content":"x"}]}"#,
            "messages.0.role: Field required",
        ),
        (
            r#"{"messages":[{"role":"user","content":"a"},{"role":"user","content":7}]}"#,
            "messages.1.content",
        ),
        (
            r#"{"messages":[],"tools":{}}"#,
            "tools: Input should be a valid list",
        ),
    ];
    let mut scratch = Vec::new();
    for (body, want) in table {
        for res in [
            count_request(body.as_bytes(), Encoding::O200k, &mut scratch),
            estimate_anthropic(body.as_bytes(), &mut scratch),
        ] {
            let err = res.expect_err(body);
            assert!(err.contains(want), "{body}: {err}");
        }
    }
    // A bad system is named as such.
    let err = count_request(
        br#"{"system":5,"messages":[]}"#,
        Encoding::O200k,
        &mut scratch,
    )
    .unwrap_err();
    assert!(err.starts_with("system:"), "{err}");
}

#[test]
fn scratch_is_reused_and_body_untouched() {
    let body = br#"{"messages":[{"role":"user","content":"caf\u00e9 \"quoted\""}]}"#.to_vec();
    let copy = body.clone();
    let mut scratch = Vec::with_capacity(4096);
    let a = count_request(&body, Encoding::O200k, &mut scratch).unwrap();
    let b = count_request(&body, Encoding::O200k, &mut scratch).unwrap();
    assert_eq!(a, b);
    assert_eq!(body, copy);
    // The escapes are decoded before counting.
    assert_eq!(
        a,
        3 + t(Encoding::O200k, "user") + t(Encoding::O200k, "café \"quoted\"") + 3
    );
}
