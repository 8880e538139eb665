//! The `targets` list as written: single (account, region) entries and `accounts` entries
//! that expand over regions; checked on the entries so that mistakes point into the file.

use std::collections::BTreeMap;

use marked_yaml::Node;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use super::duplicates::Seen;
use super::error::{ConfigError, ConfigErrorKind as Kind};
use super::load::list_items;
use super::located::{at_node, deepest};
use super::patterns;
use super::source::Source;
use super::typed::check;
use super::validate::{looks_like_region, looks_like_role_arn, Seg};
use super::{account_of_arn, Target};

/// Most targets one file may expand to, over all its entries.
///
/// Each target costs every pass at least a `ListClusters` (or `DescribeClusters`) and a
/// `GetDetector` call, with its own credentials and client: 5,000 targets are already
/// 10,000 requests per reconcile interval (about 140 accounts in every commercial region,
/// or 1,000 accounts in 5 regions). A larger fleet is better split across controllers
/// than reconciled by one; the limit is what stops a small file (accounts × regions)
/// from expanding to millions of targets.
pub const MAX_TARGETS: usize = 5_000;

/// One entry of `targets` as written in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum TargetEntry {
    /// One (account, region): `{region, roleArn?, externalId?}`.
    Single(Target),
    /// Every listed account in every listed region.
    Accounts(AccountsTarget),
}

/// Many accounts reached by AssumeRole, each in every listed region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountsTarget {
    /// Regions every listed account is reconciled in (of one partition, each once).
    #[schemars(length(min = 1, max = MAX_TARGETS), inner(pattern(patterns::REGION)))]
    #[schemars(extend("uniqueItems" = true))]
    pub regions: Vec<String>,
    /// The accounts; each one becomes a target in every region, in file order.
    #[schemars(length(min = 1, max = MAX_TARGETS))]
    pub accounts: Vec<AccountRef>,
    /// Role assumed in accounts without `roleArn`: `arn:aws:iam::<id>:role/<roleName>`
    /// (`aws-cn` / `aws-us-gov` for China / GovCloud regions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(patterns::ROLE_NAME))]
    pub role_name: Option<String>,
    /// External id for the AssumeRole call of every account of this entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

/// One account of an `accounts` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountRef {
    /// The 12-digit account id, as a quoted string.
    #[schemars(pattern(patterns::ACCOUNT_ID))]
    pub id: String,
    /// Role to assume in this account (it must be in account `id`); default: the entry's
    /// `roleName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(patterns::ROLE_ARN))]
    pub role_arn: Option<String>,
}

/// Why an entry cannot be turned into targets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// An account has no `roleArn` and its entry no `roleName`.
    #[error("account {account} has no roleArn and its entry no roleName")]
    NoRole {
        /// The account id.
        account: String,
    },
    /// The entries expand to more targets than [`MAX_TARGETS`].
    #[error("targets expand to more than the limit of {MAX_TARGETS}")]
    TooMany,
}

impl TargetEntry {
    /// The targets this entry stands for, in file order: an `accounts` entry gives each
    /// account in turn, in every region.
    ///
    /// # Errors
    /// An account without a role to assume, or more than [`MAX_TARGETS`] targets (never
    /// for an entry that passed `parse`).
    pub fn expand(&self) -> Result<Vec<Target>, ExpandError> {
        let count = self.count().filter(|&n| n <= MAX_TARGETS);
        let count = count.ok_or(ExpandError::TooMany)?;
        match self {
            TargetEntry::Single(t) => Ok(vec![t.clone()]),
            TargetEntry::Accounts(a) => {
                let mut out = Vec::with_capacity(count);
                for account in &a.accounts {
                    for region in &a.regions {
                        let role_arn = account
                            .role_arn_in(a.role_name.as_deref(), region)
                            .ok_or_else(|| ExpandError::NoRole {
                                account: account.id.clone(),
                            })?;
                        out.push(Target {
                            region: region.clone(),
                            role_arn: Some(role_arn),
                            external_id: a.external_id.clone(),
                            org: None,
                        });
                    }
                }
                Ok(out)
            }
        }
    }
}

impl TargetEntry {
    /// How many targets the entry stands for; `None` past `usize::MAX`.
    pub fn count(&self) -> Option<usize> {
        match self {
            TargetEntry::Single(_) => Some(1),
            TargetEntry::Accounts(a) => a.accounts.len().checked_mul(a.regions.len()),
        }
    }
}

