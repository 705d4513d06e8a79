"""The daemon's processes from the outside: privilege separation as /proc
shows it (identities, chroot, no_new_privs, process titles), pipelined
bytes handed from the pre-auth child to the session child, the pool limits
(max_children, max_per_ip, shedding of pre-auth connections,
max_session_time), systemd socket activation and notification, inetd mode
over a socket, the PROXY protocol, SIGTERM during an UPDATE, and the pid
file of a detached daemon.

Every wait is bounded; every daemon listens on 127.0.0.1 or ::1 only and is
stopped (SIGTERM, then SIGKILL) by the end of its test."""

import grp
import os
import pwd
import re
import shutil
import signal
import socket
import struct
import subprocess
import time
import unittest

import fixtures
from harness import (POP3TestCase, Daemon, Client, ConnectionClosed,
                     ProtocolError, Spool, DAEMON, GREETING, HOST, IS_ROOT,
                     REPO, START_TIMEOUT, message, wire_size,
                     descendants, server_socket_inodes, pids_holding_socket,
                     wait_exit, sanitizer_lines, port_open)

REFUSED_FULL = "-ERR [SYS/TEMP] too many connections"
REFUSED_PER_IP = "-ERR [SYS/TEMP] too many connections from your address"
SHED = ("-ERR [SYS/TEMP] server busy: closing connections that have not "
        "logged in")
EXPIRED = "-ERR [SYS/TEMP] session time limit reached, nothing deleted"


# ---------------------------------------------------------------- /proc

def proc_status(pid):
    """/proc/PID/status as a dict of stripped strings, or None if gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            text = f.read()
    except OSError:
        return None
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


def ids(st, key):
    return [int(x) for x in st.get(key, "").split()]


def title(pid):
    """The process title (what ps shows): /proc/PID/cmdline up to its
    first NUL."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    return raw.split(b"\0", 1)[0].decode("latin-1")


def proc_root(pid):
    try:
        return os.readlink(f"/proc/{pid}/root")
    except OSError as e:
        return f"<{e}>"


def zombie_or_gone(pid):
    st = proc_status(pid)
    return st is None or st.get("State", "").startswith(("Z", "X"))


def titled(pids, text):
    """The pids among pids whose title is exactly text."""
    return [p for p in pids if title(p) == text]


def describe(pids):
    """pid, title and ids of each pid (for failure messages)."""
    rows = []
    for p in pids:
        st = proc_status(p) or {}
        rows.append(f"  {p} ppid={st.get('PPid')} {title(p)!r} "
                    f"Uid={st.get('Uid')} Gid={st.get('Gid')} "
                    f"Groups={st.get('Groups')} NoNewPrivs="
                    f"{st.get('NoNewPrivs')}")
    return "\n".join(rows)


def listening_inodes(port):
    """Socket inodes of TCP listeners on port (state 0A)."""
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            parts = row.split()
            if len(parts) > 9 and parts[3] == "0A" and \
                    int(parts[1].rsplit(":", 1)[1], 16) == port:
                out.append(parts[9])
    return out


def wait_for(pred, timeout, interval=0.05):
    """pred()'s first true value within timeout, else None."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def log_text(d, since=0):
    try:
        with open(d.log, "rb") as f:
            f.seek(since)
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def wait_log(d, regex, since=0, timeout=5.0):
    """The first match of regex in the daemon's log after offset since,
    waiting up to timeout; None if it does not appear."""
    return wait_for(lambda: re.search(regex, log_text(d, since), re.M),
                    timeout)


def ipv6_loopback():
    if not socket.has_ipv6:
        return False
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        try:
            s.bind(("::1", 0))
        finally:
            s.close()
        return True
    except OSError:
        return False


def free_port6():
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.bind(("::1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---------------------------------------------------------------- daemons

class ProcDaemon(Daemon):
    """A Daemon started with a custom command line, environment, passed
    descriptors, probe address, or bytes to send before the greeting (a
    PROXY header).  Stopped, logged and sanitizer-checked like any other."""

    def __init__(self, env, name, settings=None, argv=None, environ=None,
                 pass_fds=(), probe_host=HOST, probe_port=None,
                 probe_prefix=b""):
        super().__init__(env, name, settings)
        self.argv = argv
        self.environ = environ
        self.pass_fds = tuple(pass_fds)
        self.probe_host = probe_host
        self.probe_port = probe_port
        self.probe_prefix = probe_prefix

    def start(self):
        argv = self.argv or [DAEMON, "-f", "-d", "-c", str(self.conf)]
        logf = open(self.log, "ab")
        try:
            self.proc = subprocess.Popen(
                argv, cwd=REPO, stdin=subprocess.DEVNULL, stdout=logf,
                stderr=logf, start_new_session=True, env=self.environ,
                pass_fds=self.pass_fds)
        finally:
            logf.close()
        self.env.daemons.append(self)
        self.env.all_daemons.append(self)
        port = self.probe_port or self.port
        deadline = time.monotonic() + START_TIMEOUT
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"daemon exited with {self.proc.returncode} at start:\n"
                    + self.log_tail())
            try:
                c = Client(port, host=self.probe_host, timeout=2,
                           read_greeting=False)
                try:
                    if self.probe_prefix:
                        c.send_raw(self.probe_prefix)
                    if c.readline_str() == GREETING:
                        c.cmd("QUIT")
                        try:
                            c.read_until_eof(2)
                        except (OSError, ProtocolError):
                            pass
                        return self
                finally:
                    c.close()
            except (OSError, ProtocolError) as e:
                last = e
            time.sleep(0.05)
        raise AssertionError(f"daemon did not answer on [{self.probe_host}]:"
                             f"{port} within {START_TIMEOUT}s ({last}):\n"
                             + self.log_tail())


def settle(d, timeout=5):
    """Waits until the probe connections of d's start are over: every
    worker is childless and alive (so none is finishing a session), then
    gives the master a moment to notice exits."""
    master = d.proc.pid

    def quiet():
        kids = descendants(master)
        workers = [p for p in kids
                   if int((proc_status(p) or {}).get("PPid", 0)) == master]
        return len(kids) == len(workers) and \
            not any(zombie_or_gone(p) for p in workers)
    wait_for(quiet, timeout)
    time.sleep(0.3)


def drain_eof(c, timeout):
    """Lines until the server closes (a reset counts as closed)."""
    try:
        return c.read_until_eof(timeout)
    except ConnectionResetError:
        return ["<connection reset>"]


class ProcessCase(POP3TestCase):
    """Helpers shared by the classes below."""

    def start(self, name, settings=None, **kw):
        d = ProcDaemon(self.env, name, settings, **kw)
        self.addCleanup(d.stop)
        return d.start()

    def raw_client(self, port, host=HOST, timeout=10, read_greeting=True):
        c = Client(port, host=host, timeout=timeout,
                   read_greeting=read_greeting)
        self._clients.append(c)
        return c

    def assertGreeted(self, c, what):
        self.assertEqual(c.greeting, GREETING, f"{what}\n{c.transcript()}")

    def assertRefused(self, c, want, what, t0=None):
        self.assertIsNotNone(c.greeting)
        self.assertTrue(c.greeting.startswith(want) and
                        (want != REFUSED_FULL or "address" not in c.greeting),
                        f"{what}: expected {want!r}..., got {c.greeting!r}")
        if t0 is not None:
            dt = time.monotonic() - t0
            self.assertLess(dt, 2.0, f"{what}: refused after {dt:.2f}s")
        try:
            rest = c.read_until_eof(5)
        except socket.timeout:
            self.fail(f"{what}: connection still open 5 s after the refusal")
        except ConnectionResetError:
            rest = []
        self.assertEqual(rest, [], f"{what}: more lines after the refusal")

    def session_pids(self, d, c, port=None):
        """Descendants of d that hold the server side of c's connection."""
        inodes = server_socket_inodes(port or d.port,
                                      c.sock.getsockname()[1])
        self.assertTrue(inodes, "server side of the connection not found")
        return pids_holding_socket(descendants(d.proc.pid), inodes)


