"""Prints N free loopback TCP ports on one line (bound together, so they are distinct).

usage: free_ports.py N
"""

import socket
import sys

socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
