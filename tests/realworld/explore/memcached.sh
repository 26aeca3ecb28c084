#!/bin/sh
# memcached.sh - memcached on 127.0.0.1 and a free port, one worker thread,
# a set and a get of a 100 KB value by mc_client.py, then SIGTERM. Exit 0
# only if the value came back byte-exact and memcached exited 0.
# For `wouldblock explore -r 'all process=memcached' -- tests/realworld/explore/memcached.sh`.
set -u
here=$(cd "$(dirname "$0")" && pwd)
port=$(/usr/bin/python3 "$here/freeport.py")
# memcached refuses to run as root without -u
user=
if [ "$(id -u)" = 0 ]; then user="-u nobody"; fi
memcached $user -l 127.0.0.1 -p "$port" -U 0 -t 1 -m 16 &
srv=$!
ok=0
/usr/bin/python3 "$here/mc_client.py" "$port" && ok=1
kill -TERM $srv
wait $srv
st=$?
[ $ok = 1 ] || { echo "memcached.sh: the value was not byte-exact" >&2; exit 1; }
[ $st = 0 ] || { echo "memcached.sh: memcached exited $st" >&2; exit 1; }
exit 0
