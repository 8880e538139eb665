//! Tug-of-war detection (DESIGN §9): a value the controller wrote that another writer keeps
//! changing back is a `conflict`, reported and no longer written.
//!
//! The memory holds, per (target, kind, resource), the value the controller last wrote
//! and whether that write has been seen reverted yet. A pass that plans the *same* change
//! again (same value, so the desired state did not change) after a successful write is a
//! revert by someone else; `reconcile.conflicts.reverts` reverts within `window` make the
//! resource a conflict: its action leaves the plan's `actions` for `conflicts`. A conflict
//! ends when the desired value changes, when the resource needs no change any more (AWS
//! holds the desired value again, or no rule manages it), when detection is turned off,
//! or by [`Conflicts::reset`]. Like the rollout gate it keeps no file: a restart forgets
//! every conflict (the fight then has to be seen again).

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use gec_model::desired::{AutoEnable, ConflictSpec, Target};
use gec_model::observed::FeatureStatus;
use gec_model::plan::{Conflict, ConflictKind, TargetPlan};
use gec_model::Action;
use tracing::warn;

use crate::apply::{ActionResult, Outcome};

/// The most resources remembered: beyond it the oldest written ones not in conflict are
/// forgotten (they only lose their revert history).
pub const MAX_RECORDS: usize = 100_000;

/// What a record is keyed by: the target's label, the kind and the resource.
type Key = (String, ConflictKind, String);

#[derive(Debug, Clone)]
struct Record {
    /// The value written (`true`, `false`, `absent`, `ENABLED`, `ALL`, ...).
    value: String,
    /// When it was last written (Unix ms).
    written_ms: i64,
    /// Written and not yet seen changed back: the next plan of the same change is a
    /// revert. A failed write does not arm it, so a retry is never counted.
    armed: bool,
    /// When reverts were seen, oldest first, within the window.
    reverts: VecDeque<i64>,
    /// The conflict, while it stands.
    conflict: Option<Conflict>,
}

/// A reset through `POST /conflicts/reset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reset {
    /// When (Unix ms).
    pub at_ms: i64,
    /// The conflicts it ended.
    pub ended: Vec<Conflict>,
}

#[derive(Debug, Default)]
struct State {
    records: BTreeMap<Key, Record>,
    last_reset: Option<Reset>,
}

/// The memory of tug-of-war detection, shared by every target of a process and kept
/// across passes. Cheap to clone; clones share everything.
#[derive(Debug, Clone, Default)]
pub struct Conflicts(Arc<Mutex<State>>);

/// The key and value an action writes: `None` for a redeploy (not a conflict resource).
fn key_of(label: &str, action: &Action) -> Option<(Key, String)> {
    let (kind, resource, value) = match action {
        Action::TagCluster {
            cluster_arn, to, ..
        } => (ConflictKind::Tag, cluster_arn.clone(), (*to).to_owned()),
        Action::UntagCluster { cluster_arn, .. } => {
            (ConflictKind::Tag, cluster_arn.clone(), ABSENT.to_owned())
        }
        Action::UpdateDetector {
            detector_id,
            feature,
            to,
            ..
        } => (
            ConflictKind::Detector,
            format!("{detector_id}/{feature}"),
            to.to_string(),
        ),
        Action::UpdateOrganizationConfiguration {
            detector_id,
            feature,
            to,
            ..
        } => (
            ConflictKind::Organization,
            format!("{detector_id}/{feature}"),
            to.as_aws().to_owned(),
        ),
        Action::RedeployService { .. } => return None,
    };
    Some(((label.to_owned(), kind, resource), value))
}

/// The word for "no value": a tag that is not there, a feature the detector does not list.
const ABSENT: &str = "absent";

/// The value the action finds (the other writer's, while in conflict).
fn observed_of(action: &Action) -> String {
    match action {
        Action::TagCluster { from, .. } => from.clone().unwrap_or_else(|| ABSENT.to_owned()),
        Action::UntagCluster { from, .. } => from.clone(),
        Action::UpdateDetector { from, .. } => from
            .as_ref()
            .map_or_else(|| ABSENT.to_owned(), ToString::to_string),
        Action::UpdateOrganizationConfiguration { from, .. } => {
            from.clone().unwrap_or_else(|| ABSENT.to_owned())
        }
        Action::RedeployService { .. } => String::new(),
    }
}

/// Whether a detector or organization action widens coverage (turns a feature on).
fn enables(action: &Action) -> bool {
    match action {
        Action::UpdateDetector { to, .. } => *to == FeatureStatus::Enabled,
        Action::UpdateOrganizationConfiguration { to, .. } => *to != AutoEnable::None,
        _ => false,
    }
}

fn log_end(c: &Conflict, why: &str) {
    warn!(
        kind = c.kind.as_str(),
        resource = %c.resource,
        desired = %c.desired,
        observed = %c.observed,
        "conflict ended ({why}): the controller writes {} again", c.resource
    );
}

