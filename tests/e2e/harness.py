"""harness.py - the end-to-end test bench for mboxpop3d.

Everything a test needs to run the real daemon on 127.0.0.1 and talk to it:

  * Env        a private temp dir with a passwd file, a spool dir and test
               accounts (named ones with special properties, plus a pool of
               fresh ones so every test gets a mailbox nobody else touched);
  * Daemon     one mboxpop3d process (-f -d -c CONF) with its stderr in a log
               file, started on a free port and stopped with SIGTERM;
  * Client     a small POP3 client over a raw socket that keeps a transcript
               and checks that every server line ends in CRLF;
  * mbox       byte-exact spool builders and an independent model of what
               the daemon must send (wire_lines, retr_bytes, wire_size, ...);
  * POP3TestCase  assertions that print the command, the reply and the
               transcript on failure.

Only the Python 3 standard library is used (Debian 12's python3 3.11).
Environment:
  MBOXPOP3D_BIN       daemon to test (default: REPO/mboxpop3d)
  MBOXPOP3D_E2E_KEEP  if set, the temp dir is kept for inspection
"""

import atexit
import errno
import fcntl
import grp
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DAEMON = os.environ.get("MBOXPOP3D_BIN") or str(REPO / "mboxpop3d")
HOST = "127.0.0.1"
IS_ROOT = os.geteuid() == 0
GREETING = "+OK mboxpop3d ready"

# Bounds for every wait in the suite (seconds).
START_TIMEOUT = 10.0      # daemon must answer within this after exec
STOP_TIMEOUT = 5.0        # after SIGTERM, before SIGKILL
READ_TIMEOUT = 10.0       # one server reply (covers failed-login delays)
INUSE_RETRY = 3.0         # how long login() retries a transient [IN-USE]


class HarnessError(Exception):
    """The bench itself could not do its job (not a daemon verdict)."""


# ---------------------------------------------------------------- hashes

_mkhash_path = None
_hash_cache = {}


