# Entry points named in the README. `make test` is what CI runs.
SHELL := /bin/bash
TARGET := x86_64-unknown-linux-musl
# Module crates are the folders holding a sidecar <name>/<name>.yml.
MODULES := $(patsubst modules/%/,%,$(dir $(wildcard modules/*/*.yml)))
VENV := .venv/core-latest

.PHONY: setup build lint unit lab-image system molecule lab lab-clean test bench clean

setup:
	tests/setup.sh

# Static binaries plus their ansible-doc sidecars, staged where ansible.cfg's
# `library` points. Cargo writes under $CARGO_TARGET_DIR when it is set.
RELEASE_DIR = $(or $(CARGO_TARGET_DIR),target)/$(TARGET)/release
build: setup
	cargo build --release --locked --target $(TARGET) $(addprefix -p ,$(MODULES))
	mkdir -p library
	install -m 0755 $(addprefix $(RELEASE_DIR)/,$(MODULES)) library/
	install -m 0644 $(foreach m,$(MODULES),modules/$(m)/$(m).yml) library/

# ansible-lint resolves our modules through ansible.cfg's library: build first.
lint: build
	cargo fmt --all -- --check
	cargo clippy --locked --workspace --all-targets -- -D warnings
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" ansible-lint --profile production playbooks/ roles/ molecule/

unit: setup
	INSTA_UPDATE=no cargo test --locked --workspace

lab-image: setup
	tests/lab/build-image.sh all

system: build lab-image
	$(VENV)/bin/pytest -v tests/system

# The fixture vendor package the Molecule scenarios and the lab build from.
VENDOR_PACKAGE := tests/fixtures/out/aacraid-dkms-1.2.1.41024.tgz
$(VENDOR_PACKAGE):
	tests/fixtures/make-vendor-package.sh --version 1.2.1.41024 tests/fixtures/out

molecule: build lab-image $(VENDOR_PACKAGE)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" molecule test -s default
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" molecule test -s fleet

# The README's first command: a build host and three servers as containers, the rollout,
# a QEMU boot of one server's new image, the facts table. `make lab-clean` removes it.
lab: build lab-image $(VENDOR_PACKAGE)
	tests/lab/run-lab.sh

lab-clean:
	tests/lab/run-lab.sh --clean

test: lint unit system molecule

bench: build lab-image
	$(VENV)/bin/python tests/bench/facts_vs_command.py
	$(VENV)/bin/python tests/bench/build_idempotence.py
	$(VENV)/bin/python tests/bench/regen_vs_regenerate_all.py
	tests/lab/build-image.sh --python all
	$(VENV)/bin/python tests/bench/rollout_vs_notes.py

clean:
	rm -rf library target
