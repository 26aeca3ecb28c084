# runner.mk - the wouldblock command (shim/runner.c, SPEC §6) and its tests
# (tests/runner/). It links the library's own parser, $(CORE_OBJ), so that it
# reports a configuration error exactly as the library would.
RUNNER := $(BUILD)/wouldblock
RUNNER_TESTS := $(BUILD)/tests/runner_json $(BUILD)/tests/runner_prog $(BUILD)/tests/runner-suite

ALL_TARGETS += $(RUNNER) $(RUNNER_TESTS)
TEST_SUITES += $(BUILD)/tests/runner_json $(BUILD)/tests/runner-suite

# $(BUILD)/.prefix (install.mk) changes with PREFIX, and so must WB_LIBDIR.
$(RUNNER): shim/runner.c $(CORE_OBJ) $(wildcard shim/*.h) $(BUILD)/.prefix
	$(CC) $(WB_CFLAGS) $(CFLAGS) -DWB_LIBDIR='"$(PREFIX)/lib/wouldblock"' -o $@ \
		shim/runner.c $(CORE_OBJ)

# The report reader's unit tests: they include runner.c for its static functions.
$(BUILD)/tests/runner_json: tests/runner/test_json.c shim/runner.c $(CORE_OBJ) \
		$(wildcard shim/*.h) | $(BUILD)/tests
	$(CC) $(WB_CFLAGS) $(CFLAGS) -o $@ $< $(CORE_OBJ) -lcmocka

$(BUILD)/tests/runner_prog: tests/runner/prog.c | $(BUILD)/tests
	$(CC) $(WB_CFLAGS) $(CFLAGS) -o $@ $<

# tap-run passes a suite no arguments: a wrapper gives it the build directory.
$(BUILD)/tests/runner-suite: mk/runner.mk | $(BUILD)/tests
	printf '#!/bin/sh\nexec %s/tests/runner/run.sh %s "$$@"\n' '$(CURDIR)' '$(abspath $(BUILD))' >$@
	chmod +x $@
