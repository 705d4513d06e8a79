"""The mailbox engine's guarantees (DESIGN.md, "The mailbox engine"),
tested against the running daemon with real processes and real files:

  RandomKills        SIGKILL to the session at a random instant after QUIT,
                     on a ~20 MB spool of 3000 messages, many times over;
                     the next login recovers: the spool is the one before or
                     exactly the one after the UPDATE, byte for byte, and no
                     journal is left.  Also with a delivery (dotlock + fcntl,
                     like procmail) between the crash and the recovery.
  CrashThenDelivery  the same with the test build's kill hook: UPDATE killed
                     before each of its writes, then a delivery, then the
                     recovering login (deterministic).
  ConcurrentDelivery a deliverer process appends 300 messages under the
                     locks that procmail/mail.local take while sessions log
                     in, DELE and QUIT; no message is lost or duplicated.
  DiskFull           (root, tmpfs) no room for the UPDATE journal: QUIT gets
                     -ERR [SYS/TEMP] and the spool is untouched; with
                     room again the UPDATE works; truncate-only UPDATEs
                     need no room.
  SmallDisk          (root, tmpfs) an UPDATE needs journal room in
                     proportion to what it moves, not a fixed 32 MB.
  Refusals           spool that is a symlink, another user's file, a
                     directory, a FIFO, a device: -ERR [SYS/PERM], nothing
                     read or changed, nothing blocks.
  LiveDotlock        a dotlock kept fresh by a live deliverer is honoured
                     (never taken for stale); an abandoned one is removed
                     once it turns stale while UPDATE waits.

Every loop is bounded in count and in time.  Environment:
  MBOXPOP3D_E2E_SEED          seed for the random choices (default: time)
  MBOXPOP3D_E2E_KILL_SECONDS  time bound of the random-kill loop (default 65)
"""

import atexit
import ctypes
import errno
import fcntl
import grp
import os
import random
import re
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import zlib
from pathlib import Path

from harness import (POP3TestCase, Spool, Daemon, ConnectionClosed, DAEMON,
                     IS_ROOT, message, from_line, retr_bytes, descendants,
                     proc_creds, _status,
                     server_socket_inodes, pids_holding_socket)

HERE = Path(__file__).resolve().parent
SEED = int(os.environ.get("MBOXPOP3D_E2E_SEED") or time.time_ns() % 10**9)


def journal_of(spool_path):
    p = Path(spool_path)
    return p.parent / f".{p.name}.mboxpop3d-journal"


def lock_of(spool_path):
    return Path(str(spool_path) + ".lock")


def session_pids(daemon, c):
    """The processes serving the client connection c: as root the
    account's session child (not a root process), otherwise the worker."""
    inodes = server_socket_inodes(daemon.port, c.sock.getsockname()[1])
    holders = pids_holding_socket(descendants(daemon.proc.pid), inodes)
    if IS_ROOT:
        holders = [p for p in holders
                   if (proc_creds(p) or {}).get("uid", [0])[0] != 0]
    return holders


def wait_dead(pids, timeout=5.0):
    """Waits until every pid is gone or a zombie (SIGKILL is asynchronous:
    a write in progress completes before the process dies)."""
    deadline = time.monotonic() + timeout
    for p in pids:
        while time.monotonic() < deadline:
            st = _status(p)
            if st is None or st.get("State", "").startswith(("Z", "X")):
                break
            time.sleep(0.002)


def kill_all(pids):
    for p in pids:
        try:
            os.kill(p, 9)
        except ProcessLookupError:
            pass


def write_file(path, data, acct=None, mode=0o600):
    """Writes path byte for byte (owned by acct when root)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW,
                 mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if IS_ROOT and acct is not None:
            os.fchown(fd, acct.uid, acct.gid)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def files_of(acct, spool_dir):
    """Names in spool_dir that belong to acct's mailbox, besides the spool
    itself (dotlock, its temp files, the journal)."""
    out = []
    for p in Path(spool_dir).iterdir():
        n = p.name
        if n != acct.name and (n.startswith(acct.name + ".")
                               or n.startswith(f".{acct.name}.")):
            out.append(n)
    return sorted(out)


# ------------------------------------------------------------ spools

_TEXT = None


def _text_blob():
    global _TEXT
    if _TEXT is None:
        r = random.Random(12345)
        alphabet = b"abcdefghijklmnopqrstuvwxyz      ABCDEFGHIJ0123456789.,;-"
        _TEXT = bytes(r.choice(alphabet) for _ in range(1 << 16))
    return _TEXT


def random_body(rng, size):
    """About size bytes of text lines: no blank lines (so no line can be
    taken for a "From " separator), with dot lines, >From lines and a few
    CRLF line ends mixed in."""
    blob = _text_blob()
    out, n = [], 0
    while n < size:
        k = rng.randint(8, 118)
        off = rng.randrange(0, len(blob) - k)
        line = blob[off:off + k].strip() or b"x"
        roll = rng.random()
        if roll < 0.03:
            line = b"." + line
        elif roll < 0.04:
            line = b">From " + line
        elif roll < 0.045:
            line = b"."
        line += b"\r\n" if roll > 0.99 else b"\n"
        out.append(line)
        n += len(line)
    return b"".join(out)


def mid(tag, i):
    return f"<{tag}-{i}@safety.e2e.test>"


def make_message(tag, i, rng, lo, hi):
    return message(f"{tag} {i}", body=random_body(rng, rng.randint(lo, hi)),
                   extra_headers=[f"Message-ID: {mid(tag, i)}",
                                  f"Date: Mon, 1 Jan 2024 10:00:00 +0000"])


def big_spool(n=3000, seed=4242):
    """n messages of 4-8 KB each (about 18 MB), all different."""
    rng = random.Random(seed)
    return Spool([make_message("big", i, rng, 3800, 7800) for i in range(n)])


def delivered_unit(tag, i, seed):
    """What a deliverer appends for message i: From line, content, blank
    separator line (the way procmail and mail.local write)."""
    rng = random.Random(seed * 100003 + i)
    return (from_line(f"deliverer-{i}@example.org",
                      "Sat Jan  6 10:00:00 2024")
            + make_message(tag, i, rng, 200, 1500) + b"\n")


# ------------------------------------------------------------ deliverer

def dotlock_acquire(lock, deadline):
    """NFS-safe dotlock (unique file + link + link count 2) with a
    bounded retry loop; never removes someone else's lock."""
    tmp = f"{lock}.deliverer.{os.getpid()}.{time.monotonic_ns()}"
    while True:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.close(fd)
        try:
            os.link(tmp, lock)
        except FileExistsError:
            pass
        got = os.stat(tmp).st_nlink == 2
        os.unlink(tmp)
        if got:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"dotlock {lock} busy until the deadline")
        time.sleep(random.uniform(0.002, 0.02))


