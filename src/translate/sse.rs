//! The incremental SSE framer. (Interface; lands in this module.)
