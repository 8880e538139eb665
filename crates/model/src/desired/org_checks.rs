//! The `organization` section's values, and what it rules out in the rest of the file: an
//! organization auto-enable that would turn automation on for a joining account before its
//! exclusion tags are written (DESIGN §8).

use std::collections::BTreeMap;

use marked_yaml::Node;

use super::error::{ConfigError, ConfigErrorKind as Kind};
use super::targets::{
    bad_role_name, is_account_id, key, not_a_role, regions_problems, unquoted_number, Problem,
    MAX_TARGETS,
};
use super::validate::{looks_like_role_arn, Seg};
use super::{
    account_of_arn, AutoEnable, DesiredState, FeatureSetting, ManagedTag, MemberSelection,
    OrganizationSpec,
};

/// Account ids of the section written as plain YAML numbers (`accountId`, `members`).
pub(super) fn unquoted_ids(node: &Node, path: &[Seg]) -> Vec<ConfigError> {
    let Some(map) = node.as_mapping() else {
        return Vec::new();
    };
    let mut errors = Vec::new();
    let admin = map.get("administrator").and_then(Node::as_mapping);
    if let Some(id) = admin.and_then(|a| a.get("accountId")) {
        let mut at = path.to_vec();
        at.extend([key("administrator"), key("accountId")]);
        errors.extend(unquoted_number(id, &at, "accountId: "));
    }
    let members = map.get("members").and_then(Node::as_sequence);
    for (j, id) in members.map_or(&[][..], |s| &s[..]).iter().enumerate() {
        let mut at = path.to_vec();
        at.extend([key("members"), Seg::Index(j)]);
        errors.extend(unquoted_number(id, &at, "- "));
    }
    errors
}

/// The mistakes of the `organization` section's values, at paths from the top.
pub(super) fn organization_problems(org: &OrganizationSpec) -> Vec<Problem> {
    let mut p = Vec::new();
    let at = |rel: &[&str]| -> Vec<Seg> {
        std::iter::once(key("organization"))
            .chain(rel.iter().map(|k| key(k)))
            .collect()
    };
    let admin = &org.administrator;
    let admin_id = admin.account_id.as_str();
    let admin_ok = is_account_id(admin_id);
    if !admin_ok {
        p.push((
            at(&["administrator", "accountId"]),
            Kind::InvalidValue,
            format!("{admin_id:?} is not a 12-digit AWS account id"),
        ));
    }
    match &admin.role_arn {
        Some(role) if !looks_like_role_arn(role) => p.push((
            at(&["administrator", "roleArn"]),
            Kind::InvalidValue,
            not_a_role(role),
        )),
        Some(role) => {
            let owner = account_of_arn(role).unwrap_or_default();
            if admin_ok && owner != admin_id {
                p.push((
                    at(&["administrator", "roleArn"]),
                    Kind::InvalidValue,
                    format!(
                        "the role is in account {owner}, not in the administrator account \
                         ({admin_id})"
                    ),
                ));
            }
        }
        None if admin.external_id.is_some() => p.push((
            at(&["administrator", "externalId"]),
            Kind::MissingField,
            "externalId needs roleArn".into(),
        )),
        None => {}
    }
    if admin.regions.len() > MAX_TARGETS {
        p.push((
            at(&["administrator", "regions"]),
            Kind::Limit,
            format!(
                "{} regions are more than the limit of {MAX_TARGETS} targets per file",
                admin.regions.len()
            ),
        ));
    }
    for (rel, kind, message) in regions_problems(&admin.regions) {
        let mut path = at(&["administrator"]);
        path.extend(rel);
        p.push((path, kind, message));
    }
    if let MemberSelection::Accounts(ids) = &org.members {
        member_problems(ids, admin_id, admin.regions.len(), &mut p);
    }
    let name = &org.member_role_name;
    if name.starts_with("arn:") {
        p.push((
            at(&["memberRoleName"]),
            Kind::InvalidValue,
            format!(
                "{name:?} is an ARN: memberRoleName is the role's name only (the role assumed \
                 in each member is arn:<partition>:iam::<member>:role/<memberRoleName>)"
            ),
        ));
    } else if let Some(why) = bad_role_name(name) {
        p.push((at(&["memberRoleName"]), Kind::InvalidValue, why));
    }
    p
}

