"""select_proxy_wrong.py - a select() proxy that knows one would-block errno.

The bug: attempt() runs each non-blocking call and turns "would block" into
"try later", anything else being fatal, but it recognises "would block" by
e.args[0] == errno.EAGAIN. A non-blocking connect says "not yet" with
EINPROGRESS (a repeated one with EALREADY), so the proxy dies on its first
connection to the backend. (EWOULDBLOCK is EAGAIN on Linux: a scenario with
errno=EWOULDBLOCK would not tell the two versions apart; EINPROGRESS does.)
Exposed by: slow-connect (every non-blocking TCP connect answers
EINPROGRESS while it really connects): BlockingIOError [Errno 115], on every
run. (Linux says EINPROGRESS on loopback by itself; the scenario makes sure
of it wherever a connect might finish at once.)
The fix (select_proxy_right.py): catch the class, BlockingIOError, which is
raised for EAGAIN, EWOULDBLOCK, EINPROGRESS and EALREADY.
"""

import errno
import select
import socket

import peers

BLOCKED = object()  # what attempt() returns when the call would block


def attempt(call, *args):
    try:
        return call(*args)
    except OSError as e:
        if e.args[0] == errno.EAGAIN:  # BUG: EINPROGRESS and EALREADY would block too
            return BLOCKED
        raise


# ---- the same in both versions from here on ----

CLIENTS, SIZE = 3, 30000
backend = peers.reply_server(SIZE)
listener = socket.create_server(("127.0.0.1", 0))
listener.setblocking(False)
answers = []
fetchers = [peers.fetch_in_background(listener.getsockname(), answers) for _ in range(CLIENTS)]

other = {}  # socket -> the socket its bytes go to
pending = {}  # socket -> bytes waiting to be written to it
connecting = set()  # backend sockets whose connect is not over yet
ended = set()  # sockets that have sent everything they will send
shut = set()  # sockets we have sent everything to (shutdown for writing)
served = 0


def relay_from(sock):
    """Read until it would block: the bytes go to the other side."""
    while (data := attempt(sock.recv, 65536)) is not BLOCKED:
        if not data:
            ended.add(sock)
            return
        pending[other[sock]] += data


def flush_to(sock):
    """Write what is pending; pass an end on once everything is written."""
    while pending[sock]:
        sent = attempt(sock.send, pending[sock])
        if sent is BLOCKED:
            return
        del pending[sock][:sent]
    if other[sock] in ended and sock not in shut:
        sock.shutdown(socket.SHUT_WR)
        shut.add(sock)


def close_if_done(sock):
    global served
    peer = other[sock]
    if {sock, peer} <= ended and not pending[sock] and not pending[peer]:
        for s in (sock, peer):
            del other[s], pending[s]
            ended.discard(s)
            shut.discard(s)
            s.close()
        served += 1


while served < CLIENTS:
    readers = [listener] + [s for s in other if s not in connecting and s not in ended]
    writers = [s for s in other
               if s in connecting or pending[s] or (other[s] in ended and s not in shut)]
    readable, writable, _ = select.select(readers, writers, [])
    for sock in writable:
        if sock in connecting:
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise OSError(err, "connect to the backend")
            connecting.discard(sock)
        flush_to(sock)
    for sock in readable:
        if sock is listener:
            while (accepted := attempt(listener.accept)) is not BLOCKED:
                client, _ = accepted
                client.setblocking(False)
                upstream = socket.socket()
                upstream.setblocking(False)
                if attempt(upstream.connect, backend) is BLOCKED:
                    connecting.add(upstream)
                other[client], other[upstream] = upstream, client
                pending[client], pending[upstream] = bytearray(), bytearray()
        elif sock in other:
            relay_from(sock)
    for sock in list(other):
        if sock in other:
            close_if_done(sock)

for fetcher in fetchers:
    fetcher.join()
received = b"".join(a for a in answers if isinstance(a, bytes))
peers.check(f"{CLIENTS} answers through the proxy", received, peers.payload(SIZE) * CLIENTS)
