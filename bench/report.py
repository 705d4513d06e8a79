#!/usr/bin/env python3
"""report.py - the tables of `make bench` from its raw.txt (stdlib only).

    report.py [--quick] RAW BIG_MSGS ONE_BYTES BIG_BYTES BIG_OFFSET2

RAW holds lines "TARGET SCENARIO KEY RUN RESULT mode=... key=value ...",
as bench/run.sh writes them.  Prints min / median / max over the runs of
every figure, the scaling table, the targets of issue #6 with MET or NOT
MET, and, when Dovecot or popa3d ran too, the ratios against them.
"""
import re
import statistics
import sys

KV = re.compile(r'(\w+)=("[^"]*"|\S+)')


def load(path):
    rows = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.split(" ", 5)
            if len(parts) < 6 or parts[4] != "RESULT":
                continue
            tgt, _sc, key, run = parts[:4]
            d = {k: v.strip('"') for k, v in KV.findall(parts[5])}
            d["run"] = run
            rows.setdefault((tgt, key), []).append(d)
    return rows


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


class Figures:
    def __init__(self, rows):
        self.rows = rows

    def targets(self):
        seen = []
        for (t, _k) in self.rows:
            if t != "ref" and t not in seen:
                seen.append(t)
        return seen

    def vals(self, tgt, key, field, ok_only=True):
        out = []
        for d in self.rows.get((tgt, key), []):
            if ok_only and d.get("ok") != "1":
                continue
            v = num(d.get(field))
            if v is not None:
                out.append(v)
        return out

    def med(self, tgt, key, field):
        v = self.vals(tgt, key, field)
        return statistics.median(v) if v else None

    def ratios(self, tgt, key_a, fa, key_b, fb):
        """Per-run a/b for runs present in both (same run number)."""
        a = {d["run"]: num(d.get(fa)) for d in self.rows.get((tgt, key_a), []) if d.get("ok") == "1"}
        b = {d["run"]: num(d.get(fb)) for d in self.rows.get((tgt, key_b), []) if d.get("ok") == "1"}
        return [a[r] / b[r] for r in a if r in b and a[r] is not None and b[r]]

    def by_run(self, tgt, key, field):
        """{run: value} of the runs that went right."""
        return {d["run"]: num(d.get(field)) for d in self.rows.get((tgt, key), [])
                if d.get("ok") == "1" and num(d.get(field)) is not None}

    def runs(self, tgt, key):
        return self.rows.get((tgt, key), [])

    def failures(self, tgt, key):
        bad = [d for d in self.runs(tgt, key) if d.get("ok") != "1"]
        return len(bad), (bad[0].get("err_text", "") if bad else "")


def fmt(v, digits=None):
    if v is None:
        return "-"
    if digits is None:
        a = abs(v)
        digits = 0 if a >= 100 else (1 if a >= 10 else (2 if a >= 0.1 else 3))
    return "{:,.{}f}".format(v, digits)


def mmm(v, digits=None):
    if not v:
        return "-"
    return "%s / %s / %s" % (fmt(min(v), digits), fmt(statistics.median(v), digits),
                             fmt(max(v), digits))


def table(head, rows):
    w = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
    line = lambda r: "  " + "  ".join(str(c).ljust(w[i]) if i == 0 else str(c).rjust(w[i])
                                      for i, c in enumerate(r))
    print(line(head))
    print("  " + "  ".join("-" * x for x in w))
    for r in rows:
        print(line(r))


