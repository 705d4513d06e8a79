#!/bin/bash
# bench/run.sh - what `make bench` runs: mboxpop3d measured against the
# targets of issue #6, with the references (loopback TCP, fsync, crypt,
# the cost of a process, one bare pass over the big spool) measured in the
# same run, and optionally Dovecot and popa3d beside it.
#
#   sudo make bench                  # full run, BENCH_RUNS=3 (about 3 min on 2 cores)
#   sudo make bench QUICK=1          # smoke run: small corpora, 1 run
#   sudo make bench PEERS=1          # also Dovecot and popa3d (bench/peers.sh)
#   sudo make bench BENCH_RUNS=5
#
# Root only: it creates the accounts mpbench01..mpbench64 (password
# mpb-NN-Secret, SHA-512 crypt, 5000 rounds) and the user mboxpop3d if
# missing, replaces the spools /var/mail/mpbenchNN, and starts ./mboxpop3d
# as root (privilege separation on) on 127.0.0.1:$BENCH_PORT (11200).
# Everything else lives under $BENCH_RUN (/var/tmp/mboxpop3d-bench):
# corpus/ (generated once, keyed by their parameters), the daemon's config
# and log, and results/<UTC stamp>/ with raw.txt (every RESULT line),
# report.txt (what was printed), env.txt and the logs.
#
# Scenarios (each repeated BENCH_RUNS times; min/median/max in the report):
#   a  logins/s and latency, 16 and 64 clients, 10-message spools
#   b  open of the big spool (1 GB, 100,000 messages) to STAT's answer;
#      LIST and UIDL of every message; one bare pass over the same file
#   c  RETR of one 100 MB message against the loopback reference; RETR of
#      every message of the big spool one by one
#   d  DELE 1 + QUIT and DELE all + QUIT on the big spool, the fsync
#      reference for the bytes the rewrite moves, and a check of the spool
#   e  PSS per idle session: 16 sessions on 100-message spools, a few on
#      100,000-message spools of small messages and as many on 100-message
#      ones (bytes per message compare equal numbers of sessions)
#   f  scaling of open, RETR-all and DELE 1 from 1,000 to 100,000 messages,
#      and the peak RSS of a session
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
bench=$top/bench
popload=$bench/popload
RUN=${BENCH_RUN:-/var/tmp/mboxpop3d-bench}
PORT=${BENCH_PORT:-11200}
QUICK=${QUICK:-}
PEERS=${PEERS:-}
RUNS=${BENCH_RUNS:-}
if [ -z "$RUNS" ]; then
    if [ "$QUICK" = 1 ]; then RUNS=1; else RUNS=3; fi
fi
ADDR=127.0.0.1:$PORT
NACC=64

if [ "$(id -u)" -ne 0 ]; then
    echo "make bench must run as root: it creates the accounts mpbench01..mpbench64," >&2
    echo "replaces their spools in /var/mail and starts the daemon as root (sudo make bench)" >&2
    exit 1
fi
for f in "$popload" "$top/mboxpop3d"; do
    [ -x "$f" ] || { echo "bench: $f is missing: run it through make bench" >&2; exit 1; }
done
case $RUNS in '' | *[!0-9]* | 0) echo "bench: BENCH_RUNS must be a positive number" >&2; exit 1 ;; esac

if [ "$QUICK" = 1 ]; then
    BIG_N=10000 ONE_BYTES=10000000 LOGIN_SECS=2 SMALL_N=10000 SCALE="1000 10000"
    IDLE_BIG=2 RETR_CAP=60 PEER_RETR_CAP=10
else
    BIG_N=100000 ONE_BYTES=100000000 LOGIN_SECS=5 SMALL_N=100000 SCALE="1000 10000 100000"
    IDLE_BIG=4 RETR_CAP=120 PEER_RETR_CAP=30
fi

stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=$RUN/results/$stamp
mkdir -p "$RUN/corpus" "$out" || exit 1
chmod 0755 "$RUN"
raw=$out/raw.txt
blog=$out/bench.log
: >"$raw"

