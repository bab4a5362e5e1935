//! The Redis store: the GCRA of `gcra.rs` as one Lua script, so a decision is one atomic round
//! trip (EVALSHA; the `redis` crate loads the script again on NOSCRIPT). Time comes from Redis
//! (`TIME`) so that instances whose clocks disagree still share one rate. A bucket is one key,
//! `facade:rl:{<policy>:<key>}`: the hash tag keeps every bucket in one slot of a Redis Cluster.
//! A key expires when its bucket is full again.
//!
//! In the script, time is in microseconds: Lua numbers are doubles, exact to 2^53, and epoch
//! microseconds are about 2^50.

use super::gcra::{Decision, Rate};
use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::Script;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The GCRA, line for line as `gcra::decide`, in microseconds.
/// KEYS[1]: the bucket. ARGV: limit, period (µs), and `now` (µs) or "" for Redis' own `TIME`.
/// Returns `"<allowed 0|1> <remaining> <reset µs>"`: one bulk string is one RESP value for the
/// client to parse, where an array of three integers was four (the parser was a fifth of a
/// decision's client-side cost).
const GCRA_LUA: &str = r#"
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local now
if ARGV[3] ~= "" then
  now = tonumber(ARGV[3])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local emission = math.max(math.floor(period / limit), 1)
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + emission
local allow_at = new_tat - period
if now < allow_at then
  return string.format('0 0 %.0f', allow_at - now)
end
local used = new_tat - now
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.max(math.ceil(used / 1000), 1))
return string.format('1 %.0f %.0f', math.floor((period - used) / emission), used)
"#;

/// Every decision waits at most this long for Redis (SPEC §7: the store's failure is decided
/// within 250 ms of the request).
pub const DECISION_TIMEOUT: Duration = Duration::from_millis(150);

/// Why the store could not decide.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// Redis answered an error, or the connection failed.
    #[error("redis: {0}")]
    Redis(String),
    /// Redis did not answer in time.
    #[error("redis did not answer within {} ms", DECISION_TIMEOUT.as_millis())]
    Timeout,
}

/// The bucket's key in Redis.
pub fn redis_key(bucket: &str) -> String {
    format!("facade:rl:{{{bucket}}}")
}

/// One connection to a single Redis server, made lazily and kept by the connection manager
/// (reconnected in the background after a failure, never per request).
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    script: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisStore")
    }
}

impl RedisStore {
    /// A store for `url` (`redis://` or `rediss://`); it connects on first use, so Facade starts
    /// while Redis is down.
    pub fn new(url: &str) -> Result<RedisStore, String> {
        let client = redis::Client::open(url).map_err(|e| format!("rate_limits.store: {e}"))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(120)))
            .set_response_timeout(Some(DECISION_TIMEOUT))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1));
        let conn = redis::aio::ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| format!("rate_limits.store: {e}"))?;
        Ok(RedisStore {
            conn,
            script: Script::new(GCRA_LUA),
        })
    }

    /// `PING`, bounded like a decision.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        bounded(ping(&mut conn)).await
    }

    /// One decision for `bucket` (at Redis' time, or at `now_us` for tests of the arithmetic).
    pub async fn decide(&self, bucket: &str, rate: Rate, now_us: Option<u64>) -> Result<Decision, StoreError> {
        let mut conn = self.conn.clone();
        bounded(run_script(&self.script, &mut conn, bucket, rate, now_us)).await
    }
}

/// A Redis Cluster: the listed nodes are seeds, the rest is discovered; the client follows
/// `MOVED` and `ASK`. Its retries are cut down from the crate's default (16, with waits past a
/// second) so that a decision stays within its bound. It connects on first use, one attempt at a
/// time and at most one per second while the cluster cannot be reached.
#[derive(Clone)]
pub struct ClusterStore {
    client: redis::cluster::ClusterClient,
    conn: Arc<arc_swap::ArcSwapOption<ClusterConnection>>,
    connecting: Arc<tokio::sync::Mutex<()>>,
    last_failure: Arc<Mutex<Option<Instant>>>,
    script: Script,
}

impl std::fmt::Debug for ClusterStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterStore")
    }
}

