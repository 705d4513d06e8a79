#!/bin/sh
# test_install.sh - "make install" and "make uninstall" into temporary
# directories: staging with DESTDIR, the PREFIX/SBINDIR/MANDIR/SYSCONFDIR/
# SYSTEMDUNITDIR variables, the units' ExecStart= paths, the kept config,
# and the creation of the mboxpop3d user, with getent and useradd replaced
# by stubs so this system's accounts are never touched.
# Ends with:  RESULT passed=N failed=M skipped=K
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
passed=0 failed=0 skipped=0
ok()   { passed=$((passed + 1)); echo "ok - $1"; }
nok()  { failed=$((failed + 1)); echo "not ok - $1"; }
check() { desc=$1; shift; if "$@" >/dev/null 2>&1; then ok "$desc"; else nok "$desc"; fi; }
result() { echo "RESULT passed=$passed failed=$failed skipped=$skipped"; exit "$([ "$failed" -eq 0 ] && echo 0 || echo 1)"; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mboxpop3d-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# Run from make check: the outer make's flags (jobserver) are not ours.
unset MAKEFLAGS MFLAGS MAKELEVEL

# Stubs first in PATH: getent answers "no such user" (status 2) unless
# $tmp/user-exists exists; useradd only logs its arguments.
stub=$tmp/stub
mkdir -p "$stub"
cat >"$stub/getent" <<STUB
#!/bin/sh
echo "getent \$*" >>"$tmp/calls"
[ -e "$tmp/user-exists" ] && { echo "mboxpop3d:x:999:999::/nonexistent:/usr/sbin/nologin"; exit 0; }
exit 2
STUB
printf '#!/bin/sh\necho "useradd $*" >>"%s/calls"\n' "$tmp" >"$stub/useradd"
chmod +x "$stub/getent" "$stub/useradd"
mk() {  # mk LOGNAME make-arguments...: make -C top install/uninstall ...
    name=$1; shift
    : >"$tmp/calls"
    PATH="$stub:$PATH" make -C "$top" --no-print-directory "$@" >"$tmp/$name.log" 2>&1
}
useradd_cmd="useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin mboxpop3d"

# ---- staging with the defaults
d=$tmp/stage
if mk stage install DESTDIR="$d"; then ok "make install DESTDIR=... succeeds"
else nok "make install DESTDIR=... succeeds"; sed 's/^/    /' "$tmp/stage.log"; result; fi
check "binary /usr/local/sbin/mboxpop3d, mode 0755" \
    sh -c "[ -x '$d/usr/local/sbin/mboxpop3d' ] && [ \"\$(stat -c %a '$d/usr/local/sbin/mboxpop3d')\" = 755 ]"
check "man pages in /usr/local/share/man/man8 and man5" \
    test -f "$d/usr/local/share/man/man8/mboxpop3d.8" -a -f "$d/usr/local/share/man/man5/mboxpop3d.conf.5"
check "config /etc/mboxpop3d.conf, mode 0644" \
    sh -c "cmp -s '$d/etc/mboxpop3d.conf' '$top/etc/mboxpop3d.conf' && [ \"\$(stat -c %a '$d/etc/mboxpop3d.conf')\" = 644 ]"
check "units in /lib/systemd/system, mode 0644" \
    sh -c "[ \"\$(stat -c %a '$d/lib/systemd/system/mboxpop3d.service' '$d/lib/systemd/system/mboxpop3d.socket')\" = \"644
644\" ]"
check "mboxpop3d.service: ExecStart=/usr/local/sbin/mboxpop3d -f" \
    grep -qx 'ExecStart=/usr/local/sbin/mboxpop3d -f' "$d/lib/systemd/system/mboxpop3d.service"
check "mboxpop3d.socket is the one in etc/" cmp -s "$d/lib/systemd/system/mboxpop3d.socket" "$top/etc/mboxpop3d.socket"
check "with DESTDIR: no useradd, no getent" test ! -s "$tmp/calls"
check "with DESTDIR: prints the useradd command" grep -qF "$useradd_cmd" "$tmp/stage.log"
check "DESTDIR holds exactly the six installed files" \
    sh -c "cd '$d' && [ \"\$(find . -type f | LC_ALL=C sort | tr '\n' ' ')\" = './etc/mboxpop3d.conf ./lib/systemd/system/mboxpop3d.service ./lib/systemd/system/mboxpop3d.socket ./usr/local/sbin/mboxpop3d ./usr/local/share/man/man5/mboxpop3d.conf.5 ./usr/local/share/man/man8/mboxpop3d.8 ' ]"

# ---- an existing config is kept
echo "# changed by the admin" >>"$d/etc/mboxpop3d.conf"
mk again install DESTDIR="$d"
check "a second install keeps the changed config (keeping existing ...)" \
    sh -c "tail -n 1 '$d/etc/mboxpop3d.conf' | grep -q 'changed by the admin' && grep -q 'keeping existing' '$tmp/again.log'"

# ---- PREFIX=/usr, then every directory variable
d=$tmp/usr
mk usr install DESTDIR="$d" PREFIX=/usr
check "PREFIX=/usr: /usr/sbin/mboxpop3d, units say ExecStart=/usr/sbin/mboxpop3d -f" \
    sh -c "[ -x '$d/usr/sbin/mboxpop3d' ] && grep -qx 'ExecStart=/usr/sbin/mboxpop3d -f' '$d/lib/systemd/system/mboxpop3d.service' && grep -qx 'ExecStartPre=/usr/sbin/mboxpop3d -t' '$d/lib/systemd/system/mboxpop3d.service'"
d=$tmp/vars
mk vars install DESTDIR="$d" SBINDIR=/opt/pop/bin MANDIR=/opt/pop/man SYSCONFDIR=/opt/pop/etc \
    SYSTEMDUNITDIR=/usr/lib/systemd/system
check "SBINDIR, MANDIR, SYSCONFDIR, SYSTEMDUNITDIR are honoured" \
    test -x "$d/opt/pop/bin/mboxpop3d" -a -f "$d/opt/pop/man/man8/mboxpop3d.8" \
    -a -f "$d/opt/pop/man/man5/mboxpop3d.conf.5" -a -f "$d/opt/pop/etc/mboxpop3d.conf" \
    -a -f "$d/usr/lib/systemd/system/mboxpop3d.socket"
check "SBINDIR=/opt/pop/bin: ExecStart=/opt/pop/bin/mboxpop3d -f" \
    grep -qx 'ExecStart=/opt/pop/bin/mboxpop3d -f' "$d/usr/lib/systemd/system/mboxpop3d.service"

# ---- uninstall keeps the config
d=$tmp/usr
mk uninstall uninstall DESTDIR="$d" PREFIX=/usr
check "make uninstall removes binary, man pages and units, keeps the config" \
    sh -c "cd '$d' && [ \"\$(find . -type f)\" = ./etc/mboxpop3d.conf ]"

# ---- no DESTDIR (everything pointed into $tmp): the user
d=$tmp/live
live="PREFIX=$d/usr SYSCONFDIR=$d/etc SYSTEMDUNITDIR=$d/units DESTDIR="
# shellcheck disable=SC2086
mk live install $live
if [ "$(id -u)" -eq 0 ]; then
    check "as root, no DESTDIR, user missing: runs $useradd_cmd" grep -qx "$useradd_cmd" "$tmp/calls"
else
    check "not root, no DESTDIR, user missing: prints the useradd command, runs nothing" \
        sh -c "grep -qF '$useradd_cmd' '$tmp/live.log' && ! grep -q '^useradd' '$tmp/calls'"
fi
touch "$tmp/user-exists"
# shellcheck disable=SC2086
mk live2 install $live
check "no DESTDIR, user exists: no useradd" \
    sh -c "grep -q '^getent passwd mboxpop3d' '$tmp/calls' && ! grep -q '^useradd' '$tmp/calls'"

result
