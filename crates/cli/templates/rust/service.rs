//! `{{name}}`: a service that answers every request itself, with
//! `x-{{name}}: answered` and a line of text. Start here.

use exports::wasi::http::handler::Guest;
use wasi::http::types::{ErrorCode, Fields, Request, Response};

wit_bindgen::generate!({
    path: "wit",
    world: "plugin",
    generate_all,
});

struct Plugin;

impl Guest for Plugin {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let text = format!(
            "hello from {{name}}: {}\n",
            request.get_path_with_query().unwrap_or_default()
        );
        let headers = Fields::from_list(&[
            ("content-type".into(), b"text/plain; charset=utf-8".to_vec()),
            ("x-{{name}}".into(), b"answered".to_vec()),
        ])
        .map_err(|e| ErrorCode::InternalError(Some(format!("{e:?}"))))?;
        let (mut tx, rx) = wit_stream::new();
        wit_bindgen::spawn_local(async move {
            let _unsent = tx.write_all(text.into_bytes()).await;
        });
        let (response, _) = Response::new(headers, Some(rx), wit_future::new(|| Ok(None)).1);
        Ok(response)
    }
}

export!(Plugin);
