#!/usr/bin/python3
"""A tiny TCP service for the repair tests: listens on 127.0.0.1:PORT, writes its pid to
PIDFILE once listening, and answers every connection with one line until it is killed."""
import os
import socket
import sys

port, pidfile = int(sys.argv[1]), sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(16)
tmp = pidfile + ".tmp"
with open(tmp, "w") as f:
    f.write(str(os.getpid()))
os.rename(tmp, pidfile)
while True:
    conn, _ = s.accept()
    try:
        conn.sendall(b"hello\n")
    finally:
        conn.close()
