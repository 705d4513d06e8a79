"""UPDATE state: what QUIT leaves in the spool file, byte for byte."""

import fcntl
import os
import threading
import time
import unittest

import fixtures
from pathlib import Path

from harness import (POP3TestCase, Spool, message, from_line,
                     retr_bytes, wire_size, IS_ROOT)


def ident(path):
    st = os.stat(path)
    return {"inode": st.st_ino, "dev": st.st_dev, "uid": st.st_uid,
            "gid": st.st_gid, "mode": oct(st.st_mode)}


class Update(POP3TestCase):

    def delete(self, spool, msgnums, mode=0o600):
        """Fresh mailbox with spool; DELE msgnums; QUIT; checks the file
        is original-minus-spans and kept its inode, owner and mode."""
        acct = self.new_mailbox(spool, mode=mode)
        path = self.env.spool_path(acct)
        before = ident(path)
        c, _ = self.login(acct)
        for n in msgnums:
            self.ok(c, f"DELE {n}")
        self.quit(c)
        self.assertBytesEqual(self.env.read_spool(acct),
                              spool.without(msgnums),
                              f"spool after DELE {msgnums} + QUIT")
        self.assertEqual(ident(path), before, "spool identity changed")
        return acct

    def test_delete_middle(self):
        self.delete(fixtures.simple(3), [2])

    def test_delete_first(self):
        self.delete(fixtures.simple(3), [1])

    def test_delete_last(self):
        self.delete(fixtures.simple(3), [3])

    def test_delete_several(self):
        self.delete(fixtures.simple(7), [1, 3, 4, 7])

    def test_delete_all(self):
        acct = self.delete(fixtures.simple(3), [1, 2, 3])
        self.assertEqual(os.path.getsize(self.env.spool_path(acct)), 0)

    def test_delete_unterminated_last(self):
        self.delete(fixtures.unterminated_last(), [2])

    def test_delete_before_unterminated_last(self):
        self.delete(fixtures.unterminated_last(), [1])

    def test_delete_crlf(self):
        self.delete(fixtures.crlf_spool(), [2])

    def test_delete_no_trailing_separator(self):
        self.delete(fixtures.no_trailing_separator(), [1])

    def test_delete_8bit_and_long(self):
        self.delete(Spool(fixtures.eight_bit().contents
                          + fixtures.long_line().contents), [1, 3])

    def test_delete_twin(self):
        self.delete(fixtures.identical_twins(), [2])

    def test_mode_kept(self):
        self.delete(fixtures.simple(3), [1], mode=0o640)
        self.delete(fixtures.simple(3), [2], mode=0o660)

    def test_owner_kept_root(self):
        self.require_root()
        acct = self.delete(fixtures.simple(3), [2])
        st = os.stat(self.env.spool_path(acct))
        self.assertEqual((st.st_uid, st.st_gid), (acct.uid, acct.gid))

    def test_many_messages_every_other(self):
        spool = fixtures.many(1500)
        self.delete(spool, list(range(1, 1501, 2)))

    def test_large_spool_delete_first(self):
        spool = Spool([message("first", body="x\n")] +
                      [message(f"big {i}", body=(b"y" * 999 + b"\n") * 2000)
                       for i in range(5)])       # about 10 MB moved
        self.delete(spool, [1])

    def test_new_session_sees_result(self):
        spool = fixtures.varied()
        acct = self.delete(spool, [2, 5])
        kept = [m for i, m in enumerate(spool.served, 1) if i not in (2, 5)]
        c, _ = self.login(acct)
        self.assertEqual(self.ok(c, "STAT"),
                         f"+OK {len(kept)} {sum(map(wire_size, kept))}")
        for i, m in enumerate(kept, 1):
            r, raw = self.multi(c, f"RETR {i}", raw=True)
            self.assertBytesEqual(raw, retr_bytes(m), f"RETR {i}")

    def test_no_lock_or_temp_files_left(self):
        acct = self.delete(fixtures.simple(3), [1])
        left = [p.name for p in self.env.spool_dir.iterdir()
                if p.name.startswith(acct.name) and p.name != acct.name]
        self.assertEqual(left, [], "files left in the spool dir")


