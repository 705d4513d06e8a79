#!/bin/sh
# build-deb.sh - builds the Debian package from a copy of the source tree,
# so no debian/ build artefacts (debian/mboxpop3d/, debian/files, ...) or
# objects are ever left in the tree itself.
# Usage: tests/packaging/build-deb.sh OUTDIR [dpkg-buildpackage option...]
# The copy is made in OUTDIR/mboxpop3d-VERSION (removed afterwards), so
# the .deb, .buildinfo and .changes files land in OUTDIR.  "make deb" runs
# it with OUTDIR=build/deb; set DEB_BUILD_OPTIONS=nocheck to skip the unit
# tests debian/rules runs.
set -eu
[ $# -ge 1 ] || { echo "usage: $0 OUTDIR [dpkg-buildpackage option...]" >&2; exit 2; }
out=$1; shift
top=$(cd "$(dirname "$0")/../.." && pwd)
for tool in dpkg-buildpackage dh; do
    command -v $tool >/dev/null 2>&1 || {
        echo "build-deb: $tool is missing (apt-get install dpkg-dev debhelper)" >&2; exit 3; }
done
version=$(sed -n 's/^#define MBOXPOP3D_VERSION "\(.*\)"/\1/p' "$top/include/version.h")
[ -n "$version" ] || { echo "build-deb: no MBOXPOP3D_VERSION in include/version.h" >&2; exit 1; }

mkdir -p "$out"
out=$(cd "$out" && pwd)
src=$out/mboxpop3d-$version
rm -rf "$src"
mkdir -p "$src"
# Everything but build output, git metadata and what a build in the tree
# itself would have left in debian/.
tar -C "$top" --anchored \
    --exclude=./.git --exclude=./build --exclude=./mboxpop3d \
    --exclude=./debian/mboxpop3d --exclude=./debian/mboxpop3d-dbgsym \
    --exclude=./debian/.debhelper --exclude=./debian/tmp --exclude=./debian/files \
    --exclude='./debian/*.substvars' --exclude='./debian/*.log' \
    --exclude=./debian/debhelper-build-stamp \
    -cf - . | tar -C "$src" -xf -

# A clean make environment: when run from make check, the outer make's
# MAKEFLAGS (jobserver) must not leak into the package build.
unset MAKEFLAGS MFLAGS MAKELEVEL
status=0
(cd "$src" && dpkg-buildpackage -us -uc -b -Jauto "$@") || status=$?
rm -rf "$src"
if [ "$status" -ne 0 ]; then
    echo "build-deb: dpkg-buildpackage failed (status $status)" >&2
    exit "$status"
fi
ls "$out"/mboxpop3d_"$version"_*.deb
