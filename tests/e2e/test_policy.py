"""Account policy and brute-force defence (mboxpop3d.conf(5)): min_uid,
deny_users, require_valid_shell, auth_fail_delay, max_auth_failures and
the per-address failure count.  Every refusal must read exactly like a
wrong password, and the log must say the real reason."""

import os
import time

import fixtures
from harness import Daemon, POP3TestCase


class Policy(POP3TestCase):

    def daemon_with(self, name, settings, passwd_lines=None):
        if passwd_lines is not None:
            path = self.env.dir / f"passwd-{name}"
            path.write_text("".join(passwd_lines))
            settings = dict(settings, passwd_file=str(path))
        d = Daemon(self.env, name, settings).start()
        self.addCleanup(d.stop)
        return d

    def passwd_line(self, acct, shell="/bin/sh", uid=None):
        return (f"{acct.name}:{acct.hash_field}:{acct.uid if uid is None else uid}:"
                f"{acct.gid}:{acct.name}:{self.env.dir}:{shell}\n")

    def refused_like_wrong_password(self, d, acct, reason):
        c = self.connect(port=d.port)
        self.ok(c, f"USER {acct.name}")
        r = self.err(c, f"PASS {acct.password}", "AUTH")
        self.assertEqual(r, "-ERR [AUTH] invalid user name or password")
        deadline = time.monotonic() + 5
        while reason not in d.log_tail(200) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn(reason, d.log_tail(200), "the log must say why")

    def test_min_uid(self):
        acct = self.new_mailbox(fixtures.simple(1))
        d = self.daemon_with("min-uid", {"min_uid": str(acct.uid + 1)})
        self.refused_like_wrong_password(d, acct, "below min_uid")

    def test_deny_users(self):
        acct = self.new_mailbox(fixtures.simple(1))
        d = self.daemon_with("deny", {"deny_users": f"nobody, {acct.name} other"})
        self.refused_like_wrong_password(d, acct, "listed in deny_users")

    def test_require_valid_shell(self):
        acct = self.new_mailbox(fixtures.simple(1))
        d = self.daemon_with("shell", {"require_valid_shell": "yes"},
                             [self.passwd_line(acct, shell="/usr/sbin/nologin-not-listed")])
        self.refused_like_wrong_password(d, acct, "not listed in /etc/shells")
        shells = open("/etc/shells").read().split()
        if "/bin/sh" in shells:
            d2 = self.daemon_with("shell-ok", {"require_valid_shell": "yes"},
                                  [self.passwd_line(acct, shell="/bin/sh")])
            c, r = self.login(acct, port=d2.port)
            self.quit(c)

    def test_fail_delay(self):
        acct = self.new_mailbox(fixtures.simple(1))
        d = self.daemon_with("delay", {"auth_fail_delay": "1"})
        c = self.connect(port=d.port)
        self.ok(c, f"USER {acct.name}")
        t0 = time.monotonic()
        self.err(c, f"PASS {acct.password}x", "AUTH")
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)
        # unknown users wait just as long
        self.ok(c, "USER nosuchuser")
        t0 = time.monotonic()
        self.err(c, "PASS whatever", "AUTH")
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)

    def test_max_auth_failures_disconnects(self):
        acct = self.new_mailbox(fixtures.simple(1))
        d = self.daemon_with("maxfail", {"max_auth_failures": "2"})
        c = self.connect(port=d.port)
        self.ok(c, f"USER {acct.name}")
        self.err(c, "PASS wrong1", "AUTH")
        self.ok(c, f"USER {acct.name}")
        r = self.err(c, "PASS wrong2", "AUTH")
        self.assertIn("too many failures", r)
        self.assertEqual(c.read_until_eof(5), [])

    def test_address_blocked_after_failures(self):
        acct = self.new_mailbox(fixtures.simple(1))
        d = self.daemon_with("ipblock", {"ip_auth_failures": "3", "ip_auth_window": "60",
                                         "ip_auth_block": "3"})
        for i in range(3):
            c = self.connect(port=d.port)
            self.ok(c, f"USER {acct.name}")
            self.err(c, f"PASS wrong{i}", "AUTH")
            self.quit(c)
        c = self.connect(port=d.port, check_greeting=False)
        line = c.greeting      # the refusal comes instead of the greeting
        self.assertTrue(line.startswith("-ERR [SYS/TEMP] too many failed logins"), line)
        self.assertIn("blocking 127.0.0.1", d.log_tail(200))
        # the block ends after ip_auth_block seconds
        deadline = time.monotonic() + 8
        while True:
            c = self.connect(port=d.port, check_greeting=False)
            line = c.greeting
            if line.startswith("+OK") or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.assertTrue(line.startswith("+OK"), line)
        c2, _ = self.login(acct, port=d.port)
        self.quit(c2)

    def test_capa_lists_auth_resp_code(self):
        c = self.connect()
        _, lines = self.multi(c, "CAPA")
        self.assertIn(b"AUTH-RESP-CODE", lines)


