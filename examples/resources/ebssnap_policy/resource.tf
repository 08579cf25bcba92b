resource "ebssnap_policy" "std" {
  name           = "std"
  description    = "Two weeks of daily snapshots, never fewer than 7 per volume"
  retention_days = 14
  min_snapshots  = 7

  snapshot_tags = {
    Backup = "ebssnap"
  }

  failure_webhook_url = "https://tickets.example.com/hooks/ebs"
}
