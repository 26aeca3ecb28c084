"""pyports.py - one call site, two kinds of peer port (tests/site/run.py):
a client connected to a listening port outside the kernel's ephemeral range
(a stable port) and the server's accepted socket (whose peer port is the
client's ephemeral one) send and recv through the same functions of
Python's _socket module.

    pyports.py PORT    prints "port PORT" (the one it could bind), then
                       three exchanges over 127.0.0.1"""
import select
import socket
import sys


def bind_from(port):
    """a listener on port, or on the next free one"""
    for p in range(port, port + 200):
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            srv.bind(("127.0.0.1", p))
            srv.listen(1)
            return srv, p
        except OSError:
            srv.close()
    sys.exit("pyports: no free port from %d" % port)


def retry(fn, sock):
    while True:
        try:
            return fn()
        except BlockingIOError:
            select.select([sock], [sock], [], 5)


srv, port = bind_from(int(sys.argv[1]))
print("port", port, flush=True)
client = socket.create_connection(("127.0.0.1", port))
server, _ = srv.accept()
for sock in (client, server):
    sock.setblocking(False)
for i in range(3):
    retry(lambda: client.send(b"a"), client)
    select.select([server], [], [], 5)
    assert retry(lambda: server.recv(10), server) == b"a"
    retry(lambda: server.send(b"b"), server)
    select.select([client], [], [], 5)
    assert retry(lambda: client.recv(10), client) == b"b"