impl Conflicts {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Judges a fresh plan of the target `label`, before anything of it is written: counts
    /// the reverts it shows, starts and ends conflicts, then [`Conflicts::hold`]s it.
    /// Call it once per pass and target, with the planner's plan.
    ///
    /// # Guarantees
    /// A revert is counted only for a change this process wrote successfully and has not
    /// seen reverted since; a failed or skipped write never counts. With
    /// `spec.reverts == 0` the target's memory is dropped and nothing is held.
    pub fn judge(&self, label: &str, plan: &mut TargetPlan, spec: &ConflictSpec, now_ms: i64) {
        let mut s = self.lock();
        if spec.reverts == 0 {
            s.records.retain(|(target, ..), r| {
                if target == label {
                    if let Some(c) = &r.conflict {
                        log_end(c, "reconcile.conflicts.reverts is 0");
                    }
                    false
                } else {
                    true
                }
            });
            return;
        }
        let window_ms = i64::try_from(spec.window.get().as_millis()).unwrap_or(i64::MAX);
        let mut planned = HashSet::new();
        for action in &plan.actions {
            let Some((key, value)) = key_of(label, action) else {
                continue;
            };
            planned.insert(key.clone());
            if s.records.get(&key).is_some_and(|r| r.value != value) {
                // The desired value changed (a new rule or file): a fresh start.
                if let Some(c) = s.records.remove(&key).and_then(|r| r.conflict) {
                    log_end(&c, "the desired state changed");
                }
                continue;
            }
            let Some(record) = s.records.get_mut(&key) else {
                continue;
            };
            let observed = observed_of(action);
            if let Some(c) = record.conflict.as_mut() {
                c.observed = observed;
                continue;
            }
            if !record.armed {
                continue; // seen before, or our last write failed: not a new revert
            }
            record.armed = false;
            record.reverts.push_back(now_ms);
            while record
                .reverts
                .front()
                .is_some_and(|t| now_ms.saturating_sub(*t) > window_ms)
            {
                record.reverts.pop_front();
            }
            let count = u32::try_from(record.reverts.len()).unwrap_or(u32::MAX);
            if count >= spec.reverts {
                let c = Conflict {
                    target: action.target().clone(),
                    kind: key.1,
                    resource: key.2.clone(),
                    cluster: match action {
                        Action::TagCluster { cluster, .. }
                        | Action::UntagCluster { cluster, .. } => Some(cluster.clone()),
                        _ => None,
                    },
                    desired: value,
                    observed,
                    reverts: count,
                    since_ms: now_ms,
                    principal: None,
                };
                warn!(
                    target = label,
                    kind = c.kind.as_str(),
                    resource = %c.resource,
                    desired = %c.desired,
                    observed = %c.observed,
                    reverts = count,
                    "conflict: another writer changed {} back {count} times within {}; the controller stops writing it until its rule changes or the conflict is reset",
                    c.resource,
                    spec.window
                );
                record.conflict = Some(c);
            }
            // Reverts stay bounded: the count never needs more than `reverts` of them.
            while record.reverts.len() > spec.reverts as usize {
                record.reverts.pop_front();
            }
        }
        // A conflict whose resource needs no change any more (AWS holds the desired value
        // again, or no rule manages it) is over; its revert history stays for the window.
        for (key, record) in s.records.iter_mut() {
            if key.0 == label && !planned.contains(key) {
                if let Some(c) = record.conflict.take() {
                    log_end(&c, "the resource needs no change any more");
                }
            }
        }
        drop(s);
        self.hold(label, plan);
    }

