//! `POST /conflicts/reset`: ends the conflicts tug-of-war detection found (DESIGN §9), so
//! the controller writes those resources again at the next pass.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use gec_engine::{Clock, Reset};
use gec_model::plan::{rfc3339, Conflict, ConflictJson};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tracing::info;

use crate::http::Shared;

/// The most bytes a reset request's body may hold (`{"resource": "<cluster ARN>"}`).
pub const MAX_RESET_BODY_BYTES: usize = 4096;

/// The body of `POST /conflicts/reset`: empty (every conflict) or one resource.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetRequest {
    /// A cluster ARN or `<detector id>/<feature>`, as `/status` shows it.
    resource: Option<String>,
}

/// The answer of `POST /conflicts/reset`, and the last reset in `/status`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResetJson {
    /// RFC 3339 UTC: when.
    pub reset_at: String,
    /// The conflicts it ended: the controller writes these again at the next pass.
    pub reset: Vec<ConflictJson>,
    /// Why nothing was reset, when a named resource was not in conflict or the body was
    /// not understood; null otherwise.
    pub error: Option<String>,
}

impl ResetJson {
    /// The JSON of a reset.
    pub fn of(reset: &Reset) -> Self {
        ResetJson {
            reset_at: rfc3339(reset.at_ms),
            reset: reset.ended.iter().map(Conflict::json).collect(),
            error: None,
        }
    }
}

fn refused(code: StatusCode, error: String) -> Response {
    (
        code,
        Json(ResetJson {
            reset_at: rfc3339(Clock::System.now_ms()),
            reset: Vec::new(),
            error: Some(error),
        }),
    )
        .into_response()
}

/// `POST /conflicts/reset` (behind the bearer token when one is set). An empty body
/// resets every conflict; `{"resource": "..."}` one (404 when it is not in conflict). The
/// `/status` conflict list and `guardduty_controller_conflicts` change at once; the
/// controller writes the resources again at its next pass.
pub async fn reset(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    if body.len() > MAX_RESET_BODY_BYTES {
        return refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than {MAX_RESET_BODY_BYTES} bytes"),
        );
    }
    let request = if body.iter().all(u8::is_ascii_whitespace) {
        ResetRequest::default()
    } else {
        match serde_json::from_slice::<ResetRequest>(&body) {
            Ok(r) => r,
            Err(e) => {
                return refused(
                    StatusCode::BAD_REQUEST,
                    format!("the body must be empty or {{\"resource\": \"...\"}}: {e}"),
                )
            }
        }
    };
    let resource = request.resource.as_deref();
    let done = shared.conflicts.reset(resource, Clock::System.now_ms());
    info!(
        resource = resource.unwrap_or("*"),
        ended = done.ended.len(),
        "conflicts reset"
    );
    shared.publish_conflicts();
    match resource {
        Some(r) if done.ended.is_empty() => {
            refused(StatusCode::NOT_FOUND, format!("{r} is not in conflict"))
        }
        _ => (StatusCode::OK, Json(ResetJson::of(&done))).into_response(),
    }
}

