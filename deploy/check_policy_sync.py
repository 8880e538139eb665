"""Checks that deploy/cloudformation.yaml's task role grants what deploy/iam-policy.json grants.

Run by scripts/check-deploy with the sandbox's virtualenv (cfn-lint reads the template).
The policy file is the reference (tests/iam_policy.rs holds it to the controller's calls);
the template's inline policy must have the same statements (same Sid, Effect, actions,
resources and conditions), with two allowed differences:

- ARNs say `arn:${AWS::Partition}:` instead of `arn:aws:`, and the AssumeRole resource's
  role name is the `CrossAccountRoleNamePattern` parameter, whose default must be the
  policy file's pattern; the lease table's and event bus's ARNs name the stack's own
  account and Region (`*` in the policy file) and the `LeaseTableName` / `EventBusName`
  parameters, whose defaults must be the policy file's names;
- one extra statement, `s3:GetObject` on exactly the desired-state object, and no other.

It also checks deploy/member-role-stackset.yaml (the role in each member account of an
organization): its inline policy has exactly the policy file's statements except those a
member account must not have (MEMBER_EXCLUDED below), the same in every other respect,
and its trust policy trusts only the `ControllerRoleArn` parameter.

Usage: check_policy_sync.py [--policy FILE] [--template FILE] [--member-template FILE]
(defaults: the files in deploy/). Exit 0 in sync, 1 not (every difference printed), 2 a
file could not be read.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "deploy" / "iam-policy.json"
TEMPLATE = ROOT / "deploy" / "cloudformation.yaml"
ROLE = "TaskRole"
EXTRA_ACTION = "s3:GetObject"
DESIRED_STATE_OBJECT = "arn:${AWS::Partition}:s3:::${DesiredStateBucket}/${DesiredStateKey}"
MEMBER_TEMPLATE = ROOT / "deploy" / "member-role-stackset.yaml"
MEMBER_ROLE = "MemberRole"
# The statements of iam-policy.json a member account's role must not have, and why.
MEMBER_EXCLUDED = {
    # A member's Runtime Monitoring is read and written by the delegated administrator
    # (GetMemberDetectors / UpdateMemberDetectors); AWS lets only the administrator change
    # a member's automated agent configuration.
    "ReadAndUpdateDetectorRuntimeMonitoringFeatures",
    # The administrator's own calls.
    "DelegatedAdministratorReadsMembersAndOrganizationConfigurationHaveNoResourceLevelPermissions",
    "DelegatedAdministratorWritesMemberFeaturesAndAutoEnableHaveNoResourceLevelPermissions",
    # The controller assumes the member role from its own; the member role assumes nothing.
    "AssumeControllerRoleInTargetAccounts",
    # The lease table and the event bus live in the controller's own account.
    "LeaseTableItemReadsAndConditionalWrites",
    "PutAuditEventsOnTheEventBus",
}


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def resolve(value, variables: dict[str, str]):
    """Resolve `Fn::Sub` strings with `variables` (recursively); other values as they are."""
    if isinstance(value, dict):
        if set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
            def sub(match: re.Match) -> str:
                name = match.group(1)
                if name not in variables:
                    raise KeyError(f"${{{name}}} has no value to compare with")
                return variables[name]

            return re.sub(r"\$\{([^}!]+)\}", sub, value["Fn::Sub"])
        return {key: resolve(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, variables) for item in value]
    return value


def normalise(statement: dict) -> dict:
    """A statement with Action and Resource as sorted lists, so `"a"` equals `["a"]`."""
    out = dict(statement)
    for key in ("Action", "Resource"):
        if key in out:
            out[key] = sorted(as_list(out[key]))
    return out


def read_inputs(tool: str, policy_path: Path, template_path: Path) -> tuple[dict, dict] | None:
    """The policy file (JSON) and the template (cfn-lint's decoder); None, with the reason on
    stderr, when either cannot be read."""
    try:
        policy = json.loads(policy_path.read_text())
    except (OSError, ValueError) as err:
        print(f"{tool}: {policy_path}: {err}", file=sys.stderr)
        return None
    template, matches = decode(str(template_path))
    if template is None or matches:
        print(f"{tool}: {template_path}: cannot read: {matches}", file=sys.stderr)
        return None
    return policy, template


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--policy", type=Path, default=POLICY)
    parser.add_argument("--template", type=Path, default=TEMPLATE)
    parser.add_argument("--member-template", type=Path, default=MEMBER_TEMPLATE)
    args = parser.parse_args(argv)
    inputs = read_inputs("check_policy_sync", args.policy, args.template)
    if inputs is None:
        return 2
    policy, template = inputs

    problems: list[str] = []
    pattern_param = template["Parameters"]["CrossAccountRoleNamePattern"]
    role = template["Resources"][ROLE]["Properties"]
    policies = role.get("Policies", [])
    if len(policies) != 1 or role.get("ManagedPolicyArns"):
        problems.append(f"{ROLE}: expected exactly one inline policy and no managed policy")
    cfn_statements = [dict(s) for p in policies for s in p["PolicyDocument"]["Statement"]]

    # The lease table and the event bus: the template names its own account and Region
    # where the policy file says `*` (it cannot know them), and their names are
    # parameters whose defaults must be the policy file's names.
    variables = {
        "AWS::Partition": "aws",
        "AWS::Region": "*",
        "AWS::AccountId": "*",
        "CrossAccountRoleNamePattern": str(pattern_param.get("Default", "")),
        "LeaseTableName": str(template["Parameters"].get("LeaseTableName", {}).get("Default", "")),
        "EventBusName": str(template["Parameters"].get("EventBusName", {}).get("Default", "")),
    }
    reference = {s["Sid"]: normalise(s) for s in policy["Statement"]}
    extra = [s for s in cfn_statements if EXTRA_ACTION in as_list(s.get("Action", []))]
    ours = {}
    for statement in cfn_statements:
        if statement in extra:
            continue
        try:
            ours[statement.get("Sid")] = normalise(resolve(statement, variables))
        except KeyError as err:
            problems.append(f"{ROLE}: statement {statement.get('Sid')}: {err.args[0]}")

    for sid in sorted(reference.keys() - ours.keys()):
        problems.append(f"statement {sid} is in {args.policy.name} but not in the template")
    for sid in sorted(ours.keys() - reference.keys()):
        problems.append(f"statement {sid} is in the template but not in {args.policy.name}")
    for sid in sorted(reference.keys() & ours.keys()):
        if reference[sid] != ours[sid]:
            problems.append(
                f"statement {sid} differs:\n  {args.policy.name}: {json.dumps(reference[sid], sort_keys=True)}"
                f"\n  template:  {json.dumps(ours[sid], sort_keys=True)}"
            )

    # The same action set, whatever the statements: the check the brief asks for, kept
    # explicit so a message names the actions themselves.
    policy_actions = {a for s in reference.values() for a in s["Action"]}
    cfn_actions = {a for s in cfn_statements for a in as_list(s["Action"])}
    if cfn_actions - {EXTRA_ACTION} != policy_actions:
        problems.append(
            f"action sets differ: only in the template {sorted(cfn_actions - policy_actions - {EXTRA_ACTION})}, "
            f"only in {args.policy.name} {sorted(policy_actions - cfn_actions)}"
        )
    if EXTRA_ACTION in policy_actions:
        problems.append(f"{EXTRA_ACTION} belongs in the template only (the object is a stack parameter)")
    wanted_extra = {"Effect": "Allow", "Action": EXTRA_ACTION, "Resource": {"Fn::Sub": DESIRED_STATE_OBJECT}}
    if len(extra) != 1 or {k: v for k, v in extra[0].items() if k != "Sid"} != wanted_extra:
        problems.append(
            f"expected one statement granting only {EXTRA_ACTION} on {DESIRED_STATE_OBJECT}, found "
            f"{json.dumps(extra)}"
        )
    if any("*" in a for a in cfn_actions):
        problems.append("the template grants a wildcard action")

    member_template, matches = decode(str(args.member_template))
    if member_template is None or matches:
        print(f"check_policy_sync: {args.member_template}: cannot read: {matches}", file=sys.stderr)
        return 2
    member_count = check_member_role(member_template, reference, args, problems)

    for problem in problems:
        print(f"check_policy_sync: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(
        f"check_policy_sync: {args.template.name} {ROLE} = {args.policy.name} ({len(reference)} statements, "
        f"{len(policy_actions)} actions) + {EXTRA_ACTION} on the desired-state object"
    )
    print(
        f"check_policy_sync: {args.member_template.name} {MEMBER_ROLE} = {args.policy.name} without "
        f"{len(MEMBER_EXCLUDED)} statements ({member_count} statements)"
    )
    return 0


def check_member_role(template: dict, reference: dict, args, problems: list[str]) -> int:
    """The member role's policy is the policy file's statements but MEMBER_EXCLUDED, and its
    trust policy trusts the ControllerRoleArn parameter only. Returns its statement count."""
    name = args.member_template.name
    missing = MEMBER_EXCLUDED - reference.keys()
    if missing:
        problems.append(f"MEMBER_EXCLUDED names statements {args.policy.name} does not have: {sorted(missing)}")
    role = template["Resources"].get(MEMBER_ROLE, {}).get("Properties", {})
    policies = role.get("Policies", [])
    if len(policies) != 1 or role.get("ManagedPolicyArns"):
        problems.append(f"{name} {MEMBER_ROLE}: expected exactly one inline policy and no managed policy")
    statements = [dict(s) for p in policies for s in p["PolicyDocument"]["Statement"]]
    ours = {}
    for statement in statements:
        try:
            ours[statement.get("Sid")] = normalise(resolve(statement, {"AWS::Partition": "aws"}))
        except KeyError as err:
            problems.append(f"{name} {MEMBER_ROLE}: statement {statement.get('Sid')}: {err.args[0]}")
    wanted = {sid: s for sid, s in reference.items() if sid not in MEMBER_EXCLUDED}
    for sid in sorted(wanted.keys() - ours.keys()):
        problems.append(f"statement {sid} is in {args.policy.name} but not in {name}")
    for sid in sorted(ours.keys() - wanted.keys()):
        problems.append(f"statement {sid} is in {name} but must not be (not in {args.policy.name}, or excluded)")
    for sid in sorted(wanted.keys() & ours.keys()):
        if wanted[sid] != ours[sid]:
            problems.append(
                f"{name}: statement {sid} differs:\n  {args.policy.name}: {json.dumps(wanted[sid], sort_keys=True)}"
                f"\n  {name}: {json.dumps(ours[sid], sort_keys=True)}"
            )
    trust = role.get("AssumeRolePolicyDocument", {}).get("Statement", [])
    principals = [s.get("Principal") for s in trust]
    if principals != [{"AWS": {"Ref": "ControllerRoleArn"}}] or any(
        s.get("Effect") != "Allow" or s.get("Action") != "sts:AssumeRole" for s in trust
    ):
        problems.append(f"{name} {MEMBER_ROLE}: the trust policy must let only ControllerRoleArn sts:AssumeRole")
    return len(ours)


if __name__ == "__main__":
    sys.exit(main())
