//! Blocking HTTP for the tests (the sandbox's `/_sandbox/*` endpoints, the daemon's
//! endpoints, Prometheus' API): hyper-util's client on a runtime of its own, so a plain
//! `#[test]` and a `#[tokio::test]` can both call it, each exchange bounded by a timeout.

use std::sync::OnceLock;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::Method;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// The client and the one-worker runtime its connections run on.
struct Http {
    runtime: tokio::runtime::Runtime,
    client: Client<HttpConnector, Full<Bytes>>,
}

fn http() -> &'static Http {
    static HTTP: OnceLock<Http> = OnceLock::new();
    HTTP.get_or_init(|| Http {
        runtime: tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("e2e-http")
            .enable_all()
            .build()
            .expect("the HTTP client's runtime"),
        // No idle connections kept: a pooled socket the server closed meanwhile cannot
        // fail a later request.
        client: Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build_http(),
    })
}

/// One exchange: the status and body (any status), or why there was none (connection
/// refused, no answer within `timeout`, ...).
pub fn request(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
    timeout: Duration,
) -> Result<(u16, String), String> {
    exchange(method, url, headers, body, timeout).map(|(status, _, body)| (status, body))
}

/// A response: status, headers (names in lower case), body.
pub type Exchanged = (u16, Vec<(String, String)>, String);

/// [`request`] that also returns the response headers.
pub fn exchange(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
    timeout: Duration,
) -> Result<Exchanged, String> {
    let mut builder = hyper::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder
        .body(Full::new(body.into()))
        .map_err(|e| format!("{url}: {e}"))?;
    let http = http();
    let client = http.client.clone();
    let exchange = async move {
        let response = client.request(request).await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, headers, String::from_utf8_lossy(&body).into_owned()))
    };
    // Spawned on the client's runtime and waited for here: this thread may be a test's
    // own runtime, which cannot block on another.
    let (tx, rx) = std::sync::mpsc::channel();
    http.runtime.spawn(async move {
        let result = tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {timeout:?}")));
        let _ = tx.send(result);
    });
    rx.recv()
        .map_err(|_| "the HTTP client's runtime stopped".to_owned())?
        .map_err(|e| format!("{url}: {e}"))
}

/// A GET with no extra headers: the status and body.
pub fn get(url: &str, timeout: Duration) -> Result<(u16, String), String> {
    request(Method::GET, url, &[], Bytes::new(), timeout)
}
