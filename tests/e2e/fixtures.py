"""fixtures.py - mbox spools for the e2e tests, one helper per fixture.

Every helper returns a harness.Spool: the exact spool bytes plus, per
message, its span (From line .. separator) and its content, so a test can
compute independently what the daemon must send and what UPDATE must leave.
"""

from harness import Spool, message, from_line


def simple(n=3):
    """n small distinct messages (LF, trailing blank line, like an MTA)."""
    return Spool([message(f"message {i + 1}",
                          body=f"body of message {i + 1}\n" + "more\n" * i)
                  for i in range(n)])


def dots():
    """Lines that start with '.' (must be dot-stuffed), incl. a lone '.'."""
    return Spool([
        message("dots", body=".\n..\n.leading dot\n. space\nnormal\n...\n"
                             "end.\n.\n"),
        message("dot at end", body="a\n."),   # unterminated "." last line
    ])


def from_quoting():
    """'>From ' lines pass through as stored; a 'From ' line that does not
    follow a blank line is message content, not a new message."""
    return Spool([
        message(">From", body=">From quoted\n>>From double quoted\n"
                              "text\nFrom not after a blank line\n"
                              ">From at end\n"),
        message("second", body="From: looks like a header\nFromage\n"),
    ])


def eight_bit():
    """8-bit bytes and NUL bytes in headers and body."""
    body = (b"caf\xc3\xa9 na\xc3\xafve \xff\xfe\xfd\x80\n"
            b"nul:\x00:here\n\x00\x00\x00\nbin \x01\x02\x1b[0m\x7f\n"
            b"lone CR\rin the middle\n")
    return Spool([
        message("8bit", body=body, extra_headers=[b"X-Latin1: caf\xe9"]),
        message("after 8bit", body=b"ok\n"),
    ])


def long_line():
    """A 100 KB line and a 100 KB line that starts with a dot."""
    body = b"x" * 100000 + b"\n." + b"y" * 100000 + b"\nshort\n"
    return Spool([message("long line", body=body),
                  message("after long", body="tail\n")])


def big_dotty(total=600 * 1024):
    """A message bigger than the daemon's 256 KB output chunk, full of
    dot lines, CRLF and LF lines of varying length (chunk-boundary cases)."""
    parts, size, i = [], 0, 0
    while size < total:
        n = (i * 37) % 211
        line = (b"." if i % 3 == 0 else b"") + bytes([65 + i % 26]) * n
        line += b"\r\n" if i % 5 == 0 else b"\n"
        parts.append(line)
        size += len(line)
        i += 1
    return Spool([message("big dotty", body=b"".join(parts)),
                  message("after big", body="tail\n")])


def crlf_spool():
    """A spool written with CRLF line ends throughout (separator too)."""
    eol = b"\r\n"
    return Spool([
        message("crlf 1", body=b"line one\r\n.dot line\r\nline three\r\n",
                eol=eol),
        message("crlf 2", body=b"second\r\n", eol=eol),
        message("crlf 3", body=b"third\r\n\r\nafter blank\r\n", eol=eol),
    ], sep=b"\r\n")


def mixed_endings():
    """LF and CRLF lines in one message."""
    return Spool([message("mixed", body=b"lf\ncrlf\r\nlf again\n.dot crlf\r\n"
                                        b"\r\nend\n")])


def unterminated_last():
    """The last message lacks a final newline (no trailing blank line)."""
    return Spool([message("first", body="first body\n"),
                  message("unterminated", body="no newline at the end")])


def trailing_blank_lines():
    """A message whose body ends in blank lines: only the last blank line
    before the next From line is the separator."""
    return Spool([message("blank tail", body="text\n\n\n"),
                  message("next", body="next body\n")])


def no_trailing_separator():
    """Messages as some tools write them: no blank line at end of file."""
    return Spool([message("a", body="a body\n"), message("b", body="b body\n")],
                 trailing=False)


def headers_only():
    """A message with a header block and no body (no blank line at all)."""
    return Spool([b"Received: from x by y; Mon, 1 Jan 2024\n"
                  b"Subject: headers only\n",
                  message("after headers only", body="b\n")])


def empty_message():
    """A From line directly followed by the separator: a 0-octet message."""
    return Spool([b"", message("after empty", body="b\n")])


def varied():
    """One of everything above, for size/RETR sweeps."""
    contents = [
        message("plain", body="plain body\n"),
        message("dots", body=".\n..\n.x\n"),
        message("quoted", body=">From here\n"),
        message("8bit", body=b"\xe9\x00\xff\n"),
        message("crlf", body=b"crlf body\r\n.dot\r\n", eol=b"\r\n"),
        message("blank tail", body="x\n\n"),
        message("last", body="no final newline"),
    ]
    return Spool(contents)


