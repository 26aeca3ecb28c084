"""busy_wait_right.py - a client that waits for its answer (see busy_wait_wrong.py).

After BlockingIOError it sleeps in select (selectors) until the socket is
readable, so each would-block is followed by a wait: the report's spin is
1 or 2 however slow the server is. Passes under every built-in scenario.
"""

import selectors
import socket

import peers

SIZE = 4096
sock = socket.create_connection(peers.reply_server(SIZE))
sock.sendall(peers.REQUEST)
sock.setblocking(False)
selector = selectors.DefaultSelector()
selector.register(sock, selectors.EVENT_READ)

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

peers.check("answer", b"".join(chunks), peers.payload(SIZE))
