# runner.mk - the wouldblock command (runner/, SPEC §6, §8, §9) and its tests
# (tests/runner/). It links the library's own parser, $(CORE_OBJ), so that it
# reports a configuration error exactly as the library would, and jansson to
# read the library's JSON reports (the library itself stays libc + libdl).
RUNNER := $(BUILD)/wouldblock
RUNNER_SRC := $(wildcard runner/*.c)
RUNNER_OBJ := $(patsubst runner/%.c,$(BUILD)/obj/runner/%.o,$(RUNNER_SRC))
# what the runner's unit tests link: everything but main()
RUNNER_LIB_OBJ := $(filter-out $(BUILD)/obj/runner/main.o,$(RUNNER_OBJ))
RUNNER_LIBS := -ljansson
RUNNER_TESTS := $(BUILD)/tests/runner_json $(BUILD)/tests/runner_prog $(BUILD)/tests/runner-suite

ALL_TARGETS += $(RUNNER) $(RUNNER_TESTS)
TEST_SUITES += $(BUILD)/tests/runner_json $(BUILD)/tests/runner-suite

# $(BUILD)/.prefix (install.mk) changes with PREFIX, and so must WB_LIBDIR.
$(BUILD)/obj/runner/%.o: runner/%.c $(wildcard runner/*.h) $(wildcard shim/*.h) \
		$(BUILD)/.prefix | $(BUILD)/obj/runner
	$(CC) $(WB_CFLAGS) $(CFLAGS) -Irunner -DWB_LIBDIR='"$(PREFIX)/lib/wouldblock"' -c -o $@ $<

$(RUNNER): $(RUNNER_OBJ) $(CORE_OBJ)
	$(CC) $(WB_CFLAGS) $(CFLAGS) -o $@ $^ $(RUNNER_LIBS)

$(BUILD)/obj/runner:
	mkdir -p $@

# The runner's unit tests: reports, recordings, LD_PRELOAD editing.
$(BUILD)/tests/runner_json: tests/runner/test_json.c $(RUNNER_LIB_OBJ) $(CORE_OBJ) \
		$(wildcard runner/*.h) | $(BUILD)/tests
	$(CC) $(WB_CFLAGS) $(CFLAGS) -Irunner -o $@ $< $(RUNNER_LIB_OBJ) $(CORE_OBJ) \
		-lcmocka $(RUNNER_LIBS)

$(BUILD)/tests/runner_prog: tests/runner/prog.c | $(BUILD)/tests
	$(CC) $(WB_CFLAGS) $(CFLAGS) -o $@ $<

# tap-run passes a suite no arguments: a wrapper gives it the build directory.
$(BUILD)/tests/runner-suite: mk/runner.mk | $(BUILD)/tests
	printf '#!/bin/sh\nexec %s/tests/runner/run.sh %s "$$@"\n' '$(CURDIR)' '$(abspath $(BUILD))' >$@
	chmod +x $@
