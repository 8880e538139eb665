//! `POST /reconcile`: ask for a pass now, without a signal (a distroless Fargate task
//! cannot be sent SIGHUP). The pass converges on the desired state already in force: the
//! request carries nothing else. It does what SIGHUP does (every target, also those in
//! backoff), rate-limited:
//! - a request while an asked-for pass has not started yet joins it (`202`, `queued:
//!   false`): a burst of requests starts one pass;
//! - otherwise at most one accepted request per `--reconcile-min-interval` (`429` with
//!   `Retry-After` in between), so a client in a loop cannot keep the controller busy or
//!   make it hammer AWS.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use prometheus::IntCounterVec;
use schemars::JsonSchema;
use serde::Serialize;
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;
use tracing::info;

use crate::http::Shared;
use crate::runloop::Trigger;
use crate::status::unix_secs;

/// The most bytes a request's body may hold; it must be empty (or white space).
pub const MAX_BODY_BYTES: usize = 1024;
/// Default of `--reconcile-min-interval`.
pub const DEFAULT_MIN_INTERVAL: Duration = Duration::from_secs(10);

/// What became of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A pass was asked for.
    Queued,
    /// An asked-for pass has not started yet: this request joins it.
    Joined,
    /// Too soon after the last accepted request.
    Limited {
        /// When the next request would be accepted.
        retry_after: Duration,
    },
}

impl Decision {
    /// The `result` label of `reconcile_requests_total`.
    pub fn label(self) -> &'static str {
        match self {
            Decision::Queued => "queued",
            Decision::Joined => "joined",
            Decision::Limited { .. } => "limited",
        }
    }
}

/// The rate limiter's memory.
#[derive(Debug, Default)]
struct Gate {
    /// When the last request was accepted (monotonic).
    last_accepted: Option<Instant>,
    /// An accepted request whose pass has not started yet.
    pending: bool,
    /// What `/status` shows.
    shown: RequestsJson,
}

impl Gate {
    fn decide(&mut self, now: Instant, min_interval: Duration) -> Decision {
        if self.pending {
            return Decision::Joined;
        }
        if let Some(last) = self.last_accepted {
            let next = last + min_interval;
            if now < next {
                return Decision::Limited {
                    retry_after: next - now,
                };
            }
        }
        self.pending = true;
        self.last_accepted = Some(now);
        Decision::Queued
    }
}

/// The requests for a pass now: the way to the run loop and the rate limiter.
#[derive(Debug)]
pub struct Requests {
    wake: UnboundedSender<Trigger>,
    min_interval: Duration,
    gate: Mutex<Gate>,
    counter: IntCounterVec,
}

/// The last requests, in `/status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestsJson {
    /// When the last request was accepted (`POST /reconcile`), in seconds since the Unix
    /// epoch, or null.
    pub last_accepted_at: Option<f64>,
    /// When the pass it asked for started, in seconds since the Unix epoch; null while it
    /// waits (for the pass that runs now to end) or when none was asked for.
    pub last_started_at: Option<f64>,
    /// The pass of the last accepted request has not started yet.
    pub pending: bool,
    /// The least time between two accepted requests, in seconds.
    pub min_interval_seconds: u64,
}

/// The answer of `POST /reconcile`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileJson {
    /// A pass will start: at once, or when the pass that runs now ends.
    pub accepted: bool,
    /// This request asked for the pass (false: it joined one already asked for, or was
    /// refused).
    pub queued: bool,
    /// Seconds until a request would be accepted again (also the `Retry-After` header),
    /// when refused by the rate limit.
    pub retry_after_seconds: Option<u64>,
    /// Why the request was refused, or null.
    pub error: Option<String>,
}

impl Requests {
    /// Requests that wake the run loop through `wake`, at most one per `min_interval`,
    /// counted in `counter` (`reconcile_requests_total{result}`).
    pub fn new(
        wake: UnboundedSender<Trigger>,
        min_interval: Duration,
        counter: IntCounterVec,
    ) -> Self {
        let gate = Gate {
            shown: RequestsJson {
                min_interval_seconds: min_interval.as_secs(),
                ..RequestsJson::default()
            },
            ..Gate::default()
        };
        Requests {
            wake,
            min_interval,
            gate: Mutex::new(gate),
            counter,
        }
    }

    /// One request: asks the run loop for a pass unless the rate limit says no.
    pub fn request(&self) -> Decision {
        let Ok(mut gate) = self.gate.lock() else {
            return Decision::Limited {
                retry_after: self.min_interval,
            };
        };
        let decision = gate.decide(Instant::now(), self.min_interval);
        if decision == Decision::Queued {
            gate.shown.last_accepted_at = Some(unix_secs(SystemTime::now()));
            gate.shown.last_started_at = None;
            gate.shown.pending = true;
            // The loop is gone only while the daemon shuts down: nothing to start then.
            let _ = self.wake.send(Trigger::Request);
        }
        self.counter.with_label_values(&[decision.label()]).inc();
        decision
    }

