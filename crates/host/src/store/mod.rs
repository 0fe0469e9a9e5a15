//! The store `pwchain serve` keeps for its chains: proxy-wasm shared data
//! and queues (the `pwchain:proxy/legacy-shared` import of a chain composed
//! with `shared-data = "host"`, in [`legacy`]) and `wasi:keyvalue` for
//! native plugins (in [`keyvalue`]). It lives in the server's memory
//! ([`memory`]), shared by all the server's instances, or in Redis
//! ([`redis`], `--store redis://…`), shared by every replica that names
//! the same server.
//!
//! A store call that fails (Redis down, too slow) fails only that call:
//! the filter or plugin sees an error, the log says so once per
//! [`FAULT_LOG_INTERVAL`], and the next call tries the server again.

pub(crate) mod keyvalue;
pub(crate) mod legacy;
mod memory;
mod redis;

use prometheus_client::metrics::counter::Counter;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long one store call may take before it fails (a filter sees the
/// ABI's failure status, a plugin a keyvalue error): well inside any
/// request timeout, so a dead store slows a request by this much at most.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(500);

/// How often a failing store is reported in the log.
pub const FAULT_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The largest key or value Redis takes (its `proto-max-bulk-len`
/// default); a Redis server that says otherwise is asked at start.
pub const MAX_ITEM_BYTES: u64 = 512 << 20;

/// What failed in a store call.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum StoreError {
    /// The server could not be reached or did not answer in time.
    #[error("store {url} is unavailable: {reason}")]
    Unavailable { url: String, reason: String },
    /// A key or value is larger than the store takes.
    #[error("a {what} of {len} bytes is over the store's limit of {limit} bytes")]
    TooLarge {
        what: &'static str,
        len: usize,
        limit: u64,
    },
    /// `increment` on a value that is not a decimal 64-bit integer.
    #[error("the value under `{key}` is not a 64-bit integer")]
    NotAnInteger { key: String },
    /// A bucket name the store cannot keep apart from others.
    #[error("bucket name `{0}` is not allowed: use letters, digits, `-`, `_` and `.`")]
    BadBucket(String),
}

/// Why `pwchain serve --store URL` could not start.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL is not one pwchain can use.
    #[error("`--store {url}` is not a Redis URL: {reason}")]
    BadUrl {
        /// The URL as given, without its password.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The server did not answer.
    #[error("cannot reach the store at {url}: {reason}")]
    Unreachable {
        /// The URL, without its password.
        url: String,
        /// What connecting said.
        reason: String,
    },
}

/// A value's version for compare-and-swap, as proxy-wasm hands it out:
/// never 0 once a key is set (0 asks for no check).
pub(crate) type Cas = u32;

/// What `dequeue` found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Popped {
    Item(Vec<u8>),
    Empty,
    NoQueue,
}

/// Where a queue stands: how many items it holds, and how many were ever
/// put in (so a reader can tell new items from ones it was told of).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct QueueMark {
    pub len: u64,
    pub pushed: u64,
}

/// What a compare-and-swap on a keyvalue entry did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Swapped {
    Done,
    /// The entry had changed; this is what it holds now.
    Changed(Option<Vec<u8>>),
}

#[derive(Debug)]
enum Backend {
    Memory(memory::Memory),
    Redis(redis::Redis),
}

/// The store, cheap to clone: every clone is the same store.
#[derive(Debug, Clone)]
pub struct StateStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    backend: Backend,
    /// Where it is, for the log (`memory`, or the URL without password).
    location: String,
    /// The largest key or value it takes.
    max_item: u64,
    faults: Mutex<Faults>,
    /// `faults.failing`, readable without the lock.
    failing: AtomicBool,
    /// Failed calls, shown on `/metrics`.
    failures: Counter,
}

/// Whether the store is failing, and when that was last logged.
#[derive(Debug, Default)]
struct Faults {
    failing: bool,
    last_logged: Option<Instant>,
    unlogged: u64,
}

impl Default for StateStore {
    fn default() -> Self {
        StateStore::memory()
    }
}

impl StateStore {
    /// A store in this process's memory.
    pub fn memory() -> StateStore {
        StateStore::new(
            Backend::Memory(memory::Memory::default()),
            "memory".into(),
            MAX_ITEM_BYTES,
            Counter::default(),
        )
    }

    /// Connects to `url` (`redis://[:PASSWORD@]HOST:PORT[/DB]`) and checks
    /// that the server answers; failed calls are counted in `failures`
    /// ([`Metrics::store_failures`](crate::Metrics::store_failures)).
    pub async fn connect(url: &str, failures: Counter) -> Result<StateStore, ConnectError> {
        let (redis, max_item) = redis::Redis::connect(url).await?;
        let location = redis.location().to_string();
        Ok(StateStore::new(
            Backend::Redis(redis),
            location,
            max_item,
            failures,
        ))
    }

