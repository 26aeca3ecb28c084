#!/bin/sh
# preload-run.sh LIB PROGRAM [ARG...] - run PROGRAM with LIB (libwouldblock.so)
# in front of LD_PRELOAD and no WOULDBLOCK_* variables: the tests set their
# own rules through the C API. A sanitizer runtime LIB was built against
# (libasan, libtsan) goes first, where it insists on being.
set -eu
lib=$1
shift
for v in $(env | sed -n 's/^\(WOULDBLOCK_[A-Z_]*\)=.*/\1/p'); do
	unset "$v"
done
san=$(ldd "$lib" 2>/dev/null | sed -n 's/^[[:space:]]*lib[at]san\.so[^ ]* => \([^ ]*\).*/\1/p' | tr '\n' ':')
LD_PRELOAD="$san$lib${LD_PRELOAD:+:$LD_PRELOAD}"
export LD_PRELOAD
exec "$@"
