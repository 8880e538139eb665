//! The pure domain model of guardduty-ecs-controller: desired state, observed state and
//! the planner. No AWS SDK and no async runtime: this crate's `Cargo.toml` is the proof.
#![deny(missing_docs)]

pub mod desired;
pub mod observed;
pub mod plan;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use desired::DesiredState;
pub use observed::{ObservedTarget, MANAGED_TAG_KEY};
pub use plan::{plan_target, Action, Plan, PlanOptions, TargetPlan};