# ---------------------------------------------------------------- 1

@unittest.skipUnless(IS_ROOT, "needs root (privilege separation)")
class PrivilegeSeparation(ProcessCase):
    """As /proc shows it: who runs each process, where, with what."""

    daemon_settings = {"min_spare": "2", "max_spare": "3"}

    def setUp(self):
        super().setUp()
        pw = pwd.getpwnam(self.daemon.settings["preauth_user"])
        self.nobody = (pw.pw_uid, pw.pw_gid)
        self.spool_gid = os.stat(self.env.spool_dir).st_gid
        self.assertEqual(self.spool_gid, grp.getgrnam("mail").gr_gid,
                         "bench: the spool dir should be root:mail")
        self.empty_dir = os.path.realpath(self.daemon.settings["empty_dir"])

    def preauth_pid(self, c):
        holders = self.session_pids(self.daemon, c)
        pre = titled(holders, f"mboxpop3d: pre-auth {HOST}")
        self.assertEqual(len(pre), 1, "one pre-auth process should hold the "
                         "connection; holders:\n" + describe(holders) +
                         "\nall descendants:\n" +
                         describe(descendants(self.daemon.proc.pid)))
        return pre[0], holders

    def test_preauth_child(self):
        c = self.connect()
        pid, holders = self.preauth_pid(c)
        st = proc_status(pid)
        uid, gid = self.nobody
        self.assertEqual(ids(st, "Uid"), [uid] * 4, describe([pid]))
        self.assertEqual(ids(st, "Gid"), [gid] * 4, describe([pid]))
        self.assertEqual(ids(st, "Groups"), [gid], describe([pid]))
        self.assertEqual(st.get("NoNewPrivs"), "1", describe([pid]))
        self.assertEqual(int(st.get("CapEff", "1"), 16), 0, "CapEff")
        self.assertEqual(int(st.get("CapPrm", "1"), 16), 0, "CapPrm")
        self.assertEqual(proc_root(pid), self.empty_dir,
                         "pre-auth child not chrooted to empty_dir")
        self.assertEqual(os.listdir(self.empty_dir), [],
                         "empty_dir is not empty")
        # it talks to the client and nothing else: no listening socket
        self.assertEqual(pids_holding_socket(
            [pid], listening_inodes(self.port)), [],
            "the pre-auth child holds the listening socket")
        # it is still the one serving: CAPA works, then QUIT ends it
        self.ok(c, "CAPA")
        c.read_multi()
        self.quit(c)
        self.assertTrue(wait_for(lambda: zombie_or_gone(pid), 5),
                        "pre-auth child still running after QUIT")

    def keeper_pids(self):
        master = self.daemon.proc.pid
        return [p for p in titled(descendants(master), "mboxpop3d: keeper")
                if not zombie_or_gone(p)]

    def delete_one(self, msgs, n):
        """A session on a fresh mailbox of msgs messages deletes message
        n; after QUIT the spool holds the others (an UPDATE through the
        keeper: its dotlock and journal)."""
        spool = fixtures.simple(msgs)
        acct = self.new_mailbox(spool)
        c = self.connect()
        self.login(acct, client=c)
        self.ok(c, f"DELE {n}")
        self.quit(c)
        self.assertEqual(self.env.read_spool(acct), spool.without([n]))

    def test_session_and_keeper(self):
        spool = fixtures.simple(2)
        acct = self.new_mailbox(spool)
        c = self.connect()
        pre, holders = self.preauth_pid(c)
        worker = int(proc_status(pre)["PPid"])
        self.login(acct, client=c)
        self.ok(c, "STAT")
        holders = self.session_pids(self.daemon, c)
        kids = descendants(self.daemon.proc.pid)
        sess = titled(holders, f"mboxpop3d: session {acct.name}")
        self.assertEqual(len(sess), 1, "one session process should hold the "
                         "connection; holders:\n" + describe(holders) +
                         "\nall:\n" + describe(kids))
        self.assertEqual(holders, sess, "processes other than the session "
                         "hold the client socket:\n" + describe(holders))
        self.assertTrue(zombie_or_gone(pre), "pre-auth child outlived login")
        # the worker that accepted the connection became the session
        self.assertEqual(sess, [worker], describe(kids))
        st = proc_status(sess[0])
        self.assertEqual(ids(st, "Uid"), [acct.uid] * 4, describe(sess))
        self.assertEqual(ids(st, "Gid"), [acct.gid] * 4, describe(sess))
        self.assertNotIn(self.spool_gid, ids(st, "Groups"),
                         "the session has the spool directory's group")
        self.assertTrue(set(ids(st, "Groups")) <= {acct.gid}, describe(sess))
        self.assertEqual(st.get("NoNewPrivs"), "1", describe(sess))
        self.assertEqual(int(st.get("CapEff", "1"), 16), 0, "CapEff")
        self.assertEqual(proc_root(sess[0]), "/")
        self.assertEqual(int(st["PPid"]), self.daemon.proc.pid)
        self.assertEqual(pids_holding_socket(
            sess, listening_inodes(self.port)), [],
            "the session holds the listening socket")
        # it has no child: no monitor, nothing left of the login
        self.assertEqual([p for p in kids if not zombie_or_gone(p) and
                          int((proc_status(p) or {}).get("PPid", 0)) ==
                          sess[0]], [], describe(kids))
        # one keeper for the daemon: preauth_user and the spool group
        keepers = self.keeper_pids()
        self.assertEqual(len(keepers), 1, describe(kids))
        kst = proc_status(keepers[0])
        uid, _ = self.nobody
        self.assertEqual(ids(kst, "Uid"), [uid] * 4,
                         "keeper uid\n" + describe(keepers))
        self.assertEqual(ids(kst, "Gid"), [self.spool_gid] * 4,
                         "keeper gid should be the spool dir's group\n"
                         + describe(keepers))
        self.assertEqual(ids(kst, "Groups"), [self.spool_gid],
                         describe(keepers))
        self.assertEqual(int(kst.get("CapEff", "1"), 16), 0, "keeper CapEff")
        self.assertEqual(kst.get("NoNewPrivs"), "1", describe(keepers))
        self.assertEqual(int(kst["PPid"]), self.daemon.proc.pid)
        self.assertEqual(pids_holding_socket(
            keepers, listening_inodes(self.port) +
            server_socket_inodes(self.port, c.sock.getsockname()[1])), [],
            "the keeper holds a listening or client socket")
        # the dotlock the session asked for was made by the keeper and is
        # gone after QUIT; UPDATE worked through it
        self.ok(c, "DELE 1")
        self.quit(c)
        self.assertEqual(self.env.read_spool(acct), spool.without([1]))
        self.assertFalse(os.path.exists(str(self.env.spool_path(acct)) +
                                        ".lock"), "dotlock left behind")
        self.assertTrue(wait_for(lambda: zombie_or_gone(sess[0]), 5),
                        "session still running after QUIT")
        self.assertEqual(self.keeper_pids(), keepers,
                         "the keeper serves the next session too")

    def test_killed_keeper_replaced(self):
        """A keeper that dies is replaced, and the idle workers holding its
        socket with it: the next login can still delete mail."""
        old = wait_for(self.keeper_pids, 5)
        self.assertTrue(old, describe(descendants(self.daemon.proc.pid)))
        master = self.daemon.proc.pid
        idle_before = [p for p in titled(descendants(master),
                                         "mboxpop3d: worker (idle)")]
        os.kill(old[0], signal.SIGKILL)
        new = wait_for(lambda: [p for p in self.keeper_pids()
                                if p not in old], 5)
        self.assertTrue(new, "no new keeper:\n" +
                        describe(descendants(master)))
        self.assertTrue(wait_for(lambda: all(zombie_or_gone(p)
                                             for p in idle_before), 5),
                        "idle workers of the dead keeper still idle:\n" +
                        describe(idle_before))
        self.delete_one(2, 2)
        self.assertIn("the keeper (pid", log_text(self.daemon))

    def test_keeper_replaced_at_sighup_drains_its_sessions(self):
        """SIGHUP starts a fresh keeper; the old one serves the session
        bound to it through its UPDATE, then exits."""
        old = wait_for(self.keeper_pids, 5)
        self.assertTrue(old, describe(descendants(self.daemon.proc.pid)))
        spool = fixtures.simple(3)
        acct = self.new_mailbox(spool)
        c = self.connect()
        self.login(acct, client=c)
        self.ok(c, "DELE 2")
        self.daemon.proc.send_signal(signal.SIGHUP)
        new = wait_for(lambda: [p for p in self.keeper_pids()
                                if p not in old], 5)
        self.assertTrue(new, "no new keeper after SIGHUP:\n" +
                        describe(descendants(self.daemon.proc.pid)))
        self.assertFalse(zombie_or_gone(old[0]),
                         "the old keeper left a session without its locks")
        self.quit(c)                     # UPDATE through the old keeper
        self.assertEqual(self.env.read_spool(acct), spool.without([2]))
        self.assertFalse(os.path.exists(str(self.env.spool_path(acct)) +
                                        ".lock"), "dotlock left behind")
        self.assertTrue(wait_for(lambda: zombie_or_gone(old[0]), 5),
                        "the old keeper outlived its last session")
        self.delete_one(2, 1)            # the next session: the new keeper
        self.assertEqual(self.keeper_pids(), new)

    def test_master_and_idle_worker_titles(self):
        master = self.daemon.proc.pid
        self.assertEqual(title(master), "mboxpop3d: master")
        st = proc_status(master)
        self.assertEqual(ids(st, "Uid"), [0] * 4)

        def idle():
            kids = [p for p in descendants(master)
                    if int((proc_status(p) or {}).get("PPid", 0)) == master]
            return titled(kids, "mboxpop3d: worker (idle)")
        workers = wait_for(idle, 5)
        self.assertTrue(workers, "no idle worker titled 'mboxpop3d: worker "
                        "(idle)':\n" + describe(descendants(master)))

    def test_busy_worker_not_titled_idle(self):
        """The worker that accepted a connection (the pre-auth child's
        parent, the connection's session-to-be) is not idle."""
        c = self.connect()
        pre, holders = self.preauth_pid(c)
        worker = int(proc_status(pre)["PPid"])
        self.assertIn(worker, holders)
        self.assertNotEqual(title(worker), "mboxpop3d: worker (idle)",
                            "a worker serving a connection is titled idle:\n"
                            + describe([worker, pre]))


