//! The Redis backend of the conversation store (`[state] backend = "redis"`): the same records,
//! shared by every gateway pointed at one `redis-server`, so any of them continues a
//! conversation another started.
//!
//! Each worker talks to Redis through its own pipelined client on its own ring
//! ([`crate::redis::Redis`], made on the worker's first stateful request and kept in a
//! thread-local); the handle here is only the shared config and health, so it is `Send` and
//! `Sync` like the embedded store's.
//!
//! Layout: one hash per response, `sy:r:{project}:{id}`, fields `p` (previous id, empty when
//! none), `m` (model), `s` (status), `c` (created_at), `i` (input items), `o` (output items),
//! `r` (the response object), written with `EXPIRE ttl_s` in one `MULTI`. The project is
//! in the key, so one project can never read another's ids. A conversation is walked inside
//! Redis by one script (`EVAL`): one round trip whatever its length, capped at
//! [`MAX_TURNS`] turns; an ancestor that is gone (expired, deleted) makes the whole
//! conversation gone, as in the embedded store. The script builds its keys from the ids it
//! reads, so this layout needs one Redis, not a Redis Cluster. Size is bounded by `ttl_s` and
//! by Redis's own `maxmemory` (its eviction policy is the operator's: `volatile-ttl` evicts the
//! nearest expiry first); `max_bytes` is the embedded store's.

use super::{Record, StateError, StateErrorKind, MAX_RECORD_BYTES};
use crate::redis::{Health, Redis, RedisConfig, RedisError, Value};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

/// Longest conversation walked (turns); a longer chain is refused as too large.
pub const MAX_TURNS: usize = 10_000;

/// Walks a conversation from its newest turn: returns `[input, output]` pairs oldest first as
/// a flat array, `nil` when a turn is missing, or the error `too long`.
const WALK: &str = r#"
local prefix = ARGV[1]
local id = ARGV[2]
local max = tonumber(ARGV[3])
local out = {}
local n = 0
while id ~= '' do
  if n >= max then return redis.error_reply('too long') end
  local r = redis.call('HMGET', prefix .. id, 'p', 'i', 'o')
  if not r[2] then return nil end
  table.insert(out, r[3])
  table.insert(out, r[2])
  id = r[1]
  n = n + 1
end
local rev = {}
for k = #out, 1, -1 do rev[#rev + 1] = out[k] end
return rev
"#;

/// The shared half of the Redis store.
#[derive(Clone)]
pub struct RedisStore {
    cfg: Arc<RedisConfig>,
    health: Arc<Health>,
    ttl_s: u64,
}

thread_local! {
    /// This worker's client, made on its first use.
    static CLIENT: RefCell<Option<Rc<Redis>>> = const { RefCell::new(None) };
}

impl RedisStore {
    /// A store on `url`; resolves its host now (call at start, not on a worker).
    pub fn open(url: &str, ttl_s: u64) -> Result<RedisStore, StateError> {
        let cfg = RedisConfig::from_url(url)
            .map_err(|e| StateError::new(StateErrorKind::Unavailable, format!("redis_url: {e}")))?;
        Ok(RedisStore {
            cfg: Arc::new(cfg),
            health: Arc::new(Health::new()),
            ttl_s,
        })
    }

    /// Whether this process's clients reach Redis.
    pub fn ready(&self) -> bool {
        self.health.is_up()
    }

    /// Makes this worker's client and starts its connection (inside the worker's runtime).
    pub fn start_worker(&self) {
        self.client().start();
    }

    /// This worker's client (made on first use).
    pub fn worker_client(&self) -> Rc<Redis> {
        self.client()
    }

    fn client(&self) -> Rc<Redis> {
        CLIENT.with(|c| {
            c.borrow_mut()
                .get_or_insert_with(|| Rc::new(Redis::new(self.cfg.clone(), self.health.clone())))
                .clone()
        })
    }

    fn key(project: &str, id: &str) -> Vec<u8> {
        format!("sy:r:{project}:{id}").into_bytes()
    }

