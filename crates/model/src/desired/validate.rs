//! Checks a well-typed desired state for mistakes the types cannot express.

use std::collections::BTreeMap;
use std::time::Duration;

use super::error::ConfigErrorKind as Kind;
use super::org_checks;
use super::{DesiredState, ManagedTag, Window};

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

impl Seg {
    pub(crate) fn render(path: &[Seg]) -> String {
        let mut out = String::new();
        for seg in path {
            match seg {
                Seg::Key(k) if out.is_empty() => out.push_str(k),
                Seg::Key(k) => {
                    out.push('.');
                    out.push_str(k);
                }
                Seg::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }
}

/// A mistake found by [`validate`]: where, what sort, and the message.
pub(crate) type Problem = (Vec<Seg>, Kind, String);

/// The longest `reconcile.interval`: a daemon that reconciles less than daily is not
/// reconciling (drift would stand for days), and it bounds the daemon's timer.
const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// The shortest `reconcile.interval`: passes closer than this would only spend API calls.
const MIN_INTERVAL: Duration = Duration::from_secs(10);

struct Problems(Vec<Problem>);

impl Problems {
    /// A value the types allow but the controller does not.
    fn add(&mut self, path: &[&dyn PathPart], message: impl Into<String>) {
        self.add_kind(path, Kind::InvalidValue, message);
    }

    fn add_kind(&mut self, path: &[&dyn PathPart], kind: Kind, message: impl Into<String>) {
        let path = path.iter().map(|p| p.seg()).collect();
        self.0.push((path, kind, message.into()));
    }
}

trait PathPart {
    fn seg(&self) -> Seg;
}
impl PathPart for &str {
    fn seg(&self) -> Seg {
        Seg::Key((*self).to_owned())
    }
}
impl PathPart for usize {
    fn seg(&self) -> Seg {
        Seg::Index(*self)
    }
}

pub(crate) fn validate(d: &DesiredState) -> Vec<Problem> {
    let mut p = Problems(Vec::new());
    if d.version != 1 {
        p.add(
            &[&"version"],
            format!(
                "unsupported version {}: this controller reads version 1",
                d.version
            ),
        );
    }
    validate_targets(d, &mut p);
    validate_clusters(d, &mut p);
    validate_redeploy(d, &mut p);
    let loss = d.safety.max_coverage_loss_fraction;
    if let Some(loss) = loss.filter(|l| !(0.0..=1.0).contains(l)) {
        p.add(
            &[&"safety", &"maxCoverageLossFraction"],
            format!("{loss} is not a fraction between 0 and 1"),
        );
    }
    // Whole durations, not seconds: `9500ms` is below 10s and `24h500ms` above 24h.
    let interval = d.reconcile.interval.get();
    if interval < MIN_INTERVAL {
        p.add(&[&"reconcile", &"interval"], "must be at least 10s");
    } else if interval > MAX_INTERVAL {
        p.add(&[&"reconcile", &"interval"], "must be at most 24h");
    }
    validate_conflicts(d, &mut p);
    let jitter = d.reconcile.jitter;
    if !(0.0..=0.5).contains(&jitter) {
        p.add(
            &[&"reconcile", &"jitter"],
            format!("{jitter} is not between 0 and 0.5"),
        );
    }
    p.0
}

/// Each entry's values and duplicate targets are checked on the entries as written
/// (`targets.rs`); what is left is whether there is any target at all. With
/// `organization`, its values (the targets are its administrator's regions) and the
/// auto-enable the rest of the file allows (`org_checks.rs`).
fn validate_targets(d: &DesiredState, p: &mut Problems) {
    if let Some(org) = &d.organization {
        p.0.extend(org_checks::organization_problems(org));
        p.0.extend(org_checks::auto_enable_problems(d));
    } else if d.targets.is_empty() {
        p.add(&[&"targets"], "at least one target is required");
    }
}

fn validate_clusters(d: &DesiredState, p: &mut Problems) {
    let mut exact: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, rule) in d.clusters.iter().enumerate() {
        match (&rule.name, &rule.selector) {
            (Some(_), Some(_)) => p.add(
                &[&"clusters", &i],
                "give either `name` or `match`, not both",
            ),
            (None, None) => p.add(&[&"clusters", &i], "a rule needs `name` or `match`"),
            (Some(name), None) => {
                if name.trim().is_empty() || name.contains(char::is_whitespace) {
                    p.add(
                        &[&"clusters", &i, &"name"],
                        format!("{name:?} is not a cluster name or ARN"),
                    );
                } else if let Some(first) = exact.insert(name.as_str(), i) {
                    exact.insert(name.as_str(), first);
                    p.add_kind(
                        &[&"clusters", &i, &"name"],
                        Kind::Duplicate,
                        format!("duplicate rule for cluster {name:?} (first in clusters[{first}])"),
                    );
                }
            }
            (None, Some(m)) => {
                if let Some(pattern) = &m.name_pattern {
                    if let Err(e) = glob::Pattern::new(pattern) {
                        p.add(
                            &[&"clusters", &i, &"match", &"namePattern"],
                            format!("invalid glob {pattern:?}: {}", e.msg),
                        );
                    }
                }
                for (j, region) in m.regions.iter().enumerate() {
                    if !looks_like_region(region) {
                        p.add(
                            &[&"clusters", &i, &"match", &"regions", &j],
                            format!("{region:?} is not an AWS region name like us-east-1"),
                        );
                    }
                }
                if m.tags.keys().any(|k| k.is_empty()) {
                    p.add(
                        &[&"clusters", &i, &"match", &"tags"],
                        "tag keys must not be empty",
                    );
                }
            }
        }
        // A rule that selects by the managed tag itself would chase its own writes.
        if let Some(m) = &rule.selector {
            if m.tags.contains_key(crate::MANAGED_TAG_KEY)
                && rule.guard_duty_managed != ManagedTag::True
            {
                p.add(
                    &[&"clusters", &i, &"match", &"tags"],
                    format!(
                        "a rule cannot select on {} and change it",
                        crate::MANAGED_TAG_KEY
                    ),
                );
            }
        }
    }
}

/// The most reverts `reconcile.conflicts.reverts` may ask for: past a hundred fights a
/// resource is in conflict whatever the count says.
pub const MAX_CONFLICT_REVERTS: u32 = 100;
/// The shortest `reconcile.conflicts.window`: shorter than a pass, no revert would count.
const MIN_CONFLICT_WINDOW: Duration = Duration::from_secs(60);
/// The longest `reconcile.conflicts.window`: a week of memory per written resource.
const MAX_CONFLICT_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

fn validate_conflicts(d: &DesiredState, p: &mut Problems) {
    let c = &d.reconcile.conflicts;
    if c.reverts > MAX_CONFLICT_REVERTS {
        p.add(
            &[&"reconcile", &"conflicts", &"reverts"],
            format!(
                "{} is more than {MAX_CONFLICT_REVERTS} (use 0 to turn detection off)",
                c.reverts
            ),
        );
    }
    let window = c.window.get();
    if window < MIN_CONFLICT_WINDOW {
        p.add(
            &[&"reconcile", &"conflicts", &"window"],
            "must be at least 1m",
        );
    } else if window > MAX_CONFLICT_WINDOW {
        p.add(
            &[&"reconcile", &"conflicts", &"window"],
            "must be at most 7d",
        );
    }
}

fn validate_redeploy(d: &DesiredState, p: &mut Problems) {
    let r = &d.redeploy;
    if r.max_concurrent == 0 {
        p.add(
            &[&"redeploy", &"maxConcurrent"],
            "must be at least 1 (use enabled: false to stop redeploys)",
        );
    }
    if r.max_per_hour == 0 {
        p.add(
            &[&"redeploy", &"maxPerHour"],
            "must be at least 1 (use enabled: false to stop redeploys)",
        );
    }
    for (i, g) in r.exclude_services.iter().enumerate() {
        if let Err(e) = glob::Pattern::new(g) {
            p.add(
                &[&"redeploy", &"excludeServices", &i],
                format!("invalid glob {g:?}: {}", e.msg),
            );
        }
    }
    for (i, w) in r.windows.iter().enumerate() {
        validate_window(w, i, p);
    }
}

fn validate_window(w: &Window, i: usize, p: &mut Problems) {
    if w.days.is_empty() {
        p.add(
            &[&"redeploy", &"windows", &i, &"days"],
            "list at least one day",
        );
    }
    for (field, value) in [("start", &w.start), ("end", &w.end)] {
        if parse_hhmm(value).is_none() {
            p.add(
                &[&"redeploy", &"windows", &i, &field],
                format!("{value:?} is not a time of day HH:MM"),
            );
        }
    }
    if let Some(zone) = &w.time_zone {
        if w.zone().is_none() {
            p.add(
                &[&"redeploy", &"windows", &i, &"timeZone"],
                format!("{zone:?} is not an IANA time zone name like Europe/Berlin or UTC"),
            );
        }
    }
    if w.start == w.end {
        p.add(
            &[&"redeploy", &"windows", &i],
            "start and end are the same: the window is empty",
        );
    }
}

/// Minutes after midnight of an `HH:MM` time, `24:00` allowed as the end of a day.
pub fn parse_hhmm(text: &str) -> Option<u16> {
    let (h, m) = text.split_once(':')?;
    // Digits only: `u16::from_str` also reads a sign (`+1:30`).
    let digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || !digits(m) {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(1440),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

pub(super) fn looks_like_region(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
}

pub(super) fn looks_like_role_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[2] == "iam"
        && parts[4].len() == 12
        && parts[4].chars().all(|c| c.is_ascii_digit())
        && parts[5].starts_with("role/")
}