def mkhash_binary():
    """Returns the path of build/tests/mkhash, building it with make if
    needed.  If the Makefile cannot build it yet, compiles the same source
    with cc into a private dir (so the bench works while the build grows)."""
    global _mkhash_path
    if _mkhash_path:
        return _mkhash_path
    target = REPO / "build" / "tests" / "mkhash"
    if not target.exists():
        subprocess.run(["make", "-s", "build/tests/mkhash"], cwd=REPO,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=120)
    if target.exists():
        _mkhash_path = str(target)
        return _mkhash_path
    src = REPO / "tests" / "tools" / "mkhash.c"
    out = Path(tempfile.gettempdir()) / f"mboxpop3d-e2e-mkhash-{os.getuid()}"
    if not out.exists():
        r = subprocess.run(["cc", "-O", "-o", str(out), str(src), "-lcrypt"],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise HarnessError("cannot build mkhash: " + r.stderr)
    _mkhash_path = str(out)
    return _mkhash_path


def mkhash(password, prefix="$6$"):
    """crypt(3) hash of password; None if this libcrypt lacks the method."""
    key = (password, prefix)
    if key not in _hash_cache:
        r = subprocess.run([mkhash_binary(), password, prefix],
                           capture_output=True, text=True, timeout=60)
        _hash_cache[key] = r.stdout.strip() if r.returncode == 0 else None
    return _hash_cache[key]


# ---------------------------------------------------------------- accounts

class Account:
    def __init__(self, name, password, uid, gid, hash_field):
        self.name, self.password = name, password
        self.uid, self.gid = uid, gid
        self.hash_field = hash_field

    def __repr__(self):
        return f"Account({self.name} uid={self.uid} gid={self.gid})"


POOL_SIZE = 260
POOL_PASSWORD = "pool-secret-7"

# name -> (password, hash prefix or special, uid kind)
#   special "!": locked copy of a valid hash, "*": just "*", "": empty field
NAMED = [
    ("alice", "alice-secret", "$6$", "user"),
    ("bob", "b0b.Secret!", "$6$", "user"),
    ("carol", "carol-pw", "$6$", "user"),
    ("spacey", "correct horse battery staple", "$6$", "user"),
    ("locked", "locked-pw", "!", "user"),
    ("star", "star-pw", "*", "user"),
    ("nopw", "", "", "user"),
    ("root", "root-pw", "$6$", "root"),
    ("toor", "toor-pw", "$6$", "root"),
    ("hsha512", "sha512-pw", "$6$", "user"),
    ("hyescrypt", "yescrypt-pw", "$y$", "user"),
    ("hbcrypt", "bcrypt-pw", "$2b$", "user"),
    ("hmd5", "md5-pw", "$1$", "user"),
]


def _free_ids(count, start=61001):
    """count uids/gids from start on that no system user/group uses."""
    ids, n = [], start
    while len(ids) < count:
        if n > 65000:
            raise HarnessError("no free uid range")
        try:
            pwd.getpwuid(n)
            used = True
        except KeyError:
            try:
                grp.getgrgid(n)
                used = True
            except KeyError:
                used = False
        if not used:
            ids.append(n)
        n += 1
    return ids


def make_accounts():
    """The test accounts: named ones first, then the pool t001..."""
    total = len(NAMED) + POOL_SIZE
    if IS_ROOT:
        ids = _free_ids(total)
    else:
        ids = [os.getuid()] * total
    accounts, i = {}, 0
    gid_default = os.getgid()
    for name, password, kind, uidkind in NAMED:
        if kind == "!":
            h = "!" + mkhash(password, "$6$")
        elif kind == "*":
            h = "*"
        elif kind == "":
            h = ""
        else:
            h = mkhash(password, kind)  # None: method unavailable
        if uidkind == "root":
            uid = gid = 0
        else:
            uid = ids[i]
            gid = ids[i] if IS_ROOT else gid_default
        i += 1
        accounts[name] = Account(name, password, uid, gid, h)
    pool_hash = mkhash(POOL_PASSWORD, "$6$")
    for k in range(POOL_SIZE):
        name = f"t{k + 1:03d}"
        uid = ids[i]
        gid = ids[i] if IS_ROOT else gid_default
        i += 1
        accounts[name] = Account(name, POOL_PASSWORD, uid, gid, pool_hash)
    return accounts


# ---------------------------------------------------------------- network

def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def port_open(port, timeout=1.0):
    try:
        s = socket.create_connection((HOST, port), timeout=timeout)
    except OSError:
        return False
    s.close()
    return True


class ProtocolError(AssertionError):
    """The server broke the wire format (bare LF, garbage, early close)."""


class ConnectionClosed(ProtocolError):
    pass


def _short(b, limit=200):
    if isinstance(b, (bytes, bytearray)):
        b = bytes(b).decode("latin-1")
    r = repr(b)
    return r if len(r) <= limit else r[:limit] + f"...({len(b)} chars)"


class Client:
    """A POP3 client over a raw socket.

    Every line the server sends must end in CRLF (RFC 1939 section 3);
    readline() raises ProtocolError otherwise.  The transcript keeps what
    was said, for failure messages."""

    def __init__(self, port, host=HOST, timeout=READ_TIMEOUT,
                 read_greeting=True):
        self.port = port
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = bytearray()
        self.scan_from = 0
        self.eof = False
        self.log = []
        self.greeting = self.readline_str() if read_greeting else None

    # -- transcript
    def _note(self, who, data):
        self.log.append(f"{who}: {_short(data)}")
        if len(self.log) > 400:
            del self.log[:100]

    def transcript(self, last=25):
        return "\n".join(self.log[-last:])

    # -- output
    def send_raw(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self._note("C", data)
        self.sock.settimeout(self.timeout)
        self.sock.sendall(data)

    def send(self, line):
        """Sends one command line with CRLF."""
        if isinstance(line, str):
            line = line.encode("latin-1")
        self.send_raw(line + b"\r\n")

    # -- input
    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("no reply within the time limit")
        self.sock.settimeout(left)
        chunk = self.sock.recv(262144)
        if not chunk:
            self.eof = True
            raise ConnectionClosed("server closed the connection")
        self.buf += chunk

    def readline(self, timeout=None):
        """Next server line without its CRLF (bytes)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            nl = self.buf.find(b"\n", self.scan_from)
            if nl >= 0:
                break
            self.scan_from = len(self.buf)
            if self.eof:
                raise ConnectionClosed(
                    f"server closed the connection (partial line "
                    f"{_short(self.buf)})")
            self._fill(deadline)
        line = bytes(self.buf[:nl + 1])
        del self.buf[:nl + 1]
        self.scan_from = 0
        if not line.endswith(b"\r\n"):
            self._note("S", line)
            raise ProtocolError(f"server line not ended by CRLF: {_short(line)}")
        return line[:-2]

    def readline_str(self, timeout=None):
        line = self.readline(timeout).decode("latin-1")
        self._note("S", line)
        return line

    def read_multi_raw(self, timeout=None):
        """The raw bytes of a multi-line body, terminator included (the
        status line must have been read already)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        out = bytearray()
        while True:
            line = self.readline(max(0.01, deadline - time.monotonic()))
            out += line + b"\r\n"
            if line == b".":
                self._note("S", f"<{len(out)} bytes of multi-line data>")
                return bytes(out)

    def read_multi(self, timeout=None):
        """Lines of a multi-line body with dot-unstuffing, no terminator."""
        raw = self.read_multi_raw(timeout)
        return unstuff(raw)

    def cmd(self, line, timeout=None):
        """Sends a command, returns its status line (str)."""
        self.send(line)
        return self.readline_str(timeout)

    def read_until_eof(self, timeout):
        """Lines the server sends until it closes; raises socket.timeout if
        it does not close within timeout."""
        deadline = time.monotonic() + timeout
        lines = []
        while True:
            try:
                lines.append(self.readline_str(
                    max(0.01, deadline - time.monotonic())))
            except ConnectionClosed:
                return lines

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def abort(self):
        """Drops the connection at once (RST), as a crashing client would."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except OSError:
            pass
        self.close()


def unstuff(raw):
    """Multi-line body bytes (with the final '.' line) -> list of lines."""
    assert raw.endswith(b".\r\n"), raw[-20:]
    lines = raw[:-3].split(b"\r\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [l[1:] if l.startswith(b".") else l for l in lines]


# ---------------------------------------------------------------- mbox model

def from_line(sender="sender@example.org",
              date="Mon Jan  1 10:00:00 2024"):
    return f"From {sender} {date}\n".encode()


def message(subject, body="hello\n", extra_headers=(), received=None,
            eol=b"\n"):
    """A simple RFC 822 message with a Received header unique per subject.
    Header lines and body may be str or bytes; eol is the header line end."""
    def b(x):
        return x.encode() if isinstance(x, str) else x
    hdrs = [b"Received: " + b(received or
                              f"from mx.example.org by mail.example.org "
                              f"id {zlib.crc32(subject.encode())}; "
                              f"Mon, 1 Jan 2024 10:00:00 +0000"),
            b"From: Sender <sender@example.org>",
            b"To: rcpt@example.org",
            b"Subject: " + b(subject)]
    hdrs.extend(b(h) for h in extra_headers)
    return eol.join(hdrs) + eol + eol + b(body)


class Spool:
    """A spool built from message contents, with the byte span of every
    message (its From line .. its separator) and its content."""

    def __init__(self, contents, froms=None, sep=b"\n", trailing=True,
                 hidden=0):
        self.contents = list(contents)
        self.hidden = hidden          # leading pseudo messages not served
        data = bytearray()
        self.spans = []
        for i, content in enumerate(self.contents):
            start = len(data)
            f = froms[i] if froms else from_line(date=_date(i))
            if sep == b"\r\n" and not f.endswith(b"\r\n"):
                f = f[:-1] + b"\r\n"
            data += f + content
            last = i == len(self.contents) - 1
            if not last:
                if content and not content.endswith(b"\n"):
                    raise HarnessError("only the last message may lack a "
                                       "final newline")
                data += sep
            elif trailing and content.endswith(b"\n"):
                data += sep
            self.spans.append((start, len(data)))
        self.data = bytes(data)

    @property
    def served(self):
        """Contents of the messages a client sees (1-based = index+1)."""
        return self.contents[self.hidden:]

    def without(self, msgnums):
        """Expected spool after UPDATE deleting client message numbers."""
        drop = {n - 1 + self.hidden for n in msgnums}
        out = bytearray()
        pos = 0
        for i, (a, b) in enumerate(self.spans):
            if i in drop:
                out += self.data[pos:a]
                pos = b
        out += self.data[pos:]
        return bytes(out)


def _date(i):
    return f"Mon Jan  1 10:{i // 60 % 60:02d}:{i % 60:02d} 2024"


def wire_lines(content):
    """Lines of a message as a POP3 server sends them (no line ends, not
    dot-stuffed): split at LF; a CR right before an LF belongs to the line
    end; an unterminated last line is still a line (it keeps any CR it
    ends with, and gets a CRLF added)."""
    lines = content.split(b"\n")
    last = lines.pop()            # b"" if content ended with LF (or empty)
    out = [l[:-1] if l.endswith(b"\r") else l for l in lines]
    if last:
        out.append(last)
    return out


def wire_size(content):
    """RFC 1939 size: octets of the message with CRLF line ends."""
    return sum(len(l) + 2 for l in wire_lines(content))


def stuffed(lines):
    return b"".join((b"." + l if l.startswith(b".") else l) + b"\r\n"
                    for l in lines) + b".\r\n"


def retr_bytes(content):
    """The exact multi-line body RETR must send, terminator included."""
    return stuffed(wire_lines(content))


def top_lines(content, k):
    """Lines TOP n k must send: the header lines, the blank line, then k
    body lines (all lines if the message has no blank line)."""
    lines = wire_lines(content)
    for i, l in enumerate(lines):
        if l == b"":
            return lines[:i + 1 + k]
    return lines


def top_candidates(content, k):
    """Acceptable TOP n k bodies (bytes, stuffed, with terminator).  For a
    message without a blank line (headers only, or empty) a server may add
    the separating blank line RFC 1939 speaks of, or not."""
    lines = wire_lines(content)
    want = top_lines(content, k)
    out = [stuffed(want)]
    if b"" not in lines:
        out.append(stuffed(want + [b""]))
    return out


# ---------------------------------------------------------------- /proc

def _status(pid):
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


def proc_creds(pid):
    """{'uid': [r,e,s,fs], 'gid': [...], 'groups': [...], 'name': ...}"""
    st = _status(pid)
    if st is None:
        return None
    return {
        "pid": pid,
        "name": st.get("Name", "?"),
        "uid": [int(x) for x in st.get("Uid", "").split()],
        "gid": [int(x) for x in st.get("Gid", "").split()],
        "groups": [int(x) for x in st.get("Groups", "").split()],
    }


def descendants(pid):
    """Pids of every live descendant of pid (PPid scan of /proc)."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        st = _status(d)
        if st is None:
            continue
        try:
            children.setdefault(int(st.get("PPid", "0")), []).append(int(d))
        except ValueError:
            pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def server_socket_inodes(server_port, client_port):
    """Inodes of the server side of the TCP connection (v4, loopback)."""
    inodes = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            parts = row.split()
            if len(parts) < 10:
                continue
            lport = int(parts[1].rsplit(":", 1)[1], 16)
            rport = int(parts[2].rsplit(":", 1)[1], 16)
            if lport == server_port and rport == client_port:
                inodes.append(parts[9])
    return inodes


def pids_holding_socket(pids, inodes):
    wanted = {f"socket:[{i}]" for i in inodes}
    out = []
    for p in pids:
        try:
            fds = os.listdir(f"/proc/{p}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{p}/fd/{fd}") in wanted:
                    out.append(p)
                    break
            except OSError:
                pass
    return out


# ---------------------------------------------------------------- daemon

ORPHANS = []      # (daemon name, kind, pid) left alive after SIGTERM

SANITIZER_RE = re.compile(r"ERROR: (Address|Leak|Memory|Thread)Sanitizer|"
                          r"runtime error:|SUMMARY: \w+Sanitizer")


def sanitizer_lines(text):
    """The lines of sanitizer reports in a daemon's stderr text."""
    lines = text.splitlines()
    out = []
    for i, l in enumerate(lines):
        if SANITIZER_RE.search(l):
            out.extend(lines[i:i + 12] if not out else [l])
    return out


def wait_exit(proc, timeout):
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


class Daemon:
    """One mboxpop3d in the foreground (-f -d) with its stderr in a log."""

    def __init__(self, env, name="main", settings=None, extra_args=()):
        self.env = env
        self.name = name
        self.port = free_port()
        self.conf = env.dir / f"{name}.conf"
        self.log = env.dir / f"{name}.log"
        self.settings = dict(env.base_settings(self.port))
        self.settings.update(settings or {})
        self.extra_args = list(extra_args)
        self.proc = None
        self.orphans = []          # pids left behind after SIGTERM
        env.write_conf(self.conf, self.settings)

    def start(self):
        logf = open(self.log, "ab")
        args = [DAEMON, "-f", "-d", "-c", str(self.conf)] + self.extra_args
        self.proc = subprocess.Popen(args, cwd=REPO, stdin=subprocess.DEVNULL,
                                     stdout=logf, stderr=logf,
                                     start_new_session=True)
        logf.close()
        self.env.daemons.append(self)
        self.env.all_daemons.append(self)
        deadline = time.monotonic() + START_TIMEOUT
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise HarnessError(
                    f"daemon exited with {self.proc.returncode} at start:\n"
                    + self.log_tail())
            try:
                c = Client(self.port, timeout=2)
                c.cmd("QUIT")
                c.close()
                return self
            except (OSError, ProtocolError) as e:
                last = e
                time.sleep(0.05)
        raise HarnessError(f"daemon did not answer on port {self.port} "
                           f"within {START_TIMEOUT}s ({last}):\n"
                           + self.log_tail())

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM, bounded wait, SIGKILL.  Returns the exit status and
        records descendants still alive afterwards in self.orphans."""
        if self.proc is None:
            return None
        kids = descendants(self.proc.pid) if self.alive() else []
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        rc = wait_exit(self.proc, STOP_TIMEOUT)
        if rc is None:
            self.proc.kill()
            rc = wait_exit(self.proc, STOP_TIMEOUT)
            self.orphans.append(("master", self.proc.pid))
            ORPHANS.append((self.name, "master", self.proc.pid))
        # Children must go with the master; kill stragglers one by one.
        deadline = time.monotonic() + 2
        left = [k for k in kids if _status(k) is not None]
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = [k for k in left if _status(k) is not None]
        for k in left:
            st = _status(k)
            if st is None or st.get("State", "").startswith("Z"):
                continue
            self.orphans.append(("child", k))
            ORPHANS.append((self.name, "child", k))
            try:
                os.kill(k, signal.SIGKILL)
            except OSError:
                pass
        if self in self.env.daemons:
            self.env.daemons.remove(self)
        return rc

    def log_size(self):
        try:
            return self.log.stat().st_size
        except OSError:
            return 0

    def sanitizer_reports(self, since=0):
        """Lines of ASan/UBSan/LSan reports in the log after offset since
        (the sanitizer build build/mboxpop3d-test writes them to stderr)."""
        try:
            with open(self.log, "rb") as f:
                f.seek(since)
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return []
        return sanitizer_lines(text)

    def log_tail(self, n=30):
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-n:])


class Env:
    """Temp dir, passwd file, spool dir and accounts; starts daemons."""

    def __init__(self):
        base = os.environ.get("TMPDIR") or "/tmp"
        self.dir = Path(tempfile.mkdtemp(prefix="mboxpop3d-e2e-", dir=base))
        os.chmod(self.dir, 0o755)
        self.spool_dir = self.dir / "spool"
        self.spool_dir.mkdir()
        os.chmod(self.spool_dir, 0o755)
        if os.geteuid() == 0:
            # Like Debian's /var/mail: the keeper makes dotlocks with the
            # directory's group, as preauth_user (keeper.h).
            os.chown(self.spool_dir, 0, grp.getgrnam("mail").gr_gid)
            os.chmod(self.spool_dir, 0o2775)
        self.passwd = self.dir / "passwd"
        self.accounts = make_accounts()
        self._pool = [a for n, a in self.accounts.items()
                      if re.fullmatch(r"t\d{3}", n)]
        self._pool_lock = threading.Lock()
        lines = []
        for a in self.accounts.values():
            if a.hash_field is None:
                continue          # hash method unavailable: no such account
            lines.append(f"{a.name}:{a.hash_field}:{a.uid}:{a.gid}:"
                         f"{a.name} test:{self.dir}:/bin/sh\n")
        self.passwd.write_text("".join(lines))
        os.chmod(self.passwd, 0o644)
        self.daemons = []
        self.all_daemons = []
        self._main = None
        self._shared = {}

    # -- config
    def base_settings(self, port):
        return {
            "listen": f"{HOST}:{port}",
            "spool_dir": str(self.spool_dir),
            "passwd_file": str(self.passwd),
            "idle_timeout": "60",
            "lock_timeout": "5",
            "dotlock_stale": "60",
            "min_spare": "2",
            "max_spare": "4",
            "max_children": "40",
            "mbox_locks": "fcntl dotlock",
            # Every test client comes from 127.0.0.1: no per-address cap
            # unless a test sets one.
            "max_per_ip": "0",
            # Wrong passwords are part of many tests: no delay, no
            # per-address blocking, unless a test asks for them.
            "auth_fail_delay": "0",
            "max_auth_failures": "100",
            "ip_auth_failures": "0",
            "min_uid": "1",
            # As root: the pre-auth child and the keeper run as nobody,
            # the pre-auth child chrooted to an empty directory of the
            # test's own.
            "preauth_user": "nobody",
            "empty_dir": str(self.dir / "empty"),
        }

    def write_conf(self, path, settings, header="# mboxpop3d e2e test config\n"):
        text = header + "".join(f"{k} = {v}\n" for k, v in settings.items())
        Path(path).write_text(text)
        return path

    # -- daemons
    def main(self):
        """The shared daemon of this process (started on first use,
        restarted if it died)."""
        if self._main is None or not self._main.alive():
            self._main = Daemon(self, "main").start()
        return self._main

    def daemon(self, name, settings=None, extra_args=()):
        return Daemon(self, name, settings, extra_args).start()

    def shared_daemon(self, name, settings):
        """A daemon with special settings shared by one test class (started
        on first use, restarted if it died, stopped at cleanup)."""
        d = self._shared.get(name)
        if d is None or not d.alive():
            d = self._shared[name] = Daemon(self, name, settings).start()
        return d

    def cleanup(self):
        for d in list(self.daemons):
            d.stop()
        if os.environ.get("MBOXPOP3D_E2E_KEEP"):
            print(f"[harness] kept {self.dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- accounts
    def account(self, name):
        return self.accounts[name]

    def fresh(self):
        """An account no other test has used (its spool does not exist)."""
        with self._pool_lock:
            if not self._pool:
                raise HarnessError("account pool exhausted; raise POOL_SIZE")
            return self._pool.pop(0)

    # -- spools
    def spool_path(self, acct):
        return self.spool_dir / acct.name

    def write_spool(self, acct, data, mode=0o600):
        """Writes the spool byte for byte, owned by the account."""
        if isinstance(data, Spool):
            data = data.data
        p = self.spool_path(acct)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW,
                     mode)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if IS_ROOT:
                os.fchown(fd, acct.uid, acct.gid)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        return p

    def read_spool(self, acct):
        return self.spool_path(acct).read_bytes()

    def append_spool(self, acct, data, timeout=5.0):
        """Appends like a delivery agent: dotlock + fcntl lock, O_APPEND."""
        p = self.spool_path(acct)
        lock = Path(str(p) + ".lock")
        deadline = time.monotonic() + timeout
        while True:
            try:
                lfd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                os.close(lfd)
                break
            except FileExistsError:
                if time.monotonic() > deadline:
                    raise HarnessError(f"{lock} held for {timeout}s")
                time.sleep(0.02)
        try:
            fd = os.open(p, os.O_WRONLY | os.O_APPEND)
            try:
                while True:
                    try:
                        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except OSError as e:
                        if e.errno not in (errno.EAGAIN, errno.EACCES):
                            raise
                        if time.monotonic() > deadline:
                            raise HarnessError(f"{p} fcntl-locked for "
                                               f"{timeout}s")
                        time.sleep(0.02)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                fcntl.lockf(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        finally:
            os.unlink(lock)


_env = None
_env_lock = threading.Lock()


def env():
    """The process-wide Env (created on first use, removed at exit)."""
    global _env
    with _env_lock:
        if _env is None:
            _env = Env()
            atexit.register(shutdown)
        return _env


def shutdown():
    global _env
    if _env is not None:
        _env.cleanup()
        _env = None


# ---------------------------------------------------------------- test case

def run_daemon_cmd(args, input=None, timeout=15):
    """Runs the daemon binary with args (not as a server); returns
    CompletedProcess with bytes stdout/stderr."""
    return subprocess.run([DAEMON] + list(args), cwd=REPO, input=input,
                          capture_output=True, timeout=timeout)


class POP3TestCase(unittest.TestCase):
    """Base class: self.env, self.daemon (shared), and helpers that put the
    command, the reply and the transcript into every failure message."""

    maxDiff = 4000
    # A class that needs special daemon settings names them here and gets
    # its own daemon (self.daemon / self.port) instead of the shared one.
    daemon_settings = None

    def setUp(self):
        self.env = env()
        self._clients = []
        self.inuse_retries = 0
        self._log_offsets = {id(d): d.log_size() for d in self.env.all_daemons}
        if self.daemon_settings:
            self.daemon = self.env.shared_daemon(type(self).__name__,
                                                 self.daemon_settings)
            self.port = self.daemon.port
            return
        main = self.env._main
        if main is not None and not main.alive():
            rc = main.proc.returncode
            tail = main.log_tail()
            self.env._main = None
            self.env.main()
            self.fail(f"the shared daemon had died (exit {rc}) before this "
                      f"test; restarted it.  Log tail:\n{tail}")
        self.daemon = self.env.main()
        self.port = self.daemon.port

    def tearDown(self):
        for c in self._clients:
            c.close()
        # Sanitizer reports (build/mboxpop3d-test) fail the test that
        # was running when they appeared.
        reports = []
        for d in self.env.all_daemons:
            rep = d.sanitizer_reports(self._log_offsets.get(id(d), 0))
            if rep:
                reports.append(f"[{d.name} daemon, {d.log}]\n" +
                               "\n".join(rep[:40]))
        if reports:
            self.fail("sanitizer reports in the daemon log:\n" +
                      "\n".join(reports))

    # -- connections
    def connect(self, port=None, check_greeting=True):
        c = Client(port or self.port)
        self._clients.append(c)
        if check_greeting:
            self.assertEqual(c.greeting, GREETING,
                             "greeting\n" + c.transcript())
        return c

    def login(self, acct, port=None, password=None, client=None):
        """USER/PASS to +OK (retrying a transient [IN-USE] briefly).
        Returns (client, PASS reply)."""
        deadline = time.monotonic() + INUSE_RETRY
        while True:
            c = client or self.connect(port)
            self.ok(c, f"USER {acct.name}")
            r = c.cmd(f"PASS {acct.password if password is None else password}")
            if r.startswith("-ERR [IN-USE]") and client is None \
                    and time.monotonic() < deadline:
                # the previous session may still be ending: retry briefly
                try:
                    c.cmd("QUIT", timeout=2)
                except (ProtocolError, OSError):
                    pass
                c.close()
                self.inuse_retries += 1
                time.sleep(0.1)
                continue
            self.assertTrue(r.startswith("+OK"),
                            self.explain(c, f"PASS (as {acct.name})", r,
                                         "+OK"))
            return c, r

    def explain(self, c, cmd, reply, expected):
        return (f"\ncommand:  {_short(cmd)}\nexpected: {expected}\n"
                f"got:      {_short(reply)}\ntranscript (last lines):\n"
                f"{c.transcript() if c else ''}")

    def ok(self, c, cmd):
        r = c.cmd(cmd)
        self.assertTrue(r.startswith("+OK"), self.explain(c, cmd, r, "+OK ..."))
        return r

    def err(self, c, cmd, code=None):
        r = c.cmd(cmd)
        want = "-ERR" + (f" [{code}]" if code else "")
        self.assertTrue(r.startswith(want), self.explain(c, cmd, r, want + " ..."))
        return r

    def multi(self, c, cmd, raw=False):
        """A multi-line command: +OK status, then the body."""
        r = self.ok(c, cmd)
        body = c.read_multi_raw()
        return (r, body) if raw else (r, unstuff(body))

    def quit(self, c):
        r = self.ok(c, "QUIT")
        # After QUIT the server closes the connection.
        try:
            extra = c.read_until_eof(5)
        except socket.timeout:
            self.fail(self.explain(c, "QUIT", r,
                                   "connection closed after QUIT"))
        self.assertEqual(extra, [], self.explain(c, "QUIT", extra,
                                                 "nothing after +OK"))
        return r

    def new_mailbox(self, spool, acct=None, mode=0o600):
        """A fresh account whose spool is `spool` (Spool or bytes)."""
        acct = acct or self.env.fresh()
        if spool is not None:
            self.env.write_spool(acct, spool, mode)
        return acct

    def assertBytesEqual(self, got, want, what):
        if got == want:
            return
        i = next((k for k in range(min(len(got), len(want)))
                  if got[k] != want[k]), min(len(got), len(want)))
        self.fail(f"{what}: differs at byte {i} (got {len(got)} bytes, "
                  f"expected {len(want)})\n  got:  {_short(got[max(0, i-40):i+60])}"
                  f"\n  want: {_short(want[max(0, i-40):i+60])}")

    def require_root(self):
        if not IS_ROOT:
            self.skipTest("needs root (privilege drop)")


# ---------------------------------------------------------------- pool size

# test_clients_more and test_transcripts take a fresh account per test (and
# getmail's retries one more each): with them the whole suite in one
# process needs more than the 260 accounts above.  make_accounts() reads
# POOL_SIZE when the Env is made, after this module has been loaded.
POOL_SIZE = 360
