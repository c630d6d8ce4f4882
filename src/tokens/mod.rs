//! Token counting: the real BPE encodings of OpenAI models, and the input tokens of a
//! `/v1/messages/count_tokens` request.
//!
//! # Encodings
//! Two vocabularies, both embedded in the binary by the `bpe-openai` crate (GitHub's linear-time
//! byte-pair encoder): `o200k_base` and `cl100k_base`. [`count`] gives exactly the number of
//! tokens tiktoken's `encode_ordinary` gives (the pre-tokenizer regex included, special tokens
//! read as plain text); the test suite checks it against `tiktoken-rs` on committed fixtures.
//!
//! [`encoding_for`] maps an upstream model name to its encoding, following tiktoken's model table
//! (`tiktoken/model.py`):
//! - `cl100k_base`: `gpt-4` and `gpt-4-*` (`gpt-4-turbo`, `gpt-4-32k`, `gpt-4-0613`, ...),
//!   `gpt-3.5*` and Azure's `gpt-35-turbo*`, `text-embedding-3-*`, `text-embedding-ada-002`,
//!   `davinci-002`, `babbage-002`;
//! - `o200k_base`: everything else: `gpt-4o*`, `gpt-4.1*`, `gpt-4.5*`, `gpt-5*`, `o1*`, `o3*`,
//!   `o4*`, and any model we do not know (every OpenAI model since May 2024 uses it).
//!
//! The name is matched without regard to ASCII case, after dropping a fine-tune's `ft:` prefix
//! (`ft:gpt-4o-mini:org::id` counts as `gpt-4o-mini`) and a `provider/` prefix.
//!
//! # Cost and limits
//! The count is linear in the input: `bpe-openai` pre-tokenizes with a lookahead-free regex
//! (`regex-automata`, no backtracking) and encodes each piece by backtracking over an
//! Aho-Corasick automaton of the vocabulary, so adversarial text (1 MB of one repeated character,
//! of random bytes, of letters without spaces) costs about what prose costs per byte (6 to 80 ms
//! per MB on one core; `benches/tokens.rs`). Nothing a client sends can make it panic: the input
//! is a `&str`, and every byte is a token of both vocabularies.
//!
//! Each vocabulary is built once per process on first use, behind `bpe-openai`'s `LazyLock`
//! (std's `OnceLock` with its initialiser attached): ~50-70 ms for `o200k_base` and ~20-30 ms for
//! `cl100k_base` in a release build, deserializing the prebuilt tables embedded in the binary
//! (32 MB and 15 MB of it), ~100 MB resident for both once built. A worker that counts first
//! would stall its core for that long and any other worker counting meanwhile waits for it; a
//! build at start would cost every gateway that never counts ~100 MB of idle memory. So the
//! gateway builds a vocabulary on the first request that needs it, on a thread of its own
//! ([`built`]), while the worker goes on serving.
//!
//! # Request counting
//! [`count_request`] and [`estimate_anthropic`] read an Anthropic Messages body; the rules they
//! follow are in the `request` module's documentation and in `docs/api.md` (count_tokens).

use std::sync::atomic::{AtomicBool, Ordering};

mod request;
#[cfg(test)]
mod tests;

pub use request::{
    count_request, estimate_anthropic, CLAUDE_IMAGE_TOKENS, CLAUDE_PER_O200K,
    CLAUDE_TOOL_PROMPT_AUTO, CLAUDE_TOOL_PROMPT_FORCED, IMAGE_TOKENS, REPLY_PRIMING,
    TOKENS_PER_MESSAGE, TOKENS_PER_NAME,
};

use bpe_openai::Tokenizer;

/// A byte-pair encoding of OpenAI's models.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// `o200k_base`: GPT-4o and every OpenAI model since.
    O200k,
    /// `cl100k_base`: GPT-4, GPT-3.5 and the `text-embedding-3` / `ada-002` embeddings.
    Cl100k,
}

