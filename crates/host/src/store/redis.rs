//! The store in Redis (`--store redis://…`): what every replica that names
//! the same server shares. Keys live under `pwchain:`:
//!
//! - `pwchain:data:KEY`: a hash of proxy-wasm shared data, `v` the value
//!   and `c` its compare-and-swap version;
//! - `pwchain:queues` (name to id), `pwchain:queue-names` (id to name),
//!   `pwchain:queue-ids` (the last id given), and per queue the list
//!   `pwchain:queue:ID` and the count of items ever pushed,
//!   `pwchain:queue-pushed:ID`;
//! - `pwchain:kv:BUCKET:KEY`: a `wasi:keyvalue` entry, as a plain string
//!   (so that `INCRBY` and `redis-cli` read it).
//!
//! Each check-then-write is one Lua script, so replicas racing on a key
//! see one winner. Connections come from a small pool of multiplexed,
//! self-reconnecting connections; every call is bounded by
//! [`CALL_TIMEOUT`].

use super::{
    CALL_TIMEOUT, Cas, ConnectError, MAX_ITEM_BYTES, Popped, QueueMark, StoreError, Swapped,
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, FromRedisValue, Script};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Connections kept open to the server; each carries many calls at once.
const POOL_SIZE: usize = 4;

/// The longest wait between two attempts to reconnect.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(1);

const DATA: &str = "pwchain:data:";
const QUEUES: &str = "pwchain:queues";
const QUEUE_NAMES: &str = "pwchain:queue-names";
const QUEUE_IDS: &str = "pwchain:queue-ids";
const QUEUE: &str = "pwchain:queue:";
const QUEUE_PUSHED: &str = "pwchain:queue-pushed:";
const KV: &str = "pwchain:kv:";

/// Sets a shared-data value if the caller's version is 0 or current;
/// returns the new version, or -1 for a mismatch. Versions count up from
/// 1 and wrap past u32's end to 1, as in memory.
static DATA_SET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local current = tonumber(redis.call('HGET', KEYS[1], 'c') or '0')
local wanted = tonumber(ARGV[2])
if wanted ~= 0 and wanted ~= current then return -1 end
local next = current % 4294967295 + 1
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'c', next)
return next",
    )
});

/// The id of the queue named ARGV[1], given now if it is new.
static QUEUE_REGISTER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local id = redis.call('HGET', KEYS[1], ARGV[1])
if id then return tonumber(id) end
id = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], ARGV[1], id)
redis.call('HSET', KEYS[2], id, ARGV[1])
return id",
    )
});

/// Pushes onto queue ARGV[1]: 1, or 0 when there is no such queue.
static QUEUE_PUSH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('INCR', KEYS[3])
return 1",
    )
});

/// Pops from queue ARGV[1]: {2, item}, {1, nil} when empty, {0, nil} when
/// there is no such queue (Lua's `false` is a nil reply).
static QUEUE_POP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return {0, false} end
local item = redis.call('LPOP', KEYS[2])
if not item then return {1, false} end
return {2, item}",
    )
});

/// Sets KEYS[1] to ARGV[3] if it holds ARGV[2] (ARGV[1] = 1) or is unset
/// (ARGV[1] = 0): {1, nil}, else {0, current} ({0, nil}: it is unset).
static KV_SWAP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local current = redis.call('GET', KEYS[1])
local unset = current == false
if (ARGV[1] == '0' and unset) or (ARGV[1] == '1' and current == ARGV[2]) then
  redis.call('SET', KEYS[1], ARGV[3])
  return {1, false}
end
return {0, current}",
    )
});

#[derive(Debug)]
pub(super) struct Redis {
    pool: Vec<ConnectionManager>,
    next: AtomicUsize,
    /// The URL without its password.
    location: String,
}

