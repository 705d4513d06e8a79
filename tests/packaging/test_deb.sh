#!/bin/sh
# test_deb.sh - builds the Debian package (in a copy of the tree, through
# build-deb.sh) and inspects it with dpkg-deb: files, control fields,
# conffiles, units, and what the postinst does, run against stub commands.
# Prints "ok - ..." / "not ok - ..." / "skip - ..." lines and ends with
#   RESULT passed=N failed=M skipped=K
# Skips (with the reason) when dpkg-buildpackage or debhelper is missing.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
passed=0 failed=0 skipped=0
ok()   { passed=$((passed + 1)); echo "ok - $1"; }
nok()  { failed=$((failed + 1)); echo "not ok - $1"; }
skip() { skipped=$((skipped + 1)); echo "skip - $1"; }
check() {   # check DESCRIPTION COMMAND...: passes when COMMAND succeeds
    desc=$1; shift
    if "$@" >/dev/null 2>&1; then ok "$desc"; else nok "$desc"; fi
}
result() { echo "RESULT passed=$passed failed=$failed skipped=$skipped"; exit "$([ "$failed" -eq 0 ] && echo 0 || echo 1)"; }

for tool in dpkg-buildpackage dpkg-deb dh dpkg-parsechangelog; do
    if ! command -v $tool >/dev/null 2>&1; then
        skip "Debian package build: $tool is missing (tests/install-deps.sh installs dpkg-dev and debhelper)"
        result
    fi
done

version=$(sed -n 's/^#define MBOXPOP3D_VERSION "\(.*\)"/\1/p' "$top/include/version.h")
arch=$(dpkg --print-architecture)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mboxpop3d-deb.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# ---- the version in debian/changelog is the daemon's
clver=$(dpkg-parsechangelog -l "$top/debian/changelog" -S Version)
if [ -n "$version" ] && [ "$clver" = "$version" ]; then
    ok "debian/changelog version $clver = include/version.h MBOXPOP3D_VERSION"
else
    nok "debian/changelog version '$clver' != include/version.h MBOXPOP3D_VERSION '$version'"
fi

# ---- build, in a copy of the tree; the tree itself must not change
snapshot() {
    (cd "$top" && find debian -print | LC_ALL=C sort
     ls -d ../mboxpop3d_* ../mboxpop3d-dbgsym_* 2>/dev/null) >"$1"
}
snapshot "$tmp/before"
start=$(date +%s)
# The unit tests are run by make check itself: no need to run them again.
DEB_BUILD_OPTIONS="nocheck ${DEB_BUILD_OPTIONS:-}" \
    "$top/tests/packaging/build-deb.sh" "$tmp/out" >"$tmp/build.log" 2>&1
status=$?
echo "dpkg-buildpackage took $(( $(date +%s) - start )) s"
snapshot "$tmp/after"
check "the source tree is left as it was (no debian/ build artefacts, no ../*.deb)" \
    cmp -s "$tmp/before" "$tmp/after"
deb=$tmp/out/mboxpop3d_${version}_${arch}.deb
if [ "$status" -ne 0 ] || [ ! -f "$deb" ]; then
    nok "dpkg-buildpackage -us -uc -b builds mboxpop3d_${version}_${arch}.deb (status $status); end of the log:"
    tail -n 30 "$tmp/build.log" | sed 's/^/    /'
    result
fi
ok "dpkg-buildpackage -us -uc -b builds mboxpop3d_${version}_${arch}.deb"

# ---- control fields
field() { dpkg-deb -f "$deb" "$1"; }
check "Package: mboxpop3d" test "$(field Package)" = mboxpop3d
check "Version: $version" test "$(field Version)" = "$version"
check "Architecture: $arch" test "$(field Architecture)" = "$arch"
check "Section: mail" test "$(field Section)" = mail
depends=$(field Depends)
case $depends in *libcrypt*) true ;; *) false ;; esac
check "Depends mentions libcrypt ($depends)" test $? -eq 0
case $depends in *"adduser | passwd"*) true ;; *) false ;; esac
check "Depends has adduser | passwd" test $? -eq 0
check "Provides: pop3-server" test "$(field Provides)" = pop3-server
check "Conflicts: pop3-server" test "$(field Conflicts)" = pop3-server

# ---- files (dpkg-deb -c)
dpkg-deb -c "$deb" >"$tmp/contents"
has() { grep -q " \./$1\$" "$tmp/contents"; }
check "contains /usr/sbin/mboxpop3d, root:root mode 0755" \
    grep -q '^-rwxr-xr-x root/root .* \./usr/sbin/mboxpop3d$' "$tmp/contents"
for f in usr/share/man/man8/mboxpop3d.8.gz usr/share/man/man5/mboxpop3d.conf.5.gz \
         etc/mboxpop3d.conf lib/systemd/system/mboxpop3d.service \
         lib/systemd/system/mboxpop3d.socket usr/share/doc/mboxpop3d/README.Debian \
         usr/share/doc/mboxpop3d/copyright; do
    check "contains /$f" has "$f"
done
check "nothing under /usr/local" sh -c "! grep -q ' \./usr/local' '$tmp/contents'"

# ---- what the files say (dpkg-deb -x)
root=$tmp/root
dpkg-deb -x "$deb" "$root"
unit=$root/lib/systemd/system
check "mboxpop3d.service: ExecStart=/usr/sbin/mboxpop3d -f" \
    grep -qx 'ExecStart=/usr/sbin/mboxpop3d -f' "$unit/mboxpop3d.service"
