"""UIDL (RFC 1939 section 7): format, uniqueness, stability."""

import re
import unittest

import fixtures
from harness import POP3TestCase, Spool, message, from_line


class Uidl(POP3TestCase):

    def uidls(self, c):
        """{msgnum: uid} from the multi-line UIDL, checking each line."""
        r, lines = self.multi(c, "UIDL")
        out = {}
        for l in lines:
            m = re.fullmatch(rb"(\d+) (\S+)", l)
            self.assertTrue(m, f"UIDL line {l!r}")
            out[int(m.group(1))] = m.group(2).decode("latin-1")
        return out

    def session_uidls(self, acct):
        c, _ = self.login(acct)
        u = self.uidls(c)
        self.quit(c)
        return u

    def assertWellFormed(self, uid):
        # RFC 1939: 1 to 70 characters in the range 0x21 to 0x7E
        self.assertTrue(1 <= len(uid) <= 70, uid)
        self.assertTrue(all(0x21 <= ord(ch) <= 0x7E for ch in uid), repr(uid))
        # mboxpop3d prints hex digests (not small integers)
        self.assertRegex(uid, r"^[0-9a-f]{8,}", "UIDL is not a hex digest")

    def test_format_and_uniqueness(self):
        spool = fixtures.varied()
        acct = self.new_mailbox(spool)
        c, _ = self.login(acct)
        u = self.uidls(c)
        self.assertEqual(sorted(u), list(range(1, len(spool.served) + 1)))
        for uid in u.values():
            self.assertWellFormed(uid)
        self.assertEqual(len(set(u.values())), len(u), f"duplicates: {u}")
        for n, uid in u.items():
            self.assertEqual(self.ok(c, f"UIDL {n}"), f"+OK {n} {uid}")

    def test_identical_messages_get_different_ids(self):
        spool = fixtures.identical_twins()
        acct = self.new_mailbox(spool)
        u = self.session_uidls(acct)
        self.assertEqual(len(u), 4)
        self.assertEqual(len(set(u.values())), 4, f"duplicates: {u}")
        for uid in u.values():
            self.assertWellFormed(uid)

    def test_same_headers_different_bodies(self):
        a = message("same", body="body A\n")
        b = message("same", body="body B\n")
        acct = self.new_mailbox(Spool([a, b]))
        u = self.session_uidls(acct)
        self.assertNotEqual(u[1], u[2])

    def test_stable_across_sessions(self):
        acct = self.new_mailbox(fixtures.varied())
        self.assertEqual(self.session_uidls(acct), self.session_uidls(acct))

    def test_not_changed_by_dele_in_session(self):
        acct = self.new_mailbox(fixtures.simple(3))
        c, _ = self.login(acct)
        before = self.uidls(c)
        self.ok(c, "DELE 1")
        self.assertEqual(self.ok(c, "UIDL 3"), f"+OK 3 {before[3]}")
        after = self.uidls(c)
        self.assertEqual(after, {2: before[2], 3: before[3]})

    def test_stable_after_deleting_earlier_message(self):
        spool = fixtures.simple(4)
        acct = self.new_mailbox(spool)
        before = self.session_uidls(acct)
        c, _ = self.login(acct)
        self.ok(c, "DELE 1")
        self.ok(c, "DELE 3")
        self.quit(c)
        after = self.session_uidls(acct)
        self.assertEqual(after, {1: before[2], 2: before[4]})

    def test_stable_after_mail_appended(self):
        spool = fixtures.simple(2)
        acct = self.new_mailbox(spool)
        before = self.session_uidls(acct)
        self.env.append_spool(acct, from_line(date="Fri Jan  5 10:00:00 2024")
                              + message("appended") + b"\n")
        after = self.session_uidls(acct)
        self.assertEqual(len(after), 3)
        self.assertEqual({1: after[1], 2: after[2]}, before)
        self.assertNotIn(after[3], before.values())

    def test_duplicate_twin_deleted_downloads_nothing_again(self):
        """A message delivered twice has one header digest; the copies are
        told apart by order (uidl.h: the second gets ".2").  A unique-id
        that is a pure function of the message cannot tell byte-identical
        copies apart, so when the first copy is deleted the second takes
        the plain id - one the client already has, for the same content,
        so nothing is downloaded again - and no other id changes."""
        twin = message("delivered twice", body="same\n")
        spool = Spool([twin, twin, message("other")],
                      froms=[from_line(date="Mon Jan  1 10:00:00 2024"),
                             from_line(date="Mon Jan  1 10:05:00 2024"),
                             from_line(date="Mon Jan  1 10:10:00 2024")])
        acct = self.new_mailbox(spool)
        before = self.session_uidls(acct)
        self.assertNotEqual(before[1], before[2])
        c, _ = self.login(acct)
        self.ok(c, "DELE 1")
        self.quit(c)
        after = self.session_uidls(acct)
        self.assertEqual(before[2], before[1] + ".2")
        self.assertEqual(after, {1: before[1], 2: before[3]},
                         f"ids before deleting message 1: {before}")


class XUidl(POP3TestCase):
    """uidl_source = x-uidl: existing X-UIDL: headers (qpopper, Mailutils)
    are the unique-ids, so switching servers re-downloads nothing."""

    daemon_settings = {"uidl_source": "x-uidl"}

    def session_uidls(self, spool):
        acct = self.new_mailbox(spool)
        c, _ = self.login(acct)
        r, lines = self.multi(c, "UIDL")
        self.quit(c)
        return {int(l.split()[0]): l.split()[1].decode() for l in lines}

    def test_x_uidl_values_used(self):
        u = self.session_uidls(Spool([
            message("with", extra_headers=["X-UIDL: qpop-1a2b3c"]),
            message("without"),
            message("invalid", extra_headers=["X-UIDL: has space"]),
            message("too long", extra_headers=["X-UIDL: " + "x" * 80]),
        ]))
        self.assertEqual(u[1], "qpop-1a2b3c")
        for n in (2, 3, 4):
            self.assertRegex(u[n], r"^[0-9a-f]{16}$", f"message {n}: {u}")
        self.assertEqual(len(set(u.values())), 4, u)

    def test_x_uidl_ids_unique(self):
        """Duplicate X-UIDL values, and values that look like the ids the
        daemon makes for duplicates, still give unique ids."""
        u = self.session_uidls(Spool([
            message("a1", extra_headers=["X-UIDL: abc"]),
            message("a2", extra_headers=["X-UIDL: abc"]),
            message("a3", extra_headers=["X-UIDL: abc.2"]),
            message("a4", extra_headers=["X-UIDL: abc"]),
            message("a5", extra_headers=["X-UIDL: abc.3"]),
        ]))
        self.assertEqual(len(set(u.values())), len(u), f"duplicate ids: {u}")

    def test_x_uidl_not_equal_to_other_messages_digest(self):
        """A message whose X-UIDL equals another message's digest id must
        not make the two ids equal."""
        plain = message("digest me")
        other = self.session_uidls(Spool([plain]))[1]
        u = self.session_uidls(Spool([
            plain, message("copycat", extra_headers=[f"X-UIDL: {other}"])]))
        self.assertNotEqual(u[1], u[2], f"ids collide: {u}")


if __name__ == "__main__":
    unittest.main()
