# bench.mk - `make bench`: what the preload costs per call, at start-up and in
# memory, beside plain runs, strace's and libfiu's injectors and the floor
# (the least any preload costs here, tests/bench/floor.c), and what
# `wouldblock explore` costs per example (tests/bench/explore.py).
# It prints tables and fails only on a broken measurement, never on timing.
#   make bench BENCH_ITERATIONS=100000 BENCH_RUNS=3   (also from the environment)
#   make bench BENCH_ONLY=startup   (sections: ping, inject, startup, rss; the
#                                    explore table is left out then)
BENCH_ITERATIONS ?= 1000000
BENCH_RUNS ?= 5
BENCH_STARTUP_RUNS ?= 200
BENCH_ONLY ?=
BENCH_BIN := $(BUILD)/bench/ping $(BUILD)/bench/spawn $(BUILD)/bench/libfloor.so

ALL_TARGETS += $(BENCH_BIN) $(BUILD)/bench/smoke
TEST_SUITES += $(BUILD)/bench/smoke

.PHONY: bench bench-deps bench-instructions

bench: check-build-deps $(LIB) $(BENCH_BIN) bench-deps $(RUNNER) $(EXAMPLES_BIN)
	python3 tests/bench/run.py --build $(BUILD) --iterations $(BENCH_ITERATIONS) \
		--runs $(BENCH_RUNS) --startup-runs $(BENCH_STARTUP_RUNS) $(if $(BENCH_ONLY),--only $(BENCH_ONLY))
	$(if $(BENCH_ONLY),,python3 tests/bench/explore.py --build $(BUILD))

# Instructions and locked instructions per call, from valgrind's callgrind:
# the same on every run, whatever the machine's load (about a minute).
bench-instructions: check-build-deps $(LIB) $(BENCH_BIN)
	python3 tests/bench/instructions.py --build $(BUILD)

# The comparison rows need strace and libfiu's fiu-run. As root (CI, a fresh
# Debian machine) they are installed; otherwise their rows say what to install.
bench-deps:
	@need=""; \
	command -v strace >/dev/null 2>&1 || need="$$need strace"; \
	command -v fiu-run >/dev/null 2>&1 || need="$$need fiu-utils"; \
	if [ -n "$$need" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "bench: installing:$$need" >&2; \
		export DEBIAN_FRONTEND=noninteractive; \
		{ apt-get install -y -q $$need || { apt-get update -q && apt-get install -y -q $$need; }; } \
			>&2 || echo "bench: could not install$$need: those rows will say n/a" >&2; \
	fi

$(BUILD)/bench/%: tests/bench/%.c tests/bench/timing.h | $(BUILD)/bench
	$(CC) $(WB_CFLAGS) $(CFLAGS) -o $@ $< -ldl

# The floor: the least any preload costs (tests/bench/floor.c), to compare
# the library with. Built here only, never installed.
$(BUILD)/bench/libfloor.so: tests/bench/floor.c | $(BUILD)/bench
	$(CC) $(WB_CFLAGS) $(CFLAGS) -shared -Wl,-z,defs -o $@ $< -ldl

# The smoke test of the benchmark machinery, as a TAP suite (tiny counts, no
# timing checked): a wrapper, because tap-run passes suites no arguments.
$(BUILD)/bench/smoke: tests/bench/run.py mk/bench.mk | $(BUILD)/bench
	printf '#!/bin/sh\nexec python3 %s --smoke --build %s "$$@"\n' \
		'$(CURDIR)/tests/bench/run.py' '$(abspath $(BUILD))' >$@
	chmod +x $@

$(BUILD)/bench:
	mkdir -p $@
