#!/bin/sh
# deps.sh build|test|musl - make sure the system packages a target needs are here.
# As root (a fresh CI or Debian machine) it installs what is missing with
# apt-get; otherwise it stops with the exact command to run.
set -u
need=""
command -v make >/dev/null 2>&1 || need="$need make"
case "${CC:-cc}" in
*musl-gcc*) # the musl leg (mk/musl.mk): musl-gcc's programs need musl alone
	command -v "$CC" >/dev/null 2>&1 || need="$need musl-tools" ;;
*)
	command -v "${CC:-cc}" >/dev/null 2>&1 || need="$need gcc"
	# `make` builds the test programs too, some of them cmocka tests
	# (cmocka.h needs the standard headers in front of it)
	printf '#include <stdarg.h>\n#include <stddef.h>\n#include <stdint.h>\n#include <setjmp.h>\n#include <cmocka.h>\n' |
		${CC:-cc} -E -x c - >/dev/null 2>&1 || need="$need libcmocka-dev"
	# the runner reads the library's JSON reports with jansson
	printf '#include <jansson.h>\n' | ${CC:-cc} -E -x c - >/dev/null 2>&1 || need="$need libjansson-dev" ;;
esac
[ "${1:-build}" = musl ] && { command -v musl-gcc >/dev/null 2>&1 || need="$need musl-tools"; }
if [ "${1:-build}" = test ]; then
	command -v python3 >/dev/null 2>&1 || need="$need python3"
	command -v pkg-config >/dev/null 2>&1 || need="$need pkg-config"
	command -v groff >/dev/null 2>&1 || need="$need groff-base"
	command -v curl >/dev/null 2>&1 || need="$need curl"
	command -v openssl >/dev/null 2>&1 || need="$need openssl"
	# the Python package's suite (tests/python): Debian's pytest, xdist, pip
	# and setuptools on /usr/bin/python3 (mk/python.mk picks the interpreter)
	py=/usr/bin/python3
	[ -x "$py" ] || py=python3
	"$py" -c 'import pytest' >/dev/null 2>&1 || need="$need python3-pytest"
	"$py" -c 'import xdist' >/dev/null 2>&1 || need="$need python3-pytest-xdist"
	"$py" -m pip --version >/dev/null 2>&1 || need="$need python3-pip"
	"$py" -c 'import setuptools' >/dev/null 2>&1 || need="$need python3-setuptools"
	"$py" -c 'import wheel' >/dev/null 2>&1 || need="$need python3-wheel"
	# tests/realworld: real servers and clients (nginx is in /usr/sbin)
	PATH="$PATH:/usr/sbin:/sbin"
	command -v nginx >/dev/null 2>&1 || need="$need nginx"
	command -v redis-server >/dev/null 2>&1 || need="$need redis-server"
	command -v redis-benchmark >/dev/null 2>&1 || need="$need redis-tools"
	command -v memcached >/dev/null 2>&1 || need="$need memcached"
	command -v node >/dev/null 2>&1 || need="$need nodejs"
	# Debian's python3 (not a pyenv one on PATH) is the one with aiohttp
	/usr/bin/python3 -c 'import aiohttp' >/dev/null 2>&1 || need="$need python3-aiohttp"
fi
[ -z "$need" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "deps.sh: installing:$need" >&2
	export DEBIAN_FRONTEND=noninteractive
	{ apt-get install -y -q $need || { apt-get update -q && apt-get install -y -q $need; }; } >&2 &&
		exit 0
fi
echo "deps.sh: missing:$need" >&2
echo "deps.sh: run:  sudo apt-get install -y$need" >&2
exit 1
