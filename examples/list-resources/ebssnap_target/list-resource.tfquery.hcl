# Every target of every policy, and the targets of policy "db" only.
list "ebssnap_target" "all" {
  provider = ebssnap
}

list "ebssnap_target" "db" {
  provider = ebssnap
  config {
    policy = "db"
  }
}
