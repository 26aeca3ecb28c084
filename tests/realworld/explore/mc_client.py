# mc_client.py PORT - set a 100 KB value in memcached on 127.0.0.1:PORT
# (text protocol), get it back; exit 0 only if it is byte-exact. Retries
# the connect for a while: memcached has no "ready" line to wait for.
import os
import socket
import sys
import time

port = int(sys.argv[1])
for _ in range(200):
    try:
        s = socket.create_connection(("127.0.0.1", port))
        break
    except ConnectionRefusedError:
        time.sleep(0.05)
else:
    sys.exit("mc_client.py: memcached did not listen")
s.settimeout(10)
f = s.makefile("rb")
value = os.urandom(100 * 1024)
s.sendall(b"set k 0 0 %d\r\n" % len(value) + value + b"\r\n")
if f.readline() != b"STORED\r\n":
    sys.exit("mc_client.py: set was not stored")
s.sendall(b"get k\r\n")
if f.readline() != b"VALUE k 0 %d\r\n" % len(value):
    sys.exit("mc_client.py: get: bad header")
got = f.read(len(value) + 2)
if got != value + b"\r\n" or f.readline() != b"END\r\n":
    sys.exit("mc_client.py: get: the value is not byte-exact")
s.close()
