#!/bin/sh
# install-deps.sh - installs, on Debian, what building and testing
# mboxpop3d needs: a C compiler and make, libcrypt's header, Python 3 for
# the end-to-end tests, the real clients they drive (fetchmail, curl,
# getmail6, mpop, neomutt, mutt),
# and clang for the libFuzzer targets.  Safe to run again.
set -eu
packages="build-essential libcrypt-dev python3 fetchmail curl getmail6 mpop neomutt mutt clang"
missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
        missing="$missing $p"
done
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
