#!/bin/bash
# bench.sh - `make bench`: mboxpop3d measured side by side with Dovecot,
# popa3d and GNU Mailutils in one run, with the project's shared lab
# (../shared/bench: setup.sh installs the peers and the popt1..popt8
# accounts, bench.sh runs the scenarios and prints the tables).  Root only:
# the lab resets /var/mail spools.  Everything listens on 127.0.0.1.
#
#   sudo make bench                                  # all scenarios, 3 runs
#   sudo make bench BENCH_ARGS="-r 1 --quick -s b,c" # a quick look
#   BENCH_PEERS=none ...                             # mboxpop3d alone
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
lab=${BENCH_LAB:-$top/../shared/bench}
run=${BENCH_RUN:-/var/tmp/pop3-bench}
port=${BENCH_PORT:-11100}
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root (the lab resets /var/mail spools)" >&2; exit 1; }
[ -x "$lab/bench.sh" ] || { echo "bench: no lab at $lab (set BENCH_LAB)" >&2; exit 1; }
export BENCH_RUN=$run
mkdir -p "$run"

"$lab/setup.sh"
peers=()
if [ "${BENCH_PEERS:-all}" != none ]; then
    "$lab/peers.sh" start
    peers=(dovecot=127.0.0.1:11110 popa3d=127.0.0.1:11111 mailutils=127.0.0.1:11112)
fi

# Our daemon as an admin would run it: system accounts, /var/mail, the
# privilege separation on (it needs its unprivileged user).
id -u mboxpop3d >/dev/null 2>&1 ||
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin mboxpop3d
conf=$run/mboxpop3d.conf
cat >"$conf" <<CONF
listen = 127.0.0.1:$port
spool_dir = /var/mail
min_spare = 16
max_spare = 64
max_children = 200
max_per_ip = 0
ip_auth_failures = 0
empty_dir = $run/mboxpop3d-empty
CONF
"$top/mboxpop3d" -f -c "$conf" 2>"$run/mboxpop3d.log" &
pid=$!
cleanup() {
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    [ ${#peers[@]} -eq 0 ] || "$lab/peers.sh" stop || true
}
trap cleanup EXIT
for _ in $(seq 50); do
    if exec 3<>"/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
        exec 3<&-
        break
    fi
    sleep 0.2
done

# shellcheck disable=SC2086
"$lab/bench.sh" ${BENCH_ARGS:-} "${peers[@]}" "mboxpop3d=127.0.0.1:$port:$pid"
