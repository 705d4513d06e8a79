"""System accounts (no passwd_file): getpwnam/getspnam + crypt(3), the way
the daemon runs on a real mail host.  Root only: the test creates
temporary users with useradd/chpasswd (yescrypt, Debian's default through
PAM, and sha512crypt with chpasswd -c SHA512) and removes them afterwards.

Checks: login works with both hash methods; a wrong password, an unknown
user, a locked account (usermod -L), an expired account (chage -E 0)
and the shadow password aging rules (expired, inactive, passwd -e, with
and without refuse_expired_passwords) get the same -ERR [AUTH]; the session process runs with the account's
uid, gid and its own supplementary groups (initgroups), never with group
mail; UPDATE works in a root:mail 2775 spool dir (as /var/mail) and in a
1777 one.
"""

import atexit
import grp
import os
import pwd
import secrets
import shutil
import subprocess
import time
import unittest
from pathlib import Path

import fixtures
from harness import (POP3TestCase, Daemon, Account, IS_ROOT, wire_size,
                     proc_creds, descendants, server_socket_inodes,
                     pids_holding_socket)

TOOLS = ("useradd", "userdel", "usermod", "chpasswd", "chage", "groupadd",
         "groupdel")
NOLOGIN = "/usr/sbin/nologin" if os.path.exists("/usr/sbin/nologin") \
    else "/bin/false"

_created_users, _created_groups = [], []


def _run(args, input=None):
    r = subprocess.run(args, input=input, capture_output=True, text=True,
                       timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: exit {r.returncode}: "
                           f"{r.stderr.strip()}")
    return r


def remove_system_users():
    """userdel/groupdel everything this module created (also at exit)."""
    while _created_users:
        name = _created_users.pop()
        try:
            uid = pwd.getpwnam(name).pw_uid
        except KeyError:
            continue
        r = subprocess.run(["userdel", name], capture_output=True, timeout=60)
        if r.returncode != 0:
            subprocess.run(["userdel", "-f", name], capture_output=True,
                           timeout=60)
        spool = Path("/var/mail") / name
        try:
            if spool.is_file() and spool.stat().st_uid == uid:
                spool.unlink()
        except OSError:
            pass
    while _created_groups:
        name = _created_groups.pop()
        subprocess.run(["groupdel", name], capture_output=True, timeout=60)


atexit.register(remove_system_users)


def make_group():
    name = f"mbxe2eg{secrets.token_hex(3)}"
    _run(["groupadd", name])
    _created_groups.append(name)
    return grp.getgrnam(name).gr_gid


def make_user(method=None, groups=()):
    """A system user with a random password set by chpasswd (PAM's default
    method, or chpasswd -c METHOD).  Returns (Account, hash)."""
    name = f"mbxe2e{secrets.token_hex(4)}"
    args = ["useradd", "--no-create-home", "--shell", NOLOGIN,
            "--comment", "mboxpop3d e2e test"]
    if groups:
        args += ["--groups", ",".join(groups)]
    _run(args + [name])
    _created_users.append(name)
    password = "Pw-" + secrets.token_urlsafe(12)
    set_password(name, password, method)
    pw = pwd.getpwnam(name)
    return Account(name, password, pw.pw_uid, pw.pw_gid, None), \
        shadow_hash(name)


def set_password(name, password, method=None):
    _run(["chpasswd"] + (["-c", method] if method else []),
         input=f"{name}:{password}\n")


def shadow_aging(name):
    """Fields 3, 5 and 7 of the account's shadow entry, as chage takes
    them (-1 for an empty field)."""
    for line in Path("/etc/shadow").read_text().splitlines():
        f = line.split(":")
        if f[0] == name:
            return tuple(v if v else "-1" for v in (f[2], f[4], f[6]))
    raise KeyError(name)


def shadow_hash(name):
    for line in Path("/etc/shadow").read_text().splitlines():
        f = line.split(":")
        if f[0] == name:
            return f[1]
    return None


