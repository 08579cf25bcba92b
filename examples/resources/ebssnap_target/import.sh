terraform import ebssnap_target.web std/web