if __name__ == "__main__":
    import unittest
    unittest.main()


class Mechanisms(POP3TestCase):
    """AUTH PLAIN (RFC 5034, RFC 4616) and APOP (RFC 1939 section 7)."""

    def apop_daemon(self, acct, mode=0o600):
        secrets = self.env.dir / "apop-secrets"
        secrets.write_text(f"someone:else\n{acct.name}:apop-{acct.password}\n")
        os.chmod(secrets, mode)
        d = Daemon(self.env, f"apop{mode:o}", {"apop_secrets": str(secrets)}).start()
        self.addCleanup(d.stop)
        return d

    def test_auth_plain_initial_response_and_continuation(self):
        import base64
        acct = self.new_mailbox(fixtures.simple(2))
        token = base64.b64encode(f"\0{acct.name}\0{acct.password}".encode()).decode()
        c = self.connect()
        r = self.ok(c, f"AUTH PLAIN {token}")
        self.assertIn("2 messages", r)
        self.quit(c)
        c = self.connect()
        c.send_raw(("AUTH PLAIN" + "\r\n").encode())
        self.assertEqual(c.readline_str(5), "+ ")
        c.send_raw((token + "\r\n").encode())
        self.assertTrue(c.readline_str(5).startswith("+OK"))
        self.quit(c)
        # authzid equal to the authcid is allowed too
        token2 = base64.b64encode(f"{acct.name}\0{acct.name}\0{acct.password}".encode()).decode()
        c = self.connect()
        self.ok(c, f"AUTH PLAIN {token2}")
        self.quit(c)

    def test_auth_plain_refusals(self):
        import base64
        acct = self.new_mailbox(fixtures.simple(1))
        c = self.connect()
        c.send_raw(("AUTH PLAIN" + "\r\n").encode())
        self.assertEqual(c.readline_str(5), "+ ")
        c.send_raw(("*" + "\r\n").encode())
        self.assertTrue(c.readline_str(5).startswith("-ERR"))
        self.err(c, "AUTH PLAIN not*base64")
        self.err(c, "AUTH PLAIN " + base64.b64encode(
            f"other\0{acct.name}\0{acct.password}".encode()).decode(), "AUTH")
        self.err(c, "AUTH PLAIN " + base64.b64encode(
            f"\0{acct.name}\0wrong".encode()).decode(), "AUTH")
        self.err(c, "AUTH PLAIN " + base64.b64encode(b"\0a\0b\0c").decode(), "AUTH")
        self.err(c, "AUTH CRAM-MD5")
        c.send_raw(("AUTH PLAIN" + "\r\n").encode())
        self.assertEqual(c.readline_str(5), "+ ")
        c.send_raw(b"QUFB" * 400 + b"\r\n")              # over the response limit
        self.assertTrue(c.readline_str(5).startswith("-ERR"))
        r = self.ok(c, "CAPA")                          # the session goes on
        self.assertTrue(r.startswith("+OK"))

    def test_capa_lists_sasl_plain(self):
        c = self.connect()
        _, lines = self.multi(c, "CAPA")
        self.assertIn(b"SASL PLAIN", lines)

    def test_apop(self):
        import hashlib
        import re
        acct = self.new_mailbox(fixtures.simple(1))
        d = self.apop_daemon(acct)
        c = self.connect(port=d.port, check_greeting=False)
        m = re.fullmatch(r"\+OK mboxpop3d ready (<\d+\.[\d.]+@[^>]+>)", c.greeting)
        self.assertTrue(m, c.greeting)
        digest = hashlib.md5((m.group(1) + "apop-" + acct.password).encode()).hexdigest()
        r = self.ok(c, f"APOP {acct.name} {digest}")
        self.assertIn("1 message", r)
        self.quit(c)
        # a digest for another greeting's timestamp is refused
        c = self.connect(port=d.port, check_greeting=False)
        self.err(c, f"APOP {acct.name} {digest}", "AUTH")
        # and Python's poplib speaks it
        import poplib
        p = poplib.POP3("127.0.0.1", d.port, timeout=10)
        p.apop(acct.name, "apop-" + acct.password)
        self.assertEqual(p.stat()[0], 1)
        p.quit()

    def test_apop_off_without_secrets_and_with_readable_file(self):
        acct = self.new_mailbox(fixtures.simple(1))
        c = self.connect()
        self.assertEqual(c.greeting, "+OK mboxpop3d ready")    # no timestamp
        self.err(c, f"APOP {acct.name} " + "0" * 32)
        d = self.apop_daemon(acct, mode=0o644)
        c = self.connect(port=d.port, check_greeting=False)
        import hashlib
        import re
        ts = re.search(r"<[^>]+>", c.greeting).group(0)
        digest = hashlib.md5((ts + "apop-" + acct.password).encode()).hexdigest()
        self.err(c, f"APOP {acct.name} {digest}", "SYS/TEMP")
        self.assertIn("refusing to use it", d.log_tail(100))


