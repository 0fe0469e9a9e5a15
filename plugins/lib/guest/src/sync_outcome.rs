//! [`crate::body_done`] for a sync-lifted `handle`.

use crate::wasi::http::types::ErrorCode;
use wit_bindgen::FutureReader;

/// A `res` future for `consume-body` that reports success, made without a
/// running task: a sync-lifted `handle` has none to finish a write after
/// it returns (wit-bindgen's future writers need one, and trap without).
/// The write is started here and left pending, so the reader copies the
/// value whenever it reads; its writer handle stays in the instance's
/// table until the instance goes, one per message rebuilt.
pub fn body_done_sync() -> FutureReader<Result<(), ErrorCode>> {
    use std::sync::OnceLock;
    let vtable = <Result<(), ErrorCode> as crate::wit_future::FuturePayload>::VTABLE;
    // `ok` lowered once; every pending write reads the same bytes.
    static OK: OnceLock<usize> = OnceLock::new();
    let ok = *OK.get_or_init(|| unsafe {
        let slot = std::alloc::alloc_zeroed(vtable.layout);
        (vtable.lower)(Ok(()), slot);
        slot as usize
    });
    // SAFETY: the vtable is the one wit-bindgen generated for this payload;
    // the handles come from `future.new`, and `ok` lives as long as the
    // instance, so the pending write never reads freed memory.
    unsafe {
        let handles = (vtable.new)();
        let (reader, writer) = (handles as u32, (handles >> 32) as u32);
        (vtable.start_write)(writer, ok as *const u8);
        FutureReader::new(reader, vtable)
    }
}
