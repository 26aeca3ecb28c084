"""client_wrong.py - a non-blocking client written as if its socket blocked.

The bug: the socket is made non-blocking (so that a dead server cannot hang
the program), then used as if every call waited: connect_ex's EINPROGRESS
is ignored, and recv raises BlockingIOError whenever the server's data has
not arrived yet. The loop also takes a recv that returns less than it asked
for as the end of the data, so a slow server or a short read truncates it.
Exposed by: first-read (the first read on every non-blocking fd would
block): BlockingIOError, on every run. Without wouldblock it fails only
when the server happens to be slower than the client.
The fix (client_right.py): wait for the socket with selectors before
retrying, check SO_ERROR once connect is over, read until recv returns b"".
"""

import socket

import peers

SIZE = 65536
address = peers.greeting_server(SIZE)  # sends SIZE bytes as soon as it accepts

sock = socket.socket()
sock.setblocking(False)
sock.connect_ex(address)  # BUG: EINPROGRESS means "not connected yet"
data = b""
while True:
    chunk = sock.recv(4096)  # BUG: raises BlockingIOError if nothing is there yet
    data += chunk
    if len(chunk) < 4096:  # BUG: a short read is not the end
        break

peers.check("greeting", data, peers.payload(SIZE))
