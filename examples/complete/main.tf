# A complete ebssnap deployment: the runner Lambda from the release bundle, its role and the
# Scheduler role from ebssnap_iam_policy, a dead-letter queue, failure tickets to a webhook kept
# in Secrets Manager and to an SNS topic, an alarm on the runner's metrics, a policy and two
# targets.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
    ebssnap = {
      source  = "rackerlabs/ebssnap"
      version = "~> 0.1"
    }
  }
}

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "runner_zip" {
  type        = string
  description = "Path to ebssnap-runner_<version>_lambda_x86_64.zip from the release."
}

variable "webhook_url" {
  type        = string
  description = "Where failure tickets go (https; may carry a token: it is kept in Secrets Manager)."
  sensitive   = true
}

variable "webhook_secret" {
  type        = string
  description = "HMAC key the runner signs tickets with (kept in Secrets Manager with the URL)."
  sensitive   = true
}

variable "dr_region" {
  type        = string
  default     = "us-west-2"
  description = "Where the restore points are copied for disaster recovery (not var.region)."
}

variable "vault_account_id" {
  type        = string
  description = "A backup vault account that may create volumes from the restore points."
}

variable "alarm_email" {
  type        = string
  description = "Who the SNS topic (tickets and the alarm) e-mails."
}

provider "aws" {
  region = var.region
}

# --- IAM: exactly what the runner and Scheduler need -------------------------------------

data "aws_caller_identity" "current" {}

locals {
  runner_name = "ebssnap-runner"
  # Built from its parts, not read from the function: the function needs its role, whose trust
  # policy comes from the data source below, which needs the ARN (a cycle otherwise).
  runner_arn = "arn:aws:lambda:${var.region}:${data.aws_caller_identity.current.account_id}:function:${local.runner_name}"
}

data "ebssnap_iam_policy" "this" {
  runner_arn          = local.runner_arn
  policy_names        = ["std"]
  webhook_secret_arns = [aws_secretsmanager_secret.webhook.arn]
  sns_topic_arns      = [aws_sns_topic.failures.arn]
  # ebssnap_policy.std reports unprotected volumes: its sweep reads every policy's targets.
  report_unprotected = true
  # ebssnap_policy.std copies to var.dr_region and shares with the vault account.
  copy_regions      = [var.dr_region]
  share_account_ids = [var.vault_account_id]
}

# --- Failure channels -----------------------------------------------------------------------

# The webhook URL (often with a token) and its signing secret never enter a schedule or the
# Lambda environment: the runner reads them from here when a ticket is due.
resource "aws_secretsmanager_secret" "webhook" {
  name = "ebssnap/failure-webhook"
}

resource "aws_secretsmanager_secret_version" "webhook" {
  secret_id = aws_secretsmanager_secret.webhook.id
  secret_string = jsonencode({
    url            = var.webhook_url
    signing_secret = var.webhook_secret
  })
}

resource "aws_sns_topic" "failures" {
  name = "ebssnap-failures"
}

resource "aws_sns_topic_subscription" "critical_by_email" {
  topic_arn     = aws_sns_topic.failures.arn
  protocol      = "email"
  endpoint      = var.alarm_email
  filter_policy = jsonencode({ severity = ["critical"] })
}

# One metrics line per run and sweep (Embedded Metric Format): no API calls, no extra cost.
resource "aws_cloudwatch_metric_alarm" "snapshot_failures" {
  alarm_name          = "ebssnap-std-failures"
  alarm_description   = "ebssnap runs or sweeps of policy std reported failures"
  namespace           = "ebssnap"
  metric_name         = "Failures"
  dimensions          = { Policy = "std" }
  statistic           = "Sum"
  period              = 3600
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.failures.arn]
}

resource "aws_iam_role" "runner" {
  name               = "ebssnap-runner"
  assume_role_policy = data.ebssnap_iam_policy.this.runner_assume_role_policy_json
}

resource "aws_iam_role_policy" "runner" {
  name   = "ebssnap-runner"
  role   = aws_iam_role.runner.id
  policy = data.ebssnap_iam_policy.this.runner_policy_json
}

resource "aws_iam_role" "scheduler" {
  name               = "ebssnap-scheduler"
  assume_role_policy = data.ebssnap_iam_policy.this.scheduler_assume_role_policy_json
}

resource "aws_iam_role_policy" "scheduler" {
  name   = "ebssnap-scheduler"
  role   = aws_iam_role.scheduler.id
  policy = data.ebssnap_iam_policy.this.scheduler_policy_json
}

resource "aws_iam_role_policy" "scheduler_dlq" {
  name = "ebssnap-scheduler-dlq"
  role = aws_iam_role.scheduler.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = "sqs:SendMessage"
      Resource = aws_sqs_queue.dlq.arn
    }]
  })
}

# --- The runner ---------------------------------------------------------------------------

