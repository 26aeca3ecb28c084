# mk/musl.mk - the musl leg (Alpine's C library): `make test-musl` builds
# the library, the runner and the C programs of the end-to-end and examples
# suites with musl-gcc into $(MUSL_BUILD), then runs those suites there. A
# musl-built library loads only into musl-linked programs, so the drivers
# (WB_MUSL=1) run the C programs built here and skip the rest, saying why:
# Python (linked with glibc) and the fortified probe (musl has no _chk entry
# points). `make CC=musl-gcc BUILD=build/musl` alone builds MUSL_TARGETS.
MUSL_BUILD ?= build/musl
MUSL_TARGETS = $(LIB) $(MUSL_RUNNER) $(E2E_DIR)/wbprobe $(E2E_DIR)/early $(E2E_DIR)/libearly.so \
	$(E2E_RUN) $(E2E_ZEROCOPY) $(EXAMPLES_BIN) $(BUILD)/tests/examples-suite
# A runner that links a library besides libc (jansson, RUNNER_LIBS) is built
# only where the compiler finds it: Alpine's jansson-dev does, Debian's
# musl-gcc cannot use the glibc-built one.
MUSL_RUNNER = $(if $(RUNNER_LIBS),$(if $(MUSL_RUNNER_LIBS_FOUND),$(RUNNER),$(warning \
	musl: the runner needs $(RUNNER_LIBS) built for musl; not built)),$(RUNNER))
MUSL_RUNNER_LIBS_FOUND = $(shell printf 'int main(void){return 0;}' | \
	$(CC) -x c - -o /dev/null $(RUNNER_LIBS) 2>/dev/null && echo 1)

.PHONY: test-musl
test-musl: check-test-deps
	@tests/deps.sh musl
	$(MAKE) CC=musl-gcc BUILD=$(MUSL_BUILD) all
	@WB_MUSL=1 tests/tap-run $(MUSL_BUILD)/e2e/run $(MUSL_BUILD)/e2e/zerocopy \
		$(MUSL_BUILD)/tests/examples-suite
