//! The write fence of a leased replica (`run --lease-table`), on tokio's paused clock: a
//! fence that closes while a pass applies stops the next write (it is skipped as
//! `not_leader`, never sent), and a round that starts with the fence closed (a follower)
//! observes and plans but writes nothing.

use std::sync::Arc;
use std::time::Duration;

use crate::support::driving::Controller;
use crate::support::{covered_apps, FakeCloud};
use gec_engine::{Clock, Fence, Outcome, Skip};
use gec_model::desired::DesiredState;
use gec_model::testing::{self, cluster, detector, observed};
use tokio::time::Instant;

/// Friday 2026-11-27 00:00 UTC.
const FRIDAY: i64 = 1_795_737_600_000;

/// An exclusion tag, a managed tag and the detector to turn on: three writes in this
/// order (exclusions first, then the managed tags, then the detector).
fn desired() -> DesiredState {
    testing::desired(
        "version: 1\ntargets: [{region: us-east-1}]\n\
         detector: {runtimeMonitoring: enabled, ecsFargateAgentManagement: enabled}\n\
         clusters: [{name: apps, guardDutyManaged: true}, {name: batch, guardDutyManaged: false}]\n",
    )
}

fn cloud() -> Arc<FakeCloud> {
    Arc::new(FakeCloud::new(
        observed()
            .clusters([cluster("apps"), cluster("batch")])
            .detector(detector().runtime("DISABLED")),
    ))
}

#[tokio::test(start_paused = true)]
async fn a_fence_that_closes_mid_apply_stops_the_next_write() {
    let cloud = cloud();
    cloud.slow_writes(Duration::from_secs(1));
    let mut c = Controller::new(Clock::tokio_at(FRIDAY));
    c.ctx.fence = Fence::leased();
    // Open for 1.5 s: the first tag batch starts at once and takes 1 s, the second starts
    // at 1 s (still open) and ends at 2 s; the detector write would start at 2 s.
    c.ctx
        .fence
        .grant(Instant::now() + Duration::from_millis(1500));

    let pass = c.pass(&cloud, &desired()).await;

    assert_eq!(
        cloud.write_operations(),
        ["tag_clusters", "tag_clusters"],
        "the writes started while the fence was open, and nothing after"
    );
    let outcome = |kind: &str| -> Vec<Outcome> {
        pass.results
            .iter()
            .filter(|r| r.action.kind() == kind)
            .map(|r| r.outcome.clone())
            .collect()
    };
    assert_eq!(outcome("tag_cluster"), [Outcome::Success, Outcome::Success]);
    let detector = outcome("update_detector");
    assert!(!detector.is_empty());
    assert!(
        detector
            .iter()
            .all(|o| *o == Outcome::Skipped(Skip::NotLeader)),
        "{detector:?}"
    );
    assert_eq!(Skip::NotLeader.code(), "not_leader");
    assert_eq!(
        cloud.runtime_monitoring_status().as_deref(),
        Some("DISABLED")
    );
}

#[tokio::test(start_paused = true)]
async fn a_follower_round_observes_and_plans_and_writes_nothing() {
    let clock = Clock::tokio_at(FRIDAY);
    let cloud = covered_apps(clock, 2);
    // Two services without the agent: redeploys to start.
    let mut c = Controller::new(clock);
    c.ctx.fence = Fence::leased();
    let desired = testing::desired(
        "version: 1\ntargets: [{region: us-east-1}]\n\
         detector: {runtimeMonitoring: enabled, ecsFargateAgentManagement: enabled}\n\
         clusters: [{name: apps, guardDutyManaged: true}]\n\
         redeploy: {settleTime: 0s}\n",
    );
    let pass = c.pass(&cloud, &desired).await;
    assert!(pass.error.is_none(), "{:?}", pass.error);
    assert!(
        pass.plan.as_ref().is_some_and(|p| !p.actions.is_empty()),
        "the follower planned: {:?}",
        pass.plan
    );
    assert!(
        pass.results.is_empty(),
        "nothing applied: {:?}",
        pass.results
    );
    assert_eq!(cloud.write_operations(), Vec::<&str>::new());

    // Granted, the same controller writes.
    c.ctx.fence.grant(Instant::now() + Duration::from_secs(60));
    c.pass(&cloud, &desired).await;
    assert!(!cloud.write_operations().is_empty());
}
