//! Proxy-wasm shared data and shared queues kept by the host: the
//! `pwchain:proxy/legacy-shared` import of a chain composed with
//! `shared-data = "host"`. Answers with the ABI's statuses, as the
//! built-in `legacy-shared` does inside an instance; a store that fails
//! answers `INTERNAL_FAILURE`, which SDKs hand to the filter as an error.

use super::{Popped, StateStore, StoreError};
use crate::state::Host;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use wasmtime::component::Linker;

/// The interface a chain imports for them.
pub const INTERFACE: &str = "pwchain:proxy/legacy-shared@0.1.0";

/// The ABI's statuses.
const OK: u32 = 0;
const NOT_FOUND: u32 = 1;
const BAD_ARGUMENT: u32 = 2;
const EMPTY: u32 = 7;
const CAS_MISMATCH: u32 = 8;
const INTERNAL_FAILURE: u32 = 10;

fn status(error: &StoreError) -> u32 {
    match error {
        StoreError::TooLarge { .. } => BAD_ARGUMENT,
        _ => INTERNAL_FAILURE,
    }
}

/// The queues each plugin (by name) registered in this server, and how
/// many items each queue had seen when the plugin was last told: a plugin
/// hears of a queue again only after something new was pushed, by this
/// replica or another.
#[derive(Debug, Default)]
struct Owners {
    queues: Mutex<HashMap<String, Vec<(u32, u64)>>>,
}

impl Owners {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<(u32, u64)>>> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self, owner: String, id: u32) {
        let mut queues = self.lock();
        let owned = queues.entry(owner).or_default();
        if !owned.iter().any(|(q, _)| *q == id) {
            owned.push((id, 0));
        }
    }

    /// The queues `owner` should hear of now.
    async fn take_ready(&self, store: &StateStore, owner: &str) -> Vec<u32> {
        let ids: Vec<u32> = match self.lock().get(owner) {
            Some(owned) => owned.iter().map(|(id, _)| *id).collect(),
            None => return Vec::new(),
        };
        let Ok(marks) = store.queue_marks(&ids).await else {
            return Vec::new();
        };
        let mut queues = self.lock();
        let Some(owned) = queues.get_mut(owner) else {
            return Vec::new();
        };
        let mut ready = Vec::new();
        for ((id, told), mark) in owned.iter_mut().zip(marks) {
            if mark.len > 0 && mark.pushed > *told {
                *told = mark.pushed;
                ready.push(*id);
            }
        }
        ready
    }
}

/// Provides `legacy-shared` to the chain, kept in `store`.
pub(crate) fn add_to_linker(linker: &mut Linker<Host>, store: &StateStore) -> wasmtime::Result<()> {
    let mut instance = linker.instance(INTERFACE)?;
    let owners = Arc::new(Owners::default());

    let s = store.clone();
    instance.func_wrap_async("get-data", move |_, (key,): (Vec<u8>,)| {
        let s = s.clone();
        Box::new(async move {
            let found = match s.data_get(&key).await {
                Ok(Some(entry)) => Ok(entry),
                Ok(None) => Err(NOT_FOUND),
                Err(e) => Err(status(&e)),
            };
            Ok((found,))
        })
    })?;
    let s = store.clone();
    instance.func_wrap_async(
        "set-data",
        move |_, (key, value, cas): (Vec<u8>, Vec<u8>, u32)| {
            let s = s.clone();
            Box::new(async move {
                let done = match s.data_set(&key, &value, cas).await {
                    Ok(Some(_)) => OK,
                    Ok(None) => CAS_MISMATCH,
                    Err(e) => status(&e),
                };
                Ok((done,))
            })
        },
    )?;
    let (s, o) = (store.clone(), owners.clone());
    instance.func_wrap_async(
        "register-queue",
        move |_, (owner, name): (String, Vec<u8>)| {
            let (s, o) = (s.clone(), o.clone());
            Box::new(async move {
                // 0 is no queue: every later call on it answers NOT_FOUND.
                let id = s.queue_register(&name).await.unwrap_or(0);
                if id != 0 {
                    o.add(owner, id);
                }
                Ok((id,))
            })
        },
    )?;
    let s = store.clone();
    instance.func_wrap_async("resolve-queue", move |_, (name,): (Vec<u8>,)| {
        let s = s.clone();
        Box::new(async move {
            let found = match s.queue_resolve(&name).await {
                Ok(Some(id)) => Ok(id),
                Ok(None) => Err(NOT_FOUND),
                Err(e) => Err(status(&e)),
            };
            Ok((found,))
        })
    })?;
    let s = store.clone();
    instance.func_wrap_async("enqueue", move |_, (id, value): (u32, Vec<u8>)| {
        let s = s.clone();
        Box::new(async move {
            let done = match s.queue_push(id, &value).await {
                Ok(true) => OK,
                Ok(false) => NOT_FOUND,
                Err(e) => status(&e),
            };
            Ok((done,))
        })
    })?;
    let s = store.clone();
    instance.func_wrap_async("dequeue", move |_, (id,): (u32,)| {
        let s = s.clone();
        Box::new(async move {
            let popped = match s.queue_pop(id).await {
                Ok(Popped::Item(item)) => Ok(item),
                Ok(Popped::Empty) => Err(EMPTY),
                Ok(Popped::NoQueue) => Err(NOT_FOUND),
                Err(e) => Err(status(&e)),
            };
            Ok((popped,))
        })
    })?;
    let s = store.clone();
    instance.func_wrap_async("take-ready", move |_, (owner,): (String,)| {
        let (s, o) = (s.clone(), owners.clone());
        Box::new(async move { Ok((o.take_ready(&s, &owner).await,)) })
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_failures_become_the_abi_statuses() {
        let large = StoreError::TooLarge {
            what: "value",
            len: 9,
            limit: 8,
        };
        assert_eq!(status(&large), BAD_ARGUMENT);
        let gone = StoreError::Unavailable {
            url: "redis://127.0.0.1:1".into(),
            reason: "refused".into(),
        };
        assert_eq!(status(&gone), INTERNAL_FAILURE);
    }
}
