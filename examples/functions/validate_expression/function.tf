variable "schedule" {
  type    = string
  default = "cron(0 5 * * ? *)"

  validation {
    condition     = provider::ebssnap::validate_expression(var.schedule)
    error_message = "schedule must be a cron(...), rate(...) or at(...) expression."
  }
}
