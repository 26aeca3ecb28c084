#!/bin/sh
# run.sh - the Python suite with the first interpreter in $PYTHON_CANDIDATES
# that has pytest, pytest-xdist, pip and setuptools (pyenv's python3 on a
# developer's PATH may have none of them; Debian's /usr/bin/python3 does).
set -u
here=$(cd "$(dirname "$0")" && pwd)
for py in ${PYTHON_CANDIDATES:-/usr/bin/python3 python3}; do
	if "$py" -c 'import setuptools, wheel, pytest, xdist' >/dev/null 2>&1 &&
		"$py" -m pip --version >/dev/null 2>&1; then
		cd "$here" && exec "$py" -m pytest -p no:cacheprovider -p no:randomly -q --tap "$@" .
	fi
done
echo "not ok 1 - no python3 with pytest, xdist, pip, setuptools and wheel among: ${PYTHON_CANDIDATES:-}"
echo "# install: apt-get install python3-pytest python3-pytest-xdist python3-pip python3-setuptools python3-wheel"
exit 1
