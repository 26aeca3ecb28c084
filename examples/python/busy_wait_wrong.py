"""busy_wait_wrong.py - a client that waits for its answer by spinning.

The bug: on BlockingIOError the client calls recv again at once, and again,
until the answer comes. It gets the right bytes, but it burns a whole CPU
for as long as the server takes to answer: a busy-wait. wouldblock's report
shows it as the spin, the longest run of would-blocks on one fd with no
wait for that fd in between.
Exposed by: WOULDBLOCK_RULES='recv when=1..3000' (a slow server: the first
3000 recvs find nothing): spin length 3000 or more (the limit that counts as
a busy-wait is 1000; a loop that waits shows 1 or 2).
The fix (busy_wait_right.py): after BlockingIOError, wait until the socket
is readable (selectors) before calling recv again.
"""

import socket

import peers

SIZE = 4096
sock = socket.create_connection(peers.reply_server(SIZE))
sock.sendall(peers.REQUEST)
sock.setblocking(False)

chunks = []
while True:
    try:
        chunk = sock.recv(65536)
    except BlockingIOError:
        continue  # BUG: retries at once, without waiting
    if not chunk:
        break
    chunks.append(chunk)

peers.check("answer", b"".join(chunks), peers.payload(SIZE))
