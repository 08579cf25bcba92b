#!/usr/bin/env python3
"""Checks every artifact in dist/ (`make verify-dist`): each zip holds exactly one binary named
as the Terraform registry (provider) or Lambda (runner: `bootstrap`) requires, built for the OS
and architecture its file name says (read from the ELF / Mach-O / PE header, no emulation), and
statically linked where promised (Linux: no program interpreter); SHA256SUMS lists every zip and
the manifest with the right digests; SHA256SUMS.sig, when present, verifies with gpg.

Usage: verify_dist.py [DIST_DIR]   (default: ./dist). Exit 0 when everything holds.
"""
import hashlib
import os
import re
import struct
import subprocess
import sys
import zipfile

PROVIDER = re.compile(r"^terraform-provider-ebssnap_(?P<v>[^_]+)_(?P<os>linux|darwin|windows)_(?P<arch>amd64|arm64)\.zip$")
RUNNER = re.compile(r"^ebssnap-runner_(?P<v>[^_]+)_lambda_(?P<arch>x86_64|arm64)\.zip$")
ELF_MACHINE = {62: "amd64", 183: "arm64"}
MACHO_CPU = {0x01000007: "amd64", 0x0100000C: "arm64"}
PE_MACHINE = {0x8664: "amd64", 0xAA64: "arm64"}


def binary_kind(data: bytes):
    """(os, arch, static) of an executable, or None."""
    if data[:4] == b"\x7fELF":
        little = data[5] == 1
        e = "<" if little else ">"
        machine = struct.unpack_from(e + "H", data, 18)[0]
        phoff = struct.unpack_from(e + "Q", data, 32)[0]
        phentsize, phnum = struct.unpack_from(e + "HH", data, 54)
        interp = any(struct.unpack_from(e + "I", data, phoff + i * phentsize)[0] == 3
                     for i in range(phnum))
        return "linux", ELF_MACHINE.get(machine, f"elf-{machine}"), not interp
    if data[:4] in (b"\xcf\xfa\xed\xfe",):
        cpu = struct.unpack_from("<I", data, 4)[0]
        return "darwin", MACHO_CPU.get(cpu, f"macho-{cpu:x}"), None
    if data[:2] == b"MZ":
        pe = struct.unpack_from("<I", data, 0x3C)[0]
        if data[pe:pe + 4] == b"PE\0\0":
            machine = struct.unpack_from("<H", data, pe + 4)[0]
            return "windows", PE_MACHINE.get(machine, f"pe-{machine:x}"), None
    return None


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def main() -> int:
    dist = sys.argv[1] if len(sys.argv) > 1 else "dist"
    problems, checked = [], []
    files = sorted(os.listdir(dist))
    zips = [f for f in files if f.endswith(".zip")]
    if not zips:
        problems.append(f"{dist}: no zips")
    for name in zips:
        path = os.path.join(dist, name)
        p, r = PROVIDER.match(name), RUNNER.match(name)
        if not (p or r):
            problems.append(f"{name}: not a name the release produces")
            continue
        m = p or r
        with zipfile.ZipFile(path) as z:
            entries = z.namelist()
            if p:
                exe = ".exe" if m["os"] == "windows" else ""
                want = f"terraform-provider-ebssnap_v{m['v']}{exe}"
                want_os, want_arch = m["os"], m["arch"]
            else:
                want, want_os = "bootstrap", "linux"
                want_arch = {"x86_64": "amd64", "arm64": "arm64"}[m["arch"]]
            if entries != [want]:
                problems.append(f"{name}: holds {entries}, expected exactly [{want!r}]")
                continue
            kind = binary_kind(z.read(want))
        if kind is None:
            problems.append(f"{name}: {want} is not an executable")
            continue
        got_os, got_arch, static = kind
        if (got_os, got_arch) != (want_os, want_arch):
            problems.append(f"{name}: built for {got_os}/{got_arch}, named {want_os}/{want_arch}")
        if got_os == "linux" and static is False:
            problems.append(f"{name}: dynamically linked (a program interpreter); promised static")
        checked.append(f"{name}: {want} {got_os}/{got_arch}{' static' if static else ''}")
    sums = [f for f in files if f.endswith("_SHA256SUMS")]
    if len(sums) != 1:
        problems.append(f"expected one *_SHA256SUMS, found {sums}")
    else:
        listed = {}
        with open(os.path.join(dist, sums[0])) as f:
            for line in f:
                digest, _, fname = line.strip().partition("  ")
                listed[fname] = digest
        for fname in zips + [f for f in files if f.endswith("_manifest.json")]:
            if listed.get(fname) != sha256(os.path.join(dist, fname)):
                problems.append(f"{sums[0]}: {fname} missing or with a wrong digest")
        for fname in listed:
            if fname not in files:
                problems.append(f"{sums[0]}: lists {fname}, which is not in {dist}")
        sig = os.path.join(dist, sums[0] + ".sig")
        if os.path.exists(sig):
            r = subprocess.run(["gpg", "--batch", "--verify", sig, os.path.join(dist, sums[0])],
                               capture_output=True)
            if r.returncode != 0:
                problems.append(f"{sums[0]}.sig does not verify: {r.stderr.decode(errors='replace').strip()}")
            else:
                checked.append(f"{sums[0]}.sig: good signature")
    for c in checked:
        print("ok   " + c)
    for p in problems:
        print("FAIL " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
