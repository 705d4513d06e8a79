"""The daemon as a program: command line, config file, inetd mode, idle
timeout, SIGTERM, and (as root) the privilege drop of session processes."""

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import unittest

import fixtures
from harness import (POP3TestCase, Daemon, Client, DAEMON, GREETING,
                     retr_bytes, wire_size, run_daemon_cmd,
                     free_port, port_open, descendants, proc_creds,
                     server_socket_inodes, pids_holding_socket, wait_exit,
                     sanitizer_lines)


def zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1].startswith("Z")
    except OSError:
        return True


def out_text(r):
    return (r.stdout + r.stderr).decode("utf-8", "replace")


class CommandLine(POP3TestCase):

    def test_version(self):
        r = run_daemon_cmd(["-V"])
        self.assertEqual(r.returncode, 0, out_text(r))
        text = out_text(r)
        self.assertIn("mboxpop3d", text)
        # the version CAPA announces is the one -V prints
        c = self.connect()
        self.ok(c, "CAPA")
        impl = [l.decode() for l in c.read_multi()
                if l.startswith(b"IMPLEMENTATION")]
        self.assertTrue(impl, "no IMPLEMENTATION capability")
        version = impl[0].split("mboxpop3d-", 1)[-1]
        self.assertIn(version, text, f"-V says {text!r}, CAPA {impl[0]!r}")

    def test_help(self):
        r = run_daemon_cmd(["-h"])
        self.assertEqual(r.returncode, 0, out_text(r))
        self.assertIn("-c", out_text(r))

    def test_unknown_option(self):
        r = run_daemon_cmd(["-Z"])
        self.assertNotEqual(r.returncode, 0, out_text(r))

    def test_config_test_prints_effective_config(self):
        d = self.daemon
        r = run_daemon_cmd(["-t", "-c", str(d.conf)])
        self.assertEqual(r.returncode, 0, out_text(r))
        text = r.stdout.decode()
        for key, value in d.settings.items():
            m = re.search(rf"^\s*{key}\s*=\s*(.*?)\s*$", text, re.M)
            self.assertTrue(m, f"-t output lacks {key}:\n{text}")
            if key == "mbox_locks":
                self.assertEqual(set(m.group(1).split()), set(value.split()))
            else:
                self.assertEqual(m.group(1), value, key)

    def test_config_test_output_round_trips(self):
        r = run_daemon_cmd(["-t", "-c", str(self.daemon.conf)])
        self.assertEqual(r.returncode, 0, out_text(r))
        again = self.env.dir / "roundtrip.conf"
        again.write_bytes(r.stdout)
        r2 = run_daemon_cmd(["-t", "-c", str(again)])
        self.assertEqual(r2.returncode, 0, out_text(r2))
        self.assertEqual(r2.stdout, r.stdout)

    def test_config_comments_blank_lines_and_all_lock_kinds(self):
        path = self.env.dir / "comments.conf"
        # -t also checks the privilege separation's set-up as root: point
        # it at the test's preauth_user and empty_dir.
        privsep = "".join(f"{k} = {self.daemon.settings[k]}\n"
                          for k in ("preauth_user", "empty_dir"))
        path.write_text("# a comment\n\n   # indented comment\n"
                        f"spool_dir = {self.env.spool_dir}\n"
                        "mbox_locks = flock fcntl dotlock\n"
                        "idle_timeout=30\n" + privsep)
        r = run_daemon_cmd(["-t", "-c", str(path)])
        self.assertEqual(r.returncode, 0, out_text(r))
        self.assertRegex(r.stdout.decode(), r"(?m)^\s*idle_timeout\s*=\s*30\s*$")

    def test_listen_override(self):
        r = run_daemon_cmd(["-t", "-c", str(self.daemon.conf),
                            "-l", "127.0.0.1:1", "-l", "127.0.0.1:2"])
        self.assertEqual(r.returncode, 0, out_text(r))
        m = re.search(r"(?m)^\s*listen\s*=\s*(.*?)\s*$", r.stdout.decode())
        self.assertTrue(m, r.stdout)
        self.assertEqual(m.group(1).split(), ["127.0.0.1:1", "127.0.0.1:2"])

    def test_offline_uidl_listing(self):
        """-U FILE prints what LIST and UIDL would show, writing nothing."""
        spool = fixtures.varied()
        acct = self.new_mailbox(spool)
        path = self.env.spool_path(acct)
        st0 = os.stat(path)
        r = run_daemon_cmd(["-c", str(self.daemon.conf), "-U", str(path)])
        self.assertEqual(r.returncode, 0, out_text(r))
        rows = [l.split() for l in r.stdout.decode().splitlines()
                if l and not l.startswith("#")]
        c, _ = self.login(acct)
        _, lst = self.multi(c, "LIST")
        _, uidl = self.multi(c, "UIDL")
        self.quit(c)
        want = [[a.decode(), b.split()[1].decode(), u.split()[1].decode()]
                for a, b, u in zip([l.split()[0] for l in lst], lst, uidl)]
        self.assertEqual(rows, want)
        st = os.stat(path)
        self.assertEqual((st.st_mtime_ns, st.st_size),
                         (st0.st_mtime_ns, st0.st_size))
        self.assertEqual(self.env.read_spool(acct), spool.data)

    def test_missing_config_file(self):
        r = run_daemon_cmd(["-t", "-c", str(self.env.dir / "nonexistent")])
        self.assertNotEqual(r.returncode, 0, out_text(r))


