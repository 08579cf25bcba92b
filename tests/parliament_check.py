"""Audits one IAM identity policy with parliament; prints each finding as one JSON line.

Usage: python tests/parliament_check.py '<policy JSON>'   (exit 0 either way; findings on stdout)

Parliament checks every statement on its own, so AWS's documented way of granting one action over
several statements (CreateSnapshot on volumes without a condition, and on snapshots only with a
request-tag condition) reads as RESOURCE_MISMATCH: duo-labs/parliament#3, open since 2019. Such a
finding is kept here only for the (action, required resource) pairs that no Allow statement of the
policy grants.

Parliament's community auditor also reports every `kms:CreateGrant` as a permissions-management
action, whatever its conditions. EBS needs that grant to encrypt copies under a customer key, and
AWS's documented way to limit it is `kms:GrantIsForAWSResource = true` (only AWS services acting
for the caller may use the grant) with `kms:ViaService`. That one finding is dropped only when
every Allow statement granting `kms:CreateGrant` carries both conditions; every other finding is
reported as parliament reports it.
"""

import fnmatch
import json
import sys

from parliament import analyze_policy_string


def as_list(v):
    return v if isinstance(v, list) else [v]


def covers(resource, arn_format):
    if resource == "*":
        return True
    r, f = resource.split(":", 5), arn_format.split(":", 5)
    if len(r) != 6 or len(f) != 6:
        return False
    return all(
        fnmatch.fnmatchcase(a, b) or fnmatch.fnmatchcase(b, a) for a, b in zip(r, f)
    )


def granted(policy, action, arn_format):
    for st in as_list(policy.get("Statement", [])):
        if st.get("Effect") != "Allow":
            continue
        if action not in as_list(st.get("Action", [])):
            continue
        if any(covers(r, arn_format) for r in as_list(st.get("Resource", []))):
            return True
    return False


def grants_only_for_aws_resources(policy):
    """Every Allow statement with kms:CreateGrant limits it to AWS resources through EC2."""
    found = False
    for st in as_list(policy.get("Statement", [])):
        if st.get("Effect") != "Allow" or "kms:CreateGrant" not in as_list(st.get("Action", [])):
            continue
        found = True
        cond = st.get("Condition", {})
        for_aws = str(cond.get("Bool", {}).get("kms:GrantIsForAWSResource", "")).lower() == "true"
        via = any("kms:ViaService" in cond.get(op, {}) for op in ("StringEquals", "StringLike"))
        if not (for_aws and via):
            return False
    return found


def main():
    text = sys.argv[1]
    policy = json.loads(text)
    analyzed = analyze_policy_string(text, include_community_auditors=True)
    for f in analyzed.findings:
        detail = f.detail
        if f.issue == "RESOURCE_MISMATCH" and isinstance(detail, list):
            detail = [
                d
                for d in detail
                if not granted(policy, d.get("action"), d.get("required_format", ""))
            ]
            if not detail:
                continue
        if (
            f.issue == "PERMISSIONS_MANAGEMENT_ACTIONS"
            and [a.lower() for a in (f.location or {}).get("actions", [])] == ["kms:creategrant"]
            and grants_only_for_aws_resources(policy)
        ):
            continue
        print(json.dumps({"issue": f.issue, "detail": detail, "location": f.location}, default=str))


if __name__ == "__main__":
    main()
