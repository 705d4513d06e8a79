"""More real POP3 clients against the daemon: getmail6, mpop, and
neomutt/mutt (driven through a pseudo-terminal: their POP code only runs
from the interactive index, so a pty plus a `push` of key functions is
their "batch mode").

Every client gets a private config, runs bounded by a timeout, and is
checked three ways:
  * every message arrived, byte-equivalent to the spool model once the
    client's own additions are allowed for (the mbox From_ line and its
    separator, the client's From-quoting, and the trace/status headers it
    adds: Return-Path, Delivered-To, its own Received, Content-Length ...);
  * the spool afterwards is exactly what the model says: unchanged when
    the client keeps mail on the server, without the deleted messages
    when it deletes;
  * leave-on-server runs fetch nothing twice (getmail's oldmail file,
    mpop's UIDL file) and fetch only what is new.
A client that is not installed is skipped, with the reason."""

import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import time
import unittest

from harness import (IS_ROOT, HOST, POP3TestCase, Spool, from_line,
                     message, wire_lines)
from test_clients import client_spool

CLIENT_TIMEOUT = 60        # seconds for one client run


# ------------------------------------------------------------ spools

def more_spool(unterminated_last=True):
    """client_spool's messages (dots, >From, 8-bit, CRLF, no final
    newline) plus a 300 KB dot-heavy message (longer than the daemon's
    output chunk) and a message with a 3000-octet line."""
    contents = client_spool().contents[:-1]
    lines, i = [], 0
    while sum(len(x) for x in lines) < 300 * 1024:
        n = (i * 37) % 199
        line = (b"." if i % 3 == 0 else b"") + bytes([65 + i % 26]) * n
        lines.append(line + (b"\r\n" if i % 5 == 0 else b"\n"))
        i += 1
    contents.append(message("client big", body=b"".join(lines)))
    contents.append(message("client long line", body=b"L" * 3000 + b"\nend\n"))
    if unterminated_last:
        contents.append(client_spool().contents[-1])
    return Spool(contents)


def new_mail(acct_env, acct, subject, day=7):
    """Appends one message like a delivery agent; returns its content."""
    m = message(subject, body=f"{subject} body\n")
    acct_env.append_spool(acct, from_line(
        date=f"Sun Jan  {day} 10:00:00 2024") + m + b"\n")
    return m


# ------------------------------------------------------------ the model

def lf_text(content):
    """The message with LF line ends, as a client stores it locally."""
    return b"".join(l + b"\n" for l in wire_lines(content))


def mboxrd_quote(text):
    """mboxrd From-quoting: one more '>' before any line '>*From '."""
    return re.sub(rb"(?m)^(>*From )", rb">\1", text)


FROM_LINE_RE = re.compile(rb"From \S+ +\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\n")


def split_mbox(data):
    """An mbox file a client wrote -> list of (From_ line, message).
    A message starts at a From_ line (with a ctime date) at the top of
    the file or after an empty line; the empty line before the next
    From_ line (and at the end) is the separator, not the message's."""
    starts = [m.start() for m in FROM_LINE_RE.finditer(data)
              if m.start() == 0 or data[m.start() - 2:m.start()] == b"\n\n"]
    if data and (not starts or starts[0] != 0):
        raise AssertionError(f"mbox does not start with a From_ line: "
                             f"{data[:80]!r}")
    out = []
    for k, a in enumerate(starts):
        b = starts[k + 1] if k + 1 < len(starts) else len(data)
        chunk = data[a:b]
        nl = chunk.index(b"\n") + 1
        body = chunk[nl:]
        if not body.endswith(b"\n\n") and not body == b"\n":
            raise AssertionError(f"message {k + 1} in the mbox does not end "
                                 f"in a separator line: {body[-60:]!r}")
        out.append((chunk[:nl], body[:-1]))
    return out


def header_fields(text):
    """(header fields, rest): each field with its continuation lines;
    rest begins with the empty line that ends the header."""
    fields, pos = [], 0
    while pos < len(text):
        end = text.find(b"\n", pos)
        end = len(text) if end < 0 else end + 1
        line = text[pos:end]
        if line in (b"\n", b"\r\n"):
            break
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line
        else:
            fields.append(line)
        pos = end
    return fields, text[pos:]


