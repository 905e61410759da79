# ferry — see README.md. All targets except build/lint/clean expect root.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
export PATH := $(HOME)/.cargo/bin:/root/.cargo/bin:$(PATH)

.PHONY: all build deps demo test test-cgroup-v2 test-systemd stress fuzz bench lint clean

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
	FERRY_NO_SKIP=1 cargo test --profile fasttest -- --test-threads=2
	if [ -f integration/run.sh ]; then bash integration/run.sh; fi
	bash integration/cgroup-v2.sh
	bash integration/systemd.sh

# ferry's cgroup checks on a pure cgroup v2 kernel, in qemu (about a minute).
test-cgroup-v2:
	cargo build --release
	bash integration/cgroup-v2.sh

# The reliability suite (tests/reliability.rs, tests/hostile_input.rs) at
# full size: 1000 sequential create/start/delete cycles and waves of up to
# 50 parallel containers, as root and rootless (user ferrytest), 200000
# hostile inputs per target. Figures: target/stress-report.txt, written up
# in docs/reliability.md.
STRESS_N ?= 1000
STRESS_PAR ?= 50
stress:
	bash scripts/deps.sh
	cargo build --release
	rm -f target/stress-report.txt
	FERRY_STRESS_N=$(STRESS_N) FERRY_STRESS_PAR=$(STRESS_PAR) FERRY_FUZZ_ITERS=200000 \
	FERRY_STRESS_REPORT=$(CURDIR)/target/stress-report.txt \
	cargo test --release --test reliability --test hostile_input -- --test-threads=1 --nocapture
	@echo "==> figures (target/stress-report.txt)"
	@cat target/stress-report.txt

# cargo-fuzz (nightly) on each target of fuzz/ for FUZZ_SECS seconds; a
# single allocation above 64 MiB counts as a crash. See fuzz/README.md.
FUZZ_SECS ?= 60
fuzz:
	rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	cargo +nightly fuzz build -O
	for t in config strings tar; do \
		mkdir -p fuzz/corpus/$$t; \
		cargo +nightly fuzz run -O $$t fuzz/corpus/$$t fuzz/seeds/$$t -- \
			-max_total_time=$(FUZZ_SECS) -rss_limit_mb=1024 -malloc_limit_mb=64; \
	done

bench:
	bash scripts/deps.sh
	cargo build --release
	bash bench/bench.sh
	bash bench/unpack.sh
	bash bench/run.sh
	bash bench/registry.sh
	bash bench/systemd.sh
	bash bench/build.sh

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

clean:
	cargo clean
	rm -rf demo/

# ferry on a systemd host (Debian 12 guest, systemd as PID 1, cgroup v2):
# the systemd cgroup driver, rootless through the user manager, containerd's
# CRI with SystemdCgroup = true, rootless podman (about 5 minutes; the guest
# image is built once, 3 to 6 minutes, and cached under /var/tmp).
test-systemd:
	cargo build --release
	bash integration/systemd.sh