    fn new(backend: Backend, location: String, max_item: u64, failures: Counter) -> StateStore {
        StateStore {
            inner: Arc::new(Inner {
                backend,
                location,
                max_item,
                faults: Mutex::default(),
                failing: AtomicBool::new(false),
                failures,
            }),
        }
    }

    /// Where the store is: `memory`, or the Redis URL without password.
    pub fn location(&self) -> &str {
        &self.inner.location
    }

    fn check_size(&self, what: &'static str, bytes: &[u8]) -> Result<(), StoreError> {
        let limit = self.inner.max_item;
        match bytes.len() as u64 > limit {
            true => Err(StoreError::TooLarge {
                what,
                len: bytes.len(),
                limit,
            }),
            false => Ok(()),
        }
    }

    /// Notes how a call went: the first failure after a success is logged,
    /// then at most one line per [`FAULT_LOG_INTERVAL`]; the first success
    /// after failures says the store is back.
    fn observe<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        let unavailable = matches!(result, Err(StoreError::Unavailable { .. }));
        if unavailable {
            self.inner.failures.inc();
        } else if !self.inner.failing.load(Ordering::Relaxed) {
            // The common case, a call that worked while all is well,
            // takes no lock.
            return result;
        }
        let mut faults = self.inner.faults.lock().unwrap_or_else(|e| e.into_inner());
        match (&result, unavailable) {
            (Err(error), true) => {
                let due = faults
                    .last_logged
                    .is_none_or(|at| at.elapsed() >= FAULT_LOG_INTERVAL);
                if !faults.failing || due {
                    tracing::warn!(
                        store = %self.inner.location,
                        failed_since_last_report = faults.unlogged,
                        "{error}; store calls fail (filters see a failure status, plugins a keyvalue error) until it answers again"
                    );
                    faults.last_logged = Some(Instant::now());
                    faults.unlogged = 0;
                } else {
                    faults.unlogged += 1;
                }
                faults.failing = true;
                self.inner.failing.store(true, Ordering::Relaxed);
            }
            (_, false) if faults.failing => {
                tracing::info!(
                    store = %self.inner.location,
                    "store answers again; {} failed calls were not logged",
                    faults.unlogged
                );
                *faults = Faults::default();
                self.inner.failing.store(false, Ordering::Relaxed);
            }
            _ => {}
        }
        result
    }

    // Proxy-wasm shared data and queues.

    pub(crate) async fn data_get(&self, key: &[u8]) -> Result<Option<(Vec<u8>, Cas)>, StoreError> {
        self.check_size("key", key)?;
        let result = match &self.inner.backend {
            Backend::Memory(m) => Ok(m.data_get(key)),
            Backend::Redis(r) => r.data_get(key).await,
        };
        self.observe(result)
    }

    /// Sets `key` unless `cas` is not 0 and not the key's current version;
    /// `None`: it was not (proxy-wasm's `CAS_MISMATCH`).
    pub(crate) async fn data_set(
        &self,
        key: &[u8],
        value: &[u8],
        cas: Cas,
    ) -> Result<Option<Cas>, StoreError> {
        self.check_size("key", key)?;
        self.check_size("value", value)?;
        let result = match &self.inner.backend {
            Backend::Memory(m) => Ok(m.data_set(key, value, cas)),
            Backend::Redis(r) => r.data_set(key, value, cas).await,
        };
        self.observe(result)
    }

    /// The queue named `name`, made if it is new; ids are the same for
    /// every user of the store.
    pub(crate) async fn queue_register(&self, name: &[u8]) -> Result<u32, StoreError> {
        self.check_size("queue name", name)?;
        let result = match &self.inner.backend {
            Backend::Memory(m) => Ok(m.queue_register(name)),
            Backend::Redis(r) => r.queue_register(name).await,
        };
        self.observe(result)
    }

    pub(crate) async fn queue_resolve(&self, name: &[u8]) -> Result<Option<u32>, StoreError> {
        self.check_size("queue name", name)?;
        let result = match &self.inner.backend {
            Backend::Memory(m) => Ok(m.queue_resolve(name)),
            Backend::Redis(r) => r.queue_resolve(name).await,
        };
        self.observe(result)
    }

    /// Appends `value` to queue `id`; `false`: there is no such queue.
    pub(crate) async fn queue_push(&self, id: u32, value: &[u8]) -> Result<bool, StoreError> {
        self.check_size("value", value)?;
        let result = match &self.inner.backend {
            Backend::Memory(m) => Ok(m.queue_push(id, value)),
            Backend::Redis(r) => r.queue_push(id, value).await,
        };
        self.observe(result)
    }

    pub(crate) async fn queue_pop(&self, id: u32) -> Result<Popped, StoreError> {
        let result = match &self.inner.backend {
            Backend::Memory(m) => Ok(m.queue_pop(id)),
            Backend::Redis(r) => r.queue_pop(id).await,
        };
        self.observe(result)
    }

    /// Where each of `ids` stands, in one round trip.
    pub(crate) async fn queue_marks(&self, ids: &[u32]) -> Result<Vec<QueueMark>, StoreError> {
        let result = match &self.inner.backend {
            Backend::Memory(m) => Ok(m.queue_marks(ids)),
            Backend::Redis(r) => r.queue_marks(ids).await,
        };
        self.observe(result)
    }

    // wasi:keyvalue buckets.

    fn check_bucket(bucket: &str) -> Result<(), StoreError> {
        let fine = !bucket.is_empty()
            && bucket
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        match fine {
            true => Ok(()),
            false => Err(StoreError::BadBucket(bucket.into())),
        }
    }

    /// Checks a bucket name before plugins use it.
    pub(crate) fn open(&self, bucket: &str) -> Result<(), StoreError> {
        StateStore::check_bucket(bucket)
    }

    pub(crate) async fn kv_get(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.check_size("key", key.as_bytes())?;
        let result = match &self.inner.backend {
            Backend::Memory(m) => Ok(m.kv_get(bucket, key)),
            Backend::Redis(r) => r.kv_get(bucket, key).await,
        };
        self.observe(result)
    }

    pub(crate) async fn kv_set(
        &self,
        bucket: &str,
        key: &str,
        value: &[u8],
    ) -> Result<(), StoreError> {
        self.check_size("key", key.as_bytes())?;
        self.check_size("value", value)?;
        let result = match &self.inner.backend {
            Backend::Memory(m) => {
                m.kv_set(bucket, key, value);
                Ok(())
            }
            Backend::Redis(r) => r.kv_set(bucket, key, value).await,
        };
        self.observe(result)
    }

    pub(crate) async fn kv_delete(&self, bucket: &str, keys: &[String]) -> Result<(), StoreError> {
        for key in keys {
            self.check_size("key", key.as_bytes())?;
        }
        let result = match &self.inner.backend {
            Backend::Memory(m) => {
                m.kv_delete(bucket, keys);
                Ok(())
            }
            Backend::Redis(r) => r.kv_delete(bucket, keys).await,
        };
        self.observe(result)
    }

    pub(crate) async fn kv_exists(&self, bucket: &str, key: &str) -> Result<bool, StoreError> {
        self.check_size("key", key.as_bytes())?;
        let result = match &self.inner.backend {
            Backend::Memory(m) => Ok(m.kv_get(bucket, key).is_some()),
            Backend::Redis(r) => r.kv_exists(bucket, key).await,
        };
        self.observe(result)
    }

    /// One page of the bucket's keys, and the cursor of the next page.
    pub(crate) async fn kv_list(
        &self,
        bucket: &str,
        cursor: Option<u64>,
    ) -> Result<(Vec<String>, Option<u64>), StoreError> {
        let result = match &self.inner.backend {
            Backend::Memory(m) => Ok(m.kv_list(bucket, cursor)),
            Backend::Redis(r) => r.kv_list(bucket, cursor).await,
        };
        self.observe(result)
    }

    /// Adds `delta` to the decimal integer under `key` (0 when unset), as
    /// one atomic step for every user of the store.
    pub(crate) async fn kv_increment(
        &self,
        bucket: &str,
        key: &str,
        delta: i64,
    ) -> Result<i64, StoreError> {
        self.check_size("key", key.as_bytes())?;
        let result = match &self.inner.backend {
            Backend::Memory(m) => m.kv_increment(bucket, key, delta),
            Backend::Redis(r) => r.kv_increment(bucket, key, delta).await,
        };
        self.observe(result)
    }

    /// Sets `key` to `value` if it still holds `expected` (`None`: unset).
    pub(crate) async fn kv_swap(
        &self,
        bucket: &str,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<Swapped, StoreError> {
        self.check_size("key", key.as_bytes())?;
        self.check_size("value", value)?;
        let result = match &self.inner.backend {
            Backend::Memory(m) => Ok(m.kv_swap(bucket, key, expected, value)),
            Backend::Redis(r) => r.kv_swap(bucket, key, expected, value).await,
        };
        self.observe(result)
    }

    pub(crate) async fn kv_get_many(
        &self,
        bucket: &str,
        keys: &[String],
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        for key in keys {
            self.check_size("key", key.as_bytes())?;
        }
        let result = match &self.inner.backend {
            Backend::Memory(m) => Ok(keys.iter().map(|k| m.kv_get(bucket, k)).collect()),
            Backend::Redis(r) => r.kv_get_many(bucket, keys).await,
        };
        self.observe(result)
    }

    pub(crate) async fn kv_set_many(
        &self,
        bucket: &str,
        entries: &[(String, Vec<u8>)],
    ) -> Result<(), StoreError> {
        for (key, value) in entries {
            self.check_size("key", key.as_bytes())?;
            self.check_size("value", value)?;
        }
        let result = match &self.inner.backend {
            Backend::Memory(m) => {
                for (key, value) in entries {
                    m.kv_set(bucket, key, value);
                }
                Ok(())
            }
            Backend::Redis(r) => r.kv_set_many(bucket, entries).await,
        };
        self.observe(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_keeps_shared_data_with_cas_as_proxy_wasm_does() {
        let store = StateStore::memory();
        assert_eq!(store.data_get(b"k").await.unwrap(), None);
        let first = store.data_set(b"k", b"1", 0).await.unwrap().unwrap();
        assert_ne!(first, 0);
        assert_eq!(
            store.data_get(b"k").await.unwrap(),
            Some((b"1".to_vec(), first))
        );
        let second = store.data_set(b"k", b"2", first).await.unwrap().unwrap();
        assert_eq!(store.data_set(b"k", b"3", first).await.unwrap(), None);
        assert_eq!(
            store.data_get(b"k").await.unwrap(),
            Some((b"2".to_vec(), second))
        );
        // An empty value is a value, not "not found".
        store.data_set(b"e", b"", 0).await.unwrap();
        assert_eq!(
            store.data_get(b"e").await.unwrap().map(|(v, _)| v),
            Some(vec![])
        );
    }

    #[tokio::test]
    async fn items_over_the_limit_are_refused_before_they_are_sent() {
        let memory = Backend::Memory(memory::Memory::default());
        let store = StateStore::new(memory, "memory".into(), 4, Counter::default());
        let refused = store.data_set(b"k", b"12345", 0).await.unwrap_err();
        assert_eq!(
            refused.to_string(),
            "a value of 5 bytes is over the store's limit of 4 bytes"
        );
        assert!(store.kv_get("b", "12345").await.is_err());
        assert!(store.kv_set("b", "k", b"1234").await.is_ok());
    }

    #[tokio::test]
    async fn memory_queues_mark_what_was_pushed() {
        let store = StateStore::memory();
        let id = store.queue_register(b"q").await.unwrap();
        assert_eq!(store.queue_register(b"q").await.unwrap(), id);
        assert_eq!(store.queue_resolve(b"q").await.unwrap(), Some(id));
        assert_eq!(store.queue_resolve(b"other").await.unwrap(), None);
        assert!(store.queue_push(id, b"a").await.unwrap());
        assert!(!store.queue_push(id + 7, b"a").await.unwrap());
        let marks = store.queue_marks(&[id]).await.unwrap();
        assert_eq!(marks, vec![QueueMark { len: 1, pushed: 1 }]);
        assert_eq!(
            store.queue_pop(id).await.unwrap(),
            Popped::Item(b"a".to_vec())
        );
        assert_eq!(store.queue_pop(id).await.unwrap(), Popped::Empty);
        assert_eq!(store.queue_pop(id + 7).await.unwrap(), Popped::NoQueue);
    }

    #[tokio::test]
    async fn memory_keyvalue_counts_and_swaps() {
        let store = StateStore::memory();
        assert_eq!(store.kv_increment("b", "n", 2).await.unwrap(), 2);
        assert_eq!(store.kv_increment("b", "n", -5).await.unwrap(), -3);
        assert_eq!(store.kv_get("b", "n").await.unwrap(), Some(b"-3".to_vec()));
        store.kv_set("b", "s", b"text").await.unwrap();
        assert!(matches!(
            store.kv_increment("b", "s", 1).await,
            Err(StoreError::NotAnInteger { .. })
        ));
        assert_eq!(
            store
                .kv_swap("b", "s", Some(b"text"), b"new")
                .await
                .unwrap(),
            Swapped::Done
        );
        assert_eq!(
            store
                .kv_swap("b", "s", Some(b"text"), b"newer")
                .await
                .unwrap(),
            Swapped::Changed(Some(b"new".to_vec()))
        );
        assert_eq!(
            store.kv_swap("b", "u", None, b"1").await.unwrap(),
            Swapped::Done
        );
        assert_eq!(store.kv_get("other", "u").await.unwrap(), None);
        let (keys, next) = store.kv_list("b", None).await.unwrap();
        assert_eq!(
            (keys, next),
            (vec!["n".into(), "s".into(), "u".into()], None)
        );
        store
            .kv_delete("b", &["n".into(), "s".into()])
            .await
            .unwrap();
        assert!(!store.kv_exists("b", "n").await.unwrap());
        assert!(store.open("rate-limit").is_ok());
        assert!(store.open("a:b").is_err());
    }
}
