//! Builders of synthetic passes for the unit tests; the model's types come from
//! `gec_model::testing`.

use gec_engine::{ActionResult, Outcome, TargetPass};
use gec_model::{Action, TargetPlan};

// runloop.rs's tests take the model's fixtures from here.
pub use gec_model::testing::{redeploy, tag, target};

/// The pass of the target in `region`: this plan, and these outcomes of its actions.
pub fn pass(region: &str, plan: TargetPlan, results: Vec<(Action, Outcome)>) -> TargetPass {
    TargetPass {
        target: target(region),
        plan: Some(plan),
        results: results
            .into_iter()
            .map(|(action, outcome)| ActionResult { action, outcome })
            .collect(),
        error: None,
        suspended: false,
        after: None,
        events: Vec::new(),
    }
}
