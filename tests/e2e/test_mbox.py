"""Byte-exact RETR/TOP and sizes for every mbox dialect feature; empty,
missing and unusable spools; the UW-IMAP pseudo message."""

import os
import re
import unittest

import fixtures
from harness import (POP3TestCase, Spool, ConnectionClosed, message,
                     retr_bytes, top_candidates,
                     unstuff, wire_size, IS_ROOT)


class Serve(POP3TestCase):
    """Each test builds a spool, then checks STAT, LIST, LIST n, RETR n
    (exact bytes on the wire) and TOP n k against the independent model
    in harness.py, and that a session without DELE leaves the file as is."""

    def sweep(self, spool, tops=(0, 1, 3, 1000000)):
        acct = self.new_mailbox(spool)
        c, _ = self.login(acct)
        served = spool.served
        sizes = [wire_size(m) for m in served]
        self.assertEqual(self.ok(c, "STAT"), f"+OK {len(served)} {sum(sizes)}")
        r, lines = self.multi(c, "LIST")
        self.assertEqual(lines, [f"{i} {s}".encode()
                                 for i, s in enumerate(sizes, 1)], "LIST")
        for i, m in enumerate(served, 1):
            r = self.ok(c, f"LIST {i}")
            self.assertEqual(r, f"+OK {i} {sizes[i - 1]}")
            listed = int(r.split()[2])
            r, raw = self.multi(c, f"RETR {i}", raw=True)
            self.assertBytesEqual(raw, retr_bytes(m), f"RETR {i}")
            # the size LIST gave is the un-stuffed octets RETR sent
            sent = sum(len(l) + 2 for l in unstuff(raw))
            self.assertEqual(sent, listed, f"RETR {i} sent {sent} octets, "
                                           f"LIST said {listed}")
            m_oct = re.search(r"(\d+) octets", r)
            if m_oct:
                self.assertEqual(int(m_oct.group(1)), listed, r)
            for k in tops:
                r, raw = self.multi(c, f"TOP {i} {k}", raw=True)
                ok = top_candidates(m, k)
                if raw not in ok:
                    self.assertBytesEqual(raw, ok[0], f"TOP {i} {k}")
        self.err(c, f"RETR {len(served) + 1}")
        self.quit(c)
        self.assertEqual(self.env.read_spool(acct), spool.data,
                         "a session without DELE changed the spool")
        return acct

    def test_simple(self):
        self.sweep(fixtures.simple(3))

    def test_dot_lines(self):
        self.sweep(fixtures.dots())

    def test_from_quoting_passed_through(self):
        self.sweep(fixtures.from_quoting())

    def test_8bit_and_nul(self):
        self.sweep(fixtures.eight_bit())

    def test_100k_line(self):
        self.sweep(fixtures.long_line(), tops=(0, 1, 2, 5))

    def test_big_message_chunk_boundaries(self):
        self.sweep(fixtures.big_dotty(), tops=(0, 1000, 5000))

    def test_chunk_boundaries_message_relative(self):
        self.sweep(fixtures.chunk_boundaries(), tops=(0, 60, 1000000))

    def test_chunk_boundaries_file_relative_crlf(self):
        self.sweep(fixtures.file_boundaries_crlf(), tops=(0, 1000000))

    def test_chunk_boundaries_file_relative_dot(self):
        self.sweep(fixtures.file_boundaries_dot(), tops=(0, 1000000))

    def test_carriage_returns(self):
        self.sweep(fixtures.cr_edges())

    def test_crlf_spool(self):
        self.sweep(fixtures.crlf_spool())

    def test_mixed_line_ends(self):
        self.sweep(fixtures.mixed_endings())

    def test_unterminated_last_line(self):
        spool = fixtures.unterminated_last()
        # the model: 2 octets added for the missing CRLF
        last = spool.served[-1]
        self.assertFalse(last.endswith(b"\n"))
        self.sweep(spool)

    def test_body_ending_in_blank_lines(self):
        self.sweep(fixtures.trailing_blank_lines())

    def test_no_blank_line_at_end_of_file(self):
        self.sweep(fixtures.no_trailing_separator())

    def test_headers_only_message(self):
        self.sweep(fixtures.headers_only())

    def test_empty_message(self):
        self.sweep(fixtures.empty_message())

    def test_varied(self):
        self.sweep(fixtures.varied())

    def test_from_after_blank_line_starts_message(self):
        # Written by hand: the body's "From " line after a blank line
        # starts a new message (mboxo/mboxrd rule), one that is not after
        # a blank line does not.
        data = (b"From a@example.org Mon Jan  1 10:00:00 2024\n"
                b"Subject: one\n\nbody\nFrom inside\n\n"
                b"From b@example.org Mon Jan  1 10:00:01 2024\n"
                b"Subject: two\n\nbody two\n")
        acct = self.new_mailbox(data)
        c, _ = self.login(acct)
        one = b"Subject: one\r\n\r\nbody\r\nFrom inside\r\n.\r\n"
        two = b"Subject: two\r\n\r\nbody two\r\n.\r\n"
        self.assertEqual(self.ok(c, "STAT"), f"+OK 2 {len(one) - 3 + len(two) - 3}")
        r, raw = self.multi(c, "RETR 1", raw=True)
        self.assertBytesEqual(raw, one, "RETR 1")
        r, raw = self.multi(c, "RETR 2", raw=True)
        self.assertBytesEqual(raw, two, "RETR 2")

    def test_wrong_content_length_ignored(self):
        """Content-Length is at most a hint: one that does not land on
        the next From line (or EOF) must not change the message bounds."""
        contents = [
            message("short cl", body="body\n\nmore body\n",
                    extra_headers=["Content-Length: 3"]),
            message("long cl", body="b\n", extra_headers=[
                "Content-Length: 100000"]),
            message("garbage cl", body="c\n", extra_headers=[
                "Content-Length: -7x"]),
            message("cl past eof", body="last\n",
                    extra_headers=["Content-Length: 999"]),
        ]
        self.sweep(Spool(contents))

    def test_right_content_length_same_bounds(self):
        body = b"exact body\n"
        self.sweep(Spool([
            message("exact cl", body=body,
                    extra_headers=[f"Content-Length: {len(body)}"]),
            message("next", body="n\n")]))

    def test_content_length_that_lands_is_used(self):
        """A Content-Length that ends the body exactly before the
        separator and the next From line (or at the end of the file) is
        used: a blank line + "From " inside that body is content
        (DESIGN.md, mbox dialects; mboxpop3d(8), MAILBOX FORMAT)."""
        body = b"line\n\nFrom inner sender Mon Jan  1 10:00:00 2024\nmore\n"
        first = (b"Subject: counted\nContent-Length: %d\n\n" % len(body)
                 + body)
        second = message("after counted", body="x\n")
        self.sweep(Spool([first, second]))          # blank line, From
        self.sweep(Spool([first]))                  # EOF after a blank line
        self.sweep(Spool([first], trailing=False))  # EOF right after body

    def test_many_messages(self):
        spool = fixtures.many(500, body_lines=2)
        acct = self.new_mailbox(spool)
        c, _ = self.login(acct)
        sizes = [wire_size(m) for m in spool.served]
        self.assertEqual(self.ok(c, "STAT"), f"+OK 500 {sum(sizes)}")
        r, lines = self.multi(c, "LIST")
        self.assertEqual(lines, [f"{i} {s}".encode()
                                 for i, s in enumerate(sizes, 1)])
        for i in (1, 250, 500):
            r, raw = self.multi(c, f"RETR {i}", raw=True)
            self.assertBytesEqual(raw, retr_bytes(spool.served[i - 1]),
                                  f"RETR {i}")


