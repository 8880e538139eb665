//! An organization (issue 15) against in-memory clouds: the members the administrator
//! lists are reconciled as targets of their own, each with its exclusion tags before its
//! automation; a member that joins is picked up at the next round; a failed listing keeps
//! the members found before.

use std::sync::Arc;

use crate::support::driving::{Controller, FakeClouds};
use crate::support::{aws_error, Call, FakeCloud};
use gec_aws::ErrorKind;
use gec_engine::{Clock, Driver, Outcome, Round, Skip, TargetPass};
use gec_model::desired::{
    AdministratorSpec, AutoEnable, DesiredState, MemberSelection, OrganizationSpec,
};
use gec_model::testing::{self, cluster, cluster_arn, detector, observed};

const ADMIN: &str = "111111111111";
const REGION: &str = "us-east-1";

/// Automation on everywhere, `sandbox` excluded, from the administrator `ADMIN`.
fn desired(members: MemberSelection) -> DesiredState {
    let mut d = testing::desired(
        "version: 1\ntargets: [{region: us-east-1}]\n\
         detector: {runtimeMonitoring: enabled, ecsFargateAgentManagement: enabled}\n\
         clusters: [{name: sandbox, guardDutyManaged: false}]\n",
    );
    let org = OrganizationSpec {
        administrator: AdministratorSpec {
            account_id: ADMIN.to_owned(),
            role_arn: Some(format!("arn:aws:iam::{ADMIN}:role/gec-admin")),
            external_id: None,
            regions: vec![REGION.to_owned()],
        },
        auto_enable: AutoEnable::None,
        members,
        member_role_name: "gec-member".to_owned(),
        member_external_id: None,
    };
    d.targets = org.administrator_targets();
    d.organization = Some(org);
    d
}

/// An account with clusters `sandbox` and `payments`, Runtime Monitoring on and
/// automation off.
fn account(id: &str) -> Arc<FakeCloud> {
    Arc::new(FakeCloud::new(
        observed()
            .account(id)
            .clusters([cluster("sandbox"), cluster("payments")])
            .detector(detector().runtime("ENABLED").automation("DISABLED")),
    ))
}

struct Org {
    admin: Arc<FakeCloud>,
    members: Vec<(String, Arc<FakeCloud>)>,
}

impl Org {
    /// The administrator lists `members`; `others` are accounts (with clouds) that are
    /// not members yet.
    fn new(members: &[&str], others: &[&str]) -> Org {
        let admin = account(ADMIN);
        admin.set_members(Ok(members.to_vec()));
        Org {
            admin,
            members: members
                .iter()
                .chain(others)
                .map(|m| ((*m).to_owned(), account(m)))
                .collect(),
        }
    }

    fn clouds(&self) -> FakeClouds {
        let mut all = vec![(format!("{ADMIN}/{REGION}"), Arc::clone(&self.admin))];
        all.extend(
            self.members
                .iter()
                .map(|(id, c)| (format!("{id}/{REGION}"), Arc::clone(c))),
        );
        FakeClouds::by_region(all.iter().map(|(l, c)| (l.as_str(), Arc::clone(c))))
    }

    fn member(&self, id: &str) -> &Arc<FakeCloud> {
        &self
            .members
            .iter()
            .find(|(m, _)| m == id)
            .expect("member")
            .1
    }
}

/// The engine's loop over the organization's clouds, kept across rounds as in the daemon.
fn driver(org: &Org) -> Driver<FakeClouds> {
    let c = Controller::new(Clock::tokio_at(0));
    Driver::new(org.clouds(), c.ctx.clone(), c.settings.clone())
}

async fn round(driver: &mut Driver<FakeClouds>, d: &DesiredState) -> Vec<TargetPass> {
    let round = Round {
        desired: Arc::new(d.clone()),
        generation: 1,
        every_target: true,
    };
    driver.round(&round).await.passes
}

fn labels(passes: &[TargetPass]) -> Vec<String> {
    passes.iter().map(|p| p.target.label()).collect()
}

