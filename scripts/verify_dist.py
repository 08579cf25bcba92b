#!/usr/bin/env python3
"""Checks every artifact in dist/ (`make verify-dist`): each zip holds exactly one binary named
as the Terraform registry (provider) or Lambda (runner: `bootstrap`) requires, built for the OS
and architecture its file name says (read from the ELF / Mach-O / PE header, no emulation), and
self-contained where promised: Linux binaries are static (no program interpreter); macOS
binaries load only the system's libraries and frameworks (/usr/lib, /System/Library), are
executables for macOS 11 (arm64, ad-hoc signed as Apple silicon requires) or 10.12 (x86_64) and
later; Windows binaries are console programs importing only system DLLs (no MinGW runtime);
SHA256SUMS lists every zip and the manifest with the right digests; SHA256SUMS.sig, when
present, verifies with gpg.

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


MACOS_MIN = {"arm64": (11, 0), "amd64": (10, 12)}
WINDOWS_SYSTEM_DLLS = {
    "kernel32.dll", "ntdll.dll", "advapi32.dll", "bcrypt.dll", "bcryptprimitives.dll",
    "crypt32.dll", "ncrypt.dll", "secur32.dll", "ws2_32.dll", "userenv.dll", "user32.dll",
    "ole32.dll", "oleaut32.dll", "shell32.dll", "iphlpapi.dll", "msvcrt.dll", "ucrtbase.dll",
    "synchronization.dll", "dbghelp.dll", "rpcrt4.dll", "netapi32.dll",
}


def macho_problems(data: bytes, arch: str):
    """What a Mach-O executable breaks of the release's promises (empty when none)."""
    problems = []
    filetype, ncmds = struct.unpack_from("<III", data, 12)[0], struct.unpack_from("<I", data, 16)[0]
    if filetype != 2:
        problems.append(f"Mach-O file type {filetype}, not an executable (2)")
    off, minos, signed = 32, None, False
    for _ in range(ncmds):
        cmd, size = struct.unpack_from("<II", data, off)
        if cmd in (0xC, 0x80000018, 0x8000001F):  # LC_LOAD_DYLIB, _WEAK_, LC_REEXPORT_DYLIB
            name_off = struct.unpack_from("<I", data, off + 8)[0]
            name = data[off + name_off:off + size].split(b"\0", 1)[0].decode()
            if not name.startswith(("/usr/lib/", "/System/Library/")):
                problems.append(f"loads {name}, which is not part of macOS")
        elif cmd == 0x32:  # LC_BUILD_VERSION: platform, minos (xxxx.yy.zz nibbles)
            platform, v = struct.unpack_from("<II", data, off + 8)
            minos = (v >> 16, (v >> 8) & 0xFF)
            if platform != 1:
                problems.append(f"built for Mach-O platform {platform}, not macOS (1)")
        elif cmd == 0x24:  # LC_VERSION_MIN_MACOSX
            v = struct.unpack_from("<I", data, off + 8)[0]
            minos = (v >> 16, (v >> 8) & 0xFF)
        elif cmd == 0x1D:  # LC_CODE_SIGNATURE
            signed = True
        off += size
    want = MACOS_MIN.get(arch)
    if minos is None:
        problems.append("no minimum macOS version")
    elif want and minos > want:
        problems.append(f"needs macOS {minos[0]}.{minos[1]}, promised {want[0]}.{want[1]}")
    if arch == "arm64" and not signed:
        problems.append("no code signature (Apple silicon runs only signed code; ad-hoc is enough)")
    return problems


def pe_imports(data: bytes):
    """The DLLs a PE32+ image imports, and its subsystem."""
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    nsections, opt_size = struct.unpack_from("<H", data, pe + 6)[0], struct.unpack_from("<H", data, pe + 20)[0]
    opt = pe + 24
    subsystem = struct.unpack_from("<H", data, opt + 68)[0]
    import_rva = struct.unpack_from("<I", data, opt + 112 + 8)[0]  # data directory 1 (PE32+)
    sections = []
    for i in range(nsections):
        sh = opt + opt_size + i * 40
        vsize, va, rawsize, rawptr = struct.unpack_from("<IIII", data, sh + 8)
        sections.append((va, max(vsize, rawsize), rawptr))

    def at(rva):
        for va, size, raw in sections:
            if va <= rva < va + size:
                return rva - va + raw
        raise ValueError(f"RVA {rva:#x} outside every section")

    dlls, off = [], at(import_rva) if import_rva else None
    while off is not None:
        name_rva = struct.unpack_from("<I", data, off + 12)[0]
        if name_rva == 0:
            break
        n = at(name_rva)
        dlls.append(data[n:data.index(b"\0", n)].decode().lower())
        off += 20
    return dlls, subsystem


def pe_problems(data: bytes):
    dlls, subsystem = pe_imports(data)
    problems = []
    if subsystem != 3:
        problems.append(f"PE subsystem {subsystem}, not a console program (3)")
    for dll in dlls:
        if not (dll in WINDOWS_SYSTEM_DLLS or dll.startswith("api-ms-win-")):
            problems.append(f"imports {dll}, which is not part of Windows")
    return problems


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
            z_data = z.read(want)
            kind = binary_kind(z_data)
        if kind is None:
            problems.append(f"{name}: {want} is not an executable")
            continue
        got_os, got_arch, static = kind
        if (got_os, got_arch) != (want_os, want_arch):
            problems.append(f"{name}: built for {got_os}/{got_arch}, named {want_os}/{want_arch}")
        if got_os == "linux" and static is False:
            problems.append(f"{name}: dynamically linked (a program interpreter); promised static")
        if got_os == "darwin":
            problems += [f"{name}: {p}" for p in macho_problems(z_data, got_arch)]
        if got_os == "windows":
            problems += [f"{name}: {p}" for p in pe_problems(z_data)]
        detail = {"linux": " static" if static else "", "darwin": " system libraries only",
                  "windows": " system DLLs only"}.get(got_os, "")
        checked.append(f"{name}: {want} {got_os}/{got_arch}{detail}")
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
