"""POP3 commands in every state (RFC 1939, RFC 2449): success and error
paths, argument parsing, line handling, pipelining, [IN-USE]."""

import random
import re
import threading
import time
import unittest

import fixtures
from harness import (POP3TestCase, Client, retr_bytes, wire_size, top_lines,
                     GREETING)

CAPS = {"TOP", "UIDL", "USER", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"}
TRANSACTION_CMDS = ["STAT", "LIST", "LIST 1", "RETR 1", "DELE 1", "NOOP",
                    "RSET", "TOP 1 0", "UIDL", "UIDL 1"]


class CapaMixin:
    def check_capa(self, c):
        r, lines = self.multi(c, "CAPA")
        caps = [l.decode("latin-1") for l in lines]
        names = [x.split(" ", 1)[0].upper() for x in caps]
        plain = {x for x in caps if " " not in x}
        impl = [x for x in caps if x.upper().startswith("IMPLEMENTATION")]
        self.assertEqual(len(names), len(set(names)),
                         f"duplicate capabilities: {caps}")
        self.assertEqual(set(names), CAPS | {"IMPLEMENTATION", "SASL"},
                         f"CAPA lists {caps}")
        self.assertIn("SASL PLAIN", caps)
        self.assertEqual(plain, CAPS, f"CAPA lists {caps}")
        self.assertEqual(len(impl), 1, caps)
        self.assertRegex(impl[0], r"^IMPLEMENTATION mboxpop3d-\S+$")
        return caps


class AuthorizationState(CapaMixin, POP3TestCase):

    def test_greeting(self):
        c = self.connect(check_greeting=False)
        self.assertEqual(c.greeting, GREETING)

    def test_capa(self):
        c = self.connect()
        self.check_capa(c)
        # the session goes on: a login still works
        acct = self.new_mailbox(fixtures.simple(1))
        self.login(acct, client=c)

    def test_capa_with_argument_refused(self):
        c = self.connect()
        self.err(c, "CAPA x")
        self.check_capa(c)

    def test_transaction_commands_refused(self):
        acct = self.new_mailbox(fixtures.simple(2))
        c = self.connect()
        for cmd in TRANSACTION_CMDS:
            self.err(c, cmd)
        self.login(acct, client=c)
        self.assertEqual(self.ok(c, "STAT"),
                         f"+OK 2 {sum(map(wire_size, fixtures.simple(2).served))}")

    def test_transaction_commands_refused_after_user(self):
        acct = self.new_mailbox(fixtures.simple(1))
        c = self.connect()
        self.ok(c, f"USER {acct.name}")
        self.err(c, "STAT")
        self.err(c, "RETR 1")

    def test_user_argument_rules(self):
        c = self.connect()
        self.err(c, "USER")
        self.err(c, "USER alice bob")
        self.ok(c, "USER alice")

    def test_pass_without_user(self):
        acct = self.new_mailbox(fixtures.simple(1))
        c = self.connect()
        self.err(c, f"PASS {acct.password}")
        self.login(acct, client=c)

    def test_pass_without_argument(self):
        acct = self.new_mailbox(fixtures.simple(1))
        c = self.connect()
        self.ok(c, f"USER {acct.name}")
        self.err(c, "PASS")

    def test_quit(self):
        c = self.connect()
        self.quit(c)

    def test_quit_after_user(self):
        acct = self.new_mailbox(fixtures.simple(1))
        c = self.connect()
        self.ok(c, f"USER {acct.name}")
        self.quit(c)
        self.assertEqual(self.env.read_spool(acct), fixtures.simple(1).data)

    def test_unknown_commands(self):
        c = self.connect()
        for cmd in ["FOO", "XYZZY 1 2", "RETRX 1", "APOPX a b", "", " ",
                    "STLS", "AUTH", "LAST"]:
            self.err(c, cmd)
        self.check_capa(c)

    def test_lowercase_and_mixed_case(self):
        spool = fixtures.simple(2)
        acct = self.new_mailbox(spool)
        c = self.connect()
        self.check_capa_lower(c)
        self.ok(c, f"user {acct.name}")
        self.ok(c, f"pAsS {acct.password}")
        self.assertEqual(self.ok(c, "stat"),
                         f"+OK 2 {sum(map(wire_size, spool.served))}")
        self.assertEqual(self.ok(c, "list 2"),
                         f"+OK 2 {wire_size(spool.served[1])}")
        r, body = self.multi(c, "Retr 1", raw=True)
        self.assertBytesEqual(body, retr_bytes(spool.served[0]), "retr 1")
        r, lines = self.multi(c, "top 2 0")
        self.assertEqual(lines, top_lines(spool.served[1], 0))
        self.ok(c, "uidl 1")
        self.ok(c, "noop")
        self.ok(c, "dele 1")
        self.ok(c, "rset")
        self.quit_lower(c)
        self.assertEqual(self.env.read_spool(acct), spool.data)

    def check_capa_lower(self, c):
        self.ok(c, "capa")
        lines = c.read_multi()
        self.assertIn(b"UIDL", lines)

    def quit_lower(self, c):
        self.ok(c, "quit")
        self.assertEqual(c.read_until_eof(5), [])


class TransactionState(CapaMixin, POP3TestCase):

    def setUp(self):
        super().setUp()
        self.spool = fixtures.simple(3)
        self.sizes = [wire_size(m) for m in self.spool.served]
        self.acct = self.new_mailbox(self.spool)
        self.c, self.pass_reply = self.login(self.acct)

    def assertUntouched(self):
        self.assertEqual(self.env.read_spool(self.acct), self.spool.data,
                         "spool changed")

    def test_pass_reply_counts(self):
        m = re.search(r"(\d+) messages? \((\d+) octets\)", self.pass_reply)
        self.assertTrue(m, f"PASS reply {self.pass_reply!r} lacks "
                           f"'N messages (M octets)'")
        self.assertEqual((int(m.group(1)), int(m.group(2))),
                         (3, sum(self.sizes)), self.pass_reply)

    def test_capa(self):
        self.check_capa(self.c)
        self.ok(self.c, "STAT")

    def test_stat(self):
        self.assertEqual(self.ok(self.c, "STAT"), f"+OK 3 {sum(self.sizes)}")

    def test_list(self):
        r, lines = self.multi(self.c, "LIST")
        self.assertEqual(lines, [f"{i + 1} {s}".encode()
                                 for i, s in enumerate(self.sizes)], r)

    def test_list_one(self):
        for i, s in enumerate(self.sizes, 1):
            self.assertEqual(self.ok(self.c, f"LIST {i}"), f"+OK {i} {s}")

    def test_retr(self):
        for i, m in enumerate(self.spool.served, 1):
            r, body = self.multi(self.c, f"RETR {i}", raw=True)
            self.assertBytesEqual(body, retr_bytes(m), f"RETR {i}")

    def test_top(self):
        for i, m in enumerate(self.spool.served, 1):
            for k in (0, 1, 2, 50):
                r, lines = self.multi(self.c, f"TOP {i} {k}")
                self.assertEqual(lines, top_lines(m, k), f"TOP {i} {k}")

    def test_noop(self):
        self.ok(self.c, "NOOP")
        self.err(self.c, "NOOP x")

    def test_dele_hides_message(self):
        self.ok(self.c, "DELE 2")
        self.assertEqual(self.ok(self.c, "STAT"),
                         f"+OK 2 {self.sizes[0] + self.sizes[2]}")
        r, lines = self.multi(self.c, "LIST")
        self.assertEqual(lines, [f"1 {self.sizes[0]}".encode(),
                                 f"3 {self.sizes[2]}".encode()])
        r, lines = self.multi(self.c, "UIDL")
        self.assertEqual([l.split()[0] for l in lines], [b"1", b"3"])
        for cmd in ["LIST 2", "RETR 2", "DELE 2", "TOP 2 0", "UIDL 2"]:
            self.err(self.c, cmd)
        # the others are still served
        r, body = self.multi(self.c, "RETR 3", raw=True)
        self.assertBytesEqual(body, retr_bytes(self.spool.served[2]), "RETR 3")

    def test_rset_undeletes(self):
        self.ok(self.c, "DELE 1")
        self.ok(self.c, "DELE 3")
        self.ok(self.c, "RSET")
        self.assertEqual(self.ok(self.c, "STAT"), f"+OK 3 {sum(self.sizes)}")
        r, body = self.multi(self.c, "RETR 1", raw=True)
        self.assertBytesEqual(body, retr_bytes(self.spool.served[0]), "RETR 1")
        self.quit(self.c)
        self.assertUntouched()

    def test_rset_with_argument_refused(self):
        self.ok(self.c, "DELE 1")
        self.err(self.c, "RSET 1")
        self.err(self.c, "RETR 1")      # still deleted

    def test_user_pass_refused(self):
        self.err(self.c, f"USER {self.acct.name}")
        self.err(self.c, f"PASS {self.acct.password}")
        self.assertEqual(self.ok(self.c, "STAT"), f"+OK 3 {sum(self.sizes)}")

    def test_unknown_commands(self):
        for cmd in ["FOO", "", "LAST", "RETRIEVE 1", "APOP x y"]:
            self.err(self.c, cmd)
        self.ok(self.c, "STAT")

    def test_bad_message_numbers(self):
        bad = ["0", "4", "99", "abc", "+1", "-1", "1a", "0x1", "1.0",
               "18446744073709551616", "18446744073709551617",
               "4294967297", "99999999999999999999999999999999"]
        for cmd in ["RETR", "LIST", "DELE", "UIDL"]:
            for n in bad:
                self.err(self.c, f"{cmd} {n}")
        for n in bad:
            self.err(self.c, f"TOP {n} 0")
        # nothing was deleted by any of them
        self.assertEqual(self.ok(self.c, "STAT"), f"+OK 3 {sum(self.sizes)}")
        self.quit(self.c)
        self.assertUntouched()

    def test_bad_top_line_counts(self):
        for k in ["-1", "+1", "x", "1x", "99999999999999999999999999999"]:
            self.err(self.c, f"TOP 1 {k}")
        self.ok(self.c, "STAT")

    def test_missing_arguments(self):
        for cmd in ["RETR", "DELE", "TOP", "TOP 1"]:
            self.err(self.c, cmd)
        self.assertEqual(self.ok(self.c, "STAT"), f"+OK 3 {sum(self.sizes)}")

    def test_extra_arguments(self):
        for cmd in ["STAT 1", "LIST 1 2", "UIDL 1 2", "RETR 1 2", "DELE 1 2",
                    "TOP 1 2 3", "RSET x", "NOOP 1", "QUIT now"]:
            self.err(self.c, cmd)
        # "DELE 1 2" deleted nothing, "QUIT now" did not end the session
        self.assertEqual(self.ok(self.c, "STAT"), f"+OK 3 {sum(self.sizes)}")
        self.quit(self.c)
        self.assertUntouched()

    def test_nul_in_command(self):
        self.err(self.c, "NO\x00OP")
        self.err(self.c, "DELE 1\x00")
        self.err(self.c, "DELE \x001")
        self.assertEqual(self.ok(self.c, "STAT"), f"+OK 3 {sum(self.sizes)}")

    def test_hostile_input_session_survives(self):
        rng = random.Random(1939)
        words = ["RETR", "LIST", "TOP", "DELE", "UIDL", "STAT", "", "X"]
        for _ in range(150):
            junk = bytes(rng.choice(b"abc +-.0123456789\x00\x01\x7f\xff\r\t")
                         for _ in range(rng.randrange(0, 40)))
            line = rng.choice(words).encode() + b" " + junk
            line = line.replace(b"\r", b"")
            # keep only lines that cannot be a valid request, even for a
            # server lenient about extra white space
            tokens = line.split()
            if not tokens or (tokens[0] in (b"RETR", b"LIST", b"TOP", b"DELE",
                                            b"UIDL", b"STAT")
                              and all(t.isdigit() for t in tokens[1:])):
                continue
            self.c.send_raw(line + b"\r\n")
            r = self.c.readline_str()
            if r.startswith("+OK"):
                self.fail(f"hostile line {line!r} accepted: {r!r}")
            self.assertTrue(r.startswith("-ERR"), f"{line!r} -> {r!r}")
        self.assertEqual(self.ok(self.c, "STAT"), f"+OK 3 {sum(self.sizes)}")
        self.quit(self.c)
        self.assertUntouched()


class Lines(POP3TestCase):
    """Line ends, the 255-octet limit, pipelining."""

    def test_bare_lf_session(self):
        spool = fixtures.simple(2)
        acct = self.new_mailbox(spool)
        c = self.connect()
        for line, want in [(f"USER {acct.name}", "+OK"),
                           (f"PASS {acct.password}", "+OK"),
                           ("STAT", f"+OK 2 {sum(map(wire_size, spool.served))}"),
                           ("LIST 1", f"+OK 1 {wire_size(spool.served[0])}")]:
            c.send_raw(line.encode() + b"\n")
            r = c.readline_str()      # server lines must still end in CRLF
            self.assertTrue(r.startswith(want), self.explain(c, line, r, want))
        c.send_raw(b"RETR 2\n")
        self.assertTrue(c.readline_str().startswith("+OK"))
        self.assertBytesEqual(c.read_multi_raw(), retr_bytes(spool.served[1]),
                              "RETR 2 (bare LF command)")
        c.send_raw(b"QUIT\n")
        self.assertTrue(c.readline_str().startswith("+OK"))

    def test_line_limit_boundary(self):
        c = self.connect()
        # 255 octets including CRLF is allowed (RFC 2449 section 4)
        line = "USER " + "a" * 248
        self.assertEqual(len(line) + 2, 255)
        r = c.cmd(line)
        self.assertNotIn("too long", r.lower(), self.explain(
            c, f"<255-octet line {line[:12]}...>", r, "not 'line too long'"))
        # 256 octets is too long
        line = "USER " + "a" * 249
        r = c.cmd(line)
        self.assertTrue(r.startswith("-ERR") and "too long" in r.lower(),
                        self.explain(c, "<256-octet USER line>", r,
                                     "-ERR line too long"))
        self.ok(c, "CAPA")
        c.read_multi()

    def test_over_long_line_rest_discarded(self):
        c = self.connect()
        # the long line and a CAPA in one send: one -ERR, then CAPA's answer
        c.send_raw(b"USER " + b"a" * 300 + b" PASS x\r\nCAPA\r\n")
        r = c.readline_str()
        self.assertTrue(r.startswith("-ERR") and "too long" in r.lower(),
                        self.explain(c, "<305-octet line>", r,
                                     "-ERR line too long"))
        r = c.readline_str()
        self.assertTrue(r.startswith("+OK"),
                        self.explain(c, "CAPA (after long line)", r, "+OK"))
        c.read_multi()

    def test_huge_line_in_transaction(self):
        spool = fixtures.simple(2)
        acct = self.new_mailbox(spool)
        c, _ = self.login(acct)
        c.send_raw(b"DELE 1" + b" " * 50000 + b"2" * 50000 + b"\r\nSTAT\r\n")
        r = c.readline_str()
        self.assertTrue(r.startswith("-ERR") and "too long" in r.lower(),
                        self.explain(c, "<100 KB DELE line>", r,
                                     "-ERR line too long"))
        r = c.readline_str()
        self.assertEqual(r, f"+OK 2 {sum(map(wire_size, spool.served))}",
                         self.explain(c, "STAT (after 100 KB line)", r,
                                      "+OK 2 ..."))
        self.quit(c)
        self.assertEqual(self.env.read_spool(acct), spool.data)

    def test_long_line_split_over_sends(self):
        c = self.connect()
        c.send_raw(b"USER " + b"b" * 200)
        time.sleep(0.05)
        c.send_raw(b"c" * 200)
        time.sleep(0.05)
        c.send_raw(b"d" * 10 + b"\r\nCAPA\r\n")
        r = c.readline_str()
        self.assertTrue(r.startswith("-ERR") and "too long" in r.lower(),
                        self.explain(c, "<415-octet line in 3 sends>", r,
                                     "-ERR line too long"))
        self.assertTrue(c.readline_str().startswith("+OK"))
        c.read_multi()

    def test_pipelining_transaction(self):
        spool = fixtures.simple(3)
        sizes = [wire_size(m) for m in spool.served]
        acct = self.new_mailbox(spool)
        c, _ = self.login(acct)
        c.send_raw(b"STAT\r\nLIST\r\nRETR 1\r\nUIDL 2\r\nNOOP\r\nTOP 3 0\r\n"
                   b"DELE 1\r\nRETR 1\r\nSTAT\r\nRSET\r\nLIST 1\r\n")
        self.assertEqual(c.readline_str(), f"+OK 3 {sum(sizes)}")
        self.assertTrue(c.readline_str().startswith("+OK"))
        self.assertEqual(c.read_multi(), [f"{i + 1} {s}".encode()
                                          for i, s in enumerate(sizes)])
        self.assertTrue(c.readline_str().startswith("+OK"))
        self.assertBytesEqual(c.read_multi_raw(), retr_bytes(spool.served[0]),
                              "pipelined RETR 1")
        self.assertRegex(c.readline_str(), r"^\+OK 2 \S+$")
        self.assertTrue(c.readline_str().startswith("+OK"))       # NOOP
        self.assertTrue(c.readline_str().startswith("+OK"))       # TOP
        self.assertEqual(c.read_multi(), top_lines(spool.served[2], 0))
        self.assertTrue(c.readline_str().startswith("+OK"))       # DELE 1
        self.assertTrue(c.readline_str().startswith("-ERR"))      # RETR 1
        self.assertEqual(c.readline_str(), f"+OK 2 {sizes[1] + sizes[2]}")
        self.assertTrue(c.readline_str().startswith("+OK"))       # RSET
        self.assertEqual(c.readline_str(), f"+OK 1 {sizes[0]}")

    def test_pipelining_across_login(self):
        spool = fixtures.simple(2)
        acct = self.new_mailbox(spool)
        c = self.connect()
        c.send_raw(f"CAPA\r\nUSER {acct.name}\r\nPASS {acct.password}\r\n"
                   f"STAT\r\nRETR 2\r\nDELE 2\r\nQUIT\r\n".encode())
        self.assertTrue(c.readline_str().startswith("+OK"))
        c.read_multi()
        self.assertTrue(c.readline_str().startswith("+OK"))       # USER
        r = c.readline_str()
        self.assertTrue(r.startswith("+OK"), self.explain(c, "PASS", r, "+OK"))
        self.assertEqual(c.readline_str(),
                         f"+OK 2 {sum(map(wire_size, spool.served))}")
        self.assertTrue(c.readline_str().startswith("+OK"))
        self.assertBytesEqual(c.read_multi_raw(), retr_bytes(spool.served[1]),
                              "RETR 2 pipelined behind PASS")
        self.assertTrue(c.readline_str().startswith("+OK"))       # DELE
        self.assertTrue(c.readline_str().startswith("+OK"))       # QUIT
        self.assertEqual(c.read_until_eof(5), [])
        self.assertEqual(self.env.read_spool(acct), spool.without([2]))

    def test_pipelining_big_batch_behind_pass(self):
        """Commands pipelined behind PASS must all reach the session,
        however many bytes were buffered when the login happened."""
        spool = fixtures.simple(1)
        acct = self.new_mailbox(spool)
        c = self.connect()
        n = 2000                                  # 16 KB behind PASS
        c.send_raw(f"USER {acct.name}\r\nPASS {acct.password}\r\n".encode()
                   + b"LIST 1\r\n" * n + b"STAT\r\n")
        self.assertTrue(c.readline_str().startswith("+OK"))
        r = c.readline_str()
        self.assertTrue(r.startswith("+OK"), self.explain(c, "PASS", r, "+OK"))
        want = f"+OK 1 {wire_size(spool.served[0])}"
        for i in range(n):
            r = c.readline_str()
            if r != want:
                self.fail(self.explain(c, f"LIST 1 (pipelined #{i + 1} of "
                                          f"{n} behind PASS)", r, want))
        self.assertEqual(c.readline_str(),
                         f"+OK 1 {wire_size(spool.served[0])}")    # STAT

    def test_pipelining_failed_login_then_good(self):
        spool = fixtures.simple(1)
        acct = self.new_mailbox(spool)
        c = self.connect()
        c.send_raw(f"USER {acct.name}\r\nPASS wrong\r\nUSER {acct.name}\r\n"
                   f"PASS {acct.password}\r\nSTAT\r\n".encode())
        self.assertTrue(c.readline_str().startswith("+OK"))
        r = c.readline_str()
        self.assertTrue(r.startswith("-ERR [AUTH]"),
                        self.explain(c, "PASS wrong", r, "-ERR [AUTH]"))
        self.assertTrue(c.readline_str().startswith("+OK"))
        r = c.readline_str()
        self.assertTrue(r.startswith("+OK"), self.explain(c, "PASS", r, "+OK"))
        self.assertEqual(c.readline_str(),
                         f"+OK 1 {wire_size(spool.served[0])}")

    def test_nothing_answered_after_quit(self):
        spool = fixtures.simple(2)
        acct = self.new_mailbox(spool)
        c, _ = self.login(acct)
        c.send_raw(b"DELE 1\r\nQUIT\r\nDELE 2\r\nSTAT\r\n")
        self.assertTrue(c.readline_str().startswith("+OK"))       # DELE 1
        self.assertTrue(c.readline_str().startswith("+OK"))       # QUIT
        self.assertEqual(c.read_until_eof(5), [],
                         "commands after QUIT were answered")
        self.assertEqual(self.env.read_spool(acct), spool.without([1]))

    def test_pipelining_many_commands(self):
        acct = self.new_mailbox(fixtures.simple(1))
        c, _ = self.login(acct)
        n = 3000                       # 18 KB of commands, > the input buffer
        c.send_raw(b"NOOP\r\nLIST 1\r\n" * (n // 2))
        for i in range(n):
            r = c.readline_str()
            if not r.startswith("+OK"):
                self.fail(self.explain(c, f"pipelined command #{i}", r, "+OK"))
        self.ok(c, "STAT")

    def test_pipelining_big_replies(self):
        spool = fixtures.big_dotty()
        acct = self.new_mailbox(spool)
        c, _ = self.login(acct)
        c.send_raw(b"RETR 1\r\nRETR 2\r\nRETR 1\r\nSTAT\r\n")
        for i in (0, 1, 0):
            self.assertTrue(c.readline_str().startswith("+OK"))
            self.assertBytesEqual(c.read_multi_raw(timeout=30),
                                  retr_bytes(spool.served[i]),
                                  f"pipelined RETR {i + 1}")
        self.assertTrue(c.readline_str().startswith("+OK 2 "))


class Sessions(POP3TestCase):
    """One session per mailbox; sessions of different users in parallel."""

    def test_second_login_in_use(self):
        spool = fixtures.simple(2)
        acct = self.new_mailbox(spool)
        a, _ = self.login(acct)
        self.ok(a, "DELE 1")
        b = self.connect()
        self.ok(b, f"USER {acct.name}")
        r = b.cmd(f"PASS {acct.password}")
        self.assertTrue(r.startswith("-ERR [IN-USE]"),
                        self.explain(b, "PASS (mailbox already in a session)",
                                     r, "-ERR [IN-USE] ..."))
        # the first session is unaffected and can update
        self.assertEqual(self.ok(a, "STAT"),
                         f"+OK 1 {wire_size(spool.served[1])}")
        self.quit(a)
        self.assertEqual(self.env.read_spool(acct), spool.without([1]))

    def test_relogin_right_after_quit(self):
        """A client that logs in again right after QUIT's +OK must not be
        refused as [IN-USE] (tried 15 times: the race is narrow)."""
        spool = fixtures.simple(2)
        acct = self.new_mailbox(spool)
        for i in range(15):
            a, _ = self.login(acct)
            # like poplib: read QUIT's +OK, close, connect again at once
            self.ok(a, "QUIT")
            a.close()
            b = self.connect()
            self.ok(b, f"USER {acct.name}")
            r = b.cmd(f"PASS {acct.password}")
            self.assertTrue(r.startswith("+OK"), self.explain(
                b, f"PASS (right after the previous session's QUIT, "
                   f"try {i + 1})", r, "+OK"))
            self.assertEqual(self.ok(b, "STAT"),
                             f"+OK 2 {sum(map(wire_size, spool.served))}")
            self.quit(b)

    def test_parallel_sessions(self):
        n = 12
        work = []
        for i in range(n):
            spool = fixtures.simple(1 + i % 3)
            work.append((self.new_mailbox(spool), spool))
        errors = []
        barrier = threading.Barrier(n, timeout=20)

        def one(acct, spool):
            try:
                c = Client(self.port)
                try:
                    barrier.wait()
                    r = c.cmd(f"USER {acct.name}")
                    r = c.cmd(f"PASS {acct.password}")
                    if not r.startswith("+OK"):
                        raise AssertionError(f"{acct.name}: PASS -> {r}")
                    for k, m in enumerate(spool.served, 1):
                        c.send(f"RETR {k}")
                        if not c.readline_str().startswith("+OK"):
                            raise AssertionError(f"RETR {k}")
                        if c.read_multi_raw() != retr_bytes(m):
                            raise AssertionError(f"{acct.name}: RETR {k} "
                                                 f"bytes differ")
                    c.cmd("DELE 1")
                    if not c.cmd("QUIT").startswith("+OK"):
                        raise AssertionError("QUIT")
                finally:
                    c.close()
            except Exception as e:      # reported below
                errors.append(f"{acct.name}: {e!r}")

        threads = [threading.Thread(target=one, args=w) for w in work]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertFalse(any(t.is_alive() for t in threads), "sessions hung")
        self.assertEqual(errors, [])
        for acct, spool in work:
            self.assertEqual(self.env.read_spool(acct), spool.without([1]),
                             acct.name)


class TwoHosts(POP3TestCase):
    """A second daemon on the same spool dir, as a second host sharing
    the spool over NFS would be: its login table does not know the first
    one's sessions, so UPDATE's prefix check must catch the conflict."""

    daemon_settings = {"min_spare": "1"}     # its own daemon, same spools

    def check(self, first_quitter):
        spool = fixtures.simple(3)
        acct = self.new_mailbox(spool)
        main = self.env.main()
        a, _ = self.login(acct, port=main.port)
        b, _ = self.login(acct)                  # on the second daemon
        self.ok(a, "DELE 1")
        self.ok(b, "DELE 3")
        first, second = (a, b) if first_quitter == "a" else (b, a)
        want = spool.without([1] if first_quitter == "a" else [3])
        self.quit(first)
        self.assertBytesEqual(self.env.read_spool(acct), want, "first UPDATE")
        r = second.cmd("QUIT")
        self.assertTrue(r.startswith("-ERR [SYS/TEMP]"), self.explain(
            second, "QUIT (the other host's session rewrote the spool)", r,
            "-ERR [SYS/TEMP] ..."))
        self.assertBytesEqual(self.env.read_spool(acct), want,
                              "spool after the second session's QUIT")

    def test_second_update_refused(self):
        self.check("a")

    def test_second_update_refused_other_order(self):
        self.check("b")


if __name__ == "__main__":
    unittest.main()
