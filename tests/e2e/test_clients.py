"""Real POP3 clients against the daemon: Python's poplib, curl, fetchmail.
A client that is not installed is skipped (with the reason)."""

import os
import poplib
import shutil
import subprocess
import sys
import unittest
from pathlib import Path

from harness import (POP3TestCase, Spool, HOST, message, from_line,
                     top_lines, wire_lines, wire_size)

HERE = Path(__file__).resolve().parent


def client_spool():
    """Messages that exercise a client's own CRLF and dot handling."""
    return Spool([
        message("client plain", body="hello\n"),
        message("client dots", body=".\n..\n.x\nend.\n"),
        message("client from", body=">From quoted\ntext\nFrom not after blank\n"),
        message("client 8bit", body=b"caf\xc3\xa9 \xe9\xff\n"),
        message("client crlf", body=b"a\r\n.b\r\n", eol=b"\r\n"),
        message("client last", body="no final newline"),
    ])


def crlf_text(content):
    """The message as a client stores it with CRLF line ends."""
    return b"".join(l + b"\r\n" for l in wire_lines(content))


def lf_text(content):
    """The message as a client hands it to an MDA with LF line ends."""
    return b"".join(l + b"\n" for l in wire_lines(content))


class Poplib(POP3TestCase):

    def connect_poplib(self, acct):
        p = poplib.POP3(HOST, self.port, timeout=10)
        self.addCleanup(p.close)
        self.assertEqual(p.getwelcome().decode(), "+OK mboxpop3d ready")
        p.user(acct.name)
        p.pass_(acct.password)
        return p

    def test_fetch_and_delete(self):
        spool = client_spool()
        acct = self.new_mailbox(spool)
        p = self.connect_poplib(acct)
        sizes = [wire_size(m) for m in spool.served]
        self.assertEqual(p.stat(), (len(sizes), sum(sizes)))
        resp, listing, _ = p.list()
        self.assertEqual(listing, [f"{i} {s}".encode()
                                   for i, s in enumerate(sizes, 1)])
        for i, m in enumerate(spool.served, 1):
            resp, lines, octets = p.retr(i)
            self.assertEqual(lines, wire_lines(m), f"poplib retr({i})")
        resp, lines, _ = p.top(2, 0)
        self.assertEqual(lines, top_lines(spool.served[1], 0))
        resp, uids, _ = p.uidl()
        self.assertEqual(len(uids), len(sizes))
        self.assertIn("UIDL", p.capa())
        p.noop()
        p.dele(1)
        p.dele(2)
        p.rset()
        p.dele(3)
        self.assertTrue(p.quit().startswith(b"+OK"))
        self.assertEqual(self.env.read_spool(acct), spool.without([3]))

    def test_errors_raise(self):
        acct = self.new_mailbox(client_spool())
        p = self.connect_poplib(acct)
        with self.assertRaises(poplib.error_proto):
            p.retr(99)
        with self.assertRaises(poplib.error_proto):
            p.dele(0)
        self.assertEqual(p.stat()[0], 6)
        p.quit()

    def test_bad_password(self):
        acct = self.new_mailbox(client_spool())
        p = poplib.POP3(HOST, self.port, timeout=10)
        self.addCleanup(p.close)
        p.user(acct.name)
        with self.assertRaises(poplib.error_proto) as cm:
            p.pass_("wrong")
        self.assertTrue(str(cm.exception).startswith("b'-ERR [AUTH]"),
                        cm.exception)


class Curl(POP3TestCase):

    def setUp(self):
        super().setUp()
        self.curl = shutil.which("curl")
        if not self.curl:
            self.skipTest("curl not installed")

    def run_curl(self, acct, path="/", *extra):
        cmd = [self.curl, "-s", "-S", "--max-time", "15",
               "-u", f"{acct.name}:{acct.password}"] + list(extra) + \
              [f"pop3://{HOST}:{self.port}{path}"]
        r = subprocess.run(cmd, capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0,
                         f"{' '.join(cmd)}\nexit {r.returncode}: {r.stderr!r}")
        return r.stdout

    def test_list(self):
        spool = client_spool()
        acct = self.new_mailbox(spool)
        out = self.run_curl(acct, "/")
        self.assertEqual(out, b"".join(f"{i} {wire_size(m)}\r\n".encode()
                                       for i, m in enumerate(spool.served, 1)))

    def test_retrieve_each(self):
        spool = client_spool()
        acct = self.new_mailbox(spool)
        for i, m in enumerate(spool.served, 1):
            out = self.run_curl(acct, f"/{i}")
            self.assertEqual(out, crlf_text(m), f"curl pop3://.../{i}")
        self.assertEqual(self.env.read_spool(acct), spool.data)

    def test_uidl_and_top(self):
        spool = client_spool()
        acct = self.new_mailbox(spool)
        out = self.run_curl(acct, "/", "-X", "UIDL")
        self.assertEqual(len(out.splitlines()), len(spool.served), out)
        out = self.run_curl(acct, "/", "-X", "TOP 3 0")
        self.assertEqual(out, crlf_text(spool.served[2]).split(b"\r\n\r\n")[0]
                         + b"\r\n\r\n")

    def test_delete(self):
        spool = client_spool()
        acct = self.new_mailbox(spool)
        self.run_curl(acct, "/2", "-X", "DELE", "-I")
        self.assertEqual(self.env.read_spool(acct), spool.without([2]))

    def test_wrong_password_fails(self):
        acct = self.new_mailbox(client_spool())
        r = subprocess.run([self.curl, "-s", "--max-time", "15", "-u",
                            f"{acct.name}:wrong",
                            f"pop3://{HOST}:{self.port}/"],
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 67, r)   # CURLE_LOGIN_DENIED