resource "aws_lambda_function" "runner" {
  function_name    = local.runner_name
  filename         = var.runner_zip
  source_code_hash = filebase64sha256(var.runner_zip)
  handler          = "bootstrap"
  runtime          = "provided.al2023"
  architectures    = ["x86_64"]
  role             = aws_iam_role.runner.arn
  memory_size      = 256
  timeout          = 900
}

resource "aws_sqs_queue" "dlq" {
  name                      = "ebssnap-dlq"
  message_retention_seconds = 1209600
}

# Scheduler invokes the runner asynchronously: a failed run never reaches Scheduler's retry
# policy or its dead-letter queue above. Lambda retries the run itself (a retry redoes only what
# is missing: the run key skips volumes already snapshotted), then sends the event with the
# runner's error to this on-failure destination. The error is JSON carrying the failure ticket.
resource "aws_sqs_queue" "runner_failures" {
  name                      = "ebssnap-runner-failures"
  message_retention_seconds = 1209600
}

resource "aws_lambda_function_event_invoke_config" "runner" {
  function_name                = aws_lambda_function.runner.function_name
  maximum_retry_attempts       = 2
  maximum_event_age_in_seconds = 21600

  destination_config {
    on_failure {
      destination = aws_sqs_queue.runner_failures.arn
    }
  }
}

# Lambda delivers to the destination with the function's own role.
resource "aws_iam_role_policy" "runner_failures" {
  name = "ebssnap-runner-on-failure"
  role = aws_iam_role.runner.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = "sqs:SendMessage"
      Resource = aws_sqs_queue.runner_failures.arn
    }]
  })
}

# --- Snapshots ----------------------------------------------------------------------------

provider "ebssnap" {
  region             = var.region
  runner_arn         = aws_lambda_function.runner.arn
  scheduler_role_arn = aws_iam_role.scheduler.arn
  default_timezone   = "America/Chicago"
}

resource "ebssnap_policy" "std" {
  name                       = "std"
  description                = "14 days, at least 7 snapshots per volume"
  retention_days             = 14
  min_snapshots              = 7
  failure_webhook_secret_arn = aws_secretsmanager_secret.webhook.arn
  failure_sns_topic_arn      = aws_sns_topic.failures.arn
  # Every day's sweep raises coverage.unprotected for volumes no target selects.
  report_unprotected = true
  snapshot_tags = {
    Backup = "ebssnap"
  }

  # Prove restores work: every Sunday at 04:00 UTC, restore the two volumes tested longest ago.
  restore_test {
    schedule = "cron(0 4 ? * SUN *)"
    sample   = 2
  }

  # Disaster recovery: every restore point copied to var.dr_region, copies kept 30 days (at
  # least 3 per volume), and shared with the vault account (docs/guides/copies.md).
  copy {
    region         = var.dr_region
    retention_days = 30
    min_snapshots  = 3
  }
  share {
    account_ids = [var.vault_account_id]
  }

  depends_on = [aws_iam_role_policy.scheduler, aws_iam_role_policy.runner]
}

# The web tier: every instance of the Auto Scaling group, nightly, without root volumes.
resource "ebssnap_target" "web" {
  policy                = ebssnap_policy.std.name
  name                  = "web"
  schedule              = "cron(0 3 * * ? *)"
  dead_letter_queue_arn = aws_sqs_queue.dlq.arn

  # Sources in a select block are a union: a volume matching any one of them is selected.
  select {
    asg_names = ["web-prod"]
  }
  exclude {
    root_volumes = true
  }
}

# The production databases, every 6 hours, kept 30 days.
resource "ebssnap_target" "databases" {
  policy                = ebssnap_policy.std.name
  name                  = "databases"
  schedule              = "cron(0 */6 * * ? *)"
  retention_days        = 30
  dead_letter_queue_arn = aws_sqs_queue.dlq.arn

  # The databases' copies in the DR Region are kept as long as the databases' restore points.
  copy_retention {
    region         = var.dr_region
    retention_days = 30
  }

  # Production databases only: instance_filters are AND-ed (named db-* AND tagged Env=prod).
  # As separate sources (instance_names plus instance_tags) they would be a union: every
  # Env=prod instance, every 6 hours, kept 30 days.
  select {
    instance_filters = {
      "tag:Name" = ["db-*"]
      "tag:Env"  = ["prod"]
    }
  }
}

output "runner_function" {
  value = aws_lambda_function.runner.function_name
}

# Every plan warns when a volume of the account has no target (docs/guides/coverage.md).
data "ebssnap_coverage" "this" {
  depends_on = [ebssnap_target.web, ebssnap_target.databases]
}

check "every_volume_protected" {
  assert {
    condition     = data.ebssnap_coverage.this.unprotected_count == 0
    error_message = "Unprotected EBS volumes: ${join(", ", data.ebssnap_coverage.this.unprotected_volume_ids)}."
  }
}