def deliver(spool, data, timeout=20.0):
    """Appends data to spool the way procmail does: dotlock USER.lock,
    then an fcntl write lock (retried, bounded), O_APPEND write."""
    deadline = time.monotonic() + timeout
    lock = lock_of(spool)
    dotlock_acquire(lock, deadline)
    try:
        fd = os.open(spool, os.O_WRONLY | os.O_APPEND)
        try:
            while True:
                try:
                    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as e:
                    if e.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"fcntl lock on {spool} busy "
                                           f"until the deadline")
                    time.sleep(random.uniform(0.002, 0.02))
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            fcntl.lockf(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
    finally:
        os.unlink(lock)


def deliverer_main(spool, tag, seed, count, max_pause):
    """Runs in its own process (fcntl locks are per process): delivers
    count messages, printing "D i" after each, "T i reason" on timeout."""
    random.seed(seed)
    for i in range(count):
        try:
            deliver(spool, delivered_unit(tag, i, seed))
        except TimeoutError as e:
            print(f"T {i} {e}", flush=True)
            return 1
        print(f"D {i}", flush=True)
        time.sleep(random.uniform(0, max_pause))
    return 0


# ------------------------------------------------------------ inotify

_IN_ACCESS, _IN_MODIFY, _IN_ATTRIB, _IN_OPEN = 0x1, 0x2, 0x4, 0x20
_IN_NAMES = {0x1: "ACCESS", 0x2: "MODIFY", 0x4: "ATTRIB", 0x8: "CLOSE_WRITE",
             0x10: "CLOSE_NOWRITE", 0x20: "OPEN"}


class Watch:
    """inotify on one file: what was done to it while watched."""

    def __init__(self, path, mask=_IN_ACCESS | _IN_MODIFY | _IN_ATTRIB
                 | _IN_OPEN | 0x8 | 0x10):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        wd = self.libc.inotify_add_watch(self.fd, os.fsencode(str(path)),
                                         ctypes.c_uint32(mask))
        if wd < 0:
            os.close(self.fd)
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {path}")

    def events(self):
        names = []
        while True:
            try:
                buf = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            off = 0
            while off + 16 <= len(buf):
                _wd, mask, _cookie, ln = struct.unpack_from("iIII", buf, off)
                off += 16 + ln
                names += [n for b, n in _IN_NAMES.items() if mask & b]
        return names

    def close(self):
        os.close(self.fd)


# ================================================================ tests

class RandomKills(POP3TestCase):
    """SIGKILL to the session at a random instant after QUIT."""

    N_MESSAGES = 3000
    MAX_TRIALS = 200
    MIN_TRIALS = 30
    SECONDS = float(os.environ.get("MBOXPOP3D_E2E_KILL_SECONDS") or 65)
    DELIVERY_TRIALS = (10, 40)        # min, max
    DELIVERY_SECONDS = 20.0
    MAX_DELAY = 0.3

    @classmethod
    def setUpClass(cls):
        cls.spool = big_spool(cls.N_MESSAGES)
        cls.update_time = None

    @classmethod
    def tearDownClass(cls):
        cls.spool = None

    def setUp(self):
        super().setUp()
        self.rng = random.Random(SEED + zlib.crc32(self._testMethodName.encode()))

    # -- one trial
    def pick_deletions(self):
        n, rng = self.N_MESSAGES, self.rng
        kind = rng.choices(["early", "middle", "many", "block", "all",
                            "trailing"], [30, 10, 30, 10, 10, 10])[0]
        if kind == "early":
            dele = [rng.randint(1, 20)]
        elif kind == "middle":
            dele = [rng.randint(21, n)]
        elif kind == "many":
            dele = sorted(rng.sample(range(1, n + 1), rng.randint(2, n // 2)))
        elif kind == "block":
            a = rng.randint(1, n - 1)
            dele = list(range(a, min(n, a + rng.randint(2, 400)) + 1))
        elif kind == "all":
            dele = list(range(1, n + 1))
        else:
            dele = list(range(n - rng.randint(1, 50) + 1, n + 1))
        return kind, dele

    def send_deletions(self, c, dele):
        """Pipelined DELEs (RFC 2449 PIPELINING), in batches."""
        for k in range(0, len(dele), 500):
            batch = dele[k:k + 500]
            c.send_raw("".join(f"DELE {n}\r\n" for n in batch))
            for n in batch:
                r = c.readline_str()
                self.assertTrue(r.startswith("+OK"),
                                self.explain(c, f"DELE {n}", r, "+OK"))

    def calibrate(self, acct):
        """Times one uninterrupted UPDATE deleting message 1 (the one that
        moves the most), so the kill delays cover where UPDATE runs."""
        if RandomKills.update_time is not None:
            return RandomKills.update_time
        self.env.write_spool(acct, self.spool)
        c, _ = self.login(acct)
        self.ok(c, "DELE 1")
        t0 = time.monotonic()
        r = c.cmd("QUIT", timeout=60)
        dt = time.monotonic() - t0
        c.close()
        self.assertTrue(r.startswith("+OK"), self.explain(c, "QUIT", r, "+OK"))
        self.assertBytesEqual(self.env.read_spool(acct),
                              self.spool.without([1]), "calibration UPDATE")
        RandomKills.update_time = dt
        return dt

    def trial(self, acct, delay, kind, dele, deliver_after=None):
        """One session: DELE, QUIT, SIGKILL after delay; then optionally a
        delivery; then the recovering login and the checks.  Returns a
        tuple describing what happened."""
        path = self.env.spool_path(acct)
        jpath = journal_of(path)
        self.env.write_spool(acct, self.spool)
        ino = os.stat(path).st_ino
        before, after = self.spool.data, self.spool.without(dele)
        what = (f"seed {SEED}, trial kind {kind}, {len(dele)} deleted "
                f"(first {dele[:5]}), kill {delay * 1000:.1f} ms after QUIT"
                + (", delivery after the kill" if deliver_after else ""))

        c, _ = self.login(acct)
        self.send_deletions(c, dele)
        pids = session_pids(self.daemon, c)
        self.assertTrue(pids, f"{what}: session process not found")
        c.send("QUIT")
        time.sleep(delay)
        kill_all(pids)
        wait_dead(pids)
        try:
            reply = c.readline_str(timeout=10)
        except (ConnectionClosed, ConnectionError, OSError):
            reply = ""
        c.close()
        jsize = jpath.stat().st_size if jpath.exists() else -1
        interrupted = jsize > 0
        if reply.startswith("+OK") and not interrupted:
            # QUIT was answered and the session finished: complete, durable
            self.assertBytesEqual(self.env.read_spool(acct), after,
                                  f"{what}: spool after QUIT said +OK")
        # +OK with a journal left: a big truncation is answered at the
        # commit point (update.h), and the recovering login must finish
        # it - checked below (+OK means "after").

        lock = lock_of(path)
        if not IS_ROOT and lock.exists():
            # Not root: the killed process made the dotlock itself and
            # nobody removes it; age it past dotlock_stale as time would.
            old = time.time() - 3600
            os.utime(lock, (old, old))
        new = b""
        if deliver_after is not None:
            if not IS_ROOT and lock.exists():
                lock.unlink()         # what a deliverer does to a stale lock
            new = deliver_after
            deliver(path, new, timeout=10)

        # the recovering login
        c, r = self.login(acct)
        stat_reply = self.ok(c, "STAT")
        self.quit(c)
        got = self.env.read_spool(acct)
        if got == before + new:
            result = "before"
        elif got == after + new:
            result = "after"
        else:
            near = after + new if abs(len(got) - len(after + new)) < \
                abs(len(got) - len(before + new)) else before + new
            self.assertBytesEqual(got, near, f"{what}: spool after recovery "
                                  f"is neither the one before nor the one "
                                  f"after the UPDATE (QUIT reply {reply!r}, "
                                  f"journal {jsize} bytes after the kill)")
        if reply.startswith("+OK"):
            self.assertEqual(result, "after", f"{what}: +OK but not deleted")
        n_after = self.N_MESSAGES - len(dele) + (1 if new else 0)
        n_before = self.N_MESSAGES + (1 if new else 0)
        want_n = n_before if result == "before" else n_after
        self.assertTrue(stat_reply.startswith(f"+OK {want_n} "),
                        f"{what}: STAT {stat_reply!r} in the recovering "
                        f"session, file has {want_n} messages ({result})")
        self.assertEqual(os.stat(path).st_ino, ino, f"{what}: spool inode "
                                                    f"changed")
        jleft = jpath.stat().st_size if jpath.exists() else 0
        self.assertEqual(jleft, 0, f"{what}: journal {jpath} of {jleft} "
                                   f"bytes left after the recovering login")
        self.assertFalse(lock.exists(), f"{what}: dotlock left after the "
                                        f"recovering session")
        if IS_ROOT:
            self.assertEqual([n for n in files_of(acct, path.parent)
                              if not n.endswith("mboxpop3d-journal")], [],
                             f"{what}: files left in the spool dir")
        return result, interrupted, reply[:3] or "-"

    def delays(self):
        """0..300 ms, two thirds of them inside the measured UPDATE time."""
        t = self.update_time or self.MAX_DELAY
        if self.rng.random() < 2 / 3:
            return self.rng.uniform(0, min(self.MAX_DELAY, 1.2 * t))
        return self.rng.uniform(0, self.MAX_DELAY)

    def run_trials(self, seconds, min_trials, max_trials, delivery):
        acct = self.env.fresh()
        upd = self.calibrate(acct)
        t_end = time.monotonic() + seconds
        stats = {}
        n = 0
        while n < max_trials and (time.monotonic() < t_end or n < min_trials):
            if n >= min_trials and time.monotonic() >= t_end:
                break
            kind, dele = self.pick_deletions()
            delay = self.delays()
            new = delivered_unit("postcrash", n, SEED) if delivery else None
            result, interrupted, reply = self.trial(acct, delay, kind, dele,
                                                    new)
            key = (result, "journal" if interrupted else "no-journal", reply)
            stats[key] = stats.get(key, 0) + 1
            n += 1
            self.assertLess(time.monotonic(), t_end + 120,
                            "trials far over the time bound")
        interrupted = sum(v for k, v in stats.items() if k[1] == "journal")
        print(f"\n    seed {SEED}: {n} trials in {seconds:.0f} s bound, "
              f"uninterrupted UPDATE {upd * 1000:.0f} ms; outcomes "
              f"(spool, journal after kill, QUIT reply): "
              f"{sorted(stats.items())}", flush=True)
        self.assertGreaterEqual(n, min_trials, "too few trials")
        self.assertGreater(interrupted, 0,
                           f"no kill interrupted an UPDATE in {n} trials "
                           f"(UPDATE takes {upd * 1000:.0f} ms): the test "
                           f"proved nothing")

    def test_random_kills(self):
        self.run_trials(self.SECONDS, self.MIN_TRIALS, self.MAX_TRIALS, False)

    def test_random_kills_then_delivery(self):
        """After the crash and before the recovering login, a deliverer
        appends a message (dotlock + fcntl); it must survive recovery."""
        self.run_trials(self.DELIVERY_SECONDS, self.DELIVERY_TRIALS[0],
                        self.DELIVERY_TRIALS[1], True)



def has_kill_hook():
    """True if the daemon under test is the test build with the
    MBOXPOP3D_TEST_KILL_AT hook (build/mboxpop3d-test)."""
    try:
        with open(DAEMON, "rb") as f:
            return b"MBOXPOP3D_TEST_KILL_AT" in f.read()
    except OSError:
        return False


class CrashThenDelivery(POP3TestCase):
    """Deterministic version of the delivery variant above, with the test
    build's kill hook: UPDATE killed before each of its writes, a message
    delivered (dotlock + fcntl), then the recovering login.  The delivered
    message must be the last one, whichever messages were deleted."""

    MAX_POINTS = 40

    def setUp(self):
        super().setUp()
        if not has_kill_hook():
            self.skipTest("needs the test build with MBOXPOP3D_TEST_KILL_AT "
                          "(MBOXPOP3D_BIN=build/mboxpop3d-test)")

    def check(self, dele):
        spool = Spool([message("first", body="x\n")] +
                      [message(f"m {i}", body=(bytes([97 + i]) * 99 + b"\n")
                               * 300) for i in range(5)])
        acct = self.env.fresh()
        path = self.env.spool_path(acct)
        script = (f"USER {acct.name}\r\nPASS {acct.password}\r\n"
                  + "".join(f"DELE {n}\r\n" for n in dele) + "QUIT\r\n")
        bad = []
        for point in range(1, self.MAX_POINTS + 1):
            self.env.write_spool(acct, spool)
            p = subprocess.run([DAEMON, "-i", "-c", str(self.daemon.conf)],
                               input=script.encode(), capture_output=True,
                               timeout=60, env=dict(
                                   os.environ,
                                   MBOXPOP3D_TEST_KILL_AT=str(point)))
            completed = b"signing off" in p.stdout
            jpath = journal_of(path)
            jsize = jpath.stat().st_size if jpath.exists() else 0
            lock = lock_of(path)
            if lock.exists():       # -i as non-root: nobody removes it
                lock.unlink()
            new = delivered_unit("late", point, SEED)
            deliver(path, new, timeout=10)
            c, _ = self.login(acct)
            self.ok(c, "STAT")
            self.quit(c)
            got = path.read_bytes()
            if got not in (spool.data + new, spool.without(dele) + new):
                tail = got[-len(new):]
                bad.append(f"killed before write {point} (journal {jsize} "
                           f"bytes): the last {len(new)} bytes are "
                           f"{tail[:60]!r}... instead of the delivered "
                           f"message")
            if completed:
                break
        self.assertTrue(completed, f"UPDATE never completed in "
                                   f"{self.MAX_POINTS} kill points")
        self.assertEqual(bad, [], f"DELE {dele}, SIGKILL during UPDATE, "
                                  f"then a delivery, then the recovering "
                                  f"login: the delivered message is lost "
                                  f"(replaced by stale spool bytes) at "
                                  f"{len(bad)} of {point} kill points")

    def test_first_deleted(self):
        self.check([1])

    def test_first_and_last_deleted(self):
        self.check([1, 6])

    def test_middle_and_last_two_deleted(self):
        self.check([3, 5, 6])


class ConcurrentDelivery(POP3TestCase):
    """A deliverer process appends 300 messages under dotlock + fcntl while
    20-40 sessions log in, read, DELE and QUIT."""

    INITIAL = 200
    DELIVERIES = 300
    MIN_SESSIONS, MAX_SESSIONS = 20, 40
    SECONDS = 60.0

    def test_deliveries_during_sessions(self):
        rng = random.Random(SEED)
        acct = self.env.fresh()
        path = self.env.spool_path(acct)
        irng = random.Random(SEED + 1)
        initial = [from_line(date="Mon Jan  1 10:00:00 2024")
                   + make_message("initial", i, irng, 300, 3000) + b"\n"
                   for i in range(self.INITIAL)]
        self.env.write_spool(acct, b"".join(initial))
        units = {mid("initial", i): u for i, u in enumerate(initial)}
        order = [mid("initial", i) for i in range(self.INITIAL)]
        for i in range(self.DELIVERIES):
            u = delivered_unit("delivered", i, SEED)
            units[mid("delivered", i)] = u
            order.append(mid("delivered", i))

        code = ("import sys; sys.path.insert(0, sys.argv[1]); "
                "import test_safety as t; "
                "sys.exit(t.deliverer_main(sys.argv[2], 'delivered', "
                "int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])))")
        proc = subprocess.Popen([sys.executable, "-c", code, str(HERE),
                                 str(path), str(SEED), str(self.DELIVERIES),
                                 "0.02"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        deleted, sessions, refused, updates = set(), 0, [], 0
        t_end = time.monotonic() + self.SECONDS
        try:
            while sessions < self.MAX_SESSIONS and time.monotonic() < t_end:
                if proc.poll() is not None and sessions >= self.MIN_SESSIONS:
                    break
                sessions += 1
                gone, r = self.one_session(acct, rng, units)
                if r.startswith("+OK"):
                    deleted |= gone
                    updates += bool(gone)
                else:
                    refused.append(r)
        finally:
            try:
                out, err = proc.communicate(timeout=max(5, t_end -
                                                         time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
        done = [int(l.split()[1]) for l in out.splitlines()
                if l.startswith("D ")]
        self.assertEqual(proc.returncode, 0,
                         f"deliverer failed (exit {proc.returncode}): "
                         f"{out.splitlines()[-3:]} {err[-2000:]}")
        self.assertEqual(done, list(range(self.DELIVERIES)))
        # one more session after the last delivery, then the check
        gone, r = self.one_session(acct, rng, units)
        if r.startswith("+OK"):
            deleted |= gone
        got = self.env.read_spool(acct)
        want = b"".join(units[m] for m in order if m not in deleted)
        if got != want:
            ids = re.findall(rb"\nMessage-ID: (<[^>]*>)", got)
            present = [i.decode() for i in ids]
            expect = [m for m in order if m not in deleted]
            missing = sorted(set(expect) - set(present))
            extra = sorted(set(present) - set(expect))
            dups = sorted({m for m in present if present.count(m) > 1})
            self.fail(f"seed {SEED}: final spool is not initial + delivered "
                      f"- deleted: {len(present)} messages, expected "
                      f"{len(expect)}; missing {missing[:10]}, not expected "
                      f"{extra[:10]}, duplicated {dups[:10]}; "
                      f"{'same order' if present == expect else 'order differs'}"
                      f"; byte length {len(got)} vs {len(want)}")
        print(f"\n    seed {SEED}: {sessions + 1} sessions ({updates} with "
              f"UPDATE, {len(refused)} QUITs refused: {refused[:3]}), "
              f"{len(done)} deliveries, {len(deleted)} deleted, "
              f"{len(order) - len(deleted)} kept", flush=True)

    def one_session(self, acct, rng, units):
        """Logs in, checks one random message byte for byte, DELEs a few
        (identified by TOP n 0's Message-ID), QUITs.  Returns (set of
        Message-IDs deleted, QUIT reply)."""
        c, r = self.login(acct)
        count = int(self.ok(c, "STAT").split()[1])
        if count == 0:
            return set(), self.quit(c)

        def message_id(n):
            _, lines = self.multi(c, f"TOP {n} 0")
            for l in lines:
                if l.lower().startswith(b"message-id:"):
                    return l.split(b":", 1)[1].strip().decode()
            self.fail(f"message {n} has no Message-ID: {lines[:8]}")

        n = rng.randint(1, count)
        m = message_id(n)
        self.assertIn(m, units, f"message {n} is not one we wrote")
        content = units[m].split(b"\n", 1)[1][:-1]   # no From line, no sep
        _, raw = self.multi(c, f"RETR {n}", raw=True)
        self.assertBytesEqual(raw, retr_bytes(content), f"RETR {n} ({m})")
        gone = set()
        k = rng.choice([0, 1, 2, 3, 5, 8])
        picks = set(rng.sample(range(1, count + 1), min(k, count)))
        if k and rng.random() < 0.3:
            picks.add(1)                   # the one that moves everything
        for n in sorted(picks):
            gone.add(message_id(n))
            self.ok(c, f"DELE {n}")
        r = c.cmd("QUIT", timeout=30)
        c.close()
        return gone, r


_MOUNTS = []


def _mount_tmpfs(size):
    d = tempfile.mkdtemp(prefix="mboxpop3d-e2e-tmpfs-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o",
                        f"size={size},mode=0755", "tmpfs", d],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        os.rmdir(d)
        return None, (r.stderr or r.stdout).strip()
    if not _MOUNTS:
        atexit.register(lambda: [_umount(m) for m in list(_MOUNTS)])
    _MOUNTS.append(Path(d))
    # Like Debian's /var/mail: the keeper makes dotlocks and journals
    # with the directory's group (keeper.h).
    os.chown(d, 0, grp.getgrnam("mail").gr_gid)
    os.chmod(d, 0o2775)
    return Path(d), None


def _umount(d):
    if d in _MOUNTS:
        _MOUNTS.remove(d)
    for args in (["umount", str(d)], ["umount", "-l", str(d)]):
        r = subprocess.run(args, capture_output=True, timeout=30)
        if r.returncode == 0:
            break
    try:
        os.rmdir(d)
    except OSError:
        pass


class TmpfsSpool(POP3TestCase):
    """Base: a daemon whose spool_dir is a private tmpfs of SIZE."""

    SIZE = "48m"

    @classmethod
    def setUpClass(cls):
        cls.mnt = cls.daemon_obj = None
        if not IS_ROOT:
            return
        cls.mnt, cls.mount_error = _mount_tmpfs(cls.SIZE)

    @classmethod
    def tearDownClass(cls):
        if cls.daemon_obj is not None:
            cls.daemon_obj.stop()
        if cls.mnt is not None:
            _umount(cls.mnt)

    def setUp(self):
        super().setUp()
        if not IS_ROOT:
            self.skipTest("needs root (mount -t tmpfs)")
        if self.mnt is None:
            self.skipTest(f"cannot mount a tmpfs: {self.mount_error}")
        cls = type(self)
        if cls.daemon_obj is None or not cls.daemon_obj.alive():
            cls.daemon_obj = Daemon(self.env, cls.__name__,
                                    {"spool_dir": str(self.mnt)}).start()
        self.daemon = cls.daemon_obj
        self.port = self.daemon.port
        self.filler = self.mnt / "filler"

    def tearDown(self):
        if self.filler.exists():
            self.filler.unlink()
        super().tearDown()

    def fill(self, leave=16 * 1024):
        """Fills the filesystem, then frees `leave` bytes."""
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                     0o600)
        chunk = b"\0" * (1 << 20)
        try:
            for _ in range(4096):            # bounded: 4 GB
                try:
                    os.write(fd, chunk)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    if len(chunk) <= 4096:
                        break
                    chunk = chunk[:len(chunk) // 2]
            size = os.fstat(fd).st_size
            os.ftruncate(fd, max(0, size - leave))
        finally:
            os.close(fd)
        st = os.statvfs(self.mnt)
        return st.f_bavail * st.f_frsize

    def mailbox(self, spool):
        acct = self.env.fresh()
        path = self.mnt / acct.name
        write_file(path, spool.data, acct)
        old = 1_600_000_000_000_000_000
        os.utime(path, ns=(old, old))
        return acct, path

    def update(self, acct, dele):
        c, _ = self.login(acct)
        for n in dele:
            self.ok(c, f"DELE {n}")
        r = c.cmd("QUIT", timeout=30)
        try:
            rest = c.read_until_eof(5)
        except socket.timeout:
            rest = ["(connection still open 5 s after the QUIT reply)"]
        return c, r, rest


def medium_spool(n=60, seed=77):
    rng = random.Random(seed)
    return Spool([make_message("medium", i, rng, 2000, 5000)
                  for i in range(n)])


class DiskFull(TmpfsSpool):
    """No room for the UPDATE journal: nothing may be touched."""

    def test_no_room_for_journal(self):
        spool = medium_spool()
        acct, path = self.mailbox(spool)
        st0 = os.stat(path)
        free = self.fill()
        c, r, rest = self.update(acct, [1, 7])
        self.assertTrue(r.startswith("-ERR [SYS/TEMP]"), self.explain(
            c, f"QUIT (journal cannot be preallocated, {free} bytes free)",
            r, "-ERR [SYS/TEMP] ..."))
        self.assertEqual(rest, [], "lines after the -ERR: the session must "
                                   "end")
        self.assertBytesEqual(path.read_bytes(), spool.data,
                              "spool after the refused UPDATE")
        st = os.stat(path)
        self.assertEqual((st.st_ino, st.st_size, st.st_mtime_ns),
                         (st0.st_ino, st0.st_size, st0.st_mtime_ns),
                         "spool inode/size/mtime changed")
        j = journal_of(path)
        self.assertFalse(j.exists() and j.stat().st_size > 0,
                         "a journal is left behind")
        self.assertFalse(lock_of(path).exists(), "dotlock left behind")
        # the next session sees everything, and once there is room again
        # the same UPDATE goes through
        self.filler.unlink()
        c, r, rest = self.update(acct, [1, 7])
        self.assertTrue(r.startswith("+OK"), self.explain(
            c, "QUIT (room again)", r, "+OK"))
        self.assertBytesEqual(path.read_bytes(), spool.without([1, 7]),
                              "spool after the UPDATE with room again")
        self.assertEqual(files_of(acct, self.mnt), [], "files left")

    def test_truncate_only_updates_need_no_room(self):
        """Deleting trailing messages, or all of them, is one ftruncate:
        it must work on a full disk."""
        spool = medium_spool(10)
        acct, path = self.mailbox(spool)
        self.fill(leave=0)
        c, r, _ = self.update(acct, [9, 10])
        self.assertTrue(r.startswith("+OK"), self.explain(
            c, "QUIT (trailing messages deleted, disk full)", r, "+OK"))
        self.assertBytesEqual(path.read_bytes(), spool.without([9, 10]),
                              "spool")
        c, r, _ = self.update(acct, range(1, 9))
        self.assertTrue(r.startswith("+OK"), self.explain(
            c, "QUIT (all deleted, disk full)", r, "+OK"))
        self.assertEqual(path.read_bytes(), b"")


class SmallDisk(TmpfsSpool):
    """The journal an UPDATE needs is about the size of what it moves: a
    spool directory with many times the spool's size free is enough."""

    SIZE = "8m"

    def test_update_on_small_filesystem(self):
        spool = medium_spool(60)                 # about 220 KB
        acct, path = self.mailbox(spool)
        st = os.statvfs(self.mnt)
        free = st.f_bavail * st.f_frsize
        c, r, _ = self.update(acct, [1])
        self.assertTrue(r.startswith("+OK"), self.explain(
            c, f"QUIT deleting message 1 of a {len(spool.data)}-byte spool "
               f"with {free} bytes free in the spool directory", r,
            "+OK (the journal needs room for the bytes it moves, not for a "
            "fixed 16 MB window twice)"))
        self.assertBytesEqual(path.read_bytes(), spool.without([1]), "spool")


class Refusals(POP3TestCase):
    """Spools that are not the account's regular file: -ERR [SYS/PERM] at
    login, quickly, and nothing read or changed."""

    def setUp(self):
        super().setUp()
        self.atime_works = self._atime_probe()

    def _atime_probe(self):
        """Does reading a file whose atime is older than its mtime update
        the atime here (relatime/strictatime, not noatime)?"""
        p = self.env.dir / "atime-probe"
        p.write_bytes(b"probe\n")
        old = 1_600_000_000_000_000_000
        os.utime(p, ns=(old - 10**10, old))
        p.read_bytes()
        works = os.stat(p).st_atime_ns != old - 10**10
        p.unlink()
        return works

    def freeze(self, path):
        """mtime in the past and atime before it: any read or mmap of the
        file then moves the atime (relatime)."""
        old = 1_600_000_000_000_000_000
        os.utime(path, ns=(old - 10**10, old), follow_symlinks=False)
        return os.stat(path, follow_symlinks=False)

    def check_untouched(self, path, st0, data, watch, allow_open=False):
        ev = []
        if watch is not None:        # first: our own reads below show too
            ev = watch.events()
            watch.close()
        st = os.stat(path, follow_symlinks=False)
        if data is not None:
            self.assertEqual(Path(path).read_bytes(), data, f"{path} changed")
        self.assertEqual((st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode,
                          st.st_uid),
                         (st0.st_ino, st0.st_size, st0.st_mtime_ns,
                          st0.st_mode, st0.st_uid),
                         f"{path}: inode/size/mtime/mode/owner changed")
        if self.atime_works and stat.S_ISREG(st.st_mode):
            self.assertEqual(st.st_atime_ns, st0.st_atime_ns,
                             f"{path} was read (its atime moved)")
        bad = [e for e in ev if e not in
               (("OPEN", "CLOSE_NOWRITE", "CLOSE_WRITE") if allow_open
                else ())]
        self.assertEqual(bad, [], f"{path}: inotify saw {ev} while the "
                                  f"daemon refused it")

    def refused(self, acct, what, limit=5.0):
        c = self.connect()
        self.ok(c, f"USER {acct.name}")
        t0 = time.monotonic()
        try:
            r = c.cmd(f"PASS {acct.password}", timeout=limit + 5)
        except socket.timeout:
            self.fail(f"PASS with {what}: no reply within {limit + 5} s "
                      f"(the daemon blocks)")
        dt = time.monotonic() - t0
        self.assertTrue(r.startswith("-ERR [SYS/PERM]"), self.explain(
            c, f"PASS ({what})", r, "-ERR [SYS/PERM] ..."))
        self.assertLess(dt, limit, f"PASS with {what} took {dt:.1f} s")
        try:
            rest = c.read_until_eof(5)
        except socket.timeout:
            self.fail(f"{what}: session still open after -ERR [SYS/PERM]")
        self.assertEqual(rest, [])
        left = [n for n in files_of(acct, self.env.spool_dir)
                if not n.endswith(".real")]
        self.assertEqual(left, [], f"{what}: files made in the spool dir")
        return r

    def test_symlink_to_own_file(self):
        spool = medium_spool(3)
        acct = self.env.fresh()
        target = self.env.spool_dir / f"{acct.name}.real"
        write_file(target, spool.data, acct)
        os.symlink(target, self.env.spool_path(acct))
        st0 = self.freeze(target)
        w = Watch(target)
        self.refused(acct, "spool is a symlink to the account's own file")
        self.check_untouched(target, st0, spool.data, w)

    def test_symlink_to_root_file(self):
        secret = b"root:secret-hash:19000:0:99999:7:::\n"
        acct = self.env.fresh()
        target = self.env.dir / f"{acct.name}.secret"
        write_file(target, secret, None, 0o644)
        os.symlink(target, self.env.spool_path(acct))
        st0 = self.freeze(target)
        w = Watch(target)
        self.refused(acct, "spool is a symlink to a root file")
        self.check_untouched(target, st0, secret, w)

    def check_other_owner(self, mode):
        self.require_root()
        spool = medium_spool(2)
        acct = self.env.fresh()
        other = self.env.fresh()
        path = self.env.spool_path(acct)
        write_file(path, spool.data, other, mode)
        st0 = self.freeze(path)
        w = Watch(path)
        self.refused(acct, f"spool owned by another uid, mode {mode:o}")
        self.check_untouched(path, st0, spool.data, w, allow_open=True)

    def test_other_owner_0600(self):
        self.check_other_owner(0o600)

    def test_other_owner_0666(self):
        self.check_other_owner(0o666)

    def test_root_owned_0644(self):
        self.require_root()
        spool = medium_spool(2)
        acct = self.env.fresh()
        path = self.env.spool_path(acct)
        write_file(path, spool.data, None, 0o644)
        st0 = self.freeze(path)
        w = Watch(path)
        self.refused(acct, "spool owned by root, mode 644")
        self.check_untouched(path, st0, spool.data, w, allow_open=True)

    def test_directory(self):
        acct = self.env.fresh()
        path = self.env.spool_path(acct)
        os.mkdir(path)
        inner = path / "From x"
        idata = b"From x Mon Jan  1 10:00:00 2024\n\nhi\n"
        inner.write_bytes(idata)
        sti = self.freeze(inner)
        st0 = self.freeze(path)
        self.refused(acct, "spool is a directory")
        self.check_untouched(path, st0, None, None)
        self.check_untouched(inner, sti, idata, None)

    def fifo_holders(self, path):
        out = []
        for p in descendants(self.daemon.proc.pid):
            try:
                fds = os.listdir(f"/proc/{p}/fd")
            except OSError:
                continue
            for fd in fds:
                try:
                    if os.readlink(f"/proc/{p}/fd/{fd}") == str(path):
                        out.append(p)
                except OSError:
                    pass
        return out

    def test_fifo(self):
        """Must not block on the FIFO, must not read what is in it, and
        must not keep it open."""
        acct = self.env.fresh()
        path = self.env.spool_path(acct)
        os.mkfifo(path, 0o600)
        if IS_ROOT:
            os.chown(path, acct.uid, acct.gid)
        data = b"From x Mon Jan  1 10:00:00 2024\nSubject: in a pipe\n\nhi\n"
        # our end keeps the pipe buffer alive (O_RDWR does not block)
        keep = os.open(path, os.O_RDWR | os.O_NONBLOCK)
        try:
            os.write(keep, data)
            st0 = os.stat(path)
            self.refused(acct, "spool is a FIFO")
            holders = self.fifo_holders(path)
            self.assertEqual(holders, [], "daemon processes keep the FIFO "
                                          "open after refusing it")
            try:
                got = os.read(keep, 4096)
            except BlockingIOError:
                got = b""
            self.assertEqual(got, data, "the daemon read from the FIFO")
            st = os.stat(path)
            self.assertEqual((st.st_ino, st.st_mode, st.st_uid),
                             (st0.st_ino, st0.st_mode, st0.st_uid))
        finally:
            os.close(keep)

    def test_fifo_without_writer(self):
        """A FIFO nobody has open: opening it for reading would block."""
        acct = self.env.fresh()
        path = self.env.spool_path(acct)
        os.mkfifo(path, 0o600)
        if IS_ROOT:
            os.chown(path, acct.uid, acct.gid)
        self.refused(acct, "spool is a FIFO without a writer")
        self.assertEqual(self.fifo_holders(path), [])

    def test_device(self):
        """A character device (/dev/zero's numbers) at the spool path."""
        self.require_root()
        acct = self.env.fresh()
        path = self.env.spool_path(acct)
        try:
            os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 5))
        except OSError as e:
            self.skipTest(f"cannot mknod here: {e}")
        os.chown(path, acct.uid, acct.gid)
        self.refused(acct, "spool is a character device")


class LiveDotlock(POP3TestCase):
    """A dotlock is stale only when its mtime stops moving: one refreshed
    by a live deliverer is honoured however old the file is; an abandoned
    one is removed as soon as it turns stale, even while UPDATE waits.
    (A dotlock stale from the start is test_update's
    test_stale_dotlock_removed.)"""

    STALE = 10

    def daemon_with(self, lock_timeout):
        d = self.env.shared_daemon(f"LiveDotlock{lock_timeout}",
                                   {"lock_timeout": str(lock_timeout),
                                    "dotlock_stale": str(self.STALE)})
        self.daemon, self.port = d, d.port
        return d

    def old_lock(self, lock, age):
        lock.write_bytes(b"4242\n")
        t = time.time() - age
        os.utime(lock, (t, t))
        return lock.stat().st_ino

    def test_refreshed_dotlock_honoured(self):
        self.daemon_with(2)
        spool = medium_spool(3)
        acct = self.new_mailbox(spool)
        path = self.env.spool_path(acct)
        c, _ = self.login(acct)
        self.ok(c, "DELE 1")
        lock = lock_of(path)
        # a deliverer that took the lock 9.5 s ago and keeps it fresh:
        # without its refreshes the lock would turn stale during QUIT
        ino = self.old_lock(lock, self.STALE - 0.5)
        stop = threading.Event()
        lost = []

        def refresher():
            while not stop.wait(0.25):
                try:
                    os.utime(lock)
                except FileNotFoundError:
                    lost.append(time.monotonic())
                    return

        th = threading.Thread(target=refresher, daemon=True)
        th.start()
        try:
            t0 = time.monotonic()
            r = c.cmd("QUIT", timeout=20)
            dt = time.monotonic() - t0
        finally:
            stop.set()
            th.join(5)
        self.assertEqual(lost, [], "the daemon removed a live dotlock")
        self.assertTrue(lock.exists() and lock.stat().st_ino == ino,
                        "the deliverer's dotlock was replaced")
        self.assertTrue(r.startswith("-ERR [SYS/TEMP]"), self.explain(
            c, "QUIT (dotlock refreshed by a live deliverer)", r,
            "-ERR [SYS/TEMP] ..."))
        self.assertGreater(dt, 1.5, "did not wait lock_timeout = 2")
        self.assertLess(dt, 8, "lock_timeout = 2 not honoured")
        self.assertEqual(path.read_bytes(), spool.data, "spool changed")
        lock.unlink()
        # the deliverer is done: the next UPDATE goes through
        c, _ = self.login(acct)
        self.ok(c, "DELE 1")
        self.quit(c)
        self.assertBytesEqual(path.read_bytes(), spool.without([1]), "spool")

    def test_abandoned_dotlock_turns_stale_while_waiting(self):
        self.daemon_with(6)
        spool = medium_spool(3)
        acct = self.new_mailbox(spool)
        path = self.env.spool_path(acct)
        c, _ = self.login(acct)
        self.ok(c, "DELE 2")
        lock = lock_of(path)
        self.old_lock(lock, self.STALE - 0.5)
        t0 = time.monotonic()
        r = c.cmd("QUIT", timeout=20)
        dt = time.monotonic() - t0
        self.assertTrue(r.startswith("+OK"), self.explain(
            c, f"QUIT (dotlock abandoned {self.STALE - 0.5} s ago, "
               f"dotlock_stale = {self.STALE}, lock_timeout = 6)", r, "+OK"))
        self.assertLess(dt, 5.5)
        self.assertBytesEqual(path.read_bytes(), spool.without([2]), "spool")
        self.assertFalse(lock.exists(), "stale dotlock left in place")


if __name__ == "__main__":
    unittest.main()
