//! `{{name}}`: a header filter. It adds `x-{{name}}: request` to every
//! request and `x-{{name}}: response` to every response. Start here.
//!
//! A header filter sees heads as plain data and answers with a verdict;
//! pwchain runs consecutive header filters behind one driver that rebuilds
//! each message once, so a filter costs a call, not a hop.

use exports::pwchain::proxy::header_filter::{
    Edit, Guest, LocalResponse, RequestHead, ResponseHead, Verdict,
};

wit_bindgen::generate!({
    path: "wit",
    world: "plugin",
    generate_all,
});

struct Plugin;

impl Guest for Plugin {
    fn on_request(head: RequestHead) -> Verdict {
        // `head` holds the method, scheme, authority, path and headers.
        // Answering here stops the request before the rest of the chain.
        if head.path_with_query.as_deref() == Some("/{{name}}-says-no") {
            return Verdict::Respond(LocalResponse {
                status: 403,
                headers: vec![("content-type".into(), b"text/plain".to_vec())],
                body: b"{{name}} says no\n".to_vec(),
            });
        }
        Verdict::Continue(vec![Edit::Append((
            "x-{{name}}".into(),
            b"request".to_vec(),
        ))])
    }

    fn on_response(_head: ResponseHead) -> Verdict {
        Verdict::Continue(vec![Edit::Append((
            "x-{{name}}".into(),
            b"response".to_vec(),
        ))])
    }
}

export!(Plugin);
