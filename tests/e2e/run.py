#!/usr/bin/python3
"""run.py - runs the mboxpop3d end-to-end suite.

    python3 tests/e2e/run.py [-v] [-k PATTERN]... [MODULE]...

MODULE is a test module name (test_update) or a path; default: every
tests/e2e/test_*.py.  -k selects tests whose id contains PATTERN.
Prints one progress line per test and ends with exactly one line

    RESULT passed=N failed=M skipped=K

(counts of test methods; errors count as failed).  Exit status 1 if
M > 0, 2 if the suite could not start.  MBOXPOP3D_BIN selects the daemon
(default: ./mboxpop3d at the top of the repository).
"""

import argparse
import os
import sys
import time
import traceback
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import harness  # noqa: E402


class Result(unittest.TestResult):
    """Collects one outcome per test method (a failed subtest fails its
    method) and prints one progress line per method."""

    def __init__(self, verbose):
        super().__init__()
        self.verbose = verbose
        self.outcome = {}        # test id -> "ok" | "FAIL" | "ERROR" | "skip"
        self.reports = []        # (test id, kind, text)
        self.t0 = 0.0
        self.done = 0
        self.note = ""

    def startTest(self, test):
        super().startTest(test)
        self.t0 = time.monotonic()
        self.note = ""

    def _set(self, test, kind, text=None):
        tid = test.id()
        rank = {"ok": 0, "skip": 1, "FAIL": 2, "ERROR": 3}
        if rank[kind] >= rank.get(self.outcome.get(tid, "ok"), 0) \
                or tid not in self.outcome:
            self.outcome[tid] = kind
        if text:
            self.reports.append((tid, kind, text))
            if self.verbose:
                print(text, flush=True)

    def addSuccess(self, test):
        super().addSuccess(test)
        self._set(test, "ok")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._set(test, "FAIL", self.failures[-1][1])

    def addError(self, test, err):
        # errors of setUpModule/setUpClass arrive with a pseudo test
        super().addError(test, err)
        self._set(test, "ERROR", self.errors[-1][1])

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._set(test, "skip")
        self.note = f": {reason}"

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._set(test, "ok")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._set(test, "FAIL", "unexpected success")

    def addSubTest(self, test, subtest, err):
        if err is None:
            return
        text = self._exc_info_to_string(err, test)
        kind = "FAIL" if issubclass(err[0], test.failureException) else "ERROR"
        self._set(test, kind, f"[{subtest._subDescription()}]\n{text}")

    def stopTest(self, test):
        super().stopTest(test)
        self.done += 1
        kind = self.outcome.setdefault(test.id(), "ok")
        dt = time.monotonic() - self.t0
        print(f"[{self.done:3d}] {kind:5s} {test.id()} ({dt:.2f}s){self.note}",
              flush=True)


def iter_tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from iter_tests(t)
        else:
            yield t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="print each failure as it happens")
    ap.add_argument("-k", action="append", default=[], metavar="PATTERN",
                    help="only tests whose id contains PATTERN")
    ap.add_argument("modules", nargs="*")
    args = ap.parse_args()

    os.chdir(harness.REPO)
    if not os.access(harness.DAEMON, os.X_OK):
        print(f"run.py: no daemon at {harness.DAEMON} (run make first, or "
              f"set MBOXPOP3D_BIN)", file=sys.stderr)
        print("RESULT passed=0 failed=0 skipped=0")
        return 2

    loader = unittest.TestLoader()
    names = args.modules or sorted(p.stem for p in HERE.glob("test_*.py"))
    suite = unittest.TestSuite()
    for n in names:
        n = Path(n).stem
        suite.addTests(loader.loadTestsFromName(n))
    tests = list(iter_tests(suite))
    if args.k:
        tests = [t for t in tests if any(k in t.id() for k in args.k)]
    # loader failures (syntax errors, imports) show up as _FailedTest
    suite = unittest.TestSuite(tests)

    print(f"mboxpop3d e2e: {len(tests)} tests, daemon {harness.DAEMON}, "
          f"{'root' if harness.IS_ROOT else 'non-root'} "
          f"(uid {os.geteuid()})", flush=True)
    result = Result(args.verbose)
    t0 = time.monotonic()
    try:
        suite.run(result)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    finally:
        try:
            harness.shutdown()
            if harness.ORPHANS:
                print(f"note: daemon processes outlived SIGTERM (killed): "
                      f"{harness.ORPHANS}")
        except Exception:
            traceback.print_exc()

    if result.reports:
        print("\n" + "=" * 70)
        for tid, kind, text in result.reports:
            print(f"{kind}: {tid}\n{text}")
            print("-" * 70)
    # outcomes not tied to a test method (setUpClass errors) count as failed
    for tid, kind, _ in result.reports:
        result.outcome.setdefault(tid, kind)
    failed = sum(1 for k in result.outcome.values() if k in ("FAIL", "ERROR"))
    passed = sum(1 for k in result.outcome.values() if k == "ok")
    skipped = sum(1 for k in result.outcome.values() if k == "skip")
    print(f"time {time.monotonic() - t0:.1f}s")
    print(f"RESULT passed={passed} failed={failed} skipped={skipped}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