class BigCut(POP3TestCase):
    """A truncation of 16 MiB or more answers QUIT at the commit point
    (the journal's DONE record on disk) and truncates after: the client
    must see +OK and the close, and anyone who waits for the locks - here
    the next login - must see the final spool."""

    def big_spool(self, n):
        return Spool([message(f"big {i}", body=(b"y" * 999 + b"\n") * 2000)
                      for i in range(n)])            # 2 MB a message

    def test_delete_all_then_next_login_sees_none(self):
        acct = self.new_mailbox(self.big_spool(10))
        c, _ = self.login(acct)
        for n in range(1, 11):
            self.ok(c, f"DELE {n}")
        self.quit(c)
        c2, _ = self.login(acct)
        self.assertEqual(self.ok(c2, "STAT"), "+OK 0 0")
        self.quit(c2)
        self.assertEqual(os.path.getsize(self.env.spool_path(acct)), 0)
        left = [p.name for p in self.env.spool_dir.iterdir()
                if acct.name in p.name and p.name != acct.name]
        self.assertEqual(left, [], "files left in the spool dir")

    def test_delete_trailing_keeps_the_rest(self):
        spool = self.big_spool(12)
        acct = self.new_mailbox(spool)
        c, _ = self.login(acct)
        for n in range(3, 13):
            self.ok(c, f"DELE {n}")
        self.quit(c)
        c2, _ = self.login(acct)
        self.assertEqual(self.ok(c2, "STAT").split()[1], "2")
        self.quit(c2)
        self.assertBytesEqual(self.env.read_spool(acct),
                              spool.without(list(range(3, 13))),
                              "spool after the big cut")