# ---------------------------------------------------------------- 2

class PipelinedPass(ProcessCase):
    """Bytes that arrive with PASS belong to the session child."""

    def test_one_write_user_pass_stat_list_quit(self):
        spool = fixtures.simple(3)
        sizes = [wire_size(m) for m in spool.served]
        acct = self.new_mailbox(spool)
        c = self.connect()
        c.send_raw(f"USER {acct.name}\r\nPASS {acct.password}\r\nSTAT\r\n"
                   f"LIST\r\nQUIT\r\n".encode())
        self.assertTrue(c.readline_str().startswith("+OK"), c.transcript())
        r = c.readline_str()
        self.assertTrue(r.startswith("+OK") and "3 messages" in r,
                        self.explain(c, "PASS", r, "+OK ... 3 messages"))
        self.assertEqual(c.readline_str(), f"+OK 3 {sum(sizes)}")
        self.assertTrue(c.readline_str().startswith("+OK"))
        self.assertEqual(c.read_multi(), [f"{i + 1} {s}".encode()
                                          for i, s in enumerate(sizes)])
        r = c.readline_str()
        self.assertTrue(r.startswith("+OK"), self.explain(c, "QUIT", r, "+OK"))
        self.assertEqual(drain_eof(c, 5), [])
        self.assertEqual(self.env.read_spool(acct), spool.data)

    def test_before_greeting_with_partial_line(self):
        """Everything sent before the greeting is read, and a command
        split right after PASS is completed in the session child."""
        spool = fixtures.simple(2)
        acct = self.new_mailbox(spool)
        c = self.raw_client(self.port, read_greeting=False)
        c.send_raw(f"USER {acct.name}\r\nPASS {acct.password}\r\nDELE 2\r\n"
                   f"ST".encode())
        self.assertEqual(c.readline_str(), GREETING)
        self.assertTrue(c.readline_str().startswith("+OK"))
        r = c.readline_str()
        self.assertTrue(r.startswith("+OK"), self.explain(c, "PASS", r, "+OK"))
        self.assertTrue(c.readline_str().startswith("+OK"))      # DELE 2
        c.send_raw(b"AT\r\nQUIT\r\n")
        self.assertEqual(c.readline_str(), f"+OK 1 {wire_size(spool.served[0])}")
        self.assertTrue(c.readline_str().startswith("+OK"))      # QUIT
        self.assertEqual(drain_eof(c, 5), [])
        self.assertEqual(self.env.read_spool(acct), spool.without([2]))


