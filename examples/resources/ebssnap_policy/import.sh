terraform import ebssnap_policy.std std
