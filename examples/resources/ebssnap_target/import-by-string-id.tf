import {
  to = ebssnap_target.web
  id = "std/web"
}