def strip_added(text, added):
    """Removes the header fields a client added.  added: {lower-case
    field name: regex the whole field must match (None: any)}.  Only
    those fields go; the original header must then be intact."""
    fields, rest = header_fields(text)
    keep, removed = [], []
    for f in fields:
        name = f.split(b":", 1)[0].decode("latin-1").strip().lower()
        pat = added.get(name, False)
        if pat is not False and (pat is None or re.search(pat, f)):
            removed.append(f)
        else:
            keep.append(f)
    return b"".join(keep) + rest, removed


def unfold_header(text):
    """Undoes a refolding of long header lines that only inserted line
    breaks before existing white space (Python's email package, which
    getmail uses, folds at 78 columns)."""
    fields, rest = header_fields(text)
    return b"".join(re.sub(rb"\n(?=[ \t])", b"", f) for f in fields) + rest


def subject_of(text):
    m = re.search(rb"(?mi)^Subject: (.*)$", b"".join(header_fields(text)[0]))
    return m.group(1) if m else None


class ClientCase(POP3TestCase):
    """Shared checks for the client classes."""

    binary_names = ()
    missing_reason = ""

    def setUp(self):
        super().setUp()
        self.bin = next((shutil.which(b) for b in self.binary_names
                         if shutil.which(b)), None)
        if not self.bin:
            self.skipTest(self.missing_reason)

    def workdir(self, acct, tag=""):
        """A private directory for one client's config and mail; owned by
        the user the client runs as (see run_as)."""
        d = self.env.dir / f"{type(self).__name__}-{acct.name}{tag}"
        d.mkdir(mode=0o700)
        return d

    def check_delivered(self, got, contents, added, quote=None, ordered=True,
                        unfold=False, what="message"):
        """got: delivered messages (bytes, LF ends); contents: spool
        model contents in order.  Each must equal the model's text with
        the client's From-quoting, after removing the header fields it
        added (and, with unfold, undoing the client's refolding of long
        header lines).  Unordered (maildir): matched by Subject."""
        self.assertEqual(len(got), len(contents),
                         f"{len(got)} {what}s delivered, expected "
                         f"{len(contents)}: subjects "
                         f"{[subject_of(g) for g in got]}")
        if not ordered:
            by_subject = {}
            for g in got:
                by_subject.setdefault(subject_of(g), []).append(g)
            ordered_got = []
            for m in contents:
                s = subject_of(lf_text(m))
                self.assertTrue(by_subject.get(s),
                                f"no delivered {what} with Subject {s!r}")
                ordered_got.append(by_subject[s].pop())
            got = ordered_got
        for i, (g, m) in enumerate(zip(got, contents), 1):
            stripped, removed = strip_added(g, added)
            if unfold:
                stripped = unfold_header(stripped)
            want = lf_text(m)
            if quote == "mboxrd":
                want = mboxrd_quote(want)
            self.assertBytesEqual(stripped, want,
                                  f"{what} {i} ({subject_of(m)!r}) as "
                                  f"delivered, minus the client's headers "
                                  f"{[r[:40] for r in removed]}")

    def check_spool(self, acct, want, what):
        self.assertBytesEqual(self.env.read_spool(acct), want,
                              f"spool after {what}")

    # -- running a client
    def run_as(self):
        """getmail refuses to deliver as root: as root the file-writing
        clients run as nobody; else as ourselves."""
        if IS_ROOT:
            return dict(user="nobody", group="nogroup", extra_groups=[])
        return {}

    def give(self, path):
        """Hands a work dir (recursively) to the user of run_as()."""
        if IS_ROOT:
            for root, dirs, files in os.walk(path):
                for n in [root] + [os.path.join(root, x) for x in dirs + files]:
                    shutil.chown(n, "nobody", "nogroup")

    def run_client(self, argv, home, expect_rc=0, as_user=False):
        env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8",
               "TMPDIR": str(home)}
        kw = self.run_as() if as_user else {}
        try:
            r = subprocess.run(argv, capture_output=True, env=env,
                               stdin=subprocess.DEVNULL,
                               timeout=CLIENT_TIMEOUT, cwd=str(home), **kw)
        except subprocess.TimeoutExpired as e:
            self.fail(f"{argv[0]} did not finish within {CLIENT_TIMEOUT}s:\n"
                      f"{(e.stdout or b'')[-2000:]!r}")
        log = (r.stdout + r.stderr).decode(errors="replace")
        if expect_rc is None:          # the caller judges the exit status
            return log + f"\nexit {r.returncode}\n"
        self.assertEqual(r.returncode, expect_rc,
                         f"{' '.join(argv)}\nexit {r.returncode}:\n"
                         f"{log[-3000:]}")
        return log


