# Tally's front door. `make test` is what CI runs; `make run` starts a local cluster.
SHELL := /bin/bash
CARGO ?= cargo
# The simulator build uses madsim's tokio and must not evict the normal build.
SIM_ENV := RUSTFLAGS="--cfg madsim" CARGO_TARGET_DIR=target/sim

.PHONY: test lint fmt check-madsim test-unit test-sim test-engine-long bench soak mutants run sim sim-build sim-long fuzz help
.PHONY: fuzz-smoke fuzz-install test-fuzz-smoke-if-available

help:
	@echo "make test              lint, build and run the whole suite (what CI runs)"
	@echo "make run               build and start a local 3-node cluster (RUN_DIR=run/local)"
	@echo "make sim               a sweep of simulated seeds (SEEDS=0..200); SEED=n replays one"
	@echo "make sim-long          10,000 simulated seeds on every core"
	@echo "make test-engine-long  the engine property tests with 20x more schedules"
	@echo "make bench             Tally vs redis-server matrix into BENCHMARKS.md, then the engine benchmark"
	@echo "make soak              memory and disk of a 3-node cluster under 10 minutes of 4 KB writes"
	@echo "make mutants           mutation testing of the engine (cargo-mutants; slow)"
	@echo "make fuzz              every fuzz target for FUZZ_SECONDS each (default 60; installs cargo-fuzz)"
	@echo "make fuzz-smoke        every fuzz target for 20 s (part of make test when cargo-fuzz is installed)"

test: lint check-madsim test-unit test-sim test-fuzz-smoke-if-available

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings

fmt:
	$(CARGO) fmt --all

# The node code must build unchanged for the simulator.
check-madsim:
	$(SIM_ENV) $(CARGO) check --workspace

test-unit:
	$(CARGO) test --workspace --all-features

test-engine-long:
	PROPTEST_CASES=20000 $(CARGO) test --release -p engine --test properties

# The issue-#7 matrix, Tally against redis-server, written into BENCHMARKS.md (see
# scripts/bench.sh), then the engine's criterion benchmark.
bench:
	$(CARGO) build --release -p kvstore --bin tally
	scripts/bench.sh
	$(CARGO) bench -p engine

# Memory and disk of a 3-node cluster under DURATION_S (600) of 4 KB writes; see scripts/soak.sh.
soak:
	$(CARGO) build --release -p kvstore --bin tally
	scripts/soak.sh

mutants:
	@command -v cargo-mutants >/dev/null || $(CARGO) install --locked cargo-mutants
	$(CARGO) mutants -p engine --timeout 300 --test-tool cargo -- --all-features

# A local 3-node cluster; data and logs under $(RUN_DIR). Ctrl-C stops it.
RUN_DIR ?= run/local
run:
	$(CARGO) build --release -p kvstore --bin tally
	RUN_DIR=$(RUN_DIR) scripts/run-local-cluster.sh

# Simulation: the `sim` profile (release speed, debug assertions on, see Cargo.toml). `make sim` sweeps SEEDS; `make sim SEED=n`
# replays one seed with full logs and prints its trace hash; `make sim-long` sweeps 10,000
# seeds on every core, in chunks of separate processes (scripts/sim-long.sh says why).
# SIM_ARGS passes more flags (see target/sim/sim/tally-sim --help).
SEEDS ?= 0..200
SIM_ARGS ?=
TALLY_SIM := target/sim/sim/tally-sim
sim-build:
	$(SIM_ENV) $(CARGO) build --profile sim -p sim --bin tally-sim

sim: sim-build
ifdef SEED
	$(TALLY_SIM) --seed $(SEED) $(SIM_ARGS)
else
	$(TALLY_SIM) --seeds $(SEEDS) $(SIM_ARGS)
endif

sim-long: sim-build
	TALLY_SIM=$(TALLY_SIM) SIM_ARGS="$(SIM_ARGS)" scripts/sim-long.sh

# The bounded sweep and the determinism tests, in the simulator build and profile.
test-sim:
	$(SIM_ENV) $(CARGO) test --profile sim -p sim

# Fuzzing; see fuzz/README.md. cargo-fuzz passes nightly-only flags to rustc, which the
# stable toolchain accepts with RUSTC_BOOTSTRAP=1. Each target reads its committed seeds
# (fuzz/corpus/) and keeps what it finds in fuzz/corpus-generated/ (not committed); a
# crash stops the run and leaves its input in fuzz/artifacts/.
FUZZ_TARGETS := resp wal_recover peer_frame engine_steps commands
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS := 20
FUZZ := RUSTC_BOOTSTRAP=1 $(CARGO) fuzz

fuzz: FUZZ_RUN_SECONDS = $(FUZZ_SECONDS)
fuzz-smoke: FUZZ_RUN_SECONDS = $(FUZZ_SMOKE_SECONDS)
fuzz fuzz-smoke: fuzz-install
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml -- --check
	$(FUZZ) build
	@for target in $(FUZZ_TARGETS); do \
	  echo "fuzz: $$target for $(FUZZ_RUN_SECONDS) s"; \
	  mkdir -p fuzz/corpus-generated/$$target; \
	  $(FUZZ) run $$target fuzz/corpus-generated/$$target fuzz/corpus/$$target -- \
	    -max_total_time=$(FUZZ_RUN_SECONDS) -timeout=30 -print_final_stats=1 || exit 1; \
	done

fuzz-install:
	@$(CARGO) fuzz --version >/dev/null 2>&1 || $(CARGO) install --locked cargo-fuzz

test-fuzz-smoke-if-available:
	@if $(CARGO) fuzz --version >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory fuzz-smoke; \
	else \
	  echo "cargo-fuzz is not installed: skipping the fuzz smoke run (make fuzz-install)" >&2; \
	fi