/// The mistakes of a `members` list: none, not an account id, a repeat, the administrator
/// itself, or more member targets (members × regions) than [`MAX_TARGETS`].
fn member_problems(ids: &[String], admin_id: &str, regions: usize, p: &mut Vec<Problem>) {
    let members = || vec![key("organization"), key("members")];
    if ids.is_empty() {
        p.push((
            members(),
            Kind::InvalidValue,
            "list at least one member account, or write `members: all`".into(),
        ));
    }
    if ids.len().saturating_mul(regions.max(1)) > MAX_TARGETS {
        p.push((
            members(),
            Kind::Limit,
            format!(
                "{} members in {regions} regions are more than the limit of {MAX_TARGETS} \
                 targets per file",
                ids.len()
            ),
        ));
    }
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (j, id) in ids.iter().enumerate() {
        let mut at = members();
        at.push(Seg::Index(j));
        if !is_account_id(id) {
            p.push((
                at,
                Kind::InvalidValue,
                format!("{id:?} is not a 12-digit AWS account id"),
            ));
        } else if id == admin_id {
            p.push((
                at,
                Kind::InvalidValue,
                format!(
                    "{id} is the administrator: its own detector and clusters are reconciled \
                     as the administrator's targets, not as a member's"
                ),
            ));
        } else if let Some(first) = seen.insert(id, j) {
            seen.insert(id, first);
            p.push((
                at,
                Kind::Duplicate,
                format!("duplicate member {id} (first at members[{first}])"),
            ));
        }
    }
}

/// An organization auto-enable (`new`, `all`) the rest of the file makes unsafe or
/// meaningless, reported at `organization.autoEnable`.
pub(super) fn auto_enable_problems(d: &DesiredState) -> Vec<Problem> {
    let Some(org) = &d.organization else {
        return Vec::new();
    };
    let word = match org.auto_enable {
        AutoEnable::None => return Vec::new(),
        AutoEnable::New => "new",
        AutoEnable::All => "all",
    };
    let at = || vec![key("organization"), key("autoEnable")];
    let mut p = Vec::new();
    let mut exclusions = (d.clusters.iter().enumerate())
        .filter(|(_, rule)| rule.guard_duty_managed == ManagedTag::False)
        .map(|(i, _)| i);
    if let Some(first) = exclusions.next() {
        let more = match exclusions.count() {
            0 => String::new(),
            1 => " and 1 more rule".to_owned(),
            n => format!(" and {n} more rules"),
        };
        let rules = format!("guardDutyManaged: false in clusters[{first}]{more}");
        p.push((
            at(),
            Kind::InvalidValue,
            format!(
                "autoEnable: {word} is unsafe with exclusion rules ({rules}): GuardDuty would turn the \
                 features the file enables on for an account the moment it joins the organization, \
                 before the controller can write its exclusion tags. Use autoEnable: none; the \
                 controller then enables each member itself, after its exclusion tags"
            ),
        ));
    }
    if let MemberSelection::Accounts(_) = &org.members {
        p.push((
            at(),
            Kind::InvalidValue,
            format!(
                "autoEnable: {word} turns features on for every account of the organization \
                 ({}), also those organization.members does not list: list no members \
                 (members: all), or use autoEnable: none",
                if org.auto_enable == AutoEnable::All {
                    "every member now and every account that joins"
                } else {
                    "every account that joins"
                }
            ),
        ));
    }
    let rm = d.detector.runtime_monitoring;
    if rm != FeatureSetting::Enabled {
        let is = match rm {
            FeatureSetting::Disabled => "disabled",
            _ => "unmanaged",
        };
        p.push((
            at(),
            Kind::InvalidValue,
            format!(
                "autoEnable: {word} turns on for members the features the file enables, but \
                 detector.runtimeMonitoring is {is}: enable it, or use autoEnable: none"
            ),
        ));
    }
    p
}
