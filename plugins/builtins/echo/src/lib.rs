//! Service (a chain's terminal): answers with the request it received:
//! method and path, the headers in order, a blank line, then the request
//! body streamed back as it arrives; the request's trailers come back as
//! the answer's, so a chain's trailers can be seen to pass both ways.

use exports::wasi::http::handler::Guest;
use pwchain_guest::{
    ErrorCode, Fields, Request, Response, body_stream, method_name, spawn, trailers_channel,
};

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
        let (body, trailers) =
            Request::consume_body(request, pwchain_guest::wit_future::new(|| Ok(())).1);
        let headers =
            Fields::from_list(&[("content-type".into(), b"text/plain; charset=utf-8".to_vec())])
                .map_err(|e| ErrorCode::InternalError(Some(format!("{e:?}"))))?;
        // The request's trailers go into a future of echo's own: handing
        // the request's on would give a stage that wrote them its own
        // future back to read, which the component model refuses.
        let (trailers_to, echoed) = trailers_channel();
        spawn(async move {
            let _ = trailers_to.write(trailers.await).await;
        });
        let (response, _) = Response::new(
            headers,
            Some(body_stream(head.into_bytes(), Some(body))),
            echoed,
        );
        Ok(response)
    }
}

export!(Echo);
