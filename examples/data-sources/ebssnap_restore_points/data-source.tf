# The restore points of a database volume, newest first.
data "ebssnap_restore_points" "db" {
  volume_id = "vol-0abc123def4567890"
  policy    = "std"
}

# A copy of the database volume from its newest completed restore point.
resource "aws_ebs_volume" "db_restored" {
  availability_zone = "us-east-1a"
  snapshot_id       = data.ebssnap_restore_points.db.newest.snapshot_id
  type              = "gp3"

  tags = {
    Name = "db restored from ${data.ebssnap_restore_points.db.newest.run}"
  }
}
