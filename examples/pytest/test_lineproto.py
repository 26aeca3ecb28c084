"""test_lineproto.py - lineproto's tests, under wouldblock.

pytest.ini runs the whole suite under the `first-read` scenario (the first
read on every non-blocking fd would block); single tests choose their own
faults with the marker or the `wouldblock` fixture. test_greeting is wrong:
it assumes one recv gets what the peer sent, and first-read catches it.
"""
import socket

import pytest

from lineproto import LineReader, send_all


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


def test_line(pair):
    a, b = pair
    send_all(b, b"hello\nworld\n")
    reader = LineReader(a)
    assert reader.line() == "hello"
    assert reader.line() == "world"


@pytest.mark.wouldblock(scenario="short-reads")
def test_line_one_byte_at_a_time(pair):
    a, b = pair
    send_all(b, b"a longer line\n")
    assert LineReader(a).line() == "a longer line"


@pytest.mark.wouldblock("recv when=1..3; send short=1")
def test_exactly_under_several_faults(pair):
    a, b = pair
    send_all(b, bytes(range(200)))
    assert LineReader(a).exactly(200) == bytes(range(200))


def test_fixture_counts_this_test(pair, wouldblock):
    a, b = pair
    with wouldblock.rules("recv when=1..5"):
        send_all(b, b"x\n")
        assert LineReader(a).line() == "x"
    assert wouldblock.injected("recv") == 5


def test_greeting(pair):
    a, b = pair
    send_all(b, b"220 ready\n")
    assert a.recv(100) == b"220 ready\n"  # WRONG: the data may not be there yet


@pytest.mark.no_wouldblock
def test_exempt_from_the_suite_scenario(pair):
    a, b = pair
    b.send(b"ping")
    assert a.recv(100) == b"ping"  # fine without faults, and marked so
