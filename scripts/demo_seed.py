"""Seeds the demo fleet in the local emulator and stores the demo policy and targets.

Storing the documents in EventBridge Scheduler is what the Terraform provider does on apply;
until the provider lands, this script writes the same documents (DESIGN.md section 3).
"""
import json
import sys

import boto3

endpoint = sys.argv[1]
kw = dict(endpoint_url=endpoint, region_name="us-east-1",
          aws_access_key_id="testing", aws_secret_access_key="testing")
ec2 = boto3.client("ec2", **kw)
asg = boto3.client("autoscaling", **kw)
scheduler = boto3.client("scheduler", **kw)
AMI = "ami-12345678"


def tags(rt, d):
    return [{"ResourceType": rt, "Tags": [{"Key": k, "Value": v} for k, v in d.items()]}]


def instance(name, extra):
    r = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                          TagSpecifications=tags("instance", {"Name": name, **extra}))
    return r["Instances"][0]["InstanceId"]


db1 = instance("db-1", {"Env": "prod"})
data = ec2.create_volume(AvailabilityZone="us-east-1a", Size=100,
                         TagSpecifications=tags("volume", {"Role": "data", "CostCenter": "42",
                                                           "aws:backup:source": "skipped"}))
ec2.attach_volume(VolumeId=data["VolumeId"], InstanceId=db1, Device="/dev/sdf")
instance("db-2", {"Env": "prod"})
ec2.create_launch_template(LaunchTemplateName="web",
                           LaunchTemplateData={"ImageId": AMI, "InstanceType": "t3.micro"})
asg.create_auto_scaling_group(AutoScalingGroupName="web-prod", LaunchTemplate={"LaunchTemplateName": "web"},
                              MinSize=2, MaxSize=2, DesiredCapacity=2, AvailabilityZones=["us-east-1a"])
ec2.create_volume(AvailabilityZone="us-east-1a", Size=20, TagSpecifications=tags("volume", {"Backup": "nightly"}))

policy = {"ebssnap": 1, "kind": "policy", "policy": "std",
          "retention": {"days": 14, "min_snapshots": 3, "max_snapshots": None},
          "tags": {"copy_volume_tags": True, "copy_instance_tags": False, "extra": {"Backup": "ebssnap"}}}
targets = [
    {"ebssnap": 1, "kind": "target", "policy": "std", "target": "web",
     "select": {"asg_names": ["web-prod"], "instance_names": ["db-*"]}},
    {"ebssnap": 1, "kind": "target", "policy": "std", "target": "nightly",
     "select": {"volume_tags": {"Backup": "nightly"}}},
]
scheduler.create_schedule_group(Name="ebssnap-std")
for name, doc, expr in [("_policy", policy, "rate(1 day)")] + [(t["target"], t, "cron(0 5 * * ? *)") for t in targets]:
    scheduler.create_schedule(
        GroupName="ebssnap-std", Name=name, ScheduleExpression=expr, ScheduleExpressionTimezone="Europe/London",
        FlexibleTimeWindow={"Mode": "OFF"}, State="ENABLED",
        Target={"Arn": "arn:aws:lambda:us-east-1:123456789012:function:ebssnap",
                "RoleArn": "arn:aws:iam::123456789012:role/ebssnap-scheduler", "Input": json.dumps(doc)})
print("seeded: 5 instances (db-1, db-2, 2 in ASG web-prod, ...), a data volume, a detached volume;"
      " policy std with targets web and nightly")
