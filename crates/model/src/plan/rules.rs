//! Which rule decides a cluster's `GuardDutyManaged` tag.

use std::collections::HashMap;

use crate::desired::{DesiredState, ManagedTag, MatchSpec, UnmatchedPolicy};
use crate::observed::ObservedCluster;

/// The cluster rules of a desired state, compiled once per plan.
#[derive(Debug)]
pub struct CompiledRules<'a> {
    /// FxHash: every cluster is looked up by ARN and by name, which SipHash made a large
    /// share of a plan; the keys come from the desired-state file (no flooding risk).
    exact: HashMap<&'a str, ManagedTag, rustc_hash::FxBuildHasher>,
    selectors: Vec<(Selector<'a>, ManagedTag)>,
    unmatched: UnmatchedPolicy,
}

#[derive(Debug)]
struct Selector<'a> {
    pattern: Option<NamePattern<'a>>,
    spec: &'a MatchSpec,
}

/// A compiled `namePattern`.
#[derive(Debug)]
enum NamePattern<'a> {
    /// Only literal characters and single `*`s: the text between the stars, matched
    /// without glob's backtracking.
    Stars(Vec<&'a str>),
    /// Anything else (`?`, `[...]`, `**`, separators).
    Glob(glob::Pattern),
}

impl<'a> NamePattern<'a> {
    fn new(pattern: &'a str) -> Result<Self, glob::PatternError> {
        let glob = glob::Pattern::new(pattern)?;
        // With `MatchOptions::new()` (what `Pattern::matches` uses) glob reads every other
        // character as itself and a lone `*` as any sequence, path separators included.
        // Separators stay with glob: on Windows it takes `/` and `\` as equal.
        let plain = !pattern.contains(['?', '[', '/', '\\']) && !pattern.contains("**");
        Ok(if plain {
            NamePattern::Stars(pattern.split('*').collect())
        } else {
            NamePattern::Glob(glob)
        })
    }

    fn matches(&self, name: &str) -> bool {
        let parts = match self {
            NamePattern::Glob(glob) => return glob.matches(name),
            NamePattern::Stars(parts) => parts,
        };
        let [first, middle @ .., last] = parts.as_slice() else {
            // No star: the name itself.
            return parts.first() == Some(&name);
        };
        if name.len() < first.len() + last.len()
            || !name.starts_with(first)
            || !name.ends_with(last)
        {
            return false;
        }
        // Each middle part at its leftmost place after the previous one: if the name
        // matches at all, it matches so (UTF-8 finds only whole characters).
        let mut rest = &name[first.len()..name.len() - last.len()];
        for part in middle {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
        true
    }
}

impl<'a> CompiledRules<'a> {
    /// Compiles the rules; a glob that does not compile matches nothing (validation
    /// already refused such a file).
    pub fn new(desired: &'a DesiredState) -> Self {
        let mut exact = HashMap::default();
        let mut selectors = Vec::new();
        for rule in &desired.clusters {
            if let Some(name) = &rule.name {
                exact
                    .entry(name.as_str())
                    .or_insert(rule.guard_duty_managed);
            } else if let Some(spec) = &rule.selector {
                let pattern = match spec.name_pattern.as_deref() {
                    Some(p) => match NamePattern::new(p) {
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
    /// Every criterion must hold; the cheap ones (region, tags) are tried before the glob.
    fn matches(&self, region: &str, cluster: &ObservedCluster) -> bool {
        (self.spec.regions.is_empty() || self.spec.regions.iter().any(|r| r == region))
            && self
                .spec
                .tags
                .iter()
                .all(|(k, v)| cluster.tags.get(k) == Some(v))
            && self
                .pattern
                .as_ref()
                .is_none_or(|p| p.matches(&cluster.name))
    }
}
