//! Service (a chain's terminal): answers with the request it received:
//! method and path, the headers in order, a blank line, then the request
//! body streamed back as it arrives.

use exports::wasi::http::handler::Guest;
use pwchain_guest::{ErrorCode, Fields, Request, Response, body_stream, method_name, no_trailers};

pwchain_guest::bindings!("wasi:http/service@0.3.2");

struct Echo;

impl Guest for Echo {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let mut head = format!(
            "{} {}\n",
            method_name(&request.get_method()),
            request.get_path_with_query().unwrap_or_default()
        );
        for (name, value) in request.get_headers().copy_all() {
            head.push_str(&format!("{name}: {}\n", String::from_utf8_lossy(&value)));
        }
        head.push('\n');
        let (body, _) = Request::consume_body(request, pwchain_guest::wit_future::new(|| Ok(())).1);
        let headers =
            Fields::from_list(&[("content-type".into(), b"text/plain; charset=utf-8".to_vec())])
                .map_err(|e| ErrorCode::InternalError(Some(format!("{e:?}"))))?;
        let (response, _) = Response::new(
            headers,
            Some(body_stream(head.into_bytes(), Some(body))),
            no_trailers(),
        );
        Ok(response)
    }
}

export!(Echo);
