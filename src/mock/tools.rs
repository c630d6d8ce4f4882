//! The tools a request offers, `tool_choice`, and the deterministic arguments of a mock call.
//!
//! Function tools only: chat `tools[].function`, Anthropic custom tools (`name` +
//! `input_schema`, no server-tool `type`), Responses `tools[]` of type `function`. A call's
//! arguments fill one string property of the tool's schema with the quoted words of the last
//! user turn (see the module doc of `mock`, "Tool calls").

use simd_json::prelude::*;
use simd_json::BorrowedValue;

use super::json::{raw, string};
use super::Endpoint;

/// A function tool the model may call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Tool {
    /// Its name.
    pub name: String,
    /// The schema property a call fills: the first required string property, else the first
    /// string property; `None` (arguments `{}`) when the schema has none.
    pub arg: Option<String>,
}

/// What `tool_choice` asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum Choice {
    /// `auto` (or absent): call when the last turn is a user turn.
    #[default]
    Auto,
    /// `none`: never call.
    None,
    /// `required` / Anthropic `any`: call (as `auto` does: the mock always calls when it may).
    Any,
    /// A named function.
    Named(String),
}

/// The function tools of a request, its `tool_choice`, and whether Anthropic's
/// `disable_parallel_tool_use` leaves parallel calls allowed.
pub(crate) fn offered(endpoint: Endpoint, root: &BorrowedValue<'_>) -> (Vec<Tool>, Choice, bool) {
    let anthropic = matches!(endpoint, Endpoint::Messages | Endpoint::CountTokens);
    let mut tools = Vec::new();
    for t in root.get_array("tools").map(Vec::as_slice).unwrap_or(&[]) {
        let (name, schema) = match endpoint {
            Endpoint::ChatCompletions => {
                if t.get_str("type") != Some("function") {
                    continue;
                }
                let f = t.get("function");
                (
                    f.and_then(|f| f.get_str("name")),
                    f.and_then(|f| f.get("parameters")),
                )
            }
            Endpoint::Responses => {
                if t.get_str("type") != Some("function") {
                    continue;
                }
                (t.get_str("name"), t.get("parameters"))
            }
            Endpoint::Messages | Endpoint::CountTokens => {
                if !matches!(t.get_str("type"), None | Some("custom")) {
                    continue;
                }
                (t.get_str("name"), t.get("input_schema"))
            }
        };
        if let Some(name) = name {
            tools.push(Tool {
                name: name.to_owned(),
                arg: schema.and_then(string_property),
            });
        }
    }

    let choice = root.get("tool_choice");
    let mut parallel = true;
    let choice = if anthropic {
        parallel = !choice
            .and_then(|c| c.get_bool("disable_parallel_tool_use"))
            .unwrap_or(false);
        match choice.and_then(|c| c.get_str("type")) {
            Some("none") => Choice::None,
            Some("any") => Choice::Any,
            Some("tool") => named(choice.and_then(|c| c.get_str("name"))),
            _ => Choice::Auto,
        }
    } else {
        match choice {
            Some(c) if c.as_str() == Some("none") => Choice::None,
            Some(c) if c.as_str() == Some("required") => Choice::Any,
            Some(c) if c.get_str("type") == Some("function") => named(
                c.get_str("name")
                    .or_else(|| c.get("function").and_then(|f| f.get_str("name"))),
            ),
            _ => Choice::Auto,
        }
    };
    (tools, choice, parallel)
}

fn named(name: Option<&str>) -> Choice {
    name.map_or(Choice::Any, |n| Choice::Named(n.to_owned()))
}

/// The property a call fills (see [`Tool::arg`]).
fn string_property(schema: &BorrowedValue<'_>) -> Option<String> {
    let props = schema.get("properties")?.as_object()?;
    let is_string = |name: &str| {
        props
            .get(name)
            .is_some_and(|p| p.get_str("type") == Some("string"))
    };
    let required = schema
        .get_array("required")
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if let Some(r) = required
        .iter()
        .filter_map(|r| r.as_str())
        .find(|r| is_string(r))
    {
        return Some(r.to_owned());
    }
    props
        .iter()
        .find(|(_, p)| p.get_str("type") == Some("string"))
        .map(|(k, _)| k.to_string())
}

/// The tools to call for this request: none when there are no tools or `tool_choice` is
/// `none`; otherwise the named tool (the first when the name is not offered), or the first;
/// two calls when `parallel` (the second and first tools, or the one tool twice).
pub(crate) fn pick<'t>(tools: &'t [Tool], choice: &Choice, parallel: bool) -> Vec<&'t Tool> {
    let Some(first) = tools.first() else {
        return Vec::new();
    };
    let one = match choice {
        Choice::None => return Vec::new(),
        Choice::Named(n) => tools.iter().find(|t| &t.name == n).unwrap_or(first),
        Choice::Auto | Choice::Any => first,
    };
    if !parallel || matches!(choice, Choice::Named(_)) {
        return vec![one];
    }
    vec![one, tools.get(1).unwrap_or(one)]
}

/// The arguments JSON of a call to `tool`: `{"<arg>":"<words joined by spaces>"}`, or `{}`.
pub(crate) fn arguments(tool: &Tool, words: &[String]) -> String {
    let mut out = Vec::with_capacity(16 + words.iter().map(|w| w.len() + 1).sum::<usize>());
    raw(&mut out, "{");
    if let Some(arg) = &tool.arg {
        string(&mut out, arg);
        raw(&mut out, ":");
        string(&mut out, &words.join(" "));
    }
    raw(&mut out, "}");
    // Built from `&str`s and ASCII, so it is UTF-8.
    String::from_utf8(out).unwrap_or_default()
}
