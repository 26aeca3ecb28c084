#!/bin/sh
# nginx.sh - one nginx process (daemon off, master_process off) in a private
# prefix, serves a small and a 1 MB file to curl, then stops on SIGQUIT
# (graceful). Exit 0 only if both bodies are byte-exact and nginx exited 0.
# For `wouldblock explore -r 'all process=nginx' -- tests/realworld/explore/nginx.sh`.
set -u
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/html" "$dir/logs"
head -c 1048576 /dev/urandom >"$dir/html/big"
printf 'hello, nginx\n' >"$dir/html/small"
port=$(/usr/bin/python3 "$here/freeport.py")
cat >"$dir/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/logs/error.log;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $dir/tmp;
    proxy_temp_path $dir/tmp;
    fastcgi_temp_path $dir/tmp;
    uwsgi_temp_path $dir/tmp;
    scgi_temp_path $dir/tmp;
    server {
        listen 127.0.0.1:$port;
        root $dir/html;
    }
}
CONF
nginx -p "$dir" -c "$dir/nginx.conf" &
srv=$!
# nginx writes its pid file once its listening socket is open: wait for
# that, not for an answer, so that every request below is a checked one
# (a retried probe could hide a request that an injection broke)
ok=1
i=0
until [ -s "$dir/nginx.pid" ]; do
    i=$((i + 1))
    [ $i -lt 200 ] && kill -0 $srv 2>/dev/null || { ok=0; break; }
    sleep 0.05
done
if [ $ok = 1 ]; then
    curl -sf -o "$dir/small.got" "http://127.0.0.1:$port/small" &&
        cmp -s "$dir/html/small" "$dir/small.got" &&
        curl -sf -o "$dir/big.got" "http://127.0.0.1:$port/big" &&
        cmp -s "$dir/html/big" "$dir/big.got" || ok=0
fi
kill -QUIT $srv
wait $srv
st=$?
[ $ok = 1 ] || { echo "nginx.sh: client did not get the exact bytes" >&2; cat "$dir/logs/error.log" >&2; exit 1; }
[ $st = 0 ] || { echo "nginx.sh: nginx exited $st" >&2; cat "$dir/logs/error.log" >&2; exit 1; }
exit 0
