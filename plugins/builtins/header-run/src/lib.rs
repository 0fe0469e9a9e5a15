//! pwchain's built-in driver of a run of header filters (`wit/filter.wit`):
//! the `wasi:http/handler` that stands for the whole run. It reads the
//! request's head once, asks the run for a verdict as plain data, and
//! rebuilds the request once, only if the run changed it; the same for the
//! response on its way back. A filter thus costs a call, not a hop.
//!
//! Built from this source and embedded in the `pwchain` binary; a test checks
//! that the committed `crates/compose/builtins/header-run.wasm` matches it.

use exports::wasi::http::handler::Guest;
use pwchain::proxy::header_filter::{
    self as run, Edit, LocalResponse, RequestHead, ResponseHead, Verdict,
};
use pwchain_guest::{
    ErrorCode, HeaderEdit, Request, Response, Scheme, map_request_headers, map_response,
    method_name, parse_method, parse_scheme,
};
use wasi::http::handler;

pwchain_guest::bindings!("pwchain:proxy/header-run@0.1.0");

struct Run;

impl Guest for Run {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let head = RequestHead {
            method: method_name(&request.get_method()).to_string(),
            scheme: request.get_scheme().map(|scheme| match scheme {
                Scheme::Http => "http".to_string(),
                Scheme::Https => "https".to_string(),
                Scheme::Other(other) => other,
            }),
            authority: request.get_authority(),
            path_with_query: request.get_path_with_query(),
            headers: request.get_headers().copy_all(),
        };
        let request = match run::on_request(&head) {
            Verdict::Respond(local) => return respond(local),
            Verdict::Continue(edits) if edits.is_empty() => request,
            Verdict::Continue(edits) => edit_request(request, &edits)?,
        };
        let response = handler::handle(request).await?;
        let head = ResponseHead {
            status: response.get_status_code(),
            headers: response.get_headers().copy_all(),
        };
        match run::on_response(&head) {
            Verdict::Respond(local) => respond(local),
            Verdict::Continue(edits) if edits.is_empty() => Ok(response),
            Verdict::Continue(edits) => {
                let mut status = None;
                let response = map_response(
                    response,
                    |headers| {
                        for edit in &edits {
                            match pseudo(edit) {
                                Some((":status", value)) => status = Some(parse_status(value)?),
                                Some((name, _)) => return Err(bad_pseudo(name, "a response")),
                                None => apply(headers, edit)?,
                            }
                        }
                        Ok(())
                    },
                    None,
                )?;
                if let Some(status) = status {
                    response
                        .set_status_code(status)
                        .map_err(|()| filter_bug(format!("status {status} is not valid")))?;
                }
                Ok(response)
            }
        }
    }
}

/// Rebuilds `request` with the run's changes: header edits on a host-side
/// copy of its headers, pseudo-header edits on the rebuilt request.
fn edit_request(request: Request, edits: &[Edit]) -> Result<Request, ErrorCode> {
    let mut target = Vec::new();
    let request = map_request_headers(request, |headers| {
        for edit in edits {
            match pseudo(edit) {
                Some(pair) => target.push(pair),
                None => apply(headers, edit)?,
            }
        }
        Ok(())
    })?;
    for (name, value) in target {
        let text = String::from_utf8_lossy(value);
        let set = match name {
            ":method" => request.set_method(&parse_method(&text)),
            ":path" => request.set_path_with_query(Some(&text)),
            ":authority" => request.set_authority(Some(&text)),
            ":scheme" => request.set_scheme(Some(&parse_scheme(&text))),
            other => return Err(bad_pseudo(other, "a request")),
        };
        set.map_err(|()| filter_bug(format!("`{name}: {text}` is not valid")))?;
    }
    Ok(request)
}

/// A `set` of a pseudo-header (`:path`, `:status`, …), as name and value.
/// Any other edit naming one is refused by [`apply`].
fn pseudo(edit: &Edit) -> Option<(&str, &[u8])> {
    match edit {
        Edit::Set((name, value)) if name.starts_with(':') => Some((name.as_str(), value)),
        _ => None,
    }
}

fn apply(headers: &HeaderEdit, edit: &Edit) -> Result<(), ErrorCode> {
    match edit {
        Edit::Set((name, value)) => headers.set(name, value),
        Edit::Append((name, _)) | Edit::Remove(name) if name.starts_with(':') => Err(filter_bug(
            format!("`{name}` can only be changed with `set`"),
        )),
        Edit::Append((name, value)) => headers.append(name, value),
        Edit::Remove(name) => headers.remove(name),
    }
}

fn respond(local: LocalResponse) -> Result<Response, ErrorCode> {
    let (mut tx, rx) = pwchain_guest::body_channel();
    let response_headers = pwchain_guest::fields(&local.headers)?;
    let (response, _) = Response::new(response_headers, Some(rx), pwchain_guest::no_trailers());
    response
        .set_status_code(local.status)
        .map_err(|()| filter_bug(format!("status {} is not valid", local.status)))?;
    if !local.body.is_empty() {
        pwchain_guest::spawn(async move {
            let _unsent = tx.write_all(local.body).await;
        });
    }
    Ok(response)
}

fn parse_status(value: &[u8]) -> Result<u16, ErrorCode> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| filter_bug(format!("`:status` {value:?} is not a number")))
}

fn bad_pseudo(name: &str, message: &str) -> ErrorCode {
    filter_bug(format!("`{name}` is not a pseudo-header of {message}"))
}

/// A change no message can take: the filter is wrong, the request fails
/// (500), the server goes on.
fn filter_bug(message: String) -> ErrorCode {
    ErrorCode::InternalError(Some(format!("header filter: {message}")))
}

export!(Run);
