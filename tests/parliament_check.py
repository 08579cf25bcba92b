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

Sharing restore points with vault accounts needs `ec2:ModifySnapshotAttribute`, which the same
auditor reports as permissions management. It is dropped likewise only when every Allow statement
granting it is limited to `ec2:Attribute` = `createVolumePermission` and to named accounts
(`ec2:Add/userId` with StringEquals, no wildcard): the runner can add exactly the vault accounts
and nothing else.
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


def shares_only_with_named_accounts(policy):
    """Every Allow statement with ec2:ModifySnapshotAttribute adds only named accounts' create
    volume permission."""
    found = False
    for st in as_list(policy.get("Statement", [])):
        if st.get("Effect") != "Allow" or "ec2:ModifySnapshotAttribute" not in as_list(
            st.get("Action", [])
        ):
            continue
        found = True
        eq = st.get("Condition", {}).get("StringEquals", {})
        accounts = as_list(eq.get("ec2:Add/userId", []))
        if eq.get("ec2:Attribute") != "createVolumePermission" or not accounts:
            return False
        if any(not (isinstance(a, str) and a.isdigit() and len(a) == 12) for a in accounts):
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
        if f.issue == "PERMISSIONS_MANAGEMENT_ACTIONS":
            justified = set()
            if grants_only_for_aws_resources(policy):
                justified.add("kms:creategrant")
            if shares_only_with_named_accounts(policy):
                justified.add("ec2:modifysnapshotattribute")
            actions = [a.lower() for a in (f.location or {}).get("actions", [])]
            if actions and all(a in justified for a in actions):
                continue
        print(json.dumps({"issue": f.issue, "detail": detail, "location": f.location}, default=str))


if __name__ == "__main__":
    main()