impl AccountRef {
    /// The role assumed in this account for `region`: its own `roleArn`, else one built
    /// from the entry's `roleName`.
    fn role_arn_in(&self, role_name: Option<&str>, region: &str) -> Option<String> {
        self.role_arn.clone().or_else(|| {
            role_name
                .map(|name| format!("arn:{}:iam::{}:role/{name}", partition_of(region), self.id))
        })
    }
}

/// The ARN partition of a region.
pub(super) fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// `deserialize_with` of `DesiredState::targets`: reads either entry form and expands it.
pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Target>, D::Error> {
    let entries = Vec::<TargetEntry>::deserialize(d)?;
    // Counted before anything is expanded.
    let total = entries
        .iter()
        .try_fold(0usize, |sum, e| sum.checked_add(e.count()?))
        .filter(|&n| n <= MAX_TARGETS);
    let total = total.ok_or_else(|| serde::de::Error::custom(ExpandError::TooMany))?;
    let mut out = Vec::with_capacity(total);
    for entry in &entries {
        out.extend(entry.expand().map_err(serde::de::Error::custom)?);
    }
    Ok(out)
}

/// `skip_serializing_if` of `DesiredState::targets`: the targets of an `organization`
/// are not written out (they are derived from it when read).
pub(super) fn derived(targets: &[Target]) -> bool {
    !targets.is_empty() && targets.iter().all(|t| t.org.is_some())
}

/// Checks the `targets` list: each entry's keys and types, its values, and duplicate
/// (account, region) pairs across all entries.
pub(super) fn check_targets(node: &Node, path: &[Seg], src: &Source) -> Vec<ConfigError> {
    let items = match list_items(node, path) {
        Ok(items) => items,
        Err(errors) => return errors,
    };
    let mut errors = Vec::new();
    let mut seen = Seen::default();
    let mut total = Some(0);
    for (i, item) in items.iter().enumerate() {
        let mut item_path = path.to_vec();
        item_path.push(Seg::Index(i));
        let (found, entry) = check_entry(item, &item_path, src);
        errors.extend(found);
        // Counted on the node, before anything is expanded or compared pair by pair.
        let before = total;
        total = add_up(total, item);
        if total.is_none() {
            if before.is_some() {
                let message = format!(
                    "this entry brings the targets (accounts × regions) past the limit of \
                     {MAX_TARGETS} per file"
                );
                errors.push(at_node(
                    item,
                    &Seg::render(&item_path),
                    Kind::Limit,
                    message,
                ));
            }
            continue;
        }
        if let Some(entry) = entry {
            for (rel, kind, message) in seen.add(i, &entry) {
                errors.push(at_rel(item, &item_path, &rel, kind, message));
            }
        }
    }
    errors
}

/// Adds the targets of an item to a running count: `None` once the count is past
/// [`MAX_TARGETS`], and from then on.
pub(super) fn add_up(total: Option<usize>, item: &Node) -> Option<usize> {
    total?
        .checked_add(count_of(item)?)
        .filter(|&n| n <= MAX_TARGETS)
}

/// How many targets an item stands for, read from the node as written: an `accounts`
/// entry `accounts × regions`, any other one; `None` past `usize::MAX`.
fn count_of(item: &Node) -> Option<usize> {
    let Some(map) = item.as_mapping() else {
        return Some(1);
    };
    if !(map.contains_key("accounts") || map.contains_key("regions")) {
        return Some(1);
    }
    let len = |k: &str| {
        map.get(k)
            .and_then(Node::as_sequence)
            .map_or(0, |s| s.len())
    };
    len("accounts").checked_mul(len("regions"))
}

/// Whether one `targets` item has no mistake of its own (duplicates aside), so that it
/// can be expanded.
pub(super) fn entry_ok(item: &Node, src: &Source) -> bool {
    check_entry(item, &[], src).0.is_empty()
}

