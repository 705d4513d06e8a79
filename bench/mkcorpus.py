#!/usr/bin/env python3
"""mkcorpus.py - deterministic mbox spools for `make bench` (stdlib only).

    mkcorpus.py --count N --mean-body-bytes B --seed S --out PATH [--to ADDR]
    mkcorpus.py --count 1 --fixed-body-bytes 100000000 --seed S --out PATH

The same arguments always give the same bytes.  Messages are mboxo:
a "From " separator line, RFC 5322 headers (a few Received lines, From,
To, Subject, Date, Message-ID, MIME headers), a body, and a blank line;
LF line ends.  Body sizes follow a log-normal distribution around the
mean (or are all --fixed-body-bytes).  Bodies contain ">From " lines,
lines starting with ".", a line that is just ".", and 8-bit bytes
(UTF-8 and Latin-1).  No body line starts with "From ".

Next to PATH it writes PATH.meta: count, size and the byte offset of each
of the first two messages (for checking a spool after DELE 1), as
key=value lines.  Output goes to PATH.tmp first and is renamed at the end.
"""
import argparse
import bisect
import math
import os
import random
import sys

WORDS = (
    "the of and to in is for on that with as by at from this be are or "
    "mail server message spool client fetch delete update journal lock "
    "network kernel buffer socket page cache index header body octet "
    "report meeting budget quarter project review draft release notes "
    "please thanks regards tomorrow monday friday attached schedule "
    "question answer issue ticket patch build test benchmark figure "
    "ocean river mountain forest garden window kitchen coffee tea bread"
).split()

SPECIAL = [
    b">From the archive: this line was quoted by the delivery agent\n",
    b".a line that starts with a dot\n",
    b".\n",
    b"..two dots at the start\n",
    b"Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln, na\xc3\xafve caf\xc3\xa9 \xe2\x80\x93 UTF-8\n",
    b"Latin-1 bytes: caf\xe9 na\xefve \xa3 \xb5\n",
    b">>From twice quoted\n",
]

NAMES = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
         "ivan", "judy", "mallory", "oscar", "peggy", "trent", "victor", "wendy"]
DOMAINS = ["example.com", "example.org", "example.net", "mail.example.edu"]
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
          "Nov", "Dec"]


def make_blob(rng, size):
    """About `size` bytes of body text, whole lines, with the special lines
    sprinkled in; returns (blob, line start offsets)."""
    parts = []
    total = 0
    nwords = len(WORDS)
    while total < size:
        r = rng.random()
        if r < 0.02:
            line = SPECIAL[rng.randrange(len(SPECIAL))]
        elif r < 0.06:
            line = b"\n"
        else:
            width = rng.randrange(30, 78)
            words = []
            n = 0
            while n < width:
                w = WORDS[rng.randrange(nwords)]
                words.append(w)
                n += len(w) + 1
            if rng.random() < 0.3 and words[0] != "from":
                words[0] = words[0].capitalize()   # never a "From " line
            line = (" ".join(words) + "\n").encode()
        parts.append(line)
        total += len(line)
    blob = b"".join(parts)
    starts = [0]
    pos = blob.find(b"\n")
    while pos != -1 and pos + 1 < len(blob):
        starts.append(pos + 1)
        pos = blob.find(b"\n", pos + 1)
    return blob, starts


