#!/bin/sh
# Cross-build libcsp for aarch64 (cross/aarch64-linux-gnu.ini) and run its
# unit suites, the kernel tests and the fuzz corpus replays under
# qemu-user-static, on Debian 12 (x86-64).
#   sh tools/cross-test.sh [build-dir]      (default build-aarch64)
# Installs what is missing (as root, or through sudo): the arm64 architecture
# for dpkg, the cross compilers, qemu-user-static, and libopenblas-dev:arm64,
# check:arm64 through multiarch. CSP_MESON_ARGS adds configure options.
set -eu
cd "$(dirname "$0")/.."
dir=${1:-build-aarch64}
cross=cross/aarch64-linux-gnu.ini

if [ "$(id -u)" -eq 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1; then
    as_root="sudo"
else
    as_root="none"
fi

pkgs="gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static \
meson ninja-build pkg-config libopenblas-dev:arm64 check:arm64"
missing=""
for p in $pkgs; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -n "$missing" ]; then
    if [ "$as_root" = none ]; then
        echo "cross-test.sh: need root (or sudo) to install:$missing" >&2
        exit 1
    fi
    echo "cross-test.sh: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        $as_root dpkg --add-architecture arm64
    fi
    $as_root apt-get update -qq
    # The build machine's own BLAS and Check stay: they are named too, and
    # --no-remove makes apt fail rather than swap the amd64 packages for the
    # arm64 ones (later CI stages build natively).
    # shellcheck disable=SC2086
    $as_root apt-get install -y -qq --no-install-recommends --no-remove $missing \
        libopenblas-dev check
fi

# shellcheck disable=SC2086
if [ -d "$dir" ]; then
    meson setup --reconfigure "$dir" --cross-file "$cross" -Dwerror=true \
        -Ddefault_library=both -Ddocs=disabled -Dbench=disabled ${CSP_MESON_ARGS:-}
else
    meson setup "$dir" --cross-file "$cross" -Dwerror=true \
        -Ddefault_library=both -Ddocs=disabled -Dbench=disabled ${CSP_MESON_ARGS:-}
fi
ninja -C "$dir"

# The library really is aarch64 code.
aarch64-linux-gnu-readelf -h "$dir/lib/libcsp.so.0" | grep -q "Machine: *AArch64" || {
    echo "cross-test.sh: $dir/lib/libcsp.so.0 is not an aarch64 library" >&2
    exit 1
}

# Under qemu, one BLAS thread: every test of the build (unit suites, fuzz
# corpus replays, headers, ABI and layout checks). The cross file's
# exe_wrapper must use the multiarch loader (its comment says why).
OPENBLAS_NUM_THREADS=1 meson test -C "$dir" --no-rebuild --print-errorlogs \
    --timeout-multiplier 4
