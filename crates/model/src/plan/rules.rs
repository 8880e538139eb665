//! Which rule decides a cluster's `GuardDutyManaged` tag.

use std::collections::HashMap;

use crate::desired::{DesiredState, ManagedTag, MatchSpec, UnmatchedPolicy};
use crate::observed::ObservedCluster;

/// The cluster rules of a desired state, compiled once per plan.
#[derive(Debug)]
pub struct CompiledRules<'a> {
    exact: HashMap<&'a str, ManagedTag>,
    selectors: Vec<(Selector<'a>, ManagedTag)>,
    unmatched: UnmatchedPolicy,
}

#[derive(Debug)]
struct Selector<'a> {
    pattern: Option<glob::Pattern>,
    spec: &'a MatchSpec,
}

impl<'a> CompiledRules<'a> {
    /// Compiles the rules; a glob that does not compile matches nothing (validation
    /// already refused such a file).
    pub fn new(desired: &'a DesiredState) -> Self {
        let mut exact = HashMap::new();
        let mut selectors = Vec::new();
        for rule in &desired.clusters {
            if let Some(name) = &rule.name {
                exact
                    .entry(name.as_str())
                    .or_insert(rule.guard_duty_managed);
            } else if let Some(spec) = &rule.selector {
                let pattern = match spec.name_pattern.as_deref() {
                    Some(p) => match glob::Pattern::new(p) {
                        Ok(p) => Some(p),
                        Err(_) => continue,
                    },
                    None => None,
                };
                selectors.push((Selector { pattern, spec }, rule.guard_duty_managed));
            }
        }
        CompiledRules {
            exact,
            selectors,
            unmatched: desired.unmatched_clusters,
        }
    }

    /// The tag a cluster must carry, or `None` when the controller leaves it alone.
    /// An exact ARN beats an exact name (it is more specific), both beat any `match`;
    /// among `match` rules the first wins.
    pub fn desired_tag(&self, region: &str, cluster: &ObservedCluster) -> Option<ManagedTag> {
        if let Some(tag) = self
            .exact
            .get(cluster.arn.as_str())
            .or_else(|| self.exact.get(cluster.name.as_str()))
        {
            return Some(*tag);
        }
        for (selector, tag) in &self.selectors {
            if selector.matches(region, cluster) {
                return Some(*tag);
            }
        }
        match self.unmatched {
            UnmatchedPolicy::Ignore => None,
            UnmatchedPolicy::Absent => Some(ManagedTag::Absent),
        }
    }

    /// True when every rule names its cluster exactly and unmatched clusters are ignored,
    /// so only the named clusters matter.
    pub fn only_exact_names(&self) -> bool {
        self.selectors.is_empty() && self.unmatched == UnmatchedPolicy::Ignore
    }

    /// The exact names and ARNs the rules give.
    pub fn exact_names(&self) -> impl Iterator<Item = &str> {
        self.exact.keys().copied()
    }
}

impl Selector<'_> {
    fn matches(&self, region: &str, cluster: &ObservedCluster) -> bool {
        self.pattern
            .as_ref()
            .is_none_or(|p| p.matches(&cluster.name))
            && (self.spec.regions.is_empty() || self.spec.regions.iter().any(|r| r == region))
            && self
                .spec
                .tags
                .iter()
                .all(|(k, v)| cluster.tags.get(k) == Some(v))
    }
}
