resource "ebssnap_target" "web" {
  policy   = ebssnap_policy.std.name
  name     = "web"
  schedule = "cron(0 3 * * ? *)"
  timezone = "America/Chicago"

  # A union: the group's instances plus every instance named db-*.
  select {
    asg_names      = ["web-prod"]
    instance_names = ["db-*"]
  }

  exclude {
    volume_tags = {
      NoBackup = "*"
    }
  }

  retention_days = 30
}