def target_figures(F, t, big_msgs, one_mb):
    print("\n== %s: min / median / max over runs" % t)
    rows = []
    for c in (16, 64):
        k = "login%d" % c
        runs = F.runs(t, k)
        errs = sum(int(num(d.get("errors")) or 0) for d in runs)
        first = next((d.get("err_text") for d in runs if d.get("err_text")), "")
        rows.append(["a logins/s, %d clients" % c, mmm(F.vals(t, k, "rate", False)),
                     "p50 %s  p99 %s  max %s ms; %d errors%s" % (
                         fmt(F.med(t, k, "p50_ms")), fmt(F.med(t, k, "p99_ms")),
                         fmt(F.med(t, k, "max_ms")), errs, (" (" + first + ")") if first else "")])
    n_ok = len(F.vals(t, "open", "open_ms"))
    rows.append(["b open to STAT, ms", mmm(F.vals(t, "open", "open_ms")),
                 "%s messages, %s octets" % (fmt(F.med(t, "open", "msgs"), 0),
                                              fmt(F.med(t, "open", "octets"), 0))])
    rows.append(["b one bare pass over the spool, ms", mmm(F.vals(t, "passref", "ms")),
                 "mapped, read by %s threads, unmapped" % fmt(F.med(t, "passref", "threads"), 0)])
    rows.append(["b open / bare pass", mmm(F.ratios(t, "open", "open_ms", "passref", "ms"), 2),
                 "same run"])
    rows.append(["b LIST, ms", mmm(F.vals(t, "open", "list_ms")),
                 "%s lines" % fmt(F.med(t, "open", "list_lines"), 0)])
    rows.append(["b UIDL, ms", mmm(F.vals(t, "open", "uidl_ms")),
                 "%s lines" % fmt(F.med(t, "open", "uidl_lines"), 0)])
    rows.append(["c RETR %s MB message, MB/s" % fmt(one_mb, 0), mmm(F.vals(t, "retr1", "mb_s")),
                 "mismatches %s" % fmt(sum(F.vals(t, "retr1", "mismatches", False)), 0)])
    rows.append(["c loopback reference, MB/s", mmm(F.vals(t, "loopref", "mb_s")), ""])
    rows.append(["c RETR / loopback", mmm(F.ratios(t, "retr1", "mb_s", "loopref", "mb_s"), 2),
                 "same run"])
    ra = F.runs(t, "retrall")
    done = [num(d.get("msgs")) for d in ra]
    rows.append(["c RETR all one by one, msgs/s", mmm(F.vals(t, "retrall", "msgs_s", False)),
                 "%s of %s msgs per run, %s MB/s, mismatches %s%s" % (
                     fmt(min(done), 0) if done else "-", fmt(big_msgs, 0),
                     fmt(F.med(t, "retrall", "mb_s")),
                     fmt(sum(F.vals(t, "retrall", "mismatches", False)), 0),
                     "" if all(d.get("complete") == "1" for d in ra) else " (capped by time)")])
    rows.append(["d fsync reference, ms", mmm(F.vals(t, "fsyncref", "ms")),
                 "%s bytes" % fmt(F.med(t, "fsyncref", "bytes"), 0)])
    rows.append(["d DELE 1 + QUIT (to close), ms", mmm(F.vals(t, "dele1", "total_ms")),
                 "QUIT to +OK %s ms" % fmt(F.med(t, "dele1", "quit_ms"))])
    rows.append(["d DELE 1 / fsync reference", mmm(F.ratios(t, "dele1", "total_ms", "fsyncref", "ms"), 2),
                 "same run"])
    chk = F.runs(t, "dele1-check")
    rows.append(["d DELE 1 result", "%d/%d correct" % (sum(d.get("ok") == "1" for d in chk), len(chk)),
                 "; ".join("msgs %s identical %s" % (d.get("msgs"), d.get("identical")) for d in chk[:1])])
    rows.append(["d DELE all: QUIT to close, ms", mmm(F.vals(t, "deleall", "close_ms")),
                 "DELE loop %s ms, total %s ms" % (fmt(F.med(t, "deleall", "dele_ms")),
                                                    fmt(F.med(t, "deleall", "total_ms")))])
    chk = F.runs(t, "deleall-check")
    rows.append(["d DELE all result", "%d/%d correct" % (sum(d.get("ok") == "1" for d in chk), len(chk)),
                 "; ".join("msgs %s bytes %s" % (d.get("msgs"), d.get("bytes")) for d in chk[:1])])
    for k, label in (("idle100", "100-msg spools"), ("idlebig", "%s-msg spools" % fmt(big_msgs, 0))):
        runs = F.runs(t, k)
        s = runs[0].get("sessions") if runs else "-"
        nbad = F.failures(t, k)[0]
        rows.append(["e PSS per session, %s, KiB" % label, mmm(F.vals(t, k, "pss_per_session_kib")),
                     ("%d failed runs left out; " % nbad if nbad else "") + "%s sessions; RSS %s KiB; procs %s -> %s; own procs PSS %s KiB" % (
                         s, fmt(F.med(t, k, "rss_per_session_kib")),
                         fmt(F.med(t, k, "procs_before"), 0), fmt(F.med(t, k, "procs_during"), 0),
                         fmt(F.med(t, k, "conn_pss_per_session_kib")))])
    # Per message: the big spools against as many sessions on 100-message
    # spools (idle100few), so that shared pages are split alike.
    p100 = F.med(t, "idle100few", "pss_per_session_kib")
    same = p100 is not None
    if not same:
        p100 = F.med(t, "idle100", "pss_per_session_kib")
    pbig = F.med(t, "idlebig", "pss_per_session_kib")
    bpm = (pbig - p100) * 1024 / (big_msgs - 100) if p100 is not None and pbig is not None else None
    rows.append(["e bytes per message beyond 100", fmt(bpm),
                 "from the medians, %s sessions each" % (
                     "the same number of" if same else "different numbers of")])
    table(["figure", "min / median / max", "notes"], rows)
    return bpm