# ---------------------------------------------------------------- 3

class MaxChildren(ProcessCase):

    def test_refused_at_max_children_then_served(self):
        d = self.start("maxchildren", {"max_children": "2", "min_spare": "1",
                                       "max_spare": "2"})
        a, b = (self.new_mailbox(fixtures.simple(1)) for _ in range(2))
        settle(d)
        ca, _ = self.login(a, port=d.port)
        cb, _ = self.login(b, port=d.port)
        since = d.log_size()
        t0 = time.monotonic()
        c3 = self.raw_client(d.port)
        self.assertRefused(c3, REFUSED_FULL, "3rd connection at "
                           "max_children=2", t0)
        self.assertTrue(wait_log(d, r"refused a connection: max_children=2 "
                                    r"reached", since),
                        "no log line for the refusal:\n" + d.log_tail())
        # the two sessions are untouched
        self.ok(ca, "NOOP")
        self.ok(cb, "NOOP")
        self.quit(ca)

        def served():
            try:
                c = Client(d.port, timeout=3)
            except OSError:
                return None
            if c.greeting == GREETING:
                return c
            c.close()
            return None
        c4 = wait_for(served, 5, 0.1)
        self.assertTrue(c4, "not served again 5 s after a session quit\n"
                        + d.log_tail())
        self._clients.append(c4)
        c4.cmd("QUIT")
        self.ok(cb, "NOOP")
        self.quit(cb)


# ---------------------------------------------------------------- 4

class MaxPerIp(ProcessCase):

    def test_third_connection_from_address_refused(self):
        v6 = ipv6_loopback()
        port6 = free_port6() if v6 else None
        settings = {"max_per_ip": "2"}
        d = ProcDaemon(self.env, "perip", settings)
        if v6:
            d.settings["listen"] = f"{HOST}:{d.port} [::1]:{port6}"
            self.env.write_conf(d.conf, d.settings)
        self.addCleanup(d.stop)
        d.start()
        settle(d)
        since = d.log_size()
        c1 = self.raw_client(d.port)
        c2 = self.raw_client(d.port)
        self.assertGreeted(c1, "1st connection")
        self.assertGreeted(c2, "2nd connection")
        c3 = self.raw_client(d.port)
        self.assertRefused(c3, REFUSED_PER_IP, "3rd from 127.0.0.1")
        self.assertTrue(wait_log(d, r"refused 127\.0\.0\.1: more than "
                                    r"max_per_ip=2", since), d.log_tail())
        # a logged-in session counts as well
        acct = self.new_mailbox(fixtures.simple(1))
        self.quit(c1)

        def served():
            try:
                c = Client(d.port, timeout=3)
            except OSError:
                return None
            if c.greeting == GREETING:
                return c
            c.close()
            return None
        c4 = wait_for(served, 5, 0.1)
        self.assertTrue(c4, "not served after one of the two quit")
        self._clients.append(c4)
        self.login(acct, client=c4)
        c5 = self.raw_client(d.port)
        self.assertRefused(c5, REFUSED_PER_IP, "3rd from 127.0.0.1 (one "
                           "logged in)")
        self.ok(c4, "STAT")
        if not v6:
            self.skipTest("IPv6 loopback unavailable: IPv4 part passed")
        # ::1 is another address: served while 127.0.0.1 is at its limit,
        # and limited by itself
        v1 = self.raw_client(port6, host="::1")
        self.assertGreeted(v1, "1st connection from ::1")
        v2 = self.raw_client(port6, host="::1")
        self.assertGreeted(v2, "2nd connection from ::1")
        v3 = self.raw_client(port6, host="::1")
        self.assertRefused(v3, REFUSED_PER_IP, "3rd from ::1")
        self.assertTrue(wait_log(d, r"connect from ::1$", since), d.log_tail())

    def test_ipv6_only_daemon(self):
        if not ipv6_loopback():
            self.skipTest("IPv6 loopback unavailable")
        port6 = free_port6()
        d = self.start("v6only", {"listen": f"[::1]:{port6}"},
                       probe_host="::1", probe_port=port6)
        self.assertFalse(port_open(d.port), "IPv4 port open")
        spool = fixtures.simple(2)
        acct = self.new_mailbox(spool)
        since = d.log_size()
        c = self.raw_client(port6, host="::1")
        self.assertGreeted(c, "::1")
        self.login(acct, client=c)
        self.ok(c, "DELE 1")
        self.quit(c)
        self.assertEqual(self.env.read_spool(acct), spool.without([1]))
        self.assertTrue(wait_log(d, rf"session end user={acct.name} peer=::1 ",
                                 since), d.log_tail())


class ReconnectAtOnce(ProcessCase):
    """A connection the server has closed (the client saw EOF after QUIT)
    no longer counts against the limits: a client that reconnects at once
    is served.  10 rounds each (the window is a race)."""

    ROUNDS = 10

    def rounds(self, d, what):
        refused = []
        for i in range(self.ROUNDS):
            c = self.raw_client(d.port)
            if c.greeting != GREETING:
                refused.append((i + 1, c.greeting))
                drain_eof(c, 5)
                time.sleep(0.3)       # let the pool catch up, go on
                continue
            self.ok(c, "QUIT")
            self.assertEqual(drain_eof(c, 5), [])
            c.close()
        self.assertEqual(refused, [], f"{what}: a client that QUIT, saw the "
                         f"connection closed and reconnected at once was "
                         f"refused in {len(refused)} of {self.ROUNDS} rounds "
                         f"(round, reply): {refused}\n" + d.log_tail(8))

    def test_max_per_ip_slot_freed_at_close(self):
        d = self.start("reconnect-perip", {"max_per_ip": "1"})
        settle(d)
        self.rounds(d, "max_per_ip = 1")

    def test_max_children_slot_freed_at_close(self):
        d = self.start("reconnect-children", {"max_children": "2",
                                              "min_spare": "1",
                                              "max_spare": "2"})
        acct = self.new_mailbox(fixtures.simple(1))
        settle(d)
        held, _ = self.login(acct, port=d.port)       # 1 of 2 in use
        self.rounds(d, "max_children = 2, one session open")
        self.ok(held, "NOOP")


# ---------------------------------------------------------------- 5