/// The mistakes of one entry, and the entry when its keys and types are right.
fn check_entry(item: &Node, path: &[Seg], src: &Source) -> (Vec<ConfigError>, Option<TargetEntry>) {
    let many = item
        .as_mapping()
        .is_some_and(|m| m.contains_key("accounts") || m.contains_key("regions"));
    if !many {
        let errors = check::<Target>(item, path, src);
        if !errors.is_empty() {
            return (errors, None);
        }
        return match marked_yaml::from_node::<Target>(item) {
            Ok(t) => {
                let errors = problems(item, path, single_problems(&t));
                (errors, Some(TargetEntry::Single(t)))
            }
            Err(_) => (Vec::new(), None),
        };
    }
    let mut errors = check::<AccountsTarget>(item, path, src);
    // An unquoted id still reads as a string here: report it, and the values too.
    let mut unquoted = Vec::new();
    // serde stops at the first mistake of the `accounts` list: check each account too.
    let accounts = item
        .as_mapping()
        .and_then(|m| m.get("accounts"))
        .and_then(Node::as_sequence)
        .map_or(&[][..], |s| &s[..]);
    for (j, account) in accounts.iter().enumerate() {
        let mut account_path = path.to_vec();
        account_path.extend([key("accounts"), Seg::Index(j)]);
        errors.extend(check::<AccountRef>(account, &account_path, src));
        unquoted.extend(quoted_id(account, &account_path));
    }
    if !errors.is_empty() {
        errors.extend(unquoted);
        return (errors, None);
    }
    match marked_yaml::from_node::<AccountsTarget>(item) {
        Ok(a) => {
            unquoted.extend(problems(item, path, accounts_problems(&a)));
            (unquoted, Some(TargetEntry::Accounts(a)))
        }
        Err(_) => (unquoted, None),
    }
}

/// An account id written as a plain YAML number: other YAML tools (and the JSON Schema)
/// read it as a number, and a leading zero would be lost.
fn quoted_id(account: &Node, path: &[Seg]) -> Option<ConfigError> {
    let node = account.as_mapping()?.get("id")?;
    let mut id_path = path.to_vec();
    id_path.push(key("id"));
    unquoted_number(node, &id_path, "id: ")
}

/// An account id written as a plain YAML number at `path`; `how` is how the quoted form
/// starts (`id: `, `- `).
pub(super) fn unquoted_number(node: &Node, path: &[Seg], how: &str) -> Option<ConfigError> {
    let id = node.as_scalar()?;
    let digits = id.as_str();
    if !id.may_coerce() || digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let message = format!(
        "account id {digits} is a YAML number: quote it, {how}\"{digits}\" \
         (unquoted digits are a number, and a leading zero is lost)"
    );
    Some(at_node(node, &Seg::render(path), Kind::WrongType, message))
}

/// A problem found in an entry: the path below the entry, its kind, and the message.
pub(super) type Problem = (Vec<Seg>, Kind, String);

pub(super) fn key(k: &str) -> Seg {
    Seg::Key(k.to_owned())
}

fn single_problems(t: &Target) -> Vec<Problem> {
    let mut p = Vec::new();
    if !looks_like_region(&t.region) {
        p.push((
            vec![key("region")],
            Kind::InvalidValue,
            format!("{:?} is not an AWS region name like us-east-1", t.region),
        ));
    }
    match &t.role_arn {
        Some(role) if !looks_like_role_arn(role) => {
            p.push((vec![key("roleArn")], Kind::InvalidValue, not_a_role(role)))
        }
        Some(_) => {}
        None if t.external_id.is_some() => {
            p.push((
                vec![key("externalId")],
                Kind::MissingField,
                "externalId needs roleArn".into(),
            ));
        }
        None => {}
    }
    p
}

pub(super) fn not_a_role(role: &str) -> String {
    format!("{role:?} is not an IAM role ARN like arn:aws:iam::111111111111:role/name")
}

fn accounts_problems(a: &AccountsTarget) -> Vec<Problem> {
    let mut p = regions_problems(&a.regions);
    if a.accounts.is_empty() {
        p.push((
            vec![key("accounts")],
            Kind::InvalidValue,
            "list at least one account".into(),
        ));
    }
    if let Some(name) = &a.role_name {
        if let Some(why) = bad_role_name(name) {
            p.push((vec![key("roleName")], Kind::InvalidValue, why));
        }
    }
    accounts_ids_problems(a, p)
}