def body_of(rng, blob, starts, size):
    """A body of about `size` bytes cut from the blob at line boundaries,
    with one block of the special lines in it, ending in LF."""
    if size <= 0:
        return b"\n"
    out = []
    left = size
    special = b"".join(SPECIAL[: 3 + rng.randrange(len(SPECIAL) - 2)])
    put_special = True
    while left > 0:
        i = rng.randrange(len(starts) - 1)
        a = starts[i]
        want = min(left, len(blob) - a)
        j = bisect.bisect_right(starts, a + want) - 1
        b = starts[j] if j > i else starts[i + 1]
        chunk = blob[a:b]
        if put_special and len(chunk) > 2 * len(special):
            half = bisect.bisect_right(starts, a + len(chunk) // 2) - 1
            cut = starts[half] - a
            chunk = chunk[:cut] + special + chunk[cut:]
            put_special = False
        out.append(chunk)
        left -= len(chunk)
    if put_special:
        out.append(special)
    return b"".join(out)


def headers(rng, n, seed, to, t):
    sender = NAMES[rng.randrange(len(NAMES))]
    dom = DOMAINS[rng.randrange(len(DOMAINS))]
    tm = t % 86400
    days = t // 86400
    dow = DAYS[(days + 3) % 7]
    year = 2024 + (days // 365) % 3
    mon = MONTHS[(days // 30) % 12]
    day = 1 + days % 28
    hh, mm, ss = tm // 3600, tm // 60 % 60, tm % 60
    asctime = "%s %s %2d %02d:%02d:%02d %d" % (dow, mon, day, hh, mm, ss, year)
    rfc = "%s, %d %s %d %02d:%02d:%02d +0000" % (dow, day, mon, year, hh, mm, ss)
    hops = []
    for h in range(2 + rng.randrange(3)):
        hops.append(
            "Received: from relay%d.%s (relay%d.%s [192.0.2.%d])\n"
            "\tby mx.localdomain (Postfix) with ESMTP id %08X%d\n"
            "\tfor <%s>; %s\n" % (h, dom, h, dom, 1 + (n + h) % 250, rng.getrandbits(32), h,
                                  to, rfc))
    subj = " ".join(WORDS[rng.randrange(len(WORDS))] for _ in range(3 + rng.randrange(6)))
    return (
        "From %s@%s %s\n" % (sender, dom, asctime)
        + "".join(hops)
        + "From: %s <%s@%s>\n" % (sender.capitalize(), sender, dom)
        + "To: %s\n" % to
        + "Subject: %s (%d)\n" % (subj, n)
        + "Date: %s\n" % rfc
        + "Message-ID: <%d.%d.%08x@%s>\n" % (seed, n, rng.getrandbits(32), dom)
        + "MIME-Version: 1.0\n"
        + "Content-Type: text/plain; charset=utf-8\n"
        + "Content-Transfer-Encoding: 8bit\n"
        + "\n"
    ).encode()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--mean-body-bytes", type=int, default=10000)
    ap.add_argument("--fixed-body-bytes", type=int, default=0,
                    help="every body this size (e.g. one 100 MB message)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--to", default="mpbench@localhost")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.count < 0 or a.mean_body_bytes < 1 or a.fixed_body_bytes < 0:
        ap.error("sizes and counts must be positive")

    rng = random.Random(a.seed)
    mean = a.fixed_body_bytes or a.mean_body_bytes
    blob, starts = make_blob(rng, max(1 << 20, min(8 << 20, mean * 64)))
    sigma = 1.0
    mu = math.log(a.mean_body_bytes) - sigma * sigma / 2
    cap = a.mean_body_bytes * 50

    tmp = a.out + ".tmp"
    out = open(tmp, "wb")
    buf = []
    buffered = 0
    written = 0
    offsets = []
    t = 1700000000 % (86400 * 365)
    for n in range(1, a.count + 1):
        if a.fixed_body_bytes:
            size = a.fixed_body_bytes
        else:
            size = int(min(cap, max(100, rng.lognormvariate(mu, sigma))))
        t += 1 + rng.randrange(600)
        msg = headers(rng, n, a.seed, a.to, t)
        if len(offsets) < 2:
            offsets.append(written + buffered)
        if size > (16 << 20):
            # a huge body: write it as it is made, not held whole in memory
            out.write(b"".join(buf))
            written += buffered
            buf, buffered = [], 0
            out.write(msg)
            written += len(msg)
            body = body_of(rng, blob, starts, min(size, 4 << 20))
            out.write(body)
            written += len(body)
            left = size - len(body)
            while left > 0:
                if left >= len(blob):
                    part = blob
                else:
                    j = bisect.bisect_right(starts, left) - 1
                    part = blob[: starts[j]] if starts[j] > 0 else b"x" * (left - 1) + b"\n"
                out.write(part)
                written += len(part)
                left -= len(part)
            out.write(b"\n")
            written += 1
            continue
        body = body_of(rng, blob, starts, size)
        buf.append(msg)
        buf.append(body)
        buf.append(b"\n")
        buffered += len(msg) + len(body) + 1
        if buffered >= (8 << 20):
            out.write(b"".join(buf))
            written += buffered
            buf, buffered = [], 0
    out.write(b"".join(buf))
    written += buffered
    out.flush()
    os.fsync(out.fileno())
    out.close()
    with open(a.out + ".meta", "w") as m:
        m.write("count=%d\nbytes=%d\n" % (a.count, written))
        for i, o in enumerate(offsets):
            m.write("offset%d=%d\n" % (i + 1, o))
    os.rename(tmp, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
