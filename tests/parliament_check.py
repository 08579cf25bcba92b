"""Audits one IAM identity policy with parliament; prints each finding as one JSON line.

Usage: python tests/parliament_check.py '<policy JSON>'   (exit 0 either way; findings on stdout)

Parliament checks every statement on its own, so AWS's documented way of granting one action over
several statements (CreateSnapshot on volumes without a condition, and on snapshots only with a
request-tag condition) reads as RESOURCE_MISMATCH: duo-labs/parliament#3, open since 2019. Such a
finding is kept here only for the (action, required resource) pairs that no Allow statement of the
policy grants; every other finding is reported as parliament reports it.
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
        print(json.dumps({"issue": f.issue, "detail": detail, "location": f.location}, default=str))


if __name__ == "__main__":
    main()
