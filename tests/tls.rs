//! `pwchain serve --tls-cert --tls-key`: HTTPS with a certificate made in
//! the test, HTTP/2 and HTTP/1.1 chosen by ALPN (an upstream told the client
//! used https), the certificate replaced
//! on `SIGHUP`, and unusable certificates refused before anything listens.

use crate::support::*;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use rustls::pki_types::{CertificateDer, ServerName};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A self-signed certificate for `localhost`, written as `NAME.crt` and
/// `NAME.key`; returns the paths and the certificate.
pub(crate) fn certificate(
    ws: &Workspace,
    name: &str,
) -> (PathBuf, PathBuf, CertificateDer<'static>) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .expect("make a certificate");
    let cert = ws.write(&format!("{name}.crt"), made.cert.pem());
    let key = ws.write(&format!("{name}.key"), made.signing_key.serialize_pem());
    (cert, key, made.cert.der().clone())
}

/// GET `/` over TLS, trusting only `trusted`, offering only `alpn`;
/// returns the protocol the server chose, the response's status and body.
async fn get(
    addr: SocketAddr,
    trusted: &CertificateDer<'static>,
    alpn: &[u8],
) -> Result<(Vec<u8>, u16, String), String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trusted.clone()).map_err(|e| e.to_string())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from("localhost").expect("a name");
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let chosen = stream
        .get_ref()
        .1
        .alpn_protocol()
        .unwrap_or_default()
        .to_vec();
    let io = hyper_util::rt::TokioIo::new(stream);
    let request = hyper::Request::get(format!("https://localhost:{}/", addr.port()))
        .body(Empty::<Bytes>::new())
        .expect("a request");
    let response = if chosen == b"h2" {
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        sender.send_request(request).await
    } else {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        sender.send_request(request).await
    }
    .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((chosen, status, String::from_utf8_lossy(&body).into_owned()))
}

#[test]
fn https_with_alpn_and_a_certificate_swapped_on_sighup() {
    let ws = Workspace::new();
    let (cert, key, first) = certificate(&ws, "first");
    let echo = plugins().join("echo.wasm");
    let served = Served::with_args(
        &echo,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let addr = served.addr;
    for alpn in [&b"h2"[..], b"http/1.1"] {
        let (chosen, status, _) = runtime
            .block_on(get(addr, &first, alpn))
            .expect("an answer over TLS");
        assert_eq!((chosen.as_slice(), status), (alpn, 200));
    }

    // A new pair in the same files, then SIGHUP: new connections get it.
    let (_, _, second) = certificate(&ws, "first");
    served.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while runtime.block_on(get(addr, &second, b"h2")).is_err() {
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(runtime.block_on(get(addr, &first, b"h2")).is_err());
    assert!(served.log_line("reloaded the TLS certificate").is_some());
}

#[test]
fn the_upstream_is_told_the_client_used_https() {
    let ws = Workspace::new();
    let (cert, key, trusted) = certificate(&ws, "edge");
    let composite = ws.compose(&format!(
        "[chain]\nname = \"edge\"\n\n[[plugin]]\nname = \"add-header\"\npath = {:?}\n\n[origin]\nhost = true\n",
        plugins().join("add-header.wasm")
    ));
    let upstream = Peer::replying(Reply::Text("from the upstream"));
    let served = Served::with_args(
        &composite,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--upstream",
            &format!("http://{}", upstream.addr),
        ],
    );
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    for alpn in [&b"h2"[..], b"http/1.1"] {
        let (_, status, body) = runtime
            .block_on(get(served.addr, &trusted, alpn))
            .expect("an answer over TLS");
        assert_eq!((status, body.as_str()), (200, "from the upstream"));
        let seen = upstream.next().expect("the upstream got the request");
        assert_eq!(seen.header("x-forwarded-proto"), Some("https"));
        assert_eq!(
            seen.header("x-forwarded-host"),
            Some(format!("localhost:{}", served.addr.port()).as_str())
        );
        assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
    }
}

#[test]
fn unusable_certificates_are_refused_before_listening() {
    let ws = Workspace::new();
    let (cert, _, _) = certificate(&ws, "one");
    let (_, other_key, _) = certificate(&ws, "two");
    let echo = plugins().join("echo.wasm");
    let serve = |cert: &std::path::Path, key: &std::path::Path| {
        run(&[
            "serve",
            echo.to_str().unwrap(),
            "--addr",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ])
    };
    let mismatched = serve(&cert, &other_key);
    assert_eq!(mismatched.status.code(), Some(1));
    assert!(
        stderr(&mismatched).contains("cannot be used together"),
        "{}",
        stderr(&mismatched)
    );
    let missing = serve(&ws.path("nope.crt"), &other_key);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("cannot read the certificate"),
        "{}",
        stderr(&missing)
    );
    let not_a_key = serve(&cert, &cert);
    assert_eq!(not_a_key.status.code(), Some(1));
    assert!(
        stderr(&not_a_key).contains("cannot read the private key"),
        "{}",
        stderr(&not_a_key)
    );
    // Only one of the pair is a usage error.
    let half = run(&["serve", "x.wasm", "--tls-cert", cert.to_str().unwrap()]);
    assert_eq!(half.status.code(), Some(2));
}