#[tokio::test(start_paused = true)]
async fn each_member_is_a_target_whose_exclusion_tags_come_before_its_automation() {
    let org = Org::new(&["222222222222", "333333333333"], &[]);
    // 333's exclusion tag cannot be written.
    let sandbox_333 = cluster_arn(REGION, "333333333333", "sandbox");
    org.member("333333333333").fail_arn(
        &sandbox_333,
        aws_error(ErrorKind::AccessDenied, "TagResources"),
    );
    let passes = round(&mut driver(&org), &desired(MemberSelection::All)).await;
    assert_eq!(
        labels(&passes),
        [
            "111111111111/us-east-1",
            "222222222222/us-east-1",
            "333333333333/us-east-1"
        ],
        "the administrator, then each member found by ListMembers"
    );
    assert_eq!(org.admin.calls()[0], Call::ListMembers);
    let ops = |id: &str| org.member(id).write_operations();
    assert_eq!(
        ops("222222222222"),
        ["tag_clusters", "update_detector"],
        "the exclusion tag first, then automation (through the administrator, in the adapter)"
    );
    assert_eq!(
        ops("333333333333"),
        ["tag_clusters"],
        "no automation for a member whose exclusion tag failed"
    );
    let p333 = &passes[2];
    assert!(p333
        .results
        .iter()
        .any(|r| r.outcome == Outcome::Skipped(Skip::AfterFailure)));
    assert_eq!(
        org.member("333333333333").automation_status().as_deref(),
        Some("DISABLED")
    );
    assert_eq!(
        org.member("222222222222").automation_status().as_deref(),
        Some("ENABLED")
    );
}