def maildir_messages(path):
    """Messages in a maildir's new/ and cur/ (bytes each)."""
    out = []
    for sub in ("new", "cur"):
        d = path / sub
        if d.is_dir():
            out.extend((d / n).read_bytes() for n in sorted(os.listdir(d)))
    return out


def clear_maildir(path):
    for sub in ("new", "cur"):
        for n in os.listdir(path / sub):
            os.unlink(path / sub / n)


# ------------------------------------------------------------ getmail6

GETMAIL_ADDED = {"return-path": None, "delivered-to": None,
                 "received": rb"with POP3 getmail"}
GETMAIL_TRIES = 3


class GetmailRace(Exception):
    """getmail's own lost-wakeup race: ForkingBase._wait_for_child waits
    on a Condition that the SIGCHLD handler may have notified before the
    wait began (the delivery child finished first, likely under load), so
    it reports "waiting child pid N timed out" although the child is done
    (after the retriever's timeout, 5 s here; seen about once in 20 runs
    even unloaded).  Not a daemon verdict: the test runs again from
    scratch, with a fresh account."""


def retry_getmail_race(test):
    def run(self):
        for attempt in range(1, GETMAIL_TRIES + 1):
            try:
                return test(self)
            except GetmailRace as e:
                last = e
                print(f"note: {self.id()}: getmail's SIGCHLD race ({e}), "
                      f"try {attempt} of {GETMAIL_TRIES}", file=sys.stderr)
        self.skipTest(f"getmail's SIGCHLD race hit {GETMAIL_TRIES} times "
                      f"in a row: {last}")
    run.__name__, run.__doc__ = test.__name__, test.__doc__
    return run


