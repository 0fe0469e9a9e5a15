//! Middleware: a global rate limit. Each client may make `limit` requests
//! per fixed window of `window-seconds`; the count lives in the
//! `wasi:keyvalue` bucket `rate-limit`, so every instance, and with
//! `pwchain serve --store redis://…` every replica, counts into the same
//! number (Redis `INCRBY`, atomic across replicas).
//!
//! Configuration (`config` in `chain.toml`):
//! - `limit` (default 100) and `window-seconds` (default 60);
//! - `key-header`: the header naming the client (default
//!   `x-forwarded-for`, whose first entry is the original client);
//!   a request without it counts under `unknown`;
//! - `fail`: what to do when the store does not answer: `open` (default,
//!   let the request through) or `closed` (answer 503).
//!
//! A request over the limit gets `429` with `retry-after` (seconds to the
//! next window) and `x-ratelimit-remaining: 0`; one under it goes on, and
//! its response carries `x-ratelimit-limit` and `x-ratelimit-remaining`.

use exports::wasi::http::handler::Guest;
use pwchain_guest::wasi::clocks::system_clock;
use pwchain_guest::{ErrorCode, Request, Response, map_response, text_response};
use std::sync::OnceLock;
use wasi::config::store as config;
use wasi::http::handler;
use wasi::keyvalue::{atomics, store};

pwchain_guest::bindings!("pwchain:proxy/keyvalue-middleware@0.1.0");

/// The bucket the counts live in.
const BUCKET: &str = "rate-limit";

/// The settings, read once per instance: they cannot change while it lives.
struct Settings {
    limit: i64,
    window: i64,
    key_header: String,
    fail_closed: bool,
}

static SETTINGS: OnceLock<Result<Settings, String>> = OnceLock::new();

fn settings() -> Result<&'static Settings, String> {
    let read = SETTINGS.get_or_init(|| {
        let get = |key: &str| config::get(key).ok().flatten();
        let number = |key: &str, default: i64| match get(key) {
            None => Ok(default),
            Some(text) => match text.trim().parse::<i64>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(format!("`{key}` is `{text}`, not a positive whole number")),
            },
        };
        let fail_closed = match get("fail").as_deref() {
            None | Some("open") => false,
            Some("closed") => true,
            Some(other) => return Err(format!("`fail` is `{other}`: use `open` or `closed`")),
        };
        Ok(Settings {
            limit: number("limit", 100)?,
            window: number("window-seconds", 60)?,
            key_header: get("key-header").unwrap_or_else(|| "x-forwarded-for".into()),
            fail_closed,
        })
    });
    read.as_ref().map_err(Clone::clone)
}

/// Who is asking: the header's first comma-separated entry.
fn client(request: &Request, header: &str) -> String {
    let values = request.get_headers().get(header);
    let first = values.first().and_then(|v| std::str::from_utf8(v).ok());
    let entry = first.and_then(|v| v.split(',').next()).map(str::trim);
    match entry {
        Some(entry) if !entry.is_empty() => entry.to_string(),
        _ => "unknown".into(),
    }
}

/// Counts this request in its client's current window: the count, and the
/// seconds until the next window.
fn count(client: &str, settings: &Settings) -> Result<(i64, i64), store::Error> {
    let now = system_clock::now().seconds;
    let window = now - now.rem_euclid(settings.window);
    let bucket = store::open(BUCKET)?;
    let key = format!("{client}:{window}");
    let n = atomics::increment(&bucket, &key, 1)?;
    if n == 1 {
        // The first request of a window clears the client's last one, so
        // the bucket holds two windows per client at most.
        let last = format!("{client}:{}", window - settings.window);
        bucket.delete(&last)?;
    }
    Ok((n, window + settings.window - now))
}

struct RateLimit;

impl Guest for RateLimit {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let settings = match settings() {
            Ok(settings) => settings,
            Err(e) => return text_response(500, &[], format!("rate-limit configuration: {e}\n")),
        };
        let who = client(&request, &settings.key_header);
        let remaining = match count(&who, settings) {
            Ok((n, retry)) if n > settings.limit => {
                let headers = [
                    ("retry-after".to_string(), retry.to_string().into_bytes()),
                    (
                        "x-ratelimit-limit".into(),
                        settings.limit.to_string().into_bytes(),
                    ),
                    ("x-ratelimit-remaining".into(), b"0".to_vec()),
                ];
                return text_response(429, &headers, "too many requests\n");
            }
            Ok((n, _)) => Some(settings.limit - n),
            // The store failed: the host has logged why.
            Err(_) if settings.fail_closed => {
                return text_response(503, &[], "rate limit unavailable\n");
            }
            Err(_) => None,
        };
        let response = handler::handle(request).await?;
        let Some(remaining) = remaining else {
            return Ok(response);
        };
        map_response(
            response,
            |headers| {
                headers.set("x-ratelimit-limit", settings.limit.to_string())?;
                headers.set("x-ratelimit-remaining", remaining.to_string())
            },
            None,
        )
    }
}

export!(RateLimit);
