# The data volumes of every instance tagged Env=prod (one source; several would be a union).
data "ebssnap_volumes" "prod" {
  select {
    instance_tags = {
      Env = "prod"
    }
  }

  exclude {
    root_volumes = true
  }
}

output "prod_volume_ids" {
  value = data.ebssnap_volumes.prod.volume_ids
}
