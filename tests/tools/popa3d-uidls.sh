#!/bin/bash
# popa3d-uidls.sh - regenerates tests/fixtures/uidl/*.expected by running the
# real popa3d 1.0.3 (Debian package "popa3d") over each fixture mailbox.
#
# Usage (as root, on Debian 12):  tests/tools/popa3d-uidls.sh [FIXTURE.mbox...]
#   POPA3D_DEB=/path/popa3d_1.0.3-1.1_amd64.deb  use this .deb instead of
#                                               "apt-get download popa3d"
#
# For every tests/fixtures/uidl/NAME.mbox (or the files given) it writes
# NAME.expected, one line per message:  N UIDL SIZE  (message number,
# popa3d's UIDL, popa3d's LIST size), after one "#" comment line.
#
# What it does, and undoes on exit (also on error or signal):
#   * fetches the .deb with "apt-get download" and unpacks it with
#     "dpkg-deb -x" into a temporary directory: the package is never
#     installed, no service is ever started (popa3d runs in its default
#     inetd mode, one session on stdin/stdout, as root like inetd runs it);
#   * replays what popa3d's postinst provides and popa3d needs at run time,
#     each only if missing, removed again afterwards: system group and user
#     "popa3d", its compiled-in chroot directory /var/lib/popa3d, and the PAM
#     service file /etc/pam.d/popa3d;
#   * creates a temporary system user "uidlref" (random password set with
#     chpasswd) whose spool /var/mail/uidlref (uidlref:mail 0660) receives a
#     copy of each fixture; the user (userdel) and the spool are removed;
#   * useradd/userdel rewrite the backup files /etc/passwd- /etc/shadow-
#     /etc/group- /etc/gshadow-: these are saved first and put back.
# It refuses to run if not root, or if a "uidlref" user or spool exists
# that is not a leftover of this script.  Running it again gives the same
# files (idempotent).
set -euo pipefail

PROG=popa3d-uidls.sh
REF_USER=uidlref
REF_GECOS="mboxpop3d popa3d-uidls.sh temporary user"
POPA3D_GECOS="popa3d, temporary (mboxpop3d popa3d-uidls.sh)"
SPOOL=/var/mail/$REF_USER
CHROOT_DIR=/var/lib/popa3d
PAM_FILE=/etc/pam.d/popa3d
WANT_VERSION="popa3d version 1.0.3"

die() { echo "$PROG: $*" >&2; exit 1; }
log() { echo "$PROG: $*" >&2; }

[ "$(id -u)" = 0 ] || die "must run as root (it creates a temporary user and spool)"

TOP=$(cd "$(dirname "$0")/../.." && pwd)
FIXDIR=$TOP/tests/fixtures/uidl
[ -d "$FIXDIR" ] || die "no fixture directory $FIXDIR"

