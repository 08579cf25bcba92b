# A complete ebssnap deployment: the runner Lambda from the release bundle, its role and the
# Scheduler role from ebssnap_iam_policy, a dead-letter queue, a policy and two targets.

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
  description = "Where failure tickets go (https)."
  sensitive   = true
}

variable "webhook_secret" {
  type        = string
  description = "HMAC key the runner signs tickets with (kept in the Lambda environment only)."
  sensitive   = true
}

provider "aws" {
  region = var.region
}

# --- IAM: exactly what the runner and Scheduler need -------------------------------------

data "ebssnap_iam_policy" "this" {
  runner_arn   = aws_lambda_function.runner.arn
  policy_names = ["std"]
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
  function_name    = "ebssnap-runner"
  filename         = var.runner_zip
  source_code_hash = filebase64sha256(var.runner_zip)
  handler          = "bootstrap"
  runtime          = "provided.al2023"
  architectures    = ["x86_64"]
  role             = aws_iam_role.runner.arn
  memory_size      = 256
  timeout          = 900

  environment {
    variables = {
      EBSSNAP_WEBHOOK_SECRET = var.webhook_secret
    }
  }
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
  name                = "std"
  description         = "14 days, at least 7 snapshots per volume"
  retention_days      = 14
  min_snapshots       = 7
  failure_webhook_url = var.webhook_url
  snapshot_tags = {
    Backup = "ebssnap"
  }

  depends_on = [aws_iam_role_policy.scheduler, aws_iam_role_policy.runner]
}

resource "ebssnap_target" "web" {
  policy                = ebssnap_policy.std.name
  name                  = "web"
  schedule              = "cron(0 3 * * ? *)"
  dead_letter_queue_arn = aws_sqs_queue.dlq.arn

  select {
    asg_names = ["web-prod"]
  }
  exclude {
    root_volumes = true
  }
}

resource "ebssnap_target" "databases" {
  policy                = ebssnap_policy.std.name
  name                  = "databases"
  schedule              = "cron(0 */6 * * ? *)"
  retention_days        = 30
  dead_letter_queue_arn = aws_sqs_queue.dlq.arn

  select {
    instance_names = ["db-*"]
    instance_tags = {
      Env = "prod"
    }
  }
}

output "runner_function" {
  value = aws_lambda_function.runner.function_name
}