class ChangedUnderneath(POP3TestCase):
    """Someone else rewrote the spool during the session: the daemon must
    never serve bytes of a different message (design: it ends the
    session, deleting nothing)."""

    def check(self, new_data):
        spool = fixtures.simple(3)
        acct = self.new_mailbox(spool)
        c, _ = self.login(acct)
        self.ok(c, "DELE 3")
        path = self.env.spool_path(acct)
        with open(path, "r+b") as f:
            f.write(new_data)
            f.truncate()
        for i in (1, 2):
            try:
                r = c.cmd(f"RETR {i}")
            except (ConnectionError, ConnectionClosed):
                break                  # the session was ended: fine
            if r.startswith("+OK"):
                raw = c.read_multi_raw()
                self.assertBytesEqual(raw, retr_bytes(spool.served[i - 1]),
                                      f"RETR {i} after the spool changed")
            else:
                self.assertTrue(r.startswith("-ERR"), r)
        try:
            c.cmd("QUIT")
        except (ConnectionError, ConnectionClosed):
            pass
        self.assertBytesEqual(self.env.read_spool(acct), new_data,
                              "spool after the session")

    def test_rewritten_same_length(self):
        spool = fixtures.simple(3)
        self.check(spool.data.replace(b"body of message 1",
                                      b"BODY OF MESSAGE 1"))

    def test_truncated(self):
        spool = fixtures.simple(3)
        self.check(spool.data[:spool.spans[0][1] + 20])

    def test_replaced_by_other_mail(self):
        self.check(fixtures.many(3).data)