impl ClusterStore {
    /// A store for the cluster these seed nodes belong to.
    pub fn new(nodes: &[String]) -> Result<ClusterStore, String> {
        let client = redis::cluster::ClusterClient::builder(nodes.to_vec())
            .retries(3)
            .min_retry_wait(10)
            .max_retry_wait(50)
            .connection_timeout(Duration::from_millis(120))
            .response_timeout(DECISION_TIMEOUT)
            .build()
            .map_err(|e| format!("rate_limits.store.cluster: {e}"))?;
        Ok(ClusterStore {
            client,
            conn: Arc::default(),
            connecting: Arc::default(),
            last_failure: Arc::default(),
            script: Script::new(GCRA_LUA),
        })
    }

    async fn connection(&self) -> Result<ClusterConnection, StoreError> {
        if let Some(c) = self.conn.load_full() {
            return Ok((*c).clone());
        }
        let _one_at_a_time = self.connecting.lock().await;
        if let Some(c) = self.conn.load_full() {
            return Ok((*c).clone());
        }
        let recent = self
            .last_failure
            .lock()
            .ok()
            .and_then(|f| *f)
            .is_some_and(|at| at.elapsed() < Duration::from_secs(1));
        if recent {
            return Err(StoreError::Redis(
                "the cluster could not be reached; retrying within a second".into(),
            ));
        }
        match self.client.get_async_connection().await {
            Ok(c) => {
                self.conn.store(Some(Arc::new(c.clone())));
                Ok(c)
            }
            Err(e) => {
                if let Ok(mut f) = self.last_failure.lock() {
                    *f = Some(Instant::now());
                }
                Err(StoreError::Redis(e.to_string()))
            }
        }
    }

    /// `PING` to a node of the cluster.
    pub async fn ping(&self) -> Result<(), StoreError> {
        bounded(async {
            let mut conn = self.connection().await?;
            ping(&mut conn).await
        })
        .await
    }

    /// One decision for `bucket`, on the node that holds its slot.
    pub async fn decide(&self, bucket: &str, rate: Rate, now_us: Option<u64>) -> Result<Decision, StoreError> {
        bounded(async {
            let mut conn = self.connection().await?;
            run_script(&self.script, &mut conn, bucket, rate, now_us).await
        })
        .await
    }
}

/// Bounds a store operation by `DECISION_TIMEOUT`.
async fn bounded<T>(f: impl std::future::Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
    tokio::time::timeout(DECISION_TIMEOUT, f)
        .await
        .map_err(|_| StoreError::Timeout)?
}

async fn ping<C: ConnectionLike + Send>(conn: &mut C) -> Result<(), StoreError> {
    let cmd = redis::cmd("PING");
    cmd.query_async::<String>(conn)
        .await
        .map(|_| ())
        .map_err(|e| StoreError::Redis(e.to_string()))
}

/// The script, once, for `bucket`.
async fn run_script<C: ConnectionLike + Send>(
    script: &Script,
    conn: &mut C,
    bucket: &str,
    rate: Rate,
    now_us: Option<u64>,
) -> Result<Decision, StoreError> {
    let period_us = (rate.period / 1_000).max(1);
    let mut invocation = script.key(redis_key(bucket));
    invocation
        .arg(rate.limit)
        .arg(period_us)
        .arg(now_us.map(|n| n.to_string()).unwrap_or_default());
    let reply = invocation
        .invoke_async::<String>(conn)
        .await
        .map_err(|e| StoreError::Redis(e.to_string()))?;
    parse_reply(&reply).ok_or_else(|| StoreError::Redis(format!("unexpected script reply `{reply}`")))
}

/// The script's `"<allowed> <remaining> <reset µs>"`.
fn parse_reply(reply: &str) -> Option<Decision> {
    let mut parts = reply.split(' ');
    let allowed = match parts.next()? {
        "1" => true,
        "0" => false,
        _ => return None,
    };
    let remaining = parts.next()?.parse::<u64>().ok()?;
    let reset_us = parts.next()?.parse::<u64>().ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some(Decision {
        allowed,
        remaining,
        reset: reset_us.saturating_mul(1_000),
        tat: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scripts_reply_is_read_whole_or_refused() {
        let d = parse_reply("1 41 1463415").unwrap_or_else(|| panic!("a good reply"));
        assert_eq!((d.allowed, d.remaining, d.reset), (true, 41, 1_463_415_000));
        let d = parse_reply("0 0 18000000").unwrap_or_else(|| panic!("a good reply"));
        assert_eq!((d.allowed, d.remaining, d.reset), (false, 0, 18_000_000_000));
        for bad in ["", "1", "1 2", "2 0 0", "1 -1 5", "1 2 3 4", "1 2.5 3", "OK"] {
            assert!(parse_reply(bad).is_none(), "{bad}");
        }
    }
}