say() { printf '%s\n' "$@"; }
die() { say "bench: $*" >&2; exit 1; }
log() { printf '%s %s\n' "$(date -u +%T)" "$*" >>"$blog"; }

# ---- corpora -------------------------------------------------------------
# One file per parameter set (and generator version), made once.
genver=$(sha256sum "$bench/mkcorpus.py" | cut -c1-8)
corpus() { # NAME COUNT MEAN_BODY SEED [FIXED_BODY] -> path on stdout
    local f="$RUN/corpus/$1-n$2-b$3-s$4${5:+-f$5}-g$genver.mbox"
    if [ ! -s "$f" ] || [ ! -s "$f.meta" ]; then
        say "generating corpus $(basename "$f") ..." >&2
        python3 "$bench/mkcorpus.py" --count "$2" --mean-body-bytes "$3" --seed "$4" \
            ${5:+--fixed-body-bytes "$5"} --out "$f" >&2 || die "mkcorpus failed for $f"
    fi
    printf '%s\n' "$f"
}
meta() { sed -n "s/^$2=//p" "$1.meta"; }

# ---- accounts and spools -------------------------------------------------
acct() { printf 'mpbench%02d' "$1"; }

ensure_accounts() {
    getent group mail >/dev/null || die "no group mail"
    if ! getent passwd mboxpop3d >/dev/null; then
        say "creating the unprivileged user mboxpop3d"
        useradd --system --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin mboxpop3d || die "useradd mboxpop3d failed"
    fi
    local i u pw=""
    for i in $(seq 1 $NACC); do
        u=$(acct "$i")
        getent passwd "$u" >/dev/null && continue
        useradd --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$u" ||
            die "useradd $u failed"
        pw+=$(printf '%s:mpb-%02d-Secret' "$u" "$i")$'\n'
    done
    if [ -n "$pw" ]; then
        say "created $(printf '%s' "$pw" | grep -c :) accounts mpbenchNN (password mpb-NN-Secret)"
        printf '%s' "$pw" | chpasswd -c SHA512 -s 5000 || die "chpasswd failed"
    fi
}

declare -A SPOOL=()   # account -> corpus it holds untouched since its reset
reset_spool() { # ACCOUNT CORPUS: a new inode, ACCOUNT:mail 0660, synced, cached
    local u=$1 src=$2 dst=/var/mail/$1 tmp=/var/mail/.$1.bench-new
    rm -f "$tmp"
    if ! { cp "$src" "$tmp" && chown "$u:mail" "$tmp" && chmod 0660 "$tmp" &&
        touch -d '1 minute ago' "$tmp" && sync "$tmp" && mv -f "$tmp" "$dst"; }; then
        die "cannot reset $dst"
    fi
    rm -f "/var/mail/$u.lock" "/var/mail/.$u.mboxpop3d-journal"
    if [ -d "$RUN/dovecot-mail" ]; then   # Dovecot's index of the old file
        rm -rf "${RUN:?}/dovecot-mail/$u"
        install -d -o "$u" -m 0700 "$RUN/dovecot-mail/$u"
    fi
    SPOOL[$u]=$src
}
ensure_spool() { [ "${SPOOL[$1]:-}" = "$2" ] || reset_spool "$1" "$2"; }
ensure_spools() { # FIRST LAST CORPUS
    local i
    for i in $(seq "$1" "$2"); do ensure_spool "$(acct "$i")" "$3"; done
}

# ---- measuring -----------------------------------------------------------
# record TARGET SCENARIO KEY RUN -- POPLOAD ARGS...: one line of raw.txt
record() {
    local tgt=$1 sc=$2 key=$3 r=$4 line
    shift 5
    log "$tgt $key run $r: popload $*"
    line=$("$popload" "$@" 2>>"$blog" | grep '^RESULT' | tail -n 1)
    [ -n "$line" ] || line='RESULT mode=none ok=0 err_text="popload printed nothing"'
    printf '%s %s %s %s %s\n' "$tgt" "$sc" "$key" "$r" "$line" >>"$raw"
    printf '  %-9s %-13s %d: %s\n' "$tgt" "$key" "$r" "${line#RESULT mode=}"
    LAST=$line
}

