#!/usr/bin/env bash
# The demo: ebssnap's main job on a local AWS emulator (moto on loopback), start to finish:
# Terraform creates the schedules, the runner snapshots and prunes, Terraform destroys.
# Run it with `make demo` (which installs the emulator and builds the binaries first).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

target_dir="${CARGO_TARGET_DIR:-target}"
bin_dir="$target_dir/debug"
moto="${EBSSNAP_MOTO_SERVER:-moto_server}"
python="${EBSSNAP_PYTHON:-python3}"
terraform="${EBSSNAP_TERRAFORM:-terraform}"

work=$(mktemp -d)
# What the demo leaves for you to open: the coverage page.
demo_out="${EBSSNAP_DEMO_OUT:-.demo}"
port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
MOTO_EC2_LOAD_DEFAULT_AMIS=false "$moto" -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto_pid=$!
webhook_port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# The receiver verifies with the signing secret; the runner reads it (and the URL, token and all)
# from a Secrets Manager secret, never from its environment.
signing_secret="demo-secret-$RANDOM$RANDOM"
EBSSNAP_WEBHOOK_SECRET="$signing_secret" "$target_dir/debug/ebssnap" webhook serve --listen "127.0.0.1:$webhook_port" --count 3 >"$work/tickets.txt" 2>/dev/null &
serve_pid=$!
cleanup() {
  kill "$moto_pid" "$serve_pid" ${proxy_pid:+"$proxy_pid"} 2>/dev/null || true
  wait "$moto_pid" "$serve_pid" ${proxy_pid:+"$proxy_pid"} 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done

export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_EC2_METADATA_DISABLED=true
ebssnap() { "$bin_dir/ebssnap" "$@"; }
heading() { printf '\n== %s\n' "$*"; }

# Terraform with the freshly built provider (dev_overrides; no registry, no `terraform init`).
cp "$repo/examples/quickstart/main.tf" "$work/main.tf"
cat >"$work/cli.tfrc" <<RC
provider_installation {
  dev_overrides {
    "registry.terraform.io/rackerlabs/ebssnap" = "$(cd "$bin_dir" && pwd)"
  }
  direct {}
}
RC
export TF_CLI_CONFIG_FILE="$work/cli.tfrc" CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 TF_INPUT=0
tf() { "$terraform" -chdir="$work" "$@" -no-color 2> >(grep -v -e 'development overrides' -e '^ - rackerlabs' -e 'may therefore not match' -e 'applying changes may' -e 'releases\.$' -e '^The following provider' -e '^configuration:$' -e '^$' -e '^╷' -e '^╵' -e '^│ *$' >&2); }

heading "Emulator on 127.0.0.1:$port, ticket receiver on 127.0.0.1:$webhook_port; seeding a small fleet"
"$python" scripts/demo_seed.py "$AWS_ENDPOINT_URL" "$work/victim"
proxy_port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$python" scripts/fault_proxy.py "$proxy_port" "$port" "$(cat "$work/victim")" &
proxy_pid=$!
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$proxy_port") 2>/dev/null && break
  sleep 0.1
done

heading "The webhook (its URL carries a token) and its signing secret go into Secrets Manager"
secret_arn=$("$python" - "$AWS_ENDPOINT_URL" "http://127.0.0.1:$webhook_port/hooks/ebs?token=demo-t0ken" "$signing_secret" <<'PY'
import boto3, json, sys
sm = boto3.client("secretsmanager", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
arn = sm.create_secret(Name="ebssnap/failure-webhook",
                       SecretString=json.dumps({"url": sys.argv[2], "signing_secret": sys.argv[3]}))["ARN"]
print(arn)
PY
)
echo "  $secret_arn (only this ARN goes into the policy's schedule)"

heading "terraform apply examples/quickstart (policy std, targets web and nightly)"
tf apply -auto-approve -var "failure_webhook_secret_arn=$secret_arn" | grep -E '^(ebssnap|data\.|Apply|Outputs|web_volume_ids|  "|\])' || true

heading "The schedules Terraform created in EventBridge Scheduler"
"$python" - "$AWS_ENDPOINT_URL" <<'PY'
import boto3, json, sys
s = boto3.client("scheduler", endpoint_url=sys.argv[1], region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key="testing")
for item in s.list_schedules(GroupName="ebssnap-std")["Schedules"]:
    d = s.get_schedule(GroupName="ebssnap-std", Name=item["Name"])
    doc = json.loads(d["Target"]["Input"])
    what = doc.get("select") or doc.get("retention")
    what = {k: v for k, v in what.items() if v not in (None, False, [], {})}
    print(f'  ebssnap-std/{item["Name"]:<8} {d["ScheduleExpression"]:<20} {d.get("ScheduleExpressionTimezone", "UTC"):<16} {doc["kind"]}: {json.dumps(what)}')
PY

heading "What target std/web selects now (ASG web-prod + instances named db-*)"
ebssnap volumes --policy std --target web

heading "Five scheduled runs of std/web, as Scheduler would fire them (run keys day-1..day-5)"
for day in 1 2 3 4 5; do
  ebssnap run --policy std --target web --run-key "day-$day" --json |
    "$python" -c 'import json,sys; r=json.load(sys.stdin); print("%s: created %d, deleted %d, %d API calls" % (r["run_key"], len(r["created"]), len(r["deleted"]), sum(r["api_calls"].values())))'
  sleep 1
done

heading "std/nightly: one volume's snapshot fails (EC2 refuses it); the others go on, the run fails, a ticket goes out"
set +e
AWS_ENDPOINT_URL="http://127.0.0.1:$proxy_port" ebssnap run --policy std --target nightly --run-key day-5 |
  grep -E '^(ebssnap|  (volumes|created|FAILED|ticket))'
echo "  exit code: ${PIPESTATUS[0]} (1: a volume failed)"
set -e

heading "A redelivery of day-5 (Scheduler is at-least-once): nothing new"
ebssnap run --policy std --target web --run-key day-5 | head -n 5

heading "Snapshots of db-1's data volume carry its tags (aws: keys skipped) and ebssnap's"
"$python" - "$AWS_ENDPOINT_URL" <<'PY'
import boto3, sys
ec2 = boto3.client("ec2", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="testing", aws_secret_access_key="testing")
snaps = ec2.describe_snapshots(Filters=[{"Name": "tag:Role", "Values": ["data"]}])["Snapshots"]
s = sorted(snaps, key=lambda s: s["StartTime"])[-1]
print(s["SnapshotId"] + ": " + ", ".join(f'{t["Key"]}={t["Value"]}' for t in sorted(s["Tags"], key=lambda t: t["Key"])))
PY

heading "Managed snapshots of std/web and when each expires (14 days, minimum 3 per volume)"
ebssnap snapshots --policy std --target web | head -n 8
echo "  ..."

heading "Getting data back: db-1's data volume from its newest restore point, as a new volume kept 8 hours"
data_vol=$("$python" - "$AWS_ENDPOINT_URL" <<'PY'
import boto3, sys
ec2 = boto3.client("ec2", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="testing", aws_secret_access_key="testing")
vols = ec2.describe_volumes(Filters=[{"Name": "tag:Role", "Values": ["data"]}])["Volumes"]
print(sorted(v["VolumeId"] for v in vols)[0])
PY
)
ebssnap restore --volume "$data_vol" --ttl 8h

heading "Proving restores work: a restore test of two pairs of policy std (restored, timed, deleted; the snapshots remember)"
ebssnap restore-test --policy std --sample 2 | grep -E '^(ebssnap|  restore test)'
ebssnap restore list | sed 's/^/  /'

later=$("$python" -c 'import datetime; print((datetime.datetime.now(datetime.timezone.utc)+datetime.timedelta(days=40)).strftime("%Y-%m-%dT%H:%M:%SZ"))')
heading "40 days later (--now $later): a new run prunes, always keeping the newest 3 (and, its previous restore points being 40 days old, says the volumes recovered)"
ebssnap run --policy std --target web --run-key day-40 --now "$later" | grep -v '^    snap-.* <- '

later3=$("$python" -c 'import datetime; print((datetime.datetime.now(datetime.timezone.utc)+datetime.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ"))')
heading "Three days without any run (--now $later3): the daily sweep raises an overdue ticket"
ebssnap sweep --policy std --now "$later3" | grep -E 'ticket' || true
wait "$serve_pid" 2>/dev/null || true
heading "What the receiver (ebssnap webhook serve) got: three signed tickets"
"$python" - "$work/tickets.txt" <<'PY'
import json, sys
for chunk in open(sys.argv[1]).read().split("--- ticket ")[1:]:
    head, _, body = chunk.partition("\n")
    t = json.loads(body)
    print(f'  {t["event"]} ({t["severity"]}) {head}')
    for r in t.get("recovered", [])[:2]:
        print(f'    recovered {r["volume_id"]} (target {r["target"]}): resolves {r["problem_keys"][1]}, ...')
    for f in t["failures"][:3]:
        where = f.get("target") or t["target"]
        print(f'    {f["code"]} [{f["category"]}]: {f["volume_id"]} (target {where}): {f["message"]}')
    if len(t["failures"]) > 3:
        print(f'    ... and {len(t["failures"]) - 3} more')
PY

heading "terraform destroy: the schedules go, the snapshots stay"
tf destroy -auto-approve -var "failure_webhook_secret_arn=$secret_arn" | grep -E '^(Destroy|ebssnap_.*Destruction complete)' || true
"$python" - "$AWS_ENDPOINT_URL" <<'PY'
import boto3, sys
kw = dict(endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
groups = [g["Name"] for g in boto3.client("scheduler", **kw).list_schedule_groups()["ScheduleGroups"] if g["Name"].startswith("ebssnap-")]
snaps = boto3.client("ec2", **kw).describe_snapshots(Filters=[{"Name": "tag-key", "Values": ["ebssnap:policy"]}])["Snapshots"]
print(f"  ebssnap schedule groups left: {len(groups)}; managed snapshots left: {len(snaps)}")
PY

heading "Moving from ebs_snapper: its configuration table (two stanzas) becomes Terraform"
"$python" - "$AWS_ENDPOINT_URL" <<'PY'
import boto3, json, sys
ddb = boto3.client("dynamodb", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="testing", aws_secret_access_key="testing")
ddb.create_table(TableName="ebs_snapshot_configuration", BillingMode="PAY_PER_REQUEST",
                 KeySchema=[{"AttributeName": "aws_account_id", "KeyType": "HASH"},
                            {"AttributeName": "id", "KeyType": "RANGE"}],
                 AttributeDefinitions=[{"AttributeName": "aws_account_id", "AttributeType": "S"},
                                       {"AttributeName": "id", "AttributeType": "S"}])
for sid, conf in [
    ("databases", {"match": {"tag:Name": "db-*", "tag:Env": "prod"},
                   "snapshot": {"retention": "2 weeks", "minimum": 5, "frequency": "0 6 * * *"}}),
    ("web_asg", {"match": {"tag:aws:autoscaling:groupName": "web-prod"},
                 "snapshot": {"retention": "36 hours", "minimum": 2, "frequency": "12 hours"},
                 "ignore_retention": True}),
]:
    ddb.put_item(TableName="ebs_snapshot_configuration",
                 Item={"aws_account_id": {"S": "123456789012"}, "id": {"S": sid},
                       "configuration": {"S": json.dumps(conf)}})
print("  seeded table ebs_snapshot_configuration: databases, web_asg")
PY
mkdir -p "$work/migrated"
ebssnap migrate ebs-snapper --out "$work/migrated" --allow-lossy 2>&1 | sed 's/^/  /'
sed -n '/^| stanza/,/^$/p' "$work/migrated/MIGRATION.md" | sed 's/^/  /'
grep -A4 'resource "ebssnap_target" "databases"' "$work/migrated/ebssnap.tf" | sed 's/^/  /'
cp "$work/cli.tfrc" "$work/migrated/cli.tfrc"
cat >"$work/migrated/provider.tf" <<'TF'
terraform {
  required_providers {
    ebssnap = { source = "rackerlabs/ebssnap" }
  }
}
provider "ebssnap" {
  runner_arn         = "arn:aws:lambda:us-east-1:123456789012:function:ebssnap-runner"
  scheduler_role_arn = "arn:aws:iam::123456789012:role/ebssnap-scheduler"
}
TF
heading "terraform apply of the generated configuration; then ebs_snapper's selection vs the generated and the deployed targets'"
"$terraform" -chdir="$work/migrated" apply -auto-approve -no-color 2>/dev/null | grep -E '^Apply' || true
ebssnap migrate ebs-snapper --verify 2>/dev/null | sed 's/^/  /'
ebssnap volumes --policy databases --target databases

heading "Coverage: every volume of the account by status (the migrated targets have not run yet: stale), and the HTML page"
mkdir -p "$demo_out"
ebssnap coverage --html "$demo_out/coverage.html" || true

heading "Done: the emulator is stopped on exit"