class Getmail(ClientCase):
    """getmail6 with SimplePOP3Retriever: a private getmail dir and rc
    file, Maildir and Mboxrd destinations, with and without delete."""

    binary_names = ("getmail",)
    missing_reason = "getmail (Debian package getmail6) not installed"

    def setup_getmail(self, acct, dest, delete=False):
        d = self.workdir(acct)
        if dest == "Maildir":
            target = d / "Maildir"
            for sub in ("", "new", "cur", "tmp"):
                (target / sub).mkdir(mode=0o700)
            path = f"{target}/"
        else:
            target = d / "mbox"
            target.write_bytes(b"")
            path = str(target)
        rc = d / "getmailrc"
        rc.write_text(
            "[retriever]\n"
            "type = SimplePOP3Retriever\n"
            f"server = {HOST}\nport = {self.port}\n"
            f"username = {acct.name}\npassword = {acct.password}\n"
            "timeout = 5\n\n"
            "[destination]\n"
            f"type = {dest}\npath = {path}\n\n"
            "[options]\n"
            "verbose = 2\n"
            "read_all = false\n"
            f"delete = {'true' if delete else 'false'}\n"
            "message_log_syslog = false\n")
        os.chmod(rc, 0o600)
        self.give(d)
        return d, target

    def getmail(self, d, expect_rc=0):
        log = self.run_client([self.bin, "--getmaildir", str(d),
                               "--rcfile", str(d / "getmailrc")],
                              d, expect_rc=None, as_user=True)
        race = re.search(r"operation error \(waiting child pid \d+ timed "
                         r"out\)", log)
        if race:
            raise GetmailRace(race.group(0))
        m = re.search(r"^exit (-?\d+)$", log, re.M)
        rc = int(m.group(1)) if m else None
        self.assertEqual(rc, expect_rc, log[-3000:])
        return log

    def delivered(self, target):
        if target.is_dir():
            got = maildir_messages(target)
            clear_maildir(target)
            return got
        data = target.read_bytes()
        target.write_bytes(b"")
        msgs = split_mbox(data)
        for f, _ in msgs:
            self.assertTrue(f.startswith(b"From "), f)
        return [m for _, m in msgs]

    def retrieved(self, log):
        m = re.search(r"(\d+) messages? \(\d+ bytes\) retrieved, (\d+) skipped",
                      log)
        self.assertTrue(m, log[-2000:])
        return int(m.group(1)), int(m.group(2))

    @retry_getmail_race
    def test_maildir_keep_then_nothing_new_then_only_new(self):
        spool = more_spool(unterminated_last=False)
        acct = self.new_mailbox(spool)
        d, target = self.setup_getmail(acct, "Maildir")
        log = self.getmail(d)
        self.check_delivered(self.delivered(target), spool.served,
                             GETMAIL_ADDED, ordered=False, unfold=True)
        self.check_spool(acct, spool.data, "getmail with delete = false")
        self.assertTrue(list(d.glob("oldmail-*")), "no oldmail file")
        # second run: oldmail knows every UIDL
        log = self.getmail(d)
        self.assertEqual(self.delivered(target), [], log[-2000:])
        self.assertEqual(self.retrieved(log), (0, len(spool.served)), log)
        self.check_spool(acct, spool.data, "second getmail run")
        # new mail: only it is fetched
        new = new_mail(self.env, acct, "getmail new")
        log = self.getmail(d)
        self.check_delivered(self.delivered(target), [new], GETMAIL_ADDED,
                             unfold=True)
        self.assertEqual(self.retrieved(log), (1, len(spool.served)), log)

    @retry_getmail_race
    def test_mboxrd_keep(self):
        spool = more_spool()
        acct = self.new_mailbox(spool)
        d, target = self.setup_getmail(acct, "Mboxrd")
        self.getmail(d)
        self.check_delivered(self.delivered(target), spool.served,
                             GETMAIL_ADDED, quote="mboxrd", unfold=True)
        self.check_spool(acct, spool.data, "getmail with delete = false")
        log = self.getmail(d)
        self.assertEqual(self.delivered(target), [], log[-2000:])

    @retry_getmail_race
    def test_maildir_delete(self):
        spool = more_spool()
        acct = self.new_mailbox(spool)
        d, target = self.setup_getmail(acct, "Maildir", delete=True)
        self.getmail(d)
        self.check_delivered(self.delivered(target), spool.served,
                             GETMAIL_ADDED, ordered=False, unfold=True)
        self.check_spool(acct, spool.without(range(1, len(spool.served) + 1)),
                         "getmail with delete = true")
        log = self.getmail(d)
        self.assertEqual(self.delivered(target), [], log[-2000:])
        self.assertEqual(self.retrieved(log), (0, 0), log)

    @retry_getmail_race
    def test_mboxrd_delete_then_new_mail(self):
        spool = more_spool(unterminated_last=False)
        acct = self.new_mailbox(spool)
        d, target = self.setup_getmail(acct, "Mboxrd", delete=True)
        self.getmail(d)
        self.check_delivered(self.delivered(target), spool.served,
                             GETMAIL_ADDED, quote="mboxrd", unfold=True)
        self.check_spool(acct, spool.without(range(1, len(spool.served) + 1)),
                         "getmail with delete = true")
        new = new_mail(self.env, acct, "getmail after delete")
        self.getmail(d)
        self.check_delivered(self.delivered(target), [new], GETMAIL_ADDED,
                             quote="mboxrd", unfold=True)
        self.check_spool(acct, b"", "the second getmail run with delete")


# ------------------------------------------------------------ mpop

MPOP_ADDED = {"received": rb"\(mpop-[\d.]+\) with POP3"}


