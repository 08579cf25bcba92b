#!/usr/bin/env python3
"""Packages a release from the static release build (`make release` runs the build first).

dist/
  terraform-provider-ebssnap_X.Y.Z_linux_amd64.zip   terraform-provider-ebssnap_vX.Y.Z inside
  terraform-provider-ebssnap_X.Y.Z_manifest.json     copy of terraform-registry-manifest.json
  terraform-provider-ebssnap_X.Y.Z_SHA256SUMS        sha256 of every file above and below
  ebssnap-runner_X.Y.Z_lambda_x86_64.zip             bootstrap (static) at the root

With GPG_KEY_ID set (the key in the agent or GNUPGHOME), SHA256SUMS also gets the detached
binary signature the Terraform registry expects: terraform-provider-ebssnap_X.Y.Z_SHA256SUMS.sig.

More platforms (`make release-all`): `--provider OS_ARCH=PATH` adds
terraform-provider-ebssnap_X.Y.Z_OS_ARCH.zip (`.exe` inside for windows), `--lambda ARCH=PATH`
adds ebssnap-runner_X.Y.Z_lambda_ARCH.zip; all covered by the same SHA256SUMS.

Usage: release.py BUILD_DIR [VERSION] [--provider OS_ARCH=PATH]... [--lambda ARCH=PATH]...
         (VERSION, if given, must equal Cargo.toml's; BUILD_DIR holds the linux_amd64 /
          lambda x86_64 binaries)
       release.py sign FILE             (FILE.sig with GPG_KEY_ID; what the release does)
"""
import argparse
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


PROVIDER_PLATFORMS = ("linux_amd64", "linux_arm64", "darwin_amd64", "darwin_arm64", "windows_amd64")
LAMBDA_ARCHES = ("x86_64", "arm64")


def pairs(values, allowed, what):
    out = {}
    for v in values:
        key, sep, path = v.partition("=")
        if not sep or key not in allowed:
            raise SystemExit(f"release.py: --{what} {v!r}: expected one of {', '.join(allowed)}=PATH")
        if not os.path.isfile(path):
            raise SystemExit(f"release.py: --{what} {key}: {path} does not exist (was it built?)")
        out[key] = path
    return out


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    if sys.argv[1] == "sign" and len(sys.argv) == 3:
        return sign(sys.argv[2])
    ap = argparse.ArgumentParser(prog="release.py", usage=__doc__)
    ap.add_argument("build")
    ap.add_argument("version", nargs="?", default="")
    ap.add_argument("--provider", action="append", default=[])
    ap.add_argument("--lambda", dest="lambdas", action="append", default=[])
    args = ap.parse_args()
    providers = {"linux_amd64": os.path.join(args.build, "terraform-provider-ebssnap")}
    providers.update(pairs(args.provider, PROVIDER_PLATFORMS, "provider"))
    lambdas = {"x86_64": os.path.join(args.build, "ebssnap")}
    lambdas.update(pairs(args.lambdas, LAMBDA_ARCHES, "lambda"))
    for binary in (providers["linux_amd64"], lambdas["x86_64"]):
        if not os.path.isfile(binary):
            print(f"release.py: {binary} does not exist (run the release build first)", file=sys.stderr)
            return 2
    with open(os.path.join(ROOT, "Cargo.toml"), "rb") as f:
        cargo_version = tomllib.load(f)["package"]["version"]
    version = args.version or cargo_version
    if version != cargo_version:
        print(f"release.py: version {version} differs from Cargo.toml's {cargo_version}", file=sys.stderr)
        return 2
    dist = os.path.join(ROOT, "dist")
    shutil.rmtree(dist, ignore_errors=True)
    os.makedirs(dist)
    name = f"terraform-provider-ebssnap_{version}"
    artifacts = []
    for platform, binary in providers.items():
        zpath = os.path.join(dist, f"{name}_{platform}.zip")
        exe = ".exe" if platform.startswith("windows") else ""
        with zipfile.ZipFile(zpath, "w") as z:
            add(z, binary, f"terraform-provider-ebssnap_v{version}{exe}")
        artifacts.append(zpath)
    manifest = os.path.join(dist, f"{name}_manifest.json")
    shutil.copyfile(os.path.join(ROOT, "terraform-registry-manifest.json"), manifest)
    artifacts.append(manifest)
    for arch, binary in lambdas.items():
        zpath = os.path.join(dist, f"ebssnap-runner_{version}_lambda_{arch}.zip")
        with zipfile.ZipFile(zpath, "w") as z:
            add(z, binary, "bootstrap")
        artifacts.append(zpath)
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
