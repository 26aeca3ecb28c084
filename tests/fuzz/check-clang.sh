#!/bin/sh
# check-clang.sh [CC] - can CC (default clang) build a libFuzzer target?
# libFuzzer's runtime ships apart from clang on Debian (libclang-rt-N-dev).
# As root it is installed with apt-get; otherwise this stops with the exact
# command to run.
set -u
cc=${1:-clang}
have_cc() { command -v "$cc" >/dev/null 2>&1; }
probe() {
	printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' |
		"$cc" -fsanitize=fuzzer,address,undefined -x c - -o /dev/null >/dev/null 2>&1
}
runtime() { echo "libclang-rt-$("$cc" -dumpversion | cut -d. -f1)-dev"; }

have_cc && probe && exit 0
case "$cc" in
clang) have_cc && need=$(runtime) || need="clang libclang-rt-dev" ;;
clang-[0-9]*) have_cc && need=$(runtime) || need="$cc libclang-rt-${cc#clang-}-dev" ;;
*)
	echo "check-clang.sh: $cc cannot link -fsanitize=fuzzer; use FUZZ_CC=clang" >&2
	exit 1
	;;
esac
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "check-clang.sh: installing: $need" >&2
	export DEBIAN_FRONTEND=noninteractive
	{ apt-get install -y -q $need || { apt-get update -q && apt-get install -y -q $need; }; } >&2
	have_cc && probe && exit 0
fi
echo "check-clang.sh: $cc cannot link -fsanitize=fuzzer: missing $need" >&2
echo "check-clang.sh: run:  sudo apt-get install -y $need" >&2
exit 1
