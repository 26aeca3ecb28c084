# stress.mk - the proof suite for faithful readiness and robustness
# (tests/stress/): threads, signals, fork/vfork/exec, data integrity,
# preload order, epoll/poll/select readiness, until=poll and spins.
#
#   make stress                       just this suite (also part of `make test`)
#   make stress BUILD=build/asan SAN_FLAGS='-fsanitize=address,undefined' \
#       WB_PRELOAD_PREFIX="$$(gcc -print-file-name=libasan.so)"
#   make stress BUILD=build/tsan SAN_FLAGS=-fsanitize=thread \
#       WB_PRELOAD_PREFIX="$$(gcc -print-file-name=libtsan.so)" WB_ONLY=threaded
#
# The driver reads from the environment: WB_PRELOAD_PREFIX (put before the
# library in LD_PRELOAD: a sanitizer runtime), WB_ONLY (tags or case names,
# comma-separated), WB_STRESS_SCALE (multiplies the issue's iteration counts;
# default 1) and WB_STRESS_TIMEOUT_SCALE (multiplies the hang guards).
STRESS_PROGS := threads signals forks integrity preload_prog readiness spin
STRESS_PROG_BIN := $(addprefix $(BUILD)/stress/,$(STRESS_PROGS))
STRESS_BIN := $(STRESS_PROG_BIN) $(BUILD)/stress/libwbother.so $(BUILD)/stress/run
# libasan in front of the library, on a program built with -fsanitize=address:
# not in a ThreadSanitizer build, whose flags cannot be combined with it, nor
# with a compiler that has no AddressSanitizer runtime (the case is skipped)
ifeq ($(findstring thread,$(SAN_FLAGS)),)
STRESS_ASAN_LINKS := $(shell echo 'int main(void){return 0;}' | \
	$(CC) -fsanitize=address -x c - -o /dev/null >/dev/null 2>&1 && echo yes)
ifeq ($(STRESS_ASAN_LINKS),yes)
STRESS_BIN += $(BUILD)/stress/preload_prog_asan
endif
endif

ALL_TARGETS += $(STRESS_BIN)
TEST_SUITES += $(BUILD)/stress/run
# `make tsan` runs it with WB_ONLY=threaded
THREADED_SUITES += $(BUILD)/stress/run

.PHONY: stress
stress: check-build-deps $(LIB) $(STRESS_BIN)
	@tests/tap-run $(BUILD)/stress/run

$(STRESS_PROG_BIN): $(BUILD)/stress/%: tests/stress/%.c tests/stress/stress.h | $(BUILD)/stress
	$(CC) $(WB_CFLAGS) $(CFLAGS) -o $@ $< -lpthread

$(BUILD)/stress/preload_prog_asan: tests/stress/preload_prog.c tests/stress/stress.h | $(BUILD)/stress
	$(CC) $(WB_CFLAGS) $(CFLAGS) -fsanitize=address -o $@ $<

# another preload, to stand before and after the library in LD_PRELOAD
$(BUILD)/stress/libwbother.so: tests/stress/preload_other.c | $(BUILD)/stress
	$(CC) $(WB_CFLAGS) $(CFLAGS) -shared -o $@ $< -ldl

# tap-run passes suites no arguments: a wrapper names the build directory
$(BUILD)/stress/run: tests/stress/run.py mk/stress.mk | $(BUILD)/stress
	printf '#!/bin/sh\nexec python3 %s --build %s "$$@"\n' \
		'$(CURDIR)/tests/stress/run.py' '$(abspath $(BUILD))' >$@
	chmod +x $@

$(BUILD)/stress:
	mkdir -p $@
