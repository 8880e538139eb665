//! The HTTP endpoints: `/metrics`, `/healthz`, `/readyz`, `/status`,
//! `POST /conflicts/reset`, `POST /reconcile`, and the bearer token that guards the last
//! three.

use std::path::Path;
use std::sync::{Arc, RwLock};

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use sha2::{Digest, Sha256};

use crate::metrics::Metrics;
use crate::read::{read_bounded, ReadError};
use crate::status::Status;

/// What the handlers read.
#[derive(Debug)]
pub struct Shared {
    /// Metrics.
    pub metrics: Metrics,
    /// Last known status.
    pub status: RwLock<Status>,
    /// When set, `/status` (and any future write endpoint) needs this bearer token.
    pub token: Option<BearerToken>,
    /// Tug-of-war detection's memory, shared with the engine (`POST /conflicts/reset`).
    pub conflicts: gec_engine::Conflicts,
    /// `POST /reconcile`: the way to the run loop and its rate limit.
    pub reconcile: crate::reconcile::Requests,
}

impl Shared {
    /// A copy of the status (the lock is held only to clone).
    pub fn status(&self) -> Status {
        self.status.read().map(|s| s.clone()).unwrap_or_default()
    }

    /// The `/status` body.
    pub fn status_json(&self) -> crate::status::StatusJson {
        let mut json = self.status().json();
        json.reconcile_requests = self.reconcile.json();
        json
    }
}

/// The router. `/metrics`, `/healthz` and `/readyz` are open (Prometheus and the health
/// checks carry no credentials); `/status` needs the bearer token when one is set.
pub fn router(shared: Arc<Shared>) -> Router {
    let guarded = Router::new()
        .route("/status", get(status))
        .route(
            "/conflicts/reset",
            // Refused with 413 before the body is read whole.
            post(crate::conflicts::reset).layer(DefaultBodyLimit::max(
                crate::conflicts::MAX_RESET_BODY_BYTES,
            )),
        )
        .route(
            "/reconcile",
            post(crate::reconcile::reconcile)
                .layer(DefaultBodyLimit::max(crate::reconcile::MAX_BODY_BYTES)),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            require_token,
        ));
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .merge(guarded)
        .with_state(shared)
}

async fn require_token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = &shared.token else {
        return next.run(request).await;
    };
    let offered = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if offered.is_some_and(|offered| token.matches(offered)) {
        return next.run(request).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "a bearer token is required\n",
    )
        .into_response()
}

/// The most bytes a token file may hold.
pub const MAX_TOKEN_FILE_BYTES: usize = 4096;

/// Why the status token could not be set up (a startup error).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token file could not be read, is not a regular file, or is too large.
    #[error("cannot use the status token file {path}")]
    File {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: ReadError,
    },
    /// The token file is not UTF-8.
    #[error("the status token file {path} is not UTF-8 text")]
    NotText {
        /// The file.
        path: String,
    },
    /// The token (from the file or the environment) is empty.
    #[error("the status token from {from} is empty")]
    Empty {
        /// Where it came from.
        from: String,
    },
    /// Both a token file and a token in the environment were given.
    #[error("set either the status token file or GEC_STATUS_TOKEN, not both")]
    Both,
}

/// A bearer token. Only its SHA-256 is kept, and `Debug` shows nothing of it.
#[derive(Clone)]
pub struct BearerToken {
    digest: [u8; 32],
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(..)")
    }
}

impl BearerToken {
    /// The token of `run`: from `file` (surrounding white space, such as the final
    /// newline, is not part of it) or from `env` (the value of `GEC_STATUS_TOKEN`), or
    /// none.
    ///
    /// # Errors
    /// Both are given; the file is unreadable, not a regular file, larger than
    /// [`MAX_TOKEN_FILE_BYTES`] or not UTF-8; the token is empty.
    pub fn from_settings(
        file: Option<&Path>,
        env: Option<String>,
    ) -> Result<Option<BearerToken>, TokenError> {
        match (file, env) {
            (Some(_), Some(_)) => Err(TokenError::Both),
            (None, None) => Ok(None),
            (None, Some(text)) => BearerToken::new(&text, "GEC_STATUS_TOKEN").map(Some),
            (Some(path), None) => {
                let name = path.display().to_string();
                let bytes = read_bounded(path, MAX_TOKEN_FILE_BYTES).map_err(|source| {
                    TokenError::File {
                        path: name.clone(),
                        source,
                    }
                })?;
                let text = String::from_utf8(bytes)
                    .map_err(|_| TokenError::NotText { path: name.clone() })?;
                BearerToken::new(text.trim(), &name).map(Some)
            }
        }
    }

    fn new(token: &str, from: &str) -> Result<BearerToken, TokenError> {
        if token.is_empty() {
            return Err(TokenError::Empty {
                from: from.to_owned(),
            });
        }
        Ok(BearerToken {
            digest: Sha256::digest(token.as_bytes()).into(),
        })
    }

    /// Whether `offered` is the token. Compares digests of equal length over every byte,
    /// so the time taken says nothing about how much of the token was right.
    pub fn matches(&self, offered: &str) -> bool {
        let offered: [u8; 32] = Sha256::digest(offered.as_bytes()).into();
        self.digest
            .iter()
            .zip(offered.iter())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        shared.metrics.render(),
    )
}

async fn readyz(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let status = shared.status();
    let code = if status.ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(status.readiness()))
}

async fn status(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    Json(shared.status_json())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_matches_itself_only() {
        let token = BearerToken::new("s3cret-token", "test").unwrap();
        assert!(token.matches("s3cret-token"));
        for wrong in ["", "s3cret-toke", "s3cret-token ", "S3CRET-TOKEN", "x"] {
            assert!(!token.matches(wrong), "{wrong:?}");
        }
        assert_eq!(format!("{token:?}"), "BearerToken(..)");
    }

    #[test]
    fn token_files_that_are_empty_too_large_or_missing_are_startup_errors() {
        let dir = std::env::temp_dir().join(format!("gec-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, "abc123\n").unwrap();
        let token = BearerToken::from_settings(Some(&file), None)
            .unwrap()
            .unwrap();
        assert!(
            token.matches("abc123"),
            "the final newline is not part of it"
        );

        std::fs::write(&file, " \n").unwrap();
        assert!(matches!(
            BearerToken::from_settings(Some(&file), None),
            Err(TokenError::Empty { .. })
        ));
        std::fs::write(&file, "a".repeat(MAX_TOKEN_FILE_BYTES + 1)).unwrap();
        assert!(matches!(
            BearerToken::from_settings(Some(&file), None),
            Err(TokenError::File {
                source: ReadError::TooLarge { .. },
                ..
            })
        ));
        assert!(matches!(
            BearerToken::from_settings(Some(&dir.join("missing")), None),
            Err(TokenError::File { .. })
        ));
        assert!(matches!(
            BearerToken::from_settings(Some(&file), Some("x".into())),
            Err(TokenError::Both)
        ));
        assert!(matches!(
            BearerToken::from_settings(None, Some(String::new())),
            Err(TokenError::Empty { .. })
        ));
        assert!(BearerToken::from_settings(None, None).unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
