terraform {
  required_providers {
    ebssnap = {
      source = "rackerlabs/ebssnap"
    }
  }
}

provider "ebssnap" {
  region             = "us-east-1"
  runner_arn         = "arn:aws:lambda:us-east-1:123456789012:function:ebssnap-runner"
  scheduler_role_arn = "arn:aws:iam::123456789012:role/ebssnap-scheduler"
  default_timezone   = "Europe/London"

  default_tags = {
    ManagedBy = "terraform"
  }
}
