"""client_right.py - a non-blocking client that waits (see client_wrong.py).

A non-blocking call that cannot proceed raises BlockingIOError: wait until
the socket is ready (selectors), then try again. connect's outcome is read
with SO_ERROR once the socket is writable, and the data ends when recv
returns b"" (the server closed), not when a recv returns little.
Passes under every built-in scenario.
"""

import errno
import os
import selectors
import socket

import peers

SIZE = 65536
address = peers.greeting_server(SIZE)  # sends SIZE bytes as soon as it accepts

sock = socket.socket()
sock.setblocking(False)
selector = selectors.DefaultSelector()
selector.register(sock, selectors.EVENT_WRITE)
err = sock.connect_ex(address)
if err == errno.EINPROGRESS:
    selector.select()  # writable: connect is over, for better or worse
    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
if err:
    raise OSError(err, os.strerror(err))

selector.modify(sock, selectors.EVENT_READ)
chunks = []
while True:
    try:
        chunk = sock.recv(65536)
    except BlockingIOError:
        selector.select()
        continue
    if not chunk:
        break
    chunks.append(chunk)

peers.check("greeting", b"".join(chunks), peers.payload(SIZE))
