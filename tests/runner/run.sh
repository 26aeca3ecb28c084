#!/usr/bin/env bash
# run.sh BUILD_DIR - end-to-end tests of the wouldblock command (SPEC §6),
# `make install` and the man pages. Prints TAP; exits 1 if a test failed.
# Needs BUILD_DIR/wouldblock, libwouldblock.so and tests/runner_prog built
# (make does it: this runs from the wrapper BUILD_DIR/tests/runner-suite).
set -u
build=$(cd "${1:?usage: run.sh BUILD_DIR}" && pwd) || exit 1
repo=$(cd "$(dirname "$0")/../.." && pwd)
wb=$build/wouldblock
lib=$build/libwouldblock.so
prog=$build/tests/runner_prog
conf=$repo/conf/wouldblock.conf
version=$(sed -n 's/^VERSION := *//p' "$repo/Makefile")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/wb-runner-test.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
export TMPDIR=$tmp/private # where the runner makes its report directories
mkdir "$TMPDIR"
unset LD_PRELOAD WOULDBLOCK_CONFIG WOULDBLOCK_SCENARIO WOULDBLOCK_RULES WOULDBLOCK_SEED \
	WOULDBLOCK_LOG WOULDBLOCK_REPORT WOULDBLOCK_DISABLE WOULDBLOCK_SPIN_LIMIT

n=0 failed=0
# t NAME FUNCTION [ARG...]: one TAP line; the function fails the test by
# returning non-zero, after saying why with `why`.
t() {
	local name=$1
	shift
	n=$((n + 1))
	: >"$tmp/why"
	if "$@"; then
		echo "ok $n - $name"
	else
		echo "not ok $n - $name"
		failed=1
		sed 's/^/#   /' "$tmp/why"
	fi
}
skip() { n=$((n + 1)) && echo "ok $n - $1 # SKIP $2"; }
why() {
	printf '%s\n' "$@" >>"$tmp/why"
	return 1
}
# run COMMAND...: stdout, stderr and status in $tmp/out, $tmp/err, $rc (a
# timeout only as a guard against a hang)
run() {
	# (the braces take bash's own "Terminated" when COMMAND is killed)
	{ timeout 60 "$@" >"$tmp/out" 2>"$tmp/err"; } 2>/dev/null
	rc=$?
}
shown() { head -c 800 "$1" | sed 's/^/    /'; }
has_rc() { [ "$rc" = "$1" ] || why "exit status $rc, expected $1; stderr:" "$(shown "$tmp/err")"; }
out_is() { [ "$(cat "$tmp/out")" = "$1" ] || why "stdout:" "$(shown "$tmp/out")" "expected:" "$1"; }
# stdout's words, white space aside
out_words() { [ "$(tr -s ' \n' '  ' <"$tmp/out" | sed 's/^ //; s/ $//')" = "$1" ] || why "stdout:" "$(shown "$tmp/out")" "expected:" "$1"; }
out_empty() { [ ! -s "$tmp/out" ] || why "stdout not empty:" "$(shown "$tmp/out")"; }
err_has() { grep -qF -- "$1" "$tmp/err" || why "stderr lacks '$1':" "$(shown "$tmp/err")"; }
err_is() { [ "$(cat "$tmp/err")" = "$1" ] || why "stderr:" "$(shown "$tmp/err")" "expected:" "$1"; }
# the scenario names of conf/wouldblock.conf, in order
scenarios() { sed -n 's/^\[\([^]]*\)\].*/\1/p' "$conf"; }

# ---- options ----

test_version() {
	run "$wb" --version
	has_rc 0 && out_is "wouldblock $version"
}

test_help() {
	local opt
	run "$wb" --help
	has_rc 0 && grep -q '^usage: wouldblock' "$tmp/out" || why "no usage in --help"
	for opt in -c --config -s --scenario -r --rules --seed --log --report --expect-injections \
		--summary --check --list -h --help --version; do
		grep -qE -- "(^| )$opt( |,|$)" "$tmp/out" || why "--help does not mention $opt"
	done
	run "$wb" -h
	has_rc 0 && grep -q '^usage: wouldblock' "$tmp/out" || why "no usage from -h"
	[ ! -s "$tmp/why" ]
}

