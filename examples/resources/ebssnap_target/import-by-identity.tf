import {
  to       = ebssnap_target.web
  identity = { policy = "std", name = "web" }
}