/// The mistakes of a `regions` list (paths below its parent): none listed, a name that is
/// not a region, a repeat, regions of two partitions (an account lives in one).
pub(super) fn regions_problems(list: &[String]) -> Vec<Problem> {
    let mut p = Vec::new();
    if list.is_empty() {
        p.push((
            vec![key("regions")],
            Kind::InvalidValue,
            "list at least one region".into(),
        ));
    }
    let mut regions: BTreeMap<&str, usize> = BTreeMap::new();
    let mut partition: Option<(&str, &str)> = None;
    for (k, region) in list.iter().enumerate() {
        let at = vec![key("regions"), Seg::Index(k)];
        if !looks_like_region(region) {
            p.push((
                at,
                Kind::InvalidValue,
                format!("{region:?} is not an AWS region name like us-east-1"),
            ));
            continue;
        }
        if let Some(first) = regions.insert(region, k) {
            regions.insert(region, first);
            p.push((
                at,
                Kind::Duplicate,
                format!("duplicate region {region} (first at regions[{first}])"),
            ));
            continue;
        }
        match partition {
            None => partition = Some((region, partition_of(region))),
            Some((other, part)) if part != partition_of(region) => p.push((
                at,
                Kind::InvalidValue,
                format!(
                    "{region} is in partition {}, {other} in {part}: an account lives in one \
                     partition, so list regions of one partition per entry",
                    partition_of(region)
                ),
            )),
            Some(_) => {}
        }
    }
    p
}

fn accounts_ids_problems(a: &AccountsTarget, mut p: Vec<Problem>) -> Vec<Problem> {
    let mut ids: BTreeMap<&str, usize> = BTreeMap::new();
    for (j, account) in a.accounts.iter().enumerate() {
        let at = |k: &str| vec![key("accounts"), Seg::Index(j), key(k)];
        let id = account.id.as_str();
        if !is_account_id(id) {
            p.push((
                at("id"),
                Kind::InvalidValue,
                format!("{id:?} is not a 12-digit AWS account id"),
            ));
        } else if let Some(first) = ids.insert(id, j) {
            ids.insert(id, first);
            p.push((
                at("id"),
                Kind::Duplicate,
                format!("duplicate account {id} (first at accounts[{first}])"),
            ));
        }
        match &account.role_arn {
            Some(role) if !looks_like_role_arn(role) => {
                p.push((at("roleArn"), Kind::InvalidValue, not_a_role(role)))
            }
            Some(role) => {
                let owner = account_of_arn(role).unwrap_or_default();
                if owner != id {
                    p.push((
                        at("roleArn"),
                        Kind::InvalidValue,
                        format!("the role is in account {owner}, not in this account ({id})"),
                    ));
                }
            }
            None if a.role_name.is_none() => p.push((
                vec![key("accounts"), Seg::Index(j)],
                Kind::MissingField,
                format!(
                    "no role to assume in account {id}: give the account a roleArn, or the \
                     entry a roleName"
                ),
            )),
            None => {}
        }
    }
    p
}

/// Whether `id` is a 12-digit AWS account id.
pub(super) fn is_account_id(id: &str) -> bool {
    id.len() == 12 && id.chars().all(|c| c.is_ascii_digit())
}

/// Why a `roleName` is not an IAM role name (an optional `path/` allowed), if it is not.
pub(super) fn bad_role_name(name: &str) -> Option<String> {
    if name.starts_with("arn:") {
        return Some(format!(
            "{name:?} is an ARN: roleName is the name only (give full ARNs as each account's roleArn)"
        ));
    }
    let last = name.rsplit('/').next().unwrap_or_default();
    let allowed = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c);
    if last.is_empty() || last.len() > 64 || name.starts_with('/') || !name.chars().all(allowed) {
        return Some(format!(
            "{name:?} is not an IAM role name (1 to 64 of letters, digits and +=,.@_-)"
        ));
    }
    None
}

fn problems(item: &Node, path: &[Seg], found: Vec<Problem>) -> Vec<ConfigError> {
    found
        .into_iter()
        .map(|(rel, kind, message)| at_rel(item, path, &rel, kind, message))
        .collect()
}

/// An error at a path below an entry's node (at the deepest node that exists).
fn at_rel(item: &Node, path: &[Seg], rel: &[Seg], kind: Kind, message: String) -> ConfigError {
    let node = deepest(item, rel);
    let mut full = path.to_vec();
    full.extend_from_slice(rel);
    at_node(node, &Seg::render(&full), kind, message)
}