    /// Moves the actions of resources in conflict in `label` from `plan.actions` to
    /// `plan.conflicts`, without counting anything (for the plan made again after a
    /// write). Also left out, so that holding one change never widens coverage or fights
    /// by other means: the redeploys of a cluster whose tag is in conflict, and while an
    /// exclusion tag (`false`) is in conflict, every detector or organization change
    /// that turns a feature on (the exclusion must be in place first, DESIGN §1).
    pub fn hold(&self, label: &str, plan: &mut TargetPlan) {
        let s = self.lock();
        let in_conflict = |action: &Action| {
            key_of(label, action)
                .and_then(|(key, _)| s.records.get(&key))
                .and_then(|r| r.conflict.as_ref())
        };
        let mut conflicts: Vec<Conflict> = Vec::new();
        plan.actions.retain(|a| match in_conflict(a) {
            Some(c) => {
                conflicts.push(c.clone());
                false
            }
            None => true,
        });
        if conflicts.is_empty() {
            return;
        }
        let tags: HashSet<&str> = conflicts
            .iter()
            .filter(|c| c.kind == ConflictKind::Tag)
            .map(|c| c.resource.as_str())
            .collect();
        let exclusions: Vec<&str> = conflicts
            .iter()
            .filter(|c| c.kind == ConflictKind::Tag && c.desired == "false")
            .filter_map(|c| c.cluster.as_deref())
            .collect();
        // The planner decides coverage, and so redeploys, from the desired detector
        // settings. While one of them is held, AWS keeps the other writer's value, and a
        // redeploy made for the desired value would only be undone by it (new tasks
        // without the agent while the other writer keeps automation on, or the
        // reverse): every redeploy of the target waits until the conflict ends.
        let settings_held = conflicts.iter().any(|c| c.kind != ConflictKind::Tag);
        let before = plan.actions.len();
        let redeploys_before = plan
            .actions
            .iter()
            .filter(|a| matches!(a, Action::RedeployService { .. }))
            .count();
        plan.actions.retain(|a| match a {
            Action::RedeployService { cluster_arn, .. } => {
                !settings_held && !tags.contains(cluster_arn.as_str())
            }
            _ => exclusions.is_empty() || !enables(a),
        });
        let redeploys_after = plan
            .actions
            .iter()
            .filter(|a| matches!(a, Action::RedeployService { .. }))
            .count();
        if !exclusions.is_empty()
            && plan.actions.len() + (redeploys_before - redeploys_after) < before
        {
            plan.warnings.push(format!(
                "the exclusion tag of {} is in conflict: detector changes that turn a feature on wait until the conflict ends",
                exclusions.join(", ")
            ));
        }
        if settings_held && redeploys_after < redeploys_before {
            plan.warnings.push(
                "a detector or organization setting is in conflict: redeploys in this target wait until the conflict ends"
                    .to_owned(),
            );
        }
        conflicts.sort_by(|a, b| (a.kind, &a.resource).cmp(&(b.kind, &b.resource)));
        plan.conflicts = conflicts;
    }

    /// Remembers the successful tag and detector writes of a pass in `label`: the next
    /// plan of the same change is a revert.
    pub fn written(&self, label: &str, results: &[ActionResult], now_ms: i64) {
        let mut s = self.lock();
        for r in results.iter().filter(|r| r.outcome == Outcome::Success) {
            let Some((key, value)) = key_of(label, &r.action) else {
                continue;
            };
            let record = s.records.entry(key).or_insert_with(|| Record {
                value: value.clone(),
                written_ms: now_ms,
                armed: false,
                reverts: VecDeque::new(),
                conflict: None,
            });
            if record.value != value {
                record.reverts.clear();
                record.conflict = None;
                record.value = value;
            }
            record.written_ms = now_ms;
            record.armed = true;
        }
        evict(&mut s);
    }

    /// Ends the conflicts of `resource` (a cluster ARN or `<detector id>/<feature>`), or
    /// every conflict, and forgets their revert history: the controller writes them again
    /// at the next pass, and counts reverts afresh.
    pub fn reset(&self, resource: Option<&str>, now_ms: i64) -> Reset {
        let mut s = self.lock();
        let mut ended = Vec::new();
        for record in s.records.values_mut() {
            let matches = record
                .conflict
                .as_ref()
                .is_some_and(|c| resource.is_none_or(|r| c.resource == r));
            if matches {
                if let Some(c) = record.conflict.take() {
                    log_end(&c, "reset");
                    ended.push(c);
                }
                record.reverts.clear();
                record.armed = false;
            }
        }
        let reset = Reset {
            at_ms: now_ms,
            ended,
        };
        // A reset that ended nothing (a resource not in conflict: the endpoint answers
        // 404) leaves the last one that did in `/status`.
        if !reset.ended.is_empty() {
            s.last_reset = Some(reset.clone());
        }
        reset
    }

    /// Every conflict that stands, with its target's label, by target, kind and resource.
    pub fn current(&self) -> Vec<(String, Conflict)> {
        self.lock()
            .records
            .iter()
            .filter_map(|((label, ..), r)| Some((label.clone(), r.conflict.clone()?)))
            .collect()
    }

    /// The last reset, if any.
    pub fn last_reset(&self) -> Option<Reset> {
        self.lock().last_reset.clone()
    }

    /// Forgets the resources of targets not in `targets` (they left the desired state).
    pub fn retain(&self, targets: &[Target]) {
        let labels: HashSet<String> = targets.iter().map(Target::label).collect();
        self.lock()
            .records
            .retain(|(label, ..), _| labels.contains(label));
    }

    /// How many resources are remembered.
    pub fn remembered(&self) -> usize {
        self.lock().records.len()
    }
}

/// Keeps at most [`MAX_RECORDS`]: forgets the oldest written resources not in conflict.
fn evict(s: &mut State) {
    let over = s.records.len().saturating_sub(MAX_RECORDS);
    if over == 0 {
        return;
    }
    let mut oldest: Vec<(i64, Key)> = s
        .records
        .iter()
        .filter(|(_, r)| r.conflict.is_none())
        .map(|(k, r)| (r.written_ms, k.clone()))
        .collect();
    oldest.sort_unstable();
    for (_, key) in oldest.into_iter().take(over) {
        s.records.remove(&key);
    }
}