#[tokio::test(start_paused = true)]
async fn a_member_that_joins_is_reconciled_at_the_next_round_and_one_not_selected_never() {
    let org = Org::new(&["222222222222", "999999999999"], &["444444444444"]);
    let mut driver = driver(&org);
    let d = desired(MemberSelection::Accounts(vec![
        "222222222222".into(),
        "444444444444".into(),
    ]));
    let passes = round(&mut driver, &d).await;
    assert_eq!(
        labels(&passes),
        ["111111111111/us-east-1", "222222222222/us-east-1"],
        "999999999999 is a member the file does not select"
    );
    assert!(org.member("999999999999").writes().is_empty());
    // 444 joins: no new desired state, the next round finds it.
    org.admin
        .set_members(Ok(vec!["222222222222", "999999999999", "444444444444"]));
    let passes = round(&mut driver, &d).await;
    assert_eq!(
        labels(&passes),
        [
            "111111111111/us-east-1",
            "222222222222/us-east-1",
            "444444444444/us-east-1"
        ]
    );
    assert_eq!(
        org.member("444444444444").write_operations(),
        ["tag_clusters", "update_detector"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_member_listing_keeps_the_members_found_before_and_says_so() {
    let org = Org::new(&["222222222222"], &[]);
    let mut driver = driver(&org);
    let d = desired(MemberSelection::All);
    round(&mut driver, &d).await;
    org.admin
        .set_members(Err(aws_error(ErrorKind::Throttled, "ListMembers")));
    let passes = round(&mut driver, &d).await;
    assert_eq!(
        labels(&passes),
        ["111111111111/us-east-1", "222222222222/us-east-1"]
    );
    let warnings = &passes[0].plan.as_ref().expect("a plan").warnings;
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("could not list the organization's members")),
        "{warnings:?}"
    );
    assert_eq!(
        passes[0].error.as_ref().map(|e| e.kind),
        Some(ErrorKind::Throttled),
        "the administrator's pass fails: members may go unmanaged"
    );
}

#[tokio::test(start_paused = true)]
async fn without_any_member_list_the_administrators_pass_fails_and_no_member_is_reconciled() {
    let org = Org::new(&["222222222222"], &[]);
    org.admin
        .set_members(Err(aws_error(ErrorKind::AccessDenied, "ListMembers")));
    let passes = round(&mut driver(&org), &desired(MemberSelection::All)).await;
    assert_eq!(labels(&passes), ["111111111111/us-east-1"]);
    assert_eq!(
        passes[0].error.as_ref().map(|e| e.kind),
        Some(ErrorKind::AccessDenied)
    );
}

#[tokio::test(start_paused = true)]
async fn an_edit_of_the_file_applies_to_the_members_already_listed() {
    let org = Org::new(&["222222222222", "333333333333"], &[]);
    let mut driver = driver(&org);
    round(&mut driver, &desired(MemberSelection::All)).await;
    // The listing fails from now on; the file drops 333 and renames the member role.
    org.admin
        .set_members(Err(aws_error(ErrorKind::Throttled, "ListMembers")));
    let mut d = desired(MemberSelection::Accounts(vec!["222222222222".into()]));
    if let Some(o) = d.organization.as_mut() {
        o.member_role_name = "gec-member-v2".into();
    }
    let passes = round(&mut driver, &d).await;
    assert_eq!(
        labels(&passes),
        ["111111111111/us-east-1", "222222222222/us-east-1"],
        "333 is no longer selected, even from the list kept"
    );
    assert_eq!(
        passes[1].target.role_arn.as_deref(),
        Some("arn:aws:iam::222222222222:role/gec-member-v2"),
        "the member role of the file in force"
    );
}

#[tokio::test(start_paused = true)]
async fn turning_auto_enable_off_does_not_wait_for_the_administrators_failed_tags() {
    let org = Org::new(&[], &[]);
    // GuardDuty auto-enables agent management for joining accounts; the file has
    // exclusion rules (autoEnable: none), and the administrator's own exclusion tag fails.
    let sandbox = cluster_arn(REGION, ADMIN, "sandbox");
    org.admin
        .fail_arn(&sandbox, aws_error(ErrorKind::AccessDenied, "TagResources"));
    org.admin.set_organization(&[
        ("RUNTIME_MONITORING", "NONE"),
        ("ECS_FARGATE_AGENT_MANAGEMENT", "NEW"),
    ]);
    let passes = round(&mut driver(&org), &desired(MemberSelection::All)).await;
    assert!(org.admin.calls().contains(&Call::UpdateOrganization(vec![(
        "ECS_FARGATE_AGENT_MANAGEMENT".into(),
        "NONE".into()
    )])));
    assert_eq!(
        org.admin.automation_status().as_deref(),
        Some("DISABLED"),
        "the administrator's own automation waits for its tags"
    );
    assert!(passes[0]
        .results
        .iter()
        .any(|r| r.outcome == Outcome::Skipped(Skip::AfterFailure)));
}

/// Tug-of-war in a member account: someone there removes `sandbox`'s exclusion tag after
/// every round. The third revert makes it a conflict of that member's target only; the
/// member is no longer written, the others are as before.
#[tokio::test(start_paused = true)]
async fn a_member_s_exclusion_tag_changed_back_every_round_is_a_conflict_of_that_member() {
    let org = Org::new(&["222222222222", "333333333333"], &[]);
    let c = Controller::new(Clock::tokio_at(0));
    let mut settings = c.settings.clone();
    // Each removed exclusion is coverage the next round takes away again: past the
    // coverage-loss limit, which would refuse the repair.
    settings.plan.allow_mass_change = true;
    let mut driver = Driver::new(org.clouds(), c.ctx.clone(), settings);
    let d = desired(MemberSelection::All);
    let member = org.member("222222222222");
    let tag_writes = |cloud: &FakeCloud| {
        cloud
            .writes()
            .iter()
            .filter(|w| matches!(w, Call::TagClusters { .. }))
            .count()
    };
    for _ in 0..3 {
        round(&mut driver, &d).await;
        assert_eq!(member.tag_of("sandbox").as_deref(), Some("false"));
        member.other_writer_tags("sandbox", None);
    }
    let passes = round(&mut driver, &d).await;
    let conflicts: Vec<(String, Vec<String>)> = passes
        .iter()
        .map(|p| {
            let found = p.plan.iter().flat_map(|pl| &pl.conflicts);
            (
                p.target.label(),
                found.map(|c| c.resource.clone()).collect(),
            )
        })
        .collect();
    assert_eq!(
        conflicts,
        [
            ("111111111111/us-east-1".to_owned(), vec![]),
            (
                "222222222222/us-east-1".to_owned(),
                vec![cluster_arn(REGION, "222222222222", "sandbox")]
            ),
            ("333333333333/us-east-1".to_owned(), vec![]),
        ]
    );
    let found = &passes[1].plan.as_ref().unwrap().conflicts[0];
    assert_eq!(found.target.account.as_deref(), Some("222222222222"));
    assert_eq!(
        c.ctx.conflicts.current()[0].0,
        "222222222222/us-east-1",
        "remembered under the member's target"
    );
    round(&mut driver, &d).await;
    assert_eq!(tag_writes(member), 3, "not written again");
    assert_eq!(member.tag_of("sandbox"), None);
    assert_eq!(
        tag_writes(org.member("333333333333")),
        1,
        "the other member: once"
    );
}
