# mk/musl.mk - the musl leg (Alpine's C library): `make test-musl` builds
# the library, the runner and the C programs of the end-to-end and examples
# suites with musl-gcc into $(MUSL_BUILD), then runs those suites there. A
# musl-built library loads only into musl-linked programs, so the drivers
# (WB_MUSL=1) run the C programs built here and skip the rest, saying why:
# Python (linked with glibc) and the fortified probe (musl has no _chk entry
# points). `make CC=musl-gcc BUILD=build/musl` alone builds MUSL_TARGETS.
MUSL_BUILD ?= build/musl
MUSL_TARGETS = $(LIB) $(RUNNER) $(E2E_DIR)/wbprobe $(E2E_DIR)/early $(E2E_DIR)/libearly.so \
	$(E2E_RUN) $(E2E_ZEROCOPY) $(EXAMPLES_BIN) $(BUILD)/tests/examples-suite

.PHONY: test-musl
test-musl: check-test-deps
	@tests/deps.sh musl
	$(MAKE) CC=musl-gcc BUILD=$(MUSL_BUILD) all
	@WB_MUSL=1 tests/tap-run $(MUSL_BUILD)/e2e/run $(MUSL_BUILD)/e2e/zerocopy \
		$(MUSL_BUILD)/tests/examples-suite
