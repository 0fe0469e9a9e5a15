//! The store in the server's memory: what every instance of the server
//! shares when no `--store` is given. Same answers as [`super::redis`].

use super::{Cas, Popped, QueueMark, StoreError, Swapped};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

#[derive(Debug, Default)]
pub(super) struct Memory {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Values and their versions (never 0 once set).
    data: HashMap<Vec<u8>, (Vec<u8>, Cas)>,
    /// Queue `id` is at `id - 1`.
    queues: Vec<Queue>,
    /// Buckets, each sorted so that listing pages are stable.
    buckets: HashMap<String, BTreeMap<String, Vec<u8>>>,
}

#[derive(Debug)]
struct Queue {
    name: Vec<u8>,
    items: VecDeque<Vec<u8>>,
    pushed: u64,
}

impl Memory {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub(super) fn data_get(&self, key: &[u8]) -> Option<(Vec<u8>, Cas)> {
        self.with(|s| s.data.get(key).cloned())
    }

    pub(super) fn data_set(&self, key: &[u8], value: &[u8], cas: Cas) -> Option<Cas> {
        self.with(|s| {
            let current = s.data.get(key).map_or(0, |(_, c)| *c);
            if cas != 0 && cas != current {
                return None;
            }
            let next = next_cas(current);
            s.data.insert(key.to_vec(), (value.to_vec(), next));
            Some(next)
        })
    }

    pub(super) fn queue_register(&self, name: &[u8]) -> u32 {
        self.with(|s| {
            if let Some(i) = s.queues.iter().position(|q| q.name == name) {
                return i as u32 + 1;
            }
            s.queues.push(Queue {
                name: name.to_vec(),
                items: VecDeque::new(),
                pushed: 0,
            });
            s.queues.len() as u32
        })
    }

    pub(super) fn queue_resolve(&self, name: &[u8]) -> Option<u32> {
        self.with(|s| {
            let found = s.queues.iter().position(|q| q.name == name);
            found.map(|i| i as u32 + 1)
        })
    }

    pub(super) fn queue_push(&self, id: u32, value: &[u8]) -> bool {
        self.with(|s| match queue(s, id) {
            Some(q) => {
                q.items.push_back(value.to_vec());
                q.pushed += 1;
                true
            }
            None => false,
        })
    }

    pub(super) fn queue_pop(&self, id: u32) -> Popped {
        self.with(|s| match queue(s, id) {
            Some(q) => q.items.pop_front().map_or(Popped::Empty, Popped::Item),
            None => Popped::NoQueue,
        })
    }

    pub(super) fn queue_marks(&self, ids: &[u32]) -> Vec<QueueMark> {
        self.with(|s| {
            ids.iter()
                .map(|id| {
                    queue(s, *id).map_or(QueueMark::default(), |q| QueueMark {
                        len: q.items.len() as u64,
                        pushed: q.pushed,
                    })
                })
                .collect()
        })
    }

    pub(super) fn kv_get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        self.with(|s| s.buckets.get(bucket)?.get(key).cloned())
    }

    pub(super) fn kv_set(&self, bucket: &str, key: &str, value: &[u8]) {
        self.with(|s| {
            let b = s.buckets.entry(bucket.into()).or_default();
            b.insert(key.into(), value.to_vec());
        })
    }

    pub(super) fn kv_delete(&self, bucket: &str, keys: &[String]) {
        self.with(|s| {
            if let Some(b) = s.buckets.get_mut(bucket) {
                for key in keys {
                    b.remove(key);
                }
            }
        })
    }

    /// Every key at once: memory needs no pages.
    pub(super) fn kv_list(&self, bucket: &str, _cursor: Option<u64>) -> (Vec<String>, Option<u64>) {
        let keys = self.with(|s| s.buckets.get(bucket).map(|b| b.keys().cloned().collect()));
        (keys.unwrap_or_default(), None)
    }

    pub(super) fn kv_increment(
        &self,
        bucket: &str,
        key: &str,
        delta: i64,
    ) -> Result<i64, StoreError> {
        self.with(|s| {
            let b = s.buckets.entry(bucket.into()).or_default();
            let current = match b.get(key) {
                Some(bytes) => {
                    integer(bytes).ok_or_else(|| StoreError::NotAnInteger { key: key.into() })?
                }
                None => 0,
            };
            let next = current
                .checked_add(delta)
                .ok_or_else(|| StoreError::NotAnInteger { key: key.into() })?;
            b.insert(key.into(), next.to_string().into_bytes());
            Ok(next)
        })
    }

    pub(super) fn kv_swap(
        &self,
        bucket: &str,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Swapped {
        self.with(|s| {
            let b = s.buckets.entry(bucket.into()).or_default();
            let current = b.get(key).map(Vec::as_slice);
            if current != expected {
                return Swapped::Changed(current.map(<[u8]>::to_vec));
            }
            b.insert(key.into(), value.to_vec());
            Swapped::Done
        })
    }
}

fn queue(s: &mut State, id: u32) -> Option<&mut Queue> {
    s.queues.get_mut((id as usize).wrapping_sub(1))
}

/// The version after `current`: counts up from 1 and skips 0 on wrapping.
fn next_cas(current: Cas) -> Cas {
    current.wrapping_add(1).max(1)
}

/// A stored value read as Redis's `INCRBY` reads it: a decimal `i64`.
fn integer(bytes: &[u8]) -> Option<i64> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}
