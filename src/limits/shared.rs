//! Limits shared by every gateway on one Redis: one `EVAL` per request, on the worker's own
//! pipelined client, checks each limit that applies against all gateways' counts and counts
//! the request only when every one admits (the script runs atomically, so the shared count is
//! exact: no over-admission across gateways or workers).
//!
//! Layout: a hash per limit and window, `{key}:{window start ms}`, fields `r` (requests) and
//! `t` (estimated tokens), expiring two windows after it starts. Windows are cut from the
//! gateways' clocks (`now` is passed in), so gateways should keep NTP time: a skew of `s`
//! shifts a gateway's window boundaries by `s`.
//!
//! Redis not answering (down, slow past `command_timeout`, busy) is the caller's to handle:
//! the decide phase serves and counts locally (fail open) and logs once per outage.

use super::{check, Limiter, Refusal};
use crate::redis::{Redis, RedisError, Value};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// ARGV: now, tokens, then per key: window, rpm, tpm. Returns `{}` when admitted (and counted),
/// else `{i, cur_r, cur_t, prev_r, prev_t}` for the first limit `i` (1-based) that refuses.
const SCRIPT: &str = r#"
local now = tonumber(ARGV[1])
local tok = tonumber(ARGV[2])
local cur = {}
for i = 1, #KEYS do
  local w = tonumber(ARGV[3 * i])
  local rpm = tonumber(ARGV[3 * i + 1])
  local tpm = tonumber(ARGV[3 * i + 2])
  local ws = now - now % w
  local c = redis.call('HMGET', KEYS[i] .. ':' .. ws, 'r', 't')
  local p = redis.call('HMGET', KEYS[i] .. ':' .. (ws - w), 'r', 't')
  local cr, ct = tonumber(c[1]) or 0, tonumber(c[2]) or 0
  local pr, pt = tonumber(p[1]) or 0, tonumber(p[2]) or 0
  local f = 1 - (now - ws) / w
  if (rpm > 0 and cr + pr * f + 1 > rpm) or (tpm > 0 and ct + pt * f + tok > tpm) then
    return {i, cr, ct, pr, pt}
  end
  cur[i] = {KEYS[i] .. ':' .. ws, w}
end
for i = 1, #KEYS do
  redis.call('HINCRBY', cur[i][1], 'r', 1)
  redis.call('HINCRBY', cur[i][1], 't', tok)
  redis.call('PEXPIRE', cur[i][1], 2 * cur[i][2])
end
return {}
"#;

/// Set while Redis is failing limit calls, so the outage is logged once.
static FAILING: AtomicBool = AtomicBool::new(false);

/// Checks and counts a request of `tokens` against `limiters` on Redis. `Err` when Redis did
/// not answer: the caller fails open.
pub async fn admit(
    redis: &Redis,
    limiters: &[Option<&Limiter>],
    now: u64,
    tokens: u64,
) -> Result<Result<(), Refusal>, RedisError> {
    // (index in `limiters`, limiter) of those that apply.
    let ls: smallvec::SmallVec<[(usize, &Limiter); 2]> = limiters
        .iter()
        .enumerate()
        .filter_map(|(i, l)| l.map(|l| (i, l)))
        .collect();
    let nums: smallvec::SmallVec<[String; 8]> = [now, tokens]
        .into_iter()
        .chain(
            ls.iter()
                .flat_map(|(_, l)| [l.cfg.window_ms.max(1), l.cfg.rpm, l.cfg.tpm]),
        )
        .map(|n| n.to_string())
        .collect();
    let nkeys = ls.len().to_string();
    let mut args: smallvec::SmallVec<[&[u8]; 16]> = smallvec::SmallVec::new();
    args.extend([b"EVAL".as_slice(), SCRIPT.as_bytes(), nkeys.as_bytes()]);
    args.extend(ls.iter().map(|(_, l)| l.key.as_slice()));
    args.extend(nums.iter().map(|n| n.as_bytes()));
    let reply = match redis.cmd(&args).await {
        Ok(v) => v,
        Err(e) => {
            if !FAILING.swap(true, Relaxed) {
                crate::warn!(
                    "rate limits: redis did not answer ({e}); counting locally until it does"
                );
            }
            return Err(e);
        }
    };
    if FAILING.load(Relaxed) {
        FAILING.store(false, Relaxed);
        crate::info!("rate limits: redis answers again; limits are shared");
    }
    let Value::Array(items) = reply else {
        return Err(RedisError::Protocol);
    };
    if items.is_empty() {
        return Ok(Ok(()));
    }
    let n: smallvec::SmallVec<[u64; 5]> = items
        .iter()
        .map(|v| v.as_int().unwrap_or(0).max(0) as u64)
        .collect();
    let Some(&(which, l)) = n
        .first()
        .and_then(|&i| ls.get((i as usize).wrapping_sub(1)))
    else {
        return Err(RedisError::Protocol);
    };
    let get = |k: usize| n.get(k).copied().unwrap_or(0);
    let verdict = check(&l.cfg, now, [get(1), get(2)], [get(3), get(4)], tokens);
    // The script refused; if rounding made the Rust check admit, refuse for a second anyway.
    let r = verdict.err().unwrap_or(Refusal {
        limit: if l.cfg.rpm > 0 { "rpm" } else { "tpm" },
        value: if l.cfg.rpm > 0 { l.cfg.rpm } else { l.cfg.tpm },
        retry_after_ms: 1000,
        never: false,
        which,
    });
    Ok(Err(Refusal { which, ..r }))
}