# A fresh session's view of a spool, retried while the last one ends.
stat_of() { # ADDR ACCOUNT_NUMBER -> "msgs octets" or "- -"
    local i l
    for i in 1 2 3 4 5; do
        l=$("$popload" open "$1" -f "$2" -t 60 2>>"$blog")
        case $l in *" ok=1 "*)
            sed -n 's/.* msgs=\([0-9]*\) octets=\([0-9]*\).*/\1 \2/p' <<<"$l"
            return ;;
        esac
        sleep 0.3
    done
    echo "- -"
}

# verify TARGET KEY RUN ADDR ACCOUNT_NUMBER PRISTINE what(dele1|deleall)
verify() {
    local tgt=$1 key=$2 r=$3 addr=$4 n=$5 src=$6 what=$7
    local f; f=/var/mail/$(acct "$n")
    local count bytes off2 size same=0 want_msgs want_bytes ok=0 sm
    count=$(meta "$src" count) bytes=$(meta "$src" bytes) off2=$(meta "$src" offset2)
    size=$(stat -c %s "$f")
    if [ "$what" = dele1 ]; then
        want_msgs=$((count - 1)) want_bytes=$((bytes - off2))
        [ "$size" -eq "$want_bytes" ] && tail -c +"$((off2 + 1))" "$src" | cmp -s - "$f" && same=1
    else
        want_msgs=0 want_bytes=0
        [ "$size" -eq 0 ] && same=1
    fi
    sm=$(stat_of "$addr" "$n")
    # mboxpop3d must leave exactly the other messages' bytes; peers may
    # add headers (Dovecot does), so for them the count decides.
    if [ "${sm%% *}" = "$want_msgs" ] && { [ $same = 1 ] || [ "$tgt" != mboxpop3d ]; }; then ok=1; fi
    LAST="RESULT mode=verify ok=$ok msgs=${sm%% *} expected_msgs=$want_msgs bytes=$size expected_bytes=$want_bytes identical=$same"
    printf '%s %s %s %s %s\n' "$tgt" d "$key" "$r" "$LAST" >>"$raw"
    printf '  %-9s %-13s %d: %s\n' "$tgt" "$key" "$r" "${LAST#RESULT mode=}"
}