impl Redis {
    /// Opens the pool and asks the server how large a key or value it takes.
    pub(super) async fn connect(url: &str) -> Result<(Redis, u64), ConnectError> {
        let location = without_password(url);
        let bad = |reason: String| ConnectError::BadUrl {
            url: location.clone(),
            reason,
        };
        if !url.starts_with("redis://") {
            return Err(bad("only `redis://HOST:PORT[/DB]` is supported".into()));
        }
        let client = redis::Client::open(url).map_err(|e| bad(e.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CALL_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(MAX_RECONNECT_DELAY);
        let unreachable = |reason: String| ConnectError::Unreachable {
            url: location.clone(),
            reason,
        };
        let mut pool = Vec::with_capacity(POOL_SIZE);
        for _ in 0..POOL_SIZE {
            let connecting = client.get_connection_manager_with_config(config.clone());
            let manager = tokio::time::timeout(CALL_TIMEOUT * 4, connecting)
                .await
                .map_err(|_| unreachable("no answer in time".into()))?
                .map_err(|e| unreachable(e.to_string()))?;
            pool.push(manager);
        }
        let redis = Redis {
            pool,
            next: AtomicUsize::new(0),
            location,
        };
        let max_item = redis.max_item().await;
        Ok((redis, max_item))
    }

    pub(super) fn location(&self) -> &str {
        &self.location
    }

    /// The server's `proto-max-bulk-len`, or Redis's default when it will
    /// not say (managed services often refuse `CONFIG`).
    async fn max_item(&self) -> u64 {
        let mut cmd = redis::cmd("CONFIG");
        cmd.arg("GET").arg("proto-max-bulk-len");
        let answer: Result<Vec<String>, _> = self.run(cmd).await;
        answer
            .ok()
            .and_then(|pair| pair.get(1)?.parse().ok())
            .unwrap_or(MAX_ITEM_BYTES)
    }

    fn connection(&self) -> ConnectionManager {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.pool.len();
        self.pool[i].clone()
    }

    fn unavailable(&self, reason: String) -> StoreError {
        StoreError::Unavailable {
            url: self.location.clone(),
            reason,
        }
    }

    fn failed(&self, error: redis::RedisError) -> StoreError {
        self.unavailable(error.to_string())
    }

    async fn bounded<T>(
        &self,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, redis::RedisError> {
        match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(result) => result,
            Err(_) => Err(redis::RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer in {} ms", CALL_TIMEOUT.as_millis()),
            ))),
        }
    }

    async fn run<T: FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T, redis::RedisError> {
        let mut con = self.connection();
        self.bounded(cmd.query_async(&mut con)).await
    }

