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
