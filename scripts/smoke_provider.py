#!/usr/bin/env python3
"""Installs a provider zip from dist/ the way users do and uses it: a filesystem mirror, then
`terraform init` and `terraform apply` of a configuration that reads `data.ebssnap_iam_policy`
and calls both provider functions. This exercises the plugin handshake (AutoMTLS, the unix socket
or, on Windows, TCP), the schema, a data source and the functions on the machine that runs it;
no AWS call is made.

The suite runs it for linux_amd64 (tests/it/release.rs); the release workflow runs it on macOS,
Windows and Linux arm64 runners for the zips cross-built on Linux.

With `--run-with PROGRAM` (an emulator: `qemu-aarch64-static`, `wine64`) the binary is taken out
of the zip and Terraform starts it through PROGRAM from a `dev_overrides` directory instead of
installing it (Terraform installs only its own platform's zip); the handshake, the protocol and
the answers are the same. tests/it/release.rs runs the linux_arm64 zip under qemu this way.

Usage: smoke_provider.py ZIP [--terraform PATH] [--run-with PROGRAM]
  (default: terraform on PATH). Exit 0 when the provider installed and answered as expected;
  prints what it checked.
"""
import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import zipfile

NAME = re.compile(r"^terraform-provider-ebssnap_(?P<v>[^_]+)_(?P<platform>[a-z]+_[a-z0-9]+)\.zip$")
EXPECTED_NEXT = '"2026-01-01T05:00:00Z"'  # cron(0 5 * * ? *) in London after New Year's midnight


def main() -> int:
    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument("zip")
    ap.add_argument("--terraform", default=shutil.which("terraform") or "terraform")
    ap.add_argument("--run-with", default="")
    args = ap.parse_args()
    m = NAME.match(os.path.basename(args.zip))
    if not m:
        print(f"smoke_provider.py: {args.zip} is not a provider zip of the release", file=sys.stderr)
        return 2
    version = m["v"]
    with tempfile.TemporaryDirectory(prefix="ebssnap-smoke-") as work:
        project = os.path.join(work, "project")
        os.makedirs(project)
        if args.run_with:
            # The binary, started through the emulator by a wrapper Terraform runs as the provider.
            bindir = os.path.join(work, "bin")
            os.makedirs(bindir)
            with zipfile.ZipFile(args.zip) as z:
                (entry,) = z.namelist()
                binary = z.extract(entry, bindir)
            os.chmod(binary, 0o755)
            wrapper = os.path.join(bindir, "terraform-provider-ebssnap")
            with open(wrapper, "w") as f:
                f.write(f"#!/bin/sh\nexec {args.run_with} {shlex.quote(binary)} \"$@\"\n")
            os.chmod(wrapper, 0o755)
            with open(os.path.join(work, "cli.tfrc"), "w") as f:
                f.write('provider_installation {\n  dev_overrides {\n'
                        f'    "rackerlabs/ebssnap" = "{bindir}"\n  }}\n  direct {{}}\n}}\n')
        else:
            mirror = os.path.join(work, "mirror", "registry.terraform.io", "rackerlabs", "ebssnap")
            os.makedirs(mirror)
            shutil.copy(args.zip, mirror)
            # HCL strings take forward slashes on every OS.
            mirror_root = os.path.join(work, "mirror").replace("\\", "/")
            with open(os.path.join(work, "cli.tfrc"), "w") as f:
                f.write('provider_installation {\n  filesystem_mirror {\n'
                        f'    path    = "{mirror_root}"\n'
                        '    include = ["registry.terraform.io/rackerlabs/ebssnap"]\n  }\n}\n')
        with open(os.path.join(project, "main.tf"), "w") as f:
            f.write(
                'terraform {\n  required_providers {\n    ebssnap = {\n'
                f'      source  = "rackerlabs/ebssnap"\n      version = "{version}"\n'
                '    }\n  }\n}\n'
                'provider "ebssnap" {\n  region = "us-east-1"\n}\n'
                'data "ebssnap_iam_policy" "x" {\n  policy_names = ["std"]\n'
                '  runner_arn   = "arn:aws:lambda:us-east-1:123456789012:function:ebssnap"\n}\n'
                'output "ok" {\n  value = length(data.ebssnap_iam_policy.x.runner_policy_json) > 0\n}\n'
                'output "valid" {\n  value = provider::ebssnap::validate_expression("rate(1 day)")\n}\n'
                'output "next" {\n  value = provider::ebssnap::next_runs('
                '"cron(0 5 * * ? *)", "Europe/London", 1, "2026-01-01T00:00:00Z")[0]\n}\n'
            )
        env = dict(os.environ, TF_CLI_CONFIG_FILE=os.path.join(work, "cli.tfrc"),
                   CHECKPOINT_DISABLE="1", TF_IN_AUTOMATION="1",
                   AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                   AWS_ENDPOINT_URL="http://127.0.0.1:9")

        def terraform(*a):
            r = subprocess.run([args.terraform, *a, "-no-color"], cwd=project, env=env,
                               capture_output=True, text=True)
            return r.returncode, r.stdout + r.stderr

        if args.run_with:
            print(f"ok   {m['platform']} binary started through {args.run_with} (dev_overrides, no init)")
        else:
            code, out = terraform("init", "-input=false")
            if code != 0 or f"Installed rackerlabs/ebssnap v{version}" not in out:
                print(f"FAIL terraform init:\n{out}", file=sys.stderr)
                return 1
            print(f"ok   terraform init installed rackerlabs/ebssnap v{version} ({m['platform']}) from the mirror")
        code, out = terraform("apply", "-auto-approve", "-input=false")
        wanted = ["ok = true", "valid = true", f"next = {EXPECTED_NEXT}"]
        missing = [w for w in wanted if w not in out]
        if code != 0 or missing:
            print(f"FAIL terraform apply (missing {missing}):\n{out}", file=sys.stderr)
            return 1
        print("ok   terraform apply: data.ebssnap_iam_policy read; validate_expression and next_runs answered")
    return 0


if __name__ == "__main__":
    sys.exit(main())
