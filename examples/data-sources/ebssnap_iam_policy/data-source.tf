data "ebssnap_iam_policy" "this" {
  runner_arn   = aws_lambda_function.runner.arn
  policy_names = ["std"]
}

resource "aws_iam_role" "runner" {
  name               = "ebssnap-runner"
  assume_role_policy = data.ebssnap_iam_policy.this.runner_assume_role_policy_json
}

resource "aws_iam_role_policy" "runner" {
  role   = aws_iam_role.runner.id
  policy = data.ebssnap_iam_policy.this.runner_policy_json
}

resource "aws_iam_role" "scheduler" {
  name               = "ebssnap-scheduler"
  assume_role_policy = data.ebssnap_iam_policy.this.scheduler_assume_role_policy_json
}

resource "aws_iam_role_policy" "scheduler" {
  role   = aws_iam_role.scheduler.id
  policy = data.ebssnap_iam_policy.this.scheduler_policy_json
}
