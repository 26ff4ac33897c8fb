# Entry points named in the README. `make test` is what CI runs.
SHELL := /bin/bash
TARGET := x86_64-unknown-linux-musl
# Module crates are the folders holding a sidecar <name>/<name>.yml.
MODULES := $(patsubst modules/%/,%,$(dir $(wildcard modules/*/*.yml)))
VENV := .venv/core-latest
# The steps of `make test` print when they start and end (the parallel ones print
# their output whole when they end).
STARTED = @echo "[$@ started $$(date +%T)]"
ENDED = @echo "[$@ ended $$(date +%T)]"
# VENDOR_VERSION and MODULE_VERSION of the fixture vendor driver.
include tests/fixtures/version.env

.PHONY: setup build collection collection-test lint unit fuzz lab-image vm-image system signature-boot vm-reboot crash-sample crash molecule molecule-default molecule-fleet lab lab-clean test bench bench-fleet clean

setup:
	tests/setup.sh

# Static binaries plus their ansible-doc sidecars, staged where ansible.cfg's
# `library` points. Cargo writes under $CARGO_TARGET_DIR when it is set.
# One cargo run per module: in one run cargo would give every binary the
# features any of them asks of a shared crate (the larger gzip decoder that
# only the image readers link, see crates/formats/Cargo.toml).
RELEASE_DIR = $(or $(CARGO_TARGET_DIR),target)/$(TARGET)/release
build: setup
	$(foreach m,$(MODULES),cargo build --release --locked --target $(TARGET) -p $(m) &&) true
	mkdir -p library
	install -m 0755 $(addprefix $(RELEASE_DIR)/,$(MODULES)) library/
	install -m 0644 $(foreach m,$(MODULES),modules/$(m)/$(m).yml) library/

# The collection raidfleet.driver_rollout (collection/, tools/build-collection.sh): the
# tarball, binaries included, in dist/; its staged tree in target/collection.
collection: build
	ANSIBLE_GALAXY=$(VENV)/bin/ansible-galaxy tools/build-collection.sh --tarball dist target/collection

# The collection as a user gets it (tests/collection): installed from its tarball on
# controllers holding only ansible-core 2.16 and the newest, used from a folder outside the
# repository (ansible-doc, ad hoc, the rollout over SSH against lab containers); ansible-test
# sanity; the changelog; the execution environment's build context.
collection-test: build lab-image
	$(STARTED)
	$(VENV)/bin/pytest -v -n 2 -p no:randomly $(DURATIONS) tests/collection
	$(ENDED)

# Each pytest step of `make test` ends with its slowest tests and their times, so that a
# CI log shows where the time goes.
DURATIONS := --durations=15 --durations-min=20

# ansible-lint resolves our modules through ansible.cfg's library: build first.
lint: build
	$(STARTED)
	cargo fmt --all -- --check
	cargo clippy --locked --workspace --all-targets -- -D warnings
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" ansible-lint --profile production playbooks/ roles/ molecule/ collection/ ee/ execution-environment.yml
	$(ENDED)

# Includes the bounded property tests of every parser of outside bytes
# (crates/*/tests/fuzz.rs), each under its own address-space limit.
# Run once more for formats alone: in the workspace run it gets the features of
# the image readers (zlib-rs, libzstd), alone its default decoders (miniz_oxide,
# ruzstd), which aacraid_build and kmod_update link.
unit: setup
	$(STARTED)
	INSTA_UPDATE=no cargo test --locked --workspace
	INSTA_UPDATE=no cargo test --locked -p formats
	$(ENDED)

# The long sweep of those property tests: FUZZ_SCALE times the cases of
# `make unit` (see crates/formats/tests/harness/mod.rs).
FUZZ_SCALE ?= 10
FUZZ_CRATES := formats linux_host ansible_protocol
fuzz:
	FUZZ_SCALE=$(FUZZ_SCALE) cargo test --locked $(addprefix -p ,$(FUZZ_CRATES)) --test fuzz

lab-image: setup
	$(STARTED)
	tests/lab/build-image.sh all
	$(ENDED)

# The lab's virtual-machine disk (GRUB, systemd, sshd), made from aacraid-lab:initramfs-tools.
vm-image: lab-image
	$(STARTED)
	tests/lab/build-vm.sh
	$(ENDED)

# The system tests run in random order (pytest-randomly prints its seed first; rerun an
# order with SYSTEM_ARGS=--randomly-seed=N) on two workers (pytest-xdist): every test
# makes its own containers, and what several share (the vendor packages, the artifacts)
# is files made once per run (tests/system/conftest.py).
SYSTEM_WORKERS ?= 2
SYSTEM_ARGS ?=
# The QEMU boots of test_signature_boot.py keep a core busy for minutes: `make test` runs
# them as `signature-boot`, beside Molecule and the crash sample, which mostly wait.
system: build lab-image
	$(STARTED)
	$(VENV)/bin/pytest -v -n $(SYSTEM_WORKERS) $(DURATIONS) $(SYSTEM_ARGS) --ignore=tests/system/test_signature_boot.py \
		--ignore=tests/system/test_vm_reboot.py tests/system
	$(ENDED)

signature-boot: build lab-image
	$(STARTED)
	$(VENV)/bin/pytest -v $(DURATIONS) tests/system/test_signature_boot.py
	$(ENDED)

# The rollout over SSH against a virtual machine that really reboots, and a canary whose
# reboot fails and stops the rollout (-s prints the boot and reboot times).
vm-reboot: build vm-image
	$(STARTED)
	$(VENV)/bin/pytest -v -s $(DURATIONS) tests/system/test_vm_reboot.py
	$(ENDED)

# The crash-consistency harness (tests/crash): every write-side system call of a module run is a
# kill point; `crash-sample` (in `make test`) tries a fixed spread of them and 3 concurrency
# rounds, `crash` every distinct point and 50 rounds (see the README for its length).
crash-sample: build lab-image
	$(STARTED)
	$(VENV)/bin/pytest -v $(DURATIONS) tests/crash
	$(ENDED)

crash: build lab-image
	CRASH_SWEEP=full $(VENV)/bin/pytest -v tests/crash

# The fixture vendor package the Molecule scenarios and the lab build from.
VENDOR_PACKAGE := tests/fixtures/out/aacraid-dkms-$(VENDOR_VERSION).tgz
$(VENDOR_PACKAGE):
	tests/fixtures/make-vendor-package.sh --version $(VENDOR_VERSION) --module-version $(MODULE_VERSION) tests/fixtures/out

# The scenarios read the fixture from these variables. Their container names end in
# MOLECULE_RUN_ID, one per checkout (Molecule keeps a scenario's state per project folder),
# so that runs from two checkouts on one Docker host leave each other's containers alone.
MOLECULE_RUN_ID ?= $(shell printf %s "$(CURDIR)" | sha256sum | cut -c1-8)
MOLECULE := PATH="$(CURDIR)/$(VENV)/bin:$$PATH" AACRAID_VENDOR_PACKAGE=$(VENDOR_PACKAGE) \
	AACRAID_MODULE_VERSION=$(MODULE_VERSION) MOLECULE_RUN_ID=$(MOLECULE_RUN_ID) molecule

molecule: molecule-default molecule-fleet
molecule-default molecule-fleet: molecule-%: build lab-image $(VENDOR_PACKAGE)
	$(STARTED)
	$(MOLECULE) test -s $*
	$(ENDED)

# The README's first command: a build host and three servers as containers and one server
# as a virtual machine, all over SSH; the rollout, with a real reboot of the VM; a QEMU boot
# of one container server's new image; the facts table. `make lab-clean` removes it.
lab: build vm-image $(VENDOR_PACKAGE)
	tests/lab/run-lab.sh

lab-clean:
	tests/lab/run-lab.sh --clean

# Steps that mostly wait (the image builds on the package mirror, Molecule on its hosts)
# run beside others; each step's output is printed whole when it ends, with the times it
# started and ended. The system tests keep both cores busy, and the VM disk
# build mostly writes files, so it runs beside them. The two longest steps of the last
# group come first, so that the short ones fill in beside them.
PARALLEL := $(MAKE) --no-print-directory --output-sync=target -j2
test:
	$(PARALLEL) lab-image lint unit
	$(PARALLEL) system vm-image
	$(PARALLEL) crash-sample vm-reboot collection-test molecule-default molecule-fleet signature-boot

# Every benchmark runs even when an earlier one misses its targets (exit 1);
# `make bench` then fails. BENCH_ARGS goes to each, e.g. BENCH_ARGS="--rounds 5"
# or BENCH_ARGS=--report-only. Not part of `make test`. The last, the rollout on 20
# servers and a build host (tests/bench/fleet_rollout.py, FLEET_BENCH_ARGS added), takes
# about 80 minutes at the lab's dracut setting (`--lab-dracut`: gzip -1 on both sides) and
# without our `rebuild` row; with Debian's dracut and that row, several hours.
# `make bench-fleet` runs it alone.
BENCHMARKS := facts_vs_command facts_cache build_idempotence regen_vs_regenerate_all append_vs_rebuild rollout_vs_notes task_cost fleet_rollout
BENCH_ARGS ?=
FLEET_BENCH_ARGS ?= --lab-dracut --skip-rebuild
bench: build lab-image
	tests/lab/build-image.sh --python all
	@failed=""; for b in $(BENCHMARKS); do \
		extra=""; [ "$$b" = fleet_rollout ] && extra="$(FLEET_BENCH_ARGS)"; \
		echo "== tests/bench/$$b.py $(BENCH_ARGS) $$extra"; \
		$(VENV)/bin/python tests/bench/$$b.py $(BENCH_ARGS) $$extra || failed="$$failed $$b"; \
	done; \
	if [ -n "$$failed" ]; then echo "benchmarks that failed or missed a target:$$failed" >&2; exit 1; fi

bench-fleet: build lab-image
	tests/lab/build-image.sh --python all
	$(VENV)/bin/python tests/bench/fleet_rollout.py $(BENCH_ARGS) $(FLEET_BENCH_ARGS)

clean:
	rm -rf library target dist
