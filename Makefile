# ferry — see README.md. All targets except build/lint/clean expect root.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
export PATH := $(HOME)/.cargo/bin:/root/.cargo/bin:$(PATH)

.PHONY: all build deps demo test test-cgroup-v2 bench lint clean

all: build

build:
	cargo build --release

deps:
	bash scripts/deps.sh

demo:
	@echo "==> installing dependencies (scripts/deps.sh)"
	bash scripts/deps.sh
	@echo "==> building ferry (cargo build --release)"
	cargo build --release
	bash scripts/demo.sh

test:
	bash scripts/deps.sh
	cargo build --release
	cargo test --profile fasttest -- --test-threads=2
	if [ -f integration/run.sh ]; then bash integration/run.sh; fi
	bash integration/cgroup-v2.sh

# ferry's cgroup checks on a pure cgroup v2 kernel, in qemu (about a minute).
test-cgroup-v2:
	cargo build --release
	bash integration/cgroup-v2.sh

bench:
	bash scripts/deps.sh
	cargo build --release
	bash bench/bench.sh
	bash bench/unpack.sh

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

clean:
	cargo clean
	rm -rf demo/
