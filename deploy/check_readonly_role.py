"""Checks that deploy/readonly-role.yaml's role grants exactly deploy/iam-policy-readonly.json.

Run by scripts/check-deploy with the sandbox's virtualenv (cfn-lint reads the template).
The policy file is the reference (tests/e2e/iam_readonly.rs holds it to plan's calls);
the template's inline policy must have the same statements (Sid, Effect, actions,
resources), ARNs saying `arn:${AWS::Partition}:` for `arn:aws:` and the AssumeRole
resource naming the `RoleName` parameter, whose default must be the policy file's role
name. Its trust policy may only name the `TrustedRoleArn` parameter (sts:AssumeRole),
GitHub's OIDC provider for the `GitHubRepository` parameter's pull requests, and (with
GitHub) the role itself through aws:PrincipalArn.

Usage: check_readonly_role.py [--policy FILE] [--template FILE]. Exit 0 in sync, 1 not
(every difference printed), 2 a file could not be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from check_policy_sync import normalise, read_inputs, resolve

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "deploy" / "iam-policy-readonly.json"
TEMPLATE = ROOT / "deploy" / "readonly-role.yaml"
ROLE = "ReadOnlyRole"
WRITE_PREFIXES = ("tag", "untag", "update", "create", "put", "delete", "register", "start", "stop", "run")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--policy", type=Path, default=POLICY)
    parser.add_argument("--template", type=Path, default=TEMPLATE)
    args = parser.parse_args(argv)
    inputs = read_inputs("check_readonly_role", args.policy, args.template)
    if inputs is None:
        return 2
    policy, template = inputs

    problems: list[str] = []
    role = template["Resources"].get(ROLE, {}).get("Properties", {})
    policies = role.get("Policies", [])
    if len(policies) != 1 or role.get("ManagedPolicyArns"):
        problems.append(f"{ROLE}: expected exactly one inline policy and no managed policy")
    variables = {
        "AWS::Partition": "aws",
        "RoleName": str(template["Parameters"]["RoleName"].get("Default", "")),
    }
    reference = {s["Sid"]: normalise(s) for s in policy["Statement"]}
    ours = {}
    for p in policies:
        for statement in p["PolicyDocument"]["Statement"]:
            try:
                ours[statement.get("Sid")] = normalise(resolve(dict(statement), variables))
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
    actions = {a for s in reference.values() for a in s["Action"]}
    writes = sorted(a for a in actions if "*" in a or a.split(":")[1].lower().startswith(WRITE_PREFIXES))
    if writes:
        problems.append(f"{args.policy.name} grants writes or wildcards: {writes}")

    trust = role.get("AssumeRolePolicyDocument", {}).get("Statement", [])
    allowed = [
        ("HasTrustedRole", {"AWS": {"Ref": "TrustedRoleArn"}}, "sts:AssumeRole"),
        ("HasGitHub", None, "sts:AssumeRoleWithWebIdentity"),
        ("HasGitHub", {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}, "sts:AssumeRole"),
    ]
    if len(trust) != len(allowed):
        problems.append(f"{ROLE}: the trust policy must have exactly {len(allowed)} conditional statements")
    for statement, (condition, principal, action) in zip(trust, allowed):
        branch = statement.get("Fn::If", [None, {}, None])
        body = branch[1] if isinstance(branch, list) and len(branch) == 3 else {}
        if branch[0] != condition or body.get("Action") != action or body.get("Effect") != "Allow":
            problems.append(f"{ROLE}: trust statement for {condition} must allow only {action}")
        if principal is not None and body.get("Principal") != principal:
            problems.append(f"{ROLE}: trust statement for {condition} must name only {principal}")
        if action == "sts:AssumeRoleWithWebIdentity":
            cond = body.get("Condition", {}).get("StringEquals", {})
            if cond.get("token.actions.githubusercontent.com:aud") != "sts.amazonaws.com" or not cond.get(
                "token.actions.githubusercontent.com:sub"
            ):
                problems.append(f"{ROLE}: the GitHub trust must pin aud and sub (StringEquals)")
        if action == "sts:AssumeRole" and condition == "HasGitHub":
            arn = body.get("Condition", {}).get("ArnEquals", {}).get("aws:PrincipalArn")
            if arn != {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${RoleName}"}:
                problems.append(f"{ROLE}: the self-trust must be limited to this role (ArnEquals aws:PrincipalArn)")

    for problem in problems:
        print(f"check_readonly_role: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(
        f"check_readonly_role: {args.template.name} {ROLE} = {args.policy.name} "
        f"({len(reference)} statements, {len(actions)} actions, no write)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