    async fn script<T: FromRedisValue>(
        &self,
        script: &Script,
        keys: &[Vec<u8>],
        args: &[&[u8]],
    ) -> Result<T, StoreError> {
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(key.as_slice());
        }
        for arg in args {
            invocation.arg(*arg);
        }
        let mut con = self.connection();
        self.bounded(invocation.invoke_async(&mut con))
            .await
            .map_err(|e| self.failed(e))
    }

    async fn query<T: FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T, StoreError> {
        self.run(cmd).await.map_err(|e| self.failed(e))
    }

    pub(super) async fn data_get(&self, key: &[u8]) -> Result<Option<(Vec<u8>, Cas)>, StoreError> {
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(prefixed(DATA, key)).arg("v").arg("c");
        let (value, cas): (Option<Vec<u8>>, Option<Cas>) = self.query(cmd).await?;
        Ok(value.zip(cas))
    }

    pub(super) async fn data_set(
        &self,
        key: &[u8],
        value: &[u8],
        cas: Cas,
    ) -> Result<Option<Cas>, StoreError> {
        let cas = cas.to_string();
        let keys = [prefixed(DATA, key)];
        let next: i64 = self
            .script(&DATA_SET, &keys, &[value, cas.as_bytes()])
            .await?;
        Ok(Cas::try_from(next).ok())
    }

    fn queue_keys(id: u32) -> [Vec<u8>; 3] {
        [
            QUEUE_NAMES.into(),
            format!("{QUEUE}{id}").into(),
            format!("{QUEUE_PUSHED}{id}").into(),
        ]
    }

    pub(super) async fn queue_register(&self, name: &[u8]) -> Result<u32, StoreError> {
        let keys = [QUEUES.into(), QUEUE_NAMES.into(), QUEUE_IDS.into()];
        self.script(&QUEUE_REGISTER, &keys, &[name]).await
    }

    pub(super) async fn queue_resolve(&self, name: &[u8]) -> Result<Option<u32>, StoreError> {
        let mut cmd = redis::cmd("HGET");
        cmd.arg(QUEUES).arg(name);
        self.query(cmd).await
    }

    pub(super) async fn queue_push(&self, id: u32, value: &[u8]) -> Result<bool, StoreError> {
        let id_arg = id.to_string();
        let args = [id_arg.as_bytes(), value];
        let pushed: i64 = self
            .script(&QUEUE_PUSH, &Redis::queue_keys(id), &args)
            .await?;
        Ok(pushed == 1)
    }

    pub(super) async fn queue_pop(&self, id: u32) -> Result<Popped, StoreError> {
        let id_arg = id.to_string();
        let keys = Redis::queue_keys(id);
        let answer: (i64, Option<Vec<u8>>) = self
            .script(&QUEUE_POP, &keys[..2], &[id_arg.as_bytes()])
            .await?;
        Ok(match answer {
            (2, Some(item)) => Popped::Item(item),
            (1, _) => Popped::Empty,
            _ => Popped::NoQueue,
        })
    }

    pub(super) async fn queue_marks(&self, ids: &[u32]) -> Result<Vec<QueueMark>, StoreError> {
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.cmd("LLEN").arg(format!("{QUEUE}{id}"));
            pipe.cmd("GET").arg(format!("{QUEUE_PUSHED}{id}"));
        }
        let mut con = self.connection();
        let answers: Vec<Option<u64>> = self
            .bounded(pipe.query_async(&mut con))
            .await
            .map_err(|e| self.failed(e))?;
        Ok(answers
            .chunks(2)
            .map(|pair| QueueMark {
                len: pair[0].unwrap_or(0),
                pushed: pair.get(1).copied().flatten().unwrap_or(0),
            })
            .collect())
    }

    pub(super) async fn kv_get(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(kv_key(bucket, key));
        self.query(cmd).await
    }

    pub(super) async fn kv_set(
        &self,
        bucket: &str,
        key: &str,
        value: &[u8],
    ) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(kv_key(bucket, key)).arg(value);
        self.query(cmd).await
    }

    pub(super) async fn kv_delete(&self, bucket: &str, keys: &[String]) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut cmd = redis::cmd("DEL");
        for key in keys {
            cmd.arg(kv_key(bucket, key));
        }
        self.query::<i64>(cmd).await.map(drop)
    }

    pub(super) async fn kv_exists(&self, bucket: &str, key: &str) -> Result<bool, StoreError> {
        let mut cmd = redis::cmd("EXISTS");
        cmd.arg(kv_key(bucket, key));
        self.query(cmd).await
    }

    pub(super) async fn kv_list(
        &self,
        bucket: &str,
        cursor: Option<u64>,
    ) -> Result<(Vec<String>, Option<u64>), StoreError> {
        let prefix = kv_key(bucket, "");
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(cursor.unwrap_or(0))
            .arg("MATCH")
            // Bucket names hold no glob characters (`Store::open`).
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(100);
        let (next, keys): (u64, Vec<String>) = self.query(cmd).await?;
        let keys = keys
            .into_iter()
            .filter_map(|k| k.strip_prefix(&prefix).map(str::to_string))
            .collect();
        Ok((keys, (next != 0).then_some(next)))
    }

    pub(super) async fn kv_increment(
        &self,
        bucket: &str,
        key: &str,
        delta: i64,
    ) -> Result<i64, StoreError> {
        let mut cmd = redis::cmd("INCRBY");
        cmd.arg(kv_key(bucket, key)).arg(delta);
        self.run(cmd).await.map_err(|e| match e.kind() {
            // The server refused it: not an integer, or it would overflow.
            ErrorKind::Server(_) => StoreError::NotAnInteger { key: key.into() },
            _ => self.failed(e),
        })
    }

    pub(super) async fn kv_swap(
        &self,
        bucket: &str,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<Swapped, StoreError> {
        let keys = [kv_key(bucket, key).into_bytes()];
        let (flag, old): (&[u8], &[u8]) = match expected {
            Some(old) => (b"1", old),
            None => (b"0", b""),
        };
        let answer: (i64, Option<Vec<u8>>) =
            self.script(&KV_SWAP, &keys, &[flag, old, value]).await?;
        Ok(match answer {
            (1, _) => Swapped::Done,
            (_, current) => Swapped::Changed(current),
        })
    }

    pub(super) async fn kv_get_many(
        &self,
        bucket: &str,
        keys: &[String],
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("MGET");
        for key in keys {
            cmd.arg(kv_key(bucket, key));
        }
        self.query(cmd).await
    }

    pub(super) async fn kv_set_many(
        &self,
        bucket: &str,
        entries: &[(String, Vec<u8>)],
    ) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut cmd = redis::cmd("MSET");
        for (key, value) in entries {
            cmd.arg(kv_key(bucket, key)).arg(value.as_slice());
        }
        self.query(cmd).await
    }
}

fn prefixed(prefix: &str, key: &[u8]) -> Vec<u8> {
    [prefix.as_bytes(), key].concat()
}

fn kv_key(bucket: &str, key: &str) -> String {
    format!("{KV}{bucket}:{key}")
}

/// `redis://user:secret@host:6379/0` as `redis://user@host:6379/0`, for the
/// log and errors.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            match user.is_empty() {
                true => format!("{scheme}://{host}"),
                false => format!("{scheme}://{user}@{host}"),
            }
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_the_log() {
        assert_eq!(without_password("redis://:pw@h:1/2"), "redis://h:1/2");
        assert_eq!(without_password("redis://u:pw@h:1"), "redis://u@h:1");
        assert_eq!(without_password("redis://h:1"), "redis://h:1");
    }
}
