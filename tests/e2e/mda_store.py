#!/usr/bin/python3
"""mda_store.py DIR - a test MDA for fetchmail: stores the message read
from stdin as DIR/msg.N (N = 1, 2, ... in delivery order)."""

import os
import sys

d = sys.argv[1]
data = sys.stdin.buffer.read()
for n in range(1, 100000):
    try:
        fd = os.open(os.path.join(d, f"msg.{n:05d}"),
                     os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        continue
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    sys.exit(0)
sys.exit(75)  # EX_TEMPFAIL
