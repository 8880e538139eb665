"""GuardDuty organizations (moto: none of these operations): a delegated administrator
and its associated members, per Region, each account with its own detector.

The administrator's calls: `ListMembers`, `GetMemberDetectors`, `UpdateMemberDetectors`,
`DescribeOrganizationConfiguration`, `UpdateOrganizationConfiguration`. A member's own
`UpdateDetector` that touches RUNTIME_MONITORING is refused (`guardduty.update_detector`
asks `refuse_member_runtime_monitoring`). Members join through the fleet file's
`organization` key or `POST /_sandbox/organization/members` (`join`), which applies the
organization's auto-enable (NEW / ALL) at join time. Sources are named in
sandbox/README.md ("GuardDuty organization")."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .awsreq import AwsRequest
from .ecs import page
from .guardduty import (
    FEATURES,
    backend,
    bad_request,
    default_features,
    get_detector_obj,
    merge_features,
    validate_features,
)
from .state import STATE

MAX_ACCOUNTS = 50  # GetMemberDetectors / UpdateMemberDetectors: accountIds 1-50
MAX_MEMBERS_PAGE = 50  # ListMembers: maxResults 1-50, default 50
AUTO_ENABLE = ("NEW", "ALL", "NONE")  # OrgFeatureStatus, AutoEnableMembers
# The answer AWS gives an account that is not the delegated administrator
# (aws-samples/aws-security-reference-architecture-examples#141).
NOT_ADMINISTRATOR = "The request failed because you do not have required AWS Organization master permission."
# UnprocessedAccount.result for an account that is not an associated member
# (aws-samples/aws-security-reference-architecture-examples#151).
NOT_MEMBER = "The request is rejected because the given account ID is not an associated member of account the current account."
# No AWS document quotes this refusal: the code is GuardDuty's only client error; the
# text is the sandbox's (sandbox/README.md says so).
MEMBER_RUNTIME_MONITORING = (
    "The request is rejected because the current account is a member of a GuardDuty organization: "
    "only the delegated administrator account can enable or disable RUNTIME_MONITORING and its "
    "automated agent configuration for it."
)


@dataclass
class Member:
    account: str
    detector_id: str
    invited_at: str
    updated_at: str


@dataclass
class Organization:
    """One administrator's organization in one Region."""

    administrator: str
    region: str
    members: dict[str, Member] = field(default_factory=dict)
    auto_enable_members: str = "NONE"
    # feature -> {"autoEnable": NEW|ALL|NONE, "additional": {name: NEW|ALL|NONE}}
    features: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.features:
            self.features = {
                name: {"autoEnable": "NONE", "additional": {c: "NONE" for c in sorted(additional)}}
                for name, additional in FEATURES.items()
            }


# (administrator, region) -> Organization; (member, region) -> administrator
ORGS: dict[tuple[str, str], Organization] = {}
MEMBER_OF: dict[tuple[str, str], str] = {}


def clear() -> None:
    ORGS.clear()
    MEMBER_OF.clear()


STATE.on_reset.append(clear)


def _iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


def _detector(account: str, region: str) -> Any:
    detectors = list(backend(account, region).detectors.values())
    return detectors[0] if detectors else None


def _state(detector: Any) -> dict[str, Any]:
    state = getattr(detector, "gec_features", None)
    if state is None:
        state = detector.gec_features = default_features()
    return state


def administered(req: AwsRequest) -> Organization:
    """The caller's organization in this Region: the detector must be the caller's, and
    the caller the delegated administrator (else AWS's BadRequestException)."""
    get_detector_obj(req.account, req.region, req.uri_params.get("DetectorId", ""))
    org = ORGS.get((req.account, req.region))
    if org is None:
        raise bad_request(NOT_ADMINISTRATOR)
    return org


def _account_ids(params: dict[str, Any]) -> list[str]:
    """accountIds: 1-50 strings of 12 digits (duplicates answered once, in order)."""
    ids = params.get("accountIds")
    if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_ACCOUNTS:
        raise bad_request(
            f"The request is rejected because accountIds must be a list of 1 to {MAX_ACCOUNTS} account IDs."
        )
    for account in ids:
        if not (isinstance(account, str) and len(account) == 12 and account.isdigit()):
            raise bad_request(
                f"The request is rejected because an invalid or out-of-range value is specified "
                f"as an input parameter: accountId {account!r}."
            )
    return list(dict.fromkeys(ids))


