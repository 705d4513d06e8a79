"""Crash safety of UPDATE (DESIGN.md, mailbox engine, point 6): the
session is killed with SIGKILL during the in-place rewrite (and during the
recovery the next login runs); afterwards the mailbox must be exactly the
one before or the one after the UPDATE, never anything else."""

import os
import signal
import subprocess
import time
import unittest

from harness import (POP3TestCase, Spool, ConnectionClosed, DAEMON, message,
                     retr_bytes, wire_size, descendants, proc_creds,
                     sanitizer_lines, server_socket_inodes,
                     pids_holding_socket)

DELETED = [1, 4]


class CrashCheck(POP3TestCase):

    def check_consistent(self, acct, spool, what):
        """Logs in (the daemon recovers here), checks every message is
        served byte-exact from the before- or the after-UPDATE mailbox,
        and that the file is then exactly one of the two."""
        before = list(spool.served)
        after = [m for i, m in enumerate(spool.served, 1) if i not in DELETED]
        c, _ = self.login(acct)
        stat = self.ok(c, "STAT")
        states = {f"+OK {len(before)} {sum(map(wire_size, before))}": before,
                  f"+OK {len(after)} {sum(map(wire_size, after))}": after}
        self.assertIn(stat, states, f"{what}: mailbox is neither the one "
                                    f"before nor the one after the UPDATE")
        for i, m in enumerate(states[stat], 1):
            r, raw = self.multi(c, f"RETR {i}", raw=True)
            self.assertBytesEqual(raw, retr_bytes(m), f"{what}: RETR {i}")
        self.quit(c)
        got = self.env.read_spool(acct)
        self.assertIn(got, (spool.data, spool.without(DELETED)),
                      f"{what}: spool bytes are neither before nor after "
                      f"(length {len(got)})")
        left = [p.name for p in self.env.spool_dir.iterdir()
                if acct.name in p.name and p.name != acct.name]
        self.assertFalse([n for n in left if "journal" in n],
                         f"{what}: journal left after recovery: {left}")
        return "after" if states[stat] is after else "before", left


def big_spool():
    """About 20 MB: deleting message 1 moves almost all of it."""
    return Spool([message("first", body="x\n")] +
                 [message(f"big {i}", body=(bytes([97 + i]) * 999 + b"\n")
                          * 2000) for i in range(10)])


class Crash(CrashCheck):
    """Timing-based: SIGKILL to the session process 0..150 ms after QUIT."""

    DELAYS = (0.0, 0.005, 0.02, 0.05, 0.1, 0.15)

    def session_pids(self, c):
        inodes = server_socket_inodes(self.port, c.sock.getsockname()[1])
        kids = descendants(self.daemon.proc.pid)
        holders = pids_holding_socket(kids, inodes)
        if os.geteuid() == 0:
            # the account's session child, not a root process
            holders = [p for p in holders
                       if (proc_creds(p) or {}).get("uid", [0])[0] != 0]
        return holders

    def test_sigkill_during_update(self):
        spool = big_spool()
        seen, leftovers = [], []
        for delay in self.DELAYS:
            acct = self.new_mailbox(spool)
            c, _ = self.login(acct)
            for n in DELETED:
                self.ok(c, f"DELE {n}")
            pids = self.session_pids(c)
            self.assertTrue(pids, "session process not found")
            c.send("QUIT")
            time.sleep(delay)
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                reply = c.readline_str(timeout=5)
            except (ConnectionClosed, ConnectionError, OSError):
                reply = "(connection closed)"
            c.close()
            if os.geteuid() != 0:
                # Without root the killed process made the dotlock itself
                # and nobody removes it: age it past dotlock_stale (60 s)
                # as time would.  (As root the keeper must remove it.)
                lock = self.env.spool_dir / f"{acct.name}.lock"
                if lock.exists():
                    old = time.time() - 3600
                    os.utime(lock, (old, old))
            result, left = self.check_consistent(
                acct, spool, f"killed {delay * 1000:.0f} ms after QUIT")
            seen.append((delay, reply[:30], result))
            leftovers += left
        print(f"\n    kill points (delay, QUIT reply, result): {seen}"
              f"\n    files left in the spool dir: {leftovers}", flush=True)


def has_kill_hook():
    """True if the daemon under test is the test build with the
    MBOXPOP3D_TEST_KILL_AT hook (build/mboxpop3d-test)."""
    try:
        with open(DAEMON, "rb") as f:
            return b"MBOXPOP3D_TEST_KILL_AT" in f.read()
    except OSError:
        return False


class CrashPoints(CrashCheck):
    """With the test build's hook (MBOXPOP3D_TEST_KILL_AT=N: the process
    kills itself before its N-th write, fsync or truncate in UPDATE), crash
    UPDATE at every step, and the recovery after it at its first steps."""

    MAX_POINTS = 80

    def setUp(self):
        super().setUp()
        if not has_kill_hook():
            self.skipTest("needs the test build with MBOXPOP3D_TEST_KILL_AT "
                          "(MBOXPOP3D_BIN=build/mboxpop3d-test)")
        self.spool = Spool([message("first", body="x\n")] +
                           [message(f"m {i}", body=(bytes([97 + i]) * 99
                                                    + b"\n") * 300)
                            for i in range(8)])

    def inetd(self, acct, script, kill_at):
        """One -i session with the kill hook armed; returns its output."""
        env = dict(os.environ, MBOXPOP3D_TEST_KILL_AT=str(kill_at))
        p = subprocess.run([DAEMON, "-i", "-c", str(self.daemon.conf)],
                           input=script.encode(), capture_output=True,
                           timeout=30, env=env)
        rep = sanitizer_lines(p.stderr.decode("utf-8", "replace"))
        self.assertEqual(rep, [], f"sanitizer report (kill at {kill_at})")
        return p.stdout.decode("latin-1")

    def update(self, acct, kill_at):
        """DELE + QUIT with the hook; True if QUIT got its +OK."""
        dele = "".join(f"DELE {n}\r\n" for n in DELETED)
        out = self.inetd(acct, f"USER {acct.name}\r\nPASS {acct.password}"
                               f"\r\n{dele}QUIT\r\n", kill_at)
        return "+OK mboxpop3d signing off" in out

    def test_every_update_step(self):
        acct = self.env.fresh()
        for n in range(1, self.MAX_POINTS + 1):
            self.env.write_spool(acct, self.spool)
            done = self.update(acct, n)
            self.check_consistent(acct, self.spool,
                                  f"UPDATE killed before write {n}")
            if done:
                print(f"\n    UPDATE killed before each of writes 1..{n - 1}"
                      f", then completed", flush=True)
                return
        self.fail(f"UPDATE still killed after {self.MAX_POINTS} write points")

    def test_crash_during_recovery(self):
        acct = self.env.fresh()
        crashes = 0
        for n in range(1, self.MAX_POINTS + 1):
            self.env.write_spool(acct, self.spool)
            if self.update(acct, n):
                break
            # the crashed UPDATE left its journal: crash the recovery that
            # the next logins run, at its 1st, 2nd, 3rd and 5th write
            for m in (1, 2, 3, 5):
                self.inetd(acct, f"USER {acct.name}\r\nPASS {acct.password}"
                                 f"\r\nSTAT\r\nQUIT\r\n", m)
                crashes += 1
            self.check_consistent(acct, self.spool,
                                  f"UPDATE killed before write {n}, then "
                                  f"recoveries killed before writes 1/2/3/5")
        self.assertGreater(crashes, 0, "UPDATE was never interrupted")


if __name__ == "__main__":
    unittest.main()
