# adopt.tfquery.hcl: every ebssnap policy of the provider's account and region.
# terraform query -generate-config-out=generated.tf
list "ebssnap_policy" "all" {
  provider = ebssnap
}