class Spools(POP3TestCase):
    """Missing, empty and unusable spool files."""

    def test_missing_spool_is_empty_mailbox(self):
        acct = self.new_mailbox(None)
        path = self.env.spool_path(acct)
        self.assertFalse(path.exists())
        c, r = self.login(acct)
        self.assertIn("0 messages", r)
        self.assertEqual(self.ok(c, "STAT"), "+OK 0 0")
        r, lines = self.multi(c, "LIST")
        self.assertEqual(lines, [])
        r, lines = self.multi(c, "UIDL")
        self.assertEqual(lines, [])
        self.err(c, "RETR 1")
        self.err(c, "DELE 1")
        self.err(c, "LIST 1")
        self.quit(c)
        self.assertFalse(path.exists(), "QUIT created a spool file")

    def test_empty_spool_file(self):
        acct = self.new_mailbox(b"")
        c, r = self.login(acct)
        self.assertEqual(self.ok(c, "STAT"), "+OK 0 0")
        self.quit(c)
        self.assertEqual(self.env.read_spool(acct), b"")

    def test_not_mbox_refused(self):
        data = b"This is not an mbox file\n\nFrom x Mon Jan  1 10:00:00 2024\n"
        acct = self.new_mailbox(data)
        c = self.connect()
        self.ok(c, f"USER {acct.name}")
        r = c.cmd(f"PASS {acct.password}")
        self.assertTrue(r.startswith("-ERR [SYS/PERM]"), self.explain(
            c, "PASS (spool not in mbox format)", r, "-ERR [SYS/PERM] ..."))
        self.assertEqual(self.env.read_spool(acct), data)

    def test_symlink_spool_refused(self):
        spool = fixtures.simple(2)
        acct = self.env.fresh()
        target = self.env.dir / f"{acct.name}.real"
        target.write_bytes(spool.data)
        if IS_ROOT:
            os.chown(target, acct.uid, acct.gid)
        os.chmod(target, 0o600)
        os.symlink(target, self.env.spool_path(acct))
        c = self.connect()
        self.ok(c, f"USER {acct.name}")
        r = c.cmd(f"PASS {acct.password}")
        if r.startswith("+OK"):
            # refusing later is also acceptable, but no mail may be served
            r2 = c.cmd("RETR 1")
            self.assertFalse(r2.startswith("+OK"), self.explain(
                c, "RETR 1 (spool is a symlink)", r2, "-ERR"))
        else:
            self.assertTrue(r.startswith("-ERR [SYS/PERM]"), self.explain(
                c, "PASS (spool is a symlink)", r, "-ERR [SYS/PERM] ..."))
        self.assertEqual(target.read_bytes(), spool.data)

    def test_directory_spool_refused(self):
        acct = self.env.fresh()
        os.mkdir(self.env.spool_path(acct))
        c = self.connect()
        self.ok(c, f"USER {acct.name}")
        r = c.cmd(f"PASS {acct.password}")
        self.assertTrue(r.startswith("-ERR [SYS/PERM]"), self.explain(
            c, "PASS (spool is a directory)", r, "-ERR [SYS/PERM] ..."))

    def test_spool_of_other_owner_refused(self):
        self.require_root()
        spool = fixtures.simple(1)
        acct = self.new_mailbox(spool)
        other = self.env.fresh()
        os.chown(self.env.spool_path(acct), other.uid, other.gid)
        os.chmod(self.env.spool_path(acct), 0o666)   # readable: owner check
        c = self.connect()
        self.ok(c, f"USER {acct.name}")
        r = c.cmd(f"PASS {acct.password}")
        self.assertTrue(r.startswith("-ERR [SYS/PERM]"), self.explain(
            c, "PASS (spool owned by another uid)", r, "-ERR [SYS/PERM] ..."))
        self.assertEqual(self.env.read_spool(acct), spool.data)