def scaling(F, t, big_msgs):
    sizes = sorted({int(k.split("-")[1]) for (tt, k) in F.rows if tt == t and k.startswith("rss-")})
    if not sizes:
        return None
    print("\n== %s: scaling by spool size (medians)" % t)
    rows, per = [], {}
    for n in sizes:
        big = n == big_msgs
        ko, kr, kd = ("open", "retrall", "dele1") if big else ("open-%d" % n, "retrall-%d" % n, "dele1-%d" % n)
        mb = (F.med(t, ko, "octets") or 0) / 1e6
        o = F.med(t, ko, "open_ms")
        rs = F.med(t, kr, "secs")
        rm = F.med(t, kr, "msgs")
        rmb = (F.med(t, kr, "octets") or 0) / 1e6
        d = F.med(t, kd, "total_ms")
        hwm = F.med(t, "rss-%d" % n, "conn_hwm_max_kib")
        r = {
            "open_ms_mb": o / mb if o is not None and mb else None,
            "retr_ms_mb": rs * 1000 / rmb if rs and rmb else None,
            "dele_ms_mb": d / mb if d is not None and mb else None,
        }
        per[n] = r
        rows.append([fmt(n, 0), fmt(mb, 1), fmt(o), fmt(o * 1000 / n if o is not None else None),
                     fmt(r["open_ms_mb"], 3), fmt(rs * 1000 if rs else None),
                     fmt(rs * 1e6 / rm if rs and rm else None), fmt(r["retr_ms_mb"], 3),
                     fmt(d), fmt(r["dele_ms_mb"], 3), fmt(hwm, 0)])
    table(["messages", "MB", "open ms", "us/msg", "ms/MB", "RETR-all ms", "us/msg", "ms/MB",
           "DELE 1 ms", "ms/MB", "peak RSS KiB"], rows)
    return per


