//! Duplicate (account, region) pairs across the entries of `targets`, reported where
//! they repeat, with where each was first listed.

use std::collections::{BTreeMap, BTreeSet};

use super::account_of_arn;
use super::error::ConfigErrorKind as Kind;
use super::targets::{key, Problem, TargetEntry};
use super::validate::Seg;

/// Every (account, region) seen so far, with where it was first listed.
#[derive(Default)]
pub(super) struct Seen {
    /// (account, or `None` for the controller's own credentials; region) -> where.
    pairs: BTreeMap<(Option<String>, String), String>,
}

impl Seen {
    /// Records an entry's pairs; returns a problem (below the entry) for each place that
    /// repeats pairs listed before, naming the regions and where they were first.
    pub(super) fn add(&mut self, index: usize, entry: &TargetEntry) -> Vec<Problem> {
        // (path below the entry, its account, its regions)
        let places: Vec<(Vec<Seg>, Option<String>, Vec<&str>)> = match entry {
            TargetEntry::Single(t) => vec![(
                Vec::new(),
                t.role_arn
                    .as_deref()
                    .and_then(account_of_arn)
                    .map(str::to_owned),
                vec![t.region.as_str()],
            )],
            TargetEntry::Accounts(a) => {
                // Repeats inside the entry are reported on their own (accounts_problems).
                // Sets, so that long lists cost n log n, not n².
                let mut unique = BTreeSet::new();
                let regions: Vec<&str> = (a.regions.iter())
                    .map(String::as_str)
                    .filter(|r| unique.insert(*r))
                    .collect();
                let mut ids = BTreeSet::new();
                let mut places = Vec::new();
                for (j, account) in a.accounts.iter().enumerate() {
                    if !ids.insert(account.id.as_str()) {
                        continue;
                    }
                    places.push((
                        vec![key("accounts"), Seg::Index(j)],
                        Some(account.id.clone()),
                        regions.clone(),
                    ));
                }
                places
            }
        };
        let mut problems = Vec::new();
        for (rel, account, regions) in places {
            let here = format!("targets[{index}]{}", suffix(&rel));
            let mut repeated: Vec<&str> = Vec::new();
            let mut firsts: Vec<String> = Vec::new();
            let mut unique = BTreeSet::new();
            for region in regions {
                let pair = (account.clone(), region.to_owned());
                match self.pairs.get(&pair) {
                    Some(first) => {
                        repeated.push(region);
                        if unique.insert(first.clone()) {
                            firsts.push(first.clone());
                        }
                    }
                    None => {
                        self.pairs.insert(pair, here.clone());
                    }
                }
            }
            if repeated.is_empty() {
                continue;
            }
            let regions = repeated.join(", ");
            let what = match &account {
                Some(id) => format!("account {id} in {regions}"),
                None => format!("{regions} with the controller's own credentials"),
            };
            problems.push((
                rel,
                Kind::Duplicate,
                format!(
                    "duplicate target: {what} is already listed at {}",
                    firsts.join(", ")
                ),
            ));
        }
        problems
    }
}

/// `.accounts[1]` for a path below an entry.
fn suffix(rel: &[Seg]) -> String {
    let rendered = Seg::render(rel);
    if rendered.is_empty() || rendered.starts_with('[') {
        rendered
    } else {
        format!(".{rendered}")
    }
}