class Shedding(ProcessCase):

    def test_oldest_preauth_connections_shed(self):
        d = self.start("shed", {"max_children": "5", "min_spare": "1",
                                "max_spare": "2"})
        acct = self.new_mailbox(fixtures.simple(1))
        settle(d)
        sess, _ = self.login(acct, port=d.port)
        since = d.log_size()
        pre = []
        for i in range(4):                 # 5 of 5 busy: over 80 %
            c = self.raw_client(d.port, timeout=15)
            self.assertGreeted(c, f"pre-auth connection {i + 1}")
            pre.append(c)
            time.sleep(0.5)
        t0 = time.monotonic()
        # the 1st is 7 s old at the deadline, the grace is 5 s
        got = []
        for i in (0, 1):
            try:
                line = pre[i].readline_str(timeout=max(0.1, 6 - (time.monotonic()
                                                                  - t0)))
            except socket.timeout:
                self.fail(f"pre-auth connection {i + 1} (of 4, 0.5 s apart) "
                          f"not shed ~7 s after it opened\n" + d.log_tail())
            except ConnectionClosed:
                line = "<closed without a word>"
            got.append(line)
            self.assertEqual(line, SHED, f"pre-auth connection {i + 1}")
            self.assertEqual(drain_eof(pre[i], 5), [])
        self.assertTrue(wait_log(d, r"pool nearly full \(\d+ of "
                                    r"max_children=5 busy\)", since),
                        "no 'pool nearly full' log line\n" + d.log_tail())
        # past the grace for all of them, and 3 of 5 busy: no more shedding
        time.sleep(max(0.0, 8.0 - (time.monotonic() - t0 + 2.0)))
        for i in (2, 3):
            self.ok(pre[i], "CAPA")
            pre[i].read_multi()
        # the logged-in session was not touched
        self.ok(sess, "NOOP")
        self.quit(sess)
        log = log_text(d, since)
        self.assertEqual(len(re.findall(r"pool nearly full", log)), 2,
                         "expected exactly 2 sheddings:\n" + log)


# ---------------------------------------------------------------- 6

class SessionTimeLimit(ProcessCase):

    daemon_settings = {"max_session_time": "3", "idle_timeout": "600"}

    def test_busy_session_ended_nothing_deleted(self):
        spool = fixtures.simple(2)
        acct = self.new_mailbox(spool)
        since = self.daemon.log_size()
        c, _ = self.login(acct)
        t0 = time.monotonic()
        self.ok(c, "DELE 1")
        pre = self.connect()                  # also in AUTHORIZATION
        time.sleep(0.25)                      # stay clear of the 3.0 s edge
        end = pre_end = None
        while time.monotonic() - t0 < 8 and (end is None or pre_end is None):
            if end is None:
                try:
                    r = c.cmd("NOOP")
                except (ConnectionClosed, ConnectionResetError):
                    r = "<closed>"
                if r != "+OK":
                    end = (time.monotonic() - t0, r)
            if pre_end is None:
                try:
                    r = pre.cmd("CAPA")
                    if r.startswith("+OK"):
                        pre.read_multi()
                except (ConnectionClosed, ConnectionResetError):
                    r = "<closed>"
                if not r.startswith("+OK"):
                    pre_end = (time.monotonic() - t0, r)
            time.sleep(0.5)
        self.assertIsNotNone(end, "session still open 8 s after login with "
                                  "max_session_time = 3\n" + c.transcript())
        dt, r = end
        self.assertEqual(r, EXPIRED, c.transcript())
        self.assertGreater(dt, 2.5, f"ended after {dt:.2f}s")
        self.assertLess(dt, 5.0, f"ended after {dt:.2f}s")
        self.assertEqual(drain_eof(c, 5), [])
        self.assertEqual(self.env.read_spool(acct), spool.data,
                         "the time limit deleted mail")
        self.assertTrue(wait_log(self.daemon, rf"session end user={acct.name}"
                                 rf" .*reason=session-time", since),
                        self.daemon.log_tail())
        # a connection that never logs in is bounded the same way
        self.assertIsNotNone(pre_end, "pre-auth connection open 8 s")
        self.assertTrue(pre_end[1].startswith("-ERR [SYS/TEMP]") or
                        pre_end[1] == "<closed>", pre.transcript())


# ---------------------------------------------------------------- 7

def shell_passing_fd(fd, script):
    """argv that runs script with fd moved to 3 (bash: dash knows only
    single-digit descriptors)."""
    shell = shutil.which("bash") or "/bin/sh"
    if fd > 9 and shell.endswith("/sh"):
        raise unittest.SkipTest("no bash, and the fd is above 9")
    if fd == 3:
        return [shell, "-c", script]
    return [shell, "-c", f"exec 3<&{fd} {fd}<&-; {script}"]


