//! `wasi:keyvalue@0.2.0-draft2` (store, atomics, batch) for native
//! plugins, kept in the server's [`StateStore`]: a bucket is a namespace in
//! it, so every instance (and, on Redis, every replica) that opens the
//! same bucket sees the same entries. The version Spin 3 provides.

use super::{StateStore, StoreError, Swapped};
use crate::state::Host;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

mod generated {
    wasmtime::component::bindgen!({
        path: "../../wit/deps/keyvalue",
        world: "wasi:keyvalue/imports",
        imports: { default: async | trappable },
        with: {
            "wasi:keyvalue/store.bucket": super::Bucket,
            "wasi:keyvalue/atomics.cas": super::Cas,
        },
    });
}

use generated::wasi::keyvalue::{atomics, batch, store};

/// An open bucket: its name.
pub struct Bucket(String);

/// A compare-and-swap handle: the entry and what it held when read.
pub struct Cas {
    bucket: String,
    key: String,
    seen: Option<Vec<u8>>,
}

fn error(e: StoreError) -> store::Error {
    store::Error::Other(e.to_string())
}

/// What the bindings call: the instance's resource table and the store.
pub struct KeyValue<'a> {
    table: &'a mut ResourceTable,
    store: &'a StateStore,
}

impl KeyValue<'_> {
    fn bucket(&self, bucket: &Resource<Bucket>) -> wasmtime::Result<String> {
        Ok(self.table.get(bucket)?.0.clone())
    }
}

impl store::Host for KeyValue<'_> {
    async fn open(
        &mut self,
        identifier: String,
    ) -> wasmtime::Result<Result<Resource<Bucket>, store::Error>> {
        if let Err(e) = self.store.open(&identifier) {
            return Ok(Err(error(e)));
        }
        Ok(Ok(self.table.push(Bucket(identifier))?))
    }
}

impl store::HostBucket for KeyValue<'_> {
    async fn get(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, store::Error>> {
        let name = self.bucket(&bucket)?;
        Ok(self.store.kv_get(&name, &key).await.map_err(error))
    }

    async fn set(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), store::Error>> {
        let name = self.bucket(&bucket)?;
        Ok(self.store.kv_set(&name, &key, &value).await.map_err(error))
    }

    async fn delete(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<(), store::Error>> {
        let name = self.bucket(&bucket)?;
        Ok(self.store.kv_delete(&name, &[key]).await.map_err(error))
    }

    async fn exists(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<bool, store::Error>> {
        let name = self.bucket(&bucket)?;
        Ok(self.store.kv_exists(&name, &key).await.map_err(error))
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<String>,
    ) -> wasmtime::Result<Result<store::KeyResponse, store::Error>> {
        let name = self.bucket(&bucket)?;
        // Cursors are the store's page numbers, written in decimal.
        let cursor = match cursor.as_deref().map(str::parse) {
            None => None,
            Some(Ok(n)) => Some(n),
            Some(Err(_)) => {
                return Ok(Err(store::Error::Other(
                    "not a cursor list-keys gave".into(),
                )));
            }
        };
        let listed = self.store.kv_list(&name, cursor).await;
        Ok(listed
            .map(|(keys, next)| store::KeyResponse {
                keys,
                cursor: next.map(|n| n.to_string()),
            })
            .map_err(error))
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for KeyValue<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: i64,
    ) -> wasmtime::Result<Result<i64, store::Error>> {
        let name = self.bucket(&bucket)?;
        Ok(self
            .store
            .kv_increment(&name, &key, delta)
            .await
            .map_err(error))
    }

    async fn swap(
        &mut self,
        cas: Resource<Cas>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let Cas { bucket, key, seen } = self.table.delete(cas)?;
        let swapped = self
            .store
            .kv_swap(&bucket, &key, seen.as_deref(), &value)
            .await;
        Ok(match swapped {
            Ok(Swapped::Done) => Ok(()),
            Ok(Swapped::Changed(current)) => {
                let again = self.table.push(Cas {
                    bucket,
                    key,
                    seen: current,
                })?;
                Err(atomics::CasError::CasFailed(again))
            }
            Err(e) => Err(atomics::CasError::StoreError(error(e))),
        })
    }
}

impl atomics::HostCas for KeyValue<'_> {
    async fn new(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<Resource<Cas>, store::Error>> {
        let name = self.bucket(&bucket)?;
        let seen = match self.store.kv_get(&name, &key).await {
            Ok(seen) => seen,
            Err(e) => return Ok(Err(error(e))),
        };
        let cas = Cas {
            bucket: name,
            key,
            seen,
        };
        Ok(Ok(self.table.push(cas)?))
    }

    async fn current(
        &mut self,
        cas: Resource<Cas>,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, store::Error>> {
        Ok(Ok(self.table.get(&cas)?.seen.clone()))
    }

    async fn drop(&mut self, cas: Resource<Cas>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

impl batch::Host for KeyValue<'_> {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<Option<(String, Vec<u8>)>>, store::Error>> {
        let name = self.bucket(&bucket)?;
        let values = self.store.kv_get_many(&name, &keys).await;
        Ok(values
            .map(|values| {
                keys.into_iter()
                    .zip(values)
                    .map(|(key, value)| value.map(|v| (key, v)))
                    .collect()
            })
            .map_err(error))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> wasmtime::Result<Result<(), store::Error>> {
        let name = self.bucket(&bucket)?;
        Ok(self
            .store
            .kv_set_many(&name, &key_values)
            .await
            .map_err(error))
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<(), store::Error>> {
        let name = self.bucket(&bucket)?;
        Ok(self.store.kv_delete(&name, &keys).await.map_err(error))
    }
}

struct HasKeyValue;

impl HasData for HasKeyValue {
    type Data<'a> = KeyValue<'a>;
}

/// Provides `wasi:keyvalue` to the chain, kept in the store each
/// instance's [`Host`] names.
pub(crate) fn add_to_linker(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    fn view(host: &mut Host) -> KeyValue<'_> {
        KeyValue {
            table: &mut host.table,
            store: &host.state,
        }
    }
    store::add_to_linker::<_, HasKeyValue>(linker, view)?;
    atomics::add_to_linker::<_, HasKeyValue>(linker, view)?;
    batch::add_to_linker::<_, HasKeyValue>(linker, view)?;
    Ok(())
}
