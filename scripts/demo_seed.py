"""Seeds the demo fleet in the local emulator: named instances, an Auto Scaling group, volumes."""
import sys

import boto3

endpoint = sys.argv[1]
kw = dict(endpoint_url=endpoint, region_name="us-east-1",
          aws_access_key_id="testing", aws_secret_access_key="testing")
ec2 = boto3.client("ec2", **kw)
asg = boto3.client("autoscaling", **kw)
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

legacy = ec2.create_volume(AvailabilityZone="us-east-1a", Size=50,
                           TagSpecifications=tags("volume", {"Backup": "nightly", "App": "legacy"}))
with open(sys.argv[2], "w") as f:  # the volume the demo's fault proxy will refuse to snapshot
    f.write(legacy["VolumeId"])
print("seeded: instances db-1 (with a data volume) and db-2, ASG web-prod (2 instances),"
      " two detached volumes tagged Backup=nightly (one will fail)")