PSEUDO = (b"Date: Mon, 01 Jan 2024 10:00:00 +0000\n"
          b"From: Mail System Internal Data <MAILER-DAEMON@mail.example.org>\n"
          b"Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA\n"
          b"Message-ID: <1704103200@mail.example.org>\n"
          b"%s: 1704103200 0000000007 $Junk\n"
          b"Status: RO\n"
          b"\n"
          b"This text is part of the internal format of your mail folder, and"
          b" is not\na real message.  It is created automatically by the mail"
          b" system software.\nIf deleted, important folder data will be lost"
          b", and it will be re-created\nwith the data reset to initial values"
          b".\n")


def pseudo(header=b"X-IMAP", n=3):
    """A UW-IMAP folder: the FOLDER INTERNAL DATA message, then n mails."""
    contents = [PSEUDO % header] + simple(n).contents
    froms = [from_line("MAILER-DAEMON")] + [
        from_line(date=f"Tue Jan  2 10:00:{i:02d} 2024") for i in range(n)]
    return Spool(contents, froms=froms, hidden=1)


def pseudo_lookalikes():
    """Messages that look like the pseudo message but must be served:
    the right Subject without X-IMAP, and a real pseudo that is not first."""
    no_ximap = PSEUDO.replace(b"%s: 1704103200 0000000007 $Junk\n", b"")
    return Spool([no_ximap, message("real", body="r\n"), PSEUDO % b"X-IMAP"])


def identical_twins():
    """Two byte-identical messages (same From line and content) between
    two others."""
    twin = message("twin", body="same\n")
    f = from_line(date="Wed Jan  3 10:00:00 2024")
    return Spool([message("before", body="x\n"), twin, twin,
                  message("after", body="y\n")],
                 froms=[from_line(), f, f, from_line(date="Thu Jan  4 10:00:00 2024")])


def many(n, body_lines=3):
    """n small distinct messages (for big-spool UPDATE tests)."""
    return Spool([message(f"bulk {i}", body="".join(
        f"line {k} of message {i}\n" for k in range(body_lines)))
        for i in range(n)])


BOUNDARIES = (1024, 4096, 8192, 16384, 65536, 131072, 262144)


def chunk_boundaries():
    """For each power-of-two boundary B a message in which, counted from
    the start of the message content, a CRLF straddles offset B, and one
    in which a line starting with '.' begins exactly at B (the places
    where a block-wise LF->CRLF / dot-stuffing writer can slip)."""
    contents = []
    for b in BOUNDARIES:
        head = message(f"crlf at {b}", body=b"")
        fill = b - len(head) - 1          # CR lands on b-1, LF on b
        line = b"z" * 70 + b"\n"
        body = line * (fill // len(line))
        body += b"w" * (fill - len(body)) + b"\r\nafter\n"
        contents.append(head + body)
        head = message(f"dot at {b}", body=b"")
        fill = b - len(head)              # '.' lands on b
        body = line * (fill // len(line))
        rest = fill - len(body)
        body += (b"v" * (rest - 1) + b"\n" if rest else b"") + b".dot\n.\nx\n"
        contents.append(head + body)
    return Spool(contents)


def cr_edges():
    """Carriage returns that are not part of a CRLF line end."""
    return Spool([
        message("cr edges", body=b"a\r\r\nlone\rcr\n\r\n.\r\n\rstart\nend\r\n"),
        message("cr before eof", body=b"last line ends in CR\r"),
    ])


def _single_with_marks(marks, kind):
    """One message whose content has, at each file offset in marks, a
    CRLF straddling it (kind 'crlf') or a dot line starting (kind 'dot')."""
    head = message(f"file-relative {kind}", body=b"")
    start = len(from_line(date=_first_date()))
    body = bytearray()
    for b in marks:
        target = b - start                      # content offset of b
        fill = target - len(head) - len(body) - (1 if kind == "crlf" else 0)
        while fill > 80:
            body += b"q" * 79 + b"\n"
            fill -= 80
        if kind == "crlf":
            body += b"r" * fill + b"\r\n"
        else:
            if fill:
                body += b"s" * (fill - 1) + b"\n"
            body += b"."
            body += b"d\n"
    return Spool([head + bytes(body) + b"tail\n"])


def _first_date():
    return "Mon Jan  1 10:00:00 2024"


def file_boundaries_crlf():
    return _single_with_marks(BOUNDARIES, "crlf")


def file_boundaries_dot():
    return _single_with_marks(BOUNDARIES, "dot")
