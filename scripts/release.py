#!/usr/bin/env python3
"""Packages a release from the static release build (`make release` runs the build first).

dist/
  terraform-provider-ebssnap_X.Y.Z_linux_amd64.zip   terraform-provider-ebssnap_vX.Y.Z inside
  terraform-provider-ebssnap_X.Y.Z_manifest.json     copy of terraform-registry-manifest.json
  terraform-provider-ebssnap_X.Y.Z_SHA256SUMS        sha256 of every file above and below
  ebssnap-runner_X.Y.Z_lambda_x86_64.zip             bootstrap (static) at the root

With GPG_KEY_ID set (the key in the agent or GNUPGHOME), SHA256SUMS also gets the detached
binary signature the Terraform registry expects: terraform-provider-ebssnap_X.Y.Z_SHA256SUMS.sig.

More platforms (`make release-all`): LAMBDA_ARM64=path/to/ebssnap adds
ebssnap-runner_X.Y.Z_lambda_arm64.zip (a static aarch64 build), covered by the same SHA256SUMS.

Usage: release.py BUILD_DIR [VERSION]   (VERSION, if given, must equal Cargo.toml's)
       release.py sign FILE             (FILE.sig with GPG_KEY_ID; what the release does)
"""
import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EPOCH = (2020, 1, 1, 0, 0, 0)  # fixed timestamps: the same inputs give the same zips


def add(z: zipfile.ZipFile, path: str, name: str) -> None:
    info = zipfile.ZipInfo(name, date_time=EPOCH)
    info.external_attr = 0o100755 << 16  # a regular, executable file
    info.compress_type = zipfile.ZIP_DEFLATED
    with open(path, "rb") as f:
        z.writestr(info, f.read())


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sign(path: str) -> int:
    """Writes PATH.sig, a detached binary signature by GPG_KEY_ID."""
    key = os.environ.get("GPG_KEY_ID", "")
    if not key:
        print("release.py: GPG_KEY_ID is not set: not signing", file=sys.stderr)
        return 2
    r = subprocess.run(["gpg", "--batch", "--yes", "--local-user", key, "--detach-sign",
                        "--output", path + ".sig", path])
    return r.returncode


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    if sys.argv[1] == "sign" and len(sys.argv) == 3:
        return sign(sys.argv[2])
    build = sys.argv[1]
    with open(os.path.join(ROOT, "Cargo.toml"), "rb") as f:
        cargo_version = tomllib.load(f)["package"]["version"]
    version = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else cargo_version
    if version != cargo_version:
        print(f"release.py: version {version} differs from Cargo.toml's {cargo_version}", file=sys.stderr)
        return 2
    dist = os.path.join(ROOT, "dist")
    shutil.rmtree(dist, ignore_errors=True)
    os.makedirs(dist)
    name = f"terraform-provider-ebssnap_{version}"
    provider_zip = os.path.join(dist, f"{name}_linux_amd64.zip")
    with zipfile.ZipFile(provider_zip, "w") as z:
        add(z, os.path.join(build, "terraform-provider-ebssnap"), f"terraform-provider-ebssnap_v{version}")
    manifest = os.path.join(dist, f"{name}_manifest.json")
    shutil.copyfile(os.path.join(ROOT, "terraform-registry-manifest.json"), manifest)
    runner_zip = os.path.join(dist, f"ebssnap-runner_{version}_lambda_x86_64.zip")
    with zipfile.ZipFile(runner_zip, "w") as z:
        add(z, os.path.join(build, "ebssnap"), "bootstrap")
    artifacts = [provider_zip, manifest, runner_zip]
    arm64 = os.environ.get("LAMBDA_ARM64")
    if arm64:
        arm64_zip = os.path.join(dist, f"ebssnap-runner_{version}_lambda_arm64.zip")
        with zipfile.ZipFile(arm64_zip, "w") as z:
            add(z, arm64, "bootstrap")
        artifacts.append(arm64_zip)
    sums = os.path.join(dist, f"{name}_SHA256SUMS")
    with open(sums, "w") as f:
        for path in sorted(artifacts):
            f.write(f"{sha256(path)}  {os.path.basename(path)}\n")
    if os.environ.get("GPG_KEY_ID"):
        if sign(sums) != 0:
            print("release.py: signing SHA256SUMS failed", file=sys.stderr)
            return 1
    for entry in sorted(os.listdir(dist)):
        print(f"dist/{entry}  {os.path.getsize(os.path.join(dist, entry)):,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
