r"""Replays the client/server exchanges in tests/transcripts/*.t against
the daemon: one unittest test per file (test_transcripts.Transcripts.
test_<file stem>), each with a fresh account and its own spool.

The format (tests/transcripts/README.md has the long version):

    # comment (blank lines are ignored too)
    spool: simple 3           the account's spool: a fixture from fixtures.py
                              with its arguments (Python literals), or
                              `spool: none`; first step, and again later to
                              rewrite the spool between sessions
    daemon: apop              optional, first line: a private daemon
                              with an APOP secret for the account
                              ("apop-" + password); or settings key=value ...
    C: USER {user}            a command line (CRLF added)
    C+ NOOP\r\nST             raw bytes, backslash escapes, nothing added
    S: +OK send PASS          one reply line, exactly ({any}: any text)
    S: /\+OK 3 \d+/           one reply line matching a regex (full match)
    S: {body}                 a multi-line body, any content, through "."
    S: {message 2}            exactly RETR's body for message 2 of the spool
    S: {top 2 1}              exactly TOP 2 1's body
    S: {closed}               the server closes the connection (no more lines)
    C2: / S2:                 the same on a second connection (up to 9)
    C*3: / S*3: / C2*3:       the line 3 times
    connect [N]               a new connection N (the old one is dropped)
    drop [N]                  drops connection N without QUIT (RST)
    eof [N]                   half-closes connection N (EOF, no QUIT); an
                              `S: {closed}` then waits for the session's end
    login [N]                 USER/PASS, both answered +OK
    append: SUBJECT           a delivery agent appends a message to the spool
    spool? unchanged          the spool file is the fixture (+ appended mail)
    spool? without 1 3        ... without messages 1 and 3 (+ appended mail)

Consecutive C lines of one connection go out in one write (that is how
pipelining is written).  Each connection's greeting is read when it
opens; an S line before its first C line checks it, otherwise it must be
"+OK mboxpop3d ready" (with an APOP timestamp under `daemon: apop`).
Placeholders in C and S lines: {user} {password} {size N} (octets of
message N; {size 1 3}: of 1 and 3 together) {total} (octets of all
messages) {count} {plain} (AUTH PLAIN response for the account)
{b64 TEXT} (base64 of TEXT, \0 is NUL) {apop} (APOP digest for this
connection's greeting) {N*TEXT} (TEXT repeated N times) {sp} (a space,
for trailing ones).

A failure names the file and line of the first mismatch, what was
expected and what came, and the connection's transcript."""

import ast
import base64
import hashlib
import os
import re
import socket
import unittest
from pathlib import Path

import fixtures
from harness import (IS_ROOT, Client, ConnectionClosed, Daemon,
                     POP3TestCase, ProtocolError, from_line, message,
                     retr_bytes, top_candidates, wire_size)

TRANSCRIPTS = Path(__file__).resolve().parents[1] / "transcripts"
GREETING_RE = re.compile(r"\+OK mboxpop3d ready( <[^>]+>)?")
LINE_RE = re.compile(r"^(C|S)([1-9]?)(?:\*(\d+))?([:+])(?: (.*)|)$")
PLACEHOLDER_RE = re.compile(r"\{(\d+)\*([^{}]*)\}|\{([a-z0-9]+)((?: [^{}]*)?)\}")
B64_RE = re.compile(r"\{b64 ((?:[^{}]|\{user\}|\{password\}|\{\d+\*[^{}]*\})*)\}")
REPEAT_RE = re.compile(r"\{(\d+)\*([^{}]*)\}")


class ScriptError(Exception):
    """The .t file itself is wrong (not a daemon verdict)."""


class Step:
    def __init__(self, path, lineno, kind, conn=1, arg=""):
        self.path, self.lineno, self.kind = path, lineno, kind
        self.conn, self.arg = conn, arg

    def where(self):
        return f"{self.path.relative_to(TRANSCRIPTS.parent.parent)}:{self.lineno}"