def list_members(req: AwsRequest) -> dict[str, Any]:
    """ListMembers: the caller's associated members by account id, `maxResults` 1-50
    (a query string: a number) and `nextToken`. `onlyAssociated` true/false (every member
    here is associated: `relationshipStatus` Enabled). An account that administers no
    organization has no members: an empty list, as for any account without members."""
    get_detector_obj(req.account, req.region, req.uri_params.get("DetectorId", ""))
    only = str(req.params.get("onlyAssociated", "true")).lower()
    if only not in ("true", "false"):
        raise bad_request(
            "The request is rejected because an invalid or out-of-range value is specified "
            f"for onlyAssociated: {req.params.get('onlyAssociated')!r}."
        )
    params = dict(req.params)
    if "maxResults" in params:
        try:
            params["maxResults"] = int(params["maxResults"])
        except (TypeError, ValueError):
            raise bad_request("The request is rejected because maxResults must be a number.") from None
    org = ORGS.get((req.account, req.region))
    members = [org.members[a] for a in sorted(org.members)] if org else []
    chunk, token = page(
        members,
        params,
        MAX_MEMBERS_PAGE,
        error=lambda m: bad_request(f"The request is rejected because {m}"),
    )
    out: dict[str, Any] = {
        "members": [
            {
                "accountId": m.account,
                "detectorId": m.detector_id,
                "masterId": req.account,
                "administratorId": req.account,
                "email": f"{m.account}@gec-sandbox.invalid",
                "relationshipStatus": "Enabled",
                "invitedAt": m.invited_at,
                "updatedAt": m.updated_at,
            }
            for m in chunk
        ]
    }
    if token:
        out["nextToken"] = token
    return out


ORG_FEATURES = set(FEATURES)  # GetMemberDetectors reports these (OrgFeature), not CLOUD_TRAIL & co.


def _data_sources(state: dict[str, Any]) -> dict[str, Any]:
    def status(name: str) -> dict[str, str]:
        return {"status": state.get(name, {}).get("status", "DISABLED")}

    return {
        "cloudTrail": status("CLOUD_TRAIL"),
        "dnsLogs": status("DNS_LOGS"),
        "flowLogs": status("FLOW_LOGS"),
        "s3Logs": status("S3_DATA_EVENTS"),
        "kubernetes": {"auditLogs": status("EKS_AUDIT_LOGS")},
        "malwareProtection": {"scanEc2InstanceWithFindings": {"ebsVolumes": status("EBS_MALWARE_PROTECTION")}},
    }


def get_member_detectors(req: AwsRequest) -> dict[str, Any]:
    """GetMemberDetectors: each member's detector as `members` (wire name of
    MemberDataSourceConfigurations): `accountId`, `dataSources`, `features` [{name, status,
    updatedAt, additionalConfiguration [{name, status, updatedAt}]}]; accounts that are not
    associated members of the caller go into `unprocessedAccounts`."""
    get_detector_obj(req.account, req.region, req.uri_params.get("DetectorId", ""))
    ids = _account_ids(req.params)
    org = ORGS.get((req.account, req.region))
    members, unprocessed = [], []
    for account in ids:
        member = org.members.get(account) if org else None
        detector = _detector(account, req.region) if member else None
        if detector is None:
            unprocessed.append({"accountId": account, "result": NOT_MEMBER})
            continue
        state = _state(detector)
        features = []
        for name, feature in state.items():
            if name not in ORG_FEATURES:
                continue
            item: dict[str, Any] = {"name": name, "status": feature["status"], "updatedAt": feature["updatedAt"]}
            if feature["additional"]:
                item["additionalConfiguration"] = [
                    {"name": c, "status": v["status"], "updatedAt": v["updatedAt"]}
                    for c, v in feature["additional"].items()
                ]
            features.append(item)
        members.append({"accountId": account, "dataSources": _data_sources(state), "features": features})
    return {"members": members, "unprocessedAccounts": unprocessed}


def update_member_detectors(req: AwsRequest) -> dict[str, Any]:
    """UpdateMemberDetectors: `features` validated and merged into each member's detector
    exactly as UpdateDetector merges (per feature, per additional configuration); accounts
    that are not associated members go into `unprocessedAccounts` and are not changed. A
    rejected request changes nothing. `dataSources` (legacy) is accepted and not modelled."""
    get_detector_obj(req.account, req.region, req.uri_params.get("DetectorId", ""))
    ids = _account_ids(req.params)
    features = validate_features(req.params.get("features"))
    org = ORGS.get((req.account, req.region))
    unprocessed = []
    for account in ids:
        member = org.members.get(account) if org else None
        detector = _detector(account, req.region) if member else None
        if detector is None:
            unprocessed.append({"accountId": account, "result": NOT_MEMBER})
            continue
        merge_features(_state(detector), features)
    return {"unprocessedAccounts": unprocessed}


