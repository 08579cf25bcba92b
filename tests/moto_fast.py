"""moto_server with O(1) EC2 tag lookups and an optional network latency, for benchmarks only.

Stock moto finds a resource's tags by scanning every tag of the account (describe_tags with a
resource-id filter), so listing N tagged snapshots costs O(N^2): at the benchmark's scale (1,000
volumes, 3,000+ snapshots) one run takes minutes of moto CPU. This wrapper replaces that lookup
with a dictionary access; responses are unchanged. The test suite runs on stock moto.

MOTO_LATENCY_MS=N adds N ms before each request is handled, outside Python's global lock, the way
a network round trip to AWS adds latency that concurrent clients overlap (moto on loopback has
none, and serves one request at a time).
"""
import os
import sys
import time

from moto.ec2.models.core import TaggedEC2Resource
from moto.ec2.models.tags import EC2_PREFIX_TO_RESOURCE, get_prefix


def get_tags(self):
    rid = getattr(self, "id", None)
    if not rid:
        return []
    tags = self.ec2_backend.tags.get(rid)
    if not tags:
        return []
    rtype = EC2_PREFIX_TO_RESOURCE.get(get_prefix(rid), "")
    return [{"resource_id": rid, "key": k, "value": v, "resource_type": rtype} for k, v in tags.items()]


TaggedEC2Resource.get_tags = get_tags

LATENCY = float(os.environ.get("MOTO_LATENCY_MS", "0")) / 1000.0
if LATENCY > 0:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    _call = DomainDispatcherApplication.__call__

    def delayed(self, environ, start_response):
        time.sleep(LATENCY)
        return _call(self, environ, start_response)

    DomainDispatcherApplication.__call__ = delayed

from moto.server import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
