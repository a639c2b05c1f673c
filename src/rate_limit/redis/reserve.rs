//! The reservation: one script call that charges a slice to every quota of a key (handing
//! back what the previous lease left) and says what remains.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ::redis::Script;

use crate::Quota;
use crate::redis::RedisConnection;

use super::super::store::{MAX_LIMITS, StoreError};
use super::window_micros;

/// ARGV: want, need, back, then per quota its window (µs), limit and the window index the
/// returned units were charged to. KEYS: one hash per quota, as the exact script's.
/// Returns `grant, (remaining, reset µs, window index)…`.
pub(super) const RESERVE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local want = tonumber(ARGV[1])
local need = tonumber(ARGV[2])
local back = tonumber(ARGV[3])
local n = #KEYS
local index, count, fresh, reset, finish, limit = {}, {}, {}, {}, {}, {}
local room = -1
for i = 1, n do
  local len = tonumber(ARGV[1 + 3 * i])
  limit[i] = tonumber(ARGV[2 + 3 * i])
  local into = math.fmod(now, len)
  reset[i] = len - into
  finish[i] = now - into + len
  index[i] = string.format('%.0f', (now - into) / len)
  local stored = redis.call('HMGET', KEYS[i], 'w', 'c')
  if stored[1] == index[i] then
    count[i] = tonumber(stored[2]) or 0
    fresh[i] = false
    -- Units a lease hands back to a window that is still open.
    if back > 0 and ARGV[3 + 3 * i] == index[i] then
      count[i] = math.max(0, count[i] - back)
    end
  else
    count[i] = 0
    fresh[i] = true
  end
  local left = math.max(0, limit[i] - count[i])
  if room < 0 or left < room then room = left end
end
local grant = 0
if room >= need then
  grant = want
  -- The last units are shared: take at most half of what is left.
  if 2 * want > room then grant = math.max(need, math.ceil(room / 2)) end
  if grant > room then grant = room end
end
local out = {grant}
for i = 1, n do
  count[i] = count[i] + grant
  if fresh[i] then
    redis.call('HSET', KEYS[i], 'w', index[i], 'c', string.format('%.0f', count[i]))
    redis.call('PEXPIREAT', KEYS[i], string.format('%.0f', math.ceil(finish[i] / 1000)))
  else
    redis.call('HSET', KEYS[i], 'c', string.format('%.0f', count[i]))
  end
  out[#out + 1] = math.max(0, limit[i] - count[i])
  out[#out + 1] = reset[i]
  out[#out + 1] = tonumber(index[i])
end
return out
";

/// One reservation's request, copied out of the hit.
pub(super) struct Reserve {
    pub(super) connection: RedisConnection,
    pub(super) script: Arc<Script>,
    pub(super) keys: Vec<Vec<u8>>,
    pub(super) quotas: [Quota; MAX_LIMITS],
    pub(super) limits: [u64; MAX_LIMITS],
    pub(super) len: usize,
    pub(super) timeout: Duration,
    pub(super) round_trips: Arc<AtomicU64>,
}

pub(super) struct Answer {
    pub(super) grant: u64,
    pub(super) remaining: [u64; MAX_LIMITS],
    pub(super) resets: [u64; MAX_LIMITS],
    pub(super) windows: [u64; MAX_LIMITS],
}

impl Reserve {
    pub(super) async fn call(
        &self,
        want: u64,
        need: u64,
        back: u64,
        windows: &[u64; MAX_LIMITS],
    ) -> Result<Answer, StoreError> {
        let mut invocation = self.script.prepare_invoke();
        for key in &self.keys {
            invocation.key(key.as_slice());
        }
        invocation.arg(want).arg(need).arg(back);
        let quotas = self.quotas.iter().zip(&self.limits).zip(windows);
        for ((quota, limit), window) in quotas.take(self.len) {
            invocation
                .arg(window_micros(quota.window()))
                .arg(*limit)
                .arg(if back > 0 {
                    window.to_string()
                } else {
                    String::from("-")
                });
        }
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let mut connection = self.connection.clone();
        let values = match tokio::time::timeout(
            self.timeout,
            invocation.invoke_async::<Vec<u64>>(&mut connection),
        )
        .await
        {
            Err(_) => return Err(StoreError::timeout()),
            Ok(Err(error)) => return Err(StoreError::unavailable(error)),
            Ok(Ok(values)) => values,
        };
        if values.len() != 1 + 3 * self.len {
            return Err(StoreError::unavailable(
                "unexpected answer from the Redis script",
            ));
        }
        let mut answer = Answer {
            grant: values[0],
            remaining: [0; MAX_LIMITS],
            resets: [0; MAX_LIMITS],
            windows: [0; MAX_LIMITS],
        };
        for (i, chunk) in values[1..].chunks(3).enumerate() {
            answer.remaining[i] = chunk[0];
            answer.resets[i] = chunk[1];
            answer.windows[i] = chunk[2];
        }
        Ok(answer)
    }
}