check "mboxpop3d.service: ExecStartPre=/usr/sbin/mboxpop3d -t" \
    grep -qx 'ExecStartPre=/usr/sbin/mboxpop3d -t' "$unit/mboxpop3d.service"
check "the units do not mention /usr/local" \
    sh -c "! grep -q /usr/local '$unit/mboxpop3d.service' '$unit/mboxpop3d.socket'"
check "mboxpop3d.socket: ListenStream=110, Service=mboxpop3d.service" \
    sh -c "grep -qx ListenStream=110 '$unit/mboxpop3d.socket' && grep -qx Service=mboxpop3d.service '$unit/mboxpop3d.socket'"
check "the man pages are valid gzip files of roff pages" \
    sh -c "gzip -dc '$root/usr/share/man/man8/mboxpop3d.8.gz' | grep -q '^\.TH' && gzip -dc '$root/usr/share/man/man5/mboxpop3d.conf.5.gz' | grep -q '^\.TH'"
check "/etc/mboxpop3d.conf is the example config" cmp -s "$root/etc/mboxpop3d.conf" "$top/etc/mboxpop3d.conf"
check "copyright: BSD-2-Clause" grep -q '^License: BSD-2-Clause' "$root/usr/share/doc/mboxpop3d/copyright"
v=$("$root/usr/sbin/mboxpop3d" -V 2>&1)
check "the packaged binary runs: mboxpop3d -V says '$v'" test "$v" = "mboxpop3d $version"

# ---- control area (dpkg-deb -I)
check "conffiles lists /etc/mboxpop3d.conf" \
    sh -c "dpkg-deb -I '$deb' conffiles | grep -qx /etc/mboxpop3d.conf"
ctl=$tmp/control
dpkg-deb -e "$deb" "$ctl"
# The postinst with its "\" continuation lines joined.
joined() { sed -e ':a' -e '/\\$/{N' -e 's/[[:space:]]*\\\n[[:space:]]*/ /' -e 'ba' -e '}' "$1"; }
joined "$ctl/postinst" >"$tmp/postinst.joined"
check "postinst calls adduser --system --group ... mboxpop3d" \
    grep -q 'adduser .*--system --group --no-create-home --home /nonexistent --shell /usr/sbin/nologin mboxpop3d$' \
    "$tmp/postinst.joined"
check "postinst enables mboxpop3d.service (deb-systemd-helper enable)" \
    grep -q "deb-systemd-helper enable 'mboxpop3d.service'" "$ctl/postinst"
check "postinst never starts mboxpop3d.socket" \
    sh -c "! grep -q 'deb-systemd-invoke .*mboxpop3d.socket' '$ctl/postinst'"
check "prerm stops mboxpop3d.service and mboxpop3d.socket on remove" \
    sh -c "grep -q \"stop 'mboxpop3d.service'\" '$ctl/prerm' && grep -q 'stop mboxpop3d.socket' '$ctl/prerm'"

# ---- the postinst run against stubs: PATH holds only the stub directory,
# so it cannot touch this system (nothing else is found).
stub=$tmp/stub
mkdir -p "$stub"
mkstub() {   # mkstub NAME EXIT-STATUS: logs its arguments to $tmp/calls
    printf '#!/bin/sh\necho "%s $*" >>"%s/calls"\nexit %s\n' "$1" "$tmp" "$2" >"$stub/$1"
    chmod +x "$stub/$1"
}
for c in adduser useradd systemctl deb-systemd-invoke; do mkstub $c 0; done
# deb-systemd-helper: "was-enabled" true (a new install), "debian-installed" false.
cat >"$stub/deb-systemd-helper" <<STUB
#!/bin/sh
echo "deb-systemd-helper \$*" >>"$tmp/calls"
case "\$*" in *debian-installed*) exit 1 ;; esac
exit 0
STUB
chmod +x "$stub/deb-systemd-helper"
runpostinst() {  # runpostinst GETENT-STATUS
    mkstub getent "$1"
    : >"$tmp/calls"
    env -i PATH="$stub" /bin/sh "$ctl/postinst" configure "" >"$tmp/postinst.out" 2>&1
}
want_adduser="adduser --quiet --system --group --no-create-home --home /nonexistent --shell /usr/sbin/nologin mboxpop3d"
if runpostinst 2 && grep -qx -- "$want_adduser" "$tmp/calls"; then
    ok "postinst configure, no user mboxpop3d: runs $want_adduser"
else
    nok "postinst configure, no user mboxpop3d: runs $want_adduser"; sed 's/^/    /' "$tmp/postinst.out" "$tmp/calls"
fi
check "postinst configure enables mboxpop3d.service, not mboxpop3d.socket" \
    sh -c "grep -qx 'deb-systemd-helper enable mboxpop3d.service' '$tmp/calls' && ! grep -q 'enable mboxpop3d.socket' '$tmp/calls'"
if runpostinst 0 && ! grep -q -e '^adduser' -e '^useradd' "$tmp/calls"; then
    ok "postinst configure, user exists: creates nothing (idempotent)"
else
    nok "postinst configure, user exists: creates nothing (idempotent)"; sed 's/^/    /' "$tmp/postinst.out" "$tmp/calls"
fi
rm -f "$stub/adduser"
want_useradd="useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin mboxpop3d"
if runpostinst 2 && grep -qx -- "$want_useradd" "$tmp/calls"; then
    ok "postinst configure without adduser: runs $want_useradd"
else
    nok "postinst configure without adduser: runs $want_useradd"; sed 's/^/    /' "$tmp/postinst.out" "$tmp/calls"
fi

result
