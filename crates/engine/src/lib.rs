//! The reconcile engine: one pass per target (observe → plan → apply), the apply
//! executor with its phase order and failure rules, over any [`TargetCloud`].
#![deny(missing_docs)]

pub mod apply;
pub mod backoff;
pub mod cloud;
pub mod conflict;
pub mod driver;
pub mod fence;
pub mod pass;
pub mod rollout;
pub mod wait;

pub use apply::{
    apply_plan, apply_plan_fenced, apply_plan_until, ActionResult, Outcome, Skip, StopSignal,
};
pub use cloud::{write_once, write_once_fenced, TargetCloud, WriteRetry};
pub use conflict::{Conflicts, Reset};
pub use driver::{Clouds, Context, Driver, Host, Report, Requeue, Round, Settings};
pub use fence::Fence;
pub use pass::{
    observe_scope, reconcile_fleet, reconcile_target, Mode, PassOptions, TargetPass,
    DEFAULT_MAX_CONCURRENT_TARGETS,
};
pub use rollout::{Clock, Decision, Rollouts, Settled, Wait};
pub use wait::{apply_until_settled, ApplyRun, Progress};