    /// A round starts: it is the pass an accepted request waits for, if one does (any
    /// round converges on the desired state in force, which is all a request asks for).
    pub fn round_started(&self) {
        if let Ok(mut gate) = self.gate.lock() {
            if gate.pending {
                gate.pending = false;
                gate.shown.pending = false;
                gate.shown.last_started_at = Some(unix_secs(SystemTime::now()));
            }
        }
    }

    /// What `/status` shows.
    pub fn json(&self) -> RequestsJson {
        self.gate
            .lock()
            .map(|g| g.shown.clone())
            .unwrap_or_default()
    }
}

/// The counter of [`Requests`], every result at 0 from the start.
///
/// # Errors
/// Bad metric options (a bug).
pub fn requests_counter() -> prometheus::Result<IntCounterVec> {
    let counter = IntCounterVec::new(
        prometheus::Opts::new(
            format!("{}reconcile_requests_total", crate::metrics::PREFIX),
            "POST /reconcile requests by result: queued (asked for a pass), joined (one was already asked for), limited (429), refused (400/503)",
        ),
        &["result"],
    )?;
    for result in ["queued", "joined", "limited", "refused"] {
        counter.with_label_values(&[result]);
    }
    Ok(counter)
}

fn answer(code: StatusCode, json: ReconcileJson) -> Response {
    (code, Json(json)).into_response()
}

fn refused(shared: &Shared, code: StatusCode, error: &str) -> Response {
    shared
        .reconcile
        .counter
        .with_label_values(&["refused"])
        .inc();
    answer(
        code,
        ReconcileJson {
            accepted: false,
            queued: false,
            retry_after_seconds: None,
            error: Some(error.to_owned()),
        },
    )
}

/// `POST /reconcile` (behind the bearer token when one is set). `202` when a pass will
/// start, `429` (with `Retry-After`) when rate-limited, `400` with a body, `503` before
/// any desired state was loaded.
pub async fn reconcile(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    if !body.iter().all(u8::is_ascii_whitespace) {
        return refused(
            &shared,
            StatusCode::BAD_REQUEST,
            "POST /reconcile takes no body: the pass converges on the desired state in force",
        );
    }
    if shared.status().sha256.is_none() {
        return refused(
            &shared,
            StatusCode::SERVICE_UNAVAILABLE,
            "no valid desired state loaded yet: the controller retries by itself",
        );
    }
    let decision = shared.reconcile.request();
    info!(result = decision.label(), "POST /reconcile");
    match decision {
        Decision::Queued | Decision::Joined => answer(
            StatusCode::ACCEPTED,
            ReconcileJson {
                accepted: true,
                queued: decision == Decision::Queued,
                retry_after_seconds: None,
                error: None,
            },
        ),
        Decision::Limited { retry_after } => {
            // Whole seconds, rounded up: a client that waits this long is accepted.
            let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            let mut response = answer(
                StatusCode::TOO_MANY_REQUESTS,
                ReconcileJson {
                    accepted: false,
                    queued: false,
                    retry_after_seconds: Some(secs),
                    error: Some(format!(
                        "at most one pass is asked for per {}s; retry in {secs}s",
                        shared.reconcile.min_interval.as_secs()
                    )),
                },
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(10);

    #[test]
    fn a_burst_asks_for_one_pass_and_later_requests_wait_for_the_interval() {
        let mut gate = Gate::default();
        let t0 = Instant::now();
        assert_eq!(gate.decide(t0, MIN), Decision::Queued);
        for _ in 0..99 {
            assert_eq!(gate.decide(t0, MIN), Decision::Joined);
        }
        // The pass started: a request now is too soon...
        gate.pending = false;
        assert_eq!(
            gate.decide(t0 + Duration::from_secs(4), MIN),
            Decision::Limited {
                retry_after: Duration::from_secs(6)
            }
        );
        // ... and accepted once the interval is over.
        assert_eq!(gate.decide(t0 + MIN, MIN), Decision::Queued);
    }

    #[tokio::test]
    async fn a_queued_request_wakes_the_loop_once_and_its_round_start_is_shown() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let requests = Requests::new(tx, MIN, requests_counter().unwrap());
        assert_eq!(requests.request(), Decision::Queued);
        assert_eq!(requests.request(), Decision::Joined);
        assert_eq!(rx.try_recv().ok(), Some(Trigger::Request));
        assert!(rx.try_recv().is_err(), "one wake-up for the burst");
        let shown = requests.json();
        assert!(shown.pending && shown.last_accepted_at.is_some());
        assert_eq!(shown.last_started_at, None);
        requests.round_started();
        let shown = requests.json();
        assert!(!shown.pending && shown.last_started_at.is_some());
        assert!(matches!(requests.request(), Decision::Limited { .. }));
        let count = |r: &str| requests.counter.with_label_values(&[r]).get();
        assert_eq!(
            (count("queued"), count("joined"), count("limited")),
            (1, 1, 1)
        );
    }
}
