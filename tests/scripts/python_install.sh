#!/bin/sh
# Install the build to a temporary root, then import the installed Python
# package from outside the source tree with CSP_LIBRARY unset: it must find
# the libcsp installed with it through csprune/_config.py (the prefix's libdir).
set -eu
build=$1 python=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "python_install: $*" >&2; exit 1; }

meson install -C "$build" --destdir "$tmp/root" --no-rebuild --quiet >/dev/null
init=$(find "$tmp/root" -path '*/csprune/__init__.py' | head -n 1)
[ -n "$init" ] || fail "the Python package was not installed"
site=$(dirname "$(dirname "$init")")
# every module of the source package (python/meson.build lists them by hand)
src=$(cd "$(dirname "$0")/../../python/csprune" && pwd)
for f in "$src"/*.py _config.py; do
    f=$(basename "$f")
    [ -f "$site/csprune/$f" ] || fail "csprune/$f was not installed (python/meson.build?)"
done
libdir=$(sed -n "s/^LIBDIR = '\(.*\)'$/\1/p" "$site/csprune/_config.py")
[ -n "$libdir" ] || fail "csprune/_config.py names no libdir"
[ -e "$tmp/root$libdir/libcsp.so.0" ] || fail "no libcsp.so.0 in the libdir _config.py names ($libdir)"
# Without DESTDIR the package would sit in that prefix; point it at the
# staged copy, as a real install would be.
sed -i "s|^LIBDIR = .*|LIBDIR = '$tmp/root$libdir'|" "$site/csprune/_config.py"
cd "$tmp"
env -u CSP_LIBRARY PYTHONPATH="$site" "$python" -c '
import sys, csprune as csp
assert csp.__file__.startswith(sys.argv[1]), csp.__file__
assert csp.library_path == sys.argv[2], csp.library_path
with csp.Context() as ctx:
    csp.Pruner(ctx, csp.Schedule.constant(ctx, 0.5))
    csp.Solver.omp(ctx)
print("installed csp", csp.__version__, "loads", csp.library_path)
' "$site" "$tmp/root$libdir/libcsp.so.0"