def main():
    args = sys.argv[1:]
    quick = False
    if args and args[0] == "--quick":
        quick = True
        args = args[1:]
    raw, big_msgs, one_bytes, big_bytes, off2 = args
    big_msgs, one_mb = int(big_msgs), int(one_bytes) / 1e6
    F = Figures(load(raw))

    crypt1 = F.vals("ref", "cryptref", "hps_1")
    cryptn = F.vals("ref", "cryptref", "hps_all")
    procs = F.vals("ref", "procref", "per_s")
    # A login with privilege separation costs a hash and three processes
    # (pre-auth child, password check, session): what both cores can do
    # of that, run by run, before any POP3 or IPC work.
    hashes = F.by_run("ref", "cryptref", "hps_all")
    login_cap = [1 / (1 / hashes[r] + 3 / p) for r, p in F.by_run("ref", "procref", "per_s").items()
                 if p and hashes.get(r)]
    print("== references")
    table(["figure", "min / median / max", "notes"], [
        ["crypt(3) SHA-512/5000, hashes/s, 1 thread", mmm(crypt1), "%s ms per hash" % fmt(
            1000 / statistics.median(crypt1) if crypt1 else None)],
        ["crypt(3), hashes/s, all cores (login ceiling)", mmm(cryptn), ""],
        ["processes/s, all cores (fork, exit, wait)", mmm(procs), "%s us of CPU each" % fmt(
            F.med("ref", "procref", "cpu_us"))],
        ["a hash + 3 processes, /s, all cores", mmm(login_cap),
         "ceiling of a login with privilege separation"],
    ])

    bpm = {}
    per = {}
    for t in F.targets():
        bpm[t] = target_figures(F, t, big_msgs, one_mb)
        per[t] = scaling(F, t, big_msgs)

    t = "mboxpop3d"
    M = lambda k, f: F.med(t, k, f)
    res = []

    def target(name, fig, ok, note=""):
        res.append([name, fig, "-" if ok is None else ("MET" if ok else "NOT MET"), note])

    for c in (16, 64):
        r = M("login%d" % c, "rate")
        errs = sum(int(num(d.get("errors")) or 0) for d in F.runs(t, "login%d" % c))
        target("logins/s, %d clients >= 1,000" % c, fmt(r), r is not None and r >= 1000 and errs == 0,
               "%d errors" % errs)
    p99 = M("login16", "p99_ms")
    target("p99 login latency, 16 clients < 100 ms", fmt(p99), p99 is not None and p99 < 100)
    pop = F.med("popa3d", "login16", "rate")
    r16 = M("login16", "rate")
    if pop:
        target("logins/s, 16 clients >= 2.5x popa3d", "%sx" % fmt(r16 / pop, 2) if r16 else "-",
               r16 is not None and r16 / pop >= 2.5, "popa3d %s/s" % fmt(pop))
    cn = statistics.median(cryptn) if cryptn else None
    if cn and r16:
        target("(logins/s vs crypt ceiling, 16 clients)", "%s%%" % fmt(100 * r16 / cn, 0), None,
               "ceiling %s/s" % fmt(cn))
    lc = statistics.median(login_cap) if login_cap else None
    if lc and r16:
        target("(logins/s vs a hash + 3 processes, 16 clients)", "%s%%" % fmt(100 * r16 / lc, 0),
               None, "ceiling %s/s" % fmt(lc))
    for k, f, lim, name in (("open", "open_ms", 150, "open to STAT"), ("open", "list_ms", 50, "LIST"),
                            ("open", "uidl_ms", 50, "UIDL")):
        v = M(k, f)
        note = "bare pass %s ms" % fmt(M("passref", "ms")) if f == "open_ms" else ""
        target("%s, %s msgs <= %d ms" % (name, fmt(big_msgs, 0), lim), fmt(v), v is not None and v <= lim,
               note)
    rr = F.ratios(t, "retr1", "mb_s", "loopref", "mb_s")
    rv = statistics.median(rr) if rr else None
    target("RETR %s MB >= 60%% of loopback" % fmt(one_mb, 0), "%s%%" % fmt(rv * 100, 0) if rv else "-",
           rv is not None and rv >= 0.6, "%s vs %s MB/s" % (fmt(M("retr1", "mb_s")), fmt(M("loopref", "mb_s"))))
    ra = M("retrall", "msgs_s")
    mism = sum(F.vals(t, "retrall", "mismatches", False))
    target("RETR all one by one >= 20,000 msgs/s", fmt(ra), ra is not None and ra >= 20000 and mism == 0,
           "%d size mismatches" % mism)
    dr = F.ratios(t, "dele1", "total_ms", "fsyncref", "ms")
    dv = statistics.median(dr) if dr else None
    chk = F.runs(t, "dele1-check")
    good = all(d.get("ok") == "1" for d in chk) and chk
    target("DELE 1 + QUIT <= 2x fsync reference", "%sx" % fmt(dv, 2) if dv else "-",
           dv is not None and dv <= 2 and bool(good),
           "%s ms vs %s ms; %d/%d correct" % (fmt(M("dele1", "total_ms")), fmt(M("fsyncref", "ms")),
                                             sum(d.get("ok") == "1" for d in chk), len(chk)))
    dov = F.med("dovecot", "dele1", "total_ms")
    d1 = M("dele1", "total_ms")
    target("DELE 1 + QUIT faster than Dovecot", fmt(d1),
           (d1 < dov) if (dov and d1 is not None) else None,
           ("Dovecot %s ms" % fmt(dov)) if dov else "not measured: make bench PEERS=1")
    da = M("deleall", "close_ms")
    chk = F.runs(t, "deleall-check")
    target("DELE all: QUIT to close <= 150 ms", fmt(da),
           da is not None and da <= 150 and all(d.get("ok") == "1" for d in chk) and bool(chk),
           "plus %s ms of DELE round trips" % fmt(M("deleall", "dele_ms")))
    pss = M("idle100", "pss_per_session_kib")
    target("PSS per idle session, 100 msgs <= 200 KB", fmt(pss), pss is not None and pss <= 200, "KiB")
    b = bpm.get(t)
    target("bytes per message beyond that <= 40", fmt(b), b is not None and b <= 40,
           "%s-msg spools" % fmt(big_msgs, 0))
    p = per.get(t) or {}
    sizes = sorted(p)
    if len(sizes) >= 2:
        lo, hi = (sizes[1] if len(sizes) > 2 else sizes[0]), sizes[-1]
        worst = []
        for key, label in (("open_ms_mb", "open"), ("retr_ms_mb", "RETR"), ("dele_ms_mb", "DELE 1")):
            a, z = p[lo].get(key), p[hi].get(key)
            if a and z:
                worst.append((z / a, label))
        w = max(worst) if worst else None
        target("scaling %s -> %s msgs: time per MB grows <= 2x" % (fmt(lo, 0), fmt(hi, 0)),
               "%sx (%s)" % (fmt(w[0], 2), w[1]) if w else "-", w is not None and w[0] <= 2,
               ", ".join("%s %sx" % (l, fmt(x, 2)) for x, l in worst))
    print("\n== targets of issue #6 (mboxpop3d, medians)%s" % (
        "  [QUICK: smaller corpora than the targets name]" if quick else ""))
    table(["target", "measured", "verdict", "notes"], res)

    peers = [x for x in F.targets() if x != t]
    if peers:
        print("\n== against the peers (medians; > 1 means mboxpop3d is better)")
        metrics = [("logins/s, 16 clients", "login16", "rate", True),
                   ("logins/s, 64 clients", "login64", "rate", True),
                   ("open to STAT ms", "open", "open_ms", False),
                   ("LIST ms", "open", "list_ms", False), ("UIDL ms", "open", "uidl_ms", False),
                   ("RETR big message MB/s", "retr1", "mb_s", True),
                   ("RETR all msgs/s", "retrall", "msgs_s", True),
                   ("DELE 1 + QUIT ms", "dele1", "total_ms", False),
                   ("DELE all: QUIT to close ms", "deleall", "close_ms", False),
                   ("PSS/session 100 msgs KiB", "idle100", "pss_per_session_kib", False),
                   ("PSS/session big KiB", "idlebig", "pss_per_session_kib", False)]
        head = ["metric", t] + peers + ["vs " + x for x in peers]
        rows = []
        for label, k, f, higher in metrics:
            ours = F.med(t, k, f)
            theirs = [F.med(x, k, f) for x in peers]
            ratio = []
            for v in theirs:
                if ours is None or v is None or (higher and not v) or (not higher and not ours):
                    ratio.append("-")
                else:
                    ratio.append("%sx" % fmt(ours / v if higher else v / ours, 2))
            rows.append([label, fmt(ours)] + [fmt(v) for v in theirs] + ratio)
        table(head, rows)


if __name__ == "__main__":
    main()
