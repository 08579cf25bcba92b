"""The baseline of the wall-time benchmark: a plain, sequential boto3 script doing the runner's
job for one target (select by Name glob, snapshot with tags, list, delete beyond the newest
`keep`), the way a simple in-house tool (or ebs_snapper) would.

Usage: bench_baseline.py ENDPOINT NAME_GLOB RUN_KEY KEEP
"""
import sys
import time

import boto3

endpoint, glob, run_key, keep = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ec2 = boto3.client("ec2", endpoint_url=endpoint, region_name="us-east-1",
                   aws_access_key_id="testing", aws_secret_access_key="testing")
t0 = time.time()
calls = {"DescribeInstances": 0, "DescribeVolumes": 0, "DescribeSnapshots": 0, "CreateSnapshot": 0, "DeleteSnapshot": 0}

instances = []
for page in ec2.get_paginator("describe_instances").paginate(
        Filters=[{"Name": "tag:Name", "Values": [glob]},
                 {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}]):
    calls["DescribeInstances"] += 1
    instances += [i["InstanceId"] for r in page["Reservations"] for i in r["Instances"]]

volumes = []
for i in range(0, len(instances), 200):
    for page in ec2.get_paginator("describe_volumes").paginate(
            Filters=[{"Name": "attachment.instance-id", "Values": instances[i:i + 200]}]):
        calls["DescribeVolumes"] += 1
        volumes += page["Volumes"]

for v in volumes:
    tags = [{"Key": "ebssnap:policy", "Value": "base"}, {"Key": "ebssnap:target", "Value": "base"},
            {"Key": "ebssnap:run", "Value": run_key}, {"Key": "ebssnap:volume", "Value": v["VolumeId"]}]
    tags += [t for t in v.get("Tags", []) if not t["Key"].startswith(("aws:", "ebssnap:"))][:46]
    ec2.create_snapshot(VolumeId=v["VolumeId"], TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags}])
    calls["CreateSnapshot"] += 1

by_volume = {}
for page in ec2.get_paginator("describe_snapshots").paginate(
        OwnerIds=["self"], Filters=[{"Name": "tag:ebssnap:policy", "Values": ["base"]}]):
    calls["DescribeSnapshots"] += 1
    for s in page["Snapshots"]:
        by_volume.setdefault(s["VolumeId"], []).append(s)
for snaps in by_volume.values():
    snaps.sort(key=lambda s: (s["StartTime"], s["SnapshotId"]), reverse=True)
    for s in snaps[keep:]:
        ec2.delete_snapshot(SnapshotId=s["SnapshotId"])
        calls["DeleteSnapshot"] += 1

print(f"{time.time() - t0:.3f} " + " ".join(f"{k}={v}" for k, v in calls.items()))
