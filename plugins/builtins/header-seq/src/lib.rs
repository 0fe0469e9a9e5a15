//! pwchain's built-in pair of header filters (`wit/filter.wit`): the
//! imported `header-filter` first, then `rest`, shown as one filter. A run
//! of N filters is N-1 pairs deep; the run's driver calls the outermost.
//!
//! The pair keeps the order a chain of middlewares would have: the first
//! filter's request changes are applied before `rest` sees the head, on the
//! way out `rest` goes first, and a response that `rest` answers with
//! locally still passes the first filter's `on-response`.
//!
//! The pair's export is the contract's own interface, whose types are
//! distinct from its imports' in the bindings; they are moved across (no
//! copies) at the edge of each call.
//!
//! Built from this source and embedded in the `pwchain` binary; a test checks
//! that the committed `crates/compose/builtins/header-seq.wasm` matches it.

use exports::pwchain::proxy::header_filter as out;
use pwchain::proxy::header_filter::{
    self as first, Edit, LocalResponse, RequestHead, ResponseHead, Verdict,
};

wit_bindgen::generate!({
    path: "../../../wit",
    world: "pwchain:proxy/header-seq@0.1.0",
    generate_all,
});

struct Pair;

impl out::Guest for Pair {
    fn on_request(head: out::RequestHead) -> out::Verdict {
        on_request(RequestHead {
            method: head.method,
            scheme: head.scheme,
            authority: head.authority,
            path_with_query: head.path_with_query,
            headers: head.headers,
        })
        .into()
    }

    fn on_response(head: out::ResponseHead) -> out::Verdict {
        on_response(ResponseHead {
            status: head.status,
            headers: head.headers,
        })
        .into()
    }
}

impl From<Verdict> for out::Verdict {
    fn from(verdict: Verdict) -> out::Verdict {
        match verdict {
            Verdict::Continue(edits) => {
                out::Verdict::Continue(edits.into_iter().map(out::Edit::from).collect())
            }
            Verdict::Respond(local) => out::Verdict::Respond(out::LocalResponse {
                status: local.status,
                headers: local.headers,
                body: local.body,
            }),
        }
    }
}

impl From<Edit> for out::Edit {
    fn from(edit: Edit) -> out::Edit {
        match edit {
            Edit::Set(pair) => out::Edit::Set(pair),
            Edit::Append(pair) => out::Edit::Append(pair),
            Edit::Remove(name) => out::Edit::Remove(name),
        }
    }
}

/// The first filter, then `rest` on the head changed by the first.
fn on_request(mut head: RequestHead) -> Verdict {
    let edits = match first::on_request(&head) {
        Verdict::Continue(edits) => edits,
        answered => return answered,
    };
    for edit in &edits {
        edit_request(&mut head, edit);
    }
    match rest::on_request(&head) {
        Verdict::Continue(more) => Verdict::Continue(joined(edits, more)),
        Verdict::Respond(local) => through_first(local),
    }
}

/// `rest` first, then the first filter, on the head changed by `rest`.
fn on_response(mut head: ResponseHead) -> Verdict {
    match rest::on_response(&head) {
        Verdict::Respond(local) => through_first(local),
        Verdict::Continue(edits) => {
            for edit in &edits {
                edit_response(&mut head, edit);
            }
            match first::on_response(&head) {
                Verdict::Continue(more) => Verdict::Continue(joined(edits, more)),
                answered => answered,
            }
        }
    }
}

/// A local answer from `rest`, after the first filter's `on-response`.
fn through_first(local: LocalResponse) -> Verdict {
    let mut head = ResponseHead {
        status: local.status,
        headers: local.headers,
    };
    match first::on_response(&head) {
        Verdict::Continue(edits) => {
            for edit in &edits {
                edit_response(&mut head, edit);
            }
            Verdict::Respond(LocalResponse {
                status: head.status,
                headers: head.headers,
                body: local.body,
            })
        }
        answered => answered,
    }
}

fn joined(mut edits: Vec<Edit>, more: Vec<Edit>) -> Vec<Edit> {
    edits.extend(more);
    edits
}

fn edit_request(head: &mut RequestHead, edit: &Edit) {
    if let Edit::Set((name, value)) = edit {
        let text = || Some(String::from_utf8_lossy(value).into_owned());
        match name.as_str() {
            ":method" => return head.method = text().unwrap_or_default(),
            ":scheme" => return head.scheme = text(),
            ":authority" => return head.authority = text(),
            ":path" => return head.path_with_query = text(),
            _ => {}
        }
    }
    edit_fields(&mut head.headers, edit);
}

fn edit_response(head: &mut ResponseHead, edit: &Edit) {
    if let Edit::Set((name, value)) = edit
        && name == ":status"
    {
        if let Some(status) = std::str::from_utf8(value)
            .ok()
            .and_then(|text| text.parse().ok())
        {
            head.status = status;
        }
        return;
    }
    edit_fields(&mut head.headers, edit);
}

/// An edit on a plain header list, as the driver makes it on the message's
/// fields (names compare without case). Edits the driver refuses (a
/// pseudo-header other than by `set`) are left for it to refuse.
fn edit_fields(headers: &mut Vec<(String, Vec<u8>)>, edit: &Edit) {
    match edit {
        Edit::Set((name, value)) => {
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            headers.push((name.clone(), value.clone()));
        }
        Edit::Append((name, value)) => headers.push((name.clone(), value.clone())),
        Edit::Remove(name) => headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name)),
    }
}

export!(Pair);
