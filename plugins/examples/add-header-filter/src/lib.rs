//! Header filter (`wit/filter.wit`): the same work as `add-header`, done
//! through pwchain's plain-data contract. It adds headers to the request
//! and to the response; pwchain runs consecutive header filters behind one
//! driver, so each costs a call instead of a rebuild of the message.
//!
//! What it adds comes from its configuration, as `add-header`'s: each key
//! `request.NAME` adds header `NAME` to the request, each `response.NAME`
//! to the response. With no configuration it adds `x-chain-hop:
//! add-header-filter` and `x-served-by: pwchain add-header-filter`.

use exports::pwchain::proxy::header_filter::{Edit, Guest, RequestHead, ResponseHead, Verdict};
use pwchain_guest::HeaderList;
use std::sync::OnceLock;
use wasi::config::store;

/// The edits to make, read from the configuration once per instance.
static EDITS: OnceLock<(Vec<Edit>, Vec<Edit>)> = OnceLock::new();

// Plain data only: no wasi:http types to share with `pwchain-guest`.
wit_bindgen::generate!({
    path: "../../../wit",
    world: "pwchain:proxy/configured-header-filter@0.1.0",
    generate_all,
});

fn edits() -> &'static (Vec<Edit>, Vec<Edit>) {
    EDITS.get_or_init(|| {
        let (request, response) = pwchain_guest::configured_headers(
            store::get_all().unwrap_or_default(),
            "add-header-filter",
        );
        let appends = |list: HeaderList| list.into_iter().map(Edit::Append).collect();
        (appends(request), appends(response))
    })
}

struct AddHeader;

impl Guest for AddHeader {
    fn on_request(_head: RequestHead) -> Verdict {
        Verdict::Continue(edits().0.clone())
    }

    fn on_response(_head: ResponseHead) -> Verdict {
        Verdict::Continue(edits().1.clone())
    }
}

export!(AddHeader);