class Mpop(ClientCase):
    """mpop with a private config file (auth user, tls off), delivering
    to an mbox or a maildir, keeping or deleting."""

    binary_names = ("mpop",)
    missing_reason = "mpop not installed"

    def setup_mpop(self, acct, delivery, keep=True):
        d = self.workdir(acct)
        if delivery == "maildir":
            target = d / "Maildir"
            for sub in ("", "new", "cur", "tmp"):
                (target / sub).mkdir(mode=0o700)
        else:
            target = d / "mbox"
            target.write_bytes(b"")
        rc = d / "mpoprc"
        rc.write_text(
            "defaults\n"
            "tls off\n"
            "timeout 15\n"
            "account test\n"
            f"host {HOST}\nport {self.port}\n"
            f"user {acct.name}\nauth user\npassword {acct.password}\n"
            f"delivery {delivery} {target}\n"
            f"keep {'on' if keep else 'off'}\n"
            f"uidls_file {d / 'uidls'}\n")
        os.chmod(rc, 0o600)
        return d, target

    def mpop(self, d, *extra, expect_rc=0):
        return self.run_client([self.bin, "-C", str(d / "mpoprc"), *extra,
                                "test"], d, expect_rc=expect_rc)

    def delivered(self, target):
        if target.is_dir():
            got = maildir_messages(target)
            clear_maildir(target)
            return got
        data = target.read_bytes()
        target.write_bytes(b"")
        return [m for _, m in split_mbox(data)]

    def test_mbox_keep_then_nothing_new_then_only_new(self):
        spool = more_spool(unterminated_last=False)
        acct = self.new_mailbox(spool)
        d, target = self.setup_mpop(acct, "mbox")
        log = self.mpop(d)
        self.check_delivered(self.delivered(target), spool.served, MPOP_ADDED,
                             quote="mboxrd")
        self.check_spool(acct, spool.data, "mpop with keep on")
        log = self.mpop(d)
        self.assertEqual(self.delivered(target), [], log)
        self.assertIn("new: no messages", log)
        self.check_spool(acct, spool.data, "second mpop run")
        new = new_mail(self.env, acct, "mpop new")
        before = self.env.read_spool(acct)
        log = self.mpop(d)
        self.check_delivered(self.delivered(target), [new], MPOP_ADDED,
                             quote="mboxrd")
        self.check_spool(acct, before, "third mpop run")

    def test_maildir_keep(self):
        spool = more_spool()
        acct = self.new_mailbox(spool)
        d, target = self.setup_mpop(acct, "maildir")
        self.mpop(d)
        self.check_delivered(self.delivered(target), spool.served, MPOP_ADDED,
                             ordered=False)
        self.check_spool(acct, spool.data, "mpop with keep on")
        log = self.mpop(d)
        self.assertEqual(self.delivered(target), [], log)

    def test_mbox_delete(self):
        spool = more_spool()
        acct = self.new_mailbox(spool)
        d, target = self.setup_mpop(acct, "mbox", keep=False)
        self.mpop(d)
        self.check_delivered(self.delivered(target), spool.served, MPOP_ADDED,
                             quote="mboxrd")
        self.check_spool(acct, spool.without(range(1, len(spool.served) + 1)),
                         "mpop with keep off")
        log = self.mpop(d)
        self.assertEqual(self.delivered(target), [], log)

    def test_maildir_delete_after_keep(self):
        """keep on, then keep off (--keep=off): the second run fetches
        nothing (all UIDLs known) but deletes everything it had fetched."""
        spool = more_spool()
        acct = self.new_mailbox(spool)
        d, target = self.setup_mpop(acct, "maildir")
        self.mpop(d)
        self.check_delivered(self.delivered(target), spool.served, MPOP_ADDED,
                             ordered=False)
        self.check_spool(acct, spool.data, "mpop with keep on")
        log = self.mpop(d, "--keep=off")
        self.assertEqual(self.delivered(target), [], log)
        self.check_spool(acct, spool.without(range(1, len(spool.served) + 1)),
                         "mpop --keep=off after a keep run")


# ------------------------------------------------------------ (neo)mutt

def run_in_pty(argv, env, timeout, cols=160, rows=40):
    """Runs argv on a new pseudo-terminal, collecting what it draws, until
    it exits (its exit status) or timeout (None; it is killed)."""
    pid, fd = pty.fork()
    if pid == 0:                                   # the child
        try:
            import fcntl
            import termios
            fcntl.ioctl(0, termios.TIOCSWINSZ,
                        struct.pack("HHHH", rows, cols, 0, 0))
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    out = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return None, bytes(out)
            r, _, _ = select.select([fd], [], [], min(left, 0.2))
            if not r:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:          # EIO: the child closed the terminal
                chunk = b""
            if not chunk:
                break
            out += chunk
        _, st = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(st), bytes(out)
    finally:
        os.close(fd)


MUTT_COPY_ADDED = {"content-length": None, "lines": None, "status": None,
                   "x-status": None}


