#!/usr/bin/env python3
"""bruteforce.py - how many password guesses per second an attacker gets.

Starts ./mboxpop3d on a free 127.0.0.1 port with one test account and
measures wrong-password guesses per second from 1 and from 50 parallel
connections, first with the brute-force defences off (auth_fail_delay 0,
no per-connection or per-address limits: the "before"), then with the
defaults (the "after").  Each measurement is bounded in time; every
connection goes to 127.0.0.1 only.

    python3 tests/bench/bruteforce.py [--seconds 5]     (make bench-auth)
"""
import argparse
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DAEMON = REPO / "mboxpop3d"
MKHASH = REPO / "build" / "tests" / "mkhash"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(tmp, name, settings):
    port = free_port()
    conf = tmp / f"{name}.conf"
    lines = [f"listen = 127.0.0.1:{port}", f"spool_dir = {tmp / 'spool'}",
             f"passwd_file = {tmp / 'passwd'}", "min_spare = 4", "max_spare = 16",
             "max_children = 120", "max_per_ip = 0", "min_uid = 1"]
    if os.geteuid() == 0:
        lines += ["preauth_user = nobody", f"empty_dir = {tmp / 'empty'}"]
    lines += [f"{k} = {v}" for k, v in settings.items()]
    conf.write_text("\n".join(lines) + "\n")
    log = open(tmp / f"{name}.log", "wb")
    proc = subprocess.Popen([str(DAEMON), "-f", "-c", str(conf)], stderr=log)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(100).startswith(b"+OK"):
                    return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit(f"daemon {name} did not start; see {tmp / (name + '.log')}")


def attacker(port, seconds, counter, lock):
    """Guesses wrong passwords until time is up, reconnecting as needed."""
    end = time.monotonic() + seconds
    guesses = 0
    while time.monotonic() < end:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=seconds + 5)
            f = s.makefile("rb")
            if not f.readline().startswith(b"+OK"):
                s.close()
                time.sleep(0.05)        # refused (blocked address): try again
                continue
            while time.monotonic() < end:
                s.sendall(b"USER victim\r\nPASS guess%d\r\n" % guesses)
                if not f.readline().startswith(b"+OK"):
                    break
                reply = f.readline()
                if not reply:
                    break
                guesses += 1
                if b"closing" in reply:
                    break
            s.close()
        except OSError:
            time.sleep(0.05)
    with lock:
        counter[0] += guesses


def measure(port, clients, seconds):
    counter, lock = [0], threading.Lock()
    threads = [threading.Thread(target=attacker, args=(port, seconds, counter, lock))
               for _ in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 30)
    return counter[0] / (time.monotonic() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    if not DAEMON.exists() or not MKHASH.exists():
        sys.exit("build first: make mboxpop3d build/tests/mkhash")
    tmp = Path(tempfile.mkdtemp(prefix="mboxpop3d-bruteforce-"))
    try:
        (tmp / "spool").mkdir()
        (tmp / "empty").mkdir()
        os.chmod(tmp, 0o755)
        uid = os.getuid() if os.geteuid() != 0 else 61999
        gid = os.getgid() if os.geteuid() != 0 else 61999
        if os.geteuid() == 0:
            import grp
            os.chown(tmp / "spool", 0, grp.getgrnam("mail").gr_gid)
            os.chmod(tmp / "spool", 0o2775)
        h = subprocess.run([str(MKHASH), "the-real-password"], capture_output=True,
                           text=True, check=True).stdout.strip()
        (tmp / "passwd").write_text(f"victim:{h}:{uid}:{gid}::/nonexistent:/bin/sh\n")
        scenarios = [
            ("before (defences off)", {"auth_fail_delay": "0", "max_auth_failures": "100",
                                       "ip_auth_failures": "0"}),
            ("after (defaults)", {}),
        ]
        print(f"password guesses per second against 127.0.0.1, {args.seconds:g} s each "
              f"(crypt: sha512crypt, 5000 rounds)")
        print(f"{'configuration':28} {'1 connection':>14} {'50 connections':>16}")
        for name, settings in scenarios:
            proc, port = start(tmp, name.split()[0], settings)
            try:
                one = measure(port, 1, args.seconds)
                fifty = measure(port, 50, args.seconds)
            finally:
                proc.terminate()
                proc.wait(20)
            print(f"{name:28} {one:14.1f} {fifty:16.1f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
