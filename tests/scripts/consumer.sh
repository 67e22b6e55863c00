#!/bin/sh
# Install the build to a temporary root, then build examples/minimal.c out of
# tree with nothing but `pkg-config csp`, once against the shared library and
# once against the static one, and run both. csp.pc names the CBLAS in
# Requires.private (BLAS_NAME, -Dblas=) and has no linker paths of the build
# machine: `pkg-config --static` takes the BLAS's flags from its own .pc.
#   consumer.sh BUILD_DIR MINIMAL_C CC [SANITIZE [BLAS_NAME]]
set -eu
build=$1 src=$2 cc=$3 sanitize=${4:-none} blas=${5:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

meson install -C "$build" --destdir "$tmp/root" --no-rebuild --quiet >/dev/null
pc=$(find "$tmp/root" -name csp.pc | head -n 1)
[ -n "$pc" ] || { echo "csp.pc was not installed" >&2; exit 1; }
export PKG_CONFIG_PATH="$(dirname "$pc")"
prefix=$(pkg-config --variable=prefix csp)
pkg() { pkg-config --define-variable=prefix="$tmp/root$prefix" "$@" csp; }
libdir=$(pkg --variable=libdir)
[ -f "$tmp/root$prefix/include/csp/csp.h" ] || { echo "headers not installed" >&2; exit 1; }
[ -e "$libdir/libcsp.so.0" ] || { echo "libcsp.so.0 not installed in $libdir" >&2; exit 1; }
if [ -n "$blas" ] && pkg-config --exists "$blas"; then
    req=$(pkg --print-requires-private)
    [ "$req" = "$blas" ] || { echo "csp.pc: Requires.private is '$req', want '$blas'" >&2; exit 1; }
fi
if grep -E '^Libs(\.private)?:.*-L */' "$pc"; then
    echo "csp.pc has a linker path of the build machine (above)" >&2
    exit 1
fi
grep -q '^Libs.private:.* -lm .*-lpthread' "$pc" ||
    { echo "csp.pc: Libs.private lacks -lm -lpthread" >&2; exit 1; }

strict="-std=c11 -Wall -Wextra -pedantic -Werror"
# A sanitized libcsp needs the sanitizer runtime in the program too.
[ "$sanitize" = none ] || strict="$strict -fsanitize=$sanitize"

# Shared.
# shellcheck disable=SC2046
$cc $strict "$src" -o "$tmp/minimal_shared" $(pkg --cflags) $(pkg --libs)
LD_LIBRARY_PATH="$libdir" ldd "$tmp/minimal_shared" | grep -q "$libdir/libcsp.so.0" ||
    { echo "the shared build does not load the installed libcsp.so.0" >&2; exit 1; }
LD_LIBRARY_PATH="$libdir" "$tmp/minimal_shared"

# Static: libcsp.a, with its private dependencies from Requires.private (the
# BLAS's own .pc) and Libs.private.
if [ -f "$libdir/libcsp.a" ]; then
    libs=$(pkg --static --libs | sed 's/-lcsp\b/-Wl,-Bstatic -lcsp -Wl,-Bdynamic/')
    # shellcheck disable=SC2086
    $cc $strict "$src" -o "$tmp/minimal_static" $(pkg --cflags) $libs
    if ldd "$tmp/minimal_static" | grep -q libcsp; then
        echo "the static build still needs libcsp.so" >&2
        exit 1
    fi
    "$tmp/minimal_static"
    echo "consumer builds (shared and static) ran"
else
    echo "consumer build (shared) ran; no libcsp.a installed (default_library=shared), no static build"
fi