# ---- the scenarios, for one target ---------------------------------------
run_target() { # NAME ADDR ROOT_PID
    local T=$1 A=$2 P=$3 r c n i cap=$RETR_CAP fcap=$RETR_CAP
    # peers that stall 40 ms per message (popa3d) are measured for a while,
    # not to the end: msgs/s is still right
    [ "$T" = mboxpop3d ] || cap=$PEER_RETR_CAP fcap=10
    SPOOL=()

    say "" "== $T on $A (process tree $P)"
    say "-- a) logins: connect, greeting, USER, PASS, STAT, QUIT, close; ${LOGIN_SECS}s per run"
    ensure_spools 1 $NACC "$C_SMALL10"
    "$popload" login "$A" -c 4 -t 1 >/dev/null 2>>"$blog"   # warm-up
    for c in 16 64; do
        for r in $(seq "$RUNS"); do
            record "$T" a "login$c" "$r" -- login "$A" -c "$c" -f 1 -t "$LOGIN_SECS"
        done
    done

    say "-- b) open of the big spool ($BIG_N messages): connect to STAT's answer, then LIST, UIDL"
    for r in $(seq "$RUNS"); do
        reset_spool mpbench01 "$C_BIG"
        record "$T" b open "$r" -- open "$A" -f 1 --list --uidl -t 300
        # the floor of the open: one bare pass over the same file
        record "$T" b passref "$r" -- passref --mbox /var/mail/mpbench01
    done

    say "-- c) RETR: one $((ONE_BYTES / 1000000)) MB message vs the loopback reference; every message of the big spool"
    ensure_spool mpbench02 "$C_ONE"
    ensure_spool mpbench01 "$C_BIG"
    for r in $(seq "$RUNS"); do
        record "$T" c loopref "$r" -- loopref --mbox "$C_ONE"
        record "$T" c retr1 "$r" -- retr "$A" -f 2 -m 1 -t 300
    done
    for r in $(seq "$RUNS"); do
        record "$T" c retrall "$r" -- retr "$A" -f 1 -t "$cap"
    done

    say "-- d) UPDATE on the big spool: DELE 1 + QUIT, DELE all + QUIT; fsync reference"
    local moved=$(($(meta "$C_BIG" bytes) - $(meta "$C_BIG" offset2)))
    for r in $(seq "$RUNS"); do
        reset_spool mpbench01 "$C_BIG"
        record "$T" d fsyncref "$r" -- fsyncref --dir /var/mail -b "$moved"
        record "$T" d dele1 "$r" -- dele "$A" -f 1 -m 1 -t 300
        verify "$T" dele1-check "$r" "$A" 1 "$C_BIG" dele1
    done
    for r in $(seq "$RUNS"); do
        reset_spool mpbench01 "$C_BIG"
        record "$T" d deleall "$r" -- dele "$A" -f 1 --all -t 300
        verify "$T" deleall-check "$r" "$A" 1 "$C_BIG" deleall
    done
    SPOOL[mpbench01]=

    say "-- e) memory of idle sessions (PSS/RSS of the process tree, during minus before)"
    ensure_spools 1 16 "$C_M100"
    ensure_spools 17 $((16 + IDLE_BIG)) "$C_SMALLMSG"
    # warm-up: a first session on each spool, so that a server that builds
    # an index at the first open (Dovecot) is measured in its steady state
    for i in $(seq 1 $((16 + IDLE_BIG))); do
        "$popload" open "$A" -f "$i" -t 300 >/dev/null 2>>"$blog"
    done
    for r in $(seq "$RUNS"); do
        record "$T" e idle100 "$r" -- idle "$A" -n 16 -f 1 -P "$P" --settle 1 -t 300
        record "$T" e idlebig "$r" -- idle "$A" -n "$IDLE_BIG" -f 17 -P "$P" --settle 1 -t 300
        # as many sessions on 100-message spools as on the big ones: the
        # bytes per message compare like with like (shared pages are split
        # among as many processes)
        record "$T" e idle100few "$r" -- idle "$A" -n "$IDLE_BIG" -f 1 -P "$P" --settle 1 -t 300
    done

    say "-- f) scaling: open, RETR-all, DELE 1 and peak RSS of a session by spool size"
    i=20
    for n in $SCALE; do
        local cf u
        i=$((i + 1))
        if [ "$n" = "$BIG_N" ]; then
            # b, c and d measured this size; only the session's peak RSS here
            ensure_spool mpbench01 "$C_BIG"
            record "$T" f "rss-$n" 1 -- idle "$A" -n 1 -f 1 --list --uidl -P "$P" --settle 0.3 -t 300
            continue
        fi
        cf=$(corpus "scale$n" "$n" 10000 42)
        u=$(acct $i)
        ensure_spool "$u" "$cf"
        for r in $(seq "$RUNS"); do
            record "$T" f "open-$n" "$r" -- open "$A" -f $i --list --uidl -t 300
            record "$T" f "retrall-$n" "$r" -- retr "$A" -f $i -t "$fcap"
        done
        record "$T" f "rss-$n" 1 -- idle "$A" -n 1 -f $i --list --uidl -P "$P" --settle 0.3 -t 300
        for r in $(seq "$RUNS"); do
            reset_spool "$u" "$cf"
            record "$T" f "dele1-$n" "$r" -- dele "$A" -f $i -m 1 -t 300
        done
        SPOOL[$u]=
    done
}

# ---- the daemon ----------------------------------------------------------
DPID=
# shellcheck source=bench/pop3wait.sh
. "$bench/pop3wait.sh"

