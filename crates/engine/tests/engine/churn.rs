//! The rollout gate's memory under churn: targets that leave the desired state leave
//! nothing behind (their rolling and recent deployments, watched rollouts, the coverage
//! memory of their clusters), and a watched rollout of a departed target stops holding a
//! `maxConcurrent` slot.

use gec_engine::{Decision, Rollouts};
use gec_model::desired::{RedeploySpec, Target};
use gec_model::testing::{self, cluster, detector, redeploy, target};
use gec_model::{Action, ObservedTarget};

const NOW: i64 = 1_795_737_600_000;
const REGION: &str = "us-east-1";

fn account(i: u32) -> String {
    format!("{:012}", 100_000_000_000 + u64::from(i))
}

fn desired_target(i: u32) -> Target {
    target(REGION).role(&format!("arn:aws:iam::{}:role/gec", account(i)))
}

/// Account `i`'s covered cluster `apps`, as observed.
fn observed(i: u32) -> ObservedTarget {
    testing::observed_in(REGION)
        .account(&account(i))
        .with(cluster("apps").tagged("true"))
        .detector(detector().runtime("ENABLED").automation("ENABLED"))
}

fn redeploy_api(i: u32) -> Action {
    redeploy(REGION, "apps", "api")
        .in_account(&account(i))
        .reason("2 of 2 running tasks lack the GuardDuty agent")
        .not_before(NOW)
}

/// What one pass teaches the gate about account `i`; starts its redeploy when it may.
fn pass(rollouts: &Rollouts, i: u32, spec: &RedeploySpec) -> Decision {
    let label = desired_target(i).label();
    let mut seen = observed(i);
    rollouts.annotate(&mut seen, NOW);
    rollouts.observe(&label, &seen, spec, NOW);
    rollouts.schedule(&label, &[&redeploy_api(i)], spec, NOW)[0].1
}

#[test]
fn targets_that_left_the_desired_state_leave_no_memory_in_the_rollout_gate() {
    let spec = RedeploySpec {
        max_concurrent: 200,
        max_per_hour: 1_000,
        ..RedeploySpec::default()
    };
    let rollouts = Rollouts::default();
    let first: Vec<Target> = (0..150).map(desired_target).collect();
    for i in 0..150 {
        assert_eq!(pass(&rollouts, i, &spec), Decision::Start);
    }
    assert_eq!(rollouts.remembered(), (150, 150));
    assert_eq!(rollouts.in_progress(), 150);

    // 150 other accounts replace them; account 0 stays.
    let mut second: Vec<Target> = (150..300).map(desired_target).collect();
    second.push(first[0].clone());
    rollouts.retain(&second);
    assert_eq!(
        rollouts.remembered(),
        (1, 1),
        "only account 0 is remembered"
    );
    assert_eq!(
        rollouts.in_progress(),
        1,
        "watches of departed targets no longer hold maxConcurrent slots"
    );
    for i in 150..300 {
        pass(&rollouts, i, &spec);
    }
    assert_eq!(rollouts.remembered(), (151, 151));
    rollouts.retain(&[]);
    assert_eq!(rollouts.remembered(), (0, 0));
}

#[test]
fn a_target_on_its_own_credentials_keeps_the_clusters_of_its_region() {
    let spec = RedeploySpec::default();
    let rollouts = Rollouts::default();
    pass(&rollouts, 1, &spec);
    let own = target(REGION);
    rollouts.retain(&[own]);
    assert_eq!(
        rollouts.remembered().1,
        1,
        "the controller's own account is not known from the target: any account of the region"
    );
    let elsewhere = target("eu-west-1");
    rollouts.retain(&[elsewhere]);
    assert_eq!(rollouts.remembered().1, 0);
}
