#!/bin/sh
# run-tests.sh - runs the unit test binaries given as arguments and the
# end-to-end suite, then the packaging tests (tests/packaging/test_*.sh:
# make install, the Debian package), adds up their
# "RESULT passed=N failed=M skipped=K" lines, and ends with the one line
# CI reads:  N passed, N failed, N skipped
# Usage: tests/run-tests.sh [--unit-only|--e2e-only|--packaging-only] [UNIT_BINARY...]
set -u
mode=all
case "${1:-}" in
    --unit-only) mode=unit; shift ;;
    --e2e-only) mode=e2e; shift ;;
    --packaging-only) mode=packaging; shift ;;
esac
top=$(cd "$(dirname "$0")/.." && pwd)
passed=0 failed=0 skipped=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# Adds the RESULT line of a finished suite; a suite that crashed before
# printing one counts as one failure, so a crash can never look green.
tally() {
    name=$1 status=$2
    line=$(grep '^RESULT ' "$log" | tail -n 1)
    if [ -z "$line" ]; then
        echo "*** $name: no RESULT line (exit status $status): counted as failed"
        failed=$((failed + 1))
        return
    fi
    for kv in ${line#RESULT }; do
        case $kv in
            passed=*) passed=$((passed + ${kv#passed=})) ;;
            failed=*) failed=$((failed + ${kv#failed=})) ;;
            skipped=*) skipped=$((skipped + ${kv#skipped=})) ;;
        esac
    done
    if [ "$status" -ne 0 ] && ! echo "$line" | grep -q 'failed=[1-9]'; then
        echo "*** $name: exit status $status with no failed test: counted as failed"
        failed=$((failed + 1))
    fi
}

if [ "$mode" = all ] || [ "$mode" = unit ]; then
    for t in "$@"; do
        echo "== unit: $(basename "$t")"
        ASAN_OPTIONS=detect_leaks=1 "$t" >"$log" 2>&1
        status=$?
        grep -v '^ok ' "$log"
        tally "$(basename "$t")" "$status"
    done
fi
if [ "$mode" = all ] || [ "$mode" = e2e ]; then
    echo "== end-to-end (tests/e2e)"
    # The sanitizer build with test hooks, when it is there (make check builds it).
    if [ -z "${MBOXPOP3D_BIN:-}" ] && [ -x "$top/build/mboxpop3d-test" ]; then
        MBOXPOP3D_BIN=$top/build/mboxpop3d-test
        export MBOXPOP3D_BIN
    fi
    python3 "$top/tests/e2e/run.py" >"$log" 2>&1
    status=$?
    cat "$log"
    tally e2e "$status"
fi
if [ "$mode" = all ] || [ "$mode" = packaging ]; then
    # Each builds in temporary directories and leaves the tree as it was.
    for t in "$top"/tests/packaging/test_*.sh; do
        echo "== packaging: $(basename "$t")"
        "$t" >"$log" 2>&1
        status=$?
        grep -v '^ok ' "$log"
        tally "$(basename "$t")" "$status"
    done
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
