#!/usr/bin/env bash
# The demo: the runner's main job on a local AWS emulator (moto on loopback), start to finish.
# Run it with `make demo` (which installs the emulator and builds the runner first).
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir="${CARGO_TARGET_DIR:-target}"
ebssnap_bin="$target_dir/debug/ebssnap"
moto="${EBSSNAP_MOTO_SERVER:-moto_server}"
python="${EBSSNAP_PYTHON:-python3}"

port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log=$(mktemp)
MOTO_EC2_LOAD_DEFAULT_AMIS=false "$moto" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
moto_pid=$!
cleanup() { kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true; rm -f "$log"; }
trap cleanup EXIT
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done

export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_EC2_METADATA_DISABLED=true
ebssnap() { "$ebssnap_bin" "$@"; }
heading() { printf '\n== %s\n' "$*"; }

heading "Emulator on 127.0.0.1:$port; seeding a small fleet"
"$python" scripts/demo_seed.py "$AWS_ENDPOINT_URL"

heading "What target std/web selects now (ASG web-prod + instances named db-*)"
ebssnap volumes --policy std --target web

heading "Five scheduled runs of std/web (run keys day-1..day-5)"
for day in 1 2 3 4 5; do
  ebssnap run --policy std --target web --run-key "day-$day" --json |
    "$python" -c 'import json,sys; r=json.load(sys.stdin); print("%s: created %d, deleted %d, %d API calls" % (r["run_key"], len(r["created"]), len(r["deleted"]), sum(r["api_calls"].values())))'
  sleep 1
done

heading "A redelivery of day-5 (Scheduler is at-least-once): nothing new"
ebssnap run --policy std --target web --run-key day-5 | head -n 5

heading "Snapshots of db-1's data volume carry its tags (aws: keys skipped) and ebssnap's"
aws_tags=$("$python" - "$AWS_ENDPOINT_URL" <<'PY'
import boto3, sys
ec2 = boto3.client("ec2", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="testing", aws_secret_access_key="testing")
snaps = ec2.describe_snapshots(Filters=[{"Name": "tag:Role", "Values": ["data"]}])["Snapshots"]
s = sorted(snaps, key=lambda s: s["StartTime"])[-1]
print(s["SnapshotId"] + ": " + ", ".join(f'{t["Key"]}={t["Value"]}' for t in sorted(s["Tags"], key=lambda t: t["Key"])))
PY
)
echo "$aws_tags"

heading "Managed snapshots and when each expires (14 days, minimum 3 per volume)"
ebssnap snapshots --policy std

later=$("$python" -c 'import datetime; print((datetime.datetime.now(datetime.timezone.utc)+datetime.timedelta(days=40)).strftime("%Y-%m-%dT%H:%M:%SZ"))')
heading "40 days later (--now $later): a new run prunes, always keeping the newest 3"
ebssnap run --policy std --target web --run-key day-40 --now "$later"

heading "The sweep of policy std (all targets, removed ones and orphans) 40 days later, dry run"
ebssnap sweep --policy std --now "$later" --dry-run

heading "Done: the emulator is stopped on exit"