    /// Stores `rec`; returns once Redis acknowledged it.
    pub async fn put(&self, project: &str, rec: Record) -> Result<(), StateError> {
        let size = (rec.input.len() + rec.output.len() + rec.response.len()) as u64;
        if size > MAX_RECORD_BYTES {
            return Err(StateError::new(
                StateErrorKind::TooLarge,
                format!("a record of {size} bytes is past {MAX_RECORD_BYTES}"),
            ));
        }
        let key = Self::key(project, &rec.id);
        let created = rec.created_at.to_string();
        let ttl = self.ttl_s.max(1).to_string();
        let prev = rec.previous.as_deref().unwrap_or("");
        let hset: [&[u8]; 16] = [
            b"HSET",
            &key,
            b"p",
            prev.as_bytes(),
            b"m",
            rec.model.as_bytes(),
            b"s",
            rec.status.as_bytes(),
            b"c",
            created.as_bytes(),
            b"i",
            &rec.input,
            b"o",
            &rec.output,
            b"r",
            &rec.response,
        ];
        let cmds: [&[&[u8]]; 4] = [
            &[b"MULTI"],
            &hset,
            &[b"EXPIRE", &key, ttl.as_bytes()],
            &[b"EXEC"],
        ];
        let replies = self.client().pipeline(&cmds).await.map_err(unavailable)?;
        match replies.last() {
            Some(Value::Array(results))
                if results.iter().all(|v| !matches!(v, Value::Error(_))) =>
            {
                Ok(())
            }
            other => Err(StateError::new(
                StateErrorKind::Unavailable,
                format!("redis did not apply the record: {other:?}"),
            )),
        }
    }

    /// The record `id` of `project`, if stored and not expired.
    pub async fn get(&self, project: &str, id: &str) -> Result<Option<Record>, StateError> {
        let key = Self::key(project, id);
        let v = self
            .client()
            .cmd(&[b"HMGET", &key, b"p", b"m", b"s", b"c", b"i", b"o", b"r"])
            .await
            .map_err(unavailable)?;
        let Value::Array(f) = v else {
            return Err(corrupt(id));
        };
        if f.len() != 7 || matches!(f[4], Value::Nil) {
            return Ok(None);
        }
        let text = |v: &Value| {
            v.as_bytes()
                .and_then(|b| std::str::from_utf8(b).ok())
                .map(str::to_owned)
        };
        let bytes = |v: &Value| v.as_bytes().map(<[u8]>::to_vec);
        let rec = (|| {
            let previous = text(&f[0])?;
            Some(Record {
                id: id.to_owned(),
                previous: (!previous.is_empty()).then_some(previous),
                model: text(&f[1])?,
                status: text(&f[2])?,
                created_at: f[3].as_int().and_then(|n| u64::try_from(n).ok())?,
                input: bytes(&f[4])?,
                output: bytes(&f[5])?,
                response: bytes(&f[6])?,
            })
        })();
        rec.map(Some).ok_or_else(|| corrupt(id))
    }

    /// Deletes `id`; whether it was there.
    pub async fn delete(&self, project: &str, id: &str) -> Result<bool, StateError> {
        let key = Self::key(project, id);
        let v = self
            .client()
            .cmd(&[b"DEL", &key])
            .await
            .map_err(unavailable)?;
        Ok(v.as_int() == Some(1))
    }

    /// The whole conversation up to `id`, oldest first, as one JSON array.
    pub async fn conversation(
        &self,
        project: &str,
        id: &str,
    ) -> Result<Option<Vec<u8>>, StateError> {
        let prefix = format!("sy:r:{project}:");
        let max = MAX_TURNS.to_string();
        let v = self
            .client()
            .cmd(&[
                b"EVAL",
                WALK.as_bytes(),
                b"0",
                prefix.as_bytes(),
                id.as_bytes(),
                max.as_bytes(),
            ])
            .await;
        let parts = match v {
            Ok(Value::Nil) => return Ok(None),
            Ok(Value::Array(parts)) => parts,
            Err(RedisError::Server(m)) if m.contains("too long") => {
                return Err(StateError::new(
                    StateErrorKind::TooLarge,
                    format!("conversation {id} is longer than {MAX_TURNS} turns"),
                ))
            }
            Err(e) => return Err(unavailable(e)),
            Ok(other) => {
                return Err(StateError::new(
                    StateErrorKind::Corrupt,
                    format!("unexpected reply to the conversation walk: {other:?}"),
                ))
            }
        };
        let mut out = Vec::new();
        out.push(b'[');
        for p in &parts {
            let Some(items) = p.as_bytes() else {
                return Err(corrupt(id));
            };
            let inner = array_inner(items);
            if inner.is_empty() {
                continue;
            }
            if out.len() > 1 {
                out.push(b',');
            }
            out.extend_from_slice(inner);
        }
        out.push(b']');
        Ok(Some(out))
    }
}

/// The inside of a stored JSON array (its items, without the brackets).
fn array_inner(a: &[u8]) -> &[u8] {
    let a = a.trim_ascii();
    match a {
        [b'[', rest @ .., b']'] => rest.trim_ascii(),
        _ => a,
    }
}

fn unavailable(e: RedisError) -> StateError {
    let kind = match e {
        RedisError::Busy => StateErrorKind::Busy,
        _ => StateErrorKind::Unavailable,
    };
    StateError::new(kind, e.to_string())
}

fn corrupt(id: &str) -> StateError {
    StateError::new(
        StateErrorKind::Corrupt,
        format!("the stored record {id} is not in this gateway's layout"),
    )
}