class SocketActivation(ProcessCase):

    def notify_socket(self):
        path = str(self.env.dir / f"notify-{time.monotonic_ns()}.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(path)
        os.chmod(path, 0o666)
        self.addCleanup(s.close)
        return s, path

    def expect_state(self, ns, want, what, timeout=5):
        ns.settimeout(timeout)
        try:
            msg = ns.recv(4096).decode()
        except socket.timeout:
            self.fail(f"no notification {want!r} {what} within {timeout}s")
        self.assertIn(want, msg.split("\n"), f"{what}: got {msg!r}")
        return msg

    def test_passed_socket_and_notify(self):
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(lsock.close)
        lsock.bind((HOST, 0))
        lsock.listen(16)
        port = lsock.getsockname()[1]
        ns, npath = self.notify_socket()
        environ = dict(os.environ, LISTEN_FDS="1", NOTIFY_SOCKET=npath)
        environ.pop("LISTEN_PID", None)
        d = ProcDaemon(self.env, "socketact", probe_port=port,
                       environ=environ, pass_fds=(lsock.fileno(),))
        d.argv = shell_passing_fd(
            lsock.fileno(), f"LISTEN_PID=$$ exec {DAEMON} -f -d -c {d.conf}")
        self.addCleanup(d.stop)
        d.start()
        lsock.close()          # the daemon has it now
        self.expect_state(ns, "READY=1", "after start")
        self.assertFalse(port_open(d.port),
                         "the config's listen address is bound too")
        self.assertIn("socket activation: 1 listening socket", log_text(d))
        spool = fixtures.simple(2)
        acct = self.new_mailbox(spool)
        c, _ = self.login(acct, port=port)
        self.ok(c, "DELE 2")
        self.quit(c)
        self.assertEqual(self.env.read_spool(acct), spool.without([2]))
        # SIGHUP: RELOADING=1, then READY=1, still serving
        d.proc.send_signal(signal.SIGHUP)
        self.expect_state(ns, "RELOADING=1", "after SIGHUP")
        self.expect_state(ns, "READY=1", "after the reload")
        c = self.raw_client(port)
        self.assertGreeted(c, "after SIGHUP")
        c.cmd("QUIT")
        # SIGTERM: STOPPING=1, exit 0, the passed socket closed
        d.proc.send_signal(signal.SIGTERM)
        self.expect_state(ns, "STOPPING=1", "after SIGTERM")
        rc = wait_exit(d.proc, 12)
        self.assertEqual(rc, 0, "exit status after SIGTERM\n" + d.log_tail())
        self.assertFalse(port_open(port), "passed socket still accepting")

    def test_listen_pid_of_another_process_ignored(self):
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(lsock.close)
        lsock.bind((HOST, 0))
        lsock.listen(16)
        environ = dict(os.environ, LISTEN_FDS="1")
        environ.pop("NOTIFY_SOCKET", None)
        d = ProcDaemon(self.env, "socketact-other", environ=environ,
                       pass_fds=(lsock.fileno(),))
        d.argv = shell_passing_fd(
            lsock.fileno(), f"LISTEN_PID=1 exec {DAEMON} -f -d -c {d.conf}")
        self.addCleanup(d.stop)
        d.start()              # probes the config's port
        self.assertNotIn("socket activation", log_text(d))


# ---------------------------------------------------------------- 8

class InetdSocket(ProcessCase):
    """-i with stdin/stdout a connected socket (as inetd passes it)."""

    def run_inetd(self, stderr_is_socket=False):
        ours, theirs = socket.socketpair()
        self.addCleanup(ours.close)
        self.inetd_inode = os.fstat(theirs.fileno()).st_ino
        log = self.env.dir / "inetd-socket.log"
        with open(log, "ab") as logf:
            proc = subprocess.Popen([DAEMON, "-i", "-c",
                                     str(self.daemon.conf)],
                                    stdin=theirs, stdout=theirs,
                                    stderr=theirs if stderr_is_socket
                                    else logf,
                                    start_new_session=True, cwd=REPO)
        theirs.close()

        def cleanup():
            if proc.poll() is None:
                kids = descendants(proc.pid)
                proc.kill()
                wait_exit(proc, 5)
                for k in kids:
                    try:
                        os.kill(k, signal.SIGKILL)
                    except OSError:
                        pass
        self.addCleanup(cleanup)
        c = Client.__new__(Client)        # a Client on our end of the pair
        c.port, c.timeout, c.sock = None, 10, ours
        c.buf, c.scan_from, c.eof, c.log = bytearray(), 0, False, []
        c.greeting = c.readline_str()
        return proc, c, log

    def test_keeper_does_not_hold_the_client(self):
        """inetd may pass the socket as stderr as well: the keeper started
        for the connection keeps none of the three."""
        spool = fixtures.simple(2)
        acct = self.new_mailbox(spool)
        proc, c, _ = self.run_inetd(stderr_is_socket=True)
        self.login(acct, client=c)
        self.ok(c, "STAT")
        kids = descendants(proc.pid)
        keepers = [p for p in titled(kids, "mboxpop3d: keeper")
                   if not zombie_or_gone(p)]
        self.assertEqual(len(keepers), 1, describe([proc.pid] + kids))
        self.assertEqual(pids_holding_socket([proc.pid],
                                             [self.inetd_inode]),
                         [proc.pid], "the session should hold the socket")
        self.assertEqual(pids_holding_socket(keepers, [self.inetd_inode]),
                         [], "the keeper holds the client's socket")
        self.ok(c, "DELE 1")
        self.quit(c)
        self.assertEqual(wait_exit(proc, 10), 0)
        self.assertEqual(self.env.read_spool(acct), spool.without([1]))

    def test_session_over_socketpair(self):
        spool = fixtures.simple(3)
        acct = self.new_mailbox(spool)
        proc, c, log = self.run_inetd()
        self.assertEqual(c.greeting, GREETING, c.transcript())
        if IS_ROOT:
            pw = pwd.getpwnam(self.daemon.settings["preauth_user"])
            pre = titled(descendants(proc.pid),
                         "mboxpop3d: pre-auth unknown") or \
                [p for p in descendants(proc.pid)
                 if (title(p) or "").startswith("mboxpop3d: pre-auth")]
            self.assertEqual(len(pre), 1, describe(descendants(proc.pid)))
            st = proc_status(pre[0])
            self.assertEqual(ids(st, "Uid"), [pw.pw_uid] * 4, describe(pre))
            self.assertEqual(st.get("NoNewPrivs"), "1")
            self.assertEqual(proc_root(pre[0]), os.path.realpath(
                self.daemon.settings["empty_dir"]))
        self.login(acct, client=c)
        self.assertEqual(c.cmd("STAT"),
                         f"+OK 3 {sum(map(wire_size, spool.served))}")
        if IS_ROOT:
            # the process inetd started is the session now, and its one
            # child is the keeper it started for this connection
            kids = descendants(proc.pid)
            self.assertEqual(title(proc.pid),
                             f"mboxpop3d: session {acct.name}",
                             describe([proc.pid] + kids))
            st = proc_status(proc.pid)
            self.assertEqual(ids(st, "Uid"), [acct.uid] * 4,
                             describe([proc.pid]))
            self.assertEqual(ids(st, "Gid"), [acct.gid] * 4,
                             describe([proc.pid]))
            self.assertNotIn(os.stat(self.env.spool_dir).st_gid,
                             ids(st, "Groups"))
            self.assertEqual(st.get("NoNewPrivs"), "1")
            keepers = [p for p in titled(kids, "mboxpop3d: keeper")
                       if not zombie_or_gone(p)]
            self.assertEqual(len(keepers), 1, describe(kids))
            kst = proc_status(keepers[0])
            self.assertEqual(ids(kst, "Uid"), [pw.pw_uid] * 4,
                             describe(keepers))
            self.assertEqual(ids(kst, "Gid"),
                             [os.stat(self.env.spool_dir).st_gid] * 4,
                             describe(keepers))
        self.ok(c, "DELE 2")
        self.quit(c)
        rc = wait_exit(proc, 10)
        self.assertEqual(rc, 0, log.read_text(errors="replace")[-2000:])
        self.assertEqual(self.env.read_spool(acct), spool.without([2]))
        self.assertEqual(sanitizer_lines(log.read_text(errors="replace")), [])


# ---------------------------------------------------------------- 9

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v2(src, dst, sport, dport, local=False, tlvs=b""):
    if local:
        return V2_SIG + bytes([0x20, 0x00]) + struct.pack("!H", 0)
    fam = socket.AF_INET6 if ":" in src else socket.AF_INET
    body = (socket.inet_pton(fam, src) + socket.inet_pton(fam, dst) +
            struct.pack("!HH", sport, dport) + tlvs)
    return V2_SIG + bytes([0x21, 0x21 if fam == socket.AF_INET6 else 0x11]) \
        + struct.pack("!H", len(body)) + body


def proxy_v1(src, dst="192.0.2.1", sport=5000, dport=110):
    fam = "TCP6" if ":" in src else "TCP4"
    return f"PROXY {fam} {src} {dst} {sport} {dport}\r\n".encode()


class ProxyBase(ProcessCase):
    """A daemon of its own per class, probed with "PROXY UNKNOWN"."""

    daemon_name = None
    settings = None

    def setUp(self):
        super().setUp()
        d = self.env._shared.get(self.daemon_name)
        if d is None or not d.alive():
            d = ProcDaemon(self.env, self.daemon_name, self.settings,
                           probe_prefix=b"PROXY UNKNOWN\r\n").start()
            self.env._shared[self.daemon_name] = d
        self.pd = d


class ProxyTrusted(ProxyBase):

    daemon_name = "proxy"
    settings = {"proxy_trusted": "127.0.0.1"}

    def proxied_session(self, header, peer, split=False):
        """A full session behind header; checks both log lines."""
        d = self.pd
        spool = fixtures.simple(2)
        acct = self.new_mailbox(spool)
        since = d.log_size()
        c = self.raw_client(d.port, read_greeting=False)
        if split:
            c.send_raw(header[:9])
            time.sleep(0.2)
            c.send_raw(header[9:])
        else:
            c.send_raw(header + b"CAPA\r\n")     # POP3 right behind it
        self.assertEqual(c.readline_str(), GREETING, c.transcript())
        if not split:
            self.assertTrue(c.readline_str().startswith("+OK"))
            c.read_multi()
        self.login(acct, client=c)
        self.ok(c, "DELE 1")
        self.quit(c)
        self.assertEqual(self.env.read_spool(acct), spool.without([1]))
        p = re.escape(peer)
        self.assertTrue(wait_log(d, rf"connect from {p}$", since),
                        f"no 'connect from {peer}'\n" + log_text(d, since))
        self.assertTrue(wait_log(d, rf"session end user={acct.name} "
                                    rf"peer={p} ", since),
                        f"no session end with peer={peer}\n"
                        + log_text(d, since))

    def test_v1_header(self):
        self.proxied_session(proxy_v1("198.51.100.7"), "198.51.100.7")

    def test_v1_header_in_two_writes(self):
        self.proxied_session(proxy_v1("198.51.100.8"), "198.51.100.8",
                             split=True)

    def test_v1_tcp6(self):
        self.proxied_session(proxy_v1("2001:db8::7", "2001:db8::1"),
                             "2001:db8::7")

    def test_v1_unknown_keeps_peer(self):
        self.proxied_session(b"PROXY UNKNOWN\r\n", "127.0.0.1")

    def test_v2_header(self):
        self.proxied_session(proxy_v2("198.51.100.9", "192.0.2.1", 5001, 110),
                             "198.51.100.9")

    def test_v2_tcp6_with_tlv(self):
        alpn = b"\x01" + struct.pack("!H", 4) + b"pop3"
        self.proxied_session(proxy_v2("2001:db8::9", "2001:db8::1", 5002, 995,
                                      tlvs=alpn), "2001:db8::9")

    def test_v2_local_keeps_peer(self):
        self.proxied_session(proxy_v2(None, None, 0, 0, local=True),
                             "127.0.0.1")

    def test_missing_or_bad_header_dropped(self):
        d = self.pd
        since = d.log_size()
        silent = self.raw_client(d.port, read_greeting=False)   # says nothing
        t0 = time.monotonic()
        bad = [b"USER alice\r\n", b"GARBAGE\r\n" * 3,
               b"PROXY TCP4 198.51.100.7 192.0.2.1 5000 110\n",   # bare LF
               b"PROXY TCP4 1.2.3 192.0.2.1 5000 110\r\n",
               b"PROXY TCP4 198.51.100.7 192.0.2.1 05000 110\r\n",
               V2_SIG + b"\x31\x11\x00\x0c" + b"\0" * 12]         # version 3
        for i, junk in enumerate(bad):
            c = self.raw_client(d.port, read_greeting=False)
            c.send_raw(junk)
            try:
                lines = c.read_until_eof(5)
            except socket.timeout:
                self.fail(f"bad header {junk!r}: connection kept open")
            except ConnectionResetError:
                lines = []
            self.assertEqual(lines, [], f"bad header {junk!r} was answered")
        try:
            lines = silent.read_until_eof(10)
        except socket.timeout:
            self.fail("a trusted peer that sends nothing is kept > 10 s")
        except ConnectionResetError:
            lines = []
        self.assertEqual(lines, [], "a trusted peer that sent no header got "
                                    "an answer")
        self.assertGreater(time.monotonic() - t0, 3,
                           "the silent peer was dropped too soon")
        log = log_text(d, since)
        n = len(re.findall(r"dropped a connection from proxy 127\.0\.0\.1: "
                           r"no valid PROXY header", log))
        self.assertEqual(n, len(bad) + 1, log)
        self.assertNotIn("connect from", log)


class ProxyUntrusted(ProcessCase):

    daemon_settings = {"proxy_trusted": "192.0.2.0/24 2001:db8::/32"}

    def test_header_from_untrusted_peer_is_pop3(self):
        spool = fixtures.simple(1)
        acct = self.new_mailbox(spool)
        since = self.daemon.log_size()
        c = self.connect()                     # greeted at once
        self.err(c, "PROXY TCP4 198.51.100.7 192.0.2.1 5000 110")
        self.err(c, "PROXY UNKNOWN")
        self.login(acct, client=c)
        self.ok(c, "STAT")
        self.quit(c)
        # a v2 header's signature holds the line "QUIT" (so that a server
        # that does not expect it hangs up): it ends the session
        v2 = self.connect()
        v2.send_raw(proxy_v2("198.51.100.7", "192.0.2.1", 5000, 110))
        try:
            lines = v2.read_until_eof(5)
        except socket.timeout:
            self.fail("v2 header from an untrusted peer: connection kept "
                      "open\n" + v2.transcript())
        self.assertTrue(lines and lines[-1].startswith("+OK"),
                        v2.transcript())
        self.assertTrue(all(l.startswith("-ERR") for l in lines[:-1]),
                        v2.transcript())
        log = log_text(self.daemon, since)
        self.assertNotRegex(log, r"(connect from|peer=)198\.51\.100\.7")
        self.assertTrue(wait_log(self.daemon, rf"session end user={acct.name} "
                                 rf"peer=127\.0\.0\.1 ", since),
                        log_text(self.daemon, since))


class ProxyPerIp(ProxyBase):
    """max_per_ip counts the address the proxy names."""

    daemon_name = "proxy-perip"
    settings = {"proxy_trusted": "127.0.0.1", "max_per_ip": "1"}

    def test_per_ip_counts_proxied_address(self):
        d = self.pd
        cs = []
        for src in ("198.51.100.7", "198.51.100.8"):
            c = self.raw_client(d.port, read_greeting=False)
            c.send_raw(proxy_v1(src))
            self.assertEqual(c.readline_str(), GREETING,
                             f"proxied client {src} (max_per_ip = 1)")
            cs.append(c)
        c = self.raw_client(d.port, read_greeting=False)
        c.send_raw(proxy_v2("198.51.100.7", "192.0.2.1", 6000, 110))
        self.assertRefused(Greeted(c), REFUSED_PER_IP,
                           "2nd client from 198.51.100.7")
        # a v4-mapped IPv6 source is the same address
        c = self.raw_client(d.port, read_greeting=False)
        c.send_raw(proxy_v1("::ffff:198.51.100.8", "2001:db8::1"))
        self.assertRefused(Greeted(c), REFUSED_PER_IP,
                           "::ffff:198.51.100.8 after 198.51.100.8")
        # the same /64 counts as one address
        c6 = self.raw_client(d.port, read_greeting=False)
        c6.send_raw(proxy_v1("2001:db8:0:1::7", "2001:db8::1"))
        self.assertEqual(c6.readline_str(), GREETING)
        c = self.raw_client(d.port, read_greeting=False)
        c.send_raw(proxy_v1("2001:db8:0:1::8", "2001:db8::1"))
        self.assertRefused(Greeted(c), REFUSED_PER_IP, "same /64")
        c = self.raw_client(d.port, read_greeting=False)
        c.send_raw(proxy_v1("2001:db8:0:2::8", "2001:db8::1"))
        self.assertEqual(c.readline_str(), GREETING, "another /64")


def Greeted(c):
    """c with its first line read into c.greeting."""
    try:
        c.greeting = c.readline_str()
    except (ConnectionClosed, ConnectionResetError):
        c.greeting = "<closed>"
    return c


# ---------------------------------------------------------------- 10

def big_spool():
    """About 20 MB; deleting message 1 moves almost all of it."""
    return Spool([message("first", body="x\n")] +
                 [message(f"big {i}", body=(bytes([97 + i]) * 999 + b"\n")
                          * 2000) for i in range(10)])


class SigtermDuringUpdate(ProcessCase):
    """SIGTERM to the master right after QUIT (0, 20, 100 ms: the UPDATE of
    20 MB takes ~0.2 s here) and once the UPDATE's journal exists.  The
    spool is the one before or the one after, matching what the client was
    told; an UPDATE that has begun completes (server.h)."""

    DELAYS = (0.0, 0.02, 0.1, "journal")

    def test_spool_untouched_or_updated(self):
        spool = big_spool()
        after = spool.without([1])
        for k, delay in enumerate(self.DELAYS):
            acct = self.new_mailbox(spool)
            journal = self.env.spool_dir / f".{acct.name}.mboxpop3d-journal"
            d = self.start(f"sigterm-update-{k}")
            c, _ = self.login(acct, port=d.port)
            self.ok(c, "DELE 1")
            c.send(b"QUIT")
            if delay == "journal":
                self.assertTrue(wait_for(journal.exists, 5, 0.0005),
                                "the UPDATE's journal never appeared")
            elif delay:
                time.sleep(delay)
            d.proc.send_signal(signal.SIGTERM)
            try:
                lines = drain_eof(c, 15)
            except socket.timeout:
                self.fail(f"delay {delay}: connection open 15 s after "
                          f"SIGTERM\n" + d.log_tail())
            rc = wait_exit(d.proc, 15)
            self.assertIsNotNone(rc, f"delay {delay}: master still running "
                                     f"15 s after SIGTERM")
            self.assertEqual(rc, 0, d.log_tail())
            got = self.env.read_spool(acct)
            what = f"SIGTERM {delay} after QUIT (reply {lines!r})"
            self.assertIn(got, (spool.data, after),
                          f"{what}: spool damaged (length {len(got)}, before "
                          f"{len(spool.data)}, after {len(after)})")
            updated = got == after
            if lines and lines[0].startswith("+OK"):
                self.assertTrue(updated, f"{what}: +OK but not updated")
            elif lines and "nothing deleted" in lines[0]:
                self.assertFalse(updated, f"{what}: 'nothing deleted' but "
                                          f"message 1 is gone")
            if delay == "journal":
                self.assertTrue(updated and lines[:1] and
                                lines[0].startswith("+OK"),
                                f"{what}: an UPDATE under way did not "
                                f"complete")
            left = [p.name for p in self.env.spool_dir.iterdir()
                    if acct.name in p.name and p.name != acct.name]
            self.assertEqual(left, [], f"{what}: files left: {left}")
            d.stop()


# ---------------------------------------------------------------- 11

class PidFile(ProcessCase):

    def test_detached_daemon_writes_and_removes_pid_file(self):
        rundir = self.env.dir / "run"
        rundir.mkdir(exist_ok=True)
        pidfile = rundir / "mboxpop3d-e2e.pid"
        pidfile.write_text("999999\n")            # stale: overwritten
        asan_dir = self.env.dir / "asan-pidfile"
        asan_dir.mkdir(exist_ok=True)
        d = Daemon(self.env, "pidfile", {"pid_file": str(pidfile)})
        environ = dict(os.environ)
        for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
            environ[var] = (environ.get(var, "") +
                            f":log_path={asan_dir}/report").lstrip(":")
        environ.pop("LISTEN_PID", None)
        environ.pop("NOTIFY_SOCKET", None)
        pids = set()

        def stop_all():
            for p in sorted(pids):
                if not zombie_or_gone(p):
                    try:
                        os.kill(p, signal.SIGKILL)
                    except OSError:
                        pass
        self.addCleanup(stop_all)
        r = subprocess.run([DAEMON, "-c", str(d.conf)], cwd=REPO, env=environ,
                           stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=15, start_new_session=True)
        self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))

        def read_pid():
            try:
                text = pidfile.read_text()
            except OSError:
                return None
            return int(text) if re.fullmatch(r"\d+\n", text) and \
                text != "999999\n" else None
        pid = wait_for(read_pid, 10)
        self.assertTrue(pid, f"pid_file not written: {pidfile.read_text()!r}")
        pids.add(pid)
        self.assertEqual(title(pid), "mboxpop3d: master",
                         "the pid_file's pid is not the master: "
                         + describe([pid]))
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        self.assertEqual(int(fields[3]), pid, "the master is not a session "
                                              "leader (setsid)")
        self.assertNotEqual(int(fields[1]), os.getpid(),
                            "the daemon is still our child")

        def serving():
            try:
                c = Client(d.port, timeout=2)
            except OSError:
                return False
            ok = c.greeting == GREETING
            c.cmd("QUIT")
            c.close()
            return ok
        self.assertTrue(wait_for(serving, 10, 0.1), "detached daemon not "
                                                    "serving")
        kids = descendants(pid)
        pids.update(kids)
        self.assertTrue(kids, "no workers")
        os.kill(pid, signal.SIGTERM)
        gone = wait_for(lambda: zombie_or_gone(pid), 12)
        self.assertTrue(gone, "master still running 12 s after SIGTERM")
        self.assertFalse(pidfile.exists(), "pid_file not removed at exit")
        left = [k for k in kids if not wait_for(lambda: zombie_or_gone(k), 3)]
        self.assertEqual(left, [], "workers outlived the master:\n"
                         + describe(left))
        self.assertFalse(port_open(d.port))
        reports = [p for p in asan_dir.iterdir()]
        self.assertEqual(reports, [], "sanitizer reports from the detached "
                         "daemon:\n" + "\n".join(
                             p.read_text(errors="replace")[:2000]
                             for p in reports))

    def test_foreground_writes_no_pid_file(self):
        pidfile = self.env.dir / "run-fg.pid"
        d = self.start("pidfile-fg", {"pid_file": str(pidfile)})
        self.assertTrue(d.alive())
        self.assertFalse(pidfile.exists(), "-f wrote the pid_file")


if __name__ == "__main__":
    unittest.main()