def describe_organization_configuration(req: AwsRequest) -> dict[str, Any]:
    """DescribeOrganizationConfiguration: `autoEnableOrganizationMembers`, the deprecated
    `autoEnable` (true unless NONE), `memberAccountLimitReached` false, `features` [{name,
    autoEnable, additionalConfiguration [{name, autoEnable}]}] for every feature (NONE until
    set). `maxResults` 1-50 is checked; the features always fit one page."""
    org = administered(req)
    size = req.params.get("maxResults")
    if size is not None:
        try:
            ok = 1 <= int(size) <= 50
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise bad_request("The request is rejected because maxResults must be between 1 and 50.")
    features = []
    for name, feature in org.features.items():
        item: dict[str, Any] = {"name": name, "autoEnable": feature["autoEnable"]}
        if feature["additional"]:
            item["additionalConfiguration"] = [
                {"name": c, "autoEnable": v} for c, v in feature["additional"].items()
            ]
        features.append(item)
    return {
        "autoEnable": org.auto_enable_members != "NONE",
        "autoEnableOrganizationMembers": org.auto_enable_members,
        "memberAccountLimitReached": False,
        "features": features,
    }


def _validate_org_features(features: Any) -> list[dict[str, Any]]:
    """OrganizationFeatureConfiguration: as a detector's features, with `autoEnable`
    NEW | ALL | NONE in place of a status (API reference, UpdateOrganizationConfiguration)."""
    return validate_features(features, key="autoEnable", allowed=AUTO_ENABLE)


def update_organization_configuration(req: AwsRequest) -> dict[str, Any]:
    """UpdateOrganizationConfiguration: exactly one of `autoEnableOrganizationMembers` and
    the deprecated `autoEnable` ("You must provide a value for either ... but not both");
    `features` merged per feature and per additional configuration (a feature left out
    keeps its setting). A feature or additional configuration set to ALL is enabled at
    once in every existing member's detector; NEW and NONE change no existing member."""
    org = administered(req)
    members, legacy = req.params.get("autoEnableOrganizationMembers"), req.params.get("autoEnable")
    if (members is None) == (legacy is None):
        raise bad_request(
            "The request is rejected because you must provide a value for either "
            "autoEnableOrganizationMembers or autoEnable, but not both."
        )
    if members is not None and members not in AUTO_ENABLE:
        raise bad_request(
            f"The request is rejected because an invalid or out-of-range value is specified "
            f"for autoEnableOrganizationMembers: {members!r}. Valid values: NEW, ALL, NONE"
        )
    if legacy is not None and not isinstance(legacy, bool):
        raise bad_request("The request is rejected because autoEnable must be a boolean.")
    features = _validate_org_features(req.params.get("features"))
    # Valid: apply.
    org.auto_enable_members = members if members is not None else ("NEW" if legacy else "NONE")
    enable_now: list[tuple[str, bool, list[str]]] = []
    for feature in features:
        current = org.features[feature["name"]]
        current["autoEnable"] = feature["autoEnable"]
        confs = []
        for conf in feature.get("additionalConfiguration") or []:
            current["additional"][conf["name"]] = conf["autoEnable"]
            if conf["autoEnable"] == "ALL":
                confs.append(conf["name"])
        if feature["autoEnable"] == "ALL" or confs:
            enable_now.append((feature["name"], feature["autoEnable"] == "ALL", confs))
    for account in org.members:
        detector = _detector(account, org.region)
        if detector is not None:
            _enable(_state(detector), enable_now)
    return {}


def _enable(state: dict[str, Any], changes: list[tuple[str, bool, list[str]]]) -> None:
    """Turn on features (when the flag says so) and additional configurations, as
    UpdateMemberDetectors would (same merge, same timestamps)."""
    from .awsreq import now

    t = now()
    for name, feature_on, confs in changes:
        current = state.setdefault(name, {"status": "DISABLED", "updatedAt": t, "additional": {}})
        if feature_on:
            current["status"], current["updatedAt"] = "ENABLED", t
        for conf in confs:
            current["additional"][conf] = {"status": "ENABLED", "updatedAt": t}


def at_join(org: Organization) -> list[tuple[str, bool, list[str]]]:
    """What GuardDuty turns on for an account that joins now: every feature and additional
    configuration whose auto-enable is NEW or ALL."""
    out = []
    for name, feature in org.features.items():
        feature_on = feature["autoEnable"] in ("NEW", "ALL")
        confs = [c for c, v in feature["additional"].items() if v in ("NEW", "ALL")]
        if feature_on or confs:
            out.append((name, feature_on, confs))
    return out


def refuse_member_runtime_monitoring(req: AwsRequest) -> None:
    """A member account's UpdateDetector that names RUNTIME_MONITORING (its status or any
    of its additional configurations): BadRequestException, nothing changes. GuardDuty UG
    managing-gdu-agent-ecs-automated: "only the delegated GuardDuty administrator account
    can enable or disable automated agent configuration for the member accounts ... A
    GuardDuty member account can't modify this configuration"."""
    if (req.account, req.region) not in MEMBER_OF:
        return
    features = req.params.get("features")
    if isinstance(features, list) and any(
        isinstance(f, dict) and f.get("name") == "RUNTIME_MONITORING" for f in features
    ):
        raise bad_request(MEMBER_RUNTIME_MONITORING)


