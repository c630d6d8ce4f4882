//! The request in neither API: what the three client parsers produce and the two provider
//! writers consume, so each API is read once and written once (three parsers and two writers
//! instead of four translators).
//!
//! Everything borrows from the client's parsed body (`'v`): text, ids and JSON schemas are
//! written out from where simd-json left them. Only tool names (mapped through
//! [`ToolNames`](crate::translate::names::ToolNames)) and joined reasoning summaries are owned.
//! Consecutive turns of one role are merged as they are pushed, so a Responses assistant
//! message and its `function_call` items make one assistant turn, and consecutive tool
//! results make one user turn (Anthropic requires alternation; chat takes it as well).

use std::borrow::Cow;

use simd_json::BorrowedValue as Value;
use smallvec::SmallVec;

/// Who speaks a turn. System text is not a turn: it is gathered in [`Pivot::system`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The user (and tool results, which Anthropic carries in user turns).
    User,
    /// The model.
    Assistant,
}

/// An image, as the client gave it; the gateway fetches nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Image<'v> {
    /// Inline bytes: Anthropic `base64` source, OpenAI `data:` URL.
    Base64 {
        /// `image/png`...
        media_type: &'v str,
        /// The base64 text.
        data: &'v str,
    },
    /// An `http(s)` URL.
    Url(&'v str),
}

/// Tool call arguments: OpenAI sends a JSON text, Anthropic an object.
#[derive(Clone, Copy, Debug)]
pub enum Args<'v> {
    /// A JSON text (OpenAI `arguments`), possibly empty or invalid.
    Text(&'v str),
    /// A JSON value (Anthropic `input`).
    Value(&'v Value<'v>),
}

/// One piece of a turn.
#[derive(Clone, Debug)]
pub enum Part<'v> {
    /// Text.
    Text(&'v str),
    /// An image.
    Image(Image<'v>),
    /// An inline document (PDF): Anthropic `document` base64 source, OpenAI `file` part.
    File {
        /// `application/pdf`.
        media_type: &'v str,
        /// The base64 text.
        data: &'v str,
        /// The client's file name, if any (OpenAI `filename`).
        filename: Option<&'v str>,
    },
    /// Reasoning to replay (Anthropic requires its signature back in tool-use turns).
    Thinking {
        /// The thinking text (a Responses reasoning item's summaries, joined).
        text: Cow<'v, str>,
        /// Anthropic's `signature` (Responses `encrypted_content`).
        signature: &'v str,
    },
    /// Anthropic `redacted_thinking` data.
    Redacted(&'v str),
    /// A tool call made by the model.
    Call {
        /// The call id (`tool_call_id`, `tool_use_id`, `call_id`).
        id: &'v str,
        /// The provider's tool name (mapped through `ToolNames`).
        name: String,
        /// The arguments.
        args: Args<'v>,
    },
    /// A tool's result, given back by the user side.
    Result {
        /// The call id it answers.
        id: &'v str,
        /// Text and image parts.
        content: Vec<Part<'v>>,
        /// Anthropic `is_error`.
        is_error: bool,
    },
}

/// One turn.
#[derive(Clone, Debug)]
pub struct Turn<'v> {
    /// Its speaker.
    pub role: Role,
    /// Its parts, in order.
    pub parts: Vec<Part<'v>>,
}

/// A function tool the client declares.
#[derive(Clone, Debug)]
pub struct Tool<'v> {
    /// The provider's name (mapped through `ToolNames`).
    pub name: String,
    /// What it does.
    pub description: Option<&'v str>,
    /// Its JSON schema (OpenAI `parameters`, Anthropic `input_schema`).
    pub schema: Option<&'v Value<'v>>,
    /// Strict schema adherence (both APIs take it).
    pub strict: Option<bool>,
}

/// Which tool the model must use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Choice {
    /// The model decides (OpenAI `auto`, Anthropic `auto`).
    Auto,
    /// No tool (both `none`).
    None,
    /// Some tool (OpenAI `required`, Anthropic `any`).
    Required,
    /// This tool, by provider name (OpenAI named function, Anthropic `tool`).
    Named(String),
}

/// Reasoning effort in OpenAI's words (Anthropic's `output_config.effort` adds `max`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effort {
    /// `none`: no reasoning.
    None,
    /// `minimal`.
    Minimal,
    /// `low`.
    Low,
    /// `medium`.
    Medium,
    /// `high`.
    High,
    /// `xhigh` (OpenAI's newest models; Anthropic's `xhigh` and `max`).
    XHigh,
}

