import {
  to       = ebssnap_policy.std
  identity = { name = "std" }
}
