# The coverage of the account and Region, read at every plan.
data "ebssnap_coverage" "this" {}

# `terraform plan` warns when a volume has no target, or only a disabled one.
check "every_volume_protected" {
  assert {
    condition     = data.ebssnap_coverage.this.unprotected_count == 0
    error_message = "Unprotected EBS volumes: ${join(", ", data.ebssnap_coverage.this.unprotected_volume_ids)}. Select them with an ebssnap_target, or exclude them explicitly."
  }
}

# And when a selected volume's newest restore point is older than twice its schedule's interval.
check "restore_points_fresh" {
  assert {
    condition     = data.ebssnap_coverage.this.stale_count == 0
    error_message = "Stale EBS volumes: ${join(", ", data.ebssnap_coverage.this.stale_volume_ids)}. See `ebssnap coverage` and the runner's tickets."
  }
}
