# fuzz.mk - the scenario-language fuzzer (tests/fuzz/).
#
#   make fuzz                       libFuzzer for FUZZ_TIME seconds (default 60)
#   make fuzz FUZZ_RUNS=2000000     ... or for that many executions
#   make fuzz FUZZ_JOBS=2           ... in that many processes (-fork=N)
#   make fuzz-repro FUZZ_INPUT=F    run one input (a crash file) under the fuzzer build
#   make fuzz-minimize FUZZ_INPUT=F shrink a crash to $(BUILD)/fuzz/minimized
#
# The target (tests/fuzz/fuzz_config.c) is built with clang, libFuzzer, ASan
# and UBSan. New corpus entries go to $(BUILD)/fuzz/corpus and crashes to
# $(BUILD)/fuzz/artifacts/: the committed seed corpus never grows by itself.
# A crash worth keeping is copied by hand to tests/fuzz/regressions/, which
# `make test` replays through the same target built with $(CC) and no
# libFuzzer ($(BUILD)/fuzz/fuzz-regress, a TAP suite).
FUZZ_CC ?= clang
FUZZ_TIME ?= 60
FUZZ_RUNS ?= -1
FUZZ_JOBS ?= 1
FUZZ_MAX_LEN ?= 4096
FUZZ_ARGS ?=

FUZZ_DIR := $(BUILD)/fuzz
FUZZ_BIN := $(FUZZ_DIR)/fuzz_config
FUZZ_REGRESS := $(FUZZ_DIR)/fuzz-regress
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
# $(WB_CFLAGS) is written for gcc: clang must not stop at gcc-only warnings
FUZZ_CFLAGS := $(WB_CFLAGS) -Wno-unknown-warning-option -g -O1 $(FUZZ_SAN)
FUZZ_OBJ := $(addprefix $(FUZZ_DIR)/obj/,rules.o config.o embed.o fuzz_config.o)
FUZZ_FLAGS := -dict=tests/fuzz/rules.dict -max_len=$(FUZZ_MAX_LEN) -timeout=10 \
	-artifact_prefix=$(FUZZ_DIR)/artifacts/ -print_final_stats=1

ALL_TARGETS += $(FUZZ_REGRESS)
TEST_SUITES += $(FUZZ_REGRESS)

.PHONY: fuzz fuzz-build fuzz-repro fuzz-minimize

fuzz: $(FUZZ_BIN)
	@mkdir -p $(FUZZ_DIR)/corpus $(FUZZ_DIR)/artifacts
	$(FUZZ_BIN) $(FUZZ_FLAGS) -max_total_time=$(FUZZ_TIME) -runs=$(FUZZ_RUNS) \
		$(if $(filter-out 1,$(FUZZ_JOBS)),-fork=$(FUZZ_JOBS)) $(FUZZ_ARGS) \
		$(FUZZ_DIR)/corpus tests/fuzz/corpus tests/fuzz/regressions

fuzz-build: $(FUZZ_BIN)

fuzz-repro: $(FUZZ_BIN)
	@test -n "$(FUZZ_INPUT)" || { echo "usage: make fuzz-repro FUZZ_INPUT=FILE" >&2; exit 2; }
	$(FUZZ_BIN) $(FUZZ_INPUT)

fuzz-minimize: $(FUZZ_BIN)
	@test -n "$(FUZZ_INPUT)" || { echo "usage: make fuzz-minimize FUZZ_INPUT=FILE" >&2; exit 2; }
	@mkdir -p $(FUZZ_DIR)/artifacts
	$(FUZZ_BIN) -minimize_crash=1 -runs=200000 -max_total_time=120 \
		-artifact_prefix=$(FUZZ_DIR)/artifacts/ -exact_artifact_path=$(FUZZ_DIR)/minimized \
		$(FUZZ_INPUT)
	@echo "minimized: $(FUZZ_DIR)/minimized"

$(FUZZ_BIN): $(FUZZ_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^

$(FUZZ_DIR)/obj/%.o: shim/%.c $(wildcard shim/*.h) $(FUZZ_DIR)/obj/.clang-ok
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_DIR)/obj/fuzz_config.o: tests/fuzz/fuzz_config.c $(wildcard shim/*.h) \
		$(FUZZ_DIR)/obj/.clang-ok
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_DIR)/obj/embed.o: shim/embed.S conf/wouldblock.conf $(FUZZ_DIR)/obj/.clang-ok
	$(FUZZ_CC) -c -DWB_CONF_PATH='"conf/wouldblock.conf"' -o $@ $<

# clang and libFuzzer's runtime (installed as root, else the command to run)
$(FUZZ_DIR)/obj/.clang-ok: tests/fuzz/check-clang.sh
	@mkdir -p $(@D)
	@tests/fuzz/check-clang.sh $(FUZZ_CC)
	@touch $@

# The regression suite: the same checks, no libFuzzer, $(CC) and its
# sanitizers when it has them (rules.c and config.c compiled in, so they are
# instrumented too).
FUZZ_REGRESS_SRC := tests/fuzz/regress_main.c tests/fuzz/fuzz_config.c shim/rules.c shim/config.c

# Expanded only when the recipe runs: no compiler probe on every make. A
# build that already has its sanitizer (make sanitize, make tsan: SAN_FLAGS)
# keeps it alone; ThreadSanitizer cannot be combined with ASan.
FUZZ_REGRESS_SAN = $(if $(SAN_FLAGS),$(if $(findstring address,$(SAN_FLAGS)),-DWB_FUZZ_SANITIZED),\
	$(shell printf 'int main(void) { return 0; }\n' | \
	$(CC) -fsanitize=address,undefined -x c - -o /dev/null >/dev/null 2>&1 && \
	echo '$(FUZZ_SAN) -DWB_FUZZ_SANITIZED'))

$(FUZZ_REGRESS): $(FUZZ_REGRESS_SRC) $(wildcard shim/*.h) $(BUILD)/obj/embed.o mk/fuzz.mk
	@mkdir -p $(@D)
	$(CC) $(WB_CFLAGS) $(CFLAGS) $(FUZZ_REGRESS_SAN) -DWB_FUZZ_DIR='"$(CURDIR)/tests/fuzz"' \
		-o $@ $(FUZZ_REGRESS_SRC) $(BUILD)/obj/embed.o
