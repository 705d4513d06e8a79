"""What a system administrator relies on: mboxpop3d -t reports every
problem of a configuration at once, each with its fix, and nothing for a
clean one; the fail2ban filter of etc/fail2ban/ matches the daemon's real
failed-login lines, and nothing a client can forge."""

import base64
import grp
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

import fixtures
from harness import (DAEMON, HOST, IS_ROOT, REPO, Daemon, POP3TestCase,
                     free_port)

FILTER = REPO / "etc" / "fail2ban" / "filter.d" / "mboxpop3d.conf"
JAIL = REPO / "etc" / "fail2ban" / "jail.d" / "mboxpop3d.conf"


def clean_env():
    """The environment without what tells -t it runs under systemd or
    with sockets passed to it (a CI runner may itself be a service)."""
    env = dict(os.environ)
    for k in ("INVOCATION_ID", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        env.pop(k, None)
    return env


class CheckOutput:
    """mboxpop3d -t's output, taken apart and checked for its format:
    "key = value" lines, then "problem: ..." lines, then "# note: ..."
    comments, then "# N problems found"."""

    def __init__(self, proc):
        self.rc = proc.returncode
        self.text = proc.stdout.decode("utf-8", "replace")
        self.stderr = proc.stderr.decode("utf-8", "replace")
        lines = self.text.splitlines()
        self.settings, self.problems, self.notes = {}, [], []
        self.count = None
        stage = 0
        self.format_errors = []
        for line in lines:
            if re.fullmatch(r"[a-z_]+ = .*", line) and stage == 0:
                k, _, v = line.partition(" = ")
                self.settings[k] = v
            elif line.startswith("problem: ") and stage <= 1:
                stage = 1
                self.problems.append(line[len("problem: "):])
            elif line.startswith("# note: ") and stage <= 2:
                stage = 2
                self.notes.append(line[len("# note: "):])
            elif re.fullmatch(r"# \d+ problems? found", line) and stage <= 2:
                stage = 3
                self.count = int(line.split()[1])
            else:
                self.format_errors.append(line)

    def __str__(self):
        return f"exit status {self.rc}\n{self.text}{self.stderr}"


class ConfigCheck(POP3TestCase):
    """mboxpop3d -t on good and bad configurations."""

    def setUp(self):
        super().setUp()
        self.dir = Path(tempfile.mkdtemp(prefix="ops-", dir=self.env.dir))
        os.chmod(self.dir, 0o755)
        self.holders = []

    def tearDown(self):
        for s in self.holders:
            s.close()
        super().tearDown()

    def hold_port(self):
        """A port some other program (this test) listens on."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((HOST, 0))
        s.listen(1)
        self.holders.append(s)
        return s.getsockname()[1]

    def require_root(self):
        if not IS_ROOT:
            self.skipTest("needs root: -t checks the privilege set-up only "
                          "as root")

    def clean_settings(self):
        """A configuration with no problem (the test env's, on a free port)."""
        return dict(self.env.base_settings(free_port()),
                    empty_dir=str(self.dir / "empty"))

    def check(self, settings, wrapper=None):
        path = self.dir / f"check-{len(os.listdir(self.dir))}.conf"
        self.env.write_conf(path, settings)
        argv = [DAEMON, "-t", "-c", str(path)]
        if wrapper:
            argv = wrapper(argv)
        r = subprocess.run(argv, cwd=REPO, capture_output=True, timeout=30,
                           env=clean_env())
        out = CheckOutput(r)
        self.assertEqual(out.format_errors, [], f"lines out of format:\n{out}")
        self.assertIsNotNone(out.count, f"no '# N problems found' line:\n{out}")
        self.assertEqual(out.count, len(out.problems), str(out))
        self.assertEqual(out.rc, 1 if out.problems else 0, str(out))
        for k, v in settings.items():
            if k != "mbox_locks":
                self.assertEqual(out.settings.get(k), v, f"{k}:\n{out}")
        return out

    def assertProblems(self, out, expected):
        """Every pattern matches one problem line, which carries a fix;
        no problem is left over."""
        left = list(out.problems)
        for pattern in expected:
            hits = [p for p in left if re.search(pattern, p)]
            self.assertEqual(len(hits), 1, f"{pattern!r}: {len(hits)} problem "
                             f"lines match\n{out}")
            self.assertRegex(hits[0], r"; fix: \S", f"no fix given: {hits[0]}")
            left.remove(hits[0])
        self.assertEqual(left, [], f"unexpected problems\n{out}")

    # -- clean

    def test_clean_config_reports_no_problem(self):
        out = self.check(self.clean_settings())
        self.assertEqual(out.problems, [], str(out))
        self.assertIn("# 0 problems found", out.text)
        if not IS_ROOT:
            self.assertTrue(any("not run as root" in n for n in out.notes),
                            str(out))

    def test_clean_config_with_system_accounts(self):
        """No passwd_file: as root, /etc/shadow must be readable, and is."""
        self.require_root()
        s = self.clean_settings()
        del s["passwd_file"]
        out = self.check(s)
        self.assertEqual(out.problems, [], str(out))

    # -- everything at once

    def test_many_problems_reported_together_with_fixes(self):
        held = self.hold_port()
        apop = self.dir / "apop"
        apop.write_text("alice:secret\n")
        os.chmod(apop, 0o644)
        s = self.clean_settings()
        s.update({
            "listen": f"{HOST}:{held} {HOST}:{free_port()}",
            "spool_dir": str(self.dir / "no-such-spool"),
            "passwd_file": str(self.dir / "no-such-passwd"),
            "apop_secrets": str(apop),
            "min_spare": "9",
            "max_spare": "3",
        })
        expected = [
            rf"^spool_dir {re.escape(s['spool_dir'])} does not exist .*; fix: "
            rf"create it .*install -d -o root -g mail -m 2775",
            rf"^passwd_file {re.escape(s['passwd_file'])} is not readable",
            rf"^apop_secrets {re.escape(str(apop))} is readable by group or "
            rf"others \(mode 0644\).*; fix: chmod 600 {re.escape(str(apop))}$",
            r"^min_spare \(9\) is larger than max_spare \(3\); fix: ",
            rf"^listen {HOST}:{held}: address already in use by .*\(pid "
            rf"{os.getpid()}\); fix: stop that program",
        ]
        if not IS_ROOT:
            expected.append(rf"^apop_secrets .* is owned by uid {os.getuid()}, "
                            rf"not root.*; fix: chown root: ")
        else:
            empty = self.dir / "empty"
            empty.mkdir()
            (empty / "leftover").write_text("x")
            os.chmod(empty, 0o777)
            s["preauth_user"] = "mboxpop3d-no-such-user"
            expected += [
                r"^preauth_user mboxpop3d-no-such-user does not exist; fix: "
                r"useradd --system --no-create-home --home-dir /nonexistent "
                r"--shell /usr/sbin/nologin mboxpop3d-no-such-user$",
                r"^empty_dir .* is writable by group or others \(mode 0777\); "
                r"fix: chmod 755 ",
                r"^empty_dir .* is not empty \(1 entry, such as leftover\)",
            ]
        out = self.check(s)
        self.assertProblems(out, expected)

    def test_spool_dir_modes(self):
        """As root, the keeper makes dotlocks with the spool directory's
        group: it must be writable by a group other than root, or by
        everyone with the sticky bit."""
        self.require_root()
        mail = grp.getgrnam("mail").gr_gid
        cases = [  # (mode, gid, expected problem or None)
            (0o2775, mail, None),
            (0o0775, mail, None),
            (0o1777, 0, None),
            (0o0755, 0, r"is not writable by a group other than root \(mode "
                        r"0755, group root\).*; fix: chown root:mail .* && "
                        r"chmod 2775 "),
            (0o0775, 0, r"is not writable by a group other than root"),
            (0o0755, mail, r"is not writable by a group other than root \(mode "
                           r"0755, group mail\)"),
            (0o0777, 0, r"is writable by everyone but not sticky \(mode 0777\)"
                        r".*; fix: chmod 1777 "),
        ]
        for mode, gid, want in cases:
            with self.subTest(mode=oct(mode), gid=gid):
                d = self.dir / f"spool-{mode:o}-{gid}"
                d.mkdir()
                os.chown(d, 0, gid)
                os.chmod(d, mode)
                out = self.check(dict(self.clean_settings(), spool_dir=str(d)))
                self.assertProblems(out, [want] if want else [])

    def test_empty_dir_problems(self):
        self.require_root()
        f = self.dir / "a-file"
        f.write_text("")
        owned = self.dir / "owned"
        owned.mkdir()
        os.chown(owned, 65534, 65534)
        cases = [
            (str(self.dir / "not-yet"), None),      # the start creates it
            (str(f), r"^empty_dir .* is not a directory; fix: remove it"),
            (str(owned), r"^empty_dir .* is owned by uid 65534, not root; "
                         r"fix: chown root: "),
        ]
        for path, want in cases:
            with self.subTest(path=path):
                out = self.check(dict(self.clean_settings(), empty_dir=path))
                self.assertProblems(out, [want] if want else [])
                self.assertFalse(os.path.exists(self.dir / "not-yet"),
                                 "-t must not create empty_dir")

    def test_preauth_user_root(self):
        self.require_root()
        out = self.check(dict(self.clean_settings(), preauth_user="root"))
        self.assertProblems(out, [r"^preauth_user root is root, but must be "
                                  r"an unprivileged user.*; fix: "])

    def test_apop_secrets_missing_and_not_root_owned(self):
        out = self.check(dict(self.clean_settings(),
                              apop_secrets=str(self.dir / "nope")))
        self.assertProblems(out, [r"^apop_secrets .*/nope cannot be read \("
                                  r"No such file or directory\).*; fix: "])
        if IS_ROOT:
            p = self.dir / "apop-nobody"
            p.write_text("alice:secret\n")
            os.chmod(p, 0o600)
            os.chown(p, 65534, 65534)
            out = self.check(dict(self.clean_settings(), apop_secrets=str(p)))
            self.assertProblems(out, [r"is owned by uid 65534, not root, so the "
                                      r"daemon refuses to use it"])
            os.chown(p, 0, 0)
            out = self.check(dict(self.clean_settings(), apop_secrets=str(p)))
            self.assertProblems(out, [])

    def test_passwd_file_writable_by_others(self):
        p = self.dir / "passwd"
        shutil.copy(self.env.passwd, p)
        os.chmod(p, 0o666)
        out = self.check(dict(self.clean_settings(), passwd_file=str(p)))
        self.assertProblems(out, [r"^passwd_file .* is writable by group or "
                                  r"others \(mode 0666\).*; fix: chmod go-w "])

    # -- listen

    def test_listen_address_of_another_host(self):
        out = self.check(dict(self.clean_settings(), listen="192.0.2.1:1110"))
        self.assertProblems(out, [r"^listen 192\.0\.2\.1:1110: no interface "
                                  r"of this host has that address; fix: "])

    def test_listen_held_by_running_mboxpop3d_is_a_note(self):
        """-t before a reload: the running daemon's own addresses are no
        problem, only a note."""
        d = self.daemon
        out = self.check(dict(self.clean_settings(),
                              listen=d.settings["listen"]))
        self.assertProblems(out, [])
        self.assertTrue(any(re.search(r"is in use by a running mboxpop3d "
                                      r"\(pid \d+, mboxpop3d: ", n)
                            for n in out.notes), str(out))

    def test_listen_not_checked_when_socket_activated(self):
        held = self.hold_port()
        s = dict(self.clean_settings(), listen=f"{HOST}:{held}")
        out = self.check(s)
        self.assertProblems(out, [r"address already in use"])
        # LISTEN_PID is the pid the shell keeps when it execs the daemon
        out = self.check(s, wrapper=lambda argv: [
            "/bin/sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"', "sh"]
            + argv)
        self.assertProblems(out, [])
        self.assertIn("listen not checked: socket activation passes the "
                      "sockets (listen is ignored)", out.notes)

    # -- the start

    def test_start_logs_problems_and_refuses(self):
        s = dict(self.clean_settings(), spool_dir=str(self.dir / "none"),
                 min_spare="5", max_spare="1")
        path = self.env.write_conf(self.dir / "start.conf", s)
        r = subprocess.run([DAEMON, "-f", "-c", str(path)], cwd=REPO,
                           capture_output=True, timeout=30, env=clean_env())
        err = r.stderr.decode("utf-8", "replace")
        self.assertEqual(r.returncode, 1, err)
        self.assertRegex(err, r"mboxpop3d\[\d+\]: problem: spool_dir .*/none "
                              r"does not exist")
        self.assertRegex(err, r"mboxpop3d\[\d+\]: problem: min_spare \(5\) is "
                              r"larger than max_spare \(1\)")
        self.assertIn("refusing to start: fix the problems above", err)
        # about to detach, it logs to syslog, and says it on stderr too
        r = subprocess.run([DAEMON, "-c", str(path)], cwd=REPO,
                           capture_output=True, timeout=30, env=clean_env())
        err = r.stderr.decode("utf-8", "replace")
        self.assertEqual(r.returncode, 1, err)
        self.assertRegex(err, r"(?m)^mboxpop3d: problem: spool_dir .*/none "
                              r"does not exist .*; fix: ")
        self.assertIn("mboxpop3d: refusing to start: fix the problems above",
                      err)


# ---------------------------------------------------------------- fail2ban

def fail2ban_regex(log_path, filter_path=FILTER):
    """Runs fail2ban-regex; returns (matched addresses, summary text)."""
    r = subprocess.run(["fail2ban-regex", "-o", "ip", str(log_path),
                        str(filter_path)],
                       capture_output=True, timeout=120, text=True)
    if r.returncode != 0:
        raise AssertionError(f"fail2ban-regex failed ({r.returncode}):\n"
                             f"{r.stdout}{r.stderr}")
    ips = [l.strip() for l in r.stdout.splitlines() if l.strip()]
    return ips


def syslog_form(line, host="mailhost"):
    """'HH:MM:SS mboxpop3d[PID]: text' (-f) as syslog writes the same
    message: 'Mon DD HH:MM:SS host mboxpop3d[PID]: text'."""
    m = re.match(r"(\d\d:\d\d:\d\d) (mboxpop3d\[\d+\]: .*)$", line)
    return f"Nov 27 {m.group(1)} {host} {m.group(2)}"


def journal_form(line, host="mailhost", pid=4242):
    """The same line as journalctl shows what mboxpop3d.service's
    'mboxpop3d -f' wrote to stderr."""
    return f"Nov 27 {line[:8]} {host} mboxpop3d[{pid}]: {line}"


@unittest.skipUnless(shutil.which("fail2ban-regex"),
                     "fail2ban-regex not installed (Debian package fail2ban; "
                     "tests/install-deps.sh)")
class Fail2ban(POP3TestCase):
    """etc/fail2ban/filter.d/mboxpop3d.conf against real and crafted lines."""

    FORGED = 'a peer=10.6.6.6 reason="x"\r\nlogin failed user=b peer=10.7.7.7'

    def setUp(self):
        super().setUp()
        self.dir = Path(tempfile.mkdtemp(prefix="f2b-", dir=self.env.dir))

    def write(self, name, lines):
        p = self.dir / name
        p.write_text("".join(l + "\n" for l in lines))
        return p

    def real_lines(self):
        """Failed logins from 127.0.0.1 against a real daemon, with the
        master's blocking line; returns the lines of its -f log."""
        acct = self.new_mailbox(fixtures.simple(1))
        d = Daemon(self.env, "f2b", {"ip_auth_failures": "4",
                                     "ip_auth_window": "60",
                                     "ip_auth_block": "60"}).start()
        self.addCleanup(d.stop)
        c = self.connect(port=d.port)
        self.ok(c, f"USER {acct.name}")
        self.err(c, "PASS wrong-1", "AUTH")
        self.ok(c, "USER no.such+user@example.org")
        self.err(c, "PASS wrong-2", "AUTH")
        # a name made to forge a second address and a line of its own
        # (AUTH PLAIN lets it hold spaces, quotes and line breaks)
        self.assertLessEqual(len(self.FORGED), 64)
        token = base64.b64encode(b"\0" + self.FORGED.encode() +
                                 b"\0pw").decode()
        self.err(c, f"AUTH PLAIN {token}", "AUTH")
        self.ok(c, f"USER {acct.name}")
        self.err(c, "PASS wrong-4", "AUTH")
        self.quit(c)
        deadline = time.monotonic() + 5
        while "login failures: blocking" not in d.log_tail(400) \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        d.stop()
        lines = d.log.read_text(errors="replace").splitlines()
        failed = [l for l in lines if " login failed " in l]
        self.assertEqual(len(failed), 4, "\n".join(lines))
        self.assertTrue(any("login failures: blocking 127.0.0.1 for 60 s "
                            "after 4 failed logins in 60 s" in l
                            for l in lines), "\n".join(lines))
        forged = [l for l in failed if "10.6.6.6" in l]
        self.assertEqual(len(forged), 1)
        self.assertIn('user=a?peer?10.6.6.6?reason??x???login?failed?user?b?'
                      'peer?10.7.7.7 peer=127.0.0.1 reason="invalid user name"',
                      forged[0])
        return [l for l in lines if re.match(r"\d\d:\d\d:\d\d mboxpop3d\[\d+\]: ",
                                             l)]

    def test_real_daemon_lines(self):
        lines = self.real_lines()
        # 4 failed logins and 1 block, all from 127.0.0.1, in each of the
        # three places the lines can be read from
        for form, conv in (("-f output", lambda l: l),
                           ("syslog", syslog_form),
                           ("journal", journal_form)):
            with self.subTest(form=form):
                ips = fail2ban_regex(self.write(f"real-{form[:2]}.log",
                                                [conv(l) for l in lines]))
                self.assertEqual(ips, ["127.0.0.1"] * 5, form)

    def test_crafted_lines_match(self):
        lines = [
            'Nov 27 12:00:01 mailhost mboxpop3d[101]: login failed user=bob '
            'peer=192.0.2.7 reason="wrong password"',
            'Nov 27 12:00:02 mailhost mboxpop3d[102]: login failed '
            'user=alice@example.org peer=2001:db8::7 reason="unknown user"',
            'Nov 27 12:00:03 mailhost mboxpop3d[103]: login failed user=- '
            'peer=192.0.2.8 reason="invalid user name"',
            'Nov 27 12:00:04 mailhost mboxpop3d[104]: login failed '
            'user=x?peer?192.0.2.99?reason???? peer=192.0.2.9 '
            'reason="invalid user name"',
            'Nov 27 12:00:05 mailhost mboxpop3d[1]: 12:00:05 mboxpop3d[105]: '
            'login failed user=carol peer=2001:db8:0:1::5 reason="wrong APOP '
            'digest"',
            'Nov 27 12:00:06 mailhost mboxpop3d[106]: login failed user=dave '
            'peer=192.0.2.10 reason="uid 500 is below min_uid 1000"',
            'Nov 27 12:00:07 mailhost mboxpop3d[107]: login failures: blocking '
            '192.0.2.11 for 600 s after 10 failed logins in 300 s',
            'Nov 27 12:00:08 mailhost mboxpop3d[108]: login failures: blocking '
            '2001:db8:1:2::/64 for 600 s after 10 failed logins in 300 s',
            '12:00:09 mboxpop3d[109]: login failed user=erin peer=192.0.2.12 '
            'reason="account locked or without password"',
        ]
        ips = fail2ban_regex(self.write("match.log", lines))
        self.assertEqual(ips, ["192.0.2.7", "2001:db8::7", "192.0.2.8",
                               "192.0.2.9", "2001:db8:0:1::5", "192.0.2.10",
                               "192.0.2.11", "2001:db8:1:2::/64",
                               "192.0.2.12"])

    def test_crafted_lines_do_not_match(self):
        lines = [
            # not failed logins
            'Nov 27 12:01:01 mailhost mboxpop3d[201]: connect from 192.0.2.20',
            'Nov 27 12:01:02 mailhost mboxpop3d[202]: login user=bob '
            'peer=192.0.2.21 messages=1 octets=300',
            'Nov 27 12:01:03 mailhost mboxpop3d[203]: session end user=- '
            'peer=192.0.2.22 retr=0 retr_bytes=0 top=0 dele=0 dele_bytes=0 '
            'left=0 sent=120 duration=4.010s reason=auth-failures',
            'Nov 27 12:01:04 mailhost mboxpop3d[204]: login error user=bob '
            'peer=192.0.2.23: apop_secrets /etc/mboxpop3d.apop must be a '
            'root-owned file readable by root only (chmod 600): refusing to '
            'use it',
            'Nov 27 12:01:05 mailhost mboxpop3d[205]: refused 192.0.2.24: too '
            'many failed logins from 192.0.2.24',
            'Nov 27 12:01:06 mailhost mboxpop3d[206]: user=bob peer=192.0.2.25: '
            'refused, another session has the mailbox',
            # another program's line of the same shape
            'Nov 27 12:01:07 mailhost popa3d[207]: login failed user=bob '
            'peer=192.0.2.26 reason="wrong password"',
            # shapes mboxpop3d never logs: a name with a space (it would be
            # '?'), a second peer= after the reason, a peer that is no
            # address, an unquoted reason
            'Nov 27 12:01:08 mailhost mboxpop3d[208]: login failed user=a b '
            'peer=192.0.2.27 reason="wrong password"',
            'Nov 27 12:01:09 mailhost mboxpop3d[209]: login failed user=a '
            'peer=192.0.2.28 reason="x" peer=192.0.2.29 reason="wrong '
            'password"',
            'Nov 27 12:01:10 mailhost mboxpop3d[210]: login failed user=a '
            'peer=unknown reason="wrong password"',
            'Nov 27 12:01:11 mailhost mboxpop3d[211]: login failed user=a '
            'peer=192.0.2.30 reason=wrong',
        ]
        ips = fail2ban_regex(self.write("nomatch.log", lines))
        self.assertEqual(ips, [])

    def test_jail_example(self):
        """The jail names the filter, and stays off until enabled."""
        import configparser
        cp = configparser.ConfigParser(interpolation=None)
        cp.read(JAIL)
        self.assertIn("mboxpop3d", cp.sections())
        j = cp["mboxpop3d"]
        self.assertEqual(j.get("filter"), "mboxpop3d")
        self.assertEqual(j.get("enabled"), "false")
        self.assertEqual(j.get("backend"), "systemd")


if __name__ == "__main__":
    unittest.main()