class SystemAccounts(POP3TestCase):

    @classmethod
    def setUpClass(cls):
        cls.users = {}
        cls.daemons = {}
        cls.skip_reason = None
        if not IS_ROOT:
            cls.skip_reason = ("needs root (useradd, chpasswd, and the "
                               "daemon reading /etc/shadow)")
            return
        missing = [t for t in TOOLS if shutil.which(t) is None]
        if missing:
            cls.skip_reason = f"missing tools: {missing}"
            return
        try:
            cls.extra_gid = make_group()
            extra = grp.getgrgid(cls.extra_gid).gr_name
            acct, h = make_user(None, groups=[extra])
            cls.yescrypt_via = "chpasswd (PAM's default method)"
            if not h.startswith("$y$"):
                cls.yescrypt_via = "chpasswd -c YESCRYPT (PAM default made " \
                    + h[:3] + ")"
                # this host's PAM is not set to yescrypt: make it so
                set_password(acct.name, acct.password, "YESCRYPT")
                h = shadow_hash(acct.name)
            cls.users["yescrypt"] = (acct, h)
            cls.users["sha512"] = make_user("SHA512")
        except Exception:
            remove_system_users()
            raise

    @classmethod
    def tearDownClass(cls):
        for d in cls.daemons.values():
            d.stop()          # no session may run as the users any more
        remove_system_users()

    def system_daemon(self, spool_mode=0o2775, **settings):
        """A daemon without passwd_file, spool_dir a fresh dir of mode
        (group mail, as Debian's /var/mail, unless world-writable), and
        the other settings given."""
        key = oct(spool_mode) + "".join(f" {k}={v}" for k, v in sorted(settings.items()))
        d = self.daemons.get(key)
        if d is None or not d.alive():
            spool_dir = self.env.dir / f"sysspool-{spool_mode:o}"
            spool_dir.mkdir(exist_ok=True)
            if not spool_mode & 0o002:
                os.chown(spool_dir, 0, grp.getgrnam("mail").gr_gid)
            os.chmod(spool_dir, spool_mode)
            name = f"system-{spool_mode:o}" + "".join(f"-{v}" for _, v in sorted(settings.items()))
            d = Daemon(self.env, name, {"spool_dir": str(spool_dir), **settings})
            del d.settings["passwd_file"]
            self.env.write_conf(d.conf, d.settings)
            d.start()
            d.spool_dir = spool_dir
            self.daemons[key] = d
        self.daemon, self.port = d, d.port
        return d

    def setUp(self):
        super().setUp()
        if self.skip_reason:
            self.skipTest(self.skip_reason)
        self.system_daemon()

    def user(self, kind, spool=None):
        acct, h = self.users[kind]
        path = self.daemon.spool_dir / acct.name
        if spool is not None:
            path.write_bytes(spool.data)
            os.chown(path, acct.uid, acct.gid)
            os.chmod(path, 0o600)
        return acct, h, path

    def refused(self, name, password):
        c = self.connect()
        self.ok(c, f"USER {name}")
        r = self.err(c, f"PASS {password}", "AUTH")
        c.cmd("QUIT")
        return r

    def check_login(self, kind, prefix):
        spool = fixtures.simple(3)
        acct, h, _ = self.user(kind, spool)
        self.assertTrue(h.startswith(prefix), f"{acct.name}'s hash in "
                                              f"/etc/shadow: {h[:8]}...")
        c, r = self.login(acct)
        self.assertEqual(self.ok(c, "STAT"),
                         f"+OK 3 {sum(map(wire_size, spool.served))}")
        self.multi(c, "RETR 2")
        self.quit(c)

    def test_login_yescrypt(self):
        self.check_login("yescrypt", "$y$")
        print(f"\n    yescrypt hash made by {self.yescrypt_via}", flush=True)

    def test_login_sha512crypt(self):
        self.check_login("sha512", "$6$")

    def test_wrong_password_and_unknown_user(self):
        acct, _, _ = self.user("yescrypt", fixtures.simple(1))
        wrong = self.refused(acct.name, acct.password + "x")
        unknown = self.refused(f"mbxe2enobody{secrets.token_hex(3)}",
                               acct.password)
        self.assertEqual(wrong, unknown, "wrong password and unknown user "
                                         "must look alike")

    def test_system_accounts_refused(self):
        """root (uid 0) and password-less system accounts."""
        wrong = self.refused(self.users["sha512"][0].name, "nope")
        for name in ("root", "daemon", "nobody"):
            try:
                pwd.getpwnam(name)
            except KeyError:
                continue
            self.assertEqual(self.refused(name, "nope"), wrong, name)
            self.assertEqual(self.refused(name, "*"), wrong, name)
            self.assertEqual(self.refused(name, "!"), wrong, name)

    def test_locked_account(self):
        acct, _, _ = self.user("sha512", fixtures.simple(1))
        wrong = self.refused(acct.name, "not-the-password")
        _run(["usermod", "-L", acct.name])
        try:
            self.assertTrue(shadow_hash(acct.name).startswith("!"))
            self.assertEqual(self.refused(acct.name, acct.password), wrong,
                             "locked account (usermod -L) with the right "
                             "password")
        finally:
            _run(["usermod", "-U", acct.name])
        c, _ = self.login(acct)
        self.quit(c)

    def test_expired_account(self):
        """DESIGN.md, Privilege: expired shadow entries are refused.
        chage -E 0: the account expired on 1970-01-02."""
        acct, _, _ = self.user("sha512", fixtures.simple(1))
        wrong = self.refused(acct.name, "not-the-password")
        _run(["chage", "-E", "0", acct.name])
        try:
            c = self.connect()
            self.ok(c, f"USER {acct.name}")
            r = c.cmd(f"PASS {acct.password}")
            self.assertEqual(r, wrong, self.explain(
                c, "PASS (right password, account expired by chage -E 0)",
                r, wrong))
        finally:
            _run(["chage", "-E", "-1", acct.name])
        c, _ = self.login(acct)
        self.quit(c)

    def test_password_aging(self):
        """shadow(5) password aging, with the right password each time:
        an expired password (field 5) or one that must be changed (field 3
        is 0, as passwd -e sets) is refused only with
        refuse_expired_passwords = yes; one expired for longer than the
        inactivity period (field 7) is refused always.  Each refusal looks
        like a wrong password and names its reason in the log."""
        acct, _, _ = self.user("sha512", fixtures.simple(1))
        wrong = self.refused(acct.name, "not-the-password")
        today = int(time.time() // 86400)
        expired = "password expired"
        inactive = "password inactive"
        forced = "password must be changed"
        cases = [  # (last change, max age, inactive): default, strict
            ((today - 1, 5, 0), None, None),
            ((today - 10, 5, -1), None, expired),
            ((today - 10, 5, 7), None, expired),      # 5 days over, 7 allowed
            ((today - 10, 5, 5), None, expired),      # exactly the period
            ((today - 10, 5, 2), inactive, inactive),
            ((0, 99999, -1), None, forced),
            ((0, 5, 0), None, forced),                # no date to count from
        ]
        saved = shadow_aging(acct.name)
        try:
            for aging, default, strict in cases:
                _run(["chage", "-d", str(aging[0]), "-M", str(aging[1]),
                      "-I", str(aging[2]), acct.name])
                for settings, reason in (({}, default),
                                         ({"refuse_expired_passwords": "yes"}, strict)):
                    d = self.system_daemon(**settings)
                    what = f"aging {aging} (today {today}) with {settings or 'defaults'}"
                    if reason is None:
                        c, _ = self.login(acct)
                        self.quit(c)
                        continue
                    since = d.log_size()
                    self.assertEqual(self.refused(acct.name, acct.password), wrong,
                                     f"{what}: the right password")
                    with open(d.log, "rb") as f:
                        f.seek(since)
                        log = f.read().decode("utf-8", "replace")
                    self.assertIn(f'user={acct.name} ', log, what)
                    self.assertIn(f'reason="{reason}', log, what)
        finally:
            _run(["chage", "-d", saved[0], "-M", saved[1], "-I", saved[2], acct.name])
        self.system_daemon()
        c, _ = self.login(acct)
        self.quit(c)

    def session_creds(self, c):
        inodes = server_socket_inodes(self.port, c.sock.getsockname()[1])
        self.assertTrue(inodes, "server side of the connection not found")
        holders = pids_holding_socket(descendants(self.daemon.proc.pid),
                                      inodes)
        return [proc_creds(p) for p in holders if proc_creds(p)]

    def check_credentials(self, kind):
        acct, _, _ = self.user(kind, fixtures.simple(1))
        c, _ = self.login(acct)
        self.ok(c, "STAT")
        creds = self.session_creds(c)
        want_groups = set(os.getgrouplist(acct.name, acct.gid))
        ours = [h for h in creds if h["uid"] == [acct.uid] * 4]
        self.assertTrue(ours, f"no process with uid {acct.uid} (real, "
                              f"effective, saved, fs) holds the session "
                              f"socket: {creds}")
        self.assertEqual([h for h in creds if 0 in h["uid"]], [],
                         f"root processes hold the session socket: {creds}")
        mail = grp.getgrnam("mail").gr_gid if _has_group("mail") else None
        for h in ours:
            self.assertEqual(h["gid"], [acct.gid] * 4, h)
            self.assertEqual(set(h["groups"]), want_groups,
                             f"supplementary groups of the session {h}, "
                             f"expected the account's own {want_groups}")
            if mail is not None and mail not in want_groups:
                self.assertNotIn(mail, h["groups"], "session has group mail")
        self.quit(c)
        return ours

    def test_session_credentials_with_extra_group(self):
        ours = self.check_credentials("yescrypt")
        self.assertIn(self.extra_gid, ours[0]["groups"],
                      "initgroups: the user's supplementary group is missing")

    def test_session_credentials_own_group_only(self):
        acct = self.users["sha512"][0]
        ours = self.check_credentials("sha512")
        self.assertEqual(set(ours[0]["groups"]), {acct.gid})

    def check_update(self, spool_mode):
        self.system_daemon(spool_mode)
        spool = fixtures.simple(5)
        acct, _, path = self.user("yescrypt", spool)
        st0 = os.stat(path)
        c, _ = self.login(acct)
        self.ok(c, "DELE 1")       # moves everything: dotlock and journal
        self.ok(c, "DELE 4")
        self.quit(c)
        self.assertBytesEqual(path.read_bytes(), spool.without([1, 4]),
                              f"spool after UPDATE (spool dir {spool_mode:o})")
        st = os.stat(path)
        self.assertEqual((st.st_ino, st.st_uid, st.st_gid, st.st_mode),
                         (st0.st_ino, st0.st_uid, st0.st_gid, st0.st_mode))
        left = [p.name for p in self.daemon.spool_dir.iterdir()
                if acct.name in p.name and p.name != acct.name]
        self.assertEqual(left, [], "lock or journal files left")

    def test_update_in_debian_style_spool_dir(self):
        self.check_update(0o2775)      # root:mail, setgid, as /var/mail

    def test_update_in_1777_spool_dir(self):
        self.check_update(0o1777)


def _has_group(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


if __name__ == "__main__":
    unittest.main()
