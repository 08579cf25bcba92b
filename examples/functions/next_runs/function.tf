# The next three nightly runs in London, counted from the plan's timestamp (stable between plan
# and apply, as Terraform requires of provider functions).
output "next_runs" {
  value = provider::ebssnap::next_runs("cron(0 5 * * ? *)", "Europe/London", 3, plantimestamp())
}
