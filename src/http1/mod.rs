//! Strict HTTP/1.1 parsing around httparse, and the writers for what we send.
//!
//! Everything here is pure and synchronous: the connection reads into its own buffer and
//! calls `parse_*`, which return offsets ([`Span`]) rather than borrows so the buffer can
//! move into the next IO call.
//!
//! - [`head`]: request heads (RFC 9112 §2-§5) with the checks httparse leaves to us.
//! - [`framing`]: the body length decision (RFC 9112 §6.3), strict against smuggling.
//! - [`chunked`]: the incremental chunked decoder (RFC 9112 §7.1).
//! - [`response`]: upstream response heads (RFC 9112 §4, §6.3).
//! - [`write`]: status lines, headers and chunk framing into a reused `Vec<u8>`.
#![warn(missing_docs)]

pub mod chunked;
pub mod framing;
pub mod head;
pub mod response;
pub mod write;

pub use chunked::{ChunkError, ChunkedDecoder, Decoded};
pub use framing::{BodyFraming, FramingError};
pub use head::{parse_request_head, parse_request_head_with, HeadError, Method, RequestHead, Span};
pub use response::{parse_response_head, ResponseFraming, ResponseHead};