# usage_error WORDS...: exit 2, a message and the usage on stderr, nothing run
usage_error() {
	rm -f ran
	run "$wb" "$@"
	has_rc 2 && out_empty && err_has "usage: wouldblock" &&
		{ grep -q '^wouldblock: ' "$tmp/err" || why "no message before the usage"; } &&
		{ [ ! -e ran ] || why "COMMAND ran"; }
}

test_usage_errors() {
	local args
	while IFS= read -r args; do
		eval "usage_error $args" || why "for: wouldblock $args"
	done <<-'EOF'

		--bogus -- touch ran
		-x -- touch ran
		-s
		--seed
		--seed abc -- touch ran
		--seed -1 -- touch ran
		--seed 99999999999999999999999 -- touch ran
		-s first-read
		-s first-read --
		--check --list
		--list -s first-read
		--list -r read
		--check -- touch ran
		--check touch ran
		--list touch ran
		--check --summary
		--list --seed 3
		--check --expect-injections
		--check --log stderr
		--check --report r.json
		-c '' -- touch ran
		--log '' -- touch ran
	EOF
	[ ! -s "$tmp/why" ]
}

# ---- --list and --check ----

test_list_format() {
	local name desc line i=0
	run "$wb" --list
	has_rc 0 || return 1
	[ "$(wc -l <"$tmp/out")" = "$(scenarios | wc -l)" ] || why "$(wc -l <"$tmp/out") lines for $(scenarios | wc -l) scenarios"
	[ "$(awk '{print $1}' "$tmp/out")" = "$(scenarios)" ] || why "names differ from the file's:" "$(shown "$tmp/out")"
	# each description as the file has it, after white space
	while read -r name; do
		i=$((i + 1))
		desc=$(awk -v s="[$name]" '$0 == s {f = 1; next} /^\[/ {f = 0}
			f && /^description *=/ {sub(/^description *= */, ""); print; exit}' "$conf")
		line=$(sed -n "${i}p" "$tmp/out")
		[[ $line =~ ^"$name"[[:space:]]+"$desc"$ ]] || why "line $i: '$line', expected $name and '$desc'"
	done < <(scenarios)
	[ ! -s "$tmp/why" ]
}

test_list_other_file() {
	printf '# mine\n[quiet]\ninput when=2\n[loud]\ndescription = every write\noutput\n' >mine.conf
	run "$wb" --list -c mine.conf
	has_rc 0 && out_is "$(printf 'quiet\nloud   every write')"
}

# --check -s NAME for every shipped scenario: one canonical line per rule of
# the section, and the canonical text reads back as the same rules
test_check_round_trip() {
	local name rules again
	while read -r name; do
		run "$wb" --check -s "$name"
		has_rc 0 || return 1
		rules=$(awk -v s="[$name]" '$0 == s {f = 1; next} /^\[/ {f = 0}
			f && !/^[ \t]*(#|$)/ && !/^description *=/' "$conf" | wc -l)
		[ "$(wc -l <"$tmp/out")" = "$rules" ] || why "$name: $(wc -l <"$tmp/out") lines for $rules rules"
		again=$(paste -sd ';' "$tmp/out")
		run "$wb" --check -r "$again"
		has_rc 0 || return 1
		[ "$(paste -sd ';' "$tmp/out")" = "$again" ] || why "$name: '$again' reads back as:" "$(shown "$tmp/out")"
	done < <(scenarios)
	[ ! -s "$tmp/why" ]
}

test_check_canonical() {
	run "$wb" --check -r 'read' -r 'output short=3  when=2..6+2 prob=.5'
	has_rc 0 && out_is "$(printf '%s\n' \
		'read errno=EAGAIN per=fd type=socket,pipe,tty blocking=no' \
		'output short=3 edge=owed when=2..6+2 prob=0.5 per=fd type=socket,pipe,tty inflight=yes blocking=no')"
}

test_check_config_only() {
	run "$wb" --check
	has_rc 0 && out_empty && { [ ! -s "$tmp/err" ] || why "stderr: $(cat "$tmp/err")"; } || return 1
	run "$wb" --check -c mine.conf
	has_rc 0 && out_empty || return 1
	printf '[a]\ninput when=0\n' >bad.conf
	run "$wb" --check -c bad.conf
	has_rc 125 && out_empty && err_has "bad.conf:2:"
}

# ---- configuration errors: the library's message and status, before COMMAND ----

# config_error VARIABLES -- RUNNER [OPTION...]: the runner with its options
# says exactly what the library says with the variables, and COMMAND (touch)
# never runs
config_error() {
	local vars=() expected
	while [ "$1" != -- ]; do vars+=("$1") && shift; done
	shift
	env "${vars[@]}" LD_PRELOAD="$lib" "$prog" >/dev/null 2>"$tmp/lib-err"
	[ $? = 125 ] || why "the library did not stop with 125 for ${vars[*]}:" "$(shown "$tmp/lib-err")" || return 1
	expected=$(cat "$tmp/lib-err")
	rm -f ran
	run "$@" -- touch ran
	has_rc 125 && err_is "$expected" || return 1
	[ ! -e ran ] || why "COMMAND ran" || return 1
	run "$@" --expect-injections --summary -- touch ran
	has_rc 125 && err_is "$expected" || return 1
	[ ! -e ran ] || why "COMMAND ran (--expect-injections)"
}

test_config_errors() {
	printf '[a]\ndescription = x\ninput when=1\n\n[b]\noutput blocking=maybe\n' >bad.conf
	config_error WOULDBLOCK_SCENARIO=no-such -- "$wb" -s no-such || why "(unknown scenario)" || return 1
	config_error WOULDBLOCK_RULES='read when=1 bogus=2' -- "$wb" -r 'read when=1 bogus=2' ||
		why "(bad rule)" || return 1
	config_error WOULDBLOCK_CONFIG=bad.conf WOULDBLOCK_SCENARIO=a -- "$wb" -c bad.conf -s a ||
		why "(bad file)" || return 1
	config_error WOULDBLOCK_CONFIG=none.conf -- "$wb" -c none.conf || why "(missing file)" || return 1
	config_error WOULDBLOCK_SCENARIO=first-read,nope WOULDBLOCK_RULES=read \
		-- "$wb" -s first-read -s nope -r read || why "(second -s)" || return 1
	# inherited variables are checked too
	config_error WOULDBLOCK_DISABLE=2 -- env WOULDBLOCK_DISABLE=2 "$wb" -s first-read ||
		why "(WOULDBLOCK_DISABLE)" || return 1
	config_error WOULDBLOCK_SCENARIO=nope -- env WOULDBLOCK_SCENARIO=nope "$wb" -r read ||
		why "(inherited WOULDBLOCK_SCENARIO)"
}

test_check_same_errors() {
	local expected
	WOULDBLOCK_RULES='connect short=1' LD_PRELOAD="$lib" "$prog" >/dev/null 2>"$tmp/lib-err"
	expected=$(cat "$tmp/lib-err")
	run "$wb" --check -r 'connect short=1'
	has_rc 125 && out_empty && err_is "$expected"
}

# ---- running COMMAND ----

test_status_passthrough() {
	local mode
	for mode in plain --summary --expect-injections; do
		local opts=(-s first-read)
		[ "$mode" = plain ] || opts+=("$mode")
		run "$wb" "${opts[@]}" -- sh -c "'$prog' >/dev/null; exit 0"
		has_rc 0 || why "($mode)" || return 1
		run "$wb" "${opts[@]}" -- sh -c "'$prog' >/dev/null; exit 7"
		has_rc 7 || why "($mode)" || return 1
		run "$wb" "${opts[@]}" -- sh -c "'$prog' >/dev/null; kill -TERM \$\$"
		has_rc 143 || why "($mode)" || return 1
	done
}

test_plain_exec() {
	"$wb" -s first-read -- sh -c 'echo $$' >"$tmp/out" &
	local pid=$!
	wait "$pid"
	out_is "$pid"
}

test_command_not_found() {
	local mode
	printf '#!/bin/sh\necho hi\n' >not-executable
	for mode in --log=stderr --summary --expect-injections; do # plain exec, then fork
		run "$wb" -r read "$mode" -- no-such-command-here
		has_rc 127 && err_is "wouldblock: no-such-command-here: command not found" || why "($mode)" || return 1
		run "$wb" -r read "$mode" -- ./no-such-file
		has_rc 127 && err_is "wouldblock: ./no-such-file: No such file or directory" || why "($mode)" || return 1
		run "$wb" -r read "$mode" -- ./not-executable
		has_rc 126 && err_is "wouldblock: ./not-executable: Permission denied" || why "($mode)" || return 1
	done
}

test_variables() {
	mkdir -p sub
	cp mine.conf sub/
	run env WOULDBLOCK_SCENARIO=first-write WOULDBLOCK_SEED=9 WOULDBLOCK_LOG=stderr \
		"$wb" -c sub/mine.conf -s quiet -s loud -r read -r write -- env
	has_rc 0 || return 1
	grep -qxF "WOULDBLOCK_CONFIG=$tmp/sub/mine.conf" "$tmp/out" || why "WOULDBLOCK_CONFIG not absolute"
	grep -qxF "WOULDBLOCK_SCENARIO=quiet,loud" "$tmp/out" || why "-s does not override"
	grep -qxF "WOULDBLOCK_RULES=read;write" "$tmp/out" || why "WOULDBLOCK_RULES"
	grep -qxF "WOULDBLOCK_SEED=9" "$tmp/out" || why "inherited WOULDBLOCK_SEED lost"
	grep -qxF "WOULDBLOCK_LOG=stderr" "$tmp/out" || why "inherited WOULDBLOCK_LOG lost"
	grep -q "^WOULDBLOCK_REPORT=" "$tmp/out" && why "WOULDBLOCK_REPORT set unasked"
	run "$wb" --seed 12 --log sub/log.txt --report sub/r-%p.json -r read -- env
	has_rc 0 || return 1
	grep -qxF "WOULDBLOCK_SEED=12" "$tmp/out" || why "--seed"
	grep -qxF "WOULDBLOCK_LOG=$tmp/sub/log.txt" "$tmp/out" || why "--log not absolute"
	grep -qxF "WOULDBLOCK_REPORT=$tmp/sub/r-%p.json" "$tmp/out" || why "--report not absolute"
	run "$wb" --log stderr -r read -- env
	grep -qxF "WOULDBLOCK_LOG=stderr" "$tmp/out" || why "--log stderr"
	[ ! -s "$tmp/why" ]
}

# a library that does nothing, under the names LD_PRELOAD may already hold
make_libs() {
	[ -e libnothing.so ] && return
	printf 'int wb_test_nothing;\n' | cc -shared -fPIC -x c -o libnothing.so - &&
		cp libnothing.so libasan.so.8 && cp libnothing.so libclang_rt.ubsan_standalone-x86_64.so
}

test_preload_kept() {
	make_libs || why "cannot build a test library" || return 1
	run env LD_PRELOAD="$tmp/libnothing.so" "$wb" -s first-read -- printenv LD_PRELOAD
	has_rc 0 && out_is "$lib:$tmp/libnothing.so" || return 1
	run env LD_PRELOAD="$tmp/libnothing.so" "$wb" -s first-read -- "$prog"
	has_rc 0 && out_is "would-block reads: 1"
}

test_sanitizer_first() {
	make_libs || why "cannot build a test library" || return 1
	run env LD_PRELOAD="$tmp/libasan.so.8 $tmp/libnothing.so" "$wb" -s first-read -- printenv LD_PRELOAD
	has_rc 0 && out_is "$tmp/libasan.so.8:$lib:$tmp/libnothing.so" || return 1
	run env LD_PRELOAD="$tmp/libclang_rt.ubsan_standalone-x86_64.so" "$wb" -s first-read -- printenv LD_PRELOAD
	has_rc 0 && out_is "$tmp/libclang_rt.ubsan_standalone-x86_64.so:$lib" || return 1
	run env LD_PRELOAD="$tmp/libasan.so.8" "$wb" -s first-read -- "$prog"
	has_rc 0 && out_is "would-block reads: 1"
}

# a program built with AddressSanitizer runs only if its runtime is loaded first
test_sanitized_program() {
	local asan
	asan=$(cc -print-file-name=libasan.so)
	run env LD_PRELOAD="$asan" "$wb" -s first-read -- ./prog-asan
	has_rc 0 && out_is "would-block reads: 1" || return 1
	# the runner has the runtime too when it waits: LeakSanitizer checks it
	run env LD_PRELOAD="$asan" "$wb" -s first-read --expect-injections --summary --report r-%p.json -- ./prog-asan
	has_rc 0 && out_is "would-block reads: 1" && err_has "summary of 1 process: 1 injected" &&
		{ ! grep -q Sanitizer "$tmp/err" || why "stderr:" "$(shown "$tmp/err")"; } || return 1
	run env LD_PRELOAD="$asan" "$wb" -r connect --expect-injections -- ./no-such-file
	has_rc 127 || return 1
	run env LD_PRELOAD="$asan" "$wb" -r connect --expect-injections -- ./prog-asan
	has_rc 3 && { ! grep -q Sanitizer "$tmp/err" || why "stderr:" "$(shown "$tmp/err")"; }
}

private_dir_empty() {
	[ -z "$(ls -A "$TMPDIR")" ] || why "left behind in TMPDIR: $(ls -A "$TMPDIR")"
}

test_expect_nothing_in_tree() {
	# two processes of runner_prog and the shell: none connects
	run "$wb" -r connect --expect-injections -- sh -c "'$prog'; '$prog'; exit 0"
	has_rc 3 && err_has "summary of 3 processes: 0 injected" && err_has "WOULDBLOCK_RULES:1: connect" &&
		err_has "wouldblock: --expect-injections: nothing was injected (sh exited with status 0)" &&
		private_dir_empty
}

test_expect_grandchild() {
	# only runner_prog, a child of the shell, injects
	run "$wb" -r 'input when=1 process=runner_prog' --expect-injections -- sh -c "'$prog'; exit 0"
	has_rc 0 && out_is "would-block reads: 1" && { [ ! -s "$tmp/err" ] || why "stderr: $(cat "$tmp/err")"; } || return 1
	run "$wb" -r 'input when=1 process=runner_prog' --expect-injections -- sh -c "'$prog'; exit 5"
	has_rc 5 && private_dir_empty
}

# env (preloaded) execs runner_prog without the library: env never writes
# its report, but its status file tells its counts (none injected); with
# no report at all (WOULDBLOCK_REPORT pointed nowhere) the runner says so
test_expect_no_report() {
	run "$wb" -s first-read --expect-injections -- env -u LD_PRELOAD "$prog"
	has_rc 3 && err_has "summary of 1 process: 0 injected (1 ended without writing its report" &&
		err_has "nothing was injected" && private_dir_empty || return 1
	# a static program never loads the library
	printf 'int main(void) { return 0; }\n' | cc -static -x c -o static-true - 2>/dev/null ||
		{ echo "# cc -static unavailable: not checking a command without the library"; return 0; }
	run "$wb" -s first-read --expect-injections -- ./static-true
	has_rc 3 && err_has "no process of ./static-true wrote a report" && private_dir_empty
}

test_expect_with_report() {
	local f pid
	mkdir -p reps
	run "$wb" -s first-read --expect-injections --report reps/r-%p.json -- sh -c "'$prog'; '$prog'; exit 0"
	has_rc 0 && private_dir_empty || return 1
	[ "$(ls reps | wc -l)" = 3 ] || why "reports: $(ls reps)" || return 1
	for f in reps/*; do
		pid=${f#reps/r-} pid=${pid%.json}
		python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); assert r["pid"] == int(sys.argv[2])' \
			"$f" "$pid" 2>>"$tmp/why" || why "bad report $f"
	done
	# no %p: COMMAND's own report
	run "$wb" -s first-read --expect-injections --report reps/one.json -- \
		sh -c 'echo $$ >"$1"; "$2"; exit 0' sh "$tmp/pid" "$prog"
	has_rc 0 || return 1
	python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); assert r["pid"] == int(sys.argv[2])' \
		reps/one.json "$(cat "$tmp/pid")" 2>>"$tmp/why" || why "reps/one.json is not the command's"
	# an inherited WOULDBLOCK_REPORT is honoured the same way
	run env WOULDBLOCK_REPORT="$tmp/reps/inherited-%p.json" "$wb" -s first-read --expect-injections -- "$prog"
	has_rc 0 && [ "$(ls reps/inherited-* | wc -l)" = 1 ] || why "inherited WOULDBLOCK_REPORT: $(ls reps)"
}

test_summary() {
	run "$wb" -s first-read --summary -- "$prog"
	has_rc 0 && out_is "would-block reads: 1" || return 1
	err_has "wouldblock: summary of 1 process: 1 injected" &&
		grep -qE '^ +seen +injected +call$' "$tmp/err" || why "no call header" || return 1
	grep -qE '^ +2 +1  read$' "$tmp/err" || why "no 'read 2 1' row:" "$(shown "$tmp/err")" || return 1
	grep -qE '^ +0 +[0-9]+  ' "$tmp/err" && why "a call never seen is listed:" "$(shown "$tmp/err")" && return 1
	grep -qE '^ +counted +injected +rule$' "$tmp/err" || why "no rule header" || return 1
	local line
	line=$(awk '/^\[first-read\]/ {f = 1} f && /^input when=1$/ {print NR; exit}' "$conf")
	grep -qE "^ +2 +1  first-read:$line: input when=1$" "$tmp/err" || why "no rule row:" "$(shown "$tmp/err")" || return 1
	grep -qE "^  longest spin: 1 \(read on fd [0-9]+, pid [0-9]+ .*runner_prog\)$" "$tmp/err" || why "no spin row"
}

# a killed COMMAND is said to be killed, never "nothing was injected"
test_killed_run() {
	run "$wb" -s first-read --expect-injections -- sh -c 'kill -KILL $$'
	has_rc 137 && err_has "killed by signal 9 (SIGKILL)" || return 1
	grep -q "nothing was injected\|was libwouldblock.so loaded" "$tmp/err" && why "stderr:" "$(shown "$tmp/err")" && return 1
	# (SIGABRT: a sanitizer runtime, under make sanitize, turns SIGSEGV into one)
	run "$wb" -s first-read --summary -- sh -c 'kill -ABRT $$'
	has_rc 134 && err_has "crashed (signal 6, SIGABRT)" && private_dir_empty || return 1
	# the killed shell's counts survive in its status file: both processes count
	run "$wb" -s first-read --summary --expect-injections -- sh -c "'$prog' >/dev/null; kill -KILL \$\$"
	has_rc 137 && err_has "killed by signal 9 (SIGKILL)" &&
		err_has "summary of 2 processes: 1 injected (1 ended without writing its report" &&
		private_dir_empty
}

test_summary_tree() {
	run "$wb" -s first-read --summary -- sh -c "'$prog'; '$prog'; exit 0"
	has_rc 0 && err_has "summary of 3 processes: 2 injected" &&
		{ grep -qE '^ +[0-9]+ +2  read$' "$tmp/err" || why "no read row:" "$(shown "$tmp/err")"; }
}

# ---- install ----

quiet_make() {
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$repo" "$@" >"$tmp/make.log" 2>&1 ||
		why "make $* failed:" "$(tail -n 15 "$tmp/make.log")"
}

test_install_destdir() {
	local d=$tmp/dest/usr f
	quiet_make BUILD="$tmp/ib" PREFIX=/usr DESTDIR="$tmp/dest" install || return 1
	for f in bin/wouldblock lib/wouldblock/libwouldblock.so include/wouldblock.h \
		share/wouldblock/wouldblock.conf share/man/man1/wouldblock.1 share/man/man5/wouldblock.conf.5 \
		lib/pkgconfig/wouldblock.pc; do
		[ -s "$d/$f" ] || why "not installed: $f"
	done
	[ -x "$d/bin/wouldblock" ] || why "runner not executable"
	cmp -s "$d/share/wouldblock/wouldblock.conf" "$conf" || why "conf differs"
	grep -qx 'prefix=/usr' "$d/lib/pkgconfig/wouldblock.pc" || why "pc prefix is not /usr"
	run "$d/bin/wouldblock" --version
	has_rc 0 || return 1
	# the runner looks in PREFIX, not DESTDIR: here it finds nothing
	if [ -e /usr/lib/wouldblock/libwouldblock.so ]; then
		echo "# /usr/lib/wouldblock/libwouldblock.so exists: not checking where the DESTDIR runner looks"
	else
		run "$d/bin/wouldblock" -s first-read -- true
		has_rc 125 && err_has "/usr/lib/wouldblock" || return 1
	fi
	[ ! -s "$tmp/why" ]
}

test_install_prefix() {
	local p=$tmp/prefix
	quiet_make BUILD="$tmp/ib" PREFIX="$p" install || return 1
	rm -rf "$tmp/ib" # no build tree from here on
	cp "$prog" "$tmp/prog"
	run "$p/bin/wouldblock" -s first-read --expect-injections -- "$tmp/prog"
	has_rc 0 && out_is "would-block reads: 1" || return 1
	run "$p/bin/wouldblock" -s first-read -- printenv LD_PRELOAD
	has_rc 0 && out_is "$p/lib/wouldblock/libwouldblock.so" || return 1
	run "$p/bin/wouldblock" --list
	has_rc 0 && [ "$(awk '{print $1}' "$tmp/out")" = "$(scenarios)" ] || why "installed --list"
}

test_pkg_config() {
	local p=$tmp/prefix
	[ -e "$p/lib/pkgconfig/wouldblock.pc" ] || why "nothing installed" || return 1
	export PKG_CONFIG_PATH=$p/lib/pkgconfig
	run pkg-config --cflags wouldblock
	has_rc 0 && out_words "-I$p/include" || return 1
	run pkg-config --libs wouldblock
	has_rc 0 && out_words "-L$p/lib/wouldblock -Wl,-rpath,$p/lib/wouldblock -lwouldblock" || return 1
	run pkg-config --variable=preload wouldblock
	has_rc 0 && out_is "$p/lib/wouldblock/libwouldblock.so" || return 1
	# a test linked with the library, built from the .pc alone
	cat >api.c <<-'EOF'
		#include <wouldblock.h>
		#include <errno.h>
		#include <fcntl.h>
		#include <stdio.h>
		#include <unistd.h>
		int main(void)
		{
			int fds[2];
			char c;
			if (pipe2(fds, O_NONBLOCK) || wouldblock_set_rules("read when=1") ||
			    write(fds[1], "x", 1) != 1)
				return 1;
			int first = (int)read(fds[0], &c, 1);
			printf("%d %d %lu\n", first, errno == EAGAIN, wouldblock_injected("read"));
			return 0;
		}
	EOF
	# shellcheck disable=SC2046 # the flags are words
	cc -D_GNU_SOURCE -o api api.c $(pkg-config --cflags --libs wouldblock) 2>>"$tmp/why" ||
		why "cannot build with the .pc" || return 1
	run ./api
	unset PKG_CONFIG_PATH
	has_rc 0 && out_is "-1 1 1"
}

test_uninstall() {
	[ -x "$tmp/prefix/bin/wouldblock" ] || why "nothing installed" || return 1
	quiet_make PREFIX="$tmp/prefix" uninstall || return 1
	[ -z "$(find "$tmp/prefix" -type f)" ] || why "left: $(find "$tmp/prefix" -type f)"
}

# ---- man pages ----

test_man_lint() {
	local page
	for page in "$repo/man/wouldblock.1" "$repo/man/wouldblock.conf.5"; do
		groff -man -Tutf8 -ww -z "$page" >"$tmp/groff" 2>&1 || why "groff failed on $page"
		[ ! -s "$tmp/groff" ] || why "$page:" "$(shown "$tmp/groff")"
	done
	[ ! -s "$tmp/why" ]
}

# roff source as text: '\-' is '-'
page_text() { sed 's/\\-/-/g' "$repo/man/$1"; }

test_man_says_it_all() {
	local w page
	for page in wouldblock.1 wouldblock.conf.5; do
		grep -q "^\.TH .* \"wouldblock $version\"" "$repo/man/$page" || why "$page: not version $version"
	done
	for w in --config --scenario --rules --seed --log --report --expect-injections --summary \
		--check --list --help --version LD_PRELOAD WOULDBLOCK_CONFIG WOULDBLOCK_SCENARIO \
		WOULDBLOCK_RULES WOULDBLOCK_SEED WOULDBLOCK_LOG WOULDBLOCK_REPORT WOULDBLOCK_DISABLE \
		WOULDBLOCK_SPIN_LIMIT WOULDBLOCK_RECORD TMPDIR 125 126 127 explore minimize --jobs --timeout \
		--max-runs --shard --merge --json confirmed flaky unreached; do
		page_text wouldblock.1 | grep -qF -- "$w" || why "wouldblock(1) does not mention $w"
	done
	for w in $(scenarios) errno= short= when= prob= max= until=poll per=fd per=process fd= \
		type= family= port= inflight= blocking= process= description read readv recv recvfrom \
		recvmsg recvmmsg write writev send sendto sendmsg sendmmsg accept4 connect all input \
		output __read_chk EINPROGRESS; do
		page_text wouldblock.conf.5 | grep -qF -- "$w" || why "wouldblock.conf(5) does not mention $w"
	done
	# the shipped scenarios' rules, as the file has them
	while read -r w; do
		page_text wouldblock.conf.5 | grep -qxF -- "$w" || why "wouldblock.conf(5) lacks the rule '$w'"
	done < <(sed 's/#.*//; s/[[:space:]]*$//' "$conf" | grep -v -e '^\[' -e '^description *=' -e '^$')
	[ ! -s "$tmp/why" ]
}

t "--version" test_version
t "-h and --help" test_help
t "usage errors: exit 2, message and usage on stderr" test_usage_errors
t "--list: a line per scenario, name and description, no header" test_list_format
t "--list -c FILE" test_list_other_file
t "--check -s: one canonical line per rule, read back by -r unchanged" test_check_round_trip
t "--check -r: the canonical form" test_check_canonical
t "--check alone: the file parses, nothing printed" test_check_config_only
t "configuration errors: the library's message, 125, COMMAND not run" test_config_errors
t "--check: the library's message for a bad rule" test_check_same_errors
t "COMMAND's exit status, signals as 128+N" test_status_passthrough
t "without --expect-injections or --summary the runner execs COMMAND" test_plain_exec
t "COMMAND not found 127, not executable 126" test_command_not_found
t "options set the variables, absolute paths; others inherited" test_variables
t "LD_PRELOAD: the library first, earlier entries kept" test_preload_kept
t "LD_PRELOAD: a sanitizer runtime stays first" test_sanitizer_first
if cc -fsanitize=address -D_GNU_SOURCE -o prog-asan "$repo/tests/runner/prog.c" 2>/dev/null; then
	t "LD_PRELOAD: an AddressSanitizer program runs, its runtime first" test_sanitized_program
else
	skip "LD_PRELOAD: an AddressSanitizer program runs, its runtime first" "cc cannot build with -fsanitize=address"
fi
t "--expect-injections: 3 when no process of a tree injected" test_expect_nothing_in_tree
t "--expect-injections: a grandchild's injection counts" test_expect_grandchild
t "--expect-injections: 3 when no process injected or wrote a report" test_expect_no_report
t "--expect-injections with --report: reports still where asked" test_expect_with_report
t "--summary: calls, rules and the longest spin" test_summary
t "--summary: summed over a tree of processes" test_summary_tree
t "a killed or crashed COMMAND: said so, never 'nothing injected'" test_killed_run
t "make install DESTDIR=... PREFIX=/usr" test_install_destdir
t "installed runner works with no build tree" test_install_prefix
if command -v pkg-config >/dev/null; then
	t "pkg-config --cflags --libs of the installed .pc" test_pkg_config
else
	skip "pkg-config --cflags --libs of the installed .pc" "pkg-config not installed"
fi
t "make uninstall" test_uninstall
if command -v groff >/dev/null; then
	t "man pages: groff -man -ww finds nothing" test_man_lint
else
	skip "man pages: groff -man -ww finds nothing" "groff not installed"
fi
t "man pages: every option, variable, status, key, call and scenario" test_man_says_it_all
echo "1..$n"
exit $failed
