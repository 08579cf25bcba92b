resource "ebssnap_policy" "std" {
  name           = "std"
  description    = "Two weeks of daily snapshots, never fewer than 7 per volume"
  retention_days = 14
  min_snapshots  = 7

  snapshot_tags = {
    Backup = "ebssnap"
  }

  failure_webhook_url = "https://tickets.example.com/hooks/ebs"

  # Disaster-recovery copies in another Region, kept longer than the restore points themselves.
  copy {
    region         = "us-west-2"
    retention_days = 30
    min_snapshots  = 3
  }

  # Let a vault account create volumes from each run's restore points.
  share {
    account_ids = ["111122223333"]
  }
}