class Pseudo(POP3TestCase):
    """UW-IMAP's FOLDER INTERNAL DATA message: hidden, kept on rewrite."""

    def check_hidden(self, header):
        spool = fixtures.pseudo(header, 3)
        acct = self.new_mailbox(spool)
        c, r = self.login(acct)
        self.assertIn("3 messages", r)
        sizes = [wire_size(m) for m in spool.served]
        self.assertEqual(self.ok(c, "STAT"), f"+OK 3 {sum(sizes)}")
        for i, m in enumerate(spool.served, 1):
            r, raw = self.multi(c, f"RETR {i}", raw=True)
            self.assertBytesEqual(raw, retr_bytes(m), f"RETR {i}")
        self.err(c, "RETR 4")
        self.ok(c, "DELE 1")
        self.ok(c, "DELE 3")
        self.quit(c)
        got = self.env.read_spool(acct)
        self.assertBytesEqual(got, spool.without([1, 3]), "spool after UPDATE")
        self.assertTrue(got.startswith(spool.data[:spool.spans[0][1]]),
                        "pseudo message not kept at the top")

    def test_ximap_hidden_and_kept(self):
        self.check_hidden(b"X-IMAP")

    def test_ximapbase_hidden_and_kept(self):
        self.check_hidden(b"X-IMAPbase")

    def test_delete_all_keeps_pseudo(self):
        spool = fixtures.pseudo(b"X-IMAP", 2)
        acct = self.new_mailbox(spool)
        c, _ = self.login(acct)
        self.ok(c, "DELE 1")
        self.ok(c, "DELE 2")
        self.quit(c)
        self.assertBytesEqual(self.env.read_spool(acct), spool.without([1, 2]),
                              "spool after deleting all")
        c, r = self.login(acct)
        self.assertEqual(self.ok(c, "STAT"), "+OK 0 0")

    def test_only_pseudo(self):
        spool = Spool([fixtures.PSEUDO % b"X-IMAP"], hidden=1)
        acct = self.new_mailbox(spool)
        c, _ = self.login(acct)
        self.assertEqual(self.ok(c, "STAT"), "+OK 0 0")
        self.err(c, "RETR 1")

    def test_lookalikes_are_served(self):
        spool = fixtures.pseudo_lookalikes()
        self.assertEqual(spool.hidden, 0)
        acct = self.new_mailbox(spool)
        c, _ = self.login(acct)
        sizes = [wire_size(m) for m in spool.served]
        self.assertEqual(self.ok(c, "STAT"), f"+OK 3 {sum(sizes)}")
        for i, m in enumerate(spool.served, 1):
            r, raw = self.multi(c, f"RETR {i}", raw=True)
            self.assertBytesEqual(raw, retr_bytes(m), f"RETR {i}")


if __name__ == "__main__":
    unittest.main()
