# wouldblock - see README.md. Nothing built is tracked: everything lands in $(BUILD).
PREFIX ?= /usr/local
DESTDIR ?=
BUILD ?= build
CC ?= cc
CFLAGS ?= -O2 -g
SAN_FLAGS ?=
VERSION := 0.1.0

# -Wno-format-truncation: messages are cut at their buffer on purpose
WB_CFLAGS := -std=c11 -D_GNU_SOURCE -DWB_VERSION='"$(VERSION)"' -Wall -Wextra -Werror \
	-Wno-format-truncation -fPIC -fvisibility=hidden -Ishim $(SAN_FLAGS)
LDLIBS := -ldl -lpthread

# rules + config + the embedded scenario library: pure, shared by the
# library, the runner, the unit tests and the fuzzer
CORE_OBJ := $(addprefix $(BUILD)/obj/,rules.o config.o embed.o conf_parsed.o counter.o fmt.o status.o)
# everything but the public symbols: what the unit tests link
ENGINE_OBJ := $(CORE_OBJ) $(addprefix $(BUILD)/obj/,real.o fdstate.o faithful.o site.o record.o engine.o report.o readiness.o)
# The embedded library last: its 70 KB of read-only data would otherwise
# split the other objects' constants (the names dlsym looks up at start)
# over two 64 KB fault-around windows of the page cache, a fault each.
EMBED_OBJ := $(addprefix $(BUILD)/obj/,embed.o conf_parsed.o)
LIB_OBJ := $(filter-out $(EMBED_OBJ),$(ENGINE_OBJ)) \
	$(addprefix $(BUILD)/obj/,api.o wrappers.o loader.o) $(EMBED_OBJ)

LIB := $(BUILD)/libwouldblock.so
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

# Fragments in mk/ add programs to build (ALL_TARGETS) and test suites to
# run (TEST_SUITES: commands printing TAP, run by tests/tap-run).
ALL_TARGETS := $(LIB)
TEST_SUITES := $(UNIT_BIN)
THREADED_SUITES :=
export WB_BUILD := $(abspath $(BUILD))
export WB_PRELOAD_PREFIX

.PHONY: all test test-unit test-threaded sanitize tsan check-build-deps check-test-deps clean format
all: check-build-deps $(LIB) $(BUILD)/.all-extra

-include mk/*.mk

# musl-gcc (Debian's musl-tools) builds against musl alone: the system's
# glibc-built libraries (cmocka, jansson) are out of its reach, so `all`
# keeps the programs that need only libc (mk/musl.mk).
MUSL_GCC := $(if $(findstring musl-gcc,$(notdir $(firstword $(CC)))),1)
ifeq ($(MUSL_GCC),1)
ALL_TARGETS := $(filter $(MUSL_TARGETS),$(ALL_TARGETS))
endif

$(BUILD)/.all-extra: $(filter-out $(LIB),$(ALL_TARGETS))
	@mkdir -p $(@D) && touch $@

$(BUILD)/obj/%.o: shim/%.c $(wildcard shim/*.h) | $(BUILD)/obj
	$(CC) $(WB_CFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/obj/embed.o: shim/embed.S conf/wouldblock.conf | $(BUILD)/obj
	$(CC) -c -DWB_CONF_PATH='"conf/wouldblock.conf"' -o $@ $<

# The embedded library parsed at build time (shim/confgen.c): start-up
# copies it instead of parsing, and an error in it stops the build.
$(BUILD)/confgen: shim/confgen.c $(addprefix $(BUILD)/obj/,rules.o config.o embed.o) \
		$(wildcard shim/*.h)
	$(CC) $(WB_CFLAGS) $(CFLAGS) -o $@ $< $(addprefix $(BUILD)/obj/,rules.o config.o embed.o)

$(BUILD)/obj/conf_parsed.c: $(BUILD)/confgen conf/wouldblock.conf
	$(BUILD)/confgen conf/wouldblock.conf >$@.tmp && mv $@.tmp $@

$(BUILD)/obj/conf_parsed.o: $(BUILD)/obj/conf_parsed.c
	$(CC) $(WB_CFLAGS) $(CFLAGS) -c -o $@ $<

# -z noseparate-code: one read-only executable segment for the headers,
# code and constants instead of three (binutils' default on x86-64 keeps
# code apart from the rest). Every process pays for each segment at start:
# a mapping, and its own page-cache faults (two fewer faults for /bin/true).
# The price: the constants are executable too, in a library only tests load.
# shim/hot.ld: the order of the code a call runs (see there).
$(LIB): $(LIB_OBJ) shim/hot.ld
	$(CC) $(WB_CFLAGS) $(CFLAGS) -shared -Wl,-soname,libwouldblock.so -Wl,-z,defs \
		-Wl,-z,noseparate-code -Wl,-T,shim/hot.ld -o $@ $(LIB_OBJ) $(LDLIBS)

$(BUILD)/libwbengine.a: $(ENGINE_OBJ)
	rm -f $@ && ar rcs $@ $^

# -u: the parsed embedded library is referenced weakly (confgen links
# without it), which alone does not pull it out of an archive
$(BUILD)/tests/test_%: tests/unit/test_%.c $(BUILD)/libwbengine.a $(wildcard shim/*.h) | $(BUILD)/tests
	$(CC) $(WB_CFLAGS) $(CFLAGS) -Itests/unit -o $@ $< -Wl,-u,wb_embedded_parsed \
		$(BUILD)/libwbengine.a -lcmocka $(LDLIBS)

$(BUILD)/obj $(BUILD)/tests:
	mkdir -p $@

# A missing system package stops the build with the command that installs it
# (or installs it, when WB_AUTO_INSTALL=1 and we are root, as make test does).
check-build-deps:
	@tests/deps.sh build

check-test-deps:
	@tests/deps.sh test

test: check-test-deps all $(UNIT_BIN) $(filter-out $(LIB),$(ALL_TARGETS))
	@tests/tap-run $(TEST_SUITES)

test-unit: check-test-deps $(UNIT_BIN)
	@tests/tap-run $(UNIT_BIN)

# Suites with threads in them (fragments add to THREADED_SUITES).
test-threaded: check-test-deps all $(filter-out $(LIB),$(ALL_TARGETS))
	@tests/tap-run $(THREADED_SUITES)

# The same suites against instrumented builds. A sanitizer runtime must be
# first in LD_PRELOAD; suites put WB_PRELOAD_PREFIX in front of the library.
ASAN_RT = $(shell $(CC) -print-file-name=libasan.so)
TSAN_RT = $(shell $(CC) -print-file-name=libtsan.so)
sanitize:
	$(MAKE) BUILD=build/asan \
		SAN_FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
		WB_PRELOAD_PREFIX="$(ASAN_RT)" \
		ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:verify_asan_link_order=0" \
		UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" test

# ThreadSanitizer runs the threaded suites (TSan in uninstrumented hosts such
# as python3 is not supported, so only those built here).
tsan:
	$(MAKE) BUILD=build/tsan SAN_FLAGS="-fsanitize=thread" \
		WB_PRELOAD_PREFIX="$(TSAN_RT)" WB_ONLY=threaded \
		TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1" test-threaded

format:
	clang-format -i shim/*.c shim/*.h runner/*.c runner/*.h $(wildcard tests/*/*.c tests/*/*.h examples/*/*.c)

clean:
	rm -rf $(BUILD)