class Untouched(POP3TestCase):
    """Sessions that must not modify the spool at all."""

    def prepare(self, spool):
        acct = self.new_mailbox(spool)
        path = self.env.spool_path(acct)
        # an mtime in the past, so any rewrite would show
        os.utime(path, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
        return acct, path, os.stat(path)

    def assertSame(self, acct, path, st0, spool):
        self.assertBytesEqual(self.env.read_spool(acct), spool.data, "spool")
        st = os.stat(path)
        self.assertEqual((st.st_ino, st.st_mtime_ns, st.st_size),
                         (st0.st_ino, st0.st_mtime_ns, st0.st_size),
                         "inode/mtime/size changed")

    def test_quit_without_dele(self):
        spool = fixtures.simple(3)
        acct, path, st0 = self.prepare(spool)
        c, _ = self.login(acct)
        for i in (1, 2, 3):
            self.multi(c, f"RETR {i}")
        self.quit(c)
        self.assertSame(acct, path, st0, spool)

    def test_dele_rset_quit(self):
        spool = fixtures.simple(3)
        acct, path, st0 = self.prepare(spool)
        c, _ = self.login(acct)
        self.ok(c, "DELE 1")
        self.ok(c, "DELE 2")
        self.ok(c, "RSET")
        self.quit(c)
        self.assertSame(acct, path, st0, spool)

    def test_dropped_connection_deletes_nothing(self):
        spool = fixtures.simple(3)
        acct, path, st0 = self.prepare(spool)
        c, _ = self.login(acct)
        self.ok(c, "DELE 1")
        self.ok(c, "DELE 3")
        c.abort()
        # the next session (once the server noticed) sees all messages
        c2, r = self.login(acct)
        self.assertEqual(self.ok(c2, "STAT"),
                         f"+OK 3 {sum(map(wire_size, spool.served))}")
        self.quit(c2)
        self.assertSame(acct, path, st0, spool)

    def test_half_closed_connection_deletes_nothing(self):
        spool = fixtures.simple(2)
        acct, path, st0 = self.prepare(spool)
        c, _ = self.login(acct)
        self.ok(c, "DELE 1")
        c.sock.shutdown(1)      # EOF without QUIT
        c.read_until_eof(10)
        c2, _ = self.login(acct)
        self.assertEqual(self.ok(c2, "STAT"),
                         f"+OK 2 {sum(map(wire_size, spool.served))}")
        self.quit(c2)
        self.assertSame(acct, path, st0, spool)

    def test_quit_in_authorization_after_failed_pass(self):
        spool = fixtures.simple(1)
        acct, path, st0 = self.prepare(spool)
        c = self.connect()
        self.ok(c, f"USER {acct.name}")
        self.err(c, "PASS wrong", "AUTH")
        self.quit(c)
        self.assertSame(acct, path, st0, spool)


class Concurrent(POP3TestCase):
    """Mail delivered while a session is open; other writers."""

    def appended_msg(self, tag):
        return (from_line(date="Sat Jan  6 10:00:00 2024")
                + message(f"appended {tag}", body=f"new mail {tag}\n.dot\n")
                + b"\n")

    def test_mail_appended_during_session_kept(self):
        spool = fixtures.simple(3)
        acct = self.new_mailbox(spool)
        c, _ = self.login(acct)
        new = self.appended_msg("a")
        self.env.append_spool(acct, new)
        self.ok(c, "DELE 1")
        self.ok(c, "DELE 3")
        # the session still serves its snapshot
        r, raw = self.multi(c, "RETR 2", raw=True)
        self.assertBytesEqual(raw, retr_bytes(spool.served[1]), "RETR 2")
        self.quit(c)
        self.assertBytesEqual(self.env.read_spool(acct),
                              spool.without([1, 3]) + new,
                              "spool after UPDATE with appended mail")
        c, _ = self.login(acct)
        r, raw = self.multi(c, "RETR 2", raw=True)
        self.assertBytesEqual(raw, retr_bytes(new[new.index(b"\n") + 1:-1]),
                              "the appended message in the next session")

    def test_mail_appended_all_deleted(self):
        spool = fixtures.simple(2)
        acct = self.new_mailbox(spool)
        c, _ = self.login(acct)
        new = self.appended_msg("b") + self.appended_msg("c")
        self.env.append_spool(acct, new)
        self.ok(c, "DELE 1")
        self.ok(c, "DELE 2")
        self.quit(c)
        self.assertBytesEqual(self.env.read_spool(acct), new,
                              "spool after deleting all, with appended mail")

    def test_mail_appended_after_last_deleted(self):
        spool = fixtures.simple(3)
        acct = self.new_mailbox(spool)
        c, _ = self.login(acct)
        new = self.appended_msg("d")
        self.env.append_spool(acct, new)
        self.ok(c, "DELE 3")
        self.quit(c)
        self.assertBytesEqual(self.env.read_spool(acct),
                              spool.without([3]) + new, "spool")

    def test_mail_arriving_in_empty_mailbox(self):
        acct = self.new_mailbox(None)
        c, _ = self.login(acct)
        self.assertEqual(self.ok(c, "STAT"), "+OK 0 0")
        fd = os.open(self.env.spool_path(acct), os.O_CREAT | os.O_WRONLY, 0o600)
        if IS_ROOT:
            os.fchown(fd, acct.uid, acct.gid)
        os.close(fd)
        new = self.appended_msg("e")
        self.env.append_spool(acct, new)
        self.quit(c)
        self.assertEqual(self.env.read_spool(acct), new)

    def test_spool_rewritten_by_someone_else(self):
        """Another program rewrote the part we indexed: UPDATE must delete
        nothing (the other program's file stays as it wrote it)."""
        spool = fixtures.simple(3)
        acct = self.new_mailbox(spool)
        c, _ = self.login(acct)
        self.ok(c, "DELE 1")
        other = fixtures.simple(2)       # e.g. a MUA expunged message 3
        path = self.env.spool_path(acct)
        with open(path, "r+b") as f:
            f.write(other.data)
            f.truncate()
        r = c.cmd("QUIT")
        self.assertTrue(r.startswith("-ERR"), self.explain(
            c, "QUIT (spool rewritten by another program)", r,
            "-ERR [SYS/TEMP] ..."))
        self.assertBytesEqual(self.env.read_spool(acct), other.data,
                              "spool after refused UPDATE")

    def test_update_waits_for_dotlock(self):
        spool = fixtures.simple(3)
        acct = self.new_mailbox(spool)
        c, _ = self.login(acct)
        self.ok(c, "DELE 2")
        lock = self.env.spool_dir / f"{acct.name}.lock"
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        os.close(fd)
        timer = threading.Timer(0.7, os.unlink, (lock,))
        timer.start()
        try:
            t0 = time.monotonic()
            r = c.cmd("QUIT", timeout=15)
            waited = time.monotonic() - t0
        finally:
            timer.join()
        self.assertTrue(r.startswith("+OK"), self.explain(
            c, "QUIT (dotlock held by a deliverer for 0.7 s)", r, "+OK"))
        self.assertGreater(waited, 0.5, "UPDATE did not wait for the dotlock")
        self.assertBytesEqual(self.env.read_spool(acct), spool.without([2]),
                              "spool")

    def test_update_waits_for_fcntl_lock(self):
        spool = fixtures.simple(3)
        acct = self.new_mailbox(spool)
        c, _ = self.login(acct)
        self.ok(c, "DELE 2")
        fd = os.open(self.env.spool_path(acct), os.O_RDWR)
        fcntl.lockf(fd, fcntl.LOCK_EX)
        timer = threading.Timer(0.7, lambda: (fcntl.lockf(fd, fcntl.LOCK_UN),
                                              os.close(fd)))
        timer.start()
        try:
            t0 = time.monotonic()
            r = c.cmd("QUIT", timeout=15)
            waited = time.monotonic() - t0
        finally:
            timer.join()
        self.assertTrue(r.startswith("+OK"), self.explain(
            c, "QUIT (fcntl lock held for 0.7 s)", r, "+OK"))
        self.assertGreater(waited, 0.5, "UPDATE did not wait for fcntl lock")
        self.assertBytesEqual(self.env.read_spool(acct), spool.without([2]),
                              "spool")

    def test_spool_unlinked_and_recreated(self):
        """The spool was removed and a deliverer created a new one during
        the session: UPDATE must not apply our deletions to the new file."""
        spool = fixtures.simple(3)
        acct = self.new_mailbox(spool)
        c, _ = self.login(acct)
        self.ok(c, "DELE 1")
        path = self.env.spool_path(acct)
        os.unlink(path)
        new = fixtures.many(2)
        self.env.write_spool(acct, new)
        try:
            c.cmd("QUIT")
        except ConnectionError:
            pass
        self.assertBytesEqual(self.env.read_spool(acct), new.data,
                              "the new spool after the old session's QUIT")

    def test_spool_renamed_over(self):
        """Another program replaced the spool by rename(): same as above."""
        spool = fixtures.simple(3)
        acct = self.new_mailbox(spool)
        c, _ = self.login(acct)
        self.ok(c, "DELE 2")
        path = self.env.spool_path(acct)
        new = Spool(spool.contents + [message("extra")])   # same prefix!
        tmp = self.env.spool_dir / f".{acct.name}.tmp"
        tmp.write_bytes(new.data)
        if IS_ROOT:
            os.chown(tmp, acct.uid, acct.gid)
        os.chmod(tmp, 0o600)
        os.rename(tmp, path)
        try:
            r = c.cmd("QUIT")
        except ConnectionError:
            r = "(closed)"
        got = self.env.read_spool(acct)
        # Deleting message 2 from the new file is acceptable only if the
        # daemon re-verified it; anything else must leave the file as is.
        if got != new.data:
            self.assertBytesEqual(got, new.without([2]),
                                  f"spool replaced by rename (QUIT: {r})")

    def test_abort_during_big_retr_deletes_nothing(self):
        spool = fixtures.big_dotty()
        acct = self.new_mailbox(spool)
        c, _ = self.login(acct)
        self.ok(c, "DELE 2")
        c.send(b"RETR 1")
        c.readline_str()
        c.sock.recv(1000)
        c.abort()
        c2, _ = self.login(acct)
        self.assertEqual(self.ok(c2, "STAT"),
                         f"+OK 2 {sum(map(wire_size, spool.served))}")
        self.quit(c2)
        self.assertEqual(self.env.read_spool(acct), spool.data)

    def test_stale_dotlock_removed(self):
        """A dotlock untouched for longer than dotlock_stale (60 s here)
        is stale: UPDATE removes it and proceeds."""
        spool = fixtures.simple(3)
        acct = self.new_mailbox(spool)
        c, _ = self.login(acct)
        self.ok(c, "DELE 1")
        lock = self.env.spool_dir / f"{acct.name}.lock"
        lock.write_bytes(b"12345\n")
        old = time.time() - 3600
        os.utime(lock, (old, old))
        r = c.cmd("QUIT", timeout=15)
        self.assertTrue(r.startswith("+OK"), self.explain(
            c, "QUIT (a one-hour-old dotlock exists)", r, "+OK"))
        self.assertBytesEqual(self.env.read_spool(acct), spool.without([1]),
                              "spool")
        self.assertFalse(lock.exists(), "stale dotlock left in place")

    def test_login_does_not_block_delivery(self):
        """Locks are held only while scanning/updating: a deliverer can
        take them while a session is open."""
        spool = fixtures.simple(2)
        acct = self.new_mailbox(spool)
        c, _ = self.login(acct)
        t0 = time.monotonic()
        self.env.append_spool(acct, self.appended_msg("f"), timeout=3)
        self.assertLess(time.monotonic() - t0, 2.5)
        self.ok(c, "STAT")


class LockTimeout(POP3TestCase):
    """A daemon with lock_timeout = 1 and all three lock kinds: a lock
    held by someone else for longer gives -ERR, deletes nothing and
    leaves the other party's lock alone."""

    daemon_settings = {"lock_timeout": "1",
                       "mbox_locks": "fcntl dotlock flock"}

    def hold(self, kind, path):
        """Takes a lock of kind on the spool; returns a release function."""
        if kind == "dotlock":
            lock = Path(str(path) + ".lock")
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            os.close(fd)
            return lambda: (self.assertTrue(lock.exists(),
                                            "our dotlock was removed"),
                            lock.unlink())
        fd = os.open(path, os.O_RDWR)
        if kind == "fcntl":
            fcntl.lockf(fd, fcntl.LOCK_EX)
        else:
            fcntl.flock(fd, fcntl.LOCK_EX)
        return lambda: os.close(fd)

    def check_quit_refused(self, kind):
        spool = fixtures.simple(3)
        acct = self.new_mailbox(spool)
        c, _ = self.login(acct, port=self.port)
        self.ok(c, "DELE 2")
        release = self.hold(kind, self.env.spool_path(acct))
        try:
            t0 = time.monotonic()
            r = c.cmd("QUIT", timeout=15)
            dt = time.monotonic() - t0
        finally:
            release()
        self.assertTrue(r.startswith("-ERR"), self.explain(
            c, f"QUIT ({kind} lock held by another program)", r,
            "-ERR [IN-USE] ..."))
        self.assertLess(dt, 6, "lock_timeout = 1 not honoured")
        self.assertEqual(self.env.read_spool(acct), spool.data)

    def check_login_refused(self, kind):
        spool = fixtures.simple(2)
        acct = self.new_mailbox(spool)
        release = self.hold(kind, self.env.spool_path(acct))
        try:
            c = self.connect()
            self.ok(c, f"USER {acct.name}")
            r = c.cmd(f"PASS {acct.password}", timeout=15)
        finally:
            release()
        self.assertTrue(r.startswith("-ERR [IN-USE]"), self.explain(
            c, f"PASS ({kind} lock held by another program)", r,
            "-ERR [IN-USE] ..."))
        # once the lock is gone, the mailbox opens
        c2, _ = self.login(acct, port=self.port)
        self.ok(c2, "STAT")

    def test_quit_refused_fcntl(self):
        self.check_quit_refused("fcntl")

    def test_quit_refused_dotlock(self):
        self.check_quit_refused("dotlock")

    def test_quit_refused_flock(self):
        self.check_quit_refused("flock")

    def test_login_refused_dotlock(self):
        self.check_login_refused("dotlock")

    def test_login_refused_flock(self):
        self.check_login_refused("flock")


if __name__ == "__main__":
    unittest.main()
