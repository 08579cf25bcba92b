# The quickstart: one policy, two targets and a preview of what they select.
# `make demo` applies it against a local AWS emulator; against AWS, set runner_arn and
# scheduler_role_arn to your runner Lambda and Scheduler role (docs/guides/getting-started.md).

terraform {
  required_providers {
    ebssnap = {
      source = "rackerlabs/ebssnap"
    }
  }
}

variable "runner_arn" {
  type    = string
  default = "arn:aws:lambda:us-east-1:123456789012:function:ebssnap-runner"
}

variable "failure_webhook_secret_arn" {
  type        = string
  default     = null
  description = "Secrets Manager secret {\"url\": ..., \"signing_secret\": ...}: where failure tickets go and how they are signed."
}

variable "scheduler_role_arn" {
  type    = string
  default = "arn:aws:iam::123456789012:role/ebssnap-scheduler"
}

provider "ebssnap" {
  runner_arn         = var.runner_arn
  scheduler_role_arn = var.scheduler_role_arn
  default_timezone   = "Europe/London"
  default_tags = {
    ManagedBy = "terraform"
  }
}

resource "ebssnap_policy" "std" {
  name           = "std"
  description    = "Two weeks, never fewer than 3 snapshots per volume"
  retention_days = 14
  min_snapshots  = 3
  snapshot_tags = {
    Backup = "ebssnap"
  }
  failure_webhook_secret_arn = var.failure_webhook_secret_arn
}

# The web tier (a whole Auto Scaling group) and the databases (by Name glob), nightly.
resource "ebssnap_target" "web" {
  policy   = ebssnap_policy.std.name
  name     = "web"
  schedule = "cron(0 5 * * ? *)"

  # Sources in a select block are a union: the group's instances plus every db-* instance.
  select {
    asg_names      = ["web-prod"]
    instance_names = ["db-*"]
  }
}

# Any volume tagged Backup=nightly, attached or not, kept 30 days.
resource "ebssnap_target" "nightly" {
  policy         = ebssnap_policy.std.name
  name           = "nightly"
  schedule       = "cron(30 1 * * ? *)"
  timezone       = "America/Chicago"
  retention_days = 30

  # One source: volumes carrying the tag (a select block's sources are a union).
  select {
    volume_tags = {
      Backup = "nightly"
    }
  }
}

# What the web target selects right now (the same union as its select block).
data "ebssnap_volumes" "web" {
  select {
    asg_names      = ["web-prod"]
    instance_names = ["db-*"]
  }
}

output "web_volume_ids" {
  value = data.ebssnap_volumes.web.volume_ids
}
