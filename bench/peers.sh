#!/bin/bash
# bench/peers.sh - Dovecot's pop3d and popa3d as peers of `make bench PEERS=1`.
#
#   bench/peers.sh install        # apt-get: dovecot-pop3d, socat; popa3d unpacked
#   bench/peers.sh start          # install if needed, start both, wait for +OK
#   bench/peers.sh stop           # stop what start started (recorded PIDs only)
#   bench/peers.sh status
#
# Root only, Debian 12.  Both serve the system accounts (mpbench01..64 of
# bench/run.sh) and their spools in /var/mail, on loopback only:
#   dovecot  127.0.0.1:11210  dovecot -F -c $BENCH_RUN/dovecot.conf (from bench/dovecot.conf)
#   popa3d   127.0.0.1:11211  inetd-style under socat, one popa3d per connection
# Debian's popa3d package conflicts with pop3-server (Dovecot provides it),
# so it is fetched with apt-get download and unpacked with dpkg -x into
# $BENCH_RUN/popa3d-root; the steps of its postinst that it needs (user
# popa3d, /var/lib/popa3d, /etc/pam.d/popa3d) are done here if missing.
# PIDs go to $BENCH_RUN/{dovecot,popa3d}.pid, logs next to them.  Other
# Dovecots (the system's, a lab's) have their own base_dir and ports and
# are never touched.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
RUN=${BENCH_RUN:-/var/tmp/mboxpop3d-bench}
DOVECOT_PORT=${DOVECOT_PORT:-11210}
POPA3D_PORT=${POPA3D_PORT:-11211}
POPA3D=$RUN/popa3d-root/usr/sbin/popa3d

die() { echo "peers: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root (it installs packages and serves /var/mail)"
mkdir -p "$RUN" || exit 1

installed() { dpkg-query -W -f '${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

do_install() {
    local need=()
    installed dovecot-pop3d || need+=(dovecot-pop3d)
    installed socat || need+=(socat)
    if [ ${#need[@]} -gt 0 ]; then
        echo "apt-get install ${need[*]}"
        # the package must not start a system-wide Dovecot on port 110:
        # a policy-rc.d of ours for the install (unless there is one)
        local policy=
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d &&
                policy=1
        fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
        local st=$?
        [ -z "$policy" ] || rm -f /usr/sbin/policy-rc.d
        [ $st -eq 0 ] || die "apt-get install failed"
    fi
    if [ ! -x "$POPA3D" ]; then
        mkdir -p "$RUN/debs"
        chown _apt "$RUN/debs" 2>/dev/null   # apt-get download drops to _apt
        (cd "$RUN/debs" && { ls popa3d_*.deb >/dev/null 2>&1 || apt-get download popa3d; }) ||
            die "apt-get download popa3d failed (apt-get update first?)"
        local deb
        for deb in "$RUN"/debs/popa3d_*.deb; do break; done
        dpkg -x "$deb" "$RUN/popa3d-root" || die "dpkg -x $deb failed"
    fi
    getent passwd popa3d >/dev/null ||
        useradd --system --user-group --home-dir /var/lib/popa3d --no-create-home \
            --shell /usr/sbin/nologin popa3d || die "useradd popa3d failed"
    [ -d /var/lib/popa3d ] || install -d -m 0755 /var/lib/popa3d
    if [ ! -e /etc/pam.d/popa3d ]; then
        if [ -e "$RUN/popa3d-root/etc/pam.d/popa3d" ]; then
            install -m 0644 "$RUN/popa3d-root/etc/pam.d/popa3d" /etc/pam.d/popa3d
        else
            printf '@include common-auth\n@include common-account\n' >/etc/pam.d/popa3d
        fi
    fi
}

# shellcheck source=bench/pop3wait.sh
. "$top/bench/pop3wait.sh"
# The recorded PID if that process is still the one we started.
alive() { # NAME COMMAND-SUBSTRING
    local f=$RUN/$1.pid p
    [ -s "$f" ] || return 1
    p=$(cat "$f")
    [ -r "/proc/$p/cmdline" ] && tr '\0' ' ' <"/proc/$p/cmdline" | grep -q -- "$2" && echo "$p"
}

start_dovecot() {
    alive dovecot "$RUN/dovecot.conf" >/dev/null && { echo "dovecot already running"; return 0; }
    port_busy "$DOVECOT_PORT" && die "127.0.0.1:$DOVECOT_PORT is in use"
    sed "s|@RUN@|$RUN|g; s|@PORT@|$DOVECOT_PORT|g" "$top/bench/dovecot.conf" >"$RUN/dovecot.conf"
    mkdir -p "$RUN/dovecot-run" "$RUN/dovecot-state" "$RUN/dovecot-mail"
    chmod 0755 "$RUN/dovecot-mail"
    local i u
    for i in $(seq 1 64); do
        u=$(printf 'mpbench%02d' "$i")
        getent passwd "$u" >/dev/null && install -d -o "$u" -m 0700 "$RUN/dovecot-mail/$u"
    done
    dovecot -F -c "$RUN/dovecot.conf" >>"$RUN/dovecot.out" 2>&1 &
    echo $! >"$RUN/dovecot.pid"
    wait_greeting "$DOVECOT_PORT" || die "dovecot did not answer on $DOVECOT_PORT (see $RUN/dovecot.log)"
    echo "dovecot pid $(cat "$RUN/dovecot.pid") on 127.0.0.1:$DOVECOT_PORT"
}

start_popa3d() {
    alive popa3d "TCP-LISTEN:$POPA3D_PORT" >/dev/null && { echo "popa3d already running"; return 0; }
    port_busy "$POPA3D_PORT" && die "127.0.0.1:$POPA3D_PORT is in use"
    socat "TCP-LISTEN:$POPA3D_PORT,bind=127.0.0.1,reuseaddr,fork,backlog=256" \
        "EXEC:$POPA3D,nofork" >>"$RUN/popa3d.log" 2>&1 &
    echo $! >"$RUN/popa3d.pid"
    wait_greeting "$POPA3D_PORT" || die "popa3d did not answer on $POPA3D_PORT (see $RUN/popa3d.log)"
    echo "popa3d (socat) pid $(cat "$RUN/popa3d.pid") on 127.0.0.1:$POPA3D_PORT"
}

stop_one() { # NAME COMMAND-SUBSTRING
    local p i
    p=$(alive "$1" "$2") || { rm -f "$RUN/$1.pid"; return 0; }
    kill -TERM "$p"
    for i in $(seq 50); do
        [ -d "/proc/$p" ] || break
        sleep 0.1
    done
    rm -f "$RUN/$1.pid"
    echo "stopped $1 (pid $p)"
}

case ${1:-} in
install) do_install ;;
start) do_install && start_dovecot && start_popa3d ;;
stop)
    stop_one dovecot "$RUN/dovecot.conf"
    stop_one popa3d "TCP-LISTEN:$POPA3D_PORT"
    ;;
status)
    for n in dovecot:"$RUN/dovecot.conf" popa3d:"TCP-LISTEN:$POPA3D_PORT"; do
        if p=$(alive "${n%%:*}" "${n#*:}"); then echo "${n%%:*} running, pid $p"; else echo "${n%%:*} stopped"; fi
    done
    ;;
*) echo "usage: bench/peers.sh install|start|stop|status" >&2; exit 2 ;;
esac