impl Effort {
    /// Reads OpenAI's or Anthropic's effort word.
    pub fn parse(s: &str) -> Option<Effort> {
        Some(match s {
            "none" => Effort::None,
            "minimal" => Effort::Minimal,
            "low" => Effort::Low,
            "medium" => Effort::Medium,
            "high" => Effort::High,
            "xhigh" | "max" => Effort::XHigh,
            _ => return None,
        })
    }

    /// OpenAI's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Effort::None => "none",
            Effort::Minimal => "minimal",
            Effort::Low => "low",
            Effort::Medium => "medium",
            Effort::High => "high",
            Effort::XHigh => "xhigh",
        }
    }
}

/// What the client asked of reasoning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reasoning {
    /// Nothing said: the provider's default.
    Unset,
    /// Explicitly off (Anthropic `disabled`).
    Disabled,
    /// OpenAI `reasoning_effort` / Responses `reasoning.effort`.
    Effort(Effort),
    /// Anthropic `enabled` with `budget_tokens`.
    Budget(u64),
    /// Anthropic `adaptive`, with `output_config.effort` if given.
    Adaptive(Option<Effort>),
}

/// A structured-output constraint on the answer.
#[derive(Clone, Copy, Debug)]
pub enum Format<'v> {
    /// Any JSON object (OpenAI `json_object`).
    JsonObject,
    /// JSON following a schema.
    JsonSchema {
        /// OpenAI's schema name (Anthropic takes none).
        name: Option<&'v str>,
        /// The schema.
        schema: &'v Value<'v>,
        /// OpenAI `strict`.
        strict: Option<bool>,
    },
}

/// The request between parsing and writing.
#[derive(Debug)]
pub struct Pivot<'v> {
    /// System text, in order (Anthropic `system`, OpenAI `system`/`developer`, `instructions`).
    pub system: SmallVec<[&'v str; 4]>,
    /// The conversation, same-role turns merged.
    pub turns: Vec<Turn<'v>>,
    /// Function tools.
    pub tools: Vec<Tool<'v>>,
    /// Tool choice, if given.
    pub choice: Option<Choice>,
    /// `parallel_tool_calls` (Anthropic: the negation of `disable_parallel_tool_use`).
    pub parallel: Option<bool>,
    /// Stop sequences.
    pub stop: SmallVec<[&'v str; 4]>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    pub top_p: Option<f64>,
    /// The output bound.
    pub max_tokens: Option<u64>,
    /// Reasoning.
    pub reasoning: Reasoning,
    /// Structured output.
    pub format: Option<Format<'v>>,
    /// Streamed answer.
    pub stream: bool,
    /// An end-user id (OpenAI `user`/`safety_identifier`, Anthropic `metadata.user_id`).
    pub user: Option<&'v str>,
    /// Members a chat provider takes as they are and a messages provider has no place for
    /// (Responses `prompt_cache_key`, `service_tier`...): written to chat, dropped and named
    /// for messages.
    pub chat_only: SmallVec<[(&'static str, &'v Value<'v>); 4]>,
}

impl<'v> Pivot<'v> {
    /// An empty request.
    pub fn new() -> Pivot<'v> {
        Pivot {
            system: SmallVec::new(),
            turns: Vec::new(),
            tools: Vec::new(),
            choice: None,
            parallel: None,
            stop: SmallVec::new(),
            temperature: None,
            top_p: None,
            max_tokens: None,
            reasoning: Reasoning::Unset,
            format: None,
            stream: false,
            user: None,
            chat_only: SmallVec::new(),
        }
    }

    /// Appends `part` to the conversation, in the last turn when `role` speaks it.
    pub fn push(&mut self, role: Role, part: Part<'v>) {
        match self.turns.last_mut() {
            Some(t) if t.role == role => t.parts.push(part),
            _ => self.turns.push(Turn {
                role,
                parts: vec![part],
            }),
        }
    }
}

/// Splits a `data:<media type>;base64,<data>` URL; `None` for anything else.
pub fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (head, data) = rest.split_once(',')?;
    let media_type = head.strip_suffix(";base64")?;
    Some((media_type, data))
}
