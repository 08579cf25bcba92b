"""moto_server with a model of EC2's request limits, for the scale benchmark only.

EC2 throttles each API per account and region with a token bucket: a burst, then a steady refill
(mutating calls sustain a few per second), and each volume accepts a new snapshot only every few
seconds. moto has no limits, so this wrapper (over moto_fast.py's O(1) tag lookups) enforces them
and answers exactly as EC2 does:

- over an API's bucket: HTTP 503, `RequestLimitExceeded` (the refused request never reaches moto);
- a volume snapshotted again within its interval: HTTP 400, `SnapshotCreationPerVolumeRateExceeded`.

Configuration (time-scaled so a run takes about a minute):
  EC2_LIMITS="CreateSnapshot=100:30,CreateSnapshots=100:30,DeleteSnapshot=100:30"  (burst:per-second)
  EC2_VOLUME_INTERVAL_S=15   (seconds between two accepted snapshots of one volume; 0 = off)

The wrapper also indexes moto's exact `attachment.instance-id`, `instance-id` and `volume-id`
filters (moto scans every resource for every value), and pages as EC2 does: moto pages `DescribeInstances` by
reservation (a 100-instance reservation counts as one result) and does not page
`DescribeVolumes` or `DescribeSnapshots` at all, so at 10,000 volumes one page would hold them all;
here `MaxResults` counts instances, volumes and snapshots, as in EC2.

GET /ec2-limits/stats returns {"accepted": {...}, "throttled": {...}, "per_volume": n,
"span": {action: [first, last]}} (seconds since the reset of the first and last accepted call);
POST /ec2-limits/reset refills the buckets and zeroes the counts (and ends refusals);
POST /ec2-limits/refuse?action=CreateSnapshot answers every later call of that action with HTTP 403,
`UnauthorizedOperation`, as EC2 does for a role without the permission (the failing run).
"""
import io
import json
import os
import sys
import threading
import time
from urllib.parse import parse_qs

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moto_fast  # noqa: E402,F401  (patches tag lookups; reads MOTO_LATENCY_MS)
from moto.moto_server.werkzeug_app import DomainDispatcherApplication  # noqa: E402

THROTTLED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>RequestLimitExceeded'
    b"</Code><Message>Request limit exceeded.</Message></Error></Errors>"
    b"<RequestID>00000000-0000-0000-0000-000000000000</RequestID></Response>"
)
REFUSED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>UnauthorizedOperation'
    b"</Code><Message>You are not authorized to perform this operation.</Message></Error></Errors>"
    b"<RequestID>00000000-0000-0000-0000-000000000000</RequestID></Response>"
)
PER_VOLUME = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>'
    b"SnapshotCreationPerVolumeRateExceeded</Code><Message>The maximum per volume CreateSnapshot "
    b"request rate has been exceeded. Use an increasing or variable sleep interval between requests."
    b"</Message></Error></Errors><RequestID>00000000-0000-0000-0000-000000000000</RequestID></Response>"
)


def parse_limits(text):
    limits = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        action, spec = part.split("=")
        burst, rate = spec.split(":")
        limits[action] = (float(burst), float(rate))
    return limits


class Model:
    def __init__(self):
        self.limits = parse_limits(os.environ.get("EC2_LIMITS", ""))
        self.interval = float(os.environ.get("EC2_VOLUME_INTERVAL_S", "0"))
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        now = time.monotonic()
        self.buckets = {a: [burst, now] for a, (burst, _) in self.limits.items()}
        self.last_snapshot = {}
        self.accepted = {}
        self.throttled = {}
        self.per_volume = 0
        self.started = now
        self.span = {}
        self.refused = set()

    def admit(self, action, volume):
        """None to forward the request, else (status, body) to answer for EC2."""
        with self.lock:
            now = time.monotonic()
            if action in self.refused:
                return "403 Forbidden", REFUSED
            if action in self.limits:
                burst, rate = self.limits[action]
                b = self.buckets[action]
                b[0] = min(burst, b[0] + (now - b[1]) * rate)
                b[1] = now
                if b[0] < 1.0:
                    self.throttled[action] = self.throttled.get(action, 0) + 1
                    return "503 Service Unavailable", THROTTLED
                b[0] -= 1.0
            if action == "CreateSnapshot" and volume and self.interval > 0:
                last = self.last_snapshot.get(volume)
                if last is not None and now - last < self.interval:
                    self.per_volume += 1
                    return "400 Bad Request", PER_VOLUME
                self.last_snapshot[volume] = now
            self.accepted[action] = self.accepted.get(action, 0) + 1
            at = round(now - self.started, 3)
            self.span.setdefault(action, [at, at])[1] = at
            return None

    def stats(self):
        with self.lock:
            return {"accepted": dict(self.accepted), "throttled": dict(self.throttled),
                    "per_volume": self.per_volume, "span": dict(self.span)}


# moto filters `attachment.instance-id`, `instance-id` and `volume-id` by matching every resource
# against every value (O(resources x values)): at 10,000 volumes one filtered DescribeVolumes takes
# ~1.5 s of CPU. EC2 answers these from an index; so does this model, for exact (wildcard-free)
# values (`volume-id` of volumes and of snapshots, too).
import copy  # noqa: E402

from moto.ec2.models.elastic_block_store import EBSBackend  # noqa: E402
from moto.ec2.models.instances import InstanceBackend  # noqa: E402
from moto.ec2.utils import filter_reservations, generic_filter  # noqa: E402


