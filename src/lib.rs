//! Switchyard: a thread-per-core io_uring LLM gateway.
//!
//! The library owns every module; `main.rs` only parses arguments. A request takes one path:
//! `server` accepts and frames it (`http1`), the gateway's phases in `proxy` authorize it,
//! scan its body (`scan`), decide its candidates (`route`), build each upstream request with
//! the provider's adapter (`provider`), send it (`upstream`) and relay the answer (`relay`)
//! after the `trace` event, then log the outcome.
//! See `docs/architecture.md`.

#[macro_use]
pub mod log;

pub mod admin;
#[cfg(feature = "count-allocs")]
pub mod alloc_count;
pub mod bench;

/// Counts allocations when built with `--features count-allocs`.
#[cfg(feature = "count-allocs")]
#[global_allocator]
static ALLOC: alloc_count::Counting = alloc_count::Counting;
pub mod chores;
pub mod cli;
pub mod config;
pub mod digits;
pub mod endpoint;
pub mod error;
pub mod http1;
pub mod limits;
pub mod metrics;
pub mod mock;
pub mod netio;
pub mod otlp;
pub mod provider;
pub mod proxy;
pub mod redis;
pub mod relay;
pub mod route;
pub mod scan;
pub mod server;
pub mod state;
pub mod tokens;
pub mod trace;
pub mod translate;
pub mod upstream;
pub mod usage;