BAD_CONFIGS = [
    ("unknown setting", "no_such_setting = 1\n"),
    ("no equals sign", "idle_timeout 30\n"),
    ("non-numeric", "idle_timeout = soon\n"),
    ("negative", "lock_timeout = -5\n"),
    ("overflow", "idle_timeout = 99999999999999999999999\n"),
    ("bad lock kind", "mbox_locks = fcntl lockf\n"),
    ("bad listen", "listen = 127.0.0.1:notaport\n"),
    ("empty value", "spool_dir =\n"),
]


class BadConfig(POP3TestCase):

    def write_bad(self, name, bad_line):
        path = self.env.dir / f"bad-{name.replace(' ', '-')}.conf"
        # the bad line is line 3
        path.write_text(f"# bad config: {name}\n"
                        f"spool_dir = {self.env.spool_dir}\n" + bad_line +
                        f"passwd_file = {self.env.passwd}\n")
        return path

    def test_config_test_reports_file_and_line(self):
        for name, line in BAD_CONFIGS:
            with self.subTest(name):
                path = self.write_bad(name, line)
                r = run_daemon_cmd(["-t", "-c", str(path)])
                self.assertNotEqual(r.returncode, 0,
                                    f"{line!r} accepted:\n{out_text(r)}")
                self.assertIn(f"{path}:3:", r.stderr.decode(errors="replace"),
                              f"{line!r}")

    def test_daemon_refuses_to_start(self):
        name, line = BAD_CONFIGS[0]
        path = self.write_bad(name, line)
        port = free_port()
        path.write_text(path.read_text() + f"listen = 127.0.0.1:{port}\n")
        proc = subprocess.Popen([DAEMON, "-f", "-d", "-c", str(path)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        try:
            out, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            self.fail("daemon with a bad config kept running")
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn(f"{path}:3:", err.decode(errors="replace"))
        self.assertFalse(port_open(port))


class Listen(POP3TestCase):

    def test_command_line_listen_replaces_config(self):
        # the config's port must stay closed, -l's port must answer
        p2 = free_port()
        d = Daemon(self.env, "override", extra_args=["-l", f"127.0.0.1:{p2}"])
        conf_port = d.port
        d.port = p2            # Daemon.start() waits on this port
        try:
            d.start()
            c = Client(p2)
            self.assertEqual(c.greeting, GREETING)
            c.close()
            self.assertFalse(port_open(conf_port),
                             "config listen address still served despite -l")
        finally:
            d.stop()

    def test_two_listen_addresses(self):
        p2 = free_port()
        d = Daemon(self.env, "two")
        d.settings["listen"] = f"127.0.0.1:{d.port} 127.0.0.1:{p2}"
        self.env.write_conf(d.conf, d.settings)
        try:
            d.start()
            for p in (d.port, p2):
                c = Client(p)
                self.assertEqual(c.greeting, GREETING, f"port {p}")
                c.close()
        finally:
            d.stop()

    def test_sigterm_stops_daemon(self):
        d = Daemon(self.env, "sigterm").start()
        pid = d.proc.pid
        kids = descendants(pid)
        d.proc.send_signal(signal.SIGTERM)
        rc = wait_exit(d.proc, 5)
        self.assertIsNotNone(rc, "daemon still running 5 s after SIGTERM")
        self.assertEqual(rc, 0, f"exit status after SIGTERM\n{d.log_tail()}")
        time.sleep(0.2)
        alive = [k for k in kids if (proc_creds(k) is not None and
                                     not zombie(k))]
        d.stop()
        self.assertEqual(alive, [], "children outlived the master")
        self.assertFalse(port_open(d.port))


class Limits(POP3TestCase):

    def test_recovers_after_max_children(self):
        """More connections than max_children: the daemon serves again
        once they are gone."""
        d = Daemon(self.env, "limits", {"max_children": "3", "min_spare": "1",
                                        "max_spare": "2"}).start()
        try:
            held = []
            for _ in range(6):
                s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
                held.append(s)
            greeted = 0
            for s in held:
                s.settimeout(1)
                try:
                    if s.recv(100).startswith(b"+OK"):
                        greeted += 1
                except OSError:
                    pass
            self.assertGreaterEqual(greeted, 1, "no connection was served")
            self.assertLessEqual(greeted, 3, "more than max_children served")
            for s in held:
                s.close()
            deadline = time.monotonic() + 10
            while True:
                try:
                    c = Client(d.port, timeout=3)
                    self.assertEqual(c.greeting, GREETING)
                    c.close()
                    break
                except (OSError, AssertionError):
                    if time.monotonic() > deadline:
                        self.fail("not serving 10 s after the flood ended\n"
                                  + d.log_tail())
                    time.sleep(0.1)
            self.assertTrue(d.alive())
        finally:
            d.stop()


class Signals(POP3TestCase):
    """SIGTERM with a session open, SIGHUP reload (mboxpop3d(8) SIGNALS)."""

    def test_sigterm_with_open_session(self):
        spool = fixtures.simple(2)
        acct = self.new_mailbox(spool)
        d = Daemon(self.env, "sigterm-session").start()
        try:
            c, _ = self.login(acct, port=d.port)
            self.ok(c, "DELE 1")
            t0 = time.monotonic()
            d.proc.send_signal(signal.SIGTERM)
            try:
                lines = c.read_until_eof(12)
            except socket.timeout:
                self.fail("session still open 12 s after SIGTERM")
            for l in lines:
                self.assertTrue(l.startswith("-ERR"), lines)
            rc = wait_exit(d.proc, 12)
            self.assertIsNotNone(rc, "master still running 12 s after SIGTERM")
            self.assertEqual(rc, 0)
            self.assertLess(time.monotonic() - t0, 12)
        finally:
            d.stop()
        self.assertEqual(self.env.read_spool(acct), spool.data,
                         "SIGTERM during a session deleted mail")

    def test_sighup_rereads_config(self):
        other = self.env.dir / "spool-hup"
        other.mkdir(mode=0o755)
        if os.geteuid() == 0:       # dotlocks need the directory's group
            shutil.copystat(self.env.spool_dir, other)
            st = os.stat(self.env.spool_dir)
            os.chown(other, st.st_uid, st.st_gid)
            os.chmod(other, st.st_mode & 0o7777)
        d = Daemon(self.env, "hup").start()
        try:
            acct = self.new_mailbox(fixtures.simple(1))
            spool2 = fixtures.simple(3)
            p = other / acct.name
            p.write_bytes(spool2.data)
            os.chmod(p, 0o600)
            if os.geteuid() == 0:
                os.chown(p, acct.uid, acct.gid)
            d.settings["spool_dir"] = str(other)
            self.env.write_conf(d.conf, d.settings)
            d.proc.send_signal(signal.SIGHUP)
            time.sleep(0.5)     # (connecting at once: see the next test)
            deadline = time.monotonic() + 10
            while True:
                c, r = self.login(acct, port=d.port)
                if "3 messages" in r or time.monotonic() > deadline:
                    break
                self.quit(c)
                time.sleep(0.1)
            self.assertIn("3 messages", r, "SIGHUP did not switch spool_dir")
            self.quit(c)
            # a broken config on SIGHUP: logged, old settings kept
            d.conf.write_text(d.conf.read_text() + "bogus_setting = 1\n")
            d.proc.send_signal(signal.SIGHUP)
            time.sleep(0.5)
            self.assertTrue(d.alive(), "daemon died on a bad config at SIGHUP")
            c, r = self.login(acct, port=d.port)
            self.assertIn("3 messages", r)
        finally:
            d.stop()

    def test_connection_right_after_sighup_is_served(self):
        """A client that connects just after a reload must be served, not
        cut off by the retiring of idle workers (8 rounds: narrow race)."""
        acct = self.new_mailbox(fixtures.simple(1))
        d = Daemon(self.env, "hup-race").start()
        try:
            for i in range(8):
                d.proc.send_signal(signal.SIGHUP)
                c = Client(d.port)
                self.assertEqual(c.greeting, GREETING)
                r = c.cmd(f"USER {acct.name}")
                self.assertTrue(r.startswith("+OK"), self.explain(
                    c, f"USER (connected right after SIGHUP, round {i + 1})",
                    r, "+OK send PASS"))
                r = c.cmd(f"PASS {acct.password}")
                self.assertTrue(r.startswith("+OK"), self.explain(
                    c, f"PASS (round {i + 1})", r, "+OK"))
                self.quit(c)
                c.close()
                time.sleep(0.2)
        finally:
            d.stop()


class Inetd(POP3TestCase):
    """-i: one session on stdin/stdout (pipes here)."""

    def run_inetd(self, script, timeout=20):
        proc = subprocess.run([DAEMON, "-i", "-c",
                               str(self.daemon.conf)],
                              input=script, capture_output=True,
                              timeout=timeout)
        rep = sanitizer_lines(proc.stderr.decode("utf-8", "replace"))
        self.assertEqual(rep, [], "sanitizer report from -i")
        return proc

    def replies(self, out):
        self.assertTrue(out.endswith(b"\r\n") or out == b"", out[-50:])
        for line in out.split(b"\r\n")[:-1]:
            self.assertNotIn(b"\n", line, "bare LF in output")
        return out.split(b"\r\n")[:-1]

    def test_session(self):
        spool = fixtures.simple(2)
        acct = self.new_mailbox(spool)
        p = self.run_inetd(f"CAPA\r\nUSER {acct.name}\r\nPASS {acct.password}"
                           f"\r\nSTAT\r\nRETR 2\r\nQUIT\r\n".encode())
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = self.replies(p.stdout)
        self.assertEqual(lines[0].decode(), GREETING, lines[:3])
        i = lines.index(b".", 1)          # end of CAPA
        self.assertTrue(lines[i + 1].startswith(b"+OK"))      # USER
        self.assertTrue(lines[i + 2].startswith(b"+OK"), lines[i + 2])
        self.assertEqual(lines[i + 3].decode(),
                         f"+OK 2 {sum(map(wire_size, spool.served))}")
        self.assertTrue(lines[i + 4].startswith(b"+OK"))
        want = retr_bytes(spool.served[1])
        body = b"\r\n".join(lines[i + 5:]) + b"\r\n"
        self.assertTrue(body.startswith(want), body[:200])
        rest = body[len(want):].split(b"\r\n")
        self.assertTrue(rest[0].startswith(b"+OK"), rest)
        self.assertEqual(rest[1:], [b""])

    def test_update(self):
        spool = fixtures.simple(3)
        acct = self.new_mailbox(spool)
        p = self.run_inetd(f"USER {acct.name}\nPASS {acct.password}\n"
                           f"DELE 1\nDELE 3\nQUIT\n".encode())
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = self.replies(p.stdout)
        self.assertEqual(len(lines), 6, lines)
        self.assertTrue(all(l.startswith(b"+OK") for l in lines), lines)
        self.assertEqual(self.env.read_spool(acct), spool.without([1, 3]))

    def test_eof_without_quit_deletes_nothing(self):
        spool = fixtures.simple(2)
        acct = self.new_mailbox(spool)
        p = self.run_inetd(f"USER {acct.name}\r\nPASS {acct.password}\r\n"
                           f"DELE 1\r\n".encode())
        lines = self.replies(p.stdout)
        self.assertEqual(len(lines), 4, lines)
        self.assertEqual(self.env.read_spool(acct), spool.data)

    def test_bad_config(self):
        path = self.env.dir / "inetd-bad.conf"
        path.write_text("bogus = 1\n")
        p = subprocess.run([DAEMON, "-i", "-c", str(path)], input=b"QUIT\r\n",
                           capture_output=True, timeout=20)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(f"{path}:1:", p.stderr.decode(errors="replace"))
        self.assertFalse(p.stdout.startswith(b"+OK"), p.stdout)

    def test_uidl_same_as_tcp(self):
        acct = self.new_mailbox(fixtures.varied())
        c, _ = self.login(acct)
        r, tcp = self.multi(c, "UIDL")
        self.quit(c)
        p = self.run_inetd(f"USER {acct.name}\r\nPASS {acct.password}\r\n"
                           f"UIDL\r\nQUIT\r\n".encode())
        lines = self.replies(p.stdout)
        i = lines.index(b".")
        self.assertEqual(lines[4:i], tcp)


class IdleTimeout(POP3TestCase):
    """A separate daemon with idle_timeout = 2."""

    daemon_settings = {"idle_timeout": "2"}

    def wait_closed(self, c, what):
        t0 = time.monotonic()
        try:
            lines = c.read_until_eof(10)
        except socket.timeout:
            self.fail(f"{what}: still open 10 s after the last command "
                      f"(idle_timeout = 2)")
        dt = time.monotonic() - t0
        self.assertGreater(dt, 1.5, f"{what}: closed after {dt:.1f}s")
        for l in lines:
            self.assertTrue(l.startswith("-ERR"), f"{what}: sent {l!r}")
        return dt

    def test_idle_in_authorization(self):
        c = self.connect()
        self.ok(c, "CAPA")
        c.read_multi()
        self.wait_closed(c, "AUTHORIZATION")

    def test_idle_in_transaction_deletes_nothing(self):
        spool = fixtures.simple(2)
        acct = self.new_mailbox(spool)
        c, _ = self.login(acct, port=self.port)
        self.ok(c, "DELE 1")
        self.wait_closed(c, "TRANSACTION")
        self.assertEqual(self.env.read_spool(acct), spool.data)

    def test_activity_keeps_session(self):
        acct = self.new_mailbox(fixtures.simple(1))
        c, _ = self.login(acct, port=self.port)
        for _ in range(4):                 # 3.2 s in all, > idle_timeout
            time.sleep(0.8)
            self.ok(c, "NOOP")
        self.quit(c)


class Privileges(POP3TestCase):
    """Root only: the process serving a session is the account's."""

    def session_processes(self, c):
        client_port = c.sock.getsockname()[1]
        inodes = server_socket_inodes(self.port, client_port)
        self.assertTrue(inodes, "server side of the connection not found")
        kids = descendants(self.daemon.proc.pid)
        holders = pids_holding_socket(kids, inodes)
        return [proc_creds(p) for p in holders], [proc_creds(p) for p in kids]

    def test_session_runs_as_account(self):
        self.require_root()
        acct = self.new_mailbox(fixtures.simple(1))
        c, _ = self.login(acct)
        self.ok(c, "STAT")
        holders, kids = self.session_processes(c)
        ours = [h for h in holders if h and h["uid"] == [acct.uid] * 4]
        self.assertTrue(ours, f"no process with uid {acct.uid} holds the "
                              f"session socket; holders: {holders}; "
                              f"descendants: {kids}")
        for h in ours:
            self.assertEqual(h["gid"], [acct.gid] * 4, h)
            self.assertTrue(set(h["groups"]) <= {acct.gid},
                            f"supplementary groups {h['groups']}")
        self.quit(c)

    def test_no_root_process_serves_session(self):
        """Every process that holds the session socket after login has
        dropped root (the worker itself became the session)."""
        self.require_root()
        acct = self.new_mailbox(fixtures.simple(1))
        c, _ = self.login(acct)
        self.ok(c, "STAT")
        holders, kids = self.session_processes(c)
        rooted = [h for h in holders if h and 0 in h["uid"]]
        self.assertEqual(rooted, [], f"root processes hold the session "
                                     f"socket; all holders: {holders}")

    def test_two_accounts_two_uids(self):
        self.require_root()
        a = self.new_mailbox(fixtures.simple(1))
        b = self.new_mailbox(fixtures.simple(1))
        ca, _ = self.login(a)
        cb, _ = self.login(b)
        ha, _ = self.session_processes(ca)
        hb, _ = self.session_processes(cb)
        self.assertIn(a.uid, [h["uid"][0] for h in ha if h])
        self.assertIn(b.uid, [h["uid"][0] for h in hb if h])
        self.assertNotIn(b.uid, [h["uid"][0] for h in ha if h])


if __name__ == "__main__":
    unittest.main()
