"""USER/PASS against the passwd_file: good and bad passwords, retry,
refused accounts (locked, root), hash methods, passwords with spaces."""

import re
import unittest

import fixtures
from harness import POP3TestCase, wire_size


class Auth(POP3TestCase):

    def named(self, name, spool=None):
        acct = self.env.account(name)
        if acct.hash_field is None:
            self.skipTest(f"this libcrypt cannot make the hash for {name}")
        if spool is not None:
            self.env.write_spool(acct, spool)
        return acct

    def refused(self, name, password, c=None):
        """USER name / PASS password must give -ERR [AUTH]; returns reply."""
        c = c or self.connect()
        self.ok(c, f"USER {name}")
        return self.err(c, f"PASS {password}", "AUTH")

    def test_good_login(self):
        spool = fixtures.simple(2)
        acct = self.new_mailbox(spool)
        c, r = self.login(acct)
        m = re.search(r"(\d+) messages? \((\d+) octets\)", r)
        self.assertTrue(m, f"PASS reply {r!r}")
        self.assertEqual(int(m.group(1)), 2)
        self.assertEqual(int(m.group(2)), sum(map(wire_size, spool.served)))

    def test_wrong_password_then_retry(self):
        acct = self.new_mailbox(fixtures.simple(1))
        c = self.connect()
        self.refused(acct.name, acct.password + "x", c)
        # the session goes on in AUTHORIZATION state
        self.err(c, "STAT")
        self.login(acct, client=c)
        self.ok(c, "STAT")

    def test_unknown_user_then_retry(self):
        acct = self.new_mailbox(fixtures.simple(1))
        c = self.connect()
        self.refused("nosuchuser", "whatever", c)
        self.login(acct, client=c)

    def test_user_names_are_case_sensitive(self):
        acct = self.new_mailbox(fixtures.simple(1))
        self.refused(acct.name.upper(), acct.password)

    def test_path_like_user_names_refused(self):
        acct = self.new_mailbox(fixtures.simple(1))
        # (one try only: failed logins may cost a delay)
        self.refused(f"../spool/{acct.name}", acct.password)

    def test_long_user_and_password(self):
        acct = self.new_mailbox(fixtures.simple(1))
        c = self.connect()
        self.refused("u" * 240, "p" * 10, c)
        self.refused(acct.name, "p" * 240, c)
        self.login(acct, client=c)

    def test_nul_in_password(self):
        acct = self.new_mailbox(fixtures.simple(1))
        c = self.connect()
        self.ok(c, f"USER {acct.name}")
        self.err(c, f"PASS {acct.password}\x00tail")
        self.login(acct, client=c)

    def test_password_is_rest_of_line(self):
        acct = self.named("spacey", fixtures.simple(1))
        self.assertIn(" ", acct.password)
        c, _ = self.login(acct)
        self.ok(c, "STAT")

    def test_password_prefix_with_spaces_refused(self):
        acct = self.named("spacey", None)
        self.refused(acct.name, acct.password.split(" ")[0])

    def test_password_trailing_space_is_part_of_it(self):
        acct = self.new_mailbox(fixtures.simple(1))
        self.refused(acct.name, acct.password + " ")

    def test_locked_account_refused(self):
        acct = self.named("locked", fixtures.simple(1))
        self.assertTrue(acct.hash_field.startswith("!"))
        self.refused(acct.name, acct.password)

    def test_star_account_refused(self):
        acct = self.named("star", fixtures.simple(1))
        self.refused(acct.name, acct.password)
        self.refused(acct.name, "*")

    def test_empty_hash_refused(self):
        acct = self.named("nopw", fixtures.simple(1))
        self.refused(acct.name, "x")

    def test_root_refused(self):
        acct = self.named("root", fixtures.simple(1))
        self.refused("root", acct.password)

    def test_uid0_other_name_refused(self):
        acct = self.named("toor", fixtures.simple(1))
        self.assertEqual(acct.uid, 0)
        self.refused("toor", acct.password)

    def test_refusals_look_alike(self):
        """Unknown user, wrong password, locked and root accounts get the
        same reply text (no account enumeration)."""
        good = self.new_mailbox(fixtures.simple(1))
        cases = [("nosuchuser", "pw"), (good.name, "wrong"),
                 ("locked", self.env.account("locked").password),
                 ("root", self.env.account("root").password)]
        replies = {}
        c = self.connect()
        for name, pw in cases:
            self.ok(c, f"USER {name}")
            replies[name] = c.cmd(f"PASS {pw}")
        self.assertEqual(len(set(replies.values())), 1,
                         f"refusal texts differ: {replies}")
        self.assertTrue(next(iter(replies.values())).startswith("-ERR [AUTH]"),
                        replies)

    def check_method(self, name, prefix):
        acct = self.named(name, fixtures.simple(1))
        self.assertTrue(acct.hash_field.startswith(prefix), acct.hash_field)
        c, _ = self.login(acct)
        self.ok(c, "STAT")
        self.quit(c)
        self.refused(acct.name, acct.password[:-1])

    def test_hash_sha512crypt(self):
        self.check_method("hsha512", "$6$")

    def test_hash_yescrypt(self):
        self.check_method("hyescrypt", "$y$")

    def test_hash_bcrypt(self):
        self.check_method("hbcrypt", "$2b$")

    def test_hash_md5crypt(self):
        self.check_method("hmd5", "$1$")


if __name__ == "__main__":
    unittest.main()