class NeoMutt(ClientCase):
    """neomutt's POP support, run on a pty with `-e 'push ...'`:
    <fetch-mail> (pop_host into the spool mailbox, pop_delete off/on) and
    a pop:// folder (copy every message out, delete one, sync).
    Unlike getmail and mpop, <fetch-mail> keeps no UIDL list (only the
    obsolete LAST command, pop_last), so "nothing new twice" is not a
    property of this client and is not tested."""

    binary_names = ("neomutt",)
    missing_reason = "neomutt not installed"

    def setup_mutt(self, acct, pop_delete):
        d = self.workdir(acct)
        spoolfile = d / "inbox"
        spoolfile.write_bytes(b"")
        rc = d / "muttrc"
        rc.write_text(
            f'set pop_host="pop://{acct.name}:{acct.password}@{HOST}:'
            f'{self.port}"\n'
            f"set pop_delete={'yes' if pop_delete else 'no'}\n"
            f"set spoolfile={spoolfile}\n"
            f"set folder={d}\n"
            "set mbox_type=mbox\n"
            "set pop_authenticators=user\n"
            "set ssl_starttls=no\n"
            "set ssl_force_tls=no\n"
            'set header_cache=""\n'
            'set message_cachedir=""\n'
            "set confirmappend=no\n"
            "set confirmcreate=no\n"
            "set move=no\n"
            "set delete=yes\n"
            "set mail_check_stats=no\n"
            "set wait_key=no\n"
            "set timeout=0\n")
        os.chmod(rc, 0o600)
        return d, spoolfile

    def mutt(self, d, folder, keys):
        env = {"HOME": str(d), "PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8",
               "TERM": "xterm", "TMPDIR": str(d)}
        rc, screen = run_in_pty([self.bin, "-n", "-F", str(d / "muttrc"),
                                 "-f", folder, "-e", f'push "{keys}"'],
                                env, CLIENT_TIMEOUT)
        tail = re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b" ",
                      screen[-1500:]).decode(errors="replace")
        self.assertIsNotNone(rc, f"{self.bin} did not finish within "
                                 f"{CLIENT_TIMEOUT}s; screen tail:\n{tail}")
        self.assertEqual(rc, 0, f"{self.bin} exit {rc}; screen tail:\n{tail}")
        return tail

    def mbox_messages(self, path):
        data = path.read_bytes()
        path.write_bytes(b"")
        return [m for _, m in split_mbox(data)]

    def test_fetch_mail_keep(self):
        spool = more_spool()
        acct = self.new_mailbox(spool)
        d, inbox = self.setup_mutt(acct, pop_delete=False)
        # <exit>: leave the local mailbox as fetch-mail wrote it
        self.mutt(d, str(inbox), "<fetch-mail><exit>")
        self.check_delivered(self.mbox_messages(inbox), spool.served, {})
        self.check_spool(acct, spool.data, "fetch-mail with pop_delete=no")

    def test_fetch_mail_delete(self):
        spool = more_spool()
        acct = self.new_mailbox(spool)
        d, inbox = self.setup_mutt(acct, pop_delete=True)
        self.mutt(d, str(inbox), "<fetch-mail><exit>")
        self.check_delivered(self.mbox_messages(inbox), spool.served, {})
        self.check_spool(acct, spool.without(range(1, len(spool.served) + 1)),
                         "fetch-mail with pop_delete=yes")
        self.mutt(d, str(inbox), "<fetch-mail><exit>")
        self.assertEqual(self.mbox_messages(inbox), [])

    def test_pop_folder_copy_then_delete_one(self):
        spool = more_spool()
        acct = self.new_mailbox(spool)
        d, _ = self.setup_mutt(acct, pop_delete=False)
        url = f"pop://{acct.name}:{acct.password}@{HOST}:{self.port}/"
        saved = d / "saved"
        # copy every message out, quit (syncs: nothing marked deleted)
        self.mutt(d, url, f"<tag-pattern>~A<enter><tag-prefix>"
                          f"<copy-message>{saved}<enter><quit>")
        self.check_delivered(self.mbox_messages(saved), spool.served,
                             MUTT_COPY_ADDED)
        self.check_spool(acct, spool.data, "a pop:// folder opened and quit")
        # delete message 3 ("client from") and sync
        self.mutt(d, url, "<delete-pattern>~s client.from<enter>"
                          "<sync-mailbox><quit>")
        self.check_spool(acct, spool.without([3]),
                         "deleting message 3 in a pop:// folder")


class Mutt(NeoMutt):
    """The same with classic mutt."""

    binary_names = ("mutt",)
    missing_reason = "mutt not installed"


if __name__ == "__main__":
    unittest.main()