impl Encoding {
    /// tiktoken's name of the encoding.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::O200k => "o200k_base",
            Encoding::Cl100k => "cl100k_base",
        }
    }

    /// The process-wide tokenizer, built on first use.
    fn tokenizer(self) -> &'static Tokenizer {
        match self {
            Encoding::O200k => bpe_openai::o200k_base(),
            Encoding::Cl100k => bpe_openai::cl100k_base(),
        }
    }
}

/// Model-name prefixes counted with `cl100k_base`, after `gpt-4` itself; see the module doc.
const CL100K_PREFIXES: [&str; 5] = [
    "gpt-4-",
    "gpt-3.5",
    "gpt-35-turbo",
    "text-embedding-3-",
    "text-embedding-ada-002",
];

/// Exact model names counted with `cl100k_base`.
const CL100K_NAMES: [&str; 3] = ["gpt-4", "davinci-002", "babbage-002"];

/// The encoding of `upstream_model`: `cl100k_base` for the GPT-4 / GPT-3.5 / embedding families,
/// `o200k_base` for everything else, unknown names included (the rule is in the module doc).
pub fn encoding_for(upstream_model: &str) -> Encoding {
    let mut name = upstream_model.trim();
    if let Some(rest) = strip_prefix_ci(name, "ft:") {
        name = rest.split(':').next().unwrap_or(rest);
    }
    if let Some(slash) = name.rfind('/') {
        name = &name[slash + 1..];
    }
    let cl100k = CL100K_NAMES.iter().any(|n| name.eq_ignore_ascii_case(n))
        || CL100K_PREFIXES
            .iter()
            .any(|p| strip_prefix_ci(name, p).is_some());
    if cl100k {
        Encoding::Cl100k
    } else {
        Encoding::O200k
    }
}

/// `s` without `prefix`, compared without regard to ASCII case.
fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.as_bytes().get(..prefix.len())?;
    // The prefix is ASCII, so a match ends on a char boundary.
    head.eq_ignore_ascii_case(prefix.as_bytes())
        .then(|| &s[prefix.len()..])
}

/// The number of tokens of `text` in `enc`, as tiktoken's `encode_ordinary` counts them.
/// The first call per encoding builds its vocabulary (see the module doc); linear in `text`.
pub fn count(enc: Encoding, text: &str) -> usize {
    enc.tokenizer().count(text)
}

/// Set once each encoding's vocabulary is built (indexed by [`Encoding::slot`]).
static BUILT: [AtomicBool; 2] = [AtomicBool::new(false), AtomicBool::new(false)];

impl Encoding {
    fn slot(self) -> usize {
        match self {
            Encoding::O200k => 0,
            Encoding::Cl100k => 1,
        }
    }
}

/// Resolves once `enc`'s vocabulary is built, building it on a thread of its own if it is not:
/// a worker awaits this rather than building it on its ring. Concurrent first callers each
/// start a thread; the vocabulary's `LazyLock` builds it once and the others wait there, off
/// the workers.
pub async fn built(enc: Encoding) {
    if BUILT[enc.slot()].load(Ordering::Acquire) {
        return;
    }
    let (tx, rx) = flume::bounded::<()>(1);
    let spawned = std::thread::Builder::new()
        .name("switchyard-tokens".into())
        .spawn(move || {
            enc.tokenizer();
            BUILT[enc.slot()].store(true, Ordering::Release);
            let _ = tx.send(());
        });
    if spawned.is_ok() {
        let _ = rx.recv_async().await;
    }
    // No thread to be had: the caller's count builds it, on its own thread as a last resort.
}

/// Builds both vocabularies now, so no request pays for it. Idempotent; call it at start,
/// off the workers or before they accept.
pub fn warm() {
    for enc in [Encoding::O200k, Encoding::Cl100k] {
        enc.tokenizer();
        BUILT[enc.slot()].store(true, Ordering::Release);
    }
}
