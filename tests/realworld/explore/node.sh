#!/bin/sh
# node.sh - tests/realworld/echo_node.js's `net` echo server (it binds port 0
# and prints it), a 1 MB echo by echo_client.py (/usr/bin/python3, so that
# `process=node` selects the server alone), then SIGTERM. Exit 0 only if the
# echo was byte-exact and the server exited 0.
# For `wouldblock explore -r 'all process=node' -- tests/realworld/explore/node.sh`.
set -u
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkfifo "$dir/out"
node "$here/../echo_node.js" net-server >"$dir/out" &
srv=$!
read -r word port <"$dir/out"
ok=0
[ "$word" = port ] && /usr/bin/python3 "$here/echo_client.py" "$port" 1048576 && ok=1
kill -TERM $srv
wait $srv
st=$?
[ $ok = 1 ] || { echo "node.sh: the echo was not byte-exact" >&2; exit 1; }
[ $st = 0 ] || { echo "node.sh: the server exited $st" >&2; exit 1; }
exit 0