impl Shared {
    /// Copies the conflicts that stand and the last reset into `/status` and
    /// `guardduty_controller_conflicts` (for every target of the last pass).
    pub fn publish_conflicts(&self) {
        let current = self.conflicts.current();
        let last_reset = self.conflicts.last_reset();
        let targets: Vec<String> = match self.status.write() {
            Ok(mut status) => {
                status.conflicts = current.iter().map(|(_, c)| c.clone()).collect();
                status.conflicts_reset = last_reset;
                status.passes.iter().map(|p| p.target.label()).collect()
            }
            Err(_) => Vec::new(),
        };
        self.metrics.conflicts(&targets, &current);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::RwLock;

    use gec_engine::{ActionResult, Outcome};
    use gec_model::desired::ConflictSpec;
    use gec_model::testing::tag;
    use gec_model::TargetPlan;
    use serde_json::{json, Value};

    use super::*;
    use crate::metrics::Metrics;
    use crate::status::Status;
    use crate::testing::pass;

    const EAST: &str = "us-east-1";
    const GAUGE: &str = r#"guardduty_controller_conflicts{kind="tag",target="us-east-1"}"#;

    /// A daemon whose engine found `apps`' tag changed back once, with `reverts: 1`.
    fn in_conflict() -> Arc<Shared> {
        let metrics = Metrics::new().unwrap();
        let reconcile = crate::reconcile::Requests::new(
            tokio::sync::mpsc::unbounded_channel().0,
            crate::reconcile::DEFAULT_MIN_INTERVAL,
            metrics.reconcile_requests_total.clone(),
        );
        let shared = Arc::new(Shared {
            metrics,
            reconcile,
            status: RwLock::new(Status {
                passes: vec![pass(EAST, TargetPlan::default(), vec![])],
                ..Status::default()
            }),
            token: None,
            conflicts: gec_engine::Conflicts::default(),
        });
        let written = ActionResult {
            action: tag(EAST, "apps"),
            outcome: Outcome::Success,
        };
        shared.conflicts.written(EAST, &[written], 1_000);
        let mut plan = TargetPlan {
            actions: vec![tag(EAST, "apps")],
            ..TargetPlan::default()
        };
        let spec = ConflictSpec {
            reverts: 1,
            ..ConflictSpec::default()
        };
        shared.conflicts.judge(EAST, &mut plan, &spec, 2_000);
        assert_eq!(plan.conflicts.len(), 1, "{plan:?}");
        shared.publish_conflicts();
        shared
    }

    async fn post(shared: &Arc<Shared>, body: &str) -> (StatusCode, Value) {
        let response = reset(State(Arc::clone(shared)), Bytes::from(body.to_owned())).await;
        let code = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (code, serde_json::from_slice(&bytes).unwrap())
    }

    fn gauge(shared: &Shared) -> String {
        shared
            .metrics
            .render()
            .lines()
            .find(|l| l.starts_with(GAUGE))
            .unwrap_or_default()
            .to_owned()
    }

    #[tokio::test]
    async fn a_reset_ends_the_conflicts_and_status_and_the_metric_say_so_at_once() {
        let shared = in_conflict();
        let status = shared.status().to_json();
        assert_eq!(status["conflicts"][0]["kind"], "tag");
        assert_eq!(status["conflicts"][0]["cluster"], "apps");
        assert_eq!(status["conflicts"][0]["reverts"], 1);
        assert_eq!(status["conflictsReset"], Value::Null);
        assert_eq!(gauge(&shared), format!("{GAUGE} 1"));
        let arn = status["conflicts"][0]["resource"]
            .as_str()
            .unwrap()
            .to_owned();

        let (code, body) = post(
            &shared,
            r#"{"resource": "arn:aws:ecs:us-east-1:1:cluster/x"}"#,
        )
        .await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(body["reset"], json!([]));
        let (code, body) = post(&shared, r#"{"cluster": "apps"}"#).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
        let (code, _) = post(&shared, &"x".repeat(MAX_RESET_BODY_BYTES + 1)).await;
        assert_eq!(code, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(gauge(&shared), format!("{GAUGE} 1"), "nothing reset yet");

        let (code, body) = post(&shared, &format!(r#"{{"resource": "{arn}"}}"#)).await;
        assert_eq!(code, StatusCode::OK, "{body}");
        assert_eq!(body["reset"][0]["resource"], arn.as_str());
        assert_eq!(body["error"], Value::Null);
        let status = shared.status().to_json();
        assert_eq!(status["conflicts"], json!([]));
        assert_eq!(status["conflictsReset"]["reset"][0]["cluster"], "apps");
        assert_eq!(gauge(&shared), format!("{GAUGE} 0"));
    }

    #[tokio::test]
    async fn an_empty_body_resets_every_conflict() {
        let shared = in_conflict();
        let (code, body) = post(&shared, "").await;
        assert_eq!(code, StatusCode::OK, "{body}");
        assert_eq!(body["reset"].as_array().map(Vec::len), Some(1));
        let (code, body) = post(&shared, " \n").await;
        assert_eq!(code, StatusCode::OK, "nothing left: an empty list");
        assert_eq!(body["reset"], json!([]));
    }
}
