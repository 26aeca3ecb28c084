# echo_client.py PORT NBYTES - send NBYTES of random data to an echo server on
# 127.0.0.1:PORT, half-close once the whole echo is back, wait for its end;
# exit 0 only if the echo is byte-exact. Plain blocking sockets: the server
# alone is what explore injects into.
import os
import socket
import sys

port, n = int(sys.argv[1]), int(sys.argv[2])
data = os.urandom(n)
with socket.create_connection(("127.0.0.1", port)) as s:
    s.settimeout(10)
    got = bytearray()
    sent = 0
    while sent < n:
        sent += s.send(data[sent:sent + 65536])
        while True:  # drain what came back so far without blocking
            s.setblocking(False)
            try:
                chunk = s.recv(1 << 20)
            except BlockingIOError:
                break
            finally:
                s.settimeout(10)
            if not chunk:
                break
            got += chunk
    while len(got) < n:
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        got += chunk
    s.shutdown(socket.SHUT_WR)
    while True:
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        got += chunk
sys.exit(0 if bytes(got) == data else 1)
