#!/bin/sh
# install-deps.sh - installs, on Debian, what building and testing
# mboxpop3d needs: a C compiler and make, libcrypt's header, Python 3 for
# the end-to-end tests, the real clients they drive (fetchmail, curl,
# getmail6, mpop, neomutt, mutt), clang for the libFuzzer targets, and
# dpkg-dev and debhelper for building the Debian package
# (tests/packaging).  Safe to run again.
set -eu
packages="build-essential libcrypt-dev python3 fetchmail curl getmail6 mpop neomutt mutt clang dpkg-dev debhelper"
missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
        missing="$missing $p"
done
# fail2ban, for its fail2ban-regex: tests/e2e/test_ops.py checks the filter
# in etc/fail2ban/ with it.  (The package enables its service; "systemctl
# disable --now fail2ban" if this host should not ban anyone.)
dpkg-query -W -f='${Status}' fail2ban 2>/dev/null | grep -q 'install ok installed' ||
    missing="$missing fail2ban"
if [ -z "$missing" ]; then
    echo "install-deps: everything is installed"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    exec sudo "$0" "$@"
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