start_daemon() {
    port_busy "$PORT" && die "127.0.0.1:$PORT is in use (choose another with BENCH_PORT=...)"
    local conf=$RUN/mboxpop3d.conf
    mkdir -p "$RUN/empty"
    chmod 0755 "$RUN/empty"
    cat >"$conf" <<CONF
# written by bench/run.sh
listen = 127.0.0.1:$PORT
spool_dir = /var/mail
min_spare = 16
max_spare = 64
max_children = 300
max_per_ip = 0
ip_auth_failures = 0
empty_dir = $RUN/empty
pid_file =
CONF
    "$top/mboxpop3d" -t -c "$conf" >"$out/mboxpop3d-t.txt" 2>&1 ||
        die "the configuration has problems: see $out/mboxpop3d-t.txt"
    "$top/mboxpop3d" -f -c "$conf" 2>>"$out/mboxpop3d.log" &
    DPID=$!
    echo "$DPID" >"$RUN/mboxpop3d.pid"
    wait_greeting "$PORT" || die "mboxpop3d did not answer on 127.0.0.1:$PORT (see $out/mboxpop3d.log)"
}
stop_daemon() {
    [ -n "$DPID" ] || return 0
    kill -TERM "$DPID" 2>/dev/null
    wait "$DPID" 2>/dev/null
    rm -f "$RUN/mboxpop3d.pid"
    DPID=
}

PEERS_STARTED=
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
    stop_daemon
    [ -z "$PEERS_STARTED" ] || "$bench/peers.sh" stop >>"$blog" 2>&1
    rm -f /var/mail/.mpbench*.bench-new
}

main() {
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    local t0=$SECONDS
    say "mboxpop3d benchmark $stamp: $(uname -n), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), runs=$RUNS${QUICK:+ quick}${PEERS:+ peers}, results in $out"
    {
        echo "stamp=$stamp"; echo "host=$(uname -a)"; echo "cores=$(nproc)"
        echo "cpu=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)"
        echo "commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null) $(git -C "$top" status --porcelain 2>/dev/null | grep -q . && echo dirty)"
        echo "quick=$QUICK peers=$PEERS runs=$RUNS port=$PORT"
        echo "loadavg=$(cat /proc/loadavg)"
        df -h /var/mail | tail -n 1
    } >"$out/env.txt"

    ensure_accounts
    C_SMALL10=$(corpus small 10 4000 11) || exit 1
    C_M100=$(corpus m100 100 10000 12) || exit 1
    C_BIG=$(corpus big "$BIG_N" 10000 42) || exit 1
    C_ONE=$(corpus one 1 1 13 "$ONE_BYTES") || exit 1
    C_SMALLMSG=$(corpus smallmsg "$SMALL_N" 200 14) || exit 1
    cat "$C_BIG" "$C_ONE" >/dev/null   # into the page cache

    say "" "== references"
    for r in $(seq "$RUNS"); do
        record ref ref cryptref "$r" -- cryptref -t 2
        record ref ref procref "$r" -- procref -t 2
    done

    start_daemon
    run_target mboxpop3d "$ADDR" "$DPID"
    stop_daemon

    if [ "$PEERS" = 1 ]; then
        PEERS_STARTED=1
        "$bench/peers.sh" start || die "bench/peers.sh start failed"
        local p
        for p in dovecot:11210 popa3d:11211; do
            run_target "${p%%:*}" "127.0.0.1:${p#*:}" "$(cat "$RUN/${p%%:*}.pid")"
        done
        "$bench/peers.sh" stop
        PEERS_STARTED=
    fi

    say ""
    python3 "$bench/report.py" ${QUICK:+--quick} "$raw" "$BIG_N" "$ONE_BYTES" \
        "$(meta "$C_BIG" bytes)" "$(meta "$C_BIG" offset2)"
    say "" "took $((SECONDS - t0)) s; raw figures: $raw"
}

main 2>&1 | tee "$out/report.txt"
exit "${PIPESTATUS[0]}"