def parse(path):
    """The file's header (spool, daemon) and its steps."""
    header = {"daemon": None}
    steps = []
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.rstrip("\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = LINE_RE.match(line)
        if m:
            who, conn, times, mode, text = m.groups()
            kind = {"C:": "send", "C+": "raw", "S:": "expect"}.get(who + mode)
            if kind is None:
                raise ScriptError(f"{path.name}:{n}: S+ is not a step")
            for _ in range(int(times or 1)):
                steps.append(Step(path, n, kind, int(conn or 1), text or ""))
            continue
        word, _, rest = line.partition(" ")
        rest = rest.strip()
        if word == "daemon:":
            if steps:
                raise ScriptError(f"{path.name}:{n}: daemon: must come "
                                  f"first")
            header["daemon"] = rest
        elif word == "spool:":
            steps.append(Step(path, n, "setspool", 1, rest))
        elif word in ("connect", "drop", "eof", "login"):
            steps.append(Step(path, n, word, int(rest or 1)))
        elif word == "append:":
            steps.append(Step(path, n, "append", 1, rest))
        elif word == "spool?":
            steps.append(Step(path, n, "spool", 1, rest))
        else:
            raise ScriptError(f"{path.name}:{n}: cannot parse {line!r}")
    if not steps or steps[0].kind != "setspool":
        raise ScriptError(f"{path.name}: the first step must be `spool:`")
    return header, steps


def make_spool(spec):
    """`simple 3` -> fixtures.simple(3); `none` -> None."""
    if spec == "none":
        return None
    name, _, args = spec.partition(" ")
    fn = getattr(fixtures, name, None)
    if fn is None or name.startswith("_"):
        raise ScriptError(f"spool: no fixture {name!r} in fixtures.py")
    values = [ast.literal_eval(a) for a in args.split()]
    return fn(*values)


def unescape(text):
    return text.encode("latin-1").decode("unicode_escape").encode("latin-1")


class Conn:
    def __init__(self, port):
        self.client = Client(port, read_greeting=False)
        self.greeting = None          # read lazily
        self.pending = []             # C lines not sent yet (bytes)


class Replay:
    """One transcript file against one daemon and account."""

    def __init__(self, case, path, acct, port):
        self.case, self.path, self.acct = case, path, acct
        self.spool, self.port = None, port
        self.conns = {}
        self.appended = b""

    # -- placeholders
    def value(self, name, args, step, conn):
        served = self.spool.served if self.spool else []
        if name == "user":
            return self.acct.name
        if name == "password":
            return self.acct.password
        if name == "sp":
            return " "
        if name == "count":
            return str(len(served))
        if name == "total":
            return str(sum(wire_size(m) for m in served))
        if name == "size":
            return str(sum(wire_size(served[self.msgnum(a, step) - 1])
                           for a in args.split()))
        if name == "plain":
            return base64.b64encode(
                f"\0{self.acct.name}\0{self.acct.password}".encode()).decode()
        if name == "apop":
            g = self.greeting(conn, step)
            m = re.search(r"<[^>]+>", g)
            if not m:
                self.mismatch(step, conn, "a greeting with an APOP timestamp",
                              g)
            return hashlib.md5((m.group(0) + "apop-" +
                                self.acct.password).encode()).hexdigest()
        raise ScriptError(f"{step.where()}: unknown placeholder {{{name}}}")

    def msgnum(self, args, step):
        try:
            n = int(args)
        except ValueError:
            raise ScriptError(f"{step.where()}: bad message number {args!r}")
        if not self.spool or not 1 <= n <= len(self.spool.served):
            raise ScriptError(f"{step.where()}: the spool has no message {n}")
        return n

    def expand(self, text, step, conn, regex=False):
        """Substitutes placeholders; {any} becomes .* in S lines.  Returns
        a regex (S lines) or the text (C lines)."""
        # {b64 TEXT} first: TEXT may hold {user} {password} {N*TEXT}
        def b64(m):
            inner = REPEAT_RE.sub(lambda r: int(r.group(1)) * r.group(2),
                                  m.group(1))
            inner = inner.replace("{user}", self.acct.name).replace(
                "{password}", self.acct.password)
            return base64.b64encode(unescape(inner)).decode()
        text = B64_RE.sub(b64, text)
        out, pos = [], 0
        lit = (lambda s: re.escape(s)) if step.kind == "expect" and not regex \
            else (lambda s: s)
        for m in PLACEHOLDER_RE.finditer(text):
            rep_n, rep_text, name, args = m.groups()
            if name is not None and name not in (
                    "user", "password", "sp", "count", "total", "size",
                    "plain", "apop", "any"):
                if regex:
                    continue          # e.g. a quantifier {16}
                raise ScriptError(f"{step.where()}: unknown placeholder "
                                  f"{m.group(0)}")
            out.append(lit(text[pos:m.start()]))
            if rep_n is not None:
                v = int(rep_n) * self.expand(rep_text, Step(
                    step.path, step.lineno, "send"), conn)
            elif name == "any":
                if step.kind != "expect":
                    raise ScriptError(f"{step.where()}: {{any}} in a C line")
                out.append(".*")
                pos = m.end()
                continue
            else:
                v = self.value(name, args.strip(), step, conn)
            out.append(re.escape(v) if step.kind == "expect" else v)
            pos = m.end()
        out.append(lit(text[pos:]))
        return "".join(out)

    # -- connections
    def conn(self, n):
        c = self.conns.get(n)
        if c is None:
            c = self.conns[n] = Conn(self.port)
            self.case._clients.append(c.client)
        return c

    def greeting(self, n, step, check=True):
        """Connection n's greeting (read on first use; checked against
        GREETING_RE unless the transcript checks it itself)."""
        c = self.conn(n)
        if c.greeting is None:
            try:
                c.greeting = c.client.readline_str()
            except (OSError, ProtocolError) as e:
                self.mismatch(step, n, "the greeting", f"<{e}>")
            if check and not GREETING_RE.fullmatch(c.greeting):
                self.mismatch(step, n, GREETING_RE.pattern, c.greeting)
        return c.greeting

    def flush(self, n):
        c = self.conns.get(n)
        if c and c.pending:
            data = b"".join(c.pending)
            c.pending = []
            try:
                c.client.send_raw(data)
            except OSError as e:
                raise AssertionError(f"{self.path.name}: sending failed: {e}")

    def flush_all(self):
        for n in list(self.conns):
            self.flush(n)

    def mismatch(self, step, n, expected, got):
        c = self.conns.get(n)
        self.case.fail(f"\n{step.where()}: transcript mismatch "
                       f"(connection {n})\n  expected: {expected}\n"
                       f"  got:      {got!r}\ntranscript (last lines):\n"
                       f"{c.client.transcript() if c else ''}")

    # -- steps
    def run(self, steps):
        for step in steps:
            getattr(self, "do_" + step.kind)(step)
        self.flush_all()
        self.check_quiet()

    def do_send(self, step):
        c = self.conn(step.conn)
        self.greeting(step.conn, step)
        text = self.expand(step.arg, step, step.conn)
        c.pending.append(text.encode("latin-1") + b"\r\n")

    def do_raw(self, step):
        c = self.conn(step.conn)
        self.greeting(step.conn, step)
        c.pending.append(unescape(self.expand(step.arg, step, step.conn)))

    def do_expect(self, step):
        n = step.conn
        self.flush_all()
        c = self.conn(n)
        text = step.arg
        whole = re.fullmatch(r"\{(body|message|top|closed)((?: [^{}]*)?)\}",
                             text)
        if c.greeting is None and not whole:
            return self.match_line(step, n, text,
                                   self.greeting(n, step, check=False))
        self.greeting(n, step)
        if whole:
            return self.expect_whole(step, n, whole.group(1),
                                     whole.group(2).split())
        try:
            got = c.client.readline_str()
        except socket.timeout:
            return self.mismatch(step, n, text, "<no reply within "
                                 f"{c.client.timeout}s>")
        except ConnectionClosed:
            return self.mismatch(step, n, text, "<connection closed>")
        except ProtocolError as e:
            return self.mismatch(step, n, text, f"<{e}>")
        self.match_line(step, n, text, got)

    def match_line(self, step, n, text, got):
        if text.startswith("/") and text.endswith("/") and len(text) >= 2:
            pattern = self.expand(text[1:-1], step, n, regex=True)
        else:
            pattern = self.expand(text, step, n)
        if not re.fullmatch(pattern, got, re.S):
            shown = text
            if not text.startswith("/"):
                plain = self.expand(text.replace("{any}", "\x00"), Step(
                    step.path, step.lineno, "send", n), n).replace("\x00",
                                                                 "{any}")
                if plain != text:
                    shown = f"{text}   (= {plain!r})"
            self.mismatch(step, n, shown, got)

    def expect_whole(self, step, n, kind, args):
        c = self.conn(n).client
        if kind == "closed":
            try:
                extra = c.read_until_eof(c.timeout)
            except socket.timeout:
                return self.mismatch(step, n, "the connection closed",
                                     "<still open>")
            except ProtocolError as e:
                return self.mismatch(step, n, "the connection closed",
                                     f"<{e}>")
            if extra:
                self.mismatch(step, n, "the connection closed", extra)
            return
        try:
            body = c.read_multi_raw()
        except (OSError, ProtocolError) as e:
            return self.mismatch(step, n, f"a multi-line body ({kind})",
                                 f"<{e}>")
        if kind == "body":
            return
        served = self.spool.served if self.spool else []
        want = None
        if kind == "message" and len(args) == 1:
            want = [retr_bytes(served[self.msgnum(args[0], step) - 1])]
        elif kind == "top" and len(args) == 2:
            want = top_candidates(served[self.msgnum(args[0], step) - 1],
                                  int(args[1]))
        else:
            raise ScriptError(f"{step.where()}: bad {{{kind}}} arguments")
        if body not in want:
            self.mismatch(step, n, f"{{{kind} {' '.join(args)}}}: "
                          f"{want[0][:300]!r}", body[:300])

    def do_connect(self, step):
        old = self.conns.pop(step.conn, None)
        if old:
            old.client.close()
        self.conn(step.conn)

    def do_drop(self, step):
        self.flush(step.conn)
        c = self.conns.pop(step.conn, None)
        if c:
            c.client.abort()

    def do_eof(self, step):
        """Half-closes connection N: the server sees EOF, no QUIT."""
        self.flush(step.conn)
        c = self.conn(step.conn)
        c.client._note("C", "<EOF>")
        c.client.sock.shutdown(socket.SHUT_WR)

    def do_login(self, step):
        for line, want in (("USER {user}", "+OK send PASS"),
                           ("PASS {password}", "+OK {any}")):
            self.do_send(Step(step.path, step.lineno, "send", step.conn,
                              line))
            self.do_expect(Step(step.path, step.lineno, "expect", step.conn,
                                want))

    def do_setspool(self, step):
        """(Re)writes the account's spool; `none` removes it.  Every
        session must be over (closed by the server) first."""
        self.flush_all()
        for n, c in self.conns.items():
            if not c.client.eof:
                raise ScriptError(f"{step.where()}: connection {n} is still "
                                  f"open (end it with QUIT and {{closed}})")
        try:
            self.spool = make_spool(step.arg)
        except ScriptError as e:
            raise ScriptError(f"{step.where()}: {e}")
        self.appended = b""
        path = self.case.env.spool_path(self.acct)
        if self.spool is None:
            if path.exists():
                path.unlink()
        else:
            self.case.env.write_spool(self.acct, self.spool)

    def do_append(self, step):
        self.flush_all()
        data = from_line(date="Sun Jan  7 10:00:00 2024") + \
            message(step.arg, body=f"{step.arg} body\n") + b"\n"
        self.case.env.append_spool(self.acct, data)
        self.appended += data

    def do_spool(self, step):
        self.flush_all()
        words = step.arg.split()
        if not self.spool:
            raise ScriptError(f"{step.where()}: spool? needs a spool fixture")
        if words == ["unchanged"]:
            want = self.spool.data
        elif words and words[0] == "without":
            want = self.spool.without([self.msgnum(w, step)
                                       for w in words[1:]])
        else:
            raise ScriptError(f"{step.where()}: spool? unchanged | without N..")
        want += self.appended
        got = self.case.env.read_spool(self.acct)
        if got != want:
            self.case.assertBytesEqual(got, want, f"{step.where()}: spool "
                                                  f"({step.arg})")

    def check_quiet(self):
        """Nothing may arrive that the transcript did not expect."""
        for n, c in self.conns.items():
            if c.client.eof or c.greeting is None:
                continue
            try:
                line = c.client.readline_str(timeout=0.2)
            except (socket.timeout, ConnectionClosed, OSError):
                continue
            except ProtocolError as e:
                line = f"<{e}>"
            self.case.fail(f"\n{self.path.name}: after the last line, "
                           f"connection {n} still sent {line!r}\n"
                           f"{c.client.transcript()}")


class Transcripts(POP3TestCase):
    """One test per tests/transcripts/*.t (added below)."""

    def replay(self, path):
        header, steps = parse(path)
        acct = self.env.fresh()
        port = self.port
        if header["daemon"]:
            port = self.start_daemon(header["daemon"], acct, path)
        Replay(self, path, acct, port).run(steps)

    def start_daemon(self, spec, acct, path):
        settings = {}
        for word in spec.split():
            if word == "apop":
                if not IS_ROOT:
                    self.skipTest("apop_secrets must be root-owned: needs root")
                secrets = self.env.dir / f"apop-secrets-{acct.name}"
                secrets.write_text(f"{acct.name}:apop-{acct.password}\n")
                os.chmod(secrets, 0o600)
                settings["apop_secrets"] = str(secrets)
            elif "=" in word:
                k, v = word.split("=", 1)
                settings[k] = v
            else:
                raise ScriptError(f"{path.name}: daemon: {word}?")
        d = Daemon(self.env, f"transcript-{path.stem}", settings).start()
        self.addCleanup(d.stop)
        return d.port


def _add_tests():
    for path in sorted(TRANSCRIPTS.glob("*.t")):
        name = "test_" + re.sub(r"\W", "_", path.stem)

        def test(self, path=path):
            self.replay(path)
        test.__doc__ = f"tests/transcripts/{path.name}"
        setattr(Transcripts, name, test)


_add_tests()


if __name__ == "__main__":
    unittest.main()