def members_of(account: str, region: str) -> list[tuple[str, str]]:
    """(member, its detector id) of the organization `account` administers in `region`."""
    org = ORGS.get((account, region))
    if org is None:
        return []
    return [(m.account, m.detector_id) for _, m in sorted(org.members.items())]


JOIN_KEYS = {"administrator", "account", "regions"}
ADMIN_KEYS = {"account", "regions"}


def _account_arg(payload: dict[str, Any], key: str) -> str:
    value = payload.get(key)
    if not (isinstance(value, str) and len(value) == 12 and value.isdigit()):
        raise ValueError(f"{key} must be a 12-digit account id string")
    return value


def _regions(payload: dict[str, Any]) -> list[str]:
    regions = payload.get("regions")
    if not isinstance(regions, list) or not regions or not all(isinstance(r, str) and r for r in regions):
        raise ValueError("regions must be a non-empty list of Region names")
    return list(dict.fromkeys(regions))


def administrator(payload: Any) -> dict[str, Any]:
    """POST /_sandbox/organization/administrator: `account` becomes the delegated
    administrator in each of `regions` (it needs a detector there), with no members yet.
    Idempotent; a member there is a 400 and nothing changes."""
    if not isinstance(payload, dict) or set(payload) - ADMIN_KEYS:
        raise ValueError(f"takes only {sorted(ADMIN_KEYS)}")
    admin, regions = _account_arg(payload, "account"), _regions(payload)
    for region in regions:
        if _detector(admin, region) is None:
            raise ValueError(f"administrator {admin} has no detector in {region}")
        if (admin, region) in MEMBER_OF:
            raise ValueError(f"{admin} is a member of {MEMBER_OF[(admin, region)]} in {region}")
    for region in regions:
        ORGS.setdefault((admin, region), Organization(admin, region))
    return {"administrator": admin, "regions": regions}


def join(payload: Any) -> dict[str, Any]:
    """POST /_sandbox/organization/members: `account` joins `administrator`'s organization
    in each of `regions`. The administrator needs a detector in each Region; the account
    gets one (CreateDetector defaults) where it has none. At join, every feature and
    additional configuration whose auto-enable is NEW or ALL is enabled in the account's
    detector (CreateMembers as a delegated administrator "applies your organization's
    auto-enable settings"). An account already a member of this administrator there is
    left as it is; a member of another administrator is a 400. All checked first: a 400
    changes nothing."""
    from .guardduty import create

    if not isinstance(payload, dict) or set(payload) - JOIN_KEYS:
        raise ValueError(f"takes only {sorted(JOIN_KEYS)}")
    admin, account = _account_arg(payload, "administrator"), _account_arg(payload, "account")
    if admin == account:
        raise ValueError("an administrator cannot be its own member")
    regions = _regions(payload)
    for region in regions:
        if _detector(admin, region) is None:
            raise ValueError(f"administrator {admin} has no detector in {region}")
        if (admin, region) in MEMBER_OF:
            raise ValueError(f"{admin} is a member of {MEMBER_OF[(admin, region)]} in {region}")
        other = MEMBER_OF.get((account, region))
        if other is not None and other != admin:
            raise ValueError(f"{account} is already a member of {other} in {region}")
        if (account, region) in ORGS:
            raise ValueError(f"{account} is a delegated administrator in {region}")
    out: dict[str, Any] = {}
    for region in regions:
        org = ORGS.setdefault((admin, region), Organization(admin, region))
        detector = _detector(account, region)
        created = detector is None
        if created:
            create(account, region, {"enable": True})
            detector = _detector(account, region)
        result: dict[str, Any] = {"detectorId": detector.id, "created": created, "joined": False, "enabled": []}
        if account not in org.members:
            stamp = _iso()
            org.members[account] = Member(account, detector.id, stamp, stamp)
            MEMBER_OF[(account, region)] = admin
            changes = at_join(org)
            _enable(_state(detector), changes)
            result["joined"] = True
            for name, feature_on, confs in changes:
                result["enabled"] += ([name] if feature_on else []) + [f"{name}/{c}" for c in confs]
        out[region] = result
    return {"administrator": admin, "account": account, "regions": out}


HANDLERS = {
    ("guardduty", "ListMembers"): list_members,
    ("guardduty", "GetMemberDetectors"): get_member_detectors,
    ("guardduty", "UpdateMemberDetectors"): update_member_detectors,
    ("guardduty", "DescribeOrganizationConfiguration"): describe_organization_configuration,
    ("guardduty", "UpdateOrganizationConfiguration"): update_organization_configuration,
}

