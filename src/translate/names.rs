//! Tool names the provider can take, and back.
//!
//! Both APIs limit a tool name to 64 characters of `[a-zA-Z0-9_-]`. Clients send longer ones
//! (MCP servers name tools `mcp__<server>__<tool>`) and Responses clients group functions in
//! `namespace` tools. A name that fits is sent as is; a namespaced function becomes
//! `<namespace>__<name>`; anything too long or with other characters becomes
//! `h<8 hex of its FNV-1a hash>_<the last 54 valid characters>`, so it still ends in the
//! function's name and is stable across the turns of a conversation (the same client name
//! always maps to the same provider name, with no state kept between requests). The
//! [`ToolNames`] of a request maps provider names back to the client's (and its namespace)
//! when the answer's tool calls are translated.

use smallvec::SmallVec;

/// Longest tool name either provider accepts.
pub const MAX_TOOL_NAME: usize = 64;
/// Characters of the original name kept after the hash prefix.
const TAIL: usize = MAX_TOOL_NAME - 10;

/// One name whose provider form differs from the client's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped {
    /// The name the provider sees.
    pub upstream: String,
    /// The client's name.
    pub name: String,
    /// The client's namespace (Responses `namespace` tools), if any.
    pub namespace: Option<String>,
}

/// The renamed tools of one request; names that pass unchanged are not stored.
#[derive(Debug, Clone, Default)]
pub struct ToolNames {
    mapped: SmallVec<[Mapped; 2]>,
}

fn valid_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

fn fnv1a(parts: &[&str]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h ^= 0xff;
            h = h.wrapping_mul(0x0100_0193);
        }
        for &b in p.as_bytes() {
            h ^= b as u32;
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    h
}

/// The provider's name for a client tool `name` in `namespace`.
pub fn upstream_name(namespace: Option<&str>, name: &str) -> String {
    let joined_len = namespace.map_or(0, |n| n.len() + 2) + name.len();
    let all_valid = namespace
        .into_iter()
        .chain(std::iter::once(name))
        .all(|s| s.bytes().all(valid_char));
    if all_valid && joined_len <= MAX_TOOL_NAME && !name.is_empty() {
        return match namespace {
            Some(ns) => format!("{ns}__{name}"),
            None => name.to_owned(),
        };
    }
    let hash = match namespace {
        Some(ns) => fnv1a(&[ns, name]),
        None => fnv1a(&[name]),
    };
    let clean: Vec<u8> = name
        .bytes()
        .map(|b| if valid_char(b) { b } else { b'_' })
        .collect();
    let tail = &clean[clean.len().saturating_sub(TAIL)..];
    let mut out = format!("h{hash:08x}_");
    out.push_str(std::str::from_utf8(tail).unwrap_or(""));
    out
}

impl ToolNames {
    /// Registers a client tool and returns its provider name.
    pub fn add(&mut self, namespace: Option<&str>, name: &str) -> String {
        let up = upstream_name(namespace, name);
        if (namespace.is_some() || up != name) && !self.mapped.iter().any(|m| m.upstream == up) {
            self.mapped.push(Mapped {
                upstream: up.clone(),
                name: name.to_owned(),
                namespace: namespace.map(str::to_owned),
            });
        }
        up
    }

    /// The client's `(namespace, name)` for a name the provider used; the name itself when it
    /// was not renamed.
    pub fn to_client<'a>(&'a self, upstream: &'a str) -> (Option<&'a str>, &'a str) {
        match self.mapped.iter().find(|m| m.upstream == upstream) {
            Some(m) => (m.namespace.as_deref(), &m.name),
            None => (None, upstream),
        }
    }

    /// Whether any name was renamed.
    pub fn is_empty(&self) -> bool {
        self.mapped.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_pass_unchanged() {
        let mut t = ToolNames::default();
        assert_eq!(t.add(None, "get_weather"), "get_weather");
        assert!(t.is_empty());
        assert_eq!(t.to_client("get_weather"), (None, "get_weather"));
    }

    #[test]
    fn namespaced_and_long_names_map_back() {
        let mut t = ToolNames::default();
        let up = t.add(Some("mcp__fs"), "read_file");
        assert_eq!(up, "mcp__fs__read_file");
        assert_eq!(t.to_client(&up), (Some("mcp__fs"), "read_file"));
        let long = "x".repeat(80) + "_tail_name";
        let up = t.add(None, &long);
        assert!(
            up.len() <= MAX_TOOL_NAME && up.ends_with("_tail_name"),
            "{up}"
        );
        assert_eq!(up, upstream_name(None, &long), "stable across turns");
        assert_eq!(t.to_client(&up), (None, long.as_str()));
        let dotted = t.add(None, "server.tool");
        assert!(dotted.bytes().all(valid_char));
        assert_eq!(t.to_client(&dotted), (None, "server.tool"));
    }
}