class HostileInput(POP3TestCase):
    """What attackers send before logging in (mboxpop3d(8), SECURITY)."""

    def test_huge_user_and_password_lines(self):
        c = self.connect()
        c.send_raw(("USER " + "u" * 10000 + "\r\n").encode())
        self.assertEqual(c.readline_str(5), "-ERR line too long")
        c.send_raw(("PASS " + "p" * 100000 + "\r\n").encode())
        self.assertEqual(c.readline_str(5), "-ERR line too long")
        r = self.ok(c, "CAPA")
        self.assertTrue(r.startswith("+OK"))

    def test_format_strings_nul_and_bare_cr(self):
        c = self.connect()
        self.ok(c, "USER %s%n%x%n")
        self.err(c, "PASS %s%s%s%s%n", "AUTH")
        c.send_raw(b"USER a\x00b\r\n")
        self.assertTrue(c.readline_str(5).startswith("-ERR"))
        c.send_raw(b"CAPA\rQUIT\r\n")
        self.assertTrue(c.readline_str(5).startswith("-ERR"))
        self.ok(c, "USER ../../etc/passwd")
        self.err(c, "PASS x", "AUTH")
        self.ok(c, "USER /etc/shadow")
        self.err(c, "PASS x", "AUTH")

    def test_ten_thousand_pipelined_commands(self):
        acct = self.new_mailbox(fixtures.simple(1))
        c, _ = self.login(acct)
        n = 10000
        c.send_raw(b"NOOP\r\n" * n)
        got = 0
        deadline = time.monotonic() + 60
        while got < n and time.monotonic() < deadline:
            self.assertEqual(c.readline_str(10), "+OK")
            got += 1
        self.assertEqual(got, n)
        self.ok(c, "STAT")
        self.quit(c)


class LoginDelay(POP3TestCase):
    """login_delay: RFC 2449 LOGIN-DELAY, per account, kept by the master."""

    daemon_settings = {"login_delay": "2"}

    def test_second_login_too_soon_is_refused(self):
        acct = self.new_mailbox(fixtures.simple(1))
        c = self.connect()
        _, lines = self.multi(c, "CAPA")
        self.assertIn(b"LOGIN-DELAY 2", lines)
        c2, _ = self.login(acct)
        self.quit(c2)
        c3 = self.connect()
        self.ok(c3, f"USER {acct.name}")
        self.err(c3, f"PASS {acct.password}", "LOGIN-DELAY")
        time.sleep(2.1)
        c4, _ = self.login(acct)
        self.quit(c4)
