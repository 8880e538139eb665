"""GuardDuty detector extensions: `Features` merged and validated like AWS, one
detector per account and region, and `GetDetector` features in GuardDuty's wire format.

The detector itself stays moto's (`moto.guardduty.models.Detector`); its features live
in `detector.gec_features`: {feature: {"status", "updatedAt", "additional": {name:
{"status", "updatedAt"}}}}. Coverage (ListCoverage, GetCoverageStatistics) is in
`coverage.py`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .awsreq import AwsError, AwsRequest, now

# GuardDuty API reference, DetectorFeatureConfiguration / DetectorAdditionalConfiguration:
# the values UpdateDetector and CreateDetector accept, and which additional
# configuration belongs to which feature.
FEATURES: dict[str, set[str]] = {
    "S3_DATA_EVENTS": set(),
    "EKS_AUDIT_LOGS": set(),
    "EBS_MALWARE_PROTECTION": set(),
    "RDS_LOGIN_EVENTS": set(),
    "LAMBDA_NETWORK_LOGS": set(),
    "EKS_RUNTIME_MONITORING": {"EKS_ADDON_MANAGEMENT"},
    "RUNTIME_MONITORING": {
        "EKS_ADDON_MANAGEMENT",
        "ECS_FARGATE_AGENT_MANAGEMENT",
        "EC2_AGENT_MANAGEMENT",
    },
}
ADDITIONAL = {"EKS_ADDON_MANAGEMENT", "ECS_FARGATE_AGENT_MANAGEMENT", "EC2_AGENT_MANAGEMENT"}
STATUSES = {"ENABLED", "DISABLED"}
# Reported by GetDetector but not settable through Features (foundational data sources).
FOUNDATIONAL = ("CLOUD_TRAIL", "DNS_LOGS", "FLOW_LOGS")

DETECTOR_EXISTS = "The request is rejected because a detector already exists for the current account."
NOT_OWNED = "The request is rejected because the input detectorId is not owned by the current account."


def backend(account: str, region: str) -> Any:
    from moto.guardduty.models import guardduty_backends

    return guardduty_backends[account][region]


def bad_request(message: str) -> AwsError:
    return AwsError("BadRequestException", message)


def get_detector_obj(account: str, region: str, detector_id: str) -> Any:
    detector = backend(account, region).detectors.get(detector_id)
    if detector is None:
        raise bad_request(NOT_OWNED)
    return detector


def validate_features(features: Any, key: str = "status", allowed: tuple[str, ...] = ("ENABLED", "DISABLED")) -> list[dict[str, Any]]:
    """AWS rejects unknown names and values, additional configurations of another
    feature, and EKS_RUNTIME_MONITORING together with RUNTIME_MONITORING. `key` is the
    value each entry carries: `status` (ENABLED | DISABLED; UpdateDetector,
    UpdateMemberDetectors: DetectorFeatureConfiguration) or `autoEnable` (NEW | ALL | NONE;
    UpdateOrganizationConfiguration: OrganizationFeatureConfiguration)."""
    if features is None:
        return []
    if not isinstance(features, list) or not all(isinstance(f, dict) for f in features):
        raise bad_request("The request is rejected because features must be a list of objects.")
    names = [f.get("name") for f in features]
    if "EKS_RUNTIME_MONITORING" in names and "RUNTIME_MONITORING" in names:
        raise bad_request(
            "The request is rejected because EKS_RUNTIME_MONITORING and RUNTIME_MONITORING "
            "cannot be specified together. RUNTIME_MONITORING already includes EKS Runtime Monitoring."
        )
    valid = ", ".join(allowed)
    for feature in features:
        name = feature.get("name")
        if name not in FEATURES:
            raise bad_request(
                f"The request is rejected because an invalid or out-of-range value is specified "
                f"for feature name: {name!r}. Valid values: {sorted(FEATURES)}"
            )
        if feature.get(key) not in allowed:
            raise bad_request(
                f"The request is rejected because an invalid or out-of-range value is specified "
                f"for the {key} of feature {name}: {feature.get(key)!r}. Valid values: {valid}"
            )
        confs = feature.get("additionalConfiguration") or []
        if not isinstance(confs, list):
            raise bad_request("The request is rejected because additionalConfiguration must be a list.")
        for conf in confs:
            conf_name = conf.get("name") if isinstance(conf, dict) else None
            if conf_name not in ADDITIONAL:
                raise bad_request(
                    f"The request is rejected because an invalid or out-of-range value is specified "
                    f"for additional configuration name: {conf_name!r}. Valid values: {sorted(ADDITIONAL)}"
                )
            if conf_name not in FEATURES[name]:
                raise bad_request(
                    f"The request is rejected because additional configuration {conf_name} "
                    f"is not supported for feature {name}."
                )
            if conf.get(key) not in allowed:
                raise bad_request(
                    f"The request is rejected because an invalid or out-of-range value is specified "
                    f"for the {key} of additional configuration {conf_name}: {conf.get(key)!r}. "
                    f"Valid values: {valid}"
                )
    return features


def default_features() -> dict[str, Any]:
    """What a new detector reports when CreateDetector names no features: the
    foundational sources ENABLED, every protection plan DISABLED, and each additional
    configuration DISABLED."""
    t = now()
    result: dict[str, Any] = {}
    for name in (*FOUNDATIONAL, *FEATURES):
        status = "ENABLED" if name in FOUNDATIONAL else "DISABLED"
        additional = {c: {"status": "DISABLED", "updatedAt": t} for c in sorted(FEATURES.get(name, ()))}
        result[name] = {"status": status, "updatedAt": t, "additional": additional}
    return result


def merge_features(state: dict[str, Any], features: list[dict[str, Any]]) -> None:
    """UpdateDetector changes only the features and additional configurations named in
    the request; everything else keeps its value (moto replaces the whole list)."""
    t = now()
    for feature in features:
        current = state.setdefault(feature["name"], {"status": "DISABLED", "updatedAt": t, "additional": {}})
        current["status"], current["updatedAt"] = feature["status"], t
        for conf in feature.get("additionalConfiguration") or []:
            current["additional"][conf["name"]] = {"status": conf["status"], "updatedAt": t}


def features_json(state: dict[str, Any]) -> list[dict[str, Any]]:
    """GetDetector `features` with GuardDuty's lowerCamel wire names and epoch-second
    numbers for the `Timestamp` members."""
    out = []
    for name, feature in state.items():
        item: dict[str, Any] = {"name": name, "status": feature["status"], "updatedAt": feature["updatedAt"]}
        if feature["additional"]:
            item["additionalConfiguration"] = [
                {"name": c, "status": v["status"], "updatedAt": v["updatedAt"]}
                for c, v in feature["additional"].items()
            ]
        out.append(item)
    return out


def create_detector(req: AwsRequest) -> dict[str, Any]:
    """CreateDetector: one detector per account and Region (GuardDuty API reference,
    CreateDetector: "You can have only one detector per account per Region")."""
    return {"detectorId": create(req.account, req.region, req.params)}


def create(account: str, region: str, params: dict[str, Any]) -> str:
    gd = backend(account, region)
    if gd.detectors:
        raise bad_request(DETECTOR_EXISTS)
    features = validate_features(params.get("features"))
    enable = params.get("enable")
    if not isinstance(enable, bool):
        raise bad_request("The request is rejected because enable is a required boolean parameter.")
    detector_id = gd.create_detector(
        enable,
        params.get("findingPublishingFrequency"),
        params.get("dataSources"),
        params.get("tags"),
        [],
    )
    detector = gd.detectors[detector_id]
    detector.gec_features = default_features()
    merge_features(detector.gec_features, features)
    return detector_id


def update_detector(req: AwsRequest) -> dict[str, Any]:
    """UpdateDetector with per-feature / per-additional-configuration merge. A member of a
    GuardDuty organization may not change RUNTIME_MONITORING (`organization.py`)."""
    from .organization import refuse_member_runtime_monitoring

    get_detector_obj(req.account, req.region, req.uri_params.get("DetectorId", ""))
    refuse_member_runtime_monitoring(req)
    update(req.account, req.region, req.uri_params.get("DetectorId", ""), req.params)
    return {}


def update(account: str, region: str, detector_id: str, params: dict[str, Any]) -> None:
    detector = get_detector_obj(account, region, detector_id)
    features = validate_features(params.get("features"))
    detector.update(
        params.get("enable"), params.get("findingPublishingFrequency"), params.get("dataSources"), None
    )
    state = getattr(detector, "gec_features", None)
    if state is None:
        state = detector.gec_features = default_features()
    merge_features(state, features)
    detector.updated_at = datetime.now()


def get_detector(req: AwsRequest) -> dict[str, Any]:
    """GetDetector with `features` as GuardDuty returns them (timestamps as numbers)."""
    detector = get_detector_obj(req.account, req.region, req.uri_params.get("DetectorId", ""))
    body = detector.to_json()
    state = getattr(detector, "gec_features", None)
    if state is None:
        state = detector.gec_features = default_features()
    body["features"] = features_json(state)
    return body


def feature_status(detector: Any, feature: str, additional: str | None = None) -> str:
    state = getattr(detector, "gec_features", None) or default_features()
    entry = state.get(feature, {"status": "DISABLED", "additional": {}})
    if additional is None:
        return entry["status"]
    return entry["additional"].get(additional, {}).get("status", "DISABLED")


HANDLERS = {
    ("guardduty", "CreateDetector"): create_detector,
    ("guardduty", "UpdateDetector"): update_detector,
    ("guardduty", "GetDetector"): get_detector,
}
