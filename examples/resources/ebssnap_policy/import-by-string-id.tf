import {
  to = ebssnap_policy.std
  id = "std"
}