if [ $# -gt 0 ]; then
    fixtures=("$@")
else
    shopt -s nullglob
    fixtures=("$FIXDIR"/*.mbox)
    shopt -u nullglob
fi
[ ${#fixtures[@]} -gt 0 ] || die "no fixtures (*.mbox) in $FIXDIR"
for f in "${fixtures[@]}"; do
    [ -f "$f" ] || die "no such fixture: $f"
done

# One run at a time (the lock is on this script file itself).
exec 9<"$0"
flock -n 9 || die "another run is active"

# ------------------------------------------------------------ preconditions
# A "uidlref" user or spool we did not create must never be touched.
leftover_user=0
if getent passwd "$REF_USER" >/dev/null; then
    if [ "$(getent passwd "$REF_USER" | cut -d: -f5)" = "$REF_GECOS" ]; then
        leftover_user=1     # an earlier run of this script was killed hard
    else
        die "a user \"$REF_USER\" exists and is not ours: refusing to touch it"
    fi
fi
if [ -e "$SPOOL" ] && [ "$leftover_user" = 0 ]; then
    die "$SPOOL exists but no user of ours owns it: refusing to touch it"
fi

# ---------------------------------------------------------------- cleanup
created_group=0 created_popa3d=0 created_chroot=0 created_pam=0 created_ref=0
backups_taken=0 WORK=
BACKUPS=(/etc/passwd- /etc/shadow- /etc/group- /etc/gshadow-)

cleanup() {
    local status=$? b saved
    trap - EXIT INT TERM HUP
    set +e
    rm -f "$SPOOL" "$SPOOL.lock"
    if [ "$created_ref" = 1 ] || [ "$leftover_user" = 1 ]; then
        getent passwd "$REF_USER" >/dev/null && userdel "$REF_USER"
    fi
    if [ "$created_popa3d" = 1 ] && getent passwd popa3d >/dev/null; then
        userdel popa3d
    fi
    if [ "$created_group" = 1 ] && getent group popa3d >/dev/null; then
        groupdel popa3d
    fi
    [ "$created_chroot" = 1 ] && rmdir "$CHROOT_DIR"     # only if empty
    [ "$created_pam" = 1 ] && rm -f "$PAM_FILE"
    if [ "$backups_taken" = 1 ]; then
        for b in "${BACKUPS[@]}"; do
            saved="$WORK/etc-backup/$(basename "$b")"
            if [ -e "$saved" ]; then
                cat "$saved" > "$b"     # keeps the file's own owner and mode
            else
                rm -f "$b"
            fi
        done
    fi
    [ -n "$WORK" ] && rm -rf "$WORK"
    exit "$status"
}

# A "popa3d" user with our marker is a leftover of a run that was killed
# hard: it, and what came with it, are removed at the end of this one.
leftover_popa3d=0
if [ "$(getent passwd popa3d | cut -d: -f5)" = "$POPA3D_GECOS" ]; then
    leftover_popa3d=1 created_popa3d=1
fi
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
WORK=$(mktemp -d /tmp/popa3d-uidls.XXXXXX)
chmod 755 "$WORK"
mkdir "$WORK/etc-backup"
for b in "${BACKUPS[@]}"; do
    if [ -e "$b" ]; then cp -p "$b" "$WORK/etc-backup/"; fi
done
# After a run killed hard, its work directory still holds the original
# backup files: those (the oldest such directory's) are the ones to put back.
if [ "$leftover_user" = 1 ] || [ "$leftover_popa3d" = 1 ]; then
    took=0
    while IFS= read -r d; do
        [ "$d" = "$WORK" ] && continue
        if [ "$took" = 0 ] && [ -d "$d/etc-backup" ]; then
            cp -p "$d"/etc-backup/* "$WORK/etc-backup/" 2>/dev/null || true
            log "cleaning up after a killed run ($d)"
            took=1
        fi
        rm -rf "$d"
    done < <(ls -1dtr /tmp/popa3d-uidls.* 2>/dev/null)
fi
backups_taken=1

# ------------------------------------------------------- popa3d, unpacked
if [ -n "${POPA3D_DEB:-}" ]; then
    deb=$POPA3D_DEB
else
    mkdir "$WORK/debs"
    getent passwd _apt >/dev/null && chown _apt "$WORK/debs"
    if ! (cd "$WORK/debs" && apt-get download -q popa3d >/dev/null 2>"$WORK/apt.err"); then
        log "apt-get download failed; running apt-get update and retrying"
        apt-get update -qq >/dev/null
        (cd "$WORK/debs" && apt-get download -q popa3d >/dev/null) ||
            die "cannot download popa3d: $(cat "$WORK/apt.err")"
    fi
    debs=("$WORK"/debs/popa3d_*.deb)
    deb=${debs[${#debs[@]}-1]}
fi
dpkg-deb -x "$deb" "$WORK/root"
POPA3D=$WORK/root/usr/sbin/popa3d
[ -x "$POPA3D" ] || die "no usr/sbin/popa3d in $deb"
version=$("$POPA3D" -V 2>&1 | head -n 1)
case $version in
    "$WANT_VERSION "*) ;;
    *) die "unexpected popa3d version: $version" ;;
esac
debver=$(dpkg-deb -f "$deb" Version)
log "using $version, Debian package $debver"

# ----------------------------------------- what popa3d's postinst provides
if [ "$leftover_popa3d" = 1 ]; then
    getent group popa3d >/dev/null && created_group=1
    [ -d "$CHROOT_DIR" ] && created_chroot=1
    cmp -s "$WORK/root/etc/pam.d/popa3d" "$PAM_FILE" && created_pam=1
fi
if ! getent group popa3d >/dev/null; then
    groupadd --system popa3d
    created_group=1
fi
if ! getent passwd popa3d >/dev/null; then
    useradd --system --gid popa3d --home-dir "$CHROOT_DIR" --no-create-home \
        --shell /usr/sbin/nologin --comment "$POPA3D_GECOS" popa3d
    created_popa3d=1
fi
if [ ! -d "$CHROOT_DIR" ]; then
    mkdir -m 755 "$CHROOT_DIR"
    created_chroot=1
fi
if [ ! -e "$PAM_FILE" ]; then
    install -m 644 "$WORK/root/etc/pam.d/popa3d" "$PAM_FILE"
    created_pam=1
fi

# ------------------------------------------------------ the reference user
if [ "$leftover_user" = 0 ]; then
    useradd --system --gid mail --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin --comment "$REF_GECOS" "$REF_USER"
    created_ref=1
fi
PASSWORD="Ref-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
echo "$REF_USER:$PASSWORD" | chpasswd

# ------------------------------------------------------------- the fixtures
# popa3d's replies: greeting, USER, PASS, then the UIDL and LIST multi-line
# replies, then QUIT.  The awk script checks each +OK and prints
# "N UIDL SIZE" per message.
# shellcheck disable=SC2016
parse='
function fail(why) { print "bad popa3d reply: " why ": " $0 > "/dev/stderr"; bad = 1; exit 1 }
{ sub(/\r$/, "") }
state < 3 { if ($0 !~ /^\+OK/) fail("greeting/USER/PASS"); state++; next }
state == 3 || state == 5 { if ($0 !~ /^\+OK/) fail(state == 3 ? "UIDL" : "LIST"); state++; next }
state == 4 && $0 == "." { state = 5; next }
state == 4 { if (NF != 2) fail("UIDL line"); uidl[$1] = $2; order[++n] = $1; next }
state == 6 && $0 == "." { state = 7; next }
state == 6 { if (NF != 2) fail("LIST line"); size[$1] = $2; next }
state == 7 { if ($0 !~ /^\+OK/) fail("QUIT"); state = 8; next }
END {
    if (bad) exit 1
    if (state != 8) { print "popa3d session ended early (state " state ")" > "/dev/stderr"; exit 1 }
    for (i = 1; i <= n; i++) {
        k = order[i]
        if (!(k in size)) { print "message " k " in UIDL but not in LIST" > "/dev/stderr"; exit 1 }
        print k, uidl[k], size[k]
    }
}'

for f in "${fixtures[@]}"; do
    name=$(basename "$f" .mbox)
    out=$(dirname "$f")/$name.expected
    install -o "$REF_USER" -g mail -m 0660 "$f" "$SPOOL"
    printf 'USER %s\r\nPASS %s\r\nUIDL\r\nLIST\r\nQUIT\r\n' "$REF_USER" "$PASSWORD" |
        timeout 60 "$POPA3D" > "$WORK/reply" ||
        die "$name: popa3d failed (status $?)"
    if ! awk "$parse" "$WORK/reply" > "$WORK/expected"; then
        sed 's/^/    /' "$WORK/reply" >&2
        die "$name: unexpected popa3d session"
    fi
    { echo "# $name.mbox: popa3d 1.0.3 (Debian $debver) UIDL and LIST, by tests/tools/$PROG"
      cat "$WORK/expected"; } > "$WORK/out"
    cmp -s "$WORK/out" "$out" 2>/dev/null || cp "$WORK/out" "$out"
    log "$name: $(wc -l < "$WORK/expected") messages -> $(basename "$out")"
    rm -f "$SPOOL"
done
