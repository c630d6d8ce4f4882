//! Usage: what an answer cost, from the tokens the upstream itself reported, and the ledger
//! that records every answered request.
//!
//! Cost follows the providers' price sheets: uncached prompt tokens at the input price,
//! cache-read tokens at `cached_input_per_million` (the input price when unset), output tokens
//! at the output price. Cache-write tokens are priced as input (the configs carry no separate
//! write price).

pub mod ledger;

use crate::relay::Usage;
use crate::route::Model;

/// The cost in USD of `u` at `model`'s prices.
pub fn cost(model: &Model, u: &Usage) -> f64 {
    let cached = u.cache_read.min(u.input);
    ((u.input - cached) as f64 * model.input_per_million
        + cached as f64 * model.cached_input_per_million
        + u.output as f64 * model.output_per_million)
        / 1e6
}
