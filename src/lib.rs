//! Switchyard: a thread-per-core io_uring LLM gateway.
//!
//! The library owns every module; `main.rs` only parses arguments. A request takes one path:
//! `worker` accepts, `conn` frames it with `http1`, `gateway` scans its body (`scan`),
//! authorizes it and picks candidates (`route`), `upstream` sends it (or the in-process
//! `mock` answers), and `relay` streams the answer back after the `trace` event.
//! See `docs/architecture.md`.

#[macro_use]
pub mod log;

pub mod admin;
#[cfg(feature = "count-allocs")]
pub mod alloc_count;

/// Counts allocations when built with `--features count-allocs`.
#[cfg(feature = "count-allocs")]
#[global_allocator]
static ALLOC: alloc_count::Counting = alloc_count::Counting;
pub mod cli;
pub mod config;
pub mod conn;
pub mod endpoint;
pub mod error;
pub mod gateway;
pub mod http1;
pub mod listen;
pub mod metrics;
pub mod mock;
pub mod mock_server;
pub mod netio;
pub mod relay;
pub mod respond;
pub mod route;
pub mod scan;
pub mod trace;
pub mod upstream;
pub mod worker;
