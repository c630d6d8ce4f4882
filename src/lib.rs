//! Switchyard: a thread-per-core io_uring LLM gateway.
//!
//! The library owns every module; `main.rs` only parses arguments. A request takes one path:
//! `worker` accepts, `conn` frames it with `http1`, `scan` finds its keys, `auth` and `route`
//! pick the candidates, `upstream` sends it, `relay` streams the answer back.

pub mod http1;
pub mod mock;
pub mod scan;