def exact(filters, name):
    values = (filters or {}).get(name)
    if not values or any("*" in v or "?" in v for v in values):
        return None
    return set(values)


_describe_volumes = EBSBackend.describe_volumes


def describe_volumes(self, volume_ids=None, filters=None):
    by_id = exact(filters, "volume-id")
    if by_id is not None and not volume_ids:
        rest = {k: v for k, v in filters.items() if k != "volume-id"}
        vols = [self.volumes[i] for i in sorted(by_id) if i in self.volumes]
        return describe_volumes_of(vols, rest)
    ids = exact(filters, "attachment.instance-id")
    if ids is None:
        return _describe_volumes(self, volume_ids, filters)
    rest = {k: v for k, v in filters.items() if k != "attachment.instance-id"}
    vols = _describe_volumes(self, volume_ids, rest or None)
    return [v for v in vols if v.attachment is not None and v.attachment.instance.id in ids]


def describe_volumes_of(vols, rest):
    ids = exact(rest, "attachment.instance-id")
    if ids is not None:
        rest = {k: v for k, v in rest.items() if k != "attachment.instance-id"}
        vols = [v for v in vols if v.attachment is not None and v.attachment.instance.id in ids]
    return generic_filter(rest, vols) if rest else vols


EBSBackend.describe_volumes = describe_volumes

_describe_snapshots = EBSBackend.describe_snapshots


def describe_snapshots(self, snapshot_ids=None, filters=None):
    by_volume = exact(filters, "volume-id")
    if by_volume is None or snapshot_ids:
        return _describe_snapshots(self, snapshot_ids, filters)
    rest = {k: v for k, v in filters.items() if k != "volume-id"}
    snaps = [s for s in self.snapshots.values() if s.volume.id in by_volume]
    return generic_filter(rest, snaps) if rest else snaps


EBSBackend.describe_snapshots = describe_snapshots

_describe_instances = InstanceBackend.describe_instances


def describe_instances(self, filters=None):
    ids = exact(filters, "instance-id")
    if ids is None:
        return _describe_instances(self, filters)
    rest = {k: v for k, v in filters.items() if k != "instance-id"}
    out = []
    for r in self.reservations.values():
        chosen = [i for i in r.instances if i.id in ids]
        if chosen:
            rc = copy.copy(r)
            rc.instances = chosen
            out.append(rc)
    return filter_reservations(out, rest) if rest else out


InstanceBackend.describe_instances = describe_instances


# Paging as EC2 pages: MaxResults counts instances (not reservations), volumes and snapshots.
from moto.core.responses import ActionResult  # noqa: E402
from moto.ec2.responses.elastic_block_store import ElasticBlockStore  # noqa: E402
from moto.ec2.responses.instances import InstanceResponse  # noqa: E402


def page(handler, items):
    """The page of `items` that `MaxResults`/`NextToken` ask for, and the next token."""
    limit = handler._get_param("MaxResults")
    if limit is None:
        return items, None
    token = handler._get_param("NextToken")
    start = int(token) if token else 0
    end = start + int(limit)
    return items[start:end], (str(end) if end < len(items) else None)


def paged_instances(self):
    if self._get_param("MaxResults") is None or self._get_param("InstanceIds", []):
        return _instances_response(self)
    every = self.ec2_backend.describe_instances(filters=self._filters_from_querystring())
    chosen, next_token = page(self, [(r, i) for r in every for i in r.instances])
    out = []
    for r, i in chosen:
        if out and out[-1].id == r.id:
            out[-1].instances.append(i)
        else:
            rc = copy.copy(r)
            rc.instances = [i]
            out.append(rc)
    return ActionResult({"Reservations": out, "NextToken": next_token})


def paged(original, key):
    def handler(self):
        items, next_token = page(self, original(self).result[key])
        return ActionResult({key: items, "NextToken": next_token})

    return handler


_instances_response = InstanceResponse.describe_instances
InstanceResponse.describe_instances = paged_instances
ElasticBlockStore.describe_volumes = paged(ElasticBlockStore.describe_volumes, "Volumes")
ElasticBlockStore.describe_snapshots = paged(ElasticBlockStore.describe_snapshots, "Snapshots")

MODEL = Model()
_call = DomainDispatcherApplication.__call__


def limited(self, environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/ec2-limits/stats":
        body = json.dumps(MODEL.stats()).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
    if path == "/ec2-limits/refuse":
        action = (parse_qs(environ.get("QUERY_STRING", "")).get("action") or [""])[0]
        with MODEL.lock:
            MODEL.refused.add(action)
        start_response("200 OK", [("Content-Length", "0")])
        return [b""]
    if path == "/ec2-limits/reset":
        with MODEL.lock:
            MODEL.reset()
        start_response("200 OK", [("Content-Length", "0")])
        return [b""]
    if environ.get("REQUEST_METHOD") == "POST" and "x-www-form-urlencoded" in environ.get("CONTENT_TYPE", ""):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(raw)
        form = parse_qs(raw.decode("utf-8", "replace"))
        action = (form.get("Action") or [""])[0]
        answer = MODEL.admit(action, (form.get("VolumeId") or [""])[0])
        if answer is not None:
            status, body = answer
            start_response(status, [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))])
            return [body]
    return _call(self, environ, start_response)


DomainDispatcherApplication.__call__ = limited

from moto.server import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