class Fetchmail(POP3TestCase):

    def setUp(self):
        super().setUp()
        self.fetchmail = shutil.which("fetchmail")
        if not self.fetchmail:
            self.skipTest("fetchmail not installed")

    def run_fetchmail(self, acct, options, expect_rc=0, server_opts=""):
        base = self.env.dir / f"fm-{acct.name}"
        home = base / "home"
        out = base / "out"
        for d in (base, home, out):
            d.mkdir(exist_ok=True, mode=0o700)
        rc = home / "fetchmailrc"
        rc.write_text(
            "set no syslog\n"
            "set invisible\n"
            f"poll {HOST} port {self.port} protocol pop3 auth password "
            f"timeout 15 {server_opts}\n"
            f'  user "{acct.name}" password "{acct.password}"\n'
            f"  options {options} no rewrite sslproto ''\n"
            f'  mda "{sys.executable} {HERE / "mda_store.py"} {out}"\n')
        os.chmod(rc, 0o600)
        env = {k: v for k, v in os.environ.items()
               if k not in ("FETCHMAILUSER", "LOGNAME", "USER")}
        env.update(HOME=str(home), FETCHMAILHOME=str(home), LC_ALL="C")
        cmd = [self.fetchmail, "-f", str(rc), "--nosyslog", "--nodetach",
               "--pidfile", str(home / "pid"), "-v"]
        try:
            r = subprocess.run(cmd, capture_output=True, timeout=60, env=env)
        except subprocess.TimeoutExpired:
            self.fail("fetchmail did not finish within 60 s")
        log = (r.stdout + r.stderr).decode(errors="replace")
        self.assertEqual(r.returncode, expect_rc,
                         f"fetchmail exit {r.returncode}:\n{log[-3000:]}")
        msgs = sorted(out.iterdir())
        got = [p.read_bytes() for p in msgs]
        for p in msgs:
            p.unlink()
        return got, log

    def check_delivered(self, got, contents, log):
        self.assertEqual(len(got), len(contents), log[-3000:])
        for i, (g, m) in enumerate(zip(got, contents), 1):
            g = g.replace(b"\r\n", b"\n")
            self.assertEqual(g, lf_text(m), f"message {i} as delivered")

    def test_keep(self):
        spool = client_spool()
        acct = self.new_mailbox(spool)
        got, log = self.run_fetchmail(acct, "keep fetchall")
        self.check_delivered(got, spool.served, log)
        self.assertEqual(self.env.read_spool(acct), spool.data)

    def test_no_keep(self):
        spool = client_spool()
        acct = self.new_mailbox(spool)
        got, log = self.run_fetchmail(acct, "no keep fetchall")
        self.check_delivered(got, spool.served, log)
        self.assertEqual(self.env.read_spool(acct),
                         spool.without(range(1, len(spool.served) + 1)))
        got, log = self.run_fetchmail(acct, "no keep fetchall", expect_rc=1)
        self.assertEqual(got, [])

    def test_keep_uidl_fetches_only_new(self):
        """Leave-on-server with UIDLs: the second poll fetches nothing,
        after new mail arrives only the new message is fetched."""
        spool = Spool(client_spool().contents[:-1])   # ends in a blank line
        acct = self.new_mailbox(spool)
        got, log = self.run_fetchmail(acct, "keep", server_opts="uidl")
        self.check_delivered(got, spool.served, log)
        got, log = self.run_fetchmail(acct, "keep", expect_rc=1,
                                      server_opts="uidl")
        self.assertEqual(got, [], "second poll fetched old mail again")
        new = message("client new", body="new one\n")
        self.env.append_spool(acct, from_line(
            date="Sun Jan  7 10:00:00 2024") + new + b"\n")
        got, log = self.run_fetchmail(acct, "keep", server_opts="uidl")
        self.check_delivered(got, [new], log)


if __name__ == "__main__":
    unittest.main()
