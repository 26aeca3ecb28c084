# freeport.py - print a TCP port of 127.0.0.1 that is free right now (the
# kernel's choice for a bind to port 0), for servers that cannot bind 0.
import socket

s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
